"""Explore Education Statistics (EES) files: the standard columns (``to_ees``), checked CSV and metadata writing (``write_ees_csv``) and report-ready HTML tables.

Part of :mod:`cinresearch.publication`.
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

from cinresearch.geography import la_lookup, regions, valid_in_year

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "data_contracts"
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
