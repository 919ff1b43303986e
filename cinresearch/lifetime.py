"""Lifetime (cumulative) risk by birth cohort: the share of children born in a year who were
referred, investigated (section 47), made the subject of a child protection plan or looked
after before a given age.

**Estimand.** For the children born in census year ``b`` (1 April ``b-1`` to 31 March ``b``; the
cohort "2017-18" is ``b = 2018``) and an event E, the probability of at least one E before the
``(a+1)``-th birthday, for each completed age ``a``. Age 0 includes events dated before birth (a
referral of an unborn child), so "before age 1" means "before birth or in the first year". For
an older cohort whose early years are before the data (see *Conditional cohorts*), it is the
probability of an E between the ``k``-th and the ``(a+1)``-th birthday, whatever happened before.

**Estimator** (:func:`cumulative_risk`): a life table over single years of age. With ``d_a`` the
children whose first E (from age ``k``) came at completed age ``a`` and ``P_a`` the population
of the area aged ``a``,

    at risk  n_a = P_a - (d_k + ... + d_{a-1})      (children already counted are removed)
    risk     F_a = 1 - (1 - d_k/n_k)(1 - d_{k+1}/n_{k+1}) ... (1 - d_a/n_a)

Why this and not the sum of age-specific rates ``sum d_a / P_a``: both equal the plain share
``(d_k + ... + d_a) / P`` when the cohort's population does not change with age (the product
telescopes), but when it does (migration, deaths, population revisions) the product applies
each age's risk to the children present and not yet counted at that age, as a life table does
(Wildeman and Emanuel's cumulative risks of foster care by age 18 use this form), and it stays
within 0-1; a sum of rates does not remove the children already counted and can pass 1.

**Confidence interval** (``ci_low``, ``ci_high``; 95% by default): Greenwood's variance of the
product, ``Var F_a = (1 - F_a)^2 * sum_j d_j / (n_j (n_j - d_j))``, which for an unchanging
population is exactly the binomial variance ``F (1 - F) / P``; the interval is the Wilson score
interval at the effective sample size ``F (1 - F) / Var F`` (so, for an unchanging population,
the binomial Wilson interval; it stays inside 0-1 and is not degenerate at zero events, where
the number at risk is used). Only sampling variation is covered: population estimates are
taken as exact, and linkage error (below) is reported, not included.

**Population.** ``P_a`` is the ONS mid-year estimate (``population`` table) for the area, aged
``a`` at mid-year ``b + a``, i.e. the children born July ``b-1`` to June ``b``: the estimate
nearest the middle of the cohort's year of age (9 of its 12 birth months). Areas are the LAs
with CIN data (``children_longitudinal``); England and regions sum their LAs. A group with no
population (sex unknown, or a breakdown with no population input) has null risk.

**Follow-up and censoring.** A cohort is followed to the data end, 31 March of the last census
year ``L`` in the data (or ``last_census_year``). Age ``a`` is reported only when every child of
the cohort has passed the ``(a+1)``-th birthday by then (``a <= L - b - 1``): there is no
censoring inside a year of age. Deaths and emigration are in the population estimates, not
followed child by child. A child is placed by the birth date of the journeys' age rule
(:func:`cinresearch.journeys.age_band_expr`): the recorded birth date, else the expected birth
date (a child whose birth was never recorded is aged from it). Children with neither cannot be
placed in a cohort (:func:`unplaced_children` counts them).

**Conditional cohorts.** Returns start with census year ``F`` (their referrals from 1 April
``F-1``). A cohort born before that is not seen from birth: ``conditional_from_age`` is
``k = F - b`` (every child of the cohort turns ``k`` on or after 1 April ``F-1``), events before
the ``k``-th birthday are not used and the risk is "from age k". ``from_age`` raises ``k`` for
any cohort. Cohorts with ``k = 0`` are followed from birth, with one gap: for the first cohort
(``b = F``) a referral before birth made before 1 April ``F-1`` is seen only when its episode was
still open then (it is in the first return); otherwise the child counts at a later event.

**Counting each child once.** The first E of each *child*: records of one child in several LAs
(one ``child_id`` per LA) are linked by the pseudonymised UPN (``upn_hash``) when they have one.
A child without a UPN hash (most under-fives: UPNs are given at school entry) is counted once
per LA record, so a child referred in two LAs before school age counts twice in England and
region figures. Reported per row, cumulative to the age: ``unlinked_children`` (children counted
from a record without a UPN hash: at most this many double counts), ``linked_children`` and
``linked_multi_la`` (linked children with an event in more than one LA by that age: the double
counts the link removed). :func:`double_counting` turns these into an estimate and a bound. A
child who moves is counted in the area of the first event, so LA counts add up to England.

**Events** (:data:`EVENTS`): referral (every referral, including those with no further action),
assessment, s47 (section 47 enquiry start), icpc, cin_plan, cpp (child protection plan start)
and care (start of a period of care: from the SSDA903 episodes when they are loaded, so every
looked-after child counts, not only those with a CIN episode; else the journeys'
``entered_care`` events).

**Breakdowns** (``by``): ``sex`` (the population is by sex), ``disabled`` (levels "Disabled",
"Not disabled") and ``ethnicity_group`` (the DfE groups of ``data_contracts/codes/ethnicity``)
need the share of the population in each group: ``population_shares``. A child's group comes
from its linked records (disabled if any record says so; where records disagree on sex or
ethnicity group, the first level alphabetically). Children with no known value
are in the group "Unknown" (counted, no population, no risk); every breakdown has a "Total".
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from statistics import NormalDist

import polars as pl

from cinresearch.geography import la_lookup
from cinresearch.journeys.children import ethnicity_group_expr
from cinresearch.journeys.episodes import age_in_years, census_year_of
from cinresearch.journeys.linkage import care_entries
from cinresearch.store import Store

__all__ = [
    "BREAKDOWNS",
    "EVENTS",
    "EVENT_LABELS",
    "GEOGRAPHIES",
    "RESULT_COLUMNS",
    "at_age",
    "birth_cohort_risk",
    "cumulative_risk",
    "data_window",
    "double_counting",
    "first_events",
    "lifetime_tables",
    "unplaced_children",
]

CHILD_KEY = ["child_id", "la_code"]

#: Event names of :func:`birth_cohort_risk` → event in the journeys' ``events`` table.
EVENTS: dict[str, str] = {
    "referral": "referral",
    "assessment": "assessment_start",
    "s47": "s47_start",
    "icpc": "icpc",
    "cin_plan": "cin_plan_start",
    "cpp": "cpp_start",
    "care": "entered_care",
}

#: How a report names each event ("the share of children ... before age 5").
EVENT_LABELS: dict[str, str] = {
    "referral": "Referred",
    "assessment": "Assessed",
    "s47": "Section 47 enquiry",
    "icpc": "Initial child protection conference",
    "cin_plan": "Child in need plan",
    "cpp": "Child protection plan",
    "care": "Looked after",
}

#: Breakdowns of the children (``by``) and the geography levels.
BREAKDOWNS = ("sex", "disabled", "ethnicity_group")
GEOGRAPHIES = {"england": "National", "region": "Regional", "la": "Local authority"}
ENGLAND_CODE, ENGLAND_NAME = "E92000001", "England"
TOTAL = "Total"
UNKNOWN = "Unknown"

KEYS = ["cohort", "event", "area_code", "breakdown", "group"]

RESULT_COLUMNS = [
    "cohort",
    "event",
    "geographic_level",
    "area_code",
    "area_name",
    "breakdown",
    "group",
    "conditional_from_age",
    "age",
    "population",
    "at_risk",
    "events",
    "cumulative_events",
    "cumulative_risk",
    "ci_low",
    "ci_high",
    "unlinked_children",
    "linked_children",
    "linked_multi_la",
]

_RESULT_SCHEMA: dict[str, pl.DataType] = {
    "cohort": pl.Int32(),
    "event": pl.String(),
    "geographic_level": pl.String(),
    "area_code": pl.String(),
    "area_name": pl.String(),
    "breakdown": pl.String(),
    "group": pl.String(),
    "conditional_from_age": pl.Int32(),
    "age": pl.Int32(),
    "population": pl.Float64(),
    "at_risk": pl.Float64(),
    "events": pl.Int64(),
    "cumulative_events": pl.Int64(),
    "cumulative_risk": pl.Float64(),
    "ci_low": pl.Float64(),
    "ci_high": pl.Float64(),
    "unlinked_children": pl.Int64(),
    "linked_children": pl.Int64(),
    "linked_multi_la": pl.Int64(),
}

Source = Store | str | os.PathLike[str] | Mapping[str, pl.DataFrame | pl.LazyFrame]


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def lifetime_tables(source: Source) -> dict[str, pl.LazyFrame]:
    """The tables the analysis reads, as lazy frames.

    ``source`` is a store (or its path) after ``cinresearch build``, or a mapping with
    ``events``, ``children_longitudinal`` and ``population`` and optionally ``cla_episodes``
    (raw or merged SSDA903 episodes) and ``cla_children`` (SSDA903 headers).
    """
    if isinstance(source, Mapping):
        missing = {"events", "children_longitudinal", "population"} - set(source)
        if missing:
            raise ValueError(f"tables missing: {sorted(missing)}")
        return {name: frame.lazy() for name, frame in source.items()}
    store = source if isinstance(source, Store) else Store(source)
    if not store.derived_path("events").exists():
        raise ValueError(f"{store.root}: no journeys; run `cinresearch build` first")
    tables = {
        "events": store.scan("events"),
        "children_longitudinal": store.scan("children_longitudinal"),
        "population": store.scan("population"),
    }
    if store.table_parts("cla_episodes"):
        merged = store.derived_path("merged_cla_episodes")
        tables["cla_episodes"] = (
            pl.scan_parquet(merged) if merged.exists() else store.scan("cla_episodes")
        )
    if store.table_parts("cla_children"):
        tables["cla_children"] = store.scan("cla_children")
    return tables


def data_window(tables: Mapping[str, pl.LazyFrame]) -> tuple[int, int]:
    """First and last census year of the CIN data (``children_longitudinal``)."""
    years = (
        tables["children_longitudinal"]
        .select(
            first=pl.col("first_census_year").cast(pl.Int32).min(),
            last=pl.col("last_census_year").cast(pl.Int32).max(),
        )
        .collect()
        .row(0)
    )
    if years[0] is None:
        raise ValueError("no children in the data: cannot tell the census years covered")
    return int(years[0]), int(years[1])


def _column(names: Sequence[str], name: str, dtype: pl.DataType) -> pl.Expr:
    """A column cast to ``dtype``, or nulls when the table does not have it."""
    return (pl.col(name) if name in names else pl.lit(None)).cast(dtype).alias(name)


def _records(tables: Mapping[str, pl.LazyFrame]) -> pl.LazyFrame:
    """One row per child record (child_id × LA): UPN hash, birth date, sex, groups.

    ``birth`` follows the journeys' age rule: the birth date, else the expected birth date.
    SSDA903 headers add looked-after children with no CIN record and fill gaps (latest header).
    """
    kids = tables["children_longitudinal"]
    names = kids.collect_schema().names()
    ethnicity = (
        pl.col("ethnicity_group")
        if "ethnicity_group" in names
        else ethnicity_group_expr()
        if "ethnicity" in names
        else pl.lit(None)
    )
    cin = kids.select(
        pl.col(CHILD_KEY).cast(pl.String),
        _column(names, "upn_hash", pl.String()),
        pl.coalesce(
            _column(names, "birth_date", pl.Date()),
            _column(names, "expected_birth_date", pl.Date()),
        ).alias("birth"),
        _column(names, "sex", pl.String()),
        ethnicity.cast(pl.String).alias("ethnicity_group"),
        _column(names, "disabled", pl.Boolean()),
    )
    if "cla_children" not in tables:
        return cin
    order = pl.col("census_year")
    cla = (
        tables["cla_children"]
        .with_columns(pl.col(CHILD_KEY).cast(pl.String))
        .group_by(CHILD_KEY)
        .agg(
            pl.col("upn_hash").sort_by(order).drop_nulls().last().cast(pl.String),
            pl.col("birth_date").sort_by(order).drop_nulls().last().cast(pl.Date).alias("birth"),
            pl.col("sex").sort_by(order).drop_nulls().last().cast(pl.String),
            pl.col("ethnicity").sort_by(order).drop_nulls().last().cast(pl.String),
        )
        .with_columns(ethnicity_group_expr())
        .drop("ethnicity")
    )
    both = cin.join(cla, on=CHILD_KEY, how="full", coalesce=True, suffix="_cla")
    real_sex = pl.col("sex").is_in(["M", "F"])
    known_group = pl.col("ethnicity_group").is_not_null() & (pl.col("ethnicity_group") != UNKNOWN)
    return both.select(
        *CHILD_KEY,
        pl.coalesce("upn_hash", "upn_hash_cla").alias("upn_hash"),
        pl.coalesce("birth", "birth_cla").alias("birth"),
        pl.when(real_sex).then("sex").otherwise(pl.coalesce("sex_cla", "sex")).alias("sex"),
        pl.when(known_group)
        .then("ethnicity_group")
        .otherwise(pl.coalesce("ethnicity_group_cla", "ethnicity_group"))
        .alias("ethnicity_group"),
        "disabled",
    )


def _event_rows(tables: Mapping[str, pl.LazyFrame], events: Sequence[str]) -> pl.LazyFrame:
    """child_id, la_code, date, event (our names) of the wanted events."""
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise ValueError(f"unknown event(s) {unknown}; choose from {list(EVENTS)}")
    from_cla = "care" in events and "cla_episodes" in tables
    wanted = {EVENTS[e]: e for e in events if not (e == "care" and from_cla)}
    parts = [
        tables["events"]
        .filter(pl.col("event").is_in(list(wanted)))
        .select(
            pl.col(CHILD_KEY).cast(pl.String),
            pl.col("date").cast(pl.Date),
            pl.col("event").replace_strict(wanted, return_dtype=pl.String),
        )
    ]
    if from_cla:
        parts.append(
            care_entries(tables["cla_episodes"]).select(
                pl.col(CHILD_KEY).cast(pl.String),
                pl.col("decom").cast(pl.Date).alias("date"),
                event=pl.lit("care"),
            )
        )
    return pl.concat(parts, how="vertical_relaxed").filter(pl.col("date").is_not_null())


def _person_key(link_by_upn: bool) -> pl.Expr:
    """One key per child: the UPN hash when linking and present, else the LA record."""
    record = pl.concat_str([pl.lit("r:"), pl.col("la_code"), pl.lit(":"), pl.col("child_id")])
    if not link_by_upn:
        return record
    return (
        pl.when(pl.col("upn_hash").is_not_null())
        .then(pl.concat_str([pl.lit("u:"), pl.col("upn_hash")]))
        .otherwise(record)
    )


def _group_expr(breakdown: str) -> pl.Expr:
    """A child's level of a breakdown; "Unknown" when not known."""
    if breakdown == "sex":
        value = pl.when(pl.col("sex").is_in(["M", "F"])).then(pl.col("sex"))
    elif breakdown == "disabled":
        value = pl.when(pl.col("disabled")).then(pl.lit("Disabled"))
        value = value.when(~pl.col("disabled")).then(pl.lit("Not disabled"))
    elif breakdown == "ethnicity_group":
        value = pl.when(pl.col("ethnicity_group") != UNKNOWN).then(pl.col("ethnicity_group"))
    else:
        raise ValueError(f"unknown breakdown {breakdown!r}; choose from {list(BREAKDOWNS)}")
    return value.otherwise(pl.lit(UNKNOWN)).fill_null(UNKNOWN)


