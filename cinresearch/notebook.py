"""Shared helpers for the report notebooks (``notebooks/0*.ipynb``).

The notebooks are thin: narrative in markdown, a ``parameters`` cell, calls into the package and
plots. What more than one notebook needs, or what deserves a test, lives here, in sections:

* **set-up and parameters** — :func:`setup`, :func:`check_parameters`, :func:`cohort_window`,
  :func:`for_geography`, :func:`geography_label` (``la_code = "ENG"`` means England: every LA
  in the store), and :func:`is_synthetic`, which gates child-level pictures (journey
  timelines are drawn for synthetic data only);
* **numbers as text** — counts and percentages for prose after disclosure control
  (:func:`count_text`, :func:`pct_text`), p-values, estimates with intervals;
* **tables under disclosure control** — :func:`show_table`: counts from 1 to ``threshold``
  shown as ``c``, secondary suppression across a ``Total`` margin or along row totals, England
  counts rounded to the nearest 10, a rate or percentage suppressed with its counts, GSS
  symbols explained under the table, and identifier columns refused;
* **figures** — :func:`show_figure` (PNG with alternative text, backend-independent), and
  :func:`mask_small_counts` so a chart never shows what a table would suppress;
* **survival frames, models and curves** — the rows a model can use (:func:`model_frame`),
  curve values at set times with small risk sets hidden (:func:`curve_table`), and
  plain-English findings written from model estimates (:func:`ratio_findings`);
* **planted effects** of the synthetic generator, to compare estimates with;
* helpers of single chapters (data quality, journeys, benchmarking, outcomes), kept here so the
  notebooks stay readable and the logic is tested.

Nothing here displays identifiers: tables are aggregates, and :func:`show_table` raises on a
column that holds child-level ids. No function writes warnings for a notebook to print: what
was left out of an analysis is returned as text to show.
"""

from __future__ import annotations

import html
import io
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from cinresearch import disclosure
from cinresearch.codes import AGE_BANDS
from cinresearch.store import Store

__all__ = [
    "ENGLAND",
    "FLOW_STAGES",
    "IDENTIFIER_COLUMNS",
    "KIND_LABELS",
    "NEED_GROUPS",
    "NOT_IN_NEED_CLOSURE_REASONS",
    "SCHOOL_GROUPS",
    "SYNTH_EFFECTS_YAML",
    "age_at_31_march_expr",
    "audit_la_expr",
    "census_year_expr",
    "census_years_in_store",
    "check_parameters",
    "cohort_window",
    "compare_with_planted",
    "count_text",
    "curve_at",
    "curve_table",
    "demo_key_id",
    "drop_incomplete",
    "education_outcomes",
    "element_reconciliation",
    "episodes_by_year",
    "field_completeness",
    "figure_png",
    "for_geography",
    "format_estimate",
    "format_p",
    "funnel_figure",
    "geography_label",
    "group_phrase",
    "inputs_frame",
    "is_synthetic",
    "journey_flow",
    "la_codes_in_store",
    "label_terms",
    "legend_outside",
    "load_run_frame",
    "mask_small_counts",
    "measure_labels",
    "median_text",
    "merge_audit_summary",
    "model_frame",
    "need_group_expr",
    "neighbour_list",
    "order_age_bands",
    "p_text",
    "pct_text",
    "planted_effects",
    "planted_hazard_ratios",
    "planted_rereferral_12m",
    "protect_frame",
    "ratio_findings",
    "ratio_text",
    "reconciliation_tables",
    "report_header",
    "rounding_base_for",
    "sample_journeys",
    "setup",
    "show_figure",
    "show_markdown",
    "show_table",
    "small_count_expr",
    "sparse_levels",
    "table_html",
    "term_label",
    "tidy_percent_axis",
    "trend_figure",
    "wide_percentages",
    "year_label",
]

#: The ``la_code`` parameter value meaning "England": every LA in the store.
ENGLAND = "ENG"

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


# --------------------------------------------------------------------------------------------
# Set-up and parameters
# --------------------------------------------------------------------------------------------


def setup() -> None:
    """House style for figures and the named filters for unavoidable library warnings.

    Called once at the top of every notebook. Only specific, understood warnings are filtered
    (each with the reason); everything else still reaches the output, where the report tests
    treat it as a failure.
    """
    from cinresearch import plots

    plots.apply_house_style()


def demo_key_id() -> str:
    """The key id (manifest ``detail.key_id``) of the public demo pseudonymisation key."""
    from cinresearch.pseudonymise import DEMO_KEY, Pseudonymiser

    return Pseudonymiser(DEMO_KEY).key_id


def _as_store(store: Store | str | os.PathLike[str]) -> Store:
    return store if isinstance(store, Store) else Store(store)


def is_synthetic(store: Store | str | os.PathLike[str]) -> bool:
    """True when the store holds synthetic data: every input pseudonymised with a key used the
    public demo key (its ``key_id`` in the manifest), and there is at least one such input.

    Real returns must be loaded with a secret key, so a store with any other key id — or with
    no key ids at all — is treated as real, and child-level pictures are not drawn.
    """
    ids = {r.detail.get("key_id") for r in _as_store(store).inputs() if r.detail.get("key_id")}
    return bool(ids) and ids == {demo_key_id()}


def census_years_in_store(store: Store | str | os.PathLike[str]) -> list[int]:
    """Census years with at least one CIN return in the store, ascending."""
    return sorted(
        {
            int(r.census_year)
            for r in _as_store(store).inputs()
            if r.kind == "cin_xml" and r.census_year is not None
        }
    )


def la_codes_in_store(store: Store | str | os.PathLike[str]) -> list[str]:
    """LA codes with at least one CIN return in the store, ascending."""
    return sorted(
        {str(r.la_code) for r in _as_store(store).inputs() if r.kind == "cin_xml" and r.la_code}
    )


def _normalise_la(la_code: str | int) -> str:
    text = str(la_code).strip()
    if text.upper() in {ENGLAND, "ENGLAND", "ALL"}:
        return ENGLAND
    return text.zfill(3) if text.isdigit() else text


def check_parameters(
    store: Store | str | os.PathLike[str], census_year: int, la_code: str | int
) -> tuple[int, str]:
    """Validate the notebook parameters against the store; returns ``(census_year, la_code)``.

    ``la_code`` is ``"ENG"`` (England: every LA) or a 3-digit LA code with returns in the store.
    Raises ``ValueError`` naming what is available when either is not in the store.
    """
    st = _as_store(store)
    if not st.manifest_path.exists():
        raise ValueError(f"{st.root} is not a store (no manifest.json); run `cinresearch load`")
    years = census_years_in_store(st)
    if int(census_year) not in years:
        raise ValueError(f"census_year {census_year} has no CIN returns in the store; have {years}")
    code = _normalise_la(la_code)
    las = la_codes_in_store(st)
    if code != ENGLAND and code not in las:
        raise ValueError(f"la_code {la_code!r} has no CIN returns in the store; use 'ENG' or {las}")
    return int(census_year), code


