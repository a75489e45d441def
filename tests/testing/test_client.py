"""AsyncTestClient: the app runs in the test's own event loop (asyncio and trio)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
import trio

import stellate.testing
from stellate.testclient import WebSocketDenialResponse
from stellate.testing import AsyncTestClient
from stellate.testing.client import AsyncWebSocketTestSession
from stellate.types import Message, Receive, Scope, Send
from stellate.websockets import WebSocketDisconnect


class Boom(Exception):
    pass


async def send_response(send: Send, body: bytes = b"", status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def scope_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append([message["body"].decode(), message["more_body"]])
        if not message["more_body"]:
            break
    data = {
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode(),
        "query_string": scope["query_string"].decode(),
        "scheme": scope["scheme"],
        "server": list(scope["server"]),
        "client": list(scope["client"]),
        "root_path": scope["root_path"],
        "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
        "chunks": chunks,
        "state": scope["state"],
    }
    await send_response(send, json.dumps(data).encode())


def lifespan_app(events: list[str]) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                events.append(message["type"])
                phase = message["type"].split(".")[1]
                if phase == "startup":
                    scope["state"]["ready"] = True
                await send({"type": f"lifespan.{phase}.complete"})
                if phase == "shutdown":
                    return
        await scope_app(scope, receive, send)

    return app


def test_exported_lazily() -> None:
    assert stellate.testing.AsyncTestClient is AsyncTestClient
    with pytest.raises(AttributeError, match="nope"):
        stellate.testing.nope  # noqa: B018


@pytest.mark.anyio
async def test_scope_without_async_with(anyio_backend: str) -> None:
    client = AsyncTestClient(
        scope_app, base_url="https://example.org:8443", root_path="/r", client=("9.9.9.9", 9)
    )
    response = await client.get("/a%2Fb%20c?q=%C3%A9", headers={"X-A": "1"})
    assert response.status_code == 200
    data = response.json()
    assert data["path"] == "/a/b c"
    assert data["raw_path"] == "/a%2Fb%20c"
    assert data["query_string"] == "q=%C3%A9"
    assert data["scheme"] == "https"
    assert data["server"] == ["example.org", 8443]
    assert data["client"] == ["9.9.9.9", 9]
    assert data["root_path"] == "/r"
    assert data["headers"]["host"] == "example.org:8443"
    assert data["headers"]["user-agent"] == "testclient"
    assert data["headers"]["x-a"] == "1"


@pytest.mark.anyio
async def test_async_chunked_body(anyio_backend: str) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"one"
        yield b"two"

    async with AsyncTestClient(scope_app) as client:
        data = (await client.post("/", content=chunks())).json()
    assert data["chunks"] == [["onetwo", False]]


@pytest.mark.anyio
async def test_lifespan_and_state(anyio_backend: str) -> None:
    events: list[str] = []
    client = AsyncTestClient(lifespan_app(events))
    async with client:
        assert events == ["lifespan.startup"]
        assert (await client.get("/")).json()["state"] == {"ready": True}
    assert events == ["lifespan.startup", "lifespan.shutdown"]
    # outside `async with`, no lifespan: the state is empty
    fresh = AsyncTestClient(lifespan_app(events))
    assert (await fresh.get("/")).json()["state"] == {}
    assert events == ["lifespan.startup", "lifespan.shutdown"]


@pytest.mark.anyio
async def test_lifespan_startup_failure_is_raised(anyio_backend: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "x"})
        raise Boom("startup")

    with pytest.raises(Boom, match="startup"):
        async with AsyncTestClient(app):
            pass  # pragma: no cover


@pytest.mark.anyio
async def test_lifespan_shutdown_failure_without_error_is_accepted(anyio_backend: str) -> None:
    # As in Starlette: a shutdown failure the app does not raise ends the block quietly.
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.failed", "message": "stuck"})

    async with AsyncTestClient(app):
        pass


@pytest.mark.anyio
async def test_cookies_and_redirects(anyio_backend: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/login":
            await send(
                {
                    "type": "http.response.start",
                    "status": 303,
                    "headers": [(b"set-cookie", b"sid=1"), (b"location", b"/home")],
                }
            )
            await send({"type": "http.response.body"})
            return
        await send_response(send, dict(scope["headers"]).get(b"cookie", b"none"))

    client = AsyncTestClient(app)
    response = await client.post("/login")
    assert response.status_code == 200
    assert response.text == "sid=1"
    assert (await client.get("/other")).text == "sid=1"
    no_follow = AsyncTestClient(app, follow_redirects=False, cookies={"c": "2"})
    response = await no_follow.post("/login")
    assert response.status_code == 303
    assert (await no_follow.get("/x")).text == "c=2; sid=1"


@pytest.mark.anyio
async def test_raise_server_exceptions(anyio_backend: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        if scope["path"] == "/late":
            await send({"type": "http.response.start", "status": 200, "headers": []})
        raise Boom(scope["path"])

    with pytest.raises(Boom, match="/early"):
        await AsyncTestClient(app).get("/early")
    async with AsyncTestClient(app) as client:
        with pytest.raises(Boom, match="/early"):
            await client.get("/early")
        with pytest.raises(Boom, match="/late"):
            await client.get("/late")
    lenient = AsyncTestClient(app, raise_server_exceptions=False)
    assert (await lenient.get("/early")).status_code == 500
    assert (await lenient.get("/late")).status_code == 200


@pytest.mark.anyio
async def test_app_that_sends_nothing(anyio_backend: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        return None

    with pytest.raises(AssertionError, match=r"^TestClient did not receive any response\.$"):
        await AsyncTestClient(app).get("/")


@pytest.mark.anyio
async def test_debug_info(anyio_backend: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        info = {"template": "t.html", "context": {"x": 1}}
        await send({"type": "http.response.debug", "info": info})
        await send_response(send)

    async with AsyncTestClient(app) as client:
        response = await client.get("/")
    assert response.template == "t.html"  # type: ignore[attr-defined]
    assert response.context == {"x": 1}  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_stream_returns_early_and_close_cancels(anyio_backend: str) -> None:
    release = anyio.Event()
    outcome: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        with anyio.fail_after(10):
            await release.wait()
        try:
            while True:
                await send({"type": "http.response.body", "body": b"more", "more_body": True})
        except anyio.get_cancelled_exc_class():
            outcome.append("cancelled")
            raise

    async with AsyncTestClient(app) as client:
        async with (
            client.stream("GET", "/") as response,
            contextlib.aclosing(response.aiter_raw()) as chunks,
        ):
            assert await chunks.__anext__() == b"first"
            release.set()
            assert await chunks.__anext__() == b"more"
            assert outcome == []
        assert outcome == ["cancelled"]


@pytest.mark.anyio
async def test_unclosed_stream_is_cancelled_when_client_exits(anyio_backend: str) -> None:
    outcome: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            await anyio.sleep_forever()
        finally:
            outcome.append("ended")

    async with AsyncTestClient(app) as client:
        response = await client.send(client.build_request("GET", "/"), stream=True)
        assert response.status_code == 200
    assert outcome == ["ended"]


@pytest.mark.anyio
async def test_errors_of_responses_left_open_are_all_raised(anyio_backend: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise Boom(scope["path"])

    with pytest.raises(ExceptionGroup) as info:
        async with AsyncTestClient(app) as client:
            await client.send(client.build_request("GET", "/a"), stream=True)
            await client.send(client.build_request("GET", "/b"), stream=True)
    assert sorted(str(exc) for exc in info.value.exceptions) == ["/a", "/b"]


@pytest.mark.anyio
async def test_errors_of_the_test_pass_through(anyio_backend: str) -> None:
    group = ExceptionGroup("test's own", [Boom("a"), Boom("b")])
    with pytest.raises(ExceptionGroup) as info:
        async with AsyncTestClient(scope_app):
            raise group
    assert info.value.message == "test's own"
    assert [str(exc) for exc in info.value.exceptions] == ["a", "b"]
    with pytest.raises(Boom, match="single"):
        async with AsyncTestClient(scope_app):
            raise Boom("single")
    client = AsyncTestClient(scope_app)
    await client.__aexit__(None, None, None)  # leaving without entering does nothing


@pytest.mark.anyio
async def test_cancelled_request_cancels_the_app(anyio_backend: str) -> None:
    started = anyio.Event()
    outcome: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            outcome.append("ended")

    async with AsyncTestClient(app) as client, anyio.create_task_group() as group:
        group.start_soon(client.get, "/")
        await started.wait()
        group.cancel_scope.cancel()
    assert outcome == ["ended"]


# --------------------------------------------------------------------------- websockets


async def ws_app(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "websocket"
    await receive()
    await send(
        {
            "type": "websocket.accept",
            "subprotocol": (scope["subprotocols"] or [None])[-1],
            "headers": [(b"x-extra", b"yes")],
        }
    )
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "headers":
            headers = {k.decode(): v.decode() for k, v in scope["headers"]}
            await send({"type": "websocket.send", "text": json.dumps(headers)})
        elif message.get("text") == "close":
            await send({"type": "websocket.close", "code": 4000, "reason": "asked"})
        else:
            await send({"type": "websocket.send", **{k: message.get(k) for k in ("text", "bytes")}})


@pytest.mark.anyio
async def test_websocket_frames(anyio_backend: str) -> None:
    client = AsyncTestClient(ws_app)
    async with client.websocket_connect("/ws", ["a", "b"], headers={"X-H": "1"}) as session:
        assert isinstance(session, AsyncWebSocketTestSession)
        assert session.accepted_subprotocol == "b"
        assert session.extra_headers == [(b"x-extra", b"yes")]
        await session.send_text("hi")
        assert await session.receive_text() == "hi"
        await session.send_bytes(b"\x01")
        assert await session.receive_bytes() == b"\x01"
        await session.send_json({"k": ["v"]})
        assert await session.receive_json() == {"k": ["v"]}
        await session.send_json({"k": 1}, mode="binary")
        assert await session.receive_bytes() == b'{"k":1}'
        await session.send_json(None, mode="binary")
        assert await session.receive_json(mode="binary") is None
        await session.send_text("headers")
        headers = await session.receive_json()
        assert headers["x-h"] == "1"
        assert headers["sec-websocket-protocol"] == "a, b"
        await session.send_text("close")
        with pytest.raises(WebSocketDisconnect) as info:
            await session.receive_text()
        assert (info.value.code, info.value.reason) == (4000, "asked")


@pytest.mark.anyio
async def test_websocket_client_close(anyio_backend: str) -> None:
    received: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        received.append(await receive())

    async with AsyncTestClient(app).websocket_connect("/ws") as session:
        await session.close(3001, "later")
    assert received == [{"type": "websocket.disconnect", "code": 3001, "reason": "later"}]


@pytest.mark.anyio
async def test_websocket_denial(anyio_backend: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.http.response.start", "status": 403, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"nope"})

    with pytest.raises(WebSocketDenialResponse) as info:
        async with AsyncTestClient(app).websocket_connect("/ws"):
            pass  # pragma: no cover
    assert isinstance(info.value, httpx.Response)
    assert info.value.status_code == 403
    assert info.value.text == "nope"


@pytest.mark.anyio
async def test_websocket_close_before_accept(anyio_backend: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.close", "code": 1003})

    with pytest.raises(WebSocketDisconnect) as info:
        async with AsyncTestClient(app).websocket_connect("/ws"):
            pass  # pragma: no cover
    assert info.value.code == 1003


@pytest.mark.anyio
async def test_websocket_app_exception(anyio_backend: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        raise Boom("ws")

    async with AsyncTestClient(app).websocket_connect("/ws") as session:
        await session.send_text("x")
        with pytest.raises(Boom, match="ws"):
            await session.receive()
    with pytest.raises(Boom, match="ws"):
        async with AsyncTestClient(app).websocket_connect("/ws") as session:
            await session.send_text("x")


@pytest.mark.anyio
async def test_websocket_exit_cancels_stuck_app(anyio_backend: str) -> None:
    outcome: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            outcome.append("cancelled")
            raise

    async with AsyncTestClient(app).websocket_connect("/ws"):
        pass
    assert outcome == ["cancelled"]


@pytest.mark.trio
async def test_under_pytest_trio() -> None:
    events: list[str] = []
    async with AsyncTestClient(lifespan_app(events)) as client:
        response = await client.get("/trio?x=1")
        assert response.json()["query_string"] == "x=1"
        await trio.lowlevel.checkpoint()
    assert events == ["lifespan.startup", "lifespan.shutdown"]


async def streaming_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Streams until told the client left; answers lifespan with its state."""
    if scope["type"] == "lifespan":
        await lifespan_app([])(scope, receive, send)
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ready", "more_body": True})
    assert (await receive())["type"] == "http.request"
    await send({"type": "http.response.body", "body": b"!", "more_body": True})
    await send({"type": "http.response.body", "body": json.dumps(scope["state"]).encode()})


@pytest.fixture
async def entered_client(anyio_backend: str) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(streaming_app) as client:
        yield client


@pytest.mark.anyio
async def test_client_from_an_async_fixture(entered_client: AsyncTestClient) -> None:
    async with entered_client.stream("GET", "/") as response:
        assert [chunk async for chunk in response.aiter_raw()] == [
            b"ready",
            b"!",
            b'{"ready": true}',
        ]


@pytest.fixture
async def trio_client() -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(streaming_app) as client:
        yield client


@pytest.mark.trio
async def test_client_from_a_pytest_trio_fixture(trio_client: AsyncTestClient) -> None:
    async with trio_client.stream("GET", "/") as response:
        assert await response.aread() == b'ready!{"ready": true}'
