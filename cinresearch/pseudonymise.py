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

    def child_ids(self, la_code: str, la_child_ids: list[str | None]) -> list[str | None]:
        """:meth:`child_id` for many ids of one LA (None stays None); same digests, faster."""
        base = hmac.new(self.key, f"child\x1f{la_code}\x1f".encode(), hashlib.sha256)
        out: list[str | None] = []
        for value in la_child_ids:
            if value is None:
                out.append(None)
                continue
            h = base.copy()
            h.update(value.strip().encode())
            out.append(h.hexdigest()[:DIGEST_CHARS])
        return out

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
