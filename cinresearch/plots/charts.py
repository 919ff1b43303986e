"""Small indicator charts: trend lines, bar charts, and small multiples of trends."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from cinresearch.plots.style import FIGSIZE, colours, figure_and_axes, house_style, wrap_title

__all__ = ["bar_chart", "line_chart", "small_multiples"]


def line_chart(
    frame: pl.DataFrame,
    x: str,
    y: str,
    group: str | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    markers: bool = True,
    ylim_zero: bool = True,
) -> Figure:
    """Indicator trend lines (one per ``group`` level); nulls leave gaps."""
    with house_style():
        fig, ax = figure_and_axes(ax)
        levels = [None] if group is None else frame[group].unique(maintain_order=True).to_list()
        for colour, lv in zip(colours(len(levels)), levels, strict=True):
            part = frame if lv is None else frame.filter(pl.col(group) == lv)
            part = part.sort(x)
            ax.plot(
                part[x].to_list(),
                part[y].cast(pl.Float64).fill_null(np.nan).to_numpy(),
                marker="o" if markers else None,
                markersize=3.5,
                color=colour,
                label=None if lv is None else str(lv),
            )
        if group is not None:
            ax.legend()
        if ylim_zero:
            ax.set_ylim(bottom=0)
        if frame[x].dtype.is_integer():
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(axis="y")
        ax.set_xlabel(xlabel or x.replace("_", " ").capitalize())
        ax.set_ylabel(ylabel or y.replace("_", " ").capitalize())
        if title:
            ax.set_title(title)
    return fig


def bar_chart(
    frame: pl.DataFrame,
    x: str,
    y: str,
    group: str | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    horizontal: bool = False,
    value_labels: bool = False,
    fmt: str = "{:,.1f}",
) -> Figure:
    """Bar chart of an indicator by category (grouped bars when ``group`` is given)."""
    cats = [str(c) for c in frame[x].unique(maintain_order=True).to_list()]
    levels = [None] if group is None else frame[group].unique(maintain_order=True).to_list()
    width = 0.8 / len(levels)
    with house_style():
        fig, ax = figure_and_axes(ax)
        pos = np.arange(len(cats))
        for k, (colour, lv) in enumerate(zip(colours(len(levels)), levels, strict=True)):
            part = frame if lv is None else frame.filter(pl.col(group) == lv)
            vals = dict(
                zip(
                    [str(c) for c in part[x].to_list()],
                    part[y].cast(pl.Float64).to_list(),
                    strict=True,
                )
            )
            h = np.array([np.nan if vals.get(c) is None else vals[c] for c in cats], dtype=float)
            offs = pos - 0.4 + width * (k + 0.5)
            bars = (ax.barh if horizontal else ax.bar)(
                offs,
                np.nan_to_num(h),
                width * 0.95,
                color=colour,
                label=None if lv is None else str(lv),
            )
            if value_labels:
                ax.bar_label(
                    bars,
                    labels=["" if np.isnan(v) else fmt.format(v) for v in h],
                    fontsize=7.5,
                    padding=2,
                )
        if horizontal:
            ax.set_yticks(pos, labels=cats)
            ax.invert_yaxis()
            ax.grid(axis="x")
            ax.set_xlabel(ylabel or y.replace("_", " ").capitalize())
            ax.set_ylabel(xlabel or "")
        else:
            ax.set_xticks(pos, labels=cats)
            ax.grid(axis="y")
            ax.set_ylabel(ylabel or y.replace("_", " ").capitalize())
            ax.set_xlabel(xlabel or x.replace("_", " ").capitalize())
        ax.set_axisbelow(True)
        if group is not None:
            ax.legend()
        if title:
            ax.set_title(title)
    return fig


def small_multiples(
    frame: pl.DataFrame,
    panels: Sequence[str],
    *,
    panel: str,
    x: str,
    y: str,
    group: str | None = None,
    titles: Mapping[str, str] | None = None,
    title: str | None = None,
    columns: int = 2,
    title_width: int = 38,
) -> Figure:
    """Trend lines in small multiples: one panel per value of ``panel`` in ``panels`` (in that
    order, titled by ``titles``), one line per ``group`` level, one legend under the panels.

    Each panel is :func:`line_chart` on its rows; values that must not be shown should be
    nulled first (a null leaves a gap).
    """
    names = dict(titles or {})
    n = len(panels)
    cols = columns if n > 1 else 1
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(FIGSIZE["full"][0], 2.3 * rows + 0.8), layout="constrained")
    with house_style():
        axes = fig.subplots(rows, cols, squeeze=False)
        for i, key in enumerate(panels):
            ax = axes[i // cols][i % cols]
            part = frame.filter(pl.col(panel) == key)
            line_chart(part, x=x, y=y, group=group, ax=ax, xlabel="")
            ax.set_title(wrap_title(names.get(key, key), title_width), fontsize=9)
            ax.set_ylabel("")
            if ax.get_legend() is not None:
                ax.get_legend().remove()
        for j in range(n, rows * cols):
            axes[j // cols][j % cols].set_visible(False)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=max(1, len(labels)))
        if title:
            fig.suptitle(title, fontweight="bold", x=0.02, ha="left")
    return fig
