"""Unit tests for cinresearch.report.tables: disclosure control of displayed tables (decided by
cinresearch.disclosure), curve values at set times, row order and reconciliation tables, on
tiny hand-made frames with answers worked out by hand."""

from __future__ import annotations

import polars as pl
import pytest

from cinresearch.report import figures, tables


def test_primary_suppression_and_formatting():
    frame = pl.DataFrame(
        {
            "group": ["a", "b", "c", "d"],
            "n": [0, 3, 12345, None],
            "events": [0, 1, 300, 5],
            "pct": [0.0, 33.333, 2.43, 50.0],
            "hr": [1.234, None, float("nan"), 2.0],
            "p": [0.0001, 0.5, None, 0.04],
            "flag": [True, False, None, True],
        },
        schema_overrides={"n": pl.Int64},
    )
    out = tables.protect_frame(
        frame,
        count_columns=["n", "events"],
        rate_columns={"pct": ("events", "n")},
        p_columns=["p"],
    )
    assert out.schema == pl.Schema(dict.fromkeys(frame.columns, pl.String))
    assert out["n"].to_list() == ["0", "c", "12,345", "x"]
    assert out["events"].to_list() == ["0", "c", "300", "c"]
    assert out["pct"].to_list() == ["0", "c", "2.4", "c"]  # with a suppressed numerator
    assert out["hr"].to_list() == ["1.23", "x", "z", "2.00"]
    assert out["p"].to_list() == ["<0.001", "0.500", "x", "0.040"]
    assert out["flag"].to_list() == ["Yes", "No", "x", "Yes"]
    # a threshold of 0 suppresses nothing
    assert tables.protect_frame(frame, count_columns=["n"], threshold=0)["n"][1] == "3"


def test_secondary_suppression_across_a_total():
    frame = pl.DataFrame({"band": ["under 1", "1-4", "5-9", "Total"], "n": [3, 40, 57, 100]})
    out = tables.protect_frame(frame, count_columns=["n"], filters=["band"])
    # 3 is hidden; 40 (next smallest) too, or 3 = 100 - 40 - 57
    assert out["n"].to_list() == ["c", "c", "57", "100"]
    # England: rounded half up to 10, primary suppression only
    eng = tables.protect_frame(frame, count_columns=["n"], filters=["band"], rounding_base=10)
    assert eng["n"].to_list() == ["c", "40", "60", "100"]


def test_row_totals_protect_a_reconciliation():
    frame = pl.DataFrame(
        {
            "element": ["Child", "Referral"],
            "read": [100, 50],
            "loaded": [97, 50],
            "rejected": [3, 0],
        }
    )
    out = tables.protect_frame(
        frame,
        count_columns=["read", "loaded", "rejected"],
        row_totals={"read": ["loaded", "rejected"]},
    )
    # rejected 3 = 100 - 97, so loaded is hidden as well
    assert out.row(0) == ("Child", "100", "c", "c")
    assert out.row(1) == ("Referral", "50", "50", "0")


def test_rates_hidden_columns_and_identifiers():
    frame = pl.DataFrame({"la": ["201", "890"], "rate": [12.25, 33.3], "num": [20, 2]})
    out = tables.protect_frame(frame, rate_columns={"rate": "num"}, hide_columns=["num"])
    assert out.columns == ["la", "rate"] and out["rate"].to_list() == ["12.3", "c"]
    for column in ("child_id", "UPN_HASH", "episode_id", "la_child_id"):
        with pytest.raises(ValueError, match="identifier"):
            tables.protect_frame(pl.DataFrame({column: ["a"], "n": [10]}), count_columns=["n"])
    with pytest.raises(ValueError, match="not in frame"):
        tables.protect_frame(frame, count_columns=["missing"])


