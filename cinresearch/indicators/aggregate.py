"""From unit records to numerators, denominators and values per geography and breakdown.

Every measure is computed per LA; England and regions sum their LAs' numerators and
denominators, and quantiles pool the LAs' records. Rates divide by the summed population.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import polars as pl

from cinresearch.geography import la_lookup
from cinresearch.indicators.inputs import IndicatorInputs
from cinresearch.indicators.measures import Definitions, Measure
from cinresearch.indicators.output import (
    ENGLAND_CODE,
    LOCAL_AUTHORITY,
    NATIONAL,
    REGIONAL,
)
from cinresearch.indicators.population import _population_by_level, population_under_18
from cinresearch.indicators.units import UNIT_SETS


def _las_in_year(inp: IndicatorInputs, y: int) -> list[str]:
    """LAs whose return for census year ``Y`` is in the data (episodes reported in ``Y``)."""
    eps = inp.episodes
    in_return = (
        pl.col("first_census_year").is_not_null()
        & (pl.col("first_census_year") <= y)
        & (pl.col("last_census_year") >= y)
    )
    las = eps.filter(in_return).select(pl.col("la_code").unique()).collect()["la_code"]
    if las.is_empty():
        # No return bookkeeping (e.g. a hand-made episodes frame): every LA in the data.
        las = eps.select(pl.col("la_code").unique()).collect()["la_code"]
    return sorted(las.drop_nulls().to_list())


def _aggregate(
    units: pl.DataFrame,
    m: Measure,
    breakdown: str,
    levels: list[str],
    keys: list[str],
    key_col: str,
) -> pl.DataFrame:
    """Numerator, denominator, value per (key, breakdown_level) for one measure/breakdown.

    ``units`` must carry ``key_col``. Rates get their denominators later.
    """
    frame = units
    if m.filter:
        frame = frame.filter(pl.col(m.filter))
    frame = frame.with_columns(pl.col(breakdown).cast(pl.String).alias("breakdown_level"))
    group = [key_col, "breakdown_level"]
    dens: pl.DataFrame | None = None
    if m.kind in ("count", "rate", "share", "multi_share"):
        n = pl.struct("la_code", m.count_distinct).n_unique() if m.count_distinct else pl.len()
        agg = frame.group_by(group).agg(n.cast(pl.Float64).alias("numerator"))
        if m.kind == "multi_share":
            # multi-response: the base is the distinct units with any level (not the level sum)
            dens = frame.group_by(key_col).agg(n.cast(pl.Float64).alias("denominator"))
    elif m.kind == "percent":
        agg = frame.group_by(group).agg(
            pl.col(m.numerator).fill_null(False).sum().cast(pl.Float64).alias("numerator"),
            pl.len().cast(pl.Float64).alias("denominator"),
        )
    else:  # quantile
        col = pl.col(m.value_column).drop_nulls()
        agg = frame.group_by(group).agg(
            col.quantile(float(m.q), interpolation="linear").cast(pl.Float64).alias("value"),
            col.len().cast(pl.Float64).alias("denominator"),
        )
    # Complete the grid: every key x every level (declared levels, then any unexpected ones).
    seen = agg["breakdown_level"].drop_nulls().unique().to_list()
    all_levels = list(levels) + sorted(x for x in seen if x not in levels)
    grid = pl.DataFrame({key_col: keys}, schema={key_col: pl.String}).join(
        pl.DataFrame({"breakdown_level": all_levels}, schema={"breakdown_level": pl.String}),
        how="cross",
    )
    out = grid.join(agg, on=group, how="left")
    if m.kind in ("count", "rate"):
        out = out.with_columns(pl.col("numerator").fill_null(0.0))
        out = out.with_columns(
            pl.lit(None, pl.Float64).alias("denominator"), pl.col("numerator").alias("value")
        )
    elif m.kind == "multi_share":
        assert dens is not None
        out = (
            out.with_columns(pl.col("numerator").fill_null(0.0))
            .join(dens, on=key_col, how="left")
            .with_columns(pl.col("denominator").fill_null(0.0))
        )
        out = out.with_columns(_pct("numerator", "denominator").alias("value"))
    elif m.kind == "share":
        out = out.with_columns(pl.col("numerator").fill_null(0.0)).with_columns(
            pl.col("numerator").sum().over(key_col).alias("denominator")
        )
        out = out.with_columns(_pct("numerator", "denominator").alias("value"))
    elif m.kind == "percent":
        out = out.with_columns(pl.col("numerator", "denominator").fill_null(0.0))
        out = out.with_columns(_pct("numerator", "denominator").alias("value"))
    else:
        out = out.with_columns(
            pl.lit(None, pl.Float64).alias("numerator"), pl.col("denominator").fill_null(0.0)
        )
    return out.select(key_col, "breakdown_level", "numerator", "denominator", "value")


def _pct(num: str, den: str) -> pl.Expr:
    return pl.when(pl.col(den) > 0).then(100.0 * pl.col(num) / pl.col(den)).otherwise(None)


def _region_map(regions: Mapping[str, str] | pl.DataFrame | None) -> dict[str, str]:
    if regions is None:
        return {}
    if isinstance(regions, pl.DataFrame):
        return dict(
            zip(
                regions["la_code"].cast(pl.String).to_list(),
                regions["region_code"].cast(pl.String).to_list(),
                strict=True,
            )
        )
    return {str(k): str(v) for k, v in regions.items()}


def _default_regions(census_year: int) -> dict[str, str]:
    """LA code -> ONS region code from the LA reference list (cinresearch.geography)."""
    try:
        table = la_lookup(census_year).drop_nulls(["old_la_code", "region_code"])
    except Exception:  # reference list unavailable
        return {}
    return dict(zip(table["old_la_code"], table["region_code"], strict=True))


def _compute_year(
    inp: IndicatorInputs,
    y: int,
    measures: Sequence[Measure],
    geography: Sequence[str],
    region_of: dict[str, str],
    defs: Definitions,
) -> list[pl.DataFrame]:
    las = _las_in_year(inp, y)
    if not las:
        return []
    pop = (
        population_under_18(
            inp.population,
            y,
            year_offset=int(defs.settings["population"].get("year_offset", -1)),
            ages=tuple(defs.settings["population"].get("ages", (0, 17))),
        )
        if inp.population is not None
        else None
    )
    per = float(defs.settings.get("rate_per", 10_000))
    if not region_of:
        region_of = _default_regions(y)
    # Geography keys: la -> key for each requested level.
    levels: list[tuple[str, dict[str, str]]] = []
    for g in geography:
        if g == "national":
            levels.append((NATIONAL, dict.fromkeys(las, ENGLAND_CODE)))
        elif g == "la":
            levels.append((LOCAL_AUTHORITY, {la: la for la in las}))
        elif g == "regional":
            mapped = {la: region_of[la] for la in las if la in region_of}
            if not mapped:
                warnings.warn(
                    "regional indicators requested but no LA has a region (pass `regions`, or "
                    "use LA codes from data_contracts/codes/la_codes.yaml); skipping the "
                    "Regional level",
                    stacklevel=3,
                )
                continue
            if len(mapped) < len(las):
                missing = len(las) - len(mapped)
                warnings.warn(
                    f"{missing} LA(s) have no region in the mapping; left out of Regional rows",
                    stacklevel=3,
                )
            levels.append((REGIONAL, mapped))
        else:
            raise ValueError(f"unknown geography {g!r}; use national, regional or la")

    by_units: dict[str, list[Measure]] = {}
    for m in measures:
        by_units.setdefault(m.units, []).append(m)

    out: list[pl.DataFrame] = []
    pop_cache: dict[str, pl.DataFrame] = {}
    for unit_set, ms in by_units.items():
        func, needs = UNIT_SETS[unit_set]
        if needs is not None and getattr(inp, needs) is None:
            warnings.warn(
                f"no {needs!r} table: skipping {', '.join(m.id for m in ms)}", stacklevel=3
            )
            continue
        units = func(inp, y, defs).collect()
        units = units.filter(pl.col("la_code").is_in(las))
        for level_name, key_of in levels:
            keyed = units.with_columns(
                pl.col("la_code")
                .replace_strict(key_of, default=None, return_dtype=pl.String)
                .alias("_key")
            ).filter(pl.col("_key").is_not_null())
            keys = sorted(set(key_of.values()))
            for m in ms:
                for b in m.breakdowns:
                    agg = _aggregate(keyed, m, b, defs.levels(b), keys, "_key")
                    if m.kind == "rate":
                        if pop is None:
                            agg = agg.with_columns(
                                pl.lit(None, pl.Float64).alias("denominator"),
                                pl.lit(None, pl.Float64).alias("value"),
                            )
                        else:
                            if b not in pop_cache:
                                pop_cache[b] = _population_by_level(pop, defs, b)
                            agg = _attach_population(agg, pop_cache[b], key_of, per)
                    out.append(_finish(agg, level_name, key_of, region_of, y, m, b))
    return out


def _attach_population(
    agg: pl.DataFrame, pop_levels: pl.DataFrame, key_of: dict[str, str], per: float
) -> pl.DataFrame:
    """Rate denominators: sum of member LAs' populations (null if any member LA lacks one)."""
    members = pl.DataFrame(
        {"la_code": list(key_of), "_key": list(key_of.values())},
        schema={"la_code": pl.String, "_key": pl.String},
    )
    levels = pop_levels["breakdown_level"].unique().to_list()
    grid = members.join(
        pl.DataFrame({"breakdown_level": levels}, schema={"breakdown_level": pl.String}),
        how="cross",
    ).join(pop_levels, on=["la_code", "breakdown_level"], how="left")
    dens = grid.group_by(["_key", "breakdown_level"]).agg(
        pl.when(pl.col("population").null_count() == 0)
        .then(pl.col("population").sum())
        .otherwise(None)
        .alias("denominator")
    )
    return (
        agg.drop("denominator")
        .join(dens, on=["_key", "breakdown_level"], how="left")
        .with_columns(
            pl.when(pl.col("denominator") > 0)
            .then(pl.col("numerator") / pl.col("denominator") * per)
            .otherwise(None)
            .alias("value")
        )
        .select("_key", "breakdown_level", "numerator", "denominator", "value")
    )


