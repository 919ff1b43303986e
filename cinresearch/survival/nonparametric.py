"""Kaplan–Meier and Aalen–Johansen curves, median times, and risk-set masking.

Curves are computed directly from tied event counts (no jittering) and returned as tidy
frames ``[group, time, estimate, lower, upper, at_risk, events, censored, std_error]``; the
row, risk-set and confidence-interval conventions are those of :mod:`cinresearch.survival`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from cinresearch.survival.inputs import _D, _E, _G, _S, _prepare, _schema, _z
from cinresearch.survival.risk_sets import _at_risk, _counts

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
