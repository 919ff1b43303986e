"""A child's prior CP plans in the LA, pieced together from every return.

See the "Prior plans" conventions of :mod:`cinresearch.cohorts`: plans seen in the data,
plans dated before the follow-up start, and ``previous_cpps`` on later plans.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from cinresearch.cohorts.inputs import _columns
from cinresearch.cohorts.outcome import Outcome

PRIOR_PLANS = ("exclude", "exclude_any", "keep")


EXCLUDED_PRIOR_CPP = "CP plan before follow-up start (not at risk of a first plan)"


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
