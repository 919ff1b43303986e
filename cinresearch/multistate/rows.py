"""Checks and preparation of pathway rows shared by the estimators.

Part of :mod:`cinresearch.multistate`.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from cinresearch.multistate.pathway import _lazy
from cinresearch.multistate.states import STATES, Frame

# --------------------------------------------------------------------------------------------
# input checks shared by the estimators
# --------------------------------------------------------------------------------------------


def _state_order(frame: pl.DataFrame, from_state: str, to_state: str, states) -> list[str]:
    """States present in the frame, in model order."""
    present = set(frame.get_column(from_state).drop_nulls().cast(pl.String).unique().to_list())
    present |= set(frame.get_column(to_state).drop_nulls().cast(pl.String).unique().to_list())
    if states is not None:
        order = [str(s) for s in states]
    else:
        dtype = frame.schema[from_state]
        if isinstance(dtype, pl.Enum):
            order = dtype.categories.to_list()
        elif present <= set(STATES):
            order = list(STATES)
        else:
            raise ValueError(
                f"states {sorted(present - set(STATES))} are not pathway states; give the "
                "state order with states=[...]"
            )
    if unknown := sorted(present - set(order)):
        raise ValueError(f"state(s) {unknown} not in the given states {order}")
    return [s for s in order if s in present]


def _check_rows(df: pl.DataFrame, id_col: str) -> None:
    """Rows of a subject must be contiguous intervals whose states follow each other."""
    if df.get_column("__a").null_count() or df.get_column("__b").null_count():
        raise ValueError("tstart/tstop have null values")
    if df.get_column("__j").null_count():
        raise ValueError("from_state has null values")
    bad = df.filter(pl.col("__b") <= pl.col("__a")).height
    if bad:
        raise ValueError(f"{bad} row(s) have tstop <= tstart")
    same = df.filter(pl.col("__k") == pl.col("__j")).height
    if same:
        raise ValueError(f"{same} row(s) move to the state they are in (from_state == to_state)")
    nxt = df.sort(id_col, "__a").with_columns(
        __na=pl.col("__a").shift(-1).over(id_col),
        __nj=pl.col("__j").shift(-1).over(id_col),
    )
    follow = nxt.filter(pl.col("__na").is_not_null())
    gaps = follow.filter(pl.col("__na") != pl.col("__b")).height
    if gaps:
        raise ValueError(
            f"{gaps} row(s) are not followed by a row starting where they stop: the rows of "
            "a subject must be contiguous (no gaps or overlaps)"
        )
    expected = pl.coalesce("__k", "__j")
    jumps = follow.filter(pl.col("__nj") != expected).height
    if jumps:
        raise ValueError(
            f"{jumps} row(s) are followed by a row whose from_state is not the state reached "
            "(to_state, or from_state when censored)"
        )


def _prepare_rows(
    frame: Frame,
    id_col: str,
    tstart: str,
    tstop: str,
    from_state: str,
    to_state: str,
    states: Sequence[str] | None,
    extra: Sequence[str] = (),
) -> tuple[pl.DataFrame, list[str]]:
    cols = list(dict.fromkeys([id_col, tstart, tstop, from_state, to_state, *extra]))
    df = _lazy(frame).select(cols).collect()
    if df.is_empty():
        raise ValueError("the frame has no rows")
    order = _state_order(df, from_state, to_state, states)
    idx = {s: i for i, s in enumerate(order)}
    df = df.with_columns(
        __a=pl.col(tstart).cast(pl.Float64),
        __b=pl.col(tstop).cast(pl.Float64),
        __j=pl.col(from_state).cast(pl.String).replace_strict(idx, return_dtype=pl.Int64),
        __k=pl.col(to_state)
        .cast(pl.String)
        .replace_strict(idx, default=None, return_dtype=pl.Int64),
    )
    _check_rows(df, id_col)
    return df, order
