"""Multi-year de-duplication of CIN (and CLA) returns, with an audit of what changed.

An episode open across several 31 Marches is re-sent in every annual return, with its original
referral date; later returns may correct earlier ones. Here every loaded table is merged to one
row per *natural key* (:data:`NATURAL_KEYS`):

* **latest return wins** — the row from the highest ``census_year`` is kept whole;
* if one return holds two different rows for the same key (a data error), the kept row is the one
  with the smallest content hash, so the choice depends only on the data, never on load order,
  and the disagreement is written to the audit as a conflict;
* ``first_census_year``, ``last_census_year`` and ``n_returns`` record which returns held the key;
* :func:`merge_audit` lists, column by column, every value an earlier return (or a duplicate in the
  same return) had that differs from the kept row. ``conflict`` is true when the earlier value was
  non-missing and the kept value differs from it (a corrected date, a withdrawn closure), except
  for columns that are expected to evolve (:data:`EVOLVING_COLUMNS`, e.g. ``latest_category``).
  Missing → present (e.g. an episode that closed since the last return) is an update, not a conflict.

Nested records are keyed by their episode key plus their own start date, so a nested record
absent from a later return is kept from the earlier one (sub-modules wholly before 1 April are
generally not re-sent).

Episode-level flags added to the merged ``referrals``:

* ``vanished`` — no closure date in the last return that held the episode, yet the LA sent a later
  return without it. No closure is inferred; analyses should censor at ``data_end``.
* ``overlaps_previous`` — the referral date falls before the end of an earlier episode of the same
  child in the same LA (end = closure date, or for an open episode the day after ``data_end``).
  A referral is for a child without an open case (rules 8815/8816), so this signals an id or data
  problem; the rows are kept and flagged, never dropped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import polars as pl

EPISODE_KEY: tuple[str, ...] = ("child_id", "la_code", "referral_date")

#: natural key of each loaded table that is merged across returns
NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    "referrals": EPISODE_KEY,
    "assessments": (*EPISODE_KEY, "assessment_start"),
    "section47": (*EPISODE_KEY, "s47_start"),
    "cin_plans": (*EPISODE_KEY, "cin_plan_start"),
    "cp_plans": (*EPISODE_KEY, "cpp_start"),
    "cpp_reviews": (*EPISODE_KEY, "review_date"),
    "pre_proceedings": (*EPISODE_KEY, "pp_start"),
    "cla_episodes": ("child_id", "la_code", "decom"),
}

#: tables nested in a CIN episode (they carry ``referral_date``)
NESTED_TABLES: tuple[str, ...] = (
    "assessments",
    "section47",
    "cin_plans",
    "cp_plans",
    "cpp_reviews",
    "pre_proceedings",
)

#: columns whose change between returns is an expected update, not a conflict
EVOLVING_COLUMNS: dict[str, frozenset[str]] = {
    "cp_plans": frozenset({"latest_category"}),
}

AUDIT_SCHEMA: dict[str, pl.DataType] = {
    "table": pl.String(),
    "key": pl.String(),
    "census_year_kept": pl.Int16(),
    "census_year_overridden": pl.Int16(),
    "column": pl.String(),
    "old_value": pl.String(),
    "new_value": pl.String(),
    "conflict": pl.Boolean(),
}

#: row order of ``merge_audit``
AUDIT_ORDER = ["table", "key", "column", "census_year_overridden", "old_value"]

ID_CHARS = 20
_HASH_SEED = 20180331


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=ID_CHARS // 2).hexdigest()


def stable_id(*parts: str) -> str:
    """Stable id of a natural key (BLAKE2b of the ``|``-joined parts, 20 hex characters).

    Keyless on purpose: the parts are already pseudonymised, and the id must be reproducible
    from the store alone. Independent of the polars version (unlike ``Expr.hash``).
    """
    return _digest("|".join(parts))


def _hash_batch(texts: pl.Series) -> pl.Series:
    return pl.Series(
        texts.name, [None if t is None else _digest(t) for t in texts], dtype=pl.String
    )


def key_text(columns: Sequence[str]) -> pl.Expr:
    """A natural key as one string: values joined with ``|``, dates as ISO ``YYYY-MM-DD``."""
    return pl.concat_str([pl.col(c).cast(pl.String) for c in columns], separator="|")


def episode_id_expr(
    child_id: str = "child_id", la_code: str = "la_code", referral_date: str = "referral_date"
) -> pl.Expr:
    """``episode_id``: :func:`stable_id` of (child_id, la_code, referral_date), as an expression."""
    return (
        key_text([child_id, la_code, referral_date])
        .map_batches(_hash_batch, return_dtype=pl.String, is_elementwise=True)
        .alias("episode_id")
    )


def _as_text(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A value as comparable text for the audit (lists: sorted, comma-joined; empty → null)."""
    if isinstance(dtype, pl.List):
        joined = expr.cast(pl.List(pl.String)).list.sort().list.join(",")
        return pl.when(expr.list.len() > 0).then(joined).otherwise(None)
    if dtype == pl.Date:
        return expr.dt.to_string("%Y-%m-%d")
    return expr.cast(pl.String)


