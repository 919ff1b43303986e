"""Cox partial-likelihood engine: Newton–Raphson with Efron ties on numpy arrays.

Used by :func:`cinresearch.survival.cox_fit`; works on plain arrays so it can be checked
against R's ``survival::coxph`` (``tests/fixtures/survival/r/``).

Data are counting-process rows: row ``i`` is at risk at time ``t`` when
``entry_i < t <= stop_i`` (``entry = -inf`` for "observed from the origin"), with an event at
``stop_i`` when ``event_i == 1``. Strata have separate baseline hazards (risk sets never cross
strata). Ties use Efron's approximation. The fit iterates Newton–Raphson steps from
``beta = 0`` with step-halving when the log partial likelihood falls, until the relative change
in the log likelihood is below ``eps`` (default 1e-13, tighter than R's 1e-9) and the step is
below ``1e-10`` in every coefficient.

Robust (sandwich) variance, as R's ``coxph(..., cluster = id)``: per-row score residuals
(Efron-weighted as in R's ``residuals(fit, "score")``) times the model variance give dfbeta
rows; these are summed within cluster and ``V_robust = D' D``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import sparse

__all__ = ["CoxEngineResult", "fit_cox"]


@dataclass(frozen=True)
class CoxEngineResult:
    """Coefficients, model variance (inverse information), optional robust variance."""

    coef: np.ndarray
    var: np.ndarray
    robust_var: np.ndarray | None
    log_likelihood: float
    log_likelihood_null: float
    iterations: int
    linear_predictor: np.ndarray


class _Stratum:
    """Pre-sorted index arrays of one stratum (independent of beta)."""

    def __init__(self, rows: np.ndarray, stop: np.ndarray, entry: np.ndarray, event: np.ndarray):
        self.rows = rows
        st, en, ev = stop[rows], entry[rows], event[rows]
        self.stop, self.entry, self.event = st, en, ev
        self.times = np.unique(st[ev == 1])  # distinct event times
        T, n = len(self.times), len(rows)
        # event-time indices of each row's window: at risk at times[u] for first <= u < last
        self.first = np.searchsorted(self.times, en, side="right")  # times <= entry excluded
        self.last = np.searchsorted(self.times, st, side="right")  # times <= stop included
        cols = np.arange(n)
        # at_risk @ v gives, for every event time, the sum of v over the rows at risk
        bins = sparse.csr_matrix(
            (
                np.concatenate([np.ones(n), -np.ones(n)]),
                (np.concatenate([self.last, self.first]), np.concatenate([cols, cols])),
            ),
            shape=(T + 1, n),
        )
        self.bins = bins
        ev_rows = np.flatnonzero(ev == 1)
        self.ev_rows = ev_rows
        self.ev_time = np.searchsorted(self.times, st[ev_rows])
        self.d = np.bincount(self.ev_time, minlength=T).astype(np.float64)
        # events @ v gives, for every event time, the sum of v over its tied events
        self.events = sparse.csr_matrix(
            (np.ones(len(ev_rows)), (self.ev_time, ev_rows)), shape=(T, n)
        )
        # Efron pairs (time u, l = 0..d_u-1): one per event, ordered by time
        d_int = self.d.astype(np.int64)
        self.pair_time = np.repeat(np.arange(T), d_int)
        starts = np.concatenate([[0], np.cumsum(d_int)[:-1]])
        ell = np.arange(len(self.pair_time)) - np.repeat(starts, d_int)
        self.pair_frac = ell / self.d[self.pair_time]
        self.pair_starts = starts

    def at_risk_sum(self, v: np.ndarray) -> np.ndarray:
        """Sum of ``v`` (rows × ...) over the risk set of every event time."""
        flat = v.reshape(len(v), -1)
        binned = self.bins @ flat
        tail = np.cumsum(binned[::-1], axis=0)[::-1]  # tail[k] = sum over bins >= k
        return tail[1:].reshape((len(self.times),) + v.shape[1:])

    def event_sum(self, v: np.ndarray) -> np.ndarray:
        """Sum of ``v`` over the tied events at every event time."""
        flat = v.reshape(len(v), -1)
        return (self.events @ flat).reshape((len(self.times),) + v.shape[1:])

    def pair_sum(self, v: np.ndarray) -> np.ndarray:
        """Sum of per-Efron-term values ``v`` within every event time."""
        return np.add.reduceat(v, self.pair_starts, axis=0)


def _stratum_terms(s: _Stratum, X: np.ndarray, eta: np.ndarray, need_info: bool):
    """Log likelihood, score, information and per-time quantities of one stratum."""
    x = X[s.rows]
    e = eta[s.rows]
    r = np.exp(e)
    rx = r[:, None] * x
    S0 = s.at_risk_sum(r)
    S1 = s.at_risk_sum(rx)
    er = s.ev_rows
    D0 = s.event_sum(r)
    D1 = s.event_sum(rx)
    u, f = s.pair_time, s.pair_frac
    phi = S0[u] - f * D0[u]
    num1 = S1[u] - f[:, None] * D1[u]
    a = num1 / phi[:, None]
    loglik = float(e[er].sum() - np.log(phi).sum())
    score = x[er].sum(0) - a.sum(0)
    info = None
    if need_info:
        # sum_l (S2 - f D2)/phi_l - a a' without forming S2: weight each row's r x x' by the
        # sum of 1/phi over the Efron terms of the times it is at risk, and each event's by
        # the sum of f/phi at its own time.
        w_time = s.pair_sum(1.0 / phi)
        wf_time = s.pair_sum(f / phi)
        c = np.concatenate([[0.0], np.cumsum(w_time)])
        row_w = r * (c[s.last] - c[s.first])
        row_w[er] -= r[er] * wf_time[s.ev_time]
        info = (x * row_w[:, None]).T @ x - a.T @ a
    return loglik, score, info, (x, r, phi, a)


def _loglik_score_info(strata: list[_Stratum], X: np.ndarray, beta: np.ndarray, need_info=True):
    eta = X @ beta
    ll, U = 0.0, np.zeros(X.shape[1])
    info = np.zeros((X.shape[1], X.shape[1]))
    for s in strata:
        if not len(s.times):
            continue
        lls, us, infs, _ = _stratum_terms(s, X, eta, need_info)
        ll += lls
        U += us
        if need_info:
            info += infs
    return ll, U, info


def _score_residuals(strata: list[_Stratum], X: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Per-row score residuals (Efron), summing to the score vector."""
    eta = X @ beta
    out = np.zeros_like(X)
    for s in strata:
        if not len(s.times):
            continue
        (
            x,
            r,
            phi,
            a,
        ) = _stratum_terms(s, X, eta, False)[3]
        p = X.shape[1]
        f = s.pair_frac
        # hazard increments per time: every row at risk has weight 1 in each Efron term
        h0 = s.pair_sum(1.0 / phi)
        h1 = s.pair_sum(a / phi[:, None])
        # the tied events themselves have weight (1 - l/d) in term l
        he0 = s.pair_sum((1.0 - f) / phi)
        he1 = s.pair_sum((1.0 - f)[:, None] * a / phi[:, None])
        abar = s.pair_sum(a) / s.d[:, None]
        C0 = np.concatenate([[0.0], np.cumsum(h0)])
        C1 = np.concatenate([np.zeros((1, p)), np.cumsum(h1, axis=0)])
        H0 = C0[s.last] - C0[s.first]
        H1 = C1[s.last] - C1[s.first]
        er, te = s.ev_rows, s.ev_time
        H0[er] += he0[te] - h0[te]
        H1[er] += he1[te] - h1[te]
        res = -r[:, None] * (x * H0[:, None] - H1)
        res[er] += x[er] - abar[te]
        out[s.rows] = res
    return out


