"""Tests for cinresearch.plots: every figure builds under Agg, disclosure rules hold."""

from __future__ import annotations

import io
from datetime import date, timedelta

import matplotlib

matplotlib.use("Agg")

import matplotlib as mpl  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from cinresearch import plots  # noqa: E402
from cinresearch import survival as sv  # noqa: E402


def _texts(fig: Figure) -> list[str]:
    """All text drawn in a figure (renders first so tick labels exist)."""
    fig.savefig(io.BytesIO(), format="png")
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


@pytest.fixture(scope="module")
def cohort() -> pl.DataFrame:
    rng = np.random.default_rng(5)
    n = 120
    band = rng.choice(["under 1", "1-4", "5-9"], n, p=[0.15, 0.45, 0.4])
    T = rng.exponential(np.where(band == "under 1", 90, 180))
    C = rng.uniform(0, 365, n)
    return pl.DataFrame(
        {
            "duration": np.ceil(np.minimum(T, C)).astype(int),
            "event": (T <= C).astype(int),
            "event_type": np.where(T <= C, rng.choice([1, 2], n), 0),
            "age_band": band,
            "disabled": rng.random(n) < 0.3,
        }
    )


def test_house_style_palette_and_context():
    assert len(plots.PALETTE) == 8 and plots.PALETTE[0] == plots.OKABE_ITO["blue"]
    with mpl.rc_context():
        plots.apply_house_style()
        assert mpl.rcParams["axes.spines.top"] is False
        assert mpl.rcParams["axes.spines.right"] is False
    with plots.house_style():
        assert mpl.rcParams["axes.prop_cycle"].by_key()["color"] == plots.PALETTE
    assert plots.FIGSIZE["full"][0] <= 6.5  # fits an A4 text width


def test_format_count():
    assert [plots.format_count(n) for n in (0, 1, 9, 10, 12345)] == [
        "0",
        "<10",
        "<10",
        "10",
        "12,345",
    ]
    assert plots.format_count(None) == "<10"


def test_plot_survival_km_and_cif(cohort):
    km = sv.kaplan_meier(cohort, group="age_band")
    fig = plots.plot_survival(km, title="Time to event", at_risk_times=[0, 90, 180, 270])
    assert isinstance(fig, Figure)
    texts = _texts(fig)
    assert "Number at risk" in texts and "Time to event" in texts
    assert "Proportion without event" in texts
    cif = sv.cumulative_incidence(cohort, cause=1, group="age_band")
    fig2 = plots.plot_survival(cif)
    assert "Cumulative incidence" in _texts(fig2)


def test_plot_survival_into_existing_axes(cohort):
    fig = Figure()
    ax = fig.add_subplot()
    out = plots.plot_survival(sv.kaplan_meier(cohort), ax=ax, at_risk_times=[0, 100])
    assert out is fig
    assert len(fig.axes) == 2  # curve + at-risk table


def test_at_risk_table_masks_small_numbers():
    # 14 subjects: at risk 14 at day 0, 8 at day 6, 4 at day 8, 0 at day 20
    df = pl.DataFrame(
        {
            "duration": [1, 2, 3, 4, 5, 5, 6, 6, 7, 7, 8, 9, 10, 11],
            "event": [1, 0, 1, 1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1],
        }
    )
    km = sv.kaplan_meier(df)
    fig = plots.plot_survival(km, at_risk_times=[0, 6, 8, 20])
    _texts(fig)
    table = [t.get_text() for t in fig.axes[1].texts]
    assert table == ["14", "<10", "<10", "0"]  # a true zero is not disclosive
    # the curve itself is not drawn where fewer than 10 are at risk
    ax = fig.axes[0]
    line = ax.get_lines()[0]
    x, y = line.get_xdata(), line.get_ydata()
    drawn = np.asarray(x)[np.isfinite(np.asarray(y, dtype=float))]
    assert drawn.max() == 5  # last row with >= 10 at risk


def test_forest_plot(cohort):
    table = sv.cox(cohort, covariates=["age_band", "disabled"])
    fig = plots.forest_plot(table, title="Hazard ratios")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert any(np.allclose(line.get_xdata(), 1.0) for line in ax.get_lines())
    texts = _texts(fig)
    assert "age_band[under 1]" in texts and "disabled" in texts
    odds = table.rename({"hazard_ratio": "odds_ratio"})
    assert isinstance(plots.forest_plot(odds), Figure)


