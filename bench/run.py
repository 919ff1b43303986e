"""Benchmarks at national scale on one machine, against the tools analysts use today.

Usage (also ``make bench``)::

    .venv/bin/python bench/run.py [--stages load,baselines,build,survival,report]
                                  [--children 1000000] [--years 2018-2024] [--quick]

Stages (each measured in its own subprocess: wall time, CPU time and peak RSS, from
``/usr/bin/time -v`` when present, else ``os.wait4`` rusage of that one child):

``load``       ``cinresearch.io.cin.read_cin_xml`` on one return of ``--children`` children
               (the file is built and cached by ``bench/load_cin_xml.py`` in ``bench/cache/``).
``baselines``  the same file through: a pandas + ElementTree parser (``baselines/pandas_etree.py``),
               Social Finance's ``liiatools`` CIN clean (separate venv ``bench/.venv-liiatools``;
               measured on smaller files and extrapolated, labelled as such, when it would take too
               long), bare ``lxml`` iterparse and a plain disk read. Prints and records the ratios.
``build``      synthetic returns (``cinresearch.synth.generate``, cached) for ``--years``
               (default 2018-2025, every census year the loader supports) over ``--las`` LAs
               (default 152) at ``--scale`` referrals per LA per year (default England's
               ≈ 4,300 × 10 / years × ``--children`` / 1,000,000: ten national years' volume of
               referrals, 13 GB of input), loaded into a store
               (``cinresearch.io.loader.load_paths``) and built
               (``cinresearch.journeys.build_journeys``).
``survival``   survival frame (``cinresearch.cohorts``) + Aalen-Johansen + Cox (``cinresearch.survival``)
               on the built store.
``report``     ``cinresearch.report.runner.build_report`` on the built store.
``scaling``    (not in the default list) the loader, and load + journey build, at 1, 2, 4, 8
               LA-equivalents; the numbers behind ``bench/SCALING.md``.

A stage whose modules cannot be imported yet is skipped with a message. Every measured row is
appended (dated, with machine, load average and data size) to ``bench/RESULTS.md``; the full
measurements of the last run go to ``bench/cache/last_run.json``. Benchmarks are not run in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / "cache"
RESULTS = HERE / "RESULTS.md"
LIIA_PY = HERE / ".venv-liiatools" / "bin" / "python"
TIME = Path("/usr/bin/time")
sys.path.insert(0, str(HERE))

import load_cin_xml  # noqa: E402  (bench/load_cin_xml.py: the cached benchmark return)

STAGES = ("load", "baselines", "build", "survival", "report")
ALL_STAGES = (*STAGES, "scaling")
NATIONAL_CHILDREN = 1_000_000
N_LAS = 152
LA_EQUIVALENT = NATIONAL_CHILDREN // N_LAS  # children in an average LA's return (≈ 6,579)
LIIA_LADDER = (1_000, 2_000, 5_000, 20_000)
LIIA_QUICK = (200,)
LIIA_TIMEOUT_S = 1_800


# -- machine and measurement --------------------------------------------------------------------
def machine() -> dict[str, Any]:
    """Cores, RAM, CPU model, Python: recorded with every row."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram_gb = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "ram_gb": round(ram_gb, 1) if ram_gb else None,
        "python": platform.python_version(),
        "arch": platform.machine(),
    }


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def busy(load: tuple[float, float, float]) -> bool:
    """True when other work was competing for the cores (1-minute load above 75% of cores)."""
    return load[0] > 0.75 * (os.cpu_count() or 1)


@dataclass
class Measured:
    """One subprocess run: wall/CPU seconds, peak RSS and its JSON answer (last stdout line)."""

    label: str
    wall_s: float
    cpu_s: float
    peak_mb: float
    load: tuple[float, float, float]
    out: dict[str, Any] = field(default_factory=dict)
    ok: bool = True
    error: str = ""
    method: str = ""
    tree_mb: float = 0.0  # sampled summed PSS of the whole process group
    procs: int = 0  # most processes seen at once (workers)

    @property
    def skipped(self) -> str | None:
        return self.out.get("skipped")


