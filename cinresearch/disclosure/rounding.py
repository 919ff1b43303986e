"""Half-up rounding, GSS symbols and numbers as published text.

Counts and rates are shown as text so a cell can hold a number or a symbol (``c``, ``z``,
``x``, ``low``, ``0``), never blank. Rounding is half up (ties away from zero, as Excel/SAS
``ROUND``), with values snapped to 9 decimals of the rounding unit first so that binary floats
such as 0.05 round as written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, overload

import polars as pl


@dataclass(frozen=True)
class Symbols:
    """GSS symbols written in place of numbers (DfE EES accepts these)."""

    confidential: str = "c"
    not_applicable: str = "z"
    not_available: str = "x"
    low: str = "low"
    zero: str = "0"

    def all(self) -> tuple[str, ...]:
        return (self.confidential, self.not_applicable, self.not_available, self.low, self.zero)


SYMBOLS = Symbols()
#: Symbols from older releases that DfE's file checks now reject.
LEGACY_SYMBOLS: tuple[str, ...] = (":", "~")

_SNAP_DECIMALS = 9  # ties are recognised to within 1e-9 of the rounding unit

# ----------------------------------------------------------------------------- rounding


def _rounding_unit(base: float | None, decimals: int | None) -> tuple[float | None, int | None]:
    if base is not None and decimals is not None:
        raise ValueError("give either base or decimals, not both")
    if base is None and decimals is None:
        decimals = 0
    if base is not None and base <= 0:
        raise ValueError(f"base must be positive, got {base}")
    return base, decimals


def _half_up_expr(expr: pl.Expr, base: float | None, decimals: int | None) -> pl.Expr:
    """Half-up (away from zero) rounding as a Float64 expression."""
    x = expr.cast(pl.Float64)
    if base is not None:
        scaled = (x.abs() / base).round(_SNAP_DECIMALS)
        return (scaled + 0.5).floor() * base * x.sign()
    assert decimals is not None
    factor = 10.0**decimals
    scaled = (x.abs() * factor).round(_SNAP_DECIMALS)
    return (scaled + 0.5).floor() / factor * x.sign()


def _half_up_scalar(value: Any, base: float | None, decimals: int | None) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return value
    # repr() gives the shortest decimal that round-trips, i.e. what the user typed (0.05, 1.005).
    exact = Decimal(value) if isinstance(value, int) else Decimal(repr(float(value)))
    if base is not None:
        step = Decimal(repr(base)) if isinstance(base, float) else Decimal(base)
        rounded = (exact / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step
        return int(rounded) if isinstance(base, int) and isinstance(value, int) else float(rounded)
    assert decimals is not None
    rounded = exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    if decimals <= 0 and isinstance(value, int):
        return int(rounded)
    return float(rounded)


@overload
def round_half_up(
    value: pl.Expr, *, base: float | None = None, decimals: int | None = None
) -> pl.Expr: ...
@overload
def round_half_up(
    value: pl.Series, *, base: float | None = None, decimals: int | None = None
) -> pl.Series: ...
@overload
def round_half_up(
    value: float, *, base: float | None = None, decimals: int | None = None
) -> float: ...
def round_half_up(value: Any, *, base: float | None = None, decimals: int | None = None) -> Any:
    """Round half up (ties away from zero) to a multiple of ``base`` or to ``decimals`` places.

    Works on a polars expression, a Series, or a Python number. ``round_half_up(25, base=10)`` is
    30, ``round_half_up(2.5)`` is 3.0, ``round_half_up(0.05, decimals=1)`` is 0.1. With an integer
    ``base`` expressions/Series return Int64 (NaN becomes null), otherwise Float64. Python ints
    with an integer base return ints.
    """
    base, decimals = _rounding_unit(base, decimals)
    if isinstance(value, pl.Expr):
        out = _half_up_expr(value, base, decimals)
        return out.cast(pl.Int64, strict=False) if isinstance(base, int) else out
    if isinstance(value, pl.Series):
        return pl.select(round_half_up(pl.lit(value), base=base, decimals=decimals)).to_series()
    return _half_up_scalar(value, base, decimals)


def _scaled_half_up_int(expr: pl.Expr, decimals: int) -> pl.Expr:
    """Integer k with value ~= k / 10**decimals, rounded half up (exact digits for display)."""
    x = expr.cast(pl.Float64)
    scaled = (x.abs() * 10.0**decimals).round(_SNAP_DECIMALS)
    return ((scaled + 0.5).floor() * x.sign()).cast(pl.Int64, strict=False)


def _fixed_point_string(k: pl.Expr, decimals: int) -> pl.Expr:
    """Format integer k as k / 10**decimals with exactly ``decimals`` places ("12.0", "-0.5")."""
    if decimals <= 0:
        return k.cast(pl.String)
    unit = 10**decimals
    magnitude = k.abs()
    return pl.concat_str(
        pl.when(k < 0).then(pl.lit("-")).otherwise(pl.lit("")),
        (magnitude // unit).cast(pl.String),
        pl.lit("."),
        (magnitude % unit).cast(pl.String).str.zfill(decimals),
    )


# ----------------------------------------------------------------------------- formatting


def numeric_value(expr: pl.Expr) -> pl.Expr:
    """Numeric view of a column; text such as an existing symbol becomes null."""
    return expr.cast(pl.Float64, strict=False)


def _existing_symbol(expr: pl.Expr) -> pl.Expr:
    """For a text column: the text where it is not a number (a symbol already set), else null."""
    text = expr.cast(pl.String)
    return pl.when(numeric_value(text).is_null()).then(text).otherwise(pl.lit(None, pl.String))


def format_count(
    value: pl.Expr | str,
    *,
    suppressed: pl.Expr | bool = False,
    rounding_base: int | None = None,
    symbols: Symbols = SYMBOLS,
) -> pl.Expr:
    """Display string for a count: symbol or digits, never blank.

    null -> ``x``, NaN -> ``z``, suppressed -> ``c``, 0 -> ``0``; with ``rounding_base`` the value
    is rounded half up and a non-zero value that rounds to 0 becomes ``low``. Text that is not a
    number (a symbol set upstream) passes through unchanged.
    """
    raw = pl.col(value) if isinstance(value, str) else value
    v = numeric_value(raw)
    shown = v if rounding_base is None else _half_up_expr(v, float(rounding_base), None)
    return _display(raw, v, _scaled_half_up_int(shown, 0), 0, suppressed, symbols)


def format_rate(
    value: pl.Expr | str,
    *,
    suppressed: pl.Expr | bool = False,
    decimals: int = 1,
    symbols: Symbols = SYMBOLS,
) -> pl.Expr:
    """Display string for a rate/percentage at ``decimals`` places, half up ("12.0", "low", "c").

    null -> ``x``, NaN -> ``z``, suppressed -> ``c``, exactly 0 -> ``0``, non-zero rounding to
    zero -> ``low``. Existing symbols pass through.
    """
    raw = pl.col(value) if isinstance(value, str) else value
    v = numeric_value(raw)
    return _display(raw, v, _scaled_half_up_int(v, decimals), decimals, suppressed, symbols)


def _display(
    raw: pl.Expr,
    v: pl.Expr,
    k: pl.Expr,
    decimals: int,
    suppressed: pl.Expr | bool,
    symbols: Symbols,
) -> pl.Expr:
    """The symbol cascade shared by counts and rates: ``k`` is the value scaled to an integer
    at ``decimals`` places (after any rounding to a base)."""
    supp = suppressed if isinstance(suppressed, pl.Expr) else pl.lit(bool(suppressed))
    return (
        pl.when(_existing_symbol(raw).is_not_null())
        .then(_existing_symbol(raw))
        .when(v.is_null())
        .then(pl.lit(symbols.not_available))
        .when(v.is_nan())
        .then(pl.lit(symbols.not_applicable))
        .when(supp.fill_null(False))
        .then(pl.lit(symbols.confidential))
        .when(v == 0)
        .then(pl.lit(symbols.zero))
        .when(k == 0)
        .then(pl.lit(symbols.low))
        .otherwise(_fixed_point_string(k, decimals))
    )


def ratio_from_rounded(value: pl.Expr, numerator: pl.Expr, percentage: bool, base: int) -> pl.Expr:
    """A ratio recomputed from the rounded numerator (and rounded denominator for a percentage):
    the denominator is ``numerator / value``; a zero numerator keeps the value (0)."""
    num = numerator.cast(pl.Float64, strict=False)
    num_r = _half_up_expr(num, float(base), None)
    if not percentage:  # rate per 10,000 of a public population: scale with the numerator
        return pl.when(num > 0).then(value * num_r / num).otherwise(value)
    den = 100.0 * num / value
    den_r = _half_up_expr(den, float(base), None)
    return (
        pl.when((num > 0) & (value > 0))
        .then(pl.when(den_r > 0).then(100.0 * num_r / den_r).otherwise(value))
        .otherwise(value)
    )
