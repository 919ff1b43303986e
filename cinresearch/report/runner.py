"""The annual report runner: run the notebooks with papermill, render HTML without code, write a
manifest.

``build_report`` executes each notebook in ``notebooks/`` with the same parameter names the
notebooks declare in their ``parameters`` cell (``store``, ``census_year``, ``la_code``,
``suppression_threshold``, ...), renders each executed notebook to self-contained HTML with
inputs hidden, writes publication CSVs (Explore Education Statistics layout, after disclosure
control) into ``data/``, an ``index.html`` linking everything, and ``manifest.json`` with the
parameters, input file hashes from the store manifest, package version, git commit and timings,
so any figure can be traced back to its inputs.

A notebook that fails raises :class:`ReportError` naming the notebook and the cell; the
partially executed notebook is kept next to the HTML for debugging.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import platform
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from cinresearch.indicators import BASES
from cinresearch.publication import write_indicator_tables
from cinresearch.report.scope import year_label
from cinresearch.store import Store

__all__ = [
    "LA_NOTEBOOKS",
    "NOTEBOOK_DIR",
    "REPORT_NOTEBOOKS",
    "NotebookRun",
    "ReportError",
    "build_report",
    "notebook_title",
    "run_notebook",
    "stderr_outputs",
    "write_publication_tables",
]

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"

# The national report, in reading order; 05 is also run once per LA for benchmarking packs.
REPORT_NOTEBOOKS = (
    "01_data_quality",
    "02_journeys",
    "03_time_to_cpp",
    "04_rereferrals",
    "05_la_benchmarking",
    "06_outcomes",
    "07_lifetime_and_pathways",
)
LA_NOTEBOOKS = ("05_la_benchmarking",)


class ReportError(RuntimeError):
    """A notebook failed; the message names the notebook and cell, and where the partial output is."""


@dataclass
class NotebookRun:
    name: str
    title: str
    parameters: dict[str, Any]
    html: str
    ipynb: str
    seconds: float
    status: str = "ok"
    warnings: list[str] = field(default_factory=list)


def notebook_title(path: Path) -> str:
    """The first markdown heading of a notebook (its file name if none)."""
    import nbformat  # the Jupyter stack is imported only when a report is run (slow to import)

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return path.stem


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _package_version() -> str:
    try:
        return metadata.version("cinresearch")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def stderr_outputs(nb: Any) -> list[str]:
    """Text written to stderr (warnings) or errors in an executed notebook."""
    found = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                found.append(f"cell {index}: {output.get('text', '').strip()[:300]}")
            elif output.get("output_type") == "error":
                found.append(f"cell {index}: {output.get('ename')}: {output.get('evalue')}")
    return found


def _kernel_transport(folder: Path) -> dict[str, Any]:
    """Kernel connection over Unix sockets in a private folder (POSIX), not TCP ports.

    With TCP, a kernel's ports are chosen free and then bound by the kernel process; two
    kernels starting at the same time (parallel tests, two reports) can pick the same port
    and one dies with "Address already in use". Sockets under a fresh folder cannot collide.
    """
    if os.name != "posix":
        return {}
    from traitlets.config import Config

    return {"config": Config({"KernelManager": {"transport": "ipc", "ip": str(folder / "k")}})}


#: The folder holding this ``cinresearch`` package (a source tree when it has pyproject.toml).
_SOURCE_ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def _kernel_environment() -> Iterator[None]:
    """The environment notebook kernels start with: the Agg backend, and — when the runner
    runs from a source tree — that tree first on ``PYTHONPATH`` (relative entries made
    absolute), so a kernel started in ``notebooks/`` imports the same ``cinresearch`` as the
    runner rather than another installed copy. Restored afterwards."""
    saved = {key: os.environ.get(key) for key in ("MPLBACKEND", "PYTHONPATH")}
    paths = [os.path.abspath(p) for p in (saved["PYTHONPATH"] or "").split(os.pathsep) if p]
    if (_SOURCE_ROOT / "pyproject.toml").exists():
        paths = [str(_SOURCE_ROOT), *[p for p in paths if p != str(_SOURCE_ROOT)]]
    os.environ["MPLBACKEND"] = "Agg"
    if paths:
        os.environ["PYTHONPATH"] = os.pathsep.join(paths)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_notebook(
    name: str,
    out_dir: Path,
    parameters: dict[str, Any],
    *,
    notebook_dir: Path = NOTEBOOK_DIR,
    kernel_name: str = "python3",
) -> NotebookRun:
    """Execute one notebook with papermill and render it to HTML without code."""
    # the Jupyter stack is imported only when a report is run (slow to import)
    import nbformat
    import papermill as pm
    from nbconvert import HTMLExporter

    source = notebook_dir / f"{name}.ipynb"
    if not source.exists():
        raise ReportError(f"notebook {source} not found")
    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / f"{name}.ipynb"
    started = time.perf_counter()
    sockets = tempfile.TemporaryDirectory(prefix="cinresearch-kernel-")
    try:
        with _kernel_environment():
            pm.execute_notebook(
                str(source),
                str(executed),
                parameters=parameters,
                kernel_name=kernel_name,
                progress_bar=False,
                cwd=str(notebook_dir),
                **_kernel_transport(Path(sockets.name)),
            )
    except pm.PapermillExecutionError as err:
        raise ReportError(
            f"notebook {name} failed in cell {err.cell_index} (execution count {err.exec_count}): "
            f"{err.ename}: {err.evalue}. Partial output kept at {executed}"
        ) from None
    finally:
        sockets.cleanup()
    seconds = time.perf_counter() - started
    nb = nbformat.read(executed, as_version=4)
    exporter = HTMLExporter(
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True
    )
    body, _ = exporter.from_notebook_node(nb)
    html_path = out_dir / f"{name}.html"
    html_path.write_text(body, encoding="utf-8")
    return NotebookRun(
        name=name,
        title=notebook_title(source),
        parameters=parameters,
        html=html_path.name,
        ipynb=executed.name,
        seconds=round(seconds, 1),
        warnings=stderr_outputs(nb),
    )


def _index_html(
    year: int,
    runs: list[NotebookRun],
    la_runs: dict[str, list[NotebookRun]],
    data_files: list[str],
    basis: str = "as_returned",
) -> str:
    def items(runs: list[NotebookRun], prefix: str = "") -> str:
        return "\n".join(
            f'<li><a href="{html.escape(prefix + r.html)}">{html.escape(r.title)}</a></li>'
            for r in runs
        )

    la_section = ""
    if la_runs:
        la_items = "\n".join(
            f'<li>LA {html.escape(code)}: <a href="la_{html.escape(code)}/{html.escape(r[0].html)}">benchmarking pack</a></li>'
            for code, r in sorted(la_runs.items())
        )
        la_section = f"<h2>Local authority benchmarking packs</h2><ul>{la_items}</ul>"
    data_section = ""
    if data_files:
        data_items = "\n".join(
            f'<li><a href="data/{html.escape(f)}">{html.escape(f)}</a></li>' for f in data_files
        )
        data_section = (
            "<h2>Open data (Explore Education Statistics layout, after disclosure control)</h2>"
            f"<ul>{data_items}</ul>"
        )
    label = year_label(year)
    basis_text = (
        "Official figures are <strong>revised</strong>: later returns are applied to earlier "
        "years, so they differ from DfE's published figures."
        if basis == "revised"
        else "Official figures are as returned: each census year is counted from that "
        "year's own return, as DfE publishes them."
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Children in need — annual report {label}</title>
<style>
body {{ font-family: Arial, Helvetica, sans-serif; max-width: 860px; margin: 2em auto; color: #0b0c0c; line-height: 1.5; }}
h1 {{ border-bottom: 4px solid #1d70b8; padding-bottom: .3em; }}
a {{ color: #1d70b8; }} li {{ margin: .3em 0; }} .meta {{ color: #505a5f; font-size: .9em; }}
</style></head><body>
<h1>Children in need — annual report {label}</h1>
<p>Census year ending 31 March {year}. Figures are produced from child-level data by the
cinresearch toolkit; published tables pass statistical disclosure control (small counts
suppressed as <code>c</code>; national totals rounded to the nearest 10).</p>
<p>{basis_text}</p>
<h2>Chapters</h2><ul>{items(runs)}</ul>
{la_section}
{data_section}
<p class="meta">Reproducibility: parameters, input file hashes, package version and git commit are in
<a href="manifest.json">manifest.json</a>.</p>
</body></html>
"""


