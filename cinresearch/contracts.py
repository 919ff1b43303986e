"""Data contracts: read ``data_contracts/*.yaml`` and validate frames against them.

A contract names a table's columns (type, required, code list) and its rules. Rules are SQL
boolean expressions over the table's columns (true = the row passes), evaluated by polars, with
a DfE rule number or a short id and a severity: ``error`` rows are quarantined to ``rejects``;
``query`` rows are kept and flagged there. Validation itself runs through pandera's polars
backend; this module turns a contract into a pandera schema and pandera's failure cases into
one reject row per (record, rule).

Rules may use these context columns, which the loaders add before validating:
``reference_date`` (31 March of the census year), ``collection_start`` (1 April before it),
``duplicate_key`` (true when the row's natural key repeats in the same input) and any
table-specific flags a loader documents (``upn_check_ok``, ``none_with_others``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandera.polars as pa
import polars as pl
import yaml

from cinresearch import codes

CONTRACTS_DIR = Path(__file__).resolve().parent.parent / "data_contracts"

_TYPES: dict[str, pl.DataType] = {
    "str": pl.String(),
    "date": pl.Date(),
    "bool": pl.Boolean(),
    "i8": pl.Int8(),
    "i16": pl.Int16(),
    "i32": pl.Int32(),
    "i64": pl.Int64(),
    "f64": pl.Float64(),
    "list[str]": pl.List(pl.String()),
}

REJECTS_SCHEMA = {
    "source_file": pl.String(),
    "line": pl.Int64(),
    "table": pl.String(),
    "rule": pl.String(),
    "severity": pl.String(),
    "action": pl.String(),
    "message": pl.String(),
    "record": pl.String(),
    "census_year": pl.Int16(),
    "la_code": pl.String(),
}


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    dtype: pl.DataType
    required: bool = False
    codes: str | None = None
    description: str = ""


@dataclass(frozen=True)
class Rule:
    id: str
    check: str
    message: str
    severity: str = "error"

    @property
    def expr(self) -> pl.Expr:
        return pl.sql_expr(self.check)


@dataclass(frozen=True)
class Contract:
    """A table's contract as read from YAML."""

    table: str
    description: str
    key: tuple[str, ...]
    columns: tuple[ColumnSpec, ...]
    rules: tuple[Rule, ...] = ()
    source_columns: dict[str, str] = field(default_factory=dict)

    @property
    def schema(self) -> pl.Schema:
        return pl.Schema({c.name: c.dtype for c in self.columns})

    def column(self, name: str) -> ColumnSpec:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.table} has no column {name!r}")


@functools.cache
def load_contract(table: str, directory: Path = CONTRACTS_DIR) -> Contract:
    """Read ``data_contracts/<table>.yaml``."""
    path = directory / f"{table}.yaml"
    if not path.exists():
        raise KeyError(f"no data contract for table {table!r} (looked for {path})")
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    columns = tuple(
        ColumnSpec(
            name=c["name"],
            dtype=_TYPES[c["type"]],
            required=bool(c.get("required", False)),
            codes=c.get("codes"),
            description=c.get("description", ""),
        )
        for c in raw["columns"]
    )
    rules = tuple(
        Rule(
            id=str(r["id"]),
            check=r["check"],
            message=r["message"],
            severity=r.get("severity", "error"),
        )
        for r in raw.get("rules") or []
    )
    return Contract(
        table=raw["table"],
        description=raw.get("description", ""),
        key=tuple(raw.get("key", [])),
        columns=columns,
        rules=rules,
        source_columns=dict(raw.get("source_columns") or {}),
    )


def contract_tables(directory: Path = CONTRACTS_DIR) -> list[str]:
    """Names of all tables that have a contract (a file with a top-level ``table:`` key)."""
    return sorted(
        p.stem
        for p in directory.glob("*.yaml")
        if any(line.startswith("table:") for line in p.read_text(encoding="utf-8").splitlines())
    )


def schema(table: str) -> pl.Schema:
    """The polars schema of a contracted table."""
    if table == "rejects":
        return pl.Schema(REJECTS_SCHEMA)
    return load_contract(table).schema


def empty_frame(table: str) -> pl.DataFrame:
    """An empty frame with the table's schema (for stores that have not loaded it yet)."""
    return pl.DataFrame(schema=schema(table))


def empty_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECTS_SCHEMA)


