"""Cross-record rules of the CIN census: checks that compare records of one child in one return.

Each rule is listed, with DfE's code and severity and our action, in
``data_contracts/cross_record_rules.yaml``; this module holds the checks it names. Every rule
only *flags*: it writes a ``rejects`` row (``action`` = ``flag``, DfE's severity, file, line,
rule, our message and the record with pseudonymised ids) and keeps the record. The checks
compare dates of records of the same child (``child_seq``) or the same episode (``episode_seq``)
within one return, as polars group-wise joins over the typed tables :func:`read_cin_xml` has
already validated, so they give the same flags whichever reader produced the tables.

Conventions: dates are days (``pl.Date``); an open record (no end or closure date) runs to the
return's ``ReferenceDate`` where a rule needs an end; "before" and "after" are strict unless a
rule's docstring says otherwise.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl
import yaml

from cinresearch import contracts

RULES_FILE = contracts.CONTRACTS_DIR / "cross_record_rules.yaml"

#: DfE severities, and what a rule of ours may do with the record it flags
SEVERITIES = ("error", "query")
ACTIONS = ("flag", "reject_record", "drop_value")

_FIELDS = ("id", "table", "severity", "action", "years", "message", "test", "implemented_by")


@dataclass(frozen=True)
class CrossRecordRule:
    """One catalogue entry (see ``data_contracts/cross_record_rules.yaml``)."""

    id: str
    table: str
    severity: str
    action: str
    years: str
    message: str
    test: str
    implemented_by: str
    why: str = ""

    def applies_to(self, census_year: int) -> bool:
        """Whether the rule applies to a census year (``"2018-"``, ``"2018-2025"`` or ``"2024"``)."""
        first, dash, last = self.years.partition("-")
        lo = int(first)
        hi = (int(last) if last else 9999) if dash else lo
        return lo <= census_year <= hi


@dataclass(frozen=True)
class ReturnWindow:
    """The collection year of one return: ``collection_start`` to ``reference_date`` inclusive."""

    collection_start: date
    reference_date: date


Tables = Mapping[str, pl.LazyFrame]
Check = Callable[[Tables, ReturnWindow], pl.LazyFrame]


@functools.cache
def load_rules(path: Path = RULES_FILE) -> tuple[CrossRecordRule, ...]:
    """The catalogue, checked: DfE severities, known actions, a query only flags, known checks."""
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    rules = []
    for entry in doc["rules"]:
        missing = [f for f in _FIELDS if not entry.get(f)]
        if missing:
            raise ValueError(f"rule {entry.get('id')!r} lacks {missing}")
        rule = CrossRecordRule(**{k: str(v) for k, v in entry.items()})
        if rule.severity not in SEVERITIES or rule.action not in ACTIONS:
            raise ValueError(f"rule {rule.id}: unknown severity or action")
        if rule.severity == "query" and rule.action != "flag":
            raise ValueError(f"rule {rule.id}: a query may only flag")
        if rule.action != "flag":
            raise ValueError(f"rule {rule.id}: only flagging is implemented here")
        if not re.fullmatch(r"\d{4}(-(\d{4})?)?", rule.years):
            raise ValueError(f"rule {rule.id}: years {rule.years!r} not like 2018- or 2018-2025")
        if rule.implemented_by.rpartition(".")[2] not in CHECKS:
            raise ValueError(f"rule {rule.id}: no check {rule.implemented_by!r}")
        rules.append(rule)
    ids = [r.id for r in rules]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate rule ids in the cross-record catalogue")
    return tuple(rules)


def check_return(
    tables: Mapping[str, pl.DataFrame],
    *,
    source_file: str,
    census_year: int,
    la_code: str,
    collection_start: date,
    reference_date: date,
) -> pl.DataFrame:
    """Flag rows (``rejects`` schema) for every cross-record rule that applies to the return.

    ``tables`` are one return's validated tables before they are cut to their contracts: they
    carry ``line`` and ``child_seq``; nested tables also ``episode_seq``, their episode's
    ``referral_date`` and ``episode_closure_date``; plans ``cpp_seq``. Nothing is removed from
    them. Rules whose ``years`` exclude ``census_year`` are not run.
    """
    window = ReturnWindow(collection_start, reference_date)
    lazy = {name: frame.lazy() for name, frame in tables.items()}
    # episodes of children with more than one, found once for the overlap rules
    lazy[_SEVERAL] = _several_episodes(lazy).collect().lazy()
    rules = [r for r in load_rules() if r.applies_to(census_year)]
    queries = [
        CHECKS[r.implemented_by.rpartition(".")[2]](lazy, window).with_columns(
            rule=pl.lit(r.id),
            severity=pl.lit(r.severity),
            message=pl.lit(r.message),
        )
        for r in rules
    ]
    if not queries:
        return contracts.empty_rejects()
    hits = pl.concat(pl.collect_all(queries), how="vertical")
    if hits.is_empty():
        return contracts.empty_rejects()
    return (
        hits.with_columns(
            source_file=pl.lit(source_file),
            action=pl.lit("flag"),
            census_year=pl.lit(census_year),
            la_code=pl.lit(la_code),
        )
        .sort("rule", "table", "line", "record")
        .select([pl.col(name).cast(dtype) for name, dtype in contracts.REJECTS_SCHEMA.items()])
    )


# -- helpers ----------------------------------------------------------------------------------
def _hits(frame: pl.LazyFrame, table: str, record: list[str]) -> pl.LazyFrame:
    """``table``, ``line`` and ``record`` (JSON of the named columns, keys sorted)."""
    return frame.select(
        pl.lit(table).alias("table"),
        pl.col("line").cast(pl.Int64),
        pl.struct(sorted(record)).struct.json_encode().alias("record"),
    )


def _episodes(t: Tables) -> pl.LazyFrame:
    return t["referrals"].select(
        "child_seq",
        "episode_seq",
        "line",
        "child_id",
        "referral_date",
        "closure_date",
        "referral_nfa",
        "icpc_date",
    )


def _with_episode(t: Tables, table: str, columns: list[str]) -> pl.LazyFrame:
    """Rows of a nested table with their episode's ``referral_date`` and ``closure_date``.

    The loader puts both on every nested row (``episode_closure_date``), and a nested row of a
    rejected episode is rejected with it, so no join is needed.
    """
    return t[table].select(
        "child_seq",
        "episode_seq",
        "line",
        "child_id",
        "referral_date",
        pl.col("episode_closure_date").alias("closure_date"),
        *columns,
    )


_SEVERAL = "_several_episodes"


def _several_episodes(t: Tables) -> pl.LazyFrame:
    """Episodes of children with more than one episode in the return."""
    if _SEVERAL in t:
        return t[_SEVERAL]
    return _episodes(t).filter(pl.col("child_seq").is_duplicated())


def _nfa_episodes(t: Tables) -> pl.LazyFrame:
    return _episodes(t).filter(pl.col("referral_nfa"))


def _with_death(t: Tables, frame: pl.LazyFrame) -> pl.LazyFrame:
    deaths = (
        t["children"].select("child_seq", "death_date").filter(pl.col("death_date").is_not_null())
    )
    return frame.join(deaths, on="child_seq", how="inner")


#: dated activity of an episode: (table, column, DfE element name)
_ACTIVITY = (
    ("referrals", "icpc_date", "DateOfInitialCPC"),
    ("assessments", "assessment_start", "AssessmentActualStartDate"),
    ("assessments", "assessment_authorised", "AssessmentAuthorisationDate"),
    ("section47", "s47_start", "S47ActualStartDate"),
    ("section47", "icpc_date", "DateOfInitialCPC"),
    ("cp_plans", "cpp_end", "CPPendDate"),
    ("cin_plans", "cin_plan_start", "CINPlanStartDate"),
    ("cin_plans", "cin_plan_end", "CINPlanEndDate"),
)


def _activity(
    t: Tables, keep: Callable[[str, str], pl.Expr], fields: tuple[str, ...] = ()
) -> pl.LazyFrame:
    """``episode_seq`` and ``field`` of the dated activity where ``keep(table, column)`` holds.

    Each table is filtered before the parts are stacked, so only the hits are materialised.
    """
    parts = [
        t[table].filter(keep(table, column)).select("episode_seq", pl.lit(field).alias("field"))
        for table, column, field in _ACTIVITY
        if not fields or field in fields
    ]
    return pl.concat(parts, how="vertical")


def _pairs(frame: pl.LazyFrame, ident: str) -> pl.LazyFrame:
    """Ordered pairs of different rows of one child (``_b`` suffix on the other row)."""
    several = frame.filter(pl.col("child_seq").is_duplicated())
    return several.join(several, on="child_seq", how="inner", suffix="_b").filter(
        pl.col(ident) != pl.col(f"{ident}_b")
    )


# -- activity dated before its referral (1104, 1105, 2889, 4015) -------------------------------
def icpc_before_referral(t: Tables, w: ReturnWindow) -> pl.LazyFrame:
    """1104: an ICPC (a section 47's, or the episode's own ``DateOfInitialCPC``) before the referral."""
    s47 = _with_episode(t, "section47", ["s47_start", "icpc_date"]).filter(
        pl.col("icpc_date") < pl.col("referral_date")
    )
    episode = _episodes(t).filter(pl.col("icpc_date") < pl.col("referral_date"))
    return pl.concat(
        [
            _hits(s47, "section47", ["child_id", "referral_date", "s47_start", "icpc_date"]),
            _hits(episode, "referrals", ["child_id", "referral_date", "icpc_date"]),
        ]
    )


def cpp_before_referral(t: Tables, w: ReturnWindow) -> pl.LazyFrame:
    """1105: a child protection plan starting before its episode's referral date."""
    hit = _with_episode(t, "cp_plans", ["cpp_start"]).filter(
        pl.col("cpp_start") < pl.col("referral_date")
    )
    return _hits(hit, "cp_plans", ["child_id", "referral_date", "cpp_start"])


