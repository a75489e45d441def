"""BaseHTTPMiddleware as Starlette 1.10 behaves (reference Part 4, BaseHTTPMiddleware clusters).

* the body of a ``call_next`` response is re-framed: each non-empty chunk in a message of
  its own with ``more_body=True``, then one empty closing message (trailers passed on:
  a deliberate keep);
* ``dispatch``'s Request and the application share what the client sent;
* what the application receives after ``dispatch`` read the body;
* an error of the server's ``send`` while the app's body goes out is raised as a
  ``StreamingResponse`` raises it.

Every test drives the middleware with a scripted server (``Server``) that counts its
``receive`` calls and waits forever once it has nothing more to say, as a server with an
idle client does: a middleware that asks it again where Starlette does not would hang,
which ``anyio.fail_after`` turns into a failure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest

from stellate.applications import Stellate
from stellate.background import BackgroundTask
from stellate.middleware import Middleware
from stellate.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from stellate.requests import ClientDisconnect, Request
from stellate.responses import PlainTextResponse, Response, StreamingResponse
from stellate.routing import Route
from stellate.types import ASGIApp, Message, Receive, Scope, Send

pytestmark = pytest.mark.anyio

Dispatch = Callable[[Request, RequestResponseEndpoint], Any]


def http_scope(method: str = "POST", spec_version: str | None = None) -> Scope:
    asgi = (
        {"version": "3.0"}
        if spec_version is None
        else {"version": "3.0", "spec_version": spec_version}
    )
    return {
        "type": "http",
        "asgi": asgi,
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


def body_messages(*chunks: bytes) -> list[Message]:
    *first, last = chunks
    messages: list[Message] = [
        {"type": "http.request", "body": c, "more_body": True} for c in first
    ]
    return [*messages, {"type": "http.request", "body": last, "more_body": False}]


class Server:
    """A scripted server: hands out ``inbound``, then waits forever; records what is sent."""

    def __init__(self, inbound: list[Message] | None = None) -> None:
        self.inbound = list(inbound or [])
        self.receive_calls = 0
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        self.receive_calls += 1
        if self.inbound:
            return self.inbound.pop(0)
        await anyio.sleep_forever()
        raise AssertionError  # pragma: no cover

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    async def run(self, app: ASGIApp, scope: Scope | None = None) -> None:
        """Serve one request; on ASGI 2.4 by default, where no response listens, so what
        ``receive_calls`` counts is the reading of the middleware and the app alone."""
        if scope is None:
            scope = http_scope(spec_version="2.4")
        with anyio.fail_after(5):
            await app(scope, self.receive, self.send)

    @property
    def body_messages(self) -> list[Message]:
        return [m for m in self.sent if m["type"] == "http.response.body"]


async def passthrough(request: Request, call_next: RequestResponseEndpoint) -> Response:
    response = await call_next(request)
    response.headers["x-seen"] = "1"
    return response


def sending(*messages: Message) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for message in messages:
            await send(message)

    return app


START: Message = {"type": "http.response.start", "status": 200, "headers": []}


# ------------------------------------------------------------ the body's framing


async def test_a_one_message_body_goes_out_as_a_chunk_then_a_separate_end() -> None:
    server = Server()
    await server.run(BaseHTTPMiddleware(_plain("home"), dispatch=passthrough), http_scope("GET"))
    start, *body = server.sent
    assert set(start) == {"type", "status", "headers"}
    assert (b"x-seen", b"1") in start["headers"]
    assert body == [
        {"type": "http.response.body", "body": b"home", "more_body": True},
        {"type": "http.response.body", "body": b"", "more_body": False},
    ]


async def test_an_empty_body_is_one_end_message_with_an_explicit_more_body() -> None:
    app = sending(START, {"type": "http.response.body", "body": b""})
    server = Server()
    await server.run(BaseHTTPMiddleware(app, dispatch=passthrough))
    assert server.body_messages == [{"type": "http.response.body", "body": b"", "more_body": False}]


async def test_chunks_keep_their_boundaries_and_empty_ones_are_dropped() -> None:
    app = sending(
        START,
        {"type": "http.response.body", "body": b"a", "more_body": True},
        {"type": "http.response.body", "body": b"", "more_body": True},
        {"type": "http.response.body", "body": b"bc", "more_body": True},
        {"type": "http.response.body", "body": b"d"},
    )
    server = Server()
    await server.run(BaseHTTPMiddleware(app, dispatch=passthrough))
    assert [(m["body"], m["more_body"]) for m in server.body_messages] == [
        (b"a", True),
        (b"bc", True),
        (b"d", True),
        (b"", False),
    ]


async def test_the_start_carries_status_and_headers_only() -> None:
    app = sending(
        {**START, "x-extension": "private"},
        {"type": "http.response.body", "body": b"x"},
    )
    server = Server()
    await server.run(BaseHTTPMiddleware(app, dispatch=passthrough))
    assert server.sent[0] == {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"x-seen", b"1")],
    }


async def test_trailers_are_passed_on_after_the_closing_message() -> None:
    """Kept on purpose (docs/differences.md): Starlette drops them."""
    trailers: Message = {"type": "http.response.trailers", "headers": [(b"x-sum", b"9")]}
    app = sending(
        {**START, "trailers": True},
        {"type": "http.response.body", "body": b"data", "more_body": False},
        trailers,
    )
    server = Server()
    await server.run(BaseHTTPMiddleware(app, dispatch=passthrough))
    assert server.sent[0]["trailers"] is True
    assert server.sent[1:] == [
        {"type": "http.response.body", "body": b"data", "more_body": True},
        {"type": "http.response.body", "body": b"", "more_body": False},
        trailers,
    ]


async def test_other_messages_after_the_start_are_passed_on() -> None:
    """Kept on purpose (docs/differences.md): Starlette fails with an AssertionError."""
    debug: Message = {"type": "http.response.debug", "info": {"template": "t.html"}}
    app = sending(START, debug, {"type": "http.response.body", "body": b"x"})
    server = Server()
    await server.run(BaseHTTPMiddleware(app, dispatch=passthrough))
    assert server.sent[1:] == [
        debug,
        {"type": "http.response.body", "body": b"x", "more_body": True},
        {"type": "http.response.body", "body": b"", "more_body": False},
    ]


async def test_an_app_that_returns_without_ending_its_body_gets_the_closing_message() -> None:
    server = Server()
    await server.run(BaseHTTPMiddleware(sending(START), dispatch=passthrough))
    assert server.body_messages == [{"type": "http.response.body", "body": b"", "more_body": False}]


async def test_a_final_zerocopysend_ends_the_response() -> None:
    zerocopy: Message = {"type": "http.response.zerocopysend", "file": 3}
    server = Server()
    await server.run(BaseHTTPMiddleware(sending(START, zerocopy), dispatch=passthrough))
    assert server.sent[1:] == [zerocopy]


async def test_pathsend_is_passed_on_and_ends_the_response() -> None:
    pathsend: Message = {"type": "http.response.pathsend", "path": "/srv/file"}
    app = sending(START, pathsend)
    server = Server()
    await server.run(BaseHTTPMiddleware(app, dispatch=passthrough))
    assert server.sent[1:] == [pathsend]


async def test_a_body_dispatch_read_to_its_end_still_gets_its_closing_message() -> None:
    async def read_then_return(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        chunks = [c async for c in response.body_iterator]  # type: ignore[attr-defined]
        response.headers["x-length"] = str(len(b"".join(chunks)))
        return response

    server = Server()
    await server.run(
        BaseHTTPMiddleware(_plain("home"), dispatch=read_then_return), http_scope("GET")
    )
    assert (b"x-length", b"4") in server.sent[0]["headers"]
    assert server.body_messages == [{"type": "http.response.body", "body": b"", "more_body": False}]


async def test_the_endpoint_background_task_runs_after_the_closing_message() -> None:
    events: list[str] = []

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("x", background=BackgroundTask(events.append, "background"))(
            scope, receive, send
        )

    async def recording_send(message: Message) -> None:
        if message["type"] == "http.response.body":
            events.append(f"body more_body={message['more_body']}")

    async def receive() -> Message:  # pragma: no cover
        await anyio.sleep_forever()
        raise AssertionError

    with anyio.fail_after(5):
        await BaseHTTPMiddleware(endpoint, dispatch=passthrough)(
            http_scope("GET"), receive, recording_send
        )
    assert events == ["body more_body=True", "body more_body=False", "background"]


# ---------------------------------------- dispatch's Request and the app share the client


def _reading_app(log: list[Any], reads: int = 1) -> ASGIApp:
    """An app that receives ``reads`` messages, logs them, and answers "ok"."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for _ in range(reads):
            log.append(await receive())
        await PlainTextResponse("ok")(scope, receive, send)

    return app


