"""The survival frame: one row per subject, with excluded rows and a reconciliation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl

from cinresearch.cohorts.cohort import Cohort, _cohort_criteria, define_cohort
from cinresearch.cohorts.covariates import (
    age_band_expr,
    age_expr,
    birthday_expr,
    referral_source_group_expr,
)
from cinresearch.cohorts.definitions import PLAN_ORIGINS, _as_date
from cinresearch.cohorts.follow_up import OUTCOME, _end_of_followup, _exclusion_reason
from cinresearch.cohorts.inputs import Frame, _prepare_episodes, _prepare_plans, _subjects
from cinresearch.cohorts.linked_events import _add_care, _add_moves, _add_npd
from cinresearch.cohorts.outcome import Outcome, define_outcome
from cinresearch.cohorts.prior_plans import PRIOR_PLANS, _add_prior_cpp

OUTPUT_COLUMNS = (
    "subject_id",
    "episode_id",
    "child_id",
    "la_code",
    "origin_date",
    "end_date",
    "duration",
    "entry",
    "event",
    "event_type",
    "end_reason",
    "age_band",
    "age_at_origin",
    "disabled",
    "sex",
    "ethnicity_group",
    "primary_need",
    "referral_source",
    "prior_cpp",
    "prior_cpp_seen",
    "prior_cpp_at_start",
    "n_prior_cpp",
)


EXCLUDED_COLUMNS = ("subject_id", "episode_id", "child_id", "la_code", "origin_date", "reason")


@dataclass(frozen=True)
class SurvivalFrame:
    """A survival frame with its audit trail.

    ``frame`` has one row per analysable subject. ``excluded`` has the cohort subjects that
    could not be analysed, with a ``reason``. ``reconciliation`` has the counts at each
    stage: subjects in, removed by each cohort criterion, in cohort, excluded by reason, rows
    out and rows by end reason. By construction, subjects = not in cohort + in cohort, and
    in cohort = excluded + rows out.
    """

    frame: pl.DataFrame
    excluded: pl.DataFrame
    reconciliation: pl.DataFrame
    cohort: Cohort
    outcome: Outcome
    analysis_start: date | None


def build_survival_frame(
    episodes: Frame,
    cohort: Cohort | str | Mapping[str, Any] = "referrals_2019_2021",
    outcome: Outcome | str | Mapping[str, Any] | None = None,
    children: Frame | None = None,
    cla: Frame | None = None,
    npd: Frame | None = None,
    data_end: date | str | None = None,
    analysis_start: date | str | None = None,
    *,
    events: Frame | None = None,
    cp_plans: Frame | None = None,
    extra_columns: Sequence[str] = (),
    prior_plans: str = "exclude",
) -> SurvivalFrame:
    """Survival frame for ``cohort`` and ``outcome``, with excluded rows and a reconciliation.

    Pass the whole ``episodes`` table, not a filtered one. The cohort does the selecting,
    and the next referral, the LA's last return and earlier plans are looked up across all
    episodes.

    Arguments:
        episodes: the derived ``episodes`` table (docs/tables.md), eager or lazy.
        cohort: a :class:`Cohort`, a preset name from cohorts.yaml, or a dict.
        outcome: an :class:`Outcome` or its name. Defaults to ``cohort.outcome``, else "cpp".
        children: ``children_longitudinal``. Fills child columns missing from ``episodes``.
        cla: ``cla_episodes`` (raw or merged). For outcome "care" it replaces
            ``entered_care_date`` with the first start of a period of care on or after the
            origin (the journeys definition). Subjects already looked after at origin are
            excluded.
        npd: ``npd_outcomes`` (child × academic_year). Needed for outcome "exclusion".
        data_end: a common last date of follow-up. Each record's own end of data still applies
            when it is earlier.
        analysis_start: subjects with an earlier origin enter late. Defaults to the window
            start for ``include_open`` cohorts, else no truncation.
        events: the ``events`` table. Its ``moved_la`` rows (on the record in the new LA, with
            ``from_la`` in ``attrs``) censor the child's subjects in the LA left, matched by
            ``upn_hash``, as "censored: left LA".
        cp_plans: plan-level CP plans (loaded ``cp_plans``, de-duplicated here, latest return
            wins). Needed for plan outcomes (``next_cpp``). When given, it is also used for
            ``prior_cpp_seen``.
        extra_columns: more subject columns to carry into ``frame``, e.g. "referral_nfa",
            "closure_reason" or "referral_source_code" (the ungrouped code).
        prior_plans: for the first-plan outcome (event ``first_cpp_start``): "exclude"
            (default) moves subjects with ``prior_cpp_at_start`` (a plan seen in the data
            dated before the follow-up start: known then, no look-ahead) to ``excluded``
            with reason "CP plan before follow-up start (not at risk of a first plan)";
            "exclude_any" also excludes those known only from ``previous_cpps`` on a later
            plan (``n_prior_cpp >= 1``) — this selects on the outcome (only children with a
            later plan can be recognised) and biases hazards, so use it only for
            sensitivity analyses; "keep" leaves everyone in, to stratify or adjust on
            ``prior_cpp_at_start``. Other outcomes ignore it.
    """
    if prior_plans not in PRIOR_PLANS:
        raise ValueError(f"prior_plans must be one of {PRIOR_PLANS}, got {prior_plans!r}")
    cohort = define_cohort(cohort)
    outcome = define_outcome(outcome or cohort.outcome or "cpp")
    data_end = _as_date(data_end, "data_end")
    analysis_start = _as_date(analysis_start, "analysis_start")
    if analysis_start is None and cohort.include_open:
        analysis_start = cohort.window_dates[0]
    if outcome.plan_level and cp_plans is None:
        raise ValueError(
            f"outcome {outcome.name!r} has one row per CP plan and needs cp_plans: "
            "episodes only carry the first plan's start, not plan end dates"
        )
    if cohort.origin in PLAN_ORIGINS and not outcome.plan_level:
        raise ValueError(
            f"cohort {cohort.name!r} selects on {cohort.origin}, which needs a plan-level "
            f"outcome; outcome {outcome.name!r} has one row per episode"
        )

    eps = _prepare_episodes(episodes, children, outcome, cla_given=cla is not None)
    plans = _prepare_plans(cp_plans) if cp_plans is not None else None
    subjects = _subjects(eps, plans if outcome.plan_level else None, outcome)

    if outcome.event == "first_cpp_start":
        subjects = subjects.with_columns(_t_event=pl.col("first_cpp_start"))
    elif outcome.event == "next_referral":
        subjects = subjects.with_columns(_t_event=pl.col("next_referral_date"))
    elif outcome.event == "next_cpp_start":
        subjects = subjects.with_columns(_t_event=pl.col("next_cpp_start"))
    elif outcome.event == "entered_care":
        subjects = _add_care(subjects, cla)
    elif outcome.event == "npd_exclusion":
        subjects = _add_npd(subjects, npd)
    subjects = _add_moves(subjects, events, eps)
    subjects = _add_prior_cpp(subjects, eps, plans, outcome, analysis_start)

    birth = pl.coalesce("birth_date", "expected_birth_date")
    subjects = subjects.with_columns(
        _birthday_18=birthday_expr(birth, 18),
        age_band=age_band_expr("origin_date"),
        age_at_origin=pl.when(pl.col("origin_date") >= birth).then(age_expr(birth, "origin_date")),
    )
    candidates, candidate_cols = _end_of_followup(outcome, data_end)
    subjects = subjects.with_columns(candidate_cols).with_columns(
        end_date=pl.min_horizontal([name for name, *_ in candidates])
    )
    event_type = pl.when(pl.lit(False)).then(pl.lit(None, pl.Int8))
    end_reason = pl.when(pl.lit(False)).then(pl.lit(None, pl.String))
    for name, _, etype, reason in candidates:
        hit = pl.col(name) == pl.col("end_date")
        event_type = event_type.when(hit).then(pl.lit(etype, pl.Int8))
        end_reason = end_reason.when(hit).then(reason)
    start_lit = pl.lit(analysis_start, dtype=pl.Date)
    subjects = subjects.with_columns(
        event_type=event_type,
        end_reason=end_reason,
        duration=(pl.col("end_date") - pl.col("origin_date")).dt.total_days(),
        entry=(
            pl.when(pl.col("origin_date") < start_lit)
            .then((start_lit - pl.col("origin_date")).dt.total_days())
            .otherwise(0)
            if analysis_start is not None
            else pl.lit(0, pl.Int64)
        ),
        referral_source_code=pl.col("referral_source"),
        prior_cpp=pl.col("prior_cpp_seen") | (pl.col("n_prior_cpp") >= 1),
    ).with_columns(
        event=(pl.col("event_type") == OUTCOME).cast(pl.Int8),
        referral_source_group=referral_source_group_expr("referral_source"),
    )

    # Cohort membership: the first failing criterion is recorded, so every subject is counted.
    criteria = _cohort_criteria(cohort)
    removed = pl.when(pl.lit(False)).then(pl.lit(None, pl.String))
    for keep, reason in criteria:
        removed = removed.when(~keep.fill_null(False)).then(pl.lit(reason))
    subjects = subjects.with_columns(
        _removed=removed,
        _excluded=_exclusion_reason(
            outcome, analysis_start, cla_given=cla is not None, prior_plans=prior_plans
        ),
    )
    wanted = list(
        dict.fromkeys(
            [
                *(c for c in OUTPUT_COLUMNS if c != "referral_source"),
                "referral_source_group",
                *extra_columns,
                "_removed",
                "_excluded",
            ]
        )
    )
    # One pass: counts of the subjects outside the cohort, and the cohort rows themselves.
    subjects = subjects.select(wanted)
    removed_lf = subjects.group_by("_removed").agg(n=pl.len())
    removed_df, in_cohort = pl.collect_all(
        [removed_lf, subjects.filter(pl.col("_removed").is_null())]
    )
    removed_counts = {reason: n for reason, n in removed_df.iter_rows() if reason is not None}
    n_subjects = int(removed_df["n"].sum())
    excluded = (
        in_cohort.filter(pl.col("_excluded").is_not_null())
        .select(*EXCLUDED_COLUMNS[:-1], reason=pl.col("_excluded"))
        .sort("la_code", "child_id", "origin_date", "subject_id", nulls_last=True)
    )
    frame = (
        in_cohort.filter(pl.col("_excluded").is_null())
        .rename({"referral_source_group": "referral_source"})
        .select(list(dict.fromkeys([*OUTPUT_COLUMNS, *extra_columns])))
        .with_columns(pl.col("duration").cast(pl.Int64), pl.col("entry").cast(pl.Int64))
        .sort("la_code", "child_id", "origin_date", "subject_id")
    )
    reconciliation = _reconcile(
        n_subjects, removed_counts, in_cohort, excluded, frame, criteria, outcome
    )
    return SurvivalFrame(frame, excluded, reconciliation, cohort, outcome, analysis_start)


def _reconcile(
    n_subjects: int,
    removed_counts: dict[str, int],
    in_cohort: pl.DataFrame,
    excluded: pl.DataFrame,
    frame: pl.DataFrame,
    criteria: list[tuple[pl.Expr, str]],
    outcome: Outcome,
) -> pl.DataFrame:
    """Counts in and out at each stage; raises if they do not add up."""
    subject = "CP plans" if outcome.plan_level else "episodes"
    excluded_counts = dict(excluded.get_column("reason").value_counts().iter_rows())
    end_counts = dict(frame.get_column("end_reason").value_counts().iter_rows())
    rows: list[tuple[str, str, int]] = [("input", f"{subject} (subjects)", n_subjects)]
    rows += [("not in cohort", reason, removed_counts.get(reason, 0)) for _, reason in criteria]
    rows.append(("in cohort", subject, in_cohort.height))
    rows += [("excluded", reason, n) for reason, n in sorted(excluded_counts.items())]
    rows.append(("rows out", subject, frame.height))
    rows += [("end reason", reason, n) for reason, n in sorted(end_counts.items())]
    if n_subjects != sum(removed_counts.values()) + in_cohort.height or (
        in_cohort.height != excluded.height + frame.height
    ):  # an internal bug, not a data problem (tests/test_reconciliation_breaks.py)
        raise AssertionError("survival frame reconciliation does not add up")
    return pl.DataFrame(
        rows, schema={"stage": pl.String, "reason": pl.String, "n": pl.Int64}, orient="row"
    )


def survival_frame(
    episodes: Frame,
    cohort: Cohort | str | Mapping[str, Any] = "referrals_2019_2021",
    outcome: Outcome | str | Mapping[str, Any] | None = None,
    children: Frame | None = None,
    cla: Frame | None = None,
    npd: Frame | None = None,
    data_end: date | str | None = None,
    analysis_start: date | str | None = None,
    *,
    events: Frame | None = None,
    cp_plans: Frame | None = None,
    extra_columns: Sequence[str] = (),
    prior_plans: str = "exclude",
) -> pl.DataFrame:
    """One row per subject: origin, end, duration, entry, event, event_type, end_reason and
    covariates. See :func:`build_survival_frame` for the arguments, the excluded rows and
    the reconciliation counts."""
    return build_survival_frame(
        episodes,
        cohort,
        outcome,
        children,
        cla,
        npd,
        data_end,
        analysis_start,
        events=events,
        cp_plans=cp_plans,
        extra_columns=extra_columns,
        prior_plans=prior_plans,
    ).frame
