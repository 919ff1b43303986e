"""Statistical disclosure control (SDC) for every published CIN table.

Defaults follow DfE's CIN publication conventions (see ``domain/publication_conventions.md``);
each one is a parameter:

* **Primary suppression**: counts from 1 to 5 inclusive are confidential, shown as ``c``.
  True zeros are published as ``0``.
* **Secondary suppression**: a suppressed cell must not be recoverable by subtraction from the
  totals. Tables are tidy (long) frames whose filter columns each carry a ``Total`` level. Within
  each group (by default: each time period x geography), every filter defines *lines*: the cells
  that differ only in that filter, plus their ``Total`` cell (sum of the interior = total). This
  covers the totals row and column of a two-way table and the grand total.

  1. *Margin rule* (the DfE convention): while some line contains exactly one hidden cell,
     suppress the next-smallest non-zero published cell of that line (the total cell included).
  2. *Linear audit* (the guarantee): a suppressed cell is recoverable iff it is a linear function
     of the published cells, i.e. iff its unit vector lies in the row space of the line equations
     restricted to the hidden cells, equivalently iff every null-space vector of that system is
     zero at the cell. The audit computes the null space (SVD); for each recoverable cell it
     suppresses the smallest non-zero cell (cells sharing a line first) that makes it
     unrecoverable, and repeats until no suppressed cell is recoverable. The margin rule alone is
     not enough: two suppressed 2x2 blocks joined through one shared row and column ("dumbbell")
     satisfy it, yet the joining cell is fixed by adding and subtracting four margins.

  Guarantee: no suppressed cell is determined by the published cells, the totals and the additive
  structure. Because secondary cells are chosen non-zero, each suppressed cell can also move in
  both directions while keeping every cell non-negative (the tests check this with linear
  programs). Not guaranteed: protection intervals of a given width (e.g. against an intruder who
  knows every suppressed cell is 1-5); use tau-argus for that. Null (not available) cells count as
  hidden; a cell missing from the frame is treated, conservatively, as a published zero.
* **Rounding**: England and regional counts are rounded to the nearest 10, LA figures are not.
  Rounded levels get primary suppression but no secondary suppression by default (the rounding
  already stops recovery by subtraction).
* **Rates and percentages** are shown to 1 decimal place; a rate/percentage whose numerator (or,
  if given, denominator) count is suppressed is suppressed too.
* **Half-up rounding**: ties go away from zero (2.5 -> 3, 25 -> 30 at base 10, 0.05 -> 0.1 at
  1 dp), as in Excel/SAS ``ROUND``. Python's ``round``, numpy and polars round half to even, and
  binary floats store 0.05 or 1.005 slightly off, so values are first snapped to 9 decimals of the
  rounding unit: ties are recognised to within 1e-9 of a unit.

Symbols (GSS): ``c`` confidential, ``z`` not applicable (NaN, e.g. a percentage of zero),
``x`` not available (null), ``low`` non-zero but rounds to zero, ``0`` a true zero. Indicator
cells are never blank.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, overload

import numpy as np
import polars as pl
import scipy.linalg

__all__ = [
    "LEGACY_SYMBOLS",
    "SYMBOLS",
    "SdcSpec",
    "Symbols",
    "apply_publication_sdc",
    "format_count",
    "format_rate",
    "primary_suppression",
    "protect_cells",
    "protect_table",
    "recoverable_cells",
    "round_half_up",
    "suppress_counts",
]


@dataclass(frozen=True)
class Symbols:
    """GSS symbols written in place of numbers (DfE EES accepts these)."""

    confidential: str = "c"
    not_applicable: str = "z"
    not_available: str = "x"
    low: str = "low"
    zero: str = "0"

    def all(self) -> tuple[str, ...]:
        return (self.confidential, self.not_applicable, self.not_available, self.low, self.zero)


SYMBOLS = Symbols()
#: Symbols from older releases that DfE's file checks now reject.
LEGACY_SYMBOLS: tuple[str, ...] = (":", "~")

_SNAP_DECIMALS = 9  # ties are recognised to within 1e-9 of the rounding unit


# ----------------------------------------------------------------------------- rounding


def _rounding_unit(base: float | None, decimals: int | None) -> tuple[float | None, int | None]:
    if base is not None and decimals is not None:
        raise ValueError("give either base or decimals, not both")
    if base is None and decimals is None:
        decimals = 0
    if base is not None and base <= 0:
        raise ValueError(f"base must be positive, got {base}")
    return base, decimals


def _half_up_expr(expr: pl.Expr, base: float | None, decimals: int | None) -> pl.Expr:
    """Half-up (away from zero) rounding as a Float64 expression."""
    x = expr.cast(pl.Float64)
    if base is not None:
        scaled = (x.abs() / base).round(_SNAP_DECIMALS)
        return (scaled + 0.5).floor() * base * x.sign()
    assert decimals is not None
    factor = 10.0**decimals
    scaled = (x.abs() * factor).round(_SNAP_DECIMALS)
    return (scaled + 0.5).floor() / factor * x.sign()


def _half_up_scalar(value: Any, base: float | None, decimals: int | None) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return value
    # repr() gives the shortest decimal that round-trips, i.e. what the user typed (0.05, 1.005).
    exact = Decimal(value) if isinstance(value, int) else Decimal(repr(float(value)))
    if base is not None:
        step = Decimal(repr(base)) if isinstance(base, float) else Decimal(base)
        rounded = (exact / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step
        return int(rounded) if isinstance(base, int) and isinstance(value, int) else float(rounded)
    assert decimals is not None
    rounded = exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    if decimals <= 0 and isinstance(value, int):
        return int(rounded)
    return float(rounded)


@overload
def round_half_up(
    value: pl.Expr, *, base: float | None = None, decimals: int | None = None
) -> pl.Expr: ...
@overload
def round_half_up(
    value: pl.Series, *, base: float | None = None, decimals: int | None = None
) -> pl.Series: ...
@overload
def round_half_up(
    value: float, *, base: float | None = None, decimals: int | None = None
) -> float: ...
def round_half_up(value: Any, *, base: float | None = None, decimals: int | None = None) -> Any:
    """Round half up (ties away from zero) to a multiple of ``base`` or to ``decimals`` places.

    Works on a polars expression, a Series, or a Python number. ``round_half_up(25, base=10)`` is
    30, ``round_half_up(2.5)`` is 3.0, ``round_half_up(0.05, decimals=1)`` is 0.1. With an integer
    ``base`` expressions/Series return Int64 (NaN becomes null), otherwise Float64. Python ints
    with an integer base return ints.
    """
    base, decimals = _rounding_unit(base, decimals)
    if isinstance(value, pl.Expr):
        out = _half_up_expr(value, base, decimals)
        return out.cast(pl.Int64, strict=False) if isinstance(base, int) else out
    if isinstance(value, pl.Series):
        return pl.select(round_half_up(pl.lit(value), base=base, decimals=decimals)).to_series()
    return _half_up_scalar(value, base, decimals)


def _scaled_half_up_int(expr: pl.Expr, decimals: int) -> pl.Expr:
    """Integer k with value ~= k / 10**decimals, rounded half up (exact digits for display)."""
    x = expr.cast(pl.Float64)
    scaled = (x.abs() * 10.0**decimals).round(_SNAP_DECIMALS)
    return ((scaled + 0.5).floor() * x.sign()).cast(pl.Int64, strict=False)


def _fixed_point_string(k: pl.Expr, decimals: int) -> pl.Expr:
    """Format integer k as k / 10**decimals with exactly ``decimals`` places ("12.0", "-0.5")."""
    if decimals <= 0:
        return k.cast(pl.String)
    unit = 10**decimals
    magnitude = k.abs()
    return pl.concat_str(
        pl.when(k < 0).then(pl.lit("-")).otherwise(pl.lit("")),
        (magnitude // unit).cast(pl.String),
        pl.lit("."),
        (magnitude % unit).cast(pl.String).str.zfill(decimals),
    )


# ----------------------------------------------------------------------------- formatting


def _numeric(expr: pl.Expr) -> pl.Expr:
    """Numeric view of a column; text such as an existing symbol becomes null."""
    return expr.cast(pl.Float64, strict=False)


def _existing_symbol(expr: pl.Expr) -> pl.Expr:
    """For a text column: the text where it is not a number (a symbol already set), else null."""
    text = expr.cast(pl.String)
    return pl.when(_numeric(text).is_null()).then(text).otherwise(pl.lit(None, pl.String))


def format_count(
    value: pl.Expr | str,
    *,
    suppressed: pl.Expr | bool = False,
    rounding_base: int | None = None,
    symbols: Symbols = SYMBOLS,
) -> pl.Expr:
    """Display string for a count: symbol or digits, never blank.

    null -> ``x``, NaN -> ``z``, suppressed -> ``c``, 0 -> ``0``; with ``rounding_base`` the value
    is rounded half up and a non-zero value that rounds to 0 becomes ``low``. Text that is not a
    number (a symbol set upstream) passes through unchanged.
    """
    raw = pl.col(value) if isinstance(value, str) else value
    v = _numeric(raw)
    shown = v if rounding_base is None else _half_up_expr(v, float(rounding_base), None)
    return _display(raw, v, _scaled_half_up_int(shown, 0), 0, suppressed, symbols)


def format_rate(
    value: pl.Expr | str,
    *,
    suppressed: pl.Expr | bool = False,
    decimals: int = 1,
    symbols: Symbols = SYMBOLS,
) -> pl.Expr:
    """Display string for a rate/percentage at ``decimals`` places, half up ("12.0", "low", "c").

    null -> ``x``, NaN -> ``z``, suppressed -> ``c``, exactly 0 -> ``0``, non-zero rounding to
    zero -> ``low``. Existing symbols pass through.
    """
    raw = pl.col(value) if isinstance(value, str) else value
    v = _numeric(raw)
    return _display(raw, v, _scaled_half_up_int(v, decimals), decimals, suppressed, symbols)


def _display(
    raw: pl.Expr,
    v: pl.Expr,
    k: pl.Expr,
    decimals: int,
    suppressed: pl.Expr | bool,
    symbols: Symbols,
) -> pl.Expr:
    """The symbol cascade shared by counts and rates: ``k`` is the value scaled to an integer
    at ``decimals`` places (after any rounding to a base)."""
    supp = suppressed if isinstance(suppressed, pl.Expr) else pl.lit(bool(suppressed))
    return (
        pl.when(_existing_symbol(raw).is_not_null())
        .then(_existing_symbol(raw))
        .when(v.is_null())
        .then(pl.lit(symbols.not_available))
        .when(v.is_nan())
        .then(pl.lit(symbols.not_applicable))
        .when(supp.fill_null(False))
        .then(pl.lit(symbols.confidential))
        .when(v == 0)
        .then(pl.lit(symbols.zero))
        .when(k == 0)
        .then(pl.lit(symbols.low))
        .otherwise(_fixed_point_string(k, decimals))
    )


# ----------------------------------------------------------------------------- primary


def primary_suppression(value: pl.Expr | str, threshold: int = 5, min_count: int = 1) -> pl.Expr:
    """True where ``min_count <= value <= threshold`` (default: counts 1 to 5)."""
    v = _numeric(pl.col(value) if isinstance(value, str) else value)
    return ((v >= min_count) & (v <= threshold)).fill_null(False)


def suppress_counts(
    frame: pl.DataFrame,
    count_cols: Sequence[str],
    threshold: int = 5,
    *,
    min_count: int = 1,
    symbols: Symbols = SYMBOLS,
    flag_suffix: str | None = None,
) -> pl.DataFrame:
    """Primary suppression only: each count column becomes display text (``c`` for 1..threshold).

    No secondary suppression, so use it for tables without published totals; otherwise use
    :func:`protect_table` or :func:`apply_publication_sdc`. With ``flag_suffix`` (e.g.
    ``"_suppressed"``) a boolean flag column is added per count column.
    """
    _require_columns(frame, count_cols)
    flags = {c: primary_suppression(c, threshold, min_count) for c in count_cols}
    out = frame
    if flag_suffix:
        out = out.with_columns(flag.alias(f"{c}{flag_suffix}") for c, flag in flags.items())
    return out.with_columns(
        format_count(c, suppressed=flags[c], symbols=symbols).alias(c) for c in count_cols
    )


# ----------------------------------------------------------------------------- secondary engine


@dataclass
class _Lines:
    """Additive constraints of one table: for each line, interior cells sum to a total cell."""

    members: list[np.ndarray]  # all cells of each line (interior + total)
    matrix: np.ndarray  # lines x cells: +1 interior, -1 total


def _build_lines(levels: list[tuple[Any, ...]], total_label: Any) -> _Lines:
    n_dims = len(levels[0]) if levels else 0
    index = {key: i for i, key in enumerate(levels)}
    members: list[np.ndarray] = []
    rows: list[tuple[list[int], int]] = []
    for d in range(n_dims):
        interiors: dict[tuple[Any, ...], list[int]] = {}
        for i, key in enumerate(levels):
            if key[d] != total_label:
                interiors.setdefault(key[:d] + key[d + 1 :], []).append(i)
        for rest, interior in interiors.items():
            total = index.get(rest[:d] + (total_label,) + rest[d:])
            if total is None:
                continue  # this filter has no Total here: no margin to subtract from
            rows.append((interior, total))
            members.append(np.array([*interior, total]))
    matrix = np.zeros((len(rows), len(levels)))
    for r, (interior, total) in enumerate(rows):
        matrix[r, interior] = 1.0
        matrix[r, total] = -1.0
    return _Lines(members=members, matrix=matrix)


def _determined(matrix: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """Boolean per cell: hidden cells whose value follows linearly from the published ones."""
    out = np.zeros(hidden.shape, dtype=bool)
    unknown = np.flatnonzero(hidden)
    if unknown.size == 0:
        return out
    sub = matrix[:, unknown]
    sub = sub[np.any(sub != 0, axis=1)]
    if sub.shape[0] == 0:
        return out  # hidden cells in no line at all cannot be recovered
    null = scipy.linalg.null_space(sub)
    if null.shape[1] == 0:
        out[unknown] = True
        return out
    out[unknown] = np.linalg.norm(null, axis=1) < 1e-9
    return out


def _smallest(cells: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Cells ordered by value then position (deterministic tie-break)."""
    return cells[np.lexsort((cells, values[cells]))]


