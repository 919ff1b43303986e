"""The pathway multi-state model (cinresearch.multistate).

* Against R (no R needed to run): ``tests/fixtures/multistate/r/multistate_reference.R`` wrote
  the data and the reference values with R ``survival`` (versions in ``versions.json``):
  ``survfit(Surv(tstart, tstop, state) ~ 1, id, istate, influence = TRUE)`` for the state
  occupation probabilities, standard errors, numbers at risk and log(-log) limits (overall,
  by group, from a landmark where the starting distribution is not degenerate, and with the
  influence summed by child), and ``coxph`` (Efron ties) per transition, with shared
  coefficients (``strata(trans)``) and for a composite transition. Tolerance 1e-6 absolute.
* Hand-worked: the rows built from hand-written episodes (same-day events, skipped and
  repeated stages, closure on a stage's day, left truncation, censoring), and a four-episode
  Aalen–Johansen estimate with its jackknife standard error worked on paper.
* Planted effects (slow): on synthetic data (generate → load → journeys), the hazard ratios
  of a plan from the states before one recover every planted cause-specific hazard ratio
  (``data_contracts/synth_effects.yaml``), and the occupation probabilities at fixed days
  equal the shares computed from the generator's own truth file.
"""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cinresearch import multistate as ms  # noqa: E402
from cinresearch import survival as sv  # noqa: E402

R_DIR = Path(__file__).parent / "fixtures" / "multistate" / "r"
TOL = 1e-6
COVARIATES = ["x1", "x2", "grp"]


@pytest.fixture(scope="module")
def ms_data() -> pl.DataFrame:
    return pl.read_csv(R_DIR / "ms_data.csv")


def _r_csv(name: str) -> pl.DataFrame:
    return pl.read_csv(R_DIR / name, null_values="NA")


def _close(a, b, tol: float = TOL) -> None:
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=0, atol=tol)


# --------------------------------------------------------------------------------------------
# R reference
# --------------------------------------------------------------------------------------------


def test_reference_records_versions():
    v = json.loads((R_DIR / "versions.json").read_text())
    assert v["R"].startswith("R version") and v["survival"]


def test_reference_data_exercise_ties_truncation_and_day_zero(ms_data):
    first = ms_data.group_by("episode_id").agg(pl.col("tstart").min())
    assert (first["tstart"] > -1).sum() > 20  # left-truncated episodes
    moves = ms_data.filter(pl.col("to_state").is_not_null())
    assert (moves["tstop"] == 0).sum() > 10  # moves on the referral day
    assert moves.group_by("tstop").len()["len"].max() >= 5  # tied move times
    assert ms_data["child_id"].n_unique() < ms_data["episode_id"].n_unique()  # clusters


def _joined(occ: pl.DataFrame, ref: pl.DataFrame, on=("time", "state")) -> pl.DataFrame:
    out = ref.join(occ, on=list(on), how="left", suffix="_py")
    assert out.height == ref.height and out["estimate"].null_count() == 0
    return out


def test_state_occupation_equals_r_survfit(ms_data):
    ref = _r_csv("pstate_reference.csv")
    occ = ms.state_occupation(ms_data)
    assert set(occ["time"].unique()) == set(ref["time"].unique()) | {0}
    j = _joined(occ, ref)
    _close(j["estimate"], j["pstate"])
    _close(j["std_error"], j["std_err"])
    assert (j["at_risk"] == j["n_risk"]).all() and (j["events"] == j["n_event"]).all()
    inner = j.filter(pl.col("lower").is_not_null())
    assert inner.height > 300
    _close(inner["lower_py"], inner["lower"])
    _close(inner["upper_py"], inner["upper"])
    # probabilities add to one at every time
    sums = occ.group_by("time").agg(pl.col("estimate").sum())["estimate"]
    _close(sums, np.ones(len(sums)), 1e-12)


