"""Column-wise reader for the children of a CIN return written in the schema's element order.

The streaming lxml parser (:class:`cinresearch.io.cin.lxml_reader.ChildParser`) does Python work for every
element, about 45 µs a child. Returns are machine-written: elements in the XSD's sequence
order (``../shared/domain/cin_census.md`` §1), no comments, entities, attributes or CDATA.
For such text one regular grammar, matched by polars' Rust regex engine child by child, proves
that the children are well-formed XML and that every element sits where the schema puts it;
the fields are then cut out column-wise with polars string expressions, in Rust, on all cores.

A batch of text that does not match the grammar (another element order, an entity, a comment,
an attribute, a ``>`` or control character in a value, a broken tag...) is not an error here:
:func:`parse_children` returns ``None`` and the caller parses that batch with lxml, which
reads any element order and reports real errors with exact lines. On text it accepts, the
result is identical to the lxml parser's — frames, sequence numbers, lines and counts — which
``tests/test_cin_xml_columnar.py`` checks on clean, messy and reordered returns.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import polars as pl

from cinresearch.io.cin.schema import (
    ASSESSMENT_FIELDS,
    CHILD_FIELDS,
    CIN_PLAN_FIELDS,
    CPP_FIELDS,
    EPISODE_FIELDS,
    RAW_COLUMNS,
    S47_FIELDS,
    raw_dtype,
)

# Whitespace between elements, and a leaf value: XML text without markup, references, ``>``,
# carriage returns or the control characters XML forbids (all of those go to lxml).
_WS = r"[ \t\n]*"
_TEXT = r"[^<>&\r\x00-\x08\x0b\x0c\x0e-\x1f\x{FFFE}\x{FFFF}]*"

_CHILD_IDENTIFIERS = [
    "LAchildID",
    "UPN",
    "FormerUPN",
    "UPNunknown",
    "PersonBirthDate",
    "ExpectedPersonBirthDate",
    "GenderCurrent",
    "Sex",
    "PersonDeathDate",
]
# CINdetails leaves before the nested records (ReferralNFA sits after Section47: see _grammar)
_EPISODE_HEAD = [
    "CINreferralDate",
    "ReferralSource",
    "PrimaryNeedCode",
    "CINclosureDate",
    "ReasonForClosure",
    "DateOfInitialCPC",
]
_CPP_LEAVES = [
    "CPPstartDate",
    "CPPendDate",
    "InitialCategoryOfAbuse",
    "LatestCategoryOfAbuse",
    "NumberOfPreviousCPP",
]
_SELF_CLOSING = r"<([A-Za-z_][A-Za-z0-9_.-]*)/>"


def _leaf(name: str) -> str:
    return f"<{name}>{_TEXT}</{name}>"


def _opt(pattern: str) -> str:
    return f"(?:{_WS}{pattern})?"


def _rep(pattern: str) -> str:
    return f"(?:{_WS}{pattern})*"


def _box(name: str, inner: str) -> str:
    return f"<{name}>{inner}{_WS}</{name}>"


@cache
def _grammar() -> str:
    """One ``<Child>`` (its closing tag cut off), elements in the XSD's sequence order.

    Every element is optional and repeatable where the XSD allows repeats, so a return that
    breaks a cardinality rule still parses here and is judged by the data contracts, exactly as
    with the lxml parser. Only position and well-formedness are enforced.
    """
    identifiers = _box("ChildIdentifiers", "".join(_opt(_leaf(n)) for n in _CHILD_IDENTIFIERS))
    characteristics = _box(
        "ChildCharacteristics",
        _opt(_leaf("Ethnicity")) + _opt(_box("Disabilities", _rep(_leaf("Disability")))),
    )
    assessment = _box(
        "Assessments",
        "".join(_opt(_leaf(n)) for n in ASSESSMENT_FIELDS)
        + _opt(_box("FactorsIdentifiedAtAssessment", _rep(_leaf("AssessmentFactors")))),
    )
    cin_plan = _box("CINPlanDates", "".join(_opt(_leaf(n)) for n in CIN_PLAN_FIELDS))
    section47 = _box("Section47", "".join(_opt(_leaf(n)) for n in S47_FIELDS))
    plan = _box(
        "ChildProtectionPlans",
        "".join(_opt(_leaf(n)) for n in _CPP_LEAVES)
        + _opt(_box("Reviews", _rep(_leaf("CPPreviewDate")))),
    )
    episode = _box(
        "CINdetails",
        "".join(_opt(_leaf(n)) for n in _EPISODE_HEAD)
        + _rep(assessment)
        + _rep(cin_plan)
        + _rep(section47)
        + _opt(_leaf("ReferralNFA"))
        + _rep(plan),
    )
    return f"^{_WS}<Child>{_opt(identifiers)}{_opt(characteristics)}{_rep(episode)}{_WS}$"


def _check_fields_cover_grammar() -> None:
    """Every column the lxml parser reads is a leaf of the grammar (guards future edits)."""
    leaves = set(_CHILD_IDENTIFIERS) | {"Ethnicity"} | set(_EPISODE_HEAD) | {"ReferralNFA"}
    leaves |= set(ASSESSMENT_FIELDS) | set(CIN_PLAN_FIELDS) | set(S47_FIELDS) | set(_CPP_LEAVES)
    missing = (
        set(CHILD_FIELDS)
        | set(EPISODE_FIELDS)
        | set(ASSESSMENT_FIELDS)
        | set(CIN_PLAN_FIELDS)
        | set(S47_FIELDS)
        | set(CPP_FIELDS)
    ) - leaves
    if missing:  # pragma: no cover - a programming error, caught by the tests
        raise AssertionError(f"grammar lacks leaves read by the lxml parser: {sorted(missing)}")


_check_fields_cover_grammar()


def _value(text: pl.Expr, name: str) -> pl.Expr:
    """The stripped text of leaf ``name`` (null when absent or blank), as lxml's parser gives it."""
    value = text.str.extract(f"<{name}>([^<]*)</{name}>", 1).str.strip_chars()
    return pl.when(value != "").then(value)


