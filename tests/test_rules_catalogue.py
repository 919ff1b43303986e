"""The rule catalogue: every rule in ``data_contracts/`` fires on a hand-made failing record,
with its catalogue action, and only in its census years; contracts that break the catalogue's
rules (a query that rejects, a missing field) fail to load; ``docs/rules.md`` is in step.

Each case below is a valid base record of the rule's table (which raises no issue at all) and
the few fields that make it fail the rule. ``test_rule_case[<id>]`` is the ``test:`` node id
the catalogue gives for the rule.
"""

from __future__ import annotations

import ast
import datetime as dt
import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from cinresearch import codes, contracts
from cinresearch.tools import render_rules

TESTS = Path(__file__).parent
YEAR = 2024
REF = dt.date(2024, 3, 31)
START = dt.date(2023, 4, 1)


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def code(name: str) -> str:
    """A code of the list that is valid in :data:`YEAR`."""
    ranges = codes.year_ranges(name)
    for value in sorted(codes.code_list(name)):
        start, end = ranges.get(value, (None, None))
        if (start is None or start <= YEAR) and (end is None or end >= YEAR):
            return value
    raise AssertionError(name)


CIN = {"child_id": "c1", "la_code": "201", "census_year": YEAR}
CONTEXT = {"reference_date": REF, "collection_start": START, "duplicate_key": False}

BASE: dict[str, dict[str, Any]] = {
    "children": {
        **CIN,
        "upn_hash": None,
        "former_upn_hash": None,
        "upn_unknown": None,
        "birth_date": d("2015-01-01"),
        "expected_birth_date": None,
        "sex": code("sex"),
        "sex_element": "Sex",
        "ethnicity": code("ethnicity"),
        "death_date": None,
        "disabled": False,
        "upn_check_ok": True,
        "none_with_others": "0",
    },
    "disabilities": {**CIN, "disability": "AUT"},
    "referrals": {
        **CIN,
        "referral_date": d("2023-06-01"),
        "referral_source": code("referral_source"),
        "primary_need": code("primary_need"),
        "closure_date": d("2024-01-10"),
        "closure_reason": code("closure_reason"),
        "referral_nfa": False,
        "icpc_date": None,
    },
    "assessments": {
        **CIN,
        "referral_date": d("2023-06-01"),
        "assessment_start": d("2023-06-02"),
        "assessment_review": None,
        "assessment_authorised": d("2023-07-01"),
        "factors": ["4B", "16A"],
    },
    "cin_plans": {
        **CIN,
        "referral_date": d("2023-06-01"),
        "cin_plan_start": d("2023-07-01"),
        "cin_plan_end": d("2023-12-01"),
    },
    "section47": {
        **CIN,
        "referral_date": d("2023-06-01"),
        "s47_start": d("2023-06-03"),
        "icpc_target": None,
        "icpc_date": d("2023-06-20"),
        "icpc_not_required": False,
    },
    "cp_plans": {
        **CIN,
        "referral_date": d("2023-06-01"),
        "cpp_start": d("2023-06-20"),
        "cpp_end": d("2024-02-01"),
        "initial_category": code("abuse_category"),
        "latest_category": code("abuse_category"),
        "previous_cpps": 0,
    },
    "cpp_reviews": {
        **CIN,
        "referral_date": d("2023-06-01"),
        "cpp_start": d("2023-06-20"),
        "review_date": d("2023-09-01"),
    },
    "pre_proceedings": {
        **CIN,
        "census_year": 2026,
        "referral_date": d("2023-06-01"),
        "pp_start": d("2023-09-01"),
        "lbp_sent_date": d("2023-09-01"),
        "fgdm_offered": True,
        "fgdm_facilitated": True,
        "initial_meeting_date": d("2023-09-10"),
        "review_meetings": 2,
        "decision_date": d("2024-01-10"),
        "pp_outcome": None,
        "court_application_date": d("2024-01-20"),
        "letter_initial_cp_date": None,
    },
    "cla_children": {
        **CIN,
        "upn_hash": None,
        "birth_date": d("2012-05-05"),
        "sex": code("sex"),
        "ethnicity": code("ethnicity"),
    },
    "cla_episodes": {
        **CIN,
        "decom": d("2023-05-01"),
        "rne": code("cla_rne"),
        "ls": code("cla_ls"),
        "cin": code("primary_need"),
        "place": code("cla_place"),
        "place_provider": None,
        "dec": d("2023-09-01"),
        "rec": code("cla_rec"),
        "reason_place_change": None,
    },
    "npd": {
        "upn_hash": "u1",
        "academic_year": YEAR,
        "la_code": "201",
        "fsm": False,
        "sen": code("sen_provision"),
        "sessions_possible": 300,
        "sessions_absent": 10,
        "persistent_absence": False,
        "suspensions": 0,
        "permanent_exclusion": False,
        "ks2_rwm_expected": None,
        "ks4_attainment8": 50.0,
    },
    "population": {
        "la_code": "201",
        "year": YEAR,
        "age": 5,
        "sex": code("sex"),
        "population": 1000,
    },
}

