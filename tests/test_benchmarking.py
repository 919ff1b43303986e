"""Benchmarking: confidence intervals, funnel limits, ranks, neighbours, benchmark and trend."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from cinresearch import benchmarking as bm
from cinresearch import indicators as ind

Z95 = 1.959963984540054


# --- confidence intervals ------------------------------------------------------------------


def test_byar_known_case():
    # Byar for O = 10 events, 95%: lower = O (1 - 1/(9O) - z/(3 sqrt O))^3,
    # upper = (O+1) (1 - 1/(9(O+1)) + z/(3 sqrt(O+1)))^3; per 10,000 of a 10,000 population.
    lower = 10 * (1 - 1 / 90 - Z95 / (3 * math.sqrt(10))) ** 3
    upper = 11 * (1 - 1 / 99 + Z95 / (3 * math.sqrt(11))) ** 3
    out = bm.rates_with_ci([10], [10_000], method="byar").row(0, named=True)
    assert out["value"] == pytest.approx(10.0)
    assert out["lower"] == pytest.approx(lower, rel=1e-12)
    assert out["upper"] == pytest.approx(upper, rel=1e-12)
    # ... and Byar is within 0.2% of the exact interval (4.7954, 18.3904) at O = 10.
    assert out["lower"] == pytest.approx(4.7954, rel=2e-3)
    assert out["upper"] == pytest.approx(18.3904, rel=2e-3)


def test_exact_poisson_known_cases():
    # Garwood exact 95% limits: O = 10 -> (4.7954, 18.3904); O = 0 -> (0, -ln 0.025 = 3.6889).
    out = bm.rates_with_ci([10, 0], [10_000, 10_000], method="exact")
    assert out["lower"].to_list() == pytest.approx([4.795389, 0.0], abs=1e-5)
    assert out["upper"].to_list() == pytest.approx([18.390356, -math.log(0.025)], abs=1e-5)
    # Scaling: 10 events in 50,000 children is 2 per 10,000.
    scaled = bm.rates_with_ci(10, 50_000, method="exact").row(0, named=True)
    assert scaled["value"] == pytest.approx(2.0)
    assert scaled["lower"] == pytest.approx(4.795389 / 5, abs=1e-5)


def test_wilson_matches_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    counts, totals = np.array([81, 0, 5, 50]), np.array([263, 20, 5, 100])
    out = bm.rates_with_ci(counts, totals, method="wilson")
    lo, hi = proportion_confint(counts, totals, alpha=0.05, method="wilson")
    assert out["lower"].to_list() == pytest.approx(list(100 * lo), abs=1e-9)
    assert out["upper"].to_list() == pytest.approx(list(100 * hi), abs=1e-9)
    assert out["value"][0] == pytest.approx(100 * 81 / 263)


def test_ci_edge_cases():
    out = bm.rates_with_ci([3, 3], [0, None], method="byar")
    assert out["value"].to_list() == [None, None]
    with pytest.raises(ValueError):
        bm.rates_with_ci([1], [10], method="normal")


# --- funnel limits -----------------------------------------------------------------------


def _spiegelhalter(dist, p: float, n: float) -> float:
    """By hand: r = smallest count with F(r) >= p, minus the interpolation alpha."""
    r = 0
    while dist.cdf(r) < p:
        r += 1
    f_r, f_below = dist.cdf(r), dist.cdf(r - 1)
    return (r - (f_r - p) / (f_r - f_below)) / n


def test_poisson_funnel_against_scipy_by_hand():
    target, ns = 50.0, [1_000.0, 20_000.0, 123_456.0]  # rate per 10,000
    out = bm.funnel_limits(target, ns, kind="rate")
    for row, n in zip(out.iter_rows(named=True), ns, strict=True):
        dist = stats.poisson(target / 10_000 * n)
        assert row["denominator"] == n
        assert row["lower95"] == pytest.approx(_spiegelhalter(dist, 0.025, n) * 1e4, rel=1e-9)
        assert row["upper95"] == pytest.approx(_spiegelhalter(dist, 0.975, n) * 1e4, rel=1e-9)
        assert row["lower998"] == pytest.approx(
            max(_spiegelhalter(dist, 0.001, n), 0) * 1e4, rel=1e-9, abs=1e-12
        )
        assert row["upper998"] == pytest.approx(_spiegelhalter(dist, 0.999, n) * 1e4, rel=1e-9)


def test_binomial_funnel_against_scipy_by_hand():
    target, ns = 20.0, [50.0, 500.0]  # percent
    out = bm.funnel_limits(target, ns, kind="proportion")
    for row, n in zip(out.iter_rows(named=True), ns, strict=True):
        dist = stats.binom(int(n), 0.2)
        assert row["lower95"] == pytest.approx(_spiegelhalter(dist, 0.025, n) * 100, rel=1e-9)
        assert row["upper95"] == pytest.approx(_spiegelhalter(dist, 0.975, n) * 100, rel=1e-9)
        assert row["upper998"] == pytest.approx(_spiegelhalter(dist, 0.999, n) * 100, rel=1e-9)


def test_funnel_without_interpolation_is_the_exact_quantile():
    # lambda = 100: the 97.5% quantile of Poisson(100) is the smallest r with F(r) >= 0.975.
    out = bm.funnel_limits(50, [20_000], kind="rate", interpolate=False).row(0, named=True)
    r = stats.poisson(100).ppf(0.975)
    assert stats.poisson(100).cdf(r) >= 0.975 > stats.poisson(100).cdf(r - 1)
    assert out["upper95"] == pytest.approx(r / 20_000 * 1e4)


def test_funnel_shape_and_names():
    out = bm.funnel_limits(20, [0, 10, 100, 10_000], kind="proportion", levels=(0.9, 0.99))
    assert out.columns == ["denominator", "lower90", "upper90", "lower99", "upper99"]
    assert out.row(0) == (0.0, None, None, None, None)
    widths = (out["upper99"] - out["lower99"]).to_list()[1:]
    assert widths == sorted(widths, reverse=True)  # narrows as the denominator grows
    assert (out["lower99"].drop_nulls() <= 20).all()
    assert (out["upper99"].drop_nulls() >= 20).all()
    assert (out["lower99"].drop_nulls() >= 0).all()
    assert (out["upper99"].drop_nulls() <= 100).all()
    # Large denominators approach the normal approximation.
    big = bm.funnel_limits(50, [1e7], kind="rate").row(0, named=True)
    se = math.sqrt(50 / 1e4 / 1e7) * 1e4
    assert big["upper95"] == pytest.approx(50 + Z95 * se, rel=1e-3)


# --- a small indicators frame --------------------------------------------------------------


def make_indicators(
    values: dict[str, float],
    measure: str = "cpp_at_31_march_rate",
    unit: str = "rate_per_10000",
    population: float = 10_000,
    year: int = 2019,
    england: float | None = None,
) -> pl.DataFrame:
    rows = []
    for la, value in values.items():
        scale = {"rate_per_10000": population / 1e4, "percent": population / 100}.get(unit, 1.0)
        num = value * scale
        rows.append(
            {
                "geographic_level": ind.LOCAL_AUTHORITY,
                "region_code": None,
                "la_code": la,
                "census_year": year,
                "measure": measure,
                "breakdown": "total",
                "breakdown_level": "Total",
                "numerator": num,
                "denominator": population,
                "value": value,
                "unit": unit,
            }
        )
    if england is not None:
        rows.append(
            {**rows[0], "geographic_level": ind.NATIONAL, "la_code": None, "value": england}
        )
    return pl.DataFrame(rows, schema=ind.OUTPUT_SCHEMA)


def test_rank_ties_and_quartiles():
    data = make_indicators({"001": 10.0, "002": 20.0, "003": 20.0, "004": 30.0})
    got = {}
    for la in ("001", "002", "003", "004"):
        row = bm.benchmark(data, la, neighbours=[]).row(0, named=True)
        got[la] = (row["rank"], row["n_las"], row["quartile"])
    # Ties share the lowest rank (1, 2, 2, 4); quartile = ceil(4 * rank / n).
    assert got == {"001": (1, 4, 1), "002": (2, 4, 2), "003": (2, 4, 2), "004": (4, 4, 4)}


def test_benchmark_shape_and_values():
    values = {"001": 40.0, "002": 45.0, "003": 50.0, "004": 55.0, "005": 300.0}
    data = pl.concat(
        [
            make_indicators(values, england=60.0),
            make_indicators(
                {k: 20.0 for k in values}, "re_referrals_within_12_months_pct", "percent", 400
            ),
        ]
    )
    out = bm.benchmark(data, "005", neighbours=["001", "002", "003"])
    assert out.columns[:17] == [
        "census_year",
        "la_code",
        "measure",
        "breakdown",
        "breakdown_level",
        "unit",
        "numerator",
        "denominator",
        "la_value",
        "england_value",
        "difference",
        "neighbour_mean",
        "neighbour_median",
        "n_neighbours",
        "rank",
        "n_las",
        "quartile",
    ]
    assert {"lower95", "upper95", "lower998", "upper998", "flag"} <= set(out.columns)
    assert out.height == 2
    rate = out.filter(pl.col("measure") == "cpp_at_31_march_rate").row(0, named=True)
    assert rate["england_value"] == 60.0  # the National row, not a re-computation
    assert rate["difference"] == pytest.approx(240.0)
    assert rate["neighbour_mean"] == pytest.approx(45.0)
    assert rate["neighbour_median"] == pytest.approx(45.0)
    assert rate["n_neighbours"] == 3
    assert rate["rank"] == 5 and rate["quartile"] == 4
    # 300 per 10,000 of 10,000 children vs England 60: far above the 99.8% limit.
    lim = bm.funnel_limits(60.0, [10_000]).row(0, named=True)
    assert rate["upper998"] == pytest.approx(lim["upper998"])
    assert rate["flag"] == "above 99.8%"
    assert rate["outside_99.8"] is True
    pct = out.filter(pl.col("measure") != "cpp_at_31_march_rate").row(0, named=True)
    # No National row for this measure: England rebuilt from LA numerators/denominators.
    assert pct["england_value"] == pytest.approx(20.0)
    assert pct["flag"] == "within"
    assert pct["rank"] == 1 and pct["n_las"] == 5  # all tied


def test_benchmark_flags_below_and_between_limits():
    lim = bm.funnel_limits(100.0, [10_000]).row(0, named=True)
    between = (lim["upper95"] + lim["upper998"]) / 2
    data = make_indicators(
        {"001": lim["lower998"] - 5, "002": between, "003": 100.0}, england=100.0
    )
    flags = {
        la: bm.benchmark(data, la, neighbours=[])["flag"].item() for la in ("001", "002", "003")
    }
    assert flags == {"001": "below 99.8%", "002": "above 95%", "003": "within"}


def test_counts_and_quantiles_get_no_limits():
    data = make_indicators({"001": 5.0, "002": 7.0}, "cpp_starting", "count")
    row = bm.benchmark(data, "001", neighbours=[]).row(0, named=True)
    assert row["lower95"] is None and row["flag"] is None
    assert row["england_value"] == 12.0  # counts: England = sum of LAs


def test_benchmark_on_computed_indicators():
    fixtures = Path(__file__).parent / "fixtures" / "indicators"
    frames = {p.stem: pl.read_csv(p, infer_schema_length=0) for p in fixtures.glob("*.csv")}
    out = ind.compute_indicators(frames, [2018, 2019])
    res = bm.benchmark(out, "901", neighbours={"901": ["902"]})
    own = out.filter(
        (pl.col("la_code") == "901") & (pl.col("census_year") == 2019)
    )  # latest year by default
    assert res.height == own.height
    assert (res["census_year"] == 2019).all()
    ref = res.filter(
        (pl.col("measure") == "referrals_rate") & (pl.col("breakdown") == "total")
    ).row(0, named=True)
    assert ref["la_value"] == pytest.approx(4 / 3600 * 1e4)
    assert ref["england_value"] == pytest.approx(6 / 5040 * 1e4)
    assert ref["neighbour_mean"] == pytest.approx(2 / 1440 * 1e4)


# --- neighbours and trend ---------------------------------------------------------------------


def test_neighbours_from_mapping_and_yaml():
    assert bm.neighbours_for("001", mapping={"001": ["003", "002", "001"]}) == ["003", "002"]
    configured, fallback = bm.load_statistical_neighbours()
    assert configured == {}  # shipped without lists (synthetic LAs have none)
    measure_ids = {m.id for m in ind.load_definitions().measures}
    assert set(fallback["measures"]) <= measure_ids
    assert fallback["k"] == 10


def test_nearest_by_rate_fallback():
    a = make_indicators({"001": 1.0, "002": 2.0, "003": 3.0, "004": 4.0, "005": 10.0})
    b = make_indicators(
        {"001": 5.0, "002": 5.0, "003": 5.0, "004": 5.0, "005": 5.0}, "referrals_rate"
    )
    data = pl.concat([a, b])
    # referrals_rate has no spread and is dropped; 002 and 004 are equally near 003 -> both,
    # ordered by code; 001 next.
    got = bm.neighbours_for(
        "003", indicators=data, k=3, measures=["cpp_at_31_march_rate", "referrals_rate"]
    )
    assert got == ["002", "004", "001"]
    # Default measures come from the YAML; LAs lacking a value are skipped.
    assert bm.neighbours_for("005", indicators=data, k=1) == ["004"]
    with pytest.warns(UserWarning, match="no statistical neighbours"):
        assert bm.neighbours_for("999") == []


def test_trend():
    data = pl.concat(
        [
            make_indicators({"001": 10.0, "002": 20.0}, year=2018, england=15.0),
            make_indicators({"001": 12.0, "002": 22.0}, year=2019, england=16.0),
        ]
    )
    out = bm.trend(data, "001", ["cpp_at_31_march_rate"], neighbours=["002"])
    assert out["census_year"].to_list() == [2018, 2019]
    assert out["la_value"].to_list() == [10.0, 12.0]
    assert out["england_value"].to_list() == [15.0, 16.0]
    assert out["neighbour_mean"].to_list() == [20.0, 22.0]
    assert out["difference"].to_list() == [-5.0, -4.0]
    assert out["change_from_previous"].to_list() == [None, 2.0]
