"""Cohort definitions and survival frames built from the derived ``episodes`` table.

A *cohort* selects subjects, either CIN episodes or child protection plans, by the date of
an origin (referral, closure, CPP start or end) in a window of census years. An *outcome* sets
where the clock starts, the event that stops it, the events that compete with it and what
censors it. :func:`survival_frame` turns both into one row per subject:
``origin_date, end_date, duration, entry, event, event_type, end_reason`` plus covariates.
:mod:`cinresearch.survival` then fits Kaplan–Meier, Aalen–Johansen and Cox models on it.

Conventions (each one can be changed by an argument):

* Census year ``Y`` runs from 1 April ``Y-1`` to 31 March ``Y``. Both ends are included.
* ``duration = end_date - origin_date`` in whole days. An event on the origin day has
  duration 0 and is kept.
* ``event_type``: 0 censored, 1 outcome, 2 competing event. ``event`` is 1 when the outcome
  happened, else 0.
* When two things happen on the same day, the first in this list wins: outcome, competing
  (death first, then closure), censoring (leaving the LA, then the 18th birthday, then the
  end of data).
* End of data follows each record's own return. ``follow_up: episode`` uses 31 March of the
  episode's last return (the ``data_end`` column). ``follow_up: la`` uses the LA's last
  return, for outcomes that can appear in a later episode. ``follow_up: npd`` uses 31 August
  of the child's last NPD academic year. The ``data_end`` argument can bring any of these
  earlier.
* The 18th birthday comes from ``birth_date``, or ``expected_birth_date`` for an unborn
  child. A 29 February birthday falls on 1 March in non-leap years.
* Left truncation: when ``analysis_start`` is later than a subject's origin, ``entry`` holds
  the days from the origin to ``analysis_start``. Otherwise ``entry`` is 0. A subject whose
  follow-up ends before ``analysis_start`` was never at risk and is excluded, with a reason.
* Prior plans. Plans that ended before an LA's first return are never sent, so a child's
  history is pieced together from three sources: plans seen in any return (``cp_plans``
  when given, else the episodes' first plans), plans dated before the follow-up start, and
  ``NumberOfPreviousCPP`` (``previous_cpps``) on a later plan. ``n_prior_cpp`` is the number
  of plans of this child in this LA known to have started before the subject's follow-up
  start (the origin; ``analysis_start`` for a late entrant; the plan's own start for plan
  subjects): the larger of the plans seen before it and, over the child's plans starting on
  or after it, ``previous_cpps`` minus the plans seen in between. ``prior_cpp`` is
  ``n_prior_cpp >= 1`` or ``prior_cpp_seen`` (a plan seen before the origin, or before the
  plan itself for plan subjects).
* ``prior_cpp_at_start``: a plan of the child in this LA seen in the data and dated before
  the follow-up start — known at that time, no look-ahead.
* First-plan analyses (event ``first_cpp_start``) exclude subjects with
  ``prior_cpp_at_start`` by default (``prior_plans="exclude"``): they are not at risk of a
  *first* plan. The exclusion has its own reason in ``excluded`` and the reconciliation, so
  reports can say how many. A plan that ended before the first return is only known through
  ``previous_cpps`` on a *later* plan; excluding on that (``prior_plans="exclude_any"``)
  removes only children who went on to a plan, i.e. selects on the outcome, which biases
  hazard ratios (seen on the planted-effects data: under-1 HR 2.77 against a planted 2.0),
  so it is a sensitivity option, not the default. ``prior_plans="keep"`` keeps everyone.
* Closure with reason RC5 (transferred to another LA) censors as "left LA" for "cpp" and
  "care" instead of competing (``censor_closure_reasons`` in cohorts.yaml). A closure with
  RC2 is labelled "competing: died" even without a death date.
* No row is dropped silently. Rows outside the cohort are counted by criterion. Cohort rows
  that cannot be analysed (missing dates, outcome before origin, ...) go to the ``excluded``
  frame with a reason. :func:`build_survival_frame` returns both, plus a reconciliation table.

Modules: :mod:`~cinresearch.cohorts.definitions` (cohorts.yaml and its vocabulary),
:mod:`~cinresearch.cohorts.cohort` and :mod:`~cinresearch.cohorts.outcome` (the two
definitions), :mod:`~cinresearch.cohorts.covariates` (age, age band, referral-source group),
:mod:`~cinresearch.cohorts.inputs` (episodes, plans, subjects),
:mod:`~cinresearch.cohorts.linked_events` (leaving the LA, entering care, NPD exclusions),
:mod:`~cinresearch.cohorts.prior_plans` (prior CP plans), :mod:`~cinresearch.cohorts.follow_up`
(end of follow-up, exclusion reasons) and :mod:`~cinresearch.cohorts.frame` (the survival
frame and its reconciliation).
"""

from cinresearch.codes import AGE_BANDS
from cinresearch.cohorts.cohort import Cohort, define_cohort, list_cohorts
from cinresearch.cohorts.covariates import (
    AGE_BAND_DTYPE,
    age_band_expr,
    age_expr,
    birthday_expr,
    referral_source_group_expr,
)
from cinresearch.cohorts.definitions import (
    CENSOR_KINDS,
    COHORTS_YAML,
    COMPETING_KINDS,
    EVENT_SOURCES,
    FOLLOW_UPS,
    ORIGINS,
    PLAN_ORIGINS,
    census_year_window,
    load_definitions,
)
from cinresearch.cohorts.follow_up import (
    CENSORED,
    COMPETING,
    END_BIRTHDAY_18,
    END_DATA_END,
    END_DIED,
    END_LEFT_LA,
    END_LEFT_NPD,
    END_OUTCOME,
    OUTCOME,
)
from cinresearch.cohorts.frame import (
    EXCLUDED_COLUMNS,
    OUTPUT_COLUMNS,
    SurvivalFrame,
    build_survival_frame,
    survival_frame,
)
from cinresearch.cohorts.inputs import Frame
from cinresearch.cohorts.outcome import Outcome, define_outcome, list_outcomes
from cinresearch.cohorts.prior_plans import EXCLUDED_PRIOR_CPP, PRIOR_PLANS

__all__ = [
    "AGE_BANDS",
    "AGE_BAND_DTYPE",
    "CENSORED",
    "CENSOR_KINDS",
    "COHORTS_YAML",
    "COMPETING",
    "COMPETING_KINDS",
    "END_BIRTHDAY_18",
    "END_DATA_END",
    "END_DIED",
    "END_LEFT_LA",
    "END_LEFT_NPD",
    "END_OUTCOME",
    "EVENT_SOURCES",
    "EXCLUDED_COLUMNS",
    "EXCLUDED_PRIOR_CPP",
    "FOLLOW_UPS",
    "ORIGINS",
    "OUTCOME",
    "OUTPUT_COLUMNS",
    "PLAN_ORIGINS",
    "PRIOR_PLANS",
    "Cohort",
    "Frame",
    "Outcome",
    "SurvivalFrame",
    "age_band_expr",
    "age_expr",
    "birthday_expr",
    "build_survival_frame",
    "census_year_window",
    "define_cohort",
    "define_outcome",
    "list_cohorts",
    "list_outcomes",
    "load_definitions",
    "referral_source_group_expr",
    "survival_frame",
]
