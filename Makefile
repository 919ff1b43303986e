# cinresearch — the two commands a newcomer needs: `make demo` and `make test`.
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

.PHONY: demo test lint env synth load build report bench clean

$(STAMP): requirements.lock pyproject.toml cinresearch/io/_cinfast.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

env: $(STAMP)

lint: env
	$(BIN)/ruff check cinresearch tests bench
	$(BIN)/ruff format --check cinresearch tests bench
	$(BIN)/python -m cinresearch.tools.check_notebooks notebooks
	$(BIN)/python -m cinresearch.tools.render_rules --check

test: lint
	$(BIN)/python -m pytest -n 2 -q

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
	rm -rf $(DATA) reports/20*
