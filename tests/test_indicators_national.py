"""National calibration: synthetic data calibrated to 2017-18 reproduces the published figures.

Runs the whole pipeline — ``cinresearch.synth.generate`` (CIN XML, population CSV) →
``cinresearch.io.loader.load_paths`` → ``cinresearch.journeys.build_journeys`` →
``cinresearch.indicators.compute_indicators`` — and compares England's values for census year
2018 with DfE's "Characteristics of children in need 2017-18" figures
(``tests/fixtures/indicators/national_targets_2018.csv``, copied from
``domain/national_figures_2018.csv`` with the tolerances of its §10: rates ±5% relative, shares
±2 percentage points, median ±2 working days).

The 2017 return is generated too, so re-referrals in 2017-18 can look back 12 months.
Skipped (with the reason) until the generator, loader and journey builder are all importable.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import polars as pl
import pytest

from cinresearch import indicators as ind

TARGETS = Path(__file__).parent / "fixtures" / "indicators" / "national_targets_2018.csv"
LAS = 10
SCALE = 1500
SEED = 1


def _require(module: str, attr: str | None = None):
    try:
        mod = importlib.import_module(module)
    except Exception as err:  # not written yet, or broken import
        pytest.skip(f"{module} not importable yet ({type(err).__name__}: {err})")
    if attr is not None and not hasattr(mod, attr):
        pytest.skip(f"{module}.{attr} not available yet")
    return getattr(mod, attr) if attr else mod


@pytest.fixture(scope="module")
def national_2018(tmp_path_factory) -> pl.DataFrame:
    generate = _require("cinresearch.synth", "generate")
    build_journeys = _require("cinresearch.journeys", "build_journeys")
    load_paths = _require("cinresearch.io.loader", "load_paths")
    load_key = _require("cinresearch.pseudonymise", "load_key")
    from cinresearch.store import Store

    root = tmp_path_factory.mktemp("national")
    out = root / "synth"
    generate(out, las=LAS, years=(2017, 2018), scale=SCALE, seed=SEED)
    store = Store(root / "store")
    report = load_paths([out], store, load_key(demo=True), progress=False)
    assert not report.failed, [o.message for o in report.failed]
    build_journeys(store, progress=False)
    return ind.compute_indicators(store, 2018, geography=("national",))


@pytest.mark.slow
def test_national_figures_2018_within_tolerance(national_2018):
    targets = pl.read_csv(TARGETS)
    misses = []
    for t in targets.iter_rows(named=True):
        rows = national_2018.filter(
            (pl.col("measure") == t["measure"])
            & (pl.col("breakdown") == t["breakdown"])
            & (pl.col("breakdown_level") == t["breakdown_level"])
        )
        assert rows.height == 1, t
        got = rows["value"].item()
        if t["tolerance_kind"] == "relative":
            ok = got is not None and abs(got / t["target"] - 1) <= t["tolerance"]
        else:
            ok = got is not None and abs(got - t["target"]) <= t["tolerance"]
        if not ok:
            misses.append(
                f"{t['measure']} [{t['breakdown']}={t['breakdown_level']}]: "
                f"{got if got is None else round(got, 2)} vs published {t['target']} "
                f"(tolerance {t['tolerance']} {t['tolerance_kind']})"
            )
    assert not misses, "outside tolerance:\n" + "\n".join(misses)


@pytest.mark.slow
def test_national_structure(national_2018):
    # Basic coherence on the generated year: every measure present, England from 10 LAs.
    assert set(national_2018["geographic_level"]) == {ind.NATIONAL}
    assert set(national_2018["measure"]) == {m.id for m in ind.load_definitions().measures}
    refs = national_2018.filter(
        (pl.col("measure") == "referrals") & (pl.col("breakdown") == "total")
    )["value"].item()
    assert refs > LAS * SCALE * 0.5