def test_standard_error_clustered_on_child_equals_r_influence(ms_data):
    ref = _r_csv("pstate_reference.csv")
    j = _joined(ms.state_occupation(ms_data, cluster="child_id"), ref)
    _close(j["std_error"], j["std_err_child"])
    # and clustering matters here (children with several episodes)
    assert (j["std_err_child"] - j["std_err"]).abs().max() > 1e-3


def test_state_occupation_by_group_equals_r(ms_data):
    ref = _r_csv("pstate_group_reference.csv")
    occ = ms.state_occupation(ms_data, group="grp")
    assert occ["group"].unique(maintain_order=True).to_list() == ["a", "b", "c"]
    j = _joined(occ, ref, on=("group", "time", "state"))
    _close(j["estimate"], j["pstate"])
    _close(j["std_error"], j["std_err"])
    assert (j["at_risk"] == j["n_risk"]).all()


def test_landmark_with_mixed_starting_states_equals_r(ms_data):
    """Rows under observation on day 30 only: p0 is spread over states, and its influence
    counts in the standard error (R with influence = TRUE)."""
    ref = _r_csv("pstate_landmark_reference.csv")
    occ = ms.state_occupation(ms_data.filter(pl.col("tstop") >= 30))
    first = occ.filter(pl.col("time") == 0)
    assert (first["estimate"] > 0).sum() >= 3  # p0 is not degenerate
    j = _joined(occ, ref)
    _close(j["estimate"], j["pstate"])
    _close(j["std_error"], j["std_err"])


def test_times_are_a_right_continuous_step_function(ms_data):
    full = ms.state_occupation(ms_data)
    at = ms.state_occupation(ms_data, times=[0, 2.5, 100, 10_000])
    assert at["time"].dtype == pl.Float64
    for t, t_full in [(0, 0), (2.5, 2), (100, full.filter(pl.col("time") <= 100)["time"].max())]:
        a = at.filter(pl.col("time") == t).sort("state")
        b = full.filter(pl.col("time") == t_full).sort("state")
        _close(a["estimate"], b["estimate"], 1e-15)
        _close(a["std_error"], b["std_error"], 1e-12)
    last = full.filter(pl.col("time") == full["time"].max()).sort("state")
    beyond = at.filter(pl.col("time") == 10_000).sort("state")
    _close(beyond["estimate"], last["estimate"], 1e-15)
    assert beyond["at_risk"].sum() == 0


def _r_cox(model: str) -> pl.DataFrame:
    return (
        _r_csv("cox_reference.csv")
        .filter(pl.col("model") == model)
        .with_columns(term=pl.col("term").str.replace(r"^grp(.)$", "grp[$1]"))
    )


@pytest.mark.parametrize("cluster", ["child_id", None])
def test_transition_hazards_equal_r_per_transition(ms_data, cluster):
    ref = _r_cox("separate")
    fit = ms.transition_hazards(ms_data, COVARIATES, cluster=cluster, reference={"grp": "a"})
    fit = fit.with_columns(transition=pl.col("transition").str.replace(" → ", "->"))
    assert fit["transition"].n_unique() == 9 == ref["transition"].n_unique()
    j = ref.join(fit, on=["transition", "term"], how="left", suffix="_py")
    assert j["coef_py"].null_count() == 0
    _close(j["coef_py"], j["coef"])
    _close(j["se_py"], j["robust_se"] if cluster else j["se"])
    _close(j["hazard_ratio"], np.exp(j["coef"]))


def test_shared_coefficients_equal_r_strata_by_transition(ms_data):
    ref = _r_cox("shared")
    fit = ms.transition_hazards(ms_data, COVARIATES, reference={"grp": "a"}, shared=True)
    assert fit["transition"].unique().to_list() == ["all (shared)"]
    assert fit["term"].to_list() == ref["term"].to_list()
    _close(fit["coef"], ref["coef"])
    _close(fit["se"], ref["robust_se"])