# --------------------------------------------------------------------------------------------
# First events per child
# --------------------------------------------------------------------------------------------


def first_events(
    tables: Mapping[str, pl.LazyFrame],
    events: Sequence[str] = ("referral", "s47", "cpp", "care"),
    *,
    birth_years: Sequence[int],
    first_census_year: int,
    last_census_year: int,
    max_age: int = 17,
    from_age: int | None = None,
    link_by_upn: bool = True,
) -> pl.LazyFrame:
    """One row per child and event: the first event from the cohort's ``conditional_from_age``.

    Columns: event, cohort, conditional_from_age, age (completed years; events before birth
    count at 0), la_code (of the record holding the first event), linked (the child has a UPN
    hash), second_la_age (for a linked child, the age of its first event in another LA, else
    null), sex, disabled, ethnicity_group. Only events at ages the cohort has completed by
    31 March ``last_census_year`` are used. No identifiers are returned.
    """
    records = _records(tables).with_columns(person=_person_key(link_by_upn))
    persons = records.group_by("person").agg(
        birth=pl.col("birth").min(),
        sex=pl.col("sex").filter(pl.col("sex").is_in(["M", "F"])).sort().first(),
        disabled=pl.col("disabled").max(),
        ethnicity_group=pl.col("ethnicity_group")
        .filter(pl.col("ethnicity_group") != UNKNOWN)
        .sort()
        .first(),
    )
    rows = _event_rows(tables, events).join(
        records.select(*CHILD_KEY, "person", "upn_hash"), on=CHILD_KEY, how="left"
    )
    # an event of a child with no record still belongs to someone: its own LA record
    rows = rows.with_columns(pl.coalesce("person", _person_key(False)).alias("person"))
    rows = rows.join(persons, on="person", how="inner").filter(pl.col("birth").is_not_null())
    cohort = census_year_of(pl.col("birth"))
    k = pl.max_horizontal(pl.lit(int(from_age or 0)), pl.lit(first_census_year) - cohort)
    age = age_in_years(pl.col("birth"), pl.col("date")).cast(pl.Int32)
    rows = (
        rows.with_columns(
            cohort=cohort.cast(pl.Int32),
            conditional_from_age=k.clip(lower_bound=0).cast(pl.Int32),
            age=pl.when(age < 0).then(0).otherwise(age),
        )
        .filter(
            pl.col("cohort").is_in([int(b) for b in birth_years])
            & (pl.col("age") >= pl.col("conditional_from_age"))
            & (pl.col("age") <= pl.min_horizontal(max_age, last_census_year - pl.col("cohort") - 1))
        )
        .sort("person", "event", "date", "la_code", "child_id")
    )
    first_la = pl.col("la_code").first()
    return (
        rows.group_by("person", "event")
        .agg(
            pl.col("cohort").first(),
            pl.col("conditional_from_age").first(),
            pl.col("age").first(),
            first_la,
            linked=pl.col("upn_hash").is_not_null().first(),
            second_la_age=pl.col("age").filter(pl.col("la_code") != first_la).min(),
            sex=pl.col("sex").first(),
            disabled=pl.col("disabled").first(),
            ethnicity_group=pl.col("ethnicity_group").first(),
        )
        .drop("person")
    )


