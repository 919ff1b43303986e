"""Each census year's official figures come from that year's own return (as DfE counts them).

Two parts:

* a hand-worked fixture (one LA, returns 2018 and 2019) where the 2019 return changes what the
  2018 return said: a closure RC8 after the year, a disability recorded later, a birth recorded
  after the expected date. Every expected number is worked out in the comments. The same
  fixture checks the measures added for issue 14 (assessed not in need, factors at assessment,
  children subject to an ICPC, children on a CP plan at any point in the year);
* end to end on small synthetic returns (synth -> XML -> load -> build -> publication): the
  year-Y published CSVs are byte-identical whether or not later returns are loaded, while the
  "revised" basis (which does read later returns) changes them.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest

from cinresearch import indicators as ind

D = dt.date.fromisoformat


def _frames() -> dict[str, pl.DataFrame]:
    child = ["child_id", "la_code", "census_year"]
    children = pl.DataFrame(
        [
            # C1: unborn at referral; expected 1 Aug 2017, no birth date in the 2018 return
            # (the expected date has passed by 31 March 2018); born 28 Jul 2017 per 2019 return.
            ("C1", "901", 2018, None, D("2017-08-01"), "U", False),
            ("C1", "901", 2019, D("2017-07-28"), None, "M", False),
            # C2: no disability recorded in 2018; a disability recorded in 2019.
            ("C2", "901", 2018, D("2010-01-01"), None, "F", False),
            ("C2", "901", 2019, D("2010-01-01"), None, "F", True),
            ("C3", "901", 2018, D("2012-06-01"), None, "M", False),
            ("C4", "901", 2018, D("2008-03-01"), None, "F", True),
            ("C4", "901", 2019, D("2008-03-01"), None, "F", True),
        ],
        schema=[*child, "birth_date", "expected_birth_date", "sex", "disabled"],
        orient="row",
    )
    referrals = pl.DataFrame(
        [
            # E1: open at 31 March 2018 in the 2018 return; the 2019 return closes it RC8 in May.
            ("C1", "901", 2018, D("2017-06-01"), "6", "N1", None, None, False),
            ("C1", "901", 2019, D("2017-06-01"), "6", "N1", D("2018-05-01"), "RC8", False),
            ("C2", "901", 2018, D("2017-09-01"), "2A", "N2", None, None, False),
            ("C2", "901", 2019, D("2017-09-01"), "2A", "N2", None, None, False),
            # E3: closed RC8 within 2017-18 after an assessment recording "no factors" (21).
            ("C3", "901", 2018, D("2017-10-01"), "1A", "N4", D("2017-12-01"), "RC8", False),
            ("C4", "901", 2018, D("2017-05-01"), "6", "N1", None, None, False),
            ("C4", "901", 2019, D("2017-05-01"), "6", "N1", None, None, False),
        ],
        schema=[
            *child,
            "referral_date",
            "referral_source",
            "primary_need",
            "closure_date",
            "closure_reason",
            "referral_nfa",
        ],
        orient="row",
    )
    assessments = pl.DataFrame(
        [
            ("C2", "901", 2018, D("2017-09-02"), D("2017-10-01"), ["4A", "1B"]),
            ("C3", "901", 2018, D("2017-10-02"), D("2017-11-01"), ["21"]),
            ("C4", "901", 2018, D("2017-05-02"), D("2017-06-01"), ["3A", "4B"]),
            ("C4", "901", 2018, D("2018-01-02"), D("2018-02-01"), ["3B", "16A"]),
            ("C4", "901", 2019, D("2018-01-02"), D("2018-02-01"), ["3B", "16A"]),
        ],
        schema=[*child, "assessment_start", "assessment_authorised", "factors"],
        orient="row",
    ).with_columns(
        pl.col("child_id")
        .replace_strict(
            {"C2": D("2017-09-01"), "C3": D("2017-10-01"), "C4": D("2017-05-01")},
            return_dtype=pl.Date,
        )
        .alias("referral_date")
    )
    section47 = pl.DataFrame(
        [
            ("C4", "901", 2018, D("2017-05-01"), D("2017-06-05"), D("2017-06-20"), False),
            ("C4", "901", 2018, D("2017-05-01"), D("2017-08-01"), D("2017-08-15"), False),
        ],
        schema=[*child, "referral_date", "s47_start", "icpc_date", "icpc_not_required"],
        orient="row",
    )
    cp_plans = pl.DataFrame(
        [
            ("C4", "901", 2018, D("2017-05-01"), D("2017-06-20"), D("2017-08-01"), "NEG", 0),
            ("C4", "901", 2018, D("2017-05-01"), D("2017-08-15"), None, "EMO", 0),
            ("C4", "901", 2019, D("2017-05-01"), D("2017-08-15"), None, "EMO", 0),
            # C2's plan ended on 1 April 2017, the first day of 2017-18: on a plan in the year.
            ("C2", "901", 2018, D("2017-09-01"), D("2016-10-01"), D("2017-04-01"), "PHY", 0),
        ],
        schema=[
            *child,
            "referral_date",
            "cpp_start",
            "cpp_end",
            "initial_category",
            "previous_cpps",
        ],
        orient="row",
    ).with_columns(pl.col("initial_category").alias("latest_category"))
    return {
        "children": children,
        "referrals": referrals,
        "assessments": assessments,
        "section47": section47,
        "cp_plans": cp_plans,
    }


def value(out: pl.DataFrame, measure: str, breakdown: str = "total", level: str = "Total"):
    rows = out.filter(
        (pl.col("geographic_level") == ind.LOCAL_AUTHORITY)
        & (pl.col("measure") == measure)
        & (pl.col("breakdown") == breakdown)
        & (pl.col("breakdown_level") == level)
    )
    assert rows.height == 1, (measure, breakdown, level)
    return rows["value"].item()


@pytest.fixture(scope="module")
def returned() -> pl.DataFrame:
    return ind.compute_indicators(_frames(), 2018, ("la",))


@pytest.fixture(scope="module")
def revised() -> pl.DataFrame:
    return ind.compute_indicators(_frames(), 2018, ("la",), basis="revised")


def test_episodes_counted_with_the_closure_reason_of_their_own_return(returned, revised):
    # As returned in 2018: E1 (open), E2 (open), E4 (open) are episodes of need; E3 closed RC8.
    assert value(returned, "cin_episodes_any_point") == 3
    assert value(returned, "cin_episodes_starting") == 3
    # Revised: the 2019 return closed E1 with RC8, so it drops out of 2018 altogether.
    assert value(revised, "cin_episodes_any_point") == 2
    assert value(revised, "cin_episodes_starting") == 2
    # In need at 31 March 2018 (not NFA, open): E1, E2, E4 on both bases (E1 closed in May).
    assert value(returned, "cin_at_31_march") == 3
    assert value(revised, "cin_at_31_march") == 3


def test_characteristics_as_recorded_in_the_return(returned, revised):
    # Disability at 31 March 2018: C4 only as returned; C2 too once the 2019 return is used.
    assert value(returned, "cin_at_31_march", "disabled", "Yes") == 1
    assert value(revised, "cin_at_31_march", "disabled", "Yes") == 2
    # Sex: C1 is U in the 2018 return (not yet known), M in 2019's.
    assert value(returned, "cin_at_31_march", "sex", "U") == 1
    assert value(revised, "cin_at_31_march", "sex", "U") == 0


def test_age_band_after_the_expected_birth_date_has_passed(returned, revised):
    # C1 has no birth date in 2018; the expected date (1 Aug 2017) has passed by 31 March
    # 2018, so C1 is aged from it: 0 completed years -> "under 1", not "unborn".
    assert value(returned, "cin_at_31_march", "age_band", "unborn") == 0
    assert value(returned, "cin_at_31_march", "age_band", "under 1") == 1
    # Revised uses the recorded birth date (28 Jul 2017): also under 1.
    assert value(revised, "cin_at_31_march", "age_band", "under 1") == 1
    # At referral (1 Jun 2017) C1 was unborn on either basis.
    assert value(returned, "referrals", "age_band", "unborn") == 1


def test_assessed_not_in_need(returned, revised):
    # Referrals in 2017-18: E1, E2, E3, E4 (4). As returned, only E3 (closed RC8, and factor
    # 21 recorded) was assessed not in need: 1 of 4 = 25%.
    assert value(returned, "referrals") == 4
    assert value(returned, "referrals_assessed_not_in_need") == 1
    assert value(returned, "referrals_assessed_not_in_need_pct") == pytest.approx(25.0)
    # Revised also counts E1, closed RC8 in the 2019 return: 2 of 4.
    assert value(revised, "referrals_assessed_not_in_need") == 2


def test_factor_21_alone_marks_assessed_not_in_need():
    frames = _frames()
    frames["referrals"] = frames["referrals"].with_columns(
        pl.when(pl.col("child_id") == "C3")
        .then(pl.lit("RC7"))
        .otherwise(pl.col("closure_reason"))
        .alias("closure_reason")
    )
    out = ind.compute_indicators(frames, 2018, ("la",), measures=["referrals_assessed_not_in_need"])
    assert value(out, "referrals_assessed_not_in_need") == 1  # E3 via factor 21


def test_factors_identified_at_assessment(returned):
    # Assessments authorised in 2017-18: C2's (4A, 1B), C3's (21) and C4's two (3A, 4B;
    # 3B, 16A). E3 recorded "no factors identified" (21), so as DfE (C3 note 3) it is not
    # an episode with factor information: E2 and E4 = 2. E4 counts once for domestic abuse
    # (3A and 3B are one group); mental health is in both episodes.
    assert value(returned, "assessment_factors") == 2
    for level, n in [
        ("Domestic abuse", 1),
        ("Mental health", 2),
        ("Neglect", 1),
        ("Alcohol misuse", 1),
        ("Drug misuse", 0),
    ]:
        assert value(returned, "assessment_factors", "assessment_factor", level) == n
        pct = value(returned, "assessment_factors_pct", "assessment_factor", level)
        assert pct == pytest.approx(100.0 * n / 2)


def test_children_subject_to_icpc(returned):
    # Two ICPCs (20 Jun, 15 Aug 2017), one child.
    assert value(returned, "icpcs") == 2
    assert value(returned, "children_subject_icpc") == 1


def test_children_on_a_plan_at_any_point(returned):
    # C4 (two plans, one child) and C2 (a plan ending on 1 April 2017): 2 children.
    assert value(returned, "children_on_cpp_during_year") == 2
    assert value(returned, "cpp_during_year") == 3  # plans: C4's two and C2's
    # At 31 March 2018 only C4's second plan is open.
    assert value(returned, "cpp_at_31_march") == 1


def test_later_return_leaves_as_returned_year_unchanged():
    full = _frames()
    alone = {k: f.filter(pl.col("census_year") <= 2018) for k, f in full.items()}
    a = ind.compute_indicators(alone, 2018, ("national", "la"))
    b = ind.compute_indicators(full, 2018, ("national", "la"))
    assert a.equals(b)
    r = ind.compute_indicators(full, 2018, ("national", "la"), basis="revised")
    assert not a.drop("basis").equals(r.drop("basis"))
    assert set(r["basis"]) == {"revised"}


def test_unknown_basis_is_rejected():
    with pytest.raises(ValueError, match="basis"):
        ind.compute_indicators(_frames(), 2018, basis="latest")


# --- end to end: published files for year Y with and without later returns -----------------


def _store(root: Path, synth: Path, years: list[int]):
    from cinresearch.io.loader import load_paths
    from cinresearch.journeys import build_journeys
    from cinresearch.pseudonymise import load_key
    from cinresearch.store import Store

    files = [p for y in years for p in sorted((synth / "cin").glob(f"cin_{y}_*.xml"))]
    files += [synth / "population" / f"population_{y - 1}.csv" for y in years]
    store = Store(root)
    report = load_paths(files, store, load_key(demo=True), progress=False, workers=1)
    assert not report.failed, [o.message for o in report.failed]
    build_journeys(store, progress=False)
    return store


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    from cinresearch.synth import generate

    root = tmp_path_factory.mktemp("official_year")
    synth = root / "synth"
    generate(synth, las=2, years=(2018, 2020), scale=150, seed=3, progress=False)
    alone = _store(root / "alone", synth, [2018])
    later = _store(root / "later", synth, [2018, 2019, 2020])
    yield alone, later
    shutil.rmtree(root, ignore_errors=True)


def _written(store, out: Path, basis: str = "as_returned") -> dict[str, bytes]:
    from cinresearch.publication import write_indicator_tables

    names = write_indicator_tables(store, 2018, out, basis=basis)
    files = {}
    for name in names:
        files[name] = (out / name).read_bytes()
        meta = name.replace(".csv", ".meta.csv")
        files[meta] = (out / meta).read_bytes()
    return files


def test_published_year_identical_with_later_returns(stores, tmp_path):
    alone, later = stores
    a = _written(alone, tmp_path / "alone")
    b = _written(later, tmp_path / "later")
    assert sorted(a) == sorted(b)
    different = [name for name in a if a[name] != b[name]]
    assert not different, different
    # The test has teeth: the revised basis reads the later returns and moves the figures.
    r = _written(later, tmp_path / "revised", basis="revised")
    data = [n for n in a if not n.endswith(".meta.csv")]
    assert any(a[n] != r.get(n) for n in data)
    assert b"revised" in r["cin_headline_measures.meta.csv"]
    assert b"revised" not in a["cin_headline_measures.meta.csv"]
    # Quantiles are declared dp 0 and written as whole working days.
    data = pl.read_csv(tmp_path / "alone" / "cin_headline_measures.csv", infer_schema_length=0)
    meta = pl.read_csv(tmp_path / "alone" / "cin_headline_measures.meta.csv")
    dp = dict(meta.select("col_name", "indicator_dp").iter_rows())
    for column in ("assessment_duration_median", "icpc_days_from_s47_median"):
        assert dp[column] == 0
        cells = data[column].filter(data[column].str.contains(r"^\d"))
        assert cells.len() > 0 and cells.str.contains(r"^\d+$").all(), cells.to_list()


# --- disability as recorded at the time of the referral ------------------------------------


def test_disabled_at_referral_uses_the_return_of_the_referral_year():
    from cinresearch.journeys.episodes import disabled_at_referral

    children = pl.DataFrame(
        {
            "child_id": ["K1", "K1", "K1", "K2", "K3"],
            "la_code": ["901"] * 5,
            "census_year": [2018, 2019, 2020, 2020, 2019],
            "disabled": [False, True, False, True, False],
        }
    )
    episodes = pl.DataFrame(
        {
            "episode_id": ["a", "b", "c", "d", "e", "f"],
            "child_id": ["K1", "K1", "K1", "K2", "K3", "K9"],
            "la_code": ["901"] * 6,
            "referral_date": [
                D("2017-06-01"),  # 2018 return: not disabled
                D("2018-04-01"),  # 2019 return (first day of 2018-19): disabled
                D("2021-01-10"),  # 2021: no such return -> nearest earlier (2020): not disabled
                D("2018-05-01"),  # 2019: K2 only in 2020 -> nearest later (2020): disabled
                D("2018-03-31"),  # 2018: K3 only in 2019 -> nearest later: not disabled
                D("2018-05-01"),  # K9 in no return: unknown
            ],
        }
    )
    got = dict(
        disabled_at_referral(episodes.lazy(), children.lazy()).collect().sort("episode_id").rows()
    )
    assert got == {"a": False, "b": True, "c": False, "d": True, "e": False}


def test_disabled_at_referral_in_built_episodes(stores):
    _, later = stores
    eps = later.read("episodes")
    assert "disabled_at_referral" in eps.columns
    assert eps["disabled_at_referral"].null_count() == 0  # every child is in some return


# --- the basis in the report: CLI flag, notebook parameter, index text -----------------------


def test_report_says_which_basis():
    from typer.testing import CliRunner

    from cinresearch.cli import app
    from cinresearch.report import runner as reports

    assert "revised" in reports._index_html(2018, [], {}, [], "revised")
    assert "own return" in reports._index_html(2018, [], {}, [], "as_returned")
    assert "revised" in ind.basis_note("revised") and "own return" in ind.basis_note("as_returned")
    for name in ("04_rereferrals", "05_la_benchmarking"):
        assert reports._declares(reports.NOTEBOOK_DIR, name, "indicator_basis")
    assert "--revised" in CliRunner().invoke(app, ["report", "--help"]).output


@pytest.mark.parametrize(
    ("birth", "expected", "on", "band"),
    [
        (None, "2020-06-01", "2020-05-31", "unborn"),  # before the expected date
        (None, "2020-06-01", "2020-06-01", "under 1"),  # taken as born on the expected date
        (None, "2020-06-01", "2022-06-01", "1-4"),  # aged from it when no birth is recorded
        ("2020-05-20", "2020-06-01", "2020-05-25", "under 1"),  # a recorded birth date wins
        ("2020-05-20", None, "2020-05-19", "unborn"),
        (None, None, "2020-05-19", None),
    ],
)
def test_one_age_band_rule_for_a_passed_expected_birth_date(birth, expected, on, band):
    from cinresearch.journeys.episodes import age_band_expr, age_in_years

    frame = pl.DataFrame(
        {"birth": [birth], "expected": [expected], "on": [on]},
        schema={"birth": pl.String, "expected": pl.String, "on": pl.String},
    ).with_columns(pl.all().str.to_date())
    age = age_in_years(pl.col("birth"), pl.col("on"))
    got = frame.select(age_band_expr(age, pl.col("birth"), pl.col("expected"), pl.col("on")))
    assert got.item() == band
    # indicators use the same rule
    via_indicators = frame.select(
        ind.age_band_expr(pl.col("birth"), pl.col("on"), pl.col("expected"))
    ).item()
    assert via_indicators == (band or "unknown")


def test_unit_records_follow_the_basis():
    # E1 is an episode of need in 2018 as returned, not once the 2019 return closes it RC8.
    returned = ind.unit_records(_frames(), "cin_episodes", 2018)
    revised = ind.unit_records(_frames(), "cin_episodes", 2018, basis="revised")
    assert returned.height == 3 and revised.height == 2
    assert "C1" in returned["child_id"].to_list() and "C1" not in revised["child_id"].to_list()


def test_episode_with_no_factors_code_is_left_out_of_factor_counts():
    # E3 records 21 together with domestic abuse: still not an episode with factor
    # information (DfE C3 note 3), so domestic abuse stays at E4 alone.
    frames = _frames()
    frames["assessments"] = frames["assessments"].with_columns(
        pl.when(pl.col("child_id") == "C3")
        .then(pl.lit(["21", "3A"]))
        .otherwise(pl.col("factors"))
        .alias("factors")
    )
    out = ind.compute_indicators(frames, 2018, ("la",), families=["assessment_factors"])
    assert value(out, "assessment_factors") == 2
    assert value(out, "assessment_factors", "assessment_factor", "Domestic abuse") == 1
