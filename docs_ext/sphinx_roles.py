"""A griffe extension for the API reference: Sphinx roles in docstrings become links.

stellate's docstrings name other objects the Sphinx way (:class:`Request`,
:meth:`~Response.set_cookie`). mkdocstrings renders docstrings as Markdown, where such a role
would show up as raw text. This extension rewrites each role, before rendering, into an
autorefs cross-reference: the name is resolved in the scope of the object whose docstring it
is (as Python would: the object's members, its module's names and imports), and the link is
*optional*, so a name that the reference does not render (a private helper, anyio, the
standard library) becomes plain code instead of a broken link.

Enabled in mkdocs.yml (``plugins.mkdocstrings.handlers.python.options.extensions``).
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

ROLE = re.compile(
    r":(?:py:)?(?P<kind>class|func|meth|attr|data|exc|mod|obj|const):`(?P<text>[^`]+)`"
)
EXPLICIT_TITLE = re.compile(r"^(?P<title>.+?)\s*<(?P<target>[^<>]+)>$")
CALLABLE_KINDS = {"func", "meth"}


class SphinxRoles(griffe.Extension):
    """Rewrites the Sphinx roles of every docstring into optional autorefs."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ":" in obj.docstring.value:
            obj.docstring.value = ROLE.sub(lambda match: _link(obj, match), obj.docstring.value)


def _link(obj: griffe.Object, match: re.Match[str]) -> str:
    kind, text = match.group("kind"), match.group("text").strip()
    explicit = EXPLICIT_TITLE.match(text)
    if explicit:
        title, target = explicit.group("title"), explicit.group("target").lstrip("~")
    else:
        target = text.lstrip("~")
        title = target.rsplit(".", 1)[-1] if text.startswith("~") else target
        if kind in CALLABLE_KINDS and not title.endswith(")"):
            title += "()"
    identifier = _resolve(obj, target)
    code = f"<code>{html.escape(title)}</code>"
    if identifier is None:
        return code
    return f'<autoref optional identifier="{html.escape(identifier)}">{code}</autoref>'


def _resolve(obj: griffe.Object, target: str) -> str | None:
    """The full path ``target`` names from inside ``obj``, or ``None`` (a builtin, say)."""
    if target.startswith("stellate"):
        return target
    first, _, rest = target.partition(".")
    try:
        base = obj.resolve(first)
    except griffe.NameResolutionError:
        return None
    return f"{base}.{rest}" if rest else base
