"""Counting-process rows of the pathway built from the ``episodes`` table (and SSDA903 care entries).

Part of :mod:`cinresearch.multistate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl

from cinresearch.multistate.states import (
    ABSORBING_STATE,
    DEFAULT_COVARIATES,
    EXCLUDED_AFTER_DATA_END,
    EXCLUDED_CLOSED_BEFORE_REFERRAL,
    EXCLUDED_CLOSED_BEFORE_START,
    EXCLUDED_ENDED_BEFORE_START,
    EXCLUDED_NFA,
    EXCLUDED_NO_REFERRAL,
    INITIAL_STATE,
    STAGE_COLUMNS,
    STATES,
    Frame,
    _check_states,
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
