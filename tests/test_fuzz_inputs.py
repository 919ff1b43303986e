"""Property-based fuzzing of the input readers (hypothesis).

Valid multi-child CIN XML returns and SSDA903 CSVs are mutated — elements dropped, duplicated,
reordered, moved or renamed, values replaced by invalid dates, unknown codes, huge or random
text, random bytes flipped, the file truncated at a random offset, a BOM or namespace added, DTDs
and entity declarations (internal, external ``file:///etc/passwd``, billion laughs) inserted;
CSV columns dropped, extra commas, blank lines, bad dates, CRLF. For every mutation:

* the reader returns loaded records and/or reject rows, or raises a clean ``CinFileError`` /
  ``InputFileError`` — never any other exception, never a hang (per-example alarm + deadline);
* nothing is dropped silently: whenever the file loads, ``read == loaded + rejected`` for every
  element, and independently of the reader, the number of ``<Child>`` elements (and of record
  elements inside them) in the mutated document, or of records in the mutated CSV, equals what
  the reader says it read;
* no raw identifier appears in a reject message or a file-level error.

Budget: 12 XML mutation kinds x 9 examples + 9 CSV kinds x 6 examples = 162 examples (about
15 s on 2 cores); each kind is its own parametrised test so every kind is tried. The mutation and outcome tallies are
reported by ``pytest tests/test_fuzz_inputs.py --hypothesis-show-statistics``.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import signal
from collections import Counter
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from conftest import FIXTURES, RAW_CHILD_IDS, RAW_UPNS, cin_fixture
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from lxml import etree

from cinresearch import contracts
from cinresearch.io.cin import ELEMENT_TABLE, CinFileError, CinLoad, read_cin_xml
from cinresearch.io.errors import InputFileError
from cinresearch.io.loader import read_file
from cinresearch.pseudonymise import DEMO_KEY, Pseudonymiser

KEY = Pseudonymiser(DEMO_KEY)
RAW = tuple(v.lower() for v in (*RAW_CHILD_IDS, *RAW_UPNS))
TRIED: Counter[str] = Counter()  # mutations tried in this process, by kind (for the docs)

XML_BASES = {
    name: cin_fixture(name).read_bytes()
    for name in (
        "cin_2018_201_booleans01.xml",
        "cin_2022_202_plans.xml",
        "cin_2024_208_record_faults.xml",
    )
}
TREE_OPS = ("drop", "duplicate", "reorder", "move", "set_text", "rename")
BYTE_OPS = ("flip", "truncate", "bom", "namespace", "entity", "stray_text")
TAGS = (
    "Child",
    "CINdetails",
    "Assessments",
    "Section47",
    "ChildProtectionPlans",
    "CPPreviewDate",
    "Disability",
    "Header",
    "Message",
    "LAchildID",
    "GenderCurrent",
    "Sex",
    "Year",
    "LEA",
    "Unknown",
)
JUNK = (
    "",
    "   ",
    "2023-02-30",
    "2023-13-01",
    "31/12/2023",
    "1899-01-01",
    "9999-12-31",
    "ZZ",
    "RC99",
    "N10",
    "none",
    "-1",
    "99999999999999999999",
    "1e308",
    "TRUE ",
    "maybe",
    "²⁰²⁴",
    "x" * 20_000,
)
DTDS = (
    b'<!DOCTYPE Message [<!ENTITY e "text">]>\n',
    b'<!DOCTYPE Message [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n',
    b'<!DOCTYPE Message [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>\n',
    b'<!DOCTYPE Message SYSTEM "http://example.invalid/cin.dtd">\n',
    b'<!DOCTYPE Message [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>\n',
)
RECORD_ELEMENTS = [e for e in ELEMENT_TABLE if e != "Child"]


def fuzz_settings(max_examples: int) -> settings:
    return settings(FUZZ, max_examples=max_examples)


FUZZ = settings(
    deadline=timedelta(seconds=5),
    derandomize=True,  # the same examples on every run: reproducible and bounded
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


@contextlib.contextmanager
def time_limit(seconds: float):
    """Fail an example that runs longer than ``seconds`` (a hang would never reach deadline)."""

    def on_alarm(signum, frame):
        raise TimeoutError(f"reader hung for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def leaks(text: str) -> list[str]:
    low = text.lower()
    return [raw for raw in RAW if raw in low]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    read_cin_xml(cin_fixture("cin_2024_minimal.xml"), KEY)  # warm the contract caches
    return tmp_path_factory.mktemp("fuzz")


# -- CIN XML -----------------------------------------------------------------------------------
junk_text = st.one_of(
    st.sampled_from(JUNK),
    st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF), max_size=24),
)
tree_op = st.tuples(
    st.sampled_from(TREE_OPS),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    junk_text,
    st.sampled_from(TAGS),
)
byte_op = st.tuples(st.sampled_from(BYTE_OPS), st.integers(0, 10**9), st.integers(0, 255))


@st.composite
def xml_case(draw, primary: str) -> tuple[str, list[tuple], list[tuple]]:
    """A base file and its mutations: the ``primary`` kind (each kind is its own test, so all
    are tried in a small budget), plus up to two more structural and one byte-level."""
    base = draw(st.sampled_from(sorted(XML_BASES)))
    tree_ops = draw(st.lists(tree_op, max_size=2))
    byte_ops = draw(st.lists(byte_op, max_size=1))
    if primary in TREE_OPS:
        tree_ops.insert(0, (primary, *draw(tree_op)[1:]))
    else:
        byte_ops.insert(0, (primary, *draw(byte_op)[1:]))
    return base, tree_ops, byte_ops


def apply_tree_ops(data: bytes, ops: list[tuple]) -> bytes:
    """Structural mutations on the parsed document (indices taken modulo the element count)."""
    if not ops:
        return data
    root = etree.fromstring(data)
    for kind, i, j, text, tag in ops:
        elements = list(root.iter(etree.Element))[1:]
        if not elements:
            break
        node = elements[i % len(elements)]
        parent = node.getparent()
        if kind == "drop":
            parent.remove(node)
        elif kind == "duplicate":
            parent.insert(parent.index(node), copy.deepcopy(node))
        elif kind == "reorder":
            kids = list(node)
            kids = kids[j % max(len(kids), 1) :] + kids[: j % max(len(kids), 1)]
            for kid in kids:
                node.remove(kid)
                node.append(kid)
        elif kind == "move":
            target = elements[j % len(elements)]
            if target is not node and node not in target.iterancestors():
                parent.remove(node)
                target.insert(j % (len(target) + 1), node)
        elif kind == "set_text":
            node.text = text
        elif kind == "rename":
            node.tag = tag
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def apply_byte_ops(data: bytes, ops: list[tuple]) -> bytes:
    for kind, i, byte in ops:
        if kind == "flip":
            buf = bytearray(data)
            if buf:
                buf[i % len(buf)] = byte
            data = bytes(buf)
        elif kind == "truncate":
            data = data[: i % (len(data) + 1)]
        elif kind == "bom":
            data = b"\xef\xbb\xbf" + data
        elif kind == "namespace":
            data = data.replace(b"<Message>", b'<Message xmlns="urn:example:cin">', 1)
        elif kind == "entity":
            dtd = DTDS[i % len(DTDS)]
            at = data.find(b"?>") + 2 if data.startswith(b"<?xml") else 0
            data = data[:at] + b"\n" + dtd + data[at:]
            if b"ENTITY e" in dtd:
                data = data.replace(b"<Ethnicity>", b"<Ethnicity>&e;", 1)
        elif kind == "stray_text":
            positions = [n for n, c in enumerate(data) if c == ord(">")]
            if positions:
                at = positions[i % len(positions)] + 1
                data = data[:at] + b" stray words " + data[at:]
    return data


def independent_counts(data: bytes) -> dict[str, int] | None:
    """Child / record elements counted with a plain lxml parse (None if it cannot parse)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        return None
    children = [e for e in root.iter(etree.Element) if etree.QName(e).localname == "Child"]
    if any(etree.QName(a).localname == "Child" for c in children for a in c.iterancestors()):
        return None  # nested <Child>: element counts are not comparable
    counts = {"Child": len(children)}
    for name in RECORD_ELEMENTS:
        counts[name] = sum(
            1 for c in children for e in c.iter(etree.Element) if etree.QName(e).localname == name
        )
    return counts


