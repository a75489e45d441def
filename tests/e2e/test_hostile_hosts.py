"""Issue 22 item 9 through real servers: hostile Host headers and request targets.

Requests are written byte for byte on a socket (an HTTP client would clean the Host
header up first). Whatever a server lets through, stellate never answers 500, never builds
a URL or a Location naming a host the client could choose by sending a malformed header,
and never captures a Host route parameter from one. One server of each kind serves
hosts_app.py for the whole module.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from tests.e2e._servers import SERVERS, ServerProcess, start_server

HERE = Path(__file__).resolve().parent
DEADLINE = 15.0  # seconds for one request and its answer
BAD_IP_LITERALS = [
    "[:::]",
    "[1::2::3]",
    "[1:2:3:4:5:6:7:8:9]:80",
    "[::ffff:999.1.1.1]",
]
MALFORMED_HOSTS = [
    *BAD_IP_LITERALS,
    "me@shop.good.example",
    "evil.example#.good.example",
    "shop.good.example:abc",
    "shop.good.example:",
]


@pytest.fixture(scope="module", params=list(SERVERS))
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    kind = str(request.param)
    log = tmp_path_factory.mktemp(f"hosts-{kind}") / "server.log"
    process = start_server(["hosts_app:app", *SERVERS[kind]], cwd=HERE, log=log)
    try:
        yield process
    finally:
        process.stop()


def raw_get(server: ServerProcess, target: str, host: str) -> tuple[int, dict[str, str], bytes]:
    """Send one GET with exactly this request target and Host; read the whole answer."""
    request = f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE) as sock:
        sock.sendall(request.encode("latin-1"))
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _unchunk(body)
    return int(status_line.split()[1]), headers, body


def _unchunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return out


def own_netloc(server: ServerProcess) -> str:
    return f"127.0.0.1:{server.port}"


@pytest.mark.parametrize("host", MALFORMED_HOSTS)
def test_malformed_host_never_gives_a_500_nor_names_it(server: ServerProcess, host: str) -> None:
    status, _, body = raw_get(server, "/where", host)
    # A server may refuse the header itself (400); stellate must never fail on it.
    assert status in (200, 400), (status, body)
    if status == 200:
        urls = json.loads(body)
        assert urls["url"] == f"http://{own_netloc(server)}/where"
        assert urlsplit(urls["for"]).netloc == own_netloc(server)


@pytest.mark.parametrize("host", BAD_IP_LITERALS)
def test_redirect_slashes_never_builds_location_from_a_bad_literal(
    server: ServerProcess, host: str
) -> None:
    status, headers, body = raw_get(server, "/where/", host)
    assert status in (307, 400), (status, body)
    if status == 307:
        assert urlsplit(headers["location"]).netloc == own_netloc(server)


@pytest.mark.parametrize("host", MALFORMED_HOSTS)
def test_host_routes_never_capture_from_a_malformed_host(server: ServerProcess, host: str) -> None:
    status, _, body = raw_get(server, "/sub", host)
    # /sub exists only behind the Host route: a malformed Host reaches no route.
    assert status in (400, 404), (status, body)


def test_host_route_captures_from_a_valid_host(server: ServerProcess) -> None:
    status, _, body = raw_get(server, "/sub", "Shop.Good.Example:8080")
    assert status == 200
    urls = json.loads(body)
    assert urls["sub"] == "shop"
    assert urls["url"] == "http://Shop.Good.Example:8080/sub"


@pytest.mark.parametrize("host", ["[::1]:8000", "[v7.site]", "example.net:000443"])
def test_valid_unusual_hosts_are_used_as_written(server: ServerProcess, host: str) -> None:
    status, _, body = raw_get(server, "/where", host)
    assert status in (200, 400), (status, body)
    if status == 200:
        assert json.loads(body)["url"] == f"http://{host}/where"


@pytest.mark.parametrize(
    "target", ["@evil.example", "me:pw@evil.example", "http://evil.example@good.example/x"]
)
def test_odd_request_targets_never_name_another_host(server: ServerProcess, target: str) -> None:
    status, _, body = raw_get(server, target, "good.example")
    assert status in (200, 400, 404), (status, body)
    if status == 200:
        assert json.loads(body)["hostname"] == "good.example"


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("//evil.example", "/%2F/evil.example"),
        ("/evil.example", "/%2Fevil.example"),
        ("\\evil.example", "/%5Cevil.example"),
        ("/\\evil.example", "/%2F%5Cevil.example"),
    ],
)
def test_url_for_never_reverses_to_another_host(
    server: ServerProcess, value: str, path: str
) -> None:
    status, _, body = raw_get(server, "/reverse?value=" + quote(value, safe=""), "good.example")
    assert status == 200, body
    urls = json.loads(body)
    assert urls["path"] == path
    assert urlsplit(urls["path"]).netloc == ""
    assert urlsplit(urls["absolute"]).netloc == "good.example"


def test_placeholder_values_are_not_substituted_twice(server: ServerProcess) -> None:
    status, _, body = raw_get(server, "/slots?value=%7Bb%7D", "good.example")
    assert status == 200
    assert json.loads(body) == "/pair/{b}/x"
