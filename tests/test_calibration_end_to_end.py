"""End-to-end calibration against DfE's 2017-18 England figures, and proof that it can fail.

The path checked is the one the project publishes from: ``cinresearch.synth.generate`` (CIN
XML returns and population CSVs, 8 LAs x ~2,500 referrals a year) -> ``load_paths`` ->
``build_journeys`` -> ``indicators.compute_indicators`` (national) ->
:func:`cinresearch.synth.calibration.compare` against ``national_figures_2018.csv``. Targets,
tolerances and the measures not checked (with reasons) are in
``data_contracts/calibration_2018.yaml``; tolerances scale with each category's size and the
sample (``z * SE + relative model tolerance + rounding``).

The perturbation tests run the same path with generator parameters moved: categories of
several measure families shrunk to a tenth in one run (the families are disjoint, so each
failure is attributable, and the test also checks nothing outside them fails), and the 0-17
population raised 5%. Each pipeline runs once (one test per run, so pytest-xdist does not
build it twice); ``slow`` because each run takes 12-50 s depending on the machine's load.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from cinresearch.synth.calibration import (
    calibration_params,
    compare,
    load_spec,
    published_figures,
    rate_tolerance,
    run_pipeline,
    share_tolerance,
)
from cinresearch.synth.params import DEFAULT_PARAMS, PiecewiseHazard, SynthParams

SPEC = load_spec()
RUN = SPEC["run"]
TOL = SPEC["tolerance"]


def _pipeline(root: Path, params: SynthParams) -> pl.DataFrame:
    """The calibration run (spec ``run``) with ``params``, checked on its last census year."""
    years = (RUN["years"][0], RUN["years"][1])
    ind = run_pipeline(
        root,
        las=RUN["las"],
        scale=RUN["scale"],
        seed=RUN["seed"],
        years=years,
        params=calibration_params(SPEC, params),
    )
    return compare(ind, years[1], SPEC)


def _failures(checks: pl.DataFrame) -> list[dict]:
    return (
        checks.filter(~pl.col("ok"))
        .select("target", "level", "published", "simulated", "tolerance")
        .to_dicts()
    )


def _scaled(shares: dict[str, float], key: str, factor: float = 0.1) -> dict[str, float]:
    return {k: v * factor if k == key else v for k, v in shares.items()}


# ---- the tolerance rule and the spec (fast) -------------------------------------------------


def test_small_categories_get_small_tolerances() -> None:
    # a 0.2% category on 15,000 units: a tenth of it (0.02%) is outside the tolerance
    _, small = share_tolerance(0.2, 15_000, TOL, 0.0)
    assert 0.2 - small > 0.02
    assert small < 0.2 * 0.9
    # tolerance grows with the category (to 50%) and shrinks with the sample
    assert share_tolerance(50.0, 15_000, TOL, 0.0)[1] > share_tolerance(5.0, 15_000, TOL, 0.0)[1]
    assert share_tolerance(5.0, 60_000, TOL, 0.0)[1] < share_tolerance(5.0, 15_000, TOL, 0.0)[1]
    # a share and its complement get the same tolerance
    assert share_tolerance(93.0, 9_000, TOL, 0.0) == pytest.approx(
        share_tolerance(7.0, 9_000, TOL, 0.0)
    )
    # rates: a 5% move of the headline referral rate on the calibration sample is detected
    population = RUN["las"] * RUN["scale"] / 552.5 * 1e4
    _, limit = rate_tolerance(552.5, population, TOL["rate"]["relative"], TOL)
    assert limit < 0.05 * 552.5


def test_every_published_measure_is_checked_or_listed_with_a_reason() -> None:
    measures = set(published_figures(SPEC)["measure"])
    checked = {t["published"] for t in SPEC["targets"]}
    covered = {c for t in SPEC["targets"] for c in t.get("covers", [])}
    skipped = SPEC["not_checked"]
    listed = set(skipped["indicator_not_computed"])
    wildcards = [
        k.split()[0].rstrip("*")
        for group in ("not_comparable_on_a_sample", "other_collections")
        for k in skipped[group]
    ]
    partial = {k.split()[0] for k in skipped["not_produced_by_generator"]}
    uncovered = []
    for m in sorted(measures):
        if m in checked | covered or m in listed or any(m.startswith(w) for w in wildcards):
            continue
        # a count is covered by its checked (or listed) rate / percentage, or by its shares
        if {f"{m}_rate", f"{m}_pct"} & (checked | listed):
            continue
        uncovered.append(m)
    assert not uncovered, f"published measures neither checked nor listed: {uncovered}"
    assert all(m in checked or f"{m}_pct" in checked for m in partial), partial
    assert not (checked & listed)


# ---- the shipped generator passes ------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> pl.DataFrame:
    return _pipeline(tmp_path_factory.mktemp("calib"), DEFAULT_PARAMS)


@pytest.mark.slow
def test_shipped_generator_matches_the_published_figures(shipped: pl.DataFrame) -> None:
    assert shipped.height >= 110  # every target ran (re-referrals included)
    assert "re_referrals_within_12_months_pct" in set(shipped["target"])
    bad = _failures(shipped)
    assert not bad, f"outside tolerance: {bad}"


# ---- perturbed generators fail ---------------------------------------------------------------

# shrunk category -> (the target it must fail, the families it may move)
SHRINKS = {
    "primary need N7 (low income, 0.4%)": (
        ("cin_at_31_march_by_primary_need_pct", "N7"),
        {"cin_at_31_march_by_primary_need_pct"},
    ),
    "closure reason RC2 (died, 0.2%)": (
        ("cin_episodes_ending_by_closure_reason", "RC2"),
        {"cin_episodes_ending_by_closure_reason"},
    ),
    "referral source housing (1.4%)": (
        ("referrals_by_source_pct", "Housing"),
        {"referrals_by_source_pct"},
    ),
    "CPP initial category sexual abuse (4.3%)": (
        ("cpp_starting_by_initial_category_pct", "SAB"),
        {
            "cpp_starting_by_initial_category_pct",
            "cpp_at_31_march_by_initial_category_pct",
            "cpp_at_31_march_by_latest_category_pct",
        },
    ),
    "CPP ending after 2 years or more (3.4%)": (
        ("cpp_ending_by_duration_pct", "2y+"),
        # fewer long plans: fewer plans open at 31 March
        {"cpp_ending_by_duration_pct", "cpp_at_31_march_by_duration_pct", "cpp_at_31_march_rate"},
    ),
    "assessment authorised the same day (3.1%)": (
        ("assessments_by_duration_working_days", "same_day"),
        # an episode without a plan cannot close before its assessment is authorised
        {"assessments_by_duration_working_days", "cin_episodes_ending_by_duration_pct"},
    ),
}


def _shrunk_params() -> SynthParams:
    p = DEFAULT_PARAMS
    bands = list(p.cpp_duration_bands)
    lo, hi, w = bands[-1]
    bands[-1] = (lo, hi, w * 0.1)
    abands = list(p.assessment_wd_bands)
    lo, hi, w = abands[0]
    abands[0] = (lo, hi, w * 0.1)
    return replace(
        p,
        need_other=_scaled(p.need_other, "N7"),
        closure_reason_other=_scaled(p.closure_reason_other, "RC2"),
        referral_source_shares=_scaled(p.referral_source_shares, "4"),
        cpp_category_shares=_scaled(p.cpp_category_shares, "SAB"),
        cpp_duration_bands=tuple(bands),
        assessment_wd_bands=tuple(abands),
    )


@pytest.mark.slow
def test_shrinking_any_category_to_a_tenth_fails_its_measure(tmp_path: Path) -> None:
    checks = _pipeline(tmp_path, _shrunk_params())
    missed = []
    for name, ((target, level), _) in SHRINKS.items():
        row = checks.filter((pl.col("target") == target) & (pl.col("level") == level))
        assert row.height == 1, (target, level)
        if row["ok"].item():
            missed.append(f"{name}: {row.row(0, named=True)}")
    assert not missed, "shrunk to a tenth but still within tolerance:\n" + "\n".join(missed)
    allowed = set().union(*(families for _, families in SHRINKS.values()))
    elsewhere = [f for f in _failures(checks) if f["target"] not in allowed]
    assert not elsewhere, f"failures outside the shrunk families: {elsewhere}"


@pytest.mark.slow
def test_moving_the_population_5_percent_fails_the_referral_rates(tmp_path: Path) -> None:
    """0-17 population +5% (every rate -4.8%): a headline referral rate fails, no share does."""
    checks = _pipeline(tmp_path, replace(DEFAULT_PARAMS, population_scale=1.05))
    rates = checks.filter(pl.col("kind") == "rate")
    failed = set(rates.filter(~pl.col("ok"))["target"])
    assert failed & {"referrals_rate", "children_referred_rate"}, rates.to_dicts()
    share_targets = set(checks.filter(pl.col("kind") == "share")["target"])
    shares = [f for f in _failures(checks) if f["target"] in share_targets]
    assert not shares, shares


def test_cpp_baseline_is_a_piecewise_hazard() -> None:
    # the perturbation helpers rely on these parameter shapes
    assert isinstance(DEFAULT_PARAMS.cpp_baseline, PiecewiseHazard)
    assert len(DEFAULT_PARAMS.cpp_duration_bands[-1]) == 3
    assert "N7" in DEFAULT_PARAMS.need_other and "RC2" in DEFAULT_PARAMS.closure_reason_other
    assert "4" in DEFAULT_PARAMS.referral_source_shares
