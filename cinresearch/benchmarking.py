"""Benchmarking an LA against England and its statistical neighbours.

Works on the tidy frame of :func:`cinresearch.indicators.compute_indicators` (columns
``geographic_level, la_code, census_year, measure, breakdown, breakdown_level, numerator,
denominator, value, unit``).

* :func:`rates_with_ci` — rates per 10,000 with exact (Garwood) or Byar Poisson intervals, or
  proportions with Wilson score intervals.
* :func:`funnel_limits` — exact Poisson (rates) or binomial (proportions) control limits around a
  target, with the interpolation of Spiegelhalter (2005, *Stat Med* 24:1185) so the limits are
  smooth in the denominator.
* :func:`benchmark` — for one LA and census year: LA value, England value, neighbour mean and
  median, rank among all LAs (1 = lowest value; ties share the lowest rank), quartile
  (``ceil(4 * rank / n_las)``, 1 = lowest quarter), difference from England, and a flag when the
  LA lies outside the 95% / 99.8% funnel limits around England's value.
* :func:`trend` — the same LA / England / neighbour comparison over census years.
* :func:`neighbours_for` — an LA's statistical neighbours from a mapping or
  ``data_contracts/statistical_neighbours.yaml``, else its nearest LAs on a few rates.

Funnel limits apply to rates (``unit == "rate_per_10000"``, Poisson, denominator = population)
and percentages (``unit == "percent"``, binomial, denominator = base count); counts and working-day
quantiles get no limits.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml
from scipy import stats

from cinresearch.indicators import LOCAL_AUTHORITY, NATIONAL

NEIGHBOURS_PATH = (
    Path(__file__).resolve().parent.parent / "data_contracts" / "statistical_neighbours.yaml"
)

RATE_UNIT = "rate_per_10000"
PERCENT_UNIT = "percent"
_KEYS = ["census_year", "measure", "breakdown", "breakdown_level"]


# ---------------------------------------------------------------------------------------------
# Confidence intervals
# ---------------------------------------------------------------------------------------------


def _as_array(x: Any) -> np.ndarray:
    if isinstance(x, pl.Series):
        return x.cast(pl.Float64).to_numpy()
    return np.atleast_1d(np.asarray(x, dtype=float))


def rates_with_ci(
    counts: Any,
    population: Any,
    per: float | None = None,
    method: str = "byar",
    level: float = 0.95,
) -> pl.DataFrame:
    """Rates (or proportions) with two-sided confidence intervals.

    ``method``: ``"byar"`` (Byar's approximation to the exact Poisson interval, as used by PHE/
    OHID), ``"exact"`` (Garwood's chi-square exact Poisson interval) — both for counts of events
    over a population — or ``"wilson"`` (Wilson score interval for ``counts`` successes out of
    ``population`` trials). ``per`` scales the results: default 10,000 for Poisson methods and
    100 (percent) for Wilson. Zero or missing denominators give nulls.

    Returns ``count, population, value, lower, upper``.
    """
    if method not in ("byar", "exact", "wilson"):
        raise ValueError("method must be 'byar', 'exact' or 'wilson'")
    if not 0 < level < 1:
        raise ValueError("level must be between 0 and 1")
    o, n = np.broadcast_arrays(_as_array(counts), _as_array(population))
    o = o.astype(float)
    n = n.astype(float)
    scale = per if per is not None else (100.0 if method == "wilson" else 10_000.0)
    z = stats.norm.ppf(1 - (1 - level) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "byar":
            lo = np.where(
                o > 0,
                o * (1 - 1 / (9 * np.maximum(o, 1)) - z / (3 * np.sqrt(np.maximum(o, 1)))) ** 3,
                0.0,
            )
            hi = (o + 1) * (1 - 1 / (9 * (o + 1)) + z / (3 * np.sqrt(o + 1))) ** 3
            lower, upper, value = lo / n, hi / n, o / n
        elif method == "exact":
            alpha = 1 - level
            lo = np.where(o > 0, stats.chi2.ppf(alpha / 2, 2 * o) / 2, 0.0)
            hi = stats.chi2.ppf(1 - alpha / 2, 2 * (o + 1)) / 2
            lower, upper, value = lo / n, hi / n, o / n
        else:
            p = o / n
            denom = 1 + z**2 / n
            centre = (p + z**2 / (2 * n)) / denom
            half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
            lower, upper, value = centre - half, centre + half, p
    bad = ~(n > 0) | np.isnan(o)
    out = {
        "count": o,
        "population": n,
        "value": np.where(bad, np.nan, value * scale),
        "lower": np.where(bad, np.nan, np.maximum(lower, 0.0) * scale),
        "upper": np.where(bad, np.nan, upper * scale),
    }
    return pl.DataFrame(out).with_columns(pl.col("value", "lower", "upper").fill_nan(None))


# ---------------------------------------------------------------------------------------------
# Funnel limits
# ---------------------------------------------------------------------------------------------


def _level_suffix(level: float) -> str:
    """0.95 -> "95", 0.998 -> "998", 0.999 -> "999"."""
    return f"{level * 100:g}".replace(".", "")


def _exact_limit(dist: Any, p: float, n: np.ndarray, interpolate: bool) -> np.ndarray:
    """Spiegelhalter's interpolated p-quantile of a discrete count distribution, divided by n.

    r = smallest count with F(r) >= p; alpha = (F(r) - p) / (F(r) - F(r - 1)); limit = (r - alpha)/n.
    Without interpolation the limit is r / n.
    """
    r = dist.ppf(p)
    if interpolate:
        f_r = dist.cdf(r)
        f_below = dist.cdf(r - 1)
        step = f_r - f_below
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = np.where(step > 0, (f_r - p) / step, 0.0)
        r = r - alpha
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.clip(r, 0, None) / n


def _funnel_arrays(
    theta: np.ndarray,
    n: np.ndarray,
    kind: str,
    levels: Sequence[float],
    interpolate: bool,
) -> dict[str, np.ndarray]:
    """Limits (as rates/proportions per 1) for arrays of targets ``theta`` and denominators ``n``."""
    valid = (n > 0) & np.isfinite(n) & np.isfinite(theta)
    n_safe = np.where(valid, n, 1.0)
    t_safe = np.where(valid, theta, 0.0)
    if kind == "rate":
        dist = stats.poisson(t_safe * n_safe)
    else:
        dist = stats.binom(np.round(n_safe).astype(np.int64), np.clip(t_safe, 0.0, 1.0))
    out: dict[str, np.ndarray] = {}
    for level in levels:
        tail = (1 - level) / 2
        suffix = _level_suffix(level)
        lo = _exact_limit(dist, tail, n_safe, interpolate)
        hi = _exact_limit(dist, 1 - tail, n_safe, interpolate)
        if kind == "proportion":
            hi = np.minimum(hi, 1.0)
        out[f"lower{suffix}"] = np.where(valid, lo, np.nan)
        out[f"upper{suffix}"] = np.where(valid, hi, np.nan)
    return out


def funnel_limits(
    target: float,
    denominators: Any,
    per: float | None = None,
    kind: str = "rate",
    levels: Sequence[float] = (0.95, 0.998),
    interpolate: bool = True,
) -> pl.DataFrame:
    """Exact control limits around ``target`` for each denominator (a funnel plot's curves).

    ``kind="rate"``: ``target`` is a rate per ``per`` (default 10,000) and counts are Poisson
    with mean ``target / per * denominator``. ``kind="proportion"``: ``target`` is a proportion
    per ``per`` (default 100, i.e. a percentage) and counts are binomial(denominator,
    ``target / per``). Two-sided limits at each level (0.95 → 2.5% and 97.5% quantiles), with
    Spiegelhalter's interpolation unless ``interpolate=False``. Limits are on the ``per`` scale.

    Returns ``denominator, lower95, upper95, lower998, upper998`` (suffixes follow ``levels``);
    non-positive denominators give nulls.
    """
    if kind not in ("rate", "proportion"):
        raise ValueError("kind must be 'rate' or 'proportion'")
    scale = per if per is not None else (10_000.0 if kind == "rate" else 100.0)
    theta = float(target) / scale
    if kind == "rate" and theta < 0:
        raise ValueError("a rate target must be non-negative")
    if kind == "proportion" and not 0 <= theta <= 1:
        raise ValueError("a proportion target must lie between 0 and per")
    n = _as_array(denominators)
    limits = _funnel_arrays(np.full(n.shape, theta), n, kind, levels, interpolate)
    frame = pl.DataFrame({"denominator": n, **{k: v * scale for k, v in limits.items()}})
    return frame.with_columns(pl.exclude("denominator").fill_nan(None))


# ---------------------------------------------------------------------------------------------
# Statistical neighbours
# ---------------------------------------------------------------------------------------------


@functools.cache
def _load_neighbours_cached(path: str) -> dict[str, Any]:
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    mapping = {str(k): [str(x) for x in v] for k, v in (raw.get("neighbours") or {}).items()}
    return {"neighbours": mapping, "fallback": dict(raw.get("fallback") or {})}


def load_statistical_neighbours(
    path: str | os.PathLike[str] | None = None,
) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """(LA code → neighbour codes, fallback settings) from statistical_neighbours.yaml."""
    cfg = _load_neighbours_cached(str(Path(path or NEIGHBOURS_PATH).resolve()))
    return {k: list(v) for k, v in cfg["neighbours"].items()}, dict(cfg["fallback"])


def _la_rows(indicators: pl.DataFrame) -> pl.DataFrame:
    return indicators.filter(pl.col("geographic_level") == LOCAL_AUTHORITY)


def nearest_by_rate(
    indicators: pl.DataFrame,
    la_code: str,
    measures: Sequence[str],
    k: int = 10,
    census_year: int | None = None,
) -> list[str]:
    """The ``k`` LAs closest to ``la_code`` on standardised LA values of ``measures``.

    Uses the total breakdown for ``census_year`` (default: the latest year with data for the
    LA). Each measure is standardised across LAs (mean 0, sd 1; measures with no spread or no
    value for the LA are dropped); distance is Euclidean; ties go to the lower LA code.
    """
    rows = _la_rows(indicators).filter(
        pl.col("measure").is_in(list(measures)) & (pl.col("breakdown") == "total")
    )
    if census_year is None:
        years = rows.filter(pl.col("la_code") == la_code)["census_year"]
        if years.is_empty():
            return []
        census_year = int(years.max())  # type: ignore[arg-type]
    wide = (
        rows.filter(pl.col("census_year") == census_year)
        .pivot(on="measure", index="la_code", values="value", aggregate_function="first")
        .sort("la_code")
    )
    if la_code not in wide["la_code"].to_list():
        return []
    target = wide.filter(pl.col("la_code") == la_code)
    usable = [
        m
        for m in measures
        if m in wide.columns
        and target[m].null_count() == 0
        and (wide[m].drop_nulls().std(ddof=0) or 0) > 0
    ]
    if not usable:
        return []
    wide = wide.drop_nulls(subset=usable)
    z = wide.select(
        "la_code",
        *[((pl.col(m) - pl.col(m).mean()) / pl.col(m).std(ddof=0)).alias(m) for m in usable],
    )
    t = z.filter(pl.col("la_code") == la_code).row(0, named=True)
    dist = z.with_columns(
        pl.sum_horizontal([(pl.col(m) - t[m]) ** 2 for m in usable]).sqrt().alias("_d")
    )
    return (
        dist.filter(pl.col("la_code") != la_code)
        .sort(["_d", "la_code"])
        .head(k)["la_code"]
        .to_list()
    )


def neighbours_for(
    la_code: str,
    mapping: Mapping[str, Sequence[str]] | None = None,
    indicators: pl.DataFrame | None = None,
    k: int | None = None,
    *,
    measures: Sequence[str] | None = None,
    census_year: int | None = None,
) -> list[str]:
    """Statistical neighbours of an LA.

    Order of precedence: ``mapping`` (if it lists the LA; used as given), the lists in
    ``data_contracts/statistical_neighbours.yaml``, then — if ``indicators`` are given — the
    ``k`` nearest LAs on the fallback ``measures`` (:func:`nearest_by_rate`; defaults from the
    YAML). Returns ``[]`` (with a warning) when none of these applies.
    """
    if mapping is not None and la_code in mapping:
        return [str(x) for x in mapping[la_code] if str(x) != la_code]
    configured, fallback = load_statistical_neighbours()
    if la_code in configured:
        return [x for x in configured[la_code] if x != la_code]
    if indicators is not None:
        chosen = list(measures or fallback.get("measures") or [])
        kk = int(k if k is not None else fallback.get("k", 10))
        found = nearest_by_rate(indicators, la_code, chosen, k=kk, census_year=census_year)
        if found:
            return found
    warnings.warn(
        f"no statistical neighbours for LA {la_code}: no list given or configured, and no "
        "indicator values to find nearest LAs",
        stacklevel=2,
    )
    return []


# ---------------------------------------------------------------------------------------------
# Benchmark and trend
# ---------------------------------------------------------------------------------------------


def _england(indicators: pl.DataFrame) -> pl.DataFrame:
    """England value per key: National rows if present, else rebuilt from the LA rows."""
    national = indicators.filter(pl.col("geographic_level") == NATIONAL).select(
        *_KEYS, pl.col("value").alias("england_value")
    )
    las = _la_rows(indicators)
    rebuilt = (
        las.group_by([*_KEYS, "unit"])
        .agg(
            pl.col("numerator").sum().alias("_n"),
            pl.when(pl.col("denominator").null_count() == 0)
            .then(pl.col("denominator").sum())
            .alias("_d"),
        )
        .with_columns(
            pl.when(pl.col("unit") == "count")
            .then(pl.col("_n"))
            .when((pl.col("unit") == RATE_UNIT) & (pl.col("_d") > 0))
            .then(pl.col("_n") / pl.col("_d") * 10_000)
            .when((pl.col("unit") == PERCENT_UNIT) & (pl.col("_d") > 0))
            .then(100 * pl.col("_n") / pl.col("_d"))
            .otherwise(None)
            .alias("england_value")
        )
        .select(*_KEYS, "england_value")
    )
    if national.is_empty():
        return rebuilt
    missing = rebuilt.join(national, on=_KEYS, how="anti")
    return pl.concat([national, missing])


def _resolve_neighbours(
    la_code: str,
    neighbours: Sequence[str] | Mapping[str, Sequence[str]] | None,
    indicators: pl.DataFrame,
    census_year: int | None,
) -> list[str]:
    if neighbours is None or isinstance(neighbours, Mapping):
        return neighbours_for(
            la_code,
            mapping=neighbours,  # type: ignore[arg-type]
            indicators=indicators,
            census_year=census_year,
        )
    return [str(x) for x in neighbours if str(x) != la_code]


def _ranks(las: pl.DataFrame) -> pl.DataFrame:
    """Rank (1 = lowest, ties share the lowest rank), n_las and quartile per LA row."""
    ranked = las.filter(pl.col("value").is_not_null()).with_columns(
        pl.col("value").rank("min").over(_KEYS).cast(pl.Int32).alias("rank"),
        pl.len().over(_KEYS).cast(pl.Int32).alias("n_las"),
    )
    return ranked.with_columns(
        (4 * pl.col("rank") / pl.col("n_las")).ceil().cast(pl.Int8).alias("quartile")
    ).select(*_KEYS, "la_code", "rank", "n_las", "quartile")


def _add_limits(frame: pl.DataFrame, levels: Sequence[float]) -> pl.DataFrame:
    """Funnel limits around England's value at each row's denominator, and the outlier flag."""
    names = [f"{side}{_level_suffix(lv)}" for lv in levels for side in ("lower", "upper")]
    target = frame["england_value"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    n = frame["denominator"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    unit = frame["unit"].to_numpy()
    cols = {k: np.full(len(frame), np.nan) for k in names}
    for kind, unit_name, scale in (
        ("rate", RATE_UNIT, 10_000.0),
        ("proportion", PERCENT_UNIT, 100.0),
    ):
        rows = unit == unit_name
        if kind == "proportion":
            rows &= (target >= 0) & (target <= 100)
        if not rows.any():
            continue
        lim = _funnel_arrays(target[rows] / scale, n[rows], kind, levels, True)
        for k in names:
            cols[k][rows] = lim[k] * scale
    out = frame.with_columns(pl.Series(k, v).fill_nan(None) for k, v in cols.items())
    inner, outer = sorted(levels)[0], sorted(levels)[-1]
    lo_i, hi_i = f"lower{_level_suffix(inner)}", f"upper{_level_suffix(inner)}"
    lo_o, hi_o = f"lower{_level_suffix(outer)}", f"upper{_level_suffix(outer)}"
    v = pl.col("la_value")
    has = pl.col(lo_i).is_not_null() & v.is_not_null()
    return out.with_columns(
        pl.when(has)
        .then((v < pl.col(lo_i)) | (v > pl.col(hi_i)))
        .alias(f"outside_{inner * 100:g}"),
        pl.when(has)
        .then((v < pl.col(lo_o)) | (v > pl.col(hi_o)))
        .alias(f"outside_{outer * 100:g}"),
        pl.when(~has)
        .then(None)
        .when(v > pl.col(hi_o))
        .then(pl.lit(f"above {outer * 100:g}%"))
        .when(v > pl.col(hi_i))
        .then(pl.lit(f"above {inner * 100:g}%"))
        .when(v < pl.col(lo_o))
        .then(pl.lit(f"below {outer * 100:g}%"))
        .when(v < pl.col(lo_i))
        .then(pl.lit(f"below {inner * 100:g}%"))
        .otherwise(pl.lit("within"))
        .alias("flag"),
    )


def benchmark(
    indicators: pl.DataFrame,
    la_code: str,
    neighbours: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
    *,
    census_year: int | None = None,
    measures: Sequence[str] | None = None,
    levels: Sequence[float] = (0.95, 0.998),
) -> pl.DataFrame:
    """One LA against England, its neighbours and all LAs, for one census year.

    ``neighbours``: a list of LA codes, a mapping LA → list, or None (configured list, else the
    nearest LAs by rate — see :func:`neighbours_for`). ``census_year`` defaults to the latest
    year with rows for the LA. One row per measure x breakdown level of the LA with columns
    ``census_year, la_code, measure, breakdown, breakdown_level, unit, numerator, denominator,
    la_value, england_value, difference, neighbour_mean, neighbour_median, n_neighbours, rank,
    n_las, quartile, lower95, upper95, lower998, upper998, outside_95, outside_99.8, flag``.
    """
    la_code = str(la_code)
    data = indicators
    if measures is not None:
        data = data.filter(pl.col("measure").is_in(list(measures)))
    las = _la_rows(data)
    if census_year is None:
        years = las.filter(pl.col("la_code") == la_code)["census_year"]
        if years.is_empty():
            raise ValueError(f"no indicator rows for LA {la_code}")
        census_year = int(years.max())  # type: ignore[arg-type]
    data = data.filter(pl.col("census_year") == census_year)
    las = _la_rows(data)
    own = las.filter(pl.col("la_code") == la_code)
    if own.is_empty():
        raise ValueError(f"no indicator rows for LA {la_code} in census year {census_year}")
    peers = _resolve_neighbours(la_code, neighbours, indicators, census_year)
    neighbour_stats = (
        las.filter(pl.col("la_code").is_in(peers))
        .group_by(_KEYS)
        .agg(
            pl.col("value").mean().alias("neighbour_mean"),
            pl.col("value").median().alias("neighbour_median"),
            pl.col("value").is_not_null().sum().cast(pl.Int32).alias("n_neighbours"),
        )
    )
    out = (
        own.with_row_index("_o")
        .select(
            "_o",
            *_KEYS,
            "la_code",
            "unit",
            "numerator",
            "denominator",
            pl.col("value").alias("la_value"),
        )
        .join(_england(data), on=_KEYS, how="left")
        .join(neighbour_stats, on=_KEYS, how="left")
        .join(_ranks(las), on=[*_KEYS, "la_code"], how="left")
        .with_columns(
            (pl.col("la_value") - pl.col("england_value")).alias("difference"),
            pl.col("n_neighbours").fill_null(0),
        )
    )
    out = _add_limits(out, levels)
    first = [
        "census_year",
        "la_code",
        "measure",
        "breakdown",
        "breakdown_level",
        "unit",
        "numerator",
        "denominator",
        "la_value",
        "england_value",
        "difference",
        "neighbour_mean",
        "neighbour_median",
        "n_neighbours",
        "rank",
        "n_las",
        "quartile",
    ]
    out = out.sort("_o")
    return out.select(first + [c for c in out.columns if c not in first and c != "_o"])


def trend(
    indicators: pl.DataFrame,
    la_code: str,
    measures: Sequence[str],
    *,
    breakdown: str = "total",
    breakdown_level: str = "Total",
    neighbours: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
) -> pl.DataFrame:
    """An LA's values over census years next to England's and its neighbours' mean.

    Returns ``census_year, measure, la_value, england_value, neighbour_mean, difference,
    change_from_previous`` (LA value minus the LA's value in the previous year present),
    sorted by measure then year. Neighbours are resolved once (see :func:`benchmark`).
    """
    la_code = str(la_code)
    data = indicators.filter(
        pl.col("measure").is_in(list(measures))
        & (pl.col("breakdown") == breakdown)
        & (pl.col("breakdown_level") == breakdown_level)
    )
    las = _la_rows(data)
    own = las.filter(pl.col("la_code") == la_code)
    if own.is_empty():
        raise ValueError(f"no rows for LA {la_code} and measures {list(measures)}")
    peers = _resolve_neighbours(la_code, neighbours, indicators, None)
    nb = (
        las.filter(pl.col("la_code").is_in(peers))
        .group_by(_KEYS)
        .agg(pl.col("value").mean().alias("neighbour_mean"))
    )
    return (
        own.select(*_KEYS, pl.col("value").alias("la_value"))
        .join(_england(data), on=_KEYS, how="left")
        .join(nb, on=_KEYS, how="left")
        .sort(["measure", "census_year"])
        .with_columns(
            (pl.col("la_value") - pl.col("england_value")).alias("difference"),
            (pl.col("la_value") - pl.col("la_value").shift(1).over("measure")).alias(
                "change_from_previous"
            ),
        )
        .select(
            "census_year",
            "measure",
            "la_value",
            "england_value",
            "neighbour_mean",
            "difference",
            "change_from_previous",
        )
    )
