"""Streaming reader for CIN census XML returns (all census years 2017-18 onward).

The file is read with ``lxml.etree.iterparse`` one ``<Child>`` at a time; each child is turned
into plain column lists and cleared, and the lists are compacted into polars frames every
``chunk_children`` children, so memory stays flat on national files with over a million
children. Identifiers are pseudonymised as they are read (:mod:`cinresearch.pseudonymise`).

Tolerated, as real returns contain them: stray text between elements, booleans as 0/1 or
true/false in any case, an XML declaration or none, a UTF-8 BOM, a default namespace,
lower-case codes and padded values, ``GenderCurrent`` or ``Sex`` in any year. Refused, as a
clean :class:`CinFileError` naming the file and line: malformed or truncated XML, a wrong root,
a missing header (LA / year), a DTD (entity expansion and external entities are never resolved).

Every ``<Child>``, ``<CINdetails>``, ``<Assessments>``, ``<CINPlanDates>``, ``<Section47>``,
``<ChildProtectionPlans>``, ``<CPPreviewDate>`` and ``<Disability>`` read ends either in its
table or in ``rejects`` (with file, line, rule and message); :class:`CinLoad.reconciliation`
proves it. A rejected child takes its episodes with it, and a rejected episode its nested
records, each recorded as ``parent_rejected``.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import yaml
from lxml import etree

from cinresearch import contracts
from cinresearch.contracts import CONTRACTS_DIR
from cinresearch.io import cross_record_rules
from cinresearch.io.errors import CinFileError
from cinresearch.io.xml_faults import describe_syntax_error
from cinresearch.io.xml_lines import ChildrenLines
from cinresearch.pseudonymise import Pseudonymiser, checked_upns

_FORMAT = yaml.safe_load((CONTRACTS_DIR / "cin_census.yaml").read_text(encoding="utf-8"))
KNOWN_YEARS: tuple[int, ...] = tuple(_FORMAT["years"])
TRUE_VALUES = frozenset(_FORMAT["booleans"][True])
FALSE_VALUES = frozenset(_FORMAT["booleans"][False])

CIN_TABLES = (
    "children",
    "disabilities",
    "referrals",
    "assessments",
    "cin_plans",
    "section47",
    "cp_plans",
    "cpp_reviews",
    "pre_proceedings",
)

#: tables of modules only some returns carry: listed in a reconciliation only when present, and
#: committed to the store only when they have rows
OPTIONAL_TABLES = frozenset({"pre_proceedings"})

# XML element -> raw column, per record kind. Element names that changed between years are
# mapped here, in one place (see data_contracts/cin_census.yaml).
CHILD_FIELDS = {
    "LAchildID": "la_child_id",
    "UPN": "upn",
    "FormerUPN": "former_upn",
    "UPNunknown": "upn_unknown",
    "PersonBirthDate": "birth_date",
    "ExpectedPersonBirthDate": "expected_birth_date",
    "GenderCurrent": "gender_current",
    "Sex": "sex_code",
    "PersonDeathDate": "death_date",
    "Ethnicity": "ethnicity",
}
EPISODE_FIELDS = {
    "CINreferralDate": "referral_date",
    "ReferralSource": "referral_source",
    "PrimaryNeedCode": "primary_need",
    "CINclosureDate": "closure_date",
    "ReasonForClosure": "closure_reason",
    "DateOfInitialCPC": "icpc_date",
    "ReferralNFA": "referral_nfa",
}
ASSESSMENT_FIELDS = {
    "AssessmentActualStartDate": "assessment_start",
    "AssessmentInternalReviewDate": "assessment_review",
    "AssessmentAuthorisationDate": "assessment_authorised",
}
CIN_PLAN_FIELDS = {"CINPlanStartDate": "cin_plan_start", "CINPlanEndDate": "cin_plan_end"}
S47_FIELDS = {
    "S47ActualStartDate": "s47_start",
    "InitialCPCtarget": "icpc_target",
    "DateOfInitialCPC": "icpc_date",
    "ICPCnotRequired": "icpc_not_required",
}
CPP_FIELDS = {
    "CPPstartDate": "cpp_start",
    "CPPendDate": "cpp_end",
    "InitialCategoryOfAbuse": "initial_category",
    "LatestCategoryOfAbuse": "latest_category",
    "NumberOfPreviousCPP": "previous_cpps",
}
#: 2025-26 pre-proceedings module (element names inferred from a public sample return; see
#: data_contracts/pre_proceedings.yaml for what is confirmed and what is inferred)
PP_FIELDS = {
    "PPStartDate": "pp_start",
    "LBPSentDate": "lbp_sent_date",
    "FGDMMeetingOffer": "fgdm_offered",
    "FGDMMeetingFac": "fgdm_facilitated",
    "InitialPPMeetingDate": "initial_meeting_date",
    "ReviewMeetingsCount": "review_meetings",
    "StepDecisionDate": "decision_date",
    "PPOutcome": "pp_outcome",
    "CourtAppDate": "court_application_date",
    "LetterInitCPDate": "letter_initial_cp_date",
}
CONTAINERS = {"ChildIdentifiers", "ChildCharacteristics"}

#: lxml options for every parse of a return: no entity expansion, DTD or network access (XXE
#: and entity bombs), no huge-tree override; comments and processing instructions dropped
SAFE_PARSER_OPTIONS: dict[str, bool] = {
    "resolve_entities": False,
    "load_dtd": False,
    "no_network": True,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
}


@dataclass
class Header:
    la_code: str
    census_year: int
    reference_date: date
    collection_start: date
    line: int | None
    notes: list[str] = field(default_factory=list)
    #: the header's own ReferenceDate when it parsed (``reference_date`` is always 31 March)
    reference_date_given: date | None = None
    #: Source/DateTime as ISO text (when the return was produced), None if absent or invalid
    produced_at: str | None = None


@dataclass
class CinLoad:
    """Tables, rejects and counts from one CIN return."""

    source_file: str
    header: Header
    tables: dict[str, pl.DataFrame]
    rejects: pl.DataFrame
    elements_read: dict[str, int]
    elements_seen: dict[str, int]
    detected: str
    rejected_counts: dict[str, int] = field(default_factory=dict)
    #: elements inside children that the CIN schema does not have there: one row per path
    #: (``path``, ``element``, ``count``, ``first_line``); never their values
    unrecognised: pl.DataFrame = field(default_factory=lambda: unrecognised_frame({}))

    @property
    def reconciliation(self) -> pl.DataFrame:
        """Per element: read = loaded + rejected (``balanced`` must be true everywhere)."""
        rejected_by = self.rejected_counts
        rows = []
        for element, table in ELEMENT_TABLE.items():
            read = self.elements_read.get(element, 0)
            loaded = self.tables[table].height
            if table == "disabilities":
                read -= self.elements_read.get("Disability:NONE", 0)
            n_rej = rejected_by.get(table, 0)
            if table in OPTIONAL_TABLES and read == loaded == n_rej == 0:
                continue  # a module the return does not use (e.g. before 2025-26)
            rows.append((element, table, read, loaded, n_rej, read == loaded + n_rej))
        strays = self.elements_read.get("(unexpected element)", 0)
        if strays:
            n_rej = rejected_by.get("unexpected_elements", 0)
            rows.append(
                ("(unexpected element)", "unexpected_elements", strays, 0, n_rej, strays == n_rej)
            )
        return pl.DataFrame(
            rows,
            schema={
                "element": pl.String,
                "table": pl.String,
                "read": pl.Int64,
                "loaded": pl.Int64,
                "rejected": pl.Int64,
                "balanced": pl.Boolean,
            },
            orient="row",
        )

    def counts(self) -> dict[str, Any]:
        rec = self.reconciliation
        return {
            "elements": {
                r["element"]: {k: r[k] for k in ("read", "loaded", "rejected")}
                for r in rec.to_dicts()
            },
            "rows": {t: f.height for t, f in self.tables.items()},
            "rejected": int(self.rejects.filter(pl.col("action") == "reject_record").height),
            "flagged": int(self.rejects.filter(pl.col("action") == "flag").height),
            "dropped_values": int(self.rejects.filter(pl.col("action") == "drop_value").height),
            "balanced": bool(rec.get_column("balanced").all()),
            "unrecognised": int(self.unrecognised.get_column("count").sum()),
        }


ELEMENT_TABLE = {
    "Child": "children",
    "Disability": "disabilities",
    "CINdetails": "referrals",
    "Assessments": "assessments",
    "CINPlanDates": "cin_plans",
    "Section47": "section47",
    "ChildProtectionPlans": "cp_plans",
    "CPPreviewDate": "cpp_reviews",
    "PreProceedingsandFGDM": "pre_proceedings",
}

#: the CIN schema as (parent element -> child elements it may hold); an element found anywhere
#: else inside a ``<Child>`` is unrecognised (counted by path, never its value). Record elements
#: in the wrong place are not listed here: they are rejected as misplaced instead.
SCHEMA_CHILDREN: dict[str, frozenset[str]] = {
    # identifiers not wrapped in a container are tolerated (see _Parser.child)
    "Child": frozenset({*CONTAINERS, "CINdetails", *CHILD_FIELDS}),
    "ChildIdentifiers": frozenset({*CHILD_FIELDS, "Disabilities"}),
    "ChildCharacteristics": frozenset({*CHILD_FIELDS, "Disabilities"}),
    "Disabilities": frozenset({"Disability"}),
    "CINdetails": frozenset(
        {
            *EPISODE_FIELDS,
            "Assessments",
            "CINPlanDates",
            "Section47",
            "ChildProtectionPlans",
            "PreProceedingsandFGDM",
        }
    ),
    "Assessments": frozenset({*ASSESSMENT_FIELDS, "FactorsIdentifiedAtAssessment"}),
    "FactorsIdentifiedAtAssessment": frozenset({"AssessmentFactors"}),
    "CINPlanDates": frozenset(CIN_PLAN_FIELDS),
    "Section47": frozenset(S47_FIELDS),
    "ChildProtectionPlans": frozenset({*CPP_FIELDS, "Reviews"}),
    "Reviews": frozenset({"CPPreviewDate"}),
    "PreProceedingsandFGDM": frozenset(PP_FIELDS),
}


def unrecognised_frame(found: dict[str, list[int]]) -> pl.DataFrame:
    """Rows of unrecognised element paths (``path -> [count, first line]``), sorted by path."""
    paths = sorted(found)
    return pl.DataFrame(
        {
            "path": paths,
            "element": [p.rpartition("/")[2] for p in paths],
            "count": [found[p][0] for p in paths],
            "first_line": [found[p][1] or None for p in paths],
        },
        schema={"path": pl.String, "element": pl.String, "count": pl.Int64, "first_line": pl.Int64},
    )


def merge_unrecognised(
    into: dict[str, list[int]], found: dict[str, list[int]], line_offset: int = 0
) -> None:
    """Add the counts of ``found`` to ``into`` (first lines shifted by ``line_offset``)."""
    for path, (count, line) in found.items():
        hit = into.get(path)
        if hit is None:
            into[path] = [count, line + line_offset if line else 0]
        else:
            hit[0] += count


def _local(tag: Any) -> str | None:
    if not isinstance(tag, str):
        return None  # comments, processing instructions
    return tag.rpartition("}")[2] if tag[0] == "{" else tag


def _text(elem: etree._Element) -> str | None:
    text = elem.text
    if text is None:
        return None
    text = text.strip()
    return text or None


def raw_dtype(column: str) -> pl.DataType:
    """Type of a raw column as every reader returns it: numbers, factor lists, else text."""
    if column.endswith(("_seq", "line")):
        return pl.Int64()
    return pl.List(pl.String) if column == "factors" else pl.String()


class _Columns:
    """Column lists for one raw table, compacted to a polars frame every chunk."""

    def __init__(self, names: list[str]):
        self.names = names
        self.data: dict[str, list[Any]] = {n: [] for n in names}
        self.frames: list[pl.DataFrame] = []

    def add(self, row: dict[str, Any]) -> None:
        for name in self.names:
            self.data[name].append(row.get(name))

    def flush(self) -> None:
        if self.data[self.names[0]]:
            self.frames.append(self._frame(self.data))
            self.data = {n: [] for n in self.names}

    def _frame(self, data: dict[str, list[Any]]) -> pl.DataFrame:
        return pl.DataFrame(data, schema={n: raw_dtype(n) for n in self.names})

    def frame(self) -> pl.DataFrame:
        self.flush()
        if not self.frames:
            return self._frame({n: [] for n in self.names})
        return pl.concat(self.frames, how="vertical", rechunk=True)


_RAW = {
    "children": [
        "child_seq",
        "line",
        "la_child_id",
        "upn",
        "former_upn",
        "upn_unknown",
        "birth_date",
        "expected_birth_date",
        "gender_current",
        "sex_code",
        "death_date",
        "ethnicity",
        "n_disability",
        "disabled_raw",
        "none_with_others",
        "conflict",
    ],
    "disabilities": ["child_seq", "line", "disability"],
    "referrals": ["child_seq", "episode_seq", "line", *EPISODE_FIELDS.values(), "conflict"],
    "assessments": [
        "child_seq",
        "episode_seq",
        "line",
        *ASSESSMENT_FIELDS.values(),
        "factors",
        "conflict",
    ],
    "cin_plans": ["child_seq", "episode_seq", "line", *CIN_PLAN_FIELDS.values(), "conflict"],
    "section47": ["child_seq", "episode_seq", "line", *S47_FIELDS.values(), "conflict"],
    "cp_plans": ["child_seq", "episode_seq", "cpp_seq", "line", *CPP_FIELDS.values(), "conflict"],
    "cpp_reviews": ["child_seq", "episode_seq", "cpp_seq", "line", "review_date"],
    "pre_proceedings": ["child_seq", "episode_seq", "line", *PP_FIELDS.values(), "conflict"],
    # record elements inside a <Child> but not where the schema puts them (never loaded)
    "misplaced": ["child_seq", "line", "element"],
}


_NESTED_TABLES = (
    "assessments",
    "cin_plans",
    "section47",
    "cp_plans",
    "cpp_reviews",
    "pre_proceedings",
)


class _Parser:
    """Turns ``<Child>`` elements into raw column lists.

    Tags are matched by dictionary look-up on the qualified tag (``{ns}Name`` when the file has
    a default namespace), which keeps the per-element cost low on national files; elements are
    found by name, never by position.
    """

    def __init__(self, namespace: str = "") -> None:
        self.cols = {table: _Columns(names) for table, names in _RAW.items()}
        self.read: Counter[str] = Counter()
        self.child_seq = 0
        self.episode_seq = 0
        self.cpp_seq = 0
        self.strays: list[tuple[int | None, str]] = []
        #: path of an unrecognised element -> [count, first line]
        self.unrecognised: dict[str, list[int]] = {}
        self.set_namespace(namespace)
        #: byte scan giving exact lines past 65,535 (see cinresearch.io.xml_lines), or None
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
        self.strays.append((line or elem.sourceline, str(_local(elem.tag))))

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
            len(cols[table].data[cols[table].names[0]]) for table in _NESTED_TABLES
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
        names = [_local(tag)]
        parent = node.getparent()
        while parent is not None and parent is not self.current_child:
            names.append(_local(parent.tag))
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
                    {"child_seq": cseq, "line": self._line(node), "element": _local(node.tag)}
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


# -- header -------------------------------------------------------------------------------------
def _parse_header(elem: etree._Element, path: str | os.PathLike[str]) -> Header:
    values: dict[str, str | None] = {}
    for node in elem.iter():
        tag = _local(node.tag)
        if tag in {"Collection", "Year", "ReferenceDate", "LEA", "DateTime"} and tag not in values:
            values[tag] = _text(node)
    notes = []
    la = values.get("LEA")
    if not la or not la.isascii() or not la.isdigit() or len(la) != 3:
        raise CinFileError(
            path, elem.sourceline, f"Header/Source/LEA must be a 3-digit LA number, got {la!r}"
        )
    year_text = values.get("Year")
    ref_text = values.get("ReferenceDate")
    ref: date | None = None
    if ref_text:
        try:
            ref = date.fromisoformat(ref_text)
        except ValueError:
            notes.append(f"ReferenceDate {ref_text!r} is not a date; using 31 March of Year")
    if year_text and year_text.isascii() and year_text.isdigit():
        year = int(year_text)
    elif ref is not None:
        year = ref.year if ref.month <= 3 else ref.year + 1  # the year ending 31 March after it
        notes.append(f"header Year missing; census year {year} taken from ReferenceDate {ref_text}")
    else:
        raise CinFileError(
            path, elem.sourceline, "Header has neither CollectionDetails/Year nor ReferenceDate"
        )
    if year not in KNOWN_YEARS:
        raise CinFileError(
            path,
            elem.sourceline,
            f"census year {year} is not supported (supported: {KNOWN_YEARS[0]}-{KNOWN_YEARS[-1]})",
        )
    expected_ref = date(year, 3, 31)
    if ref is not None and ref != expected_ref:
        if year_text and ref.month == 3 and ref.day == 31:
            notes.append(
                f"rule 100: header Year {year} disagrees with ReferenceDate {ref}; census year "
                f"{year} taken from Year, collection period {date(year - 1, 4, 1)} to {expected_ref}"
            )
        else:
            notes.append(
                f"rule 100: ReferenceDate {ref} is not 31 March {year}; using {expected_ref}"
            )
    produced_at = _produced_at(values.get("DateTime"))
    if values.get("DateTime") and produced_at is None:
        notes.append("header DateTime is not a date-time; ignored")
    collection = values.get("Collection")
    if collection and collection.upper() != "CIN":
        raise CinFileError(path, elem.sourceline, f"Header Collection is {collection!r}, not CIN")
    return Header(
        la_code=la,
        census_year=year,
        reference_date=expected_ref,
        collection_start=date(year - 1, 4, 1),
        line=elem.sourceline,
        notes=notes,
        reference_date_given=ref,
        produced_at=produced_at,
    )


def _produced_at(text: str | None) -> str | None:
    """Header ``Source/DateTime`` as ISO text (seconds), or None when absent or not a date-time."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=None).isoformat(timespec="seconds")
    except ValueError:
        return None


