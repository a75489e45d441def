"""OpenAPI schemas assembled from the YAML in endpoint docstrings.

The documentation of an endpoint lives next to its code: everything in the docstring after
a line holding only ``---`` is YAML describing that operation::

    async def list_users(request):
        \"\"\"List the users.
        ---
        responses:
          200:
            description: A list of users.
        \"\"\"

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

#: The methods an HTTPEndpoint may document (HEAD mirrors GET, so it has no entry).
_ENDPOINT_METHODS = ("get", "post", "put", "patch", "delete", "options", "trace")
_CONVERTOR = re.compile(r"{([^{}:]+):[^{}]*}")
_SEPARATOR = re.compile(r"^[ \t]*---[ \t]*$", re.MULTILINE)


def _require_yaml() -> Any:
    if yaml is None:  # pragma: no cover - pyyaml is part of stellate[full]
        raise ImportError("OpenAPI schemas need PyYAML: `pip install pyyaml` (or stellate[full]).")
    return yaml


class OpenAPIResponse(Response):
    """A schema (a dict) rendered as YAML, with the OpenAPI media type."""

    media_type = "application/vnd.oai.openapi"

    def render(self, content: Any) -> bytes:
        if not isinstance(content, dict):
            raise TypeError(
                f"OpenAPIResponse content must be a dict, not {type(content).__name__}."
            )
        text: str = _require_yaml().safe_dump(
            content, default_flow_style=False, sort_keys=False, allow_unicode=True
        )
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
        """The YAML after the ``---`` line of the docstring, as a dict ({} if none).

        A docstring without a ``---`` line is prose and is not parsed, so a sentence with
        a colon never breaks the schema. Invalid YAML, or YAML that is not a mapping,
        raises ``ValueError`` naming the endpoint, since a half-documented API is worse
        than an error at the first schema request.
        """
        docstring = inspect.getdoc(unwrap_callable(func_or_method))
        if not docstring:
            return {}
        parts = _SEPARATOR.split(docstring, maxsplit=1)
        if len(parts) < 2:
            return {}
        name = _describe(func_or_method)
        try:
            parsed = _require_yaml().safe_load(parts[1])
        except yaml.YAMLError as exc:
            raise ValueError(f"Invalid OpenAPI YAML in the docstring of {name}: {exc}") from exc
        if parsed is None:
            return {}
        if not isinstance(parsed, dict):
            raise ValueError(
                f"The OpenAPI YAML in the docstring of {name} must be a mapping, "
                f"not {type(parsed).__name__}."
            )
        return parsed

    def OpenAPIResponse(self, request: Request) -> Response:
        """The schema of the application serving ``request``, as a YAML response."""
        routes: list[BaseRoute] = request.app.routes
        return OpenAPIResponse(self.get_schema(routes=routes))


class SchemaGenerator(BaseSchemaGenerator):
    """Merge the documented operations into ``base_schema`` (left untouched)."""

    def __init__(self, base_schema: dict[str, Any]) -> None:
        self.base_schema = base_schema

    def get_schema(self, routes: list[BaseRoute]) -> dict[str, Any]:
        schema = copy.deepcopy(self.base_schema)
        paths: dict[str, Any] = schema.setdefault("paths", {})
        for endpoint in self.get_endpoints(routes):
            operation = self.parse_docstring(endpoint.func)
            if operation:
                paths.setdefault(endpoint.path, {})[endpoint.http_method] = operation
        return schema


def _strip_convertors(path: str) -> str:
    """``/users/{id:int}`` → ``/users/{id}``: OpenAPI path templates have no types."""
    return _CONVERTOR.sub(r"{\1}", path)


def _operations(route: Route) -> Iterator[tuple[str, Callable[..., Any]]]:
    """(method, handler) pairs of a route: its methods for a function endpoint, or the
    handler methods defined by an endpoint class, limited to ``route.methods`` if set."""
    endpoint = route.endpoint
    target = unwrap_callable(endpoint)
    if inspect.isfunction(target) or inspect.ismethod(target):
        for method in sorted(route.methods or {"GET"}, key=_method_order):
            if method != "HEAD":
                yield method.lower(), endpoint
        return
    allowed = {method.lower() for method in route.methods} if route.methods else None
    for method in _ENDPOINT_METHODS:
        handler = getattr(target, method, None)
        if callable(handler) and (allowed is None or method in allowed):
            yield method, handler


def _method_order(method: str) -> tuple[int, str]:
    known = [m.upper() for m in _ENDPOINT_METHODS]
    return (known.index(method), "") if method in known else (len(known), method)


def _describe(func: Callable[..., Any]) -> str:
    target = unwrap_callable(func)
    name = getattr(target, "__qualname__", None) or repr(target)
    module = getattr(target, "__module__", None)
    return f"{module}.{name}" if module else name
