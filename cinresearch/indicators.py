"""Official CIN census measures for a census year, by England, region and local authority.

The definitions (numerators, denominators, filters, units, decimal places, bands) live in
``data_contracts/indicators.yaml``; this module implements the *unit sets* they count (which
records are in scope for census year ``Y``, with which flags and breakdown columns) and the
generic aggregation (count, rate per 10,000, percent, share, quantile).

Census year ``Y`` is the collection year ending 31 March ``Y`` (2018 = 2017-18); its window is
1 April ``Y-1`` .. 31 March ``Y`` inclusive. Every measure is computed per LA; England and regions
are sums of their LAs' numerators and denominators (a child served by two LAs counts twice), and
medians/percentiles pool the LAs' records. Values are unrounded: publication rounding and
suppression belong to :mod:`cinresearch.disclosure`.

Rates use the ONS mid-year population aged 0-17 for the calendar year before ``Y`` ends
(mid-2017 for 2017-18); when an LA has no estimate for that year the nearest available year is
used (ties: the earlier year) — see :func:`population_under_18`. The national/regional rate
denominator is the sum over the LAs that returned data in ``Y``; it is empty if any of them has
no population at all.

Which return counts (``basis``): by default (``as_returned``, as DfE) year ``Y`` is computed
from the year-Y return alone — the loaded tables' rows with ``census_year == Y``, with the
closure reasons, categories, factors and child characteristics (birth dates, sex, disability)
recorded in that return; earlier returns serve only look-backs (re-referral, an earlier CP
plan), later returns are never read (:func:`inputs_as_returned`). ``basis="revised"`` uses the
inputs below, merged across all loaded returns, and is labelled so in the ``basis`` column.

Inputs for the revised basis: the derived ``episodes`` table (or, failing that, the loaded
``referrals`` and ``children`` tables, de-duplicated here with "latest return wins"), and the nested
``assessments``, ``section47`` and ``cp_plans`` tables (merged or as loaded; de-duplication on
their natural keys is idempotent), plus ``population``. Pass a :class:`~cinresearch.store.Store`,
a store path, or a mapping of table name to frame.

Output (tidy, one row per geography x measure x breakdown level)::

    geographic_level  "National" | "Regional" | "Local authority"
    region_code       str (null for National; LA rows carry it when their region is known)
    la_code           str (Local authority rows only)
    census_year       i16
    measure           str (id in indicators.yaml)
    breakdown         str ("total", "age_band", "sex", ...)
    breakdown_level   str ("Total", "1-4", "M", ...)
    numerator         f64 (count; null for quantiles)
    denominator       f64 (population, base count, or number of records behind a quantile)
    value             f64 (count, rate per 10,000, percent, or working days)
    unit              str ("count", "rate_per_10000", "percent", "working_days")
    basis             str ("as_returned" or "revised")
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from cinresearch.geography import la_lookup

DEFINITIONS_PATH = Path(__file__).resolve().parent.parent / "data_contracts" / "indicators.yaml"

NATIONAL = "National"
REGIONAL = "Regional"
LOCAL_AUTHORITY = "Local authority"
ENGLAND_CODE = "E92000001"
GEOGRAPHY_LEVELS = {"national": NATIONAL, "regional": REGIONAL, "la": LOCAL_AUTHORITY}

#: ``as_returned`` (default, as DfE): year Y from the year-Y return alone (history from earlier
#: returns only for look-backs); ``revised``: from the returns merged across all loaded years
#: (latest return wins), so later returns' corrections and closures change earlier years.
AS_RETURNED = "as_returned"
REVISED = "revised"
BASES = (AS_RETURNED, REVISED)

OUTPUT_SCHEMA = pl.Schema(
    {
        "geographic_level": pl.String,
        "region_code": pl.String,
        "la_code": pl.String,
        "census_year": pl.Int16,
        "measure": pl.String,
        "breakdown": pl.String,
        "breakdown_level": pl.String,
        "numerator": pl.Float64,
        "denominator": pl.Float64,
        "value": pl.Float64,
        "unit": pl.String,
        "basis": pl.String,
    }
)

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


def basis_note(basis: str) -> str:
    """One line for a report saying how the official figures were counted (markdown)."""
    if basis == AS_RETURNED:
        return (
            "**Official figures:** as returned — each census year counted from that year's "
            "own return, as DfE publishes them (later returns do not change them)."
        )
    if basis == REVISED:
        return (
            "**Official figures: revised** — later returns applied to earlier years (later "
            "closures, corrections and characteristics), so they differ from DfE's published "
            "figures."
        )
    raise ValueError(f"basis must be one of {BASES}, got {basis!r}")


# ---------------------------------------------------------------------------------------------
# Definitions (data_contracts/indicators.yaml)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    """One measure as defined in indicators.yaml."""

    id: str
    family: str
    label: str
    kind: str
    units: str
    breakdowns: tuple[str, ...]
    unit: str
    dp: int
    definition: str
    source: str
    filter: str | None = None
    numerator: str | None = None
    count_distinct: str | None = None
    value_column: str | None = None
    q: float | None = None


@dataclass(frozen=True)
class Definitions:
    """Parsed indicators.yaml: settings, breakdowns, bands and measures (in file order)."""

    settings: dict[str, Any]
    breakdowns: dict[str, dict[str, Any]]
    assessment_duration_bands: tuple[dict[str, Any], ...]
    icpc_duration_bands: tuple[dict[str, Any], ...]
    duration_bands: tuple[dict[str, Any], ...]
    measures: tuple[Measure, ...]

    def measure(self, measure_id: str) -> Measure:
        for m in self.measures:
            if m.id == measure_id:
                return m
        raise KeyError(f"unknown measure {measure_id!r} (see data_contracts/indicators.yaml)")

    @property
    def families(self) -> list[str]:
        return list(dict.fromkeys(m.family for m in self.measures))

    def levels(self, breakdown: str) -> list[str]:
        return [str(x) for x in self.breakdowns[breakdown]["levels"]]


_KINDS = {"count", "rate", "percent", "share", "multi_share", "quantile"}


def _parse_definitions(raw: Mapping[str, Any]) -> Definitions:
    measures = []
    for entry in raw["measures"]:
        m = Measure(
            id=entry["id"],
            family=entry["family"],
            label=entry["label"],
            kind=entry["kind"],
            units=entry["units"],
            breakdowns=tuple(entry.get("breakdowns", ["total"])),
            unit=entry["unit"],
            dp=int(entry["dp"]),
            definition=str(entry.get("definition", "")).strip(),
            source=str(entry.get("source", "")),
            filter=entry.get("filter"),
            numerator=entry.get("numerator"),
            count_distinct=entry.get("count_distinct"),
            value_column=entry.get("value_column"),
            q=entry.get("q"),
        )
        if m.kind not in _KINDS:
            raise ValueError(f"measure {m.id}: kind {m.kind!r} not one of {sorted(_KINDS)}")
        if m.units not in UNIT_SETS:
            raise ValueError(f"measure {m.id}: unknown unit set {m.units!r}")
        if m.kind == "percent" and not m.numerator:
            raise ValueError(f"measure {m.id}: a percent needs a `numerator` flag")
        if m.kind == "multi_share" and not m.count_distinct:
            raise ValueError(f"measure {m.id}: a multi_share needs `count_distinct`")
        if m.kind == "quantile" and (m.q is None or not m.value_column):
            raise ValueError(f"measure {m.id}: a quantile needs `q` and `value_column`")
        for b in m.breakdowns:
            if b not in raw["breakdowns"]:
                raise ValueError(f"measure {m.id}: unknown breakdown {b!r}")
        measures.append(m)
    ids = [m.id for m in measures]
    if len(ids) != len(set(ids)):
        raise ValueError("duplicate measure ids in indicators.yaml")
    return Definitions(
        settings=dict(raw["settings"]),
        breakdowns={k: dict(v) for k, v in raw["breakdowns"].items()},
        assessment_duration_bands=tuple(raw["assessment_duration_bands"]),
        icpc_duration_bands=tuple(raw["icpc_duration_bands"]),
        duration_bands=tuple(raw["duration_bands"]),
        measures=tuple(measures),
    )


@functools.cache
def _load_cached(path: str) -> Definitions:
    return _parse_definitions(yaml.safe_load(Path(path).read_text(encoding="utf-8")))


def load_definitions(path: str | os.PathLike[str] | None = None) -> Definitions:
    """Read and check ``data_contracts/indicators.yaml`` (or another file of the same shape)."""
    return _load_cached(str(Path(path or DEFINITIONS_PATH).resolve()))


def indicator_metadata(definitions: Definitions | None = None) -> pl.DataFrame:
    """One row per measure: id, family, label, kind, unit, dp, breakdowns, definition, source."""
    defs = definitions or load_definitions()
    return pl.DataFrame(
        [
            {
                "measure": m.id,
                "family": m.family,
                "label": m.label,
                "kind": m.kind,
                "unit": m.unit,
                "dp": m.dp,
                "breakdowns": ", ".join(m.breakdowns),
                "definition": m.definition,
                "source": m.source,
            }
            for m in defs.measures
        ]
    )


# ---------------------------------------------------------------------------------------------
# Dates, ages and bands
# ---------------------------------------------------------------------------------------------


def census_window(census_year: int) -> tuple[dt.date, dt.date]:
    """(1 April Y-1, 31 March Y): the collection window of census year ``Y``, both inclusive."""
    return dt.date(census_year - 1, 4, 1), dt.date(census_year, 3, 31)


def age_at(birth_date: pl.Expr, reference: pl.Expr | dt.date) -> pl.Expr:
    """Completed years of age at ``reference`` (a 29 February birthday falls on 1 March).

    The same rule as the journeys' ``age_at_referral`` (one implementation: ``age_in_years``).
    """
    from cinresearch.journeys.episodes import age_in_years

    ref = reference if isinstance(reference, pl.Expr) else pl.lit(reference, dtype=pl.Date)
    return age_in_years(birth_date, ref).cast(pl.Int32)


def age_band_expr(
    birth_date: pl.Expr, reference: pl.Expr | dt.date, expected_birth_date: pl.Expr | None = None
) -> pl.Expr:
    """DfE age band at ``reference``: unborn, under 1, 1-4, 5-9, 10-15, 16+ (or unknown).

    Unborn = a birth date after the reference date, or no birth date and an expected birth date
    after it; a child with no birth date whose expected date has passed is aged from the
    expected date (the journeys' rule). Unknown = neither date. Bands come from the journeys' ``age_band_expr`` (one definition).
    """
    from cinresearch.journeys.episodes import age_band_expr as band_at

    ref = reference if isinstance(reference, pl.Expr) else pl.lit(reference, dtype=pl.Date)
    expected = expected_birth_date if expected_birth_date is not None else pl.lit(None, pl.Date)
    return band_at(age_at(birth_date, ref), birth_date, expected, ref).fill_null("unknown")


def working_day_band_expr(working_days: pl.Expr, bands: Sequence[Mapping[str, Any]]) -> pl.Expr:
    """Label of the first band whose inclusive ``max`` the value does not exceed (null stays null)."""
    expr: Any = pl
    for band in bands:
        if band.get("max") is None:
            expr = expr.when(working_days.is_not_null()).then(pl.lit(band["label"]))
            break
        expr = expr.when(working_days <= band["max"]).then(pl.lit(band["label"]))
    return expr.otherwise(pl.lit(None, pl.String))


def month_duration_band_expr(
    start: pl.Expr, end: pl.Expr, bands: Sequence[Mapping[str, Any]]
) -> pl.Expr:
    """Calendar-month duration band of ``end`` relative to ``start`` (see ``duration_bands``).

    A band with ``months: N, inclusive: true`` holds ``end <= start + N months``; with
    ``inclusive: false`` it holds ``end < start + N months``; the last band takes the rest.
    Month arithmetic clamps to the month end (30 Nov + 3 months = 28/29 Feb).
    """
    expr: Any = pl
    valid = start.is_not_null() & end.is_not_null()
    for band in bands:
        months = band.get("months")
        if months is None:
            expr = expr.when(valid).then(pl.lit(band["label"]))
            break
        bound = start.dt.offset_by(f"{int(months)}mo")
        cond = (end <= bound) if band.get("inclusive", True) else (end < bound)
        expr = expr.when(valid & cond).then(pl.lit(band["label"]))
    return expr.otherwise(pl.lit(None, pl.String))


def _working_days(start: pl.Expr, end: pl.Expr) -> pl.Expr:
    """Working days after ``start`` up to and including ``end`` (cinresearch.workdays)."""
    from cinresearch.workdays import working_days_between

    return working_days_between(start, end)


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


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


def _latest_return(frame: pl.LazyFrame, keys: Sequence[str]) -> pl.LazyFrame:
    """One row per natural key, values from the latest return; adds ``last_return``.

    Idempotent on already-merged tables. Without a ``census_year`` column the table is taken as
    merged (a ``last_census_year`` column, if present, becomes ``last_return``).
    """
    cols = frame.collect_schema().names()
    if "census_year" in cols:
        return (
            frame.with_columns(
                pl.col("census_year").max().over(list(keys)).alias("last_return"),
                pl.col("census_year").min().over(list(keys)).alias("first_return"),
            )
            .sort("census_year", maintain_order=True)
            .unique(subset=list(keys), keep="last", maintain_order=True)
        )
    last = pl.col("last_census_year") if "last_census_year" in cols else pl.lit(None, pl.Int32)
    return frame.unique(subset=list(keys), keep="last", maintain_order=True).with_columns(
        last.cast(pl.Int32).alias("last_return")
    )


def _episodes_from_referrals(
    referrals: pl.LazyFrame, children: pl.LazyFrame | None
) -> pl.LazyFrame:
    """Minimal episodes table from loaded returns: latest return wins per episode key."""
    keys = ["child_id", "la_code", "referral_date"]
    eps = _latest_return(referrals, keys).rename(
        {"first_return": "first_census_year", "last_return": "last_census_year"}
    )
    if children is not None:
        ccols = children.collect_schema().names()
        wanted = [c for c in ("birth_date", "expected_birth_date", "sex", "disabled") if c in ccols]
        if "census_year" in ccols:
            kids = (
                children.sort("census_year")
                .group_by(["child_id", "la_code"])
                .agg(pl.col(c).drop_nulls().last() for c in wanted)
            )
        else:
            kids = children.select(["child_id", "la_code", *wanted]).unique(
                subset=["child_id", "la_code"], keep="last"
            )
        eps = eps.join(kids, on=["child_id", "la_code"], how="left")
    return eps


def _complete_episodes(eps: pl.LazyFrame, rereferral_window: str) -> pl.LazyFrame:
    """Add any of the columns the unit sets need that the given episodes table lacks."""
    cols = eps.collect_schema().names()
    add: list[pl.Expr] = []
    for name, dtype in (
        ("closure_date", pl.Date),
        ("closure_reason", pl.String),
        ("primary_need", pl.String),
        ("referral_source", pl.String),
        ("birth_date", pl.Date),
        ("expected_birth_date", pl.Date),
        ("sex", pl.String),
        ("disabled", pl.Boolean),
    ):
        if name not in cols:
            add.append(pl.lit(None, dtype).alias(name))
    if "referral_nfa" not in cols:
        add.append(pl.lit(False).alias("referral_nfa"))
    if add:
        eps = eps.with_columns(add)
        cols = eps.collect_schema().names()
    if "last_census_year" not in cols:
        if "data_end" in cols:
            eps = eps.with_columns(pl.col("data_end").dt.year().alias("last_census_year"))
        else:
            eps = eps.with_columns(pl.lit(None, pl.Int32).alias("last_census_year"))
    if "first_census_year" not in cols:
        eps = eps.with_columns(pl.lit(None, pl.Int32).alias("first_census_year"))
    if "data_end" not in cols:
        eps = eps.with_columns(
            pl.date(pl.col("last_census_year"), 3, 31).alias("data_end"),
        )
    if "rereferral_12m" not in cols:
        eps = eps.sort(["child_id", "la_code", "referral_date"]).with_columns(
            pl.col("referral_date")
            .shift(1)
            .over(["child_id", "la_code"], order_by="referral_date")
            .alias("_previous_referral")
        )
        eps = eps.with_columns(
            (
                pl.col("_previous_referral").is_not_null()
                & (
                    pl.col("_previous_referral")
                    >= pl.col("referral_date").dt.offset_by(f"-{rereferral_window}")
                )
            ).alias("rereferral_12m")
        ).drop("_previous_referral")
    return eps


def prepare_inputs(data: Any, definitions: Definitions | None = None) -> IndicatorInputs:
    """Normalise a Store, a store path, a mapping of frames, or IndicatorInputs.

    With a mapping, ``episodes`` is used if present, else ``referrals`` (+ ``children``);
    ``assessments``, ``section47``, ``cp_plans`` and ``population`` are optional (their
    measures are skipped, with a warning, when absent).
    """
    if isinstance(data, IndicatorInputs):
        return data
    defs = definitions or load_definitions()
    window = str(defs.settings.get("rereferral_window", "1y"))
    frames = _frames_from(data)
    if frames.get("episodes") is not None:
        eps = _lazy(frames["episodes"])
    elif frames.get("referrals") is not None:
        eps = _episodes_from_referrals(_lazy(frames["referrals"]), _lazy(frames.get("children")))
    else:
        raise ValueError("indicators need an `episodes` table or a `referrals` table")
    assert eps is not None
    # Collected once (only the columns the unit sets use): every unit set scans it again.
    eps = _complete_episodes(eps, window).select(EPISODE_INPUT_COLUMNS).collect().lazy()

    def nested(name: str, keys: list[str]) -> pl.LazyFrame | None:
        frame = _lazy(frames.get(name))
        return None if frame is None else _latest_return(frame, keys).collect().lazy()

    pop = frames.get("population")
    population = None
    if pop is not None:
        population = _lazy(pop).collect()  # type: ignore[union-attr]
    return IndicatorInputs(
        episodes=eps,
        assessments=nested(
            "assessments", ["child_id", "la_code", "referral_date", "assessment_start"]
        ),
        section47=nested("section47", ["child_id", "la_code", "referral_date", "s47_start"]),
        cp_plans=nested("cp_plans", ["child_id", "la_code", "referral_date", "cpp_start"]),
        population=population,
        rereferral_window=window,
    )


_RETURN_TABLES = ("referrals", "children", "assessments", "section47", "cp_plans")
_CHILD_COLUMNS = ("birth_date", "expected_birth_date", "sex", "disabled")
_NESTED_KEYS = {
    "assessments": ["child_id", "la_code", "referral_date", "assessment_start"],
    "section47": ["child_id", "la_code", "referral_date", "s47_start"],
    "cp_plans": ["child_id", "la_code", "referral_date", "cpp_start"],
}


@dataclass
class ReturnFrames:
    """The loaded returns (one row per record per return, with ``census_year``) and population."""

    tables: dict[str, pl.LazyFrame]
    population: pl.DataFrame | None

    def up_to(self, census_year: int) -> ReturnFrames:
        """The returns up to ``census_year`` read into memory once (for several years' inputs)."""
        wanted = {
            name: frame.filter(pl.col("census_year") <= census_year)
            for name, frame in self.tables.items()
        }
        names = list(wanted)
        collected = pl.collect_all([wanted[n] for n in names])
        return ReturnFrames(
            tables={n: f.lazy() for n, f in zip(names, collected, strict=True)},
            population=self.population,
        )


def return_frames(data: Any) -> ReturnFrames:
    """The loaded (not merged) tables of a Store, a store path or a mapping of frames.

    Needs at least ``referrals`` with a ``census_year`` column; raises ``ValueError`` otherwise
    (use ``basis="revised"`` to compute from a merged ``episodes`` table).
    """
    if isinstance(data, ReturnFrames):
        return data
    found: dict[str, pl.LazyFrame] = {}
    population = None
    if isinstance(data, Mapping):
        for name in _RETURN_TABLES:
            frame = _lazy(data.get(name))
            if frame is not None:
                found[name] = frame
        pop = data.get("population")
    elif isinstance(data, IndicatorInputs):
        found, pop = {}, None
    else:
        from cinresearch.store import Store

        store = data if isinstance(data, Store) else Store(data)
        for name in _RETURN_TABLES:
            if store.table_parts(name):
                found[name] = _coerce(store.scan(name))
        pop = (
            store.scan("population")
            if (store.table_parts("population") or store.derived_path("population").exists())
            else None
        )
    refs = found.get("referrals")
    if refs is None or "census_year" not in refs.collect_schema().names():
        raise ValueError(
            "as-returned figures need the loaded returns (a `referrals` table with census_year); "
            "pass basis='revised' to compute from merged episodes"
        )
    for name, frame in list(found.items()):
        if "census_year" not in frame.collect_schema().names():
            raise ValueError(f"as-returned figures need `census_year` in the {name!r} table")
        found[name] = frame.with_columns(pl.col("census_year").cast(pl.Int32))
    if pop is not None:
        population = _lazy(pop).collect()  # type: ignore[union-attr]
    return ReturnFrames(tables=found, population=population)


def _children_in_return(children: pl.LazyFrame, census_year: int) -> pl.LazyFrame:
    """One row per (child_id, la_code): characteristics as recorded in the year-Y return.

    A child twice in one return (rule 8510) takes the greatest value of each column, so the
    result does not depend on row order.
    """
    cols = children.collect_schema().names()
    wanted = [c for c in _CHILD_COLUMNS if c in cols]
    return (
        children.filter(pl.col("census_year") == census_year)
        .group_by(["child_id", "la_code"])
        .agg(pl.col(c).max() for c in wanted)
    )


def inputs_as_returned(
    data: Any, census_year: int, definitions: Definitions | None = None
) -> IndicatorInputs:
    """Inputs for census year ``Y`` from the year-Y return, as DfE counts it.

    Episodes and nested records are those in the year-Y return, with the values (closure dates
    and reasons, categories, factors) and child characteristics (birth dates, sex, disability)
    recorded in that return. Earlier returns (census_year < Y) are read only for look-backs
    (re-referral within 12 months, an earlier CP plan); later returns are never read, so the
    year-Y figures do not move when later years are loaded.
    """
    defs = definitions or load_definitions()
    window = str(defs.settings.get("rereferral_window", "1y"))
    frames = return_frames(data)
    y = int(census_year)
    upto = {name: frame.filter(pl.col("census_year") <= y) for name, frame in frames.tables.items()}
    keys = ["child_id", "la_code", "referral_date"]
    history = (
        _latest_return(upto["referrals"], keys)
        .rename({"first_return": "first_census_year", "last_return": "last_census_year"})
        .collect()  # once: the re-referral look-back and the year-Y filter both read it
        .lazy()
    )
    history = history.drop(c for c in _CHILD_COLUMNS if c in history.collect_schema().names())
    if "children" in upto:
        history = history.join(
            _children_in_return(upto["children"], y), on=["child_id", "la_code"], how="left"
        )
    history = _complete_episodes(history, window)  # re-referral flags over returns <= Y
    eps = (
        history.filter(pl.col("last_census_year") == y)
        .select(EPISODE_INPUT_COLUMNS)
        .collect()
        .lazy()
    )

    def nested(name: str) -> pl.LazyFrame | None:
        if name not in upto:
            return None
        merged = _latest_return(upto[name], _NESTED_KEYS[name])
        if name == "cp_plans":
            merged = _with_second_or_subsequent(merged)
        return merged.filter(pl.col("last_return") == y).collect().lazy()

    return IndicatorInputs(
        episodes=eps,
        assessments=nested("assessments"),
        section47=nested("section47"),
        cp_plans=nested("cp_plans"),
        population=frames.population,
        rereferral_window=window,
    )


_TABLES = (
    "episodes",
    "referrals",
    "children",
    "assessments",
    "section47",
    "cp_plans",
    "population",
)
#: merged tables written by the journey build (``cinresearch.journeys``), preferred when present
_MERGED = {t: f"merged_{t}" for t in ("referrals", "assessments", "section47", "cp_plans")}


def _frames_from(data: Any) -> dict[str, pl.DataFrame | pl.LazyFrame | None]:
    if isinstance(data, Mapping):
        out = {name: data.get(name) for name in _TABLES}
        for name, merged in _MERGED.items():
            if out.get(name) is None and data.get(merged) is not None:
                out[name] = data[merged]
        return out
    from cinresearch.store import Store

    store = data if isinstance(data, Store) else Store(data)
    out = {}
    for name in _TABLES:
        merged = _MERGED.get(name)
        if merged is not None and store.derived_path(merged).exists():
            out[name] = store.scan(merged)
        elif store.derived_path(name).exists() or store.table_parts(name):
            out[name] = store.scan(name)
        else:
            out[name] = None
    return out


# ---------------------------------------------------------------------------------------------
# Population
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Unit sets: the records each measure counts, for one census year
# ---------------------------------------------------------------------------------------------


def _in_window(col: str, census_year: int) -> pl.Expr:
    start, end = census_window(census_year)
    return pl.col(col).is_between(pl.lit(start), pl.lit(end), closed="both")


def _source_group_expr() -> pl.Expr:
    try:
        from cinresearch.codes import groups

        mapping = groups("referral_source")
    except Exception:  # code lists unavailable: fall back to DfE's leading-number grouping
        mapping = {}
    leading = {
        "1": "Individual",
        "4": "Housing",
        "5": "LA services",
        "6": "Police",
        "7": "Other legal agency",
        "8": "Other",
        "9": "Anonymous",
        "10": "Unknown",
    }
    code = pl.col("referral_source").str.strip_chars().str.to_uppercase()
    by_code = code.replace_strict(mapping, default=None, return_dtype=pl.String)
    by_number = code.str.extract(r"^(\d+)", 1).replace_strict(
        leading, default=None, return_dtype=pl.String
    )
    return pl.coalesce(by_code, by_number, pl.lit("unrecognised"))


def _child_breakdowns(reference: pl.Expr | dt.date) -> list[pl.Expr]:
    """The breakdowns every unit set has: total, age band at ``reference``, sex, disability."""
    return [
        pl.lit("Total").alias("total"),
        age_band_expr(pl.col("birth_date"), reference, pl.col("expected_birth_date")).alias(
            "age_band"
        ),
        pl.col("sex").fill_null("U").alias("sex"),
        pl.when(pl.col("disabled").fill_null(False))
        .then(pl.lit("Yes"))
        .otherwise(pl.lit("No"))
        .alias("disabled"),
    ]


def _episode_breakdowns(reference: pl.Expr | dt.date) -> list[pl.Expr]:
    """:func:`_child_breakdowns` plus the episode's primary need."""
    return [
        *_child_breakdowns(reference),
        pl.col("primary_need").fill_null("missing").alias("primary_need"),
    ]


def _factor_list(frame: pl.LazyFrame) -> pl.Expr:
    """The assessment's factor codes as a list of strings (empty when none were recorded)."""
    dtype = frame.collect_schema().get("factors")
    if dtype is None:
        return pl.lit([], dtype=pl.List(pl.String))
    if dtype == pl.String:  # CSV fixtures: codes separated by ';' or ','
        codes = pl.col("factors").str.replace_all(r"[\s,]+", ";").str.split(";")
        return codes.list.eval(pl.element().filter(pl.element() != "")).fill_null([])
    return pl.col("factors").cast(pl.List(pl.String)).fill_null([])


def _episodes_with_no_factors(inp: IndicatorInputs, defs: Definitions) -> pl.LazyFrame | None:
    """Episode keys with an assessment recording "no factors identified" (settings)."""
    if inp.assessments is None:
        return None
    codes = [str(x) for x in defs.settings.get("no_factors_codes", ["21"])]
    return (
        inp.assessments.with_columns(_factor_list(inp.assessments).alias("_factors"))
        .filter(pl.col("_factors").list.eval(pl.element().is_in(codes)).list.any())
        .select("child_id", "la_code", "referral_date")
        .unique()
        .with_columns(pl.lit(True).alias("_no_factors"))
    )


def _units_referrals_in_year(inp: IndicatorInputs, y: int, defs: Definitions) -> pl.LazyFrame:
    eps = inp.episodes.filter(_in_window("referral_date", y))
    no_factors = _episodes_with_no_factors(inp, defs)
    if no_factors is None:
        eps = eps.with_columns(pl.lit(False).alias("_no_factors"))
    else:
        eps = eps.join(
            no_factors, on=["child_id", "la_code", "referral_date"], how="left"
        ).with_columns(pl.col("_no_factors").fill_null(False))
    not_in_need = [str(x) for x in defs.settings.get("not_in_need_closure_reasons", [])]
    nfa = pl.col("referral_nfa").fill_null(False)
    return eps.select(
        "la_code",
        "child_id",
        *_episode_breakdowns(pl.col("referral_date")),
        _source_group_expr().alias("source_group"),
        nfa.alias("nfa"),
        pl.col("rereferral_12m").fill_null(False).alias("rereferral_12m"),
        (
            ~nfa
            & (pl.col("closure_reason").fill_null("").is_in(not_in_need) | pl.col("_no_factors"))
        ).alias("assessed_not_in_need"),
    )


def _open_at_31_march(closure: str, last_return: str, y: int) -> pl.Expr:
    """Open at 31 March Y: closes after it, or has no closure and is in return Y or later."""
    _, end = census_window(y)
    return (pl.col(closure) > pl.lit(end)) | (
        pl.col(closure).is_null() & (pl.col(last_return).is_null() | (pl.col(last_return) >= y))
    )


def _episode_of_need(defs: Definitions) -> pl.Expr:
    not_in_need = [str(x) for x in defs.settings.get("not_in_need_closure_reasons", [])]
    return ~pl.col("referral_nfa").fill_null(False) & ~pl.col("closure_reason").fill_null("").is_in(
        not_in_need
    )


def _units_cin_episodes(inp: IndicatorInputs, y: int, defs: Definitions) -> pl.LazyFrame:
    start, end = census_window(y)
    in_return_y_or_later = pl.col("last_census_year").is_null() | (pl.col("last_census_year") >= y)
    open_in_year = (pl.col("referral_date") <= pl.lit(end)) & (
        (pl.col("closure_date") >= pl.lit(start))
        | (pl.col("closure_date").is_null() & in_return_y_or_later)
    )
    return inp.episodes.filter(open_in_year & _episode_of_need(defs)).select(
        "la_code",
        "child_id",
        *_episode_breakdowns(end),
        pl.col("closure_reason").fill_null("unknown").alias("closure_reason"),
        _in_window("referral_date", y).alias("starting"),
        _in_window("closure_date", y).fill_null(False).alias("ending"),
        month_duration_band_expr(
            pl.col("referral_date"), pl.col("closure_date"), defs.duration_bands
        ).alias("duration_band"),
    )


def _units_cin_at_31_march(inp: IndicatorInputs, y: int, defs: Definitions) -> pl.LazyFrame:
    _, end = census_window(y)
    cond = (
        (pl.col("referral_date") <= pl.lit(end))
        & ~pl.col("referral_nfa").fill_null(False)
        & _open_at_31_march("closure_date", "last_census_year", y)
    )
    return inp.episodes.filter(cond).select(
        "la_code",
        "child_id",
        *_episode_breakdowns(end),
        month_duration_band_expr(
            pl.col("referral_date"), pl.lit(end, pl.Date), defs.duration_bands
        ).alias("duration_band"),
    )


def _with_child(inp: IndicatorInputs, frame: pl.LazyFrame, reference: Any) -> pl.LazyFrame:
    kids = inp.child_characteristics
    clash = [
        c
        for c in ("birth_date", "expected_birth_date", "sex", "disabled")
        if c in frame.collect_schema().names()
    ]
    return (
        frame.drop(clash)
        .join(kids, on=["child_id", "la_code"], how="left")
        .with_columns(_child_breakdowns(reference))
    )


def _units_assessments_completed(inp: IndicatorInputs, y: int, defs: Definitions) -> pl.LazyFrame:
    assert inp.assessments is not None
    limit = int(defs.settings.get("assessment_timeliness_working_days", 45))
    wd = _working_days(pl.col("assessment_start"), pl.col("assessment_authorised"))
    units = inp.assessments.filter(_in_window("assessment_authorised", y)).with_columns(
        pl.when(pl.col("assessment_authorised") >= pl.col("assessment_start"))
        .then(wd)
        .otherwise(None)
        .cast(pl.Float64)
        .alias("working_days")
    )
    units = units.with_columns(
        pl.col("working_days").is_not_null().alias("has_duration"),
        (pl.col("working_days") <= limit).fill_null(False).alias("within_timescale"),
        working_day_band_expr(pl.col("working_days"), defs.assessment_duration_bands).alias(
            "assessment_duration_band"
        ),
    )
    return _with_child(inp, units, pl.col("assessment_authorised"))


def _units_section47_in_year(inp: IndicatorInputs, y: int, defs: Definitions) -> pl.LazyFrame:
    assert inp.section47 is not None
    units = inp.section47.filter(_in_window("s47_start", y))
    return _with_child(inp, units, pl.col("s47_start"))


def _units_icpcs_in_year(inp: IndicatorInputs, y: int, defs: Definitions) -> pl.LazyFrame:
    assert inp.section47 is not None
    limit = int(defs.settings.get("icpc_timeliness_working_days", 15))
    icpcs = (
        inp.section47.filter(_in_window("icpc_date", y))
        .group_by(["child_id", "la_code", "icpc_date"])
        .agg(
            pl.coalesce(
                pl.col("s47_start").filter(pl.col("s47_start") <= pl.col("icpc_date")).max(),
                pl.col("s47_start").min(),
            ).alias("s47_start")
        )
    )
    wd = _working_days(pl.col("s47_start"), pl.col("icpc_date"))
    icpcs = icpcs.with_columns(
        pl.when(pl.col("icpc_date") >= pl.col("s47_start"))
        .then(wd)
        .otherwise(None)
        .cast(pl.Float64)
        .alias("working_days")
    ).with_columns(
        pl.col("working_days").is_not_null().alias("has_duration"),
        (pl.col("working_days") <= limit).fill_null(False).alias("within_timescale"),
        working_day_band_expr(pl.col("working_days"), defs.icpc_duration_bands).alias(
            "icpc_duration_band"
        ),
    )
    return _with_child(inp, icpcs, pl.col("icpc_date"))


def _with_second_or_subsequent(plans: pl.LazyFrame) -> pl.LazyFrame:
    """Flag ``second_or_subsequent``: NumberOfPreviousCPP >= 1 or an earlier plan in ``plans``."""
    # a plan that is not the child's first in this LA among the plans given
    earlier = pl.col("cpp_start").rank("min").over(["child_id", "la_code"]) > 1
    return plans.with_columns(
        ((pl.col("previous_cpps").fill_null(0) >= 1) | earlier).alias("second_or_subsequent")
    )


def _cpp_common(inp: IndicatorInputs) -> pl.LazyFrame:
    assert inp.cp_plans is not None
    if "second_or_subsequent" in inp.cp_plans.collect_schema().names():
        return inp.cp_plans  # flagged over the look-back history (as-returned inputs)
    return _with_second_or_subsequent(inp.cp_plans)


def _units_cpp_starting_in_year(inp: IndicatorInputs, y: int, defs: Definitions) -> pl.LazyFrame:
    units = _cpp_common(inp).filter(_in_window("cpp_start", y))
    return _with_child(inp, units, pl.col("cpp_start"))


def _units_cpp_at_31_march(inp: IndicatorInputs, y: int, defs: Definitions) -> pl.LazyFrame:
    _, end = census_window(y)
    units = (
        _cpp_common(inp)
        .filter(
            (pl.col("cpp_start") <= pl.lit(end)) & _open_at_31_march("cpp_end", "last_return", y)
        )
        .with_columns(
            month_duration_band_expr(
                pl.col("cpp_start"), pl.lit(end, pl.Date), defs.duration_bands
            ).alias("duration_band")
        )
    )
    return _with_child(inp, units, end)


def _units_cpp_ending_in_year(inp: IndicatorInputs, y: int, defs: Definitions) -> pl.LazyFrame:
    units = (
        _cpp_common(inp)
        .filter(_in_window("cpp_end", y))
        .with_columns(
            month_duration_band_expr(
                pl.col("cpp_start"), pl.col("cpp_end"), defs.duration_bands
            ).alias("duration_band")
        )
    )
    return _with_child(inp, units, pl.col("cpp_end"))


def _units_cpp_in_year(inp: IndicatorInputs, y: int, defs: Definitions) -> pl.LazyFrame:
    start, end = census_window(y)
    in_later_return = pl.col("last_return").is_null() | (pl.col("last_return") >= y)
    units = _cpp_common(inp).filter(
        (pl.col("cpp_start") <= pl.lit(end))
        & ((pl.col("cpp_end") >= pl.lit(start)) | (pl.col("cpp_end").is_null() & in_later_return))
    )
    return _with_child(inp, units, end)


def _factor_group_expr() -> pl.Expr:
    from cinresearch.codes import groups

    return pl.col("_factor").replace_strict(
        groups("assessment_factor"), default="unrecognised", return_dtype=pl.String
    )


def _units_assessment_factors(inp: IndicatorInputs, y: int, defs: Definitions) -> pl.LazyFrame:
    """One row per (episode, factor group) over the episode's assessments completed in year.

    As DfE Table C3 (note 3), episodes where "no factors identified" was recorded are left out.
    """
    assert inp.assessments is not None
    none_codes = [str(x) for x in defs.settings.get("no_factors_codes", ["21"])]
    episode = ["child_id", "la_code", "referral_date"]
    done = inp.assessments.filter(_in_window("assessment_authorised", y))
    factors = done.with_columns(_factor_list(done).alias("_factor")).explode("_factor")
    return (
        factors.filter(
            pl.col("_factor").is_not_null()
            & ~pl.col("_factor").is_in(none_codes).any().over(episode)
        )
        .select(
            "la_code",
            "child_id",
            pl.concat_str(
                [pl.col("child_id"), pl.col("referral_date").cast(pl.String)], separator="|"
            ).alias("episode_key"),
            pl.lit("Total").alias("total"),
            _factor_group_expr().alias("assessment_factor"),
        )
        .unique()
    )


UnitSet = Callable[[IndicatorInputs, int, Definitions], pl.LazyFrame]

UNIT_SETS: dict[str, tuple[UnitSet, str | None]] = {
    # name: (implementation, nested table it needs or None)
    "referrals_in_year": (_units_referrals_in_year, None),
    "cin_episodes": (_units_cin_episodes, None),
    "cin_at_31_march": (_units_cin_at_31_march, None),
    "assessments_completed": (_units_assessments_completed, "assessments"),
    "section47_in_year": (_units_section47_in_year, "section47"),
    "icpcs_in_year": (_units_icpcs_in_year, "section47"),
    "cpp_starting_in_year": (_units_cpp_starting_in_year, "cp_plans"),
    "cpp_at_31_march": (_units_cpp_at_31_march, "cp_plans"),
    "cpp_ending_in_year": (_units_cpp_ending_in_year, "cp_plans"),
    "cpp_in_year": (_units_cpp_in_year, "cp_plans"),
    "assessment_factors": (_units_assessment_factors, "assessments"),
}


def unit_records(
    data: Any,
    unit_set: str,
    census_year: int,
    definitions: Definitions | None = None,
    basis: str = AS_RETURNED,
) -> pl.DataFrame:
    """The records a unit set counts for census year ``Y`` (for checks and drill-down).

    ``basis`` as in :func:`compute_indicators`. Contains pseudonymised ``child_id``: analysis
    use only, never for publication.
    """
    if basis not in BASES:
        raise ValueError(f"basis must be one of {BASES}, got {basis!r}")
    defs = definitions or load_definitions()
    if basis == REVISED:
        inp = prepare_inputs(data, defs)
    else:
        inp = inputs_as_returned(data, census_year, defs)
    func, needs = UNIT_SETS[unit_set]
    if needs is not None and getattr(inp, needs) is None:
        raise ValueError(f"unit set {unit_set!r} needs the {needs!r} table")
    return func(inp, census_year, defs).collect()


# ---------------------------------------------------------------------------------------------
# Aggregation
# ---------------------------------------------------------------------------------------------


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


def compute_indicators(
    store_or_frames: Any,
    census_year: int | Iterable[int],
    geography: Sequence[str] = ("national", "la"),
    *,
    measures: Sequence[str] | None = None,
    families: Sequence[str] | None = None,
    regions: Mapping[str, str] | pl.DataFrame | None = None,
    definitions: Definitions | None = None,
    basis: str = AS_RETURNED,
) -> pl.DataFrame:
    """All official measures (or the ``measures``/``families`` chosen) for census year(s) ``Y``.

    ``basis="as_returned"`` (the default, as DfE publishes) computes year ``Y`` from the year-Y
    return alone (:func:`inputs_as_returned`): loading later returns never changes it.
    ``basis="revised"`` uses the returns merged across all loaded years (latest return wins:
    later closures, corrections and characteristics apply to earlier years). Every row carries
    the basis in the ``basis`` column.

    ``geography`` picks levels from ``national``, ``regional`` and ``la``. Regions come from
    ``regions`` (LA code → region code, as a mapping or a frame with ``la_code, region_code``),
    else from the LA reference list (``data_contracts/codes/la_codes.yaml`` via
    :func:`cinresearch.geography.la_lookup`); LAs without a region are left out of the
    Regional rows with a warning. LA rows carry their region code whenever one is known.
    Returns the tidy frame described in the module docstring.
    """
    if basis not in BASES:
        raise ValueError(f"basis must be one of {BASES}, got {basis!r}")
    defs = definitions or load_definitions()
    chosen = list(defs.measures)
    if families is not None:
        unknown = set(families) - set(defs.families)
        if unknown:
            raise KeyError(f"unknown measure families: {sorted(unknown)}")
        chosen = [m for m in chosen if m.family in set(families)]
    if measures is not None:
        wanted = [defs.measure(x) for x in measures]
        chosen = [m for m in chosen if m in wanted]
    years = [census_year] if isinstance(census_year, int) else list(census_year)
    region_of = _region_map(regions)
    parts: list[pl.DataFrame] = []
    if basis == REVISED:
        inp = prepare_inputs(store_or_frames, defs)
        for y in years:
            parts.extend(_compute_year(inp, int(y), chosen, geography, region_of, defs))
    else:
        returns = return_frames(store_or_frames).up_to(max(int(y) for y in years))
        for y in years:
            inp_y = inputs_as_returned(returns, int(y), defs)
            parts.extend(_compute_year(inp_y, int(y), chosen, geography, region_of, defs))
    if not parts:
        return pl.DataFrame(schema=OUTPUT_SCHEMA)
    out = pl.concat(parts, how="vertical").with_columns(pl.lit(basis).alias("basis"))
    return _order(out, defs).cast(OUTPUT_SCHEMA)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# One function per official measure family
# ---------------------------------------------------------------------------------------------


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
