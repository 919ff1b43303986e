"""Tables displayed in a report, under disclosure control.

:func:`show_table` is how every notebook shows a table. It formats; it does not decide what is
confidential. Every suppression decision — counts from 1 to ``threshold`` shown as ``c``,
secondary suppression across a ``Total`` margin or along row totals, no secondary suppression
for England counts (rounded to the nearest 10) — is made by
:func:`cinresearch.disclosure.table_suppression_flags`, and cells are written by
:func:`cinresearch.disclosure.format_count` / :func:`~cinresearch.disclosure.format_rate`
(half-up rounding, GSS symbols). A rate or percentage is suppressed with its counts. Curve
values at set times (:func:`curve_at`) are hidden where the risk set is small by
:func:`cinresearch.plots.style.hide_small_risk_sets`, as the survival figures are (it asks
:func:`cinresearch.disclosure.primary_suppression` too).

Identifier columns are refused: reports show aggregates only.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from cinresearch import disclosure
from cinresearch.codes import AGE_BANDS
from cinresearch.plots.style import hide_small_risk_sets
from cinresearch.publication import styled_table_html
from cinresearch.report.text import format_estimate, format_p

__all__ = [
    "IDENTIFIER_COLUMNS",
    "RateSpec",
    "curve_at",
    "curve_table",
    "order_age_bands",
    "protect_frame",
    "reconciliation_tables",
    "show_table",
    "small_count_expr",
    "table_html",
    "wide_percentages",
]

#: Columns that hold child-level identifiers (pseudonymised or raw); never displayed.
IDENTIFIER_COLUMNS = frozenset(
    {
        "child_id",
        "upn_hash",
        "former_upn_hash",
        "episode_id",
        "subject_id",
        "upn",
        "former_upn",
        "la_child_id",
        "lachildid",
        "person_id",
        "record",
        "key",
    }
)

#: A rate column's counts: its numerator column, or ``(numerator, denominator)`` (either None).
RateSpec = Mapping[str, "str | tuple[str | None, str | None] | None"]


def _rate_links(rate_columns: RateSpec | Sequence[str] | None) -> dict[str, tuple[str | None, ...]]:
    if rate_columns is None:
        return {}
    if isinstance(rate_columns, Mapping):
        out: dict[str, tuple[str | None, ...]] = {}
        for col, spec in rate_columns.items():
            if spec is None:
                out[col] = ()
            elif isinstance(spec, str):
                out[col] = (spec,)
            else:
                out[col] = tuple(spec)
        return out
    return {c: () for c in rate_columns}


def _check_no_identifiers(frame: pl.DataFrame) -> None:
    bad = [c for c in frame.columns if c.lower() in IDENTIFIER_COLUMNS]
    if bad:
        raise ValueError(
            f"refusing to display identifier column(s) {bad}: reports show aggregates only"
        )


def _thousands(text: str | None) -> str | None:
    """Insert thousands separators into a digit string ("12345" → "12,345"); symbols unchanged."""
    if text is None or not re.fullmatch(r"-?\d{4,}", text):
        return text
    return f"{int(text):,}"


def _fixed(value: float | None, decimals: int) -> str:
    """A float already rounded half up, as text with ``decimals`` places; x / z when missing."""
    if value is None:
        return "x"
    if value != value:
        return "z"
    return f"{value:.{decimals}f}"


def protect_frame(
    frame: pl.DataFrame,
    *,
    count_columns: Sequence[str] = (),
    rate_columns: RateSpec | Sequence[str] | None = None,
    threshold: int = 5,
    filters: Sequence[str] = (),
    by: Sequence[str] = (),
    total_label: str = "Total",
    rounding_base: int | None = None,
    decimals: int = 1,
    value_decimals: int = 2,
    p_columns: Sequence[str] = (),
    hide_columns: Sequence[str] = (),
    row_totals: Mapping[str, Sequence[str]] | None = None,
) -> pl.DataFrame:
    """Apply disclosure control and formatting; every column of the result is text.

    * ``count_columns``: counts 1..``threshold`` become ``c``. With ``filters`` (columns with a
      ``total_label`` level) secondary suppression also hides a cell that could be recovered by
      subtraction from a total (per ``by`` group). With ``rounding_base`` (England) counts are
      rounded half up and get no secondary suppression, as in DfE's tables. Thousands
      separators are added.
    * ``row_totals``: ``{total column: [part columns]}`` when columns add up along each row
      (e.g. read = loaded + rejected); the parts and their total then get secondary suppression
      too, jointly with ``filters`` when given.
    * ``rate_columns``: rates or percentages shown to ``decimals`` places; a mapping gives each
      one's numerator count column or ``(numerator, denominator)``, and the rate is ``c`` when
      either is suppressed (a count column not displayed can be named in ``hide_columns``).
    * ``p_columns``: p-values ("<0.001"); other floats to ``value_decimals``; booleans Yes/No.
    * Missing values are shown with the GSS symbols (``x`` not available, ``z`` not applicable).

    Which cells are suppressed is decided by
    :func:`cinresearch.disclosure.table_suppression_flags`, nowhere else.
    """
    _check_no_identifiers(frame)
    counts = list(count_columns)
    links = _rate_links(rate_columns)
    needed = set(counts) | {c for spec in links.values() for c in spec if c}
    missing = sorted((needed | set(links) | set(filters) | set(by)) - set(frame.columns))
    if missing:
        raise ValueError(f"columns not in frame: {missing}")
    flags = disclosure.table_suppression_flags(
        frame,
        counts,
        sorted(needed),
        threshold=threshold,
        filters=filters,
        by=by,
        total_label=total_label,
        rounding_base=rounding_base,
        row_totals=row_totals,
    )
    work = frame.with_columns(
        pl.Series(f"__supp_{c}", s, dtype=pl.Boolean) for c, s in flags.items()
    )
    exprs: list[pl.Expr] = []
    for col in counts:
        exprs.append(
            disclosure.format_count(
                col, suppressed=pl.col(f"__supp_{col}"), rounding_base=rounding_base
            ).alias(col)
        )
    for col, spec in links.items():
        supp = pl.lit(False)
        for linked in spec:
            if linked:
                supp = supp | pl.col(f"__supp_{linked}")
        exprs.append(disclosure.format_rate(col, suppressed=supp, decimals=decimals).alias(col))
    done = set(counts) | set(links) | set(p_columns)
    floats = [c for c, t in frame.schema.items() if c not in done and t.is_float()]
    for col in floats:
        exprs.append(disclosure.round_half_up(pl.col(col), decimals=value_decimals).alias(col))
    for col, dtype in frame.schema.items():
        if col in done or col in floats:
            continue
        if dtype == pl.Boolean:
            exprs.append(
                pl.when(pl.col(col).is_null())
                .then(pl.lit("x"))
                .when(pl.col(col))
                .then(pl.lit("Yes"))
                .otherwise(pl.lit("No"))
                .alias(col)
            )
        elif col not in p_columns:
            exprs.append(pl.col(col).cast(pl.String).alias(col))
    out = work.with_columns(exprs).select(frame.columns)
    # Python-level formatting (thousands separators, fixed decimals, p-values, symbols).
    replaced = [pl.Series(c, [_thousands(v) for v in out[c].to_list()], pl.String) for c in counts]
    for col in p_columns:
        values = frame[col].cast(pl.Float64).to_list()
        replaced.append(pl.Series(col, [format_p(v) for v in values], pl.String))
    for col in floats:
        replaced.append(
            pl.Series(col, [_fixed(v, value_decimals) for v in out[col].to_list()], pl.String)
        )
    out = out.with_columns(replaced).with_columns(pl.all().cast(pl.String).fill_null("x"))
    return out.drop([c for c in hide_columns if c in out.columns])


def _symbol_notes(frame: pl.DataFrame, threshold: int, rounding_base: int | None) -> list[str]:
    """A legend for each GSS symbol shown in ``frame`` (and the rounding of England counts)."""
    present: set[str] = set()
    for col in frame.columns:
        present |= set(frame[col].drop_nulls().unique().to_list())
    symbols = disclosure.SYMBOLS
    notes = []
    if symbols.confidential in present:
        notes.append(
            f"{symbols.confidential} = suppressed to protect confidentiality (a count from 1 to "
            f"{threshold}, or a figure from which one could be worked out)."
        )
    if symbols.low in present:
        notes.append(f"{symbols.low} = rounds to zero but is not zero.")
    if symbols.not_available in present:
        notes.append(f"{symbols.not_available} = not available.")
    if symbols.not_applicable in present:
        notes.append(f"{symbols.not_applicable} = not applicable.")
    if rounding_base:
        notes.append(f"Counts for England are rounded to the nearest {rounding_base}.")
    return notes


def table_html(
    frame: pl.DataFrame,
    title: str,
    *,
    count_columns: Sequence[str] = (),
    rate_columns: RateSpec | Sequence[str] | None = None,
    threshold: int = 5,
    filters: Sequence[str] = (),
    by: Sequence[str] = (),
    rounding_base: int | None = None,
    decimals: int = 1,
    value_decimals: int = 2,
    p_columns: Sequence[str] = (),
    hide_columns: Sequence[str] = (),
    row_totals: Mapping[str, Sequence[str]] | None = None,
    labels: Mapping[str, str] | None = None,
    notes: Sequence[str] | str | None = None,
    subtitle: str | None = None,
    auto_notes: bool = True,
) -> str:
    """``frame`` as a styled HTML table after disclosure control (see :func:`show_table`).

    See :func:`protect_frame` for the control applied. ``labels`` renames columns for the
    reader (after control); a legend for any symbol shown (``c``, ``x``, …) is added to
    ``notes`` automatically.
    """
    notes_list = [notes] if isinstance(notes, str) else list(notes or [])
    if frame.height == 0:
        return f"<p><strong>{html.escape(title)}</strong>: no records in scope.</p>"
    safe = protect_frame(
        frame,
        count_columns=count_columns,
        rate_columns=rate_columns,
        threshold=threshold,
        filters=filters,
        by=by,
        rounding_base=rounding_base,
        decimals=decimals,
        value_decimals=value_decimals,
        p_columns=p_columns,
        hide_columns=hide_columns,
        row_totals=row_totals,
    )
    if auto_notes:
        notes_list += _symbol_notes(safe, threshold, rounding_base)
    if labels:
        safe = safe.rename({k: v for k, v in labels.items() if k in safe.columns})
    return styled_table_html(safe, title, notes_list, subtitle=subtitle)


def show_table(frame: pl.DataFrame, title: str, **options: Any) -> None:
    """Display ``frame`` as a styled HTML table after disclosure control.

    Options are those of :func:`protect_frame` (``count_columns``, ``rate_columns``,
    ``threshold``, ``filters``, ``by``, ``rounding_base``, ``row_totals``, ``hide_columns``, …)
    plus ``labels`` (rename columns for the reader, after control), ``notes`` and ``subtitle``.
    A legend for any symbol shown (``c``, ``x``, …) is added to the notes automatically
    (``auto_notes=False`` when the notes explain the symbols themselves).
    Returns nothing, so a notebook cell ending with it displays the table once.
    """
    from IPython.display import HTML, display  # only in a notebook kernel

    display(HTML(table_html(frame, title, **options)))


def small_count_expr(column: str, threshold: int = 5) -> pl.Expr:
    """True where a count column is 1..``threshold``: what disclosure control suppresses
    (:func:`cinresearch.disclosure.primary_suppression`)."""
    return disclosure.primary_suppression(column, threshold)


def wide_percentages(
    long: pl.DataFrame,
    index: Sequence[str],
    column: str,
    value: str = "pct",
    numerator: str | None = "complete",
    denominator: str | None = "records",
) -> tuple[pl.DataFrame, dict[str, tuple[str | None, str | None]], list[str]]:
    """Pivot a long table of percentages to one column per ``column`` level, keeping each
    percentage's counts in hidden columns so :func:`show_table` can suppress it with them.

    Returns ``(wide, rate_columns, hide_columns)`` to pass to :func:`show_table`.
    """
    levels = long[column].unique(maintain_order=True).to_list()
    wide = long.pivot(on=column, index=list(index), values=value, aggregate_function="first")
    spec: dict[str, tuple[str | None, str | None]] = {}
    hidden: list[str] = []
    for extra, prefix in ((numerator, "__num: "), (denominator, "__den: ")):
        if extra is None:
            continue
        counts = long.pivot(on=column, index=list(index), values=extra, aggregate_function="first")
        counts = counts.rename({str(lv): f"{prefix}{lv}" for lv in levels})
        wide = wide.join(counts, on=list(index), how="left")
        hidden += [f"{prefix}{lv}" for lv in levels]
    for lv in levels:
        spec[str(lv)] = (
            f"__num: {lv}" if numerator else None,
            f"__den: {lv}" if denominator else None,
        )
    return wide.select(*index, *[str(lv) for lv in levels], *hidden), spec, hidden


# --------------------------------------------------------------------------------------------
# Curves at set times, row order, reconciliations
# --------------------------------------------------------------------------------------------


def curve_at(curve: pl.DataFrame, times: Sequence[float], min_at_risk: int = 10) -> pl.DataFrame:
    """Estimates of a curve (survival or cumulative incidence) at ``times``, one row per group
    and time, null where fewer than ``min_at_risk`` were still at risk (disclosure control by
    :func:`cinresearch.plots.style.hide_small_risk_sets`, as in the figures).

    ``curve`` is a full curve from :mod:`cinresearch.survival`; the value at ``t`` is that of
    the last curve row at or before ``t`` (a step function), and the number at risk is that of
    the first row at or after ``t`` (0 after the last row).
    """
    rows = []
    for (group,), part in curve.group_by("group", maintain_order=True):
        part = part.sort("time")
        t = part["time"].cast(pl.Float64).to_list()
        for x in times:
            before = [i for i, v in enumerate(t) if v <= x]
            after = [i for i, v in enumerate(t) if v >= x]
            i = before[-1] if before else None
            j = after[0] if after else None
            rows.append(
                {
                    "group": group,
                    "time": float(x),
                    "estimate": None if i is None else part["estimate"][i],
                    "lower": None if i is None else part["lower"][i],
                    "upper": None if i is None else part["upper"][i],
                    "at_risk": int(part["at_risk"][j]) if j is not None else 0,
                }
            )
    values = pl.DataFrame(
        rows,
        schema={
            "group": pl.String,
            "time": pl.Float64,
            "estimate": pl.Float64,
            "lower": pl.Float64,
            "upper": pl.Float64,
            "at_risk": pl.Int64,
        },
    )
    return hide_small_risk_sets(values, min_at_risk).drop("at_risk")


def curve_table(
    curve: pl.DataFrame,
    times: Sequence[float],
    *,
    min_at_risk: int = 10,
    time_labels: Mapping[float, str] | None = None,
    group_label: str = "Group",
) -> pl.DataFrame:
    """Wide table of a curve at ``times``: one row per group, one text column per time with
    "estimate% (lower to upper)"; "c" where fewer than ``min_at_risk`` remained at risk."""
    at = curve_at(curve, times, min_at_risk)
    labels = dict(time_labels or {})
    rows: dict[str, dict[str, str]] = {}
    order: list[str] = []
    for rec in at.iter_rows(named=True):
        g = rec["group"]
        if g not in rows:
            rows[g] = {group_label: g}
            order.append(g)
        name = labels.get(rec["time"], f"{rec['time']:g} days")
        rows[g][name] = format_estimate(
            rec["estimate"], rec["lower"], rec["upper"], missing=disclosure.SYMBOLS.confidential
        )
    columns = [group_label] + [labels.get(float(t), f"{float(t):g} days") for t in times]
    return pl.DataFrame([rows[g] for g in order], schema=dict.fromkeys(columns, pl.String))


def order_age_bands(frame: pl.DataFrame, column: str = "age_band") -> pl.DataFrame:
    """Rows in the order of :data:`cinresearch.codes.AGE_BANDS`, other levels (e.g. "Missing")
    next and "Total" last."""
    order = {band: i for i, band in enumerate(AGE_BANDS)}
    rank = (
        pl.col(column)
        .cast(pl.String)
        .replace_strict(order, default=len(order), return_dtype=pl.Int32)
    )
    last = (pl.col(column).cast(pl.String) == "Total").cast(pl.Int32)
    return frame.sort(last, rank, pl.col(column).cast(pl.String))


def reconciliation_tables(reconciliation: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A survival frame's reconciliation (:class:`cinresearch.cohorts.SurvivalFrame`) as two
    additive tables of ``reason, n`` with a ``Total`` row each, ready for secondary suppression:

    * selection — subjects left out (by cohort criterion), those that cannot be analysed (by
      reason) and those analysed; Total = subjects in the data;
    * ends — how follow-up ended (event of interest, competing events, censoring reasons);
      Total = subjects analysed.
    """
    selection: list[tuple[str, int]] = []
    ends: list[tuple[str, int]] = []
    total_in = analysed = 0
    for stage, reason, n in reconciliation.iter_rows():
        if stage == "input":
            total_in = int(n)
        elif stage == "not in cohort" and n:
            selection.append((f"Left out: {reason}", int(n)))
        elif stage == "excluded" and n:
            selection.append((f"Cannot be analysed: {reason}", int(n)))
        elif stage == "rows out":
            analysed = int(n)
        elif stage == "end reason" and n:
            if reason == "outcome":
                text = "The event of interest"
            else:
                kind, _, detail = reason.partition(": ")
                text = f"{detail[:1].upper()}{detail[1:]} ({kind})" if detail else reason
            ends.append((text, int(n)))
    selection.append(("Analysed", analysed))
    selection.append(("Total", total_in))
    ends.append(("Total", analysed))
    schema = {"reason": pl.String, "n": pl.Int64}
    return (
        pl.DataFrame(selection, schema=schema, orient="row"),
        pl.DataFrame(ends, schema=schema, orient="row"),
    )
