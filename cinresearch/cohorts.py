"""Cohort definitions and survival frames built from the derived ``episodes`` table.

A *cohort* selects subjects, either CIN episodes or child protection plans, by the date of
an origin (referral, closure, CPP start or end) in a window of census years. An *outcome* sets
where the clock starts, the event that stops it, the events that compete with it and what
censors it. :func:`survival_frame` turns both into one row per subject:
``origin_date, end_date, duration, entry, event, event_type, end_reason`` plus covariates.
:mod:`cinresearch.survival` then fits Kaplan–Meier, Aalen–Johansen and Cox models on it.

Conventions (each one can be changed by an argument):

* Census year ``Y`` runs from 1 April ``Y-1`` to 31 March ``Y``. Both ends are included.
* ``duration = end_date - origin_date`` in whole days. An event on the origin day has
  duration 0 and is kept.
* ``event_type``: 0 censored, 1 outcome, 2 competing event. ``event`` is 1 when the outcome
  happened, else 0.
* When two things happen on the same day, the first in this list wins: outcome, competing
  (death first, then closure), censoring (leaving the LA, then the 18th birthday, then the
  end of data).
* End of data follows each record's own return. ``follow_up: episode`` uses 31 March of the
  episode's last return (the ``data_end`` column). ``follow_up: la`` uses the LA's last
  return, for outcomes that can appear in a later episode. ``follow_up: npd`` uses 31 August
  of the child's last NPD academic year. The ``data_end`` argument can bring any of these
  earlier.
* The 18th birthday comes from ``birth_date``, or ``expected_birth_date`` for an unborn
  child. A 29 February birthday falls on 1 March in non-leap years.
* Left truncation: when ``analysis_start`` is later than a subject's origin, ``entry`` holds
  the days from the origin to ``analysis_start``. Otherwise ``entry`` is 0. A subject whose
  follow-up ends before ``analysis_start`` was never at risk and is excluded, with a reason.
* Prior plans. Plans that ended before an LA's first return are never sent, so a child's
  history is pieced together from three sources: plans seen in any return (``cp_plans``
  when given, else the episodes' first plans), plans dated before the follow-up start, and
  ``NumberOfPreviousCPP`` (``previous_cpps``) on a later plan. ``n_prior_cpp`` is the number
  of plans of this child in this LA known to have started before the subject's follow-up
  start (the origin; ``analysis_start`` for a late entrant; the plan's own start for plan
  subjects): the larger of the plans seen before it and, over the child's plans starting on
  or after it, ``previous_cpps`` minus the plans seen in between. ``prior_cpp`` is
  ``n_prior_cpp >= 1`` or ``prior_cpp_seen`` (a plan seen before the origin, or before the
  plan itself for plan subjects).
* ``prior_cpp_at_start``: a plan of the child in this LA seen in the data and dated before
  the follow-up start — known at that time, no look-ahead.
* First-plan analyses (event ``first_cpp_start``) exclude subjects with
  ``prior_cpp_at_start`` by default (``prior_plans="exclude"``): they are not at risk of a
  *first* plan. The exclusion has its own reason in ``excluded`` and the reconciliation, so
  reports can say how many. A plan that ended before the first return is only known through
  ``previous_cpps`` on a *later* plan; excluding on that (``prior_plans="exclude_any"``)
  removes only children who went on to a plan, i.e. selects on the outcome, which biases
  hazard ratios (seen on the planted-effects data: under-1 HR 2.77 against a planted 2.0),
  so it is a sensitivity option, not the default. ``prior_plans="keep"`` keeps everyone.
* Closure with reason RC5 (transferred to another LA) censors as "left LA" for "cpp" and
  "care" instead of competing (``censor_closure_reasons`` in cohorts.yaml). A closure with
  RC2 is labelled "competing: died" even without a death date.
* No row is dropped silently. Rows outside the cohort are counted by criterion. Cohort rows
  that cannot be analysed (missing dates, outcome before origin, ...) go to the ``excluded``
  frame with a reason. :func:`build_survival_frame` returns both, plus a reconciliation table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from cinresearch.codes import AGE_BANDS

__all__ = [
    "AGE_BANDS",
    "Cohort",
    "Outcome",
    "SurvivalFrame",
    "age_band_expr",
    "age_expr",
    "birthday_expr",
    "build_survival_frame",
    "census_year_window",
    "define_cohort",
    "define_outcome",
    "list_cohorts",
    "list_outcomes",
    "referral_source_group_expr",
    "survival_frame",
]

COHORTS_YAML = Path(__file__).resolve().parent.parent / "data_contracts" / "cohorts.yaml"

AGE_BAND_DTYPE = pl.Enum(list(AGE_BANDS))

ORIGINS = ("referral", "closure", "cpp_start", "cpp_end")
PLAN_ORIGINS = ("cpp_start", "cpp_end")
EVENT_SOURCES = (
    "first_cpp_start",
    "next_referral",
    "next_cpp_start",
    "entered_care",
    "npd_exclusion",
)
COMPETING_KINDS = ("died", "closed_without_event")
CENSOR_KINDS = ("data_end", "birthday_18", "left_la")
FOLLOW_UPS = ("episode", "la", "npd")

CENSORED, OUTCOME, COMPETING = 0, 1, 2
END_OUTCOME = "outcome"
END_DIED = "competing: died"
END_DATA_END = "censored: data end"
END_BIRTHDAY_18 = "censored: 18th birthday"
END_LEFT_LA = "censored: left LA"
END_LEFT_NPD = "censored: no further NPD records"

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

OUTPUT_COLUMNS = (
    "subject_id",
    "episode_id",
    "child_id",
    "la_code",
    "origin_date",
    "end_date",
    "duration",
    "entry",
    "event",
    "event_type",
    "end_reason",
    "age_band",
    "age_at_origin",
    "disabled",
    "sex",
    "ethnicity_group",
    "primary_need",
    "referral_source",
    "prior_cpp",
    "prior_cpp_seen",
    "prior_cpp_at_start",
    "n_prior_cpp",
)
EXCLUDED_COLUMNS = ("subject_id", "episode_id", "child_id", "la_code", "origin_date", "reason")

Frame = pl.DataFrame | pl.LazyFrame


# --------------------------------------------------------------------------------------------
# Definitions file
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _load_definitions_cached(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    for key in ("cohorts", "outcomes"):
        data.setdefault(key, {})
    return data


def load_definitions(path: str | Path | None = None) -> dict[str, Any]:
    """Parsed ``data_contracts/cohorts.yaml``: ``cohorts``, ``outcomes`` and ``covariates``."""
    return _load_definitions_cached(str(Path(path) if path else COHORTS_YAML))


def census_year_window(first: int, last: int | None = None) -> tuple[date, date]:
    """Dates covered by census years ``first..last``: 1 April ``first-1`` to 31 March ``last``."""
    last = first if last is None else last
    if last < first:
        raise ValueError(f"census years out of order: {first} > {last}")
    return date(first - 1, 4, 1), date(last, 3, 31)


def _as_date(value: date | str | None, what: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError as err:
            raise ValueError(f"{what}: {value!r} is not an ISO date (YYYY-MM-DD)") from err
    raise TypeError(f"{what}: expected a date or ISO string, got {type(value).__name__}")


def _as_str_tuple(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


# --------------------------------------------------------------------------------------------
# Cohort
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cohort:
    """Which subjects enter a survival frame.

    ``origin`` names the date that must fall in the window (referral, closure, cpp_start,
    cpp_end). ``census_years=(2019, 2021)`` means 1 April 2018 to 31 March 2021. You can give
    ``window=(start, end)`` (inclusive dates) instead. With neither, every date is in.
    With ``include_open=True`` the cohort is *prevalent*: subjects whose origin is on or before
    the window end and who are still at risk on the window start. Those with an earlier
    origin enter late (left truncation at the window start). ``where`` is a polars
    expression, or a polars SQL string, evaluated on the subject frame. It sees the episode
    columns with their stored codes (e.g. ``referral_source = '3B'``) plus ``origin_date``,
    ``end_date``, ``age_band``, ``age_at_origin``, ``referral_source_group`` and
    ``prior_cpp``. It is left out of equality and hashing.
    "First referral" means first in the data: referrals before the first return are unknown.
    """

    name: str
    origin: str = "referral"
    census_years: tuple[int, int] | None = None
    window: tuple[date, date] | None = None
    first_referral_only: bool = False
    age_bands: tuple[str, ...] | None = None
    exclude_nfa: bool = True
    la_codes: tuple[str, ...] | None = None
    where: pl.Expr | str | None = field(default=None, compare=False, hash=False)
    include_open: bool = False
    outcome: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.origin not in ORIGINS:
            raise ValueError(f"cohort {self.name!r}: origin must be one of {ORIGINS}")
        years = self.census_years
        if years is not None:
            if isinstance(years, int):
                years = (years, years)
            years = tuple(int(y) for y in years)
            if len(years) != 2 or years[0] > years[1]:
                raise ValueError(
                    f"cohort {self.name!r}: census_years must be (first, last), got {years}"
                )
            object.__setattr__(self, "census_years", years)
        if self.window is not None:
            if years is not None:
                raise ValueError(f"cohort {self.name!r}: give census_years or window, not both")
            start, end = (_as_date(d, f"cohort {self.name!r} window") for d in self.window)
            if start is None or end is None or start > end:
                raise ValueError(f"cohort {self.name!r}: window must be (start <= end)")
            object.__setattr__(self, "window", (start, end))
        bands = _as_str_tuple(self.age_bands)
        if bands is not None:
            unknown = sorted(set(bands) - set(AGE_BANDS))
            if unknown:
                raise ValueError(
                    f"cohort {self.name!r}: unknown age bands {unknown}; use {AGE_BANDS}"
                )
        object.__setattr__(self, "age_bands", bands)
        object.__setattr__(self, "la_codes", _as_str_tuple(self.la_codes))
        if self.where is not None and not isinstance(self.where, (str, pl.Expr)):
            raise TypeError(f"cohort {self.name!r}: where must be a polars Expr or SQL string")

    @property
    def window_dates(self) -> tuple[date | None, date | None]:
        """(start, end) of the selection window, inclusive; (None, None) when unrestricted."""
        if self.census_years is not None:
            return census_year_window(*self.census_years)
        if self.window is not None:
            return self.window
        return None, None

    def where_expr(self) -> pl.Expr | None:
        """The ``where`` filter as a polars expression (SQL strings are parsed here)."""
        if self.where is None:
            return None
        return pl.sql_expr(self.where) if isinstance(self.where, str) else self.where


def _cohort_from_mapping(name: str, spec: Mapping[str, Any]) -> Cohort:
    fields = {f.name for f in dataclasses.fields(Cohort)}
    unknown = sorted(set(spec) - fields)
    if unknown:
        raise ValueError(f"cohort {name!r}: unknown keys {unknown}; allowed {sorted(fields)}")
    kwargs = dict(spec)
    kwargs.setdefault("name", name)
    if isinstance(kwargs.get("description"), str):
        kwargs["description"] = " ".join(kwargs["description"].split())
    return Cohort(**kwargs)


def define_cohort(
    spec: str | Mapping[str, Any] | Cohort, /, path: str | Path | None = None, **overrides: Any
) -> Cohort:
    """A :class:`Cohort` from a preset name in ``cohorts.yaml``, a dict, or a Cohort.

    Keyword ``overrides`` replace fields, so a notebook parameter cell can say
    ``define_cohort("referrals_2019_2021", la_codes=["201"])``.
    """
    if isinstance(spec, Cohort):
        cohort = spec
    elif isinstance(spec, str):
        presets = load_definitions(path)["cohorts"]
        if spec not in presets:
            raise ValueError(f"unknown cohort {spec!r}; named cohorts: {sorted(presets)}")
        cohort = _cohort_from_mapping(spec, presets[spec])
    elif isinstance(spec, Mapping):
        cohort = _cohort_from_mapping(str(spec.get("name", "custom")), spec)
    else:
        raise TypeError(f"define_cohort: expected a name, dict or Cohort, got {type(spec)}")
    if overrides:
        if "census_years" in overrides and "window" not in overrides:
            overrides["window"] = None
        if "window" in overrides and "census_years" not in overrides:
            overrides["census_years"] = None
        cohort = dataclasses.replace(cohort, **overrides)
    return cohort


def list_cohorts(path: str | Path | None = None) -> pl.DataFrame:
    """One row per named cohort: name, origin, window dates, filters, default outcome."""
    rows = []
    for name in load_definitions(path)["cohorts"]:
        c = define_cohort(name, path=path)
        start, end = c.window_dates
        rows.append(
            {
                "name": c.name,
                "origin": c.origin,
                "window_start": start,
                "window_end": end,
                "include_open": c.include_open,
                "exclude_nfa": c.exclude_nfa,
                "first_referral_only": c.first_referral_only,
                "age_bands": list(c.age_bands) if c.age_bands else None,
                "outcome": c.outcome,
                "description": c.description,
            }
        )
    schema = {
        "name": pl.String,
        "origin": pl.String,
        "window_start": pl.Date,
        "window_end": pl.Date,
        "include_open": pl.Boolean,
        "exclude_nfa": pl.Boolean,
        "first_referral_only": pl.Boolean,
        "age_bands": pl.List(pl.String),
        "outcome": pl.String,
        "description": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


# --------------------------------------------------------------------------------------------
# Outcome
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What ends follow-up: the event, the competing events and the censoring reasons.

    Outcomes are declared in ``cohorts.yaml`` using the vocabulary documented there. The
    builders for each ``event`` source live in this module.
    """

    name: str
    origin: str
    event: str
    competing: tuple[str, ...] = ()
    censor: tuple[str, ...] = ("data_end", "birthday_18")
    follow_up: str = "episode"
    closed_label: str = "competing: closed without event"
    censor_closure_reasons: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        for attr in ("competing", "censor", "censor_closure_reasons"):
            object.__setattr__(self, attr, _as_str_tuple(getattr(self, attr)) or ())
        checks = [
            ("origin", (self.origin,), ORIGINS),
            ("event", (self.event,), EVENT_SOURCES),
            ("competing", self.competing, COMPETING_KINDS),
            ("censor", self.censor, CENSOR_KINDS),
            ("follow_up", (self.follow_up,), FOLLOW_UPS),
        ]
        for attr, values, allowed in checks:
            bad = [v for v in values if v not in allowed]
            if bad:
                raise ValueError(f"outcome {self.name!r}: {attr} {bad} not in {allowed}")
        if self.event == "next_cpp_start" and self.origin not in PLAN_ORIGINS:
            raise ValueError(f"outcome {self.name!r}: next_cpp_start needs a cpp_* origin")
        if self.event == "npd_exclusion" and self.follow_up != "npd":
            raise ValueError(f"outcome {self.name!r}: npd_exclusion needs follow_up: npd")

    @property
    def plan_level(self) -> bool:
        """True when subjects are CP plans (one row per plan), not episodes."""
        return self.origin in PLAN_ORIGINS


