"""The Parquet store: idempotent loads, resubmissions, and loads that die half-way.

Promises tested here (see docs/reliability.md):

* loading the same file twice adds nothing (second outcome ``unchanged``);
* a resubmitted return (same LA and census year, different bytes) replaces the earlier one;
* a load that fails or is killed (exception mid-commit, SIGKILL mid-read or mid-commit) leaves
  the manifest and every table readable at the previous state; re-running completes it and the
  orphaned part files are garbage-collected.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest
from conftest import cin_fixture, snapshot
from polars.testing import assert_frame_equal

from cinresearch import store as store_module
from cinresearch.io.cin import CIN_TABLES, OPTIONAL_TABLES
from cinresearch.io.loader import load_paths
from cinresearch.store import Store

ROOT = Path(__file__).resolve().parent.parent


def load(paths, store, key, **kw):
    return load_paths([Path(p) for p in paths], store, key, progress=False, **kw)


def all_tables(store: Store) -> dict[str, pl.DataFrame]:
    return {t: store.read(t) for t in (*CIN_TABLES, "rejects")}


def files_under_tables(store: Store) -> set[str]:
    return {
        p.relative_to(store.root).as_posix()
        for p in (store.root / "tables").rglob("*")
        if p.is_file()
    }


def assert_tables_equal(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert_frame_equal(a[name], b[name], check_row_order=False)


def write_large_cin(path: Path, n_children: int, *, la: str = "209", variant: int = 0) -> Path:
    """A valid 2023-24 return with ``n_children`` children (one episode, assessment, plan each).

    ``variant`` changes every referral source, so two variants are different bytes for the same
    LA and year (a resubmission).
    """
    sources = ["1A", "2A", "3A", "6"]
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Message><Header><CollectionDetails>'
        "<Collection>CIN</Collection><Year>2024</Year><ReferenceDate>2024-03-31</ReferenceDate>"
        f"</CollectionDetails><Source><LEA>{la}</LEA></Source></Header><Children>\n"
    )
    child = (
        "<Child><ChildIdentifiers><LAchildID>GEN{i:07d}</LAchildID>"
        "<PersonBirthDate>2012-01-01</PersonBirthDate><GenderCurrent>{g}</GenderCurrent>"
        "</ChildIdentifiers><ChildCharacteristics><Ethnicity>WBRI</Ethnicity>"
        "<Disabilities><Disability>NONE</Disability></Disabilities></ChildCharacteristics>"
        "<CINdetails><CINreferralDate>2023-05-10</CINreferralDate>"
        "<ReferralSource>{src}</ReferralSource><PrimaryNeedCode>N1</PrimaryNeedCode>"
        "<Assessments><AssessmentActualStartDate>2023-05-11</AssessmentActualStartDate>"
        "<AssessmentAuthorisationDate>2023-06-20</AssessmentAuthorisationDate>"
        "<FactorsIdentifiedAtAssessment><AssessmentFactors>3A</AssessmentFactors>"
        "</FactorsIdentifiedAtAssessment></Assessments><ReferralNFA>false</ReferralNFA>"
        "<ChildProtectionPlans><CPPstartDate>2023-06-02</CPPstartDate>"
        "<InitialCategoryOfAbuse>NEG</InitialCategoryOfAbuse>"
        "<LatestCategoryOfAbuse>NEG</LatestCategoryOfAbuse>"
        "<NumberOfPreviousCPP>0</NumberOfPreviousCPP><Reviews>"
        "<CPPreviewDate>2023-08-25</CPPreviewDate></Reviews></ChildProtectionPlans>"
        "</CINdetails></Child>\n"
    )
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(head)
        for i in range(n_children):
            handle.write(child.format(i=i, g=1 + i % 2, src=sources[(i + variant) % 4]))
        handle.write("</Children></Message>\n")
    return path


# -- idempotence and resubmission ------------------------------------------------------------------
def test_loading_the_same_file_twice_changes_nothing(store, demo_key):
    path = cin_fixture("cin_2018_201_booleans01.xml")
    first = load([path], store, demo_key)
    assert [o.status for o in first.outcomes] == ["loaded"]
    before, tables = snapshot(store.root), all_tables(store)
    second = load([path], store, demo_key)
    assert [o.status for o in second.outcomes] == ["unchanged"]
    assert snapshot(store.root) == before
    assert_tables_equal(all_tables(store), tables)
    assert store.read("children").height == 2
    assert store.read("referrals").height == 3


def test_forced_reload_replaces_its_own_parts(store, demo_key):
    path = cin_fixture("cin_2018_201_booleans01.xml")
    load([path], store, demo_key)
    tables = all_tables(store)
    old_parts = store.live_parts()
    report = load([path], store, demo_key, force=True)
    assert [o.status for o in report.outcomes] == ["loaded"]
    assert_tables_equal(all_tables(store), tables)
    assert store.live_parts().isdisjoint(old_parts)
    assert files_under_tables(store) == store.live_parts()


def test_a_resubmission_replaces_the_earlier_return(store, demo_key, tmp_path):
    load([cin_fixture("cin_2018_201_booleans01.xml")], store, demo_key)
    load([cin_fixture("cin_2022_202_plans.xml")], store, demo_key)
    text = cin_fixture("cin_2018_201_booleans01.xml").read_text(encoding="utf-8")
    start = text.index("    <Child>", text.index("RAW-A-1001") - 200)
    second_child = text.index("    <Child>", start + 10)
    resubmitted = text[:start] + text[second_child:]  # child A removed
    path = tmp_path / "cin_201_2018_resubmitted.xml"
    path.write_text(resubmitted, encoding="utf-8")

    report = load([path], store, demo_key)
    assert [o.status for o in report.outcomes] == ["loaded"]
    inputs = {r.source_key: r for r in store.inputs()}
    assert set(inputs) == {"cin_2018_201", "cin_2022_202"}
    assert inputs["cin_2018_201"].file == path.name
    children = store.read("children").sort("census_year")
    assert children.select("la_code", "census_year").rows() == [("201", 2018), ("202", 2022)]
    assert children.get_column("child_id")[0] == demo_key.child_id("201", "RAW-B-2002")
    assert store.read("referrals").filter(pl.col("la_code") == "201").height == 1
    assert store.read("cp_plans").is_empty()
    assert files_under_tables(store) == store.live_parts()


def test_different_returns_accumulate_and_a_failed_file_does_not_stop_the_others(store, demo_key):
    report = load(
        [
            cin_fixture("cin_2018_201_booleans01.xml"),
            cin_fixture("bad_truncated.xml"),
            cin_fixture("cin_2025_203_sex.xml"),
        ],
        store,
        demo_key,
    )
    assert [o.status for o in report.outcomes] == ["loaded", "failed", "loaded"]
    assert {r.source_key for r in store.inputs()} == {"cin_2018_201", "cin_2025_203"}
    assert store.read("children").height == 4
    saved = store.read_json("reports/load_report.json")
    assert [f["status"] for f in saved["files"]] == ["loaded", "failed", "loaded"]


def test_empty_store_reads_as_empty_tables_with_the_contract_schema(store):
    for table in (*CIN_TABLES, "rejects"):
        frame = store.read(table)
        assert frame.is_empty()
        assert frame.columns  # schema present


def test_remove_input_drops_its_rows_and_files(store, demo_key):
    load([cin_fixture("cin_2018_201_booleans01.xml")], store, demo_key)
    load([cin_fixture("cin_2022_202_plans.xml")], store, demo_key)
    store.remove_input("cin_2018_201")
    assert store.read("children").get_column("la_code").to_list() == ["202"]
    assert files_under_tables(store) == store.live_parts()


# -- a load that fails half-way ----------------------------------------------------------------
def _fail_on_nth_write(monkeypatch, n: int) -> list[int]:
    """Make store.atomic_write_parquet raise on its n-th call; returns the call counter."""
    real = store_module.atomic_write_parquet
    calls = [0]

    def flaky(path, frame):
        calls[0] += 1
        if calls[0] == n:
            raise OSError("injected fault: disk full")
        real(path, frame)

    monkeypatch.setattr(store_module, "atomic_write_parquet", flaky)
    return calls


@pytest.mark.parametrize("fail_at", [1, 3, 9])  # first part, mid-commit, the last (rejects) part
def test_exception_mid_commit_leaves_previous_state_and_rerun_completes(
    store, demo_key, tmp_path, monkeypatch, fail_at
):
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    v1 = write_large_cin(tmp_path / "v1" / "cin.xml", 50, variant=0)
    v2 = write_large_cin(tmp_path / "v2" / "cin.xml", 50, variant=1)
    load([v1], store, demo_key)
    before, tables = snapshot(store.root), all_tables(store)
    manifest_bytes = store.manifest_path.read_bytes()

    calls = _fail_on_nth_write(monkeypatch, fail_at)
    with pytest.raises(OSError, match="injected fault"):
        load([v2], store, demo_key)
    assert calls[0] == fail_at
    assert store.manifest_path.read_bytes() == manifest_bytes
    assert_tables_equal(all_tables(store), tables)
    orphans = files_under_tables(store) - store.live_parts()
    assert len(orphans) == fail_at - 1  # parts written before the fault, not committed
    assert not any(p.name.endswith(".tmp") for p in store.root.rglob("*"))
    assert {k: v for k, v in snapshot(store.root).items() if k not in orphans} == before

    monkeypatch.undo()
    report = load([v2], store, demo_key)
    assert [o.status for o in report.outcomes] == ["loaded"]
    assert store.read("referrals").get_column("referral_source").head(4).to_list() == [
        "2A",
        "3A",
        "6",
        "1A",
    ]
    assert files_under_tables(store) == store.live_parts()  # orphans collected


def test_exception_while_writing_the_manifest_leaves_previous_state(
    store, demo_key, tmp_path, monkeypatch
):
    v1 = write_large_cin(tmp_path / "a.xml", 20, variant=0)
    (tmp_path / "b").mkdir()
    v2 = write_large_cin(tmp_path / "b" / "a.xml", 20, variant=1)
    load([v1], store, demo_key)
    manifest_bytes, tables = store.manifest_path.read_bytes(), all_tables(store)

    def broken(path, data):
        raise OSError("injected fault: manifest write")

    monkeypatch.setattr(store_module, "atomic_write_bytes", broken)
    with pytest.raises(OSError, match="manifest write"):
        load([v2], store, demo_key)
    monkeypatch.undo()
    assert store.manifest_path.read_bytes() == manifest_bytes
    assert_tables_equal(all_tables(store), tables)
    load([v2], store, demo_key)
    assert files_under_tables(store) == store.live_parts()


def test_atomic_write_parquet_leaves_no_temporary_file_on_failure(tmp_path, monkeypatch):
    def boom(self, *args, **kwargs):
        Path(args[0]).write_bytes(b"PAR1 half a file")
        raise OSError("injected fault")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", boom)
    target = tmp_path / "t" / "x.parquet"
    with pytest.raises(OSError):
        store_module.atomic_write_parquet(target, pl.DataFrame({"a": [1]}))
    assert list((tmp_path / "t").iterdir()) == []


# -- a load killed with SIGKILL ----------------------------------------------------------------
KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from cinresearch import store as store_module
    from cinresearch.io.cin import raw
    from cinresearch.io.loader import load_paths
    from cinresearch.pseudonymise import DEMO_KEY, Pseudonymiser
    from cinresearch.store import Store

    mode, store_dir, path = sys.argv[1], sys.argv[2], sys.argv[3]

    def hang(message):
        print(message, flush=True)
        time.sleep(120)  # the parent kills us here

    if mode == "read":
        def pseudonymise(children, key, la_code):  # every reader passes here mid-file
            hang("READING")
        raw.pseudonymise_children = pseudonymise
    elif mode == "commit":
        real_write = store_module.atomic_write_parquet
        calls = [0]
        def write(target, frame):
            calls[0] += 1
            if calls[0] == 4:
                # die half-way through writing the 4th part: a temporary file is left behind
                tmp = target.parent / f".{target.name}.deadbeef.tmp"
                tmp.write_bytes(b"PAR1" + b"0" * 1000)
                hang("COMMITTING")
            real_write(target, frame)
        store_module.atomic_write_parquet = write
    elif mode == "manifest":
        def write_bytes(target, data):
            tmp = target.parent / f".{target.name}.deadbeef.tmp"
            tmp.write_bytes(data[: len(data) // 2])
            hang("MANIFEST")
        store_module.atomic_write_bytes = write_bytes
    load_paths([Path(path)], Store(store_dir), Pseudonymiser(DEMO_KEY), progress=False)
    print("DONE", flush=True)
    """
)


