"""Swimlane timelines of children's journeys (:func:`timeline_swimlane`).

Disclosure: children are labelled "Child 1, Child 2, …", never by identifier; the report draws
them for synthetic data only (:func:`cinresearch.report.scope.is_synthetic`).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl
from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from cinresearch.plots.style import FIGSIZE, LIGHT_GREY, OKABE_ITO, figure_and_axes, house_style

__all__ = ["timeline_swimlane"]

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
        fig, ax = figure_and_axes(ax, (FIGSIZE["full"][0], max(2.0, 0.42 * n + 1.3)))
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
