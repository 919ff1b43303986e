"""What a report chapter covers: its parameters checked against the store, the census years
and geography in scope, and whether the data are synthetic.

Every notebook starts by calling :func:`check_parameters` on its ``parameters`` cell and
:func:`report_header` to say what it covers. ``la_code = "ENG"`` (:data:`ENGLAND`) means
England: every LA in the store. Census year 2021 is the year ending 31 March 2021 ("2020-21").
:func:`is_synthetic` gates child-level pictures: journey timelines are drawn for synthetic
data only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import polars as pl

from cinresearch.geography import la_lookup
from cinresearch.journeys.episodes import age_in_years, census_year_of
from cinresearch.pseudonymise import DEMO_KEY, Pseudonymiser
from cinresearch.store import Store

__all__ = [
    "ENGLAND",
    "age_at_31_march_expr",
    "as_store",
    "census_year_expr",
    "census_years_in_store",
    "check_parameters",
    "cohort_window",
    "demo_key_id",
    "for_geography",
    "geography_label",
    "is_synthetic",
    "la_codes_in_store",
    "report_header",
    "rounding_base_for",
    "year_label",
]

#: The ``la_code`` parameter value meaning "England": every LA in the store.
ENGLAND = "ENG"


def as_store(store: Store | str | os.PathLike[str]) -> Store:
    """A :class:`~cinresearch.store.Store` from a store or its folder."""
    return store if isinstance(store, Store) else Store(store)


def demo_key_id() -> str:
    """The key id (manifest ``detail.key_id``) of the public demo pseudonymisation key."""
    return Pseudonymiser(DEMO_KEY).key_id


def is_synthetic(store: Store | str | os.PathLike[str]) -> bool:
    """True when the store holds synthetic data: every input pseudonymised with a key used the
    public demo key (its ``key_id`` in the manifest), and there is at least one such input.

    Real returns must be loaded with a secret key, so a store with any other key id — or with
    no key ids at all — is treated as real, and child-level pictures are not drawn.
    """
    ids = {r.detail.get("key_id") for r in as_store(store).inputs() if r.detail.get("key_id")}
    return bool(ids) and ids == {demo_key_id()}


def census_years_in_store(store: Store | str | os.PathLike[str]) -> list[int]:
    """Census years with at least one CIN return in the store, ascending."""
    return sorted(
        {
            int(r.census_year)
            for r in as_store(store).inputs()
            if r.kind == "cin_xml" and r.census_year is not None
        }
    )


def la_codes_in_store(store: Store | str | os.PathLike[str]) -> list[str]:
    """LA codes with at least one CIN return in the store, ascending."""
    return sorted(
        {str(r.la_code) for r in as_store(store).inputs() if r.kind == "cin_xml" and r.la_code}
    )


def _normalise_la(la_code: str | int) -> str:
    text = str(la_code).strip()
    if text.upper() in {ENGLAND, "ENGLAND", "ALL"}:
        return ENGLAND
    return text.zfill(3) if text.isdigit() else text


def check_parameters(
    store: Store | str | os.PathLike[str], census_year: int, la_code: str | int
) -> tuple[int, str]:
    """Validate the notebook parameters against the store; returns ``(census_year, la_code)``.

    ``la_code`` is ``"ENG"`` (England: every LA) or a 3-digit LA code with returns in the store.
    Raises ``ValueError`` naming what is available when either is not in the store.
    """
    st = as_store(store)
    if not st.manifest_path.exists():
        raise ValueError(f"{st.root} is not a store (no manifest.json); run `cinresearch load`")
    years = census_years_in_store(st)
    if int(census_year) not in years:
        raise ValueError(f"census_year {census_year} has no CIN returns in the store; have {years}")
    code = _normalise_la(la_code)
    las = la_codes_in_store(st)
    if code != ENGLAND and code not in las:
        raise ValueError(f"la_code {la_code!r} has no CIN returns in the store; use 'ENG' or {las}")
    return int(census_year), code


def cohort_window(
    census_year: int,
    cohort_years: int | Sequence[int] | None = None,
    available: Sequence[int] | None = None,
    length: int = 3,
) -> tuple[int, int]:
    """The cohort's census years ``(first, last)``.

    ``cohort_years``: ``None`` → the ``length`` census years ending at ``census_year``; an int
    ``n`` → the ``n`` years ending at ``census_year``; a pair → those years. The window is
    clipped to the ``available`` years (the store's returns) so a cohort never starts before
    the first return; ``ValueError`` when nothing is left.
    """
    if cohort_years is None:
        first, last = census_year - length + 1, census_year
    elif isinstance(cohort_years, int):
        if cohort_years < 1:
            raise ValueError("cohort_years must be at least 1")
        first, last = census_year - cohort_years + 1, census_year
    else:
        pair = [int(y) for y in cohort_years]
        if len(pair) != 2:
            raise ValueError(f"cohort_years must be None, a number or (first, last); got {pair}")
        first, last = min(pair), max(pair)
    if available:
        first = max(first, min(available))
        last = min(last, max(available))
    if first > last:
        raise ValueError(f"no census years left in the cohort window (available: {available})")
    return first, last


def for_geography(
    frame: pl.DataFrame | pl.LazyFrame, la_code: str, column: str = "la_code"
) -> pl.DataFrame | pl.LazyFrame:
    """Rows of one LA, or every row for ``"ENG"``."""
    if la_code == ENGLAND:
        return frame
    return frame.filter(pl.col(column).cast(pl.String) == str(la_code))


def geography_label(la_code: str, synthetic: bool = False) -> str:
    """ "England", or the LA's name and code ("Blackpool (890)"); synthetic LAs are called
    "LA 890 (synthetic)" so a reader does not take the figures for a real council's."""
    if la_code == ENGLAND:
        return "England (all LAs in the data)" if synthetic else "England"
    if synthetic:
        return f"LA {la_code} (synthetic)"
    try:
        names = la_lookup().filter(pl.col("old_la_code") == la_code)["la_name"].to_list()
    except Exception:  # pragma: no cover - the lookup is optional decoration
        names = []
    return f"{names[0]} ({la_code})" if names else f"LA {la_code}"


def rounding_base_for(la_code: str) -> int | None:
    """Counts for England are rounded to the nearest 10 in published tables; LA counts are not."""
    return 10 if la_code == ENGLAND else None


def year_label(census_year: int) -> str:
    """Census year 2021 → "2020-21" (the year ending 31 March 2021)."""
    return f"{census_year - 1}-{str(census_year)[-2:]}"


def report_header(
    census_year: int, la_code: str, synthetic: bool, details: Sequence[str] = ()
) -> str:
    """Markdown block stating what a chapter covers: census year, area, data, extra details."""
    lines = [
        f"**Census year:** {year_label(census_year)} (year ending 31 March {census_year})",
        f"**Area:** {geography_label(la_code, synthetic)}",
        *details,
    ]
    text = "  \n".join(lines)
    if synthetic:
        text += (
            "\n\n> **Synthetic data.** These figures come from the toolkit's synthetic data "
            "generator, not from real children's records. They show what the report looks like "
            "and check the methods against effects planted in the data; they are not statistics "
            "about any real local authority."
        )
    return text


def census_year_expr(column: str) -> pl.Expr:
    """Census year (year ending 31 March) of a date column, Int16: 2018 for 1 Apr 2017 to
    31 Mar 2018 (the journeys' rule, :func:`cinresearch.journeys.episodes.census_year_of`)."""
    return census_year_of(pl.col(column)).cast(pl.Int16)


def age_at_31_march_expr(birth: str = "birth_date", census_year: str = "census_year") -> pl.Expr:
    """Age in completed years at 31 March of each row's census year (null without a birth date;
    the journeys' rule, :func:`cinresearch.journeys.episodes.age_in_years`)."""
    return age_in_years(pl.col(birth), pl.date(pl.col(census_year).cast(pl.Int32), 3, 31))
