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
  Within one table (:func:`apply_publication_sdc`) rounded levels get primary suppression only.
  Rounding alone does not stop recovery (a region's 10 allows 5..14; with its other LAs known a
  suppressed LA cell can be pinned), so a publication of several tables goes through
  :func:`protect_publication`: one interval audit over all files and levels, shared figures as
  one cell, no region row for a region with one LA (see docs/disclosure.md).
* **Rates and percentages** are shown to 1 decimal place, at rounded levels recomputed from the
  rounded counts; a rate/percentage whose numerator (or, if given, denominator) count is
  suppressed is suppressed too.
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
    "CellSystem",
    "PublishedTable",
    "SdcSpec",
    "Symbols",
    "apply_publication_sdc",
    "drop_thin_aggregates",
    "is_protected",
    "protect_publication",
    "published_interval",
    "format_count",
    "format_rate",
    "primary_suppression",
    "protect_cells",
    "protect_table",
    "recoverable_cells",
    "round_half_up",
    "suppress_counts",
    "table_suppression_flags",
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
        # never a zero: zeros are published as 0, so a reader may take every c as >= 1
        pool = candidates[safe_values[candidates] > 0]
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
            ]
        )
        if ordered.size == 0:
            return supp  # only zeros left, and hiding a zero would not hide anything
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


# ----------------------------------------------------------------------------- displayed tables


def table_suppression_flags(
    frame: pl.DataFrame,
    counts: Sequence[str],
    needed: Sequence[str],
    *,
    threshold: int = 5,
    filters: Sequence[str] = (),
    by: Sequence[str] = (),
    total_label: str = "Total",
    rounding_base: int | None = None,
    row_totals: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, pl.Series]:
    """Suppression flags of a displayed table (report notebooks), one per column in ``needed``.

    Primary suppression for every column; for ``counts`` secondary suppression along
    ``filters`` margins (per ``by`` group) and along ``row_totals`` (``{total: [parts]}``,
    columns that add up along each row). A table with ``rounding_base`` (England) gets no
    secondary suppression: its counts are rounded.
    """
    secondary = rounding_base is None
    flags: dict[str, pl.Series] = {}
    for col in needed:
        if filters and secondary and col in counts:
            protected = protect_cells(
                frame.select(*by, *filters, col),
                col,
                list(filters),
                by=list(by),
                threshold=threshold,
                total_label=total_label,
                suppressed_col="__supp",
            )
            flags[col] = protected["__supp"]
        else:
            flags[col] = frame.select(primary_suppression(col, threshold)).to_series()
    for total, parts in (row_totals or {}).items() if secondary else ():
        columns = [total, *parts]
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"row_totals columns not in frame: {missing}")
        if total_label in columns:
            raise ValueError(f"a row_totals column cannot be named {total_label!r}")
        keys = [*by, *filters] if filters else ["__r"]
        long = (
            frame.with_row_index("__r")
            .select("__r", *[c for c in keys if c != "__r"], *columns)
            .with_columns(pl.col(columns).cast(pl.Float64))
            .unpivot(on=columns, index=list(dict.fromkeys(["__r", *keys])), variable_name="__col")
            .with_columns(
                pl.when(pl.col("__col") == total)
                .then(pl.lit(total_label))
                .otherwise(pl.col("__col"))
                .alias("__dim")
            )
        )
        dims = [*filters, "__dim"] if filters else ["__dim"]
        protected = protect_cells(
            long,
            "value",
            dims,
            by=list(by) if filters else ["__r"],
            threshold=threshold,
            total_label=total_label,
            suppressed_col="__supp",
        )
        for col in columns:
            hit = protected.filter(pl.col("__col") == col).sort("__r")["__supp"]
            flags[col] = flags[col] | hit if col in flags else hit
    return flags


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
        value = pl.col(col).cast(pl.Float64, strict=False)
        if spec.proportional is None or col in spec.proportional:
            from_rounded = _from_rounded(
                value, pl.col(numerator), col in spec.percentages, spec.rounding_base
            )
            value = pl.when(pl.col("__rounded")).then(from_rounded).otherwise(value)
        exprs.append(
            format_rate(value, suppressed=supp, decimals=spec.decimals, symbols=symbols).alias(col)
        )
    out = work.with_columns(exprs)
    return out.select(frame.columns)


# ----------------------------------------------------------------------------- helpers


