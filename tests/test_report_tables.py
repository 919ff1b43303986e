"""Unit tests for cinresearch.notebook: disclosure control of displayed tables, the synthetic
data check, parameters, the text written from numbers, and the chapter helpers, each on tiny
hand-made frames with answers worked out by hand."""

from __future__ import annotations

import math
from datetime import date

import matplotlib

matplotlib.use("Agg")

import polars as pl  # noqa: E402
import pytest  # noqa: E402

from cinresearch import notebook as nb  # noqa: E402
from cinresearch.pseudonymise import DEMO_KEY, Pseudonymiser  # noqa: E402
from cinresearch.store import Store  # noqa: E402

# --------------------------------------------------------------------------- store fixtures


def _commit(store: Store, key: str, kind: str, *, year=None, la=None, key_id=None, counts=None):
    detail = {"key_id": key_id} if key_id else {}
    store.commit_input(
        key,
        file=f"{key}.xml",
        sha256=key,
        kind=kind,
        frames={},
        census_year=year,
        la_code=la,
        counts=counts or {},
        detail=detail,
    )


@pytest.fixture
def demo_id() -> str:
    return Pseudonymiser(DEMO_KEY).key_id


# --------------------------------------------------------------------------- is_synthetic


def test_is_synthetic_only_when_every_keyed_input_used_the_demo_key(tmp_path, demo_id):
    store = Store(tmp_path / "s")
    assert not nb.is_synthetic(store)  # empty store: treated as real
    _commit(store, "population_2018", "population")  # no key id: does not decide
    assert not nb.is_synthetic(store)
    _commit(store, "cin_2018_201", "cin_xml", year=2018, la="201", key_id=demo_id)
    _commit(store, "cla_2018_201", "ssda903_episodes", year=2018, la="201", key_id=demo_id)
    assert nb.is_synthetic(store) and nb.is_synthetic(str(store.root))
    _commit(store, "cin_2019_201", "cin_xml", year=2019, la="201", key_id="0123456789ab")
    assert not nb.is_synthetic(store)  # one real key makes the whole store real


def test_demo_key_id_is_the_manifest_key_id(demo_id):
    assert nb.demo_key_id() == demo_id and len(demo_id) == 12


# --------------------------------------------------------------------------- parameters


def test_check_parameters(tmp_path, demo_id):
    store = Store(tmp_path / "s")
    with pytest.raises(ValueError, match="not a store"):
        nb.check_parameters(store, 2019, "ENG")
    for year, la in ((2018, "201"), (2019, "201"), (2019, "890")):
        _commit(store, f"cin_{year}_{la}", "cin_xml", year=year, la=la, key_id=demo_id)
    assert nb.census_years_in_store(store) == [2018, 2019]
    assert nb.la_codes_in_store(store) == ["201", "890"]
    assert nb.check_parameters(store, 2019, "eng") == (2019, "ENG")
    assert nb.check_parameters(store, "2018", 890) == (2018, "890")
    assert nb.check_parameters(store, 2018, "England") == (2018, "ENG")
    with pytest.raises(ValueError, match=r"census_year 2020 .*\[2018, 2019\]"):
        nb.check_parameters(store, 2020, "ENG")
    with pytest.raises(ValueError, match="la_code '999'"):
        nb.check_parameters(store, 2019, "999")


def test_cohort_window():
    assert nb.cohort_window(2021) == (2019, 2021)
    assert nb.cohort_window(2021, 1) == (2021, 2021)
    assert nb.cohort_window(2021, (2020, 2018)) == (2018, 2020)
    assert nb.cohort_window(2019, None, available=[2018, 2019, 2020]) == (2018, 2019)
    assert nb.cohort_window(2021, (2015, 2030), available=[2018, 2021]) == (2018, 2021)
    with pytest.raises(ValueError):
        nb.cohort_window(2021, 0)
    with pytest.raises(ValueError):
        nb.cohort_window(2021, (2015, 2016), available=[2018, 2021])


