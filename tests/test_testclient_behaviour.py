"""TestClient and AsyncTestClient behave as Starlette 1.10's TestClient, cluster by cluster.

Each section is one cluster of Part 1 of the behaviour reference: what a test written for
Starlette's client observes. Every test runs on asyncio and on trio.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import textwrap
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import httpx
import pytest

from stellate.applications import Stellate
from stellate.endpoints import HTTPEndpoint, WebSocketEndpoint
from stellate.exceptions import StellateDeprecationWarning
from stellate.requests import Request
from stellate.responses import PlainTextResponse, RedirectResponse
from stellate.routing import Route, WebSocketRoute
from stellate.testclient import TestClient
from stellate.testing import AsyncTestClient
from stellate.testing.lint import LintMiddleware
from stellate.types import Message, Receive, Scope, Send
from stellate.websockets import WebSocket, WebSocketDisconnect

ClientFactory = Callable[..., TestClient]


class Boom(Exception):
    pass


async def start(send: Send, *, trailers: bool = False, status: int = 200) -> None:
    message: Message = {"type": "http.response.start", "status": status, "headers": []}
    if trailers:
        message["trailers"] = True
    await send(message)


async def body(send: Send, data: bytes = b"", *, more: bool = False) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": more})


async def trailers(send: Send, headers: list[tuple[bytes, bytes]], *, more: bool = False) -> None:
    await send({"type": "http.response.trailers", "headers": headers, "more_trailers": more})


async def answer_lifespan(receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "lifespan.startup.complete"})
    await receive()
    await send({"type": "lifespan.shutdown.complete"})


# --------------------------------------------------------------------------- public names


def test_asgi_type_aliases_are_importable() -> None:
    from stellate.testclient import ASGI2App, ASGI3App, ASGIInstance

    def asgi2(scope: Scope) -> ASGIInstance:
        async def instance(receive: Receive, send: Send) -> None:
            await start(send)
            await body(send, b"two")

        return instance

    typed: ASGI2App = asgi2
    assert ASGI3App is not None
    assert TestClient(typed).get("/").text == "two"  # type: ignore[arg-type]


def test_lifespan_task_and_streams_are_exposed(test_client_factory: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)

    with test_client_factory(app) as client:
        assert not client.task.done()
        assert hasattr(client.stream_send, "receive")
        assert hasattr(client.stream_receive, "send")
    assert client.task.done()


def test_websocket_session_exposes_its_portal(test_client_factory: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()

    with test_client_factory(app).websocket_connect("/") as session:
        assert session.portal is not None
        assert session.portal.call(anyio.lowlevel.checkpoint) is None


# --------------------------------------------------------------------------- trailers


def trailer_app(*groups: list[tuple[bytes, bytes]], fail: bool = False) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await start(send, trailers="http.response.trailers" in scope["extensions"])
        await body(send, b"data")
        for index, group in enumerate(groups):
            await trailers(send, group, more=index < len(groups) - 1)
            if fail:
                raise Boom("after trailers")

    return app


def test_trailers_are_exposed_as_an_extension(test_client_factory: ClientFactory) -> None:
    app = trailer_app([(b"x-checksum", b"abc")], [(b"x-more", b"1"), (b"x-checksum", b"def")])
    response = test_client_factory(app).get("/")
    assert response.content == b"data"
    assert response.extensions["http.response.trailers"] == [
        (b"x-checksum", b"abc"),
        (b"x-more", b"1"),
        (b"x-checksum", b"def"),
    ]
    assert "x-checksum" not in response.headers


def test_declared_trailers_without_any_give_an_empty_list(
    test_client_factory: ClientFactory,
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await start(send, trailers=True)
        await body(send, b"data")

    response = test_client_factory(app, raise_server_exceptions=False).get("/")
    assert response.extensions["http.response.trailers"] == []


def test_no_trailers_key_when_not_declared(test_client_factory: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await start(send)
        await body(send, b"data")

    assert "http.response.trailers" not in test_client_factory(app).get("/").extensions


def test_app_error_after_trailers_follows_raise_server_exceptions(
    test_client_factory: ClientFactory,
) -> None:
    app = trailer_app([(b"a", b"1")], [(b"b", b"2")], fail=True)
    with pytest.raises(Boom):
        test_client_factory(app).get("/")
    response = test_client_factory(app, raise_server_exceptions=False).get("/")
    assert response.content == b"data"
    assert response.extensions["http.response.trailers"] == [(b"a", b"1")]


def test_disconnect_only_after_the_final_trailers(test_client_factory: ClientFactory) -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await start(send, trailers=True)
        await body(send, b"data")
        async with anyio.create_task_group() as group:

            async def listen() -> None:
                seen.append((await receive())["type"])

            group.start_soon(listen)
            await anyio.wait_all_tasks_blocked()
            seen.append("before trailers")
            await trailers(send, [(b"t", b"1")])

    assert test_client_factory(app).get("/").extensions["http.response.trailers"] == [(b"t", b"1")]
    assert seen == ["before trailers", "http.disconnect"]


def test_closing_before_the_trailers_cancels_the_app(test_client_factory: ClientFactory) -> None:
    outcome: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await start(send, trailers=True)
        await body(send, b"data")
        try:
            await anyio.sleep_forever()  # computing the trailers
        finally:
            outcome.append("cancelled")

    with test_client_factory(app).stream("GET", "/") as response:
        assert next(response.iter_raw()) == b"data"
    assert outcome == ["cancelled"]
    assert response.extensions["http.response.trailers"] == []


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        (
            [
                {"type": "http.response.start", "status": 200},
                {"type": "http.response.body", "body": b""},
                {"type": "http.response.trailers", "headers": []},
            ],
            'Received "http.response.trailers" without declaring trailers.',
        ),
        (
            [
                {"type": "http.response.start", "status": 200, "trailers": True},
                {"type": "http.response.body", "body": b"", "more_body": True},
                {"type": "http.response.trailers", "headers": []},
            ],
            'Received "http.response.trailers" before body completed.',
        ),
        (
            [
                {"type": "http.response.start", "status": 200, "trailers": True},
                {"type": "http.response.body", "body": b""},
                {"type": "http.response.trailers", "headers": []},
                {"type": "http.response.trailers", "headers": []},
            ],
            'Received "http.response.trailers" after response completed.',
        ),
        (
            [
                {"type": "http.response.start", "status": 200, "trailers": True},
                {"type": "http.response.body", "body": b""},
                {"type": "http.response.body", "body": b""},
            ],
            'Received "http.response.body" after body completed.',
        ),
    ],
)
def test_trailer_sequence_errors(
    raw_test_client_factory: ClientFactory, messages: list[Message], error: str
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for message in messages:
            await send(message)

    with pytest.raises(AssertionError) as info:
        raw_test_client_factory(app).get("/")
    assert str(info.value) == error


# --------------------------------------------------------------------------- ASGI 2 / 3 apps


class Hello(HTTPEndpoint):
    async def get(self, request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"hello {request.url.path}")


class Echo(WebSocketEndpoint):
    encoding = "text"

    async def on_receive(self, websocket: WebSocket, data: Any) -> None:
        await websocket.send_text(f"echo {data}")


def test_endpoint_classes_are_asgi3_apps(test_client_factory: ClientFactory) -> None:
    assert test_client_factory(Hello).get("/x").text == "hello /x"
    with test_client_factory(Echo).websocket_connect("/") as session:
        session.send_text("hi")
        assert session.receive_text() == "echo hi"


def test_lint_middleware_treats_endpoint_classes_as_asgi3(
    raw_test_client_factory: ClientFactory,
) -> None:
    assert raw_test_client_factory(LintMiddleware(Hello)).get("/y").text == "hello /y"


# --------------------------------------------------------------------------- streaming


def app_working_after_the_response(gate: threading.Event, events: list[str]) -> Any:
    """Sends its whole response, then works on (like a background task) until ``gate``."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await start(send)
        await body(send, b"done")
        await anyio.to_thread.run_sync(gate.wait, abandon_on_cancel=True)
        events.append("background ran")
        if scope["path"] == "/fail":
            raise Boom("background failed")

    return app