def s47_before_referral(t: Tables, w: ReturnWindow) -> pl.LazyFrame:
    """2889: a section 47 enquiry starting before its episode's referral date."""
    hit = _with_episode(t, "section47", ["s47_start"]).filter(
        pl.col("s47_start") < pl.col("referral_date")
    )
    return _hits(hit, "section47", ["child_id", "referral_date", "s47_start"])


def cin_plan_before_referral(t: Tables, w: ReturnWindow) -> pl.LazyFrame:
    """4015: a CIN plan starting before its episode's referral date."""
    hit = _with_episode(t, "cin_plans", ["cin_plan_start"]).filter(
        pl.col("cin_plan_start") < pl.col("referral_date")
    )
    return _hits(hit, "cin_plans", ["child_id", "referral_date", "cin_plan_start"])


# -- activity after closure, on NFA referrals, after death -------------------------------------
def activity_after_closure(t: Tables, w: ReturnWindow) -> pl.LazyFrame:
    """8565: a closed episode with an assessment, S47, ICPC, CIN plan date or CPP end after closure.

    One flag per episode; ``record.after_closure`` names the fields dated after the closure.
    """

    def after(table: str, column: str) -> pl.Expr:
        closure = "closure_date" if table == "referrals" else "episode_closure_date"
        return pl.col(column) > pl.col(closure)

    t = {**t, "referrals": _episodes(t)}
    late = (
        _activity(t, after)
        .group_by("episode_seq")
        .agg(after_closure=pl.col("field").unique().sort().str.join(","))
    )
    hit = t["referrals"].join(late, on="episode_seq", how="inner")
    return _hits(hit, "referrals", ["child_id", "referral_date", "closure_date", "after_closure"])


