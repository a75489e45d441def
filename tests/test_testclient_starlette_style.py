"""A test module written for Starlette's TestClient, with only its imports renamed.

Everything below the imports is what a Starlette 1.10 user writes (``starlette`` read as
``stellate``, ``Starlette`` as ``Stellate``): if this module needs any other change to pass,
the test client is not a drop-in replacement. It covers HTTP, streaming, WebSockets and
lifespan, on asyncio and on trio.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from stellate.applications import Stellate
from stellate.background import BackgroundTask
from stellate.endpoints import HTTPEndpoint, WebSocketEndpoint
from stellate.exceptions import HTTPException
from stellate.requests import Request
from stellate.responses import JSONResponse, PlainTextResponse, RedirectResponse, StreamingResponse
from stellate.routing import Route, WebSocketRoute
from stellate.testclient import ASGIInstance, TestClient
from stellate.types import Receive, Scope, Send
from stellate.websockets import WebSocket, WebSocketDisconnect


@pytest.fixture(params=["asyncio", "trio"])
def client_factory(request: pytest.FixtureRequest) -> Any:
    def factory(app: Any, **kwargs: Any) -> TestClient:
        return TestClient(app, backend=request.param, **kwargs)

    return factory


# --------------------------------------------------------------------------- the app

background_runs: list[str] = []


@contextlib.asynccontextmanager
async def lifespan(app: Stellate) -> AsyncIterator[dict[str, Any]]:
    yield {"db": "connected"}


async def homepage(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "db": request.state.db,
            "agent": request.headers["user-agent"],
            "host": request.url.hostname,
            "client": list(request.client) if request.client else None,
        }
    )


async def echo_body(request: Request) -> PlainTextResponse:
    return PlainTextResponse(await request.body())


async def set_cookie(request: Request) -> PlainTextResponse:
    response = PlainTextResponse("set")
    response.set_cookie("session", "abc")
    return response


async def read_cookie(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.cookies.get("session", "none"))


async def old(request: Request) -> RedirectResponse:
    return RedirectResponse(request.url_for("homepage"))


async def forbidden(request: Request) -> None:
    raise HTTPException(status_code=403, detail="nope")


async def crash(request: Request) -> None:
    raise RuntimeError("boom")


async def numbers(request: Request) -> StreamingResponse:
    async def generate() -> AsyncIterator[str]:
        for number in range(3):
            yield f"{number}\n"

    def record() -> None:
        background_runs.append("streamed")

    return StreamingResponse(generate(), media_type="text/plain", background=BackgroundTask(record))


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        await websocket.send_text(await websocket.receive_text())


async def greet(websocket: WebSocket) -> None:
    await websocket.accept(subprotocol="greeting")
    name = await websocket.receive_json()
    await websocket.send_json({"hello": name["name"], "db": websocket.state.db})
    await websocket.close(code=1000)


async def refuse(websocket: WebSocket) -> None:
    await websocket.close(code=4403)


class Ping(HTTPEndpoint):
    async def get(self, request: Request) -> PlainTextResponse:
        return PlainTextResponse("pong")


class Shout(WebSocketEndpoint):
    encoding = "text"

    async def on_receive(self, websocket: WebSocket, data: Any) -> None:
        await websocket.send_text(data.upper())


app = Stellate(
    routes=[
        Route("/", homepage, name="homepage"),
        Route("/echo", echo_body, methods=["POST"]),
        Route("/set-cookie", set_cookie),
        Route("/cookie", read_cookie),
        Route("/old", old),
        Route("/forbidden", forbidden),
        Route("/crash", crash),
        Route("/numbers", numbers),
        Route("/ping", Ping),
        WebSocketRoute("/ws", echo),
        WebSocketRoute("/greet", greet),
        WebSocketRoute("/refuse", refuse),
        WebSocketRoute("/shout", Shout),
    ],
    lifespan=lifespan,
)


# --------------------------------------------------------------------------- HTTP


def test_homepage(client_factory: Any) -> None:
    with client_factory(app) as client:
        response = client.get("/")
    assert response.status_code == 200
    assert response.json() == {
        "db": "connected",
        "agent": "testclient",
        "host": "testserver",
        "client": ["testclient", 50000],
    }


def test_custom_headers_base_url_and_client(client_factory: Any) -> None:
    client = client_factory(
        app,
        base_url="https://example.org",
        headers={"User-Agent": "pytest"},
        client=("10.0.0.1", 1234),
    )
    with client:
        data = client.get("/").json()
    assert data["agent"] == "pytest"
    assert data["host"] == "example.org"
    assert data["client"] == ["10.0.0.1", 1234]


def test_body_cookies_and_redirects(client_factory: Any) -> None:
    client = client_factory(app)
    assert client.post("/echo", content=b"payload").text == "payload"
    assert client.post("/echo", json={"a": 1}).json() == {"a": 1}
    client.get("/set-cookie")
    assert client.get("/cookie").text == "abc"
    with client:
        response = client.get("/old")
        assert response.history[0].status_code == 307
        assert response.url == "http://testserver/"
        assert client.get("/old", follow_redirects=False).status_code == 307


def test_http_exceptions_and_server_errors(client_factory: Any) -> None:
    client = client_factory(app)
    response = client.get("/forbidden")
    assert response.status_code == 403
    assert response.text == "nope"
    with pytest.raises(RuntimeError, match="boom"):
        client.get("/crash")
    lenient = client_factory(app, raise_server_exceptions=False)
    assert lenient.get("/crash").status_code == 500


def test_endpoint_class_as_the_app(client_factory: Any) -> None:
    assert client_factory(Ping).get("/").text == "pong"
    with client_factory(Shout).websocket_connect("/") as websocket:
        websocket.send_text("hi")
        assert websocket.receive_text() == "HI"


def test_asgi2_app(client_factory: Any) -> None:
    def asgi2(scope: Scope) -> ASGIInstance:
        async def instance(receive: Receive, send: Send) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"asgi2"})

        return instance

    assert client_factory(asgi2).get("/").text == "asgi2"


def test_app_without_response(client_factory: Any) -> None:
    async def silent(scope: Scope, receive: Receive, send: Send) -> None:
        pass

    with pytest.raises(AssertionError, match="TestClient did not receive any response"):
        client_factory(silent).get("/")


def test_timeout_is_deprecated(client_factory: Any) -> None:
    client = client_factory(app)
    with pytest.warns(Warning, match="You should not use the 'timeout' argument"):
        client.get("/ping", timeout=1)


# --------------------------------------------------------------------------- streaming


def test_streaming(client_factory: Any) -> None:
    background_runs.clear()
    with client_factory(app) as client:
        with client.stream("GET", "/numbers") as response:
            assert response.status_code == 200
            assert list(response.iter_lines()) == ["0", "1", "2"]
        assert background_runs == ["streamed"]


def test_stream_closed_after_first_chunk_still_runs_background(client_factory: Any) -> None:
    background_runs.clear()
    client = client_factory(app)
    with client.stream("GET", "/numbers") as response:
        assert next(response.iter_text()) == "0\n"
    response = client.get("/numbers")
    assert response.text == "0\n1\n2\n"
    assert background_runs == ["streamed"]


def test_raw_streaming_app(client_factory: Any) -> None:
    sent: list[int] = []

    async def ticker(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for tick in range(3):
            sent.append(tick)
            await send({"type": "http.response.body", "body": b"tick", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    with client_factory(ticker).stream("GET", "/") as response:
        assert b"".join(response.iter_raw()) == b"tick" * 3
    assert sent == [0, 1, 2]


# --------------------------------------------------------------------------- WebSockets


def test_websocket_echo_raises_disconnect_at_exit(client_factory: Any) -> None:
    client = client_factory(app)
    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/ws") as websocket:
        websocket.send_text("hello")
        assert websocket.receive_text() == "hello"


def test_websocket_json_subprotocol_and_state(client_factory: Any) -> None:
    with (
        client_factory(app) as client,
        client.websocket_connect("/greet", subprotocols=["greeting"]) as websocket,
    ):
        assert websocket.accepted_subprotocol == "greeting"
        websocket.send_json({"name": "Ada"})
        assert websocket.receive_json() == {"hello": "Ada", "db": "connected"}
        with pytest.raises(WebSocketDisconnect) as info:
            websocket.receive_text()
        assert info.value.code == 1000


def test_websocket_refused(client_factory: Any) -> None:
    with (
        pytest.raises(WebSocketDisconnect) as info,
        client_factory(app).websocket_connect("/refuse"),
    ):
        pass  # pragma: no cover
    assert info.value.code == 4403


def test_websocket_auth_header(client_factory: Any) -> None:
    async def whoami(scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        await websocket.accept()
        await websocket.send_text(websocket.headers.get("authorization", ""))
        await websocket.close()

    with client_factory(whoami).websocket_connect("/", auth=("user", "secret")) as websocket:
        assert websocket.receive_text().startswith("Basic ")


# --------------------------------------------------------------------------- lifespan


def test_lifespan_events_of_a_raw_app(client_factory: Any) -> None:
    events: list[str] = []

    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "lifespan"
        while True:
            message = await receive()
            events.append(message["type"])
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return

    with client_factory(raw):
        assert events == ["lifespan.startup"]
    assert events == ["lifespan.startup", "lifespan.shutdown"]


def test_lifespan_startup_error(client_factory: Any) -> None:
    @contextlib.asynccontextmanager
    async def broken(app: Stellate) -> AsyncIterator[None]:
        raise RuntimeError("no database")
        yield  # pragma: no cover

    with (
        pytest.raises(RuntimeError, match="no database"),
        client_factory(Stellate(lifespan=broken)),
    ):
        pass  # pragma: no cover


def test_lifespan_shared_event_loop(client_factory: Any) -> None:
    @contextlib.asynccontextmanager
    async def with_lock(app: Stellate) -> AsyncIterator[dict[str, Any]]:
        yield {"lock": anyio.Lock()}

    async def locked(request: Request) -> PlainTextResponse:
        async with request.state.lock:
            return PlainTextResponse("locked")

    locking_app = Stellate(routes=[Route("/", locked)], lifespan=with_lock)
    with client_factory(locking_app) as client:
        assert client.get("/").text == "locked"
        assert client.get("/").text == "locked"
