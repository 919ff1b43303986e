"""Griffe extension for the docs site: turn Sphinx roles in docstrings into API links.

The package's docstrings name other objects the Sphinx way (``:func:`cox_fit```,
``:class:`~cinresearch.store.Store```, ``:mod:`cinresearch.survival```). mkdocstrings renders
docstrings as Markdown, where a role would show as literal ``:func:`` text. This extension,
named in ``mkdocs.yml`` under ``plugins.mkdocstrings.handlers.python.options.extensions``,
rewrites every role when griffe loads the package (the source files are not touched):

* the target is resolved in the scope of the object whose docstring it is (a bare
  ``cox_fit`` in ``cinresearch.survival`` becomes ``cinresearch.survival.cox_fit``; a name
  imported into the module resolves to where it is defined);
* a resolved target becomes an *optional* cross-reference: a link where the API reference
  documents the object, plain code where it does not (private helpers, modules the reference
  leaves out) — so a docstring never breaks ``mkdocs build --strict``; the hand-written pages'
  ``[name][cinresearch.module.name]`` references and the ``::: module`` blocks do, when they
  name an object that no longer exists;
* an unresolved target stays as inline code.

``~`` shows only the last part of the name, as in Sphinx. Two more Sphinx habits are carried
over: a paragraph ending in ``::`` before an indented block (a literal block in reStructuredText)
ends in ``:``, the block rendering as code either way; and a constant documented by ``#:``
comment lines just above it gets those lines as its docstring.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

ROLE_RE = re.compile(r":(?:py:)?(?:func|class|mod|meth|data|attr|exc|obj):`(?P<target>[^`]+)`")
LITERAL_MARKER_RE = re.compile(r"(?<=\S)::[ \t]*\n(?=[ \t]*\n)")


def resolve_target(obj: griffe.Object, target: str) -> str | None:
    """Full dotted path of ``target`` as seen from ``obj``'s docstring, or None if unknown.

    Names starting with the top package (``cinresearch.x.y``) are taken as they are; ``.name``
    is relative to the enclosing package; otherwise the first part is looked up in ``obj``'s
    scope (its members, then its parents', imports included) and the rest appended.
    """
    root = obj.package.name
    if target == root or target.startswith(f"{root}."):
        return target
    if target.startswith("."):
        module = obj if obj.is_module else obj.module
        package = module.path if module.is_package else module.path.rpartition(".")[0]
        return f"{package}{target}"
    head, _, rest = target.partition(".")
    try:
        path = obj.resolve(head)
    except griffe.NameResolutionError:
        return None
    return f"{path}.{rest}" if rest else path


def rewrite_roles(obj: griffe.Object, text: str) -> str:
    """``text`` with each Sphinx role replaced by an optional autorefs link (or inline code)."""

    def replace(match: re.Match[str]) -> str:
        target = match["target"].strip()
        short = target.startswith("~")
        target = target.lstrip("~")
        title = target.rsplit(".", 1)[-1] if short else target
        identifier = resolve_target(obj, target)
        if identifier is None:
            return f"`{title}`"
        return (
            f'<autoref identifier="{html.escape(identifier)}" optional>'
            f"<code>{html.escape(title)}</code></autoref>"
        )

    return LITERAL_MARKER_RE.sub(":\n", ROLE_RE.sub(replace, text))


def comment_docstring(obj: griffe.Object) -> str | None:
    """The ``#:`` comment lines right above an attribute, joined; None if there are none."""
    if obj.lineno is None or obj.parent is None:
        return None
    lines = obj.parent.module.lines
    found: list[str] = []
    index = obj.lineno - 2
    while index >= 0 and lines[index].lstrip().startswith("#:"):
        found.insert(0, lines[index].lstrip()[2:].strip())
        index -= 1
    return "\n".join(found) or None


def _rewrite_tree(obj: griffe.Object) -> None:
    if obj.docstring is None and obj.is_attribute and (text := comment_docstring(obj)):
        obj.docstring = griffe.Docstring(text, parent=obj)
    if obj.docstring is not None:
        obj.docstring.value = rewrite_roles(obj, obj.docstring.value)
    for member in obj.members.values():
        if not member.is_alias:
            _rewrite_tree(member)  # type: ignore[arg-type]


class SphinxRoles(griffe.Extension):
    """Rewrites roles once the whole package is loaded, so imported names resolve."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        _rewrite_tree(pkg)
