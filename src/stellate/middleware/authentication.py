"""``AuthenticationMiddleware``: put ``request.user`` and ``request.auth`` in place.

The backend runs once per connection (HTTP request or WebSocket handshake). Its answer
goes into the scope, so every layer below (routes, endpoints, ``requires``) reads it
without asking again. Lifespan and other scopes pass straight through.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from stellate.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    UnauthenticatedUser,
)
from stellate.middleware._http import send_refusal
from stellate.requests import HTTPConnection
from stellate.responses import PlainTextResponse, Response
from stellate.types import ASGIApp, Receive, Scope, Send

__all__ = ["AuthenticationMiddleware"]

ErrorHandler = Callable[[HTTPConnection, AuthenticationError], Response]


class AuthenticationMiddleware:
    """Authenticate every HTTP and WebSocket connection with ``backend``.

    A backend that returns None leaves the connection anonymous (``UnauthenticatedUser``,
    no scopes). A backend that raises ``AuthenticationError`` ends the connection with
    ``on_error(conn, exc)``'s response: by default a 400 whose body is the error message.
    A WebSocket handshake gets that response as a denial response where the server
    supports it, and is otherwise refused with close code 1008.
    """

    def __init__(
        self,
        app: ASGIApp,
        backend: AuthenticationBackend,
        on_error: Callable[[HTTPConnection, AuthenticationError], Response] | None = None,
    ) -> None:
        self.app = app
        self.backend = backend
        self.on_error: Callable[[HTTPConnection, Any], Any] = (
            on_error if on_error is not None else self.default_on_error
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        try:
            result = await self.backend.authenticate(conn)
        except AuthenticationError as exc:
            response = self.on_error(conn, exc)
            if inspect.isawaitable(response):
                response = await response
            await send_refusal(response, scope, receive, send)
            return
        if result is None:
            result = AuthCredentials(), UnauthenticatedUser()
        scope["auth"], scope["user"] = result
        await self.app(scope, receive, send)

    @staticmethod
    def default_on_error(conn: HTTPConnection, exc: Exception) -> Response:
        """A 400 whose body is the error's message: the client sent bad credentials."""
        return PlainTextResponse(str(exc), status_code=400)
