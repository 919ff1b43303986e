"""Data contracts: read ``data_contracts/*.yaml`` and validate frames against them.

A contract names a table's columns (type, required, code list) and its rules. Every rule in a
``rules:`` list is one entry of the rule catalogue (``docs/rules.md``, rendered by
``python -m cinresearch.tools.render_rules``) with these fields:

``id``
    DfE's rule code (``8925``, ``8525Q``); only where DfE has no rule, a descriptive id
    prefixed ``cr_``.
``severity``
    DfE's severity, ``error`` or ``query``.
``action``
    Ours: ``reject_record`` (the record goes to ``rejects`` instead of its table, and the
    records nested under it with it), ``drop_value`` (a bad code in a list is removed from the
    list, or for a one-code-per-row table such as ``disabilities`` that row; the parent record
    is kept) or ``flag`` (the record is kept and a row added to ``rejects``). A query never
    removes a record: a rule with severity ``query`` must have action ``flag``, and a contract
    that says otherwise fails to load.
``years``
    Census years the rule applies to: ``"2018-"``, ``"2018-2025"``, ``"2022"`` or ``"all"``;
    outside them the rule is not evaluated (tables without ``census_year`` take ``"all"`` only).
``check``
    A SQL boolean expression over the table's columns (true = the row passes), evaluated by
    polars. For ``drop_value`` rules it is ``"<column> in code list <list>"`` and names the
    column (``column:``) whose code list it enforces.
``message``
    Our own words, shown in ``rejects``.
``test``
    The pytest node id of a test that exercises the rule.

``data_contracts/cross_record_rules.yaml`` holds rules that compare records (overlaps,
activity before the referral...) as a top-level ``rules:`` list with the same fields plus
``table`` (the table whose rows they flag); their check is code, named by
``implemented_by`` in place of ``check``, with an optional ``why``. :func:`rule_catalogue`
reads both kinds.

Validation itself runs through pandera's polars backend; this module turns a contract into a
pandera schema and pandera's failure cases into one reject row per (record, rule).

Rules may use these context columns, which the loaders add before validating:
``reference_date`` (31 March of the census year), ``collection_start`` (1 April before it),
``duplicate_key`` (true when the row's natural key repeats in the same input) and any
table-specific flags a loader documents (``upn_check_ok``, ``none_with_others``).
"""

from __future__ import annotations

import functools
import json
import re
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

ISSUES_SCHEMA = {
    "row_index": pl.UInt32,
    "rule": pl.String,
    "severity": pl.String,
    "message": pl.String,
    "action": pl.String,
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


SEVERITIES = ("error", "query")
ACTIONS = ("reject_record", "drop_value", "flag")
RULE_FIELDS = ("id", "severity", "action", "years", "check", "message", "test")
CROSS_RECORD_FILE = "cross_record_rules.yaml"
_YEARS = re.compile(r"^(?:all|(\d{4})(?:(-)(\d{4})?)?)$")


class ContractError(ValueError):
    """A data contract that breaks the catalogue's rules (raised when it is read)."""


def parse_years(years: str) -> tuple[int | None, int | None]:
    """``"2018-"`` → (2018, None); ``"2018-2025"`` → (2018, 2025); ``"2022"``; ``"all"``."""
    match = _YEARS.match(str(years).strip())
    if not match:
        raise ContractError(f"years {years!r} is not 'all', 'YYYY', 'YYYY-' or 'YYYY-YYYY'")
    start, dash, end = match.groups()
    if start is None:
        return None, None
    first = int(start)
    last = int(end) if end else (None if dash else first)
    if last is not None and last < first:
        raise ContractError(f"years {years!r} ends before it starts")
    return first, last


@dataclass(frozen=True)
class Rule:
    """One catalogue entry (see the module docstring for the fields)."""

    id: str
    check: str
    message: str
    severity: str = "error"
    action: str = "reject_record"
    years: str = "all"
    test: str = ""
    table: str = ""
    column: str | None = None
    implemented_by: str | None = None  # cross-record rules: the function that checks them
    why: str = ""

    @property
    def expr(self) -> pl.Expr:
        return pl.sql_expr(self.check)

    @property
    def year_range(self) -> tuple[int | None, int | None]:
        return parse_years(self.years)

    def applies_in(self, census_year: int) -> bool:
        start, end = self.year_range
        return (start is None or census_year >= start) and (end is None or census_year <= end)


def _parse_rule(
    raw: dict[str, Any], *, table: str, source: str, cross_record: bool = False
) -> Rule:
    """A catalogue entry from YAML, refusing one that breaks the catalogue's rules."""
    where = f"{source}: rule {raw.get('id')!r}"
    required = [f for f in RULE_FIELDS if not (cross_record and f == "check")]
    missing = [f for f in required if raw.get(f) in (None, "")]
    if cross_record and raw.get("check") in (None, "") and not raw.get("implemented_by"):
        missing.append("check (or implemented_by)")
    if missing:
        raise ContractError(f"{where} lacks {', '.join(missing)}")
    extra = {"table", "implemented_by", "why"} if cross_record else {"column"}
    unknown = set(raw) - {*RULE_FIELDS, *extra}
    if unknown:
        raise ContractError(f"{where} has unknown fields {sorted(unknown)}")
    rule = Rule(
        id=str(raw["id"]),
        check=str(raw.get("check") or ""),
        message=str(raw["message"]),
        severity=str(raw["severity"]),
        action=str(raw["action"]),
        years=str(raw["years"]),
        test=str(raw["test"]),
        table=str(raw.get("table") or table),
        column=raw.get("column"),
        implemented_by=raw.get("implemented_by"),
        why=str(raw.get("why") or ""),
    )
    if rule.severity not in SEVERITIES:
        raise ContractError(f"{where}: severity must be one of {SEVERITIES}")
    if rule.action not in ACTIONS:
        raise ContractError(f"{where}: action must be one of {ACTIONS}")
    if rule.severity == "query" and rule.action != "flag":
        raise ContractError(f"{where}: a query never removes a record; its action must be flag")
    if not (rule.id.startswith("cr_") or re.fullmatch(r"\d{3,4}Q?", rule.id)):
        raise ContractError(f"{where}: id must be a DfE code (e.g. 8925, 8525Q) or start cr_")
    if (rule.action == "drop_value") != (rule.column is not None):
        raise ContractError(f"{where}: drop_value rules, and only they, name a column")
    if not rule.table:
        raise ContractError(f"{where}: no table")
    try:
        parse_years(rule.years)
    except ContractError as err:
        raise ContractError(f"{where}: {err}") from None
    return rule


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
        _parse_rule(r, table=raw["table"], source=path.name) for r in raw.get("rules") or []
    )
    contract = Contract(
        table=raw["table"],
        description=raw.get("description", ""),
        key=tuple(raw.get("key", [])),
        columns=columns,
        rules=rules,
        source_columns=dict(raw.get("source_columns") or {}),
    )
    _check_contract_rules(contract, path.name)
    return contract


