"""The outbound side: responses are ASGI applications that send themselves.

A :class:`Response` renders its body and encodes its headers once, in ``__init__``; each
call then only sends two messages built from that work, so a prebuilt response (a health
check, a cached page) can be sent any number of times. Header names and values are checked
as they are encoded: a CR, LF or NUL that reached the wire would let whoever controls the
value add headers of their own, so it is refused with ValueError at construction, where the
mistake is, instead of surfacing as a server error later.

:class:`StreamingResponse` sends its body while it is produced, and stops when the client
disconnects: how that is noticed (a listener on servers older than ASGI 2.4, ``send``
raising on newer ones) lives in :mod:`stellate._sending`, shared by every streamed body.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Collection, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from stellate._concurrency import iterate_in_threads, run_sync
from stellate._context import StartTrackingSend
from stellate._cookies import set_cookie_header
from stellate._headers import encode_header
from stellate._ranges import MalformedRangeHeader, RangeNotSatisfiable
from stellate._sending import (
    close_shielded,
    prefixed_send,
    send_until_disconnect,
    wait_for_http_disconnect,
)
from stellate.background import BackgroundTask
from stellate.datastructures import URL, MutableHeaders
from stellate.types import Receive, Scope, Send

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from stellate._fileresponse import FileResponse

__all__ = [
    "FileResponse",
    "HTMLResponse",
    "JSONResponse",
    "MalformedRangeHeader",
    "PlainTextResponse",
    "RangeNotSatisfiable",
    "RedirectResponse",
    "Response",
    "StreamingResponse",
]

# Kept as they are in a Location: RFC 3986 reserved characters (they give the URL its
# structure) and "%" (the URL may already be percent-encoded). Everything else that is
# not unreserved, including CR and LF, is percent-encoded.
_LOCATION_SAFE = ":/?#[]@!$&'()*+,;=%"


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


def _message_prefix(scope: Scope) -> str:
    """Responses sent on a websocket scope are denial responses (ASGI extension)."""
    return "websocket." if scope["type"] == "websocket" else ""


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


class HTMLResponse(Response):
    """A ``text/html`` response."""

    media_type = "text/html"


class PlainTextResponse(Response):
    """A ``text/plain`` response."""

    media_type = "text/plain"


class JSONResponse(Response):
    """``content`` serialized as compact UTF-8 JSON.

    NaN and infinities are refused (ValueError): they are not JSON, and a client's parser
    would choke on them after a 200.
    """

    media_type = "application/json"

    def __init__(
        self,
        content: Any,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        super().__init__(content, status_code, headers, media_type, background)

    def render(self, content: Any) -> bytes:
        if json.dumps is not _STDLIB_DUMPS:
            # Someone patched ``responses.json`` (or ``json.dumps`` itself), as code
            # written for Starlette does to change every JSON body: it takes effect.
            dumped: str = json.dumps(
                content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
            )
            return dumped.encode("utf-8")
        return _JSON_ENCODER.encode(content).encode("utf-8")


# Built once: json.dumps with these options would build the same encoder per response.
_JSON_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_STDLIB_DUMPS = json.dumps


class RedirectResponse(Response):
    """An empty response sending the client to ``url`` (307 keeps the method and body).

    The ``Location`` value is percent-encoded except for URL structure and existing
    escapes, so a URL built from user input can never split the header.
    """

    def __init__(
        self,
        url: str | URL,
        status_code: int = 307,
        headers: Mapping[str, str] | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        super().__init__(
            content=b"", status_code=status_code, headers=headers, background=background
        )
        location = quote(str(url), safe=_LOCATION_SAFE).encode("ascii")
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"location"]
        self.raw_headers.append((b"location", location))


Content = str | bytes | memoryview
SyncContentStream = Iterable[Content]
AsyncContentStream = AsyncIterable[Content]
ContentStream = AsyncContentStream | SyncContentStream


class StreamingResponse(Response):
    """A response whose body is produced while it is sent.

    ``content`` is an async iterable, or a sync one (then each item is fetched in a worker
    thread, so a blocking generator does not stall the server). str chunks are encoded
    with :attr:`charset`. The iteration stops as soon as the client disconnects, even while
    the iterator is waiting for its next chunk, and the iterator is closed then, so its
    ``finally`` blocks run (with a few seconds, shielded, to finish their awaits). On
    ASGI 2.4 servers nothing listens: the ``OSError`` the server raises from ``send`` is
    raised as :class:`~stellate.requests.ClientDisconnect`.
    """

    body_iterator: AsyncContentStream

    def __init__(
        self,
        content: ContentStream,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        self._sync_content: SyncContentStream | None = None
        if isinstance(content, AsyncIterable):
            self.body_iterator = content
        else:
            self._sync_content = content
            self.body_iterator = iterate_in_threads(content)
        self.status_code = status_code
        if media_type is not None:
            self.media_type = media_type
        self.background = background
        self.init_headers(headers)

    async def listen_for_disconnect(self, receive: Receive) -> None:
        """Return once ``http.disconnect`` arrives (unread body messages are dropped).

        Used only on servers older than ASGI 2.4, which cannot report a leave otherwise.
        """
        await wait_for_http_disconnect(receive)

    async def stream_response(self, send: Send) -> None:
        """Send the start message and every chunk, then the final empty body message.

        Override it to send something else: ``__call__`` calls it, stops it when the
        client leaves and gives its cleanup time to finish.
        """
        if type(send) is StartTrackingSend:
            send.started = True  # as in Response.__call__: one flag, not a call per chunk
            send = send.send
        try:
            await send(self._start_message(""))
            async for chunk in self.body_iterator:
                data = chunk if type(chunk) is bytes else self._encode(chunk)
                await send({"type": "http.response.body", "body": data, "more_body": True})
        finally:
            await self._close_iterator()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _encode(self, chunk: str | bytes | memoryview) -> bytes | memoryview:
        return chunk.encode(self.charset) if isinstance(chunk, str) else chunk

    async def _close_iterator(self) -> None:
        """Close the iterator now, shielded and bounded, so its cleanup runs even after a
        disconnect instead of whenever it is collected."""
        await close_shielded(self._close_iterators)

    async def _close_iterators(self) -> None:
        aclose: Callable[[], Awaitable[Any]] | None = getattr(self.body_iterator, "aclose", None)
        if aclose is not None:
            await aclose()
        close: Callable[[], Any] | None = getattr(self._sync_content, "close", None)
        if close is not None:
            await run_sync(close)  # a sync generator's finally may block

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        send = prefixed_send(scope, send)
        if scope.get("method") == "HEAD":
            await send(self._start_message(""))
            await send({"type": "http.response.body", "body": b""})
            await self._close_iterator()
        else:
            await send_until_disconnect(
                scope, receive, send, self.stream_response, listen=self.listen_for_disconnect
            )
        if self.background is not None:
            await self.background()


def __getattr__(name: str) -> Any:
    # FileResponse subclasses Response, so it lives in its own module, imported on first
    # use: that keeps `import stellate.responses` light and the import graph acyclic.
    if name == "FileResponse":
        from stellate._fileresponse import FileResponse

        return FileResponse
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
