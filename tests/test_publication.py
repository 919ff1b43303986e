"""EES open-data files: standard columns and order, LA metadata, meta file, symbols, never blank."""

from __future__ import annotations

import csv
import dataclasses
import re
import warnings
from pathlib import Path

import polars as pl
import pytest

from cinresearch import disclosure
from cinresearch.disclosure import SdcSpec, apply_publication_sdc
from cinresearch.geography import la_lookup, regions
from cinresearch.publication import (
    UnknownLACodeWarning,
    ees_conventions,
    styled_table_html,
    to_ees,
    write_ees_csv,
)

STANDARD = [
    "time_period",
    "time_identifier",
    "geographic_level",
    "country_code",
    "country_name",
    "region_code",
    "region_name",
    "old_la_code",
    "new_la_code",
    "la_name",
]


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def mixed_levels() -> pl.DataFrame:
    """A tidy table already through disclosure control: England, London, two LAs."""
    return pl.DataFrame(
        {
            "level": ["National", "National", "Regional", "Local authority", "Local authority"],
            "la_code": [None, None, None, "801", "202"],
            "region": [None, None, "London", None, None],
            "age_band": ["Under 5", "Total", "Total", "Total", "Total"],
            "referrals": ["1240", "5430", "850", "c", "120"],
            "rate": ["low", "512.3", "z", "c", "x"],
        }
    )


# ----------------------------------------------------------------------------- reference lists


def test_la_reference_list_counts_and_codes() -> None:
    assert [la_lookup(y).height for y in (2018, 2019, 2020, 2021, 2022, 2023, 2024, 2025)] == [
        152,
        152,
        151,
        151,
        152,
        152,
        153,
        153,
    ]
    full = la_lookup()
    assert full["old_la_code"].str.contains(r"^\d{3}$").all()
    assert full["new_la_code"].str.contains(r"^E(06|08|09|10)\d{6}$").all()
    assert full["new_la_code"].n_unique() == full.height
    for year in (2018, 2024):
        assert la_lookup(year)["old_la_code"].n_unique() == la_lookup(year).height
    # every LA's region is one of the nine, with the matching name
    joined = full.join(regions(), on="region_code", how="left", suffix="_ref")
    assert (joined["region_name"] == joined["region_name_ref"]).all()
    assert regions()["region_code"].to_list() == [f"E1200000{i}" for i in range(1, 10)]
    london = full.filter(pl.col("region_code") == "E12000007")
    assert london.height == 33 and london["new_la_code"].str.starts_with("E09").all()
    assert london["subregion"].value_counts().sort("subregion")["count"].to_list() == [14, 19]


def test_la_codes_change_with_the_census_year() -> None:
    def new_code(old: str, year: int) -> str:
        return la_lookup(year).filter(pl.col("old_la_code") == old)["new_la_code"].item()

    assert new_code("815", 2023) == "E10000023" and new_code("815", 2024) == "E06000065"
    assert new_code("825", 2020) == "E10000002" and new_code("825", 2021) == "E06000060"
    assert "928" in la_lookup(2021)["old_la_code"] and "928" not in la_lookup(2022)["old_la_code"]
    assert {"940", "941"} <= set(la_lookup(2022)["old_la_code"])


def test_yaml_disclosure_defaults_match_the_code() -> None:
    conv = ees_conventions()
    sdc, symbols = conv["disclosure"], conv["symbols"]
    spec = SdcSpec()
    assert spec.threshold == sdc["threshold"] and spec.min_count == sdc["min_count"]
    assert spec.rounding_base == sdc["rounding_base"] and spec.decimals == sdc["decimals"]
    assert list(spec.rounded_levels) == sdc["rounded_levels"]
    assert spec.secondary_at_rounded_levels == sdc["secondary_at_rounded_levels"]
    assert dataclasses.asdict(disclosure.SYMBOLS) == {
        k: v for k, v in symbols.items() if k != "legacy_rejected"
    }
    assert list(disclosure.LEGACY_SYMBOLS) == symbols["legacy_rejected"]
    assert conv["ees"]["standard_columns"] == STANDARD


# ----------------------------------------------------------------------------- to_ees


def test_to_ees_columns_order_and_geography() -> None:
    out = to_ees(mixed_levels(), 2024, "level", region_code="region")
    assert out.columns == [*STANDARD, "age_band", "referrals", "rate"]
    rows = out.rows(named=True)
    assert {r["time_period"] for r in rows} == {"2024"}
    assert {r["time_identifier"] for r in rows} == {"Reporting year"}
    assert {(r["country_code"], r["country_name"]) for r in rows} == {("E92000001", "England")}
    national, _, regional, bristol, camden = rows
    assert [national[c] for c in STANDARD[5:]] == [None] * 5
    assert (regional["region_code"], regional["region_name"], regional["la_name"]) == (
        "E12000007",
        "London",
        None,
    )
    assert [bristol[c] for c in STANDARD[5:]] == [
        "E12000009",
        "South West",
        "801",
        "E06000023",
        "Bristol, City of",
    ]
    assert (camden["new_la_code"], camden["region_name"]) == ("E09000007", "London")
    # indicator text and symbols pass through untouched
    assert out["rate"].to_list() == ["low", "512.3", "z", "c", "x"]


