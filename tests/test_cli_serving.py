"""``stellate run`` serving for real: what it logs, --port 0, --reload, TLS and Unix sockets.

Each test starts the command in a subprocess on hypercorn (trio or asyncio) and on uvicorn,
reads what it printed, and stops it with a bounded wait (see tests/e2e/_servers.py).
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import ssl
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from tests.e2e._servers import ServerProcess, stopped_cleanly

START_DEADLINE = 30.0
RELOAD_DEADLINE = 30.0
STARTED = re.compile(r"^INFO: +Serving (\S+) on (\S+) \((.*)\)\. Press Ctrl-C to stop\.$", re.M)

APP = """
from stellate.applications import Stellate
from stellate.responses import PlainTextResponse
from stellate.routing import Route

async def hello(request):
    return PlainTextResponse(GREETING + request.query_params.get("name", "world"))

GREETING = "Hello, "
app = Stellate(routes=[Route("/", hello)])
"""

SERVERS = {
    "hypercorn-trio": ["--server", "hypercorn", "--backend", "trio"],
    "hypercorn-asyncio": ["--server", "hypercorn", "--backend", "asyncio"],
    "uvicorn": ["--server", "uvicorn"],
}
ALL = pytest.mark.parametrize("server", list(SERVERS))


def write_app(directory: Path, source: str = APP, *, mtime_step: int = 0) -> None:
    """Write the app module; ``mtime_step`` moves its mtime on so a reloader cannot miss it."""
    path = directory / "served_app.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    if mtime_step:
        stamp = time.time() + mtime_step
        os.utime(path, (stamp, stamp))


class Started:
    """A ``stellate run`` process that has logged its startup line, and what that line said."""

    def __init__(self, process: ServerProcess, url: str, where: str) -> None:
        self.process = process
        self.url = url
        self.where = where

    def output(self) -> str:
        return self.process.output()


def start(
    args: list[str],
    directory: Path,
    *,
    command: list[str] | None = None,
    log: Path | None = None,
    env: dict[str, str] | None = None,
) -> Started:
    """Run ``python -m stellate run ARGS`` in ``directory`` until it logs that it is serving.

    The install test replaces ``python -m stellate`` by an installed script (``command``),
    its environment (``env``) and the place of the log (``directory/server.log``).
    """
    log = log or directory / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*(command or [sys.executable, "-m", "stellate"]), "run", *args],
            cwd=directory,
            env={**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(process, 0, log)
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        match = STARTED.search(server.output())
        if match:
            return Started(server, match.group(2), match.group(3))
        if process.poll() is not None:
            raise AssertionError(f"exited with {process.returncode}:\n{server.output()}")
        time.sleep(0.05)  # polling a log file: there is nothing to wait on instead
    server.kill()
    raise AssertionError(f"no startup line after {START_DEADLINE} s:\n{server.output()}")


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    write_app(tmp_path)
    return tmp_path


@pytest.fixture
def stopped() -> Iterator[list[Started]]:
    """Servers the test started; killed at the end if the test did not stop them."""
    servers: list[Started] = []
    yield servers
    for server in servers:
        server.process.kill()


def stop(server: Started) -> str:
    code = server.process.stop(signal.SIGINT)
    assert stopped_cleanly(code, signal.SIGINT), server.output()
    return server.output()


@ALL
def test_port_zero_logs_the_real_url_and_one_line_per_event(
    app_dir: Path, stopped: list[Started], server: str
) -> None:
    started = start(["served_app:app", "--port", "0", *SERVERS[server]], app_dir)
    stopped.append(started)
    url = started.url
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url), url
    assert not url.endswith(":0"), url
    with httpx.Client(base_url=url, timeout=10, trust_env=False) as client:
        assert client.get("/", params={"name": "one"}).text == "Hello, one"
        assert client.get("/missing?x=1&y=%2F").status_code == 404
    output = stop(started)
    lines = output.splitlines()
    assert [line for line in lines if "Serving" in line] == [
        f"INFO:     Serving served_app:app on {url} ({started.where}). Press Ctrl-C to stop."
    ]
    assert [line for line in lines if "Stopped" in line] == [
        f"INFO:     Stopped serving served_app:app on {url} ({started.where})"
    ]
    access = [line for line in lines if '"GET ' in line]
    assert len(access) == 2, output
    assert re.fullmatch(
        r'INFO: {5}127\.0\.0\.1:\d+ - "GET /\?name=one HTTP/1\.1" 200 \d+\.\d ms', access[0]
    ), access
    assert re.fullmatch(
        r'INFO: {5}127\.0\.0\.1:\d+ - "GET /missing\?x=1&y=%2F HTTP/1\.1" 404 \d+\.\d ms',
        access[1],
    ), access
    assert len(lines) == 4, output


@pytest.mark.parametrize("server", ["hypercorn-trio", "uvicorn"])
def test_no_access_log_and_quieter_levels(
    app_dir: Path, stopped: list[Started], server: str
) -> None:
    started = start(["served_app:app", "--port", "0", "--no-access-log", *SERVERS[server]], app_dir)
    stopped.append(started)
    with httpx.Client(base_url=started.url, timeout=10, trust_env=False) as client:
        assert client.get("/").status_code == 200
    output = stop(started)
    assert '"GET' not in output
    assert len(output.splitlines()) == 2, output

    write_app(app_dir)
    quiet = subprocess.Popen(
        [sys.executable, "-m", "stellate", "run", "served_app:app", "--port", "0",
         "--log-level", "warning", *SERVERS[server]],
        cwd=app_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        # Nothing is printed at warning level until it stops: signal it once it serves.
        # The command listens before the server has started (early clients queue), so
        # one request answered is what says the application is up.
        deadline = time.monotonic() + START_DEADLINE
        port = None
        while time.monotonic() < deadline and (port := _listening(quiet.pid)) is None:
            time.sleep(0.05)
        assert port is not None, "the quiet server never listened"
        with httpx.Client(timeout=START_DEADLINE, trust_env=False) as client:
            assert client.get(f"http://127.0.0.1:{port}/").status_code == 200
        quiet.send_signal(signal.SIGINT)
        out, _ = quiet.communicate(timeout=15)
    finally:
        if quiet.poll() is None:
            quiet.kill()
            quiet.wait(timeout=15)
    assert out == b"", out


def _listening(pid: int) -> int | None:
    """The port of a listening TCP socket of process ``pid``, from /proc; None if none yet."""
    try:
        inodes = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    except OSError:
        return None
    sockets = {link[8:-1] for link in inodes if link.startswith("socket:[")}
    table = Path("/proc/net/tcp").read_text() + Path("/proc/net/tcp6").read_text()
    for fields in (line.split() for line in table.splitlines()[1:]):
        if len(fields) > 9 and fields[3] == "0A" and fields[9] in sockets:
            return int(fields[1].rpartition(":")[2], 16)
    return None


@pytest.mark.parametrize("server", ["hypercorn-trio", "uvicorn"])
def test_reload_survives_a_syntax_error(app_dir: Path, stopped: list[Started], server: str) -> None:
    started = start(["served_app:app", "--port", "0", "--reload", *SERVERS[server]], app_dir)
    stopped.append(started)
    with httpx.Client(base_url=started.url, timeout=10, trust_env=False) as client:
        assert client.get("/").text == "Hello, world"

        step = itertools.count(5, 5)

        def break_it() -> None:
            write_app(app_dir, APP + "\ndef broken(:\n", mtime_step=next(step))

        break_it()
        broken = _until(client, lambda response: response.status_code == 500, break_it)
        assert broken.text.startswith("The application failed to import, waiting for a fix:")
        assert "SyntaxError" in broken.text
        assert started.process.process.poll() is None, "the command keeps running"

        def fix_it() -> None:
            write_app(app_dir, APP.replace("Hello, ", "Hi again, "), mtime_step=next(step))

        fix_it()
        fixed = _until(client, lambda response: response.status_code == 200, fix_it)
        assert fixed.text == "Hi again, world"
    output = stop(started)
    assert re.search(
        r"^ERROR: +importing 'served_app' failed: SyntaxError: .*"
        r"fix it and save: the server reloads on the next change$",
        output,
        re.M,
    ), output


def _until(
    client: httpx.Client, wanted: object, edit: Callable[[], None] | None = None
) -> httpx.Response:
    """Ask until the reloaded server answers as ``wanted`` says (bounded).

    ``edit`` (the change the test made) is made again every second while the old answer
    stands: a reloader that starts watching only after its first worker is up (uvicorn's)
    misses a change made in between, as it would miss a user's save at that moment.
    """
    deadline = time.monotonic() + RELOAD_DEADLINE
    last: object = None
    polls = 0
    while time.monotonic() < deadline:
        try:
            response = client.get("/")
        except httpx.TransportError as exc:  # between two workers
            last = exc
        else:
            if wanted(response):  # type: ignore[operator]
                return response
            last = response
        polls += 1
        if edit is not None and polls % 10 == 0:
            edit()
        time.sleep(0.1)
    raise AssertionError(f"the reloader did not catch up: last {last!r}")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@ALL
def test_tls(
    app_dir: Path, stopped: list[Started], server: str, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    args = ["served_app:app", "--port", "0", "--certfile", str(cert), "--keyfile", str(key)]
    started = start([*args, *SERVERS[server]], app_dir)
    stopped.append(started)
    assert started.url.startswith("https://127.0.0.1:")
    trusting = ssl.create_default_context(cafile=str(cert))
    with httpx.Client(base_url=started.url, timeout=10, trust_env=False, verify=trusting) as c:
        assert c.get("/", params={"name": "tls"}).text == "Hello, tls"
    stop(started)


@ALL
def test_unix_socket(app_dir: Path, stopped: list[Started], server: str) -> None:
    path = app_dir / "app.sock"
    started = start(["served_app:app", "--uds", str(path), *SERVERS[server]], app_dir)
    stopped.append(started)
    assert started.url == f"unix:{path}"
    transport = httpx.HTTPTransport(uds=str(path))
    with httpx.Client(transport=transport, base_url="http://app", timeout=10) as client:
        assert client.get("/", params={"name": "uds"}).text == "Hello, uds"
    output = stop(started)
    assert re.search(r'"GET /\?name=uds HTTP/1\.1" 200', output), output


LOG_CONFIG = """{
  "version": 1,
  "disable_existing_loggers": false,
  "formatters": {"mine": {"format": "MINE %(name)s %(levelname)s %(message)s"}},
  "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "mine",
                       "stream": "ext://sys.stdout"}},
  "loggers": {"stellate.access": {"handlers": ["out"], "propagate": false}}
}
"""


@pytest.mark.parametrize("server", ["hypercorn-trio", "uvicorn"])
def test_log_config_file(app_dir: Path, stopped: list[Started], server: str) -> None:
    (app_dir / "logging.json").write_text(LOG_CONFIG, encoding="utf-8")
    args = ["served_app:app", "--port", "0", "--log-config", "logging.json"]
    started = start([*args, *SERVERS[server]], app_dir)
    stopped.append(started)
    with httpx.Client(base_url=started.url, timeout=10, trust_env=False) as client:
        assert client.get("/?q=1").status_code == 200
    output = stop(started)
    assert re.search(
        r'^MINE stellate\.access INFO 127\.0\.0\.1:\d+ - "GET /\?q=1 HTTP/1\.1" 200', output, re.M
    ), output
    assert "INFO:     Serving served_app:app" in output, "the other loggers keep their set-up"


def test_log_config_that_cannot_be_used(app_dir: Path) -> None:
    (app_dir / "broken.json").write_text("{not json", encoding="utf-8")
    for argument, reason in [
        ("missing.json", "missing.json: No such file or directory"),
        ("broken.json", "broken.json: Expecting property name enclosed in double quotes"),
    ]:
        result = subprocess.run(
            [sys.executable, "-m", "stellate", "run", "served_app:app", "--port", "0",
             "--log-config", argument],
            cwd=app_dir, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith(
            f"python -m stellate: error: cannot use --log-config {reason}"
        ), result.stderr
        assert result.stderr.count("\n") == 1, result.stderr


FASTAPI_APP = """
from fastapi import FastAPI, Request

