"""The official-measures publication of a report: one headline file and one file per measure and breakdown, protected together by :func:`cinresearch.disclosure.protect_publication`.

Part of :mod:`cinresearch.publication`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from cinresearch.disclosure import PublishedTable, SdcSpec, format_rate, protect_publication
from cinresearch.indicators import compute_indicators, load_definitions
from cinresearch.publication.ees import UnknownLACodeWarning, _humanise, to_ees, write_ees_csv

# ------------------------------------------------------------------ indicator tables for a report

_UNIT = {"count": "", "rate_per_10000": "", "percent": "%", "working_days": ""}
_DP = {"count": 0, "rate_per_10000": 1, "percent": 1, "working_days": 1}
_LEVELS = ("National", "Regional", "Local authority")
_INDICATOR_LABELS = {
    "number": "Number",
    "rate": "Rate per 10,000 children aged 0 to 17",
    "percentage": "Percentage",
}


def _headline_frame(ind: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, Any]]:
    """One row per geography, one column per total-breakdown measure, plus the SDC spec."""
    total = ind.filter(pl.col("breakdown") == "total")
    geo = ["census_year", "geographic_level", "region_code", "la_code"]
    # in measure order (indicators.yaml), so the file's columns never depend on hashing
    units = dict(total.select("measure", "unit").unique(maintain_order=True).iter_rows())
    wide = total.pivot(on="measure", index=geo, values="value", aggregate_function="first")
    counts = [m for m, u in units.items() if u == "count"]
    rates: dict[str, str] = {}
    percentages: dict[str, str] = {}
    extra: dict[str, pl.DataFrame] = {}
    quantities = {c: c for c in counts}  # the figure each count column is (shared margins)
    for measure, unit in units.items():
        if unit == "count":
            continue
        base = measure.removesuffix("_rate").removesuffix("_pct")
        if unit in ("rate_per_10000", "percent") and base in counts:
            numerator = base
        else:
            source = "numerator" if unit in ("rate_per_10000", "percent") else "denominator"
            numerator = f"{measure}_number" if source == "numerator" else f"{measure}_records"
            extra[numerator] = total.filter(pl.col("measure") == measure).select(
                *geo, pl.col(source).alias(numerator)
            )
            quantities[numerator] = f"{measure}::{source}"
        (percentages if unit == "percent" else rates)[measure] = numerator
    for frame in extra.values():
        wide = wide.join(frame, on=geo, how="left", nulls_equal=True)
    spec = {"counts": tuple(counts + list(extra)), "rates": rates, "percentages": percentages}
    column_units = {**units, **dict.fromkeys(extra, "count")}
    return wide, {"spec": spec, "units": column_units, "quantities": quantities}


def _matching_count(
    ind: pl.DataFrame, measure: str, breakdown: str, counts: list[str]
) -> str | None:
    """The count measure with the same breakdown whose numerators equal this measure's."""
    key = ["census_year", "geographic_level", "region_code", "la_code", "breakdown_level"]
    mine = ind.filter(pl.col("measure") == measure, pl.col("breakdown") == breakdown).select(
        *key, pl.col("numerator").alias("_mine")
    )
    for count in counts:
        theirs = ind.filter(pl.col("measure") == count, pl.col("breakdown") == breakdown).select(
            *key, pl.col("numerator").alias("_theirs")
        )
        joined = mine.join(theirs, on=key, how="inner", nulls_equal=True)
        if joined.height == mine.height and (joined["_mine"] == joined["_theirs"]).all():
            return count
    return None


def _breakdown_frames(ind: pl.DataFrame) -> list[tuple[str, str, pl.DataFrame, dict[str, Any]]]:
    """(file stem, breakdown, frame, spec/units) for each count measure by each breakdown."""
    out = []
    geo = ["census_year", "geographic_level", "region_code", "la_code"]
    totals = ind.filter(pl.col("breakdown") == "total")
    for breakdown in sorted(set(ind["breakdown"].unique().to_list()) - {"total"}):
        part = ind.filter(pl.col("breakdown") == breakdown)
        units = dict(part.select("measure", "unit").unique().iter_rows())
        counts = sorted(m for m, u in units.items() if u == "count")
        groups: dict[str, dict[str, str]] = {c: {"number": c} for c in counts}
        for measure, unit in sorted(units.items()):
            if unit == "count":
                continue
            base = _matching_count(ind, measure, breakdown, counts)
            if base is None:
                groups[measure] = {"number": measure + "::numerator", _role(unit): measure}
            else:
                groups[base][_role(unit)] = measure
        for stem, roles in groups.items():
            columns = []
            for role, measure in roles.items():
                name, source = (measure.split("::") + ["value"])[:2]
                rows = part.filter(pl.col("measure") == name)
                total_rows = totals.filter(pl.col("measure") == name)
                if total_rows.is_empty() and role == "number":
                    total_rows = totals.filter(pl.col("measure") == stem)
                total_rows = total_rows.with_columns(pl.lit("Total").alias("breakdown_level"))
                rows = pl.concat([total_rows, rows], how="diagonal_relaxed")
                columns.append(rows.select(*geo, "breakdown_level", pl.col(source).alias(role)))
            frame = columns[0]
            for extra in columns[1:]:
                frame = frame.join(
                    extra, on=[*geo, "breakdown_level"], how="full", coalesce=True, nulls_equal=True
                )
            frame = _with_total_level(frame, geo)
            frame = frame.rename({"breakdown_level": breakdown})
            spec: dict[str, Any] = {"counts": ("number",), "rates": {}, "percentages": {}}
            col_units = {"number": "count"}
            if "rate" in roles:
                spec["rates"]["rate"] = "number"
                col_units["rate"] = "rate_per_10000"
            if "percentage" in roles:
                spec["percentages"]["percentage"] = "number"
                col_units["percentage"] = "percent"
            name = stem if f"_by_{breakdown}" in stem else f"{stem}_by_{breakdown}"
            meta = {"spec": spec, "units": col_units, "quantities": {"number": roles["number"]}}
            out.append((name, breakdown, frame, meta))
    return out


