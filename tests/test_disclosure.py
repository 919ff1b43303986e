"""Disclosure control: half-up rounding, symbols, and proof that suppressed cells stay hidden.

The secondary-suppression tests do not trust the module's own audit: for every protected table
they re-derive the additive equations, then check with an independent rank test that no
suppressed cell is a linear function of the published cells, and with linear programs that every
suppressed cell can take at least two values (min < max) over all non-negative tables that agree
with everything published. For two-way tables the constraint matrix is totally unimodular, so
min < max also means two different *integer* tables fit the published figures.
"""

from __future__ import annotations

import itertools
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from cinresearch.disclosure import (
    SYMBOLS,
    SdcSpec,
    apply_publication_sdc,
    format_count,
    format_rate,
    protect_cells,
    protect_table,
    recoverable_cells,
    round_half_up,
    suppress_counts,
)

# ----------------------------------------------------------------------------- helpers

T = "Total"


def table_from_interior(
    interior: np.ndarray, *, dims: tuple[str, ...] = ("r", "c")
) -> pl.DataFrame:
    """Long frame of an n-way table with Total levels on every dimension (totals are sums)."""
    shape = interior.shape
    rows = []
    levels = [[*(f"{d}{i}" for i in range(n)), T] for d, n in zip(dims, shape, strict=True)]
    for key in itertools.product(*levels):
        index = tuple(
            slice(None) if k == T else int(k[len(d) :]) for k, d in zip(key, dims, strict=True)
        )
        rows.append((*key, int(np.sum(interior[index]))))
    return pl.DataFrame(rows, schema=[*dims, "n"], orient="row")


def equations(frame: pl.DataFrame, dims: tuple[str, ...]) -> np.ndarray:
    """Additive equations (interior - total = 0) of a table, written independently of the module."""
    keys = list(frame.select(dims).iter_rows())
    index = {k: i for i, k in enumerate(keys)}
    eqs = []
    for d in range(len(dims)):
        others = {k[:d] + k[d + 1 :] for k in keys}
        for rest in others:
            total = index.get(rest[:d] + (T,) + rest[d:])
            interior = [index[k] for k in keys if k[d] != T and k[:d] + k[d + 1 :] == rest]
            if total is None or not interior:
                continue
            row = np.zeros(len(keys))
            row[interior] = 1
            row[total] = -1
            eqs.append(row)
    return np.array(eqs)


def linearly_recoverable(a: np.ndarray, hidden: np.ndarray) -> list[int]:
    """Hidden cells k with e_k in the row space of the equations restricted to hidden cells."""
    unknown = np.flatnonzero(hidden)
    sub = a[:, unknown]
    rank = np.linalg.matrix_rank(sub)
    out = []
    for j, k in enumerate(unknown):
        unit = np.zeros(len(unknown))
        unit[j] = 1
        if np.linalg.matrix_rank(np.vstack([sub, unit])) == rank:
            out.append(int(k))
    return out


def feasible_range(
    a: np.ndarray, values: np.ndarray, hidden: np.ndarray, k: int
) -> tuple[float, float]:
    """Min and max of cell k over non-negative tables matching every published cell."""
    unknown = np.flatnonzero(hidden)
    known = ~hidden
    rhs = -a[:, known] @ values[known]
    a_u = a[:, unknown]
    keep = np.any(a_u != 0, axis=1)
    c = np.zeros(len(unknown))
    c[list(unknown).index(k)] = 1
    lo = linprog(c, A_eq=a_u[keep], b_eq=rhs[keep], bounds=(0, None), method="highs")
    hi = linprog(-c, A_eq=a_u[keep], b_eq=rhs[keep], bounds=(0, None), method="highs")
    assert lo.status == 0, lo.message
    assert hi.status in (0, 3), hi.message  # 3: unbounded above (every cell of a line hidden)
    return lo.fun, (np.inf if hi.status == 3 else -hi.fun)


def assert_protected(protected: pl.DataFrame, dims: tuple[str, ...], threshold: int = 5) -> None:
    values = protected["n"].to_numpy().astype(float)
    hidden = protected["suppressed"].to_numpy()
    # primary: every count 1..threshold is hidden; zeros and nothing else are primary
    assert hidden[(values >= 1) & (values <= threshold)].all()
    if not hidden.any():
        return
    a = equations(protected, dims)
    # margin property: no line holds exactly one hidden cell
    per_line = (np.abs(a) > 0) @ hidden.astype(int)
    assert not np.any(per_line == 1), "a margin contains exactly one suppressed cell"
    # linear property: no hidden cell follows from the published cells
    assert linearly_recoverable(a, hidden) == []
    # interval property: each hidden cell can move while all cells stay non-negative
    for k in np.flatnonzero(hidden):
        lo, hi = feasible_range(a, values, hidden, int(k))
        assert lo <= values[k] <= hi
        assert hi - lo > 0.5, f"cell {k} pinned to {values[k]} by published cells"