def activity_on_nfa_referral(t: Tables, w: ReturnWindow) -> pl.LazyFrame:
    """8831: a referral marked no further action with an assessment, S47 or ICPC."""
    kinds = (
        "AssessmentActualStartDate",
        "AssessmentAuthorisationDate",
        "S47ActualStartDate",
        "DateOfInitialCPC",
    )
    nfa = _nfa_episodes(t)
    found = (
        _activity(t, lambda table, column: pl.col(column).is_not_null(), kinds)
        .join(nfa.select("episode_seq"), on="episode_seq", how="semi")
        .group_by("episode_seq")
        .agg(activity=pl.col("field").unique().sort().str.join(","))
    )
    hit = nfa.join(found, on="episode_seq", how="inner")
    return _hits(hit, "referrals", ["child_id", "referral_date", "activity"])


def cpp_on_nfa_referral(t: Tables, w: ReturnWindow) -> pl.LazyFrame:
    """8832: a child protection plan in an episode whose referral is marked no further action."""
    nfa = _nfa_episodes(t).select("episode_seq")
    hit = _with_episode(t, "cp_plans", ["cpp_start"]).join(nfa, on="episode_seq", how="semi")
    return _hits(hit, "cp_plans", ["child_id", "referral_date", "cpp_start"])


def referral_after_death(t: Tables, w: ReturnWindow) -> pl.LazyFrame:
    """8555Q: a referral dated after the child's recorded date of death."""
    hit = _with_death(t, _episodes(t)).filter(pl.col("referral_date") > pl.col("death_date"))
    return _hits(hit, "referrals", ["child_id", "referral_date", "death_date"])


