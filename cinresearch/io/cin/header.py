"""The header of a CIN return: LA, census year, reference date, and what the loader decided.

DfE rule 100 and its neighbours are applied here, as notes rather than failures where the
return can still be placed: a ``ReferenceDate`` that is not 31 March, a missing ``Year`` (taken
from ``ReferenceDate``), a ``Year`` that disagrees with ``ReferenceDate`` (``Year`` wins). A
header that names no LA, no year, an unsupported year or another collection is refused as a
:class:`~cinresearch.io.errors.CinFileError` (nothing of the file is loaded).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, datetime

from lxml import etree

from cinresearch.io.cin.schema import KNOWN_YEARS, local_name
from cinresearch.io.errors import CinFileError


@dataclass
class Header:
    """Where and when a return belongs: LA, census year (year ending 31 March) and its period."""

    la_code: str
    census_year: int
    reference_date: date
    collection_start: date
    line: int | None
    notes: list[str] = field(default_factory=list)
    #: the header's own ReferenceDate when it parsed (``reference_date`` is always 31 March)
    reference_date_given: date | None = None
    #: Source/DateTime as ISO text (when the return was produced), None if absent or invalid
    produced_at: str | None = None


def _text(elem: etree._Element) -> str | None:
    text = elem.text
    if text is None:
        return None
    text = text.strip()
    return text or None


def parse_header(elem: etree._Element, path: str | os.PathLike[str]) -> Header:
    """The :class:`Header` of a parsed ``<Header>`` element (raises CinFileError if unusable)."""
    values: dict[str, str | None] = {}
    for node in elem.iter():
        tag = local_name(node.tag)
        if tag in {"Collection", "Year", "ReferenceDate", "LEA", "DateTime"} and tag not in values:
            values[tag] = _text(node)
    notes = []
    la = values.get("LEA")
    if not la or not la.isascii() or not la.isdigit() or len(la) != 3:
        raise CinFileError(
            path, elem.sourceline, f"Header/Source/LEA must be a 3-digit LA number, got {la!r}"
        )
    year_text = values.get("Year")
    ref_text = values.get("ReferenceDate")
    ref: date | None = None
    if ref_text:
        try:
            ref = date.fromisoformat(ref_text)
        except ValueError:
            notes.append(f"ReferenceDate {ref_text!r} is not a date; using 31 March of Year")
    if year_text and year_text.isascii() and year_text.isdigit():
        year = int(year_text)
    elif ref is not None:
        year = ref.year if ref.month <= 3 else ref.year + 1  # the year ending 31 March after it
        notes.append(f"header Year missing; census year {year} taken from ReferenceDate {ref_text}")
    else:
        raise CinFileError(
            path, elem.sourceline, "Header has neither CollectionDetails/Year nor ReferenceDate"
        )
    if year not in KNOWN_YEARS:
        raise CinFileError(
            path,
            elem.sourceline,
            f"census year {year} is not supported (supported: {KNOWN_YEARS[0]}-{KNOWN_YEARS[-1]})",
        )
    expected_ref = date(year, 3, 31)
    if ref is not None and ref != expected_ref:
        if year_text and ref.month == 3 and ref.day == 31:
            notes.append(
                f"rule 100: header Year {year} disagrees with ReferenceDate {ref}; census year "
                f"{year} taken from Year, collection period {date(year - 1, 4, 1)} to {expected_ref}"
            )
        else:
            notes.append(
                f"rule 100: ReferenceDate {ref} is not 31 March {year}; using {expected_ref}"
            )
    produced_at = _produced_at(values.get("DateTime"))
    if values.get("DateTime") and produced_at is None:
        notes.append("header DateTime is not a date-time; ignored")
    collection = values.get("Collection")
    if collection and collection.upper() != "CIN":
        raise CinFileError(path, elem.sourceline, f"Header Collection is {collection!r}, not CIN")
    return Header(
        la_code=la,
        census_year=year,
        reference_date=expected_ref,
        collection_start=date(year - 1, 4, 1),
        line=elem.sourceline,
        notes=notes,
        reference_date_given=ref,
        produced_at=produced_at,
    )


def _produced_at(text: str | None) -> str | None:
    """Header ``Source/DateTime`` as ISO text (seconds), or None when absent or not a date-time."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=None).isoformat(timespec="seconds")
    except ValueError:
        return None