# ----------------------------------------------------------------------------- rounding


@pytest.mark.parametrize(
    ("value", "kwargs", "expected"),
    [
        (2.5, {}, 3.0),
        (3.5, {}, 4.0),
        (-2.5, {}, -3.0),
        (25, {"base": 10}, 30),
        (15, {"base": 10}, 20),
        (45, {"base": 10}, 50),  # half-even would give 40
        (1234, {"base": 10}, 1230),
        (1235, {"base": 10}, 1240),
        (0.05, {"decimals": 1}, 0.1),
        (0.25, {"decimals": 1}, 0.3),
        (0.15, {"decimals": 1}, 0.2),  # 0.15 is stored as 0.1499999...
        (1.005, {"decimals": 2}, 1.01),  # 1.005 is stored as 1.00499999...
        (2.675, {"decimals": 2}, 2.68),
        (12.25, {"decimals": 1}, 12.3),
        (0.04, {"decimals": 1}, 0.0),
    ],
)
def test_round_half_up_scalar_expr_series(value: float, kwargs: dict, expected: float) -> None:
    assert round_half_up(value, **kwargs) == expected
    series = pl.Series([value])
    assert round_half_up(series, **kwargs).to_list() == pytest.approx([expected])
    got = pl.select(round_half_up(pl.lit(value), **kwargs)).item()
    assert got == pytest.approx(expected)
    # and the built-ins really do differ on the classic ties
    if value in (2.5, 0.25):
        assert round(value, kwargs.get("decimals", 0)) != expected
    if value == 45:
        assert round(value, -1) == 40


def test_round_half_up_types() -> None:
    assert isinstance(round_half_up(25, base=10), int)
    counts = pl.DataFrame({"n": [4, 5, 14, 15, None]})
    out = counts.select(round_half_up(pl.col("n"), base=10))
    assert out.dtypes == [pl.Int64]
    assert out["n"].to_list() == [0, 10, 10, 20, None]
    with pytest.raises(ValueError):
        round_half_up(1.0, base=10, decimals=1)


@settings(max_examples=200, deadline=None)
@given(k=st.integers(-(10**7), 10**7), scale=st.sampled_from([1, 2, 3, 4]), dp=st.integers(0, 3))
def test_round_half_up_matches_decimal_arithmetic(k: int, scale: int, dp: int) -> None:
    """For values typed with a few decimals, float rounding agrees with exact decimal rounding."""
    exact = Decimal(k).scaleb(-scale)
    expected = float(exact.quantize(Decimal(1).scaleb(-dp), rounding=ROUND_HALF_UP))
    value = float(exact)
    assert round_half_up(value, decimals=dp) == expected
    assert pl.select(round_half_up(pl.lit(value), decimals=dp)).item() == pytest.approx(
        expected, abs=1e-12
    )


# ----------------------------------------------------------------------------- formatting


def test_format_symbols_never_blank() -> None:
    frame = pl.DataFrame(
        {"v": [0.0, 0.04, 0.05, 12.25, None, float("nan"), 3.0, -1.25]},
        schema={"v": pl.Float64},
    )
    supp = pl.Series([False, False, False, False, False, False, True, False])
    out = frame.with_columns(
        rate=format_rate("v", suppressed=pl.lit(supp)),
        count=format_count("v", suppressed=pl.lit(supp)),
    )
    assert out["rate"].to_list() == ["0", "low", "0.1", "12.3", "x", "z", "c", "-1.3"]
    assert out["count"].to_list() == ["0", "low", "low", "12", "x", "z", "c", "-1"]


def test_format_rate_fixed_decimals_and_existing_symbols() -> None:
    frame = pl.DataFrame({"v": ["12", "c", "7.25", "z", None]})
    assert frame.select(format_rate("v", decimals=2))["v"].to_list() == [
        "12.00",
        "c",
        "7.25",
        "z",
        "x",
    ]


def test_suppress_counts_primary_only() -> None:
    frame = pl.DataFrame({"la": ["a", "b", "c", "d", "e"], "n": [0, 1, 5, 6, None]})
    out = suppress_counts(frame, ["n"], flag_suffix="_suppressed")
    assert out["n"].to_list() == ["0", "c", "c", "6", "x"]
    assert out["n_suppressed"].to_list() == [False, True, True, False, False]
    out3 = suppress_counts(frame, ["n"], threshold=2)
    assert out3["n"].to_list() == ["0", "c", "5", "6", "x"]


