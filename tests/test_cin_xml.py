"""CIN census XML reader: every census year's shape, tolerated mess, refused files, bad records.

Fixtures are tiny hand-written returns in tests/fixtures/cin/ (one story per file):

* ``cin_2018_201_booleans01.xml`` — 2017-18: booleans 0/1, factor 18A, an unborn child, NONE
  disability, a second (NFA) episode;
* ``cin_2022_202_plans.xml`` — 2021-22: CINPlanDates, factor 24A, booleans TRUE/false, FormerUPN;
* ``cin_2025_203_sex.xml`` — 2024-25: ``<Sex>`` M/U instead of GenderCurrent, codes 5D/RC9;
* ``cin_2025_204_mixed.xml`` — a 2024-25 return mixing GenderCurrent and Sex;
* ``cin_2023_205_namespace.xml`` — a default namespace on every element;
* ``cin_2019_206_bom.xml`` — UTF-8 BOM and no XML declaration;
* ``cin_2020_207_messy.xml`` — stray text between elements, a comment, lower-case/padded codes;
* ``cin_2024_208_record_faults.xml`` — record-level faults, each marked by a ``case`` comment on
  the line above the faulty element (line numbers in the tests are derived from those comments);
* ``cin_2024_209_queries.xml`` — only queries and bad codes in lists (both birth dates, no birth
  date, death before birth, NONE beside other disabilities, an unknown disability, unknown
  factors beside valid ones and alone, ...): every record is kept, the problems are flagged;
* ``bad_*.xml`` — one file-level fault each.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from conftest import CIN_FIXTURES, cin_fixture
from polars.testing import assert_frame_equal

from cinresearch import contracts
from cinresearch.io.cin import CIN_TABLES, CinFileError, CinLoad, parallel, read_cin_xml
from cinresearch.pseudonymise import Pseudonymiser, make_upn, upn_is_valid

# Exact columns of the loaded CIN tables, as fixed in docs/tables.md.
TABLE_COLUMNS = {
    "children": [
        "child_id",
        "la_code",
        "census_year",
        "upn_hash",
        "former_upn_hash",
        "upn_unknown",
        "birth_date",
        "expected_birth_date",
        "sex",
        "sex_element",
        "ethnicity",
        "death_date",
        "disabled",
    ],
    "disabilities": ["child_id", "la_code", "census_year", "disability"],
    "referrals": [
        "child_id",
        "la_code",
        "census_year",
        "referral_date",
        "referral_source",
        "primary_need",
        "closure_date",
        "closure_reason",
        "referral_nfa",
        "icpc_date",
    ],
    "assessments": [
        "child_id",
        "la_code",
        "census_year",
        "referral_date",
        "assessment_start",
        "assessment_review",
        "assessment_authorised",
        "factors",
    ],
    "cin_plans": [
        "child_id",
        "la_code",
        "census_year",
        "referral_date",
        "cin_plan_start",
        "cin_plan_end",
    ],
    "section47": [
        "child_id",
        "la_code",
        "census_year",
        "referral_date",
        "s47_start",
        "icpc_target",
        "icpc_date",
        "icpc_not_required",
    ],
    "cp_plans": [
        "child_id",
        "la_code",
        "census_year",
        "referral_date",
        "cpp_start",
        "cpp_end",
        "initial_category",
        "latest_category",
        "previous_cpps",
    ],
    "cpp_reviews": [
        "child_id",
        "la_code",
        "census_year",
        "referral_date",
        "cpp_start",
        "review_date",
    ],
}

GOOD_FILES = [
    "cin_2018_201_booleans01.xml",
    "cin_2019_206_bom.xml",
    "cin_2020_207_messy.xml",
    "cin_2022_202_plans.xml",
    "cin_2023_205_namespace.xml",
    "cin_2024_minimal.xml",
    "cin_2025_203_sex.xml",
    "cin_2025_204_mixed.xml",
]


def d(text: str) -> date:
    return date.fromisoformat(text)


def frame(table: str, rows: list[dict]) -> pl.DataFrame:
    """Expected rows of a loaded table with the contract's exact schema."""
    schema = contracts.schema(table)
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


def check(load: CinLoad, table: str, rows: list[dict]) -> None:
    assert_frame_equal(load.tables[table], frame(table, rows))


def load(name: str, key: Pseudonymiser) -> CinLoad:
    return read_cin_xml(cin_fixture(name), key)


# -- columns and reconciliation on every good fixture -----------------------------------------
@pytest.mark.parametrize("name", GOOD_FILES)
def test_good_returns_have_exact_columns_no_rejects_and_balance(name, demo_key):
    result = load(name, demo_key)
    assert set(result.tables) == set(CIN_TABLES)
    for table, columns in TABLE_COLUMNS.items():
        assert result.tables[table].columns == columns, table
        assert result.tables[table].schema == contracts.schema(table), table
    assert result.rejects.is_empty(), result.rejects.to_dicts()
    assert result.reconciliation.get_column("balanced").all()
    assert result.counts()["balanced"] is True