GREETING = "Hello"
app = FastAPI()

@app.get("/")
async def where(request: Request):
    return {"greeting": GREETING, "request": type(request).__module__}
"""


@pytest.fixture
def fastapi_dir(tmp_path: Path) -> Path:
    pytest.importorskip("fastapi")
    write_app(tmp_path, FASTAPI_APP)
    return tmp_path


@pytest.mark.parametrize("server", ["hypercorn-asyncio", "uvicorn"])
def test_as_starlette_in_worker_processes(
    fastapi_dir: Path, stopped: list[Started], server: str
) -> None:
    """Each worker is a fresh interpreter: it installs the bridge before importing the app.

    A worker without it would still answer, on the real Starlette: the request class says
    which one the application runs on.
    """
    args = ["served_app:app", "--port", "0", "--as-starlette", "--workers", "2"]
    started = start([*args, *SERVERS[server]], fastapi_dir)
    stopped.append(started)
    assert "worker process" in started.where, started.where
    with httpx.Client(base_url=started.url, timeout=10, trust_env=False) as client:
        for _ in range(4):
            assert client.get("/").json() == {
                "greeting": "Hello",
                "request": "stellate.requests",
            }
    stop(started)


@pytest.mark.parametrize("server", ["hypercorn-trio", "uvicorn"])
def test_as_starlette_with_the_reloader(
    fastapi_dir: Path, stopped: list[Started], server: str
) -> None:
    """The reloaded worker, started after an edit, is on stellate too."""
    args = ["served_app:app", "--port", "0", "--as-starlette", "--reload"]
    started = start([*args, *SERVERS[server]], fastapi_dir)
    stopped.append(started)
    with httpx.Client(base_url=started.url, timeout=10, trust_env=False) as client:
        assert client.get("/").json() == {"greeting": "Hello", "request": "stellate.requests"}

        step = itertools.count(5, 5)

        def edit() -> None:
            source = FASTAPI_APP.replace('"Hello"', '"Hi again"')
            write_app(fastapi_dir, source, mtime_step=next(step))

        edit()
        reloaded = _until(client, lambda response: response.json()["greeting"] != "Hello", edit)
        assert reloaded.json() == {"greeting": "Hi again", "request": "stellate.requests"}
    stop(started)
