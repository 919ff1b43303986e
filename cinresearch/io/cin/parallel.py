"""Parse a large CIN census return on several cores.

A return is a header followed by a flat run of ``<Child>`` elements, so a large file can be cut
at ``<Child`` boundaries into byte ranges, each parsed by its own process as a small well-formed
document (``<Children>`` + range + ``</Children>``) with the same streaming parser as the
sequential path. Line numbers are shifted back to the file's own lines, and child/episode/plan
sequence numbers are offset so the result is identical to a sequential parse.

With ``columnar=True`` the file is cut into batches of about :data:`BATCH_BYTES`, and each batch
is offered to the compiled reader (:mod:`cinresearch.io.cin.native`), then to the polars
reader (:mod:`cinresearch.io.cin.polars_reader`); a batch both decline is parsed with lxml
(:mod:`cinresearch.io.cin.lxml_reader`). Child identifiers are pseudonymised in the process
that parsed them, so raw identifiers never reach the temporary files or the parent process.

Anything unusual — a namespace prefix, an encoding other than UTF-8, no closing
``</Children>``, a range that fails to parse (e.g. ``<Child`` inside a comment or a genuinely
broken file) — returns ``None`` so the caller falls back to the sequential parser, which then
reports real errors with exact lines.
"""

from __future__ import annotations

import mmap
import multiprocessing as mp
import os
import re
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import polars as pl
from lxml import etree

from cinresearch.io.cin import native, polars_reader, raw
from cinresearch.io.cin.lxml_reader import ChildParser
from cinresearch.io.cin.raw import RawParse
from cinresearch.io.cin.schema import SAFE_PARSER_OPTIONS, local_name
from cinresearch.io.cin.xml_faults import describe_syntax_error
from cinresearch.io.cin.xml_lines import EXACT_LINES, ChildrenLines

_CHILD_START = re.compile(rb"<Child[\s>]")
_PREFIXED = re.compile(rb"<[A-Za-z_][\w.-]*:Child[\s>]")
_TAIL = re.compile(rb"^\s*</Children>\s*</Message>\s*$")
DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def _declared(head: bytes) -> bytes | None:
    """The declared encoding, normalised (``utf-8``, ``us-ascii``...), or None if undeclared."""
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    match = DECLARED_ENCODING.match(head)
    return None if match is None else match.group(1).lower().replace(b"_", b"-")


_UTF8 = (b"utf-8", b"utf8")
_ASCII = (b"us-ascii", b"ascii")


def utf8_declared(head: bytes) -> bool:
    """True when the document is UTF-8 (declared so, ASCII, or no declaration).

    A file declared ASCII is cut into ranges only when every byte is ASCII (see plan_ranges):
    lxml refuses UTF-8 bytes in it.
    """
    declared = _declared(head)
    return declared is None or declared in _UTF8 + _ASCII


def _all_ascii(mm: mmap.mmap, step: int = 1 << 26) -> bool:
    return all(mm[i : i + step].isascii() for i in range(0, len(mm), step))


MIN_BYTES_PER_WORKER = 16 * 1024 * 1024
BATCH_BYTES = 24 * 1024 * 1024


class _Range:
    """A file-like view of ``<Children>`` + bytes[start:end] + ``</Children>`` for iterparse."""

    def __init__(self, path: str, start: int, end: int, namespace: str):
        self.handle = open(path, "rb")  # noqa: SIM115 - closed in close()
        self.handle.seek(start)
        self.remaining = end - start
        ns = f' xmlns="{namespace}"' if namespace else ""
        self.prefix = f"<Children{ns}>".encode()
        self.suffix = b"</Children>"
        self.newlines = 0

    def read(self, size: int = -1) -> bytes:
        if self.prefix:
            out, self.prefix = self.prefix, b""
            return out
        if self.remaining > 0:
            n = self.remaining if size is None or size < 0 else min(size, self.remaining)
            data = self.handle.read(n)
            self.remaining -= len(data)
            self.newlines += data.count(b"\n")
            if not data:
                self.remaining = 0
            return data
        out, self.suffix = self.suffix, b""
        return out

    def close(self) -> None:
        self.handle.close()