# -- 2017-18: booleans 0/1, factor 18A ---------------------------------------------------------
def test_2017_18_return(demo_key):
    result = load("cin_2018_201_booleans01.xml", demo_key)
    a = demo_key.child_id("201", "RAW-A-1001")
    b = demo_key.child_id("201", "RAW-B-2002")
    base = {"la_code": "201", "census_year": 2018}
    assert result.header.la_code == "201" and result.header.census_year == 2018
    assert result.header.reference_date == d("2018-03-31")
    check(
        result,
        "children",
        [
            {
                "child_id": a,
                **base,
                "upn_hash": demo_key.upn("J201123410001"),
                "former_upn_hash": None,
                "upn_unknown": None,
                "birth_date": d("2010-04-15"),
                "expected_birth_date": None,
                "sex": "M",
                "sex_element": "GenderCurrent",
                "ethnicity": "WBRI",
                "death_date": None,
                "disabled": True,
            },
            {
                "child_id": b,
                **base,
                "upn_hash": None,
                "former_upn_hash": None,
                "upn_unknown": "UN1",
                "birth_date": None,
                "expected_birth_date": d("2018-05-01"),
                "sex": "U",
                "sex_element": "GenderCurrent",
                "ethnicity": "NOBT",
                "death_date": None,
                "disabled": False,
            },
        ],
    )
    # NONE is not stored: child B has no disability rows
    check(
        result,
        "disabilities",
        [
            {"child_id": a, **base, "disability": "MOB"},
            {"child_id": a, **base, "disability": "LD"},
        ],
    )
    check(
        result,
        "referrals",
        [
            {
                "child_id": a,
                **base,
                "referral_date": d("2017-06-01"),
                "referral_source": "1A",
                "primary_need": "N1",
                "closure_date": d("2018-02-01"),
                "closure_reason": "RC7",
                "referral_nfa": False,
                "icpc_date": d("2017-06-20"),
            },
            {
                "child_id": a,
                **base,
                "referral_date": d("2018-03-01"),
                "referral_source": "6",
                "primary_need": None,
                "closure_date": None,
                "closure_reason": None,
                "referral_nfa": True,
                "icpc_date": None,
            },
            {
                "child_id": b,
                **base,
                "referral_date": d("2018-01-10"),
                "referral_source": "3B",
                "primary_need": "N3",
                "closure_date": None,
                "closure_reason": None,
                "referral_nfa": False,
                "icpc_date": None,
            },
        ],
    )
    check(
        result,
        "assessments",
        [
            {
                "child_id": a,
                **base,
                "referral_date": d("2017-06-01"),
                "assessment_start": d("2017-06-02"),
                "assessment_review": None,
                "assessment_authorised": d("2017-07-20"),
                "factors": ["18A", "3B"],
            },
            {
                "child_id": b,
                **base,
                "referral_date": d("2018-01-10"),
                "assessment_start": d("2018-01-11"),
                "assessment_review": None,
                "assessment_authorised": None,
                "factors": ["4B"],
            },
        ],
    )
    check(result, "cin_plans", [])
    check(
        result,
        "section47",
        [
            {
                "child_id": a,
                **base,
                "referral_date": d("2017-06-01"),
                "s47_start": d("2017-06-05"),
                "icpc_target": d("2017-06-26"),
                "icpc_date": d("2017-06-20"),
                "icpc_not_required": False,
            }
        ],
    )
    check(
        result,
        "cp_plans",
        [
            {
                "child_id": a,
                **base,
                "referral_date": d("2017-06-01"),
                "cpp_start": d("2017-06-20"),
                "cpp_end": d("2018-02-01"),
                "initial_category": "PHY",
                "latest_category": "NEG",
                "previous_cpps": 0,
            }
        ],
    )
    check(
        result,
        "cpp_reviews",
        [
            {
                "child_id": a,
                **base,
                "referral_date": d("2017-06-01"),
                "cpp_start": d("2017-06-20"),
                "review_date": d("2017-09-10"),
            }
        ],
    )
    assert result.detected == (
        "census year 2018 (2017-18) return for LA 201; GenderCurrent; no CINPlanDates"
    )
    rec = result.reconciliation.select("element", "read", "loaded", "rejected").rows()
    assert rec == [
        ("Child", 2, 2, 0),
        ("Disability", 2, 2, 0),  # NONE is read but not a row: excluded from `read`
        ("CINdetails", 3, 3, 0),
        ("Assessments", 2, 2, 0),
        ("CINPlanDates", 0, 0, 0),
        ("Section47", 1, 1, 0),
        ("ChildProtectionPlans", 1, 1, 0),
        ("CPPreviewDate", 1, 1, 0),
    ]


