"""Routing: mapping a request's path (and host, and method) to the app that answers it.

A *route* knows whether a scope is for it (:meth:`BaseRoute.matches` gives
``Match.NONE``, ``PARTIAL`` for a right path with a wrong method, or ``FULL``) and how
to answer it (:meth:`BaseRoute.handle`). A :class:`Router` holds a table of routes and
dispatches to the first full match in declaration order; it also owns the ASGI lifespan
protocol. :class:`Mount` and :class:`Host` nest routers under a path prefix or a
hostname. Every route can also build its own URL back (``url_path_for``), through the
same convertors that parsed it, so links never drift from the routing table.

Dispatch does not try every route: the router keeps an index of candidates by first path
segment (see :mod:`stellate._routing_index`), so its cost stays flat as tables grow.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Awaitable, Callable, Collection, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from stellate._body_limit import RequestBodyLimitResponder
from stellate._handler_policy import (
    check_timeout,
    publish_policies,
    resolve_policies,
    run_handler,
)
from stellate._lifespan import (
    adapt_lifespan,
    run_lifespan,
    warn_event_handlers,
    with_event_handlers,
)
from stellate._routing_endpoints import (
    get_name,
    is_plain_function,
    request_response,
    websocket_session,
    wrap_middleware,
)
from stellate._routing_index import DispatchIndex, DispatchInfo, Matcher, NameIndex, RouteList
from stellate._routing_paths import (
    compile_path,
    convert_params,
    first_static_segment,
    get_route_path,
    replace_params,
    request_host,
)
from stellate.convertors import (
    CONVERTOR_TYPES,
    Convertor,
    FloatConvertor,
    IntegerConvertor,
    StringConvertor,
    UUIDConvertor,
)
from stellate.datastructures import URL, URLPath
from stellate.exceptions import HTTPException
from stellate.requests import Request
from stellate.responses import PlainTextResponse, RedirectResponse
from stellate.types import ASGIApp, Lifespan, Receive, Scope, Send
from stellate.websockets import WebSocket, WebSocketClose

if TYPE_CHECKING:
    from stellate.middleware import Middleware
    from stellate.responses import Response

__all__ = [
    "CONVERTOR_TYPES",
    "BaseRoute",
    "Host",
    "Match",
    "Mount",
    "NoMatchFound",
    "Route",
    "Router",
    "WebSocketRoute",
    "compile_path",
    "get_name",
    "replace_params",
    "request_response",
    "websocket_session",
]

_HTTP = frozenset({"http"})
_WEBSOCKET = frozenset({"websocket"})
_HTTP_AND_WEBSOCKET = frozenset({"http", "websocket"})


class NoMatchFound(Exception):
    """``url_path_for`` found no route of that name taking exactly those parameters."""

    def __init__(self, name: str, path_params: dict[str, Any]) -> None:
        params = ", ".join(path_params)
        super().__init__(f'No route exists for name "{name}" and params "{params}".')
        self.name = name
        self.path_params = path_params


class Match(enum.Enum):
    """How well a route matches a scope: not at all, path-but-not-method, or fully."""

    NONE = 0
    PARTIAL = 1
    FULL = 2


# The members as module constants: looking one up on the enum class is an attribute
# lookup through its metaclass, several times slower than a global, on every request.
_NONE, _PARTIAL, _FULL = Match.NONE, Match.PARTIAL, Match.FULL

# The convertors whose regexes (these ones) can never match a "/" (see _slashes).
# Read when this module is imported, so a regex a user replaces later no longer counts.
_SLASH_FREE_REGEXES: dict[type[Convertor[Any]], str] = {
    convertor: convertor.regex
    for convertor in (StringConvertor, IntegerConvertor, FloatConvertor, UUIDConvertor)
}
_NO_MATCH: tuple[Match, Scope] = (_NONE, {})


def _merge_params(scope: Scope, params: dict[str, Any]) -> dict[str, Any]:
    """Path params seen by the child: its own on top of those of enclosing mounts."""
    outer = scope.get("path_params")
    if not outer:
        return params
    merged = dict(outer)
    merged.update(params)
    return merged


class BaseRoute:
    """What a router needs from a route: ``matches``, ``handle`` and ``url_path_for``.

    A route is also an ASGI app on its own: called directly, it answers a request it does
    not match with a plain 404 (or closes the WebSocket).
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        raise NotImplementedError()

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NotImplementedError()

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match, child_scope = self.matches(scope)
        if match is _NONE:
            if scope["type"] == "http":
                await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
            elif scope["type"] == "websocket":
                await WebSocketClose()(scope, receive, send)
            return
        scope.update(child_scope)
        await self.handle(scope, receive, send)

    def _dispatch_info(self) -> DispatchInfo:
        """How the router's index should file this route (see ``_routing_index``).

        Routes of unknown kinds are tried for every scope and path, through their own
        public ``matches``; stellate's own routes say better, unless a subclass
        overrides ``matches`` and so may match differently.
        """
        return None, None, None, self._matches_ignoring_route_path

    def _matches_ignoring_route_path(
        self, scope: Scope, route_path: str, target: Scope
    ) -> tuple[Match, Scope]:
        return self.matches(scope)

    def _reversal_key(self) -> str | None:
        """The name whose URLs this route builds (and ``"name:..."``), None if unknown.

        ``None`` makes the router try this route for every name; a subclass overriding
        ``url_path_for`` may answer names of its own choosing, so it gets ``None`` too.
        """
        native = getattr(type(self), "_native_url_path_for", None)
        if native is None or type(self).url_path_for is not native:
            return None
        name: str | None = getattr(self, "name", None)
        return name


