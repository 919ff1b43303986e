"""The house style of every figure: palette, fonts, sizes, and the small helpers each chart
builder uses to start a figure, colour its series, place its legend and label its axes.

One home for style: the chart builders (:mod:`.curves`, :mod:`.forest`, :mod:`.funnel`,
:mod:`.timeline`, :mod:`.charts`) and the report (:mod:`cinresearch.report.figures`) take
colours, sizes and rcParams from here and nowhere else.

Disclosure: :func:`hide_small_risk_sets` hides a curve where fewer than 10 are at risk and
:func:`format_count` writes such an at-risk count as "<10"; whether a count is too small to show
is asked of :func:`cinresearch.disclosure.primary_suppression` in both.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import matplotlib as mpl
import polars as pl
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from cinresearch import disclosure

__all__ = [
    "FIGSIZE",
    "GREY",
    "HOUSE_STYLE",
    "LIGHT_GREY",
    "PATHWAY_STATE_COLOURS",
    "OKABE_ITO",
    "PALETTE",
    "apply_house_style",
    "colours",
    "figure_and_axes",
    "format_count",
    "hide_small_risk_sets",
    "house_style",
    "legend_outside",
    "new_figure",
    "percent_ticks",
    "style_axes",
    "tidy_percent_axis",
    "wrap_title",
]

OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
#: Series colour order: strong colours first, yellow (weak on white) last.
PALETTE: list[str] = [
    OKABE_ITO[k]
    for k in (
        "blue",
        "vermillion",
        "bluish_green",
        "reddish_purple",
        "orange",
        "sky_blue",
        "black",
        "yellow",
    )
]
GREY = "#6E6E6E"
LIGHT_GREY = "#D9D9D9"

#: Colours of the CIN pathway states (:mod:`cinresearch.multistate`): the Okabe–Ito palette,
#: "closed" in light grey, behind the rest.
PATHWAY_STATE_COLOURS: dict[str, str] = {
    "referred": OKABE_ITO["sky_blue"],
    "assessment": OKABE_ITO["blue"],
    "s47": OKABE_ITO["bluish_green"],
    "icpc": OKABE_ITO["yellow"],
    "cpp": OKABE_ITO["orange"],
    "pre_proceedings": OKABE_ITO["reddish_purple"],
    "court": OKABE_ITO["black"],
    "care": OKABE_ITO["vermillion"],
    "closed": LIGHT_GREY,
}

#: Figure sizes in inches for an A4 portrait report (text width ~16 cm = 6.3 in).
FIGSIZE: dict[str, tuple[float, float]] = {
    "full": (6.3, 3.9),
    "full_tall": (6.3, 5.4),
    "half": (3.1, 2.6),
    "page": (6.3, 8.6),
}

HOUSE_STYLE: dict[str, Any] = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial"],
    "font.size": 9.5,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 9.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#444444",
    "axes.linewidth": 0.8,
    "axes.grid": False,
    "axes.prop_cycle": cycler(color=PALETTE),
    "grid.color": "#E5E5E5",
    "grid.linewidth": 0.6,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "xtick.color": "#333333",
    "ytick.color": "#333333",
    "legend.fontsize": 8.5,
    "legend.frameon": False,
    "lines.linewidth": 1.6,
    "figure.figsize": FIGSIZE["full"],
    "figure.dpi": 110,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "svg.fonttype": "none",
}


def apply_house_style() -> None:
    """Set the house style globally (matplotlib rcParams) for the current session."""
    mpl.rcParams.update(HOUSE_STYLE)


@contextlib.contextmanager
def house_style() -> Iterator[None]:
    """Context manager applying the house style temporarily."""
    with mpl.rc_context(HOUSE_STYLE):
        yield


def new_figure(size: str | tuple[float, float] = "full") -> Figure:
    """A figure of a house size (a :data:`FIGSIZE` name or inches), constrained layout."""
    figsize = FIGSIZE[size] if isinstance(size, str) else size
    return Figure(figsize=figsize, layout="constrained")


def style_axes(ax: Axes) -> None:
    """House look for an axes created outside the house style (e.g. passed in by a user)."""
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)


def figure_and_axes(
    ax: Axes | None, size: str | tuple[float, float] = "full"
) -> tuple[Figure, Axes]:
    """The figure and axes to draw on: ``ax`` (styled) and its figure, or a new figure."""
    if ax is not None:
        style_axes(ax)
        return ax.figure, ax
    fig = new_figure(size)
    return fig, fig.add_subplot()


def format_count(n: int | None, min_count: int = 10) -> str:
    """Format a count for display: ``"<10"`` for 1..min_count-1 (and when unknown), ``"0"``
    for 0, else 1,234. The counts hidden are those
    :func:`cinresearch.disclosure.primary_suppression` hides with threshold ``min_count - 1``."""
    if n is None:
        return f"<{min_count}"
    n = int(n)
    hidden = disclosure.primary_suppression(pl.lit(n, dtype=pl.Int64), threshold=min_count - 1)
    if pl.select(hidden).item():
        return f"<{min_count}"
    return f"{n:,}"


def hide_small_risk_sets(curve: pl.DataFrame, min_at_risk: int = 10) -> pl.DataFrame:
    """A curve (``group, time, estimate, lower, upper, at_risk``, ...) with ``estimate``,
    ``lower``, ``upper`` and ``std_error`` nulled where fewer than ``min_at_risk`` are at risk.

    The rows hidden are those whose at-risk count :func:`cinresearch.disclosure.primary_suppression`
    suppresses from 0 to ``min_at_risk - 1``; a figure and the report's curve tables
    (:func:`cinresearch.report.tables.curve_at`) both hide through this function, so a chart
    never shows a value its table hides.
    """
    small = disclosure.primary_suppression("at_risk", threshold=min_at_risk - 1, min_count=0)
    hidden = [c for c in ("estimate", "lower", "upper", "std_error") if c in curve.columns]
    return curve.with_columns(
        pl.when(small).then(None).otherwise(pl.col(c)).alias(c) for c in hidden
    )


def colours(n: int, palette: Sequence[str] | None = None) -> list[str]:
    """``n`` series colours from ``palette`` (default :data:`PALETTE`), repeating if needed."""
    pal = list(palette or PALETTE)
    return [pal[i % len(pal)] for i in range(n)]


def legend_outside(fig: Figure, title: str | None = None) -> Figure:
    """Move the legend of a figure's first axes to the right of the plot (so it never covers
    a line); returns the figure."""
    ax = fig.axes[0]
    handles, names = ax.get_legend_handles_labels()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    if handles:
        ax.legend(
            handles, names, title=title, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False
        )
    return fig


def percent_ticks(axis: Any) -> None:
    """Put the ticks of a percentage axis (a matplotlib ``Axis``) on whole or half-decade
    values (1%, 2%, 5%, 10%, ... steps) so every tick label written with 0 decimals is exact.

    Matplotlib's default locator can choose 2.5% steps, whose labels would then read "2%",
    "8%", "12%". :func:`cinresearch.plots.plot_survival` applies it to its percentage axis.
    """
    axis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 5, 10]))


def tidy_percent_axis(fig: Figure, axis: str = "y") -> Figure:
    """:func:`percent_ticks` on the y (or x) axis of a figure's first axes; returns the figure."""
    percent_ticks(fig.axes[0].yaxis if axis == "y" else fig.axes[0].xaxis)
    return fig


def wrap_title(text: str, width: int) -> str:
    """A title broken into lines of at most ``width`` characters (panel titles)."""
    import textwrap

    return "\n".join(textwrap.wrap(text, width))