def _require_columns(frame: pl.DataFrame, cols: Iterable[str]) -> None:
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ValueError(f"columns not in frame: {missing}; frame has {frame.columns}")


# ----------------------------------------------------------------------------- publication engine
#
# One suppression decision for every table of a publication, across geographies (LA -> region
# -> England) and across tables that share a margin. See docs/disclosure.md.

LA_LEVEL = "Local authority"
REGION_LEVEL = "Regional"
NATIONAL_LEVEL = "National"
#: Columns that identify a geography and period in an EES frame (those present are used).
GEOGRAPHY_KEYS: tuple[str, ...] = ("time_period", "geographic_level", "region_code", "old_la_code")
#: Upper bound given to a suppressed cell in the interval audit (stands in for "unbounded").
_UNBOUNDED = 10**7


@dataclass(frozen=True)
class PublishedTable:
    """One table of a publication, before disclosure control (numeric indicator columns).

    ``frame`` is EES-shaped (``geographic_level``, ``region_code``, ``old_la_code``,
    ``time_period`` plus ``spec.filters`` and the indicator columns). ``quantities`` names the
    quantity each count column counts: cells of different tables with the same quantity, period,
    geography and non-``Total`` filter levels are the *same* figure (a shared margin), e.g. the
    headline ``cin_at_31_march`` column and the ``Total`` rows of ``cin_at_31_march_by_sex``.
    A count column without a quantity is private to its table.
    """

    name: str
    frame: pl.DataFrame
    spec: SdcSpec
    quantities: Mapping[str, str] = field(default_factory=dict)


def drop_thin_aggregates(
    frame: pl.DataFrame, *, min_units: int = 2, level_col: str = "geographic_level"
) -> pl.DataFrame:
    """Drop Regional (National) rows built from fewer than ``min_units`` LAs of the frame.

    A region with a single LA in the data would be published as a rounded copy of that LA (so a
    ``c`` of the LA could be read off the region). Applied per ``time_period`` when the frame
    has one; frames without LA rows are returned unchanged.
    """
    if level_col not in frame.columns or "old_la_code" not in frame.columns:
        return frame
    period = ["time_period"] if "time_period" in frame.columns else []
    la = frame.filter(pl.col(level_col) == LA_LEVEL)
    if la.is_empty():
        return frame
    per_region = la.group_by([*period, "region_code"]).agg(
        pl.col("old_la_code").n_unique().alias("__units")
    )
    per_country = la.group_by(period or pl.lit(1).alias("__p")).agg(
        pl.col("old_la_code").n_unique().alias("__units")
    )
    work = frame.with_row_index("__row")
    regional = (
        work.filter(pl.col(level_col) == REGION_LEVEL)
        .join(per_region, on=[*period, "region_code"], how="left", nulls_equal=True)
        .filter(pl.col("__units").fill_null(0) < min_units)["__row"]
    )
    national = work.filter(pl.col(level_col) == NATIONAL_LEVEL)
    if period:
        national = national.join(per_country, on=period, how="left")
    else:
        national = national.with_columns(pl.lit(per_country["__units"][0]).alias("__units"))
    thin = set(regional.to_list()) | set(
        national.filter(pl.col("__units").fill_null(0) < min_units)["__row"].to_list()
    )
    return work.filter(~pl.col("__row").is_in(list(thin))).drop("__row")


def published_interval(
    value: float, *, rounded: bool, rounding_base: int = 10
) -> tuple[float, float]:
    """What a published (not suppressed) count tells a reader: the integer range it allows.

    Exact at LA level; at a rounded level ``v`` rounded half up to ``r`` allows ``r-5 .. r+4``
    (base 10), ``low`` allows ``1 .. 4`` and ``0`` is a true zero.
    """
    if not rounded:
        return value, value
    if value == 0:
        return 0.0, 0.0
    r = float(round_half_up(float(value), base=float(rounding_base)))
    half = rounding_base / 2
    lo = max(1.0, r - math.floor(half))
    hi = r + math.ceil(half) - 1
    return lo, hi