# -- 2021-22: CINPlanDates, 24A, true/false ----------------------------------------------------
def test_2021_22_return_with_cin_plans(demo_key):
    result = load("cin_2022_202_plans.xml", demo_key)
    c = demo_key.child_id("202", "RAW-C-3003")
    base = {"la_code": "202", "census_year": 2022, "referral_date": d("2021-05-04")}
    child = result.tables["children"].row(0, named=True)
    assert child["upn_hash"] == demo_key.upn("E202300115009")
    assert child["former_upn_hash"] == demo_key.upn("T201222212005")
    assert (child["sex"], child["sex_element"], child["disabled"]) == ("F", "GenderCurrent", True)
    check(
        result,
        "cin_plans",
        [
            {
                "child_id": c,
                **base,
                "cin_plan_start": d("2021-06-16"),
                "cin_plan_end": d("2021-12-01"),
            },
            {"child_id": c, **base, "cin_plan_start": d("2022-01-10"), "cin_plan_end": None},
        ],
    )
    check(
        result,
        "assessments",
        [
            {
                "child_id": c,
                **base,
                "assessment_start": d("2021-05-05"),
                "assessment_review": d("2021-05-20"),
                "assessment_authorised": d("2021-06-15"),
                "factors": ["24A", "18C", "10A"],
            }
        ],
    )
    # ICPCnotRequired TRUE (upper case) and ReferralNFA false
    check(
        result,
        "section47",
        [
            {
                "child_id": c,
                **base,
                "s47_start": d("2021-09-01"),
                "icpc_target": None,
                "icpc_date": None,
                "icpc_not_required": True,
            }
        ],
    )
    assert result.tables["referrals"].get_column("referral_nfa").to_list() == [False]
    assert result.detected == (
        "census year 2022 (2021-22) return for LA 202; GenderCurrent; CINPlanDates present"
    )


# -- 2024-25: <Sex> ------------------------------------------------------------------------------
def test_2024_25_return_with_sex_element(demo_key):
    result = load("cin_2025_203_sex.xml", demo_key)
    children = result.tables["children"]
    assert children.get_column("child_id").to_list() == [
        demo_key.child_id("203", "RAW-D-4004"),
        demo_key.child_id("203", "RAW-E-5005"),
    ]
    assert children.get_column("sex").to_list() == ["M", "U"]
    assert children.get_column("sex_element").to_list() == ["Sex", "Sex"]
    assert children.get_column("upn_unknown").to_list() == [None, "UN7"]
    referrals = result.tables["referrals"]
    assert referrals.get_column("referral_source").to_list() == ["5D", "10"]
    assert referrals.get_column("closure_reason").to_list() == ["RC9", None]
    # the first is not NFA: it had an assessment (8831)
    assert referrals.get_column("referral_nfa").to_list() == [False, True]
    assert result.tables["assessments"].get_column("factors").to_list() == [["21"]]
    assert result.detected == "census year 2025 (2024-25) return for LA 203; Sex; no CINPlanDates"
    assert result.elements_seen == {"GenderCurrent": 0, "Sex": 2, "CINPlanDates": 0}


def test_mixed_sex_elements_in_a_2024_25_return(demo_key):
    result = load("cin_2025_204_mixed.xml", demo_key)
    children = result.tables["children"]
    assert children.select("sex", "sex_element").rows() == [
        ("F", "GenderCurrent"),
        ("F", "Sex"),
    ]
    assert result.detected == (
        "census year 2025 (2024-25) return for LA 204; GenderCurrent and Sex "
        "(expected Sex in 2024-25); no CINPlanDates"
    )
    assert result.elements_seen == {"GenderCurrent": 1, "Sex": 1, "CINPlanDates": 0}


# -- tolerated mess --------------------------------------------------------------------------
def test_default_namespace_is_read_like_no_namespace(demo_key):
    result = load("cin_2023_205_namespace.xml", demo_key)
    h = demo_key.child_id("205", "RAW-H-8008")
    assert result.header.la_code == "205" and result.header.census_year == 2023
    child = result.tables["children"].row(0, named=True)
    assert child["child_id"] == h
    assert (child["sex"], child["ethnicity"], child["disabled"]) == ("U", "CHNE", True)
    assert result.tables["disabilities"].get_column("disability").to_list() == ["HEAR"]
    assert result.tables["section47"].height == 1
    plans = result.tables["cp_plans"]
    assert plans.select("initial_category", "latest_category", "previous_cpps").rows() == [
        ("SAB", "MUL", 2)
    ]
    assert result.tables["cpp_reviews"].get_column("review_date").to_list() == [
        d("2022-11-20"),
        d("2023-02-15"),
    ]
    assert result.detected.startswith("census year 2023 (2022-23) return for LA 205")


