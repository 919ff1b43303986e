"""Cox models per transition (Efron ties, robust standard errors clustered on the child).

Part of :mod:`cinresearch.multistate`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from cinresearch.multistate.rows import _prepare_rows
from cinresearch.multistate.states import Frame
from cinresearch.survival.coxph import fit_cox
from cinresearch.survival.design import _design

# --------------------------------------------------------------------------------------------
# transition hazards
# --------------------------------------------------------------------------------------------


def _as_states(value: str | Sequence[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _resolve_transitions(
    transitions: Any, observed: list[tuple[str, str]], order: list[str]
) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    if transitions is None:
        return [(f"{a} → {b}", (a,), (b,)) for a, b in observed]
    if isinstance(transitions, Mapping):
        items = [(str(name), spec) for name, spec in transitions.items()]
    else:
        items = []
        for spec in transitions:
            fr, to = spec
            items.append((f"{'/'.join(_as_states(fr))} → {'/'.join(_as_states(to))}", spec))
    out = []
    for name, (fr, to) in items:
        fr, to = _as_states(fr), _as_states(to)
        if unknown := [s for s in fr + to if s not in order]:
            raise ValueError(f"transition {name!r}: state(s) {unknown} not in the frame {order}")
        if set(fr) & set(to):
            raise ValueError(f"transition {name!r} goes from and to the same state")
        out.append((name, fr, to))
    return out


_HAZARD_SCHEMA = {
    "transition": pl.String,
    "from_state": pl.String,
    "to_state": pl.String,
    "term": pl.String,
    "hazard_ratio": pl.Float64,
    "lower": pl.Float64,
    "upper": pl.Float64,
    "p": pl.Float64,
    "coef": pl.Float64,
    "se": pl.Float64,
    "reference": pl.String,
    "n": pl.Int64,
    "events": pl.Int64,
}


def transition_hazards(
    frame: Frame,
    covariates: Sequence[str],
    transitions: Sequence[tuple[Any, Any]] | Mapping[str, tuple[Any, Any]] | None = None,
    *,
    cluster: str | None = "child_id",
    strata: str | Sequence[str] | None = None,
    reference: Mapping[str, Any] | None = None,
    shared: bool = False,
    alpha: float = 0.05,
    id: str = "episode_id",
    tstart: str = "tstart",
    tstop: str = "tstop",
    from_state: str = "from_state",
    to_state: str = "to_state",
    states: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Cox models of the transition hazards (Efron ties, robust SEs clustered on ``cluster``).

    ``transitions``: ``None`` → every transition seen in the frame, each on its own; a list of
    ``(from, to)`` pairs; or ``{name: (from, to)}`` where ``from``/``to`` may be several states
    — e.g. ``{"referral to plan": (["referred", "assessment", "s47", "icpc"], "cpp")}`` is
    the hazard of a plan from any state before one, on the time-since-referral scale. The
    rows at risk of a transition are those whose ``from_state`` is a from-state; the event is a
    move to a to-state; every other move censors (a cause-specific hazard). Each transition is
    fitted alone (R's multi-state ``coxph(Surv(tstart, tstop, state) ~ x, id, istate)`` has
    the same coefficients and robust SEs), stratified by ``strata`` when given.
    ``shared=True`` fits one set of coefficients for all the transitions with a baseline hazard
    per transition (and stratum): R ``coxph(Surv(tstart, tstop, event) ~ x + strata(trans))``
    on the rows expanded to one per transition at risk.

    Returns ``transition, from_state, to_state, term, hazard_ratio, lower, upper, p, coef, se,
    reference, n, events`` (``n``: subjects ever at risk of the transition; ``se`` robust when
    ``cluster`` is given, else model-based). Categorical covariates are coded against the
    ``reference`` level (default: the most frequent level over all rows, so it is the same
    in every transition); rows with a missing covariate are dropped with a warning; a term
    constant within a transition is dropped there with a warning; a transition without events
    is skipped with a warning.
    """
    covariates = list(covariates)
    if not covariates:
        raise ValueError("no covariates to fit")
    scols = [] if strata is None else ([strata] if isinstance(strata, str) else list(strata))
    extra = covariates + ([cluster] if cluster else []) + scols
    df, order = _prepare_rows(frame, id, tstart, tstop, from_state, to_state, states, extra)
    model_cols = list(dict.fromkeys(extra))
    missing = df.select(pl.any_horizontal([pl.col(c).is_null() for c in model_cols]))
    n_missing = int(missing.to_series().sum())
    if n_missing:
        warnings.warn(
            f"transition_hazards: {n_missing} row(s) with missing values in {model_cols} were "
            "dropped (complete-case analysis)",
            UserWarning,
            stacklevel=2,
        )
        df = df.filter(~missing.to_series())
    design = _design(df, covariates, reference)  # the one dummy coding of cinresearch.survival
    X, terms, ref_of = design.X, design.terms, design.reference_of
    observed = (
        df.filter(pl.col("__k").is_not_null())
        .select("__j", "__k")
        .unique()
        .sort("__j", "__k")
        .iter_rows()
    )
    pairs = [(order[a], order[b]) for a, b in observed]
    specs = _resolve_transitions(transitions, pairs, order)
    a = df.get_column("__a").to_numpy()
    b = df.get_column("__b").to_numpy()
    j_state = df.get_column(from_state).cast(pl.String).to_numpy()
    k_state = df.get_column(to_state).cast(pl.String).fill_null("").to_numpy()
    ids = df.get_column(id).cast(pl.String).to_numpy()
    cl = df.get_column(cluster).cast(pl.String).to_numpy() if cluster else None
    st_codes = (
        df.select(pl.concat_str([pl.col(c).cast(pl.String) for c in scols], separator="\x1f"))
        .to_series()
        .to_numpy()
        if scols
        else None
    )
    z = float(stats.norm.ppf(1 - alpha / 2))

    def rows_of(fr: tuple[str, ...], to: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        at = np.isin(j_state, fr)
        return np.flatnonzero(at), np.isin(k_state[at], to).astype(np.int64)

    def table(name, fr, to, fit, keep, n, events) -> pl.DataFrame:
        se = np.sqrt(np.diag(fit.var if fit.robust_var is None else fit.robust_var))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            p = 2.0 * stats.norm.sf(np.abs(fit.coef / se))
            hr, lo, up = np.exp(fit.coef), np.exp(fit.coef - z * se), np.exp(fit.coef + z * se)
        k_terms = len(keep)
        return pl.DataFrame(
            {
                "transition": [name] * k_terms,
                "from_state": [", ".join(fr) if fr else None] * k_terms,
                "to_state": [", ".join(to) if to else None] * k_terms,
                "term": [terms[i] for i in keep],
                "hazard_ratio": hr,
                "lower": lo,
                "upper": up,
                "p": p,
                "coef": fit.coef,
                "se": se,
                "reference": [ref_of[i] for i in keep],
                "n": [n] * k_terms,
                "events": [events] * k_terms,
            },
            schema=_HAZARD_SCHEMA,
        )

    def strata_codes(rows: np.ndarray, trans: np.ndarray | None) -> np.ndarray | None:
        parts = []
        if trans is not None:
            parts.append(trans.astype(str))
        if st_codes is not None:
            parts.append(st_codes[rows])
        if not parts:
            return None
        key = parts[0] if len(parts) == 1 else np.char.add(np.char.add(parts[0], "\x1f"), parts[1])
        return np.unique(key, return_inverse=True)[1]

    def constant_terms(rows: np.ndarray, name: str) -> list[int]:
        sub = X[rows]
        keep = [i for i in range(X.shape[1]) if len(rows) and np.ptp(sub[:, i]) > 0]
        if dropped := [terms[i] for i in range(X.shape[1]) if i not in keep]:
            warnings.warn(
                f"transition {name!r}: term(s) {dropped} are constant in its rows and were dropped",
                UserWarning,
                stacklevel=3,
            )
        return keep

    out = []
    if shared:
        rows_all, events_all, trans_all = [], [], []
        for ti, (name, fr, to) in enumerate(specs):
            rows, event = rows_of(fr, to)
            if not event.any():
                warnings.warn(f"transition {name!r} has no events; skipped", stacklevel=2)
                continue
            rows_all.append(rows)
            events_all.append(event)
            trans_all.append(np.full(len(rows), ti))
        if not rows_all:
            raise ValueError("no transition has events")
        rows = np.concatenate(rows_all)
        event = np.concatenate(events_all)
        trans = np.concatenate(trans_all)
        keep = constant_terms(rows, "shared")
        fit = fit_cox(
            X[np.ix_(rows, keep)],
            b[rows],
            event,
            entry=a[rows],
            strata=strata_codes(rows, trans),
            cluster=None if cl is None else cl[rows],
        )
        n = len(np.unique(ids[rows]))
        out.append(table("all (shared)", (), (), fit, keep, n, int(event.sum())))
    else:
        for name, fr, to in specs:
            rows, event = rows_of(fr, to)
            if not event.any():
                warnings.warn(f"transition {name!r} has no events; skipped", stacklevel=2)
                continue
            keep = constant_terms(rows, name)
            if not keep:
                warnings.warn(f"transition {name!r}: no term varies; skipped", stacklevel=2)
                continue
            fit = fit_cox(
                X[np.ix_(rows, keep)],
                b[rows],
                event,
                entry=a[rows],
                strata=strata_codes(rows, None),
                cluster=None if cl is None else cl[rows],
            )
            n = len(np.unique(ids[rows]))
            out.append(table(name, fr, to, fit, keep, n, int(event.sum())))
    if not out:
        return pl.DataFrame(schema=_HAZARD_SCHEMA)
    return pl.concat(out)
