"""The publication spec (:class:`SdcSpec`) and its application to one tidy table.

:func:`apply_publication_sdc` protects a lone table (rounded levels get primary suppression
only); a publication of several tables goes through
:func:`cinresearch.disclosure.audit.protect_publication`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from cinresearch.disclosure.cells import protect_cells, require_columns
from cinresearch.disclosure.rounding import (
    SYMBOLS,
    Symbols,
    format_count,
    format_rate,
    numeric_value,
    ratio_from_rounded,
)

# ----------------------------------------------------------------------------- publication spec


@dataclass(frozen=True)
class SdcSpec:
    """What to protect in a tidy publication frame and how (defaults: DfE CIN conventions).

    ``rates`` and ``percentages`` map each indicator column to its numerator count column;
    ``denominators`` optionally maps a percentage to its denominator count column (the percentage
    is then also suppressed when the denominator is). ``by`` defaults to every column that is not
    a filter or an indicator (time period and geography columns).
    """

    counts: tuple[str, ...] = ()
    rates: Mapping[str, str] = field(default_factory=dict)
    percentages: Mapping[str, str] = field(default_factory=dict)
    denominators: Mapping[str, str] = field(default_factory=dict)
    filters: tuple[str, ...] = ()
    by: tuple[str, ...] | None = None
    geographic_level_col: str = "geographic_level"
    rounded_levels: tuple[str, ...] = ("National", "Regional")
    threshold: int = 5
    min_count: int = 1
    rounding_base: int = 10
    decimals: int = 1
    total_label: str = "Total"
    secondary: bool = True
    secondary_at_rounded_levels: bool = False
    #: DfE's 2018 tables also suppressed a percentage when denominator - numerator was 1..5.
    suppress_small_complements: bool = False
    #: Rates/percentages that are numerator / denominator (recomputed from rounded counts at
    #: rounded levels); None = all of them. Others (e.g. a median) are only suppressed.
    proportional: tuple[str, ...] | None = None
    symbols: Symbols = SYMBOLS

    @classmethod
    def from_mapping(cls, spec: Mapping[str, Any]) -> SdcSpec:
        """Build from a plain mapping (e.g. parsed YAML); lists become tuples."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"unknown SDC spec keys: {sorted(unknown)}")
        values = dict(spec)
        for key in ("counts", "filters", "by", "rounded_levels", "proportional"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        if isinstance(values.get("symbols"), Mapping):
            values["symbols"] = Symbols(**values["symbols"])
        return cls(**values)

    def count_columns(self) -> list[str]:
        """Counts to protect: published counts plus every numerator/denominator."""
        cols = [*self.counts, *self.rates.values(), *self.percentages.values()]
        cols += list(self.denominators.values())
        return list(dict.fromkeys(cols))

    def indicator_columns(self) -> list[str]:
        return list(dict.fromkeys([*self.count_columns(), *self.rates, *self.percentages]))


def apply_publication_sdc(frame: pl.DataFrame, spec: SdcSpec | Mapping[str, Any]) -> pl.DataFrame:
    """Apply disclosure control to a tidy publication frame; indicator columns become text.

    Counts (and every numerator/denominator) get primary suppression, and secondary suppression
    across the filter columns within each ``by`` group at unrounded (LA) levels; counts at
    ``rounded_levels`` (England, regions) are rounded half up to ``rounding_base``; rates and
    percentages are shown to ``decimals`` places, recomputed at rounded levels from the rounded
    counts, and suppressed with their numerator. Cells are never blank: see :class:`Symbols`.
    Row and column order are kept. One table only: for a publication of several tables use
    :func:`protect_publication`.
    """
    spec = spec if isinstance(spec, SdcSpec) else SdcSpec.from_mapping(spec)
    indicators = spec.indicator_columns()
    require_columns(frame, [*indicators, *spec.filters])
    if spec.rounded_levels and spec.geographic_level_col not in frame.columns:
        raise ValueError(
            f"column {spec.geographic_level_col!r} is needed to round {spec.rounded_levels} rows"
        )
    by = (
        list(spec.by)
        if spec.by is not None
        else [c for c in frame.columns if c not in set(indicators) | set(spec.filters)]
    )
    rounded = (
        pl.col(spec.geographic_level_col).is_in(list(spec.rounded_levels))
        if spec.rounded_levels
        else pl.lit(False)
    )
    work = frame.with_row_index("__row").with_columns(rounded.alias("__rounded"))

    flags: dict[str, pl.Series] = {}
    for col in spec.count_columns():
        parts = []
        for is_rounded, part in work.partition_by("__rounded", as_dict=True).items():
            use_secondary = spec.secondary and (
                not is_rounded[0] or spec.secondary_at_rounded_levels
            )
            protected = protect_cells(
                part.select("__row", col, *spec.filters, *by),
                col,
                list(spec.filters),
                by=by,
                threshold=spec.threshold,
                min_count=spec.min_count,
                total_label=spec.total_label,
                secondary=use_secondary,
                suppressed_col="__supp",
            )
            parts.append(protected.select("__row", "__supp"))
        flags[col] = pl.concat(parts).sort("__row")["__supp"]

    work = work.with_columns(
        pl.Series(f"__supp_{c}", s, dtype=pl.Boolean) for c, s in flags.items()
    )
    symbols = spec.symbols
    exprs: list[pl.Expr] = []
    for col in spec.count_columns():
        exprs.append(
            pl.when(pl.col("__rounded"))
            .then(
                format_count(
                    col,
                    suppressed=pl.col(f"__supp_{col}"),
                    rounding_base=spec.rounding_base,
                    symbols=symbols,
                )
            )
            .otherwise(format_count(col, suppressed=pl.col(f"__supp_{col}"), symbols=symbols))
            .alias(col)
        )
    for col, numerator in [*spec.rates.items(), *spec.percentages.items()]:
        supp = pl.col(f"__supp_{numerator}")
        denominator = spec.denominators.get(col)
        if denominator is not None:
            supp = supp | pl.col(f"__supp_{denominator}")
            if spec.suppress_small_complements:
                complement = numeric_value(pl.col(denominator)) - numeric_value(pl.col(numerator))
                small = (complement >= spec.min_count) & (complement <= spec.threshold)
                supp = supp | small.fill_null(False)
        value = pl.col(col).cast(pl.Float64, strict=False)
        if spec.proportional is None or col in spec.proportional:
            from_rounded = ratio_from_rounded(
                value, pl.col(numerator), col in spec.percentages, spec.rounding_base
            )
            value = pl.when(pl.col("__rounded")).then(from_rounded).otherwise(value)
        exprs.append(
            format_rate(value, suppressed=supp, decimals=spec.decimals, symbols=symbols).alias(col)
        )
    out = work.with_columns(exprs)
    return out.select(frame.columns)
