"""What the hot path promises beyond its answers: no garbage cycles, no needless tasks.

These pin down design decisions made for speed (DESIGN.md §4) that a refactoring could
undo without any other test noticing.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest

from stellate._context import context_of
from stellate._disconnect import get_multiplexer
from stellate.applications import Stellate
from stellate.requests import ClientDisconnect, Request
from stellate.responses import PlainTextResponse, Response, StreamingResponse
from stellate.routing import Route

pytestmark = pytest.mark.anyio


def scope_for(path: str = "/", spec_version: str = "2.4") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": spec_version},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }


class Connection:
    """Like a server's per-request object: it holds the scope, its methods are the ASGI calls."""

    def __init__(self, scope: dict[str, Any], fail_on: type[Exception] | None = None) -> None:
        self.scope = scope
        self.messages: list[dict[str, Any]] = []
        self.received = 0
        self.fail_on = fail_on

    async def receive(self) -> dict[str, Any]:
        self.received += 1
        if self.received > 1:  # the body is over; a server waits for the client to leave
            await anyio.sleep_forever()
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(self, message: dict[str, Any]) -> None:
        if self.fail_on is not None and message.get("more_body"):
            raise self.fail_on("the client is gone")
        self.messages.append(message)


@pytest.fixture
def no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def hello(request: Request) -> Response:
    return PlainTextResponse("hello")


@pytest.mark.usefixtures("no_gc")
async def test_a_request_leaves_no_reference_cycle_behind() -> None:
    # The connection's multiplexer holds the server's receive (so the server's object,
    # which holds the scope); were it left in the scope, every request would be garbage
    # that only the cyclic collector can free.
    app = Stellate(routes=[Route("/", hello)])
    scope = scope_for()
    connection = Connection(scope)
    await app(scope, connection.receive, connection.send)
    assert connection.messages[-1]["body"] == b"hello"
    assert get_multiplexer(scope) is None
    gone = weakref.ref(connection)
    del connection, scope
    assert gone() is None  # freed by reference counting alone


async def test_a_multiplexer_installed_by_an_outer_app_is_left_to_it() -> None:
    inner = Stellate(routes=[Route("/", hello)])
    scope = scope_for()
    marker = object()
    context_of(scope).receive = marker  # type: ignore[assignment]  # as an outer app would
    connection = Connection(scope)
    await inner(scope, connection.receive, connection.send)
    assert get_multiplexer(scope) is marker


async def numbers(closed: list[bool]) -> AsyncIterator[bytes]:
    try:
        for n in range(3):
            yield str(n).encode()
    finally:
        closed.append(True)


async def test_an_idle_stream_stops_when_the_client_leaves() -> None:
    # Below ASGI 2.4 a listener is how a stream waiting for its next chunk learns that the
    # client left. (This test also ran on 2.4, where stellate used to listen too; on 2.4
    # nothing listens now, as in Starlette: see the test below and test_responses.py.)
    closed: list[bool] = []
    first_sent = anyio.Event()

    async def idle() -> AsyncIterator[bytes]:
        try:
            yield b"first"
            await anyio.sleep_forever()
        finally:
            closed.append(True)

    async def receive() -> dict[str, Any]:
        await first_sent.wait()
        return {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message.get("body") == b"first":
            first_sent.set()

    with anyio.fail_after(5):
        await StreamingResponse(idle())(scope_for(spec_version="2.3"), receive, send)
    assert closed == [True]
    assert all(m.get("more_body", True) for m in sent[1:])  # no final body after leaving


async def test_streaming_on_asgi_2_4_stops_when_send_raises_oserror() -> None:
    closed: list[bool] = []
    connection = Connection(scope_for(), fail_on=OSError)
    response = StreamingResponse(numbers(closed))
    # As Starlette: ClientDisconnect is raised (it used to return quietly), and nothing
    # listened (receive() was never called).
    with pytest.raises(ClientDisconnect):
        await response(connection.scope, connection.receive, connection.send)
    # The start went out; the first chunk failed: nothing more is sent, the iterator closed.
    assert [m["type"] for m in connection.messages] == ["http.response.start"]
    assert closed == [True]
    assert connection.received == 0


async def test_streaming_on_older_servers_still_listens_for_a_disconnect() -> None:
    closed: list[bool] = []
    connection = Connection(scope_for(spec_version="2.3"))
    await StreamingResponse(numbers(closed))(connection.scope, connection.receive, connection.send)
    assert connection.received >= 1  # the listener read the (empty) request body
    assert [m.get("body") for m in connection.messages[1:]] == [b"0", b"1", b"2", b""]
