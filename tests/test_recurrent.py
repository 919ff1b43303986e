"""Tests for cinresearch.recurrent: re-referral as a recurrent event.

* Against R (no R needed to run): ``tests/fixtures/recurrent/r/recurrent_reference.R`` wrote a
  200-child counting-process data set and what R's ``survival`` package computes from it
  (versions in ``versions.json``): the Nelson–Aalen mean cumulative function and its robust
  standard error (``survfit(..., id = id)$cumhaz``, ``$std.chaz``), the Ghosh–Lin function
  from survfit's curves and influence values, Andersen–Gill and PWP gap-time Cox models with
  clustered robust standard errors. Tolerance 1e-6 absolute.
* Hand-worked: a three-child mean cumulative function and its variance; the counting-process
  rows of a hand-made episodes table (``tests/fixtures/recurrent``), every time counted as
  days between the fixture's dates.
* Brute force: the variance is the sum of squared derivatives of the estimate with respect to
  each child's weight, taken here by complex-step differentiation of a weighted estimator, on
  frames with delayed entry and gaps that the R data does not have.
* Planted effects (slow): on generated data, the Ghosh–Lin mean equals the generator's own
  count of re-referrals, and the Andersen–Gill (proportional-means) model recovers the planted
  LA re-referral multipliers and the ×0.3 after a special guardianship / child arrangements
  order.
"""

from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from scipy import stats  # noqa: E402

from cinresearch import recurrent as rc  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "recurrent"
R_DIR = FIXTURES / "r"
TOL = 1e-6
TEXT = {c: pl.String for c in ("child_id", "la_code", "upn_hash", "referral_source", "attrs")}


# --------------------------------------------------------------------------------------------
# R reference
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def r_data() -> pl.DataFrame:
    return pl.read_csv(R_DIR / "recurrent_data.csv").with_columns(
        subject_id=pl.col("id").cast(pl.String)
    )


def test_reference_records_versions() -> None:
    v = json.loads((R_DIR / "versions.json").read_text())
    assert v["R"].startswith("R version") and v["survival"]


def test_reference_data_exercise_ties_and_terminal_events(r_data: pl.DataFrame) -> None:
    events = r_data.filter(pl.col("event") == 1)
    assert events.height - events["tstop"].n_unique() > 100  # tied re-referral days
    assert r_data["terminal"].sum() > 30
    both = r_data.filter((pl.col("event") == 1) & (pl.col("terminal") == 1))
    assert both.height >= 1  # a terminal event on the day of a referral


@pytest.mark.parametrize("method", rc.METHODS)
def test_mean_cumulative_equals_r(r_data: pl.DataFrame, method: str) -> None:
    ref = pl.read_csv(R_DIR / "mcf_reference.csv").filter(pl.col("method") == method)
    ours = pl.concat(
        [
            rc.mean_cumulative(r_data, method=method),
            rc.mean_cumulative(r_data, "grp", method=method),
        ]
    )
    joined = ref.join(ours, on=["group", "time"], how="left", suffix="_py")
    assert joined.height == ref.height and joined["estimate_py"].null_count() == 0
    np.testing.assert_allclose(joined["estimate_py"], joined["estimate"], rtol=0, atol=TOL)
    np.testing.assert_allclose(joined["std_error_py"], joined["std_error"], rtol=0, atol=TOL)
    assert (joined["at_risk"] == joined["n_risk"]).all()
    assert (joined["events"] == joined["n_event"]).all()
    # every row of ours is at t = 0 or at a time R reports
    assert ours.filter(pl.col("time") > 0).height == ref.height


def test_the_two_methods_differ_by_far_more_than_the_tolerance(r_data: pl.DataFrame) -> None:
    gl = rc.mean_cumulative(r_data, method="ghosh_lin")
    na = rc.mean_cumulative(r_data, method="nelson_aalen")
    gap = (na["estimate"] - gl["estimate"]).to_numpy()
    assert gap.min() >= -1e-12  # terminal events only lower the Ghosh–Lin mean
    assert gap.max() > 1000 * TOL


MODELS = {
    "andersen_gill": (rc.andersen_gill_fit, ["x", "z", "grp"], {}),
    "pwp_gap": (rc.pwp_gap_fit, ["x", "z", "grp"], {}),
    "pwp_gap_max3": (rc.pwp_gap_fit, ["x", "z", "grp"], {"max_enum": 3}),
    "pwp_gap_max3_by_grp": (rc.pwp_gap_fit, ["x", "z"], {"max_enum": 3, "strata": "grp"}),
    "andersen_gill_by_grp": (rc.andersen_gill_fit, ["x", "z"], {"strata": "grp"}),
}