def test_bom_without_xml_declaration(demo_key):
    assert cin_fixture("cin_2019_206_bom.xml").read_bytes()[:4] == b"\xef\xbb\xbf<"
    result = load("cin_2019_206_bom.xml", demo_key)
    assert result.header.census_year == 2019 and result.header.la_code == "206"
    check(
        result,
        "referrals",
        [
            {
                "child_id": demo_key.child_id("206", "RAW-I-9009"),
                "la_code": "206",
                "census_year": 2019,
                "referral_date": d("2018-08-08"),
                "referral_source": "7",
                "primary_need": "N6",
                "closure_date": None,
                "closure_reason": None,
                "referral_nfa": False,
                "icpc_date": None,
            }
        ],
    )


def test_stray_text_comments_lower_case_and_padded_values(demo_key):
    result = load("cin_2020_207_messy.xml", demo_key)
    child = result.tables["children"].row(0, named=True)
    # padded LAchildID is stripped before hashing; lower-case UPN links to the upper-case one
    assert child["child_id"] == demo_key.child_id("207", "RAW-J-1010")
    assert child["upn_hash"] == demo_key.upn("J201123410001")
    assert (child["birth_date"], child["sex"], child["ethnicity"]) == (d("2013-05-05"), "F", "WBRI")
    assert result.tables["disabilities"].get_column("disability").to_list() == ["BEH", "COMM"]
    ref = result.tables["referrals"].row(0, named=True)
    assert (ref["referral_source"], ref["primary_need"], ref["closure_reason"]) == (
        "1A",
        "N5",
        "RC3",
    )
    assert ref["referral_nfa"] is False  # " False "
    assert result.tables["assessments"].get_column("factors").to_list() == [["1B", "19A"]]
    plan = result.tables["cp_plans"].row(0, named=True)
    assert (plan["initial_category"], plan["latest_category"], plan["previous_cpps"]) == (
        "EMO",
        "NEG",
        1,
    )
    assert result.header.census_year == 2020  # "<Year> 2020 </Year>"


def test_same_child_links_across_files_by_upn_not_by_la_child_id(demo_key):
    a2018 = load("cin_2018_201_booleans01.xml", demo_key).tables["children"]
    j2020 = load("cin_2020_207_messy.xml", demo_key).tables["children"]
    assert a2018.get_column("upn_hash")[0] == j2020.get_column("upn_hash")[0]
    assert a2018.get_column("child_id")[0] != j2020.get_column("child_id")[0]


def test_child_id_depends_on_la_and_key():
    k1, k2 = Pseudonymiser(b"key-one"), Pseudonymiser(b"key-two")
    assert k1.child_id("201", "X1") != k1.child_id("202", "X1")
    assert k1.child_id("201", "X1") != k2.child_id("201", "X1")
    assert k1.child_id("201", " X1 ") == k1.child_id("201", "X1")
    assert len(k1.child_id("201", "X1")) == 20
    assert re.fullmatch(r"[0-9a-f]{20}", k1.upn("J201123410001"))


# -- file-level faults -------------------------------------------------------------------------
# (fixture, line, words the message must contain)
BAD_FILES = [
    ("bad_truncated.xml", 44, "not well-formed XML"),
    ("bad_wrong_root.xml", 3, "<Message> root"),
    ("bad_not_xml.xml", 1, "not well-formed XML"),
    ("bad_latin1_declared_utf8.xml", 16, "encoding"),
    ("bad_no_lea.xml", 3, "LEA must be a 3-digit LA number"),
    ("bad_unsupported_year.xml", 3, "census year 2015 is not supported"),
    ("bad_billion_laughs.xml", 1, "DTD or entity declaration is not allowed"),
    ("bad_external_entity.xml", 1, "DTD or entity declaration is not allowed"),
]


@pytest.mark.parametrize(("name", "line", "words"), BAD_FILES)
def test_file_level_faults_raise_cin_file_error_naming_file_and_line(name, line, words, demo_key):
    with pytest.raises(CinFileError) as info:
        read_cin_xml(cin_fixture(name), demo_key)
    err = info.value
    assert err.line == line
    assert words in err.message
    assert str(err).startswith(f"{name}:{line}: ")
    assert "\n" not in str(err)


def _with_prolog_padding(name: str, tmp_path: Path) -> Path:
    """The fixture with a 5,000-byte comment before its DTD (past the fast byte sniff)."""
    text = cin_fixture(name).read_text(encoding="utf-8")
    declaration, rest = text.split("\n", 1)
    path = tmp_path / f"padded_{name}"
    path.write_text(f"{declaration}\n<!--{'x' * 5000}-->\n{rest}", encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["bad_billion_laughs.xml", "bad_external_entity.xml"])
def test_dtd_after_a_long_comment_is_still_refused(name, demo_key, tmp_path):
    path = _with_prolog_padding(name, tmp_path)
    with pytest.raises(CinFileError, match="DTD or entity declaration is not allowed"):
        read_cin_xml(path, demo_key)


