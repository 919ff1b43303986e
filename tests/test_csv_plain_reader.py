"""The column-wise CSV reader gives exactly what the ``csv`` module reader gives, or declines."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from cinresearch.io.csv_tables import _read_csv_module, _read_plain_csv
from cinresearch.io.errors import InputFileError

FIXTURES = Path(__file__).parent / "fixtures"
REQUIRED = ["UPN", "AcademicYear", "KS2"]


def _both(path: Path, required: list[str]):
    try:
        reference = _read_csv_module(path, required)
    except InputFileError as err:
        with pytest.raises(InputFileError) as caught:
            _read_plain_csv(path, required)
        assert (caught.value.line, str(caught.value)) == (err.line, str(err))
        return None, None
    return _read_plain_csv(path, required), reference


def _assert_same(plain, reference) -> None:
    assert plain is not None, "the plain reader declined a file without quotes"
    assert_frame_equal(plain.frame, reference.frame)
    assert plain.malformed == reference.malformed
    assert plain.blank_lines == reference.blank_lines


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*/*.csv")), ids=lambda p: p.name)
def test_fixture_csvs_read_the_same(path: Path) -> None:
    header = path.read_text(encoding="utf-8").splitlines()[0].lstrip("\ufeff")
    required = [c.strip() for c in header.split(",")][:3]
    plain, reference = _both(path, required)
    if reference is None:
        return
    if '"' in path.read_text(encoding="utf-8"):
        assert plain is None
    else:
        _assert_same(plain, reference)


_CELLS = st.sampled_from(["", " ", "A1", "x y", "2019/2020", "é", "\t7 ", ",", "\ufeff"])
_LINE_ENDS = st.sampled_from(["\n", "\r\n"])


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.lists(_CELLS, min_size=0, max_size=5), max_size=12),
    ending=_LINE_ENDS,
    bom=st.booleans(),
    final_newline=st.booleans(),
)
def test_random_plain_csvs_read_the_same(tmp_path_factory, rows, ending, bom, final_newline):
    lines = ["UPN,AcademicYear,KS2,Other"] + [
        "".join(r) if len(r) < 2 else ",".join(r) for r in rows
    ]
    text = ("\ufeff" if bom else "") + ending.join(lines) + (ending if final_newline else "")
    path = tmp_path_factory.mktemp("csv") / "npd.csv"
    path.write_bytes(text.encode("utf-8"))
    plain, reference = _both(path, REQUIRED)
    if reference is not None:
        _assert_same(plain, reference)


@pytest.mark.parametrize(
    "content",
    ['UPN,AcademicYear,KS2\n"A,1",2019,3\n', "UPN,AcademicYear,KS2\rA,2019,3\r", "UPN,A\x00"],
)
def test_quotes_bare_returns_and_nul_go_to_the_csv_module(tmp_path: Path, content: str) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(content.encode("utf-8"))
    assert _read_plain_csv(path, REQUIRED) is None