def check_loaded(load: CinLoad, mutated: bytes, privacy: bool) -> None:
    rec = load.reconciliation
    assert rec.get_column("balanced").all(), rec
    for table, frame in load.tables.items():
        assert frame.schema == contracts.schema(table)
    assert load.rejects.schema == pl.Schema(contracts.REJECTS_SCHEMA)
    assert load.rejects.get_column("rule").null_count() == 0
    expected = independent_counts(mutated)
    if expected is not None:
        assert load.elements_read["Child"] == expected["Child"]
        for name in RECORD_ELEMENTS:
            assert load.elements_read.get(name, 0) == expected[name], name
    assert [m for m in load.rejects.get_column("message").to_list() if leaks(m)] == []
    if privacy:
        assert [r for r in load.rejects.get_column("record").to_list() if leaks(r)] == []


@pytest.mark.parametrize("primary", TREE_OPS + BYTE_OPS)
@fuzz_settings(9)
@given(data=st.data())
def test_mutated_cin_xml_loads_rejects_or_fails_cleanly(primary, data, workdir):
    base, tree_ops, byte_ops = data.draw(xml_case(primary), label="case")
    mutated = apply_byte_ops(apply_tree_ops(XML_BASES[base], tree_ops), byte_ops)
    for op in (*tree_ops, *byte_ops):
        TRIED[op[0]] += 1
        event(f"mutation: {op[0]}")
    TRIED["xml examples"] += 1
    path = workdir / "mutated.xml"
    path.write_bytes(mutated)
    with time_limit(20):
        try:
            load = read_cin_xml(path, KEY)
        except CinFileError as err:
            event("outcome: CinFileError")
            TRIED["xml outcome: CinFileError"] += 1
            assert str(err).startswith("mutated.xml")
            assert "\n" not in str(err)
            assert leaks(str(err)) == []
            return
    assert not any(op[0] == "entity" for op in byte_ops), "a DTD must never load"
    outcome = "loaded with rejects" if load.rejects.height else "loaded clean"
    event(f"outcome: {outcome}")
    TRIED[f"xml outcome: {outcome}"] += 1
    # a renamed element can put an identifier in a code field, whose value a reject records
    check_loaded(load, mutated, privacy=not any(op[0] == "rename" for op in tree_ops))


