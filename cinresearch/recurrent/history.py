"""Referral histories: counting-process rows of re-referrals per child and LA, with their reconciliation.

Part of :mod:`cinresearch.recurrent`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl

from cinresearch.cohorts import birthday_expr, census_year_window
from cinresearch.recurrent.conventions import (
    _COVARIATES,
    END_DATA_END,
    END_DIED,
    END_LEFT_LA,
    END_REFERRAL,
    END_TURNED_18,
    HISTORY_COLUMNS,
    Frame,
)

# --------------------------------------------------------------------------------------------
# The counting-process frame
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferralHistory:
    """Counting-process rows of referrals with their audit trail.

    ``frame``: :data:`HISTORY_COLUMNS`, one row per subject and at-risk interval, sorted by
    ``la_code, child_id, enum``. ``reconciliation``: ``[stage, reason, n]`` — children in,
    children outside the first-referral window, children excluded (by reason), children and
    rows out, referrals counted and referrals not counted (by reason), and how follow-up
    ended. Children in = outside window + excluded + children out, and the referrals of the
    children out = first referrals + counted + not counted (checked when built).
    """

    frame: pl.DataFrame
    reconciliation: pl.DataFrame


def _lazy(frame: Frame) -> pl.LazyFrame:
    return frame.lazy() if isinstance(frame, pl.DataFrame) else frame


def _tables(tables: Any) -> tuple[pl.LazyFrame, pl.LazyFrame | None]:
    """``episodes`` and (when present) ``events`` from a Store or a mapping of frames."""
    if isinstance(tables, Mapping):
        if "episodes" not in tables:
            raise ValueError("tables needs an 'episodes' frame (the derived episodes table)")
        events = tables.get("events")
        return _lazy(tables["episodes"]), None if events is None else _lazy(events)
    if hasattr(tables, "scan") and hasattr(tables, "derived_path"):  # a cinresearch Store
        if not tables.derived_path("episodes").exists():
            raise ValueError("the store has no episodes table: run `cinresearch build` first")
        events = tables.scan("events") if tables.derived_path("events").exists() else None
        return tables.scan("episodes"), events
    raise TypeError(f"tables: expected a Store or a mapping of frames, got {type(tables)}")


def _prepare_episodes(episodes: pl.LazyFrame) -> pl.LazyFrame:
    names = episodes.collect_schema().names()
    needed = ("child_id", "la_code", "referral_date")
    missing = [c for c in needed if c not in names]
    if missing:
        raise ValueError(f"episodes is missing columns {missing}")
    if "data_end" not in names:
        if "last_census_year" not in names:
            raise ValueError("episodes needs data_end or last_census_year (end of data)")
        episodes = episodes.with_columns(
            data_end=pl.date(pl.col("last_census_year").cast(pl.Int32), 3, 31)
        )
    if "disabled_at_referral" in names:  # the referral-time value, not the latest return's
        disabled = pl.coalesce("disabled_at_referral", "disabled") if "disabled" in names else None
        episodes = episodes.with_columns(
            (disabled if disabled is not None else pl.col("disabled_at_referral")).alias("disabled")
        )
    if "age_at_referral" in names:
        episodes = episodes.rename({"age_at_referral": "age_at_origin"})
    names = episodes.collect_schema().names()
    fill: dict[str, pl.DataType] = {
        "referral_nfa": pl.Boolean(),
        "upn_hash": pl.String(),
        "birth_date": pl.Date(),
        "expected_birth_date": pl.Date(),
        "death_date": pl.Date(),
        **_COVARIATES,
    }
    episodes = episodes.with_columns(
        pl.lit(None, dtype=dtype).alias(c) for c, dtype in fill.items() if c not in names
    )
    return episodes.with_columns(
        pl.col("child_id").cast(pl.String),
        pl.col("la_code").cast(pl.String),
        pl.col("upn_hash").cast(pl.String),
        pl.col("referral_nfa").cast(pl.Boolean),
        *(pl.col(c).cast(pl.Date) for c in ("referral_date", "data_end", "birth_date")),
        *(pl.col(c).cast(pl.Date) for c in ("expected_birth_date", "death_date")),
        *(pl.col(c).cast(dtype) for c, dtype in _COVARIATES.items()),
    )


def _moves(events: pl.LazyFrame | None, episodes: pl.LazyFrame) -> pl.LazyFrame:
    """(child_id, la_code, move_date): the dates a child turned up in another LA.

    ``moved_la`` events sit on the record in the *new* LA, dated at its first referral there,
    with ``attrs`` JSON ``{"from_la": ...}``; the record in the LA left is found through
    ``upn_hash`` (LA child ids differ between LAs), as :mod:`cinresearch.cohorts` does.
    """
    schema = {"child_id": pl.String, "la_code": pl.String, "move_date": pl.Date}
    if events is None:
        return pl.LazyFrame(schema=schema)
    names = events.collect_schema().names()
    missing = [c for c in ("child_id", "la_code", "date", "event", "attrs") if c not in names]
    if missing:
        raise ValueError(f"events is missing columns {missing} (needed for leaving the LA)")
    moves = events.filter(pl.col("event") == "moved_la").select(
        pl.col("child_id").cast(pl.String),
        pl.col("la_code").cast(pl.String),
        pl.col("date").cast(pl.Date).alias("move_date"),
        pl.col("attrs").cast(pl.String).str.json_path_match("$.from_la").alias("from_la"),
    )
    upns = (
        episodes.select("child_id", "la_code", "upn_hash")
        .filter(pl.col("upn_hash").is_not_null())
        .unique()
    )
    return (
        moves.join(upns, on=["child_id", "la_code"], how="inner")
        .select("upn_hash", pl.col("from_la").alias("la_code"), "move_date")
        .join(upns, on=["upn_hash", "la_code"], how="inner")
        .select(list(schema))
    )


def _first_referral_window(
    first_referral_years: tuple[int, int] | int | None,
) -> tuple[date | None, date | None]:
    if first_referral_years is None:
        return None, None
    if isinstance(first_referral_years, int):
        return census_year_window(first_referral_years)
    first, last = (int(y) for y in first_referral_years)
    return census_year_window(first, last)


def referral_history(
    tables: Any,
    *,
    first_referral_years: tuple[int, int] | int | None = None,
    la_codes: Sequence[str] | None = None,
    include_nfa: bool = True,
    data_end: date | str | None = None,
    censor_moves: bool = True,
) -> ReferralHistory:
    """Counting-process rows of every child's referrals to an LA, from the first referral.

    ``tables``: a :class:`cinresearch.store.Store` after ``cinresearch build``, or a mapping
    with the derived ``episodes`` table (docs/tables.md) and optionally ``events``.

    Conventions (docs/recurrent.md):

    * Subject: a child in one LA (``child_id`` is per LA). Time 0 is the child's first referral
      *in the data* to that LA; referrals before the LA's first return are unknown, so a
      "first" referral may be a re-referral — choose ``first_referral_years`` from the
      second year of data on to reduce this. Only children whose first referral falls in
      those census years are followed (all children when ``None``).
    * Events: every later referral of the child to the same LA, dated by its referral date,
      whether or not an earlier episode is still open (DfE counts re-referrals by referral
      dates; overlapping episodes are flagged ``overlaps_previous`` in ``episodes``). With
      ``include_nfa=False`` referrals that led to no further action are dropped, as origin
      and as events.
    * Same-day referrals: episodes are keyed by (child, LA, referral date), so two referrals of
      a child to an LA on one day are one episode and one event. A referral on the day the
      previous episode closed is a new referral and counts.
    * Terminal events end follow-up for good: death (``death_date``) and the 18th birthday
      (from ``birth_date``, else ``expected_birth_date``; 29 February → 1 March). A referral on
      the day of death counts; referrals on or after the 18th birthday or after death are not
      counted (they are data errors) and are reported in the reconciliation.
    * Censoring: the end of the LA's data (31 March of its last return; ``data_end`` can bring
      it earlier) and, with ``censor_moves`` and an ``events`` table, leaving the LA (the
      first ``moved_la`` event on or after the first referral; the child is followed in each
      LA as a separate subject). Referrals after censoring are not counted.
    * Ties on the end date: died, then 18th birthday, then left LA, then data end.
    * Children excluded, with a reason: aged 18 or over at the first referral, died before it,
      first referral after the end of data, no end of data for the LA, or no follow-up after
      the first referral (it ends on the day of the first referral).

    Covariates come from the first referral's episode: ``age_band``, ``age_at_origin``,
    ``disabled`` (``disabled_at_referral`` when the table has it), ``sex``,
    ``ethnicity_group``, ``primary_need``, ``referral_source``; ``first_referral_year`` is its
    census year and ``n_previous`` (= ``enum - 1``) the re-referrals before the row.
    """
    episodes, events = _tables(tables)
    all_eps = _prepare_episodes(episodes)
    undated = all_eps.select(pl.col("referral_date").null_count()).collect().item()
    if undated:  # the episode key includes the referral date, so this is a broken table
        raise ValueError(f"episodes has {undated} row(s) without a referral_date")
    eps = all_eps
    la_end = eps.group_by("la_code").agg(la_data_end=pl.col("data_end").max())
    if data_end is not None:
        cap = date.fromisoformat(data_end) if isinstance(data_end, str) else data_end
        la_end = la_end.with_columns(pl.min_horizontal("la_data_end", pl.lit(cap, pl.Date)))
    if la_codes is not None:
        eps = eps.filter(pl.col("la_code").is_in([str(c) for c in la_codes]))
    if not include_nfa:
        eps = eps.filter(~pl.col("referral_nfa").fill_null(False))
    keys = ["child_id", "la_code"]
    first = (
        eps.sort([*keys, "referral_date"])
        .group_by(keys, maintain_order=True)
        .agg(
            origin_date=pl.col("referral_date").first(),
            n_referrals=pl.col("referral_date").n_unique(),
            birth=pl.coalesce("birth_date", "expected_birth_date").drop_nulls().first(),
            death_date=pl.col("death_date").drop_nulls().first(),
            **{c: pl.col(c).first() for c in _COVARIATES},
        )
        .join(la_end, on="la_code", how="left")
    )
    moved = (
        _moves(events, all_eps)  # all LAs: the record moved to may be outside la_codes
        if censor_moves
        else pl.LazyFrame(
            schema={"child_id": pl.String, "la_code": pl.String, "move_date": pl.Date}
        )
    )
    left = (
        first.select(*keys, "origin_date")
        .join(moved, on=keys, how="inner")
        .filter(pl.col("move_date") >= pl.col("origin_date"))
        .group_by(keys)
        .agg(move_date=pl.col("move_date").min())
    )
    candidates = [
        ("death_date", END_DIED),
        ("birthday_18", END_TURNED_18),
        ("move_date", END_LEFT_LA),
        ("la_data_end", END_DATA_END),
    ]
    end_reason = pl.when(pl.lit(False)).then(pl.lit(None, pl.String))
    for column, label in candidates:
        end_reason = end_reason.when(pl.col(column) == pl.col("end_date")).then(pl.lit(label))
    start, stop = _first_referral_window(first_referral_years)
    in_window = pl.lit(True)
    if start is not None:
        in_window = pl.col("origin_date").is_between(pl.lit(start), pl.lit(stop))
    excluded = (
        pl.when(pl.col("birthday_18") <= pl.col("origin_date"))
        .then(pl.lit("aged 18 or over at first referral"))
        .when(pl.col("death_date") < pl.col("origin_date"))
        .then(pl.lit("died before first referral"))
        .when(pl.col("la_data_end") < pl.col("origin_date"))
        .then(pl.lit("first referral after the end of data"))
        .when(pl.col("la_data_end").is_null())
        .then(pl.lit("no end of data for the LA (data_end missing)"))
        .when(pl.col("end_date") <= pl.col("origin_date"))
        .then(pl.lit("no follow-up after the first referral"))
    )
    subjects = (
        first.join(left, on=keys, how="left")
        .with_columns(birthday_18=birthday_expr("birth", 18))
        .with_columns(end_date=pl.min_horizontal([c for c, _ in candidates]))
        .with_columns(
            end_reason=end_reason,
            terminal=(
                (pl.col("end_date") == pl.col("death_date"))
                | (pl.col("end_date") == pl.col("birthday_18"))
            )
            .fill_null(False)
            .cast(pl.Int8),
            _in_window=in_window,
            _excluded=excluded,
        )
        .collect()
    )
    window_subjects = subjects.filter(pl.col("_in_window"))
    kept = window_subjects.filter(pl.col("_excluded").is_null())

    # later referrals of the followed children: counted (an event) or why not
    later = (
        eps.select(*keys, "referral_date")
        .unique()
        .join(
            kept.lazy().select(
                *keys, "origin_date", "end_date", "birthday_18", "death_date", "move_date"
            ),
            on=keys,
            how="inner",
        )
        .filter(pl.col("referral_date") > pl.col("origin_date"))
        .with_columns(
            not_counted=pl.when(pl.col("referral_date") >= pl.col("birthday_18"))
            .then(pl.lit("on or after the 18th birthday"))
            .when(pl.col("referral_date") > pl.col("death_date"))
            .then(pl.lit("after death"))
            .when(pl.col("referral_date") > pl.col("move_date"))
            .then(pl.lit("after leaving the LA"))
            .when(pl.col("referral_date") > pl.col("end_date"))
            .then(pl.lit("after the end of data"))
        )
        .collect()
    )
    counted = later.filter(pl.col("not_counted").is_null())
    frame = _counting_rows(kept, counted)
    reconciliation = _reconcile(subjects, window_subjects, kept, later, frame)
    return ReferralHistory(frame, reconciliation)


def _counting_rows(kept: pl.DataFrame, counted: pl.DataFrame) -> pl.DataFrame:
    """Rows (tstart, tstop] per subject: one per counted referral, then one to the end."""
    keys = ["child_id", "la_code"]
    days = (pl.col("referral_date") - pl.col("origin_date")).dt.total_days()
    event_rows = (
        counted.sort([*keys, "referral_date"])
        .with_columns(tstop=days, stop_date=pl.col("referral_date"))
        .with_columns(
            enum=pl.col("tstop").rank("ordinal").over(keys).cast(pl.Int32),
            tstart=pl.col("tstop").shift(1, fill_value=0).over(keys),
            start_date=pl.col("referral_date").shift(1).over(keys),
            event=pl.lit(1, pl.Int8),
        )
        .select(*keys, "enum", "tstart", "tstop", "start_date", "stop_date", "event")
    )
    last = event_rows.group_by(keys).agg(
        n_events=pl.len().cast(pl.Int32), last_t=pl.col("tstop").max()
    )
    ends = kept.join(last, on=keys, how="left").with_columns(
        pl.col("n_events").fill_null(0),
        pl.col("last_t").fill_null(0),
        t_end=(pl.col("end_date") - pl.col("origin_date")).dt.total_days(),
    )
    final_rows = ends.filter(pl.col("t_end") > pl.col("last_t")).select(
        *keys,
        enum=pl.col("n_events") + 1,
        tstart=pl.col("last_t"),
        tstop=pl.col("t_end"),
        start_date=pl.col("origin_date") + pl.duration(days=pl.col("last_t")),
        stop_date=pl.col("end_date"),
        event=pl.lit(0, pl.Int8),
    )
    rows = pl.concat(
        [
            event_rows.with_columns(
                pl.col("tstart").cast(pl.Int64), pl.col("tstop").cast(pl.Int64)
            ),
            final_rows.with_columns(
                pl.col("tstart").cast(pl.Int64), pl.col("tstop").cast(pl.Int64)
            ),
        ]
    )
    subject_cols = [
        "origin_date",
        "end_reason",
        "terminal",
        "end_date",
        *_COVARIATES,
    ]
    out = (
        rows.join(kept.select(*keys, *subject_cols), on=keys, how="inner")
        .sort([*keys, "enum"])
        .with_columns(
            _last=pl.col("enum") == pl.col("enum").max().over(keys),
            start_date=pl.coalesce("start_date", "origin_date"),
        )
        .with_columns(
            terminal=pl.when(pl.col("_last")).then(pl.col("terminal")).otherwise(0).cast(pl.Int8),
            end_reason=pl.when(pl.col("_last"))
            .then(pl.col("end_reason"))
            .otherwise(pl.lit(END_REFERRAL)),
            subject_id=pl.concat_str("la_code", "child_id", separator=":"),
            gap=pl.col("tstop") - pl.col("tstart"),
            n_previous=pl.col("enum") - 1,
            first_referral_year=(
                pl.col("origin_date").dt.year() + (pl.col("origin_date").dt.month() >= 4)
            ).cast(pl.Int16),
        )
    )
    return out.select(HISTORY_COLUMNS).sort("la_code", "child_id", "enum")


def _reconcile(
    subjects: pl.DataFrame,
    window_subjects: pl.DataFrame,
    kept: pl.DataFrame,
    later: pl.DataFrame,
    frame: pl.DataFrame,
) -> pl.DataFrame:
    """Counts in and out at each stage; raises if they do not add up (an internal bug)."""
    rows: list[tuple[str, str, int]] = [
        ("input", "children (child in an LA, with a referral)", subjects.height),
        (
            "not in cohort",
            "first referral outside the window",
            subjects.height - window_subjects.height,
        ),
    ]
    excluded = window_subjects.filter(pl.col("_excluded").is_not_null())
    for reason, n in sorted(excluded.get_column("_excluded").value_counts().iter_rows()):
        rows.append(("excluded", reason, n))
    n_children = frame.get_column("subject_id").n_unique()
    rows.append(("children out", "children followed", n_children))
    rows.append(("rows out", "counting-process rows", frame.height))
    n_counted = int(frame.get_column("event").sum())
    rows.append(("referrals", "first referrals (time 0)", kept.height))
    rows.append(("referrals", "re-referrals counted (events)", n_counted))
    not_counted = later.filter(pl.col("not_counted").is_not_null())
    for reason, n in sorted(not_counted.get_column("not_counted").value_counts().iter_rows()):
        rows.append(("referrals not counted", reason, n))
    last = frame.filter(pl.col("end_reason") != END_REFERRAL)
    ended = last.get_column("end_reason").value_counts()
    for reason, n in sorted(ended.iter_rows()):
        rows.append(("end of follow-up", reason, n))
    referrals_in = int(kept.get_column("n_referrals").sum())
    if (
        window_subjects.height != excluded.height + n_children
        or n_children != kept.height
        or referrals_in != kept.height + n_counted + not_counted.height
        or last.height != n_children
    ):
        raise AssertionError("referral history reconciliation does not add up")
    return pl.DataFrame(
        rows, schema={"stage": pl.String, "reason": pl.String, "n": pl.Int64}, orient="row"
    )


def reconciliation_tables(
    reconciliation: pl.DataFrame, total_label: str = "Total"
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A :func:`referral_history` reconciliation as two tables to display.

    ``children``: ``[reason, not_followed, followed, children]``, one row per reason a child
    was not followed (first referral outside the window, each exclusion) and per way follow-up
    ended, then a ``total_label`` row; ``children = not_followed + followed`` on every row.
    Shown under disclosure control with ``filters=["reason"]`` and
    ``row_totals={"children": ["not_followed", "followed"]}``, the suppression holds jointly
    for the total and for the number of children followed (published again with the mean
    cumulative function), so no hidden cell follows by subtraction from either; hide the two
    part columns for display if wanted (they still count as published).

    ``re_referrals``: ``[reason, n]``: the re-referrals counted and those not counted by reason,
    then their ``total_label`` row (``filters=["reason"]``).
    """

    def rows(stages: Sequence[str]) -> pl.DataFrame:
        return reconciliation.filter(pl.col("stage").is_in(list(stages))).select("reason", "n")

    not_followed = rows(["not in cohort", "excluded"])
    followed = rows(["end of follow-up"])
    parts = pl.concat(
        [
            not_followed.select("reason", not_followed="n", followed=pl.lit(0, pl.Int64)),
            followed.select("reason", not_followed=pl.lit(0, pl.Int64), followed="n"),
        ]
    )
    total = parts.select(pl.lit(total_label).alias("reason"), pl.exclude("reason").sum())
    children = pl.concat([parts, total]).with_columns(
        children=pl.col("not_followed") + pl.col("followed")
    )
    counted = rows(["referrals"]).filter(pl.col("reason") != "first referrals (time 0)")
    re_referrals = pl.concat([counted, rows(["referrals not counted"])])
    re_referrals = pl.concat(
        [re_referrals, re_referrals.select(pl.lit(total_label).alias("reason"), pl.col("n").sum())]
    )
    return children, re_referrals
