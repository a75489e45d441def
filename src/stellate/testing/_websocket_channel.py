"""The client end of a WebSocket session, shared by both test clients.

A WebSocket session is a protocol of its own beside the HTTP exchange: the handshake
request (:func:`websocket_handshake`, :func:`is_websocket_request`), the signal a test
transport raises to open the session (:class:`WebSocketUpgrade`), the channel that runs
the app and carries its messages (:class:`WebSocketChannel`), the error raised when the
app refuses the handshake (:class:`WebSocketDenialResponse`), and the helpers that turn
test data into ``websocket.receive`` messages and the app's ``websocket.send`` messages
back into data.
The scope itself is built by :func:`stellate.testing._transport.websocket_scope`, beside
the ``http`` one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import anyio

from stellate.testing._app_streams import AppStreams, deliver, wait_done_or_idle
from stellate.testing._httpx import httpx
from stellate.types import ASGIApp, Message, Scope
from stellate.websockets import WebSocketDisconnect

__all__ = [
    "WebSocketChannel",
    "WebSocketDenialResponse",
    "WebSocketUpgrade",
    "bytes_message",
    "disconnect_message",
    "frame_bytes",
    "frame_json",
    "frame_text",
    "is_websocket_request",
    "json_message",
    "text_message",
    "websocket_handshake",
]


# The ignore: httpx.Response and BaseException define __setstate__ differently (mypy);
# pickling a test failure is not a use case.
class WebSocketDenialResponse(httpx.Response, WebSocketDisconnect):  # type: ignore[misc]
    """The app refused a WebSocket handshake with an HTTP response.

    Raised by the test clients when the app answers ``websocket.connect`` with
    ``websocket.http.response.start`` (the *WebSocket Denial Response* extension), and when
    the app returns without answering at all (a server then refuses with HTTP 403). It is
    an :class:`httpx.Response`, so tests inspect ``status_code``, ``headers`` and
    ``content`` as usual, and a ``WebSocketDisconnect``, so code that only cares that the
    connection did not open can catch that. No close frame exists for a refused handshake;
    ``code`` is 1008 (policy violation), the nearest meaning.
    """

    code = 1008
    reason = ""

    def __str__(self) -> str:
        return f"WebSocket handshake denied with HTTP {self.status_code}"


# Users import it from stellate.testclient (or stellate.testing.client); say so in tracebacks.
WebSocketDenialResponse.__module__ = "stellate.testclient"


# --------------------------------------------------------------------------- handshake


class WebSocketUpgrade(Exception):
    """Raised by a test transport for a ``ws://``/``wss://`` request: the scope to open.

    ``websocket_connect`` sends its handshake through the client's ordinary request path
    (so ``auth``, ``cookies``, ``params`` and the client's default headers apply to it);
    the transport answers a WebSocket URL by raising this instead of returning a response.
    """

    def __init__(self, scope: Scope) -> None:
        super().__init__(scope)
        self.scope = scope


def websocket_handshake(
    url: str | httpx.URL, subprotocols: Sequence[str] | None, headers: Any
) -> tuple[httpx.URL, httpx.Headers]:
    """The URL and headers of a WebSocket handshake request, as Starlette's client builds them.

    ``url`` is resolved against ``ws://testserver`` and not against the client's
    ``base_url``; the handshake headers are added after the caller's, only where the caller
    did not set them.
    """
    resolved = httpx.URL("ws://testserver").join(url)
    merged = httpx.Headers(headers)
    defaults = {
        "connection": "upgrade",
        "sec-websocket-key": "testserver==",
        "sec-websocket-version": "13",
    }
    if subprotocols is not None:
        defaults["sec-websocket-protocol"] = ", ".join(subprotocols)
    for name, value in defaults.items():
        if name not in merged:
            merged[name] = value
    return resolved, merged


def is_websocket_request(request: httpx.Request) -> bool:
    """True for a handshake sent by ``websocket_connect`` (its URL is ``ws``/``wss``)."""
    return request.url.scheme in ("ws", "wss")


# --------------------------------------------------------------------------- frames


def text_message(data: str) -> Message:
    """A ``websocket.receive`` message carrying text (what a client's text frame becomes)."""
    return {"type": "websocket.receive", "text": data}


def bytes_message(data: bytes) -> Message:
    """A ``websocket.receive`` message carrying bytes."""
    return {"type": "websocket.receive", "bytes": bytes(data)}


def json_message(data: Any, mode: str) -> Message:
    """``data`` as compact JSON in a text or a binary (UTF-8) frame."""
    encoded = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    if mode == "text":
        return text_message(encoded)
    if mode == "binary":
        return bytes_message(encoded.encode("utf-8"))
    raise ValueError(f"mode must be 'text' or 'binary', not {mode!r}")


def disconnect_message(code: int, reason: str | None) -> Message:
    """The ``websocket.disconnect`` message of a client closing with ``code`` and ``reason``."""
    return {"type": "websocket.disconnect", "code": code, "reason": reason}


def frame_text(message: Message) -> str:
    """The text of a ``websocket.send`` message; a close raises ``WebSocketDisconnect``."""
    value = _frame(message, "text")
    assert isinstance(value, str)
    return value


def frame_bytes(message: Message) -> bytes:
    """The bytes of a ``websocket.send`` message; a close raises ``WebSocketDisconnect``."""
    value = _frame(message, "bytes")
    assert isinstance(value, bytes)
    return value


def frame_json(message: Message, mode: str) -> Any:
    """The JSON document in a text or binary ``websocket.send`` message."""
    if mode == "text":
        return json.loads(frame_text(message))
    if mode == "binary":
        return json.loads(frame_bytes(message).decode("utf-8"))
    raise ValueError(f"mode must be 'text' or 'binary', not {mode!r}")


def _frame(message: Message, key: str) -> str | bytes:
    """The frame's ``key`` field; ``KeyError(key)`` for a frame of the other type, as Starlette."""
    if message.get("type") == "websocket.close":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason") or "")
    value = message.get(key)
    if value is None:
        raise KeyError(key)
    return value  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- WebSocket


class WebSocketChannel:
    """The client end of one WebSocket session with an app.

    :meth:`run` is the app's task; the client calls :meth:`connect`, then :meth:`send` and
    :meth:`receive`, and finally :meth:`shutdown`. Messages to the app queue without limit
    (a test sends a handful); messages from the app queue too, so an app may send several
    frames before the test reads them, as over a real socket.
    """

    def __init__(self, app: ASGIApp, scope: Scope) -> None:
        self.app = app
        self.scope = scope
        self._streams = AppStreams[object]()
        self._cancel_scope = anyio.CancelScope()
        self._done = anyio.Event()
        self._close_message: Message | None = None
        self._client_closed = False
        self._end_reported = False
        self._error: BaseException | None = None
        self.accepted_subprotocol: str | None = None
        self.extra_headers: list[tuple[bytes, bytes]] | None = None

    @classmethod
    async def create(cls, app: ASGIApp, scope: Scope) -> WebSocketChannel:
        """Build a channel in the running loop (usable through ``BlockingPortal.call``)."""
        return cls(app, scope)

    # -- the app's side

    async def run(self) -> None:
        """Run the app; its exception, if any, is queued for the client to raise."""
        try:
            with self._cancel_scope:
                async with self._streams.app_outbox:
                    try:
                        await self.app(self.scope, self._app_receive, self._app_send)
                    except Exception as exc:
                        self._error = exc
                        self._streams.app_outbox.send_nowait(exc)
        finally:
            self._streams.app_inbox.close()
            self._done.set()

    async def _app_receive(self) -> Message:
        """The client's next message; once the client has gone, a disconnect, then nothing.

        After reporting the end once, further calls block, so an app that ignores the
        disconnect and keeps reading ends up blocked (and is cancelled by
        :meth:`shutdown`) instead of spinning forever.
        """
        try:
            return await self._streams.app_inbox.receive()
        except anyio.EndOfStream:
            if self._end_reported:
                await anyio.sleep_forever()
            self._end_reported = True
            return disconnect_message(1000, None)

    async def _app_send(self, message: Message) -> None:
        if self._client_closed:
            return
        await self._streams.app_outbox.send(dict(message))

    # -- the client's side

    async def connect(self) -> None:
        """Perform the handshake: raise if the app closes, denies or fails instead of accepting."""
        await deliver(self._streams.to_app, {"type": "websocket.connect"})
        message = await self._next_from_app()
        if message is None:
            raise await self._denial(
                {"type": "websocket.http.response.start", "status": 403}, final=True
            )
        kind = message.get("type")
        if kind == "websocket.accept":
            self.accepted_subprotocol = message.get("subprotocol")
            if "headers" in message:
                self.extra_headers = [(bytes(k), bytes(v)) for k, v in message["headers"]]
            return
        if kind == "websocket.close":
            raise WebSocketDisconnect(message.get("code", 1000), message.get("reason") or "")
        if kind == "websocket.http.response.start":
            raise await self._denial(message, final=False)
        raise RuntimeError(f"Expected 'websocket.accept' from the app, got {kind!r}.")

    async def _denial(self, start: Message, *, final: bool) -> WebSocketDenialResponse:
        body = b""
        while not final:
            message = await self._next_from_app()
            if message is None or message.get("type") != "websocket.http.response.body":
                break
            body += bytes(message.get("body", b""))
            final = not message.get("more_body", False)
        return WebSocketDenialResponse(
            int(start["status"]), headers=list(start.get("headers", [])), content=body
        )

    async def _next_from_app(self) -> Message | None:
        """The app's next message; None once it has ended; its exception raised."""
        try:
            item = await self._streams.from_app.receive()
        except anyio.EndOfStream:
            return None
        if isinstance(item, BaseException):
            self._error = None
            raise item
        message: Message = item  # type: ignore[assignment]
        return message

    async def send(self, message: Message) -> None:
        """Deliver ``message`` to the app's ``receive()``; ignored once the app has ended.

        Messages sent after the client's own ``websocket.disconnect`` are queued all the
        same, as Starlette's client does: an app that reads on sees them.
        """
        if message.get("type") == "websocket.disconnect":
            self._client_closed = True
        await deliver(self._streams.to_app, message)

    async def receive(self) -> Message:
        """The app's next message; after its close (or its end), that close again."""
        if self._close_message is not None:
            return self._close_message
        message = await self._next_from_app()
        if message is None:
            message = {"type": "websocket.close", "code": 1000, "reason": ""}
        if message.get("type") == "websocket.close":
            self._close_message = message
        return message

    async def shutdown(self) -> None:
        """End the session: tell the app the client left, let it react, then cancel what remains.

        The app gets ``websocket.disconnect`` and runs until it finishes or blocks (for a
        reply that will never come); an app still running then is cancelled, so no task
        outlives the session. An exception the app raised and the client has not seen yet is
        raised here -- ``WebSocketDisconnect`` included, as Starlette's client does: an
        endpoint that does not catch the disconnect ends with it, and tests written for
        Starlette expect it at the end of the ``with`` block.
        """
        if not self._done.is_set():
            if not self._client_closed:
                await self.send(disconnect_message(1000, None))
            self._streams.to_app.close()
            await wait_done_or_idle(self._done)
            self._cancel_scope.cancel()
            await self._done.wait()
        self._streams.to_app.close()
        self._streams.from_app.close()
        error, self._error = self._error, None
        if error is not None:
            raise error
