"""One house style for report figures: survival curves with at-risk tables, forest, funnel and
swimlane plots, and small indicator charts.

Every function returns a ``matplotlib.figure.Figure`` built without pyplot (so it is safe under
the Agg backend, does not leak figures, and displays once in Jupyter). Pass ``ax=`` to draw into
an existing axes instead. The house style is applied inside each function via ``rc_context``;
:func:`apply_house_style` sets it globally for a notebook's own plots.

Disclosure: survival curves are drawn only where at least ``min_at_risk`` (default 10) are at
risk, at-risk counts below that show as "<10", and swimlanes label children "Child 1, Child 2, …"
— never by identifier.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

import matplotlib as mpl
import numpy as np
import polars as pl
from cycler import cycler
from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, MaxNLocator, PercentFormatter

__all__ = [
    "FIGSIZE",
    "HOUSE_STYLE",
    "OKABE_ITO",
    "PALETTE",
    "apply_house_style",
    "bar_chart",
    "format_count",
    "forest_plot",
    "funnel_plot",
    "house_style",
    "line_chart",
    "plot_survival",
    "timeline_swimlane",
]

#: Okabe–Ito colour-blind-safe palette (Okabe & Ito 2008).
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


def _new_figure(size: str | tuple[float, float] = "full") -> Figure:
    figsize = FIGSIZE[size] if isinstance(size, str) else size
    return Figure(figsize=figsize, layout="constrained")


def _style_axes(ax: Axes) -> None:
    """House look for an axes created outside the house style (e.g. passed in by a user)."""
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)


def _figure_and_axes(
    ax: Axes | None, size: str | tuple[float, float] = "full"
) -> tuple[Figure, Axes]:
    if ax is not None:
        _style_axes(ax)
        return ax.figure, ax
    fig = _new_figure(size)
    return fig, fig.add_subplot()


def format_count(n: int | None, min_count: int = 10) -> str:
    """Format a count for display: ``"<10"`` for 1..min_count-1, ``"0"`` for 0, else 1,234."""
    if n is None:
        return f"<{min_count}"
    n = int(n)
    if n == 0:
        return "0"
    if n < min_count:
        return f"<{min_count}"
    return f"{n:,}"


def _colours(n: int, palette: Sequence[str] | None = None) -> list[str]:
    pal = list(palette or PALETTE)
    return [pal[i % len(pal)] for i in range(n)]


# --------------------------------------------------------------------------------------------
# survival curves
# --------------------------------------------------------------------------------------------


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
    from cinresearch.survival import suppress_small_risk_sets

    needed = {"group", "time", "estimate", "at_risk"}
    if missing := needed - set(curve.columns):
        raise ValueError(f"curve frame lacks column(s) {sorted(missing)}")
    kind = kind or _infer_kind(curve)
    if kind not in {"survival", "incidence"}:
        raise ValueError("kind must be 'survival' or 'incidence'")
    start = 1.0 if kind == "survival" else 0.0
    shown = suppress_small_risk_sets(curve, min_at_risk) if min_at_risk else curve
    groups = curve["group"].unique(maintain_order=True).to_list()
    colours = _colours(len(groups), palette)
    tmax = float(xmax if xmax is not None else curve["time"].cast(pl.Float64).max() or 1.0)

    with house_style():
        table_ax = None
        if ax is None:
            height = FIGSIZE["full"][1] + (0.22 * (len(groups) + 1) if at_risk_table else 0)
            fig = _new_figure((FIGSIZE["full"][0], height))
            if at_risk_table:
                gs = fig.add_gridspec(2, 1, height_ratios=[3.6, 0.28 * (len(groups) + 1.5)])
                ax = fig.add_subplot(gs[0])
                table_ax = fig.add_subplot(gs[1], sharex=ax)
            else:
                ax = fig.add_subplot()
        else:
            fig = ax.figure
            _style_axes(ax)
            if at_risk_table:
                from mpl_toolkits.axes_grid1 import make_axes_locatable

                table_ax = make_axes_locatable(ax).append_axes(
                    "bottom", size=f"{12 * (len(groups) + 1)}%", pad=0.65, sharex=ax
                )

        for colour, g in zip(colours, groups, strict=True):
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
            ax.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 5, 10]))
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
            if at_risk_times is None:
                ticks = [x for x in ax.get_xticks() if 0 <= x <= tmax]
            else:
                ticks = list(at_risk_times)
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
            table_ax.set_yticks(range(len(groups)), labels=groups, fontsize=8)
            for tick, colour in zip(table_ax.get_yticklabels(), colours, strict=True):
                tick.set_color(colour)
            table_ax.tick_params(axis="both", length=0)
            table_ax.tick_params(axis="y", pad=20)
            table_ax.tick_params(axis="x", labelbottom=False)
            for side in ("top", "right", "bottom", "left"):
                table_ax.spines[side].set_visible(False)
            table_ax.set_title("Number at risk", fontsize=8.5, fontweight="normal", loc="left")
            ax.tick_params(axis="x", labelbottom=True)
        ax.set_xlabel(xlabel)
    return fig


# --------------------------------------------------------------------------------------------
# forest plot
# --------------------------------------------------------------------------------------------


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
        fig, ax = _figure_and_axes(ax, (FIGSIZE["full"][0], max(1.6, 0.32 * n + 1.0)))
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


# --------------------------------------------------------------------------------------------
# funnel plot
# --------------------------------------------------------------------------------------------


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
        fig, ax = _figure_and_axes(ax)
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


# --------------------------------------------------------------------------------------------
# swimlane timelines
# --------------------------------------------------------------------------------------------

_PERIODS: dict[str, tuple[str, str, str, float, float]] = {
    # name: (start event, end event, colour, y offset, height)
    "CIN episode": ("referral", "closure", LIGHT_GREY, 0.0, 0.78),
    "CIN plan": ("cin_plan_start", "cin_plan_end", OKABE_ITO["sky_blue"], -0.2, 0.2),
    "Child protection plan": ("cpp_start", "cpp_end", OKABE_ITO["vermillion"], 0.0, 0.2),
    "Looked after": ("entered_care", "left_care", OKABE_ITO["bluish_green"], 0.2, 0.2),
}
_EVENT_LABELS: dict[str, str] = {
    "referral": "Referral",
    "assessment_start": "Assessment start",
    "assessment_authorised": "Assessment authorised",
    "s47_start": "Section 47 enquiry",
    "icpc": "Initial child protection conference",
    "cpp_review": "CPP review",
    "closure": "Episode closed",
    "moved_la": "Moved LA",
}
_MARKERS: dict[str, tuple[str, str]] = {
    "referral": ("o", OKABE_ITO["black"]),
    "assessment_start": ("^", OKABE_ITO["blue"]),
    "assessment_authorised": ("v", OKABE_ITO["blue"]),
    "s47_start": ("s", OKABE_ITO["orange"]),
    "icpc": ("D", OKABE_ITO["reddish_purple"]),
    "cpp_review": ("|", OKABE_ITO["black"]),
    "closure": ("x", OKABE_ITO["black"]),
    "moved_la": ("*", OKABE_ITO["orange"]),
}


def _pair_periods(
    rows: list[dict[str, Any]], start: str, end: str, by_episode: bool, open_end: date
) -> list[tuple[date, date]]:
    """Pair each start with the first unused end on/after it (within episode if asked)."""
    keyf = (lambda r: r.get("episode_id")) if by_episode else (lambda r: None)
    out = []
    for key in dict.fromkeys(keyf(r) for r in rows if r["event"] in (start, end)):
        starts = sorted(r["date"] for r in rows if r["event"] == start and keyf(r) == key)
        ends = sorted(r["date"] for r in rows if r["event"] == end and keyf(r) == key)
        used = [False] * len(ends)
        for s in starts:
            j = next((k for k, e in enumerate(ends) if not used[k] and e >= s), None)
            if j is None:
                out.append((s, open_end))
            else:
                used[j] = True
                out.append((s, ends[j]))
    return out


def timeline_swimlane(
    events: pl.DataFrame,
    max_children: int = 20,
    ax: Axes | None = None,
    title: str | None = None,
    end_date: date | None = None,
) -> Figure:
    """Swimlane of children's journeys: one lane per child, time along x.

    ``events`` is the long ``events`` table (child_id, la_code, episode_id, date, event, seq,
    attrs). Bars show periods — CIN episode (referral → closure), CIN plan, child protection
    plan and looked-after periods; markers show point events (assessment, s47, ICPC, review,
    move of LA…). A period with no end runs to ``end_date`` (default: the latest date in the
    data) and is drawn open. Children are the first ``max_children`` by date of first event and
    are labelled "Child 1", "Child 2", … — identifiers are never drawn.
    """
    need = {"child_id", "date", "event"}
    if missing := need - set(events.columns):
        raise ValueError(f"events frame lacks column(s) {sorted(missing)}")
    ev = events.filter(pl.col("date").is_not_null())
    if "episode_id" not in ev.columns:
        ev = ev.with_columns(episode_id=pl.lit(None, dtype=pl.String))
    order = (
        ev.group_by("child_id")
        .agg(first=pl.col("date").min())
        .sort(["first", "child_id"])
        .head(max_children)
    )
    children = order["child_id"].to_list()
    end = end_date or (ev["date"].max() if ev.height else date.today())
    n = len(children)
    with house_style():
        fig, ax = _figure_and_axes(ax, (FIGSIZE["full"][0], max(2.0, 0.42 * n + 1.3)))
        used_markers: set[str] = set()
        used_periods: set[str] = set()
        sort_cols = ["date", "seq"] if "seq" in ev.columns else ["date"]
        for lane, cid in enumerate(children):
            rows = ev.filter(pl.col("child_id") == cid).sort(sort_cols).to_dicts()
            for name, (start_ev, end_ev, colour, dy, height) in _PERIODS.items():
                by_episode = name != "Looked after"
                for s, e in _pair_periods(rows, start_ev, end_ev, by_episode, end):
                    x0 = mdates.date2num(s)
                    width = max(mdates.date2num(e) - x0, 1.0)
                    ax.broken_barh(
                        [(x0, width)],
                        (lane + dy - height / 2, height),
                        facecolors=colour,
                        edgecolors="none",
                        alpha=0.95 if name != "CIN episode" else 1.0,
                    )
                    used_periods.add(name)
            for r in rows:
                spec = _MARKERS.get(r["event"])
                if spec is None:
                    continue
                marker, colour = spec
                ax.plot(
                    mdates.date2num(r["date"]),
                    lane,
                    marker=marker,
                    color=colour,
                    markersize=5,
                    linestyle="none",
                    markeredgewidth=1.2,
                )
                used_markers.add(r["event"])
        ax.set_yticks(range(n), labels=[f"Child {i + 1}" for i in range(n)])
        ax.set_ylim(n - 0.5, -0.5)
        ax.tick_params(axis="y", length=0)
        ax.spines["left"].set_visible(False)
        locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.xaxis_date()
        ax.grid(axis="x")
        handles: list[Any] = [
            Patch(facecolor=_PERIODS[p][2], label=p) for p in _PERIODS if p in used_periods
        ]
        handles += [
            Line2D(
                [],
                [],
                marker=_MARKERS[m][0],
                color=_MARKERS[m][1],
                linestyle="none",
                markersize=5,
                label=_EVENT_LABELS[m],
            )
            for m in _MARKERS
            if m in used_markers
        ]
        if handles:
            fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=7.5)
        ax.set_title(title or f"Journeys of {n} children")
    return fig


# --------------------------------------------------------------------------------------------
# small indicator charts
# --------------------------------------------------------------------------------------------


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
        fig, ax = _figure_and_axes(ax)
        levels = [None] if group is None else frame[group].unique(maintain_order=True).to_list()
        for colour, lv in zip(_colours(len(levels)), levels, strict=True):
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
        fig, ax = _figure_and_axes(ax)
        pos = np.arange(len(cats))
        for k, (colour, lv) in enumerate(zip(_colours(len(levels)), levels, strict=True)):
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