def test_geography_helpers():
    frame = pl.DataFrame({"la_code": ["201", "890", "890"], "n": [1, 2, 3]})
    assert nb.for_geography(frame, "ENG").height == 3
    assert nb.for_geography(frame, "890")["n"].to_list() == [2, 3]
    assert nb.geography_label("ENG") == "England"
    assert nb.geography_label("890", synthetic=True) == "LA 890 (synthetic)"
    assert nb.geography_label("890") == "Blackpool (890)"
    assert nb.rounding_base_for("ENG") == 10 and nb.rounding_base_for("890") is None
    assert nb.year_label(2021) == "2020-21"
    header = nb.report_header(2021, "ENG", True, ["**Cohort:** x"])
    assert "2020-21" in header and "**Cohort:** x" in header and "Synthetic data" in header
    assert "Synthetic data" not in nb.report_header(2021, "ENG", False)


def test_census_year_and_age_at_31_march():
    frame = pl.DataFrame(
        {
            "d": [date(2017, 3, 31), date(2017, 4, 1), date(2018, 3, 31)],
            "birth_date": [date(2010, 3, 31), date(2010, 4, 1), None],
            "census_year": [2017, 2018, 2018],
        }
    )
    out = frame.select(
        y=nb.census_year_expr("d"), age=nb.age_at_31_march_expr("birth_date", "census_year")
    )
    assert out["y"].to_list() == [2017, 2018, 2018]
    assert out["age"].to_list() == [7, 7, None]


# --------------------------------------------------------------------------- text


def test_count_and_pct_text():
    assert nb.count_text(0) == "no"
    assert nb.count_text(3) == "fewer than 6"
    assert nb.count_text(7, threshold=10) == "fewer than 11"
    assert nb.count_text(1234) == "1,234"
    assert nb.count_text(1235, rounding_base=10) == "1,240"  # half up
    assert nb.pct_text(1, 3) == "a suppressed share (small numbers)"
    assert nb.pct_text(10, 4) == "a suppressed share (small numbers)"
    assert nb.pct_text(10, 80) == "12.5%"
    assert nb.pct_text(1, 8, threshold=0) == "12.5%"
    assert nb.pct_text(0, 40) == "0.0%"
    assert nb.pct_text(None, 40) == "x"


def test_p_values_and_estimates():
    assert nb.format_p(0.0004) == "<0.001" and nb.format_p(None) == "x"
    assert nb.format_p(0.0425) == "0.043"  # half up
    assert nb.p_text(0.0004) == "p < 0.001" and nb.p_text(0.2) == "p = 0.200"
    assert nb.format_estimate(0.1234, 0.1, 0.15) == "12.3% (10.0 to 15.0)"
    assert nb.format_estimate(None) == "c"
    assert nb.format_estimate(1.845, 1.125, 3.0, percent=False, decimals=2) == (
        "1.85 (1.13 to 3.00)"
    )
    table = pl.DataFrame({"hr": [2.0, None], "lower": [1.5, None], "upper": [2.5, None]})
    assert nb.ratio_text(table, "hr").to_list() == ["2.00 (1.50 to 2.50)", "x"]
    med = pl.DataFrame({"median": [120.0, None], "lower": [90.0, None], "upper": [None, None]})
    assert nb.median_text(med).to_list() == ["120 (90 to not reached)", "Not reached"]


