"""Column-wise pseudonymisation gives exactly the per-value digests and UPN checks."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cinresearch import pseudonymise
from cinresearch.pseudonymise import DEMO_KEY, Pseudonymiser, make_upn, upn_is_valid, upn_valid_expr

KEYS = [Pseudonymiser(DEMO_KEY), Pseudonymiser(b"k"), Pseudonymiser(b"x" * 100)]
_VALUES = st.lists(st.one_of(st.none(), st.text(max_size=40)), max_size=30)


@pytest.mark.parametrize("native", [True, False], ids=["compiled", "python"])
@settings(max_examples=60, deadline=None)
@given(values=_VALUES, prefix=st.text(max_size=5), key_index=st.integers(0, len(KEYS) - 1))
def test_hash_series_equals_per_value_digests(native, values, prefix, key_index) -> None:
    key = KEYS[key_index]
    if not native:
        original = pseudonymise._native
        pseudonymise._native = lambda: None
    elif pseudonymise._native() is None:
        pytest.skip("compiled extension not built")
    try:
        got = key.hash_series("child", pl.Series("v", values, dtype=pl.String), prefix=prefix)
    finally:
        if not native:
            pseudonymise._native = original
    expected = [None if v is None else key._digest("child", prefix + v) for v in values]
    assert got.to_list() == expected
    assert got.name == "v"


def test_child_ids_match_the_documented_scheme() -> None:
    key = KEYS[0]
    series = pl.Series(["A1", None, "ü-7"])
    assert key.hash_series("child", series, prefix="201\x1f").to_list() == [
        key.child_id("201", "A1"),
        None,
        key.child_id("201", "ü-7"),
    ]


_UPN_CHARS = "ABCDEFGHJKLMNPQRTUVWXYZIOS0123456789 abcx\u017f"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet=_UPN_CHARS, min_size=11, max_size=15),
            st.builds(
                make_upn,
                st.sampled_from(["201", "999", "873"]),
                st.integers(0, 9999),
                st.integers(0, 99),
                st.integers(0, 999),
            ),
            st.none(),
        ),
        max_size=20,
    )
)
def test_upn_check_expression_equals_the_python_check(upns) -> None:
    got = pl.select(upn_valid_expr(pl.Series(upns, dtype=pl.String))).to_series().to_list()
    assert got == [None if u is None else upn_is_valid(u) for u in upns]
