"""No raw identifier (LAchildID, SSDA903 CHILD, UPN, FormerUPN) leaves the loader.

Every fixture is loaded into a store through the CLI; then every string cell of every Parquet
file (read with polars, so compression cannot hide a match), the raw bytes of every other file
in the store, every reject ``record``, the CLI's output and the messages of file-level errors
are searched for each raw identifier written in the fixtures (case-insensitively).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from conftest import CIN_FIXTURES, FIXTURES, RAW_CHILD_IDS, RAW_UPNS, cin_fixture
from typer.testing import CliRunner

from cinresearch.cli import app
from cinresearch.io.cin import CinFileError, read_cin_xml
from cinresearch.io.errors import InputFileError
from cinresearch.io.loader import read_file
from cinresearch.store import Store

RAW = tuple(v.lower() for v in (*RAW_CHILD_IDS, *RAW_UPNS))
INPUTS = [
    *sorted(CIN_FIXTURES.glob("cin_*.xml")),
    *sorted(CIN_FIXTURES.glob("rw_*.xml")),
    *sorted((FIXTURES / "cla").glob("*.csv")),
    *sorted((FIXTURES / "npd").glob("*.csv")),
    *sorted((FIXTURES / "population").glob("*.csv")),
]


def leaks(text: str) -> list[str]:
    low = text.lower()
    return [raw for raw in RAW if raw in low]


def string_cells(frame: pl.DataFrame) -> list[str]:
    """Every value of a frame as text (lists exploded, non-strings cast)."""
    out: list[str] = []
    for name, dtype in frame.schema.items():
        column = frame.get_column(name)
        if isinstance(dtype, pl.List):
            column = column.explode()
        out.extend(v for v in column.cast(pl.String).to_list() if v is not None)
    return out


def test_fixtures_really_contain_the_identifiers():
    text = "".join(p.read_text(encoding="utf-8-sig", errors="replace") for p in INPUTS).lower()
    assert [raw for raw in RAW if raw not in text] == []


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("privacy") / "store"
    bad = sorted(CIN_FIXTURES.glob("bad_*.xml"))
    result = CliRunner().invoke(
        app,
        ["load", *map(str, INPUTS), *map(str, bad), "--store", str(root), "--demo-key"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 1  # the bad files fail; everything else loads
    assert len([ln for ln in result.stderr.splitlines() if ln.startswith("error:")]) == len(bad)
    return root, result.stdout + result.stderr


def test_store_loaded_every_input(loaded):
    root, _ = loaded
    assert len(Store(root).inputs()) == len(INPUTS)
    assert Store(root).read("rejects").height > 20


def test_no_raw_identifier_in_any_parquet_cell(loaded):
    root, _ = loaded
    parts = sorted(root.rglob("*.parquet"))
    assert len(parts) > 40
    found = {}
    for part in parts:
        hits = [cell for cell in string_cells(pl.read_parquet(part)) if leaks(cell)]
        if hits:
            found[part.relative_to(root).as_posix()] = hits[:3]
    assert found == {}


def test_no_raw_identifier_in_any_file_bytes(loaded):
    root, _ = loaded
    files = [p for p in root.rglob("*") if p.is_file()]
    assert any(p.name == "manifest.json" for p in files)
    assert any(p.name == "load_report.json" for p in files)
    found = {p.name: leaks(p.read_bytes().decode("latin-1")) for p in files}
    assert {k: v for k, v in found.items() if v} == {}


def test_reject_records_hold_only_pseudonymised_ids(loaded):
    root, _ = loaded
    rejects = Store(root).read("rejects")
    for record, message in rejects.select("record", "message").iter_rows():
        assert leaks(record) == [] and leaks(message) == []
        fields = json.loads(record)
        for name in ("child_id", "upn_hash"):
            value = fields.get(name)
            assert value is None or (len(value) == 20 and int(value, 16) >= 0)


def test_no_raw_identifier_in_cli_output(loaded):
    _, output = loaded
    assert "error:" in output
    assert leaks(output) == []


def _faulty_copies(tmp_path: Path) -> list[Path]:
    """Files that fail right next to an identifier (bad byte, truncation, stray '&' or '<')."""
    src = cin_fixture("cin_2018_201_booleans01.xml").read_bytes()
    at = src.index(b"RAW-A-1001")
    variants = {
        "bad_byte.xml": src.replace(b"RAW-A-1001", b"RAW-A-1001\xe9"),
        "truncated_in_id.xml": src[: at + 8],
        "truncated_after_upn.xml": src[: src.index(b"J201123410001") + 13],
        "ampersand.xml": src.replace(b"RAW-A-1001", b"RAW&A-1001;"),
        "ampersand_upn.xml": src.replace(b"J201123410001", b"&J201123410001;"),
        "less_than.xml": src.replace(b"RAW-A-1001", b"RAW-A-1001<"),
        "nul.xml": src.replace(b"RAW-A-1001", b"RAW-A-1001\x00"),
    }
    out = []
    for name, data in variants.items():
        path = tmp_path / name
        path.write_bytes(data)
        out.append(path)
    csv = (FIXTURES / "cla" / "ssda903_2019_201_header.csv").read_bytes()
    path = tmp_path / "ssda903_2019_201_header.csv"
    path.write_bytes(csv.replace(b"RAW-K-1111", b"RAW-K-1111\xe9"))
    out.append(path)
    return out


def test_no_raw_identifier_in_file_level_error_messages(tmp_path, demo_key):
    messages = []
    for path in _faulty_copies(tmp_path):
        with pytest.raises((CinFileError, InputFileError)) as info:
            if path.suffix == ".xml":
                read_cin_xml(path, demo_key)
            else:
                read_file(path, "ssda903_header", demo_key)
        messages.append(str(info.value))
        assert info.value.line is not None, str(info.value)
        assert "\n" not in str(info.value)
    assert [m for m in messages if leaks(m)] == []
    # the undeclared-entity case names the line and the likely cause, not the entity
    assert any("undeclared entity (an unescaped '&'?)" in m for m in messages)