@dataclass
class CellSystem:
    """Integer cells, the additive equations between them and what is published about each.

    ``lo``/``hi`` are the published bounds of each cell (``_UNBOUNDED`` above for hidden ones);
    ``equations`` are ``(interior cells, total cell)``: the interior sums to the total.
    """

    lo: np.ndarray
    hi: np.ndarray
    equations: list[tuple[tuple[int, ...], int]]

    def __post_init__(self) -> None:
        self.solves = 0
        self._by_cell: dict[int, list[int]] = {}
        for e, (interior, total) in enumerate(self.equations):
            for v in (*interior, total):
                self._by_cell.setdefault(v, []).append(e)

    def equations_of(self, cell: int) -> list[int]:
        return self._by_cell.get(cell, [])

    def _component(self, cell: int) -> tuple[list[int], list[int]]:
        """Unknown cells (lo < hi) linked to ``cell`` through equations, and those equations."""
        unknown = self.lo < self.hi
        seen_cells, seen_eqs = {cell}, set()
        stack = [cell]
        while stack:
            c = stack.pop()
            for e in self.equations_of(c):
                if e in seen_eqs:
                    continue
                seen_eqs.add(e)
                interior, total = self.equations[e]
                for v in (*interior, total):
                    if unknown[v] and v not in seen_cells:
                        seen_cells.add(v)
                        stack.append(v)
        return sorted(seen_cells), sorted(seen_eqs)

    def feasible_range(self, cell: int, *, integer: bool = False) -> tuple[float, float]:
        """Smallest and largest value of ``cell`` consistent with everything published.

        Two linear programs (HiGHS) over the cells linked to ``cell``, bounds rounded inwards
        to integers; with ``integer=True`` two integer programs (the exact integer range; the
        tables' equations are sums along nested margins, where the two nearly always agree).
        Returns ``(nan, nan)`` if the published figures contradict the equations.
        """
        from scipy.optimize import Bounds, LinearConstraint, linprog, milp
        from scipy.sparse import coo_matrix

        self.solves += 2
        if self.lo[cell] == self.hi[cell]:
            return float(self.lo[cell]), float(self.hi[cell])
        cells, eqs = self._component(cell)
        if not eqs:
            return float(self.lo[cell]), float(self.hi[cell])
        pos = {c: i for i, c in enumerate(cells)}
        rows, cols, data = [], [], []
        b = np.zeros(len(eqs))
        for r, e in enumerate(eqs):
            interior, total = self.equations[e]
            for v, sign in [*((v, 1.0) for v in interior), (total, -1.0)]:
                if v in pos:
                    rows.append(r)
                    cols.append(pos[v])
                    data.append(sign)
                else:
                    b[r] -= sign * self.lo[v]
        a = coo_matrix((data, (rows, cols)), shape=(len(eqs), len(cells))).tocsr()
        lo, hi = self.lo[cells], self.hi[cells]
        out = []
        for sense in (1.0, -1.0):
            c = np.zeros(len(cells))
            c[pos[cell]] = sense
            if integer:
                res = milp(
                    c,
                    integrality=np.ones(len(cells)),
                    bounds=Bounds(lo, hi),
                    constraints=LinearConstraint(a, b, b),
                )
            else:
                res = linprog(c, A_eq=a, b_eq=b, bounds=np.column_stack([lo, hi]), method="highs")
            if res.status != 0 or res.x is None:
                return math.nan, math.nan
            out.append(float(res.x[pos[cell]]))
        return float(math.ceil(out[0] - 1e-6)), float(math.floor(out[1] + 1e-6))


def is_protected(lo: float, hi: float, threshold: int = 5, min_count: int = 1) -> bool:
    """The disclosure criterion for a suppressed cell whose feasible integer range is lo..hi.

    Recovered (not protected) if the range is a single value, or lies inside
    ``min_count..threshold`` and is narrower than it: a reader then knows more than the ``c``
    symbol already says ("a count from 1 to 5, or a figure from which one could be worked
    out"). NaN bounds (figures inconsistent with the equations) count as protected.
    """
    if math.isnan(lo) or math.isnan(hi):
        return True
    if hi <= lo:
        return False
    small = lo >= min_count and hi <= threshold
    return not (small and hi - lo + 1 < threshold - min_count + 1)


