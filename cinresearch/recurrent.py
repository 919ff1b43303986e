"""Re-referral as a recurrent event: every referral of a child, not only the first re-referral.

:func:`referral_history` turns the ``episodes`` table into counting-process rows, one child
(in one LA) followed from their first referral; :func:`mean_cumulative` estimates the mean
number of re-referrals per child by each day of follow-up; :func:`andersen_gill` and
:func:`pwp_gap` fit the two usual regression models for recurrent events; and
:func:`plot_mean_cumulative` draws the mean cumulative function by group. The method, the
conventions and the R cross-check are written up in ``docs/recurrent.md``.

Conventions of the counting-process frame (``referral_history`` makes it; the estimators accept
any frame with these columns):

* One *subject* per child and LA (``subject_id``). Time is in whole days since the subject's
  first referral (time 0). Row ``k`` (``enum = k``) covers ``(tstart, tstop]``: the subject is
  at risk of its ``k``-th re-referral at every day ``t`` with ``tstart < t <= tstop``.
  ``event = 1`` when a referral falls on ``tstop``. ``gap = tstop - tstart``: the days since
  the previous referral (PWP gap time).
* ``terminal = 1`` on the subject's last row when follow-up ended with a *terminal* event at
  ``tstop`` (death or the 18th birthday: the child can never be referred again as a child);
  otherwise the last row is *censored* (end of data, leaving the LA). ``end_reason`` says which.
* Rows have ``tstop > tstart >= 0`` and do not overlap within a subject.
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

from cinresearch.codes import AGE_BANDS
from cinresearch.cohorts import birthday_expr, census_year_window
from cinresearch.disclosure import round_half_up

if TYPE_CHECKING:  # matplotlib is imported only when a figure is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "CURVE_COLUMNS",
    "END_DATA_END",
    "END_DIED",
    "END_LEFT_LA",
    "END_REFERRAL",
    "END_TURNED_18",
    "HISTORY_COLUMNS",
    "METHODS",
    "ReferralHistory",
    "andersen_gill",
    "andersen_gill_fit",
    "mean_cumulative",
    "mean_cumulative_table",
    "plot_mean_cumulative",
    "pwp_gap",
    "pwp_gap_fit",
    "reconciliation_tables",
    "referral_history",
]

Frame = pl.DataFrame | pl.LazyFrame

END_REFERRAL = "referral"
END_DIED = "terminal: died"
END_TURNED_18 = "terminal: 18th birthday"
END_LEFT_LA = "censored: left LA"
END_DATA_END = "censored: data end"

#: Columns of :attr:`ReferralHistory.frame`, in order (covariates from the first referral).
HISTORY_COLUMNS = (
    "subject_id",
    "child_id",
    "la_code",
    "origin_date",
    "enum",
    "tstart",
    "tstop",
    "gap",
    "event",
    "terminal",
    "end_reason",
    "start_date",
    "stop_date",
    "n_previous",
    "first_referral_year",
    "age_band",
    "age_at_origin",
    "disabled",
    "sex",
    "ethnicity_group",
    "primary_need",
    "referral_source",
)
#: Columns of a :func:`mean_cumulative` curve.
CURVE_COLUMNS = (
    "group",
    "time",
    "estimate",
    "lower",
    "upper",
    "std_error",
    "at_risk",
    "events",
    "terminal",
    "censored",
)
METHODS = ("ghosh_lin", "nelson_aalen")
ALL_GROUP = "All"  # the same labels as cinresearch.survival's curves
MISSING_GROUP = "Missing"

_COVARIATES: dict[str, pl.DataType] = {
    "age_band": pl.Enum(list(AGE_BANDS)),
    "age_at_origin": pl.Int16(),
    "disabled": pl.Boolean(),
    "sex": pl.String(),
    "ethnicity_group": pl.String(),
    "primary_need": pl.String(),
    "referral_source": pl.String(),
}


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


# --------------------------------------------------------------------------------------------
# Mean cumulative function
# --------------------------------------------------------------------------------------------


def _level_order(series: pl.Series) -> list[str]:
    """Group levels as strings: enum order, else sorted; "Missing" last for nulls."""
    present = series.drop_nulls().unique()
    if isinstance(series.dtype, pl.Enum):
        have = set(present.cast(pl.String).to_list())
        order = [c for c in series.dtype.categories.to_list() if c in have]
    else:
        order = sorted(present.cast(pl.String).to_list())
    if series.null_count():
        order.append(MISSING_GROUP)
    return order


def _check_rows(
    subject: np.ndarray, start: np.ndarray, stop: np.ndarray, event: np.ndarray, term: np.ndarray
) -> None:
    if np.any(~np.isfinite(start)) or np.any(~np.isfinite(stop)):
        raise ValueError("start and stop must be finite (days since the origin)")
    if np.any(start < 0) or np.any(stop <= start):
        raise ValueError("counting-process rows need 0 <= start < stop")
    for name, v in (("event", event), ("terminal", term)):
        if not np.all((v == 0) | (v == 1)):
            raise ValueError(f"{name} must be 0 or 1")
    order = np.lexsort((start, subject))
    s, a, b, t = subject[order], start[order], stop[order], term[order]
    same = s[1:] == s[:-1]
    if np.any(same & (a[1:] < b[:-1])):
        raise ValueError("a subject has overlapping rows (start before the previous stop)")
    if np.any(same & (t[:-1] == 1)):
        raise ValueError("terminal must be set only on a subject's last row")


def _mcf_arrays(
    subject: np.ndarray,
    start: np.ndarray,
    stop: np.ndarray,
    event: np.ndarray,
    term: np.ndarray,
    ghosh_lin: bool,
) -> dict[str, np.ndarray]:
    """Mean cumulative function and its robust (infinitesimal-jackknife) variance.

    At each distinct stop time ``t`` with ``Y`` subjects at risk, ``d`` events and ``D``
    terminal events: ``dLambda = d / Y``; Nelson–Aalen ``mu = sum dLambda``; Ghosh–Lin
    ``mu = sum S(t-) dLambda`` with ``S`` the Kaplan–Meier curve of the terminal event.
    The variance is ``sum_i psi_i(t)^2`` with ``psi_i`` subject ``i``'s derivative of ``mu(t)``
    with respect to its weight (Lawless–Nadeau for Nelson–Aalen; for Ghosh–Lin
    ``psi_i = sum_u [S(u-) (dN_i - Y_i dLambda) / Y + mu(u) (dD_i - Y_i dD/Y) / (Y - D)]
    - mu(t) sum_u (dD_i - Y_i dD/Y) / (Y - D)``). The sums over subjects are kept in one pass
    over time: subjects at risk share the common increments, so only sums of their own
    increments (and of their squares and products) are stored.
    """
    times, tidx = np.unique(stop, return_inverse=True)
    T = len(times)
    Y = (
        np.searchsorted(np.sort(start), times, side="left")
        - np.searchsorted(np.sort(stop), times, side="left")
    ).astype(np.float64)
    d = np.bincount(tidx, weights=event, minlength=T)
    dD = np.bincount(tidx, weights=term, minlength=T) if ghosh_lin else np.zeros(T)
    order = np.lexsort((start, subject))
    is_last = np.ones(len(stop), dtype=bool)
    is_last[order[:-1]] = subject[order[1:]] != subject[order[:-1]]
    censored = np.bincount(tidx, weights=is_last & (term == 0), minlength=T)
    n_terminal = np.bincount(tidx, weights=term, minlength=T)
    dlam = d / Y
    if ghosh_lin:
        surv = np.cumprod(1.0 - dD / Y)
        s_minus = np.concatenate([[1.0], surv[:-1]])
    else:
        s_minus = np.ones(T)
    mu = np.cumsum(s_minus * dlam)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_alive = np.where(Y - dD > 0, 1.0 / (Y - dD), 0.0)  # 1 / (Y - D)
    common_p = -s_minus * d / Y**2 - mu * dD / Y * inv_alive
    common_h = -dD / Y * inv_alive
    own_event = s_minus / Y
    own_term_p = mu * inv_alive

    gl = 1.0 if ghosh_lin else 0.0
    _, subj = np.unique(subject, return_inverse=True)
    m = int(subj.max()) + 1 if len(subj) else 0
    frozen_p = np.zeros(m)  # psi parts of subjects not at risk: P_i, H_i
    frozen_h = np.zeros(m)
    p = np.zeros(m)  # of subjects at risk: P_i - CP, H_i - CH
    h = np.zeros(m)
    cp = ch = 0.0
    f_pp = f_ph = f_hh = 0.0  # sums over subjects not at risk
    a_p = a_h = a_pp = a_ph = a_hh = 0.0  # sums over subjects at risk
    n_active = 0
    by_start = np.argsort(start, kind="stable")
    start_sorted = start[by_start]
    by_stop = np.argsort(tidx, kind="stable")
    bounds = np.searchsorted(tidx[by_stop], np.arange(T + 1))
    var = np.zeros(T)
    entered = 0
    for k in range(T):
        t = times[k]
        # rows entering (start < t): their subjects join the risk set
        upto = int(np.searchsorted(start_sorted, t, side="left"))
        if upto > entered:
            s = subj[by_start[entered:upto]]
            entered = upto
            fp, fh = frozen_p[s], frozen_h[s]
            f_pp -= fp @ fp
            f_ph -= fp @ fh
            f_hh -= fh @ fh
            p[s] = fp - cp
            h[s] = fh - ch
            a_p += p[s].sum()
            a_h += h[s].sum()
            a_pp += p[s] @ p[s]
            a_ph += p[s] @ h[s]
            a_hh += h[s] @ h[s]
            n_active += len(s)
        cp += common_p[k]
        ch += common_h[k]
        rows = by_stop[bounds[k] : bounds[k + 1]]
        s = subj[rows]
        jump = (event[rows] > 0) | (gl * term[rows] > 0)
        if jump.any():
            sj, rj = s[jump], rows[jump]
            old_p, old_h = p[sj], h[sj]
            new_p = old_p + event[rj] * own_event[k] + gl * term[rj] * own_term_p[k]
            new_h = old_h + gl * term[rj] * inv_alive[k]
            a_p += (new_p - old_p).sum()
            a_h += (new_h - old_h).sum()
            a_pp += new_p @ new_p - old_p @ old_p
            a_ph += new_p @ new_h - old_p @ old_h
            a_hh += new_h @ new_h - old_h @ old_h
            p[sj], h[sj] = new_p, new_h
        mk = mu[k]
        shift = cp - mk * ch
        q1 = a_p - mk * a_h
        q2 = a_pp - 2 * mk * a_ph + mk * mk * a_hh
        var[k] = (
            q2 + 2 * shift * q1 + n_active * shift * shift + f_pp - 2 * mk * f_ph + mk * mk * f_hh
        )
        # rows ending at t: their subjects leave the risk set (frozen)
        fp, fh = p[s] + cp, h[s] + ch
        a_p -= p[s].sum()
        a_h -= h[s].sum()
        a_pp -= p[s] @ p[s]
        a_ph -= p[s] @ h[s]
        a_hh -= h[s] @ h[s]
        n_active -= len(s)
        frozen_p[s], frozen_h[s] = fp, fh
        f_pp += fp @ fp
        f_ph += fp @ fh
        f_hh += fh @ fh
    return {
        "time": times,
        "estimate": mu,
        "variance": np.clip(var, 0.0, None),
        "at_risk": Y,
        "events": d,
        "terminal": n_terminal,
        "censored": censored,
    }


def mean_cumulative(
    frame: Frame,
    by: str | None = None,
    *,
    method: str = "ghosh_lin",
    times: Sequence[float] | None = None,
    alpha: float = 0.05,
    id: str = "subject_id",
    start: str = "tstart",
    stop: str = "tstop",
    event: str = "event",
    terminal: str = "terminal",
) -> pl.DataFrame:
    """Mean cumulative number of re-referrals per child by each day since the first referral.

    ``method="ghosh_lin"`` (default) is the Ghosh–Lin (2000) estimator
    ``mu(t) = sum_{u <= t} S(u-) dN(u) / Y(u)``: the Nelson–Aalen rate of re-referral among
    children still followed, weighted by the Kaplan–Meier probability ``S`` of not yet having
    had a terminal event (death, 18th birthday). It estimates the mean number of re-referrals
    that children actually have by day ``t``, a child who has died or turned 18 adding no more.
    ``method="nelson_aalen"`` is the Nelson–Aalen mean cumulative function of Lawless and
    Nadeau (1995), ``sum dN / Y``, which treats terminal events as censoring: the mean for
    children who stay alive and under 18 (it exceeds Ghosh–Lin once terminal events happen).
    Both need censoring (end of data, leaving the LA) unrelated to future referrals.

    ``std_error`` is the robust standard error, the infinitesimal jackknife over subjects
    (``id``): Lawless–Nadeau's robust variance for Nelson–Aalen (R's
    ``survfit(Surv(tstart, tstop, event) ~ 1, id = id)$std.chaz``) and the Ghosh–Lin variance
    with exact Kaplan–Meier derivatives (equal to R's survfit influence values combined by the
    delta method; ``tests/fixtures/recurrent/r``). It needs no Poisson assumption: children
    with many re-referrals widen it. The interval is on the log scale,
    ``mu · exp(±z · se / mu)``, so it stays positive.

    Returns :data:`CURVE_COLUMNS`: per group (``by``; "All" when ``None``, "Missing" for nulls)
    a row at ``time`` 0 (``at_risk`` = subjects followed from the origin) and at every
    distinct ``stop`` time; ``at_risk`` is the number of subjects at risk at ``time``,
    ``events`` the re-referrals on that day, ``terminal`` the terminal events and
    ``censored`` the subjects whose follow-up was censored then (Nelson–Aalen treats the
    terminal events as censoring too, but they are still counted as ``terminal``). With ``times`` the step function is evaluated at those
    days instead (null beyond the group's last follow-up day).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    z = float(stats.norm.ppf(1 - alpha / 2))
    cols = list(dict.fromkeys([id, start, stop, event, terminal, *([by] if by else [])]))
    df = _lazy(frame).select(cols).collect()
    for c in cols:
        if c != by and df.get_column(c).null_count():
            raise ValueError(f"column {c!r} has null values")
    if by is None:
        labels = pl.Series("g", [ALL_GROUP] * df.height, dtype=pl.String)
        order = [ALL_GROUP]
    else:
        order = _level_order(df.get_column(by))
        labels = df.get_column(by).cast(pl.String).fill_null(MISSING_GROUP)
    if by is not None:
        per_subject = (
            pl.DataFrame({"s": df.get_column(id), "g": labels}).unique().group_by("s").len()
        )
        if per_subject.height and per_subject.get_column("len").max() > 1:
            raise ValueError(f"{by!r} must be constant within each subject ({id!r})")
    req = None if times is None else np.asarray(sorted({float(t) for t in times}))
    if req is not None and len(req) and req[0] < 0:
        raise ValueError("times must be >= 0 (days since the origin)")
    parts = []
    for level in order:
        part = df.filter(labels == level)
        # integer codes: sorting them is far faster than sorting id strings
        subject = (part.get_column(id).rank("dense") - 1).cast(pl.Int64).to_numpy()
        st = part.get_column(start).cast(pl.Float64).to_numpy()
        sp = part.get_column(stop).cast(pl.Float64).to_numpy()
        ev = part.get_column(event).cast(pl.Float64).to_numpy()
        tm = part.get_column(terminal).cast(pl.Float64).to_numpy()
        _check_rows(subject, st, sp, ev, tm)
        res = _mcf_arrays(subject, st, sp, ev, tm, ghosh_lin=method == "ghosh_lin")
        n0 = len(np.unique(subject[st == 0]))
        grid = np.concatenate([[0.0], res["time"]])
        est = np.concatenate([[0.0], res["estimate"]])
        se = np.sqrt(np.concatenate([[0.0], res["variance"]]))
        counts = {k: np.concatenate([[0.0], res[k]]) for k in ("events", "terminal", "censored")}
        at_risk = np.concatenate([[n0], res["at_risk"]])
        if req is not None:
            idx = np.searchsorted(grid, req, side="right") - 1
            beyond = req > grid[-1]
            est, se = est[idx], se[idx]
            est[beyond] = np.nan
            se[beyond] = np.nan
            at = req
            exact = np.isin(req, grid)
            pos = np.searchsorted(grid, req)
            counts = {
                k: np.where(exact, v[np.minimum(pos, len(v) - 1)], 0.0) for k, v in counts.items()
            }
            at_risk = (
                np.searchsorted(np.sort(st), at, side="left")
                - np.searchsorted(np.sort(sp), at, side="left")
            ).astype(np.float64)
            at_risk[at == 0] = n0
        else:
            at = grid
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.exp(z * se / est)
            lower = np.where(est > 0, est / factor, 0.0)
            upper = np.where(est > 0, est * factor, 0.0)
        lower[np.isnan(est)] = np.nan
        upper[np.isnan(est)] = np.nan
        parts.append(
            pl.DataFrame(
                {
                    "group": [level] * len(at),
                    "time": at,
                    "estimate": est,
                    "lower": lower,
                    "upper": upper,
                    "std_error": se,
                    "at_risk": at_risk.astype(np.int64),
                    **{k: v.astype(np.int64) for k, v in counts.items()},
                }
            )
        )
    empty = {
        "group": pl.String,
        **dict.fromkeys(["time", "estimate", "lower", "upper", "std_error"], pl.Float64),
        **dict.fromkeys(["at_risk", "events", "terminal", "censored"], pl.Int64),
    }
    out = pl.concat(parts) if parts else pl.DataFrame(schema=empty)
    whole = (
        out.get_column("time").is_finite().all()
        and (out.get_column("time") == out.get_column("time").round()).all()
    )
    return out.with_columns(
        pl.col("time").cast(pl.Int64 if whole else pl.Float64),
        *(pl.col(c).fill_nan(None) for c in ("estimate", "lower", "upper", "std_error")),
    ).select(CURVE_COLUMNS)


def mean_cumulative_table(
    curve: pl.DataFrame,
    times: Sequence[float],
    *,
    min_at_risk: int = 10,
    time_labels: Mapping[float, str] | None = None,
    group_label: str = "Group",
    decimals: int = 2,
) -> pl.DataFrame:
    """A :func:`mean_cumulative` curve as a wide table to display: one row per group with
    ``children`` (followed from time 0) and one text column per time, "0.25 (0.24 to 0.27)"
    (rounded half up);
    "c" where fewer than ``min_at_risk`` children were still followed (as survival curves are
    shown), or beyond the follow-up. Pass ``children`` to disclosure control as a count."""
    labels = {float(k): v for k, v in (time_labels or {}).items()}
    names = [labels.get(float(t), f"{float(t):g} days") for t in times]
    rows = []
    for (group,), part in curve.group_by("group", maintain_order=True):
        part = part.sort("time")
        t = part.get_column("time").cast(pl.Float64).to_numpy()
        row: dict[str, Any] = {group_label: group, "children": int(part["at_risk"][0])}
        for name, x in zip(names, times, strict=True):
            i = int(np.searchsorted(t, float(x), side="right")) - 1  # value at x
            j = int(np.searchsorted(t, float(x), side="left"))  # at risk at x
            at_risk = int(part["at_risk"][j]) if j < len(t) else 0
            est, lo, hi = (part[c][i] for c in ("estimate", "lower", "upper"))
            if at_risk < min_at_risk or est is None:
                row[name] = "c"
            else:
                lo_, est_, hi_ = (round_half_up(v, decimals=decimals) for v in (lo, est, hi))
                row[name] = f"{est_:.{decimals}f} ({lo_:.{decimals}f} to {hi_:.{decimals}f})"
        rows.append(row)
    schema = {group_label: pl.String, "children": pl.Int64, **dict.fromkeys(names, pl.String)}
    return pl.DataFrame(rows, schema=schema)


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
    from cinresearch.survival import cox_fit  # imported here: survival re-exports this module

    by = [strata] if isinstance(strata, str) else list(strata or [])
    df = _model_rows(frame, start, stop, [*covariates, cluster or id, *by])
    if by:  # strata without events add nothing (see pwp_gap_fit)
        df = df.filter(pl.col(event).sum().over(by) > 0)
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
    from cinresearch.survival import cox_fit  # imported here: survival re-exports this module

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
    # A stratum without events (a high event number reached only by censored rows) adds
    # nothing to the partial likelihood or the score residuals; leave it out.
    df = df.filter(pl.col(event).sum().over(by) > 0)
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


# --------------------------------------------------------------------------------------------
# Figure
# --------------------------------------------------------------------------------------------


def plot_mean_cumulative(
    curve: pl.DataFrame,
    ax: Axes | None = None,
    *,
    title: str | None = None,
    xlabel: str = "Days since first referral",
    ylabel: str = "Mean number of re-referrals per child",
    ci: bool = True,
    min_at_risk: int = 10,
    at_risk_table: bool = True,
    at_risk_times: Sequence[float] | None = None,
    xmax: float | None = None,
    palette: Sequence[str] | None = None,
    legend_title: str | None = None,
) -> Figure:
    """Mean cumulative function per group (steps) with its confidence band, house style.

    ``curve`` is a :func:`mean_cumulative` frame. As for survival curves
    (:func:`cinresearch.plots.plot_survival`), nothing is drawn where fewer than
    ``min_at_risk`` children are at risk, and the at-risk table below the axis shows smaller
    counts as "<10". Unlike a probability the mean can exceed 1, so the y axis is not capped.
    """
    from matplotlib.figure import Figure

    from cinresearch.plots import FIGSIZE, PALETTE, format_count, house_style

    needed = {"group", "time", "estimate", "at_risk"}
    if missing := needed - set(curve.columns):
        raise ValueError(f"curve frame lacks column(s) {sorted(missing)}")
    groups = curve.get_column("group").unique(maintain_order=True).to_list()
    pal = list(palette or PALETTE)
    colours = [pal[i % len(pal)] for i in range(len(groups))]
    hide = pl.col("at_risk") < min_at_risk if min_at_risk else pl.lit(False)
    shown = curve.with_columns(
        pl.when(hide).then(None).otherwise(pl.col(c)).alias(c)
        for c in ("estimate", "lower", "upper")
        if c in curve.columns
    )
    tmax = float(xmax if xmax is not None else curve.get_column("time").max() or 1.0)
    with house_style():
        table_ax = None
        if ax is None:
            height = FIGSIZE["full"][1] + (0.22 * (len(groups) + 1) if at_risk_table else 0)
            fig = Figure(figsize=(FIGSIZE["full"][0], height), layout="constrained")
            if at_risk_table:
                gs = fig.add_gridspec(2, 1, height_ratios=[3.6, 0.28 * (len(groups) + 1.5)])
                ax = fig.add_subplot(gs[0])
                table_ax = fig.add_subplot(gs[1], sharex=ax)
            else:
                ax = fig.add_subplot()
        else:
            fig = ax.figure
            ax.spines[["top", "right"]].set_visible(False)
        top = 0.0
        for colour, g in zip(colours, groups, strict=True):
            part = shown.filter(pl.col("group") == g).sort("time")
            t = part.get_column("time").cast(pl.Float64).to_numpy()
            y = part.get_column("estimate").cast(pl.Float64).fill_null(np.nan).to_numpy()
            label = g if groups != [ALL_GROUP] else None
            ax.step(t, y, where="post", color=colour, label=label)
            if ci and {"lower", "upper"} <= set(part.columns):
                lo = part.get_column("lower").cast(pl.Float64).fill_null(np.nan).to_numpy()
                up = part.get_column("upper").cast(pl.Float64).fill_null(np.nan).to_numpy()
                ax.fill_between(t, lo, up, step="post", color=colour, alpha=0.18, linewidth=0)
                top = max(top, float(np.nanmax(up, initial=0.0)))
            top = max(top, float(np.nanmax(y, initial=0.0)))
        ax.set_xlim(0, tmax)
        ax.set_ylim(0, max(top * 1.08, 0.05))
        ax.set_ylabel(ylabel)
        ax.grid(axis="y")
        if title:
            ax.set_title(title)
        if groups != [ALL_GROUP]:
            ax.legend(title=legend_title, loc="upper left")
        if table_ax is not None:
            ticks = (
                [x for x in ax.get_xticks() if 0 <= x <= tmax]
                if at_risk_times is None
                else list(at_risk_times)
            )
            table_ax.set_xlim(ax.get_xlim())
            table_ax.set_ylim(-0.5, len(groups) - 0.5)
            table_ax.invert_yaxis()
            for row, (colour, g) in enumerate(zip(colours, groups, strict=True)):
                part = curve.filter(pl.col("group") == g).sort("time")
                t = part.get_column("time").cast(pl.Float64).to_numpy()
                n = part.get_column("at_risk").to_numpy()
                for x in ticks:
                    i = int(np.searchsorted(t, float(x), side="left"))
                    count = int(n[i]) if i < len(t) else 0
                    table_ax.text(
                        x,
                        row,
                        format_count(count, max(min_at_risk, 1)),
                        ha="center",
                        va="center",
                        fontsize=8,
                        color=colour,
                    )
            table_ax.set_yticks(range(len(groups)), labels=groups, fontsize=8)
            for tick, colour in zip(table_ax.get_yticklabels(), colours, strict=True):
                tick.set_color(colour)
            table_ax.tick_params(axis="both", length=0)
            table_ax.tick_params(axis="y", pad=20)
            table_ax.tick_params(axis="x", labelbottom=False)
            table_ax.spines[["top", "right", "bottom", "left"]].set_visible(False)
            table_ax.set_title("Number at risk", fontsize=8.5, fontweight="normal", loc="left")
            ax.tick_params(axis="x", labelbottom=True)
        ax.set_xlabel(xlabel)
    return fig
