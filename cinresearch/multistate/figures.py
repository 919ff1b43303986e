"""The stacked-area figure of state occupation over time since referral.

Part of :mod:`cinresearch.multistate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from cinresearch.multistate.states import STATE_COLOURS, STATE_LABELS, STATES

if TYPE_CHECKING:  # matplotlib is imported only when a figure is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


# --------------------------------------------------------------------------------------------
# figure
# --------------------------------------------------------------------------------------------


def plot_state_occupation(
    occupation: pl.DataFrame,
    ax: Axes | None = None,
    *,
    group: str | None = None,
    title: str | None = None,
    xlabel: str = "Days since referral",
    ylabel: str = "Share of referrals",
    labels: Mapping[str, str] | None = None,
    colours: Mapping[str, str] | None = None,
    min_at_risk: int = 10,
    xmax: float | None = None,
    legend: bool = True,
) -> Figure:
    """Stacked areas of the state occupation probabilities over time since referral.

    ``occupation``: :func:`state_occupation` output (one ``group``, or choose it with
    ``group``). Bands stack in pathway order from the bottom (referred, assessment, ...) with
    closed episodes on top in grey, so the height of the coloured area at a day is the share
    of referrals still open then, split by the furthest stage reached. Curves stop where fewer
    than ``min_at_risk`` episodes remain under observation (the publication convention of
    :func:`cinresearch.plots.plot_survival`; 0 draws everything). States never occupied are
    left out; the legend lists the rest top to bottom as they are stacked.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    from cinresearch import plots

    needed = {"group", "time", "state", "estimate", "at_risk"}
    if missing := needed - set(occupation.columns):
        raise ValueError(f"occupation frame lacks column(s) {sorted(missing)}")
    groups = occupation["group"].unique(maintain_order=True).to_list()
    if group is None:
        if len(groups) > 1:
            raise ValueError(f"occupation has groups {groups}: choose one with group=")
        group = groups[0]
    part = occupation.filter(pl.col("group") == group)
    if part.is_empty():
        raise ValueError(f"no rows for group {group!r}")
    labels = {**STATE_LABELS, **(labels or {})}
    colours = {**STATE_COLOURS, **(colours or {})}
    present = part["state"].unique(maintain_order=True).to_list()
    order = [s for s in STATES if s in present] + [s for s in present if s not in STATES]
    wide = part.pivot(on="state", index="time", values="estimate").sort("time")
    risk = part.group_by("time").agg(pl.col("at_risk").sum()).sort("time")
    t = wide["time"].to_numpy().astype(float)
    total = risk["at_risk"].to_numpy()
    if min_at_risk:
        low = np.flatnonzero(total < min_at_risk)
        # stop at the first time after the start where too few remain (late entry can make
        # the first times small too: those are hidden, not the rest of the curve)
        start = int(np.argmax(total >= min_at_risk)) if (total >= min_at_risk).any() else len(t)
        later = low[low > start]
        stop = int(later[0]) if len(later) else len(t)
        shown = np.zeros(len(t), dtype=bool)
        shown[start:stop] = True
    else:
        shown = np.ones(len(t), dtype=bool)
    occupied = [s for s in order if (wide[s].fill_null(0).to_numpy()[shown] > 0).any()]
    tmax = float(xmax if xmax is not None else (t[shown].max() if shown.any() else 1.0))
    with plots.house_style():
        if ax is None:
            fig = Figure(figsize=plots.FIGSIZE["full"], layout="constrained")
            ax = fig.add_subplot()
        else:
            fig = ax.figure
            ax.spines["top"].set_visible(False)
            ax.spines["right"].set_visible(False)
        bottom = np.zeros(len(t))
        handles = []
        for s in occupied:
            y = wide[s].fill_null(0).to_numpy().astype(float)
            top = bottom + y
            colour = colours.get(s, plots.GREY)
            ax.fill_between(
                t[shown],
                bottom[shown],
                top[shown],
                step="post",
                color=colour,
                linewidth=0,
            )
            handles.append(Patch(color=colour, label=labels.get(s, s)))
            bottom = top
        ax.set_xlim(0, tmax)
        ax.set_ylim(0, 1)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 5, 10]))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.xaxis.set_major_locator(MaxNLocator(nbins=7, integer=True, min_n_ticks=3))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
        if legend and handles:
            ax.legend(
                handles=handles[::-1],
                loc="center left",
                bbox_to_anchor=(1.01, 0.5),
                title="Furthest stage reached",
                title_fontsize=8.5,
                alignment="left",
            )
    return fig
