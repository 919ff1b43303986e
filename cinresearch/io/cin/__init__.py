"""CIN census XML returns → validated, pseudonymised tables.

The modules follow the flow of one return: :mod:`.schema` (element names → raw columns, in one
place for every reader), :mod:`.header`, the readers — :mod:`.native` (compiled, ``_cinfast``),
:mod:`.polars_reader` (polars, where the extension was not built), :mod:`.lxml_reader` (any layout,
exact errors) — and :mod:`.parallel` (byte ranges on several processes), then
:mod:`.normalise` (types, contract rules, rejects), :mod:`.cross_record_rules`, and
:mod:`.reader` with :func:`read_cin_xml`, which runs them all.
"""

from cinresearch.io.cin.reader import CinLoad, read_cin_xml
from cinresearch.io.cin.schema import CIN_TABLES, ELEMENT_TABLE, KNOWN_YEARS, OPTIONAL_TABLES
from cinresearch.io.errors import CinFileError

__all__ = [
    "CIN_TABLES",
    "ELEMENT_TABLE",
    "KNOWN_YEARS",
    "OPTIONAL_TABLES",
    "CinFileError",
    "CinLoad",
    "read_cin_xml",
]