def open_gate_soon(gate: threading.Event) -> None:
    """Open ``gate`` from another thread while the test is closing the response.

    The delay does not decide the outcome of a correct client (which waits for the app
    however long it takes); it only keeps the app busy while a wrong client would cancel it.
    """
    threading.Timer(0.2, gate.set).start()


def test_closing_a_received_stream_waits_for_the_app(test_client_factory: ClientFactory) -> None:
    gate, events = threading.Event(), []
    with test_client_factory(app_working_after_the_response(gate, events)).stream(
        "GET", "/"
    ) as response:
        assert next(response.iter_raw()) == b"done"
        assert events == []
        open_gate_soon(gate)
    assert events == ["background ran"]


def test_closing_a_received_stream_raises_a_late_error(
    test_client_factory: ClientFactory,
) -> None:
    gate, events = threading.Event(), []
    client = test_client_factory(app_working_after_the_response(gate, events))
    with pytest.raises(Boom, match="background failed"):
        try:
            raise KeyError("unrelated")
        except KeyError:
            with client.stream("GET", "/fail") as response:
                assert next(response.iter_raw()) == b"done"
                open_gate_soon(gate)


def test_empty_chunks_wait_for_the_reader(raw_test_client_factory: ClientFactory) -> None:
    # Raw client: the HEAD response sends body bytes, which the lint refuses.
    sent: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        await start(send)
        for index in range(5):
            sent.append(index)
            await body(send, b"" if scope["method"] == "GET" else b"x", more=True)
        await body(send)

    for method in ("GET", "HEAD"):
        sent.clear()
        with raw_test_client_factory(app) as client, client.stream(method, "/") as response:
            assert client.portal is not None
            client.portal.call(anyio.wait_all_tasks_blocked)
            assert sent == [0]
            assert response.read() == b""
            assert sent == [0, 1, 2, 3, 4]


