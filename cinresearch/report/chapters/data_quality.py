"""Chapter 1 (``01_data_quality``): what was loaded, whether every record read is accounted
for, how the latest load run went, and how complete the key fields are.

Everything here is read from the store's manifest, its load report and its tables; counts are
records (rows), shown through :func:`cinresearch.report.tables.show_table` by the notebook.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from cinresearch.report.scope import ENGLAND, as_store
from cinresearch.store import Store

__all__ = [
    "KIND_LABELS",
    "element_reconciliation",
    "field_completeness",
    "inputs_frame",
    "load_run_frame",
]

#: Reader names of the kinds of input in the store's manifest.
KIND_LABELS = {
    "cin_xml": "CIN census return (XML)",
    "ssda903_header": "SSDA903 header (CSV)",
    "ssda903_episodes": "SSDA903 episodes (CSV)",
    "npd": "NPD pupil extract (CSV)",
    "population": "ONS population (CSV)",
}


def _in_scope(record: Any, la_code: str, up_to: int | None) -> bool:
    if la_code != ENGLAND and record.la_code != la_code:
        return False
    return up_to is None or record.census_year is None or int(record.census_year) <= up_to


def inputs_frame(
    store: Store | str | os.PathLike[str], la_code: str = ENGLAND, up_to: int | None = None
) -> pl.DataFrame:
    """One row per input in the store's manifest (for one LA: its returns only; with ``up_to``:
    returns for census years up to it, plus inputs without a census year such as the NPD):
    ``kind, census_year, la_code, file, children, records_loaded, rejected, flagged, balanced``
    (``children``: Child records of a CIN return, else null)."""
    rows = []
    for r in as_store(store).inputs():
        if not _in_scope(r, la_code, up_to):
            continue
        counts = r.counts or {}
        rows.append(
            {
                "kind": KIND_LABELS.get(r.kind, r.kind),
                "census_year": r.census_year,
                "la_code": r.la_code,
                "file": r.file,
                "children": (counts.get("rows") or {}).get("children")
                if r.kind == "cin_xml"
                else None,
                "records_loaded": sum(int(v) for v in (counts.get("rows") or {}).values()),
                "rejected": int(counts.get("rejected") or 0),
                "flagged": int(counts.get("flagged") or 0),
                "balanced": bool(counts.get("balanced", True)),
            }
        )
    schema = {
        "kind": pl.String,
        "census_year": pl.Int16,
        "la_code": pl.String,
        "file": pl.String,
        "children": pl.Int64,
        "records_loaded": pl.Int64,
        "rejected": pl.Int64,
        "flagged": pl.Int64,
        "balanced": pl.Boolean,
    }
    return pl.DataFrame(rows, schema=schema)


def element_reconciliation(
    store: Store | str | os.PathLike[str], la_code: str = ENGLAND, up_to: int | None = None
) -> pl.DataFrame:
    """Records read from the inputs against records loaded plus rejected, by kind of input and
    element (CIN XML elements such as ``Child``; CSV rows): ``kind, element, inputs, read,
    loaded, rejected, unaccounted`` (read − loaded − rejected; 0 when everything reconciles)."""
    totals: dict[tuple[str, str], dict[str, int]] = {}
    for r in as_store(store).inputs():
        if not _in_scope(r, la_code, up_to):
            continue
        for element, c in ((r.counts or {}).get("elements") or {}).items():
            if not isinstance(c, Mapping):
                continue
            key = (KIND_LABELS.get(r.kind, r.kind), "record (row)" if element == "row" else element)
            acc = totals.setdefault(key, {"inputs": 0, "read": 0, "loaded": 0, "rejected": 0})
            acc["inputs"] += 1
            for k in ("read", "loaded", "rejected"):
                acc[k] += int(c.get(k) or 0)
    rows = [{"kind": k, "element": e, **v} for (k, e), v in totals.items()]
    schema = {
        "kind": pl.String,
        "element": pl.String,
        "inputs": pl.Int64,
        "read": pl.Int64,
        "loaded": pl.Int64,
        "rejected": pl.Int64,
    }
    return (
        pl.DataFrame(rows, schema=schema)
        .with_columns(unaccounted=pl.col("read") - pl.col("loaded") - pl.col("rejected"))
        .sort("kind", "element")
    )


def load_run_frame(store: Store | str | os.PathLike[str]) -> pl.DataFrame:
    """Files of the latest load run (``reports/load_report.json``): ``file, kind, status,
    message`` (status: loaded, unchanged, failed or skipped); empty if there is no report."""
    report = as_store(store).read_json("reports/load_report.json") or {}
    rows = [
        {
            "file": f.get("file"),
            "kind": KIND_LABELS.get(f.get("kind") or "", f.get("kind")),
            "status": f.get("status"),
            "message": f.get("message"),
        }
        for f in report.get("files", [])
    ]
    return pl.DataFrame(
        rows, schema=dict.fromkeys(["file", "kind", "status", "message"], pl.String)
    )


def field_completeness(
    frame: pl.DataFrame | pl.LazyFrame,
    fields: Mapping[str, tuple[pl.Expr, pl.Expr]],
    by: Sequence[str] = ("la_code", "census_year"),
) -> pl.DataFrame:
    """Completeness of key fields: for each field, records it applies to and records where it
    is usable, by ``by``.

    ``fields`` maps a field label to ``(applies, complete)`` boolean expressions (e.g. closure
    reason applies to closed episodes only). Returns ``*by, field, records, complete, pct``
    (``pct`` null when no record applies).
    """
    lf = frame.lazy() if isinstance(frame, pl.DataFrame) else frame
    parts = []
    for label, (applies, complete) in fields.items():
        # flags first (a literal condition broadcasts in with_columns, not inside an agg)
        flagged = lf.with_columns(
            __applies=applies.fill_null(False),
            __complete=applies.fill_null(False) & complete.fill_null(False),
        )
        parts.append(
            flagged.group_by(list(by))
            .agg(
                records=pl.col("__applies").sum().cast(pl.Int64),
                complete=pl.col("__complete").sum().cast(pl.Int64),
            )
            .with_columns(field=pl.lit(label))
        )
    if not parts:
        raise ValueError("no fields given")
    out = pl.concat(parts).collect()
    return (
        out.with_columns(
            pct=pl.when(pl.col("records") > 0).then(100.0 * pl.col("complete") / pl.col("records"))
        )
        .select(*by, "field", "records", "complete", "pct")
        .sort(*by, "field")
    )
