"""The report's layout: the package and its notebooks import from cinresearch.report (not the
compatibility modules), the compatibility modules still export every name they had, and the
report code has one suppression engine and one figure style."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import polars as pl

from cinresearch import notebook, reports
from cinresearch.report import runner

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cinresearch"
COMPAT = {"cinresearch.notebook", "cinresearch.reports"}

#: Every name ``cinresearch/notebook.py`` exported before the split (its ``__all__``).
OLD_NOTEBOOK_NAMES = [
    "ENGLAND",
    "FLOW_STAGES",
    "IDENTIFIER_COLUMNS",
    "KIND_LABELS",
    "NEED_GROUPS",
    "NOT_IN_NEED_CLOSURE_REASONS",
    "SCHOOL_GROUPS",
    "SYNTH_EFFECTS_YAML",
    "age_at_31_march_expr",
    "audit_la_expr",
    "census_year_expr",
    "census_years_in_store",
    "check_parameters",
    "cohort_window",
    "compare_with_planted",
    "count_text",
    "curve_at",
    "curve_table",
    "demo_key_id",
    "drop_incomplete",
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
    "group_phrase",
    "inputs_frame",
    "is_synthetic",
    "journey_flow",
    "la_codes_in_store",
    "label_terms",
    "legend_outside",
    "load_run_frame",
    "mask_small_counts",
    "measure_labels",
    "median_text",
    "merge_audit_summary",
    "model_frame",
    "need_group_expr",
    "neighbour_list",
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
    "sample_journeys",
    "setup",
    "show_figure",
    "show_markdown",
    "show_table",
    "small_count_expr",
    "sparse_levels",
    "table_html",
    "term_label",
    "tidy_percent_axis",
    "trend_figure",
    "wide_percentages",
    "year_label",
    "gray_tests",
    "gray_sentence",
]


def _imported_modules(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_nothing_in_the_package_or_its_notebooks_uses_the_compatibility_modules():
    users = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in {"notebook.py", "reports.py"} and path.parent == PACKAGE:
            continue
        if _imported_modules(ast.parse(path.read_text(encoding="utf-8"))) & COMPAT:
            users.append(str(path.relative_to(ROOT)))
    for name in runner.REPORT_NOTEBOOKS:
        nb = nbformat.read(runner.NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code" and re.search(
                r"cinresearch(\.| import )(notebook|reports)\b", cell.source
            ):
                users.append(name)
    assert users == []


def test_the_compatibility_modules_export_every_old_name():
    assert [n for n in OLD_NOTEBOOK_NAMES if not hasattr(notebook, n)] == []
    assert set(OLD_NOTEBOOK_NAMES) <= set(notebook.__all__)
    assert reports.build_report is runner.build_report
    assert reports.REPORT_NOTEBOOKS is runner.REPORT_NOTEBOOKS


def test_the_old_model_frame_signature_still_returns_sentences():
    frame = pl.DataFrame({"age_band": ["5-9"] * 6 + [None], "sex": ["M"] * 7, "event": [1] * 7})
    rows, notes = notebook.model_frame(frame, ["age_band", "sex"], threshold=5)
    assert rows.height == 6
    assert notes == ["Fewer than 6 records with a missing characteristic are left out."]


def _source(module: str) -> str:
    return (PACKAGE / module).read_text(encoding="utf-8")


def test_report_code_decides_no_suppression_itself():
    """No threshold comparison in report code: every 'is this confidential' goes to
    cinresearch.disclosure (primary_suppression / table_suppression_flags / protect_cells)."""
    pattern = re.compile(
        r"(<=?|>=?)\s*(threshold|min_at_risk|min_count|T)\b|\b(threshold|min_at_risk)\s*(<=?|>=?)"
    )
    offenders = []
    for path in sorted((PACKAGE / "report").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def _style_settings(tree: ast.AST, in_plots: bool) -> list[int]:
    """Lines that set figure style: rcParams / rc_context, a figsize not taken from FIGSIZE, a
    hex colour string, or (outside cinresearch.plots) a house colour picked by name."""
    lines = []
    for node in ast.walk(tree):
        rc = isinstance(node, ast.Attribute) and node.attr in {"rcParams", "rc_context"}
        size = (
            isinstance(node, ast.keyword)
            and node.arg == "figsize"
            and "FIGSIZE" not in ast.unparse(node.value)
        )
        colour = (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and re.fullmatch(r"#[0-9A-Fa-f]{6}", node.value) is not None
        )
        by_name = (
            not in_plots
            and isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id in {"OKABE_ITO", "PALETTE"}
        )
        if rc or size or colour or by_name:
            lines.append(node.value.lineno if isinstance(node, ast.keyword) else node.lineno)
    return lines


def test_one_home_for_figure_style():
    """Colours, sizes and rcParams are set in cinresearch.plots.style only."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "plots" / "style.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for line in _style_settings(tree, in_plots=path.parent == PACKAGE / "plots"):
            offenders.append(f"{path.relative_to(ROOT)}:{line}")
    assert offenders == []
    # the check finds style set outside the style module
    planted = (
        "import matplotlib as mpl\nmpl.rcParams['a'] = 1\nFigure(figsize=(2, 3))\nc = '#D55E00'\n"
    )
    assert sorted(_style_settings(ast.parse(planted), in_plots=False)) == [2, 3, 4]
