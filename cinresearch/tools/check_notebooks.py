"""CI check: notebooks are stored without outputs and each has a cell tagged ``parameters``.

Usage: python -m cinresearch.tools.check_notebooks notebooks/
Exit status 1 lists every offending notebook and cell.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat


def problems(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    found = []
    has_parameters = False
    for index, cell in enumerate(nb.cells):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            has_parameters = True
        if cell.cell_type == "code":
            if cell.get("outputs"):
                found.append(f"{path}: cell {index} has outputs (run nbstripout)")
            if cell.get("execution_count") is not None:
                found.append(f"{path}: cell {index} has an execution count (run nbstripout)")
    if not has_parameters:
        found.append(f"{path}: no cell tagged 'parameters'")
    return found


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    folder = Path(args[0] if args else "notebooks")
    notebooks = sorted(folder.glob("*.ipynb"))
    found = [p for nb in notebooks for p in problems(nb)]
    for line in found:
        print(line)
    print(
        f"checked {len(notebooks)} notebooks: {'OK' if not found else f'{len(found)} problem(s)'}"
    )
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
