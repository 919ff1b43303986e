"""Load input files of any supported kind into the store, with a reconciled load report.

``load_paths`` expands folders, recognises each file's kind from its content (not its name),
reads it with the matching reader, and commits each input atomically to the store (see
:mod:`cinresearch.store`). A file that cannot be read at all is reported with its file, line and
reason and leaves the store untouched; the other files still load.

Everything the loader decides is in the report (the CLI summary and ``reports/load_report.json``):
header notes (DfE rule 100 and other header problems, and which year was used), what explains a
run of date rejects, unrecognised elements (path and count; the ``unrecognised_elements``
table), and superseded returns.

**Superseded returns.** Two inputs with the same source key (for a CIN return: the same LA and
census year) cannot both be in the store. Whether they arrive in one load or in different loads,
the return produced later wins: the later header ``Source/DateTime``; a return without one loses
to one with one; a tie goes to the file name that sorts last, so the outcome does not depend on
the order files are given or loaded in. A file with the same name and DateTime as the return
an earlier load committed is taken as its correction and replaces it; two such files in one
load are told apart by the larger SHA-256. The losing file is reported as
``superseded`` with the file that replaced it and why; only the winner's rows are in the store.
``force=True`` lets a file replace what an *earlier* load committed whatever the rule says.
Other kinds of input carry no production time: for them the file loaded later replaces the
earlier one, and the report says so.
"""

from __future__ import annotations

import csv
import multiprocessing as mp
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from cinresearch import contracts
from cinresearch.io.cin import CIN_TABLES, OPTIONAL_TABLES, CinLoad, read_cin_xml
from cinresearch.io.errors import InputFileError
from cinresearch.io.inputs import LoadedInput
from cinresearch.io.npd import read_npd
from cinresearch.io.population import read_population
from cinresearch.io.ssda903 import read_ssda903
from cinresearch.pseudonymise import Pseudonymiser
from cinresearch.store import Store, sha256_file

PARALLEL_MIN_BYTES = 64 * 1024 * 1024
KINDS = ("cin_xml", "ssda903_header", "ssda903_episodes", "npd", "population")


@dataclass
class FileOutcome:
    """What the load did with one file, and everything it decided about it."""

    file: str
    kind: str | None
    status: str  # loaded | unchanged | superseded | failed | skipped
    message: str = ""
    source_key: str | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    #: header notes (DfE rule 100, missing Year, ...) as they apply to this file
    header_notes: list[str] = field(default_factory=list)
    #: what explains rejects in bulk (e.g. a ReferenceDate that shifts the collection period)
    explanations: list[str] = field(default_factory=list)
    #: elements the schema does not have: {path, element, count, first_line}
    unrecognised: list[dict[str, Any]] = field(default_factory=list)
    replaces: str | None = None  # file this one replaced in the store
    superseded_by: str | None = None  # file that replaced this one (status "superseded")
    reason: str = ""  # why one return won over the other

    @property
    def noteworthy(self) -> bool:
        """True when the report has more to say than the counts."""
        return bool(
            self.header_notes
            or self.explanations
            or self.unrecognised
            or self.replaces
            or self.superseded_by
            or self.status == "failed"
            or (self.counts and not self.counts.get("balanced", True))
        )


