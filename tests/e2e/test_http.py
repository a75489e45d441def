"""HTTP through real servers: keep-alive, chunked uploads, streaming, SSE, ranges, disconnects.

Every test runs against hypercorn on trio, hypercorn on asyncio and uvicorn (the ``server``
fixture); HTTP/2 runs against hypercorn only, which speaks it without TLS (h2c).
"""

from __future__ import annotations

import hashlib
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.e2e._servers import DATA, HYPERCORN, Server, ServerPool

TIMEOUT = httpx.Timeout(15.0)


def client_for(server: Server, **options: Any) -> httpx.Client:
    # trust_env=False: proxy variables from the environment must not reroute 127.0.0.1.
    return httpx.Client(base_url=server.base_url, timeout=TIMEOUT, trust_env=False, **options)


def token() -> str:
    return uuid.uuid4().hex


def test_keep_alive_serves_many_requests_on_one_connection(server: Server) -> None:
    with client_for(server) as client:
        ports = set()
        for number in range(4):
            response = client.get("/connection")
            assert response.status_code == 200
            assert response.http_version == "HTTP/1.1"
            assert response.headers.get("connection", "keep-alive").lower() != "close"
            ports.add(response.json()["client_port"])
            uploaded = client.post("/upload", content=b"x" * (number * 1000))
            assert uploaded.json()["size"] == number * 1000
    assert len(ports) == 1, f"requests used {len(ports)} connections"


def pieces(sizes: list[int]) -> Iterator[bytes]:
    for index, size in enumerate(sizes):
        yield bytes([index % 256]) * size


def test_chunked_upload(server: Server) -> None:
    sizes = [1, 0, 65_536, 7, 300_000, 13]  # an empty piece must not end the body early
    body = b"".join(pieces(sizes))
    with client_for(server) as client:
        response = client.post("/upload", content=pieces(sizes))
        empty = client.post("/upload", content=pieces([]))
        sized = client.put("/upload", content=body)
    assert response.status_code == 200
    assert response.json() == {
        "size": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "transfer_encoding": "chunked",
        "content_length": None,
    }
    assert empty.json()["size"] == 0
    assert empty.json()["transfer_encoding"] == "chunked"
    assert sized.json()["sha256"] == hashlib.sha256(body).hexdigest()
    assert sized.json()["content_length"] == str(len(body))


def read_until(chunks: Iterator[bytes], end: bytes) -> bytes:
    received = b""
    for chunk in chunks:
        received += chunk
        if received.endswith(end):
            break
    return received


def test_streaming_response_is_sent_while_produced(server: Server) -> None:
    # The second chunk is produced only after the test has read the first one and released
    # it from another connection: a server (or response) that buffered would time out.
    name = token()
    with client_for(server) as client, client_for(server) as other:
        with client.stream("GET", "/stream", params={"token": name}) as response:
            assert response.status_code == 200
            assert response.headers["transfer-encoding"] == "chunked"
            chunks = response.iter_raw()
            assert read_until(chunks, b"\n") == b"first\n"
            assert other.post("/release", params={"token": name}).text == "released"
            assert b"".join(chunks) == b"second\n"
        assert other.get("/closed", params={"token": name}).text == "closed"
    assert f"stream-closed {name}" in server.markers()


def test_a_stream_through_base_http_middleware_is_sent_while_produced(server: Server) -> None:
    # BaseHTTPMiddleware hands the body to the server from the app's own task: the second
    # chunk still waits for the test to read the first, and the middleware's header is there.
    name = token()
    with client_for(server) as client, client_for(server) as other:
        path = "/through-middleware/stream"
        with client.stream("GET", path, params={"token": name}) as response:
            assert response.status_code == 200
            assert response.headers["x-through"] == "base-http-middleware"
            chunks = response.iter_raw()
            assert read_until(chunks, b"\n") == b"first\n"
            assert other.post("/release", params={"token": name}).text == "released"
            assert b"".join(chunks) == b"second\n"
        assert other.get("/closed", params={"token": name}).text == "closed"


def test_stream_stops_when_the_client_disconnects(server: Server) -> None:
    name = token()
    # Closing an unfinished response drops its connection: the server sees the client go.
    with (
        client_for(server) as client,
        client.stream("GET", "/stream", params={"token": name}) as response,
    ):
        assert read_until(response.iter_raw(), b"\n") == b"first\n"
    with client_for(server) as other:
        assert other.get("/closed", params={"token": name}).text == "closed"
    assert f"stream-closed {name}" in server.markers()


