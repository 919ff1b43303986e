"""Raw frames as the readers build them, before typing and validation.

Every reader (lxml, polars, compiled; in this process or in a worker) returns one frame per
table of :data:`~cinresearch.io.cin.schema.RAW_COLUMNS`, counts of the elements read, and the
paths of unrecognised elements. The helpers here are what they share: column lists compacted
to frames (:class:`RawColumns`), the unrecognised-path counts, and the pseudonymisation of the
children frame, which runs in the process that parsed it so raw identifiers never leave it.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from cinresearch.io.cin.schema import RAW_COLUMNS, raw_dtype
from cinresearch.pseudonymise import Pseudonymiser, checked_upns

#: what a reader returns for a file's children: raw frames by table, element counts, strays
#: (line, element name) outside any child, and unrecognised element paths ([count, first line])
RawParse = tuple[
    dict[str, pl.DataFrame], dict[str, int], list[tuple[int | None, str]], dict[str, list[int]]
]


class RawColumns:
    """Column lists for one raw table, compacted to a polars frame every chunk."""

    def __init__(self, names: list[str]):
        self.names = names
        self.data: dict[str, list[Any]] = {n: [] for n in names}
        self.frames: list[pl.DataFrame] = []

    def add(self, row: dict[str, Any]) -> None:
        for name in self.names:
            self.data[name].append(row.get(name))

    def flush(self) -> None:
        if self.data[self.names[0]]:
            self.frames.append(self._frame(self.data))
            self.data = {n: [] for n in self.names}

    def _frame(self, data: dict[str, list[Any]]) -> pl.DataFrame:
        return pl.DataFrame(data, schema={n: raw_dtype(n) for n in self.names})

    def frame(self) -> pl.DataFrame:
        self.flush()
        if not self.frames:
            return self._frame({n: [] for n in self.names})
        return pl.concat(self.frames, how="vertical", rechunk=True)


def empty_raw_frame(table: str) -> pl.DataFrame:
    """A raw frame with no rows (for a table a fast reader never reads, e.g. a 2025-26 module)."""
    return RawColumns(RAW_COLUMNS[table]).frame()


def unrecognised_frame(found: dict[str, list[int]]) -> pl.DataFrame:
    """Rows of unrecognised element paths (``path -> [count, first line]``), sorted by path."""
    paths = sorted(found)
    return pl.DataFrame(
        {
            "path": paths,
            "element": [p.rpartition("/")[2] for p in paths],
            "count": [found[p][0] for p in paths],
            "first_line": [found[p][1] or None for p in paths],
        },
        schema={"path": pl.String, "element": pl.String, "count": pl.Int64, "first_line": pl.Int64},
    )


def merge_unrecognised(
    into: dict[str, list[int]], found: dict[str, list[int]], line_offset: int = 0
) -> None:
    """Add the counts of ``found`` to ``into`` (first lines shifted by ``line_offset``)."""
    for path, (count, line) in found.items():
        hit = into.get(path)
        if hit is None:
            into[path] = [count, line + line_offset if line else 0]
        else:
            hit[0] += count


def pseudonymise_children(children: pl.DataFrame, key: Pseudonymiser, la_code: str) -> pl.DataFrame:
    """Replace the raw ``la_child_id``, ``upn`` and ``former_upn`` columns by keyed hashes.

    Adds ``child_id``, ``upn_hash``, ``former_upn_hash`` and ``upn_check_ok`` (true when the
    UPN passes the DfE check or is absent); the raw columns are dropped. Runs where the raw
    frame is built (in the parsing process), so raw identifiers never leave it.
    """
    ids = children.get_column("la_child_id").str.strip_chars()

    upn_ok, upns = checked_upns(children.get_column("upn"))
    _, former = checked_upns(children.get_column("former_upn"))
    return children.with_columns(
        key.hash_series("child", ids, prefix=f"{la_code}\x1f").alias("child_id"),
        key.hash_series("upn", upns).alias("upn_hash"),
        key.hash_series("upn", former).alias("former_upn_hash"),
        (upn_ok | children.get_column("upn").is_null()).alias("upn_check_ok"),
    ).drop("la_child_id", "upn", "former_upn")
