"""Unit sets: the records each measure counts for one census year, with breakdown columns.

A unit set takes the inputs, the census year ``Y`` and the definitions and returns one row per
counted record (episode, assessment, enquiry, conference, plan, ...) with ``la_code``,
``child_id``, flags and one column per breakdown; :data:`UNIT_SETS` names them for
``indicators.yaml`` (``units:``) and says which nested table each needs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import polars as pl

from cinresearch.codes import groups
from cinresearch.indicators.bands import (
    _working_days,
    age_band_expr,
    census_window,
    month_duration_band_expr,
    working_day_band_expr,
)
from cinresearch.indicators.inputs import IndicatorInputs, _with_second_or_subsequent
from cinresearch.indicators.measures import Definitions


def _in_window(col: str, census_year: int) -> pl.Expr:
    start, end = census_window(census_year)
    return pl.col(col).is_between(pl.lit(start), pl.lit(end), closed="both")


def _source_group_expr() -> pl.Expr:
    try:
        mapping = groups("referral_source")
    except Exception:  # code lists unavailable: fall back to DfE's leading-number grouping
        mapping = {}
    leading = {
        "1": "Individual",
        "4": "Housing",
        "5": "LA services",
        "6": "Police",
        "7": "Other legal agency",
        "8": "Other",
        "9": "Anonymous",
        "10": "Unknown",
    }
    code = pl.col("referral_source").str.strip_chars().str.to_uppercase()
    by_code = code.replace_strict(mapping, default=None, return_dtype=pl.String)
    by_number = code.str.extract(r"^(\d+)", 1).replace_strict(
        leading, default=None, return_dtype=pl.String
    )
    return pl.coalesce(by_code, by_number, pl.lit("unrecognised"))


def _child_breakdowns(reference: pl.Expr | dt.date) -> list[pl.Expr]:
    """The breakdowns every unit set has: total, age band at ``reference``, sex, disability."""
    return [
        pl.lit("Total").alias("total"),
        age_band_expr(pl.col("birth_date"), reference, pl.col("expected_birth_date")).alias(
            "age_band"
        ),
        pl.col("sex").fill_null("U").alias("sex"),
        pl.when(pl.col("disabled").fill_null(False))
        .then(pl.lit("Yes"))
        .otherwise(pl.lit("No"))
        .alias("disabled"),
    ]


def _episode_breakdowns(reference: pl.Expr | dt.date) -> list[pl.Expr]:
    """:func:`_child_breakdowns` plus the episode's primary need."""
    return [
        *_child_breakdowns(reference),
        pl.col("primary_need").fill_null("missing").alias("primary_need"),
    ]


def _factor_list(frame: pl.LazyFrame) -> pl.Expr:
    """The assessment's factor codes as a list of strings (empty when none were recorded)."""
    dtype = frame.collect_schema().get("factors")
    if dtype is None:
        return pl.lit([], dtype=pl.List(pl.String))
    if dtype == pl.String:  # CSV fixtures: codes separated by ';' or ','
        codes = pl.col("factors").str.replace_all(r"[\s,]+", ";").str.split(";")
        return codes.list.eval(pl.element().filter(pl.element() != "")).fill_null([])
    return pl.col("factors").cast(pl.List(pl.String)).fill_null([])


def _episodes_with_no_factors(inp: IndicatorInputs, defs: Definitions) -> pl.LazyFrame | None:
    """Episode keys with an assessment recording "no factors identified" (settings)."""
    if inp.assessments is None:
        return None
    codes = [str(x) for x in defs.settings.get("no_factors_codes", ["21"])]
    return (
        inp.assessments.with_columns(_factor_list(inp.assessments).alias("_factors"))
        .filter(pl.col("_factors").list.eval(pl.element().is_in(codes)).list.any())
        .select("child_id", "la_code", "referral_date")
        .unique()
        .with_columns(pl.lit(True).alias("_no_factors"))
    )


def _units_referrals_in_year(inp: IndicatorInputs, y: int, defs: Definitions) -> pl.LazyFrame:
    eps = inp.episodes.filter(_in_window("referral_date", y))
    no_factors = _episodes_with_no_factors(inp, defs)
    if no_factors is None:
        eps = eps.with_columns(pl.lit(False).alias("_no_factors"))
    else:
        eps = eps.join(
            no_factors, on=["child_id", "la_code", "referral_date"], how="left"
        ).with_columns(pl.col("_no_factors").fill_null(False))
    not_in_need = [str(x) for x in defs.settings.get("not_in_need_closure_reasons", [])]
    nfa = pl.col("referral_nfa").fill_null(False)
    return eps.select(
        "la_code",
        "child_id",
        *_episode_breakdowns(pl.col("referral_date")),
        _source_group_expr().alias("source_group"),
        nfa.alias("nfa"),
        pl.col("rereferral_12m").fill_null(False).alias("rereferral_12m"),
        (
            ~nfa
            & (pl.col("closure_reason").fill_null("").is_in(not_in_need) | pl.col("_no_factors"))
        ).alias("assessed_not_in_need"),
    )