def cohort_window(
    census_year: int,
    cohort_years: int | Sequence[int] | None = None,
    available: Sequence[int] | None = None,
    length: int = 3,
) -> tuple[int, int]:
    """The cohort's census years ``(first, last)``.

    ``cohort_years``: ``None`` → the ``length`` census years ending at ``census_year``; an int
    ``n`` → the ``n`` years ending at ``census_year``; a pair → those years. The window is
    clipped to the ``available`` years (the store's returns) so a cohort never starts before
    the first return; ``ValueError`` when nothing is left.
    """
    if cohort_years is None:
        first, last = census_year - length + 1, census_year
    elif isinstance(cohort_years, int):
        if cohort_years < 1:
            raise ValueError("cohort_years must be at least 1")
        first, last = census_year - cohort_years + 1, census_year
    else:
        pair = [int(y) for y in cohort_years]
        if len(pair) != 2:
            raise ValueError(f"cohort_years must be None, a number or (first, last); got {pair}")
        first, last = min(pair), max(pair)
    if available:
        first = max(first, min(available))
        last = min(last, max(available))
    if first > last:
        raise ValueError(f"no census years left in the cohort window (available: {available})")
    return first, last


def for_geography(
    frame: pl.DataFrame | pl.LazyFrame, la_code: str, column: str = "la_code"
) -> pl.DataFrame | pl.LazyFrame:
    """Rows of one LA, or every row for ``"ENG"``."""
    if la_code == ENGLAND:
        return frame
    return frame.filter(pl.col(column).cast(pl.String) == str(la_code))


def geography_label(la_code: str, synthetic: bool = False) -> str:
    """ "England", or the LA's name and code ("Blackpool (890)"); synthetic LAs are called
    "LA 890 (synthetic)" so a reader does not take the figures for a real council's."""
    if la_code == ENGLAND:
        return "England (all LAs in the data)" if synthetic else "England"
    if synthetic:
        return f"LA {la_code} (synthetic)"
    try:
        from cinresearch.geography import la_lookup

        names = la_lookup().filter(pl.col("old_la_code") == la_code)["la_name"].to_list()
    except Exception:  # pragma: no cover - the lookup is optional decoration
        names = []
    return f"{names[0]} ({la_code})" if names else f"LA {la_code}"


def rounding_base_for(la_code: str) -> int | None:
    """Counts for England are rounded to the nearest 10 in published tables; LA counts are not."""
    return 10 if la_code == ENGLAND else None


def year_label(census_year: int) -> str:
    """Census year 2021 → "2020-21" (the year ending 31 March 2021)."""
    return f"{census_year - 1}-{str(census_year)[-2:]}"


def report_header(
    census_year: int, la_code: str, synthetic: bool, details: Sequence[str] = ()
) -> str:
    """Markdown block stating what a chapter covers: census year, area, data, extra details."""
    lines = [
        f"**Census year:** {year_label(census_year)} (year ending 31 March {census_year})",
        f"**Area:** {geography_label(la_code, synthetic)}",
        *details,
    ]
    text = "  \n".join(lines)
    if synthetic:
        text += (
            "\n\n> **Synthetic data.** These figures come from the toolkit's synthetic data "
            "generator, not from real children's records. They show what the report looks like "
            "and check the methods against effects planted in the data; they are not statistics "
            "about any real local authority."
        )
    return text


def census_year_expr(column: str) -> pl.Expr:
    """Census year (year ending 31 March) of a date column: 2018 for 1 Apr 2017..31 Mar 2018."""
    d = pl.col(column)
    return (d.dt.year() + (d.dt.month() >= 4).cast(pl.Int32)).cast(pl.Int16)


def age_at_31_march_expr(birth: str = "birth_date", census_year: str = "census_year") -> pl.Expr:
    """Age in completed years at 31 March of each row's census year (null without a birth date)."""
    from cinresearch.cohorts import age_expr

    return age_expr(birth, pl.date(pl.col(census_year).cast(pl.Int32), 3, 31))


# --------------------------------------------------------------------------------------------
# Numbers as text for a report (after disclosure control)
# --------------------------------------------------------------------------------------------


def count_text(n: int | None, threshold: int = 5, rounding_base: int | None = None) -> str:
    """A count for prose, after disclosure control: "no" for 0, "fewer than 6" for 1..5 (with
    threshold 5), else the count (rounded to ``rounding_base`` for England) with separators."""
    if n is None:
        return "an unknown number of"
    n = int(n)
    if n == 0:
        return "no"
    if n <= threshold:
        return f"fewer than {threshold + 1}"
    if rounding_base:
        n = int(disclosure.round_half_up(n, base=rounding_base))
    return f"{n:,}"


def pct_text(
    numerator: int | None, denominator: int | None, threshold: int = 5, decimals: int = 1
) -> str:
    """A percentage for prose ("12.3%"), or "a suppressed share" when either count is small."""
    if numerator is None or not denominator:
        return "x"
    small = [v for v in (numerator, denominator) if 1 <= int(v) <= threshold]
    if small:
        return "a suppressed share (small numbers)"
    value = disclosure.round_half_up(100.0 * numerator / denominator, decimals=decimals)
    return f"{value:.{decimals}f}%"


def format_p(p: float | None) -> str:
    """A p-value for a report: "<0.001", else 3 decimal places; "x" when missing."""
    if p is None or p != p:  # None or NaN
        return "x"
    if p < 0.001:
        return "<0.001"
    return f"{disclosure.round_half_up(float(p), decimals=3):.3f}"


def p_text(p: float | None) -> str:
    """A p-value for prose: "p = 0.042" or "p < 0.001"."""
    shown = format_p(p)
    return f"p {shown[0]} {shown[1:]}" if shown.startswith("<") else f"p = {shown}"


def format_estimate(
    estimate: float | None,
    lower: float | None = None,
    upper: float | None = None,
    *,
    percent: bool = True,
    decimals: int = 1,
    missing: str = "c",
) -> str:
    """ "12.3% (10.1 to 14.8)" for a probability with its interval; ``missing`` when null."""
    if estimate is None or estimate != estimate:
        return missing
    scale, unit = (100.0, "%") if percent else (1.0, "")

    def one(v: float) -> str:
        return f"{disclosure.round_half_up(v * scale, decimals=decimals):.{decimals}f}"

    text = f"{one(estimate)}{unit}"
    if lower is not None and upper is not None and lower == lower and upper == upper:
        text += f" ({one(lower)} to {one(upper)})"
    return text


def ratio_text(
    frame: pl.DataFrame, estimate: str, lower: str = "lower", upper: str = "upper"
) -> pl.Series:
    """Ratios with their intervals as text, "1.84 (1.13 to 3.00)"; "x" where not estimated."""
    values = zip(
        frame[estimate].to_list(), frame[lower].to_list(), frame[upper].to_list(), strict=True
    )
    return pl.Series(
        estimate,
        [
            format_estimate(e, lo, hi, percent=False, decimals=2, missing="x")
            for e, lo, hi in values
        ],
        dtype=pl.String,
    )


