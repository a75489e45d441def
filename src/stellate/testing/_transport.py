"""The HTTP core shared by the test clients: httpx requests in, ASGI messages out.

``TestClient`` (sync, the app in a blocking portal) and ``AsyncTestClient`` (async, the app
in the caller's event loop) differ only in *where* the coroutines below run. What speaks
ASGI over HTTP lives here, once:

* :func:`http_scope` and :func:`websocket_scope` turn an :class:`httpx.Request` into the
  scope a server would build for it; :func:`default_headers` are the headers every client
  request carries.
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

The other protocols have modules of their own: the WebSocket session in
:mod:`stellate.testing._websocket_channel`, the ``lifespan`` protocol in
:mod:`stellate.testing._lifespan_driver`, and the streams both use in
:mod:`stellate.testing._app_streams`. No coroutine in any of them starts a task of its own:
the clients decide who owns the app's task.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from stellate._concurrency import is_async_callable
from stellate.testing._httpx import httpx
from stellate.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "HTTPExchange",
    "as_asgi3",
    "default_headers",
    "http_scope",
    "is_asgi3",
    "raise_collected",
    "websocket_scope",
]

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


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


def default_headers(headers: Any) -> httpx.Headers:
    """A client's default headers: ``user-agent: testclient`` unless the caller set one.

    Merged case-insensitively, so ``{"User-Agent": "x"}`` replaces the default (the value
    an app reads in Starlette, where both end up sent with the caller's first).
    """
    merged = httpx.Headers({"user-agent": "testclient"})
    merged.update(httpx.Headers(headers))
    return merged


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
