"""Unit tests for cinresearch.report.text: numbers as words after disclosure control, p-values,
estimates, and sentences written from model estimates, with answers worked out by hand."""

from __future__ import annotations

import polars as pl

from cinresearch.model_frames import LeftOut
from cinresearch.report import text


def test_count_and_pct_text():
    assert text.count_text(0) == "no"
    assert text.count_text(3) == "fewer than 6"
    assert text.count_text(7, threshold=10) == "fewer than 11"
    assert text.count_text(1234) == "1,234"
    assert text.count_text(1235, rounding_base=10) == "1,240"  # half up
    assert text.pct_text(1, 3) == "a suppressed share (small numbers)"
    assert text.pct_text(10, 4) == "a suppressed share (small numbers)"
    assert text.pct_text(10, 80) == "12.5%"
    assert text.pct_text(1, 8, threshold=0) == "12.5%"
    assert text.pct_text(0, 40) == "0.0%"
    assert text.pct_text(None, 40) == "x"


def test_p_values_and_estimates():
    assert text.format_p(0.0004) == "<0.001" and text.format_p(None) == "x"
    assert text.format_p(0.0425) == "0.043"  # half up
    assert text.p_text(0.0004) == "p < 0.001" and text.p_text(0.2) == "p = 0.200"
    assert text.format_estimate(0.1234, 0.1, 0.15) == "12.3% (10.0 to 15.0)"
    assert text.format_estimate(None) == "c"
    assert text.format_estimate(1.845, 1.125, 3.0, percent=False, decimals=2) == (
        "1.85 (1.13 to 3.00)"
    )
    table = pl.DataFrame({"hr": [2.0, None], "lower": [1.5, None], "upper": [2.5, None]})
    assert text.ratio_text(table, "hr").to_list() == ["2.00 (1.50 to 2.50)", "x"]
    med = pl.DataFrame({"median": [120.0, None], "lower": [90.0, None], "upper": [None, None]})
    assert text.median_text(med).to_list() == ["120 (90 to not reached)", "Not reached"]


def test_ratio_findings_sentences():
    table = pl.DataFrame(
        {
            "term": ["age_band[under 1]", "age_band[16+]", "disabled", "sex[F]"],
            "hazard_ratio": [2.1, 0.45, 1.5, 1.05],
            "lower": [1.6, 0.28, 1.1, 0.9],
            "upper": [2.76, 0.72, 2.0, 1.2],
            "reference": ["5-9", "5-9", None, "M"],
        }
    )
    lines = text.ratio_findings(table, "become the subject of a child protection plan")
    assert lines[0] == (
        "Children under 1 were 2.1 times as likely as children aged 5 to 9 to become the "
        "subject of a child protection plan at any point after referral (hazard ratio 2.10, "
        "95% CI 1.60 to 2.76)."
    )
    assert lines[1].startswith(
        "Young people aged 16 or over were 0.45 times as likely as children aged 5 to 9 "
        "(about 55% less likely)"
    )
    assert lines[2].startswith(
        "Disabled children were 1.5 times as likely as children without a recorded disability"
    )
    assert lines[3].startswith("Girls were 1.1 times as likely as boys")
    assert lines[3].endswith("could be due to chance.")
    assert "chance" not in lines[0]
    odds = table.rename({"hazard_ratio": "odds_ratio"})
    assert "(odds ratio 2.10," in text.ratio_findings(odds, "x")[0]


def test_term_labels():
    assert text.term_label("age_band[under 1]", "5-9") == "Age under 1 (vs 5-9)"
    assert text.term_label("disabled") == "Disabled (vs not)"
    assert text.term_label("sex[F]", "M") == "Sex: girls (vs boys)"
    table = pl.DataFrame({"term": ["age_band[1-4]", "disabled"], "reference": ["5-9", None]})
    assert text.label_terms(table)["term"].to_list() == ["Age 1-4 (vs 5-9)", "Disabled (vs not)"]


def test_left_out_notes_word_counts_under_disclosure_control():
    left_out = LeftOut(unborn=0, unknown_sex=1, incomplete=1, sparse_levels=("16+",), min_events=5)
    assert text.left_out_notes(left_out) == [
        "Fewer than 6 records of children whose sex was not known are left out.",
        "Fewer than 6 records with a missing characteristic are left out.",
        "Groups with fewer than 5 events are left out: 16+.",
    ]
    # counts above the threshold are printed; England's rounded half up to 10 (123 -> 120)
    assert text.left_out_notes(LeftOut(unborn=40, incomplete=123), rounding_base=10) == [
        "Unborn children are modelled as their own age group; sex is not used for them (it is "
        "not known before birth).",
        "120 records with a missing characteristic are left out.",
    ]
    assert text.left_out_notes(LeftOut()) == []


def test_is_confidential_is_the_disclosure_rule():
    # 1..threshold are confidential; 0 and counts above are not; no threshold hides nothing
    assert [text.is_confidential(n) for n in (0, 1, 5, 6, None)] == [
        False,
        True,
        True,
        False,
        False,
    ]
    assert text.is_confidential(7, threshold=10) and not text.is_confidential(3, threshold=0)
    assert text.count_text(3, threshold=0) == "3"
