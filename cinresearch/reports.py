"""Compatibility module: the report runner is :mod:`cinresearch.report.runner`.

``cinresearch/reports.py`` moved there (issue 15). Its public names are re-exported so that
``from cinresearch.reports import build_report`` in users' scripts and in work begun on other
branches before the move keeps working; nothing in the package imports this module
(``tests/test_report_layout.py`` checks). The list of report notebooks is
:data:`cinresearch.report.runner.REPORT_NOTEBOOKS`: add a chapter there, not here.
"""

from cinresearch.report.runner import (
    LA_NOTEBOOKS,
    NOTEBOOK_DIR,
    REPORT_NOTEBOOKS,
    NotebookRun,
    ReportError,
    build_report,
    notebook_title,
    run_notebook,
    stderr_outputs,
    write_publication_tables,
)

__all__ = [
    "LA_NOTEBOOKS",
    "NOTEBOOK_DIR",
    "REPORT_NOTEBOOKS",
    "NotebookRun",
    "ReportError",
    "build_report",
    "notebook_title",
    "run_notebook",
    "stderr_outputs",
    "write_publication_tables",
]
