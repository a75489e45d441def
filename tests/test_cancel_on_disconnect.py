"""Cancel on disconnect: the handler is cancelled the moment the client leaves.

The app is driven in the test's own event loop through a hand-held connection, so the
test decides exactly when body chunks and ``http.disconnect`` arrive and observes the
handler through anyio Events, never through timing.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from stellate._disconnect import READ_AHEAD_LIMIT, ReceiveMultiplexer, poll
from stellate.applications import Stellate
from stellate.middleware import Middleware
from stellate.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from stellate.requests import ClientDisconnect, Request
from stellate.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from stellate.routing import Mount, Route, Router
from stellate.types import ASGIApp, Message

pytestmark = pytest.mark.anyio


class Connection:
    """The server's side of one HTTP request: the test pushes what the client sends."""

    def __init__(self, spec_version: str | None = None) -> None:
        self.spec_version = spec_version
        self._to_app, self._inbox = anyio.create_memory_object_stream[Message](math.inf)
        self.sent: list[Message] = []
        self.done = anyio.Event()

    def scope(self, path: str = "/", method: str = "GET") -> dict[str, Any]:
        asgi = {"version": "3.0"}
        if self.spec_version is not None:
            asgi["spec_version"] = self.spec_version
        return {
            "type": "http",
            "asgi": asgi,
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver")],
            "client": ("127.0.0.1", 1234),
            "server": ("testserver", 80),
        }

    async def receive(self) -> Message:
        return await self._inbox.receive()

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    def push_body(self, body: bytes, more_body: bool = True) -> None:
        self._to_app.send_nowait({"type": "http.request", "body": body, "more_body": more_body})

    def disconnect(self) -> None:
        self._to_app.send_nowait({"type": "http.disconnect"})

    async def run(self, app: ASGIApp, path: str = "/", method: str = "GET") -> None:
        try:
            await app(self.scope(path, method), self.receive, self.send)
        finally:
            self.close()
            self.done.set()

    def close(self) -> None:
        self._to_app.close()
        self._inbox.close()

    @property
    def status(self) -> int | None:
        for message in self.sent:
            if message["type"] == "http.response.start":
                return int(message["status"])
        return None

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


class Probe:
    """Records what happened to a handler."""

    def __init__(self) -> None:
        self.started = anyio.Event()
        self.proceed = anyio.Event()
        self.cancelled = anyio.Event()
        self.finished = False
        self.values: list[Any] = []

    async def endpoint(self, request: Request) -> Response:
        self.started.set()
        try:
            await self.proceed.wait()
        except anyio.get_cancelled_exc_class():
            self.cancelled.set()
            raise
        self.finished = True
        return PlainTextResponse("finished")


async def serve(app: ASGIApp, conn: Connection, path: str = "/", method: str = "GET") -> None:
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(conn.run, app, path, method)
            await conn.done.wait()


# -- the application setting ------------------------------------------------------------


@pytest.mark.parametrize("spec_version", [None, "2.4"])
async def test_handler_is_cancelled_when_the_client_disconnects(spec_version: str | None) -> None:
    probe = Probe()
    app = Stellate(routes=[Route("/", probe.endpoint)], cancel_on_disconnect=True)
    conn = Connection(spec_version)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(conn.run, app)
            await probe.started.wait()
            conn.disconnect()
            await probe.cancelled.wait()
            await conn.done.wait()
    assert not probe.finished
    assert conn.sent == []  # nothing is sent after a cancelled handler


async def test_handler_is_cancelled_while_its_body_is_unread() -> None:
    probe = Probe()
    app = Stellate(routes=[Route("/", probe.endpoint, methods=["POST"])], cancel_on_disconnect=True)
    conn = Connection()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(conn.run, app, "/", "POST")
            await probe.started.wait()
            conn.push_body(b"never read")
            conn.push_body(b"still never read")
            conn.disconnect()
            await probe.cancelled.wait()
            await conn.done.wait()
    assert conn.sent == []