# --------------------------------------------------------------------------- show_table / SDC


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
    out = nb.protect_frame(
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
    assert nb.protect_frame(frame, count_columns=["n"], threshold=0)["n"][1] == "3"


def test_secondary_suppression_across_a_total():
    frame = pl.DataFrame({"band": ["under 1", "1-4", "5-9", "Total"], "n": [3, 40, 57, 100]})
    out = nb.protect_frame(frame, count_columns=["n"], filters=["band"])
    # 3 is hidden; 40 (next smallest) too, or 3 = 100 - 40 - 57
    assert out["n"].to_list() == ["c", "c", "57", "100"]
    # England: rounded half up to 10, primary suppression only
    eng = nb.protect_frame(frame, count_columns=["n"], filters=["band"], rounding_base=10)
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
    out = nb.protect_frame(
        frame,
        count_columns=["read", "loaded", "rejected"],
        row_totals={"read": ["loaded", "rejected"]},
    )
    # rejected 3 = 100 - 97, so loaded is hidden as well
    assert out.row(0) == ("Child", "100", "c", "c")
    assert out.row(1) == ("Referral", "50", "50", "0")


def test_rates_hidden_columns_and_identifiers():
    frame = pl.DataFrame({"la": ["201", "890"], "rate": [12.25, 33.3], "num": [20, 2]})
    out = nb.protect_frame(frame, rate_columns={"rate": "num"}, hide_columns=["num"])
    assert out.columns == ["la", "rate"] and out["rate"].to_list() == ["12.3", "c"]
    for column in ("child_id", "UPN_HASH", "episode_id", "la_child_id"):
        with pytest.raises(ValueError, match="identifier"):
            nb.protect_frame(pl.DataFrame({column: ["a"], "n": [10]}), count_columns=["n"])
    with pytest.raises(ValueError, match="not in frame"):
        nb.protect_frame(frame, count_columns=["missing"])


def test_show_table_displays_protected_html(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    frame = pl.DataFrame({"band": ["a", "b"], "n": [2, 40]})
    result = nb.show_table(
        frame, "Title <b>", count_columns=["n"], labels={"band": "Age band"}, notes="Source."
    )
    assert result is None and len(shown) == 1
    body = shown[0].data
    assert "Age band" in body and ">40<" in body and ">2<" not in body
    assert "c = suppressed" in body and "Source." in body and "Title &lt;b&gt;" in body
    empty = nb.table_html(frame.clear(), "Nothing", count_columns=["n"])
    assert "no records in scope" in empty
    quiet = nb.table_html(frame, "T", count_columns=["n"], auto_notes=False)
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
    wide, rates, hidden = nb.wide_percentages(long, ["year"], "field")
    out = nb.protect_frame(wide, rate_columns=rates, hide_columns=hidden)
    assert out.columns == ["year", "UPN (school age)", "Ethnicity"]
    assert out.rows() == [("2019", "90.0", "99.0"), ("2020", "c", "98.0")]


def test_mask_small_counts():
    frame = pl.DataFrame({"n": [0, 3, 9], "v": [1.0, 2.0, 3.0]})
    assert nb.mask_small_counts(frame, ["v"], "n")["v"].to_list() == [1.0, None, 3.0]
    assert frame.select(nb.small_count_expr("n", 5))["n"].to_list() == [False, True, False]


# --------------------------------------------------------------------------- figures


def test_show_figure_and_tidy_percent_axis(monkeypatch):
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    fig = Figure(figsize=(6, 3))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0.0, 0.2], label="a")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_title("A title")
    ax.legend()
    nb.tidy_percent_axis(fig)
    fig.canvas.draw()
    ticks = [t for t in ax.get_yticks() if 0 <= t <= 0.2]
    # every tick is a whole percentage, so a 0-decimal label is exact
    assert all(abs(t * 100 - round(t * 100)) < 1e-9 for t in ticks)
    nb.legend_outside(fig, title="Key")
    assert ax.get_legend().get_title().get_text() == "Key"
    nb.show_figure(fig)
    image = shown[0]
    assert image.data[:4] == b"\x89PNG" and image.width == int(6 * 110)
    assert image.alt == "A title"


# --------------------------------------------------------------------------- findings


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
    lines = nb.ratio_findings(table, "become the subject of a child protection plan")
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
    assert "(odds ratio 2.10," in nb.ratio_findings(odds, "x")[0]


def test_term_labels():
    assert nb.term_label("age_band[under 1]", "5-9") == "Age under 1 (vs 5-9)"
    assert nb.term_label("disabled") == "Disabled (vs not)"
    assert nb.term_label("sex[F]", "M") == "Sex: girls (vs boys)"
    table = pl.DataFrame({"term": ["age_band[1-4]", "disabled"], "reference": ["5-9", None]})
    assert nb.label_terms(table)["term"].to_list() == ["Age 1-4 (vs 5-9)", "Disabled (vs not)"]


# --------------------------------------------------------------------------- models and curves


def test_model_frame_reports_what_it_leaves_out():
    frame = pl.DataFrame(
        {
            "age_band": ["under 1"] * 6 + ["5-9"] * 6 + ["16+"] * 3 + [None],
            "disabled": [False] * 16,
            "sex": ["M", "F"] * 7 + ["U", "M"],
            "event": [1] * 6 + [1] * 6 + [1, 0, 0] + [1],
        }
    )
    kept, notes = nb.model_frame(frame, ["age_band", "disabled", "sex"], min_events=5)
    assert sorted(kept["age_band"].unique().to_list()) == ["5-9", "under 1"]
    assert kept.height == 12
    assert notes[0].startswith("Fewer than 6 records of children whose sex was not known")
    assert notes[1].startswith("Fewer than 6 records with a missing characteristic")
    assert notes[2] == "Groups with fewer than 5 events are left out: 16+."
    assert nb.sparse_levels(frame, "age_band", min_events=6) == ["16+"]
    assert nb.drop_incomplete(frame, ["age_band"])[1] == 1


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
    at = nb.curve_at(curve, [15, 25, 40])
    a = at.filter(pl.col("group") == "A")
    # step function: value of the last row at or before t; risk set of the first row at/after
    assert a["estimate"].to_list() == [0.1, None, None]  # at 25 the next row has 9 at risk
    b = at.filter(pl.col("group") == "B")
    assert b["estimate"].to_list() == [0.5, None, None]  # after the last row: 0 at risk
    table = nb.curve_table(curve, [15], time_labels={15.0: "15 days"}, group_label="G")
    assert table.rows() == [("A", "10.0% (5.0 to 15.0)"), ("B", "50.0% (30.0 to 70.0)")]