def _content_hash(values: Sequence[str]) -> pl.Expr:
    if not values:
        return pl.lit(0, dtype=pl.UInt64)
    return pl.struct([pl.col(c) for c in values]).hash(seed=_HASH_SEED)


def merge_table(
    frame: pl.LazyFrame,
    table: str,
    key: Sequence[str] | None = None,
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Merge one loaded table across returns → (one row per key, audit rows).

    The merged frame has the key and value columns of the input (without ``census_year``) plus
    ``first_census_year``, ``last_census_year``, ``n_returns`` (i16), sorted by key.
    """
    key = list(key if key is not None else NATURAL_KEYS[table])
    frame = frame.with_columns(pl.col("census_year").cast(pl.Int16))
    schema = frame.collect_schema()
    values = [c for c in schema.names() if c not in key and c != "census_year"]

    ranked = frame.with_columns(_tb=_content_hash(values))
    # one sort gives both the winner (first row per key) and the output order
    latest = ranked.sort(
        [*key, "census_year", "_tb"], descending=[False] * len(key) + [True, False]
    ).unique(subset=key, keep="first", maintain_order=True)
    spans = ranked.group_by(key).agg(
        first_census_year=pl.col("census_year").min(),
        last_census_year=pl.col("census_year").max(),
        n_returns=pl.col("census_year").n_unique().cast(pl.Int16),
    )
    merged = (
        latest.drop("census_year", "_tb")
        .join(spans, on=key, how="left", maintain_order="left")
        .select(*key, *values, "first_census_year", "last_census_year", "n_returns")
    )

    if not values:
        return merged, pl.LazyFrame(schema=AUDIT_SCHEMA)
    kept = latest.select(
        *key,
        pl.col("census_year").alias("census_year_kept"),
        pl.col("_tb").alias("_tb_kept"),
        *[pl.col(c).alias(f"{c}__new") for c in values],
    )
    evolving = EVOLVING_COLUMNS.get(table, frozenset())
    others = ranked.join(kept, on=key, how="inner").filter(
        (pl.col("census_year") != pl.col("census_year_kept"))
        | (pl.col("_tb") != pl.col("_tb_kept"))
    )
    pairs = others.select(
        key_text(key).alias("key"),
        "census_year_kept",
        pl.col("census_year").alias("census_year_overridden"),
        *[
            pl.struct(
                old=_as_text(pl.col(c), schema[c]),
                new=_as_text(pl.col(f"{c}__new"), schema[c]),
                evolving=pl.lit(c in evolving),
            ).alias(c)
            for c in values
        ],
    )
    audit = (
        pairs.unpivot(
            index=["key", "census_year_kept", "census_year_overridden"],
            on=values,
            variable_name="column",
            value_name="pair",
        )
        .unnest("pair")
        .filter(pl.col("old").ne_missing(pl.col("new")))
        .select(
            pl.lit(table, dtype=pl.String).alias("table"),
            "key",
            "census_year_kept",
            "census_year_overridden",
            "column",
            pl.col("old").alias("old_value"),
            pl.col("new").alias("new_value"),
            (pl.col("old").is_not_null() & ~pl.col("evolving")).alias("conflict"),
        )
        .unique()
        .sort(AUDIT_ORDER, nulls_last=True)
    )
    return merged, audit


def returned_years(tables: Mapping[str, pl.LazyFrame]) -> pl.LazyFrame:
    """Census years each LA returned (from ``referrals`` and ``children``): la_code, census_year."""
    parts = [
        tables[t].select("la_code", pl.col("census_year").cast(pl.Int16))
        for t in ("referrals", "children")
        if t in tables
    ]
    return pl.concat(parts).unique().sort("la_code", "census_year")


def flag_episodes(referrals: pl.LazyFrame, la_years: pl.LazyFrame) -> pl.LazyFrame:
    """Add ``episode_id``, ``data_end``, ``vanished`` and ``overlaps_previous`` to merged referrals."""
    la_last = la_years.group_by("la_code").agg(la_last_census_year=pl.col("census_year").max())
    child = ["child_id", "la_code"]
    data_end = pl.date(pl.col("last_census_year"), 3, 31)
    end_exclusive = pl.coalesce(pl.col("closure_date"), data_end.dt.offset_by("1d"))
    return (
        referrals.join(la_last, on="la_code", how="left", maintain_order="left")
        .with_columns(episode_id_expr(), data_end.alias("data_end"), end_exclusive.alias("_end"))
        .with_columns(
            vanished=pl.col("closure_date").is_null()
            & (pl.col("last_census_year") < pl.col("la_last_census_year")).fill_null(False),
            overlaps_previous=(
                pl.col("referral_date")
                < pl.col("_end").cum_max().shift(1).over(child, order_by="referral_date")
            ).fill_null(False),
        )
        .drop("_end", "la_last_census_year")
    )


def attach_episode_ids(nested: pl.LazyFrame, referrals: pl.LazyFrame | None) -> pl.LazyFrame:
    """Add ``episode_id`` to a merged nested table from the merged (flagged) ``referrals``.

    A nested record whose episode key is not among the referrals keeps a null ``episode_id``
    (an orphan; the build counts them). Without ``referrals`` the id is computed from the key.
    """
    if referrals is None:
        return nested.with_columns(episode_id_expr())
    ids = referrals.select(*EPISODE_KEY, "episode_id")
    return nested.join(ids, on=list(EPISODE_KEY), how="left", maintain_order="left")


def merge_returns(
    tables: Mapping[str, pl.LazyFrame],
) -> tuple[dict[str, pl.LazyFrame], pl.LazyFrame]:
    """Merge every known table in ``tables`` across returns → (merged tables, ``merge_audit``).

    ``tables`` maps loaded-table names (``referrals``, ``assessments``, ``section47``,
    ``cin_plans``, ``cp_plans``, ``cpp_reviews``, optionally ``cla_episodes`` and ``children``)
    to lazy frames with the columns of docs/tables.md. Unknown names are ignored. The merged
    ``referrals`` carries ``episode_id``, ``data_end``, ``vanished`` and ``overlaps_previous``;
    merged nested tables carry the ``episode_id`` of the episode they belong to. All outputs are
    sorted by key, so the result does not depend on the order the input parts were loaded in.
    """
    merged: dict[str, pl.LazyFrame] = {}
    audits: list[pl.LazyFrame] = []
    for table, key in NATURAL_KEYS.items():  # referrals first: nested tables take their ids
        if table not in tables:
            continue
        out, audit = merge_table(tables[table], table, key)
        if table == "referrals":
            out = flag_episodes(out, returned_years(tables))
        elif table in NESTED_TABLES:
            out = attach_episode_ids(out, merged.get("referrals"))
        merged[table] = out
        audits.append(audit)
    audit = (
        pl.concat(audits).sort(AUDIT_ORDER, nulls_last=True)
        if audits
        else pl.LazyFrame(schema=AUDIT_SCHEMA)
    )
    return merged, audit