def _check_contract_rules(contract: Contract, source: str) -> None:
    names = {c.name for c in contract.columns}
    seen: set[str] = set()
    for rule in contract.rules:
        where = f"{source}: rule {rule.id!r}"
        if rule.id in seen:
            raise ContractError(f"{where} given twice")
        seen.add(rule.id)
        if rule.table != contract.table:
            raise ContractError(f"{where}: table {rule.table!r} in the {contract.table} contract")
        start, end = rule.year_range
        if "census_year" not in names and (start, end) != (None, None):
            raise ContractError(f"{where}: {contract.table} has no census_year; years must be all")
        if rule.column is not None:
            col = next((c for c in contract.columns if c.name == rule.column), None)
            if col is None or not col.codes:
                raise ContractError(f"{where}: column {rule.column!r} has no code list")
            if rule.check != f"{col.name} in code list {col.codes}":
                raise ContractError(
                    f"{where}: a drop_value check reads '{col.name} in code list {col.codes}'"
                )
            if not isinstance(col.dtype, pl.List) and col.name not in contract.key:
                raise ContractError(
                    f"{where}: drop_value on a single-value column must be a key column "
                    "(the row is the value); otherwise reject or flag the record"
                )


def contract_tables(directory: Path = CONTRACTS_DIR) -> list[str]:
    """Names of all tables that have a contract (a top-level ``table:`` key)."""
    top = re.compile(r"^table:", re.MULTILINE)
    return sorted(
        p.stem for p in directory.glob("*.yaml") if top.search(p.read_text(encoding="utf-8"))
    )


def cross_record_rules(directory: Path = CONTRACTS_DIR) -> tuple[Rule, ...]:
    """Rules that compare records, from ``cross_record_rules.yaml`` (each names its table)."""
    path = directory / CROSS_RECORD_FILE
    if not path.exists():
        return ()
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if set(raw) - {"rules", "description"}:
        raise ContractError(f"{path.name}: only a top-level rules: list (and description)")
    rules = []
    for entry in raw.get("rules") or []:
        if not entry.get("table"):
            raise ContractError(f"{path.name}: rule {entry.get('id')!r} lacks table")
        rule = _parse_rule(entry, table=str(entry["table"]), source=path.name, cross_record=True)
        if rule.action == "drop_value":
            raise ContractError(f"{path.name}: rule {rule.id!r}: cross-record rules do not drop")
        rules.append(rule)
    keys = [(r.table, r.id) for r in rules]
    if len(keys) != len(set(keys)):
        raise ContractError(f"{path.name}: a (table, id) is given twice")
    return tuple(rules)