def _sniff(path: str | os.PathLike[str]) -> None:
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
        _sniff(path)
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
                tag = _local(elem.tag)
                if event == "start":
                    if tag == "Message" and not root_seen:
                        if elem.getparent() is not None:
                            raise CinFileError(
                                path, elem.sourceline, "<Message> is not the root element"
                            )
                        if elem.getroottree().docinfo.doctype:
                            # a DTD further in than _sniff looks (e.g. after a long comment)
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
                        if _local(leftover.tag) not in allowed and isinstance(leftover.tag, str):
                            stray(leftover)
                    continue
                if tag == "Header":
                    on_header(_parse_header(elem, path))
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
                            if _local(parent[0].tag) != "Child":
                                stray(parent[0])
                            del parent[0]
                    if on_bytes is not None:
                        pos = handle.tell()
                        if pos != last_pos:
                            on_bytes(pos - last_pos)
                            last_pos = pos
    except etree.XMLSyntaxError as err:
        line, message = _syntax_error(err)
        raise CinFileError(path, line, f"not well-formed XML: {message}") from None
    except UnicodeDecodeError as err:
        raise CinFileError(path, None, f"wrong encoding: {err.reason}") from None
    if not root_seen:
        raise CinFileError(path, 1, "root element is not <Message>: not a CIN census return")
    if not header_seen:
        raise CinFileError(path, None, "no <Header>: LA and census year unknown")


