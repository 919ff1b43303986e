"""`cinresearch load` from the command line: exit codes, one-line errors, store untouched.

A file that cannot be read at all must give one ``error:`` line naming the file and line, exit
status 1, and leave the store's manifest and Parquet parts byte-identical.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CIN_FIXTURES, FIXTURES, cin_fixture, snapshot
from test_cin_xml import BAD_FILES
from typer.testing import CliRunner

from cinresearch.cli import app
from cinresearch.store import Store

ROOT = Path(__file__).resolve().parent.parent
# The report table and notes go through rich, which wraps at the terminal width (80 under
# pytest-xdist whatever COLUMNS says later), so those checks collapse whitespace; the error lines
# are plain prints and must stay whole at any width.
WIDE = {"COLUMNS": "400"}


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(app, ["load", *args], env=env or WIDE)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def flat(text: str) -> str:
    return " ".join(text.split())


def statuses(root: Path) -> list[str]:
    return [f["status"] for f in Store(root).read_json("reports/load_report.json")["files"]]


@pytest.fixture
def loaded_store(tmp_path) -> Path:
    """A store holding one good return (so 'unchanged' is a real comparison)."""
    root = tmp_path / "store"
    result = run(
        str(cin_fixture("cin_2018_201_booleans01.xml")), "--store", str(root), "--demo-key"
    )
    assert result.exit_code == 0, result.stderr
    return root


def test_load_then_reload_is_unchanged(tmp_path):
    root = tmp_path / "store"
    paths = [str(cin_fixture(n)) for n in ("cin_2018_201_booleans01.xml", "cin_2025_203_sex.xml")]
    first = run(*paths, "--store", str(root), "--demo-key", "--quiet")
    assert first.exit_code == 0, first.stderr
    assert statuses(root) == ["loaded", "loaded"]
    assert "Traceback" not in first.stderr
    assert "census year 2025 (2024-25) return for LA 203; Sex; no CINPlanDates" in flat(
        first.stderr
    )
    before = snapshot(root)
    second = run(*paths, "--store", str(root), "--demo-key", "--quiet")
    assert second.exit_code == 0
    assert statuses(root) == ["unchanged", "unchanged"]
    assert snapshot(root) == before


@pytest.mark.parametrize(("name", "line", "words"), BAD_FILES)
def test_unreadable_file_one_error_line_exit_1_store_unchanged(name, line, words, loaded_store):
    before = snapshot(loaded_store)
    result = run(str(cin_fixture(name)), "--store", str(loaded_store), "--demo-key", "--quiet")
    assert result.exit_code == 1
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"error: {name}:")
    assert "Traceback" not in result.stderr
    assert snapshot(loaded_store) == before


def test_good_and_bad_files_together(loaded_store):
    before = snapshot(loaded_store)
    result = run(
        str(cin_fixture("bad_truncated.xml")),
        str(cin_fixture("cin_2022_202_plans.xml")),
        "--store",
        str(loaded_store),
        "--demo-key",
        "--quiet",
    )
    assert result.exit_code == 1
    assert len(error_lines(result.stderr)) == 1
    store = Store(loaded_store)
    assert {r.source_key for r in store.inputs()} == {"cin_2018_201", "cin_2022_202"}
    after = snapshot(loaded_store)
    # the earlier return's parts are untouched
    assert all(after[k] == v for k, v in before.items() if k != "manifest.json")


def test_record_level_faults_load_with_exit_0(tmp_path):
    root = tmp_path / "store"
    result = run(
        str(cin_fixture("cin_2024_208_record_faults.xml")), "--store", str(root), "--demo-key"
    )
    assert result.exit_code == 0, result.stderr
    rejects = Store(root).read("rejects")
    assert rejects.height == 21
    summary = CliRunner().invoke(app, ["rejects", "--store", str(root)], env=WIDE)
    assert summary.exit_code == 0
    assert "20 rejected, 1 with a value dropped, 0 flagged" in flat(summary.stderr)


def test_folder_load_fails_unrecognised_files_and_loads_the_rest(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "notes.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    (folder / "r.xml").write_bytes(cin_fixture("cin_2024_minimal.xml").read_bytes())
    result = run(str(folder), "--store", str(tmp_path / "store"), "--demo-key", "--quiet")
    assert result.exit_code == 1
    assert "error: notes.csv: not a recognised input" in flat(result.stderr)
    assert statuses(tmp_path / "store") == ["failed", "loaded"]


def test_no_key_is_exit_2_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("CINRESEARCH_KEY", raising=False)
    monkeypatch.delenv("CINRESEARCH_KEY_FILE", raising=False)
    root = tmp_path / "store"
    result = run(str(cin_fixture("cin_2024_minimal.xml")), "--store", str(root))
    assert result.exit_code == 2
    assert "no pseudonymisation key" in result.stderr
    assert not root.exists()


def test_missing_path_is_exit_2(tmp_path):
    result = run(str(tmp_path / "nope.xml"), "--store", str(tmp_path / "s"), "--demo-key")
    assert result.exit_code == 2
    assert "no such file or folder" in result.stderr


def test_csv_file_level_fault_via_cli(tmp_path, loaded_store):
    bad = tmp_path / "ssda903_2019_201_episodes.csv"
    text = (FIXTURES / "cla" / "ssda903_2019_201_episodes.csv").read_bytes()
    bad.write_bytes(text.replace(b"RAW-K-1111,2018-06-01", b"RAW-K-1111,\xe9", 1))
    before = snapshot(loaded_store)
    result = run(str(bad), "--store", str(loaded_store), "--demo-key", "--quiet")
    assert result.exit_code == 1
    assert error_lines(result.stderr) == [
        "error: ssda903_2019_201_episodes.csv:5: not a readable UTF-8 CSV: invalid UTF-8 bytes"
    ]
    assert snapshot(loaded_store) == before


def test_real_process_exit_code_and_no_traceback(loaded_store):
    before = snapshot(loaded_store)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cinresearch.cli",
            "load",
            str(CIN_FIXTURES / "bad_wrong_root.xml"),
            "--store",
            str(loaded_store),
            "--demo-key",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "400"},
        timeout=120,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert len(error_lines(proc.stderr)) == 1
    assert snapshot(loaded_store) == before


# -- error lines are plain text ------------------------------------------------------------------
def test_error_stays_on_one_line_at_default_terminal_width(loaded_store):
    result = run(
        str(cin_fixture("bad_truncated.xml")),
        "--store",
        str(loaded_store),
        "--demo-key",
        "--quiet",
        env={"COLUMNS": "80"},
    )
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and errors[0].endswith("line 44, column 31")


def test_markup_like_text_in_an_error_is_printed_literally(tmp_path, loaded_store):
    text = cin_fixture("cin_2024_minimal.xml").read_text(encoding="utf-8")
    path = tmp_path / "odd.xml"
    path.write_text(text.replace("<LEA>999</LEA>", "<LEA>[/x]</LEA>"), encoding="utf-8")
    result = run(str(path), "--store", str(loaded_store), "--demo-key", "--quiet")
    assert result.exit_code == 1
    assert error_lines(result.stderr) == [
        "error: odd.xml:3: Header/Source/LEA must be a 3-digit LA number, got '[/x]'"
    ]
