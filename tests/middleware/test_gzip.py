"""GZipMiddleware: streaming compression, what is left alone, headers, worker threads."""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest

from stellate.applications import Stellate
from stellate.datastructures import Headers
from stellate.middleware import Middleware
from stellate.middleware.gzip import (
    DEFAULT_EXCLUDED_CONTENT_TYPES,
    GZipMiddleware,
    GZipResponder,
    IdentityResponder,
    accepts_gzip,
    unattached_send,
)
from stellate.requests import Request
from stellate.responses import PlainTextResponse, Response, StreamingResponse
from stellate.routing import Route, WebSocketRoute
from stellate.types import Message, Receive, Scope, Send
from stellate.websockets import WebSocket

Client = Callable[..., Any]

BIG = "x" * 1000


def make_scope(accept_encoding: str | None = "gzip", method: str = "GET") -> Scope:
    headers = [] if accept_encoding is None else [(b"accept-encoding", accept_encoding.encode())]
    return {"type": "http", "method": method, "path": "/", "headers": headers}


def response_app(
    status: int = 200,
    headers: list[tuple[bytes, bytes]] | None = None,
    chunks: list[bytes] = (),  # type: ignore[assignment]
) -> Callable[[Scope, Receive, Send], Any]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": status, "headers": list(headers or [])}
        )
        for index, chunk in enumerate(chunks):
            more = index < len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})

    return app


async def call(middleware: Any, scope: Scope) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:  # pragma: no cover
        await anyio.sleep_forever()
        raise AssertionError

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await middleware(scope, receive, send)
    return sent


def headers_of(sent: list[Message]) -> Headers:
    return Headers(raw=list(sent[0]["headers"]))


def body_of(sent: list[Message]) -> bytes:
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", True),
        ("GZIP", True),
        ("deflate, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("gzip; q=0.0", False),
        ("gzip;q=bogus", False),
        ("br", False),
        ("*", True),
        ("*;q=0", False),
        ("*, gzip;q=0", False),
        ("x-gzip", True),
        ("identity", False),
        ("", False),
    ],
)
def test_accepts_gzip(header: str, expected: bool) -> None:
    assert accepts_gzip(make_scope(header)) is expected


def test_accepts_gzip_without_header() -> None:
    assert accepts_gzip(make_scope(None)) is False


def test_unattached_send() -> None:
    with pytest.raises(RuntimeError, match="before the responder was called"):
        unattached_send({"type": "http.response.start"})


def test_default_excluded_types() -> None:
    assert "text/event-stream" in DEFAULT_EXCLUDED_CONTENT_TYPES
    assert "application/grpc" in DEFAULT_EXCLUDED_CONTENT_TYPES


def test_responder_methods() -> None:
    identity = IdentityResponder(response_app(), 10)
    assert identity.apply_compression(b"abc", more_body=False) == b"abc"
    responder = GZipResponder(response_app(), 10, compresslevel=1)
    assert responder.compressor is responder.compressor
    first = responder.apply_compression(b"hello ", more_body=True)
    last = responder.apply_compression(b"world", more_body=False)
    assert gzip.decompress(first + last) == b"hello world"
    # A sync flush makes the first part decodable on its own.
    assert zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(first) == b"hello "


pytestmark_anyio = pytest.mark.anyio


@pytestmark_anyio
async def test_single_body_is_compressed_with_exact_length() -> None:
    app = response_app(
        headers=[
            (b"content-type", b"text/plain"),
            (b"content-length", b"1000"),
            (b"etag", b'"abc"'),
            (b"vary", b"Cookie"),
        ],
        chunks=[BIG.encode()],
    )
    sent = await call(GZipMiddleware(app), make_scope())
    headers = headers_of(sent)
    body = body_of(sent)
    assert gzip.decompress(body) == BIG.encode()
    assert headers["content-encoding"] == "gzip"
    assert headers["content-length"] == str(len(body))
    assert headers["vary"] == "Cookie, Accept-Encoding"
    assert headers["etag"] == 'W/"abc"'


@pytestmark_anyio
async def test_streamed_body_is_compressed_and_flushed_per_chunk() -> None:
    """Each compressed chunk decodes to its input as soon as it is sent."""
    chunks = [b"first chunk ", b"", b"second chunk ", b"third"]
    app = response_app(headers=[(b"content-length", b"30"), (b"etag", b'W/"w"')], chunks=chunks)
    sent = await call(GZipMiddleware(app, minimum_size=1000), make_scope())
    headers = headers_of(sent)
    assert headers["content-encoding"] == "gzip"
    assert "content-length" not in headers
    assert headers["etag"] == 'W/"w"'
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert [decoder.decompress(m["body"]) for m in bodies] == chunks
    assert [m["more_body"] for m in bodies] == [True, True, True, False]
    assert decoder.eof


