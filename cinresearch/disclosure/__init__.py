"""Statistical disclosure control (SDC) for every published CIN table.

The package follows the work: :mod:`.rounding` (half-up rounding, symbols, numbers as text),
:mod:`.cells` (primary and secondary suppression of one table), :mod:`.spec` (the publication
spec applied to a lone table) and :mod:`.audit` (one decision over all files of a publication).
Everything public is importable from ``cinresearch.disclosure``.

Defaults follow DfE's CIN publication conventions (see ``domain/publication_conventions.md``);
each one is a parameter:

* **Primary suppression**: counts from 1 to 5 inclusive are confidential, shown as ``c``.
  True zeros are published as ``0``.
* **Secondary suppression**: a suppressed cell must not be recoverable by subtraction from the
  totals. Tables are tidy (long) frames whose filter columns each carry a ``Total`` level. Within
  each group (by default: each time period x geography), every filter defines *lines*: the cells
  that differ only in that filter, plus their ``Total`` cell (sum of the interior = total). This
  covers the totals row and column of a two-way table and the grand total.

  1. *Margin rule* (the DfE convention): while some line contains exactly one hidden cell,
     suppress the next-smallest non-zero published cell of that line (the total cell included).
  2. *Linear audit* (the guarantee): a suppressed cell is recoverable iff it is a linear function
     of the published cells, i.e. iff its unit vector lies in the row space of the line equations
     restricted to the hidden cells, equivalently iff every null-space vector of that system is
     zero at the cell. The audit computes the null space (SVD); for each recoverable cell it
     suppresses the smallest non-zero cell (cells sharing a line first) that makes it
     unrecoverable, and repeats until no suppressed cell is recoverable. The margin rule alone is
     not enough: two suppressed 2x2 blocks joined through one shared row and column ("dumbbell")
     satisfy it, yet the joining cell is fixed by adding and subtracting four margins.

  Guarantee: no suppressed cell is determined by the published cells, the totals and the additive
  structure. Because secondary cells are chosen non-zero, each suppressed cell can also move in
  both directions while keeping every cell non-negative (the tests check this with linear
  programs). Not guaranteed: protection intervals of a given width (e.g. against an intruder who
  knows every suppressed cell is 1-5); use tau-argus for that. Null (not available) cells count as
  hidden; a cell missing from the frame is treated, conservatively, as a published zero.
* **Rounding**: England and regional counts are rounded to the nearest 10, LA figures are not.
  Within one table (:func:`apply_publication_sdc`) rounded levels get primary suppression only.
  Rounding alone does not stop recovery (a region's 10 allows 5..14; with its other LAs known a
  suppressed LA cell can be pinned), so a publication of several tables goes through
  :func:`protect_publication`: one interval audit over all files and levels, shared figures as
  one cell, no region row for a region with one LA (see docs/disclosure.md).
* **Rates and percentages** are shown to 1 decimal place, at rounded levels recomputed from the
  rounded counts; a rate/percentage whose numerator (or, if given, denominator) count is
  suppressed is suppressed too.
* **Half-up rounding**: ties go away from zero (2.5 -> 3, 25 -> 30 at base 10, 0.05 -> 0.1 at
  1 dp), as in Excel/SAS ``ROUND``. Python's ``round``, numpy and polars round half to even, and
  binary floats store 0.05 or 1.005 slightly off, so values are first snapped to 9 decimals of the
  rounding unit: ties are recognised to within 1e-9 of a unit.

Symbols (GSS): ``c`` confidential, ``z`` not applicable (NaN, e.g. a percentage of zero),
``x`` not available (null), ``low`` non-zero but rounds to zero, ``0`` a true zero. Indicator
cells are never blank.
"""

from cinresearch.disclosure.audit import (
    GEOGRAPHY_KEYS,
    LA_LEVEL,
    NATIONAL_LEVEL,
    REGION_LEVEL,
    CellSystem,
    PublishedTable,
    drop_thin_aggregates,
    is_protected,
    protect_publication,
    published_interval,
)
from cinresearch.disclosure.cells import (
    primary_suppression,
    protect_cells,
    protect_table,
    recoverable_cells,
    suppress_counts,
    table_suppression_flags,
)
from cinresearch.disclosure.rounding import (
    LEGACY_SYMBOLS,
    SYMBOLS,
    Symbols,
    format_count,
    format_rate,
    round_half_up,
)
from cinresearch.disclosure.spec import SdcSpec, apply_publication_sdc

__all__ = [
    "GEOGRAPHY_KEYS",
    "LA_LEVEL",
    "LEGACY_SYMBOLS",
    "NATIONAL_LEVEL",
    "REGION_LEVEL",
    "SYMBOLS",
    "CellSystem",
    "PublishedTable",
    "SdcSpec",
    "Symbols",
    "apply_publication_sdc",
    "drop_thin_aggregates",
    "format_count",
    "format_rate",
    "is_protected",
    "primary_suppression",
    "protect_cells",
    "protect_publication",
    "protect_table",
    "published_interval",
    "recoverable_cells",
    "round_half_up",
    "suppress_counts",
    "table_suppression_flags",
]
