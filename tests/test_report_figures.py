"""Unit tests for cinresearch.report.figures and the figure helpers it relies on in
cinresearch.plots (percentage ticks, legends)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from cinresearch import plots  # noqa: E402
from cinresearch.report import figures  # noqa: E402


def test_show_figure_and_tidy_percent_axis(monkeypatch):
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    fig = Figure(figsize=(6, 3))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0.0, 0.2], label="a")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_title("A title")
    ax.legend()
    plots.tidy_percent_axis(fig)
    fig.canvas.draw()
    ticks = [t for t in ax.get_yticks() if 0 <= t <= 0.2]
    # every tick is a whole percentage, so a 0-decimal label is exact
    assert all(abs(t * 100 - round(t * 100)) < 1e-9 for t in ticks)
    plots.legend_outside(fig, title="Key")
    assert ax.get_legend().get_title().get_text() == "Key"
    figures.show_figure(fig)
    image = shown[0]
    assert image.data[:4] == b"\x89PNG" and image.width == int(6 * 110)
    assert image.alt == "A title"
