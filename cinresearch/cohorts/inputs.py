"""The input tables made ready for a survival frame: episodes, CP plans and the subjects.

Episodes are typed, filled from ``children`` where a column is missing, given the next
referral of the same child to the same LA and the LA's last return; ``disabled`` is the
disability recorded at the time of the referral (``episodes.disabled_at_referral``: the
child's return for the referral's census year, else the nearest earlier one, else the nearest
later one) where the episodes carry it, so a covariate never looks ahead to a later return;
the child's latest ``disabled`` is used only where no return gives it; plans are de-duplicated
(latest return wins) with the next plan of the child; subjects are episodes, or CP plans
carrying their episode's columns, each with its origin date.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from cinresearch.cohorts.outcome import Outcome

Frame = pl.DataFrame | pl.LazyFrame


# Columns of `episodes` (docs/tables.md) the frame needs in every case.
_CORE_EPISODE_COLUMNS = ("episode_id", "child_id", "la_code", "referral_date", "closure_date")


_CHILD_COLUMNS = ("birth_date", "expected_birth_date", "death_date")


# Covariates: taken from `episodes` (or `children`), null when absent from both.
_COVARIATE_COLUMNS: dict[str, pl.DataType] = {
    "closure_reason": pl.String(),
    "referral_nfa": pl.Boolean(),
    "referral_source": pl.String(),
    "primary_need": pl.String(),
    "sex": pl.String(),
    "ethnicity_group": pl.String(),
    "disabled": pl.Boolean(),
    "previous_cpps": pl.Int16(),
    "upn_hash": pl.String(),
}


_CHILD_FILL_COLUMNS = (
    "birth_date",
    "expected_birth_date",
    "death_date",
    "sex",
    "ethnicity_group",
    "disabled",
    "upn_hash",
)


_DATE_COLUMNS = (
    "referral_date",
    "closure_date",
    "data_end",
    "birth_date",
    "expected_birth_date",
    "death_date",
    "first_cpp_start",
    "entered_care_date",
)


def _lazy(frame: Frame) -> pl.LazyFrame:
    return frame.lazy() if isinstance(frame, pl.DataFrame) else frame


def _columns(lf: pl.LazyFrame) -> list[str]:
    return lf.collect_schema().names()


def _require(lf: pl.LazyFrame, columns: Sequence[str], table: str, why: str) -> None:
    missing = [c for c in columns if c not in _columns(lf)]
    if missing:
        raise ValueError(f"{table} is missing columns {missing} (needed for {why})")


def _cast_dates(lf: pl.LazyFrame, columns: Sequence[str]) -> pl.LazyFrame:
    present = [c for c in columns if c in _columns(lf)]
    return lf.with_columns(pl.col(c).cast(pl.Date) for c in present)


def _prepare_episodes(
    episodes: Frame, children: Frame | None, outcome: Outcome, cla_given: bool
) -> pl.LazyFrame:
    """Episodes with the columns the frame needs, typed, plus per-LA and per-child helpers."""
    lf = _lazy(episodes)
    cols = _columns(lf)
    _require(lf, _CORE_EPISODE_COLUMNS, "episodes", "any survival frame")
    if "data_end" not in cols:
        _require(lf, ["last_census_year"], "episodes", "end of data (data_end)")
        lf = lf.with_columns(data_end=pl.date(pl.col("last_census_year").cast(pl.Int32), 3, 31))
    if outcome.event == "first_cpp_start":
        _require(lf, ["first_cpp_start"], "episodes", f"outcome {outcome.name!r}")
    if outcome.event == "entered_care" and not cla_given:
        _require(lf, ["entered_care_date"], "episodes", f"outcome {outcome.name!r} without cla")
    lf = lf.with_columns(
        pl.col("child_id").cast(pl.String),
        pl.col("la_code").cast(pl.String),
        pl.col("episode_id").cast(pl.String),
    )
    if children is not None:
        ch = _lazy(children).with_columns(
            pl.col("child_id").cast(pl.String), pl.col("la_code").cast(pl.String)
        )
        ch = _cast_dates(ch, _CHILD_COLUMNS)
        fill = [c for c in _CHILD_FILL_COLUMNS if c in _columns(ch)]
        ch = ch.select("child_id", "la_code", *[pl.col(c).alias(f"_child_{c}") for c in fill])
        ch = ch.unique(["child_id", "la_code"], keep="first")
        lf = lf.join(ch, on=["child_id", "la_code"], how="left")
        cols = _columns(lf)
        lf = lf.with_columns(
            (pl.coalesce(c, f"_child_{c}") if c in cols else pl.col(f"_child_{c}")).alias(c)
            for c in fill
        ).drop([f"_child_{c}" for c in fill])
    _require(lf, _CHILD_COLUMNS, "episodes (or children)", "age, death and 18th birthday")
    cols = _columns(lf)
    if "disabled_at_referral" in cols:
        at_referral = pl.col("disabled_at_referral").cast(pl.Boolean)
        lf = lf.with_columns(
            (pl.coalesce(at_referral, "disabled") if "disabled" in cols else at_referral).alias(
                "disabled"
            )
        )
    lf = lf.with_columns(
        pl.lit(None, dtype=dtype).alias(name)
        for name, dtype in _COVARIATE_COLUMNS.items()
        if name not in cols
    )
    lf = _cast_dates(lf, _DATE_COLUMNS).with_columns(
        pl.col(name).cast(dtype) for name, dtype in _COVARIATE_COLUMNS.items()
    )
    keys = ["child_id", "la_code"]
    if "episode_order" not in cols:
        lf = lf.with_columns(
            episode_order=pl.col("referral_date").rank("ordinal").over(keys).cast(pl.Int32)
        )
    # The next referral of the same child to the same LA (for re-referral outcomes), and the
    # last return this LA sent (follow-up end for outcomes seen in later episodes).
    lf = _with_next(lf, keys, "referral_date", "next_referral_date")
    return lf.with_columns(la_data_end=pl.col("data_end").max().over("la_code"))


def _with_next(lf: pl.LazyFrame, keys: list[str], date_col: str, name: str) -> pl.LazyFrame:
    """Add ``name``: the next ``date_col`` among rows with the same ``keys`` (null for the
    last one). Sorts the frame, which is faster than a window over many small groups."""
    same = pl.all_horizontal([pl.col(k).shift(-1) == pl.col(k) for k in keys])
    return lf.sort([*keys, date_col], nulls_last=True, maintain_order=True).with_columns(
        pl.when(same).then(pl.col(date_col).shift(-1)).alias(name)
    )


def _prepare_plans(cp_plans: Frame) -> pl.LazyFrame:
    """CP plans, one row per (child, LA, referral, plan start), latest return kept."""
    lf = _lazy(cp_plans)
    keys = ["child_id", "la_code", "referral_date", "cpp_start"]
    _require(lf, [*keys, "cpp_end"], "cp_plans", "plan-level outcomes")
    lf = _cast_dates(lf, ["referral_date", "cpp_start", "cpp_end"]).with_columns(
        pl.col("child_id").cast(pl.String), pl.col("la_code").cast(pl.String)
    )
    cols = _columns(lf)
    extra = [c for c in ("previous_cpps", "census_year") if c in cols]
    lf = lf.select(*keys, "cpp_end", *extra)
    if "census_year" in cols:
        lf = lf.group_by(keys).agg(pl.all().sort_by("census_year").last())
        plan_end = pl.date(pl.col("census_year").cast(pl.Int32), 3, 31)
        lf = lf.with_columns(plan_data_end=plan_end).drop("census_year")
    else:
        lf = lf.unique(keys, keep="last").with_columns(plan_data_end=pl.lit(None, pl.Date))
    if "previous_cpps" not in cols:
        lf = lf.with_columns(previous_cpps=pl.lit(None, pl.Int16))
    lf = lf.with_columns(pl.col("previous_cpps").cast(pl.Int16))
    return _with_next(lf, ["child_id", "la_code"], "cpp_start", "next_cpp_start")


def _subjects(eps: pl.LazyFrame, plans: pl.LazyFrame | None, outcome: Outcome) -> pl.LazyFrame:
    """One row per subject with origin date and `_has_episode`; plans carry episode columns."""
    if plans is None:
        subjects = eps.with_columns(
            subject_id=pl.col("episode_id"),
            cpp_start=pl.col("first_cpp_start")
            if "first_cpp_start" in _columns(eps)
            else pl.lit(None, pl.Date),
            cpp_end=pl.lit(None, pl.Date),
            _has_episode=pl.lit(True),
        )
    else:
        ep = eps.drop(
            [c for c in ("previous_cpps", "cpp_start", "cpp_end") if c in _columns(eps)]
        ).with_columns(_has_episode=pl.lit(True))
        subjects = plans.join(
            ep, on=["child_id", "la_code", "referral_date"], how="left", suffix="_episode"
        ).with_columns(
            pl.col("_has_episode").fill_null(False),
            data_end=pl.coalesce("plan_data_end", "data_end"),
            la_data_end=pl.coalesce("la_data_end", pl.col("plan_data_end").max().over("la_code")),
            # episode_id:cpp_start; a plan whose episode is missing gets a key of its own
            subject_id=pl.concat_str(
                pl.coalesce(
                    "episode_id",
                    pl.concat_str(
                        pl.lit("no-episode"),
                        "child_id",
                        "la_code",
                        pl.col("referral_date").cast(pl.String),
                        separator="|",
                    ),
                ),
                pl.col("cpp_start").cast(pl.String),
                separator=":",
            ),
        )
    origin_col = {
        "referral": "referral_date",
        "closure": "closure_date",
        "cpp_start": "cpp_start",
        "cpp_end": "cpp_end",
    }[outcome.origin]
    # `_rid` keys the internal joins, so duplicated ids in the input cannot cross-match.
    return subjects.with_columns(origin_date=pl.col(origin_col)).with_row_index("_rid")
