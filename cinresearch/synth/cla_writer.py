"""Write SSDA903 (children looked after) CSV extracts: Header and Episodes per LA per year.

A year's return holds every episode open at any point in the year (DECOM ≤ 31 March and DEC
blank or ≥ 1 April); an episode open across 31 March appears in both years' returns, with
DEC/REC blank in the earlier one. ``CHILD`` is the LA's child ID, the same as ``LAchildID``
in that LA's CIN return. Dates are ``dd/mm/YYYY``. Every LA gets both files each year (just
the column names when it had no looked-after children).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

HEADER_COLUMNS = ["CHILD", "SEX", "DOB", "ETHNIC", "UPN", "MOTHER", "MC_DOB"]
EPISODE_COLUMNS = [
    "CHILD", "DECOM", "RNE", "LS", "CIN", "PLACE", "PLACE_PROVIDER", "DEC", "REC",
    "REASON_PLACE_CHANGE", "HOME_POST", "PL_POST", "URN",
]  # fmt: skip
DATE_FORMAT = "%d/%m/%Y"


def cla_tables(world, census_year: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(header, episodes) rows of all LAs for one census year, with ``la_code`` kept."""
    ref = date(census_year, 3, 31)
    start = date(census_year - 1, 4, 1)
    ep = (
        world.cla_episodes.filter(
            (pl.col("decom") <= ref) & (pl.col("dec").is_null() | (pl.col("dec") >= start))
        )
        .with_columns(
            rec=pl.when(pl.col("dec") <= ref).then(pl.col("rec")),
            dec=pl.when(pl.col("dec") <= ref).then(pl.col("dec")),
        )
        .sort(["la_code", "la_child_id", "decom"])
    )
    episodes = ep.select(
        "la_code",
        CHILD=pl.col("la_child_id"),
        DECOM=pl.col("decom").dt.strftime(DATE_FORMAT),
        RNE="rne",
        LS="ls",
        CIN="cin",
        PLACE="place",
        PLACE_PROVIDER="place_provider",
        DEC=pl.col("dec").dt.strftime(DATE_FORMAT),
        REC="rec",
        REASON_PLACE_CHANGE="reason_place_change",
        HOME_POST="home_post",
        PL_POST="pl_post",
        URN="urn",
    )
    kids = ep.select("la_code", "la_child_id", "person_id").unique(maintain_order=True)
    header = (
        kids.join(world.persons, on="person_id", how="left")
        .with_columns(
            age=pl.lit(ref).dt.year() - pl.col("birth_date").dt.year(),
        )
        .select(
            "la_code",
            CHILD=pl.col("la_child_id"),
            SEX=pl.col("sex").replace_strict({"M": "1", "F": "2", "U": "1"}),
            DOB=pl.col("birth_date").dt.strftime(DATE_FORMAT),
            ETHNIC="ethnicity",
            UPN=pl.when(pl.col("upn_allocated") <= ref)
            .then(pl.col("upn"))
            .when(pl.col("upn_unknown_reason").is_not_null())
            .then(pl.col("upn_unknown_reason"))
            .otherwise(pl.lit("UN2")),
            MOTHER=pl.when((pl.col("sex") == "F") & (pl.col("age") >= 12)).then(pl.lit("0")),
            MC_DOB=pl.lit(None, dtype=pl.String),
        )
        .sort(["la_code", "CHILD"])
    )
    return header, episodes


def cla_paths(out: Path, census_year: int, la_code: str) -> tuple[Path, Path]:
    folder = out / "cla"
    return (
        folder / f"ssda903_{census_year}_{la_code}_header.csv",
        folder / f"ssda903_{census_year}_{la_code}_episodes.csv",
    )


def write_cla(world, out: Path, census_year: int) -> list[Path]:
    """Write both files for every LA; returns the paths written."""
    (out / "cla").mkdir(parents=True, exist_ok=True)
    header, episodes = cla_tables(world, census_year)
    paths = []
    for la_code in world.las["la_code"].to_list():
        h_path, e_path = cla_paths(out, census_year, la_code)
        header.filter(pl.col("la_code") == la_code).select(HEADER_COLUMNS).write_csv(h_path)
        episodes.filter(pl.col("la_code") == la_code).select(EPISODE_COLUMNS).write_csv(e_path)
        paths += [h_path, e_path]
    return paths
