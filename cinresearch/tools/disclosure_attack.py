"""An intruder attacks the published CSV files of a report (``<report>/data``).

Run it on any publication before release: ``python -m cinresearch.tools.disclosure_attack
reports/2024/data`` prints how many suppressed cells it attacked and any it recovered (exit
status 1 if one is recovered or narrowed).

The attacker knows only what a reader of the ``data/`` folder knows: the EES files, their
``.meta.csv`` and the publication conventions (LA counts exact, England and regional counts
rounded half up to 10, ``low`` = 1..4, ``c`` = suppressed and not zero, percentages at 1 dp).
It does not use :mod:`cinresearch.disclosure`. From the files it writes equations it believes:

* within a file, the levels of a filter add up to its ``Total`` (subtraction from totals);
* across geographies, the LAs of a region add up to the region, and all LAs to England
  (the single-LA region copy is the one-LA case of this);
* across files, the same figure appears twice: the headline column ``X`` (or ``X_number``) and
  the ``Total`` rows of every ``X_by_<filter>`` file (shared margins);
* in a breakdown file, ``percentage = 100 * number / Total`` to 1 dp, at every level (the
  issue's differencing attack: percentage x recovered aggregate total - other LAs' cells).

Equations it can check on fully published rows and finds false are dropped. Every suppressed
cell is then bounded by linear programs (integer programs where the range is narrow).

Criterion (docs/disclosure.md): a ``c`` cell is **recovered** if its feasible integer range is a
single value, or lies inside 1..5 and is narrower than 1..5, and the true value is in the range.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import coo_matrix

THRESHOLD = 5
BIG = 10**7
GEO = ("time_period", "geographic_level", "region_code", "old_la_code")
LA, REGION, NATIONAL = "Local authority", "Regional", "National"


def _interval(text: str, level: str) -> tuple[float, float] | None:
    """What a published count cell says (None: symbol without a number, e.g. x or z)."""
    if text == "c":
        return 1.0, float(BIG)
    if text == "low":
        return 1.0, 4.0
    try:
        v = float(text)
    except ValueError:
        return None
    if level == LA or v == 0:
        return v, v
    return max(1.0, v - 5), v + 4


@dataclass
class Attack:
    lo: list[float] = field(default_factory=list)
    hi: list[float] = field(default_factory=list)
    suppressed: list[bool] = field(default_factory=list)
    names: list[tuple] = field(default_factory=list)
    # files where the cell is suppressed: (file stem, key), to check a recovery against truth
    sources: list[list[tuple]] = field(default_factory=list)
    index: dict[tuple, int] = field(default_factory=dict)
    equations: list[tuple[list[int], int]] = field(default_factory=list)
    # (numerator, total, pct): (pct - 0.05) * total <= 100 * numerator <= (pct + 0.05) * total
    ratios: list[tuple[int, int, float]] = field(default_factory=list)

    def cell(self, stem: str, key: tuple, bounds: tuple[float, float], suppressed: bool) -> int:
        found = self.index.get(key)
        if found is None:
            found = self.index[key] = len(self.lo)
            self.lo.append(bounds[0])
            self.hi.append(bounds[1])
            self.suppressed.append(False)
            self.names.append(key)
            self.sources.append([])
        else:  # the same figure in another file: intersect what both say
            self.lo[found] = max(self.lo[found], bounds[0])
            self.hi[found] = min(self.hi[found], bounds[1])
        if suppressed:
            self.suppressed[found] = True
            self.sources[found].append((stem, key))
        return found


def _read(folder: Path) -> dict[str, tuple[pl.DataFrame, pl.DataFrame]]:
    files = {}
    for path in sorted(folder.glob("*.csv")):
        if path.name.endswith(".meta.csv"):
            continue
        data = pl.read_csv(path, infer_schema_length=0)
        meta = pl.read_csv(path.with_name(path.stem + ".meta.csv"), infer_schema_length=0)
        files[path.stem] = (data, meta)
    return files


def build_attack(folder: Path) -> Attack:
    files = _read(folder)
    headline, _ = files["cin_headline_measures"]
    attack = Attack()
    for stem, (data, meta) in files.items():
        filters = meta.filter(pl.col("col_type") == "Filter")["col_name"].to_list()
        # a breakdown whose metadata says its levels overlap gives no levels-to-Total equation
        hints = meta.filter(pl.col("col_type") == "Filter").get_column("filter_hint", default=None)
        hints = [] if hints is None else hints.fill_null("").to_list()
        additive = not any("do not add up" in h for h in hints)
        # counts: whole-number indicators that are not quantiles (medians, p25/p75 in days)
        counts = meta.filter(
            pl.col("col_type") == "Indicator",
            pl.col("indicator_dp") == "0",
            ~pl.col("col_name").str.contains(r"_(median|p\d\d)$"),
        )["col_name"].to_list()
        pcts = meta.filter(pl.col("indicator_unit") == "%")["col_name"].to_list()
        rows = data.select(*GEO, *filters, *counts, *pcts).fill_null("").rows(named=True)
        for col in counts:
            quantity = col
            if filters:  # X_by_F: its number is headline X, or X_number
                base = re.sub(rf"_by_{filters[0]}$", "", stem)
                quantity = base if base in headline.columns else f"{base}_number"
            cells: dict[tuple, int] = {}
            for row in rows:
                bounds = _interval(row[col], row["geographic_level"])
                if bounds is None:
                    continue
                geo = tuple(row[g] for g in GEO)
                levels = tuple((f, row[f]) for f in filters if row[f] != "Total")
                key = (quantity, geo, levels)
                cells[(geo, levels)] = attack.cell(stem, key, bounds, row[col] == "c")
            if additive:
                _filter_equations(attack, cells, filters)
            _geography_equations(attack, cells)
            if filters and "percentage" in pcts and col == "number":
                _percentage_constraints(attack, rows, cells, filters)
    return attack


def _checkable(attack: Attack, members: list[int]) -> bool:
    return all(attack.lo[m] == attack.hi[m] for m in members)


def _add_if_consistent(attack: Attack, lines: list[tuple[list[int], int]]) -> None:
    """Keep a family of equations only if none is refuted by fully published cells."""
    for interior, total in lines:
        members = [*interior, total]
        if _checkable(attack, members) and sum(attack.lo[i] for i in interior) != attack.lo[total]:
            return
    attack.equations.extend(lines)


def _filter_equations(attack: Attack, cells: dict[tuple, int], filters: list[str]) -> None:
    if not filters:
        return
    lines: dict[tuple, list[int]] = {}
    for (geo, levels), cell in cells.items():
        if levels:
            lines.setdefault(geo, []).append(cell)
    family = [(interior, cells[(geo, ())]) for geo, interior in lines.items() if (geo, ()) in cells]
    _add_if_consistent(attack, family)


def _geography_equations(attack: Attack, cells: dict[tuple, int]) -> None:
    groups: dict[tuple, dict] = {}
    for (geo, levels), cell in cells.items():
        group = groups.setdefault((geo[0], levels), {"la": {}, "region": {}, "national": None})
        if geo[1] == LA:
            group["la"].setdefault(geo[2], []).append(cell)
        elif geo[1] == REGION:
            group["region"][geo[2]] = cell
        elif geo[1] == NATIONAL:
            group["national"] = cell
    family = []
    for group in groups.values():
        for region, total in group["region"].items():
            if group["la"].get(region):
                family.append((group["la"][region], total))
        all_las = [c for cs in group["la"].values() for c in cs]
        if group["national"] is not None and all_las:
            family.append((all_las, group["national"]))
    attack.equations.extend(family)  # rounded totals: cannot be refuted cell by cell


def _percentage_constraints(
    attack: Attack, rows: list[dict], cells: dict[tuple, int], filters: list[str]
) -> None:
    """percentage = 100 * number / Total number of the same geography (checked on LA rows)."""
    found = []
    for row in rows:
        try:
            pct = float(row["percentage"])
        except ValueError:
            continue
        geo = tuple(row[g] for g in GEO)
        levels = tuple((f, row[f]) for f in filters if row[f] != "Total")
        if not levels or (geo, levels) not in cells or (geo, ()) not in cells:
            continue
        found.append((cells[(geo, levels)], cells[(geo, ())], pct))
    for num, total, pct in found:  # refuted by a published row: this file's % is of something else
        if _refutes(attack, num, total, pct):
            return
    attack.ratios.extend(r for r in found if _exact(attack, r) or not _from_shown(attack, r))


def _refutes(attack: Attack, num: int, total: int, pct: float) -> bool:
    """No number and Total within their published intervals give this percentage (exact LA
    rows, or rounded rows read as intervals): the percentage is not a share of the Total."""
    lo_n, hi_n, lo_t, hi_t = attack.lo[num], attack.hi[num], attack.lo[total], attack.hi[total]
    if hi_n >= BIG or hi_t >= BIG or hi_t <= 0:
        return False
    low = 100 * lo_n / hi_t
    high = 100 * hi_n / lo_t if lo_t > 0 else math.inf
    return pct < low - 0.05 - 1e-9 or pct > high + 0.05 + 1e-9


def _exact(attack: Attack, ratio: tuple[int, int, float]) -> bool:
    return _checkable(attack, [ratio[0], ratio[1]])


def _from_shown(attack: Attack, ratio: tuple[int, int, float]) -> bool:
    """A rounded row whose % is just 100 x shown number / shown total adds nothing (and is not
    an equation on the true counts)."""
    num, total, pct = ratio
    shown = [_shown(attack, m) for m in (num, total)]
    if None in shown or not shown[1]:
        return False
    return abs(100 * shown[0] / shown[1] - pct) <= 0.05 + 1e-9


def _shown(attack: Attack, cell: int) -> float | None:
    lo, hi = attack.lo[cell], attack.hi[cell]
    if hi >= BIG:
        return None
    return lo if lo == hi else hi - 4  # r-5..r+4 (low: 1..4, shown as 0)


def _components(attack: Attack) -> list[tuple[list[int], list[int], list[int]]]:
    """Groups of unknown cells linked by equations or ratios: (cells, equations, ratios)."""
    parent = list(range(len(attack.lo)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    unknown = [lo < hi for lo, hi in zip(attack.lo, attack.hi, strict=True)]
    links = [[*interior, total] for interior, total in attack.equations]
    links += [[num, total] for num, total, _ in attack.ratios]
    for members in links:
        free = [m for m in members if unknown[m]]
        for m in free[1:]:
            parent[find(m)] = find(free[0])
    groups: dict[int, tuple[list[int], list[int], list[int]]] = {}
    for i in range(len(attack.lo)):
        if unknown[i]:
            groups.setdefault(find(i), ([], [], []))[0].append(i)
    for e, (interior, total) in enumerate(attack.equations):
        free = [m for m in (*interior, total) if unknown[m]]
        if free:
            groups[find(free[0])][1].append(e)
    for r, (num, total, _) in enumerate(attack.ratios):
        free = [m for m in (num, total) if unknown[m]]
        if free:
            groups[find(free[0])][2].append(r)
    return list(groups.values())


def feasible_ranges(attack: Attack, targets: list[int]) -> dict[int, tuple[float, float]]:
    """Bounds of each target: linear programs per linked group of unknown cells, then integer
    programs where the range is narrow (published cells enter as constants)."""
    wanted = set(targets)
    out: dict[int, tuple[float, float]] = {}
    for cells, eqs, ratios in _components(attack):
        if not wanted & set(cells):
            continue
        pos = {c: i for i, c in enumerate(cells)}
        rows, cols, vals = [], [], []
        b_eq = np.zeros(len(eqs))
        for r, e in enumerate(eqs):
            interior, total = attack.equations[e]
            for m, sign in [*((i, 1.0) for i in interior), (total, -1.0)]:
                if m in pos:
                    rows.append(r)
                    cols.append(pos[m])
                    vals.append(sign)
                else:
                    b_eq[r] -= sign * attack.lo[m]
        a_eq = coo_matrix((vals, (rows, cols)), shape=(len(eqs), len(cells))).tocsr()
        urows, ucols, uvals, ub = [], [], [], []
        for r, ri in enumerate(ratios):
            num, total, pct = attack.ratios[ri]
            # 100 num - (pct + .05) total <= 0  and  (pct - .05) total - 100 num <= 0
            ub += [0.0, 0.0]
            for m, coefs in ((num, (100.0, -100.0)), (total, (-(pct + 0.05), pct - 0.05))):
                for j in (0, 1):
                    if m in pos:
                        urows.append(2 * r + j)
                        ucols.append(pos[m])
                        uvals.append(coefs[j])
                    else:
                        ub[2 * r + j] -= coefs[j] * attack.lo[m]
        a_ub = coo_matrix((uvals, (urows, ucols)), shape=(len(ub), len(cells))).tocsr()
        lo = np.array([attack.lo[c] for c in cells])
        hi = np.array([attack.hi[c] for c in cells])
        for cell in sorted(wanted & set(cells)):
            bounds = []
            for sense in (1.0, -1.0):
                c = np.zeros(len(cells))
                c[pos[cell]] = sense
                res = linprog(
                    c,
                    A_eq=a_eq if eqs else None,
                    b_eq=b_eq if eqs else None,
                    A_ub=a_ub if ub else None,
                    b_ub=np.array(ub) if ub else None,
                    bounds=np.column_stack([lo, hi]),
                    method="highs",
                )
                bounds.append(res.x[pos[cell]] if res.status == 0 else math.nan)
            if math.isnan(bounds[0]) or math.isnan(bounds[1]):
                out[cell] = (math.nan, math.nan)
                continue
            lo_c, hi_c = math.ceil(bounds[0] - 1e-6), math.floor(bounds[1] + 1e-6)
            if hi_c - lo_c <= 2 * THRESHOLD:
                lo_c, hi_c = _integer_range(pos[cell], a_eq, b_eq, a_ub, ub, lo, hi)
            out[cell] = (lo_c, hi_c)
    return out


def _integer_range(cell, a_eq, b_eq, a_ub, ub, lo, hi) -> tuple[float, float]:
    constraints = [LinearConstraint(a_eq, b_eq, b_eq)] if a_eq.shape[0] else []
    if ub:
        constraints.append(LinearConstraint(a_ub, -np.inf, np.array(ub)))
    found = []
    for sense in (1.0, -1.0):
        c = np.zeros(len(lo))
        c[cell] = sense
        res = milp(c, integrality=np.ones(len(lo)), bounds=Bounds(lo, hi), constraints=constraints)
        if res.status != 0:
            return math.nan, math.nan
        found.append(round(res.x[cell]))
    return found[0], found[1]


def recovered(lo: float, hi: float) -> bool:
    """The criterion: one value, or a range inside 1..THRESHOLD narrower than it."""
    if math.isnan(lo):
        return False
    return hi <= lo or (lo >= 1 and hi <= THRESHOLD and hi - lo + 1 < THRESHOLD)


def attack_folder(
    folder: Path, truth: dict[tuple, float], *, stop_after: int | None = None
) -> dict[str, list]:
    """Attack every ``c`` cell (or stop once ``stop_after`` exact recoveries are found)."""
    attack = build_attack(folder)
    targets = [i for i, s in enumerate(attack.suppressed) if s]
    ranges: dict[int, tuple[float, float]] = {}
    for start in range(0, len(targets), 40):
        ranges |= feasible_ranges(attack, targets[start : start + 40])
        exact = sum(1 for lo, hi in ranges.values() if lo == hi)
        if stop_after is not None and exact >= stop_after:
            break
    hits, wrong, inconsistent = [], [], 0
    for cell, (lo, hi) in ranges.items():
        if math.isnan(lo):
            inconsistent += 1
            continue
        if recovered(lo, hi):  # right for at least one file that hides it?
            values = [truth.get(source) for source in attack.sources[cell]]
            right = [v for v in values if v is not None and lo <= v <= hi]
            (hits if right else wrong).append((attack.sources[cell], lo, hi, values))
    return {"targets": targets, "recovered": hits, "wrong": wrong, "inconsistent": inconsistent}


# ----------------------------------------------------------------------------- fixtures


def main(argv: list[str] | None = None) -> int:
    """Attack a folder of published files; exit 1 if any suppressed cell is narrowed."""
    parser = argparse.ArgumentParser(
        prog="python -m cinresearch.tools.disclosure_attack",
        description="Differencing attack on published EES CSVs (see docs/disclosure.md): "
        "subtraction from totals, across geographies and files, and percentages.",
    )
    parser.add_argument("folder", type=Path, help="folder of *.csv with their .meta.csv")
    args = parser.parse_args(argv)
    result = attack_folder(args.folder, {})
    narrowed = result["recovered"] + result["wrong"]
    print(
        f"{args.folder}: {len(result['targets'])} suppressed cells attacked, "
        f"{len(narrowed)} narrowed to a disclosive range, "
        f"{result['inconsistent']} with inconsistent equations"
    )
    for sources, lo, hi, _ in narrowed[:20]:
        print(f"  {sources[0][0]}: {sources[0][1]} in {lo:g}..{hi:g}")
    return 1 if narrowed or result["inconsistent"] else 0


if __name__ == "__main__":
    sys.exit(main())
