"""The tidy output of the indicators: geography levels, counting bases and columns.

Every row is one geography x measure x breakdown level (columns in :data:`OUTPUT_SCHEMA`,
described in :mod:`cinresearch.indicators`); ``basis`` says which returns were counted.
"""

from __future__ import annotations

import polars as pl

NATIONAL = "National"


REGIONAL = "Regional"


LOCAL_AUTHORITY = "Local authority"


ENGLAND_CODE = "E92000001"


GEOGRAPHY_LEVELS = {"national": NATIONAL, "regional": REGIONAL, "la": LOCAL_AUTHORITY}


#: ``as_returned`` (default, as DfE): year Y from the year-Y return alone (history from earlier
#: returns only for look-backs); ``revised``: from the returns merged across all loaded years
#: (latest return wins), so later returns' corrections and closures change earlier years.
AS_RETURNED = "as_returned"


REVISED = "revised"


BASES = (AS_RETURNED, REVISED)


OUTPUT_SCHEMA = pl.Schema(
    {
        "geographic_level": pl.String,
        "region_code": pl.String,
        "la_code": pl.String,
        "census_year": pl.Int16,
        "measure": pl.String,
        "breakdown": pl.String,
        "breakdown_level": pl.String,
        "numerator": pl.Float64,
        "denominator": pl.Float64,
        "value": pl.Float64,
        "unit": pl.String,
        "basis": pl.String,
    }
)


def basis_note(basis: str) -> str:
    """One line for a report saying how the official figures were counted (markdown)."""
    if basis == AS_RETURNED:
        return (
            "**Official figures:** as returned — each census year counted from that year's "
            "own return, as DfE publishes them (later returns do not change them)."
        )
    if basis == REVISED:
        return (
            "**Official figures: revised** — later returns applied to earlier years (later "
            "closures, corrections and characteristics), so they differ from DfE's published "
            "figures."
        )
    raise ValueError(f"basis must be one of {BASES}, got {basis!r}")