class _PathRoute(BaseRoute):
    """Shared machinery of routes matched by a path template, for one scope type."""

    _scope_types: frozenset[str] = _HTTP
    _matches_whole_path = True  # False for a Mount, which matches a prefix
    path: str
    path_regex: re.Pattern[str]
    path_format: str
    param_convertors: dict[str, Convertor[Any]]
    # None: match with ``path_regex``, always right. ``_prepare`` sets the exact string
    # of a template without parameters; a subclass that compiles its own path (FastAPI's
    # APIRoute, which skips __init__) keeps this default.
    _exact: str | None = None

    def _prepare(self) -> None:
        self.path_regex, self.path_format, self.param_convertors = compile_path(self.path)
        # A template without parameters matches one exact string: compare, no regex.
        self._exact = None if self.param_convertors else self.path

    def _match_path(self, scope: Scope, route_path: str) -> dict[str, Any] | None:
        """The path params of ``route_path`` (merged with outer ones), or None."""
        if self._exact is not None:
            if route_path != self._exact:
                return None
            return _merge_params(scope, {})
        found = self.path_regex.match(route_path)
        return None if found is None else self._captured_params(scope, found)

    def _captured_params(self, scope: Scope, found: re.Match[str]) -> dict[str, Any] | None:
        """What the template's regex captured, converted and merged with outer params."""
        params = convert_params(found.groupdict(), self.param_convertors)
        if params is None:
            return None
        outer = scope.get("path_params")  # _merge_params, inlined
        return {**outer, **params} if outer else params

    def _matcher(self) -> Matcher:
        raise NotImplementedError()

    def _dispatch_info(self) -> DispatchInfo:
        if type(self).matches is not type(self)._native_matches:  # type: ignore[attr-defined]
            return super()._dispatch_info()
        segment = first_static_segment(self.path_format)
        return self._scope_types, segment, self._slashes(), self._matcher()

    def _slashes(self) -> int | None:
        """How many ``/`` every path this route matches has; None if that varies.

        Only a template matching whole paths has a fixed number (a ``Mount`` matches
        prefixes), and only if its parameters can never match a ``/``: those of the
        built-in convertors that say so, with their regexes unchanged.
        """
        if not self._matches_whole_path:
            return None
        for convertor in self.param_convertors.values():
            if _SLASH_FREE_REGEXES.get(type(convertor)) != convertor.regex:
                return None
        return self.path_format.count("/")

    def _check_url_params(self, name: str, path_params: dict[str, Any]) -> None:
        if name != self.name or set(path_params) != set(self.param_convertors):  # type: ignore[attr-defined]
            raise NoMatchFound(name, path_params)


