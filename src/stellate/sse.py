"""Server-Sent Events: a ``text/event-stream`` response fed by an iterator.

An event stream (WHATWG HTML, "Server-sent events") is a long response made of events,
each a few ``field: value`` lines ended by a blank line. :class:`ServerSentEvent` is one
event, checked when it is built and encoded by :meth:`ServerSentEvent.encode`;
:class:`EventSourceResponse` sends the events an iterator produces, as they come.

The response does three things beside sending events, all inside a task group that its
call owns, so none of them outlives the response:

* it sends a comment line every ``ping`` seconds, so proxies and load balancers that
  close idle connections leave the stream alone, and a client that went away silently
  is noticed at the next write;
* it stops at once when the client disconnects (noticed as every streamed body
  notices it, see :mod:`stellate._sending`; on ASGI 2.4 servers a failing ping is how
  a silent leave is seen), closing the iterator so its ``finally`` blocks run, with a
  few seconds, shielded, for their awaits (a subscription is released, a counter
  decremented);
* it marks itself uncacheable (``Cache-Control: no-store``) and asks nginx-style proxies
  not to buffer it (``X-Accel-Buffering: no``); ``GZipMiddleware`` leaves
  ``text/event-stream`` uncompressed, since a compressor would hold events back.

A reconnecting browser sends the id of the last event it saw as ``Last-Event-ID``; read
it with ``request.headers.get("last-event-id")`` and resume from there.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Mapping
from functools import partial
from typing import Any

import anyio

from stellate._concurrency import iterate_in_threads, run_sync
from stellate._sending import prefixed_send, send_until_disconnect
from stellate.background import BackgroundTask
from stellate.responses import StreamingResponse
from stellate.types import Message, Receive, Scope, Send

__all__ = ["EventSourceResponse", "ServerSentEvent"]

# The SSE grammar ends a line at CRLF, CR or LF; str.splitlines would also split at
# form feeds, vertical tabs and Unicode separators, which are ordinary data there.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _single_line(field: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"ServerSentEvent {field} must be a str, not {type(value).__name__}")
    if "\r" in value or "\n" in value or "\0" in value:
        # A line break would end the field early and let the value inject other fields.
        raise ValueError(f"ServerSentEvent {field} must not contain CR, LF or NUL: {value!r}")
    return value


def _text(field: str, value: str | None) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(
            f"ServerSentEvent {field} must be a str, not {type(value).__name__} "
            "(serialize it first, for example with json.dumps)"
        )
    return value


class ServerSentEvent:
    """One event: ``data`` (any text, split into ``data:`` lines), an ``event`` type,
    an ``id``, a reconnection delay ``retry`` in milliseconds, and a ``comment``.

    ``event`` and ``id`` are single lines: CR, LF (and NUL) are refused with ValueError.
    Fields left as None are not sent.
    """

    __slots__ = ("comment", "data", "event", "id", "retry")

    def __init__(
        self,
        data: str | None = None,
        event: str | None = None,
        id: str | None = None,
        retry: int | None = None,
        comment: str | None = None,
    ) -> None:
        if retry is not None and (isinstance(retry, bool) or not isinstance(retry, int)):
            raise TypeError(f"ServerSentEvent retry must be an int (milliseconds), not {retry!r}")
        if retry is not None and retry < 0:
            raise ValueError(f"ServerSentEvent retry must not be negative, not {retry!r}")
        self.data = _text("data", data)
        self.event = _single_line("event", event)
        self.id = _single_line("id", id)
        self.retry = retry
        self.comment = _text("comment", comment)

    def encode(self) -> bytes:
        """The event on the wire, UTF-8, ending with the blank line that dispatches it."""
        lines: list[str] = []
        if self.comment is not None:
            lines.extend(": " + line for line in _LINE_BREAK.split(self.comment))
        if self.event is not None:
            lines.append("event: " + self.event)
        if self.id is not None:
            lines.append("id: " + self.id)
        if self.retry is not None:
            lines.append(f"retry: {self.retry}")
        if self.data is not None:
            lines.extend("data: " + line for line in _LINE_BREAK.split(self.data))
        return ("\n".join(lines) + "\n\n").encode("utf-8")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ServerSentEvent):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={getattr(self, name)!r}"
            for name in ("data", "event", "id", "retry", "comment")
            if getattr(self, name) is not None
        )
        return f"{type(self).__name__}({fields})"


def _as_event(item: Any) -> ServerSentEvent:
    if isinstance(item, ServerSentEvent):
        return item
    if isinstance(item, str):
        return ServerSentEvent(data=item)
    if isinstance(item, Mapping):
        return ServerSentEvent(**item)
    raise TypeError(
        "an event stream yields ServerSentEvent objects, dicts of their fields or str "
        f"data, not {type(item).__name__}"
    )


_PING_MESSAGE: Message = {"type": "http.response.body", "body": b": ping\n\n", "more_body": True}


class EventSourceResponse(StreamingResponse):
    """A ``text/event-stream`` response sending the events ``content`` produces.

    ``content`` is an async or sync iterable (a sync one is iterated in worker threads)
    of :class:`ServerSentEvent`, dicts of its fields, or strings (the data of an event).
    A comment is sent every ``ping`` seconds (None or 0 turns pings off). The stream ends
    when the iterator does, or as soon as the client disconnects; either way the iterator
    is closed, so its ``finally`` blocks run, and ``background`` runs after.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        content: AsyncIterable[Any] | Iterable[Any],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        ping: float | None = 15.0,
        background: BackgroundTask | None = None,
    ) -> None:
        if ping is not None and (isinstance(ping, bool) or not isinstance(ping, int | float)):
            raise TypeError(f"ping must be a number of seconds or None, not {ping!r}")
        if ping is not None and not ping >= 0:
            raise ValueError(f"ping must not be negative, not {ping!r}")
        self.ping = ping or None
        self._sync_events: Iterable[Any] | None = None
        if isinstance(content, AsyncIterable):
            self.events: AsyncIterable[Any] = content
        else:
            self._sync_events = content
            self.events = iterate_in_threads(content)
        self._chunks = self._encoded(self.events)
        self.body_iterator = self._chunks
        self._sync_content = self._sync_events  # a sync iterator is there to be closed
        self.status_code = status_code
        self.background = background
        merged = {"cache-control": "no-store", "x-accel-buffering": "no"}
        merged.update({name.lower(): value for name, value in (headers or {}).items()})
        self.init_headers(merged)

    @staticmethod
    async def _encoded(events: AsyncIterable[Any]) -> AsyncGenerator[bytes, None]:
        async for item in events:
            yield _as_event(item).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        send = prefixed_send(scope, send)
        if scope.get("method") == "HEAD":
            await send(self._start_message(""))
            await send({"type": "http.response.body", "body": b""})
            await self._close_iterator()
        else:
            channel = _Channel()
            await send_until_disconnect(
                scope,
                receive,
                send,
                partial(self._stream_through, channel),
                listen=self.listen_for_disconnect,
                watch=None if self.ping is None else partial(self._ping, channel, self.ping),
            )
        if self.background is not None:
            await self.background()

    async def _stream_through(self, channel: _Channel, send: Send) -> None:
        await self.stream_response(partial(channel.send, send))

    @staticmethod
    async def _ping(channel: _Channel, interval: float, send: Send) -> BaseException | None:
        """Send a comment every ``interval`` seconds; return the error once one fails."""
        while True:
            await anyio.sleep(interval)
            try:
                await channel.send(send, _PING_MESSAGE)
            except Exception as exc:  # the client is gone (or the server broke): stop
                return exc

    async def _close_iterators(self) -> None:
        """Close the encoder and the iterators under it, so their cleanup runs now."""
        await self._chunks.aclose()
        aclose = getattr(self.events, "aclose", None)
        if aclose is not None:
            await aclose()
        close = getattr(self._sync_events, "close", None)
        if close is not None:
            await run_sync(close)


class _Channel:
    """The response's ``send``, shared by the events and the pings one message at a time.

    Nothing goes out after the last body message, so a ping can never follow it.
    """

    __slots__ = ("_lock", "ended")

    def __init__(self) -> None:
        self._lock = anyio.Lock()
        self.ended = False

    async def send(self, send: Send, message: Message) -> None:
        async with self._lock:
            if self.ended:
                return
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.ended = True
            await send(message)