def test_dtd_in_utf16_file_is_refused(demo_key, tmp_path):
    text = cin_fixture("bad_external_entity.xml").read_text(encoding="utf-8")
    path = tmp_path / "utf16_entity.xml"
    path.write_bytes(text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16"))
    with pytest.raises(CinFileError, match="DTD"):
        read_cin_xml(path, demo_key)


def test_utf16_file_with_bom_is_read(demo_key, tmp_path):
    text = cin_fixture("cin_2024_minimal.xml").read_text(encoding="utf-8")
    path = tmp_path / "utf16.xml"
    path.write_bytes(text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16"))
    assert read_cin_xml(path, demo_key).tables["children"].height == 1


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "file is empty"),
        (b"   \n\n", "file is empty"),
        (b"<Message><Children/></Message>", "no <Header>"),
        (b"<html><body>hello</body></html>", "root element is not <Message>"),
        (
            b"<Message><Children><Child/></Children><Header/></Message>",
            "<Child> before <Header>",
        ),
        (
            b"<Message><Header><CollectionDetails><Collection>CLA</Collection><Year>2024</Year>"
            b"</CollectionDetails><Source><LEA>201</LEA></Source></Header></Message>",
            "not CIN",
        ),
        (
            b"<Message><Header><Source><LEA>201</LEA></Source></Header></Message>",
            "neither CollectionDetails/Year nor ReferenceDate",
        ),
        (
            "<Message><Header><CollectionDetails><Year>²⁰²⁴</Year></CollectionDetails>"
            "<Source><LEA>201</LEA></Source></Header></Message>".encode(),
            "neither CollectionDetails/Year nor ReferenceDate",
        ),
    ],
)
def test_more_file_level_faults(content, words, demo_key, tmp_path):
    path = tmp_path / "return.xml"
    path.write_bytes(content)
    with pytest.raises(CinFileError, match=re.escape(words)) as info:
        read_cin_xml(path, demo_key)
    assert str(info.value).startswith("return.xml")


def test_header_year_falls_back_to_reference_date_with_a_note(demo_key, tmp_path):
    text = cin_fixture("cin_2024_minimal.xml").read_text(encoding="utf-8")
    path = tmp_path / "noyear.xml"
    path.write_text(text.replace("<Year>2024</Year>", ""), encoding="utf-8")
    result = read_cin_xml(path, demo_key)
    assert result.header.census_year == 2024
    assert result.header.notes == [
        "header Year missing; census year 2024 taken from ReferenceDate 2024-03-31"
    ]


# -- record-level faults -----------------------------------------------------------------------
FAULTS = "cin_2024_208_record_faults.xml"


def case_line(case: str) -> int:
    """Line of the element just below ``<!-- case NAME -->`` in the record-faults fixture."""
    for number, text in enumerate(cin_fixture(FAULTS).read_text().splitlines(), start=1):
        if text.strip() == f"<!-- case {case} -->":
            return number + 1
    raise AssertionError(f"no case {case}")


def test_record_level_faults_are_rejected_with_file_line_rule_and_message(demo_key):
    result = load(FAULTS, demo_key)
    rejects = result.rejects
    assert (rejects.get_column("source_file") == FAULTS).all()
    assert rejects.get_column("line").null_count() == 0
    assert (rejects.get_column("message").str.len_chars() > 0).all()
    assert (rejects.get_column("census_year") == 2024).all()
    assert (rejects.get_column("la_code") == "208").all()
    actions = dict(zip(rejects["rule"], rejects["action"], strict=True))
    assert actions.pop("cr_assessment_factor_code") == "drop_value"
    assert set(actions.values()) == {"reject_record"}
    got = set(rejects.select("table", "rule", "line").rows())
    expected = {
        ("children", "type:birth_date", case_line("invalid_birth_date")),
        ("children", "required:child_id", case_line("missing_child_id")),
        ("children", "8500", case_line("missing_child_id")),
        ("children", "8510", case_line("duplicate_child_first")),
        ("children", "8510", case_line("duplicate_child_second")),
        ("children", "schema:repeated_element", case_line("element_twice")),
        ("children", "code:ethnicity", case_line("unknown_ethnicity")),
        ("disabilities", "parent_rejected", case_line("disability_of_rejected_child")),
        ("referrals", "parent_rejected", case_line("episode_of_rejected_child")),
        ("referrals", "type:referral_date", case_line("invalid_referral_date")),
        ("referrals", "code:referral_source", case_line("unknown_referral_source")),
        ("referrals", "8630", case_line("closure_before_referral")),
        ("assessments", "parent_rejected", case_line("assessment_of_rejected_episode")),
        ("assessments", "cr_assessment_factor_code", case_line("unknown_factor")),
        ("cp_plans", "8925", case_line("cpp_end_before_start")),
        ("cpp_reviews", "parent_rejected", case_line("review_of_rejected_cpp")),
    }
    assert expected <= got, expected - got
    # the episodes of the six rejected children are rejected with them, and nothing else is
    parent = rejects.filter(pl.col("table") == "referrals", pl.col("rule") == "parent_rejected")
    assert parent.height == 6
    assert got - expected == {("referrals", "parent_rejected", line) for line in _extra_lines()}
    messages = dict(zip(rejects["rule"], rejects["message"], strict=True))
    assert messages["8630"] == "Closure date before referral date"
    assert messages["8925"] == "CP plan ends before it starts"
    assert messages["type:referral_date"] == "referral_date is not a date (YYYY-MM-DD)"


