"""Tests for cinresearch.cohorts against hand-worked episode tables.

Fixtures: tests/fixtures/cohorts/*.csv. Each episode there covers one edge case. Every
expected duration below was counted by hand from the fixture dates (2020 is a leap year).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from cinresearch import cohorts
from cinresearch.cohorts import (
    Cohort,
    age_band_expr,
    age_expr,
    birthday_expr,
    build_survival_frame,
    census_year_window,
    define_cohort,
    define_outcome,
    list_cohorts,
    list_outcomes,
    referral_source_group_expr,
    survival_frame,
)

FIXTURES = Path(__file__).parent / "fixtures" / "cohorts"
TEXT = {
    c: pl.String
    for c in ("episode_id", "child_id", "la_code", "referral_source", "upn_hash", "attrs")
}


def _read(name: str) -> pl.DataFrame:
    return pl.read_csv(FIXTURES / name, try_parse_dates=True, schema_overrides=TEXT)


@pytest.fixture(scope="module")
def episodes() -> pl.DataFrame:
    return _read("episodes.csv")


@pytest.fixture(scope="module")
def events() -> pl.DataFrame:
    return _read("events.csv")


@pytest.fixture(scope="module")
def cp_plans() -> pl.DataFrame:
    return _read("cp_plans.csv")


@pytest.fixture(scope="module")
def cla() -> pl.DataFrame:
    return _read("cla_episodes.csv")


@pytest.fixture(scope="module")
def npd() -> pl.DataFrame:
    return _read("npd_outcomes.csv")


def _row(frame: pl.DataFrame, subject_id: str) -> dict:
    rows = frame.filter(pl.col("subject_id") == subject_id).to_dicts()
    assert len(rows) == 1, f"{subject_id}: {len(rows)} rows"
    return rows[0]


def _reasons(result: cohorts.SurvivalFrame) -> dict[str, str]:
    return dict(result.excluded.select("subject_id", "reason").iter_rows())


def _assert_reconciles(result: cohorts.SurvivalFrame) -> None:
    rec = result.reconciliation
    n = {stage: rec.filter(pl.col("stage") == stage)["n"].sum() for stage in rec["stage"]}
    assert n["input"] == n.get("not in cohort", 0) + n["in cohort"]
    assert n["in cohort"] == n.get("excluded", 0) + n["rows out"]
    assert n["rows out"] == result.frame.height == n["end reason"]
    assert n.get("excluded", 0) == result.excluded.height
    frame = result.frame
    assert frame["subject_id"].n_unique() == frame.height
    assert (frame["duration"] >= 0).all()
    assert (frame["entry"] >= 0).all() and (frame["entry"] <= frame["duration"]).all()
    assert ((frame["event"] == 1) == (frame["event_type"] == 1)).all()


# --------------------------------------------------------------------------------------------
# Windows, definitions, presets
# --------------------------------------------------------------------------------------------


def test_census_year_window_is_1_april_to_31_march():
    assert census_year_window(2019, 2021) == (date(2018, 4, 1), date(2021, 3, 31))
    assert census_year_window(2020) == (date(2019, 4, 1), date(2020, 3, 31))
    with pytest.raises(ValueError):
        census_year_window(2021, 2019)


def test_cohort_validation_and_normalisation():
    c = Cohort("x", census_years=2020, la_codes="201", age_bands=["unborn"])
    assert c.census_years == (2020, 2020) and c.la_codes == ("201",)
    assert c.age_bands == ("unborn",)
    assert Cohort("w", window=("2019-01-01", "2019-12-31")).window_dates == (
        date(2019, 1, 1),
        date(2019, 12, 31),
    )
    with pytest.raises(ValueError, match="not both"):
        Cohort("x", census_years=(2019, 2020), window=(date(2019, 1, 1), date(2019, 2, 1)))
    with pytest.raises(ValueError, match="unknown age bands"):
        Cohort("x", age_bands=["0-4"])
    with pytest.raises(ValueError, match="origin"):
        Cohort("x", origin="assessment")
    # frozen and hashable; `where` is left out of equality
    a = Cohort("x", where=pl.col("sex") == "F")
    b = Cohort("x", where="sex = 'M'")
    assert a == b and hash(a) == hash(b)
    with pytest.raises(dataclasses_error()):
        a.name = "y"  # type: ignore[misc]


def dataclasses_error() -> type[Exception]:
    import dataclasses

    return dataclasses.FrozenInstanceError


def test_define_cohort_presets_overrides_and_dicts():
    c = define_cohort("referrals_2019_2021")
    assert c.census_years == (2019, 2021) and c.origin == "referral" and not c.exclude_nfa
    assert c.window_dates == (date(2018, 4, 1), date(2021, 3, 31))
    moved = define_cohort(c, window=(date(2020, 1, 1), date(2020, 6, 30)))
    assert moved.census_years is None and moved.window == (date(2020, 1, 1), date(2020, 6, 30))
    assert define_cohort("referrals_2019_2021", la_codes=["202"]).la_codes == ("202",)
    d = define_cohort({"name": "mine", "census_years": [2020, 2020], "age_bands": ["16+"]})
    assert d.name == "mine" and d.window_dates == (date(2019, 4, 1), date(2020, 3, 31))
    with pytest.raises(ValueError, match="named cohorts"):
        define_cohort("no_such_cohort")
    with pytest.raises(ValueError, match="unknown keys"):
        define_cohort({"census_year": 2020})


def test_list_cohorts_and_outcomes_cover_the_presets():
    table = list_cohorts()
    names = set(table["name"])
    assert {"referrals_2019_2021", "first_referrals_under_5", "cpp_ending_2020"} <= names
    cpp_end = table.filter(pl.col("name") == "cpp_ending_2020").row(0, named=True)
    assert cpp_end["origin"] == "cpp_end" and cpp_end["outcome"] == "next_cpp"
    assert (cpp_end["window_start"], cpp_end["window_end"]) == (date(2019, 4, 1), date(2020, 3, 31))
    outcomes = list_outcomes()
    assert set(outcomes["name"]) == {"cpp", "rereferral", "next_cpp", "care", "exclusion"}
    for name in table["name"]:  # every preset names a declared outcome
        assert define_cohort(name).outcome in set(outcomes["name"])
    cpp = define_outcome("cpp")
    assert cpp.competing == ("died", "closed_without_event")
    assert cpp.censor == ("data_end", "birthday_18", "left_la")
    with pytest.raises(ValueError, match="needs a cpp_"):
        define_outcome({"origin": "referral", "event": "next_cpp_start"})


@pytest.mark.parametrize(
    ("episode_id", "in_cohort"),
    [("E09", False), ("E08a", True), ("E08c", True), ("E10", False)],
    ids=["2018-03-31", "2018-04-01", "2021-03-31", "2021-04-01"],
)
def test_census_year_window_boundaries(episodes, episode_id, in_cohort):
    result = build_survival_frame(episodes, "referrals_2019_2021")
    kept = set(result.frame["subject_id"]) | set(result.excluded["subject_id"])
    assert (episode_id in kept) is in_cohort


def test_single_census_year_and_explicit_window_agree(episodes):
    by_year = build_survival_frame(episodes, Cohort("y2019", census_years=(2019, 2019)))
    by_dates = build_survival_frame(
        episodes, Cohort("d", window=(date(2018, 4, 1), date(2019, 3, 31)))
    )
    ids = set(by_year.frame["subject_id"]) | set(by_year.excluded["subject_id"])
    assert ids == {"E08a", "E08b", "E11", "E12", "E21", "E23a"}
    assert by_year.frame.equals(by_dates.frame)


# --------------------------------------------------------------------------------------------
# Referral → CPP: each edge case with its hand-worked answer
# --------------------------------------------------------------------------------------------

CPP_CASES = [
    # id, duration, event, event_type, end_reason, age_band
    ("E01", 0, 1, 1, "outcome", "1-4"),  # plan starts on the referral day
    ("E02", 0, 0, 2, "competing: closed without plan", "5-9"),  # NFA closed same day
    ("E03", 181, 0, 0, "censored: data end", "5-9"),  # open at 31 March 2021
    ("E04", 196, 0, 0, "censored: 18th birthday", "16+"),  # 18 on 2020-08-15
    ("E05", 66, 1, 1, "outcome", "unborn"),  # born 2019-08-28, referred before birth
    ("E06", 75, 0, 0, "censored: data end", "unborn"),  # expected birth only
    ("E07", 335, 0, 0, "censored: 18th birthday", "16+"),  # 18th from expected date
    ("E08a", 182, 0, 2, "competing: closed without plan", "10-15"),
    ("E08b", 45, 1, 1, "outcome", "10-15"),
    ("E08c", 0, 0, 0, "censored: data end", "10-15"),  # referred on 31 March
    ("E11", 50, 0, 2, "competing: died", "under 1"),  # died before RC2 closure
    ("E14", 61, 0, 0, "censored: left LA", "5-9"),  # closed RC5 (transferred)
    ("E15", 51, 0, 0, "censored: left LA", "1-4"),  # turned up in LA 202 (as C15B)
    ("E31", 30, 0, 0, "censored: data end", "1-4"),  # the new LA's record is not censored
    ("E16", 418, 1, 1, "outcome", "5-9"),
    ("E17", 31, 1, 1, "outcome", "1-4"),
    ("E22", 365, 0, 0, "censored: 18th birthday", "16+"),  # born 29 Feb: 18 on 1 March
]


@pytest.fixture(scope="module")
def cpp_result(episodes, events):
    # edge cases of follow-up; prior plans kept here (their exclusion is tested below)
    return build_survival_frame(
        episodes, "referrals_2019_2021", "cpp", events=events, prior_plans="keep"
    )


@pytest.mark.parametrize(("sid", "duration", "event", "etype", "reason", "band"), CPP_CASES)
def test_referral_to_cpp_edge_cases(cpp_result, sid, duration, event, etype, reason, band):
    row = _row(cpp_result.frame, sid)
    assert (row["duration"], row["event"], row["event_type"], row["end_reason"]) == (
        duration,
        event,
        etype,
        reason,
    )
    assert row["age_band"] == band
    assert row["entry"] == 0
    assert (row["end_date"] - row["origin_date"]).days == duration


def test_cpp_frame_columns_and_types(cpp_result):
    frame = cpp_result.frame
    assert frame.columns[:11] == [
        "subject_id",
        "episode_id",
        "child_id",
        "la_code",
        "origin_date",
        "end_date",
        "duration",
        "entry",
        "event",
        "event_type",
        "end_reason",
    ]
    for col in ("age_band", "disabled", "sex", "ethnicity_group", "primary_need"):
        assert col in frame.columns
    assert frame.schema["duration"] == pl.Int64 and frame.schema["entry"] == pl.Int64
    assert frame.schema["origin_date"] == pl.Date
    assert frame.schema["age_band"] == cohorts.AGE_BAND_DTYPE
    e03 = _row(frame, "E03")
    assert (e03["disabled"], e03["sex"], e03["primary_need"]) == (True, "M", "N4")
    assert e03["referral_source"] == "Schools and education services"  # 2A
    assert _row(frame, "E16")["referral_source"] == "Other legal agency"  # 7
    assert _row(frame, "E07")["age_at_origin"] == 17
    assert _row(frame, "E05")["age_at_origin"] is None


def test_cpp_flags_bad_rows_instead_of_dropping(cpp_result):
    assert _reasons(cpp_result) == {
        "E12": "outcome before origin",  # first_cpp_start before referral_date
        "E13": "closure before referral",
        "E21": "aged 18 or over at origin",
    }
    _assert_reconciles(cpp_result)
    rec = cpp_result.reconciliation
    assert rec.filter(pl.col("stage") == "input")["n"].item() == 34
    assert rec.filter(pl.col("stage") == "in cohort")["n"].item() == 30
    assert rec.filter(pl.col("stage") == "rows out")["n"].item() == 27


def test_several_episodes_per_child_give_one_row_each(cpp_result):
    c08 = cpp_result.frame.filter(pl.col("child_id") == "C08").sort("origin_date")
    assert c08["episode_id"].to_list() == ["E08a", "E08b", "E08c"]
    # prior CPP: E08b's plan (2019-04-15) precedes E08c's referral, not E08b's own
    assert c08["prior_cpp_seen"].to_list() == [False, False, True]
    assert c08["prior_cpp"].to_list() == [False, False, True]
    # previous_cpps >= 1 on the episode's first plan also counts as a prior plan
    e26 = _row(cpp_result.frame, "E26")
    assert e26["prior_cpp"] and not e26["prior_cpp_seen"]


def test_moves_before_origin_are_ignored_and_without_events_no_move_censoring(episodes):
    no_events = build_survival_frame(episodes, "referrals_2019_2021", "cpp")
    e15 = _row(no_events.frame, "E15")
    assert (e15["duration"], e15["end_reason"]) == (446, "censored: data end")


def test_common_data_end_caps_follow_up(episodes):
    result = build_survival_frame(episodes, "referrals_2019_2021", "cpp", data_end="2020-03-31")
    e16 = _row(result.frame, "E16")  # plan on 2020-06-01 is after the data end
    assert (e16["duration"], e16["event_type"], e16["end_reason"]) == (
        356,
        0,
        "censored: data end",
    )
    e04 = _row(result.frame, "E04")  # data end now comes before the 18th birthday
    assert (e04["duration"], e04["end_reason"]) == (59, "censored: data end")
    reasons = _reasons(result)
    assert reasons["E03"] == "origin after data end"
    assert reasons["E08c"] == "origin after data end"
    _assert_reconciles(result)


def test_cohort_filters_are_counted(episodes):
    result = build_survival_frame(episodes, define_cohort("referrals_2019_2021", exclude_nfa=True))
    assert not {"E02", "E18"} & set(result.frame["subject_id"])
    rec = result.reconciliation.filter(pl.col("reason") == "NFA referral")
    assert rec["n"].item() == 2
    only_202 = build_survival_frame(episodes, define_cohort("referrals_2019_2021", la_codes="202"))
    assert only_202.frame["subject_id"].to_list() == ["E31", "E17"]  # sorted by child_id
    _assert_reconciles(only_202)


def test_where_accepts_expressions_and_sql(episodes):
    expr = build_survival_frame(
        episodes, define_cohort("referrals_2019_2021", where=pl.col("primary_need") == "N4")
    )
    sql = build_survival_frame(
        episodes, define_cohort("referrals_2019_2021", where="primary_need = 'N4'")
    )
    assert expr.frame["subject_id"].to_list() == ["E03", "E14"]
    assert expr.frame.equals(sql.frame)
    _assert_reconciles(sql)


def test_first_referrals_under_5_preset(episodes, events):
    result = build_survival_frame(episodes, "first_referrals_under_5", events=events)
    expected = {"E01", "E05", "E06", "E11", "E15", "E17", "E26", "E31"}
    assert set(result.frame["subject_id"]) == expected
    # E26's first plan says one plan came before; only "exclude_any" acts on that
    anyp = build_survival_frame(
        episodes, "first_referrals_under_5", events=events, prior_plans="exclude_any"
    )
    assert _reasons(anyp)["E26"] == cohorts.EXCLUDED_PRIOR_CPP
    assert set(result.frame["age_band"].cast(pl.String)) <= {"unborn", "under 1", "1-4"}
    _assert_reconciles(result)


def test_lazy_input_and_children_table_give_the_same_frame(episodes, events):
    eager = survival_frame(episodes, "referrals_2019_2021", events=events)
    lazy = survival_frame(episodes.lazy(), "referrals_2019_2021", events=events.lazy())
    assert eager.equals(lazy)
    child_cols = ["birth_date", "expected_birth_date", "death_date", "sex", "ethnicity_group"]
    children = episodes.select("child_id", "la_code", *child_cols).unique(["child_id", "la_code"])
    from_children = survival_frame(
        episodes.drop(child_cols), "referrals_2019_2021", children=children, events=events
    )
    assert eager.equals(from_children)


def test_missing_columns_are_named(episodes):
    with pytest.raises(ValueError, match="first_cpp_start"):
        survival_frame(episodes.drop("first_cpp_start"), "referrals_2019_2021", "cpp")
    with pytest.raises(ValueError, match="birth_date"):
        survival_frame(episodes.drop("birth_date"), "referrals_2019_2021", "cpp")
    # data_end is derived from last_census_year when absent
    a = survival_frame(episodes.drop("data_end"), "referrals_2019_2021")
    assert a.equals(survival_frame(episodes, "referrals_2019_2021"))


# --------------------------------------------------------------------------------------------
# Delayed entry (left truncation)
# --------------------------------------------------------------------------------------------


def test_prevalent_cohort_enters_late_at_window_start(episodes):
    result = build_survival_frame(episodes, "episodes_open_2018_2024")
    assert result.analysis_start == date(2017, 4, 1)
    e19 = _row(result.frame, "E19")  # referred 2017-01-10, plan 2017-06-01
    assert (e19["entry"], e19["duration"], e19["event_type"]) == (81, 142, 1)
    assert _row(result.frame, "E09")["entry"] == 0  # referred 2018-03-31, after window start
    # E20's plan started (2016-12-01) before the window: never at risk inside it
    assert "E20" not in set(result.frame["subject_id"]) | set(result.excluded["subject_id"])
    removed = result.reconciliation.filter(pl.col("reason").str.starts_with("not at risk"))
    assert removed["n"].item() == 1
    _assert_reconciles(result)


def test_explicit_analysis_start_truncates_an_incident_cohort(episodes):
    result = build_survival_frame(episodes, "referrals_2019_2021", analysis_start="2019-04-01")
    e08b = _row(result.frame, "E08b")  # 2019-03-01 → 2019-04-15
    assert (e08b["entry"], e08b["duration"]) == (31, 45)
    e23a = _row(result.frame, "E23a")  # 2019-01-05 → closed 2019-04-10
    assert (e23a["entry"], e23a["duration"]) == (86, 95)
    assert _row(result.frame, "E01")["entry"] == 0
    reasons = _reasons(result)
    assert reasons["E08a"] == "follow-up ended before analysis start"  # closed 2018-09-30
    assert reasons["E11"] == "follow-up ended before analysis start"  # died 2019-03-01
    _assert_reconciles(result)


# --------------------------------------------------------------------------------------------
# Other outcomes
# --------------------------------------------------------------------------------------------


def test_rereferral_from_closure(episodes):
    result = build_survival_frame(episodes, "closures_2019_2021")
    assert result.outcome.name == "rereferral"
    expected = {
        "E08a": (152, 1, "outcome"),  # closed 2018-09-30, re-referred 2019-03-01
        "E08b": (424, 1, "outcome"),  # closed 2020-02-01, re-referred 2021-03-31
        "E23a": (0, 1, "outcome"),  # re-referred on the day of closure
        "E23b": (1005, 0, "censored: data end"),  # LA 201's last return: 2022-03-31
        "E17": (121, 0, "censored: data end"),  # LA 202's last return: 2020-03-31
    }
    for sid, (duration, etype, reason) in expected.items():
        row = _row(result.frame, sid)
        assert (row["duration"], row["event_type"], row["end_reason"]) == (
            duration,
            etype,
            reason,
        ), sid
    assert _reasons(result) == {
        "E11": "died before origin",
        "E13": "closure before referral",
    }
    _assert_reconciles(result)


def test_next_cpp_is_one_row_per_plan(episodes, cp_plans):
    result = build_survival_frame(episodes, "cpp_ending_2020", cp_plans=cp_plans)
    frame = result.frame
    assert sorted(frame["subject_id"]) == [
        "E01:2019-05-01",
        "E08b:2019-04-15",
        "E17:2019-08-01",
        "E26:2019-05-01",
    ]
    p1 = _row(frame, "E26:2019-05-01")  # ended 2019-10-01, next plan 2020-02-01
    assert (p1["duration"], p1["event_type"], p1["end_reason"]) == (123, 1, "outcome")
    assert p1["prior_cpp"] and not p1["prior_cpp_seen"]  # previous_cpps = 1 on the plan
    # C08's plan end comes from the later (2020) return; follow-up to LA 201's last return
    c08 = _row(frame, "E08b:2019-04-15")
    assert (c08["origin_date"], c08["duration"]) == (date(2019, 11, 20), 862)
    assert _row(frame, "E17:2019-08-01")["duration"] == 121
    assert list(_reasons(result).values()) == ["CP plan's episode not found in episodes"]
    assert result.reconciliation.filter(pl.col("reason") == "no cpp_end date")["n"].item() == 1
    _assert_reconciles(result)


def test_next_cpp_needs_plan_level_data(episodes):
    with pytest.raises(ValueError, match="cp_plans"):
        build_survival_frame(episodes, "cpp_ending_2020")
    with pytest.raises(ValueError, match="plan-level outcome"):
        build_survival_frame(episodes, "cpp_ending_2020", "cpp", cp_plans=_read("cp_plans.csv"))


def test_care_from_episodes_and_from_cla(episodes, cla):
    plain = build_survival_frame(episodes, "referrals_2019_2021_care")
    e24 = _row(plain.frame, "E24")
    assert (e24["duration"], e24["event_type"], e24["end_reason"]) == (61, 1, "outcome")
    e25 = _row(plain.frame, "E25")  # entered care only after the episode closed
    assert (e25["duration"], e25["event_type"], e25["end_reason"]) == (
        214,
        2,
        "competing: closed without entering care",
    )
    with_cla = build_survival_frame(episodes, "referrals_2019_2021_care", cla=cla)
    assert _row(with_cla.frame, "E24")["duration"] == 61  # first RNE "S", not the move
    assert _reasons(with_cla)["E26"] == "looked after at origin"
    _assert_reconciles(plain)
    _assert_reconciles(with_cla)


def test_exclusion_from_npd(episodes, npd):
    result = build_survival_frame(episodes, "referrals_school_age_2019_2021", npd=npd)
    expected = {
        # 2018/19 suspension ends before the referral (2019-09-10); next is 2020/21
        "E27": (721, 1, "outcome", date(2021, 8, 31)),
        "E28": (457, 0, "censored: no further NPD records", date(2020, 8, 31)),
        "E30": (335, 1, "outcome", date(2020, 8, 31)),  # permanent exclusion
    }
    assert set(result.frame["subject_id"]) == set(expected)
    for sid, (duration, etype, reason, end) in expected.items():
        row = _row(result.frame, sid)
        assert (row["duration"], row["event_type"], row["end_reason"], row["end_date"]) == (
            duration,
            etype,
            reason,
            end,
        ), sid
    assert _reasons(result)["E29"] == "not linked to NPD"
    _assert_reconciles(result)
    with pytest.raises(ValueError, match="npd"):
        build_survival_frame(episodes, "referrals_school_age_2019_2021")


def test_every_preset_reconciles(episodes, events, cp_plans, cla, npd):
    for name in list_cohorts()["name"]:
        result = build_survival_frame(
            episodes, name, events=events, cp_plans=cp_plans, cla=cla, npd=npd
        )
        _assert_reconciles(result)


# --------------------------------------------------------------------------------------------
# Expressions
# --------------------------------------------------------------------------------------------


def test_age_band_boundaries():
    df = pl.DataFrame(
        {
            "birth_date": [date(2015, 6, 10)] * 6 + [None, None, None],
            "expected_birth_date": [None] * 6 + [date(2020, 1, 1), date(2010, 1, 1), None],
            "at": [
                date(2015, 6, 9),
                date(2016, 6, 9),
                date(2016, 6, 10),
                date(2020, 6, 10),
                date(2031, 6, 9),
                date(2031, 6, 10),
                date(2019, 12, 31),
                date(2019, 12, 31),
                date(2019, 12, 31),
            ],
        },
        schema_overrides={"birth_date": pl.Date, "expected_birth_date": pl.Date},
    )
    bands = df.select(age_band_expr("at"))["age_band"].cast(pl.String).to_list()
    assert bands == ["unborn", "under 1", "1-4", "5-9", "10-15", "16+", "unborn", "5-9", None]


def test_birthdays_and_ages_for_29_february():
    df = pl.DataFrame(
        {"b": [date(2004, 2, 29), date(2000, 2, 29), date(2006, 2, 28), date(2002, 3, 1)]}
    )
    out = df.select(
        b18=birthday_expr("b", 18),
        b20=birthday_expr("b", 20),
        age=age_expr("b", pl.lit(date(2022, 2, 28))),
    )
    assert out["b18"].to_list() == [
        date(2022, 3, 1),
        date(2018, 3, 1),
        date(2024, 2, 28),
        date(2020, 3, 1),
    ]
    assert out["b20"].to_list()[1] == date(2020, 2, 29)  # leap year keeps 29 February
    assert out["age"].to_list() == [17, 21, 16, 19]  # 2006-02-28: 16 that day


def test_referral_source_groups_by_leading_number():
    df = pl.DataFrame({"s": ["1A", "3B", "5D", "6", "10", " 2b ", None, "99"]})
    assert df.select(referral_source_group_expr("s"))["s"].to_list() == [
        "Individual",
        "Health services",
        "LA services",
        "Police",
        "Unknown",
        "Schools and education services",
        None,
        None,
    ]


def test_frame_feeds_lifelines_with_delayed_entry(episodes):
    lifelines = pytest.importorskip("lifelines")
    frame = survival_frame(episodes, "episodes_open_2018_2024").to_pandas()
    km = lifelines.KaplanMeierFitter().fit(frame["duration"], frame["event"], entry=frame["entry"])
    assert 0.0 <= float(km.survival_function_.iloc[-1, 0]) <= 1.0


# --------------------------------------------------------------------------------------------
# Prior plans: history-aware first-plan risk sets
# --------------------------------------------------------------------------------------------

_PRIOR_EPISODES = [
    # K1: late entrant; a plan that ended before the first return was never sent, the
    # next plan (2017-09-01) says NumberOfPreviousCPP = 1
    ("K1", "K1", "2016-06-01", None, "2017-09-01", 1),
    # K2: late entrant whose first plan really is the first
    ("K2", "K2", "2016-06-01", None, "2017-09-01", 0),
    # K3: two episodes; the second is referred after the first one's plan
    ("K3a", "K3", "2017-05-01", "2017-12-01", "2017-06-01", 0),
    ("K3b", "K3", "2018-06-01", None, "2018-07-01", 1),
    # K4: first plan says 3 earlier plans (ended before the first return)
    ("K4", "K4", "2018-01-01", None, "2018-02-01", 3),
    # K5: late entrant, no plan at all
    ("K5", "K5", "2016-01-01", None, None, None),
]


def _prior_episodes() -> pl.DataFrame:
    rows = [
        {
            "episode_id": e,
            "child_id": c,
            "la_code": "201",
            "referral_date": ref,
            "closure_date": close,
            "closure_reason": "RC7" if close else None,
            "data_end": "2019-03-31",
            "birth_date": "2010-01-01",
            "expected_birth_date": None,
            "death_date": None,
            "first_cpp_start": cpp,
            "previous_cpps": prev,
        }
        for e, c, ref, close, cpp, prev in _PRIOR_EPISODES
    ]
    dates = ["referral_date", "closure_date", "data_end", "birth_date", "first_cpp_start"]
    return pl.DataFrame(rows, infer_schema_length=None).with_columns(
        *(pl.col(d).str.to_date() for d in dates),
        pl.col("expected_birth_date", "death_date").cast(pl.Date),
    )


def test_prior_plans_counted_from_history_and_previous_cpps():
    result = build_survival_frame(
        _prior_episodes(), "episodes_open_2018_2024", "cpp", prior_plans="keep"
    )
    n_prior = dict(result.frame.select("subject_id", "n_prior_cpp").iter_rows())
    assert n_prior == {"K1": 1, "K2": 0, "K3a": 0, "K3b": 1, "K4": 3, "K5": 0}
    prior = dict(result.frame.select("subject_id", "prior_cpp").iter_rows())
    assert prior == {k: v > 0 for k, v in n_prior.items()}
    at_start = result.frame.filter(pl.col("prior_cpp_at_start"))["subject_id"].to_list()
    assert at_start == ["K3b"]
    # only K3b's earlier plan was seen before its origin
    seen = result.frame.filter(pl.col("prior_cpp_seen"))["subject_id"].to_list()
    assert seen == ["K3b"]


def test_first_plan_analysis_excludes_prior_plans_by_default():
    # default: only plans known at the follow-up start (no look-ahead)
    result = build_survival_frame(_prior_episodes(), "episodes_open_2018_2024", "cpp")
    assert sorted(result.frame["subject_id"]) == ["K1", "K2", "K3a", "K4", "K5"]
    assert _reasons(result) == {"K3b": cohorts.EXCLUDED_PRIOR_CPP}
    _assert_reconciles(result)
    # "exclude_any" also uses NumberOfPreviousCPP on later plans
    result = build_survival_frame(
        _prior_episodes(), "episodes_open_2018_2024", "cpp", prior_plans="exclude_any"
    )
    assert sorted(result.frame["subject_id"]) == ["K2", "K3a", "K5"]
    assert _reasons(result) == {
        "K1": cohorts.EXCLUDED_PRIOR_CPP,
        "K3b": cohorts.EXCLUDED_PRIOR_CPP,
        "K4": cohorts.EXCLUDED_PRIOR_CPP,
    }
    rec = result.reconciliation.filter(pl.col("reason") == cohorts.EXCLUDED_PRIOR_CPP)
    assert rec["n"].item() == 3
    _assert_reconciles(result)
    # late entrants kept enter at the window start
    assert _row(result.frame, "K2")["entry"] == (date(2017, 4, 1) - date(2016, 6, 1)).days
    with pytest.raises(ValueError, match="prior_plans"):
        build_survival_frame(_prior_episodes(), "episodes_open_2018_2024", prior_plans="drop")


def test_prior_plans_from_cp_plans_of_earlier_returns():
    # cp_plans holds a 2017 plan of K5 in an earlier return that the episode does not carry,
    # and K2's plans (0 then 1 previous): K2's first plan is the first, so it stays
    plans = pl.DataFrame(
        {
            "child_id": ["K5", "K2", "K2"],
            "la_code": ["201"] * 3,
            "census_year": [2017, 2018, 2019],
            "referral_date": ["2015-01-01", "2016-06-01", "2016-06-01"],
            "cpp_start": ["2015-02-01", "2017-09-01", "2018-09-01"],
            "cpp_end": ["2015-08-01", "2018-01-01", None],
            "previous_cpps": [0, 0, 1],
        }
    ).with_columns(pl.col(c).str.to_date() for c in ("referral_date", "cpp_start", "cpp_end"))
    result = build_survival_frame(
        _prior_episodes(), "episodes_open_2018_2024", "cpp", cp_plans=plans, prior_plans="keep"
    )
    n_prior = dict(result.frame.select("subject_id", "n_prior_cpp").iter_rows())
    assert n_prior["K5"] == 1 and n_prior["K2"] == 0
    assert _row(result.frame, "K5")["prior_cpp_at_start"]  # seen in an earlier return


def test_disability_is_the_one_recorded_at_referral_not_the_latest(episodes, events):
    """``disabled_at_referral`` (the return of the referral's year) wins over the child's
    latest ``disabled``; where it is null (no return gives it) the latest is used."""
    ids = ["E01", "E16", "E17"]
    at_referral = {"E01": True, "E16": False, "E17": None}
    marked = episodes.with_columns(
        disabled=pl.when(pl.col("episode_id") == "E16").then(True).otherwise("disabled"),
        disabled_at_referral=pl.col("episode_id").replace_strict(
            at_referral, default=None, return_dtype=pl.Boolean
        ),
    )
    result = build_survival_frame(
        marked, "referrals_2019_2021", "cpp", events=events, prior_plans="keep"
    )
    got = {i: _row(result.frame, i)["disabled"] for i in ids}
    latest_e17 = episodes.filter(pl.col("episode_id") == "E17")["disabled"].item()
    assert got == {"E01": True, "E16": False, "E17": latest_e17}
