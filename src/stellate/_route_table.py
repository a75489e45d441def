"""The route table ``stellate routes MODULE:ATTR`` prints.

One row per route, mounts and hosts expanded so that every row shows the full path a client
uses; a mounted application without a table of its own (static files, a sub-application
that routes by itself) is one row. Reading an application's routes only inspects objects:
nothing is served and no lifespan runs.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from stellate._concurrency import unwrap_callable
from stellate.routing import BaseRoute, Host, Mount, Route, WebSocketRoute

__all__ = ["RouteRow", "find_routes", "format_table", "route_rows"]

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass(frozen=True)
class RouteRow:
    methods: str
    path: str
    name: str
    endpoint: str


def find_routes(app: Any) -> list[BaseRoute] | None:
    """The routes of ``app``, looking through middleware (which keeps its app in ``.app``)."""
    layer = app
    for _ in range(32):
        routes = getattr(layer, "routes", None)
        if isinstance(routes, list):
            return routes
        layer = getattr(layer, "app", None)
        if layer is None:
            return None
    return None


def route_rows(routes: list[BaseRoute], prefix: str = "") -> Iterator[RouteRow]:
    for route in routes:
        if isinstance(route, Route):
            yield RouteRow(
                _methods(route), prefix + route.path, route.name, _qualified(route.endpoint)
            )
        elif isinstance(route, WebSocketRoute):
            yield RouteRow("WS", prefix + route.path, route.name, _qualified(route.endpoint))
        elif isinstance(route, Mount | Host):
            where = prefix + route.path if isinstance(route, Mount) else route.host + prefix
            inner = find_routes(route.app) if isinstance(route, Host) else route.routes or None
            if inner is None:
                yield RouteRow("MOUNT", where or "/", route.name or "", _qualified(route.app))
            else:
                yield from route_rows(inner, where)
        elif (included := _included_router(route)) is not None:
            inner_routes, inner_prefix = included
            yield from route_rows(inner_routes, prefix + inner_prefix)
        else:
            yield RouteRow("?", prefix, getattr(route, "name", "") or "", _qualified(route))


def _included_router(route: BaseRoute) -> tuple[list[BaseRoute], str] | None:
    """The routes and the prefix of a router FastAPI included, when ``route`` stands for one.

    Recent FastAPI releases no longer copy the routes of ``include_router`` into the
    application: one route stands for the whole router, holding it (``original_router``)
    and the prefix it was included under (``include_context.prefix``). Recognised by those
    attributes, without importing FastAPI; any other unknown route stays one ``?`` row.
    """
    routes = getattr(getattr(route, "original_router", None), "routes", None)
    prefix = getattr(getattr(route, "include_context", None), "prefix", None)
    if isinstance(routes, list) and isinstance(prefix, str):
        return routes, prefix
    return None


def _methods(route: Route) -> str:
    if route.methods is not None:
        return ", ".join(sorted(route.methods, key=_method_order))
    endpoint = route.endpoint
    if inspect.isclass(endpoint):  # an HTTPEndpoint answers the methods it defines
        defined = [method for method in HTTP_METHODS if hasattr(endpoint, method.lower())]
        if defined:
            return ", ".join(defined)
    return "ANY"


def _method_order(method: str) -> tuple[int, str]:
    known = method in HTTP_METHODS
    return (HTTP_METHODS.index(method) if known else len(HTTP_METHODS), method)


def _qualified(thing: Any) -> str:
    """``module:qualname`` of a function or class; of its class for any other object."""
    target = unwrap_callable(thing)
    if not (inspect.isroutine(target) or inspect.isclass(target)):
        target = type(target)
    module = getattr(target, "__module__", None) or "?"
    return f"{module}:{getattr(target, '__qualname__', repr(target))}"


def format_table(rows: list[RouteRow]) -> str:
    header = RouteRow("METHODS", "PATH", "NAME", "ENDPOINT")
    table = [header, *rows]
    widths = [max(len(getattr(row, column)) for row in table) for column in _COLUMNS]
    columns = list(zip(_COLUMNS, widths, strict=True))
    lines = [
        "  ".join(getattr(row, column).ljust(width) for column, width in columns).rstrip()
        for row in table
    ]
    return "\n".join(lines)


_COLUMNS = ("methods", "path", "name", "endpoint")