def rule_catalogue(directory: Path = CONTRACTS_DIR) -> list[Rule]:
    """Every rule in ``data_contracts/``: per-table contracts, then cross-record rules."""
    rules: list[Rule] = []
    for table in contract_tables(directory):
        rules.extend(load_contract(table, directory).rules)
    rules.extend(cross_record_rules(directory))
    return rules


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
    action: str = "reject_record"
    drop_column: str | None = None  # drop_value: the column whose bad values are removed


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

    drops = {r.column: r for r in contract.rules if r.action == "drop_value"}
    for col in contract.columns:
        checks = []
        if col.required:
            column_failures.append((f"not_nullable:{col.name}", pl.col(col.name).is_null()))
        if col.codes and col.name in drops:
            rule = drops[col.name]
            allowed = sorted(codes.code_list(col.codes))
            name = f"rule:{rule.id}"
            if isinstance(col.dtype, pl.List):
                valid = pl.col(col.name).list.eval(pl.element().is_in(allowed)).list.all()
            else:
                valid = pl.col(col.name).is_null() | pl.col(col.name).is_in(allowed)
            frame_check(_in_years(valid.fill_null(True), rule), name)
            info[name] = _CheckInfo(
                rule=rule.id,
                severity=rule.severity,
                message=rule.message,
                action=rule.action,
                drop_column=col.name,
            )
        if col.codes and col.name not in drops:
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
        if col.codes:
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
                    action="flag",
                )
        columns[col.name] = pa.Column(col.dtype, nullable=not col.required, checks=checks)
        info[f"not_nullable:{col.name}"] = _CheckInfo(
            rule=f"required:{col.name}",
            severity="error",
            message=f"{col.name} is required but missing",
        )
    for rule in contract.rules:
        if rule.action == "drop_value":
            continue  # checked with its column above
        name = f"rule:{rule.id}"
        frame_check(_in_years(rule.expr.fill_null(True), rule), name)
        info[name] = _CheckInfo(
            rule=rule.id, severity=rule.severity, message=rule.message, action=rule.action
        )
    schema = pa.DataFrameSchema(columns, checks=frame_checks, strict=False, coerce=False)
    return schema, info, column_failures + frame_failures


def _in_years(passes: pl.Expr, rule: Rule) -> pl.Expr:
    """``passes``, or true outside the rule's census years (rules apply only in their years)."""
    start, end = rule.year_range
    if start is None and end is None:
        return passes
    year = pl.col("census_year")
    outside = pl.lit(False)
    if start is not None:
        outside = outside | (year < start)
    if end is not None:
        outside = outside | (year > end)
    return passes | outside.fill_null(False)


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
    rejected_index: pl.Series  # rows removed: reject_record, and drop_value on a row's value
    issues: pl.DataFrame  # row_index, rule, severity, message, action

    @property
    def n_rejected(self) -> int:
        return self.rejected_index.len()


def validate(frame: pl.DataFrame, table: str) -> Validation:
    """Validate ``frame`` (with context columns) against ``table``'s contract.

    Returns the rows kept (context columns kept, so the caller can drop them) — every row
    but those failing a ``reject_record`` check or a ``drop_value`` check on a one-value row;
    bad codes in a list column are removed from the list — the row positions removed, and one
    issue row per (row, failed check). Flagged rows are kept unchanged.
    """
    pandera, info, checks = pandera_schema(table)
    frame = frame.with_row_index("__row")
    schema = ISSUES_SCHEMA
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
                    pl.lit(ci.action).alias("action"),
                )
            )
    issues = (
        pl.concat(parts).cast(schema).unique(maintain_order=True)
        if parts
        else pl.DataFrame(schema=schema)
    )
    list_drops = {
        ci.drop_column: name
        for name, ci in info.items()
        if ci.drop_column and isinstance(frame.schema[ci.drop_column], pl.List)
    }
    removes = (pl.col("action") == "reject_record") | (
        (pl.col("action") == "drop_value")
        & ~pl.col("rule").is_in([info[n].rule for n in list_drops.values()])
    )
    rejected = issues.filter(removes).get_column("row_index").unique().sort()
    valid = frame.filter(~pl.col("__row").is_in(rejected.implode()))
    for column in list_drops:
        allowed = sorted(codes.code_list(load_contract(table).column(column).codes or ""))
        valid = valid.with_columns(
            pl.col(column).list.eval(pl.element().filter(pl.element().is_in(allowed)))
        )
    return Validation(valid=valid.drop("__row"), rejected_index=rejected, issues=issues)


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
            "action": issues.get_column("action"),
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
    action: str | None = None,
) -> pl.DataFrame:
    """Reject rows for records that failed before validation (e.g. unparseable dates).

    ``action`` defaults to ``reject_record`` for an error and ``flag`` for a query.
    """
    if action is None:
        action = "reject_record" if severity == "error" else "flag"
    if action not in ACTIONS or (severity == "query" and action != "flag"):
        raise ValueError(f"rule {rule}: severity {severity} cannot have action {action}")
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
                "action": action,
                "message": message,
                "record": json.dumps(rec, default=str, sort_keys=True),
                "census_year": census_year,
                "la_code": la_code,
            }
        )
    return pl.DataFrame(rows, schema=REJECTS_SCHEMA) if rows else empty_rejects()