def define_outcome(
    spec: str | Mapping[str, Any] | Outcome, /, path: str | Path | None = None
) -> Outcome:
    """An :class:`Outcome` from a name in ``cohorts.yaml``, a dict, or an Outcome."""
    if isinstance(spec, Outcome):
        return spec
    if isinstance(spec, str):
        registry = load_definitions(path)["outcomes"]
        if spec not in registry:
            raise ValueError(f"unknown outcome {spec!r}; outcomes: {sorted(registry)}")
        mapping: Mapping[str, Any] = {"name": spec, **registry[spec]}
    elif isinstance(spec, Mapping):
        mapping = {"name": "custom", **spec}
    else:
        raise TypeError(f"define_outcome: expected a name, dict or Outcome, got {type(spec)}")
    kwargs = dict(mapping)
    if isinstance(kwargs.get("description"), str):
        kwargs["description"] = " ".join(kwargs["description"].split())
    return Outcome(**kwargs)


def list_outcomes(path: str | Path | None = None) -> pl.DataFrame:
    """One row per declared outcome: origin, event, competing events, censoring, follow-up."""
    rows = []
    for name in load_definitions(path)["outcomes"]:
        o = define_outcome(name, path=path)
        rows.append(
            {
                "name": o.name,
                "origin": o.origin,
                "event": o.event,
                "competing": list(o.competing),
                "censor": list(o.censor),
                "follow_up": o.follow_up,
                "description": o.description,
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "name": pl.String,
            "origin": pl.String,
            "event": pl.String,
            "competing": pl.List(pl.String),
            "censor": pl.List(pl.String),
            "follow_up": pl.String,
            "description": pl.String,
        },
    )


