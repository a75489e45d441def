"""TestClient: the scope it builds, bodies, cookies, redirects, errors, streaming, lifespan
and WebSocket sessions, against raw ASGI apps, on asyncio and trio."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest
import sniffio

from stellate.testclient import TestClient, WebSocketDenialResponse, WebSocketTestSession
from stellate.types import Message, Receive, Scope, Send
from stellate.websockets import WebSocketDisconnect

ClientFactory = Callable[..., TestClient]


# --------------------------------------------------------------------------- helper apps


async def read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    messages = []
    body = b""
    while True:
        message = await receive()
        messages.append(message)
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body, messages


async def send_response(
    send: Send,
    body: bytes = b"",
    status: int = 200,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers or []})
    await send({"type": "http.response.body", "body": body})


def scope_summary(scope: Scope) -> dict[str, Any]:
    return {
        "type": scope["type"],
        "method": scope.get("method"),
        "scheme": scope["scheme"],
        "server": list(scope["server"]),
        "client": list(scope["client"]),
        "root_path": scope["root_path"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode("latin-1"),
        "query_string": scope["query_string"].decode("latin-1"),
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
        "http_version": scope["http_version"],
        "extensions": sorted(scope["extensions"]),
        "state": scope["state"],
        "subprotocols": scope.get("subprotocols"),
    }


async def scope_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with a JSON summary of the scope and the body it received."""
    if scope["type"] != "http":
        return
    body, messages = await read_body(receive)
    summary = scope_summary(scope)
    summary["body"] = body.decode("latin-1")
    summary["messages"] = [[m["body"].decode("latin-1"), m["more_body"]] for m in messages]
    await send_response(send, json.dumps(summary).encode(), headers=[(b"x-app", b"scope")])


def lifespan_app(events: list[str], *, state: dict[str, Any] | None = None) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                events.append(message["type"])
                if message["type"] == "lifespan.startup":
                    scope["state"].update(state or {})
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send_response(send, json.dumps(scope["state"]).encode())
        scope["state"]["mutated"] = True

    return app


# --------------------------------------------------------------------------- scope


def test_http_scope(test_client_factory: ClientFactory) -> None:
    client = test_client_factory(scope_app, root_path="/api", client=("1.2.3.4", 1234))
    response = client.get("/caf%C3%A9/a%2Fb?x=1&y=%20", headers={"X-Custom": "Yes"})
    assert response.status_code == 200
    assert response.headers["x-app"] == "scope"
    data = response.json()
    assert data["type"] == "http"
    assert data["method"] == "GET"
    assert data["scheme"] == "http"
    assert data["server"] == ["testserver", 80]
    assert data["client"] == ["1.2.3.4", 1234]
    assert data["root_path"] == "/api"
    assert data["path"] == "/café/a/b"
    assert data["raw_path"] == "/caf%C3%A9/a%2Fb"
    assert data["query_string"] == "x=1&y=%20"
    assert data["http_version"] == "1.1"
    assert data["extensions"] == ["http.response.debug", "http.response.trailers"]
    assert data["state"] == {}
    headers = dict(data["headers"])
    assert headers["host"] == "testserver"
    assert headers["user-agent"] == "testclient"
    assert headers["x-custom"] == "Yes"
    assert all(name == name.lower() for name, _ in data["headers"])


@pytest.mark.parametrize(
    ("base_url", "scheme", "server"),
    [
        ("https://example.org", "https", ["example.org", 443]),
        ("http://example.org:8080", "http", ["example.org", 8080]),
        ("https://example.org:8443/", "https", ["example.org", 8443]),
    ],
)
def test_scheme_and_server_follow_base_url(
    test_client_factory: ClientFactory, base_url: str, scheme: str, server: list[Any]
) -> None:
    data = test_client_factory(scope_app, base_url=base_url).get("/p").json()
    assert data["scheme"] == scheme
    assert data["server"] == server
    host = dict(data["headers"])["host"]
    assert host == base_url.split("//")[1].rstrip("/").removesuffix(":443")


def test_method_and_client_defaults(test_client_factory: ClientFactory) -> None:
    data = test_client_factory(scope_app).request("PATCH", "/").json()
    assert data["method"] == "PATCH"
    assert data["client"] == ["testclient", 50000]
    assert data["root_path"] == ""


