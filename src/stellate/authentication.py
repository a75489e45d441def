"""Who is making the request, and what they may do.

``AuthenticationMiddleware`` asks an :class:`AuthenticationBackend` about every connection
and stores the answer in ``scope["auth"]`` (an :class:`AuthCredentials`: the scopes
granted) and ``scope["user"]`` (a :class:`BaseUser`). Endpoints read them back as
``request.auth`` and ``request.user``, and :func:`requires` guards an endpoint by scope.

Scopes are plain strings ("authenticated", "admin", ...): the backend decides what they
mean, this module only checks that every scope an endpoint requires was granted.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec
from urllib.parse import urlencode

from stellate._concurrency import is_async_callable
from stellate.exceptions import HTTPException
from stellate.requests import HTTPConnection, Request
from stellate.responses import RedirectResponse
from stellate.websockets import WebSocket

__all__ = [
    "AuthCredentials",
    "AuthenticationBackend",
    "AuthenticationError",
    "BaseUser",
    "SimpleUser",
    "UnauthenticatedUser",
    "has_required_scope",
    "requires",
]

_P = ParamSpec("_P")

# The names ``requires`` looks for to find the connection among an endpoint's arguments.
_CONNECTION_PARAMETERS = ("request", "websocket")


class AuthenticationError(Exception):
    """Raised by a backend when credentials were given but are wrong (e.g. a bad token).

    No credentials at all is not an error: the backend returns None and the user is
    anonymous. An ``AuthenticationError`` instead stops the request, answered by the
    middleware's ``on_error`` (a 400 with the message, by default).
    """


class AuthenticationBackend:
    """Subclass and implement :meth:`authenticate` to turn a connection into a user."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        """``(credentials, user)`` for an authenticated connection, None for an anonymous one.

        Raise :class:`AuthenticationError` when the credentials offered are invalid.
        """
        raise NotImplementedError()


class AuthCredentials:
    """The scopes granted to a connection (``request.auth.scopes``)."""

    def __init__(self, scopes: Sequence[str] | None = None) -> None:
        self.scopes: list[str] = [] if scopes is None else list(scopes)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scopes={self.scopes!r})"


class BaseUser:
    """The interface of ``request.user``; subclass it for your own user model."""

    @property
    def is_authenticated(self) -> bool:
        raise NotImplementedError()

    @property
    def display_name(self) -> str:
        raise NotImplementedError()

    @property
    def identity(self) -> str:
        raise NotImplementedError()


class SimpleUser(BaseUser):
    """An authenticated user known only by a username."""

    def __init__(self, username: str) -> None:
        self.username = username

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.username

    @property
    def identity(self) -> str:
        return self.username

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.username!r})"


class UnauthenticatedUser(BaseUser):
    """The anonymous user: what ``request.user`` is when the backend returned None."""

    @property
    def is_authenticated(self) -> bool:
        return False

    @property
    def display_name(self) -> str:
        return ""

    @property
    def identity(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def has_required_scope(conn: HTTPConnection, scopes: Sequence[str]) -> bool:
    """Whether every one of ``scopes`` was granted to ``conn`` (``conn.auth.scopes``)."""
    granted = conn.auth.scopes
    return all(scope in granted for scope in scopes)


def requires(
    scopes: str | Sequence[str],
    status_code: int = 403,
    redirect: str | None = None,
) -> Callable[[Callable[_P, Any]], Callable[_P, Any]]:
    """Guard an endpoint: it runs only if the connection was granted every one of ``scopes``.

    The endpoint must take its connection as a parameter called ``request`` or
    ``websocket`` (a method of an ``HTTPEndpoint`` works too: ``def get(self, request)``).
    When a scope is missing, an HTTP request gets ``HTTPException(status_code)`` (so the
    application's handlers shape the answer), or a 303 to the route named ``redirect``
    with the original URL in its ``next`` query parameter; a WebSocket is refused with a
    close before the endpoint runs. Sync endpoints stay sync, so they still run in a
    worker thread.
    """
    required = [scopes] if isinstance(scopes, str) else list(scopes)

    def decorator(func: Callable[_P, Any]) -> Callable[_P, Any]:
        name, index = _connection_parameter(func)
        guard = _Guard(required, status_code, redirect, name, index)
        if name == "websocket":
            return _guard_websocket(func, guard)
        if is_async_callable(func):
            return _guard_async(func, guard)
        return _guard_sync(func, guard)

    return decorator


def _connection_parameter(func: Callable[..., Any]) -> tuple[str, int]:
    """The name and position of ``func``'s ``request``/``websocket`` parameter."""
    for index, parameter in enumerate(inspect.signature(func).parameters.values()):
        if parameter.name in _CONNECTION_PARAMETERS:
            return parameter.name, index
    raise TypeError(
        f"@requires() needs the endpoint to take a parameter called 'request' or "
        f"'websocket'; {getattr(func, '__qualname__', func)!r} has neither"
    )


class _Guard:
    """What a ``requires`` decorator checks, and how it finds the connection."""

    def __init__(
        self, scopes: list[str], status_code: int, redirect: str | None, name: str, index: int
    ) -> None:
        self.scopes = scopes
        self.status_code = status_code
        self.redirect = redirect
        self.name = name
        self.index = index

    def connection(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> HTTPConnection:
        conn = kwargs.get(self.name)
        if conn is None:
            conn = args[self.index]
        if not isinstance(conn, HTTPConnection):
            raise TypeError(
                f"@requires() expected a Request or WebSocket as {self.name!r}, got {conn!r}"
            )
        return conn

    def refusal(self, request: Request) -> RedirectResponse:
        """The redirect for a refused request; raises ``HTTPException`` without one."""
        if self.redirect is None:
            raise HTTPException(status_code=self.status_code)
        query = urlencode({"next": str(request.url)})
        return RedirectResponse(f"{request.url_for(self.redirect)}?{query}", status_code=303)


def _guard_websocket(func: Callable[_P, Any], guard: _Guard) -> Callable[_P, Any]:
    @functools.wraps(func)
    async def websocket_wrapper(*args: _P.args, **kwargs: _P.kwargs) -> None:
        websocket = guard.connection(args, kwargs)
        assert isinstance(websocket, WebSocket)
        if not has_required_scope(websocket, guard.scopes):
            # 1008: policy violation, the close code for "not allowed".
            await websocket.close(code=1008)
            return
        await func(*args, **kwargs)

    return websocket_wrapper


def _guard_async(func: Callable[_P, Any], guard: _Guard) -> Callable[_P, Any]:
    @functools.wraps(func)
    async def async_wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Any:
        request = guard.connection(args, kwargs)
        assert isinstance(request, Request)
        if not has_required_scope(request, guard.scopes):
            return guard.refusal(request)
        return await func(*args, **kwargs)

    return async_wrapper


def _guard_sync(func: Callable[_P, Any], guard: _Guard) -> Callable[_P, Any]:
    @functools.wraps(func)
    def sync_wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Any:
        request = guard.connection(args, kwargs)
        assert isinstance(request, Request)
        if not has_required_scope(request, guard.scopes):
            return guard.refusal(request)
        return func(*args, **kwargs)

    return sync_wrapper
