"""Primary and secondary suppression of one tidy table (cells, lines, the linear audit).

A table's filter columns each carry a ``Total`` level; every filter defines *lines* (the cells
that differ only in that filter, plus their ``Total``). The margin rule and the linear audit
(see :mod:`cinresearch.disclosure`) decide which cells are hidden so that none can be
recovered by subtraction from the published cells.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import scipy.linalg

from cinresearch.disclosure.rounding import SYMBOLS, Symbols, format_count, numeric_value

# ----------------------------------------------------------------------------- primary


def primary_suppression(value: pl.Expr | str, threshold: int = 5, min_count: int = 1) -> pl.Expr:
    """True where ``min_count <= value <= threshold`` (default: counts 1 to 5)."""
    v = numeric_value(pl.col(value) if isinstance(value, str) else value)
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
    require_columns(frame, count_cols)
    flags = {c: primary_suppression(c, threshold, min_count) for c in count_cols}
    out = frame
    if flag_suffix:
        out = out.with_columns(flag.alias(f"{c}{flag_suffix}") for c, flag in flags.items())
    return out.with_columns(
        format_count(c, suppressed=flags[c], symbols=symbols).alias(c) for c in count_cols
    )


# ----------------------------------------------------------------------------- secondary engine


@dataclass
class Lines:
    """Additive constraints of one table: for each line, interior cells sum to a total cell."""

    members: list[np.ndarray]  # all cells of each line (interior + total)
    matrix: np.ndarray  # lines x cells: +1 interior, -1 total


def build_lines(levels: list[tuple[Any, ...]], total_label: Any) -> Lines:
    """The lines of a table whose cells are ``levels`` (one tuple of filter levels per cell)."""
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
    return Lines(members=members, matrix=matrix)


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


def secondary_suppression(
    values: np.ndarray,
    missing: np.ndarray,
    suppressed: np.ndarray,
    lines: Lines,
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
    lines = build_lines(levels, total_label)
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
    require_columns(frame, [value_col, *dims, *by])
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
            lines = build_lines([level_rows[i] for i in rows], total_label)
            suppressed_all[rows] = secondary_suppression(
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


# ----------------------------------------------------------------------------- helpers


def require_columns(frame: pl.DataFrame, cols: Iterable[str]) -> None:
    """Raise ValueError naming the columns of ``cols`` that ``frame`` lacks."""
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ValueError(f"columns not in frame: {missing}; frame has {frame.columns}")
