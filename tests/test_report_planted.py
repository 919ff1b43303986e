"""Unit tests for cinresearch.report.planted: the synthetic generator's planted effects as model
terms, and estimates compared with them."""

from __future__ import annotations

import math

import polars as pl
import pytest

from cinresearch.report import planted


def test_planted_effects_as_model_terms():
    effects = {
        "planted_effects": {
            "cpp_hazard": {
                "reference": {"age_band": "5-9", "disabled": False},
                "hazard_ratios": {"age_band": {"under 1": 2.0, "5-9": 1.0}, "disabled": 1.5},
            },
            "rereferral": {
                "probability": 0.5,
                "fast_share": 1.0,
                "fast_mean_days": 365,
                "slow_mean_days": 900,
            },
        }
    }
    ratios = planted.planted_hazard_ratios(effects)
    assert ratios == {"age_band[under 1]": 2.0, "disabled": 1.5}
    table = pl.DataFrame(
        {
            "term": ["age_band[under 1]", "disabled", "sex[F]"],
            "hazard_ratio": [1.8, 2.5, 1.0],
            "lower": [1.2, 1.9, 0.8],
            "upper": [2.6, 3.1, 1.2],
            "reference": ["5-9", None, "M"],
        }
    )
    check = planted.compare_with_planted(table, ratios)
    assert check["term"].to_list() == ["age_band[under 1]", "disabled"]
    assert check["covered"].to_list() == [True, False]
    # all fast gaps with mean 365 days: 0.5 x (1 - e^-1)
    assert planted.planted_rereferral_12m(effects) == pytest.approx(0.5 * (1 - math.exp(-1)))
    assert planted.planted_rereferral_12m({}) is None


def test_planted_effects_file(tmp_path):
    assert planted.planted_effects(tmp_path / "missing.yaml") is None
    path = tmp_path / "effects.yaml"
    path.write_text("planted_effects:\n  cpp_hazard: {hazard_ratios: {disabled: 1.5}}\n")
    assert planted.planted_hazard_ratios(planted.planted_effects(path)) == {"disabled": 1.5}
    real = planted.planted_effects()
    if real is not None:  # the generator's own file, when present, has the CPP effects
        assert planted.planted_hazard_ratios(real)["disabled"] > 1
