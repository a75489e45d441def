"""CORSMiddleware: preflights, simple responses, credentials, Vary, look-alike origins."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stellate.applications import Stellate
from stellate.datastructures import Headers
from stellate.middleware import Middleware
from stellate.middleware.cors import ALL_METHODS, PREFLIGHT_VARY, CORSMiddleware
from stellate.requests import Request
from stellate.responses import PlainTextResponse, Response
from stellate.routing import Route, WebSocketRoute
from stellate.types import Message, Receive, Scope, Send
from stellate.websockets import WebSocket

Client = Callable[..., Any]

ORIGIN = "https://example.com"


async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("raw", headers={"vary": "Accept"})(scope, receive, send)


def make_scope(method: str = "GET", headers: dict[str, str] | None = None) -> Scope:
    return {
        "type": "http",
        "method": method,
        "scheme": "http",
        "path": "/",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "server": ("testserver", 80),
    }


async def call(middleware: Any, scope: Scope) -> tuple[int, Headers, bytes]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await middleware(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return int(sent[0]["status"]), Headers(raw=list(sent[0]["headers"])), body


def preflight(
    origin: str = ORIGIN, method: str = "GET", headers: str | None = None, **extra: str
) -> Scope:
    request_headers = {"origin": origin, "access-control-request-method": method, **extra}
    if headers is not None:
        request_headers["access-control-request-headers"] = headers
    return make_scope("OPTIONS", request_headers)


pytestmark = pytest.mark.anyio


# --------------------------------------------------------------------------- preflight


async def test_preflight_allowed() -> None:
    cors = CORSMiddleware(
        raw_app,
        allow_origins=[ORIGIN],
        allow_methods=["GET", "POST"],
        allow_headers=["X-Token"],
        max_age=123,
    )
    code, headers, body = await call(cors, preflight(method="POST", headers="x-token, Accept"))
    assert (code, body) == (200, b"OK")
    assert headers["access-control-allow-origin"] == ORIGIN
    assert headers["access-control-allow-methods"] == "GET, POST"
    assert headers["access-control-allow-headers"] == (
        "Accept, Accept-Language, Content-Language, Content-Type, X-Token"
    )
    assert headers["access-control-max-age"] == "123"
    assert headers["vary"] == PREFLIGHT_VARY
    assert "access-control-allow-credentials" not in headers


@pytest.mark.parametrize(
    ("scope", "refused"),
    [
        (preflight(origin="https://evil.com"), "origin"),
        (preflight(method="DELETE"), "method"),
        (preflight(headers="x-other"), "headers"),
        (
            preflight(origin="https://evil.com", method="PUT", headers="x-other"),
            "origin, method, headers",
        ),
    ],
)
async def test_preflight_refusals_say_what_was_refused(scope: Scope, refused: str) -> None:
    cors = CORSMiddleware(raw_app, allow_origins=[ORIGIN], allow_headers=["x-token"])
    code, headers, body = await call(cors, scope)
    assert code == 400
    assert body == f"Disallowed CORS {refused}".encode()
    if "origin" in refused:
        assert "access-control-allow-origin" not in headers


async def test_preflight_with_wildcards() -> None:
    cors = CORSMiddleware(raw_app, allow_origins=["*"], allow_methods=["*"], allow_headers=["*"])
    code, headers, _ = await call(cors, preflight(method="QUERY", headers="X-Anything, X-Else"))
    assert code == 200
    assert headers["access-control-allow-origin"] == "*"
    assert headers["access-control-allow-methods"] == ", ".join(ALL_METHODS)
    assert headers["access-control-allow-headers"] == "X-Anything, X-Else"
    assert headers["vary"] == PREFLIGHT_VARY


async def test_preflight_with_credentials_echoes_the_origin() -> None:
    cors = CORSMiddleware(raw_app, allow_origins=["*"], allow_credentials=True)
    code, headers, _ = await call(cors, preflight())
    assert code == 200
    assert headers["access-control-allow-origin"] == ORIGIN
    assert headers["access-control-allow-credentials"] == "true"
    assert headers["vary"] == PREFLIGHT_VARY


async def test_preflight_private_network() -> None:
    extra = {"access-control-request-private-network": "true"}
    allowing = CORSMiddleware(raw_app, allow_origins=[ORIGIN], allow_private_network=True)
    code, headers, _ = await call(allowing, preflight(**extra))
    assert code == 200
    assert headers["access-control-allow-private-network"] == "true"
    assert headers["vary"] == PREFLIGHT_VARY
    refusing = CORSMiddleware(raw_app, allow_origins=[ORIGIN])
    code, headers, body = await call(refusing, preflight(**extra))
    assert (code, body) == (400, b"Disallowed CORS private-network")
    assert "access-control-allow-private-network" not in headers


async def test_preflight_control_characters_in_requested_headers_are_refused() -> None:
    cors = CORSMiddleware(raw_app, allow_origins=["*"], allow_headers=["*"])
    code, headers, _ = await call(cors, preflight(headers="x-a\x01"))
    assert code == 400
    assert "access-control-allow-headers" not in headers or "\x01" not in headers.get(
        "access-control-allow-headers", ""
    )


async def test_options_without_request_method_is_not_a_preflight() -> None:
    cors = CORSMiddleware(raw_app, allow_origins=[ORIGIN])
    code, headers, body = await call(cors, make_scope("OPTIONS", {"origin": ORIGIN}))
    assert (code, body) == (200, b"raw")
    assert headers["access-control-allow-origin"] == ORIGIN


async def test_preflight_like_request_without_origin_reaches_the_app() -> None:
    cors = CORSMiddleware(raw_app, allow_origins=[ORIGIN])
    scope = make_scope("OPTIONS", {"access-control-request-method": "GET"})
    code, _, body = await call(cors, scope)
    assert (code, body) == (200, b"raw")


def names_and_values(headers: Headers) -> list[tuple[str, str]]:
    return [(key.decode(), value.decode()) for key, value in headers.raw]


VARY = ("vary", PREFLIGHT_VARY)
PLAIN_OK = [("content-length", "2"), ("content-type", "text/plain; charset=utf-8")]
ALLOW_HEADERS = "Accept, Accept-Language, Content-Language, Content-Type, X-Token"


@pytest.mark.parametrize(
    ("options", "request_headers", "expected"),
    [
        (
            {"allow_origins": ["*"], "allow_headers": ["X-Token"]},
            None,
            [
                VARY,
                ("access-control-allow-origin", "*"),
                ("access-control-allow-methods", "GET"),
                ("access-control-max-age", "600"),
                ("access-control-allow-headers", ALLOW_HEADERS),
            ],
        ),
        (
            {"allow_origins": [ORIGIN], "allow_headers": ["X-Token"], "allow_credentials": True},
            "x-token",
            [
                VARY,
                ("access-control-allow-methods", "GET"),
                ("access-control-max-age", "600"),
                ("access-control-allow-headers", ALLOW_HEADERS),
                ("access-control-allow-credentials", "true"),
                ("access-control-allow-origin", ORIGIN),
            ],
        ),
        (
            {
                "allow_origins": [ORIGIN],
                "allow_headers": ["*"],
                "allow_credentials": True,
                "allow_private_network": True,
            },
            "X-Whatever",
            [
                VARY,
                ("access-control-allow-methods", "GET"),
                ("access-control-max-age", "600"),
                ("access-control-allow-credentials", "true"),
                ("access-control-allow-origin", ORIGIN),
                ("access-control-allow-headers", "X-Whatever"),
                ("access-control-allow-private-network", "true"),
            ],
        ),
    ],
)
async def test_preflight_vary_and_header_order(
    options: dict[str, Any], request_headers: str | None, expected: list[tuple[str, str]]
) -> None:
    cors = CORSMiddleware(raw_app, **options)
    extra = {"access-control-request-private-network": "true"}
    scope = preflight(
        headers=request_headers, **(extra if "allow_private_network" in options else {})
    )
    code, headers, _ = await call(cors, scope)
    assert code == 200
    assert names_and_values(headers) == expected + PLAIN_OK


async def test_refused_preflight_has_the_same_vary() -> None:
    cors = CORSMiddleware(raw_app, allow_origins=["*"], allow_headers=["X-Token"])
    code, headers, _ = await call(cors, preflight(method="PUT"))
    assert code == 400
    assert names_and_values(headers)[0] == VARY


async def test_allow_headers_keep_their_configured_spelling() -> None:
    cors = CORSMiddleware(
        raw_app, allow_origins=[ORIGIN], allow_headers=["X-Token", "content-type"]
    )
    code, headers, _ = await call(cors, preflight(headers="x-TOKEN, CONTENT-TYPE, accept"))
    assert code == 200
    assert headers["access-control-allow-headers"] == (
        "Accept, Accept-Language, Content-Language, Content-Type, X-Token, content-type"
    )


async def test_allow_methods_are_kept_as_written_and_compared_exactly() -> None:
    cors = CORSMiddleware(raw_app, allow_origins=[ORIGIN], allow_methods=["GET", "post"])
    code, headers, _ = await call(cors, preflight(method="post"))
    assert code == 200
    assert headers["access-control-allow-methods"] == "GET, post"
    code, _, body = await call(cors, preflight(method="POST"))
    assert (code, body) == (400, b"Disallowed CORS method")


@pytest.mark.parametrize("requested", ["", "X-Token,,", " , x-token"])
async def test_empty_requested_header_names_are_refused(requested: str) -> None:
    cors = CORSMiddleware(raw_app, allow_origins=[ORIGIN], allow_headers=["X-Token"])
    code, _, body = await call(cors, preflight(headers=requested))
    assert (code, body) == (400, b"Disallowed CORS headers")


async def test_empty_requested_headers_are_mirrored_with_a_star() -> None:
    cors = CORSMiddleware(raw_app, allow_origins=[ORIGIN], allow_headers=["*"])
    code, headers, _ = await call(cors, preflight(headers=""))
    assert code == 200
    assert headers.getlist("access-control-allow-headers") == [""]


@pytest.mark.parametrize("value", ["true", "false", ""])
async def test_any_private_network_request_header_triggers_the_check(value: str) -> None:
    extra = {"access-control-request-private-network": value}
    allowing = CORSMiddleware(raw_app, allow_origins=[ORIGIN], allow_private_network=True)
    code, headers, _ = await call(allowing, preflight(**extra))
    assert code == 200
    assert headers["access-control-allow-private-network"] == "true"
    refusing = CORSMiddleware(raw_app, allow_origins=[ORIGIN])
    code, _, body = await call(refusing, preflight(method="PUT", **extra))
    assert (code, body) == (400, b"Disallowed CORS method, private-network")


async def test_null_origin_without_credentials_is_like_any_origin() -> None:
    regex = CORSMiddleware(raw_app, allow_origin_regex=r"null|https://.*\.example\.org")
    _, headers, _ = await call(regex, make_scope(headers={"origin": "null"}))
    assert headers["access-control-allow-origin"] == "null"
    code, headers, _ = await call(regex, preflight(origin="null"))
    assert code == 200
    assert headers["access-control-allow-origin"] == "null"
    wildcard = CORSMiddleware(raw_app, allow_origins=["*"])
    code, headers, _ = await call(wildcard, preflight(origin="null"))
    assert code == 200
    assert headers["access-control-allow-origin"] == "*"


async def test_null_origin_with_credentials_is_refused_even_by_regex() -> None:
    cors = CORSMiddleware(raw_app, allow_origin_regex="null", allow_credentials=True)
    _, headers, _ = await call(cors, make_scope(headers={"origin": "null"}))
    assert "access-control-allow-origin" not in headers
    code, _, body = await call(cors, preflight(origin="null"))
    assert (code, body) == (400, b"Disallowed CORS origin")


async def test_control_characters_in_an_origin_are_never_reflected() -> None:
    cors = CORSMiddleware(raw_app, allow_origin_regex=r".*")
    _, headers, _ = await call(cors, make_scope(headers={"origin": "https://a\x01b"}))
    assert "access-control-allow-origin" not in headers
    code, headers, _ = await call(cors, preflight(origin="https://a\x01b"))
    assert code == 400
    assert "access-control-allow-origin" not in headers


# --------------------------------------------------------------------------- simple


async def test_simple_response_for_an_allowed_origin() -> None:
    cors = CORSMiddleware(raw_app, allow_origins=[ORIGIN], expose_headers=["X-Total", "X-Page"])
    code, headers, body = await call(cors, make_scope(headers={"origin": ORIGIN}))
    assert (code, body) == (200, b"raw")
    assert headers["access-control-allow-origin"] == ORIGIN
    assert headers["access-control-expose-headers"] == "X-Total, X-Page"
    assert headers.getlist("vary") == ["Accept, Origin"]


async def test_simple_response_header_order() -> None:
    async def bare(scope: Scope, receive: Receive, send: Send) -> None:
        await Response(b"x", media_type="text/plain")(scope, receive, send)

    cors = CORSMiddleware(
        bare, allow_origins=[ORIGIN], allow_credentials=True, expose_headers=["X-Total"]
    )
    _, headers, _ = await call(cors, make_scope(headers={"origin": ORIGIN}))
    assert names_and_values(headers)[2:] == [
        ("access-control-allow-credentials", "true"),
        ("access-control-expose-headers", "X-Total"),
        ("access-control-allow-origin", ORIGIN),
        ("vary", "Origin"),
    ]
    star = CORSMiddleware(bare, allow_origins=["*"], expose_headers=["X-Total"])
    _, headers, _ = await call(star, make_scope(headers={"origin": ORIGIN}))
    assert names_and_values(headers)[2:] == [
        ("access-control-allow-origin", "*"),
        ("access-control-expose-headers", "X-Total"),
        ("vary", "Origin"),
    ]


async def test_simple_response_for_a_disallowed_origin_has_the_configured_headers() -> None:
    cors = CORSMiddleware(
        raw_app, allow_origins=[ORIGIN], allow_credentials=True, expose_headers=["X-Total"]
    )
    _, headers, _ = await call(cors, make_scope(headers={"origin": "https://evil.com"}))
    assert headers["access-control-allow-credentials"] == "true"
    assert headers["access-control-expose-headers"] == "X-Total"
    assert "access-control-allow-origin" not in headers


async def test_simple_response_for_any_origin() -> None:
    cors = CORSMiddleware(raw_app, allow_origins=["*"])
    _, headers, _ = await call(cors, make_scope(headers={"origin": ORIGIN}))
    assert headers["access-control-allow-origin"] == "*"
    _, headers, _ = await call(cors, make_scope(headers={"origin": "null"}))
    assert headers["access-control-allow-origin"] == "*"


async def test_credentials_never_go_with_a_star() -> None:
    cors = CORSMiddleware(raw_app, allow_origins=["*"], allow_credentials=True)
    _, headers, _ = await call(cors, make_scope(headers={"origin": ORIGIN}))
    assert headers["access-control-allow-origin"] == ORIGIN
    assert headers["access-control-allow-credentials"] == "true"
    assert "Origin" in headers["vary"]


@pytest.mark.parametrize(
    "origin",
    [
        "https://example.com.evil.net",
        "https://evil.com",
        "http://example.com",
        "https://example.com:8443",
        "https://EXAMPLE.com.evil.net",
        "null",
        "https://a.example.com\r\nx-evil: 1",
    ],
)
async def test_look_alike_origins_are_never_reflected(origin: str) -> None:
    cors = CORSMiddleware(
        raw_app,
        allow_origins=[ORIGIN],
        allow_origin_regex=r"https://[a-z]+\.example\.com",
        allow_credentials=True,
    )
    code, headers, body = await call(cors, make_scope(headers={"origin": origin}))
    assert (code, body) == (200, b"raw")
    assert "access-control-allow-origin" not in headers
    assert "Origin" in headers["vary"]
    code, headers, _ = await call(cors, preflight(origin=origin))
    assert code == 400
    assert "access-control-allow-origin" not in headers


async def test_null_origin_with_credentials_only_when_listed() -> None:
    wildcard = CORSMiddleware(raw_app, allow_origins=["*"], allow_credentials=True)
    _, headers, _ = await call(wildcard, make_scope(headers={"origin": "null"}))
    assert "access-control-allow-origin" not in headers
    listed = CORSMiddleware(raw_app, allow_origins=["null"], allow_credentials=True)
    _, headers, _ = await call(listed, make_scope(headers={"origin": "null"}))
    assert headers["access-control-allow-origin"] == "null"


async def test_origin_regex_matches_whole_origin() -> None:
    cors = CORSMiddleware(raw_app, allow_origin_regex=r"https://.*\.example\.org")
    _, headers, _ = await call(cors, make_scope(headers={"origin": "https://a.example.org"}))
    assert headers["access-control-allow-origin"] == "https://a.example.org"
    _, headers, _ = await call(
        cors, make_scope(headers={"origin": "https://a.example.org.evil.net"})
    )
    assert "access-control-allow-origin" not in headers


async def test_any_collection_is_accepted() -> None:
    cors = CORSMiddleware(
        raw_app,
        allow_origins={ORIGIN},
        allow_methods=frozenset({"PUT"}),
        allow_headers=("x-a",),
        expose_headers=["x-b"],
    )
    code, headers, _ = await call(cors, preflight(method="PUT", headers="X-A"))
    assert code == 200
    assert headers["access-control-allow-methods"] == "PUT"


async def test_no_origin_only_adds_vary() -> None:
    cors = CORSMiddleware(raw_app, allow_origins=[ORIGIN], allow_credentials=True)
    code, headers, _ = await call(cors, make_scope())
    assert code == 200
    assert headers["vary"] == "Accept, Origin"
    assert not any(name.startswith("access-control") for name in headers)


async def test_non_http_scopes_pass_through() -> None:
    seen = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    await CORSMiddleware(app)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]


async def test_app_body_messages_pass_untouched() -> None:
    async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 201})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": b"b"})

    cors = CORSMiddleware(streaming, allow_origins=[ORIGIN])
    code, headers, body = await call(cors, make_scope(headers={"origin": ORIGIN}))
    assert (code, body) == (201, b"ab")
    assert headers["access-control-allow-origin"] == ORIGIN


# --------------------------------------------------------------------------- in an app


async def homepage(request: Request) -> Response:
    return PlainTextResponse("home")


async def crash(request: Request) -> Response:
    raise RuntimeError("boom")


async def ws_endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("ws")
    await websocket.close()


ROUTES = [Route("/", homepage), Route("/crash", crash), WebSocketRoute("/ws", ws_endpoint)]
CORS_OPTIONS: dict[str, Any] = {"allow_origins": [ORIGIN], "allow_methods": ["GET", "POST"]}


def test_in_app_as_user_middleware(test_client_factory: Client) -> None:
    app = Stellate(routes=ROUTES, middleware=[Middleware(CORSMiddleware, **CORS_OPTIONS)])
    client = test_client_factory(app, raise_server_exceptions=False)
    response = client.get("/", headers={"origin": ORIGIN})
    assert response.headers["access-control-allow-origin"] == ORIGIN
    # A 404 comes from inside the user middleware: it gets CORS headers.
    missing = client.get("/missing", headers={"origin": ORIGIN})
    assert missing.status_code == 404
    assert missing.headers["access-control-allow-origin"] == ORIGIN
    preflight_response = client.options(
        "/anything", headers={"origin": ORIGIN, "access-control-request-method": "POST"}
    )
    assert preflight_response.status_code == 200
    # A 500 is sent by ServerErrorMiddleware, outside the user middleware: no CORS headers.
    crashed = client.get("/crash", headers={"origin": ORIGIN})
    assert crashed.status_code == 500
    assert "access-control-allow-origin" not in crashed.headers
    with client.websocket_connect("/ws", headers={"origin": ORIGIN}) as session:
        assert session.receive_text() == "ws"


def test_outermost_puts_cors_headers_on_server_errors(test_client_factory: Client) -> None:
    app = CORSMiddleware(Stellate(routes=ROUTES), **CORS_OPTIONS)
    client = test_client_factory(app, raise_server_exceptions=False)
    crashed = client.get("/crash", headers={"origin": ORIGIN})
    assert (crashed.status_code, crashed.text) == (500, "Internal Server Error")
    assert crashed.headers["access-control-allow-origin"] == ORIGIN
    assert crashed.headers["vary"] == "Origin"
    missing = client.get("/missing", headers={"origin": ORIGIN})
    assert missing.status_code == 404
    assert missing.headers["access-control-allow-origin"] == ORIGIN
    with pytest.raises(RuntimeError, match="boom"):
        test_client_factory(app).get("/crash", headers={"origin": ORIGIN})


# --------------------------------------------------------------------------- properties


_latin1 = st.text(st.characters(max_codepoint=255), max_size=60)


@pytest.mark.anyio
@given(origin=_latin1 | st.sampled_from([ORIGIN + ".evil.net", "null", ORIGIN + "\n"]))
async def test_only_allowed_origins_are_ever_echoed(origin: str) -> None:
    cors = CORSMiddleware(
        raw_app,
        allow_origins=[ORIGIN],
        allow_origin_regex=r"https://[a-z]+\.example\.org",
        allow_credentials=True,
        allow_headers=["*"],
    )
    for scope in (make_scope(headers={"origin": origin}), preflight(origin=origin, headers=origin)):
        code, headers, _ = await call(cors, scope)
        assert code in (200, 400)
        echoed = headers.get("access-control-allow-origin")
        assert (
            echoed is None
            or echoed == ORIGIN
            or (
                echoed == origin
                and origin.startswith("https://")
                and origin.endswith(".example.org")
            )
        )


async def test_preflight_never_reaches_the_app() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:  # pragma: no cover
        raise AssertionError("a preflight must be answered by the middleware")

    cors = CORSMiddleware(app, allow_origins=[ORIGIN])
    assert (await call(cors, preflight()))[0] == 200
    assert (await call(cors, preflight(origin="https://evil.com")))[0] == 400
