"""Exceptions that applications raise to produce HTTP and WebSocket answers."""

from __future__ import annotations

import http
from collections.abc import Mapping

__all__ = [
    "HTTPException",
    "HandlerTimeout",
    "StellateDeprecationWarning",
    "WebSocketException",
]


class HTTPException(Exception):
    """Raise to answer the current request with ``status_code``.

    ``detail`` defaults to the standard reason phrase; non-standard codes are allowed and
    then default to an empty detail. ``headers`` are sent with the error response.
    """

    def __init__(
        self,
        status_code: int,
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if detail is None:
            detail = _reason_phrase(status_code)
        self.status_code = status_code
        self.detail = detail
        self.headers = headers
        super().__init__(status_code, detail)

    def __str__(self) -> str:
        return f"{self.status_code}: {self.detail}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code!r}, detail={self.detail!r})"


class HandlerTimeout(HTTPException):
    """A handler missed its deadline (``timeout`` of the app, a ``Mount`` or a ``Route``).

    It is an ``HTTPException`` with status 503, raised where the handler was cancelled,
    so it reaches the application's exception handlers like any other: register a
    handler for ``HandlerTimeout`` (or for 503) to answer it your own way. ``timeout`` is
    the deadline that expired, in seconds.
    """

    def __init__(
        self,
        timeout: float | None = None,
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if detail is None:
            detail = "The server did not finish handling the request in time."
        super().__init__(503, detail, headers)
        self.timeout = timeout


class WebSocketException(Exception):
    """Raise inside a WebSocket handler to close the connection with ``code`` and ``reason``."""

    def __init__(self, code: int, reason: str | None = None) -> None:
        self.code = code
        self.reason = reason or ""
        super().__init__(code, self.reason)

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, reason={self.reason!r})"


class StellateDeprecationWarning(UserWarning):
    """Warns about stellate APIs kept for compatibility that will be removed.

    A ``UserWarning``, like Starlette's ``StarletteDeprecationWarning``, and not a
    ``DeprecationWarning``: Python hides those by default outside ``__main__``, and these
    warnings are meant for the application's developers, who should see them. Filter it
    on its own by its class.
    """


def _reason_phrase(status_code: int) -> str:
    return _PHRASES.get(status_code, "")


# Looked up per raised HTTPException: a dict, not an enum lookup through its metaclass.
_PHRASES = {status.value: status.phrase for status in http.HTTPStatus}