def _extra_lines() -> list[int]:
    """Lines of the <CINdetails> of rejected children other than invalid_birth_date's."""
    lines = cin_fixture(FAULTS).read_text().splitlines()
    out = []
    for case in (
        "duplicate_child_first",
        "duplicate_child_second",
        "missing_child_id",
        "element_twice",
        "unknown_ethnicity",
    ):
        start = case_line(case)
        out.append(next(n for n in range(start, len(lines)) if "<CINdetails>" in lines[n - 1]))
    return out


def test_the_rest_of_a_faulty_file_loads_and_reconciles(demo_key):
    result = load(FAULTS, demo_key)
    good1 = demo_key.child_id("208", "RAW-GOOD-01")
    good6 = demo_key.child_id("208", "RAW-GOOD-06")
    assert result.tables["children"].get_column("child_id").to_list() == [good1, good6]
    assert result.tables["referrals"].select("child_id", "referral_date").rows() == [
        (good1, d("2023-04-20")),
        (good1, d("2024-01-05")),
        (good6, d("2023-12-12")),
    ]
    assert result.tables["cp_plans"].get_column("cpp_start").to_list() == [d("2023-09-01")]
    # the assessment with an unknown factor beside a valid one is kept, without the bad code
    assert result.tables["assessments"].select("assessment_start", "factors").rows() == [
        (d("2024-01-06"), ["4B"])
    ]
    assert result.tables["cpp_reviews"].is_empty()
    rec = result.reconciliation.select("element", "read", "loaded", "rejected", "balanced").rows()
    assert rec == [
        ("Child", 8, 2, 6, True),
        ("Disability", 1, 0, 1, True),
        ("CINdetails", 12, 3, 9, True),
        ("Assessments", 2, 1, 1, True),
        ("CINPlanDates", 0, 0, 0, True),
        ("Section47", 0, 0, 0, True),
        ("ChildProtectionPlans", 2, 1, 1, True),
        ("CPPreviewDate", 1, 0, 1, True),
    ]
    counts = result.counts()
    assert counts["balanced"] is True
    assert counts["rejected"] + counts["dropped_values"] == result.rejects.height
    assert counts["dropped_values"] == 1 and counts["flagged"] == 0


def test_reject_records_are_json_with_pseudonymised_ids(demo_key):
    result = load(FAULTS, demo_key)
    for row in result.rejects.iter_rows(named=True):
        record = json.loads(row["record"])
        assert "child_id" in record
        assert record["child_id"] is None or re.fullmatch(r"[0-9a-f]{20}", record["child_id"])
        assert "RAW-" not in row["record"]


def test_same_element_given_twice_with_the_same_value_is_accepted(demo_key):
    result = load(FAULTS, demo_key)
    # RAW-ETH-05 repeats PersonBirthDate with the same value: rejected only for its ethnicity
    eth = demo_key.child_id("208", "RAW-ETH-05")
    rules = result.rejects.filter(
        pl.col("table") == "children", pl.col("record").str.contains(eth)
    ).get_column("rule")
    assert rules.to_list() == ["code:ethnicity"]


# -- queries (flagged, kept) -------------------------------------------------------------------
def test_upn_with_wrong_check_letter_is_flagged_and_not_hashed(demo_key, tmp_path):
    text = cin_fixture("cin_2018_201_booleans01.xml").read_text(encoding="utf-8")
    path = tmp_path / "badupn.xml"
    path.write_text(text.replace("J201123410001", "K201123410001"), encoding="utf-8")
    result = read_cin_xml(path, demo_key)
    children = result.tables["children"]
    assert children.height == 2
    assert children.get_column("upn_hash").to_list() == [None, None]
    flagged = result.rejects.filter(pl.col("action") == "flag")
    assert flagged.select("table", "rule", "line").rows() == [("children", "1510", 19)]
    assert "K201123410001" not in flagged.get_column("record")[0]
    assert result.counts()["balanced"] is True


QUERIES = "cin_2024_209_queries.xml"