class Route(_PathRoute):
    """An HTTP endpoint at a path template, for some methods.

    A function or method endpoint is called with a ``Request`` and returns a response
    (``request_response``); a class or other object is used as a raw ASGI app (that is
    how ``HTTPEndpoint`` subclasses dispatch by method themselves). ``methods`` default
    to ``GET`` for functions and to any method for ASGI apps; ``HEAD`` comes with
    ``GET`` because a HEAD answer is a GET answer without its body.
    """

    # Defaults for subclasses that do not call __init__ (FastAPI's APIRoute).
    methods: set[str] | None = None
    include_in_schema: bool = True
    max_body_size: int | None = None
    cancel_on_disconnect: bool | None = None
    timeout: float | None = None

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        methods: Collection[str] | None = None,
        name: str | None = None,
        include_in_schema: bool = True,
        middleware: Sequence[Middleware] | None = None,
        max_body_size: int | None = None,
        cancel_on_disconnect: bool | None = None,
        timeout: float | None = None,
    ) -> None:
        if not path.startswith("/"):
            raise AssertionError("Routed paths must start with '/'")
        self.path = path
        self.endpoint = endpoint
        self.name = get_name(endpoint) if name is None else name
        self.include_in_schema = include_in_schema
        self.max_body_size = max_body_size
        # None inherits from the enclosing Mount or the application (_handler_policy).
        self.cancel_on_disconnect = cancel_on_disconnect
        self.timeout = check_timeout(timeout)
        self.app: ASGIApp
        if is_plain_function(endpoint):
            self.app = request_response(endpoint)
            if methods is None:
                methods = ["GET"]
        else:
            self.app = endpoint
        self.app = wrap_middleware(self.app, middleware)
        self.methods = None
        if methods is not None:
            self.methods = {method.upper() for method in methods}
            if "GET" in self.methods:
                self.methods.add("HEAD")
        self._prepare()

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return _NO_MATCH
        return self._match_http(scope, get_route_path(scope), {})

    _native_matches = matches

    def _match_http(self, scope: Scope, route_path: str, target: Scope) -> tuple[Match, Scope]:
        # _match_path, inlined: this runs for every candidate of every request.
        exact = self._exact
        if exact is None:
            found = self.path_regex.match(route_path)
            captured = None if found is None else self._captured_params(scope, found)
            if captured is None:
                return _NO_MATCH
            params = captured
        elif route_path != exact:
            return _NO_MATCH
        else:
            outer = scope.get("path_params")  # _merge_params(scope, {})
            params = dict(outer) if outer else {}
        methods = self.methods
        if methods is not None and scope["method"] not in methods:
            return _PARTIAL, {"endpoint": self.endpoint, "path_params": params, "route": self}
        target["endpoint"] = self.endpoint
        target["path_params"] = params
        target["route"] = self
        return _FULL, target

    def _matcher(self) -> Matcher:
        return self._match_http

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        methods = self.methods
        if methods is not None and scope["method"] not in methods:
            await _method_not_allowed(methods, scope, receive, send)
            return
        app = self.app
        if self.max_body_size is not None:
            # Read per request, so that a limit set after construction applies.
            app = RequestBodyLimitResponder(app, self.max_body_size)
        cancel, timeout = resolve_policies(scope, self.cancel_on_disconnect, self.timeout)
        if not cancel and timeout is None:
            # Neither policy applies (the common case): no need for run_handler's layer.
            await app(scope, receive, send)
            return
        await run_handler(app, scope, receive, send, cancel, timeout)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        self._check_url_params(name, path_params)
        path, _ = replace_params(self.path_format, self.param_convertors, path_params)
        return URLPath(path=path, protocol="http")

    _native_url_path_for = url_path_for

    def __eq__(self, other: Any) -> bool:
        return (
            isinstance(other, Route)
            and self.path == other.path
            and self.endpoint == other.endpoint
            and self.methods == other.methods
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        methods = sorted(self.methods or ())
        return f"{type(self).__name__}(path={self.path!r}, name={self.name!r}, methods={methods!r})"


async def _method_not_allowed(
    methods: Collection[str], scope: Scope, receive: Receive, send: Send
) -> None:
    headers = {"Allow": ", ".join(sorted(methods))}
    if "app" in scope:
        # Inside an application: let its exception handlers render the 405.
        raise HTTPException(status_code=405, headers=headers)
    response = PlainTextResponse("Method Not Allowed", status_code=405, headers=headers)
    await response(scope, receive, send)


class WebSocketRoute(_PathRoute):
    """A WebSocket endpoint at a path template.

    A function or method endpoint is called with a ``WebSocket`` (``websocket_session``);
    a class (``WebSocketEndpoint``) or other object is used as a raw ASGI app.
    """

    _scope_types = _WEBSOCKET

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        name: str | None = None,
        middleware: Sequence[Middleware] | None = None,
    ) -> None:
        if not path.startswith("/"):
            raise AssertionError("Routed paths must start with '/'")
        self.path = path
        self.endpoint = endpoint
        self.name = get_name(endpoint) if name is None else name
        self.app: ASGIApp
        if is_plain_function(endpoint):
            self.app = websocket_session(endpoint)
        else:
            self.app = endpoint
        self.app = wrap_middleware(self.app, middleware)
        self._prepare()

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "websocket":
            return _NO_MATCH
        return self._match_websocket(scope, get_route_path(scope), {})

    _native_matches = matches

    def _match_websocket(self, scope: Scope, route_path: str, target: Scope) -> tuple[Match, Scope]:
        params = self._match_path(scope, route_path)
        if params is None:
            return _NO_MATCH
        target["endpoint"] = self.endpoint
        target["path_params"] = params
        target["route"] = self
        return _FULL, target

    def _matcher(self) -> Matcher:
        return self._match_websocket

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        self._check_url_params(name, path_params)
        path, _ = replace_params(self.path_format, self.param_convertors, path_params)
        return URLPath(path=path, protocol="websocket")

    _native_url_path_for = url_path_for

    def __eq__(self, other: Any) -> bool:
        return (
            isinstance(other, WebSocketRoute)
            and self.path == other.path
            and self.endpoint == other.endpoint
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={self.path!r}, name={self.name!r})"


