"""Survival and cumulative incidence curves with an at-risk table (:func:`plot_survival`).

Disclosure: a curve is drawn only where at least ``min_at_risk`` (default 10) are at risk
(:func:`cinresearch.plots.style.hide_small_risk_sets`), and at-risk counts below that show as
"<10" (:func:`cinresearch.plots.style.format_count`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from cinresearch.plots.style import (
    FIGSIZE,
    colours,
    format_count,
    hide_small_risk_sets,
    house_style,
    new_figure,
    percent_ticks,
    style_axes,
)

__all__ = ["plot_survival"]


def _infer_kind(curve: pl.DataFrame) -> str:
    """'survival' if the curves fall from 1, 'incidence' if they rise from 0."""
    rises = falls = 0
    for _, part in curve.group_by("group", maintain_order=True):
        est = part.sort("time")["estimate"].drop_nulls().to_numpy()
        if len(est) < 2:
            continue
        diff = np.diff(est)
        rises += int((diff > 1e-12).sum())
        falls += int((diff < -1e-12).sum())
    if rises or falls:
        return "incidence" if rises > falls else "survival"
    first = curve["estimate"].drop_nulls()
    return "survival" if len(first) and first[0] > 0.5 else "incidence"


def _at_risk_at(part: pl.DataFrame, times: Sequence[float]) -> list[int]:
    """Number at risk at each time from a curve's rows: that of the first row at/after t."""
    t = part["time"].cast(pl.Float64).to_numpy()
    n = part["at_risk"].fill_null(0).to_numpy()
    out = []
    for x in times:
        i = int(np.searchsorted(t, float(x), side="left"))
        out.append(int(n[i]) if i < len(t) else 0)
    return out


def draw_at_risk_table(
    table_ax: Axes,
    ax: Axes,
    curve: pl.DataFrame,
    groups: Sequence[str],
    colours: Sequence[str],
    tmax: float,
    at_risk_times: Sequence[float] | None = None,
    min_at_risk: int = 0,
) -> None:
    """The "Number at risk" table under a curve figure: one row per group in its colour, the
    number at risk (``curve``'s ``at_risk``, first row at/after each time) under each x tick
    (or at ``at_risk_times``), counts below ``min_at_risk`` shown as small by
    :func:`format_count`. One drawer for every curve figure (survival, cumulative incidence,
    mean cumulative function)."""
    ticks = (
        [x for x in ax.get_xticks() if 0 <= x <= tmax]
        if at_risk_times is None
        else list(at_risk_times)
    )
    table_ax.set_xlim(ax.get_xlim())
    table_ax.set_ylim(-0.5, len(groups) - 0.5)
    table_ax.invert_yaxis()
    for row, (colour, g) in enumerate(zip(colours, groups, strict=True)):
        counts = _at_risk_at(curve.filter(pl.col("group") == g).sort("time"), ticks)
        for x, n in zip(ticks, counts, strict=True):
            table_ax.text(
                x,
                row,
                format_count(n, max(min_at_risk, 1) if min_at_risk else 1),
                ha="center",
                va="center",
                fontsize=8,
                color=colour,
            )
    table_ax.set_yticks(range(len(groups)), labels=list(groups), fontsize=8)
    for tick, colour in zip(table_ax.get_yticklabels(), colours, strict=True):
        tick.set_color(colour)
    table_ax.tick_params(axis="both", length=0)
    table_ax.tick_params(axis="y", pad=20)
    table_ax.tick_params(axis="x", labelbottom=False)
    table_ax.spines[["top", "right", "bottom", "left"]].set_visible(False)
    table_ax.set_title("Number at risk", fontsize=8.5, fontweight="normal", loc="left")
    ax.tick_params(axis="x", labelbottom=True)


