"""The child / episode simulation (vectorised; no Python loop per child or event).

Children enter the world at their first referral (a Poisson stream per LA and financial
year, with the DfE month pattern). Each referral starts a CIN episode; all episodes of a
given order (first, second, ...) are simulated together as numpy arrays, so the only Python
loop is over the episode number. An episode's history is drawn in this order:

1. NFA (LA-specific probability): closed on the referral date, nothing else.
2. Otherwise an assessment (start delay and working-day duration from DfE table C2), and two
   *latent* times on a daily scale from the referral date, drawn independently given the
   covariates: ``T_cpp`` with hazard ``h0_cpp(t) * HR_age * HR_disabled * HR_LA`` and
   ``T_close`` with hazard ``h0_close(t) * HR_close_disabled``. Children who become looked
   after without a plan keep the episode open until care ends (``T_close`` is extended; this
   is decided independently of ``T_cpp``). The episode closes at the 18th birthday at the
   latest.
3. If ``T_cpp`` comes first, a child protection plan starts then (moved to the next working
   day); its S47 enquiry and ICPC are placed before it; the plan lasts a duration drawn from
   the DfE ending-duration bands; the child may become looked after when it ends; the
   episode closes after the plan (or after care). Otherwise the episode closes at
   ``T_close`` without a plan (assessed not in need when it closes soon after the assessment).
4. After closure the child may be referred again (re-referral), possibly in another LA.

So the cause-specific hazard of "CPP start" after a non-NFA referral is exactly
proportional in the planted covariates, with closure without a plan as competing event.
Codes are carried as small integer indices into label tuples and turned into strings only
when the frames are built.

Long module: one vectorised simulation — the episode rounds and the frames built from the same
arrays — whose helpers all index the array layout of :class:`SynthWorld` and read best beside
the loop that fills it; split apart they would pass a dozen parallel arrays between modules.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import polars as pl

from cinresearch.codes import AGE_BANDS
from cinresearch.synth import dates as D
from cinresearch.synth.arrays import NA, date_series, pick
from cinresearch.synth.care import cla_episodes_frame
from cinresearch.synth.education import npd_frame
from cinresearch.synth.ids import make_la_child_ids, make_upns
from cinresearch.synth.params import (
    ASSESSMENT_FACTOR_21_NOT_IN_NEED,
    ASSESSMENT_FACTOR_GROUPS,
    ASSESSMENT_NO_FACTORS_SHARE,
    DEFAULT_PARAMS,
    DISABILITY_TYPE_SHARES,
    ETHNICITY_SHARES,
    SynthParams,
)
from cinresearch.synth.population import build_las, population_frame
from cinresearch.synth.pre_proceedings import pre_proceedings_frame

REASONS = ("RC1", "RC2", "RC3", "RC4", "RC5", "RC6", "RC7", "RC8", "RC9")
RC = {c: i for i, c in enumerate(REASONS)}
EXITS = ("", "home", "other", "sgo", "cao", "adopted", "to18", "18")
EX = {c: i for i, c in enumerate(EXITS)}
UN_REASONS = ("UN2", "UN3", "UN4", "UN5")


@dataclass
class SynthWorld:
    """Everything simulated, as polars frames (dates as ``pl.Date``).

    Frames hold the history *as observable at the data end* (31 March of the last census
    year): later dates are null and later records dropped. ``episodes`` also keeps the
    latent quantities (``latent_*``, ``cpp_hazard_ratio``) of the planted model. Burn-in
    history is summarised, not kept: episodes closed before ``window_start`` (1 April of the
    year before the first census year) are dropped after their effect on later episodes
    (previous plans, previous referral, re-referral, first episode of need) was recorded;
    ``persons`` holds the children under 18 at some point from ``window_start``.
    """

    params: SynthParams
    seed: int
    years: tuple[int, int]
    scale: int
    data_end: date
    sim_start: date
    window_start: date
    las: pl.DataFrame
    persons: pl.DataFrame
    la_children: pl.DataFrame
    episodes: pl.DataFrame
    assessments: pl.DataFrame
    section47: pl.DataFrame
    cin_plans: pl.DataFrame
    cp_plans: pl.DataFrame
    cpp_reviews: pl.DataFrame
    care_periods: pl.DataFrame
    cla_episodes: pl.DataFrame
    population: pl.DataFrame
    npd: pl.DataFrame | None = None
    #: pre-proceedings (2025-26 module), drawn from the CP plans; see synth/pre_proceedings.py
    pre_proceedings: pl.DataFrame | None = None
    timings: dict[str, float] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------
# small helpers


def labels(
    idx: np.ndarray, names: tuple[str, ...] | list[str], mask: np.ndarray | None = None
) -> pl.Series:
    """String column from integer indices into ``names`` (``mask`` True → null)."""
    ix = np.asarray(idx, dtype=np.int64)
    ix = pl.Series(np.ma.masked_array(ix, mask) if mask is not None else ix)
    return pl.Series(list(names), dtype=pl.String).gather(ix)


def _draw_bands(
    rng: np.random.Generator, bands: tuple[tuple[int, int, float], ...], n: int
) -> np.ndarray:
    """Integers from a banded distribution: pick a band by weight, then uniform within it."""
    lo = np.array([b[0] for b in bands])
    hi = np.array([b[1] for b in bands])
    k = pick(rng, [b[2] for b in bands], n)
    return lo[k] + np.floor(rng.random(n) * (hi[k] - lo[k] + 1)).astype(np.int64)


def age_band_index(birth: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Index into ``AGE_BANDS`` of the age at ``at`` (unborn if before birth)."""
    years = D.age_in_years(birth, at)
    out = np.select(
        [at < birth, years < 1, years < 5, years < 10, years < 16], [0, 1, 2, 3, 4], default=5
    )
    return out.astype(np.int8)


def _by_band(values: dict[str, float]) -> np.ndarray:
    return np.array([values[b] for b in AGE_BANDS], dtype=float)


