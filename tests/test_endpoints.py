"""Tests of stellate.endpoints: HTTPEndpoint and WebSocketEndpoint.

The endpoints are driven with raw ASGI messages here, which shows exactly what reaches the
server: the 405's ``Allow`` header, the close code for a bad frame, and that nothing is
sent where nothing should be.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar

import anyio
import pytest

from stellate._context import context_of
from stellate.endpoints import HTTPEndpoint, WebSocketEndpoint
from stellate.exceptions import HTTPException, WebSocketException
from stellate.requests import Request
from stellate.responses import PlainTextResponse, Response
from stellate.types import Message, Scope
from stellate.websockets import WebSocket, WebSocketDisconnect

pytestmark = pytest.mark.anyio


class FakeServer:
    """Scripted inbound messages; records what the application sends.

    Receiving past the script fails the test instead of hanging it.
    """

    def __init__(self, *incoming: Message) -> None:
        self.incoming = deque(incoming)
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        await anyio.lowlevel.checkpoint()
        if not self.incoming:
            raise AssertionError("the application received more messages than scripted")
        return self.incoming.popleft()

    async def send(self, message: Message) -> None:
        await anyio.lowlevel.checkpoint()
        self.sent.append(message)


# -- HTTPEndpoint ---------------------------------------------------------------------------


def http_scope(method: str, **extra: Any) -> Scope:
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "server": ("testserver", 80),
        "path": "/items",
        "raw_path": b"/items",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
    }
    scope.update(extra)
    return scope


async def call_http(
    endpoint: type[HTTPEndpoint], method: str, handlers: Any = None, **scope_extra: Any
) -> tuple[int, dict[str, str], bytes]:
    server = FakeServer({"type": "http.request", "body": b"", "more_body": False})
    scope = http_scope(method, **scope_extra)
    if handlers is not None:  # as an application's ExceptionMiddleware publishes them
        context_of(scope).exception_handlers = handlers
    await endpoint(scope, server.receive, server.send)
    start, *bodies = server.sent
    assert start["type"] == "http.response.start"
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, b"".join(m.get("body", b"") for m in bodies)


class Items(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        return PlainTextResponse(f"get {request.url.path}")

    def post(self, request: Request) -> Response:
        # Sync handlers run in a worker thread, off the event loop.
        return PlainTextResponse(f"post in {threading.current_thread().name}")

    async def query(self, request: Request) -> Response:
        return PlainTextResponse("query")


async def test_dispatches_by_method() -> None:
    assert await call_http(Items, "GET") == (
        200,
        {"content-length": "10", "content-type": "text/plain; charset=utf-8"},
        b"get /items",
    )
    status, _, body = await call_http(Items, "QUERY")
    assert (status, body) == (200, b"query")


async def test_sync_handlers_run_in_a_worker_thread() -> None:
    status, _, body = await call_http(Items, "POST")
    assert status == 200
    assert body.startswith(b"post in ")
    assert body != f"post in {threading.current_thread().name}".encode()


async def test_head_falls_back_to_get_without_a_body() -> None:
    status, headers, body = await call_http(Items, "HEAD")
    assert (status, body) == (200, b"")
    assert headers["content-length"] == "10"


async def test_head_uses_head_when_defined() -> None:
    class WithHead(Items):
        async def head(self, request: Request) -> Response:
            return Response(headers={"x-head": "own"})

    _, headers, _ = await call_http(WithHead, "HEAD")
    assert headers["x-head"] == "own"


@pytest.mark.parametrize("method", ["DELETE", "PUT", "OPTIONS", "DISPATCH", "get", "__INIT__"])
async def test_other_methods_get_405_with_allow(method: str) -> None:
    status, headers, body = await call_http(Items, method)
    assert (status, body) == (405, b"Method Not Allowed")
    assert headers["allow"] == "GET, HEAD, POST, QUERY"


async def test_allow_without_get_has_no_head() -> None:
    class PostOnly(HTTPEndpoint):
        async def post(self, request: Request) -> Response:
            return Response()

    status, headers, _ = await call_http(PostOnly, "GET")
    assert (status, headers["allow"]) == (405, "POST")


async def test_405_inside_an_app_is_an_http_exception() -> None:
    server = FakeServer()
    with pytest.raises(HTTPException) as info:
        await Items(http_scope("DELETE", app=object()), server.receive, server.send)
    assert info.value.status_code == 405
    assert info.value.headers == {"Allow": "GET, HEAD, POST, QUERY"}
    assert server.sent == []


async def test_405_reaches_the_apps_exception_handlers() -> None:
    seen: list[HTTPException] = []

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        seen.append(exc)
        return PlainTextResponse(f"custom {exc.status_code}", exc.status_code, exc.headers)

    handlers: tuple[dict[Any, Any], dict[int, Any]] = ({HTTPException: on_http_error}, {})
    status, headers, body = await call_http(
        Items, "PATCH", app=object(), handlers=handlers
    )
    assert (status, body) == (405, b"custom 405")
    assert headers["allow"] == "GET, HEAD, POST, QUERY"
    assert len(seen) == 1


async def test_handler_errors_go_to_exception_handlers() -> None:
    class Broken(HTTPEndpoint):
        def get(self, request: Request) -> Response:
            raise LookupError("no such item")

    def on_lookup(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(str(exc), status_code=404)

    handlers: tuple[dict[Any, Any], dict[int, Any]] = ({LookupError: on_lookup}, {})
    result = await call_http(Broken, "GET", handlers=handlers)
    assert (result[0], result[2]) == (404, b"no such item")


async def test_unhandled_errors_propagate() -> None:
    class Broken(HTTPEndpoint):
        async def get(self, request: Request) -> Response:
            raise LookupError("boom")

    server = FakeServer()
    with pytest.raises(LookupError, match="boom"):
        await Broken(http_scope("GET"), server.receive, server.send)


@pytest.mark.parametrize("handler_kind", ["async", "sync"])
async def test_handlers_can_send_early_hints_and_push_promises(handler_kind: str) -> None:
    """The endpoint's Request has the connection's ``send`` (Starlette builds it so)."""

    async def hinting(request: Request) -> Response:
        await request.send_early_hints("</app.css>; rel=preload; as=style")
        await request.send_push_promise("/app.css")
        return PlainTextResponse("page")

    class Page(HTTPEndpoint):
        if handler_kind == "async":
            get = staticmethod(hinting)
        else:

            def get(self, request: Request) -> Response:
                return anyio.from_thread.run(hinting, request)

    extensions = {"http.response.early_hint": {}, "http.response.push": {}}
    server = FakeServer({"type": "http.request", "body": b"", "more_body": False})
    await Page(http_scope("GET", extensions=extensions), server.receive, server.send)
    assert server.sent[0] == {
        "type": "http.response.early_hint",
        "links": [b"</app.css>; rel=preload; as=style"],
    }
    assert server.sent[1] == {"type": "http.response.push", "path": "/app.css", "headers": []}
    assert server.sent[2]["type"] == "http.response.start"
    assert server.sent[2]["status"] == 200
    assert server.sent[3]["body"] == b"page"


async def test_http_endpoint_needs_an_http_scope() -> None:
    server = FakeServer()
    with pytest.raises(ValueError, match="'http' scope, got 'websocket'"):
        Items({"type": "websocket"}, server.receive, server.send)


# -- WebSocketEndpoint ----------------------------------------------------------------------

CONNECT: Message = {"type": "websocket.connect"}
ACCEPT: Message = {"type": "websocket.accept", "subprotocol": None, "headers": []}


def text(value: str) -> Message:
    return {"type": "websocket.receive", "text": value}


def binary(value: bytes) -> Message:
    return {"type": "websocket.receive", "bytes": value}


def disconnect(code: int = 1000) -> Message:
    return {"type": "websocket.disconnect", "code": code}


def close(code: int, reason: str = "") -> Message:
    return {"type": "websocket.close", "code": code, "reason": reason}


def ws_scope() -> Scope:
    return {
        "type": "websocket",
        "scheme": "ws",
        "server": ("testserver", 80),
        "path": "/ws",
        "query_string": b"",
        "root_path": "",
        "headers": [],
    }


class Recorder(WebSocketEndpoint):
    """Records what it received and the close code it was told about."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.received: list[Any] = []
        self.close_codes: list[int] = []

    async def on_receive(self, websocket: WebSocket, data: Any) -> None:
        self.received.append(data)

    async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
        self.close_codes.append(close_code)


