"""wrap_app_handling_exceptions: handler lookup, sync handlers, started responses, websockets."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest

from stellate._context import StartTrackingSend, context_of, track_start
from stellate._exception_handling import (
    check_handler_key,
    lookup_handler,
    wrap_app_handling_exceptions,
)
from stellate.exceptions import HTTPException
from stellate.requests import Request
from stellate.responses import PlainTextResponse, Response
from stellate.types import Message, Receive, Scope, Send

pytestmark = pytest.mark.anyio


class Base(Exception):
    pass


class Child(Base):
    pass


class Grandchild(Child):
    pass


class NotFound(HTTPException):
    def __init__(self) -> None:
        super().__init__(404, "custom not found")


def http_scope(handlers: Any = None) -> Scope:
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    if handlers is not None:
        context_of(scope).exception_handlers = handlers
    return scope


async def run(app: Any, scope: Scope) -> list[Message]:
    sent: list[Message] = []
    request_sent = False

    async def receive() -> Message:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await wrap_app_handling_exceptions(app, Request(scope))(scope, receive, send)
    return sent


async def receive_nothing() -> Message:
    raise AssertionError("a response does not receive")  # pragma: no cover


async def receive_forever() -> Message:
    await anyio.sleep_forever()
    raise AssertionError("unreachable")  # pragma: no cover


def raising(exc: BaseException) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise exc

    return app


def named(text: str, status_code: int = 200) -> Any:
    async def handler(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(f"{text}: {type(exc).__name__}", status_code=status_code)

    return handler


def body_of(messages: list[Message]) -> tuple[int, bytes]:
    assert messages[0]["type"] == "http.response.start"
    body = b"".join(m.get("body", b"") for m in messages[1:])
    return messages[0]["status"], body


# --- lookup ------------------------------------------------------------------------------


def test_lookup_walks_the_mro_most_specific_first() -> None:
    handlers = {Base: "base", Child: "child"}
    assert lookup_handler(Grandchild(), handlers, {}) == "child"
    assert lookup_handler(Child(), handlers, {}) == "child"
    assert lookup_handler(Base(), handlers, {}) == "base"
    assert lookup_handler(ValueError(), handlers, {}) is None


def test_lookup_prefers_the_status_code_for_http_exceptions() -> None:
    handlers = {NotFound: "by-class", HTTPException: "generic"}
    assert lookup_handler(NotFound(), handlers, {404: "by-status"}) == "by-status"
    assert lookup_handler(NotFound(), handlers, {500: "other"}) == "by-class"
    assert lookup_handler(HTTPException(418), handlers, {404: "by-status"}) == "generic"


def test_status_handlers_do_not_apply_to_other_exceptions() -> None:
    # An exception that merely has a status_code attribute is not an HTTPException.
    class Impostor(Exception):
        status_code = 404

    assert lookup_handler(Impostor(), {}, {404: "by-status"}) is None


@pytest.mark.parametrize("key", [404, 599, ValueError, HTTPException, KeyboardInterrupt])
def test_check_handler_key_accepts_codes_and_exception_classes(key: Any) -> None:
    check_handler_key(key)


@pytest.mark.parametrize("key", ["404", 404.0, True, object, ValueError(), None])
def test_check_handler_key_rejects_keys_that_never_match(key: Any) -> None:
    with pytest.raises(TypeError, match="status code"):
        check_handler_key(key)


# --- wrapping ----------------------------------------------------------------------------


async def test_handled_exception_sends_the_handler_response() -> None:
    scope = http_scope(({Child: named("child", 409)}, {}))
    messages = await run(raising(Grandchild()), scope)
    assert body_of(messages) == (409, b"child: Grandchild")


async def test_status_handler_wins_over_class_handler() -> None:
    scope = http_scope(({NotFound: named("class")}, {404: named("status", 404)}))
    assert body_of(await run(raising(NotFound()), scope)) == (404, b"status: NotFound")


async def test_unhandled_exception_is_reraised_unchanged() -> None:
    error = ValueError("boom")
    scope = http_scope(({Child: named("child")}, {}))
    with pytest.raises(ValueError) as info:
        await run(raising(error), scope)
    assert info.value is error


async def test_without_registered_handlers_everything_propagates() -> None:
    with pytest.raises(HTTPException):
        await run(raising(HTTPException(404)), http_scope())


async def test_app_that_succeeds_is_untouched() -> None:
    scope = http_scope(({Exception: named("never")}, {}))
    messages = await run(PlainTextResponse("fine"), scope)
    assert body_of(messages) == (200, b"fine")


async def test_sync_handler_runs_in_a_worker_thread() -> None:
    threads: list[int] = []

    def handler(request: Request, exc: Exception) -> Response:
        threads.append(threading.get_ident())
        return PlainTextResponse("sync", status_code=422)

    scope = http_scope(({Base: handler}, {}))
    assert body_of(await run(raising(Base()), scope)) == (422, b"sync")
    assert threads
    assert threads[0] != threading.get_ident()


async def test_handler_gets_the_connection_and_the_exception() -> None:
    seen: list[Any] = []

    async def handler(request: Request, exc: Exception) -> Response:
        seen.extend([request, exc])
        return Response(status_code=400)

    error = Child()
    scope = http_scope(({Base: handler}, {}))
    conn = Request(scope)

    async def receive() -> Message:  # pragma: no cover - never called
        raise AssertionError

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await wrap_app_handling_exceptions(raising(error), conn)(scope, receive, send)
    assert seen == [conn, error]
    assert sent[0]["status"] == 400


async def test_exception_after_response_started_is_a_runtime_error() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise Child("late")

    scope = http_scope(({Base: named("base")}, {}))
    with pytest.raises(RuntimeError, match="already started") as info:
        await run(app, scope)
    assert isinstance(info.value.__cause__, Child)


async def test_unhandled_exception_after_start_is_reraised_as_itself() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise ValueError("late")

    with pytest.raises(ValueError, match="late"):
        await run(app, http_scope(({Base: named("base")}, {})))


async def test_nested_layers_share_one_tracker_and_every_one_sees_the_start() -> None:
    seen: list[Send] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(send)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise Child("late")

    async def middle(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(send)
        await wrap_app_handling_exceptions(app, Request(scope))(scope, receive, send)

    # The inner layer refuses to answer Child; the outer one has a handler for that
    # refusal, and must refuse too, since it saw the start go through.
    handlers = {Base: named("base"), RuntimeError: named("runtime")}
    with pytest.raises(RuntimeError, match="already started") as info:
        await run(middle, http_scope((handlers, {})))
    assert isinstance(info.value.__cause__, RuntimeError)  # the inner layer's refusal
    assert isinstance(info.value.__cause__.__cause__, Child)
    assert isinstance(seen[0], StartTrackingSend)
    assert seen[1] is seen[0]  # one tracker, not one wrapper per layer


async def test_a_layer_below_a_send_wrapping_middleware_tracks_what_it_sent() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise Child("early")

    async def buffering(scope: Scope, receive: Receive, send: Send) -> None:
        # A middleware that holds the start back: the outer tracker sees nothing yet.
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        inner = track_start(hold)
        assert inner is not send
        await wrap_app_handling_exceptions(app, Request(scope))(scope, receive, inner)
        for message in held:
            await send(message)

    status, body = body_of(await run(buffering, http_scope(({Base: named("base")}, {}))))
    assert (status, body) == (200, b"base: Child")


async def test_tracker_forwards_every_message_and_flags_only_the_start() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    tracker = track_start(send)
    assert track_start(tracker) is tracker
    await tracker({"type": "http.response.informational", "status": 103, "headers": []})
    assert not tracker.started
    await tracker({"type": "http.response.start", "status": 200, "headers": []})
    assert tracker.started
    assert [m["type"] for m in sent] == ["http.response.informational", "http.response.start"]


async def test_a_response_marks_the_tracker_started_and_sends_past_it() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    tracker = track_start(send)
    await PlainTextResponse("hi")(http_scope(), receive_nothing, tracker)
    assert tracker.started
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]


async def test_an_error_after_a_response_went_out_is_not_answered_again() -> None:
    from stellate.background import BackgroundTask

    def fail() -> None:
        raise Child("in the background")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("done", background=BackgroundTask(fail))(scope, receive, send)

    with pytest.raises(RuntimeError, match="already started") as info:
        await run(app, http_scope(({Base: named("base")}, {})))
    assert isinstance(info.value.__cause__, Child)


async def test_a_stream_failing_midway_is_known_to_have_started() -> None:
    from stellate.responses import StreamingResponse

    async def chunks() -> Any:
        yield "first"
        raise Child("midway")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await StreamingResponse(chunks())(scope, receive, send)

    sent: list[Message] = []
    scope = http_scope(({Base: named("base")}, {}))

    async def send(message: Message) -> None:
        sent.append(message)

    tracker = track_start(send)
    with anyio.fail_after(5), pytest.raises(RuntimeError, match="already started") as info:
        await wrap_app_handling_exceptions(app, Request(scope))(scope, receive_forever, tracker)
    assert isinstance(info.value.__cause__, Child)
    assert tracker.started
    assert [m.get("body") for m in sent[1:]] == [b"first"]


async def test_handler_returning_none_is_a_clear_type_error() -> None:
    async def handler(request: Request, exc: Exception) -> None:
        return None

    scope = http_scope(({Base: handler}, {}))
    with pytest.raises(TypeError, match="returned None") as info:
        await run(raising(Base()), scope)
    assert isinstance(info.value.__cause__, Base)


async def test_cancellation_is_not_handled() -> None:
    handled: list[Exception] = []

    async def handler(request: Request, exc: Exception) -> Response:  # pragma: no cover
        handled.append(exc)
        return Response()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await anyio.sleep_forever()

    scope = http_scope(({Exception: handler}, {}))
    with anyio.move_on_after(0) as cancel_scope:
        await run(app, scope)
    assert cancel_scope.cancelled_caught
    assert handled == []


async def test_websocket_handler_is_awaited_and_nothing_else_is_sent() -> None:
    from stellate.websockets import WebSocket

    calls: list[tuple[Any, Exception]] = []

    async def handler(websocket: WebSocket, exc: Exception) -> None:
        calls.append((websocket, exc))
        await websocket.send({"type": "websocket.close", "code": 4001, "reason": ""})

    scope: Scope = {
        "type": "websocket",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [],
    }
    context_of(scope).exception_handlers = ({Base: handler}, {})
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    websocket = WebSocket(scope, receive, send)
    error = Child()
    with anyio.fail_after(5):
        await wrap_app_handling_exceptions(raising(error), websocket)(scope, receive, send)
    assert calls == [(websocket, error)]
    assert sent == [{"type": "websocket.close", "code": 4001, "reason": ""}]


async def test_sync_websocket_handler_runs_in_a_thread() -> None:
    from stellate.websockets import WebSocket

    threads: list[int] = []

    def handler(websocket: WebSocket, exc: Exception) -> None:
        threads.append(threading.get_ident())

    scope: Scope = {
        "type": "websocket",
        "path": "/",
        "headers": [],
    }
    context_of(scope).exception_handlers = ({Base: handler}, {})

    async def receive() -> Message:  # pragma: no cover - never called
        raise AssertionError

    async def send(message: Message) -> None:  # pragma: no cover - never called
        raise AssertionError

    websocket = WebSocket(scope, receive, send)
    await wrap_app_handling_exceptions(raising(Base()), websocket)(scope, receive, send)
    assert len(threads) == 1
    assert threads[0] != threading.get_ident()


# -- through an application and the TestClient (both backends) --------------------------------


def _app(routes: list[Any], handlers: Any = None) -> Any:
    from stellate.applications import Stellate

    return Stellate(routes=routes, exception_handlers=handlers)


def test_handled_exception_after_the_start_has_starlettes_message(
    test_client_factory: Any,
) -> None:
    from stellate.responses import StreamingResponse
    from stellate.routing import Route

    async def chunks() -> Any:
        yield b"started;"
        raise HTTPException(409)

    async def endpoint(request: Request) -> Response:
        return StreamingResponse(chunks())

    app = _app([Route("/", endpoint)])
    with pytest.raises(RuntimeError) as info:
        test_client_factory(app).get("/")
    assert str(info.value) == "Caught handled exception, but response already started."
    assert isinstance(info.value.__cause__, HTTPException)
    response = test_client_factory(app, raise_server_exceptions=False).get("/")
    assert (response.status_code, response.text) == (200, "started;")


class Shared(Exception):
    pass


def test_a_shared_handled_instance_does_not_keep_its_traceback(test_client_factory: Any) -> None:
    """One instance raised by every request: its traceback must not grow (nor be kept)."""
    from stellate.routing import Route

    not_found = HTTPException(404, "gone")
    shared = Shared()
    unhandled = LookupError("no handler")

    async def endpoint(request: Request) -> Response:
        raise {"404": not_found, "shared": shared, "unhandled": unhandled}[request.url.path[1:]]

    async def on_shared(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("shared", status_code=418)

    routes = [Route("/{name}", endpoint)]
    client = test_client_factory(_app(routes, {Shared: on_shared}))
    for _ in range(3):
        assert client.get("/404").status_code == 404
        assert not_found.__traceback__ is None
        assert client.get("/shared").status_code == 418
        assert shared.__traceback__ is None
    with pytest.raises(LookupError):
        client.get("/unhandled")
    assert unhandled.__traceback__ is not None  # no handler: kept for the report


def test_a_shared_websocket_exception_does_not_keep_its_traceback(
    test_client_factory: Any,
) -> None:
    from stellate.exceptions import WebSocketException
    from stellate.routing import WebSocketRoute
    from stellate.websockets import WebSocket, WebSocketDisconnect

    refused = WebSocketException(4001, "no")

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        raise refused

    client = test_client_factory(_app([WebSocketRoute("/ws", endpoint)]))
    for _ in range(3):
        with client.websocket_connect("/ws") as session, pytest.raises(WebSocketDisconnect):
            session.receive_text()
        assert refused.__traceback__ is None


@pytest.mark.parametrize("key", [HTTPException, 401])
def test_a_websocket_handlers_response_is_the_denial_response(
    test_client_factory: Any, key: Any
) -> None:
    from stellate.responses import JSONResponse
    from stellate.routing import WebSocketRoute
    from stellate.testclient import WebSocketDenialResponse
    from stellate.websockets import WebSocket

    async def endpoint(websocket: WebSocket) -> None:
        raise HTTPException(401)

    async def login_required(conn: Any, exc: Exception) -> Response:
        headers = {"WWW-Authenticate": "Bearer"}
        return JSONResponse({"error": "login required"}, status_code=401, headers=headers)

    client = test_client_factory(_app([WebSocketRoute("/ws", endpoint)], {key: login_required}))
    with pytest.raises(WebSocketDenialResponse) as info, client.websocket_connect("/ws"):
        pass  # pragma: no cover - the handshake is refused
    assert info.value.status_code == 401
    assert info.value.headers["www-authenticate"] == "Bearer"
    assert info.value.json() == {"error": "login required"}


def test_a_websocket_handler_returning_none_sends_nothing_itself(
    test_client_factory: Any,
) -> None:
    from stellate.routing import WebSocketRoute
    from stellate.websockets import WebSocket, WebSocketDisconnect

    async def endpoint(websocket: WebSocket) -> None:
        raise Shared()

    async def closing(websocket: WebSocket, exc: Exception) -> None:
        await websocket.close(code=4003)

    client = test_client_factory(_app([WebSocketRoute("/ws", endpoint)], {Shared: closing}))
    with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect("/ws"):
        pass  # pragma: no cover - the handshake is refused
    assert info.value.code == 4003


async def _run_websocket(app: Any, extensions: dict[str, Any]) -> list[Message]:
    from stellate.middleware.exceptions import ExceptionMiddleware

    scope: Scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "root_path": "",
        "headers": [],
        "server": ("testserver", 80),
        "subprotocols": [],
        "extensions": extensions,
    }
    incoming = [{"type": "websocket.connect"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    async def answer(conn: Any, exc: Exception) -> Response:
        return PlainTextResponse("login required", status_code=401)

    middleware = ExceptionMiddleware(app, handlers={Shared: answer})
    with anyio.fail_after(5):
        await middleware(scope, receive, send)
    return sent


async def test_a_websocket_handlers_response_without_the_denial_extension_is_a_close() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise Shared()

    sent = await _run_websocket(app, extensions={})
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": ""}]
    sent = await _run_websocket(app, extensions={"websocket.http.response": {}})
    assert [(m["type"], m.get("status")) for m in sent] == [
        ("websocket.http.response.start", 401),
        ("websocket.http.response.body", None),
    ]


async def test_a_websocket_handlers_response_after_accept_cannot_be_sent() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        raise Shared()

    with pytest.raises(RuntimeError) as info:
        await _run_websocket(app, extensions={"websocket.http.response": {}})
    assert str(info.value) == "Caught handled exception, but response already started."
    assert isinstance(info.value.__cause__, Shared)
