"""Survival analysis for CIN journeys, with tidy polars results.

Estimators here are exact and deterministic with tied integer-day durations: Kaplan–Meier and
Aalen–Johansen are computed directly from tied event counts (no jittering), and the models
(Cox by our own Newton–Raphson in :mod:`cinresearch.coxph`, discrete-time logit via
statsmodels) are fitted on pandas/numpy built inside
this module only.

Conventions (apply to every function)
-------------------------------------
* ``duration``: time from the origin (e.g. referral date) to the event or censoring, in days,
  ``>= 0``. ``event`` is 0 (censored) / 1 (event). ``event_type`` is 0 (censored) or a cause
  code 1, 2, …; for a cause of interest every other cause is a *competing* event.
* Risk set: a subject is at risk at time ``t`` when ``entry < t <= duration``. With no ``entry``
  column, or ``entry`` equal to 0 (or null), the subject is observed from the origin and *is* at
  risk at ``t = 0`` — so an event on the origin day (``duration == 0``) counts at ``t = 0``.
  ``entry > 0`` is delayed entry (left truncation): at risk only for times strictly after it.
  Rows with ``entry > duration`` are an error; rows with ``0 < entry == duration`` are never at
  risk and are excluded with a warning that gives their number.
* Curve rows: one row per group at ``t = 0`` and at every distinct observed duration (event or
  censoring) in the group. ``at_risk`` is the number at risk just before ``t`` (the risk set at
  ``t``), ``events`` the number of events at ``t`` (of the cause of interest for cumulative
  incidence), ``censored`` the number censored at ``t``. ``estimate`` is the value *at* ``t``
  (right-continuous step function, after the events at ``t``). With ``times=[...]`` the step
  function is evaluated at those times instead; a time beyond the group's last observed duration
  gives a null estimate unless the curve has already reached its final value (survival 0).
* Groups: the ``group`` column holds the group level as a string ("All" when ``group=None``,
  "Missing" for a null level); rows follow the level order (enum order for ``pl.Enum``, else
  sorted values).
* Confidence intervals (pointwise, level ``1 - alpha``): Kaplan–Meier uses Greenwood's variance
  with the log(-log) transform, ``S ** exp(±z·se/(S·|log S|))`` — the "exponential Greenwood"
  interval, identical to lifelines' KaplanMeierFitter and to the ``cloglog`` transform that
  statsmodels' ``SurvfuncRight.quantile_ci`` uses. Aalen–Johansen uses the delta-method
  (Greenwood-type) variance of Marubini & Valsecchi (1995), as in Stata's ``stcompet`` and
  statsmodels' ``CumIncidenceRight``, with the same log(-log) transform applied to ``F``,
  ``F ** exp(±z·se/(F·|log F|))``, which keeps the interval inside [0, 1].
* Categorical covariates (string, categorical, enum) are dummy-coded against a reference level:
  by default the most frequent level (ties broken by enum order, else sorted order); override
  with ``reference={"age_band": "5-9"}``. Terms are named ``column[level]``; booleans become
  0/1 named ``column``; numeric columns pass through. Rows with a null in any model column are
  dropped with a warning (complete-case analysis).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

__all__ = [
    "ALL_GROUP",
    "MISSING_GROUP",
    "CoxResult",
    "cause_specific_cox",
    "cause_specific_cox_fit",
    "cox",
    "cox_fit",
    "cumulative_incidence",
    "discrete_time_logit",
    "gray_test",
    "kaplan_meier",
    "logrank",
    "median_times",
    "summary",
    "suppress_small_risk_sets",
]

ALL_GROUP = "All"
MISSING_GROUP = "Missing"

_CURVE_COLUMNS = [
    "group",
    "time",
    "estimate",
    "lower",
    "upper",
    "at_risk",
    "events",
    "censored",
    "std_error",
]

_D = "__duration"
_S = "__status"
_E = "__entry"
_G = "__group"


# --------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------


def _collect(frame: pl.DataFrame | pl.LazyFrame, columns: Sequence[str]) -> pl.DataFrame:
    """Select ``columns`` (checked to exist) and collect a LazyFrame."""
    names = _schema(frame).names()
    missing = [c for c in dict.fromkeys(columns) if c not in names]
    if missing:
        raise ValueError(f"column(s) not found in frame: {missing}")
    cols = list(dict.fromkeys(columns))
    out = frame.select(cols)
    return out.collect() if isinstance(out, pl.LazyFrame) else out


def _schema(frame: pl.DataFrame | pl.LazyFrame) -> pl.Schema:
    return frame.collect_schema() if isinstance(frame, pl.LazyFrame) else frame.schema


def _group_order(series: pl.Series) -> list[str]:
    """Level order for a grouping column, as strings (see module conventions)."""
    dtype = series.dtype
    present = series.drop_nulls().unique()
    if isinstance(dtype, pl.Enum):
        have = set(present.cast(pl.String).to_list())
        order = [c for c in dtype.categories.to_list() if c in have]
    elif dtype == pl.Categorical:
        order = sorted(present.cast(pl.String).to_list())
    else:
        order = present.sort().cast(pl.String).to_list()
    if series.null_count():
        order.append(MISSING_GROUP)
    return order


def _group_column(frame: pl.DataFrame, group: str | None) -> tuple[pl.Series, list[str]]:
    if group is None:
        return pl.Series(_G, [ALL_GROUP] * frame.height, dtype=pl.String), [ALL_GROUP]
    s = frame.get_column(group)
    order = _group_order(s)
    labels = s.cast(pl.String).fill_null(MISSING_GROUP).alias(_G)
    return labels, order


def _prepare(
    frame: pl.DataFrame | pl.LazyFrame,
    duration: str,
    status: str,
    *,
    group: str | None = None,
    entry: str | None = None,
    binary: bool = False,
    extra: Sequence[str] = (),
) -> tuple[pl.DataFrame, list[str]]:
    """Validate and normalise survival inputs.

    Returns a frame with internal columns ``__duration`` (f64), ``__status`` (i64),
    ``__entry`` (f64 *effective* entry: ``-inf`` when observed from the origin), ``__group``
    (str), plus ``extra`` columns as given, and the ordered group levels.
    """
    cols = [duration, status] + ([group] if group else []) + ([entry] if entry else [])
    df = _collect(frame, cols + list(extra))
    dur = df.get_column(duration)
    if isinstance(dur.dtype, pl.Duration):  # a timedelta: use whole days
        dur = dur.dt.total_days()
    if not dur.dtype.is_numeric():
        raise TypeError(f"duration column {duration!r} must be numeric (days), got {dur.dtype}")
    if dur.null_count():
        raise ValueError(f"duration column {duration!r} has {dur.null_count()} null value(s)")
    if dur.dtype.is_float() and dur.is_nan().any():
        raise ValueError(f"duration column {duration!r} has NaN value(s)")
    if (dur < 0).any():
        raise ValueError(
            f"duration column {duration!r} has {(dur < 0).sum()} negative value(s); "
            "durations are days since the origin and must be >= 0"
        )
    st = df.get_column(status)
    if st.null_count():
        raise ValueError(f"event column {status!r} has {st.null_count()} null value(s)")
    if st.dtype == pl.Boolean:
        st = st.cast(pl.Int64)
    elif not st.dtype.is_numeric():
        raise TypeError(f"event column {status!r} must be integer or boolean, got {st.dtype}")
    st_f = st.cast(pl.Float64)
    if (st_f != st_f.round()).any() or (st_f < 0).any():
        raise ValueError(
            f"event column {status!r} must hold 0 (censored) or positive integer codes"
        )
    st = st.cast(pl.Int64)
    if binary and (st > 1).any():
        bad = sorted(set(st.filter(st > 1).unique().to_list()))
        raise ValueError(
            f"event column {status!r} has values other than 0/1 ({bad}): competing events are "
            "present, and 1 - Kaplan-Meier would overstate the risk. Use "
            "survival.cumulative_incidence (Aalen-Johansen) with event_type codes, or recode "
            "the event explicitly (e.g. other causes as censoring for a cause-specific "
            "analysis)."
        )
    groups, order = _group_column(df, group)
    out = pl.DataFrame(
        {
            _D: dur.cast(pl.Float64),
            _S: st,
            _G: groups,
        }
    )
    if entry is not None:
        ent = df.get_column(entry)
        if isinstance(ent.dtype, pl.Duration):
            ent = ent.dt.total_days()
        ent = ent.cast(pl.Float64).fill_null(0.0).fill_nan(0.0)
        if (ent < 0).any():
            raise ValueError(f"entry column {entry!r} has negative value(s)")
        too_late = ent > out.get_column(_D)
        if too_late.any():
            raise ValueError(
                f"entry column {entry!r} is after the duration in {too_late.sum()} row(s); "
                "delayed entry must be <= duration"
            )
        out = out.with_columns(pl.when(ent > 0).then(ent).otherwise(float("-inf")).alias(_E))
        never = (out.get_column(_E) >= out.get_column(_D)).to_numpy()
        if never.any():
            warnings.warn(
                f"{int(never.sum())} row(s) have delayed entry equal to their duration and are "
                "never at risk (at risk only for entry < t <= duration); they are excluded.",
                UserWarning,
                stacklevel=3,
            )
    else:
        out = out.with_columns(pl.lit(float("-inf")).alias(_E))
        never = None
    for c in extra:
        if c not in out.columns:
            out = out.with_columns(df.get_column(c))
    if never is not None and never.any():
        out = out.filter(pl.Series(~never))
    return out, order


# --------------------------------------------------------------------------------------------
# counting
# --------------------------------------------------------------------------------------------


def _at_risk(dur: np.ndarray, entry_eff: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Number at risk at each time: #{entry < t <= duration} (effective entry)."""
    ds = np.sort(dur)
    es = np.sort(entry_eff)
    n_dur_ge = len(ds) - np.searchsorted(ds, times, side="left")
    n_ent_ge = len(es) - np.searchsorted(es, times, side="left")
    return (n_dur_ge - n_ent_ge).astype(np.int64)


