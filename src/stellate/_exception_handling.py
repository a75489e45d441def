"""Turning exceptions raised by an ASGI app into responses, via registered handlers.

``ExceptionMiddleware`` publishes the application's handlers in the request context
(:mod:`stellate._context`) as ``(exception_handlers, status_handlers)``.
Endpoints (``routing.request_response``, ``routing.websocket_session``) and the middleware
itself handle what their app raises the same way (:func:`run_handling_exceptions`, or
:func:`handle_http_exception` inlined on the HTTP hot path), so a handler answers the
request as close to the failure as possible: inside the route, where route middleware
still sees the handler's response, and again at the middleware for errors raised outside
any route (a 404 from the router, an error in middleware). Layers with nothing between
them share one :class:`StartTrackingSend` to know whether the response has started.

Handler lookup:

* an ``HTTPException`` first looks for a handler registered for its status code, so
  ``{404: not_found}`` catches every 404 whatever the exception subclass;
* then the exception's class is looked up along its MRO, so the most specific registered
  class wins and ``Exception`` catches everything.

Cancellation is a ``BaseException`` on both asyncio and trio, so ``except Exception`` here
never intercepts it; neither do ``KeyboardInterrupt`` and ``SystemExit``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from stellate._concurrency import is_async_callable, run_sync
from stellate._context import StartTrackingSend, get_context, track_start
from stellate.exceptions import HTTPException
from stellate.requests import Request
from stellate.types import ASGIApp, ExceptionHandler, Receive, Scope, Send

if TYPE_CHECKING:
    from stellate.requests import HTTPConnection
    from stellate.websockets import WebSocket

__all__ = [
    "answer_websocket_exception",
    "handle_http_exception",
    "handlers_of",
    "run_handling_exceptions",
    "wrap_app_handling_exceptions",
]

ExceptionHandlers: TypeAlias = Mapping[Any, ExceptionHandler]
StatusHandlers: TypeAlias = Mapping[int, ExceptionHandler]

NO_HANDLERS: tuple[ExceptionHandlers, StatusHandlers] = ({}, {})


def handlers_of(scope: Scope) -> tuple[ExceptionHandlers, StatusHandlers]:
    """The exception handlers ``ExceptionMiddleware`` published for this request, if any."""
    context = get_context(scope)
    handlers = None if context is None else context.exception_handlers
    return NO_HANDLERS if handlers is None else handlers


def check_handler_key(key: object) -> None:
    """Reject keys that could never match, when the handler is registered.

    A typo such as ``{"404": handler}`` would otherwise be silently ignored forever.
    """
    if isinstance(key, int) and not isinstance(key, bool):
        return
    if isinstance(key, type) and issubclass(key, BaseException):
        return
    raise TypeError(
        "exception handlers are keyed by an HTTP status code (int) or an exception class, "
        f"not {key!r}"
    )


def lookup_handler(
    exc: BaseException,
    exception_handlers: ExceptionHandlers,
    status_handlers: StatusHandlers,
) -> ExceptionHandler | None:
    """The handler for ``exc``: its status code's handler first, then along its class's MRO."""
    if status_handlers and isinstance(exc, HTTPException):
        handler = status_handlers.get(exc.status_code)
        if handler is not None:
            return handler
    for cls in type(exc).__mro__:
        handler = exception_handlers.get(cls)
        if handler is not None:
            return handler
    return None


def wrap_app_handling_exceptions(app: ASGIApp, conn: HTTPConnection) -> ASGIApp:
    """Run ``app``; hand an exception it raises to the matching registered handler.

    ``conn`` is the ``Request`` or ``WebSocket`` given to handlers. An HTTP handler returns a
    response, which is sent (sync handlers run in a worker thread). A WebSocket handler
    may talk to the connection itself, or return a response, which refuses the
    handshake (:func:`answer_websocket_exception`). An exception without a handler is
    re-raised unchanged. If an HTTP response had already started when the exception
    came, no second response can be sent, so a ``RuntimeError`` says so.

    A handled exception loses its traceback once answered: an application that raises
    one shared instance (a module-level ``HTTPException``) would otherwise grow its
    traceback, and keep every request's frames alive, on each raise.
    """

    async def wrapped_app(scope: Scope, receive: Receive, send: Send) -> None:
        await run_handling_exceptions(app, scope, receive, send, conn)

    return wrapped_app


async def run_handling_exceptions(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    conn: HTTPConnection | None = None,
) -> None:
    """What :func:`wrap_app_handling_exceptions` does, called directly (no app is built).

    The hot path of every request runs through this, so what only an exception needs is
    done only then: ``conn`` may be None (HTTP scopes only), and then the ``Request``
    handed to the handler is built once something was raised.
    """
    # Read now, not when something is raised: a mounted application shares the scope
    # and publishes its own handlers in it, which are not this layer's.
    handlers = handlers_of(scope if conn is None else conn.scope)
    if scope["type"] != "http":
        # The WebSocket's own state says whether the handshake was answered: no need to
        # follow the app's messages (every frame of the session would pay it).
        try:
            await app(scope, receive, send)
        except Exception as exc:
            handler = lookup_handler(exc, *handlers)
            if handler is None:
                raise
            assert conn is not None, "a WebSocket scope needs its connection"
            await answer_websocket_exception(handler, cast("WebSocket", conn), exc)
        return
    tracked = track_start(send)
    try:
        await app(scope, receive, tracked)
    except Exception as exc:
        await handle_http_exception(exc, handlers, scope, receive, tracked, conn)


async def handle_http_exception(
    exc: Exception,
    handlers: tuple[ExceptionHandlers, StatusHandlers],
    scope: Scope,
    receive: Receive,
    send: StartTrackingSend,
    conn: HTTPConnection | None,
) -> None:
    """Answer ``exc`` (raised while sending through ``send``) with its handler, or re-raise.

    Call it from the ``except`` block that caught ``exc``: an exception without a handler
    is raised again from here, its original traceback kept (this frame is added to it).
    """
    handler = lookup_handler(exc, *handlers)
    if handler is None:
        raise exc
    if send.started:
        raise RuntimeError("Caught handled exception, but response already started.") from exc
    if conn is None:
        conn = Request(scope, receive, send)
    func: Callable[..., Any] = handler  # _call_handler, inlined: every 404 comes here
    if _is_async_handler(func):
        response = await func(conn, exc)
    else:
        response = await run_sync(func, conn, exc)
    if response is None:
        raise TypeError(
            f"the exception handler {handler!r} returned None; HTTP exception handlers "
            "must return a Response"
        ) from exc
    exc.__traceback__ = None  # Answered: see wrap_app_handling_exceptions.
    await response(scope, receive, send)


async def answer_websocket_exception(
    handler: ExceptionHandler, websocket: WebSocket, exc: Exception
) -> None:
    """Call a WebSocket scope's ``handler`` for ``exc``; send the response it may return.

    A handler may answer by talking to ``websocket`` itself (close it, say) and return
    None. A response it returns refuses the handshake: it is sent as the denial response
    (an auth handler's 401 reaches the client as a 401), or, on a server without the
    denial-response extension, becomes a close (which the server turns into a 403). Once
    the handshake was accepted or answered, no response can be sent any more.
    """
    # Imported here: responses.py uses this module, and sits below websockets.py.
    from stellate.websockets import WebSocketState

    response = await _call_handler(handler, websocket, exc)
    exc.__traceback__ = None  # Answered: see wrap_app_handling_exceptions.
    if response is None:
        return
    if websocket.application_state is not WebSocketState.CONNECTING:
        raise RuntimeError("Caught handled exception, but response already started.") from exc
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(response)
    else:
        await websocket.close(code=1008)


async def _call_handler(handler: ExceptionHandler, conn: HTTPConnection, exc: Exception) -> Any:
    func: Callable[..., Any] = handler  # Request and WebSocket handlers alike.
    if _is_async_handler(func):
        return await func(conn, exc)
    return await run_sync(func, conn, exc)


# Whether each handler seen so far is async: the inspection costs more than the rest of
# a 404's answer. Weak keys: a handler (and the app a bound one holds) is not kept alive.
_ASYNC_HANDLERS: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def _is_async_handler(handler: Callable[..., Any]) -> bool:
    try:
        return _ASYNC_HANDLERS[handler]
    except KeyError:
        found = _ASYNC_HANDLERS[handler] = is_async_callable(handler)
        return found
    except TypeError:  # a callable that cannot be weakly referenced, or hashed
        return is_async_callable(handler)
