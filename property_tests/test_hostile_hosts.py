"""Hostile Host headers and request targets: never a 500, never another host.

A client chooses the ``Host`` header and (through a proxy or a hand-built scope) a path
that need not start with ``/``. Whatever it sends, ``request.url`` and everything built
from it (``base_url``, ``url_for``, the ``redirect_slashes`` Location) either uses the
header exactly as a valid ``Host`` or the server's own address, a ``Host`` route never
captures a parameter from a malformed header, and a reversed path is never read as a
host by a browser.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stellate._urls import parse_host
from stellate.applications import Stellate
from stellate.datastructures import URL
from stellate.requests import Request
from stellate.responses import JSONResponse, Response
from stellate.routing import Host, Mount, Route, Router
from stellate.testing.strategies import host_headers, http_scopes
from stellate.types import Message

SERVER = ("10.1.2.3", 8080)
SERVER_NETLOC = "10.1.2.3:8080"
# Targets a server or proxy may pass as ``path``, many of them without a leading "/".
_TARGETS = st.sampled_from(
    [
        "*",
        "@evil.example",
        "me:pw@evil.example",
        "https://evil.example/x",
        "//evil.example",
        "/\\evil.example",
        "///x",
        "",
    ]
)
_PATH_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
_ANY_PATH = st.one_of(_PATH_TEXT, _TARGETS)


def _scope(host: bytes | None, path: str, scheme: str = "http") -> dict[str, Any]:
    return {
        "type": "http",
        "scheme": scheme,
        "path": path,
        "query_string": b"",
        "headers": [] if host is None else [(b"host", host)],
        "server": SERVER,
    }


def _valid_host(host: bytes) -> bool:
    """A Host a URL may name: the grammar, and a port URLs can hold."""
    parsed = parse_host(host.decode("latin-1"))
    if parsed is None:
        return False
    port = parsed[1]
    if port is None:
        return True
    significant = port.lstrip("0")
    return 0 < len(port) <= 32 and len(significant) <= 5 and int(significant or 0) <= 65535


@given(host_headers(), _ANY_PATH, st.sampled_from(["http", "https", "ws", "wss"]))
def test_url_from_scope_names_the_valid_host_or_the_server(
    host: bytes, path: str, scheme: str
) -> None:
    url = URL(scope=_scope(host, path, scheme))
    # Every accessor works: nothing the client sent can make reading the URL raise.
    parts = (url.scheme, url.netloc, url.path, url.hostname, url.port, repr(url))
    assert parts[0] == scheme
    assert url.username is None
    assert url.password is None
    if _valid_host(host):
        assert url.netloc == host.decode("latin-1")
    else:
        assert url.netloc == SERVER_NETLOC
    # The path always starts with "/" after the host, so it never joined the authority.
    assert url.path.startswith("/")


@given(host_headers())
def test_host_route_never_captures_from_a_malformed_host(host: bytes) -> None:
    route = Host("{sub}.good.example", app=Router([]))
    scope = {"type": "http", "path": "/", "headers": [(b"host", host)], "server": SERVER}
    _, child = route.matches(scope)
    if parse_host(host.decode("latin-1")) is None:
        assert child == {}
    elif child:
        sub = child["path_params"]["sub"]
        assert not set(sub) & set("@#/?\\ :[]\r\n\t")


@given(st.text(st.characters(exclude_categories=["Cs"]), max_size=20), _PATH_TEXT)
def test_reversed_paths_are_never_scheme_relative(rest: str, word: str) -> None:
    router = Router(
        [
            Route("/{rest:path}", _unused, name="rest"),
            Mount("", app=Router([]), name="mounted"),
            Route("/w/{a}/{b}", _unused, name="pair"),
        ]
    )
    for path in (
        router.url_path_for("rest", rest=rest),
        router.url_path_for("mounted", path=rest),
    ):
        assert not path.startswith("//")
        assert "\\" not in path
        assert urlsplit(path).netloc == ""
        absolute = path.make_absolute_url("http://good.example/")
        assert absolute.netloc == "good.example"
    if word and "/" not in word:
        # Each slot is filled once: a value that looks like "{b}" stays as it is.
        expected = "/w/{b}/" + word.replace("\\", "%5C")
        assert router.url_path_for("pair", a="{b}", b=word) == expected


async def _unused(request: Request) -> Response:
    raise NotImplementedError


async def where(request: Request) -> Response:
    return JSONResponse(
        {
            "url": str(request.url),
            "base": str(request.base_url),
            "for": str(request.url_for("where")),
            "sub": request.path_params.get("sub"),
        }
    )


app = Stellate(
    routes=[
        Route("/where", where, name="where"),
        Host("{sub}.good.example", app=Router([Route("/sub", where)])),
        Route("/{rest:path}/", where),
    ]
)


@pytest.mark.anyio
@given(
    http_scopes(headers=st.lists(st.tuples(st.just(b"host"), host_headers()), max_size=1)),
    st.sampled_from(["/where", "/sub", "/where/", None]),
)
async def test_requests_with_hostile_hosts_never_fail_nor_move_host(
    scope: dict[str, Any], path: str | None
) -> None:
    scope = dict(scope, server=SERVER)
    if path is not None:
        scope["path"], scope["raw_path"] = path, None
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(10):
        await app(scope, receive, send)
    start = sent[0]
    assert start["status"] < 500, sent
    headers = scope["headers"]
    host = headers[0][1] if headers else None
    expected = host.decode("latin-1") if host is not None and _valid_host(host) else SERVER_NETLOC
    for name, value in start["headers"]:
        if name == b"location":
            assert urlsplit(value.decode("latin-1")).netloc == expected
    if start["status"] == 200 and scope["method"] != "HEAD":
        body = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
        for key in ("url", "base", "for"):
            assert urlsplit(body[key]).netloc == expected
        if body["sub"] is not None:
            assert host is not None
            assert parse_host(host.decode("latin-1")) is not None
