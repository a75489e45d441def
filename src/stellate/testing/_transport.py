"""The protocol core shared by the test clients: httpx requests in, ASGI messages out.

``TestClient`` (sync, the app in a blocking portal) and ``AsyncTestClient`` (async, the app
in the caller's event loop) differ only in *where* the coroutines below run. Everything that
speaks ASGI lives here, once:

* :func:`http_scope` and :func:`websocket_scope` turn an :class:`httpx.Request` into the
  scope a server would build for it.
* :class:`HTTPExchange` runs one request through the app. Its :meth:`~HTTPExchange.run`
  coroutine is meant to be started in a task group owned by the client (or awaited inline),
  while the client waits for :meth:`~HTTPExchange.wait_head` and then pulls body chunks with
  :meth:`~HTTPExchange.next_chunk`. The response messages travel through a memory object
  stream, so a streamed response is handed to the caller as soon as the app has sent
  ``http.response.start``, and the app is held back by the stream's buffer until the caller
  reads. Closing the exchange before its last message was received cancels the app, inside
  the cancel scope that :meth:`~HTTPExchange.run` owns; closing it after waits for the app
  (its background tasks) to return. Either way nothing outlives the client.
* :func:`as_asgi3` and :func:`is_asgi3` decide how an app given to a client is called.
* :class:`WebSocketChannel` does the same for a WebSocket session.
* :class:`LifespanDriver` drives the ``lifespan`` protocol.

No coroutine here starts a task of its own: the clients decide who owns the app's task.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from anyio.streams.stapled import StapledObjectStream

from stellate._concurrency import is_async_callable
from stellate.testing._httpx import httpx
from stellate.types import ASGIApp, Message, Receive, Scope, Send
from stellate.websockets import WebSocketDisconnect

__all__ = [
    "HTTPExchange",
    "LifespanDriver",
    "WebSocketChannel",
    "WebSocketDenialResponse",
    "WebSocketUpgrade",
    "as_asgi3",
    "http_scope",
    "is_asgi3",
    "websocket_scope",
]

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

_FromApp = TypeVar("_FromApp")


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


# --------------------------------------------------------------------------- apps


def is_asgi3(app: object) -> bool:
    """True if ``app`` is called as ``app(scope, receive, send)`` (ASGI 3).

    A class is ASGI 3 when its instances are awaitable (``HTTPEndpoint`` and
    ``WebSocketEndpoint`` are: ``Cls(scope, receive, send)`` is awaited), ASGI 2 otherwise
    (``Cls(scope)`` returns the callable that takes ``receive`` and ``send``). Any other
    callable is ASGI 3 when it is async. This is the rule Starlette's test client uses.
    """
    if inspect.isclass(app):
        return hasattr(app, "__await__")
    return is_async_callable(app)


class ASGI2Adapter:
    """Run an ASGI 2 (double-callable) application as an ASGI 3 one."""

    def __init__(self, app: Callable[[Scope], Callable[[Receive, Send], Awaitable[None]]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        instance = self.app(scope)
        await instance(receive, send)


def as_asgi3(app: Any) -> ASGIApp:
    """``app`` itself if it is ASGI 3, else wrapped in :class:`ASGI2Adapter`."""
    return app if is_asgi3(app) else ASGI2Adapter(app)


# --------------------------------------------------------------------------- scopes


def _server(url: httpx.URL) -> list[str | int]:
    """``[host, port]``: the ASCII host and the port as written, else the scheme's default.

    An explicit port 0 is a port like any other (``url.port`` is falsy but not None), and
    an internationalised host is given in its ``xn--`` form, as it travels on the wire.
    """
    port = url.port if url.port is not None else _DEFAULT_PORTS.get(url.scheme, 80)
    return [url.raw_host.decode("ascii"), port]


def _raw_path(url: httpx.URL) -> bytes:
    return url.raw_path.split(b"?", 1)[0]


def _base_scope(
    request: httpx.Request,
    *,
    scheme: str,
    root_path: str,
    client: tuple[str, int],
    state: dict[str, Any],
) -> Scope:
    url = request.url
    return {
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "scheme": scheme,
        "server": _server(url),
        "client": client,
        "root_path": root_path,
        "path": url.path,
        "raw_path": _raw_path(url),
        "query_string": url.query,
        "headers": [(name.lower(), value) for name, value in request.headers.raw],
        "state": dict(state),
    }


def http_scope(
    request: httpx.Request,
    *,
    root_path: str = "",
    client: tuple[str, int] = ("testclient", 50000),
    state: dict[str, Any] | None = None,
) -> Scope:
    """The ``http`` scope a server would build for ``request``.

    ``path`` is percent-decoded (``raw_path`` keeps the bytes as sent); ``state`` is copied,
    as servers copy the lifespan state into each request so requests cannot leak into each
    other through it.
    """
    scope = _base_scope(
        request,
        scheme=request.url.scheme,
        root_path=root_path,
        client=client,
        state=state or {},
    )
    scope["type"] = "http"
    scope["method"] = request.method.upper()
    scope["extensions"] = {"http.response.debug": {}, "http.response.trailers": {}}
    return scope


def websocket_scope(
    request: httpx.Request,
    *,
    root_path: str = "",
    client: tuple[str, int] = ("testclient", 50000),
    state: dict[str, Any] | None = None,
) -> Scope:
    """The ``websocket`` scope for a handshake request (a ``ws://`` or ``wss://`` URL).

    ``subprotocols`` come from the ``sec-websocket-protocol`` header, as a server reads
    them, so a header set by hand reaches the app like the ``subprotocols`` argument.
    """
    scheme = {"http": "ws", "https": "wss"}.get(request.url.scheme, request.url.scheme)
    scope = _base_scope(
        request, scheme=scheme, root_path=root_path, client=client, state=state or {}
    )
    offered = request.headers.get("sec-websocket-protocol")
    scope["type"] = "websocket"
    scope["subprotocols"] = [] if offered is None else [p.strip() for p in offered.split(",")]
    scope["extensions"] = {"websocket.http.response": {}}
    return scope


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


def default_headers(headers: Any) -> httpx.Headers:
    """A client's default headers: ``user-agent: testclient`` unless the caller set one.

    Merged case-insensitively, so ``{"User-Agent": "x"}`` replaces the default (the value
    an app reads in Starlette, where both end up sent with the caller's first).
    """
    merged = httpx.Headers({"user-agent": "testclient"})
    merged.update(httpx.Headers(headers))
    return merged


def is_websocket_request(request: httpx.Request) -> bool:
    """True for a handshake sent by ``websocket_connect`` (its URL is ``ws``/``wss``)."""
    return request.url.scheme in ("ws", "wss")


async def _wait_done_or_idle(done: anyio.Event) -> None:
    """Wait until ``done`` is set or every other task is blocked, whichever comes first.

    Used before cancelling an app that was told to stop: it may still react (close its
    socket, run its ``finally`` blocks), and we want to cancel only what would otherwise
    wait forever, without guessing a delay.
    """

    async def watch(event: anyio.Event, scope: anyio.CancelScope) -> None:
        await event.wait()
        scope.cancel()

    async with anyio.create_task_group() as group:
        group.start_soon(watch, done, group.cancel_scope)
        await anyio.wait_all_tasks_blocked()
        group.cancel_scope.cancel()


class _AppStreams(Generic[_FromApp]):
    """The two memory object streams between a test client and an app's task.

    ``to_app`` to ``app_inbox`` carries messages to the app; ``app_outbox`` to ``from_app``
    carries what the app sends back, a ``_FromApp`` (a WebSocket channel also queues the
    app's exception behind its messages). Both are unbounded: a test sends a handful of
    messages, and an app may send several before the test reads them, as over a real
    socket. Written once, as a generic class, so both ends keep their element types.
    """

    __slots__ = ("app_inbox", "app_outbox", "from_app", "to_app")

    to_app: MemoryObjectSendStream[Message]
    app_inbox: MemoryObjectReceiveStream[Message]
    app_outbox: MemoryObjectSendStream[_FromApp]
    from_app: MemoryObjectReceiveStream[_FromApp]

    def __init__(self) -> None:
        self.to_app, self.app_inbox = anyio.create_memory_object_stream[Message](math.inf)
        self.app_outbox, self.from_app = anyio.create_memory_object_stream[_FromApp](math.inf)


async def _deliver(stream: MemoryObjectSendStream[Message], message: Message) -> None:
    """Queue ``message`` for the app; dropped if the app has already ended, as by a server."""
    with contextlib.suppress(anyio.BrokenResourceError):
        await stream.send(message)


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


# --------------------------------------------------------------------------- HTTP


class ResponseProtocolError(AssertionError, RuntimeError):
    """The app broke the order of the HTTP response messages.

    An ``AssertionError`` with Starlette's message, as Starlette's test client raises; a
    ``RuntimeError`` too, for code written against earlier stellate releases. It is raised
    from the app's own ``send()``, so it travels like an app exception.
    """


class NoResponseError(ResponseProtocolError):
    """The app returned without sending ``http.response.start``."""


BodyReader = Callable[[], Awaitable[bytes]]


class HTTPExchange:
    """One request/response cycle between a test client and an ASGI app.

    Build it with :meth:`create` inside the event loop that will run the app (anyio
    primitives belong to a loop). ``read_body`` returns the whole request body; it is
    called on the app's first ``receive()``, so a body the app never reads is never
    consumed. ``buffer_size`` is the number of response messages the app may send ahead of
    the reader: ``0`` when :meth:`run` is a task that the reader drives (streaming: every
    body message, empty or not, waits for the reader), ``math.inf`` when :meth:`run` is
    awaited inline before anything is read.
    """

    def __init__(
        self,
        app: ASGIApp,
        scope: Scope,
        read_body: BodyReader,
        *,
        raise_server_exceptions: bool,
        buffer_size: float,
        registry: set[HTTPExchange] | None = None,
    ) -> None:
        self.app = app
        self._registry = registry if registry is not None else set()
        self._registry.add(self)
        self.scope = scope
        self._read_body: BodyReader | None = read_body
        self.raise_server_exceptions = raise_server_exceptions
        send, receive = anyio.create_memory_object_stream[Message](buffer_size)
        self._messages_out: MemoryObjectSendStream[Message] = send
        self._messages_in: MemoryObjectReceiveStream[Message] = receive
        self._head_ready = anyio.Event()
        self._response_complete = anyio.Event()
        self._body_sent = False
        self._all_sent = False
        self._all_received = False
        self._done = anyio.Event()
        self._cancel_scope = anyio.CancelScope()
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.trailers: list[tuple[bytes, bytes]] | None = None
        self.debug_info: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self._error_reported = False

    @classmethod
    async def create(
        cls,
        app: ASGIApp,
        scope: Scope,
        read_body: BodyReader,
        raise_server_exceptions: bool,
        buffer_size: float,
        registry: set[HTTPExchange] | None = None,
    ) -> HTTPExchange:
        """Build an exchange in the running loop (usable through ``BlockingPortal.call``)."""
        return cls(
            app,
            scope,
            read_body,
            raise_server_exceptions=raise_server_exceptions,
            buffer_size=buffer_size,
            registry=registry,
        )

    # -- the app's side

    async def run(self) -> None:
        """Run the app to completion; errors are kept for the reader, never raised here.

        Cancellation from :meth:`aclose` is absorbed by this coroutine's own cancel scope;
        cancellation from outside (the owning task group) propagates as it must.
        """
        try:
            with self._cancel_scope:
                async with self._messages_out:
                    await self._run_app()
        finally:
            self._response_complete.set()
            self._head_ready.set()
            self._done.set()

    async def _run_app(self) -> None:
        try:
            await self.app(self.scope, self._receive, self._send)
        except Exception as exc:
            self.error = exc

    async def _receive(self) -> Message:
        """The whole request body in one message; then, once the response is complete, a
        disconnect (a client that has its response leaves)."""
        read_body, self._read_body = self._read_body, None
        if read_body is not None:
            return {"type": "http.request", "body": await read_body(), "more_body": False}
        await self._response_complete.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "http.response.start":
            self._start(message)
        elif kind == "http.response.body":
            await self._body(message)
        elif kind == "http.response.trailers":
            await self._trailers(message)
        elif kind == "http.response.debug":
            self.debug_info = dict(message.get("info", {}))
        # Any other type is an extension the client did not offer: ignored, as Starlette does.

    def _start(self, message: Message) -> None:
        if self.status is not None:
            raise ResponseProtocolError('Received multiple "http.response.start" messages.')
        self.status = int(message["status"])
        self.headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
        if message.get("trailers", False):
            self.trailers = []
        self._head_ready.set()

    async def _body(self, message: Message) -> None:
        if self.status is None:
            raise ResponseProtocolError(
                'Received "http.response.body" without "http.response.start".'
            )
        if self._all_sent:
            raise ResponseProtocolError('Received "http.response.body" after response completed.')
        if self._body_sent:
            raise ResponseProtocolError('Received "http.response.body" after body completed.')
        more_body = bool(message.get("more_body", False))
        self._body_sent = not more_body
        self._all_sent = self._body_sent and self.trailers is None
        await self._hand_over(
            {
                "type": "http.response.body",
                "body": bytes(message.get("body", b"")),
                "more_body": more_body,
            }
        )

    async def _trailers(self, message: Message) -> None:
        if self.trailers is None:
            raise ResponseProtocolError(
                'Received "http.response.trailers" without declaring trailers.'
            )
        if self._all_sent:
            raise ResponseProtocolError(
                'Received "http.response.trailers" after response completed.'
            )
        if not self._body_sent:
            raise ResponseProtocolError('Received "http.response.trailers" before body completed.')
        more_trailers = bool(message.get("more_trailers", False))
        self._all_sent = not more_trailers
        headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
        await self._hand_over(
            {"type": "http.response.trailers", "headers": headers, "more_trailers": more_trailers}
        )

    async def _hand_over(self, message: Message) -> None:
        """Give ``message`` to the reader (waiting for it when unbuffered).

        Only once the last message is delivered has the client got the whole response and
        may "leave": a disconnect any earlier could cancel the app's final send.
        """
        await self._messages_out.send(message)
        if self._all_sent:
            self._response_complete.set()

    # -- the client's side

    async def wait_head(self) -> tuple[int, list[tuple[bytes, bytes]]]:
        """Wait for ``http.response.start`` (or for the app to end without one)."""
        await self._head_ready.wait()
        if self.status is not None:
            return self.status, self.headers
        if self.error is not None and self.raise_server_exceptions:
            self._error_reported = True
            raise self.error
        if self.raise_server_exceptions:
            raise NoResponseError("TestClient did not receive any response.")
        return 500, []

    def build_response(
        self,
        request: httpx.Request,
        head: tuple[int, list[tuple[bytes, bytes]]],
        stream: httpx.SyncByteStream | httpx.AsyncByteStream,
    ) -> httpx.Response:
        """The ``httpx.Response`` for ``head``, with the response extensions.

        ``extensions["http.response.trailers"]`` is the list of trailers, filled in as the
        body is read (present only when the app declared trailers).
        ``extensions["http.response.debug"]`` is what ``http.response.debug`` reported;
        template responses put their template name and context there, which tests read as
        ``response.template`` and ``response.context``.
        """
        status, headers = head
        response = httpx.Response(status, headers=headers, stream=stream, request=request)
        if self.trailers is not None:
            response.extensions["http.response.trailers"] = self.trailers
        info = self.debug_info
        if info is not None:
            response.extensions["http.response.debug"] = info
            if "template" in info:
                response.template = info["template"]  # type: ignore[attr-defined]
            if "context" in info:
                response.context = info["context"]  # type: ignore[attr-defined]
        return response

    async def next_chunk(self) -> bytes | None:
        """The next body chunk, or None once the app has finished (its error raised, if any).

        Empty chunks and the chunks of a HEAD response are read (so the app moves on) and
        dropped here; trailers are collected into :attr:`trailers`.
        """
        while (message := await self._next_message()) is not None:
            if message["type"] == "http.response.trailers":
                assert self.trailers is not None
                self.trailers.extend(message["headers"])
                self._all_received = not message["more_trailers"]
                continue
            self._all_received = not message["more_body"] and self.trailers is None
            if message["body"] and self.scope["method"] != "HEAD":
                return message["body"]  # type: ignore[no-any-return]
        self._raise_pending_error()
        return None

    async def _next_message(self) -> Message | None:
        try:
            return await self._messages_in.receive()
        except anyio.EndOfStream:
            return None

    async def aclose(self, *, cancel: bool = False) -> None:
        """Stop listening, and see the app end; raise its error, if it had one.

        A response the client has received in full waits for the app to return (its
        background tasks run to their end). One cut short, or any with ``cancel``, cancels
        the app; with ``cancel`` no error of the app is raised.
        """
        if not self._done.is_set():
            if cancel or not self._all_received:
                self._response_complete.set()
                self._cancel_scope.cancel()
            await self._done.wait()
        self._messages_in.close()
        self._registry.discard(self)
        if not cancel:
            self._raise_pending_error()

    @staticmethod
    async def close_all(registry: set[HTTPExchange]) -> None:
        """Close the exchanges still open in ``registry`` (responses a test never closed).

        Every one is closed before any error is raised: one error as itself, several as
        an ``ExceptionGroup``.
        """
        errors: list[Exception] = []
        for exchange in list(registry):
            try:
                await exchange.aclose()
            except Exception as exc:
                errors.append(exc)
        raise_collected(errors, "errors in responses left open")

    def _raise_pending_error(self) -> None:
        if self.error is None or self._error_reported or not self.raise_server_exceptions:
            return
        self._error_reported = True
        raise self.error


def raise_collected(errors: list[Exception], message: str) -> None:
    """Raise nothing, the one error as itself, or several in an ``ExceptionGroup``."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ExceptionGroup(message, errors)


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
        self._streams = _AppStreams[object]()
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
        await _deliver(self._streams.to_app, {"type": "websocket.connect"})
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
        await _deliver(self._streams.to_app, message)

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
            await _wait_done_or_idle(self._done)
            self._cancel_scope.cancel()
            await self._done.wait()
        self._streams.to_app.close()
        self._streams.from_app.close()
        error, self._error = self._error, None
        if error is not None:
            raise error


# --------------------------------------------------------------------------- lifespan


class LifespanProtocolError(AssertionError, RuntimeError):
    """The app answered a lifespan event with the wrong message.

    An ``AssertionError``, as Starlette's test client raises; a ``RuntimeError`` too, as
    earlier stellate releases raised.
    """


class LifespanDriver:
    """Drives the ASGI ``lifespan`` protocol for a test client.

    :meth:`run` is the app's lifespan task (owned by the client); :meth:`startup` and
    :meth:`shutdown` send the events and wait for the answers. An app that returns without
    answering does not support lifespan, which is allowed: startup and shutdown then
    succeed silently. An app that raises fails the client's ``__enter__``/``__exit__``
    with that error; ``lifespan.startup.failed`` fails ``__enter__`` with a
    ``RuntimeError``, while ``lifespan.shutdown.failed`` from an app that then returns is
    accepted silently, as Starlette's client accepts it. An answer of the wrong type is
    an ``AssertionError``.

    :attr:`stream_receive` carries the messages to the app, :attr:`stream_send` the ones
    it sends: the names (and directions) of Starlette's ``TestClient`` attributes.
    """

    def __init__(self, app: ASGIApp, state: dict[str, Any]) -> None:
        self.app = app
        self.state = state
        streams = self._streams = _AppStreams[Message]()
        self.stream_receive = StapledObjectStream(streams.to_app, streams.app_inbox)
        self.stream_send = StapledObjectStream(streams.app_outbox, streams.from_app)
        self._error: BaseException | None = None
        self._cancel_scope = anyio.CancelScope()
        self._done = anyio.Event()

    @classmethod
    async def create(cls, app: ASGIApp, state: dict[str, Any]) -> LifespanDriver:
        """Build a driver in the running loop (usable through ``BlockingPortal.call``)."""
        return cls(app, state)

    async def run(self) -> None:
        """The lifespan task: run the app with a ``lifespan`` scope, keeping its error."""
        scope: Scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            with self._cancel_scope:
                async with self._streams.app_outbox:
                    try:
                        await self.app(scope, self._streams.app_inbox.receive, self._app_send)
                    except Exception as exc:
                        self._error = exc
        finally:
            self._streams.app_inbox.close()
            self._done.set()

    async def _app_send(self, message: Message) -> None:
        await self._streams.app_outbox.send(dict(message))

    async def stop(self) -> None:
        """Let the lifespan task finish what it is doing, then cancel it if it still runs."""
        if not self._done.is_set():
            await _wait_done_or_idle(self._done)
            self._cancel_scope.cancel()
            await self._done.wait()

    async def startup(self) -> None:
        """Send ``lifespan.startup`` and wait for the app's answer; on failure, end the task."""
        started = False
        try:
            await self._exchange("startup")
            started = True
        finally:
            if not started:  # failed or cancelled: the lifespan task must not outlive us
                with anyio.CancelScope(shield=True):
                    await self.stop()
                self._close()

    async def shutdown(self) -> None:
        """Send ``lifespan.shutdown``, wait for the app's answer, and see the task ended."""
        try:
            await self._exchange("shutdown")
        finally:
            with anyio.CancelScope(shield=True):
                await self.stop()
            self._close()

    def _close(self) -> None:
        self._streams.to_app.close()
        self._streams.from_app.close()

    async def _exchange(self, phase: str) -> None:
        await _deliver(self._streams.to_app, {"type": f"lifespan.{phase}"})
        try:
            message = await self._streams.from_app.receive()
        except anyio.EndOfStream:
            if self._error is not None:
                raise self._error from None
            return
        kind = message.get("type")
        if kind == f"lifespan.{phase}.failed":
            await self._raise_failure(phase, message)
        elif kind != f"lifespan.{phase}.complete":
            raise LifespanProtocolError(
                f"Expected 'lifespan.{phase}.complete' from the app, got {kind!r}."
            )

    async def _raise_failure(self, phase: str, message: Message) -> None:
        """Raise the app's own exception if it re-raises after ``failed``, else a RuntimeError.

        The app is given until it ends or blocks to re-raise; one that lingers is cancelled.
        A shutdown failure without an exception is not an error, as in Starlette (the
        application is going away anyway).
        """
        await self.stop()
        if self._error is not None:
            raise self._error
        if phase == "shutdown":
            return
        text = message.get("message") or ""
        raise RuntimeError(f"Lifespan {phase} failed: {text}".rstrip(": "))
