"""Figure of the mean cumulative function by group.

Part of :mod:`cinresearch.recurrent`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from cinresearch.recurrent.conventions import ALL_GROUP

if TYPE_CHECKING:  # matplotlib is imported only when a figure is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# --------------------------------------------------------------------------------------------
# Figure
# --------------------------------------------------------------------------------------------


def plot_mean_cumulative(
    curve: pl.DataFrame,
    ax: Axes | None = None,
    *,
    title: str | None = None,
    xlabel: str = "Days since first referral",
    ylabel: str = "Mean number of re-referrals per child",
    ci: bool = True,
    min_at_risk: int = 10,
    at_risk_table: bool = True,
    at_risk_times: Sequence[float] | None = None,
    xmax: float | None = None,
    palette: Sequence[str] | None = None,
    legend_title: str | None = None,
) -> Figure:
    """Mean cumulative function per group (steps) with its confidence band, house style.

    ``curve`` is a :func:`mean_cumulative` frame. As for survival curves
    (:func:`cinresearch.plots.plot_survival`), nothing is drawn where fewer than
    ``min_at_risk`` children are at risk, and the at-risk table below the axis shows smaller
    counts as "<10". Unlike a probability the mean can exceed 1, so the y axis is not capped.
    """
    from matplotlib.figure import Figure

    from cinresearch.plots import FIGSIZE, PALETTE, house_style
    from cinresearch.plots.curves import draw_at_risk_table

    needed = {"group", "time", "estimate", "at_risk"}
    if missing := needed - set(curve.columns):
        raise ValueError(f"curve frame lacks column(s) {sorted(missing)}")
    groups = curve.get_column("group").unique(maintain_order=True).to_list()
    pal = list(palette or PALETTE)
    colours = [pal[i % len(pal)] for i in range(len(groups))]
    hide = pl.col("at_risk") < min_at_risk if min_at_risk else pl.lit(False)
    shown = curve.with_columns(
        pl.when(hide).then(None).otherwise(pl.col(c)).alias(c)
        for c in ("estimate", "lower", "upper")
        if c in curve.columns
    )
    tmax = float(xmax if xmax is not None else curve.get_column("time").max() or 1.0)
    with house_style():
        table_ax = None
        if ax is None:
            height = FIGSIZE["full"][1] + (0.22 * (len(groups) + 1) if at_risk_table else 0)
            fig = Figure(figsize=(FIGSIZE["full"][0], height), layout="constrained")
            if at_risk_table:
                gs = fig.add_gridspec(2, 1, height_ratios=[3.6, 0.28 * (len(groups) + 1.5)])
                ax = fig.add_subplot(gs[0])
                table_ax = fig.add_subplot(gs[1], sharex=ax)
            else:
                ax = fig.add_subplot()
        else:
            fig = ax.figure
            ax.spines[["top", "right"]].set_visible(False)
        top = 0.0
        for colour, g in zip(colours, groups, strict=True):
            part = shown.filter(pl.col("group") == g).sort("time")
            t = part.get_column("time").cast(pl.Float64).to_numpy()
            y = part.get_column("estimate").cast(pl.Float64).fill_null(np.nan).to_numpy()
            label = g if groups != [ALL_GROUP] else None
            ax.step(t, y, where="post", color=colour, label=label)
            if ci and {"lower", "upper"} <= set(part.columns):
                lo = part.get_column("lower").cast(pl.Float64).fill_null(np.nan).to_numpy()
                up = part.get_column("upper").cast(pl.Float64).fill_null(np.nan).to_numpy()
                ax.fill_between(t, lo, up, step="post", color=colour, alpha=0.18, linewidth=0)
                top = max(top, float(np.nanmax(up, initial=0.0)))
            top = max(top, float(np.nanmax(y, initial=0.0)))
        ax.set_xlim(0, tmax)
        ax.set_ylim(0, max(top * 1.08, 0.05))
        ax.set_ylabel(ylabel)
        ax.grid(axis="y")
        if title:
            ax.set_title(title)
        if groups != [ALL_GROUP]:
            ax.legend(title=legend_title, loc="upper left")
        if table_ax is not None:
            draw_at_risk_table(
                table_ax, ax, curve, groups, colours, tmax, at_risk_times, min_at_risk
            )
        ax.set_xlabel(xlabel)
    return fig
