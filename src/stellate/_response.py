"""The base response classes, ``Response`` and ``PlainTextResponse``.

They live here, not in :mod:`stellate.responses` (which re-exports them and is where users
import them from), so that :mod:`stellate._fileresponse` can subclass ``Response`` and
answer with ``PlainTextResponse`` while ``responses`` imports FileResponse: the import
graph stays acyclic.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, Literal

from stellate._context import StartTrackingSend
from stellate._cookies import set_cookie_header
from stellate._headers import encode_header
from stellate.background import BackgroundTask
from stellate.datastructures import MutableHeaders
from stellate.types import Receive, Scope, Send

__all__ = ["PlainTextResponse", "Response"]


def _content_type_header(media_type: str, charset: str) -> tuple[bytes, bytes]:
    """The encoded ``Content-Type`` header for a media type and charset."""
    if media_type.startswith("text/") and "charset=" not in media_type.lower():
        media_type += "; charset=" + charset
    return encode_header("content-type", media_type)


# Content-Type headers computed so far, by (media type, charset): a response is usually
# one of a handful of types, so each is encoded and checked once, not per response.
# Bounded, since a media type may come from the request; errors are never kept.
_CONTENT_TYPES: dict[tuple[str, str], tuple[bytes, bytes]] = {}
_CONTENT_TYPES_KEPT = 64


class Response:
    """A response whose whole body is known up front.

    ``content`` is rendered by :meth:`render` (str is encoded with :attr:`charset`).
    ``Content-Length`` is added unless given or the status forbids a body (1xx, 204, 304);
    ``Content-Type`` comes from ``media_type``, with ``; charset=...`` for ``text/*``.
    """

    media_type: str | None = None
    charset = "utf-8"

    def __init__(
        self,
        content: Any = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        self.status_code = status_code
        if media_type is not None:
            self.media_type = media_type
        self.background = background
        self.body = self.render(content)
        self.init_headers(headers)

    def render(self, content: Any) -> bytes | memoryview:
        """Turn ``content`` into body bytes: None is empty, str is encoded, bytes pass."""
        kind = type(content)  # exact types first: the usual cases, checked cheaply
        if kind is str:
            return content.encode(self.charset)  # type: ignore[no-any-return]
        if kind is bytes:
            return content  # type: ignore[no-any-return]
        if content is None:
            return b""
        if isinstance(content, memoryview):
            # Bytes, whatever the view's item type or layout: Content-Length counts bytes,
            # and the server gets what ASGI says a body is.
            return content.tobytes()
        if isinstance(content, bytes):
            return content
        if isinstance(content, str):
            return content.encode(self.charset)
        if isinstance(content, bytearray):
            return bytes(content)
        raise TypeError(
            f"{type(self).__name__} content must be str, bytes or None, "
            f"not {type(content).__name__}."
        )

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        """Encode ``headers`` into :attr:`raw_headers`, adding length and type if missing."""
        names: Collection[bytes]
        if headers:
            raw_headers = [encode_header(k, v) for k, v in headers.items()]
            names = {name for name, _ in raw_headers}
        else:
            raw_headers, names = [], ()
        body: bytes | memoryview | None = getattr(self, "body", None)
        status_code = self.status_code
        if (
            body is not None
            and b"content-length" not in names
            and (200 <= status_code != 204 and status_code != 304)
        ):
            raw_headers.append((b"content-length", b"%d" % len(body)))
        media_type = self.media_type
        if media_type is not None and b"content-type" not in names:
            content_type = _CONTENT_TYPES.get((media_type, self.charset))
            if content_type is None:
                content_type = _content_type_header(media_type, self.charset)
                if len(_CONTENT_TYPES) < _CONTENT_TYPES_KEPT:
                    _CONTENT_TYPES[media_type, self.charset] = content_type
            raw_headers.append(content_type)
        self.raw_headers = raw_headers

    @property
    def headers(self) -> MutableHeaders:
        """The headers as a mutable, case-insensitive view over :attr:`raw_headers`."""
        if not hasattr(self, "_headers"):
            self._headers = MutableHeaders(raw=self.raw_headers)
        return self._headers

    def set_cookie(
        self,
        key: str,
        value: str = "",
        max_age: int | None = None,
        expires: datetime | str | int | None = None,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: Literal["lax", "strict", "none"] | None = "lax",
        partitioned: bool = False,
    ) -> None:
        """Add a ``Set-Cookie`` header, written as :mod:`http.cookies` writes it.

        ``expires`` is seconds from now (int), a datetime (naive means UTC) or an HTTP
        date string. An illegal name raises ``http.cookies.CookieError`` and an unknown
        ``samesite`` ``AssertionError``, as in Starlette; attributes may not contain ``;``
        or control characters (ValueError). Values that are not plain cookie-octets are
        quoted and escaped, so they read back unchanged through ``request.cookies``.
        ``partitioned=True`` works on every Python version.
        """
        cookie = set_cookie_header(
            key,
            value,
            max_age=max_age,
            expires=expires,
            path=path,
            domain=domain,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
            partitioned=partitioned,
        )
        self.raw_headers.append(encode_header("set-cookie", cookie))

    def delete_cookie(
        self,
        key: str,
        path: str = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: Literal["lax", "strict", "none"] | None = "lax",
        partitioned: bool = False,
    ) -> None:
        """Tell the client to drop cookie ``key``; path and domain must match how it was set."""
        self.set_cookie(
            key,
            max_age=0,
            expires=0,
            path=path,
            domain=domain,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
            partitioned=partitioned,
        )

    def _start_message(self, prefix: str) -> dict[str, Any]:
        # A copy of the list: middleware may edit the headers of the message in place,
        # which must not change what the next send of this response says.
        return {
            "type": prefix + "http.response.start",
            "status": self.status_code,
            "headers": [*self.raw_headers],
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if type(send) is StartTrackingSend:
            # What the tracker would do, once, rather than for each message: this
            # response's first message is its start.
            send.started = True
            send = send.send
        # _start_message, inlined with constant types: this is every response's hot path.
        if scope["type"] == "websocket":
            start_type, body_type = "websocket.http.response.start", "websocket.http.response.body"
        else:
            start_type, body_type = "http.response.start", "http.response.body"
        headers = [*self.raw_headers]  # a copy: see _start_message
        await send({"type": start_type, "status": self.status_code, "headers": headers})
        body = b"" if scope.get("method") == "HEAD" else self.body
        await send({"type": body_type, "body": body})
        if self.background is not None:
            await self.background()


class PlainTextResponse(Response):
    """A ``text/plain`` response."""

    media_type = "text/plain"


# Shown, documented and pickled as what they are to users: stellate.responses' classes.
Response.__module__ = PlainTextResponse.__module__ = "stellate.responses"
