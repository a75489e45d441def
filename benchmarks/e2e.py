"""End-to-end: the same routes from stellate and Starlette under real servers, driven by wrk.

    python benchmarks/e2e.py [--duration 5] [--rounds 2] [--connections 32]
                             [--server uvicorn|hypercorn-asyncio|hypercorn-trio]...
                             [--route /json]...

For each server (uvicorn on asyncio, hypercorn on asyncio and on trio) both apps of
e2e_app.py are started on 127.0.0.1, each in its own process, and wrk (one thread,
``--connections`` keep-alive connections) loads one route of one app at a time,
alternating between the two frameworks for ``--rounds`` rounds after a one-second
warm-up of each. ``POST /upload`` is sent by a wrk Lua script that sets the method, the
multipart body and its Content-Type. Printed, per server and route: requests per second
(the mean of the rounds) and the latency percentiles of the last round, side by side,
and the stellate/Starlette ratio of requests per second (higher is better for stellate).
Any answer other than 2xx/3xx, or a socket error, is printed under its row.

wrk comes from Debian's packages: when it is missing, the script installs it with apt-get
(running ``apt-get update`` first if the package is unknown). Everything is bounded: each
server gets 20 s to start, each wrk run ``--duration`` seconds plus a margin.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
FASTAPI_ROUTE = "/r99/items/42?q=x"
ROUTES = ["/", "/json", "/users/42", "/stream", "/upload", FASTAPI_ROUTE]
# The module serving each route (``<module>:stellate_app`` and ``<module>:starlette_app``).
APP_MODULES = {FASTAPI_ROUTE: "e2e_fastapi_app"}
DEFAULT_APP_MODULE = "e2e_app"
FRAMEWORKS = ["stellate", "starlette"]
PERCENTILES = ["50%", "90%", "99%"]


def server_command(server: str, target: str, port: int) -> list[str]:
    """The command serving ``target`` (``module:attribute``) on 127.0.0.1:``port``."""
    if server == "uvicorn":
        return [
            sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port),
            "--loop", "asyncio", "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
    return [
        sys.executable, "-m", "hypercorn", target, "--bind", f"127.0.0.1:{port}",
        "--worker-class", SERVERS[server], "--log-level", "warning",
    ]  # fmt: skip


# Server name -> the event loop it runs the app on.
SERVERS = {"uvicorn": "asyncio", "hypercorn-asyncio": "asyncio", "hypercorn-trio": "trio"}


def upload_script(directory: str) -> str:
    """A wrk Lua script POSTing e2e_app's multipart upload; returns its path."""
    from e2e_app import UPLOAD_BOUNDARY, UPLOAD_FILE_SIZE

    def part(disposition: str) -> str:
        return f"--{UPLOAD_BOUNDARY}\r\nContent-Disposition: form-data; {disposition}\r\n"

    head = (
        part('name="title"') + "\r\nbenchmark\r\n"
        + part('name="note"') + "\r\nan upload\r\n"
        + part('name="file"; filename="data.bin"')
        + "Content-Type: application/octet-stream\r\n\r\n"
    )  # fmt: skip
    tail = f"\r\n--{UPLOAD_BOUNDARY}--\r\n"
    content_type = f"multipart/form-data; boundary={UPLOAD_BOUNDARY}"
    script = (
        'wrk.method = "POST"\n'
        f'wrk.headers["Content-Type"] = {_lua_string(content_type)}\n'
        f'wrk.body = {_lua_string(head)} .. string.rep("u", {UPLOAD_FILE_SIZE}) .. '
        f"{_lua_string(tail)}\n"
    )
    path = os.path.join(directory, "upload.lua")
    with open(path, "w") as file:
        file.write(script)
    return path


