"""End to end: every report notebook runs on a small synthetic store and renders clean HTML.

One store is built per test session (shared by the pytest-xdist workers through a file lock):
``cinresearch.synth.generate`` (3 LAs, census years 2018-2021, small scale, with the documented
data faults so the data-quality chapter has rejects and a failed file to report), loaded with
the demo key and built into journeys. Each notebook is then executed by papermill through
``cinresearch.report.runner.run_notebook`` with the default parameters (England, latest year)
and with non-default ones (an earlier census year, one LA). Each run must succeed with nothing
written to stderr (no warnings, no tracebacks), and its HTML must contain no identifier: neither
the raw LAchildIDs / UPNs of the synthetic truth files nor the pseudonymised ids of the store.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import re
from collections.abc import Iterator
from pathlib import Path

import nbformat
import polars as pl
import pytest

from cinresearch.report import runner
from cinresearch.tools.check_notebooks import problems

NOTEBOOKS = runner.REPORT_NOTEBOOKS
NOTEBOOK_DIR = runner.NOTEBOOK_DIR
COMMON_PARAMETERS = ("store", "census_year", "la_code", "suppression_threshold")

# Data URIs (the embedded PNG figures) are not text a reader sees; ids are searched elsewhere.
_DATA_URI = re.compile(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=]+")
_TOKEN = re.compile(r"[A-Za-z0-9]+")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build_store(root: Path) -> None:
    from cinresearch.io.loader import load_paths
    from cinresearch.journeys import build_journeys
    from cinresearch.pseudonymise import DEMO_KEY, Pseudonymiser
    from cinresearch.store import Store
    from cinresearch.synth import generate

    synth = root / "synth"
    generate(synth, las=3, years=(2018, 2021), scale=150, seed=5, mess=True, progress=False)
    store = Store(root / "store")
    inputs = [synth / sub for sub in ("cin", "cla", "npd", "population")]
    load_paths(inputs, store, Pseudonymiser(DEMO_KEY), progress=False)
    build_journeys(store, progress=False)


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """Folder with ``synth/`` (files and truth) and ``store/`` (loaded and built), built once."""
    base = tmp_path_factory.getbasetemp()
    if hasattr(request.config, "workerinput"):  # xdist: share one store between the workers
        base = base.parent
    root = base / "notebook_store"
    with _locked(base / "notebook_store.lock"):
        if not (root / "ready").exists():
            _build_store(root)
            (root / "ready").write_text("ok")
    return root


@pytest.fixture(scope="session")
def identifiers(synthetic: Path) -> set[str]:
    """Every raw id in the synthetic truth and every pseudonymised id in the store."""
    from cinresearch.store import Store

    ids: set[str] = set()
    children = pl.read_parquet(synthetic / "synth" / "truth" / "children.parquet")
    for column in ("la_child_id", "upn", "former_upn"):
        ids |= set(children[column].drop_nulls().cast(pl.String).to_list())
    store = Store(synthetic / "store")
    episodes = store.read("episodes")
    for column in ("child_id", "upn_hash", "episode_id"):
        ids |= set(episodes[column].drop_nulls().to_list())
    return {i for i in ids if i}


def _smallest_la(store: Path) -> str:
    from cinresearch.store import Store

    counts = Store(store).read("episodes").group_by("la_code").len().sort("len", "la_code")
    return str(counts["la_code"][0])


def _visible_tokens(html: str) -> set[str]:
    return set(_TOKEN.findall(_DATA_URI.sub(" ", html)))


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["england_latest", "one_la_earlier_year"])
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_clean(
    name: str, variant: str, synthetic: Path, identifiers: set[str], tmp_path: Path
) -> None:
    store = synthetic / "store"
    if variant == "england_latest":
        parameters = {"census_year": 2021, "la_code": "ENG", "suppression_threshold": 5}
    else:
        parameters = {
            "census_year": 2020,
            "la_code": _smallest_la(store),
            "suppression_threshold": 6,
        }
    run = runner.run_notebook(name, tmp_path, {"store": str(store), **parameters})
    assert run.warnings == [], f"{name} wrote to stderr: {run.warnings}"
    html = (tmp_path / run.html).read_text(encoding="utf-8")
    assert run.title in html
    for leak in ("Traceback", "Warning:", "import polars", "show_table("):
        assert leak not in html, f"{name}: {leak!r} in the rendered HTML"
    found = _visible_tokens(html) & identifiers
    assert not found, f"{name}: {len(found)} identifier(s) in the HTML"
    # figures are embedded as PNGs with alternative text; each decodes
    pngs = re.findall(r'<img[^>]*src="(data:image/png;base64,[^"]+)"[^>]*>', html)
    for uri in pngs:
        assert base64.b64decode(uri.split(",", 1)[1])[:4] == b"\x89PNG"
    assert html.count('alt="') >= len(pngs)


@pytest.mark.slow
def test_timelines_only_for_synthetic_data(synthetic: Path, tmp_path: Path) -> None:
    """The same store under a non-demo key id draws no child-level timeline."""
    import json
    import shutil

    store = tmp_path / "store"
    shutil.copytree(synthetic / "store", store)
    manifest = json.loads((store / "manifest.json").read_text())
    for entry in manifest["inputs"].values():
        if "key_id" in entry.get("detail", {}):
            entry["detail"]["key_id"] = "not-the-demo"
    (store / "manifest.json").write_text(json.dumps(manifest))
    run = runner.run_notebook(
        "02_journeys",
        tmp_path / "out",
        {"store": str(store), "census_year": 2021, "la_code": "ENG"},
    )
    html = (tmp_path / "out" / run.html).read_text(encoding="utf-8")
    assert run.warnings == []
    assert "child-level pictures must not be published" in html
    assert "synthetic children" not in html
    assert "Synthetic data." not in html


def test_notebooks_stored_clean_with_parameters() -> None:
    """No outputs, no execution counts, a `parameters` cell declaring the common parameters."""
    for name in NOTEBOOKS:
        path = NOTEBOOK_DIR / f"{name}.ipynb"
        assert problems(path) == [], problems(path)
        nb = nbformat.read(path, as_version=4)
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        assert nb.cells.index(cell) == 1, f"{name}: parameters should follow the title"
        assigned = set(re.findall(r"^(\w+)\s*=", cell.source, flags=re.MULTILINE))
        assert set(COMMON_PARAMETERS) <= assigned, (
            f"{name}: missing {set(COMMON_PARAMETERS) - assigned}"
        )
        first = nb.cells[0]
        assert first.cell_type == "markdown" and first.source.startswith("# ")
