"""Exact line numbers for elements past line 65,535 in the lxml parse.

libxml2 keeps an element's line in 16 bits. Past line 65,535 lxml's ``sourceline`` is taken
from a neighbouring text node instead, which is one line too high when the element's content
starts with a newline (and more when its first text spans several lines). The fast readers
count lines themselves; for the lxml parse this module scans the same bytes for start tags
(skipping comments, CDATA sections and processing instructions, as the parser does) and gives
each start tag the line of its closing ``>``, which is where libxml2 counts an element's line.

A record under ``<Children>`` (a ``<Child>`` or a stray element) is matched to the scan by its
position among the elements of ``<Children>``; the lines of its descendants are then taken in
document order, after checking that the scan and the parsed tree hold the same element names.
Where they do not agree (only in documents lxml reads differently from the byte scan, e.g. a
second ``<Children>``), ``sourceline`` is kept.
"""

from __future__ import annotations

import mmap
import os
import re
from array import array
from typing import Any

import numpy as np
from lxml import etree

#: libxml2 stores lines up to this value exactly; an element at a later line may be misreported
EXACT_LINES = 65_534

_TOKEN = re.compile(
    rb"""<(?:
        !--.*?-->                                   # comment
      | !\[CDATA\[.*?\]\]>                          # CDATA section
      | \?.*?\?>                                    # declaration, processing instruction
      | ![^>]*>                                     # DOCTYPE (refused before this runs)
      | /[^>]*>                                     # end tag
      | ([^\s/>!?]+)(?:[^>"']|"[^"]*"|'[^']*')*?(/?)>  # start tag: name, empty-element mark
    )""",
    re.S | re.X,
)


def _lines_at(buffer: Any, ends: np.ndarray, first_line: int, block: int = 1 << 24) -> np.ndarray:
    """Line of each byte offset in ``ends`` (ascending), counting ``\\n`` a block at a time."""
    lines = np.empty(len(ends), dtype=np.int64)
    size = len(buffer)
    done = 0  # offsets handled
    before = first_line  # line at the start of the block
    for start in range(0, size, block):
        stop = min(start + block, size)
        view = np.frombuffer(buffer, dtype=np.uint8, count=stop - start, offset=start)
        newlines = np.flatnonzero(view == 10) + start
        upto = done + int(np.searchsorted(ends[done:], stop))
        lines[done:upto] = before + np.searchsorted(newlines, ends[done:upto])
        done = upto
        before += len(newlines)
    return lines


def _element_local(tag: Any) -> str | None:
    if not isinstance(tag, str):
        return None
    return tag.rpartition("}")[2] if tag[:1] == "{" else tag


