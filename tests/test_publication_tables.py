"""Report publication tables: EES files for every measure, all through disclosure control."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from cinresearch.publication import write_indicator_tables

FIXTURES = Path(__file__).parent / "fixtures" / "indicators"
SYMBOLS = {"c", "z", "x", "low"}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    frames = {p.stem: pl.read_csv(p, infer_schema_length=0) for p in sorted(FIXTURES.glob("*.csv"))}
    frames.pop("national_targets_2018")
    out = tmp_path_factory.mktemp("ees")
    return out, write_indicator_tables(frames, 2019, out, suppression_threshold=5)


def test_every_file_has_metadata_and_no_blank_indicator(written) -> None:
    out, files = written
    assert "cin_headline_measures.csv" in files
    assert any(f.endswith("_by_age_band.csv") for f in files)
    for name in files:
        data = pl.read_csv(out / name, infer_schema_length=0)
        meta = pl.read_csv(out / name.replace(".csv", ".meta.csv"), infer_schema_length=0)
        indicators = meta.filter(pl.col("col_type") == "Indicator")["col_name"].to_list()
        assert indicators, name
        for column in indicators:
            values = data[column]
            assert values.null_count() == 0, (name, column)
            numeric = values.filter(~values.is_in(list(SYMBOLS)))
            assert numeric.cast(pl.Float64, strict=False).null_count() == 0, (name, column)


def test_small_counts_suppressed_and_national_counts_rounded(written) -> None:
    out, files = written
    saw_suppression = False
    for name in files:
        data = pl.read_csv(out / name, infer_schema_length=0)
        meta = pl.read_csv(out / name.replace(".csv", ".meta.csv"), infer_schema_length=0)
        counts = meta.filter(pl.col("col_type") == "Indicator", pl.col("indicator_dp") == "0")[
            "col_name"
        ]
        for column in counts:
            la = data.filter(pl.col("geographic_level") == "Local authority")[column]
            numbers = la.filter(~la.is_in(list(SYMBOLS))).cast(pl.Int64)
            assert not numbers.is_between(1, 5).any(), (name, column)
            saw_suppression |= bool((la == "c").any())
            national = data.filter(pl.col("geographic_level") == "National")[column]
            values = national.filter(~national.is_in(list(SYMBOLS))).cast(pl.Int64)
            assert (values % 10 == 0).all(), (name, column)
    assert saw_suppression, "the tiny fixture must trigger suppression somewhere"


def decimals_match_metadata(out: Path, name: str) -> dict[str, int]:
    """Assert every numeric cell of ``name`` has exactly its indicator_dp decimals
    (``0`` is the GSS true-zero symbol); returns column -> number of numeric cells."""
    data = pl.read_csv(out / name, infer_schema_length=0)
    meta = pl.read_csv(out / name.replace(".csv", ".meta.csv"), infer_schema_length=0)
    seen = {}
    indicators = meta.filter(pl.col("col_type") == "Indicator")
    for column, dp in indicators.select("col_name", "indicator_dp").iter_rows():
        cells = data[column].filter(~data[column].is_in([*SYMBOLS, "0"]))
        decimals = cells.str.split(".").list.get(1, null_on_oob=True).str.len_chars()
        assert (decimals.fill_null(0) == int(dp)).all(), (name, column, dp)
        seen[column] = cells.len()
    return seen


def test_written_decimal_places_match_the_metadata(written) -> None:
    out, files = written
    for name in files:
        decimals_match_metadata(out, name)
