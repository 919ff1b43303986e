"""Typing, validation and rejection of the raw CIN tables.

Raw text is cast to each table's contract type (``data_contracts/<table>.yaml``); a value that
is present but does not parse is a record-level reject (``type:<column>``), an element given
twice with different values is ``schema:repeated_element``, and the contract's rules run on the
typed rows. Rejected rows go to :class:`Rejector` with file, line, rule and message, never the
raw identifiers; what a rejected child or episode held is rejected with it
(``parent_rejected``), so the reconciliation of elements read to rows loaded plus rejected holds.
"""

from __future__ import annotations

import polars as pl

from cinresearch import contracts
from cinresearch.io.cin.header import Header
from cinresearch.io.cin.schema import FALSE_VALUES, TRUE_VALUES
from cinresearch.pseudonymise import Pseudonymiser


def _bool_expr(column: str) -> pl.Expr:
    value = pl.col(column).str.strip_chars().str.to_uppercase()
    return (
        pl.when(value.is_in(sorted(TRUE_VALUES)))
        .then(True)
        .when(value.is_in(sorted(FALSE_VALUES)))
        .then(False)
        .otherwise(None)
    )


def _code_expr(column: str) -> pl.Expr:
    return pl.col(column).str.strip_chars().str.to_uppercase()


class Rejector:
    """Collects reject rows and rejected sequence numbers while tables are normalised."""

    def __init__(self, source_file: str, header: Header, key: Pseudonymiser):
        self.source_file = source_file
        self.header = header
        self.key = key
        self.parts: list[pl.DataFrame] = []
        self.rejected_children: set[int] = set()
        self.rejected_episodes: set[int] = set()
        self.rejected_cpps: set[int] = set()
        self.rejected_rows: dict[str, set[int]] = {}

    def add(self, frame: pl.DataFrame) -> None:
        if frame.height:
            self.parts.append(frame)

    def reject(
        self,
        raw: pl.DataFrame,
        mask: pl.Series,
        *,
        table: str,
        rule: str,
        message: str,
        columns: list[str],
    ):
        """Reject raw rows where ``mask`` is true (raw ids are never written)."""
        hit = raw.filter(mask)
        if hit.is_empty():
            return
        self.add(
            contracts.reject_rows(
                hit.select(["line", *columns]).to_dicts(),
                table=table,
                rule=rule,
                message=message,
                source_file=self.source_file,
                census_year=self.header.census_year,
                la_code=self.header.la_code,
            )
        )
        self._remember(hit, table)

    def _remember(self, hit: pl.DataFrame, table: str) -> None:
        self.rejected_rows.setdefault(table, set()).update(hit.get_column("row_seq").to_list())
        if table == "children":
            self.rejected_children.update(hit.get_column("child_seq").to_list())
        elif table == "referrals":
            self.rejected_episodes.update(hit.get_column("episode_seq").to_list())
        elif table == "cp_plans":
            self.rejected_cpps.update(hit.get_column("cpp_seq").to_list())

    def frame(self) -> pl.DataFrame:
        if not self.parts:
            return contracts.empty_rejects()
        return pl.concat(self.parts, how="vertical")


def _typed(
    raw: pl.DataFrame, table: str, header: Header, extra: dict[str, pl.Expr]
) -> pl.DataFrame:
    """Cast raw string columns to the contract's types (invalid values → null, caught later)."""
    contract = contracts.load_contract(table)
    exprs: list[pl.Expr] = []
    for col in contract.columns:
        if col.name in extra:
            exprs.append(extra[col.name].alias(col.name))
        elif col.name == "la_code":
            exprs.append(pl.lit(header.la_code).alias("la_code"))
        elif col.name == "census_year":
            exprs.append(pl.lit(header.census_year, dtype=pl.Int16).alias("census_year"))
        elif col.dtype == pl.Date:
            exprs.append(
                pl.col(col.name)
                .str.strip_chars()
                .str.to_date("%Y-%m-%d", strict=False)
                .alias(col.name)
            )
        elif col.dtype == pl.Boolean:
            exprs.append(_bool_expr(col.name).alias(col.name))
        elif col.dtype.is_integer():
            exprs.append(
                pl.col(col.name).str.strip_chars().cast(col.dtype, strict=False).alias(col.name)
            )
        elif isinstance(col.dtype, pl.List):
            exprs.append(pl.col(col.name).list.eval(pl.element().str.strip_chars()).alias(col.name))
        elif col.codes:
            exprs.append(_code_expr(col.name).alias(col.name))
        else:
            exprs.append(pl.col(col.name).alias(col.name))
    return raw.with_columns(exprs)


def _type_failures(
    raw: pl.DataFrame, typed: pl.DataFrame, table: str
) -> list[tuple[str, pl.Series]]:
    """(column, mask) where a raw value was present but did not parse to the contract type."""
    contract = contracts.load_contract(table)
    failures = []
    for col in contract.columns:
        if (
            col.name not in raw.columns
            or col.dtype in (pl.String(),)
            or isinstance(col.dtype, pl.List)
        ):
            continue
        mask = raw.get_column(col.name).is_not_null() & typed.get_column(col.name).is_null()
        if mask.any():
            failures.append((col.name, mask))
    return failures


_TYPE_NAMES = {pl.Date: "a date (YYYY-MM-DD)", pl.Boolean: "a boolean (0/1/true/false)"}


def normalise_table(
    raw: pl.DataFrame,
    table: str,
    header: Header,
    rejector: Rejector,
    extra: dict[str, pl.Expr],
    context: dict[str, pl.Expr],
    record_columns: list[str],
    parent_mask: pl.Series | None,
    parent_message: str,
) -> pl.DataFrame:
    """Type, validate and split one table; rejected rows go to ``rejector``."""
    typed = _typed(raw, table, header, extra)
    if parent_mask is not None:
        rejector.reject(
            typed,
            parent_mask,
            table=table,
            rule="parent_rejected",
            message=parent_message,
            columns=record_columns,
        )
        typed = typed.filter(~parent_mask)
        raw = raw.filter(~parent_mask)
    if "conflict" in typed.columns:
        mask = typed.get_column("conflict").is_not_null()
        rejector.reject(
            typed,
            mask,
            table=table,
            rule="schema:repeated_element",
            message="an element that may appear once was given twice with different values",
            columns=record_columns,
        )
        typed, raw = typed.filter(~mask), raw.filter(~mask)
    bad = pl.Series([False] * typed.height, dtype=pl.Boolean)
    for column, mask in _type_failures(raw, typed, table):
        dtype = contracts.load_contract(table).column(column).dtype
        kind = _TYPE_NAMES.get(type(dtype), str(dtype))
        rejector.reject(
            typed,
            mask & ~bad,
            table=table,
            rule=f"type:{column}",
            message=f"{column} is not {kind}",
            columns=record_columns,
        )
        bad = bad | mask
    typed = typed.filter(~bad)
    checked = typed.with_columns(
        pl.lit(header.reference_date).alias("reference_date"),
        pl.lit(header.collection_start).alias("collection_start"),
        **context,
    )
    result = contracts.validate(checked, table)
    if result.issues.height:
        rejector.add(
            contracts.issue_rows(
                result.issues,
                checked,
                table=table,
                source_file=rejector.source_file,
                census_year=header.census_year,
                la_code=header.la_code,
                record_columns=record_columns,
            )
        )
        rejector._remember(checked[result.rejected_index.to_list()], table)
    return result.valid


def duplicated(*columns: str) -> pl.Expr:
    """True on every row whose values in ``columns`` occur on another row too."""
    return pl.struct(columns).is_duplicated()
