"""ExceptionMiddleware: default answers, registered handlers, scope publication."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from stellate._context import get_context
from stellate._exception_handling import handlers_of
from stellate.exceptions import HTTPException, WebSocketException
from stellate.middleware.exceptions import ExceptionMiddleware
from stellate.requests import Request
from stellate.responses import JSONResponse, PlainTextResponse, Response
from stellate.routing import Route, Router
from stellate.types import Message, Receive, Scope, Send

pytestmark = pytest.mark.anyio


def http_scope(method: str = "GET") -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


async def call(app: Any, scope: Scope) -> list[Message]:
    sent: list[Message] = []
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await app(scope, receive, send)
    return sent


def response_of(messages: list[Message]) -> tuple[int, dict[bytes, bytes], bytes]:
    start = messages[0]
    assert start["type"] == "http.response.start"
    body = b"".join(m.get("body", b"") for m in messages[1:])
    return start["status"], dict(start["headers"]), body


def raising(exc: BaseException) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise exc

    return app


async def test_http_exception_becomes_plain_text_with_status_and_headers() -> None:
    exc = HTTPException(429, "slow down", headers={"Retry-After": "30"})
    status, headers, body = response_of(await call(ExceptionMiddleware(raising(exc)), http_scope()))
    assert status == 429
    assert body == b"slow down"
    assert headers[b"retry-after"] == b"30"
    assert headers[b"content-type"] == b"text/plain; charset=utf-8"
    assert headers[b"content-length"] == b"9"


async def test_http_exception_default_detail_is_the_reason_phrase() -> None:
    status, _, body = response_of(
        await call(ExceptionMiddleware(raising(HTTPException(404))), http_scope())
    )
    assert (status, body) == (404, b"Not Found")


@pytest.mark.parametrize("status_code", [204, 304])
async def test_bodyless_statuses_get_no_body(status_code: int) -> None:
    exc = HTTPException(status_code, headers={"ETag": '"v1"'})
    status, headers, body = response_of(await call(ExceptionMiddleware(raising(exc)), http_scope()))
    assert status == status_code
    assert body == b""
    assert b"content-type" not in headers
    assert b"content-length" not in headers
    assert headers[b"etag"] == b'"v1"'


async def test_head_request_gets_headers_but_no_body() -> None:
    exc = HTTPException(400, "bad")
    messages = await call(ExceptionMiddleware(raising(exc)), http_scope("HEAD"))
    status, headers, body = response_of(messages)
    assert status == 400
    assert headers[b"content-length"] == b"3"
    assert body == b""


async def test_handlers_from_the_constructor_and_add_exception_handler() -> None:
    async def by_status(request: Request, exc: Exception) -> Response:
        return JSONResponse({"status": "custom"}, status_code=404)

    def by_class(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("value error", status_code=400)

    middleware = ExceptionMiddleware(raising(HTTPException(404)), handlers={404: by_status})
    _, _, body = response_of(await call(middleware, http_scope()))
    assert body == b'{"status":"custom"}'

    middleware = ExceptionMiddleware(raising(ValueError("x")))
    middleware.add_exception_handler(ValueError, by_class)
    assert response_of(await call(middleware, http_scope()))[::2] == (400, b"value error")


async def test_user_handler_for_http_exception_replaces_the_default() -> None:
    async def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return PlainTextResponse(f"custom {exc.status_code}", status_code=exc.status_code)

    middleware = ExceptionMiddleware(raising(HTTPException(403)), handlers={HTTPException: handler})
    assert response_of(await call(middleware, http_scope()))[::2] == (403, b"custom 403")


async def test_unhandled_exceptions_propagate() -> None:
    with pytest.raises(KeyError):
        await call(ExceptionMiddleware(raising(KeyError("k"))), http_scope())


def test_bad_handler_key_is_rejected_at_registration() -> None:
    with pytest.raises(TypeError, match="status code"):
        ExceptionMiddleware(raising(ValueError()), handlers={"404": lambda r, e: None})
    middleware = ExceptionMiddleware(raising(ValueError()))
    with pytest.raises(TypeError):
        middleware.add_exception_handler("ValueError", lambda r, e: None)  # type: ignore[arg-type]


async def test_handlers_are_published_in_the_scope() -> None:
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(handlers_of(scope))
        await PlainTextResponse("ok")(scope, receive, send)

    async def handler(request: Request, exc: Exception) -> Response:  # pragma: no cover
        return Response()

    middleware = ExceptionMiddleware(app, handlers={418: handler, KeyError: handler})
    await call(middleware, http_scope())
    exception_handlers, status_handlers = seen[0]
    assert status_handlers == {418: handler}
    assert exception_handlers[KeyError] is handler
    assert HTTPException in exception_handlers
    assert WebSocketException in exception_handlers


async def test_other_scope_types_pass_straight_through() -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)
        raise HTTPException(404)

    scope: Scope = {"type": "lifespan"}

    async def receive() -> Message:  # pragma: no cover - never called
        raise AssertionError

    async def send(message: Message) -> None:  # pragma: no cover - never called
        raise AssertionError

    # Not an HTTP connection: nothing can be answered, so the exception stays.
    with pytest.raises(HTTPException):
        await ExceptionMiddleware(app)(scope, receive, send)
    assert seen == [scope]
    assert get_context(scope) is None


async def test_http_exception_method_is_usable_directly() -> None:
    middleware = ExceptionMiddleware(raising(ValueError()))
    response = await middleware.http_exception(
        Request(http_scope()), HTTPException(401, "who?", {"WWW-Authenticate": "Basic"})
    )
    assert response.status_code == 401
    assert response.body == b"who?"
    assert response.headers["www-authenticate"] == "Basic"


def test_an_async_http_exception_override_answers_http_and_websocket(
    test_client_factory: Any,
) -> None:
    """Starlette's method is ``async def``: an async override awaiting super() works."""
    from stellate.routing import WebSocketRoute
    from stellate.testclient import WebSocketDenialResponse
    from stellate.websockets import WebSocket

    class Branded(ExceptionMiddleware):
        async def http_exception(self, request: Request, exc: Exception) -> Response:
            response = await super().http_exception(request, exc)
            response.headers["x-brand"] = "stellate"
            return response

    async def fail(request: Request) -> Response:
        raise HTTPException(403, "private")

    async def refuse(websocket: WebSocket) -> None:
        raise HTTPException(403, "private")

    router = Router([Route("/", fail), WebSocketRoute("/ws", refuse)])
    client = test_client_factory(Branded(router))
    response = client.get("/")
    assert (response.status_code, response.text) == (403, "private")
    assert response.headers["x-brand"] == "stellate"
    with pytest.raises(WebSocketDenialResponse) as info, client.websocket_connect("/ws"):
        pass  # pragma: no cover - the handshake is refused
    assert (info.value.status_code, info.value.text) == (403, "private")
    assert info.value.headers["x-brand"] == "stellate"