def test_order_age_bands_and_reconciliation_tables():
    frame = pl.DataFrame({"band": ["Total", "16+", "unborn", "Missing", "1-4"]})
    assert nb.order_age_bands(frame, "band")["band"].to_list() == [
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
    selection, ends = nb.reconciliation_tables(recon)
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


# --------------------------------------------------------------------------- planted effects


def test_planted_effects_as_model_terms():
    effects = {
        "planted_effects": {
            "cpp_hazard": {
                "reference": {"age_band": "5-9", "disabled": False},
                "hazard_ratios": {"age_band": {"under 1": 2.0, "5-9": 1.0}, "disabled": 1.5},
            },
            "rereferral": {
                "probability": 0.5,
                "fast_share": 1.0,
                "fast_mean_days": 365,
                "slow_mean_days": 900,
            },
        }
    }
    planted = nb.planted_hazard_ratios(effects)
    assert planted == {"age_band[under 1]": 2.0, "disabled": 1.5}
    table = pl.DataFrame(
        {
            "term": ["age_band[under 1]", "disabled", "sex[F]"],
            "hazard_ratio": [1.8, 2.5, 1.0],
            "lower": [1.2, 1.9, 0.8],
            "upper": [2.6, 3.1, 1.2],
            "reference": ["5-9", None, "M"],
        }
    )
    check = nb.compare_with_planted(table, planted)
    assert check["term"].to_list() == ["age_band[under 1]", "disabled"]
    assert check["covered"].to_list() == [True, False]
    # all fast gaps with mean 365 days: 0.5 x (1 - e^-1)
    assert nb.planted_rereferral_12m(effects) == pytest.approx(0.5 * (1 - math.exp(-1)))
    assert nb.planted_rereferral_12m({}) is None


def test_planted_effects_file(tmp_path):
    assert nb.planted_effects(tmp_path / "missing.yaml") is None
    path = tmp_path / "effects.yaml"
    path.write_text("planted_effects:\n  cpp_hazard: {hazard_ratios: {disabled: 1.5}}\n")
    assert nb.planted_hazard_ratios(nb.planted_effects(path)) == {"disabled": 1.5}
    real = nb.planted_effects()
    if real is not None:  # the generator's own file, when present, has the CPP effects
        assert nb.planted_hazard_ratios(real)["disabled"] > 1


# --------------------------------------------------------------------------- chapter 1


def test_inputs_and_element_reconciliation(tmp_path, demo_id):
    store = Store(tmp_path / "s")
    cin_counts = {
        "rows": {"children": 10, "referrals": 12},
        "elements": {
            "Child": {"read": 11, "loaded": 10, "rejected": 1},
            "CINdetails": {"read": 12, "loaded": 12, "rejected": 0},
        },
        "rejected": 1,
        "flagged": 2,
        "balanced": True,
    }
    _commit(
        store, "cin_2019_201", "cin_xml", year=2019, la="201", key_id=demo_id, counts=cin_counts
    )
    _commit(
        store, "cin_2020_201", "cin_xml", year=2020, la="201", key_id=demo_id, counts=cin_counts
    )
    _commit(
        store, "cin_2019_890", "cin_xml", year=2019, la="890", key_id=demo_id, counts=cin_counts
    )
    csv_counts = {
        "rows": {"npd": 5},
        "elements": {"row": {"read": 6, "loaded": 5, "rejected": 1, "blank_lines": 0}},
        "rejected": 1,
        "balanced": True,
    }
    _commit(store, "npd_2019", "npd", counts=csv_counts)
    inputs = nb.inputs_frame(store, up_to=2019)
    assert inputs.height == 3  # the 2020 return is after census year 2019; the NPD has no year
    cin = inputs.filter(pl.col("kind") == nb.KIND_LABELS["cin_xml"])
    assert cin["children"].to_list() == [10, 10] and cin["records_loaded"].to_list() == [22, 22]
    assert nb.inputs_frame(store, "890").height == 1
    recon = nb.element_reconciliation(store)
    child = recon.filter(pl.col("element") == "Child").row(0, named=True)
    assert (child["inputs"], child["read"], child["loaded"], child["rejected"]) == (3, 33, 30, 3)
    assert recon["unaccounted"].to_list() == [0, 0, 0]
    assert "record (row)" in recon["element"].to_list()


def test_load_run_frame(tmp_path):
    store = Store(tmp_path / "s")
    assert nb.load_run_frame(store).is_empty()
    store.write_json(
        "reports/load_report.json",
        {"files": [{"file": "a.xml", "kind": "cin_xml", "status": "failed", "message": "a.xml:3"}]},
    )
    assert nb.load_run_frame(store).row(0) == (
        "a.xml",
        "CIN census return (XML)",
        "failed",
        "a.xml:3",
    )


def test_field_completeness_counts_rows_for_a_literal_condition():
    frame = pl.DataFrame(
        {
            "la_code": ["201"] * 4,
            "census_year": [2019] * 4,
            "ethnicity": ["WBRI", None, "REFU", "AIND"],
            "closure_date": [date(2019, 1, 1), None, date(2019, 2, 1), None],
            "closure_reason": ["RC7", None, None, None],
        }
    )
    out = nb.field_completeness(
        frame,
        {
            "Ethnicity": (
                pl.lit(True),
                pl.col("ethnicity").is_not_null() & ~pl.col("ethnicity").is_in(["REFU"]),
            ),
            "Closure reason": (
                pl.col("closure_date").is_not_null(),
                pl.col("closure_reason").is_not_null(),
            ),
        },
    )
    rows = {r["field"]: (r["records"], r["complete"], r["pct"]) for r in out.iter_rows(named=True)}
    assert rows == {"Ethnicity": (4, 2, 50.0), "Closure reason": (2, 1, 50.0)}


# --------------------------------------------------------------------------- chapter 2


def _episodes() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "child_id": ["a", "b", "c", "d", "a"],
            "la_code": ["201"] * 5,
            "referral_date": [
                date(2018, 5, 1),
                date(2018, 6, 1),
                date(2019, 3, 1),
                date(2019, 4, 1),
                date(2019, 4, 2),
            ],
            "closure_date": [date(2018, 5, 1), None, date(2019, 6, 1), date(2020, 1, 1), None],
            "referral_nfa": [True, False, False, False, False],
            "first_assessment_start": [None, date(2018, 6, 2), date(2019, 3, 2), None, None],
            "first_s47_start": [None, date(2018, 6, 3), None, None, None],
            "first_icpc_date": [None, date(2018, 6, 20), None, None, None],
            "first_cpp_start": [None, date(2018, 6, 21), None, None, None],
            "open_at_31_march": [[], [2019, 2020], [2019], [], [2020]],
        },
        schema_overrides={"open_at_31_march": pl.List(pl.Int16)},
    )