def _child_url(app: Any, name: str, path_params: dict[str, Any]) -> URLPath | None:
    """The first URL a mounted app's routes build for ``name``, or None."""
    routes = app._url_candidates(name) if isinstance(app, Router) else getattr(app, "routes", [])
    for route in routes:
        try:
            url: URLPath = route.url_path_for(name, **path_params)
        except NoMatchFound:
            continue
        return url
    return None


class Mount(_PathRoute):
    """An ASGI app, or a table of routes, under a path prefix.

    The child sees the full ``path`` and a ``root_path`` extended by the prefix, so it
    routes what remains and still builds correct absolute URLs. Parameters in the prefix
    (``/users/{username}``) join ``path_params``. Mounted routes are named
    ``"mount_name:route_name"``; ``url_path_for(mount_name, path=...)`` addresses a path
    inside a mounted app (static files, a sub-application). Prefix parameters left out
    when reversing stay ``{placeholders}`` in the result, as in Starlette.
    """

    _matches_whole_path = False

    _scope_types = _HTTP_AND_WEBSOCKET

    # Defaults for subclasses that do not call __init__ (they set ``app`` themselves).
    max_body_size: int | None = None
    cancel_on_disconnect: bool | None = None
    timeout: float | None = None
    _base_app: ASGIApp | None = None

    def __init__(
        self,
        path: str,
        app: ASGIApp | None = None,
        routes: Sequence[BaseRoute] | None = None,
        name: str | None = None,
        *,
        middleware: Sequence[Middleware] | None = None,
        max_body_size: int | None = None,
        cancel_on_disconnect: bool | None = None,
        timeout: float | None = None,
    ) -> None:
        if path != "" and not path.startswith("/"):
            raise AssertionError("Routed paths must start with '/'")
        if app is None and routes is None:
            raise AssertionError("Either 'app=...', or 'routes=' must be specified")
        self.path = path.rstrip("/")
        self.name = name
        self.max_body_size = max_body_size
        # Handed down to the routes inside, which use them unless they set their own.
        self.cancel_on_disconnect = cancel_on_disconnect
        self.timeout = check_timeout(timeout)
        self._base_app = Router(routes=routes) if app is None else app
        self.app = wrap_middleware(self._base_app, middleware)
        self.path_regex, self.path_format, self.param_convertors = compile_path(
            self.path + "/{path:path}"
        )
        # The format and convertors users see are the prefix's, without the tail.
        self.path_format = self.path_format[: -len("/{path}")]
        del self.param_convertors["path"]

    def _mounted(self) -> ASGIApp:
        """The mounted app or table, inside any middleware given to this mount."""
        return self.app if self._base_app is None else self._base_app

    @property
    def routes(self) -> list[BaseRoute]:
        """The mounted table (empty for an app without one)."""
        return getattr(self._mounted(), "routes", [])

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] not in _HTTP_AND_WEBSOCKET:
            return _NO_MATCH
        return self._match_prefix(scope, get_route_path(scope), {})

    _native_matches = matches

    def _match_prefix(self, scope: Scope, route_path: str, target: Scope) -> tuple[Match, Scope]:
        found = self.path_regex.match(route_path)
        if found is None:
            return _NO_MATCH
        captured = found.groupdict()
        remaining = "/" + captured.pop("path")
        params = convert_params(captured, self.param_convertors) if captured else {}
        if params is None:
            return _NO_MATCH
        root_path: str = scope.get("root_path", "")
        matched = route_path[: len(route_path) - len(remaining)]
        path_params = _merge_params(scope, params)
        # Everything is read from the scope before anything is written: ``target`` may
        # be the scope itself.
        target["path_params"] = path_params
        target["app_root_path"] = scope.get("app_root_path", root_path)
        target["root_path"] = root_path + matched
        target["endpoint"] = self.app
        target["route"] = self
        return _FULL, target

    def _matcher(self) -> Matcher:
        return self._match_prefix

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        publish_policies(scope, self.cancel_on_disconnect, self.timeout)
        if self.max_body_size is not None and scope["type"] == "http":
            await RequestBodyLimitResponder(self.app, self.max_body_size)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        if self.name is not None and name == self.name and "path" in path_params:
            # A path inside the mounted app: url_path_for("static", path="/css/a.css").
            params = dict(path_params, path=str(path_params["path"]).lstrip("/"))
            with_tail = {**self.param_convertors, "path": CONVERTOR_TYPES["path"]}
            path, remaining = replace_params(self.path_format + "/{path}", with_tail, params)
            if not remaining:
                return URLPath(path=path)
        elif self.name is None or name.startswith(self.name + ":"):
            url = self._url_inside(name, path_params)
            if url is not None:
                return url
        raise NoMatchFound(name, path_params)

    def _url_inside(self, name: str, path_params: dict[str, Any]) -> URLPath | None:
        child_name = name if self.name is None else name[len(self.name) + 1 :]
        # A prefix parameter the caller leaves out stays a `{name}` placeholder in the
        # result, as in Starlette: the caller may fill it in afterwards.
        own = {key: value for key, value in path_params.items() if key in self.param_convertors}
        prefix, _ = replace_params(self.path_format, self.param_convertors, own)
        rest = {key: value for key, value in path_params.items() if key not in own}
        url = _child_url(self._mounted(), child_name, rest)
        if url is None:
            return None
        return URLPath(path=prefix + str(url), protocol=url.protocol, host=url.host)  # type: ignore[arg-type]

    _native_url_path_for = url_path_for

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Mount) and self.path == other.path and self.app == other.app

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        name = self.name or ""
        return f"{type(self).__name__}(path={self.path!r}, name={name!r}, app={self.app!r})"


