"""An intruder attacks the published CSV files of a report run on synthetic data.

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

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import coo_matrix

from cinresearch.publication import publication_tables, write_indicator_tables

THRESHOLD = 5
BIG = 10**7
GEO = ("time_period", "geographic_level", "region_code", "old_la_code")
LA, REGION, NATIONAL = "Local authority", "Regional", "National"
YEAR = 2024

pytestmark = pytest.mark.slow  # two publications of a 6-LA store and ~1,000 small LPs


# ----------------------------------------------------------------------------- the attacker


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


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cinresearch.io.loader import load_paths
    from cinresearch.journeys import build_journeys
    from cinresearch.pseudonymise import DEMO_KEY, Pseudonymiser
    from cinresearch.store import Store
    from cinresearch.synth import generate

    root = tmp_path_factory.mktemp("attack")
    synth = root / "synth"
    generate(synth, las=6, years=(YEAR - 1, YEAR), scale=120, seed=3, mess=False, progress=False)
    st = Store(root / "store")
    inputs = [synth / sub for sub in ("cin", "cla", "npd", "population") if (synth / sub).exists()]
    load_paths(inputs, st, Pseudonymiser(DEMO_KEY), progress=False)
    build_journeys(st, progress=False)
    return root / "store"


@pytest.fixture(scope="module")
def truth(store: Path) -> dict[tuple, float]:
    """True value of every published count: (file stem, the attacker's key for the cell)."""
    from cinresearch.store import Store

    out: dict[tuple, float] = {}
    headline_cols: set[str] = set()
    tables = publication_tables(Store(store), YEAR)
    for table, _ in tables:
        if table.name == "cin_headline_measures":
            headline_cols = set(table.frame.columns)
    for table, _ in tables:
        spec, frame = table.spec, table.frame
        for col in spec.count_columns():
            quantity = col
            if spec.filters:
                base = re.sub(rf"_by_{spec.filters[0]}$", "", table.name)
                quantity = base if base in headline_cols else f"{base}_number"
            for row in frame.fill_null("").rows(named=True):
                geo = tuple(str(row[g]) if row[g] is not None else "" for g in GEO)
                levels = tuple((f, row[f]) for f in spec.filters if row[f] != "Total")
                if row[col] is not None and not math.isnan(row[col]):
                    out[(table.name, (quantity, geo, levels))] = float(row[col])
    return out


@pytest.fixture(scope="module")
def published(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cinresearch.store import Store

    out = tmp_path_factory.mktemp("published")
    write_indicator_tables(Store(store), YEAR, out)
    return out


@pytest.fixture(scope="module")
def weakened(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The old publication: % from unrounded counts, single-LA regions, per-table secondary."""
    from cinresearch.store import Store

    out = tmp_path_factory.mktemp("weakened")
    options = {"derived_from_rounded": False, "interval_audit": False, "min_units": 1}
    write_indicator_tables(Store(store), YEAR, out, disclosure_options=options)
    return out


# ----------------------------------------------------------------------------- tests


def test_attacker_recovers_cells_from_a_weakened_publication(weakened: Path, truth) -> None:
    result = attack_folder(weakened, truth, stop_after=3)
    assert result["recovered"], "the attacker must be able to break the old publication"
    exact = [r for r in result["recovered"] if r[1] == r[2]]
    assert exact, "some cells are recovered exactly"
    assert all(r[1] in r[3] for r in exact)


def test_single_la_region_copy_is_an_attack_the_attacker_sees(tmp_path: Path) -> None:
    """Hand-made file: a region with one LA, published as a rounded copy, gives its c away."""
    rows = [
        ("National", "", "", "20"),
        ("Regional", "E12000001", "", "low"),
        ("Local authority", "E12000001", "841", "c"),
        ("Regional", "E12000002", "", "20"),
        ("Local authority", "E12000002", "352", "11"),
        ("Local authority", "E12000002", "890", "9"),
    ]
    data = pl.DataFrame(
        {
            "time_period": ["2024"] * len(rows),
            "geographic_level": [r[0] for r in rows],
            "region_code": [r[1] for r in rows],
            "old_la_code": [r[2] for r in rows],
            "cin_at_31_march": [r[3] for r in rows],
        }
    )
    meta = pl.DataFrame(
        {
            "col_name": ["cin_at_31_march"],
            "col_type": ["Indicator"],
            "indicator_unit": [""],
            "indicator_dp": ["0"],
        }
    )
    data.write_csv(tmp_path / "cin_headline_measures.csv")
    meta.write_csv(tmp_path / "cin_headline_measures.meta.csv")
    key = ("cin_at_31_march", ("2024", LA, "E12000001", "841"), ())
    result = attack_folder(tmp_path, {("cin_headline_measures", key): 3.0})
    # region "low" says 1..4; England 20 (15..24) minus 20 says 1..4 as well: 4 values < 5
    assert [r[0] for r in result["recovered"]] == [[("cin_headline_measures", key)]]


def test_attacker_recovers_nothing_from_the_published_files(published: Path, truth) -> None:
    result = attack_folder(published, truth)
    assert len(result["targets"]) > 20, "the small store must have suppressed cells to attack"
    assert not result["recovered"], result["recovered"][:5]
    assert result["inconsistent"] == 0


def test_no_region_row_for_a_single_la_region(published: Path) -> None:
    data = pl.read_csv(published / "cin_headline_measures.csv", infer_schema_length=0)
    per_region = data.filter(pl.col("geographic_level") == LA).group_by("region_code").len()
    single = per_region.filter(pl.col("len") == 1)["region_code"].to_list()
    assert single, "the synthetic LAs must include a region with a single LA"
    regional = data.filter(pl.col("geographic_level") == REGION)["region_code"].to_list()
    assert not set(single) & set(regional)
    assert set(regional) <= set(per_region["region_code"].to_list())


def test_rounded_percentages_come_from_rounded_counts(published: Path) -> None:
    data = pl.read_csv(published / "cpp_ending_by_duration_band.csv", infer_schema_length=0)
    checked = 0
    for geo in (NATIONAL, REGION):
        part = data.filter(pl.col("geographic_level") == geo)
        for _, group in part.group_by("region_code"):
            total = group.filter(pl.col("duration_band") == "Total")["number"].to_list()
            if not total or total[0] in ("c", "low", "0"):
                continue
            for number, pct in (
                group.filter(pl.col("duration_band") != "Total")
                .select("number", "percentage")
                .rows()
            ):
                if number in ("c", "low") or pct in ("c", "z", "x"):
                    continue
                expected = 100 * float(number) / float(total[0])
                assert abs(float(pct) - expected) <= 0.05 + 1e-9, (geo, number, total, pct)
                checked += 1
    assert checked
