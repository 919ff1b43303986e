"""Outcome and censoring dates from linked data, joined onto the subjects.

Leaving the LA (``moved_la`` events matched across LAs by ``upn_hash``), entering care
(periods of care from SSDA903, as the journeys define them) and NPD exclusions.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from cinresearch.cohorts.inputs import Frame, _cast_dates, _columns, _lazy, _require
from cinresearch.journeys.linkage import care_entries, merge_cla_episodes


def _first_on_or_after(
    subjects: pl.LazyFrame,
    dated: pl.LazyFrame,
    keys: Sequence[str],
    date_col: str,
    name: str,
) -> pl.LazyFrame:
    """Per subject: the earliest ``date_col`` in ``dated`` on/after its origin (same keys)."""
    pairs = (
        subjects.select("_rid", "origin_date", *keys)
        .join(dated.select(*keys, date_col), on=list(keys), how="inner")
        .filter(pl.col(date_col) >= pl.col("origin_date"))
        .group_by("_rid")
        .agg(pl.col(date_col).min().alias(name))
    )
    return subjects.join(pairs, on="_rid", how="left")


def _add_moves(subjects: pl.LazyFrame, events: Frame | None, eps: pl.LazyFrame) -> pl.LazyFrame:
    """`_t_moved`: the first date on/after the origin when the child turned up in another LA.

    ``moved_la`` events (journeys) sit on the child's record in the *new* LA, dated at the
    first referral there, with ``attrs`` JSON ``{"from_la": ..., "to_la": ...}``. The record
    in the LA left is found through ``upn_hash`` (LAchildIDs differ between LAs), and its
    subjects are censored at that date.
    """
    if events is None:
        return subjects.with_columns(_t_moved=pl.lit(None, pl.Date))
    ev = _lazy(events)
    _require(ev, ["child_id", "la_code", "date", "event", "attrs"], "events", "leaving the LA")
    moves = ev.filter(pl.col("event") == "moved_la").select(
        pl.col("child_id").cast(pl.String),
        pl.col("la_code").cast(pl.String),
        pl.col("date").cast(pl.Date).alias("_move_date"),
        pl.col("attrs").cast(pl.String).str.json_path_match("$.from_la").alias("_from_la"),
    )
    upns = (
        eps.select("child_id", "la_code", "upn_hash")
        .filter(pl.col("upn_hash").is_not_null())
        .unique()
    )
    left = (
        moves.join(upns, on=["child_id", "la_code"], how="inner")  # the record moved to
        .select("upn_hash", pl.col("_from_la").alias("la_code"), "_move_date")
        .join(upns, on=["upn_hash", "la_code"], how="inner")  # the record in the LA left
        .select("child_id", "la_code", "_move_date")
    )
    return _first_on_or_after(subjects, left, ["child_id", "la_code"], "_move_date", "_t_moved")


def _add_care(subjects: pl.LazyFrame, cla: Frame | None) -> pl.LazyFrame:
    """`_t_event` = entering care; `_in_care_at_origin` when a CLA episode spans the origin."""
    if cla is None:
        return subjects.with_columns(
            _t_event=pl.col("entered_care_date"), _in_care_at_origin=pl.lit(False)
        )
    lf = _lazy(cla)
    _require(lf, ["child_id", "la_code", "decom", "dec"], "cla", "entering care")
    lf = _cast_dates(lf, ["decom", "dec"]).with_columns(
        pl.col("child_id").cast(pl.String), pl.col("la_code").cast(pl.String)
    )
    if "census_year" in _columns(lf):  # raw returns: latest return wins per episode
        lf = merge_cla_episodes(lf)[0]
    # Same definition as episodes.entered_care_date: starts of periods of care, so a
    # placement move inside a period of care is not an entry (cinresearch.journeys.linkage).
    starts = care_entries(lf)
    out = _first_on_or_after(subjects, starts, ["child_id", "la_code"], "decom", "_t_event")
    spans = (
        subjects.select("_rid", "origin_date", "child_id", "la_code")
        .join(lf.select("child_id", "la_code", "decom", "dec"), on=["child_id", "la_code"])
        .filter(
            (pl.col("decom") < pl.col("origin_date"))
            & (pl.col("dec").is_null() | (pl.col("dec") > pl.col("origin_date")))
        )
        .select("_rid", _in_care_at_origin=pl.lit(True))
        .unique("_rid")
    )
    return out.join(spans, on="_rid", how="left").with_columns(
        pl.col("_in_care_at_origin").fill_null(False)
    )


def _add_npd(subjects: pl.LazyFrame, npd: Frame | None) -> pl.LazyFrame:
    """NPD exclusions: `_t_event` (31 Aug of the first academic year with a suspension or
    permanent exclusion, ending on/after the origin), `_npd_linked`, `_npd_last_end`."""
    if npd is None:
        raise ValueError("outcome 'exclusion' needs npd (the npd_outcomes table)")
    lf = _lazy(npd)
    cols = _columns(lf)
    if "child_id" in cols:
        keys = ["child_id", "la_code"] if "la_code" in cols else ["child_id"]
    elif "upn_hash" in cols:
        keys = ["upn_hash"]
    else:
        raise ValueError("npd needs child_id (and la_code) or upn_hash to join episodes")
    _require(lf, ["academic_year"], "npd", "exclusion outcome")
    excluded = pl.lit(False)
    if "permanent_exclusion" in cols:
        excluded = excluded | pl.col("permanent_exclusion").cast(pl.Boolean).fill_null(False)
    if "suspensions" in cols:
        excluded = excluded | (pl.col("suspensions").cast(pl.Int32).fill_null(0) > 0)
    lf = lf.select(
        *[pl.col(k).cast(pl.String) for k in keys],
        _year_end=pl.date(pl.col("academic_year").cast(pl.Int32), 8, 31),
        _excluded=excluded,
    )
    coverage = lf.group_by(keys).agg(_npd_last_end=pl.col("_year_end").max())
    overall_end = lf.select(_npd_overall_end=pl.col("_year_end").max())
    hits = lf.filter(pl.col("_excluded")).select(*keys, "_year_end")
    out = _first_on_or_after(subjects, hits, keys, "_year_end", "_t_event")
    return (
        out.join(coverage, on=keys, how="left")
        .join(overall_end, how="cross")
        .with_columns(_npd_linked=pl.col("_npd_last_end").is_not_null())
    )
