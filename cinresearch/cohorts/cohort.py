"""Cohorts: which subjects enter a survival frame, and the criteria that select them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from cinresearch.codes import AGE_BANDS
from cinresearch.cohorts.definitions import (
    ORIGINS,
    _as_date,
    _as_str_tuple,
    census_year_window,
    load_definitions,
)


@dataclass(frozen=True)
class Cohort:
    """Which subjects enter a survival frame.

    ``origin`` names the date that must fall in the window (referral, closure, cpp_start,
    cpp_end). ``census_years=(2019, 2021)`` means 1 April 2018 to 31 March 2021. You can give
    ``window=(start, end)`` (inclusive dates) instead. With neither, every date is in.
    With ``include_open=True`` the cohort is *prevalent*: subjects whose origin is on or before
    the window end and who are still at risk on the window start. Those with an earlier
    origin enter late (left truncation at the window start). ``where`` is a polars
    expression, or a polars SQL string, evaluated on the subject frame. It sees the episode
    columns with their stored codes (e.g. ``referral_source = '3B'``) plus ``origin_date``,
    ``end_date``, ``age_band``, ``age_at_origin``, ``referral_source_group`` and
    ``prior_cpp``. It is left out of equality and hashing.
    "First referral" means first in the data: referrals before the first return are unknown.
    """

    name: str
    origin: str = "referral"
    census_years: tuple[int, int] | None = None
    window: tuple[date, date] | None = None
    first_referral_only: bool = False
    age_bands: tuple[str, ...] | None = None
    exclude_nfa: bool = True
    la_codes: tuple[str, ...] | None = None
    where: pl.Expr | str | None = field(default=None, compare=False, hash=False)
    include_open: bool = False
    outcome: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.origin not in ORIGINS:
            raise ValueError(f"cohort {self.name!r}: origin must be one of {ORIGINS}")
        years = self.census_years
        if years is not None:
            if isinstance(years, int):
                years = (years, years)
            years = tuple(int(y) for y in years)
            if len(years) != 2 or years[0] > years[1]:
                raise ValueError(
                    f"cohort {self.name!r}: census_years must be (first, last), got {years}"
                )
            object.__setattr__(self, "census_years", years)
        if self.window is not None:
            if years is not None:
                raise ValueError(f"cohort {self.name!r}: give census_years or window, not both")
            start, end = (_as_date(d, f"cohort {self.name!r} window") for d in self.window)
            if start is None or end is None or start > end:
                raise ValueError(f"cohort {self.name!r}: window must be (start <= end)")
            object.__setattr__(self, "window", (start, end))
        bands = _as_str_tuple(self.age_bands)
        if bands is not None:
            unknown = sorted(set(bands) - set(AGE_BANDS))
            if unknown:
                raise ValueError(
                    f"cohort {self.name!r}: unknown age bands {unknown}; use {AGE_BANDS}"
                )
        object.__setattr__(self, "age_bands", bands)
        object.__setattr__(self, "la_codes", _as_str_tuple(self.la_codes))
        if self.where is not None and not isinstance(self.where, (str, pl.Expr)):
            raise TypeError(f"cohort {self.name!r}: where must be a polars Expr or SQL string")

    @property
    def window_dates(self) -> tuple[date | None, date | None]:
        """(start, end) of the selection window, inclusive; (None, None) when unrestricted."""
        if self.census_years is not None:
            return census_year_window(*self.census_years)
        if self.window is not None:
            return self.window
        return None, None

    def where_expr(self) -> pl.Expr | None:
        """The ``where`` filter as a polars expression (SQL strings are parsed here)."""
        if self.where is None:
            return None
        return pl.sql_expr(self.where) if isinstance(self.where, str) else self.where


def _cohort_from_mapping(name: str, spec: Mapping[str, Any]) -> Cohort:
    fields = {f.name for f in dataclasses.fields(Cohort)}
    unknown = sorted(set(spec) - fields)
    if unknown:
        raise ValueError(f"cohort {name!r}: unknown keys {unknown}; allowed {sorted(fields)}")
    kwargs = dict(spec)
    kwargs.setdefault("name", name)
    if isinstance(kwargs.get("description"), str):
        kwargs["description"] = " ".join(kwargs["description"].split())
    return Cohort(**kwargs)


def define_cohort(
    spec: str | Mapping[str, Any] | Cohort, /, path: str | Path | None = None, **overrides: Any
) -> Cohort:
    """A :class:`Cohort` from a preset name in ``cohorts.yaml``, a dict, or a Cohort.

    Keyword ``overrides`` replace fields, so a notebook parameter cell can say
    ``define_cohort("referrals_2019_2021", la_codes=["201"])``.
    """
    if isinstance(spec, Cohort):
        cohort = spec
    elif isinstance(spec, str):
        presets = load_definitions(path)["cohorts"]
        if spec not in presets:
            raise ValueError(f"unknown cohort {spec!r}; named cohorts: {sorted(presets)}")
        cohort = _cohort_from_mapping(spec, presets[spec])
    elif isinstance(spec, Mapping):
        cohort = _cohort_from_mapping(str(spec.get("name", "custom")), spec)
    else:
        raise TypeError(f"define_cohort: expected a name, dict or Cohort, got {type(spec)}")
    if overrides:
        if "census_years" in overrides and "window" not in overrides:
            overrides["window"] = None
        if "window" in overrides and "census_years" not in overrides:
            overrides["census_years"] = None
        cohort = dataclasses.replace(cohort, **overrides)
    return cohort


def list_cohorts(path: str | Path | None = None) -> pl.DataFrame:
    """One row per named cohort: name, origin, window dates, filters, default outcome."""
    rows = []
    for name in load_definitions(path)["cohorts"]:
        c = define_cohort(name, path=path)
        start, end = c.window_dates
        rows.append(
            {
                "name": c.name,
                "origin": c.origin,
                "window_start": start,
                "window_end": end,
                "include_open": c.include_open,
                "exclude_nfa": c.exclude_nfa,
                "first_referral_only": c.first_referral_only,
                "age_bands": list(c.age_bands) if c.age_bands else None,
                "outcome": c.outcome,
                "description": c.description,
            }
        )
    schema = {
        "name": pl.String,
        "origin": pl.String,
        "window_start": pl.Date,
        "window_end": pl.Date,
        "include_open": pl.Boolean,
        "exclude_nfa": pl.Boolean,
        "first_referral_only": pl.Boolean,
        "age_bands": pl.List(pl.String),
        "outcome": pl.String,
        "description": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


def _cohort_criteria(cohort: Cohort) -> list[tuple[pl.Expr, str]]:
    """(keep-condition, reason when removed) for each active cohort criterion, in order."""
    select_col = {
        "referral": "referral_date",
        "closure": "closure_date",
        "cpp_start": "cpp_start",
        "cpp_end": "cpp_end",
    }[cohort.origin]
    sel = pl.col(select_col)
    start, end = cohort.window_dates
    criteria: list[tuple[pl.Expr, str]] = [(sel.is_not_null(), f"no {cohort.origin} date")]
    if start is not None and end is not None:
        lo, hi = pl.lit(start, dtype=pl.Date), pl.lit(end, dtype=pl.Date)
        if cohort.include_open:
            criteria.append((sel <= hi, f"{cohort.origin} after {end}"))
            latest = pl.max_horizontal("origin_date", "end_date")
            criteria.append((latest.is_null() | (latest >= lo), f"not at risk on or after {start}"))
        else:
            criteria.append((sel.is_between(lo, hi), f"{cohort.origin} outside {start}..{end}"))
    if cohort.la_codes is not None:
        criteria.append((pl.col("la_code").is_in(list(cohort.la_codes)), "LA not in cohort"))
    if cohort.exclude_nfa:
        criteria.append((~pl.col("referral_nfa").fill_null(False), "NFA referral"))
    if cohort.first_referral_only:
        criteria.append((pl.col("episode_order") == 1, "not the child's first referral"))
    if cohort.age_bands is not None:
        bands = pl.col("age_band").cast(pl.String).is_in(list(cohort.age_bands))
        criteria.append((bands, "age band not in cohort"))
    where = cohort.where_expr()
    if where is not None:
        criteria.append((where, "where filter"))
    return criteria
