"""CSV loaders: SSDA903 header/episodes, NPD pupil extract, ONS population.

Fixtures (tests/fixtures/cla, npd, population) are tiny and hand-written; each bad row is there
for one rule. Line numbers count the header as line 1 and include blank lines.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from conftest import FIXTURES, cin_fixture

from cinresearch.io.cin import read_cin_xml
from cinresearch.io.errors import InputFileError
from cinresearch.io.loader import load_paths, read_file, sniff_kind

CLA = FIXTURES / "cla"
HEADER = CLA / "ssda903_2019_201_header.csv"
EPISODES = CLA / "ssda903_2019_201_episodes.csv"
NPD = FIXTURES / "npd" / "npd_2019.csv"
POPULATION = FIXTURES / "population" / "population_2019.csv"


def read(path: Path, key):
    return read_file(path, sniff_kind(path), key)


def rejects(loaded) -> list[tuple]:
    return sorted(loaded.rejects.select("line", "rule").rows())


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        (HEADER, "ssda903_header"),
        (EPISODES, "ssda903_episodes"),
        (NPD, "npd"),
        (POPULATION, "population"),
        (cin_fixture("cin_2024_minimal.xml"), "cin_xml"),
        (cin_fixture("cin_2019_206_bom.xml"), "cin_xml"),
    ],
)
def test_kind_is_recognised_from_content(path, kind):
    assert sniff_kind(path) == kind


def test_ssda903_header(demo_key):
    loaded = read(HEADER, demo_key)
    assert (loaded.source_key, loaded.census_year, loaded.la_code) == (
        "cla_children_2019_201",
        2019,
        "201",
    )
    rows = loaded.tables["cla_children"]
    assert rows.columns == [
        "child_id",
        "la_code",
        "census_year",
        "upn_hash",
        "birth_date",
        "sex",
        "ethnicity",
    ]
    assert rows.rows() == [
        (
            demo_key.child_id("201", "RAW-A-1001"),
            "201",
            2019,
            demo_key.upn("J201123410001"),
            date(2010, 4, 15),
            "M",
            "WBRI",
        ),
        (demo_key.child_id("201", "RAW-K-1111"), "201", 2019, None, date(2008, 3, 3), "F", "BAFR"),
    ]
    assert rejects(loaded) == [(4, "type:birth_date")]  # 31/02/2009
    assert loaded.counts["elements"]["row"] == {
        "read": 3,
        "loaded": 2,
        "rejected": 1,
        "blank_lines": 0,
        "balanced": True,
    }


def test_ssda903_episodes(demo_key):
    loaded = read(EPISODES, demo_key)
    rows = loaded.tables["cla_episodes"]
    a = demo_key.child_id("201", "RAW-A-1001")
    assert rows.select("child_id", "decom", "rne", "place", "dec", "rec").rows() == [
        (a, date(2018, 5, 1), "S", "U4", date(2018, 10, 10), "X1"),
        (a, date(2018, 10, 10), "P", "K2", None, None),
    ]
    # line 4 is blank (skipped, counted); ISO date, DEC before DECOM, unknown PLACE rejected
    assert rejects(loaded) == [
        (5, "type:decom"),
        (6, "cr_cla_dec_after_decom"),
        (7, "code:cla_place"),
    ]
    assert loaded.counts["elements"]["row"] == {
        "read": 5,
        "loaded": 2,
        "rejected": 3,
        "blank_lines": 1,
        "balanced": True,
    }
    assert loaded.counts["balanced"] is True


def test_cla_and_cin_ids_link_within_an_la(demo_key):
    cin = read_cin_xml(cin_fixture("cin_2018_201_booleans01.xml"), demo_key).tables["children"]
    cla = read(HEADER, demo_key).tables["cla_children"]
    assert cin.get_column("child_id")[0] == cla.get_column("child_id")[0]
    assert cin.get_column("upn_hash")[0] == cla.get_column("upn_hash")[0]


def test_npd(demo_key):
    loaded = read(NPD, demo_key)
    rows = loaded.tables["npd"]
    assert rows.select(
        "upn_hash", "academic_year", "fsm", "sen", "persistent_absence", "ks2_rwm_expected"
    ).rows() == [
        (demo_key.upn("J201123410001"), 2019, True, "K", True, None),  # 45/300 = 15%
        (demo_key.upn("E202300115009"), 2019, False, "N", False, True),
    ]
    assert rejects(loaded) == [(4, "cr_npd_sessions_range"), (5, "code:sen_provision")]
    assert loaded.counts["balanced"] is True


def test_population(demo_key):
    loaded = read(POPULATION, demo_key)
    assert loaded.tables["population"].rows() == [
        ("201", 2018, 0, "M", 50),
        ("201", 2018, 0, "F", 48),
        ("201", 2018, 17, "M", 40),  # sex "1" → M
    ]
    assert rejects(loaded) == [(5, "cr_population_age_range"), (6, "cr_population_nonnegative")]


# -- messy CSVs ------------------------------------------------------------------------------
def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


EP_HEAD = "CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE\n"
EP_ROW = "X{n},0{n}/05/2018,S,C2,N1,U4,PR1,,,\n"


def test_extra_comma_and_quoted_line_break_keep_line_numbers(tmp_path, demo_key):
    text = (
        EP_HEAD
        + EP_ROW.format(n=1)
        + "X2,02/05/2018,S,C2,N1,U4,PR1,,,,\n"  # line 3: an extra comma
        + '"X\n3",03/05/2018,S,C2,N1,U4,PR1,,,\n'  # lines 4-5: quoted line break in CHILD
        + "X4,04/05/2018,S,C2\n"  # line 6: too few fields
        + "\n"  # line 7: blank
        + "X5,05/05/2018,S,C2,N1,Q9,PR1,,,\n"  # line 8: unknown PLACE
    )
    loaded = read(write(tmp_path, "ssda903_2019_201_eps.csv", text), demo_key)
    assert loaded.tables["cla_episodes"].height == 2
    assert rejects(loaded) == [
        (3, "csv:field_count"),
        (6, "csv:field_count"),
        (8, "code:cla_place"),
    ]
    counts = loaded.counts["elements"]["row"]
    assert (counts["read"], counts["loaded"], counts["rejected"], counts["blank_lines"]) == (
        5,
        2,
        3,
        1,
    )
    assert counts["balanced"] is True
    field_count = loaded.rejects.filter(pl.col("rule") == "csv:field_count")
    assert json.loads(field_count.get_column("record")[0]) == {"fields": 11}
    assert "X2" not in "".join(loaded.rejects.get_column("record"))


def test_header_with_bom_crlf_and_padded_names(tmp_path, demo_key):
    text = "\ufeff CHILD ,sex,Dob,ETHNIC,UPN\r\nRAW-Q-1,2,01/01/2015,wbri,\r\n"
    loaded = read(write(tmp_path, "ssda903_2020_202_header.csv", text), demo_key)
    assert loaded.tables["cla_children"].select("sex", "ethnicity", "birth_date").rows() == [
        ("F", "WBRI", date(2015, 1, 1))
    ]


@pytest.mark.parametrize(
    ("name", "content", "line", "words"),
    [
        ("ssda903_2019_201_episodes.csv", EP_HEAD.replace(",DECOM", "") + "X,S\n", 1, "DECOM"),
        ("ssda903_2019_201_episodes.csv", b"CHILD,DECOM\nR\xe9X,01/01/2019\n", 2, "UTF-8"),
        ("ssda903_2019_201_episodes.csv", EP_HEAD.replace("RNE", "DECOM"), 1, "twice"),
        ("ssda903_2019_201_episodes.csv", "", None, "empty"),
        (
            "ssda903_2019_201_episodes.csv",
            EP_HEAD + EP_ROW.format(n=1) + '"' + "x" * 200_000 + '",01/01/2019\n',
            3,
            "field larger than field limit",
        ),
        ("episodes.csv", EP_HEAD + EP_ROW.format(n=1), None, "<census year>_<LA code>"),
    ],
)
def test_file_level_csv_faults_raise_input_file_error(
    tmp_path, demo_key, name, content, line, words
):
    path = write(tmp_path, name, content)
    with pytest.raises(InputFileError) as info:
        read_file(path, "ssda903_episodes", demo_key)
    assert info.value.line == line
    assert words in info.value.message
    assert str(info.value).startswith(name)


def test_npd_missing_column_names_it(tmp_path, demo_key):
    path = write(tmp_path, "npd_x.csv", "UPN,AcademicYear\nJ201123410001,2019\n")
    with pytest.raises(InputFileError, match="missing column.*FSMeligible") as info:
        read_file(path, "npd", demo_key)
    assert info.value.line == 1


def test_empty_csv_is_a_failed_input_not_a_silent_skip(tmp_path, demo_key, store):
    path = write(tmp_path, "empty.csv", "")
    report = load_paths([path], store, demo_key, progress=False)
    assert [o.status for o in report.outcomes] == ["failed"]
    assert "not a recognised input" in report.outcomes[0].message


def test_csv_loads_through_load_paths_and_twice_is_unchanged(store, demo_key):
    paths = [HEADER, EPISODES, NPD, POPULATION]
    report = load_paths(paths, store, demo_key, progress=False)
    assert [o.status for o in report.outcomes] == ["loaded"] * 4
    again = load_paths(paths, store, demo_key, progress=False)
    assert [o.status for o in again.outcomes] == ["unchanged"] * 4
    assert store.read("cla_episodes").height == 2
    assert store.read("npd").height == 2
    assert store.read("population").height == 3
    assert store.read("rejects").height == 1 + 3 + 2 + 2
