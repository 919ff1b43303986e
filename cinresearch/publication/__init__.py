"""Explore Education Statistics (EES) open-data files and report-ready tables.

``to_ees`` adds the standard EES columns to a tidy frame, in this order::

    time_period, time_identifier, geographic_level, country_code, country_name,
    region_code, region_name, old_la_code, new_la_code, la_name, <filters>, <indicators>

``write_ees_csv`` checks a frame against the EES rules and writes ``<name>.csv`` and
``<name>.meta.csv`` (UTF-8, lower-case snake_case names, indicator cells never blank).
Run tables through disclosure control first (:func:`cinresearch.disclosure.protect_publication`
for all files of a publication together, or ``apply_publication_sdc`` for a lone table), so
indicators are already rounded, suppressed and carry symbols.

Geography columns by level (conventions from ``data_contracts/publication.yaml``): National rows
leave the region and LA columns empty; Regional rows fill ``region_code``/``region_name``; LA rows
fill the LA columns and their region. LA names, ONS codes and regions come from
``data_contracts/codes/la_codes.yaml`` (via :mod:`cinresearch.geography`), chosen for the row's
census year (codes changed at reorganisations, e.g. North Yorkshire E10000023 -> E06000065 from
2024). An LA code missing from that list (e.g. a synthetic "9xx" code) gets ``la_name = "Local
authority <code>"`` and empty ``new_la_code``/``region_code``/``region_name`` (unless a region
column is supplied), with an :class:`UnknownLACodeWarning`. Geography columns are text, not indicators, so empty is allowed
there; indicator cells must hold a number or a GSS symbol. ``time_period`` is written as text
("2024").
"""

from __future__ import annotations

from cinresearch.publication.ees import (
    UnknownLACodeWarning,
    ees_conventions,
    styled_table_html,
    to_ees,
    write_ees_csv,
)
from cinresearch.publication.indicator_tables import (
    OVERLAPPING_LEVELS,
    REVISED_LABEL,
    publication_tables,
    write_indicator_tables,
)

__all__ = [
    "OVERLAPPING_LEVELS",
    "REVISED_LABEL",
    "UnknownLACodeWarning",
    "ees_conventions",
    "publication_tables",
    "styled_table_html",
    "to_ees",
    "write_ees_csv",
    "write_indicator_tables",
]
