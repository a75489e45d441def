"""Lifespan faults under real servers (hypercorn on trio and asyncio, uvicorn).

* a startup that raises: the server reports the failure, with the application's message,
  and exits non-zero without ever serving;
* a shutdown that raises: the failure and its message are reported, and the process
  still exits (bounded wait); under ``stellate run`` with hypercorn, with the one-line
  error ``the application's lifespan shutdown failed: ...`` and exit status 1 (uvicorn
  reports it itself);
* a supervised task that ignores its cancellation (it shields itself and carries on for
  a while): at the shutdown deadline (``shutdown_timeout``) it is named in the log, and
  shutdown completes once it has finished, with the lifespan's teardown after it.

Each test starts its own server (fault_app.py, ``STELLATE_FAULT_MODE``) on 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from tests.e2e._servers import SERVERS, free_port, stopped_cleanly
from tests.e2e.test_faults import serve

HERE = Path(__file__).resolve().parent
EXIT_DEADLINE = 60.0


@pytest.mark.parametrize("kind", list(SERVERS))
def test_startup_that_raises_exits_non_zero_with_the_message(tmp_path: Path, kind: str) -> None:
    environment = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "STELLATE_FAULT_DIR": str(tmp_path),
        "STELLATE_FAULT_MODE": "startup-raises",
    }
    (tmp_path / "public").mkdir()
    command = [sys.executable, "-m", "stellate", "run", "fault_app:app", *SERVERS[kind]]
    result = subprocess.run(
        [*command, "--port", str(free_port())],
        cwd=HERE,
        env=environment,
        capture_output=True,
        text=True,
        timeout=EXIT_DEADLINE,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "cannot reach the database at db.invalid:5432" in output, output
    assert "fault app: started" not in output


@pytest.mark.parametrize("kind", list(SERVERS))
def test_shutdown_that_raises_is_reported(tmp_path: Path, kind: str) -> None:
    server = serve(kind, tmp_path, mode="shutdown-raises")
    try:
        assert httpx.get(f"{server.base_url}/ok", timeout=10).text == "ok"
        code = server.stop(signal.SIGTERM)  # raises if the process does not exit in time
    finally:
        server.kill()
    output = server.output()
    assert "could not flush the write-behind cache" in output, output
    assert "startup failed" not in output, "it is the shutdown that failed"
    if kind.startswith("hypercorn"):
        assert code == 1, output
        assert output.rstrip().endswith(
            "the application's lifespan shutdown failed: "
            "RuntimeError: could not flush the write-behind cache"
        ), output
    assert "fault app: shut down" not in output


@pytest.mark.parametrize("kind", list(SERVERS))
def test_task_ignoring_cancellation_is_named_and_shutdown_completes(
    tmp_path: Path, kind: str
) -> None:
    server = serve(kind, tmp_path, mode="stubborn-task")
    try:
        state = httpx.get(f"{server.base_url}/debug/state", timeout=10).json()
        assert state["supervised"] == ["stubborn-indexer"]
        code = server.stop(signal.SIGTERM)
    finally:
        server.kill()
    output = server.output()
    assert stopped_cleanly(code, signal.SIGTERM), output
    named = output.find("cancelling supervised task 'stubborn-indexer': still running at shutdown")
    cancelled = output.find("stubborn task: cancelled, finishing anyway")
    done = output.find("stubborn task: done")
    teardown = output.find("fault app: shut down")
    assert -1 < named < cancelled < done < teardown, output
