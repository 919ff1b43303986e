"""The on-disk Parquet store: one folder per table, a manifest of inputs, atomic commits.

Layout::

    <store>/manifest.json                 inputs loaded (file, sha256, kind, year, LA, counts, parts)
    <store>/tables/<table>/<part>.parquet  one part per input return (loaded tables)
    <store>/derived/<table>.parquet        journey outputs (episodes, events, ...)
    <store>/reports/load_report.json       the latest load report

Why a manifest: a load writes new part files under fresh names, then commits by atomically
replacing ``manifest.json``; only then are superseded parts deleted. A load that dies half-way
leaves the previous manifest in force, so readers see the previous consistent state, and the
next load removes the orphaned parts. Loading the same file twice replaces its own parts, and a
resubmitted return for the same source key (e.g. the same LA and census year) replaces the old one.

A load of many files commits inside :meth:`Store.batch`: each input's parts are written at
once, but the manifest is replaced at most every couple of seconds and at the end, so a
national ten-year load (thousands of inputs) does not rewrite a growing manifest thousands of
times. A load that dies loses only the inputs since the last manifest write.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

MANIFEST = "manifest.json"


def sha256_file(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, hex; read in chunks so large returns stay cheap on memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _atomic_target(path: Path):
    """Yield a temporary path beside ``path``; on success fsync it and rename it into place.

    On any failure the temporary file is removed and ``path`` is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write bytes to ``path`` via a temporary file in the same folder and an atomic rename."""
    with _atomic_target(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_parquet(path: Path, frame: pl.DataFrame) -> None:
    """Write a frame to Parquet atomically (temporary file, fsync, rename)."""
    with _atomic_target(path) as tmp:
        frame.write_parquet(tmp, compression="zstd", statistics=True)


class StoreBusyError(RuntimeError):
    """Another process is writing to the store."""


@dataclass(frozen=True)
class InputRecord:
    """One loaded input as recorded in the manifest."""

    source_key: str
    file: str
    sha256: str
    kind: str
    census_year: int | None
    la_code: str | None
    counts: dict[str, Any]
    parts: dict[str, str]
    loaded_at: str
    detail: dict[str, Any]


class Store:
    """A folder of Parquet tables with a manifest; see the module docstring for the layout."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self._cached: tuple[tuple[int, int, int], dict[str, Any]] | None = None
        self._pending: dict[str, Any] | None = None  # inside batch(): commits not yet written
        self._superseded: list[str] = []  # parts to delete once the manifest dropping them is out
        self._flush_every = 0.0
        self._last_flush = 0.0
        self._dirty = False  # pending commits not yet written

    # -- single writer ------------------------------------------------------------------------
    @contextlib.contextmanager
    def writer_lock(self):
        """Hold the store's writer lock (one load or build at a time; readers never block).

        Raises :class:`StoreBusyError` at once if another process holds it.
        """
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".writer.lock", "a+b") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreBusyError(
                    f"{self.root}: another load or build is writing to this store; try again when it ends"
                ) from None
            try:
                yield self
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    # -- manifest -------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def manifest(self) -> dict[str, Any]:
        """The manifest (an empty one for a new store), including this writer's pending commits.

        Read once and kept while the file is unchanged; treat the result as read-only (the
        store's own methods build a new dict for every change).
        """
        if self._pending is not None:
            return self._pending
        try:
            stat = self.manifest_path.stat()
        except FileNotFoundError:
            return {"format": 1, "inputs": {}}
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if self._cached is None or self._cached[0] != stamp:
            self._cached = (stamp, json.loads(self.manifest_path.read_text(encoding="utf-8")))
        return self._cached[1]

    @contextlib.contextmanager
    def batch(self, flush_seconds: float = 2.0):
        """Group commits: the manifest is written at most every ``flush_seconds`` and at the end.

        If the block raises, commits since the last write are not made (their parts become
        garbage for :meth:`collect_garbage`); the store stays at its last written state.
        """
        self._pending = self.manifest()
        self._flush_every, self._last_flush = flush_seconds, time.monotonic()
        superseded_at_start = list(self._superseded)
        try:
            yield self
        except BaseException:
            self._pending, self._dirty = None, False
            self._superseded = superseded_at_start
            raise
        pending, self._pending = self._pending, None
        self._flush_every = 0.0
        if self._dirty:
            self._write_manifest(pending)
        self._delete_superseded()

    def _commit_manifest(self, manifest: dict[str, Any]) -> None:
        """Make ``manifest`` current: now, or at the batch's next write."""
        if self._pending is None:
            self._write_manifest(manifest)
            self._delete_superseded()
            return
        self._pending, self._dirty = manifest, True
        if time.monotonic() - self._last_flush >= self._flush_every:
            self._write_manifest(manifest)
            self._delete_superseded()
            self._last_flush, self._dirty = time.monotonic(), False

    def _delete_superseded(self) -> None:
        for rel in self._superseded:
            with contextlib.suppress(FileNotFoundError):
                (self.root / rel).unlink()
        self._superseded = []

    def inputs(self) -> list[InputRecord]:
        """Inputs currently in the store, sorted by source key."""
        records = []
        for key, entry in sorted(self.manifest()["inputs"].items()):
            records.append(
                InputRecord(
                    source_key=key,
                    file=entry["file"],
                    sha256=entry["sha256"],
                    kind=entry["kind"],
                    census_year=entry.get("census_year"),
                    la_code=entry.get("la_code"),
                    counts=entry.get("counts", {}),
                    parts=entry.get("parts", {}),
                    loaded_at=entry.get("loaded_at", ""),
                    detail=entry.get("detail", {}),
                )
            )
        return records

    def has_input(self, source_key: str, sha256: str) -> bool:
        """True when exactly this file (same key, same bytes) is already committed."""
        entry = self.manifest()["inputs"].get(source_key)
        return entry is not None and entry["sha256"] == sha256

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        data = json.dumps(manifest, indent=1, sort_keys=True, default=str).encode("utf-8")
        atomic_write_bytes(self.manifest_path, data)
        stat = self.manifest_path.stat()
        self._cached = ((stat.st_mtime_ns, stat.st_size, stat.st_ino), manifest)

    # -- committing loaded inputs ----------------------------------------------------------
    def commit_input(
        self,
        source_key: str,
        *,
        file: str,
        sha256: str,
        kind: str,
        frames: Mapping[str, pl.DataFrame],
        census_year: int | None = None,
        la_code: str | None = None,
        counts: Mapping[str, Any] | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Write one input's tables as new parts and commit them with one manifest replace.

        ``source_key`` identifies what the input *is* (e.g. ``cin_2018_201``): committing the
        same key again replaces the earlier parts, so loads are idempotent and resubmissions win.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex[:12]
        parts: dict[str, str] = {}
        for table, frame in frames.items():
            rel = f"tables/{table}/{source_key}-{token}.parquet"
            atomic_write_parquet(self.root / rel, frame)
            parts[table] = rel
        current = self.manifest()
        old = current["inputs"].get(source_key)
        entry = {
            "file": file,
            "sha256": sha256,
            "kind": kind,
            "census_year": census_year,
            "la_code": la_code,
            "counts": dict(counts or {}),
            "parts": parts,
            "loaded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "detail": dict(detail or {}),
        }
        if old is not None:  # a resubmission: its earlier parts go once the manifest is out
            self._superseded += [rel for rel in old["parts"].values() if rel not in parts.values()]
        self._commit_manifest({**current, "inputs": {**current["inputs"], source_key: entry}})

    def remove_input(self, source_key: str) -> None:
        """Drop one input from the store (manifest first, then its files)."""
        current = self.manifest()
        if source_key in current["inputs"]:
            inputs = {k: v for k, v in current["inputs"].items() if k != source_key}
            self._commit_manifest({**current, "inputs": inputs})
        self.collect_garbage()

    def live_parts(self) -> set[str]:
        return {
            rel for entry in self.manifest()["inputs"].values() for rel in entry["parts"].values()
        }

    def collect_garbage(self) -> int:
        """Delete part files the manifest does not reference (left by superseded or dead loads)."""
        removed = 0
        # temporary manifests left by a load killed while committing
        for path in self.root.glob(f".{MANIFEST}.*.tmp"):
            path.unlink(missing_ok=True)
            removed += 1
        tables_dir = self.root / "tables"
        if not tables_dir.exists():
            return removed
        live = self.live_parts()
        for path in tables_dir.rglob("*"):
            if not path.is_file():
                continue
            rel = path.relative_to(self.root).as_posix()
            if rel not in live:
                path.unlink()
                removed += 1
        return removed

    # -- reading -----------------------------------------------------------------------------
    def table_parts(self, table: str) -> list[Path]:
        """Committed part files of a loaded table, in source-key order."""
        return [
            self.root / entry["parts"][table]
            for _, entry in sorted(self.manifest()["inputs"].items())
            if table in entry["parts"]
        ]

    def scan(self, table: str) -> pl.LazyFrame:
        """Lazy view of a loaded or derived table (derived tables take precedence by name)."""
        derived = self.derived_path(table)
        if derived.exists():
            return pl.scan_parquet(derived)
        parts = self.table_parts(table)
        if parts:
            return pl.scan_parquet(parts, missing_columns="insert", extra_columns="ignore")
        from cinresearch.contracts import empty_frame

        return empty_frame(table).lazy()

    def read(self, table: str) -> pl.DataFrame:
        """Eager read of :meth:`scan`."""
        return self.scan(table).collect()

    # -- derived tables ------------------------------------------------------------------------
    def derived_path(self, table: str) -> Path:
        return self.root / "derived" / f"{table}.parquet"

    def write_derived(self, table: str, frame: pl.DataFrame) -> Path:
        """Write a journey/analysis output atomically."""
        path = self.derived_path(table)
        atomic_write_parquet(path, frame)
        return path

    def write_json(self, relpath: str, payload: Any) -> Path:
        """Write a JSON document (e.g. a load or build report) atomically inside the store."""
        path = self.root / relpath
        atomic_write_bytes(path, json.dumps(payload, indent=2, default=str).encode("utf-8"))
        return path

    def read_json(self, relpath: str) -> Any:
        path = self.root / relpath
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
