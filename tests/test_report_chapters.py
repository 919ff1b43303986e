"""Unit tests for the chapter helpers in cinresearch.report.chapters (data quality, journeys,
benchmarking, outcomes), each on a tiny hand-made store or frame with answers worked out by
hand."""

from __future__ import annotations

import math
from datetime import date

import matplotlib

matplotlib.use("Agg")

import polars as pl  # noqa: E402
import pytest  # noqa: E402
from test_report_scope import commit_input  # noqa: E402

from cinresearch.pseudonymise import DEMO_KEY, Pseudonymiser  # noqa: E402
from cinresearch.report.chapters import benchmarking, data_quality, journeys, outcomes  # noqa: E402
from cinresearch.store import Store  # noqa: E402


@pytest.fixture
def demo_id() -> str:
    return Pseudonymiser(DEMO_KEY).key_id


def test_inputs_and_element_reconciliation(tmp_path, demo_id):
    store = Store(tmp_path / "s")
    cin_counts = {
        "rows": {"children": 10, "referrals": 12},
        "elements": {
            "Child": {"read": 11, "loaded": 10, "rejected": 1},
            "CINdetails": {"read": 12, "loaded": 12, "rejected": 0},
        },
        "rejected": 1,
        "flagged": 2,
        "balanced": True,
    }
    commit_input(
        store, "cin_2019_201", "cin_xml", year=2019, la="201", key_id=demo_id, counts=cin_counts
    )
    commit_input(
        store, "cin_2020_201", "cin_xml", year=2020, la="201", key_id=demo_id, counts=cin_counts
    )
    commit_input(
        store, "cin_2019_890", "cin_xml", year=2019, la="890", key_id=demo_id, counts=cin_counts
    )
    csv_counts = {
        "rows": {"npd": 5},
        "elements": {"row": {"read": 6, "loaded": 5, "rejected": 1, "blank_lines": 0}},
        "rejected": 1,
        "balanced": True,
    }
    commit_input(store, "npd_2019", "npd", counts=csv_counts)
    inputs = data_quality.inputs_frame(store, up_to=2019)
    assert inputs.height == 3  # the 2020 return is after census year 2019; the NPD has no year
    cin = inputs.filter(pl.col("kind") == data_quality.KIND_LABELS["cin_xml"])
    assert cin["children"].to_list() == [10, 10] and cin["records_loaded"].to_list() == [22, 22]
    assert data_quality.inputs_frame(store, "890").height == 1
    recon = data_quality.element_reconciliation(store)
    child = recon.filter(pl.col("element") == "Child").row(0, named=True)
    assert (child["inputs"], child["read"], child["loaded"], child["rejected"]) == (3, 33, 30, 3)
    assert recon["unaccounted"].to_list() == [0, 0, 0]
    assert "record (row)" in recon["element"].to_list()


def test_load_run_frame(tmp_path):
    store = Store(tmp_path / "s")
    assert data_quality.load_run_frame(store).is_empty()
    store.write_json(
        "reports/load_report.json",
        {"files": [{"file": "a.xml", "kind": "cin_xml", "status": "failed", "message": "a.xml:3"}]},
    )
    assert data_quality.load_run_frame(store).row(0) == (
        "a.xml",
        "CIN census return (XML)",
        "failed",
        "a.xml:3",
    )


def test_field_completeness_counts_rows_for_a_literal_condition():
    frame = pl.DataFrame(
        {
            "la_code": ["201"] * 4,
            "census_year": [2019] * 4,
            "ethnicity": ["WBRI", None, "REFU", "AIND"],
            "closure_date": [date(2019, 1, 1), None, date(2019, 2, 1), None],
            "closure_reason": ["RC7", None, None, None],
        }
    )
    out = data_quality.field_completeness(
        frame,
        {
            "Ethnicity": (
                pl.lit(True),
                pl.col("ethnicity").is_not_null() & ~pl.col("ethnicity").is_in(["REFU"]),
            ),
            "Closure reason": (
                pl.col("closure_date").is_not_null(),
                pl.col("closure_reason").is_not_null(),
            ),
        },
    )
    rows = {r["field"]: (r["records"], r["complete"], r["pct"]) for r in out.iter_rows(named=True)}
    assert rows == {"Ethnicity": (4, 2, 50.0), "Closure reason": (2, 1, 50.0)}


def _episodes() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "child_id": ["a", "b", "c", "d", "a"],
            "la_code": ["201"] * 5,
            "referral_date": [
                date(2018, 5, 1),
                date(2018, 6, 1),
                date(2019, 3, 1),
                date(2019, 4, 1),
                date(2019, 4, 2),
            ],
            "closure_date": [date(2018, 5, 1), None, date(2019, 6, 1), date(2020, 1, 1), None],
            "referral_nfa": [True, False, False, False, False],
            "first_assessment_start": [None, date(2018, 6, 2), date(2019, 3, 2), None, None],
            "first_s47_start": [None, date(2018, 6, 3), None, None, None],
            "first_icpc_date": [None, date(2018, 6, 20), None, None, None],
            "first_cpp_start": [None, date(2018, 6, 21), None, None, None],
            "open_at_31_march": [[], [2019, 2020], [2019], [], [2020]],
        },
        schema_overrides={"open_at_31_march": pl.List(pl.Int16)},
    )


