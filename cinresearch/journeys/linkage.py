"""Linkage of CIN episodes to children looked after (SSDA903) and to the NPD.

CLA: within the same LA, ``child_id`` (pseudonymised LAchildID ↔ CHILD) links the two returns.
CLA episodes are de-duplicated across returns on (la_code, child_id, decom), latest return wins
(:func:`merge_cla_episodes`). Episodes chain into a *period of care* when one episode's ``dec``
equals the next one's ``decom`` (placement or legal-status changes, REC X1), so:

* **entered care** = a CLA episode start that does not continue an earlier episode of the child
  (its ``decom`` is no other episode's ``dec``); a placement move inside a period of care is not
  an entry to care;
* **left care** = a ``dec`` that no other episode continues from.

An episode's ``entered_care_date`` is the first entry to care *during* the episode (same LA and
child): on/after its referral date and, when it is closed, on/before its closure date. An entry to
care after a closure belongs to a later episode (or to none), not to the closed one.

NPD: children link by ``upn_hash`` (pseudonymised UPN). ``npd_outcomes`` is one row per linked
child (child_id, la_code) × NPD academic year.
"""

from __future__ import annotations

import polars as pl

from cinresearch.codes import AGE_BANDS
from cinresearch.journeys.dedup import merge_table

CHILD_KEY = ["child_id", "la_code"]

NPD_COLUMNS = [
    "fsm",
    "sen",
    "sessions_possible",
    "sessions_absent",
    "persistent_absence",
    "suspensions",
    "permanent_exclusion",
    "ks2_rwm_expected",
    "ks4_attainment8",
]

LINK_REPORT_SCHEMA: dict[str, pl.DataType] = {
    "linkage": pl.String(),
    "level": pl.String(),
    "age_band": pl.String(),
    "n": pl.Int64(),
    "n_with_key": pl.Int64(),
    "n_matched": pl.Int64(),
    "match_rate": pl.Float64(),
    "match_rate_with_key": pl.Float64(),
}


def merge_cla_episodes(cla_episodes: pl.LazyFrame) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """De-duplicate CLA episodes across returns on (la_code, child_id, decom) → (merged, audit)."""
    return merge_table(cla_episodes, "cla_episodes")


def _merged(cla: pl.LazyFrame) -> pl.LazyFrame:
    """Accept CLA episodes raw (with ``census_year``) or already merged."""
    if "census_year" in cla.collect_schema().names():
        return merge_cla_episodes(cla)[0]
    return cla


def care_entries(cla: pl.LazyFrame) -> pl.LazyFrame:
    """Starts of periods of care: child_id, la_code, decom, rne, ls, place (sorted)."""
    cla = _merged(cla)
    continued = cla.filter(pl.col("dec").is_not_null()).select(
        *CHILD_KEY, pl.col("dec").alias("decom")
    )
    return (
        cla.join(continued.unique(), on=[*CHILD_KEY, "decom"], how="anti")
        .select(*CHILD_KEY, "decom", "rne", "ls", "place")
        .sort("la_code", "child_id", "decom")
    )


def care_exits(cla: pl.LazyFrame) -> pl.LazyFrame:
    """Ends of periods of care: child_id, la_code, dec, rec (sorted)."""
    cla = _merged(cla)
    starts = cla.select(*CHILD_KEY, pl.col("decom").alias("dec")).unique()
    return (
        cla.filter(pl.col("dec").is_not_null())
        .join(starts, on=[*CHILD_KEY, "dec"], how="anti")
        .select(*CHILD_KEY, "dec", "rec")
        .unique()
        .sort("la_code", "child_id", "dec", "rec", nulls_last=True)
    )


def entered_care_dates(episodes: pl.LazyFrame, cla: pl.LazyFrame) -> pl.LazyFrame:
    """episode_id → ``entered_care_date``: first entry to care during the episode.

    During = on/after the referral date and, for a closed episode, on/before its closure date.
    """
    entries = care_entries(cla).select(*CHILD_KEY, "decom")
    return (
        episodes.select("episode_id", *CHILD_KEY, "referral_date", "closure_date")
        .join(entries, on=CHILD_KEY, how="inner")
        .filter(
            (pl.col("decom") >= pl.col("referral_date"))
            & (pl.col("closure_date").is_null() | (pl.col("decom") <= pl.col("closure_date")))
        )
        .group_by("episode_id")
        .agg(entered_care_date=pl.col("decom").min())
    )


