"""``TestClient``: call an ASGI app from synchronous tests, as an ``httpx.Client``.

The app runs in an anyio *blocking portal*: an event loop (asyncio or trio, the ``backend``
argument) in a helper thread. The test thread hands coroutines to it and waits for their
results, so a plain ``def test_...():`` drives an async app.

Used as a context manager, the client keeps one portal open for its whole ``with`` block
and runs the app's lifespan in it: startup before ``__enter__`` returns, shutdown in
``__exit__``. Without ``with``, each request (and each WebSocket session) opens a portal of
its own and closes it when the response is closed, and the lifespan does not run.

Every task the client starts (the lifespan, each request's app call, each WebSocket
session) is started in the portal's task group, and every one of them has ended when the
response, session or client that owns it is closed. The ASGI protocol itself is spoken by
:mod:`stellate.testing._transport` (HTTP), :mod:`stellate.testing._websocket_channel` and
:mod:`stellate.testing._lifespan_driver`, shared with :class:`stellate.testing.AsyncTestClient`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import warnings
from collections.abc import Awaitable, Callable, Generator, Iterator, Sequence
from types import TracebackType
from typing import Any, Literal, Self

import anyio.from_thread
import anyio.to_thread
from anyio.from_thread import BlockingPortal
from anyio.streams.stapled import StapledObjectStream

from stellate.exceptions import StellateDeprecationWarning
from stellate.testing._httpx import httpx
from stellate.testing._lifespan_driver import LifespanDriver
from stellate.testing._transport import (
    HTTPExchange,
    as_asgi3,
    default_headers,
    http_scope,
    raise_collected,
    websocket_scope,
)
from stellate.testing._websocket_channel import (
    WebSocketChannel,
    WebSocketDenialResponse,
    WebSocketUpgrade,
    bytes_message,
    disconnect_message,
    frame_bytes,
    frame_json,
    frame_text,
    is_websocket_request,
    json_message,
    text_message,
    websocket_handshake,
)
from stellate.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "ASGI2App",
    "ASGI3App",
    "ASGIInstance",
    "TestClient",
    "WebSocketDenialResponse",
    "WebSocketTestSession",
]

_PortalFactoryType = Callable[[], contextlib.AbstractContextManager[BlockingPortal]]

#: The callable an ASGI 2 application returns for a scope.
ASGIInstance = Callable[[Receive, Send], Awaitable[None]]
#: An ASGI 2 ("double callable") application: ``app(scope)(receive, send)``.
ASGI2App = Callable[[Scope], ASGIInstance]
#: An ASGI 3 application: ``app(scope, receive, send)``.
ASGI3App = ASGIApp

_TIMEOUT_WARNING = (
    "You should not use the 'timeout' argument with the TestClient. "
    "See https://github.com/Kludex/starlette/issues/1108 for more information."
)


class WebSocketTestSession:
    """A WebSocket session with the app, opened by :meth:`TestClient.websocket_connect`.

    Entering it performs the handshake: it returns once the app has accepted, and raises
    ``WebSocketDisconnect`` if the app closed instead, :class:`WebSocketDenialResponse` if
    it answered with an HTTP response, or the app's own exception. Leaving it tells the app
    the client went away (``websocket.disconnect``, code 1000), lets it finish, and cancels
    it if it would wait forever; the exception the app ended with, if any, is raised then
    -- ``WebSocketDisconnect`` included, when the endpoint did not catch it.
    """

    def __init__(self, app: ASGI3App, scope: Scope, portal_factory: _PortalFactoryType) -> None:
        self.app = app
        self.scope = scope
        self.portal_factory = portal_factory
        self.accepted_subprotocol: str | None = None
        self.extra_headers: list[tuple[bytes, bytes]] | None = None
        self._stack: contextlib.ExitStack | None = None
        self._channel: WebSocketChannel | None = None
        #: The portal the session's app runs in (while the session is open).
        self.portal: BlockingPortal | None = None

    def __enter__(self) -> Self:
        with contextlib.ExitStack() as stack:
            portal = stack.enter_context(self.portal_factory())
            channel = portal.call(WebSocketChannel.create, self.app, self.scope)
            portal.start_task_soon(channel.run)
            stack.callback(portal.call, channel.shutdown)
            portal.call(channel.connect)
            self._stack = stack.pop_all()
        self.portal, self._channel = portal, channel
        self.accepted_subprotocol = channel.accepted_subprotocol
        self.extra_headers = channel.extra_headers
        return self

    def __exit__(self, *args: Any) -> bool | None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()
        return None

    def _require(self) -> tuple[BlockingPortal, WebSocketChannel]:
        if self._stack is None or self.portal is None or self._channel is None:
            raise RuntimeError("Use the WebSocket session inside its 'with' block.")
        return self.portal, self._channel

    def send(self, message: Message) -> None:
        """Deliver a raw ASGI message to the app's ``receive()``."""
        portal, channel = self._require()
        portal.call(channel.send, message)

    def send_text(self, data: str) -> None:
        """Send a text frame."""
        self.send(text_message(data))

    def send_bytes(self, data: bytes) -> None:
        """Send a binary frame."""
        self.send(bytes_message(data))

    def send_json(self, data: Any, mode: Literal["text", "binary"] = "text") -> None:
        """Send ``data`` as JSON, in a text frame or (``mode="binary"``) a UTF-8 binary frame."""
        self.send(json_message(data, mode))

    def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Close the connection from the client's side with ``code`` and ``reason``."""
        self.send(disconnect_message(code, reason))

    def receive(self) -> Message:
        """The app's next ASGI message (``websocket.send`` or ``websocket.close``)."""
        portal, channel = self._require()
        return portal.call(channel.receive)

    def receive_text(self) -> str:
        """The next text frame; raises ``WebSocketDisconnect`` if the app closed instead."""
        return frame_text(self.receive())

    def receive_bytes(self) -> bytes:
        """The next binary frame; raises ``WebSocketDisconnect`` if the app closed instead."""
        return frame_bytes(self.receive())

    def receive_json(self, mode: Literal["text", "binary"] = "text") -> Any:
        """The next frame decoded as JSON (from a text frame, or a binary one if asked)."""
        return frame_json(self.receive(), mode)


