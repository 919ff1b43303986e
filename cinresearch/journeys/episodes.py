"""``episodes``: one row per distinct CIN episode across all returns, with derived fields.

Definitions (all dates ``pl.Date``; columns as in docs/tables.md plus ``vanished`` and
``overlaps_previous`` from :mod:`cinresearch.journeys.dedup`):

* **age_at_referral** — completed years from birth to referral (a 29 February birthday is reached
  on 1 March in non-leap years); null when unborn or no birth date is recorded. **age_band**:
  ``unborn`` when the referral is before the birth date, or there is no birth date and the
  referral is before the expected birth date; then under 1, 1-4, 5-9, 10-15, 16+
  (:data:`cinresearch.codes.AGE_BANDS`); null when no date is known. A child with no birth date
  whose expected birth date has passed is aged from the expected date (:func:`age_band_expr`).
* **disabled_at_referral** — disability as recorded at the time: from the child's return for the
  census year in which the referral falls; if the LA's data has no such return for the child,
  the nearest earlier return; failing that, the nearest later one (:func:`disabled_at_referral`).
  ``disabled`` (latest return) is kept for description; use ``disabled_at_referral`` for
  referral-time covariates, which must not look ahead.
* **first_assessment_working_days** — working days after the first assessment's start up to and
  including its authorisation (:func:`cinresearch.workdays.working_days_between`); null while
  not authorised.
* **Activity dated before its referral** (one rule for section 47 enquiries, ICPCs and child
  protection plans; flagged at load as DfE's 2889, 1104 and 1105 by
  :mod:`cinresearch.io.cin.cross_record_rules`): a record of the episode dated before the episode's
  referral date is left out of *every* derived field of the episode — its count and its first
  date alike — and counted in ``n_before_referral``. It stays in the loaded tables and in
  ``events``. Why exclude rather than keep: the episode is defined from its referral, and the
  survival frames measure time from the referral to the first S47, ICPC or plan; a record
  dated before it would give a negative time, and counting it in ``n_cpp`` while leaving it out
  of ``first_cpp_start`` made "had a plan" depend on which column an analysis reads. An
  activity can only belong to the episode as returned if it follows the referral, so the
  derived fields describe exactly that activity, and ``n_before_referral`` shows what was set
  aside.
* **first_s47_start**, **n_s47** — section 47 enquiries starting on/after the referral date.
* **first_icpc_date** — earliest of the episode-level ``DateOfInitialCPC`` and the ICPC dates of
  its section 47 enquiries, on/after the referral date.
* **first_cpp_start** — first child protection plan in the episode starting on/after the
  referral date; ``first_cpp_category`` and ``previous_cpps`` are that plan's. ``n_cpp`` counts
  the plans starting on/after the referral date (so ``n_cpp`` is 0 exactly when
  ``first_cpp_start`` is null).
* **n_before_referral** — S47 starts, ICPC dates (episode-level and section 47) and CPP starts
  of the episode dated before its referral date (each date counted once).
* **n_pre_proceedings / first_pp_start / first_court_application_date** — pre-proceedings
  blocks of the episode (2025-26 returns onward; 0 and null for earlier years, which did not
  collect them), the earliest start and the earliest application to court among them.
* **data_end** — 31 March of ``last_census_year``: the censoring date this episode's own data
  supports. **episode_length_days** = (closure_date, else data_end) − referral_date.
* **open_at_31_march** — census years ``y`` from ``first_census_year`` to ``last_census_year``
  with referral_date ≤ 31 March y and no closure on or before that day.
* **episode_order / previous_referral_date** — order of referral dates of the child in the LA.
* **rereferral_12m** — ``previous_referral_date >= referral_date.dt.offset_by("-1y")``: the
  previous referral was on or after the same calendar date one year earlier. So 2019-03-01 →
  2020-03-01 counts (366 days, leap year), 2020-03-01 → 2021-03-01 counts (365 days), while
  2019-02-28 → 2020-03-01 does not. A referral on 29 February 2024 looks back to 28 February 2023
  (``offset_by`` clamps to the month end). A referral on 28 February 2021 looks back to
  28 February 2020, so a previous referral on 29 February 2020 counts (365 days); for a referral
  on 1 March 2021 the bound is 1 March 2020 and it does not (366 days).
* **entered_care_date** — first start of a period of care (SSDA903, same LA and child) during
  the episode: on/after the referral date and on/before the closure date when closed
  (:mod:`cinresearch.journeys.linkage`).
* **What the returns cannot show**: nested records wholly before the first loaded return are not
  re-sent, and a previous referral that closed before it is in no return, so ``episode_order``,
  ``previous_referral_date`` and ``rereferral_12m`` are complete only for referrals at least
  12 months after the start of the LA's first loaded collection year (load the previous year's
  return, as DfE does, to measure re-referrals in a year).
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from cinresearch.codes import AGE_BANDS
from cinresearch.journeys.linkage import entered_care_dates
from cinresearch.workdays import working_days_between

CHILD_KEY = ["child_id", "la_code"]

EPISODE_COLUMNS = [
    "episode_id",
    "child_id",
    "la_code",
    "upn_hash",
    "referral_date",
    "closure_date",
    "closure_reason",
    "referral_source",
    "primary_need",
    "referral_nfa",
    "first_census_year",
    "last_census_year",
    "n_returns",
    "data_end",
    "vanished",
    "overlaps_previous",
    "n_before_referral",
    "birth_date",
    "expected_birth_date",
    "sex",
    "ethnicity",
    "ethnicity_group",
    "death_date",
    "disabled",
    "disability_types",
    "disabled_at_referral",
    "age_at_referral",
    "age_band",
    "n_assessments",
    "first_assessment_start",
    "first_assessment_authorised",
    "first_assessment_working_days",
    "first_s47_start",
    "n_s47",
    "first_icpc_date",
    "first_cpp_start",
    "n_cpp",
    "first_cpp_category",
    "previous_cpps",
    "n_cin_plans",
    "first_cin_plan_start",
    "n_pre_proceedings",
    "first_pp_start",
    "first_court_application_date",
    "episode_length_days",
    "open_at_31_march",
    "episode_order",
    "previous_referral_date",
    "rereferral_12m",
    "entered_care_date",
]


def age_in_years(birth: pl.Expr, on: pl.Expr) -> pl.Expr:
    """Completed years of age on a date (Int16); negative before birth."""
    before_birthday = (on.dt.month() < birth.dt.month()) | (
        (on.dt.month() == birth.dt.month()) & (on.dt.day() < birth.dt.day())
    )
    years = on.dt.year().cast(pl.Int32) - birth.dt.year().cast(pl.Int32)
    return (years - before_birthday.cast(pl.Int32)).cast(pl.Int16)


def age_band_expr(
    age: pl.Expr, birth_date: pl.Expr, expected_birth_date: pl.Expr, referral_date: pl.Expr
) -> pl.Expr:
    """Age band on a date (:data:`AGE_BANDS`); null when neither birth date is known.

    ``age`` is the completed age from ``birth_date``. The one rule for a child with **no birth
    date whose expected birth date has passed** (unborn at referral, birth not yet recorded):
    the child is taken as born on the expected date, so is aged from it (``under 1`` for the
    first year, then 1-4, ...); before the expected date the child is ``unborn``. A recorded
    birth date always wins over the expected one.
    """
    expected_only = birth_date.is_null() & expected_birth_date.is_not_null()
    unborn = (birth_date.is_not_null() & (referral_date < birth_date)) | (
        expected_only & (referral_date < expected_birth_date)
    )
    age = (
        pl.when(expected_only).then(age_in_years(expected_birth_date, referral_date)).otherwise(age)
    )
    return (
        pl.when(unborn)
        .then(pl.lit(AGE_BANDS[0]))
        .when(age.is_null())
        .then(None)
        .when(age < 1)
        .then(pl.lit(AGE_BANDS[1]))
        .when(age < 5)
        .then(pl.lit(AGE_BANDS[2]))
        .when(age < 10)
        .then(pl.lit(AGE_BANDS[3]))
        .when(age < 16)
        .then(pl.lit(AGE_BANDS[4]))
        .otherwise(pl.lit(AGE_BANDS[5]))
    )


def census_year_of(date: pl.Expr) -> pl.Expr:
    """Census year (year ending 31 March) containing a date, Int32."""
    year = date.dt.year().cast(pl.Int32)
    return pl.when(date.dt.month() <= 3).then(year).otherwise(year + 1)


def rereferral_12m_expr(
    referral_date: pl.Expr = pl.col("referral_date"),
    previous_referral_date: pl.Expr = pl.col("previous_referral_date"),
) -> pl.Expr:
    """Re-referral within 12 months (see module docstring for the boundary rule); False if none."""
    return (previous_referral_date >= referral_date.dt.offset_by("-1y")).fill_null(False)


def disabled_at_referral(episodes: pl.LazyFrame, children: pl.LazyFrame) -> pl.LazyFrame:
    """``episode_id, disabled_at_referral``: disability as recorded when the referral was made.

    ``children`` is the loaded ``children`` table (one row per child per return, with
    ``census_year`` and ``disabled``). The return used for an episode is, in order: the return
    of the census year in which the referral date falls; else the nearest earlier return of the
    child in the LA; else the nearest later one. Episodes of a child in no return get null. A
    child twice in one return counts as disabled if either row says so.
    """
    referral_year = census_year_of(pl.col("referral_date"))
    per_return = (
        children.select(*CHILD_KEY, pl.col("census_year").cast(pl.Int32), "disabled")
        .group_by([*CHILD_KEY, "census_year"])
        .agg(pl.col("disabled").max())
    )
    gap = pl.col("census_year") - pl.col("_referral_year")
    priority = pl.when(gap == 0).then(0).when(gap < 0).then(-gap).otherwise(1_000 + gap)
    return (
        episodes.select("episode_id", *CHILD_KEY, referral_year.alias("_referral_year"))
        .join(per_return, on=CHILD_KEY, how="inner")
        .with_columns(priority.alias("_priority"))
        .group_by("episode_id")
        .agg(pl.col("disabled").sort_by("_priority").first().alias("disabled_at_referral"))
    )


def _empty_like(frame: pl.LazyFrame | None, schema: Mapping[str, pl.DataType]) -> pl.LazyFrame:
    return frame if frame is not None else pl.LazyFrame(schema=dict(schema))


def _nested_summaries(merged: Mapping[str, pl.LazyFrame]) -> list[pl.LazyFrame]:
    d = pl.Date()
    out: list[pl.LazyFrame] = []
    if "assessments" in merged:
        out.append(
            merged["assessments"]
            .group_by("episode_id")
            .agg(
                n_assessments=pl.len().cast(pl.Int32),
                first_assessment_start=pl.col("assessment_start").min(),
                first_assessment_authorised=pl.col("assessment_authorised")
                .sort_by("assessment_start")
                .first(),
            )
        )
    else:
        out.append(
            pl.LazyFrame(
                schema={
                    "episode_id": pl.String(),
                    "n_assessments": pl.Int32(),
                    "first_assessment_start": d,
                    "first_assessment_authorised": d,
                }
            )
        )
    s47 = _empty_like(
        merged.get("section47"),
        {"episode_id": pl.String(), "referral_date": d, "s47_start": d, "icpc_date": d},
    )
    s47_after = pl.col("s47_start") >= pl.col("referral_date")
    icpc_after = pl.col("icpc_date") >= pl.col("referral_date")
    out.append(
        s47.group_by("episode_id").agg(
            n_s47=s47_after.sum().cast(pl.Int32),
            first_s47_start=pl.col("s47_start").filter(s47_after).min(),
            _s47_icpc=pl.col("icpc_date").filter(icpc_after).min(),
            _s47_before=(~s47_after).sum().cast(pl.Int32)
            + (pl.col("icpc_date") < pl.col("referral_date")).sum().cast(pl.Int32),
        )
    )
    cpp = _empty_like(
        merged.get("cp_plans"),
        {
            "episode_id": pl.String(),
            "referral_date": d,
            "cpp_start": d,
            "initial_category": pl.String(),
            "previous_cpps": pl.Int16(),
        },
    )
    on_after = pl.col("cpp_start") >= pl.col("referral_date")
    out.append(
        cpp.group_by("episode_id").agg(
            n_cpp=on_after.sum().cast(pl.Int32),
            _cpp_before=(~on_after).sum().cast(pl.Int32),
            first_cpp_start=pl.col("cpp_start").filter(on_after).min(),
            first_cpp_category=pl.col("initial_category")
            .filter(on_after)
            .sort_by(pl.col("cpp_start").filter(on_after))
            .first(),
            previous_cpps=pl.col("previous_cpps")
            .filter(on_after)
            .sort_by(pl.col("cpp_start").filter(on_after))
            .first(),
        )
    )
    cin = _empty_like(merged.get("cin_plans"), {"episode_id": pl.String(), "cin_plan_start": d})
    out.append(
        cin.group_by("episode_id").agg(
            n_cin_plans=pl.len().cast(pl.Int32),
            first_cin_plan_start=pl.col("cin_plan_start").min(),
        )
    )
    pp = _empty_like(
        merged.get("pre_proceedings"),
        {"episode_id": pl.String(), "pp_start": d, "court_application_date": d},
    )
    out.append(
        pp.group_by("episode_id").agg(
            n_pre_proceedings=pl.len().cast(pl.Int32),
            first_pp_start=pl.col("pp_start").min(),
            first_court_application_date=pl.col("court_application_date").min(),
        )
    )
    return out


def build_episodes(
    merged: Mapping[str, pl.LazyFrame],
    children_longitudinal: pl.LazyFrame,
    cla: pl.LazyFrame | None = None,
    children_returns: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """The ``episodes`` table from merged returns (:func:`merge_returns`) and child characteristics.

    ``cla`` is ``cla_episodes``, raw or merged; without it ``entered_care_date`` is null.
    ``children_returns`` is the loaded ``children`` table (every return); without it
    ``disabled_at_referral`` is null. Sorted by la_code, child_id, referral_date.
    """
    ref = merged["referrals"]
    for summary in _nested_summaries(merged):
        ref = ref.join(summary, on="episode_id", how="left")
    kids = children_longitudinal.select(
        *CHILD_KEY,
        "upn_hash",
        "birth_date",
        "expected_birth_date",
        "sex",
        "ethnicity",
        "ethnicity_group",
        "death_date",
        "disabled",
        "disability_types",
    )
    ref = ref.join(kids, on=CHILD_KEY, how="left")
    if children_returns is not None:
        ref = ref.join(disabled_at_referral(ref, children_returns), on="episode_id", how="left")
    else:
        ref = ref.with_columns(disabled_at_referral=pl.lit(None, dtype=pl.Boolean))
    if cla is not None:
        ref = ref.join(entered_care_dates(ref, cla), on="episode_id", how="left")
    else:
        ref = ref.with_columns(entered_care_date=pl.lit(None, dtype=pl.Date))

    age = age_in_years(pl.col("birth_date"), pl.col("referral_date"))
    lo = pl.max_horizontal(census_year_of(pl.col("referral_date")), pl.col("first_census_year"))
    hi = pl.min_horizontal(
        census_year_of(pl.col("closure_date")) - 1, pl.col("last_census_year").cast(pl.Int32)
    )
    order = {"order_by": "referral_date"}
    episodes = (
        ref.with_columns(
            pl.col("n_assessments", "n_s47", "n_cpp", "n_cin_plans", "n_pre_proceedings").fill_null(
                0
            ),
            pl.col("disabled").fill_null(False),
            pl.col("disability_types").fill_null(pl.lit([], dtype=pl.List(pl.String))),
            first_icpc_date=pl.min_horizontal(
                pl.when(pl.col("icpc_date") >= pl.col("referral_date")).then("icpc_date"),
                "_s47_icpc",
            ),
            n_before_referral=(
                pl.col("_s47_before").fill_null(0)
                + pl.col("_cpp_before").fill_null(0)
                + (pl.col("icpc_date") < pl.col("referral_date")).fill_null(False).cast(pl.Int32)
            ).cast(pl.Int32),
            age_at_referral=pl.when(age >= 0).then(age),
        )
        .with_columns(
            age_band=age_band_expr(
                pl.col("age_at_referral"),
                pl.col("birth_date"),
                pl.col("expected_birth_date"),
                pl.col("referral_date"),
            ),
            first_assessment_working_days=working_days_between(
                pl.col("first_assessment_start"), pl.col("first_assessment_authorised")
            ),
            episode_length_days=(pl.coalesce("closure_date", "data_end") - pl.col("referral_date"))
            .dt.total_days()
            .cast(pl.Int32),
            open_at_31_march=pl.int_ranges(lo, hi + 1, dtype=pl.Int16),
            episode_order=pl.col("referral_date").rank("ordinal").over(CHILD_KEY).cast(pl.Int32),
            previous_referral_date=pl.col("referral_date").shift(1).over(CHILD_KEY, **order),
        )
        .with_columns(rereferral_12m=rereferral_12m_expr())
        .select(EPISODE_COLUMNS)
        .sort("la_code", "child_id", "referral_date")
    )
    return episodes
