"""Cross-record rules (``data_contracts/cross_record_rules.yaml``): flags only, every record kept.

Two hand-written 2023-24 returns hold one shape per child (line numbers below are the lines of
the flagged element's start tag in the fixture, worked out by hand):

``cross_2024_301_dates.xml`` (LA 301)
  line 19  clean child: no flag
  line 57  episode referred 2023-06-01 with an episode ICPC (l.68), S47 + ICPC (l.82), CIN plan
           (l.78) and CP plan (l.88) dated before it → 1104 ×2, 2889, 4015, 1105
  line 96  episode closed 2023-08-01, assessment authorised 2023-08-15 → 8565 (episode l.107)
  line 121 NFA referral with an S47 (episode l.132) and a CP plan (l.142) → 8831, 8832
  line 151 died 2023-09-01: plan ending 2023-09-15 (l.170) → 8920; referral 2023-10-01
           (l.178) → 8555Q; its plan (l.185) starts and ends after death → 8915, 8920
  line 194 expected birth 2024-06-01, referred 2023-07-01 (336 days before; l.205) → 8606
  line 212 born 1997, open episode → 8775Q (child)
  line 230 ICPC 2023-03-30, before the collection year: S47 (l.246) → 8715; the same date as
           the episode-level DateOfInitialCPC (l.241) is not flagged (re-sent episodes keep it)

``cross_2024_302_overlaps.xml`` (LA 302)
  line 19  clean child: no flag
  line 57  two open episodes (l.68, l.74) → 8815 ×2, 8816 (l.68), 8820 (l.74)
  line 81  episodes 04-05..06-01, 06-01..07-01 (same-day hand-over: no flag), 06-15..08-01
           (l.108, inside the second) → 8820
  line 117 two open CP plans (l.133, l.139) → 8935 ×2, 8940 (l.139)
  line 147 open CIN plan (l.162) starting inside an open CP plan → 4001, 4016
  line 174 CIN plans 04-20..06-01, 05-15..07-01 (l.193) → 4014; CP plan 06-15..08-01 (l.201)
           starts inside the second → 4017; CIN plan from 08-01 (step-down) → no flag
  line 210, 233  same UPN → 1520 ×2; MOB twice (l.219) → 8794; factor 2A twice (l.225) → 8898
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from conftest import cin_fixture

from cinresearch.io.cin import ELEMENT_TABLE, cross_record_rules, native, read_cin_xml

DATES = "cross_2024_301_dates.xml"
OVERLAPS = "cross_2024_302_overlaps.xml"

EXPECTED: dict[str, set[tuple[str, str, int]]] = {
    "1104": {(DATES, "referrals", 68), (DATES, "section47", 82)},
    "1105": {(DATES, "cp_plans", 88)},
    "2889": {(DATES, "section47", 82)},
    "4015": {(DATES, "cin_plans", 78)},
    "8565": {(DATES, "referrals", 107)},
    "8831": {(DATES, "referrals", 132)},
    "8832": {(DATES, "cp_plans", 142)},
    "8555Q": {(DATES, "referrals", 178)},
    "8915": {(DATES, "cp_plans", 185)},
    "8920": {(DATES, "cp_plans", 170), (DATES, "cp_plans", 185)},
    "8606": {(DATES, "referrals", 205)},
    "8775Q": {(DATES, "children", 212)},
    "8715": {(DATES, "section47", 246)},
    "8815": {(OVERLAPS, "referrals", 68), (OVERLAPS, "referrals", 74)},
    "8816": {(OVERLAPS, "referrals", 68)},
    "8820": {(OVERLAPS, "referrals", 74), (OVERLAPS, "referrals", 108)},
    "8935": {(OVERLAPS, "cp_plans", 133), (OVERLAPS, "cp_plans", 139)},
    "8940": {(OVERLAPS, "cp_plans", 139)},
    "4001": {(OVERLAPS, "cin_plans", 162)},
    "4016": {(OVERLAPS, "cin_plans", 162)},
    "4014": {(OVERLAPS, "cin_plans", 193)},
    "4017": {(OVERLAPS, "cp_plans", 201)},
    "1520": {(OVERLAPS, "children", 210), (OVERLAPS, "children", 233)},
    "8794": {(OVERLAPS, "disabilities", 219)},
    "8898": {(OVERLAPS, "assessments", 225)},
}

READERS = ["lxml", "columnar", "compiled"]


def _load(path: Path, reader: str, key) -> object:
    if reader == "lxml":
        return read_cin_xml(path, key, workers=1, columnar=False)
    with pytest.MonkeyPatch.context() as mp:
        if reader == "columnar":
            mp.setattr(native, "_cinfast", None)
        return read_cin_xml(path, key, workers=1)


@pytest.fixture(scope="module")
def loads(demo_key) -> dict[tuple[str, str], object]:
    readers = READERS if native.AVAILABLE else READERS[:2]
    return {
        (name, reader): _load(cin_fixture(name), reader, demo_key)
        for name in (DATES, OVERLAPS)
        for reader in readers
    }


def _flags(loads, reader: str = "lxml") -> pl.DataFrame:
    return pl.concat([load.rejects for (name, r), load in loads.items() if r == reader])


@pytest.mark.parametrize("rule_id", [r.id for r in cross_record_rules.load_rules()])
def test_cross_record_rule(rule_id: str, loads) -> None:
    rule = next(r for r in cross_record_rules.load_rules() if r.id == rule_id)
    for reader in {r for _, r in loads}:
        hits = _flags(loads, reader).filter(pl.col("rule") == rule_id)
        got = {(r["source_file"], r["table"], r["line"]) for r in hits.to_dicts()}
        assert got == EXPECTED[rule_id], reader
        assert hits.height == len(got)  # one flag per record
        assert set(hits.get_column("action")) == {"flag"}
        assert set(hits.get_column("severity")) == {rule.severity}
        assert set(hits.get_column("message")) == {rule.message}


def test_every_record_is_still_loaded(loads) -> None:
    """Flags remove nothing: every element of the fixtures is in its table, none rejected."""
    for (name, reader), load in loads.items():
        text = cin_fixture(name).read_text(encoding="utf-8")
        assert load.rejects.filter(pl.col("action") != "flag").is_empty(), (name, reader)
        for element, table in ELEMENT_TABLE.items():
            n = text.count(f"<{element}>")
            if element == "Disability":
                n -= text.count("<Disability>NONE</Disability>")
            assert load.tables[table].height == n, (name, reader, element)
        assert load.counts()["balanced"]


def test_every_reader_gives_the_same_flags(loads) -> None:
    reference = _flags(loads, "lxml")
    assert reference.height == sum(len(v) for v in EXPECTED.values())
    for reader in {r for _, r in loads}:
        assert _flags(loads, reader).equals(reference), reader


def test_flags_carry_no_raw_identifiers(loads) -> None:
    text = "\n".join(str(v) for v in _flags(loads).rows())
    for raw in ("XR-", "J201123410001"):
        assert raw.lower() not in text.lower()


def test_catalogue_entries_are_complete_and_each_tested() -> None:
    rules = cross_record_rules.load_rules()
    assert {r.id for r in rules} == set(EXPECTED)
    names = {r.implemented_by.rpartition(".")[2] for r in rules}
    assert names == set(cross_record_rules.CHECKS)  # each check backs exactly one rule
    this_file = Path(__file__).name
    for rule in rules:
        assert rule.test == f"tests/{this_file}::test_cross_record_rule[{rule.id}]"
        assert rule.implemented_by.startswith(f"{cross_record_rules.__name__}.")
        assert rule.action == "flag"
        assert rule.severity == ("query" if rule.id.endswith("Q") else "error")
        assert rule.why


def test_rule_years() -> None:
    rule = cross_record_rules.load_rules()[0]
    assert rule.applies_to(2018) and rule.applies_to(2026) and not rule.applies_to(2017)
    bounded = cross_record_rules.CrossRecordRule(**{**rule.__dict__, "years": "2019-2021"})
    assert [y for y in range(2017, 2024) if bounded.applies_to(y)] == [2019, 2020, 2021]


def test_a_query_may_only_flag(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n  - {id: '8555Q', table: referrals, severity: query, action: reject_record,"
        " years: '2018-', message: m, test: t, implemented_by: x.referral_after_death}\n"
    )
    with pytest.raises(ValueError, match="query may only flag"):
        cross_record_rules.load_rules(path)


def test_activity_before_referral_is_one_rule_in_episodes(tmp_path: Path, demo_key) -> None:
    """Item 7: S47, ICPC and CP plan dated before the referral are all left out of the
    episode's counts and first dates (and counted in n_before_referral); the store keeps them."""
    from cinresearch.io.loader import load_paths
    from cinresearch.journeys import build_journeys
    from cinresearch.store import Store

    store = Store(tmp_path / "store")
    load_paths([cin_fixture(DATES)], store, demo_key, progress=False)
    assert build_journeys(store, progress=False).ok
    episodes = store.read("episodes")
    before = episodes.filter(pl.col("child_id") == demo_key.child_id("301", "XR-BEFORE-02")).row(
        0, named=True
    )
    assert (before["n_s47"], before["first_s47_start"]) == (0, None)
    assert before["first_icpc_date"] is None  # episode-level and S47 ICPC both before referral
    assert (before["n_cpp"], before["first_cpp_start"], before["first_cpp_category"]) == (
        0,
        None,
        None,
    )
    assert before["n_before_referral"] == 4  # S47 start, its ICPC, the episode ICPC, the plan
    assert before["n_assessments"] == 1 and before["n_cin_plans"] == 1  # not part of this rule
    clean = episodes.filter(pl.col("child_id") == demo_key.child_id("301", "XR-CLEAN-01")).row(
        0, named=True
    )
    assert (clean["n_s47"], clean["n_cpp"], clean["n_before_referral"]) == (1, 1, 0)
    assert str(clean["first_cpp_start"]) == str(clean["first_icpc_date"]) == "2023-06-02"
    # every episode: no plan counted without a first plan date, and the reverse
    assert episodes.filter(
        (pl.col("n_cpp") > 0) != pl.col("first_cpp_start").is_not_null()
    ).is_empty()
    assert episodes.filter(
        (pl.col("n_s47") > 0) != pl.col("first_s47_start").is_not_null()
    ).is_empty()
    # nothing left the store: the plan and the enquiry are still in the loaded tables
    assert store.read("cp_plans").height == 5 and store.read("section47").height == 4
