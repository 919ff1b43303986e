"""England working days: hand-worked boundaries, holiday calendar, and consistency properties."""

from __future__ import annotations

import time
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cinresearch.workdays import (
    add_working_days,
    bank_holidays,
    is_working_day,
    working_days_between,
)


def wd(start: date | None, end: date | None) -> int | None:
    frame = pl.DataFrame({"s": [start], "e": [end]}, schema={"s": pl.Date, "e": pl.Date})
    return frame.select(working_days_between("s", "e").alias("n")).item()


def add(start: date, n: int) -> date:
    frame = pl.DataFrame({"s": [start]}, schema={"s": pl.Date})
    return frame.select(add_working_days("s", n).alias("d")).item()


# ---------------------------------------------------------------------------- calendar


def test_bank_holidays_2022_include_substitutes_and_one_offs() -> None:
    got = [d for d in bank_holidays(2022, 2022)]
    assert got == [
        date(2022, 1, 3),  # New Year's Day (Sat 1 Jan) substitute
        date(2022, 4, 15),  # Good Friday
        date(2022, 4, 18),  # Easter Monday
        date(2022, 5, 2),
        date(2022, 6, 2),  # Spring bank holiday moved for the Platinum Jubilee
        date(2022, 6, 3),  # Platinum Jubilee
        date(2022, 8, 29),
        date(2022, 9, 19),  # State funeral of Queen Elizabeth II
        date(2022, 12, 26),  # Boxing Day
        date(2022, 12, 27),  # Christmas Day (Sun 25 Dec) substitute
    ]


def test_bank_holidays_exclude_weekend_dates_and_cover_the_range() -> None:
    days = bank_holidays()
    assert all(d.weekday() < 5 for d in days)
    assert min(days).year == 2010 and max(days).year == 2030
    assert date(2021, 12, 27) in days and date(2021, 12, 28) in days
    assert date(2021, 12, 25) not in days  # a Saturday
    assert date(2023, 5, 8) in days  # coronation of King Charles III
    assert date(2011, 4, 29) in days  # royal wedding
    assert date(2020, 5, 8) in days and date(2020, 5, 4) not in days  # VE day moved May Day


# ---------------------------------------------------------------------------- counting rule


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2024, 3, 6), date(2024, 3, 6), 0),  # same day
        (date(2024, 3, 8), date(2024, 3, 11), 1),  # Fri -> Mon
        (date(2024, 3, 8), date(2024, 3, 9), 0),  # Fri -> Sat
        (date(2024, 3, 9), date(2024, 3, 11), 1),  # Sat -> Mon
        (date(2024, 3, 4), date(2024, 3, 8), 4),  # Mon -> Fri
        (date(2024, 3, 8), date(2024, 3, 22), 10),  # two weeks
        # Easter 2024: Good Friday 29 Mar, Easter Monday 1 Apr
        (date(2024, 3, 28), date(2024, 4, 2), 1),
        (date(2024, 3, 28), date(2024, 3, 31), 0),  # to the 31 March census date (Sunday)
        # Christmas 2021: Sat 25 / Sun 26 -> substitute Mon 27 and Tue 28
        (date(2021, 12, 24), date(2021, 12, 29), 1),
        (date(2021, 12, 24), date(2022, 1, 4), 4),  # + Mon 3 Jan 2022 substitute New Year
        # Christmas 2022: Sun 25 -> Boxing Day Mon 26, Christmas substitute Tue 27
        (date(2022, 12, 23), date(2022, 12, 28), 1),
        (date(2022, 12, 23), date(2022, 12, 27), 0),
        # Queen Elizabeth II's state funeral, Mon 19 Sep 2022
        (date(2022, 9, 16), date(2022, 9, 20), 1),
        (date(2022, 9, 16), date(2022, 9, 19), 0),
        # Coronation, Mon 8 May 2023 (and May Day Mon 1 May 2023)
        (date(2023, 5, 5), date(2023, 5, 9), 1),
        (date(2023, 4, 28), date(2023, 5, 12), 8),
        # leap days: 2020-02-29 is a Saturday, 2024-02-29 a Thursday
        (date(2020, 2, 28), date(2020, 2, 29), 0),
        (date(2020, 2, 28), date(2020, 3, 2), 1),
        (date(2020, 2, 29), date(2020, 3, 2), 1),
        (date(2024, 2, 28), date(2024, 2, 29), 1),
        (date(2024, 2, 28), date(2024, 3, 1), 2),
        # end before start: minus the working days in (end, start]
        (date(2024, 3, 11), date(2024, 3, 8), -1),
        (date(2024, 4, 2), date(2024, 3, 28), -1),
    ],
)
def test_working_days_between_hand_worked(start: date, end: date, expected: int) -> None:
    assert wd(start, end) == expected


def test_null_in_null_out() -> None:
    assert wd(None, date(2024, 1, 1)) is None
    assert wd(date(2024, 1, 1), None) is None


def test_accepts_expressions_literals_and_datetimes() -> None:
    frame = pl.DataFrame({"s": [date(2024, 3, 8)]}).with_columns(
        ts=pl.col("s").cast(pl.Datetime("us"))
    )
    out = frame.select(
        a=working_days_between(pl.col("s"), date(2024, 3, 11)),
        b=working_days_between("ts", pl.lit(date(2024, 3, 22))),
        c=is_working_day("s"),
    )
    assert out.row(0) == (1, 10, True)


