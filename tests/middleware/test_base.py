"""BaseHTTPMiddleware: streaming, body replay, disconnects, background tasks, errors, stacks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from stellate.applications import Stellate
from stellate.background import BackgroundTask
from stellate.middleware import Middleware
from stellate.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from stellate.requests import Request
from stellate.responses import PlainTextResponse, Response, StreamingResponse
from stellate.routing import Route, WebSocketRoute
from stellate.types import ASGIApp, Message, Receive, Scope, Send
from stellate.websockets import WebSocket

Client = Callable[..., Any]


def http_scope(method: str = "GET", path: str = "/") -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


class Header(BaseHTTPMiddleware):
    """Adds a header naming itself, and records the order of dispatch."""

    def __init__(self, app: Any, name: str, log: list[str] | None = None) -> None:
        super().__init__(app)
        self.name = name
        self.log = [] if log is None else log

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        self.log.append(f"{self.name} in")
        response = await call_next(request)
        self.log.append(f"{self.name} out")
        response.headers.append("x-layer", self.name)
        return response


# --------------------------------------------------------------------------- in an app


async def homepage(request: Request) -> Response:
    return PlainTextResponse("home")


def test_dispatch_changes_the_response_headers(test_client_factory: Client) -> None:
    app = Stellate(routes=[Route("/", homepage)], middleware=[Middleware(Header, name="a")])
    response = test_client_factory(app).get("/")
    assert response.status_code == 200
    assert response.text == "home"
    assert response.headers["x-layer"] == "a"
    assert response.headers["content-length"] == "4"


def test_stacks_of_several_run_in_declaration_order(test_client_factory: Client) -> None:
    log: list[str] = []
    app = Stellate(
        routes=[Route("/", homepage)],
        middleware=[Middleware(Header, name=n, log=log) for n in ("outer", "middle", "inner")],
    )
    response = test_client_factory(app).get("/")
    assert response.text == "home"
    # The innermost adds its header first.
    assert response.headers.get_list("x-layer") == ["inner", "middle", "outer"]
    assert log == ["outer in", "middle in", "inner in", "inner out", "middle out", "outer out"]


def test_dispatch_argument_instead_of_subclass(test_client_factory: Client) -> None:
    async def add_header(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers["x-func"] = "yes"
        return response

    app = Stellate(
        routes=[Route("/", homepage)],
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=add_header)],
    )
    assert test_client_factory(app).get("/").headers["x-func"] == "yes"


def test_dispatch_may_answer_without_calling_next(test_client_factory: Client) -> None:
    called = []

    async def endpoint(request: Request) -> Response:
        called.append(True)
        return PlainTextResponse("endpoint")

    async def deny(request: Request, call_next: RequestResponseEndpoint) -> Response:
        return PlainTextResponse("denied", status_code=403)

    app = Stellate(
        routes=[Route("/", endpoint)], middleware=[Middleware(BaseHTTPMiddleware, dispatch=deny)]
    )
    response = test_client_factory(app).get("/")
    assert (response.status_code, response.text) == (403, "denied")
    assert called == []


def test_dispatch_returning_none_says_so(test_client_factory: Client) -> None:
    async def forgetful(request: Request, call_next: RequestResponseEndpoint) -> Response:
        await call_next(request)
        return None  # type: ignore[return-value]

    app = Stellate(
        routes=[Route("/", homepage)],
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=forgetful)],
    )
    with pytest.raises(TypeError, match="returned None instead of a Response"):
        test_client_factory(app).get("/")


def test_not_implemented_dispatch(test_client_factory: Client) -> None:
    app = Stellate(routes=[Route("/", homepage)], middleware=[Middleware(BaseHTTPMiddleware)])
    with pytest.raises(NotImplementedError):
        test_client_factory(app).get("/")


def test_request_body_read_in_dispatch_is_replayed_to_the_endpoint(
    test_client_factory: Client,
) -> None:
    seen = []

    async def read_body(request: Request, call_next: RequestResponseEndpoint) -> Response:
        seen.append(await request.body())
        return await call_next(request)

    async def echo(request: Request) -> Response:
        return PlainTextResponse(await request.body())

    async def echo_stream(request: Request) -> Response:
        return PlainTextResponse(b"".join([chunk async for chunk in request.stream()]))

    app = Stellate(
        routes=[Route("/", echo, methods=["POST"]), Route("/s", echo_stream, methods=["POST"])],
        middleware=[
            Middleware(BaseHTTPMiddleware, dispatch=read_body),
            Middleware(BaseHTTPMiddleware, dispatch=read_body),
        ],
    )
    client = test_client_factory(app)
    assert client.post("/", content=b"payload").text == "payload"
    assert client.post("/s", content=iter([b"one-", b"two"])).text == "one-two"
    assert seen == [b"payload", b"payload", b"one-two", b"one-two"]


def test_request_body_untouched_by_dispatch_reaches_the_endpoint(
    test_client_factory: Client,
) -> None:
    async def echo(request: Request) -> Response:
        return PlainTextResponse(await request.body())

    app = Stellate(
        routes=[Route("/", echo, methods=["POST"])], middleware=[Middleware(Header, name="a")]
    )
    assert test_client_factory(app).post("/", content=b"x" * 100_000).text == "x" * 100_000


def test_unhandled_endpoint_error_reaches_the_500_handler_as_itself(
    test_client_factory: Client,
) -> None:
    class Boom(Exception):
        pass

    async def fail(request: Request) -> Response:
        raise Boom("bad")

    caught: list[BaseException] = []

    async def on_500(request: Request, exc: Exception) -> Response:
        caught.append(exc)
        return PlainTextResponse("handled", status_code=500)

    app = Stellate(
        routes=[Route("/", fail)],
        middleware=[Middleware(Header, name="a"), Middleware(Header, name="b")],
        exception_handlers={500: on_500},
    )
    client = test_client_factory(app, raise_server_exceptions=False)
    response = client.get("/")
    assert (response.status_code, response.text) == (500, "handled")
    assert len(caught) == 1
    assert type(caught[0]) is Boom
    with pytest.raises(Boom, match="bad"):
        test_client_factory(app).get("/")


def test_handled_endpoint_error_goes_through_the_middleware(test_client_factory: Client) -> None:
    async def fail(request: Request) -> Response:
        raise ValueError("nope")

    async def on_value_error(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(f"handled {exc}", status_code=422)

    app = Stellate(
        routes=[Route("/", fail)],
        middleware=[Middleware(Header, name="a")],
        exception_handlers={ValueError: on_value_error},
    )
    response = test_client_factory(app).get("/")
    assert (response.status_code, response.text) == (422, "handled nope")
    assert response.headers["x-layer"] == "a"


def test_error_in_dispatch_itself_is_raised_as_itself(test_client_factory: Client) -> None:
    async def broken(request: Request, call_next: RequestResponseEndpoint) -> Response:
        await call_next(request)
        raise KeyError("in dispatch")

    app = Stellate(
        routes=[Route("/", homepage)], middleware=[Middleware(BaseHTTPMiddleware, dispatch=broken)]
    )
    with pytest.raises(KeyError, match="in dispatch"):
        test_client_factory(app).get("/")
    response = test_client_factory(app, raise_server_exceptions=False).get("/")
    assert response.status_code == 500


def test_dispatch_can_catch_errors_from_call_next(test_client_factory: Client) -> None:
    async def fail(request: Request) -> Response:
        raise RuntimeError("deep")

    async def recover(request: Request, call_next: RequestResponseEndpoint) -> Response:
        try:
            return await call_next(request)
        except RuntimeError as exc:
            return PlainTextResponse(f"recovered from {exc}", status_code=503)

    app = Stellate(
        routes=[Route("/", fail)], middleware=[Middleware(BaseHTTPMiddleware, dispatch=recover)]
    )
    response = test_client_factory(app).get("/")
    assert (response.status_code, response.text) == (503, "recovered from deep")


def test_404_passes_through(test_client_factory: Client) -> None:
    app = Stellate(routes=[Route("/", homepage)], middleware=[Middleware(Header, name="a")])
    response = test_client_factory(app).get("/missing")
    assert response.status_code == 404
    assert response.headers["x-layer"] == "a"


def test_background_task_runs_after_the_response_is_sent(test_client_factory: Client) -> None:
    events: list[str] = []

    async def task() -> None:
        events.append("background")

    async def endpoint(request: Request) -> Response:
        return PlainTextResponse("body", background=BackgroundTask(task))

    class Recorder:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            async def recording_send(message: Message) -> None:
                if message["type"] == "http.response.body" and not message.get("more_body"):
                    events.append("last body sent")
                await send(message)

            await self.app(scope, receive, recording_send)

    app = Stellate(
        routes=[Route("/", endpoint)],
        middleware=[Middleware(Recorder), Middleware(Header, name="a")],
    )
    response = test_client_factory(app).get("/")
    assert response.text == "body"
    assert events == ["last body sent", "background"]


def test_streaming_response_passes_through_with_dispatch_reading_it(
    test_client_factory: Client,
) -> None:
    async def stream(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for part in (b"a", b"b", b"c"):
                yield part

        return StreamingResponse(chunks(), media_type="text/plain")

    async def upper(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
        return PlainTextResponse(body.upper(), headers={"x-read": "1"})

    app = Stellate(
        routes=[Route("/", stream)], middleware=[Middleware(BaseHTTPMiddleware, dispatch=upper)]
    )
    response = test_client_factory(app).get("/")
    assert response.text == "ABC"
    assert response.headers["x-read"] == "1"


def test_replaced_body_iterator_is_sent(test_client_factory: Client) -> None:
    async def wrap(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        assert isinstance(response, StreamingResponse)
        original = response.body_iterator  # type: ignore[attr-defined]

        async def framed() -> AsyncIterator[str | bytes]:
            yield "["
            async for chunk in original:
                yield chunk
            yield b"]"

        response.body_iterator = framed()  # type: ignore[attr-defined]
        del response.headers["content-length"]
        return response

    app = Stellate(
        routes=[Route("/", homepage)], middleware=[Middleware(BaseHTTPMiddleware, dispatch=wrap)]
    )
    assert test_client_factory(app).get("/").text == "[home]"


def test_abandoned_response_is_cancelled(test_client_factory: Client) -> None:
    cleaned_up = []

    async def endless(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            try:
                while True:
                    yield b"x"
            finally:
                cleaned_up.append(True)

        return StreamingResponse(chunks())

    async def replace(request: Request, call_next: RequestResponseEndpoint) -> Response:
        await call_next(request)
        return PlainTextResponse("replaced")

    app = Stellate(
        routes=[Route("/", endless)], middleware=[Middleware(BaseHTTPMiddleware, dispatch=replace)]
    )
    assert test_client_factory(app).get("/").text == "replaced"
    assert cleaned_up == [True]


def test_websocket_passes_through(test_client_factory: Client) -> None:
    async def ws_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hi")
        await websocket.close()

    log: list[str] = []
    app = Stellate(
        routes=[WebSocketRoute("/ws", ws_endpoint)],
        middleware=[Middleware(Header, name="a", log=log)],
    )
    with test_client_factory(app).websocket_connect("/ws") as session:
        assert session.receive_text() == "hi"
    assert log == []


def test_app_without_response_is_an_error(test_client_factory: Client) -> None:
    async def silent(scope: Scope, receive: Receive, send: Send) -> None:
        return None

    with pytest.raises(RuntimeError, match="No response returned"):
        test_client_factory(Header(silent, name="a")).get("/")


def test_error_after_response_start_is_raised(test_client_factory: Client) -> None:
    async def half(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise LookupError("mid-stream")

    with pytest.raises(LookupError, match="mid-stream"):
        test_client_factory(Header(half, name="a")).get("/")


def test_error_in_background_task_is_raised(test_client_factory: Client) -> None:
    def task() -> None:
        raise ArithmeticError("late")

    async def endpoint(request: Request) -> Response:
        return PlainTextResponse("ok", background=BackgroundTask(task))

    app = Stellate(routes=[Route("/", endpoint)], middleware=[Middleware(Header, name="a")])
    with pytest.raises(ArithmeticError, match="late"):
        test_client_factory(app).get("/")


# --------------------------------------------------------------------------- bare ASGI


pytest_anyio = pytest.mark.anyio


@pytest_anyio
async def test_call_next_response_streams_without_buffering() -> None:
    """The second chunk is produced only after the client got the first one."""
    first_chunk_delivered = anyio.Event()
    received: list[bytes] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"one", "more_body": True})
        await first_chunk_delivered.wait()
        await send({"type": "http.response.body", "body": b"two", "more_body": False})

    async def receive() -> Message:
        await anyio.sleep_forever()
        raise AssertionError  # pragma: no cover

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            received.append(message["body"])
            first_chunk_delivered.set()

    with anyio.fail_after(5):
        await Header(app, name="a")(http_scope(), receive, send)
    # Each chunk as the app sent it, then Starlette's separate empty end.
    assert received == [b"one", b"two", b""]


@pytest_anyio
async def test_disconnect_reaches_the_endpoint() -> None:
    """After the replayed body, the endpoint sees the server's http.disconnect."""
    inbound: list[Message] = [
        {"type": "http.request", "body": b"data", "more_body": False},
        {"type": "http.disconnect"},
    ]
    seen: list[Any] = []

    async def receive() -> Message:
        if inbound:
            return inbound.pop(0)
        await anyio.sleep_forever()
        raise AssertionError  # pragma: no cover

    async def endpoint_app(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        seen.append(await request.body())
        seen.append(await request.is_disconnected())
        await PlainTextResponse("ok")(scope, receive, send)

    async def read_first(request: Request, call_next: RequestResponseEndpoint) -> Response:
        await request.body()
        return await call_next(request)

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    middleware = BaseHTTPMiddleware(endpoint_app, dispatch=read_first)
    with anyio.fail_after(5):
        await middleware(http_scope("POST"), receive, send)
    assert seen == [b"data", True]
    assert sent[0]["status"] == 200


@pytest_anyio
async def test_disconnect_seen_by_dispatch_is_replayed() -> None:
    async def receive() -> Message:
        return {"type": "http.disconnect"}

    seen: list[bool] = []

    async def endpoint_app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(await Request(scope, receive).is_disconnected())
        await PlainTextResponse("ok")(scope, receive, send)

    async def check(request: Request, call_next: RequestResponseEndpoint) -> Response:
        seen.append(await request.is_disconnected())
        return await call_next(request)

    async def send(message: Message) -> None:
        pass

    with anyio.fail_after(5):
        await BaseHTTPMiddleware(endpoint_app, dispatch=check)(http_scope(), receive, send)
    assert seen == [True, True]


@pytest_anyio
async def test_non_http_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def never() -> Message:  # pragma: no cover
        raise AssertionError

    async def nowhere(message: Message) -> None:  # pragma: no cover
        raise AssertionError

    await Header(app, name="a")({"type": "lifespan"}, never, nowhere)
    assert seen == ["lifespan"]


@pytest_anyio
async def test_messages_before_start_and_trailers_are_forwarded() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.debug", "info": {"template": "x"}})
        await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": True})
        await send({"type": "http.response.body", "body": b"data", "more_body": False})
        await send({"type": "http.response.trailers", "headers": [(b"x-sum", b"1")]})

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:  # pragma: no cover
        await anyio.sleep_forever()
        raise AssertionError

    with anyio.fail_after(5):
        await Header(app, name="a")(http_scope(), receive, send)
    assert [m["type"] for m in sent] == [
        "http.response.debug",
        "http.response.start",
        "http.response.body",
        "http.response.body",
        "http.response.trailers",
    ]
    assert sent[1]["trailers"] is True
    assert [(m["body"], m["more_body"]) for m in sent[2:4]] == [(b"data", True), (b"", False)]
    assert sent[4] == {"type": "http.response.trailers", "headers": [(b"x-sum", b"1")]}
    assert (b"x-layer", b"a") in sent[1]["headers"]


@pytest_anyio
async def test_client_gone_during_forwarding_raises_the_oserror_and_stops_the_app() -> None:
    """Below ASGI 2.4 (here: no version) the server's OSError propagates, as Starlette's."""
    finished = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"x", "more_body": True})
        finally:
            finished.append(True)

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise OSError("connection lost")

    async def receive() -> Message:  # pragma: no cover
        await anyio.sleep_forever()
        raise AssertionError

    with anyio.fail_after(5), pytest.raises(OSError, match="connection lost"):
        await Header(app, name="a")(http_scope(), receive, send)
    assert finished == [True]


