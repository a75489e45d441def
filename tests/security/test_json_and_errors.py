"""JSON bombs and error pages.

* ``request.json()`` on a hostile body (nesting a hundred thousand deep, numbers of
  thousands of digits, invalid UTF-8) raises ``ValueError`` the handler can catch; it
  never escapes as RecursionError or a crash, and a handler that does not catch it gets
  a plain 500.
* With ``debug=False`` (the default) no error page shows a traceback, the exception's
  text, a local variable or the request path: the body of a 500 is exactly
  ``Internal Server Error``, for browsers too. 404 and 405 do not echo the path.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from tests.security._asgi import call

from stellate.applications import Stellate
from stellate.exceptions import HTTPException
from stellate.requests import Request
from stellate.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from stellate.routing import Route, WebSocketRoute
from stellate.websockets import WebSocket

Client = Callable[..., Any]
SECRET = "password=hunter2"


async def parse(request: Request) -> Response:
    try:
        data = await request.json()
    except ValueError as exc:
        return PlainTextResponse(f"bad JSON: {type(exc).__name__}", status_code=400)
    return JSONResponse({"type": type(data).__name__})


async def parse_uncaught(request: Request) -> Response:
    return JSONResponse({"type": type(await request.json()).__name__})


BOMBS = {
    "deep-arrays": b"[" * 100_000 + b"]" * 100_000,
    "deep-objects": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "unclosed": b"[" * 1_000_000,
    "mixed": b'[{"a":' * 50_000 + b"null" + b"}]" * 50_000,
    "huge-int": b"1" * 5_000,
    "huge-int-in-array": b"[" + b"9" * 100_000 + b"]",
    "negative-huge-int": b"-" + b"1" * 4301,
    "bad-utf8": b'{"a": "\xff\xfe"}',
    "utf8-encoded-surrogate": b'"\xed\xa0\x80"',  # not UTF-8 (RFC 3629 §3)
    "empty": b"",
    "nul": b"\x00",
}


def json_app() -> Stellate:
    return Stellate(
        routes=[
            Route("/json", parse, methods=["POST"]),
            Route("/uncaught", parse_uncaught, methods=["POST"]),
        ]
    )


@pytest.mark.anyio
@pytest.mark.parametrize("name", list(BOMBS))
async def test_json_bombs_raise_a_catchable_value_error(anyio_backend: str, name: str) -> None:
    answer = await call(json_app(), "/json", method="POST", body=BOMBS[name])
    assert answer.status == 400, (name, answer.status, answer.body[:200])
    assert answer.body.startswith(b"bad JSON: ")


@pytest.mark.anyio
@pytest.mark.parametrize("name", ["deep-arrays", "huge-int"])
async def test_uncaught_json_errors_are_a_plain_500(anyio_backend: str, name: str) -> None:
    app = json_app()
    with pytest.raises(ValueError):  # the server sees the error; the client does not
        await call(app, "/uncaught", method="POST", body=BOMBS[name])


@pytest.mark.anyio
async def test_big_but_sane_json_still_parses(anyio_backend: str) -> None:
    """The limits are on abuse, not on size: 500-deep nesting and 4000-digit ints pass."""
    app = json_app()
    deep = await call(app, "/json", method="POST", body=b"[" * 500 + b"]" * 500)
    assert deep.body == b'{"type":"list"}'
    number = await call(app, "/json", method="POST", body=b"7" * 4000)
    assert number.body == b'{"type":"int"}'


# -- error pages ---------------------------------------------------------------------


async def crash(request: Request) -> Response:
    token = SECRET  # a local variable a debug page would show
    raise RuntimeError(f"database said {token} at {request.url.path}")


def crash_sync(request: Request) -> Response:
    raise KeyError(SECRET)


async def crash_in_group(request: Request) -> Response:
    raise ExceptionGroup("several", [ValueError(SECRET), TypeError(SECRET)])


async def crash_mid_stream(request: Request) -> Response:
    async def body() -> Any:
        yield b"partial "
        raise RuntimeError(SECRET)

    return StreamingResponse(body())


async def http_error(request: Request) -> Response:
    raise HTTPException(status_code=500)


async def ws_crash(websocket: WebSocket) -> None:
    await websocket.accept()
    raise RuntimeError(SECRET)


def error_app(debug: bool = False) -> Stellate:
    return Stellate(
        debug=debug,
        routes=[
            Route("/crash", crash),
            Route("/sync", crash_sync),
            Route("/group", crash_in_group),
            Route("/stream", crash_mid_stream),
            Route("/http", http_error),
            Route("/only-post", crash, methods=["POST"]),
            WebSocketRoute("/ws", ws_crash),
        ],
    )


@pytest.mark.parametrize("accept", ["*/*", "text/html", "application/json", "text/plain"])
@pytest.mark.parametrize("path", ["/crash", "/sync", "/group", "/http"])
def test_production_500_reveals_nothing(
    test_client_factory: Client, path: str, accept: str
) -> None:
    with test_client_factory(error_app(), raise_server_exceptions=False) as client:
        response = client.get(path + "?q=<script>", headers={"accept": accept})
    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    assert response.headers["content-type"].startswith("text/plain")


def test_error_after_the_response_started_sends_nothing_more(test_client_factory: Client) -> None:
    with test_client_factory(error_app(), raise_server_exceptions=False) as client:
        response = client.get("/stream")
    assert SECRET not in response.text
    assert "Traceback" not in response.text


def test_debug_true_is_the_only_way_to_the_traceback(test_client_factory: Client) -> None:
    """The control: with debug=True the same request does show the exception."""
    with test_client_factory(error_app(debug=True), raise_server_exceptions=False) as client:
        response = client.get("/crash", headers={"accept": "text/html"})
    assert response.status_code == 500
    assert SECRET in response.text


@pytest.mark.anyio
async def test_websocket_errors_reveal_nothing(anyio_backend: str) -> None:
    """The client sees a 1011 close with no reason; the server sees the error."""
    sent: list[dict[str, Any]] = []
    pending = [{"type": "websocket.connect"}]

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        await anyio.sleep_forever()
        raise AssertionError  # pragma: no cover

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "path": "/ws",
        "raw_path": b"/ws",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"x")],
        "scheme": "ws",
        "subprotocols": [],
        "state": {},
    }
    with anyio.fail_after(10), pytest.raises(RuntimeError):
        await error_app()(scope, receive, send)
    assert sent[0]["type"] == "websocket.accept"
    assert SECRET not in repr(sent)
    closes = [m for m in sent if m["type"] == "websocket.close"]
    assert all(m.get("code") == 1011 for m in closes), sent


@pytest.mark.parametrize(
    "path",
    ["/<script>alert(1)</script>", "/only-post", "/%3Cimg%20src=x%3E", "/" + SECRET],
)
def test_404_and_405_do_not_echo_the_path(test_client_factory: Client, path: str) -> None:
    with test_client_factory(error_app(), raise_server_exceptions=False) as client:
        response = client.get(path, headers={"accept": "text/html"})
    assert response.status_code in (404, 405)
    assert response.text in ("Not Found", "Method Not Allowed")


def test_a_json_error_body_is_not_html(test_client_factory: Client) -> None:
    """An app that echoes the parse error back must not be rendered as HTML by a browser."""
    with test_client_factory(json_app()) as client:
        response = client.post("/json", content=b"<script>" + BOMBS["deep-arrays"])
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert json.loads("[]") == []
