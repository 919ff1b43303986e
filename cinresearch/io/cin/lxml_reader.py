"""The element-by-element CIN reader: ``lxml.etree.iterparse``, one ``<Child>`` at a time.

It reads any element order, namespaces, comments and entities the safe parser allows, and
reports real XML faults with exact lines; the column-wise readers (:mod:`.native`,
:mod:`.polars_reader`) hand it whatever they decline. Each child is turned into plain column lists
and cleared, and the lists are compacted into polars frames every ``chunk_children`` children,
so memory stays flat on national files with over a million children.

Tolerated, as real returns contain them: stray text between elements, an XML declaration or
none, a UTF-8 BOM, a default namespace. Refused, as a clean :class:`CinFileError` naming the
file and line: malformed or truncated XML, a wrong root, a missing header (LA / year), a DTD
(entity expansion and external entities are never resolved). Record elements out of place are
listed as misplaced and elements the schema does not have are counted by path, so nothing in a
``<Child>`` is dropped silently.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from collections.abc import Callable
from typing import Any

import polars as pl
from lxml import etree

from cinresearch.io.cin.header import Header, parse_header
from cinresearch.io.cin.raw import RawColumns, RawParse
from cinresearch.io.cin.schema import (
    ASSESSMENT_FIELDS,
    CHILD_FIELDS,
    CIN_PLAN_FIELDS,
    CONTAINERS,
    CPP_FIELDS,
    ELEMENT_TABLE,
    EPISODE_FIELDS,
    OPTIONAL_TABLES,
    PP_FIELDS,
    RAW_COLUMNS,
    S47_FIELDS,
    SAFE_PARSER_OPTIONS,
    SCHEMA_CHILDREN,
    local_name,
)
from cinresearch.io.cin.xml_faults import describe_syntax_error
from cinresearch.io.cin.xml_lines import ChildrenLines
from cinresearch.io.errors import CinFileError

#: raw tables of records nested in an episode
NESTED_TABLES = (
    "assessments",
    "cin_plans",
    "section47",
    "cp_plans",
    "cpp_reviews",
    "pre_proceedings",
)


class ChildParser:
    """Turns ``<Child>`` elements into raw column lists.

    Tags are matched by dictionary look-up on the qualified tag (``{ns}Name`` when the file has
    a default namespace), which keeps the per-element cost low on national files; elements are
    found by name, never by position.
    """

    def __init__(self, namespace: str = "") -> None:
        self.cols = {table: RawColumns(names) for table, names in RAW_COLUMNS.items()}
        self.read: Counter[str] = Counter()
        self.child_seq = 0
        self.episode_seq = 0
        self.cpp_seq = 0
        self.strays: list[tuple[int | None, str]] = []
        #: path of an unrecognised element -> [count, first line]
        self.unrecognised: dict[str, list[int]] = {}
        self.set_namespace(namespace)
        #: byte scan giving exact lines past 65,535 (see cinresearch.io.cin.xml_lines), or None
        self.line_scan: ChildrenLines | None = None
        self._fix: dict[Any, int] | None = None

    def _line(self, elem: etree._Element) -> int | None:
        """The element's line: lxml's, corrected from the byte scan past line 65,535."""
        if self._fix:
            line = self._fix.get(elem)
            if line is not None:
                return line
        return elem.sourceline

    def stray(self, elem: etree._Element) -> None:
        """An element outside any ``<Child>`` where a child record was expected."""
        line = self.line_scan.stray(elem) if self.line_scan is not None else None
        self.strays.append((line or elem.sourceline, str(local_name(elem.tag))))

    def set_namespace(self, namespace: str) -> None:
        q = (lambda name: f"{{{namespace}}}{name}") if namespace else (lambda name: name)
        self.q = q
        self.child_fields = {q(k): (v, k) for k, v in CHILD_FIELDS.items()}
        self.episode_fields = {q(k): (v, k) for k, v in EPISODE_FIELDS.items()}
        self.assessment_fields = {q(k): (v, k) for k, v in ASSESSMENT_FIELDS.items()}
        self.cin_plan_fields = {q(k): (v, k) for k, v in CIN_PLAN_FIELDS.items()}
        self.s47_fields = {q(k): (v, k) for k, v in S47_FIELDS.items()}
        self.cpp_fields = {q(k): (v, k) for k, v in CPP_FIELDS.items()}
        self.pp_fields = {q(k): (v, k) for k, v in PP_FIELDS.items()}
        # per container: the elements it may hold besides the leaves its mapping reads
        records = frozenset(q(name) for name in ELEMENT_TABLE if name != "Child")

        def others(parent: str, mapping: dict[str, str]) -> frozenset[str]:
            return frozenset(q(n) for n in SCHEMA_CHILDREN[parent] if n not in mapping) | records

        self.also_identifiers = others("ChildIdentifiers", CHILD_FIELDS)
        self.also_episode = others("CINdetails", EPISODE_FIELDS)
        self.also_assessment = others("Assessments", ASSESSMENT_FIELDS)
        self.also_record = records  # CINPlanDates, Section47, PreProceedingsandFGDM: leaves only
        self.also_cpp = others("ChildProtectionPlans", CPP_FIELDS)
        self.current_child: etree._Element | None = None
        self.containers = {q(k) for k in CONTAINERS}
        self.record_tags = tuple(q(name) for name in ELEMENT_TABLE if name != "Child")
        self.record_tag_set = frozenset(self.record_tags)
        self.t = {
            name: q(name)
            for name in (
                "Disabilities",
                "Disability",
                "CINdetails",
                "Assessments",
                "FactorsIdentifiedAtAssessment",
                "AssessmentFactors",
                "CINPlanDates",
                "Section47",
                "ChildProtectionPlans",
                "Reviews",
                "CPPreviewDate",
                "PreProceedingsandFGDM",
            )
        }

    def _fields(
        self,
        elem: etree._Element,
        mapping: dict[str, tuple[str, str]],
        row: dict[str, Any],
        also: frozenset[str] | None = None,
    ) -> None:
        """Copy leaf elements named in ``mapping``; a repeated leaf with a different value is a conflict.

        With ``also`` (the other elements the schema allows in ``elem``), any element neither in
        ``mapping`` nor in ``also`` is counted as unrecognised.
        """
        for sub in elem:
            hit = mapping.get(sub.tag)
            if hit is None:
                if also is not None and sub.tag not in also:
                    self._unrecognised(sub)
                continue
            column = hit[0]
            text = sub.text
            value = (text.strip() or None) if text is not None else None
            if column in row and row[column] != value:
                row["conflict"] = f"{hit[1]} given twice with different values"
            row[column] = value

    def _nested_rows(self) -> int:
        """Episodes and nested rows added so far (lists only grow within one child)."""
        cols = self.cols
        return self.episode_seq + sum(
            len(cols[table].data[cols[table].names[0]]) for table in NESTED_TABLES
        )

    def child(self, elem: etree._Element) -> None:
        self.child_seq += 1
        cseq = self.child_seq
        t = self.t
        before = self._nested_rows()
        self._fix = self.line_scan.subtree(elem) if self.line_scan is not None else None
        row: dict[str, Any] = {"child_seq": cseq, "line": self._line(elem)}
        disabilities: list[str] = []
        self.current_child = elem
        for part in elem:
            tag = part.tag
            if tag in self.containers:
                self._fields(part, self.child_fields, row, self.also_identifiers)
                for sub in part:
                    if sub.tag == t["Disabilities"]:
                        for dis in sub:
                            if dis.tag != t["Disability"]:
                                self._unrecognised(dis)
                                continue
                            code = (dis.text or "").strip().upper()
                            disabilities.append(code)
                            if code != "NONE":
                                self.cols["disabilities"].add(
                                    {
                                        "child_seq": cseq,
                                        "line": self._line(dis),
                                        "disability": code or None,
                                    }
                                )
            elif tag == t["CINdetails"]:
                self.episode(part, cseq)
            elif tag in self.child_fields:  # identifiers not wrapped in a container: tolerate
                self._fields(elem, {tag: self.child_fields[tag]}, row)
            else:
                self._unrecognised(part)
        n_none = disabilities.count("NONE")
        self.read["Disability"] += len(disabilities)
        self.read["Disability:NONE"] += n_none
        real = len(disabilities) - n_none
        row["n_disability"] = str(len(disabilities))
        row["disabled_raw"] = "1" if real else "0"
        row["none_with_others"] = "1" if real and n_none else "0"
        self.cols["children"].add(row)
        placed = self._nested_rows() - before + len(disabilities)
        if placed != sum(1 for _ in elem.iter(*self.record_tags)):
            self._misplaced(elem, cseq)

    def _unrecognised(self, node: etree._Element) -> None:
        """Count ``node``, an element the CIN schema does not have where it is, by its path.

        Called from the parse itself wherever an element matches nothing the schema allows
        there (so a child without any costs nothing extra). Record elements out of place are
        left to :meth:`_misplaced`; an unrecognised element's content is not looked into (its
        path is the finding). Values are never kept.
        """
        tag = node.tag
        if tag in self.record_tag_set or not isinstance(tag, str):
            return
        names = [local_name(tag)]
        parent = node.getparent()
        while parent is not None and parent is not self.current_child:
            names.append(local_name(parent.tag))
            parent = parent.getparent()
        key = "Child/" + "/".join(reversed(names))
        hit = self.unrecognised.get(key)
        if hit is None:
            self.unrecognised[key] = [1, self._line(node) or 0]
        else:
            hit[0] += 1

    def _misplaced(self, child: etree._Element, cseq: int) -> None:
        """Record the record elements of ``child`` that :meth:`child` did not read.

        The rules mirror where :meth:`child` and :meth:`episode` look, so every record element
        in a ``<Child>`` is either read or listed here (and later rejected): none is dropped.
        """
        t = self.t

        def tag(node: etree._Element | None) -> Any:
            return None if node is None else node.tag

        def in_episode(node: etree._Element | None) -> bool:
            return tag(node) == t["CINdetails"] and node.getparent() is child

        for node in child.iter(*self.record_tags):
            parent = node.getparent()
            if node.tag == t["CINdetails"]:
                ok = parent is child
            elif node.tag == t["CPPreviewDate"]:
                plan = parent.getparent() if tag(parent) == t["Reviews"] else None
                ok = tag(plan) == t["ChildProtectionPlans"] and in_episode(plan.getparent())
            elif node.tag == t["Disability"]:
                box = parent.getparent() if tag(parent) == t["Disabilities"] else None
                ok = tag(box) in self.containers and box.getparent() is child
            else:  # Assessments, CINPlanDates, Section47, ChildProtectionPlans, PreProceedings…
                ok = in_episode(parent)
            if not ok:
                self.cols["misplaced"].add(
                    {"child_seq": cseq, "line": self._line(node), "element": local_name(node.tag)}
                )

    def episode(self, elem: etree._Element, cseq: int) -> None:
        self.episode_seq += 1
        eseq = self.episode_seq
        t = self.t
        row: dict[str, Any] = {"child_seq": cseq, "episode_seq": eseq, "line": self._line(elem)}
        self._fields(elem, self.episode_fields, row, self.also_episode)
        for part in elem:
            tag = part.tag
            if tag == t["Assessments"]:
                sub: dict[str, Any] = {
                    "child_seq": cseq,
                    "episode_seq": eseq,
                    "line": self._line(part),
                }
                self._fields(part, self.assessment_fields, sub, self.also_assessment)
                factors: list[str] = []
                for box in part:
                    if box.tag == t["FactorsIdentifiedAtAssessment"]:
                        for f in box:
                            if f.tag == t["AssessmentFactors"]:
                                factors.append((f.text or "").strip().upper())
                            else:
                                self._unrecognised(f)
                sub["factors"] = factors
                self.cols["assessments"].add(sub)
            elif tag == t["CINPlanDates"]:
                sub = {"child_seq": cseq, "episode_seq": eseq, "line": self._line(part)}
                self._fields(part, self.cin_plan_fields, sub, self.also_record)
                self.cols["cin_plans"].add(sub)
            elif tag == t["Section47"]:
                sub = {"child_seq": cseq, "episode_seq": eseq, "line": self._line(part)}
                self._fields(part, self.s47_fields, sub, self.also_record)
                self.cols["section47"].add(sub)
            elif tag == t["ChildProtectionPlans"]:
                self.cpp_seq += 1
                sub = {
                    "child_seq": cseq,
                    "episode_seq": eseq,
                    "cpp_seq": self.cpp_seq,
                    "line": self._line(part),
                }
                self._fields(part, self.cpp_fields, sub, self.also_cpp)
                self.cols["cp_plans"].add(sub)
                for box in part:
                    if box.tag != t["Reviews"]:
                        continue
                    for review in box:
                        if review.tag != t["CPPreviewDate"]:
                            self._unrecognised(review)
                            continue
                        text = review.text
                        self.cols["cpp_reviews"].add(
                            {
                                "child_seq": cseq,
                                "episode_seq": eseq,
                                "cpp_seq": self.cpp_seq,
                                "line": self._line(review),
                                "review_date": (text.strip() or None) if text is not None else None,
                            }
                        )
            elif tag == t["PreProceedingsandFGDM"]:
                sub = {"child_seq": cseq, "episode_seq": eseq, "line": self._line(part)}
                self._fields(part, self.pp_fields, sub, self.also_record)
                self.cols["pre_proceedings"].add(sub)
        self.cols["referrals"].add(row)

    def counts(self) -> dict[str, int]:
        """Elements read, from the raw column lists (one row per element)."""
        read = {"Child": self.child_seq, "CINdetails": self.episode_seq}
        for element, table in ELEMENT_TABLE.items():
            if element not in read and element != "Disability":
                read[element] = sum(f.height for f in self.cols[table].frames) + len(
                    self.cols[table].data[self.cols[table].names[0]]
                )
        read["Disability"] = self.read["Disability"]
        read["Disability:NONE"] = self.read["Disability:NONE"]
        # a module the children do not use is absent, as in the fast readers' counts
        return {
            element: n
            for element, n in read.items()
            if n or ELEMENT_TABLE.get(element) not in OPTIONAL_TABLES
        }

    def frames(self) -> dict[str, pl.DataFrame]:
        """The raw frames; an optional module's only when it has rows (as the fast readers)."""
        out = {table: cols.frame() for table, cols in self.cols.items()}
        return {t: f for t, f in out.items() if f.height or t not in OPTIONAL_TABLES}

    def flush(self) -> None:
        for columns in self.cols.values():
            columns.flush()


