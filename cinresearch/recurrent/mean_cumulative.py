"""Mean cumulative number of re-referrals per child (Ghosh–Lin with terminal events; Nelson–Aalen), with robust variance.

Part of :mod:`cinresearch.recurrent`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from cinresearch.disclosure import round_half_up
from cinresearch.recurrent.conventions import (
    ALL_GROUP,
    CURVE_COLUMNS,
    METHODS,
    MISSING_GROUP,
    Frame,
)
from cinresearch.recurrent.history import _lazy

# --------------------------------------------------------------------------------------------
# Mean cumulative function
# --------------------------------------------------------------------------------------------


def _level_order(series: pl.Series) -> list[str]:
    """Group levels as strings: enum order, else sorted; "Missing" last for nulls."""
    present = series.drop_nulls().unique()
    if isinstance(series.dtype, pl.Enum):
        have = set(present.cast(pl.String).to_list())
        order = [c for c in series.dtype.categories.to_list() if c in have]
    else:
        order = sorted(present.cast(pl.String).to_list())
    if series.null_count():
        order.append(MISSING_GROUP)
    return order


def _check_rows(
    subject: np.ndarray, start: np.ndarray, stop: np.ndarray, event: np.ndarray, term: np.ndarray
) -> None:
    if np.any(~np.isfinite(start)) or np.any(~np.isfinite(stop)):
        raise ValueError("start and stop must be finite (days since the origin)")
    if np.any(start < 0) or np.any(stop <= start):
        raise ValueError("counting-process rows need 0 <= start < stop")
    for name, v in (("event", event), ("terminal", term)):
        if not np.all((v == 0) | (v == 1)):
            raise ValueError(f"{name} must be 0 or 1")
    order = np.lexsort((start, subject))
    s, a, b, t = subject[order], start[order], stop[order], term[order]
    same = s[1:] == s[:-1]
    if np.any(same & (a[1:] < b[:-1])):
        raise ValueError("a subject has overlapping rows (start before the previous stop)")
    if np.any(same & (t[:-1] == 1)):
        raise ValueError("terminal must be set only on a subject's last row")


def _mcf_arrays(
    subject: np.ndarray,
    start: np.ndarray,
    stop: np.ndarray,
    event: np.ndarray,
    term: np.ndarray,
    ghosh_lin: bool,
) -> dict[str, np.ndarray]:
    """Mean cumulative function and its robust (infinitesimal-jackknife) variance.

    At each distinct stop time ``t`` with ``Y`` subjects at risk, ``d`` events and ``D``
    terminal events: ``dLambda = d / Y``; Nelson–Aalen ``mu = sum dLambda``; Ghosh–Lin
    ``mu = sum S(t-) dLambda`` with ``S`` the Kaplan–Meier curve of the terminal event.
    The variance is ``sum_i psi_i(t)^2`` with ``psi_i`` subject ``i``'s derivative of ``mu(t)``
    with respect to its weight (Lawless–Nadeau for Nelson–Aalen; for Ghosh–Lin
    ``psi_i = sum_u [S(u-) (dN_i - Y_i dLambda) / Y + mu(u) (dD_i - Y_i dD/Y) / (Y - D)]
    - mu(t) sum_u (dD_i - Y_i dD/Y) / (Y - D)``). The sums over subjects are kept in one pass
    over time: subjects at risk share the common increments, so only sums of their own
    increments (and of their squares and products) are stored.
    """
    times, tidx = np.unique(stop, return_inverse=True)
    T = len(times)
    Y = (
        np.searchsorted(np.sort(start), times, side="left")
        - np.searchsorted(np.sort(stop), times, side="left")
    ).astype(np.float64)
    d = np.bincount(tidx, weights=event, minlength=T)
    dD = np.bincount(tidx, weights=term, minlength=T) if ghosh_lin else np.zeros(T)
    order = np.lexsort((start, subject))
    is_last = np.ones(len(stop), dtype=bool)
    is_last[order[:-1]] = subject[order[1:]] != subject[order[:-1]]
    censored = np.bincount(tidx, weights=is_last & (term == 0), minlength=T)
    n_terminal = np.bincount(tidx, weights=term, minlength=T)
    dlam = d / Y
    if ghosh_lin:
        surv = np.cumprod(1.0 - dD / Y)
        s_minus = np.concatenate([[1.0], surv[:-1]])
    else:
        s_minus = np.ones(T)
    mu = np.cumsum(s_minus * dlam)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_alive = np.where(Y - dD > 0, 1.0 / (Y - dD), 0.0)  # 1 / (Y - D)
    common_p = -s_minus * d / Y**2 - mu * dD / Y * inv_alive
    common_h = -dD / Y * inv_alive
    own_event = s_minus / Y
    own_term_p = mu * inv_alive

    gl = 1.0 if ghosh_lin else 0.0
    _, subj = np.unique(subject, return_inverse=True)
    m = int(subj.max()) + 1 if len(subj) else 0
    frozen_p = np.zeros(m)  # psi parts of subjects not at risk: P_i, H_i
    frozen_h = np.zeros(m)
    p = np.zeros(m)  # of subjects at risk: P_i - CP, H_i - CH
    h = np.zeros(m)
    cp = ch = 0.0
    f_pp = f_ph = f_hh = 0.0  # sums over subjects not at risk
    a_p = a_h = a_pp = a_ph = a_hh = 0.0  # sums over subjects at risk
    n_active = 0
    by_start = np.argsort(start, kind="stable")
    start_sorted = start[by_start]
    by_stop = np.argsort(tidx, kind="stable")
    bounds = np.searchsorted(tidx[by_stop], np.arange(T + 1))
    var = np.zeros(T)
    entered = 0
    for k in range(T):
        t = times[k]
        # rows entering (start < t): their subjects join the risk set
        upto = int(np.searchsorted(start_sorted, t, side="left"))
        if upto > entered:
            s = subj[by_start[entered:upto]]
            entered = upto
            fp, fh = frozen_p[s], frozen_h[s]
            f_pp -= fp @ fp
            f_ph -= fp @ fh
            f_hh -= fh @ fh
            p[s] = fp - cp
            h[s] = fh - ch
            a_p += p[s].sum()
            a_h += h[s].sum()
            a_pp += p[s] @ p[s]
            a_ph += p[s] @ h[s]
            a_hh += h[s] @ h[s]
            n_active += len(s)
        cp += common_p[k]
        ch += common_h[k]
        rows = by_stop[bounds[k] : bounds[k + 1]]
        s = subj[rows]
        jump = (event[rows] > 0) | (gl * term[rows] > 0)
        if jump.any():
            sj, rj = s[jump], rows[jump]
            old_p, old_h = p[sj], h[sj]
            new_p = old_p + event[rj] * own_event[k] + gl * term[rj] * own_term_p[k]
            new_h = old_h + gl * term[rj] * inv_alive[k]
            a_p += (new_p - old_p).sum()
            a_h += (new_h - old_h).sum()
            a_pp += new_p @ new_p - old_p @ old_p
            a_ph += new_p @ new_h - old_p @ old_h
            a_hh += new_h @ new_h - old_h @ old_h
            p[sj], h[sj] = new_p, new_h
        mk = mu[k]
        shift = cp - mk * ch
        q1 = a_p - mk * a_h
        q2 = a_pp - 2 * mk * a_ph + mk * mk * a_hh
        var[k] = (
            q2 + 2 * shift * q1 + n_active * shift * shift + f_pp - 2 * mk * f_ph + mk * mk * f_hh
        )
        # rows ending at t: their subjects leave the risk set (frozen)
        fp, fh = p[s] + cp, h[s] + ch
        a_p -= p[s].sum()
        a_h -= h[s].sum()
        a_pp -= p[s] @ p[s]
        a_ph -= p[s] @ h[s]
        a_hh -= h[s] @ h[s]
        n_active -= len(s)
        frozen_p[s], frozen_h[s] = fp, fh
        f_pp += fp @ fp
        f_ph += fp @ fh
        f_hh += fh @ fh
    return {
        "time": times,
        "estimate": mu,
        "variance": np.clip(var, 0.0, None),
        "at_risk": Y,
        "events": d,
        "terminal": n_terminal,
        "censored": censored,
    }


def mean_cumulative(
    frame: Frame,
    by: str | None = None,
    *,
    method: str = "ghosh_lin",
    times: Sequence[float] | None = None,
    alpha: float = 0.05,
    id: str = "subject_id",
    start: str = "tstart",
    stop: str = "tstop",
    event: str = "event",
    terminal: str = "terminal",
) -> pl.DataFrame:
    """Mean cumulative number of re-referrals per child by each day since the first referral.

    ``method="ghosh_lin"`` (default) is the Ghosh–Lin (2000) estimator
    ``mu(t) = sum_{u <= t} S(u-) dN(u) / Y(u)``: the Nelson–Aalen rate of re-referral among
    children still followed, weighted by the Kaplan–Meier probability ``S`` of not yet having
    had a terminal event (death, 18th birthday). It estimates the mean number of re-referrals
    that children actually have by day ``t``, a child who has died or turned 18 adding no more.
    ``method="nelson_aalen"`` is the Nelson–Aalen mean cumulative function of Lawless and
    Nadeau (1995), ``sum dN / Y``, which treats terminal events as censoring: the mean for
    children who stay alive and under 18 (it exceeds Ghosh–Lin once terminal events happen).
    Both need censoring (end of data, leaving the LA) unrelated to future referrals.

    ``std_error`` is the robust standard error, the infinitesimal jackknife over subjects
    (``id``): Lawless–Nadeau's robust variance for Nelson–Aalen (R's
    ``survfit(Surv(tstart, tstop, event) ~ 1, id = id)$std.chaz``) and the Ghosh–Lin variance
    with exact Kaplan–Meier derivatives (equal to R's survfit influence values combined by the
    delta method; ``tests/fixtures/recurrent/r``). It needs no Poisson assumption: children
    with many re-referrals widen it. The interval is on the log scale,
    ``mu · exp(±z · se / mu)``, so it stays positive.

    Returns :data:`CURVE_COLUMNS`: per group (``by``; "All" when ``None``, "Missing" for nulls)
    a row at ``time`` 0 (``at_risk`` = subjects followed from the origin) and at every
    distinct ``stop`` time; ``at_risk`` is the number of subjects at risk at ``time``,
    ``events`` the re-referrals on that day, ``terminal`` the terminal events and
    ``censored`` the subjects whose follow-up was censored then (Nelson–Aalen treats the
    terminal events as censoring too, but they are still counted as ``terminal``). With ``times`` the step function is evaluated at those
    days instead (null beyond the group's last follow-up day).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    z = float(stats.norm.ppf(1 - alpha / 2))
    cols = list(dict.fromkeys([id, start, stop, event, terminal, *([by] if by else [])]))
    df = _lazy(frame).select(cols).collect()
    for c in cols:
        if c != by and df.get_column(c).null_count():
            raise ValueError(f"column {c!r} has null values")
    if by is None:
        labels = pl.Series("g", [ALL_GROUP] * df.height, dtype=pl.String)
        order = [ALL_GROUP]
    else:
        order = _level_order(df.get_column(by))
        labels = df.get_column(by).cast(pl.String).fill_null(MISSING_GROUP)
    if by is not None:
        per_subject = (
            pl.DataFrame({"s": df.get_column(id), "g": labels}).unique().group_by("s").len()
        )
        if per_subject.height and per_subject.get_column("len").max() > 1:
            raise ValueError(f"{by!r} must be constant within each subject ({id!r})")
    req = None if times is None else np.asarray(sorted({float(t) for t in times}))
    if req is not None and len(req) and req[0] < 0:
        raise ValueError("times must be >= 0 (days since the origin)")
    parts = []
    for level in order:
        part = df.filter(labels == level)
        # integer codes: sorting them is far faster than sorting id strings
        subject = (part.get_column(id).rank("dense") - 1).cast(pl.Int64).to_numpy()
        st = part.get_column(start).cast(pl.Float64).to_numpy()
        sp = part.get_column(stop).cast(pl.Float64).to_numpy()
        ev = part.get_column(event).cast(pl.Float64).to_numpy()
        tm = part.get_column(terminal).cast(pl.Float64).to_numpy()
        _check_rows(subject, st, sp, ev, tm)
        res = _mcf_arrays(subject, st, sp, ev, tm, ghosh_lin=method == "ghosh_lin")
        n0 = len(np.unique(subject[st == 0]))
        grid = np.concatenate([[0.0], res["time"]])
        est = np.concatenate([[0.0], res["estimate"]])
        se = np.sqrt(np.concatenate([[0.0], res["variance"]]))
        counts = {k: np.concatenate([[0.0], res[k]]) for k in ("events", "terminal", "censored")}
        at_risk = np.concatenate([[n0], res["at_risk"]])
        if req is not None:
            idx = np.searchsorted(grid, req, side="right") - 1
            beyond = req > grid[-1]
            est, se = est[idx], se[idx]
            est[beyond] = np.nan
            se[beyond] = np.nan
            at = req
            exact = np.isin(req, grid)
            pos = np.searchsorted(grid, req)
            counts = {
                k: np.where(exact, v[np.minimum(pos, len(v) - 1)], 0.0) for k, v in counts.items()
            }
            at_risk = (
                np.searchsorted(np.sort(st), at, side="left")
                - np.searchsorted(np.sort(sp), at, side="left")
            ).astype(np.float64)
            at_risk[at == 0] = n0
        else:
            at = grid
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.exp(z * se / est)
            lower = np.where(est > 0, est / factor, 0.0)
            upper = np.where(est > 0, est * factor, 0.0)
        lower[np.isnan(est)] = np.nan
        upper[np.isnan(est)] = np.nan
        parts.append(
            pl.DataFrame(
                {
                    "group": [level] * len(at),
                    "time": at,
                    "estimate": est,
                    "lower": lower,
                    "upper": upper,
                    "std_error": se,
                    "at_risk": at_risk.astype(np.int64),
                    **{k: v.astype(np.int64) for k, v in counts.items()},
                }
            )
        )
    empty = {
        "group": pl.String,
        **dict.fromkeys(["time", "estimate", "lower", "upper", "std_error"], pl.Float64),
        **dict.fromkeys(["at_risk", "events", "terminal", "censored"], pl.Int64),
    }
    out = pl.concat(parts) if parts else pl.DataFrame(schema=empty)
    whole = (
        out.get_column("time").is_finite().all()
        and (out.get_column("time") == out.get_column("time").round()).all()
    )
    return out.with_columns(
        pl.col("time").cast(pl.Int64 if whole else pl.Float64),
        *(pl.col(c).fill_nan(None) for c in ("estimate", "lower", "upper", "std_error")),
    ).select(CURVE_COLUMNS)


def mean_cumulative_table(
    curve: pl.DataFrame,
    times: Sequence[float],
    *,
    min_at_risk: int = 10,
    time_labels: Mapping[float, str] | None = None,
    group_label: str = "Group",
    decimals: int = 2,
) -> pl.DataFrame:
    """A :func:`mean_cumulative` curve as a wide table to display: one row per group with
    ``children`` (followed from time 0) and one text column per time, "0.25 (0.24 to 0.27)"
    (rounded half up);
    "c" where fewer than ``min_at_risk`` children were still followed (as survival curves are
    shown), or beyond the follow-up. Pass ``children`` to disclosure control as a count."""
    labels = {float(k): v for k, v in (time_labels or {}).items()}
    names = [labels.get(float(t), f"{float(t):g} days") for t in times]
    rows = []
    for (group,), part in curve.group_by("group", maintain_order=True):
        part = part.sort("time")
        t = part.get_column("time").cast(pl.Float64).to_numpy()
        row: dict[str, Any] = {group_label: group, "children": int(part["at_risk"][0])}
        for name, x in zip(names, times, strict=True):
            i = int(np.searchsorted(t, float(x), side="right")) - 1  # value at x
            j = int(np.searchsorted(t, float(x), side="left"))  # at risk at x
            at_risk = int(part["at_risk"][j]) if j < len(t) else 0
            est, lo, hi = (part[c][i] for c in ("estimate", "lower", "upper"))
            if at_risk < min_at_risk or est is None:
                row[name] = "c"
            else:
                lo_, est_, hi_ = (round_half_up(v, decimals=decimals) for v in (lo, est, hi))
                row[name] = f"{est_:.{decimals}f} ({lo_:.{decimals}f} to {hi_:.{decimals}f})"
        rows.append(row)
    schema = {group_label: pl.String, "children": pl.Int64, **dict.fromkeys(names, pl.String)}
    return pl.DataFrame(rows, schema=schema)
