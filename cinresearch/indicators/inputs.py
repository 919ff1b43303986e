"""The normalised inputs every unit set reads, and the column types they are coerced to.

:class:`IndicatorInputs` holds one row per distinct episode / nested record plus population,
whichever basis they were built for (:mod:`cinresearch.indicators.sources`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import polars as pl

#: columns of the normalised episodes frame the unit sets read
EPISODE_INPUT_COLUMNS = [
    "child_id",
    "la_code",
    "referral_date",
    "closure_date",
    "closure_reason",
    "referral_source",
    "primary_need",
    "referral_nfa",
    "first_census_year",
    "last_census_year",
    "data_end",
    "birth_date",
    "expected_birth_date",
    "sex",
    "disabled",
    "rereferral_12m",
]


_DATE_COLUMNS = {
    "referral_date",
    "closure_date",
    "birth_date",
    "expected_birth_date",
    "death_date",
    "data_end",
    "assessment_start",
    "assessment_authorised",
    "s47_start",
    "icpc_target",
    "icpc_date",
    "cpp_start",
    "cpp_end",
}


_BOOL_COLUMNS = {"referral_nfa", "disabled", "icpc_not_required", "rereferral_12m"}


_STR_COLUMNS = {
    "child_id",
    "la_code",
    "sex",
    "primary_need",
    "closure_reason",
    "referral_source",
    "initial_category",
    "latest_category",
}


_INT_COLUMNS = {
    "census_year",
    "first_census_year",
    "last_census_year",
    "year",
    "age",
    "previous_cpps",
}


@dataclass
class IndicatorInputs:
    """Normalised inputs: one row per distinct episode / nested record, plus population.

    ``episodes`` has at least child_id, la_code, referral_date, closure_date, closure_reason,
    referral_source, primary_need, referral_nfa, first_census_year, last_census_year, data_end,
    birth_date, expected_birth_date, sex, disabled, rereferral_12m. Nested tables carry
    ``last_return`` (the latest census year whose return contained the record; null if unknown).
    """

    episodes: pl.LazyFrame
    assessments: pl.LazyFrame | None
    section47: pl.LazyFrame | None
    cp_plans: pl.LazyFrame | None
    population: pl.DataFrame | None
    rereferral_window: str = "1y"

    @functools.cached_property
    def child_characteristics(self) -> pl.LazyFrame:
        """One row per (child_id, la_code): birth dates, sex, disabled (latest episode's)."""
        return (
            self.episodes.sort("referral_date")
            .group_by(["child_id", "la_code"])
            .agg(
                pl.col(c).drop_nulls().last()
                for c in ("birth_date", "expected_birth_date", "sex", "disabled")
            )
            .collect()
            .lazy()
        )


def _coerce(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Cast well-known columns to their store types (so CSV-read fixtures behave like the store)."""
    schema = frame.collect_schema()
    exprs = []
    for name, dtype in schema.items():
        if name in _DATE_COLUMNS and dtype != pl.Date:
            if dtype == pl.String:
                exprs.append(pl.col(name).str.to_date("%Y-%m-%d", strict=True))
            else:
                exprs.append(pl.col(name).cast(pl.Date))
        elif name in _BOOL_COLUMNS and dtype != pl.Boolean:
            if dtype == pl.String:
                low = pl.col(name).str.strip_chars().str.to_lowercase()
                exprs.append(
                    pl.when(low.is_in(["1", "true", "t", "yes", "y"]))
                    .then(True)
                    .when(low.is_in(["0", "false", "f", "no", "n"]))
                    .then(False)
                    .otherwise(None)
                    .alias(name)
                )
            else:
                exprs.append(pl.col(name).cast(pl.Boolean))
        elif name in _STR_COLUMNS and dtype != pl.String:
            exprs.append(pl.col(name).cast(pl.String))
        elif name in _INT_COLUMNS and not dtype.is_integer():
            exprs.append(pl.col(name).cast(pl.Int32))
        elif name == "population" and not dtype.is_integer():
            exprs.append(pl.col(name).cast(pl.Int64))
    if exprs:
        frame = frame.with_columns(exprs)
    if "la_code" in schema:
        # LA numbers are 3-digit strings; CSV readers may have turned "201" into 201.
        frame = frame.with_columns(pl.col("la_code").str.zfill(3))
    return frame


def _lazy(frame: pl.DataFrame | pl.LazyFrame | None) -> pl.LazyFrame | None:
    if frame is None:
        return None
    return _coerce(frame.lazy())


def _with_second_or_subsequent(plans: pl.LazyFrame) -> pl.LazyFrame:
    """Flag ``second_or_subsequent``: NumberOfPreviousCPP >= 1 or an earlier plan in ``plans``."""
    # a plan that is not the child's first in this LA among the plans given
    earlier = pl.col("cpp_start").rank("min").over(["child_id", "la_code"]) > 1
    return plans.with_columns(
        ((pl.col("previous_cpps").fill_null(0) >= 1) | earlier).alias("second_or_subsequent")
    )