def test_a_sync_http_exception_override_still_works(test_client_factory: Any) -> None:
    class Plain(ExceptionMiddleware):
        def http_exception(  # type: ignore[override]
            self, request: Request, exc: Exception
        ) -> Response:
            return PlainTextResponse("sync override", status_code=418)

    async def fail(request: Request) -> Response:
        raise HTTPException(404)

    response = test_client_factory(Plain(Router([Route("/", fail)]))).get("/")
    assert (response.status_code, response.text) == (418, "sync override")


async def run_websocket(app: Any, extensions: dict[str, Any] | None = None) -> list[Message]:
    scope: Scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "root_path": "",
        "headers": [],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "subprotocols": [],
        "extensions": extensions or {},
    }
    sent: list[Message] = []
    connected = False

    async def receive() -> Message:
        nonlocal connected
        if not connected:
            connected = True
            return {"type": "websocket.connect"}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await ExceptionMiddleware(app)(scope, receive, send)
    return sent


async def test_websocket_exception_closes_with_code_and_reason() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        raise WebSocketException(4003, "not allowed")

    sent = await run_websocket(app)
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]
    assert sent[1] == {"type": "websocket.close", "code": 4003, "reason": "not allowed"}


async def test_websocket_exception_before_accept_closes_the_handshake() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise WebSocketException(1008)

    sent = await run_websocket(app)
    assert len(sent) == 1
    assert sent[0]["type"] == "websocket.close"
    assert sent[0]["code"] == 1008
    assert sent[0].get("reason", "") == ""


async def test_other_exceptions_on_websocket_propagate() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("ws broke")

    with pytest.raises(RuntimeError, match="ws broke"):
        await run_websocket(app)


