"""CORS: an origin that is not allowed never gets its origin echoed, with or without
credentials; regex origins match the whole origin; answers that vary with Origin say so.

Each attack runs a whole application (CORSMiddleware outermost) on both backends, for
both a simple request and a preflight.
"""

from __future__ import annotations

import pytest
from tests.security._asgi import Answer, call

from stellate.applications import Stellate
from stellate.middleware import Middleware
from stellate.middleware.cors import CORSMiddleware
from stellate.requests import Request
from stellate.responses import PlainTextResponse, Response
from stellate.routing import Route

pytestmark = pytest.mark.anyio


async def secret(request: Request) -> Response:
    return PlainTextResponse("account data")


def make_app(**options: object) -> Stellate:
    return Stellate(
        routes=[Route("/", secret, methods=["GET", "POST"])],
        middleware=[Middleware(CORSMiddleware, **options)],
    )


async def simple(app: Stellate, origin: str) -> Answer:
    return await call(app, "/", headers=[("host", "api.good.example"), ("origin", origin)])


async def preflight(app: Stellate, origin: str) -> Answer:
    return await call(
        app,
        "/",
        method="OPTIONS",
        headers=[
            ("host", "api.good.example"),
            ("origin", origin),
            ("access-control-request-method", "POST"),
        ],
    )


LOOK_ALIKES = [
    "https://good.example.evil.example",
    "https://evilgood.example",
    "https://good.example:8443",
    "http://good.example",
    "https://good.example/",
    "https://good.example.",
    "https://GOOD.example",
    "https://good.example\r\nX-Evil: 1",
    "https://good.example%0d%0a",
    "https://good.example@evil.example",
    "https://evil.example#https://good.example",
    "https://evil.example?https://good.example",
    "null",
    "",
    " https://good.example",
    "*",
]
REGEX = r"https://([a-z0-9-]+\.)?good\.example"
REGEX_LOOK_ALIKES = [
    "https://good.example.evil.example",
    "https://a.good.example.evil.example",
    "https://evil.example/https://good.example",
    "https://x.good.examplee",
    "https://good.example\n",
    "xhttps://good.example",
    "https://good-example",
    "null",
]


def assert_not_shared(answer: Answer, origin: str) -> None:
    allowed = answer.header("access-control-allow-origin")
    assert allowed is None, (origin, allowed)


@pytest.mark.parametrize("credentials", [False, True], ids=["plain", "credentials"])
@pytest.mark.parametrize("origin", LOOK_ALIKES)
async def test_unlisted_origins_are_never_echoed(origin: str, credentials: bool) -> None:
    app = make_app(allow_origins=["https://good.example"], allow_credentials=credentials)
    answer = await simple(app, origin)
    assert (answer.status, answer.body) == (200, b"account data"), "the request itself is served"
    assert_not_shared(answer, origin)
    assert "Origin" in (answer.header("vary") or "")
    refused = await preflight(app, origin)
    assert refused.status == 400
    assert_not_shared(refused, origin)


@pytest.mark.parametrize("origin", REGEX_LOOK_ALIKES)
async def test_regex_origins_are_anchored(origin: str) -> None:
    app = make_app(allow_origin_regex=REGEX, allow_credentials=True)
    answer = await simple(app, origin)
    assert answer.header("access-control-allow-origin") is None, origin
    assert (await preflight(app, origin)).status == 400


@pytest.mark.parametrize("origin", ["https://good.example", "https://api.good.example"])
async def test_regex_origins_that_match_are_echoed_with_vary(origin: str) -> None:
    app = make_app(allow_origin_regex=REGEX, allow_credentials=True)
    answer = await simple(app, origin)
    assert answer.header("access-control-allow-origin") == origin
    assert answer.header("access-control-allow-credentials") == "true"
    assert "Origin" in (answer.header("vary") or "")


async def test_credentials_never_go_with_a_star() -> None:
    """``*`` with credentials is refused by browsers; stellate echoes the origin instead
    (every origin is allowed by that configuration) and marks the answer as varying."""
    app = make_app(allow_origins=["*"], allow_credentials=True)
    for answer in (
        await simple(app, "https://x.example"),
        await preflight(app, "https://x.example"),
    ):
        assert answer.header("access-control-allow-origin") == "https://x.example"
        assert "Origin" in (answer.header("vary") or "")
    null = await simple(app, "null")
    assert null.header("access-control-allow-origin") is None, "null is never covered by *"
    header_injection = await simple(app, "https://x.example\r\nX-Evil: 1")
    assert header_injection.header("access-control-allow-origin") is None


async def test_star_without_credentials_echoes_nobody() -> None:
    app = make_app(allow_origins=["*"])
    answer = await simple(app, "https://evil.example")
    assert answer.header("access-control-allow-origin") == "*"
    assert answer.header("access-control-allow-credentials") is None


async def test_first_of_several_origin_headers_decides() -> None:
    app = make_app(allow_origins=["https://good.example"], allow_credentials=True)
    answer = await call(
        app,
        "/",
        headers=[
            ("host", "x"),
            ("origin", "https://evil.example"),
            ("origin", "https://good.example"),
        ],
    )
    assert answer.header("access-control-allow-origin") is None
