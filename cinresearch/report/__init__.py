"""The annual report: the papermill runner and everything the report notebooks share.

Modules, in the order a chapter uses them:

* :mod:`.scope` — parameters checked against the store, census years, geography (``"ENG"`` =
  England), synthetic or real data, the header that says what a chapter covers;
* :mod:`.text` — numbers as words after disclosure control, p-values, estimates, model
  findings in sentences;
* :mod:`.tables` — displayed tables; every suppression decision is asked of
  :mod:`cinresearch.disclosure`;
* :mod:`.figures` — figures on the page; their style lives in :mod:`cinresearch.plots`;
* :mod:`.planted` — the synthetic generator's planted effects, to compare estimates with;
* :mod:`.chapters` — helpers of single chapters, one module per chapter;
* :mod:`.runner` — runs the notebooks with papermill and writes the report folder.

Rows a model can use (and what was left out) are analysis, in :mod:`cinresearch.model_frames`.
Every public name of these modules is importable from this package as well.
"""

from cinresearch.report import chapters
from cinresearch.report.chapters.benchmarking import (
    funnel_figure,
    measure_labels,
    neighbour_list,
    trend_figure,
)
from cinresearch.report.chapters.data_quality import (
    KIND_LABELS,
    element_reconciliation,
    field_completeness,
    inputs_frame,
    load_run_frame,
)
from cinresearch.report.chapters.journeys import (
    FLOW_STAGES,
    audit_la_expr,
    episodes_by_year,
    journey_flow,
    merge_audit_summary,
    sample_journeys,
)
from cinresearch.report.chapters.outcomes import (
    NEED_GROUPS,
    NOT_IN_NEED_CLOSURE_REASONS,
    SCHOOL_GROUPS,
    education_outcomes,
    need_group_expr,
    school_gap_text,
)
from cinresearch.report.figures import figure_png, mask_small_counts, setup, show_figure
from cinresearch.report.planted import (
    SYNTH_EFFECTS_YAML,
    compare_with_planted,
    planted_effects,
    planted_hazard_ratios,
    planted_rereferral_12m,
)
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
from cinresearch.report.scope import (
    ENGLAND,
    age_at_31_march_expr,
    as_store,
    census_year_expr,
    census_years_in_store,
    check_parameters,
    cohort_window,
    demo_key_id,
    for_geography,
    geography_label,
    is_synthetic,
    la_codes_in_store,
    report_header,
    rounding_base_for,
    year_label,
)
from cinresearch.report.tables import (
    IDENTIFIER_COLUMNS,
    RateSpec,
    curve_at,
    curve_table,
    order_age_bands,
    protect_frame,
    reconciliation_tables,
    show_table,
    small_count_expr,
    table_html,
    wide_percentages,
)
from cinresearch.report.text import (
    count_text,
    format_estimate,
    format_p,
    gray_sentence,
    group_phrase,
    is_confidential,
    label_terms,
    left_out_notes,
    median_text,
    p_text,
    pct_text,
    ratio_findings,
    ratio_text,
    show_markdown,
    split_term,
    term_label,
)

__all__ = [
    "ENGLAND",
    "FLOW_STAGES",
    "IDENTIFIER_COLUMNS",
    "KIND_LABELS",
    "LA_NOTEBOOKS",
    "NEED_GROUPS",
    "NOTEBOOK_DIR",
    "NOT_IN_NEED_CLOSURE_REASONS",
    "REPORT_NOTEBOOKS",
    "SCHOOL_GROUPS",
    "SYNTH_EFFECTS_YAML",
    "NotebookRun",
    "RateSpec",
    "ReportError",
    "age_at_31_march_expr",
    "as_store",
    "audit_la_expr",
    "build_report",
    "census_year_expr",
    "census_years_in_store",
    "chapters",
    "check_parameters",
    "cohort_window",
    "compare_with_planted",
    "count_text",
    "curve_at",
    "curve_table",
    "demo_key_id",
    "education_outcomes",
    "element_reconciliation",
    "episodes_by_year",
    "field_completeness",
    "figure_png",
    "for_geography",
    "format_estimate",
    "format_p",
    "funnel_figure",
    "geography_label",
    "gray_sentence",
    "group_phrase",
    "inputs_frame",
    "is_confidential",
    "is_synthetic",
    "journey_flow",
    "la_codes_in_store",
    "label_terms",
    "left_out_notes",
    "load_run_frame",
    "mask_small_counts",
    "measure_labels",
    "median_text",
    "merge_audit_summary",
    "need_group_expr",
    "neighbour_list",
    "notebook_title",
    "order_age_bands",
    "p_text",
    "pct_text",
    "planted_effects",
    "planted_hazard_ratios",
    "planted_rereferral_12m",
    "protect_frame",
    "ratio_findings",
    "ratio_text",
    "reconciliation_tables",
    "report_header",
    "rounding_base_for",
    "run_notebook",
    "sample_journeys",
    "school_gap_text",
    "setup",
    "show_figure",
    "show_markdown",
    "show_table",
    "small_count_expr",
    "split_term",
    "stderr_outputs",
    "table_html",
    "term_label",
    "trend_figure",
    "wide_percentages",
    "write_publication_tables",
    "year_label",
]