# -- SSDA903 CSV -------------------------------------------------------------------------------
def episodes_rows() -> tuple[list[str], list[list[str]]]:
    text = (FIXTURES / "cla" / "ssda903_2019_201_episodes.csv").read_text(encoding="utf-8")
    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    extra = [
        ["RAW-K-1111", "01/09/2018", "P", "V2", "N4", "U6", "PR1", "", "", "CARPL", "", "", ""],
        ["RAW-L-1212", "05/01/2019", "S", "C1", "N2", "K2", "PR4", "", "", "", "", "", ""],
    ]
    return rows[0], rows[1:] + extra


def header_rows() -> tuple[list[str], list[list[str]]]:
    text = (FIXTURES / "cla" / "ssda903_2019_201_header.csv").read_text(encoding="utf-8")
    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    return rows[0], rows[1:]


CSV_BASES = {"ssda903_episodes": episodes_rows(), "ssda903_header": header_rows()}
CSV_OPS = ("drop_column", "bad_date", "extra_comma", "blank_lines", "junk_cell", "crlf")
CSV_BYTE_OPS = ("flip", "truncate", "bom")
csv_op = st.tuples(
    st.sampled_from(CSV_OPS), st.integers(0, 10**6), st.integers(0, 10**6), junk_text
)
csv_byte_op = st.tuples(st.sampled_from(CSV_BYTE_OPS), st.integers(0, 10**9), st.integers(0, 255))


