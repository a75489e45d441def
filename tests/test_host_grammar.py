"""One Host grammar: TrustedHostMiddleware, ``request.url`` and ``Host`` routes agree.

Three places read the client's ``Host`` header: ``request.url`` (and everything built on
it) uses it or falls back to the server's address, a ``Host`` route matches it or not,
and ``TrustedHostMiddleware`` allows it or answers 400. They once had two grammars, and
then a Host the middleware refused could be one the URL used (``a%zz.example.com``), or
the other way round (``[V7.site]``). Each row below goes through all three, so they
cannot drift apart again unnoticed.

The port is where they differ on purpose, each as in Starlette except the middleware's
refusal of ports above 65535 (see docs/differences.md): the last test pins those rules.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import pytest
from tests.security._asgi import Answer, call

from stellate.applications import Stellate
from stellate.middleware import Middleware
from stellate.middleware.trustedhost import TrustedHostMiddleware
from stellate.requests import Request
from stellate.responses import JSONResponse, Response
from stellate.routing import Host, Route, Router

pytestmark = pytest.mark.anyio

SERVER = ("10.1.2.3", 8080)
SERVER_NETLOC = "10.1.2.3:8080"


class Row(NamedTuple):
    """A Host header; the host every reader sees (None: malformed); an allowed pattern."""

    header: str
    seen: str | None
    # What TrustedHostMiddleware is told to allow: the host itself, or for a malformed
    # header the name a lenient reader would have taken out of it.
    pattern: str


WELL_FORMED = [
    Row("example.com", "example.com", "example.com"),
    Row("Example.COM:8080", "example.com", "example.com"),
    Row("example.com.", "example.com.", "example.com."),
    Row("example.com:000443", "example.com", "example.com"),
    Row("a%41.example.com", "a%41.example.com", "a%41.example.com"),
    # `%` is a name character in Starlette's grammar, whether or not an escape follows.
    Row("a%zz.example.com", "a%zz.example.com", "a%zz.example.com"),
    Row("a%.example.com", "a%.example.com", "*.example.com"),
    Row("a~b!$&'()*+,;=_-.example.com", "a~b!$&'()*+,;=_-.example.com", "*.example.com"),
    # No length limit on a name (Starlette has none either).
    Row("a" * 300 + ".example.com", "a" * 300 + ".example.com", "*.example.com"),
    Row("127.0.0.1:80", "127.0.0.1", "127.0.0.1"),
    Row("999.1.1.1", "999.1.1.1", "999.1.1.1"),
    Row("xn--bcher-kva.example", "xn--bcher-kva.example", "xn--bcher-kva.example"),
    Row("[::1]", "[::1]", "::1"),
    Row("[::1]:8000", "[::1]", "[::1]"),
    Row("[::FFFF:1.2.3.4]", "[::ffff:1.2.3.4]", "::ffff:1.2.3.4"),
    Row("[v7.site]", "[v7.site]", "[v7.site]"),
    Row("[v7.Site]:80", "[v7.site]", "[v7.site]"),
]
MALFORMED = [
    Row("", None, "example.com"),
    Row(":80", None, "example.com"),
    Row("example.com:8o", None, "example.com"),
    Row("example.com:-1", None, "example.com"),
    Row("me@example.com", None, "example.com"),
    Row("example.com@evil.example", None, "*.example.com"),
    Row("user:pw@example.com", None, "example.com"),
    Row("example.com/path", None, "example.com"),
    Row("example.com?x", None, "example.com"),
    Row("example.com#x", None, "example.com"),
    Row("evil.example#.example.com", None, "*.example.com"),
    Row("example.com\\x", None, "example.com"),
    Row("a b.example.com", None, "*.example.com"),
    Row(" example.com", None, "example.com"),
    Row("example.com\t", None, "example.com"),
    Row("\u00e9vil.example.com", None, "*.example.com"),
    Row("EXAMPLE.\u00c9.com", None, "*.\u00e9.com"),
    # Bracketed literals that are not addresses, a zone id, IPvFuture with a capital V.
    Row("[:::]", None, ":::"),
    Row("[1::2::3]", None, "1::2::3"),
    Row("[::ffff:999.1.1.1]", None, "::ffff:999.1.1.1"),
    Row("[1:2:3:4:5:6:7:8:9]:80", None, "1:2:3:4:5:6:7:8:9"),
    Row("[::1%25eth0]", None, "::1%25eth0"),
    Row("[::1", None, "[::1"),
    Row("::1", None, "::1"),
    Row("[]", None, "[]"),
    Row("[V7.site]", None, "[v7.site]"),
    Row("[v7.]", None, "[v7.]"),
    Row("[v.site]", None, "[v.site]"),
]


async def where(request: Request) -> Response:
    host = request.path_params.get("host")
    return JSONResponse({"netloc": request.url.netloc, "route_host": host})


def make_app(*middleware: Middleware) -> Stellate:
    """A ``Host`` route that matches any well-formed host, and a fallback without one."""
    return Stellate(
        routes=[
            Host("{host}", app=Router([Route("/where", where)])),
            Route("/where", where),
        ],
        middleware=list(middleware),
    )


async def get(app: Stellate, host: str) -> Answer:
    return await call(app, "/where", headers=[("host", host)], server=SERVER)


def trusting(*patterns: str) -> Stellate:
    return make_app(Middleware(TrustedHostMiddleware, allowed_hosts=list(patterns)))


@pytest.mark.parametrize("row", WELL_FORMED, ids=lambda row: repr(row.header[:40]))
async def test_a_well_formed_host_is_seen_alike_by_all_three(row: Row) -> None:
    # TrustedHost lets it through, the URL uses the header as written, the Host route
    # matches it: all behind the middleware, in one request.
    answer = await get(trusting(row.pattern), row.header)
    assert answer.status == 200, answer.body
    assert json.loads(answer.body) == {"netloc": row.header, "route_host": row.seen}


@pytest.mark.parametrize("row", MALFORMED, ids=lambda row: repr(row.header[:40]))
async def test_a_malformed_host_is_refused_alike_by_all_three(row: Row) -> None:
    refused = await get(trusting(row.pattern), row.header)
    assert (refused.status, refused.body) == (400, b"Invalid host header")
    # Without the middleware: the URL falls back to the server, no Host route matches.
    answer = await get(make_app(), row.header)
    assert answer.status == 200, answer.body
    assert json.loads(answer.body) == {"netloc": SERVER_NETLOC, "route_host": None}


async def test_only_one_host_header_is_trusted() -> None:
    # Several Host headers: the middleware refuses (RFC 9112 §3.2); the URL and the
    # Host route, which cannot refuse, both read the first one, so they still agree.
    app = trusting("example.com")
    both = [("host", "example.com"), ("host", "evil.example")]
    refused = await call(app, "/where", headers=both, server=SERVER)
    assert (refused.status, refused.body) == (400, b"Invalid host header")
    answer = await call(make_app(), "/where", headers=both, server=SERVER)
    assert json.loads(answer.body) == {"netloc": "example.com", "route_host": "example.com"}


PADDED_443 = "example.com:" + "0" * 40 + "443"


@pytest.mark.parametrize(
    ("header", "trusted", "netloc"),
    [
        # In range, any spelling: used as written by all three.
        ("example.com:65535", 200, "example.com:65535"),
        ("example.com:0000080", 200, "example.com:0000080"),
        # In range but padded past what urllib reads back: the middleware (as Starlette's)
        # lets it through, the URL uses the server's own address, never another host.
        (PADDED_443, 200, SERVER_NETLOC),
        # Out of range: no port. The URL falls back (as in Starlette) and the middleware
        # refuses (stellate's own rule); thousands of digits are no 500.
        ("example.com:65536", 400, SERVER_NETLOC),
        ("example.com:000070000", 400, SERVER_NETLOC),
        ("example.com:" + "9" * 5000, 400, SERVER_NETLOC),
    ],
    ids=lambda value: repr(value)[:40] if isinstance(value, str) else None,
)
async def test_port_rules_of_the_three_readers(header: str, trusted: int, netloc: str) -> None:
    assert (await get(trusting("example.com"), header)).status == trusted
    answer = await get(make_app(), header)
    # A Host route ignores the port, whatever its value (as Starlette's does).
    assert json.loads(answer.body) == {"netloc": netloc, "route_host": "example.com"}


@pytest.mark.parametrize("header", ["example.com:", "[::1]:"])
async def test_an_empty_port_is_no_port_for_the_url_and_ignored_by_the_middleware(
    header: str,
) -> None:
    # RFC 3986 allows "host:" (port = *DIGIT). Starlette's URLs and Host routes need a
    # digit after the colon; its TrustedHostMiddleware ignores the port: so here.
    pattern = header[:-1].strip("[]")
    assert (await get(trusting(pattern), header)).status == 200
    answer = await get(make_app(), header)
    assert json.loads(answer.body) == {"netloc": SERVER_NETLOC, "route_host": None}