def test_disconnect_cancels_a_cancel_on_disconnect_handler(server: Server) -> None:
    name = token()
    request = f"GET /cancellable?token={name} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with (
        socket.create_connection(("127.0.0.1", server.process.port), timeout=15) as sock,
        client_for(server) as other,
    ):
        sock.sendall(request.encode("ascii"))
        assert other.get("/started", params={"token": name}).text == "started"
        sock.close()  # the client leaves while its handler is still running
        assert other.get("/closed", params={"token": name}).text == "closed"
    assert f"handler-cancelled {name}" in server.markers()


def parse_events(text: str) -> list[dict[str, str]]:
    events = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            name, _, value = line.partition(": ")
            fields[name] = f"{fields[name]}\n{value}" if name in fields else value
        if fields:
            events.append(fields)
    return events


def test_server_sent_events(server: Server) -> None:
    with client_for(server) as client, client.stream("GET", "/sse") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        text = response.read().decode("utf-8")
    assert text.endswith("\n\n")
    assert parse_events(text) == [
        {"event": "tick", "id": str(number), "data": f"tick {number}\nline two"}
        for number in (1, 2, 3)
    ]


def multipart_parts(response: httpx.Response) -> list[tuple[str, bytes]]:
    """(Content-Range, body) of each part of a ``multipart/byteranges`` response."""
    media_type, _, parameter = response.headers["content-type"].partition("; boundary=")
    assert media_type == "multipart/byteranges"
    delimiter = b"--" + parameter.encode("ascii")
    parts = response.content.split(delimiter)
    assert parts[0] == b""
    assert parts[-1].strip() == b"--"
    result = []
    for part in parts[1:-1]:
        head, _, body = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers = dict(
            line.decode("latin-1").lower().split(": ", 1) for line in head.split(b"\r\n")
        )
        result.append((headers["content-range"], body.removesuffix(b"\r\n")))
    return result


def test_file_ranges(server: Server) -> None:
    size = len(DATA)
    with client_for(server) as client:
        whole = client.get("/file")
        assert whole.status_code == 200
        assert whole.headers["accept-ranges"] == "bytes"
        assert whole.headers["content-length"] == str(size)
        assert whole.content == DATA

        middle = client.get("/file", headers={"range": "bytes=1000-1999"})
        assert middle.status_code == 206
        assert middle.headers["content-range"] == f"bytes 1000-1999/{size}"
        assert middle.headers["content-length"] == "1000"
        assert middle.content == DATA[1000:2000]

        suffix = client.get("/file", headers={"range": "bytes=-10"})
        assert suffix.status_code == 206
        assert suffix.headers["content-range"] == f"bytes {size - 10}-{size - 1}/{size}"
        assert suffix.content == DATA[-10:]

        several = client.get("/file", headers={"range": "bytes=0-9, 50000-50004"})
        assert several.status_code == 206
        assert multipart_parts(several) == [
            (f"bytes 0-9/{size}", DATA[:10]),
            (f"bytes 50000-50004/{size}", DATA[50000:50005]),
        ]
        assert several.headers["content-length"] == str(len(several.content))

        beyond = client.get("/file", headers={"range": f"bytes={size}-"})
        assert beyond.status_code == 416
        assert beyond.headers["content-range"] == f"bytes */{size}"


@pytest.mark.parametrize("kind", HYPERCORN)
def test_http2_prior_knowledge(servers: ServerPool, kind: str) -> None:
    server = servers.get(kind)
    body = b"".join(pieces([10, 70_000, 3]))
    with client_for(server, http1=False, http2=True) as client:
        response = client.get("/connection")
        uploaded = client.post("/upload", content=pieces([10, 70_000, 3]))
    assert response.http_version == "HTTP/2"
    assert response.json()["http_version"] == "2"
    assert response.json()["started"] is True
    assert uploaded.http_version == "HTTP/2"
    assert uploaded.json()["size"] == len(body)
    assert uploaded.json()["sha256"] == hashlib.sha256(body).hexdigest()


def test_a_complete_streamed_response_leaves_the_keep_alive_timeout_armed(server: Server) -> None:
    # hypercorn reports http.disconnect while its send of the last body message is still
    # arming the connection's keep-alive timeout. A response that took that for a leave
    # and cancelled the send would leave the idle connection open for good on trio; the
    # server must close it after its keep-alive timeout (5 s by default, for all three).
    with socket.create_connection(("127.0.0.1", server.process.port), timeout=15) as sock:
        sock.sendall(b"GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        received = b""
        while not received.endswith(b"\r\n0\r\n\r\n"):
            chunk = sock.recv(65536)
            assert chunk, "the server closed the connection before the response ended"
            received += chunk
        assert b"tick 3" in received
        assert sock.recv(1) == b""  # closed by the server, not by the 15 s timeout