@st.composite
def csv_case(draw, primary: str) -> tuple[str, list[tuple], list[tuple]]:
    """A base CSV and its mutations: the ``primary`` kind plus up to three row/column ones."""
    kind = draw(st.sampled_from(sorted(CSV_BASES)))
    ops = draw(st.lists(csv_op, max_size=3))
    byte_ops = []
    if primary in CSV_OPS:
        ops.insert(0, (primary, *draw(csv_op)[1:]))
    else:
        byte_ops.append((primary, *draw(csv_byte_op)[1:]))
    return kind, ops, byte_ops


def build_csv(
    head: list[str], rows: list[list[str]], ops: list[tuple]
) -> tuple[bytes, int, set[int]]:
    """The mutated CSV, its number of records, and the lines records start on."""
    head, rows = list(head), [list(r) for r in rows]
    blanks: dict[int, int] = {}
    newline = "\n"
    for kind, i, j, text in ops:
        if kind == "drop_column" and head:
            k = i % len(head)
            head.pop(k)
            for row in rows:
                if k < len(row):
                    row.pop(k)
        elif kind in ("bad_date", "junk_cell", "extra_comma") and rows:
            row = rows[i % len(rows)]
            if kind == "extra_comma":
                row.append("")
            elif row:
                row[j % len(row)] = "32/13/2018" if kind == "bad_date" else text
        elif kind == "blank_lines":
            blanks[i % (len(rows) + 1)] = 1 + j % 3
        elif kind == "crlf":
            newline = "\r\n"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=newline)
    writer.writerow(head)
    line, starts = 2, set()
    for n, row in enumerate(rows):
        out.write(newline * blanks.get(n, 0))
        line += blanks.get(n, 0)
        starts.add(line)
        before = out.tell()
        writer.writerow(row)
        line += out.getvalue()[before:].count("\n")
    out.write(newline * blanks.get(len(rows), 0))
    return out.getvalue().encode("utf-8"), len(rows), starts


@pytest.mark.parametrize("primary", CSV_OPS + CSV_BYTE_OPS)
@fuzz_settings(6)
@given(data=st.data())
def test_mutated_ssda903_csv_loads_rejects_or_fails_cleanly(primary, data, workdir):
    kind, ops, byte_ops = data.draw(csv_case(primary), label="case")
    head, rows = CSV_BASES[kind]
    data, n_records, starts = build_csv(head, rows, ops)
    for op in (*ops, *byte_ops):
        TRIED[f"csv {op[0]}"] += 1
        event(f"mutation: {op[0]}")
    TRIED["csv examples"] += 1
    for op, i, byte in byte_ops:
        if op == "flip" and data:
            buf = bytearray(data)
            buf[i % len(buf)] = byte
            data = bytes(buf)
        elif op == "truncate":
            data = data[: i % (len(data) + 1)]
        elif op == "bom":
            data = b"\xef\xbb\xbf" + data
    path = workdir / f"ssda903_2019_201_{kind.split('_')[1]}.csv"
    path.write_bytes(data)
    with time_limit(20):
        try:
            loaded = read_file(path, kind, KEY)
        except InputFileError as err:
            event("outcome: InputFileError")
            TRIED["csv outcome: InputFileError"] += 1
            assert str(err).startswith(path.name)
            assert leaks(str(err)) == []
            return
    event("outcome: loaded")
    TRIED["csv outcome: loaded"] += 1
    counts = loaded.counts["elements"]["row"]
    assert counts["balanced"] is True
    assert counts["read"] == counts["loaded"] + counts["rejected"]
    assert loaded.rejects.height >= counts["rejected"]  # a record may break several rules
    if not byte_ops:  # the mutation is known exactly: every record is accounted for
        assert counts["read"] == n_records
        assert set(loaded.rejects.get_column("line").to_list()) <= starts
    assert [m for m in loaded.rejects.get_column("message").to_list() if leaks(m)] == []
    assert [r for r in loaded.rejects.get_column("record").to_list() if leaks(r)] == []
    table = next(iter(loaded.tables))
    assert loaded.tables[table].schema == contracts.schema(table)
