"""Reading and checking ``data_contracts/indicators.yaml``; the measures' metadata table.

Each measure's kind, unit set and breakdowns are checked against what the code implements
(:data:`cinresearch.indicators.units.UNIT_SETS`) when the file is read.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from cinresearch.indicators.measures import Definitions, Measure
from cinresearch.indicators.units import UNIT_SETS

DEFINITIONS_PATH = Path(__file__).resolve().parents[2] / "data_contracts" / "indicators.yaml"


_KINDS = {"count", "rate", "percent", "share", "multi_share", "quantile"}


def _parse_definitions(raw: Mapping[str, Any]) -> Definitions:
    measures = []
    for entry in raw["measures"]:
        m = Measure(
            id=entry["id"],
            family=entry["family"],
            label=entry["label"],
            kind=entry["kind"],
            units=entry["units"],
            breakdowns=tuple(entry.get("breakdowns", ["total"])),
            unit=entry["unit"],
            dp=int(entry["dp"]),
            definition=str(entry.get("definition", "")).strip(),
            source=str(entry.get("source", "")),
            filter=entry.get("filter"),
            numerator=entry.get("numerator"),
            count_distinct=entry.get("count_distinct"),
            value_column=entry.get("value_column"),
            q=entry.get("q"),
        )
        if m.kind not in _KINDS:
            raise ValueError(f"measure {m.id}: kind {m.kind!r} not one of {sorted(_KINDS)}")
        if m.units not in UNIT_SETS:
            raise ValueError(f"measure {m.id}: unknown unit set {m.units!r}")
        if m.kind == "percent" and not m.numerator:
            raise ValueError(f"measure {m.id}: a percent needs a `numerator` flag")
        if m.kind == "multi_share" and not m.count_distinct:
            raise ValueError(f"measure {m.id}: a multi_share needs `count_distinct`")
        if m.kind == "quantile" and (m.q is None or not m.value_column):
            raise ValueError(f"measure {m.id}: a quantile needs `q` and `value_column`")
        for b in m.breakdowns:
            if b not in raw["breakdowns"]:
                raise ValueError(f"measure {m.id}: unknown breakdown {b!r}")
        measures.append(m)
    ids = [m.id for m in measures]
    if len(ids) != len(set(ids)):
        raise ValueError("duplicate measure ids in indicators.yaml")
    return Definitions(
        settings=dict(raw["settings"]),
        breakdowns={k: dict(v) for k, v in raw["breakdowns"].items()},
        assessment_duration_bands=tuple(raw["assessment_duration_bands"]),
        icpc_duration_bands=tuple(raw["icpc_duration_bands"]),
        duration_bands=tuple(raw["duration_bands"]),
        measures=tuple(measures),
    )


@functools.cache
def _load_cached(path: str) -> Definitions:
    return _parse_definitions(yaml.safe_load(Path(path).read_text(encoding="utf-8")))


def load_definitions(path: str | os.PathLike[str] | None = None) -> Definitions:
    """Read and check ``data_contracts/indicators.yaml`` (or another file of the same shape)."""
    return _load_cached(str(Path(path or DEFINITIONS_PATH).resolve()))


def indicator_metadata(definitions: Definitions | None = None) -> pl.DataFrame:
    """One row per measure: id, family, label, kind, unit, dp, breakdowns, definition, source."""
    defs = definitions or load_definitions()
    return pl.DataFrame(
        [
            {
                "measure": m.id,
                "family": m.family,
                "label": m.label,
                "kind": m.kind,
                "unit": m.unit,
                "dp": m.dp,
                "breakdowns": ", ".join(m.breakdowns),
                "definition": m.definition,
                "source": m.source,
            }
            for m in defs.measures
        ]
    )
