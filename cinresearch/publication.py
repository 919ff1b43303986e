"""Explore Education Statistics (EES) open-data files and report-ready tables.

``to_ees`` adds the standard EES columns to a tidy frame, in this order::

    time_period, time_identifier, geographic_level, country_code, country_name,
    region_code, region_name, old_la_code, new_la_code, la_name, <filters>, <indicators>

``write_ees_csv`` checks a frame against the EES rules and writes ``<name>.csv`` and
``<name>.meta.csv`` (UTF-8, lower-case snake_case names, indicator cells never blank).
Run tables through disclosure control first (:func:`cinresearch.disclosure.protect_publication`
for all files of a publication together, or ``apply_publication_sdc`` for a lone table), so
indicators are already rounded, suppressed and carry symbols.

Geography columns by level (conventions from ``data_contracts/publication.yaml``): National rows
leave the region and LA columns empty; Regional rows fill ``region_code``/``region_name``; LA rows
fill the LA columns and their region. LA names, ONS codes and regions come from
``data_contracts/codes/la_codes.yaml`` (via :mod:`cinresearch.geography`), chosen for the row's
census year (codes changed at reorganisations, e.g. North Yorkshire E10000023 -> E06000065 from
2024). An LA code missing from that list (e.g. a synthetic "9xx" code) gets ``la_name = "Local
authority <code>"`` and empty ``new_la_code``/``region_code``/``region_name`` (unless a region
column is supplied), with an :class:`UnknownLACodeWarning`. Geography columns are text, not indicators, so empty is allowed
there; indicator cells must hold a number or a GSS symbol. ``time_period`` is written as text
("2024").
"""

from __future__ import annotations

import functools
import html
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from cinresearch.disclosure import PublishedTable, SdcSpec, format_rate, protect_publication
from cinresearch.geography import la_lookup, regions, valid_in_year
from cinresearch.indicators import compute_indicators, load_definitions

__all__ = [
    "UnknownLACodeWarning",
    "ees_conventions",
    "styled_table_html",
    "to_ees",
    "write_ees_csv",
]

CONTRACTS_DIR = Path(__file__).resolve().parents[1] / "data_contracts"
_GSS_LA = re.compile(r"^E\d{8}$")


class UnknownLACodeWarning(UserWarning):
    """An LA code is not in ``data_contracts/codes/la_codes.yaml``."""


# ----------------------------------------------------------------------------- reference data


