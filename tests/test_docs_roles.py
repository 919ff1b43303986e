"""The docs-site griffe extension: Sphinx roles in docstrings become optional API links."""

from __future__ import annotations

import griffe
import pytest

from cinresearch.tools.docs_roles import SphinxRoles

MODULES = {
    "__init__.py": '''
"""Package: see :func:`helper` and :class:`~pkg.store.Store` and :mod:`.store`."""

from pkg.store import Store, helper

__all__ = ["Store", "helper"]
''',
    "store.py": '''
"""Store module. Output::

    a  int
    b  str

Then prose again.
"""

#: rows written per batch
#: (two comment lines)
BATCH = 10

UNDOCUMENTED = 1


def helper(x: int) -> int:
    """Calls :meth:`Store.batch`, not :func:`nowhere`, nor :func:`_private`."""
    return x


def _private() -> None:
    pass


class Store:
    """A store; :meth:`batch` commits."""

    def batch(self) -> None:
        """Batch writes; see :data:`BATCH`."""
''',
}


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> griffe.Module:
    root = tmp_path_factory.mktemp("pkgsrc")
    (root / "pkg").mkdir()
    for name, text in MODULES.items():
        (root / "pkg" / name).write_text(text.lstrip(), encoding="utf-8")
    return griffe.load(
        "pkg",
        search_paths=[str(root)],
        extensions=griffe.load_extensions(SphinxRoles),
        resolve_aliases=True,
    )


def link(identifier: str, title: str) -> str:
    return f'<autoref identifier="{identifier}" optional><code>{title}</code></autoref>'


def test_roles_resolve_in_the_scope_of_the_docstring(package: griffe.Module) -> None:
    helper = package["store"]["helper"].docstring.value
    assert link("pkg.store.Store.batch", "Store.batch") in helper  # class member via the class
    assert link("pkg.store._private", "_private") in helper  # private: linked only if documented
    store = package["store"]["Store"].docstring.value
    assert link("pkg.store.Store.batch", "batch") in store  # a method from its class
    batch = package["store"]["Store"]["batch"].docstring.value
    assert link("pkg.store.BATCH", "BATCH") in batch  # a module constant from a method


def test_imported_names_absolute_names_and_relative_modules(package: griffe.Module) -> None:
    text = package.docstring.value
    assert link("pkg.store.helper", "helper") in text  # re-exported name -> where it is defined
    assert link("pkg.store.Store", "Store") in text  # ~ keeps only the last part as the title
    assert link("pkg.store", ".store") in text  # .name is relative to the package
    assert ":func:" not in text and ":class:" not in text and ":mod:" not in text


def test_unknown_names_stay_as_code(package: griffe.Module) -> None:
    text = package["store"]["helper"].docstring.value
    assert "not `nowhere`, nor" in text
    assert 'identifier="pkg.store.nowhere"' not in text


def test_literal_block_marker_and_comment_docstrings(package: griffe.Module) -> None:
    module_doc = package["store"].docstring.value
    assert "Output:\n\n    a  int" in module_doc
    assert (
        package["store"]["BATCH"].docstring.value == "rows written per batch\n(two comment lines)"
    )
    assert package["store"]["UNDOCUMENTED"].docstring is None
