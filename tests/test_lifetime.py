"""Lifetime (cumulative) risk by birth cohort: :mod:`cinresearch.lifetime`.

Hand-worked answers for the life-table estimator and its Wilson interval, tiny hand-made
journeys for the cohort, age, linkage and geography rules, a simulation for interval coverage,
and the generator's planted first-referral risk (:mod:`cinresearch.synth.implied`) recovered
end to end from generated returns.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from cinresearch import lifetime as lt
from cinresearch.synth.implied import first_referral_risk

# --------------------------------------------------------------------------------------------
# the estimator, by hand
# --------------------------------------------------------------------------------------------


def _counts(population: list[float | None], events: list[int], key: str = "a") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "key": [key] * len(events),
            "age": list(range(len(events))),
            "population": population,
            "events": events,
        },
        schema={"key": pl.String, "age": pl.Int32, "population": pl.Float64, "events": pl.Int64},
    )


def test_life_table_and_interval_worked_by_hand() -> None:
    out = lt.cumulative_risk(_counts([10.0, 12.0], [2, 3]), ["key"]).sort("age")
    # age 0: at risk 10, q = 2/10, F = 0.2. Greenwood: (1-F)^2 * 2/(10*8) = 0.64 * 0.025 = 0.016
    # = F(1-F)/10, so the effective n is 10 and the interval is Wilson's for 2 of 10, z = 1.959964:
    # centre (0.2 + z^2/20)/(1 + z^2/10) = 0.392073/1.384146 = 0.283259,
    # half z/1.384146 * sqrt(0.016 + z^2/400) = 1.416009 * 0.160012 = 0.226579
    # -> 0.056682 to 0.509836 (R: prop.test(2, 10, correct = FALSE)$conf.int).
    # age 1: 12 children, 2 already counted -> at risk 10, q = 3/10, F = 1 - 0.8 * 0.7 = 0.44.
    # Greenwood sum 0.025 + 3/(10*7) = 0.0678571, variance 0.56^2 * 0.0678571 = 0.0212800,
    # effective n = 0.44 * 0.56 / 0.02128 = 11.578947; z^2/n = 0.331763,
    # centre (0.44 + 0.165882)/1.331763 = 0.454947,
    # half z/1.331763 * sqrt(0.2464/11.578947 + z^2/(4 * 134.071)) = 1.471707 * 0.168651 = 0.248205
    # -> 0.206742 to 0.703152.
    assert out["at_risk"].to_list() == [10.0, 10.0]
    assert out["cumulative_events"].to_list() == [2, 5]
    assert out["cumulative_risk"].to_list() == pytest.approx([0.2, 0.44], abs=1e-12)
    assert out["ci_low"].to_list() == pytest.approx([0.056682, 0.206742], abs=2e-6)
    assert out["ci_high"].to_list() == pytest.approx([0.509836, 0.703152], abs=2e-6)


def test_unchanging_population_gives_the_plain_share_and_binomial_wilson() -> None:
    # 20 children at every age; 2, 3 and 5 first events: the product telescopes to 10/20, and
    # Greenwood's variance is the binomial one, so the interval is Wilson's for 10 of 20:
    # centre 0.5, half z/(1 + z^2/20) * sqrt(0.25/20 + z^2/1600) = 1.644155 * 0.122071 = 0.200702
    # (R: prop.test(10, 20, correct = FALSE)$conf.int = 0.299298 0.700702).
    out = lt.cumulative_risk(_counts([20.0, 20.0, 20.0], [2, 3, 5]), ["key"]).sort("age")
    assert out["cumulative_risk"].to_list() == pytest.approx([0.1, 0.25, 0.5], abs=1e-12)
    assert out["ci_low"][2] == pytest.approx(0.299298, abs=2e-6)
    assert out["ci_high"][2] == pytest.approx(0.700702, abs=2e-6)


def test_zero_events_and_missing_population() -> None:
    out = lt.cumulative_risk(_counts([100.0, None, 100.0], [0, 1, 1]), ["key"]).sort("age")
    # no events yet: risk 0, Wilson upper limit at n = 100 is z^2/(100 + z^2) = 0.036994
    assert out["cumulative_risk"][0] == 0.0 and out["ci_low"][0] == 0.0
    assert out["ci_high"][0] == pytest.approx(3.841459 / 103.841459, abs=1e-6)
    # a missing population stops the life table: no risk from there on
    assert out["cumulative_risk"][1:].to_list() == [None, None]


def _simulate_coverage(population: list[int], hazards: list[float], reps: int, seed: int) -> float:
    """Share of ``reps`` cohorts whose interval at the last age covers the true risk.

    Children not yet counted at each age have a first event with probability ``hazards[a]``;
    the population at age ``a`` is ``population[a]`` (newcomers never had one).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for rep in range(reps):
        counted = 0
        for age, (size, q) in enumerate(zip(population, hazards, strict=True)):
            d = int(rng.binomial(size - counted, q))
            rows.append((rep, age, float(size), d))
            counted += d
    counts = pl.DataFrame(
        rows,
        schema={"rep": pl.Int64, "age": pl.Int32, "population": pl.Float64, "events": pl.Int64},
        orient="row",
    )
    truth = 1 - float(np.prod([1 - q for q in hazards]))
    last = lt.cumulative_risk(counts, ["rep"]).filter(pl.col("age") == len(hazards) - 1)
    return float(((last["ci_low"] <= truth) & (truth <= last["ci_high"])).mean())