# --------------------------------------------------------------------------------------------
# Age and covariate expressions
# --------------------------------------------------------------------------------------------


def _col(c: str | pl.Expr) -> pl.Expr:
    return pl.col(c) if isinstance(c, str) else c


def age_expr(birth: str | pl.Expr, at: str | pl.Expr) -> pl.Expr:
    """Age in completed years at ``at`` (Int16). Negative before birth, null if either is null.

    A 29 February birthday counts as reached on 1 March in non-leap years.
    """
    from cinresearch.journeys.episodes import age_in_years  # one implementation of the rule

    return age_in_years(_col(birth), _col(at))


def birthday_expr(birth: str | pl.Expr, years: int = 18) -> pl.Expr:
    """Date of the ``years``-th birthday. A 29 February birth gives 1 March in non-leap years."""
    b = _col(birth)
    shifted = b.dt.offset_by(f"{years}y")  # polars clamps 29 Feb to 28 Feb
    leapling = (b.dt.month() == 2) & (b.dt.day() == 29) & (shifted.dt.day() == 28)
    return pl.when(leapling).then(shifted + pl.duration(days=1)).otherwise(shifted)


def age_band_expr(
    at: str | pl.Expr = "referral_date",
    birth_date: str | pl.Expr = "birth_date",
    expected_birth_date: str | pl.Expr | None = "expected_birth_date",
) -> pl.Expr:
    """DfE age band at ``at``: unborn, under 1, 1-4, 5-9, 10-15, 16+.

    The result is an ordered Enum column named "age_band".
    The child counts as unborn when ``at`` is before the birth date. Without a birth date,
    the expected birth date is used: before it the child is unborn, after it the expected
    date stands in for the birth date. The band is null when both dates are missing.
    Ages 18 and over fall in "16+".
    """
    birth = _col(birth_date)
    if expected_birth_date is not None:
        birth = pl.coalesce(birth, _col(expected_birth_date))
    a = _col(at)
    age = age_expr(birth, a)
    band = (
        pl.when(birth.is_null() | a.is_null())
        .then(pl.lit(None, dtype=pl.String))
        .when(a < birth)
        .then(pl.lit("unborn"))
        .when(age < 1)
        .then(pl.lit("under 1"))
        .when(age < 5)
        .then(pl.lit("1-4"))
        .when(age < 10)
        .then(pl.lit("5-9"))
        .when(age < 16)
        .then(pl.lit("10-15"))
        .otherwise(pl.lit("16+"))
    )
    return band.cast(AGE_BAND_DTYPE).alias("age_band")


