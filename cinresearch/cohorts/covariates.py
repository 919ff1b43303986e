"""Age, 18th birthday, DfE age band and referral-source group as polars expressions.

Ages follow the journeys' rule (one implementation:
:func:`cinresearch.journeys.episodes.age_in_years`): a 29 February birthday is reached on
1 March in non-leap years.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from cinresearch.codes import AGE_BANDS
from cinresearch.cohorts.definitions import load_definitions
from cinresearch.journeys.episodes import age_in_years

AGE_BAND_DTYPE = pl.Enum(list(AGE_BANDS))


def _col(c: str | pl.Expr) -> pl.Expr:
    return pl.col(c) if isinstance(c, str) else c


def age_expr(birth: str | pl.Expr, at: str | pl.Expr) -> pl.Expr:
    """Age in completed years at ``at`` (Int16). Negative before birth, null if either is null.

    A 29 February birthday counts as reached on 1 March in non-leap years.
    """
    return age_in_years(_col(birth), _col(at))


def birthday_expr(birth: str | pl.Expr, years: int = 18) -> pl.Expr:
    """Date of the ``years``-th birthday. A 29 February birth gives 1 March in non-leap years."""
    b = _col(birth)
    shifted = b.dt.offset_by(f"{years}y")  # polars clamps 29 Feb to 28 Feb
    leapling = (b.dt.month() == 2) & (b.dt.day() == 29) & (shifted.dt.day() == 28)
    return pl.when(leapling).then(shifted + pl.duration(days=1)).otherwise(shifted)


def age_band_expr(
    at: str | pl.Expr = "referral_date",
    birth_date: str | pl.Expr = "birth_date",
    expected_birth_date: str | pl.Expr | None = "expected_birth_date",
) -> pl.Expr:
    """DfE age band at ``at``: unborn, under 1, 1-4, 5-9, 10-15, 16+.

    The result is an ordered Enum column named "age_band".
    The child counts as unborn when ``at`` is before the birth date. Without a birth date,
    the expected birth date is used: before it the child is unborn, after it the expected
    date stands in for the birth date. The band is null when both dates are missing.
    Ages 18 and over fall in "16+".
    """
    birth = _col(birth_date)
    if expected_birth_date is not None:
        birth = pl.coalesce(birth, _col(expected_birth_date))
    a = _col(at)
    age = age_expr(birth, a)
    band = (
        pl.when(birth.is_null() | a.is_null())
        .then(pl.lit(None, dtype=pl.String))
        .when(a < birth)
        .then(pl.lit("unborn"))
        .when(age < 1)
        .then(pl.lit("under 1"))
        .when(age < 5)
        .then(pl.lit("1-4"))
        .when(age < 10)
        .then(pl.lit("5-9"))
        .when(age < 16)
        .then(pl.lit("10-15"))
        .otherwise(pl.lit("16+"))
    )
    return band.cast(AGE_BAND_DTYPE).alias("age_band")


def referral_source_group_expr(
    source: str | pl.Expr = "referral_source", groups: Mapping[str, str] | None = None
) -> pl.Expr:
    """Referral source grouped by the code's leading number (e.g. "3B" → "Health services").

    The groups come from ``covariates.referral_source_groups`` in cohorts.yaml. Codes with an
    unknown leading number give null.
    """
    if groups is None:
        groups = load_definitions()["covariates"]["referral_source_groups"]
    mapping = {str(k): str(v) for k, v in groups.items()}
    leading = _col(source).cast(pl.String).str.strip_chars().str.extract(r"^(\d+)", 1)
    return leading.replace_strict(mapping, default=None, return_dtype=pl.String)