def median_text(
    frame: pl.DataFrame, median: str = "median", lower: str = "lower", upper: str = "upper"
) -> pl.Series:
    """Median times (days) with intervals as text, "123 (98 to 150)"; "Not reached" when fewer
    than half had the event (and "not reached" for an open-ended upper limit)."""

    def one(m: float | None, lo: float | None, hi: float | None) -> str:
        if m is None:
            return "Not reached"
        low = "x" if lo is None else f"{lo:.0f}"
        high = "not reached" if hi is None else f"{hi:.0f}"
        return f"{m:.0f} ({low} to {high})"

    rows = zip(frame[median].to_list(), frame[lower].to_list(), frame[upper].to_list(), strict=True)
    return pl.Series(median, [one(*r) for r in rows], dtype=pl.String)


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


# --------------------------------------------------------------------------------------------
# Tables under disclosure control
# --------------------------------------------------------------------------------------------


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
      subtraction from a total (:func:`cinresearch.disclosure.protect_cells`, per ``by`` group).
      With ``rounding_base`` (England) counts are rounded half up and get no secondary
      suppression, as in DfE's tables. Thousands separators are added.
    * ``row_totals``: ``{total column: [part columns]}`` when columns add up along each row
      (e.g. read = loaded + rejected); the parts and their total then get secondary suppression
      too, jointly with ``filters`` when given.
    * ``rate_columns``: rates or percentages shown to ``decimals`` places; a mapping gives each
      one's numerator count column or ``(numerator, denominator)``, and the rate is ``c`` when
      either is suppressed (a count column not displayed can be named in ``hide_columns``).
    * ``p_columns``: p-values ("<0.001"); other floats to ``value_decimals``; booleans Yes/No.
    * Missing values are shown with the GSS symbols (``x`` not available, ``z`` not applicable).
    """
    _check_no_identifiers(frame)
    counts = list(count_columns)
    links = _rate_links(rate_columns)
    needed = set(counts) | {c for spec in links.values() for c in spec if c}
    missing = sorted((needed | set(links) | set(filters) | set(by)) - set(frame.columns))
    if missing:
        raise ValueError(f"columns not in frame: {missing}")
    flags = _suppression_flags(
        frame,
        counts,
        sorted(needed),
        threshold,
        filters,
        by,
        total_label,
        rounding_base,
        row_totals,
    )
    work = frame
    work = work.with_columns(
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


def _suppression_flags(
    frame: pl.DataFrame,
    counts: Sequence[str],
    needed: Sequence[str],
    threshold: int,
    filters: Sequence[str],
    by: Sequence[str],
    total_label: str,
    rounding_base: int | None,
    row_totals: Mapping[str, Sequence[str]] | None,
) -> dict[str, pl.Series]:
    """Suppression flag per count column, decided by :func:`disclosure.table_suppression_flags`."""
    return disclosure.table_suppression_flags(
        frame,
        counts,
        needed,
        threshold=threshold,
        filters=filters,
        by=by,
        total_label=total_label,
        rounding_base=rounding_base,
        row_totals=row_totals,
    )


def _symbol_notes(frame: pl.DataFrame, threshold: int, rounding_base: int | None) -> list[str]:
    present: set[str] = set()
    for col in frame.columns:
        present |= set(frame[col].drop_nulls().unique().to_list())
    notes = []
    if "c" in present:
        notes.append(
            f"c = suppressed to protect confidentiality (a count from 1 to {threshold}, or a "
            "figure from which one could be worked out)."
        )
    if "low" in present:
        notes.append("low = rounds to zero but is not zero.")
    if "x" in present:
        notes.append("x = not available.")
    if "z" in present:
        notes.append("z = not applicable.")
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
    from cinresearch.publication import styled_table_html

    notes_list = [notes] if isinstance(notes, str) else list(notes or [])
    if frame.height == 0:
        body = f"<p><strong>{html.escape(title)}</strong>: no records in scope.</p>"
    else:
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
        body = styled_table_html(safe, title, notes_list, subtitle=subtitle)
    return body


def show_table(frame: pl.DataFrame, title: str, **options: Any) -> None:
    """Display ``frame`` as a styled HTML table after disclosure control.

    Options are those of :func:`protect_frame` (``count_columns``, ``rate_columns``,
    ``threshold``, ``filters``, ``by``, ``rounding_base``, ``row_totals``, ``hide_columns``, …)
    plus ``labels`` (rename columns for the reader, after control), ``notes`` and ``subtitle``.
    A legend for any symbol shown (``c``, ``x``, …) is added to the notes automatically
    (``auto_notes=False`` when the notes explain the symbols themselves).
    Returns nothing, so a notebook cell ending with it displays the table once.
    """
    from IPython.display import HTML, display

    display(HTML(table_html(frame, title, **options)))


def show_markdown(text: str) -> None:
    """Display generated narrative as markdown (rendered in the HTML report)."""
    from IPython.display import Markdown, display

    display(Markdown(text))


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
# Figures
# --------------------------------------------------------------------------------------------


#: Display width of figures in the HTML report, in pixels per inch of figure width.
_PIXELS_PER_INCH = 110


_FIGURE_DPI = 160


def figure_png(fig: Any, dpi: int = _FIGURE_DPI) -> bytes:
    """A matplotlib figure as PNG bytes (tight bounding box)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def _figure_title(fig: Any) -> str:
    suptitle = getattr(fig, "_suptitle", None)
    if suptitle is not None and suptitle.get_text():
        return suptitle.get_text()
    for ax in fig.axes:
        if ax.get_title():
            return ax.get_title()
    return "Figure"


def show_figure(fig: Any, alt: str | None = None) -> None:
    """Display a figure as a PNG sized for a report page, with alternative text (default:
    the figure's title). Independent of the matplotlib backend, so it renders the same under
    papermill's Agg backend and in Jupyter."""
    from IPython.display import Image, display

    width = int(fig.get_figwidth() * _PIXELS_PER_INCH)
    text = alt or _figure_title(fig)
    display(Image(data=figure_png(fig), format="png", width=width, alt=text))


def legend_outside(fig: Any, title: str | None = None) -> Any:
    """Move the legend of a figure's first axes to the right of the plot (so it never covers
    a line); returns the figure."""
    ax = fig.axes[0]
    handles, names = ax.get_legend_handles_labels()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    if handles:
        ax.legend(
            handles, names, title=title, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False
        )
    return fig


def tidy_percent_axis(fig: Any, axis: str = "y") -> Any:
    """Put percentage ticks on whole or half-decade values (1%, 2%, 5%, 10%, ... steps) so
    every tick label is exact; returns the figure.

    ``plots.plot_survival`` formats the axis with 0 decimals, and matplotlib's default
    locator can choose 2.5% steps, whose labels would then read "2%", "8%", "12%"."""
    from matplotlib.ticker import MaxNLocator

    target = fig.axes[0].yaxis if axis == "y" else fig.axes[0].xaxis
    target.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 5, 10]))
    return fig


def small_count_expr(column: str, threshold: int = 5) -> pl.Expr:
    """True where a count column is 1..``threshold`` (what disclosure control suppresses)."""
    return disclosure.primary_suppression(column, threshold)


def mask_small_counts(
    frame: pl.DataFrame, values: Sequence[str], count_column: str, threshold: int = 5
) -> pl.DataFrame:
    """Null the ``values`` columns where ``count_column`` is 1..threshold (before plotting, so a
    chart cannot show what a table would suppress)."""
    small = disclosure.primary_suppression(count_column, threshold)
    return frame.with_columns(
        pl.when(small).then(None).otherwise(pl.col(c)).alias(c) for c in values
    )