def test_a_query_only_return_keeps_every_record_and_flags_each_problem(demo_key):
    """Queries never remove a record; a bad code in a list drops that code, not its parent."""
    result = load(QUERIES, demo_key)
    rows = {t: f.height for t, f in result.tables.items()}
    assert rows == {
        "children": 4,
        "disabilities": 2,  # MOB and AUT; NONE is not stored, ZZZ is dropped
        "referrals": 4,
        "assessments": 4,
        "cin_plans": 0,
        "section47": 1,
        "cp_plans": 1,
        "cpp_reviews": 2,
        "pre_proceedings": 0,
    }
    rejects = result.rejects
    assert set(rejects.get_column("action")) == {"flag", "drop_value"}
    assert (rejects.get_column("source_file") == QUERIES).all()
    assert rejects.get_column("line").null_count() == 0
    got = sorted(rejects.select("table", "rule", "action", "line").rows())
    assert got == sorted(
        [
            ("children", "8525Q", "flag", 21),  # both birth dates
            ("children", "8525Q", "flag", 49),  # neither
            ("children", "8790", "flag", 49),  # NONE beside MOB
            ("children", "8535Q", "flag", 76),  # death before birth
            ("children", "1510", "flag", 76),  # UPN check letter
            ("disabilities", "8540", "drop_value", 60),  # ZZZ
            ("referrals", "8805", "flag", 88),
            ("referrals", "8610", "flag", 88),
            ("referrals", "8555Q", "flag", 88),  # cross-record: after the recorded death
            ("cp_plans", "8915", "flag", 107),  # plan starts after death
            ("cp_plans", "8920", "flag", 107),  # plan ends after death
            ("assessments", "cr_assessment_factor_code", "drop_value", 37),  # 77X beside 3A, 4B
            ("assessments", "cr_assessment_factor_code", "drop_value", 67),  # XX alone
            ("assessments", "1103", "flag", 93),  # started before the referral
            ("cpp_reviews", "cr_review_after_start", "flag", 114),
        ]
    )
    both = demo_key.child_id("209", "RAW-Q-BOTH-01")
    children = result.tables["children"]
    kept = children.filter(pl.col("child_id") == both)
    assert kept.select("birth_date", "expected_birth_date").row(0) == (
        d("2023-11-02"),
        d("2023-11-20"),
    )
    assert result.tables["assessments"].get_column("factors").to_list() == [
        ["3A", "4B"],
        [],
        ["16A"],
        ["21"],
    ]
    # `disabled` follows the codes loaded: MOB beside NONE and ZZZ, AUT alone
    disabled = dict(children.select("child_id", "disabled").rows())
    assert disabled == {
        both: False,
        demo_key.child_id("209", "RAW-Q-NODATE-02"): True,
        demo_key.child_id("209", "RAW-Q-DEATH-03"): False,
        demo_key.child_id("209", "RAW-Q-CLEAN-04"): True,
    }
    rec = result.reconciliation.select("element", "read", "loaded", "rejected").rows()
    assert ("Child", 4, 4, 0) in rec and ("Assessments", 4, 4, 0) in rec
    assert ("Disability", 3, 2, 1) in rec  # the dropped code counts as not loaded
    counts = result.counts()
    assert (counts["rejected"], counts["flagged"], counts["dropped_values"]) == (0, 12, 3)
    assert counts["balanced"] is True


def test_an_unknown_disability_code_alone_leaves_the_child_not_disabled(demo_key, tmp_path):
    text = cin_fixture(QUERIES).read_text(encoding="utf-8")
    path = tmp_path / "onlybad.xml"
    path.write_text(text.replace("<Disability>AUT</Disability>", "<Disability>QQQ</Disability>"))
    result = read_cin_xml(path, demo_key)
    clean = demo_key.child_id("209", "RAW-Q-CLEAN-04")
    children = result.tables["children"].filter(pl.col("child_id") == clean)
    assert children.get_column("disabled").to_list() == [False]
    dropped = result.rejects.filter(pl.col("rule") == "8540")
    assert dropped.height == 2 and set(dropped.get_column("action")) == {"drop_value"}


# -- UPN check letter --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("upn", "valid"),
    [
        ("P207000016049", True),  # a published example of a valid UPN
        ("p207000016049 ", True),  # case and padding are normalised
        ("A207000016049", False),  # wrong check letter
        ("I207000016049", False),  # I is never a check letter
        ("P20700001604A", False),  # letter in the last position: valid pattern, check fails
        ("P2070000160", False),  # too short
        ("P2070000160490", False),  # too long
        ("P2070X0016049", False),  # letter inside the digits
        ("P²⁰⁷000016049", False),  # non-ASCII digits (used to crash int())
    ],
)
def test_upn_is_valid(upn, valid):
    assert upn_is_valid(upn) is valid