class _PortalByteStream(httpx.SyncByteStream):
    """A response body pulled chunk by chunk from the app running in the portal."""

    def __init__(
        self,
        portal: BlockingPortal,
        exchange: HTTPExchange,
        stack: contextlib.ExitStack,
        registry: set[_PortalByteStream],
    ) -> None:
        self._portal = portal
        self._exchange = exchange
        self._stack = stack
        self._registry = registry
        registry.add(self)

    def __iter__(self) -> Iterator[bytes]:
        while (chunk := self._portal.call(self._exchange.next_chunk)) is not None:
            yield chunk

    def close(self) -> None:
        """Wait for the app if the whole response was received, else cancel it; free the portal."""
        self._finish(cancel=False)

    def abort(self) -> None:
        """Cancel the app whatever it was doing, without raising its error; free the portal."""
        self._finish(cancel=True)

    def _finish(self, *, cancel: bool) -> None:
        if self not in self._registry:
            return
        self._registry.discard(self)
        with self._stack:  # leaves the request's own portal, if it has one, last
            self._portal.call(functools.partial(self._exchange.aclose, cancel=cancel))


class _TestClientTransport(httpx.BaseTransport):
    """Sends each request to the app in a portal; returns once the response has started.

    A ``ws://``/``wss://`` request (a handshake from ``websocket_connect``) is answered by
    raising :class:`~stellate.testing._websocket_channel.WebSocketUpgrade` with its scope.
    """

    def __init__(
        self,
        app: ASGIApp,
        portal_factory: _PortalFactoryType,
        *,
        raise_server_exceptions: bool,
        root_path: str,
        client: tuple[str, int],
        app_state: dict[str, Any],
    ) -> None:
        self.app = app
        self.portal_factory = portal_factory
        self.raise_server_exceptions = raise_server_exceptions
        self.root_path = root_path
        self.client = client
        self.app_state = app_state
        #: Response bodies not closed yet.
        self.open_streams: set[_PortalByteStream] = set()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if is_websocket_request(request):
            raise WebSocketUpgrade(
                websocket_scope(
                    request, root_path=self.root_path, client=self.client, state=self.app_state
                )
            )
        scope = http_scope(
            request, root_path=self.root_path, client=self.client, state=self.app_state
        )
        with contextlib.ExitStack() as stack:
            portal = stack.enter_context(self.portal_factory())
            create = functools.partial(
                HTTPExchange.create,
                self.app,
                scope,
                functools.partial(_read_body, request),
                self.raise_server_exceptions,
                0,
            )
            exchange = portal.call(create)
            portal.start_task_soon(exchange.run)
            with contextlib.ExitStack() as on_error:
                on_error.callback(portal.call, functools.partial(exchange.aclose, cancel=True))
                head = portal.call(exchange.wait_head)
                on_error.pop_all()
            response_stack = stack.pop_all()
        stream = _PortalByteStream(portal, exchange, response_stack, self.open_streams)
        return exchange.build_response(request, head, stream)

    def close_streams(self) -> None:
        """Close the responses a test left open: wait for finished ones, cancel the rest.

        Every one is closed before any error is raised: one error as itself, several as
        an ``ExceptionGroup``.
        """
        errors: list[Exception] = []
        for stream in list(self.open_streams):
            try:
                stream.close()
            except Exception as exc:
                errors.append(exc)
        raise_collected(errors, "errors in responses left open")

    def close(self) -> None:
        """Cancel every response still open and stop its portal (``TestClient.close()``)."""
        for stream in list(self.open_streams):
            stream.abort()