@dataclass
class _Registry:
    """Cells of all tables, merged where tables share a figure."""

    values: list[float] = field(default_factory=list)
    rounded: list[bool] = field(default_factory=list)
    is_la: list[bool] = field(default_factory=list)
    keys: dict[tuple[Any, ...], int] = field(default_factory=dict)
    # (table index, column) -> cell index per row (-1: missing value)
    cell_of: dict[tuple[int, str], np.ndarray] = field(default_factory=dict)

    def add(self, key: tuple[Any, ...], value: float, rounded: bool, is_la: bool) -> int:
        found = self.keys.get(key)
        if found is not None and self.values[found] == value:
            return found
        if found is not None:  # same name, different figure: keep them apart
            key = (*key, len(self.values))
        self.keys[key] = len(self.values)
        self.values.append(value)
        self.rounded.append(rounded)
        self.is_la.append(is_la)
        return len(self.values) - 1


def _geo_columns(frame: pl.DataFrame) -> list[str]:
    return [c for c in GEOGRAPHY_KEYS if c in frame.columns]


def _register(
    tables: Sequence[PublishedTable],
) -> tuple[_Registry, list[tuple[tuple[int, ...], int]]]:
    reg = _Registry()
    equations: set[tuple[tuple[int, ...], int]] = set()
    for t, table in enumerate(tables):
        spec, frame = table.spec, table.frame
        geo = _geo_columns(frame)
        level = spec.geographic_level_col
        rows = frame.select(*geo, *spec.filters).rows()
        levels = frame[level].to_list() if level in frame.columns else [None] * frame.height
        for col in spec.count_columns():
            values = frame[col].cast(pl.Float64, strict=False).to_list()
            quantity = table.quantities.get(col) or f"{table.name}::{col}"
            cells = np.full(frame.height, -1, dtype=np.int64)
            for i, (row, lv, v) in enumerate(zip(rows, levels, values, strict=True)):
                if v is None or math.isnan(v):
                    continue
                geo_key = row[: len(geo)]
                filt = tuple(
                    (f, x)
                    for f, x in zip(spec.filters, row[len(geo) :], strict=True)
                    if x != spec.total_label
                )
                cells[i] = reg.add(
                    (quantity, geo_key, filt), v, lv in spec.rounded_levels, lv == LA_LEVEL
                )
            reg.cell_of[(t, col)] = cells
            equations |= _equations(frame, spec, geo, rows, levels, cells, np.array(reg.values))
    return reg, sorted(equations)


def _holds(values: np.ndarray, interior: Sequence[int], total: int) -> bool:
    return abs(float(values[list(interior)].sum()) - float(values[total])) < 1e-6


def _equations(
    frame: pl.DataFrame,
    spec: SdcSpec,
    geo: list[str],
    rows: list[tuple[Any, ...]],
    levels: list[Any],
    cells: np.ndarray,
    values: np.ndarray,
) -> set[tuple[tuple[int, ...], int]]:
    """Additive equations of one count column that hold exactly in the data: along each filter
    (levels sum to ``Total``) and along geography (LAs -> region, LAs -> England, regions ->
    England)."""
    out: set[tuple[tuple[int, ...], int]] = set()
    n_geo = len(geo)
    index = {row: cells[i] for i, row in enumerate(rows) if cells[i] >= 0}

    def add(interior: list[int], total: int | None) -> None:
        if total is None or total < 0 or not interior or any(v < 0 for v in interior):
            return
        interior_t = tuple(sorted(set(interior)))
        if total in interior_t or not _holds(values, interior_t, total):
            return
        out.add((interior_t, int(total)))

    nf = len(spec.filters)
    for d in range(nf):
        lines: dict[tuple[Any, ...], list[int]] = {}
        for row, cell in index.items():
            filt = row[n_geo:]
            if filt[d] != spec.total_label:
                key = (*row[:n_geo], *filt[:d], *filt[d + 1 :])
                lines.setdefault(key, []).append(int(cell))
        for key, interior in lines.items():
            g, rest = key[:n_geo], key[n_geo:]
            total_row = (*g, *rest[:d], spec.total_label, *rest[d:])
            add(interior, index.get(total_row))
    if "geographic_level" not in geo:
        return out
    li = geo.index("geographic_level")
    ri = geo.index("region_code") if "region_code" in geo else None
    pi = geo.index("time_period") if "time_period" in geo else None
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row, cell in index.items():
        key = (row[pi] if pi is not None else None, row[n_geo:])
        group = groups.setdefault(key, {"la": {}, "region": {}, "national": None})
        lv = row[li]
        region = row[ri] if ri is not None else None
        if lv == LA_LEVEL:
            group["la"].setdefault(region, []).append(int(cell))
        elif lv == REGION_LEVEL:
            group["region"][region] = int(cell)
        elif lv == NATIONAL_LEVEL:
            group["national"] = int(cell)
    for group in groups.values():
        all_las = [c for cs in group["la"].values() for c in cs]
        for region, total in group["region"].items():
            add(group["la"].get(region, []), total)
        add(all_las, group["national"])
        add(list(group["region"].values()), group["national"])
    return out