def _records(parents: pl.DataFrame, tag: str, keep: list[str], line: str = "line") -> pl.DataFrame:
    """One row per ``<tag>`` element in each parent's ``text``, in document order.

    Each row has the parent's ``keep`` columns, the element's own ``text`` (up to its closing
    tag) and ``line``: the parent's line plus the newlines before the element's start tag.
    """
    pieces = pl.col("text").str.split(f"<{tag}>")
    newlines = pieces.list.eval(pl.element().str.count_matches("\n", literal=True).cum_sum())
    rows = (
        parents.lazy()
        .filter(pl.col("text").str.contains(f"<{tag}>", literal=True))
        .select(
            *keep,
            pl.col(line).alias("_parent_line"),
            pieces.list.slice(1).alias("text"),
            newlines.list.slice(0, pieces.list.len() - 1).alias("_before"),
        )
        .explode("text", "_before")
        .select(
            *keep,
            pl.col("text").str.splitn(f"</{tag}>", 2).struct.field("field_0").alias("text"),
            (pl.col("_parent_line") + pl.col("_before")).alias("line"),
        )
    )
    return rows.collect()


def _codes(text: pl.Expr, name: str) -> pl.Expr:
    """Stripped, upper-cased values of the repeated leaf ``name`` (an empty list when absent)."""
    open_len, close_len = len(name) + 2, len(name) + 3
    return text.str.extract_all(f"<{name}>[^<]*</{name}>").list.eval(
        pl.element()
        .str.slice(open_len, pl.element().str.len_chars() - open_len - close_len)
        .str.strip_chars()
        .str.to_uppercase()
    )