# ----------------------------------------------------------------------------- secondary


def test_protect_table_hand_worked_two_way() -> None:
    #        x   y | Total
    #   a    3  10 |  13
    #   b   20  30 |  50
    #   c    7   8 |  15
    interior = np.array([[3, 10], [20, 30], [7, 8]])
    out = protect_table(table_from_interior(interior), "n", "r", "c")
    shown = {(r, c): v for r, c, v in out.select("r", "c", "value_display").iter_rows()}
    # primary a-x (3); row a: next smallest 10; column x: next smallest 7; column y then row c
    # are balanced by c-y (8): a 2x2 block, no margin holds a single hidden cell.
    assert {k for k, v in shown.items() if v == "c"} == {
        ("r0", "c0"),
        ("r0", "c1"),
        ("r2", "c0"),
        ("r2", "c1"),
    }
    assert shown[("r1", "c0")] == "20" and shown[(T, T)] == "78"
    assert_protected(out, ("r", "c"))


def test_suppressed_total_needs_a_partner() -> None:
    # the row total is 4 (primary) while its cells are 2 and 2: both hidden too; column margins
    # then need partners.
    interior = np.array([[2, 2], [10, 12], [9, 30]])
    out = protect_table(table_from_interior(interior), "n", "r", "c")
    assert out.filter((pl.col("r") == "r0") & (pl.col("c") == T))["suppressed"].item()
    assert_protected(out, ("r", "c"))


def test_margin_rule_alone_misses_the_dumbbell() -> None:
    """Two hidden 2x2 blocks joined by one cell satisfy the margin rule but leak the joining cell."""
    interior = np.full((5, 5), 40)
    for i, j in [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2), (2, 3), (3, 2), (3, 3), (0, 2)]:
        interior[i, j] = 3
    frame = table_from_interior(interior)
    margin_only = protect_cells(frame, "n", ["r", "c"], linear_audit=False)
    leaked = margin_only.filter(recoverable_cells(margin_only, "suppressed", ["r", "c"]))
    assert leaked.select("r", "c").rows() == [("r0", "c2")]
    a = equations(margin_only, ("r", "c"))
    assert linearly_recoverable(a, margin_only["suppressed"].to_numpy()) != []

    audited = protect_cells(frame, "n", ["r", "c"])
    assert not recoverable_cells(audited, "suppressed", ["r", "c"]).any()
    assert_protected(audited, ("r", "c"))


def test_one_way_table_with_total() -> None:
    frame = pl.DataFrame({"age": ["0", "1-4", "5-9", T], "n": [4, 40, 41, 85]})
    out = protect_cells(frame, "n", ["age"])
    assert out["suppressed"].to_list() == [True, True, False, False]


def test_groups_are_protected_independently_and_unique_rows_required() -> None:
    one = table_from_interior(np.array([[3, 10], [20, 30]])).with_columns(la=pl.lit("801"))
    two = table_from_interior(np.array([[30, 10], [20, 30]])).with_columns(la=pl.lit("802"))
    out = protect_cells(pl.concat([one, two]), "n", ["r", "c"], by=["la"])
    assert out.filter(pl.col("la") == "801")["suppressed"].sum() >= 4
    assert out.filter(pl.col("la") == "802")["suppressed"].sum() == 0
    with pytest.raises(ValueError, match="unique"):
        protect_cells(pl.concat([one, one]), "n", ["r", "c"], by=["la"])


small_counts = st.one_of(st.just(0), st.integers(1, 6), st.integers(7, 60))


