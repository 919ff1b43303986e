"""Code lists (referral source, primary need, disability, abuse category, ...) from YAML.

The lists live in ``data_contracts/codes/<name>.yaml``; each code has a label, an optional
statistics ``group`` and optional ``from``/``to`` census years in which it is valid.
"""

from __future__ import annotations

import functools
from pathlib import Path

import polars as pl
import yaml

CODES_DIR = Path(__file__).resolve().parent.parent / "data_contracts" / "codes"


@functools.cache
def _load(name: str) -> dict:
    path = CODES_DIR / f"{name}.yaml"
    if not path.exists():
        raise KeyError(f"no code list {name!r} (looked for {path})")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def code_list(name: str) -> dict[str, dict]:
    """Codes of a list with their attributes (label, group, from, to)."""
    return {str(k): v for k, v in _load(name)["codes"].items()}


def labels(name: str) -> dict[str, str]:
    """Code → label."""
    return {k: v["label"] for k, v in code_list(name).items()}


def groups(name: str) -> dict[str, str]:
    """Code → statistics group (the label when a list has no groups)."""
    return {k: v.get("group", v["label"]) for k, v in code_list(name).items()}


def year_ranges(name: str) -> dict[str, tuple[int | None, int | None]]:
    """Codes valid only in some census years → (first year, last year)."""
    return {
        k: (v.get("from"), v.get("to"))
        for k, v in code_list(name).items()
        if v.get("from") is not None or v.get("to") is not None
    }


def valid_in_year(name: str, census_year: int) -> set[str]:
    """The codes of a list valid in one census year."""
    out = set()
    for code, attrs in code_list(name).items():
        start, end = attrs.get("from"), attrs.get("to")
        if (start is None or census_year >= start) and (end is None or census_year <= end):
            out.add(code)
    return out


def list_names() -> list[str]:
    return sorted(p.stem for p in CODES_DIR.glob("*.yaml"))


def label_expr(column: str, name: str, default: str | None = None) -> pl.Expr:
    """Expression mapping a code column to its labels."""
    return pl.col(column).replace_strict(labels(name), default=default, return_dtype=pl.String)


def group_expr(column: str, name: str, default: str | None = None) -> pl.Expr:
    """Expression mapping a code column to its statistics group."""
    return pl.col(column).replace_strict(groups(name), default=default, return_dtype=pl.String)


AGE_BANDS = ("unborn", "under 1", "1-4", "5-9", "10-15", "16+")