def test_composite_transition_equals_r(ms_data):
    ref = _r_cox("composite")
    fit = ms.transition_hazards(
        ms_data,
        COVARIATES,
        {"before plan → cpp": (["referred", "assessment", "s47"], "cpp")},
        reference={"grp": "a"},
    )
    assert fit["from_state"][0] == "referred, assessment, s47" and fit["to_state"][0] == "cpp"
    assert fit["term"].to_list() == ref["term"].to_list()
    _close(fit["coef"], ref["coef"])
    _close(fit["se"], ref["robust_se"])
    assert fit["events"][0] == ms_data.filter(pl.col("to_state") == "cpp").height


def test_transition_hazards_input_checks(ms_data):
    with pytest.raises(ValueError, match="not in the frame"):
        ms.transition_hazards(ms_data, ["x1"], [("referred", "care")])
    with pytest.raises(ValueError, match="same state"):
        ms.transition_hazards(ms_data, ["x1"], [(["referred", "s47"], "s47")])
    with pytest.warns(UserWarning, match="no events"):
        out = ms.transition_hazards(ms_data, ["x1"], [("cpp", "s47")])
    assert out.is_empty()
    gaps = ms_data.with_columns(
        tstart=pl.when(pl.int_range(pl.len()) == 1).then(pl.col("tstart") + 1).otherwise("tstart")
    )
    with pytest.raises(ValueError, match="contiguous"):
        ms.state_occupation(gaps)


# --------------------------------------------------------------------------------------------
# hand-worked
# --------------------------------------------------------------------------------------------


def _tiny() -> pl.DataFrame:
    """A: referred → assessment day 3 → closed day 10; B: referred → closed day 4;
    C: referred → assessment day 5, censored day 9; D: referred, censored day 7."""
    rows = [
        ("A", "A", -1, 3, "referred", "assessment"),
        ("A", "A", 3, 10, "assessment", "closed"),
        ("B", "B", -1, 4, "referred", "closed"),
        ("C", "C", -1, 5, "referred", "assessment"),
        ("C", "C", 5, 9, "assessment", None),
        ("D", "D", -1, 7, "referred", None),
    ]
    return pl.DataFrame(
        rows,
        schema=["episode_id", "child_id", "tstart", "tstop", "from_state", "to_state"],
        orient="row",
    )


def test_aalen_johansen_worked_by_hand():
    """Day 3: 1 of 4 referred moves → (3/4, 1/4, 0). Day 4: 1 of 3 closes → referred
    3/4 · 2/3 = 1/2, closed 1/4. Day 5: 1 of 2 moves → referred 1/4, assessment 1/2. Day 10:
    the one episode left in assessment closes → closed 1/4 + 1/2 = 3/4.
    Jackknife SE at day 3 for referred: the mover's influence is 1/4 · (0 − 3/4) = −3/16,
    each stayer's 1/4 · (1 − 3/4) = 1/16, so SE = sqrt(9 + 3) / 16 = sqrt(12) / 16."""
    occ = ms.state_occupation(_tiny())
    wide = occ.pivot(on="state", index="time", values="estimate").sort("time")
    assert wide["time"].to_list() == [0, 3, 4, 5, 7, 9, 10]
    expected = {
        "referred": [1, 3 / 4, 1 / 2, 1 / 4, 1 / 4, 1 / 4, 1 / 4],
        "assessment": [0, 1 / 4, 1 / 4, 1 / 2, 1 / 2, 1 / 2, 0],
        "closed": [0, 0, 1 / 4, 1 / 4, 1 / 4, 1 / 4, 3 / 4],
    }
    for state, values in expected.items():
        _close(wide[state], values, 1e-15)
    se = occ.filter((pl.col("time") == 3) & (pl.col("state") == "referred"))["std_error"].item()
    assert se == pytest.approx(math.sqrt(12) / 16, abs=1e-15)
    at10 = occ.filter(pl.col("time") == 10).sort("state")
    assert dict(zip(at10["state"], at10["at_risk"], strict=True))["assessment"] == 1