async def test_without_the_setting_the_handler_runs_to_completion() -> None:
    probe = Probe()
    app = Stellate(routes=[Route("/", probe.endpoint)])
    conn = Connection()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(conn.run, app)
            await probe.started.wait()
            conn.disconnect()
            await anyio.wait_all_tasks_blocked()
            assert not probe.cancelled.is_set()
            probe.proceed.set()
            await conn.done.wait()
    assert probe.finished
    assert conn.body == b"finished"


async def test_handler_reading_its_body_sees_every_chunk_in_order() -> None:
    async def echo(request: Request) -> Response:
        return PlainTextResponse(await request.body())

    app = Stellate(routes=[Route("/", echo, methods=["POST"])], cancel_on_disconnect=True)
    conn = Connection()
    conn.push_body(b"one,")
    conn.push_body(b"two,")
    conn.push_body(b"three", more_body=False)
    await serve(app, conn, "/", "POST")
    assert conn.status == 200
    assert conn.body == b"one,two,three"


async def test_disconnect_while_reading_the_body_cancels_the_reader() -> None:
    chunks: list[bytes] = []
    outcome: list[str] = []
    first = anyio.Event()

    async def reader(request: Request) -> Response:
        try:
            async for chunk in request.stream():
                chunks.append(chunk)
                first.set()
        except anyio.get_cancelled_exc_class():
            outcome.append("cancelled")
            raise
        except ClientDisconnect:  # pragma: no cover - the watcher must win
            outcome.append("client-disconnect")
        return PlainTextResponse("read")

    app = Stellate(routes=[Route("/", reader, methods=["POST"])], cancel_on_disconnect=True)
    conn = Connection()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(conn.run, app, "/", "POST")
            conn.push_body(b"first")
            await first.wait()
            conn.disconnect()
            await conn.done.wait()
    assert chunks == [b"first"]
    assert outcome == ["cancelled"]
    assert conn.sent == []


async def test_cancellation_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    probe = Probe()
    app = Stellate(routes=[Route("/gone", probe.endpoint)], cancel_on_disconnect=True)
    conn = Connection()
    conn.disconnect()
    with caplog.at_level(logging.DEBUG, logger="stellate.disconnect"):
        await serve(app, conn, "/gone")
    records = [r for r in caplog.records if r.name == "stellate.disconnect"]
    assert len(records) == 1
    assert records[0].levelno == logging.DEBUG
    assert "GET /gone" in records[0].getMessage()


async def test_background_task_is_not_cancelled_by_the_end_of_the_exchange() -> None:
    """Servers report a finished exchange as http.disconnect: that is not the client leaving."""
    ran = anyio.Event()
    released = anyio.Event()

    async def after() -> None:
        await released.wait()
        ran.set()

    async def endpoint(request: Request) -> Response:
        from stellate.background import BackgroundTask

        return PlainTextResponse("ok", background=BackgroundTask(after))

    app = Stellate(routes=[Route("/", endpoint)], cancel_on_disconnect=True)
    conn = Connection()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(conn.run, app)
            while conn.status is None:
                await anyio.lowlevel.checkpoint()
            conn.disconnect()  # what a server says once the response is complete
            await anyio.wait_all_tasks_blocked()
            released.set()
            await conn.done.wait()
    assert ran.is_set()
    assert conn.body == b"ok"


@pytest.mark.parametrize("spec_version", [None, "2.4"])
async def test_streaming_response_stops_and_nothing_follows_the_cancellation(
    spec_version: str | None,
) -> None:
    # On ASGI 2.4 the response itself does not listen (as in Starlette); the opt-in still
    # stops an idle stream there.
    closed = anyio.Event()
    sent_one = anyio.Event()

    async def numbers() -> Any:
        try:
            yield b"1"
            sent_one.set()
            await anyio.sleep_forever()
        finally:
            closed.set()

    async def endpoint(request: Request) -> Response:
        return StreamingResponse(numbers())

    app = Stellate(routes=[Route("/", endpoint)], cancel_on_disconnect=True)
    conn = Connection(spec_version)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(conn.run, app)
            await sent_one.wait()
            conn.disconnect()
            await conn.done.wait()
    assert closed.is_set()
    assert conn.body == b"1"
    assert not any(m.get("more_body") is False for m in conn.sent)


