"""Keyed pseudonymisation of child identifiers at load time.

``LAchildID`` (SSDA903 ``CHILD``) and ``UPN`` are replaced by HMAC-SHA256 digests under a secret
key, so raw identifiers never reach the store. ``child_id`` hashes the LA code together with the
LA's child id (LA child ids are only unique within an LA); ``upn_hash`` hashes the UPN alone, so
a child who moves LA, or appears in the NPD, links by UPN. Hashes are truncated to 20 hex
characters (80 bits): collisions are negligible at national scale (~1e-12 for 10 million ids).

The key comes from ``CINRESEARCH_KEY`` (the key itself) or ``CINRESEARCH_KEY_FILE`` (a file
holding it). For synthetic data only, ``demo=True`` uses the documented public key
:data:`DEMO_KEY` — never use it for real returns. Rotating the key means re-loading: hashes
under different keys do not match.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

DEMO_KEY = b"cinresearch-synthetic-demo-key-not-secret"
DIGEST_CHARS = 20


class KeyError_(RuntimeError):
    """No pseudonymisation key configured."""


@dataclass(frozen=True)
class Pseudonymiser:
    """Hashes identifiers under one key. ``key_id`` (a hash of the key) goes in the manifest."""

    key: bytes

    @property
    def key_id(self) -> str:
        return hashlib.sha256(b"key-id:" + self.key).hexdigest()[:12]

    def _digest(self, domain: str, value: str) -> str:
        return hmac.new(self.key, f"{domain}\x1f{value}".encode(), hashlib.sha256).hexdigest()[
            :DIGEST_CHARS
        ]

    def child_id(self, la_code: str, la_child_id: str) -> str:
        """Pseudonymous child id: unique nationally because the LA code is part of the input."""
        return self._digest("child", f"{la_code}\x1f{la_child_id.strip()}")

    def upn(self, upn: str) -> str:
        """Pseudonymous UPN (upper-cased and stripped first)."""
        return self._digest("upn", upn.strip().upper())

    def hash_series(self, domain: str, values: pl.Series, prefix: str = "") -> pl.Series:
        """``_digest(domain, prefix + value)`` for every value of a string Series (null stays null).

        Uses the compiled HMAC-SHA256 of :mod:`cinresearch.io._cinfast` when it was built
        (about 0.2 µs a value instead of 1.5 µs); the digests are the same either way.
        """
        values = values.cast(pl.String).rechunk()
        native = _native()
        if native is None:
            return pl.Series(
                values.name,
                [None if v is None else self._digest(domain, prefix + v) for v in values],
                dtype=pl.String,
            )
        present = values.drop_nulls()
        array = present.to_arrow()
        _, offsets_buffer, data_buffer = array.buffers()
        offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[
            array.offset : array.offset + len(array) + 1
        ]
        chars = native.hmac_hex(
            self.key,
            f"{domain}\x1f{prefix}".encode(),
            np.ascontiguousarray(offsets).tobytes(),
            data_buffer if data_buffer is not None else b"",
            DIGEST_CHARS,
        )
        digests = pa.LargeStringArray.from_buffers(
            len(present),
            pa.py_buffer(np.arange(len(present) + 1, dtype=np.int64) * DIGEST_CHARS),
            pa.py_buffer(chars),
        )
        out = pl.from_arrow(digests).alias(values.name)
        if not values.null_count():
            return out
        full = pl.Series(values.name, [None] * len(values), dtype=pl.String)
        return full.scatter(values.is_not_null().arg_true(), out) if len(present) else full

    def episode_id(self, child_id: str, referral_date: str) -> str:
        return self._digest("episode", f"{child_id}\x1f{referral_date}")


def load_key(demo: bool = False) -> Pseudonymiser:
    """The configured key; ``demo=True`` allows the public demo key for synthetic data."""
    if value := os.environ.get("CINRESEARCH_KEY"):
        return Pseudonymiser(value.encode())
    if path := os.environ.get("CINRESEARCH_KEY_FILE"):
        key = Path(path).read_bytes().strip()
        if not key:
            raise KeyError_(f"pseudonymisation key file {path} is empty")
        return Pseudonymiser(key)
    if demo:
        return Pseudonymiser(DEMO_KEY)
    raise KeyError_(
        "no pseudonymisation key: set CINRESEARCH_KEY or CINRESEARCH_KEY_FILE "
        "(or pass --demo-key for synthetic data only)"
    )


_UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"
_DIGITS = "0123456789"


def _native():
    try:
        from cinresearch.io import _cinfast
    except ImportError:  # the C extension was not built: pure-Python hashing
        return None
    return _cinfast


def upn_valid_expr(upn: pl.Expr) -> pl.Expr:
    """:func:`upn_is_valid` as a polars expression (null for a null UPN)."""
    text = upn.str.strip_chars().str.to_uppercase()
    letters = "".join(_UPN_LETTERS)
    shape = text.str.contains(f"^[{letters}][0-9]{{11}}[0-9{letters}]$")
    total = pl.lit(0, dtype=pl.Int64)
    for position in range(2, 14):
        char = text.str.slice(position - 1, 1)
        value = char.replace_strict(
            {**{d: int(d) for d in _DIGITS}, **{c: i for i, c in enumerate(_UPN_LETTERS)}},
            default=0,
            return_dtype=pl.Int64,
        )
        total = total + value * position
    check = (total % 23).replace_strict(dict(enumerate(_UPN_LETTERS)), return_dtype=pl.String)
    return shape & (check == text.str.slice(0, 1))


def checked_upns(upns: pl.Series) -> tuple[pl.Series, pl.Series]:
    """(passes the DfE check, the stripped upper-case UPN where it does, else null) per value.

    What the loaders hash: only a valid UPN links records, so an invalid one is not hashed.
    """
    if upns.null_count() == upns.len():  # e.g. a return without UPNs: nothing to check
        return pl.repeat(False, upns.len(), eager=True), upns.cast(pl.String)
    checked = pl.DataFrame({"upn": upns}).select(
        ok=upn_valid_expr(pl.col("upn")).fill_null(False),
        upn=pl.col("upn").str.strip_chars().str.to_uppercase(),
    )
    ok = checked.get_column("ok")
    return ok, checked.get_column("upn").set(~ok, None).alias(upns.name)


def upn_is_valid(upn: str) -> bool:
    """DfE UPN check: 13 chars, check letter (rule 1510), digits 2-12 (1540), last char (1550)."""
    upn = upn.strip().upper()
    # ASCII digits only: str.isdigit() also accepts e.g. superscripts, which int() rejects
    if len(upn) != 13 or upn[0] not in _UPN_LETTERS or not all(c in _DIGITS for c in upn[1:12]):
        return False
    last = upn[12]
    if not (last in _DIGITS or last in _UPN_LETTERS):
        return False
    total = 0
    for position, char in enumerate(upn[1:], start=2):
        value = int(char) if char in _DIGITS else _UPN_LETTERS.index(char)
        total += value * position
    return _UPN_LETTERS[total % 23] == upn[0]


def make_upn(la_code: str, establishment: int, year2: int, serial: int) -> str:
    """A valid permanent UPN from its parts (used by the synthetic generator and tests)."""
    body = f"{int(la_code):03d}{establishment:04d}{year2:02d}{serial:03d}"
    total = sum(int(c) * pos for pos, c in enumerate(body, start=2))
    return _UPN_LETTERS[total % 23] + body
