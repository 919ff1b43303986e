"""Chapter 6 (``06_outcomes``): primary need in four groups, and the school outcomes of children
in need against other pupils (linked by the pseudonymised UPN).

Counts are pupils; percentages are of pupils (or of pupils with a key stage result). A figure
based on a confidential count is not written (:func:`school_gap_text` asks
:func:`cinresearch.report.text.is_confidential`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import polars as pl

from cinresearch import disclosure
from cinresearch.report.scope import ENGLAND
from cinresearch.report.text import is_confidential, pct_text

__all__ = [
    "NEED_GROUPS",
    "NOT_IN_NEED_CLOSURE_REASONS",
    "SCHOOL_GROUPS",
    "education_outcomes",
    "need_group_expr",
    "school_gap_text",
]


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


def school_gap_text(latest: pl.DataFrame, threshold: int = 5) -> str | None:
    """One sentence comparing pupils in need this year with other pupils, from one academic
    year of :func:`education_outcomes`: the share of sessions missed (half up, 1 decimal
    place) and the share suspended at least once (:func:`cinresearch.report.text.pct_text`).

    ``None`` — nothing to write — when either group is missing, has no pupils or no absence
    rate, or has a confidential number of pupils (1..``threshold``).
    """
    cin = latest.filter(pl.col("group") == SCHOOL_GROUPS[0])
    other = latest.filter(pl.col("group") == SCHOOL_GROUPS[2])
    if not (cin.height and other.height):
        return None
    pupils = (int(cin["pupils"][0]), int(other["pupils"][0]))
    if any(n <= 0 or is_confidential(n, threshold) for n in pupils):
        return None
    if cin["absence_rate"][0] is None or other["absence_rate"][0] is None:
        return None

    def rate(frame: pl.DataFrame) -> str:
        return f"{disclosure.round_half_up(frame['absence_rate'][0], decimals=1):.1f}%"

    return (
        f"Pupils in need this year missed **{rate(cin)}** of school sessions, against "
        f"{rate(other)} for other pupils; "
        f"{pct_text(cin['suspended'][0], pupils[0], threshold)} of them were suspended at "
        f"least once, against {pct_text(other['suspended'][0], pupils[1], threshold)}."
    )
