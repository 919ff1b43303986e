"""Every number the generator uses: planted effects, calibrated rates, code-list mixes.

The planted effects (hazard ratios, LA effect SDs, outlier LAs, re-referral, care entry,
moves, education effects) are repeated in ``data_contracts/synth_effects.yaml``; a test
checks the two agree. Calibrated values were tuned so that the simulated 2017-18 England
measures match ``national_figures.md`` §10 (see :mod:`cinresearch.synth.calibration`).
Durations are in days unless named ``*_wd`` (working days).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Age bands: cinresearch.codes.AGE_BANDS (the one list of DfE age bands).
AGE_BAND_REFERENCE = "5-9"


@dataclass(frozen=True)
class PiecewiseHazard:
    """Piecewise-constant hazard on a daily scale: ``rates[i]`` per day on ``[breaks[i], breaks[i+1])``.

    ``breaks`` starts at 0; the last rate applies from the last break onwards.
    """

    breaks: tuple[float, ...]
    rates: tuple[float, ...]

    def cumulative(self, t: np.ndarray) -> np.ndarray:
        b = np.asarray(self.breaks, dtype=float)
        r = np.asarray(self.rates, dtype=float)
        at_breaks = np.concatenate([[0.0], np.cumsum(np.diff(b) * r[:-1])])
        i = np.clip(np.searchsorted(b, t, side="right") - 1, 0, len(b) - 1)
        return at_breaks[i] + (np.asarray(t, dtype=float) - b[i]) * r[i]

    def inverse(self, h: np.ndarray) -> np.ndarray:
        """Time at which the cumulative hazard reaches ``h`` (vectorised inverse)."""
        b = np.asarray(self.breaks, dtype=float)
        r = np.asarray(self.rates, dtype=float)
        at_breaks = np.concatenate([[0.0], np.cumsum(np.diff(b) * r[:-1])])
        i = np.clip(np.searchsorted(at_breaks, h, side="right") - 1, 0, len(b) - 1)
        return b[i] + (np.asarray(h, dtype=float) - at_breaks[i]) / r[i]

    def draw(self, rng: np.random.Generator, hazard_ratio: np.ndarray) -> np.ndarray:
        """Event times (days, continuous) under hazard ``h0(t) * hazard_ratio``."""
        e = rng.exponential(1.0, size=np.shape(hazard_ratio))
        return self.inverse(e / hazard_ratio)


@dataclass(frozen=True)
class SynthParams:
    """Model parameters. Defaults are the calibrated values (do not edit without re-running
    the calibration tests)."""

    # ---- burn-in and calendar -------------------------------------------------------------
    burn_in_years: int = 12
    # national referrals relative to 2017-18 (DfE series) applied to first referrals
    year_multiplier: dict[int, float] = field(
        default_factory=lambda: {
            2019: 0.993,
            2020: 0.981,
            2021: 0.912,
            2022: 0.992,
            2023: 0.977,
            2024: 0.949,
            2025: 0.95,
        }
    )
    # referrals by month (C6, Jan..Dec, %)
    month_shares: tuple[float, ...] = (8.9, 7.8, 8.6, 6.8, 9.2, 9.4, 8.5, 7.1, 8.2, 9.0, 9.5, 7.0)
    weekend_to_monday: float = 0.85
    # total referrals / first-ever referrals (re-referrals and moves), from calibration runs
    referral_amplification: float = 1.739

    # ---- LAs -------------------------------------------------------------------------------
    # 0-17 population relative to the calibrated one (referrals per child 552.5 per 10,000);
    # 1.0 except in the tests that check the end-to-end calibration fails when it moves
    population_scale: float = 1.0
    la_size_sd_log: float = 0.30
    referral_rate_sd_log: float = 0.30
    cpp_hazard_sd_log: float = 0.25
    outlier_cpp_hr: dict[str, float] = field(default_factory=lambda: {"890": 2.2, "826": 0.45})
    nfa_share: float = 0.094  # referral-weighted national NFA share
    nfa_la_sd_logit: float = 1.0
    rereferral_la_sd_log: float = 0.25

    # ---- children at first referral --------------------------------------------------------
    first_referral_age_band: dict[str, float] = field(
        default_factory=lambda: {
            "unborn": 0.080,
            "under 1": 0.095,
            "1-4": 0.135,
            "5-9": 0.185,
            "10-15": 0.215,
            "16+": 0.290,
        }
    )
    sex_shares: dict[str, float] = field(
        default_factory=lambda: {"M": 0.540, "F": 0.4575, "U": 0.0025}
    )
    disabled_by_band: dict[str, float] = field(
        default_factory=lambda: {
            "unborn": 0.0,
            "under 1": 0.04,
            "1-4": 0.10,
            "5-9": 0.15,
            "10-15": 0.15,
            "16+": 0.13,
        }
    )
    no_upn_share: float = 0.04  # school-age children who never get a UPN (UN2-UN5)
    temporary_upn_share: float = 0.01
    former_upn_share: float = 0.01

    # ---- episode process -------------------------------------------------------------------
    # time to first CPP after a non-NFA referral (cause-specific, proportional hazards)
    cpp_baseline: PiecewiseHazard = PiecewiseHazard(
        breaks=(0, 7, 21, 45, 91, 365),
        rates=(0.000534, 0.00229, 0.002616, 0.001068, 0.000251, 0.0000654),
    )
    cpp_hr_age: dict[str, float] = field(
        default_factory=lambda: {
            "unborn": 2.0,
            "under 1": 1.3,
            "1-4": 1.3,
            "5-9": 1.0,
            "10-15": 0.8,
            "16+": 0.08,
        }
    )
    cpp_hr_disabled: float = 1.5
    # time to closure without a plan (cause-specific, proportional hazards)
    closure_baseline: PiecewiseHazard = PiecewiseHazard(
        breaks=(0, 14, 30, 60, 91, 182, 365, 730),
        rates=(0.005, 0.010, 0.014, 0.015, 0.005, 0.004, 0.003, 0.00015),
    )
    closure_hr_disabled: float = 1.0
    # assessment: start delay (working days) and duration (C2 working-day bands)
    assessment_delay_wd: tuple[tuple[int, float], ...] = ((0, 0.6), (1, 0.2), (2, 0.1), (3, 0.1))
    assessment_wd_bands: tuple[tuple[int, int, float], ...] = (
        (0, 0, 3.1),
        (1, 10, 13.2),
        (11, 20, 17.0),
        (21, 30, 16.4),
        (31, 40, 18.7),
        (41, 45, 14.2),
        (46, 50, 5.1),
        (51, 60, 5.0),
        (61, 120, 7.3),
    )
    # re-assessment during an open episode of need (completed assessments per referral)
    reassessment_prob: float = 0.17
    reassessment_min_gap_days: int = 30
    # S47 start -> ICPC (C4 working-day bands)
    icpc_wd_bands: tuple[tuple[int, int, float], ...] = (
        (3, 10, 1.0),
        (11, 15, 66.0),
        (16, 20, 12.0),
        (21, 45, 21.0),
    )
    # decorations (per non-NFA episode without a plan)
    s47_no_icpc_prob: float = 0.205
    s47_icpc_no_plan_prob: float = 0.0205
    s47_extra_before_plan_prob: float = 0.30
    # CPP duration (D7 ending bands, days)
    cpp_duration_bands: tuple[tuple[int, int, float], ...] = (
        (14, 91, 17.8),
        (92, 182, 10.4),
        (183, 364, 41.8),
        (365, 500, 16.0),  # 1-2 y (23.8%) skewed early: plans on at 31 March 1-2 y 14.4%
        (501, 729, 7.8),
        (730, 1100, 3.4),
    )
    cpp_category_shares: dict[str, float] = field(
        default_factory=lambda: {"NEG": 47.3, "EMO": 34.7, "PHY": 8.5, "SAB": 4.3, "MUL": 5.2}
    )
    # latest category differs from the initial one: redrawn from this mix (D4 vs A5: plans
    # at 31 March move from physical / sexual / multiple towards emotional abuse)
    cpp_latest_category_changes: float = 0.20
    cpp_latest_category_shares: dict[str, float] = field(
        default_factory=lambda: {"NEG": 45.5, "EMO": 48.6, "PHY": 0.7, "SAB": 3.1, "MUL": 2.2}
    )
    # probability of 1-2 earlier plans not simulated (before the simulation start or in LAs
    # outside the generated set), by age band at the child's first simulated referral
    pre_history_cpp: dict[str, float] = field(
        default_factory=lambda: {
            "unborn": 0.0,
            "under 1": 0.02,
            "1-4": 0.18,
            "5-9": 0.21,
            "10-15": 0.22,
            "16+": 0.20,
        }
    )
    # episode continues after a plan ends (no care): share closing soon, else exponential
    post_plan_quick_share: float = 0.32
    post_plan_quick_days: int = 90
    post_plan_mean_days: float = 260.0
    # assessed not in need: closure within this many days of authorisation and no ICPC
    not_in_need_window_days: int = 21
    not_in_need_prob: float = 0.85
    rc9_share_from_2023: float = 0.4
    # closure reasons (episodes of need, not from care, not at 18): renormalised B6 shares
    closure_reason_other: dict[str, float] = field(
        default_factory=lambda: {"RC7": 95.6, "RC5": 3.9, "RC2": 0.25, "RC6": 0.25}
    )
    rc6_at_18: float = 0.07

    # ---- re-referral and moves -------------------------------------------------------------
    rereferral_prob: float = 0.52
    rereferral_fast_share: float = 0.45
    rereferral_fast_mean_days: float = 110.0
    rereferral_slow_mean_days: float = 900.0
    move_rate_per_year: float = 0.02
    transfer_rereferral_prob: float = 0.85
    transfer_gap_max_days: int = 60

    # ---- care (looked after) ---------------------------------------------------------------
    care_after_cpp_prob: float = 0.35
    care_without_plan_prob: float = 0.06
    care_duration_mix: tuple[tuple[str, float], ...] = (
        ("short", 0.35),
        ("medium", 0.30),
        ("long", 0.35),
    )
    placement_change_rate_per_year: float = 0.7
    closure_after_care_max_days: int = 60

    # ---- primary need ----------------------------------------------------------------------
    need_after_plan: dict[str, float] = field(
        default_factory=lambda: {"N1": 78.0, "N4": 5.0, "N5": 12.0, "N3": 2.5, "N0": 2.5}
    )
    need_disabled_n2: float = 0.9
    need_other: dict[str, float] = field(
        default_factory=lambda: {
            "N1": 38.0,
            "N2": 4.5,
            "N3": 3.3,
            "N4": 11.5,
            "N5": 19.5,
            "N6": 3.0,
            "N7": 0.6,
            "N8": 2.6,
            "N9": 1.4,
            "N0": 7.2,
        }
    )
    n8_male_16plus: float = 0.30

    # ---- referral source (C5, %) -----------------------------------------------------------
    referral_source_shares: dict[str, float] = field(
        default_factory=lambda: {
            "1A": 4.0,
            "1B": 1.3,
            "1C": 1.0,
            "1D": 1.8,
            "2A": 18.2,
            "2B": 2.0,
            "3A": 3.0,
            "3B": 2.2,
            "3C": 0.8,
            "3D": 2.3,
            "3E": 3.5,
            "3F": 3.0,
            "4": 1.4,
            "5A": 7.5,
            "5B": 3.6,
            "5C": 2.5,
            "6": 28.5,
            "7": 3.5,
            "8": 5.9,
            "9": 2.4,
            "10": 1.6,
        }
    )
    early_help_5d_share_of_la_from_2023: float = 0.45


DEFAULT_PARAMS = SynthParams()

# ---- code-list mixes that are not calibration targets of the tests ------------------------

ETHNICITY_SHARES: dict[str, float] = {
    "WBRI": 59.2, "WIRI": 0.4, "WIRT": 0.3, "WOTH": 8.5, "WROM": 1.0,
    "MWBC": 2.7, "MWBA": 1.0, "MWAS": 1.3, "MOTH": 3.0,
    "AIND": 1.1, "APKN": 2.6, "ABAN": 1.2, "AOTH": 2.1,
    "BCRB": 1.6, "BAFR": 4.6, "BOTH": 2.0,
    "CHNE": 0.3, "OOTH": 2.6,
    "REFU": 0.7, "NOBT": 3.8,
}  # fmt: skip

# share of disabled CIN with each type (B2; multi-select)
DISABILITY_TYPE_SHARES: dict[str, float] = {
    "LD": 44.4, "AUT": 33.7, "DDA": 21.6, "BEH": 20.7, "COMM": 20.5, "MOB": 18.2,
    "PC": 9.5, "VIS": 7.9, "INC": 7.2, "CON": 5.1, "HEAR": 4.9, "HAND": 3.4,
}  # fmt: skip

# factors identified at assessment: (group share %, [(code, weight), ...]); C3 2017-18
ASSESSMENT_FACTOR_GROUPS: tuple[tuple[float, tuple[tuple[str, float], ...]], ...] = (
    (51.1, (("3B", 0.78), ("3A", 0.12), ("3C", 0.10))),
    (42.6, (("4B", 0.70), ("4A", 0.25), ("4C", 0.05))),
    (21.7, (("17A", 1.0),)),
    (21.0, (("2B", 0.72), ("2A", 0.18), ("2C", 0.10))),
    (19.3, (("20", 1.0),)),
    (18.4, (("1B", 0.80), ("1A", 0.08), ("1C", 0.12))),
    (18.4, (("16A", 1.0),)),
    (14.8, (("PHY", 1.0),)),  # 18A up to 2020; 18B/18C from 2021
    (12.6, (("5A", 0.55), ("5B", 0.35), ("5C", 0.10))),
    (10.6, (("6A", 0.45), ("6B", 0.45), ("6C", 0.10))),
    (8.4, (("14A", 1.0),)),
    (6.4, (("SAB", 1.0),)),  # 19A up to 2020; 19B/19C from 2021
    (4.4, (("15A", 1.0),)),
    (4.1, (("11A", 1.0),)),
    (3.3, (("7A", 1.0),)),
    (3.3, (("10A", 1.0),)),
    (1.8, (("13A", 1.0),)),
    (0.5, (("8B", 0.1), ("8C", 0.1), ("8D", 0.2), ("8E", 0.4), ("8F", 0.2))),
    (0.5, (("9A", 1.0),)),
    (0.4, (("12A", 1.0),)),
    (0.4, (("22A", 1.0),)),
    (0.3, (("23A", 1.0),)),
    (2.0, (("24A", 1.0),)),  # child criminal exploitation, from 2022
)
ASSESSMENT_NO_FACTORS_SHARE = 0.2  # completed assessments returned without factors
ASSESSMENT_FACTOR_21_NOT_IN_NEED = 0.5  # 'no factors' code for assessed-not-in-need

# SSDA903 code mixes
CLA_LS_START: dict[str, float] = {"V2": 0.33, "C1": 0.40, "L2": 0.07, "L1": 0.06, "C2": 0.08, "J2": 0.03, "J1": 0.03}  # fmt: skip
CLA_PLACE: dict[str, float] = {
    "U4": 0.16, "U6": 0.30, "U5": 0.04, "U1": 0.05, "U3": 0.12, "U2": 0.02,
    "K2": 0.10, "P1": 0.06, "H5": 0.05, "R1": 0.03, "R3": 0.02, "S1": 0.02, "Z1": 0.03,
}  # fmt: skip
CLA_REASON_PLACE_CHANGE: dict[str, float] = {
    "CARPL": 0.45, "CREQB": 0.15, "CREQO": 0.10, "LAREQ": 0.10, "CHILD": 0.06,
    "STAND": 0.03, "ALLEG": 0.02, "CLOSE": 0.02, "APPRR": 0.02, "OTHER": 0.05,
}  # fmt: skip