def test_journey_flow_by_hand():
    flow = nb.journey_flow(_episodes(), [2019, 2020, 2021])
    y2019 = flow.filter(pl.col("census_year") == 2019)
    assert y2019["episodes"].to_list() == [3, 2, 2, 1, 1, 1]
    assert y2019["pct_of_referrals"].to_list() == pytest.approx(
        [100, 200 / 3, 200 / 3, 100 / 3, 100 / 3, 100 / 3]
    )
    assert y2019["pct_of_previous"].to_list()[:3] == pytest.approx([None, 200 / 3, 100.0])
    y2021 = flow.filter(pl.col("census_year") == 2021)  # no referrals: zeros, no percentages
    assert y2021["episodes"].sum() == 0 and y2021["pct_of_referrals"].null_count() == 6


def test_episodes_by_year_by_hand():
    out = nb.episodes_by_year(_episodes(), [2019, 2020])
    assert out.rows(named=True) == [
        {
            "census_year": 2019,
            "referrals": 3,
            "nfa": 1,
            "children_referred": 3,
            "open_at_31_march": 2,
            "closed": 1,
        },
        {
            "census_year": 2020,
            "referrals": 2,
            "nfa": 0,
            "children_referred": 2,
            "open_at_31_march": 2,
            "closed": 2,
        },
    ]