def test_journey_flow_by_hand():
    flow = journeys.journey_flow(_episodes(), [2019, 2020, 2021])
    y2019 = flow.filter(pl.col("census_year") == 2019)
    assert y2019["episodes"].to_list() == [3, 2, 2, 1, 1, 1]
    assert y2019["pct_of_referrals"].to_list() == pytest.approx(
        [100, 200 / 3, 200 / 3, 100 / 3, 100 / 3, 100 / 3]
    )
    assert y2019["pct_of_previous"].to_list()[:3] == pytest.approx([None, 200 / 3, 100.0])
    y2021 = flow.filter(pl.col("census_year") == 2021)  # no referrals: zeros, no percentages
    assert y2021["episodes"].sum() == 0 and y2021["pct_of_referrals"].null_count() == 6


def test_episodes_by_year_by_hand():
    out = journeys.episodes_by_year(_episodes(), [2019, 2020])
    assert out.rows(named=True) == [
        {
            "census_year": 2019,
            "referrals": 3,
            "nfa": 1,
            "children_referred": 3,
            "open_at_31_march": 2,
            "closed": 1,
        },
        {
            "census_year": 2020,
            "referrals": 2,
            "nfa": 0,
            "children_referred": 2,
            "open_at_31_march": 2,
            "closed": 2,
        },
    ]


def test_sample_journeys_picks_children_with_a_plan_inside_the_window():
    episodes = _episodes()
    events = pl.DataFrame(
        {
            "child_id": ["a", "b", "b", "c"],
            "la_code": ["201"] * 4,
            "date": [date(2018, 5, 1), date(2018, 6, 1), date(2018, 6, 21), date(2019, 3, 1)],
            "event": ["referral", "referral", "cpp_start", "referral"],
            "seq": [1, 1, 2, 1],
        }
    )
    sample = journeys.sample_journeys(episodes, events, 5, 2019, 2019)
    assert sample["child_id"].unique().to_list() == ["b"] and sample.height == 2
    assert journeys.sample_journeys(episodes, events, 5, 2020, 2020).is_empty()


def test_merge_audit_summary_by_la():
    audit = pl.DataFrame(
        {
            "table": ["referrals", "referrals", "referrals"],
            "key": ["c1|201|2019-01-01", "c1|201|2019-01-01", "c2|890|2019-02-01"],
            "column": ["closure_date", "closure_date", "closure_date"],
            "conflict": [False, True, False],
        }
    )
    assert journeys.merge_audit_summary(audit).row(0) == ("referrals", "closure_date", 2, 3, 1)
    assert journeys.merge_audit_summary(audit, "890").row(0) == (
        "referrals",
        "closure_date",
        1,
        1,
        0,
    )


def _indicators() -> pl.DataFrame:
    rows = [
        ("National", None, 100.0, 10_000.0, 100.0),
        ("Local authority", "201", 60.0, 5_000.0, 120.0),
        ("Local authority", "202", 37.0, 4_000.0, 92.5),
        ("Local authority", "203", 3.0, 1_000.0, 30.0),
    ]
    return pl.DataFrame(
        [
            {
                "geographic_level": g,
                "la_code": la,
                "census_year": 2021,
                "measure": "referrals_rate",
                "breakdown": "total",
                "breakdown_level": "Total",
                "numerator": n,
                "denominator": d,
                "value": v,
                "unit": "rate_per_10000",
            }
            for g, la, n, d, v in rows
        ]
    )


def test_funnel_figure_hides_small_las():
    from matplotlib.figure import Figure

    fig, note = benchmarking.funnel_figure(_indicators(), "referrals_rate", 2021, "202")
    assert isinstance(fig, Figure)
    assert note == "1 LA(s) with a count from 1 to 5 are not plotted."
    fig, note = benchmarking.funnel_figure(_indicators(), "referrals_rate", 2021, "203")
    assert note.endswith("LA 203 is not plotted (small numbers).")
    counts = _indicators().with_columns(unit=pl.lit("count"))
    assert benchmarking.funnel_figure(counts, "referrals_rate", 2021)[0] is None
    assert benchmarking.funnel_figure(_indicators(), "referrals_rate", 2020) == (
        None,
        "no England value",
    )


def test_neighbour_list_falls_back_to_nearest_las():
    frame = _indicators()
    # referrals_rate is one of the fallback measures: 202 (92.5) is nearer 201 (120) than 203
    peers, source = benchmarking.neighbour_list(frame, "201", 2021)
    assert peers == ["202", "203"] and "most similar" in source
    other = frame.with_columns(measure=pl.lit("something_else"))
    peers, source = benchmarking.neighbour_list(other, "201", 2021)
    assert peers == [] and "no statistical neighbours" in source  # said in words, no warning