@st.composite
def interiors(draw: st.DrawFn, n_dims: int) -> np.ndarray:
    if n_dims == 2:
        shape = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    else:
        shape = tuple(draw(st.integers(1, 3)) for _ in range(n_dims))
    cells = draw(st.lists(small_counts, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    return np.array(cells).reshape(shape)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(interior=interiors(2))
def test_random_two_way_tables_cannot_be_recovered(interior: np.ndarray) -> None:
    protected = protect_cells(table_from_interior(interior), "n", ["r", "c"])
    assert_protected(protected, ("r", "c"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(interior=interiors(3))
def test_random_three_way_tables_cannot_be_recovered(interior: np.ndarray) -> None:
    dims = ("a", "b", "d")
    protected = protect_cells(table_from_interior(interior, dims=dims), "n", list(dims))
    assert_protected(protected, dims)


# ----------------------------------------------------------------------------- publication frames


def publication_frame() -> pl.DataFrame:
    """England + two LAs; filter ``age_band`` with Total; counts, a rate and a percentage."""
    rows = [
        # level, la, age_band, referrals, rereferrals, rate, pct
        ("National", "", "Under 5", 1235, 245, 123.45, 19.8),
        ("National", "", "5 to 17", 3, 1, 0.04, 33.3),
        ("National", "", T, 1238, 246, 100.0, 19.87),
        ("Local authority", "801", "Under 5", 4, 2, 12.0, 50.0),
        ("Local authority", "801", "5 to 17", 40, 0, 5.0, 0.0),
        ("Local authority", "801", T, 44, 2, 6.0, 4.545),
        ("Local authority", "802", "Under 5", 20, 7, 0.04, 35.0),
        ("Local authority", "802", "5 to 17", 30, None, 2.0, None),
        ("Local authority", "802", T, 50, 9, 2.5, 18.0),
    ]
    return pl.DataFrame(
        rows,
        schema=[
            "geographic_level",
            "la_code",
            "age_band",
            "referrals",
            "rereferrals",
            "rate",
            "pct",
        ],
        orient="row",
    ).with_columns(time_period=pl.lit(2024))


SPEC = SdcSpec(
    counts=("referrals", "rereferrals"),
    rates={"rate": "referrals"},
    percentages={"pct": "rereferrals"},
    filters=("age_band",),
)


def test_apply_publication_sdc_end_to_end() -> None:
    frame = publication_frame()
    out = apply_publication_sdc(frame, SPEC)
    assert out.columns == frame.columns
    cell = {
        (lvl, la, age): row
        for lvl, la, age, *row in out.select(
            "geographic_level", "la_code", "age_band", "referrals", "rereferrals", "rate", "pct"
        ).iter_rows()
    }
    # England: rounded half up to 10, primary suppression, no secondary
    assert cell[("National", "", "Under 5")][:2] == ["1240", "250"]
    assert cell[("National", "", "5 to 17")] == ["c", "c", "c", "c"]
    # ... and its rate and percentage come from the rounded counts: 100.0 x 1240 / 1238 = 100.2,
    # 100 x 250 / 1240 = 20.2 (from the unrounded 246 / 1238 they would give away 246)
    assert cell[("National", "", T)] == ["1240", "250", "100.2", "20.2"]
    # LA 801: 4 is primary, 40 secondary (the only other cell in the age margin); rates follow
    assert cell[("Local authority", "801", "Under 5")] == ["c", "c", "c", "c"]
    assert cell[("Local authority", "801", "5 to 17")] == ["c", "0", "c", "0"]
    assert cell[("Local authority", "801", T)] == ["44", "c", "6.0", "c"]
    # LA 802: unrounded; null -> x; tiny rate -> low
    assert cell[("Local authority", "802", "Under 5")] == ["20", "7", "low", "35.0"]
    assert cell[("Local authority", "802", "5 to 17")] == ["30", "x", "2.0", "x"]
    assert cell[("Local authority", "802", T)] == ["50", "9", "2.5", "18.0"]
    # never blank, only numbers or GSS symbols
    for col in ("referrals", "rereferrals", "rate", "pct"):
        assert out[col].null_count() == 0
        assert (out[col].str.len_chars() > 0).all()


def test_rounded_levels_get_secondary_when_asked() -> None:
    spec = SdcSpec.from_mapping(
        {
            "counts": ["referrals"],
            "filters": ["age_band"],
            "secondary_at_rounded_levels": True,
        }
    )
    out = apply_publication_sdc(publication_frame().drop("rereferrals", "rate", "pct"), spec)
    national = out.filter(pl.col("geographic_level") == "National")["referrals"].to_list()
    assert national == ["c", "c", "1240"]


def test_percentage_suppressed_with_denominator_and_small_complement() -> None:
    frame = pl.DataFrame(
        {
            "geographic_level": ["Local authority"] * 3,
            "la_code": ["801", "802", "803"],
            "assessments": [4, 50, 200],
            "within_45": [0, 46, 150],
            "pct_within_45": [0.0, 92.0, 75.0],
        }
    )
    spec = SdcSpec(
        counts=("assessments", "within_45"),
        percentages={"pct_within_45": "within_45"},
        denominators={"pct_within_45": "assessments"},
        suppress_small_complements=True,
    )
    out = apply_publication_sdc(frame, spec)
    assert out["pct_within_45"].to_list() == ["c", "c", "75.0"]
    assert out["assessments"].to_list() == ["c", "50", "200"]


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="unknown"):
        SdcSpec.from_mapping({"count": ["n"]})
    with pytest.raises(ValueError, match="not in frame"):
        apply_publication_sdc(pl.DataFrame({"geographic_level": ["National"]}), SPEC)
    assert SYMBOLS.all() == ("c", "z", "x", "low", "0")