def _syntax_error(err: etree.XMLSyntaxError) -> tuple[int | None, str]:
    """Line and one-line message of a parse error, quoting no text from the document."""
    return describe_syntax_error(err)


# -- normalisation ----------------------------------------------------------------------------
def _bool_expr(column: str) -> pl.Expr:
    value = pl.col(column).str.strip_chars().str.to_uppercase()
    return (
        pl.when(value.is_in(sorted(TRUE_VALUES)))
        .then(True)
        .when(value.is_in(sorted(FALSE_VALUES)))
        .then(False)
        .otherwise(None)
    )


def _code_expr(column: str) -> pl.Expr:
    return pl.col(column).str.strip_chars().str.to_uppercase()


class _Rejector:
    """Collects reject rows and rejected sequence numbers while tables are normalised."""

    def __init__(self, source_file: str, header: Header, key: Pseudonymiser):
        self.source_file = source_file
        self.header = header
        self.key = key
        self.parts: list[pl.DataFrame] = []
        self.rejected_children: set[int] = set()
        self.rejected_episodes: set[int] = set()
        self.rejected_cpps: set[int] = set()
        self.rejected_rows: dict[str, set[int]] = {}

    def add(self, frame: pl.DataFrame) -> None:
        if frame.height:
            self.parts.append(frame)

    def reject(
        self,
        raw: pl.DataFrame,
        mask: pl.Series,
        *,
        table: str,
        rule: str,
        message: str,
        columns: list[str],
    ):
        """Reject raw rows where ``mask`` is true (raw ids are never written)."""
        hit = raw.filter(mask)
        if hit.is_empty():
            return
        self.add(
            contracts.reject_rows(
                hit.select(["line", *columns]).to_dicts(),
                table=table,
                rule=rule,
                message=message,
                source_file=self.source_file,
                census_year=self.header.census_year,
                la_code=self.header.la_code,
            )
        )
        self._remember(hit, table)

    def _remember(self, hit: pl.DataFrame, table: str) -> None:
        self.rejected_rows.setdefault(table, set()).update(hit.get_column("row_seq").to_list())
        if table == "children":
            self.rejected_children.update(hit.get_column("child_seq").to_list())
        elif table == "referrals":
            self.rejected_episodes.update(hit.get_column("episode_seq").to_list())
        elif table == "cp_plans":
            self.rejected_cpps.update(hit.get_column("cpp_seq").to_list())

    def frame(self) -> pl.DataFrame:
        if not self.parts:
            return contracts.empty_rejects()
        return pl.concat(self.parts, how="vertical")