def _secondary(
    values: np.ndarray,
    missing: np.ndarray,
    suppressed: np.ndarray,
    lines: _Lines,
    *,
    linear_audit: bool = True,
) -> np.ndarray:
    """Add secondary suppressions to ``suppressed`` (margin rule, then linear audit)."""
    supp = suppressed.copy()
    hidden = supp | missing
    safe_values = np.where(missing, np.inf, values)

    def pick(candidates: np.ndarray) -> int | None:
        candidates = candidates[~hidden[candidates]]
        nonzero = candidates[safe_values[candidates] > 0]
        pool = nonzero if nonzero.size else candidates
        return int(_smallest(pool, safe_values)[0]) if pool.size else None

    changed = True
    while changed:  # margin rule
        changed = False
        for line in lines.members:
            if hidden[line].sum() == 1:
                chosen = pick(line)
                if chosen is not None:
                    supp[chosen] = hidden[chosen] = True
                    changed = True
    if not linear_audit:
        return supp

    while True:  # linear audit
        recoverable = np.flatnonzero(_determined(lines.matrix, hidden) & supp)
        if recoverable.size == 0:
            return supp
        target = int(_smallest(recoverable, safe_values)[0])
        in_line = np.zeros(values.shape, dtype=bool)
        for line in lines.members:
            if target in line:
                in_line[line] = True
        open_cells = np.flatnonzero(~hidden)
        if open_cells.size == 0:
            return supp  # nothing left to suppress (structurally recoverable, e.g. a lone total)
        ordered = np.concatenate(
            [
                _smallest(open_cells[in_line[open_cells] & (safe_values[open_cells] > 0)], values),
                _smallest(open_cells[~in_line[open_cells] & (safe_values[open_cells] > 0)], values),
                _smallest(open_cells[safe_values[open_cells] <= 0], values),
            ]
        )
        chosen = int(ordered[0])
        for cell in ordered:
            trial = hidden.copy()
            trial[cell] = True
            if not _determined(lines.matrix, trial)[target]:
                chosen = int(cell)
                break
        supp[chosen] = hidden[chosen] = True


