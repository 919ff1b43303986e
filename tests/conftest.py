"""Shared fixtures for the loader, store, privacy and CLI tests.

Nothing here is autouse: other test modules are unaffected unless they ask for a fixture.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from cinresearch.pseudonymise import DEMO_KEY, Pseudonymiser
from cinresearch.store import Store

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CIN_FIXTURES = FIXTURES / "cin"

# Every raw identifier written in the hand-made fixtures (LAchildID / CHILD / UPN / FormerUPN).
# The privacy tests assert that none of them reaches the store, rejects or CLI output.
RAW_CHILD_IDS = (
    "RAW-A-1001",
    "RAW-B-2002",
    "RAW-C-3003",
    "RAW-D-4004",
    "RAW-E-5005",
    "RAW-F-6006",
    "RAW-G-7007",
    "RAW-H-8008",
    "RAW-I-9009",
    "RAW-J-1010",
    "RAW-K-1111",
    "RAW-L-1212",
    "RAW-GOOD-01",
    "RAW-BADDATE-02",
    "RAW-DUP-03",
    "RAW-TWICE-04",
    "RAW-ETH-05",
    "RAW-GOOD-06",
    "RAW-Q-BOTH-01",
    "RAW-Q-NODATE-02",
    "RAW-Q-DEATH-03",
    "RAW-Q-CLEAN-04",
    "CHILD0001",
    "RAW-P-0001",
    "RAW-P-0002",
    "RAW-P-0003",
    "RAW-U-0001",
    "RAW-U-0002",
    "RAW-U-0003",
)
RAW_UPNS = (
    "J201123410001",
    "T201222212005",
    "E202300115009",
    "J203410019042",
    "T204500020007",
    "C205111121003",
    "K201123410001",
)


@pytest.fixture(scope="session")
def demo_key() -> Pseudonymiser:
    """The public demo key (fixtures are synthetic)."""
    return Pseudonymiser(DEMO_KEY)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A fresh, empty store in a temporary folder."""
    return Store(tmp_path / "store")


def cin_fixture(name: str) -> Path:
    return CIN_FIXTURES / name


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every committed file in a store (manifest and table parts).

    The load report (``reports/``) is excluded: it is rewritten on every run by design.
    """
    out: dict[str, str] = {}
    if not root.exists():
        return out
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith("reports/"):
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="session")
def planted_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic world of the planted-effect tests (12 LAs, census years 2018-2020, scale
    1500, seed 7): generated, loaded with the demo key and built once per test run, shared by
    every xdist worker (a directory made with ``mkdir`` is the lock). ``<root>/synth`` holds
    the returns and the generator's truth, ``<root>/store`` the built store. Read only."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    root, lock = shared / "planted_world", shared / "planted_world.lock"
    done = root / ".built"
    while True:
        if done.exists():
            return root
        try:
            os.mkdir(lock)
            break
        except FileExistsError:
            time.sleep(0.5)
    try:
        if not done.exists():
            from cinresearch.io.loader import load_paths
            from cinresearch.journeys import build_journeys
            from cinresearch.pseudonymise import load_key
            from cinresearch.synth import generate

            generate(root / "synth", las=12, years=(2018, 2020), scale=1500, seed=7, progress=False)
            store = Store(root / "store")
            report = load_paths([root / "synth"], store, load_key(demo=True), progress=False)
            assert not report.failed
            build_journeys(store, progress=False)
            done.touch()
    finally:
        os.rmdir(lock)
    return root