def _typed(
    raw: pl.DataFrame, table: str, header: Header, extra: dict[str, pl.Expr]
) -> pl.DataFrame:
    """Cast raw string columns to the contract's types (invalid values → null, caught later)."""
    contract = contracts.load_contract(table)
    exprs: list[pl.Expr] = []
    for col in contract.columns:
        if col.name in extra:
            exprs.append(extra[col.name].alias(col.name))
        elif col.name == "la_code":
            exprs.append(pl.lit(header.la_code).alias("la_code"))
        elif col.name == "census_year":
            exprs.append(pl.lit(header.census_year, dtype=pl.Int16).alias("census_year"))
        elif col.dtype == pl.Date:
            exprs.append(
                pl.col(col.name)
                .str.strip_chars()
                .str.to_date("%Y-%m-%d", strict=False)
                .alias(col.name)
            )
        elif col.dtype == pl.Boolean:
            exprs.append(_bool_expr(col.name).alias(col.name))
        elif col.dtype.is_integer():
            exprs.append(
                pl.col(col.name).str.strip_chars().cast(col.dtype, strict=False).alias(col.name)
            )
        elif isinstance(col.dtype, pl.List):
            exprs.append(pl.col(col.name).list.eval(pl.element().str.strip_chars()).alias(col.name))
        elif col.codes:
            exprs.append(_code_expr(col.name).alias(col.name))
        else:
            exprs.append(pl.col(col.name).alias(col.name))
    return raw.with_columns(exprs)