@pytest.mark.parametrize(
    "population",
    [[400, 400, 400, 400], [380, 400, 430, 460]],
    ids=["closed_cohort", "children_moving_in"],
)
def test_interval_covers_the_true_risk_95_percent_of_the_time(population: list[int]) -> None:
    # 1,000 cohorts: the coverage of a 95% interval has SE 0.007, so 0.93-0.97 is +-3 SE
    coverage = _simulate_coverage(population, [0.06, 0.02, 0.02, 0.015], reps=1000, seed=16)
    assert 0.93 <= coverage <= 0.97, coverage


# --------------------------------------------------------------------------------------------
# cohorts, ages, linkage and geography on hand-made journeys
# --------------------------------------------------------------------------------------------

CHILD_SCHEMA = {
    "child_id": pl.String,
    "la_code": pl.String,
    "upn_hash": pl.String,
    "birth_date": pl.Date,
    "sex": pl.String,
    "ethnicity_group": pl.String,
    "disabled": pl.Boolean,
    "first_census_year": pl.Int16,
    "last_census_year": pl.Int16,
}


def _children(rows: list[tuple]) -> pl.DataFrame:
    """(child_id, la_code, upn_hash, birth_date, sex[, ethnicity_group, disabled]); data 2018-21."""
    full = [(*r, *[None] * (7 - len(r)), 2018, 2021) for r in rows]
    return pl.DataFrame(full, schema=CHILD_SCHEMA, orient="row")


