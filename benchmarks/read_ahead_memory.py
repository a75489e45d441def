"""Memory of concurrent uploads to a ``cancel_on_disconnect`` route, against the same route
without it: the watcher's read-ahead must stay bounded (target: within 10%).

``python benchmarks/read_ahead_memory.py [--uploads 200] [--size-kib 1024] [--rounds 3]
[--server ...]``

For each server (uvicorn, hypercorn on asyncio, hypercorn on trio) and each variant of
the route, a fresh ``stellate run`` process serves this module on 127.0.0.1. Each
handler first waits, as if for a slow credentials check, until all ``--uploads`` uploads
(``--size-kib`` each) have arrived and the benchmark has read the server's resident
memory; only then does it read and hash its body. While the handlers wait, a
``cancel_on_disconnect`` watcher reads ahead of each to see a disconnect, and that
read-ahead is what the comparison measures: the figures are the server's resident memory
with every upload waiting (after the buffers have had a second to fill) and its peak over
the run, for each variant, and their ratios: medians of ``--rounds`` rounds in which the
two variants alternate (peaks move by several percent between runs of the same code).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx

from stellate.applications import Stellate
from stellate.requests import Request
from stellate.responses import PlainTextResponse, Response
from stellate.routing import Route

HERE = Path(__file__).resolve().parent
SERVERS = {
    "uvicorn": ["--server", "uvicorn", "--backend", "asyncio"],
    "hypercorn-asyncio": ["--server", "hypercorn", "--backend", "asyncio"],
    "hypercorn-trio": ["--server", "hypercorn", "--backend", "trio"],
}
START_DEADLINE = 30.0
SETTLE = 1.0  # seconds for the buffers to fill once every upload has arrived

_waiting = 0
_release: anyio.Event | None = None


async def upload(request: Request) -> Response:
    global _waiting, _release
    if _release is None:
        _release = anyio.Event()
    release = _release
    _waiting += 1
    await release.wait()
    digest = hashlib.sha256()
    async for chunk in request.stream():
        digest.update(chunk)
    return PlainTextResponse(digest.hexdigest())


async def waiting(request: Request) -> Response:
    return PlainTextResponse(str(_waiting))


async def release_all(request: Request) -> Response:
    global _release, _waiting
    if _release is not None:
        _release.set()
    _release, _waiting = None, 0
    return PlainTextResponse("released")


CANCEL = os.environ.get("READ_AHEAD_BENCH_CANCEL") == "1"
app = Stellate(
    routes=[
        Route("/upload", upload, methods=["POST"], cancel_on_disconnect=CANCEL),
        Route("/waiting", waiting),
        Route("/release", release_all, methods=["POST"]),
    ]
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(server: str, cancel: bool) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    command = [sys.executable, "-m", "stellate", "run", "read_ahead_memory:app"]
    environment = {**os.environ, "READ_AHEAD_BENCH_CANCEL": "1" if cancel else "0"}
    process = subprocess.Popen(
        [*command, *SERVERS[server], "--port", str(port)],
        cwd=HERE,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return process, port
        except OSError:
            time.sleep(0.05)  # polling a port: there is nothing to wait on instead
    process.kill()
    raise SystemExit(f"{server} did not start")


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise SystemExit(f"no {field} in /proc")


async def crowd(port: int, pid: int, uploads: int, size: int) -> int:
    """Run the uploads; the server's resident memory while all of them wait (KiB)."""
    body = bytes(index % 251 for index in range(size))
    expected = hashlib.sha256(body).hexdigest()
    limits = httpx.Limits(max_connections=uploads + 1)
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(limits=limits, timeout=120, trust_env=False) as client:

        async def one() -> None:
            response = await client.post(f"{base}/upload", content=body)
            if response.text != expected:
                raise SystemExit(f"wrong answer: {response.status_code} {response.text[:80]}")

        async with anyio.create_task_group() as group:
            for _ in range(uploads):
                group.start_soon(one)
            with anyio.fail_after(60):
                while int((await client.get(f"{base}/waiting")).text) < uploads:
                    await anyio.sleep(0.05)
            await anyio.sleep(SETTLE)
            resident = memory_kib(pid, "VmRSS")
            await client.post(f"{base}/release")
    return resident


def measure(server: str, cancel: bool, uploads: int, size: int) -> tuple[int, int]:
    """(resident while waiting, peak) in KiB."""
    process, port = start(server, cancel)
    try:
        resident = anyio.run(crowd, port, process.pid, uploads, size)
        return resident, memory_kib(process.pid, "VmHWM")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f}Mi"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--size-kib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server", choices=list(SERVERS), action="append")
    options = parser.parse_args()
    size = options.size_kib * 1024
    print(
        f"{options.uploads} concurrent uploads of {options.size_kib} KiB, {options.rounds}"
        " round(s), the variants alternating: server memory, medians of the rounds"
    )
    print(
        f"{'server':<18}{'waiting: without':>17}{'with':>9}{'ratio':>7}"
        f"{'peak: without':>15}{'with':>9}{'ratio':>7}"
    )
    for server in options.server or list(SERVERS):
        rounds: dict[bool, list[tuple[int, int]]] = {False: [], True: []}
        for round_index in range(options.rounds):
            order = [False, True] if round_index % 2 == 0 else [True, False]
            for cancel in order:
                rounds[cancel].append(measure(server, cancel, options.uploads, size))
        without, with_option = (
            [statistics.median(figures[i] for figures in rounds[cancel]) for i in (0, 1)]
            for cancel in (False, True)
        )
        ratios = [with_option[i] / without[i] for i in (0, 1)]
        verdict = "ok" if max(ratios) <= 1.10 else "OVER 10%"
        print(
            f"{server:<18}{mib(without[0]):>17}{mib(with_option[0]):>9}{ratios[0]:>7.3f}"
            f"{mib(without[1]):>15}{mib(with_option[1]):>9}{ratios[1]:>7.3f}  {verdict}"
        )
        for cancel in (False, True):
            label = "with" if cancel else "without"
            figures = ", ".join(f"{mib(r)}/{mib(p)}" for r, p in rounds[cancel])
            print(f"{'':<18}rounds {label} (waiting/peak): {figures}")


if __name__ == "__main__":
    main()
