"""The rows and groups a model or test can use, and a record of what was left out and why.

A survival frame (:func:`cinresearch.cohorts.build_survival_frame`) holds every subject of a
cohort. Before a Cox or discrete-time model (or a Gray's test) some cannot be used: rows with
a missing covariate, born children whose sex is not known (too few to estimate), and levels
of a grouping with so few events that their ratio cannot be estimated. The functions here
make those choices in one place and return what they left out, so a report can say it (the
words, with counts under disclosure control, are :func:`cinresearch.report.text.left_out_notes`).

Unborn children (age band "unborn") are never dropped for their sex, which is not known before
birth: see :func:`model_frame`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from cinresearch.codes import AGE_BANDS
from cinresearch.survival import gray_test

__all__ = [
    "UNBORN",
    "LeftOut",
    "drop_incomplete",
    "gray_tests",
    "model_frame",
    "sparse_levels",
]

#: The age band of a child referred before birth (the first of :data:`codes.AGE_BANDS`).
UNBORN = AGE_BANDS[0]


@dataclass(frozen=True)
class LeftOut:
    """What :func:`model_frame` changed or left out (counts are records).

    ``unborn``: unborn records whose sex was set to the reference (kept); ``unknown_sex``: born
    children of unknown sex dropped; ``incomplete``: records with a missing covariate dropped;
    ``sparse_levels``: levels dropped for having fewer than ``min_events`` events.
    """

    unborn: int = 0
    unknown_sex: int = 0
    incomplete: int = 0
    sparse_levels: tuple[str, ...] = ()
    min_events: int = 5


def model_frame(
    frame: pl.DataFrame,
    covariates: Sequence[str],
    *,
    event: str = "event",
    min_events: int = 5,
    sparse_column: str | None = "age_band",
    known_sex: bool = True,
    sex_reference: str = "M",
) -> tuple[pl.DataFrame, LeftOut]:
    """The rows a model can use, and what was left out (:class:`LeftOut`).

    Unborn children (``age_band`` "unborn") stay in: when both "age_band" and "sex" are
    covariates their sex (mostly "U", not known before birth) is set to ``sex_reference``,
    so sex is left out for them and the unborn age group's ratio is theirs (vs the reference
    age band, for the reference sex); the sex ratio is estimated among born children only.
    Drops born children whose sex is not known (too few to model, when ``known_sex`` and
    "sex" is a covariate), rows with a missing covariate, and levels of ``sparse_column``
    with fewer than ``min_events`` events (``event`` summed; their ratios cannot be
    estimated).
    """
    out = frame
    unborn = unknown_sex = 0
    if "sex" in covariates and "age_band" in covariates and "age_band" in out.columns:
        is_unborn = (pl.col("age_band").cast(pl.String) == UNBORN).fill_null(False)
        unborn = int(out.select(is_unborn.sum()).item())
        if unborn:
            out = out.with_columns(
                sex=pl.when(is_unborn)
                .then(pl.lit(sex_reference))
                .otherwise(pl.col("sex").cast(pl.String))
            )
    if known_sex and "sex" in covariates:
        kept = out.filter(pl.col("sex").is_in(["M", "F"]) | pl.col("sex").is_null())
        unknown_sex = out.height - kept.height
        out = kept
    out, incomplete = drop_incomplete(out, covariates)
    few: list[str] = []
    if sparse_column and sparse_column in covariates:
        few = sparse_levels(out, sparse_column, event, min_events)
        if few:
            out = out.filter(~pl.col(sparse_column).cast(pl.String).is_in(few))
    return out, LeftOut(unborn, unknown_sex, incomplete, tuple(few), min_events)


def drop_incomplete(frame: pl.DataFrame, columns: Sequence[str]) -> tuple[pl.DataFrame, int]:
    """Rows with every one of ``columns`` present, and how many were dropped (to report it)."""
    cols = list(columns)
    if not cols:
        return frame, 0
    kept = frame.drop_nulls(subset=cols)
    return kept, frame.height - kept.height


def sparse_levels(
    frame: pl.DataFrame, column: str, event: str = "event", min_events: int = 5
) -> list[str]:
    """Levels of ``column`` with fewer than ``min_events`` events (too few to model), sorted."""
    counts = frame.group_by(pl.col(column).cast(pl.String)).agg(pl.col(event).sum().alias("n"))
    return sorted(counts.filter(pl.col("n") < min_events)[column].drop_nulls().to_list())


def gray_tests(
    frame: pl.DataFrame,
    groups: Mapping[str, str],
    *,
    cause: int = 1,
    event_type: str = "event_type",
    min_events: int = 5,
) -> tuple[pl.DataFrame, list[str]]:
    """Gray's test of equal cumulative incidence across the levels of each grouping column.

    ``groups`` maps a label ("Age band") to a column. Levels with fewer than ``min_events``
    events of ``cause`` are left out of that test (a test on a handful of events is not
    informative);
    the notes say which. Returns ``comparison, groups, statistic, df, p`` (one row per test
    with at least two levels left; :func:`cinresearch.survival.gray_test` on the rows kept)
    and the notes.
    """
    rows = []
    notes = []
    for label, column in groups.items():
        flagged = frame.with_columns(_hit=(pl.col(event_type) == cause).cast(pl.Int64))
        few = sparse_levels(flagged, column, "_hit", min_events)
        kept = flagged.filter(~pl.col(column).cast(pl.String).is_in(few)).drop("_hit")
        levels = kept[column].cast(pl.String).n_unique()
        if few:
            notes.append(
                f"{label}: groups with fewer than {min_events} events left out of the test: "
                f"{', '.join(few)}."
            )
        if levels < 2:
            notes.append(f"{label}: fewer than two groups to compare; no test.")
            continue
        test = gray_test(kept, event=event_type, cause=cause, group=column).row(0, named=True)
        rows.append(
            {
                "comparison": label,
                "groups": levels,
                "statistic": test["statistic"],
                "df": test["df"],
                "p": test["p"],
            }
        )
    schema = {
        "comparison": pl.String,
        "groups": pl.Int64,
        "statistic": pl.Float64,
        "df": pl.Int64,
        "p": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema), notes
