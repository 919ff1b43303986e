"""``build_journeys(store)``: loaded tables → journey tables in the store, with a reconciliation.

Writes to ``<store>/derived/``: ``merged_<table>`` for every merged loaded table (one row per
natural key, with ``episode_id`` and first/last census year), ``merge_audit``,
``children_longitudinal``, ``episodes``, ``events``, ``npd_outcomes`` (when the NPD is loaded),
``link_report`` (with its ``cla_links`` / ``npd_links`` slices), and ``reports/build_report.json``.

Reconciliation (recorded in the report; ``strict=True`` raises :class:`ReconciliationError` after
writing it): for every merged table, distinct natural keys in == rows out; every ``referrals``
row maps to exactly one episode; episode ids are unique; every nested record belongs to an
episode; one ``referral`` event per episode.

Scale: each stage is a lazy polars query collected once with the streaming engine and written to
Parquet; later stages scan those files back, so the multi-year sort/merge is computed once.
Events (the largest table) are built in batches of whole LAs (``events_batch_episodes``
episodes at most per batch) and concatenated on disk in order.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl

from cinresearch.journeys.children import build_children_longitudinal
from cinresearch.journeys.dedup import (
    AUDIT_ORDER,
    NATURAL_KEYS,
    NESTED_TABLES,
    attach_episode_ids,
    flag_episodes,
    merge_table,
    returned_years,
)
from cinresearch.journeys.episodes import build_episodes
from cinresearch.journeys.events import build_events, la_moves
from cinresearch.journeys.linkage import link_npd, link_report
from cinresearch.store import Store

REPORT_PATH = "reports/build_report.json"
CHILD_KEY = ["child_id", "la_code"]

MERGED_TABLES = tuple(NATURAL_KEYS)  # referrals, nested tables, cla_episodes


class ReconciliationError(RuntimeError):
    """The build's in/out counts do not reconcile (details in the build report)."""


@dataclass
class BuildReport:
    """What a build read, wrote and checked (also written to ``reports/build_report.json``)."""

    ok: bool = True
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)
    episodes: dict[str, Any] = field(default_factory=dict)
    linkage: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, int] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)

    def check(self, name: str, ok: bool, **detail: Any) -> None:
        self.checks.append({"check": name, "ok": bool(ok), **detail})
        self.ok = self.ok and bool(ok)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _collect(lf: pl.LazyFrame) -> pl.DataFrame:
    return lf.collect(engine="streaming")


def _count(lf: pl.LazyFrame) -> int:
    return int(_collect(lf.select(pl.len())).item())


def _write(store: Store, report: BuildReport, name: str, frame: pl.DataFrame) -> pl.LazyFrame:
    store.write_derived(name, frame)
    report.outputs[name] = frame.height
    return pl.scan_parquet(store.derived_path(name))


def _has(store: Store, table: str) -> bool:
    return bool(store.table_parts(table))


def _batches(la_sizes: pl.DataFrame, limit: int) -> list[list[str]]:
    """Consecutive groups of LAs (in code order) with at most ``limit`` episodes (≥ 1 LA each)."""
    out: list[list[str]] = []
    current: list[str] = []
    size = 0
    for la, n in la_sizes.sort("la_code").iter_rows():
        if current and size + n > limit:
            out.append(current)
            current, size = [], 0
        current.append(la)
        size += n
    if current:
        out.append(current)
    return out


def _write_events(
    store: Store,
    report: BuildReport,
    merged: dict[str, pl.LazyFrame],
    cla: pl.LazyFrame | None,
    moves: pl.LazyFrame,
    batch_episodes: int,
) -> pl.LazyFrame:
    la_sizes = _collect(merged["referrals"].group_by("la_code").agg(pl.len()))
    batches = _batches(la_sizes, batch_episodes)
    path = store.derived_path("events")
    path.parent.mkdir(parents=True, exist_ok=True)
    if len(batches) <= 1:
        frame = _collect(build_events(merged, cla=cla, moves=moves))
        return _write(store, report, "events", frame)
    tmp_dir = path.parent / f".events-{uuid.uuid4().hex[:8]}"
    tmp_dir.mkdir()
    parts = []
    try:
        for i, las in enumerate(batches):
            only = pl.col("la_code").is_in(las)
            sub = {name: lf.filter(only) for name, lf in merged.items()}
            frame = _collect(
                build_events(
                    sub,
                    cla=None if cla is None else cla.filter(only),
                    moves=moves.filter(only),
                )
            )
            part = tmp_dir / f"{i:05d}.parquet"
            frame.write_parquet(part)
            parts.append(part)
        tmp = path.parent / f".events.{uuid.uuid4().hex}.tmp"
        pl.scan_parquet(parts).sink_parquet(tmp, engine="streaming", maintain_order=True)
        os.replace(tmp, path)
    finally:
        for part in parts:
            part.unlink(missing_ok=True)
        tmp_dir.rmdir()
    lf = pl.scan_parquet(path)
    report.outputs["events"] = _count(lf)
    return lf


