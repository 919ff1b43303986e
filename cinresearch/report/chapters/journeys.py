"""Chapter 2 (``02_journeys``): episodes by census year, how far referrals go along the route
to a child protection plan, what later returns changed, and a sample of journeys to draw.

Counts are CIN episodes (one row of the ``episodes`` table) unless named otherwise; a census
year is the year ending 31 March (:func:`cinresearch.report.scope.census_year_expr`).
:func:`sample_journeys` is for synthetic data only: the notebook draws it only when
:func:`cinresearch.report.scope.is_synthetic` says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import polars as pl

from cinresearch.report.scope import ENGLAND, census_year_expr

__all__ = [
    "FLOW_STAGES",
    "audit_la_expr",
    "episodes_by_year",
    "journey_flow",
    "merge_audit_summary",
    "sample_journeys",
]

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
