"""Risk sets and event counts at given times, exact with tied days.

A subject is at risk at ``t`` when ``entry < t <= duration`` (effective entry ``-inf`` when
observed from the origin, so an event on day 0 is at risk at ``t = 0``); these two counts are
all the Kaplan–Meier, Aalen–Johansen and log-rank arithmetic needs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _at_risk(dur: np.ndarray, entry_eff: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Number at risk at each time: #{entry < t <= duration} (effective entry)."""
    ds = np.sort(dur)
    es = np.sort(entry_eff)
    n_dur_ge = len(ds) - np.searchsorted(ds, times, side="left")
    n_ent_ge = len(es) - np.searchsorted(es, times, side="left")
    return (n_dur_ge - n_ent_ge).astype(np.int64)


def _counts(
    dur: np.ndarray, status: np.ndarray, times: np.ndarray, codes: Sequence[int]
) -> dict[int, np.ndarray]:
    """Number of rows with each status code at each of ``times`` (exact match)."""
    idx = np.searchsorted(times, dur)
    hit = (idx < len(times)) & (times[np.minimum(idx, len(times) - 1)] == dur)
    out = {}
    for c in codes:
        m = hit & (status == c)
        out[c] = np.bincount(idx[m], minlength=len(times)).astype(np.int64)
    return out