def _events(rows: list[tuple[str, str, date, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"child_id": pl.String, "la_code": pl.String, "date": pl.Date, "event": pl.String},
        orient="row",
    )


def _population(per_la_sex: float = 50.0, las: tuple[str, ...] = ("201", "202")) -> pl.DataFrame:
    """``per_la_sex`` children of each sex, age and LA, mid-years 2017-2021."""
    return pl.DataFrame(
        [
            (la, year, age, sex, per_la_sex)
            for la in las
            for year in range(2017, 2022)
            for age in range(18)
            for sex in ("M", "F")
        ],
        schema={
            "la_code": pl.String,
            "year": pl.Int16,
            "age": pl.Int8,
            "sex": pl.String,
            "population": pl.Int64,
        },
        orient="row",
    )


def _moving_children() -> dict[str, pl.DataFrame]:
    """Cohort 2018 (born 1 April 2017 - 31 March 2018) in LAs 201 and 202.

    A has a UPN hash and is referred in 201 at age 1, then in 202 at age 2; B has none and is
    referred in 201 at age 0, then in 202 at age 1; C, in 202, is referred before birth.
    """
    children = _children(
        [
            ("a1", "201", "h1", date(2017, 6, 1), "F"),
            ("a2", "202", "h1", date(2017, 6, 1), "F"),
            ("b1", "201", None, date(2017, 9, 1), "M"),
            ("b2", "202", None, date(2017, 9, 1), "M"),
            ("c1", "202", None, date(2018, 2, 1), "U"),
        ]
    )
    events = _events(
        [
            ("a1", "201", date(2018, 8, 1), "referral"),
            ("a2", "202", date(2019, 7, 1), "referral"),
            ("b1", "201", date(2017, 10, 1), "referral"),
            ("b2", "202", date(2018, 10, 1), "referral"),
            ("c1", "202", date(2017, 11, 1), "referral"),
        ]
    )
    return {"children_longitudinal": children, "events": events, "population": _population()}


def test_one_child_in_two_las_is_counted_once_in_england() -> None:
    tables = _moving_children()
    out = lt.birth_cohort_risk(tables, events=["referral"]).filter(pl.col("cohort") == 2018)
    # complete ages of cohort 2018 by 31 March 2021: 0, 1, 2 (all have turned 3)
    assert out["age"].to_list() == [0, 1, 2]
    assert out["conditional_from_age"].unique().to_list() == [0]
    assert out["area_name"].unique().to_list() == ["England"]
    # first referrals: age 0 B (in 201) and C (before birth); age 1 A (linked, in 201) and B's
    # second record (no UPN: counted again); A's referral in 202 at age 2 is not a first one
    assert out["events"].to_list() == [2, 2, 0]
    assert out["population"].to_list() == [200.0, 200.0, 200.0]
    assert out["cumulative_risk"].to_list() == pytest.approx([0.01, 0.02, 0.02])
    assert out["unlinked_children"].to_list() == [2, 3, 3]
    assert out["linked_children"].to_list() == [0, 1, 1]
    assert out["linked_multi_la"].to_list() == [0, 0, 1]
    unlinked = lt.birth_cohort_risk(tables, events=["referral"], link_by_upn=False)
    assert unlinked.filter(pl.col("cohort") == 2018)["cumulative_events"].to_list() == [2, 4, 5]
    # the bound: at most the 3 unlinked children are double counts (here B's second record is)
    bounds = lt.double_counting(out).row(2, named=True)
    assert bounds["risk_low_bound"] == pytest.approx(0.02 * (1 - 3 / 4))
    assert bounds["multi_la_share"] == 1.0


def test_las_count_the_child_where_the_first_event_was_and_add_up_to_england() -> None:
    tables = _moving_children()
    las = lt.birth_cohort_risk(tables, events=["referral"], geography="la").filter(
        pl.col("cohort") == 2018
    )
    by_la = {
        la: part.sort("age")["events"].to_list()
        for (la,), part in las.group_by("area_code", maintain_order=True)
    }
    assert by_la == {"201": [1, 1, 0], "202": [1, 1, 0]}
    assert las["population"].unique().to_list() == [100.0]
    assert set(las["area_name"].to_list()) == {"City of London", "Camden"}
    region = lt.birth_cohort_risk(tables, events=["referral"], geography="region")
    assert region["area_name"].unique().to_list() == ["London"]
    assert region.filter(pl.col("cohort") == 2018)["events"].to_list() == [2, 2, 0]


def test_cohorts_born_before_the_data_are_conditional_from_age_k() -> None:
    # returns start in census year 2018 (1 April 2017): cohort 2016 (born April 2015 - March
    # 2016) is seen from age 2 (its youngest turn 2 on 31 March 2018, its oldest on 1 April 2017)
    children = _children(
        [
            ("d", "201", None, date(2015, 6, 1), "M"),
            ("e", "201", None, date(2015, 9, 1), "F"),
        ]
    )
    events = _events(
        [
            ("d", "201", date(2017, 5, 1), "referral"),  # age 1: before age 2, not used
            ("d", "201", date(2018, 7, 1), "referral"),  # age 3: D's first from age 2
            ("e", "201", date(2017, 10, 1), "referral"),  # age 2
        ]
    )
    tables = {"children_longitudinal": children, "events": events, "population": _population()}
    out = lt.birth_cohort_risk(tables, birth_years=[2016], events=["referral"])
    assert out["conditional_from_age"].unique().to_list() == [2]
    assert out["age"].to_list() == [2, 3, 4]  # to the last age completed by 31 March 2021
    assert out["events"].to_list() == [1, 1, 0]
    # from_age raises k: from age 3 only D's referral at 3 counts
    later = lt.birth_cohort_risk(tables, birth_years=[2016], events=["referral"], from_age=3)
    assert later["conditional_from_age"].unique().to_list() == [3]
    assert later["events"].to_list() == [1, 0]
    # default cohorts: those born inside the data window, each with a completed age
    default = lt.birth_cohort_risk(tables, events=["referral"])
    assert default.group_by("cohort").agg(pl.col("age").max()).sort("cohort").rows() == [
        (2018, 2),
        (2019, 1),
        (2020, 0),
    ]
    assert default["conditional_from_age"].unique().to_list() == [0]


def test_breakdowns_need_a_population_and_unknowns_are_shown_without_a_risk() -> None:
    tables = _moving_children()
    out = lt.birth_cohort_risk(tables, events=["referral"], by="sex")
    sex = out.filter((pl.col("breakdown") == "sex") & (pl.col("cohort") == 2018))
    events = {g: p.sort("age")["events"].to_list() for (g,), p in sex.group_by("group")}
    # A is a girl, B a boy (twice, unlinked), C was reported unborn with sex U
    assert events == {"F": [0, 1, 0], "M": [1, 1, 0], "Unknown": [1, 0, 0]}
    girls = sex.filter(pl.col("group") == "F").sort("age")
    assert girls["population"].to_list() == [100.0] * 3
    assert girls["cumulative_risk"].to_list() == pytest.approx([0.0, 0.01, 0.01])
    assert sex.filter(pl.col("group") == "Unknown")["cumulative_risk"].null_count() == 3
    with pytest.raises(ValueError, match="population_shares"):
        lt.birth_cohort_risk(tables, events=["referral"], by="ethnicity_group")


def test_population_shares_give_group_denominators() -> None:
    tables = _moving_children()
    tables["children_longitudinal"] = tables["children_longitudinal"].with_columns(
        ethnicity_group=pl.Series(["Black", "Black", "White", "White", None])
    )
    shares = pl.DataFrame(
        {"ethnicity_group": ["White", "Black", "Asian"], "share": [0.7, 0.2, 0.1]}
    )
    out = lt.birth_cohort_risk(
        tables,
        birth_years=[2018],
        events=["referral"],
        by="ethnicity_group",
        population_shares={"ethnicity_group": shares},
    ).filter(pl.col("breakdown") == "ethnicity_group")
    black = out.filter(pl.col("group") == "Black").sort("age")
    # 200 children per age x 0.2 = 40 Black children; A (first referral at 1) is one of them
    assert black["population"].to_list() == pytest.approx([40.0] * 3)
    assert black["cumulative_risk"].to_list() == pytest.approx([0.0, 1 / 40, 1 / 40])
    assert out.filter(pl.col("group") == "White")["events"].to_list() == [1, 1, 0]
    assert out.filter(pl.col("group") == "Unknown")["events"].to_list() == [1, 0, 0]
    bad = shares.with_columns(pl.col("share") * 2)
    with pytest.raises(ValueError, match="add up to 1"):
        lt.birth_cohort_risk(
            tables,
            events=["referral"],
            by="ethnicity_group",
            population_shares={"ethnicity_group": bad},
        )


def test_care_entries_come_from_ssda903_for_every_looked_after_child() -> None:
    tables = _moving_children()
    # f1 is looked after in 201 with no CIN record: two episodes chained by a placement move
    # (one period of care), entered at age 1; b1 enters care at age 2
    tables["cla_episodes"] = pl.DataFrame(
        {
            "child_id": ["f1", "f1", "b1"],
            "la_code": ["201", "201", "201"],
            "decom": [date(2018, 6, 1), date(2018, 9, 1), date(2019, 10, 1)],
            "dec": [date(2018, 9, 1), None, None],
            "rne": ["S", "P", "S"],
            "ls": ["C2", "C2", "V2"],
            "place": ["U1", "U3", "U1"],
            "rec": [None, None, None],
        }
    )
    tables["cla_children"] = pl.DataFrame(
        {
            "child_id": ["f1", "b1"],
            "la_code": ["201", "201"],
            "census_year": [2019, 2020],
            "upn_hash": [None, None],
            "birth_date": [date(2017, 5, 1), date(2017, 9, 1)],
            "sex": ["F", "M"],
            "ethnicity": ["WBRI", "WBRI"],
        }
    )
    out = lt.birth_cohort_risk(tables, events=["care"]).filter(pl.col("cohort") == 2018)
    assert out["events"].to_list() == [0, 1, 1]
    assert lt.unplaced_children(tables, ["referral", "care"]) == 0


def test_bad_arguments_are_refused() -> None:
    tables = _moving_children()
    with pytest.raises(ValueError, match="geography"):
        lt.birth_cohort_risk(tables, geography="ward")
    with pytest.raises(ValueError, match="unknown event"):
        lt.birth_cohort_risk(tables, events=["adoption"])
    with pytest.raises(ValueError, match="breakdown"):
        lt.birth_cohort_risk(tables, by="postcode")


# --------------------------------------------------------------------------------------------
# the planted first-referral risk, end to end from generated returns
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 LAs, census years 2018-2023 (cohorts followed from birth to age 5), loaded and built."""
    from cinresearch.io.loader import load_paths
    from cinresearch.journeys import build_journeys
    from cinresearch.pseudonymise import load_key
    from cinresearch.store import Store
    from cinresearch.synth import generate

    root = tmp_path_factory.mktemp("lifetime")
    generate(root / "synth", las=6, years=(2018, 2023), scale=1000, seed=16, progress=False)
    store = Store(root / "store")
    synth = root / "synth"
    report = load_paths(
        [synth / "cin", synth / "cla", synth / "population"],
        store,
        load_key(demo=True),
        progress=False,
    )
    assert not report.failed
    build_journeys(store, progress=False)
    return root


@pytest.mark.slow
@pytest.mark.parametrize("sex", [None, "M", "F"], ids=["all", "boys", "girls"])
def test_planted_first_referral_risk_is_recovered(generated: Path, sex: str | None) -> None:
    """The risk of a referral before age 4 for the 2018-19 cohort, from the generator's
    parameters alone, lies inside the estimate's 95% interval (Total and by sex)."""
    cohort, age = 2019, 3  # chosen before looking: the first cohort with no pre-birth gap
    out = lt.birth_cohort_risk(generated / "store", events=["referral"], by="sex")
    group = "Total" if sex is None else sex
    row = out.filter(
        (pl.col("cohort") == cohort) & (pl.col("age") == age) & (pl.col("group") == group)
    ).row(0, named=True)
    implied = first_referral_risk(cohort, age, sex=sex)["cumulative_risk"][age]
    assert row["conditional_from_age"] == 0
    assert row["ci_low"] <= implied <= row["ci_high"], (row, implied)


@pytest.mark.slow
def test_counts_lie_between_the_true_children_and_the_double_counting_bound(
    generated: Path,
) -> None:
    """Against the generator's own children (one person across LAs): the estimate counts every
    child first referred by each age, and its excess is at most the unlinked children."""
    from cinresearch.journeys.episodes import age_in_years, census_year_of

    persons = pl.read_parquet(generated / "synth" / "truth" / "persons.parquet")
    truth = (
        persons.with_columns(
            cohort=census_year_of(pl.col("birth_date")),
            age=age_in_years(pl.col("birth_date"), pl.col("first_referral_date")).clip(0, None),
        )
        .group_by("cohort", "age")
        .agg(true_children=pl.len())
    )
    out = lt.birth_cohort_risk(
        generated / "store", birth_years=range(2019, 2023), events=["referral"]
    )
    both = out.join(truth, on=["cohort", "age"], how="left").with_columns(
        pl.col("true_children").fill_null(0).cum_sum().over("cohort", order_by="age").alias("true")
    )
    assert both.height == 4 + 3 + 2 + 1
    assert (both["cumulative_events"] >= both["true"]).all()
    assert (both["cumulative_events"] - both["unlinked_children"] <= both["true"]).all()
    unlinked = lt.birth_cohort_risk(
        generated / "store", birth_years=range(2019, 2023), events=["referral"], link_by_upn=False
    )
    extra = unlinked["cumulative_events"] - out["cumulative_events"]
    assert (extra >= out["linked_multi_la"]).all()
