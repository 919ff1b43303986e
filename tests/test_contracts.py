"""Contract validation: the one-pass polars checks agree with pandera's own report.

``contracts.validate`` evaluates every row-wise check as a polars expression and uses pandera
only for columns and dtypes. Here pandera validates the same frames in full (``lazy=True``) as
an independent reference, on every frame a messy synthetic load validates: same issues, same
order, same rejected rows.
"""

from __future__ import annotations

from pathlib import Path

import pandera.polars as pa
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from cinresearch import contracts
from cinresearch.io.loader import load_paths
from cinresearch.store import Store

FIXTURES = Path(__file__).parent / "fixtures"


def _pandera_issues(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """Issues as pandera reports them when it validates every row itself."""
    schema, info, _ = contracts.pandera_schema(table)
    rows = []
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as err:
        for check, column, index in err.failure_cases.select("check", "column", "index").rows():
            ci = info[check if check in info else f"{check}:{column}"]
            rows.append((int(index), ci.rule, ci.severity, ci.message, ci.action))
    return pl.DataFrame(
        rows,
        schema={
            "row_index": pl.UInt32,
            "rule": pl.String,
            "severity": pl.String,
            "message": pl.String,
            "action": pl.String,
        },
        orient="row",
    ).unique(maintain_order=True)


def test_polars_checks_agree_with_pandera_on_a_messy_load(
    tmp_path: Path, demo_key, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cinresearch.synth.generate import generate

    generate(
        tmp_path / "synth", las=2, years=(2023, 2025), scale=200, seed=5, mess=True, progress=False
    )
    seen: dict[str, int] = {}
    rules: set[str] = set()
    real = contracts.validate

    def both(frame: pl.DataFrame, table: str) -> contracts.Validation:
        result = real(frame, table)
        reference = _pandera_issues(frame, table)
        key = ["row_index", "rule"]
        assert_frame_equal(result.issues.sort(key), reference.sort(key))
        seen[table] = seen.get(table, 0) + result.issues.height
        rules.update(result.issues.get_column("rule").to_list())
        return result

    monkeypatch.setattr(contracts, "validate", both)
    load_paths([tmp_path / "synth"], Store(tmp_path / "store"), demo_key, progress=False, workers=1)
    load_paths(
        [FIXTURES / "cin"], Store(tmp_path / "fixtures"), demo_key, progress=False, workers=1
    )
    assert {"children", "referrals", "assessments", "cla_episodes"} <= set(seen)
    # the mess and the fault fixtures produced real failures of many kinds to compare
    assert sum(seen.values()) >= 20 and len(rules) >= 8, (seen, rules)


def test_a_wrong_dtype_is_a_whole_frame_error() -> None:
    frame = pl.DataFrame({"child_id": [1, 2]})  # an integer where the contract says string
    with pytest.raises(ValueError, match="contract disabilities"):
        contracts.validate(frame, "disabilities")