def _with_total_level(frame: pl.DataFrame, geo: list[str]) -> pl.DataFrame:
    """Add a ``Total`` level (sum of the levels' numbers) where a geography has none."""
    has_total = frame.filter(pl.col("breakdown_level") == "Total").select(geo).unique()
    levels = frame.filter(pl.col("breakdown_level") != "Total")
    missing = levels.join(has_total, on=geo, how="anti", nulls_equal=True)
    if missing.is_empty():
        return frame
    totals = (
        missing.group_by(geo)
        .agg(pl.col("number").sum())
        .with_columns(pl.lit("Total").alias("breakdown_level"))
    )
    return pl.concat([totals, frame], how="diagonal_relaxed")


def _role(unit: str) -> str:
    return {"rate_per_10000": "rate", "percent": "percentage"}.get(unit, "value")


#: label suffix of every indicator in files computed on the revised basis
REVISED_LABEL = "revised: later returns applied"


def _declared_dp(column: str, unit: str) -> int:
    """Decimal places of a published column: the measure's ``dp`` in indicators.yaml if the
    column is a measure, else by unit (counts 0, rates and percentages 1)."""
    try:
        return load_definitions().measure(column).dp
    except KeyError:
        return _DP.get(unit, 0)


def _to_declared_dp(
    protected: pl.DataFrame, unrounded: pl.DataFrame, columns: Mapping[str, int], decimals: int
) -> pl.DataFrame:
    """Re-display numeric cells of value columns (quantiles: whole working days) whose declared
    ``dp`` differs from the disclosure control's ``decimals``, rounded half up from the
    unrounded value. Only for columns that are neither counts nor percentages/rates of counts
    (those are shown as disclosure control derived them). Symbols set by disclosure control
    are kept; rows are matched on every non-indicator column."""
    redo = {c: places for c, places in columns.items() if places != decimals}
    if not redo:
        return protected
    keys = [c for c in protected.columns if unrounded.schema.get(c) == protected.schema[c]]
    keys = [c for c in keys if c not in redo]
    exact = unrounded.select(*keys, *[pl.col(c).alias(f"_exact_{c}") for c in redo])
    joined = protected.join(exact, on=keys, how="left", nulls_equal=True, maintain_order="left")
    for col, places in redo.items():
        number = pl.col(col).cast(pl.Float64, strict=False).is_not_null()
        joined = joined.with_columns(
            pl.when(number)
            .then(format_rate(pl.col(f"_exact_{col}"), decimals=places))
            .otherwise(pl.col(col))
            .alias(col)
        )
    return joined.select(protected.columns)


def _prepare(
    frame: pl.DataFrame,
    name: str,
    filters: list[str],
    meta: dict[str, Any],
    threshold: int,
    basis: str = "as_returned",
) -> tuple[Any, dict[str, Any]]:
    """An EES frame (numbers, before disclosure control) and how to write it."""
    indicators = [c for c in frame.columns if c in _spec_indicators(meta)]
    proportional = tuple(
        c for c in indicators if meta["units"].get(c) in ("rate_per_10000", "percent")
    )
    spec = SdcSpec.from_mapping(
        {
            **meta["spec"],
            "filters": tuple(filters),
            "threshold": threshold,
            "proportional": proportional,
        }
    )
    frame = frame.sort(
        pl.col("geographic_level").replace_strict(
            {lv: i for i, lv in enumerate(_LEVELS)}, default=9
        ),
        "region_code",
        "la_code",
        *filters,
        nulls_last=False,
    )
    ees = to_ees(
        frame.with_columns(pl.col(indicators).cast(pl.Float64)),
        time_period="census_year",
        geographic_level="geographic_level",
        la_code="la_code",
        region_code="region_code",
        filters=filters,
        indicators=indicators,
    )
    table = PublishedTable(name, ees, spec, dict(meta.get("quantities", {})))
    units = {c: _UNIT.get(meta["units"].get(c, "count"), "") for c in indicators}
    dp = {c: _declared_dp(c, meta["units"].get(c, "count")) for c in indicators}
    values = {
        c: dp[c]
        for c in indicators
        if (c in spec.rates or c in spec.percentages) and c not in proportional
    }
    labels = {c: _INDICATOR_LABELS.get(c, _humanise(c)) for c in indicators}
    hints = (
        {filters[0]: OVERLAPPING_LEVELS} if filters and _levels_overlap(frame, filters[0]) else {}
    )
    if basis == "revised":
        labels = {c: f"{label} ({REVISED_LABEL})" for c, label in labels.items()}
    return table, {
        "filters": filters,
        "indicators": indicators,
        "labels": labels,
        "units": units,
        "dp": dp,
        "values_at_declared_dp": values,
        "filter_hints": hints,
    }