def test_competing_risks_reduce_to_cumulative_incidence():
    """One move out of the initial state: the occupation of each destination is the
    Aalen–Johansen cumulative incidence of :mod:`cinresearch.survival` (independent code)."""
    rng = np.random.default_rng(3)
    n = 300
    t = rng.integers(0, 200, n)
    cause = rng.choice([0, 1, 2], n, p=[0.3, 0.3, 0.4])
    single = pl.DataFrame(
        {
            "episode_id": np.arange(n).astype(str),
            "tstart": -1,
            "tstop": t,
            "from_state": "referred",
            "to_state": pl.Series(np.array([None, "cpp", "closed"], dtype=object)[cause]),
            "duration": t,
            "event_type": cause,
        }
    )
    occ = ms.state_occupation(single, times=[0, 30, 90, 199], std_error=False)
    for code, state in [(1, "cpp"), (2, "closed")]:
        cif = sv.cumulative_incidence(single, cause=code, times=[0, 30, 90, 199])
        mine = occ.filter(pl.col("state") == state).sort("time")["estimate"]
        _close(mine, cif.sort("time")["estimate"], 1e-12)


def test_single_transition_cox_equals_survival_cause_specific_cox(ms_data):
    """referred → assessment alone equals survival.cause_specific_cox on the same rows."""
    rows = ms_data.filter(pl.col("from_state") == "referred").with_columns(
        event_type=pl.when(pl.col("to_state") == "assessment")
        .then(1)
        .when(pl.col("to_state").is_not_null())
        .then(2)
        .otherwise(0),
        entry=pl.when(pl.col("tstart") < 0).then(0).otherwise(pl.col("tstart")),
    )
    # survival's entry 0 means "from the origin"; rows starting on day 0 need an entry just after
    rows = rows.with_columns(
        entry=pl.when(pl.col("tstart") == 0).then(1e-9).otherwise(pl.col("entry"))
    )
    mine = ms.transition_hazards(
        ms_data, COVARIATES, [("referred", "assessment")], reference={"grp": "a"}
    )
    theirs = sv.cause_specific_cox(
        rows,
        duration="tstop",
        event_type="event_type",
        cause=1,
        covariates=COVARIATES,
        reference={"grp": "a"},
        entry="entry",
        cluster="child_id",
    )
    _close(mine["coef"], theirs["coef"], 1e-9)
    _close(mine["se"], theirs["se"], 1e-9)


def test_allowed_transitions():
    allowed = ms.allowed_transitions()
    assert allowed.height == 36  # 8 + 7 + ... + 1
    rank = {s: i for i, s in enumerate(ms.STATES)}
    for a, b in allowed.iter_rows():
        assert rank[a] < rank[b]
    assert allowed.filter(pl.col("from_state") == "closed").is_empty()
    assert set(allowed.filter(pl.col("to_state") == "closed")["from_state"]) == set(ms.STATES[:-1])
    small = ms.allowed_transitions(["referred", "cpp", "care", "closed"])
    assert small.height == 6
    with pytest.raises(ValueError, match="must include"):
        ms.allowed_transitions(["assessment", "closed"])


D = date