@pytest.mark.parametrize(("status_code", "code"), [(403, 1008), (404, 1008), (503, 1011)])
async def test_http_exception_on_websocket_before_accept_closes(
    status_code: int, code: int
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise HTTPException(status_code, "nope")

    sent = await run_websocket(app)
    assert sent == [{"type": "websocket.close", "code": code, "reason": "nope"}]


async def test_http_exception_on_websocket_sends_a_denial_response_when_supported() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise HTTPException(401, "log in first", headers={"WWW-Authenticate": "Bearer"})

    sent = await run_websocket(app, extensions={"websocket.http.response": {}})
    assert [m["type"] for m in sent] == [
        "websocket.http.response.start",
        "websocket.http.response.body",
    ]
    assert sent[0]["status"] == 401
    assert (b"www-authenticate", b"Bearer") in sent[0]["headers"]
    assert sent[1]["body"] == b"log in first"


async def test_http_exception_after_accept_closes_with_a_policy_code() -> None:
    from stellate.routing import websocket_session
    from stellate.websockets import WebSocket

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        raise HTTPException(400, "bad message")

    sent = await run_websocket(
        websocket_session(endpoint), extensions={"websocket.http.response": {}}
    )
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]
    assert sent[1]["code"] == 1008
    assert sent[1]["reason"] == "bad message"


async def test_http_exception_after_close_sends_nothing_more() -> None:
    from stellate.routing import websocket_session
    from stellate.websockets import WebSocket

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close()
        raise HTTPException(500)

    sent = await run_websocket(websocket_session(endpoint))
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]
    assert sent[1]["code"] == 1000


async def test_middleware_level_handlers_know_the_app_accepted() -> None:
    # The app accepts with a raw message, not through the middleware's WebSocket object:
    # the default handler must not answer an open socket with a denial response.
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        raise HTTPException(403, "revoked")

    sent = await run_websocket(app, extensions={"websocket.http.response": {}})
    assert sent == [
        {"type": "websocket.accept"},
        {"type": "websocket.close", "code": 1008, "reason": "revoked"},
    ]


@pytest.mark.parametrize("exc", [WebSocketException(4000), HTTPException(400)])
async def test_nothing_is_sent_after_the_app_closed(exc: Exception) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.close", "code": 1000, "reason": ""})
        raise exc

    sent = await run_websocket(app)
    assert sent == [{"type": "websocket.close", "code": 1000, "reason": ""}]


async def test_nothing_is_sent_after_the_app_sent_a_denial_response() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "websocket.http.response.start", "status": 403, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"no"})
        raise WebSocketException(1008)

    sent = await run_websocket(app, extensions={"websocket.http.response": {}})
    assert [m["type"] for m in sent] == [
        "websocket.http.response.start",
        "websocket.http.response.body",
    ]


def test_default_answers_are_shared_only_where_nobody_can_change_them(
    test_client_factory: Any,
) -> None:
    from stellate.middleware import exceptions as module

    class Custom(ExceptionMiddleware):
        async def http_exception(self, request: Request, exc: Exception) -> Response:
            response = await super().http_exception(request, exc)
            response.headers["x-count"] = str(len(response.raw_headers))
            return response

    async def fail(request: Request) -> Response:
        detail = request.query_params.get("detail")
        headers = {"x-why": "test"} if "headers" in request.query_params else None
        raise HTTPException(418, detail=detail, headers=headers)

    router = Router([Route("/", fail)])
    for middleware_class in (ExceptionMiddleware, Custom):
        client = test_client_factory(middleware_class(router))
        for _ in range(3):  # an override's edits never pile up on a shared response
            response = client.get("/")
            assert response.status_code == 418
            assert response.text == "I'm a Teapot"
            if middleware_class is Custom:
                assert response.headers["x-count"] == "2"
        assert client.get("/?headers=1").headers["x-why"] == "test"
        assert "x-why" not in client.get("/").headers
    many = ExceptionMiddleware(router)
    client = test_client_factory(many)
    for n in range(100):  # details that vary per request are answered, and not all kept
        assert client.get(f"/?detail=no+{n}").text == f"no {n}"
    assert len(many._answers) <= module._ANSWERS_KEPT


async def test_a_shared_instance_answered_here_loses_its_traceback() -> None:
    """Raised outside any route (here, by the app itself) and answered by the middleware."""
    shared_http = HTTPException(401, "who?")
    for _ in range(3):
        assert (
            response_of(await call(ExceptionMiddleware(raising(shared_http)), http_scope()))[0]
            == 401
        )
        assert shared_http.__traceback__ is None
    shared_ws = WebSocketException(4001, "no")
    for _ in range(3):
        sent = await run_websocket(raising(shared_ws))
        assert sent == [{"type": "websocket.close", "code": 4001, "reason": "no"}]
        assert shared_ws.__traceback__ is None