def test_to_ees_accepts_columns_expressions_and_new_codes() -> None:
    frame = pl.DataFrame(
        {
            "year": [2023, 2024],
            "code": ["E10000023", "815"],
            "n": [10, 20],
        }
    )
    out = to_ees(frame, pl.col("year"), "Local authority", la_code="code", indicators=["n"])
    assert out["old_la_code"].to_list() == ["815", "815"]
    assert out["new_la_code"].to_list() == ["E10000023", "E06000065"]
    assert out["time_period"].to_list() == ["2023", "2024"]
    assert out.columns == [*STANDARD, "n"]


def test_unknown_la_codes_are_named_and_warned() -> None:
    frame = pl.DataFrame(
        {"la_code": ["901", "805"], "region_code": ["E12000001", None], "n": [1, 2]}
    )
    with pytest.warns(UnknownLACodeWarning, match="901"):
        out = to_ees(frame, 2024, "Local authority")
    synthetic = out.row(0, named=True)
    assert synthetic["la_name"] == "Local authority 901"
    assert synthetic["new_la_code"] is None
    # the region supplied with the row is used when the reference list has none
    assert (synthetic["region_code"], synthetic["region_name"]) == ("E12000001", "North East")
    assert out.row(1, named=True)["la_name"] == "Hartlepool"


def test_to_ees_rejects_bad_levels_and_periods() -> None:
    frame = pl.DataFrame({"n": [1]})
    with pytest.raises(ValueError, match="geographic_level"):
        to_ees(frame, 2024, "Country")
    with pytest.raises(ValueError, match="4-digit"):
        to_ees(frame, "2023/24", "National")
    with pytest.raises(ValueError, match="region"):
        to_ees(frame, 2024, "Regional", region_code="Atlantis")


# ----------------------------------------------------------------------------- write_ees_csv


def test_write_ees_csv_data_and_meta(tmp_path: Path) -> None:
    out = to_ees(mixed_levels(), 2024, "level", region_code="region")
    data_path, meta_path = write_ees_csv(
        out,
        tmp_path / "cin_referrals.csv",
        filters=["age_band"],
        indicators=["referrals", "rate"],
        labels={"referrals": "Number of referrals", "rate": "Rate per 10,000 children"},
        units={"rate": ""},
        dp={"rate": 1, "referrals": 0},
        filter_hints={"age_band": "Age at referral"},
    )
    assert data_path == tmp_path / "cin_referrals.csv"
    assert meta_path == tmp_path / "cin_referrals.meta.csv"
    raw = data_path.read_bytes()
    raw.decode("utf-8")  # UTF-8
    assert not raw.startswith(b"\xef\xbb\xbf")
    header = raw.decode().splitlines()[0]
    assert header == ",".join([*STANDARD, "age_band", "referrals", "rate"])

    rows = read_csv_rows(data_path)
    assert len(rows) == 5
    for row in rows:
        assert row["referrals"] != "" and row["rate"] != ""
    assert rows[3]["la_name"] == "Bristol, City of"  # quoted comma survives
    assert [r["rate"] for r in rows] == ["low", "512.3", "z", "c", "x"]
    assert rows[0]["region_code"] == "" and rows[0]["la_name"] == ""

    meta = read_csv_rows(meta_path)
    assert list(meta[0]) == [
        "col_name",
        "col_type",
        "label",
        "indicator_grouping",
        "indicator_unit",
        "indicator_dp",
        "filter_hint",
        "filter_grouping_column",
    ]
    assert meta == [
        {
            "col_name": "age_band",
            "col_type": "Filter",
            "label": "Age band",
            "indicator_grouping": "",
            "indicator_unit": "",
            "indicator_dp": "",
            "filter_hint": "Age at referral",
            "filter_grouping_column": "",
        },
        {
            "col_name": "referrals",
            "col_type": "Indicator",
            "label": "Number of referrals",
            "indicator_grouping": "",
            "indicator_unit": "",
            "indicator_dp": "0",
            "filter_hint": "",
            "filter_grouping_column": "",
        },
        {
            "col_name": "rate",
            "col_type": "Indicator",
            "label": "Rate per 10,000 children",
            "indicator_grouping": "",
            "indicator_unit": "",
            "indicator_dp": "1",
            "filter_hint": "",
            "filter_grouping_column": "",
        },
    ]