def _episodes() -> pl.DataFrame:
    """Hand-written episodes (one row each); expected rows in test_pathway_rows_by_hand."""
    cols = [
        "episode_id",
        "referral_date",
        "first_assessment_start",
        "first_s47_start",
        "first_icpc_date",
        "first_cpp_start",
        "entered_care_date",
        "closure_date",
        "referral_nfa",
        "age_band",
    ]
    rows = [
        # same day: assessment and S47 on the referral day -> straight to s47 at t = 0
        ("E1", D(2019, 1, 1), D(2019, 1, 1), D(2019, 1, 1), D(2019, 1, 15), D(2019, 1, 20),
         None, D(2019, 6, 30), False, "1-4"),
        # plan without S47/ICPC (skip), a later S47 (not a move), care, still open
        ("E2", D(2019, 2, 1), D(2019, 2, 5), D(2019, 4, 1), None, D(2019, 3, 1),
         D(2019, 5, 1), None, False, "5-9"),
        # NFA: excluded
        ("E3", D(2019, 2, 1), None, None, None, None, None, D(2019, 2, 1), True, "5-9"),
        # plan and closure on the same day: the closure wins
        ("E4", D(2019, 3, 1), D(2019, 3, 4), None, None, D(2019, 3, 10), None,
         D(2019, 3, 10), False, "under 1"),
        # referred before the analysis start (2019-01-01, day 31): enters in assessment
        ("E5", D(2018, 12, 1), D(2018, 12, 3), D(2019, 1, 1), None, None, None,
         D(2019, 2, 1), False, "10-15"),
        # closed before the analysis start: excluded
        ("E6", D(2018, 10, 1), D(2018, 10, 2), None, None, None, None, D(2018, 12, 15),
         False, "16+"),
        # closes after the data_end argument (2020-01-31): censored on day 91
        ("E7", D(2019, 11, 1), D(2019, 11, 2), None, None, None, None, D(2020, 2, 15),
         False, "5-9"),
        # an assessment dated before the referral and an ICPC after closure are not used
        ("E8", D(2019, 4, 1), D(2019, 3, 25), None, D(2019, 5, 1), None, None,
         D(2019, 4, 10), False, "1-4"),
        # closed on the referral day without NFA
        ("E9", D(2019, 5, 5), None, None, None, None, None, D(2019, 5, 5), False, "1-4"),
    ]  # fmt: skip
    frame = pl.DataFrame(rows, schema=cols, orient="row")
    return frame.with_columns(
        child_id=pl.col("episode_id").str.replace("E", "C"),
        la_code=pl.lit("999"),
        data_end=pl.lit(D(2020, 3, 31)),
        first_pp_start=pl.lit(None, dtype=pl.Date),
        first_court_application_date=pl.lit(None, dtype=pl.Date),
    )


EXPECTED_ROWS = [
    ("E1", -1, 0, "referred", "s47"),
    ("E1", 0, 14, "s47", "icpc"),
    ("E1", 14, 19, "icpc", "cpp"),
    ("E1", 19, 180, "cpp", "closed"),
    ("E2", -1, 4, "referred", "assessment"),
    ("E2", 4, 28, "assessment", "cpp"),
    ("E2", 28, 89, "cpp", "care"),
    ("E2", 89, 364, "care", None),
    ("E4", -1, 3, "referred", "assessment"),
    ("E4", 3, 9, "assessment", "closed"),
    ("E5", 30, 31, "assessment", "s47"),
    ("E5", 31, 62, "s47", "closed"),
    ("E7", -1, 1, "referred", "assessment"),
    ("E7", 1, 91, "assessment", None),
    ("E8", -1, 9, "referred", "closed"),
    ("E9", -1, 0, "referred", "closed"),
]


def test_pathway_rows_by_hand():
    built = ms.build_pathway(
        _episodes(), analysis_start=D(2019, 1, 1), data_end=D(2020, 1, 31), covariates=["age_band"]
    )
    got = built.frame.select(
        "episode_id", "tstart", "tstop", pl.col("from_state").cast(pl.String), "to_state"
    ).with_columns(pl.col("to_state").cast(pl.String))
    assert got.rows() == EXPECTED_ROWS
    assert built.frame["from_state"].dtype == pl.Enum(ms.STATES)
    assert built.frame.columns[:7] == [
        "episode_id",
        "child_id",
        "la_code",
        "tstart",
        "tstop",
        "from_state",
        "to_state",
    ]
    assert built.frame.filter(pl.col("episode_id") == "E4")["age_band"].to_list() == ["under 1"] * 2
    assert built.excluded.rows() == [
        ("E3", "999", ms.EXCLUDED_NFA),
        ("E6", "999", ms.EXCLUDED_CLOSED_BEFORE_START),
    ]
    # every episode is in the frame or excluded, once
    assert built.frame["episode_id"].n_unique() + built.excluded.height == _episodes().height
    # the rows pass the estimator's checks and every move is an allowed one
    ms.state_occupation(built.frame, std_error=False)
    allowed = set(ms.allowed_transitions().with_columns(pl.all().cast(pl.String)).iter_rows())
    moves = got.filter(pl.col("to_state").is_not_null()).select("from_state", "to_state")
    assert set(moves.iter_rows()) <= allowed


