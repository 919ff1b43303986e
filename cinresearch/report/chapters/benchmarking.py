"""Chapter 5 (``05_la_benchmarking``): official measures of one LA against England and its
statistical neighbours, funnel plots across LAs and trends over time.

Figures leave out what a table would suppress: an LA whose count is confidential is not put in
a funnel plot, and a value with a confidential count is not drawn in a trend line (both asked
of :mod:`cinresearch.disclosure`); style comes from :mod:`cinresearch.plots`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from cinresearch import benchmarking, disclosure, plots
from cinresearch.indicators import LOCAL_AUTHORITY, NATIONAL, indicator_metadata
from cinresearch.report.figures import mask_small_counts
from cinresearch.report.scope import ENGLAND

__all__ = ["funnel_figure", "measure_labels", "neighbour_list", "trend_figure"]


def measure_labels() -> dict[str, str]:
    """Official measure id → its label (``data_contracts/indicators.yaml``)."""
    meta = indicator_metadata()
    return dict(zip(meta["measure"].to_list(), meta["label"].to_list(), strict=True))


def neighbour_list(
    indicators: pl.DataFrame, la_code: str, census_year: int | None = None
) -> tuple[list[str], str]:
    """An LA's statistical neighbours and a sentence saying where they came from.

    The configured list (``data_contracts/statistical_neighbours.yaml``) when there is one,
    else the LAs nearest on the fallback measures (which ``indicators`` must include); an
    empty list when neither applies. Never warns: the sentence says what happened.
    """
    configured, fallback = benchmarking.load_statistical_neighbours()
    if la_code in configured:
        peers = [x for x in configured[la_code] if x != la_code]
        return peers, "its published statistical neighbours"
    measures = list(fallback.get("measures") or [])
    k = int(fallback.get("k", 10))
    peers = benchmarking.nearest_by_rate(
        indicators, la_code, measures, k=k, census_year=census_year
    )
    if not peers:
        return [], "no statistical neighbours (none configured, and too few LAs to choose from)"
    labels = measure_labels()
    names = "; ".join(labels.get(m, m) for m in measures)
    return peers, (
        f"the {len(peers)} LA(s) in the data most similar to it on these measures: {names} "
        "(no published neighbour list is configured)"
    )


def _funnel_kind(unit: str) -> str | None:
    return {"rate_per_10000": "rate", "percent": "proportion"}.get(unit)


def funnel_figure(
    indicators: pl.DataFrame,
    measure: str,
    census_year: int,
    la_code: str = ENGLAND,
    threshold: int = 5,
    title: str | None = None,
) -> tuple[Any | None, str]:
    """A funnel plot of one rate or percentage across LAs for one census year, around the
    England value, with the LA highlighted (none for ``"ENG"``); returns ``(figure, note)``.

    LAs whose count is 1..``threshold`` are not plotted (the note says how many), so the
    figure shows nothing a table would suppress. ``(None, reason)`` when there is nothing to
    plot (no England value, not a rate or percentage, no LA left).
    """
    rows = indicators.filter(
        (pl.col("measure") == measure)
        & (pl.col("breakdown") == "total")
        & (pl.col("census_year") == census_year)
    )
    national = rows.filter(pl.col("geographic_level") == NATIONAL)
    if national.is_empty() or national["value"][0] is None:
        return None, "no England value"
    unit = str(national["unit"][0])
    kind = _funnel_kind(unit)
    if kind is None:
        return None, "funnel plots are drawn for rates and percentages only"
    las = rows.filter(
        (pl.col("geographic_level") == LOCAL_AUTHORITY)
        & pl.col("denominator").is_not_null()
        & (pl.col("denominator") > 0)
        & pl.col("value").is_not_null()
    )
    small = disclosure.primary_suppression("numerator", threshold)
    hidden = las.filter(small).height
    points = las.filter(~small).select("la_code", "denominator", "value", "numerator")
    note = f"{hidden} LA(s) with a count from 1 to {threshold} are not plotted." if hidden else ""
    if points.is_empty():
        return None, note or "no LA values"
    target = float(national["value"][0])
    # limits drawn from half the smallest LA's size (the funnel's mouth is uninformative
    # below it) to a little past the largest; binomial limits need whole denominators
    low = max(1.0, float(points["denominator"].min()) * 0.5)
    top = float(points["denominator"].max()) * 1.1
    grid = [low + (top - low) * i / 199 for i in range(200)]
    if kind == "proportion":
        grid = sorted({float(round(x)) for x in grid})
    limits = benchmarking.funnel_limits(target, grid, kind=kind)
    highlight = la_code if la_code in points["la_code"].to_list() else None
    if la_code != ENGLAND and highlight is None:
        note = (note + " " if note else "") + f"LA {la_code} is not plotted (small numbers)."
    fig = plots.funnel_plot(
        points,
        limits,
        target,
        highlight=highlight,
        y="value",
        title=title or measure_labels().get(measure, measure),
        xlabel="Children aged 0-17 (population)"
        if kind == "rate"
        else "Number of cases (denominator)",
        ylabel="Rate per 10,000 children" if kind == "rate" else "%",
    )
    return fig, note


def trend_figure(
    series: pl.DataFrame, measures: Sequence[str], title: str, threshold: int = 5
) -> Any:
    """Small multiples of indicator trends: one panel per measure, one line per ``area``
    (:func:`cinresearch.plots.small_multiples`).

    ``series`` has ``census_year, measure, area, value`` and optionally ``numerator`` (values
    whose count is confidential, 1..``threshold``, are left out of the lines)."""
    if "numerator" in series.columns:
        series = mask_small_counts(series, ["value"], "numerator", threshold)
    return plots.small_multiples(
        series.with_columns(pl.col("census_year").cast(pl.Int32)),
        list(measures),
        panel="measure",
        x="census_year",
        y="value",
        group="area",
        titles=measure_labels(),
        title=title,
    )
