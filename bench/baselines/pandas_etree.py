"""Baseline: the CIN XML parser most LA analysts write — ElementTree + lists of dicts + pandas.

``ET.parse`` the whole file, loop over ``Child`` / ``CINdetails`` and their nested records,
append one dict per record, then one ``pd.DataFrame`` per table and ``pd.to_datetime`` on the
date columns. It produces the same eight tables as ``cinresearch.io.cin.read_cin_xml``
(children, disabilities, referrals, assessments, cin_plans, section47, cp_plans, cpp_reviews)
so the comparison is like for like in output, but it does none of the validation, rejects,
reconciliation or pseudonymisation that ``read_cin_xml`` does (see README.md).

Usage: python bench/baselines/pandas_etree.py FILE   (prints one JSON line: seconds, rows)
"""

from __future__ import annotations

import json
import resource
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd

CHILD_FIELDS = [
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
EPISODE_FIELDS = [
    "CINreferralDate",
    "ReferralSource",
    "PrimaryNeedCode",
    "CINclosureDate",
    "ReasonForClosure",
    "DateOfInitialCPC",
    "ReferralNFA",
]
ASSESSMENT_FIELDS = [
    "AssessmentActualStartDate",
    "AssessmentInternalReviewDate",
    "AssessmentAuthorisationDate",
]
PLAN_FIELDS = ["CINPlanStartDate", "CINPlanEndDate"]
S47_FIELDS = ["S47ActualStartDate", "InitialCPCtarget", "DateOfInitialCPC", "ICPCnotRequired"]
CPP_FIELDS = [
    "CPPstartDate",
    "CPPendDate",
    "InitialCategoryOfAbuse",
    "LatestCategoryOfAbuse",
    "NumberOfPreviousCPP",
]
DATE_COLUMNS = {
    "children": ["PersonBirthDate", "ExpectedPersonBirthDate", "PersonDeathDate"],
    "referrals": ["CINreferralDate", "CINclosureDate", "DateOfInitialCPC"],
    "assessments": [
        "CINreferralDate",
        "AssessmentActualStartDate",
        "AssessmentInternalReviewDate",
        "AssessmentAuthorisationDate",
    ],
    "cin_plans": ["CINreferralDate", "CINPlanStartDate", "CINPlanEndDate"],
    "section47": ["CINreferralDate", "S47ActualStartDate", "InitialCPCtarget", "DateOfInitialCPC"],
    "cp_plans": ["CINreferralDate", "CPPstartDate", "CPPendDate"],
    "cpp_reviews": ["CINreferralDate", "CPPstartDate", "CPPreviewDate"],
}
BOOL_MAP = {"true": True, "1": True, "false": False, "0": False}


def fields(elem: ET.Element, names: list[str]) -> dict[str, str | None]:
    return {name: elem.findtext(name) for name in names}


def parse_cin(path: str | Path) -> dict[str, pd.DataFrame]:
    """Parse one CIN return into pandas tables (no validation)."""
    tree = ET.parse(path)
    root = tree.getroot()
    la = root.findtext("Header/Source/LEA")
    year = root.findtext("Header/CollectionDetails/Year")
    rows: dict[str, list[dict]] = {t: [] for t in DATE_COLUMNS}
    rows["disabilities"] = []
    for child in root.iter("Child"):
        ids = child.find("ChildIdentifiers")
        chars = child.find("ChildCharacteristics")
        record = fields(ids, CHILD_FIELDS)
        record["Ethnicity"] = chars.findtext("Ethnicity")
        child_id = record["LAchildID"]
        codes = [d.text for d in chars.iter("Disability")]
        record["Disabled"] = any(c and c.strip().upper() != "NONE" for c in codes)
        rows["children"].append(record)
        for code in codes:
            if code and code.strip().upper() != "NONE":
                rows["disabilities"].append({"LAchildID": child_id, "Disability": code})
        for episode in child.findall("CINdetails"):
            ep = fields(episode, EPISODE_FIELDS)
            ep["LAchildID"] = child_id
            rows["referrals"].append(ep)
            key = {"LAchildID": child_id, "CINreferralDate": ep["CINreferralDate"]}
            for a in episode.findall("Assessments"):
                factors = [f.text for f in a.iter("AssessmentFactors")]
                rows["assessments"].append(
                    {**key, **fields(a, ASSESSMENT_FIELDS), "Factors": factors}
                )
            for p in episode.findall("CINPlanDates"):
                rows["cin_plans"].append({**key, **fields(p, PLAN_FIELDS)})
            for s in episode.findall("Section47"):
                rows["section47"].append({**key, **fields(s, S47_FIELDS)})
            for c in episode.findall("ChildProtectionPlans"):
                plan = {**key, **fields(c, CPP_FIELDS)}
                rows["cp_plans"].append(plan)
                for r in c.iter("CPPreviewDate"):
                    rows["cpp_reviews"].append(
                        {**key, "CPPstartDate": plan["CPPstartDate"], "CPPreviewDate": r.text}
                    )
    tables = {}
    for name, table_rows in rows.items():
        df = pd.DataFrame(table_rows)
        for col in DATE_COLUMNS.get(name, []):
            if col in df.columns:
                df[col] = pd.to_datetime(df[col], format="%Y-%m-%d", errors="coerce")
        for col in ("ReferralNFA", "ICPCnotRequired"):
            if col in df.columns:
                df[col] = df[col].str.strip().str.lower().map(BOOL_MAP)
        if "NumberOfPreviousCPP" in df.columns:
            df["NumberOfPreviousCPP"] = pd.to_numeric(df["NumberOfPreviousCPP"], errors="coerce")
        df["LA"] = la
        df["Year"] = year
        tables[name] = df
    return tables


def main() -> None:
    path = sys.argv[1]
    t0 = time.perf_counter()
    tables = parse_cin(path)
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "rows": {name: len(df) for name, df in tables.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
