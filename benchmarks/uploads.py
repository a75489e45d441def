"""Upload benchmarks: memory while a huge multipart file streams in, and event-loop latency.

    python benchmarks/uploads.py [--memory-mib 1024] [--latency-mb 200] [--backend asyncio]

Both run in-process: the app is called as an ASGI callable and fed generated 64 KiB
chunks through ``receive``, as a server would, so what is measured is stellate itself.

* **memory**: POST one multipart file of ``--memory-mib`` MiB to an endpoint that reads
  the form; report the peak RSS increase over the RSS before the upload (the kernel's
  high-water mark, reset first via ``/proc/self/clear_refs``, against ``VmRSS``; it falls
  back to ``resource.getrusage``) and the peak of Python
  allocations during it (``tracemalloc``). Target: under 64 MiB for 1 GiB.
* **latency**: while ``--latency-mb`` MB stream to disk, send a small GET to the same
  app every 5 ms and record how long each takes to be answered. Target: every answer
  within 50 ms, i.e. the disk writes never block the event loop.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from stellate.applications import Stellate
from stellate.datastructures import UploadFile
from stellate.requests import Request
from stellate.responses import PlainTextResponse, Response
from stellate.routing import Route
from stellate.types import Message, Scope

BOUNDARY = b"benchmarkboundary1234567890"
CHUNK = 64 * 1024
MIB = 1024 * 1024


async def upload(request: Request) -> Response:
    async with request.form() as form:
        upload = form["file"]
        assert isinstance(upload, UploadFile)
        return PlainTextResponse(str(upload.size))


async def ping(request: Request) -> Response:
    return PlainTextResponse("pong")


def make_app() -> Stellate:
    return Stellate(routes=[Route("/upload", upload, methods=["POST"]), Route("/ping", ping)])


def scope_for(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }


async def post_file(app: Stellate, size: int) -> bytes:
    """POST a ``size``-byte file part, generated chunk by chunk; return the response body."""
    head = (
        b"--" + BOUNDARY + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
    )
    tail = b"\r\n--" + BOUNDARY + b"--\r\n"
    block = bytes(range(256)) * (CHUNK // 256)
    remaining = size
    state = {"head": True}

    async def receive() -> Message:
        await anyio.lowlevel.checkpoint()  # a real server waits on its socket here
        nonlocal remaining
        if state["head"]:
            state["head"] = False
            return {"type": "http.request", "body": head, "more_body": True}
        if remaining > 0:
            piece = block if remaining >= CHUNK else block[:remaining]
            remaining -= len(piece)
            return {"type": "http.request", "body": piece, "more_body": True}
        if remaining == 0:
            remaining = -1
            return {"type": "http.request", "body": tail, "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError  # pragma: no cover

    content_type = b"multipart/form-data; boundary=" + BOUNDARY
    body = bytearray()

    async def send(message: Message) -> None:
        body.extend(message.get("body", b""))

    await app(scope_for("POST", "/upload", [(b"content-type", content_type)]), receive, send)
    return bytes(body)


async def get_ping(app: Stellate) -> None:
    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        pass

    await app(scope_for("GET", "/ping", []), receive, send)


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")  # pragma: no cover


def current_rss() -> int:
    return _status("VmRSS")


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (Linux >= 4.0), so the peak is this run's."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def peak_rss() -> int:
    # VmHWM can be reset; ru_maxrss is the same peak but over the whole process life.
    try:
        return _status("VmHWM")
    except RuntimeError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def measure_memory(size: int) -> dict[str, float]:
    app = make_app()
    await get_ping(app)  # build the middleware stack and import everything first
    await post_file(app, 2 * MIB)  # warm the thread pool and the parser
    reset_peak_rss()
    before_rss, before_peak = current_rss(), peak_rss()
    tracemalloc.start()
    started = time.perf_counter()
    result = await post_file(app, size)
    elapsed = time.perf_counter() - started
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result == str(size).encode(), result
    # Without a reset, the peak may predate the upload: only growth past both counts.
    increase = max(0, peak_rss() - max(before_rss, before_peak))
    return {
        "rss_increase_mib": increase / MIB,
        "tracemalloc_peak_mib": traced_peak / MIB,
        "seconds": elapsed,
    }


async def measure_latency(size: int, interval: float = 0.005) -> dict[str, float]:
    app = make_app()
    await get_ping(app)
    latencies: list[float] = []
    done = anyio.Event()

    async def pinger() -> None:
        while not done.is_set():
            started = time.perf_counter()
            await get_ping(app)
            latencies.append(time.perf_counter() - started)
            await anyio.sleep(interval)

    async def uploader() -> None:
        try:
            await post_file(app, size)
        finally:
            done.set()

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(pinger)
        tg.start_soon(uploader)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "pings": len(latencies),
        "max_ms": latencies[-1] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "median_ms": latencies[len(latencies) // 2] * 1000,
        "seconds": elapsed,
    }


def run(func: Callable[..., Any], *args: Any, backend: str) -> Any:
    return anyio.run(partial(func, *args), backend=backend)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory-mib", type=int, default=1024)
    parser.add_argument("--latency-mb", type=int, default=200)
    parser.add_argument("--backend", action="append", choices=["asyncio", "trio"])
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    for backend in args.backend or ["asyncio", "trio"]:
        memory = run(measure_memory, args.memory_mib * MIB, backend=backend)
        print(
            f"[{backend}] {args.memory_mib} MiB upload: "
            f"peak RSS +{memory['rss_increase_mib']:.1f} MiB, "
            f"tracemalloc peak {memory['tracemalloc_peak_mib']:.1f} MiB, "
            f"{memory['seconds']:.1f} s"
        )
        latency = run(measure_latency, args.latency_mb * 1_000_000, backend=backend)
        print(
            f"[{backend}] small GET during a {args.latency_mb} MB upload: "
            f"max {latency['max_ms']:.1f} ms, p99 {latency['p99_ms']:.1f} ms, "
            f"median {latency['median_ms']:.2f} ms over {latency['pings']} requests, "
            f"upload {latency['seconds']:.1f} s"
        )


if __name__ == "__main__":
    main()