def _open_at_31_march(closure: str, last_return: str, y: int) -> pl.Expr:
    """Open at 31 March Y: closes after it, or has no closure and is in return Y or later."""
    _, end = census_window(y)
    return (pl.col(closure) > pl.lit(end)) | (
        pl.col(closure).is_null() & (pl.col(last_return).is_null() | (pl.col(last_return) >= y))
    )


def _episode_of_need(defs: Definitions) -> pl.Expr:
    not_in_need = [str(x) for x in defs.settings.get("not_in_need_closure_reasons", [])]
    return ~pl.col("referral_nfa").fill_null(False) & ~pl.col("closure_reason").fill_null("").is_in(
        not_in_need
    )


def _units_cin_episodes(inp: IndicatorInputs, y: int, defs: Definitions) -> pl.LazyFrame:
    start, end = census_window(y)
    in_return_y_or_later = pl.col("last_census_year").is_null() | (pl.col("last_census_year") >= y)
    open_in_year = (pl.col("referral_date") <= pl.lit(end)) & (
        (pl.col("closure_date") >= pl.lit(start))
        | (pl.col("closure_date").is_null() & in_return_y_or_later)
    )
    return inp.episodes.filter(open_in_year & _episode_of_need(defs)).select(
        "la_code",
        "child_id",
        *_episode_breakdowns(end),
        pl.col("closure_reason").fill_null("unknown").alias("closure_reason"),
        _in_window("referral_date", y).alias("starting"),
        _in_window("closure_date", y).fill_null(False).alias("ending"),
        month_duration_band_expr(
            pl.col("referral_date"), pl.col("closure_date"), defs.duration_bands
        ).alias("duration_band"),
    )


def _units_cin_at_31_march(inp: IndicatorInputs, y: int, defs: Definitions) -> pl.LazyFrame:
    _, end = census_window(y)
    cond = (
        (pl.col("referral_date") <= pl.lit(end))
        & ~pl.col("referral_nfa").fill_null(False)
        & _open_at_31_march("closure_date", "last_census_year", y)
    )
    return inp.episodes.filter(cond).select(
        "la_code",
        "child_id",
        *_episode_breakdowns(end),
        month_duration_band_expr(
            pl.col("referral_date"), pl.lit(end, pl.Date), defs.duration_bands
        ).alias("duration_band"),
    )


def _with_child(inp: IndicatorInputs, frame: pl.LazyFrame, reference: Any) -> pl.LazyFrame:
    kids = inp.child_characteristics
    clash = [
        c
        for c in ("birth_date", "expected_birth_date", "sex", "disabled")
        if c in frame.collect_schema().names()
    ]
    return (
        frame.drop(clash)
        .join(kids, on=["child_id", "la_code"], how="left")
        .with_columns(_child_breakdowns(reference))
    )


def _units_assessments_completed(inp: IndicatorInputs, y: int, defs: Definitions) -> pl.LazyFrame:
    assert inp.assessments is not None
    limit = int(defs.settings.get("assessment_timeliness_working_days", 45))
    wd = _working_days(pl.col("assessment_start"), pl.col("assessment_authorised"))
    units = inp.assessments.filter(_in_window("assessment_authorised", y)).with_columns(
        pl.when(pl.col("assessment_authorised") >= pl.col("assessment_start"))
        .then(wd)
        .otherwise(None)
        .cast(pl.Float64)
        .alias("working_days")
    )
    units = units.with_columns(
        pl.col("working_days").is_not_null().alias("has_duration"),
        (pl.col("working_days") <= limit).fill_null(False).alias("within_timescale"),
        working_day_band_expr(pl.col("working_days"), defs.assessment_duration_bands).alias(
            "assessment_duration_band"
        ),
    )
    return _with_child(inp, units, pl.col("assessment_authorised"))


def _units_section47_in_year(inp: IndicatorInputs, y: int, defs: Definitions) -> pl.LazyFrame:
    assert inp.section47 is not None
    units = inp.section47.filter(_in_window("s47_start", y))
    return _with_child(inp, units, pl.col("s47_start"))


def _units_icpcs_in_year(inp: IndicatorInputs, y: int, defs: Definitions) -> pl.LazyFrame:
    assert inp.section47 is not None
    limit = int(defs.settings.get("icpc_timeliness_working_days", 15))
    icpcs = (
        inp.section47.filter(_in_window("icpc_date", y))
        .group_by(["child_id", "la_code", "icpc_date"])
        .agg(
            pl.coalesce(
                pl.col("s47_start").filter(pl.col("s47_start") <= pl.col("icpc_date")).max(),
                pl.col("s47_start").min(),
            ).alias("s47_start")
        )
    )
    wd = _working_days(pl.col("s47_start"), pl.col("icpc_date"))
    icpcs = icpcs.with_columns(
        pl.when(pl.col("icpc_date") >= pl.col("s47_start"))
        .then(wd)
        .otherwise(None)
        .cast(pl.Float64)
        .alias("working_days")
    ).with_columns(
        pl.col("working_days").is_not_null().alias("has_duration"),
        (pl.col("working_days") <= limit).fill_null(False).alias("within_timescale"),
        working_day_band_expr(pl.col("working_days"), defs.icpc_duration_bands).alias(
            "icpc_duration_band"
        ),
    )
    return _with_child(inp, icpcs, pl.col("icpc_date"))