class ChildrenLines:
    """True lines of the elements under ``<Children>``, and of everything inside them.

    ``data`` is the document's bytes (or a range of them when ``item_depth`` is 0: the range
    parse wraps them in ``<Children>``); ``first_line`` is the line of ``data``'s first byte.
    Feed the parser's records through :meth:`subtree` (a ``<Child>``, before the parse removes
    the elements before it) and :meth:`stray` (an element outside any child).
    """

    def __init__(self, data: Any, *, item_depth: int = 2, first_line: int = 1) -> None:
        buffer = data
        if bytes(data[:2]) in (b"\xff\xfe", b"\xfe\xff"):
            buffer = bytes(data).decode("utf-16").encode("utf-8")
        # compact columns, one entry per start tag (a national file has tens of millions)
        ids: dict[bytes, int] = {}
        name_ids = array("I")
        ends = array("q")
        depths = array("h")
        items = array("q")
        holders: set[int] = set()
        stack: list[int] = []  # name ids of the open elements
        children_id = -1
        self._holder = -1  # the <Children> start tag the items belong to
        for match in _TOKEN.finditer(buffer):
            name = match.group(1)
            if name is None:
                if match.group(0)[1:2] == b"/" and stack:
                    stack.pop()
                continue
            local = name.rpartition(b":")[2]
            name_id = ids.get(local)
            if name_id is None:
                name_id = ids[local] = len(ids)
                if local == b"Children":
                    children_id = name_id
            depth = len(stack)
            if depth == item_depth and (item_depth == 0 or stack[-1] == children_id):
                items.append(len(ends))
                holders.add(self._holder if item_depth else 0)
            elif depth == item_depth - 1 and name_id == children_id:
                self._holder = len(ends)
            name_ids.append(name_id)
            ends.append(match.end() - 1)
            depths.append(depth)
            if not match.group(2):
                stack.append(name_id)
        self.names = [name.decode("utf-8", "replace") for name in ids]
        self.name_ids = np.frombuffer(name_ids, dtype=np.uint32) if name_ids else np.empty(0)
        self.lines = _lines_at(buffer, np.frombuffer(ends, dtype=np.int64), first_line)
        del ends
        depth = np.frombuffer(depths, dtype=np.int16) if depths else np.empty(0, np.int16)
        self.item_depth = item_depth
        # positions are counted within one <Children>; with two, lxml's lines are kept
        found = np.frombuffer(items, dtype=np.int64) if items else np.empty(0, np.int64)
        self.items = found if len(holders) == 1 else np.empty(0, dtype=np.int64)
        # the elements beside <Children> (<Header>, strays under <Message>)
        self.top = np.flatnonzero(depth == item_depth - 1) if item_depth else self.items[:0]
        # an item's subtree: the start tags after it, up to the next one no deeper than it
        shallow = np.flatnonzero(depth <= item_depth)
        after = np.searchsorted(shallow, self.items, "right")
        self.item_end = np.append(shallow, len(depth))[after]
        self._removed = 0  # elements of <Children> the parse has deleted so far
        self._pending: dict[Any, int] = {}

    @classmethod
    def for_file(cls, path: str | os.PathLike[str]) -> ChildrenLines | None:
        """The scan of a whole file, or None when it is short enough for lxml's own lines."""
        with open(path, "rb") as handle:
            head = handle.read(2)
            handle.seek(0)
            if head not in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16: lines counted after decoding
                newlines = sum(
                    chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 24), b"")
                )
                if newlines < EXACT_LINES:
                    return None
                handle.seek(0)
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                return cls(mm)

    def _position(self, elem: etree._Element) -> int | None:
        parent = elem.getparent()
        if parent is None or _element_local(parent.tag) != "Children":
            return None
        before = sum(1 for _ in elem.itersiblings(tag=etree.Element, preceding=True))
        return self._removed + before

    def subtree(self, elem: etree._Element) -> dict[Any, int] | None:
        """{element: line} for ``elem`` and its descendants where lxml's lines may be wrong.

        Call it for each ``<Child>`` before the parse deletes the elements before it (the
        parsers here do that right after reading a child).
        """
        position = self._position(elem)
        if position is None:
            return None
        preceding = list(elem.itersiblings(tag=etree.Element, preceding=True))
        self._pending = {}  # strays before the previous child have been reported by now
        for offset, sibling in enumerate(reversed(preceding)):
            if _element_local(sibling.tag) != "Child":
                self._pending[sibling] = position - len(preceding) + offset
        self._removed = position  # the parse deletes them once this child has been read
        return self._fix(elem, position)

    def stray(self, elem: etree._Element) -> int | None:
        """The true line of an element found outside any child (None: use ``sourceline``)."""
        position = self._pending.pop(elem, None)
        if position is None:
            position = self._position(elem)
        if position is not None:
            ok = position < len(self.items)
            return int(self.lines[self.items[position]]) if ok else None
        parent = elem.getparent()
        if parent is None or parent.getparent() is not None or not self.item_depth:
            return None
        position = sum(1 for _ in elem.itersiblings(tag=etree.Element, preceding=True))
        return int(self.lines[self.top[position]]) if position < len(self.top) else None

    def _fix(self, elem: etree._Element, position: int) -> dict[Any, int] | None:
        if position >= len(self.items):
            return None
        start, end = int(self.items[position]), int(self.item_end[position])
        if self.lines[end - 1] <= EXACT_LINES:
            return None  # lines run in document order: the last one is the largest
        nodes = [node for node in elem.iter() if isinstance(node.tag, str)]
        names = self.names
        if len(nodes) != end - start or any(
            _element_local(node.tag) != names[name_id]
            for node, name_id in zip(nodes, self.name_ids[start:end].tolist(), strict=True)
        ):
            return None  # the byte scan and the parsed tree disagree: keep lxml's lines
        return dict(zip(nodes, self.lines[start:end].tolist(), strict=True))
