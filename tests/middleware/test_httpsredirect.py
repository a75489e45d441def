"""HTTPSRedirectMiddleware: http→https, ws→wss, ports, and no way to redirect elsewhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from stellate.applications import Stellate
from stellate.middleware import Middleware
from stellate.middleware.httpsredirect import HTTPSRedirectMiddleware
from stellate.requests import Request
from stellate.responses import PlainTextResponse, Response
from stellate.routing import Route, WebSocketRoute
from stellate.types import Message, Receive, Scope, Send
from stellate.websockets import WebSocket

Client = Callable[..., Any]


async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("secure")(scope, receive, send)


def make_scope(
    scheme: str = "http",
    host: bytes | None = b"example.com",
    path: str = "/a/b",
    query: bytes = b"x=1&y=2",
    kind: str = "http",
    server: Any = ("server", 80),
    extensions: dict[str, Any] | None = None,
) -> Scope:
    return {
        "type": kind,
        "method": "GET",
        "scheme": scheme,
        "path": path,
        "query_string": query,
        "headers": [] if host is None else [(b"host", host)],
        "server": server,
        "extensions": extensions or {},
    }


async def call(scope: Scope) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await HTTPSRedirectMiddleware(raw_app)(scope, receive, send)
    return sent


def location(sent: list[Message]) -> bytes:
    assert sent[0]["status"] == 307
    return dict(sent[0]["headers"])[b"location"]


pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (b"example.com", b"https://example.com/a/b?x=1&y=2"),
        (b"example.com:80", b"https://example.com/a/b?x=1&y=2"),
        (b"example.com:443", b"https://example.com/a/b?x=1&y=2"),
        (b"example.com:8080", b"https://example.com:8080/a/b?x=1&y=2"),
        (b"[::1]:80", b"https://[::1]/a/b?x=1&y=2"),
        (b"[::1]:8080", b"https://[::1]:8080/a/b?x=1&y=2"),
        # A malformed Host is ignored in favour of the server's own address.
        (b"evil.com@example.com", b"https://server/a/b?x=1&y=2"),
        (b"evil.com/x", b"https://server/a/b?x=1&y=2"),
        (b"", b"https://server/a/b?x=1&y=2"),
    ],
)
async def test_http_is_redirected(host: bytes, expected: bytes) -> None:
    assert location(await call(make_scope(host=host))) == expected


async def test_websocket_is_redirected_to_wss_with_denial_extension() -> None:
    sent = await call(
        make_scope(scheme="ws", kind="websocket", extensions={"websocket.http.response": {}})
    )
    assert sent[0]["type"] == "websocket.http.response.start"
    assert dict(sent[0]["headers"])[b"location"] == b"wss://example.com/a/b?x=1&y=2"


async def test_websocket_without_denial_extension_is_closed() -> None:
    sent = await call(make_scope(scheme="ws", kind="websocket"))
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": ""}]


async def test_secure_requests_and_lifespan_pass_through() -> None:
    sent = await call(make_scope(scheme="https"))
    assert (sent[0]["status"], sent[1]["body"]) == (200, b"secure")
    sent = await call(make_scope(scheme="wss", kind="websocket"))
    # raw_app answered the handshake itself: nothing was redirected.
    assert sent[0] == {
        "type": "websocket.http.response.start",
        "status": 200,
        "headers": [(b"content-length", b"6"), (b"content-type", b"text/plain; charset=utf-8")],
    }
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def nothing() -> Message:  # pragma: no cover
        raise AssertionError

    await HTTPSRedirectMiddleware(app)({"type": "lifespan", "scheme": "http"}, nothing, nothing)
    assert seen == ["lifespan"]


async def test_no_open_redirect_through_the_path() -> None:
    # An absolute Location: after the host, "//evil.com/x" is only a path (kept as such,
    # as Starlette's request.url keeps it).
    target = location(await call(make_scope(path="//evil.com/x", query=b"")))
    assert target == b"https://example.com//evil.com/x"
    target = location(await call(make_scope(path="/\\evil.com", query=b"")))
    assert target.startswith(b"https://example.com/")
    assert b"\\" not in target


async def test_cr_lf_are_never_reflected() -> None:
    sent = await call(make_scope(path="/a\r\nSet-Cookie: x=1", query=b"q=\r\nX-Evil: 1"))
    target = location(sent)
    assert b"\r" not in target
    assert b"\n" not in target
    assert all(name != b"set-cookie" for name, _ in sent[0]["headers"])
    assert all(name != b"x-evil" for name, _ in sent[0]["headers"])


async def test_request_without_any_host_is_refused() -> None:
    sent = await call(make_scope(host=None, server=None))
    assert sent[0]["status"] == 400
    assert sent[1]["body"] == b"Invalid host header"
    assert (b"content-type", b"text/plain; charset=utf-8") in sent[0]["headers"]


# --------------------------------------------------------------------------- in an app


async def homepage(request: Request) -> Response:
    return PlainTextResponse(f"{request.url.scheme} ok")


async def ws_endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(websocket.url.scheme)
    await websocket.close()


def make_app() -> Stellate:
    return Stellate(
        routes=[Route("/", homepage), WebSocketRoute("/ws", ws_endpoint)],
        middleware=[Middleware(HTTPSRedirectMiddleware)],
    )


def test_in_app(test_client_factory: Client) -> None:
    client = test_client_factory(make_app(), follow_redirects=False)
    response = client.post("/?a=1", content=b"body")
    assert response.status_code == 307
    assert response.headers["location"] == "https://testserver/?a=1"
    # 404s are redirected too: nothing is answered over plain HTTP.
    assert client.get("/missing").headers["location"] == "https://testserver/missing"
    secure = test_client_factory(make_app(), base_url="https://testserver")
    assert secure.get("/").text == "https ok"
    assert secure.get("/missing").status_code == 404


def test_in_app_follows_to_https(test_client_factory: Client) -> None:
    response = test_client_factory(make_app()).get("/")
    assert response.text == "https ok"
    assert str(response.url) == "https://testserver/"


def test_in_app_websocket(test_client_factory: Client) -> None:
    from stellate.testclient import WebSocketDenialResponse

    with (
        pytest.raises(WebSocketDenialResponse) as info,
        test_client_factory(make_app()).websocket_connect("/ws"),
    ):
        pass  # pragma: no cover
    assert info.value.status_code == 307
    assert info.value.headers["location"] == "wss://testserver/ws"
    # websocket_connect resolves against ws://testserver, not base_url (as Starlette's)
    with test_client_factory(make_app()).websocket_connect("wss://testserver/ws") as session:
        assert session.receive_text() == "wss"
