"""Local authorities of the synthetic world and their 0–17 populations.

Each LA gets a size (expected referrals = ``scale * size``, sizes average 1), a referral-rate
random effect (log-normal, SD ``referral_rate_sd_log``) that sets its population so that the
LA rate per 10,000 varies while England averages 552.5, a CPP-hazard random effect (SD
``cpp_hazard_sd_log``; two named outliers), an NFA share (logit-normal) and a re-referral
multiplier. Populations are written as ONS-style mid-year estimates by single year of age
and sex; the age structure is the approximate mid-2017 England one (national_figures.md §7).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from cinresearch.synth.las import LA_NAMES, LA_ORDER, la_size_tier
from cinresearch.synth.params import SynthParams

REFERRALS_PER_CHILD_2018 = 0.05525  # 552.5 per 10,000 aged 0-17 (2017-18)
POPULATION_GROWTH_PER_YEAR = 0.0055  # 0-17 population growth after mid-2017
MALE_SHARE_POPULATION = 0.512
# approximate mid-2017 England single-year-of-age shares of the 0-17 population (sum 1)
AGE_SHARES = np.array(
    [0.056] + [0.233 / 4] * 4 + [0.293 / 5] * 5 + [0.316 / 6] * 6 + [0.102 / 2] * 2
)


def _centre(x: np.ndarray) -> np.ndarray:
    return x - x.mean() if len(x) > 1 else np.zeros_like(x)


def build_las(
    n_las: int, scale: int, params: SynthParams, rng: np.random.Generator
) -> pl.DataFrame:
    """The LA table: codes, names, sizes, random effects and mid-2017 0–17 population."""
    if not 1 <= n_las <= len(LA_ORDER):
        raise ValueError(f"las must be between 1 and {len(LA_ORDER)}")
    codes = list(LA_ORDER[:n_las])
    tier = np.array([la_size_tier(c) for c in codes])
    size = tier * np.exp(rng.normal(0.0, params.la_size_sd_log, n_las))
    size = size / size.mean()

    ref_log = _centre(rng.normal(0.0, params.referral_rate_sd_log, n_las))
    ref_mult = np.exp(ref_log)
    c = np.sum(size / ref_mult) / np.sum(size)
    rate_mult = ref_mult * c  # LA referral rate / national rate
    population = params.population_scale * scale * size / (REFERRALS_PER_CHILD_2018 * rate_mult)

    outlier = np.array([code in params.outlier_cpp_hr for code in codes])
    cpp_log = rng.normal(0.0, params.cpp_hazard_sd_log, n_las)
    cpp_log[~outlier] = _centre(cpp_log[~outlier])
    for i, code in enumerate(codes):
        if outlier[i]:
            cpp_log[i] = np.log(params.outlier_cpp_hr[code])
    cpp_hr = np.exp(cpp_log)
    cpp_norm = np.sum(size * cpp_hr) / np.sum(size)

    nfa_logit = rng.normal(0.0, params.nfa_la_sd_logit, n_las)
    lo, hi = -12.0, 6.0
    for _ in range(60):  # shift so that the referral-weighted NFA share is the national one
        mid = (lo + hi) / 2
        share = np.sum(size / (1 + np.exp(-(nfa_logit + mid)))) / np.sum(size)
        lo, hi = (mid, hi) if share < params.nfa_share else (lo, mid)
    nfa_prob = 1 / (1 + np.exp(-(nfa_logit + (lo + hi) / 2)))

    reref = np.exp(_centre(rng.normal(0.0, params.rereferral_la_sd_log, n_las)))
    reref = reref / (np.sum(size * reref) / np.sum(size))

    return pl.DataFrame(
        {
            "la_index": np.arange(n_las, dtype=np.int32),
            "la_code": codes,
            "la_name": [LA_NAMES[c] for c in codes],
            "size": size,
            "referral_rate_multiplier": rate_mult,
            "population_0_17_mid2017": np.round(population).astype(np.int64),
            "cpp_hazard_ratio": cpp_hr,
            "cpp_hazard_multiplier": cpp_hr / cpp_norm,
            "cpp_outlier": outlier,
            "nfa_prob": nfa_prob,
            "rereferral_multiplier": reref,
        }
    )


def population_frame(las: pl.DataFrame, mid_years: list[int]) -> pl.DataFrame:
    """ONS-style estimates: one row per LA × mid-year × age (0–17) × sex (M/F)."""
    rows = []
    for year in mid_years:
        growth = (1 + POPULATION_GROWTH_PER_YEAR) ** (year - 2017)
        for code, total in zip(las["la_code"], las["population_0_17_mid2017"], strict=True):
            by_age = total * growth * AGE_SHARES
            male = np.floor(by_age * MALE_SHARE_POPULATION + 0.5).astype(np.int64)
            female = np.floor(by_age * (1 - MALE_SHARE_POPULATION) + 0.5).astype(np.int64)
            for sex, values in (("M", male), ("F", female)):
                rows.append(
                    pl.DataFrame(
                        {
                            "la_code": code,
                            "year": np.full(18, year, dtype=np.int16),
                            "age": np.arange(18, dtype=np.int8),
                            "sex": sex,
                            "population": values,
                        }
                    )
                )
    return pl.concat(rows).sort(["year", "la_code", "age", "sex"])


def write_population(population: pl.DataFrame, out: Path) -> list[Path]:
    """``out/population/population_<year>.csv`` per mid-year; returns the paths written."""
    folder = out / "population"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for (year,), frame in population.partition_by(
        "year", as_dict=True, maintain_order=True
    ).items():
        path = folder / f"population_{year}.csv"
        frame.write_csv(path)
        paths.append(path)
    return paths
