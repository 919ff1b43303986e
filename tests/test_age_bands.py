"""One age rule: the DfE age bands are listed once (cinresearch.codes.AGE_BANDS) and every place
that puts a child in a band — the journeys' episodes, the official indicators, cohorts, the
synthetic generator — puts the same child in the same band on the same date.

The dates are chosen at the edges of the rule: the day before and the day of a birthday at each
band boundary (1, 5, 10, 16), a 29 February birthday in a non-leap year, a child referred before
birth, a child known only by an expected birth date (before and after it), and no date at all.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from cinresearch import cohorts, indicators
from cinresearch.codes import AGE_BANDS
from cinresearch.journeys.episodes import age_band_expr, age_in_years
from cinresearch.report.text import _AGE_PHRASES
from cinresearch.synth import dates as synth_dates
from cinresearch.synth.simulate import age_band_index

# (birth_date, expected_birth_date, on, band) — the band worked out by hand
CASES = [
    (date(2020, 6, 1), None, date(2020, 5, 31), "unborn"),
    (date(2020, 6, 1), None, date(2020, 6, 1), "under 1"),
    (date(2020, 6, 1), None, date(2021, 5, 31), "under 1"),
    (date(2020, 6, 1), None, date(2021, 6, 1), "1-4"),
    (date(2015, 6, 1), None, date(2020, 5, 31), "1-4"),
    (date(2015, 6, 1), None, date(2020, 6, 1), "5-9"),
    (date(2010, 6, 1), None, date(2020, 5, 31), "5-9"),
    (date(2010, 6, 1), None, date(2020, 6, 1), "10-15"),
    (date(2004, 6, 1), None, date(2020, 5, 31), "10-15"),
    (date(2004, 6, 1), None, date(2020, 6, 1), "16+"),
    (date(2001, 6, 1), None, date(2020, 6, 1), "16+"),  # 19: still 16+
    (date(2016, 2, 29), None, date(2021, 2, 28), "1-4"),  # 5th birthday falls on 1 March
    (date(2016, 2, 29), None, date(2021, 3, 1), "5-9"),
    (None, date(2020, 6, 1), date(2020, 5, 31), "unborn"),  # expected date still ahead
    (None, date(2020, 6, 1), date(2021, 6, 1), "1-4"),  # aged from the expected date
    (date(2020, 6, 1), date(2020, 7, 1), date(2020, 6, 15), "under 1"),  # birth date wins
    (None, None, date(2020, 6, 1), None),
]


def _frame() -> pl.DataFrame:
    birth, expected, on, _ = zip(*CASES, strict=True)
    return pl.DataFrame(
        {"birth": birth, "expected": expected, "on": on},
        schema={"birth": pl.Date, "expected": pl.Date, "on": pl.Date},
    )


def _hand() -> list[str | None]:
    return [band for *_, band in CASES]


def test_the_bands_are_listed_once():
    assert AGE_BANDS == ("unborn", "under 1", "1-4", "5-9", "10-15", "16+")
    assert cohorts.AGE_BANDS is AGE_BANDS
    assert list(_AGE_PHRASES) == list(AGE_BANDS)  # the report's words for each band


def test_journeys_band_by_hand():
    frame = _frame()
    age = age_in_years(pl.col("birth"), pl.col("on"))
    out = frame.select(age_band_expr(age, pl.col("birth"), pl.col("expected"), pl.col("on")))
    assert out.to_series().to_list() == _hand()


def test_indicators_and_cohorts_use_the_same_rule():
    frame = _frame()
    ind = frame.select(indicators.age_band_expr(pl.col("birth"), pl.col("on"), pl.col("expected")))
    # indicators call a child with no date "unknown"; the journeys leave the band null
    assert ind.to_series().to_list() == [b or "unknown" for b in _hand()]
    coh = frame.select(cohorts.age_band_expr("on", "birth", "expected"))
    assert coh.to_series().cast(pl.String).to_list() == _hand()


def test_the_generator_uses_the_same_rule():
    """The generator bands children it has birth dates for (no expected-only children)."""
    known = [(b, on, band) for b, e, on, band in CASES if b is not None and e is None]
    birth = np.array([synth_dates.day(b) for b, _, _ in known])
    on = np.array([synth_dates.day(d) for _, d, _ in known])
    bands = [AGE_BANDS[i] for i in age_band_index(birth, on)]
    assert bands == [band for *_, band in known]