def test_sample_journeys_picks_children_with_a_plan_inside_the_window():
    episodes = _episodes()
    events = pl.DataFrame(
        {
            "child_id": ["a", "b", "b", "c"],
            "la_code": ["201"] * 4,
            "date": [date(2018, 5, 1), date(2018, 6, 1), date(2018, 6, 21), date(2019, 3, 1)],
            "event": ["referral", "referral", "cpp_start", "referral"],
            "seq": [1, 1, 2, 1],
        }
    )
    sample = nb.sample_journeys(episodes, events, 5, 2019, 2019)
    assert sample["child_id"].unique().to_list() == ["b"] and sample.height == 2
    assert nb.sample_journeys(episodes, events, 5, 2020, 2020).is_empty()


def test_merge_audit_summary_by_la():
    audit = pl.DataFrame(
        {
            "table": ["referrals", "referrals", "referrals"],
            "key": ["c1|201|2019-01-01", "c1|201|2019-01-01", "c2|890|2019-02-01"],
            "column": ["closure_date", "closure_date", "closure_date"],
            "conflict": [False, True, False],
        }
    )
    assert nb.merge_audit_summary(audit).row(0) == ("referrals", "closure_date", 2, 3, 1)
    assert nb.merge_audit_summary(audit, "890").row(0) == ("referrals", "closure_date", 1, 1, 0)


# --------------------------------------------------------------------------- chapter 5


def _indicators() -> pl.DataFrame:
    rows = [
        ("National", None, 100.0, 10_000.0, 100.0),
        ("Local authority", "201", 60.0, 5_000.0, 120.0),
        ("Local authority", "202", 37.0, 4_000.0, 92.5),
        ("Local authority", "203", 3.0, 1_000.0, 30.0),
    ]
    return pl.DataFrame(
        [
            {
                "geographic_level": g,
                "la_code": la,
                "census_year": 2021,
                "measure": "referrals_rate",
                "breakdown": "total",
                "breakdown_level": "Total",
                "numerator": n,
                "denominator": d,
                "value": v,
                "unit": "rate_per_10000",
            }
            for g, la, n, d, v in rows
        ]
    )


def test_funnel_figure_hides_small_las():
    from matplotlib.figure import Figure

    fig, note = nb.funnel_figure(_indicators(), "referrals_rate", 2021, "202")
    assert isinstance(fig, Figure)
    assert note == "1 LA(s) with a count from 1 to 5 are not plotted."
    fig, note = nb.funnel_figure(_indicators(), "referrals_rate", 2021, "203")
    assert note.endswith("LA 203 is not plotted (small numbers).")
    counts = _indicators().with_columns(unit=pl.lit("count"))
    assert nb.funnel_figure(counts, "referrals_rate", 2021)[0] is None
    assert nb.funnel_figure(_indicators(), "referrals_rate", 2020) == (None, "no England value")


def test_neighbour_list_falls_back_to_nearest_las():
    frame = _indicators()
    # referrals_rate is one of the fallback measures: 202 (92.5) is nearer 201 (120) than 203
    peers, source = nb.neighbour_list(frame, "201", 2021)
    assert peers == ["202", "203"] and "most similar" in source
    other = frame.with_columns(measure=pl.lit("something_else"))
    peers, source = nb.neighbour_list(other, "201", 2021)
    assert peers == [] and "no statistical neighbours" in source  # said in words, no warning


def test_measure_labels_and_trend_figure():
    labels = nb.measure_labels()
    assert labels["referrals_rate"].startswith("Referrals per 10,000")
    series = pl.DataFrame(
        {
            "census_year": [2020, 2021, 2020, 2021],
            "measure": ["referrals_rate"] * 4,
            "area": ["LA 201", "LA 201", "England", "England"],
            "value": [100.0, 110.0, 90.0, 95.0],
            "numerator": [50.0, 3.0, None, None],
        }
    )
    fig = nb.trend_figure(series, ["referrals_rate"], "Over time")
    line = fig.axes[0].get_lines()[0]
    ys = list(line.get_ydata())
    assert ys[0] == 100.0 and math.isnan(ys[1])  # the small count is not drawn


# --------------------------------------------------------------------------- chapter 6


