"""Unit tests for cinresearch.report.scope: the synthetic-data check, the notebook parameters
checked against a store, cohort windows, geography and census-year helpers, on tiny stores whose
manifests are written by hand."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from cinresearch.pseudonymise import DEMO_KEY, Pseudonymiser
from cinresearch.report import scope
from cinresearch.store import Store


def commit_input(
    store: Store, key: str, kind: str, *, year=None, la=None, key_id=None, counts=None
):
    """Record an input in the store's manifest without any table (what the helpers read)."""
    detail = {"key_id": key_id} if key_id else {}
    store.commit_input(
        key,
        file=f"{key}.xml",
        sha256=key,
        kind=kind,
        frames={},
        census_year=year,
        la_code=la,
        counts=counts or {},
        detail=detail,
    )


@pytest.fixture
def demo_id() -> str:
    return Pseudonymiser(DEMO_KEY).key_id


def test_is_synthetic_only_when_every_keyed_input_used_the_demo_key(tmp_path, demo_id):
    store = Store(tmp_path / "s")
    assert not scope.is_synthetic(store)  # empty store: treated as real
    commit_input(store, "population_2018", "population")  # no key id: does not decide
    assert not scope.is_synthetic(store)
    commit_input(store, "cin_2018_201", "cin_xml", year=2018, la="201", key_id=demo_id)
    commit_input(store, "cla_2018_201", "ssda903_episodes", year=2018, la="201", key_id=demo_id)
    assert scope.is_synthetic(store) and scope.is_synthetic(str(store.root))
    commit_input(store, "cin_2019_201", "cin_xml", year=2019, la="201", key_id="0123456789ab")
    assert not scope.is_synthetic(store)  # one real key makes the whole store real


def test_demo_key_id_is_the_manifest_key_id(demo_id):
    assert scope.demo_key_id() == demo_id and len(demo_id) == 12


def test_check_parameters(tmp_path, demo_id):
    store = Store(tmp_path / "s")
    with pytest.raises(ValueError, match="not a store"):
        scope.check_parameters(store, 2019, "ENG")
    for year, la in ((2018, "201"), (2019, "201"), (2019, "890")):
        commit_input(store, f"cin_{year}_{la}", "cin_xml", year=year, la=la, key_id=demo_id)
    assert scope.census_years_in_store(store) == [2018, 2019]
    assert scope.la_codes_in_store(store) == ["201", "890"]
    assert scope.check_parameters(store, 2019, "eng") == (2019, "ENG")
    assert scope.check_parameters(store, "2018", 890) == (2018, "890")
    assert scope.check_parameters(store, 2018, "England") == (2018, "ENG")
    with pytest.raises(ValueError, match=r"census_year 2020 .*\[2018, 2019\]"):
        scope.check_parameters(store, 2020, "ENG")
    with pytest.raises(ValueError, match="la_code '999'"):
        scope.check_parameters(store, 2019, "999")


def test_cohort_window():
    assert scope.cohort_window(2021) == (2019, 2021)
    assert scope.cohort_window(2021, 1) == (2021, 2021)
    assert scope.cohort_window(2021, (2020, 2018)) == (2018, 2020)
    assert scope.cohort_window(2019, None, available=[2018, 2019, 2020]) == (2018, 2019)
    assert scope.cohort_window(2021, (2015, 2030), available=[2018, 2021]) == (2018, 2021)
    with pytest.raises(ValueError):
        scope.cohort_window(2021, 0)
    with pytest.raises(ValueError):
        scope.cohort_window(2021, (2015, 2016), available=[2018, 2021])


def test_geography_helpers():
    frame = pl.DataFrame({"la_code": ["201", "890", "890"], "n": [1, 2, 3]})
    assert scope.for_geography(frame, "ENG").height == 3
    assert scope.for_geography(frame, "890")["n"].to_list() == [2, 3]
    assert scope.geography_label("ENG") == "England"
    assert scope.geography_label("890", synthetic=True) == "LA 890 (synthetic)"
    assert scope.geography_label("890") == "Blackpool (890)"
    assert scope.rounding_base_for("ENG") == 10 and scope.rounding_base_for("890") is None
    assert scope.year_label(2021) == "2020-21"
    header = scope.report_header(2021, "ENG", True, ["**Cohort:** x"])
    assert "2020-21" in header and "**Cohort:** x" in header and "Synthetic data" in header
    assert "Synthetic data" not in scope.report_header(2021, "ENG", False)


def test_census_year_and_age_at_31_march():
    frame = pl.DataFrame(
        {
            "d": [date(2017, 3, 31), date(2017, 4, 1), date(2018, 3, 31)],
            "birth_date": [date(2010, 3, 31), date(2010, 4, 1), None],
            "census_year": [2017, 2018, 2018],
        }
    )
    out = frame.select(
        y=scope.census_year_expr("d"), age=scope.age_at_31_march_expr("birth_date", "census_year")
    )
    assert out["y"].to_list() == [2017, 2018, 2018]
    assert out["age"].to_list() == [7, 7, None]
