"""Unit tests for cinresearch.report.runner beyond the end-to-end notebook runs: the kernels'
environment, and the report index."""

from __future__ import annotations

import os
from pathlib import Path

from cinresearch.report import runner

ROOT = Path(__file__).resolve().parents[1]


def test_kernels_import_the_runners_own_source_tree(monkeypatch, tmp_path):
    """A relative PYTHONPATH (``PYTHONPATH=. make demo``) would be re-read from notebooks/ by a
    kernel; the kernel gets this source tree first and the other entries made absolute."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([".", "extra"]))
    monkeypatch.delenv("MPLBACKEND", raising=False)
    with runner._kernel_environment():
        assert os.environ["PYTHONPATH"].split(os.pathsep) == [
            str(ROOT),
            str(tmp_path),
            str(tmp_path / "extra"),
        ]
        assert os.environ["MPLBACKEND"] == "Agg"
    assert os.environ["PYTHONPATH"] == os.pathsep.join([".", "extra"])
    assert "MPLBACKEND" not in os.environ


def test_index_links_chapters_packs_and_data():
    run = runner.NotebookRun("01_x", "Data <quality>", {}, "01_x.html", "01_x.ipynb", 1.0)
    page = runner._index_html(2021, [run], {"890": [run]}, ["a.csv"])
    assert "annual report 2020-21" in page and "Data &lt;quality&gt;" in page
    assert 'href="la_890/01_x.html"' in page and 'href="data/a.csv"' in page
