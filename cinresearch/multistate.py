"""The CIN pathway as a multi-state model: stages reached over time since referral.

One *subject* is one CIN episode (``episode_id``; ``child_id`` is the cluster for variances).
Its clock starts on the referral date (day 0) and its **state** is the furthest stage of the
pathway the episode has reached and not yet left by closing:

=================  ==========================================================  ================
state              entered on                                                  episodes column
=================  ==========================================================  ================
referred           the referral date (every episode starts here)               referral_date
assessment         the first assessment start                                  first_assessment_start
s47                the first section 47 enquiry start                          first_s47_start
icpc               the first initial child protection conference               first_icpc_date
cpp                the first child protection plan start                       first_cpp_start
pre_proceedings    the first pre-proceedings (PLO) start (2025-26 returns on)  first_pp_start
court              the first application to court (2025-26 returns on)        first_court_application_date
care               the first entry to care during the episode (SSDA903)        entered_care_date
closed             the closure date (absorbing)                                closure_date
=================  ==========================================================  ================

**Allowed transitions** (:func:`allowed_transitions`): from each open state to any state further
down the table, and to ``closed``. The model is progressive: a stage is entered once, a later
date of an earlier stage (a second assessment, an enquiry during a plan, a plan after entry to
care) is not a move, and a child whose plan ends stays in ``cpp`` until the episode closes or
reaches a further stage. Stages can be skipped (a plan with no ICPC recorded moves ``s47`` →
``cpp``). ``care`` is ranked above ``court``: an application to court after the child became
looked after (accommodated first) is not shown as a move.

**Same-day events.** Time is in whole days, and a subject makes at most one move a day: when
several stages are reached on the same day the subject moves to the furthest of them (the
order of the table, which is :data:`cinresearch.journeys.EVENT_ORDER`'s order for the same
day) and the stages passed through that day are not states it occupies. A closure on the day
of another stage wins (closure is the day's last event). Activity on the referral day is a
move at ``t = 0``.

**Rows** (:func:`pathway_frame`) are counting-process intervals ``(tstart, tstop]`` in days
since referral: the episode is in ``from_state`` for every day ``tstart + 1 .. tstop`` and moves
to ``to_state`` on day ``tstop`` (``to_state`` null: censored at the end of the row). An
episode followed from its referral starts at ``tstart = -1`` (the day before the referral), so
it is at risk on the referral day itself and a move on day 0 counts, as in the survival
conventions of :mod:`cinresearch.survival` (an event on the origin day has duration 0).

**Left truncation.** With ``analysis_start``, an episode referred earlier and still open on
that day enters late: its first row starts at ``tstart = L - 1`` (``L`` = days from its
referral to ``analysis_start``) in the state it had reached by day ``L - 1``; moves before it
are not observed as moves. Episodes closed, or out of follow-up, before ``analysis_start``
were never at risk and are excluded (with their reason). **Censoring**: at 31 March of the
episode's last return (``data_end``), or the ``data_end`` argument when earlier; activity
dated after the end of follow-up, or before the referral, is not used (the episodes table
already sets S47, ICPC and plan dates before the referral aside).

**Estimators.**

* :func:`state_occupation` — the Aalen–Johansen estimator for a general multi-state process
  with left truncation: ``p(t) = p0 · Π_{s <= t} (I + dA(s))``, the product over the days
  with at least one move of the matrix of transition proportions ``d_jk(s) / n_j(s)``
  (``n_j(s)``: rows in state ``j`` with ``tstart < s <= tstop``). ``p0`` is the distribution of
  states among the rows at risk at the first move (all ``referred`` when the episodes are
  followed from their referral). Standard errors are the infinitesimal-jackknife ones of R's
  ``survfit(Surv(tstart, tstop, state) ~ 1, id = , istate = , influence = TRUE)`` (influence
  summed by ``id``, or by ``cluster`` — e.g. child — when given); pointwise limits use the
  log(-log) transform (R ``conf.type = "log-log"``), as :mod:`cinresearch.survival` does for
  cumulative incidence.
* :func:`transition_hazards` — Cox proportional-hazards models (Efron ties,
  :func:`cinresearch.coxph.fit_cox`) for each transition, or for a named group of them (e.g.
  every state before a plan → ``cpp``), with robust standard errors clustered on the child;
  ``shared=True`` fits one set of coefficients with a baseline hazard per transition
  (R ``coxph(Surv(tstart, tstop, event) ~ x + strata(trans), cluster = child)``).

Checked against R ``survival`` 3.5-3 to 1e-6 (``tests/fixtures/multistate/r``). Method and
limits: ``docs/multistate.md``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from scipy import stats

from cinresearch.coxph import fit_cox

if TYPE_CHECKING:  # matplotlib is imported only when a figure is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "ABSORBING_STATE",
    "INITIAL_STATE",
    "STAGE_COLUMNS",
    "STATES",
    "STATE_COLOURS",
    "STATE_LABELS",
    "Pathway",
    "allowed_transitions",
    "build_pathway",
    "pathway_frame",
    "plot_state_occupation",
    "state_occupation",
    "transition_hazards",
]

STATES: tuple[str, ...] = (
    "referred",
    "assessment",
    "s47",
    "icpc",
    "cpp",
    "pre_proceedings",
    "court",
    "care",
    "closed",
)
INITIAL_STATE = "referred"
ABSORBING_STATE = "closed"

#: Column of the ``episodes`` table giving the date each state is entered.
STAGE_COLUMNS: dict[str, str] = {
    "referred": "referral_date",
    "assessment": "first_assessment_start",
    "s47": "first_s47_start",
    "icpc": "first_icpc_date",
    "cpp": "first_cpp_start",
    "pre_proceedings": "first_pp_start",
    "court": "first_court_application_date",
    "care": "entered_care_date",
    "closed": "closure_date",
}

#: Labels a practitioner reads (figures and tables).
STATE_LABELS: dict[str, str] = {
    "referred": "Referral, no assessment yet",
    "assessment": "Assessment",
    "s47": "Section 47 enquiry",
    "icpc": "Initial CP conference",
    "cpp": "Child protection plan",
    "pre_proceedings": "Pre-proceedings",
    "court": "Court application",
    "care": "Looked after",
    "closed": "Closed",
}

#: Colours of the states in figures: the Okabe–Ito palette of :mod:`cinresearch.plots`
#: (closed in its light grey, behind the rest).
STATE_COLOURS: dict[str, str] = {
    "referred": "#56B4E9",  # sky blue
    "assessment": "#0072B2",  # blue
    "s47": "#009E73",  # bluish green
    "icpc": "#F0E442",  # yellow
    "cpp": "#E69F00",  # orange
    "pre_proceedings": "#CC79A7",  # reddish purple
    "court": "#000000",  # black
    "care": "#D55E00",  # vermillion
    "closed": "#D9D9D9",  # light grey
}

#: Episode characteristics carried onto the rows when ``covariates`` is not given (those present).
DEFAULT_COVARIATES: tuple[str, ...] = (
    "age_band",
    "disabled",
    "disabled_at_referral",
    "sex",
    "ethnicity_group",
    "referral_source",
    "primary_need",
)

EXCLUDED_NO_REFERRAL = "no referral date"
EXCLUDED_NFA = "referral with no further action"
EXCLUDED_CLOSED_BEFORE_REFERRAL = "closure before referral"
EXCLUDED_AFTER_DATA_END = "referral after the end of data"
EXCLUDED_CLOSED_BEFORE_START = "closed before analysis start"
EXCLUDED_ENDED_BEFORE_START = "follow-up ended before analysis start"

_SE_BUDGET = 100_000_000  # rows x output times above which times=None gives no SEs


Frame = pl.DataFrame | pl.LazyFrame


# --------------------------------------------------------------------------------------------
# states and transitions
# --------------------------------------------------------------------------------------------


def _check_states(states: Sequence[str]) -> tuple[str, ...]:
    states = tuple(states)
    unknown = [s for s in states if s not in STATES]
    if unknown:
        raise ValueError(f"unknown state(s) {unknown}; the states are {list(STATES)}")
    if INITIAL_STATE not in states or ABSORBING_STATE not in states:
        raise ValueError(f"states must include {INITIAL_STATE!r} and {ABSORBING_STATE!r}")
    if len(set(states)) != len(states):
        raise ValueError("states are listed more than once")
    return tuple(s for s in STATES if s in states)


def allowed_transitions(states: Sequence[str] = STATES) -> pl.DataFrame:
    """Every transition the pathway model allows: ``from_state, to_state``.

    From each open state to every state further down :data:`STATES`, and to ``closed``
    (which is further down from every state). ``states`` restricts the model to some stages.
    """
    order = _check_states(states)
    pairs = [(a, b) for i, a in enumerate(order[:-1]) for b in order[i + 1 :]]
    return pl.DataFrame(
        {"from_state": [a for a, _ in pairs], "to_state": [b for _, b in pairs]},
        schema={"from_state": pl.Enum(order), "to_state": pl.Enum(order)},
    )


# --------------------------------------------------------------------------------------------
# pathway frame
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pathway:
    """Rows of the multi-state model and the episodes left out.

    ``frame``: see :func:`pathway_frame`. ``excluded``: ``episode_id, la_code, reason`` — one row
    per episode given that has no row, so ``frame`` episodes + ``excluded`` = episodes given.
    """

    frame: pl.DataFrame
    excluded: pl.DataFrame


def _lazy(frame: Frame) -> pl.LazyFrame:
    return frame.lazy() if isinstance(frame, pl.DataFrame) else frame


def _days(date_col: str | pl.Expr, origin: str | pl.Expr = "referral_date") -> pl.Expr:
    d = pl.col(date_col) if isinstance(date_col, str) else date_col
    o = pl.col(origin) if isinstance(origin, str) else origin
    return (d - o).dt.total_days().cast(pl.Int32)


def build_pathway(
    episodes: Frame,
    *,
    cla: Frame | None = None,
    states: Sequence[str] = STATES,
    covariates: Sequence[str] | None = None,
    analysis_start: date | None = None,
    data_end: date | None = None,
    exclude_nfa: bool = True,
) -> Pathway:
    """Counting-process rows of the pathway model from the ``episodes`` table, and exclusions.

    ``episodes``: the journeys' ``episodes`` table (or a selection of it: one LA, some referral
    years — the caller chooses the episodes; include those referred before ``analysis_start``
    for left truncation). The state dates are the episode's first-activity columns
    (:data:`STAGE_COLUMNS`); ``cla`` (the ``cla_episodes`` table, raw or merged) recomputes the
    entry to care from SSDA903 (:func:`cinresearch.journeys.linkage.entered_care_dates`)
    instead of the episodes' ``entered_care_date``. ``states``: the stages to model (a subset
    of :data:`STATES` with ``referred`` and ``closed``); dates of other stages are not used.
    ``covariates``: episode columns copied onto every row (default: those of
    :data:`DEFAULT_COVARIATES` present). ``analysis_start``: left truncation (module
    docstring). ``data_end``: censor all follow-up at this date. ``exclude_nfa``: leave out
    referrals with no further action (they close on the referral day).
    """
    order = _check_states(states)
    rank = {s: i for i, s in enumerate(order)}
    closed_rank = rank[ABSORBING_STATE]
    lf = _lazy(episodes)
    names = lf.collect_schema().names()
    needed = ["episode_id", "child_id", "la_code", "referral_date", "closure_date"]
    if data_end is None:
        needed.append("data_end")
    if exclude_nfa:
        needed.append("referral_nfa")
    stage_cols = {s: STAGE_COLUMNS[s] for s in order if s not in (INITIAL_STATE, ABSORBING_STATE)}
    if cla is not None:
        stage_cols.pop("care", None)
    needed += list(stage_cols.values())
    missing = [c for c in needed if c not in names]
    if missing:
        raise ValueError(
            f"episodes lack column(s) {missing} needed for the pathway (a stage whose date "
            "column is absent can be left out with states=[...])"
        )
    if covariates is None:
        covariates = [c for c in DEFAULT_COVARIATES if c in names]
    covariates = [c for c in covariates if c not in ("episode_id", "child_id", "la_code")]
    if absent := [c for c in covariates if c not in names]:
        raise ValueError(f"covariate column(s) {absent} not in episodes")
    if cla is not None and "care" in order:
        from cinresearch.journeys.linkage import entered_care_dates

        care = entered_care_dates(lf, _lazy(cla)).rename({"entered_care_date": "__care"})
        lf = lf.join(care, on="episode_id", how="left")
        stage_cols["care"] = "__care"

    own_end = ["data_end"] if "data_end" in names else []
    keep = list(dict.fromkeys(needed + own_end + covariates + list(stage_cols.values())))
    base = lf.select(keep).collect()
    end_date = pl.col("closure_date")
    cap = pl.col("data_end") if data_end is None else pl.lit(data_end, dtype=pl.Date)
    if data_end is not None and "data_end" in names:
        cap = pl.min_horizontal(pl.col("data_end"), cap)
    base = base.with_columns(
        __cap=cap.cast(pl.Date),
    ).with_columns(
        __closed=end_date.is_not_null() & (end_date <= pl.col("__cap")).fill_null(True),
        __end=pl.min_horizontal(end_date, pl.col("__cap")),
    )
    entry = (
        pl.lit(0, dtype=pl.Int32)
        if analysis_start is None
        else pl.max_horizontal(
            _days(pl.lit(analysis_start, dtype=pl.Date)), pl.lit(0, dtype=pl.Int32)
        )
    )
    base = base.with_columns(
        __end_day=_days("__end"),
        __L=entry,
    )
    end_day, entry_day = pl.col("__end_day"), pl.col("__L")
    checks = [(pl.col("referral_date").is_null(), EXCLUDED_NO_REFERRAL)]
    if exclude_nfa:
        checks.append((pl.col("referral_nfa").fill_null(False), EXCLUDED_NFA))
    checks += [
        (_days("closure_date") < 0, EXCLUDED_CLOSED_BEFORE_REFERRAL),
        (end_day.is_null() | (end_day < 0), EXCLUDED_AFTER_DATA_END),
        (pl.col("__closed") & (end_day < entry_day), EXCLUDED_CLOSED_BEFORE_START),
        (end_day < entry_day, EXCLUDED_ENDED_BEFORE_START),
    ]
    reason = pl.when(checks[0][0]).then(pl.lit(checks[0][1]))
    for condition, text in checks[1:]:
        reason = reason.when(condition).then(pl.lit(text))
    base = base.with_columns(__reason=reason)
    excluded = base.filter(pl.col("__reason").is_not_null()).select(
        "episode_id", "la_code", pl.col("__reason").alias("reason")
    )
    ep = base.filter(pl.col("__reason").is_null()).with_columns(__start=pl.col("__L") - 1)

    # stage dates -> (episode, day, rank); only days 0..end of follow-up count
    parts = [
        ep.select(
            "episode_id",
            _days(col).alias("day"),
            pl.lit(rank[s], dtype=pl.Int8).alias("rank"),
            "__end_day",
        )
        for s, col in stage_cols.items()
    ]
    parts.append(
        ep.filter(pl.col("__closed")).select(
            "episode_id",
            pl.col("__end_day").alias("day"),
            pl.lit(closed_rank, dtype=pl.Int8).alias("rank"),
            "__end_day",
        )
    )
    events = pl.concat(parts).filter(
        pl.col("day").is_not_null() & (pl.col("day") >= 0) & (pl.col("day") <= pl.col("__end_day"))
    )
    events = events.join(ep.select("episode_id", "__start"), on="episode_id")
    initial = (
        events.filter(pl.col("day") <= pl.col("__start"))
        .group_by("episode_id")
        .agg(rank=pl.col("rank").max())
    )
    later = (
        events.filter(pl.col("day") > pl.col("__start"))
        .group_by("episode_id", "day")
        .agg(rank=pl.col("rank").max())
    )
    starts = ep.select("episode_id", pl.col("__start").alias("day")).join(
        initial, on="episode_id", how="left"
    )
    starts = starts.with_columns(pl.col("rank").fill_null(0).cast(pl.Int8))
    seq = (
        pl.concat([starts, later.select("episode_id", "day", pl.col("rank").cast(pl.Int8))])
        .sort("episode_id", "day")
        .with_columns(state=pl.col("rank").cum_max().over("episode_id"))
        .with_columns(prev=pl.col("state").shift(1).over("episode_id"))
        .filter(pl.col("prev").is_null() | (pl.col("state") > pl.col("prev")))
        .with_columns(
            next_day=pl.col("day").shift(-1).over("episode_id"),
            next_state=pl.col("state").shift(-1).over("episode_id"),
        )
        .filter(pl.col("state") != closed_rank)
        .join(ep.select("episode_id", "__end_day"), on="episode_id")
        .with_columns(tstop=pl.coalesce("next_day", "__end_day"))
        .filter(pl.col("tstop") > pl.col("day"))
    )
    enum = pl.Enum(order)
    frame = seq.select(
        "episode_id",
        pl.col("day").cast(pl.Int32).alias("tstart"),
        pl.col("tstop").cast(pl.Int32),
        pl.col("state").cast(pl.UInt32).alias("__from"),
        pl.col("next_state").cast(pl.UInt32).alias("__to"),
    )
    frame = _decode_states(frame, order, enum)
    frame = (
        frame.join(
            ep.select("episode_id", "child_id", "la_code", *covariates),
            on="episode_id",
            how="left",
        )
        .select(
            "episode_id",
            "child_id",
            "la_code",
            "tstart",
            "tstop",
            "from_state",
            "to_state",
            *covariates,
        )
        .sort("episode_id", "tstart")
    )
    return Pathway(frame=frame, excluded=excluded.sort("episode_id"))


def _decode_states(frame: pl.DataFrame, order: Sequence[str], enum: pl.Enum) -> pl.DataFrame:
    """State ranks (``__from``, ``__to``) to ``from_state``/``to_state`` of dtype ``enum``."""
    mapping = dict(enumerate(order))
    return frame.with_columns(
        from_state=pl.col("__from").replace_strict(mapping, return_dtype=pl.String).cast(enum),
        to_state=pl.col("__to")
        .replace_strict(mapping, default=None, return_dtype=pl.String)
        .cast(enum),
    ).drop("__from", "__to")


def pathway_frame(episodes: Frame, **options: Any) -> pl.DataFrame:
    """Counting-process rows of the pathway model (the ``frame`` of :func:`build_pathway`).

    Columns: ``episode_id`` (the subject), ``child_id`` (cluster), ``la_code``, ``tstart``,
    ``tstop`` (days since referral, Int32; the episode is in ``from_state`` on days
    ``tstart + 1 .. tstop``), ``from_state``, ``to_state`` (``pl.Enum`` of the states; null
    when the row ends censored), then the covariates. Sorted by episode and time. Options are
    those of :func:`build_pathway`; its ``excluded`` frame says which episodes have no row.
    """
    return build_pathway(episodes, **options).frame


# --------------------------------------------------------------------------------------------
# input checks shared by the estimators
# --------------------------------------------------------------------------------------------


def _state_order(frame: pl.DataFrame, from_state: str, to_state: str, states) -> list[str]:
    """States present in the frame, in model order."""
    present = set(frame.get_column(from_state).drop_nulls().cast(pl.String).unique().to_list())
    present |= set(frame.get_column(to_state).drop_nulls().cast(pl.String).unique().to_list())
    if states is not None:
        order = [str(s) for s in states]
    else:
        dtype = frame.schema[from_state]
        if isinstance(dtype, pl.Enum):
            order = dtype.categories.to_list()
        elif present <= set(STATES):
            order = list(STATES)
        else:
            raise ValueError(
                f"states {sorted(present - set(STATES))} are not pathway states; give the "
                "state order with states=[...]"
            )
    if unknown := sorted(present - set(order)):
        raise ValueError(f"state(s) {unknown} not in the given states {order}")
    return [s for s in order if s in present]


def _check_rows(df: pl.DataFrame, id_col: str) -> None:
    """Rows of a subject must be contiguous intervals whose states follow each other."""
    if df.get_column("__a").null_count() or df.get_column("__b").null_count():
        raise ValueError("tstart/tstop have null values")
    if df.get_column("__j").null_count():
        raise ValueError("from_state has null values")
    bad = df.filter(pl.col("__b") <= pl.col("__a")).height
    if bad:
        raise ValueError(f"{bad} row(s) have tstop <= tstart")
    same = df.filter(pl.col("__k") == pl.col("__j")).height
    if same:
        raise ValueError(f"{same} row(s) move to the state they are in (from_state == to_state)")
    nxt = df.sort(id_col, "__a").with_columns(
        __na=pl.col("__a").shift(-1).over(id_col),
        __nj=pl.col("__j").shift(-1).over(id_col),
    )
    follow = nxt.filter(pl.col("__na").is_not_null())
    gaps = follow.filter(pl.col("__na") != pl.col("__b")).height
    if gaps:
        raise ValueError(
            f"{gaps} row(s) are not followed by a row starting where they stop: the rows of "
            "a subject must be contiguous (no gaps or overlaps)"
        )
    expected = pl.coalesce("__k", "__j")
    jumps = follow.filter(pl.col("__nj") != expected).height
    if jumps:
        raise ValueError(
            f"{jumps} row(s) are followed by a row whose from_state is not the state reached "
            "(to_state, or from_state when censored)"
        )


def _prepare_rows(
    frame: Frame,
    id_col: str,
    tstart: str,
    tstop: str,
    from_state: str,
    to_state: str,
    states: Sequence[str] | None,
    extra: Sequence[str] = (),
) -> tuple[pl.DataFrame, list[str]]:
    cols = list(dict.fromkeys([id_col, tstart, tstop, from_state, to_state, *extra]))
    df = _lazy(frame).select(cols).collect()
    if df.is_empty():
        raise ValueError("the frame has no rows")
    order = _state_order(df, from_state, to_state, states)
    idx = {s: i for i, s in enumerate(order)}
    df = df.with_columns(
        __a=pl.col(tstart).cast(pl.Float64),
        __b=pl.col(tstop).cast(pl.Float64),
        __j=pl.col(from_state).cast(pl.String).replace_strict(idx, return_dtype=pl.Int64),
        __k=pl.col(to_state)
        .cast(pl.String)
        .replace_strict(idx, default=None, return_dtype=pl.Int64),
    )
    _check_rows(df, id_col)
    return df, order


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


# --------------------------------------------------------------------------------------------
# transition hazards
# --------------------------------------------------------------------------------------------


def _is_categorical(dtype: pl.DataType) -> bool:
    return dtype == pl.String or dtype == pl.Categorical or isinstance(dtype, pl.Enum)


def _levels(s: pl.Series) -> list[str]:
    present = set(s.drop_nulls().cast(pl.String).unique().to_list())
    if isinstance(s.dtype, pl.Enum):
        return [c for c in s.dtype.categories.to_list() if c in present]
    return sorted(present)


def _design(
    df: pl.DataFrame, covariates: Sequence[str], reference: Mapping[str, Any]
) -> tuple[np.ndarray, list[str], list[str | None], dict[str, str]]:
    """Numeric design matrix as :mod:`cinresearch.survival` builds it (dummy coding against a
    reference level: given, else the most frequent; booleans 0/1; numbers as they are)."""
    if unknown := set(reference) - set(covariates):
        raise ValueError(f"reference given for column(s) not in covariates: {sorted(unknown)}")
    cols, terms, ref_of, chosen = [], [], [], {}
    for c in covariates:
        s = df.get_column(c)
        if _is_categorical(s.dtype):
            levels = _levels(s)
            if c in reference:
                ref = str(reference[c])
                if ref not in levels:
                    raise ValueError(f"reference level {ref!r} for {c!r} not in {levels}")
            else:
                counts = dict(s.cast(pl.String).value_counts().iter_rows())
                top = max(counts.get(lv, 0) for lv in levels)
                ref = next(lv for lv in levels if counts.get(lv, 0) == top)
            chosen[c] = ref
            text = s.cast(pl.String)
            for lv in levels:
                if lv != ref:
                    cols.append((text == lv).cast(pl.Float64).to_numpy())
                    terms.append(f"{c}[{lv}]")
                    ref_of.append(ref)
        elif s.dtype == pl.Boolean or s.dtype.is_numeric():
            cols.append(s.cast(pl.Float64).to_numpy())
            terms.append(c)
            ref_of.append(None)
        else:
            raise TypeError(f"covariate {c!r} has unsupported type {s.dtype}")
    X = np.column_stack(cols) if cols else np.zeros((df.height, 0))
    return X, terms, ref_of, chosen


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
    X, terms, ref_of, _ = _design(df, covariates, dict(reference or {}))
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


# --------------------------------------------------------------------------------------------
# figure
# --------------------------------------------------------------------------------------------


def plot_state_occupation(
    occupation: pl.DataFrame,
    ax: Axes | None = None,
    *,
    group: str | None = None,
    title: str | None = None,
    xlabel: str = "Days since referral",
    ylabel: str = "Share of referrals",
    labels: Mapping[str, str] | None = None,
    colours: Mapping[str, str] | None = None,
    min_at_risk: int = 10,
    xmax: float | None = None,
    legend: bool = True,
) -> Figure:
    """Stacked areas of the state occupation probabilities over time since referral.

    ``occupation``: :func:`state_occupation` output (one ``group``, or choose it with
    ``group``). Bands stack in pathway order from the bottom (referred, assessment, ...) with
    closed episodes on top in grey, so the height of the coloured area at a day is the share
    of referrals still open then, split by the furthest stage reached. Curves stop where fewer
    than ``min_at_risk`` episodes remain under observation (the publication convention of
    :func:`cinresearch.plots.plot_survival`; 0 draws everything). States never occupied are
    left out; the legend lists the rest top to bottom as they are stacked.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    from cinresearch import plots

    needed = {"group", "time", "state", "estimate", "at_risk"}
    if missing := needed - set(occupation.columns):
        raise ValueError(f"occupation frame lacks column(s) {sorted(missing)}")
    groups = occupation["group"].unique(maintain_order=True).to_list()
    if group is None:
        if len(groups) > 1:
            raise ValueError(f"occupation has groups {groups}: choose one with group=")
        group = groups[0]
    part = occupation.filter(pl.col("group") == group)
    if part.is_empty():
        raise ValueError(f"no rows for group {group!r}")
    labels = {**STATE_LABELS, **(labels or {})}
    colours = {**STATE_COLOURS, **(colours or {})}
    present = part["state"].unique(maintain_order=True).to_list()
    order = [s for s in STATES if s in present] + [s for s in present if s not in STATES]
    wide = part.pivot(on="state", index="time", values="estimate").sort("time")
    risk = part.group_by("time").agg(pl.col("at_risk").sum()).sort("time")
    t = wide["time"].to_numpy().astype(float)
    total = risk["at_risk"].to_numpy()
    if min_at_risk:
        low = np.flatnonzero(total < min_at_risk)
        # stop at the first time after the start where too few remain (late entry can make
        # the first times small too: those are hidden, not the rest of the curve)
        start = int(np.argmax(total >= min_at_risk)) if (total >= min_at_risk).any() else len(t)
        later = low[low > start]
        stop = int(later[0]) if len(later) else len(t)
        shown = np.zeros(len(t), dtype=bool)
        shown[start:stop] = True
    else:
        shown = np.ones(len(t), dtype=bool)
    occupied = [s for s in order if (wide[s].fill_null(0).to_numpy()[shown] > 0).any()]
    tmax = float(xmax if xmax is not None else (t[shown].max() if shown.any() else 1.0))
    with plots.house_style():
        if ax is None:
            fig = Figure(figsize=plots.FIGSIZE["full"], layout="constrained")
            ax = fig.add_subplot()
        else:
            fig = ax.figure
            ax.spines["top"].set_visible(False)
            ax.spines["right"].set_visible(False)
        bottom = np.zeros(len(t))
        handles = []
        for s in occupied:
            y = wide[s].fill_null(0).to_numpy().astype(float)
            top = bottom + y
            colour = colours.get(s, plots.GREY)
            ax.fill_between(
                t[shown],
                bottom[shown],
                top[shown],
                step="post",
                color=colour,
                linewidth=0,
            )
            handles.append(Patch(color=colour, label=labels.get(s, s)))
            bottom = top
        ax.set_xlim(0, tmax)
        ax.set_ylim(0, 1)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 5, 10]))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.xaxis.set_major_locator(MaxNLocator(nbins=7, integer=True, min_n_ticks=3))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
        if legend and handles:
            ax.legend(
                handles=handles[::-1],
                loc="center left",
                bbox_to_anchor=(1.01, 0.5),
                title="Furthest stage reached",
                title_fontsize=8.5,
                alignment="left",
            )
    return fig