# -- pandera schema from a contract ------------------------------------------------------------
def _year_validity_expr(column: str, list_name: str) -> pl.Expr | None:
    """True where the code is valid in the row's census year (None when the list has no ranges)."""
    ranges = codes.year_ranges(list_name)
    if not ranges:
        return None
    year = pl.col("census_year")
    ok = pl.lit(True)
    for code, (start, end) in ranges.items():
        in_range = pl.lit(True)
        if start is not None:
            in_range = in_range & (year >= start)
        if end is not None:
            in_range = in_range & (year <= end)
        ok = ok & ((pl.col(column) != code) | in_range)
    return ok.fill_null(True)


def _list_year_validity_expr(column: str, list_name: str) -> pl.Expr | None:
    ranges = codes.year_ranges(list_name)
    if not ranges:
        return None
    year = pl.col("census_year")
    bad = pl.lit(False)
    for code, (start, end) in ranges.items():
        out_of_range = pl.lit(False)
        if start is not None:
            out_of_range = out_of_range | (year < start)
        if end is not None:
            out_of_range = out_of_range | (year > end)
        bad = bad | (pl.col(column).list.contains(code) & out_of_range)
    return (~bad).fill_null(True)


@dataclass(frozen=True)
class _CheckInfo:
    rule: str
    severity: str
    message: str


def _build_pandera(
    contract: Contract,
) -> tuple[pa.DataFrameSchema, dict[str, _CheckInfo], list[tuple[str, pl.Expr]]]:
    """A pandera schema for the contract, how each check name maps to a rule, and the checks.

    The checks come back as ``(name, failed)`` pairs, ``failed`` a polars expression true for a
    row that fails: every check is row-wise, so :func:`validate` evaluates them in one polars
    pass and asks pandera only for the frame's columns and dtypes (pandera's per-failure report
    costs about 30 µs a failed row, which a national file with many failures cannot afford).
    ``tests/test_contracts.py`` checks the two agree on every contract.
    """
    info: dict[str, _CheckInfo] = {}
    columns: dict[str, pa.Column] = {}
    frame_checks: list[pa.Check] = []
    column_failures: list[tuple[str, pl.Expr]] = []
    frame_failures: list[tuple[str, pl.Expr]] = []

    def frame_check(expr: pl.Expr, name: str) -> None:
        frame_checks.append(pa.Check(_expr_check(expr), error=name))
        frame_failures.append((name, ~expr))

    for col in contract.columns:
        checks = []
        if col.required:
            column_failures.append((f"not_nullable:{col.name}", pl.col(col.name).is_null()))
        if col.codes:
            allowed = sorted(codes.code_list(col.codes))
            name = f"codes:{col.name}"
            if isinstance(col.dtype, pl.List):
                expr = (
                    pl.col(col.name)
                    .list.eval(pl.element().is_in(allowed))
                    .list.all()
                    .fill_null(True)
                )
                frame_check(expr, name)
            else:
                checks.append(pa.Check.isin(allowed, error=name))
                column_failures.append(
                    (name, pl.col(col.name).is_not_null() & ~pl.col(col.name).is_in(allowed))
                )
            info[name] = _CheckInfo(
                rule=f"code:{col.codes}",
                severity="error",
                message=f"{col.name}: code not in the {col.codes} code list",
            )
            year_expr = (
                _list_year_validity_expr(col.name, col.codes)
                if isinstance(col.dtype, pl.List)
                else _year_validity_expr(col.name, col.codes)
            )
            if year_expr is not None:
                yname = f"code_year:{col.name}"
                frame_check(year_expr, yname)
                info[yname] = _CheckInfo(
                    rule=f"code_year:{col.codes}",
                    severity="query",
                    message=f"{col.name}: code not valid in this census year",
                )
        columns[col.name] = pa.Column(col.dtype, nullable=not col.required, checks=checks)
        info[f"not_nullable:{col.name}"] = _CheckInfo(
            rule=f"required:{col.name}",
            severity="error",
            message=f"{col.name} is required but missing",
        )
    for rule in contract.rules:
        name = f"rule:{rule.id}"
        frame_check(rule.expr.fill_null(True), name)
        info[name] = _CheckInfo(rule=rule.id, severity=rule.severity, message=rule.message)
    schema = pa.DataFrameSchema(columns, checks=frame_checks, strict=False, coerce=False)
    return schema, info, column_failures + frame_failures


def _expr_check(expr: pl.Expr):
    def check(data: Any) -> pl.LazyFrame:
        return data.lazyframe.select(expr)

    return check


@functools.cache
def pandera_schema(
    table: str,
) -> tuple[pa.DataFrameSchema, dict[str, _CheckInfo], list[tuple[str, pl.Expr]]]:
    return _build_pandera(load_contract(table))


