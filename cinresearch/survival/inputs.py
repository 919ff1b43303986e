"""Survival inputs checked and normalised once, for every estimator, test and model.

:func:`_prepare` reads a frame's duration, event, group, entry and extra columns, enforces the
conventions of :mod:`cinresearch.survival` (durations in days ``>= 0``, event codes 0 / 1, 2,
…, delayed entry ``<= duration``) and returns internal columns: ``__duration`` (f64),
``__status`` (i64), ``__entry`` (f64 *effective* entry: ``-inf`` when observed from the
origin) and ``__group`` (the level as a string: "All" with no group, "Missing" for a null).
Rows that are never at risk (``0 < entry == duration``) are dropped with a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import polars as pl
from scipy import stats

ALL_GROUP = "All"


MISSING_GROUP = "Missing"


_D = "__duration"


_S = "__status"


_E = "__entry"


_G = "__group"


def _collect(frame: pl.DataFrame | pl.LazyFrame, columns: Sequence[str]) -> pl.DataFrame:
    """Select ``columns`` (checked to exist) and collect a LazyFrame."""
    names = _schema(frame).names()
    missing = [c for c in dict.fromkeys(columns) if c not in names]
    if missing:
        raise ValueError(f"column(s) not found in frame: {missing}")
    cols = list(dict.fromkeys(columns))
    out = frame.select(cols)
    return out.collect() if isinstance(out, pl.LazyFrame) else out


def _schema(frame: pl.DataFrame | pl.LazyFrame) -> pl.Schema:
    return frame.collect_schema() if isinstance(frame, pl.LazyFrame) else frame.schema


def _group_order(series: pl.Series) -> list[str]:
    """Level order for a grouping column, as strings (see module conventions)."""
    dtype = series.dtype
    present = series.drop_nulls().unique()
    if isinstance(dtype, pl.Enum):
        have = set(present.cast(pl.String).to_list())
        order = [c for c in dtype.categories.to_list() if c in have]
    elif dtype == pl.Categorical:
        order = sorted(present.cast(pl.String).to_list())
    else:
        order = present.sort().cast(pl.String).to_list()
    if series.null_count():
        order.append(MISSING_GROUP)
    return order


def _group_column(frame: pl.DataFrame, group: str | None) -> tuple[pl.Series, list[str]]:
    if group is None:
        return pl.Series(_G, [ALL_GROUP] * frame.height, dtype=pl.String), [ALL_GROUP]
    s = frame.get_column(group)
    order = _group_order(s)
    labels = s.cast(pl.String).fill_null(MISSING_GROUP).alias(_G)
    return labels, order


def _prepare(
    frame: pl.DataFrame | pl.LazyFrame,
    duration: str,
    status: str,
    *,
    group: str | None = None,
    entry: str | None = None,
    binary: bool = False,
    extra: Sequence[str] = (),
) -> tuple[pl.DataFrame, list[str]]:
    """Validate and normalise survival inputs.

    Returns a frame with internal columns ``__duration`` (f64), ``__status`` (i64),
    ``__entry`` (f64 *effective* entry: ``-inf`` when observed from the origin), ``__group``
    (str), plus ``extra`` columns as given, and the ordered group levels.
    """
    cols = [duration, status] + ([group] if group else []) + ([entry] if entry else [])
    df = _collect(frame, cols + list(extra))
    dur = df.get_column(duration)
    if isinstance(dur.dtype, pl.Duration):  # a timedelta: use whole days
        dur = dur.dt.total_days()
    if not dur.dtype.is_numeric():
        raise TypeError(f"duration column {duration!r} must be numeric (days), got {dur.dtype}")
    if dur.null_count():
        raise ValueError(f"duration column {duration!r} has {dur.null_count()} null value(s)")
    if dur.dtype.is_float() and dur.is_nan().any():
        raise ValueError(f"duration column {duration!r} has NaN value(s)")
    if (dur < 0).any():
        raise ValueError(
            f"duration column {duration!r} has {(dur < 0).sum()} negative value(s); "
            "durations are days since the origin and must be >= 0"
        )
    st = df.get_column(status)
    if st.null_count():
        raise ValueError(f"event column {status!r} has {st.null_count()} null value(s)")
    if st.dtype == pl.Boolean:
        st = st.cast(pl.Int64)
    elif not st.dtype.is_numeric():
        raise TypeError(f"event column {status!r} must be integer or boolean, got {st.dtype}")
    st_f = st.cast(pl.Float64)
    if (st_f != st_f.round()).any() or (st_f < 0).any():
        raise ValueError(
            f"event column {status!r} must hold 0 (censored) or positive integer codes"
        )
    st = st.cast(pl.Int64)
    if binary and (st > 1).any():
        bad = sorted(set(st.filter(st > 1).unique().to_list()))
        raise ValueError(
            f"event column {status!r} has values other than 0/1 ({bad}): competing events are "
            "present, and 1 - Kaplan-Meier would overstate the risk. Use "
            "survival.cumulative_incidence (Aalen-Johansen) with event_type codes, or recode "
            "the event explicitly (e.g. other causes as censoring for a cause-specific "
            "analysis)."
        )
    groups, order = _group_column(df, group)
    out = pl.DataFrame(
        {
            _D: dur.cast(pl.Float64),
            _S: st,
            _G: groups,
        }
    )
    if entry is not None:
        ent = df.get_column(entry)
        if isinstance(ent.dtype, pl.Duration):
            ent = ent.dt.total_days()
        ent = ent.cast(pl.Float64).fill_null(0.0).fill_nan(0.0)
        if (ent < 0).any():
            raise ValueError(f"entry column {entry!r} has negative value(s)")
        too_late = ent > out.get_column(_D)
        if too_late.any():
            raise ValueError(
                f"entry column {entry!r} is after the duration in {too_late.sum()} row(s); "
                "delayed entry must be <= duration"
            )
        out = out.with_columns(pl.when(ent > 0).then(ent).otherwise(float("-inf")).alias(_E))
        never = (out.get_column(_E) >= out.get_column(_D)).to_numpy()
        if never.any():
            warnings.warn(
                f"{int(never.sum())} row(s) have delayed entry equal to their duration and are "
                "never at risk (at risk only for entry < t <= duration); they are excluded.",
                UserWarning,
                stacklevel=3,
            )
    else:
        out = out.with_columns(pl.lit(float("-inf")).alias(_E))
        never = None
    for c in extra:
        if c not in out.columns:
            out = out.with_columns(df.get_column(c))
    if never is not None and never.any():
        out = out.filter(pl.Series(~never))
    return out, order


def _strata_codes(frame_cols: pl.DataFrame, strata: str | Sequence[str] | None) -> np.ndarray:
    if strata is None:
        return np.zeros(frame_cols.height, dtype=np.int64)
    cols = [strata] if isinstance(strata, str) else list(strata)
    key = frame_cols.select(
        pl.concat_str(
            [pl.col(c).cast(pl.String).fill_null("\x00") for c in cols], separator="\x1f"
        ).alias("k")
    )
    return key.get_column("k").rank("dense").to_numpy().astype(np.int64) - 1


def _z(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    return float(stats.norm.ppf(1 - alpha / 2))
