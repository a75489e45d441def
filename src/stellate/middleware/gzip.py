"""``GZipMiddleware``: compress responses for clients that accept gzip.

Compression is streamed: each body chunk is compressed and flushed (``Z_SYNC_FLUSH``) as
it arrives, so a streamed response (server-sent data, a long export) reaches the client
chunk by chunk, never held back until the end. A response sent in one piece is
compressed in one piece, with an exact ``Content-Length``; one smaller than
``minimum_size`` is sent as it is, since gzip's framing would make it bigger.

Left untouched:

* responses that already have a ``Content-Encoding`` (compressing twice is wrong);
* partial content (206): its byte ranges refer to the uncompressed representation;
* content types in ``exclude_content_types``: event streams and gRPC (a proxy buffering
  a compressor would break their framing), already-compressed images, audio, video,
  archives and fonts (compressing them again costs CPU for nothing);
* ``http.response.pathsend`` responses: the server sends the file itself.

Trailers pass through after the compressed body (a compressed response that declares
trailers has no ``Content-Length``). ``Vary: Accept-Encoding`` is added to every response
big enough to be compressed (or streamed), for every client, so caches keep the two
versions apart; a small one-piece response goes out untouched, as in Starlette. A strong
``ETag`` becomes weak on a compressed response (the bytes differ).
Chunks of ``thread_minimum_size`` bytes or more are compressed in a worker thread, so a
large body does not stall the event loop.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterable
from typing import NoReturn

from stellate._concurrency import run_sync
from stellate.datastructures import MutableHeaders
from stellate.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "DEFAULT_EXCLUDED_CONTENT_TYPES",
    "GZipMiddleware",
    "GZipResponder",
    "IdentityResponder",
    "unattached_send",
]

DEFAULT_EXCLUDED_CONTENT_TYPES = (
    "application/grpc",
    "application/gzip",
    "application/x-gzip",
    "application/zip",
    "audio/*",
    "font/woff",
    "font/woff2",
    "image/avif",
    "image/gif",
    "image/jpeg",
    "image/png",
    "image/webp",
    "text/event-stream",
    "video/*",
)

_THREAD_MINIMUM_SIZE = 128 * 1024
# Statuses whose body must not be touched: informational, no content, not modified,
# and partial content (its ranges address the uncompressed bytes).
_UNTOUCHED_STATUSES = frozenset({204, 206, 304})


def unattached_send(message: Message) -> NoReturn:
    """The ``send`` of a responder that has not been called yet: using it is a bug."""
    raise RuntimeError("send awaited before the responder was called with the server's send")


def _media_type(content_type: str) -> str:
    """``Text/HTML; charset=utf-8`` -> ``text/html``: how types are compared, both sides."""
    return content_type.partition(";")[0].strip().lower()


@functools.lru_cache(maxsize=32)
def _exclusions(patterns: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    """Exact media types and ``type/`` prefixes (from ``type/*``), computed once per tuple."""
    media_types = [_media_type(pattern) for pattern in patterns]
    exact = frozenset(m for m in media_types if not m.endswith("/*"))
    prefixes = tuple(m[:-1] for m in media_types if m.endswith("/*"))
    return exact, prefixes


def _is_excluded(content_type: str, patterns: tuple[str, ...]) -> bool:
    exact, prefixes = _exclusions(patterns)
    media_type = _media_type(content_type)
    if media_type.startswith("application/grpc+"):
        # Every gRPC flavour (+proto, +json, ...) is gRPC framing.
        media_type = "application/grpc"
    return media_type in exact or media_type.startswith(prefixes)


def accepts_gzip(scope: Scope) -> bool:
    """Whether the ``Accept-Encoding`` of the request allows gzip (``q=0`` refuses it)."""
    star: bool | None = None
    for name, value in scope.get("headers") or ():
        if name != b"accept-encoding":
            continue
        for item in bytes(value).decode("latin-1").lower().split(","):
            coding, _, params = item.partition(";")
            coding = coding.strip()
            allowed = _quality(params) > 0
            if coding in ("gzip", "x-gzip"):
                return allowed
            if coding == "*":
                star = allowed
    return bool(star)


def _encoding_and_type(raw: Iterable[tuple[bytes, bytes]]) -> tuple[str, str]:
    """The first ``Content-Encoding`` (``identity`` if none) and ``Content-Type`` ("" if none)."""
    encoding = content_type = None
    for name, value in raw:
        if name == b"content-encoding" and encoding is None:
            encoding = value
        elif name == b"content-type" and content_type is None:
            content_type = value
    return (
        "identity" if encoding is None else encoding.decode("latin-1"),
        "" if content_type is None else content_type.decode("latin-1"),
    )


def _quality(params: str) -> float:
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


class GZipMiddleware:
    """Gzip responses of at least ``minimum_size`` bytes when the client accepts gzip."""

    def __init__(
        self,
        app: ASGIApp,
        minimum_size: int = 500,
        compresslevel: int = 9,
        thread_minimum_size: int = _THREAD_MINIMUM_SIZE,
        *,
        exclude_content_types: tuple[str, ...] = DEFAULT_EXCLUDED_CONTENT_TYPES,
    ) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.compresslevel = compresslevel
        self.thread_minimum_size = thread_minimum_size
        self.exclude_content_types = tuple(exclude_content_types)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        responder: IdentityResponder
        if accepts_gzip(scope):
            responder = GZipResponder(
                self.app,
                self.minimum_size,
                self.compresslevel,
                thread_minimum_size=self.thread_minimum_size,
                exclude_content_types=self.exclude_content_types,
            )
        else:
            responder = IdentityResponder(
                self.app, self.minimum_size, exclude_content_types=self.exclude_content_types
            )
        await responder(scope, receive, send)


class IdentityResponder:
    """One response, sent without compression (the client did not accept gzip).

    It still adds ``Vary: Accept-Encoding`` where a gzip-accepting client would have got
    a compressed answer, so it holds the start until the first body chunk tells whether
    the body is big enough. :class:`GZipResponder` builds on it and compresses.
    """

    content_encoding: str | None = None

    def __init__(
        self,
        app: ASGIApp,
        minimum_size: int,
        *,
        exclude_content_types: tuple[str, ...] = DEFAULT_EXCLUDED_CONTENT_TYPES,
    ) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.exclude_content_types = exclude_content_types
        self.send: Send = unattached_send
        self.initial_message: Message | None = None
        self.started = False
        self.passthrough = False
        self.method = "GET"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.send = send
        self.method = scope.get("method", "GET")
        await self.app(scope, receive, self.send_with_compression)
        if self.initial_message is not None:
            # The app started a response and returned without a body message (a route
            # deadline leaves a started stream unfinished on purpose): pass the start on
            # rather than swallow the whole response.
            await self._release_start(vary=False)

    def apply_compression(self, body: bytes, *, more_body: bool) -> bytes:
        """The identity coding: the body as it is."""
        return body

    def _untouchable(self, message: Message) -> bool:
        status = int(message.get("status", 200))
        if status < 200 or status in _UNTOUCHED_STATUSES:
            return True
        encoding, content_type = _encoding_and_type(message.setdefault("headers", []))
        if encoding.strip().lower() not in ("", "identity"):
            return True
        return _is_excluded(content_type, self.exclude_content_types)

    async def send_with_compression(self, message: Message) -> None:
        """Intercept the response: decide on the start, then send each body chunk."""
        kind = message["type"]
        if kind == "http.response.start":
            # A HEAD response has no body to compress; its headers describe the GET's.
            self.passthrough = self.method == "HEAD" or self._untouchable(message)
            if self.passthrough:
                self.started = True
                await self.send(message)
            else:
                # Held until the first chunk says whether the body is worth compressing.
                self.initial_message = message
            return
        if self.started:
            await self._send_after_start(message)
            return
        if self.initial_message is None and kind != "http.response.body":
            # Sent before the response starts (early hints, server push): passed on as is.
            await self.send(message)
            return
        if kind == "http.response.body":
            await self._start_body(message)
            return
        # Anything else (pathsend, trailers, ...) first releases the untouched start.
        await self._release_start(vary=False)
        await self.send(message)

    async def _send_after_start(self, message: Message) -> None:
        if message["type"] == "http.response.body" and not self.passthrough:
            body = message.get("body", b"")
            more_body = bool(message.get("more_body", False))
            if self.content_encoding is not None and (body or not more_body):
                message["body"] = await self._compress(bytes(body), more_body=more_body)
        await self.send(message)

    async def _start_body(self, message: Message) -> None:
        body = bytes(message.get("body", b""))
        more_body = bool(message.get("more_body", False))
        if not more_body and len(body) < self.minimum_size:
            await self._release_start(vary=False)
            await self.send(message)
            return
        if self.content_encoding is None:
            await self._release_start(vary=True)
            await self.send(message)
            return
        compressed = await self._compress(body, more_body=more_body)
        await self._release_start(vary=True, body=None if more_body else compressed)
        await self.send({**message, "body": compressed})

    async def _release_start(self, *, vary: bool, body: bytes | None = None) -> None:
        """Send the held start: with ``Vary`` if the body was a candidate by size, and
        re-framed for the compressed ``body`` (None: streamed) if it is compressed."""
        message = self.initial_message
        assert message is not None
        self.initial_message = None
        self.started = True
        headers = MutableHeaders(scope=message)
        if vary:
            headers.add_vary_header("Accept-Encoding")
        if vary and self.content_encoding is not None:
            headers["Content-Encoding"] = self.content_encoding
            if body is None or message.get("trailers", False):
                del headers["Content-Length"]
            else:
                headers["Content-Length"] = str(len(body))
            etag = headers.get("etag")
            if etag is not None and not etag.startswith("W/"):
                headers["ETag"] = "W/" + etag
        await self.send(message)

    async def _compress(self, body: bytes, *, more_body: bool) -> bytes:
        # Only reached when content_encoding is set, i.e. in GZipResponder.
        raise NotImplementedError


class GZipResponder(IdentityResponder):
    """One response, gzip-compressed chunk by chunk (see the module docstring)."""

    content_encoding = "gzip"

    def __init__(
        self,
        app: ASGIApp,
        minimum_size: int,
        compresslevel: int = 9,
        *,
        thread_minimum_size: int = _THREAD_MINIMUM_SIZE,
        exclude_content_types: tuple[str, ...] = DEFAULT_EXCLUDED_CONTENT_TYPES,
    ) -> None:
        super().__init__(app, minimum_size, exclude_content_types=exclude_content_types)
        self.compresslevel = compresslevel
        self.thread_minimum_size = thread_minimum_size
        self._compressor: zlib._Compress | None = None

    @property
    def compressor(self) -> zlib._Compress:
        """The response's gzip stream, created on first use (most responses are small)."""
        if self._compressor is None:
            # wbits 16 + MAX_WBITS: a gzip header and trailer around the deflate stream.
            self._compressor = zlib.compressobj(
                self.compresslevel, zlib.DEFLATED, 16 + zlib.MAX_WBITS
            )
        return self._compressor

    def apply_compression(self, body: bytes, *, more_body: bool) -> bytes:
        """Compress ``body``; flush so it can be decoded now, or finish the stream."""
        compressor = self.compressor
        flush_mode = zlib.Z_SYNC_FLUSH if more_body else zlib.Z_FINISH
        return compressor.compress(body) + compressor.flush(flush_mode)

    async def _compress(self, body: bytes, *, more_body: bool) -> bytes:
        if len(body) >= self.thread_minimum_size:
            return await run_sync(self.apply_compression, body, more_body=more_body)
        return self.apply_compression(body, more_body=more_body)