def _initial_suppression(tables: Sequence[PublishedTable], reg: _Registry) -> np.ndarray:
    """Primary suppression, then DfE's margin rule and the linear audit inside each table at
    unrounded levels (the conventional choice of secondary cells)."""
    values = np.array(reg.values)
    hidden = np.zeros(len(values), dtype=bool)
    for t, table in enumerate(tables):
        spec = table.spec
        for col in spec.count_columns():
            cells = reg.cell_of[(t, col)]
            ok = cells >= 0
            v = values[cells[ok]]
            hidden[cells[ok]] |= (v >= spec.min_count) & (v <= spec.threshold)
    before = -1
    while int(hidden.sum()) != before:  # to a fixed point: tables share cells
        before = int(hidden.sum())
        _margin_pass(tables, reg, values, hidden)
    return hidden


def _margin_pass(
    tables: Sequence[PublishedTable], reg: _Registry, values: np.ndarray, hidden: np.ndarray
) -> None:
    for t, table in enumerate(tables):
        spec, frame = table.spec, table.frame
        if not (spec.secondary and spec.filters):
            continue
        level = spec.geographic_level_col
        unrounded = (
            ~frame[level].is_in(list(spec.rounded_levels)).to_numpy()
            if level in frame.columns
            else np.ones(frame.height, dtype=bool)
        )
        by = _geo_columns(frame) or list(spec.by or ())
        for col in spec.count_columns():
            cells = reg.cell_of[(t, col)]
            rows = np.flatnonzero(unrounded & (cells >= 0))
            if rows.size == 0 or not hidden[cells[rows]].any():
                continue
            part = frame[rows.tolist()].select(*by, *spec.filters)
            part = part.with_columns(
                pl.Series("__v", values[cells[rows]]),
                pl.Series("__h", hidden[cells[rows]]),
            )
            flags = _protect_hidden(part, by, list(spec.filters), spec.total_label)
            hidden[cells[rows]] |= flags


def _protect_hidden(
    part: pl.DataFrame, by: list[str], dims: list[str], total_label: str
) -> np.ndarray:
    """Margin rule + linear audit per ``by`` group, starting from the hidden flags ``__h``."""
    out = part["__h"].to_numpy().copy()
    work = part.with_row_index("__row")
    values_all = part["__v"].to_numpy()
    level_rows = list(part.select(dims).iter_rows())
    for rows in work.group_by(by, maintain_order=True).agg("__row")["__row"]:
        idx = rows.to_numpy()
        if not out[idx].any():
            continue
        lines = _build_lines([level_rows[i] for i in idx], total_label)
        out[idx] = _secondary(values_all[idx], np.zeros(idx.size, bool), out[idx], lines)
    return out


def _hidden_interval(value: float) -> tuple[float, float]:
    """A suppressed cell: a reader knows it is not 0 (zeros are published as 0 and secondary
    suppression never picks a zero)."""
    return (1.0 if value > 0 else 0.0), float(_UNBOUNDED)


def _bounds(reg: _Registry, hidden: np.ndarray, base: int) -> tuple[np.ndarray, np.ndarray]:
    lo = np.zeros(len(reg.values))
    hi = np.zeros(len(reg.values))
    for i, (v, rounded) in enumerate(zip(reg.values, reg.rounded, strict=True)):
        if hidden[i]:
            lo[i], hi[i] = _hidden_interval(v)
        else:
            lo[i], hi[i] = published_interval(v, rounded=rounded, rounding_base=base)
    return lo, hi


