"""Synthetic pre-proceedings (Public Law Outline) and FGDM records, collected from 2025-26.

Drawn from the simulated child protection plans with a random stream of their own, so adding
them changes no other synthetic record. The rates are plausible assumptions, not calibrated to
published figures (DfE had published none from the new module when this was written):

* a share :data:`PP_SHARE_OF_CPP` of plans lead to pre-proceedings, starting
  :data:`START_AFTER_PLAN_DAYS` after the plan starts (and before it ends);
* the letter before proceedings is sent on the start day or within two weeks; a family group
  decision-making meeting is offered in :data:`FGDM_OFFERED` of cases and held in
  :data:`FGDM_FACILITATED_IF_OFFERED` of those; the initial meeting follows the letter by one
  to three weeks;
* the decision to step up or down is 12 to 24 weeks after the start (the PLO aims at 16), and a
  share :data:`COURT_IF_DECIDED` of decisions is an application to court within four weeks.

``PPOutcome`` and ``LetterInitCPDate`` are not generated: their code list and meaning are not
confirmed (see ``data_contracts/pre_proceedings.yaml``). Review meetings are counted when a
return is written (one every four weeks after the initial meeting, up to the decision or the
census date), so a return never counts meetings after its own reference date.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

PP_SHARE_OF_CPP = 0.10
START_AFTER_PLAN_DAYS = (30, 270)
FGDM_OFFERED = 0.75
FGDM_FACILITATED_IF_OFFERED = 0.65
COURT_IF_DECIDED = 0.35
REVIEW_EVERY_DAYS = 28
FIRST_CENSUS_YEAR = 2026  # the module is in returns from 2025-26


def pre_proceedings_frame(
    rng: np.random.Generator, cp_plans: pl.DataFrame, data_end: date
) -> pl.DataFrame:
    """One row per pre-proceedings (episode_id, cpp_start, dates, FGDM flags), as seen at
    ``data_end`` (later dates null, blocks starting later dropped)."""
    n = cp_plans.height
    chosen = rng.random(n) < PP_SHARE_OF_CPP
    lo, hi = START_AFTER_PLAN_DAYS
    after = rng.integers(lo, hi + 1, n)
    lbp_gap = np.where(rng.random(n) < 0.5, 0, rng.integers(1, 15, n))
    meeting_gap = rng.integers(7, 22, n)
    decision_gap = rng.integers(84, 169, n)
    offered = rng.random(n) < FGDM_OFFERED
    facilitated = offered & (rng.random(n) < FGDM_FACILITATED_IF_OFFERED)
    court = rng.random(n) < COURT_IF_DECIDED
    court_gap = rng.integers(0, 29, n)

    def days(values: np.ndarray) -> pl.Expr:
        return pl.duration(days=pl.Series(values, dtype=pl.Int64))

    end = pl.lit(data_end)

    def seen(expr: pl.Expr) -> pl.Expr:
        return pl.when(expr <= end).then(expr)

    start = pl.col("cpp_start") + days(after)
    lbp = start + days(lbp_gap)
    meeting = lbp + days(meeting_gap)
    decision = start + days(decision_gap)
    frame = cp_plans.select("episode_id", "cpp_start", "cpp_end").with_columns(
        pp_start=start,
        lbp_sent_date=lbp,
        initial_meeting_date=meeting,
        decision_date=decision,
        court_application_date=pl.when(pl.Series(court)).then(decision + days(court_gap)),
        fgdm_offered=pl.Series(offered),
        fgdm_facilitated=pl.Series(facilitated),
        _chosen=pl.Series(chosen),
    )
    return (
        frame.filter(
            pl.col("_chosen")
            & (pl.col("pp_start") <= end)
            & (pl.col("cpp_end").is_null() | (pl.col("pp_start") <= pl.col("cpp_end")))
        )
        .with_columns(
            seen(pl.col("lbp_sent_date")).alias("lbp_sent_date"),
            seen(pl.col("initial_meeting_date")).alias("initial_meeting_date"),
            seen(pl.col("decision_date")).alias("decision_date"),
            seen(pl.col("court_application_date")).alias("court_application_date"),
        )
        .select(
            "episode_id",
            "cpp_start",
            "pp_start",
            "lbp_sent_date",
            "fgdm_offered",
            "fgdm_facilitated",
            "initial_meeting_date",
            "decision_date",
            "court_application_date",
        )
        .sort("episode_id", "pp_start")
    )


def review_meetings(census_date: date) -> pl.Expr:
    """Review meetings held by ``census_date``: every four weeks after the initial meeting,
    up to the decision (Int16; null when there was no initial meeting yet)."""
    until = pl.min_horizontal(pl.col("decision_date").fill_null(census_date), pl.lit(census_date))
    held = (until - pl.col("initial_meeting_date")).dt.total_days() // REVIEW_EVERY_DAYS
    return pl.when(pl.col("initial_meeting_date").is_not_null()).then(
        held.clip(lower_bound=0).cast(pl.Int16)
    )
