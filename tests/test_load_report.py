"""Everything the loader decides is said, and 2025-26 returns load (issue 13, items 2 and 3).

Fixtures (hand-written): ``rw_2026_210_preproceedings.xml`` (a 2025-26 return with
``PreProceedingsandFGDM`` blocks, one without its start date) and
``rw_2024_211_unknown_elements.xml`` (elements the schema does not have, holding values that
must never reach the store). Header problems and superseded returns are made from
``cin_2024_minimal.xml`` by editing its header.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from conftest import cin_fixture
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from cinresearch.cli import app
from cinresearch.io.cin import CIN_TABLES, native, parallel, polars_reader, read_cin_xml
from cinresearch.io.loader import ReturnVersion, load_paths
from cinresearch.store import Store

PP = "rw_2026_210_preproceedings.xml"
UNKNOWN = "rw_2024_211_unknown_elements.xml"
MINIMAL = "cin_2024_minimal.xml"


def load(paths, root: Path, key, **kw):
    return load_paths([Path(p) for p in paths], Store(root), key, progress=False, **kw)


def with_header(tmp_path: Path, name: str, *, year="2024", ref="2024-03-31", stamp=None) -> Path:
    """cin_2024_minimal.xml with its Year, ReferenceDate and DateTime replaced (None = drop)."""
    text = cin_fixture(MINIMAL).read_text(encoding="utf-8")
    text = text.replace("<Year>2024</Year>", f"<Year>{year}</Year>" if year else "")
    text = text.replace(
        "<ReferenceDate>2024-03-31</ReferenceDate>", f"<ReferenceDate>{ref}</ReferenceDate>"
    )
    text = text.replace(
        "<DateTime>2024-04-15T09:00:00</DateTime>", f"<DateTime>{stamp}</DateTime>" if stamp else ""
    )
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def children_text(path: Path) -> str:
    """The run of <Child> elements of a fixture, as the fast readers are given it."""
    text = path.read_text(encoding="utf-8")
    return text[text.index("<Child>") : text.index("</Children>")]


# -- 2025-26: PreProceedingsandFGDM -------------------------------------------------------------
def test_2025_26_return_loads_pre_proceedings(tmp_path, demo_key):
    report = load([cin_fixture(PP)], tmp_path / "store", demo_key)
    assert [o.status for o in report.outcomes] == ["loaded"]
    store = Store(tmp_path / "store")
    pp = store.read("pre_proceedings").sort("pp_start")
    assert pp.height == 2
    first = pp.row(0, named=True)
    assert {k: first[k] for k in first if k not in ("child_id",)} == {
        "la_code": "210",
        "census_year": 2026,
        "referral_date": date(2025, 5, 2),
        "pp_start": date(2025, 10, 6),
        "lbp_sent_date": date(2025, 10, 6),
        "fgdm_offered": True,
        "fgdm_facilitated": True,
        "initial_meeting_date": date(2025, 10, 20),
        "review_meetings": 2,
        "decision_date": date(2026, 1, 19),
        "pp_outcome": "A",
        "court_application_date": date(2026, 2, 2),
        "letter_initial_cp_date": date(2025, 7, 4),
    }
    second = pp.row(1, named=True)
    assert (second["fgdm_offered"], second["fgdm_facilitated"], second["review_meetings"]) == (
        False,
        True,
        0,
    )
    assert first["child_id"] in store.read("children").get_column("child_id").to_list()
    rejects = store.read("rejects").filter(pl.col("table") == "pre_proceedings")
    got = sorted(rejects.select("line", "rule", "action").rows())
    assert got == [
        (86, "cr_pp_fgdm_facilitated_not_offered", "flag"),  # a query keeps the record
        (92, "required:pp_start", "reject_record"),  # the block with no PPStartDate
    ]
    counts = report.outcomes[0].counts
    assert counts["balanced"]
    assert counts["elements"]["PreProceedingsandFGDM"] == {"read": 3, "loaded": 2, "rejected": 1}
    assert "census year 2026 (2025-26) return for LA 210" in report.outcomes[0].message


def test_returns_without_the_module_store_no_pre_proceedings_part(tmp_path, demo_key):
    load([cin_fixture(MINIMAL)], tmp_path / "store", demo_key)
    store = Store(tmp_path / "store")
    assert store.table_parts("pre_proceedings") == []
    assert store.read("pre_proceedings").is_empty()  # read as an empty table with its schema
    assert "PreProceedingsandFGDM" not in store.inputs()[0].counts["elements"]


@pytest.mark.parametrize("name", [PP, UNKNOWN])
def test_fast_readers_decline_children_they_do_not_read(name):
    text = children_text(cin_fixture(name))
    assert polars_reader.parse_children(text) is None
    if native.AVAILABLE:
        assert native.parse_children(text.encode("utf-8")) is None


@pytest.mark.parametrize("name", [PP, UNKNOWN])
def test_every_reader_gives_the_same_result(name, demo_key):
    reference = read_cin_xml(cin_fixture(name), demo_key, columnar=False, workers=1)
    # the compiled/polars readers decline these children and hand them to lxml; several
    # batches (and their merge) are covered by the test below
    for other in (read_cin_xml(cin_fixture(name), demo_key, columnar=True),):
        for table in CIN_TABLES:
            assert_frame_equal(other.tables[table], reference.tables[table])
        assert_frame_equal(other.rejects, reference.rejects)
        assert_frame_equal(other.unrecognised, reference.unrecognised)
        assert other.counts() == reference.counts()


# -- unrecognised elements ---------------------------------------------------------------------
EXPECTED_UNRECOGNISED = [
    ("Child/CINdetails/Assessments/SocialWorker", "SocialWorker", 1, 59),
    ("Child/CINdetails/SomethingNew", "SomethingNew", 2, 32),
    ("Child/ChildIdentifiers/NickName", "NickName", 1, 22),
    ("Child/PPStartDate", "PPStartDate", 1, 63),  # a known name in the wrong place
]


def test_unknown_elements_are_counted_by_path_and_their_values_never_stored(tmp_path, demo_key):
    root = tmp_path / "store"
    report = load([cin_fixture(UNKNOWN)], root, demo_key)
    outcome = report.outcomes[0]
    assert outcome.status == "loaded"
    assert outcome.counts["balanced"]  # children and episodes around them still load
    assert outcome.counts["rows"]["children"] == 3
    assert outcome.counts["unrecognised"] == 5
    found = [tuple(r.values()) for r in outcome.unrecognised]
    assert found == [(p, e, n, line) for p, e, n, line in EXPECTED_UNRECOGNISED]

    table = Store(root).read("unrecognised_elements")
    assert table.columns == [
        "source_file",
        "la_code",
        "census_year",
        "path",
        "element",
        "count",
        "first_line",
    ]
    assert table.select("path", "element", "count", "first_line").rows() == EXPECTED_UNRECOGNISED
    assert set(table.get_column("source_file")) == {UNKNOWN}

    saved = json.loads((root / "reports" / "load_report.json").read_text())
    assert [(r["file"], r["path"], r["count"]) for r in saved["unrecognised_elements"]] == [
        (UNKNOWN, p, n) for p, _, n, _ in EXPECTED_UNRECOGNISED
    ]
    for path in root.rglob("*"):
        if path.is_file():
            assert b"SECRET" not in path.read_bytes(), path


def test_unknown_elements_found_past_fast_read_batches_keep_their_lines(
    tmp_path, demo_key, monkeypatch
):
    """Batches the fast readers accept and one they decline (read by lxml): same counts/lines."""
    text = cin_fixture(UNKNOWN).read_text(encoding="utf-8")
    plain = children_text(cin_fixture(MINIMAL))
    start = text.index("<Child>")
    many = "".join(plain.replace("RAW-GOOD-01", f"RAW-GOOD-{i:03d}") for i in range(40))
    path = tmp_path / "mixed.xml"
    path.write_text(text[:start] + many + text[start:], encoding="utf-8")
    shift = many.count("\n")
    monkeypatch.setattr(parallel, "BATCH_BYTES", 4096)
    fast = read_cin_xml(path, demo_key, columnar=True)
    slow = read_cin_xml(path, demo_key, columnar=False, workers=1)
    expected = [(p, e, n, line + shift) for p, e, n, line in EXPECTED_UNRECOGNISED]
    assert fast.unrecognised.rows() == expected
    assert_frame_equal(fast.unrecognised, slow.unrecognised)
    assert fast.counts() == slow.counts()
    assert fast.counts()["balanced"]


# -- header notes ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "note"),
    [
        (
            {"ref": "2024-03-30"},
            "rule 100: ReferenceDate 2024-03-30 is not 31 March 2024; using 2024-03-31",
        ),
        (
            {"year": None},
            "header Year missing; census year 2024 taken from ReferenceDate 2024-03-31",
        ),
        (
            {"year": None, "ref": "2023-12-31"},
            "header Year missing; census year 2024 taken from ReferenceDate 2023-12-31",
        ),
        (
            {"year": "2023"},
            "rule 100: header Year 2023 disagrees with ReferenceDate 2024-03-31; census year "
            "2023 taken from Year, collection period 2022-04-01 to 2023-03-31",
        ),
    ],
)
def test_header_notes_reach_the_report(tmp_path, demo_key, header, note):
    path = with_header(tmp_path, "in/return.xml", **header)
    root = tmp_path / "store"
    report = load([path], root, demo_key)
    assert report.outcomes[0].header_notes[0] == note
    saved = json.loads((root / "reports" / "load_report.json").read_text())
    assert {"file": "return.xml", "note": note} in saved["header_notes"]
    assert saved["files"][0]["header_notes"][0] == note


def test_a_year_that_disagrees_with_reference_date_explains_the_date_rejects(tmp_path, demo_key):
    path = with_header(tmp_path, "in/return.xml", year="2023")
    report = load([path], tmp_path / "store", demo_key)
    outcome = report.outcomes[0]
    assert outcome.counts["rejected"] == 7  # the referral (2 rules) and its 5 nested records
    (text,) = outcome.explanations
    assert text.startswith(
        "1 records rejected and 0 flagged by rules that compare dates with the collection "
        "period (8600, 8620), with 5 records nested in rejected ones: the period used is "
        "2022-04-01 to 2023-03-31 (header Year 2023), but the header's ReferenceDate is "
        "2024-03-31."
    )
    # a correct header explains nothing
    fine = load([cin_fixture(MINIMAL)], tmp_path / "store2", demo_key).outcomes[0]
    assert fine.explanations == [] and fine.header_notes == []


# -- superseded returns ---------------------------------------------------------------------------
def two_returns(tmp_path: Path) -> tuple[Path, Path]:
    older = with_header(tmp_path, "a/zz_first.xml", stamp="2024-04-15T09:00:00")
    newer = with_header(tmp_path, "b/aa_second.xml", stamp="2024-05-01T12:00:00")
    newer.write_text(  # a different closure reason, so the stores tell which one won
        newer.read_text().replace("<ReasonForClosure>RC8", "<ReasonForClosure>RC7"),
        encoding="utf-8",
    )
    assert "RC7" in newer.read_text()
    return older, newer


@pytest.mark.parametrize("order", ["older first", "newer first"])
def test_two_returns_for_one_la_and_year_the_later_produced_wins_in_any_order(
    tmp_path, demo_key, order
):
    older, newer = two_returns(tmp_path)
    files = [older, newer] if order == "older first" else [newer, older]
    root = tmp_path / "store"
    report = load(files, root, demo_key)
    by_file = {o.file: o for o in report.outcomes}
    assert by_file["aa_second.xml"].status == "loaded"
    lost = by_file["zz_first.xml"]
    assert lost.status == "superseded" and lost.superseded_by == "aa_second.xml"
    assert lost.reason == (
        "header DateTime 2024-05-01T12:00:00 of aa_second.xml is later than "
        "2024-04-15T09:00:00 of zz_first.xml"
    )
    store = Store(root)
    assert [r.file for r in store.inputs()] == ["aa_second.xml"]
    assert store.read("referrals").get_column("closure_reason").to_list() == ["RC7"]
    saved = json.loads((root / "reports" / "load_report.json").read_text())
    assert saved["superseded"] == [
        {
            "file": "zz_first.xml",
            "source_key": "cin_2024_999",
            "superseded_by": "aa_second.xml",
            "reason": lost.reason,
        }
    ]


def test_an_older_return_does_not_replace_a_newer_one_loaded_earlier(tmp_path, demo_key):
    older, newer = two_returns(tmp_path)
    root = tmp_path / "store"
    load([newer], root, demo_key)
    second = load([older], root, demo_key).outcomes[0]
    assert second.status == "superseded" and second.superseded_by == "aa_second.xml"
    assert [r.file for r in Store(root).inputs()] == ["aa_second.xml"]
    forced = load([older], root, demo_key, force=True).outcomes[0]
    assert forced.status == "loaded" and forced.replaces == "aa_second.xml"
    assert [r.file for r in Store(root).inputs()] == ["zz_first.xml"]


def test_tie_breaks_do_not_depend_on_order():
    a = ReturnVersion("a.xml", "cin_xml", "1" * 64, None)
    b = ReturnVersion("b.xml", "cin_xml", "0" * 64, None)
    stamped = ReturnVersion("a.xml", "cin_xml", "2" * 64, "2024-04-01T00:00:00")
    assert b.replaces(a)[0] and not a.replaces(b)[0]  # no DateTime: the name sorting last
    assert stamped.replaces(b)[0] and not b.replaces(stamped)[0]  # a DateTime beats none
    same_name = ReturnVersion("a.xml", "cin_xml", "0" * 64, None)
    assert a.replaces(same_name)[0] and not same_name.replaces(a)[0]  # in one load: SHA-256
    assert same_name.replaces(a, same_load=False)[0]  # a later load's correction wins


# -- the CLI summary --------------------------------------------------------------------------------
def test_cli_summary_says_it_all_and_keeps_long_names_whole_at_80_columns(tmp_path):
    older, newer = two_returns(tmp_path)
    long_newer = newer.with_name(
        "a_long_file_name_for_the_2023_24_return_of_la_999_resubmitted.xml"
    )
    newer.rename(long_newer)
    unknown = tmp_path / "c" / "another_rather_long_name_with_unrecognised_elements_2023_24.xml"
    unknown.parent.mkdir()
    unknown.write_bytes(cin_fixture(UNKNOWN).read_bytes())
    wrong_year = with_header(
        tmp_path, "d/return_whose_header_year_disagrees_with_its_date.xml", year="2023"
    )
    result = CliRunner().invoke(
        app,
        ["load", str(older), str(long_newer), str(unknown), str(wrong_year)]
        + ["--store", str(tmp_path / "store"), "--demo-key", "--quiet"],
        env={"COLUMNS": "80"},
    )
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    for name in (long_newer.name, unknown.name, wrong_year.name, older.name):
        assert any(line.endswith(f"] {name}") for line in lines), name
    out = result.stderr
    assert f"superseded: zz_first.xml by {long_newer.name}" in out
    assert "unrecognised element: Child/CINdetails/SomethingNew x2 (first at line 32" in out
    assert "header: rule 100: header Year 2023 disagrees with ReferenceDate 2024-03-31" in out
    assert "explains rejects: 1 records rejected" in out
    assert "4 files: 3 loaded, 1 superseded; 1 header notes; 5 unrecognised elements" in out
    assert "SECRET" not in out


# -- journeys -----------------------------------------------------------------------------------
def test_pre_proceedings_become_events_and_episode_fields(tmp_path, demo_key):
    from cinresearch.journeys import build_journeys

    root = tmp_path / "store"
    load([cin_fixture(PP), cin_fixture(MINIMAL)], root, demo_key)
    report = build_journeys(Store(root), progress=False)
    assert report.ok
    store = Store(root)
    assert store.read("merged_pre_proceedings").height == 2
    events = store.read("events")
    pp_events = events.filter(
        pl.col("event").is_in(["pre_proceedings_start", "court_application"])
    ).sort("date")
    assert pp_events.select("date", "event").rows() == [
        (date(2025, 10, 6), "pre_proceedings_start"),
        (date(2026, 1, 12), "pre_proceedings_start"),
        (date(2026, 2, 2), "court_application"),
    ]
    assert json.loads(pp_events.get_column("attrs")[0]) == {
        "fgdm_offered": True,
        "fgdm_facilitated": True,
        "pp_outcome": "A",
    }
    episodes = store.read("episodes").sort("referral_date")
    got = episodes.select(
        "referral_date", "n_pre_proceedings", "first_pp_start", "first_court_application_date"
    ).rows()
    assert got == [
        (date(2023, 5, 10), 0, None, None),  # 2023-24 return: no such module
        (date(2025, 4, 10), 0, None, None),
        (date(2025, 5, 2), 1, date(2025, 10, 6), date(2026, 2, 2)),
        (date(2025, 12, 1), 1, date(2026, 1, 12), None),
    ]


def test_synthetic_2025_26_returns_carry_pre_proceedings_and_earlier_years_do_not(
    tmp_path, demo_key
):
    from cinresearch.synth import generate

    generate(tmp_path / "synth", las=2, years=(2025, 2026), scale=400, seed=5)
    files = sorted((tmp_path / "synth" / "cin").glob("*.xml"))
    blocks = {f.name: f.read_text().count("<PreProceedingsandFGDM>") for f in files}
    assert all(n == 0 for name, n in blocks.items() if name.startswith("cin_2025"))
    assert sum(n for name, n in blocks.items() if name.startswith("cin_2026")) > 0
    plans = sum(f.read_text().count("<ChildProtectionPlans>") for f in files if "2026" in f.name)
    pp_total = sum(blocks.values())
    assert 0.01 < pp_total / plans < 0.2  # a plausible share of the year's CP plans
    for path in files:
        if "2026" not in path.name:
            continue
        fast = read_cin_xml(path, demo_key, columnar=True)
        slow = read_cin_xml(path, demo_key, columnar=False, workers=1)
        assert_frame_equal(fast.tables["pre_proceedings"], slow.tables["pre_proceedings"])
        assert fast.tables["pre_proceedings"].height == blocks[path.name]
        assert fast.rejects.is_empty(), fast.rejects.to_dicts()
        assert fast.unrecognised.is_empty()
