"""Small helpers shared by the simulation modules: weighted picks and numpy → polars columns."""

from __future__ import annotations

import numpy as np
import polars as pl

NA = np.iinfo(np.int32).min  # missing-date sentinel inside the simulation (int day numbers)


def pick(rng: np.random.Generator, weights: dict[str, float] | list[float], n: int) -> np.ndarray:
    """Indices drawn with the given (unnormalised) weights."""
    w = np.asarray(list(weights.values()) if isinstance(weights, dict) else weights, dtype=float)
    return rng.choice(len(w), size=n, p=w / w.sum())


def pick_codes(rng: np.random.Generator, weights: dict[str, float], n: int) -> np.ndarray:
    """Codes (keys of ``weights``) drawn with the given weights, as a numpy str array."""
    return np.array(list(weights))[pick(rng, weights, n)]


def str_series(values: np.ndarray, name: str = "", mask: np.ndarray | None = None) -> pl.Series:
    """String column from a numpy array; ``None`` entries (object arrays) or ``mask`` → null."""
    values = np.asarray(values)
    if values.dtype == object:
        none = np.equal(values, None)
        mask = none if mask is None else (mask | none)
        values = np.where(none, "", values).astype(str)
    if mask is None:
        return pl.Series(name, values.astype(str), dtype=pl.String)
    return pl.Series(name, np.ma.masked_array(values.astype(str), mask), dtype=pl.String)


def date_series(days: np.ndarray, name: str = "") -> pl.Series:
    """Date column from integer day numbers (``NA`` → null)."""
    a = np.asarray(days, dtype=np.int64)
    return pl.Series(name, np.ma.masked_array(a.astype(np.int32), a == NA)).cast(pl.Date)
