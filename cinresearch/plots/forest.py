"""Forest plot of hazard or odds ratios with confidence intervals on a log axis."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator

from cinresearch.plots.style import FIGSIZE, GREY, PALETTE, figure_and_axes, house_style

__all__ = ["forest_plot"]


def _ratio_ticks(lo: float, hi: float) -> list[float]:
    """Readable ticks for a log ratio axis between ``lo`` and ``hi``."""
    fine = [0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 10, 20, 50, 100]
    coarse = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100]
    ticks = [t for t in fine if lo <= t <= hi]
    if len(ticks) > 8:
        ticks = [t for t in coarse if lo <= t <= hi]
    return ticks or [1.0]


def forest_plot(
    table: pl.DataFrame,
    estimate: str | None = None,
    lower: str = "lower",
    upper: str = "upper",
    label: str = "term",
    ax: Axes | None = None,
    title: str | None = None,
    xlabel: str | None = None,
    annotate: bool = True,
    colour: str | None = None,
) -> Figure:
    """Ratios (hazard or odds) with confidence intervals on a log axis, reference line at 1.

    ``table`` is a tidy model frame (``cox``/``discrete_time_logit`` output); ``estimate``
    defaults to ``hazard_ratio`` or ``odds_ratio``, whichever is present. Rows are drawn top to
    bottom in table order; with ``annotate`` the value and CI are printed on the right.
    """
    if estimate is None:
        estimate = next((c for c in ("hazard_ratio", "odds_ratio") if c in table.columns), None)
        if estimate is None:
            raise ValueError("pass estimate=: no hazard_ratio or odds_ratio column")
    est = table[estimate].cast(pl.Float64).to_numpy()
    lo = table[lower].cast(pl.Float64).to_numpy()
    up = table[upper].cast(pl.Float64).to_numpy()
    labels = [str(x) for x in table[label].to_list()]
    n = len(labels)
    colour = colour or PALETTE[0]
    with house_style():
        fig, ax = figure_and_axes(ax, (FIGSIZE["full"][0], max(1.6, 0.32 * n + 1.0)))
        y = np.arange(n)
        ax.errorbar(
            est,
            y,
            xerr=[est - lo, up - est],
            fmt="o",
            color=colour,
            ecolor=colour,
            capsize=2.5,
            markersize=4.5,
            linewidth=1.2,
        )
        ax.axvline(1.0, color=GREY, linewidth=0.9, linestyle="--", zorder=0)
        ax.set_xscale("log")
        finite = np.concatenate([lo[np.isfinite(lo)], up[np.isfinite(up)], [1.0]])
        lo_x, hi_x = float(finite.min()), float(finite.max())
        ax.set_xlim(lo_x / 1.25, hi_x * 1.25)
        ax.set_yticks(y, labels=labels)
        ax.set_ylim(n - 0.5, -0.5)
        ax.tick_params(axis="y", length=0)
        ax.spines["left"].set_visible(False)
        ax.xaxis.set_major_locator(FixedLocator(_ratio_ticks(lo_x / 1.25, hi_x * 1.25)))
        ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_locator(mpl.ticker.NullLocator())
        name = (
            "Hazard ratio"
            if estimate == "hazard_ratio"
            else ("Odds ratio" if estimate == "odds_ratio" else estimate)
        )
        ax.set_xlabel(xlabel or f"{name} (95% CI, log scale)")
        if annotate:
            right = ax.twinx()
            right.set_ylim(ax.get_ylim())
            right.set_yticks(
                y,
                labels=[
                    f"{e:.2f} ({a:.2f}–{b:.2f})" if np.isfinite(e) else "–"
                    for e, a, b in zip(est, lo, up, strict=True)
                ],
            )
            right.tick_params(axis="y", length=0, labelsize=8)
            for side in ("top", "right", "left", "bottom"):
                right.spines[side].set_visible(False)
        if title:
            ax.set_title(title)
    return fig