#: rule id → (table, fields that make the base record fail the rule)
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "8500": ("children", {"child_id": None}),
    "8510": ("children", {"duplicate_key": True}),
    "8520": ("children", {"birth_date": d("2024-04-01")}),
    "8525Q": ("children", {"expected_birth_date": d("2015-01-02")}),
    "8535Q": ("children", {"death_date": d("2014-12-31")}),
    "8790": ("children", {"none_with_others": "1"}),
    "1510": ("children", {"upn_check_ok": False}),
    "8540": ("disabilities", {"disability": "XYZ"}),
    "8600": (
        "referrals",
        {"referral_date": d("2024-04-01"), "closure_date": None, "closure_reason": None},
    ),
    "8620": ("referrals", {"closure_date": d("2024-04-02")}),
    "8630": ("referrals", {"referral_date": d("2024-01-11")}),
    "8805": ("referrals", {"closure_reason": None}),
    "8810": ("referrals", {"closure_date": None}),
    "8610": ("referrals", {"primary_need": None}),
    "cr_duplicate_referral": ("referrals", {"duplicate_key": True}),
    "1103": ("assessments", {"assessment_start": d("2023-05-31")}),
    "8608": ("assessments", {"assessment_authorised": d("2023-06-01")}),
    "8696": (
        "assessments",
        {"assessment_start": d("2024-03-01"), "assessment_authorised": d("2024-04-01")},
    ),
    "cr_assessment_start_in_range": (
        "assessments",
        {"assessment_start": d("2024-04-01"), "assessment_authorised": None},
    ),
    "cr_assessment_factor_code": ("assessments", {"factors": ["4B", "99Z", "16A"]}),
    "4010": ("cin_plans", {"cin_plan_start": d("2024-04-01"), "cin_plan_end": None}),
    "4011": ("cin_plans", {"cin_plan_end": d("2023-06-30")}),
    "cr_cin_plan_end_in_range": ("cin_plans", {"cin_plan_end": d("2024-04-01")}),
    "8615": ("section47", {"icpc_date": d("2023-06-02")}),
    "cr_s47_start_in_range": ("section47", {"s47_start": d("2024-04-01"), "icpc_date": None}),
    "8925": ("cp_plans", {"cpp_end": d("2023-06-19")}),
    "8930": ("cp_plans", {"cpp_end": d("2024-04-01")}),
    "cr_cpp_start_in_range": ("cp_plans", {"cpp_start": d("2024-04-01"), "cpp_end": None}),
    "cr_previous_cpps_range": ("cp_plans", {"previous_cpps": 51}),
    "cr_review_in_range": ("cpp_reviews", {"review_date": d("2024-04-01")}),
    "cr_review_after_start": ("cpp_reviews", {"review_date": d("2023-06-19")}),
    "cr_pp_duplicate": ("pre_proceedings", {"duplicate_key": True}),
    "cr_pp_start_before_referral": ("pre_proceedings", {"pp_start": d("2023-05-31")}),
    "cr_pp_start_after_census": (
        "pre_proceedings",
        {"pp_start": d("2024-04-01"), "initial_meeting_date": None, "court_application_date": None},
    ),
    "cr_pp_court_before_start": ("pre_proceedings", {"court_application_date": d("2023-08-31")}),
    "cr_pp_review_count_range": ("pre_proceedings", {"review_meetings": 51}),
    "cr_pp_fgdm_facilitated_not_offered": ("pre_proceedings", {"fgdm_offered": False}),
    "cr_cla_birth_not_future": ("cla_children", {"birth_date": d("2024-04-01")}),
    "cr_cla_duplicate_child": ("cla_children", {"duplicate_key": True}),
    "cr_cla_dec_after_decom": ("cla_episodes", {"dec": d("2023-04-30")}),
    "cr_cla_decom_in_range": ("cla_episodes", {"decom": d("2024-04-01"), "dec": None, "rec": None}),
    "cr_cla_rec_with_dec": ("cla_episodes", {"rec": None}),
    "cr_cla_duplicate_episode": ("cla_episodes", {"duplicate_key": True}),
    "cr_npd_sessions_range": ("npd", {"sessions_absent": 301}),
    "cr_npd_attainment8_range": ("npd", {"ks4_attainment8": 90.5}),
    "cr_npd_suspensions_range": ("npd", {"suspensions": -1}),
    "cr_npd_duplicate_pupil_year": ("npd", {"duplicate_key": True}),
    "cr_population_age_range": ("population", {"age": 18}),
    "cr_population_nonnegative": ("population", {"population": -1}),
    "cr_population_duplicate_cell": ("population", {"duplicate_key": True}),
}


