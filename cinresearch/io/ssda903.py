"""SSDA903 (children looked after) CSV extracts: header and episodes tables.

The CSVs carry no LA or year, so both come from the file name, which must contain
``<census year>_<LA code>`` (e.g. ``ssda903_2019_201_episodes.csv``). Dates are dd/mm/YYYY.
``CHILD`` is the LA's child id (same id space as CIN ``LAchildID``) and is pseudonymised with
the same keyed hash as the CIN loader, so the two link within an LA; ``UPN`` is hashed too.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from cinresearch.io.csv_tables import load_contract_csv
from cinresearch.io.errors import InputFileError
from cinresearch.io.inputs import LoadedInput
from cinresearch.pseudonymise import Pseudonymiser, checked_upns

_NAME = re.compile(r"(20\d\d)_(\d{3})(?!\d)")
_SEX = {"1": "M", "2": "F", "M": "M", "F": "F"}


def year_and_la(path: Path) -> tuple[int, str]:
    match = _NAME.search(path.name)
    if not match:
        raise InputFileError(
            path,
            None,
            "SSDA903 file name must contain <census year>_<LA code>, e.g. ssda903_2019_201_episodes.csv",
        )
    return int(match.group(1)), match.group(2)


def read_ssda903(path: Path, kind: str, key: Pseudonymiser) -> LoadedInput:
    """Read an SSDA903 header or episodes CSV into ``cla_children`` / ``cla_episodes``."""
    year, la = year_and_la(path)
    ids = {"child_id": lambda v: key.hash_series("child", v.str.strip_chars(), prefix=f"{la}\x1f")}
    if kind == "ssda903_header":
        table = "cla_children"

        ids["upn_hash"] = lambda upns: key.hash_series("upn", checked_upns(upns)[1])
        derived = {"sex": pl.col("sex").str.to_uppercase().replace_strict(_SEX, default="U")}
    else:
        table = "cla_episodes"
        derived = None
    rows, rejects, counts = load_contract_csv(
        path, table, census_year=year, la_code=la, identifiers=ids, derived=derived
    )
    return LoadedInput(
        source_key=f"{table}_{year}_{la}",
        kind=kind,
        file=path.name,
        census_year=year,
        la_code=la,
        tables={table: rows},
        rejects=rejects,
        counts={
            "rows": {table: rows.height},
            "elements": {"row": counts},
            "balanced": counts["balanced"],
            "rejected": counts["rejected"],
        },
        detail={"detected": f"SSDA903 {kind.split('_')[1]} {year} LA {la}", "key_id": key.key_id},
    )
