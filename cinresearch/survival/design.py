"""Design matrices for regression models, complete cases, and tidy coefficient tables.

Categorical covariates (string, categorical, enum) are dummy-coded against a reference level
(by default the most frequent; ties broken by enum order, else sorted order), terms named
``column[level]``; booleans become 0/1 named ``column``; numeric columns pass through; terms
constant in the analysed rows are dropped with a warning. Rows with a null in any model
column are dropped with a warning (complete-case analysis).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl


@dataclass(frozen=True)
class _Design:
    X: np.ndarray
    terms: list[str]
    covariate: list[str]
    reference_of: list[str | None]
    reference: dict[str, str]


def _is_categorical(dtype: pl.DataType) -> bool:
    return dtype == pl.String or dtype == pl.Categorical or isinstance(dtype, pl.Enum)


def _level_order(s: pl.Series) -> list[str]:
    if isinstance(s.dtype, pl.Enum):
        have = set(s.drop_nulls().cast(pl.String).unique().to_list())
        return [c for c in s.dtype.categories.to_list() if c in have]
    return sorted(s.drop_nulls().cast(pl.String).unique().to_list())


def _design(
    df: pl.DataFrame, covariates: Sequence[str], reference: Mapping[str, Any] | None
) -> _Design:
    """Build a numeric design matrix from polars columns (see module conventions)."""
    reference = dict(reference or {})
    unknown = set(reference) - set(covariates)
    if unknown:
        raise ValueError(f"reference given for column(s) not in covariates: {sorted(unknown)}")
    exprs, terms, cov_of, ref_of = [], [], [], []
    chosen: dict[str, str] = {}
    for c in covariates:
        s = df.get_column(c)
        if _is_categorical(s.dtype):
            levels = _level_order(s)
            if c in reference:
                ref = str(reference[c])
                if ref not in levels:
                    raise ValueError(
                        f"reference level {ref!r} for {c!r} not found; levels: {levels}"
                    )
            else:
                counts = dict(s.cast(pl.String).value_counts().iter_rows())  # level -> count
                top = max(counts.get(lv, 0) for lv in levels)
                ref = next(lv for lv in levels if counts.get(lv, 0) == top)
            chosen[c] = ref
            for lv in levels:
                if lv == ref:
                    continue
                exprs.append((pl.col(c).cast(pl.String) == lv).cast(pl.Float64))
                terms.append(f"{c}[{lv}]")
                cov_of.append(c)
                ref_of.append(ref)
        elif s.dtype == pl.Boolean or s.dtype.is_numeric():
            exprs.append(pl.col(c).cast(pl.Float64))
            terms.append(c)
            cov_of.append(c)
            ref_of.append(None)
        else:
            raise TypeError(f"covariate {c!r} has unsupported type {s.dtype}")
    if not exprs:
        X = np.zeros((df.height, 0))
    else:
        X = df.select([e.alias(f"x{i}") for i, e in enumerate(exprs)]).to_numpy().astype(np.float64)
    keep = [i for i in range(X.shape[1]) if np.ptp(X[:, i]) > 0] if X.shape[0] else []
    dropped = [terms[i] for i in range(X.shape[1]) if i not in keep]
    if dropped:
        warnings.warn(
            f"covariate term(s) {dropped} are constant in the analysed rows and were dropped",
            UserWarning,
            stacklevel=3,
        )
    return _Design(
        X=X[:, keep],
        terms=[terms[i] for i in keep],
        covariate=[cov_of[i] for i in keep],
        reference_of=[ref_of[i] for i in keep],
        reference=chosen,
    )


def _complete_cases(df: pl.DataFrame, columns: Sequence[str], what: str) -> pl.DataFrame:
    cols = list(dict.fromkeys(columns))
    if not cols:
        return df
    mask = pl.any_horizontal([pl.col(c).is_null() for c in cols])
    n_drop = df.select(mask.sum()).item()
    if n_drop:
        warnings.warn(
            f"{what}: {n_drop} row(s) with missing values in {cols} were dropped "
            "(complete-case analysis)",
            UserWarning,
            stacklevel=3,
        )
        df = df.filter(~mask)
    return df


def _coef_table(
    terms: list[str],
    coef: np.ndarray,
    se: np.ndarray,
    p: np.ndarray,
    reference_of: list[str | None],
    z: float,
    ratio_name: str,
) -> pl.DataFrame:
    with np.errstate(over="ignore"):  # a separated term gives an infinite ratio/limit
        ratio, lower, upper = np.exp(coef), np.exp(coef - z * se), np.exp(coef + z * se)
    return pl.DataFrame(
        {
            "term": terms,
            ratio_name: ratio,
            "lower": lower,
            "upper": upper,
            "p": p,
            "coef": coef,
            "se": se,
            "reference": reference_of,
        },
        schema={
            "term": pl.String,
            ratio_name: pl.Float64,
            "lower": pl.Float64,
            "upper": pl.Float64,
            "p": pl.Float64,
            "coef": pl.Float64,
            "se": pl.Float64,
            "reference": pl.String,
        },
    )
