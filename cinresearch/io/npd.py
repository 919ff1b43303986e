"""NPD-style pupil extract (one row per pupil per academic year), keyed by UPN.

``UPN`` is replaced by the same keyed hash the CIN loader uses (``upn_hash``), so pupils link to
children in need. ``AcademicYear`` like ``2018/2019`` (or ``2019``) becomes the end year 2019.
Persistent absence is derived: absent for at least 10% of possible sessions.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from cinresearch.io.csv_tables import load_contract_csv
from cinresearch.io.inputs import LoadedInput
from cinresearch.pseudonymise import Pseudonymiser


def read_npd(path: Path, key: Pseudonymiser) -> LoadedInput:
    year_text = pl.col("academic_year").str.extract(r"(\d{4})\s*$", 1)
    derived = {
        "academic_year": year_text.cast(pl.Int16, strict=False),
        "persistent_absence": (
            pl.col("sessions_absent").cast(pl.Float64, strict=False)
            >= 0.1 * pl.col("sessions_possible").cast(pl.Float64, strict=False)
        ).fill_null(False),
    }
    rows, rejects, counts = load_contract_csv(
        path,
        "npd",
        census_year=None,
        la_code=None,
        identifiers={
            "upn_hash": lambda upns: key.hash_series(
                "upn", upns.str.strip_chars().str.to_uppercase()
            )
        },
        derived=derived,
    )
    years = sorted(rows.get_column("academic_year").unique().drop_nulls().to_list())
    return LoadedInput(
        # keyed by the academic years covered: a corrected extract for the same years replaces
        # the old one, and the same extract under another file name is not loaded twice
        source_key=f"npd_{years[0]}_{years[-1]}" if years else f"npd_{Path(path).stem}",
        kind="npd",
        file=Path(path).name,
        census_year=years[-1] if years else None,
        la_code=None,
        tables={"npd": rows},
        rejects=rejects,
        counts={
            "rows": {"npd": rows.height},
            "elements": {"row": counts},
            "balanced": counts["balanced"],
            "rejected": counts["rejected"],
        },
        detail={"detected": f"NPD pupil extract, academic years {years}", "key_id": key.key_id},
    )
