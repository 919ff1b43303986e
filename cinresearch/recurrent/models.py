"""Andersen–Gill and PWP gap-time Cox models of re-referral, clustered on the child.

Part of :mod:`cinresearch.recurrent`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from cinresearch.recurrent.conventions import Frame
from cinresearch.recurrent.history import _lazy
from cinresearch.survival import cox_fit

# --------------------------------------------------------------------------------------------
# Regression models
# --------------------------------------------------------------------------------------------


def _model_rows(frame: Frame, start: str, stop: str, columns: Sequence[str]) -> pl.DataFrame:
    """Rows for a model: (start, stop] checked, rows missing a model column dropped (with a
    warning), so that strata can then be checked for events."""
    df = _lazy(frame).collect()
    bad = df.filter(pl.col(stop) <= pl.col(start)).height
    if bad:
        raise ValueError(f"{bad} row(s) have {stop} <= {start}: rows must be (start, stop]")
    cols = list(dict.fromkeys(columns))
    missing = df.select(pl.any_horizontal(pl.col(c).is_null() for c in cols).sum()).item()
    if missing:
        warnings.warn(
            f"{missing} row(s) with missing values in {cols} were dropped (complete-case analysis)",
            UserWarning,
            stacklevel=3,
        )
        df = df.drop_nulls(cols)
    return df


def andersen_gill_fit(
    frame: Frame,
    covariates: Sequence[str],
    *,
    id: str = "subject_id",
    cluster: str | None = None,
    start: str = "tstart",
    stop: str = "tstop",
    event: str = "event",
    strata: str | Sequence[str] | None = None,
    reference: Mapping[str, Any] | None = None,
    alpha: float = 0.05,
) -> Any:
    """Andersen–Gill model with robust standard errors clustered on the child: the fitted
    :class:`cinresearch.survival.CoxResult` (see :func:`andersen_gill` for the table)."""

    by = [strata] if isinstance(strata, str) else list(strata or [])
    df = _model_rows(frame, start, stop, [*covariates, cluster or id, *by])
    return cox_fit(
        df,
        duration=stop,
        event=event,
        covariates=list(covariates),
        cluster=cluster or id,
        reference=reference,
        entry=start,
        strata=strata,
        alpha=alpha,
        ph_test=False,
        concordance=False,
    )


def andersen_gill(
    frame: Frame,
    covariates: Sequence[str],
    *,
    id: str = "subject_id",
    cluster: str | None = None,
    start: str = "tstart",
    stop: str = "tstop",
    event: str = "event",
    strata: str | Sequence[str] | None = None,
    reference: Mapping[str, Any] | None = None,
    alpha: float = 0.05,
) -> pl.DataFrame:
    """Andersen–Gill model: rate ratios of re-referral, time since the first referral.

    A Cox model on the counting-process rows, as R's
    ``coxph(Surv(tstart, tstop, event) ~ covariates, cluster = id)`` (Efron ties): every
    re-referral is an event and a child stays at risk after each one, with one baseline rate
    for all. Its standard errors are robust, clustered on ``cluster`` (default the subject
    ``id``), so ``rate_ratio`` needs no independence between a child's re-referrals and reads
    as a ratio of mean numbers of re-referrals (the proportional-means model of Lin, Wei,
    Yang and Ying 2000). Terminal events end follow-up as censoring. Covariates are coded as
    in :mod:`cinresearch.survival` (categorical against the most frequent level or
    ``reference``; booleans 0/1). Returns ``[term, rate_ratio, lower, upper, p, coef, se,
    reference]``.
    """
    fit = andersen_gill_fit(
        frame,
        covariates,
        id=id,
        cluster=cluster,
        start=start,
        stop=stop,
        event=event,
        strata=strata,
        reference=reference,
        alpha=alpha,
    )
    return fit.table.rename({"hazard_ratio": "rate_ratio"})


def pwp_gap_fit(
    frame: Frame,
    covariates: Sequence[str],
    *,
    id: str = "subject_id",
    cluster: str | None = None,
    start: str = "tstart",
    stop: str = "tstop",
    event: str = "event",
    enum: str = "enum",
    max_enum: int | None = None,
    strata: str | Sequence[str] | None = None,
    reference: Mapping[str, Any] | None = None,
    alpha: float = 0.05,
) -> Any:
    """PWP gap-time model: the fitted :class:`cinresearch.survival.CoxResult` (see
    :func:`pwp_gap` for the table)."""

    extra = [strata] if isinstance(strata, str) else list(strata or [])
    df = _model_rows(frame, start, stop, [*covariates, cluster or id, enum, *extra])
    if max_enum is not None and int(max_enum) < 1:
        raise ValueError("max_enum must be at least 1")
    stratum = pl.col(enum) if max_enum is None else pl.min_horizontal(enum, pl.lit(max_enum))
    origin = pl.col(start).min().over([id, enum])  # the previous referral (0 for the first)
    df = df.with_columns(
        __gap_entry=(pl.col(start) - origin).cast(pl.Float64),
        __gap_stop=(pl.col(stop) - origin).cast(pl.Float64),
        __stratum=stratum.cast(pl.Int64),
    )
    by = ["__stratum", *extra]
    return cox_fit(
        df,
        duration="__gap_stop",
        event=event,
        covariates=list(covariates),
        cluster=cluster or id,
        reference=reference,
        entry="__gap_entry",
        strata=by,
        alpha=alpha,
        ph_test=False,
        concordance=False,
    )


def pwp_gap(
    frame: Frame,
    covariates: Sequence[str],
    *,
    id: str = "subject_id",
    cluster: str | None = None,
    start: str = "tstart",
    stop: str = "tstop",
    event: str = "event",
    enum: str = "enum",
    max_enum: int | None = None,
    strata: str | Sequence[str] | None = None,
    reference: Mapping[str, Any] | None = None,
    alpha: float = 0.05,
) -> pl.DataFrame:
    """Prentice–Williams–Peterson gap-time model: hazard ratios of the next re-referral.

    A Cox model on the time since the previous referral (``gap``), stratified by the event
    number ``enum`` (1 = the first re-referral, 2 = the second, …), as R's
    ``coxph(Surv(gap, event) ~ covariates + strata(enum), cluster = id)`` (Efron ties): a
    child is at risk of the ``k``-th re-referral only after the ``k-1``-th, and each has its
    own baseline hazard. ``max_enum`` pools event numbers from ``max_enum`` up into one
    stratum (late strata are small); ``strata`` adds stratifying columns (e.g. ``la_code``:
    each LA has its own baseline for each event number, R's ``strata(enum, la_code)``). Rows
    split within a gap (time-varying covariates) are handled: the clock restarts at each
    subject's first row of the stratum. Robust standard
    errors clustered on ``cluster`` (default ``id``). Returns ``[term, hazard_ratio, lower,
    upper, p, coef, se, reference]``.
    """
    return pwp_gap_fit(
        frame,
        covariates,
        id=id,
        cluster=cluster,
        start=start,
        stop=stop,
        event=event,
        enum=enum,
        max_enum=max_enum,
        strata=strata,
        reference=reference,
        alpha=alpha,
    ).table