def cpp_start_after_death(t: Tables, w: ReturnWindow) -> pl.LazyFrame:
    """8915: a child protection plan starting after the child's date of death."""
    plans = _with_episode(t, "cp_plans", ["cpp_start"])
    hit = _with_death(t, plans).filter(pl.col("cpp_start") > pl.col("death_date"))
    return _hits(hit, "cp_plans", ["child_id", "referral_date", "cpp_start", "death_date"])


def cpp_end_after_death(t: Tables, w: ReturnWindow) -> pl.LazyFrame:
    """8920: a child protection plan ending after the child's date of death."""
    plans = _with_episode(t, "cp_plans", ["cpp_start", "cpp_end"])
    hit = _with_death(t, plans).filter(pl.col("cpp_end") > pl.col("death_date"))
    return _hits(
        hit, "cp_plans", ["child_id", "referral_date", "cpp_start", "cpp_end", "death_date"]
    )


# -- overlapping episodes and plans -----------------------------------------------------------
def several_open_episodes(t: Tables, w: ReturnWindow) -> pl.LazyFrame:
    """8815: a child with more than one episode without a closure date (each open one flagged)."""
    hit = (
        _several_episodes(t)
        .filter(pl.col("closure_date").is_null())
        .filter(pl.col("child_seq").is_duplicated())
    )
    return _hits(hit, "referrals", ["child_id", "referral_date"])


def open_episode_not_latest(t: Tables, w: ReturnWindow) -> pl.LazyFrame:
    """8816: an open episode (not NFA) that is not the child's latest referral."""
    hit = _several_episodes(t).filter(
        pl.col("closure_date").is_null()
        & ~pl.col("referral_nfa")
        & (pl.col("referral_date") < pl.col("referral_date").max().over("child_seq"))
    )
    return _hits(hit, "referrals", ["child_id", "referral_date"])


def overlapping_episodes(t: Tables, w: ReturnWindow) -> pl.LazyFrame:
    """8820: a referral dated within another episode of the child.

    Within = on/after the other referral and before its closure (one episode may close on the
    day the next is referred), or, when the other is open and not NFA, up to the reference date.
    """
    pairs = _pairs(_several_episodes(t), "episode_seq")
    inside = (pl.col("referral_date_b") <= pl.col("referral_date")) & (
        pl.when(pl.col("closure_date_b").is_not_null())
        .then(pl.col("referral_date") < pl.col("closure_date_b"))
        .otherwise(~pl.col("referral_nfa_b") & (pl.col("referral_date") <= w.reference_date))
    )
    hit = pairs.filter(inside).unique("episode_seq")
    return _hits(hit, "referrals", ["child_id", "referral_date", "closure_date"])


def several_open_cpps(t: Tables, w: ReturnWindow) -> pl.LazyFrame:
    """8935: a child with more than one child protection plan without an end date."""
    hit = (
        _with_episode(t, "cp_plans", ["cpp_start", "cpp_end"])
        .filter(pl.col("cpp_end").is_null())
        .filter(pl.col("child_seq").is_duplicated())
    )
    return _hits(hit, "cp_plans", ["child_id", "referral_date", "cpp_start"])


