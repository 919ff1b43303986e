"""The synthetic generator's planted effects, recovered from one in-memory world.

One world (20 LAs x ~3,000 referrals a year, census year 2018, seed from
``data_contracts/synth_effects.yaml``) is simulated once; the planted hazard ratios are
recovered with a cause-specific Cox model, and the planted education effects with a Poisson
GLM and OLS on the NPD rows. Calibration against DfE's 2017-18 figures is checked end to end
(XML -> load -> indicators) in ``tests/test_calibration_end_to_end.py``; here only the
ground-truth helper :func:`cinresearch.synth.calibration.measures` is checked against the
same published headline figures, with the same size-scaled tolerance rule.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from cinresearch.synth import simulate
from cinresearch.synth.calibration import load_spec, measures, rate_tolerance, share_tolerance

EFFECTS = yaml.safe_load(
    (Path(__file__).resolve().parents[1] / "data_contracts" / "synth_effects.yaml").read_text()
)
CAL = EFFECTS["calibration"]
SPEC = load_spec()


@pytest.fixture(scope="module")
def world():
    run = CAL["run"]
    return simulate(
        las=run["las"],
        years=(CAL["census_year"], CAL["census_year"]),
        scale=run["scale"],
        seed=run["seed"],
    )


@pytest.fixture(scope="module")
def measured(world) -> dict[str, float]:
    return measures(world, CAL["census_year"])


def test_ground_truth_headlines_match_the_published_figures(
    world, measured: dict[str, float]
) -> None:
    """Truth-level referral rate and shares (window 2017-18, nothing censored by a return)."""
    pop = world.population.filter(pl.col("year") == CAL["census_year"] - 1)["population"].sum()
    tol = SPEC["tolerance"]
    _, limit = rate_tolerance(552.5, pop, tol["rate"]["relative"], tol)
    assert abs(measured["referral_rate_per_10k"] - 552.5) <= limit
    n_ref = measured["referral_rate_per_10k"] * pop / 1e4
    for name, published in (("nfa_pct", 9.4), ("referral_source.police", 28.5),
                            ("referral_source.housing", 1.4)):  # fmt: skip
        _, limit = share_tolerance(published, n_ref, tol, tol["rounding"])
        assert abs(measured[name] - published) <= limit, (name, measured[name])


def test_no_five_d_or_rc9_before_2023(world) -> None:
    ep = world.episodes
    assert ep.filter(pl.col("referral_source") == "5D").height == 0
    assert (
        ep.filter(
            pl.col("latent_closure_reason") == "RC9",
            pl.col("latent_closure_date") < date(2022, 4, 1),
        ).height
        == 0
    )


def test_cause_specific_cox_recovers_planted_cpp_hazard_ratios(world) -> None:
    from lifelines import CoxPHFitter

    cpp = EFFECTS["planted_effects"]["cpp_hazard"]
    ep = world.episodes.filter(
        ~pl.col("referral_nfa")
        & pl.col("referral_date").is_between(date(2016, 4, 1), date(2018, 3, 31))
    )
    end = pl.coalesce("first_cpp_start", "closure_date", "data_end")
    frame = ep.select(
        "la_code",
        "age_band",
        disabled=pl.col("disabled").cast(pl.Int8),
        duration=(end - pl.col("referral_date")).dt.total_days() + 0.5,
        event=pl.col("first_cpp_start").is_not_null().cast(pl.Int8),
    )
    bands = [b for b in cpp["hazard_ratios"]["age_band"] if b != cpp["reference"]["age_band"]]
    frame = frame.with_columns(
        [(pl.col("age_band") == b).cast(pl.Int8).alias(f"age_{b}") for b in bands]
    ).drop("age_band")
    fit = CoxPHFitter().fit(frame.to_pandas(), "duration", "event", strata=["la_code"])
    planted = {f"age_{b}": cpp["hazard_ratios"]["age_band"][b] for b in bands}
    planted["disabled"] = cpp["hazard_ratios"]["disabled"]
    for name, hr in planted.items():
        est, se = fit.params_[name], fit.standard_errors_[name]
        assert abs(est - np.log(hr)) < max(3.5 * se, 0.05), (name, np.exp(est), hr)


def test_planted_la_outliers_show_in_cpp_rates(world) -> None:
    hr = dict(zip(world.las["la_code"], world.las["cpp_hazard_ratio"], strict=True))
    rate = (
        world.episodes.filter(~pl.col("referral_nfa"))
        .group_by("la_code")
        .agg(pl.col("first_cpp_start").is_not_null().mean().alias("p"))
    )
    p = dict(zip(rate["la_code"], rate["p"], strict=True))
    typical = float(np.median([p[c] for c in p if c not in ("890", "826")]))
    assert hr["890"] == pytest.approx(2.2) and p["890"] > 1.5 * typical
    assert hr["826"] == pytest.approx(0.45) and p["826"] < 0.7 * typical


def test_planted_education_effects_are_recovered(world) -> None:
    import statsmodels.api as sm

    eff = EFFECTS["planted_effects"]["education"]
    npd = world.npd.filter(pl.col("academic_year") == CAL["census_year"]).with_columns(
        ever=(pl.col("ever_cin_before") & ~pl.col("cin_in_year")).cast(float),
        secondary=(pl.col("age") >= 11).cast(float),
        sen_any=(pl.col("sen") != "N").cast(float),
        sen_k=(pl.col("sen") == "K").cast(float),
        sen_e=(pl.col("sen") == "E").cast(float),
        fsm_f=pl.col("fsm").cast(float),
        cin=pl.col("cin_in_year").cast(float),
        cpp=pl.col("cpp_in_year").cast(float),
    )
    assert npd.filter(pl.col("comparison")).height > 1000 and npd["cin"].sum() > 1000
    x = npd.select("secondary", "fsm_f", "sen_any", "cin", "cpp", "ever").to_pandas()
    glm = sm.GLM(
        npd["sessions_absent"].to_numpy(),
        sm.add_constant(x),
        family=sm.families.Poisson(),
        offset=np.log(npd["sessions_possible"].to_numpy()),
    ).fit()
    assert np.exp(glm.params["cin"]) == pytest.approx(eff["absence_rate"]["cin_in_year"], rel=0.1)
    assert np.exp(glm.params["fsm_f"]) == pytest.approx(eff["absence_rate"]["fsm"], rel=0.1)
    ks4 = npd.filter(pl.col("ks4_attainment8").is_not_null())
    ols = sm.OLS(
        ks4["ks4_attainment8"].to_numpy(),
        sm.add_constant(ks4.select("fsm_f", "sen_k", "sen_e", "cin", "ever").to_pandas()),
    ).fit()
    assert abs(ols.params["cin"] - eff["ks4_attainment8"]["cin_in_year"]) < 2.0
    # comparison pupils do better on average than children in need this year
    comp = npd.filter(pl.col("comparison"))
    cin = npd.filter(pl.col("cin_in_year"))
    rate = lambda f: f["sessions_absent"].sum() / f["sessions_possible"].sum()  # noqa: E731
    assert rate(cin) > 1.8 * rate(comp)
    assert cin["suspensions"].mean() > 2 * comp["suspensions"].mean()