def unplaced_children(source: Source, events: Sequence[str] = ("referral",)) -> int:
    """Child records with one of ``events`` but no birth date or expected birth date: they
    cannot be placed in a birth cohort and are left out of every cohort."""
    tables = lifetime_tables(source)
    rows = _event_rows(tables, events).select(CHILD_KEY).unique()
    records = _records(tables)
    return int(
        rows.join(records.select(*CHILD_KEY, "birth"), on=CHILD_KEY, how="left")
        .filter(pl.col("birth").is_null())
        .select(pl.len())
        .collect()
        .item()
    )


# --------------------------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------------------------


def _z(alpha: float) -> float:
    """Two-sided standard normal quantile (1.959964 for ``alpha`` 0.05)."""
    return NormalDist().inv_cdf(1 - alpha / 2)


def cumulative_risk(
    counts: pl.DataFrame, keys: Sequence[str], *, alpha: float = 0.05
) -> pl.DataFrame:
    """Life-table cumulative risk by age (see the module docstring for the method).

    ``counts`` has ``keys``, ``age``, ``population`` (children of the area aged ``age``) and
    ``events`` (children whose first event came at that age), one row per key and age, ages
    consecutive. Adds ``at_risk`` (population less children counted at earlier ages),
    ``cumulative_events``, ``cumulative_risk`` (a proportion, 0-1) and the Wilson interval
    ``ci_low``/``ci_high`` at level ``1 - alpha``. From a row whose population is missing, or
    smaller than the children to count, every later row of the key has null risk.
    """
    z = _z(alpha)
    over = {"partition_by": list(keys), "order_by": "age"}
    d = pl.col("events").cast(pl.Float64)
    n = pl.col("at_risk")
    out = counts.with_columns(
        cumulative_events=pl.col("events").cum_sum().over(**over),
    ).with_columns(
        at_risk=(pl.col("population") - (pl.col("cumulative_events") - pl.col("events"))).cast(
            pl.Float64
        )
    )
    bad = pl.col("population").is_null() | (n <= 0) | (d > n)
    out = out.with_columns(
        _bad=bad.cast(pl.Int8).cum_max().over(**over).cast(pl.Boolean),
        _log_s=pl.when(bad).then(0.0).otherwise((1 - d / n).log()).cum_sum().over(**over),
        _gw=pl.when(bad | (d >= n)).then(0.0).otherwise(d / (n * (n - d))).cum_sum().over(**over),
        _n0=n.first().over(**over),
    )
    s = pl.col("_log_s").exp()
    risk = 1 - s
    var = s**2 * pl.col("_gw")
    n_eff = (
        pl.when(var > 0)
        .then(risk * (1 - risk) / var)
        .when(risk <= 0)
        .then(pl.col("at_risk"))
        .otherwise(pl.col("_n0"))
    )
    centre = (risk + z**2 / (2 * n_eff)) / (1 + z**2 / n_eff)
    half = z / (1 + z**2 / n_eff) * (risk * (1 - risk) / n_eff + z**2 / (4 * n_eff**2)).sqrt()
    out = out.with_columns(
        cumulative_risk=risk,
        ci_low=pl.when(risk <= 0).then(0.0).otherwise((centre - half).clip(lower_bound=0.0)),
        ci_high=(centre + half).clip(upper_bound=1.0),
    ).with_columns(
        pl.when(pl.col("_bad")).then(None).otherwise(pl.col(c)).alias(c)
        for c in ("cumulative_risk", "ci_low", "ci_high")
    )
    return out.drop("_bad", "_log_s", "_gw", "_n0")