class TextRecorder(Recorder):
    encoding = "text"


class BytesRecorder(Recorder):
    encoding = "bytes"


class JSONRecorder(Recorder):
    encoding = "json"


async def run_endpoint(cls: type[Recorder], *incoming: Message) -> tuple[Recorder, FakeServer]:
    server = FakeServer(*incoming)
    endpoint = cls(ws_scope(), server.receive, server.send)
    with anyio.fail_after(5):
        await endpoint
    return endpoint, server


async def test_base_endpoint_accepts_and_ignores_frames() -> None:
    server = FakeServer(CONNECT, text("hi"), disconnect(1001))
    await WebSocketEndpoint(ws_scope(), server.receive, server.send)
    assert server.sent == [ACCEPT]
    assert not server.incoming


async def test_no_encoding_passes_frames_as_sent() -> None:
    endpoint, server = await run_endpoint(
        Recorder, CONNECT, text("a"), binary(b"b"), text(""), disconnect(1001)
    )
    assert endpoint.received == ["a", b"b", ""]
    assert endpoint.close_codes == [1001]
    assert server.sent == [ACCEPT]


async def test_disconnect_without_code_is_reported_as_1000() -> None:
    endpoint, _ = await run_endpoint(Recorder, CONNECT, {"type": "websocket.disconnect"})
    assert endpoint.close_codes == [1000]