class Host(BaseRoute):
    """Route by hostname: ``Host("{tenant}.example.org", app)``.

    The ``Host`` header is matched without its port and ignoring case; parameters in the
    host template join ``path_params``. A missing or malformed header (userinfo, ``#``, a
    bad port or IP literal) matches no ``Host`` route, so nothing is captured from it.
    Parameters left out when reversing stay ``{placeholders}`` in the URL's host.
    """

    def __init__(self, host: str, app: ASGIApp, name: str | None = None) -> None:
        if host.startswith("/"):
            raise AssertionError("Host must not start with '/'")
        self.host = host
        self.app = app
        self.name = name
        self.host_regex, self.host_format, self.param_convertors = compile_path(host)

    @property
    def routes(self) -> list[BaseRoute]:
        """The table of the app behind this host (empty for an app without one)."""
        return getattr(self.app, "routes", [])

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] not in _HTTP_AND_WEBSOCKET:
            return _NO_MATCH
        host = request_host(scope)
        found = None if host is None else self.host_regex.match(host)
        if found is None:
            return _NO_MATCH
        params = convert_params(found.groupdict(), self.param_convertors)
        if params is None:
            return _NO_MATCH
        return _FULL, {
            "path_params": _merge_params(scope, params),
            "endpoint": self.app,
            "route": self,
        }

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        # A host parameter the caller leaves out stays a `{name}` placeholder (as Mount).
        own = {key: value for key, value in path_params.items() if key in self.param_convertors}
        host, _ = replace_params(self.host_format, self.param_convertors, own)
        rest = {key: value for key, value in path_params.items() if key not in own}
        if self.name is not None and name == self.name and set(rest) == {"path"}:
            return URLPath(path=str(rest["path"]), host=host)
        if self.name is None or name.startswith(self.name + ":"):
            child_name = name if self.name is None else name[len(self.name) + 1 :]
            url = _child_url(self.app, child_name, rest)
            if url is not None:
                return URLPath(path=str(url), protocol=url.protocol, host=host)  # type: ignore[arg-type]
        raise NoMatchFound(name, path_params)

    _native_url_path_for = url_path_for

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Host) and self.host == other.host and self.app == other.app

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        name = self.name or ""
        return f"{type(self).__name__}(host={self.host!r}, name={name!r}, app={self.app!r})"