def _raw_frame(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """Columns and types exactly as :class:`cinresearch.io.cin.raw.RawColumns` builds them."""
    return frame.select(
        (pl.col(name) if name in frame.columns else pl.lit(None)).cast(raw_dtype(name)).alias(name)
        for name in RAW_COLUMNS[table]
    )


#: longest run of text between two ``<`` accepted (bytes); libxml2 refuses a text node over
#: 10,000,000 bytes without XML_PARSE_HUGE, so anything near it is left to lxml (as in _cinfast.c)
MAX_TEXT = 1_000_000


def _text_too_long(children: pl.DataFrame) -> bool:
    """True if some run between two ``<`` (a value, or whitespace) is over MAX_TEXT bytes."""
    long = children.filter(pl.col("text").str.len_bytes() > MAX_TEXT)
    if long.is_empty():
        return False
    runs = long.select(
        pl.col("text").str.split("<").list.eval(pl.element().str.len_bytes()).list.max()
    )
    return bool(runs.to_series().max() > MAX_TEXT)


def parse_children(text: str) -> dict[str, Any] | None:
    """Raw frames for a run of ``<Child>`` elements, or None if the grammar does not match.

    ``text`` starts at a ``<Child`` and ends after the last ``</Child>`` (whitespace around is
    allowed). Lines count from 1 at the start of ``text``; sequence numbers from 1. The result
    has the shape of the lxml worker's: ``frames``, ``counts``, ``children``, ``episodes``,
    ``cpps``, ``newlines`` and ``strays``.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n")  # as XML line-end handling does; a lone CR fails below
    if "/>" in text:
        text = pl.Series([text]).str.replace_all(_SELF_CLOSING, "<$1></$1>").item()
    pieces = text.split("</Child>")
    if len(pieces) < 2 or pieces[-1].strip(" \t\n"):
        return None
    pieces.pop()
    children = pl.DataFrame({"text": pieces}, schema={"text": pl.String})
    del pieces
    if _text_too_long(children):
        return None
    if not children.select(pl.col("text").str.contains(_grammar()).all()).item():
        return None
    newlines = text.count("\n")
    children = children.with_columns(
        parts=pl.col("text").str.splitn("<Child>", 2),
        piece_newlines=pl.col("text").str.count_matches("\n", literal=True),
    ).select(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("child_seq"),
        (
            1
            + pl.col("piece_newlines").cum_sum()
            - pl.col("piece_newlines")
            + pl.col("parts").struct.field("field_0").str.count_matches("\n", literal=True)
        ).alias("line"),
        pl.col("parts").struct.field("field_1").alias("text"),
    )

    disabilities = _records(children, "Disability", ["child_seq"]).with_columns(
        pl.col("text").str.strip_chars().str.to_uppercase().alias("code")
    )
    per_child = disabilities.group_by("child_seq").agg(
        pl.len().alias("n"), (pl.col("code") == "NONE").sum().alias("n_none")
    )
    child_rows = children.join(per_child, on="child_seq", how="left", maintain_order="left")
    n = pl.col("n").fill_null(0)
    real = n - pl.col("n_none").fill_null(0)
    # the child's own leaves all come before its first <CINdetails>
    child_rows = child_rows.with_columns(
        pl.col("text").str.splitn("<CINdetails>", 2).struct.field("field_0").alias("head")
    ).with_columns(
        *(_value(pl.col("head"), tag).alias(column) for tag, column in CHILD_FIELDS.items()),
        n.cast(pl.String).alias("n_disability"),
        pl.when(real > 0).then(pl.lit("1")).otherwise(pl.lit("0")).alias("disabled_raw"),
        pl.when((real > 0) & (pl.col("n_none").fill_null(0) > 0))
        .then(pl.lit("1"))
        .otherwise(pl.lit("0"))
        .alias("none_with_others"),
    )
    disability_rows = disabilities.filter(pl.col("code") != "NONE").select(
        "child_seq", "line", pl.when(pl.col("code") != "").then(pl.col("code")).alias("disability")
    )

    episodes = _records(children, "CINdetails", ["child_seq"]).with_columns(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("episode_seq")
    )
    # the episode's leaves before its nested records; ReferralNFA comes after Section47
    head = pl.col("text")
    for tag in ("Assessments", "CINPlanDates", "Section47", "ChildProtectionPlans"):
        head = head.str.splitn(f"<{tag}>", 2).struct.field("field_0")
    referral_rows = episodes.with_columns(head.alias("head")).with_columns(
        *(
            _value(pl.col("text" if tag == "ReferralNFA" else "head"), tag).alias(column)
            for tag, column in EPISODE_FIELDS.items()
        )
    )
    keys = ["child_seq", "episode_seq"]

    def nested(tag: str, fields: dict[str, str]) -> pl.DataFrame:
        rows = _records(episodes, tag, keys)
        return rows.with_columns(
            *(_value(pl.col("text"), name).alias(column) for name, column in fields.items())
        )

    assessments = nested("Assessments", ASSESSMENT_FIELDS).with_columns(
        _codes(pl.col("text"), "AssessmentFactors").alias("factors")
    )
    cin_plans = nested("CINPlanDates", CIN_PLAN_FIELDS)
    section47 = nested("Section47", S47_FIELDS)
    plans = nested("ChildProtectionPlans", CPP_FIELDS).with_columns(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("cpp_seq")
    )
    reviews = _records(plans, "CPPreviewDate", [*keys, "cpp_seq"]).with_columns(
        pl.col("text").str.strip_chars().alias("review_date")
    )
    reviews = reviews.with_columns(
        pl.when(pl.col("review_date") != "").then(pl.col("review_date")).alias("review_date")
    )

    frames = {
        "children": _raw_frame(child_rows, "children"),
        "disabilities": _raw_frame(disability_rows, "disabilities"),
        "referrals": _raw_frame(referral_rows, "referrals"),
        "assessments": _raw_frame(assessments, "assessments"),
        "cin_plans": _raw_frame(cin_plans, "cin_plans"),
        "section47": _raw_frame(section47, "section47"),
        "cp_plans": _raw_frame(plans, "cp_plans"),
        "cpp_reviews": _raw_frame(reviews, "cpp_reviews"),
        "misplaced": _raw_frame(
            pl.DataFrame({"child_seq": []}, schema={"child_seq": pl.Int64}), "misplaced"
        ),
    }
    counts = {
        "Child": children.height,
        "CINdetails": episodes.height,
        "Assessments": assessments.height,
        "CINPlanDates": cin_plans.height,
        "Section47": section47.height,
        "ChildProtectionPlans": plans.height,
        "CPPreviewDate": reviews.height,
        "Disability": disabilities.height,
        "Disability:NONE": int(disabilities.get_column("code").eq("NONE").sum()),
    }
    return {
        "frames": frames,
        "counts": counts,
        "children": children.height,
        "episodes": episodes.height,
        "cpps": plans.height,
        "newlines": newlines,
        "strays": [],
    }