def _plain(text: str) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse(text)(scope, receive, send)

    return app


@pytest.mark.parametrize("read", ["body", "stream"])
async def test_reading_the_body_after_the_app_consumed_it_raises_at_once(read: str) -> None:
    errors: list[str] = []

    async def log_body(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        try:
            if read == "body":
                await request.body()
            else:
                async for _ in request.stream():
                    pass  # pragma: no cover
        except RuntimeError as exc:
            errors.append(str(exc))
        return response

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await Request(scope, receive).body()
        await PlainTextResponse("ok")(scope, receive, send)

    server = Server(body_messages(b"a", b"b"))
    await server.run(BaseHTTPMiddleware(app, dispatch=log_body))
    assert errors == ["Stream consumed"]
    assert server.receive_calls == 2


async def test_a_disconnect_the_app_received_is_known_to_dispatch() -> None:
    seen: list[Any] = []

    async def check(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        seen.append(await request.is_disconnected())
        return response

    server = Server([*body_messages(b"a"), {"type": "http.disconnect"}])
    await server.run(BaseHTTPMiddleware(_reading_app(seen, reads=2), dispatch=check))
    assert seen[1] == {"type": "http.disconnect"}
    assert seen[2] is True
    assert server.receive_calls == 2


async def test_receive_after_a_disconnect_does_not_ask_the_server_again() -> None:
    log: list[Message] = []
    server = Server([*body_messages(b"a"), {"type": "http.disconnect"}])
    await server.run(BaseHTTPMiddleware(_reading_app(log, reads=4), dispatch=passthrough))
    assert [m["type"] for m in log] == ["http.request"] + ["http.disconnect"] * 3
    assert server.receive_calls == 2


async def test_receive_after_the_response_was_sent_says_the_client_has_gone() -> None:
    late: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        async def after() -> None:
            late.append(await receive())

        await PlainTextResponse("ok", background=BackgroundTask(after))(scope, receive, send)

    server = Server()
    await server.run(
        BaseHTTPMiddleware(app, dispatch=passthrough), http_scope("GET", spec_version="2.4")
    )
    assert late == [{"type": "http.disconnect"}]
    assert server.receive_calls == 0


def test_a_logging_middleware_reading_the_body_after_call_next(test_client_factory: Any) -> None:
    """The common case through a real client: no hang, the body was the endpoint's."""

    async def echo(request: Request) -> Response:
        return PlainTextResponse(await request.body())

    async def log_body(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        try:
            await request.body()
        except RuntimeError as exc:
            response.headers["x-dispatch"] = str(exc)
        return response

    app = Stellate(
        routes=[Route("/", echo, methods=["POST"])],
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=log_body)],
    )
    response = test_client_factory(app).post("/", content=b"payload")
    assert response.text == "payload"
    assert response.headers["x-dispatch"] == "Stream consumed"


# ---------------------------------- what the app receives after dispatch read the body


async def test_a_body_read_whole_by_dispatch_arrives_in_one_message() -> None:
    async def read(request: Request, call_next: RequestResponseEndpoint) -> Response:
        assert await request.body() == b"abc"
        return await call_next(request)

    log: list[Message] = []
    server = Server(body_messages(b"a", b"b", b"c"))
    await server.run(BaseHTTPMiddleware(_reading_app(log), dispatch=read))
    assert log == [{"type": "http.request", "body": b"abc", "more_body": False}]


async def test_a_body_dispatch_streamed_to_the_end_arrives_empty() -> None:
    async def stream(request: Request, call_next: RequestResponseEndpoint) -> Response:
        async for _ in request.stream():
            pass
        return await call_next(request)

    log: list[Message] = []
    server = Server(body_messages(b"a", b"b"))
    await server.run(BaseHTTPMiddleware(_reading_app(log), dispatch=stream))
    assert log == [{"type": "http.request", "body": b"", "more_body": False}]


def test_a_form_read_by_dispatch_leaves_the_endpoint_an_empty_body(
    test_client_factory: Any,
) -> None:
    async def parse_form(request: Request, call_next: RequestResponseEndpoint) -> Response:
        form = await request.form()
        response = await call_next(request)
        response.headers["x-name"] = str(form["name"])
        return response

    async def echo(request: Request) -> Response:
        return PlainTextResponse(repr(await request.body()))

    app = Stellate(
        routes=[Route("/", echo, methods=["POST"])],
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=parse_form)],
    )
    response = test_client_factory(app).post("/", data={"name": "ada"})
    assert response.headers["x-name"] == "ada"
    assert response.text == "b''"


