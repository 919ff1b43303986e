"""The intruder of :mod:`cinresearch.tools.disclosure_attack` (which documents what it knows,
the equations it writes and the recovery criterion) attacks the published files of a small
synthetic store: it must recover nothing from the publication, and must recover cells from a
deliberately weakened one (so the attack is shown to work).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import polars as pl
import pytest

from cinresearch.publication import publication_tables, write_indicator_tables
from cinresearch.tools.disclosure_attack import (
    GEO,
    LA,
    NATIONAL,
    REGION,
    attack_folder,
)

YEAR = 2024

pytestmark = pytest.mark.slow  # two publications of a 6-LA store and ~1,000 small LPs


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


def _single_la_region_file(folder: Path) -> tuple:
    """A hand-made headline file where a region with one LA is a rounded copy of it; returns the
    attacker's key of the LA's ``c`` cell."""
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
    data.write_csv(folder / "cin_headline_measures.csv")
    meta.write_csv(folder / "cin_headline_measures.meta.csv")
    return ("cin_at_31_march", ("2024", LA, "E12000001", "841"), ())


def test_single_la_region_copy_is_an_attack_the_attacker_sees(tmp_path: Path) -> None:
    """Hand-made file: a region with one LA, published as a rounded copy, gives its c away."""
    key = _single_la_region_file(tmp_path)
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


def test_attack_command_fails_on_a_disclosive_file_and_passes_on_ours(
    published: Path, tmp_path: Path, capsys
) -> None:
    from cinresearch.tools.disclosure_attack import main

    assert main([str(published)]) == 0
    assert "0 narrowed" in capsys.readouterr().out
    _single_la_region_file(tmp_path)  # (the weakened publication is attacked above)
    assert main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "1 narrowed" in out and "cin_headline_measures" in out
