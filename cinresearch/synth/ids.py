"""Synthetic identifiers: valid UPNs (DfE check letter) and LA child IDs.

UPN layout (13 chars): check letter, LA number (3), establishment number (4), last two
digits of the academic year of allocation (2), serial (3 digits, or 2 digits + letter for a
temporary UPN). Each generated UPN is unique across the whole synthetic world.
"""

from __future__ import annotations

import numpy as np
import polars as pl

UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"  # 23 letters, no I, O, S
_LETTER_VALUE = {c: i for i, c in enumerate(UPN_LETTERS)}


def upn_check_letter(body: str) -> str:
    """Check letter for the 12 characters after it (positions 2..13)."""
    total = 0
    for pos, ch in enumerate(body, start=2):
        total += pos * (int(ch) if ch.isdigit() else _LETTER_VALUE[ch])
    return UPN_LETTERS[total % 23]


def is_valid_upn(upn: str) -> bool:
    """True if ``upn`` has the UPN shape and a correct check letter."""
    if len(upn) != 13 or upn[0] not in UPN_LETTERS or not upn[1:12].isdigit():
        return False
    if not (upn[12].isdigit() or upn[12] in UPN_LETTERS):
        return False
    return upn_check_letter(upn[1:]) == upn[0]


def make_upns(
    la_codes: np.ndarray,
    alloc_years: np.ndarray,
    temporary: np.ndarray,
    rng: np.random.Generator,
    establishment_base: int = 2000,
) -> pl.Series:
    """Unique UPNs for each row (allocating LA code, academic year of allocation, temporary?).

    Rows sharing (LA, year, temporary) get distinct serials in a random order; callers that
    need several disjoint pools pass different ``establishment_base`` values (< 10000).
    """
    n = len(la_codes)
    if n == 0:
        return pl.Series("upn", [], dtype=pl.String)
    la = np.asarray(la_codes).astype(np.int64)
    yy = np.asarray(alloc_years, dtype=np.int64) % 100
    tmp = np.asarray(temporary, dtype=bool)
    order = np.lexsort((rng.random(n), tmp, yy, la))
    key = (la * 1000 + yy) * 2 + tmp
    sk = key[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sk)) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, n]))
    seq = np.empty(n, dtype=np.int64)
    seq[order] = np.arange(n) - group_start
    per_est = np.where(tmp, 2300, 1000)
    est = establishment_base + seq // per_est
    if est.max() > 9999:
        raise ValueError("too many UPNs for one LA and allocation year")
    rem = seq % per_est
    serial = np.where(tmp, rem % 100, rem)  # 2 digits (+ letter) or 3 digits
    letter = rem // 100 % 23  # temporary UPNs only

    # value of each of the 12 characters after the check letter (letters by table index)
    chars = [la // 100, la // 10 % 10, la % 10]
    chars += [est // 10 ** (3 - j) % 10 for j in range(4)]
    chars += [yy // 10, yy % 10]
    chars += [
        np.where(tmp, serial // 10, serial // 100),
        np.where(tmp, serial % 10, serial // 10 % 10),
        np.where(tmp, letter, serial % 10),
    ]
    check = sum((pos + 2) * v for pos, v in enumerate(chars)) % 23
    # 11 leading digits as one number, then the last character (digit or letter)
    lead = (la * 10**8 + est * 10**4 + yy * 10**2 + chars[9] * 10 + chars[10]).astype(np.int64)
    letters = pl.Series(list(UPN_LETTERS))
    digits = pl.Series([str(d) for d in range(10)])
    frame = pl.DataFrame(
        {
            "c": letters.gather(check),
            "lead": pl.Series(lead).cast(pl.String).str.zfill(11),
            "last": letters.gather(np.where(tmp, letter, 0)),
            "lastd": digits.gather(serial % 10),
            "tmp": tmp,
        }
    )
    body = pl.concat_str(
        [
            pl.col("c"),
            pl.col("lead"),
            pl.when(pl.col("tmp")).then(pl.col("last")).otherwise(pl.col("lastd")),
        ]
    )
    return frame.select(body.alias("upn"))["upn"]


def make_la_child_ids(la_index: np.ndarray, n_las: int, rng: np.random.Generator) -> pl.Series:
    """7-digit numeric LA child IDs (as strings), unique within each LA, in random order."""
    la_index = np.asarray(la_index)
    out = np.empty(len(la_index), dtype=np.int64)
    order = np.argsort(la_index, kind="stable")
    bounds = np.searchsorted(la_index[order], np.arange(n_las + 1))
    for k in range(n_las):
        rows = order[bounds[k] : bounds[k + 1]]
        m = len(rows)
        if m == 0:
            continue
        pool = max(10 * m, 1000)
        out[rows] = 1_000_000 + rng.choice(pool, size=m, replace=False)
    return pl.Series("la_child_id", out).cast(pl.String)
