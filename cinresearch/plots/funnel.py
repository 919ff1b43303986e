"""Funnel plot: one point per LA against its denominator, with 95% and 99.8% control limits."""

from __future__ import annotations

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from cinresearch.plots.style import GREY, OKABE_ITO, figure_and_axes, house_style

__all__ = ["funnel_plot"]


def funnel_plot(
    points: pl.DataFrame,
    limits: pl.DataFrame,
    target: float,
    highlight: str | None = None,
    label: str = "la_code",
    x: str = "denominator",
    y: str = "rate",
    ax: Axes | None = None,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    label_outliers: bool = True,
) -> Figure:
    """Funnel plot: one point per LA against its denominator, with 95% and 99.8% limits.

    ``limits`` has ``[denominator, lower95, upper95, lower998, upper998]`` on a grid of
    denominators (from ``benchmarking.funnel_limits``); ``target`` is the centre line (e.g. the
    England rate). Points outside the 99.8% limits are coloured and, with ``label_outliers``,
    labelled with their ``label`` value; ``highlight`` marks one LA (by ``label`` value).
    """
    lim = limits.sort("denominator")
    ld = lim["denominator"].cast(pl.Float64).to_numpy()
    px = points[x].cast(pl.Float64).to_numpy()
    py = points[y].cast(pl.Float64).to_numpy()
    names = [str(v) for v in points[label].to_list()]
    lo998 = np.interp(px, ld, lim["lower998"].cast(pl.Float64).to_numpy())
    up998 = np.interp(px, ld, lim["upper998"].cast(pl.Float64).to_numpy())
    high = py > up998
    low = py < lo998
    with house_style():
        fig, ax = figure_and_axes(ax)
        for col, style, name in (("95", "--", "95% limits"), ("998", "-", "99.8% limits")):
            ax.plot(
                ld,
                lim[f"upper{col}"].to_numpy(),
                color=GREY,
                linestyle=style,
                linewidth=1,
                label=name,
            )
            ax.plot(ld, lim[f"lower{col}"].to_numpy(), color=GREY, linestyle=style, linewidth=1)
        ax.axhline(target, color=OKABE_ITO["black"], linewidth=1, label="Target")
        inside = ~(high | low)
        ax.scatter(
            px[inside], py[inside], s=16, color=OKABE_ITO["sky_blue"], edgecolor="none", label="LA"
        )
        if high.any():
            ax.scatter(px[high], py[high], s=20, color=OKABE_ITO["vermillion"], label="Above 99.8%")
        if low.any():
            ax.scatter(px[low], py[low], s=20, color=OKABE_ITO["blue"], label="Below 99.8%")
        if label_outliers:
            for i in np.flatnonzero(high | low):
                ax.annotate(
                    names[i], (px[i], py[i]), xytext=(3, 3), textcoords="offset points", fontsize=7
                )
        if highlight is not None:
            hits = [i for i, nm in enumerate(names) if nm == str(highlight)]
            if not hits:
                raise ValueError(f"highlight {highlight!r} not found in column {label!r}")
            i = hits[0]
            ax.scatter(
                [px[i]],
                [py[i]],
                s=60,
                facecolor="none",
                edgecolor=OKABE_ITO["black"],
                linewidth=1.6,
                label=str(highlight),
                zorder=5,
            )
            ax.annotate(
                str(highlight),
                (px[i], py[i]),
                xytext=(6, -10),
                textcoords="offset points",
                fontsize=8,
                fontweight="bold",
            )
        ax.set_xlabel(xlabel or x.replace("_", " ").capitalize())
        ax.set_ylabel(ylabel or y.replace("_", " ").capitalize())
        ax.set_xlim(0, max(ld.max(), np.nanmax(px) if len(px) else 0) * 1.03)
        if len(py) and np.nanmin(py) >= 0:
            ax.set_ylim(bottom=0)
        ax.legend(loc="upper right", ncols=2)
        if title:
            ax.set_title(title)
    return fig