def test_default_headers_and_user_agent_override(test_client_factory: ClientFactory) -> None:
    client = test_client_factory(scope_app, headers={"user-agent": "mine", "x-a": "1"})
    headers = dict(client.get("/").json()["headers"])
    assert headers["user-agent"] == "mine"
    assert headers["x-a"] == "1"


def test_app_runs_on_the_chosen_backend(test_client_factory: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        library = sniffio.current_async_library()
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": library})
        else:
            await send_response(send, library.encode())

    client = test_client_factory(app)
    backend = client.async_backend["backend"]
    assert client.get("/").text == backend
    with client.websocket_connect("/ws") as session:
        assert session.receive_text() == backend


def test_backend_options_reach_the_event_loop() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        debug = asyncio.get_running_loop().get_debug()
        await send_response(send, str(debug).encode())

    client = TestClient(app, backend="asyncio", backend_options={"debug": True})
    assert client.get("/").text == "True"


# --------------------------------------------------------------------------- bodies


def test_content_body(test_client_factory: ClientFactory) -> None:
    data = test_client_factory(scope_app).post("/", content=b"hello").json()
    assert data["body"] == "hello"
    assert data["messages"] == [["hello", False]]
    assert dict(data["headers"])["content-length"] == "5"


def test_chunked_iterator_body_arrives_in_one_message(test_client_factory: ClientFactory) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"ab"
        yield b""
        yield b"cd"

    data = test_client_factory(scope_app).post("/", content=chunks()).json()
    assert data["messages"] == [["abcd", False]]
    assert dict(data["headers"])["transfer-encoding"] == "chunked"


def test_empty_body_is_one_final_message(test_client_factory: ClientFactory) -> None:
    data = test_client_factory(scope_app).get("/").json()
    assert data["messages"] == [["", False]]


def test_json_and_form_bodies(test_client_factory: ClientFactory) -> None:
    client = test_client_factory(scope_app)
    assert json.loads(client.post("/", json={"a": [1]}).json()["body"]) == {"a": [1]}
    assert client.post("/", data={"k": "v w"}).json()["body"] == "k=v+w"


def test_receive_after_body_waits_for_response_then_disconnects(
    test_client_factory: ClientFactory,
) -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await read_body(receive)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"one", "more_body": True})
        async with anyio.create_task_group() as group:

            async def listen() -> None:
                seen.append((await receive())["type"])

            group.start_soon(listen)
            await anyio.wait_all_tasks_blocked()
            seen.append("before final body")
            await send({"type": "http.response.body", "body": b"two"})
        seen.append((await receive())["type"])

    assert test_client_factory(app).get("/").content == b"onetwo"
    assert seen == ["before final body", "http.disconnect", "http.disconnect"]


def test_head_response_has_no_body(raw_test_client_factory: ClientFactory) -> None:
    # Raw client: a body on HEAD breaks the lint's rule; the client must drop it anyway.
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send_response(send, b"body", headers=[(b"content-length", b"4")])

    response = raw_test_client_factory(app).head("/")
    assert response.status_code == 200
    assert response.headers["content-length"] == "4"
    assert response.content == b""


# --------------------------------------------------------------------------- cookies, redirects


async def cookie_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["path"] == "/set":
        await send_response(send, headers=[(b"set-cookie", b"session=abc; Path=/")])
    else:
        cookie = dict(scope["headers"]).get(b"cookie", b"")
        await send_response(send, cookie)


def test_cookies_persist_across_requests(test_client_factory: ClientFactory) -> None:
    client = test_client_factory(cookie_app)
    assert client.get("/get").content == b""
    client.get("/set")
    assert client.cookies["session"] == "abc"
    assert client.get("/get").content == b"session=abc"


def test_cookies_argument(test_client_factory: ClientFactory) -> None:
    client = test_client_factory(cookie_app, cookies={"a": "1"})
    assert client.get("/get").content == b"a=1"


async def redirect_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["path"] == "/old":
        await send_response(send, status=307, headers=[(b"location", b"/new?q=1")])
    else:
        await send_response(send, f"{scope['path']}?{scope['query_string'].decode()}".encode())


def test_redirects_followed_by_default(test_client_factory: ClientFactory) -> None:
    response = test_client_factory(redirect_app).get("/old")
    assert response.status_code == 200
    assert response.text == "/new?q=1"
    assert [r.status_code for r in response.history] == [307]


