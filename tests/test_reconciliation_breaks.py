"""Each stage's reconciliation catches a record lost on purpose (load, journeys, cohorts)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from cinresearch import cohorts, contracts
from cinresearch.io.cin import reader
from cinresearch.pseudonymise import load_key

FIXTURE = Path(__file__).parent / "fixtures" / "cin" / "cin_2024_minimal.xml"


def test_load_reconciliation_flags_a_dropped_row(monkeypatch: pytest.MonkeyPatch) -> None:
    honest = reader.read_cin_xml(FIXTURE, load_key(demo=True))
    assert honest.counts()["balanced"]
    real_conform = contracts.conform

    def losing_conform(frame: pl.DataFrame, table: str) -> pl.DataFrame:
        out = real_conform(frame, table)
        return out.head(out.height - 1) if table == "cpp_reviews" else out  # lose one review

    monkeypatch.setattr(reader.contracts, "conform", losing_conform)
    broken = reader.read_cin_xml(FIXTURE, load_key(demo=True))
    rec = broken.reconciliation.filter(pl.col("element") == "CPPreviewDate").row(0, named=True)
    assert (rec["read"], rec["loaded"], rec["balanced"]) == (2, 1, False)
    assert not broken.counts()["balanced"]


def test_cohort_reconciliation_raises_on_a_lost_subject() -> None:
    outcome = cohorts.define_outcome("cpp")
    in_cohort = pl.DataFrame({"episode_id": ["a", "b"]})
    frame = pl.DataFrame({"end_reason": ["outcome"]})  # one of the two never came out
    excluded = pl.DataFrame(schema={"reason": pl.String})
    with pytest.raises(AssertionError, match="does not add up"):
        cohorts.frame._reconcile(2, {}, in_cohort, excluded, frame, [], outcome)
    # and the honest version passes
    frame_ok = pl.DataFrame({"end_reason": ["outcome", "censored: data end"]})
    table = cohorts.frame._reconcile(2, {}, in_cohort, excluded, frame_ok, [], outcome)
    assert table.filter(pl.col("stage") == "rows out")["n"].item() == 2
