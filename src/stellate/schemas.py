"""OpenAPI schemas assembled from the YAML in endpoint docstrings.

The documentation of an endpoint lives next to its code: the docstring after its last
``---`` (or the whole docstring, if it has none) is YAML describing that operation::

    async def list_users(request):
        \"\"\"List the users.
        ---
        responses:
          200:
            description: A list of users.
        \"\"\"

This is Starlette's rule, so a docstring that is nothing but YAML documents its endpoint,
and one whose YAML is not a mapping (plain prose, usually) documents nothing.

:class:`SchemaGenerator` walks an application's routes (through ``Mount`` and ``Host``, and
into the methods of ``HTTPEndpoint`` classes), collects those fragments under their paths
and methods, and merges them into a base schema. Nothing is computed at import time, so a
schema always reflects the routes as they are when it is requested.
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from stellate._concurrency import unwrap_callable
from stellate.requests import Request
from stellate.responses import Response
from stellate.routing import BaseRoute, Host, Mount, Route

try:
    import yaml
except ModuleNotFoundError:  # pragma: no cover - pyyaml is part of stellate[full]
    yaml = None  # type: ignore[assignment]

__all__ = ["BaseSchemaGenerator", "EndpointInfo", "OpenAPIResponse", "SchemaGenerator"]

#: The methods an HTTPEndpoint may document, whatever its route's ``methods`` (as in
#: Starlette: HEAD mirrors GET, and TRACE is not documented).
_ENDPOINT_METHODS = ("get", "post", "put", "patch", "delete", "options", "query")
_CONVERTOR = re.compile(r"{([^{}:]+):[^{}]*}")
_OPENAPI_VERSION = re.compile(r"(\d+)\.(\d+)")
#: The first OpenAPI version that knows the QUERY method.
_QUERY_SINCE = (3, 2)


def _require_yaml() -> Any:
    if yaml is None:  # pragma: no cover - pyyaml is part of stellate[full]
        raise ImportError(
            "OpenAPI schemas need PyYAML: `pip install pyyaml` "
            "(stellate's `full` extra includes it)."
        )
    return yaml


class OpenAPIResponse(Response):
    """A schema (a dict) rendered as YAML, with the OpenAPI media type."""

    media_type = "application/vnd.oai.openapi"

    def render(self, content: Any) -> bytes:
        """PyYAML's ``dump`` in block style with its defaults, as Starlette renders it:
        keys sorted at every level, non-ASCII text escaped."""
        if not isinstance(content, dict):
            raise AssertionError("The schema passed to OpenAPIResponse should be a dictionary.")
        text: str = _require_yaml().dump(content, default_flow_style=False)
        return text.encode("utf-8")


class EndpointInfo(NamedTuple):
    """One documented operation: its path (convertors stripped), method (lower case), code."""

    path: str
    http_method: str
    func: Callable[..., Any]


class BaseSchemaGenerator:
    """Route walking and docstring parsing; subclasses decide what schema to build."""

    def get_schema(self, routes: list[BaseRoute]) -> dict[str, Any]:
        raise NotImplementedError()

    def get_endpoints(self, routes: list[BaseRoute]) -> list[EndpointInfo]:
        """Every operation reachable through ``routes``, in routing order.

        Routes with ``include_in_schema=False`` are left out, and so are WebSocket routes
        (OpenAPI describes HTTP operations). ``HEAD`` is left out: it answers like ``GET``.
        """
        return list(self._walk(routes, prefix=""))

    def _walk(self, routes: list[BaseRoute], prefix: str) -> Iterator[EndpointInfo]:
        for route in routes:
            if isinstance(route, Mount):
                yield from self._walk(route.routes, prefix + _strip_convertors(route.path))
            elif isinstance(route, Host):
                yield from self._walk(route.routes, prefix)
            elif isinstance(route, Route) and route.include_in_schema:
                path = prefix + _strip_convertors(route.path)
                for method, func in _operations(route):
                    yield EndpointInfo(path, method, func)

    def parse_docstring(self, func_or_method: Callable[..., Any]) -> dict[str, Any]:
        """The operation documented by a docstring, as Starlette reads it ({} if none).

        The raw docstring after its last ``---`` (all of it without one) is loaded with
        PyYAML's safe loader: a mapping is the operation, anything else (prose loading
        as a string, a list, nothing) gives ``{}``. Invalid YAML raises PyYAML's own
        error. A ``functools.partial`` is documented by the function it wraps.
        """
        docstring = unwrap_callable(func_or_method).__doc__
        if not docstring:
            return {}
        parsed = _require_yaml().safe_load(docstring.split("---")[-1])
        return parsed if isinstance(parsed, dict) else {}

    def OpenAPIResponse(self, request: Request) -> Response:
        """The schema of the application serving ``request``, as a YAML response."""
        routes: list[BaseRoute] = request.app.routes
        return OpenAPIResponse(self.get_schema(routes=routes))


class SchemaGenerator(BaseSchemaGenerator):
    """Merge the documented operations into ``base_schema`` (left untouched)."""

    def __init__(self, base_schema: dict[str, Any]) -> None:
        self.base_schema = base_schema

    def get_schema(self, routes: list[BaseRoute]) -> dict[str, Any]:
        """The base schema with every documented operation under ``paths``.

        ``query`` operations are left out unless the base schema's ``openapi`` version
        is 3.2 or later (earlier versions have no QUERY method), as in Starlette.
        """
        schema = copy.deepcopy(self.base_schema)
        paths: dict[str, Any] = schema.setdefault("paths", {})
        with_query = _openapi_version(schema.get("openapi")) >= _QUERY_SINCE
        for endpoint in self.get_endpoints(routes):
            if endpoint.http_method == "query" and not with_query:
                continue
            operation = self.parse_docstring(endpoint.func)
            if operation:
                paths.setdefault(endpoint.path, {})[endpoint.http_method] = operation
        return schema


def _strip_convertors(path: str) -> str:
    """``/users/{id:int}`` → ``/users/{id}``: OpenAPI path templates have no types."""
    return _CONVERTOR.sub(r"{\1}", path)


def _openapi_version(value: Any) -> tuple[int, int]:
    """``(major, minor)`` of an ``openapi`` value such as ``"3.1.0"``; (0, 0) if unreadable."""
    found = _OPENAPI_VERSION.match(value) if isinstance(value, str) else None
    return (int(found.group(1)), int(found.group(2))) if found else (0, 0)


def _operations(route: Route) -> Iterator[tuple[str, Callable[..., Any]]]:
    """(method, handler) pairs of a route: its methods for a function endpoint, or every
    handler method an endpoint class defines (whatever ``route.methods`` says)."""
    endpoint = route.endpoint
    target = unwrap_callable(endpoint)
    if inspect.isfunction(target) or inspect.ismethod(target):
        for method in sorted(route.methods or {"GET"}, key=_method_order):
            if method != "HEAD":
                yield method.lower(), endpoint
        return
    for method in _ENDPOINT_METHODS:
        handler = getattr(target, method, None)
        if callable(handler):
            yield method, handler


def _method_order(method: str) -> tuple[int, str]:
    known = [m.upper() for m in _ENDPOINT_METHODS]
    return (known.index(method), "") if method in known else (len(known), method)
