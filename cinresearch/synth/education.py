"""National Pupil Database rows for synthetic pupils, with planted education effects.

Pupils are the simulated children with a UPN while of compulsory school age (age 5–15 on
31 August before the academic year, i.e. Year 1 to Year 11) plus a comparison sample of
children never referred (``COMPARISON_SHARE`` of each LA's population, persisting across
years). Outcomes follow the stated models below (also in ``data_contracts/synth_effects.yaml``);
"CIN in year" = an episode of need (not NFA, not closed as assessed-not-in-need) open at any
time in the academic year (1 September – 31 August), using the true (latent) closure date.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from cinresearch.synth import dates as D
from cinresearch.synth.ids import make_upns
from cinresearch.synth.population import AGE_SHARES

COMPARISON_SHARE = 0.05

# planted education effects (multiplicative / additive; see synth_effects.yaml)
EDUCATION_EFFECTS: dict[str, dict[str, float]] = {
    "absence_rate": {  # multiplicative on the sessions-absent rate
        "base_primary": 0.045,
        "secondary": 1.25,
        "fsm": 1.4,
        "sen": 1.3,
        "cin_in_year": 2.0,
        "cpp_in_year": 1.3,
        "ever_cin_not_current": 1.4,
    },
    "suspensions": {  # rate ratios on a Poisson count
        "base_primary": 0.02,
        "base_secondary": 0.10,
        "fsm": 2.0,
        "sen": 1.5,
        "cin_in_year": 3.0,
        "ever_cin_not_current": 1.5,
    },
    "permanent_exclusion": {
        "base_primary": 0.0003,
        "base_secondary": 0.0015,
        "fsm": 2.0,
        "cin_in_year": 4.0,
    },
    "ks2_rwm_expected_logit": {
        "intercept": 0.619,  # logit(0.65)
        "fsm": -0.7,
        "sen_k": -1.5,
        "sen_e": -3.0,
        "cin_in_year": -0.8,
        "ever_cin_not_current": -0.4,
    },
    "ks4_attainment8": {
        "intercept": 50.0,
        "fsm": -9.0,
        "sen_k": -12.0,
        "sen_e": -25.0,
        "cin_in_year": -10.0,
        "ever_cin_not_current": -5.0,
        "residual_sd": 14.0,
    },
    "person_level": {
        "fsm_cin": 0.45,
        "fsm_comparison": 0.14,
    },
}


def _academic_year(days: pl.Expr) -> pl.Expr:
    return days.dt.year() + (days.dt.month() >= 9).cast(pl.Int32)


def _comparison_pupils(rng: np.random.Generator, world) -> pl.DataFrame:
    """Never-referred pupils: birth cohorts covering every year group of the academic years."""
    first_year, last_year = world.years
    first_birth_year, last_birth_year = first_year - 17, last_year - 5
    parts = []
    for code, total in zip(world.las["la_code"], world.las["population_0_17_mid2017"], strict=True):
        per_cohort = max(1, int(round(COMPARISON_SHARE * total * AGE_SHARES[5:16].mean())))
        n = per_cohort * (last_birth_year - first_birth_year + 1)
        start = D.day(f"{first_birth_year - 1}-09-01")
        end = D.day(f"{last_birth_year}-08-31")
        parts.append(pl.DataFrame({"la_code": code, "birth": rng.integers(start, end + 1, n)}))
    comp = pl.concat(parts)
    birth = comp["birth"].to_numpy()
    by, bm, _ = D.year_month_day(birth)
    upn = make_upns(
        comp["la_code"].to_numpy(), by + 4 + (bm >= 9), rng.random(len(birth)) < 0.01, rng, 5000
    )
    return comp.with_columns(
        upn=pl.Series(upn, dtype=pl.String),
        birth_date=pl.Series(birth.astype(np.int32)).cast(pl.Date),
        person_id=pl.lit(-1, dtype=pl.Int64),
        comparison=pl.lit(True),
        disabled=pl.lit(False),
        death_date=pl.lit(None, dtype=pl.Date),
    ).drop("birth")


def npd_frame(rng: np.random.Generator, world) -> pl.DataFrame:
    """One row per pupil × academic year (end year) for the census years simulated."""
    first_year, last_year = world.years
    ep = world.episodes
    need = ep.filter(
        ~pl.col("referral_nfa") & ~pl.col("latent_closure_reason").is_in(["RC8", "RC9"])
    )
    # academic years each episode of need / plan overlaps
    cin_years = (
        need.select(
            "person_id",
            pl.int_ranges(
                _academic_year(pl.col("referral_date")),
                _academic_year(pl.col("latent_closure_date")) + 1,
            ).alias("academic_year"),
        )
        .explode("academic_year")
        .unique()
        .with_columns(cin_in_year=pl.lit(True))
    )
    cpp_years = (
        ep.filter(pl.col("first_cpp_start").is_not_null())
        .select(
            "person_id",
            pl.int_ranges(
                _academic_year(pl.col("first_cpp_start")),
                _academic_year(pl.col("cpp_end").fill_null(pl.col("data_end"))) + 1,
            ).alias("academic_year"),
        )
        .explode("academic_year")
        .unique()
        .with_columns(cpp_in_year=pl.lit(True))
    )
    first_need = world.persons.select("person_id", first_need_referral="first_need_referral_date")

    cin_pupils = world.persons.filter(pl.col("upn").is_not_null()).select(
        "person_id",
        "upn",
        "birth_date",
        "death_date",
        "disabled",
        la_code=pl.col("first_la_code"),
        comparison=pl.lit(False),
    )
    comp = _comparison_pupils(rng, world).select(cin_pupils.columns)
    pupils = pl.concat([cin_pupils, comp])
    years = pl.DataFrame({"academic_year": list(range(first_year, last_year + 1))})
    rows = (
        pupils.join(years, how="cross")
        .with_columns(
            year_start=pl.date(pl.col("academic_year") - 1, 9, 1),
            year_end=pl.date(pl.col("academic_year"), 8, 31),
        )
        .with_columns(
            age=(
                pl.date(pl.col("academic_year") - 1, 8, 31).dt.year()
                - pl.col("birth_date").dt.year()
                - (
                    pl.col("birth_date").dt.month().cast(pl.Int32) * 100
                    + pl.col("birth_date").dt.day().cast(pl.Int32)
                    > 831
                ).cast(pl.Int32)
            )
        )
        .filter(
            pl.col("age").is_between(5, 15)
            & (pl.col("death_date").is_null() | (pl.col("death_date") > pl.col("year_start")))
        )
        .join(cin_years, on=["person_id", "academic_year"], how="left")
        .join(cpp_years, on=["person_id", "academic_year"], how="left")
        .join(first_need, on="person_id", how="left")
        .with_columns(
            cin_in_year=pl.col("cin_in_year").fill_null(False),
            cpp_in_year=pl.col("cpp_in_year").fill_null(False),
            ever_cin_before=pl.col("first_need_referral").is_not_null()
            & (pl.col("first_need_referral") < pl.col("year_start")),
        )
        .sort(["person_id", "upn", "academic_year"])
    )
    # LA where the child lives: the LA of the latest referral up to the end of the year
    moves = ep.select("person_id", "la_code", when=pl.col("referral_date")).sort("when")
    rows = (
        rows.sort("year_end")
        .join_asof(
            moves.rename({"la_code": "la_now"}),
            left_on="year_end",
            right_on="when",
            by="person_id",
            strategy="backward",
            check_sortedness=False,
        )
        .with_columns(la_code=pl.coalesce("la_now", "la_code"))
        .drop("la_now", "when")
        .sort(["academic_year", "la_code", "upn"])
    )

    # person-level persistent traits
    persons = rows.select("upn", "comparison", "disabled").unique(maintain_order=True)
    m = persons.height
    eff = EDUCATION_EFFECTS
    fsm = rng.random(m) < np.where(
        persons["comparison"].to_numpy(),
        eff["person_level"]["fsm_comparison"],
        eff["person_level"]["fsm_cin"],
    )
    u = rng.random(m)
    dis = persons["disabled"].to_numpy()
    comp_ = persons["comparison"].to_numpy()
    p_e = np.where(dis, 0.40, np.where(comp_, 0.03, 0.06))
    p_k = np.where(dis, 0.40, np.where(comp_, 0.12, 0.28))
    sen = np.where(u < p_e, "E", np.where(u < p_e + p_k, "K", "N"))
    frailty = rng.gamma(2.0, 0.5, m)
    persons = persons.with_columns(
        fsm=pl.Series(fsm), sen=pl.Series(sen), frailty=pl.Series(frailty)
    )
    rows = rows.join(persons.drop("comparison", "disabled"), on="upn", how="left")

    n = rows.height
    fsm = rows["fsm"].to_numpy().astype(float)
    sen = rows["sen"].to_numpy()
    sen_any = (sen != "N").astype(float)
    cin = rows["cin_in_year"].to_numpy().astype(float)
    cpp = rows["cpp_in_year"].to_numpy().astype(float)
    ever = (rows["ever_cin_before"].to_numpy() & ~rows["cin_in_year"].to_numpy()).astype(float)
    age = rows["age"].to_numpy()
    secondary = (age >= 11).astype(float)

    a = eff["absence_rate"]
    rate = (
        a["base_primary"]
        * rows["frailty"].to_numpy()
        * a["secondary"] ** secondary
        * a["fsm"] ** fsm
        * a["sen"] ** sen_any
        * a["cin_in_year"] ** cin
        * a["cpp_in_year"] ** cpp
        * a["ever_cin_not_current"] ** ever
    )
    possible = 310 + rng.integers(0, 51, n)
    part_year = rng.random(n) < 0.05
    possible = np.where(part_year, np.floor(possible * rng.uniform(0.3, 0.9, n)), possible).astype(
        np.int32
    )
    absent = rng.binomial(possible, np.minimum(rate, 0.95)).astype(np.int32)

    s = eff["suspensions"]
    lam = (
        np.where(secondary > 0, s["base_secondary"], s["base_primary"])
        * s["fsm"] ** fsm
        * s["sen"] ** sen_any
        * s["cin_in_year"] ** cin
        * s["ever_cin_not_current"] ** ever
    )
    suspensions = rng.poisson(lam).astype(np.int16)
    x = eff["permanent_exclusion"]
    p_ex = (
        np.where(secondary > 0, x["base_secondary"], x["base_primary"])
        * x["fsm"] ** fsm
        * x["cin_in_year"] ** cin
    )
    excluded = rng.random(n) < p_ex

    k2 = eff["ks2_rwm_expected_logit"]
    logit = (
        k2["intercept"]
        + k2["fsm"] * fsm
        + k2["sen_k"] * (sen == "K")
        + k2["sen_e"] * (sen == "E")
        + k2["cin_in_year"] * cin
        + k2["ever_cin_not_current"] * ever
    )
    ks2 = rng.random(n) < 1 / (1 + np.exp(-logit))
    ks2_present = (age == 10) & (rng.random(n) >= 0.03)
    k4 = eff["ks4_attainment8"]
    a8 = (
        k4["intercept"]
        + k4["fsm"] * fsm
        + k4["sen_k"] * (sen == "K")
        + k4["sen_e"] * (sen == "E")
        + k4["cin_in_year"] * cin
        + k4["ever_cin_not_current"] * ever
        + rng.normal(0.0, k4["residual_sd"], n)
    )
    a8 = np.round(np.clip(a8, 0.0, 90.0), 1)
    ks4_present = (age == 15) & (rng.random(n) >= 0.04)

    return rows.select(
        "upn",
        "academic_year",
        "la_code",
        "person_id",
        "comparison",
        "age",
        "cin_in_year",
        "cpp_in_year",
        "ever_cin_before",
    ).with_columns(
        academic_year=pl.col("academic_year").cast(pl.Int16),
        age=pl.col("age").cast(pl.Int8),
        fsm=pl.Series(fsm > 0),
        sen=pl.Series(sen.astype(str)),
        sessions_possible=pl.Series(possible),
        sessions_absent=pl.Series(absent),
        suspensions=pl.Series(suspensions),
        permanent_exclusion=pl.Series(excluded),
        ks2_rwm_expected=pl.Series(np.ma.masked_array(ks2, ~ks2_present), dtype=pl.Boolean),
        ks4_attainment8=pl.Series(np.where(ks4_present, a8, np.nan)).fill_nan(None),
    )
