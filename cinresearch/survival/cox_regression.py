"""Cox proportional-hazards models on survival frames: all-cause and cause-specific.

The polars-facing fitter: checks inputs, builds the design matrix and hands plain arrays to
the engine in :mod:`cinresearch.survival.coxph` (Efron ties, robust variance by cluster,
strata, delayed entry); Harrell's C and the proportional-hazards test come from lifelines.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from cinresearch.survival.coxph import fit_cox
from cinresearch.survival.design import _coef_table, _complete_cases, _Design, _design
from cinresearch.survival.inputs import _D, _E, _S, _prepare, _strata_codes, _z


@dataclass(frozen=True)
class CoxResult:
    """A fitted Cox model: tidy ``table`` plus diagnostics.

    ``table``: ``[term, hazard_ratio, lower, upper, p, coef, se, reference]``.
    ``concordance``: Harrell's C. ``ph_test``: ``[term, statistic, df, p]`` from the
    scaled-Schoenfeld-residual test (lifelines ``proportional_hazard_test``, rank time
    transform, model-based variance), or ``None`` with delayed entry (not supported there).
    ``model``: the engine result (:class:`cinresearch.survival.coxph.CoxEngineResult`:
    coefficients, model and robust variance, linear predictor).
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

    Fitted by :func:`cinresearch.survival.coxph.fit_cox` (Newton–Raphson; coefficients, model and
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
        from lifelines.utils import concordance_index  # heavy (pandas): loaded only when asked

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
    # lifelines and pandas are heavy: loaded only when the PH test is asked for
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
