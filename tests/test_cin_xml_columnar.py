"""The fast CIN readers (compiled and polars) give exactly what lxml gives, or decline.

Three readers turn a run of ``<Child>`` elements into raw frames: the compiled reader
(``cinresearch.io.cin.native``), the polars reader (``cinresearch.io.cin.polars_reader``) and the
element-by-element lxml parser. The fast two accept only schema-ordered plain XML; on anything they accept, frames,
sequence numbers, lines and counts must equal lxml's, and whatever they decline must still load
exactly as lxml loads it. The hypothesis test mutates returns at random to check the property
that matters most: a fast reader never accepts text that lxml rejects or reads differently.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from cinresearch.io.cin import CIN_TABLES, native, parallel, polars_reader, read_cin_xml

FIXTURES = Path(__file__).parent / "fixtures" / "cin"
MINIMAL = FIXTURES / "cin_2024_minimal.xml"
GOOD_FIXTURES = sorted(p for p in FIXTURES.glob("cin_*.xml"))

native_only = pytest.mark.skipif(
    not native.AVAILABLE, reason="compiled reader not built (no C compiler)"
)


def _children_text(path: Path = MINIMAL) -> str:
    text = path.read_text(encoding="utf-8")
    start = text.index("<Child>")
    return text[start : text.rindex("</Children>")]


def _lxml(text: str) -> dict | None:
    """The reference: lxml's element-by-element parser over the same text."""
    with tempfile.NamedTemporaryFile(suffix=".xml", delete=False) as handle:
        handle.write(text.encode("utf-8"))
    try:
        result = parallel._parse_range_lxml(handle.name, 0, len(text.encode()), "")
    finally:
        Path(handle.name).unlink()
    return result if result["ok"] else None


def _readers(text: str) -> dict[str, dict | None]:
    out = {"polars": polars_reader.parse_children(text)}
    if native.AVAILABLE:
        out["native"] = native.parse_children(text.encode("utf-8"))
    return out


def _assert_same(result: dict, reference: dict) -> None:
    for table, frame in reference["frames"].items():
        assert_frame_equal(result["frames"][table], frame, check_dtypes=True)
    for key in ("counts", "children", "episodes", "cpps", "newlines", "strays"):
        assert result[key] == reference[key], key


def _variants() -> dict[str, str]:
    pretty = _children_text()
    compact = "".join(line.strip() for line in pretty.splitlines())
    many = "\n".join(
        pretty.replace("CHILD0001", f"CHILD{i:04d}").replace("2023-05-10", f"2023-05-{10 + i}")
        for i in range(5)
    )
    return {
        "pretty": pretty,
        "compact": compact,
        "many children": many,
        "crlf": pretty.replace("\n", "\r\n"),
        "tabs": pretty.replace("  ", "\t"),
        "self-closing empties": pretty.replace(
            "<UPNunknown>UN1</UPNunknown>", "<UPN/><UPNunknown>UN1</UPNunknown>"
        ).replace("<CPPendDate>2024-02-20</CPPendDate>", "<CPPendDate/>"),
        "blank and padded values": pretty.replace(
            "<PrimaryNeedCode>N1</PrimaryNeedCode>", "<PrimaryNeedCode>\n  n1 \n</PrimaryNeedCode>"
        ).replace("<CPPendDate>2024-02-20</CPPendDate>", "<CPPendDate>   </CPPendDate>"),
        "lower-case codes": pretty.replace("<Disability>NONE", "<Disability> none")
        .replace(">3A<", "> 3a <")
        .replace(
            "<Disabilities><Disability> none</Disability>",
            "<Disabilities><Disability> none</Disability><Disability>mob</Disability><Disability></Disability>",
        ),
        "non-ASCII inside a value": pretty.replace("CHILD0001", "CHÏLD-ß1"),
        "empty containers": pretty.replace(
            "<Disabilities><Disability>NONE</Disability></Disabilities>", "<Disabilities/>"
        ),
        "no episodes": compact.split("<CINdetails>")[0] + "</Child>",
        "episode-level and s47 icpc": pretty.replace(
            "<DateOfInitialCPC>2023-06-02</DateOfInitialCPC>\n        <Assessments>",
            "<DateOfInitialCPC>2023-06-03</DateOfInitialCPC>\n        <Assessments>",
        ),
        "plans and reviews twice": pretty.replace(
            "</ChildProtectionPlans>",
            "</ChildProtectionPlans><ChildProtectionPlans><CPPstartDate>2024-03-01</CPPstartDate>"
            "<Reviews><CPPreviewDate>2024-03-20</CPPreviewDate></Reviews></ChildProtectionPlans>",
        ),
        "cin plans": pretty.replace(
            "<Section47>",
            "<CINPlanDates><CINPlanStartDate>2023-07-01</CINPlanStartDate></CINPlanDates>"
            "<CINPlanDates><CINPlanStartDate>2023-09-01</CINPlanStartDate>"
            "<CINPlanEndDate>2023-12-01</CINPlanEndDate></CINPlanDates><Section47>",
        ),
    }