@pytest.mark.parametrize("model", list(MODELS))
def test_models_equal_r_coxph(r_data: pl.DataFrame, model: str) -> None:
    ref = pl.read_csv(R_DIR / "model_reference.csv").filter(pl.col("model") == model)
    fitter, covariates, options = MODELS[model]
    fit = fitter(
        r_data, covariates, reference={"grp": "a"} if "grp" in covariates else None, **options
    )
    assert fit.table["term"].to_list() == ref["term"].str.replace("grpb", "grp[b]").to_list()
    np.testing.assert_allclose(fit.table["coef"], ref["coef"], rtol=0, atol=TOL)
    np.testing.assert_allclose(fit.table["se"], ref["robust_se"], rtol=0, atol=TOL)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.model.var)), ref["se"], rtol=0, atol=TOL)
    assert fit.log_likelihood == pytest.approx(ref["loglik"][0], abs=TOL)
    assert fit.events == ref["n_events"][0]
    # clustering on the child matters: robust and model SEs differ by far more than TOL
    assert np.abs(ref["robust_se"] - ref["se"]).max() > 100 * TOL


def test_tidy_tables_name_their_ratio(r_data: pl.DataFrame) -> None:
    ag = rc.andersen_gill(r_data, ["x"])
    pwp = rc.pwp_gap(r_data, ["x"])
    assert ag.columns[:2] == ["term", "rate_ratio"]
    assert pwp.columns[:2] == ["term", "hazard_ratio"]
    assert ag["rate_ratio"][0] == pytest.approx(np.exp(ag["coef"][0]))