# -- inheritance: route, mount, application ---------------------------------------------


async def test_route_setting_overrides_the_application() -> None:
    probe = Probe()
    route = Route("/", probe.endpoint, cancel_on_disconnect=False)
    app = Stellate(routes=[route], cancel_on_disconnect=True)
    conn = Connection()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(conn.run, app)
            await probe.started.wait()
            conn.disconnect()
            await anyio.wait_all_tasks_blocked()
            probe.proceed.set()
            await conn.done.wait()
    assert probe.finished


async def test_route_can_opt_in_on_its_own() -> None:
    probe = Probe()
    app = Stellate(routes=[Route("/", probe.endpoint, cancel_on_disconnect=True)])
    conn = Connection()
    conn.disconnect()
    await serve(app, conn)
    assert probe.cancelled.is_set()
    assert conn.sent == []


async def test_mount_passes_its_setting_down() -> None:
    inside, opted_out = Probe(), Probe()
    app = Stellate(
        routes=[
            Mount(
                "/api",
                routes=[
                    Route("/inside", inside.endpoint),
                    Route("/kept", opted_out.endpoint, cancel_on_disconnect=False),
                ],
                cancel_on_disconnect=True,
            )
        ]
    )
    conn = Connection()
    conn.disconnect()
    await serve(app, conn, "/api/inside")
    assert inside.cancelled.is_set()

    conn = Connection()
    opted_out.proceed.set()
    conn.disconnect()
    await serve(app, conn, "/api/kept")
    assert opted_out.finished


async def test_a_route_outside_an_application_installs_its_own_multiplexer() -> None:
    probe = Probe()
    router = Router(routes=[Route("/", probe.endpoint, cancel_on_disconnect=True)])
    conn = Connection()
    conn.disconnect()
    await serve(router, conn)
    assert probe.cancelled.is_set()
    assert conn.sent == []


# -- request.is_disconnected() ----------------------------------------------------------


@pytest.mark.parametrize("cancel", [False, True])
async def test_is_disconnected_sees_a_disconnect_already_read_by_the_watcher(
    cancel: bool,
) -> None:
    answers: list[bool] = []
    asked = anyio.Event()
    go = anyio.Event()

    async def endpoint(request: Request) -> Response:
        answers.append(await request.is_disconnected())
        # Shielded, so that with cancel on the handler lives long enough to ask.
        with anyio.CancelScope(shield=True):
            asked.set()
            await go.wait()
            answers.append(await request.is_disconnected())
        return PlainTextResponse("bye")

    app = Stellate(routes=[Route("/", endpoint)], cancel_on_disconnect=cancel)
    conn = Connection()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(conn.run, app)
            await asked.wait()
            conn.disconnect()
            await anyio.wait_all_tasks_blocked()
            go.set()
            await conn.done.wait()
    assert answers == [False, True]
    # With cancel on, the cancelled handler's response is never sent.
    assert (conn.sent == []) is cancel


async def test_is_disconnected_keeps_a_body_chunk_for_the_handler() -> None:
    async def endpoint(request: Request) -> Response:
        gone = await request.is_disconnected()
        body = await request.body()
        return JSONResponse({"gone": gone, "body": body.decode()})

    app = Stellate(routes=[Route("/", endpoint, methods=["POST"])])
    conn = Connection()
    conn.push_body(b"abc", more_body=False)
    await serve(app, conn, "/", "POST")
    assert conn.body == b'{"gone":false,"body":"abc"}'


