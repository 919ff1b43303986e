"""The entry points: every official measure for census years, and a unit set's records."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import polars as pl

from cinresearch.indicators.aggregate import _compute_year, _order, _region_map
from cinresearch.indicators.definitions import load_definitions
from cinresearch.indicators.measures import Definitions
from cinresearch.indicators.output import AS_RETURNED, BASES, OUTPUT_SCHEMA, REVISED
from cinresearch.indicators.sources import inputs_as_returned, prepare_inputs, return_frames
from cinresearch.indicators.units import UNIT_SETS


def unit_records(
    data: Any,
    unit_set: str,
    census_year: int,
    definitions: Definitions | None = None,
    basis: str = AS_RETURNED,
) -> pl.DataFrame:
    """The records a unit set counts for census year ``Y`` (for checks and drill-down).

    ``basis`` as in :func:`compute_indicators`. Contains pseudonymised ``child_id``: analysis
    use only, never for publication.
    """
    if basis not in BASES:
        raise ValueError(f"basis must be one of {BASES}, got {basis!r}")
    defs = definitions or load_definitions()
    if basis == REVISED:
        inp = prepare_inputs(data, defs)
    else:
        inp = inputs_as_returned(data, census_year, defs)
    func, needs = UNIT_SETS[unit_set]
    if needs is not None and getattr(inp, needs) is None:
        raise ValueError(f"unit set {unit_set!r} needs the {needs!r} table")
    return func(inp, census_year, defs).collect()


def compute_indicators(
    store_or_frames: Any,
    census_year: int | Iterable[int],
    geography: Sequence[str] = ("national", "la"),
    *,
    measures: Sequence[str] | None = None,
    families: Sequence[str] | None = None,
    regions: Mapping[str, str] | pl.DataFrame | None = None,
    definitions: Definitions | None = None,
    basis: str = AS_RETURNED,
) -> pl.DataFrame:
    """All official measures (or the ``measures``/``families`` chosen) for census year(s) ``Y``.

    ``basis="as_returned"`` (the default, as DfE publishes) computes year ``Y`` from the year-Y
    return alone (:func:`inputs_as_returned`): loading later returns never changes it.
    ``basis="revised"`` uses the returns merged across all loaded years (latest return wins:
    later closures, corrections and characteristics apply to earlier years). Every row carries
    the basis in the ``basis`` column.

    ``geography`` picks levels from ``national``, ``regional`` and ``la``. Regions come from
    ``regions`` (LA code → region code, as a mapping or a frame with ``la_code, region_code``),
    else from the LA reference list (``data_contracts/codes/la_codes.yaml`` via
    :func:`cinresearch.geography.la_lookup`); LAs without a region are left out of the
    Regional rows with a warning. LA rows carry their region code whenever one is known.
    Returns the tidy frame described in the module docstring.
    """
    if basis not in BASES:
        raise ValueError(f"basis must be one of {BASES}, got {basis!r}")
    defs = definitions or load_definitions()
    chosen = list(defs.measures)
    if families is not None:
        unknown = set(families) - set(defs.families)
        if unknown:
            raise KeyError(f"unknown measure families: {sorted(unknown)}")
        chosen = [m for m in chosen if m.family in set(families)]
    if measures is not None:
        wanted = [defs.measure(x) for x in measures]
        chosen = [m for m in chosen if m in wanted]
    years = [census_year] if isinstance(census_year, int) else list(census_year)
    region_of = _region_map(regions)
    parts: list[pl.DataFrame] = []
    if basis == REVISED:
        inp = prepare_inputs(store_or_frames, defs)
        for y in years:
            parts.extend(_compute_year(inp, int(y), chosen, geography, region_of, defs))
    else:
        returns = return_frames(store_or_frames).up_to(max(int(y) for y in years))
        for y in years:
            inp_y = inputs_as_returned(returns, int(y), defs)
            parts.extend(_compute_year(inp_y, int(y), chosen, geography, region_of, defs))
    if not parts:
        return pl.DataFrame(schema=OUTPUT_SCHEMA)
    out = pl.concat(parts, how="vertical").with_columns(pl.lit(basis).alias("basis"))
    return _order(out, defs).cast(OUTPUT_SCHEMA)  # type: ignore[arg-type]
