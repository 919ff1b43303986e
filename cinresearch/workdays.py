"""England working days: Monday to Friday excluding England (and Wales) bank holidays.

Working-day durations drive the CIN timeliness measures (assessments within 45 working days,
ICPCs within 15 working days of the section 47 start). The holiday calendar comes from the
``holidays`` package (``country_holidays("GB", subdiv="ENG")``), which ships its rules, so nothing
is fetched at run time. It includes substitute ("observed") days, e.g. 27-28 Dec 2021, and one-off
bank holidays (royal wedding 29 Apr 2011, jubilees 2012/2022, the Queen's state funeral 19 Sep 2022,
the coronation 8 May 2023).

Counting rule (the DfE/COLLECT convention for "working days from A to B"):

    working_days_between(start, end) = number of working days d with start < d <= end

so the start day itself is not counted and the end day is: same day -> 0, Friday -> the next
Monday -> 1, a Friday start and an authorisation on the Friday two weeks later -> 10. Weekend or
holiday start dates need no special handling (Saturday -> Monday = 1). If ``end < start`` the
result is negative: minus the number of working days d with end < d <= start, so that
``working_days_between(a, b) == -working_days_between(b, a)``. Null if either date is null.

``add_working_days(date, n)`` is the inverse for n != 0: the n-th working day after ``date``
(before it for negative n), i.e. the earliest working day ``e`` with
``working_days_between(date, e) == n``. So the ICPC target for an S47 enquiry starting on a
Friday is ``add_working_days(s47_start, 15)``, the third Friday after (absent holidays). For n = 0
a non-working ``date`` is rolled back to the latest working day before it.

Both are polars expressions backed by polars' native business-day kernels, so they run on
millions of rows in well under a second. Bank holidays are known for
``HOLIDAY_YEARS`` (2000-2040); outside that range only weekends are excluded.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta

import holidays as _holidays
import polars as pl

__all__ = [
    "HOLIDAY_YEARS",
    "add_working_days",
    "bank_holidays",
    "is_working_day",
    "working_days_between",
]

#: Years (inclusive) whose England bank holidays the vectorised functions exclude by default.
HOLIDAY_YEARS: tuple[int, int] = (2000, 2040)

DateLike = pl.Expr | str | date


@functools.cache
def _bank_holidays(start_year: int, end_year: int) -> tuple[date, ...]:
    calendar = _holidays.country_holidays("GB", subdiv="ENG", years=range(start_year, end_year + 1))
    # Keep only the days that are lost to work: a holiday falling at a weekend is replaced by a
    # substitute weekday ("... (observed)"), which the package lists separately.
    return tuple(sorted(day for day in calendar if day.weekday() < 5))


def bank_holidays(start_year: int = 2010, end_year: int = 2030) -> list[date]:
    """England bank holidays on weekdays (the non-working days) for the years, inclusive.

    Includes substitute days and one-off bank holidays; excludes the weekend dates they replace
    (e.g. for 2021 it lists Mon 27 and Tue 28 Dec, not Sat 25 and Sun 26 Dec). Cached.
    """
    if end_year < start_year:
        raise ValueError(f"end_year {end_year} is before start_year {start_year}")
    return list(_bank_holidays(int(start_year), int(end_year)))


def _default_holidays() -> list[date]:
    return bank_holidays(*HOLIDAY_YEARS)


def _as_date_expr(value: DateLike) -> pl.Expr:
    """A column name, expression or Python date as a ``pl.Date`` expression."""
    if isinstance(value, pl.Expr):
        expr = value
    elif isinstance(value, str):
        expr = pl.col(value)
    elif isinstance(value, datetime):
        expr = pl.lit(value.date(), dtype=pl.Date)
    elif isinstance(value, date):
        expr = pl.lit(value, dtype=pl.Date)
    else:
        raise TypeError(f"expected a column name, polars expression or date, got {type(value)!r}")
    return expr.cast(pl.Date)


def working_days_between(
    start: DateLike,
    end: DateLike,
    *,
    holidays: list[date] | None = None,
) -> pl.Expr:
    """Working days after ``start`` up to and including ``end`` (Int32 expression).

    Same day -> 0; Friday -> Monday -> 1; negative when ``end < start`` (see module docstring);
    null if either is null. ``holidays`` defaults to England bank holidays 2000-2040.
    """
    hols = _default_holidays() if holidays is None else holidays
    start_expr, end_expr = _as_date_expr(start), _as_date_expr(end)
    one_day = timedelta(days=1)
    # polars counts business days in the half-open interval [lo, hi); shifting both ends by one
    # day gives (lo, hi], the DfE convention. polars' own sign convention for hi < lo is not the
    # mirror image of this, so count on the ordered pair and apply the sign ourselves (the sign
    # is null when either date is null, which makes the result null).
    lo = pl.min_horizontal(start_expr, end_expr)
    hi = pl.max_horizontal(start_expr, end_expr)
    sign = (end_expr >= start_expr).cast(pl.Int32) * 2 - 1
    count = pl.business_day_count(lo + one_day, hi + one_day, holidays=hols)
    return (count * sign).cast(pl.Int32)


def add_working_days(
    date_expr: DateLike,
    n: int | pl.Expr | str,
    *,
    holidays: list[date] | None = None,
) -> pl.Expr:
    """The ``n``-th working day after ``date_expr`` (before it if ``n < 0``), as a Date expression.

    Consistent with :func:`working_days_between`: for n != 0 the result ``e`` is a working day with
    ``working_days_between(date_expr, e) == n``. A start on a weekend/holiday counts from it, e.g.
    Saturday + 1 -> Monday. ``n`` may be an int, a column name or an expression; null propagates.
    """
    hols = _default_holidays() if holidays is None else holidays
    n_expr = pl.col(n) if isinstance(n, str) else n
    # Rolling a non-working start back to the previous working day W leaves "the n-th working
    # day after the start" unchanged, because no working day lies strictly between W and start.
    return _as_date_expr(date_expr).dt.add_business_days(n_expr, holidays=hols, roll="backward")


def is_working_day(date_expr: DateLike, *, holidays: list[date] | None = None) -> pl.Expr:
    """True if the date is a Monday-Friday that is not an England bank holiday."""
    hols = _default_holidays() if holidays is None else holidays
    return _as_date_expr(date_expr).dt.is_business_day(holidays=hols)
