"""The analysis packages (survival, cohorts, indicators) publish every public function.

Each package's ``__all__`` is what the docs site renders and what ``from package import *``
gives, so a public function or class written in any of its modules must be listed there, and
every listed name must resolve. Also: no submodule is named like a public name of its
package (``cinresearch.survival.cox`` must stay the function, not a module).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

PACKAGES = ("cinresearch.survival", "cinresearch.cohorts", "cinresearch.indicators")


def _submodules(package: ModuleType) -> list[ModuleType]:
    return [
        importlib.import_module(f"{package.__name__}.{info.name}")
        for info in pkgutil.iter_modules(package.__path__)
    ]


def public_definitions(package: ModuleType) -> set[str]:
    """Public functions and classes defined (not imported) in the package's modules."""
    found = set()
    for module in _submodules(package):
        for name, obj in vars(module).items():
            if name.startswith("_"):
                continue
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and (
                obj.__module__ == module.__name__
            ):
                found.add(name)
    return found


@pytest.mark.parametrize("name", PACKAGES)
def test_all_lists_every_public_function_and_class(name: str) -> None:
    package = importlib.import_module(name)
    missing = public_definitions(package) - set(package.__all__)
    assert not missing, f"{name}.__all__ lacks {sorted(missing)}"


@pytest.mark.parametrize("name", PACKAGES)
def test_every_listed_name_resolves(name: str) -> None:
    package = importlib.import_module(name)
    assert len(package.__all__) == len(set(package.__all__))
    unresolved = [n for n in package.__all__ if not hasattr(package, n)]
    assert not unresolved, f"{name}.__all__ names missing attributes: {unresolved}"
    modules = [n for n in package.__all__ if isinstance(getattr(package, n), ModuleType)]
    assert not modules, f"{name}: public names bound to submodules: {modules}"


@pytest.mark.parametrize("name", PACKAGES)
def test_no_submodule_shadows_a_public_name(name: str) -> None:
    package = importlib.import_module(name)
    clashes = {m.__name__.rsplit(".", 1)[1] for m in _submodules(package)} & set(package.__all__)
    assert not clashes, f"{name}: submodules named like public names: {sorted(clashes)}"


def test_checker_sees_a_function_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first check fails when a module defines a public function __all__ does not list."""
    survival = importlib.import_module("cinresearch.survival")
    monkeypatch.setattr(survival, "__all__", [n for n in survival.__all__ if n != "logrank"])
    assert "logrank" in public_definitions(survival) - set(survival.__all__)