@pytest.mark.parametrize("name", sorted(_variants()))
def test_fast_readers_accept_and_match_lxml(name: str) -> None:
    text = _variants()[name]
    reference = _lxml(text)
    assert reference is not None
    for reader, result in _readers(text).items():
        assert result is not None, f"{reader} declined {name!r}"
        _assert_same(result, reference)


DECLINED = {
    "attribute": ("<LAchildID>", '<LAchildID id="1">'),
    "comment": ("<UPNunknown>", "<!-- note --><UPNunknown>"),
    "entity": ("CHILD0001", "CHILD&amp;0001"),
    "character reference": ("CHILD0001", "CHILD&#65;0001"),
    "cdata": ("CHILD0001", "<![CDATA[CHILD0001]]>"),
    "processing instruction": ("<Ethnicity>", "<?pi x?><Ethnicity>"),
    "elements out of schema order": (
        "<ReferralSource>3B</ReferralSource>",
        "<ReferralNFA>false</ReferralNFA><ReferralSource>3B</ReferralSource>",
    ),
    "repeated leaf": (
        "<Ethnicity>WBRI</Ethnicity>",
        "<Ethnicity>WBRI</Ethnicity><Ethnicity>A</Ethnicity>",
    ),
    "unknown element": ("<Ethnicity>", "<Religion>X</Religion><Ethnicity>"),
    "misplaced record": (
        "<Ethnicity>WBRI</Ethnicity>",
        "<Ethnicity>WBRI</Ethnicity><CPPreviewDate>2023-01-01</CPPreviewDate>",
    ),
    "greater-than in a value": ("CHILD0001", "CHILD>0001"),
    "lone carriage return": ("<UPNunknown>", "\r<UPNunknown>"),
    "control character": ("CHILD0001", "CHILD\x010001"),
    "non-character U+FFFF": ("CHILD0001", "CHILD\uffff0001"),
    "space in a close tag": ("</Child>", "</Child >"),
    "namespace prefix": ("<Ethnicity>WBRI</Ethnicity>", "<x:Ethnicity>WBRI</x:Ethnicity>"),
    "text between elements": ("<Ethnicity>", "stray text<Ethnicity>"),
    "unclosed element": ("</Ethnicity>", ""),
    "mismatched close": ("</Ethnicity>", "</Ethnicty>"),
    "non-breaking space at a value's edge": ("CHILD0001", "CHILD0001\u00a0"),
}


@pytest.mark.parametrize("name", sorted(DECLINED))
def test_fast_readers_decline_what_they_do_not_handle(name: str) -> None:
    old, new = DECLINED[name]
    text = _children_text()
    assert old in text
    mutated = text.replace(old, new, 1)
    results = _readers(mutated)
    if name == "non-breaking space at a value's edge":
        results.pop("polars")  # the polars reader strips Unicode space exactly as Python does
        reference = _lxml(mutated)
        assert reference is not None
        _assert_same(polars_reader.parse_children(mutated), reference)
    for reader, result in results.items():
        assert result is None, f"{reader} accepted text with {name}"


@pytest.mark.parametrize("path", GOOD_FIXTURES, ids=lambda p: p.name)
@pytest.mark.parametrize("compiled", [True, False], ids=["native", "polars"])
def test_whole_loads_equal_the_lxml_load(
    path: Path, compiled: bool, demo_key, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = read_cin_xml(path, demo_key, workers=1, columnar=False)
    if not compiled:
        monkeypatch.setattr(native, "_cinfast", None)
    elif not native.AVAILABLE:
        pytest.skip("compiled reader not built")
    fast = read_cin_xml(path, demo_key, workers=1)
    for table in CIN_TABLES:
        assert_frame_equal(fast.tables[table], reference.tables[table])
    assert_frame_equal(fast.rejects, reference.rejects)
    assert_frame_equal(fast.reconciliation, reference.reconciliation)
    assert fast.detected == reference.detected


@native_only
def test_synthetic_returns_are_read_by_the_compiled_reader(
    tmp_path: Path, demo_key, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The generator's returns (clean and messy) take the fast route and load as lxml loads them."""
    from cinresearch.synth.generate import generate

    generate(
        tmp_path / "synth", las=2, years=(2022, 2025), scale=150, seed=3, mess=True, progress=False
    )
    files = sorted((tmp_path / "synth").rglob("*.xml"))
    assert files
    accepted = []
    real = native.parse_children

    def spy(data: bytes):
        result = real(data)
        accepted.append(result is not None)
        return result

    monkeypatch.setattr(native, "parse_children", spy)
    for path in files:
        try:
            reference = read_cin_xml(path, demo_key, workers=1, columnar=False)
        except Exception as err:  # a file-level fault planted by --mess: same error both ways
            with pytest.raises(type(err)):
                read_cin_xml(path, demo_key, workers=1)
            continue
        fast = read_cin_xml(path, demo_key, workers=1)
        for table in CIN_TABLES:
            assert_frame_equal(fast.tables[table], reference.tables[table])
        assert_frame_equal(fast.rejects, reference.rejects)
    assert sum(accepted) >= len(files) // 2, accepted


# -- the soundness property, on random mutations ---------------------------------------------------
_SIGNIFICANT = ["<", ">", "/", "&", "=", '"', " ", "\n", "\r", "A", "!", "?", "\x00", "é", "C"]
_BASE = _children_text().replace("CHILD0001", "C1")


@st.composite
def _mutations(draw) -> str:
    text = _BASE
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "cut-tag"]))
        char = draw(st.sampled_from(_SIGNIFICANT))
        if action == "insert":
            text = text[:at] + char + text[at:]
        elif action == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 12)) :]
        elif action == "replace":
            text = text[:at] + char + text[at + 1 :]
        else:  # move an element name somewhere else
            start = text.find("<", at)
            if start >= 0:
                end = text.find(">", start)
                tag = text[start : end + 1]
                text = text[:start] + text[end + 1 :]
                spot = draw(st.integers(0, len(text)))
                text = text[:spot] + tag + text[spot:]
    return text


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(_mutations())
def test_a_fast_reader_never_accepts_what_lxml_reads_otherwise(text: str) -> None:
    results = _readers(text)
    if all(result is None for result in results.values()):
        return
    reference = _lxml(text)
    for reader, result in results.items():
        if result is None:
            continue
        assert reference is not None, f"{reader} accepted text lxml rejects: {text!r}"
        _assert_same(result, reference)