def link_npd(children_longitudinal: pl.LazyFrame, npd: pl.LazyFrame) -> pl.LazyFrame:
    """``npd_outcomes``: child × academic_year rows of the NPD joined via ``upn_hash``.

    Columns: child_id, la_code, upn_hash, academic_year, npd_la_code, then the NPD measures
    (attainment, absence, exclusions, fsm, sen). Children without a UPN hash do not link.
    """
    npd = npd.rename({"la_code": "npd_la_code"}).filter(pl.col("upn_hash").is_not_null())
    return (
        children_longitudinal.select(*CHILD_KEY, "upn_hash")
        .filter(pl.col("upn_hash").is_not_null())
        .join(npd, on="upn_hash", how="inner")
        .select(*CHILD_KEY, "upn_hash", "academic_year", "npd_la_code", *NPD_COLUMNS)
        .unique()
        .sort("la_code", "child_id", "academic_year", "npd_la_code", nulls_last=True)
    )


def _rates(frame: pl.LazyFrame, linkage: str, level: str, by_band: bool) -> pl.LazyFrame:
    band = pl.col("age_band").cast(pl.String).fill_null("unknown") if by_band else pl.lit("all")
    return (
        frame.group_by(band.alias("age_band"))
        .agg(
            n=pl.len().cast(pl.Int64),
            n_with_key=pl.col("has_key").sum().cast(pl.Int64),
            n_matched=pl.col("matched").sum().cast(pl.Int64),
        )
        .with_columns(
            linkage=pl.lit(linkage),
            level=pl.lit(level),
            match_rate=pl.when(pl.col("n") > 0).then(pl.col("n_matched") / pl.col("n")),
            match_rate_with_key=pl.when(pl.col("n_with_key") > 0).then(
                pl.col("n_matched") / pl.col("n_with_key")
            ),
        )
        .select(list(LINK_REPORT_SCHEMA))
    )


def link_report(
    episodes: pl.LazyFrame,
    cla: pl.LazyFrame | None = None,
    npd: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Match rates, overall and by age band (age band of the child's first episode in the LA).

    Rows (``linkage``, ``level``): ("cla", "episodes") share of episodes whose child has any CLA
    episode in the same LA; ("cla_entry", "episodes") share of episodes with an
    ``entered_care_date``; ("cla", "children") share of children (child × LA) with a CLA record;
    ("npd", "children") share of children matched in the NPD by ``upn_hash`` (``n_with_key`` =
    children with a UPN hash; ``match_rate_with_key`` = matched / with key).
    """
    parts: list[pl.LazyFrame] = []
    ep = episodes.select(*CHILD_KEY, "referral_date", "age_band", "upn_hash", "entered_care_date")
    kids = (
        ep.sort("referral_date")
        .group_by(CHILD_KEY)
        .agg(pl.col("age_band").first(), pl.col("upn_hash").first())
    )
    if cla is not None:
        cla_kids = _merged(cla).select(CHILD_KEY).unique().with_columns(matched=pl.lit(True))
        e = ep.join(cla_kids, on=CHILD_KEY, how="left").with_columns(
            pl.col("matched").fill_null(False), has_key=pl.lit(True)
        )
        c = kids.join(cla_kids, on=CHILD_KEY, how="left").with_columns(
            pl.col("matched").fill_null(False), has_key=pl.lit(True)
        )
        entry = ep.with_columns(
            matched=pl.col("entered_care_date").is_not_null(), has_key=pl.lit(True)
        )
        for by_band in (False, True):
            parts.append(_rates(e, "cla", "episodes", by_band))
            parts.append(_rates(entry, "cla_entry", "episodes", by_band))
            parts.append(_rates(c, "cla", "children", by_band))
    if npd is not None:
        pupils = npd.select("upn_hash").drop_nulls().unique().with_columns(matched=pl.lit(True))
        n = kids.join(pupils, on="upn_hash", how="left").with_columns(
            pl.col("matched").fill_null(False), has_key=pl.col("upn_hash").is_not_null()
        )
        for by_band in (False, True):
            parts.append(_rates(n, "npd", "children", by_band))
    if not parts:
        return pl.LazyFrame(schema=LINK_REPORT_SCHEMA)
    order = {b: i for i, b in enumerate(("all", *AGE_BANDS, "unknown"))}
    return (
        pl.concat(parts)
        .with_columns(
            _o=pl.col("age_band").replace_strict(order, default=99, return_dtype=pl.Int32)
        )
        .sort("linkage", "level", "_o")
        .drop("_o")
    )