def _parse_time_v(text: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in text.splitlines():
        key, _, value = line.strip().rpartition(": ")
        if key == "User time (seconds)":
            values["user"] = float(value)
        elif key == "System time (seconds)":
            values["sys"] = float(value)
        elif key == "Maximum resident set size (kbytes)":
            values["maxrss_kb"] = float(value)
    return values


def _group_memory(pgid: int) -> tuple[float, int]:
    """(summed PSS in MB, number of processes) of the process group ``pgid``, from /proc.

    PSS shares each page among the processes mapping it, so forked workers are not
    double-counted. The ``/usr/bin/time`` wrapper (~1 MB) is included but not counted.
    """
    total_kb, n = 0.0, 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            fields = stat.rpartition(")")[2].split()
            if int(fields[2]) != pgid:  # fields after the comm: state, ppid, pgrp, ...
                continue
            for line in Path(entry.path, "smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kb += float(line.split()[1])
                    break
            if not stat.split("(", 1)[1].startswith("time)"):
                n += 1
        except (OSError, ValueError, IndexError):
            continue
    return total_kb / 1024, n


def measure(
    label: str, cmd: list[str], timeout: float | None = None, env: dict[str, str] | None = None
) -> Measured:
    """Run ``cmd`` in a subprocess (its own process group) and measure it.

    Wall time from here; CPU (user+sys, including any worker processes) and peak RSS of the
    largest single process from ``/usr/bin/time -v`` (else ``os.wait4`` rusage of that child).
    The process group's summed PSS is also sampled every 0.2 s, because a multi-process run's
    memory is the sum over its processes, which no rusage reports.
    """
    load = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        out_path, err_path, time_path = (Path(tmp) / n for n in ("out", "err", "time"))
        use_time = TIME.exists()
        full = [str(TIME), "-v", "-o", str(time_path), *cmd] if use_time else cmd
        tree_mb, max_procs = 0.0, 0
        with open(out_path, "wb") as fout, open(err_path, "wb") as ferr:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                full, stdout=fout, stderr=ferr, cwd=ROOT, env=env, start_new_session=True
            )
            rusage = None
            timed_out = False
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                if use_time:
                    if proc.poll() is not None:
                        break
                else:
                    pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
                    if pid:
                        proc.returncode = os.waitstatus_to_exitcode(status)
                        break
                mb, n = _group_memory(proc.pid)
                tree_mb, max_procs = max(tree_mb, mb), max(max_procs, n)
                if deadline is not None and time.monotonic() > deadline:
                    timed_out = True
                    os.killpg(proc.pid, signal.SIGKILL)  # only the group this call started
                    proc.wait()
                    break
                time.sleep(0.2)
            wall = time.perf_counter() - t0
        stdout = out_path.read_text(errors="replace")
        stderr = err_path.read_text(errors="replace")
        if use_time and time_path.exists():
            tv = _parse_time_v(time_path.read_text())
            cpu = tv.get("user", 0.0) + tv.get("sys", 0.0)
            peak = tv.get("maxrss_kb", 0.0) / 1024
            method = "/usr/bin/time -v"
        elif rusage is not None:
            cpu = rusage.ru_utime + rusage.ru_stime
            peak = rusage.ru_maxrss / 1024
            method = "os.wait4 rusage"
        else:
            cpu, peak, method = 0.0, 0.0, "none"
    result = Measured(label, wall, cpu, peak, load, method=method)
    result.tree_mb, result.procs = tree_mb, max_procs
    if timed_out:
        result.ok, result.error = False, f"timed out after {timeout:.0f} s"
        return result
    lines = [ln for ln in stdout.strip().splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        result.ok = False
        tail = (stderr.strip().splitlines() or ["(no output)"])[-1]
        result.error = f"exit {proc.returncode}: {tail}"
        return result
    result.out = json.loads(lines[-1])
    return result


# -- results ------------------------------------------------------------------------------------
RESULTS_HEADER = (
    "# Benchmark results\n\nAppend-only; each row is one measured run.\n\n"
    "| date | stage | data | wall time | peak RSS | machine |\n|---|---|---|---|---|---|\n"
)


def _machine_cell(m: dict[str, Any], load: tuple[float, float, float]) -> str:
    text = (
        f"{m['cores']} cores, {m['cpu']}, {m['ram_gb']} GB RAM, Python {m['python']}; "
        f"load {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}"
    )
    if busy(load):
        text += " — busy: other processes were running during the measurement"
    return text


def _seconds(s: float) -> str:
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    if s >= 120:
        return f"{s / 60:.1f} min"
    return f"{s:.1f} s" if s >= 1 else f"{s:.2f} s"


def row(m: Measured, stage: str, data: str, machine_info: dict[str, Any]) -> str:
    wall = f"{_seconds(m.wall_s)} (CPU {_seconds(m.cpu_s)})"
    peak = f"{m.peak_mb:,.0f} MB"
    if m.procs > 1:
        peak = (
            f"{max(m.tree_mb, m.peak_mb):,.0f} MB summed over {m.procs} processes "
            f"(sampled PSS; largest one {m.peak_mb:,.0f} MB)"
        )
    return (
        f"| {date.today()} | {stage} | {data} | {wall} | {peak} | "
        f"{_machine_cell(machine_info, m.load)} |"
    )


def append_rows(lines: list[str]) -> None:
    if not lines:
        return
    if not RESULTS.exists():
        RESULTS.write_text(RESULTS_HEADER, encoding="utf-8")
    with open(RESULTS, "a", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line + "\n")


def file_label(path: Path, children: int, episodes: int | None = None) -> str:
    size = path.stat().st_size / 1e6
    mb = f"{size:,.0f}" if size >= 10 else f"{size:.1f}"
    eps = f", {episodes:,} episodes" if episodes is not None else ""
    return f"{path.name} ({mb} MB, {children:,} children{eps})"


# -- data ---------------------------------------------------------------------------------------
def bench_file(children: int, la_code: str = "201") -> Path:
    """The cached benchmark return (``load_cin_xml.make_file``), or a copy for another LA."""
    if la_code == "201":
        return load_cin_xml.make_file(children)
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"cin_bench_{children}_la{la_code}.xml"
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp")
    header = load_cin_xml.HEADER.replace("<LEA>201</LEA>", f"<LEA>{la_code}</LEA>")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(header)
        for i in range(children):
            handle.write(load_cin_xml._child(i))
        handle.write("</Children></Message>\n")
    tmp.replace(path)
    return path


# -- workers (run inside the measured subprocess) -----------------------------------------------
def _emit(payload: dict[str, Any]) -> None:
    print(json.dumps(payload, default=str), flush=True)


def _skip(stage: str, err: BaseException) -> None:
    _emit({"skipped": f"{stage}: cannot import ({type(err).__name__}: {err})"})


def worker(name: str, params: dict[str, Any]) -> None:
    """Entry point of a measured subprocess: do one thing, print one JSON line."""
    t0 = time.perf_counter()
    if name == "read_cin_xml":
        try:
            from cinresearch.io.cin import read_cin_xml
            from cinresearch.pseudonymise import load_key
        except ImportError as err:
            return _skip("read_cin_xml", err)
        kwargs = {} if params.get("workers") is None else {"workers": params["workers"]}
        t0 = time.perf_counter()  # like the baselines: parse work only, imports excluded
        load = read_cin_xml(Path(params["path"]), load_key(demo=True), **kwargs)
        seconds = time.perf_counter() - t0
        rows = {t: f.height for t, f in load.tables.items()}
        _emit(
            {
                "seconds": seconds,
                "children": rows["children"],
                "referrals": rows["referrals"],
                "rows": rows,
                "rejects": load.rejects.height,
                "balanced": load.counts()["balanced"],
                "workers": params.get("workers"),
            }
        )
    elif name == "synth":
        try:
            from cinresearch.synth import generate
        except ImportError as err:
            return _skip("synth", err)
        summary = generate(
            Path(params["out"]),
            las=params["las"],
            years=tuple(params["years"]),
            scale=params["scale"],
            seed=params["seed"],
        )
        _emit({"seconds": time.perf_counter() - t0, "summary": str(summary)[:500]})
    elif name == "load_store":
        try:
            from cinresearch.io.loader import load_paths
            from cinresearch.pseudonymise import load_key
            from cinresearch.store import Store
        except ImportError as err:
            return _skip("load", err)
        report = load_paths(
            [Path(p) for p in params["paths"]],
            Store(params["store"]),
            load_key(demo=True),
            progress=False,
        )
        outcomes = report.as_dict()
        failed = [o for o in report.outcomes if o.status == "failed"]
        _emit(
            {
                "seconds": time.perf_counter() - t0,
                "files": len(report.outcomes),
                "failed": len(failed),
                "first_failure": failed[0].message if failed else None,
                "report_keys": list(outcomes)[:5],
            }
        )
    elif name == "build":
        try:
            from cinresearch.journeys import build_journeys
            from cinresearch.store import Store
        except ImportError as err:
            return _skip("build", err)
        report = build_journeys(Store(params["store"]), progress=False)
        _emit(
            {
                "seconds": time.perf_counter() - t0,
                "ok": report.ok,
                "outputs": report.outputs,
                "timings_s": report.timings_s,
                "rows_in": {t: v.get("rows_in") for t, v in report.tables.items()},
            }
        )
    elif name == "survival":
        try:
            from cinresearch import cohorts, survival
            from cinresearch.store import Store
        except ImportError as err:
            return _skip("survival", err)
        store = Store(params["store"])
        first, last = params["cohort_years"]
        sf = cohorts.build_survival_frame(
            store.scan("episodes"),
            {"name": "bench", "origin": "referral", "census_years": (first, last)},
            "cpp",
            children=store.scan("children_longitudinal"),
            events=store.scan("events"),
            cp_plans=store.scan("cp_plans"),
        )
        frame = sf.frame
        t_frame = time.perf_counter() - t0
        cif = survival.cumulative_incidence(frame, group="age_band", entry="entry")
        t_cif = time.perf_counter() - t0 - t_frame
        covariates = [c for c in ("age_band", "disabled", "sex") if c in frame.columns]
        cox = survival.cox(frame, covariates=covariates, entry="entry")
        _emit(
            {
                "seconds": time.perf_counter() - t0,
                "subjects": frame.height,
                "frame_s": t_frame,
                "cif_s": t_cif,
                "cif_rows": cif.height,
                "cox_terms": cox.height,
            }
        )
    elif name == "report":
        try:
            from cinresearch.report.runner import build_report
        except ImportError as err:
            return _skip("report", err)
        index = build_report(params["store"], params["year"], params["out"], las=(), progress=False)
        _emit({"seconds": time.perf_counter() - t0, "index": str(index)})
    else:
        raise SystemExit(f"unknown worker {name!r}")


def run_worker(
    label: str, name: str, params: dict[str, Any], timeout: float | None = None
) -> Measured:
    cmd = [sys.executable, str(Path(__file__)), "--worker", name, "--params", json.dumps(params)]
    return measure(label, cmd, timeout=timeout)


# -- stages -------------------------------------------------------------------------------------
@dataclass
class Run:
    args: argparse.Namespace
    machine: dict[str, Any]
    rows: list[str] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)
    ours: dict[tuple[int, int | None], Measured] = field(default_factory=dict)

    def note(self, m: Measured, stage: str, data: str) -> None:
        if m.ok and not m.skipped:
            line = row(m, stage, data, self.machine)
            self.rows.append(line)
            print(line, flush=True)

    def fail(self, what: str, m: Measured) -> None:
        if m.skipped:
            print(f"skipped — {m.skipped} (the lead runs this stage when the module lands)")
        elif not m.ok:
            print(f"FAILED {what}: {m.error}")


def measure_ours(run: Run, path: Path, children: int, workers: int | None = None) -> Measured:
    """``read_cin_xml`` on ``path`` (default workers: its own choice, parallel over 32 MB)."""
    key = (children, workers)
    if key in run.ours:
        return run.ours[key]
    m = run_worker("ours", "read_cin_xml", {"path": str(path), "workers": workers})
    if m.ok and not m.skipped:
        run.ours[key] = m
    return m


def stage_load(run: Run) -> None:
    n = run.args.children
    path = bench_file(n)
    m = measure_ours(run, path, n)
    if not m.ok:
        return run.fail("load", m)
    data = file_label(path, m.out["children"], m.out["referrals"])
    run.note(m, "CIN XML load (`read_cin_xml`, bench/run.py)", data)
    run.record["load"] = m.__dict__


def _ratio(base: Measured | float, ours: Measured, cpu: bool = False) -> float:
    b = (base.cpu_s if cpu else base.wall_s) if isinstance(base, Measured) else base
    o = ours.cpu_s if cpu else ours.wall_s
    return b / o if o else float("nan")


def _work_ratio(base: Measured, ours: Measured) -> str:
    """Ratio of the in-process timings each script prints (no interpreter start or imports)."""
    b, o = base.out.get("seconds"), ours.out.get("seconds")
    if not b or not o:
        return ""
    return f"ours {b / o:.1f}× faster" if b >= o else f"ours {o / b:.1f}× slower"


def _fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares y = a + b x."""
    n = len(xs)
    if n == 1:
        return 0.0, ys[0] / xs[0]
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return my - b * mx, b


def stage_baselines(run: Run) -> None:
    n = run.args.children
    path = bench_file(n)
    ours: Measured | None = measure_ours(run, path, n)
    summary: dict[str, Any] = {"children": n, "file_mb": path.stat().st_size / 1e6}
    if ours.ok:
        data = file_label(path, ours.out["children"], ours.out["referrals"])
        summary["ours"] = ours.__dict__
    else:
        run.fail("ours (for the baselines; the baselines still run, without ratios)", ours)
        ours = None
        data = file_label(path, n)

    ours1 = None
    if ours is not None and path.stat().st_size >= 32e6:
        # the default reader uses several processes on large files; one process is the
        # like-for-like comparison with single-process baselines
        ours1 = measure_ours(run, path, n, workers=1)
        if ours1.ok and not ours1.skipped:
            run.note(ours1, "CIN XML load, one process (`read_cin_xml(workers=1)`)", data)
            summary["ours_1proc"] = ours1.__dict__
        else:
            run.fail("ours, one process", ours1)
            ours1 = None

    def _speed(base: Measured, mine: Measured) -> str:
        w, c = _ratio(base, mine), _ratio(base, mine, cpu=True)
        work = _work_ratio(base, mine)
        tail = f"; work only, excl. interpreter start/imports: {work}" if work else ""
        if w >= 1:
            return f"{w:.1f}× faster (CPU {c:.1f}×{tail})"
        return f"{1 / w:.1f}× slower (CPU {1 / c:.1f}×{tail})"

    def speed(base: Measured) -> str:
        if ours is None:
            return "ours not measured"
        text = f"ours {_speed(base, ours)}"
        if ours1 is not None:
            text += f"; ours in one process {_speed(base, ours1)}"
        return text

    # 1. pandas + ElementTree, same file
    pe = measure(
        "pandas_etree", [sys.executable, str(HERE / "baselines" / "pandas_etree.py"), str(path)]
    )
    if pe.ok:
        run.note(
            pe, f"baseline: pandas + ElementTree (`baselines/pandas_etree.py`) — {speed(pe)}", data
        )
        summary["pandas_etree"] = pe.__dict__
    else:
        run.fail("pandas_etree", pe)

    # 2. the floors: bare iterparse, disk read (cold, then page cache)
    floor = [sys.executable, str(HERE / "baselines" / "floor.py")]
    it = measure("iterparse", [*floor, "iterparse", str(path)])
    cold = measure("read_cold", [*floor, "read", str(path), "--cold"])
    warm = measure("read_warm", [*floor, "read", str(path)])
    for m, what in (
        (it, "floor: bare `lxml.etree.iterparse` (Child events, clear only)"),
        (cold, "floor: disk read, 16 MiB buffer, page cache dropped first (fadvise DONTNEED)"),
        (warm, "floor: read, 16 MiB buffer, from page cache"),
    ):
        if m.ok:
            ratio = "(ours n/a)"
            if ours and m.wall_s:
                ratio = f"{ours.wall_s / m.wall_s:.1f}×"
                if ours.out.get("seconds") and m.out.get("seconds"):
                    ratio += f" (work only {ours.out['seconds'] / m.out['seconds']:.1f}×)"
            run.note(m, f"{what} — ours takes {ratio} this", data)
            summary[m.label] = m.__dict__
        else:
            run.fail(m.label, m)

    # 3. liiatools, separate venv; on the same file if small, else a ladder + extrapolation
    summary["liiatools"] = stage_liiatools(run, n, ours)
    run.record["baselines"] = summary
    print_ratios(summary)


def stage_liiatools(run: Run, n: int, ours_n: Measured | None) -> dict[str, Any]:
    if not LIIA_PY.exists():
        msg = "bench/.venv-liiatools missing: build it with `bench/run.py --setup-liiatools`"
        print(f"liiatools: {msg}")
        return {"error": msg}
    ladder = sorted(
        {s for s in run.args.liiatools_children if s <= n}
        | ({n} if n <= max(run.args.liiatools_children) else set())
    )
    cache_path = CACHE / "liiatools_points.json"
    cached = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    points = []
    for size in ladder:
        path = bench_file(size)
        prior = cached.get(str(size))
        if prior and not run.args.remeasure_liiatools:
            # liiatools is slow and the machine is shared: reuse an earlier measurement of the
            # same generated file (its row is already in RESULTS.md) unless asked to remeasure.
            lm = Measured(**{k: v for k, v in prior.items() if k != "date"})
            lm.load = tuple(lm.load)
            print(f"liiatools at {size:,} children: reusing the measurement of {prior['date']}")
        else:
            lm = measure(
                "liiatools",
                [
                    str(LIIA_PY),
                    str(HERE / "baselines" / "liiatools_cin.py"),
                    str(path),
                    "--year",
                    "2018",
                ],
                timeout=LIIA_TIMEOUT_S,
            )
            if not lm.ok:
                run.fail(f"liiatools at {size:,} children", lm)
                points.append({"children": size, "error": lm.error})
                break
            if not run.args.no_record:  # reuse only measurements whose row was recorded
                cached[str(size)] = {**lm.__dict__, "date": str(date.today())}
                cache_path.write_text(json.dumps(cached, indent=2, default=str))
            prior = None
        om = ours_n if size == n and ours_n else measure_ours(run, path, size)
        w, c = _ratio(lm, om), _ratio(lm, om, cpu=True)
        if prior is None:
            run.note(
                lm,
                f"baseline: liiatools 0.2.0 CIN `cleanfile` steps (`baselines/liiatools_cin.py`, same file) — "
                f"ours {w:,.0f}× faster (CPU {c:,.0f}×); phases {lm.out.get('phases')}",
                file_label(path, size),
            )
        else:
            print(f"  liiatools {lm.wall_s:.1f} s vs ours {om.wall_s:.2f} s: ours {w:,.0f}× faster")
        points.append(
            {
                "children": size,
                "liiatools": lm.__dict__,
                "ours": om.__dict__,
                "ratio_wall": w,
                "ratio_cpu": c,
            }
        )
    good = [p for p in points if "liiatools" in p]
    result: dict[str, Any] = {"points": points}
    if len(good) == 1 and good[0]["children"] < n:
        print("liiatools: one size measured, too few to extrapolate (give two or more sizes)")
    if len(good) >= 2 and max(p["children"] for p in good) < n:
        xs = [float(p["children"]) for p in good]
        a, b = _fit_line(xs, [p["liiatools"]["wall_s"] for p in good])
        ac, bc = _fit_line(xs, [p["liiatools"]["cpu_s"] for p in good])
        am, bm = _fit_line(xs, [p["liiatools"]["peak_mb"] for p in good])
        wall, cpu, mem = a + b * n, ac + bc * n, am + bm * n
        result["extrapolated"] = {
            "children": n,
            "wall_s": wall,
            "cpu_s": cpu,
            "peak_mb": mem,
            "from": xs,
        }
        fake = Measured("liiatools (extrapolated)", wall, cpu, mem, good[-1]["liiatools"]["load"])
        sizes = "/".join(f"{int(x):,}" for x in xs)
        vs = (
            f"ours ≈ {wall / ours_n.wall_s:,.0f}× faster by wall time, "
            f"{cpu / ours_n.cpu_s:,.0f}× by CPU time (liiatools' wall times were taken under the "
            f"load shown, so the CPU ratio is the steadier one)"
            if ours_n
            else "ours not measured"
        )
        ram_mb = (run.machine.get("ram_gb") or 0) * 1024
        if ram_mb and mem > ram_mb:
            vs += f"; it would need ≈ {mem / 1024:,.0f} GB, more than this machine's RAM"
        line = row(
            fake,
            f"baseline: liiatools 0.2.0 — **EXTRAPOLATED, not measured** (linear fit to {sizes} children; "
            f"{b * 1000:.0f} ms and {bm * 1000:.1f} kB per child) — {vs}",
            f"{n:,} children (same generator)",
            run.machine,
        ).replace(f"{_seconds(wall)} (CPU", f"≈ {_seconds(wall)} (CPU ≈")
        run.rows.append(line)
        print(line)
    return result


def print_ratios(summary: dict[str, Any]) -> None:
    ours = summary.get("ours")
    if ours is None:
        print("\n(no ratios: our reader was not measured)")
        return
    print(f"\nratios on {summary['children']:,} children ({summary['file_mb']:,.0f} MB):")
    for key, label in (
        ("pandas_etree", "pandas + ElementTree"),
        ("iterparse", "bare lxml iterparse"),
        ("read_cold", "disk read (cold)"),
        ("read_warm", "read (page cache)"),
    ):
        base = summary.get(key)
        if base:
            print(
                f"  {label:<24} {base['wall_s']:8.2f} s wall {base['cpu_s']:8.2f} s CPU {base['peak_mb']:7.0f} MB"
                f"   ours/that = {ours['wall_s'] / base['wall_s']:.2f} (wall)"
            )
    liia = summary.get("liiatools", {})
    ext = liia.get("extrapolated")
    if ext:
        print(
            f"  {'liiatools (extrapolated)':<24} {ext['wall_s']:8.0f} s wall {ext['cpu_s']:8.0f} s CPU"
            f" {ext['peak_mb']:7.0f} MB   that/ours = {ext['wall_s'] / ours['wall_s']:.0f}"
        )
    print(
        f"  {'ours (read_cin_xml)':<24} {ours['wall_s']:8.2f} s wall {ours['cpu_s']:8.2f} s CPU {ours['peak_mb']:7.0f} MB\n"
    )


def _synth_params(
    run: Run, las: int | None = None, scale: int | None = None, years: tuple[int, int] | None = None
) -> dict[str, Any]:
    first, last = years or run.args.years
    las = min(las or run.args.las, N_LAS)
    scale = scale or run.args.scale
    tag = f"{las}x{scale}_{first}-{last}_s{run.args.seed}"
    return {
        "out": str(CACHE / f"synth_{tag}"),
        "store": str(CACHE / f"store_{tag}"),
        "las": las,
        "scale": scale,
        "years": [first, last],
        "seed": run.args.seed,
        "tag": tag,
    }


def _dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def synth_load_build(run: Run, p: dict[str, Any], prefix: str = "") -> dict[str, Any] | None:
    """Generate (cached) → load into a fresh store → build journeys; each step measured."""
    out, store = Path(p["out"]), Path(p["store"])
    what = (
        f"synthetic {p['las']} LAs × {p['scale']:,} referrals/LA/year, "
        f"{p['years'][0]}-{p['years'][1]}"
    )
    result: dict[str, Any] = {"params": p}
    if not (out / ".complete").exists():
        shutil.rmtree(out, ignore_errors=True)
        m = run_worker("synth", "synth", p)
        if m.skipped or not m.ok:
            run.fail("synth generate", m)
            return None
        (out / ".complete").write_text("ok\n")
        run.note(
            m,
            f"{prefix}synth generate (`cinresearch.synth.generate`)",
            f"{what} → {_dir_mb(out):,.0f} MB",
        )
        result["synth"] = m.__dict__
    files = [f for f in out.rglob("*") if f.is_file() and f.name != ".complete"]
    xml = [f for f in files if f.suffix.lower() == ".xml"]
    result["xml_mb"] = sum(f.stat().st_size for f in xml) / 1e6
    result["files"] = len(files)
    shutil.rmtree(store, ignore_errors=True)
    m = run_worker("load", "load_store", {"paths": [str(out)], "store": str(store)})
    if m.skipped or not m.ok:
        run.fail("load into store", m)
        return None
    run.note(
        m,
        f"{prefix}load all inputs into the store (`load_paths`, {len(files)} files, "
        f"{len(xml)} CIN XML)",
        f"{what} ({_dir_mb(out):,.0f} MB, of which CIN XML {result['xml_mb']:,.0f} MB)",
    )
    result["load"] = m.__dict__
    m = run_worker("build", "build", {"store": str(store)})
    if m.skipped or not m.ok:
        run.fail("journey build", m)
        return result
    rows = m.out.get("rows_in", {})
    timings = {k: round(v, 1) for k, v in m.out.get("timings_s", {}).items()}
    result["referral_rows"] = rows.get("referrals", 0)
    result["episodes"] = m.out.get("outputs", {}).get("episodes", 0)
    run.note(
        m,
        f"{prefix}journey build (`build_journeys`); stage seconds {timings}",
        f"{what}: {result['referral_rows']:,} referral rows in, "
        f"{result['episodes']:,} episodes out",
    )
    result["build"] = m.__dict__
    return result


def stage_build(run: Run) -> None:
    run.record["build"] = synth_load_build(run, _synth_params(run))


def _built_store(run: Run) -> Path | None:
    store = Path(_synth_params(run)["store"])
    if not (store / "derived" / "episodes.parquet").exists():
        print(f"skipped — no built store at {store}: run the build stage first")
        return None
    return store


def stage_survival(run: Run) -> None:
    store = _built_store(run)
    if store is None:
        return
    first, last = run.args.years
    cohort_years = (min(first + 1, last), max(min(first + 3, last - 1), min(first + 1, last)))
    m = run_worker(
        "survival", "survival", {"store": str(store), "cohort_years": list(cohort_years)}
    )
    if m.skipped or not m.ok:
        return run.fail("survival", m)
    run.note(
        m,
        f"survival: frame {m.out['frame_s']:.1f} s + Aalen-Johansen by age band {m.out['cif_s']:.1f} s + Cox",
        f"{m.out['subjects']:,} subjects (referrals {cohort_years[0]}-{cohort_years[1]}, outcome CPP), store {store.name}",
    )


def stage_report(run: Run) -> None:
    store = _built_store(run)
    if store is None:
        return
    year = run.args.years[1]
    out = CACHE / f"report_{store.name}"
    shutil.rmtree(out, ignore_errors=True)
    m = run_worker("report", "report", {"store": str(store), "year": year, "out": str(out)})
    if m.skipped or not m.ok:
        return run.fail("report", m)
    run.note(m, f"annual report (`build_report`, {year})", f"store {store.name}")


def _mb_cell(m: dict[str, Any] | None) -> str:
    if not m:
        return "–"
    return f"{max(m['peak_mb'], m.get('tree_mb') or 0):,.0f}"


def _t_cell(m: dict[str, Any] | None) -> str:
    return f"{m['wall_s']:.1f} / {m['cpu_s']:.1f}" if m else "–"


def stage_scaling(run: Run) -> None:
    """The numbers behind SCALING.md (parts chosen with ``--scaling-parts``).

    ``files``: ``read_cin_xml`` on one file of 1, 2, 4, 8 LA-equivalents (also in one process
    when the file is large enough for the parallel reader). ``stores``: that many separate LA
    returns (one year) loaded into a store and built. ``synth``: synthetic returns over
    1, 2, 4, 8 LAs × ``--scaling-years``, and over 1, 2, 4, 7 years × 4 LAs, loaded and built.
    """
    base = run.args.la_equivalent
    parts = run.args.scaling_parts
    files_table, stores_table, synth_table = [], [], []
    for k in run.args.scaling if "files" in parts else ():
        n = base * k
        path = bench_file(n)
        m = measure_ours(run, path, n)
        if not m.ok:
            run.fail(f"loader at {k} LA-eq", m)
            continue
        label = file_label(path, n, m.out["referrals"])
        run.note(m, f"scaling: loader, {k} LA-equivalent(s) in one file", label)
        entry: dict[str, Any] = {"k": k, "children": n, "mb": path.stat().st_size / 1e6}
        entry["loader"] = m.__dict__
        if path.stat().st_size >= 32e6:
            m1 = measure_ours(run, path, n, workers=1)
            if m1.ok:
                run.note(m1, f"scaling: loader, {k} LA-equivalent(s), one process", label)
                entry["loader_1proc"] = m1.__dict__
        files_table.append(entry)
    for k in run.args.scaling if "stores" in parts else ():
        codes = [f"{301 + i}" for i in range(k)]
        folder = CACHE / f"scaling_{base}x{k}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for code in codes:
            f = bench_file(base, code)
            os.link(f, folder / f.name)
        store = CACHE / f"scaling_store_{base}x{k}"
        shutil.rmtree(store, ignore_errors=True)
        entry = {"k": k, "children": k * base}
        lm = run_worker("load", "load_store", {"paths": [str(folder)], "store": str(store)})
        if lm.ok and not lm.skipped:
            what = f"{k} LA return(s) × {base:,} children, 1 year"
            run.note(lm, "scaling: load LA returns into the store (`load_paths`)", what)
            entry["load_store"] = lm.__dict__
            bm = run_worker("build", "build", {"store": str(store)})
            if bm.ok and not bm.skipped:
                run.note(bm, "scaling: journey build (`build_journeys`)", what)
                entry["build"] = bm.__dict__
            else:
                run.fail("journey build", bm)
        else:
            run.fail("load into store", lm)
        stores_table.append(entry)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(store, ignore_errors=True)
    if "synth" in parts:
        first, last = run.args.scaling_years
        combos = [(k, (first, last)) for k in run.args.scaling]
        combos += [
            (4, (first, first + y - 1))
            for y in (1, 2, 4, 7)
            if (4, (first, first + y - 1)) not in combos
        ]
        for las, years in combos:
            p = _synth_params(run, las=las, scale=run.args.scaling_scale, years=years)
            res = synth_load_build(run, p, prefix="scaling: ")
            if res is not None:
                synth_table.append(res)
                shutil.rmtree(p["store"], ignore_errors=True)
    run.record["scaling"] = {"files": files_table, "stores": stores_table, "synth": synth_table}

    print("\nloader (wall / CPU seconds, peak MB):")
    print(
        "| LA-eq | children | MB | default | MB | one process | MB |\n|---|---|---|---|---|---|---|"
    )
    for e in files_table:
        one = e.get("loader_1proc")
        print(
            f"| {e['k']} | {e['children']:,} | {e['mb']:.0f} | {_t_cell(e['loader'])} | "
            f"{_mb_cell(e['loader'])} | {_t_cell(one)} | {_mb_cell(one)} |"
        )
    print("\nLA returns → store → build (wall / CPU seconds, peak MB):")
    print("| LAs | children | load | MB | build | MB |\n|---|---|---|---|---|---|")
    for e in stores_table:
        ls, b = e.get("load_store"), e.get("build")
        print(
            f"| {e['k']} | {e['children']:,} | {_t_cell(ls)} | {_mb_cell(ls)} | "
            f"{_t_cell(b)} | {_mb_cell(b)} |"
        )
    print("\nsynthetic LAs × years → store → build (wall / CPU seconds, peak MB):")
    print(
        "| LAs | years | XML MB | referral rows | episodes | load | MB | build | MB |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    for e in synth_table:
        p = e["params"]
        n_years = p["years"][1] - p["years"][0] + 1
        print(
            f"| {p['las']} | {n_years} | {e['xml_mb']:.0f} | {e.get('referral_rows', 0):,} | "
            f"{e.get('episodes', 0):,} | {_t_cell(e.get('load'))} | {_mb_cell(e.get('load'))} | "
            f"{_t_cell(e.get('build'))} | {_mb_cell(e.get('build'))} |"
        )


def setup_liiatools() -> None:
    """Create bench/.venv-liiatools with liiatools 0.2.0 (see bench/requirements-liiatools.txt)."""
    venv = LIIA_PY.parent.parent
    python = shutil.which("python3.11") or sys.executable
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(LIIA_PY), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "--no-deps", "liiatools==0.2.0"], check=True)
    subprocess.run([*pip, "-r", str(HERE / "requirements-liiatools.txt")], check=True)
    subprocess.run([str(LIIA_PY), "-c", "import liiatools.datasets.cin_census.cin_cli"], check=True)
    print(f"liiatools ready in {venv}")


# -- main ---------------------------------------------------------------------------------------
def _years(text: str) -> tuple[int, int]:
    first, _, last = text.partition("-")
    return int(first), int(last or first)


def _sizes(text: str) -> tuple[int, ...]:
    return tuple(int(s.replace("_", "")) for s in text.split(",") if s)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--stages", default=",".join(STAGES), help=f"comma list of {', '.join(ALL_STAGES)}"
    )
    parser.add_argument(
        "--children", type=int, default=None, help="children in the return (default 1,000,000)"
    )
    parser.add_argument(
        "--years",
        type=_years,
        default=None,
        help="census years for synth stages (default 2018-2025)",
    )
    parser.add_argument("--las", type=int, default=N_LAS, help="LAs for synth stages (default 152)")
    parser.add_argument(
        "--scale",
        type=int,
        default=None,
        help="synthetic referrals per LA per year for build/survival/report "
        "(default 4,300 × 10 / years × children / 1,000,000: ten national years' volume)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: a smoke run of every stage"
    )
    parser.add_argument(
        "--liiatools-children",
        type=_sizes,
        default=None,
        help="sizes liiatools is measured at (default 1000,2000,5000,20000; extrapolated beyond)",
    )
    parser.add_argument(
        "--la-equivalent",
        type=int,
        default=None,
        help=f"children per LA-equivalent (default {LA_EQUIVALENT:,})",
    )
    parser.add_argument(
        "--scaling",
        type=_sizes,
        default=None,
        help="LA-equivalents for the scaling stage (default 1,2,4,8)",
    )
    parser.add_argument(
        "--scaling-parts",
        type=lambda t: tuple(x for x in t.split(",") if x),
        default=("files", "stores", "synth"),
        help="parts of the scaling stage: files,stores,synth",
    )
    parser.add_argument(
        "--scaling-years",
        type=_years,
        default=None,
        help="census years of the LA sweep in the scaling stage (default 2018-2021)",
    )
    parser.add_argument(
        "--scaling-scale",
        type=int,
        default=None,
        help="synthetic referrals per LA per year in the scaling stage (default 4,300 ≈ England's mean)",
    )
    parser.add_argument(
        "--no-record", action="store_true", help="print rows but do not append to RESULTS.md"
    )
    parser.add_argument(
        "--remeasure-liiatools",
        action="store_true",
        help="measure liiatools again even if bench/cache/liiatools_points.json has the size",
    )
    parser.add_argument(
        "--setup-liiatools", action="store_true", help="build bench/.venv-liiatools and exit"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, json.loads(args.params or "{}"))
        return
    if args.setup_liiatools:
        setup_liiatools()
        return
    q = args.quick
    args.children = args.children or (2_000 if q else NATIONAL_CHILDREN)
    # default: ten national years' volume of referrals over the eight census years the loader
    # supports (2017-18 to 2024-25), i.e. England's rate × 10/8 (see SCALING.md §0)
    args.years = args.years or ((2018, 2020) if q else (2018, 2025))
    args.las = 2 if q and args.las == N_LAS else args.las
    ten_years = 10 / (args.years[1] - args.years[0] + 1)
    args.scale = args.scale or (
        1_000 if q else max(1, round(4_300 * ten_years * args.children / 1e6))
    )
    args.liiatools_children = args.liiatools_children or (LIIA_QUICK if q else LIIA_LADDER)
    args.la_equivalent = args.la_equivalent or (500 if q else LA_EQUIVALENT)
    args.scaling = args.scaling or ((1, 2) if q else (1, 2, 4, 8))
    args.scaling_years = args.scaling_years or ((2018, 2019) if q else (2018, 2021))
    args.scaling_scale = args.scaling_scale or (200 if q else 4_300)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(ALL_STAGES))
    if unknown:
        parser.error(f"unknown stages {unknown}; choose from {', '.join(ALL_STAGES)}")

    info = machine()
    run = Run(args, info)
    print(
        f"machine: {info['cores']} cores, {info['cpu']}, {info['ram_gb']} GB, Python {info['python']}; "
        f"load {'/'.join(f'{x:.1f}' for x in load_average())}; timing via "
        f"{'/usr/bin/time -v' if TIME.exists() else 'os.wait4 rusage'}"
    )
    funcs = {
        "load": stage_load,
        "baselines": stage_baselines,
        "build": stage_build,
        "survival": stage_survival,
        "report": stage_report,
        "scaling": stage_scaling,
    }
    for stage in stages:
        print(f"\n== {stage} ==", flush=True)
        funcs[stage](run)
    if not args.no_record:
        append_rows(run.rows)
    CACHE.mkdir(exist_ok=True)
    (CACHE / "last_run.json").write_text(
        json.dumps(
            {"machine": info, "args": {k: v for k, v in vars(args).items()}, **run.record},
            indent=2,
            default=str,
        )
    )
    print(
        f"\n{len(run.rows)} row(s) {'printed' if args.no_record else 'appended to ' + str(RESULTS.relative_to(ROOT))}"
    )


if __name__ == "__main__":
    main()