def test_redirects_not_followed(test_client_factory: ClientFactory) -> None:
    client = test_client_factory(redirect_app, follow_redirects=False)
    response = client.get("/old")
    assert response.status_code == 307
    assert response.headers["location"] == "/new?q=1"
    assert client.get("/old", follow_redirects=True).text == "/new?q=1"


# --------------------------------------------------------------------------- errors


class Boom(Exception):
    pass


async def fail_before_start(scope: Scope, receive: Receive, send: Send) -> None:
    raise Boom("before")


async def fail_after_start(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})
    raise Boom("after")


async def fail_after_response(scope: Scope, receive: Receive, send: Send) -> None:
    await send_response(send, b"error page", status=500)
    raise Boom("after complete")


@pytest.mark.parametrize("app", [fail_before_start, fail_after_start, fail_after_response])
def test_server_exceptions_raised(test_client_factory: ClientFactory, app: Any) -> None:
    with pytest.raises(Boom):
        test_client_factory(app).get("/")


def test_server_exception_before_start_becomes_500(test_client_factory: ClientFactory) -> None:
    response = test_client_factory(fail_before_start, raise_server_exceptions=False).get("/")
    assert response.status_code == 500
    assert response.content == b""


def test_server_exception_after_start_truncates(test_client_factory: ClientFactory) -> None:
    client = test_client_factory(fail_after_start, raise_server_exceptions=False)
    response = client.get("/")
    assert response.status_code == 200
    assert response.content == b"partial"


def test_server_exception_after_response_keeps_it(test_client_factory: ClientFactory) -> None:
    client = test_client_factory(fail_after_response, raise_server_exceptions=False)
    response = client.get("/")
    assert response.status_code == 500
    assert response.text == "error page"


async def silent_app(scope: Scope, receive: Receive, send: Send) -> None:
    return None


def test_app_that_sends_nothing(raw_test_client_factory: ClientFactory) -> None:
    # Raw client: the app breaks ASGI on purpose, to test the client's own report of it.
    with pytest.raises(AssertionError, match=r"^TestClient did not receive any response\.$"):
        raw_test_client_factory(silent_app).get("/")
    response = raw_test_client_factory(silent_app, raise_server_exceptions=False).get("/")
    assert response.status_code == 500


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        (
            [{"type": "http.response.body", "body": b"x"}],
            'Received "http.response.body" without "http.response.start".',
        ),
        (
            [
                {"type": "http.response.start", "status": 200},
                {"type": "http.response.start", "status": 200},
            ],
            'Received multiple "http.response.start" messages.',
        ),
        (
            [
                {"type": "http.response.start", "status": 200},
                {"type": "http.response.body", "body": b""},
                {"type": "http.response.body", "body": b""},
            ],
            'Received "http.response.body" after response completed.',
        ),
    ],
)
def test_protocol_errors_are_clear(
    raw_test_client_factory: ClientFactory, messages: list[Message], error: str
) -> None:
    # Raw client: the app breaks ASGI on purpose, to test the client's own report of it.
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for message in messages:
            await send(message)

    # Starlette's AssertionError and message; a RuntimeError too, as stellate raised before.
    with pytest.raises(AssertionError) as info:
        raw_test_client_factory(app).get("/")
    assert str(info.value) == error
    assert isinstance(info.value, RuntimeError)