@pytestmark_anyio
async def test_small_body_is_left_alone() -> None:
    app = response_app(headers=[(b"content-length", b"5")], chunks=[b"small"])
    sent = await call(GZipMiddleware(app), make_scope())
    headers = headers_of(sent)
    assert body_of(sent) == b"small"
    assert "content-encoding" not in headers
    assert headers.raw == [(b"content-length", b"5")]


@pytestmark_anyio
@pytest.mark.parametrize("accept", ["gzip", None])
async def test_no_vary_on_a_response_too_small_to_compress(accept: str | None) -> None:
    app = response_app(headers=[(b"content-type", b"text/plain")], chunks=[b"x" * 499])
    sent = await call(GZipMiddleware(app), make_scope(accept))
    assert headers_of(sent).raw == [(b"content-type", b"text/plain")]
    assert body_of(sent) == b"x" * 499


@pytestmark_anyio
@pytest.mark.parametrize("accept", ["gzip", None])
async def test_vary_on_candidates_by_size(accept: str | None) -> None:
    for chunks in ([b"x" * 500], [b"x", b"y"], [b"", b""]):
        app = response_app(headers=[(b"content-type", b"text/plain")], chunks=chunks)
        sent = await call(GZipMiddleware(app), make_scope(accept))
        assert headers_of(sent)["vary"] == "Accept-Encoding"


@pytestmark_anyio
async def test_identity_when_gzip_is_not_accepted() -> None:
    app = response_app(chunks=[BIG.encode()])
    for accept in (None, "br", "gzip;q=0"):
        sent = await call(GZipMiddleware(app), make_scope(accept))
        assert body_of(sent) == BIG.encode()
        assert "content-encoding" not in headers_of(sent)
        assert headers_of(sent)["vary"] == "Accept-Encoding"


@pytestmark_anyio
@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (200, [(b"content-encoding", b"br")]),
        (206, [(b"content-range", b"bytes 0-999/2000")]),
        (200, [(b"content-type", b"text/event-stream")]),
        (200, [(b"content-type", b"application/grpc")]),
        (200, [(b"content-type", b"image/PNG")]),
        (200, [(b"content-type", b"video/mp4; codecs=avc1")]),
        (204, []),
        (304, []),
    ],
)
async def test_untouched_responses(status: int, headers: list[tuple[bytes, bytes]]) -> None:
    chunks = [] if status in (204, 304) else [BIG.encode()[:500], BIG.encode()[500:]]
    app = response_app(status=status, headers=list(headers), chunks=chunks)
    sent = await call(GZipMiddleware(app), make_scope())
    assert sent[0]["status"] == status
    assert headers_of(sent).raw == headers
    assert body_of(sent) == b"".join(chunks)


@pytestmark_anyio
@pytest.mark.parametrize(
    "content_type", [b"application/grpc+json", b"application/grpc+proto", b"Application/GRPC+Web"]
)
async def test_every_grpc_flavour_is_excluded_by_default(content_type: bytes) -> None:
    headers = [(b"content-type", content_type)]
    app = response_app(headers=headers, chunks=[BIG.encode()])
    sent = await call(GZipMiddleware(app), make_scope())
    assert headers_of(sent).raw == headers
    assert body_of(sent) == BIG.encode()


@pytestmark_anyio
@pytest.mark.parametrize("exclude", ["Application/PDF; charset=binary", " application/pdf "])
async def test_exclusions_are_normalised(exclude: str) -> None:
    headers = [(b"content-type", b"application/pdf; name=x")]
    app = response_app(headers=headers, chunks=[BIG.encode()])
    middleware = GZipMiddleware(app, exclude_content_types=(exclude,))
    sent = await call(middleware, make_scope())
    assert headers_of(sent).raw == headers
    assert body_of(sent) == BIG.encode()
    responder = GZipResponder(app, 10, exclude_content_types=(exclude,))
    assert headers_of(await call(responder, make_scope())).raw == headers
    identity = IdentityResponder(app, 10, exclude_content_types=("Text/*; q=1", exclude))
    assert headers_of(await call(identity, make_scope(None))).raw == headers


@pytestmark_anyio
async def test_a_whole_top_level_type_with_parameters_is_excluded() -> None:
    headers = [(b"content-type", b"text/csv")]
    app = response_app(headers=headers, chunks=[BIG.encode()])
    middleware = GZipMiddleware(app, exclude_content_types=("TEXT/*; charset=utf-8",))
    assert headers_of(await call(middleware, make_scope())).raw == headers


@pytestmark_anyio
async def test_custom_exclusions() -> None:
    app = response_app(headers=[(b"content-type", b"text/csv")], chunks=[BIG.encode()])
    middleware = GZipMiddleware(app, exclude_content_types=("text/csv",))
    assert body_of(await call(middleware, make_scope())) == BIG.encode()
    included = GZipMiddleware(app, exclude_content_types=())
    assert gzip.decompress(body_of(await call(included, make_scope()))) == BIG.encode()


