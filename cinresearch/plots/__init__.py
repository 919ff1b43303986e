"""One house style for report figures: survival curves with at-risk tables, forest, funnel and
swimlane plots, and small indicator charts.

Every function returns a ``matplotlib.figure.Figure`` built without pyplot (so it is safe under
the Agg backend, does not leak figures, and displays once in Jupyter). Pass ``ax=`` to draw into
an existing axes instead. The house style is applied inside each function via ``rc_context``;
:func:`apply_house_style` sets it globally for a notebook's own plots.

Modules: :mod:`.style` (palette, sizes, rcParams and the helpers every chart uses — the one
home of style), :mod:`.curves` (:func:`plot_survival`), :mod:`.forest`, :mod:`.funnel`,
:mod:`.timeline` (:func:`timeline_swimlane`) and :mod:`.charts` (line, bar, small multiples).

Disclosure: survival curves are drawn only where at least ``min_at_risk`` (default 10) are at
risk, at-risk counts below that show as "<10", and swimlanes label children "Child 1, Child 2, …"
— never by identifier.
"""

from cinresearch.plots.charts import bar_chart, line_chart, small_multiples
from cinresearch.plots.curves import plot_survival
from cinresearch.plots.forest import forest_plot
from cinresearch.plots.funnel import funnel_plot
from cinresearch.plots.style import (
    FIGSIZE,
    GREY,
    HOUSE_STYLE,
    LIGHT_GREY,
    OKABE_ITO,
    PALETTE,
    apply_house_style,
    colours,
    figure_and_axes,
    format_count,
    hide_small_risk_sets,
    house_style,
    legend_outside,
    new_figure,
    percent_ticks,
    style_axes,
    tidy_percent_axis,
    wrap_title,
)
from cinresearch.plots.timeline import timeline_swimlane

# The helper names of the single-module plots.py, kept importable for code written against it.
_colours = colours
_figure_and_axes = figure_and_axes
_new_figure = new_figure
_style_axes = style_axes

__all__ = [
    "FIGSIZE",
    "GREY",
    "HOUSE_STYLE",
    "LIGHT_GREY",
    "OKABE_ITO",
    "PALETTE",
    "apply_house_style",
    "bar_chart",
    "colours",
    "figure_and_axes",
    "forest_plot",
    "format_count",
    "funnel_plot",
    "hide_small_risk_sets",
    "house_style",
    "legend_outside",
    "line_chart",
    "new_figure",
    "percent_ticks",
    "plot_survival",
    "small_multiples",
    "style_axes",
    "tidy_percent_axis",
    "timeline_swimlane",
    "wrap_title",
]