def test_debug_info_is_exposed(test_client_factory: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        info = {"template": "page.html", "context": {"a": 1}}
        await send({"type": "http.response.debug", "info": info})
        await send_response(send, b"page")

    response = test_client_factory(app).get("/")
    assert response.template == "page.html"  # type: ignore[attr-defined]
    assert response.context == {"a": 1}  # type: ignore[attr-defined]
    plain = test_client_factory(scope_app).get("/")
    assert not hasattr(plain, "template")


def test_asgi2_app(test_client_factory: ClientFactory) -> None:
    class ASGI2App:
        def __init__(self, scope: Scope) -> None:
            self.path = scope["path"]

        async def __call__(self, receive: Receive, send: Send) -> None:
            await send_response(send, self.path.encode())

    assert test_client_factory(ASGI2App).get("/two").text == "/two"


# --------------------------------------------------------------------------- streaming


def test_stream_returns_before_the_app_finishes(test_client_factory: ClientFactory) -> None:
    events: dict[str, anyio.Event] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        if scope["path"] == "/release":
            events["release"].set()
            await send_response(send)
            return
        events["release"] = anyio.Event()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        with anyio.fail_after(10):
            await events["release"].wait()
        await send({"type": "http.response.body", "body": b"second"})

    with test_client_factory(app) as client, client.stream("GET", "/") as response:
        assert response.status_code == 200
        chunks = response.iter_raw()
        assert next(chunks) == b"first"
        assert client.get("/release").status_code == 200
        assert list(chunks) == [b"second"]


def test_closing_a_stream_early_cancels_the_app(test_client_factory: ClientFactory) -> None:
    outcome: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"tick", "more_body": True})
        except anyio.get_cancelled_exc_class():
            outcome.append("cancelled")
            raise

    client = test_client_factory(app)
    with client.stream("GET", "/") as response:
        assert next(response.iter_raw()) == b"tick"
        assert outcome == []
    assert outcome == ["cancelled"]


