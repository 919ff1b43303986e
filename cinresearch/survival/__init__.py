"""Survival analysis for CIN journeys, with tidy polars results.

Estimators here are exact and deterministic with tied integer-day durations: Kaplan–Meier and
Aalen–Johansen are computed directly from tied event counts (no jittering), and the models
(Cox by our own Newton–Raphson in :mod:`cinresearch.survival.coxph`, discrete-time logit via
statsmodels) are fitted on pandas/numpy built inside this package only.

One concern per module (as lifelines keeps one fitter per file):

* :mod:`~cinresearch.survival.inputs` — checking and normalising the input columns;
  :mod:`~cinresearch.survival.risk_sets` — risk-set and event counts at given times.
* :mod:`~cinresearch.survival.nonparametric` — Kaplan–Meier, Aalen–Johansen, median times,
  masking of small risk sets.
* :mod:`~cinresearch.survival.hypothesis_tests` — log-rank and Gray's test.
* :mod:`~cinresearch.survival.design` — design matrices and coefficient tables for models;
  :mod:`~cinresearch.survival.cox_regression` — Cox models (all-cause and cause-specific) over
  the engine in :mod:`~cinresearch.survival.coxph`; :mod:`~cinresearch.survival.discrete_time`
  — the discrete-time logit.

Conventions (apply to every function)
-------------------------------------
* ``duration``: time from the origin (e.g. referral date) to the event or censoring, in days,
  ``>= 0``. ``event`` is 0 (censored) / 1 (event). ``event_type`` is 0 (censored) or a cause
  code 1, 2, …; for a cause of interest every other cause is a *competing* event.
* Risk set: a subject is at risk at time ``t`` when ``entry < t <= duration``. With no ``entry``
  column, or ``entry`` equal to 0 (or null), the subject is observed from the origin and *is* at
  risk at ``t = 0`` — so an event on the origin day (``duration == 0``) counts at ``t = 0``.
  ``entry > 0`` is delayed entry (left truncation): at risk only for times strictly after it.
  Rows with ``entry > duration`` are an error; rows with ``0 < entry == duration`` are never at
  risk and are excluded with a warning that gives their number.
* Curve rows: one row per group at ``t = 0`` and at every distinct observed duration (event or
  censoring) in the group. ``at_risk`` is the number at risk just before ``t`` (the risk set at
  ``t``), ``events`` the number of events at ``t`` (of the cause of interest for cumulative
  incidence), ``censored`` the number censored at ``t``. ``estimate`` is the value *at* ``t``
  (right-continuous step function, after the events at ``t``). With ``times=[...]`` the step
  function is evaluated at those times instead; a time beyond the group's last observed duration
  gives a null estimate unless the curve has already reached its final value (survival 0).
* Groups: the ``group`` column holds the group level as a string ("All" when ``group=None``,
  "Missing" for a null level); rows follow the level order (enum order for ``pl.Enum``, else
  sorted values).
* Confidence intervals (pointwise, level ``1 - alpha``): Kaplan–Meier uses Greenwood's variance
  with the log(-log) transform, ``S ** exp(±z·se/(S·|log S|))`` — the "exponential Greenwood"
  interval, identical to lifelines' KaplanMeierFitter and to the ``cloglog`` transform that
  statsmodels' ``SurvfuncRight.quantile_ci`` uses. Aalen–Johansen uses the delta-method
  (Greenwood-type) variance of Marubini & Valsecchi (1995), as in Stata's ``stcompet`` and
  statsmodels' ``CumIncidenceRight``, with the same log(-log) transform applied to ``F``,
  ``F ** exp(±z·se/(F·|log F|))``, which keeps the interval inside [0, 1].
* Categorical covariates (string, categorical, enum) are dummy-coded against a reference level:
  by default the most frequent level (ties broken by enum order, else sorted order); override
  with ``reference={"age_band": "5-9"}``. Terms are named ``column[level]``; booleans become
  0/1 named ``column``; numeric columns pass through. Rows with a null in any model column are
  dropped with a warning (complete-case analysis).
"""

from cinresearch.survival.cox_regression import (
    CoxResult,
    cause_specific_cox,
    cause_specific_cox_fit,
    cox,
    cox_fit,
)
from cinresearch.survival.coxph import CoxEngineResult, fit_cox
from cinresearch.survival.discrete_time import discrete_time_logit
from cinresearch.survival.hypothesis_tests import gray_test, logrank
from cinresearch.survival.inputs import ALL_GROUP, MISSING_GROUP
from cinresearch.survival.nonparametric import (
    cumulative_incidence,
    kaplan_meier,
    median_times,
    summary,
    suppress_small_risk_sets,
)

__all__ = [
    "ALL_GROUP",
    "MISSING_GROUP",
    "CoxEngineResult",
    "CoxResult",
    "cause_specific_cox",
    "cause_specific_cox_fit",
    "cox",
    "cox_fit",
    "cumulative_incidence",
    "discrete_time_logit",
    "fit_cox",
    "gray_test",
    "kaplan_meier",
    "logrank",
    "median_times",
    "summary",
    "suppress_small_risk_sets",
]