# --------------------------------------------------------------------------------------------
# Areas, groups and populations
# --------------------------------------------------------------------------------------------


def _areas(la_codes: Sequence[str], geography: str) -> pl.DataFrame:
    """la_code → area_code, area_name at the geography level."""
    frame = pl.DataFrame({"la_code": sorted(set(la_codes))}, schema={"la_code": pl.String})
    if geography == "england":
        return frame.with_columns(area_code=pl.lit(ENGLAND_CODE), area_name=pl.lit(ENGLAND_NAME))
    lookup = (
        la_lookup()
        .sort("first_census_year", nulls_last=False)
        .unique("old_la_code", keep="last", maintain_order=True)
        .select("old_la_code", "la_name", "region_code", "region_name")
    )
    frame = frame.join(lookup, left_on="la_code", right_on="old_la_code", how="left")
    if geography == "region":
        return frame.select(
            "la_code",
            area_code=pl.col("region_code").fill_null(UNKNOWN),
            area_name=pl.col("region_name").fill_null("Unknown region"),
        )
    return frame.select(
        "la_code",
        area_code=pl.col("la_code"),
        area_name=pl.coalesce(pl.col("la_name"), pl.concat_str([pl.lit("LA "), "la_code"])),
    )


def _check_shares(shares: pl.DataFrame, breakdown: str) -> list[str]:
    """Keys of a population-share table; raises when its shares do not add up to 1."""
    if breakdown not in shares.columns or "share" not in shares.columns:
        raise ValueError(f"population_shares[{breakdown!r}] needs columns {breakdown!r}, 'share'")
    keys = [c for c in ("la_code", "age", "sex") if c in shares.columns]
    sums = (
        shares.group_by(keys).agg(pl.col("share").sum()) if keys else shares.select("share").sum()
    )
    off = sums.filter((pl.col("share") - 1).abs() > 0.01)
    if off.height:
        raise ValueError(
            f"population_shares[{breakdown!r}]: shares must add up to 1 for each "
            f"{keys or 'table'}; {off.height} do not (e.g. {off.row(0, named=True)})"
        )
    return keys


