"""Tests for cinresearch.survival against known answers.

Known answers: hand-worked examples (fixtures in tests/fixtures/survival/, arithmetic in the
comments below), statsmodels (SurvfuncRight, CumIncidenceRight, survdiff, GLM), lifelines
(KaplanMeierFitter, AalenJohansenFitter on tie-free data, multivariate_logrank_test) and
planted effects in simulated data.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction as Fr
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from cinresearch import survival as sv

FIXTURES = Path(__file__).parent / "fixtures" / "survival"
Z = stats.norm.ppf(0.975)


def _f(xs):
    return np.array([float(x) for x in xs])


def _loglog(p: float, var: float) -> tuple[float, float]:
    se_t = math.sqrt(var) / (p * abs(math.log(p)))
    return p ** math.exp(Z * se_t), p ** math.exp(-Z * se_t)


@pytest.fixture(scope="module")
def km_hand() -> pl.DataFrame:
    return pl.read_csv(FIXTURES / "km_hand.csv")


@pytest.fixture(scope="module")
def cr_hand() -> pl.DataFrame:
    return pl.read_csv(FIXTURES / "competing_hand.csv")


@pytest.fixture(scope="module")
def lt_hand() -> pl.DataFrame:
    return pl.read_csv(FIXTURES / "left_truncation_hand.csv")


def _tied_data(seed: int, n: int = 400, max_day: int = 60, groups: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "duration": rng.integers(0, max_day, n),
            "event": rng.integers(0, 2, n),
            "event_type": rng.choice([0, 1, 2], n, p=[0.3, 0.4, 0.3]),
            "grp": rng.choice([f"g{i}" for i in range(groups)], n),
        }
    )


# ------------------------------------------------------------------------------------------
# Kaplan–Meier
# ------------------------------------------------------------------------------------------


def test_km_hand_worked(km_hand):
    # t   n  d  c   S(t)
    # 0  10  1  0   9/10                      (event on the origin day counts at t = 0)
    # 2   9  2  1   9/10 * 7/9 = 7/10
    # 3   6  0  1   7/10
    # 5   5  1  1   7/10 * 4/5 = 14/25
    # 7   3  1  0   14/25 * 2/3 = 28/75
    # 8   2  0  1   28/75
    # 10  1  1  0   0
    km = sv.kaplan_meier(km_hand)
    assert km.columns[:7] == ["group", "time", "estimate", "lower", "upper", "at_risk", "events"]
    assert km["group"].unique().to_list() == ["All"]
    assert km["time"].to_list() == [0, 2, 3, 5, 7, 8, 10]
    assert km["at_risk"].to_list() == [10, 9, 6, 5, 3, 2, 1]
    assert km["events"].to_list() == [1, 2, 0, 1, 1, 0, 1]
    assert km["censored"].to_list() == [0, 1, 1, 1, 0, 1, 0]
    S = [Fr(9, 10), Fr(7, 10), Fr(7, 10), Fr(14, 25), Fr(28, 75), Fr(28, 75), Fr(0)]
    np.testing.assert_allclose(km["estimate"].to_numpy(), _f(S), rtol=0, atol=1e-15)
    # Greenwood: var = S^2 * sum d / (n (n - d))
    G = [Fr(1, 90)]
    G.append(G[-1] + Fr(2, 63))
    G.append(G[-1])
    G.append(G[-1] + Fr(1, 20))
    G.append(G[-1] + Fr(1, 6))
    G.append(G[-1])
    se = [float(s) * math.sqrt(float(g)) for s, g in zip(S[:-1], G, strict=True)]
    np.testing.assert_allclose(km["std_error"].to_numpy()[:-1], se, rtol=1e-13)
    # log(-log) CI: S ** exp(±z sqrt(G)/|log S|)
    for i in range(6):
        lo, up = _loglog(float(S[i]), se[i] ** 2)
        assert km["lower"][i] == pytest.approx(lo, rel=1e-12)
        assert km["upper"][i] == pytest.approx(up, rel=1e-12)
    # S = 0 at day 10: CI collapses to 0, Greenwood SE undefined (null)
    assert km["lower"][6] == 0 and km["upper"][6] == 0 and km["std_error"][6] is None


def test_km_evaluated_at_times(km_hand):
    km = sv.kaplan_meier(km_hand, times=[1, 2, 6, 10, 12])
    assert km["time"].to_list() == [1, 2, 6, 10, 12]
    np.testing.assert_allclose(km["estimate"].to_numpy(), [0.9, 0.7, 14 / 25, 0.0, 0.0], atol=1e-15)
    # at risk just before t; events on day t
    assert km["at_risk"].to_list() == [9, 9, 3, 1, 0]
    assert km["events"].to_list() == [0, 2, 0, 1, 0]


def test_km_beyond_follow_up_is_null_unless_curve_ended():
    df = pl.DataFrame({"duration": [1, 2, 3], "event": [1, 0, 0]})
    km = sv.kaplan_meier(df, times=[2, 3, 4])
    assert km["estimate"].to_list()[:2] == pytest.approx([2 / 3, 2 / 3])
    assert km["estimate"][2] is None  # last subject censored on day 3: S(4) not estimable


def test_km_median(km_hand):
    med = sv.median_times(km_hand)
    # first t with S(t) < 0.5 is day 7 (S = 28/75)
    assert med["median"][0] == 7
    assert med["n"][0] == 10 and med["events"][0] == 6
    assert sv.summary is sv.median_times


def test_km_matches_statsmodels_with_ties_and_groups():
    from statsmodels.duration.survfunc import SurvfuncRight

    df = _tied_data(11)
    km = sv.kaplan_meier(df, group="grp")
    med = sv.median_times(df, group="grp")
    assert km["group"].unique(maintain_order=True).to_list() == ["g0", "g1", "g2"]
    for g in ["g0", "g1", "g2"]:
        sub = df.filter(pl.col("grp") == g)
        sf = SurvfuncRight(sub["duration"].to_numpy(), sub["event"].to_numpy())
        ours = km.filter(pl.col("group") == g, pl.col("events") > 0)
        np.testing.assert_allclose(ours["time"].to_numpy(), sf.surv_times)
        np.testing.assert_allclose(ours["estimate"].to_numpy(), sf.surv_prob, atol=1e-9)
        ok = np.isfinite(sf.surv_prob_se)
        np.testing.assert_allclose(ours["std_error"].to_numpy()[ok], sf.surv_prob_se[ok], atol=1e-9)
        np.testing.assert_array_equal(ours["at_risk"].to_numpy(), sf.n_risk)
        np.testing.assert_array_equal(ours["events"].to_numpy(), sf.n_events)
        m = med.filter(pl.col("group") == g)
        assert m["median"][0] == sf.quantile(0.5)
        lo, up = sf.quantile_ci(0.5, method="cloglog")
        assert m["lower"][0] == lo
        assert (m["upper"][0] is None and np.isinf(up)) or m["upper"][0] == up


def test_km_ci_matches_lifelines_exponential_greenwood():
    from lifelines import KaplanMeierFitter

    df = _tied_data(12, groups=1)
    km = sv.kaplan_meier(df)
    kmf = KaplanMeierFitter().fit(df["duration"].to_numpy(), df["event"].to_numpy())
    ci = kmf.confidence_interval_.reindex(km["time"].to_numpy().astype(float))
    inner = ((km["estimate"] > 0) & (km["estimate"] < 1)).to_numpy()
    np.testing.assert_allclose(
        km["lower"].to_numpy()[inner], ci.iloc[:, 0].to_numpy()[inner], atol=1e-9
    )
    np.testing.assert_allclose(
        km["upper"].to_numpy()[inner], ci.iloc[:, 1].to_numpy()[inner], atol=1e-9
    )


def test_km_left_truncation_hand(lt_hand):
    # at risk when entry < t <= duration; entry 0 = from the origin.
    # t=0: A,B,E (C, D not yet entered)        n=3 d=0  S=1
    # t=2: A,B,E                               n=3 d=1  S=2/3
    # t=4: A,B,C (C entered on day 3)          n=3 d=1  S=4/9
    # t=5: B,C   (D enters on day 5: not yet)  n=2 d=1  S=2/9
    # t=6: B,D                                 n=2 c=1  S=2/9
    # t=8: D                                   n=1 d=1  S=0
    km = sv.kaplan_meier(lt_hand, entry="entry")
    assert km["time"].to_list() == [0, 2, 4, 5, 6, 8]
    assert km["at_risk"].to_list() == [3, 3, 3, 2, 2, 1]
    np.testing.assert_allclose(
        km["estimate"].to_numpy(), [1, 2 / 3, 4 / 9, 2 / 9, 2 / 9, 0], atol=1e-15
    )
    # ignoring the delayed entry gives a different (wrong) risk set
    naive = sv.kaplan_meier(lt_hand)
    assert naive["at_risk"].to_list() == [5, 5, 4, 3, 2, 1]


def test_km_left_truncation_matches_statsmodels():
    from statsmodels.duration.survfunc import SurvfuncRight

    rng = np.random.default_rng(13)
    n = 300
    dur = rng.integers(1, 50, n)
    entry = np.where(rng.random(n) < 0.4, np.floor(dur * rng.random(n)), 0).astype(int)
    ev = rng.integers(0, 2, n)
    df = pl.DataFrame({"duration": dur, "event": ev, "entry": entry})
    km = sv.kaplan_meier(df, entry="entry").filter(pl.col("events") > 0)
    sf = SurvfuncRight(dur, ev, entry=entry)
    np.testing.assert_allclose(km["estimate"].to_numpy(), sf.surv_prob, atol=1e-9)
    np.testing.assert_allclose(km["std_error"].to_numpy(), sf.surv_prob_se, atol=1e-9)
    np.testing.assert_array_equal(km["at_risk"].to_numpy(), sf.n_risk)


def test_origin_day_events_and_entry_zero_equivalent():
    df = pl.DataFrame({"duration": [0, 0, 1, 2], "event": [1, 0, 1, 0], "entry": [0, 0, 0, 0]})
    km = sv.kaplan_meier(df)
    # t=0: n=4, d=1, c=1 -> 3/4; t=1: n=2, d=1 -> 3/8; t=2: n=1, censored
    assert km["at_risk"].to_list() == [4, 2, 1]
    np.testing.assert_allclose(km["estimate"].to_numpy(), [0.75, 0.375, 0.375])
    assert km.equals(sv.kaplan_meier(df, entry="entry"))


def test_entry_equal_to_duration_is_excluded_with_warning():
    df = pl.DataFrame({"duration": [3, 5, 7], "event": [1, 1, 0], "entry": [3, 0, 2]})
    with pytest.warns(UserWarning, match="1 row"):
        km = sv.kaplan_meier(df, entry="entry")
    assert km["at_risk"][0] == 1  # only the entry-0 subject is at risk at t=0
    with pytest.raises(ValueError, match="entry"):
        sv.kaplan_meier(df.with_columns(entry=pl.lit(9)), entry="entry")


def test_km_rejects_competing_event_codes(cr_hand):
    with pytest.raises(ValueError, match="cumulative_incidence"):
        sv.kaplan_meier(cr_hand, event="event_type")


def test_km_group_order_follows_enum_and_missing_level():
    df = pl.DataFrame(
        {
            "duration": [1, 2, 3, 4, 5],
            "event": [1, 0, 1, 1, 0],
            "age_band": pl.Series(["5-9", "under 1", None, "under 1", "5-9"]).cast(
                pl.Enum(["under 1", "1-4", "5-9"])
            ),
        }
    )
    km = sv.kaplan_meier(df, group="age_band")
    assert km["group"].unique(maintain_order=True).to_list() == ["under 1", "5-9", "Missing"]


def test_suppress_small_risk_sets(km_hand):
    km = sv.kaplan_meier(km_hand)
    out = sv.suppress_small_risk_sets(km, min_at_risk=5)
    masked = out.filter(pl.col("at_risk") < 5)
    assert masked["time"].to_list() == [7, 8, 10]
    for c in ("estimate", "lower", "upper", "std_error"):
        assert masked[c].null_count() == masked.height
    kept = out.filter(pl.col("at_risk") >= 5)
    assert kept["estimate"].null_count() == 0
    assert out["at_risk"].to_list() == km["at_risk"].to_list()
    pub = sv.suppress_small_risk_sets(km, min_at_risk=5, mask_counts=True)
    assert pub.filter(pl.col("time") >= 7)["at_risk"].null_count() == 3


# ------------------------------------------------------------------------------------------
# Aalen–Johansen
# ------------------------------------------------------------------------------------------


def test_aj_hand_worked(cr_hand):
    # t  n  d1 d2 c  S(t-)  F1(t)                    F2(t)               S(t)
    # 0  8  0  0  0  1      0                        0                   1
    # 1  8  1  0  0  1      1/8                      0                   7/8
    # 2  7  1  1  0  7/8    1/8 + 7/8*1/7 = 1/4      7/8*1/7 = 1/8       5/8
    # 3  5  0  0  1  5/8    1/4                      1/8                 5/8
    # 4  4  1  1  0  5/8    1/4 + 5/8*1/4 = 13/32    1/8 + 5/32 = 9/32   5/16
    # 5  2  0  0  1  5/16   13/32                    9/32                5/16
    # 6  1  0  1  0  5/16   13/32                    9/32 + 5/16 = 19/32 0
    f1 = sv.cumulative_incidence(cr_hand, cause=1)
    f2 = sv.cumulative_incidence(cr_hand, cause=2)
    assert f1["time"].to_list() == [0, 1, 2, 3, 4, 5, 6]
    assert f1["at_risk"].to_list() == [8, 8, 7, 5, 4, 2, 1]
    assert f1["events"].to_list() == [0, 1, 1, 0, 1, 0, 0]
    assert f2["events"].to_list() == [0, 0, 1, 0, 1, 0, 1]
    np.testing.assert_allclose(
        f1["estimate"].to_numpy(),
        _f([0, Fr(1, 8), Fr(1, 4), Fr(1, 4)] + [Fr(13, 32)] * 3),
        atol=1e-15,
    )
    np.testing.assert_allclose(
        f2["estimate"].to_numpy(),
        _f([0, 0, Fr(1, 8), Fr(1, 8), Fr(9, 32), Fr(9, 32), Fr(19, 32)]),
        atol=1e-15,
    )
    # at t=1 the Marubini–Valsecchi variance reduces to the binomial p(1-p)/n = 7/512
    assert f1["std_error"][1] ** 2 == pytest.approx(7 / 512, rel=1e-13)
    assert (f1["std_error"][0], f1["lower"][0], f1["upper"][0]) == (0.0, 0.0, 0.0)
    lo, up = _loglog(1 / 8, 7 / 512)
    assert f1["lower"][1] == pytest.approx(lo) and f1["upper"][1] == pytest.approx(up)
    assert ((f1["lower"] >= 0) & (f1["upper"] <= 1)).all()


def test_aj_plus_km_sum_to_one():
    df = _tied_data(21, n=500).with_columns(
        event_type=pl.when(pl.col("event") == 0).then(0).otherwise(pl.col("event_type") % 3)
    )
    df = df.with_columns(event=(pl.col("event_type") > 0).cast(pl.Int64))
    km = sv.kaplan_meier(df, group="grp")
    total = km["estimate"].fill_null(0).to_numpy().copy()
    for cause in (1, 2):
        total += sv.cumulative_incidence(df, cause=cause, group="grp")["estimate"].to_numpy()
    np.testing.assert_allclose(total, 1.0, atol=1e-12)


def test_aj_without_competing_events_equals_one_minus_km():
    df = _tied_data(22, n=500)
    km = sv.kaplan_meier(df, group="grp")
    aj = sv.cumulative_incidence(df, event="event", cause=1, group="grp")
    np.testing.assert_allclose(aj["estimate"].to_numpy(), 1 - km["estimate"].to_numpy(), atol=1e-12)
    assert aj["at_risk"].to_list() == km["at_risk"].to_list()


def test_aj_matches_statsmodels_with_ties():
    from statsmodels.duration.survfunc import CumIncidenceRight

    df = _tied_data(23, n=400)
    cr = CumIncidenceRight(
        df["duration"].to_numpy().astype(float), df["event_type"].to_numpy().astype(float)
    )
    for cause in (1, 2):
        aj = sv.cumulative_incidence(df, cause=cause)
        # statsmodels' grid is the distinct durations (day 0 is in this data)
        np.testing.assert_allclose(aj["time"].to_numpy(), cr.times)
        np.testing.assert_allclose(aj["estimate"].to_numpy(), cr.cinc[cause - 1], atol=1e-9)
        ok = np.isfinite(cr.cinc_se[cause - 1])
        np.testing.assert_allclose(
            aj["std_error"].to_numpy()[ok], cr.cinc_se[cause - 1][ok], atol=1e-9
        )


def test_aj_matches_lifelines_on_tie_free_data():
    from lifelines import AalenJohansenFitter

    rng = np.random.default_rng(24)
    n = 150
    T = rng.exponential(10, n) + 0.01
    et = rng.choice([0, 1, 2], n)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no jitter warning: the data has no ties
        ajf = AalenJohansenFitter().fit(T, et, event_of_interest=1)
    aj = sv.cumulative_incidence(pl.DataFrame({"duration": T, "event_type": et}), cause=1)
    t = aj["time"].to_numpy()
    np.testing.assert_allclose(
        aj["estimate"].to_numpy(), ajf.cumulative_density_.iloc[:, 0].reindex(t), atol=1e-12
    )
    np.testing.assert_allclose(
        aj["std_error"].to_numpy() ** 2, ajf.variance_.reindex(t), atol=1e-12
    )


def test_aj_left_truncation_hand(lt_hand):
    # risk sets as in test_km_left_truncation_hand; causes: E=1 (t2), A=1 (t4), C=2 (t5), D=1 (t8)
    # F1: t2 += 1 * 1/3 = 1/3; t4 += 2/3 * 1/3 -> 5/9; t8 += 2/9 * 1/1 -> 7/9
    # F2: t5 += 4/9 * 1/2 = 2/9
    f1 = sv.cumulative_incidence(lt_hand, cause=1, entry="entry")
    f2 = sv.cumulative_incidence(lt_hand, cause=2, entry="entry")
    assert f1["at_risk"].to_list() == [3, 3, 3, 2, 2, 1]
    np.testing.assert_allclose(
        f1["estimate"].to_numpy(), [0, 1 / 3, 5 / 9, 5 / 9, 5 / 9, 7 / 9], atol=1e-15
    )
    np.testing.assert_allclose(
        f2["estimate"].to_numpy(), [0, 0, 0, 2 / 9, 2 / 9, 2 / 9], atol=1e-15
    )


def test_aj_times_and_group():
    df = _tied_data(25, n=300)
    aj = sv.cumulative_incidence(df, cause=1, group="grp", times=[0, 30, 90])
    assert aj.height == 9
    # beyond follow-up: null unless the group's all-cause survival already reached 0
    ended = sv.kaplan_meier(
        df.with_columns(any=(pl.col("event_type") > 0).cast(pl.Int64)), event="any", group="grp"
    )
    ended = ended.group_by("group", maintain_order=True).last()["estimate"].to_numpy() == 0
    at90 = aj.filter(pl.col("time") == 90)["estimate"]
    assert at90.is_null().to_list() == list(~ended)
    full = sv.cumulative_incidence(df, cause=1, group="grp")
    at30 = full.filter(pl.col("time") <= 30).group_by("group", maintain_order=True).last()
    np.testing.assert_allclose(
        aj.filter(pl.col("time") == 30)["estimate"].to_numpy(), at30["estimate"].to_numpy()
    )


# ------------------------------------------------------------------------------------------
# log-rank and Gray
# ------------------------------------------------------------------------------------------


def _two_group(seed: int, n: int, rate_ratio: float) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 2, n)
    T = rng.exponential(100 / np.where(g == 1, rate_ratio, 1.0))
    C = rng.uniform(0, 200, n)
    return pl.DataFrame(
        {
            "duration": np.ceil(np.minimum(T, C)).astype(int),
            "event": (T <= C).astype(int),
            "grp": np.where(g == 1, "b", "a"),
        }
    )


def test_logrank_matches_statsmodels_and_lifelines():
    from lifelines.statistics import multivariate_logrank_test
    from statsmodels.duration.survfunc import survdiff

    df = _tied_data(31)
    res = sv.logrank(df, group="grp")
    assert res.columns[:3] == ["statistic", "df", "p"]
    chisq, p = survdiff(df["duration"].to_numpy(), df["event"].to_numpy(), df["grp"].to_numpy())
    assert res["statistic"][0] == pytest.approx(chisq, rel=1e-9)
    assert res["p"][0] == pytest.approx(p, rel=1e-9)
    assert res["df"][0] == 2
    ll = multivariate_logrank_test(
        df["duration"].to_numpy(), df["grp"].to_numpy(), df["event"].to_numpy()
    )
    assert res["statistic"][0] == pytest.approx(ll.test_statistic, rel=1e-9)


def test_logrank_detects_difference_and_not_identity():
    assert sv.logrank(_two_group(32, 600, 2.0), group="grp")["p"][0] < 1e-6
    df = _two_group(33, 600, 1.0)
    base = df.filter(pl.col("grp") == "a")
    same = pl.concat([base, base.with_columns(grp=pl.lit("copy"))])
    assert sv.logrank(same, group="grp")["p"][0] > 0.99
    # a single stratum gives the unstratified test
    strat = sv.logrank(df.with_columns(s=pl.lit(1)), group="grp", strata="s")
    assert strat["statistic"][0] == pytest.approx(sv.logrank(df, group="grp")["statistic"][0])


def test_gray_test_does_not_depend_on_group_labels_or_a_single_stratum():
    # cmprsk uses the first K - 1 groups; the statistic must not depend on which group is left
    # out, and an all-zero entry column or a single stratum changes nothing
    rng = np.random.default_rng(34)
    n = 120
    df = pl.DataFrame(
        {
            "duration": rng.integers(1, 40, n),
            "event_type": rng.choice([0, 1, 2], n),
            "grp": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
        }
    )
    base = sv.gray_test(df, group="grp")["statistic"][0]
    relabelled = df.with_columns(grp=pl.col("grp").replace({"a": "z", "c": "0"}))
    assert sv.gray_test(relabelled, group="grp")["statistic"][0] == pytest.approx(base, rel=1e-10)
    same = df.with_columns(entry=pl.lit(0), s=pl.lit("x"))
    again = sv.gray_test(same, group="grp", entry="entry", strata="s")["statistic"][0]
    assert again == pytest.approx(base, rel=1e-12)


def test_gray_test_behaviour():
    rng = np.random.default_rng(35)
    n = 800
    g = rng.integers(0, 2, n)
    t1 = rng.exponential(np.where(g == 1, 50.0, 150.0))
    t2 = rng.exponential(120.0, n)
    c = rng.uniform(0, 300, n)
    T = np.minimum(np.minimum(t1, t2), c)
    et = np.where(c == T, 0, np.where(t1 == T, 1, 2))
    df = pl.DataFrame(
        {"duration": np.ceil(T).astype(int), "event_type": et, "grp": g.astype(np.int64)}
    )
    res = sv.gray_test(df, cause=1, group="grp")
    assert res.columns[:3] == ["statistic", "df", "p"] and res["df"][0] == 1
    assert res["p"][0] < 1e-6
    base = df.filter(pl.col("grp") == 0)
    same = pl.concat([base, base.with_columns(grp=pl.lit(7, dtype=pl.Int64))])
    assert sv.gray_test(same, cause=1, group="grp")["p"][0] > 0.99
    # with no competing events the score is the log-rank O - E, and under the null Gray's
    # variance agrees closely with the hypergeometric one
    t0 = rng.exponential(100.0, n)
    null = pl.DataFrame(
        {
            "duration": np.ceil(np.minimum(t0, c)).astype(int),
            "event": (t0 <= c).astype(int),
            "grp": g.astype(np.int64),
        }
    )
    lr = sv.logrank(null, group="grp")["statistic"][0]
    gt = sv.gray_test(null, event="event", group="grp")["statistic"][0]
    assert gt == pytest.approx(lr, rel=0.03)


# ------------------------------------------------------------------------------------------
# Cox and discrete-time models
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def planted() -> pl.DataFrame:
    """Exponential data, n = 4000: HR 2.0 for disabled, 1.5 for under 1 (vs any other band)."""
    rng = np.random.default_rng(41)
    n = 4000
    disabled = rng.random(n) < 0.3
    age = rng.choice(["under 1", "1-4", "5-9", "10-15"], n, p=[0.2, 0.25, 0.35, 0.2])
    la = rng.choice([f"{i:03d}" for i in range(40)], n)
    rate = (1 / 1500) * np.where(disabled, 2.0, 1.0) * np.where(age == "under 1", 1.5, 1.0)
    T = rng.exponential(1 / rate)
    C = rng.uniform(0, 1500, n)
    return pl.DataFrame(
        {
            "duration": np.ceil(np.minimum(T, C)).astype(int),
            "event": (T <= C).astype(int),
            "disabled": disabled,
            "age_band": age,
            "la_code": la,
        }
    )


@pytest.fixture(scope="module")
def planted_fit(planted: pl.DataFrame) -> sv.CoxResult:
    return sv.cox_fit(planted, covariates=["disabled", "age_band"])


def test_cox_recovers_planted_hazard_ratio(planted, planted_fit):
    t = planted_fit.table
    assert t.columns[:5] == ["term", "hazard_ratio", "lower", "upper", "p"]
    row = t.filter(pl.col("term") == "disabled")
    assert row["lower"][0] < 2.0 < row["upper"][0]
    u1 = t.filter(pl.col("term") == "age_band[under 1]")
    assert u1["lower"][0] < 1.5 < u1["upper"][0]
    # default reference: the most frequent level (5-9)
    assert planted_fit.reference == {"age_band": "5-9"}
    assert set(t["term"]) == {"disabled", "age_band[under 1]", "age_band[1-4]", "age_band[10-15]"}
    assert 0.5 < planted_fit.concordance < 1
    assert planted_fit.n == 4000 and planted_fit.events == int(planted["event"].sum())
    ph = planted_fit.ph_test
    assert ph.columns == ["term", "statistic", "df", "p"] and set(ph["term"]) == set(t["term"])


def test_cox_reference_and_cluster(planted, planted_fit):
    ref = sv.cox(planted, covariates=["disabled", "age_band"], reference={"age_band": "under 1"})
    assert "age_band[5-9]" in ref["term"].to_list()
    assert "age_band[under 1]" not in ref["term"].to_list()
    assert ref.filter(pl.col("term") == "age_band[5-9]")["reference"][0] == "under 1"
    cl = sv.cox(planted, covariates=["disabled", "age_band"], cluster="la_code")
    base = planted_fit.table
    np.testing.assert_allclose(cl["coef"].to_numpy(), base["coef"].to_numpy(), rtol=1e-8)
    assert not np.allclose(cl["se"].to_numpy(), base["se"].to_numpy(), rtol=1e-3)
    with pytest.raises(ValueError, match="reference level"):
        sv.cox(planted, covariates=["age_band"], reference={"age_band": "16+"})


def test_cox_delayed_entry_origin_convention(planted):
    small = planted.head(600).with_columns(entry=pl.lit(0))
    plain = sv.cox(small, covariates=["disabled"])
    with_zero_entry = sv.cox(small, covariates=["disabled"], entry="entry")
    np.testing.assert_allclose(
        with_zero_entry["coef"].to_numpy(), plain["coef"].to_numpy(), rtol=1e-9
    )
    late = small.with_columns(entry=(pl.col("duration") // 2))
    moved = sv.cox(late, covariates=["disabled"], entry="entry")
    assert moved["coef"][0] != pytest.approx(plain["coef"][0], rel=1e-6)


def test_cause_specific_cox_censors_other_causes(planted):
    rng = np.random.default_rng(42)
    cause = np.where(planted["event"].to_numpy() == 1, rng.choice([1, 2], planted.height), 0)
    df = planted.with_columns(event_type=pl.Series(cause))
    cs = sv.cause_specific_cox(df, cause=1, covariates=["disabled"])
    manual = sv.cox(
        df.with_columns(e1=(pl.col("event_type") == 1).cast(pl.Int64)),
        event="e1",
        covariates=["disabled"],
    )
    assert cs.equals(manual)


def test_discrete_time_logit_recovers_planted_effect(planted):
    full = sv.discrete_time_logit(
        planted, covariates=["disabled", "age_band"], interval=30, include_baseline=True
    )
    assert full["term"][0].startswith("period[1")
    res = full.filter(~pl.col("term").str.starts_with("period["))
    assert res.columns[:5] == ["term", "odds_ratio", "lower", "upper", "p"]
    d = res.filter(pl.col("term") == "disabled")
    # monthly hazard ~2-4%, so the odds ratio is close to the planted hazard ratio 2.0
    assert 1.7 < d["odds_ratio"][0] < 2.35 and d["lower"][0] < 2.0 < d["upper"][0] * 1.05
    u1 = res.filter(pl.col("term") == "age_band[under 1]")
    assert 1.2 < u1["odds_ratio"][0] < 1.9


def _person_periods(df: pl.DataFrame, interval: int) -> list[tuple]:
    """Plain-Python person-period expansion (the documented rule) for cross-checking."""
    rows = []
    for dur, ev, x, cl, entry in df.select("duration", "event", "x", "cl", "entry").iter_rows():
        last = max(1, math.ceil(dur / interval)) if ev == 1 else math.ceil(dur / interval)
        first = math.floor(entry / interval) + 1 if entry > 0 else 1
        for j in range(first, last + 1):
            rows.append((j, x, int(ev == 1 and j == last), cl))
    return rows


def test_discrete_time_logit_matches_row_level_glm():
    import statsmodels.api as sm

    rng = np.random.default_rng(43)
    n = 300
    x = rng.normal(size=n)
    T = rng.exponential(200 * np.exp(-0.5 * x))
    C = rng.uniform(0, 400, n)
    df = pl.DataFrame(
        {
            "duration": np.ceil(np.minimum(T, C)).astype(int),
            "event": (T <= C).astype(int),
            "x": x,
            "cl": rng.integers(0, 12, n).astype(str),
        }
    ).with_columns(
        entry=pl.when(pl.Series(rng.random(n) < 0.3))
        .then((pl.col("duration") * 0.5).floor().cast(pl.Int64))
        .otherwise(0)
    )
    rows = _person_periods(df, 30)
    period = np.array([r[0] for r in rows], dtype=float)
    X = np.column_stack([np.ones(len(rows)), period, [r[1] for r in rows]])
    y = np.array([r[2] for r in rows])
    ref = sm.GLM(y, X, family=sm.families.Binomial()).fit()
    ours = sv.discrete_time_logit(
        df, covariates=["x"], interval=30, baseline="linear", include_baseline=True, entry="entry"
    )
    np.testing.assert_allclose(ours["coef"].to_numpy(), ref.params, rtol=1e-6)
    np.testing.assert_allclose(ours["se"].to_numpy(), ref.bse, rtol=1e-6)
    # cluster-robust: sandwich with the G/(G-1) factor
    groups = np.unique([r[3] for r in rows], return_inverse=True)[1]
    refc = sm.GLM(y, X, family=sm.families.Binomial()).fit(
        cov_type="cluster", cov_kwds={"groups": groups, "use_correction": False}
    )
    G = len(np.unique(groups))
    oc = sv.discrete_time_logit(
        df,
        covariates=["x"],
        interval=30,
        baseline="linear",
        include_baseline=True,
        cluster="cl",
        entry="entry",
    )
    np.testing.assert_allclose(oc["se"].to_numpy(), refc.bse * math.sqrt(G / (G - 1)), rtol=1e-6)
    np.testing.assert_allclose(oc["coef"].to_numpy(), ours["coef"].to_numpy(), rtol=1e-10)


def test_cox_engine_ignores_a_stratum_without_events():
    """A stratum with no events changes nothing (R's coxph gives the same fit with or without
    it); the engine used to fail on one."""
    from cinresearch.survival.coxph import fit_cox

    rng = np.random.default_rng(5)
    n = 90
    X = rng.normal(size=(n, 2))
    stop = rng.integers(1, 25, n).astype(float)
    event = (rng.random(n) < 0.6).astype(int)
    strata = np.repeat([0, 1, 2], 30)
    event[strata == 2] = 0
    cluster = np.arange(n) // 2
    with_empty = fit_cox(X, stop, event, strata=strata, cluster=cluster)
    keep = strata < 2
    without = fit_cox(X[keep], stop[keep], event[keep], strata=strata[keep], cluster=cluster[keep])
    np.testing.assert_allclose(with_empty.coef, without.coef, rtol=1e-12)
    for name in ("var", "robust_var"):
        if getattr(with_empty, name, None) is not None:
            np.testing.assert_allclose(
                getattr(with_empty, name), getattr(without, name), rtol=1e-10
            )