def _audit(
    reg: _Registry,
    equations: list[tuple[tuple[int, ...], int]],
    hidden: np.ndarray,
    *,
    threshold: int,
    min_count: int,
    base: int,
) -> np.ndarray:
    """Interval audit: hide further cells until every hidden cell keeps ``protection`` values.

    Hiding a cell only removes information, so a cell once found protected stays protected; the
    queue therefore holds only cells not yet audited. For an unprotected cell the next candidate
    is hidden and the cell audited again: a published cell sharing an equation with it,
    unrounded (LA) cells first, non-zero before zero, smallest first.
    """
    hidden = hidden.copy()
    lo, hi = _bounds(reg, hidden, base)
    system = CellSystem(lo, hi, equations)
    values = np.array(reg.values)
    queue = sorted(np.flatnonzero(hidden).tolist(), key=lambda c: (values[c], c))
    while queue:
        target = queue.pop(0)
        while not is_protected(*system.feasible_range(target), threshold, min_count):
            candidates = _candidates(system, target, hidden, reg)
            if not candidates:
                break
            best = candidates[0]
            hidden[best] = True
            system.lo[best], system.hi[best] = _hidden_interval(values[best])
            queue.append(best)
    return hidden


def _candidates(system: CellSystem, target: int, hidden: np.ndarray, reg: _Registry) -> list[int]:
    """Published cells sharing an equation with ``target`` (else with its linked cells)."""
    values = np.array(reg.values)

    def ordered(cells: set[int]) -> list[int]:
        return sorted(cells, key=lambda c: (reg.rounded[c], values[c] == 0, values[c], c))

    near: set[int] = set()
    for e in system.equations_of(target):
        interior, total = system.equations[e]
        near |= {v for v in (*interior, total) if not hidden[v] and values[v] > 0}
    if near:
        return ordered(near)
    linked, _ = system._component(target)
    far: set[int] = set()
    for c in linked:
        for e in system.equations_of(c):
            interior, total = system.equations[e]
            far |= {v for v in (*interior, total) if not hidden[v] and values[v] > 0}
    return ordered(far)


def protect_publication(
    tables: Sequence[PublishedTable],
    *,
    min_units: int = 2,
    derived_from_rounded: bool = True,
    interval_audit: bool = True,
) -> dict[str, pl.DataFrame]:
    """Disclosure control for all tables of a publication at once; returns display frames.

    1. Regional/National rows built from fewer than ``min_units`` LAs are dropped.
    2. Counts from ``min_count`` to ``threshold`` are suppressed at every level; cells shared by
       several tables (same quantity, period, geography and filter levels) are one cell.
    3. Secondary suppression: DfE's margin rule and the linear audit inside each table, then an
       interval audit over all tables and levels: with England and regional counts known only to
       +-5 (rounding), LA counts exact, suppressed cells >= 1, and every additive equation that
       holds (filters sum to ``Total``, LAs to their region and to England, regions to England,
       across tables through shared cells), no suppressed cell may be recovered in the sense
       of :func:`is_protected`; otherwise more cells are suppressed.
    4. Percentages and rates at rounded levels are recomputed from the rounded count (and, for
       percentages, the rounded denominator), so they add nothing to the rounded counts; any
       percentage or rate is suppressed with its numerator, and with its denominator when that
       is a suppressed count of the same table and geography.

    ``derived_from_rounded=False``, ``interval_audit=False`` and ``min_units=1`` switch steps
    off (for tests that show the attack then succeeds). Values in the frames are not changed
    before formatting; indicator columns of the result are text.
    """
    tables = [
        dataclasses.replace(t, frame=drop_thin_aggregates(t.frame, min_units=min_units))
        for t in tables
    ]
    if not tables:
        return {}
    reg, equations = _register(tables)
    hidden = _initial_suppression(tables, reg)
    if interval_audit:
        spec0 = tables[0].spec
        hidden = _audit(
            reg,
            equations,
            hidden,
            threshold=spec0.threshold,
            min_count=spec0.min_count,
            base=spec0.rounding_base,
        )
    out: dict[str, pl.DataFrame] = {}
    for t, table in enumerate(tables):
        out[table.name] = _format_table(t, table, reg, hidden, derived_from_rounded)
    return out