def _lua_string(text: str) -> str:
    """``text`` (ASCII) as a Lua string literal: quotes, backslashes, controls escaped."""
    escaped = "".join(
        char if " " <= char <= "~" and char not in '"\\' else f"\\{ord(char):03d}" for char in text
    )
    return f'"{escaped}"'


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: installing it from Debian's packages (apt-get install -y wrk)")
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if os.geteuid() != 0:
        install.insert(0, "sudo")
    if subprocess.run(install, check=False, timeout=300).returncode != 0:
        update = ["apt-get", "update", "-q"] if os.geteuid() == 0 else ["sudo", "apt-get", "update"]
        subprocess.run(update, check=True, timeout=300)
        subprocess.run(install, check=True, timeout=300)
    found = shutil.which("wrk")
    if not found:
        sys.exit("wrk could not be installed")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_listening(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the server on port {port} did not listen within {timeout} s")


@contextmanager
def serving(server: str, target: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """Serve ``target`` (``module:attribute`` from this directory): (process, port)."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    process = subprocess.Popen(server_command(server, target, port), cwd=HERE, env=env)
    try:
        wait_until_listening(port, process, timeout=30)
        yield process, port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass
class Load:
    requests_per_second: float
    latency: dict[str, str]  # percentile -> "1.23ms"
    errors: str = ""


def run_wrk(
    wrk: str, url: str, duration: float, connections: int, script: str | None = None
) -> Load:
    command = [wrk, "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency", url]
    if script is not None:
        command[1:1] = ["-s", script]
    output = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=duration + 30
    ).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rate is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    latency = {}
    for percentile in PERCENTILES:
        found = re.search(rf"^\s+{re.escape(percentile)}\s+(\S+)", output, re.MULTILINE)
        latency[percentile] = found.group(1) if found else "?"
    errors = " ".join(
        line.strip() for line in output.splitlines() if "Non-2xx" in line or "Socket errors" in line
    )
    return Load(float(rate.group(1)), latency, errors)


def benchmark(
    server: str, routes: list[str], args: argparse.Namespace, wrk: str, scripts: dict[str, str]
) -> None:
    modules = sorted({APP_MODULES.get(route, DEFAULT_APP_MODULE) for route in routes})
    for module in modules:
        with (
            serving(server, f"{module}:stellate_app") as (_, stellate_port),
            serving(server, f"{module}:starlette_app") as (_, starlette_port),
        ):
            ports = {"stellate": stellate_port, "starlette": starlette_port}
            for route in routes:
                if APP_MODULES.get(route, DEFAULT_APP_MODULE) == module:
                    load_route(server, route, ports, args, wrk, scripts.get(route))


def load_route(
    server: str,
    route: str,
    ports: dict[str, int],
    args: argparse.Namespace,
    wrk: str,
    script: str | None,
) -> None:
    """Load ``route`` of both apps alternately, round after round; print its row."""
    rates: dict[str, list[float]] = {fw: [] for fw in FRAMEWORKS}
    last: dict[str, Load] = {}
    for framework in FRAMEWORKS:  # warm-up
        run_wrk(wrk, f"http://127.0.0.1:{ports[framework]}{route}", 1, args.connections, script)
    for round_number in range(args.rounds):
        order = FRAMEWORKS if round_number % 2 == 0 else FRAMEWORKS[::-1]
        for framework in order:
            url = f"http://127.0.0.1:{ports[framework]}{route}"
            load = run_wrk(wrk, url, args.duration, args.connections, script)
            rates[framework].append(load.requests_per_second)
            last[framework] = load
    print(_row(server, route, rates, last), flush=True)


def _spread(values: list[float]) -> str:
    """The range of ``values`` around their median, in percent: "-3/+5%"."""
    middle = statistics.median(values)
    return f"-{(middle - min(values)) / middle:.0%}/+{(max(values) - middle) / middle:.0%}"


def _row(server: str, route: str, rates: dict[str, list[float]], last: dict[str, Load]) -> str:
    median = {fw: statistics.median(r) for fw, r in rates.items()}
    # Each round loads both apps back to back: its ratio compares them under the same load.
    ratios = [a / b for a, b in zip(rates["stellate"], rates["starlette"], strict=True)]
    latencies = {fw: "/".join(last[fw].latency[p] for p in PERCENTILES) for fw in FRAMEWORKS}
    row = (
        f"{server + ' (' + SERVERS[server] + ')':26} {route:18} "
        f"{median['stellate']:8.0f} {_spread(rates['stellate']):>9} "
        f"{median['starlette']:9.0f} {_spread(rates['starlette']):>9} "
        f"{median['stellate'] / median['starlette']:6.2f} "
        f"{min(ratios):5.2f}-{max(ratios):4.2f}  "
        f"{latencies['stellate']:>24} {latencies['starlette']:>24}"
    )
    errors = "; ".join(f"{fw}: {last[fw].errors}" for fw in FRAMEWORKS if last[fw].errors)
    return row + (f"\n    ({errors})" if errors else "")


def load_average() -> str:
    return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--server", action="append", choices=list(SERVERS))
    parser.add_argument("--route", action="append", help=f"default: {' '.join(ROUTES)}")
    args = parser.parse_args()
    wrk = ensure_wrk()
    print(
        f"wrk -t1 -c{args.connections}, {args.rounds} x {args.duration:g} s per app and route, "
        "alternating; requests/s: median of the rounds and the range around it; ratio of the "
        "medians and the range of the per-round ratios; latency p50/p90/p99 (last round)"
    )
    print(
        f"{'server':26} {'route':18} {'stellate':>8} {'spread':>9} {'starlette':>9} "
        f"{'spread':>9} {'ratio':>6} {'range':>10}  "
        f"{'stellate p50/p90/p99':>24} {'starlette p50/p90/p99':>24}"
    )
    print(f"start: {load_average()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="stellate-e2e-") as directory:
        scripts = {"/upload": upload_script(directory)}
        for server in args.server or list(SERVERS):
            benchmark(server, args.route or ROUTES, args, wrk, scripts)
            print(f"after {server}: {load_average()}", flush=True)


if __name__ == "__main__":
    main()
