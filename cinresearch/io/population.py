"""ONS mid-year population estimates (children aged 0-17) by LA, single year of age and sex."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from cinresearch.io.csv_tables import load_contract_csv
from cinresearch.io.inputs import LoadedInput


def read_population(path: Path) -> LoadedInput:
    rows, rejects, counts = load_contract_csv(
        path,
        "population",
        census_year=None,
        la_code=None,
        derived={
            "sex": pl.col("sex")
            .str.to_uppercase()
            .replace_strict({"1": "M", "2": "F"}, default=pl.col("sex").str.to_uppercase())
        },
    )
    years = sorted(rows.get_column("year").unique().to_list())
    return LoadedInput(
        # keyed by the estimate years covered (same rule as NPD extracts)
        source_key=f"population_{years[0]}_{years[-1]}"
        if years
        else f"population_{Path(path).stem}",
        kind="population",
        file=Path(path).name,
        census_year=None,
        la_code=None,
        tables={"population": rows},
        rejects=rejects,
        counts={
            "rows": {"population": rows.height},
            "elements": {"row": counts},
            "balanced": counts["balanced"],
            "rejected": counts["rejected"],
        },
        detail={"detected": f"population estimates, years {years}"},
    )