def _parse_range(args: tuple) -> dict:
    """Worker: parse one byte range of children.

    Returns raw frames (in memory, or as Arrow IPC files in ``tmpdir`` when it is not None),
    element counts, and the numbers needed to shift sequence numbers and lines.
    """
    path, start, end, namespace, tmpdir, columnar, pseudonymiser = args
    result = None
    if columnar:
        with open(path, "rb") as handle:
            handle.seek(start)
            data = handle.read(end - start)
        result = native.parse_children(data)  # checks UTF-8 itself
        if result is None:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = None  # lxml reports the encoding error with its line
            if text is not None:
                result = polars_reader.parse_children(text)
            del text
        del data
    if result is None:
        result = _parse_range_lxml(path, start, end, namespace)
        if not result["ok"]:
            return result
    frames = result.pop("frames")
    if pseudonymiser is not None:
        key, la_code = pseudonymiser
        frames["children"] = raw.pseudonymise_children(frames["children"], key, la_code)
    if tmpdir is None:
        result["frames"] = frames
    else:
        files = {}
        for table, frame in frames.items():
            target = Path(tmpdir) / f"{start}_{table}.arrow"
            frame.write_ipc(target)
            files[table] = str(target)
        result["files"] = files
    result["ok"] = True
    return result


def _parse_range_lxml(path: str, start: int, end: int, namespace: str) -> dict:
    """Parse one byte range with lxml and the element-by-element parser (reads any order)."""
    parser = ChildParser(namespace)
    with open(path, "rb") as handle:
        handle.seek(start)
        newlines, left = 0, end - start
        while left > 0 and newlines < EXACT_LINES:
            block = handle.read(min(left, 1 << 24))
            if not block:
                break
            newlines += block.count(b"\n")
            left -= len(block)
        if newlines >= EXACT_LINES:  # lxml's lines drift past 65,535: scan the bytes
            handle.seek(start)
            parser.line_scan = ChildrenLines(handle.read(end - start), item_depth=0)
    stream = _Range(path, start, end, namespace)
    try:
        # any namespace, as the sequential parse (iter_children) matches them
        for _, elem in etree.iterparse(
            stream,
            events=("end",),
            tag=("{*}Children", "{*}Child"),
            **SAFE_PARSER_OPTIONS,
        ):
            if local_name(elem.tag) == "Children":
                for leftover in elem:
                    if local_name(leftover.tag) != "Child" and isinstance(leftover.tag, str):
                        parser.stray(leftover)
                continue
            parser.child(elem)
            elem.clear()
            parent = elem.getparent()
            while parent is not None and elem.getprevious() is not None:
                if local_name(parent[0].tag) != "Child":
                    parser.stray(parent[0])
                del parent[0]
            if parser.child_seq % 50_000 == 0:
                parser.flush()
    except etree.XMLSyntaxError as err:
        return {"ok": False, "error": describe_syntax_error(err)[1]}
    finally:
        stream.close()
    return {
        "ok": True,
        "frames": parser.frames(),
        "counts": parser.counts(),
        "children": parser.child_seq,
        "episodes": parser.episode_seq,
        "cpps": parser.cpp_seq,
        "newlines": stream.newlines,
        "strays": parser.strays,
        "unrecognised": parser.unrecognised,
    }


def plan_ranges(
    path: str | os.PathLike[str], workers: int
) -> tuple[int, list[tuple[int, int]]] | None:
    """(bytes before the first child, [(start, end)] ranges cut at ``<Child`` boundaries) or None.

    Everything before the first ``<Child`` is scanned, however long. The caller must still
    check with :func:`plain_header_namespace` that this prefix holds nothing but the header.
    """
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        first = _CHILD_START.search(mm)
        close = mm.rfind(b"</Children>")
        if first is None or close < 0 or close < first.start():
            return None
        head = mm[: first.start()]
        if _PREFIXED.search(head) or b"<!DOCTYPE" in head or b"<!ENTITY" in head:
            return None
        if not utf8_declared(head):
            return None  # ranges are parsed without the XML declaration, as UTF-8
        if _declared(head) in _ASCII and not _all_ascii(mm):
            return None  # lxml refuses the non-ASCII bytes; let it say where
        if not _TAIL.match(mm[close:]):
            return None
        cuts = [first.start()]
        for k in range(1, workers):
            target = first.start() + (close - first.start()) * k // workers
            match = _CHILD_START.search(mm, target)
            if match is None or match.start() >= close:
                break
            if match.start() > cuts[-1]:
                cuts.append(match.start())
        cuts.append(close)
        header_len = first.start()
    return header_len, list(zip(cuts[:-1], cuts[1:], strict=True))