def _type_failures(
    raw: pl.DataFrame, typed: pl.DataFrame, table: str
) -> list[tuple[str, pl.Series]]:
    """(column, mask) where a raw value was present but did not parse to the contract type."""
    contract = contracts.load_contract(table)
    failures = []
    for col in contract.columns:
        if (
            col.name not in raw.columns
            or col.dtype in (pl.String(),)
            or isinstance(col.dtype, pl.List)
        ):
            continue
        mask = raw.get_column(col.name).is_not_null() & typed.get_column(col.name).is_null()
        if mask.any():
            failures.append((col.name, mask))
    return failures


_TYPE_NAMES = {pl.Date: "a date (YYYY-MM-DD)", pl.Boolean: "a boolean (0/1/true/false)"}


def _normalise_table(
    raw: pl.DataFrame,
    table: str,
    header: Header,
    rejector: _Rejector,
    extra: dict[str, pl.Expr],
    context: dict[str, pl.Expr],
    record_columns: list[str],
    parent_mask: pl.Series | None,
    parent_message: str,
) -> pl.DataFrame:
    """Type, validate and split one table; rejected rows go to ``rejector``."""
    typed = _typed(raw, table, header, extra)
    if parent_mask is not None:
        rejector.reject(
            typed,
            parent_mask,
            table=table,
            rule="parent_rejected",
            message=parent_message,
            columns=record_columns,
        )
        typed = typed.filter(~parent_mask)
        raw = raw.filter(~parent_mask)
    if "conflict" in typed.columns:
        mask = typed.get_column("conflict").is_not_null()
        rejector.reject(
            typed,
            mask,
            table=table,
            rule="schema:repeated_element",
            message="an element that may appear once was given twice with different values",
            columns=record_columns,
        )
        typed, raw = typed.filter(~mask), raw.filter(~mask)
    bad = pl.Series([False] * typed.height, dtype=pl.Boolean)
    for column, mask in _type_failures(raw, typed, table):
        dtype = contracts.load_contract(table).column(column).dtype
        kind = _TYPE_NAMES.get(type(dtype), str(dtype))
        rejector.reject(
            typed,
            mask & ~bad,
            table=table,
            rule=f"type:{column}",
            message=f"{column} is not {kind}",
            columns=record_columns,
        )
        bad = bad | mask
    typed = typed.filter(~bad)
    checked = typed.with_columns(
        pl.lit(header.reference_date).alias("reference_date"),
        pl.lit(header.collection_start).alias("collection_start"),
        **context,
    )
    result = contracts.validate(checked, table)
    if result.issues.height:
        rejector.add(
            contracts.issue_rows(
                result.issues,
                checked,
                table=table,
                source_file=rejector.source_file,
                census_year=header.census_year,
                la_code=header.la_code,
                record_columns=record_columns,
            )
        )
        rejector._remember(checked[result.rejected_index.to_list()], table)
    return result.valid


