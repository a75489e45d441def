"""Host header poisoning and open redirects.

The ``Host`` header is chosen by the client, and stellate builds absolute URLs from it
(``request.url``, ``url_for``, the redirects of ``redirect_slashes``, HTTPSRedirect and
TrustedHost's ``www`` redirect). What stellate promises:

* a *malformed* Host (userinfo, a path, spaces, CR/LF, a bad port) is never used: URLs
  fall back to the server's own address;
* with ``TrustedHostMiddleware`` a well-formed Host that is not allowed never reaches the
  application (400), so nothing it builds can point elsewhere;
* no redirect stellate sends changes the host, whatever the path holds (``//evil``,
  backslashes, encoded slashes): Location is an absolute URL whose network location is
  always the request's (validated) host. After a host, a path such as ``//evil.example/``
  is just a path (Starlette keeps it so, and so does stellate since it follows Starlette
  there); it could only name a host in a *relative* reference, which stellate never sends.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from tests.security._asgi import Answer, call

from stellate.applications import Stellate
from stellate.middleware import Middleware
from stellate.middleware.httpsredirect import HTTPSRedirectMiddleware
from stellate.middleware.trustedhost import TrustedHostMiddleware
from stellate.requests import Request
from stellate.responses import JSONResponse, PlainTextResponse, Response
from stellate.routing import Route
from stellate.types import Receive, Scope, Send

pytestmark = pytest.mark.anyio

SERVER = ("10.1.2.3", 8080)
MALFORMED_HOSTS = [
    "evil.example@good.example",
    "good.example@evil.example",
    "good.example/evil.example",
    "evil.example/",
    "good.example\\evil.example",
    "good.example evil.example",
    "good.example:80@evil.example",
    "good.example:99999",
    "good.example:8o",
    "good.example#evil.example",
    "good.example?evil.example",
    "\u00e9vil.example",
    "good.example\tevil",
    "",
]
# Paths that would move the host of a URL string built carelessly from them.
HOSTILE_PATHS = [
    "//evil.example",
    "//evil.example/",
    "///evil.example",
    "/\\evil.example",
    "/\\\\evil.example",
    "/%2F%2Fevil.example",
    "/@evil.example",
    "/.//evil.example",
    "/\t/evil.example",
    "/\r\n/evil.example",
]


async def where(request: Request) -> Response:
    return JSONResponse(
        {
            "url": str(request.url),
            "base": str(request.base_url),
            "for": str(request.url_for("where")),
        }
    )


async def slash(request: Request) -> Response:
    return PlainTextResponse("slash")


def make_app(*middleware: Middleware) -> Stellate:
    return Stellate(
        routes=[Route("/where", where, name="where"), Route("/{rest:path}/", slash)],
        middleware=list(middleware),
    )


async def get(app: Stellate, path: str, host: str | list[str], **kwargs: object) -> Answer:
    hosts = [host] if isinstance(host, str) else host
    return await call(app, path, headers=[("host", h) for h in hosts], server=SERVER, **kwargs)  # type: ignore[arg-type]


def netloc(location: str | None) -> str:
    assert location is not None
    return urlsplit(location).netloc


@pytest.mark.parametrize("host", MALFORMED_HOSTS)
async def test_malformed_host_is_never_used_in_urls(host: str) -> None:
    answer = await get(make_app(), "/where", host)
    assert answer.status == 200
    urls = answer.body.decode()
    assert "evil" not in urls, urls
    assert '"for":"http://10.1.2.3:8080/where"' in urls, urls


async def test_well_formed_host_is_used_without_trusted_host() -> None:
    """Without TrustedHostMiddleware a well-formed Host is believed (as everywhere):
    this is the documented reason to install it."""
    answer = await get(make_app(), "/where", "evil.example")
    assert b'"for":"http://evil.example/where"' in answer.body


@pytest.mark.parametrize("host", ["evil.example", "good.example.evil.example", "evil.example:443"])
async def test_trusted_host_keeps_poisoned_hosts_from_the_app(host: str) -> None:
    app = make_app(
        Middleware(TrustedHostMiddleware, allowed_hosts=["good.example", "*.good.example"])
    )
    answer = await get(app, "/where", host)
    assert (answer.status, answer.body) == (400, b"Invalid host header")


@pytest.mark.parametrize(
    "hosts",
    [
        ["good.example", "evil.example"],
        ["evil.example", "good.example"],
        ["good.example", "good.example"],
        [],
        *[[host] for host in MALFORMED_HOSTS],
        ["xgood.example"],
        ["good.example.."],
        ["good.example."],
        ["good.example:65536"],
    ],
)
async def test_trusted_host_refuses_ambiguous_hosts(hosts: list[str]) -> None:
    app = make_app(
        Middleware(TrustedHostMiddleware, allowed_hosts=["good.example", "*.good.example"])
    )
    answer = await get(app, "/where", hosts)
    assert (answer.status, answer.body) == (400, b"Invalid host header"), hosts


@pytest.mark.parametrize(
    "host", ["good.example", "GOOD.example", "good.example:000443", "a.b.good.example:8000"]
)
async def test_trusted_host_allows_its_hosts(host: str) -> None:
    app = make_app(
        Middleware(TrustedHostMiddleware, allowed_hosts=["good.example", "*.good.example"])
    )
    assert (await get(app, "/where", host)).status == 200


@pytest.mark.parametrize("path", HOSTILE_PATHS)
async def test_www_redirect_stays_on_the_allowed_host(path: str) -> None:
    app = make_app(Middleware(TrustedHostMiddleware, allowed_hosts=["www.good.example"]))
    answer = await get(app, path, "good.example")
    assert answer.status == 307
    assert netloc(answer.header("location")) == "www.good.example", answer.header("location")


@pytest.mark.parametrize("path", HOSTILE_PATHS)
@pytest.mark.parametrize("host", ["good.example", "good.example:80", "good.example:8443"])
async def test_https_redirect_only_changes_the_scheme(path: str, host: str) -> None:
    app = make_app(Middleware(HTTPSRedirectMiddleware))
    answer = await get(app, path, host)
    assert answer.status == 307
    location = answer.header("location")
    target = urlsplit(location)
    assert target.scheme == "https"
    assert target.netloc == ("good.example:8443" if host.endswith("8443") else "good.example")
    assert "\\" not in (location or "")


@pytest.mark.parametrize("host", MALFORMED_HOSTS)
async def test_https_redirect_with_a_malformed_host_uses_the_server(host: str) -> None:
    answer = await get(make_app(Middleware(HTTPSRedirectMiddleware)), "/where", host)
    assert answer.status == 307
    assert netloc(answer.header("location")) == "10.1.2.3:8080"


@pytest.mark.parametrize("path", HOSTILE_PATHS)
async def test_redirect_slashes_stays_on_the_host(path: str) -> None:
    """``Route("/{rest:path}/")`` matches ``//evil.example/``: the slash redirect must
    still point at this host, not be read as ``//evil.example/`` (scheme-relative)."""
    answer = await get(make_app(), path, "good.example")
    assert answer.status in (200, 307, 404), answer.status
    if answer.status == 307:
        location = answer.header("location")
        assert netloc(location) == "good.example", location
        assert urlsplit(location).scheme == "http", location


