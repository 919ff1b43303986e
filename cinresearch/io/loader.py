"""Load input files of any supported kind into the store, with a reconciled load report.

``load_paths`` expands folders, recognises each file's kind from its content (not its name),
reads it with the matching reader, and commits each input atomically to the store (see
:mod:`cinresearch.store`). A file that cannot be read at all is reported with its file, line and
reason and leaves the store untouched; the other files still load.
"""

from __future__ import annotations

import csv
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from cinresearch.io.errors import InputFileError
from cinresearch.pseudonymise import Pseudonymiser
from cinresearch.store import Store, sha256_file

PARALLEL_MIN_BYTES = 64 * 1024 * 1024
KINDS = ("cin_xml", "ssda903_header", "ssda903_episodes", "npd", "population")


@dataclass
class LoadedInput:
    """One input file read into tables, ready to commit."""

    source_key: str
    kind: str
    file: str
    census_year: int | None
    la_code: str | None
    tables: dict[str, pl.DataFrame]
    rejects: pl.DataFrame
    counts: dict[str, Any]
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class FileOutcome:
    file: str
    kind: str | None
    status: str  # loaded | unchanged | failed | skipped
    message: str = ""
    source_key: str | None = None
    counts: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoadReport:
    outcomes: list[FileOutcome]

    @property
    def failed(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def as_dict(self) -> dict[str, Any]:
        return {"files": [o.__dict__ for o in self.outcomes]}


def sniff_kind(path: str | os.PathLike[str]) -> str | None:
    """The kind of an input file from its first bytes (XML root or CSV header), or None."""
    with open(path, "rb") as handle:
        head = handle.read(2048)
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"<") or b"<Message" in head:
        return "cin_xml"
    try:
        first = text.decode("utf-8", errors="replace").splitlines()[0]
    except IndexError:
        return None
    header = {c.strip().upper() for c in next(csv.reader([first]))}
    if {"CHILD", "DECOM"} <= header:
        return "ssda903_episodes"
    if {"CHILD", "DOB", "SEX"} <= header:
        return "ssda903_header"
    if {"UPN", "ACADEMICYEAR"} <= header:
        return "npd"
    if {"LA_CODE", "YEAR", "AGE", "SEX", "POPULATION"} <= header:
        return "population"
    return None


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files named, plus every .xml/.csv file under folders named (sorted, recursive)."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and p.suffix.lower() in {".xml", ".csv"}
                and not p.name.startswith(".")
            )
        elif path.exists():
            out.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return out


def read_file(
    path: Path,
    kind: str,
    key: Pseudonymiser,
    on_bytes: Callable[[int], None] | None = None,
    cin_workers: int | None = None,
) -> LoadedInput:
    """Read one file of a known kind (raises InputFileError / CinFileError for file-level faults).

    ``cin_workers``: processes for parsing one large CIN file (default: automatic).
    """
    if kind == "cin_xml":
        from cinresearch.io.cin_xml import read_cin_xml

        load = read_cin_xml(path, key, on_bytes=on_bytes, workers=cin_workers)
        return _cin_loaded(path, load, key)
    if kind in ("ssda903_header", "ssda903_episodes"):
        from cinresearch.io.ssda903 import read_ssda903

        return read_ssda903(path, kind, key)
    if kind == "npd":
        from cinresearch.io.npd import read_npd

        return read_npd(path, key)
    if kind == "population":
        from cinresearch.io.population import read_population

        return read_population(path)
    raise InputFileError(path, None, f"unknown input kind {kind!r}")


def _cin_loaded(path: Path, load: Any, key: Pseudonymiser) -> LoadedInput:
    header = load.header
    return LoadedInput(
        source_key=f"cin_{header.census_year}_{header.la_code}",
        kind="cin_xml",
        file=path.name,
        census_year=header.census_year,
        la_code=header.la_code,
        tables=load.tables,
        rejects=load.rejects,
        counts=load.counts(),
        detail={
            "detected": load.detected,
            "header_notes": header.notes,
            "elements_seen": load.elements_seen,
            "key_id": key.key_id,
        },
    )


def load_paths(
    paths: Iterable[str | os.PathLike[str]],
    store: Store,
    key: Pseudonymiser,
    *,
    progress: bool = True,
    force: bool = False,
    workers: int | None = None,
) -> LoadReport:
    """Load files/folders into ``store``; returns a report (see module docstring).

    Several files are read in parallel (``workers`` processes, default up to 4 cores), and
    committed one at a time in file order, so the store and report do not depend on which
    worker finished first.
    """
    files = expand_paths(paths)
    with store.writer_lock():
        return _load_files(files, store, key, progress=progress, force=force, workers=workers)


@dataclass
class _FileResult:
    """What reading one file gave: a LoadedInput, or a file-level failure message."""

    path: Path
    kind: str | None
    digest: str | None
    loaded: LoadedInput | None = None
    error: str | None = None