def fit_cox(
    X: np.ndarray,
    stop: np.ndarray,
    event: np.ndarray,
    entry: np.ndarray | None = None,
    strata: np.ndarray | None = None,
    cluster: np.ndarray | None = None,
    *,
    eps: float = 1e-13,
    max_iter: int = 100,
) -> CoxEngineResult:
    """Fit a Cox model (Efron ties) by Newton–Raphson; see the module docstring.

    ``X``: (n, p) covariates; ``stop``: event/censoring time; ``event``: 0/1; ``entry``:
    left-truncation time (row at risk for ``entry < t <= stop``; ``-inf`` = from the origin);
    ``strata``: integer codes; ``cluster``: ids for the robust variance (``None`` → no robust
    variance; pass ``np.arange(n)`` for R's ``robust = TRUE`` without clusters).
    """
    X = np.asarray(X, dtype=np.float64)
    n, p = X.shape
    stop = np.asarray(stop, dtype=np.float64)
    event = np.asarray(event).astype(np.int64)
    entry = np.full(n, -np.inf) if entry is None else np.asarray(entry, dtype=np.float64)
    codes = np.zeros(n, dtype=np.int64) if strata is None else np.asarray(strata)
    Xc = X - X.mean(0)  # centring, as R does; leaves coefficients unchanged
    # a stratum without events adds nothing to the likelihood, score, information or (its
    # baseline hazard being zero) to any score residual, so it is left out
    strata_list = [
        _Stratum(np.flatnonzero(codes == c), stop, entry, event)
        for c in np.unique(codes[event != 0])
    ]
    beta = np.zeros(p)
    ll, U, info = _loglik_score_info(strata_list, Xc, beta)
    ll0 = ll
    iterations, converged = 0, False
    while not converged and iterations < max_iter:
        iterations += 1
        step = np.linalg.solve(info, U)
        new = beta + step
        ll_new, U_new, info_new = _loglik_score_info(strata_list, Xc, new)
        halvings = 0
        while (not np.isfinite(ll_new) or ll_new < ll - 1e-12 * abs(ll)) and halvings < 30:
            step = step / 2
            new = beta + step
            ll_new, U_new, info_new = _loglik_score_info(strata_list, Xc, new)
            halvings += 1
        converged = abs(ll_new - ll) <= eps * abs(ll_new) and np.all(np.abs(step) < 1e-10)
        beta, ll, U, info = new, ll_new, U_new, info_new
    if not converged:
        warnings.warn(
            f"Cox model did not converge in {max_iter} iterations (a covariate may separate "
            "events from non-events); estimates are unreliable",
            RuntimeWarning,
            stacklevel=2,
        )
    var = np.linalg.inv(info)
    robust = None
    if cluster is not None:
        resid = _score_residuals(strata_list, Xc, beta)
        dfbeta = resid @ var
        _, cl = np.unique(np.asarray(cluster), return_inverse=True)
        members = sparse.csr_matrix((np.ones(n), (cl, np.arange(n))), shape=(int(cl.max()) + 1, n))
        summed = members @ dfbeta
        robust = summed.T @ summed
    return CoxEngineResult(
        coef=beta,
        var=var,
        robust_var=robust,
        log_likelihood=float(ll),
        log_likelihood_null=float(ll0),
        iterations=iterations,
        linear_predictor=Xc @ beta,
    )