def referral_source_group_expr(
    source: str | pl.Expr = "referral_source", groups: Mapping[str, str] | None = None
) -> pl.Expr:
    """Referral source grouped by the code's leading number (e.g. "3B" → "Health services").

    The groups come from ``covariates.referral_source_groups`` in cohorts.yaml. Codes with an
    unknown leading number give null.
    """
    if groups is None:
        groups = load_definitions()["covariates"]["referral_source_groups"]
    mapping = {str(k): str(v) for k, v in groups.items()}
    leading = _col(source).cast(pl.String).str.strip_chars().str.extract(r"^(\d+)", 1)
    return leading.replace_strict(mapping, default=None, return_dtype=pl.String)


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Outcome-specific pieces joined onto the subjects
# --------------------------------------------------------------------------------------------


def _first_on_or_after(
    subjects: pl.LazyFrame,
    dated: pl.LazyFrame,
    keys: Sequence[str],
    date_col: str,
    name: str,
) -> pl.LazyFrame:
    """Per subject: the earliest ``date_col`` in ``dated`` on/after its origin (same keys)."""
    pairs = (
        subjects.select("_rid", "origin_date", *keys)
        .join(dated.select(*keys, date_col), on=list(keys), how="inner")
        .filter(pl.col(date_col) >= pl.col("origin_date"))
        .group_by("_rid")
        .agg(pl.col(date_col).min().alias(name))
    )
    return subjects.join(pairs, on="_rid", how="left")


def _add_moves(subjects: pl.LazyFrame, events: Frame | None, eps: pl.LazyFrame) -> pl.LazyFrame:
    """`_t_moved`: the first date on/after the origin when the child turned up in another LA.

    ``moved_la`` events (journeys) sit on the child's record in the *new* LA, dated at the
    first referral there, with ``attrs`` JSON ``{"from_la": ..., "to_la": ...}``. The record
    in the LA left is found through ``upn_hash`` (LAchildIDs differ between LAs), and its
    subjects are censored at that date.
    """
    if events is None:
        return subjects.with_columns(_t_moved=pl.lit(None, pl.Date))
    ev = _lazy(events)
    _require(ev, ["child_id", "la_code", "date", "event", "attrs"], "events", "leaving the LA")
    moves = ev.filter(pl.col("event") == "moved_la").select(
        pl.col("child_id").cast(pl.String),
        pl.col("la_code").cast(pl.String),
        pl.col("date").cast(pl.Date).alias("_move_date"),
        pl.col("attrs").cast(pl.String).str.json_path_match("$.from_la").alias("_from_la"),
    )
    upns = (
        eps.select("child_id", "la_code", "upn_hash")
        .filter(pl.col("upn_hash").is_not_null())
        .unique()
    )
    left = (
        moves.join(upns, on=["child_id", "la_code"], how="inner")  # the record moved to
        .select("upn_hash", pl.col("_from_la").alias("la_code"), "_move_date")
        .join(upns, on=["upn_hash", "la_code"], how="inner")  # the record in the LA left
        .select("child_id", "la_code", "_move_date")
    )
    return _first_on_or_after(subjects, left, ["child_id", "la_code"], "_move_date", "_t_moved")


def _add_care(subjects: pl.LazyFrame, cla: Frame | None) -> pl.LazyFrame:
    """`_t_event` = entering care; `_in_care_at_origin` when a CLA episode spans the origin."""
    if cla is None:
        return subjects.with_columns(
            _t_event=pl.col("entered_care_date"), _in_care_at_origin=pl.lit(False)
        )
    from cinresearch.journeys.linkage import care_entries, merge_cla_episodes

    lf = _lazy(cla)
    _require(lf, ["child_id", "la_code", "decom", "dec"], "cla", "entering care")
    lf = _cast_dates(lf, ["decom", "dec"]).with_columns(
        pl.col("child_id").cast(pl.String), pl.col("la_code").cast(pl.String)
    )
    if "census_year" in _columns(lf):  # raw returns: latest return wins per episode
        lf = merge_cla_episodes(lf)[0]
    # Same definition as episodes.entered_care_date: starts of periods of care, so a
    # placement move inside a period of care is not an entry (cinresearch.journeys.linkage).
    starts = care_entries(lf)
    out = _first_on_or_after(subjects, starts, ["child_id", "la_code"], "decom", "_t_event")
    spans = (
        subjects.select("_rid", "origin_date", "child_id", "la_code")
        .join(lf.select("child_id", "la_code", "decom", "dec"), on=["child_id", "la_code"])
        .filter(
            (pl.col("decom") < pl.col("origin_date"))
            & (pl.col("dec").is_null() | (pl.col("dec") > pl.col("origin_date")))
        )
        .select("_rid", _in_care_at_origin=pl.lit(True))
        .unique("_rid")
    )
    return out.join(spans, on="_rid", how="left").with_columns(
        pl.col("_in_care_at_origin").fill_null(False)
    )