def test_pwp_gap_restarts_the_clock_within_split_rows(r_data: pl.DataFrame) -> None:
    """Splitting every gap in two (as a time-varying covariate would) changes nothing."""
    long = r_data.filter(pl.col("gap") >= 2)
    cut = pl.col("tstart") + pl.col("gap") // 2
    first = long.with_columns(tstop=cut, event=pl.lit(0, pl.Int64))
    second = long.with_columns(tstart=cut)
    split = pl.concat([r_data.filter(pl.col("gap") < 2), first, second])
    assert split.height > r_data.height + 500
    whole = rc.pwp_gap(r_data, ["x", "z"])
    parts = rc.pwp_gap(split, ["x", "z"])
    np.testing.assert_allclose(parts["coef"], whole["coef"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(parts["se"], whole["se"], rtol=0, atol=1e-9)


def test_models_reject_empty_intervals(r_data: pl.DataFrame) -> None:
    bad = r_data.with_columns(tstop=pl.when(pl.col("id") == 1).then(0).otherwise("tstop"))
    with pytest.raises(ValueError, match="tstop <= tstart"):
        rc.andersen_gill(bad, ["x"])
    with pytest.raises(ValueError, match="max_enum"):
        rc.pwp_gap(r_data, ["x"], max_enum=0)


# --------------------------------------------------------------------------------------------
# Hand-worked mean cumulative function
# --------------------------------------------------------------------------------------------


@pytest.fixture()
def three_children() -> pl.DataFrame:
    """A: re-referred on day 2, censored on day 6. B: dies on day 1. C: re-referred on days
    3 and 4, censored on day 6."""
    return pl.DataFrame(
        {
            "subject_id": ["A", "A", "B", "C", "C", "C"],
            "tstart": [0, 2, 0, 0, 3, 4],
            "tstop": [2, 6, 1, 3, 4, 6],
            "event": [1, 0, 0, 1, 1, 0],
            "terminal": [0, 0, 1, 0, 0, 0],
        }
    )


def test_nelson_aalen_by_hand(three_children: pl.DataFrame) -> None:
    # risk sets: day 1 {A,B,C}; days 2, 3, 4, 6 {A,C}. dLambda = 1/2 on days 2, 3, 4.
    # psi_i(t) = sum_u (dN_i - dLambda)/Y: day 2 A +1/4, C -1/4; day 3 A -1/4, C +1/4; day 4
    # A -1/4, C +1/4. Variance: day 2 1/8, day 3 0, day 4 1/8.
    c = rc.mean_cumulative(three_children, method="nelson_aalen")
    assert c["time"].to_list() == [0, 1, 2, 3, 4, 6]
    np.testing.assert_allclose(c["estimate"], [0, 0, 0.5, 1.0, 1.5, 1.5], atol=1e-12)
    np.testing.assert_allclose(c["std_error"], np.sqrt([0, 0, 1 / 8, 0, 1 / 8, 1 / 8]), atol=1e-12)
    assert c["at_risk"].to_list() == [3, 3, 2, 2, 2, 2]
    assert c["events"].to_list() == [0, 0, 1, 1, 1, 0]
    assert c["terminal"].to_list() == [0, 1, 0, 0, 0, 0]
    assert c["censored"].to_list() == [0, 0, 0, 0, 0, 2]


def test_ghosh_lin_by_hand(three_children: pl.DataFrame) -> None:
    # S = 2/3 from day 1 (B dies); mu = 2/3 * 1/2 per re-referral day: 1/3, 2/3, 1.
    # Variance on day 2: eps(1) = (dD_i - Y_i D/Y)/(Y - D): B 1/3, A and C -1/6;
    # psi_i(2) = S(2-) delta_i(2) - mu(2) eps_i(1): A 2/3*1/4 + 1/3*1/6 = 2/9,
    # C -2/3*1/4 + 1/18 = -1/9, B -1/3*1/3 = -1/9; sum of squares 6/81 = 2/27.
    # Day 3: delta_A = -1/4, delta_C = +1/4 cancel the day-2 terms; psi = -mu(3) eps(1):
    # A 1/9, C 1/9, B -2/9; again 2/27. Day 4: A 2/3*(1/4-1/4-1/4) + 1/6 = 0,
    # C 2/3*(-1/4+1/4+1/4) + 1/6 = 1/3, B -1/3; 2/9.
    c = rc.mean_cumulative(three_children)
    np.testing.assert_allclose(c["estimate"], [0, 0, 1 / 3, 2 / 3, 1, 1], atol=1e-12)
    np.testing.assert_allclose(
        c["std_error"], np.sqrt([0, 0, 2 / 27, 2 / 27, 2 / 9, 2 / 9]), atol=1e-12
    )
    lower, upper = c["lower"][2], c["upper"][2]
    z = stats.norm.ppf(0.975)
    factor = np.exp(z * np.sqrt(2 / 27) / (1 / 3))
    assert (lower, upper) == pytest.approx((1 / 3 / factor, 1 / 3 * factor))


def test_mean_cumulative_at_requested_times(three_children: pl.DataFrame) -> None:
    c = rc.mean_cumulative(three_children, times=[0, 2.5, 4, 7])
    assert c["time"].to_list() == [0, 2.5, 4, 7]
    assert c["estimate"].to_list()[:3] == pytest.approx([0, 1 / 3, 1])
    assert c["estimate"][3] is None  # beyond the last day of follow-up
    assert c["at_risk"].to_list() == [3, 2, 2, 0]
    assert c["events"].to_list() == [0, 0, 1, 0]


def test_mean_cumulative_table(three_children: pl.DataFrame) -> None:
    curve = rc.mean_cumulative(three_children)
    table = rc.mean_cumulative_table(curve, [2, 4], min_at_risk=2, time_labels={2: "day 2"})
    z = stats.norm.ppf(0.975)
    f = np.exp(z * np.sqrt(2 / 27) / (1 / 3))
    assert table.columns == ["Group", "children", "day 2", "4 days"]
    assert table.row(0) == (
        "All",
        3,
        f"0.33 ({1 / 3 / f:.2f} to {1 / 3 * f:.2f})",
        table["4 days"][0],
    )
    assert table["4 days"][0].startswith("1.00 (")
    hidden = rc.mean_cumulative_table(curve, [2, 9], min_at_risk=3)
    assert hidden.row(0)[2:] == ("c", "c")  # 2 at risk on day 2; none beyond day 6


def test_groups_follow_level_order_with_missing_last(three_children: pl.DataFrame) -> None:
    frame = three_children.with_columns(
        band=pl.Series(["b", "b", None, "a", "a", "a"], dtype=pl.String)
    )
    c = rc.mean_cumulative(frame, "band")
    assert c["group"].unique(maintain_order=True).to_list() == ["a", "b", "Missing"]
    only_c = c.filter(pl.col("group") == "a")
    assert only_c["estimate"].to_list() == pytest.approx([0, 1, 2, 2])  # C alone: 2 events


def test_mean_cumulative_rejects_bad_frames(three_children: pl.DataFrame) -> None:
    overlap = three_children.with_columns(
        tstart=pl.when(pl.col("tstop") == 4).then(2).otherwise("tstart")
    )
    with pytest.raises(ValueError, match="overlapping"):
        rc.mean_cumulative(overlap)
    early = three_children.with_columns(
        terminal=pl.when(pl.col("tstop") == 2).then(1).otherwise("terminal")
    )
    with pytest.raises(ValueError, match="last row"):
        rc.mean_cumulative(early)
    mixed = three_children.with_columns(g=pl.Series(["x", "y", "x", "x", "x", "x"]))
    with pytest.raises(ValueError, match="constant within each subject"):
        rc.mean_cumulative(mixed, "g")
    with pytest.raises(ValueError, match="method"):
        rc.mean_cumulative(three_children, method="kaplan_meier")


# --------------------------------------------------------------------------------------------
# Brute force: the variance is the sum of squared weight derivatives
# --------------------------------------------------------------------------------------------


def _weighted_mcf(frame: pl.DataFrame, w: np.ndarray, ghosh_lin: bool) -> np.ndarray:
    """The estimator with subject weights ``w`` (complex allowed), at every stop time."""
    subj = frame["s"].to_numpy()
    a, b = frame["tstart"].to_numpy(), frame["tstop"].to_numpy()
    ev, tm = frame["event"].to_numpy(), frame["terminal"].to_numpy()
    wr = w[subj]
    mu, surv, out = 0.0, 1.0, []
    for t in np.unique(b):
        y = wr[(a < t) & (t <= b)].sum()
        d = (wr * ev)[b == t].sum()
        dd = (wr * tm)[b == t].sum()
        mu = mu + surv * d / y
        if ghosh_lin:
            surv = surv * (1 - dd / y)
        out.append(mu)
    return np.array(out)


@pytest.mark.parametrize("method", rc.METHODS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_variance_is_the_infinitesimal_jackknife_with_delayed_entry_and_gaps(
    method: str, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(25):
        t = int(rng.integers(0, 4)) * int(rng.random() < 0.4)  # some enter late
        n_rows = int(rng.integers(1, 5))
        for k in range(n_rows):
            stop = t + int(rng.integers(1, 6))
            last = k == n_rows - 1
            rows.append(
                {
                    "s": s,
                    "tstart": t,
                    "tstop": stop,
                    "event": int(rng.random() < 0.6),
                    "terminal": int(last and rng.random() < 0.3),
                }
            )
            t = stop + int(rng.integers(0, 3)) * int(rng.random() < 0.3)  # some gaps
    frame = pl.DataFrame(rows).with_columns(subject_id=pl.col("s").cast(pl.String))
    ghosh_lin = method == "ghosh_lin"
    n = frame["s"].max() + 1
    h = 1e-20
    grads = []
    for i in range(n):
        w = np.ones(n, dtype=complex)
        w[i] += 1j * h
        grads.append(_weighted_mcf(frame, w, ghosh_lin).imag / h)
    expected_var = (np.array(grads) ** 2).sum(axis=0)
    expected_mu = _weighted_mcf(frame, np.ones(n), ghosh_lin)
    c = rc.mean_cumulative(frame, method=method).filter(pl.col("time") > 0)
    np.testing.assert_allclose(c["estimate"], expected_mu, rtol=0, atol=1e-12)
    np.testing.assert_allclose(c["std_error"] ** 2, expected_var, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------------
# Counting-process rows from episodes (hand-made fixture)
# --------------------------------------------------------------------------------------------


def _days(a: date, b: date) -> int:
    return (b - a).days


@pytest.fixture(scope="module")
def tables() -> dict[str, pl.DataFrame]:
    read = {
        name: pl.read_csv(FIXTURES / f"{name}.csv", try_parse_dates=True, schema_overrides=TEXT)
        for name in ("episodes", "events")
    }
    return read


@pytest.fixture(scope="module")
def history(tables: dict[str, pl.DataFrame]) -> rc.ReferralHistory:
    return rc.referral_history(tables, first_referral_years=(2019, 2021))


def _rows(history: rc.ReferralHistory, child: str) -> list[tuple]:
    f = history.frame.filter(pl.col("child_id") == child).sort("enum")
    cols = ["enum", "tstart", "tstop", "event", "terminal", "end_reason"]
    return list(f.select(cols).iter_rows())


def test_frame_columns_and_order(history: rc.ReferralHistory) -> None:
    f = history.frame
    assert tuple(f.columns) == rc.HISTORY_COLUMNS
    assert (f["tstop"] > f["tstart"]).all()
    assert (f["gap"] == f["tstop"] - f["tstart"]).all()
    assert (f["n_previous"] == f["enum"] - 1).all()
    assert f["subject_id"].to_list()[0] == "201:R01"


def test_three_referrals_followed_to_the_data_end(history: rc.ReferralHistory) -> None:
    o = date(2019, 5, 1)
    t1, t2 = _days(o, date(2019, 9, 10)), _days(o, date(2020, 1, 5))
    end = _days(o, date(2021, 3, 31))  # LA 201's last return
    assert _rows(history, "R01") == [
        (1, 0, t1, 1, 0, rc.END_REFERRAL),
        (2, t1, t2, 1, 0, rc.END_REFERRAL),
        (3, t2, end, 0, 0, rc.END_DATA_END),
    ]
    first = history.frame.filter(pl.col("child_id") == "R01").row(0, named=True)
    assert first["primary_need"] == "N1" and first["age_band"] == "5-9"  # first referral's
    assert first["first_referral_year"] == 2020
    assert first["start_date"] == o and first["stop_date"] == date(2019, 9, 10)


def test_eighteenth_birthday_is_terminal_and_ends_counting(history: rc.ReferralHistory) -> None:
    o = date(2019, 1, 10)
    # the referral on the 18th birthday (15 June 2020) is not counted
    assert _rows(history, "R02") == [(1, 0, _days(o, date(2020, 6, 15)), 0, 1, rc.END_TURNED_18)]


def test_referral_on_the_day_of_death_counts(history: rc.ReferralHistory) -> None:
    o = date(2019, 4, 1)
    assert _rows(history, "R03") == [(1, 0, _days(o, date(2019, 8, 1)), 1, 1, rc.END_DIED)]


def test_leaving_the_la_censors(history: rc.ReferralHistory) -> None:
    o = date(2019, 6, 1)
    assert _rows(history, "R04") == [(1, 0, _days(o, date(2020, 2, 1)), 0, 0, rc.END_LEFT_LA)]
    # in the new LA the child is a subject of its own, to that LA's last return (2020)
    assert _rows(history, "R04B") == [(1, 0, 59, 0, 0, rc.END_DATA_END)]


def test_referral_on_the_data_end_date_counts(history: rc.ReferralHistory) -> None:
    assert _rows(history, "R11") == [(1, 0, 364, 1, 0, rc.END_DATA_END)]


def test_nfa_referrals(tables: dict[str, pl.DataFrame], history: rc.ReferralHistory) -> None:
    assert _rows(history, "R05") == [
        (1, 0, 19, 1, 0, rc.END_REFERRAL),
        (2, 19, _days(date(2019, 7, 1), date(2021, 3, 31)), 0, 0, rc.END_DATA_END),
    ]
    without = rc.referral_history(tables, first_referral_years=(2019, 2021), include_nfa=False)
    assert _rows(without, "R05") == [
        (1, 0, _days(date(2019, 7, 20), date(2021, 3, 31)), 0, 0, rc.END_DATA_END)
    ]


def test_unborn_child_is_followed(history: rc.ReferralHistory) -> None:
    rows = history.frame.filter(pl.col("child_id") == "R09")
    assert rows["age_band"].to_list() == ["unborn"] and rows["terminal"].to_list() == [0]


def test_reconciliation_counts_every_child_and_referral(history: rc.ReferralHistory) -> None:
    rec = {(s, r): n for s, r, n in history.reconciliation.iter_rows()}
    assert rec[("input", "children (child in an LA, with a referral)")] == 11
    assert rec[("not in cohort", "first referral outside the window")] == 1  # R07
    assert rec[("excluded", "aged 18 or over at first referral")] == 1  # R08
    assert rec[("excluded", "no follow-up after the first referral")] == 1  # R06
    assert rec[("children out", "children followed")] == 8
    assert rec[("referrals", "first referrals (time 0)")] == 8
    assert rec[("referrals", "re-referrals counted (events)")] == 5  # R01 2, R03, R05, R11
    assert rec[("referrals not counted", "on or after the 18th birthday")] == 1  # R02
    assert rec[("referrals not counted", "after death")] == 1  # R03
    assert rec[("referrals not counted", "after leaving the LA")] == 1  # R04
    assert rec[("end of follow-up", rc.END_DATA_END)] == 5
    assert rec[("end of follow-up", rc.END_LEFT_LA)] == 1
    assert rec[("end of follow-up", rc.END_DIED)] == 1
    assert rec[("end of follow-up", rc.END_TURNED_18)] == 1


def test_reconciliation_tables_end_with_their_totals(history: rc.ReferralHistory) -> None:
    children, re_referrals = rc.reconciliation_tables(history.reconciliation)
    assert children.columns == ["reason", "not_followed", "followed", "children"]
    total = children.row(-1, named=True)
    assert total == {"reason": "Total", "not_followed": 3, "followed": 8, "children": 11}
    parts = children[:-1]
    assert parts["children"].sum() == 11 and parts["followed"].sum() == 8
    assert (children["children"] == children["not_followed"] + children["followed"]).all()
    assert parts.filter(pl.col("followed") > 0)["reason"].to_list() == [
        rc.END_DATA_END,
        rc.END_LEFT_LA,
        rc.END_TURNED_18,
        rc.END_DIED,
    ]
    assert re_referrals.rows() == [
        ("re-referrals counted (events)", 5),
        ("after death", 1),
        ("after leaving the LA", 1),
        ("on or after the 18th birthday", 1),
        ("Total", 8),
    ]


def test_children_table_protects_the_number_followed() -> None:
    """The number of children followed is published with the mean cumulative function, so a
    small way of ending follow-up must not be recoverable by subtraction from it: hiding it
    with a cell of the children *not* followed (the smallest other cell) would not do."""
    from cinresearch.notebook import protect_frame

    reconciliation = pl.DataFrame(
        {
            "stage": ["input", "not in cohort", "excluded", "children out"]
            + ["end of follow-up"] * 4,
            "reason": ["in", "outside", "no follow-up", "followed"]
            + [rc.END_DATA_END, rc.END_LEFT_LA, rc.END_DIED, rc.END_TURNED_18],
            "n": [146, 50, 8, 88, 30, 31, 2, 25],
        }
    )
    children, _ = rc.reconciliation_tables(reconciliation)
    options = {"count_columns": ["not_followed", "followed", "children"], "filters": ["reason"]}
    one_way = protect_frame(children, **options)
    hidden = one_way.filter(pl.col("children") == "c")["reason"].to_list()
    assert hidden == ["no follow-up", rc.END_DIED]  # died = 88 - 30 - 31 - 25
    joint = protect_frame(
        children, **options, row_totals={"children": ["not_followed", "followed"]}
    )
    ended = joint.filter(pl.col("followed") != "0", pl.col("reason") != "Total")
    assert joint.filter(pl.col("reason") == "Total")["followed"].item() == "88"
    assert (ended["children"] == "c").sum() >= 2  # died and another way of ending


def test_options_change_what_is_followed(tables: dict[str, pl.DataFrame]) -> None:
    everyone = rc.referral_history(tables)
    assert "R07" in everyone.frame["child_id"].to_list()  # no window: all first referrals
    no_moves = rc.referral_history(tables, first_referral_years=(2019, 2021), censor_moves=False)
    o = date(2019, 6, 1)
    assert _rows(no_moves, "R04") == [
        (1, 0, _days(o, date(2020, 5, 1)), 1, 0, rc.END_REFERRAL),
        (2, _days(o, date(2020, 5, 1)), _days(o, date(2021, 3, 31)), 0, 0, rc.END_DATA_END),
    ]
    only_201 = rc.referral_history(tables, first_referral_years=(2019, 2021), la_codes=["201"])
    assert _rows(only_201, "R04")[-1][-1] == rc.END_LEFT_LA  # the move is found in LA 202
    capped = rc.referral_history(tables, data_end="2020-03-31", la_codes=["201"])
    assert capped.frame["la_code"].unique().to_list() == ["201"]
    assert _rows(capped, "R11") == []  # first referral after the capped end of data
    assert capped.frame["stop_date"].max() <= date(2020, 3, 31)
    without_events = rc.referral_history({"episodes": tables["episodes"]})
    assert rc.END_LEFT_LA not in without_events.frame["end_reason"].to_list()
    with pytest.raises(ValueError, match="episodes"):
        rc.referral_history({"events": tables["events"]})
    no_end = tables["episodes"].with_columns(
        data_end=pl.when(pl.col("la_code") == "202").then(None).otherwise("data_end")
    )
    reasons = rc.referral_history({"episodes": no_end}).reconciliation
    assert reasons.filter(pl.col("reason").str.starts_with("no end of data"))["n"].to_list() == [1]
    undated = tables["episodes"].with_columns(pl.lit(None, pl.Date).alias("referral_date"))
    with pytest.raises(ValueError, match="without a referral_date"):
        rc.referral_history({"episodes": undated})


def test_history_feeds_the_estimators(history: rc.ReferralHistory) -> None:
    c = rc.mean_cumulative(history.frame, "sex")
    assert set(c["group"]) == {"F", "M", "U"}
    assert c.filter(pl.col("time") == 0)["at_risk"].sum() == 8


# --------------------------------------------------------------------------------------------
# Figure
# --------------------------------------------------------------------------------------------


def _texts(fig: Figure) -> list[str]:
    fig.savefig(io.BytesIO(), format="png")
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def test_plot_mean_cumulative(r_data: pl.DataFrame) -> None:
    curve = rc.mean_cumulative(r_data, "grp")
    assert curve["upper"].max() > 1  # a mean, not a probability
    fig = rc.plot_mean_cumulative(curve, title="Re-referrals", legend_title="Group")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_ylim()[1] > 1  # not capped at 1 like a probability axis
    texts = _texts(fig)
    assert "Number at risk" in texts and "Re-referrals" in texts
    assert any(t == "<10" for t in texts)  # the tail of follow-up has few children
    drawn = [line for line in ax.get_lines() if line.get_label() in {"a", "b"}]
    assert len(drawn) == 2
    for line in drawn:
        part = curve.filter(pl.col("group") == line.get_label())
        hidden = part.filter(pl.col("at_risk") < 10)["time"].to_list()
        x, y = line.get_data()
        assert all(np.isnan(y[np.isin(x, hidden)]))  # not drawn below 10 at risk


# --------------------------------------------------------------------------------------------
# Planted effects on generated data (generate → load → build)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic(planted_world: Path) -> dict:
    from cinresearch.store import Store

    root = planted_world
    store = Store(root / "store")
    return {"root": root, "store": store}


def _truth_mean_rereferrals(root: Path, census_year: int, days: int) -> tuple[int, float]:
    """The generator's own mean number of same-LA re-referrals within ``days`` of the first
    referral seen in the returns, for children first seen in ``census_year``."""
    truth = pl.read_parquet(root / "synth" / "truth" / "episodes.parquet")
    first_day, last_day = date(2017, 4, 1), date(2020, 3, 31)  # the returns generated
    seen = truth.filter(
        (pl.col("closure_date").is_null() | (pl.col("closure_date") >= first_day))
        & (pl.col("referral_date") <= last_day)
    )
    keys = ["la_child_id", "la_code"]
    first = seen.group_by(keys).agg(origin=pl.col("referral_date").min())
    start, end = date(census_year - 1, 4, 1), date(census_year, 3, 31)
    cohort = first.filter(pl.col("origin").is_between(start, end))
    counts = (
        cohort.join(seen.select(*keys, "referral_date"), on=keys)
        .group_by(keys)
        .agg(
            n=(
                (pl.col("referral_date") > pl.col("origin"))
                & ((pl.col("referral_date") - pl.col("origin")).dt.total_days() <= days)
            ).sum()
        )
    )
    return cohort.height, float(counts["n"].mean())


@pytest.mark.slow
def test_ghosh_lin_mean_equals_the_generators_count(synthetic: dict) -> None:
    """Children first referred in 2018-19 are all followed for a year (returns to March 2020),
    so the Ghosh–Lin mean at 365 days is exactly their mean count (children who turn 18 or die
    add nothing); with the 2019-20 referrals added, censored before a year, the estimate must
    still cover the count. Moves are not censored: the truth counts same-LA referrals only."""
    n, truth = _truth_mean_rereferrals(synthetic["root"], 2019, 365)
    store = synthetic["store"]
    one = rc.referral_history(store, first_referral_years=2019, censor_moves=False)
    assert one.frame["subject_id"].n_unique() == n
    at = rc.mean_cumulative(one.frame, times=[365]).row(0, named=True)
    assert at["estimate"] == pytest.approx(truth, abs=1e-12)
    two = rc.referral_history(store, first_referral_years=(2019, 2020), censor_moves=False)
    est = rc.mean_cumulative(two.frame, times=[365]).row(0, named=True)
    assert est["lower"] <= truth <= est["upper"], (est, truth)
    assert two.frame.filter(pl.col("terminal") == 1).height > 1000  # 18th birthdays


@pytest.mark.slow
def test_andersen_gill_recovers_planted_rereferral_multipliers(synthetic: dict) -> None:
    """The generator refers a child again after a closure with probability 0.52 x the LA's
    multiplier (x 0.3 after a special guardianship or child arrangements order, RC4/RC3), at a
    gap that does not depend on either. So the mean number of first re-referrals within ``g``
    days of a closure is proportional to the multipliers at every ``g``: the proportional-means
    model (Andersen–Gill rows, each closure staying at risk after its re-referral, robust SEs)
    estimates them exactly. Closures by adoption (no re-referral), death, transfer or at 18
    are left out; follow-up ends at the LA's last return or the 18th birthday."""
    from cinresearch.cohorts import birthday_expr

    store, root = synthetic["store"], synthetic["root"]
    planted = pl.read_parquet(root / "synth" / "truth" / "las.parquet").select(
        "la_code", m="rereferral_multiplier"
    )
    ep = store.read("episodes").with_columns(
        la_end=pl.col("data_end").max().over("la_code"),
        b18=birthday_expr(pl.coalesce("birth_date", "expected_birth_date"), 18),
    )
    keys = ["child_id", "la_code"]
    referrals = ep.select(*keys, next_referral=pl.col("referral_date"))
    closures = ep.filter(
        pl.col("closure_reason").is_in(["RC3", "RC4", "RC7", "RC8", "RC9"])
    ).with_row_index("closure")
    nxt = (
        closures.select("closure", *keys, "closure_date")
        .join(referrals, on=keys)
        .filter(pl.col("next_referral") > pl.col("closure_date"))
        .group_by("closure")
        .agg(pl.col("next_referral").min())
    )
    days = pl.col("closure_date")
    subjects = (
        closures.join(nxt, on="closure", how="left")
        .with_columns(
            end=(pl.min_horizontal("la_end", "b18") - days).dt.total_days(),
            t=(pl.col("next_referral") - days).dt.total_days(),
            sgo_or_cao=pl.col("closure_reason").is_in(["RC3", "RC4"]),
            child=pl.concat_str("la_code", "child_id", separator=":"),
        )
        .filter(pl.col("end") > 0)
    )
    hit = subjects.filter(pl.col("t") <= pl.col("end"))
    miss = subjects.filter(pl.col("t").is_null() | (pl.col("t") > pl.col("end")))
    cols = ["closure", "child", "la_code", "sgo_or_cao"]
    frame = pl.concat(
        [
            miss.select(*cols, tstart=pl.lit(0), tstop="end", event=pl.lit(1) - 1),
            hit.select(*cols, tstart=pl.lit(0), tstop="t", event=pl.lit(1)),
            hit.filter(pl.col("end") > pl.col("t")).select(
                *cols, tstart="t", tstop="end", event=pl.lit(0)
            ),
        ],
        how="vertical_relaxed",
    )
    assert frame["sgo_or_cao"].sum() > 200 and frame["event"].sum() > 10_000
    reference = frame["la_code"].value_counts().sort("count")["la_code"][-1]
    fit = rc.andersen_gill_fit(
        frame,
        ["la_code", "sgo_or_cao"],
        id="closure",
        cluster="child",
        reference={"la_code": reference},
    )
    table = fit.table
    sgo = table.filter(pl.col("term") == "sgo_or_cao").row(0, named=True)
    assert sgo["lower"] <= 0.3 <= sgo["upper"], sgo
    assert sgo["upper"] < 1  # the effect is detected, not just covered
    m = dict(planted.iter_rows())
    terms = table["term"].to_list()
    b0 = np.array(
        [
            np.log(m[t[len("la_code[") : -1]] / m[reference])
            if t.startswith("la_code")
            else np.log(0.3)
            for t in terms
        ]
    )
    diff = fit.model.coef - b0
    wald = diff @ np.linalg.solve(fit.model.robust_var, diff)
    assert stats.chi2.sf(wald, len(terms)) > 0.01, wald  # planted values not rejected
    la = [i for i, t in enumerate(terms) if t.startswith("la_code")]
    b = fit.model.coef[la]
    no_effect = b @ np.linalg.solve(fit.model.robust_var[np.ix_(la, la)], b)
    assert stats.chi2.sf(no_effect, len(la)) < 1e-12  # LA differences are detected
