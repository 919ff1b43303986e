"""The CIN pathway as a multi-state model: stages reached over time since referral.

One *subject* is one CIN episode (``episode_id``; ``child_id`` is the cluster for variances).
Its clock starts on the referral date (day 0) and its **state** is the furthest stage of the
pathway the episode has reached and not yet left by closing:

=================  ==========================================================  ================
state              entered on                                                  episodes column
=================  ==========================================================  ================
referred           the referral date (every episode starts here)               referral_date
assessment         the first assessment start                                  first_assessment_start
s47                the first section 47 enquiry start                          first_s47_start
icpc               the first initial child protection conference               first_icpc_date
cpp                the first child protection plan start                       first_cpp_start
pre_proceedings    the first pre-proceedings (PLO) start (2025-26 returns on)  first_pp_start
court              the first application to court (2025-26 returns on)        first_court_application_date
care               the first entry to care during the episode (SSDA903)        entered_care_date
closed             the closure date (absorbing)                                closure_date
=================  ==========================================================  ================

**Allowed transitions** (:func:`allowed_transitions`): from each open state to any state further
down the table, and to ``closed``. The model is progressive: a stage is entered once, a later
date of an earlier stage (a second assessment, an enquiry during a plan, a plan after entry to
care) is not a move, and a child whose plan ends stays in ``cpp`` until the episode closes or
reaches a further stage. Stages can be skipped (a plan with no ICPC recorded moves ``s47`` →
``cpp``). ``care`` is ranked above ``court``: an application to court after the child became
looked after (accommodated first) is not shown as a move.

**Same-day events.** Time is in whole days, and a subject makes at most one move a day: when
several stages are reached on the same day the subject moves to the furthest of them (the
order of the table, which is :data:`cinresearch.journeys.EVENT_ORDER`'s order for the same
day) and the stages passed through that day are not states it occupies. A closure on the day
of another stage wins (closure is the day's last event). Activity on the referral day is a
move at ``t = 0``.

**Rows** (:func:`pathway_frame`) are counting-process intervals ``(tstart, tstop]`` in days
since referral: the episode is in ``from_state`` for every day ``tstart + 1 .. tstop`` and moves
to ``to_state`` on day ``tstop`` (``to_state`` null: censored at the end of the row). An
episode followed from its referral starts at ``tstart = -1`` (the day before the referral), so
it is at risk on the referral day itself and a move on day 0 counts, as in the survival
conventions of :mod:`cinresearch.survival` (an event on the origin day has duration 0).

**Left truncation.** With ``analysis_start``, an episode referred earlier and still open on
that day enters late: its first row starts at ``tstart = L - 1`` (``L`` = days from its
referral to ``analysis_start``) in the state it had reached by day ``L - 1``; moves before it
are not observed as moves. Episodes closed, or out of follow-up, before ``analysis_start``
were never at risk and are excluded (with their reason). **Censoring**: at 31 March of the
episode's last return (``data_end``), or the ``data_end`` argument when earlier; activity
dated after the end of follow-up, or before the referral, is not used (the episodes table
already sets S47, ICPC and plan dates before the referral aside).

**Estimators.**

* :func:`state_occupation` — the Aalen–Johansen estimator for a general multi-state process
  with left truncation: ``p(t) = p0 · Π_{s <= t} (I + dA(s))``, the product over the days
  with at least one move of the matrix of transition proportions ``d_jk(s) / n_j(s)``
  (``n_j(s)``: rows in state ``j`` with ``tstart < s <= tstop``). ``p0`` is the distribution of
  states among the rows at risk at the first move (all ``referred`` when the episodes are
  followed from their referral). Standard errors are the infinitesimal-jackknife ones of R's
  ``survfit(Surv(tstart, tstop, state) ~ 1, id = , istate = , influence = TRUE)`` (influence
  summed by ``id``, or by ``cluster`` — e.g. child — when given); pointwise limits use the
  log(-log) transform (R ``conf.type = "log-log"``), as :mod:`cinresearch.survival` does for
  cumulative incidence.
* :func:`transition_hazards` — Cox proportional-hazards models (Efron ties,
  :func:`cinresearch.coxph.fit_cox`) for each transition, or for a named group of them (e.g.
  every state before a plan → ``cpp``), with robust standard errors clustered on the child;
  ``shared=True`` fits one set of coefficients with a baseline hazard per transition
  (R ``coxph(Surv(tstart, tstop, event) ~ x + strata(trans), cluster = child)``).

Checked against R ``survival`` 3.5-3 to 1e-6 (``tests/fixtures/multistate/r``). Method and
limits: ``docs/multistate.md``.
"""

from __future__ import annotations

from cinresearch.multistate.figures import plot_state_occupation
from cinresearch.multistate.hazards import transition_hazards
from cinresearch.multistate.occupation import state_occupation
from cinresearch.multistate.pathway import Pathway, build_pathway, pathway_frame
from cinresearch.multistate.states import (
    ABSORBING_STATE,
    DEFAULT_COVARIATES,
    EXCLUDED_AFTER_DATA_END,
    EXCLUDED_CLOSED_BEFORE_REFERRAL,
    EXCLUDED_CLOSED_BEFORE_START,
    EXCLUDED_ENDED_BEFORE_START,
    EXCLUDED_NFA,
    EXCLUDED_NO_REFERRAL,
    INITIAL_STATE,
    STAGE_COLUMNS,
    STATE_COLOURS,
    STATE_LABELS,
    STATES,
    allowed_transitions,
)

__all__ = [
    "DEFAULT_COVARIATES",
    "EXCLUDED_AFTER_DATA_END",
    "EXCLUDED_CLOSED_BEFORE_REFERRAL",
    "EXCLUDED_CLOSED_BEFORE_START",
    "EXCLUDED_ENDED_BEFORE_START",
    "EXCLUDED_NFA",
    "EXCLUDED_NO_REFERRAL",
    "ABSORBING_STATE",
    "INITIAL_STATE",
    "STAGE_COLUMNS",
    "STATES",
    "STATE_COLOURS",
    "STATE_LABELS",
    "Pathway",
    "allowed_transitions",
    "build_pathway",
    "pathway_frame",
    "plot_state_occupation",
    "state_occupation",
    "transition_hazards",
]