async def _read_body(request: httpx.Request) -> bytes:
    """The request body, read when the app first asks for it.

    A body given as bytes is at hand; an iterator is drained in a worker thread, since it
    may block (it is the test's code, written for a synchronous client).
    """
    try:
        return request.content
    except httpx.RequestNotRead:
        return await anyio.to_thread.run_sync(request.read)


class TestClient(httpx.Client):
    """An ``httpx.Client`` whose requests go straight to an ASGI app (no network).

    ``backend`` picks the event loop the app runs on (``"asyncio"`` or ``"trio"``),
    ``backend_options`` is passed to it. With ``raise_server_exceptions`` (the default), an
    exception raised by the app is raised in the test; without, it becomes a 500 response
    (or, after the response has started, a truncated body). ``root_path`` and ``client``
    fill the scope keys of the same names. Requests follow redirects unless
    ``follow_redirects=False``; cookies the app sets are sent back on later requests.

    ``close()`` (httpx's, which closes the transport) cancels the responses left open and
    stops their portals. Inside ``with``, :attr:`task` is the lifespan task's
    ``concurrent.futures.Future`` and :attr:`stream_receive` / :attr:`stream_send` the
    lifespan message channels (to the app, from the app), as in Starlette.
    """

    __test__ = False

    task: concurrent.futures.Future[None]
    stream_send: StapledObjectStream[Message]
    stream_receive: StapledObjectStream[Message]

    def __init__(
        self,
        app: ASGIApp,
        base_url: str = "http://testserver",
        raise_server_exceptions: bool = True,
        root_path: str = "",
        backend: Literal["asyncio", "trio"] = "asyncio",
        backend_options: dict[str, Any] | None = None,
        cookies: httpx._types.CookieTypes | None = None,
        headers: dict[str, str] | None = None,
        follow_redirects: bool = True,
        client: tuple[str, int] = ("testclient", 50000),
    ) -> None:
        self.async_backend: dict[str, Any] = {
            "backend": backend,
            "backend_options": backend_options or {},
        }
        self.app = as_asgi3(app)
        self.app_state: dict[str, Any] = {}
        self.portal: BlockingPortal | None = None
        self.exit_stack: contextlib.ExitStack | None = None
        self._lifespan: LifespanDriver | None = None
        self._test_transport = transport = _TestClientTransport(
            self.app,
            self._portal_factory,
            raise_server_exceptions=raise_server_exceptions,
            root_path=root_path,
            client=client,
            app_state=self.app_state,
        )
        self.root_path = root_path
        self.client_address = client
        super().__init__(
            base_url=base_url,
            headers=default_headers(headers),
            transport=transport,
            follow_redirects=follow_redirects,
            cookies=cookies,
        )

    @contextlib.contextmanager
    def _portal_factory(self) -> Generator[BlockingPortal, None, None]:
        """The client's own portal inside ``with``; a short-lived one outside it."""
        if self.portal is not None:
            yield self.portal
            return
        with anyio.from_thread.start_blocking_portal(**self.async_backend) as portal:
            yield portal

    def request(
        self,
        method: str,
        url: httpx._types.URLTypes,
        *,
        timeout: Any = httpx.USE_CLIENT_DEFAULT,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a request (``httpx.Client.request``); warns if ``timeout`` is passed.

        A timeout cannot interrupt an app running in the same process, so passing one is
        flagged with a ``StellateDeprecationWarning``, as Starlette's client does.
        """
        if timeout is not httpx.USE_CLIENT_DEFAULT:
            warnings.warn(_TIMEOUT_WARNING, StellateDeprecationWarning, stacklevel=2)
        return super().request(method, url, timeout=timeout, **kwargs)

    def websocket_connect(
        self, url: str, subprotocols: Sequence[str] | None = None, **kwargs: Any
    ) -> WebSocketTestSession:
        """A WebSocket session with the app at ``url``; use it in a ``with`` block.

        ``url`` is resolved against ``ws://testserver`` (not ``base_url``), as Starlette's
        client does. ``subprotocols`` are offered in the handshake; other keyword arguments
        (``headers``, ``params``, ``cookies``, ``auth``, ...) shape the handshake request as
        they would a GET. An ``http(s)://`` URL is sent as a plain request and raises
        ``RuntimeError("Expected WebSocket upgrade")``.
        """
        target, kwargs["headers"] = websocket_handshake(url, subprotocols, kwargs.get("headers"))
        try:
            super().request("GET", target, **kwargs)
        except WebSocketUpgrade as upgrade:
            return WebSocketTestSession(self.app, upgrade.scope, self._portal_factory)
        raise RuntimeError("Expected WebSocket upgrade")

    def __enter__(self) -> Self:
        with contextlib.ExitStack() as stack:
            self.portal = portal = stack.enter_context(
                anyio.from_thread.start_blocking_portal(**self.async_backend)
            )
            stack.callback(self._forget_portal)
            self._lifespan = driver = portal.call(LifespanDriver.create, self.app, self.app_state)
            self.stream_send, self.stream_receive = driver.stream_send, driver.stream_receive
            self.task = portal.start_task_soon(self.lifespan)
            portal.call(self.wait_startup)
            stack.callback(portal.call, self.wait_shutdown)
            stack.callback(self._test_transport.close_streams)
            self.exit_stack = stack.pop_all()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        stack, self.exit_stack = self.exit_stack, None
        if stack is not None:
            stack.__exit__(exc_type, exc_value, traceback)

    def _forget_portal(self) -> None:
        self.portal = None
        self._lifespan = None

    def _driver(self) -> LifespanDriver:
        if self._lifespan is None:
            raise RuntimeError("The lifespan runs only while the client is used in 'with'.")
        return self._lifespan

    async def lifespan(self) -> None:
        """The lifespan task: the app called with a ``lifespan`` scope (run by ``__enter__``)."""
        await self._driver().run()

    async def wait_startup(self) -> None:
        """Send ``lifespan.startup`` and wait for the app; raise if startup failed."""
        await self._driver().startup()

    async def wait_shutdown(self) -> None:
        """Send ``lifespan.shutdown`` and wait for the app; raise if shutdown failed."""
        await self._driver().shutdown()