# --------------------------------------------------------------------------------------------
# Survival frames, models and curves
# --------------------------------------------------------------------------------------------


UNBORN = "unborn"


def model_frame(
    frame: pl.DataFrame,
    covariates: Sequence[str],
    *,
    event: str = "event",
    min_events: int = 5,
    sparse_column: str | None = "age_band",
    known_sex: bool = True,
    sex_reference: str = "M",
    threshold: int = 5,
    rounding_base: int | None = None,
) -> tuple[pl.DataFrame, list[str]]:
    """The rows a model can use, and sentences saying what was left out and why.

    Unborn children (``age_band`` "unborn") stay in: when both "age_band" and "sex" are
    covariates their sex (mostly "U", not known before birth) is set to ``sex_reference``,
    so sex is left out for them and the unborn age group's ratio is theirs (vs the reference
    age band, for the reference sex); the sex ratio is estimated among born children only.
    Drops born children whose sex is not known (too few to model, when ``known_sex`` and
    "sex" is a covariate), rows with a missing covariate, and levels of ``sparse_column``
    with fewer than ``min_events`` events (their ratios cannot be estimated). Counts in the
    sentences pass :func:`count_text` (small numbers are not printed).
    """
    notes: list[str] = []
    out = frame
    if "sex" in covariates and "age_band" in covariates and "age_band" in out.columns:
        unborn = pl.col("age_band").cast(pl.String) == UNBORN
        n_unborn = out.select(unborn.fill_null(False).sum()).item()
        if n_unborn:
            out = out.with_columns(
                sex=pl.when(unborn.fill_null(False))
                .then(pl.lit(sex_reference))
                .otherwise(pl.col("sex").cast(pl.String))
            )
            notes.append(
                "Unborn children are modelled as their own age group; sex is not used for "
                "them (it is not known before birth)."
            )
    if known_sex and "sex" in covariates:
        kept = out.filter(pl.col("sex").is_in(["M", "F"]) | pl.col("sex").is_null())
        if out.height - kept.height:
            notes.append(
                f"{count_text(out.height - kept.height, threshold, rounding_base).capitalize()} "
                "records of "
                "children whose sex was not known are left out."
            )
        out = kept
    out, dropped = drop_incomplete(out, covariates)
    if dropped:
        notes.append(
            f"{count_text(dropped, threshold, rounding_base).capitalize()} records with a missing "
            "characteristic are left out."
        )
    if sparse_column and sparse_column in covariates:
        few = sparse_levels(out, sparse_column, event, min_events)
        if few:
            out = out.filter(~pl.col(sparse_column).cast(pl.String).is_in(few))
            notes.append(
                f"Groups with fewer than {min_events} events are left out: {', '.join(few)}."
            )
    return out, notes


def drop_incomplete(frame: pl.DataFrame, columns: Sequence[str]) -> tuple[pl.DataFrame, int]:
    """Rows with every one of ``columns`` present, and how many were dropped (to report it)."""
    cols = list(columns)
    if not cols:
        return frame, 0
    kept = frame.drop_nulls(subset=cols)
    return kept, frame.height - kept.height


def sparse_levels(
    frame: pl.DataFrame, column: str, event: str = "event", min_events: int = 5
) -> list[str]:
    """Levels of ``column`` with fewer than ``min_events`` events (too few to model)."""
    counts = frame.group_by(pl.col(column).cast(pl.String)).agg(pl.col(event).sum().alias("n"))
    return sorted(counts.filter(pl.col("n") < min_events)[column].drop_nulls().to_list())


_TERM = re.compile(r"^(?P<cov>[^\[]+)\[(?P<level>.*)\]$")


def _split_term(term: str) -> tuple[str, str | None]:
    m = _TERM.match(term)
    return (m["cov"], m["level"]) if m else (term, None)


def term_label(term: str, reference: str | None = None) -> str:
    """A model term for a table or forest plot: "age_band[under 1]" → "Age under 1 (vs 5-9)"."""
    covariate, level = _split_term(term)
    names = {
        "age_band": "Age",
        "sex": "Sex",
        "disabled": "Disabled",
        "prior_cpp_seen": "Earlier plan",
        "primary_need": "Primary need",
        "ethnicity_group": "Ethnic group",
        "referral_source": "Referral source",
    }
    name = names.get(covariate, covariate.replace("_", " ").capitalize())
    if level is None:
        return f"{name} (vs not)" if reference is None else f"{name} (vs {reference})"
    sex = {"F": "girls", "M": "boys", "U": "unknown"}
    if covariate == "sex":
        return f"Sex: {sex.get(level, level)} (vs {sex.get(str(reference), reference)})"
    return f"{name} {level} (vs {reference})" if reference else f"{name} {level}"


def label_terms(table: pl.DataFrame, column: str = "term") -> pl.DataFrame:
    """Replace model term names with reader labels (see :func:`term_label`)."""
    refs = table["reference"].to_list() if "reference" in table.columns else [None] * table.height
    labels = [term_label(t, r) for t, r in zip(table[column].to_list(), refs, strict=True)]
    return table.with_columns(pl.Series(column, labels, dtype=pl.String))


_AGE_PHRASES = {
    "unborn": "unborn children",
    "under 1": "children under 1",
    "1-4": "children aged 1 to 4",
    "5-9": "children aged 5 to 9",
    "10-15": "children aged 10 to 15",
    "16+": "young people aged 16 or over",
}


_SEX_PHRASES = {"F": "girls", "M": "boys", "U": "children whose sex is not known"}


def group_phrase(covariate: str, level: str | None, reference: bool = False) -> str:
    """How a report names a group: ("age_band", "under 1") → "children under 1"."""
    if covariate == "age_band" and level in _AGE_PHRASES:
        return _AGE_PHRASES[level]
    if covariate == "sex" and level in _SEX_PHRASES:
        return _SEX_PHRASES[level]
    if covariate == "disabled":
        return "children without a recorded disability" if reference else "disabled children"
    if covariate == "prior_cpp_seen":
        return "children without an earlier plan" if reference else "children with an earlier plan"
    if level is None:
        return f"children without {covariate}" if reference else f"children with {covariate}"
    return f"children with {covariate.replace('_', ' ')} {level}"