def _population(
    population: pl.LazyFrame,
    areas: pl.DataFrame,
    breakdown: str,
    shares: pl.DataFrame | None,
) -> pl.DataFrame:
    """area_code, group, year, age, population for one breakdown."""
    pop = (
        population.select(
            pl.col("la_code").cast(pl.String),
            pl.col("year").cast(pl.Int32),
            pl.col("age").cast(pl.Int32),
            pl.col("sex").cast(pl.String),
            pl.col("population").cast(pl.Float64),
        )
        .collect()
        .join(areas.select("la_code", "area_code"), on="la_code", how="inner")
    )
    if breakdown == TOTAL:
        pop = pop.with_columns(group=pl.lit(TOTAL))
    elif breakdown == "sex":
        pop = pop.with_columns(group=pl.col("sex"))
    else:
        if shares is None:
            raise ValueError(
                f"the population has no breakdown by {breakdown}: pass population_shares="
                f"{{{breakdown!r}: frame with {breakdown!r}, 'share' and optionally la_code, "
                "age, sex}} (e.g. Census 2021 shares by single year of age)"
            )
        keys = _check_shares(shares, breakdown)
        share = shares.select(
            *keys, pl.col(breakdown).cast(pl.String).alias("group"), pl.col("share")
        )
        if "age" in keys:
            share = share.with_columns(pl.col("age").cast(pl.Int32))
        pop = pop.join(share, on=keys, how="inner") if keys else pop.join(share, how="cross")
        pop = pop.with_columns(pl.col("population") * pl.col("share"))
    return pop.group_by("area_code", "group", "year", "age").agg(pl.col("population").sum())