@pytest.mark.parametrize(
    ("cls", "frames", "expected"),
    [
        (TextRecorder, [text("x"), text("")], ["x", ""]),
        (BytesRecorder, [binary(b"x"), binary(b"")], [b"x", b""]),
        (JSONRecorder, [text('{"a":1}'), binary(b"[true]")], [{"a": 1}, [True]]),
    ],
)
async def test_encodings_decode_frames(
    cls: type[Recorder], frames: list[Message], expected: list[Any]
) -> None:
    endpoint, _ = await run_endpoint(cls, CONNECT, *frames, disconnect(1000))
    assert endpoint.received == expected
    assert endpoint.close_codes == [1000]


MALFORMED_JSON = "Malformed JSON data received."

UNDECODABLE = [
    # (id, endpoint class, a good frame, a bad frame, Starlette's error message)
    (
        "binary-for-text",
        TextRecorder,
        text("ok"),
        binary(b"x"),
        "Expected text websocket messages, but got bytes",
    ),
    (
        "text-for-bytes",
        BytesRecorder,
        binary(b"ok"),
        text("x"),
        "Expected bytes websocket messages, but got text",
    ),
    ("malformed-json", JSONRecorder, text('"ok"'), text("{nope"), MALFORMED_JSON),
    ("malformed-binary-json", JSONRecorder, text('"ok"'), binary(b"[1,"), MALFORMED_JSON),
    ("bad-utf8-json", JSONRecorder, text('"ok"'), binary(b"\xc3("), MALFORMED_JSON),
    (
        "nesting-bomb",
        JSONRecorder,
        text('"ok"'),
        text("[" * 100_000 + "]" * 100_000),
        MALFORMED_JSON,
    ),
    ("5000-digits", JSONRecorder, text('"ok"'), text("7" * 5000), MALFORMED_JSON),
    ("5000-digits-binary", JSONRecorder, text('"ok"'), binary(b"7" * 5000), MALFORMED_JSON),
]


