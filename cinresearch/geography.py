"""Geography reference data: local authorities (old and ONS codes, names) and regions of England.

Read from ``data_contracts/codes/la_codes.yaml`` (the file ``data_contracts/publication.yaml``
names under ``ees.la_codes``). LA codes changed at reorganisations (e.g. North Yorkshire
E10000023 -> E06000065 from 2024), so each code carries the census years it is valid for
(``first_census_year``/``last_census_year``, census year = year ending 31 March; null =
open-ended). Indicators (regional aggregates) and publication files (EES geography columns)
both read it from here.
"""

from __future__ import annotations

import functools
from typing import Any

import polars as pl
import yaml

from cinresearch.contracts import CONTRACTS_DIR

__all__ = ["la_lookup", "regions", "valid_in_year"]


@functools.cache
def _la_codes() -> dict[str, Any]:
    conventions = yaml.safe_load((CONTRACTS_DIR / "publication.yaml").read_text(encoding="utf-8"))
    path = CONTRACTS_DIR / conventions["ees"]["la_codes"]
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def regions() -> pl.DataFrame:
    """ONS regions of England: ``region_code`` (E12000001-E12000009), ``region_name``."""
    rows = _la_codes()["regions"]
    return pl.DataFrame(
        {"region_code": [r["code"] for r in rows], "region_name": [r["name"] for r in rows]}
    )


def la_lookup(census_year: int | None = None) -> pl.DataFrame:
    """LA reference list; with ``census_year``, only the codes valid in that year (one per LA).

    Columns: old_la_code, new_la_code, la_name, region_code, region_name, subregion,
    first_census_year, last_census_year (null = open-ended).
    """
    schema = {
        "old_la_code": pl.String,
        "new_la_code": pl.String,
        "la_name": pl.String,
        "region_code": pl.String,
        "region_name": pl.String,
        "subregion": pl.String,
        "first_census_year": pl.Int32,
        "last_census_year": pl.Int32,
    }
    rows = [{k: la.get(k) for k in schema} for la in _la_codes()["local_authorities"]]
    table = pl.DataFrame(rows, schema=schema)
    if census_year is not None:
        table = table.filter(valid_in_year(pl.lit(census_year)))
    return table


def valid_in_year(year: pl.Expr) -> pl.Expr:
    """True where a :func:`la_lookup` row's code is valid in census year ``year``."""
    first, last = pl.col("first_census_year"), pl.col("last_census_year")
    return (first.is_null() | (year >= first)) & (last.is_null() | (year <= last))
