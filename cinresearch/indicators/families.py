"""One function per official measure family (``family:`` in indicators.yaml).

Each is :func:`~cinresearch.indicators.compute_indicators` restricted to that family; keyword
arguments pass through.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import polars as pl

from cinresearch.indicators.compute import compute_indicators


def _family(
    name: str,
    data: Any,
    census_year: int | Iterable[int],
    geography: Sequence[str],
    **kwargs: Any,
) -> pl.DataFrame:
    return compute_indicators(data, census_year, geography, families=[name], **kwargs)


def referrals(
    data: Any,
    census_year: int | Iterable[int],
    geography: Sequence[str] = ("national", "la"),
    **kw: Any,
) -> pl.DataFrame:
    """Referrals in year (count, rate per 10,000, by source group, age band, sex; children referred)."""
    return _family("referrals", data, census_year, geography, **kw)


def re_referrals(
    data: Any,
    census_year: int | Iterable[int],
    geography: Sequence[str] = ("national", "la"),
    **kw: Any,
) -> pl.DataFrame:
    """Re-referrals within 12 months of the child's previous referral (count and % of referrals)."""
    return _family("re_referrals", data, census_year, geography, **kw)


def referrals_nfa(
    data: Any,
    census_year: int | Iterable[int],
    geography: Sequence[str] = ("national", "la"),
    **kw: Any,
) -> pl.DataFrame:
    """Referrals resulting in no further action (count and % of referrals)."""
    return _family("referrals_nfa", data, census_year, geography, **kw)


def children_in_need_at_31_march(
    data: Any,
    census_year: int | Iterable[int],
    geography: Sequence[str] = ("national", "la"),
    **kw: Any,
) -> pl.DataFrame:
    """CIN at 31 March: count, rate, share by age band at 31 March, sex, disability, need, duration."""
    return _family("children_in_need_at_31_march", data, census_year, geography, **kw)


def episodes_in_year(
    data: Any,
    census_year: int | Iterable[int],
    geography: Sequence[str] = ("national", "la"),
    **kw: Any,
) -> pl.DataFrame:
    """Episodes of need at any point, starting and ending in the year (count, rate, duration)."""
    return _family("episodes_in_year", data, census_year, geography, **kw)


def closure_reasons(
    data: Any,
    census_year: int | Iterable[int],
    geography: Sequence[str] = ("national", "la"),
    **kw: Any,
) -> pl.DataFrame:
    """Episodes of need ending in the year by reason for closure (count and %)."""
    return _family("closure_reasons", data, census_year, geography, **kw)


def assessments(
    data: Any,
    census_year: int | Iterable[int],
    geography: Sequence[str] = ("national", "la"),
    **kw: Any,
) -> pl.DataFrame:
    """Assessments completed, % within 45 working days, duration quantiles and C2 bands."""
    return _family("assessments", data, census_year, geography, **kw)


def section47(
    data: Any,
    census_year: int | Iterable[int],
    geography: Sequence[str] = ("national", "la"),
    **kw: Any,
) -> pl.DataFrame:
    """Section 47 enquiries started (count, rate) and children subject to one."""
    return _family("section47", data, census_year, geography, **kw)


def icpcs(
    data: Any,
    census_year: int | Iterable[int],
    geography: Sequence[str] = ("national", "la"),
    **kw: Any,
) -> pl.DataFrame:
    """Initial child protection conferences (count, rate) and % within 15 working days of S47."""
    return _family("icpcs", data, census_year, geography, **kw)


def cpp_starting(
    data: Any,
    census_year: int | Iterable[int],
    geography: Sequence[str] = ("national", "la"),
    **kw: Any,
) -> pl.DataFrame:
    """CP plans starting (count, rate, by initial category) and % second or subsequent."""
    return _family("cpp_starting", data, census_year, geography, **kw)


def cpp_at_31_march(
    data: Any,
    census_year: int | Iterable[int],
    geography: Sequence[str] = ("national", "la"),
    **kw: Any,
) -> pl.DataFrame:
    """CP plans at 31 March (count, rate, by category, age band, sex, length of plan)."""
    return _family("cpp_at_31_march", data, census_year, geography, **kw)


def cpp_ending(
    data: Any,
    census_year: int | Iterable[int],
    geography: Sequence[str] = ("national", "la"),
    **kw: Any,
) -> pl.DataFrame:
    """CP plans ending (count, rate) by length of plan (<=3m, 3-6m, 6-12m, 1-2y, 2y+)."""
    return _family("cpp_ending", data, census_year, geography, **kw)


def assessed_not_in_need(
    data: Any,
    census_year: int | Iterable[int],
    geography: Sequence[str] = ("national", "la"),
    **kw: Any,
) -> pl.DataFrame:
    """Referrals assessed, child not in need (count and % of referrals)."""
    return _family("assessed_not_in_need", data, census_year, geography, **kw)


def assessment_factors(
    data: Any,
    census_year: int | Iterable[int],
    geography: Sequence[str] = ("national", "la"),
    **kw: Any,
) -> pl.DataFrame:
    """Episodes with each factor identified at the end of assessment (count, % multi-response)."""
    return _family("assessment_factors", data, census_year, geography, **kw)


def cpp_during_year(
    data: Any,
    census_year: int | Iterable[int],
    geography: Sequence[str] = ("national", "la"),
    **kw: Any,
) -> pl.DataFrame:
    """Children subject to a CP plan at any point in the year (count, rate)."""
    return _family("cpp_during_year", data, census_year, geography, **kw)