@pytest.mark.parametrize(
    ("cls", "good", "bad", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in UNDECODABLE],
)
async def test_undecodable_frame_closes_with_1003_then_raises(
    cls: type[Recorder], good: Message, bad: Message, message: str
) -> None:
    """As Starlette: close 1003 (no reason), RuntimeError, on_disconnect(1011)."""
    server = FakeServer(CONNECT, good, bad, good)
    endpoint = cls(ws_scope(), server.receive, server.send)
    with anyio.fail_after(5), pytest.raises(RuntimeError) as info:
        await endpoint
    assert type(info.value) is RuntimeError
    assert str(info.value) == message
    assert endpoint.received == ["ok" if cls is not BytesRecorder else b"ok"]
    assert server.sent == [ACCEPT, close(1003)]
    assert endpoint.close_codes == [1011]
    # The frame after the bad one is never read.
    assert server.incoming == deque([good])


@pytest.mark.parametrize(
    ("cls", "bad", "message"),
    [pytest.param(case[1], case[3], case[4], id=case[0]) for case in UNDECODABLE],
)
async def test_decode_called_directly_closes_then_raises(
    cls: type[Recorder], bad: Message, message: str
) -> None:
    server = FakeServer(CONNECT)
    endpoint = cls(ws_scope(), server.receive, server.send)
    websocket = WebSocket(ws_scope(), server.receive, server.send)
    await websocket.accept()
    with pytest.raises(RuntimeError, match=re.escape(message)):
        await endpoint.decode(websocket, bad)
    assert server.sent == [ACCEPT, close(1003)]


async def test_decode_override_that_closes_itself() -> None:
    class Strict(Recorder):
        async def decode(self, websocket: WebSocket, message: Message) -> Any:
            if message.get("text") == "":
                await websocket.close(code=1007, reason="empty frames are not allowed")
                raise RuntimeError("empty frame")
            return await super().decode(websocket, message)

    server = FakeServer(CONNECT, text("a"), text(""))
    endpoint = Strict(ws_scope(), server.receive, server.send)
    with pytest.raises(RuntimeError, match="empty frame"):
        await endpoint
    assert endpoint.received == ["a"]
    assert server.sent == [ACCEPT, close(1007, "empty frames are not allowed")]
    assert endpoint.close_codes == [1011]


async def test_error_in_on_receive_propagates_after_on_disconnect() -> None:
    class Failing(Recorder):
        async def on_receive(self, websocket: WebSocket, data: Any) -> None:
            raise KeyError("bug")

    server = FakeServer(CONNECT, text("x"))
    endpoint = Failing(ws_scope(), server.receive, server.send)
    with pytest.raises(KeyError, match="bug"):
        await endpoint
    assert endpoint.close_codes == [1011]
    # The close is left to the exception handlers or the server (which sends 1011).
    assert server.sent == [ACCEPT]


async def test_websocket_exception_in_on_receive_reports_its_code() -> None:
    class Refusing(Recorder):
        async def on_receive(self, websocket: WebSocket, data: Any) -> None:
            raise WebSocketException(4001, "not allowed")

    server = FakeServer(CONNECT, text("x"))
    endpoint = Refusing(ws_scope(), server.receive, server.send)
    with pytest.raises(WebSocketException):
        await endpoint
    assert endpoint.close_codes == [4001]


async def test_on_receive_closing_ends_the_session() -> None:
    class Bye(Recorder):
        async def on_receive(self, websocket: WebSocket, data: Any) -> None:
            await websocket.send_text(f"echo {data}")
            if data == "bye":
                await websocket.close(code=4000, reason="see you")

    endpoint, server = await run_endpoint(Bye, CONNECT, text("hi"), text("bye"))
    assert server.sent == [
        ACCEPT,
        {"type": "websocket.send", "text": "echo hi"},
        {"type": "websocket.send", "text": "echo bye"},
        close(4000, "see you"),
    ]
    assert endpoint.close_codes == [4000]