def _finish(
    agg: pl.DataFrame,
    level_name: str,
    key_of: dict[str, str],
    region_of: dict[str, str],
    y: int,
    m: Measure,
    breakdown: str,
) -> pl.DataFrame:
    if level_name == LOCAL_AUTHORITY:
        la = pl.col("_key")
        region = la.replace_strict(region_of, default=None, return_dtype=pl.String)
    elif level_name == REGIONAL:
        la = pl.lit(None, pl.String)
        region = pl.col("_key")
    else:
        la = pl.lit(None, pl.String)
        region = pl.lit(None, pl.String)
    return agg.select(
        pl.lit(level_name).alias("geographic_level"),
        region.alias("region_code"),
        la.alias("la_code"),
        pl.lit(y, pl.Int16).alias("census_year"),
        pl.lit(m.id).alias("measure"),
        pl.lit(breakdown).alias("breakdown"),
        pl.col("breakdown_level"),
        pl.col("numerator").cast(pl.Float64),
        pl.col("denominator").cast(pl.Float64),
        pl.col("value").cast(pl.Float64),
        pl.lit(m.unit).alias("unit"),
    )


def _order(frame: pl.DataFrame, defs: Definitions) -> pl.DataFrame:
    measure_rank = {m.id: i for i, m in enumerate(defs.measures)}
    geo_rank = {NATIONAL: 0, REGIONAL: 1, LOCAL_AUTHORITY: 2}
    level_rank: dict[str, int] = {}
    for b in defs.breakdowns:
        for i, lv in enumerate(defs.levels(b)):
            level_rank.setdefault(f"{b}\x00{lv}", i)
    return (
        frame.with_columns(
            pl.col("geographic_level").replace_strict(geo_rank, default=9).alias("_g"),
            pl.col("measure").replace_strict(measure_rank, default=10_000).alias("_m"),
            (pl.col("breakdown") + pl.lit("\x00") + pl.col("breakdown_level"))
            .replace_strict(level_rank, default=1_000)
            .alias("_l"),
        )
        .sort(
            ["census_year", "_g", "region_code", "la_code", "_m", "breakdown", "_l"],
            nulls_last=False,
        )
        .drop("_g", "_m", "_l")
    )
