"""Turning endpoints into ASGI apps: the adapters behind ``Route`` and ``WebSocketRoute``.

``request_response`` and ``websocket_session`` wrap user functions; ``wrap_middleware``
applies a route's own middleware. They live apart from the routing table because they
concern what happens *after* a route is chosen, and they are re-exported by
``stellate.routing``, where users import them.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from stellate._concurrency import is_async_callable, run_sync, unwrap_callable
from stellate._context import track_start
from stellate._exception_handling import (
    handle_http_exception,
    handlers_of,
    run_handling_exceptions,
)
from stellate.requests import Request
from stellate.types import ASGIApp, Receive, Scope, Send
from stellate.websockets import WebSocket

if TYPE_CHECKING:
    from stellate.middleware import Middleware
    from stellate.responses import Response

__all__ = [
    "get_name",
    "is_plain_function",
    "request_response",
    "websocket_session",
    "wrap_middleware",
]


def get_name(endpoint: Callable[..., Any]) -> str:
    """The default route name of an endpoint: its ``__name__``, or its class's name."""
    endpoint = unwrap_callable(endpoint)
    name = getattr(endpoint, "__name__", None)
    return name if isinstance(name, str) else type(endpoint).__name__


def request_response(
    func: Callable[[Request], Awaitable[Response] | Response],
) -> ASGIApp:
    """Turn ``func(request) -> response`` into an ASGI app.

    A sync ``func`` runs in a worker thread so it cannot block the event loop. Exceptions
    go to the application's handlers from inside the route, so route middleware sees the
    handler's response.
    """
    is_async = is_async_callable(func)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        # run_handling_exceptions, inlined: this is every request's hot path.
        handlers = handlers_of(scope)
        request = Request(scope, receive, send)
        tracked = track_start(send)
        try:
            try:
                if is_async:
                    response = await func(request)  # type: ignore[misc]
                else:
                    response = await run_sync(func, request)
                if not callable(response):
                    raise TypeError(
                        f"endpoint {get_name(func)!r} returned {response!r}, not a Response"
                    )
                await response(scope, receive, tracked)
            except Exception as exc:
                await handle_http_exception(exc, handlers, scope, receive, tracked, request)
        finally:
            if request._form is not None:
                # The uploads of the form the endpoint read (after any background task ran).
                await request.close()

    return app


def websocket_session(func: Callable[[WebSocket], Awaitable[None]]) -> ASGIApp:
    """Turn ``async func(websocket)`` into an ASGI app, with the app's exception handlers."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        session = WebSocket(scope, receive=receive, send=send)

        async def run(scope: Scope, receive: Receive, send: Send) -> None:
            await func(session)

        await run_handling_exceptions(run, scope, receive, send, session)

    return app


def wrap_middleware(app: ASGIApp, middleware: Sequence[Middleware] | None) -> ASGIApp:
    # The first middleware listed is the outermost, as for the application itself.
    for cls, args, kwargs in reversed(middleware or ()):
        app = cls(app, *args, **kwargs)
    return app


def is_plain_function(endpoint: Callable[..., Any]) -> bool:
    handler = unwrap_callable(endpoint)
    return inspect.isfunction(handler) or inspect.ismethod(handler)