def _counts(
    dur: np.ndarray, status: np.ndarray, times: np.ndarray, codes: Sequence[int]
) -> dict[int, np.ndarray]:
    """Number of rows with each status code at each of ``times`` (exact match)."""
    idx = np.searchsorted(times, dur)
    hit = (idx < len(times)) & (times[np.minimum(idx, len(times) - 1)] == dur)
    out = {}
    for c in codes:
        m = hit & (status == c)
        out[c] = np.bincount(idx[m], minlength=len(times)).astype(np.int64)
    return out


def _curve_times(dur: np.ndarray) -> np.ndarray:
    return np.unique(np.concatenate([[0.0], dur]))


def _loglog_ci(p: np.ndarray, var: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise CI for a probability via the log(-log p) transform (stays inside [0, 1])."""
    lower = np.full(p.shape, np.nan)
    upper = np.full(p.shape, np.nan)
    inner = (p > 0) & (p < 1) & np.isfinite(var)
    pi = p[inner]
    se_t = np.sqrt(var[inner]) / (pi * np.abs(np.log(pi)))
    lower[inner] = pi ** np.exp(z * se_t)
    upper[inner] = pi ** np.exp(-z * se_t)
    for v in (0.0, 1.0):
        at = p == v
        lower[at] = v
        upper[at] = v
    return lower, upper


def _km_arrays(n: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Product-limit estimate and Greenwood standard error over a risk table."""
    n = n.astype(np.float64)
    d = d.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(d > 0, d / n, 0.0)
        surv = np.cumprod(1.0 - frac)
        term = np.where(d > 0, d / (n * (n - d)), 0.0)  # inf where everyone at risk fails
        gw = np.cumsum(term)
        se = surv * np.sqrt(gw)  # 0 * inf -> nan once the curve reaches 0
    se[surv == 0] = np.nan
    return surv, se


def _aj_arrays(
    n: np.ndarray, d_all: np.ndarray, d_k: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Aalen–Johansen CIF for one cause, its Marubini–Valsecchi variance, and all-cause KM."""
    n = n.astype(np.float64)
    D = d_all.astype(np.float64)
    dk = d_k.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - np.where(D > 0, D / n, 0.0))
        s_prev = np.concatenate([[1.0], surv[:-1]])
        hk = np.where(dk > 0, dk / n, 0.0)
        F = np.cumsum(s_prev * hk)
        # Greenwood-type term: zero where the whole risk set fails (F is flat afterwards).
        a = np.where((D > 0) & (n > D), D / (n * (n - D)), 0.0)
        e2 = np.where(dk > 0, s_prev**2 * dk * (n - dk) / n**3, 0.0)
        e3 = np.where(dk > 0, s_prev * dk / n**2, 0.0)
    var = (
        F**2 * np.cumsum(a)
        - 2 * F * np.cumsum(a * F)
        + np.cumsum(a * F**2)
        + np.cumsum(e2)
        - 2 * F * np.cumsum(e3)
        + 2 * np.cumsum(F * e3)
    )
    return F, np.clip(var, 0.0, None), surv


def _step_lookup(times: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Right-continuous step function through (times, values) evaluated at ``at``."""
    idx = np.searchsorted(times, at, side="right") - 1
    out = np.full(at.shape, np.nan)
    ok = idx >= 0
    out[ok] = values[idx[ok]]
    return out


def _time_dtype(duration_dtype: pl.DataType, times: np.ndarray) -> pl.DataType:
    """Int64 output times for integer-day (or timedelta) input when all times are whole."""
    whole = np.all(np.isfinite(times)) and np.all(times == np.round(times))
    if (duration_dtype.is_integer() or isinstance(duration_dtype, pl.Duration)) and whole:
        return pl.Int64
    return pl.Float64


def _curve_frame(rows: list[dict[str, Any]], time_dtype: pl.DataType) -> pl.DataFrame:
    schema = {
        "group": pl.String,
        "time": pl.Float64,
        "estimate": pl.Float64,
        "lower": pl.Float64,
        "upper": pl.Float64,
        "at_risk": pl.Int64,
        "events": pl.Int64,
        "censored": pl.Int64,
        "std_error": pl.Float64,
    }
    if not rows:
        return pl.DataFrame(schema=schema).with_columns(pl.col("time").cast(time_dtype))
    parts = [pl.DataFrame(r, schema=schema) for r in rows]
    out = pl.concat(parts, how="vertical")
    floats = ["estimate", "lower", "upper", "std_error"]
    return out.with_columns(
        [pl.col(c).fill_nan(None) for c in floats] + [pl.col("time").cast(time_dtype)]
    ).select(_CURVE_COLUMNS)


def _evaluate_curve(
    label: str,
    grid: np.ndarray,
    est: np.ndarray,
    se: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    final_surv: float,
    dur: np.ndarray,
    status: np.ndarray,
    entry_eff: np.ndarray,
    event_code: int | None,
    times: np.ndarray | None,
) -> dict[str, Any]:
    """Assemble one group's curve rows, at the grid or evaluated at requested ``times``."""
    if times is None:
        at = grid
        vals = [est, lower, upper, se]
    else:
        at = times
        vals = [_step_lookup(grid, v, at) for v in (est, lower, upper, se)]
        beyond = at > grid[-1]
        if final_surv > 0:
            for v in vals:
                v[beyond] = np.nan
    n = _at_risk(dur, entry_eff, at)
    codes = sorted(set(np.unique(status).tolist()) | {0})
    cnt = _counts(dur, status, at, codes)
    if event_code is None:  # any non-zero code is an event
        ev = sum((cnt[c] for c in codes if c != 0), np.zeros(len(at), dtype=np.int64))
    else:
        ev = cnt.get(event_code, np.zeros(len(at), dtype=np.int64))
    return {
        "group": [label] * len(at),
        "time": at.astype(np.float64),
        "estimate": vals[0],
        "lower": vals[1],
        "upper": vals[2],
        "at_risk": n,
        "events": ev,
        "censored": cnt[0],
        "std_error": vals[3],
    }


def _as_times(times: Sequence[float] | None) -> np.ndarray | None:
    if times is None:
        return None
    t = np.asarray(sorted(set(float(x) for x in times)), dtype=np.float64)
    if len(t) and t[0] < 0:
        raise ValueError("times must be >= 0 (days since the origin)")
    return t


def _z(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    return float(stats.norm.ppf(1 - alpha / 2))


def _split(df: pl.DataFrame, order: list[str]):
    """Yield (level, duration, status, entry) numpy arrays per group level in order."""
    parts = df.partition_by(_G, as_dict=True, maintain_order=True)
    for level in order:
        part = parts.get((level,))
        if part is None:
            continue
        yield (
            level,
            part.get_column(_D).to_numpy(),
            part.get_column(_S).to_numpy(),
            part.get_column(_E).to_numpy(),
        )


# --------------------------------------------------------------------------------------------
# Kaplan–Meier and Aalen–Johansen
# --------------------------------------------------------------------------------------------


def kaplan_meier(
    frame: pl.DataFrame | pl.LazyFrame,
    duration: str = "duration",
    event: str = "event",
    group: str | None = None,
    times: Sequence[float] | None = None,
    entry: str | None = None,
    alpha: float = 0.05,
) -> pl.DataFrame:
    """Kaplan–Meier survival curve per group, exact with tied days.

    Returns ``[group, time, estimate, lower, upper, at_risk, events, censored, std_error]``
    (see the module docstring for the row, risk-set and CI conventions; ``std_error`` is
    Greenwood's, on the probability scale). ``event`` must be 0/1: with competing events use
    :func:`cumulative_incidence` (1 − KM would overstate the risk), so other codes raise.
    """
    df, order = _prepare(frame, duration, event, group=group, entry=entry, binary=True)
    z = _z(alpha)
    t_req = _as_times(times)
    dtype = _schema(frame)[duration]
    rows = []
    for label, dur, st, ent in _split(df, order):
        grid = _curve_times(dur)
        n = _at_risk(dur, ent, grid)
        d = _counts(dur, st, grid, [1])[1]
        surv, se = _km_arrays(n, d)
        lower, upper = _loglog_ci(surv, se**2, z)
        rows.append(
            _evaluate_curve(label, grid, surv, se, lower, upper, surv[-1], dur, st, ent, 1, t_req)
        )
    all_times = np.concatenate([r["time"] for r in rows]) if rows else np.array([])
    return _curve_frame(rows, _time_dtype(dtype, all_times))


def cumulative_incidence(
    frame: pl.DataFrame | pl.LazyFrame,
    duration: str = "duration",
    event: str = "event_type",
    cause: int = 1,
    group: str | None = None,
    entry: str | None = None,
    alpha: float = 0.05,
    times: Sequence[float] | None = None,
) -> pl.DataFrame:
    """Aalen–Johansen cumulative incidence of ``cause`` per group, exact with tied days.

    ``event`` holds 0 (censored) or cause codes; every code other than 0 and ``cause`` is a
    competing event. ``F(t) = sum_{s<=t} S(s-) d_cause(s) / n(s)`` with ``S`` the all-cause
    Kaplan–Meier. ``events`` counts the cause of interest; ``std_error`` is the square root of
    the Marubini–Valsecchi delta-method variance; CI via log(-log F). Same columns as
    :func:`kaplan_meier`.
    """
    df, order = _prepare(frame, duration, event, group=group, entry=entry)
    cause = int(cause)
    if cause < 1:
        raise ValueError("cause must be a positive event_type code")
    z = _z(alpha)
    t_req = _as_times(times)
    dtype = _schema(frame)[duration]
    rows = []
    for label, dur, st, ent in _split(df, order):
        grid = _curve_times(dur)
        n = _at_risk(dur, ent, grid)
        cnt = _counts(dur, (st > 0).astype(np.int64) + (st == cause), grid, [1, 2])
        d_all = cnt[1] + cnt[2]
        F, var, surv = _aj_arrays(n, d_all, cnt[2])
        lower, upper = _loglog_ci(F, var, z)
        rows.append(
            _evaluate_curve(
                label, grid, F, np.sqrt(var), lower, upper, surv[-1], dur, st, ent, cause, t_req
            )
        )
    all_times = np.concatenate([r["time"] for r in rows]) if rows else np.array([])
    return _curve_frame(rows, _time_dtype(dtype, all_times))


def suppress_small_risk_sets(
    curve: pl.DataFrame,
    min_at_risk: int = 10,
    mask_counts: bool = False,
) -> pl.DataFrame:
    """Mask a curve where fewer than ``min_at_risk`` are at risk (disclosure control).

    Sets ``estimate``, ``lower``, ``upper`` (and ``std_error`` if present) to null on rows with
    ``at_risk < min_at_risk``; with ``mask_counts=True`` also nulls ``at_risk``, ``events`` and
    ``censored`` there (for publishing the frame itself).
    """
    small = pl.col("at_risk") < min_at_risk
    cols = [c for c in ("estimate", "lower", "upper", "std_error") if c in curve.columns]
    if mask_counts:
        cols += [c for c in ("events", "censored") if c in curve.columns]
    exprs = [pl.when(small).then(None).otherwise(pl.col(c)).alias(c) for c in cols]
    out = curve.with_columns(exprs)
    if mask_counts:
        out = out.with_columns(
            pl.when(small).then(None).otherwise(pl.col("at_risk")).alias("at_risk")
        )
    return out


def median_times(
    frame: pl.DataFrame | pl.LazyFrame,
    duration: str = "duration",
    event: str = "event",
    group: str | None = None,
    entry: str | None = None,
    alpha: float = 0.05,
    quantile: float = 0.5,
) -> pl.DataFrame:
    """Median (or other quantile) survival time per group with a confidence interval.

    Returns ``[group, n, events, median, lower, upper]`` (``median`` holds the requested
    quantile). The quantile is the first event time with ``S(t) < 1 - quantile`` (the SAS /
    statsmodels convention); the CI inverts pointwise tests on the log(-log) scale with
    Greenwood's variance (Brookmeyer–Crowley style, as statsmodels' ``quantile_ci`` with
    ``method="cloglog"``). Null ``median`` = not reached; null ``upper`` = not reached.
    """
    if not 0 < quantile < 1:
        raise ValueError("quantile must be in (0, 1)")
    df, order = _prepare(frame, duration, event, group=group, entry=entry, binary=True)
    z = _z(alpha)
    target = 1.0 - quantile
    rows = []
    for label, dur, st, ent in _split(df, order):
        grid = np.unique(dur[st == 1])
        med = lo = up = None
        if len(grid):
            n = _at_risk(dur, ent, grid)
            d = _counts(dur, st, grid, [1])[1]
            surv, se = _km_arrays(n, d)
            hit = np.flatnonzero(surv < target)
            med = float(grid[hit[0]]) if len(hit) else None
            with np.errstate(divide="ignore", invalid="ignore"):
                g = np.log(-np.log(surv)) - math.log(-math.log(target))
                gprime = -1.0 / (surv * np.log(surv))
                r = g / (gprime * se)
            ok = np.flatnonzero(np.abs(r) <= z)
            if len(ok):
                lo = float(grid[ok[0]])
                up = None if ok[-1] == len(grid) - 1 else float(grid[ok[-1] + 1])
        rows.append(
            {
                "group": label,
                "n": len(dur),
                "events": int((st == 1).sum()),
                "median": med,
                "lower": lo,
                "upper": up,
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "group": pl.String,
            "n": pl.Int64,
            "events": pl.Int64,
            "median": pl.Float64,
            "lower": pl.Float64,
            "upper": pl.Float64,
        },
    )


summary = median_times
"""Alias of :func:`median_times` (per-group n, events, median and its CI)."""


# --------------------------------------------------------------------------------------------
# tests: log-rank and Gray
# --------------------------------------------------------------------------------------------


def _test_frame(statistic: float, df: int, test: str) -> pl.DataFrame:
    p = float(stats.chi2.sf(statistic, df)) if df > 0 else float("nan")
    return pl.DataFrame(
        {"statistic": [float(statistic)], "df": [int(df)], "p": [p], "test": [test]},
        schema={"statistic": pl.Float64, "df": pl.Int64, "p": pl.Float64, "test": pl.String},
    )


def _strata_codes(frame_cols: pl.DataFrame, strata: str | Sequence[str] | None) -> np.ndarray:
    if strata is None:
        return np.zeros(frame_cols.height, dtype=np.int64)
    cols = [strata] if isinstance(strata, str) else list(strata)
    key = frame_cols.select(
        pl.concat_str(
            [pl.col(c).cast(pl.String).fill_null("\x00") for c in cols], separator="\x1f"
        ).alias("k")
    )
    return key.get_column("k").rank("dense").to_numpy().astype(np.int64) - 1


def _prepare_test(frame, duration, status, group, entry, strata, binary):
    if group is None:
        raise ValueError("a group column is required for a k-sample test")
    scols = [] if strata is None else ([strata] if isinstance(strata, str) else list(strata))
    df, order = _prepare(
        frame, duration, status, group=group, entry=entry, binary=binary, extra=scols
    )
    strata_codes = _strata_codes(df, strata)
    gmap = {lv: i for i, lv in enumerate(order)}
    gcode = np.array([gmap[v] for v in df.get_column(_G).to_list()], dtype=np.int64)
    return (
        df.get_column(_D).to_numpy(),
        df.get_column(_S).to_numpy(),
        df.get_column(_E).to_numpy(),
        gcode,
        len(order),
        strata_codes,
    )


def logrank(
    frame: pl.DataFrame | pl.LazyFrame,
    duration: str = "duration",
    event: str = "event",
    group: str | None = None,
    entry: str | None = None,
    strata: str | Sequence[str] | None = None,
) -> pl.DataFrame:
    """k-sample log-rank test of equal hazards across ``group`` levels.

    Exact with ties (hypergeometric variance), optionally stratified (scores and variances
    summed over strata) and with delayed entry. Returns ``[statistic, df, p, test]``;
    ``df`` = number of groups − 1.
    """
    dur, st, ent, g, k, sc = _prepare_test(frame, duration, event, group, entry, strata, True)
    present = np.unique(g)
    K = len(present)
    if K < 2:
        return _test_frame(float("nan"), 0, "log-rank")
    remap = np.searchsorted(present, g)
    oe = np.zeros(K - 1)
    V = np.zeros((K - 1, K - 1))
    for s in np.unique(sc):
        m = sc == s
        d_s, st_s, e_s, g_s = dur[m], st[m], ent[m], remap[m]
        times = np.unique(d_s[st_s == 1])
        if not len(times):
            continue
        n_g = np.vstack([_at_risk(d_s[g_s == j], e_s[g_s == j], times) for j in range(K)])
        d_g = np.vstack(
            [_counts(d_s[g_s == j], st_s[g_s == j], times, [1])[1] for j in range(K)]
        ).astype(np.float64)
        n = n_g.sum(0).astype(np.float64)
        d = d_g.sum(0)
        frac = n_g / n
        oe += (d_g - frac * d)[: K - 1].sum(1)
        w = np.where(n > 1, d * (n - d) / np.maximum(n - 1, 1), 0.0)
        fr = frac[: K - 1]
        V += np.diag((fr * w).sum(1)) - (fr * w) @ fr.T
    stat = float(oe @ np.linalg.pinv(V) @ oe)
    return _test_frame(stat, K - 1, "log-rank")


def _gray_stratum(
    dur: np.ndarray,
    status: np.ndarray,
    entry_eff: np.ndarray,
    gcode: np.ndarray,
    K: int,
    cause: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Gray's score (rho = 0) for groups 0..K-2 in one stratum, and its variance matrix.

    Gray (1988); cmprsk crstm. Arrays are (event time × group). With ``S_k``/``F_k`` the
    group's Kaplan–Meier and cumulative incidence, ``w_k = Y_k / S_k(t-)`` and the
    subdistribution risk set ``R_k = w_k (1 - F_k(t-))``, the score is
    ``z_k = sum_t [d1_k - R_k d1 / R]``. For the variance let ``W = sum_k w_k``,
    ``A(t) = diag(w) - w w' / W``, ``F0(t) = sum_{u<=t} d1 / W`` (the pooled incidence under
    the null) and ``C(t) = sum_{u<=t} A d1 / (W (1 - F0(u-)))``. Each time with events of the
    cause adds, for every group ``k`` at risk, the outer product of column ``k`` of
    ``A - a_k C`` (``a_k = 1 - (1 - F0) / S_k``) times ``S_k(t-) d1 / (W Y_k)``; each time with
    other-cause events in group ``k`` adds that of column ``k`` of ``b_k C``
    (``b_k = (1 - F0) / S_k``) times ``S_k(t-)^2 d2_k / Y_k^2``; cross terms of these sums with
    the final ``C`` complete it. Ties are corrected by the factors
    ``1 - (d1 - 1) / (W S_k(t-) - 1)`` and ``1 - (d2_k - 1) / (Y_k - 1)``. Delayed entry enters
    only through the risk sets ``Y_k`` (cmprsk has none).
    """
    times = np.unique(dur[status > 0])
    K1 = K - 1
    if not len(times):
        return np.zeros(K1), np.zeros((K1, K1))
    Y = np.zeros((len(times), K))
    d1 = np.zeros((len(times), K))
    d2 = np.zeros((len(times), K))
    for j in range(K):
        m = gcode == j
        Y[:, j] = _at_risk(dur[m], entry_eff[m], times)
        d1[:, j] = _counts(dur[m], (status[m] == cause).astype(np.int64), times, [1])[1]
        d2[:, j] = _counts(
            dur[m], ((status[m] > 0) & (status[m] != cause)).astype(np.int64), times, [1]
        )[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        at = Y > 0
        S = np.cumprod(np.where(at, 1.0 - (d1 + d2) / Y, 1.0), axis=0)
        S_prev = np.vstack([np.ones((1, K)), S[:-1]])
        F = np.cumsum(np.where(at, S_prev * d1 / Y, 0.0), axis=0)
        F_prev = np.vstack([np.zeros((1, K)), F[:-1]])
        w = np.where(at & (S_prev > 0), Y / S_prev, 0.0)
        W = w.sum(1)
        R = w * (1.0 - F_prev)
        n1 = d1.sum(1)
        expected = np.where((n1 > 0) & (R.sum(1) > 0), n1 / R.sum(1), 0.0)
        z = (d1 - R * expected[:, None]).sum(0)[:K1]

        jump = np.where(W > 0, n1 / W, 0.0)  # pooled cumulative incidence F0
        F0 = np.cumsum(jump)
        F0_prev = F0 - jump
        inv_W = np.where(W > 0, 1.0 / W, 0.0)
        A = w[:, :, None] * np.eye(K) - w[:, :, None] * w[:, None, :] * inv_W[:, None, None]
        step = np.where(n1 > 0, jump / (1.0 - F0_prev), 0.0)
        C = np.cumsum(A * step[:, None, None], axis=0)[:, :K1, :]
        A = A[:, :K1, :]

        # events of the cause: every group at risk at a time with such events
        a = np.where(S > 0, 1.0 - (1.0 - F0)[:, None] / S, 1.0)
        tie1 = np.where(n1[:, None] > 1, 1.0 - (n1[:, None] - 1) / (W[:, None] * S_prev - 1), 1.0)
        q1 = np.where(
            (n1[:, None] > 0) & (w > 0), tie1 * S_prev * n1[:, None] / (W[:, None] * Y), 0.0
        )
        B = A - a[:, None, :] * C
        V = np.einsum("tik,tjk->ij", B * q1[:, None, :], B)
        v3 = (a * a * q1).sum(0)
        v2 = np.einsum("tik,tk->ik", B, a * q1)

        # competing events: the groups that have them
        has2 = (S > 0) & (d2 > 0)
        b = np.where(has2, (1.0 - F0)[:, None] / S, 0.0)
        tie2 = np.where(d2 > 1, 1.0 - (d2 - 1) / (Y - 1), 1.0)
        q2 = np.where(has2, b * b * tie2 * S_prev**2 * d2 / Y**2, 0.0)
        V += np.einsum("tik,tjk->ij", C * q2[:, None, :], C)
        v3 += q2.sum(0)
        v2 -= np.einsum("tik,tk->ik", C, q2)

    C_end = C[-1]
    cross = C_end @ v2.T
    V += (C_end * v3) @ C_end.T + cross + cross.T
    return z, V


def _gray_score_variance(dur, status, entry_eff, gcode, strata_codes, K, cause):
    """Gray's score and variance summed over strata (see :func:`_gray_stratum`)."""
    z = np.zeros(K - 1)
    V = np.zeros((K - 1, K - 1))
    for s in np.unique(strata_codes):
        m = strata_codes == s
        zs, Vs = _gray_stratum(dur[m], status[m], entry_eff[m], gcode[m], K, cause)
        z += zs
        V += Vs
    return z, V


def gray_test(
    frame: pl.DataFrame | pl.LazyFrame,
    duration: str = "duration",
    event: str = "event_type",
    cause: int = 1,
    group: str | None = None,
    entry: str | None = None,
    strata: str | Sequence[str] | None = None,
) -> pl.DataFrame:
    """Gray's k-sample test of equal cumulative incidence of ``cause`` across ``group``.

    Gray (1988); cmprsk crstm. The score is observed minus expected events of the cause in
    each group, with the risk sets adjusted to the subdistribution scale, weight 1
    (``rho = 0``, the ``cmprsk`` default); its variance is Gray's martingale-based estimator,
    with cmprsk's corrections for tied events. Scores and variances are summed over
    ``strata``; the statistic is ``z' V^-1 z`` over the first K − 1 groups (a generalised
    inverse if ``V`` is singular, where cmprsk reports −1) and is referred to chi-squared on
    K − 1 df. Statistic, score and variance equal ``cmprsk::cuminc(...)$Tests`` and the
    ``crstm`` routine behind it to 1e-6 (``tests/test_survival_r_reference.py``: 2–4 groups,
    strata, a group of 5, heavy ties, both causes, 40 subjects) — for data without ``entry``
    only: cmprsk has no left truncation, and here delayed entry enters through the risk sets
    (``entry < t <= duration``) alone. A null ``group`` is a "Missing" group (cuminc drops
    such rows). Returns ``[statistic, df, p, test]``.
    """
    dur, st, ent, g, _, sc = _prepare_test(frame, duration, event, group, entry, strata, False)
    present = np.unique(g)
    K = len(present)
    if K < 2:
        return _test_frame(float("nan"), 0, "Gray")
    remap = np.searchsorted(present, g)
    z, V = _gray_score_variance(dur, st, ent, remap, sc, K, int(cause))
    stat = float(z @ np.linalg.pinv(V) @ z)
    return _test_frame(stat, K - 1, "Gray")


# --------------------------------------------------------------------------------------------
# design matrices
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Design:
    X: np.ndarray
    terms: list[str]
    covariate: list[str]
    reference_of: list[str | None]
    reference: dict[str, str]


def _is_categorical(dtype: pl.DataType) -> bool:
    return dtype == pl.String or dtype == pl.Categorical or isinstance(dtype, pl.Enum)


def _level_order(s: pl.Series) -> list[str]:
    if isinstance(s.dtype, pl.Enum):
        have = set(s.drop_nulls().cast(pl.String).unique().to_list())
        return [c for c in s.dtype.categories.to_list() if c in have]
    return sorted(s.drop_nulls().cast(pl.String).unique().to_list())


def _design(
    df: pl.DataFrame, covariates: Sequence[str], reference: Mapping[str, Any] | None
) -> _Design:
    """Build a numeric design matrix from polars columns (see module conventions)."""
    reference = dict(reference or {})
    unknown = set(reference) - set(covariates)
    if unknown:
        raise ValueError(f"reference given for column(s) not in covariates: {sorted(unknown)}")
    exprs, terms, cov_of, ref_of = [], [], [], []
    chosen: dict[str, str] = {}
    for c in covariates:
        s = df.get_column(c)
        if _is_categorical(s.dtype):
            levels = _level_order(s)
            if c in reference:
                ref = str(reference[c])
                if ref not in levels:
                    raise ValueError(
                        f"reference level {ref!r} for {c!r} not found; levels: {levels}"
                    )
            else:
                counts = dict(s.cast(pl.String).value_counts().iter_rows())  # level -> count
                top = max(counts.get(lv, 0) for lv in levels)
                ref = next(lv for lv in levels if counts.get(lv, 0) == top)
            chosen[c] = ref
            for lv in levels:
                if lv == ref:
                    continue
                exprs.append((pl.col(c).cast(pl.String) == lv).cast(pl.Float64))
                terms.append(f"{c}[{lv}]")
                cov_of.append(c)
                ref_of.append(ref)
        elif s.dtype == pl.Boolean or s.dtype.is_numeric():
            exprs.append(pl.col(c).cast(pl.Float64))
            terms.append(c)
            cov_of.append(c)
            ref_of.append(None)
        else:
            raise TypeError(f"covariate {c!r} has unsupported type {s.dtype}")
    if not exprs:
        X = np.zeros((df.height, 0))
    else:
        X = df.select([e.alias(f"x{i}") for i, e in enumerate(exprs)]).to_numpy().astype(np.float64)
    keep = [i for i in range(X.shape[1]) if np.ptp(X[:, i]) > 0] if X.shape[0] else []
    dropped = [terms[i] for i in range(X.shape[1]) if i not in keep]
    if dropped:
        warnings.warn(
            f"covariate term(s) {dropped} are constant in the analysed rows and were dropped",
            UserWarning,
            stacklevel=3,
        )
    return _Design(
        X=X[:, keep],
        terms=[terms[i] for i in keep],
        covariate=[cov_of[i] for i in keep],
        reference_of=[ref_of[i] for i in keep],
        reference=chosen,
    )


def _complete_cases(df: pl.DataFrame, columns: Sequence[str], what: str) -> pl.DataFrame:
    cols = list(dict.fromkeys(columns))
    if not cols:
        return df
    mask = pl.any_horizontal([pl.col(c).is_null() for c in cols])
    n_drop = df.select(mask.sum()).item()
    if n_drop:
        warnings.warn(
            f"{what}: {n_drop} row(s) with missing values in {cols} were dropped "
            "(complete-case analysis)",
            UserWarning,
            stacklevel=3,
        )
        df = df.filter(~mask)
    return df


# --------------------------------------------------------------------------------------------
# Cox proportional hazards
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CoxResult:
    """A fitted Cox model: tidy ``table`` plus diagnostics.

    ``table``: ``[term, hazard_ratio, lower, upper, p, coef, se, reference]``.
    ``concordance``: Harrell's C. ``ph_test``: ``[term, statistic, df, p]`` from the
    scaled-Schoenfeld-residual test (lifelines ``proportional_hazard_test``, rank time
    transform, model-based variance), or ``None`` with delayed entry (not supported there).
    ``model``: the engine result (:class:`cinresearch.coxph.CoxEngineResult`: coefficients,
    model and robust variance, linear predictor).
    ``reference``: the reference level used for each categorical covariate.
    """

    table: pl.DataFrame
    concordance: float
    ph_test: pl.DataFrame | None
    n: int
    events: int
    log_likelihood: float
    reference: dict[str, str] = field(default_factory=dict)
    model: Any = None


def _coef_table(
    terms: list[str],
    coef: np.ndarray,
    se: np.ndarray,
    p: np.ndarray,
    reference_of: list[str | None],
    z: float,
    ratio_name: str,
) -> pl.DataFrame:
    with np.errstate(over="ignore"):  # a separated term gives an infinite ratio/limit
        ratio, lower, upper = np.exp(coef), np.exp(coef - z * se), np.exp(coef + z * se)
    return pl.DataFrame(
        {
            "term": terms,
            ratio_name: ratio,
            "lower": lower,
            "upper": upper,
            "p": p,
            "coef": coef,
            "se": se,
            "reference": reference_of,
        },
        schema={
            "term": pl.String,
            ratio_name: pl.Float64,
            "lower": pl.Float64,
            "upper": pl.Float64,
            "p": pl.Float64,
            "coef": pl.Float64,
            "se": pl.Float64,
            "reference": pl.String,
        },
    )


def cox_fit(
    frame: pl.DataFrame | pl.LazyFrame,
    duration: str = "duration",
    event: str = "event",
    covariates: Sequence[str] = (),
    cluster: str | None = None,
    reference: Mapping[str, Any] | None = None,
    entry: str | None = None,
    strata: str | Sequence[str] | None = None,
    alpha: float = 0.05,
    penalizer: float = 0.0,
    ph_test: bool = True,
    concordance: bool = True,
) -> CoxResult:
    """Fit a Cox proportional-hazards model (Efron ties) and return a CoxResult.

    Fitted by :func:`cinresearch.coxph.fit_cox` (Newton–Raphson; coefficients, model and
    robust standard errors equal R's ``coxph`` to within 1e-12 on the reference data in
    ``tests/fixtures/survival/r``). ``cluster``: column of cluster ids (e.g. ``child_id``) →
    robust sandwich standard errors as R's ``coxph(..., cluster = id)`` (dfbeta residuals summed
    within cluster); estimates are unchanged. ``strata``: stratified baseline hazards.
    ``entry``: delayed entry (see module conventions). Event must be 0/1. ``penalizer`` is
    accepted for compatibility but must be 0 (only the unpenalised likelihood is fitted).
    ``concordance=False`` skips Harrell's C (NaN; it dominates the run time on large frames).
    """
    covariates = list(covariates)
    scols = [] if strata is None else ([strata] if isinstance(strata, str) else list(strata))
    extra = covariates + ([cluster] if cluster else []) + scols
    df, _ = _prepare(frame, duration, event, entry=entry, binary=True, extra=extra)
    df = _complete_cases(df, extra, "cox")
    if df.height == 0:
        raise ValueError("no rows left to fit")
    design = _design(df, covariates, reference)
    if design.X.shape[1] == 0:
        raise ValueError("no covariate terms to fit")
    if penalizer:
        raise ValueError("penalised Cox models are not supported (penalizer must be 0)")
    from cinresearch.coxph import fit_cox

    dur = df.get_column(_D).to_numpy()
    ev = df.get_column(_S).to_numpy()
    ent = df.get_column(_E).to_numpy()
    delayed = bool(np.any(np.isfinite(ent)))
    codes = _strata_codes(df, scols) if scols else None
    clusters = (
        df.get_column(cluster).cast(pl.String).cast(pl.Categorical).to_physical().to_numpy()
        if cluster
        else None
    )
    fit = fit_cox(design.X, dur, ev, entry=ent, strata=codes, cluster=clusters)
    se = np.sqrt(np.diag(fit.var if fit.robust_var is None else fit.robust_var))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2.0 * stats.norm.sf(np.abs(fit.coef / se))
    table = _coef_table(
        design.terms, fit.coef, se, p, design.reference_of, _z(alpha), "hazard_ratio"
    )
    c_index = float("nan")
    if concordance:
        from lifelines.utils import concordance_index

        c_index = float(concordance_index(dur, -fit.linear_predictor, ev))
    ph = None
    if ph_test:
        if delayed:
            warnings.warn(
                "proportional-hazards test skipped: lifelines' Schoenfeld residuals ignore "
                "delayed entry",
                UserWarning,
                stacklevel=2,
            )
        else:
            ph = _ph_test(design, dur, ev, df, scols, fit.coef, alpha, penalizer)
    return CoxResult(
        table=table,
        concordance=c_index,
        ph_test=ph,
        n=int(df.height),
        events=int(ev.sum()),
        log_likelihood=fit.log_likelihood,
        reference=design.reference,
        model=fit,
    )


def _ph_test(
    design: _Design,
    dur: np.ndarray,
    ev: np.ndarray,
    df: pl.DataFrame,
    scols: list[str],
    coef: np.ndarray,
    alpha: float,
    penalizer: float,
) -> pl.DataFrame:
    """lifelines' scaled-Schoenfeld test (rank time), on a lifelines model started at ``coef``."""
    import pandas as pd
    from lifelines import CoxPHFitter
    from lifelines.statistics import proportional_hazard_test

    names = [f"x{i}" for i in range(design.X.shape[1])]
    pdf = pd.DataFrame(design.X, columns=names)
    pdf["__T"] = dur
    pdf["__E"] = ev
    strata_names = []
    for i, c in enumerate(scols):
        nm = f"__stratum{i}"
        pdf[nm] = df.get_column(c).cast(pl.String).to_numpy()
        strata_names.append(nm)
    cph = CoxPHFitter(alpha=alpha, penalizer=penalizer).fit(
        pdf,
        duration_col="__T",
        event_col="__E",
        strata=strata_names or None,
        initial_point=np.array(coef, dtype=np.float64),  # lifelines rescales it in place
    )
    summ = proportional_hazard_test(cph, pdf, time_transform="rank").summary
    term_of = dict(zip(names, design.terms, strict=True))
    return pl.DataFrame(
        {
            "term": [term_of[str(i)] for i in summ.index],
            "statistic": summ["test_statistic"].to_numpy(dtype=float),
            "df": [1] * len(summ),
            "p": summ["p"].to_numpy(dtype=float),
        },
        schema={"term": pl.String, "statistic": pl.Float64, "df": pl.Int64, "p": pl.Float64},
    )


def cox(
    frame: pl.DataFrame | pl.LazyFrame,
    duration: str = "duration",
    event: str = "event",
    covariates: Sequence[str] = (),
    cluster: str | None = None,
    reference: Mapping[str, Any] | None = None,
    entry: str | None = None,
    strata: str | Sequence[str] | None = None,
    alpha: float = 0.05,
    penalizer: float = 0.0,
) -> pl.DataFrame:
    """Cox model hazard ratios as a tidy frame ``[term, hazard_ratio, lower, upper, p, coef,
    se, reference]``. See :func:`cox_fit` for diagnostics (concordance, PH test)."""
    return cox_fit(
        frame,
        duration,
        event,
        covariates,
        cluster=cluster,
        reference=reference,
        entry=entry,
        strata=strata,
        alpha=alpha,
        penalizer=penalizer,
        ph_test=False,
        concordance=False,
    ).table


def _cause_event(frame, event_type: str, cause: int) -> tuple[pl.DataFrame | pl.LazyFrame, str]:
    name = "__cause_event"
    return frame.with_columns((pl.col(event_type) == int(cause)).cast(pl.Int64).alias(name)), name


def cause_specific_cox_fit(
    frame: pl.DataFrame | pl.LazyFrame,
    duration: str = "duration",
    event_type: str = "event_type",
    cause: int = 1,
    covariates: Sequence[str] = (),
    **kwargs: Any,
) -> CoxResult:
    """Cause-specific Cox model for ``cause``: other causes are treated as censoring.

    Estimates the cause-specific hazard ratio (not an effect on cumulative incidence).
    Keyword arguments are those of :func:`cox_fit`.
    """
    if isinstance(frame, pl.LazyFrame):
        nulls = frame.select(pl.col(event_type).null_count()).collect().item()
    else:
        nulls = frame.get_column(event_type).null_count()
    if nulls:
        raise ValueError(f"event column {event_type!r} has {nulls} null value(s)")
    f, name = _cause_event(frame, event_type, cause)
    return cox_fit(f, duration, name, covariates, **kwargs)


def cause_specific_cox(
    frame: pl.DataFrame | pl.LazyFrame,
    duration: str = "duration",
    event_type: str = "event_type",
    cause: int = 1,
    covariates: Sequence[str] = (),
    **kwargs: Any,
) -> pl.DataFrame:
    """Tidy table of a cause-specific Cox model (other causes censored); see :func:`cox`."""
    kwargs.setdefault("ph_test", False)
    kwargs.setdefault("concordance", False)
    return cause_specific_cox_fit(frame, duration, event_type, cause, covariates, **kwargs).table


# --------------------------------------------------------------------------------------------
# discrete-time logistic model
# --------------------------------------------------------------------------------------------


def _period_bands(events_per_period: np.ndarray, min_events: int) -> np.ndarray:
    """Map period index (0-based) to a band so each band has >= ``min_events`` events."""
    band = np.zeros(len(events_per_period), dtype=np.int64)
    b, acc = 0, 0
    for i, e in enumerate(events_per_period):
        band[i] = b
        acc += e
        if acc >= min_events and i < len(events_per_period) - 1:
            b += 1
            acc = 0
    # fold a short final band into the previous one
    if b > 0 and events_per_period[band == b].sum() < min_events:
        band[band == b] = b - 1
    return band


def discrete_time_logit(
    frame: pl.DataFrame | pl.LazyFrame,
    duration: str = "duration",
    event: str = "event",
    covariates: Sequence[str] = (),
    interval: float = 30,
    cluster: str | None = None,
    reference: Mapping[str, Any] | None = None,
    entry: str | None = None,
    baseline: str = "periods",
    min_events_per_band: int = 10,
    include_baseline: bool = False,
    censored_period: str = "include",
    alpha: float = 0.05,
) -> pl.DataFrame:
    """Discrete-time hazard model: logistic regression on person-period data.

    Period ``j`` covers days ``((j-1)·interval, j·interval]`` (an event on day 0 falls in period
    1). A subject contributes periods from the one containing its first at-risk day to the
    period of its event (outcome 1 there), or — if censored — to the period in which it was
    censored (``censored_period="include"``, the usual person-period convention, as in
    Singer & Willett) or only to its last complete period (``"exclude"``). A subject censored
    on day 0 contributes nothing.
    ``baseline="periods"``: one intercept per band of consecutive periods, bands formed so each
    holds ``>= min_events_per_band`` events (named ``period[a-b]``); ``"linear"``/``"log"``: an
    intercept plus period or log(period). Fitted by statsmodels GLM (binomial, logit) on
    person-periods aggregated to identical covariate × band cells (same estimates as the
    row-level fit). ``cluster``: cluster-robust (sandwich) covariance with the G/(G−1)
    small-sample factor. Returns ``[term, odds_ratio, lower, upper, p, coef, se, reference]``
    (baseline terms only with ``include_baseline=True``).
    """
    if interval <= 0:
        raise ValueError("interval must be positive (days)")
    if censored_period not in {"include", "exclude"}:
        raise ValueError("censored_period must be 'include' or 'exclude'")
    if baseline not in {"periods", "linear", "log"}:
        raise ValueError("baseline must be 'periods', 'linear' or 'log'")
    covariates = list(covariates)
    extra = covariates + ([cluster] if cluster else [])
    df, _ = _prepare(frame, duration, event, entry=entry, binary=True, extra=extra)
    df = _complete_cases(df, extra, "discrete_time_logit")
    design = _design(df, covariates, reference)
    p = design.X.shape[1]
    subj = pl.DataFrame(
        {f"x{i}": design.X[:, i] for i in range(p)}
        | {
            "__dur": df.get_column(_D).to_numpy(),
            "__ev": df.get_column(_S).to_numpy(),
            "__ent": df.get_column(_E).to_numpy(),
            "__cl": (
                df.get_column(cluster).cast(pl.String).fill_null("").to_numpy()
                if cluster
                else np.zeros(df.height, dtype=np.int64).astype(str)
            ),
        }
    )
    pp = (
        subj.lazy()
        .with_columns(
            last=pl.when(pl.col("__ev") == 1)
            .then(pl.max_horizontal((pl.col("__dur") / interval).ceil(), pl.lit(1.0)))
            .otherwise(
                (pl.col("__dur") / interval).ceil()
                if censored_period == "include"
                else (pl.col("__dur") / interval).floor()
            )
            .cast(pl.Int64),
            first=pl.when(pl.col("__ent").is_finite())
            .then((pl.col("__ent") / interval).floor() + 1)
            .otherwise(1.0)
            .cast(pl.Int64),
        )
        .filter(pl.col("last") >= pl.col("first"))
        .with_columns(period=pl.int_ranges("first", pl.col("last") + 1))
        .explode("period")
        .with_columns(
            y=((pl.col("__ev") == 1) & (pl.col("period") == pl.col("last"))).cast(pl.Int64)
        )
        .group_by([f"x{i}" for i in range(p)] + ["__cl", "period"])
        .agg(events=pl.col("y").sum(), trials=pl.len())
        .sort([f"x{i}" for i in range(p)] + ["__cl", "period"])
        .collect()
    )
    if pp.height == 0 or pp.get_column("events").sum() == 0:
        raise ValueError("no events in the person-period data")
    periods = pp.get_column("period").to_numpy()
    max_p = int(periods.max())
    ev_per = np.bincount(periods - 1, weights=pp.get_column("events").to_numpy(), minlength=max_p)
    base_terms: list[str] = []
    if baseline == "periods":
        band = _period_bands(ev_per, min_events_per_band)
        nb = int(band.max()) + 1
        pb = band[periods - 1]
        B = np.zeros((len(periods), nb))
        B[np.arange(len(periods)), pb] = 1.0
        for b in range(nb):
            members = np.flatnonzero(band == b) + 1
            lo, hi = int(members.min()), int(members.max())
            base_terms.append(f"period[{lo}]" if lo == hi else f"period[{lo}-{hi}]")
    elif baseline == "linear":
        B = np.column_stack([np.ones(len(periods)), periods.astype(float)])
        base_terms = ["intercept", "period"]
    else:
        B = np.column_stack([np.ones(len(periods)), np.log(periods.astype(float))])
        base_terms = ["intercept", "log_period"]
    Xc = (
        pp.select([f"x{i}" for i in range(p)]).to_numpy().astype(np.float64)
        if p
        else np.zeros((len(periods), 0))
    )
    X = np.column_stack([B, Xc])
    ev = pp.get_column("events").to_numpy().astype(np.float64)
    tr = pp.get_column("trials").to_numpy().astype(np.float64)

    import statsmodels.api as sm

    model = sm.GLM(np.column_stack([ev, tr - ev]), X, family=sm.families.Binomial())
    res = model.fit()
    coef = np.asarray(res.params)
    cov = np.asarray(res.cov_params())
    if cluster:
        mu = np.asarray(res.fittedvalues)  # probability per cell
        scores = X * (ev - tr * mu)[:, None]
        codes = pp.get_column("__cl").to_numpy()
        uniq, inv = np.unique(codes, return_inverse=True)
        G = len(uniq)
        if G < 2:
            raise ValueError("cluster-robust SEs need at least 2 clusters")
        summed = np.zeros((G, X.shape[1]))
        np.add.at(summed, inv, scores)
        meat = summed.T @ summed
        cov = cov @ meat @ cov * (G / (G - 1))
    se = np.sqrt(np.diag(cov))
    pval = 2 * stats.norm.sf(np.abs(coef / se))
    terms = base_terms + design.terms
    refs = [None] * len(base_terms) + design.reference_of
    table = _coef_table(terms, coef, se, pval, refs, _z(alpha), "odds_ratio")
    if not include_baseline:
        table = table.slice(len(base_terms))
    return table