async def test_is_disconnected_without_an_application_polls_the_receive() -> None:
    conn = Connection()
    request = Request(conn.scope(), conn.receive)
    assert await request.is_disconnected() is False
    conn.push_body(b"x", more_body=False)
    assert await request.is_disconnected() is False
    conn.disconnect()
    assert await request.is_disconnected() is True
    assert await request.is_disconnected() is True
    assert await request.body() == b"x"
    conn.close()


# -- through BaseHTTPMiddleware -----------------------------------------------------------


class PassThrough(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers["x-passed"] = "yes"
        return response


async def test_cancel_on_disconnect_works_through_base_http_middleware() -> None:
    probe = Probe()
    app = Stellate(
        routes=[Route("/", probe.endpoint)],
        middleware=[Middleware(PassThrough)],
        cancel_on_disconnect=True,
    )
    conn = Connection()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(conn.run, app)
            await probe.started.wait()
            conn.disconnect()
            await probe.cancelled.wait()
            await conn.done.wait()
    assert not probe.finished
    assert conn.sent == []


async def test_base_http_middleware_request_sees_the_body_with_cancel_on() -> None:
    class ReadsBody(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            seen = await request.body()
            response = await call_next(request)
            response.headers["x-seen"] = seen.decode()
            return response

    async def echo(request: Request) -> Response:
        return PlainTextResponse(await request.body())

    app = Stellate(
        routes=[Route("/", echo, methods=["POST"])],
        middleware=[Middleware(ReadsBody)],
        cancel_on_disconnect=True,
    )
    conn = Connection()
    conn.push_body(b"he")
    conn.push_body(b"llo", more_body=False)
    await serve(app, conn, "/", "POST")
    assert conn.body == b"hello"
    headers = dict(conn.sent[0]["headers"])
    assert headers[b"x-seen"] == b"hello"


# -- the multiplexer itself ---------------------------------------------------------------


async def test_multiplexer_read_ahead_is_bounded_until_the_reader_catches_up() -> None:
    conn = Connection()
    mux = ReceiveMultiplexer(conn.receive)
    big = b"x" * READ_AHEAD_LIMIT
    conn.push_body(big)
    conn.push_body(b"tail", more_body=False)
    conn.disconnect()
    watched = anyio.Event()

    async def watch() -> None:
        await mux.wait_disconnected()
        watched.set()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(watch)
            await anyio.wait_all_tasks_blocked()
            # One limit's worth is buffered; the watcher waits instead of reading on.
            assert not watched.is_set()
            assert not mux.disconnected
            assert (await mux.receive())["body"] == big
            await watched.wait()
    assert mux.disconnected
    assert (await mux.receive())["body"] == b"tail"
    assert (await mux.receive())["type"] == "http.disconnect"
    assert (await mux.receive())["type"] == "http.disconnect"
    assert "disconnected" in repr(mux)
    conn.close()


async def test_multiplexer_two_readers_share_one_receive() -> None:
    conn = Connection()
    mux = ReceiveMultiplexer(conn.receive)
    got: list[bytes] = []

    async def read() -> None:
        got.append((await mux.receive())["body"])

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(read)
            group.start_soon(read)
            await anyio.wait_all_tasks_blocked()
            conn.push_body(b"a")
            conn.push_body(b"b", more_body=False)
    assert sorted(got) == [b"a", b"b"]
    assert await mux.is_disconnected() is False
    conn.disconnect()
    assert await mux.is_disconnected() is True
    conn.close()


async def test_poll_returns_none_when_nothing_is_ready() -> None:
    conn = Connection()
    assert await poll(conn.receive) is None
    conn.disconnect()
    assert await poll(conn.receive) == {"type": "http.disconnect"}
    conn.close()


async def test_a_cancelled_read_loses_no_message() -> None:
    conn = Connection()
    mux = ReceiveMultiplexer(conn.receive)
    with anyio.move_on_after(0):
        await mux.wait_disconnected()
    conn.push_body(b"kept", more_body=False)
    with anyio.fail_after(5):
        assert (await mux.receive())["body"] == b"kept"
    conn.close()
