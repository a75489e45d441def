"""The application object: a router, its middleware stack, and application state.

``Stellate`` is itself an ASGI app. On its first call it builds its middleware stack, once:

    ServerErrorMiddleware        unhandled errors -> 500 (traceback page in debug)
      user middleware...         in declaration order, the first one outermost
        ExceptionMiddleware      handled exceptions (HTTPException, registered handlers)
          Router                 routes, mounts, hosts, and the lifespan protocol

Because the stack is built from declarations (``Middleware`` objects) rather than wrapped
eagerly, middleware and exception handlers can be added after construction, but only
until the first call (a lifespan startup or a request): after that the stack is fixed, and
changing the declarations could only be silently ignored, so it is an error instead.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from stellate._app_concurrency import LoopLimiter, serve_lifespan
from stellate._body_limit import RequestBodyLimitMiddleware
from stellate._concurrency import current_limiter
from stellate._context import RequestContext, context_of, get_context
from stellate._disconnect import ReceiveMultiplexer
from stellate._exception_handling import check_handler_key
from stellate._handler_policy import check_timeout, publish_policies
from stellate.background import TaskSupervisor
from stellate.datastructures import State
from stellate.exceptions import StellateDeprecationWarning
from stellate.middleware import Middleware, _MiddlewareFactory
from stellate.middleware.errors import ServerErrorMiddleware
from stellate.middleware.exceptions import ExceptionMiddleware
from stellate.routing import BaseRoute, Router
from stellate.types import ASGIApp, ExceptionHandler, Lifespan, Receive, Scope, Send

if TYPE_CHECKING:
    from stellate.datastructures import URLPath
    from stellate.requests import Request
    from stellate.responses import Response
    from stellate.websockets import WebSocket

__all__ = ["Stellate"]

AppType = TypeVar("AppType", bound="Stellate")
P = ParamSpec("P")

#: Legacy startup/shutdown callbacks: sync or async, called with no arguments.
_EventHandler = Callable[[], Any]

#: The default ``shutdown_timeout``, in seconds.
_SHUTDOWN_TIMEOUT = 30.0


class Stellate:
    """An ASGI application: routes, middleware, exception handlers and a lifespan.

    ``on_startup``/``on_shutdown`` (lists of callables) are still accepted for applications
    written before lifespans, with a ``StellateDeprecationWarning``; they cannot be combined
    with ``lifespan``. ``max_body_size`` is handed to the router as the default request
    body limit.

    The structured-concurrency settings: ``shutdown_timeout`` is how long ``app.tasks``
    (a :class:`~stellate.background.TaskSupervisor`) waits for its tasks at shutdown;
    ``cancel_on_disconnect`` and ``timeout`` are the defaults of every route (a ``Mount``
    or ``Route`` may set its own); ``thread_limit`` bounds the worker threads used on the
    application's behalf (None: anyio's default limiter).
    """

    state: State
    router: Router
    exception_handlers: dict[Any, ExceptionHandler]
    user_middleware: list[Middleware]
    # Class-level defaults, for subclasses that do not call this __init__ (FastAPI's
    # application sets only what Starlette's constructor sets); ``tasks`` is made on
    # first use.
    middleware_stack: ASGIApp | None = None
    max_body_size: int | None = None
    cancel_on_disconnect: bool = False
    timeout: float | None = None
    _limiter: LoopLimiter | None = None
    _debug: bool = False
    _debug_layers: Sequence[ServerErrorMiddleware | ExceptionMiddleware] = ()

    def __init__(
        self: AppType,
        debug: bool = False,
        routes: Sequence[BaseRoute] | None = None,
        middleware: Sequence[Middleware] | None = None,
        exception_handlers: Mapping[Any, ExceptionHandler] | None = None,
        lifespan: Lifespan[AppType] | None = None,
        on_startup: Sequence[_EventHandler] | None = None,
        on_shutdown: Sequence[_EventHandler] | None = None,
        *,
        max_body_size: int | None = None,
        shutdown_timeout: float = _SHUTDOWN_TIMEOUT,
        cancel_on_disconnect: bool = False,
        timeout: float | None = None,
        thread_limit: int | None = None,
    ) -> None:
        if on_startup or on_shutdown:
            if lifespan is not None:
                raise TypeError("Use either 'lifespan' or 'on_startup'/'on_shutdown', not both.")
            warnings.warn(
                "on_startup and on_shutdown are deprecated; use a lifespan: "
                "lifespan(app) returning an async context manager",
                StellateDeprecationWarning,
                stacklevel=2,
            )
        handlers = dict(exception_handlers or {})
        for key in handlers:
            check_handler_key(key)
        self._debug = debug
        self._debug_layers = []
        self.state = State()
        self.max_body_size = max_body_size
        self.router = Router(routes, lifespan=lifespan, max_body_size=max_body_size)
        # Given to the router after construction so that the warning above, which points
        # at the caller, is the only one.
        self.router.on_startup = list(on_startup or ())
        self.router.on_shutdown = list(on_shutdown or ())
        self.exception_handlers = handlers
        self.user_middleware = [_checked_middleware(entry) for entry in middleware or ()]
        self.middleware_stack = None
        self.tasks = TaskSupervisor(shutdown_timeout)
        self.cancel_on_disconnect = cancel_on_disconnect
        self.timeout = check_timeout(timeout)
        self._limiter = None if thread_limit is None else LoopLimiter(thread_limit)

    @functools.cached_property
    def tasks(self) -> TaskSupervisor:
        """The supervisor of the application's lifespan tasks (see ``shutdown_timeout``).

        Set by ``__init__``; made here, with the default timeout, for a subclass that
        does not call it.
        """
        return TaskSupervisor(_SHUTDOWN_TIMEOUT)

    @property
    def debug(self) -> bool:
        """Whether unhandled errors are answered with a traceback page.

        Setting it after the stack is built reaches the built error layers directly, so
        the stack (and the user middleware in it) is not rebuilt.
        """
        return self._debug

    @debug.setter
    def debug(self, value: bool) -> None:
        self._debug = value
        for layer in self._debug_layers:
            layer.debug = value

    @property
    def routes(self) -> list[BaseRoute]:
        """The router's routes, in matching order."""
        return self.router.routes

    def build_middleware_stack(self) -> ASGIApp:
        """Wrap the router in the error layers and the user middleware; return the outermost."""
        error_handler: ExceptionHandler | None = None
        handlers: dict[Any, ExceptionHandler] = {}
        for key, handler in self.exception_handlers.items():
            # An unhandled exception is a 500: both keys mean "the server error page".
            if key == 500 or key is Exception:
                error_handler = handler
            else:
                handlers[key] = handler
        declared = [
            Middleware(ServerErrorMiddleware, handler=error_handler, debug=self.debug),
            *self.user_middleware,
            Middleware(ExceptionMiddleware, handlers=handlers, debug=self.debug),
        ]
        if self.max_body_size is not None:
            # Outside the user middleware too: a middleware that reads the body (to log
            # or sign it) is held to the application's limit, like the endpoint. The
            # router's own limit, inside, shares this one's counter (innermost wins).

            limit = Middleware(RequestBodyLimitMiddleware, max_body_size=self.max_body_size)
            declared.insert(1, limit)
        app: ASGIApp = self.router
        layers: list[ServerErrorMiddleware | ExceptionMiddleware] = []
        for cls, args, kwargs in reversed(declared):
            app = cls(app, *args, **kwargs)
            if isinstance(app, ServerErrorMiddleware | ExceptionMiddleware):
                layers.append(app)
        self._debug_layers = layers
        return app

    @property
    def thread_limit(self) -> int | None:
        """How many worker threads may run at once on this application's behalf."""
        return None if self._limiter is None else self._limiter.total_tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self
        if self.middleware_stack is None:
            self.middleware_stack = self.build_middleware_stack()
        kind = scope["type"]
        installed: RequestContext | None = None
        if kind == "http":
            context = get_context(scope)
            if context is None or context.receive is None:
                # One multiplexer per connection (DESIGN.md §3.5), shared by all layers.
                installed = context_of(scope)
                mux = installed.receive = ReceiveMultiplexer(receive)
                receive = mux.receive
            if self.cancel_on_disconnect or self.timeout is not None:
                publish_policies(scope, self.cancel_on_disconnect or None, self.timeout)
        try:
            if self._limiter is None:
                if kind == "lifespan":
                    await serve_lifespan(self.tasks, self.middleware_stack, scope, receive, send)
                else:
                    await self.middleware_stack(scope, receive, send)
                return
            reset = current_limiter.set(self._limiter.get())
            try:
                await self._serve(kind, scope, receive, send)
            finally:
                current_limiter.reset(reset)
        finally:
            if installed is not None:
                # The multiplexer holds the server's receive, hence the server's object for
                # the connection, which holds the scope: a reference cycle per request.
                installed.receive = None

    async def _serve(self, kind: str, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.middleware_stack is not None
        if kind == "lifespan":
            await serve_lifespan(self.tasks, self.middleware_stack, scope, receive, send)
        else:
            await self.middleware_stack(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        """The path of the route called ``name``, with ``path_params`` filled in."""
        return self.router.url_path_for(name, **path_params)

    def add_middleware(
        self,
        middleware_class: _MiddlewareFactory[P],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> None:
        """Wrap the application in another middleware, outside those declared before it."""
        if self.middleware_stack is not None:
            raise RuntimeError("Cannot add middleware after an application has started")
        self.user_middleware.insert(0, Middleware(middleware_class, *args, **kwargs))

    def add_exception_handler(
        self,
        exc_class_or_status_code: int | type[Exception],
        handler: ExceptionHandler,
    ) -> None:
        """Answer an exception class (with subclasses) or an HTTP status code with ``handler``."""
        if self.middleware_stack is not None:
            raise RuntimeError("Cannot add exception handlers after an application has started")
        check_handler_key(exc_class_or_status_code)
        self.exception_handlers[exc_class_or_status_code] = handler

    def add_route(
        self,
        path: str,
        route: Callable[[Request], Awaitable[Response] | Response],
        methods: list[str] | None = None,
        name: str | None = None,
        include_in_schema: bool = True,
    ) -> None:
        """Route ``path`` to the endpoint ``route`` (see ``Router.add_route``)."""
        self.router.add_route(
            path, route, methods=methods, name=name, include_in_schema=include_in_schema
        )

    def add_websocket_route(
        self,
        path: str,
        route: Callable[[WebSocket], Awaitable[None]],
        name: str | None = None,
    ) -> None:
        """Route WebSocket connections to ``path`` to ``route``."""
        self.router.add_websocket_route(path, route, name=name)

    def mount(self, path: str, app: ASGIApp, name: str | None = None) -> None:
        """Serve every path under ``path`` with ``app`` (see ``routing.Mount``)."""
        self.router.mount(path, app=app, name=name)

    def host(self, host: str, app: ASGIApp, name: str | None = None) -> None:
        """Serve requests for ``host`` with ``app`` (see ``routing.Host``)."""
        self.router.host(host, app=app, name=name)


def _checked_middleware(entry: Middleware) -> Middleware:
    # Caught here, at construction, rather than as a confusing unpacking error on the
    # first request.
    if not isinstance(entry, Middleware):
        raise TypeError(
            f"middleware must be a sequence of Middleware(cls, ...) declarations, got {entry!r}"
        )
    return entry