def build_journeys(
    store: Store | str | os.PathLike[str],
    progress: bool = True,
    *,
    strict: bool = True,
    events_batch_episodes: int = 2_000_000,
    on_stage: Callable[[str], None] | None = None,
) -> BuildReport:
    """Build every journey table from the loaded tables of ``store`` and reconcile the counts.

    Returns the :class:`BuildReport` (also written to ``reports/build_report.json``). With
    ``strict`` a failed reconciliation raises :class:`ReconciliationError` after the report is
    written. ``on_stage`` is called with each stage name (for a CLI progress bar).
    """
    store = store if isinstance(store, Store) else Store(store)
    report = BuildReport()

    @contextlib.contextmanager
    def stage(name: str) -> Iterator[None]:
        if on_stage is not None:
            on_stage(name)
        if progress:
            print(f"[build] {name} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        yield
        report.timings_s[name] = round(time.perf_counter() - start, 3)
        if progress:
            print(f"[build] {name} done in {report.timings_s[name]:.1f}s", file=sys.stderr)

    has_cla = _has(store, "cla_episodes")
    has_npd = _has(store, "npd")
    names = [t for t in MERGED_TABLES if t != "cla_episodes" or has_cla]
    loaded = {t: store.scan(t) for t in [*names, "children", "disabilities"]}
    # outputs of an earlier build whose inputs are gone must not linger
    stale = ([] if has_cla else ["merged_cla_episodes"]) + ([] if has_npd else ["npd_outcomes"])
    for name in stale:
        store.derived_path(name).unlink(missing_ok=True)

    with stage("count inputs"):
        for t in names:
            key = list(NATURAL_KEYS[t])
            lf = loaded[t]
            report.tables[t] = {
                "rows_in": _count(lf),
                "distinct_keys": _count(lf.select(key).unique()),
                "distinct_key_returns": _count(lf.select(*key, "census_year").unique()),
            }
        report.tables["children"] = {
            "rows_in": _count(loaded["children"]),
            "distinct_keys": _count(loaded["children"].select(CHILD_KEY).unique()),
        }
        report.tables["disabilities"] = {"rows_in": _count(loaded["disabilities"])}

    with stage("merge returns"):
        # Table by table (referrals first, so nested tables take their episode ids from the
        # written file); each table's merge and audit are collected together so the sort that
        # picks the latest return is computed once.
        merged: dict[str, pl.LazyFrame] = {}
        audits: list[pl.DataFrame] = []
        for t in names:
            out, audit_t = merge_table(loaded[t], t)
            if t == "referrals":
                out = flag_episodes(out, returned_years(loaded))
            elif t in NESTED_TABLES:
                out = attach_episode_ids(out, merged["referrals"])
            frame, audit_frame = pl.collect_all([out, audit_t], engine="streaming")
            merged[t] = _write(store, report, f"merged_{t}", frame)
            audits.append(audit_frame)
            info = report.tables[t]
            info["rows_out"] = frame.height
            info["within_return_duplicates"] = info["rows_in"] - info["distinct_key_returns"]
            info["audit_rows"] = audit_frame.height
            info["conflicts"] = int(audit_frame.get_column("conflict").sum())
            report.check(
                f"{t}: distinct keys in == rows out",
                info["distinct_keys"] == info["rows_out"],
                distinct_keys=info["distinct_keys"],
                rows_out=info["rows_out"],
            )
        _write(store, report, "merge_audit", pl.concat(audits).sort(AUDIT_ORDER, nulls_last=True))
        del audits

    with stage("children_longitudinal"):
        kids = _write(
            store,
            report,
            "children_longitudinal",
            _collect(build_children_longitudinal(loaded["children"], loaded["disabilities"])),
        )
        info = report.tables["children"]
        info["rows_out"] = report.outputs["children_longitudinal"]
        report.check(
            "children: distinct (child_id, la_code) in == children_longitudinal rows",
            info["distinct_keys"] == info["rows_out"],
            distinct_keys=info["distinct_keys"],
            rows_out=info["rows_out"],
        )

    cla = merged.get("cla_episodes")
    with stage("episodes"):
        episodes = _write(
            store,
            report,
            "episodes",
            _collect(build_episodes(merged, kids, cla, children_returns=loaded["children"])),
        )

    with stage("events"):
        moves = _collect(la_moves(merged["referrals"], kids)).lazy()
        events = _write_events(store, report, merged, cla, moves, events_batch_episodes)

    npd = store.scan("npd") if has_npd else None
    with stage("linkage"):
        if npd is not None:
            report.tables["npd"] = {"rows_in": _count(npd)}
            _write(store, report, "npd_outcomes", _collect(link_npd(kids, npd)))
            report.tables["npd"]["rows_linked"] = report.outputs["npd_outcomes"]
        links = _collect(link_report(episodes, cla, npd))
        _write(store, report, "link_report", links)
        _write(store, report, "cla_links", links.filter(pl.col("linkage").str.starts_with("cla")))
        _write(store, report, "npd_links", links.filter(pl.col("linkage") == "npd"))
        report.linkage = links.to_dicts()

    with stage("reconcile"):
        _reconcile(report, loaded, merged, episodes, events, names)

    store.write_json(REPORT_PATH, report.to_dict())
    if strict and not report.ok:
        failed = [c["check"] for c in report.checks if not c["ok"]]
        raise ReconciliationError(f"build does not reconcile: {failed} (see {REPORT_PATH})")
    return report


def _reconcile(
    report: BuildReport,
    loaded: dict[str, pl.LazyFrame],
    merged: dict[str, pl.LazyFrame],
    episodes: pl.LazyFrame,
    events: pl.LazyFrame,
    names: list[str],
) -> None:
    key = list(NATURAL_KEYS["referrals"])
    mapped = _collect(
        loaded["referrals"]
        .select(key)
        .join(episodes.select(*key, "episode_id"), on=key, how="left")
        .select(
            rows=pl.len(),
            unmapped=pl.col("episode_id").null_count(),
        )
    ).row(0, named=True)
    rows_in = report.tables["referrals"]["rows_in"]
    report.check(
        "every referral row maps to exactly one episode",
        mapped["rows"] == rows_in and mapped["unmapped"] == 0,
        referral_rows=rows_in,
        rows_after_join=int(mapped["rows"]),
        unmapped=int(mapped["unmapped"]),
    )
    n_episodes = report.outputs["episodes"]
    n_ids = _count(episodes.select("episode_id").unique())
    report.check("episode_id unique", n_ids == n_episodes, episodes=n_episodes, distinct_ids=n_ids)
    report.check(
        "episodes == merged referrals",
        n_episodes == report.outputs["merged_referrals"],
        episodes=n_episodes,
    )
    orphans = {
        t: _count(merged[t].join(episodes.select("episode_id"), on="episode_id", how="anti"))
        for t in names
        if t not in ("referrals", "cla_episodes")
    }
    report.check("every nested record belongs to an episode", not any(orphans.values()), **orphans)
    n_referral_events = _count(events.filter(pl.col("event") == "referral"))
    report.check(
        "one referral event per episode",
        n_referral_events == n_episodes,
        referral_events=n_referral_events,
    )
    summary = _collect(
        episodes.select(
            episodes=pl.len(),
            children=pl.struct("child_id", "la_code").n_unique(),
            open_at_last_return=pl.col("closure_date").is_null().sum(),
            vanished=pl.col("vanished").sum(),
            overlaps_previous=pl.col("overlaps_previous").sum(),
            multi_return=(pl.col("n_returns") > 1).sum(),
            rereferral_12m=pl.col("rereferral_12m").sum(),
            entered_care=pl.col("entered_care_date").is_not_null().sum(),
        )
    ).row(0, named=True)
    report.episodes = {k: int(v) for k, v in summary.items()}
    report.episodes["events"] = report.outputs.get("events", 0)
