"""A deterministic crowd of clients, polite and not, for the fault and load tests.

:func:`run_load` sends ``total`` requests to a server on 127.0.0.1 in bursts of
``burst`` simultaneous connections. Which request each one is, and where an abort
happens, comes from a ``random.Random(seed)``: the same seed gives the same run. About
half are well-formed (they must all succeed, and nothing well-formed may get a 5xx); the
others abandon the server mid-request: mid-upload (plain and multipart, past the point
where an upload spills to disk), mid-download, mid-file, mid-SSE, mid-WebSocket, and
before the headers are even complete, half of them with a FIN and half with a RST. Slow
readers and slow writers are well-formed requests that trickle.

It runs on asyncio (``websockets``' client is asyncio-only); every wait has a deadline.
"""

from __future__ import annotations

import hashlib
import json
import random
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import anyio.abc
import httpx
from websockets.asyncio.client import connect as websocket_connect

DEADLINE = 30.0  # seconds for any single scenario: longer is a hang
FILE_SIZE = 1_500_000  # file.bin: bigger than one spooled-upload buffer


@dataclass
class Outcome:
    """What a run saw: the scenarios it ran and every failure of a well-formed one.

    ``dropped`` are well-formed requests whose connection the server reset or closed
    before answering (transport errors, not HTTP answers). hypercorn does that to some
    uploads when a thousand connections arrive at once, with a bare ASGI app too, so
    the long run reports them apart; the bounded run allows none.
    """

    counts: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    def record(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1


class Crowd:
    """One client of a run, with its own Random; all share the pool for polite requests."""

    def __init__(self, port: int, rng: random.Random, client: httpx.AsyncClient) -> None:
        self.port = port
        self.rng = rng
        self.client = client

    # -- helpers -------------------------------------------------------------------------

    async def raw(self) -> anyio.abc.SocketStream:
        return await anyio.connect_tcp("127.0.0.1", self.port)

    async def abandon(self, stream: anyio.abc.SocketStream, reset: bool) -> None:
        """Leave: with a FIN (close) or a RST (SO_LINGER 0), as chosen."""
        if reset:
            sock = stream.extra(anyio.abc.SocketAttribute.raw_socket)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await stream.aclose()

    @staticmethod
    def expect(condition: bool, message: str) -> None:
        if not condition:
            raise AssertionError(message)

    # -- well-formed requests (must all succeed) ------------------------------------------

    async def ok(self) -> None:
        response = await self.client.get("/ok")
        self.expect((response.status_code, response.text) == (200, "ok"), f"/ok: {response}")

    async def upload(self) -> None:
        body = self.rng.randbytes(self.rng.randrange(1, 200_000))
        response = await self.client.post("/upload", content=body)
        self.expect(response.status_code == 200, f"/upload: {response.status_code}")
        self.expect(response.json()["sha256"] == hashlib.sha256(body).hexdigest(), "/upload sum")

    async def slow_writer(self) -> None:
        pieces = [self.rng.randbytes(2048) for _ in range(8)]

        async def trickle() -> AsyncIterator[bytes]:
            for piece in pieces:
                await anyio.sleep(0.005)
                yield piece

        response = await self.client.post("/upload", content=trickle())
        self.expect(response.status_code == 200, f"slow writer: {response.status_code}")
        self.expect(response.json()["size"] == 8 * 2048, "slow writer size")

    async def slow_reader(self) -> None:
        size = 256 * 1024
        received = 0
        async with self.client.stream("GET", f"/download?size={size}") as response:
            self.expect(response.status_code == 200, f"slow reader: {response.status_code}")
            async for chunk in response.aiter_bytes(8192):
                received += len(chunk)
                await anyio.sleep(0.001)
        self.expect(received == size, f"slow reader got {received}")

    async def form(self) -> None:
        files = {
            "small": ("small.txt", b"s" * 100, "text/plain"),
            "big": ("big.bin", self.rng.randbytes(1_100_000), "application/octet-stream"),
        }
        response = await self.client.post("/form", data={"field": "value"}, files=files)
        self.expect(response.status_code == 200, f"/form: {response.status_code} {response.text}")
        self.expect(response.json() == {"field": 5, "small": 100, "big": 1_100_000}, "/form")

    async def file(self) -> None:
        if self.rng.random() < 0.5:
            response = await self.client.get("/file")
            self.expect(response.status_code == 200, f"/file: {response.status_code}")
            self.expect(len(response.content) == FILE_SIZE, "/file size")
        else:
            response = await self.client.get("/file", headers={"range": "bytes=10-19,100-"})
            self.expect(response.status_code == 206, f"/file range: {response.status_code}")

    async def sse(self) -> None:
        async with self.client.stream("GET", "/sse?n=5") as response:
            self.expect(response.status_code == 200, f"/sse: {response.status_code}")
            text = (await response.aread()).decode()
        self.expect(text.count("data: event") == 5, f"/sse: {text!r}")

    async def websocket(self) -> None:
        async with websocket_connect(f"ws://127.0.0.1:{self.port}/ws", open_timeout=10) as ws:
            for number in range(3):
                await ws.send(f"hello {number}")
                self.expect(await ws.recv() == f"hello {number}", "websocket echo")

    # -- clients that leave halfway -------------------------------------------------------

    async def abort_upload(self) -> None:
        length = 2_000_000
        stream = await self.raw()
        head = (f"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n").encode()
        await stream.send(head + b"u" * self.rng.randrange(0, length, 4096))
        await self.abandon(stream, self.rng.random() < 0.5)

    async def abort_form(self) -> None:
        boundary = "fault"
        part = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="f"; filename="f.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        sent = part + b"f" * self.rng.randrange(1_100_000, 1_400_000)  # spilled to disk
        head = (
            "POST /form HTTP/1.1\r\nHost: x\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(sent) + 1_000_000}\r\n\r\n"
        ).encode()
        stream = await self.raw()
        await stream.send(head + sent)
        await anyio.sleep(0.01)  # let the server read (and spill) what was sent
        await self.abandon(stream, self.rng.random() < 0.5)

    async def _abort_reading(self, request: bytes, keep: int) -> None:
        stream = await self.raw()
        await stream.send(request)
        received = 0
        while received < keep:
            received += len(await stream.receive(65536))
        await self.abandon(stream, self.rng.random() < 0.5)

    async def abort_download(self) -> None:
        request = b"GET /download?size=50000000 HTTP/1.1\r\nHost: x\r\n\r\n"
        await self._abort_reading(request, self.rng.randrange(1, 300_000))

    async def abort_file(self) -> None:
        await self._abort_reading(
            b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n", self.rng.randrange(1, 200_000)
        )

    async def abort_sse(self) -> None:
        request = b"GET /sse?n=100000&pause=0.002 HTTP/1.1\r\nHost: x\r\n\r\n"
        await self._abort_reading(request, self.rng.randrange(1, 2000))

    async def abort_websocket(self) -> None:
        ws = await websocket_connect(f"ws://127.0.0.1:{self.port}/ws", open_timeout=10)
        try:
            for number in range(self.rng.randrange(0, 3)):
                await ws.send(f"message {number}")
                await ws.recv()
            await ws.send("left unanswered")
        finally:
            ws.transport.abort()  # no close frame: the connection just drops

    async def abort_cancel_upload(self) -> None:
        """Leave mid-upload to a cancel_on_disconnect route (its watcher reads ahead)."""
        stream = await self.raw()
        head = b"POST /cancel-upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"
        await stream.send(head + b"c" * self.rng.randrange(0, 300_000, 4096))
        await self.abandon(stream, self.rng.random() < 0.5)

    async def abort_slow_handler(self) -> None:
        """Leave while a cancel_on_disconnect handler is still working on the answer."""
        stream = await self.raw()
        await stream.send(b"GET /cancel-slow HTTP/1.1\r\nHost: x\r\n\r\n")
        await anyio.sleep(self.rng.random() * 0.02)
        await self.abandon(stream, self.rng.random() < 0.5)

    async def abort_headers(self) -> None:
        stream = await self.raw()
        await stream.send(b"GET /ok HTTP/1.1\r\nHost: x\r\nX-Half: ")
        await self.abandon(stream, self.rng.random() < 0.5)


#: (scenario method, weight, well-formed): the mix a run draws from.
MIX = [
    ("ok", 3, True),
    ("upload", 2, True),
    ("slow_writer", 1, True),
    ("slow_reader", 1, True),
    ("form", 1, True),
    ("file", 1, True),
    ("sse", 1, True),
    ("websocket", 1, True),
    ("abort_upload", 2, False),
    ("abort_form", 1, False),
    ("abort_download", 2, False),
    ("abort_file", 1, False),
    ("abort_sse", 2, False),
    ("abort_websocket", 2, False),
    ("abort_headers", 1, False),
]
#: Only clients that leave halfway: the aborted-requests run (2,000 per server).
ABORTS = [entry for entry in MIX if not entry[2]] + [
    ("abort_cancel_upload", 2, False),
    ("abort_slow_handler", 2, False),
]


def _draw(mix: list[tuple[str, int, bool]]) -> list[tuple[str, bool]]:
    return [(name, polite) for name, weight, polite in mix for _ in range(weight)]


async def _one(crowd: Crowd, outcome: Outcome, name: str, polite: bool, deadline: float) -> None:
    outcome.record(name)
    scenario: Callable[[], Awaitable[None]] = getattr(crowd, name)
    try:
        with anyio.fail_after(deadline):
            await scenario()
    except Exception as exc:
        if (
            polite
            and isinstance(exc, httpx.TransportError)
            and not isinstance(exc, httpx.TimeoutException)
        ):
            outcome.dropped.append(f"{name}: {type(exc).__name__}: {exc}")
        elif polite:
            outcome.failures.append(f"{name}: {type(exc).__name__}: {exc}")
        elif isinstance(exc, TimeoutError):
            outcome.failures.append(f"{name}: timed out (a hang)")
        # An abort that the server noticed first (reset, broken pipe) is fine.


async def run_load(
    port: int,
    *,
    total: int,
    burst: int,
    seed: int,
    deadline: float = DEADLINE,
    mix: list[tuple[str, int, bool]] = MIX,
) -> Outcome:
    """Run ``total`` scenarios drawn from ``mix`` in bursts of ``burst`` connections.

    ``deadline`` bounds each scenario: one that takes longer is a hang.
    """
    draw = _draw(mix)
    rng = random.Random(seed)  # draws the plan; each scenario has a Random of its own
    outcome = Outcome()
    # Idle connections are dropped after 2 s, well before the servers' 5 s keep-alive
    # timeout: reusing one the server is closing at that moment fails on the client side
    # (a race every HTTP/1.1 client has), which is not what these tests look for.
    limits = httpx.Limits(
        max_connections=burst, max_keepalive_connections=burst, keepalive_expiry=2.0
    )
    timeout = httpx.Timeout(deadline)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=timeout
    ) as client:
        done = 0
        while done < total:
            size = min(burst, total - done)
            picks = [(*rng.choice(draw), rng.getrandbits(64)) for _ in range(size)]
            async with anyio.create_task_group() as group:
                for name, polite, own_seed in picks:
                    crowd = Crowd(port, random.Random(own_seed), client)
                    group.start_soon(_one, crowd, outcome, name, polite, deadline)
            done += size
    return outcome


def release_memory(port: int) -> None:
    """Ask the fault app to collect garbage and return freed heap pages to the OS."""
    response = httpx.post(
        f"http://127.0.0.1:{port}/debug/release", headers={"connection": "close"}, timeout=30
    )
    response.raise_for_status()


def state(port: int) -> dict[str, object]:
    """The fault app's /debug/state, on a connection of its own (closed afterwards)."""
    response = httpx.get(
        f"http://127.0.0.1:{port}/debug/state", headers={"connection": "close"}, timeout=10
    )
    response.raise_for_status()
    result: dict[str, object] = json.loads(response.text)
    return result