def _add_npd(subjects: pl.LazyFrame, npd: Frame | None) -> pl.LazyFrame:
    """NPD exclusions: `_t_event` (31 Aug of the first academic year with a suspension or
    permanent exclusion, ending on/after the origin), `_npd_linked`, `_npd_last_end`."""
    if npd is None:
        raise ValueError("outcome 'exclusion' needs npd (the npd_outcomes table)")
    lf = _lazy(npd)
    cols = _columns(lf)
    if "child_id" in cols:
        keys = ["child_id", "la_code"] if "la_code" in cols else ["child_id"]
    elif "upn_hash" in cols:
        keys = ["upn_hash"]
    else:
        raise ValueError("npd needs child_id (and la_code) or upn_hash to join episodes")
    _require(lf, ["academic_year"], "npd", "exclusion outcome")
    excluded = pl.lit(False)
    if "permanent_exclusion" in cols:
        excluded = excluded | pl.col("permanent_exclusion").cast(pl.Boolean).fill_null(False)
    if "suspensions" in cols:
        excluded = excluded | (pl.col("suspensions").cast(pl.Int32).fill_null(0) > 0)
    lf = lf.select(
        *[pl.col(k).cast(pl.String) for k in keys],
        _year_end=pl.date(pl.col("academic_year").cast(pl.Int32), 8, 31),
        _excluded=excluded,
    )
    coverage = lf.group_by(keys).agg(_npd_last_end=pl.col("_year_end").max())
    overall_end = lf.select(_npd_overall_end=pl.col("_year_end").max())
    hits = lf.filter(pl.col("_excluded")).select(*keys, "_year_end")
    out = _first_on_or_after(subjects, hits, keys, "_year_end", "_t_event")
    return (
        out.join(coverage, on=keys, how="left")
        .join(overall_end, how="cross")
        .with_columns(_npd_linked=pl.col("_npd_last_end").is_not_null())
    )


def _add_prior_cpp(
    subjects: pl.LazyFrame,
    eps: pl.LazyFrame,
    plans: pl.LazyFrame | None,
    outcome: Outcome,
    analysis_start: date | None,
) -> pl.LazyFrame:
    """Prior plans of the child in this LA (see the module conventions).

    ``prior_cpp_seen``: a plan of this child in this LA started before the subject's origin
    (before the plan's own start, for plan subjects). ``n_prior_cpp``: how many plans are
    known to have started before the subject's follow-up start (origin, or
    ``analysis_start`` for a late entrant; the plan's start for plan subjects): the larger
    of the plans seen before it and, for every plan of the child starting on or after it,
    that plan's ``previous_cpps`` minus the plans seen between the two.
    """
    keys = ["child_id", "la_code"]
    if plans is not None:
        hist = plans.select(*keys, _cpp=pl.col("cpp_start"), _prev=pl.col("previous_cpps"))
    elif "first_cpp_start" in _columns(eps):
        hist = eps.select(*keys, _cpp=pl.col("first_cpp_start"), _prev=pl.col("previous_cpps"))
    else:
        return subjects.with_columns(
            prior_cpp_seen=pl.lit(False),
            prior_cpp_at_start=pl.lit(False),
            n_prior_cpp=pl.col("previous_cpps").fill_null(0).cast(pl.Int16),
        )
    hist = (
        hist.filter(pl.col("_cpp").is_not_null())
        .group_by(*keys, "_cpp")
        .agg(pl.col("_prev").cast(pl.Int32).max())
    )
    earliest = hist.group_by(keys).agg(_earliest_cpp=pl.col("_cpp").min())
    if outcome.plan_level:
        at_risk_from = pl.col("cpp_start")
    elif analysis_start is not None:
        at_risk_from = pl.max_horizontal("origin_date", pl.lit(analysis_start, dtype=pl.Date))
    else:
        at_risk_from = pl.col("origin_date")
    # keyed by (child, LA, follow-up start), not by row index: independent of row order
    pairs = subjects.select(*keys, _from=at_risk_from).unique().join(hist, on=keys, how="inner")
    before = pl.col("_cpp") < pl.col("_from")
    # plans on/after the start, in date order: the k-th (k = 0, 1, ...) says previous_cpps
    # plans came before it, k of them seen on/after the start
    k_after = pl.col("_cpp").rank("ordinal").cast(pl.Int64) - 1 - before.sum()
    seen = pairs.group_by(*keys, "_from").agg(
        _seen=before.sum(),
        _implied=(pl.col("_prev") - k_after).filter(~before).max(),
    )
    ref = pl.col("cpp_start") if outcome.plan_level else pl.col("origin_date")
    return (
        subjects.with_columns(_from=at_risk_from)
        .join(earliest, on=keys, how="left")
        .join(seen, on=[*keys, "_from"], how="left")
        .with_columns(
            prior_cpp_seen=(pl.col("_earliest_cpp") < ref).fill_null(False),
            prior_cpp_at_start=pl.col("_seen").fill_null(0) >= 1,
            n_prior_cpp=pl.max_horizontal(
                pl.col("_seen").fill_null(0),
                pl.col("_implied").fill_null(0),
                pl.lit(0),
            ).cast(pl.Int16),
        )
        .drop("_earliest_cpp", "_seen", "_implied", "_from")
    )


# --------------------------------------------------------------------------------------------
# The survival frame
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SurvivalFrame:
    """A survival frame with its audit trail.

    ``frame`` has one row per analysable subject. ``excluded`` has the cohort subjects that
    could not be analysed, with a ``reason``. ``reconciliation`` has the counts at each
    stage: subjects in, removed by each cohort criterion, in cohort, excluded by reason, rows
    out and rows by end reason. By construction, subjects = not in cohort + in cohort, and
    in cohort = excluded + rows out.
    """

    frame: pl.DataFrame
    excluded: pl.DataFrame
    reconciliation: pl.DataFrame
    cohort: Cohort
    outcome: Outcome
    analysis_start: date | None


