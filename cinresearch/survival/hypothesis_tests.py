"""k-sample tests: log-rank (equal hazards) and Gray (equal cumulative incidence).

Both return ``[statistic, df, p, test]`` with a chi-squared p-value on ``df`` = groups − 1,
take optional ``strata`` (scores and variances summed over strata) and delayed entry.
Gray's test (``_gray_group_arrays``, ``_gray_scores``, ``gray_test``) is the last block of
this file, kept as one piece.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from scipy import stats

from cinresearch.survival.inputs import _D, _E, _G, _S, _prepare, _strata_codes
from cinresearch.survival.risk_sets import _at_risk, _counts


def _test_frame(statistic: float, df: int, test: str) -> pl.DataFrame:
    p = float(stats.chi2.sf(statistic, df)) if df > 0 else float("nan")
    return pl.DataFrame(
        {"statistic": [float(statistic)], "df": [int(df)], "p": [p], "test": [test]},
        schema={"statistic": pl.Float64, "df": pl.Int64, "p": pl.Float64, "test": pl.String},
    )


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
