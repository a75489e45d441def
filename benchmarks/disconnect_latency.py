"""How soon a ``cancel_on_disconnect`` handler is cancelled after the client hangs up.

``python benchmarks/disconnect_latency.py [--rounds N]``

For each server (hypercorn on trio, hypercorn on asyncio, uvicorn on asyncio) a real
server is started on 127.0.0.1 in this process's event loop. A raw TCP client sends a
GET to a handler that waits forever, waits until the handler has started, closes its
socket, and the time from the close to the handler's cancellation is recorded. The
target is 100 ms; the figure printed is the median and the worst of the rounds.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from stellate.applications import Stellate
from stellate.requests import Request
from stellate.responses import PlainTextResponse, Response
from stellate.routing import Route

Serve = Callable[[Any, int, anyio.Event], Awaitable[None]]


class Probe:
    def __init__(self) -> None:
        self.started = anyio.Event()
        self.cancelled_at: float | None = None
        self.cancelled = anyio.Event()

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


def make_app(probe: Probe) -> Stellate:
    async def slow(request: Request) -> Response:
        probe.started.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            probe.cancelled_at = time.perf_counter()
            probe.cancelled.set()
            raise
        return PlainTextResponse("unreachable")

    return Stellate(routes=[Route("/slow", slow)], cancel_on_disconnect=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def serve_hypercorn(app: Any, port: int, stop: anyio.Event, *, trio: bool) -> None:
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    if trio:
        from hypercorn.trio import serve
    else:
        from hypercorn.asyncio import serve  # type: ignore[assignment]
    await serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]


async def serve_uvicorn(app: Any, port: int, stop: anyio.Event) -> None:
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off")
    )
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve)
        await stop.wait()
        server.should_exit = True


async def connect(port: int) -> anyio.abc.SocketStream:
    with anyio.fail_after(10):
        while True:
            try:
                return await anyio.connect_tcp("127.0.0.1", port)
            except OSError:
                await anyio.sleep(0.01)


async def measure(serve: Serve, rounds: int) -> list[float]:
    probe = Probe()
    app = make_app(probe)
    port = free_port()
    stop = anyio.Event()
    latencies: list[float] = []
    async with anyio.create_task_group() as group:
        group.start_soon(serve, app, port, stop)
        for _ in range(rounds):
            probe.reset()
            stream = await connect(port)
            await stream.send(b"GET /slow HTTP/1.1\r\nhost: bench\r\n\r\n")
            with anyio.fail_after(10):
                await probe.started.wait()
            closed_at = time.perf_counter()
            await stream.aclose()
            with anyio.fail_after(10):
                await probe.cancelled.wait()
            assert probe.cancelled_at is not None
            latencies.append(probe.cancelled_at - closed_at)
        stop.set()
    return latencies


SERVERS: list[tuple[str, str, Serve]] = [
    (
        "hypercorn",
        "trio",
        lambda app, port, stop: serve_hypercorn(app, port, stop, trio=True),
    ),
    (
        "hypercorn",
        "asyncio",
        lambda app, port, stop: serve_hypercorn(app, port, stop, trio=False),
    ),
    ("uvicorn", "asyncio", serve_uvicorn),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    print(f"{'server':<10} {'backend':<8} {'median ms':>10} {'max ms':>8}  (target: 100 ms)")
    for server, backend, serve in SERVERS:
        latencies = anyio.run(measure, serve, args.rounds, backend=backend)
        median = statistics.median(latencies) * 1000
        worst = max(latencies) * 1000
        print(f"{server:<10} {backend:<8} {median:>10.2f} {worst:>8.2f}")


if __name__ == "__main__":
    main()
