"""Outbound cases: StreamingResponse in small and large chunks, and GZipMiddleware."""

from __future__ import annotations

import random
import zlib
from typing import Any

from bodies import dumps, json_payload
from casekit import KIB, MIB, SERVER_SPEC_VERSION, http_scope, send_body
from frameworks import Framework, per_framework
from harness import Case, Exchange, Scope

_OCTETS = b"application/octet-stream"


def _streaming(chunks: list[bytes]) -> Any:
    def build(fw: Framework) -> Any:
        async def content() -> Any:
            for chunk in chunks:
                yield chunk

        async def endpoint(request: Any) -> Any:
            return fw.StreamingResponse(content(), media_type="application/octet-stream")

        return fw.Router([fw.Route("/stream", endpoint)])

    return build


def _raw_streaming(chunks: list[bytes]) -> Any:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", _OCTETS)]}
        )
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


def streaming_cases() -> list[Case]:
    """1 KiB (one chunk: it fits in either size), 1 MiB in 1 KiB and in 64 KiB chunks.

    Each size twice: with the scope uvicorn sends (ASGI 2.3), where both frameworks listen
    for ``http.disconnect`` beside the stream, and with an ASGI 2.4 scope, where a server's
    ``send`` raises once the client is gone, so a response has no need to listen. There the
    exchange's ``receive`` serves the request body only, as in Starlette's own benchmark
    harness (see ``harness.body_only``): an app that still listens fails the case.
    """
    cases = []
    for spec_version, suffix in [(SERVER_SPEC_VERSION, ""), ("2.4", ", ASGI 2.4 server")]:
        for label, size, chunk_size in [
            ("1 KiB", KIB, KIB),
            ("1 MiB in 1 KiB chunks", MIB, KIB),
            ("1 MiB in 64 KiB chunks", MIB, 64 * KIB),
        ]:
            chunks = [b"s" * chunk_size] * (size // chunk_size)
            cases.append(
                Case(
                    f"streaming: {label}{suffix}",
                    http_scope("/stream", spec_version=spec_version),
                    {"raw": _raw_streaming(chunks), **per_framework(_streaming(chunks))},
                    expected_body=b"s" * size,
                )
            )
    return cases


def _text(size: int) -> bytes:
    words = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while"]
    rng = random.Random(11)
    text = []
    length = 0
    while length < size:
        word = rng.choice(words)
        text.append(word)
        length += len(word) + 1
    return " ".join(text).encode()[:size]


def _gzip_app(content: bytes, media_type: str, chunk_size: int | None = None) -> Any:
    """A response per request, as an endpoint makes, behind ``GZipMiddleware``.

    In one piece (``Response``), or streamed in ``chunk_size`` chunks. (A gzip layer may
    rewrite the headers of the response it compresses, so a prebuilt one is not used.)
    """

    def build(fw: Framework) -> Any:
        async def app(scope: Scope, receive: Any, send: Any) -> None:
            if chunk_size is None:
                response = fw.Response(content, media_type=media_type)
            else:
                response = fw.StreamingResponse(_pieces(content, chunk_size), media_type=media_type)
            await response(scope, receive, send)

        return fw.GZipMiddleware(app)

    return build


async def _pieces(content: bytes, chunk_size: int) -> Any:
    for start in range(0, len(content), chunk_size):
        yield content[start : start + chunk_size]


def _raw_gzip(content: bytes, content_type: bytes, chunk_size: int | None = None) -> Any:
    """The floor: one compressor; streamed, a flush per chunk so each can be decoded now."""

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
        if chunk_size is None:
            body = compressor.compress(content) + compressor.flush()
            await send_body(send, body, content_type, [(b"content-encoding", b"gzip")])
            return
        headers = [(b"content-type", content_type), (b"content-encoding", b"gzip")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for start in range(0, len(content), chunk_size):
            piece = content[start : start + chunk_size]
            body = compressor.compress(piece) + compressor.flush(zlib.Z_SYNC_FLUSH)
            await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": compressor.flush()})

    return app


def _gunzips_to(content: bytes) -> Any:
    def check(exchange: Exchange) -> None:
        assert dict(exchange.headers).get(b"content-encoding") == b"gzip", exchange.headers
        assert zlib.decompress(exchange.body, 31) == content, "the body does not decompress"

    return check


def gzip_cases() -> list[Case]:
    """At the default level (9): 64 KiB bodies in one piece; 1 and 10 MiB of JSON in one
    piece and streamed in 64 KiB chunks."""
    size = 64 * KIB
    json_body = dumps(json_payload(size))[:size]
    json_1 = dumps(json_payload(MIB))[:MIB]
    json_10 = dumps(json_payload(10 * MIB))[: 10 * MIB]
    shapes: list[tuple[str, bytes, str, int | None]] = [
        ("JSON 64 KiB", json_body, "application/json", None),
        ("text 64 KiB", _text(size), "text/plain; charset=utf-8", None),
        ("incompressible 64 KiB", random.Random(7).randbytes(size), _OCTETS.decode(), None),
        ("JSON 1 MiB", json_1, "application/json", None),
        ("JSON 10 MiB", json_10, "application/json", None),
        ("JSON 1 MiB streamed in 64 KiB", json_1, "application/json", 64 * KIB),
        ("JSON 10 MiB streamed in 64 KiB", json_10, "application/json", 64 * KIB),
    ]
    cases = []
    for label, content, media_type, chunk_size in shapes:
        header = (b"accept-encoding", b"gzip, deflate, br")
        cases.append(
            Case(
                f"gzip: {label}",
                http_scope("/", headers=[header]),
                {
                    "raw": _raw_gzip(content, media_type.encode(), chunk_size),
                    **per_framework(_gzip_app(content, media_type, chunk_size)),
                },
                check=_gunzips_to(content),
            )
        )
    return cases