def test_debug_extension_and_attributes(test_client_factory: ClientFactory) -> None:
    def app_sending(info: dict[str, Any]) -> Any:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await send({"type": "http.response.debug", "info": info})
            await start(send)
            await body(send)

        return app

    full = test_client_factory(app_sending({"template": "t.html", "context": {"a": 1}})).get("/")
    assert full.extensions["http.response.debug"] == {"template": "t.html", "context": {"a": 1}}
    context_only = test_client_factory(app_sending({"context": {"b": 2}})).get("/")
    assert context_only.context == {"b": 2}  # type: ignore[attr-defined]
    assert not hasattr(context_only, "template")
    template_only = test_client_factory(app_sending({"template": "u.html"})).get("/")
    assert template_only.template == "u.html"  # type: ignore[attr-defined]
    assert not hasattr(template_only, "context")


def test_request_body_is_one_message_read_lazily(test_client_factory: ClientFactory) -> None:
    consumed: list[bytes] = []

    def chunks() -> Iterator[bytes]:
        for chunk in (b"ab", b"cd"):
            consumed.append(chunk)
            yield chunk

    messages: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/read":
            messages.append(await receive())
        await start(send)
        await body(send)

    client = test_client_factory(app)
    client.post("/ignore", content=chunks())
    assert consumed == []
    client.post("/read", content=chunks())
    assert [(m["type"], m["body"], m.get("more_body", False)) for m in messages] == [
        ("http.request", b"abcd", False)
    ]


