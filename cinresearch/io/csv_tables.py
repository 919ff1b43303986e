"""Shared reader for CSV inputs (SSDA903, NPD, population) against a data contract.

Every value is read as text, renamed by the contract's ``source_columns``, typed (dates in the
given format; invalid values become rejects naming the column, never silent nulls), pseudonymised
where the column is an identifier, validated with :func:`cinresearch.contracts.validate`, and
split into loaded rows and ``rejects``. Line numbers count the header as line 1.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl

from cinresearch import contracts
from cinresearch.io.errors import InputFileError

TRUE_TEXT = ["1", "TRUE", "T", "Y", "YES"]
FALSE_TEXT = ["0", "FALSE", "F", "N", "NO"]


@dataclass
class CsvText:
    """A CSV read as text: well-formed rows, plus what could not become a row."""

    frame: pl.DataFrame  # one column per header name (stripped) + ``line`` (i64)
    malformed: list[tuple[int, int]] = field(default_factory=list)  # (line, number of fields)
    blank_lines: int = 0


def _header_positions(
    path: str | os.PathLike[str], header: list[str], required: list[str]
) -> dict[str, int]:
    upper: dict[str, int] = {}
    for position, name in enumerate(header):
        if name.upper() in upper:
            raise InputFileError(path, 1, f"column {name!r} appears twice in the header")
        upper[name.upper()] = position
    missing = [c for c in required if c.upper() not in upper]
    if missing:
        raise InputFileError(path, 1, f"missing column(s) {', '.join(missing)}")
    return upper


def _read_plain_csv(path: str | os.PathLike[str], required: list[str]) -> CsvText | None:
    """:func:`read_text_csv` for a CSV without quotes, column-wise in polars; None otherwise.

    Without a quote character every record is one physical line and every comma separates
    fields, so splitting lines and then commas gives exactly what the ``csv`` module gives
    (the general reader, which a file with quotes, NUL bytes, bare carriage returns or invalid
    UTF-8 goes to). National NPD extracts are millions of such rows.
    """
    data = Path(path).read_bytes()
    if not data or b'"' in data or b"\x00" in data:
        return None
    if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    del data
    pieces = text.split("\n")
    del text
    if pieces[-1] == "":
        pieces.pop()  # the final line break ends the last record; it is not a blank line
    lines = (
        pl.DataFrame({"text": pieces}, schema={"text": pl.String})
        .with_row_index("line", offset=1)
        .with_columns(pl.col("line").cast(pl.Int64), pl.col("text").str.strip_suffix("\r"))
    )
    del pieces
    lines = lines.with_columns(
        blank=(pl.col("text").str.strip_chars() == "")
        & ~pl.col("text").str.contains(",", literal=True)
    )
    blank = int(lines.get_column("blank").sum())
    lines = lines.filter(~pl.col("blank")).drop("blank")
    if lines.is_empty():
        raise InputFileError(path, None, "file is empty: no header row")
    header_text = lines.get_column("text")[0]
    if lines.get_column("line")[0] == 1:
        header_text = header_text.removeprefix("\ufeff")
    header = [c.strip().lstrip("\ufeff") for c in header_text.split(",")]
    upper = _header_positions(path, header, required)
    records = lines.slice(1).with_columns(
        fields=pl.col("text").str.count_matches(",", literal=True) + 1
    )
    bad = records.filter(pl.col("fields") != len(header))
    good = records.filter(pl.col("fields") == len(header))
    split = good.get_column("text").str.split_exact(",", len(header) - 1).struct.unnest()
    frame = pl.DataFrame(
        {c: split.get_column(f"field_{upper[c.upper()]}") for c in required},
        schema={c: pl.String for c in required},
    )
    frame = frame.with_columns(pl.col(pl.String).str.strip_chars().replace("", None))
    frame = frame.with_columns(good.get_column("line"))
    malformed = list(bad.select("line", "fields").iter_rows())
    return CsvText(frame=frame, malformed=malformed, blank_lines=blank)


def read_text_csv(path: str | os.PathLike[str], required: list[str]) -> CsvText:
    """All columns as text, header names stripped; clean error for unreadable files.

    Read with the standard ``csv`` module so that ``line`` is the physical line a record starts
    on (blank lines and quoted line breaks counted). Blank lines are skipped (counted in
    ``blank_lines``); a row whose number of fields differs from the header's (e.g. an extra
    comma) is not loaded but listed in ``malformed`` so the caller can reject it by line.
    A CSV without quotes is read column-wise instead (:func:`_read_plain_csv`), same result.
    """
    plain = _read_plain_csv(path, required)
    return plain if plain is not None else _read_csv_module(path, required)


def _read_csv_module(path: str | os.PathLike[str], required: list[str]) -> CsvText:
    """:func:`read_text_csv` with the ``csv`` module: any quoting, line by line."""
    rows: list[list[str]] = []
    lines: list[int] = []
    malformed: list[tuple[int, int]] = []
    blank = 0
    header: list[str] | None = None
    physical = [0]  # lines decoded so far: names the line of an encoding fault

    def decoded(handle: Iterable[bytes]) -> Iterator[str]:
        for raw in handle:
            physical[0] += 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InputFileError(
                    path, physical[0], "not a readable UTF-8 CSV: invalid UTF-8 bytes"
                ) from None
            yield text.removeprefix("\ufeff") if physical[0] == 1 else text

    previous = 0
    try:
        with open(path, "rb") as handle:
            reader = csv.reader(decoded(handle))
            for record in reader:
                start, previous = previous + 1, reader.line_num
                if not record or (len(record) == 1 and not record[0].strip()):
                    blank += 1
                    continue
                if header is None:
                    header = [c.strip().lstrip("\ufeff") for c in record]
                    continue
                if len(record) != len(header):
                    malformed.append((start, len(record)))
                    continue
                rows.append(record)
                lines.append(start)
    except csv.Error as err:
        raise InputFileError(path, previous + 1, f"not a readable CSV: {err}") from None
    if header is None:
        raise InputFileError(path, None, "file is empty: no header row")
    upper = _header_positions(path, header, required)
    frame = pl.DataFrame(
        {
            c: pl.Series(c, [row[upper[c.upper()]] for row in rows], dtype=pl.String)
            for c in required
        }
    )
    frame = frame.with_columns(pl.col(pl.String).str.strip_chars().replace("", None))
    frame = frame.with_columns(pl.Series("line", lines, dtype=pl.Int64))
    return CsvText(frame=frame, malformed=malformed, blank_lines=blank)


def load_contract_csv(
    path: str | os.PathLike[str],
    table: str,
    *,
    census_year: int | None,
    la_code: str | None,
    date_format: str = "%d/%m/%Y",
    identifiers: dict[str, Callable[[pl.Series], pl.Series]] | None = None,
    derived: dict[str, pl.Expr] | None = None,
    context_keys: list[str] | None = None,
    reference_date: date | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, int]]:
    """Read a CSV for ``table``; returns (rows, rejects, counts)."""
    contract = contracts.load_contract(table)
    source = contract.source_columns
    text = read_text_csv(path, list(source))
    raw = text.frame.rename({k: v for k, v in source.items()})
    source_file = Path(path).name
    identifiers = identifiers or {}
    for column, hasher in identifiers.items():  # column-wise keyed hashes (null stays null)
        raw = raw.with_columns(hasher(raw.get_column(column)).alias(column))
    exprs = []
    for col in contract.columns:
        if derived and col.name in derived:
            exprs.append(derived[col.name].alias(col.name))
        elif col.name == "la_code" and col.name not in raw.columns:
            exprs.append(pl.lit(la_code, dtype=pl.String).alias("la_code"))
        elif col.name == "census_year" and col.name not in raw.columns:
            exprs.append(pl.lit(census_year, dtype=pl.Int16).alias("census_year"))
        elif col.dtype == pl.Date:
            exprs.append(pl.col(col.name).str.to_date(date_format, strict=False).alias(col.name))
        elif col.dtype == pl.Boolean:
            value = pl.col(col.name).str.to_uppercase()
            exprs.append(
                pl.when(value.is_in(TRUE_TEXT))
                .then(True)
                .when(value.is_in(FALSE_TEXT))
                .then(False)
                .alias(col.name)
            )
        elif col.dtype.is_numeric():
            exprs.append(pl.col(col.name).cast(col.dtype, strict=False).alias(col.name))
        elif col.codes:
            exprs.append(pl.col(col.name).str.to_uppercase().alias(col.name))
        else:
            exprs.append(pl.col(col.name))
    typed = raw.with_columns(exprs)
    reject_parts: list[pl.DataFrame] = []
    if text.malformed:
        reject_parts.append(
            contracts.reject_rows(
                [{"line": line, "fields": n} for line, n in text.malformed],
                table=table,
                rule="csv:field_count",
                message="row does not have the same number of fields as the header "
                "(e.g. an extra or missing comma); not loaded",
                source_file=source_file,
                census_year=census_year,
                la_code=la_code,
            )
        )
    record_cols = [c.name for c in contract.columns if c.name in typed.columns]
    bad = pl.Series([False] * typed.height, dtype=pl.Boolean)
    for col in contract.columns:
        if (
            col.name not in raw.columns
            or col.dtype == pl.String
            or (derived and col.name in derived)
        ):
            continue
        mask = raw.get_column(col.name).is_not_null() & typed.get_column(col.name).is_null() & ~bad
        if mask.any():
            reject_parts.append(
                contracts.reject_rows(
                    typed.filter(mask).select(["line", *record_cols]).to_dicts(),
                    table=table,
                    rule=f"type:{col.name}",
                    message=f"{col.name} is not a valid {col.dtype}"
                    + (f" ({date_format})" if col.dtype == pl.Date else ""),
                    source_file=source_file,
                    census_year=census_year,
                    la_code=la_code,
                )
            )
            bad = bad | mask
    typed = typed.filter(~bad)
    ref = reference_date or (date(census_year, 3, 31) if census_year else date(2100, 1, 1))
    keys = context_keys or [k for k in contract.key if k in typed.columns]
    checked = typed.with_columns(
        pl.lit(ref).alias("reference_date"),
        pl.struct(keys).is_duplicated().alias("duplicate_key"),
    )
    result = contracts.validate(checked, table)
    if result.issues.height:
        reject_parts.append(
            contracts.issue_rows(
                result.issues,
                checked,
                table=table,
                source_file=source_file,
                census_year=census_year,
                la_code=la_code,
                record_columns=record_cols,
            )
        )
    rows = contracts.conform(result.valid, table)
    rejects = pl.concat(reject_parts) if reject_parts else contracts.empty_rejects()
    counts = {
        "read": raw.height + len(text.malformed),
        "loaded": rows.height,
        "rejected": len(text.malformed) + int(bad.sum()) + result.n_rejected,
        "blank_lines": text.blank_lines,
    }
    counts["balanced"] = counts["read"] == counts["loaded"] + counts["rejected"]
    return rows, rejects, counts
