"""End to end: the toolkit recovers the synthetic generator's planted effects.

Generate → load (real XML/CSV files, demo key) → build journeys → cohort → survival. The
planted values are read from ``data_contracts/synth_effects.yaml`` (never restated here): the
cause-specific hazard ratios of a child protection plan after referral for children under 1,
unborn children and disabled children must fall inside the fitted model's 95% confidence
intervals, and the cumulative incidence of a plan by one year must be consistent with the
generator's own ground truth.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import yaml

from cinresearch import cohorts, survival
from cinresearch.store import Store

EFFECTS = yaml.safe_load(
    (Path(__file__).resolve().parent.parent / "data_contracts" / "synth_effects.yaml").read_text()
)["planted_effects"]["cpp_hazard"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pipeline(planted_world: Path) -> dict:
    root = planted_world
    store = Store(root / "store")
    episodes = store.read("episodes")
    cohort = cohorts.define_cohort(
        {"name": "referrals_2019_2020", "origin": "referral", "census_years": [2019, 2020]},
        exclude_nfa=True,
    )
    frame = cohorts.survival_frame(episodes, cohort, outcome="cpp")
    return {"root": root, "frame": frame, "episodes": episodes}


def test_cause_specific_hazard_ratios_recovered(pipeline: dict) -> None:
    frame = pipeline["frame"]
    assert frame.height > 20_000
    table = survival.cause_specific_cox(
        frame,
        duration="duration",
        event_type="event_type",
        cause=1,
        covariates=["age_band", "disabled"],
        reference={"age_band": EFFECTS["reference"]["age_band"]},
        strata="la_code",
        cluster="child_id",
    )
    planted = EFFECTS["hazard_ratios"]
    checks = {
        "age_band[under 1]": planted["age_band"]["under 1"],
        "age_band[unborn]": planted["age_band"]["unborn"],
        "age_band[16+]": planted["age_band"]["16+"],
        "disabled": planted["disabled"],
    }
    for term, value in checks.items():
        row = table.filter(pl.col("term") == term).row(0, named=True)
        assert row["lower"] <= value <= row["upper"], (term, value, row)


def test_cumulative_incidence_matches_ground_truth(pipeline: dict) -> None:
    """Aalen–Johansen CIF of a plan by 365 days ≈ the share in the generator's truth file."""
    frame = pipeline["frame"]
    cif = survival.cumulative_incidence(frame, cause=1, times=[365])
    estimate = cif.filter(pl.col("time") == 365)["estimate"].item()
    truth = pl.read_parquet(pipeline["root"] / "synth" / "truth" / "episodes.parquet")
    window = truth.filter(
        pl.col("referral_date").is_between(pl.date(2018, 4, 1), pl.date(2019, 3, 31)),
        ~pl.col("referral_nfa"),
    )
    # one year of follow-up is observed for every referral in 2018-19 (data end 31 March 2020)
    within_year = pl.col("first_cpp_start").is_not_null() & (
        (pl.col("first_cpp_start") - pl.col("referral_date")).dt.total_days() <= 365
    )
    share = window.select(within_year.mean()).item()
    assert abs(estimate - share) < 0.02, (estimate, share)
    # and 1 - KM would overstate it: closure without a plan competes
    km = survival.kaplan_meier(frame, event="event", times=[365])
    assert 1 - km.filter(pl.col("time") == 365)["estimate"].item() > estimate
