"""TrustedHostMiddleware: exact and wildcard hosts, IPv6, odd Host headers, www redirect."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stellate.applications import Stellate
from stellate.middleware import Middleware
from stellate.middleware.trustedhost import (
    ENFORCE_DOMAIN_WILDCARD,
    TrustedHostMiddleware,
    request_host,
)
from stellate.requests import Request
from stellate.responses import PlainTextResponse, Response
from stellate.routing import Route, WebSocketRoute
from stellate.types import Message, Receive, Scope, Send
from stellate.websockets import WebSocket

Client = Callable[..., Any]


async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("ok")(scope, receive, send)


def scope_with_host(*hosts: bytes, kind: str = "http") -> Scope:
    return {
        "type": kind,
        "method": "GET",
        "scheme": "http",
        "path": "/p",
        "query_string": b"q=1",
        "headers": [(b"host", host) for host in hosts],
        "server": ("server", 80),
    }


async def call(middleware: Any, scope: Scope) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await middleware(scope, receive, send)
    return sent


def status(sent: list[Message]) -> int:
    return int(sent[0]["status"])


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"example.com", "example.com"),
        (b"EXAMPLE.com:8000", "example.com"),
        (b"example.com.", "example.com."),
        (b"[v7.node-a]", "[v7.node-a]"),
        (b"internal-api:000443", "internal-api"),
        (b"internal-api:", "internal-api"),
        (b"[::1]:", "::1"),
        (b"internal-api:" + b"0" * 5000 + b"443", "internal-api"),
        (b"a~b%41!$&'()*+,;=.example", "a~b%41!$&'()*+,;=.example"),
        # The grammar request.url and Host routes use: `%` is a name character (as in
        # Starlette), and a name has no length limit.
        (b"a%zz.example", "a%zz.example"),
        (b"a" * 300, "a" * 300),
        (b"[::1]", "::1"),
        (b"[::1]:8080", "::1"),
        (b"127.0.0.1:80", "127.0.0.1"),
        (b"", None),
        (b":80", None),
        (b"user@example.com", None),
        (b"example.com/path", None),
        (b"exa mple.com", None),
        (b"example.com:port", None),
        (b"example.com:123456", None),
        (b"example.com:65536", None),
        (b"example.com:" + b"9" * 5000, None),
        (b"[::1", None),
        (b"[::g]", None),
        (b"[1::2::3]", None),
        (b"[v7.]", None),
        (b"[V7.node-a]", None),
        (b"example.com\r\nx: y", None),
    ],
)
def test_request_host(header: bytes, expected: str | None) -> None:
    assert request_host(scope_with_host(header)) == expected


def test_request_host_missing_or_repeated() -> None:
    assert request_host(scope_with_host()) is None
    assert request_host(scope_with_host(b"a.com", b"a.com")) is None


def test_bad_wildcard_patterns_are_refused() -> None:
    for pattern in ("*example.com", "example.*", "*.*.example.com", "a.*.com"):
        with pytest.raises(AssertionError, match="wildcard"):
            TrustedHostMiddleware(raw_app, allowed_hosts=[pattern])
    assert ENFORCE_DOMAIN_WILDCARD == "Domain wildcard patterns must be like '*.example.com'."


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        (b"example.com", True),
        (b"Example.COM:8443", True),
        (b"api.example.com", True),
        (b"deep.api.example.com", True),
        (b"evilexample.com", False),
        (b"example.com.evil.net", False),
        (b"other.org", False),
        (b"[::1]:8000", True),
        (b"127.0.0.1", True),
        (b"127.0.0.2", False),
        (b"", False),
        (b"user:pw@example.com", False),
    ],
)
async def test_allowed_hosts_bare(host: bytes, allowed: bool) -> None:
    middleware = TrustedHostMiddleware(
        raw_app, allowed_hosts=["example.com", "*.example.com", "[::1]", "127.0.0.1"]
    )
    sent = await call(middleware, scope_with_host(host))
    if allowed:
        assert status(sent) == 200
    else:
        assert status(sent) == 400
        assert sent[1]["body"] == b"Invalid host header"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("pattern", "host"),
    [
        ("[v7.node-a]", b"[v7.Node-A]"),
        ("internal-api", b"internal-api:000443"),
        ("internal-api", b"INTERNAL-API:" + b"0" * 300 + b"8080"),
        ("tilde~name", b"tilde~name"),
        ("*.example.com", b"a_b~c.example.com:443"),
    ],
)
async def test_valid_host_syntax_is_allowed(pattern: str, host: bytes) -> None:
    middleware = TrustedHostMiddleware(raw_app, allowed_hosts=[pattern])
    assert status(await call(middleware, scope_with_host(host))) == 200


@pytest.mark.anyio
@pytest.mark.parametrize("host", [b"internal-api.", b"internal-api.:80", b"a.example.com."])
async def test_a_trailing_dot_is_part_of_the_name(host: bytes) -> None:
    middleware = TrustedHostMiddleware(raw_app, allowed_hosts=["internal-api", "*.example.com"])
    sent = await call(middleware, scope_with_host(host))
    assert (status(sent), sent[1]["body"]) == (400, b"Invalid host header")


@pytest.mark.anyio
@pytest.mark.parametrize("port", [b"65536", b"70000", b"000070000", b"9" * 5000])
async def test_ports_above_65535_are_refused_by_value(port: bytes) -> None:
    middleware = TrustedHostMiddleware(raw_app, allowed_hosts=["internal-api"])
    sent = await call(middleware, scope_with_host(b"internal-api:" + port))
    assert (status(sent), sent[1]["body"]) == (400, b"Invalid host header")
    assert status(await call(middleware, scope_with_host(b"internal-api:065535"))) == 200


@pytest.mark.anyio
async def test_wildcard_does_not_match_the_bare_domain() -> None:
    middleware = TrustedHostMiddleware(raw_app, allowed_hosts=["*.example.com"], www_redirect=False)
    assert status(await call(middleware, scope_with_host(b"example.com"))) == 400
    assert status(await call(middleware, scope_with_host(b"a.example.com"))) == 200


@pytest.mark.anyio
async def test_ipv6_pattern_without_brackets() -> None:
    middleware = TrustedHostMiddleware(raw_app, allowed_hosts=["::1"])
    assert status(await call(middleware, scope_with_host(b"[::1]:8000"))) == 200
    assert status(await call(middleware, scope_with_host(b"[::2]"))) == 400


@pytest.mark.anyio
async def test_any_host_and_lifespan_pass_through() -> None:
    sent = await call(TrustedHostMiddleware(raw_app), scope_with_host(b"what ever"))
    assert status(sent) == 200
    seen = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    await call(TrustedHostMiddleware(app, allowed_hosts=["a.com"]), {"type": "lifespan"})
    assert seen == ["lifespan"]


@pytest.mark.anyio
async def test_repeated_host_headers_are_refused() -> None:
    middleware = TrustedHostMiddleware(raw_app, allowed_hosts=["a.com"])
    assert status(await call(middleware, scope_with_host(b"a.com", b"evil.com"))) == 400


@pytest.mark.anyio
async def test_www_redirect_bare() -> None:
    middleware = TrustedHostMiddleware(raw_app, allowed_hosts=["www.example.com"])
    sent = await call(middleware, scope_with_host(b"example.com:8000"))
    assert status(sent) == 307
    headers = dict(sent[0]["headers"])
    assert headers[b"location"] == b"http://www.example.com:8000/p?q=1"
    # No redirect to an unrelated host, and none when disabled.
    assert status(await call(middleware, scope_with_host(b"evil.com"))) == 400
    quiet = TrustedHostMiddleware(raw_app, allowed_hosts=["www.example.com"], www_redirect=False)
    assert status(await call(quiet, scope_with_host(b"example.com"))) == 400


@pytest.mark.anyio
async def test_websocket_without_denial_extension_is_closed() -> None:
    middleware = TrustedHostMiddleware(raw_app, allowed_hosts=["a.com"])
    sent = await call(middleware, scope_with_host(b"b.com", kind="websocket"))
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": ""}]


# --------------------------------------------------------------------------- in an app


async def homepage(request: Request) -> Response:
    return PlainTextResponse(f"host {request.url.hostname}")


async def ws_endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("in")
    await websocket.close()


def make_app(**options: Any) -> Stellate:
    return Stellate(
        routes=[Route("/", homepage), WebSocketRoute("/ws", ws_endpoint)],
        middleware=[Middleware(TrustedHostMiddleware, **options)],
    )


def test_in_app(test_client_factory: Client) -> None:
    app = make_app(allowed_hosts=["testserver", "*.testserver"])
    assert test_client_factory(app).get("/").text == "host testserver"
    assert test_client_factory(app, base_url="http://a.testserver").get("/").status_code == 200
    response = test_client_factory(app, base_url="http://evil.com").get("/")
    assert (response.status_code, response.text) == (400, "Invalid host header")
    # A 404 for an allowed host is the app's own answer.
    assert test_client_factory(app).get("/nope").status_code == 404


def test_in_app_forged_host_header(test_client_factory: Client) -> None:
    client = test_client_factory(make_app(allowed_hosts=["testserver"]))
    for forged in ("evil.com", "testserver.evil.com", "testserver@evil.com", "evil.com#testserver"):
        assert client.get("/", headers={"host": forged}).status_code == 400


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("host", "location"),
    [
        (b"internal-api:000443", b"http://www.internal-api:000443/p?q=1"),
        (b"Internal-API:0000080", b"http://www.Internal-API:0000080/p?q=1"),
        # Padded past what request.url holds (it names the server): still this host.
        (
            b"internal-api:" + b"0" * 40 + b"443",
            b"http://www.internal-api:" + b"0" * 40 + b"443/p?q=1",
        ),
    ],
)
async def test_www_redirect_keeps_a_valid_host_the_url_does_not_use(
    host: bytes, location: bytes
) -> None:
    allowed = ["www." + host.decode().split(":")[0]]
    sent = await call(TrustedHostMiddleware(raw_app, allowed_hosts=allowed), scope_with_host(host))
    assert status(sent) == 307
    assert dict(sent[0]["headers"])[b"location"] == location


def test_in_app_www_redirect(test_client_factory: Client) -> None:
    app = make_app(allowed_hosts=["www.example.com"])
    client = test_client_factory(app, base_url="https://example.com", follow_redirects=False)
    response = client.get("/path?x=1")
    assert response.status_code == 307
    assert response.headers["location"] == "https://www.example.com/path?x=1"


def test_in_app_websocket(test_client_factory: Client) -> None:
    from stellate.testclient import WebSocketDenialResponse

    app = make_app(allowed_hosts=["testserver"])
    with test_client_factory(app).websocket_connect("/ws") as session:
        assert session.receive_text() == "in"
    # websocket_connect resolves against ws://testserver, not base_url (as Starlette's)
    client = test_client_factory(app)
    with (
        pytest.raises(WebSocketDenialResponse) as info,
        client.websocket_connect("ws://evil.com/ws"),
    ):
        pass  # pragma: no cover
    assert info.value.status_code == 400


# --------------------------------------------------------------------------- properties


@pytest.mark.anyio
@given(host=st.binary(max_size=300) | st.sampled_from([b"[::1", b"a.com:", b"a.com:99999"]))
async def test_any_host_header_gets_a_clear_answer(host: bytes) -> None:
    middleware = TrustedHostMiddleware(raw_app, allowed_hosts=["example.com", "*.example.com"])
    sent = await call(middleware, scope_with_host(host))
    assert status(sent) in (200, 400)
    if status(sent) == 200:
        assert request_host(scope_with_host(host)) in ("example.com",) or str(
            request_host(scope_with_host(host))
        ).endswith(".example.com")
