"""``events``: one row per dated event of a child's journey, in order (long format).

Columns: child_id, la_code, episode_id (null for care and LA-move events), date, event, seq,
attrs. ``seq`` numbers a child's events (child_id × la_code) from 1 by date; events on the same
day follow the journey's logic (:data:`EVENT_ORDER`: a move, then the referral, assessment, s47,
ICPC, plans, entry to care, ends of plans, leaving care, closure), then episode and attrs, so the
order never depends on load order. ``attrs`` is a JSON object with the event's own details
(codes, the plan or enquiry it belongs to), ``{}`` when there are none.

* ``icpc`` — ICPC dates of section 47 enquiries, plus the episode-level ``DateOfInitialCPC`` when
  no enquiry of the episode has an ICPC on that date (one event per episode and date).
* ``pre_proceedings_start`` / ``court_application`` — start of pre-proceedings (PLO) and the
  date of the application to court, from the 2025-26 ``PreProceedingsandFGDM`` module; attrs of
  the start: FGDM offered / facilitated and the outcome code.
* ``entered_care`` / ``left_care`` — starts and ends of periods of care (SSDA903, see
  :mod:`cinresearch.journeys.linkage`), same LA and child.
* ``moved_la`` — the child's pseudonymised UPN appears in another LA: dated at the first referral
  in the new LA, attached to the child's record in the new LA, attrs ``from_la``/``to_la``. Every
  change of LA between consecutive referrals (ordered by date) is one move, so A → B → A gives two.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from cinresearch.journeys.linkage import care_entries, care_exits

CHILD_KEY = ["child_id", "la_code"]
_SEED = 20180331

EVENT_ORDER: tuple[str, ...] = (
    "moved_la",
    "referral",
    "assessment_start",
    "s47_start",
    "icpc",
    "assessment_authorised",
    "cin_plan_start",
    "cpp_start",
    "cpp_review",
    "pre_proceedings_start",
    "court_application",
    "entered_care",
    "cin_plan_end",
    "cpp_end",
    "left_care",
    "closure",
)

EVENTS_SCHEMA: dict[str, pl.DataType] = {
    "child_id": pl.String(),
    "la_code": pl.String(),
    "episode_id": pl.String(),
    "date": pl.Date(),
    "event": pl.String(),
    "seq": pl.Int32(),
    "attrs": pl.String(),
}


def _attrs(**fields: pl.Expr) -> pl.Expr:
    if not fields:
        return pl.lit("{}")
    return pl.struct(**fields).struct.json_encode()


def _events(
    frame: pl.LazyFrame, event: str, date: str, attrs: pl.Expr, episode: bool = True
) -> pl.LazyFrame:
    return frame.filter(pl.col(date).is_not_null()).select(
        "child_id",
        "la_code",
        (pl.col("episode_id") if episode else pl.lit(None, dtype=pl.String)).alias("episode_id"),
        pl.col(date).alias("date"),
        pl.lit(event).alias("event"),
        attrs.alias("attrs"),
    )


def la_moves(referrals: pl.LazyFrame, children_longitudinal: pl.LazyFrame) -> pl.LazyFrame:
    """Changes of LA of a child linked by ``upn_hash``: child_id, la_code (new), date, from_la."""
    upns = children_longitudinal.select(*CHILD_KEY, "upn_hash").filter(
        pl.col("upn_hash").is_not_null()
    )
    linked = referrals.select(*CHILD_KEY, "referral_date").join(upns, on=CHILD_KEY, how="inner")
    return (
        linked.with_columns(
            from_la=pl.col("la_code")
            .shift(1)
            .over("upn_hash", order_by=[pl.col("referral_date"), pl.col("la_code")])
        )
        .filter(pl.col("from_la").is_not_null() & (pl.col("from_la") != pl.col("la_code")))
        .select(*CHILD_KEY, pl.col("referral_date").alias("date"), "from_la")
        .unique()
    )


def build_events(
    merged: Mapping[str, pl.LazyFrame],
    cla: pl.LazyFrame | None = None,
    children_longitudinal: pl.LazyFrame | None = None,
    moves: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """The ``events`` table from merged returns (:func:`merge_returns`).

    ``cla`` (raw or merged ``cla_episodes``) adds care events of children with a CIN episode in
    the same LA; ``moves`` (:func:`la_moves`) or
    ``children_longitudinal`` (to compute them) adds ``moved_la``. Sorted by la_code, child_id, seq.
    """
    ref = merged["referrals"]
    parts = [
        _events(
            ref,
            "referral",
            "referral_date",
            _attrs(
                referral_source=pl.col("referral_source"),
                primary_need=pl.col("primary_need"),
                referral_nfa=pl.col("referral_nfa"),
            ),
        ),
        _events(ref, "closure", "closure_date", _attrs(closure_reason=pl.col("closure_reason"))),
    ]
    if "assessments" in merged:
        ass = merged["assessments"]
        parts.append(_events(ass, "assessment_start", "assessment_start", _attrs()))
        parts.append(
            _events(
                ass,
                "assessment_authorised",
                "assessment_authorised",
                _attrs(
                    assessment_start=pl.col("assessment_start").dt.to_string("%Y-%m-%d"),
                    factors=pl.col("factors").list.sort(),
                ),
            )
        )
    s47_icpc = None
    if "section47" in merged:
        s47 = merged["section47"]
        start = pl.col("s47_start").dt.to_string("%Y-%m-%d")
        parts.append(
            _events(
                s47,
                "s47_start",
                "s47_start",
                _attrs(icpc_not_required=pl.col("icpc_not_required")),
            )
        )
        s47_icpc = _events(s47, "icpc", "icpc_date", _attrs(s47_start=start))
        parts.append(s47_icpc)
    episode_icpc = _events(ref, "icpc", "icpc_date", _attrs())
    if s47_icpc is not None:
        episode_icpc = episode_icpc.join(
            s47_icpc.select("episode_id", "date"), on=["episode_id", "date"], how="anti"
        )
    parts.append(episode_icpc)
    if "cin_plans" in merged:
        cin = merged["cin_plans"]
        start = pl.col("cin_plan_start").dt.to_string("%Y-%m-%d")
        parts.append(_events(cin, "cin_plan_start", "cin_plan_start", _attrs()))
        parts.append(_events(cin, "cin_plan_end", "cin_plan_end", _attrs(cin_plan_start=start)))
    if "cp_plans" in merged:
        cpp = merged["cp_plans"]
        start = pl.col("cpp_start").dt.to_string("%Y-%m-%d")
        parts.append(
            _events(
                cpp,
                "cpp_start",
                "cpp_start",
                _attrs(
                    initial_category=pl.col("initial_category"),
                    previous_cpps=pl.col("previous_cpps"),
                ),
            )
        )
        parts.append(
            _events(
                cpp,
                "cpp_end",
                "cpp_end",
                _attrs(cpp_start=start, latest_category=pl.col("latest_category")),
            )
        )
    if "cpp_reviews" in merged:
        rev = merged["cpp_reviews"]
        parts.append(
            _events(
                rev,
                "cpp_review",
                "review_date",
                _attrs(cpp_start=pl.col("cpp_start").dt.to_string("%Y-%m-%d")),
            )
        )
    if "pre_proceedings" in merged:
        pp = merged["pre_proceedings"]
        start = pl.col("pp_start").dt.to_string("%Y-%m-%d")
        parts.append(
            _events(
                pp,
                "pre_proceedings_start",
                "pp_start",
                _attrs(
                    fgdm_offered=pl.col("fgdm_offered"),
                    fgdm_facilitated=pl.col("fgdm_facilitated"),
                    pp_outcome=pl.col("pp_outcome"),
                ),
            )
        )
        parts.append(
            _events(pp, "court_application", "court_application_date", _attrs(pp_start=start))
        )
    if cla is not None:
        in_cin = ref.select(CHILD_KEY).unique()
        cin_children_cla = care_entries(cla).join(in_cin, on=CHILD_KEY, how="semi")
        cin_children_exits = care_exits(cla).join(in_cin, on=CHILD_KEY, how="semi")
        parts.append(
            _events(
                cin_children_cla,
                "entered_care",
                "decom",
                _attrs(rne=pl.col("rne"), ls=pl.col("ls"), place=pl.col("place")),
                episode=False,
            )
        )
        parts.append(
            _events(
                cin_children_exits, "left_care", "dec", _attrs(rec=pl.col("rec")), episode=False
            )
        )
    if moves is None and children_longitudinal is not None:
        moves = la_moves(ref, children_longitudinal)
    if moves is not None:
        parts.append(
            _events(
                moves,
                "moved_la",
                "date",
                _attrs(from_la=pl.col("from_la"), to_la=pl.col("la_code")),
                episode=False,
            )
        )
    return order_events(pl.concat(parts, how="vertical_relaxed"))


def order_events(events: pl.LazyFrame) -> pl.LazyFrame:
    """Sort and number each child's events (``seq`` from 1).

    Same-day ties of one event type in one episode (e.g. two assessments authorised on the same
    day) are ordered by a content hash of ``attrs``: deterministic, not meaningful.
    """
    rank = {event: i for i, event in enumerate(EVENT_ORDER)}
    return (
        events.with_columns(
            _rank=pl.col("event").replace_strict(rank, default=len(rank), return_dtype=pl.Int8),
            _tie=pl.col("attrs").hash(seed=_SEED),
        )
        .sort("la_code", "child_id", "date", "_rank", "episode_id", "_tie", nulls_last=True)
        .with_columns(seq=pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over(CHILD_KEY))
        .select(list(EVENTS_SCHEMA))
    )