@pytest_anyio
async def test_cancellation_is_not_swallowed() -> None:
    started = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        started.set()
        await anyio.sleep_forever()

    async def receive() -> Message:  # pragma: no cover
        await anyio.sleep_forever()
        raise AssertionError

    async def send(message: Message) -> None:  # pragma: no cover
        pass

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(Header(app, name="a"), http_scope(), receive, send)
            await started.wait()
            group.cancel_scope.cancel()
    # Reaching here means the middleware ended when cancelled (it did not hang or
    # turn the cancellation into an error).
    assert group.cancel_scope.cancel_called


@pytest_anyio
async def test_dispatch_reading_the_body_skips_other_messages_and_drains_trailers() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "trailers": True})
        await send({"type": "http.response.debug", "info": {}})
        await send({"type": "http.response.body", "body": b"abc", "more_body": False})
        await send({"type": "http.response.trailers", "headers": []})

    async def read(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        body = b"".join([c async for c in response.body_iterator])  # type: ignore[attr-defined]
        return PlainTextResponse(body + b"!")

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:  # pragma: no cover
        await anyio.sleep_forever()
        raise AssertionError

    with anyio.fail_after(5):
        await BaseHTTPMiddleware(app, dispatch=read)(http_scope(), receive, send)
    assert sent[1]["body"] == b"abc!"


@pytest_anyio
async def test_error_while_dispatch_reads_the_body_is_raised() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        raise UnicodeError("half way")

    async def read(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        body = b"".join([c async for c in response.body_iterator])  # type: ignore[attr-defined]
        return PlainTextResponse(body)  # pragma: no cover

    async def send(message: Message) -> None:  # pragma: no cover
        pass

    async def receive() -> Message:  # pragma: no cover
        await anyio.sleep_forever()
        raise AssertionError

    with anyio.fail_after(5), pytest.raises(UnicodeError, match="half way"):
        await BaseHTTPMiddleware(app, dispatch=read)(http_scope(), receive, send)


def test_background_added_by_dispatch_runs_after_both(test_client_factory: Client) -> None:
    events: list[str] = []

    async def endpoint(request: Request) -> Response:
        return PlainTextResponse("x", background=BackgroundTask(events.append, "endpoint"))

    async def add_task(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.background = BackgroundTask(events.append, "middleware")
        return response

    app = Stellate(
        routes=[Route("/", endpoint)],
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=add_task)],
    )
    assert test_client_factory(app).get("/").text == "x"
    assert events == ["endpoint", "middleware"]


def test_client_leaving_mid_stream_stops_the_endpoint(test_client_factory: Client) -> None:
    closed = []

    async def endless(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            try:
                while True:
                    yield b"tick "
                    await anyio.lowlevel.checkpoint()
            finally:
                closed.append(True)

        return StreamingResponse(chunks())

    app = Stellate(routes=[Route("/", endless)], middleware=[Middleware(Header, name="a")])
    with test_client_factory(app).stream("GET", "/") as response:
        assert response.headers["x-layer"] == "a"
        first = next(response.iter_bytes())
        assert first.startswith(b"tick")
    assert closed == [True]


@pytest_anyio
async def test_handler_cancelled_on_disconnect_ends_dispatch_quietly() -> None:
    """With cancel_on_disconnect, a client leaving before the answer ends the request."""
    handler_started = anyio.Event()
    client_gone = anyio.Event()
    dispatch_after_call_next: list[bool] = []

    async def slow(request: Request) -> Response:
        handler_started.set()
        await anyio.sleep_forever()
        raise AssertionError  # pragma: no cover

    async def watch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        dispatch_after_call_next.append(True)  # pragma: no cover
        return response  # pragma: no cover

    app = Stellate(
        routes=[Route("/", slow)],
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=watch)],
        cancel_on_disconnect=True,
    )
    messages: list[Message] = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        await client_gone.wait()
        return {"type": "http.disconnect"}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)  # pragma: no cover

    async def leave() -> None:
        await handler_started.wait()
        client_gone.set()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(leave)
            await app(http_scope(), receive, send)
    assert sent == []
    assert dispatch_after_call_next == []