def test_pathway_defaults_and_care_from_cla():
    eps = _episodes().filter(pl.col("episode_id") == "E2")
    plain = ms.pathway_frame(eps, covariates=[])
    # without the window and data_end arguments: E2 censored at its own data end (day 424)
    assert plain["tstop"].to_list()[-1] == (D(2020, 3, 31) - D(2019, 2, 1)).days
    cla = pl.DataFrame(
        {
            "child_id": ["C2"],
            "la_code": ["999"],
            "decom": [D(2019, 5, 1)],
            "dec": [None],
            "rne": ["S"],
            "ls": ["C2"],
            "place": ["U1"],
            "rec": [None],
        },
        schema_overrides={"dec": pl.Date, "rec": pl.String},
    )
    from_cla = ms.pathway_frame(
        eps.with_columns(entered_care_date=pl.lit(None, dtype=pl.Date)), cla=cla, covariates=[]
    )
    assert from_cla.rows() == plain.rows()
    fewer = ms.pathway_frame(eps, states=["referred", "cpp", "closed"], covariates=[])
    assert fewer.select("tstart", "tstop", pl.col("from_state").cast(pl.String)).rows() == [
        (-1, 28, "referred"),
        (28, 424, "cpp"),
    ]
    with pytest.raises(ValueError, match="lack column"):
        ms.pathway_frame(eps.drop("first_icpc_date"))
    # a closed episode with no data end recorded is closed, not censored
    e4 = _episodes().filter(pl.col("episode_id") == "E4")
    no_end = ms.pathway_frame(e4.with_columns(data_end=pl.lit(None, dtype=pl.Date)))
    assert no_end["to_state"].cast(pl.String).to_list() == ["assessment", "closed"]


def test_plot_state_occupation():
    from cinresearch import plots

    house = {*plots.OKABE_ITO.values(), plots.LIGHT_GREY}
    assert set(ms.STATE_COLOURS) == set(ms.STATES) and set(ms.STATE_COLOURS.values()) <= house
    occ = ms.state_occupation(_tiny(), std_error=False)
    fig = ms.plot_state_occupation(occ, min_at_risk=0, title="Pathway")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    # top of the stack first; states never occupied (none here) would be left out
    assert legend == [ms.STATE_LABELS[s] for s in ("closed", "assessment", "referred")]
    # with the publication convention nothing is drawn once fewer than 3 remain at risk
    hidden = ms.plot_state_occupation(occ, min_at_risk=3)
    assert hidden.axes[0].get_xlim()[1] < fig.axes[0].get_xlim()[1]
    grouped = ms.state_occupation(_tiny().with_columns(g=pl.lit("x")), group="g")
    with pytest.raises(ValueError, match="no rows"):
        ms.plot_state_occupation(grouped, group="y")


# --------------------------------------------------------------------------------------------
# planted effects (generate -> load -> journeys -> pathway)
# --------------------------------------------------------------------------------------------

ALL_EFFECTS = yaml.safe_load(
    (Path(__file__).resolve().parent.parent / "data_contracts" / "synth_effects.yaml").read_text()
)["planted_effects"]
EFFECTS = ALL_EFFECTS["cpp_hazard"]
PLANTED = {
    **{f"age_band[{b}]": hr for b, hr in EFFECTS["hazard_ratios"]["age_band"].items()},
    "disabled": EFFECTS["hazard_ratios"]["disabled"],
}
PLANTED.pop(f"age_band[{EFFECTS['reference']['age_band']}]")
BEFORE_PLAN = ["referred", "assessment", "s47", "icpc"]


