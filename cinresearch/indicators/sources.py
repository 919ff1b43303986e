"""Indicator inputs from a store or frames, on either basis.

Revised (:func:`prepare_inputs`): the returns merged across all loaded years, latest return
wins. As returned (:func:`inputs_as_returned`): year ``Y`` from the year-Y return alone,
earlier returns only for look-backs, later returns never read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from cinresearch.indicators.definitions import load_definitions
from cinresearch.indicators.inputs import (
    EPISODE_INPUT_COLUMNS,
    IndicatorInputs,
    _coerce,
    _lazy,
    _with_second_or_subsequent,
)
from cinresearch.indicators.measures import Definitions
from cinresearch.store import Store


def _latest_return(frame: pl.LazyFrame, keys: Sequence[str]) -> pl.LazyFrame:
    """One row per natural key, values from the latest return; adds ``last_return``.

    Idempotent on already-merged tables. Without a ``census_year`` column the table is taken as
    merged (a ``last_census_year`` column, if present, becomes ``last_return``).
    """
    cols = frame.collect_schema().names()
    if "census_year" in cols:
        return (
            frame.with_columns(
                pl.col("census_year").max().over(list(keys)).alias("last_return"),
                pl.col("census_year").min().over(list(keys)).alias("first_return"),
            )
            .sort("census_year", maintain_order=True)
            .unique(subset=list(keys), keep="last", maintain_order=True)
        )
    last = pl.col("last_census_year") if "last_census_year" in cols else pl.lit(None, pl.Int32)
    return frame.unique(subset=list(keys), keep="last", maintain_order=True).with_columns(
        last.cast(pl.Int32).alias("last_return")
    )


def _episodes_from_referrals(
    referrals: pl.LazyFrame, children: pl.LazyFrame | None
) -> pl.LazyFrame:
    """Minimal episodes table from loaded returns: latest return wins per episode key."""
    keys = ["child_id", "la_code", "referral_date"]
    eps = _latest_return(referrals, keys).rename(
        {"first_return": "first_census_year", "last_return": "last_census_year"}
    )
    if children is not None:
        ccols = children.collect_schema().names()
        wanted = [c for c in ("birth_date", "expected_birth_date", "sex", "disabled") if c in ccols]
        if "census_year" in ccols:
            kids = (
                children.sort("census_year")
                .group_by(["child_id", "la_code"])
                .agg(pl.col(c).drop_nulls().last() for c in wanted)
            )
        else:
            kids = children.select(["child_id", "la_code", *wanted]).unique(
                subset=["child_id", "la_code"], keep="last"
            )
        eps = eps.join(kids, on=["child_id", "la_code"], how="left")
    return eps


def _complete_episodes(eps: pl.LazyFrame, rereferral_window: str) -> pl.LazyFrame:
    """Add any of the columns the unit sets need that the given episodes table lacks."""
    cols = eps.collect_schema().names()
    add: list[pl.Expr] = []
    for name, dtype in (
        ("closure_date", pl.Date),
        ("closure_reason", pl.String),
        ("primary_need", pl.String),
        ("referral_source", pl.String),
        ("birth_date", pl.Date),
        ("expected_birth_date", pl.Date),
        ("sex", pl.String),
        ("disabled", pl.Boolean),
    ):
        if name not in cols:
            add.append(pl.lit(None, dtype).alias(name))
    if "referral_nfa" not in cols:
        add.append(pl.lit(False).alias("referral_nfa"))
    if add:
        eps = eps.with_columns(add)
        cols = eps.collect_schema().names()
    if "last_census_year" not in cols:
        if "data_end" in cols:
            eps = eps.with_columns(pl.col("data_end").dt.year().alias("last_census_year"))
        else:
            eps = eps.with_columns(pl.lit(None, pl.Int32).alias("last_census_year"))
    if "first_census_year" not in cols:
        eps = eps.with_columns(pl.lit(None, pl.Int32).alias("first_census_year"))
    if "data_end" not in cols:
        eps = eps.with_columns(
            pl.date(pl.col("last_census_year"), 3, 31).alias("data_end"),
        )
    if "rereferral_12m" not in cols:
        eps = eps.sort(["child_id", "la_code", "referral_date"]).with_columns(
            pl.col("referral_date")
            .shift(1)
            .over(["child_id", "la_code"], order_by="referral_date")
            .alias("_previous_referral")
        )
        eps = eps.with_columns(
            (
                pl.col("_previous_referral").is_not_null()
                & (
                    pl.col("_previous_referral")
                    >= pl.col("referral_date").dt.offset_by(f"-{rereferral_window}")
                )
            ).alias("rereferral_12m")
        ).drop("_previous_referral")
    return eps


def prepare_inputs(data: Any, definitions: Definitions | None = None) -> IndicatorInputs:
    """Normalise a Store, a store path, a mapping of frames, or IndicatorInputs.

    With a mapping, ``episodes`` is used if present, else ``referrals`` (+ ``children``);
    ``assessments``, ``section47``, ``cp_plans`` and ``population`` are optional (their
    measures are skipped, with a warning, when absent).
    """
    if isinstance(data, IndicatorInputs):
        return data
    defs = definitions or load_definitions()
    window = str(defs.settings.get("rereferral_window", "1y"))
    frames = _frames_from(data)
    if frames.get("episodes") is not None:
        eps = _lazy(frames["episodes"])
    elif frames.get("referrals") is not None:
        eps = _episodes_from_referrals(_lazy(frames["referrals"]), _lazy(frames.get("children")))
    else:
        raise ValueError("indicators need an `episodes` table or a `referrals` table")
    assert eps is not None
    # Collected once (only the columns the unit sets use): every unit set scans it again.
    eps = _complete_episodes(eps, window).select(EPISODE_INPUT_COLUMNS).collect().lazy()

    def nested(name: str, keys: list[str]) -> pl.LazyFrame | None:
        frame = _lazy(frames.get(name))
        return None if frame is None else _latest_return(frame, keys).collect().lazy()

    pop = frames.get("population")
    population = None
    if pop is not None:
        population = _lazy(pop).collect()  # type: ignore[union-attr]
    return IndicatorInputs(
        episodes=eps,
        assessments=nested(
            "assessments", ["child_id", "la_code", "referral_date", "assessment_start"]
        ),
        section47=nested("section47", ["child_id", "la_code", "referral_date", "s47_start"]),
        cp_plans=nested("cp_plans", ["child_id", "la_code", "referral_date", "cpp_start"]),
        population=population,
        rereferral_window=window,
    )


_RETURN_TABLES = ("referrals", "children", "assessments", "section47", "cp_plans")


_CHILD_COLUMNS = ("birth_date", "expected_birth_date", "sex", "disabled")


_NESTED_KEYS = {
    "assessments": ["child_id", "la_code", "referral_date", "assessment_start"],
    "section47": ["child_id", "la_code", "referral_date", "s47_start"],
    "cp_plans": ["child_id", "la_code", "referral_date", "cpp_start"],
}


@dataclass
class ReturnFrames:
    """The loaded returns (one row per record per return, with ``census_year``) and population."""

    tables: dict[str, pl.LazyFrame]
    population: pl.DataFrame | None

    def up_to(self, census_year: int) -> ReturnFrames:
        """The returns up to ``census_year`` read into memory once (for several years' inputs)."""
        wanted = {
            name: frame.filter(pl.col("census_year") <= census_year)
            for name, frame in self.tables.items()
        }
        names = list(wanted)
        collected = pl.collect_all([wanted[n] for n in names])
        return ReturnFrames(
            tables={n: f.lazy() for n, f in zip(names, collected, strict=True)},
            population=self.population,
        )


def return_frames(data: Any) -> ReturnFrames:
    """The loaded (not merged) tables of a Store, a store path or a mapping of frames.

    Needs at least ``referrals`` with a ``census_year`` column; raises ``ValueError`` otherwise
    (use ``basis="revised"`` to compute from a merged ``episodes`` table).
    """
    if isinstance(data, ReturnFrames):
        return data
    found: dict[str, pl.LazyFrame] = {}
    population = None
    if isinstance(data, Mapping):
        for name in _RETURN_TABLES:
            frame = _lazy(data.get(name))
            if frame is not None:
                found[name] = frame
        pop = data.get("population")
    elif isinstance(data, IndicatorInputs):
        found, pop = {}, None
    else:
        store = data if isinstance(data, Store) else Store(data)
        for name in _RETURN_TABLES:
            if store.table_parts(name):
                found[name] = _coerce(store.scan(name))
        pop = (
            store.scan("population")
            if (store.table_parts("population") or store.derived_path("population").exists())
            else None
        )
    refs = found.get("referrals")
    if refs is None or "census_year" not in refs.collect_schema().names():
        raise ValueError(
            "as-returned figures need the loaded returns (a `referrals` table with census_year); "
            "pass basis='revised' to compute from merged episodes"
        )
    for name, frame in list(found.items()):
        if "census_year" not in frame.collect_schema().names():
            raise ValueError(f"as-returned figures need `census_year` in the {name!r} table")
        found[name] = frame.with_columns(pl.col("census_year").cast(pl.Int32))
    if pop is not None:
        population = _lazy(pop).collect()  # type: ignore[union-attr]
    return ReturnFrames(tables=found, population=population)


def _children_in_return(children: pl.LazyFrame, census_year: int) -> pl.LazyFrame:
    """One row per (child_id, la_code): characteristics as recorded in the year-Y return.

    A child twice in one return (rule 8510) takes the greatest value of each column, so the
    result does not depend on row order.
    """
    cols = children.collect_schema().names()
    wanted = [c for c in _CHILD_COLUMNS if c in cols]
    return (
        children.filter(pl.col("census_year") == census_year)
        .group_by(["child_id", "la_code"])
        .agg(pl.col(c).max() for c in wanted)
    )


def inputs_as_returned(
    data: Any, census_year: int, definitions: Definitions | None = None
) -> IndicatorInputs:
    """Inputs for census year ``Y`` from the year-Y return, as DfE counts it.

    Episodes and nested records are those in the year-Y return, with the values (closure dates
    and reasons, categories, factors) and child characteristics (birth dates, sex, disability)
    recorded in that return. Earlier returns (census_year < Y) are read only for look-backs
    (re-referral within 12 months, an earlier CP plan); later returns are never read, so the
    year-Y figures do not move when later years are loaded.
    """
    defs = definitions or load_definitions()
    window = str(defs.settings.get("rereferral_window", "1y"))
    frames = return_frames(data)
    y = int(census_year)
    upto = {name: frame.filter(pl.col("census_year") <= y) for name, frame in frames.tables.items()}
    keys = ["child_id", "la_code", "referral_date"]
    history = (
        _latest_return(upto["referrals"], keys)
        .rename({"first_return": "first_census_year", "last_return": "last_census_year"})
        .collect()  # once: the re-referral look-back and the year-Y filter both read it
        .lazy()
    )
    history = history.drop(c for c in _CHILD_COLUMNS if c in history.collect_schema().names())
    if "children" in upto:
        history = history.join(
            _children_in_return(upto["children"], y), on=["child_id", "la_code"], how="left"
        )
    history = _complete_episodes(history, window)  # re-referral flags over returns <= Y
    eps = (
        history.filter(pl.col("last_census_year") == y)
        .select(EPISODE_INPUT_COLUMNS)
        .collect()
        .lazy()
    )

    def nested(name: str) -> pl.LazyFrame | None:
        if name not in upto:
            return None
        merged = _latest_return(upto[name], _NESTED_KEYS[name])
        if name == "cp_plans":
            merged = _with_second_or_subsequent(merged)
        return merged.filter(pl.col("last_return") == y).collect().lazy()

    return IndicatorInputs(
        episodes=eps,
        assessments=nested("assessments"),
        section47=nested("section47"),
        cp_plans=nested("cp_plans"),
        population=frames.population,
        rereferral_window=window,
    )


_TABLES = (
    "episodes",
    "referrals",
    "children",
    "assessments",
    "section47",
    "cp_plans",
    "population",
)


#: merged tables written by the journey build (``cinresearch.journeys``), preferred when present
_MERGED = {t: f"merged_{t}" for t in ("referrals", "assessments", "section47", "cp_plans")}


def _frames_from(data: Any) -> dict[str, pl.DataFrame | pl.LazyFrame | None]:
    if isinstance(data, Mapping):
        out = {name: data.get(name) for name in _TABLES}
        for name, merged in _MERGED.items():
            if out.get(name) is None and data.get(merged) is not None:
                out[name] = data[merged]
        return out

    store = data if isinstance(data, Store) else Store(data)
    out = {}
    for name in _TABLES:
        merged = _MERGED.get(name)
        if merged is not None and store.derived_path(merged).exists():
            out[name] = store.scan(merged)
        elif store.derived_path(name).exists() or store.table_parts(name):
            out[name] = store.scan(name)
        else:
            out[name] = None
    return out
