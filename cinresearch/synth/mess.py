"""Deliberate data problems for ``generate(mess=True)``, recorded in ``truth/mess.json``.

In every CIN return, each child is independently picked (at most one kind per child) with
the probabilities in :data:`MESS_RATES`:

* ``missing_upn`` — a child whose UPN is known has no ``UPN`` and no ``UPNunknown`` (schema-valid;
  no DfE error number, so a loader may accept it);
* ``duplicate_child`` — the whole ``<Child>`` element appears twice (same LAchildID; rule 8510);
* ``closure_before_referral`` — the child's first episode that closed in the year gets a
  ``CINclosureDate`` 1–30 days *before* its ``CINreferralDate`` (rule 8630); children with no
  episode closed in the year are left alone; when the new date is before 1 April it also
  breaks rule 8620 (listed in the record's ``rules``);
* ``unknown_code`` — one code is replaced by a value outside the code list: the first
  episode's ``ReferralSource`` (``99``), or its ``PrimaryNeedCode`` (``N11``, non-NFA only),
  or the child's ``Ethnicity`` (``XXXX``).

One extra, truncated copy of a return is written (``truncated_xml``): the last census year's
return of the first LA, cut mid-file, as ``cin_<year>_<la>_truncated.xml``. The clean
ground truth in ``truth/`` is unchanged; ``mess.json`` lists every messed record.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from cinresearch.synth.cin_writer import ReturnTables

MESS_RATES: dict[str, float] = {
    "missing_upn": 0.004,
    "duplicate_child": 0.002,
    "closure_before_referral": 0.003,
    "unknown_code": 0.003,
}
KINDS = list(MESS_RATES)


def mess_return(
    t: ReturnTables, rng: np.random.Generator
) -> tuple[ReturnTables, pl.DataFrame, list[dict]]:
    """Mutated tables, the (la_code, la_child_id) rows to duplicate, and the record list."""
    year = t.census_year
    children = t.children.sort(["la_code", "la_child_id"])
    u = rng.random(children.height)
    edges = np.cumsum([0.0, *MESS_RATES.values()])
    kind = np.full(children.height, "", dtype=object)
    for i, name in enumerate(KINDS):
        kind[(u >= edges[i]) & (u < edges[i + 1])] = name
    children = children.with_columns(mess=pl.Series(kind.astype(str)))
    records: list[dict] = []

    # missing UPN
    miss = children.filter((pl.col("mess") == "missing_upn") & pl.col("upn").is_not_null())
    for la, cid in miss.select("la_code", "la_child_id").iter_rows():
        records.append({
            "kind": "missing_upn", "census_year": year, "la_code": la, "la_child_id": cid,
            "field": "UPN", "rules": [],
        })  # fmt: skip
    miss_keys = miss.select("la_code", "la_child_id").with_columns(m=pl.lit(True))
    new_children = (
        children.join(miss_keys, on=["la_code", "la_child_id"], how="left")
        .with_columns(
            upn=pl.when(pl.col("m")).then(None).otherwise(pl.col("upn")),
            former_upn=pl.when(pl.col("m")).then(None).otherwise(pl.col("former_upn")),
            upn_unknown=pl.when(pl.col("m")).then(None).otherwise(pl.col("upn_unknown")),
        )
        .drop("m")
    )

    # duplicates
    dups = children.filter(pl.col("mess") == "duplicate_child").select("la_code", "la_child_id")
    for la, cid in dups.iter_rows():
        records.append({
            "kind": "duplicate_child", "census_year": year, "la_code": la, "la_child_id": cid,
            "field": "Child", "rules": ["8510"],
        })  # fmt: skip

    # closure before referral: first episode closed in the year
    ep = t.episodes
    chosen = children.filter(pl.col("mess") == "closure_before_referral").select(
        "la_code", "la_child_id"
    )
    closed = (
        ep.join(chosen, on=["la_code", "la_child_id"], how="semi")
        .filter(pl.col("closure_date").is_not_null())
        .sort("referral_date")
        .group_by(["la_code", "la_child_id"], maintain_order=True)
        .first()
        .sort(["la_code", "la_child_id"])
    )
    shift = rng.integers(1, 31, closed.height)
    closed = closed.select(
        "episode_id",
        "la_code",
        "la_child_id",
        "referral_date",
        new_closure=pl.col("referral_date") - pl.duration(days=pl.Series(shift)),
    )
    year_start = date(year - 1, 4, 1)
    for _, la, cid, ref, new in closed.iter_rows():
        records.append({
            "kind": "closure_before_referral", "census_year": year, "la_code": la, "la_child_id": cid,
            "field": "CINclosureDate", "referral_date": ref.isoformat(), "value": new.isoformat(),
            "rules": ["8630", "8620"] if new < year_start else ["8630"],
        })  # fmt: skip
    ep = (
        ep.join(closed.select("episode_id", "new_closure"), on="episode_id", how="left")
        .with_columns(closure_date=pl.coalesce("new_closure", "closure_date"))
        .drop("new_closure")
    )

    # unknown codes
    chosen = children.filter(pl.col("mess") == "unknown_code").select("la_code", "la_child_id")
    first_ep = (
        ep.join(chosen, on=["la_code", "la_child_id"], how="semi")
        .sort("referral_date")
        .group_by(["la_code", "la_child_id"], maintain_order=True)
        .first()
        .sort(["la_code", "la_child_id"])
    )
    which = rng.integers(0, 3, first_ep.height)
    which = np.where((which == 1) & first_ep["referral_nfa"].to_numpy(), 0, which)
    field = np.array(["ReferralSource", "PrimaryNeedCode", "Ethnicity"])[which]
    first_ep = first_ep.with_columns(field=pl.Series(field))
    for row in first_ep.select(
        "episode_id", "la_code", "la_child_id", "referral_date", "field"
    ).iter_rows():
        value = {"ReferralSource": "99", "PrimaryNeedCode": "N11", "Ethnicity": "XXXX"}[row[4]]
        records.append({
            "kind": "unknown_code", "census_year": year, "la_code": row[1], "la_child_id": row[2],
            "field": row[4], "referral_date": row[3].isoformat(), "value": value, "rules": ["code"],
        })  # fmt: skip
    src_ids = first_ep.filter(pl.col("field") == "ReferralSource")["episode_id"]
    need_ids = first_ep.filter(pl.col("field") == "PrimaryNeedCode")["episode_id"]
    eth_keys = first_ep.filter(pl.col("field") == "Ethnicity").select("la_code", "la_child_id")
    ep = ep.with_columns(
        referral_source=pl.when(pl.col("episode_id").is_in(src_ids.implode()))
        .then(pl.lit("99"))
        .otherwise(pl.col("referral_source")),
        primary_need=pl.when(pl.col("episode_id").is_in(need_ids.implode()))
        .then(pl.lit("N11"))
        .otherwise(pl.col("primary_need")),
    )
    new_children = (
        new_children.join(
            eth_keys.with_columns(e=pl.lit(True)), on=["la_code", "la_child_id"], how="left"
        )
        .with_columns(
            ethnicity=pl.when(pl.col("e")).then(pl.lit("XXXX")).otherwise(pl.col("ethnicity"))
        )
        .drop("e", "mess")
    )
    return t.with_(children=new_children, episodes=ep), dups, records


def add_duplicates(children_xml: pl.DataFrame, dups: pl.DataFrame) -> pl.DataFrame:
    """Repeat the chosen children's ``<Child>`` elements right after the originals."""
    extra = children_xml.join(dups, on=["la_code", "la_child_id"], how="semi")
    return pl.concat([children_xml, extra]).sort(["la_code", "la_child_id"], maintain_order=True)


def write_truncated(source: Path) -> Path:
    """A copy of ``source`` cut at 60% of its length (not well-formed XML)."""
    data = source.read_bytes()
    target = source.with_name(source.stem + "_truncated.xml")
    target.write_bytes(data[: int(len(data) * 0.6)])
    return target