# ---------------------------------------------------------------------------- 45 / 15 working days


@pytest.mark.parametrize(
    ("start", "day_45"),
    [
        # no holidays: 9 weeks exactly
        (date(2024, 9, 2), date(2024, 11, 4)),
        # Christmas 2024: Wed 25, Thu 26 Dec, Wed 1 Jan 2025 -> 3 days later than Mon 3 Feb
        (date(2024, 12, 2), date(2025, 2, 6)),
        # Easter 2023 + May Day + coronation: 4 holidays -> Fri 19 May rather than Mon 15 May
        (date(2023, 3, 13), date(2023, 5, 19)),
    ],
)
def test_45_working_day_assessment_deadline(start: date, day_45: date) -> None:
    assert add(start, 45) == day_45
    assert wd(start, day_45) == 45  # authorised on the deadline: within 45
    assert wd(start, day_45 - timedelta(days=1)) == 44
    assert wd(start, add(day_45, 1)) == 46  # the next working day is late


def test_icpc_target_15_working_days_across_the_queens_funeral() -> None:
    # S47 start Fri 2 Sep 2022: 3 weeks -> Fri 23 Sep, but Mon 19 Sep is a bank holiday.
    assert add(date(2022, 9, 2), 15) == date(2022, 9, 26)


def test_add_working_days_from_weekend_and_negative() -> None:
    assert add(date(2024, 3, 9), 1) == date(2024, 3, 11)  # Sat + 1 -> Mon
    assert add(date(2024, 3, 9), -1) == date(2024, 3, 7)  # Sat - 1 -> Thu (Fri is day 0)
    assert add(date(2024, 3, 11), -1) == date(2024, 3, 8)  # Mon - 1 -> Fri
    assert add(date(2021, 12, 24), 1) == date(2021, 12, 29)


def test_add_working_days_column_n_and_nulls() -> None:
    frame = pl.DataFrame(
        {"s": [date(2024, 3, 8), None, date(2024, 3, 8)], "n": [1, 5, None]},
        schema={"s": pl.Date, "n": pl.Int32},
    )
    got = frame.select(add_working_days("s", "n").alias("d"))["d"].to_list()
    assert got == [date(2024, 3, 11), None, None]


# ---------------------------------------------------------------------------- properties

_HOLIDAYS = set(bank_holidays(2000, 2040))


def _naive_between(start: date, end: date) -> int:
    sign, lo, hi = (1, start, end) if end >= start else (-1, end, start)
    n = 0
    day = lo + timedelta(days=1)
    while day <= hi:
        n += day.weekday() < 5 and day not in _HOLIDAYS
        day += timedelta(days=1)
    return sign * n


_dates = st.dates(min_value=date(2012, 1, 1), max_value=date(2029, 12, 31))


@settings(max_examples=60, deadline=None)
@given(pairs=st.lists(st.tuples(_dates, st.integers(-400, 400)), min_size=1, max_size=40))
def test_matches_naive_count_and_is_antisymmetric(pairs: list[tuple[date, int]]) -> None:
    starts = [s for s, _ in pairs]
    ends = [s + timedelta(days=k) for s, k in pairs]
    frame = pl.DataFrame({"s": starts, "e": ends})
    out = frame.select(fwd=working_days_between("s", "e"), back=working_days_between("e", "s"))
    assert out["fwd"].to_list() == [_naive_between(s, e) for s, e in zip(starts, ends, strict=True)]
    assert (out["fwd"] == -out["back"]).all()


@settings(max_examples=60, deadline=None)
@given(
    pairs=st.lists(st.tuples(_dates, st.integers(-120, 120).filter(bool)), min_size=1, max_size=40)
)
def test_add_is_inverse_of_between(pairs: list[tuple[date, int]]) -> None:
    frame = pl.DataFrame({"s": [s for s, _ in pairs], "n": [n for _, n in pairs]})
    out = frame.with_columns(e=add_working_days("s", "n")).with_columns(
        back=working_days_between("s", "e"),
        working=is_working_day("e"),
        # the result is the earliest (latest, for n < 0) such day
        one_closer=working_days_between("s", pl.col("e") - pl.duration(days=1)),
    )
    assert (out["back"] == out["n"]).all()
    assert out["working"].all()
    positive = out.filter(pl.col("n") > 0)
    assert (positive["one_closer"] == positive["n"] - 1).all()


def test_vectorised_speed_two_million_rows() -> None:
    rng = np.random.default_rng(1)
    n = 2_000_000
    starts = np.datetime64("2015-01-01") + rng.integers(0, 3_000, n)
    frame = pl.DataFrame(
        {
            "s": starts.astype("datetime64[D]"),
            "e": (starts + rng.integers(0, 200, n)).astype("datetime64[D]"),
        }
    )
    t0 = time.perf_counter()
    out = frame.select(w=working_days_between("s", "e"), target=add_working_days("s", 45))
    elapsed = time.perf_counter() - t0
    assert out.height == n and out["w"].null_count() == 0
    assert elapsed < 10, f"working-day functions took {elapsed:.1f}s for {n:,} rows"