def _end_of_followup(
    outcome: Outcome, data_end: date | None
) -> tuple[list[tuple[str, pl.Expr, int, pl.Expr]], list[pl.Expr]]:
    """Candidate end dates in priority order: (column, date, event_type, end_reason)."""
    candidates: list[tuple[str, pl.Expr, int, pl.Expr]] = [
        ("_t_event", pl.col("_t_event"), OUTCOME, pl.lit(END_OUTCOME))
    ]
    censor_reason_closed = pl.col("closure_reason").is_in(list(outcome.censor_closure_reasons))
    if not outcome.censor_closure_reasons:
        censor_reason_closed = pl.lit(False)
    if "died" in outcome.competing:
        candidates.append(("_t_died", pl.col("death_date"), COMPETING, pl.lit(END_DIED)))
    if "closed_without_event" in outcome.competing:
        closed = pl.when(~censor_reason_closed.fill_null(False)).then(pl.col("closure_date"))
        reason = (
            pl.when(pl.col("closure_reason") == "RC2")
            .then(pl.lit(END_DIED))
            .otherwise(pl.lit(outcome.closed_label))
        )
        candidates.append(("_t_closed", closed, COMPETING, reason))
    if "left_la" in outcome.censor:
        transfer = pl.when(censor_reason_closed.fill_null(False)).then(pl.col("closure_date"))
        left = pl.min_horizontal(pl.col("_t_moved"), transfer)
        candidates.append(("_t_left", left, CENSORED, pl.lit(END_LEFT_LA)))
    if "birthday_18" in outcome.censor:
        candidates.append(("_t_18", pl.col("_birthday_18"), CENSORED, pl.lit(END_BIRTHDAY_18)))
    if "data_end" in outcome.censor:
        own = {
            "episode": pl.col("data_end"),
            "la": pl.col("la_data_end"),
            "npd": pl.col("_npd_last_end"),
        }[outcome.follow_up]
        cap = pl.lit(data_end, dtype=pl.Date)
        end = pl.min_horizontal(own, cap) if data_end is not None else own
        reason = pl.lit(END_DATA_END)
        if outcome.follow_up == "npd":
            left_npd = (pl.col("_npd_last_end") < pl.col("_npd_overall_end")) & (
                pl.col("_npd_last_end") <= (cap if data_end is not None else own)
            )
            reason = pl.when(left_npd).then(pl.lit(END_LEFT_NPD)).otherwise(reason)
        candidates.append(("_t_data_end", end, CENSORED, reason))
    return candidates, [expr.alias(name) for name, expr, _, _ in candidates]


PRIOR_PLANS = ("exclude", "exclude_any", "keep")
EXCLUDED_PRIOR_CPP = "CP plan before follow-up start (not at risk of a first plan)"


def _exclusion_reason(
    outcome: Outcome, analysis_start: date | None, cla_given: bool, prior_plans: str = "keep"
) -> pl.Expr:
    """First reason a cohort subject cannot be analysed (null when it can)."""
    origin = pl.col("origin_date")
    checks: list[tuple[pl.Expr, str]] = [(origin.is_null(), f"no {outcome.origin} date")]
    if outcome.plan_level:
        checks.append((~pl.col("_has_episode"), "CP plan's episode not found in episodes"))
    if outcome.follow_up == "npd":
        checks.append((~pl.col("_npd_linked"), "not linked to NPD"))
    if outcome.event == "entered_care" and cla_given:
        checks.append((pl.col("_in_care_at_origin"), "looked after at origin"))
    checks += [
        (pl.col("death_date") < origin, "died before origin"),
        (pl.col("_birthday_18") <= origin, "aged 18 or over at origin"),
    ]
    checks.append((pl.col("closure_date") < pl.col("referral_date"), "closure before referral"))
    if "closed_without_event" in outcome.competing and outcome.origin in PLAN_ORIGINS:
        checks.append((pl.col("closure_date") < origin, "closure before origin"))
    checks += [
        (pl.col("_t_event") < origin, "outcome before origin"),
    ]
    if "data_end" in outcome.censor:
        checks.append((pl.col("_t_data_end") < origin, "origin after data end"))
    checks.append((pl.col("end_date").is_null(), "no follow-up end date"))
    if outcome.event == "first_cpp_start" and prior_plans == "exclude":
        checks.append((pl.col("prior_cpp_at_start"), EXCLUDED_PRIOR_CPP))
    elif outcome.event == "first_cpp_start" and prior_plans == "exclude_any":
        checks.append((pl.col("n_prior_cpp") >= 1, EXCLUDED_PRIOR_CPP))
    if analysis_start is not None:
        start = pl.lit(analysis_start, dtype=pl.Date)
        checks.append((pl.col("end_date") < start, "follow-up ended before analysis start"))
    expr = pl.when(checks[0][0].fill_null(False)).then(pl.lit(checks[0][1]))
    for cond, reason in checks[1:]:
        expr = expr.when(cond.fill_null(False)).then(pl.lit(reason))
    return expr.otherwise(pl.lit(None, dtype=pl.String))


def _cohort_criteria(cohort: Cohort) -> list[tuple[pl.Expr, str]]:
    """(keep-condition, reason when removed) for each active cohort criterion, in order."""
    select_col = {
        "referral": "referral_date",
        "closure": "closure_date",
        "cpp_start": "cpp_start",
        "cpp_end": "cpp_end",
    }[cohort.origin]
    sel = pl.col(select_col)
    start, end = cohort.window_dates
    criteria: list[tuple[pl.Expr, str]] = [(sel.is_not_null(), f"no {cohort.origin} date")]
    if start is not None and end is not None:
        lo, hi = pl.lit(start, dtype=pl.Date), pl.lit(end, dtype=pl.Date)
        if cohort.include_open:
            criteria.append((sel <= hi, f"{cohort.origin} after {end}"))
            latest = pl.max_horizontal("origin_date", "end_date")
            criteria.append((latest.is_null() | (latest >= lo), f"not at risk on or after {start}"))
        else:
            criteria.append((sel.is_between(lo, hi), f"{cohort.origin} outside {start}..{end}"))
    if cohort.la_codes is not None:
        criteria.append((pl.col("la_code").is_in(list(cohort.la_codes)), "LA not in cohort"))
    if cohort.exclude_nfa:
        criteria.append((~pl.col("referral_nfa").fill_null(False), "NFA referral"))
    if cohort.first_referral_only:
        criteria.append((pl.col("episode_order") == 1, "not the child's first referral"))
    if cohort.age_bands is not None:
        bands = pl.col("age_band").cast(pl.String).is_in(list(cohort.age_bands))
        criteria.append((bands, "age band not in cohort"))
    where = cohort.where_expr()
    if where is not None:
        criteria.append((where, "where filter"))
    return criteria


