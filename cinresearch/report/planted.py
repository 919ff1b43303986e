"""The effects planted in the synthetic data, for a chapter to compare its estimates with.

The generator's planted effects are written in ``data_contracts/synth_effects.yaml`` (a test
keeps it equal to :mod:`cinresearch.synth.params`). A chapter run on synthetic data reads them
here and shows the estimates next to the planted values; on real data there is nothing to
compare with and the chapters skip the section.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl
import yaml

__all__ = [
    "SYNTH_EFFECTS_YAML",
    "compare_with_planted",
    "planted_effects",
    "planted_hazard_ratios",
    "planted_rereferral_12m",
]

SYNTH_EFFECTS_YAML = Path(__file__).resolve().parents[2] / "data_contracts" / "synth_effects.yaml"


def planted_effects(path: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """The planted effects of the synthetic generator (``data_contracts/synth_effects.yaml``),
    or ``None`` when the file is absent."""
    target = Path(path) if path else SYNTH_EFFECTS_YAML
    if not target.exists():
        return None
    data = yaml.safe_load(target.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else None


def planted_hazard_ratios(
    effects: Mapping[str, Any], effect: str = "cpp_hazard"
) -> dict[str, float]:
    """Planted hazard ratios of one effect as model terms: ``{"age_band[under 1]": 2.0,
    "disabled": 1.5, ...}`` (reference levels, with ratio 1, are left out)."""
    spec = (effects.get("planted_effects") or {}).get(effect) or {}
    out: dict[str, float] = {}
    for covariate, value in (spec.get("hazard_ratios") or {}).items():
        if isinstance(value, Mapping):
            reference = str((spec.get("reference") or {}).get(covariate))
            for level, ratio in value.items():
                if str(level) != reference:
                    out[f"{covariate}[{level}]"] = float(ratio)
        else:
            out[str(covariate)] = float(value)
    return out


def compare_with_planted(table: pl.DataFrame, planted: Mapping[str, float]) -> pl.DataFrame:
    """Model estimates next to planted values: ``term, reference, hazard_ratio, lower, upper,
    planted, covered`` for the terms that have a planted value (``covered``: the planted value
    lies inside the confidence interval)."""
    estimate = "hazard_ratio" if "hazard_ratio" in table.columns else "odds_ratio"
    truth = pl.DataFrame(
        {"term": list(planted), "planted": [float(v) for v in planted.values()]},
        schema={"term": pl.String, "planted": pl.Float64},
    )
    return (
        table.select("term", "reference", estimate, "lower", "upper")
        .join(truth, on="term", how="inner", maintain_order="left")
        .with_columns(
            covered=(pl.col("lower") <= pl.col("planted")) & (pl.col("planted") <= pl.col("upper"))
        )
    )


def planted_rereferral_12m(effects: Mapping[str, Any]) -> float | None:
    """Share of closed cases re-referred within 365 days implied by the planted re-referral
    process (probability x mixture of two exponential gaps), before LA variation, the 18th
    birthday and moves; ``None`` when the effect is not described."""
    spec = (effects.get("planted_effects") or {}).get("rereferral") or {}
    try:
        prob = float(spec["probability"])
        fast = float(spec["fast_share"])
        fast_mean = float(spec["fast_mean_days"])
        slow_mean = float(spec["slow_mean_days"])
    except (KeyError, TypeError, ValueError):
        return None
    within = fast * (1 - math.exp(-365 / fast_mean)) + (1 - fast) * (1 - math.exp(-365 / slow_mean))
    return prob * within