async def test_after_a_partial_stream_the_app_and_dispatch_share_the_rest() -> None:
    resumed: list[bytes] = []

    async def peek(request: Request, call_next: RequestResponseEndpoint) -> Response:
        chunks = request.stream()
        assert await chunks.__anext__() == b"a"
        response = await call_next(request)
        resumed.extend([chunk async for chunk in chunks])
        return response

    log: list[Message] = []
    server = Server(body_messages(b"a", b"b", b"c"))
    await server.run(BaseHTTPMiddleware(_reading_app(log), dispatch=peek))
    assert log == [{"type": "http.request", "body": b"b", "more_body": True}]
    assert resumed == [b"c", b""]


async def test_after_a_partial_stream_what_the_app_read_to_the_end_is_gone() -> None:
    resumed: list[bytes] = []

    async def peek(request: Request, call_next: RequestResponseEndpoint) -> Response:
        chunks = request.stream()
        await chunks.__anext__()
        response = await call_next(request)
        resumed.extend([chunk async for chunk in chunks])
        return response

    log: list[Message] = []
    server = Server(body_messages(b"a", b"b", b"c"))
    await server.run(BaseHTTPMiddleware(_reading_app(log, reads=2), dispatch=peek))
    assert [m["body"] for m in log] == [b"b", b"c"]
    assert resumed == [b""]
    assert server.receive_calls == 3