@pytestmark_anyio
async def test_pathsend_passes_through() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-length", b"1234"), (b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.pathsend", "path": "/tmp/file.txt"})

    sent = await call(GZipMiddleware(app), make_scope())
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.pathsend"]
    assert headers_of(sent)["content-length"] == "1234"
    assert "content-encoding" not in headers_of(sent)


@pytestmark_anyio
async def test_trailers_are_kept() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "trailers": True})
        await send({"type": "http.response.body", "body": BIG.encode(), "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"1")]})

    sent = await call(GZipMiddleware(app), make_scope())
    assert sent[-1] == {"type": "http.response.trailers", "headers": [(b"x-checksum", b"1")]}
    assert sent[0]["trailers"] is True
    assert gzip.decompress(body_of(sent)) == BIG.encode()


@pytestmark_anyio
async def test_no_content_length_when_a_one_piece_compressed_body_declares_trailers() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-length", b"1000")]
        await send(
            {"type": "http.response.start", "status": 200, "headers": headers, "trailers": True}
        )
        await send({"type": "http.response.body", "body": BIG.encode()})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"1")]})

    sent = await call(GZipMiddleware(app), make_scope())
    headers = headers_of(sent)
    assert headers["content-encoding"] == "gzip"
    assert "content-length" not in headers
    assert gzip.decompress(body_of(sent)) == BIG.encode()
    assert sent[-1]["type"] == "http.response.trailers"


@pytestmark_anyio
async def test_head_requests_are_left_alone() -> None:
    app = response_app(headers=[(b"content-length", b"1000")], chunks=[b""])
    sent = await call(GZipMiddleware(app, minimum_size=0), make_scope(method="HEAD"))
    assert headers_of(sent)["content-length"] == "1000"
    assert body_of(sent) == b""


@pytestmark_anyio
async def test_large_chunks_are_compressed_in_a_worker_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[bool] = []
    original = GZipResponder.apply_compression

    def spy(self: GZipResponder, body: bytes, *, more_body: bool) -> bytes:
        threads.append(threading.current_thread() is threading.main_thread())
        return original(self, body, more_body=more_body)

    monkeypatch.setattr(GZipResponder, "apply_compression", spy)
    chunks = [b"a" * 2000, b"b" * 10, b"c" * 2000]
    sent = await call(
        GZipMiddleware(response_app(chunks=chunks), thread_minimum_size=1000), make_scope()
    )
    assert gzip.decompress(body_of(sent)) == b"".join(chunks)
    # Big chunks off the main (event loop) thread, the small one on it.
    assert threads == [False, True, False]


@pytestmark_anyio
async def test_other_scopes_pass_through() -> None:
    seen = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    await call(GZipMiddleware(app), {"type": "lifespan"})
    assert seen == ["lifespan"]


# --------------------------------------------------------------------------- in an app


async def homepage(request: Request) -> Response:
    return PlainTextResponse(BIG)


async def streamed(request: Request) -> Response:
    async def chunks() -> AsyncIterator[str]:
        for index in range(5):
            yield f"chunk {index} " * 100

    return StreamingResponse(chunks(), media_type="text/plain")


async def crash(request: Request) -> Response:
    raise RuntimeError("boom")


async def ws_endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(BIG)
    await websocket.close()


def make_app() -> Stellate:
    return Stellate(
        routes=[
            Route("/", homepage),
            Route("/stream", streamed),
            Route("/crash", crash),
            WebSocketRoute("/ws", ws_endpoint),
        ],
        middleware=[Middleware(GZipMiddleware)],
    )


def test_in_app(test_client_factory: Client) -> None:
    client = test_client_factory(make_app())
    response = client.get("/", headers={"accept-encoding": "gzip"})
    assert response.text == BIG  # httpx decodes
    assert response.headers["content-encoding"] == "gzip"
    assert int(response.headers["content-length"]) < 100
    plain = client.get("/", headers={"accept-encoding": "identity"})
    assert plain.text == BIG
    assert "content-encoding" not in plain.headers
    assert plain.headers["vary"] == "Accept-Encoding"


def test_in_app_streaming(test_client_factory: Client) -> None:
    client = test_client_factory(make_app())
    response = client.get("/stream", headers={"accept-encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.text == "".join(f"chunk {i} " * 100 for i in range(5))


def test_in_app_error_responses(test_client_factory: Client) -> None:
    client = test_client_factory(make_app(), raise_server_exceptions=False)
    missing = client.get("/missing", headers={"accept-encoding": "gzip"})
    assert (missing.status_code, missing.text) == (404, "Not Found")
    assert "content-encoding" not in missing.headers  # too small to be worth it
    crashed = client.get("/crash", headers={"accept-encoding": "gzip"})
    assert (crashed.status_code, crashed.text) == (500, "Internal Server Error")


def test_in_app_websocket_untouched(test_client_factory: Client) -> None:
    with test_client_factory(make_app()).websocket_connect("/ws") as session:
        assert session.receive_text() == BIG