def test_write_ees_csv_refuses_blank_and_legacy_cells(tmp_path: Path) -> None:
    base = to_ees(mixed_levels(), 2024, "level", region_code="region")
    kwargs = {"filters": ["age_band"], "indicators": ["referrals", "rate"]}
    blank = base.with_columns(
        pl.when(pl.col("rate") == "x").then(None).otherwise("rate").alias("rate")
    )
    with pytest.raises(ValueError, match="blank"):
        write_ees_csv(blank, tmp_path / "t.csv", **kwargs)
    data_path, _ = write_ees_csv(blank, tmp_path / "t.csv", blank_symbol="x", **kwargs)
    assert [r["rate"] for r in read_csv_rows(data_path)][-1] == "x"

    legacy = base.with_columns(pl.lit(":").alias("rate"))
    with pytest.raises(ValueError, match="legacy"):
        write_ees_csv(legacy, tmp_path / "t.csv", **kwargs)
    with pytest.raises(ValueError, match="snake_case"):
        write_ees_csv(base, tmp_path / "CIN Referrals.csv", **kwargs)
    with pytest.raises(ValueError, match="neither"):
        write_ees_csv(base, tmp_path / "t.csv", filters=["age_band"], indicators=["referrals"])
    with pytest.raises(ValueError, match="unit"):
        write_ees_csv(base, tmp_path / "t.csv", units={"rate": "per 10,000"}, **kwargs)
    mixed = base.with_columns(
        pl.when(pl.col("geographic_level") == "National")
        .then(pl.lit("Financial year"))
        .otherwise("time_identifier")
        .alias("time_identifier")
    )
    with pytest.raises(ValueError, match="time_identifier"):
        write_ees_csv(mixed, tmp_path / "t.csv", **kwargs)


def test_publication_pipeline_sdc_then_ees(tmp_path: Path) -> None:
    """Counts from two LAs and England -> SDC -> EES files; every indicator cell is filled."""
    frame = pl.DataFrame(
        {
            "geographic_level": ["National"] * 3 + ["Local authority"] * 6,
            "la_code": [None] * 3 + ["805"] * 3 + ["901"] * 3,
            "sex": ["Female", "Male", "Total"] * 3,
            "assessments": [1502, 1497, 2999, 3, 40, 43, 20, 22, 42],
            "pct_within_45": [81.25, 80.05, 80.65, 66.7, 80.0, 79.07, None, 72.7, 76.2],
        }
    )
    # "assessments" is the percentage's denominator; its numerator is not in the frame, so the
    # percentage cannot be recomputed from rounded counts (proportional=()): suppressed only
    spec = SdcSpec(
        counts=("assessments",),
        percentages={"pct_within_45": "assessments"},
        filters=("sex",),
        proportional=(),
    )
    safe = apply_publication_sdc(frame, spec)
    with pytest.warns(UnknownLACodeWarning):
        ees = to_ees(safe, 2024, "geographic_level", filters=["sex"])
    assert ees.columns == [*STANDARD, "sex", "assessments", "pct_within_45"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownLACodeWarning)
        data_path, meta_path = write_ees_csv(
            ees,
            tmp_path / "assessments_by_sex.csv",
            filters=["sex"],
            indicators=["assessments", "pct_within_45"],
            units={"pct_within_45": "%"},
            dp={"pct_within_45": 1},
        )
    rows = read_csv_rows(data_path)
    assert [r["assessments"] for r in rows] == [
        "1500",
        "1500",
        "3000",
        "c",
        "c",
        "43",
        "20",
        "22",
        "42",
    ]
    assert [r["pct_within_45"] for r in rows] == [
        "81.3",
        "80.1",
        "80.7",
        "c",
        "c",
        "79.1",
        "x",
        "72.7",
        "76.2",
    ]
    assert all(
        re.fullmatch(r"-?\d+(\.\d+)?|c|z|x|low", r[c])
        for r in rows
        for c in ("assessments", "pct_within_45")
    )
    assert rows[6]["la_name"] == "Local authority 901"
    meta = read_csv_rows(meta_path)
    assert [(m["col_name"], m["col_type"], m["indicator_unit"]) for m in meta] == [
        ("sex", "Filter", ""),
        ("assessments", "Indicator", ""),
        ("pct_within_45", "Indicator", "%"),
    ]


# ----------------------------------------------------------------------------- HTML


def test_styled_table_html_has_title_notes_and_escapes() -> None:
    frame = pl.DataFrame({"la_name": ["Bristol, City of", "<script>"], "referrals": ["c", "120"]})
    html_text = styled_table_html(frame, "Referrals in 2024", ["c: suppressed (1 to 5)"])
    assert "Referrals in 2024" in html_text
    assert "c: suppressed (1 to 5)" in html_text
    assert "Bristol, City of" in html_text
    assert "<script>" not in html_text


def test_plain_html_fallback_escapes_and_aligns() -> None:
    from cinresearch.publication.ees import _plain_html

    frame = pl.DataFrame({"la_name": ["<b>"], "referrals": [12]})
    text = _plain_html(frame, "Title & more", ["Note <1>"], None)
    assert "&lt;b&gt;" in text and "Title &amp; more" in text and "Note &lt;1&gt;" in text
    assert '<td class="num">12</td>' in text
