"""What the case modules share: request scopes, raw ASGI floors and body helpers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness import Message, Scope

HELLO = b"Hello, world!"
KIB = 1024
MIB = 1024 * KIB
CHUNK = 64 * KIB
BOTH = ("asyncio", "trio")


#: The ASGI spec version an HTTP scope declares: uvicorn's (hypercorn declares none, so 2.0).
#: It matters to streaming: from 2.4 on, a server's ``send`` raises once the client is gone,
#: so a response streams without listening for ``http.disconnect``. The streaming group
#: also runs its cases with a 2.4 scope, whose ``receive`` serves the request body only.
SERVER_SPEC_VERSION = "2.3"


def http_scope(
    path: str = "/",
    method: str = "GET",
    headers: list[tuple[bytes, bytes]] | None = None,
    query_string: bytes = b"",
    spec_version: str = SERVER_SPEC_VERSION,
) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": spec_version},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query_string,
        "headers": [(b"host", b"testserver"), (b"user-agent", b"bench"), *(headers or [])],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
        "extensions": {},
    }


def websocket_scope(path: str = "/ws") -> Scope:
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"connection", b"upgrade"),
            (b"upgrade", b"websocket"),
            (b"sec-websocket-version", b"13"),
            (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "subprotocols": [],
        "state": {},
        "extensions": {},
    }


def post_scope(path: str, body_length: int, content_type: bytes) -> Scope:
    return http_scope(
        path,
        "POST",
        [(b"content-type", content_type), (b"content-length", str(body_length).encode())],
    )


def chunked(data: bytes, size: int = CHUNK) -> list[bytes]:
    """``data`` as the body messages of a client sending ``size`` bytes at a time."""
    return [data[start : start + size] for start in range(0, len(data), size)] or [b""]


async def send_body(
    send: Any,
    body: bytes,
    content_type: bytes = b"text/plain; charset=utf-8",
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """Send a whole response, as the least a raw ASGI app can do."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *extra_headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message: Message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


_HELLO_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"13")],
}
_HELLO_BODY = {"type": "http.response.body", "body": HELLO}


async def raw_hello(scope: Scope, receive: Any, send: Any) -> None:
    """The floor of every dispatch case: two prebuilt messages, nothing else."""
    await send(_HELLO_START)
    await send(_HELLO_BODY)
