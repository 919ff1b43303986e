"""``children_longitudinal``: one row per child per LA with stable characteristics.

Rule — **most recent non-missing value across returns**: for each column, the value from the
highest ``census_year`` in which it is present. Placeholders count as missing when a real value
exists in another return: sex ``U`` (not known / unborn) gives way to ``M``/``F`` and ethnicity
``NOBT``/``REFU`` to a recorded code, so a child reported unborn and later born gets the sex and
birth date recorded after birth. Ties within one return (a duplicated child, rule 8510) take the
greatest value, so the result never depends on load order.

``disabled`` and ``disability_types`` come together from the child's latest return (a return
with no disability codes means "no disability", which is a value, not a missing one).
"""

from __future__ import annotations

import polars as pl

from cinresearch import codes

CHILD_KEY = ["child_id", "la_code"]

#: placeholder codes that count as "missing" when another return has a real value
PLACEHOLDERS: dict[str, tuple[str, ...]] = {"sex": ("U",), "ethnicity": ("NOBT", "REFU")}

COLUMNS = [
    "child_id",
    "la_code",
    "upn_hash",
    "former_upn_hash",
    "birth_date",
    "expected_birth_date",
    "sex",
    "ethnicity",
    "ethnicity_group",
    "death_date",
    "disabled",
    "disability_types",
    "first_census_year",
    "last_census_year",
]


def _conditions(columns: list[str]) -> dict[str, tuple[str, pl.Expr]]:
    """Candidate name → (column, "value counts" condition); real values before placeholders."""
    out: dict[str, tuple[str, pl.Expr]] = {}
    for column in columns:
        present = pl.col(column).is_not_null()
        if column in PLACEHOLDERS:
            out[f"{column}__real"] = (column, present & ~pl.col(column).is_in(PLACEHOLDERS[column]))
        out[f"{column}__any"] = (column, present)
    return out


def ethnicity_group_expr(column: str = "ethnicity") -> pl.Expr:
    """DfE statistics group of an ethnicity code (``Unknown`` when not a known code)."""
    return codes.group_expr(column, "ethnicity", default="Unknown").alias("ethnicity_group")


def build_children_longitudinal(
    children: pl.LazyFrame, disabilities: pl.LazyFrame | None = None
) -> pl.LazyFrame:
    """One row per (child_id, la_code) — see the module docstring for the rule."""
    children = children.with_columns(pl.col("census_year").cast(pl.Int16))
    stable = [
        "upn_hash",
        "former_upn_hash",
        "birth_date",
        "expected_birth_date",
        "sex",
        "ethnicity",
        "death_date",
    ]
    present = children.collect_schema().names()
    stable = [c for c in stable if c in present]
    # Two passes of plain group-by maxima (no per-group sorting, independent of row order):
    # (1) per child and candidate, the latest census year with a value; (2) the value in that
    # year (the greatest, should one return hold the child twice).
    year = pl.col("census_year")
    conds = _conditions(stable)
    base = children.with_columns(
        pl.when(cond).then(year).alias(f"_y_{name}") for name, (_, cond) in conds.items()
    )
    best = base.group_by(CHILD_KEY).agg(
        *[pl.col(f"_y_{name}").max().alias(f"_best_{name}") for name in conds],
        first_census_year=year.min(),
        last_census_year=year.max(),
    )
    picked = (
        base.join(best, on=CHILD_KEY, how="inner")
        .group_by(CHILD_KEY)
        .agg(
            *[
                pl.when(pl.col(f"_y_{name}") == pl.col(f"_best_{name}"))
                .then(pl.col(column))
                .max()
                .alias(name)
                for name, (column, _) in conds.items()
            ],
            # disabled as in the latest return (any row of it, should the child appear twice)
            disabled=pl.when(year == pl.col("last_census_year")).then(pl.col("disabled")).max(),
            first_census_year=pl.col("first_census_year").first(),
            last_census_year=pl.col("last_census_year").first(),
        )
    )
    out = picked.with_columns(
        pl.coalesce([pl.col(n) for n in (f"{c}__real", f"{c}__any") if n in conds]).alias(c)
        for c in stable
    )
    if disabilities is not None:
        types = (
            disabilities.with_columns(pl.col("census_year").cast(pl.Int16))
            .join(out.select(*CHILD_KEY, "last_census_year"), on=CHILD_KEY)
            .filter(pl.col("census_year") == pl.col("last_census_year"))
            .group_by(CHILD_KEY)
            .agg(disability_types=pl.col("disability").unique().sort())
        )
        out = out.join(types, on=CHILD_KEY, how="left")
    else:
        out = out.with_columns(disability_types=pl.lit(None, dtype=pl.List(pl.String)))
    out = out.with_columns(
        pl.col("disability_types").fill_null(pl.lit([], dtype=pl.List(pl.String))),
        ethnicity_group_expr(),
    )
    for column in COLUMNS:
        if column not in out.collect_schema().names():
            out = out.with_columns(pl.lit(None, dtype=pl.String).alias(column))
    return out.select(COLUMNS).sort("la_code", "child_id")