def test_need_groups():
    frame = pl.DataFrame({"primary_need": ["N1", "N2", "N5", "N9", None]})
    assert frame.select(nb.need_group_expr()).to_series().to_list() == [
        "Abuse or neglect",
        "Disability or illness",
        "Family stress",
        "Other needs",
        "Not recorded",
    ]


def test_education_outcomes_by_hand():
    npd = pl.DataFrame(
        {
            "upn_hash": ["u1", "u2", "u3", "u4", "u1"],
            "academic_year": [2020, 2020, 2020, 2020, 2019],
            "la_code": ["201"] * 5,
            "sessions_possible": [100, 100, 200, 100, 100],
            "sessions_absent": [20, 10, 10, 0, 5],
            "persistent_absence": [True, True, False, False, False],
            "suspensions": [1, 0, 0, 2, 0],
            "permanent_exclusion": [False, False, False, False, False],
            "ks2_rwm_expected": [None, True, False, None, None],
            "ks4_attainment8": [30.0, None, None, 50.0, None],
        },
        schema_overrides={"academic_year": pl.Int16, "suspensions": pl.Int16},
    )
    episodes = pl.DataFrame(
        {
            "upn_hash": ["u1", "u2", "u3", "u4"],
            "la_code": ["201"] * 4,
            # u1 open in 2019/20; u2 closed before it (earlier); u3 NFA; u4 assessed not in need
            "referral_date": [
                date(2019, 10, 1),
                date(2018, 1, 1),
                date(2019, 10, 1),
                date(2019, 10, 1),
            ],
            "closure_date": [None, date(2018, 6, 1), date(2019, 10, 1), date(2019, 11, 1)],
            "closure_reason": [None, "RC7", "RC7", "RC8"],
            "referral_nfa": [False, False, True, False],
        }
    )
    out = nb.education_outcomes(npd, episodes, [2019, 2020])
    y2020 = {
        r["group"]: r for r in out.filter(pl.col("academic_year") == 2020).iter_rows(named=True)
    }
    assert list(y2020) == ["In need this year", "In need in an earlier year", "Other pupils"]
    cin = y2020["In need this year"]
    assert (cin["pupils"], cin["absence_rate"], cin["suspended"], cin["attainment8_mean"]) == (
        1,
        20.0,
        1,
        30.0,
    )
    earlier = y2020["In need in an earlier year"]
    assert earlier["pupils"] == 1 and earlier["ks2_expected_pct"] == 100.0
    other = y2020["Other pupils"]  # u3 (NFA) and u4 (assessed not in need)
    assert other["pupils"] == 2 and other["absence_rate"] == pytest.approx(100 * 10 / 300)
    assert other["suspended_pct"] == 50.0 and other["ks4_pupils"] == 1
    # in 2018/19 u1 (the only pupil with a row) had not been referred yet
    y2019 = out.filter(pl.col("academic_year") == 2019)
    assert y2019["group"].to_list() == ["Other pupils"]
    assert nb.education_outcomes(npd, episodes, [2020], la_code="890").is_empty()


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
    tests, notes = nb.gray_tests(frame, {"Band": "band"}, min_events=5)
    assert tests["groups"].to_list() == [2] and tests["df"].to_list() == [1]
    assert notes == ["Band: groups with fewer than 5 events left out of the test: tiny."]
    # the test on the groups kept is survival.gray_test on those rows
    from cinresearch.survival import gray_test

    expected = gray_test(frame.filter(pl.col("band") != "tiny"), group="band")
    assert tests["statistic"][0] == pytest.approx(expected["statistic"][0])
    sentence = nb.gray_sentence(tests, notes)
    assert sentence.startswith("Gray's test of a difference between groups (band): chi-squared")
    assert sentence.endswith("left out of the test: tiny.")
    one = frame.filter(pl.col("band") == "A")
    tests, notes = nb.gray_tests(one, {"Band": "band"})
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
    kept, notes = nb.model_frame(frame, ["age_band", "disabled", "sex"], min_events=5)
    unborn_rows = frame.filter(pl.col("age_band") == "unborn")["row"]
    assert unborn_rows.is_in(kept["row"].implode()).all()  # no unborn referral dropped
    assert (unborn_rows.len() > 0) and (frame["sex"] == "U").sum() > 50
    # the born children of unknown sex are still left out, and said so
    assert kept.height == n - 3
    assert any(note.startswith("Unborn children are modelled") for note in notes)
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