# --------------------------------------------------------------------------------------------
# The analysis
# --------------------------------------------------------------------------------------------


def birth_cohort_risk(
    source: Source,
    birth_years: Sequence[int] | None = None,
    events: Sequence[str] = ("referral", "s47", "cpp", "care"),
    max_age: int = 17,
    by: str | Sequence[str] | None = None,
    from_age: int | None = None,
    geography: str = "england",
    *,
    link_by_upn: bool = True,
    population_shares: Mapping[str, pl.DataFrame] | None = None,
    first_census_year: int | None = None,
    last_census_year: int | None = None,
    la_codes: Sequence[str] | None = None,
    alpha: float = 0.05,
) -> pl.DataFrame:
    """Cumulative risk of each event by single year of age for birth cohorts (module docstring).

    ``birth_years``: cohorts by census year of birth (2018 = born 1 April 2017 - 31 March 2018);
    default every cohort born inside the data window (followed from birth). ``geography``:
    ``"england"``, ``"region"`` or ``"la"``; ``la_codes`` restricts the LAs (default every LA
    with CIN data). ``first_census_year``/``last_census_year`` override the data window read
    from ``children_longitudinal`` (e.g. a report for an earlier year uses data to its 31 March).
    ``by``: breakdown(s) from :data:`BREAKDOWNS`; ``population_shares`` gives, per breakdown
    other than sex, the population share of each level.

    Returns one row per cohort × event × area × breakdown group × age (from the cohort's
    ``conditional_from_age`` to the last age every child of the cohort has completed, at most
    ``max_age``), columns :data:`RESULT_COLUMNS`: ``cumulative_risk`` and its interval are
    proportions (0-1) of the area's children; counts are children; ``population`` and
    ``at_risk`` are ONS estimates (not whole numbers when built from shares).
    """
    if geography not in GEOGRAPHIES:
        raise ValueError(f"geography must be one of {list(GEOGRAPHIES)}, got {geography!r}")
    breakdowns = [by] if isinstance(by, str) else list(by or [])
    for b in breakdowns:
        _group_expr(b)  # validates the name
    events = list(dict.fromkeys(events))
    tables = lifetime_tables(source)
    first, last = data_window(tables)
    first = int(first_census_year or first)
    last = int(last_census_year or last)
    if last < first:
        raise ValueError(f"last census year {last} is before the first {first}")
    if birth_years is None:
        birth_years = range(first, last)
    cohorts = sorted({int(b) for b in birth_years})
    if la_codes is None:
        la_codes = (
            tables["children_longitudinal"]
            .select(pl.col("la_code").cast(pl.String).unique())
            .collect()
            .to_series()
            .to_list()
        )
    areas = _areas([str(c) for c in la_codes], geography)

    firsts = (
        first_events(
            tables,
            events,
            birth_years=cohorts,
            first_census_year=first,
            last_census_year=last,
            max_age=max_age,
            from_age=from_age,
            link_by_upn=link_by_upn,
        )
        .collect()
        .join(areas.select("la_code", "area_code"), on="la_code", how="inner")
    )
    ages = pl.DataFrame(
        [
            {
                "cohort": b,
                "conditional_from_age": k,
                "age": a,
            }
            for b in cohorts
            for k in [max(int(from_age or 0), first - b, 0)]
            for a in range(k, min(max_age, last - b - 1) + 1)
        ],
        schema={"cohort": pl.Int32, "conditional_from_age": pl.Int32, "age": pl.Int32},
    )
    parts = []
    for breakdown in [TOTAL, *breakdowns]:
        group = pl.lit(TOTAL) if breakdown == TOTAL else _group_expr(breakdown)
        labelled = firsts.with_columns(group=group, breakdown=pl.lit(breakdown))
        pop = _population(
            tables["population"], areas, breakdown, (population_shares or {}).get(breakdown)
        )
        groups = pl.concat(
            [pop.select("area_code", "group"), labelled.select("area_code", "group")]
        ).unique()
        grid = (
            ages.join(pl.DataFrame({"event": events}), how="cross")
            .join(groups, how="cross")
            .with_columns(breakdown=pl.lit(breakdown))
        )
        counted = labelled.group_by(*KEYS, "age").agg(
            events=pl.len().cast(pl.Int64),
            _unlinked=(~pl.col("linked")).sum().cast(pl.Int64),
            _linked=pl.col("linked").sum().cast(pl.Int64),
        )
        multi = (
            labelled.filter(pl.col("second_la_age").is_not_null())
            .group_by(*KEYS, pl.col("second_la_age").alias("age"))
            .agg(_multi=pl.len().cast(pl.Int64))
        )
        # a group seen only in the counts (e.g. sex unknown) has no population at all
        frame = (
            grid.with_columns(year=pl.col("cohort") + pl.col("age"))
            .join(counted, on=[*KEYS, "age"], how="left")
            .join(multi, on=[*KEYS, "age"], how="left")
            .join(pop, on=["area_code", "group", "year", "age"], how="left")
            .with_columns(pl.col("events", "_unlinked", "_linked", "_multi").fill_null(0))
            .drop("year")
        )
        parts.append(frame)
    frame = pl.concat(parts, how="vertical_relaxed")
    # a group with no population and no children counted (e.g. sex unknown in another cohort)
    frame = frame.filter(
        pl.col("population").is_not_null().any().over(KEYS)
        | (pl.col("events").sum().over(KEYS) > 0)
    )
    if frame.is_empty():
        return pl.DataFrame(schema=_RESULT_SCHEMA)
    over = {"partition_by": KEYS, "order_by": "age"}
    frame = cumulative_risk(frame, KEYS, alpha=alpha).with_columns(
        unlinked_children=pl.col("_unlinked").cum_sum().over(**over),
        linked_children=pl.col("_linked").cum_sum().over(**over),
        linked_multi_la=pl.col("_multi").cum_sum().over(**over),
    )
    names = areas.unique("area_code").select("area_code", "area_name")
    event_order = {e: i for i, e in enumerate(events)}
    breakdown_order = {b: i for i, b in enumerate([TOTAL, *breakdowns])}
    return (
        frame.join(names, on="area_code", how="left")
        .with_columns(geographic_level=pl.lit(GEOGRAPHIES[geography]))
        .with_columns(
            _e=pl.col("event").replace_strict(event_order, return_dtype=pl.Int32),
            _b=pl.col("breakdown").replace_strict(breakdown_order, return_dtype=pl.Int32),
            _g=pl.when(pl.col("group") == TOTAL)
            .then(0)
            .when(pl.col("group") == UNKNOWN)
            .then(2)
            .otherwise(1),
        )
        .sort("cohort", "_e", "area_code", "_b", "_g", "group", "age")
        .select([pl.col(c).cast(t) for c, t in _RESULT_SCHEMA.items()])
    )


