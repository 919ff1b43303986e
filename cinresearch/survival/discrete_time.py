"""Discrete-time hazard model: logistic regression on person-period data (statsmodels GLM)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from cinresearch.survival.design import _coef_table, _complete_cases, _design
from cinresearch.survival.inputs import _D, _E, _S, _prepare, _z


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

    import statsmodels.api as sm  # heavy: loaded only when this model is fitted

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