def recoverable_cells(
    frame: pl.DataFrame,
    hidden_col: str,
    dims: Sequence[str],
    *,
    total_label: str = "Total",
) -> pl.Series:
    """Audit: True for hidden cells of one table that the published cells determine linearly."""
    levels = list(frame.select(dims).iter_rows())
    lines = _build_lines(levels, total_label)
    hidden = frame[hidden_col].to_numpy().astype(bool)
    return pl.Series("recoverable", _determined(lines.matrix, hidden))


def protect_cells(
    frame: pl.DataFrame,
    value_col: str,
    dims: Sequence[str],
    *,
    by: Sequence[str] = (),
    threshold: int = 5,
    min_count: int = 1,
    total_label: str = "Total",
    secondary: bool = True,
    linear_audit: bool = True,
    suppressed_col: str = "suppressed",
) -> pl.DataFrame:
    """Primary + secondary suppression flags for a tidy table; adds boolean ``suppressed_col``.

    ``dims`` are the filter columns (each with a ``total_label`` level); ``by`` splits the frame
    into independent tables (e.g. time period and geography). Values are not changed. Rows must
    be unique on ``by + dims``.
    """
    _require_columns(frame, [value_col, *dims, *by])
    keys = [*by, *dims]
    if keys and frame.select(keys).is_duplicated().any():
        raise ValueError(f"rows are not unique on {keys}: one row per table cell is required")
    values_all = frame[value_col].cast(pl.Float64, strict=False).to_numpy()
    missing_all = np.isnan(values_all)
    primary_all = frame.select(primary_suppression(value_col, threshold, min_count)).to_series()
    suppressed_all = primary_all.to_numpy().astype(bool).copy()

    if secondary and dims:
        work = frame.select(keys).with_row_index("__row")
        groups = (
            [work["__row"].to_numpy()]
            if not by
            else [
                g.to_numpy()
                for g in work.group_by(list(by), maintain_order=True).agg("__row")["__row"]
            ]
        )
        level_rows = list(frame.select(dims).iter_rows())
        for rows in groups:
            if not suppressed_all[rows].any():
                continue
            lines = _build_lines([level_rows[i] for i in rows], total_label)
            suppressed_all[rows] = _secondary(
                values_all[rows],
                missing_all[rows],
                suppressed_all[rows],
                lines,
                linear_audit=linear_audit,
            )
    return frame.with_columns(pl.Series(suppressed_col, suppressed_all, dtype=pl.Boolean))


