"""Aalen–Johansen state occupation probabilities with left truncation and infinitesimal-jackknife standard errors.

Part of :mod:`cinresearch.multistate`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats

from cinresearch.multistate.rows import _prepare_rows
from cinresearch.multistate.states import _SE_BUDGET, Frame

# --------------------------------------------------------------------------------------------
# Aalen–Johansen state occupation
# --------------------------------------------------------------------------------------------


def _counts_at(a: np.ndarray, b: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Number of rows with ``a < t <= b`` at each of ``times``."""
    n_b = len(b) - np.searchsorted(np.sort(b), times, side="left")
    n_a = len(a) - np.searchsorted(np.sort(a), times, side="left")
    return n_b - n_a


@dataclass(frozen=True)
class _AJ:
    """The estimator on one group's rows: event times, transition matrices, p before/after."""

    etimes: np.ndarray  # (M,) times with at least one move
    H: np.ndarray  # (M, S, S) I + dA at each event time (rows sum to 1)
    n: np.ndarray  # (M, S) number at risk per state
    p_before: np.ndarray  # (M, S)
    p_after: np.ndarray  # (M, S)
    p0: np.ndarray  # (S,)
    t0: float
    at0: np.ndarray  # rows at risk at t0 (bool, n_rows)


def _aalen_johansen(a, b, j, k, S) -> _AJ:
    ev = k >= 0
    etimes = np.unique(b[ev])
    M = len(etimes)
    t0 = float(etimes[0]) if M else float(b.max())
    at0 = (a < t0) & (b >= t0)
    p0 = np.bincount(j[at0], minlength=S).astype(np.float64)
    p0 = p0 / p0.sum() if p0.sum() else p0
    n = np.zeros((M, S))
    for s in range(S):
        m = j == s
        n[:, s] = _counts_at(a[m], b[m], etimes)
    d = np.zeros((M, S, S))
    np.add.at(d, (np.searchsorted(etimes, b[ev]), j[ev], k[ev]), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(n[:, :, None] > 0, d / n[:, :, None], 0.0)
    H = frac.copy()
    diag = np.arange(S)
    H[:, diag, diag] = 1.0 - frac.sum(axis=2)
    p_before = np.empty((M, S))
    p_after = np.empty((M, S))
    p = p0.copy()
    for m in range(M):
        p_before[m] = p
        p = p @ H[m]
        p_after[m] = p
    return _AJ(etimes, H, n, p_before, p_after, p0, t0, at0)


def _cluster_sums(codes: np.ndarray, values: np.ndarray, n_cl: int) -> np.ndarray:
    """Sum the rows of ``values`` (n, S) within cluster ``codes`` → (n_cl, S)."""
    return np.stack(
        [np.bincount(codes, weights=values[:, s], minlength=n_cl) for s in range(values.shape[1])],
        axis=1,
    )


def _ij_standard_errors(
    aj: _AJ,
    a: np.ndarray,
    b: np.ndarray,
    j: np.ndarray,
    k: np.ndarray,
    cluster: np.ndarray,
    times: np.ndarray,
) -> np.ndarray:
    """Infinitesimal-jackknife standard errors of ``p(t)`` at ``times`` (sorted), (T, S).

    The influence of subject ``i`` on ``p(t)`` (R ``survfit``'s ``influence.pstate``) is
    ``U_i(t) = i0_i P(0, t) + Σ_{s <= t} A_i(s) P(s, t)``, ``P(s, t)`` the product of the
    transition matrices ``H`` at the event times in ``(s, t]``, ``A_i(s) = c_j(s) (e_d - H_j(s))``
    with ``c_j(s) = p_j(s-) / n_j(s)`` for a row at risk in state ``j`` at ``s`` that is in
    state ``d`` after ``s``, and ``i0_i = (e_j - p0) / n0`` for the rows at risk at the first
    event time (zero when ``p0`` is degenerate, as in R). The variance is the sum over
    clusters of the squared summed influence.

    A row's terms at the event times of its interval are differences of prefix sums ``CG`` of
    ``diag(c)(I - H(s)) P(s, t)``. From one output time to the next every earlier term is
    multiplied by the same product of matrices, so the summed influence of rows that have
    ended is carried per cluster (``V``) and only the rows ending or at risk at the new time
    are computed: the cost per output time is (clusters + rows at risk) x states^2 plus
    event times x states^3.
    """
    M, S = aj.n.shape
    out = np.zeros((len(times), S))
    eye = np.eye(S)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(aj.n > 0, aj.p_before / aj.n, 0.0)  # (M, S)
    G = c[:, :, None] * (eye[None, :, :] - aj.H)  # (M, S, S), row j: c_j (e_j - H_j)
    lo = np.searchsorted(aj.etimes, a, side="right")  # event times <= a
    hi = np.searchsorted(aj.etimes, b, side="right")  # event times <= b
    _, cl = np.unique(cluster, return_inverse=True)
    n_cl = int(cl.max()) + 1 if len(cl) else 0
    by_end = np.argsort(b, kind="stable")
    b_sorted = b[by_end]

    V = np.zeros((n_cl, S))  # summed influence of the rows that have ended, per cluster
    n0 = int(aj.at0.sum())
    if n0 and np.all(aj.p0 < 1):
        rows = np.flatnonzero(aj.at0)
        V += _cluster_sums(cl[rows], (eye[j[rows]] - aj.p0) / n0, n_cl)
    CG = np.zeros((1, S, S))  # CG[m] = Σ_{m' < m} G[m'] P(e_m', t)
    done = 0  # event times handled
    ended = 0  # rows (in order of b) whose influence is in V
    for ti, t in enumerate(times):
        Mt = int(np.searchsorted(aj.etimes, t, side="right"))
        newQ = np.zeros((0, S, S))
        if Mt > done:
            # P(e_m, t) for the new event times, built backwards; acc = their whole product
            newQ = np.empty((Mt - done, S, S))
            acc = eye.copy()
            for m in range(Mt - 1, done - 1, -1):
                newQ[m - done] = acc
                acc = aj.H[m] @ acc
            CG = np.einsum("mij,jk->mik", CG, acc)
            V = np.einsum("cj,jk->ck", V, acc)
            inc = np.einsum("mij,mjk->mik", G[done:Mt], newQ)
            CG = np.concatenate([CG, CG[-1] + np.cumsum(inc, axis=0)])
        # rows ending in (previous time, t]: their influence joins V
        stop = int(np.searchsorted(b_sorted, t, side="right"))
        if stop > ended:
            r = by_end[ended:stop]
            U = CG[hi[r], j[r], :] - CG[lo[r], j[r], :]
            moved = k[r] >= 0
            if moved.any():
                rm = r[moved]
                m = hi[rm] - 1 - done  # b is an event time in (previous time, t]
                U[moved] += c[hi[rm] - 1, j[rm]][:, None] * (newQ[m, k[rm], :] - newQ[m, j[rm], :])
            V += _cluster_sums(cl[r], U, n_cl)
            ended = stop
        done = Mt
        # rows at risk at t and continuing after it
        active = np.flatnonzero((a < t) & (b > t))
        total = V
        if len(active):
            U = CG[Mt, j[active], :] - CG[lo[active], j[active], :]
            total = V + _cluster_sums(cl[active], U, n_cl)
        out[ti] = np.sqrt((total**2).sum(axis=0))
    return out


def _loglog_limits(p: np.ndarray, se: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise limits on the log(-log) scale (R ``conf.type = "log-log"``); p at 0 or 1."""
    lower = np.full(p.shape, np.nan)
    upper = np.full(p.shape, np.nan)
    inner = (p > 0) & (p < 1) & np.isfinite(se)
    pi = p[inner]
    st = se[inner] / (pi * np.abs(np.log(pi)))
    lower[inner] = pi ** np.exp(z * st)
    upper[inner] = pi ** np.exp(-z * st)
    for v in (0.0, 1.0):
        lower[p == v] = v
        upper[p == v] = v
    return lower, upper


_OCCUPATION_SCHEMA = {
    "group": pl.String,
    "time": pl.Float64,
    "state": pl.String,
    "estimate": pl.Float64,
    "std_error": pl.Float64,
    "lower": pl.Float64,
    "upper": pl.Float64,
    "at_risk": pl.Int64,
    "events": pl.Int64,
}


def state_occupation(
    frame: Frame,
    times: Sequence[float] | None = None,
    group: str | None = None,
    *,
    id: str = "episode_id",
    cluster: str | None = None,
    tstart: str = "tstart",
    tstop: str = "tstop",
    from_state: str = "from_state",
    to_state: str = "to_state",
    states: Sequence[str] | None = None,
    std_error: bool = True,
    alpha: float = 0.05,
) -> pl.DataFrame:
    """Aalen–Johansen state occupation probabilities over time, with left truncation.

    ``frame``: rows as :func:`pathway_frame` makes them (any multi-state rows with these
    columns: contiguous ``(tstart, tstop]`` intervals per ``id``). Returns one row per group,
    time and state: ``group, time, state, estimate, std_error, lower, upper, at_risk, events``
    — ``estimate`` is P(in ``state`` at ``time``) after the moves at ``time`` (right-continuous);
    ``at_risk`` the rows in ``state`` at risk at ``time`` (``tstart < time <= tstop``);
    ``events`` the moves *into* ``state`` at ``time``. Times: 0 and every distinct ``tstop``,
    or ``times`` (Int64 when ``tstop`` is whole days and so are ``times``). States: those in the frame, in model order (``states`` gives the order for
    other names).

    ``std_error``: infinitesimal-jackknife standard errors, as R ``survfit(..., influence =
    TRUE)``, the influence summed by ``id`` or, when given, by ``cluster`` (e.g.
    ``"child_id"``: a child's episodes are not independent). Their cost grows with rows x
    times: with ``times=None`` they are left null (with a warning) above 100 million; give the
    ``times`` you will show. Limits: log(-log), level ``1 - alpha``.
    """
    extra = [c for c in (group, cluster) if c]
    df, order = _prepare_rows(frame, id, tstart, tstop, from_state, to_state, states, extra)
    S = len(order)
    z = float(stats.norm.ppf(1 - alpha / 2))
    if group is None:
        parts = [("All", df)]
    else:
        g = df.get_column(group)
        levels = (
            [c for c in g.dtype.categories.to_list() if c in set(g.cast(pl.String).to_list())]
            if isinstance(g.dtype, pl.Enum)
            else sorted(g.drop_nulls().cast(pl.String).unique().to_list())
        )
        labels = g.cast(pl.String).fill_null("Missing")
        if g.null_count():
            levels.append("Missing")
        parts = [(lv, df.filter(labels == lv)) for lv in levels]
    whole_days = df.schema[tstop].is_integer() and (
        times is None or all(float(x).is_integer() for x in times)
    )
    frames = []
    for label, part in parts:
        a = part.get_column("__a").to_numpy()
        b = part.get_column("__b").to_numpy()
        j = part.get_column("__j").to_numpy()
        k = part.get_column("__k").fill_null(-1).to_numpy()
        aj = _aalen_johansen(a, b, j, k, S)
        if times is None:
            out_t = np.unique(np.concatenate([[0.0], b]))
        else:
            out_t = np.unique(np.asarray([float(x) for x in times]))
        idx = np.searchsorted(aj.etimes, out_t, side="right") - 1
        est = np.where(idx[:, None] >= 0, aj.p_after[np.maximum(idx, 0)], aj.p0[None, :])
        if not len(aj.etimes):
            est = np.repeat(aj.p0[None, :], len(out_t), axis=0)
        at_risk = np.stack([_counts_at(a[j == s], b[j == s], out_t) for s in range(S)], axis=1)
        events = np.zeros((len(out_t), S), dtype=np.int64)
        evm = k >= 0
        pos = np.searchsorted(out_t, b[evm])
        hit = (pos < len(out_t)) & (out_t[np.minimum(pos, len(out_t) - 1)] == b[evm])
        np.add.at(events, (pos[hit], k[evm][hit]), 1)
        se = np.full(est.shape, np.nan)
        if std_error:
            if times is None and len(a) * len(out_t) > _SE_BUDGET:
                warnings.warn(
                    f"standard errors not computed: {len(a):,} rows x {len(out_t):,} times is "
                    "too many; pass times=[...] for the times you will show",
                    UserWarning,
                    stacklevel=2,
                )
            else:
                ids = part.get_column(cluster or id).cast(pl.String).to_numpy()
                se = _ij_standard_errors(aj, a, b, j, k, ids, out_t)
        lower, upper = _loglog_limits(est, se, z)
        T = len(out_t)
        frames.append(
            pl.DataFrame(
                {
                    "group": [label] * (T * S),
                    "time": np.repeat(out_t, S),
                    "state": order * T,
                    "estimate": est.ravel(),
                    "std_error": se.ravel(),
                    "lower": lower.ravel(),
                    "upper": upper.ravel(),
                    "at_risk": at_risk.ravel().astype(np.int64),
                    "events": events.ravel(),
                },
                schema=_OCCUPATION_SCHEMA,
            ).with_columns(pl.col("std_error", "lower", "upper").fill_nan(None))
        )
    out = pl.concat(frames)
    return out.with_columns(pl.col("time").cast(pl.Int64)) if whole_days else out