#: filter hint of a breakdown whose levels overlap (e.g. factors identified at assessment)
OVERLAPPING_LEVELS = "Levels overlap (one record can count at several); they do not add up to Total"


def _levels_overlap(frame: pl.DataFrame, breakdown: str) -> bool:
    """Whether a breakdown's levels sum to more than its ``Total`` anywhere (a record can have
    several levels, so no additive equation joins them; disclosure control then adds none)."""
    if "number" not in frame.columns:
        return False
    geo = [c for c in ("census_year", "geographic_level", "region_code", "la_code") if c in frame]
    total = frame.filter(pl.col(breakdown) == "Total").select(*geo, _total="number")
    parts = (
        frame.filter(pl.col(breakdown) != "Total")
        .group_by(geo)
        .agg(_sum=pl.col("number").cast(pl.Float64).sum())
    )
    joined = total.join(parts, on=geo, nulls_equal=True)
    return bool(joined.select((pl.col("_sum") > pl.col("_total") + 1e-9).any()).item())


def _spec_indicators(meta: dict[str, Any]) -> set[str]:
    spec = meta["spec"]
    return {*spec["counts"], *spec["rates"], *spec["percentages"]}


def publication_tables(
    store: Any,
    census_year: int,
    *,
    suppression_threshold: int = 5,
    basis: str = "as_returned",
) -> list[tuple[Any, dict[str, Any]]]:
    """Every table of the official-measures publication as (PublishedTable, write options),
    with true values (before disclosure control); file name = ``table.name + ".csv"``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownLACodeWarning)  # synthetic LA codes have no ONS code
        # LAs without a known region simply get no Regional rows
        warnings.filterwarnings("ignore", message="regional indicators requested")
        ind = compute_indicators(
            store, census_year, geography=("national", "regional", "la"), basis=basis
        )
        ind = ind.with_columns(pl.col("census_year").cast(pl.Int64))
        headline, meta = _headline_frame(ind)
        tables = [
            _prepare(headline, "cin_headline_measures", [], meta, suppression_threshold, basis)
        ]
        for stem, breakdown, frame, meta in _breakdown_frames(ind):
            tables.append(_prepare(frame, stem, [breakdown], meta, suppression_threshold, basis))
    _link_shared_totals(tables)
    return tables


def _link_shared_totals(tables: list[tuple[Any, dict[str, Any]]]) -> None:
    """``X_by_F``'s ``Total`` rows are the headline figure ``X`` (or ``X_number``) as a reader
    sees it: name them so, and disclosure control treats equal cells as one figure."""
    headline = tables[0][0].quantities
    for table, _ in tables[1:]:
        base = table.name.removesuffix(f"_by_{table.spec.filters[0]}")
        shared = headline.get(base) or headline.get(f"{base}_number")
        if shared:
            table.quantities["number"] = shared


def write_indicator_tables(
    store: Any,
    census_year: int,
    out_dir: str | Path,
    *,
    suppression_threshold: int = 5,
    basis: str = "as_returned",
    disclosure_options: Mapping[str, Any] | None = None,
) -> list[str]:
    """Official measures for ``census_year`` as EES CSVs (+ ``.meta.csv``) after disclosure control.

    Writes ``cin_headline_measures.csv`` (one row per geography, every total measure) and one
    file per measure and breakdown (e.g. ``cin_at_31_march_by_age_band.csv``) with a ``Total``
    level. Disclosure control runs once over all files together
    (:func:`cinresearch.disclosure.protect_publication`, see docs/disclosure.md), so a figure
    shared by two files is suppressed in both and no suppressed cell can be worked out from
    the other files or geographies. ``disclosure_options`` are passed on to it. Returns names.

    ``basis="as_returned"`` (default, as DfE) counts the year from its own return, so the files
    do not change when later returns are loaded; ``basis="revised"`` applies later returns and
    every indicator label in the ``.meta.csv`` files says so (:data:`REVISED_LABEL`). Indicators
    are written with the decimal places declared in ``data_contracts/indicators.yaml``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = publication_tables(
        store, census_year, suppression_threshold=suppression_threshold, basis=basis
    )
    protected = protect_publication([t for t, _ in tables], **dict(disclosure_options or {}))
    written = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownLACodeWarning)
        for table, options in tables:
            options = dict(options)
            values = options.pop("values_at_declared_dp")
            shown = _to_declared_dp(protected[table.name], table.frame, values, table.spec.decimals)
            path = out / f"{table.name}.csv"
            write_ees_csv(shown, path, **options)
            written.append(path.name)
    return written