def overlapping_cpps(t: Tables, w: ReturnWindow) -> pl.LazyFrame:
    """8940: a plan starting within another plan of the child (start to end inclusive, or to
    the reference date when that plan is open)."""
    plans = _with_episode(t, "cp_plans", ["cpp_seq", "cpp_start", "cpp_end"])
    end_b = pl.coalesce(pl.col("cpp_end_b"), pl.lit(w.reference_date))
    hit = (
        _pairs(plans, "cpp_seq")
        .filter((pl.col("cpp_start_b") <= pl.col("cpp_start")) & (pl.col("cpp_start") <= end_b))
        .unique("cpp_seq")
    )
    return _hits(hit, "cp_plans", ["child_id", "referral_date", "cpp_start", "cpp_end"])


def open_cin_plan_with_open_cpp(t: Tables, w: ReturnWindow) -> pl.LazyFrame:
    """4001: an open CIN plan in an episode that also has an open child protection plan."""
    open_cpp = t["cp_plans"].filter(pl.col("cpp_end").is_null()).select("episode_seq").unique()
    hit = (
        _with_episode(t, "cin_plans", ["cin_plan_start", "cin_plan_end"])
        .filter(pl.col("cin_plan_end").is_null())
        .join(open_cpp, on="episode_seq", how="semi")
    )
    return _hits(hit, "cin_plans", ["child_id", "referral_date", "cin_plan_start"])


def _cin_cpp_pairs(t: Tables) -> pl.LazyFrame:
    cin = _with_episode(t, "cin_plans", ["row_seq", "cin_plan_start", "cin_plan_end"])
    cpp = t["cp_plans"].select(
        "child_seq", "cpp_seq", "cpp_start", "cpp_end", pl.col("line").alias("cpp_line")
    )
    return cin.join(cpp, on="child_seq", how="inner")


def cin_plan_starts_in_cpp(t: Tables, w: ReturnWindow) -> pl.LazyFrame:
    """4016: a CIN plan starting while a child protection plan of the child is open
    (on/after the plan's start and before its end; a CIN plan may start the day a CPP ends)."""
    hit = (
        _cin_cpp_pairs(t)
        .filter(
            (pl.col("cpp_start") <= pl.col("cin_plan_start"))
            & (pl.col("cpp_end").is_null() | (pl.col("cin_plan_start") < pl.col("cpp_end")))
        )
        .unique("row_seq")
    )
    return _hits(
        hit, "cin_plans", ["child_id", "referral_date", "cin_plan_start", "cpp_start", "cpp_end"]
    )


def cpp_starts_in_cin_plan(t: Tables, w: ReturnWindow) -> pl.LazyFrame:
    """4017: a child protection plan starting while a CIN plan of the child is open
    (after the CIN plan's start and before its end; a CPP may start the day a CIN plan ends)."""
    hit = (
        _cin_cpp_pairs(t)
        .filter(
            (pl.col("cin_plan_start") < pl.col("cpp_start"))
            & (pl.col("cin_plan_end").is_null() | (pl.col("cpp_start") < pl.col("cin_plan_end")))
        )
        .with_columns(pl.col("cpp_line").alias("line"))
        .unique("cpp_seq")
    )
    return _hits(hit, "cp_plans", ["child_id", "cpp_start", "cin_plan_start", "cin_plan_end"])


def overlapping_cin_plans(t: Tables, w: ReturnWindow) -> pl.LazyFrame:
    """4014: a CIN plan starting within another CIN plan of the child (on/after its start and
    before its end, or any time after the start of an open plan)."""
    plans = _with_episode(t, "cin_plans", ["row_seq", "cin_plan_start", "cin_plan_end"])
    hit = (
        _pairs(plans, "row_seq")
        .filter(
            (pl.col("cin_plan_start_b") <= pl.col("cin_plan_start"))
            & (
                pl.col("cin_plan_end_b").is_null()
                | (pl.col("cin_plan_start") < pl.col("cin_plan_end_b"))
            )
        )
        .unique("row_seq")
    )
    return _hits(hit, "cin_plans", ["child_id", "referral_date", "cin_plan_start", "cin_plan_end"])