def test_funnel_plot():
    rng = np.random.default_rng(1)
    points = pl.DataFrame(
        {
            "la_code": [f"{800 + i}" for i in range(30)],
            "denominator": rng.integers(500, 20000, 30),
            "rate": rng.normal(500, 40, 30),
        }
    )
    points = points.with_columns(
        rate=pl.when(pl.col("la_code") == "805").then(900.0).otherwise(pl.col("rate"))
    )
    den = np.linspace(400, 21000, 50)
    sd = 500 * np.sqrt(1 / den) * 10
    limits = pl.DataFrame(
        {
            "denominator": den,
            "lower95": 500 - 1.96 * sd,
            "upper95": 500 + 1.96 * sd,
            "lower998": 500 - 3.09 * sd,
            "upper998": 500 + 3.09 * sd,
        }
    )
    fig = plots.funnel_plot(points, limits, target=500, highlight="812", title="Funnel")
    texts = _texts(fig)
    assert "812" in texts  # highlighted LA is labelled
    assert "805" in texts  # an outlier beyond 99.8% is labelled
    with pytest.raises(ValueError, match="highlight"):
        plots.funnel_plot(points, limits, target=500, highlight="999")


def _events() -> pl.DataFrame:
    rows = []
    start = date(2021, 4, 1)
    for c in range(25):
        cid = f"c9f1a{c:03d}deadbeef"
        ep = f"ep{c:03d}"
        d0 = start + timedelta(days=7 * c)
        rows += [
            (cid, "801", ep, d0, "referral"),
            (cid, "801", ep, d0 + timedelta(days=3), "assessment_start"),
            (cid, "801", ep, d0 + timedelta(days=30), "assessment_authorised"),
        ]
        if c % 3 == 0:
            rows += [
                (cid, "801", ep, d0 + timedelta(days=10), "s47_start"),
                (cid, "801", ep, d0 + timedelta(days=24), "icpc"),
                (cid, "801", ep, d0 + timedelta(days=24), "cpp_start"),
                (cid, "801", ep, d0 + timedelta(days=100), "cpp_review"),
                (cid, "801", ep, d0 + timedelta(days=200), "cpp_end"),
            ]
        if c % 4 == 1:
            rows += [
                (cid, "801", ep, d0 + timedelta(days=35), "cin_plan_start"),
                (cid, "801", ep, d0 + timedelta(days=150), "cin_plan_end"),
            ]
        if c % 5 == 0:
            rows += [
                (cid, "801", None, d0 + timedelta(days=60), "entered_care"),
                (cid, "801", None, d0 + timedelta(days=90), "left_care"),
                (cid, "802", None, d0 + timedelta(days=120), "moved_la"),
            ]
        if c % 2 == 1:
            rows.append((cid, "801", ep, d0 + timedelta(days=220), "closure"))
    return pl.DataFrame(
        rows,
        schema={
            "child_id": pl.String,
            "la_code": pl.String,
            "episode_id": pl.String,
            "date": pl.Date,
            "event": pl.String,
        },
        orient="row",
    ).with_columns(
        seq=pl.int_range(pl.len()).over("child_id").cast(pl.Int32),
        attrs=pl.lit("{}"),
    )


def test_timeline_swimlane_labels_children_without_ids():
    events = _events()
    fig = plots.timeline_swimlane(events, max_children=12)
    texts = _texts(fig)
    ax = fig.axes[0]
    lanes = [t.get_text() for t in ax.get_yticklabels()]
    assert lanes == [f"Child {i}" for i in range(1, 13)]
    ids = events["child_id"].unique().to_list()
    svg = io.StringIO()
    fig.savefig(svg, format="svg")
    drawn = svg.getvalue() + "\n".join(texts)
    for cid in ids:
        assert cid not in drawn
        assert cid[:5] not in drawn


def test_line_and_bar_charts():
    trend = pl.DataFrame(
        {
            "census_year": [2019, 2020, 2021, 2019, 2020, 2021],
            "rate": [500.0, None, 520.0, 320.0, 330.0, 335.0],
            "area": ["LA", "LA", "LA", "England", "England", "England"],
        }
    )
    assert isinstance(plots.line_chart(trend, "census_year", "rate", group="area"), Figure)
    assert isinstance(plots.bar_chart(trend, "area", "rate", group="census_year"), Figure)
    fig = plots.bar_chart(
        trend.filter(pl.col("census_year") == 2021),
        "area",
        "rate",
        value_labels=True,
        horizontal=True,
    )
    assert "520.0" in _texts(fig)