def protect_table(
    frame: pl.DataFrame,
    value_col: str,
    row_col: str,
    col_col: str,
    threshold: int = 5,
    total_label: str = "Total",
    *,
    by: Sequence[str] = (),
    min_count: int = 1,
    rounding_base: int | None = None,
    symbols: Symbols = SYMBOLS,
) -> pl.DataFrame:
    """Protect a two-way table given in long form with its totals row, column and grand total.

    Returns the frame with a boolean ``suppressed`` and a string ``value_display`` (``c`` where
    suppressed; other symbols as in :func:`format_count`). See the module docstring for the rule.
    """
    out = protect_cells(
        frame,
        value_col,
        [row_col, col_col],
        by=by,
        threshold=threshold,
        min_count=min_count,
        total_label=total_label,
    )
    return out.with_columns(
        format_count(
            value_col,
            suppressed=pl.col("suppressed"),
            rounding_base=rounding_base,
            symbols=symbols,
        ).alias("value_display")
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
    symbols: Symbols = SYMBOLS

    @classmethod
    def from_mapping(cls, spec: Mapping[str, Any]) -> SdcSpec:
        """Build from a plain mapping (e.g. parsed YAML); lists become tuples."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"unknown SDC spec keys: {sorted(unknown)}")
        values = dict(spec)
        for key in ("counts", "filters", "by", "rounded_levels"):
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
    percentages are shown to ``decimals`` places and suppressed with their numerator. Cells are
    never blank: see :class:`Symbols`. Row and column order are kept.
    """
    spec = spec if isinstance(spec, SdcSpec) else SdcSpec.from_mapping(spec)
    indicators = spec.indicator_columns()
    _require_columns(frame, [*indicators, *spec.filters])
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
                complement = _numeric(pl.col(denominator)) - _numeric(pl.col(numerator))
                small = (complement >= spec.min_count) & (complement <= spec.threshold)
                supp = supp | small.fill_null(False)
        exprs.append(
            format_rate(col, suppressed=supp, decimals=spec.decimals, symbols=symbols).alias(col)
        )
    out = work.with_columns(exprs)
    return out.select(frame.columns)


# ----------------------------------------------------------------------------- helpers


def _require_columns(frame: pl.DataFrame, cols: Iterable[str]) -> None:
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ValueError(f"columns not in frame: {missing}; frame has {frame.columns}")
