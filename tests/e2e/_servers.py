"""Start ``python -m stellate run`` as a real server process, and always stop it.

Shared by tests/test_cli.py and the e2e tests (which serve app.py through :func:`launch`
and :class:`ServerPool`). A server gets a port found by binding
port 0 on 127.0.0.1; if another process takes that port before the server binds it, the
command says so and exits, and the start is retried on a fresh port (at most three times).
Readiness is polled on the port with a deadline; stopping sends a signal, waits with a
deadline, and kills the process if it did not exit, so no server outlives its test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

START_DEADLINE = 30.0
STOP_DEADLINE = 15.0
PORT_TAKEN = "already in use"


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (the kernel picked it for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """A running ``stellate run`` process; its stdout and stderr go to ``log``."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    returncode: int | None = field(default=None)
    signalled: bool = field(default=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def send_signal(self, signum: int) -> None:
        """Signal the server once: a second signal means "stop now" to the servers."""
        if self.process.poll() is None and not self.signalled:
            self.process.send_signal(signum)
            self.signalled = True

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Signal the server, wait for it to exit (bounded), kill it if it does not.

        Returns the exit status; see :func:`stopped_cleanly`.
        """
        if self.process.poll() is None:
            self.send_signal(signum)
            try:
                self.process.wait(timeout=STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(
                    f"server did not stop on signal {signum}:\n{self.output()}"
                ) from None
        self.returncode = self.process.returncode
        return self.returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=STOP_DEADLINE)


def stopped_cleanly(returncode: int, signum: int) -> bool:
    """Whether a server stopped by ``signum`` exited as it should.

    hypercorn returns 0; uvicorn, after its graceful shutdown, re-raises the signal it caught
    so its parent sees how it ended, which is exit status ``-signum``.
    """
    return returncode in (0, -signum)


def start_server(
    args: list[str], *, cwd: Path, log: Path, env: dict[str, str] | None = None
) -> ServerProcess:
    """Run ``python -m stellate run ARGS --port P`` and wait until it accepts connections."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    for _attempt in range(3):
        port = free_port()
        command = [sys.executable, "-m", "stellate", "run", *args, "--port", str(port)]
        with log.open("wb") as output:
            process = subprocess.Popen(
                command, cwd=cwd, env=environment, stdout=output, stderr=subprocess.STDOUT
            )
        server = ServerProcess(process, port, log)
        try:
            if _wait_until_listening(server):
                return server
        except BaseException:
            server.kill()
            raise
    raise AssertionError(f"no free port after three attempts:\n{server.output()}")


#: What `stellate run` logs once the application's lifespan has started.
READY = "Press Ctrl-C to stop."


def _wait_until_listening(server: ServerProcess) -> bool:
    """True once the app has started and the port accepts connections; False if the port
    was taken by someone else."""
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            if PORT_TAKEN in server.output():
                return False
            raise AssertionError(
                f"server exited with {server.process.returncode}:\n{server.output()}"
            )
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=1.0):
                pass
        except OSError:
            time.sleep(0.05)  # polling a port: there is nothing to wait on instead
            continue
        # `stellate run` listens before the application has started (early clients
        # queue): ready means its startup line, logged once the lifespan has started.
        if READY in server.output():
            return True
        time.sleep(0.05)  # polling the log: there is nothing to wait on instead
    raise AssertionError(f"server not listening after {START_DEADLINE} s:\n{server.output()}")


HERE = Path(__file__).resolve().parent
SERVERS = {
    "hypercorn-trio": ["--server", "hypercorn", "--backend", "trio"],
    "hypercorn-asyncio": ["--server", "hypercorn", "--backend", "asyncio"],
    "uvicorn": ["--server", "uvicorn", "--backend", "asyncio"],
}
HYPERCORN = ["hypercorn-trio", "hypercorn-asyncio"]
#: The file app.py serves with ranges: every byte value, in a pattern that never lines up
#: with the range boundaries the tests ask for.
DATA = bytes(index * 7 % 251 for index in range(100_000))


@dataclass
class Server:
    """A server serving app.py, and the directory the app reads and writes."""

    kind: str
    process: ServerProcess
    directory: Path

    @property
    def base_url(self) -> str:
        return self.process.base_url

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.process.port}"

    def markers(self) -> list[str]:
        return (self.directory / "markers.log").read_text(encoding="utf-8").splitlines()


def launch(kind: str, directory: Path) -> Server:
    """Start a ``kind`` server on app.py with ``directory`` as its data directory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "data.bin").write_bytes(DATA)
    (directory / "markers.log").write_text("", encoding="utf-8")
    process = start_server(
        ["app:app", *SERVERS[kind]],
        cwd=HERE,
        log=directory / "server.log",
        env={"STELLATE_E2E_DIR": str(directory)},
    )
    return Server(kind, process, directory)


class ServerPool:
    """One running server per kind, started on first use, all stopped at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.running: dict[str, Server] = {}

    def get(self, kind: str) -> Server:
        if kind not in self.running:
            self.running[kind] = launch(kind, self.root / kind)
        return self.running[kind]

    def stop_all(self) -> None:
        """SIGTERM every server at once, then collect each (bounded; killed on timeout)."""
        problems = []
        for server in self.running.values():
            server.process.send_signal(signal.SIGTERM)
        for kind, server in self.running.items():
            try:
                code = server.process.stop(signal.SIGTERM)
            except AssertionError as exc:  # it did not stop, and was killed
                problems.append(str(exc))
                continue
            finally:
                server.process.kill()  # a no-op once it has exited
            if not stopped_cleanly(code, signal.SIGTERM):
                problems.append(f"{kind} exited with {code}:\n{server.process.output()}")
        self.running.clear()
        assert not problems, "\n\n".join(problems)