async def _answer(app: ASGIApp) -> list[Message]:
    """What ``app`` sends for a GET without a body (a receive that waits forever after)."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:  # pragma: no cover
        await anyio.sleep_forever()
        raise AssertionError

    with anyio.fail_after(5):
        await app(http_scope(), receive, send)
    return sent


@pytest_anyio
async def test_messages_after_the_last_body_message_are_dropped() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done", "more_body": False})
        await send({"type": "http.response.body", "body": b"late", "more_body": False})

    sent = await _answer(Header(app, name="a"))
    assert [m.get("body") for m in sent] == [None, b"done", b""]


@pytest_anyio
async def test_server_error_while_forwarding_is_raised_and_the_app_stopped() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"x", "more_body": True})
        except RuntimeError:  # pragma: no cover
            seen.append("the app saw the server's error")
        finally:
            seen.append("stopped")

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise RuntimeError("server refused")

    async def receive() -> Message:  # pragma: no cover
        await anyio.sleep_forever()
        raise AssertionError

    with anyio.fail_after(5), pytest.raises(RuntimeError, match="server refused"):
        await Header(app, name="a")(http_scope(), receive, send)
    assert seen == ["stopped"]


@pytest_anyio
async def test_rest_of_a_body_partly_read_by_dispatch_is_forwarded() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"a", b"b"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"c", "more_body": False})

    async def peek(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        first = await response.body_iterator.__anext__()  # type: ignore[attr-defined]
        response.headers["x-first"] = first.decode()
        return response

    sent = await _answer(BaseHTTPMiddleware(app, dispatch=peek))
    assert (b"x-first", b"a") in sent[0]["headers"]
    assert [(m["body"], m["more_body"]) for m in sent[1:]] == [
        (b"b", True),
        (b"c", True),
        (b"", False),
    ]


@pytest_anyio
async def test_dispatch_reading_the_body_of_an_unfinished_response() -> None:
    """An app that started a response and returned: its body reads as empty."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def read(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        call = response._call  # type: ignore[attr-defined]
        while not call.finished.is_set:  # let the app return first (bounded by fail_after)
            await anyio.lowlevel.checkpoint()
        body = b"".join([c async for c in response.body_iterator])  # type: ignore[attr-defined]
        return PlainTextResponse(b"[" + body + b"]")

    sent = await _answer(BaseHTTPMiddleware(app, dispatch=read))
    assert sent[1]["body"] == b"[]"


