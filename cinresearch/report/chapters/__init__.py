"""Helpers of single report chapters, one module per chapter notebook.

* :mod:`.data_quality` — ``01_data_quality``: inputs, reconciliation, load run, completeness;
* :mod:`.journeys` — ``02_journeys``: episodes by year, the referral-to-plan flow, the merge
  audit, sample timelines;
* :mod:`.benchmarking` — ``05_la_benchmarking``: measure labels, neighbours, funnel and trend
  figures;
* :mod:`.outcomes` — ``06_outcomes``: primary need groups, school outcomes.

Chapters 03 (time to a plan) and 04 (re-referrals) need nothing of their own: they use the
shared report modules and :mod:`cinresearch.model_frames`.
"""

from cinresearch.report.chapters import benchmarking, data_quality, journeys, outcomes

__all__ = ["benchmarking", "data_quality", "journeys", "outcomes"]
