"""Work that must not be lost, under real servers (hypercorn on trio and asyncio, uvicorn).

* ``cancel_on_disconnect``: a client that reads the whole answer and leaves at once does
  not cancel the response's background task (servers report the end of the exchange as
  ``http.disconnect``, and with a real server it arrives while the last ``send`` is
  still returning);
* ``timeout=``: a background task outlives the deadline of the handler that answered in
  time;
* ``request.app.tasks.start_soon`` works from a sync endpoint (a worker thread) and from
  an application mounted inside another (it uses the outer application's lifespan);
* a sync supervised task blocked far past ``shutdown_timeout`` does not hold the
  shutdown, nor the process's exit: it is named in the log as abandoned;
* the read-ahead of ``cancel_on_disconnect`` does not make uvicorn answer
  ``Expect: 100-continue`` for a handler that never reads its body.

One server of each kind serves work_app.py for the whole module.
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.e2e._servers import SERVERS, ServerProcess, start_server, stopped_cleanly

HERE = Path(__file__).resolve().parent
SETTLE = 20.0  # seconds for the counted work to finish: longer is a lost task
LEAVERS = 30


@pytest.fixture(scope="module", params=list(SERVERS))
def work_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    kind = str(request.param)
    log = tmp_path_factory.mktemp(kind) / "server.log"
    server = start_server(["work_app:app", *SERVERS[kind]], cwd=HERE, log=log)
    try:
        yield server
    finally:
        server.stop()
        server.kill()


def counts(server: ServerProcess) -> dict[str, int]:
    response = httpx.get(f"{server.base_url}/state", headers={"connection": "close"}, timeout=10)
    response.raise_for_status()
    result: dict[str, int] = response.json()
    return result


def settle(server: ServerProcess, kind: str, expected: int) -> dict[str, int]:
    """Wait (bounded) until ``expected`` pieces of ``kind`` work have ended, one way or other."""
    deadline = time.monotonic() + SETTLE
    while True:
        now = counts(server)
        ended = now.get(f"{kind}.finished", 0) + now.get(f"{kind}.cancelled", 0)
        if ended >= expected or time.monotonic() > deadline:
            return now
        time.sleep(0.05)  # polling another process: there is nothing to wait on


def read_and_leave(port: int, target: bytes) -> bytes:
    """GET ``target``, read the complete answer (a 4-byte body), close the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while not answer.endswith(b"\r\n\r\ndone"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


def test_background_task_survives_the_client_leaving(work_server: ServerProcess) -> None:
    before = counts(work_server).get("disconnect.started", 0)
    for _ in range(LEAVERS):
        answer = read_and_leave(work_server.port, b"/after-disconnect")
        assert answer.startswith(b"HTTP/1.1 200"), answer
    after = settle(work_server, "disconnect", before + LEAVERS)
    assert after.get("disconnect.cancelled", 0) == 0, after
    assert after.get("disconnect.finished", 0) == before + LEAVERS, after


def test_background_task_outlives_the_handler_deadline(work_server: ServerProcess) -> None:
    before = counts(work_server).get("deadline.started", 0)
    for _ in range(3):
        response = httpx.get(f"{work_server.base_url}/after-deadline", timeout=10)
        assert (response.status_code, response.text) == (200, "done")
    after = settle(work_server, "deadline", before + 3)
    assert after.get("deadline.cancelled", 0) == 0, after
    assert after.get("deadline.finished", 0) == before + 3, after


def test_a_sync_endpoint_starts_a_supervised_task(work_server: ServerProcess) -> None:
    response = httpx.get(f"{work_server.base_url}/sync-task", timeout=10)
    assert response.status_code == 200, response.text
    assert "started from" in response.text
    assert settle(work_server, "sync-endpoint", 1).get("sync-endpoint.finished") == 1


def test_a_mounted_application_uses_the_outer_lifespan(work_server: ServerProcess) -> None:
    response = httpx.get(f"{work_server.base_url}/sub/start", timeout=10)
    assert (response.status_code, response.text) == (200, "started")
    assert settle(work_server, "mounted", 1).get("mounted.finished") == 1


@pytest.mark.parametrize("kind", list(SERVERS))
def test_a_blocked_sync_task_does_not_hold_shutdown(tmp_path: Path, kind: str) -> None:
    """The task blocks for two minutes; stop() gives the server 15 s and fails if it is
    still there (the server then gets killed)."""
    server = start_server(["work_app:app", *SERVERS[kind]], cwd=HERE, log=tmp_path / "log")
    try:
        response = httpx.get(f"{server.base_url}/stuck", timeout=10)
        assert response.text == "stuck"
        deadline = time.monotonic() + SETTLE
        while "stuck export: blocking" not in server.output():
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.05)  # polling another process's log
        code = server.stop(signal.SIGTERM)
    finally:
        server.kill()
    output = server.output()
    assert stopped_cleanly(code, signal.SIGTERM), output
    assert "abandoning supervised task 'stuck-export'" in output, output


def test_read_ahead_does_not_answer_expect_100_continue(tmp_path: Path) -> None:
    """Only uvicorn leaves ``100 Continue`` to the application's first ``receive``
    (hypercorn sends it itself, for every request that asks), so only uvicorn can show it."""
    server = start_server(
        ["work_app:app", *SERVERS["uvicorn"]], cwd=HERE, log=tmp_path / "server.log"
    )
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(
                b"POST /unread HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"
                b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
            )
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
    finally:
        server.stop()
        server.kill()
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert b"100 Continue" not in answer
    assert answer.endswith(b"not read")