async def test_a_body_dispatch_did_not_read_is_read_live_message_by_message() -> None:
    log: list[Message] = []
    inbound = body_messages(b"a", b"b")
    server = Server(inbound)
    await server.run(BaseHTTPMiddleware(_reading_app(log, reads=2), dispatch=passthrough))
    assert log == body_messages(b"a", b"b")


# -------------------------------- an error of the server's send while the app's body goes out


class _Flaky(Server):
    """A server whose ``send`` raises ``error`` for body messages."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body":
            raise self.error
        await super().send(message)


def _streaming_app(stopped: list[str]) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(START)
        try:
            for part in (b"a", b"b", b"c"):
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            stopped.append("app stopped")

    return app


async def _peek(request: Request, call_next: RequestResponseEndpoint) -> Response:
    response = await call_next(request)
    await response.body_iterator.__anext__()  # type: ignore[attr-defined]
    return response


@pytest.mark.parametrize("dispatch", [passthrough, _peek], ids=["forwarded", "partly-read"])
async def test_oserror_on_asgi_2_4_becomes_client_disconnect(dispatch: Dispatch) -> None:
    stopped: list[str] = []
    lost = OSError("connection lost")
    server = _Flaky(lost)
    with pytest.raises(ClientDisconnect) as caught:
        await server.run(
            BaseHTTPMiddleware(_streaming_app(stopped), dispatch=dispatch),
            http_scope("GET", spec_version="2.4"),
        )
    assert caught.value.__cause__ is lost
    assert stopped == ["app stopped"]
    assert server.receive_calls == 0  # nothing listens on 2.4


@pytest.mark.parametrize("dispatch", [passthrough, _peek], ids=["forwarded", "partly-read"])
@pytest.mark.parametrize("spec_version", [None, "2.3"])
async def test_oserror_below_asgi_2_4_propagates(
    dispatch: Dispatch, spec_version: str | None
) -> None:
    stopped: list[str] = []
    lost = OSError("connection lost")
    server = _Flaky(lost)
    with pytest.raises(OSError) as caught:
        await server.run(
            BaseHTTPMiddleware(_streaming_app(stopped), dispatch=dispatch),
            http_scope("GET", spec_version=spec_version),
        )
    assert caught.value is lost
    assert stopped == ["app stopped"]


@pytest.mark.parametrize("dispatch", [passthrough, _peek], ids=["forwarded", "partly-read"])
async def test_an_oserror_of_the_app_itself_is_not_a_client_disconnect(dispatch: Dispatch) -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        await send(START)
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        raise FileNotFoundError("the app's own")

    server = Server()
    with pytest.raises(FileNotFoundError, match="the app's own"):
        await server.run(BaseHTTPMiddleware(failing, dispatch=dispatch))
    assert {"type": "http.response.body", "body": b"", "more_body": False} not in server.sent


async def test_a_disconnect_below_asgi_2_4_ends_a_forwarded_stream_quietly() -> None:
    """The endpoint's StreamingResponse listens for it; the middleware ends quietly."""
    stopped: list[str] = []
    first_sent = anyio.Event()

    async def endless(scope: Scope, receive: Receive, send: Send) -> None:
        async def ticks() -> AsyncIterator[bytes]:
            try:
                while True:
                    yield b"x"
                    first_sent.set()
                    await anyio.sleep_forever()
            finally:
                stopped.append("app stopped")

        await StreamingResponse(ticks())(scope, receive, send)

    async def receive() -> Message:
        await first_sent.wait()
        return {"type": "http.disconnect"}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await BaseHTTPMiddleware(endless, dispatch=passthrough)(
            http_scope("GET", spec_version="2.3"), receive, send
        )
    assert stopped == ["app stopped"]
    assert [m.get("body") for m in sent] == [None, b"x"]


async def test_replaced_body_is_unaffected() -> None:
    """A body of dispatch's own is a plain StreamingResponse: its framing is its own."""

    async def replace(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)

        async def mine() -> AsyncIterator[bytes]:
            yield b"mine"

        response.body_iterator = mine()  # type: ignore[attr-defined]
        return response

    server = Server()
    await server.run(BaseHTTPMiddleware(_plain("theirs"), dispatch=replace), http_scope("GET"))
    assert [(m["body"], m["more_body"]) for m in server.body_messages] == [
        (b"mine", True),
        (b"", False),
    ]