def test_show_table_displays_protected_html(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    frame = pl.DataFrame({"band": ["a", "b"], "n": [2, 40]})
    result = tables.show_table(
        frame, "Title <b>", count_columns=["n"], labels={"band": "Age band"}, notes="Source."
    )
    assert result is None and len(shown) == 1
    body = shown[0].data
    assert "Age band" in body and ">40<" in body and ">2<" not in body
    assert "c = suppressed" in body and "Source." in body and "Title &lt;b&gt;" in body
    empty = tables.table_html(frame.clear(), "Nothing", count_columns=["n"])
    assert "no records in scope" in empty
    quiet = tables.table_html(frame, "T", count_columns=["n"], auto_notes=False)
    assert "c = suppressed" not in quiet


def test_wide_percentages_suppress_with_hidden_counts():
    long = pl.DataFrame(
        {
            "year": [2019, 2019, 2020, 2020],
            "field": ["UPN (school age)", "Ethnicity", "UPN (school age)", "Ethnicity"],
            "records": [100, 100, 4, 100],
            "complete": [90, 99, 4, 98],
            "pct": [90.0, 99.0, 100.0, 98.0],
        }
    )
    wide, rates, hidden = tables.wide_percentages(long, ["year"], "field")
    out = tables.protect_frame(wide, rate_columns=rates, hide_columns=hidden)
    assert out.columns == ["year", "UPN (school age)", "Ethnicity"]
    assert out.rows() == [("2019", "90.0", "99.0"), ("2020", "c", "98.0")]


def test_mask_small_counts():
    frame = pl.DataFrame({"n": [0, 3, 9], "v": [1.0, 2.0, 3.0]})
    assert figures.mask_small_counts(frame, ["v"], "n")["v"].to_list() == [1.0, None, 3.0]
    assert frame.select(tables.small_count_expr("n", 5))["n"].to_list() == [False, True, False]


def test_curve_at_and_curve_table_hide_small_risk_sets():
    curve = pl.DataFrame(
        {
            "group": ["A"] * 4 + ["B"] * 2,
            "time": [0, 10, 20, 30, 0, 15],
            "estimate": [0.0, 0.1, 0.2, 0.3, 0.0, 0.5],
            "lower": [0.0, 0.05, 0.1, 0.2, 0.0, 0.3],
            "upper": [0.0, 0.15, 0.3, 0.4, 0.0, 0.7],
            "at_risk": [100, 90, 50, 9, 20, 12],
        }
    )
    at = tables.curve_at(curve, [15, 25, 40])
    a = at.filter(pl.col("group") == "A")
    # step function: value of the last row at or before t; risk set of the first row at/after
    assert a["estimate"].to_list() == [0.1, None, None]  # at 25 the next row has 9 at risk
    b = at.filter(pl.col("group") == "B")
    assert b["estimate"].to_list() == [0.5, None, None]  # after the last row: 0 at risk
    table = tables.curve_table(curve, [15], time_labels={15.0: "15 days"}, group_label="G")
    assert table.rows() == [("A", "10.0% (5.0 to 15.0)"), ("B", "50.0% (30.0 to 70.0)")]


def test_order_age_bands_and_reconciliation_tables():
    frame = pl.DataFrame({"band": ["Total", "16+", "unborn", "Missing", "1-4"]})
    assert tables.order_age_bands(frame, "band")["band"].to_list() == [
        "unborn",
        "1-4",
        "16+",
        "Missing",
        "Total",
    ]
    recon = pl.DataFrame(
        {
            "stage": [
                "input",
                "not in cohort",
                "not in cohort",
                "in cohort",
                "excluded",
                "rows out",
                "end reason",
                "end reason",
                "end reason",
            ],
            "reason": [
                "episodes (subjects)",
                "referral outside window",
                "NFA referral",
                "episodes",
                "died before origin",
                "episodes",
                "censored: data end",
                "competing: closed without plan",
                "outcome",
            ],
            "n": [100, 30, 0, 70, 2, 68, 8, 50, 10],
        }
    )
    selection, ends = tables.reconciliation_tables(recon)
    assert selection.rows() == [
        ("Left out: referral outside window", 30),
        ("Cannot be analysed: died before origin", 2),
        ("Analysed", 68),
        ("Total", 100),
    ]
    assert ends["reason"].to_list() == [
        "Data end (censored)",
        "Closed without plan (competing)",
        "The event of interest",
        "Total",
    ]
    # both tables add up to their Total row
    for table in (selection, ends):
        assert table["n"][:-1].sum() == table["n"][-1]