class ReplacesBody(BaseHTTPMiddleware):
    """Answers with a body of its own, produced by ``self.body``."""

    def __init__(self, app: Any, body: Callable[[], AsyncIterator[bytes]]) -> None:
        super().__init__(app)
        self.body = body

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.body_iterator = self.body()  # type: ignore[attr-defined]
        return response


@pytest_anyio
async def test_replaced_body_stops_on_disconnect_and_its_cleanup_completes() -> None:
    first_sent = anyio.Event()
    cleanup: list[str] = []

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"mine"
            await anyio.sleep_forever()  # idle: only the disconnect ends this
            yield b"never"  # pragma: no cover
        finally:
            cleanup.append("started")
            await anyio.sleep(0.001)
            cleanup.append("finished")

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)
        if message.get("body") == b"mine":
            first_sent.set()

    async def receive() -> Message:
        await first_sent.wait()
        return {"type": "http.disconnect"}

    with anyio.fail_after(5):
        await ReplacesBody(homepage_app, body)(http_scope(), receive, send)
    assert cleanup == ["started", "finished"]
    assert [m.get("body") for m in sent if m["type"] == "http.response.body"] == [b"mine"]


@pytest_anyio
async def test_replaced_body_on_asgi_2_4_raises_client_disconnect_without_listening() -> None:
    from stellate.requests import ClientDisconnect

    async def body() -> AsyncIterator[bytes]:
        yield b"mine"

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise OSError("client gone")

    async def receive() -> Message:
        raise AssertionError("receive() called on an ASGI 2.4 scope")

    scope = {**http_scope(), "asgi": {"version": "3.0", "spec_version": "2.4"}}
    with anyio.fail_after(5), pytest.raises(ClientDisconnect):
        await ReplacesBody(homepage_app, body)(scope, receive, send)


async def homepage_app(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("theirs")(scope, receive, send)
