"""Census windows, ages, DfE age bands and duration bands (working days, calendar months).

Ages and age bands are the journeys' (one implementation:
:mod:`cinresearch.journeys.episodes`); working days exclude weekends and England bank holidays
(:mod:`cinresearch.workdays`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from cinresearch.journeys.episodes import age_band_expr as band_at
from cinresearch.journeys.episodes import age_in_years
from cinresearch.workdays import working_days_between


def census_window(census_year: int) -> tuple[dt.date, dt.date]:
    """(1 April Y-1, 31 March Y): the collection window of census year ``Y``, both inclusive."""
    return dt.date(census_year - 1, 4, 1), dt.date(census_year, 3, 31)


def age_at(birth_date: pl.Expr, reference: pl.Expr | dt.date) -> pl.Expr:
    """Completed years of age at ``reference`` (a 29 February birthday falls on 1 March).

    The same rule as the journeys' ``age_at_referral`` (one implementation: ``age_in_years``).
    """
    ref = reference if isinstance(reference, pl.Expr) else pl.lit(reference, dtype=pl.Date)
    return age_in_years(birth_date, ref).cast(pl.Int32)


def age_band_expr(
    birth_date: pl.Expr, reference: pl.Expr | dt.date, expected_birth_date: pl.Expr | None = None
) -> pl.Expr:
    """DfE age band at ``reference``: unborn, under 1, 1-4, 5-9, 10-15, 16+ (or unknown).

    Unborn = a birth date after the reference date, or no birth date and an expected birth date
    after it; a child with no birth date whose expected date has passed is aged from the
    expected date (the journeys' rule). Unknown = neither date. Bands come from the journeys'
    ``age_band_expr`` (one definition).
    """
    ref = reference if isinstance(reference, pl.Expr) else pl.lit(reference, dtype=pl.Date)
    expected = expected_birth_date if expected_birth_date is not None else pl.lit(None, pl.Date)
    return band_at(age_at(birth_date, ref), birth_date, expected, ref).fill_null("unknown")


def working_day_band_expr(working_days: pl.Expr, bands: Sequence[Mapping[str, Any]]) -> pl.Expr:
    """Label of the first band whose inclusive ``max`` the value does not exceed (null stays null)."""
    expr: Any = pl
    for band in bands:
        if band.get("max") is None:
            expr = expr.when(working_days.is_not_null()).then(pl.lit(band["label"]))
            break
        expr = expr.when(working_days <= band["max"]).then(pl.lit(band["label"]))
    return expr.otherwise(pl.lit(None, pl.String))


def month_duration_band_expr(
    start: pl.Expr, end: pl.Expr, bands: Sequence[Mapping[str, Any]]
) -> pl.Expr:
    """Calendar-month duration band of ``end`` relative to ``start`` (see ``duration_bands``).

    A band with ``months: N, inclusive: true`` holds ``end <= start + N months``; with
    ``inclusive: false`` it holds ``end < start + N months``; the last band takes the rest.
    Month arithmetic clamps to the month end (30 Nov + 3 months = 28/29 Feb).
    """
    expr: Any = pl
    valid = start.is_not_null() & end.is_not_null()
    for band in bands:
        months = band.get("months")
        if months is None:
            expr = expr.when(valid).then(pl.lit(band["label"]))
            break
        bound = start.dt.offset_by(f"{int(months)}mo")
        cond = (end <= bound) if band.get("inclusive", True) else (end < bound)
        expr = expr.when(valid & cond).then(pl.lit(band["label"]))
    return expr.otherwise(pl.lit(None, pl.String))


def _working_days(start: pl.Expr, end: pl.Expr) -> pl.Expr:
    """Working days after ``start`` up to and including ``end`` (cinresearch.workdays)."""
    return working_days_between(start, end)