@pytest.fixture(scope="module")
def planted(planted_world: Path) -> dict:
    from cinresearch.store import Store

    root = planted_world
    store = Store(root / "store")
    episodes = store.read("episodes").filter(
        pl.col("referral_date").is_between(D(2018, 4, 1), D(2020, 3, 31))
    )
    frame = ms.pathway_frame(episodes)
    fit = ms.transition_hazards(
        frame,
        ["age_band", "disabled"],
        {
            "referral to plan": (BEFORE_PLAN, "cpp"),
            "closed without a plan": (BEFORE_PLAN, "closed"),
        },
        strata="la_code",
        reference={"age_band": EFFECTS["reference"]["age_band"]},
    )
    return {"root": root, "episodes": episodes, "fit": fit}


@pytest.mark.slow
@pytest.mark.parametrize("term", sorted(PLANTED))
def test_planted_plan_hazard_ratio_recovered(planted, term):
    """The hazard of a plan from any state before one, on time since referral, is the
    generator's cause-specific CPP hazard: each planted ratio lies in the 95% interval."""
    fit = planted["fit"].filter(pl.col("transition") == "referral to plan")
    assert fit["events"][0] > 2_000
    row = fit.filter(pl.col("term") == term).row(0, named=True)
    assert row["lower"] <= PLANTED[term] <= row["upper"], (term, PLANTED[term], row)


@pytest.mark.slow
def test_planted_closure_hazard_has_no_disability_effect(planted):
    """Closure without a plan has no planted covariate effect (hazard ratio 1 for disability,
    ``closure_hazard``): the move from the states before a plan to closed recovers it."""
    planted_hr = ALL_EFFECTS["closure_hazard"]["hazard_ratios"]["disabled"]
    fit = planted["fit"].filter(pl.col("transition") == "closed without a plan")
    assert fit["events"][0] > 10_000
    row = fit.filter(pl.col("term") == "disabled").row(0, named=True)
    assert row["lower"] <= planted_hr <= row["upper"], row


def _truth_state(truth: pl.DataFrame, day: int) -> pl.Series:
    """The furthest stage reached by ``day`` days after referral, from the generator's truth
    (independent of the package: plain Python over the truth file's dates)."""
    stages = [
        ("assessment", "assessment_start"),
        ("s47", "first_s47_start"),
        ("icpc", "first_icpc_date"),
        ("cpp", "first_cpp_start"),
        ("care", "entered_care_date"),
    ]
    out = []
    for rec in truth.iter_rows(named=True):
        ref = rec["referral_date"]
        closure = rec["closure_date"]
        if closure is not None and (closure - ref).days <= day:
            out.append("closed")
            continue
        state = "referred"
        for name, col in stages:
            d = rec[col]
            if d is not None and 0 <= (d - ref).days <= day:
                state = name
        out.append(state)
    return pl.Series(out)


@pytest.mark.slow
def test_planted_occupation_matches_generator_truth(planted):
    """Referrals of 2018-19 are all followed for a year (data end 31 March 2020), so the
    Aalen–Johansen occupation at 30, 91, 182 and 364 days is the share of those referrals in
    each stage in the generator's truth (equal to 1e-15 on this run; 1e-3 allowed)."""
    referred_1819 = pl.col("referral_date").is_between(D(2018, 4, 1), D(2019, 3, 31))
    truth = pl.read_parquet(planted["root"] / "synth" / "truth" / "episodes.parquet").filter(
        referred_1819 & ~pl.col("referral_nfa")
    )
    rows = ms.pathway_frame(planted["episodes"].filter(referred_1819))
    days = [30, 91, 182, 364]
    occ = ms.state_occupation(rows, times=days, cluster="child_id")
    for day in days:
        shares = _truth_state(truth, day).value_counts(normalize=True)
        expected = dict(zip(shares[:, 0], shares[:, 1], strict=True))
        got = occ.filter(pl.col("time") == day)
        for state, estimate in zip(got["state"], got["estimate"], strict=True):
            assert abs(estimate - expected.get(state, 0.0)) < 1e-3, (day, state, estimate)
