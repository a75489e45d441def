"""A second Ctrl-C while the server shuts down gracefully: out at once, in one line.

hypercorn on trio (and on asyncio, which ``stellate run`` serves the same way) with an
application whose lifespan teardown takes a minute: the first SIGINT starts the graceful
shutdown, the second must end the process at once with exit status 130 and a one-line
message, no traceback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from tests.e2e._servers import HYPERCORN, SERVERS, start_server

HERE = Path(__file__).resolve().parent
WAIT = 15.0  # seconds: far less than the minute the teardown would take


def wait_for(condition: str, output: Path, deadline: float) -> None:
    until = time.monotonic() + deadline
    while condition not in output.read_text(errors="replace"):
        assert time.monotonic() < until, output.read_text(errors="replace")
        time.sleep(0.05)  # polling another process's log


@pytest.mark.parametrize("kind", HYPERCORN)
def test_second_interrupt_during_shutdown_exits_at_once(tmp_path: Path, kind: str) -> None:
    log = tmp_path / "server.log"
    server = start_server(
        ["work_app:app", *SERVERS[kind]],
        cwd=HERE,
        log=log,
        env={**os.environ, "STELLATE_WORK_SLOW_SHUTDOWN": "1"},
    )
    try:
        server.process.send_signal(signal.SIGINT)
        wait_for("slow shutdown: begun", log, WAIT)
        server.process.send_signal(signal.SIGINT)
        try:
            code = server.process.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            message = f"still running after a second Ctrl-C:\n{server.output()}"
            raise AssertionError(message) from None
    finally:
        server.kill()
    output = server.output()
    assert code == 130, output
    assert "Traceback" not in output, output
    assert "slow shutdown: done" not in output
    last = output.rstrip().splitlines()[-1]
    assert "second interrupt" in last, output