# Issue 22 item 9: hostile Host literals and paths, in process (both backends).
BAD_IP_LITERALS = [
    "[:::]",
    "[1::2::3]",
    "[1:2:3:4:5:6:7:8:9]:80",
    "[::ffff:999.1.1.1]",
    "[::1%25eth0]",
    "[V7.site]",
]


@pytest.mark.parametrize("host", BAD_IP_LITERALS)
async def test_bad_ip_literal_host_never_gives_a_500(host: str) -> None:
    answer = await get(make_app(), "/where", host)
    assert answer.status == 200
    urls = answer.body.decode()
    assert '"url":"http://10.1.2.3:8080/where"' in urls, urls
    assert '"for":"http://10.1.2.3:8080/where"' in urls, urls


@pytest.mark.parametrize("host", BAD_IP_LITERALS)
async def test_redirect_slashes_never_builds_location_from_a_bad_ip_literal(host: str) -> None:
    app = Stellate(routes=[Route("/where", where, name="where")])
    answer = await get(app, "/where/", host)
    assert answer.status == 307
    assert answer.header("location") == "http://10.1.2.3:8080/where"


@pytest.mark.parametrize("host", ["[::1]:8000", "[v7.site]", "[::ffff:1.2.3.4]"])
async def test_valid_ip_literal_host_is_used(host: str) -> None:
    answer = await get(make_app(), "/where", host)
    assert answer.status == 200
    assert f'"url":"http://{host}/where"'.encode() in answer.body


@pytest.mark.parametrize(
    "path", ["@evil.example", "me:pw@evil.example", "https://evil.example/x", "*", ".evil.example"]
)
async def test_scope_path_without_leading_slash_never_names_another_host(path: str) -> None:
    # No route matches such a path, so a raw app reads the URL, as a middleware would.
    seen: dict[str, object] = {}

    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        seen["host"] = request.url.hostname
        seen["path"] = request.url.path
        seen["base"] = str(request.base_url)
        await PlainTextResponse("ok")(scope, receive, send)

    answer = await call(raw, path, headers=[("host", "good.example")], server=SERVER)
    assert answer.status == 200
    assert seen == {"host": "good.example", "path": "/" + path, "base": "http://good.example/"}


async def test_url_for_with_hostile_path_values_stays_on_the_host() -> None:
    async def go(request: Request) -> Response:
        target = request.query_params["to"]
        return JSONResponse(
            {
                "relative": str(request.app.url_path_for("page", rest=target)),
                "absolute": str(request.url_for("page", rest=target)),
                "braces": str(request.app.url_path_for("pair", a="{b}", b="x")),
            }
        )

    app = Stellate(
        routes=[
            Route("/go", go),
            Route("/p/{a}/{b}", go, name="pair"),
            Route("/{rest:path}", go, name="page"),
        ]
    )
    for target, relative in [
        (b"/evil.example", "/%2Fevil.example"),
        (b"%5Cevil.example", "/%5Cevil.example"),
        (b"/%5Cevil.example", "/%2F%5Cevil.example"),
    ]:
        answer = await call(
            app, "/go", headers=[("host", "good.example")], query_string=b"to=" + target
        )
        assert answer.status == 200
        urls = json.loads(answer.body)
        assert urls["relative"] == relative
        assert urlsplit(urls["relative"]).netloc == ""
        assert urlsplit(urls["absolute"]).netloc == "good.example"
        assert urls["braces"] == "/p/{b}/x"
