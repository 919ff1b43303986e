"""Every reader gives lxml's result for the whole file: the prefix, limits, messages, lines.

The fast readers (compiled, polars) read the children; these tests put the unusual things
*around* them — before the first child, in the declaration, in a huge value — and check that the
load (tables, rejects with their lines, reconciliation, or the file-level error) is the same
whichever reader ran. They also check that no parse-error message quotes the file (issue 13,
item 5), and that lines past 65,535 are exact in every reader (item 6).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import cin_fixture
from lxml import etree
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from cinresearch.cli import app
from cinresearch.io.cin import CIN_TABLES, CinLoad, native, parallel, read_cin_xml
from cinresearch.io.cin.xml_lines import EXACT_LINES
from cinresearch.io.errors import CinFileError

MINIMAL = cin_fixture("cin_2024_minimal.xml").read_text(encoding="utf-8")
CHILD = MINIMAL[MINIMAL.index("    <Child>") : MINIMAL.index("  </Children>")]
READERS = ["lxml", "native", "polars"]


def _read(path: Path, reader: str, key, monkeypatch: pytest.MonkeyPatch, **kwargs):
    """One reader's load of ``path``, or the CinFileError it raised."""
    with monkeypatch.context() as patch:
        if reader == "native" and not native.AVAILABLE:
            pytest.skip("compiled reader not built")
        if reader == "polars":
            patch.setattr(native, "_cinfast", None)
        try:
            return read_cin_xml(path, key, columnar=reader != "lxml", **kwargs)
        except CinFileError as err:
            return err


def _same(result: CinLoad | CinFileError, reference: CinLoad | CinFileError) -> None:
    if isinstance(reference, CinFileError) or isinstance(result, CinFileError):
        assert type(result) is type(reference), (result, reference)
        assert str(result) == str(reference)
        return
    for table in CIN_TABLES:
        assert_frame_equal(result.tables[table], reference.tables[table])
    assert_frame_equal(result.rejects, reference.rejects)
    assert_frame_equal(result.reconciliation, reference.reconciliation)


def _all_readers(path: Path, key, monkeypatch, **kwargs) -> CinLoad | CinFileError:
    """Load with every reader, assert they agree, return the lxml (sequential) result."""
    reference = _read(path, "lxml", key, monkeypatch, workers=1)
    for reader in READERS[1:]:
        _same(_read(path, reader, key, monkeypatch, workers=1, **kwargs), reference)
    return reference


def _prefixed_child() -> str:
    body = CHILD.strip()[len("<Child>") : -len("</Child>")]
    return f'<c:Child xmlns:c="urn:c">{body}</c:Child>'


# (file text, what the lxml load must show) -- the cases of issue 13, "outside the children"
PREFIX_CASES = {
    "prefixed child before the first plain child": (
        MINIMAL.replace("<Children>", "<Children>\n" + _prefixed_child()),
        lambda r: r.elements_read["Child"] == 2,
    ),
    "empty child before the first plain child": (
        MINIMAL.replace("<Children>", "<Children>\n    <Child/>"),
        lambda r: r.elements_read["Child"] == 2 and r.rejects.height > 0,
    ),
    "stray element before the first child": (
        MINIMAL.replace("<Children>", "<Children>\n    <Stray>x</Stray>"),
        lambda r: "schema:unexpected_element" in r.rejects.get_column("rule").to_list(),
    ),
    "stray element between header and children": (
        MINIMAL.replace("  <Children>", "  <Other/>\n  <Children>"),
        lambda r: "schema:unexpected_element" in r.rejects.get_column("rule").to_list(),
    ),
    "children in another namespace": (
        MINIMAL.replace("<Children>", '<Children xmlns="urn:x">'),
        lambda r: r.rejects.height > 0,
    ),
    "comment holding <Child> in the header": (
        MINIMAL.replace("<Header>", "<Header><!-- <Child> -->"),
        lambda r: r.rejects.is_empty() and r.tables["children"].height == 1,
    ),
    "CDATA holding <Child> in the header": (
        MINIMAL.replace("<SoftwareCode>ToolkitTest", "<SoftwareCode><![CDATA[<Child>]]>"),
        lambda r: r.rejects.is_empty() and r.tables["children"].height == 1,
    ),
    "header longer than 64 KiB, then a prefixed child": (
        MINIMAL.replace("<Header>", "<Header><!--" + "x" * 70_000 + "-->").replace(
            "<Children>", "<Children>\n" + _prefixed_child()
        ),
        lambda r: r.elements_read["Child"] == 2,
    ),
    "header longer than 64 KiB": (
        MINIMAL.replace("<Header>", "<Header>" + "<!-- padding -->\n" * 5_000),
        lambda r: r.rejects.is_empty() and r.tables["children"].height == 1,
    ),
}