def build_report(
    store: str | os.PathLike[str],
    year: int,
    out: str | os.PathLike[str],
    las: Sequence[str] = (),
    *,
    suppression_threshold: int = 5,
    notebooks: Sequence[str] = REPORT_NOTEBOOKS,
    notebook_dir: Path = NOTEBOOK_DIR,
    progress: bool = True,
    extra_parameters: dict[str, Any] | None = None,
    indicator_basis: str = "as_returned",
) -> Path:
    """Run the report notebooks for census ``year`` and write ``out/index.html``; returns its path.

    ``las``: LA codes for benchmarking packs (``["all"]`` = every LA in the store).
    ``indicator_basis``: how official figures are counted — ``as_returned`` (default: each year
    from its own return, as DfE) or ``revised`` (later returns applied; labelled "revised" in
    the index, the notebooks that declare the parameter and the open-data metadata).
    """
    if indicator_basis not in BASES:
        raise ReportError(f"indicator_basis must be one of {BASES}, got {indicator_basis!r}")
    store_path = Path(store).resolve()
    out_dir = Path(out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    st = Store(store_path)
    if not st.manifest_path.exists():
        raise ReportError(
            f"{store_path} is not a store (no manifest.json); run `cinresearch load` first"
        )
    started = datetime.now(UTC)
    base = {
        "store": str(store_path),
        "census_year": int(year),
        "suppression_threshold": int(suppression_threshold),
    }
    base.update(extra_parameters or {})
    la_codes = list(las)
    if la_codes == ["all"]:
        la_codes = sorted({r.la_code for r in st.inputs() if r.la_code and r.kind == "cin_xml"})

    def params(name: str, code: str) -> dict[str, Any]:
        extra = (
            {"indicator_basis": indicator_basis}
            if _declares(notebook_dir, name, "indicator_basis")
            else {}
        )
        return {**base, **extra, "la_code": code}

    jobs: list[tuple[str, Path, dict[str, Any], str | None]] = [
        (name, out_dir, params(name, "ENG"), None) for name in notebooks
    ]
    for code in la_codes:
        for name in LA_NOTEBOOKS:
            jobs.append((name, out_dir / f"la_{code}", params(name, code), code))
    runs: list[NotebookRun] = []
    la_runs: dict[str, list[NotebookRun]] = {}
    with _Progress(progress, len(jobs) + 1) as advance:
        data_files = write_publication_tables(
            st, year, out_dir / "data", suppression_threshold, basis=indicator_basis
        )
        advance("publication tables")
        for name, target, params, code in jobs:
            run = run_notebook(name, target, params, notebook_dir=notebook_dir)
            (la_runs.setdefault(code, []) if code else runs).append(run)
            advance(f"{name}" + (f" (LA {code})" if code else ""))
    index = out_dir / "index.html"
    index.write_text(
        _index_html(year, runs, la_runs, data_files, indicator_basis), encoding="utf-8"
    )
    manifest = {
        "report": "cinresearch annual report",
        "census_year": year,
        "parameters": {**base, "indicator_basis": indicator_basis},
        "las": la_codes,
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "package_version": _package_version(),
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "inputs": [
            {
                "file": r.file,
                "sha256": r.sha256,
                "kind": r.kind,
                "census_year": r.census_year,
                "la_code": r.la_code,
            }
            for r in st.inputs()
        ],
        "notebooks": [r.__dict__ for r in runs]
        + [r.__dict__ for rs in la_runs.values() for r in rs],
        "data_files": data_files,
    }
    (out_dir / "manifest.json").write_text(
        json.dumps(manifest, indent=2, default=str), encoding="utf-8"
    )
    return index


def write_publication_tables(
    store: Any,
    year: int,
    out_dir: Path,
    suppression_threshold: int = 5,
    basis: str = "as_returned",
) -> list[str]:
    """EES-layout CSVs (with .meta.csv) of the official measures, after disclosure control.

    ``basis``: ``as_returned`` (each year from its own return, as DfE) or ``revised``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    return write_indicator_tables(
        store, year, out_dir, suppression_threshold=suppression_threshold, basis=basis
    )


def _declares(notebook_dir: Path, name: str, parameter: str) -> bool:
    """Whether the notebook's ``parameters`` cell assigns ``parameter``."""
    import nbformat  # the Jupyter stack is imported only when a report is run (slow to import)

    nb = nbformat.read(notebook_dir / f"{name}.ipynb", as_version=4)
    for cell in nb.cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return re.search(rf"^{parameter}\s*=", cell.source, flags=re.MULTILINE) is not None
    return False


class _Progress:
    def __init__(self, enabled: bool, total: int):
        self.enabled = enabled
        self.total = total

    def __enter__(self):
        if not self.enabled:
            return lambda label: None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bar = Progress(
            TextColumn("[bold]report[/] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        self.bar.__enter__()
        task = self.bar.add_task("starting", total=self.total)
        return lambda label: self.bar.update(task, advance=1, description=label)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)
