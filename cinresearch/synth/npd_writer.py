"""Write the National Pupil Database extract: ``npd/npd_pupils_<year>.csv`` per academic year.

One row per pupil per academic year (``year`` = end year, 2019 = 2018/19), simulated CIN
children with a UPN plus the never-referred comparison sample, in LA then UPN order (the two
groups are not distinguishable from the file; ``truth/npd.parquet`` flags them).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

NPD_COLUMNS = [
    "UPN", "AcademicYear", "LA", "FSMeligible", "SENprovision", "SessionsPossible",
    "SessionsAbsent", "Suspensions", "PermanentExclusion", "KS2_RWM_Expected", "KS4_Attainment8",
]  # fmt: skip


def npd_table(npd: pl.DataFrame, academic_year: int) -> pl.DataFrame:
    """The published columns for one academic year."""
    return (
        npd.filter(pl.col("academic_year") == academic_year)
        .sort(["la_code", "upn"])
        .select(
            UPN="upn",
            AcademicYear=pl.lit(f"{academic_year - 1}/{academic_year}"),
            LA="la_code",
            FSMeligible=pl.col("fsm").cast(pl.Int8),
            SENprovision="sen",
            SessionsPossible="sessions_possible",
            SessionsAbsent="sessions_absent",
            Suspensions="suspensions",
            PermanentExclusion=pl.col("permanent_exclusion").cast(pl.Int8),
            KS2_RWM_Expected=pl.col("ks2_rwm_expected").cast(pl.Int8),
            KS4_Attainment8="ks4_attainment8",
        )
    )


def write_npd(npd: pl.DataFrame, out: Path, years: tuple[int, int]) -> list[Path]:
    folder = out / "npd"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for year in range(years[0], years[1] + 1):
        path = folder / f"npd_pupils_{year}.csv"
        npd_table(npd, year).write_csv(path)
        paths.append(path)
    return paths
