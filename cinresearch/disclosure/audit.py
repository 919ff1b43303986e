"""One disclosure decision for all tables of a publication: the interval audit.

Cells of every table, geography (LA -> region -> England) and period are one system: a figure
shared by two tables (a shared margin) is one cell, rounded levels give intervals, and a
suppressed cell is protected when its feasible interval under every published equation is wider
than the primary threshold allows (see docs/disclosure.md).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from cinresearch.disclosure.cells import build_lines, secondary_suppression
from cinresearch.disclosure.rounding import (
    format_count,
    format_rate,
    ratio_from_rounded,
    round_half_up,
)
from cinresearch.disclosure.spec import SdcSpec

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
        # imported on first use, for speed: scipy.optimize takes longer to import than the
        # rest of the package, and only an interval audit of a publication needs it
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
        lines = build_lines([level_rows[i] for i in idx], total_label)
        out[idx] = secondary_suppression(values_all[idx], np.zeros(idx.size, bool), out[idx], lines)
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
                    ratio_from_rounded(
                        value, pl.col(numerator), col in spec.percentages, spec.rounding_base
                    )
                )
                .otherwise(value)
            )
        exprs.append(
            format_rate(value, suppressed=supp, decimals=spec.decimals, symbols=symbols).alias(col)
        )
    return work.with_columns(exprs).select(frame.columns)


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