def test_upn_with_letter_in_last_position_can_be_valid():
    # temporary UPNs end in a letter; find the check letter that makes one valid
    body = "20700001604A"
    letters = "ABCDEFGHJKLMNPQRTUVWXYZ"
    valid = [c for c in letters if upn_is_valid(c + body)]
    assert len(valid) == 1
    total = sum(
        (int(ch) if ch.isdigit() else letters.index(ch)) * pos for pos, ch in enumerate(body, 2)
    )
    assert valid == [letters[total % 23]]


def test_make_upn_round_trips():
    for la, est, year, serial in [(201, 1234, 10, 1), (938, 7001, 24, 999), (1, 0, 0, 0)]:
        upn = make_upn(str(la), est, year, serial)
        assert len(upn) == 13 and upn_is_valid(upn)


def test_fixture_folder_has_no_unlisted_good_files():
    names = {p.name for p in CIN_FIXTURES.glob("cin_*.xml")}
    assert names == {*GOOD_FILES, FAULTS, QUERIES}


# -- record elements in the wrong place --------------------------------------------------------
def test_misplaced_record_elements_are_rejected_not_dropped(demo_key, tmp_path):
    text = cin_fixture("cin_2018_201_booleans01.xml").read_text(encoding="utf-8")
    text = text.replace(  # a Disability outside <Disabilities>
        "          <Disability>LD</Disability>\n        </Disabilities>",
        "        </Disabilities>\n        <Disability>LD</Disability>",
    )
    text = text.replace(  # a review date directly in the plan (no <Reviews>)
        "          <Reviews>\n            <CPPreviewDate>2017-09-10</CPPreviewDate>\n"
        "          </Reviews>",
        "          <CPPreviewDate>2017-09-10</CPPreviewDate>",
    )
    text = text.replace(  # the second episode nested inside the first one's S47 wrapper
        "          <ICPCnotRequired>0</ICPCnotRequired>\n",
        "          <ICPCnotRequired>0</ICPCnotRequired>\n<CINdetails><CINreferralDate>2018-02-01"
        "</CINreferralDate><ReferralSource>6</ReferralSource>"
        "<Assessments><AssessmentActualStartDate>2018-02-02</AssessmentActualStartDate>"
        "</Assessments><ReferralNFA>1</ReferralNFA></CINdetails>\n",
    )
    path = tmp_path / "misplaced.xml"
    path.write_text(text, encoding="utf-8")
    lines = text.splitlines()

    def line_of(needle: str) -> int:
        return next(n for n, t in enumerate(lines, 1) if needle in t)

    result = read_cin_xml(path, demo_key)
    misplaced = result.rejects.filter(pl.col("rule") == "schema:misplaced_element")
    assert sorted(misplaced.select("table", "line").rows()) == sorted(
        [
            ("disabilities", line_of("<Disability>LD")),
            ("cpp_reviews", line_of("<CPPreviewDate>2017-09-10")),
            ("referrals", line_of("<CINreferralDate>2018-02-01")),
            ("assessments", line_of("<CINreferralDate>2018-02-01")),
        ]
    )
    assert json.loads(misplaced.get_column("record")[0])["child_id"] == demo_key.child_id(
        "201", "RAW-A-1001"
    )
    rec = {r[0]: r[1:] for r in result.reconciliation.rows()}
    assert rec["Disability"] == ("disabilities", 2, 1, 1, True)
    assert rec["CINdetails"] == ("referrals", 4, 3, 1, True)
    assert rec["Assessments"] == ("assessments", 3, 2, 1, True)
    assert rec["CPPreviewDate"] == ("cpp_reviews", 1, 0, 1, True)
    assert result.tables["disabilities"].get_column("disability").to_list() == ["MOB"]


def test_parallel_parse_matches_sequential_including_rejects(demo_key, tmp_path, monkeypatch):
    text = cin_fixture(FAULTS).read_text(encoding="utf-8")
    text = text.replace(  # plus a misplaced element, to cover the misplaced raw table
        "<Ethnicity>BCRB</Ethnicity>",
        "<Ethnicity>BCRB</Ethnicity><CPPreviewDate>2023-01-01</CPPreviewDate>",
    )
    path = tmp_path / "faults.xml"
    path.write_text(text, encoding="utf-8")
    used = []
    real = parallel.parse_parallel

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        used.append(result is not None)
        return result

    monkeypatch.setattr(parallel, "parse_parallel", spy)
    sequential = read_cin_xml(path, demo_key, workers=1, columnar=False)
    assert used == []
    for workers, columnar in ((2, False), (2, True), (1, True)):
        ranged = read_cin_xml(path, demo_key, workers=workers, columnar=columnar)
        for table in CIN_TABLES:
            assert_frame_equal(sequential.tables[table], ranged.tables[table])
        assert_frame_equal(sequential.rejects, ranged.rejects)
        assert_frame_equal(sequential.reconciliation, ranged.reconciliation)
    assert used == [True, True, True]
    assert sequential.rejects.filter(pl.col("rule") == "schema:misplaced_element").height == 1