@functools.cache
def _load_yaml(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def ees_conventions() -> dict[str, Any]:
    """``data_contracts/publication.yaml`` (EES layout, symbols, disclosure defaults), cached."""
    return _load_yaml(str(CONTRACTS_DIR / "publication.yaml"))


# ----------------------------------------------------------------------------- to_ees


def _value_or_column(value: Any, frame: pl.DataFrame) -> tuple[pl.Expr, str | None]:
    """An expression for ``value``: a pl.Expr, a column name in ``frame``, or a literal."""
    if isinstance(value, pl.Expr):
        names = value.meta.root_names()
        return value, (names[0] if len(names) == 1 else None)
    if isinstance(value, str) and value in frame.columns:
        return pl.col(value), value
    return pl.lit(None if value is None else str(value), pl.String), None


def _snake(name: str) -> bool:
    return re.fullmatch(ees_conventions()["ees"]["column_name_pattern"], name) is not None


def to_ees(
    frame: pl.DataFrame,
    time_period: int | str | pl.Expr,
    geographic_level: str | pl.Expr,
    la_code: str | int | pl.Expr | None = None,
    *,
    region_code: str | pl.Expr | None = None,
    filters: Sequence[str] | None = None,
    indicators: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Add the standard EES columns (in EES order) to a tidy frame, then filters, then indicators.

    ``time_period``, ``geographic_level``, ``la_code`` and ``region_code`` are each a literal
    (e.g. ``2024``, ``"Local authority"``, ``"805"``), the name of a column of ``frame``, or an
    expression, so one frame may mix National, Regional and LA rows. ``la_code`` may be the DfE
    3-digit code or the ONS ``E0...`` code; it defaults to a ``la_code`` column if there is one,
    and ``region_code`` (E12 code or region name) to a ``region_code`` column. Columns used as
    sources are consumed. If only one of ``filters``/``indicators`` is given the other is the
    remaining columns; if neither, numeric columns are indicators and the rest filters.
    """
    conv = ees_conventions()["ees"]
    if la_code is None and "la_code" in frame.columns:
        la_code = "la_code"
    if region_code is None and "region_code" in frame.columns:
        region_code = "region_code"
    tp_expr, tp_src = _value_or_column(time_period, frame)
    level_expr, level_src = _value_or_column(geographic_level, frame)
    la_expr, la_src = _value_or_column(la_code, frame)
    region_expr, region_src = _value_or_column(region_code, frame)
    consumed = {c for c in (tp_src, level_src, la_src, region_src) if c} | set(
        conv["standard_columns"]
    )
    rest = [c for c in frame.columns if c not in consumed]
    filters, indicators = _split_columns(frame, rest, filters, indicators)

    work = frame.with_row_index("__row").with_columns(
        tp_expr.cast(pl.String).alias("__tp"),
        level_expr.cast(pl.String).alias("__level"),
        la_expr.cast(pl.String).str.strip_chars().alias("__la"),
        region_expr.cast(pl.String).str.strip_chars().alias("__region"),
    )
    bad_levels = set(work["__level"].unique().to_list()) - set(conv["geographic_levels"])
    if bad_levels:
        raise ValueError(
            f"geographic_level must be one of {conv['geographic_levels']}: {bad_levels}"
        )
    bad_tp = work.filter(~pl.col("__tp").str.contains(conv["time_period_pattern"]).fill_null(False))
    if bad_tp.height:
        raise ValueError(f"time_period must be a 4-digit reporting year, got {bad_tp['__tp'][0]!r}")

    work = _attach_la(work)
    work = _attach_region(work)
    level = pl.col("__level")
    is_la = level == "Local authority"
    is_region = level == "Regional"
    has_region = is_la | is_region
    out = work.with_columns(
        pl.col("__tp").alias("time_period"),
        pl.lit(conv["time_identifier"]).alias("time_identifier"),
        level.alias("geographic_level"),
        pl.lit(conv["country"]["code"]).alias("country_code"),
        pl.lit(conv["country"]["name"]).alias("country_name"),
        pl.when(has_region).then(pl.col("__region_code")).alias("region_code"),
        pl.when(has_region).then(pl.col("__region_name")).alias("region_name"),
        pl.when(is_la).then(pl.col("__old")).alias("old_la_code"),
        pl.when(is_la).then(pl.col("__new")).alias("new_la_code"),
        pl.when(is_la).then(pl.col("__la_name")).alias("la_name"),
    )
    return out.sort("__row").select(*conv["standard_columns"], *filters, *indicators)


def _split_columns(
    frame: pl.DataFrame,
    rest: list[str],
    filters: Sequence[str] | None,
    indicators: Sequence[str] | None,
) -> tuple[list[str], list[str]]:
    if filters is None and indicators is None:
        numeric = [c for c in rest if frame.schema[c].is_numeric()]
        return [c for c in rest if c not in numeric], numeric
    if filters is None:
        assert indicators is not None
        return [c for c in rest if c not in indicators], list(indicators)
    if indicators is None:
        return list(filters), [c for c in rest if c not in filters]
    missing = [c for c in [*filters, *indicators] if c not in frame.columns]
    if missing:
        raise ValueError(f"columns not in frame: {missing}")
    return list(filters), list(indicators)


def _attach_la(work: pl.DataFrame) -> pl.DataFrame:
    """Add __old, __new, __la_name, __la_region_code for LA rows (by census year)."""
    lookup = la_lookup()
    by_old = lookup.with_columns(pl.col("old_la_code").alias("__key"))
    by_new = lookup.with_columns(pl.col("new_la_code").alias("__key"))
    keyed = pl.concat([by_old, by_new]).unique(maintain_order=True)
    joined = (
        work.select("__row", "__tp", "__la", "__level")
        .filter(pl.col("__level") == "Local authority")
        .join(keyed, left_on="__la", right_on="__key", how="left")
        .with_columns(
            __fit=valid_in_year(pl.col("__tp").cast(pl.Int32)),
            __last=pl.col("last_census_year").fill_null(9999),
        )
        .sort(["__row", "__fit", "__last"], descending=[False, True, True])
        .unique("__row", keep="first", maintain_order=True)
    )
    unknown = joined.filter(pl.col("old_la_code").is_null() & pl.col("__la").is_not_null())
    if unknown.height:
        codes = sorted(unknown["__la"].unique().to_list())
        warnings.warn(
            f"LA codes not in data_contracts/codes/la_codes.yaml: {codes}; named "
            "'Local authority <code>' with empty new_la_code and region",
            UnknownLACodeWarning,
            stacklevel=3,
        )
    missing_code = joined.filter(pl.col("__la").is_null())
    if missing_code.height:
        raise ValueError(f"{missing_code.height} Local authority rows have no la_code")
    name_template = ees_conventions()["ees"]["unknown_la_name"]
    prefix, suffix = name_template.split("{code}")
    joined = joined.select(
        "__row",
        pl.coalesce("old_la_code", "__la").alias("__old"),
        pl.col("new_la_code").alias("__new"),
        pl.coalesce("la_name", pl.concat_str(pl.lit(prefix), "__la", pl.lit(suffix))).alias(
            "__la_name"
        ),
        pl.col("region_code").alias("__la_region_code"),
    )
    return work.join(joined, on="__row", how="left")


def _attach_region(work: pl.DataFrame) -> pl.DataFrame:
    """Add __region_code/__region_name: the LA's region, else the supplied code or name."""
    regs = regions()
    supplied = (
        work.select("__row", "__region")
        .join(regs, left_on="__region", right_on="region_code", how="left")
        .join(
            regs.rename({"region_code": "__code_from_name", "region_name": "__rn"}),
            left_on="__region",
            right_on="__rn",
            how="left",
        )
        .select(
            "__row",
            pl.coalesce(
                pl.when(pl.col("region_name").is_not_null()).then(pl.col("__region")),
                "__code_from_name",
            ).alias("__supplied_code"),
        )
    )
    out = work.join(supplied, on="__row", how="left").with_columns(
        pl.coalesce("__la_region_code", "__supplied_code").alias("__region_code")
    )
    unknown_regional = out.filter(
        (pl.col("__level") == "Regional") & pl.col("__region_code").is_null()
    )
    if unknown_regional.height:
        raise ValueError(
            "Regional rows need a known region_code (E12000001-E12000009) or region name; got "
            f"{sorted(set(unknown_regional['__region'].to_list()), key=str)}"
        )
    return out.join(
        regs.rename({"region_code": "__region_code", "region_name": "__region_name"}),
        on="__region_code",
        how="left",
    )


# ----------------------------------------------------------------------------- write_ees_csv


def _humanise(name: str) -> str:
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def write_ees_csv(
    frame: pl.DataFrame,
    path: str | Path,
    filters: Sequence[str],
    indicators: Sequence[str],
    labels: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    dp: Mapping[str, int] | None = None,
    *,
    filter_hints: Mapping[str, str] | None = None,
    filter_groupings: Mapping[str, str] | None = None,
    indicator_groupings: Mapping[str, str] | None = None,
    filter_defaults: Mapping[str, str] | None = None,
    blank_symbol: str | None = None,
) -> tuple[Path, Path]:
    """Validate and write an EES data file ``<name>.csv`` and its ``<name>.meta.csv``.

    ``path`` is the data file (``.csv`` optional); ``<name>`` must be lower-case snake_case.
    Columns written: the standard columns present (in EES order), then ``filters``, then
    ``indicators``. Checks: required columns, one ``time_identifier``, known geographic levels
    with their geography columns filled, snake_case headers, no blank filter or indicator cells
    (or fill indicators with ``blank_symbol``), indicator text is a number or a GSS symbol
    (legacy ``:``/``~`` rejected), units from the EES list. Defaults: label = column name in
    sentence case, unit "" and dp blank. Returns the two paths.
    """
    conv = ees_conventions()
    ees, symbols = conv["ees"], conv["symbols"]
    target = Path(path)
    name = target.name[:-4] if target.name.endswith(".csv") else target.name
    if not re.fullmatch(ees["file_name_pattern"], name):
        raise ValueError(f"EES file names are lower-case snake_case: {name!r}")
    labels, units, dp = dict(labels or {}), dict(units or {}), dict(dp or {})

    missing = [
        c for c in [*ees["required_columns"], *filters, *indicators] if c not in frame.columns
    ]
    if missing:
        raise ValueError(f"columns not in frame: {missing}")
    overlap = set(filters) & set(indicators)
    if overlap:
        raise ValueError(f"columns cannot be both filter and indicator: {sorted(overlap)}")
    standard = [c for c in ees["standard_columns"] if c in frame.columns]
    extra = [c for c in frame.columns if c not in {*standard, *filters, *indicators}]
    if extra:
        raise ValueError(f"columns neither standard, filter nor indicator: {extra}")
    columns = [*standard, *filters, *indicators]
    bad_names = [c for c in columns if not _snake(c)]
    if bad_names:
        raise ValueError(f"EES headers are lower-case snake_case: {bad_names}")

    data = frame.select(columns).with_columns(pl.col(columns).cast(pl.String))
    _check_standard(data, ees)
    for col in filters:
        if (data[col].is_null() | (data[col].str.strip_chars() == "")).any():
            raise ValueError(f"filter {col!r} has blank cells")
        if ees["total_label"] not in set(data[col].to_list()):
            warnings.warn(f"filter {col!r} has no {ees['total_label']!r} level", stacklevel=2)
    allowed_symbols = {v for k, v in symbols.items() if k != "legacy_rejected"}
    for col in indicators:
        blank = data[col].is_null() | (data[col].str.strip_chars() == "")
        if blank.any():
            if blank_symbol is None:
                raise ValueError(
                    f"indicator {col!r} has {int(blank.sum())} blank cells; use a symbol "
                    f"({sorted(allowed_symbols)}) or pass blank_symbol"
                )
            data = data.with_columns(
                pl.when(blank).then(pl.lit(blank_symbol)).otherwise(pl.col(col)).alias(col)
            )
        text = data[col]
        not_number = text.cast(pl.Float64, strict=False).is_null()
        bad = set(text.filter(not_number).unique().to_list()) - allowed_symbols
        if bad:
            legacy = bad & set(symbols["legacy_rejected"])
            hint = f" (legacy symbols {sorted(legacy)} fail DfE's checks)" if legacy else ""
            raise ValueError(
                f"indicator {col!r} has values that are not numbers or symbols: {sorted(bad)}{hint}"
            )

    for col, unit in units.items():
        if unit not in ees["indicator_units"]:
            raise ValueError(
                f"unit {unit!r} of {col!r} is not an EES unit {ees['indicator_units']}"
            )

    meta = _meta_frame(
        filters,
        indicators,
        labels=labels,
        units=units,
        dp=dp,
        hints=dict(filter_hints or {}),
        groupings=dict(filter_groupings or {}),
        indicator_groupings=dict(indicator_groupings or {}),
        defaults=dict(filter_defaults or {}),
        meta_columns=ees["meta_columns"],
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    data_path = target.with_name(f"{name}.csv")
    meta_path = target.with_name(f"{name}{ees['meta_suffix']}")
    data.write_csv(data_path, line_terminator="\n")
    meta.write_csv(meta_path, line_terminator="\n")
    return data_path, meta_path


def _check_standard(data: pl.DataFrame, ees: Mapping[str, Any]) -> None:
    identifiers = data["time_identifier"].unique().to_list()
    if len(identifiers) != 1:
        raise ValueError(f"one time_identifier per file, found {identifiers}")
    bad_tp = data.filter(
        ~data["time_period"].str.contains(ees["time_period_pattern"]).fill_null(False)
    )
    if bad_tp.height:
        raise ValueError(f"time_period must be 4 digits: {bad_tp['time_period'][0]!r}")
    levels = set(data["geographic_level"].unique().to_list())
    if levels - set(ees["geographic_levels"]):
        raise ValueError(
            f"unknown geographic_level {sorted(levels - set(ees['geographic_levels']), key=str)}"
        )
    for level, required in ees["required_by_level"].items():
        rows = data.filter(pl.col("geographic_level") == level)
        for col in required:
            if col not in data.columns:
                if rows.height:
                    raise ValueError(f"{level} rows need column {col!r}")
                continue
            empty = rows[col].is_null() | (rows[col] == "")
            if empty.any():
                raise ValueError(f"{int(empty.sum())} {level} rows have an empty {col!r}")
    for level, recommended in ees.get("recommended_by_level", {}).items():
        rows = data.filter(pl.col("geographic_level") == level)
        for col in recommended:
            if col in data.columns and (rows[col].is_null() | (rows[col] == "")).any():
                warnings.warn(
                    f"{level} rows with an empty {col!r} (LA codes not in the reference list?); "
                    "DfE's file checks expect it filled",
                    UnknownLACodeWarning,
                    stacklevel=3,
                )


def _meta_frame(
    filters: Sequence[str],
    indicators: Sequence[str],
    *,
    labels: Mapping[str, str],
    units: Mapping[str, str],
    dp: Mapping[str, int],
    hints: Mapping[str, str],
    groupings: Mapping[str, str],
    indicator_groupings: Mapping[str, str],
    defaults: Mapping[str, str],
    meta_columns: Sequence[str],
) -> pl.DataFrame:
    rows: list[dict[str, str]] = []
    for col in filters:
        rows.append(
            {
                "col_name": col,
                "col_type": "Filter",
                "label": labels.get(col, _humanise(col)),
                "filter_hint": hints.get(col, ""),
                "filter_grouping_column": groupings.get(col, ""),
                "filter_default": defaults.get(col, ""),
            }
        )
    for col in indicators:
        rows.append(
            {
                "col_name": col,
                "col_type": "Indicator",
                "label": labels.get(col, _humanise(col)),
                "indicator_grouping": indicator_groupings.get(col, ""),
                "indicator_unit": units.get(col, ""),
                "indicator_dp": "" if dp.get(col) is None else str(int(dp[col])),
            }
        )
    columns = list(meta_columns) + (["filter_default"] if defaults else [])
    return pl.DataFrame(
        [{c: row.get(c, "") for c in columns} for row in rows],
        schema=dict.fromkeys(columns, pl.String),
    )


# ----------------------------------------------------------------------------- HTML tables


def styled_table_html(
    frame: pl.DataFrame,
    title: str,
    notes: Sequence[str] | str | None = None,
    *,
    subtitle: str | None = None,
) -> str:
    """A report-ready HTML table (great-tables; a plain styled table if that is unavailable).

    Text is escaped; ``notes`` (e.g. symbol legend, source, rounding) go under the table.
    """
    notes_list = [notes] if isinstance(notes, str) else list(notes or [])
    try:  # great-tables is imported only when a styled table is drawn (slow to import)
        from great_tables import GT

        table = GT(frame).tab_header(title=title, subtitle=subtitle)
        for note in notes_list:
            table = table.tab_source_note(note)
        return table.as_raw_html()
    except Exception:  # pragma: no cover - fallback when great-tables cannot render the frame
        return _plain_html(frame, title, notes_list, subtitle)


def _plain_html(frame: pl.DataFrame, title: str, notes: Sequence[str], subtitle: str | None) -> str:
    esc = html.escape
    numeric = {c for c, t in frame.schema.items() if t.is_numeric()}
    head = "".join(f"<th>{esc(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"num" if c in numeric else "txt"}">{esc("" if v is None else str(v))}</td>'
            for c, v in zip(frame.columns, row, strict=True)
        )
        + "</tr>"
        for row in frame.iter_rows()
    )
    caption = f"<strong>{esc(title)}</strong>" + (f"<br>{esc(subtitle)}" if subtitle else "")
    foot = "".join(f"<p class='note'>{esc(n)}</p>" for n in notes)
    style = (
        "<style>.cin-table{border-collapse:collapse;font-family:sans-serif;font-size:0.9em}"
        ".cin-table th{border-bottom:2px solid #333;text-align:left;padding:4px 8px}"
        ".cin-table td{border-bottom:1px solid #ddd;padding:4px 8px}"
        ".cin-table td.num{text-align:right}.note{font-size:0.8em;color:#555}</style>"
    )
    return (
        f'{style}<table class="cin-table"><caption>{caption}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{foot}"
    )


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
