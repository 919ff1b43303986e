"""Official CIN census measures for a census year, by England, region and local authority.

The definitions (numerators, denominators, filters, units, decimal places, bands) live in
``data_contracts/indicators.yaml``; this module implements the *unit sets* they count (which
records are in scope for census year ``Y``, with which flags and breakdown columns) and the
generic aggregation (count, rate per 10,000, percent, share, quantile).

Census year ``Y`` is the collection year ending 31 March ``Y`` (2018 = 2017-18); its window is
1 April ``Y-1`` .. 31 March ``Y`` inclusive. Every measure is computed per LA; England and regions
are sums of their LAs' numerators and denominators (a child served by two LAs counts twice), and
medians/percentiles pool the LAs' records. Values are unrounded: publication rounding and
suppression belong to :mod:`cinresearch.disclosure`.

Rates use the ONS mid-year population aged 0-17 for the calendar year before ``Y`` ends
(mid-2017 for 2017-18); when an LA has no estimate for that year the nearest available year is
used (ties: the earlier year) — see :func:`population_under_18`. The national/regional rate
denominator is the sum over the LAs that returned data in ``Y``; it is empty if any of them has
no population at all.

Which return counts (``basis``): by default (``as_returned``, as DfE) year ``Y`` is computed
from the year-Y return alone — the loaded tables' rows with ``census_year == Y``, with the
closure reasons, categories, factors and child characteristics (birth dates, sex, disability)
recorded in that return; earlier returns serve only look-backs (re-referral, an earlier CP
plan), later returns are never read (:func:`inputs_as_returned`). ``basis="revised"`` uses the
inputs below, merged across all loaded returns, and is labelled so in the ``basis`` column.

Inputs for the revised basis: the derived ``episodes`` table (or, failing that, the loaded
``referrals`` and ``children`` tables, de-duplicated here with "latest return wins"), and the nested
``assessments``, ``section47`` and ``cp_plans`` tables (merged or as loaded; de-duplication on
their natural keys is idempotent), plus ``population``. Pass a :class:`~cinresearch.store.Store`,
a store path, or a mapping of table name to frame.

Output (tidy, one row per geography x measure x breakdown level)::

    geographic_level  "National" | "Regional" | "Local authority"
    region_code       str (null for National; LA rows carry it when their region is known)
    la_code           str (Local authority rows only)
    census_year       i16
    measure           str (id in indicators.yaml)
    breakdown         str ("total", "age_band", "sex", ...)
    breakdown_level   str ("Total", "1-4", "M", ...)
    numerator         f64 (count; null for quantiles)
    denominator       f64 (population, base count, or number of records behind a quantile)
    value             f64 (count, rate per 10,000, percent, or working days)
    unit              str ("count", "rate_per_10000", "percent", "working_days")
    basis             str ("as_returned" or "revised")

Modules: :mod:`~cinresearch.indicators.definitions` reads indicators.yaml into
:mod:`~cinresearch.indicators.measures`; :mod:`~cinresearch.indicators.sources` builds the
:mod:`~cinresearch.indicators.inputs` for either basis; :mod:`~cinresearch.indicators.units`
has the unit sets (with :mod:`~cinresearch.indicators.bands` for windows, ages and bands);
:mod:`~cinresearch.indicators.aggregate` turns them into rows (rates over
:mod:`~cinresearch.indicators.population`); :mod:`~cinresearch.indicators.compute` is the entry
point, :mod:`~cinresearch.indicators.families` one function per measure family, and
:mod:`~cinresearch.indicators.output` the output columns, geography levels and bases.
"""

from cinresearch.indicators.bands import (
    age_at,
    age_band_expr,
    census_window,
    month_duration_band_expr,
    working_day_band_expr,
)
from cinresearch.indicators.compute import compute_indicators, unit_records
from cinresearch.indicators.definitions import (
    DEFINITIONS_PATH,
    indicator_metadata,
    load_definitions,
)
from cinresearch.indicators.families import (
    assessed_not_in_need,
    assessment_factors,
    assessments,
    children_in_need_at_31_march,
    closure_reasons,
    cpp_at_31_march,
    cpp_during_year,
    cpp_ending,
    cpp_starting,
    episodes_in_year,
    icpcs,
    re_referrals,
    referrals,
    referrals_nfa,
    section47,
)
from cinresearch.indicators.inputs import EPISODE_INPUT_COLUMNS, IndicatorInputs
from cinresearch.indicators.measures import Definitions, Measure
from cinresearch.indicators.output import (
    AS_RETURNED,
    BASES,
    ENGLAND_CODE,
    GEOGRAPHY_LEVELS,
    LOCAL_AUTHORITY,
    NATIONAL,
    OUTPUT_SCHEMA,
    REGIONAL,
    REVISED,
    basis_note,
)
from cinresearch.indicators.population import population_under_18
from cinresearch.indicators.sources import (
    ReturnFrames,
    inputs_as_returned,
    prepare_inputs,
    return_frames,
)
from cinresearch.indicators.units import UNIT_SETS, UnitSet

__all__ = [
    "AS_RETURNED",
    "BASES",
    "DEFINITIONS_PATH",
    "ENGLAND_CODE",
    "EPISODE_INPUT_COLUMNS",
    "GEOGRAPHY_LEVELS",
    "LOCAL_AUTHORITY",
    "NATIONAL",
    "OUTPUT_SCHEMA",
    "REGIONAL",
    "REVISED",
    "UNIT_SETS",
    "Definitions",
    "IndicatorInputs",
    "Measure",
    "ReturnFrames",
    "UnitSet",
    "age_at",
    "age_band_expr",
    "assessed_not_in_need",
    "assessment_factors",
    "assessments",
    "basis_note",
    "census_window",
    "children_in_need_at_31_march",
    "closure_reasons",
    "compute_indicators",
    "cpp_at_31_march",
    "cpp_during_year",
    "cpp_ending",
    "cpp_starting",
    "episodes_in_year",
    "icpcs",
    "indicator_metadata",
    "inputs_as_returned",
    "load_definitions",
    "month_duration_band_expr",
    "population_under_18",
    "prepare_inputs",
    "re_referrals",
    "referrals",
    "referrals_nfa",
    "return_frames",
    "section47",
    "unit_records",
    "working_day_band_expr",
]
