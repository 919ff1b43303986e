"""The states of the CIN pathway, their episode columns, labels and colours, and the allowed moves.

Part of :mod:`cinresearch.multistate`.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from cinresearch.plots.style import PATHWAY_STATE_COLOURS

STATES: tuple[str, ...] = (
    "referred",
    "assessment",
    "s47",
    "icpc",
    "cpp",
    "pre_proceedings",
    "court",
    "care",
    "closed",
)
INITIAL_STATE = "referred"
ABSORBING_STATE = "closed"

#: Column of the ``episodes`` table giving the date each state is entered.
STAGE_COLUMNS: dict[str, str] = {
    "referred": "referral_date",
    "assessment": "first_assessment_start",
    "s47": "first_s47_start",
    "icpc": "first_icpc_date",
    "cpp": "first_cpp_start",
    "pre_proceedings": "first_pp_start",
    "court": "first_court_application_date",
    "care": "entered_care_date",
    "closed": "closure_date",
}

#: Labels a practitioner reads (figures and tables).
STATE_LABELS: dict[str, str] = {
    "referred": "Referral, no assessment yet",
    "assessment": "Assessment",
    "s47": "Section 47 enquiry",
    "icpc": "Initial CP conference",
    "cpp": "Child protection plan",
    "pre_proceedings": "Pre-proceedings",
    "court": "Court application",
    "care": "Looked after",
    "closed": "Closed",
}

#: Colours of the states in figures (defined with the house style in :mod:`cinresearch.plots`).
STATE_COLOURS: dict[str, str] = PATHWAY_STATE_COLOURS

#: Episode characteristics carried onto the rows when ``covariates`` is not given (those present).
DEFAULT_COVARIATES: tuple[str, ...] = (
    "age_band",
    "disabled",
    "disabled_at_referral",
    "sex",
    "ethnicity_group",
    "referral_source",
    "primary_need",
)

EXCLUDED_NO_REFERRAL = "no referral date"
EXCLUDED_NFA = "referral with no further action"
EXCLUDED_CLOSED_BEFORE_REFERRAL = "closure before referral"
EXCLUDED_AFTER_DATA_END = "referral after the end of data"
EXCLUDED_CLOSED_BEFORE_START = "closed before analysis start"
EXCLUDED_ENDED_BEFORE_START = "follow-up ended before analysis start"

_SE_BUDGET = 100_000_000  # rows x output times above which times=None gives no SEs


Frame = pl.DataFrame | pl.LazyFrame


# --------------------------------------------------------------------------------------------
# states and transitions
# --------------------------------------------------------------------------------------------


def _check_states(states: Sequence[str]) -> tuple[str, ...]:
    states = tuple(states)
    unknown = [s for s in states if s not in STATES]
    if unknown:
        raise ValueError(f"unknown state(s) {unknown}; the states are {list(STATES)}")
    if INITIAL_STATE not in states or ABSORBING_STATE not in states:
        raise ValueError(f"states must include {INITIAL_STATE!r} and {ABSORBING_STATE!r}")
    if len(set(states)) != len(states):
        raise ValueError("states are listed more than once")
    return tuple(s for s in STATES if s in states)


def allowed_transitions(states: Sequence[str] = STATES) -> pl.DataFrame:
    """Every transition the pathway model allows: ``from_state, to_state``.

    From each open state to every state further down :data:`STATES`, and to ``closed``
    (which is further down from every state). ``states`` restricts the model to some stages.
    """
    order = _check_states(states)
    pairs = [(a, b) for i, a in enumerate(order[:-1]) for b in order[i + 1 :]]
    return pl.DataFrame(
        {"from_state": [a for a, _ in pairs], "to_state": [b for _, b in pairs]},
        schema={"from_state": pl.Enum(order), "to_state": pl.Enum(order)},
    )