def ratio_findings(
    table: pl.DataFrame,
    outcome: str,
    *,
    estimate: str | None = None,
    when: str = "at any point after referral",
) -> list[str]:
    """One plain-English sentence per model term, from a ``cox``/``discrete_time_logit`` table.

    E.g. "Children under 1 were 2.1 times as likely as children aged 5 to 9 to become the
    subject of a child protection plan at any point after referral (hazard ratio 2.10, 95% CI
    1.60 to 2.76)." Ratios below 1 also say how much less likely ("about 55% less likely"). A
    term whose interval includes 1 says the difference could be due to chance. Rows with a
    missing estimate are skipped.
    """
    if estimate is None:
        estimate = next((c for c in ("hazard_ratio", "odds_ratio") if c in table.columns), None)
        if estimate is None:
            raise ValueError("table has neither hazard_ratio nor odds_ratio")
    name = estimate.replace("_", " ")
    out = []
    for row in table.iter_rows(named=True):
        value, lo, hi = row[estimate], row["lower"], row["upper"]
        if value is None or value != value or lo is None or hi is None:
            continue
        covariate, level = _split_term(row["term"])
        group = group_phrase(covariate, level)
        ref = group_phrase(covariate, row.get("reference"), reference=True)
        if value >= 1:
            times = f"{disclosure.round_half_up(value, decimals=1):.1f} times as likely as {ref}"
        else:
            less = disclosure.round_half_up(100 * (1 - value), decimals=0)
            times = (
                f"{disclosure.round_half_up(value, decimals=2):.2f} times as likely as {ref} "
                f"(about {less:.0f}% less likely)"
            )
        sentence = (
            f"{group[0].upper()}{group[1:]} were {times} to {outcome} {when} "
            f"({name} {value:.2f}, 95% CI {lo:.2f} to {hi:.2f})."
        )
        if lo <= 1 <= hi:
            sentence += " The interval includes 1, so this difference could be due to chance."
        out.append(sentence)
    return out


def gray_tests(
    frame: pl.DataFrame,
    groups: Mapping[str, str],
    *,
    cause: int = 1,
    event_type: str = "event_type",
    min_events: int = 5,
) -> tuple[pl.DataFrame, list[str]]:
    """Gray's test of equal cumulative incidence across the levels of each grouping column.

    ``groups`` maps a label ("Age band") to a column. Levels with fewer than ``min_events``
    events of ``cause`` are left out of that test (a test on a handful of events is not
    informative, and its chi-squared approximation is poor); the notes say which. Returns ``comparison, groups, statistic, df, p`` (one row per test
    with at least two levels left) and the notes.
    """
    from cinresearch.survival import gray_test

    rows = []
    notes = []
    for label, column in groups.items():
        flagged = frame.with_columns(_hit=(pl.col(event_type) == cause).cast(pl.Int64))
        few = sparse_levels(flagged, column, "_hit", min_events)
        kept = flagged.filter(~pl.col(column).cast(pl.String).is_in(few)).drop("_hit")
        levels = kept[column].cast(pl.String).n_unique()
        if few:
            notes.append(
                f"{label}: groups with fewer than {min_events} events left out of the test: "
                f"{', '.join(few)}."
            )
        if levels < 2:
            notes.append(f"{label}: fewer than two groups to compare; no test.")
            continue
        test = gray_test(kept, event=event_type, cause=cause, group=column).row(0, named=True)
        rows.append(
            {
                "comparison": label,
                "groups": levels,
                "statistic": test["statistic"],
                "df": test["df"],
                "p": test["p"],
            }
        )
    schema = {
        "comparison": pl.String,
        "groups": pl.Int64,
        "statistic": pl.Float64,
        "df": pl.Int64,
        "p": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema), notes


def gray_sentence(tests: pl.DataFrame, notes: Sequence[str] = ()) -> str:
    """Gray's tests in words: "Gray's test of a difference between age groups: chi-squared
    7.4 on 5 degrees of freedom, p = 0.195." plus the notes."""
    parts = [
        f"Gray's test of a difference between groups ({row['comparison'].lower()}): "
        f"chi-squared {row['statistic']:.1f} on {row['df']} degrees of freedom, "
        f"{p_text(row['p'])}."
        for row in tests.iter_rows(named=True)
    ]
    return " ".join([*parts, *notes])


