"""Peak memory of many concurrent multipart uploads, stellate against Starlette, per server.

``python benchmarks/upload_memory.py [--uploads 200] [--size-mib 10] [--rounds 2] [--server ...]``

The server processes are e2e.py's (uvicorn on asyncio, hypercorn on asyncio and on trio,
serving e2e_app.py on 127.0.0.1), and so is the route: ``POST /upload`` reads the multipart
form with ``request.form()`` and answers with the file's size. A fresh server process per
measurement takes ``--uploads`` concurrent uploads of a ``--size-mib`` file part (httpx, one
connection each); every answer is checked. Reported: the server's resident memory after a
warm-up upload, its peak over the run (the kernel's high-water mark ``VmHWM``; for hypercorn,
of its worker process) and the increase. The frameworks alternate, round after round.
The target (issue 23): stellate's peak at most Starlette's.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import anyio
import httpx
from e2e_app import UPLOAD_BOUNDARY

from e2e import SERVERS, load_average, serving

FRAMEWORKS = ["stellate", "starlette"]


def multipart_body(size: int) -> bytes:
    """e2e_app's upload (two fields and a file part) with a ``size``-byte file."""

    def part(disposition: str) -> bytes:
        head = f"--{UPLOAD_BOUNDARY}\r\nContent-Disposition: form-data; {disposition}\r\n"
        return head.encode()

    return b"".join(
        [
            part('name="title"') + b"\r\nbenchmark\r\n",
            part('name="note"') + b"\r\nan upload\r\n",
            part('name="file"; filename="data.bin"'),
            b"Content-Type: application/octet-stream\r\n\r\n",
            bytes(index % 251 for index in range(251)) * (size // 251) + b"u" * (size % 251),
            f"\r\n--{UPLOAD_BOUNDARY}--\r\n".encode(),
        ]
    )


def worker_pid(pid: int) -> int:
    """The process serving requests: ``pid`` itself, or hypercorn's worker (its child
    started by multiprocessing's spawn; another child is multiprocessing's resource tracker).
    """
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
            return int(child)
    return pid


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise SystemExit(f"no {field} in /proc/{pid}/status")


async def upload_all(port: int, uploads: int, body: bytes, expected: str) -> None:
    headers = {"Content-Type": f"multipart/form-data; boundary={UPLOAD_BOUNDARY}"}
    limits = httpx.Limits(max_connections=uploads)
    url = f"http://127.0.0.1:{port}/upload"
    async with httpx.AsyncClient(limits=limits, timeout=300, trust_env=False) as client:

        async def one() -> None:
            response = await client.post(url, content=body, headers=headers)
            if response.status_code != 200 or response.text != expected:
                raise SystemExit(f"wrong answer: {response.status_code} {response.text[:80]}")

        with anyio.fail_after(600):
            async with anyio.create_task_group() as group:
                for _ in range(uploads):
                    group.start_soon(one)


def measure(server: str, framework: str, uploads: int, body: bytes, size: int) -> tuple[int, int]:
    """(resident after one warm-up upload, peak over the run) of a fresh server, in KiB."""
    with serving(server, f"e2e_app:{framework}_app") as (process, port):
        anyio.run(upload_all, port, 1, body, str(size))
        pid = worker_pid(process.pid)
        before = memory_kib(pid, "VmRSS")
        anyio.run(upload_all, port, uploads, body, str(size))
        return before, memory_kib(pid, "VmHWM")


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--size-mib", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--server", choices=list(SERVERS), action="append")
    options = parser.parse_args()
    size = int(options.size_mib * 1024 * 1024)
    body = multipart_body(size)
    print(
        f"{options.uploads} concurrent multipart uploads of {options.size_mib:g} MiB, "
        f"{options.rounds} round(s), frameworks alternating; server memory in MiB "
        f"(peak: median of the rounds, all rounds in brackets); start: {load_average()}"
    )
    print(
        f"{'server':<19}{'framework':<11}{'resident':>9}{'peak':>8}{'increase':>9}  rounds' peaks"
    )
    for server in options.server or list(SERVERS):
        results: dict[str, list[tuple[int, int]]] = {fw: [] for fw in FRAMEWORKS}
        for round_number in range(options.rounds):
            order = FRAMEWORKS if round_number % 2 == 0 else FRAMEWORKS[::-1]
            for framework in order:
                results[framework].append(measure(server, framework, options.uploads, body, size))
        peaks = {fw: statistics.median(peak for _, peak in runs) for fw, runs in results.items()}
        for framework, runs in results.items():
            before = statistics.median(resident for resident, _ in runs)
            every = ", ".join(mib(peak) for _, peak in runs)
            print(
                f"{server:<19}{framework:<11}{mib(before):>9}{mib(peaks[framework]):>8}"
                f"{mib(peaks[framework] - before):>9}  [{every}]"
            )
        print(
            f"{'':<19}stellate/Starlette peak: {peaks['stellate'] / peaks['starlette']:.2f}  "
            f"({load_average()})",
            flush=True,
        )


if __name__ == "__main__":
    os.chdir(Path(__file__).resolve().parent)
    main()
