"""Rate denominators: ONS mid-year population aged 0-17, by LA and breakdown level."""

from __future__ import annotations

import polars as pl

from cinresearch.indicators.inputs import _coerce
from cinresearch.indicators.measures import Definitions


def population_under_18(
    population: pl.DataFrame,
    census_year: int,
    *,
    year_offset: int = -1,
    ages: tuple[int, int] = (0, 17),
) -> pl.DataFrame:
    """Population aged 0-17 by LA, age and sex for the estimate used with census year ``Y``.

    The mid-year estimate for year ``Y + year_offset`` (mid-2017 for 2017-18) is used; an LA
    without that year uses its nearest available year (ties: the earlier year). Returns
    ``la_code, population_year, age, sex, population``.
    """
    target = census_year + year_offset
    pop = _coerce(population.lazy()).filter(pl.col("age").is_between(ages[0], ages[1])).collect()
    if pop.is_empty():
        return pl.DataFrame(
            schema={
                "la_code": pl.String,
                "population_year": pl.Int32,
                "age": pl.Int32,
                "sex": pl.String,
                "population": pl.Int64,
            }
        )
    chosen = (
        pop.select("la_code", pl.col("year").cast(pl.Int32))
        .unique()
        .with_columns(
            (pl.col("year") - target).abs().alias("_dist"),
        )
        .sort(["la_code", "_dist", "year"])
        .group_by("la_code", maintain_order=True)
        .first()
        .select("la_code", pl.col("year").alias("population_year"))
    )
    return (
        pop.with_columns(pl.col("year").cast(pl.Int32))
        .join(chosen, left_on=["la_code", "year"], right_on=["la_code", "population_year"])
        .group_by(["la_code", "year", pl.col("age").cast(pl.Int32), "sex"])
        .agg(pl.col("population").sum().cast(pl.Int64))
        .rename({"year": "population_year"})
        .sort(["la_code", "age", "sex"])
    )


def _population_by_level(pop: pl.DataFrame, defs: Definitions, breakdown: str) -> pl.DataFrame:
    """Rate denominators per (la_code, breakdown_level) from breakdowns.*.population."""
    spec = defs.breakdowns[breakdown].get("population") or {}
    rows = []
    for level in defs.levels(breakdown):
        if level in spec and spec[level] is None:
            continue  # no rate for this level
        rule = spec.get(level) or {}
        cond = pl.lit(True)
        if "ages" in rule:
            lo, hi = rule["ages"]
            cond = cond & pl.col("age").is_between(lo, hi)
        if "sex" in rule:
            cond = cond & (pl.col("sex") == rule["sex"])
        rows.append(
            pop.filter(cond)
            .group_by("la_code")
            .agg(pl.col("population").sum().cast(pl.Float64).alias("population"))
            .with_columns(pl.lit(level).alias("breakdown_level"))
        )
    if not rows:
        return pl.DataFrame(
            schema={"la_code": pl.String, "population": pl.Float64, "breakdown_level": pl.String}
        )
    return pl.concat(rows)