async def test_on_connect_can_refuse_with_a_close() -> None:
    class Guarded(Recorder):
        async def on_connect(self, websocket: WebSocket) -> None:
            await websocket.close(code=1008, reason="no token")

    endpoint, server = await run_endpoint(Guarded, CONNECT)
    assert server.sent == [close(1008, "no token")]
    assert endpoint.close_codes == [1008]
    assert endpoint.received == []


async def test_on_connect_can_refuse_with_a_denial_response() -> None:
    class Denied(Recorder):
        async def on_connect(self, websocket: WebSocket) -> None:
            await websocket.send_denial_response(PlainTextResponse("go away", 403))

    server = FakeServer(CONNECT)
    scope = {**ws_scope(), "extensions": {"websocket.http.response": {}}}
    endpoint = Denied(scope, server.receive, server.send)
    await endpoint
    assert [m["type"] for m in server.sent] == [
        "websocket.http.response.start",
        "websocket.http.response.body",
    ]
    assert server.sent[0]["status"] == 403
    assert server.sent[1]["body"] == b"go away"
    assert endpoint.close_codes == [1008]


async def test_a_disconnect_before_connect_is_a_protocol_error() -> None:
    # ASGI servers send websocket.connect first; Starlette's WebSocket refuses anything else.
    with pytest.raises(RuntimeError, match=r'Expected ASGI message "websocket\.connect"'):
        await run_endpoint(Recorder, disconnect(1001))


async def test_connection_lost_while_sending_is_a_disconnect() -> None:
    class Echo(Recorder):
        async def on_receive(self, websocket: WebSocket, data: Any) -> None:
            await websocket.send_text(data)

    async def broken_send(message: Message) -> None:
        if message["type"] == "websocket.send":
            raise BrokenPipeError

    server = FakeServer(CONNECT, text("x"))
    endpoint = Echo(ws_scope(), server.receive, broken_send)
    await endpoint
    assert endpoint.close_codes == [1006]


async def test_encoding_is_checked_when_the_class_is_defined() -> None:
    with pytest.raises(ValueError, match=r"Bad\.encoding must be one of .* got 'xml'"):

        class Bad(WebSocketEndpoint):
            encoding = "xml"  # type: ignore[assignment]


async def test_websocket_endpoint_needs_a_websocket_scope() -> None:
    server = FakeServer()
    with pytest.raises(ValueError, match="'websocket' scope, got 'http'"):
        WebSocketEndpoint(http_scope("GET"), server.receive, server.send)


# -- through an application and the TestClient (both backends) -------------------------------

TestClientFactory = Callable[..., Any]


def make_app(*routes: Any) -> Any:
    from stellate.applications import Stellate

    return Stellate(routes=list(routes))


def test_http_endpoint_in_an_app(test_client_factory: TestClientFactory) -> None:
    from stellate.routing import Route

    client = test_client_factory(make_app(Route("/items", Items)))
    response = client.get("/items")
    assert (response.status_code, response.text) == (200, "get /items")
    head = client.head("/items")
    assert (head.status_code, head.content, head.headers["content-length"]) == (200, b"", "10")
    assert client.request("QUERY", "/items").text == "query"
    assert client.post("/items").text.startswith("post in ")
    refused = client.delete("/items")
    assert (refused.status_code, refused.text) == (405, "Method Not Allowed")
    assert refused.headers["allow"] == "GET, HEAD, POST, QUERY"


class Echo(WebSocketEndpoint):
    encoding = "json"
    closes: ClassVar[list[int]] = []

    async def on_connect(self, websocket: WebSocket) -> None:
        if websocket.query_params.get("token") != "good":
            raise HTTPException(403, "bad token")
        # Only a subprotocol the client offered may be accepted (RFC 6455 §4.2.2).
        offered = "json.v1" in websocket.scope.get("subprotocols", [])
        await websocket.accept(subprotocol="json.v1" if offered else None)

    async def on_receive(self, websocket: WebSocket, data: Any) -> None:
        if data == "kick":
            raise WebSocketException(4003, "kicked")
        if data == "crash":
            raise ZeroDivisionError("bug in on_receive")
        await websocket.send_json({"echo": data})

    async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
        self.closes.append(close_code)


