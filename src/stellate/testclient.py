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
:mod:`stellate.testing._transport`, shared with :class:`stellate.testing.AsyncTestClient`.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Generator, Iterator, Sequence
from types import TracebackType
from typing import Any, Literal, Self

import anyio.from_thread
import httpx
from anyio.from_thread import BlockingPortal

from stellate._concurrency import is_async_callable
from stellate.testing._transport import (
    HTTPExchange,
    LifespanDriver,
    WebSocketChannel,
    WebSocketDenialResponse,
    bytes_message,
    disconnect_message,
    frame_bytes,
    frame_json,
    frame_text,
    handshake_headers,
    http_scope,
    json_message,
    text_message,
    websocket_scope,
)
from stellate.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["TestClient", "WebSocketDenialResponse", "WebSocketTestSession"]

_PortalFactoryType = Callable[[], contextlib.AbstractContextManager[BlockingPortal]]
ASGI3App = ASGIApp


class _WrapASGI2:
    """Run an ASGI 2 (double-callable) application as an ASGI 3 one."""

    def __init__(self, app: Callable[[Scope], Callable[[Receive, Send], Any]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        instance = self.app(scope)
        await instance(receive, send)


def _as_asgi3(app: Any) -> ASGIApp:
    if inspect.isclass(app) or not is_async_callable(app):
        return _WrapASGI2(app)
    return app


class WebSocketTestSession:
    """A WebSocket session with the app, opened by :meth:`TestClient.websocket_connect`.

    Entering it performs the handshake: it returns once the app has accepted, and raises
    ``WebSocketDisconnect`` if the app closed instead, :class:`WebSocketDenialResponse` if
    it answered with an HTTP response, or the app's own exception. Leaving it tells the app
    the client went away (``websocket.disconnect``, code 1000), lets it finish, and cancels
    it if it would wait forever.
    """

    def __init__(self, app: ASGI3App, scope: Scope, portal_factory: _PortalFactoryType) -> None:
        self.app = app
        self.scope = scope
        self.portal_factory = portal_factory
        self.accepted_subprotocol: str | None = None
        self.extra_headers: list[tuple[bytes, bytes]] | None = None
        self._stack: contextlib.ExitStack | None = None
        self._channel: WebSocketChannel | None = None
        self._portal: BlockingPortal | None = None

    def __enter__(self) -> Self:
        with contextlib.ExitStack() as stack:
            portal = stack.enter_context(self.portal_factory())
            channel = portal.call(WebSocketChannel.create, self.app, self.scope)
            portal.start_task_soon(channel.run)
            stack.callback(portal.call, channel.shutdown)
            portal.call(channel.connect)
            self._stack = stack.pop_all()
        self._portal, self._channel = portal, channel
        self.accepted_subprotocol = channel.accepted_subprotocol
        self.extra_headers = channel.extra_headers
        return self

    def __exit__(self, *args: Any) -> bool | None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()
        return None

    def _require(self) -> tuple[BlockingPortal, WebSocketChannel]:
        if self._stack is None or self._portal is None or self._channel is None:
            raise RuntimeError("Use the WebSocket session inside its 'with' block.")
        return self._portal, self._channel

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
        self, portal: BlockingPortal, exchange: HTTPExchange, stack: contextlib.ExitStack
    ) -> None:
        self._portal = portal
        self._exchange = exchange
        self._stack = stack

    def __iter__(self) -> Iterator[bytes]:
        while (chunk := self._portal.call(self._exchange.next_chunk)) is not None:
            yield chunk

    def close(self) -> None:
        """Cancel the app if it still runs (the caller stopped reading), then free the portal."""
        self._stack.close()


class _TestClientTransport(httpx.BaseTransport):
    """Sends each request to the app in a portal; returns once the response has started."""

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
        #: Exchanges whose response has not been closed yet (closed when the client exits).
        self.open_exchanges: set[HTTPExchange] = set()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # Read the request body here, in the test's thread: a body iterator may block.
        body = [bytes(chunk) for chunk in request.stream]  # type: ignore[union-attr]
        scope = http_scope(
            request, root_path=self.root_path, client=self.client, state=self.app_state
        )
        with contextlib.ExitStack() as stack:
            portal = stack.enter_context(self.portal_factory())
            create = functools.partial(
                HTTPExchange.create,
                self.app,
                scope,
                body,
                self.raise_server_exceptions,
                0,
                self.open_exchanges,
            )
            exchange = portal.call(create)
            portal.start_task_soon(exchange.run)
            stack.callback(portal.call, exchange.aclose)
            head = portal.call(exchange.wait_head)
            response_stack = stack.pop_all()
        stream = _PortalByteStream(portal, exchange, response_stack)
        return exchange.build_response(request, head, stream)


class TestClient(httpx.Client):
    """An ``httpx.Client`` whose requests go straight to an ASGI app (no network).

    ``backend`` picks the event loop the app runs on (``"asyncio"`` or ``"trio"``),
    ``backend_options`` is passed to it. With ``raise_server_exceptions`` (the default), an
    exception raised by the app is raised in the test; without, it becomes a 500 response
    (or, after the response has started, a truncated body). ``root_path`` and ``client``
    fill the scope keys of the same names. Requests follow redirects unless
    ``follow_redirects=False``; cookies the app sets are sent back on later requests.
    """

    __test__ = False

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
        self.app = _as_asgi3(app)
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
            headers={"user-agent": "testclient", **(headers or {})},
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

    def websocket_connect(
        self, url: str, subprotocols: Sequence[str] | None = None, **kwargs: Any
    ) -> WebSocketTestSession:
        """A WebSocket session with the app at ``url``; use it in a ``with`` block.

        ``subprotocols`` are offered in the handshake; other keyword arguments (``headers``,
        ``params``, ``cookies``) shape the handshake request as they would a GET.
        """
        offered = list(subprotocols or [])
        merged = httpx.Headers(handshake_headers(offered))
        merged.update(httpx.Headers(kwargs.pop("headers", None)))
        request = self.build_request("GET", url, headers=merged, **kwargs)
        scope = websocket_scope(
            request,
            subprotocols=offered,
            root_path=self.root_path,
            client=self.client_address,
            state=self.app_state,
        )
        return WebSocketTestSession(self.app, scope, self._portal_factory)

    def __enter__(self) -> Self:
        with contextlib.ExitStack() as stack:
            self.portal = portal = stack.enter_context(
                anyio.from_thread.start_blocking_portal(**self.async_backend)
            )
            stack.callback(self._forget_portal)
            self._lifespan = portal.call(LifespanDriver.create, self.app, self.app_state)
            portal.start_task_soon(self.lifespan)
            portal.call(self.wait_startup)
            stack.callback(portal.call, self.wait_shutdown)
            stack.callback(portal.call, HTTPExchange.close_all, self._test_transport.open_exchanges)
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
