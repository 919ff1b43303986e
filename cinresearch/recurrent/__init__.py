"""Re-referral as a recurrent event: every referral of a child, not only the first re-referral.

:func:`referral_history` turns the ``episodes`` table into counting-process rows, one child
(in one LA) followed from their first referral; :func:`mean_cumulative` estimates the mean
number of re-referrals per child by each day of follow-up; :func:`andersen_gill` and
:func:`pwp_gap` fit the two usual regression models for recurrent events; and
:func:`plot_mean_cumulative` draws the mean cumulative function by group. The method, the
conventions and the R cross-check are written up in ``docs/recurrent.md``.

Conventions of the counting-process frame (``referral_history`` makes it; the estimators accept
any frame with these columns):

* One *subject* per child and LA (``subject_id``). Time is in whole days since the subject's
  first referral (time 0). Row ``k`` (``enum = k``) covers ``(tstart, tstop]``: the subject is
  at risk of its ``k``-th re-referral at every day ``t`` with ``tstart < t <= tstop``.
  ``event = 1`` when a referral falls on ``tstop``. ``gap = tstop - tstart``: the days since
  the previous referral (PWP gap time).
* ``terminal = 1`` on the subject's last row when follow-up ended with a *terminal* event at
  ``tstop`` (death or the 18th birthday: the child can never be referred again as a child);
  otherwise the last row is *censored* (end of data, leaving the LA). ``end_reason`` says which.
* Rows have ``tstop > tstart >= 0`` and do not overlap within a subject.
"""

from __future__ import annotations

from cinresearch.recurrent.conventions import (
    CURVE_COLUMNS,
    END_DATA_END,
    END_DIED,
    END_LEFT_LA,
    END_REFERRAL,
    END_TURNED_18,
    HISTORY_COLUMNS,
    METHODS,
)
from cinresearch.recurrent.figures import (
    plot_mean_cumulative,
)
from cinresearch.recurrent.history import (
    ReferralHistory,
    reconciliation_tables,
    referral_history,
)
from cinresearch.recurrent.mean_cumulative import (
    mean_cumulative,
    mean_cumulative_table,
)
from cinresearch.recurrent.models import (
    andersen_gill,
    andersen_gill_fit,
    pwp_gap,
    pwp_gap_fit,
)

__all__ = [
    "CURVE_COLUMNS",
    "END_DATA_END",
    "END_DIED",
    "END_LEFT_LA",
    "END_REFERRAL",
    "END_TURNED_18",
    "HISTORY_COLUMNS",
    "METHODS",
    "ReferralHistory",
    "andersen_gill",
    "andersen_gill_fit",
    "mean_cumulative",
    "mean_cumulative_table",
    "plot_mean_cumulative",
    "pwp_gap",
    "pwp_gap_fit",
    "reconciliation_tables",
    "referral_history",
]