class Router:
    """A table of routes, dispatched in declaration order, plus the lifespan protocol.

    ``routes`` is a public list: appending to it (or assigning a new list) takes effect
    on the next request. ``redirect_slashes`` answers a path that only matches with its
    trailing slash toggled with a 307 to that path. ``default`` answers what nothing
    matches (a 404 by default).
    """

    # Defaults for subclasses that set Starlette's attributes instead of calling __init__.
    redirect_slashes: bool = True
    max_body_size: int | None = None
    _indexed_version = _named_version = -1

    def __init__(
        self,
        routes: Sequence[BaseRoute] | None = None,
        redirect_slashes: bool = True,
        default: ASGIApp | None = None,
        lifespan: Lifespan[Any] | None = None,
        *,
        on_startup: Sequence[Callable[[], Any]] | None = None,
        on_shutdown: Sequence[Callable[[], Any]] | None = None,
        middleware: Sequence[Middleware] | None = None,
        max_body_size: int | None = None,
    ) -> None:
        self.routes = list(routes or ())
        self.redirect_slashes = redirect_slashes
        self.default: ASGIApp = self.not_found if default is None else default
        warn_event_handlers(on_startup, on_shutdown)
        self.on_startup: list[Callable[[], Any]] = list(on_startup or ())
        self.on_shutdown: list[Callable[[], Any]] = list(on_shutdown or ())
        self.lifespan_context = adapt_lifespan(lifespan)
        self.max_body_size = max_body_size
        self.middleware_stack: ASGIApp = wrap_middleware(self.app, middleware)

    @property
    def routes(self) -> list[BaseRoute]:
        """The routing table, in declaration order (earlier routes win)."""
        return self._routes

    @routes.setter
    def routes(self, routes: Sequence[BaseRoute]) -> None:
        self._routes: RouteList[BaseRoute] = RouteList(routes)
        self._indexed_version = self._named_version = -1

    def _index(self) -> DispatchIndex:
        routes = self._routes
        if routes.version != self._indexed_version:
            self._dispatch_index = DispatchIndex(routes, _dispatch_info)
            self._indexed_version = routes.version
        return self._dispatch_index

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.max_body_size is not None and scope["type"] == "http":
            limited = RequestBodyLimitResponder(self.middleware_stack, self.max_body_size)
            await limited(scope, receive, send)
            return
        await self.middleware_stack(scope, receive, send)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch one connection: the first full match in declaration order wins."""
        scope_type = scope["type"]
        if "router" not in scope:
            scope["router"] = self
        if scope_type != "http" and scope_type != "websocket":
            if scope_type != "lifespan":
                _unknown_scope(scope_type)
            await self.lifespan(scope, receive, send)
            return
        if self._routes.version != self._indexed_version:
            self._index()
        index = self._dispatch_index
        table = index.http if scope_type == "http" else index.websocket
        # get_route_path, without the call when there is no root path to strip.
        route_path = get_route_path(scope) if scope.get("root_path") else scope["path"]
        partial: list[tuple[BaseRoute, Scope]] | None = None
        for route, matcher in table.candidates(route_path):
            # Stellate's own routes write a full match straight into the scope.
            match, child_scope = matcher(scope, route_path, scope)
            if match is _FULL:
                if child_scope is not scope:
                    scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
            if match is _PARTIAL:
                if partial is None:
                    partial = []
                partial.append((route, child_scope))
        if partial:
            await self._handle_partial(partial, scope, receive, send)
        elif scope_type == "http" and self.redirect_slashes and route_path != "/":
            url = self._slash_toggled_url(scope, route_path)
            if url is None:
                await self.default(scope, receive, send)
            else:
                await RedirectResponse(url=str(url))(scope, receive, send)
        else:
            await self.default(scope, receive, send)

    async def _handle_partial(
        self, partial: list[tuple[BaseRoute, Scope]], scope: Scope, receive: Receive, send: Send
    ) -> None:
        first, child_scope = partial[0]
        scope.update(child_scope)
        if not isinstance(first, Route) or type(first).handle is not Route.handle:
            await first.handle(scope, receive, send)
            return
        # Every route that has this path contributes its methods to Allow.
        allowed: set[str] = set()
        for route, _ in partial:
            if isinstance(route, Route) and route.methods is not None:
                allowed |= route.methods
        await _method_not_allowed(allowed, scope, receive, send)

    def _slash_toggled_url(self, scope: Scope, route_path: str) -> URL | None:
        """The URL with the path's trailing slash toggled, if that path matches a route."""
        strip = route_path.endswith("/")
        path = scope["path"].rstrip("/") if strip else scope["path"] + "/"
        root_path = scope.get("root_path")
        toggled = get_route_path({"path": path, "root_path": root_path}) if root_path else path
        candidates = self._index().http.candidates(toggled) if toggled else ()
        if not candidates:
            return None  # the usual miss: no need to copy the scope
        redirect_scope = dict(scope)
        redirect_scope["path"] = path
        raw_path = scope.get("raw_path")
        if raw_path is not None:
            redirect_scope["raw_path"] = raw_path.rstrip(b"/") if strip else raw_path + b"/"
        for _, matcher in candidates:
            if matcher(redirect_scope, toggled, {})[0] is _FULL:
                return URL(scope=redirect_scope)
        return None

    async def not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Nothing matched: close a WebSocket; 404 an HTTP request.

        Inside an application the 404 is raised as ``HTTPException`` so the application's
        exception handlers render it; a bare router answers plain text.
        """
        if scope["type"] == "websocket":
            await WebSocketClose()(scope, receive, send)
            return
        if "app" in scope:
            raise HTTPException(status_code=404)
        await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)

    async def lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the ASGI lifespan protocol around ``lifespan_context``."""
        app = scope.get("app", self)
        context = self.lifespan_context(app)
        # Read with a default: Starlette 1.x's Router no longer sets them, so a subclass
        # that sets Starlette's attributes itself may not have them.
        on_startup = getattr(self, "on_startup", None) or ()
        on_shutdown = getattr(self, "on_shutdown", None) or ()
        if on_startup or on_shutdown:
            context = with_event_handlers(context, on_startup, on_shutdown)
        await run_lifespan(context, scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        url = _child_url(self, name, path_params)
        if url is None:
            raise NoMatchFound(name, path_params)
        return url

    def _url_candidates(self, name: str) -> Iterator[BaseRoute]:
        """The routes that may build a URL for ``name``, in declaration order."""
        routes = self._routes
        if routes.version != self._named_version:
            self._name_index = NameIndex(routes, _reversal_key)
            self._named_version = routes.version
        return self._name_index.candidates(name)

    def mount(self, path: str, app: ASGIApp, name: str | None = None) -> None:
        self.routes.append(Mount(path, app=app, name=name))

    def host(self, host: str, app: ASGIApp, name: str | None = None) -> None:
        self.routes.append(Host(host, app=app, name=name))

    def add_route(
        self,
        path: str,
        endpoint: Callable[[Request], Awaitable[Response] | Response],
        methods: Collection[str] | None = None,
        name: str | None = None,
        include_in_schema: bool = True,
    ) -> None:
        route = Route(
            path, endpoint, methods=methods, name=name, include_in_schema=include_in_schema
        )
        self.routes.append(route)

    def add_websocket_route(
        self,
        path: str,
        endpoint: Callable[[WebSocket], Awaitable[None]],
        name: str | None = None,
    ) -> None:
        self.routes.append(WebSocketRoute(path, endpoint, name=name))

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Router) and self.routes == other.routes

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(routes={list(self.routes)!r})"


def _dispatch_info(route: BaseRoute) -> DispatchInfo:
    info = getattr(route, "_dispatch_info", None)
    if info is not None:
        return info()  # type: ignore[no-any-return]
    # A duck-typed route that does not inherit BaseRoute: tried everywhere, as is.
    return None, None, None, lambda scope, route_path, target: route.matches(scope)


def _reversal_key(route: BaseRoute) -> str | None:
    key = getattr(route, "_reversal_key", None)
    return None if key is None else key()


def _unknown_scope(scope_type: str) -> NoReturn:
    raise RuntimeError(
        f"Router cannot handle scope type {scope_type!r}; expected http, websocket or lifespan"
    )
