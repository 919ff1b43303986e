"""What every reader hands the loader: one input file read into tables, ready to commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl


@dataclass
class LoadedInput:
    """One input file read into tables, ready to commit.

    ``source_key`` names what the file is a version of (for a CIN return ``cin_<year>_<LA>``):
    two inputs with one key cannot both be in the store. ``counts`` and ``detail`` go to the
    store manifest and the load report; ``rejects`` holds no raw identifier.
    """

    source_key: str
    kind: str
    file: str
    census_year: int | None
    la_code: str | None
    tables: dict[str, pl.DataFrame]
    rejects: pl.DataFrame
    counts: dict[str, Any]
    detail: dict[str, Any] = field(default_factory=dict)