def double_counting(result: pl.DataFrame) -> pl.DataFrame:
    """How much of each cumulative count may be the same child counted in two LAs.

    Adds, per row of :func:`birth_cohort_risk`: ``multi_la_share`` (share of the linked
    children found in more than one LA by that age: what linkage removed);
    ``expected_double_counts`` (``unlinked_children × multi_la_share``: the double counts among
    children without a UPN hash if they moved between LAs as often as the linked children did;
    an estimate, since linked children are mostly older); ``risk_adjusted`` (the cumulative
    risk less that share of double counts) and ``risk_low_bound`` (less every unlinked child: the
    floor if each were another counted child's second record; very low where most children
    have no UPN). ``cumulative_risk`` itself counts every unlinked record as a child, so it is
    the ceiling (up to sampling error). Adjustments scale the risk by the share of the count
    kept, which is exact when the cohort's population does not change with age.
    """
    linked = pl.col("linked_children")
    cumulative = pl.col("cumulative_events")
    share = pl.when(linked > 0).then(pl.col("linked_multi_la") / linked).otherwise(0.0)
    expected = pl.col("unlinked_children") * share
    kept = pl.when(cumulative > 0)
    return result.with_columns(
        multi_la_share=pl.when(linked > 0).then(share),
        expected_double_counts=expected,
        risk_adjusted=kept.then(pl.col("cumulative_risk") * (1 - expected / cumulative)).otherwise(
            pl.col("cumulative_risk")
        ),
        risk_low_bound=kept.then(
            pl.col("cumulative_risk") * (1 - pl.col("unlinked_children") / cumulative)
        ).otherwise(pl.col("cumulative_risk")),
    )


def at_age(result: pl.DataFrame, before_age: int) -> pl.DataFrame:
    """The risk before the ``before_age``-th birthday: for each cohort, event, area and group of
    :func:`birth_cohort_risk`, its row at age ``before_age - 1``, or at its last age when the
    cohort has not reached it yet. Adds ``before_age`` (the last age + 1)."""
    upto = result.filter(pl.col("age") <= before_age - 1)
    return upto.filter(pl.col("age") == pl.col("age").max().over(KEYS)).with_columns(
        before_age=(pl.col("age") + 1).cast(pl.Int32)
    )
