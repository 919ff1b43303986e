"""The end of follow-up (event, competing event or censoring) and reasons for exclusion.

Candidate end dates are taken in priority order (outcome, competing, censoring), so the first
in the list wins a same-day tie; a cohort subject that cannot be analysed gets the first
failing reason.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from cinresearch.cohorts.definitions import PLAN_ORIGINS
from cinresearch.cohorts.outcome import Outcome
from cinresearch.cohorts.prior_plans import EXCLUDED_PRIOR_CPP

CENSORED, OUTCOME, COMPETING = 0, 1, 2


END_OUTCOME = "outcome"


END_DIED = "competing: died"


END_DATA_END = "censored: data end"


END_BIRTHDAY_18 = "censored: 18th birthday"


END_LEFT_LA = "censored: left LA"


END_LEFT_NPD = "censored: no further NPD records"


def _end_of_followup(
    outcome: Outcome, data_end: date | None
) -> tuple[list[tuple[str, pl.Expr, int, pl.Expr]], list[pl.Expr]]:
    """Candidate end dates in priority order: (column, date, event_type, end_reason)."""
    candidates: list[tuple[str, pl.Expr, int, pl.Expr]] = [
        ("_t_event", pl.col("_t_event"), OUTCOME, pl.lit(END_OUTCOME))
    ]
    censor_reason_closed = pl.col("closure_reason").is_in(list(outcome.censor_closure_reasons))
    if not outcome.censor_closure_reasons:
        censor_reason_closed = pl.lit(False)
    if "died" in outcome.competing:
        candidates.append(("_t_died", pl.col("death_date"), COMPETING, pl.lit(END_DIED)))
    if "closed_without_event" in outcome.competing:
        closed = pl.when(~censor_reason_closed.fill_null(False)).then(pl.col("closure_date"))
        reason = (
            pl.when(pl.col("closure_reason") == "RC2")
            .then(pl.lit(END_DIED))
            .otherwise(pl.lit(outcome.closed_label))
        )
        candidates.append(("_t_closed", closed, COMPETING, reason))
    if "left_la" in outcome.censor:
        transfer = pl.when(censor_reason_closed.fill_null(False)).then(pl.col("closure_date"))
        left = pl.min_horizontal(pl.col("_t_moved"), transfer)
        candidates.append(("_t_left", left, CENSORED, pl.lit(END_LEFT_LA)))
    if "birthday_18" in outcome.censor:
        candidates.append(("_t_18", pl.col("_birthday_18"), CENSORED, pl.lit(END_BIRTHDAY_18)))
    if "data_end" in outcome.censor:
        own = {
            "episode": pl.col("data_end"),
            "la": pl.col("la_data_end"),
            "npd": pl.col("_npd_last_end"),
        }[outcome.follow_up]
        cap = pl.lit(data_end, dtype=pl.Date)
        end = pl.min_horizontal(own, cap) if data_end is not None else own
        reason = pl.lit(END_DATA_END)
        if outcome.follow_up == "npd":
            left_npd = (pl.col("_npd_last_end") < pl.col("_npd_overall_end")) & (
                pl.col("_npd_last_end") <= (cap if data_end is not None else own)
            )
            reason = pl.when(left_npd).then(pl.lit(END_LEFT_NPD)).otherwise(reason)
        candidates.append(("_t_data_end", end, CENSORED, reason))
    return candidates, [expr.alias(name) for name, expr, _, _ in candidates]


def _exclusion_reason(
    outcome: Outcome, analysis_start: date | None, cla_given: bool, prior_plans: str = "keep"
) -> pl.Expr:
    """First reason a cohort subject cannot be analysed (null when it can)."""
    origin = pl.col("origin_date")
    checks: list[tuple[pl.Expr, str]] = [(origin.is_null(), f"no {outcome.origin} date")]
    if outcome.plan_level:
        checks.append((~pl.col("_has_episode"), "CP plan's episode not found in episodes"))
    if outcome.follow_up == "npd":
        checks.append((~pl.col("_npd_linked"), "not linked to NPD"))
    if outcome.event == "entered_care" and cla_given:
        checks.append((pl.col("_in_care_at_origin"), "looked after at origin"))
    checks += [
        (pl.col("death_date") < origin, "died before origin"),
        (pl.col("_birthday_18") <= origin, "aged 18 or over at origin"),
    ]
    checks.append((pl.col("closure_date") < pl.col("referral_date"), "closure before referral"))
    if "closed_without_event" in outcome.competing and outcome.origin in PLAN_ORIGINS:
        checks.append((pl.col("closure_date") < origin, "closure before origin"))
    checks += [
        (pl.col("_t_event") < origin, "outcome before origin"),
    ]
    if "data_end" in outcome.censor:
        checks.append((pl.col("_t_data_end") < origin, "origin after data end"))
    checks.append((pl.col("end_date").is_null(), "no follow-up end date"))
    if outcome.event == "first_cpp_start" and prior_plans == "exclude":
        checks.append((pl.col("prior_cpp_at_start"), EXCLUDED_PRIOR_CPP))
    elif outcome.event == "first_cpp_start" and prior_plans == "exclude_any":
        checks.append((pl.col("n_prior_cpp") >= 1, EXCLUDED_PRIOR_CPP))
    if analysis_start is not None:
        start = pl.lit(analysis_start, dtype=pl.Date)
        checks.append((pl.col("end_date") < start, "follow-up ended before analysis start"))
    expr = pl.when(checks[0][0].fill_null(False)).then(pl.lit(checks[0][1]))
    for cond, reason in checks[1:]:
        expr = expr.when(cond.fill_null(False)).then(pl.lit(reason))
    return expr.otherwise(pl.lit(None, dtype=pl.String))