def build_survival_frame(
    episodes: Frame,
    cohort: Cohort | str | Mapping[str, Any] = "referrals_2019_2021",
    outcome: Outcome | str | Mapping[str, Any] | None = None,
    children: Frame | None = None,
    cla: Frame | None = None,
    npd: Frame | None = None,
    data_end: date | str | None = None,
    analysis_start: date | str | None = None,
    *,
    events: Frame | None = None,
    cp_plans: Frame | None = None,
    extra_columns: Sequence[str] = (),
    prior_plans: str = "exclude",
) -> SurvivalFrame:
    """Survival frame for ``cohort`` and ``outcome``, with excluded rows and a reconciliation.

    Pass the whole ``episodes`` table, not a filtered one. The cohort does the selecting,
    and the next referral, the LA's last return and earlier plans are looked up across all
    episodes.

    Arguments:
        episodes: the derived ``episodes`` table (docs/tables.md), eager or lazy.
        cohort: a :class:`Cohort`, a preset name from cohorts.yaml, or a dict.
        outcome: an :class:`Outcome` or its name. Defaults to ``cohort.outcome``, else "cpp".
        children: ``children_longitudinal``. Fills child columns missing from ``episodes``.
        cla: ``cla_episodes`` (raw or merged). For outcome "care" it replaces
            ``entered_care_date`` with the first start of a period of care on or after the
            origin (the journeys definition). Subjects already looked after at origin are
            excluded.
        npd: ``npd_outcomes`` (child × academic_year). Needed for outcome "exclusion".
        data_end: a common last date of follow-up. Each record's own end of data still applies
            when it is earlier.
        analysis_start: subjects with an earlier origin enter late. Defaults to the window
            start for ``include_open`` cohorts, else no truncation.
        events: the ``events`` table. Its ``moved_la`` rows (on the record in the new LA, with
            ``from_la`` in ``attrs``) censor the child's subjects in the LA left, matched by
            ``upn_hash``, as "censored: left LA".
        cp_plans: plan-level CP plans (loaded ``cp_plans``, de-duplicated here, latest return
            wins). Needed for plan outcomes (``next_cpp``). When given, it is also used for
            ``prior_cpp_seen``.
        extra_columns: more subject columns to carry into ``frame``, e.g. "referral_nfa",
            "closure_reason" or "referral_source_code" (the ungrouped code).
        prior_plans: for the first-plan outcome (event ``first_cpp_start``): "exclude"
            (default) moves subjects with ``prior_cpp_at_start`` (a plan seen in the data
            dated before the follow-up start: known then, no look-ahead) to ``excluded``
            with reason "CP plan before follow-up start (not at risk of a first plan)";
            "exclude_any" also excludes those known only from ``previous_cpps`` on a later
            plan (``n_prior_cpp >= 1``) — this selects on the outcome (only children with a
            later plan can be recognised) and biases hazards, so use it only for
            sensitivity analyses; "keep" leaves everyone in, to stratify or adjust on
            ``prior_cpp_at_start``. Other outcomes ignore it.
    """
    if prior_plans not in PRIOR_PLANS:
        raise ValueError(f"prior_plans must be one of {PRIOR_PLANS}, got {prior_plans!r}")
    cohort = define_cohort(cohort)
    outcome = define_outcome(outcome or cohort.outcome or "cpp")
    data_end = _as_date(data_end, "data_end")
    analysis_start = _as_date(analysis_start, "analysis_start")
    if analysis_start is None and cohort.include_open:
        analysis_start = cohort.window_dates[0]
    if outcome.plan_level and cp_plans is None:
        raise ValueError(
            f"outcome {outcome.name!r} has one row per CP plan and needs cp_plans: "
            "episodes only carry the first plan's start, not plan end dates"
        )
    if cohort.origin in PLAN_ORIGINS and not outcome.plan_level:
        raise ValueError(
            f"cohort {cohort.name!r} selects on {cohort.origin}, which needs a plan-level "
            f"outcome; outcome {outcome.name!r} has one row per episode"
        )

    eps = _prepare_episodes(episodes, children, outcome, cla_given=cla is not None)
    plans = _prepare_plans(cp_plans) if cp_plans is not None else None
    subjects = _subjects(eps, plans if outcome.plan_level else None, outcome)

    if outcome.event == "first_cpp_start":
        subjects = subjects.with_columns(_t_event=pl.col("first_cpp_start"))
    elif outcome.event == "next_referral":
        subjects = subjects.with_columns(_t_event=pl.col("next_referral_date"))
    elif outcome.event == "next_cpp_start":
        subjects = subjects.with_columns(_t_event=pl.col("next_cpp_start"))
    elif outcome.event == "entered_care":
        subjects = _add_care(subjects, cla)
    elif outcome.event == "npd_exclusion":
        subjects = _add_npd(subjects, npd)
    subjects = _add_moves(subjects, events, eps)
    subjects = _add_prior_cpp(subjects, eps, plans, outcome, analysis_start)

    birth = pl.coalesce("birth_date", "expected_birth_date")
    subjects = subjects.with_columns(
        _birthday_18=birthday_expr(birth, 18),
        age_band=age_band_expr("origin_date"),
        age_at_origin=pl.when(pl.col("origin_date") >= birth).then(age_expr(birth, "origin_date")),
    )
    candidates, candidate_cols = _end_of_followup(outcome, data_end)
    subjects = subjects.with_columns(candidate_cols).with_columns(
        end_date=pl.min_horizontal([name for name, *_ in candidates])
    )
    event_type = pl.when(pl.lit(False)).then(pl.lit(None, pl.Int8))
    end_reason = pl.when(pl.lit(False)).then(pl.lit(None, pl.String))
    for name, _, etype, reason in candidates:
        hit = pl.col(name) == pl.col("end_date")
        event_type = event_type.when(hit).then(pl.lit(etype, pl.Int8))
        end_reason = end_reason.when(hit).then(reason)
    start_lit = pl.lit(analysis_start, dtype=pl.Date)
    subjects = subjects.with_columns(
        event_type=event_type,
        end_reason=end_reason,
        duration=(pl.col("end_date") - pl.col("origin_date")).dt.total_days(),
        entry=(
            pl.when(pl.col("origin_date") < start_lit)
            .then((start_lit - pl.col("origin_date")).dt.total_days())
            .otherwise(0)
            if analysis_start is not None
            else pl.lit(0, pl.Int64)
        ),
        referral_source_code=pl.col("referral_source"),
        prior_cpp=pl.col("prior_cpp_seen") | (pl.col("n_prior_cpp") >= 1),
    ).with_columns(
        event=(pl.col("event_type") == OUTCOME).cast(pl.Int8),
        referral_source_group=referral_source_group_expr("referral_source"),
    )

    # Cohort membership: the first failing criterion is recorded, so every subject is counted.
    criteria = _cohort_criteria(cohort)
    removed = pl.when(pl.lit(False)).then(pl.lit(None, pl.String))
    for keep, reason in criteria:
        removed = removed.when(~keep.fill_null(False)).then(pl.lit(reason))
    subjects = subjects.with_columns(
        _removed=removed,
        _excluded=_exclusion_reason(
            outcome, analysis_start, cla_given=cla is not None, prior_plans=prior_plans
        ),
    )
    wanted = list(
        dict.fromkeys(
            [
                *(c for c in OUTPUT_COLUMNS if c != "referral_source"),
                "referral_source_group",
                *extra_columns,
                "_removed",
                "_excluded",
            ]
        )
    )
    # One pass: counts of the subjects outside the cohort, and the cohort rows themselves.
    subjects = subjects.select(wanted)
    removed_lf = subjects.group_by("_removed").agg(n=pl.len())
    removed_df, in_cohort = pl.collect_all(
        [removed_lf, subjects.filter(pl.col("_removed").is_null())]
    )
    removed_counts = {reason: n for reason, n in removed_df.iter_rows() if reason is not None}
    n_subjects = int(removed_df["n"].sum())
    excluded = (
        in_cohort.filter(pl.col("_excluded").is_not_null())
        .select(*EXCLUDED_COLUMNS[:-1], reason=pl.col("_excluded"))
        .sort("la_code", "child_id", "origin_date", "subject_id", nulls_last=True)
    )
    frame = (
        in_cohort.filter(pl.col("_excluded").is_null())
        .rename({"referral_source_group": "referral_source"})
        .select(list(dict.fromkeys([*OUTPUT_COLUMNS, *extra_columns])))
        .with_columns(pl.col("duration").cast(pl.Int64), pl.col("entry").cast(pl.Int64))
        .sort("la_code", "child_id", "origin_date", "subject_id")
    )
    reconciliation = _reconcile(
        n_subjects, removed_counts, in_cohort, excluded, frame, criteria, outcome
    )
    return SurvivalFrame(frame, excluded, reconciliation, cohort, outcome, analysis_start)