def _format_table(
    t: int,
    table: PublishedTable,
    reg: _Registry,
    hidden: np.ndarray,
    derived_from_rounded: bool,
) -> pl.DataFrame:
    spec, frame = table.spec, table.frame
    symbols = spec.symbols
    level = spec.geographic_level_col
    rounded = (
        frame[level].is_in(list(spec.rounded_levels)).to_numpy()
        if level in frame.columns and spec.rounded_levels
        else np.zeros(frame.height, dtype=bool)
    )
    flags: dict[str, np.ndarray] = {}
    for col in spec.count_columns():
        cells = reg.cell_of[(t, col)]
        flags[col] = np.where(cells >= 0, hidden[np.maximum(cells, 0)], False)
    work = frame.with_columns(
        pl.Series("__rounded", rounded, dtype=pl.Boolean),
        *(pl.Series(f"__supp_{c}", f, dtype=pl.Boolean) for c, f in flags.items()),
    )
    ratio_cols = {**spec.rates, **spec.percentages}
    denominator_hidden = _hidden_denominators(work, spec, flags)
    proportional = set(ratio_cols) if spec.proportional is None else set(spec.proportional)
    exprs: list[pl.Expr] = []
    for col in spec.count_columns():
        supp = pl.col(f"__supp_{col}")
        exprs.append(
            pl.when(pl.col("__rounded"))
            .then(
                format_count(
                    col, suppressed=supp, rounding_base=spec.rounding_base, symbols=symbols
                )
            )
            .otherwise(format_count(col, suppressed=supp, symbols=symbols))
            .alias(col)
        )
    for col, numerator in ratio_cols.items():
        supp = pl.col(f"__supp_{numerator}") | pl.Series(denominator_hidden[col])
        denominator = spec.denominators.get(col)
        if denominator is not None:
            supp = supp | pl.col(f"__supp_{denominator}")
        value = pl.col(col).cast(pl.Float64, strict=False)
        if derived_from_rounded and col in proportional:
            value = (
                pl.when(pl.col("__rounded"))
                .then(
                    _from_rounded(
                        value, pl.col(numerator), col in spec.percentages, spec.rounding_base
                    )
                )
                .otherwise(value)
            )
        exprs.append(
            format_rate(value, suppressed=supp, decimals=spec.decimals, symbols=symbols).alias(col)
        )
    return work.with_columns(exprs).select(frame.columns)


def _from_rounded(value: pl.Expr, numerator: pl.Expr, percentage: bool, base: int) -> pl.Expr:
    """A ratio recomputed from the rounded numerator (and rounded denominator for a percentage):
    the denominator is ``numerator / value``; a zero numerator keeps the value (0)."""
    num = numerator.cast(pl.Float64, strict=False)
    num_r = _half_up_expr(num, float(base), None)
    if not percentage:  # rate per 10,000 of a public population: scale with the numerator
        return pl.when(num > 0).then(value * num_r / num).otherwise(value)
    den = 100.0 * num / value
    den_r = _half_up_expr(den, float(base), None)
    return (
        pl.when((num > 0) & (value > 0))
        .then(pl.when(den_r > 0).then(100.0 * num_r / den_r).otherwise(value))
        .otherwise(value)
    )


def _hidden_denominators(
    work: pl.DataFrame, spec: SdcSpec, flags: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Per ratio column: rows whose implied denominator (numerator / ratio) equals a suppressed
    count of the same geography in this table (a published percentage would reveal it)."""
    geo = _geo_columns(work)
    group_index: dict[tuple[Any, ...], int] = {}
    group_ids = np.array(
        [group_index.setdefault(row, len(group_index)) for row in work.select(geo).rows()]
        if geo
        else [0] * work.height,
        dtype=np.int64,
    )
    hidden_values: dict[int, list[float]] = {}
    for col, f in flags.items():
        vals = work[col].cast(pl.Float64, strict=False).to_numpy()
        for i in np.flatnonzero(f):
            hidden_values.setdefault(int(group_ids[i]), []).append(float(vals[i]))
    out: dict[str, np.ndarray] = {}
    for col, numerator in {**spec.rates, **spec.percentages}.items():
        scale = 100.0 if col in spec.percentages else 10_000.0
        ratio = work[col].cast(pl.Float64, strict=False).to_numpy()
        num = work[numerator].cast(pl.Float64, strict=False).to_numpy()
        mask = np.zeros(work.height, dtype=bool)
        for i in range(work.height):
            candidates = hidden_values.get(int(group_ids[i]))
            if not candidates or not (num[i] > 0 and ratio[i] > 0):
                continue
            den = scale * num[i] / ratio[i]
            mask[i] = any(abs(den - h) < 1e-6 * max(1.0, h) for h in candidates)
        out[col] = mask
    return out