def test_measure_labels_and_trend_figure():
    labels = benchmarking.measure_labels()
    assert labels["referrals_rate"].startswith("Referrals per 10,000")
    series = pl.DataFrame(
        {
            "census_year": [2020, 2021, 2020, 2021],
            "measure": ["referrals_rate"] * 4,
            "area": ["LA 201", "LA 201", "England", "England"],
            "value": [100.0, 110.0, 90.0, 95.0],
            "numerator": [50.0, 3.0, None, None],
        }
    )
    fig = benchmarking.trend_figure(series, ["referrals_rate"], "Over time")
    line = fig.axes[0].get_lines()[0]
    ys = list(line.get_ydata())
    assert ys[0] == 100.0 and math.isnan(ys[1])  # the small count is not drawn


def test_need_groups():
    frame = pl.DataFrame({"primary_need": ["N1", "N2", "N5", "N9", None]})
    assert frame.select(outcomes.need_group_expr()).to_series().to_list() == [
        "Abuse or neglect",
        "Disability or illness",
        "Family stress",
        "Other needs",
        "Not recorded",
    ]


def test_education_outcomes_by_hand():
    npd = pl.DataFrame(
        {
            "upn_hash": ["u1", "u2", "u3", "u4", "u1"],
            "academic_year": [2020, 2020, 2020, 2020, 2019],
            "la_code": ["201"] * 5,
            "sessions_possible": [100, 100, 200, 100, 100],
            "sessions_absent": [20, 10, 10, 0, 5],
            "persistent_absence": [True, True, False, False, False],
            "suspensions": [1, 0, 0, 2, 0],
            "permanent_exclusion": [False, False, False, False, False],
            "ks2_rwm_expected": [None, True, False, None, None],
            "ks4_attainment8": [30.0, None, None, 50.0, None],
        },
        schema_overrides={"academic_year": pl.Int16, "suspensions": pl.Int16},
    )
    episodes = pl.DataFrame(
        {
            "upn_hash": ["u1", "u2", "u3", "u4"],
            "la_code": ["201"] * 4,
            # u1 open in 2019/20; u2 closed before it (earlier); u3 NFA; u4 assessed not in need
            "referral_date": [
                date(2019, 10, 1),
                date(2018, 1, 1),
                date(2019, 10, 1),
                date(2019, 10, 1),
            ],
            "closure_date": [None, date(2018, 6, 1), date(2019, 10, 1), date(2019, 11, 1)],
            "closure_reason": [None, "RC7", "RC7", "RC8"],
            "referral_nfa": [False, False, True, False],
        }
    )
    out = outcomes.education_outcomes(npd, episodes, [2019, 2020])
    y2020 = {
        r["group"]: r for r in out.filter(pl.col("academic_year") == 2020).iter_rows(named=True)
    }
    assert list(y2020) == ["In need this year", "In need in an earlier year", "Other pupils"]
    cin = y2020["In need this year"]
    assert (cin["pupils"], cin["absence_rate"], cin["suspended"], cin["attainment8_mean"]) == (
        1,
        20.0,
        1,
        30.0,
    )
    earlier = y2020["In need in an earlier year"]
    assert earlier["pupils"] == 1 and earlier["ks2_expected_pct"] == 100.0
    other = y2020["Other pupils"]  # u3 (NFA) and u4 (assessed not in need)
    assert other["pupils"] == 2 and other["absence_rate"] == pytest.approx(100 * 10 / 300)
    assert other["suspended_pct"] == 50.0 and other["ks4_pupils"] == 1
    # in 2018/19 u1 (the only pupil with a row) had not been referred yet
    y2019 = out.filter(pl.col("academic_year") == 2019)
    assert y2019["group"].to_list() == ["Other pupils"]
    assert outcomes.education_outcomes(npd, episodes, [2020], la_code="890").is_empty()


def test_school_gap_text_by_hand():
    latest = pl.DataFrame(
        {
            "group": ["In need this year", "In need in an earlier year", "Other pupils"],
            "pupils": [40, 2, 200],
            "absence_rate": [12.25, 9.0, 5.0],
            "suspended": [10, 1, 3],
        }
    )
    # 12.25 is exact in binary: half up gives 12.3 (Python's format would give 12.2);
    # 10 of 40 = 25.0%; 3 suspended other pupils is a confidential count
    assert outcomes.school_gap_text(latest) == (
        "Pupils in need this year missed **12.3%** of school sessions, against 5.0% for other "
        "pupils; 25.0% of them were suspended at least once, against a suppressed share "
        "(small numbers)."
    )
    # the earlier-year group (2 pupils) is not compared, so does not stop the sentence; a
    # confidential number of pupils in a compared group does, and so does a missing group
    few = latest.with_columns(pupils=pl.Series([5, 2, 200]))
    assert outcomes.school_gap_text(few) is None
    assert outcomes.school_gap_text(few, threshold=4) is not None
    assert outcomes.school_gap_text(latest.filter(pl.col("group") != "Other pupils")) is None
