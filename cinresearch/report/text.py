"""Numbers as words for a report's prose, after disclosure control.

Counts and percentages written into sentences pass the same rule as a displayed table: whether
a count is confidential is asked of :func:`cinresearch.disclosure.primary_suppression` (never
decided here), England counts are rounded half up to the nearest 10, and a share with a
confidential count is not written. Also here: p-values, estimates with their intervals, model
terms in words, and sentences written from model estimates and tests.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import polars as pl

from cinresearch import disclosure
from cinresearch.codes import AGE_BANDS
from cinresearch.model_frames import LeftOut

__all__ = [
    "count_text",
    "format_estimate",
    "format_p",
    "gray_sentence",
    "group_phrase",
    "is_confidential",
    "label_terms",
    "left_out_notes",
    "median_text",
    "p_text",
    "pct_text",
    "ratio_findings",
    "ratio_text",
    "show_markdown",
    "split_term",
    "term_label",
]


def is_confidential(n: int | float | None, threshold: int = 5) -> bool:
    """Whether disclosure control hides the count ``n`` (a count from 1 to ``threshold``), as
    :func:`cinresearch.disclosure.primary_suppression` decides for a table cell."""
    value = pl.lit(None if n is None else float(n), dtype=pl.Float64)
    return bool(pl.select(disclosure.primary_suppression(value, threshold)).item())


def count_text(n: int | None, threshold: int = 5, rounding_base: int | None = None) -> str:
    """A count for prose, after disclosure control: "no" for 0, "fewer than 6" for a
    confidential count (1..5 with threshold 5), else the count (rounded half up to
    ``rounding_base`` for England) with thousands separators."""
    if n is None:
        return "an unknown number of"
    n = int(n)
    if n == 0:
        return "no"
    if is_confidential(n, threshold):
        return f"fewer than {threshold + 1}"
    if rounding_base:
        n = int(disclosure.round_half_up(n, base=rounding_base))
    return f"{n:,}"


def pct_text(
    numerator: int | None, denominator: int | None, threshold: int = 5, decimals: int = 1
) -> str:
    """A percentage for prose ("12.3%", half up), or "a suppressed share" when either count is
    confidential; "x" when it cannot be computed."""
    if numerator is None or not denominator:
        return "x"
    if is_confidential(numerator, threshold) or is_confidential(denominator, threshold):
        return "a suppressed share (small numbers)"
    value = disclosure.round_half_up(100.0 * numerator / denominator, decimals=decimals)
    return f"{value:.{decimals}f}%"


def format_p(p: float | None) -> str:
    """A p-value for a report: "<0.001", else 3 decimal places half up; "x" when missing."""
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
    """ "12.3% (10.1 to 14.8)" for a probability with its interval; ``missing`` when null
    (curve values are null where the risk set was too small to show)."""
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


def show_markdown(text: str) -> None:
    """Display generated narrative as markdown (rendered in the HTML report)."""
    from IPython.display import Markdown, display  # only in a notebook kernel

    display(Markdown(text))


# --------------------------------------------------------------------------------------------
# Model terms and findings in words
# --------------------------------------------------------------------------------------------


_TERM = re.compile(r"^(?P<cov>[^\[]+)\[(?P<level>.*)\]$")

#: Reader names of model covariates.
_COVARIATE_NAMES = {
    "age_band": "Age",
    "sex": "Sex",
    "disabled": "Disabled",
    "prior_cpp_seen": "Earlier plan",
    "primary_need": "Primary need",
    "ethnicity_group": "Ethnic group",
    "referral_source": "Referral source",
}

#: How prose names the children of each age band, in the order of
#: :data:`cinresearch.codes.AGE_BANDS` (the one list of bands).
_AGE_PHRASES = dict(
    zip(
        AGE_BANDS,
        (
            "unborn children",
            "children under 1",
            "children aged 1 to 4",
            "children aged 5 to 9",
            "children aged 10 to 15",
            "young people aged 16 or over",
        ),
        strict=True,
    )
)

_SEX_WORDS = {"F": "girls", "M": "boys", "U": "unknown"}
_SEX_PHRASES = {"F": "girls", "M": "boys", "U": "children whose sex is not known"}


def split_term(term: str) -> tuple[str, str | None]:
    """A model term's covariate and level: "age_band[under 1]" → ("age_band", "under 1");
    a term without a level (a boolean covariate) → (term, None)."""
    m = _TERM.match(term)
    return (m["cov"], m["level"]) if m else (term, None)


def term_label(term: str, reference: str | None = None) -> str:
    """A model term for a table or forest plot: "age_band[under 1]" → "Age under 1 (vs 5-9)"."""
    covariate, level = split_term(term)
    name = _COVARIATE_NAMES.get(covariate, covariate.replace("_", " ").capitalize())
    if level is None:
        return f"{name} (vs not)" if reference is None else f"{name} (vs {reference})"
    if covariate == "sex":
        return (
            f"Sex: {_SEX_WORDS.get(level, level)} (vs {_SEX_WORDS.get(str(reference), reference)})"
        )
    return f"{name} {level} (vs {reference})" if reference else f"{name} {level}"


def label_terms(table: pl.DataFrame, column: str = "term") -> pl.DataFrame:
    """Replace model term names with reader labels (see :func:`term_label`)."""
    refs = table["reference"].to_list() if "reference" in table.columns else [None] * table.height
    labels = [term_label(t, r) for t, r in zip(table[column].to_list(), refs, strict=True)]
    return table.with_columns(pl.Series(column, labels, dtype=pl.String))


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
        covariate, level = split_term(row["term"])
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


def left_out_notes(
    left_out: LeftOut, threshold: int = 5, rounding_base: int | None = None
) -> list[str]:
    """Sentences saying what :func:`cinresearch.model_frames.model_frame` left out of a model
    and why; counts pass :func:`count_text` (small numbers are not printed)."""
    notes: list[str] = []
    if left_out.unborn:
        notes.append(
            "Unborn children are modelled as their own age group; sex is not used for "
            "them (it is not known before birth)."
        )
    if left_out.unknown_sex:
        notes.append(
            f"{count_text(left_out.unknown_sex, threshold, rounding_base).capitalize()} "
            "records of children whose sex was not known are left out."
        )
    if left_out.incomplete:
        notes.append(
            f"{count_text(left_out.incomplete, threshold, rounding_base).capitalize()} records "
            "with a missing characteristic are left out."
        )
    if left_out.sparse_levels:
        notes.append(
            f"Groups with fewer than {left_out.min_events} events are left out: "
            f"{', '.join(left_out.sparse_levels)}."
        )
    return notes


def gray_sentence(tests: pl.DataFrame, notes: Sequence[str] = ()) -> str:
    """Gray's tests (:func:`cinresearch.model_frames.gray_tests`) in words: "Gray's test of a
    difference between groups (age band): chi-squared 7.4 on 5 degrees of freedom, p = 0.195."
    plus the notes."""
    parts = [
        f"Gray's test of a difference between groups ({row['comparison'].lower()}): "
        f"chi-squared {row['statistic']:.1f} on {row['df']} degrees of freedom, "
        f"{p_text(row['p'])}."
        for row in tests.iter_rows(named=True)
    ]
    return " ".join([*parts, *notes])
