"""Cox and Gray's test against R reference values (no R needed to run).

The datasets and reference values in ``tests/fixtures/survival/r/`` were written by
``cox_gray_reference.R`` there (R and package versions in ``versions.json``): Cox models by
``survival::coxph(ties = "efron", control = coxph.control(eps = 1e-12))`` and Gray's test by
``cmprsk::cuminc(...)$Tests`` (statistic, p, df), with the score vector and variance matrix
behind it from the ``crstm`` routine cuminc calls (``gray_score.csv``, ``gray_variance.csv``;
each case's data in ``gray_cases.csv``; no ``entry``: cmprsk has no left truncation).
Tolerance: 1e-6 absolute on coefficients, standard errors, test statistics and p-values (the
engine agrees to ~1e-12); Gray's score, variance and statistic also to 1e-6 relative.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from cinresearch import survival as sv

R_DIR = Path(__file__).parent / "fixtures" / "survival" / "r"
TOL = 1e-6

COX_MODELS = {
    "plain": {},
    "strata": {"strata": "stratum"},
    "cluster": {"cluster": "child"},
    "strata_cluster": {"strata": "stratum", "cluster": "child"},
    "truncated": {"strata": "stratum", "cluster": "child", "entry": "entry"},
}


@pytest.fixture(scope="module")
def cox_data() -> pl.DataFrame:
    return pl.read_csv(R_DIR / "cox_data.csv")


@pytest.fixture(scope="module")
def cox_reference() -> pl.DataFrame:
    return pl.read_csv(R_DIR / "cox_reference.csv", null_values="NA")


def test_reference_records_versions():
    v = json.loads((R_DIR / "versions.json").read_text())
    assert v["R"].startswith("R version") and v["survival"] and v["cmprsk"]


@pytest.mark.parametrize("model", list(COX_MODELS))
def test_cox_equals_r_coxph(cox_data, cox_reference, model):
    ref = cox_reference.filter(pl.col("model") == model)
    fit = sv.cox_fit(
        cox_data,
        duration="stop",
        event="event",
        covariates=["x1", "x2", "x3"],
        ph_test=False,
        **COX_MODELS[model],
    )
    assert fit.table["term"].to_list() == ref["term"].to_list()
    np.testing.assert_allclose(fit.table["coef"], ref["coef"], rtol=0, atol=TOL)
    assert fit.log_likelihood == pytest.approx(ref["loglik"][0], abs=1e-6)
    model_se = np.sqrt(np.diag(fit.model.var))
    np.testing.assert_allclose(model_se, ref["se"], rtol=0, atol=TOL)
    if "cluster" in COX_MODELS[model]:
        np.testing.assert_allclose(fit.table["se"], ref["robust_se"], rtol=0, atol=TOL)
        # the robust SEs differ from the model SEs by far more than the tolerance
        assert np.abs(fit.table["se"].to_numpy() - model_se).max() > 100 * TOL
    else:
        np.testing.assert_allclose(fit.table["se"], ref["se"], rtol=0, atol=TOL)


def test_cox_tied_times_are_present(cox_data):
    # the reference data exercise Efron's tie handling and left truncation
    ev = cox_data.filter(pl.col("event") == 1)
    assert ev.height - ev["stop"].n_unique() > 50
    assert (cox_data["entry"] > 0).sum() > 50


def test_cox_wrong_ties_would_fail(cox_data, cox_reference):
    # sanity of the tolerance: dropping the tied events' Efron correction moves the estimates
    from cinresearch.survival.coxph import fit_cox

    d = cox_data
    X = d.select("x1", "x2", "x3").to_numpy().astype(float)
    jitter = d["stop"].to_numpy() + np.arange(d.height) * 1e-6  # breaks ties (Breslow-free)
    fit = fit_cox(X, jitter, d["event"].to_numpy())
    ref = cox_reference.filter(pl.col("model") == "plain")["coef"].to_numpy()
    assert np.abs(fit.coef - ref).max() > 100 * TOL


@pytest.fixture(scope="module")
def gray_fixtures() -> dict[str, pl.DataFrame]:
    return {
        name: pl.read_csv(R_DIR / f"gray_{name}.csv")
        for name in ("cases", "reference", "score", "variance")
    }


GRAY_CASES = [
    "all",
    "strata",
    "two_groups",
    "small",
    "tiny_group",
    "ties",
    "ties_strata",
    "strata_absent",
    "four_groups",
]


def test_gray_cases_cover_the_hard_parts(gray_fixtures):
    cases = gray_fixtures["cases"]
    ref = gray_fixtures["reference"]
    assert sorted(ref["case"].unique().to_list()) == sorted(GRAY_CASES)
    assert ref.group_by("case").len()["len"].to_list() == [2] * len(GRAY_CASES)  # both causes

    def case(name):
        return cases.filter(pl.col("case") == name)

    assert case("small").height == 40
    assert case("tiny_group").filter(pl.col("grp") == "g3").height == 5
    assert case("four_groups")["grp"].n_unique() == 4
    absent = case("strata_absent").filter(pl.col("grp") == "g3")
    assert absent["stratum"].unique().to_list() == ["s1"]
    # ties of one cause within a group, and of both causes and censoring at one time
    ties = case("ties")
    assert ties.filter(pl.col("fstatus") == 2).group_by("ftime", "grp").len()["len"].max() > 1
    kinds = ties.group_by("ftime").agg(pl.col("fstatus").n_unique())["fstatus"]
    assert kinds.max() == 3


@pytest.mark.parametrize("case", GRAY_CASES)
@pytest.mark.parametrize("cause", [1, 2])
def test_gray_equals_cmprsk(gray_fixtures, case, cause):
    """Gray's score, its variance matrix (summed over strata) and the statistic and p-value
    equal those of cmprsk::cuminc (score and variance from the crstm routine cuminc calls), to
    1e-6 absolute AND 1e-6 relative (the engine agrees to ~1e-13)."""
    from cinresearch.survival.hypothesis_tests import _gray_score_variance, _prepare_test

    def pick(frame):
        return frame.filter((pl.col("case") == case) & (pl.col("cause") == cause))

    data = gray_fixtures["cases"].filter(pl.col("case") == case)
    ref = pick(gray_fixtures["reference"]).row(0, named=True)
    strata = "stratum" if ref["stratified"] else None
    dur, st, ent, g, k, sc = _prepare_test(data, "ftime", "fstatus", "grp", None, strata, False)
    z, V = _gray_score_variance(dur, st, ent, g, sc, k, cause)

    score = pick(gray_fixtures["score"]).sort("k")["score"].to_numpy()
    var = pick(gray_fixtures["variance"])
    V_r = np.full((k - 1, k - 1), np.nan)
    V_r[var["i"].to_numpy() - 1, var["j"].to_numpy() - 1] = var["var"].to_numpy()
    res = sv.gray_test(data, "ftime", "fstatus", cause, group="grp", strata=strata).row(
        0, named=True
    )
    for ours, theirs in [(z, score), (V, V_r), (res["statistic"], ref["stat"])]:
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOL)
        np.testing.assert_allclose(ours, theirs, rtol=TOL, atol=0)
    assert res["p"] == pytest.approx(ref["pv"], abs=TOL)
    assert res["df"] == ref["df"] == k - 1
