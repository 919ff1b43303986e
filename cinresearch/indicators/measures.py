"""A measure and the whole set of definitions, as read from ``indicators.yaml``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Measure:
    """One measure as defined in indicators.yaml."""

    id: str
    family: str
    label: str
    kind: str
    units: str
    breakdowns: tuple[str, ...]
    unit: str
    dp: int
    definition: str
    source: str
    filter: str | None = None
    numerator: str | None = None
    count_distinct: str | None = None
    value_column: str | None = None
    q: float | None = None


@dataclass(frozen=True)
class Definitions:
    """Parsed indicators.yaml: settings, breakdowns, bands and measures (in file order)."""

    settings: dict[str, Any]
    breakdowns: dict[str, dict[str, Any]]
    assessment_duration_bands: tuple[dict[str, Any], ...]
    icpc_duration_bands: tuple[dict[str, Any], ...]
    duration_bands: tuple[dict[str, Any], ...]
    measures: tuple[Measure, ...]

    def measure(self, measure_id: str) -> Measure:
        for m in self.measures:
            if m.id == measure_id:
                return m
        raise KeyError(f"unknown measure {measure_id!r} (see data_contracts/indicators.yaml)")

    @property
    def families(self) -> list[str]:
        return list(dict.fromkeys(m.family for m in self.measures))

    def levels(self, breakdown: str) -> list[str]:
        return [str(x) for x in self.breakdowns[breakdown]["levels"]]
