"""Date arithmetic for the generator on integer day numbers (days since 1970-01-01).

The simulation keeps every date as an ``int`` day number in numpy arrays, so whole
cohorts move through the model with vector operations. Working days are Monday–Friday
excluding England bank holidays (``holidays`` package, subdivision ENG), as in the DfE
assessment (45 working days) and ICPC (15 working days) measures.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import numpy as np
import polars as pl

EPOCH = dt.date(1970, 1, 1)


def day(value: dt.date | str) -> int:
    """Day number of a date (or ISO string)."""
    if isinstance(value, str):
        value = dt.date.fromisoformat(value)
    return (value - EPOCH).days


def march31(year: int) -> int:
    """Day number of 31 March ``year`` (the census reference date of census year ``year``)."""
    return day(dt.date(year, 3, 31))


def april1(year: int) -> int:
    """Day number of 1 April ``year``."""
    return day(dt.date(year, 4, 1))


def census_year_start(census_year: int) -> int:
    """First day of census year ``census_year`` (1 April of the previous calendar year)."""
    return april1(census_year - 1)


def to_date_series(days: np.ndarray, name: str = "") -> pl.Series:
    """Integer day numbers (``-2**31`` or masked = null) to a polars Date series."""
    return pl.Series(name, np.asarray(days, dtype=np.int32)).cast(pl.Date)


def as_datetime64(days: np.ndarray) -> np.ndarray:
    return np.asarray(days, dtype=np.int64).astype("datetime64[D]")


def from_datetime64(values: np.ndarray) -> np.ndarray:
    return values.astype("datetime64[D]").astype(np.int64)


@lru_cache(maxsize=1)
def bank_holidays() -> np.ndarray:
    """England bank holidays 1980–2040 as ``datetime64[D]`` (from the ``holidays`` package)."""
    import holidays

    table = holidays.country_holidays("GB", subdiv="ENG", years=range(1980, 2041))
    return np.array(sorted(table.keys()), dtype="datetime64[D]")


@lru_cache(maxsize=1)
def busday_calendar() -> np.busdaycalendar:
    """numpy business-day calendar: Mon–Fri minus England bank holidays."""
    return np.busdaycalendar(weekmask="1111100", holidays=bank_holidays())


def roll_to_working_day(days: np.ndarray) -> np.ndarray:
    """Move each date forward to the next working day (unchanged if already one)."""
    out = np.busday_offset(as_datetime64(days), 0, roll="forward", busdaycal=busday_calendar())
    return from_datetime64(out)


def add_working_days(days: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Date ``n`` working days after ``days`` (rolled forward to a working day first)."""
    out = np.busday_offset(
        as_datetime64(days),
        np.asarray(n, dtype=np.int64),
        roll="forward",
        busdaycal=busday_calendar(),
    )
    return from_datetime64(out)


def working_days_between(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Working days from ``start`` to ``end``: working days in [start, end) (0 = same day).

    For a start on a working day this equals the number of working days after the start
    up to and including the end (when the end is a working day): the DfE duration.
    """
    return np.busday_count(as_datetime64(start), as_datetime64(end), busdaycal=busday_calendar())


def census_year_of(days: np.ndarray) -> np.ndarray:
    """Census year (year ending 31 March) containing each date."""
    d = as_datetime64(days)
    year = d.astype("datetime64[Y]").astype(np.int64) + 1970
    month = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    return year + (month >= 4)


def year_month_day(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = as_datetime64(days)
    months = d.astype("datetime64[M]")
    year = months.astype("datetime64[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    dom = (d - months.astype("datetime64[D]")).astype(np.int64) + 1
    return year, month, dom


def add_years(days: np.ndarray, years: int | np.ndarray) -> np.ndarray:
    """Calendar-correct ``date + years`` (29 February → 28 February in non-leap years)."""
    d = as_datetime64(days)
    months = d.astype("datetime64[M]")
    dom = (d - months.astype("datetime64[D]")).astype(np.int64)
    new_months = months + np.asarray(years, dtype=np.int64) * 12
    month_end = (new_months + 1).astype("datetime64[D]") - np.timedelta64(1, "D")
    out = np.minimum(new_months.astype("datetime64[D]") + dom, month_end)
    return from_datetime64(out)


def age_in_years(birth: np.ndarray, at: np.ndarray | int) -> np.ndarray:
    """Completed years of age at ``at`` (negative for dates before birth)."""
    by, bm, bd = year_month_day(birth)
    ay, am, ad = year_month_day(np.broadcast_to(np.asarray(at), np.shape(birth)))
    before_birthday = (am < bm) | ((am == bm) & (ad < bd))
    return ay - by - before_birthday.astype(np.int64)
