"""Server-Sent Events: ``ServerSentEvent`` encoding and ``EventSourceResponse``."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from stellate.applications import Stellate
from stellate.background import BackgroundTask
from stellate.middleware import Middleware
from stellate.middleware.gzip import GZipMiddleware
from stellate.requests import ClientDisconnect, Request
from stellate.responses import Response
from stellate.routing import Route
from stellate.sse import EventSourceResponse, ServerSentEvent
from stellate.types import Message

Client = Callable[..., Any]


# -- encoding -----------------------------------------------------------------------------


def test_data_only_event() -> None:
    assert ServerSentEvent("hello").encode() == b"data: hello\n\n"


def test_all_fields_in_order() -> None:
    event = ServerSentEvent(data="d", event="update", id="7", retry=2500, comment="note")
    assert event.encode() == b": note\nevent: update\nid: 7\nretry: 2500\ndata: d\n\n"


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        ("a\nb", [b"data: a", b"data: b"]),
        ("a\r\nb\rc", [b"data: a", b"data: b", b"data: c"]),
        ("trailing\n", [b"data: trailing", b"data: "]),
        ("", [b"data: "]),
        # Not SSE line breaks: kept inside the line.
        ("form\x0cfeed\u2028sep", ["data: form\x0cfeed\u2028sep".encode()]),
    ],
)
def test_multi_line_data_is_split_into_data_lines(data: str, lines: list[bytes]) -> None:
    assert ServerSentEvent(data).encode() == b"\n".join(lines) + b"\n\n"


def test_multi_line_comment_becomes_several_comment_lines() -> None:
    assert ServerSentEvent(comment="one\ntwo").encode() == b": one\n: two\n\n"


def test_unicode_is_utf8() -> None:
    assert ServerSentEvent("é☃").encode() == "data: é☃\n\n".encode()


@pytest.mark.parametrize("field", ["event", "id"])
@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\r\n", "nul\0"])
def test_line_breaks_in_event_and_id_are_rejected(field: str, bad: str) -> None:
    with pytest.raises(ValueError, match=field):
        ServerSentEvent("x", **{field: bad})


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"retry": -1}, ValueError),
        ({"retry": 1.5}, TypeError),
        ({"retry": True}, TypeError),
        ({"data": 5}, TypeError),
        ({"data": b"bytes"}, TypeError),
        ({"event": 3}, TypeError),
        ({"comment": ["x"]}, TypeError),
    ],
)
def test_bad_field_types_are_rejected(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        ServerSentEvent(**kwargs)


def test_event_equality_and_repr() -> None:
    assert ServerSentEvent("a", id="1") == ServerSentEvent("a", id="1")
    assert ServerSentEvent("a") != ServerSentEvent("b")
    assert ServerSentEvent("a") != "a"
    assert repr(ServerSentEvent("a", retry=5)) == "ServerSentEvent(data='a', retry=5)"


def test_bad_ping_is_rejected() -> None:
    with pytest.raises(ValueError, match="ping"):
        EventSourceResponse([], ping=-1)
    with pytest.raises(TypeError, match="ping"):
        EventSourceResponse([], ping="5")  # type: ignore[arg-type]


# -- the response -------------------------------------------------------------------------


def sse_app(make: Callable[[Request], Response], **kwargs: Any) -> Stellate:
    async def endpoint(request: Request) -> Response:
        return make(request)

    return Stellate(routes=[Route("/events", endpoint)], **kwargs)


def test_events_dicts_and_strings_are_streamed(test_client_factory: Client) -> None:
    async def events() -> AsyncIterator[Any]:
        yield ServerSentEvent("first", id="1")
        yield {"data": "second", "event": "tick"}
        yield "third\nline"

    client = test_client_factory(sse_app(lambda request: EventSourceResponse(events())))
    response = client.get("/events")
    assert response.status_code == 200
    assert response.text == (
        "id: 1\ndata: first\n\nevent: tick\ndata: second\n\ndata: third\ndata: line\n\n"
    )
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-accel-buffering"] == "no"


def test_sync_iterables_work(test_client_factory: Client) -> None:
    closed: list[bool] = []

    def events() -> Iterator[str]:
        try:
            yield "a"
            yield "b"
        finally:
            closed.append(True)

    client = test_client_factory(sse_app(lambda request: EventSourceResponse(events())))
    assert client.get("/events").text == "data: a\n\ndata: b\n\n"
    assert closed == [True]


def test_user_headers_and_status_are_kept(test_client_factory: Client) -> None:
    def make(request: Request) -> Response:
        return EventSourceResponse(
            ["x"], status_code=201, headers={"Cache-Control": "private", "X-Extra": "1"}
        )

    response = test_client_factory(sse_app(make)).get("/events")
    assert response.status_code == 201
    assert response.headers.get_list("cache-control") == ["private"]
    assert response.headers["x-extra"] == "1"


def test_last_event_id_reaches_the_handler(test_client_factory: Client) -> None:
    def make(request: Request) -> Response:
        last = int(request.headers.get("last-event-id", "0"))
        return EventSourceResponse(
            ServerSentEvent(str(n), id=str(n)) for n in range(last + 1, last + 3)
        )

    response = test_client_factory(sse_app(make)).get("/events", headers={"Last-Event-ID": "41"})
    assert response.text == "id: 42\ndata: 42\n\nid: 43\ndata: 43\n\n"


def test_head_sends_headers_only_and_closes_the_iterator(test_client_factory: Client) -> None:
    closed: list[bool] = []

    async def events() -> AsyncIterator[str]:
        try:
            yield "never sent"
        finally:  # pragma: no cover - closed before it starts
            closed.append(True)

    iterator = events()

    async def endpoint(request: Request) -> Response:
        return EventSourceResponse(iterator)

    app = Stellate(routes=[Route("/events", endpoint, methods=["GET", "HEAD"])])
    response = test_client_factory(app).head("/events")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-type"].startswith("text/event-stream")
    # Never started, so closing it is immediate: a started one would raise here.
    with pytest.raises(StopAsyncIteration):
        anyio.run(iterator.__anext__)


def test_background_runs_after_the_stream(test_client_factory: Client) -> None:
    order: list[str] = []

    async def events() -> AsyncIterator[str]:
        yield "x"
        order.append("last event")

    def make(request: Request) -> Response:
        return EventSourceResponse(events(), background=BackgroundTask(order.append, "bg"))

    test_client_factory(sse_app(make)).get("/events")
    assert order == ["last event", "bg"]


def test_a_bad_item_fails_the_stream(test_client_factory: Client) -> None:
    client = test_client_factory(sse_app(lambda request: EventSourceResponse([1])))
    with pytest.raises(TypeError, match="not int"):
        client.get("/events")


def test_gzip_leaves_event_streams_alone(test_client_factory: Client) -> None:
    app = sse_app(
        lambda request: EventSourceResponse(["x" * 1000]),
        middleware=[Middleware(GZipMiddleware, minimum_size=10)],
    )
    response = test_client_factory(app).get("/events", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in response.headers
    assert response.text == "data: " + "x" * 1000 + "\n\n"


# -- pings and disconnects, driven by hand -------------------------------------------------


class Wire:
    """The server side of one request: records messages, can disconnect the client."""

    def __init__(self) -> None:
        self._push, self._inbox = anyio.create_memory_object_stream[Message](math.inf)
        self.sent: list[Message] = []
        self.changed = anyio.Event()

    async def receive(self) -> Message:
        return await self._inbox.receive()

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        self.changed.set()
        self.changed = anyio.Event()

    def disconnect(self) -> None:
        self._push.send_nowait({"type": "http.disconnect"})

    def close(self) -> None:
        self._push.close()
        self._inbox.close()

    @property
    def chunks(self) -> list[bytes]:
        return [m["body"] for m in self.sent if m["type"] == "http.response.body" and m["body"]]

    async def wait_for(self, chunk: bytes) -> None:
        while chunk not in self.chunks:
            await self.changed.wait()


def scope(path: str = "/events") -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""}


@pytest.mark.anyio
@pytest.mark.parametrize("through_app", [False, True])
async def test_disconnect_stops_the_stream_and_closes_the_iterator(through_app: bool) -> None:
    cleaned_up = anyio.Event()
    first_sent = anyio.Event()

    async def events() -> AsyncIterator[str]:
        try:
            yield "first"
            first_sent.set()
            await anyio.sleep_forever()
            yield "never"  # pragma: no cover
        finally:
            cleaned_up.set()

    response = EventSourceResponse(events(), ping=None)
    app: Any = response
    if through_app:
        app = sse_app(lambda request: response)
    wire = Wire()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(app, scope(), wire.receive, wire.send)
            await wire.wait_for(b"data: first\n\n")
            wire.disconnect()
            await cleaned_up.wait()
    assert wire.chunks == [b"data: first\n\n"]
    # Stopped, not finished: no final body message was sent.
    assert all(m.get("more_body", True) for m in wire.sent[1:])
    wire.close()


@pytest.mark.anyio
async def test_sync_iterator_is_closed_on_disconnect() -> None:
    closed = anyio.Event()
    token = anyio.lowlevel.current_token()

    def events() -> Iterator[str]:
        try:
            yield "one"
            while True:
                yield ""  # an empty event each time: keeps the loop going
        finally:
            anyio.from_thread.run_sync(closed.set, token=token)

    wire = Wire()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(
                EventSourceResponse(events(), ping=None), scope(), wire.receive, wire.send
            )
            await wire.wait_for(b"data: one\n\n")
            wire.disconnect()
            await closed.wait()
    wire.close()


@pytest.mark.anyio
async def test_pings_are_sent_while_the_iterator_is_idle() -> None:
    more = anyio.Event()

    async def events() -> AsyncIterator[str]:
        yield "start"
        await more.wait()
        yield "end"

    wire = Wire()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(
                EventSourceResponse(events(), ping=0.001), scope(), wire.receive, wire.send
            )
            await wire.wait_for(b": ping\n\n")
            more.set()
            await wire.wait_for(b"data: end\n\n")
    bodies = [m for m in wire.sent if m["type"] == "http.response.body"]
    assert bodies[0]["body"] == b"data: start\n\n"
    assert b": ping\n\n" in [m["body"] for m in bodies]
    # The stream ended properly and nothing followed its end.
    assert bodies[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert all(m["more_body"] for m in bodies[:-1])
    wire.close()


def scope_2_4() -> dict[str, Any]:
    return {**scope(), "asgi": {"version": "3.0", "spec_version": "2.4"}}


async def receive_must_not_be_called() -> Message:
    raise AssertionError("receive() called on an ASGI 2.4 scope")


@pytest.mark.anyio
async def test_a_failing_ping_ends_an_idle_stream_on_asgi_2_4() -> None:
    # On 2.4 nothing listens: the server's OSError from send (here, on a ping) is how a
    # silent leave is seen. The idle iterator is stopped, its async cleanup runs to the
    # end, and the response raises ClientDisconnect as Starlette's streaming does. (This
    # test used to pin stellate's old answer: pings stopped, the stream kept waiting.)
    calls: list[bytes] = []
    cleanup: list[str] = []
    ran: list[bool] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body" and message["body"] == b": ping\n\n":
            calls.append(message["body"])
            raise OSError("client gone")

    async def events() -> AsyncIterator[str]:
        try:
            await anyio.sleep_forever()
            yield "never"  # pragma: no cover
        finally:
            cleanup.append("started")
            await anyio.sleep(0.001)
            cleanup.append("finished")

    async def task() -> None:
        ran.append(True)  # pragma: no cover

    response = EventSourceResponse(events(), ping=0.001, background=BackgroundTask(task))
    with anyio.fail_after(5), pytest.raises(ClientDisconnect):
        await response(scope_2_4(), receive_must_not_be_called, send)
    assert calls == [b": ping\n\n"]
    assert cleanup == ["started", "finished"]
    assert ran == []


@pytest.mark.anyio
async def test_a_failing_ping_raises_the_oserror_below_asgi_2_4() -> None:
    async def send(message: Message) -> None:
        if message["type"] == "http.response.body" and message["body"] == b": ping\n\n":
            raise OSError("client gone")

    async def receive() -> Message:
        await anyio.sleep_forever()
        raise AssertionError  # pragma: no cover

    async def events() -> AsyncIterator[str]:
        await anyio.sleep_forever()
        yield "never"  # pragma: no cover

    with anyio.fail_after(5), pytest.raises(OSError, match="client gone"):
        await EventSourceResponse(events(), ping=0.001)(scope(), receive, send)


@pytest.mark.anyio
async def test_an_oserror_on_an_event_is_client_disconnect_on_asgi_2_4() -> None:
    # (This test used to pin the old answer: the OSError swallowed, the stream ended
    # quietly and the background task ran.)
    closed = anyio.Event()

    async def events() -> AsyncIterator[str]:
        try:
            yield "one"
            yield "two"  # pragma: no cover
        finally:
            closed.set()

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise OSError("gone")

    with anyio.fail_after(5), pytest.raises(ClientDisconnect):
        await EventSourceResponse(events(), ping=None)(
            scope_2_4(), receive_must_not_be_called, send
        )
    assert closed.is_set()


@pytest.mark.anyio
async def test_asgi_2_4_stream_never_calls_receive() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await EventSourceResponse(iter(["a"]), ping=None)(
            scope_2_4(), receive_must_not_be_called, send
        )
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert [m["body"] for m in sent[1:]] == [b"data: a\n\n", b""]


@pytest.mark.anyio
@pytest.mark.parametrize("ping", [None, 0.001])
async def test_async_cleanup_after_a_disconnect_runs_to_completion(ping: float | None) -> None:
    cleanup: list[str] = []

    async def events() -> AsyncIterator[str]:
        try:
            yield "first"
            await anyio.sleep_forever()
            yield "never"  # pragma: no cover
        finally:
            cleanup.append("started")
            await anyio.sleep(0.001)
            await anyio.lowlevel.checkpoint()
            cleanup.append("finished")

    wire = Wire()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(
                EventSourceResponse(events(), ping=ping), scope(), wire.receive, wire.send
            )
            await wire.wait_for(b"data: first\n\n")
            wire.disconnect()
    assert cleanup == ["started", "finished"]
    wire.close()


def test_async_iterables_without_aclose_work(test_client_factory: Client) -> None:
    class Countdown:
        def __init__(self) -> None:
            self.left = 2

        def __aiter__(self) -> Countdown:
            return self

        async def __anext__(self) -> str:
            if not self.left:
                raise StopAsyncIteration
            self.left -= 1
            return str(self.left)

    client = test_client_factory(sse_app(lambda request: EventSourceResponse(Countdown())))
    assert client.get("/events").text == "data: 1\n\ndata: 0\n\n"


@pytest.mark.anyio
async def test_nothing_is_sent_once_the_stream_has_ended() -> None:
    from stellate.sse import _Channel

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    channel = _Channel()
    last: Message = {"type": "http.response.body", "body": b"last", "more_body": False}
    await channel.send(send, last)
    await channel.send(send, {"type": "http.response.body", "body": b": ping", "more_body": True})
    assert sent == [last]