def plot_survival(
    curve: pl.DataFrame,
    ax: Axes | None = None,
    title: str | None = None,
    ylabel: str | None = None,
    xlabel: str = "Days since referral",
    at_risk_times: Sequence[float] | None = None,
    kind: str | None = None,
    ci: bool = True,
    min_at_risk: int = 10,
    at_risk_table: bool = True,
    percent: bool = True,
    xmax: float | None = None,
    palette: Sequence[str] | None = None,
    legend_title: str | None = None,
) -> Figure:
    """Step curves per group from a tidy KM / cumulative-incidence frame, with an at-risk table.

    ``curve`` has the columns of :func:`cinresearch.survival.kaplan_meier` (group, time,
    estimate, lower, upper, at_risk). ``kind`` is ``"survival"`` (curves start at 1) or
    ``"incidence"`` (start at 0); inferred from the curves if not given. Rows with fewer than
    ``min_at_risk`` at risk are not drawn (publication convention; 0 disables), and the at-risk
    table below the axis shows counts below ``min_at_risk`` as "<10". Counts in the table are
    the number at risk at each of ``at_risk_times`` (default: the x ticks), taken from the
    first curve row at or after that time.
    """
    needed = {"group", "time", "estimate", "at_risk"}
    if missing := needed - set(curve.columns):
        raise ValueError(f"curve frame lacks column(s) {sorted(missing)}")
    kind = kind or _infer_kind(curve)
    if kind not in {"survival", "incidence"}:
        raise ValueError("kind must be 'survival' or 'incidence'")
    start = 1.0 if kind == "survival" else 0.0
    shown = hide_small_risk_sets(curve, min_at_risk) if min_at_risk else curve
    groups = curve["group"].unique(maintain_order=True).to_list()
    series_colours = colours(len(groups), palette)
    tmax = float(xmax if xmax is not None else curve["time"].cast(pl.Float64).max() or 1.0)

    with house_style():
        table_ax = None
        if ax is None:
            height = FIGSIZE["full"][1] + (0.22 * (len(groups) + 1) if at_risk_table else 0)
            fig = new_figure((FIGSIZE["full"][0], height))
            if at_risk_table:
                gs = fig.add_gridspec(2, 1, height_ratios=[3.6, 0.28 * (len(groups) + 1.5)])
                ax = fig.add_subplot(gs[0])
                table_ax = fig.add_subplot(gs[1], sharex=ax)
            else:
                ax = fig.add_subplot()
        else:
            fig = ax.figure
            style_axes(ax)
            if at_risk_table:
                from mpl_toolkits.axes_grid1 import make_axes_locatable

                table_ax = make_axes_locatable(ax).append_axes(
                    "bottom", size=f"{12 * (len(groups) + 1)}%", pad=0.65, sharex=ax
                )

        for colour, g in zip(series_colours, groups, strict=True):
            part = shown.filter(pl.col("group") == g).sort("time")
            t = part["time"].cast(pl.Float64).to_numpy()
            y = part["estimate"].cast(pl.Float64).fill_null(np.nan).to_numpy()
            lo = (
                part["lower"].cast(pl.Float64).fill_null(np.nan).to_numpy()
                if "lower" in part.columns
                else None
            )
            up = (
                part["upper"].cast(pl.Float64).fill_null(np.nan).to_numpy()
                if "upper" in part.columns
                else None
            )
            if len(t) and np.isfinite(y[0]):
                # begin at the origin value so a drop on day 0 is visible as a step
                t = np.concatenate([[min(0.0, t[0])], t])
                y = np.concatenate([[start], y])
                if lo is not None and up is not None:
                    lo = np.concatenate([[start], lo])
                    up = np.concatenate([[start], up])
            label = g if len(groups) > 1 or g != "All" else None
            ax.step(t, y, where="post", color=colour, label=label)
            if ci and lo is not None and up is not None and len(t):
                ax.fill_between(t, lo, up, step="post", color=colour, alpha=0.18, linewidth=0)

        ax.set_xlim(0, tmax)
        if kind == "survival":
            ax.set_ylim(0, 1.02)
        else:
            top = shown["upper"].max() if "upper" in shown.columns else shown["estimate"].max()
            top = float(top) if top is not None else 1.0
            ax.set_ylim(0, min(1.0, max(0.05, top * 1.1)))
        if percent:
            # ticks on whole percentages so labels never round (2.5% shown as "2%")
            percent_ticks(ax.yaxis)
            ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))
        ax.set_ylabel(
            ylabel or ("Proportion without event" if kind == "survival" else "Cumulative incidence")
        )
        ax.xaxis.set_major_locator(MaxNLocator(nbins=7, integer=True, min_n_ticks=3))
        ax.grid(axis="y")
        if title:
            ax.set_title(title)
        if len(groups) > 1 or groups != ["All"]:
            ax.legend(title=legend_title, loc="best")

        if table_ax is not None:
            draw_at_risk_table(
                table_ax, ax, curve, groups, series_colours, tmax, at_risk_times, min_at_risk
            )
        ax.set_xlabel(xlabel)
    return fig