# -- child-level ------------------------------------------------------------------------------
def duplicate_upn(t: Tables, w: ReturnWindow) -> pl.LazyFrame:
    """1520: the same UPN on more than one child of the return (every copy flagged)."""
    hit = t["children"].filter(
        pl.col("upn_hash").is_not_null() & pl.col("upn_hash").is_duplicated()
    )
    return _hits(hit, "children", ["child_id", "upn_hash"])


def icpc_outside_census_year(t: Tables, w: ReturnWindow) -> pl.LazyFrame:
    """8715: a section 47's ICPC date outside the return's census year.

    Only section 47 enquiries (DfE's module for the rule): the episode-level DateOfInitialCPC of
    an episode open across years is re-sent with its original date, which is right.
    """
    outside = ~pl.col("icpc_date").is_between(w.collection_start, w.reference_date)
    s47 = _with_episode(t, "section47", ["s47_start", "icpc_date"]).filter(outside)
    return _hits(s47, "section47", ["child_id", "referral_date", "s47_start", "icpc_date"])


def referral_long_before_birth(t: Tables, w: ReturnWindow) -> pl.LazyFrame:
    """8606: a referral more than 280 days (40 weeks) before the birth or expected birth date."""
    births = t["children"].select("child_seq", "birth_date", "expected_birth_date")
    early = pl.duration(days=280)
    hit = (
        _episodes(t)
        .join(births, on="child_seq", how="inner")
        .filter(
            (pl.col("referral_date") < pl.col("birth_date") - early)
            | (pl.col("referral_date") < pl.col("expected_birth_date") - early)
        )
    )
    return _hits(
        hit, "referrals", ["child_id", "referral_date", "birth_date", "expected_birth_date"]
    )


def child_over_25(t: Tables, w: ReturnWindow) -> pl.LazyFrame:
    """8775Q: a child born more than 25 years before the reference date with an episode open
    (or closed) after their 25th birthday; one flag per child."""
    old = t["children"].filter(pl.col("birth_date") < pl.lit(w.reference_date).dt.offset_by("-25y"))
    late = (
        _episodes(t)
        .join(old.select("child_seq", "birth_date"), on="child_seq", how="inner")
        .filter(
            pl.col("closure_date").is_null()
            | (pl.col("closure_date") > pl.col("birth_date").dt.offset_by("25y"))
        )
        .select("child_seq")
        .unique()
    )
    hit = old.join(late, on="child_seq", how="semi")
    return _hits(hit, "children", ["child_id", "birth_date"])


def duplicate_disability(t: Tables, w: ReturnWindow) -> pl.LazyFrame:
    """8794: a disability code given twice for one child (each repeat after the first flagged)."""
    hit = t["disabilities"].filter(~pl.struct("child_seq", "disability").is_first_distinct())
    return _hits(hit, "disabilities", ["child_id", "disability"])


def duplicate_factor(t: Tables, w: ReturnWindow) -> pl.LazyFrame:
    """8898: an assessment listing the same factor code more than once."""
    hit = (
        _with_episode(t, "assessments", ["assessment_start", "factors"])
        .filter(pl.col("factors").list.len() > 1)
        .filter(pl.col("factors").list.n_unique() < pl.col("factors").list.len())
    )
    return _hits(hit, "assessments", ["child_id", "referral_date", "assessment_start", "factors"])


CHECKS: dict[str, Check] = {
    f.__name__: f
    for f in (
        icpc_before_referral,
        cpp_before_referral,
        s47_before_referral,
        cin_plan_before_referral,
        activity_after_closure,
        activity_on_nfa_referral,
        cpp_on_nfa_referral,
        referral_after_death,
        cpp_start_after_death,
        cpp_end_after_death,
        several_open_episodes,
        open_episode_not_latest,
        overlapping_episodes,
        several_open_cpps,
        overlapping_cpps,
        open_cin_plan_with_open_cpp,
        cin_plan_starts_in_cpp,
        cpp_starts_in_cin_plan,
        overlapping_cin_plans,
        duplicate_upn,
        icpc_outside_census_year,
        referral_long_before_birth,
        child_over_25,
        duplicate_disability,
        duplicate_factor,
    )
}
