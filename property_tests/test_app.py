"""A sample application under LintMiddleware: random requests never give a 500, a protocol
violation or a hang, on asyncio and on trio.

The scopes, headers and bodies come from `stellate.testing.strategies`, so they include
adversarial headers (empty names, huge and non-ASCII values, a lying content-length),
malformed query strings and cookies, odd methods, percent-encoded paths, bodies cut
anywhere, and clients that disconnect mid-body.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stellate.applications import Stellate
from stellate.exceptions import HTTPException
from stellate.requests import ClientDisconnect, Request
from stellate.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from stellate.routing import Mount, Route, WebSocketRoute
from stellate.testing.lint import LintMiddleware
from stellate.testing.strategies import chunkings, http_scopes, websocket_scopes
from stellate.types import Message
from stellate.websockets import WebSocket

pytestmark = pytest.mark.anyio


async def home(request: Request) -> Response:
    return PlainTextResponse("home")


async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


async def info(request: Request) -> Response:
    return JSONResponse(
        {
            "url": str(request.url),
            "base_url": str(request.base_url),
            "item_url": str(request.url_for("item", item_id=3)),
            "query": request.query_params.multi_items(),
            "cookies": request.cookies,
            "headers": request.headers.items(),
            "path_params": request.path_params,
            "client": list(request.client) if request.client else None,
        }
    )


async def item(request: Request) -> Response:
    return PlainTextResponse(str(request.path_params["item_id"]))


async def stream(request: Request) -> Response:
    async def lines() -> AsyncIterator[str]:
        for number in range(3):
            yield f"{number}\n"

    return StreamingResponse(lines(), media_type="text/plain")


async def json_endpoint(request: Request) -> Response:
    try:
        data = await request.json()
    except ValueError:  # invalid JSON or invalid UTF-8: the client's fault
        raise HTTPException(400, "invalid JSON") from None
    return JSONResponse({"type": type(data).__name__})


async def redirect(request: Request) -> Response:
    return RedirectResponse(request.url_for("home"))


async def teapot(request: Request) -> Response:
    raise HTTPException(418)


async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await websocket.send_text(message["text"])
        else:
            await websocket.send_bytes(message["bytes"])


@contextlib.asynccontextmanager
async def lifespan(app: Stellate) -> AsyncIterator[dict[str, Any]]:
    yield {"started": True}


app = Stellate(
    routes=[
        Route("/", home, name="home"),
        Route("/echo", echo, methods=["POST", "PUT"]),
        Route("/info", info),
        Route("/items/{item_id:int}", item, name="item"),
        Route("/stream", stream),
        Route("/json", json_endpoint, methods=["POST"]),
        Route("/redirect", redirect),
        Route("/teapot", teapot),
        Mount("/sub", routes=[Route("/{name:str}", info), Route("/files/{rest:path}", info)]),
        WebSocketRoute("/ws", ws_echo),
    ],
    lifespan=lifespan,
)
linted = LintMiddleware(app)

APP_PATHS = [
    "/",
    "/echo",
    "/info",
    "/info/",
    "/items/1",
    "/items/x",
    "/stream",
    "/json",
    "/redirect",
    "/teapot",
    "/sub/x",
    "/sub/files/a/b",
    "/sub",
    "/nope",
    "/ws",
]
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "BREW"]
BODIES = st.one_of(
    st.binary(max_size=200),
    st.sampled_from([b'{"a": [1, 2]}', b"[]", b"{", b"\xff\xfe", b'"\\ud800"', b"1e999"]),
)


@st.composite
def http_requests(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    scope = draw(http_scopes(methods=st.sampled_from(METHODS)))
    path = draw(st.one_of(st.sampled_from(APP_PATHS), st.just(scope["path"])))
    if path != scope["path"]:
        scope["path"] = path
        scope["raw_path"] = path.encode("ascii")
    body = draw(BODIES)
    return scope, draw(chunkings(body, disconnect=None))


class FakeServer:
    """Replays request messages, then (like a real server) waits for the response to end
    before reporting the disconnect; records what the application sends."""

    def __init__(self, messages: list[dict[str, Any]]) -> None:
        self.queue = list(messages)
        self.sent: list[Message] = []
        self.done = anyio.Event()
        self.disconnected = False

    async def receive(self) -> Message:
        if self.disconnected:
            return {"type": "http.disconnect"}
        if self.queue:
            message = self.queue.pop(0)
            self.disconnected = message["type"] == "http.disconnect"
            return message
        await self.done.wait()
        self.disconnected = True
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.done.set()


@given(http_requests())
async def test_random_requests_never_fail(
    case: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    scope, messages = case
    server = FakeServer(messages)
    client_disconnects = messages[-1]["type"] == "http.disconnect"
    with anyio.fail_after(10):
        if client_disconnects:
            # The client is gone: whatever the app answers is lost, but it must still
            # follow the protocol, finish, and fail (if at all) only with ClientDisconnect.
            with contextlib.suppress(ClientDisconnect):
                await linted(scope, server.receive, server.send)
            return
        await linted(scope, server.receive, server.send)
    start = server.sent[0]
    assert start["type"] == "http.response.start"
    assert start["status"] < 500, (start, server.sent[1:])
    if scope["method"] == "HEAD":
        assert b"".join(m.get("body", b"") for m in server.sent[1:]) == b""


@st.composite
def websocket_sessions(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    scope = draw(websocket_scopes())
    if draw(st.booleans()):
        scope["path"], scope["raw_path"] = "/ws", b"/ws"
    frames = draw(
        st.lists(
            st.one_of(
                st.text(max_size=20).map(lambda text: {"type": "websocket.receive", "text": text}),
                st.binary(max_size=20).map(lambda raw: {"type": "websocket.receive", "bytes": raw}),
            ),
            max_size=4,
        )
    )
    code = draw(st.sampled_from([1000, 1001, 1006, 4000]))
    return scope, [
        {"type": "websocket.connect"},
        *frames,
        {"type": "websocket.disconnect", "code": code},
    ]


@given(websocket_sessions())
async def test_random_websocket_sessions_follow_the_protocol(
    case: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    scope, messages = case
    queue = list(messages)
    sent: list[Message] = []

    async def receive() -> Message:
        return queue.pop(0) if queue else {"type": "websocket.disconnect", "code": 1006}

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(10):
        await linted(scope, receive, send)
    if scope["path"] == "/ws":
        assert sent[0]["type"] == "websocket.accept"
        echoed = [m.get("text", m.get("bytes")) for m in sent[1:]]
        assert echoed == [m.get("text", m.get("bytes")) for m in messages[1:-1]]
    else:
        assert [m["type"] for m in sent] == ["websocket.close"]


async def test_lifespan_follows_the_protocol() -> None:
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[Message] = []
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(10):
        await linted(scope, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert scope["state"] == {"started": True}
