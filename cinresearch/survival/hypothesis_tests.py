"""k-sample tests: log-rank (equal hazards) and Gray (equal cumulative incidence).

Both return ``[statistic, df, p, test]`` with a chi-squared p-value on ``df`` = groups − 1,
take optional ``strata`` (scores and variances summed over strata) and delayed entry.
Gray's test (``_gray_group_arrays``, ``_gray_scores``, ``gray_test``) is the last block of
this file, kept as one piece.
"""

from __future__ import annotations

import warnings
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


def _gray_group_arrays(Y, d1, d2):
    """Per-group S(t-), F(t-) and the adjusted (subdistribution) risk set R = Y(1-F-)/S-."""
    Y = Y.astype(np.float64)
    D = (d1 + d2).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(Y > 0, D / Y, 0.0)
        h1 = np.where(Y > 0, d1 / Y, 0.0)
    S = np.cumprod(1.0 - h)
    s_prev = np.concatenate([[1.0], S[:-1]])
    F = np.cumsum(s_prev * h1)
    f_prev = np.concatenate([[0.0], F[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        Q = np.where(s_prev > 0, (1.0 - f_prev) / s_prev, 0.0)
    return {
        "Y": Y,
        "D": D,
        "h": h,
        "h1": h1,
        "s_prev": s_prev,
        "f_prev": f_prev,
        "Q": Q,
        "R": Y * Q,
    }


def _gray_scores(
    dur: np.ndarray,
    status: np.ndarray,
    entry_eff: np.ndarray,
    gcode: np.ndarray,
    K: int,
    cause: int,
    weights: np.ndarray | None = None,
    influence: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Gray's (1988) score vector (rho = 0) for groups 0..K-2 and per-subject influence values.

    ``z_k = sum_t [d1_k(t) - R_k(t) d1(t) / R(t)]`` with ``R_k = Y_k (1 - F_k(t-)) / S_k(t-)``.
    The influence of subject ``i`` on ``z`` is the exact derivative of ``z`` with respect to
    its frequency weight, obtained by reverse-mode differentiation through the group's
    Kaplan–Meier and Aalen–Johansen recursions.
    """
    w = np.ones(len(dur)) if weights is None else np.asarray(weights, dtype=np.float64)
    times = np.unique(dur)
    T = len(times)
    idx = np.searchsorted(times, dur)
    groups = []
    for j in range(K):
        m = gcode == j
        Y = np.zeros(T)
        # weighted at-risk: #{entry < t <= dur}
        order_d = np.argsort(dur[m])
        ds, wd = dur[m][order_d], w[m][order_d]
        cw = np.concatenate([[0.0], np.cumsum(wd)])
        ge_dur = cw[-1] - cw[np.searchsorted(ds, times, side="left")]
        order_e = np.argsort(entry_eff[m])
        es, we = entry_eff[m][order_e], w[m][order_e]
        ce = np.concatenate([[0.0], np.cumsum(we)])
        ge_ent = ce[-1] - ce[np.searchsorted(es, times, side="left")]
        Y = ge_dur - ge_ent
        d1 = np.bincount(idx[m], weights=w[m] * (status[m] == cause), minlength=T)
        d2 = np.bincount(
            idx[m], weights=w[m] * ((status[m] > 0) & (status[m] != cause)), minlength=T
        )
        arr = _gray_group_arrays(Y, d1, d2)
        arr["d1"] = d1
        arr["d2"] = d2
        groups.append(arr)
    Rtot = sum(a["R"] for a in groups)
    D1 = sum(a["d1"] for a in groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(Rtot > 0, D1 / Rtot, 0.0)
        share = [np.where(Rtot > 0, a["R"] / Rtot, 0.0) for a in groups]
    z = np.array([(groups[k]["d1"] - groups[k]["R"] * ratio).sum() for k in range(K - 1)])
    if not influence:
        return z, None

    infl = np.zeros((len(dur), K - 1))
    for k in range(K - 1):
        for j in range(K):
            a = groups[j]
            delta = 1.0 if j == k else 0.0
            rho = -ratio * (delta - share[k])  # dz_k / dR_j(t)
            Y, Q, s_prev, f_prev = a["Y"], a["Q"], a["s_prev"], a["f_prev"]
            h, h1 = a["h"], a["h1"]
            Qbar = rho * Y
            with np.errstate(divide="ignore", invalid="ignore"):
                fprev_bar = np.where(s_prev > 0, -Qbar / s_prev, 0.0)
                sprev_bar_q = np.where(s_prev > 0, -Qbar * (1.0 - f_prev) / s_prev**2, 0.0)
            # adjoint of F(t_i): F(t_i) is F(t_{i+1}-), and feeds F(t_{i+1}).
            Fbar = np.concatenate([np.cumsum(fprev_bar[::-1])[::-1][1:], [0.0]])
            h1_bar = Fbar * s_prev
            # adjoint of S(t_i) (= S(t_{i+1}-)): backward recursion
            Sbar = np.zeros(T)
            for i in range(T - 2, -1, -1):
                Sbar[i] = (
                    sprev_bar_q[i + 1] + Fbar[i + 1] * h1[i + 1] + Sbar[i + 1] * (1.0 - h[i + 1])
                )
            h_bar = -Sbar * s_prev
            with np.errstate(divide="ignore", invalid="ignore"):
                invY = np.where(Y > 0, 1.0 / Y, 0.0)
            g_d1 = (delta - share[k]) + (h1_bar + h_bar) * invY
            g_d2 = h_bar * invY
            g_Y = rho * Q - (h1_bar * a["d1"] + h_bar * (a["d1"] + a["d2"])) * invY**2
            m = gcode == j
            C = np.concatenate([[0.0], np.cumsum(g_Y)])
            last = np.searchsorted(times, dur[m], side="right")
            first = np.searchsorted(times, entry_eff[m], side="right")
            iv = C[last] - C[first]
            stj = status[m]
            iv = iv + np.where(stj == cause, g_d1[idx[m]], 0.0)
            iv = iv + np.where((stj > 0) & (stj != cause), g_d2[idx[m]], 0.0)
            infl[m, k] = iv
    return z, infl


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

    The score is Gray's (1988) statistic with weight 1 (``rho = 0``, the ``cmprsk`` default):
    observed minus expected events of the cause, with each group's risk set adjusted to the
    subdistribution scale; it equals ``cmprsk::cuminc``'s score to 1e-6 (checked against R,
    also stratified: ``tests/test_survival_r_reference.py``). Its covariance is estimated by
    the infinitesimal jackknife (sum of squared per-subject influence values, centred within
    group × stratum), which is asymptotically equivalent to Gray's variance but NOT equal to
    cmprsk's: on the reference data the chi-squared differs from cmprsk's by 1–17% (300
    subjects, one group of 5%) and by ~45% with 40 subjects. With no competing events the
    score equals the log-rank O − E. Returns ``[statistic, df, p, test]``.

    Small groups: the jackknife variance is unstable when a group has very few events of the
    cause (seen: chi-squared 549 against a log-rank 4.1 with groups of 1 and 5 subjects), so a
    ``UserWarning`` names any group with fewer than 5 events; merge or drop such groups.
    """
    dur, st, ent, g, k, sc = _prepare_test(frame, duration, event, group, entry, strata, False)
    present = np.unique(g)
    K = len(present)
    if K < 2:
        return _test_frame(float("nan"), 0, "Gray")
    events_by_group = np.bincount(g[st == cause], minlength=k)[present]
    if (events_by_group < 5).any():
        warnings.warn(
            f"gray_test: {int((events_by_group < 5).sum())} group(s) have fewer than 5 events of "
            f"cause {cause}; the variance is unstable there — merge or drop small groups",
            UserWarning,
            stacklevel=2,
        )
    remap = np.searchsorted(present, g)
    z = np.zeros(K - 1)
    V = np.zeros((K - 1, K - 1))
    for s in np.unique(sc):
        m = sc == s
        zs, infl = _gray_scores(dur[m], st[m], ent[m], remap[m], K, int(cause))
        z += zs
        for j in range(K):
            mj = remap[m] == j
            if mj.sum() == 0:
                continue
            c = infl[mj] - infl[mj].mean(0)
            V += c.T @ c
    stat = float(z @ np.linalg.pinv(V) @ z)
    return _test_frame(stat, K - 1, "Gray")