def _reconcile(
    n_subjects: int,
    removed_counts: dict[str, int],
    in_cohort: pl.DataFrame,
    excluded: pl.DataFrame,
    frame: pl.DataFrame,
    criteria: list[tuple[pl.Expr, str]],
    outcome: Outcome,
) -> pl.DataFrame:
    """Counts in and out at each stage; raises if they do not add up."""
    subject = "CP plans" if outcome.plan_level else "episodes"
    excluded_counts = dict(excluded.get_column("reason").value_counts().iter_rows())
    end_counts = dict(frame.get_column("end_reason").value_counts().iter_rows())
    rows: list[tuple[str, str, int]] = [("input", f"{subject} (subjects)", n_subjects)]
    rows += [("not in cohort", reason, removed_counts.get(reason, 0)) for _, reason in criteria]
    rows.append(("in cohort", subject, in_cohort.height))
    rows += [("excluded", reason, n) for reason, n in sorted(excluded_counts.items())]
    rows.append(("rows out", subject, frame.height))
    rows += [("end reason", reason, n) for reason, n in sorted(end_counts.items())]
    if n_subjects != sum(removed_counts.values()) + in_cohort.height or (
        in_cohort.height != excluded.height + frame.height
    ):  # an internal bug, not a data problem (tests/test_reconciliation_breaks.py)
        raise AssertionError("survival frame reconciliation does not add up")
    return pl.DataFrame(
        rows, schema={"stage": pl.String, "reason": pl.String, "n": pl.Int64}, orient="row"
    )


def survival_frame(
    episodes: Frame,
    cohort: Cohort | str | Mapping[str, Any] = "referrals_2019_2021",
    outcome: Outcome | str | Mapping[str, Any] | None = None,
    children: Frame | None = None,
    cla: Frame | None = None,
    npd: Frame | None = None,
    data_end: date | str | None = None,
    analysis_start: date | str | None = None,
    *,
    events: Frame | None = None,
    cp_plans: Frame | None = None,
    extra_columns: Sequence[str] = (),
    prior_plans: str = "exclude",
) -> pl.DataFrame:
    """One row per subject: origin, end, duration, entry, event, event_type, end_reason and
    covariates. See :func:`build_survival_frame` for the arguments, the excluded rows and
    the reconciliation counts."""
    return build_survival_frame(
        episodes,
        cohort,
        outcome,
        children,
        cla,
        npd,
        data_end,
        analysis_start,
        events=events,
        cp_plans=cp_plans,
        extra_columns=extra_columns,
        prior_plans=prior_plans,
    ).frame