# ----------------------------------------------------------------------------------------------
# first referrals -> persons


def _first_referrals(
    rng: np.random.Generator,
    las: pl.DataFrame,
    scale: int,
    first_fy: int,
    last_fy: int,
    params: SynthParams,
    sim_end: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(LA index, referral day) of every child's first simulated referral."""
    size = las["size"].to_numpy()
    fys = np.arange(first_fy, last_fy + 1)
    mult = np.array([params.year_multiplier.get(int(y), 1.0) if y > 2018 else 1.0 for y in fys])
    lam = scale * size[:, None] * mult[None, :] / params.referral_amplification
    counts = rng.poisson(lam)
    la_idx = np.repeat(np.repeat(np.arange(len(size)), len(fys)), counts.ravel())
    fy = np.repeat(np.tile(fys, len(size)), counts.ravel())
    n = len(la_idx)
    month = pick(rng, list(params.month_shares), n) + 1  # 1..12
    cal_year = np.where(month >= 4, fy - 1, fy)
    first = D.from_ymd(cal_year, month, np.ones(n, dtype=np.int64))
    length = D.from_ymd(cal_year, month, np.full(n, 31)) - first + 1
    ref = first + np.floor(rng.random(n) * length).astype(np.int64)
    weekday = (ref + 3) % 7  # Monday = 0
    shift = np.where(weekday == 5, 2, np.where(weekday == 6, 1, 0))
    move = (shift > 0) & (rng.random(n) < params.weekend_to_monday) & (ref + shift <= sim_end)
    ref = np.where(move, ref + shift, ref)
    order = np.lexsort((ref, la_idx))
    return la_idx[order], ref[order]


def _make_persons(
    rng: np.random.Generator, la_idx: np.ndarray, ref: np.ndarray, params: SynthParams
) -> dict[str, np.ndarray]:
    n = len(ref)
    band = pick(rng, params.first_referral_age_band, n)
    u = rng.random(n)
    y = 365.25
    age_days = np.select(
        [band == 0, band == 1, band == 2, band == 3, band == 4],
        [
            -(30 + u * 220),
            np.where(rng.random(n) < 0.4, u * 30, 31 + u * 333),
            y + u * 4 * y,
            5 * y + u * 5 * y,
            10 * y + u * 6 * y,
        ],
        default=16 * y + u * (2 * y - 25),
    )
    birth = ref - np.floor(age_days).astype(np.int64)
    birth = np.where(band == 0, np.maximum(birth, ref + 1), np.minimum(birth, ref))
    b18 = np.maximum(D.add_years(birth, 18), ref + 1)
    band = age_band_index(birth, ref)
    disabled = rng.random(n) < _by_band(params.disabled_by_band)[band]
    pre = np.where(
        rng.random(n) < _by_band(params.pre_history_cpp)[band],
        np.where(rng.random(n) < 0.8, 1, 2),
        0,
    )
    return {
        "first_la": la_idx,
        "first_referral": ref,
        "birth": birth,
        "b18": b18,
        "band_first": band,
        "sex": pick(rng, params.sex_shares, n),  # index into params.sex_shares
        "ethnicity": pick(rng, ETHNICITY_SHARES, n),
        "disabled": disabled,
        "pre_cpps": pre,
        "death": np.full(n, NA, dtype=np.int64),
    }


# ----------------------------------------------------------------------------------------------
# care periods


def _draw_care(
    rng: np.random.Generator, start: np.ndarray, birth: np.ndarray, b18: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(end day, exit index into EXITS) of care periods starting at ``start``; ends by 18."""
    n = len(start)
    kind = pick(rng, [0.30, 0.30, 0.40], n)
    young = (start - birth) < 5 * 365
    dur = np.select(
        [kind == 0, kind == 1],
        [1 + np.minimum(rng.exponential(60.0, n), 180), 180 + rng.random(n) * 720],
        default=np.where(young, 550 + rng.random(n) * 1300, 900 + rng.random(n) * 4500),
    ).astype(np.int64)
    u = rng.random(n)
    short = np.where(u < 0.8, EX["home"], EX["other"])
    medium = np.select(
        [young & (u > 0.8), u < 0.5, u < 0.7, u < 0.74],
        [EX["adopted"], EX["home"], EX["sgo"], EX["cao"]],
        default=EX["other"],
    )
    long = np.where(
        young,
        np.select([u < 0.7, u < 0.9], [EX["adopted"], EX["sgo"]], default=EX["home"]),
        np.select([u < 0.15, u < 0.3], [EX["sgo"], EX["home"]], default=EX["to18"]),
    )
    exit_type = np.select([kind == 0, kind == 1], [short, medium], default=long)
    end = np.where(exit_type == EX["to18"], b18, start + dur)
    exit_type = np.where(end >= b18, EX["18"], exit_type)
    return np.minimum(end, b18), exit_type


# ----------------------------------------------------------------------------------------------
# one round of episodes (every child's k-th referral at once)


def _round(
    rng: np.random.Generator,
    p: np.ndarray,
    la: np.ndarray,
    r: np.ndarray,
    P: dict[str, np.ndarray],
    L: dict[str, np.ndarray],
    params: SynthParams,
    sim_end: int,
) -> tuple[dict[str, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    n = len(p)
    birth, b18, dis = P["birth"][p], P["b18"][p], P["disabled"][p]
    band = age_band_index(birth, r)
    nfa = rng.random(n) < L["nfa"][la]

    delay_vals = np.array([d for d, _ in params.assessment_delay_wd])
    delay = delay_vals[pick(rng, [w for _, w in params.assessment_delay_wd], n)]
    a_start = D.add_working_days(r, delay)
    a_auth_plan = D.add_working_days(a_start, _draw_bands(rng, params.assessment_wd_bands, n))

    # latent competing times (days, continuous)
    hr_cpp = (
        _by_band(params.cpp_hr_age)[band]
        * np.where(dis, params.cpp_hr_disabled, 1.0)
        * L["cpp"][la]
    )
    t_cpp = params.cpp_baseline.draw(rng, hr_cpp)
    t_close = params.closure_baseline.draw(rng, np.where(dis, params.closure_hr_disabled, 1.0))
    # an episode without a plan closes no earlier than its assessment is authorised
    t_close = np.maximum(t_close, (a_auth_plan - r).astype(float))
    d18 = (b18 - r).astype(float)

    # care without a plan (decided independently of T_cpp)
    t_c = (a_auth_plan - r) + rng.integers(0, 91, n)
    care_nc = (
        (rng.random(n) < params.care_without_plan_prob)
        & ~nfa
        & (t_c < t_close)
        & (t_c < d18 - 60)
        & (r + t_c > birth)
    )
    nc_end, nc_exit = _draw_care(rng, r + t_c, birth, b18)
    care_gap = rng.integers(0, params.closure_after_care_max_days + 1, n)
    t_close2 = np.where(care_nc, np.maximum(t_close, (nc_end - r) + care_gap), t_close)
    t_close2 = np.minimum(t_close2, d18)
    cpp = ~nfa & (t_cpp < t_close2)

    # ---- plan path
    cpp_start = r + np.floor(np.where(cpp, t_cpp, 0)).astype(np.int64)
    rolled = D.roll_to_working_day(cpp_start)
    cpp_start = np.where(rolled < b18, rolled, cpp_start)
    cpp_end = np.minimum(cpp_start + _draw_bands(rng, params.cpp_duration_bands, n), b18)
    care_c = (
        cpp
        & (rng.random(n) < params.care_after_cpp_prob)
        & (cpp_end < b18 - 60)
        & (cpp_end > birth)
    )
    c_end, c_exit = _draw_care(rng, cpp_end, birth, b18)
    quick = rng.random(n) < params.post_plan_quick_share
    post_gap = np.where(
        quick,
        rng.integers(0, params.post_plan_quick_days + 1, n),
        params.post_plan_quick_days + np.floor(rng.exponential(params.post_plan_mean_days, n)),
    ).astype(np.int64)
    closure_cpp = np.where(care_c, c_end + care_gap, cpp_end + post_gap)

    closure = np.where(nfa, r, np.where(cpp, closure_cpp, r + np.floor(t_close2).astype(np.int64)))
    closure = np.minimum(closure, b18)
    a_start = np.where(nfa, NA, np.minimum(a_start, closure))
    a_auth = np.where(nfa, NA, np.minimum(a_auth_plan, closure))

    # care (either path)
    care_nc &= ~cpp
    has_care = care_nc | care_c
    care_start = np.where(care_c, cpp_end, np.where(care_nc, r + t_c, NA))
    care_end = np.where(care_c, c_end, np.where(care_nc, nc_end, NA))
    care_exit = np.where(care_c, c_exit, np.where(care_nc, nc_exit, 0))

    # ---- S47 decorations on episodes without a plan (independent of the latent times)
    u = rng.random(n)
    open_ep = ~nfa & ~cpp
    s47_icpc = open_ep & (u < params.s47_icpc_no_plan_prob)
    s47_only = open_ep & ~s47_icpc & (u < params.s47_icpc_no_plan_prob + params.s47_no_icpc_prob)
    s47d = s47_icpc | s47_only
    s47d_start = np.minimum(D.roll_to_working_day(r + rng.integers(0, 6, n)), closure)
    icpcd = D.add_working_days(s47d_start, _draw_bands(rng, params.icpc_wd_bands, n))
    s47d_start = np.where(s47d, s47d_start, NA)
    icpcd = np.where(s47_icpc, np.minimum(icpcd, closure), NA)
    # the plan's own enquiry (ICPC on the plan start date) and an occasional earlier one
    s47_cpp = D.subtract_working_days(cpp_start, _draw_bands(rng, params.icpc_wd_bands, n))
    s47_cpp = np.where(cpp, np.maximum(s47_cpp, r), NA)
    s47x_start = D.roll_to_working_day(r + rng.integers(0, 4, n))
    extra = cpp & (rng.random(n) < params.s47_extra_before_plan_prob) & (s47x_start < s47_cpp - 5)
    s47x_start = np.where(extra, s47x_start, NA)

    # ---- closure reasons
    care_driven = has_care & (closure <= care_end + params.closure_after_care_max_days)
    exit_reason = np.select(
        [care_exit == EX["adopted"], care_exit == EX["sgo"], care_exit == EX["cao"]],
        [RC["RC1"], RC["RC4"], RC["RC3"]],
        default=RC["RC7"],
    )
    at18 = (closure >= b18) & ~nfa
    rc6 = rng.random(n) < params.rc6_at_18
    reason = np.where(care_driven, exit_reason, RC["RC7"])
    reason = np.where(at18 & (~care_driven | (care_exit == EX["18"])) & rc6, RC["RC6"], reason)
    free = ~nfa & ~care_driven & ~at18
    not_in_need = (
        free
        & ~cpp
        & ~s47_icpc
        & (closure - a_auth <= params.not_in_need_window_days)
        & (rng.random(n) < params.not_in_need_prob)
    )
    rc9 = (
        not_in_need
        & (D.census_year_of(closure) >= 2023)
        & (rng.random(n) < params.rc9_share_from_2023)
    )
    other_codes = np.array([RC[c] for c in params.closure_reason_other])
    other = other_codes[pick(rng, params.closure_reason_other, n)]
    other = np.where((other == RC["RC2"]) & (closure < birth), RC["RC7"], other)
    other = np.where((other == RC["RC6"]) & (D.age_in_years(birth, closure) < 17), RC["RC7"], other)
    reason = np.where(free & ~not_in_need, other, reason)
    reason = np.where(not_in_need, np.where(rc9, RC["RC9"], RC["RC8"]), reason)

    died = reason == RC["RC2"]
    P["death"][p[died]] = closure[died]

    # ---- next referral
    p_next = params.rereferral_prob * L["reref"][la]
    p_next = np.where((reason == RC["RC3"]) | (reason == RC["RC4"]), p_next * 0.3, p_next)
    has_next = rng.random(n) < p_next
    fast = rng.random(n) < params.rereferral_fast_share
    gap = np.where(
        fast,
        rng.exponential(params.rereferral_fast_mean_days, n),
        rng.exponential(params.rereferral_slow_mean_days, n),
    )
    move = rng.random(n) < 1 - np.exp(-params.move_rate_per_year * gap / 365.25)
    transfer = (reason == RC["RC5"]) & (rng.random(n) < params.transfer_rereferral_prob)
    has_next = (has_next | transfer) & ~died & (reason != RC["RC1"])
    gap = np.where(transfer, rng.integers(0, params.transfer_gap_max_days + 1, n), gap)
    move |= transfer
    r_next = closure + 1 + np.floor(gap).astype(np.int64)
    n_las = len(L["size_p"])
    dest = rng.choice(n_las, size=n, p=L["size_p"])
    dest = np.where(dest == la, rng.choice(n_las, size=n, p=L["size_p"]), dest)
    la_next = np.where(move, dest, la)
    keep = has_next & (r_next < b18) & (r_next <= sim_end)

    out = {
        "person": p,
        "la": la,
        "referral": r,
        "referral_nfa": nfa,
        "band": band,
        "disabled": dis,
        "assessment_start": a_start,
        "assessment_authorised": a_auth,
        "latent_cpp_days": np.where(nfa, np.nan, t_cpp),
        "latent_close_days": np.where(nfa, np.nan, t_close2),
        "cpp_hazard_ratio": np.where(nfa, np.nan, hr_cpp),
        "cpp": cpp,
        "cpp_start": np.where(cpp, cpp_start, NA),
        "cpp_end": np.where(cpp, cpp_end, NA),
        "s47_cpp_start": s47_cpp,
        "s47x_start": s47x_start,
        "s47d_start": s47d_start,
        "s47d_icpc": icpcd,
        "closure": closure,
        "closure_reason": reason,
        "care_start": care_start,
        "care_end": care_end,
        "care_exit": care_exit,
        "has_care": has_care,
    }
    for key, value in out.items():  # day numbers and small codes fit in 32 / 8 bits
        if value.dtype == np.int64 and key != "person":
            out[key] = value.astype(np.int8 if key in ("closure_reason", "care_exit") else np.int32)
    return out, (p[keep], la_next[keep], r_next[keep])


# ----------------------------------------------------------------------------------------------
# decorations on the finished episode table


def _decorate(
    rng: np.random.Generator,
    E: dict[str, np.ndarray],
    P: dict[str, np.ndarray],
    params: SynthParams,
) -> None:
    """Referral source, primary need, CPP category, CIN plans (in place, vectorised)."""
    n = len(E["referral"])
    sources = list(params.referral_source_shares)
    src = pick(rng, params.referral_source_shares, n)
    la_services = np.isin(src, [sources.index(c) for c in ("5A", "5B", "5C")])
    to_5d = (
        la_services
        & (D.census_year_of(E["referral"]) >= 2023)
        & (rng.random(n) < params.early_help_5d_share_of_la_from_2023)
    )
    E["referral_source"] = np.where(to_5d, len(sources), src)  # index len(sources) = "5D"

    needs = list(params.need_other)
    male16 = (P["sex"][E["person"]] == list(params.sex_shares).index("M")) & (E["band"] == 5)
    need = pick(rng, params.need_other, n)
    plan_need = np.array([needs.index(c) for c in params.need_after_plan])[
        pick(rng, params.need_after_plan, n)
    ]
    need = np.where(male16 & (rng.random(n) < params.n8_male_16plus), needs.index("N8"), need)
    need = np.where(
        E["disabled"] & (rng.random(n) < params.need_disabled_n2), needs.index("N2"), need
    )
    E["primary_need"] = np.where(E["cpp"], plan_need, need)

    init = pick(rng, params.cpp_category_shares, n)
    changed = rng.random(n) < params.cpp_latest_category_changes
    E["cpp_initial_category"] = init
    E["cpp_latest_category"] = np.where(
        changed, pick(rng, params.cpp_latest_category_shares, n), init
    )

    # CIN plans: after the assessment for episodes of need (ending before a plan or care),
    # and a step-down plan after a CPP that did not end in care
    closure, auth = E["closure"], E["assessment_authorised"]
    need_ep = ~E["referral_nfa"] & (E["closure_reason"] < RC["RC8"])
    start1 = auth + rng.integers(0, 8, n)
    end1 = np.where(
        E["cpp"], E["cpp_start"] - 1, np.where(E["has_care"], E["care_start"] - 1, closure)
    )
    plan1 = need_ep & (auth != NA) & (end1 - start1 > 14) & (rng.random(n) < 0.75)
    E["cin_plan1_start"] = np.where(plan1, start1, NA)
    E["cin_plan1_end"] = np.where(plan1, end1, NA)
    start2 = E["cpp_end"] + 1
    plan2 = E["cpp"] & ~E["has_care"] & (closure - start2 > 14) & (rng.random(n) < 0.7)
    E["cin_plan2_start"] = np.where(plan2, start2, NA)
    E["cin_plan2_end"] = np.where(plan2, closure, NA)


def _factors(
    rng: np.random.Generator, episode_id: np.ndarray, auth: np.ndarray, not_in_need: np.ndarray
) -> pl.DataFrame:
    """(episode_id, factors list) for completed assessments; year-specific code lists."""
    n = len(auth)
    cy = D.census_year_of(auth)
    vocab: list[str] = []
    rows, codes = [], []
    for share, group in ASSESSMENT_FACTOR_GROUPS:
        present = rng.random(n) < share / 100
        if group[0][0] == "PHY":
            names = ["18A", "18B", "18C"]
            k = np.where(cy <= 2020, 0, np.where(rng.random(n) < 0.3, 1, 2))
        elif group[0][0] == "SAB":
            names = ["19A", "19B", "19C"]
            k = np.where(cy <= 2020, 0, np.where(rng.random(n) < 0.3, 1, 2))
        else:
            names = [c for c, _ in group]
            k = pick(rng, [w for _, w in group], n)
            if names == ["24A"]:
                present &= cy >= 2022
        offset = len(vocab)
        vocab.extend(names)
        idx = np.flatnonzero(present)
        rows.append(idx)
        codes.append(offset + k[idx])
    vocab.append("21")
    none = rng.random(n) < ASSESSMENT_NO_FACTORS_SHARE
    only21 = not_in_need & (rng.random(n) < ASSESSMENT_FACTOR_21_NOT_IN_NEED)
    rows_all = np.concatenate(rows + [np.flatnonzero(only21)])
    codes_all = np.concatenate(codes + [np.full(int(only21.sum()), len(vocab) - 1)])
    keep = ~none[rows_all] & (~only21[rows_all] | (codes_all == len(vocab) - 1))
    long = pl.DataFrame(
        {
            "episode_id": episode_id[rows_all[keep]],
            "factor": labels(codes_all[keep], vocab),
        }
    )
    return long.group_by("episode_id", maintain_order=True).agg(factors=pl.col("factor"))


def _disabilities(rng: np.random.Generator, disabled: np.ndarray) -> pl.Series:
    """Disability codes per child (list; empty for a child who is not disabled)."""
    n = len(disabled)
    codes = list(DISABILITY_TYPE_SHARES)
    p = np.array(list(DISABILITY_TYPE_SHARES.values())) / 100 / 1.04
    rows = np.flatnonzero(disabled)
    has = rng.random((len(rows), len(codes))) < p
    none = ~has.any(axis=1)
    has[none, rng.choice(len(codes), size=len(rows), p=p / p.sum())[none]] = True
    r, c = np.nonzero(has)
    long = pl.DataFrame({"row": rows[r], "code": labels(c, codes)})
    lists = long.group_by("row", maintain_order=True).agg(pl.col("code"))
    full = pl.DataFrame({"row": np.arange(n)}).join(lists, on="row", how="left")
    return (
        full.sort("row")["code"]
        .fill_null(pl.lit([], dtype=pl.List(pl.String)))
        .alias("disabilities")
    )


def _reviews(
    rng: np.random.Generator, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(plan row, review day) for child protection reviews strictly before the plan end.

    First review within about 3 months of the plan start (10% late), then every ~6 months.
    """
    n = len(start)
    k = np.clip((end - start) // 150 + 2, 1, 40)
    row = np.repeat(np.arange(n), k)
    first = np.r_[0, np.cumsum(k)[:-1]]
    pos = np.arange(len(row)) - np.repeat(first, k)
    late = rng.random(len(row)) < 0.1
    inc = np.where(
        pos == 0,
        np.where(late, rng.integers(93, 131, len(row)), rng.integers(60, 93, len(row))),
        np.where(late, rng.integers(184, 231, len(row)), rng.integers(150, 184, len(row))),
    )
    cum = np.cumsum(inc)
    base = np.repeat(cum[first] - inc[first], k)
    day = D.roll_to_working_day(start[row] + (cum - base))
    keep = day < end[row]
    return row[keep], day[keep]


# ----------------------------------------------------------------------------------------------
# public entry point


def simulate(
    las: int = 10,
    years: tuple[int, int] = (2018, 2024),
    scale: int = 2000,
    seed: int = 1,
    params: SynthParams = DEFAULT_PARAMS,
    education: bool = True,
    log: Callable[[str], None] | None = None,
) -> SynthWorld:
    """Simulate the synthetic world in memory; :func:`cinresearch.synth.generate` writes it.

    ``years`` are census years (end years, inclusive); the simulation starts
    ``params.burn_in_years`` before the first one so that the first return has realistic
    carried-over episodes and previous referrals. Same arguments → identical frames.
    """
    first_year, last_year = years
    if first_year > last_year:
        raise ValueError("years must be (first, last)")
    if first_year < 2012 or last_year > 2030:
        raise ValueError("census years must be within 2012-2030")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal t0
        now = time.perf_counter()
        timings[name] = round(now - t0, 3)
        t0 = now
        if log is not None:
            log(f"{name} ({timings[name]:.1f}s)")

    def rng(stream: int) -> np.random.Generator:
        return np.random.default_rng([seed, stream])

    first_fy = first_year - params.burn_in_years
    sim_start = D.april1(first_fy - 1)
    sim_end = D.march31(last_year)
    la_table = build_las(las, scale, params, rng(1))
    size = la_table["size"].to_numpy()
    L = {
        "nfa": la_table["nfa_prob"].to_numpy(),
        "cpp": la_table["cpp_hazard_multiplier"].to_numpy(),
        "reref": la_table["rereferral_multiplier"].to_numpy(),
        "size_p": size / size.sum(),
    }
    la_idx, ref = _first_referrals(rng(2), la_table, scale, first_fy, last_year, params, sim_end)
    P = _make_persons(rng(3), la_idx, ref, params)
    stage("first referrals")

    rounds = []
    p, la, r = np.arange(len(ref)), la_idx, ref
    k = 0
    while len(p):
        out, (p, la, r) = _round(rng(100 + k), p, la, r, P, L, params, sim_end)
        rounds.append(out)
        k += 1
    E = {key: np.concatenate([o.pop(key) for o in rounds]) for key in list(rounds[0])}
    del rounds
    order = np.lexsort((E["referral"], E["person"]))
    for key in E:  # reorder in place, one array at a time (keeps peak memory down)
        E[key] = E[key][order]
    stage(f"episodes ({k} rounds)")

    _decorate(rng(4), E, P, params)
    first_need = _history(E, P)
    # keep what the census years can show: episodes still open on 1 April of the year before
    # the first census year (earlier history is summarised in the columns _history added)
    keep_from = D.census_year_start(first_year) - 365
    keep = E["closure"] >= keep_from
    for key in E:
        E[key] = E[key][keep]
    E["episode_id"] = np.arange(int(keep.sum()))
    codes = la_table["la_code"].to_numpy()
    pairs = pl.DataFrame({"person": E["person"], "la": E["la"]}).unique().sort(["la", "person"])
    la_children = pairs.with_columns(
        la_code=labels(pairs["la"].to_numpy(), list(codes)),
        la_child_id=make_la_child_ids(pairs["la"].to_numpy(), las, rng(5)),
    )
    persons = _persons_frame(rng(6), P, codes, params).with_columns(
        first_need_referral_date=date_series(first_need)
    )
    stage("identifiers")

    frames = _frames(rng(7), E, P, persons, la_children, codes, params, sim_end)
    frames["assessments"] = _with_reassessments(rng(10), frames["assessments"], E, params, sim_end)
    # children who could appear in any output: under 18 at some point of the kept window
    persons = persons.filter(pl.Series(P["b18"] >= keep_from))
    del E, P  # the frames hold everything from here on (keeps peak memory down)
    stage("nested records")

    cla = cla_episodes_frame(rng(8), frames["care_periods"], sim_end)
    stage("care")

    world = SynthWorld(
        params=params,
        seed=seed,
        years=years,
        scale=scale,
        data_end=D.EPOCH + timedelta(days=sim_end),
        sim_start=D.EPOCH + timedelta(days=sim_start),
        window_start=D.EPOCH + timedelta(days=keep_from),
        las=la_table,
        persons=persons,
        la_children=la_children.drop("la").rename({"person": "person_id"}),
        population=population_frame(la_table, list(range(first_year - 1, last_year + 1))),
        cla_episodes=cla,
        timings=timings,
        **frames,
    )
    if education:
        world.npd = npd_frame(rng(9), world)
        stage("education")
    world.pre_proceedings = pre_proceedings_frame(rng(10), world.cp_plans, world.data_end)
    return world


def _persons_frame(
    rng: np.random.Generator, P: dict[str, np.ndarray], la_codes: np.ndarray, params: SynthParams
) -> pl.DataFrame:
    """One row per simulated child (across LAs): characteristics, UPN, pre-history."""
    n = len(P["birth"])
    birth = P["birth"]
    by, bm, _ = D.year_month_day(birth)
    alloc_year = by + 4 + (bm >= 9)  # September of reception year
    alloc_day = D.from_ymd(alloc_year, np.full(n, 9), np.ones(n, dtype=np.int64)) + rng.integers(
        0, 21, n
    )
    no_upn = rng.random(n) < params.no_upn_share
    no_upn_reason = pick(rng, [0.3, 0.3, 0.2, 0.2], n)
    temporary = rng.random(n) < params.temporary_upn_share
    first_la = la_codes[P["first_la"]]
    upn = make_upns(first_la, alloc_year, temporary, rng)
    former = (rng.random(n) < params.former_upn_share) & ~no_upn
    rows = np.flatnonzero(former)
    former_upn = (
        pl.repeat(None, n, dtype=pl.String, eager=True)
        .alias("former_upn")
        .scatter(
            rows,
            make_upns(
                first_la[rows], alloc_year[rows] - 1, np.zeros(len(rows), dtype=bool), rng, 7000
            ),
        )
    )
    expected = np.where(birth > P["first_referral"], birth + rng.integers(-14, 15, n), NA)
    expected = np.where((expected != NA) & (expected <= P["first_referral"]), birth, expected)
    frame = pl.DataFrame(
        {
            "person_id": np.arange(n, dtype=np.int64),
            "birth_date": date_series(birth),
            "expected_birth_date": date_series(expected),
            "sex": labels(P["sex"], list(params.sex_shares)),
            "ethnicity": labels(P["ethnicity"], list(ETHNICITY_SHARES)),
            "disabled": P["disabled"],
            "disabilities": _disabilities(rng, P["disabled"]),
            "death_date": date_series(P["death"]),
            "upn": upn,
            "upn_allocated": date_series(np.where(no_upn, NA, alloc_day)),
            "upn_unknown_reason": labels(no_upn_reason, UN_REASONS, ~no_upn),
            "former_upn": former_upn,
            "pre_history_cpps": P["pre_cpps"].astype(np.int16),
            "first_la_code": labels(P["first_la"], list(la_codes)),
            "first_referral_date": date_series(P["first_referral"]),
            "age_band_first_referral": labels(P["band_first"], AGE_BANDS),
        }
    )
    return frame.with_columns(
        upn=pl.when(pl.Series(no_upn)).then(None).otherwise(pl.col("upn")),
    )


def _history(E: dict[str, np.ndarray], P: dict[str, np.ndarray]) -> np.ndarray:
    """Values that need the child's whole simulated history (added to ``E`` in place).

    Number of previous plans (any LA, plus the pre-history draw), order of the episode within
    (child, LA), the previous referral there and re-referral within 12 months (previous
    referral on/after the same day-month a year earlier). Returns each child's first referral
    date of an episode of need (``NA`` if none).
    """
    n = len(E["referral"])
    cpp_rows = np.flatnonzero(E["cpp"])
    order = np.lexsort((E["cpp_start"][cpp_rows], E["person"][cpp_rows]))
    cpp_sorted = cpp_rows[order]
    person_sorted = E["person"][cpp_sorted]
    first_of_person = np.r_[True, person_sorted[1:] != person_sorted[:-1]]
    run_start = np.maximum.accumulate(np.where(first_of_person, np.arange(len(order)), 0))
    previous = np.zeros(n, dtype=np.int64)
    previous[cpp_sorted] = np.arange(len(order)) - run_start + P["pre_cpps"][person_sorted]
    E["previous_cpps"] = previous

    by_la = np.lexsort((E["referral"], E["la"], E["person"]))
    p_s, l_s = E["person"][by_la], E["la"][by_la]
    new_group = np.r_[True, (p_s[1:] != p_s[:-1]) | (l_s[1:] != l_s[:-1])]
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
    order_in_la = np.empty(n, dtype=np.int64)
    order_in_la[by_la] = np.arange(n) - group_start + 1
    prev_ref = np.empty(n, dtype=np.int64)
    prev_ref[by_la] = np.where(new_group, NA, np.r_[NA, E["referral"][by_la][:-1]])
    E["episode_order"] = order_in_la
    E["previous_referral"] = prev_ref
    E["rereferral_12m"] = (prev_ref != NA) & (prev_ref >= D.add_years(E["referral"], -1))

    need = ~E["referral_nfa"] & (E["closure_reason"] < RC["RC8"])
    first_need = np.full(len(P["birth"]), np.iinfo(np.int64).max)
    np.minimum.at(first_need, E["person"][need], E["referral"][need])
    return np.where(first_need == np.iinfo(np.int64).max, NA, first_need)


def _with_reassessments(
    rng: np.random.Generator,
    assessments: pl.DataFrame,
    E: dict[str, np.ndarray],
    params: SynthParams,
    sim_end: int,
) -> pl.DataFrame:
    """Add a second assessment to some episodes of need still open well after the first.

    With probability ``reassessment_prob`` an episode (not NFA, not closed as assessed not in
    need) open at least ``reassessment_min_gap_days`` after its first assessment was authorised
    gets a re-assessment starting uniformly in that open period (at most a year on), with the
    same working-day duration bands, authorised no later than the closure (DfE counts every
    completed assessment: 631,090 in 2017-18 for 593,940 referrals that were not NFA).
    Its factors are drawn like a first assessment's, with the code list of its own year.
    """
    auth = E["assessment_authorised"].astype(np.int64)
    closure = E["closure"].astype(np.int64)
    gap = params.reassessment_min_gap_days
    room = np.minimum(closure, auth + 365) - (auth + gap)
    eligible = (
        ~E["referral_nfa"]
        & (auth != NA)
        & (E["closure_reason"] < RC["RC8"])
        & (room > 0)
        & (rng.random(len(auth)) < params.reassessment_prob)
    )
    idx = np.flatnonzero(eligible)
    start = auth[idx] + gap + np.floor(rng.random(len(idx)) * room[idx]).astype(np.int64)
    start = D.roll_to_working_day(start)
    done = np.minimum(
        D.add_working_days(start, _draw_bands(rng, params.assessment_wd_bands, len(idx))),
        closure[idx],
    )
    keep = (start <= sim_end) & (start <= closure[idx])
    idx, start, done = idx[keep], start[keep], done[keep]
    done = np.where(done > sim_end, NA, done)
    row = np.arange(len(idx))
    finished = done != NA
    factors = _factors(
        rng, row[finished], done[finished], np.zeros(int(finished.sum()), dtype=bool)
    ).rename({"episode_id": "row"})
    extra = (
        pl.DataFrame(
            {
                "row": row,
                "episode_id": E["episode_id"][idx],
                "assessment_start": date_series(start),
                "assessment_authorised": date_series(done),
            }
        )
        .join(factors, on="row", how="left")
        .drop("row")
    )
    return pl.concat([assessments, extra.select(assessments.columns)], how="vertical").sort(
        "episode_id", "assessment_start"
    )


def _frames(
    rng: np.random.Generator,
    E: dict[str, np.ndarray],
    P: dict[str, np.ndarray],
    persons: pl.DataFrame,
    la_children: pl.DataFrame,
    la_codes: np.ndarray,
    params: SynthParams,
    sim_end: int,
) -> dict[str, pl.DataFrame]:
    """Episode and nested-record frames, censored at the data end."""

    def cens(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, dtype=np.int64)
        return np.where(a > sim_end, NA, a)

    n = len(E["referral"])
    ep_id = E["episode_id"]
    closure_obs = cens(E["closure"])
    child_id = (
        pl.DataFrame({"person": E["person"], "la": E["la"]}).join(
            la_children.select("person", "la", "la_child_id"), on=["person", "la"], how="left"
        )
    )["la_child_id"]
    la_code = labels(E["la"], list(la_codes))

    prev_by_ep = E["previous_cpps"]
    cpp_obs = E["cpp"] & (E["cpp_start"] <= sim_end)

    age_years = D.age_in_years(P["birth"][E["person"]], E["referral"])
    sources = [*params.referral_source_shares, "5D"]
    care_obs = cens(E["care_start"])
    ep = pl.DataFrame(
        {
            "episode_id": ep_id,
            "person_id": E["person"],
            "la_code": la_code,
            "la_child_id": child_id,
            "upn": persons["upn"].gather(E["person"]),
            "referral_date": date_series(E["referral"]),
            "referral_source": labels(E["referral_source"], sources),
            "referral_nfa": E["referral_nfa"],
            "primary_need": labels(E["primary_need"], list(params.need_other), E["referral_nfa"]),
            "closure_date": date_series(closure_obs),
            "closure_reason": labels(E["closure_reason"], REASONS, closure_obs == NA),
            "latent_closure_date": date_series(E["closure"]),
            "latent_closure_reason": labels(E["closure_reason"], REASONS),
            "age_at_referral": pl.Series(
                np.ma.masked_array(age_years, E["band"] == 0), dtype=pl.Int16
            ),
            "age_band": labels(E["band"], AGE_BANDS),
            "sex": labels(P["sex"][E["person"]], list(params.sex_shares)),
            "disabled": E["disabled"],
            "assessment_start": date_series(cens(E["assessment_start"])),
            "assessment_authorised": date_series(cens(E["assessment_authorised"])),
            "first_cpp_start": date_series(np.where(cpp_obs, E["cpp_start"], NA)),
            "cpp_end": date_series(np.where(cpp_obs, cens(E["cpp_end"]), NA)),
            "first_cpp_category": labels(
                E["cpp_initial_category"], list(params.cpp_category_shares), ~cpp_obs
            ),
            "previous_cpps": pl.Series(np.ma.masked_array(prev_by_ep, ~cpp_obs), dtype=pl.Int16),
            "entered_care_date": date_series(care_obs),
            "left_care_date": date_series(np.where(care_obs == NA, NA, cens(E["care_end"]))),
            "care_exit": labels(E["care_exit"], EXITS, ~E["has_care"]),
            "latent_cpp_days": E["latent_cpp_days"],
            "latent_close_days": E["latent_close_days"],
            "cpp_hazard_ratio": E["cpp_hazard_ratio"],
            "latent_cpp_start": date_series(np.where(E["cpp"], E["cpp_start"], NA)),
            "data_end": date_series(np.full(n, sim_end)),
        }
    )
    ep = ep.with_columns(
        episode_order=pl.Series(E["episode_order"], dtype=pl.Int16),
        previous_referral_date=date_series(E["previous_referral"]),
        rereferral_12m=pl.Series(E["rereferral_12m"]),
    )

    # assessments
    ar = np.flatnonzero((E["assessment_start"] != NA) & (E["assessment_start"] <= sim_end))
    auth = cens(E["assessment_authorised"][ar])
    done = auth != NA
    factors = _factors(
        rng,
        ep_id[ar][done],
        auth[done],
        (E["closure_reason"][ar][done] >= RC["RC8"]),
    )
    assessments = pl.DataFrame(
        {
            "episode_id": ep_id[ar],
            "assessment_start": date_series(E["assessment_start"][ar]),
            "assessment_authorised": date_series(auth),
        }
    ).join(factors, on="episode_id", how="left")

    # section 47 enquiries: the plan's own, decorations, and extra ones before a plan
    s_parts = []
    for start, icpc, required in (
        (E["s47_cpp_start"], E["cpp_start"], True),
        (E["s47d_start"], E["s47d_icpc"], None),
        (E["s47x_start"], np.full(n, NA), False),
    ):
        rows = np.flatnonzero((start != NA) & (start <= sim_end))
        # decorations: an ICPC was not required when the enquiry has no ICPC date
        not_required = (icpc[rows] == NA) if required is None else np.full(len(rows), not required)
        target = D.add_working_days(start[rows], 15)
        s_parts.append(
            pl.DataFrame(
                {
                    "episode_id": ep_id[rows],
                    "s47_start": date_series(start[rows]),
                    "icpc_target": date_series(cens(target)),
                    "icpc_date": date_series(cens(icpc[rows])),
                    "icpc_not_required": not_required,
                }
            )
        )
    section47 = pl.concat(s_parts).sort(["episode_id", "s47_start"])
    s47_summary = section47.group_by("episode_id").agg(
        first_s47_start=pl.col("s47_start").min(),
        n_s47=pl.len().cast(pl.Int16),
        first_icpc_date=pl.col("icpc_date").min(),
    )

    # CP plans and reviews
    cpr = np.flatnonzero(cpp_obs)
    cp_plans = pl.DataFrame(
        {
            "episode_id": ep_id[cpr],
            "cpp_start": date_series(E["cpp_start"][cpr]),
            "cpp_end": date_series(cens(E["cpp_end"][cpr])),
            "initial_category": labels(
                E["cpp_initial_category"][cpr], list(params.cpp_category_shares)
            ),
            "latest_category": labels(
                E["cpp_latest_category"][cpr], list(params.cpp_category_shares)
            ),
            "previous_cpps": prev_by_ep[cpr].astype(np.int16),
        }
    )
    row, rday = _reviews(rng, E["cpp_start"][cpr], E["cpp_end"][cpr])
    keep = rday <= sim_end
    cpp_reviews = pl.DataFrame(
        {
            "episode_id": ep_id[cpr][row[keep]],
            "cpp_start": date_series(E["cpp_start"][cpr][row[keep]]),
            "review_date": date_series(rday[keep]),
        }
    )

    # CIN plans
    c_parts = []
    for s_key, e_key in (
        ("cin_plan1_start", "cin_plan1_end"),
        ("cin_plan2_start", "cin_plan2_end"),
    ):
        rows = np.flatnonzero((E[s_key] != NA) & (E[s_key] <= sim_end))
        c_parts.append(
            pl.DataFrame(
                {
                    "episode_id": ep_id[rows],
                    "cin_plan_start": date_series(E[s_key][rows]),
                    "cin_plan_end": date_series(cens(E[e_key][rows])),
                }
            )
        )
    cin_plans = pl.concat(c_parts).sort(["episode_id", "cin_plan_start"])

    # care periods (for SSDA903)
    cr = np.flatnonzero(E["has_care"] & (E["care_start"] <= sim_end))
    care_periods = pl.DataFrame(
        {
            "episode_id": ep_id[cr],
            "person_id": E["person"][cr],
            "la_code": la_code.gather(cr),
            "la_child_id": child_id.gather(cr),
            "care_start": date_series(E["care_start"][cr]),
            "care_end": date_series(cens(E["care_end"][cr])),
            "latent_care_end": date_series(E["care_end"][cr]),
            "care_exit": labels(E["care_exit"][cr], EXITS),
            "primary_need": labels(E["primary_need"][cr], list(params.need_other)),
            "cpp": E["cpp"][cr],
        }
    )
    ep = (
        ep.join(s47_summary, on="episode_id", how="left")
        .join(
            cin_plans.group_by("episode_id").agg(
                n_cin_plans=pl.len().cast(pl.Int16),
                first_cin_plan_start=pl.col("cin_plan_start").min(),
            ),
            on="episode_id",
            how="left",
        )
        .with_columns(
            n_s47=pl.col("n_s47").fill_null(0),
            n_cin_plans=pl.col("n_cin_plans").fill_null(0),
        )
        .sort("episode_id")
    )
    return {
        "episodes": ep,
        "assessments": assessments,
        "section47": section47,
        "cin_plans": cin_plans,
        "cp_plans": cp_plans,
        "cpp_reviews": cpp_reviews,
        "care_periods": care_periods,
    }
