"""Compatibility module: the report helpers that lived here are in :mod:`cinresearch.report`.

``cinresearch/notebook.py`` was split (issue 15) into :mod:`cinresearch.report.scope`,
:mod:`~cinresearch.report.text`, :mod:`~cinresearch.report.tables`,
:mod:`~cinresearch.report.figures`, :mod:`~cinresearch.report.planted`, one module per chapter
under :mod:`cinresearch.report.chapters`, :mod:`cinresearch.model_frames` (rows a model can use)
and :mod:`cinresearch.plots` (figure style). Every name it exported is re-exported here, so
code written as ``from cinresearch import notebook as nb`` — users' own notebooks, and work
begun on other branches before the split — keeps running unchanged. Nothing in the package or
its notebooks imports this module (``tests/test_report_layout.py`` checks); new code imports
from the modules above. Only :func:`model_frame` is more than a re-export: it keeps the old
``(rows, sentences)`` result.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from cinresearch import model_frames
from cinresearch.model_frames import UNBORN, drop_incomplete, gray_tests, sparse_levels
from cinresearch.plots import legend_outside, tidy_percent_axis
from cinresearch.report import *  # noqa: F403 - re-export every public name of the package
from cinresearch.report import __all__ as _REPORT_NAMES
from cinresearch.report.text import left_out_notes


def model_frame(
    frame: pl.DataFrame,
    covariates: Sequence[str],
    *,
    event: str = "event",
    min_events: int = 5,
    sparse_column: str | None = "age_band",
    known_sex: bool = True,
    sex_reference: str = "M",
    threshold: int = 5,
    rounding_base: int | None = None,
) -> tuple[pl.DataFrame, list[str]]:
    """The old signature: :func:`cinresearch.model_frames.model_frame`'s rows, with what it
    left out in sentences (:func:`cinresearch.report.text.left_out_notes`)."""
    rows, left_out = model_frames.model_frame(
        frame,
        covariates,
        event=event,
        min_events=min_events,
        sparse_column=sparse_column,
        known_sex=known_sex,
        sex_reference=sex_reference,
    )
    return rows, left_out_notes(left_out, threshold, rounding_base)


__all__ = [
    *_REPORT_NAMES,
    "UNBORN",
    "drop_incomplete",
    "gray_tests",
    "legend_outside",
    "model_frame",
    "sparse_levels",
    "tidy_percent_axis",
]