def _read_one(
    path: Path,
    key: Pseudonymiser,
    cin_workers: int | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> _FileResult:
    """Sniff, hash and read one file (runs in a worker process when loading in parallel)."""
    kind = sniff_kind(path)
    if kind is None:
        return _FileResult(
            path,
            None,
            None,
            error=f"{path.name}: not a recognised input (CIN XML, SSDA903 header/episodes, "
            "NPD or population CSV): check its header row",
        )
    digest = sha256_file(path)
    try:
        loaded = read_file(path, kind, key, on_bytes, cin_workers)
    except InputFileError as err:  # CinFileError included
        return _FileResult(path, kind, digest, error=str(err))
    return _FileResult(path, kind, digest, loaded=loaded)


def _results(
    files: list[Path], key: Pseudonymiser, workers: int, advance: Callable[[int, str], None]
) -> Iterator[_FileResult]:
    """Read files in order; with several workers, read ahead in other processes."""
    if workers > 1 and len(files) >= 2:
        done_files = 0
        try:
            for result in _parallel_results(files, key, workers, advance):
                done_files += 1
                yield result
            return
        except BrokenProcessPool:
            # worker processes could not start (e.g. an interactive __main__): read the rest here
            files = files[done_files:]
    for path in files:
        done = 0

        def on_bytes(n: int, _name: str = path.name) -> None:
            nonlocal done
            done += n
            advance(n, _name)

        result = _read_one(path, key, None, on_bytes)
        advance(path.stat().st_size - done, path.name)
        yield result


def _parallel_results(
    files: list[Path], key: Pseudonymiser, workers: int, advance: Callable[[int, str], None]
) -> Iterator[_FileResult]:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    window = workers + 1  # bounded read-ahead keeps memory flat over hundreds of files
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        pending = deque()
        queue = iter(files)
        for path in queue:
            pending.append(pool.submit(_read_one, path, key, 1))
            if len(pending) >= window:
                break
        while pending:
            result = pending.popleft().result()
            advance(result.path.stat().st_size, result.path.name)
            yield result
            nxt = next(queue, None)
            if nxt is not None:
                pending.append(pool.submit(_read_one, nxt, key, 1))


def _load_files(
    files: list[Path],
    store: Store,
    key: Pseudonymiser,
    *,
    progress: bool,
    force: bool,
    workers: int | None = None,
) -> LoadReport:
    total_bytes = sum(f.stat().st_size for f in files)
    if workers is None:
        # worker processes cost ~2 s to start: worth it only for large loads
        workers = min(os.cpu_count() or 1, 4) if total_bytes >= PARALLEL_MIN_BYTES else 1
    outcomes: list[FileOutcome] = []
    with _progress(progress, total_bytes) as advance, store.batch():
        for result in _results(files, key, workers, advance):
            path, kind, loaded = result.path, result.kind, result.loaded
            if loaded is None:
                outcomes.append(FileOutcome(path.name, kind, "failed", result.error or ""))
                continue
            if not force and store.has_input(loaded.source_key, result.digest):
                outcomes.append(
                    FileOutcome(
                        path.name,
                        kind,
                        "unchanged",
                        "already loaded",
                        loaded.source_key,
                        loaded.counts,
                    )
                )
                continue
            frames = dict(loaded.tables)
            frames["rejects"] = loaded.rejects
            store.commit_input(
                loaded.source_key,
                file=path.name,
                sha256=result.digest,
                kind=kind,
                frames=frames,
                census_year=loaded.census_year,
                la_code=loaded.la_code,
                counts=loaded.counts,
                detail=loaded.detail,
            )
            outcomes.append(
                FileOutcome(
                    path.name,
                    kind,
                    "loaded",
                    loaded.detail.get("detected", ""),
                    loaded.source_key,
                    loaded.counts,
                )
            )
    store.collect_garbage()  # parts of superseded inputs and of loads that died half-way
    report = LoadReport(outcomes)
    store.write_json(
        "reports/load_report.json", {**report.as_dict(), "store": store_summary(store)}
    )
    return report


def store_summary(store: Store) -> dict[str, Any]:
    """Rows per table and rejects per rule over everything in the store."""
    tables: dict[str, int] = {}
    for record in store.inputs():
        for table, n in record.counts.get("rows", {}).items():
            tables[table] = tables.get(table, 0) + int(n)
    rejects = store.scan("rejects")
    by_rule = (
        rejects.group_by("table", "rule", "action").len().sort("table", "rule").collect().to_dicts()
        if store.table_parts("rejects")
        else []
    )
    return {"rows": tables, "rejects_by_rule": by_rule, "inputs": len(store.inputs())}


class _progress:
    """A rich progress bar over bytes read (silent when disabled)."""

    def __init__(self, enabled: bool, total: int):
        self.enabled = enabled
        self.total = total

    def __enter__(self) -> Callable[[int, str], None]:
        if not self.enabled:
            return lambda n, name: None
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("[bold]loading[/] {task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        self.bar.__enter__()
        task = self.bar.add_task("", total=self.total)

        def advance(n: int, name: str) -> None:
            self.bar.update(task, advance=n, description=name)

        return advance

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)