def _run_and_kill(mode: str, store_root: Path, path: Path, tmp_path: Path) -> None:
    script = tmp_path / "kill_me.py"
    script.write_text(KILL_SCRIPT, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, str(script), mode, str(store_root), str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line in ("READING", "COMMITTING", "MANIFEST"), proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.parametrize("mode", ["read", "commit", "manifest"])
def test_sigkill_part_way_leaves_store_readable_and_rerun_completes(
    mode, store, demo_key, tmp_path
):
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old = write_large_cin(tmp_path / "old" / "cin_2024_209.xml", 300, variant=0)
    new = write_large_cin(tmp_path / "new" / "cin_2024_209.xml", 5000, variant=1)  # ~5 MB
    load([old], store, demo_key)
    before, tables = snapshot(store.root), all_tables(store)

    _run_and_kill(mode, store.root, new, tmp_path)

    # previous state: same manifest, same committed parts, same table contents
    after = snapshot(store.root)
    assert {k: after[k] for k in before} == before
    assert_tables_equal(all_tables(store), tables)
    assert json.loads(store.manifest_path.read_text())["inputs"].keys() == {"cin_2024_209"}
    leftovers = set(after) - set(before)
    if mode == "read":
        assert leftovers == set()
    elif mode == "commit":
        assert len(leftovers) == 4  # 3 whole parts + 1 temporary file, none committed
    else:
        # all parts (an optional module no child uses has none) + half a manifest
        assert len(leftovers) == len(CIN_TABLES) - len(OPTIONAL_TABLES) + 2

    report = load([new], store, demo_key)
    assert [o.status for o in report.outcomes] == ["loaded"]
    assert store.read("children").height == 5000
    assert store.read("referrals").get_column("referral_source").head(2).to_list() == ["2A", "3A"]
    assert files_under_tables(store) == store.live_parts()
    assert not [p for p in store.root.rglob("*.tmp")], "temporary files not collected"


def test_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path):
    from cinresearch.store import StoreBusyError

    first = Store(tmp_path / "s")
    second = Store(tmp_path / "s")
    with (
        first.writer_lock(),
        pytest.raises(StoreBusyError, match="another load or build"),
        second.writer_lock(),
    ):
        pass
    with second.writer_lock():  # released: the next writer gets in
        pass


def test_batch_writes_the_manifest_at_the_end_and_drops_pending_commits_on_error(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "s")
    frame = pl.DataFrame({"x": [1]})

    def commit(key: str) -> None:
        store.commit_input(key, file=f"{key}.csv", sha256=key, kind="test", frames={"t": frame})

    with store.batch(flush_seconds=3600):
        commit("a")
        assert not store.manifest_path.exists()  # not yet written...
        assert store.has_input("a", "a")  # ...but visible to this writer
    assert Store(tmp_path / "s").has_input("a", "a")
    with pytest.raises(RuntimeError), store.batch(flush_seconds=3600):
        commit("b")
        commit("a")  # a resubmission: a's old part must survive the failed batch
        raise RuntimeError("load failed half-way")
    fresh = Store(tmp_path / "s")
    assert fresh.has_input("a", "a") and not fresh.has_input("b", "b")
    assert fresh.read("t").height == 1
    assert fresh.collect_garbage() == 2  # the uncommitted parts of b and of a's resubmission
    assert fresh.read("t").height == 1
