"""Baseline: Social Finance ``liiatools`` CIN census clean, timed on a CIN XML return.

Runs ONLY in the separate venv ``bench/.venv-liiatools`` (see README.md there for how it is
built); it imports nothing from ``cinresearch``.

It performs the body of ``liiatools cin-census cleanfile`` (liiatools 0.2.0,
``liiatools/datasets/cin_census/cin_cli.py``) step by step, calling the library's own functions
in the same order, with two deliberate differences, both recorded in the output JSON:

* the census year is passed in (``--year``) instead of being guessed from the file name, and
* the data-retention check (``check_year_within_range``: only the last 6 years relative to
  *today*) is evaluated and reported but not enforced, so that an older benchmark return is
  still cleaned.

Phases timed separately: ``parse`` (``dom_parse`` materialised to a list, as ``cleanfile``
does), ``clean`` (strip/context/schema/validate/convert/remove_invalid/collect to a tablib
dataset), ``frame`` (``add_fields``: pandas DataFrame, to_datetime, school year, degrade
dates) and ``csv`` (``export_file``). Prints one JSON line.

Usage: bench/.venv-liiatools/bin/python bench/baselines/liiatools_cin.py FILE --year 2018
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

# cin_cli's own tag list (the elements remove_invalid checks)
TAGS = [
    "LAchildID",
    "UPN",
    "FormerUPN",
    "UPNunknown",
    "PersonBirthDate",
    "GenderCurrent",
    "PersonDeathDate",
    "Ethnicity",
    "Disability",
    "CINreferralDate",
    "ReferralSource",
    "PrimaryNeedCode",
    "CINclosureDate",
    "ReasonForClosure",
    "DateOfInitialCPC",
    "AssessmentActualStartDate",
    "AssessmentInternalReviewDate",
    "AssessmentAuthorisationDate",
    "AssessmentFactors",
    "CINPlanStartDate",
    "CINPlanEndDate",
    "S47ActualStartDate",
    "InitialCPCtarget",
    "DateOfInitialCPC",
    "ICPCnotRequired",
    "ReferralNFA",
    "CPPstartDate",
    "CPPendDate",
    "InitialCategoryOfAbuse",
    "LatestCategoryOfAbuse",
    "NumberOfPreviousCPP",
    "CPPreviewDate",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument("--year", type=int, required=True, help="census (end) year of the file")
    parser.add_argument("--la-code", default="CIT", help="liiatools 3-letter LA code")
    parser.add_argument("--no-csv", action="store_true", help="skip the CSV export phase")
    args = parser.parse_args()

    import liiatools
    from liiatools.datasets.cin_census.lds_cin_clean import (
        cin_record,
        converter,
        file_creator,
        filters,
        logger,
        validator,
    )
    from liiatools.datasets.cin_census.lds_cin_clean import configuration as clean_config
    from liiatools.datasets.cin_census.lds_cin_clean.parse import dom_parse
    from liiatools.datasets.cin_census.lds_cin_clean.schema import Schema
    from liiatools.datasets.shared_functions.common import check_year_within_range, flip_dict
    from sfdata_stream_parser.stream import events

    phases: dict[str, float] = {}
    t_all = time.perf_counter()

    t0 = time.perf_counter()
    stream = list(dom_parse(str(args.file)))
    n_events = len(stream)
    phases["parse"] = time.perf_counter() - t0

    retention_ok = check_year_within_range(args.year, 6, 6, datetime.now())

    t0 = time.perf_counter()
    config = clean_config.Config()
    la_name = flip_dict(config["data_codes"])[args.la_code]
    stream = filters.strip_text(stream)
    stream = filters.add_context(stream)
    stream = filters.add_schema(stream, schema=Schema(args.year).schema)
    stream = logger.inherit_LAchildID(stream)
    field_error: list[str] = []
    la_child_id_error: list[str] = []
    stream = validator.validate_elements(
        stream, LAchildID_error=la_child_id_error, field_error=field_error
    )
    value_error: list[str] = []
    structural_error: list[str] = []
    blank_error: list[str] = []
    stream = logger.counter(
        stream,
        counter_check=lambda e: isinstance(e, events.StartElement) and hasattr(e, "valid"),
        value_error=value_error,
        structural_error=structural_error,
        blank_error=blank_error,
    )
    stream = converter.convert_true_false(stream)
    stream = validator.remove_invalid(stream, tag_list=TAGS)
    stream = cin_record.message_collector(stream)
    data = cin_record.export_table(stream)
    phases["clean"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    frame = file_creator.add_fields(str(args.year), data, la_name, args.la_code)
    phases["frame"] = time.perf_counter() - t0

    if not args.no_csv:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as out:
            file_creator.export_file(str(args.file), out, frame)
            csv_mb = sum(p.stat().st_size for p in Path(out).iterdir()) / 1e6
        phases["csv"] = time.perf_counter() - t0
    else:
        csv_mb = 0.0

    seconds = time.perf_counter() - t_all
    type_counts = frame["Type"].value_counts().to_dict()
    print(
        json.dumps(
            {
                "tool": f"liiatools {liiatools.__version__ if hasattr(liiatools, '__version__') else '0.2.0'}",
                "python": sys.version.split()[0],
                "seconds": round(seconds, 2),
                "phases": {k: round(v, 2) for k, v in phases.items()},
                "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "events": n_events,
                "rows": int(len(frame)),
                "children": int(frame["LAchildID"].nunique()),
                "rows_by_type": {str(k): int(v) for k, v in type_counts.items()},
                "csv_mb": round(csv_mb, 1),
                "errors": {
                    "value": len(value_error),
                    "structural": len(structural_error),
                    "blank": len(blank_error),
                    "field": len(field_error),
                    "LAchildID": len(la_child_id_error),
                },
                "retention_check_passed": bool(retention_ok),
                "retention_check_enforced": False,
            }
        )
    )


if __name__ == "__main__":
    main()
