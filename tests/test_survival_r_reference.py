"""Cox and Gray's test against R reference values (no R needed to run).

The datasets and reference values in ``tests/fixtures/survival/r/`` were written by
``cox_gray_reference.R`` there (R and package versions in ``versions.json``): Cox models by
``survival::coxph(ties = "efron", control = coxph.control(eps = 1e-12))`` and Gray's test by
``cmprsk::cuminc(...)$Tests``. Tolerance: 1e-6 absolute on coefficients, standard errors,
test statistics and p-values (the engine agrees to ~1e-12).
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


GRAY_CASES = {
    "all": (lambda d: d, None),
    "strata": (lambda d: d, "gstratum"),
    "two_groups": (lambda d: d.filter(pl.col("grp") != "g3"), None),
    "small": (lambda d: d.head(40), None),
}


@pytest.mark.parametrize("case", list(GRAY_CASES))
@pytest.mark.parametrize("cause", [1, 2])
def test_gray_score_equals_cmprsk(case, cause):
    """Gray's score vector (observed minus expected on the subdistribution risk set, summed
    over strata) equals the one cmprsk::cuminc computes, to 1e-6 absolute."""
    from cinresearch.survival.hypothesis_tests import _gray_scores, _prepare_test

    pick, strata = GRAY_CASES[case]
    data = pick(pl.read_csv(R_DIR / "gray_data.csv"))
    ref = pl.read_csv(R_DIR / "gray_score.csv").filter(
        (pl.col("case") == case) & (pl.col("cause") == cause)
    )
    dur, st, ent, g, k, sc = _prepare_test(data, "ftime", "fstatus", "grp", None, strata, False)
    z = np.zeros(k - 1)
    for s in np.unique(sc):
        m = sc == s
        z += _gray_scores(dur[m], st[m], ent[m], g[m], k, cause, influence=False)[0]
    np.testing.assert_allclose(z, ref.sort("k")["score"], rtol=0, atol=TOL)
