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
from collections.abc import AsyncIterable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from stellate._concurrency import iterate_in_threads, run_sync
from stellate._context import StartTrackingSend
from stellate._fileresponse import FileResponse
from stellate._ranges import MalformedRangeHeader, RangeNotSatisfiable
from stellate._response import (
    PlainTextResponse,
    Response,
)
from stellate._sending import (
    close_shielded,
    prefixed_send,
    send_until_disconnect,
    wait_for_http_disconnect,
)
from stellate.background import BackgroundTask
from stellate.datastructures import URL
from stellate.types import Receive, Scope, Send

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

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


class HTMLResponse(Response):
    """A ``text/html`` response."""

    media_type = "text/html"


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
        if self._sync_content is None and getattr(self.body_iterator, "ag_frame", 1) is None:
            return  # an async generator that has finished: nothing left to clean up
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