@dataclass
class LoadReport:
    outcomes: list[FileOutcome]

    @property
    def failed(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def superseded(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == "superseded"]

    def as_dict(self) -> dict[str, Any]:
        files = [{**o.__dict__} for o in self.outcomes]
        return {
            "files": files,
            "superseded": [
                {
                    "file": o.file,
                    "source_key": o.source_key,
                    "superseded_by": o.superseded_by,
                    "reason": o.reason,
                }
                for o in self.superseded
            ],
            "header_notes": [
                {"file": o.file, "note": note} for o in self.outcomes for note in o.header_notes
            ],
            "explanations": [
                {"file": o.file, "explanation": text}
                for o in self.outcomes
                for text in o.explanations
            ],
            "unrecognised_elements": [
                {"file": o.file, **row} for o in self.outcomes for row in o.unrecognised
            ],
        }


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
        load = read_cin_xml(path, key, on_bytes=on_bytes, workers=cin_workers)
        return _cin_loaded(path, load, key)
    if kind in ("ssda903_header", "ssda903_episodes"):
        return read_ssda903(path, kind, key)
    if kind == "npd":
        return read_npd(path, key)
    if kind == "population":
        return read_population(path)
    raise InputFileError(path, None, f"unknown input kind {kind!r}")


def _cin_loaded(path: Path, load: CinLoad, key: Pseudonymiser) -> LoadedInput:
    header = load.header
    # a module no child uses gets no part (the store reads an absent table as empty)
    tables = {t: f for t, f in load.tables.items() if f.height or t not in OPTIONAL_TABLES}
    unrecognised = load.unrecognised
    if unrecognised.height:
        tables["unrecognised_elements"] = _unrecognised_table(unrecognised, path.name, header)
    return LoadedInput(
        source_key=f"cin_{header.census_year}_{header.la_code}",
        kind="cin_xml",
        file=path.name,
        census_year=header.census_year,
        la_code=header.la_code,
        tables=tables,
        rejects=load.rejects,
        counts=load.counts(),
        detail={
            "detected": load.detected,
            "header_notes": header.notes,
            "explanations": _period_explanations(header, load.rejects),
            "unrecognised": unrecognised.to_dicts(),
            "produced_at": header.produced_at,
            "reference_date_given": (
                None if header.reference_date_given is None else str(header.reference_date_given)
            ),
            "elements_seen": load.elements_seen,
            "key_id": key.key_id,
        },
    )


def _unrecognised_table(found: pl.DataFrame, file: str, header: Any) -> pl.DataFrame:
    """The ``unrecognised_elements`` rows of one return (paths and counts only)."""
    return contracts.conform(
        found.with_columns(
            pl.lit(file).alias("source_file"),
            pl.lit(header.la_code).alias("la_code"),
            pl.lit(header.census_year, dtype=pl.Int16).alias("census_year"),
        ),
        "unrecognised_elements",
    )


def _period_rules() -> set[tuple[str, str]]:
    """(table, rule id) of every contract rule that compares a date with the collection period."""
    return {
        (table, rule.id)
        for table in CIN_TABLES
        for rule in contracts.load_contract(table).rules
        if "reference_date" in rule.check or "collection_start" in rule.check
    }


def _period_explanations(header: Any, rejects: pl.DataFrame) -> list[str]:
    """Say when a header ReferenceDate that disagrees with Year explains date rejects.

    The loader judges dates against the collection period of the header's Year (1 April to
    31 March); a return whose ReferenceDate says another year then has its records "after the
    collection period" (or before it) in bulk. Counts come from the rules that use the period.
    """
    given = header.reference_date_given
    if given is None or given == header.reference_date or rejects.is_empty():
        return []
    rules = _period_rules()
    keys = [f"{t}\x1f{r}" for t, r in sorted(rules)]
    hits = rejects.filter(
        pl.concat_str(pl.col("table"), pl.lit("\x1f"), pl.col("rule")).is_in(keys)
    )
    if hits.is_empty():
        return []

    def records(action: str) -> int:
        return hits.filter(pl.col("action") == action).select("table", "line").unique().height

    n_rejected, n_flagged = records("reject_record"), records("flag")
    nested = rejects.filter(pl.col("rule") == "parent_rejected").height
    used = sorted(hits.get_column("rule").unique().to_list())
    return [
        f"{n_rejected} records rejected and {n_flagged} flagged by rules that compare dates "
        f"with the collection period ({', '.join(used)})"
        + (f", with {nested} records nested in rejected ones" if nested else "")
        + f": the period used is {header.collection_start} to {header.reference_date} (header "
        f"Year {header.census_year}), but the header's ReferenceDate is {given}. If the Year is "
        "wrong, correct the header and load the return again."
    ]


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
    in_store: dict[str, FileOutcome] = {}  # source key -> this load's file now in the store
    with _progress(progress, total_bytes) as advance, store.batch():
        for result in _results(files, key, workers, advance):
            path, kind, loaded = result.path, result.kind, result.loaded
            if loaded is None:
                outcomes.append(FileOutcome(path.name, kind, "failed", result.error or ""))
                continue
            outcome = FileOutcome(
                path.name,
                kind,
                "loaded",
                loaded.detail.get("detected", ""),
                loaded.source_key,
                loaded.counts,
                header_notes=list(loaded.detail.get("header_notes", [])),
                explanations=list(loaded.detail.get("explanations", [])),
                unrecognised=list(loaded.detail.get("unrecognised", [])),
            )
            outcomes.append(outcome)
            earlier = in_store.get(loaded.source_key)
            if not force and store.has_input(loaded.source_key, result.digest):
                outcome.status, outcome.message = "unchanged", "already loaded"
                in_store[loaded.source_key] = outcome
                continue
            entry = store.manifest()["inputs"].get(loaded.source_key)
            if entry is not None and entry["sha256"] != result.digest:
                new = ReturnVersion.of_loaded(loaded, result.digest or "")
                old = ReturnVersion.of_entry(entry)
                wins, why = new.replaces(old, same_load=earlier is not None)
                if not wins and force and earlier is None:
                    wins, why = True, "--force: replaces the return an earlier load committed"
                if not wins:
                    outcome.status = "superseded"
                    outcome.superseded_by, outcome.reason = old.file, why
                    outcome.message = (
                        f"not loaded: {old.file} is the return kept for {loaded.source_key} ({why})"
                    )
                    continue
                outcome.replaces, outcome.reason = old.file, why
                if earlier is not None:
                    earlier.status, earlier.superseded_by, earlier.reason = (
                        "superseded",
                        path.name,
                        why,
                    )
                    earlier.message = (
                        f"replaced in this load by {path.name}: {loaded.source_key} ({why})"
                    )
            in_store[loaded.source_key] = outcome
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
    store.collect_garbage()  # parts of superseded inputs and of loads that died half-way
    report = LoadReport(outcomes)
    store.write_json(
        "reports/load_report.json", {**report.as_dict(), "store": store_summary(store)}
    )
    return report


@dataclass(frozen=True)
class ReturnVersion:
    """Which of two inputs with the same source key is kept (see the module docstring)."""

    file: str
    kind: str
    sha256: str
    produced_at: str | None  # CIN header Source/DateTime, ISO

    @classmethod
    def of_loaded(cls, loaded: LoadedInput, sha256: str) -> ReturnVersion:
        return cls(loaded.file, loaded.kind, sha256, loaded.detail.get("produced_at"))

    @classmethod
    def of_entry(cls, entry: dict[str, Any]) -> ReturnVersion:
        detail = entry.get("detail") or {}
        return cls(entry["file"], entry["kind"], entry["sha256"], detail.get("produced_at"))

    def replaces(self, old: ReturnVersion, same_load: bool = True) -> tuple[bool, str]:
        """(whether this version replaces ``old``, why).

        ``same_load``: ``old`` was committed by this load. Otherwise a file with the same name and
        header DateTime as the one in the store is taken as its correction and wins.
        """
        if self.kind != "cin_xml" or old.kind != "cin_xml":
            return True, "same source key; for this kind of input the file loaded later wins"
        mine, theirs = self.produced_at or "", old.produced_at or ""
        if mine != theirs:
            later, earlier = (self, old) if mine > theirs else (old, self)
            stamp = earlier.produced_at or "none"
            return mine > theirs, (
                f"header DateTime {later.produced_at} of {later.file} is later than "
                f"{stamp} of {earlier.file}"
            )
        same = f"same header DateTime {mine}" if mine else "neither header has a DateTime"
        if self.file != old.file:
            winner = max(self.file, old.file)
            return self.file > old.file, f"{same}; the file name sorting last wins ({winner})"
        if not same_load:
            return True, f"{same} and file name: taken as a correction; the later load wins"
        return self.sha256 > old.sha256, f"{same} and file name; the larger SHA-256 wins"


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
        # imported only when a bar is shown: rich costs ~0.1 s to import, batch loads skip it
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
