"""The lifespan under real servers: startup before the first request, shutdown on a signal.

Each test starts its own server, since stopping it is the point. app.py's lifespan writes
``startup``, starts a supervised task that runs until it is cancelled, and on the way out
awaits once and writes ``shutdown``: the supervisor must have cancelled (and finished) the
task before the lifespan's teardown runs, and the teardown must not itself be cancelled.

The SIGTERM runs keep a streaming response open while the server stops: a stream that would
run for a minute must be cut after the grace period (``stellate run`` gives 3 seconds on
every server; left alone, uvicorn would wait for it) and closed before the lifespan ends.
"""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import httpx
import pytest
from tests.e2e._servers import SERVERS, Server, launch, stopped_cleanly


def stop_with_a_stream_open(server: Server, client: httpx.Client, name: str) -> int:
    params = {"token": name, "patience": "60"}
    with client.stream("GET", "/stream", params=params) as response:
        chunks = response.iter_raw()
        assert next(chunks) == b"first\n"
        code = server.process.stop(signal.SIGTERM)
        try:
            rest = b"".join(chunks)
        except httpx.RemoteProtocolError:  # the server closed mid-body, as it must
            rest = b""
    assert rest == b"", "the stream was cut, not finished"
    return code


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM-with-open-stream"]
)
@pytest.mark.parametrize("kind", list(SERVERS))
def test_lifespan_runs_around_the_requests(tmp_path: Path, kind: str, signum: int) -> None:
    server = launch(kind, tmp_path)
    name = uuid.uuid4().hex
    try:
        with httpx.Client(base_url=server.base_url, timeout=30, trust_env=False) as client:
            first = client.get("/connection").json()
            assert first["started"] is True, "the lifespan state reaches the request"
            assert first["markers"] == ["startup", "task-started"]
            assert first["pending_tasks"] == ["forever"]
            if signum == signal.SIGTERM:
                code = stop_with_a_stream_open(server, client, name)
            else:
                code = server.process.stop(signum)
    finally:
        server.process.kill()
    output = server.process.output()
    assert stopped_cleanly(code, signum), output
    streamed = [f"stream-closed {name}"] if signum == signal.SIGTERM else []
    expected = ["startup", "task-started", *streamed, "task-cancelled", "shutdown"]
    assert server.markers() == expected, output
    assert "cancelling supervised task 'forever': still running at shutdown" in output