def frame(table: str, rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows of ``table`` with the context columns the loaders add, typed as the contract."""
    schema = dict(contracts.load_contract(table).schema)
    schema |= {"reference_date": pl.Date, "collection_start": pl.Date, "duplicate_key": pl.Boolean}
    schema |= {"upn_check_ok": pl.Boolean, "none_with_others": pl.String}
    full = [{**CONTEXT, **row} for row in rows]
    names = [n for n in schema if n in full[0]]
    return pl.DataFrame(full, schema={n: schema[n] for n in names})


def catalogue_rule(table: str, rule_id: str) -> contracts.Rule:
    return next(r for r in contracts.load_contract(table).rules if r.id == rule_id)


@pytest.mark.parametrize("table", sorted(BASE))
def test_base_records_raise_no_issue(table: str) -> None:
    result = contracts.validate(frame(table, [BASE[table]]), table)
    assert result.issues.is_empty(), result.issues
    assert result.valid.height == 1


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_case(rule_id: str) -> None:
    """The failing record gets one issue of this rule with its action; the base one none."""
    table, change = CASES[rule_id]
    rule = catalogue_rule(table, rule_id)
    base = BASE[table]
    result = contracts.validate(frame(table, [base, {**base, **change}]), table)
    issues = result.issues.select("row_index", "rule", "severity", "action").rows()
    assert [i for i in issues if i[1] == rule_id] == [(1, rule_id, rule.severity, rule.action)]
    # the change breaks this rule alone (8500 also breaks the column's required check)
    others = {i[1] for i in issues} - {rule_id}
    assert others == ({"required:child_id"} if rule_id == "8500" else set()), issues
    changed = {**base, **change}
    columns = [c.name for c in contracts.load_contract(table).columns]
    if rule.action == "reject_record":
        assert result.rejected_index.to_list() == [1]
        assert result.valid.height == 1
    elif rule.action == "drop_value":
        spec = contracts.load_contract(table).column(rule.column)
        if isinstance(spec.dtype, pl.List):  # the record is kept, without the bad codes
            assert result.rejected_index.is_empty()
            allowed = codes.code_list(spec.codes)
            kept = [v for v in changed[rule.column] if v in allowed]
            assert kept and kept != changed[rule.column]
            assert result.valid.get_column(rule.column).to_list()[1] == kept
        else:  # a one-code row: the row is the value
            assert result.rejected_index.to_list() == [1]
            assert result.valid.height == 1
    else:  # flag: the record is kept unchanged
        assert rule.action == "flag"
        assert result.rejected_index.is_empty()
        kept = result.valid.row(1, named=True)
        assert {c: kept[c] for c in columns} == {c: changed[c] for c in columns}


def test_every_catalogue_rule_has_a_case_and_names_it() -> None:
    """Every per-table rule has a case here (cross-record rules are tested where they live)."""
    rules = [r for t in contracts.contract_tables() for r in contracts.load_contract(t).rules]
    assert sorted(r.id for r in rules) == sorted(CASES)
    for rule in rules:
        assert rule.test == f"tests/test_rules_catalogue.py::test_rule_case[{rule.id}]"
        assert CASES[rule.id][0] == rule.table


def test_bad_disability_code_drops_that_row_only() -> None:
    rows = [BASE["disabilities"], {**BASE["disabilities"], "disability": "XYZ"}]
    result = contracts.validate(frame("disabilities", rows), "disabilities")
    assert result.valid.get_column("disability").to_list() == ["AUT"]
    assert result.issues.select("rule", "action").rows() == [("8540", "drop_value")]


def test_bad_factor_codes_are_dropped_and_the_assessment_kept() -> None:
    base = BASE["assessments"]
    rows = [base, {**base, "factors": ["4B", "99Z", "  ", "16A"]}, {**base, "factors": ["99Z"]}]
    result = contracts.validate(frame("assessments", rows), "assessments")
    assert result.valid.get_column("factors").to_list() == [["4B", "16A"], ["4B", "16A"], []]
    assert result.rejected_index.is_empty()
    assert result.issues.select("row_index", "rule", "action").rows() == [
        (1, "cr_assessment_factor_code", "drop_value"),
        (2, "cr_assessment_factor_code", "drop_value"),
    ]


# -- years --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("years", "parsed"),
    [
        ("all", (None, None)),
        ("2018-", (2018, None)),
        ("2018-2025", (2018, 2025)),
        ("2022", (2022, 2022)),
    ],
)
def test_years_are_parsed(years: str, parsed: tuple[int | None, int | None]) -> None:
    assert contracts.parse_years(years) == parsed


@pytest.mark.parametrize("years", ["", "18-", "2025-2018", "2018 to 2025", "from 2018"])
def test_bad_years_are_refused(years: str) -> None:
    with pytest.raises(contracts.ContractError):
        contracts.parse_years(years)


def _write_contract(directory: Path, rule: dict[str, Any], table: str = "things") -> Path:
    entry = {
        "id": "cr_thing_positive",
        "severity": "error",
        "action": "reject_record",
        "years": "2018-",
        "check": "n >= 0",
        "message": "n is negative",
        "test": "tests/test_rules_catalogue.py::test_rule_case",
        **rule,
    }
    entry = {k: v for k, v in entry.items() if v is not None}
    lines = [
        f"table: {table}",
        "key: [census_year, n]",
        "columns:",
        "  - {name: census_year, type: i16, required: true}",
        "  - {name: n, type: i64}",
        "  - {name: factors, type: 'list[str]', codes: assessment_factor}",
        "rules:",
        "  - " + "\n    ".join(f'{k}: "{v}"' for k, v in entry.items()),
    ]
    (directory / f"{table}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


def test_rules_apply_only_in_their_years(tmp_path: Path, monkeypatch) -> None:
    _write_contract(tmp_path, {"years": "2020-2022"})
    contract = contracts.load_contract("things", tmp_path)
    monkeypatch.setattr(contracts, "load_contract", lambda table: contract)
    schema, info, checks = contracts._build_pandera(contract)
    monkeypatch.setattr(contracts, "pandera_schema", lambda table: (schema, info, checks))
    years = [2019, 2020, 2022, 2023]
    data = pl.DataFrame({"census_year": years, "n": [-1] * 4, "factors": [["4B"]] * 4})
    data = data.cast({"census_year": pl.Int16})
    result = contracts.validate(data, "things")
    flagged = result.issues.get_column("row_index").to_list()
    assert [years[i] for i in flagged] == [2020, 2022]
    assert contract.rules[0].applies_in(2021) and not contract.rules[0].applies_in(2023)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"severity": "query", "action": "reject_record"}, "a query never removes a record"),
        ({"severity": "query", "action": "drop_value"}, "a query never removes a record"),
        ({"severity": "warning"}, "severity must be one of"),
        ({"action": "rejected"}, "action must be one of"),
        ({"test": None}, "lacks test"),
        ({"years": None}, "lacks years"),
        ({"years": "2018 onwards"}, "is not 'all'"),
        ({"id": "positive"}, "must be a DfE code"),
        ({"id": "8935X"}, "must be a DfE code"),
        ({"action": "drop_value"}, "drop_value rules, and only they, name a column"),
        ({"column": "factors"}, "drop_value rules, and only they, name a column"),
        ({"action": "drop_value", "column": "factors"}, "factors in code list assessment_factor"),
        ({"colour": "red"}, "unknown fields"),
    ],
)
def test_a_contract_that_breaks_the_catalogue_fails_to_load(
    tmp_path: Path, change: dict[str, Any], words: str
) -> None:
    _write_contract(tmp_path, change)
    with pytest.raises(contracts.ContractError, match=re.escape(words)):
        contracts.load_contract("things", tmp_path)


def test_a_query_flags_even_when_a_contract_omits_the_action(tmp_path: Path) -> None:
    _write_contract(tmp_path, {"severity": "query", "action": None})
    with pytest.raises(contracts.ContractError, match="lacks action"):
        contracts.load_contract("things", tmp_path)


# -- cross-record rules file ----------------------------------------------------------------------
def _cross(tmp_path: Path, text: str) -> Path:
    (tmp_path / contracts.CROSS_RECORD_FILE).write_text(text, encoding="utf-8")
    return tmp_path


def test_cross_record_rules_file_is_read_with_its_tables(tmp_path: Path) -> None:
    _cross(
        tmp_path,
        "rules:\n"
        '  - {id: "8935", severity: error, action: flag, years: "2018-", table: cp_plans,\n'
        '     check: "at most one open plan", message: "Two open CP plans",\n'
        '     test: "tests/test_rules_catalogue.py::test_rule_case"}\n',
    )
    (rule,) = contracts.cross_record_rules(tmp_path)
    assert (rule.table, rule.id, rule.action) == ("cp_plans", "8935", "flag")
    assert contracts.contract_tables(tmp_path) == []  # a rules file is not a contract
    assert contracts.rule_catalogue(tmp_path) == [rule]


def test_cross_record_rules_may_name_their_check_function_instead(tmp_path: Path) -> None:
    _cross(
        tmp_path,
        "rules:\n"
        '  - {id: "8815", table: referrals, severity: error, action: flag, years: "2018-",\n'
        '     message: "More than one open episode", why: "kept: counts stay right",\n'
        "     implemented_by: cinresearch.io.cin.cross_record_rules.open_episodes,\n"
        '     test: "tests/test_rules_catalogue.py::test_rule_case"}\n',
    )
    (rule,) = contracts.cross_record_rules(tmp_path)
    assert rule.implemented_by.endswith("open_episodes") and rule.check == ""
    assert "open_episodes` — kept: counts stay right" in render_rules.render(tmp_path)


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        (
            '{id: "8935", severity: error, action: flag, years: "2018-", check: x, message: m, '
            "test: t}",
            "lacks table",
        ),
        (
            '{id: "8935", table: cp_plans, severity: error, action: flag, years: "2018-", '
            "message: m, test: t}",
            "lacks check (or implemented_by)",
        ),
        (
            '{id: "8555Q", severity: query, action: reject_record, years: "2018-", table: children, '
            "check: x, message: m, test: t}",
            "a query never removes a record",
        ),
    ],
)
def test_bad_cross_record_rules_fail_to_load(tmp_path: Path, entry: str, words: str) -> None:
    _cross(tmp_path, f"rules:\n  - {entry}\n")
    with pytest.raises(contracts.ContractError, match=re.escape(words)):
        contracts.cross_record_rules(tmp_path)


def test_the_shipped_cross_record_file_loads() -> None:
    path = contracts.CONTRACTS_DIR / contracts.CROSS_RECORD_FILE
    assert path.exists()
    for rule in contracts.cross_record_rules():
        assert rule.table in contracts.contract_tables()


# -- the catalogue as a whole and docs/rules.md ---------------------------------------------------
def _test_functions() -> dict[str, set[str]]:
    """Test file (relative path) → names of the test functions defined in it."""
    out = {}
    for path in TESTS.glob("test_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        out[f"tests/{path.name}"] = {
            node.name
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name.startswith("test")
        }
    return out


def test_every_rule_names_a_test_that_exists() -> None:
    functions = _test_functions()
    for rule in contracts.rule_catalogue():
        file, _, name = rule.test.partition("::")
        function, _, param = name.partition("[")
        assert function in functions.get(file, set()), f"{rule.table} {rule.id}: {rule.test}"
        if file == "tests/test_rules_catalogue.py" and function == "test_rule_case":
            assert param.rstrip("]") in CASES, rule.test


def test_queries_only_flag_and_ids_are_dfe_codes_or_ours() -> None:
    catalogue = contracts.rule_catalogue()
    assert catalogue
    for rule in catalogue:
        if rule.severity == "query":
            assert rule.action == "flag", rule
        assert re.fullmatch(r"\d{3,4}Q?|cr_[a-z0-9_]+", rule.id), rule.id
        if rule.id.endswith("Q"):
            assert rule.severity == "query", rule  # DfE's Q suffix marks a query
    keys = [(r.table, r.id) for r in catalogue]
    assert len(keys) == len(set(keys))


def test_the_renumbered_rules_carry_dfe_codes() -> None:
    rules = {
        (t, r.id): r for t in contracts.contract_tables() for r in contracts.load_contract(t).rules
    }
    assert {("cp_plans", "8925"), ("section47", "8615"), ("children", "8525Q")} <= set(rules)
    assert rules[("cp_plans", "8925")].check == "cpp_end IS NULL OR cpp_end >= cpp_start"
    assert rules[("section47", "8615")].check == "icpc_date IS NULL OR icpc_date >= s47_start"
    # our old numbers mean something else in DfE's rules (8935: two open CP plans; 8715: ICPC in
    # the census year; 4014: overlapping CIN plans): only cross-record rules may use them
    assert not {("cp_plans", "8935"), ("section47", "8715"), ("cin_plans", "4014")} & set(rules)
    assert ("children", "8525") not in rules
    for rule in contracts.cross_record_rules():
        assert (rule.table, rule.id) not in rules


def test_docs_rules_md_is_in_step_with_the_contracts() -> None:
    assert render_rules.check(), (
        "docs/rules.md is stale: run python -m cinresearch.tools.render_rules"
    )


def test_rendered_table_lists_every_rule_with_its_columns() -> None:
    text = render_rules.render()
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| DfE code | severity | our action | table | years | message | test")
    for rule in contracts.rule_catalogue():
        cells = [c.strip() for c in rule_row(rule).split("|")[1:-1]]
        assert f"| {' | '.join(cells)} |" in text
        assert cells[:5] == [rule.id, rule.severity, rule.action, rule.table, rule.years]


def rule_row(rule: contracts.Rule) -> str:
    return render_rules.rule_row(rule)


def test_render_rules_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "rules.md"
    stale.write_text("old\n", encoding="utf-8")
    assert render_rules.main(["--check", "--output", str(stale)]) == 1
    assert render_rules.main(["--output", str(stale)]) == 0
    assert render_rules.main(["--check", "--output", str(stale)]) == 0
    assert stale.read_text(encoding="utf-8") == render_rules.render()


def test_a_query_only_return_goes_through_build_and_indicators(tmp_path: Path, demo_key) -> None:
    """Kept records with queries (no birth date at all, an empty factor list) break nothing."""
    from cinresearch import indicators
    from cinresearch.io.loader import load_paths
    from cinresearch.journeys import build_journeys
    from cinresearch.store import Store

    source = tmp_path / "in"
    source.mkdir()
    fixture = TESTS / "fixtures" / "cin" / "cin_2024_209_queries.xml"
    (source / fixture.name).write_bytes(fixture.read_bytes())
    store = Store(tmp_path / "store")
    load_paths([source], store, demo_key, progress=False, workers=1)
    build_journeys(store, progress=False)  # strict: raises if the counts do not reconcile
    assert store.read("episodes").height == 4
    measures = indicators.compute_indicators(store, 2024, geography=("national",))
    assert measures.height > 0