def test_client_close_ends_responses_left_open(test_client_factory: ClientFactory) -> None:
    outcome: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await start(send)
        try:
            await body(send, b"first", more=True)
            await anyio.sleep_forever()
        finally:
            outcome.append("ended")

    client = test_client_factory(app)
    response = client.send(client.build_request("GET", "/"), stream=True)
    client.close()
    assert outcome == ["ended"]
    with pytest.raises(RuntimeError, match="This portal is not running"):
        response.read()


# --------------------------------------------------------------------------- protocol errors


def test_unknown_send_messages_are_ignored(raw_test_client_factory: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.early_hint", "links": []})
        await start(send)
        await send({"type": "http.response.zerocopysend", "file": 0})
        await body(send, b"ok")

    assert raw_test_client_factory(app).get("/").text == "ok"


def test_late_app_error_has_no_end_of_stream_context(test_client_factory: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await start(send)
        await body(send, b"part", more=True)
        raise Boom("late")

    with pytest.raises(Boom) as info:
        test_client_factory(app).get("/")
    assert info.value.__context__ is None


# --------------------------------------------------------------------------- scope["server"]


async def server_app(scope: Scope, receive: Receive, send: Send) -> None:
    await start(send)
    await body(send, repr(scope["server"]).encode())


@pytest.mark.parametrize(
    ("base_url", "server"),
    [
        ("http://testserver:0", ["testserver", 0]),
        ("http://[::1]:0", ["::1", 0]),
        ("http://bücher.example", ["xn--bcher-kva.example", 80]),
        ("https://example.org", ["example.org", 443]),
    ],
)
def test_server_from_base_url(
    test_client_factory: ClientFactory, base_url: str, server: list[Any]
) -> None:
    assert test_client_factory(server_app, base_url=base_url).get("/").text == repr(server)


# --------------------------------------------------------------------------- websockets


async def header_ws(scope: Scope, receive: Receive, send: Send) -> None:
    """Accepts, sends the handshake's scope facts as text frames, then waits."""
    await receive()
    await send({"type": "websocket.accept"})
    facts = {
        "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
        "scheme": scope["scheme"],
        "server": list(scope["server"]),
        "path": scope["path"],
        "subprotocols": scope["subprotocols"],
    }
    await send({"type": "websocket.send", "text": repr(facts)})
    await receive()


def handshake_facts(client: TestClient, url: str, **kwargs: Any) -> dict[str, Any]:
    with client.websocket_connect(url, **kwargs) as session:
        facts: dict[str, Any] = eval(session.receive_text())  # our own repr
    return facts


def test_websocket_auth_and_follow_redirects(test_client_factory: ClientFactory) -> None:
    client = test_client_factory(header_ws)
    facts = handshake_facts(client, "/ws", auth=("user", "pass"), follow_redirects=False)
    token = base64.b64encode(b"user:pass").decode()
    assert ["authorization", f"Basic {token}"] in facts["headers"]


def test_websocket_handshake_ignores_base_url(test_client_factory: ClientFactory) -> None:
    client = test_client_factory(header_ws, base_url="https://example.org/prefix")
    facts = handshake_facts(client, "/ws")
    assert facts["scheme"] == "ws"
    assert facts["server"] == ["testserver", 80]
    assert facts["path"] == "/ws"
    assert ["host", "testserver"] in facts["headers"]


def test_websocket_handshake_headers(test_client_factory: ClientFactory) -> None:
    client = test_client_factory(header_ws)
    facts = handshake_facts(client, "/ws", subprotocols=["a", "b"], headers={"x-mine": "1"})
    names = [name for name, _ in facts["headers"]]
    assert "upgrade" not in names
    headers = dict(facts["headers"])
    assert headers["connection"] == "upgrade"
    assert headers["sec-websocket-key"] == "testserver=="
    assert headers["sec-websocket-version"] == "13"
    assert headers["sec-websocket-protocol"] == "a, b"
    assert names.index("x-mine") < names.index("sec-websocket-key")


def test_websocket_subprotocols_from_headers(test_client_factory: ClientFactory) -> None:
    client = test_client_factory(header_ws)
    facts = handshake_facts(client, "/ws", headers={"sec-websocket-protocol": "x, y"})
    assert facts["subprotocols"] == ["x", "y"]


def test_websocket_connect_to_http_url_is_not_upgraded(test_client_factory: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await start(send)
        await body(send, b"plain")

    with pytest.raises(RuntimeError, match="Expected WebSocket upgrade"):
        test_client_factory(app).websocket_connect("http://testserver/ws")


async def echo_endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        await websocket.send_text(await websocket.receive_text())


def test_leaving_a_session_reraises_the_app_disconnect(
    test_client_factory: ClientFactory,
) -> None:
    app = Stellate(routes=[WebSocketRoute("/ws", echo_endpoint)])
    client = test_client_factory(app)
    with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect("/ws") as session:
        session.send_text("hi")
        assert session.receive_text() == "hi"
    assert info.value.code == 1000
    with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect("/ws") as session:
        session.close(4001)
    assert info.value.code == 4001


def test_smaller_websocket_session_rules(test_client_factory: ClientFactory) -> None:
    received: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "bytes": b"b"})
        await send({"type": "websocket.send", "text": "t"})
        received.append(await receive())
        received.append(await receive())

    with test_client_factory(app).websocket_connect("/") as session:
        assert session.extra_headers is None
        with pytest.raises(KeyError, match="'text'"):
            session.receive_text()
        with pytest.raises(KeyError, match="'bytes'"):
            session.receive_bytes()
        session.close(4000)
        session.send_text("after close")
    assert received == [
        {"type": "websocket.disconnect", "code": 4000, "reason": None},
        {"type": "websocket.receive", "text": "after close"},
    ]


# --------------------------------------------------------------------------- lifespan


def test_shutdown_failed_without_error_exits_quietly(test_client_factory: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.failed", "message": "gone"})

    with test_client_factory(app):
        pass


def test_unexpected_lifespan_answer_is_an_assertion_error(
    raw_test_client_factory: ClientFactory,
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.startup.complete"})

    with pytest.raises(AssertionError), raw_test_client_factory(app):
        pass


# --------------------------------------------------------------------------- request options


def test_timeout_argument_warns(test_client_factory: ClientFactory) -> None:
    client = test_client_factory(server_app)
    for call in (
        lambda: client.get("/", timeout=None),
        lambda: client.post("/", timeout=5),
        lambda: client.request("DELETE", "/", timeout=1.0),
    ):
        with pytest.warns(StellateDeprecationWarning) as record:
            assert call().status_code == 200
        message = str(record[0].message)
        assert message.startswith("You should not use the 'timeout' argument with the TestClient.")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client.get("/")
        with client.stream("GET", "/", timeout=1) as response:
            response.read()


def test_user_agent_in_any_case_replaces_the_default(test_client_factory: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        agents = [v for k, v in scope["headers"] if k == b"user-agent"]
        await start(send)
        await body(send, b",".join(agents))

    client = test_client_factory(app, headers={"User-Agent": "mine"})
    assert client.get("/").text == "mine"


# --------------------------------------------------------------------------- httpx2


def _run_python(code: str, tmp_path: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": f"{tmp_path}:{':'.join(sys.path)}", "PATH": ""},
        check=False,
    )


def test_httpx2_is_preferred_when_installed(tmp_path: Any) -> None:
    package = tmp_path / "httpx2"
    package.mkdir()
    (package / "__init__.py").write_text("from httpx import *\nfrom httpx import _types\n")
    result = _run_python(
        """
        import warnings
        warnings.simplefilter("error")
        import httpx2
        import stellate.testclient
        from stellate.testing import _httpx, _transport, client
        print(_httpx.httpx is httpx2, stellate.testclient.httpx is httpx2, client.httpx is httpx2)
        print(_transport.httpx is httpx2)
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True"] * 4


def test_without_httpx2_or_httpx_the_import_explains(tmp_path: Any) -> None:
    result = _run_python(
        """
        import sys
        sys.modules["httpx"] = None
        sys.modules["httpx2"] = None
        try:
            import stellate.testclient
        except RuntimeError as exc:
            print(exc)
        """,
        tmp_path,
    )
    assert result.stdout.startswith(
        "The stellate.testclient module requires the httpx2 package to be installed."
    ), result.stderr


# --------------------------------------------------------------------------- AsyncTestClient


@pytest.mark.anyio
async def test_async_client_trailers_and_debug(anyio_backend: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        await send({"type": "http.response.debug", "info": {"context": {"c": 1}}})
        await start(send, trailers=True)
        await body(send, b"data")
        await trailers(send, [(b"t", b"1")])

    async with AsyncTestClient(app) as client:
        response = await client.get("/")
    assert response.extensions["http.response.trailers"] == [(b"t", b"1")]
    assert response.extensions["http.response.debug"] == {"context": {"c": 1}}
    assert response.context == {"c": 1}  # type: ignore[attr-defined]
    # outside ``async with`` the app runs inline, buffered: the same result
    buffered = await AsyncTestClient(app).get("/")
    assert buffered.extensions["http.response.trailers"] == [(b"t", b"1")]


@pytest.mark.anyio
async def test_async_client_stream_close_waits_for_the_app(anyio_backend: str) -> None:
    events: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        await start(send)
        await body(send, b"done")
        for _ in range(5):
            await anyio.lowlevel.checkpoint()
        events.append("background ran")

    async with AsyncTestClient(app) as client, client.stream("GET", "/") as response:
        assert await response.aiter_raw().__anext__() == b"done"
    assert events == ["background ran"]


@pytest.mark.anyio
async def test_async_client_aclose_ends_responses_left_open(anyio_backend: str) -> None:
    outcome: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        await start(send)
        try:
            await body(send, b"first", more=True)
            await anyio.sleep_forever()
        finally:
            outcome.append("ended")

    async with AsyncTestClient(app) as client:
        await client.send(client.build_request("GET", "/"), stream=True)
        await client.aclose()
        assert outcome == ["ended"]


@pytest.mark.anyio
async def test_async_client_endpoint_class_and_protocol_errors(anyio_backend: str) -> None:
    assert (await AsyncTestClient(Hello).get("/z")).text == "hello /z"

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await start(send)
        await start(send)

    with pytest.raises(AssertionError, match=r'Received multiple "http\.response\.start"'):
        await AsyncTestClient(app).get("/")


@pytest.mark.anyio
async def test_async_client_websocket_handshake_and_disconnect(anyio_backend: str) -> None:
    app = Stellate(routes=[WebSocketRoute("/ws", echo_endpoint)])
    client = AsyncTestClient(app, base_url="https://example.org/prefix")
    with pytest.raises(WebSocketDisconnect):
        async with client.websocket_connect("/ws", auth=("a", "b")) as session:
            await session.send_text("hi")
            assert await session.receive_text() == "hi"


@pytest.mark.anyio
async def test_async_client_user_agent_in_any_case(anyio_backend: str) -> None:
    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.headers["user-agent"])

    async def old(request: Request) -> RedirectResponse:
        return RedirectResponse("/")

    app = Stellate(routes=[Route("/", home), Route("/old", old)])
    client = AsyncTestClient(app, headers={"USER-AGENT": "custom"})
    assert (await client.get("/old")).text == "custom"


def test_httpx_module_is_the_clients_library() -> None:
    from stellate.testing._httpx import httpx as library

    assert issubclass(TestClient, library.Client)
    assert library is httpx or library.__name__ == "httpx2"


# --------------------------------------------------------------------------- kept answers


def test_non_utf8_response_header_is_decoded(test_client_factory: ClientFactory) -> None:
    # Kept: Starlette's client raises UnicodeDecodeError on such a header.
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"x-name", b"caf\xe9")]}
        )
        await body(send)

    assert test_client_factory(app).get("/").headers["x-name"] == "café"