@pytest.fixture
def echo_client(test_client_factory: TestClientFactory) -> Any:
    from stellate.routing import WebSocketRoute

    Echo.closes = []
    return test_client_factory(make_app(WebSocketRoute("/echo", Echo)))


def test_websocket_endpoint_echoes_json(echo_client: Any) -> None:
    with echo_client.websocket_connect("/echo?token=good", subprotocols=["json.v1"]) as session:
        assert session.accepted_subprotocol == "json.v1"
        session.send_json({"n": 1})
        assert session.receive_json() == {"echo": {"n": 1}}
        session.send_json(["binary"], mode="binary")
        assert session.receive_json() == {"echo": ["binary"]}
        session.close(code=1001)
    assert Echo.closes == [1001]


@pytest.mark.parametrize(
    "payload",
    ["{not json", "[" * 100_000 + "]" * 100_000, "1" * 5000],
    ids=["bad", "bomb", "digits"],
)
def test_websocket_endpoint_closes_1003_on_malformed_json_and_raises(
    echo_client: Any, payload: str
) -> None:
    """The client sees the 1003 close; the session ends with Starlette's RuntimeError."""
    with (
        pytest.raises(RuntimeError) as raised,
        echo_client.websocket_connect("/echo?token=good") as session,
    ):
        session.send_text(payload)
        with pytest.raises(WebSocketDisconnect) as closed:
            session.receive_json()
    assert (closed.value.code, closed.value.reason) == (1003, "")
    assert str(raised.value) == "Malformed JSON data received."
    assert Echo.closes == [1011]


def test_http_exception_in_on_connect_is_a_denial(echo_client: Any) -> None:
    from stellate.testclient import WebSocketDenialResponse

    with (
        pytest.raises(WebSocketDenialResponse) as info,
        echo_client.websocket_connect("/echo?token=bad"),
    ):
        pass  # pragma: no cover - the handshake fails
    assert (info.value.status_code, info.value.text) == (403, "bad token")
    assert Echo.closes == []


def test_websocket_exception_in_on_receive_closes_with_its_code(echo_client: Any) -> None:
    with echo_client.websocket_connect("/echo?token=good") as session:
        session.send_json("kick")
        with pytest.raises(WebSocketDisconnect) as info:
            session.receive_json()
    assert (info.value.code, info.value.reason) == (4003, "kicked")
    assert Echo.closes == [4003]


def test_error_in_on_receive_surfaces_after_on_disconnect(echo_client: Any) -> None:
    with (
        pytest.raises(ZeroDivisionError, match="bug in on_receive"),
        echo_client.websocket_connect("/echo?token=good") as session,
    ):
        session.send_json("crash")
        session.receive_json()
    assert Echo.closes == [1011]


def test_a_decode_override_can_refuse_a_frame_without_an_error(
    test_client_factory: TestClientFactory,
) -> None:
    """What docs/endpoints.md advises: raise WebSocketException from decode()."""
    from stellate.routing import WebSocketRoute

    closes: list[int] = []

    class NoEmptyFrames(WebSocketEndpoint):
        encoding = "text"

        async def decode(self, websocket: WebSocket, message: Message) -> Any:
            if message.get("text") == "":
                raise WebSocketException(4400, "empty frames are refused")
            return await super().decode(websocket, message)

        async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
            closes.append(close_code)

    client = test_client_factory(make_app(WebSocketRoute("/ws", NoEmptyFrames)))
    with client.websocket_connect("/ws") as session:  # raise_server_exceptions=True
        session.send_text("")
        with pytest.raises(WebSocketDisconnect) as info:
            session.receive_text()
    assert (info.value.code, info.value.reason) == (4400, "empty frames are refused")
    assert closes == [4400]