def _duplicated(*columns: str) -> pl.Expr:
    return pl.struct(columns).is_duplicated()


def pseudonymise_children(children: pl.DataFrame, key: Pseudonymiser, la_code: str) -> pl.DataFrame:
    """Replace the raw ``la_child_id``, ``upn`` and ``former_upn`` columns by keyed hashes.

    Adds ``child_id``, ``upn_hash``, ``former_upn_hash`` and ``upn_check_ok`` (true when the
    UPN passes the DfE check or is absent); the raw columns are dropped. Runs where the raw
    frame is built (in the parsing process), so raw identifiers never leave it.
    """
    ids = children.get_column("la_child_id").str.strip_chars()

    upn_ok, upns = checked_upns(children.get_column("upn"))
    _, former = checked_upns(children.get_column("former_upn"))
    return children.with_columns(
        key.hash_series("child", ids, prefix=f"{la_code}\x1f").alias("child_id"),
        key.hash_series("upn", upns).alias("upn_hash"),
        key.hash_series("upn", former).alias("former_upn_hash"),
        (upn_ok | children.get_column("upn").is_null()).alias("upn_check_ok"),
    ).drop("la_child_id", "upn", "former_upn")


def read_cin_xml(
    path: str | os.PathLike[str],
    key: Pseudonymiser,
    *,
    chunk_children: int = 50_000,
    on_bytes: Callable[[int], None] | None = None,
    workers: int | None = None,
    columnar: bool = True,
) -> CinLoad:
    """Read one CIN census XML return into validated, pseudonymised tables.

    With ``columnar`` (the default), children written in the schema's element order are read
    column-wise by the compiled reader (:mod:`cinresearch.io.cin_xml_native`) or, where it was
    not built, by polars (:mod:`cinresearch.io.cin_xml_columnar`), and anything else by lxml.
    ``workers`` processes parse a large file in parallel (default: one with the compiled
    reader, else up to 4 for files over 32 MB; see :mod:`cinresearch.io.cin_xml_parallel`).
    Every route gives the
    same result as one sequential lxml parse (``columnar=False, workers=1``). Raises
    :class:`CinFileError` for file-level problems (nothing of the file is kept).
    """
    from cinresearch.io import cin_xml_parallel as parallel
    from cinresearch.io.cin_xml_native import AVAILABLE as native_reader

    size = os.path.getsize(path)
    if workers is None:
        # the compiled reader parses faster than worker processes start; without it, large
        # files are parsed on up to 4 cores
        big = size >= 2 * parallel.MIN_BYTES_PER_WORKER
        workers = min(os.cpu_count() or 1, 4) if big and not (columnar and native_reader) else 1
    parsed = None
    headers: list[Header] = []
    if workers > 1 or columnar:
        _sniff(path)
        plan = parallel.plan_ranges(path, workers)
        document = None if plan is None else parallel.header_document(path, plan[0])
        # the prefix must hold only the header, or the sequential parse reads the whole file
        namespace = None if document is None else parallel.plain_header_namespace(document)
        if plan is not None and document is not None and namespace is not None:
            header_len, _ = plan
            iter_children(path, headers.append, lambda elem: None, None, data=document)
            parsed = parallel.parse_parallel(
                path,
                namespace,
                workers,
                document[:header_len].count(b"\n"),
                columnar=columnar,
                pseudonymiser=(key, headers[0].la_code),
                on_bytes=on_bytes,
            )
    if parsed is None:
        headers.clear()
        parser = _Parser()
        parser.line_scan = ChildrenLines.for_file(path)

        def on_child(elem: etree._Element) -> None:
            parser.child(elem)
            if parser.child_seq % chunk_children == 0:
                parser.flush()

        iter_children(
            path, headers.append, on_child, on_bytes, parser.set_namespace, on_stray=parser.stray
        )
        parsed = (
            parser.frames(),
            parser.counts(),
            parser.strays,
            parser.unrecognised,
        )
    header = headers[0]
    raw_frames, read_counts, strays, unrecognised = parsed
    # a fast reader has no frame for a module it never reads (it declines children with one)
    raw_frames = {
        t: raw_frames[t] if t in raw_frames else _Columns(names).frame()
        for t, names in _RAW.items()
    }
    raw = {table: frame.with_row_index("row_seq") for table, frame in raw_frames.items()}
    del raw_frames, parsed
    source_file = Path(path).name
    rejector = _Rejector(source_file, header, key)

    # identifiers: pseudonymise once per distinct value, then drop the raw columns
    elements_seen = {
        "GenderCurrent": int(raw["children"].get_column("gender_current").is_not_null().sum()),
        "Sex": int(raw["children"].get_column("sex_code").is_not_null().sum()),
        "CINPlanDates": raw["cin_plans"].height,
    }
    children_raw = raw.pop("children")
    if "la_child_id" in children_raw.columns:
        children_raw = pseudonymise_children(children_raw, key, header.la_code)
    seq_to_child = children_raw.select("child_seq", "child_id")

    sex_map = {"1": "M", "2": "F", "0": "U", "9": "U", "M": "M", "F": "F", "U": "U"}
    gender = pl.col("gender_current").str.strip_chars().str.to_uppercase()
    sex_code = pl.col("sex_code").str.strip_chars().str.to_uppercase()
    sex_raw = pl.coalesce(sex_code, gender)
    children_extra = {
        "sex": sex_raw.replace_strict(sex_map, default=None),
        "sex_element": pl.when(pl.col("sex_code").is_not_null())
        .then(pl.lit("Sex"))
        .when(pl.col("gender_current").is_not_null())
        .then(pl.lit("GenderCurrent"))
        .otherwise(pl.lit("none")),
        "disabled": pl.col("disabled_raw") == "1",
    }
    children_raw = children_raw.with_columns(
        pl.when(sex_raw.is_not_null() & sex_raw.replace_strict(sex_map, default=None).is_null())
        .then(pl.lit("invalid"))
        .otherwise(None)
        .alias("_sex_invalid")
    )
    child_record = ["child_id", "birth_date", "expected_birth_date", "sex", "ethnicity"]
    rejector.reject(
        children_raw.with_columns(sex=sex_raw),
        children_raw.get_column("_sex_invalid").is_not_null(),
        table="children",
        rule="code:sex",
        message="GenderCurrent/Sex is not one of 0/1/2/9 or M/F/U",
        columns=child_record,
    )
    children_raw = children_raw.filter(pl.col("_sex_invalid").is_null())
    children = _normalise_table(
        children_raw,
        "children",
        header,
        rejector,
        children_extra,
        {
            "duplicate_key": pl.col("child_id").is_not_null() & _duplicated("child_id"),
            "upn_check_ok": pl.col("upn_check_ok"),
            "none_with_others": pl.col("none_with_others"),
        },
        child_record,
        None,
        "",
    )
    del children_raw
    sex_elements = {k: elements_seen[k] for k in ("GenderCurrent", "Sex")}

    def child_parent_mask(frame: pl.DataFrame) -> pl.Series:
        return frame.get_column("child_seq").is_in(sorted(rejector.rejected_children))

    def with_child_id(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.join(seq_to_child, on="child_seq", how="left", maintain_order="left")

    # disabilities (NONE rows are not stored; `children.disabled` carries it)
    disabilities_raw = with_child_id(raw.pop("disabilities"))
    disabilities = _normalise_table(
        disabilities_raw,
        "disabilities",
        header,
        rejector,
        {},
        {},
        ["child_id", "disability"],
        child_parent_mask(disabilities_raw),
        "child record rejected",
    )

    # `disabled` follows the codes loaded (a code dropped by 8540 does not make a child disabled)
    children = children.with_columns(
        disabled=pl.col("child_seq").is_in(disabilities.get_column("child_seq").implode())
    )

    # referrals (episodes)
    referrals_raw = with_child_id(raw.pop("referrals"))
    referral_record = [
        "child_id",
        "referral_date",
        "referral_source",
        "closure_date",
        "closure_reason",
        "referral_nfa",
    ]
    referrals = _normalise_table(
        referrals_raw,
        "referrals",
        header,
        rejector,
        {},
        {"duplicate_key": _duplicated("child_id", "referral_date")},
        referral_record,
        child_parent_mask(referrals_raw),
        "child record rejected",
    )
    episode_dates = referrals_raw.select(
        "episode_seq",
        pl.col("referral_date").str.strip_chars().str.to_date("%Y-%m-%d", strict=False),
    )
    closures = referrals.select("episode_seq", pl.col("closure_date").alias("episode_closure_date"))

    def nested(
        table: str, record: list[str], context: dict[str, pl.Expr] | None = None
    ) -> pl.DataFrame:
        frame = with_child_id(raw.pop(table)).join(
            episode_dates, on="episode_seq", how="left", maintain_order="left"
        )
        frame = frame.join(closures, on="episode_seq", how="left", maintain_order="left")
        mask = frame.get_column("child_seq").is_in(
            sorted(rejector.rejected_children)
        ) | frame.get_column("episode_seq").is_in(sorted(rejector.rejected_episodes))
        if "cpp_seq" in frame.columns and table != "cp_plans":
            mask = mask | frame.get_column("cpp_seq").is_in(sorted(rejector.rejected_cpps))
        out = _normalise_table(
            frame,
            table,
            header,
            rejector,
            {"referral_date": pl.col("referral_date")},
            context or {},
            record,
            mask,
            "parent record (child, episode or plan) rejected",
        )
        return out

    assessments = nested(
        "assessments",
        ["child_id", "referral_date", "assessment_start", "assessment_authorised", "factors"],
        {"duplicate_key": _duplicated("episode_seq", "assessment_start")},
    )
    cin_plans = nested("cin_plans", ["child_id", "referral_date", "cin_plan_start", "cin_plan_end"])
    section47 = nested(
        "section47", ["child_id", "referral_date", "s47_start", "icpc_date", "icpc_not_required"]
    )
    cp_plans = nested(
        "cp_plans",
        ["child_id", "referral_date", "cpp_start", "cpp_end", "initial_category", "previous_cpps"],
    )
    cpp_starts = cp_plans.select("cpp_seq", pl.col("cpp_start").alias("_plan_start"))
    reviews_raw = raw["cpp_reviews"].join(
        cpp_starts, on="cpp_seq", how="left", maintain_order="left"
    )
    raw["cpp_reviews"] = reviews_raw.with_columns(
        pl.col("_plan_start").cast(pl.String).alias("cpp_start")
    )
    cpp_reviews = nested(
        "cpp_reviews",
        ["child_id", "referral_date", "cpp_start", "review_date"],
    )
    if raw["pre_proceedings"].height:
        pre_proceedings = nested(
            "pre_proceedings",
            ["child_id", "referral_date", "pp_start", "pp_outcome", "court_application_date"],
            {"duplicate_key": _duplicated("episode_seq", "pp_start")},
        )
    else:  # most returns: no module, no validation pass (it costs tens of ms per file)
        del raw["pre_proceedings"]
        pre_proceedings = contracts.empty_frame("pre_proceedings")

    tables = {
        "children": children,
        "disabilities": disabilities,
        "referrals": referrals,
        "assessments": assessments,
        "cin_plans": cin_plans,
        "section47": section47,
        "cp_plans": cp_plans,
        "cpp_reviews": cpp_reviews,
        "pre_proceedings": pre_proceedings,
    }
    rejector.add(
        cross_record_rules.check_return(
            tables,
            source_file=source_file,
            census_year=header.census_year,
            la_code=header.la_code,
            collection_start=header.collection_start,
            reference_date=header.reference_date,
        )
    )
    tables = {name: contracts.conform(frame, name) for name, frame in tables.items()}
    rejected_counts = {t: len(rows) for t, rows in rejector.rejected_rows.items()}
    misplaced = raw.pop("misplaced", None)
    if misplaced is not None and misplaced.height:
        misplaced = misplaced.join(seq_to_child, on="child_seq", how="left", maintain_order="left")
        for element in misplaced.get_column("element").unique(maintain_order=True).to_list():
            hit = misplaced.filter(pl.col("element") == element)
            table = ELEMENT_TABLE[element]
            rejector.add(
                contracts.reject_rows(
                    hit.select("line", "child_id", "element").to_dicts(),
                    table=table,
                    rule="schema:misplaced_element",
                    message=f"<{element}> is not where the CIN schema puts it; not loaded",
                    source_file=source_file,
                    census_year=header.census_year,
                    la_code=header.la_code,
                )
            )
            read_counts[element] = read_counts.get(element, 0) + hit.height
            rejected_counts[table] = rejected_counts.get(table, 0) + hit.height
    if strays:
        rejector.add(
            contracts.reject_rows(
                [{"line": line, "element": tag} for line, tag in strays],
                table="unexpected_elements",
                rule="schema:unexpected_element",
                message="element outside any <Child> where a child record was expected; not loaded",
                source_file=source_file,
                census_year=header.census_year,
                la_code=header.la_code,
            )
        )
        read_counts["(unexpected element)"] = len(strays)
        rejected_counts["unexpected_elements"] = len(strays)
    detected = _describe_version(header, elements_seen, sex_elements)
    return CinLoad(
        source_file=source_file,
        header=header,
        tables=tables,
        rejects=rejector.frame(),
        elements_read=read_counts,
        elements_seen=elements_seen,
        detected=detected,
        rejected_counts=rejected_counts,
        unrecognised=unrecognised_frame(unrecognised),
    )


def _describe_version(header: Header, seen: dict[str, int], sex_elements: dict[str, int]) -> str:
    year = header.census_year
    label = _FORMAT["versions"][year]["label"]
    forms = [name for name, n in sex_elements.items() if n]
    sex_text = " and ".join(forms) if forms else "no sex element"
    expected = "Sex" if year >= 2025 else "GenderCurrent"
    mixed = "" if forms in ([expected], []) else f" (expected {expected} in {label})"
    plans = "CINPlanDates present" if seen.get("CINPlanDates") else "no CINPlanDates"
    return (
        f"census year {year} ({label}) return for LA {header.la_code}; {sex_text}{mixed}; {plans}"
    )