def plain_header_namespace(document: bytes) -> str | None:
    """The ``<Message>`` namespace if the header document holds only the header, else None.

    ``document`` is :func:`header_document`'s output. The range route reads the children
    without this prefix, so it may run only when the prefix is exactly ``<Message>``,
    ``<Header>…</Header>``, ``<Children>`` (same namespace as ``<Message>``) and nothing else:
    no child (a ``<Child/>``, a ``<c:Child>``), no other element, no text cut mid-comment or
    mid-CDATA by a ``<Child`` inside it. Anything else returns None and the whole file is read
    by the sequential parse, which reports every element with its line.
    """
    try:
        root = etree.fromstring(document, etree.XMLParser(**SAFE_PARSER_OPTIONS))
    except etree.XMLSyntaxError:
        return None
    parts = list(root)
    names = [local_name(e.tag) for e in parts]
    if local_name(root.tag) != "Message" or names != ["Header", "Children"]:
        return None
    namespace = etree.QName(root).namespace or ""
    children = parts[1]
    if len(children) or (etree.QName(children).namespace or "") != namespace:
        return None
    return namespace


def parse_parallel(
    path: str | os.PathLike[str],
    namespace: str,
    workers: int,
    header_newlines: int,
    *,
    columnar: bool = False,
    pseudonymiser: tuple[Any, str] | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> RawParse | None:
    """Raw frames, element counts, strays and unrecognised element paths for the children of a
    file, parsed in ``workers`` processes.

    ``pseudonymiser`` is ``(key, la_code)``: the children frame then comes back with hashed
    identifiers. With one worker (or one batch) everything runs in this process. Returns None
    when the file should be parsed sequentially instead (see module docstring).
    """
    size = os.path.getsize(path)
    batches = max(workers, -(-size // BATCH_BYTES)) if columnar else workers
    plan = plan_ranges(path, batches)
    if plan is None or (len(plan[1]) < 2 and not columnar):
        return None
    _, ranges = plan
    in_process = workers < 2 or len(ranges) < 2
    with tempfile.TemporaryDirectory(prefix="cin_parse_") as tmpdir:
        jobs = [
            (
                str(path),
                start,
                end,
                namespace,
                None if in_process else tmpdir,
                columnar,
                pseudonymiser,
            )
            for start, end in ranges
        ]
        results = []
        if in_process:
            for job in jobs:
                results.append(_parse_range(job))
                if not results[-1]["ok"]:
                    return None
                if on_bytes is not None:
                    on_bytes(job[2] - job[1])
        else:
            ctx = mp.get_context("spawn")
            try:
                with ProcessPoolExecutor(
                    max_workers=min(workers, len(jobs)), mp_context=ctx
                ) as pool:
                    for job, result in zip(jobs, pool.map(_parse_range, jobs), strict=True):
                        results.append(result)
                        if not result["ok"]:
                            return None
                        if on_bytes is not None:
                            on_bytes(job[2] - job[1])
            except (BrokenProcessPool, OSError):
                return None  # workers could not start (e.g. an interactive __main__)
        frames: dict[str, list[pl.DataFrame]] = {}
        counts: dict[str, int] = {}
        strays: list[tuple[int | None, str]] = []
        unrecognised: dict[str, list[int]] = {}
        child_off = episode_off = cpp_off = 0
        line_off = header_newlines
        for result in results:
            parts = result.get("frames") or {t: pl.read_ipc(f) for t, f in result["files"].items()}
            for table, frame in parts.items():
                shifts = [pl.col("line") + line_off]
                if "child_seq" in frame.columns:
                    shifts.append(pl.col("child_seq") + child_off)
                if "episode_seq" in frame.columns:
                    shifts.append(pl.col("episode_seq") + episode_off)
                if "cpp_seq" in frame.columns:
                    shifts.append(pl.col("cpp_seq") + cpp_off)
                frames.setdefault(table, []).append(frame.with_columns(shifts))
            strays.extend(
                (None if line is None else line + line_off, tag) for line, tag in result["strays"]
            )
            raw.merge_unrecognised(unrecognised, result.get("unrecognised", {}), line_off)
            for element, n in result["counts"].items():
                counts[element] = counts.get(element, 0) + n
            child_off += result["children"]
            episode_off += result["episodes"]
            cpp_off += result["cpps"]
            line_off += result["newlines"]
        joined = {
            table: pl.concat(parts, how="vertical", rechunk=True) for table, parts in frames.items()
        }
    return joined, counts, strays, unrecognised


def header_document(path: str | os.PathLike[str], header_len: int) -> bytes:
    """The bytes before the first child, closed off as a document (for parsing the header)."""
    with open(path, "rb") as handle:
        head = handle.read(header_len)
    return head + b"</Children></Message>"
