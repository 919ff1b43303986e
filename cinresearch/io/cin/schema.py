"""The CIN census return as every reader sees it: tables, element names and raw columns.

One place maps the XML to columns (element names that changed between census years are
mapped here; see ``data_contracts/cin_census.yaml``), so the lxml, polars and compiled
readers (:mod:`.lxml_reader`, :mod:`.polars_reader`, :mod:`.native`) agree by construction:

* ``*_FIELDS``: leaf element -> raw column, per record kind;
* :data:`ELEMENT_TABLE`: record element -> the table it loads into;
* :data:`SCHEMA_CHILDREN`: which elements the schema allows inside which (anything else inside
  a ``<Child>`` is *unrecognised*: counted by path, its value never kept);
* :data:`RAW_COLUMNS` and :func:`raw_dtype`: the raw frames every reader hands on (text as
  returned, plus ``child_seq``/``episode_seq``/``cpp_seq`` sequence numbers and 1-based file
  ``line`` numbers), before typing and validation;
* :data:`SAFE_PARSER_OPTIONS` and :func:`local_name`: how any lxml parse of a return is done.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import yaml

from cinresearch.contracts import CONTRACTS_DIR

_FORMAT: dict[str, Any] = yaml.safe_load(
    (CONTRACTS_DIR / "cin_census.yaml").read_text(encoding="utf-8")
)
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
    # identifiers not wrapped in a container are tolerated (see lxml_reader.ChildParser.child)
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


#: raw columns per table, in the order every reader returns them
RAW_COLUMNS: dict[str, list[str]] = {
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


def raw_dtype(column: str) -> pl.DataType:
    """Type of a raw column as every reader returns it: numbers, factor lists, else text."""
    if column.endswith(("_seq", "line")):
        return pl.Int64()
    return pl.List(pl.String) if column == "factors" else pl.String()


def version_label(census_year: int) -> str:
    """The return format's name for a census year (e.g. "2023-24"), from cin_census.yaml."""
    return str(_FORMAT["versions"][census_year]["label"])


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


def local_name(tag: Any) -> str | None:
    """An element's name without its namespace; None for comments and processing instructions."""
    if not isinstance(tag, str):
        return None
    return tag.rpartition("}")[2] if tag[0] == "{" else tag
