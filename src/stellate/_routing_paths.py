"""Path templates: compiling ``/users/{id:int}`` into a regex, and filling it back in.

A template is compiled once, when its route is built, so that a bad template (an unknown
convertor, a parameter named twice) fails at import time of the application rather than
on the first request that happens to reach it. Everything here is pure string work: no
I/O, no knowledge of routes beyond their templates.

Templates that do not start with ``/`` are *host* templates (``{tenant}.example.org``):
they are matched against the ``Host`` header with its port removed, ignoring case,
because hostnames are case-insensitive (RFC 9110 §4.2.3) and the port is not part of the
name. Only a header that is a valid host (the grammar URLs use) is matched at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from stellate._urls import parse_host
from stellate.convertors import CONVERTOR_TYPES, Convertor
from stellate.types import Scope

__all__ = [
    "compile_path",
    "first_static_segment",
    "get_route_path",
    "path_segment",
    "replace_params",
    "request_host",
]

# `{name}` or `{name:convertor}`; names are Python identifiers so they can be keyword
# arguments of `url_path_for`.
_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::([a-zA-Z_][a-zA-Z0-9_]*))?}")
# A slot of a compiled format string: `{name}`.
_SLOT = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)}")


def compile_path(path: str) -> tuple[re.Pattern[str], str, dict[str, Convertor[Any]]]:
    """Compile a path or host template into ``(regex, format, convertors)``.

    ``format`` is the template with every ``{name:convertor}`` written ``{name}``, ready
    for :func:`replace_params`; ``convertors`` maps each parameter to its convertor.
    Raises Starlette's errors: ``AssertionError`` for an unknown convertor, and
    ``ValueError`` naming every parameter used twice (the regex could not hold two
    groups of one name anyway).
    """
    is_host = not path.startswith("/")
    regex_parts = ["^"]
    format_parts: list[str] = []
    convertors: dict[str, Convertor[Any]] = {}
    duplicated: set[str] = set()
    position = 0
    for found in _PARAM.finditer(path):
        name, convertor_name = found.group(1), found.group(2) or "str"
        convertor = CONVERTOR_TYPES.get(convertor_name)
        if convertor is None:
            raise AssertionError(f"Unknown path convertor '{convertor_name}'")
        if name in convertors:
            duplicated.add(name)
            continue
        literal = path[position : found.start()]
        regex_parts.append(re.escape(literal))
        regex_parts.append(f"(?P<{name}>{convertor.regex})")
        format_parts.append(literal)
        format_parts.append(f"{{{name}}}")
        convertors[name] = convertor
        position = found.end()
    if duplicated:
        names = ", ".join(sorted(duplicated))
        ending = "s" if len(duplicated) > 1 else ""
        raise ValueError(f"Duplicated param name{ending} {names} at path {path}")
    tail = path[position:]
    if is_host:
        # A host template never carries a port: the port is stripped from the request's
        # Host header before matching.
        tail = _strip_port(tail)
    # \Z, not $: "$" also matches before a trailing newline, so "/users%0A" would route
    # to "/users".
    regex_parts.append(re.escape(tail) + r"\Z")
    format_parts.append(path[position:])
    flags = re.IGNORECASE if is_host else 0
    return re.compile("".join(regex_parts), flags), "".join(format_parts), convertors


def replace_params(
    path: str,
    param_convertors: dict[str, Convertor[Any]],
    path_params: dict[str, str],
) -> tuple[str, dict[str, str]]:
    """Fill ``{name}`` slots of a format string; return it and the params left over.

    Each value is written with its convertor's ``to_string``, so ``url_path_for`` round-
    trips what the route's ``matches`` parsed. The format is read once, left to right,
    so a value that itself looks like ``{other}`` stays as it is. A slot without a value
    is left in place (a ``Mount`` prefix the caller fills in later). ``path_params``
    itself is not modified.
    """
    remaining = dict(path_params)

    def fill(found: re.Match[str]) -> str:
        name = found.group(1)
        if name not in path_params:
            return found.group()
        remaining.pop(name, None)
        text: str = param_convertors[name].to_string(path_params[name])
        return text

    return _SLOT.sub(fill, path), remaining


def get_route_path(scope: Scope) -> str:
    """The part of ``scope["path"]`` that this router is responsible for.

    ``path`` is the full request path and ``root_path`` the prefix where the current app
    is mounted (each ``Mount`` extends it), so what is left to route is ``path`` minus
    ``root_path``, when ``root_path`` is really a prefix at a segment boundary.
    """
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if not root_path or not path.startswith(root_path):
        return path
    if len(path) == len(root_path):
        return ""
    if path[len(root_path)] == "/":
        return path[len(root_path) :]
    return path


def request_host(scope: Scope) -> str | None:
    """The hostname the client asked for: the ``Host`` header without port, lowercased.

    None when there is no ``Host`` header or it is malformed (the grammar URLs use,
    :func:`stellate._urls.parse_host`): a ``Host`` route then does not match, so no
    parameter is ever captured from text such as ``me@shop`` or ``evil.test#``. There is
    no fallback to the server address: the client did not name a host.
    """
    for key, value in scope.get("headers", ()):
        if key == b"host":
            parsed = parse_host(value.decode("latin-1"))
            if parsed is None or parsed[1] == "":  # Starlette's Host routes need a digit
                return None
            return parsed[0].lower()
    return None


def _strip_port(host: str) -> str:
    """``host`` without ``:port``, minding the colons of a bracketed IPv6 literal."""
    bracket = host.rfind("]") + 1
    return host[:bracket] + host[bracket:].split(":", 1)[0]


def path_segment(route_path: str) -> str:
    """The first segment of a route path: ``"users"`` for ``/users/42``, ``""`` for ``/``."""
    end = route_path.find("/", 1)
    return route_path[1:] if end == -1 else route_path[1:end]


def first_static_segment(template: str) -> str | None:
    """The first segment of a path template if it is plain text, else ``None``.

    A route whose template starts with ``/users/`` (or is exactly ``/users``) can only
    match paths whose first segment is ``users``: that is what lets the router index its
    table. A segment holding a parameter (``/{id}``, ``/v{n}``) could match anything.
    """
    if not template.startswith("/"):
        return None
    segment = path_segment(template)
    return None if "{" in segment else segment


def convert_params(
    matched: Mapping[str, str], convertors: Mapping[str, Convertor[Any]]
) -> dict[str, Any] | None:
    """Convert the strings a template's regex captured; ``None`` if a convertor refuses.

    A custom convertor whose ``convert`` raises ``ValueError`` declares that the segment
    is not one of its values, so the route simply does not match (and the request goes
    on to the next route, or a 404) instead of failing with a 500.
    """
    params: dict[str, Any] = {}  # a loop, not a comprehension: no frame per match
    try:
        for name, value in matched.items():
            params[name] = convertors[name].convert(value)
    except ValueError:
        return None
    return params
