"""The package's shape: imports run one way (no cycles) and modules stay readable in size.

Both checks read the source with `ast` only; nothing is imported, so a cycle that Python
would tolerate at run time (because the import sits inside a function) is still caught.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "cinresearch"
PACKAGE_DIR = ROOT / PACKAGE
MAX_LINES = 800

# Modules over MAX_LINES that other branches are splitting at the same time as this one.
# The lead empties this set when those branches merge; do not add to it to get a test green.
PENDING_SPLIT: set[str] = set()


def module_name(path: Path, root: Path = PACKAGE_DIR) -> str:
    """The dotted module name of a source file under the package directory `root`."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules(root: Path = PACKAGE_DIR) -> dict[str, Path | None]:
    """Every module of the package, by dotted name (compiled extensions map to None).

    Extensions are the ``[[tool.setuptools.ext-modules]]`` of ``pyproject.toml`` beside the
    package: leaves of the graph (they import nothing of the package), listed so that
    ``from cinresearch.io import _cinfast`` points at the extension, not at ``cinresearch.io``.
    """
    modules: dict[str, Path | None] = {
        module_name(path, root): path for path in sorted(root.rglob("*.py"))
    }
    pyproject = root.parent / "pyproject.toml"
    if pyproject.exists():
        config = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        for extension in config.get("tool", {}).get("setuptools", {}).get("ext-modules", []):
            modules.setdefault(extension["name"], None)
    return modules


def _absolute(module: str | None, level: int, importer: str, is_package: bool) -> str:
    """The absolute name a (possibly relative) `from ... import` refers to."""
    if level == 0:
        return module or ""
    base = importer.split(".")
    # A package's own name is its base for `from . import x`; a module's base is its parent.
    drop = level - 1 if is_package else level
    base = base[: len(base) - drop] if drop else base
    return ".".join([*base, module] if module else base)


def imported_modules(importer: str, path: Path, modules: Iterable[str]) -> set[str]:
    """Package modules that `importer` imports anywhere in its body (module or function level).

    `import a.b.c` and `from a.b import c` (c a submodule) both point at a.b.c; `from a.b
    import name` (name not a module) points at a.b. The implicit import of parent packages
    is not counted: it runs a package's `__init__`, which the walk reaches through its own
    edges.
    """
    known = set(modules)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module, node.level, importer, is_package)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                if candidate in known:
                    found.add(candidate)
                elif base in known:
                    found.add(base)
    found.discard(importer)
    return found


def import_graph(root: Path = PACKAGE_DIR) -> dict[str, set[str]]:
    """Module → package modules it imports."""
    modules = package_modules(root)
    return {
        name: set() if path is None else imported_modules(name, path, modules)
        for name, path in modules.items()
    }


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a → … → a) from every strongly connected group of more than one module.

    Tarjan's algorithm finds the groups; a breadth-first walk inside each group gives the
    shortest cycle through its first module, which is what a reader needs to break it.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)

    cycles = []
    for group in groups:
        members = set(group)
        start = group[0]
        parents: dict[str, str] = {}
        frontier = [start]
        while frontier and start not in parents:
            following = []
            for node in frontier:
                for target in sorted(graph[node] & members):
                    if target not in parents:
                        parents[target] = node
                        following.append(target)
            frontier = following
        path = [start]
        node = parents[start]
        while node != start:
            path.append(node)
            node = parents[node]
        path.append(start)
        cycles.append(path[::-1])
    return cycles


