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
    """England bank holidays 1980–2070 as ``datetime64[D]`` (from the ``holidays`` package)."""
    import holidays

    table = holidays.country_holidays("GB", subdiv="ENG", years=range(1980, 2071))
    return np.array(sorted(table.keys()), dtype="datetime64[D]")


@lru_cache(maxsize=1)
def busday_calendar() -> np.busdaycalendar:
    """numpy business-day calendar: Mon–Fri minus England bank holidays."""
    return np.busdaycalendar(weekmask="1111100", holidays=bank_holidays())


# Lookup tables over TABLE_START..TABLE_END: calendar fields and working-day counts, so that
# per-row date arithmetic is a couple of array look-ups (numpy datetime64 conversions are slow).
TABLE_START = day(dt.date(1900, 1, 1))
TABLE_END = day(dt.date(2070, 12, 31))


@lru_cache(maxsize=1)
def _tables() -> dict[str, np.ndarray]:
    days = np.arange(TABLE_START, TABLE_END + 1, dtype=np.int64)
    d64 = days.astype("datetime64[D]")
    months = d64.astype("datetime64[M]")
    year = months.astype("datetime64[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    dom = (d64 - months.astype("datetime64[D]")).astype(np.int64) + 1
    is_wd = np.is_busday(d64, busdaycal=busday_calendar())
    cum = np.concatenate([[0], np.cumsum(is_wd)])  # cum[i] = working days in [start, start+i)
    wd_list = days[is_wd]
    month_index = np.arange((1900 - 1970) * 12, (2071 - 1970) * 12, dtype=np.int64)
    month_first = month_index.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    return {
        "year": year,
        "month": month,
        "dom": dom,
        "cum": cum,
        "wd_list": wd_list,
        "month_first": np.concatenate([month_first, [TABLE_END + 1]]),
    }


def _ix(days: np.ndarray) -> np.ndarray:
    i = np.asarray(days, dtype=np.int64) - TABLE_START
    if i.size and (i.min() < 0 or i.max() > TABLE_END - TABLE_START):
        raise ValueError("date outside the supported range 1900-2070")
    return i


def roll_to_working_day(days: np.ndarray) -> np.ndarray:
    """Move each date forward to the next working day (unchanged if already one)."""
    t = _tables()
    return t["wd_list"][t["cum"][_ix(days)]]


def add_working_days(days: np.ndarray, n: np.ndarray | int) -> np.ndarray:
    """Date ``n`` working days after ``days`` (rolled forward to a working day first)."""
    t = _tables()
    return t["wd_list"][t["cum"][_ix(days)] + np.asarray(n, dtype=np.int64)]


def subtract_working_days(days: np.ndarray, n: np.ndarray | int) -> np.ndarray:
    """Date ``n`` working days before ``days`` (rolled backward to a working day first)."""
    t = _tables()
    last = t["cum"][_ix(days) + 1] - 1  # index of the last working day on/before the date
    return t["wd_list"][last - np.asarray(n, dtype=np.int64)]


def working_days_between(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Working days from ``start`` to ``end``: working days in [start, end) (0 = same day).

    For a start on a working day this equals the number of working days after the start
    up to and including the end (when the end is a working day): the DfE duration.
    """
    t = _tables()
    return t["cum"][_ix(end)] - t["cum"][_ix(start)]


def year_month_day(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = _tables()
    i = _ix(days)
    return t["year"][i], t["month"][i], t["dom"][i]


def census_year_of(days: np.ndarray) -> np.ndarray:
    """Census year (year ending 31 March) containing each date."""
    t = _tables()
    i = _ix(days)
    return t["year"][i] + (t["month"][i] >= 4)


def from_ymd(year: np.ndarray, month: np.ndarray, dom: np.ndarray) -> np.ndarray:
    """Day numbers of (year, month, day); days past the month end are clamped to it."""
    t = _tables()
    mi = (np.asarray(year, dtype=np.int64) - 1900) * 12 + np.asarray(month, dtype=np.int64) - 1
    first = t["month_first"][mi]
    last = t["month_first"][mi + 1] - 1
    return np.minimum(first + np.asarray(dom, dtype=np.int64) - 1, last)


def add_years(days: np.ndarray, years: int | np.ndarray) -> np.ndarray:
    """Calendar-correct ``date + years`` (29 February → 28 February in non-leap years)."""
    y, m, d = year_month_day(days)
    return from_ymd(y + np.asarray(years, dtype=np.int64), m, d)


def age_in_years(birth: np.ndarray, at: np.ndarray | int) -> np.ndarray:
    """Completed years of age at ``at`` (negative for dates before birth)."""
    by, bm, bd = year_month_day(birth)
    ay, am, ad = year_month_day(np.broadcast_to(np.asarray(at), np.shape(birth)))
    before_birthday = (am < bm) | ((am == bm) & (ad < bd))
    return ay - by - before_birthday.astype(np.int64)
