"""``AsyncTestClient``: call an ASGI app from async tests, in the test's own event loop.

Where :class:`stellate.testclient.TestClient` runs the app in a helper thread, this client
awaits it directly: no thread, no portal, and the app shares the test's event loop, its
context variables and its backend (asyncio or trio, under the anyio pytest plugin or
pytest-trio). The ASGI protocol is spoken by :mod:`stellate.testing._transport` (HTTP),
:mod:`stellate.testing._websocket_channel` and :mod:`stellate.testing._lifespan_driver`, the
same core the sync client uses.

Inside ``async with`` the client owns a task group: the app's lifespan runs in it, and each
request's app call runs in it too, so a streamed response (``client.stream(...)``) is
handed back as soon as the app has started it. Leaving the block shuts the lifespan down
and cancels whatever is still running. Outside ``async with`` there is no task group to own
a background task, so each request is run to completion before its response is returned
(the body is buffered) and the lifespan does not run.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Self

import anyio
from anyio.abc import TaskGroup

from stellate._concurrency import create_task_group
from stellate.testing._httpx import httpx
from stellate.testing._lifespan_driver import LifespanDriver
from stellate.testing._transport import (
    HTTPExchange,
    as_asgi3,
    default_headers,
    http_scope,
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
from stellate.types import ASGIApp, Message

__all__ = ["AsyncTestClient", "AsyncWebSocketTestSession", "WebSocketDenialResponse"]


class AsyncWebSocketTestSession:
    """A WebSocket session with the app, from :meth:`AsyncTestClient.websocket_connect`."""

    def __init__(self, channel: WebSocketChannel) -> None:
        self._channel = channel
        self.accepted_subprotocol: str | None = channel.accepted_subprotocol
        self.extra_headers: list[tuple[bytes, bytes]] | None = channel.extra_headers

    async def send(self, message: Message) -> None:
        """Deliver a raw ASGI message to the app's ``receive()``."""
        await self._channel.send(message)

    async def send_text(self, data: str) -> None:
        """Send a text frame."""
        await self.send(text_message(data))

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary frame."""
        await self.send(bytes_message(data))

    async def send_json(self, data: Any, mode: Literal["text", "binary"] = "text") -> None:
        """Send ``data`` as JSON, in a text frame or (``mode="binary"``) a UTF-8 binary frame."""
        await self.send(json_message(data, mode))

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Close the connection from the client's side with ``code`` and ``reason``."""
        await self.send(disconnect_message(code, reason))

    async def receive(self) -> Message:
        """The app's next ASGI message (``websocket.send`` or ``websocket.close``)."""
        return await self._channel.receive()

    async def receive_text(self) -> str:
        """The next text frame; raises ``WebSocketDisconnect`` if the app closed instead."""
        return frame_text(await self.receive())

    async def receive_bytes(self) -> bytes:
        """The next binary frame; raises ``WebSocketDisconnect`` if the app closed instead."""
        return frame_bytes(await self.receive())

    async def receive_json(self, mode: Literal["text", "binary"] = "text") -> Any:
        """The next frame decoded as JSON (from a text frame, or a binary one if asked)."""
        return frame_json(await self.receive(), mode)


class _ExchangeByteStream(httpx.AsyncByteStream):
    """A response body read from the app as the caller iterates.

    An iterator object rather than an async generator: a generator abandoned half-way
    would be finalized by the garbage collector, outside any task.
    """

    def __init__(self, exchange: HTTPExchange) -> None:
        self._exchange = exchange

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._exchange.next_chunk()
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        """Cancel the app if it still runs (the caller stopped reading) and wait for it."""
        await self._exchange.aclose()


class _AsyncTestTransport(httpx.AsyncBaseTransport):
    """Runs each request through the app, in the client's task group when it has one."""

    def __init__(self, owner: AsyncTestClient, *, raise_server_exceptions: bool) -> None:
        self._owner = owner
        self.raise_server_exceptions = raise_server_exceptions
        #: Exchanges whose response has not been closed yet (closed when the client exits).
        self.open_exchanges: set[HTTPExchange] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        owner = self._owner
        if is_websocket_request(request):
            raise WebSocketUpgrade(
                websocket_scope(
                    request,
                    root_path=owner.root_path,
                    client=owner.client_address,
                    state=owner.app_state,
                )
            )
        scope = http_scope(
            request, root_path=owner.root_path, client=owner.client_address, state=owner.app_state
        )
        group = owner._task_group
        exchange = HTTPExchange(
            owner.app,
            scope,
            request.aread,
            raise_server_exceptions=self.raise_server_exceptions,
            buffer_size=math.inf if group is None else 0,
            registry=self.open_exchanges,
        )
        if group is None:
            await exchange.run()
        else:
            group.start_soon(exchange.run)
        head = None
        try:
            head = await exchange.wait_head()
        finally:
            if head is None:  # the app failed or we were cancelled: stop it before leaving
                with anyio.CancelScope(shield=True):
                    await exchange.aclose()
        return exchange.build_response(request, head, _ExchangeByteStream(exchange))

    async def aclose(self) -> None:
        """Cancel every response still open (``AsyncTestClient.aclose()``), as Starlette's
        ``TestClient.close()`` does."""
        for exchange in list(self.open_exchanges):
            await exchange.aclose(cancel=True)


class AsyncTestClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` whose requests go to an ASGI app in the current event loop.

    The parameters mean what they mean for :class:`stellate.testclient.TestClient` (there is
    no ``backend``: the app runs on the caller's). ``async with`` runs the lifespan and lets
    streamed responses return before the app has finished.
    """

    __test__ = False

    def __init__(
        self,
        app: ASGIApp,
        base_url: str = "http://testserver",
        raise_server_exceptions: bool = True,
        root_path: str = "",
        cookies: httpx._types.CookieTypes | None = None,
        headers: Mapping[str, str] | None = None,
        follow_redirects: bool = True,
        client: tuple[str, int] = ("testclient", 50000),
    ) -> None:
        self.app = as_asgi3(app)
        self.app_state: dict[str, Any] = {}
        self.root_path = root_path
        self.client_address = client
        self._task_group: TaskGroup | None = None
        self._exit_stack: contextlib.AsyncExitStack | None = None
        self._test_transport = _AsyncTestTransport(
            self, raise_server_exceptions=raise_server_exceptions
        )
        super().__init__(
            base_url=base_url,
            headers=default_headers(headers),
            transport=self._test_transport,
            follow_redirects=follow_redirects,
            cookies=cookies,
        )

    async def __aenter__(self) -> Self:
        await self._enter()
        return self

    async def _enter(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            group = await stack.enter_async_context(create_task_group())
            # Exit callbacks run last-in first-out: shut the lifespan down, close the
            # responses the test left open, cancel what is left, leave the task group.
            stack.callback(group.cancel_scope.cancel)
            stack.callback(setattr, self, "_task_group", None)
            stack.push_async_callback(HTTPExchange.close_all, self._test_transport.open_exchanges)
            self._task_group = group
            lifespan = LifespanDriver(self.app, self.app_state)
            group.start_soon(lifespan.run)
            await lifespan.startup()
            stack.push_async_callback(lifespan.shutdown)
            self._exit_stack = stack.pop_all()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        stack, self._exit_stack = self._exit_stack, None
        if stack is not None:
            await stack.__aexit__(exc_type, exc_value, traceback)

    @contextlib.asynccontextmanager
    async def websocket_connect(
        self, url: str, subprotocols: Sequence[str] | None = None, **kwargs: Any
    ) -> AsyncIterator[AsyncWebSocketTestSession]:
        """A WebSocket session with the app at ``url``, as an async context manager.

        The handshake request is built as :meth:`TestClient.websocket_connect
        <stellate.testclient.TestClient.websocket_connect>` builds it (``url`` resolved
        against ``ws://testserver``; ``headers``, ``auth``, ``cookies``... accepted). It
        happens on entry: ``WebSocketDisconnect`` if the app closes instead of accepting,
        :class:`WebSocketDenialResponse` if it answers with an HTTP response, or the app's
        own exception. On exit the app is told the client left, may finish, and is
        cancelled if it would wait forever; the exception the app ended with, if any
        (``WebSocketDisconnect`` included), is raised then. The session's task group is its
        own, so this works with or without ``async with`` on the client.
        """
        target, kwargs["headers"] = websocket_handshake(url, subprotocols, kwargs.get("headers"))
        try:
            await self.request("GET", target, **kwargs)
        except WebSocketUpgrade as upgrade:
            scope = upgrade.scope
        else:
            raise RuntimeError("Expected WebSocket upgrade")
        channel = WebSocketChannel(self.app, scope)
        async with self._session(channel) as session:
            yield session

    @staticmethod
    @contextlib.asynccontextmanager
    async def _session(channel: WebSocketChannel) -> AsyncIterator[AsyncWebSocketTestSession]:
        async with create_task_group() as group:
            group.start_soon(channel.run)
            try:
                await channel.connect()
                yield AsyncWebSocketTestSession(channel)
            finally:
                with anyio.CancelScope(shield=True):
                    await channel.shutdown()