def long_modules(root: Path = PACKAGE_DIR) -> dict[str, int]:
    """Modules over MAX_LINES whose docstring has no line starting `Long module:`."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines <= MAX_LINES:
            continue
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if any(line.strip().startswith("Long module:") for line in docstring.splitlines()):
            continue
        found[path.relative_to(root.parent).as_posix()] = lines
    return found


def test_no_import_cycles() -> None:
    """Imports run one way (io -> store -> journeys -> cohorts -> analyses -> report).

    A function-level import counts: one placed there to dodge a cycle still ties the two
    modules together. Restructure instead (move what both need to a module both import).
    """
    cycles = import_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_module_over_the_line_limit_without_a_reason() -> None:
    over = {path: n for path, n in long_modules().items() if path not in PENDING_SPLIT}
    assert not over, f"modules over {MAX_LINES} lines with no 'Long module:' reason: {over}"


def test_pending_split_names_only_modules_that_are_still_long() -> None:
    """An entry for a module that is now short (or gone) is stale and hides nothing."""
    stale = {path for path in PENDING_SPLIT if path not in long_modules()}
    assert not stale, f"remove from PENDING_SPLIT: {sorted(stale)}"


# ---- the checker itself, on tiny hand-written packages ---------------------------------


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / PACKAGE


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        # absolute, module level
        (
            {"a.py": "from cinresearch import b\n", "b.py": "import cinresearch.a\n"},
            [["cinresearch.a", "cinresearch.b", "cinresearch.a"]],
        ),
        # relative, inside a function (a lazy import dodging the cycle still counts)
        (
            {
                "io/__init__.py": "",
                "io/x.py": "def f():\n    from .y import thing\n",
                "io/y.py": "from cinresearch.io.x import f\nthing = 1\n",
            },
            [["cinresearch.io.x", "cinresearch.io.y", "cinresearch.io.x"]],
        ),
        # through a package __init__ that re-exports, via `from .. import`
        (
            {
                "io/__init__.py": "from cinresearch.io.reader import read\n",
                "io/reader.py": "from ..io import errors\nfrom .. import io\nread = 1\n",
                "io/errors.py": "",
            },
            [["cinresearch.io", "cinresearch.io.reader", "cinresearch.io"]],
        ),
        # one way only: no cycle
        (
            {
                "io/__init__.py": "from .reader import read\n",
                "io/reader.py": "from . import errors\nread = 1\n",
                "io/errors.py": "",
            },
            [],
        ),
    ],
)
def test_cycle_finder_on_planted_packages(
    tmp_path: Path, files: dict[str, str], expected: list[list[str]]
) -> None:
    root = _write(
        tmp_path, {f"{PACKAGE}/__init__.py": ""} | {f"{PACKAGE}/{k}": v for k, v in files.items()}
    )
    assert import_cycles(import_graph(root)) == expected


def test_compiled_extensions_are_leaves_not_their_package(tmp_path: Path) -> None:
    """`from pkg import _ext` names the extension; without it listed it would name `pkg`."""
    files = {
        f"{PACKAGE}/__init__.py": "",
        f"{PACKAGE}/io/__init__.py": "from cinresearch.io.reader import read\n",
        f"{PACKAGE}/io/reader.py": "from cinresearch.io import _fast\nread = 1\n",
    }
    root = _write(tmp_path, files)
    assert import_cycles(import_graph(root)) == [
        ["cinresearch.io", "cinresearch.io.reader", "cinresearch.io"]
    ]
    (tmp_path / "pyproject.toml").write_text(
        '[[tool.setuptools.ext-modules]]\nname = "cinresearch.io._fast"\nsources = ["f.c"]\n',
        encoding="utf-8",
    )
    assert import_cycles(import_graph(root)) == []


def test_line_limit_honours_a_long_module_reason(tmp_path: Path) -> None:
    body = "x = 1\n" * (MAX_LINES + 1)
    root = _write(
        tmp_path,
        {
            f"{PACKAGE}/__init__.py": "",
            f"{PACKAGE}/long.py": '"""Long."""\n' + body,
            f"{PACKAGE}/reasoned.py": '"""Reasoned.\n\nLong module: one table.\n"""\n' + body,
            f"{PACKAGE}/short.py": '"""Short."""\n' + "x = 1\n" * (MAX_LINES - 1),
        },
    )
    assert long_modules(root) == {"cinresearch/long.py": MAX_LINES + 2}
