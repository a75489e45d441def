"""The innermost layer of an application's stack: handled exceptions become responses.

``ExceptionMiddleware`` holds the application's exception handlers (all of them but the
one for 500/``Exception``, which belongs to ``ServerErrorMiddleware`` at the outside of the
stack). It publishes them in the request context (:mod:`stellate._context`) so each endpoint can
answer its own exceptions (see ``stellate._exception_handling``), and catches what escapes
the router itself: a ``404``/``405`` raised before any endpoint runs, say.

Out of the box it answers ``HTTPException`` with a plain-text response carrying the
exception's detail, status and headers, and ``WebSocketException`` by closing the socket
with the exception's code and reason.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from stellate._context import context_of, track_start
from stellate._exception_handling import (
    check_handler_key,
    handle_http_exception,
    run_handling_exceptions,
)
from stellate.exceptions import HTTPException, WebSocketException
from stellate.requests import Request
from stellate.responses import PlainTextResponse, Response
from stellate.types import ASGIApp, ExceptionHandler, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from stellate.websockets import WebSocket

__all__ = ["ExceptionMiddleware"]

# How many default answers (status, detail) an ExceptionMiddleware keeps built.
_ANSWERS_KEPT = 32
# Statuses whose responses must not carry a body (RFC 9110 §15.3.5, §15.4.5).
_BODYLESS_STATUSES = frozenset({204, 304})


class ExceptionMiddleware:
    """Answer exceptions that have a registered handler; re-raise the others."""

    def __init__(
        self,
        app: ASGIApp,
        handlers: Mapping[Any, ExceptionHandler] | None = None,
        debug: bool = False,
    ) -> None:
        self.app = app
        self.debug = debug  # Kept for API compatibility; handled errors look the same in debug.
        self._answers: dict[tuple[int, str], Response] = {}
        self._status_handlers: dict[int, ExceptionHandler] = {}
        self._exception_handlers: dict[type[BaseException], ExceptionHandler] = {
            HTTPException: self._answer_http_exception,
            WebSocketException: self.websocket_exception,
        }
        for key, handler in (handlers or {}).items():
            self.add_exception_handler(key, handler)

    def add_exception_handler(
        self,
        exc_class_or_status_code: int | type[Exception],
        handler: ExceptionHandler,
    ) -> None:
        """Register ``handler`` for an exception class (and its subclasses) or a status code."""
        check_handler_key(exc_class_or_status_code)
        if isinstance(exc_class_or_status_code, int):
            self._status_handlers[exc_class_or_status_code] = handler
        else:
            self._exception_handlers[exc_class_or_status_code] = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if scope_type != "http" and scope_type != "websocket":
            await self.app(scope, receive, send)
            return
        handlers = (self._exception_handlers, self._status_handlers)
        context_of(scope).exception_handlers = handlers
        if scope_type == "http":
            # run_handling_exceptions, inlined (every request's hot path); the handlers'
            # Request is built only if something is raised.
            tracked = track_start(send)
            try:
                await self.app(scope, receive, tracked)
            except Exception as exc:
                await handle_http_exception(exc, handlers, scope, receive, tracked, None)
            return
        from stellate.websockets import WebSocket

        websocket = WebSocket(scope, receive, send)
        send = _following_handshake(websocket, send)
        await run_handling_exceptions(self.app, scope, receive, send, websocket)

    async def _answer_http_exception(self, conn: Any, exc: Exception) -> Any:
        # ``conn`` is a Request or a WebSocket, whichever the failing connection is.
        if conn.scope["type"] == "websocket":
            await self._http_exception_on_websocket(conn, exc)
            return None
        if type(self).http_exception is ExceptionMiddleware.http_exception:
            return self._default_answer(conn, exc)
        return await self._call_http_exception(conn, exc)

    async def _call_http_exception(self, conn: Any, exc: Exception) -> Response:
        """What :meth:`http_exception` (the default or an override) answers.

        An override is ``async def``, as the method is; a plain ``def`` override (written
        for older stellate releases, where the method was sync) is accepted too.
        """
        answer: Any = self.http_exception(conn, exc)
        if inspect.isawaitable(answer):
            answer = await answer
        response: Response = answer
        return response

    def _default_answer(self, request: Request, exc: Exception) -> Response:
        """What :meth:`http_exception` answers, built once per status and detail.

        A response can be sent any number of times, and this one goes straight to the
        client, never to user code, so the 404s of a scan share one. Only answers without
        extra headers are kept, and a bounded number of them (details may be per request).
        """
        assert isinstance(exc, HTTPException)
        if exc.headers or type(exc.detail) is not str:
            return _plain_answer(exc)
        key = (exc.status_code, exc.detail)
        response = self._answers.get(key)
        if response is None:
            response = _plain_answer(exc)
            if len(self._answers) < _ANSWERS_KEPT:
                self._answers[key] = response
        return response

    async def _http_exception_on_websocket(self, websocket: WebSocket, exc: Exception) -> None:
        """An ``HTTPException`` raised in a WebSocket handler ends the connection.

        Before the handshake is answered, a server with the denial-response extension gets
        the HTTP error itself; otherwise the connection is closed, with 1011 (internal
        error) for 5xx statuses and 1008 (policy violation) for the rest, and the detail as
        the reason. (A close before accept is turned into a 403 by the server.)
        """
        from stellate.websockets import WebSocketState

        assert isinstance(exc, HTTPException)
        if websocket.application_state is not WebSocketState.CONNECTING:
            if websocket.application_state is not WebSocketState.CONNECTED:
                return  # Already closed or answered: there is no one left to tell.
        elif "websocket.http.response" in websocket.scope.get("extensions", {}):
            denial = await self._call_http_exception(websocket, exc)
            await websocket.send_denial_response(denial)
            return
        code = 1011 if exc.status_code >= 500 else 1008
        await websocket.close(code=code, reason=exc.detail)

    async def http_exception(self, request: Request, exc: Exception) -> Response:
        """The default answer to an ``HTTPException``: its detail as plain text.

        204 and 304 responses cannot have a body, so those get an empty response. Override
        it (``async def``, calling ``await super().http_exception(request, exc)`` if need
        be) to shape every default HTTP error answer.
        """
        return _plain_answer(exc)

    async def websocket_exception(self, websocket: WebSocket, exc: Exception) -> None:
        """The default answer to a ``WebSocketException``: close with its code and reason."""
        from stellate.websockets import WebSocketState

        assert isinstance(exc, WebSocketException)
        if websocket.application_state in (WebSocketState.CONNECTING, WebSocketState.CONNECTED):
            await websocket.close(code=exc.code, reason=exc.reason)


def _plain_answer(exc: Exception) -> Response:
    """The response of the default :meth:`ExceptionMiddleware.http_exception`."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code in _BODYLESS_STATUSES:
        return Response(status_code=exc.status_code, headers=headers)
    return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=headers)


def _following_handshake(websocket: WebSocket, send: Send) -> Send:
    """``send``, keeping ``websocket.application_state`` in step with what the app sends.

    The app talks to the server through its own ``WebSocket`` object (or raw messages), not
    through the one this middleware gives to exception handlers; without this, a handler
    would believe the handshake still pending and answer an accepted (or closed) socket
    with a denial response (or a second close).
    """
    from stellate.websockets import WebSocketState

    async def following_send(message: Message) -> None:
        await send(message)
        kind = message["type"]
        if kind == "websocket.accept":
            websocket.application_state = WebSocketState.CONNECTED
        elif kind == "websocket.close" or kind.startswith("websocket.http.response."):
            websocket.application_state = WebSocketState.DISCONNECTED

    return following_send