def curve_at(curve: pl.DataFrame, times: Sequence[float], min_at_risk: int = 10) -> pl.DataFrame:
    """Estimates of a curve (survival or cumulative incidence) at ``times``, one row per group
    and time, null where fewer than ``min_at_risk`` were still at risk (disclosure control).

    ``curve`` is a full curve from :mod:`cinresearch.survival`; the value at ``t`` is that of
    the last curve row at or before ``t`` (a step function), and the number at risk is that of
    the first row at or after ``t``.
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
            at_risk = int(part["at_risk"][j]) if j is not None else 0
            est = None if i is None else part["estimate"][i]
            lo = None if i is None else part["lower"][i]
            hi = None if i is None else part["upper"][i]
            if at_risk < min_at_risk:
                est = lo = hi = None
            rows.append(
                {"group": group, "time": float(x), "estimate": est, "lower": lo, "upper": hi}
            )
    return pl.DataFrame(
        rows,
        schema={
            "group": pl.String,
            "time": pl.Float64,
            "estimate": pl.Float64,
            "lower": pl.Float64,
            "upper": pl.Float64,
        },
    )


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
        rows[g][name] = format_estimate(rec["estimate"], rec["lower"], rec["upper"])
    columns = [group_label] + [labels.get(float(t), f"{float(t):g} days") for t in times]
    return pl.DataFrame([rows[g] for g in order], schema=dict.fromkeys(columns, pl.String))


def order_age_bands(frame: pl.DataFrame, column: str = "age_band") -> pl.DataFrame:
    """Rows in DfE age-band order, other levels (e.g. "Missing") next and "Total" last."""
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


# --------------------------------------------------------------------------------------------
# Planted effects of the synthetic generator
# --------------------------------------------------------------------------------------------


SYNTH_EFFECTS_YAML = (
    Path(__file__).resolve().parent.parent / "data_contracts" / "synth_effects.yaml"
)


def planted_effects(path: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """The planted effects of the synthetic generator (``data_contracts/synth_effects.yaml``),
    or ``None`` when the file is absent."""
    target = Path(path) if path else SYNTH_EFFECTS_YAML
    if not target.exists():
        return None
    data = yaml.safe_load(target.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else None


def planted_hazard_ratios(
    effects: Mapping[str, Any], effect: str = "cpp_hazard"
) -> dict[str, float]:
    """Planted hazard ratios of one effect as model terms: ``{"age_band[under 1]": 2.0,
    "disabled": 1.5, ...}`` (reference levels, with ratio 1, are left out)."""
    spec = (effects.get("planted_effects") or {}).get(effect) or {}
    out: dict[str, float] = {}
    for covariate, value in (spec.get("hazard_ratios") or {}).items():
        if isinstance(value, Mapping):
            reference = str((spec.get("reference") or {}).get(covariate))
            for level, ratio in value.items():
                if str(level) != reference:
                    out[f"{covariate}[{level}]"] = float(ratio)
        else:
            out[str(covariate)] = float(value)
    return out


def compare_with_planted(table: pl.DataFrame, planted: Mapping[str, float]) -> pl.DataFrame:
    """Model estimates next to planted values: ``term, reference, hazard_ratio, lower, upper,
    planted, covered`` for the terms that have a planted value (``covered``: the planted value
    lies inside the confidence interval)."""
    estimate = "hazard_ratio" if "hazard_ratio" in table.columns else "odds_ratio"
    truth = pl.DataFrame(
        {"term": list(planted), "planted": [float(v) for v in planted.values()]},
        schema={"term": pl.String, "planted": pl.Float64},
    )
    return (
        table.select("term", "reference", estimate, "lower", "upper")
        .join(truth, on="term", how="inner", maintain_order="left")
        .with_columns(
            covered=(pl.col("lower") <= pl.col("planted")) & (pl.col("planted") <= pl.col("upper"))
        )
    )


def planted_rereferral_12m(effects: Mapping[str, Any]) -> float | None:
    """Share of closed cases re-referred within 365 days implied by the planted re-referral
    process (probability x mixture of two exponential gaps), before LA variation, the 18th
    birthday and moves; ``None`` when the effect is not described."""
    spec = (effects.get("planted_effects") or {}).get("rereferral") or {}
    try:
        prob = float(spec["probability"])
        fast = float(spec["fast_share"])
        fast_mean = float(spec["fast_mean_days"])
        slow_mean = float(spec["slow_mean_days"])
    except (KeyError, TypeError, ValueError):
        return None
    within = fast * (1 - math.exp(-365 / fast_mean)) + (1 - fast) * (1 - math.exp(-365 / slow_mean))
    return prob * within


# --------------------------------------------------------------------------------------------
# Chapter 1: data quality
# --------------------------------------------------------------------------------------------


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
    for r in _as_store(store).inputs():
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
    for r in _as_store(store).inputs():
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
    report = _as_store(store).read_json("reports/load_report.json") or {}
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


# --------------------------------------------------------------------------------------------
# Chapter 2: journeys
# --------------------------------------------------------------------------------------------


#: Stages of a CIN journey, in order, with the episodes column that marks reaching each one.
FLOW_STAGES: tuple[tuple[str, pl.Expr], ...] = (
    ("Referrals", pl.lit(True)),
    ("Not closed with no further action", ~pl.col("referral_nfa").fill_null(False)),
    ("Assessment started", pl.col("first_assessment_start").is_not_null()),
    ("Section 47 enquiry", pl.col("first_s47_start").is_not_null()),
    ("Initial child protection conference", pl.col("first_icpc_date").is_not_null()),
    ("Child protection plan", pl.col("first_cpp_start").is_not_null()),
)


def journey_flow(
    episodes: pl.DataFrame | pl.LazyFrame, census_years: Iterable[int]
) -> pl.DataFrame:
    """Referral → assessment → s47 → ICPC → CPP: episodes reaching each stage, by the census year
    of referral, with conversion percentages.

    Returns ``census_year, stage_order, stage, episodes, pct_of_referrals, pct_of_previous``.
    A stage counts when it happened within the same episode (at any time up to the latest
    return), so the latest year's conversions are still growing.
    """
    years = sorted({int(y) for y in census_years})
    lf = episodes.lazy() if isinstance(episodes, pl.DataFrame) else episodes
    base = (
        lf.with_columns(census_year=census_year_expr("referral_date"))
        .filter(pl.col("census_year").is_in(years))
        # stage flags first: a literal condition broadcasts in with_columns, not in an agg
        .with_columns([cond.alias(f"s{i}") for i, (_, cond) in enumerate(FLOW_STAGES)])
    )
    counts = base.group_by("census_year").agg(
        [pl.col(f"s{i}").sum().cast(pl.Int64) for i in range(len(FLOW_STAGES))]
    )
    grid = pl.LazyFrame({"census_year": years}, schema={"census_year": pl.Int16})
    wide = grid.join(counts, on="census_year", how="left").fill_null(0).collect()
    rows = []
    for rec in wide.iter_rows(named=True):
        for i, (stage, _) in enumerate(FLOW_STAGES):
            n = int(rec[f"s{i}"])
            total = int(rec["s0"])
            prev = int(rec[f"s{i - 1}"]) if i else None
            rows.append(
                {
                    "census_year": int(rec["census_year"]),
                    "stage_order": i + 1,
                    "stage": stage,
                    "episodes": n,
                    "pct_of_referrals": 100.0 * n / total if total else None,
                    "pct_of_previous": (100.0 * n / prev if prev else None) if i else None,
                }
            )
    return pl.DataFrame(
        rows,
        schema={
            "census_year": pl.Int16,
            "stage_order": pl.Int8,
            "stage": pl.String,
            "episodes": pl.Int64,
            "pct_of_referrals": pl.Float64,
            "pct_of_previous": pl.Float64,
        },
    ).sort("census_year", "stage_order")


def episodes_by_year(
    episodes: pl.DataFrame | pl.LazyFrame, census_years: Iterable[int]
) -> pl.DataFrame:
    """Per census year: ``referrals`` (episodes starting in the year), ``nfa`` (of which no
    further action), ``children_referred`` (distinct child × LA), ``open_at_31_march`` and
    ``closed`` (episodes closed in the year)."""
    years = sorted({int(y) for y in census_years})
    lf = episodes.lazy() if isinstance(episodes, pl.DataFrame) else episodes
    grid = pl.LazyFrame({"census_year": years}, schema={"census_year": pl.Int16})
    referred = (
        lf.with_columns(census_year=census_year_expr("referral_date"))
        .group_by("census_year")
        .agg(
            referrals=pl.len().cast(pl.Int64),
            nfa=pl.col("referral_nfa").fill_null(False).sum().cast(pl.Int64),
            children_referred=pl.struct("child_id", "la_code").n_unique().cast(pl.Int64),
        )
    )
    open_at = (
        lf.select(census_year=pl.col("open_at_31_march"))
        .explode("census_year")
        .group_by(pl.col("census_year").cast(pl.Int16))
        .agg(open_at_31_march=pl.len().cast(pl.Int64))
    )
    closed = (
        lf.filter(pl.col("closure_date").is_not_null())
        .with_columns(census_year=census_year_expr("closure_date"))
        .group_by("census_year")
        .agg(closed=pl.len().cast(pl.Int64))
    )
    return (
        grid.join(referred, on="census_year", how="left")
        .join(open_at, on="census_year", how="left")
        .join(closed, on="census_year", how="left")
        .fill_null(0)
        .sort("census_year")
        .collect()
    )


def sample_journeys(
    episodes: pl.DataFrame,
    events: pl.DataFrame,
    n: int = 12,
    first_year: int | None = None,
    last_year: int | None = None,
) -> pl.DataFrame:
    """Events of up to ``n`` children for a timeline picture (synthetic data only).

    Children with a child protection plan in an episode referred in census years
    ``first_year..last_year`` whose whole journey in the LA starts in that window (so the
    pictures share a time axis), chosen in a fixed order of their pseudonymous id (so the
    picture is reproducible). Returns their ``events`` rows.
    """
    eps = episodes.with_columns(_y=census_year_expr("referral_date")).filter(
        pl.col("first_cpp_start").is_not_null()
    )
    if first_year is not None:
        eps = eps.filter(pl.col("_y") >= first_year)
    if last_year is not None:
        eps = eps.filter(pl.col("_y") <= last_year)
    keys = ["child_id", "la_code"]
    candidates = eps.select(keys).unique()
    if first_year is not None:
        window_start = date(first_year - 1, 4, 1)
        starts = events.group_by(keys).agg(_first=pl.col("date").min())
        candidates = candidates.join(starts, on=keys, how="inner").filter(
            pl.col("_first") >= window_start
        )
    chosen = candidates.select(keys).sort("la_code", "child_id").head(n)
    return events.join(chosen, on=keys, how="semi").sort("la_code", "child_id", "date", "seq")


def audit_la_expr(key: str = "key") -> pl.Expr:
    """LA code of a ``merge_audit`` row: the second ``|``-separated part of its natural key
    (every merged table's key starts with child_id, la_code)."""
    return pl.col(key).str.split("|").list.get(1, null_on_oob=True)


def merge_audit_summary(audit: pl.DataFrame | pl.LazyFrame, la_code: str = ENGLAND) -> pl.DataFrame:
    """What later returns changed: per table and column, values overridden and conflicts
    (``table, column, records, changes, conflicts``; records = distinct natural keys)."""
    lf = audit.lazy() if isinstance(audit, pl.DataFrame) else audit
    if la_code != ENGLAND:
        lf = lf.filter(audit_la_expr() == la_code)
    return (
        lf.group_by("table", "column")
        .agg(
            records=pl.col("key").n_unique().cast(pl.Int64),
            changes=pl.len().cast(pl.Int64),
            conflicts=pl.col("conflict").fill_null(False).sum().cast(pl.Int64),
        )
        .sort("table", "column")
        .collect()
    )


# --------------------------------------------------------------------------------------------
# Chapter 5: benchmarking
# --------------------------------------------------------------------------------------------


def measure_labels() -> dict[str, str]:
    """Official measure id → its label (``data_contracts/indicators.yaml``)."""
    from cinresearch.indicators import indicator_metadata

    meta = indicator_metadata()
    return dict(zip(meta["measure"].to_list(), meta["label"].to_list(), strict=True))


def neighbour_list(
    indicators: pl.DataFrame, la_code: str, census_year: int | None = None
) -> tuple[list[str], str]:
    """An LA's statistical neighbours and a sentence saying where they came from.

    The configured list (``data_contracts/statistical_neighbours.yaml``) when there is one,
    else the LAs nearest on the fallback measures (which ``indicators`` must include); an
    empty list when neither applies. Never warns: the sentence says what happened.
    """
    from cinresearch import benchmarking

    configured, fallback = benchmarking.load_statistical_neighbours()
    if la_code in configured:
        peers = [x for x in configured[la_code] if x != la_code]
        return peers, "its published statistical neighbours"
    measures = list(fallback.get("measures") or [])
    k = int(fallback.get("k", 10))
    peers = benchmarking.nearest_by_rate(
        indicators, la_code, measures, k=k, census_year=census_year
    )
    if not peers:
        return [], "no statistical neighbours (none configured, and too few LAs to choose from)"
    labels = measure_labels()
    names = "; ".join(labels.get(m, m) for m in measures)
    return peers, (
        f"the {len(peers)} LA(s) in the data most similar to it on these measures: {names} "
        "(no published neighbour list is configured)"
    )


def _funnel_kind(unit: str) -> str | None:
    return {"rate_per_10000": "rate", "percent": "proportion"}.get(unit)


def funnel_figure(
    indicators: pl.DataFrame,
    measure: str,
    census_year: int,
    la_code: str = ENGLAND,
    threshold: int = 5,
    title: str | None = None,
) -> tuple[Any | None, str]:
    """A funnel plot of one rate or percentage across LAs for one census year, around the
    England value, with the LA highlighted (none for ``"ENG"``); returns ``(figure, note)``.

    LAs whose count is 1..``threshold`` are not plotted (the note says how many), so the
    figure shows nothing a table would suppress. ``(None, reason)`` when there is nothing to
    plot (no England value, not a rate or percentage, no LA left).
    """
    from cinresearch import benchmarking, plots
    from cinresearch.indicators import LOCAL_AUTHORITY, NATIONAL

    rows = indicators.filter(
        (pl.col("measure") == measure)
        & (pl.col("breakdown") == "total")
        & (pl.col("census_year") == census_year)
    )
    national = rows.filter(pl.col("geographic_level") == NATIONAL)
    if national.is_empty() or national["value"][0] is None:
        return None, "no England value"
    unit = str(national["unit"][0])
    kind = _funnel_kind(unit)
    if kind is None:
        return None, "funnel plots are drawn for rates and percentages only"
    las = rows.filter(
        (pl.col("geographic_level") == LOCAL_AUTHORITY)
        & pl.col("denominator").is_not_null()
        & (pl.col("denominator") > 0)
        & pl.col("value").is_not_null()
    )
    small = disclosure.primary_suppression("numerator", threshold)
    hidden = las.filter(small).height
    points = las.filter(~small).select("la_code", "denominator", "value", "numerator")
    note = f"{hidden} LA(s) with a count from 1 to {threshold} are not plotted." if hidden else ""
    if points.is_empty():
        return None, note or "no LA values"
    target = float(national["value"][0])
    # limits drawn from half the smallest LA's size (the funnel's mouth is uninformative
    # below it) to a little past the largest; binomial limits need whole denominators
    low = max(1.0, float(points["denominator"].min()) * 0.5)
    top = float(points["denominator"].max()) * 1.1
    grid = [low + (top - low) * i / 199 for i in range(200)]
    if kind == "proportion":
        grid = sorted({float(round(x)) for x in grid})
    limits = benchmarking.funnel_limits(target, grid, kind=kind)
    highlight = la_code if la_code in points["la_code"].to_list() else None
    if la_code != ENGLAND and highlight is None:
        note = (note + " " if note else "") + f"LA {la_code} is not plotted (small numbers)."
    fig = plots.funnel_plot(
        points,
        limits,
        target,
        highlight=highlight,
        y="value",
        title=title or measure_labels().get(measure, measure),
        xlabel="Children aged 0-17 (population)"
        if kind == "rate"
        else "Number of cases (denominator)",
        ylabel="Rate per 10,000 children" if kind == "rate" else "%",
    )
    return fig, note


def trend_figure(
    series: pl.DataFrame, measures: Sequence[str], title: str, threshold: int = 5
) -> Any:
    """Small multiples of indicator trends: one panel per measure, one line per ``area``.

    ``series`` has ``census_year, measure, area, value`` and optionally ``numerator`` (values
    whose count is 1..``threshold`` are left out of the lines)."""
    from matplotlib.figure import Figure

    from cinresearch import plots

    labels = measure_labels()
    if "numerator" in series.columns:
        series = mask_small_counts(series, ["value"], "numerator", threshold)
    n = len(measures)
    cols = 2 if n > 1 else 1
    rows = (n + cols - 1) // cols
    width = plots.FIGSIZE["full"][0]
    fig = Figure(figsize=(width, 2.3 * rows + 0.8), layout="constrained")
    with plots.house_style():
        axes = fig.subplots(rows, cols, squeeze=False)
        for i, measure in enumerate(measures):
            ax = axes[i // cols][i % cols]
            part = series.filter(pl.col("measure") == measure).with_columns(
                pl.col("census_year").cast(pl.Int32)
            )
            plots.line_chart(part, x="census_year", y="value", group="area", ax=ax, xlabel="")
            ax.set_title(_wrap(labels.get(measure, measure), 38), fontsize=9)
            ax.set_ylabel("")
            if ax.get_legend() is not None:
                ax.get_legend().remove()
        for j in range(n, rows * cols):
            axes[j // cols][j % cols].set_visible(False)
        handles, names = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, names, loc="outside lower center", ncols=max(1, len(names)))
        fig.suptitle(title, fontweight="bold", x=0.02, ha="left")
    return fig


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


# --------------------------------------------------------------------------------------------
# Chapter 6: outcomes
# --------------------------------------------------------------------------------------------


#: Primary need codes grouped for analysis (the small categories together).
NEED_GROUPS = {
    "N1": "Abuse or neglect",
    "N2": "Disability or illness",
    "N4": "Family stress",
    "N5": "Family stress",
}


def need_group_expr(column: str = "primary_need") -> pl.Expr:
    """Primary need in four groups (short labels for figures): abuse or neglect (N1), the
    child's disability or illness (N2), family in acute stress or dysfunction ("Family
    stress": N4, N5), other needs (the rest); "Not recorded" when missing."""
    return (
        pl.when(pl.col(column).is_null())
        .then(pl.lit("Not recorded"))
        .otherwise(
            pl.col(column).replace_strict(
                NEED_GROUPS, default="Other needs", return_dtype=pl.String
            )
        )
        .alias("need_group")
    )


#: Closure reasons of episodes assessed as not in need (not "episodes of need").
NOT_IN_NEED_CLOSURE_REASONS = ("RC8", "RC9")


#: Groups of pupils compared by :func:`education_outcomes`, in display order.
SCHOOL_GROUPS = ("In need this year", "In need in an earlier year", "Other pupils")


def _academic_year_window(year: int) -> tuple[date, date]:
    return date(year - 1, 9, 1), date(year, 8, 31)


def education_outcomes(
    npd: pl.DataFrame | pl.LazyFrame,
    episodes: pl.DataFrame | pl.LazyFrame,
    academic_years: Iterable[int],
    la_code: str = ENGLAND,
) -> pl.DataFrame:
    """School outcomes of children in need against other pupils, by academic year.

    Groups, for academic year ``Y`` (1 September ``Y-1`` to 31 August ``Y``), linked by the
    pseudonymised UPN:

    * ``In need this year`` — an *episode of need* was open on any day of the year (episodes
      ended with no further action, or closed as assessed not in need with RC8/RC9, are not
      episodes of need, as in DfE's statistics);
    * ``In need in an earlier year`` — not this year, but an episode of need started before it
      (as far back as the data goes);
    * ``Other pupils`` — everyone else in the NPD extract that year.

    For one LA, pupils are those the NPD places in that LA (``la_code`` of the NPD row) and the
    episodes are that LA's. Returns ``academic_year, group, pupils, absence_rate`` (% of
    possible sessions missed), ``persistent_absentees, persistent_absence_pct, suspended,
    suspended_pct, excluded, excluded_pct, ks2_pupils, ks2_expected, ks2_expected_pct,
    ks4_pupils, attainment8_mean``. Counts are pupils.
    """
    years = sorted({int(y) for y in academic_years})
    pupils = npd.lazy() if isinstance(npd, pl.DataFrame) else npd
    eps = episodes.lazy() if isinstance(episodes, pl.DataFrame) else episodes
    pupils = pupils.filter(pl.col("academic_year").is_in(years) & pl.col("upn_hash").is_not_null())
    eps = eps.filter(
        ~pl.col("referral_nfa").fill_null(False)
        & ~pl.col("closure_reason").is_in(list(NOT_IN_NEED_CLOSURE_REASONS)).fill_null(False)
        & pl.col("upn_hash").is_not_null()
    )
    if la_code != ENGLAND:
        pupils = pupils.filter(pl.col("la_code") == la_code)
        eps = eps.filter(pl.col("la_code") == la_code)
    windows = pl.LazyFrame(
        {
            "academic_year": years,
            "_start": [_academic_year_window(y)[0] for y in years],
            "_end": [_academic_year_window(y)[1] for y in years],
        },
        schema={"academic_year": pl.Int16, "_start": pl.Date, "_end": pl.Date},
    )
    status = (
        eps.select("upn_hash", "referral_date", "closure_date")
        .join(windows, how="cross")
        .group_by("upn_hash", "academic_year")
        .agg(
            _current=(
                (pl.col("referral_date") <= pl.col("_end"))
                & (pl.col("closure_date").is_null() | (pl.col("closure_date") >= pl.col("_start")))
            ).any(),
            _earlier=(pl.col("referral_date") < pl.col("_start")).any(),
        )
    )
    one_row = pupils.group_by("upn_hash", "academic_year").agg(
        pl.col("sessions_possible").sum(),
        pl.col("sessions_absent").sum(),
        pl.col("persistent_absence").any(),
        (pl.col("suspensions").fill_null(0) > 0).any().alias("_suspended"),
        pl.col("permanent_exclusion").any(),
        pl.col("ks2_rwm_expected").drop_nulls().first(),
        pl.col("ks4_attainment8").drop_nulls().first(),
    )
    joined = one_row.with_columns(pl.col("academic_year").cast(pl.Int16)).join(
        status, on=["upn_hash", "academic_year"], how="left"
    )
    group = (
        pl.when(pl.col("_current").fill_null(False))
        .then(pl.lit(SCHOOL_GROUPS[0]))
        .when(pl.col("_earlier").fill_null(False))
        .then(pl.lit(SCHOOL_GROUPS[1]))
        .otherwise(pl.lit(SCHOOL_GROUPS[2]))
        .cast(pl.Enum(list(SCHOOL_GROUPS)))
    )
    out = (
        joined.group_by("academic_year", group.alias("group"))
        .agg(
            pupils=pl.len().cast(pl.Int64),
            _possible=pl.col("sessions_possible").sum(),
            _absent=pl.col("sessions_absent").sum(),
            persistent_absentees=pl.col("persistent_absence").fill_null(False).sum().cast(pl.Int64),
            suspended=pl.col("_suspended").fill_null(False).sum().cast(pl.Int64),
            excluded=pl.col("permanent_exclusion").fill_null(False).sum().cast(pl.Int64),
            ks2_pupils=pl.col("ks2_rwm_expected").is_not_null().sum().cast(pl.Int64),
            ks2_expected=pl.col("ks2_rwm_expected").fill_null(False).sum().cast(pl.Int64),
            ks4_pupils=pl.col("ks4_attainment8").is_not_null().sum().cast(pl.Int64),
            attainment8_mean=pl.col("ks4_attainment8").mean(),
        )
        .collect()
    )

    def pct(num: str, den: str) -> pl.Expr:
        return pl.when(pl.col(den) > 0).then(100.0 * pl.col(num) / pl.col(den))

    return (
        out.with_columns(
            absence_rate=pl.when(pl.col("_possible") > 0).then(
                100.0 * pl.col("_absent") / pl.col("_possible")
            ),
            persistent_absence_pct=pct("persistent_absentees", "pupils"),
            suspended_pct=pct("suspended", "pupils"),
            excluded_pct=pct("excluded", "pupils"),
            ks2_expected_pct=pct("ks2_expected", "ks2_pupils"),
        )
        .select(
            "academic_year",
            "group",
            "pupils",
            "absence_rate",
            "persistent_absentees",
            "persistent_absence_pct",
            "suspended",
            "suspended_pct",
            "excluded",
            "excluded_pct",
            "ks2_pupils",
            "ks2_expected",
            "ks2_expected_pct",
            "ks4_pupils",
            "attainment8_mean",
        )
        .sort("academic_year", "group")
        .with_columns(pl.col("group").cast(pl.String))
    )