def test_closing_a_stream_raises_an_error_the_app_had(test_client_factory: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise Boom("unread")

    client = test_client_factory(app)
    with pytest.raises(Boom), client.stream("GET", "/") as response:
        assert response.status_code == 200


def test_streams_share_the_client_portal(test_client_factory: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await send_response(send, b"ok")

    with test_client_factory(app) as client:
        portal = client.portal
        assert portal is not None
        with client.stream("GET", "/") as response:
            assert response.read() == b"ok"
        assert client.portal is portal
    assert client.portal is None


def test_responses_left_open_are_closed_at_exit(test_client_factory: ClientFactory) -> None:
    outcome: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if scope["path"] == "/fail":
            raise Boom("never read")
        try:
            await anyio.sleep_forever()
        finally:
            outcome.append("ended")

    with test_client_factory(app) as client:
        response = client.send(client.build_request("GET", "/"), stream=True)
        assert response.status_code == 200
    assert outcome == ["ended"]

    with pytest.raises(Boom, match="never read"), test_client_factory(app) as client:
        client.send(client.build_request("GET", "/fail"), stream=True)


# --------------------------------------------------------------------------- lifespan


def test_lifespan_runs_around_the_with_block(test_client_factory: ClientFactory) -> None:
    events: list[str] = []
    client = test_client_factory(lifespan_app(events, state={"db": "up"}))
    with client:
        assert events == ["lifespan.startup"]
        assert client.get("/").json() == {"db": "up"}
        # each request gets a copy of the state, so a request cannot leak into the next
        assert client.get("/").json() == {"db": "up"}
    assert events == ["lifespan.startup", "lifespan.shutdown"]


def test_no_lifespan_without_with(test_client_factory: ClientFactory) -> None:
    events: list[str] = []
    client = test_client_factory(lifespan_app(events))
    assert client.get("/").json() == {}
    assert events == []


def test_client_can_be_entered_twice(test_client_factory: ClientFactory) -> None:
    events: list[str] = []
    client = test_client_factory(lifespan_app(events))
    with client:
        pass
    with client:
        pass
    assert events == ["lifespan.startup", "lifespan.shutdown"] * 2


def test_app_without_lifespan_support(test_client_factory: ClientFactory) -> None:
    with test_client_factory(scope_app) as client:
        assert client.get("/").status_code == 200


def failing_lifespan(phase: str, *, reraise: bool) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "lifespan"
        while True:
            message = await receive()
            current = message["type"].split(".")[1]
            if current == phase:
                await send({"type": f"lifespan.{phase}.failed", "message": "no database"})
                if reraise:
                    raise Boom(phase)
                await anyio.sleep_forever()
            await send({"type": f"lifespan.{current}.complete"})
            if current == "shutdown":
                return

    return app


@pytest.mark.parametrize("phase", ["startup", "shutdown"])
def test_lifespan_failure_raises_the_app_error(
    test_client_factory: ClientFactory, phase: str
) -> None:
    client = test_client_factory(failing_lifespan(phase, reraise=True))
    with pytest.raises(Boom, match=phase), client:
        pass
    assert client.portal is None


def test_lifespan_startup_failure_without_error(test_client_factory: ClientFactory) -> None:
    client = test_client_factory(failing_lifespan("startup", reraise=False))
    with pytest.raises(RuntimeError, match="Lifespan startup failed: no database"), client:
        pass


def test_lifespan_error_before_answering(test_client_factory: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        raise Boom("startup crashed")

    with pytest.raises(Boom, match="startup crashed"), test_client_factory(app):
        pass


def test_lifespan_failed_without_message(test_client_factory: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed"})

    with pytest.raises(RuntimeError, match=r"^Lifespan startup failed$"), test_client_factory(app):
        pass


def test_lifespan_wrong_answer(raw_test_client_factory: ClientFactory) -> None:
    # Raw client: the app breaks ASGI on purpose, to test the client's own report of it.
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.shutdown.complete"})

    with (
        pytest.raises(AssertionError, match=r"Expected 'lifespan\.startup\.complete'"),
        raw_test_client_factory(app),
    ):
        pass


def test_lifespan_methods_need_with(test_client_factory: ClientFactory) -> None:
    client = test_client_factory(scope_app)
    client.__exit__(None, None, None)  # leaving without entering does nothing
    assert client.portal is None
    with pytest.raises(RuntimeError, match="'with'"):
        anyio.run(client.wait_startup)


# --------------------------------------------------------------------------- websockets


async def echo_ws(scope: Scope, receive: Receive, send: Send) -> None:
    """Accepts (with the first offered subprotocol), echoes frames, reports the close."""
    assert scope["type"] == "websocket"
    assert (await receive())["type"] == "websocket.connect"
    subprotocol = scope["subprotocols"][0] if scope["subprotocols"] else None
    await send(
        {"type": "websocket.accept", "subprotocol": subprotocol, "headers": [(b"x-ws", b"1")]}
    )
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "scope":
            await send({"type": "websocket.send", "text": json.dumps(scope_summary(scope))})
        elif message.get("text") == "close":
            await send({"type": "websocket.close", "code": 4001, "reason": "bye"})
            return
        else:
            await send({"type": "websocket.send", **{k: message.get(k) for k in ("text", "bytes")}})


def test_websocket_text_bytes_and_json(test_client_factory: ClientFactory) -> None:
    client = test_client_factory(echo_ws)
    with client.websocket_connect("/ws") as session:
        assert isinstance(session, WebSocketTestSession)
        session.send_text("héllo")
        assert session.receive_text() == "héllo"
        session.send_bytes(b"\x00\xff")
        assert session.receive_bytes() == b"\x00\xff"
        session.send_json({"a": "é"})
        message = session.receive()
        assert message == {"type": "websocket.send", "text": '{"a":"é"}', "bytes": None}
        session.send_json([1, 2], mode="binary")
        assert session.receive_bytes() == b"[1,2]"
        session.send_json({"b": 2}, mode="binary")
        assert session.receive_json(mode="binary") == {"b": 2}
        session.send_json({"c": 3})
        assert session.receive_json() == {"c": 3}


def test_websocket_frame_type_mismatch(test_client_factory: ClientFactory) -> None:
    with test_client_factory(echo_ws).websocket_connect("/ws") as session:
        session.send_bytes(b"x")
        with pytest.raises(KeyError, match="'text'"):
            session.receive_text()
        session.send_text("x")
        with pytest.raises(KeyError, match="'bytes'"):
            session.receive_bytes()


def test_websocket_json_mode_is_checked(test_client_factory: ClientFactory) -> None:
    with test_client_factory(echo_ws).websocket_connect("/ws") as session:
        with pytest.raises(ValueError, match="mode"):
            session.send_json({}, mode="yaml")  # type: ignore[arg-type]
        session.send_text("{}")
        with pytest.raises(ValueError, match="mode"):
            session.receive_json(mode="yaml")  # type: ignore[arg-type]


def test_websocket_scope(test_client_factory: ClientFactory) -> None:
    client = test_client_factory(echo_ws, root_path="/r")
    with client.websocket_connect(
        "wss://example.org/w%20s?x=1", subprotocols=["chat", "v2"], headers={"X-Token": "t"}
    ) as session:
        session.send_text("scope")
        data = session.receive_json()
    assert data["type"] == "websocket"
    assert data["scheme"] == "wss"
    assert data["server"] == ["example.org", 443]
    assert data["path"] == "/w s"
    assert data["raw_path"] == "/w%20s"
    assert data["query_string"] == "x=1"
    assert data["root_path"] == "/r"
    assert data["subprotocols"] == ["chat", "v2"]
    assert data["extensions"] == ["websocket.http.response"]
    headers = dict(data["headers"])
    assert headers["sec-websocket-protocol"] == "chat, v2"
    assert headers["sec-websocket-version"] == "13"
    assert headers["x-token"] == "t"
    assert headers["host"] == "example.org"


def test_websocket_plain_scheme(test_client_factory: ClientFactory) -> None:
    with test_client_factory(echo_ws).websocket_connect("/ws") as session:
        session.send_text("scope")
        data = session.receive_json()
    assert data["scheme"] == "ws"
    assert data["server"] == ["testserver", 80]
    assert data["subprotocols"] == []
    assert "sec-websocket-protocol" not in dict(data["headers"])


def test_websocket_subprotocol_and_extra_headers(test_client_factory: ClientFactory) -> None:
    with test_client_factory(echo_ws).websocket_connect("/ws", ["wamp"]) as session:
        assert session.accepted_subprotocol == "wamp"
        assert session.extra_headers == [(b"x-ws", b"1")]
    with test_client_factory(echo_ws).websocket_connect("/ws") as session:
        assert session.accepted_subprotocol is None


def test_websocket_app_closes_with_code(test_client_factory: ClientFactory) -> None:
    with test_client_factory(echo_ws).websocket_connect("/ws") as session:
        session.send_text("close")
        with pytest.raises(WebSocketDisconnect) as info:
            session.receive_text()
        assert (info.value.code, info.value.reason) == (4001, "bye")
        # the close is remembered: reading again reports it again, without hanging
        assert session.receive() == {"type": "websocket.close", "code": 4001, "reason": "bye"}


def test_websocket_client_close_code_reaches_app(test_client_factory: ClientFactory) -> None:
    received: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        received.append(await receive())
        # a server drops what the app sends after the client has gone
        await send({"type": "websocket.send", "text": "nobody listens"})
        received.append(await receive())

    with test_client_factory(app).websocket_connect("/ws") as session:
        session.close(code=4002, reason="done")
        session.send_text("late")  # queued, as Starlette's client does
    assert received == [
        {"type": "websocket.disconnect", "code": 4002, "reason": "done"},
        {"type": "websocket.receive", "text": "late"},
    ]


def test_websocket_app_ending_after_accept_reads_as_close(
    test_client_factory: ClientFactory,
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "last"})

    with test_client_factory(app).websocket_connect("/ws") as session:
        assert session.receive_text() == "last"
        with pytest.raises(WebSocketDisconnect) as info:
            session.receive_text()
        assert info.value.code == 1000
        session.send_text("ignored: the app has ended")


def test_websocket_close_before_accept(test_client_factory: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.close", "code": 1008, "reason": "go away"})

    with (
        pytest.raises(WebSocketDisconnect) as info,
        test_client_factory(app).websocket_connect("/ws"),
    ):
        pytest.fail("the handshake must fail")  # pragma: no cover
    assert not isinstance(info.value, WebSocketDenialResponse)
    assert (info.value.code, info.value.reason) == (1008, "go away")


def test_websocket_denial_response(test_client_factory: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"www-authenticate", b"Bearer")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"log", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b" in"})

    with (
        pytest.raises(WebSocketDenialResponse) as info,
        test_client_factory(app).websocket_connect("/ws"),
    ):
        pass  # pragma: no cover
    denial = info.value
    assert isinstance(denial, httpx.Response)
    assert isinstance(denial, WebSocketDisconnect)
    assert denial.status_code == 401
    assert denial.headers["www-authenticate"] == "Bearer"
    assert denial.content == b"log in"
    assert denial.code == 1008
    assert str(denial) == "WebSocket handshake denied with HTTP 401"


def test_websocket_app_returning_without_answer_is_403(test_client_factory: ClientFactory) -> None:
    with (
        pytest.raises(WebSocketDenialResponse) as info,
        test_client_factory(silent_app).websocket_connect("/ws"),
    ):
        pass  # pragma: no cover
    assert info.value.status_code == 403


def test_websocket_unexpected_handshake_message(raw_test_client_factory: ClientFactory) -> None:
    # Raw client: the app breaks ASGI on purpose, to test the client's own report of it.
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.send", "text": "too early"})

    with (
        pytest.raises(RuntimeError, match=r"Expected 'websocket\.accept'"),
        raw_test_client_factory(app).websocket_connect("/ws"),
    ):
        pass  # pragma: no cover


def test_websocket_denial_body_cut_short(test_client_factory: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.http.response.start", "status": 500})
        await send({"type": "websocket.http.response.body", "body": b"x", "more_body": True})

    with (
        pytest.raises(WebSocketDenialResponse) as info,
        test_client_factory(app).websocket_connect("/ws"),
    ):
        pass  # pragma: no cover
    assert info.value.content == b"x"


def test_websocket_app_exception_before_accept(test_client_factory: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise Boom("handshake")

    with pytest.raises(Boom, match="handshake"), test_client_factory(app).websocket_connect("/ws"):
        pass  # pragma: no cover


def test_websocket_app_exception_surfaces_on_receive(test_client_factory: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        raise Boom("in session")

    with test_client_factory(app).websocket_connect("/ws") as session:
        session.send_text("trigger")
        with pytest.raises(Boom, match="in session"):
            session.receive()


def test_websocket_app_exception_surfaces_on_exit(test_client_factory: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        raise Boom("unread")

    with (
        pytest.raises(Boom, match="unread"),
        test_client_factory(app).websocket_connect("/ws") as session,
    ):
        session.send_text("trigger")


def test_websocket_disconnect_raised_by_app_is_raised_at_exit(
    test_client_factory: ClientFactory,
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        message = await receive()
        raise WebSocketDisconnect(message["code"])

    with (
        pytest.raises(WebSocketDisconnect) as info,
        test_client_factory(app).websocket_connect("/ws"),
    ):
        pass
    assert info.value.code == 1000


def test_websocket_exit_cancels_a_stuck_app(test_client_factory: ClientFactory) -> None:
    outcome: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            outcome.append("cancelled")
            raise

    with test_client_factory(app).websocket_connect("/ws"):
        pass
    assert outcome == ["cancelled"]


def test_websocket_app_ignoring_disconnect_is_cancelled(
    test_client_factory: ClientFactory,
) -> None:
    received: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        try:
            while True:  # a buggy app that never looks at what it receives
                received.append((await receive())["type"])
        finally:
            received.append("ended")

    with test_client_factory(app).websocket_connect("/ws") as session:
        session.send_text("one")
    assert received == [
        "websocket.receive",
        "websocket.disconnect",
        "websocket.disconnect",
        "ended",
    ]


def test_websocket_shares_client_portal_and_state(test_client_factory: ClientFactory) -> None:
    events: list[str] = []
    http_app = lifespan_app(events, state={"k": "v"})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await echo_ws(scope, receive, send)
        else:
            await http_app(scope, receive, send)

    with test_client_factory(app) as client, client.websocket_connect("/ws") as session:
        session.send_text("scope")
        assert session.receive_json()["state"] == {"k": "v"}


def test_websocket_session_outside_with(test_client_factory: ClientFactory) -> None:
    session = test_client_factory(echo_ws).websocket_connect("/ws")
    with pytest.raises(RuntimeError, match="'with' block"):
        session.send_text("x")
    with pytest.raises(RuntimeError, match="'with' block"):
        session.receive()
    session.__exit__(None, None, None)


async def _watched_final_chunk_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Sends its last chunk while a watcher, as responses have, listens for a disconnect."""
    assert scope["type"] == "http"
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"first ", "more_body": True})
    async with anyio.create_task_group() as group:

        async def watch_for_disconnect() -> None:
            message = await receive()
            assert message["type"] == "http.disconnect"
            group.cancel_scope.cancel()

        group.start_soon(watch_for_disconnect)
        await send({"type": "http.response.body", "body": b"last", "more_body": False})
        group.cancel_scope.cancel()


def test_the_client_disconnects_only_after_the_final_chunk_is_delivered(
    test_client_factory: Callable[..., TestClient],
) -> None:
    client = test_client_factory(_watched_final_chunk_app)
    assert client.get("/").content == b"first last"
    with client.stream("GET", "/") as response:
        assert b"".join(response.iter_bytes()) == b"first last"
