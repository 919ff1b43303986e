"""Official measures on a hand-worked fixture (tests/fixtures/indicators/).

The fixture has two LAs (901, 902) and two returns (2018, 2019), loaded-table shape with
repeated episodes across returns. Every expected number below was worked out by hand; the
comments give the reasoning. Census year 2019 = 1 April 2018 .. 31 March 2019.

Bank holidays used: Good Friday 30 Mar 2018, Easter Monday 2 Apr 2018, early May 7 May 2018,
spring 28 May 2018, 25-26 Dec 2018, 1 Jan 2019.
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import polars as pl
import pytest

from cinresearch import indicators as ind
from cinresearch.workdays import working_days_between

FIXTURES = Path(__file__).parent / "fixtures" / "indicators"


def load_frames() -> dict[str, pl.DataFrame]:
    # Read everything as text: the module must coerce dates/bools/codes like the store has them.
    return {p.stem: pl.read_csv(p, infer_schema_length=0) for p in sorted(FIXTURES.glob("*.csv"))}


@pytest.fixture(scope="module")
def frames() -> dict[str, pl.DataFrame]:
    return load_frames()


@pytest.fixture(scope="module")
def y2019(frames) -> pl.DataFrame:
    return ind.compute_indicators(frames, 2019)


@pytest.fixture(scope="module")
def y2018(frames) -> pl.DataFrame:
    return ind.compute_indicators(frames, 2018)


def get(
    out: pl.DataFrame,
    measure: str,
    la: str | None = None,
    breakdown: str = "total",
    level: str = "Total",
    column: str = "value",
):
    geo = ind.NATIONAL if la is None else ind.LOCAL_AUTHORITY
    rows = out.filter(
        (pl.col("geographic_level") == geo)
        & (pl.col("measure") == measure)
        & (pl.col("breakdown") == breakdown)
        & (pl.col("breakdown_level") == level)
        & (pl.col("la_code").is_null() if la is None else pl.col("la_code") == la)
    )
    assert rows.height == 1, (measure, la, breakdown, level, rows)
    return rows[column].item()


# --- working-day facts the fixture relies on ------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        # Wed 28 Mar 2018 around Easter: Thu 29 (1); Fri 30, Mon 2 Apr holidays; ... Tue 5 Jun = 45
        ("2018-03-28", "2018-06-05", 45),
        ("2018-03-28", "2018-06-06", 46),
        ("2018-03-31", "2018-04-01", 0),  # Sat -> Sun
        ("2018-03-26", "2018-03-31", 3),  # Tue, Wed, Thu; Good Friday; Sat
        ("2018-06-01", "2018-07-20", 35),
        ("2018-05-21", "2018-06-04", 9),  # spring bank holiday 28 May
        ("2018-12-14", "2019-01-08", 14),  # Christmas, Boxing Day, New Year
        ("2019-03-01", "2019-03-25", 16),
    ],
)
def test_fixture_working_days(start, end, expected):
    got = pl.select(
        working_days_between(
            pl.lit(dt.date.fromisoformat(start)), pl.lit(dt.date.fromisoformat(end))
        )
    ).item()
    assert got == expected


# --- output shape -------------------------------------------------------------------------


def test_output_schema_and_levels(y2019):
    assert y2019.schema == ind.OUTPUT_SCHEMA
    assert set(y2019["geographic_level"]) == {ind.NATIONAL, ind.LOCAL_AUTHORITY}
    assert set(y2019["census_year"]) == {2019}
    defs = ind.load_definitions()
    assert set(y2019["measure"]) == {m.id for m in defs.measures}


def test_grid_is_complete_with_zeros(y2019):
    # Every LA has every declared level of every count breakdown, zeros included.
    cpp = y2019.filter(
        (pl.col("measure") == "cpp_starting") & (pl.col("breakdown") == "initial_category")
    )
    assert cpp.height == 3 * 5  # national + 2 LAs, 5 categories
    assert get(y2019, "cpp_starting", "902", "initial_category", "SAB") == 0
    assert get(y2019, "cpp_ending", "902") == 0


def test_england_is_the_sum_of_las(y2019):
    additive = [m.id for m in ind.load_definitions().measures if m.kind != "quantile"]
    rows = y2019.filter(pl.col("measure").is_in(additive))
    la_sum = (
        rows.filter(pl.col("geographic_level") == ind.LOCAL_AUTHORITY)
        .group_by("measure", "breakdown", "breakdown_level")
        .agg(pl.col("numerator").sum(), pl.col("denominator").sum())
    )
    nat = rows.filter(pl.col("geographic_level") == ind.NATIONAL).select(
        "measure", "breakdown", "breakdown_level", "numerator", "denominator"
    )
    joined = nat.join(la_sum, on=["measure", "breakdown", "breakdown_level"], suffix="_la")
    assert joined.height == nat.height
    assert (joined["numerator"] == joined["numerator_la"]).all()
    both = joined.filter(pl.col("denominator").is_not_null())
    assert (both["denominator"] == both["denominator_la"]).all()


# --- referrals, re-referrals, NFA ---------------------------------------------------------


def test_referrals_and_year_window(y2019, y2018):
    # 2019: A1 10 May 2018, A2 10 Apr 2018, A3 31 Mar 2019 (last day), A5 1 Apr 2018 (first day);
    # 902: B2 28 Feb 2019, B3 1 Jun 2018. A6 (31 Mar 2018) belongs to 2018.
    assert get(y2019, "referrals", "901") == 4
    assert get(y2019, "referrals", "902") == 2
    assert get(y2019, "referrals") == 6
    # 2018: A1 10 May 2017, A2 9 Apr 2017, A6 31 Mar 2018, A7 20 Mar 2018; B2 1 Mar 2018.
    assert get(y2018, "referrals", "901") == 4
    assert get(y2018, "referrals", "902") == 1
    # Rates: 901 uses mid-2018 (100 per age x sex cell, 3,600); 902 has 2017 and 2019 only,
    # equally near -> the earlier, 2017 (40 per cell, 1,440).
    assert get(y2019, "referrals_rate", "901") == pytest.approx(4 / 3600 * 10_000)
    assert get(y2019, "referrals_rate", "902") == pytest.approx(2 / 1440 * 10_000)
    assert get(y2019, "referrals_rate") == pytest.approx(6 / 5040 * 10_000)
    assert get(y2019, "referrals_rate", "902", column="denominator") == 1440
    # 2018 uses mid-2017: 90 per cell for 901.
    assert get(y2018, "referrals_rate", "901", column="denominator") == 3240


def test_referral_breakdowns(y2019):
    # Sources 901: 6 Police, 3A and 3B Health services, 9 Anonymous.
    assert get(y2019, "referrals", "901", "source_group", "Police") == 1
    assert get(y2019, "referrals", "901", "source_group", "Health services") == 2
    assert get(y2019, "referrals", "901", "source_group", "Anonymous") == 1
    assert get(y2019, "referrals_by_source_pct", "901", "source_group", "Health services") == 50
    # Age at referral: A1 8 (5-9), A2 born 29 Feb 2012 -> 6 on 10 Apr 2018 (5-9),
    # A3 unborn, A5 2 (1-4).
    assert get(y2019, "referrals", "901", "age_band", "5-9") == 2
    assert get(y2019, "referrals", "901", "age_band", "unborn") == 1
    assert get(y2019, "referrals", "901", "age_band", "1-4") == 1
    assert get(y2019, "children_referred", "901") == 4


def test_rereferral_12_month_boundary(y2019):
    # A1: previous 10 May 2017, referral 10 May 2018 -> same day-month a year earlier counts.
    # A2: previous 9 Apr 2017, referral 10 Apr 2018 -> one day too early, not a re-referral.
    # B2: previous 1 Mar 2018, referral 28 Feb 2019 -> within.
    assert get(y2019, "re_referrals_within_12_months", "901") == 1
    assert get(y2019, "re_referrals_within_12_months", "902") == 1
    assert get(y2019, "re_referrals_within_12_months_pct", "901") == pytest.approx(25.0)
    assert get(y2019, "re_referrals_within_12_months_pct", "902") == pytest.approx(50.0)
    assert get(y2019, "re_referrals_within_12_months_pct") == pytest.approx(100 * 2 / 6)
    assert get(y2019, "re_referrals_within_12_months_pct", column="denominator") == 6


@pytest.mark.parametrize(
    ("previous", "referral", "expected"),
    [
        ("2015-02-28", "2016-02-29", True),  # 29 Feb minus a year = 28 Feb
        ("2015-02-27", "2016-02-29", False),
        ("2016-02-29", "2017-02-28", True),  # 28 Feb 2017 looks back to 28 Feb 2016
        ("2016-02-29", "2017-03-01", False),  # looks back to 1 Mar 2016
        ("2019-03-01", "2020-03-01", True),  # 366 days across a leap day
        ("2019-02-28", "2020-03-01", False),
    ],
)
def test_rereferral_leap_years(previous, referral, expected):
    episodes = pl.DataFrame(
        {
            "child_id": ["C", "C"],
            "la_code": ["901", "901"],
            "referral_date": [dt.date.fromisoformat(previous), dt.date.fromisoformat(referral)],
            "referral_nfa": [False, False],
            "last_census_year": [2030, 2030],
            "first_census_year": [2010, 2010],
        }
    )
    y = int(referral[:4]) + (1 if int(referral[5:7]) >= 4 else 0)
    out = ind.compute_indicators(
        {"episodes": episodes},
        y,
        ("la",),
        measures=["re_referrals_within_12_months"],
        basis="revised",  # a hand-made episodes frame has no returns to count from
    )
    assert get(out, "re_referrals_within_12_months", "901") == (1 if expected else 0)


def test_referrals_nfa(y2019):
    # A5 (1 Apr 2018) is the only NFA referral in 2019.
    assert get(y2019, "referrals_nfa", "901") == 1
    assert get(y2019, "referrals_nfa_pct", "901") == pytest.approx(25.0)
    assert get(y2019, "referrals_nfa_pct", "902") == 0
    assert get(y2019, "referrals_nfa_pct") == pytest.approx(100 / 6)


# --- children in need at 31 March ---------------------------------------------------------


def test_cin_at_31_march_2019(y2019):
    # 901: A1 (open), A3 (unborn, referred 31 Mar 2019), A4 (aged 18). Not A2: closed ON 31 Mar.
    # Not A5 (NFA), A6/A7 (closed 2018). 902: B2. Not B1: open in 2018 but absent from the 2019
    # return (vanished) -> not known to be open.
    assert get(y2019, "cin_at_31_march", "901") == 3
    assert get(y2019, "cin_at_31_march", "902") == 1
    assert get(y2019, "cin_at_31_march_rate", "901") == pytest.approx(3 / 3600 * 10_000)
    assert get(y2019, "cin_at_31_march_rate") == pytest.approx(4 / 5040 * 10_000)


def test_cin_at_31_march_breakdowns(y2019):
    cin = "cin_at_31_march"
    assert get(y2019, cin, "901", "age_band", "unborn") == 1
    assert get(y2019, cin, "901", "age_band", "5-9") == 1  # A1, 8
    assert get(y2019, cin, "901", "age_band", "16+") == 1  # A4, 18 (DfE's 16+ includes 18+)
    assert get(y2019, cin, "902", "age_band", "1-4") == 1  # B2, born 25 Dec 2014 -> 4
    assert get(y2019, cin, "901", "sex", "M") == 2
    assert get(y2019, cin, "901", "sex", "U") == 1
    assert get(y2019, cin, "901", "disabled", "No") == 3  # A2 (disabled) is not open
    assert get(y2019, cin, "901", "primary_need", "N1") == 2
    assert get(y2019, cin, "901", "primary_need", "N8") == 1
    # Open-case duration at 31 March 2019: A1 (10 May 2018) 6-12m, A3 <=3m, A4 (2016) 2y+.
    assert get(y2019, cin, "901", "duration_band", "6-12m") == 1
    assert get(y2019, cin, "901", "duration_band", "<=3m") == 1
    assert get(y2019, cin, "901", "duration_band", "2y+") == 1
    # Shares.
    assert get(y2019, "cin_at_31_march_pct", "901", "sex", "M") == pytest.approx(200 / 3)
    # Age-band rates use that band's population: 5-9 = 5 ages x 2 sexes x 100 = 1,000;
    # 16+ uses ages 16-17 = 400; unborn has no rate.
    rate = "cin_at_31_march_rate"
    assert get(y2019, rate, "901", "age_band", "5-9") == pytest.approx(10.0)
    assert get(y2019, rate, "901", "age_band", "16+") == pytest.approx(25.0)
    assert get(y2019, rate, "901", "age_band", "unborn") is None
    assert get(y2019, rate, "901", "sex", "M") == pytest.approx(2 / 1800 * 10_000)
    assert get(y2019, rate, "901", "sex", "U") is None


def test_cin_at_31_march_2018_boundaries(y2018):
    # A6 referred Sat 31 Mar 2018 and closed 1 Apr 2018 -> open at 31 March 2018.
    # A4 and A7 open too. 902: B1 (in the 2018 return, no closure).
    assert get(y2018, "cin_at_31_march", "901") == 3
    assert get(y2018, "cin_at_31_march", "902") == 1


# --- episodes in year, closure reasons --------------------------------------------------------


def test_episodes_in_year(y2019):
    # 901 any point: A1, A2, A3, A4, A6 (closed 1 Apr 2018), A7 -- not A5 (NFA).
    # 902: B2, B3 -- not B1 (vanished after the 2018 return).
    assert get(y2019, "cin_episodes_any_point", "901") == 6
    assert get(y2019, "cin_episodes_any_point", "902") == 2
    assert get(y2019, "cin_episodes_starting", "901") == 3
    assert get(y2019, "cin_episodes_starting", "902") == 2
    assert get(y2019, "cin_episodes_ending", "901") == 3  # A2, A6, A7
    assert get(y2019, "cin_episodes_ending", "902") == 1  # B3
    # Duration of episodes ending: A6 1 day (<=3m); A7 20 Mar -> 1 Jul 2018 (3-6m);
    # A2 10 Apr 2018 -> 31 Mar 2019 (6-12m); B3 1 Jun -> 1 Dec 2018 = exactly 6 months (3-6m).
    e = "cin_episodes_ending"
    assert get(y2019, e, None, "duration_band", "<=3m") == 1
    assert get(y2019, e, None, "duration_band", "3-6m") == 2
    assert get(y2019, e, None, "duration_band", "6-12m") == 1


def test_episodes_exclude_assessed_not_in_need(y2018):
    # B2's 2018 episode closed RC8 (assessed, not in need): a referral, not an episode of need.
    assert get(y2018, "referrals", "902") == 1
    assert get(y2018, "cin_episodes_starting", "902") == 0


def test_closure_reasons(y2019):
    c = "cin_episodes_ending_by_closure_reason"
    assert get(y2019, c, None, "closure_reason", "RC7") == 3
    assert get(y2019, c, None, "closure_reason", "RC5") == 1
    assert get(y2019, c, None, "closure_reason", "RC8") == 0
    assert get(y2019, c + "_pct", None, "closure_reason", "RC7") == pytest.approx(75.0)
    assert get(y2019, c + "_pct", None, "closure_reason", "RC7", "denominator") == 4


# --- assessments ----------------------------------------------------------------------------


def test_assessments_completed_and_timeliness(y2019):
    # 901 authorised in 2019: A1 (0 wd), A2 (authorised before start: no duration),
    # A4 (Easter start, 45 wd), A6 (authorised Sun 1 Apr 2018: counts in 2019, 0 wd), A7 (46 wd).
    assert get(y2019, "assessments_completed", "901") == 5
    pct = "assessments_within_45_working_days_pct"
    assert get(y2019, pct, "901", column="denominator") == 4
    assert get(y2019, pct, "901", column="numerator") == 3  # 45 in, 46 out
    assert get(y2019, pct, "902") == pytest.approx(100.0)  # B3: 35 wd
    assert get(y2019, pct) == pytest.approx(80.0)


def test_assessment_duration_quantiles_and_bands(y2019):
    # 901 durations [0, 0, 45, 46] -> median 22.5; England [0, 0, 35, 45, 46] -> median 35
    # (pooled records, not an average of LA medians); p25 0, p75 45.
    assert get(y2019, "assessment_duration_median", "901") == pytest.approx(22.5)
    assert get(y2019, "assessment_duration_median") == pytest.approx(35.0)
    assert get(y2019, "assessment_duration_p25") == pytest.approx(0.0)
    assert get(y2019, "assessment_duration_p75") == pytest.approx(45.0)
    assert get(y2019, "assessment_duration_median", column="denominator") == 5
    bands = "assessments_by_duration_working_days"
    bd = "assessment_duration_band"
    assert get(y2019, bands, "901", bd, "same_day") == 2
    assert get(y2019, bands, "901", bd, "41-45") == 1
    assert get(y2019, bands, "901", bd, "46-50") == 1
    assert get(y2019, bands, "902", bd, "31-40") == 1
    assert get(y2019, bands + "_pct", None, bd, "same_day") == pytest.approx(40.0)


def test_assessments_2018_window(y2018):
    # 902: B1 authorised Sat 31 Mar 2018 (3 wd across Good Friday), B2 19 Mar (11 wd).
    # 901: A4/A7 were open at the 2018 return but the 2019 return's authorisations win.
    assert get(y2018, "assessments_completed", "902") == 2
    assert get(y2018, "assessments_completed", "901") == 0
    assert get(y2018, "assessment_duration_median", "902") == pytest.approx(7.0)


# --- section 47 and ICPCs ---------------------------------------------------------------------


def test_section47(y2019):
    assert get(y2019, "s47_enquiries_started", "901") == 3  # A1 twice, A4
    assert get(y2019, "children_subject_s47", "901") == 2
    assert get(y2019, "s47_enquiries_started", "902") == 2
    assert get(y2019, "s47_enquiries_started_rate", "902") == pytest.approx(2 / 1440 * 10_000)


def test_icpcs(y2019):
    # A1's two enquiries share one ICPC (4 Jun 2018): counted once, timed from the later
    # enquiry (21 May) -> 9 wd. A4: 14 wd over Christmas. B2: 16 wd (late). B3: same day.
    assert get(y2019, "icpcs", "901") == 2
    assert get(y2019, "icpcs", "902") == 2
    assert get(y2019, "icpc_within_15_working_days_pct", "901") == pytest.approx(100.0)
    assert get(y2019, "icpc_within_15_working_days_pct", "902") == pytest.approx(50.0)
    assert get(y2019, "icpc_within_15_working_days_pct") == pytest.approx(75.0)
    band = "icpc_duration_band"
    assert get(y2019, "icpc_days_from_s47_start", None, band, "0-10") == 2
    assert get(y2019, "icpc_days_from_s47_start", None, band, "11-15") == 1
    assert get(y2019, "icpc_days_from_s47_start", None, band, "16-20") == 1
    assert get(y2019, "icpc_days_from_s47_median") == pytest.approx(11.5)  # [0, 9, 14, 16]


# --- child protection plans ---------------------------------------------------------------


def test_cpp_starting_and_second_plans(y2019):
    # 901: A1 (NEG, first), A4 30 Nov 2018 (MUL; NumberOfPreviousCPP 0 but an earlier plan of
    # A4 is in the 2018 return -> second). 902: B2 (previous_cpps 2).
    assert get(y2019, "cpp_starting", "901") == 2
    assert get(y2019, "cpp_starting", None, "initial_category", "NEG") == 2
    assert get(y2019, "cpp_starting", None, "initial_category", "MUL") == 1
    assert get(y2019, "cpp_second_or_subsequent", "901") == 1
    assert get(y2019, "cpp_second_or_subsequent_pct", "902") == pytest.approx(100.0)
    assert get(y2019, "cpp_second_or_subsequent_pct") == pytest.approx(200 / 3)
    assert get(y2019, "cpp_starting_by_initial_category_pct", None, "initial_category", "NEG") == (
        pytest.approx(200 / 3)
    )


def test_cpp_at_31_march(y2019, y2018):
    # 2019: A1 (open; initial NEG, latest EMO) and B2. B1's plan has no end date but B1 is not in
    # the 2019 return -> not open. 2018: A7 (started 29 Mar 2018) and B1.
    assert get(y2019, "cpp_at_31_march", "901") == 1
    assert get(y2019, "cpp_at_31_march", "902") == 1
    assert get(y2019, "cpp_at_31_march", None, "latest_category", "EMO") == 1
    assert get(y2019, "cpp_at_31_march", None, "initial_category", "NEG") == 2
    # A1's plan (4 Jun 2018) at 31 Mar 2019: > 6 months, < 1 year.
    assert get(y2019, "cpp_at_31_march", "901", "duration_band", "6-12m") == 1
    assert get(y2019, "cpp_at_31_march_rate", "902") == pytest.approx(1 / 1440 * 10_000)
    assert get(y2018, "cpp_at_31_march", "901") == 1
    assert get(y2018, "cpp_at_31_march", "902") == 1


def test_cpp_ending_duration_bands(y2019, y2018):
    # A4: 30 Nov 2018 -> 28 Feb 2019; 30 Nov + 3 months clamps to 28 Feb -> "<=3m".
    # A7: 29 Mar -> 1 Jul 2018 (> 29 Jun) -> "3-6m".
    end = "cpp_ending"
    assert get(y2019, end, "901") == 2
    assert get(y2019, end, "901", "duration_band", "<=3m") == 1
    assert get(y2019, end, "901", "duration_band", "3-6m") == 1
    assert get(y2019, "cpp_ending_by_duration_pct", "901", "duration_band", "<=3m") == 50
    # 2018: A4's first plan 1 Jun -> 1 Dec 2017 = exactly 6 months -> "3-6m".
    assert get(y2018, end, "901", "duration_band", "3-6m") == 1


# --- building blocks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "band"),
    [
        ("2016-02-29", "2016-05-29", "<=3m"),  # + 3 months, inclusive
        ("2016-02-29", "2016-05-30", "3-6m"),
        ("2016-02-29", "2016-08-29", "3-6m"),  # + 6 months, inclusive
        ("2016-02-29", "2016-08-30", "6-12m"),
        ("2016-02-29", "2017-02-27", "6-12m"),
        ("2016-02-29", "2017-02-28", "1-2y"),  # 29 Feb + 1 year = 28 Feb: "1 year but < 2"
        ("2016-02-29", "2018-02-27", "1-2y"),
        ("2016-02-29", "2018-02-28", "2y+"),
        ("2019-11-30", "2020-02-29", "<=3m"),  # 30 Nov + 3 months = 29 Feb in a leap year
        ("2019-11-30", "2020-03-01", "3-6m"),
        ("2018-04-01", "2018-04-01", "<=3m"),
    ],
)
def test_month_duration_bands(start, end, band):
    defs = ind.load_definitions()
    got = pl.select(
        ind.month_duration_band_expr(
            pl.lit(dt.date.fromisoformat(start)),
            pl.lit(dt.date.fromisoformat(end)),
            defs.duration_bands,
        )
    ).item()
    assert got == band


@pytest.mark.parametrize(
    ("birth", "on", "band"),
    [
        ("2012-02-29", "2013-02-28", "under 1"),  # 29 Feb birthday reached on 1 March
        ("2012-02-29", "2013-03-01", "1-4"),
        ("2001-01-15", "2019-03-31", "16+"),
        ("2019-04-02", "2019-03-31", "unborn"),  # birth date after the reference date
        ("2014-03-31", "2019-03-31", "5-9"),  # 5th birthday on the day
        ("2014-04-01", "2019-03-31", "1-4"),
    ],
)
def test_age_band_expr(birth, on, band):
    got = pl.select(
        ind.age_band_expr(pl.lit(dt.date.fromisoformat(birth)), dt.date.fromisoformat(on))
    ).item()
    assert got == band


def test_working_day_bands():
    defs = ind.load_definitions()
    values = pl.DataFrame({"wd": [0, 1, 10, 11, 45, 46, 60, 61, None]})
    got = values.select(
        ind.working_day_band_expr(pl.col("wd"), defs.assessment_duration_bands)
    ).to_series()
    assert got.to_list() == [
        "same_day",
        "1-10",
        "1-10",
        "11-20",
        "41-45",
        "46-50",
        "51-60",
        "61+",
        None,
    ]


def test_population_year_choice(frames):
    pop = frames["population"]
    p2019 = ind.population_under_18(pop, 2019)
    years = dict(p2019.select("la_code", "population_year").unique().iter_rows())
    assert years == {"901": 2018, "902": 2017}  # 902: 2017 and 2019 tie -> earlier
    p2021 = ind.population_under_18(pop, 2021)  # wants mid-2020: nearest 2018 / 2019
    years = dict(p2021.select("la_code", "population_year").unique().iter_rows())
    assert years == {"901": 2018, "902": 2019}
    assert p2019.filter(pl.col("la_code") == "901")["population"].sum() == 3600


def test_census_window():
    assert ind.census_window(2018) == (dt.date(2017, 4, 1), dt.date(2018, 3, 31))


# --- inputs, options, definitions ---------------------------------------------------------


def test_multiple_years_and_family_functions(frames, y2019):
    both = ind.compute_indicators(frames, [2018, 2019], measures=["referrals"])
    assert set(both["census_year"]) == {2018, 2019}
    fam = ind.assessments(frames, 2019, geography=("la",))
    assert set(fam["geographic_level"]) == {ind.LOCAL_AUTHORITY}
    assert set(fam["measure"]) == {
        m.id for m in ind.load_definitions().measures if m.family == "assessments"
    }
    same = y2019.filter(pl.col("measure").is_in(fam["measure"].unique().to_list())).filter(
        pl.col("geographic_level") == ind.LOCAL_AUTHORITY
    )
    assert same.equals(fam)


def test_regional_level(frames):
    out = ind.compute_indicators(
        frames, 2019, ("national", "regional", "la"), regions={"901": "R1", "902": "R1"}
    )
    reg = out.filter(
        (pl.col("geographic_level") == ind.REGIONAL) & (pl.col("measure") == "referrals_rate")
    )
    assert reg["region_code"].to_list() == ["R1"]
    assert reg["value"].item() == pytest.approx(get(out, "referrals_rate"))
    las = out.filter(pl.col("geographic_level") == ind.LOCAL_AUTHORITY)
    assert set(las["region_code"]) == {"R1"}
    # 901/902 are not real LA codes: no region in the reference list.
    with pytest.warns(UserWarning, match="no LA has a region"):
        ind.compute_indicators(frames, 2019, ("regional",), measures=["referrals"])


def test_regions_default_to_the_la_reference_list(frames):
    pytest.importorskip("cinresearch.publication")
    # Relabel the fixture LAs as Camden (202, London) and Birmingham (330, West Midlands).
    relabel = {"901": "202", "902": "330"}
    real = {
        name: f.with_columns(pl.col("la_code").replace(relabel)) if "la_code" in f.columns else f
        for name, f in frames.items()
    }
    out = ind.compute_indicators(real, 2019, ("national", "regional", "la"), measures=["referrals"])
    reg = out.filter(pl.col("geographic_level") == ind.REGIONAL)
    assert dict(zip(reg["region_code"], reg["value"], strict=True)) == {
        "E12000005": 2.0,  # West Midlands
        "E12000007": 4.0,  # London
    }
    las = out.filter(pl.col("geographic_level") == ind.LOCAL_AUTHORITY)
    assert dict(zip(las["la_code"], las["region_code"], strict=True)) == {
        "202": "E12000007",
        "330": "E12000005",
    }


def test_missing_nested_table_is_skipped_with_warning(frames):
    partial = {k: v for k, v in frames.items() if k != "cp_plans"}
    with pytest.warns(UserWarning, match="cp_plans"):
        out = ind.compute_indicators(partial, 2019)
    assert not out.filter(pl.col("measure").str.starts_with("cpp")).height
    assert out.filter(pl.col("measure") == "referrals").height > 0


def test_missing_population_gives_null_rates(frames):
    no_pop = {k: v for k, v in frames.items() if k != "population"}
    out = ind.compute_indicators(no_pop, 2019, measures=["referrals_rate"])
    assert out["value"].null_count() == out.height
    assert get(out, "referrals_rate", "901", column="numerator") == 4


def test_same_result_from_store(tmp_path, frames, y2019):
    from cinresearch.store import Store

    store = Store(tmp_path / "store")
    typed = {name: ind.inputs._coerce(f.lazy()).collect() for name, f in frames.items()}
    store.commit_input(
        "fixture", file="fixture", sha256="0", kind="test", frames=typed, census_year=None
    )
    out = ind.compute_indicators(store, 2019)
    assert out.equals(y2019)


def test_same_result_from_journey_tables(frames, y2019):
    journeys = pytest.importorskip("cinresearch.journeys")
    typed = {name: ind.inputs._coerce(f.lazy()) for name, f in frames.items()}
    typed["referrals"] = typed["referrals"].with_columns(pl.lit(None, pl.Date).alias("icpc_date"))
    typed["children"] = typed["children"].with_columns(
        pl.lit(None, pl.String).alias("upn_hash"),
        pl.lit("WBRI").alias("ethnicity"),
        pl.lit(None, pl.Date).alias("death_date"),
    )
    merged, _ = journeys.merge_returns(typed)
    kids = journeys.build_children_longitudinal(typed["children"])
    episodes = journeys.build_episodes(merged, kids).collect()
    out = ind.compute_indicators(
        {
            "episodes": episodes,
            "assessments": merged["assessments"],
            "section47": merged["section47"],
            "cp_plans": merged["cp_plans"],
            "population": frames["population"],
        },
        2019,
        basis="revised",
    )
    assert out.equals(ind.compute_indicators(frames, 2019, basis="revised"))
    # 2019 is the last return in the fixture: revised and as-returned agree on every value.
    assert out.drop("basis").equals(y2019.drop("basis"))
    assert set(y2019["basis"]) == {"as_returned"} and set(out["basis"]) == {"revised"}


def test_definitions_are_consistent():
    defs = ind.load_definitions()
    meta = ind.indicator_metadata(defs)
    assert meta.height == len(defs.measures)
    assert set(meta["unit"]) <= {"count", "rate_per_10000", "percent", "working_days"}
    for m in defs.measures:
        assert m.definition and m.source, m.id
        assert (m.unit == "rate_per_10000") == (m.kind == "rate"), m.id
        assert (m.unit == "percent") == (m.kind in ("percent", "share", "multi_share")), m.id
        assert m.dp == (1 if m.kind in ("rate", "percent", "share", "multi_share") else 0), m.id
        for flag in (m.filter, m.numerator):
            assert flag is None or flag.isidentifier()
    assert defs.families == [
        "referrals",
        "re_referrals",
        "referrals_nfa",
        "assessed_not_in_need",
        "children_in_need_at_31_march",
        "episodes_in_year",
        "closure_reasons",
        "assessments",
        "assessment_factors",
        "section47",
        "icpcs",
        "cpp_starting",
        "cpp_at_31_march",
        "cpp_ending",
        "cpp_during_year",
    ]


def test_changed_definition_changes_result(tmp_path, frames):
    # Definitions live in data: widen the timeliness threshold to 46 working days.
    import yaml

    raw = yaml.safe_load(ind.DEFINITIONS_PATH.read_text())
    raw["settings"]["assessment_timeliness_working_days"] = 46
    path = tmp_path / "indicators.yaml"
    path.write_text(yaml.safe_dump(raw))
    defs = ind.load_definitions(path)
    out = ind.compute_indicators(
        frames, 2019, measures=["assessments_within_45_working_days_pct"], definitions=defs
    )
    assert get(out, "assessments_within_45_working_days_pct", "901") == pytest.approx(100.0)


def test_no_identifiers_in_output(y2019):
    text = y2019.write_csv()
    for child in ("A1", "A2", "A3", "A4", "A5", "A6", "A7", "B1", "B2", "B3"):
        assert f",{child}," not in text
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "child_id" not in y2019.columns
