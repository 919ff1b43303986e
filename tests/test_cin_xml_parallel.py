"""The multi-process parse gives exactly the sequential result (tables, rejects, lines)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from cinresearch.io.cin import parallel, read_cin_xml
from cinresearch.pseudonymise import load_key

FIXTURE = Path(__file__).parent / "fixtures" / "cin" / "cin_2024_minimal.xml"


def _many_children(tmp_path: Path, n: int) -> Path:
    text = FIXTURE.read_text(encoding="utf-8")
    head, rest = text.split("<Children>", 1)
    child, tail = rest.split("</Children>", 1)
    children = []
    for i in range(n):
        body = child.replace("CHILD0001", f"CHILD{i:04d}")
        if i % 7 == 3:  # a record-level fault: closure before referral (rejected with its line)
            body = body.replace("<CINclosureDate>2024-02-20", "<CINclosureDate>2023-01-01")
        children.append(body)
    path = tmp_path / "many.xml"
    path.write_text(
        head + "<Children>" + "".join(children) + "</Children>" + tail, encoding="utf-8"
    )
    return path


def test_parallel_parse_equals_sequential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _many_children(tmp_path, 60)
    key = load_key(demo=True)
    sequential = read_cin_xml(path, key, workers=1, columnar=False)
    assert parallel.plan_ranges(path, 3) is not None
    parsed = parallel.parse_parallel(path, "", 3, 0)
    assert parsed is not None, "the parallel parser fell back"
    ranged = read_cin_xml(path, key, workers=3)
    for table, frame in sequential.tables.items():
        assert frame.equals(ranged.tables[table]), table
    assert sequential.rejects.sort("line", "rule").equals(ranged.rejects.sort("line", "rule"))
    assert sequential.rejects.height > 0
    assert ranged.reconciliation.get_column("balanced").all()
    # line numbers point at the real lines of the file
    lines = path.read_text(encoding="utf-8").splitlines()
    first_reject = ranged.rejects.filter(pl.col("table") == "referrals").row(0, named=True)
    assert "<CINdetails>" in lines[first_reject["line"] - 1]


def test_truncated_file_falls_back_to_sequential_error(tmp_path: Path) -> None:
    path = _many_children(tmp_path, 20)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert parallel.plan_ranges(path, 2) is None


STRAYS = Path(__file__).parent / "fixtures" / "cin" / "stray_elements_2024.xml"


def test_elements_outside_a_child_are_rejected_not_dropped() -> None:
    load = read_cin_xml(STRAYS, load_key(demo=True), workers=1)
    rejects = load.rejects.filter(pl.col("rule") == "schema:unexpected_element")
    assert rejects.select("line", "record").rows() == [
        (4, '{"element": "CINdetails"}'),
        (6, '{"element": "child"}'),
        (8, '{"element": "Stray"}'),
    ]
    assert load.tables["children"].height == 1
    assert load.reconciliation.get_column("balanced").all()


def test_parallel_parse_reports_strays_with_file_lines(tmp_path: Path) -> None:
    path = _many_children(tmp_path, 40)
    text = path.read_text(encoding="utf-8")
    cut = text.index("<Child>", len(text) // 2)
    path.write_text(text[:cut] + "<CINdetails/>\n" + text[cut:], encoding="utf-8")
    key = load_key(demo=True)
    sequential = read_cin_xml(path, key, workers=1, columnar=False)
    ranged = read_cin_xml(path, key, workers=2)
    seq = sequential.rejects.filter(pl.col("rule") == "schema:unexpected_element")
    par = ranged.rejects.filter(pl.col("rule") == "schema:unexpected_element")
    assert seq.height == 1
    assert seq.select("line", "record").equals(par.select("line", "record"))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert "<CINdetails/>" in lines[seq["line"][0] - 1]


def test_parallel_file_loading_gives_the_same_store(tmp_path: Path) -> None:
    """Files read in worker processes are committed in file order: same tables as one process."""
    from cinresearch.io.loader import load_paths
    from cinresearch.store import Store

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        source = _many_children(tmp_path, 10 + i).read_text(encoding="utf-8")
        (folder / f"r{i}.xml").write_text(source.replace("<LEA>999</LEA>", f"<LEA>99{i}</LEA>"))
    key = load_key(demo=True)
    one = load_paths([folder], Store(tmp_path / "one"), key, progress=False, workers=1)
    two = load_paths([folder], Store(tmp_path / "two"), key, progress=False, workers=2)
    assert [o.status for o in one.outcomes] == [o.status for o in two.outcomes] == ["loaded"] * 3
    for table in ("children", "referrals", "cpp_reviews", "rejects"):
        assert Store(tmp_path / "one").read(table).equals(Store(tmp_path / "two").read(table)), (
            table
        )