def sniff(path: str | os.PathLike[str]) -> None:
    """Refuse, before parsing, an empty file or one that declares a DTD or entities."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if not head.strip():
        raise CinFileError(path, 1, "file is empty")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return  # UTF-16 with BOM: lxml decodes it
    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        raise CinFileError(path, 1, "a DTD or entity declaration is not allowed in a CIN return")


def iter_children(
    path: str | os.PathLike[str],
    on_header: Callable[[Header], None],
    on_child: Callable[[etree._Element], None],
    on_bytes: Callable[[int], None] | None = None,
    on_namespace: Callable[[str], None] | None = None,
    data: bytes | None = None,
    on_stray: Callable[[etree._Element], None] | None = None,
) -> None:
    """Stream a CIN file: header first, then each ``<Child>`` element (cleared after use).

    Only ``Message``, ``Header``, ``Children`` and ``Child`` events reach Python; everything
    inside a child is parsed in C and read once from the finished element. Any other element
    found among the children (e.g. a ``<CINdetails>`` outside a ``<Child>``, or ``<child>``) is
    passed to ``on_stray`` so it can be reported, never dropped silently.
    """
    if data is None:
        sniff(path)
    header_seen = False
    root_seen = False
    try:
        with open(path, "rb") if data is None else io.BytesIO(data) as handle:
            context = etree.iterparse(
                handle,
                events=("start", "end"),
                tag=("{*}Message", "{*}Header", "{*}Children", "{*}Child"),
                **SAFE_PARSER_OPTIONS,
            )
            last_pos = 0
            stray = on_stray or (lambda elem: None)
            for event, elem in context:
                tag = local_name(elem.tag)
                if event == "start":
                    if tag == "Message" and not root_seen:
                        if elem.getparent() is not None:
                            raise CinFileError(
                                path, elem.sourceline, "<Message> is not the root element"
                            )
                        if elem.getroottree().docinfo.doctype:
                            # a DTD further in than sniff looks (e.g. after a long comment)
                            raise CinFileError(
                                path,
                                None,
                                "a DTD or entity declaration is not allowed in a CIN return",
                            )
                        root_seen = True
                        if on_namespace is not None:
                            on_namespace(etree.QName(elem).namespace or "")
                    elif not root_seen:
                        raise CinFileError(
                            path, elem.sourceline, f"<{tag}> outside a <Message> root element"
                        )
                    continue
                if tag in ("Children", "Message"):
                    allowed = {"Child"} if tag == "Children" else {"Header", "Children"}
                    for leftover in elem:
                        if (
                            isinstance(leftover.tag, str)
                            and local_name(leftover.tag) not in allowed
                        ):
                            stray(leftover)
                    continue
                if tag == "Header":
                    on_header(parse_header(elem, path))
                    header_seen = True
                    elem.clear()
                elif tag == "Child":
                    if not header_seen:
                        raise CinFileError(
                            path, elem.sourceline, "<Child> before <Header>: no LA or year"
                        )
                    on_child(elem)
                    elem.clear()
                    parent = elem.getparent()
                    if parent is not None:
                        while elem.getprevious() is not None:
                            if local_name(parent[0].tag) != "Child":
                                stray(parent[0])
                            del parent[0]
                    if on_bytes is not None:
                        pos = handle.tell()
                        if pos != last_pos:
                            on_bytes(pos - last_pos)
                            last_pos = pos
    except etree.XMLSyntaxError as err:
        line, message = describe_syntax_error(err)
        raise CinFileError(path, line, f"not well-formed XML: {message}") from None
    except UnicodeDecodeError as err:
        raise CinFileError(path, None, f"wrong encoding: {err.reason}") from None
    if not root_seen:
        raise CinFileError(path, 1, "root element is not <Message>: not a CIN census return")
    if not header_seen:
        raise CinFileError(path, None, "no <Header>: LA and census year unknown")


def read_children(
    path: str | os.PathLike[str],
    on_header: Callable[[Header], None],
    *,
    chunk_children: int = 50_000,
    on_bytes: Callable[[int], None] | None = None,
) -> RawParse:
    """The whole file read with lxml: (raw frames, element counts, strays, unrecognised paths).

    Lines past 65,535 are corrected from a byte scan (:mod:`.xml_lines`). Raises
    :class:`CinFileError` for a file-level fault.
    """
    parser = ChildParser()
    parser.line_scan = ChildrenLines.for_file(path)

    def on_child(elem: etree._Element) -> None:
        parser.child(elem)
        if parser.child_seq % chunk_children == 0:
            parser.flush()

    iter_children(path, on_header, on_child, on_bytes, parser.set_namespace, on_stray=parser.stray)
    return parser.frames(), parser.counts(), parser.strays, parser.unrecognised
