"""protect_publication on hand-made tables: thin aggregates, shared margins, rounded ratios."""

from __future__ import annotations

import numpy as np
import polars as pl

from cinresearch.disclosure import (
    CellSystem,
    PublishedTable,
    SdcSpec,
    drop_thin_aggregates,
    is_protected,
    protect_publication,
    published_interval,
)

LA, REGION, NATIONAL = "Local authority", "Regional", "National"


def _geo(rows: list[tuple[str, str | None, str | None]]) -> dict[str, list]:
    return {
        "time_period": ["2024"] * len(rows),
        "geographic_level": [r[0] for r in rows],
        "region_code": [r[1] for r in rows],
        "old_la_code": [r[2] for r in rows],
    }


def test_criterion_hand_worked() -> None:
    assert not is_protected(3, 3)  # one value
    assert not is_protected(1, 4)  # inside 1..5 and narrower: "a small count, at most 4"
    assert is_protected(1, 5)  # exactly what c already says
    assert is_protected(1, 9) and is_protected(3, 12)
    assert published_interval(296, rounded=True) == (295.0, 304.0)  # shown as 300
    assert published_interval(3, rounded=True) == (1.0, 4.0)  # low
    assert published_interval(0, rounded=True) == (0.0, 0.0)
    assert published_interval(9, rounded=False) == (9.0, 9.0)


def test_feasible_range_of_the_issue_example() -> None:
    """South East 2y+: Kent 9, Milton Keynes c (true 1); the region's 10 allows 5..14, so MK is
    in 1..5 (protected by the criterion); the percentage from unrounded numbers (3.4% of 296)
    would have pinned the region at 10 and MK at exactly 1."""
    # cells: 0 = Kent, 1 = MK, 2 = South East
    lo = np.array([9.0, 1.0, 5.0])
    hi = np.array([9.0, 1e7, 14.0])
    system = CellSystem(lo, hi, [((0, 1), 2)])
    assert system.feasible_range(1) == (1.0, 5.0)
    assert system.feasible_range(1, integer=True) == (1.0, 5.0)
    pinned = CellSystem(np.array([9.0, 1.0, 10.0]), np.array([9.0, 1e7, 10.0]), [((0, 1), 2)])
    assert pinned.feasible_range(1) == (1.0, 1.0)


def test_single_la_regions_and_countries_are_dropped() -> None:
    frame = pl.DataFrame(
        {
            **_geo(
                [
                    (NATIONAL, None, None),
                    (REGION, "E12000001", None),
                    (REGION, "E12000002", None),
                    (LA, "E12000001", "841"),
                    (LA, "E12000002", "352"),
                    (LA, "E12000002", "890"),
                ]
            ),
            "n": [30, 3, 27, 3, 20, 7],
        }
    )
    out = drop_thin_aggregates(frame)
    assert out.filter(pl.col("geographic_level") == REGION)["region_code"].to_list() == [
        "E12000002"
    ]
    assert out.filter(pl.col("geographic_level") == NATIONAL).height == 1
    alone = drop_thin_aggregates(frame.filter(pl.col("old_la_code").ne_missing("841")))
    assert alone.filter(pl.col("geographic_level") == NATIONAL).height == 1  # 2 LAs left
    one = frame.filter(pl.col("old_la_code") == "841")
    assert drop_thin_aggregates(one).height == 1  # the LA row only


def _tables() -> list[PublishedTable]:
    geo = [
        (NATIONAL, None, None),
        (REGION, "E12000002", None),
        (LA, "E12000002", "352"),
        (LA, "E12000002", "890"),
    ]
    headline = pl.DataFrame({**_geo(geo), "cpp": [296.0, 296.0, 287.0, 9.0]})
    rows, numbers, pct = [], [], []
    cells = {
        "352": {"<1y": 200, "1-2y": 79, "2y+": 8},
        "890": {"<1y": 3, "1-2y": 5, "2y+": 1},
    }
    cells["E12000002"] = {k: cells["352"][k] + cells["890"][k] for k in cells["352"]}
    cells["England"] = cells["E12000002"]
    for level, region, la in geo:
        key = la or region or "England"
        total = sum(cells[key].values())
        for band, value in [*cells[key].items(), ("Total", total)]:
            rows.append((level, region, la, band))
            numbers.append(float(value))
            pct.append(100.0 * value / total if band != "Total" else None)
    by_band = pl.DataFrame(
        {
            **_geo([r[:3] for r in rows]),
            "band": [r[3] for r in rows],
            "number": numbers,
            "percentage": pct,
        }
    )
    return [
        PublishedTable("headline", headline, SdcSpec(counts=("cpp",)), {"cpp": "cpp"}),
        PublishedTable(
            "cpp_by_band",
            by_band,
            SdcSpec(counts=("number",), percentages={"percentage": "number"}, filters=("band",)),
            {"number": "cpp"},
        ),
    ]


def test_shared_margin_rounded_ratios_and_no_recovery() -> None:
    out = protect_publication(_tables())
    headline, by_band = out["headline"], out["cpp_by_band"]
    la890 = by_band.filter(pl.col("old_la_code") == "890")
    assert la890.filter(pl.col("band") != "Total")["number"].to_list() == ["c", "c", "c"]
    # LA 890's total (9) is the same figure in both files: suppressed in both or in neither
    total_890 = la890.filter(pl.col("band") == "Total")["number"].item()
    assert headline.filter(pl.col("old_la_code") == "890")["cpp"].item() == total_890
    # England: 2y+ is 9 -> 10, total 296 -> 300: the percentage is 100 * 10 / 300 = 3.3, not 3.0
    england = by_band.filter(pl.col("geographic_level") == NATIONAL)
    row = england.filter(pl.col("band") == "2y+")
    assert row["number"].item() == "10"
    assert row["percentage"].item() == "3.3"
    # the old way (unrounded numbers) gives 9 / 296 = 3.0%, which pins England's 2y+ at 9
    weak = protect_publication(_tables(), derived_from_rounded=False, interval_audit=False)
    weak_row = weak["cpp_by_band"].filter(
        (pl.col("geographic_level") == NATIONAL) & (pl.col("band") == "2y+")
    )
    assert weak_row["percentage"].item() == "3.0"
    # with the region = England copy (one region), 352's exact 8 and the rounded total, every
    # 890 cell keeps at least 1..5 feasible: all LA cells left published are exact and the rest
    # are not recoverable by the audit's own check
    published = la890.filter(pl.col("number") != "c")
    assert published.height <= 1
