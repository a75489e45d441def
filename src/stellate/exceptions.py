"""Exceptions that applications raise to produce HTTP and WebSocket answers."""

from __future__ import annotations

import http
from collections.abc import Mapping

__all__ = ["HTTPException", "StellateDeprecationWarning", "WebSocketException"]


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


class StellateDeprecationWarning(DeprecationWarning):
    """Warns about stellate APIs kept for compatibility that will be removed.

    A subclass of ``DeprecationWarning`` so that it can be filtered on its own.
    """


def _reason_phrase(status_code: int) -> str:
    try:
        return http.HTTPStatus(status_code).phrase
    except ValueError:
        return ""