@pytest.mark.parametrize("case", sorted(PREFIX_CASES))
def test_the_part_before_the_first_child_reads_as_lxml_reads_it(
    case: str, tmp_path: Path, demo_key, monkeypatch: pytest.MonkeyPatch
) -> None:
    text, expect = PREFIX_CASES[case]
    path = tmp_path / "return.xml"
    path.write_text(text, encoding="utf-8")
    reference = _all_readers(path, demo_key, monkeypatch)
    assert isinstance(reference, CinLoad), reference
    assert expect(reference)
    assert reference.reconciliation.get_column("balanced").all()


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("US-ASCII declared, UTF-8 bytes", "bytes not valid in the declared encoding"),
        ("11 MB value", "longer than the parser's limit"),
        ("11 MB of whitespace between elements", "longer than the parser's limit"),
    ],
)
def test_encoding_and_size_limits_are_lxml_s(
    case: str, words: str, tmp_path: Path, demo_key, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = {
        "US-ASCII declared, UTF-8 bytes": MINIMAL.replace(
            'encoding="UTF-8"', 'encoding="US-ASCII"'
        ).replace("CHILD0001", "CHÏLD0001"),
        "11 MB value": MINIMAL.replace("CHILD0001", "C" * 11_000_000),
        "11 MB of whitespace between elements": MINIMAL.replace(
            "<ChildIdentifiers>", "<ChildIdentifiers>" + " " * 11_000_000
        ),
    }[case]
    path = tmp_path / "return.xml"
    path.write_text(text, encoding="utf-8")
    reference = _all_readers(path, demo_key, monkeypatch)
    assert isinstance(reference, CinFileError)
    assert words in reference.message


def test_values_under_the_limit_load_the_same_through_every_reader(
    tmp_path: Path, demo_key, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 2 MB value is declined by the fast readers and read by lxml: same load."""
    path = tmp_path / "return.xml"
    path.write_text(MINIMAL.replace("<Ethnicity>WBRI", "<Ethnicity>" + "W" * 2_000_000))
    reference = _all_readers(path, demo_key, monkeypatch)
    assert isinstance(reference, CinLoad)


def test_ascii_declared_file_that_is_ascii_takes_the_range_route(tmp_path: Path) -> None:
    path = tmp_path / "return.xml"
    path.write_text(MINIMAL.replace('encoding="UTF-8"', 'encoding="US-ASCII"'))
    assert parallel.plan_ranges(path, 1) is not None
    path.write_text(
        MINIMAL.replace('encoding="UTF-8"', 'encoding="US-ASCII"').replace("CHILD", "CHÏLD")
    )
    assert parallel.plan_ranges(path, 1) is None


def test_only_a_plain_header_lets_the_range_route_run() -> None:
    plain = parallel.plain_header_namespace
    head = MINIMAL[: MINIMAL.index("    <Child>")].encode()
    close = b"</Children></Message>"
    assert plain(head + close) == ""
    ns = head.replace(b"<Message>", b'<Message xmlns="urn:m">')
    assert plain(ns + close) == "urn:m"
    assert plain(head + b"<Child/>" + close) is None
    assert plain(head + b"<Stray/>" + close) is None
    assert plain(head.replace(b"<Header>", b"<Header><!-- ") + close) is None


# -- item 5: no text from the file in any message ----------------------------------------------
SECRET = "PRIV-12345"
_LEAK = re.compile(r"PRIV|12345")


def _broken_returns() -> dict[str, str]:
    at_id = MINIMAL.index("<LAchildID>")
    return {
        "truncated CDATA": MINIMAL[:at_id] + f"<LAchildID><![CDATA[{SECRET}",
        "truncated value": MINIMAL[:at_id] + f"<LAchildID>{SECRET}",
        "truncated start tag": MINIMAL[:at_id] + f"<{SECRET}",
        "attribute without value": MINIMAL.replace("<LAchildID>", f"<LAchildID {SECRET}>"),
        "attribute with '<'": MINIMAL.replace("<LAchildID>", f'<LAchildID id="{SECRET}<">'),
        "element named by the id": MINIMAL.replace(
            "<LAchildID>CHILD0001</LAchildID>", f"<{SECRET}>x</LAchildID>"
        ),
        "end tag named by the id": MINIMAL.replace("</LAchildID>", f"</{SECRET}>"),
        "undeclared prefix": MINIMAL.replace(
            "<LAchildID>CHILD0001</LAchildID>", f"<{SECRET}:x>CHILD0001</{SECRET}:x>"
        ),
        "double hyphen in a comment": MINIMAL.replace(
            "<LAchildID>", f"<!-- {SECRET} -- --><LAchildID>"
        ),
        "entity named by the id": MINIMAL.replace("CHILD0001", f"&{SECRET};"),
        "unterminated CDATA in the header": MINIMAL.replace(
            "<SoftwareCode>ToolkitTest", f"<SoftwareCode><![CDATA[{SECRET}"
        ),
    }


@pytest.mark.parametrize("case", sorted(_broken_returns()))
def test_parse_errors_quote_nothing_from_the_file(
    case: str, tmp_path: Path, demo_key, monkeypatch: pytest.MonkeyPatch, capfd
) -> None:
    path = tmp_path / "return.xml"
    path.write_text(_broken_returns()[case], encoding="utf-8")
    for reader in READERS:
        for workers in (1, 2):
            err = _read(path, reader, demo_key, monkeypatch, workers=workers)
            assert isinstance(err, CinFileError), (reader, err)
            assert not _LEAK.search(str(err)), (reader, str(err))
            assert err.line is not None and f"line {err.line}" in err.message, str(err)
    # the CLI: its output and the load report
    store = tmp_path / "store"
    result = CliRunner().invoke(
        app, ["load", str(path), "--store", str(store), "--demo-key"], env={"COLUMNS": "400"}
    )
    assert result.exit_code == 1
    assert "not well-formed XML" in result.stderr
    report = (store / "reports" / "load_report.json").read_text(encoding="utf-8")
    assert "not well-formed XML" in report
    for text in (result.stdout, result.stderr, report, *capfd.readouterr()):
        assert not _LEAK.search(text), text


def test_lxml_messages_do_quote_the_file_so_the_scrubbing_is_needed(tmp_path: Path) -> None:
    """The premise: libxml2's own message carries the id (so the test above can fail)."""
    with pytest.raises(etree.XMLSyntaxError) as info:
        etree.fromstring(_broken_returns()["truncated CDATA"].encode())
    assert SECRET[:8] in str(info.value)


# -- item 6: exact lines past 65,535 -----------------------------------------------------------
def _long_return(path: Path, stray: bool) -> dict[str, int]:
    """A ~600k-line return with faults planted past line 65,535; {fault: its true line}.

    Children sit one element per line, with runs of blank lines between and inside them, so
    the file is long but quick to parse. Every child's content starts with a newline (the
    shape on which lxml's own line is one too high).
    """
    head = MINIMAL[: MINIMAL.index("    <Child>")]
    tail = MINIMAL[MINIMAL.index("  </Children>") :]
    parts = [head]
    line = head.count("\n") + 1
    planted: dict[str, int] = {}
    faults = {300: "sex", 1100: "referral date", 1500: "misplaced", 1900: "sex"}
    if stray:
        faults[700] = "stray"
    for i in range(2000):
        child = CHILD.replace("CHILD0001", f"C{i}")
        kind = faults.get(i)
        if kind == "sex":
            child = child.replace("<GenderCurrent>2<", "<GenderCurrent>7<")
            planted[kind + str(i)] = line
        elif kind == "referral date":
            child = child.replace("<CINdetails>", "<CINdetails>" + "\n" * 17)
            child = child.replace(">2023-05-10<", ">2023-13-10<")
            planted[kind] = line + child[: child.index("<CINdetails>")].count("\n")
        elif kind == "misplaced" and stray:
            child = child.replace(
                "<UPNunknown>", "<CPPreviewDate>2023-01-01</CPPreviewDate>\n<UPNunknown>"
            )
            planted[kind] = line + child[: child.index("<CPPreviewDate>")].count("\n")
        elif kind == "stray":
            child = "    <Stray>\n</Stray>\n" + child
            planted[kind] = line
        padding = "\n" * 250
        parts += [child, padding]
        line += child.count("\n") + len(padding)
    parts.append(tail)
    path.write_text("".join(parts), encoding="utf-8")
    return planted


@pytest.mark.parametrize("stray", [False, True], ids=["fast-readable", "with-strays"])
def test_lines_past_65535_are_exact_in_every_reader(
    stray: bool, tmp_path: Path, demo_key, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "long.xml"
    planted = _long_return(path, stray)
    assert path.read_bytes().count(b"\n") > 500_000
    assert min(planted.values()) > EXACT_LINES
    # the premise: lxml's own line for a planted child is off
    sex_line = planted["sex300"]
    for _, elem in etree.iterparse(str(path), tag="Child"):
        if elem.sourceline >= sex_line - 1:
            assert elem.sourceline != sex_line
            break
        elem.clear()
    monkeypatch.setattr(parallel, "BATCH_BYTES", 4 * 1024 * 1024)  # several batches
    reference = _all_readers(path, demo_key, monkeypatch)
    assert isinstance(reference, CinLoad)
    rejects = reference.rejects
    first = {
        rule: line
        for rule, line in zip(
            rejects.get_column("rule").to_list(), rejects.get_column("line").to_list(), strict=True
        )
        if rule != "parent_rejected"
    }
    lines = sorted(
        line
        for rule, line in zip(
            rejects.get_column("rule").to_list(), rejects.get_column("line").to_list(), strict=True
        )
        if rule != "parent_rejected"
    )
    assert lines == sorted(planted.values()), (lines, planted, first)


def test_load_report_of_a_parse_error_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "return.xml"
    path.write_text(_broken_returns()["end tag named by the id"], encoding="utf-8")
    store = tmp_path / "store"
    CliRunner().invoke(app, ["load", str(path), "--store", str(store), "--demo-key"])
    report = json.loads((store / "reports" / "load_report.json").read_text(encoding="utf-8"))
    text = json.dumps(report)
    assert "end tag does not match its start tag, line 21, column" in text
