"""Unit tests for cinresearch.model_frames: the rows a model can use and what was left out, and
Gray's tests with sparse groups left out, on hand-made frames and planted effects."""

from __future__ import annotations

import polars as pl
import pytest

from cinresearch import model_frames
from cinresearch.report import text


def test_model_frame_reports_what_it_leaves_out():
    frame = pl.DataFrame(
        {
            "age_band": ["under 1"] * 6 + ["5-9"] * 6 + ["16+"] * 3 + [None],
            "disabled": [False] * 16,
            "sex": ["M", "F"] * 7 + ["U", "M"],
            "event": [1] * 6 + [1] * 6 + [1, 0, 0] + [1],
        }
    )
    kept, left_out = model_frames.model_frame(frame, ["age_band", "disabled", "sex"], min_events=5)
    assert sorted(kept["age_band"].unique().to_list()) == ["5-9", "under 1"]
    assert kept.height == 12
    # row 14 (16+, sex U) unknown sex; row 15 no age band; 16+ is then left with 1 event < 5
    assert left_out == model_frames.LeftOut(
        unborn=0, unknown_sex=1, incomplete=1, sparse_levels=("16+",), min_events=5
    )
    assert model_frames.sparse_levels(frame, "age_band", min_events=6) == ["16+"]
    assert model_frames.drop_incomplete(frame, ["age_band"])[1] == 1


def test_gray_tests_leave_out_groups_with_few_events():
    import numpy as np

    rng = np.random.default_rng(3)
    n = 200
    group = np.where(np.arange(n) < 100, "A", "B")
    time = rng.exponential(np.where(group == "A", 100, 200)).round() + 1
    frame = pl.DataFrame(
        {
            "duration": np.concatenate([time, [5.0, 9.0]]).astype(int),
            "event_type": np.concatenate([rng.choice([1, 2], n), [1, 0]]),
            "band": np.concatenate([group, ["tiny", "tiny"]]),
        }
    )
    tests, notes = model_frames.gray_tests(frame, {"Band": "band"}, min_events=5)
    assert tests["groups"].to_list() == [2] and tests["df"].to_list() == [1]
    assert notes == ["Band: groups with fewer than 5 events left out of the test: tiny."]
    # the test on the groups kept is survival.gray_test on those rows
    from cinresearch.survival import gray_test

    expected = gray_test(frame.filter(pl.col("band") != "tiny"), group="band")
    assert tests["statistic"][0] == pytest.approx(expected["statistic"][0])
    sentence = text.gray_sentence(tests, notes)
    assert sentence.startswith("Gray's test of a difference between groups (band): chi-squared")
    assert sentence.endswith("left out of the test: tiny.")
    one = frame.filter(pl.col("band") == "A")
    tests, notes = model_frames.gray_tests(one, {"Band": "band"})
    assert tests.is_empty() and notes == ["Band: fewer than two groups to compare; no test."]


def test_model_frame_keeps_every_unborn_referral_and_the_cox_model_runs():
    import numpy as np

    from cinresearch import survival

    rng = np.random.default_rng(7)
    n = 600
    band = rng.choice(["unborn", "under 1", "5-9", "10-15"], n, p=[0.2, 0.2, 0.35, 0.25])
    sex = np.where(
        band == "unborn", rng.choice(["U", "U", "U", "F", "M"], n), rng.choice(["M", "F"], n)
    )
    sex = np.where((band != "unborn") & (np.arange(n) < 3), "U", sex)  # 3 born, sex unknown
    rate = np.where(band == "unborn", 3.0, 1.0) / 400
    t = rng.exponential(1 / rate)
    c = rng.uniform(0, 700, n)
    frame = pl.DataFrame(
        {
            "age_band": band,
            "sex": sex,
            "disabled": rng.random(n) < 0.2,
            "duration": np.ceil(np.minimum(t, c)).astype(int),
            "event": (t <= c).astype(int),
            "row": np.arange(n),
        }
    )
    kept, left_out = model_frames.model_frame(frame, ["age_band", "disabled", "sex"], min_events=5)
    unborn_rows = frame.filter(pl.col("age_band") == "unborn")["row"]
    assert unborn_rows.is_in(kept["row"].implode()).all()  # no unborn referral dropped
    assert (unborn_rows.len() > 0) and (frame["sex"] == "U").sum() > 50
    # the born children of unknown sex are still left out, and counted
    assert kept.height == n - 3
    assert (left_out.unborn, left_out.unknown_sex) == (unborn_rows.len(), 3)
    assert set(kept.filter(pl.col("age_band") == "unborn")["sex"]) == {"M"}
    fit = survival.cox_fit(
        kept,
        covariates=["age_band", "disabled", "sex"],
        reference={"age_band": "5-9", "sex": "M"},
        ph_test=False,
    )
    terms = fit.table["term"].to_list()
    assert "age_band[unborn]" in terms and "sex[F]" in terms
    assert fit.n == n - 3
    hr = fit.table.filter(pl.col("term") == "age_band[unborn]")["hazard_ratio"][0]
    assert 2.0 < hr < 4.5  # planted 3