def _cpp_common(inp: IndicatorInputs) -> pl.LazyFrame:
    assert inp.cp_plans is not None
    if "second_or_subsequent" in inp.cp_plans.collect_schema().names():
        return inp.cp_plans  # flagged over the look-back history (as-returned inputs)
    return _with_second_or_subsequent(inp.cp_plans)


def _units_cpp_starting_in_year(inp: IndicatorInputs, y: int, defs: Definitions) -> pl.LazyFrame:
    units = _cpp_common(inp).filter(_in_window("cpp_start", y))
    return _with_child(inp, units, pl.col("cpp_start"))


def _units_cpp_at_31_march(inp: IndicatorInputs, y: int, defs: Definitions) -> pl.LazyFrame:
    _, end = census_window(y)
    units = (
        _cpp_common(inp)
        .filter(
            (pl.col("cpp_start") <= pl.lit(end)) & _open_at_31_march("cpp_end", "last_return", y)
        )
        .with_columns(
            month_duration_band_expr(
                pl.col("cpp_start"), pl.lit(end, pl.Date), defs.duration_bands
            ).alias("duration_band")
        )
    )
    return _with_child(inp, units, end)


def _units_cpp_ending_in_year(inp: IndicatorInputs, y: int, defs: Definitions) -> pl.LazyFrame:
    units = (
        _cpp_common(inp)
        .filter(_in_window("cpp_end", y))
        .with_columns(
            month_duration_band_expr(
                pl.col("cpp_start"), pl.col("cpp_end"), defs.duration_bands
            ).alias("duration_band")
        )
    )
    return _with_child(inp, units, pl.col("cpp_end"))


def _units_cpp_in_year(inp: IndicatorInputs, y: int, defs: Definitions) -> pl.LazyFrame:
    start, end = census_window(y)
    in_later_return = pl.col("last_return").is_null() | (pl.col("last_return") >= y)
    units = _cpp_common(inp).filter(
        (pl.col("cpp_start") <= pl.lit(end))
        & ((pl.col("cpp_end") >= pl.lit(start)) | (pl.col("cpp_end").is_null() & in_later_return))
    )
    return _with_child(inp, units, end)


def _factor_group_expr() -> pl.Expr:
    return pl.col("_factor").replace_strict(
        groups("assessment_factor"), default="unrecognised", return_dtype=pl.String
    )


def _units_assessment_factors(inp: IndicatorInputs, y: int, defs: Definitions) -> pl.LazyFrame:
    """One row per (episode, factor group) over the episode's assessments completed in year.

    As DfE Table C3 (note 3), episodes where "no factors identified" was recorded are left out.
    """
    assert inp.assessments is not None
    none_codes = [str(x) for x in defs.settings.get("no_factors_codes", ["21"])]
    episode = ["child_id", "la_code", "referral_date"]
    done = inp.assessments.filter(_in_window("assessment_authorised", y))
    factors = done.with_columns(_factor_list(done).alias("_factor")).explode("_factor")
    return (
        factors.filter(
            pl.col("_factor").is_not_null()
            & ~pl.col("_factor").is_in(none_codes).any().over(episode)
        )
        .select(
            "la_code",
            "child_id",
            pl.concat_str(
                [pl.col("child_id"), pl.col("referral_date").cast(pl.String)], separator="|"
            ).alias("episode_key"),
            pl.lit("Total").alias("total"),
            _factor_group_expr().alias("assessment_factor"),
        )
        .unique()
    )


UnitSet = Callable[[IndicatorInputs, int, Definitions], pl.LazyFrame]


UNIT_SETS: dict[str, tuple[UnitSet, str | None]] = {
    # name: (implementation, nested table it needs or None)
    "referrals_in_year": (_units_referrals_in_year, None),
    "cin_episodes": (_units_cin_episodes, None),
    "cin_at_31_march": (_units_cin_at_31_march, None),
    "assessments_completed": (_units_assessments_completed, "assessments"),
    "section47_in_year": (_units_section47_in_year, "section47"),
    "icpcs_in_year": (_units_icpcs_in_year, "section47"),
    "cpp_starting_in_year": (_units_cpp_starting_in_year, "cp_plans"),
    "cpp_at_31_march": (_units_cpp_at_31_march, "cp_plans"),
    "cpp_ending_in_year": (_units_cpp_ending_in_year, "cp_plans"),
    "cpp_in_year": (_units_cpp_in_year, "cp_plans"),
    "assessment_factors": (_units_assessment_factors, "assessments"),
}
