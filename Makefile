# cinresearch — the two commands a newcomer needs: `make demo` and `make test` (`make docs`: the site).
# Both create or refresh the virtual environment from the lock file first.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
YEAR   ?= 2024
SEED   ?= 1
LAS    ?= 8
SCALE  ?= 1500
DATA   := data

.PHONY: demo test lint env synth load build report bench clean docs docs-check

$(STAMP): requirements.lock pyproject.toml cinresearch/io/_cinfast.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

env: $(STAMP)

lint: env
	$(BIN)/ruff check cinresearch tests bench
	$(BIN)/ruff format --check cinresearch tests bench
	$(BIN)/python -m cinresearch.tools.check_notebooks notebooks
	$(BIN)/python -m cinresearch.tools.check_notebooks docs/tutorial
	$(BIN)/python -m cinresearch.tools.render_rules --check

test: lint docs-check
	$(BIN)/python -m pytest -n 2 -q

# The documentation site (mkdocs.yml): `make docs` builds it into site/, executing the tutorial
# notebook (about 15 s); then open site/index.html. `make docs-check` (part of `make test`)
# builds it in strict mode into a temporary folder without executing the tutorial, so a broken
# link or cross-reference, or an API page naming an object that no longer exists, fails.
MKDOCS := NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs

docs: env
	CINRESEARCH_DOCS_EXECUTE=true $(MKDOCS) build --strict --site-dir site
	@echo "docs: open site/index.html"

docs-check: env
	@tmp=$$(mktemp -d) && $(MKDOCS) build --strict --quiet --site-dir "$$tmp"; \
		rc=$$?; rm -rf "$$tmp"; [ $$rc -eq 0 ] && echo "docs-check: strict build OK"; exit $$rc

synth: env
	$(BIN)/cinresearch synth --out $(DATA)/synth --las $(LAS) --years 2018-$(YEAR) --scale $(SCALE) --seed $(SEED)

load: synth
	$(BIN)/cinresearch load $(DATA)/synth --store $(DATA)/store --demo-key

build: load
	$(BIN)/cinresearch build --store $(DATA)/store

report: build
	$(BIN)/cinresearch report --store $(DATA)/store --year $(YEAR) --out reports/$(YEAR)
	$(BIN)/python -m cinresearch.tools.disclosure_attack reports/$(YEAR)/data

demo: report

bench: env
	$(BIN)/python bench/run.py

clean:
	rm -rf $(DATA) reports/20* site