def test_declared_encodings() -> None:
    assert parallel.utf8_declared(b'<?xml version="1.0" encoding="UTF-8"?><Message>')
    assert parallel.utf8_declared(b"\xef\xbb\xbf<?xml version='1.0'?><Message>")
    assert parallel.utf8_declared(b"<Message>")
    assert not parallel.utf8_declared(b'<?xml version="1.0" encoding="ISO-8859-1"?>')


def test_latin1_file_is_not_cut_into_utf8_ranges(tmp_path: Path, demo_key) -> None:
    text = MINIMAL.read_text(encoding="utf-8").replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')
    path = tmp_path / "latin1.xml"
    path.write_bytes(text.replace("CHILD0001", "CHÏLD0001").encode("latin-1"))
    assert parallel.plan_ranges(path, 2) is None
    load = read_cin_xml(path, demo_key, workers=1)
    reference = read_cin_xml(path, demo_key, workers=1, columnar=False)
    assert_frame_equal(load.tables["children"], reference.tables["children"])
    assert load.tables["children"].height == 1


def test_raw_identifiers_do_not_leave_the_parsing_process(demo_key) -> None:
    """Children frames come back from a range parse already pseudonymised."""
    plan = parallel.plan_ranges(MINIMAL, 1)
    assert plan is not None
    parsed = parallel.parse_parallel(
        MINIMAL, "", 1, 0, columnar=True, pseudonymiser=(demo_key, "999")
    )
    assert parsed is not None
    children = parsed[0]["children"]
    assert "la_child_id" not in children.columns and "upn" not in children.columns
    assert children.get_column("child_id").to_list() == [demo_key.child_id("999", "CHILD0001")]
    assert (
        not pl.concat([f.select(pl.all().cast(pl.String)) for f in [children]], how="vertical")
        .select(pl.any_horizontal(pl.all().str.contains("CHILD0001")).any())
        .item()
    )


@native_only
@pytest.mark.parametrize(
    "value",
    [
        b"\xff",
        b"\xc0\xaf",
        b"\xed\xa0\x80",
        b"\xe2\x82",
        b"\xc3",
        b"\xf4\x90\x80\x80",
        b"\xe0\x80\x80",
    ]
    + [b"\xef\xbf\xbf", b"\xef\xbf\xbe"],  # valid UTF-8, but not XML characters
)
def test_compiled_reader_declines_invalid_utf8_and_non_characters(value: bytes) -> None:
    data = _children_text().encode().replace(b"CHILD0001", b"CH" + value + b"ILD")
    assert native.parse_children(data) is None


@native_only
def test_compiled_reader_accepts_multibyte_characters_inside_values() -> None:
    text = _children_text().replace("CHILD0001", "C-é€𝄞\ufffd-1")
    result = native.parse_children(text.encode())
    assert result is not None
    _assert_same(result, _lxml(text))


def test_fast_readers_read_the_query_only_return_as_lxml_does() -> None:
    """Both birth dates, unknown factors and disabilities: no fast reader steps aside."""
    text = _children_text(FIXTURES / "cin_2024_209_queries.xml")
    reference = _lxml(text)
    assert reference is not None
    for reader, result in _readers(text).items():
        assert result is not None, f"{reader} declined the query-only return"
        _assert_same(result, reference)
