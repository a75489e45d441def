"""Drive an ASGI app with exactly the scope an attacker's request would produce.

HTTP clients (httpx included) clean up what they send: they remove ``..`` segments,
refuse CR/LF in header values and normalise the Host header. An attacker's raw bytes get
no such help, and a server passes them on as they came (decoded once). So the security
tests build the scope themselves and talk ASGI directly, with every wait bounded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import anyio

from stellate.types import ASGIApp, Message

DEADLINE = 10.0  # seconds: a request that takes longer than this is a hang


@dataclass
class Answer:
    """What the app sent back: status, raw headers, body, and every message."""

    status: int
    raw_headers: list[tuple[bytes, bytes]]
    body: bytes
    messages: list[Message] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        wanted = name.lower().encode("latin-1")
        for key, value in self.raw_headers:
            if key == wanted:
                return value.decode("latin-1")
        return None

    def headers_named(self, name: str) -> list[str]:
        wanted = name.lower().encode("latin-1")
        return [value.decode("latin-1") for key, value in self.raw_headers if key == wanted]


def _encode(value: str | bytes) -> bytes:
    """Text as the bytes a client would send: latin-1 if it fits, else UTF-8."""
    if isinstance(value, bytes):
        return value
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


async def call(
    app: ASGIApp,
    path: str = "/",
    *,
    method: str = "GET",
    headers: Sequence[tuple[str | bytes, str | bytes]] = (("host", "example.com"),),
    body: bytes | Sequence[bytes] = b"",
    query_string: bytes = b"",
    scheme: str = "http",
    server: tuple[str, int] | None = ("127.0.0.1", 8000),
    root_path: str = "",
) -> Answer:
    """Send one request (the body in the given chunks) and collect the whole answer."""
    chunks = [body] if isinstance(body, bytes) else list(body)
    pending: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": scheme,
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "root_path": root_path,
        "query_string": query_string,
        "headers": [(_encode(k).lower(), _encode(v)) for k, v in headers],
        "client": ("127.0.0.1", 50000),
        "server": server,
        "state": {},
    }
    sent: list[Message] = []
    response_done = anyio.Event()

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        # The client stays connected until the response is complete, then leaves.
        await response_done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            response_done.set()

    with anyio.fail_after(DEADLINE):
        await app(scope, receive, send)
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1, f"expected one response start, got {sent!r}"
    body_bytes = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Answer(starts[0]["status"], list(starts[0]["headers"]), body_bytes, sent)
