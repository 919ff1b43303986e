"""The cohorts definitions file (``data_contracts/cohorts.yaml``) and its vocabulary.

The vocabulary an outcome may use (origins, event sources, competing and censoring kinds,
follow-up rules), census-year windows, and the small parsers of dates and lists shared by
:class:`~cinresearch.cohorts.Cohort` and :class:`~cinresearch.cohorts.Outcome`.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

COHORTS_YAML = Path(__file__).resolve().parents[2] / "data_contracts" / "cohorts.yaml"


ORIGINS = ("referral", "closure", "cpp_start", "cpp_end")


PLAN_ORIGINS = ("cpp_start", "cpp_end")


EVENT_SOURCES = (
    "first_cpp_start",
    "next_referral",
    "next_cpp_start",
    "entered_care",
    "npd_exclusion",
)


COMPETING_KINDS = ("died", "closed_without_event")


CENSOR_KINDS = ("data_end", "birthday_18", "left_la")


FOLLOW_UPS = ("episode", "la", "npd")


@lru_cache(maxsize=8)
def _load_definitions_cached(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    for key in ("cohorts", "outcomes"):
        data.setdefault(key, {})
    return data


def load_definitions(path: str | Path | None = None) -> dict[str, Any]:
    """Parsed ``data_contracts/cohorts.yaml``: ``cohorts``, ``outcomes`` and ``covariates``."""
    return _load_definitions_cached(str(Path(path) if path else COHORTS_YAML))


def census_year_window(first: int, last: int | None = None) -> tuple[date, date]:
    """Dates covered by census years ``first..last``: 1 April ``first-1`` to 31 March ``last``."""
    last = first if last is None else last
    if last < first:
        raise ValueError(f"census years out of order: {first} > {last}")
    return date(first - 1, 4, 1), date(last, 3, 31)


def _as_date(value: date | str | None, what: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError as err:
            raise ValueError(f"{what}: {value!r} is not an ISO date (YYYY-MM-DD)") from err
    raise TypeError(f"{what}: expected a date or ISO string, got {type(value).__name__}")


def _as_str_tuple(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)
