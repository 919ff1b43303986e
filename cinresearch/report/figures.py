"""Figures in a report: shown as PNG with alternative text, and never showing what a table
would suppress.

Style — palette, fonts, sizes, chart builders, legends, percentage ticks — has one home,
:mod:`cinresearch.plots`; this module only sets that style up for a notebook (:func:`setup`),
masks values before they are drawn (:func:`mask_small_counts`, which asks
:func:`cinresearch.disclosure.primary_suppression` which counts are confidential), and puts a
figure on the page (:func:`show_figure`, independent of the matplotlib backend so a report
renders the same under papermill's Agg backend and in Jupyter).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import polars as pl

from cinresearch import disclosure, plots

__all__ = ["figure_png", "mask_small_counts", "setup", "show_figure"]

#: Display width of figures in the HTML report, in pixels per inch of figure width.
_PIXELS_PER_INCH = 110

#: Resolution of the embedded PNGs (dots per inch).
_FIGURE_DPI = 160


def setup() -> None:
    """The house style (:func:`cinresearch.plots.apply_house_style`) for a notebook's figures.

    Called once at the top of every notebook. No warning is filtered: anything a notebook
    writes to stderr reaches the output, where the report tests treat it as a failure.
    """
    plots.apply_house_style()


def mask_small_counts(
    frame: pl.DataFrame, values: Sequence[str], count_column: str, threshold: int = 5
) -> pl.DataFrame:
    """Null the ``values`` columns where ``count_column`` is confidential (1..``threshold``),
    before plotting, so a chart cannot show what a table would suppress."""
    small = disclosure.primary_suppression(count_column, threshold)
    return frame.with_columns(
        pl.when(small).then(None).otherwise(pl.col(c)).alias(c) for c in values
    )


def figure_png(fig: Any, dpi: int = _FIGURE_DPI) -> bytes:
    """A matplotlib figure as PNG bytes (tight bounding box)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def _figure_title(fig: Any) -> str:
    suptitle = getattr(fig, "_suptitle", None)
    if suptitle is not None and suptitle.get_text():
        return suptitle.get_text()
    for ax in fig.axes:
        if ax.get_title():
            return ax.get_title()
    return "Figure"


def show_figure(fig: Any, alt: str | None = None) -> None:
    """Display a figure as a PNG sized for a report page, with alternative text (default:
    the figure's title)."""
    from IPython.display import Image, display  # only in a notebook kernel

    width = int(fig.get_figwidth() * _PIXELS_PER_INCH)
    text = alt or _figure_title(fig)
    display(Image(data=figure_png(fig), format="png", width=width, alt=text))