@dataclass
class Validation:
    """The outcome of validating one frame: rows kept, and reject/flag rows with reasons."""

    valid: pl.DataFrame
    rejected_index: pl.Series
    issues: pl.DataFrame  # row_index, rule, severity, message

    @property
    def n_rejected(self) -> int:
        return self.rejected_index.len()


def validate(frame: pl.DataFrame, table: str) -> Validation:
    """Validate ``frame`` (with context columns) against ``table``'s contract.

    Returns the rows that pass every ``error`` check (context columns kept, so the caller can
    drop them), the row positions rejected, and one issue row per (row, failed check).
    """
    pandera, info, checks = pandera_schema(table)
    frame = frame.with_row_index("__row")
    schema = {
        "row_index": pl.UInt32,
        "rule": pl.String,
        "severity": pl.String,
        "message": pl.String,
    }
    try:  # columns and dtypes: any failure on an empty frame concerns the whole frame
        pandera.validate(frame.head(0), lazy=True)
    except pa.errors.SchemaErrors as err:
        case = err.failure_cases.row(0, named=True)
        raise ValueError(
            f"contract {table}: check {case['check']} on {case['column']} failed for the whole frame"
        ) from err
    except pa.errors.SchemaError as err:
        raise ValueError(f"contract {table}: {err}") from err
    flags = [failed.fill_null(False).alias(f"_check{i}") for i, (_, failed) in enumerate(checks)]
    failed_rows = frame.lazy().select("__row", *flags)
    if flags:
        failed_rows = failed_rows.filter(
            pl.any_horizontal(pl.col(f.meta.output_name()) for f in flags)
        )
    failed_rows = failed_rows.collect()
    parts = []
    for i, (name, _) in enumerate(checks):
        ci = info[name]
        hit = failed_rows.filter(pl.col(f"_check{i}"))
        if hit.height:
            parts.append(
                hit.select(
                    pl.col("__row").alias("row_index"),
                    pl.lit(ci.rule).alias("rule"),
                    pl.lit(ci.severity).alias("severity"),
                    pl.lit(ci.message).alias("message"),
                )
            )
    issues = (
        pl.concat(parts).cast(schema).unique(maintain_order=True)
        if parts
        else pl.DataFrame(schema=schema)
    )
    rejected = issues.filter(pl.col("severity") == "error").get_column("row_index").unique().sort()
    valid = frame.filter(~pl.col("__row").is_in(rejected.implode())).drop("__row")
    return Validation(valid=valid, rejected_index=rejected, issues=issues)


def conform(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """Select and order the contract's columns, casting to the contracted types."""
    contract = load_contract(table)
    return frame.select([pl.col(c.name).cast(c.dtype) for c in contract.columns])


def issue_rows(
    issues: pl.DataFrame,
    records: pl.DataFrame,
    *,
    table: str,
    source_file: str,
    census_year: int | None,
    la_code: str | None,
    record_columns: Sequence[str],
    line_column: str = "line",
) -> pl.DataFrame:
    """Reject/flag rows for the ``rejects`` table from validation issues on ``records``."""
    if issues.is_empty():
        return empty_rejects()
    positions = issues.get_column("row_index").to_list()
    picked = records.select([line_column, *record_columns])[positions]
    record_json = [
        json.dumps(r, default=str, sort_keys=True) for r in picked.select(record_columns).to_dicts()
    ]
    return pl.DataFrame(
        {
            "source_file": source_file,
            "line": picked.get_column(line_column).cast(pl.Int64),
            "table": table,
            "rule": issues.get_column("rule"),
            "severity": issues.get_column("severity"),
            "action": issues.get_column("severity").replace_strict(
                {"error": "rejected", "query": "flagged"}, default="rejected"
            ),
            "message": issues.get_column("message"),
            "record": record_json,
            "census_year": census_year,
            "la_code": la_code,
        },
        schema=REJECTS_SCHEMA,
    )


def reject_rows(
    records: Iterable[dict[str, Any]],
    *,
    table: str,
    rule: str,
    message: str,
    source_file: str,
    census_year: int | None,
    la_code: str | None,
    severity: str = "error",
) -> pl.DataFrame:
    """Reject rows for records that failed before validation (e.g. unparseable dates)."""
    rows = []
    for rec in records:
        rec = dict(rec)
        line = rec.pop("line", None)
        rows.append(
            {
                "source_file": source_file,
                "line": line,
                "table": table,
                "rule": rule,
                "severity": severity,
                "action": "rejected" if severity == "error" else "flagged",
                "message": message,
                "record": json.dumps(rec, default=str, sort_keys=True),
                "census_year": census_year,
                "la_code": la_code,
            }
        )
    return pl.DataFrame(rows, schema=REJECTS_SCHEMA) if rows else empty_rejects()
