"""The ``stellate`` command: its options, its one-line errors, and a real server it starts."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.e2e._servers import ServerProcess, start_server, stopped_cleanly

from stellate._serving import CommandError, RunOptions, load_app, open_listener, require_server
from stellate.cli import build_parser, main, run_options

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def parse(*argv: str) -> RunOptions:
    args = build_parser().parse_args(["run", *argv])
    return run_options(args.run_parser, args)


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The error line argparse printed for ``stellate run ARGV`` (which must exit 2)."""
    with pytest.raises(SystemExit) as exc_info:
        parse(*argv)
    assert exc_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: stellate run")
    return err.strip().splitlines()[-1]


# -- options ---------------------------------------------------------------------------------


def test_defaults() -> None:
    assert parse("main:app") == RunOptions(
        target="main:app",
        host="127.0.0.1",
        port=8000,
        server="hypercorn",
        backend="trio",
        workers=1,
        reload=False,
        root_path="",
        proxy_headers=False,
        forwarded_allow_ips="127.0.0.1",
        log_level="info",
        access_log=True,
        graceful_timeout=3.0,
        certfile=None,
        keyfile=None,
        uds=None,
        log_config=None,
    )


def test_uvicorn_defaults_to_asyncio() -> None:
    options = parse("main:app", "--server", "uvicorn")
    assert (options.server, options.backend) == ("uvicorn", "asyncio")


def test_every_option() -> None:
    options = parse(
        "pkg.main:api.app",
        "--host", "0.0.0.0",
        "--port", "0",
        "--server", "hypercorn",
        "--backend", "asyncio",
        "--workers", "3",
        "--root-path", "/api/",
        "--proxy-headers",
        "--forwarded-allow-ips", "10.0.0.0/8, 192.168.1.1",
        "--log-level", "debug",
        "--no-access-log",
        "--graceful-timeout", "12.5",
        "--certfile", "cert.pem",
        "--keyfile", "key.pem",
        "--uds", "/tmp/app.sock",
        "--log-config", "logging.json",
    )  # fmt: skip
    assert options == RunOptions(
        target="pkg.main:api.app",
        host="0.0.0.0",
        port=0,
        server="hypercorn",
        backend="asyncio",
        workers=3,
        reload=False,
        root_path="/api",
        proxy_headers=True,
        forwarded_allow_ips="10.0.0.0/8, 192.168.1.1",
        log_level="debug",
        access_log=False,
        graceful_timeout=12.5,
        certfile="cert.pem",
        keyfile="key.pem",
        uds="/tmp/app.sock",
        log_config="logging.json",
    )
    assert parse("m:app", "--reload").reload is True
    assert parse("m:app", "--access-log").access_log is True


@pytest.mark.parametrize("target", ["main", ":app", "main:", "a:b:c", ""])
def test_target_must_be_module_colon_attr(capsys: pytest.CaptureFixture[str], target: str) -> None:
    line = usage_error(capsys, target)
    assert f"expected MODULE:ATTR (for example main:app), got {target!r}" in line


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "65536"], "expected a port number from 0 to 65535, got '65536'"),
        (["--port", "http"], "expected a port number from 0 to 65535, got 'http'"),
        (["--port", "-1"], "expected a port number from 0 to 65535, got '-1'"),
        (["--workers", "0"], "expected a positive whole number, got '0'"),
        (["--workers", "two"], "expected a positive whole number, got 'two'"),
        (["--server", "daphne"], "invalid choice: 'daphne'"),
        (["--backend", "curio"], "invalid choice: 'curio'"),
        (["--log-level", "loud"], "invalid choice: 'loud'"),
        (
            ["--server", "uvicorn", "--backend", "trio"],
            "uvicorn runs on asyncio only: use --backend asyncio, "
            "or --server hypercorn to run on trio",
        ),
        (["--reload", "--workers", "2"], "--reload runs a single worker"),
        (["--forwarded-allow-ips", "*"], "--forwarded-allow-ips only applies with --proxy-headers"),
        (
            ["--proxy-headers", "--forwarded-allow-ips", "10.0.0.1,proxy.local"],
            "--forwarded-allow-ips: 'proxy.local' is not an IP address",
        ),
        (["--root-path", "api"], "--root-path must start with '/', got 'api'"),
        (["--graceful-timeout", "-1"], "expected a number of seconds, got '-1'"),
        (["--graceful-timeout", "inf"], "expected a number of seconds, got 'inf'"),
        (["--certfile", "c.pem"], "--certfile and --keyfile go together"),
        (["--keyfile", "k.pem"], "--certfile and --keyfile go together"),
    ],
)
def test_contradictions_are_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert message in usage_error(capsys, "main:app", *argv)


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "run" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from stellate import __version__

    with pytest.raises(SystemExit) as exc_info:
        main(["--version"])
    assert exc_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"stellate {__version__}"


# -- loading the application -----------------------------------------------------------------


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A current directory for modules written by the test, forgotten again afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield tmp_path
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]
    sys.modules.pop("stellate._served", None)


def write(directory: Path, name: str, source: str) -> None:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source), encoding="utf-8")


def test_load_app_imports_from_the_current_directory(app_dir: Path) -> None:
    write(app_dir, "cli_app_plain.py", "async def app(scope, receive, send): pass\n")
    write(app_dir, "cli_pkg/__init__.py", "")
    write(
        app_dir,
        "cli_pkg/main.py",
        """
        class Api:
            async def app(self, scope, receive, send): pass
        api = Api()
        """,
    )
    module = sys.modules  # the import went through the normal machinery
    assert load_app("cli_app_plain:app") is module["cli_app_plain"].app
    assert load_app("cli_pkg.main:api.app") == module["cli_pkg.main"].api.app


def test_load_app_missing_module(app_dir: Path) -> None:
    with pytest.raises(CommandError) as exc_info:
        load_app("cli_no_such_module:app")
    assert str(exc_info.value) == (
        f"cannot import 'cli_no_such_module': no module named 'cli_no_such_module' "
        f"in {app_dir} or on sys.path"
    )
    with pytest.raises(CommandError, match="no module named 'cli_no_such_pkg'"):
        load_app("cli_no_such_pkg.main:app")


def test_load_app_module_raising(app_dir: Path) -> None:
    write(app_dir, "cli_app_boom.py", "x = 1\nraise RuntimeError('no database\\nconfigured')\n")
    with pytest.raises(CommandError) as exc_info:
        load_app("cli_app_boom:app")
    message = str(exc_info.value)
    assert message.startswith(
        "importing 'cli_app_boom' failed: RuntimeError: no database configured"
    )
    assert f"({app_dir / 'cli_app_boom.py'}, line 2)" in message
    assert "--log-level debug" in message
    assert "\n" not in message


def test_load_app_blames_the_users_line(app_dir: Path) -> None:
    # The KeyError is raised inside os.py; the line to fix is the module's.
    write(app_dir, "cli_app_env.py", "import os\nURL = os.environ['STELLATE_CLI_UNSET_VAR']\n")
    with pytest.raises(CommandError) as exc_info:
        load_app("cli_app_env:app")
    assert str(exc_info.value).startswith(
        "importing 'cli_app_env' failed: KeyError: 'STELLATE_CLI_UNSET_VAR' "
        f"({app_dir / 'cli_app_env.py'}, line 2)"
    )


def test_load_app_missing_dependency_is_not_a_missing_app(app_dir: Path) -> None:
    write(app_dir, "cli_app_dep.py", "import cli_missing_dependency\n")
    with pytest.raises(CommandError) as exc_info:
        load_app("cli_app_dep:app")
    assert str(exc_info.value).startswith(
        "importing 'cli_app_dep' failed: ModuleNotFoundError: "
        "No module named 'cli_missing_dependency'"
    )


def test_load_app_syntax_error(app_dir: Path) -> None:
    write(app_dir, "cli_app_syntax.py", "def app(:\n")
    with pytest.raises(CommandError, match=r"importing 'cli_app_syntax' failed: SyntaxError"):
        load_app("cli_app_syntax:app")


def test_load_app_shows_traceback_when_asked(
    app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(app_dir, "cli_app_boom2.py", "raise ValueError('bad setting')\n")
    with pytest.raises(CommandError) as exc_info:
        load_app("cli_app_boom2:app", show_traceback=True)
    assert "--log-level debug" not in str(exc_info.value)
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "ValueError: bad setting" in err


def test_load_app_missing_or_wrong_attribute(app_dir: Path) -> None:
    write(app_dir, "cli_app_attr.py", "settings = {'debug': True}\nclass api: pass\n")
    with pytest.raises(CommandError) as exc_info:
        load_app("cli_app_attr:app")
    assert str(exc_info.value) == (
        "cannot load 'cli_app_attr:app': module 'cli_app_attr' has no attribute 'app'"
    )
    with pytest.raises(CommandError, match=r"has no attribute 'api\.app'"):
        load_app("cli_app_attr:api.app")
    with pytest.raises(CommandError) as exc_info:
        load_app("cli_app_attr:settings")
    assert str(exc_info.value) == (
        "cannot serve 'cli_app_attr:settings': it is a dict, not an ASGI application "
        "(an async callable taking scope, receive, send)"
    )


NOT_APPS = """
from stellate.applications import Stellate
from stellate.responses import PlainTextResponse

async def hello(request):
    return PlainTextResponse("hi")

def sync_app(scope, receive, send):
    pass

class Api:
    async def __call__(self, scope, receive, send): pass

class Handler:
    async def __call__(self, request): pass

handler = Handler()
app = Stellate()
"""


@pytest.mark.parametrize(
    ("attribute", "what"),
    [
        ("hello", "an async function taking (request)"),
        ("sync_app", "a plain (not async) function taking (scope, receive, send)"),
        ("Api", "the class Api (serve an instance of it)"),
        ("Stellate", "the class Stellate (serve an instance of it)"),
        ("handler", "a Handler object called taking (request)"),
    ],
)
def test_load_app_refuses_what_is_not_an_asgi_app(app_dir: Path, attribute: str, what: str) -> None:
    write(app_dir, "cli_not_apps.py", NOT_APPS)
    with pytest.raises(CommandError) as exc_info:
        load_app(f"cli_not_apps:{attribute}")
    assert str(exc_info.value) == (
        f"cannot serve 'cli_not_apps:{attribute}': it is {what}, not an ASGI application "
        "(an async callable taking scope, receive, send); did you mean 'cli_not_apps:app'?"
    )


def test_load_app_accepts_asgi_callables(app_dir: Path) -> None:
    write(
        app_dir,
        "cli_apps.py",
        NOT_APPS + "api = Api()\nimport functools\nasync def _app(x, scope, receive, send): pass\n"
        "partial = functools.partial(_app, 1)\n",
    )
    for attribute in ("app", "api", "partial"):
        assert load_app(f"cli_apps:{attribute}") is getattr(sys.modules["cli_apps"], attribute)


# -- servers and ports -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "blocked", "needed", "install"),
    [
        (
            RunOptions("m:app", server="uvicorn", backend="asyncio"),
            "uvicorn",
            "'uvicorn'",
            "uvicorn[standard]",
        ),
        (RunOptions("m:app"), "hypercorn", "'hypercorn'", "hypercorn[trio]"),
        (
            RunOptions("m:app"),
            "trio",
            "hypercorn's trio worker (--backend trio) needs the 'trio'",
            "trio",
        ),
    ],
)
def test_missing_server_package(
    monkeypatch: pytest.MonkeyPatch, options: RunOptions, blocked: str, needed: str, install: str
) -> None:
    """The message names a package pip can find (stellate itself is not on PyPI)."""
    monkeypatch.setitem(sys.modules, blocked, None)  # makes ``import blocked`` fail
    with pytest.raises(CommandError) as exc_info:
        require_server(options)
    assert needed in str(exc_info.value)
    assert str(exc_info.value).endswith(
        f"install it with: pip install '{install}' (or install stellate with its server extra)"
    )


def test_hypercorn_on_asyncio_does_not_need_trio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "trio", None)
    require_server(RunOptions("m:app", backend="asyncio"))


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def listener_for(**options: Any) -> socket.socket:
    return open_listener(RunOptions("m:app", **options))


def test_open_listener(busy_port: int, tmp_path: Path) -> None:
    with pytest.raises(CommandError) as exc_info:
        listener_for(port=busy_port)
    assert str(exc_info.value) == (
        f"cannot listen on 127.0.0.1:{busy_port}: the port is already in use "
        "(is another server running? choose another --port)"
    )
    with listener_for(port=0) as listener:  # any free port, listening already
        port = listener.getsockname()[1]
        assert port != 0
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # accepted into the backlog before any server runs
    path = tmp_path / "app.sock"
    with listener_for(uds=str(path)) as listener:
        assert listener.family == socket.AF_UNIX
        with pytest.raises(CommandError) as exc_info:
            listener_for(uds=str(path))
    assert str(exc_info.value) == (
        f"cannot listen on unix:{path}: the file exists "
        "(is another server using it? if not, remove it)"
    )


def test_open_listener_address_not_here() -> None:
    # 192.0.2.0/24 is reserved for documentation: no machine has that address.
    with pytest.raises(CommandError, match=r"^cannot listen on 192\.0\.2\.1:8000: "):
        listener_for(host="192.0.2.1")


def test_main_reports_failures_in_one_line(
    app_dir: Path, busy_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "cli_no_such_module:app"]) == 1
    assert capsys.readouterr().err == (
        "stellate: error: cannot import 'cli_no_such_module': no module named "
        f"'cli_no_such_module' in {app_dir} or on sys.path\n"
    )
    write(app_dir, "cli_app_busy.py", "async def app(scope, receive, send): pass\n")
    assert main(["run", "cli_app_busy:app", "--port", str(busy_port)], prog="x") == 1
    assert capsys.readouterr().err.startswith(
        f"x: error: cannot listen on 127.0.0.1:{busy_port}: the port is already in use"
    )


def test_hypercorn_config() -> None:
    from stellate._serving import _hypercorn_config

    config = _hypercorn_config(
        RunOptions("m:app", host="::1", port=9000, backend="asyncio", root_path="/api",
                   log_level="warning", graceful_timeout=7.5, certfile="c.pem",
                   keyfile="k.pem"),
        lifespan_limit=130.0,
    )  # fmt: skip
    assert config.bind == ["[::1]:9000"]
    assert config.worker_class == "asyncio"
    assert config.root_path == "/api"
    assert config.loglevel == "WARNING"
    assert config.accesslog is None, "stellate.access logs the requests, once"
    assert config.graceful_timeout == 7.5
    assert (config.startup_timeout, config.shutdown_timeout) == (130.0, 130.0)
    assert (config.certfile, config.keyfile) == ("c.pem", "k.pem")
    assert _hypercorn_config(RunOptions("m:app"), 60.0).bind == ["127.0.0.1:8000"]
    assert _hypercorn_config(RunOptions("m:app", uds="/run/app.sock"), 60.0).bind == [
        "unix:/run/app.sock"
    ]
    # The command hands over the socket it listens on.
    assert _hypercorn_config(RunOptions("m:app"), 60.0, fd=7).bind == ["fd://7"]


def test_the_url_in_the_log() -> None:
    assert RunOptions("m:app", port=9000).url == "http://127.0.0.1:9000"
    assert RunOptions("m:app", host="::1", port=1, certfile="c", keyfile="k").url == (
        "https://[::1]:1"
    )
    # The proxy's prefix is not part of the address the server listens on.
    assert RunOptions("m:app", root_path="/api").url == "http://127.0.0.1:8000"
    assert RunOptions("m:app", uds="/run/app.sock").url == "unix:/run/app.sock"
    assert RunOptions("m:app", server="uvicorn", backend="asyncio").describe() == (
        "m:app on http://127.0.0.1:8000 (uvicorn on asyncio)"
    )


def test_uvicorn_gets_every_option() -> None:
    from stellate._serving import _uvicorn_settings

    options = RunOptions(
        "m:app", server="uvicorn", backend="asyncio", port=9000, workers=3,
        root_path="/api", proxy_headers=True, forwarded_allow_ips="*", log_level="info",
        graceful_timeout=7.5, certfile="c.pem", keyfile="k.pem", uds="/run/app.sock",
    )  # fmt: skip
    assert _uvicorn_settings(options) == {
        "host": "127.0.0.1",
        "port": 9000,
        "uds": "/run/app.sock",
        "ssl_certfile": "c.pem",
        "ssl_keyfile": "k.pem",
        "workers": 3,
        "reload": False,
        "root_path": "/api",
        "proxy_headers": True,
        "forwarded_allow_ips": "*",
        "log_config": None,
        "log_level": "warning",
        "access_log": False,
        "lifespan": "on",
        "timeout_graceful_shutdown": 8,
    }


def test_lifespan_timeout_covers_the_apps_shutdown() -> None:
    """hypercorn's 60 s lifespan limit would cut a longer ``shutdown_timeout`` short (22.10)."""
    from stellate._serving import HYPERCORN_LIFESPAN_TIMEOUT, lifespan_timeout
    from stellate.applications import Stellate
    from stellate.middleware.gzip import GZipMiddleware

    patient = Stellate(shutdown_timeout=120)
    assert lifespan_timeout(patient, 5.0) == 135.0
    assert lifespan_timeout(GZipMiddleware(patient), 5.0) == 135.0
    assert lifespan_timeout(Stellate(shutdown_timeout=1), 3.0) == HYPERCORN_LIFESPAN_TIMEOUT

    async def bare(scope: object, receive: object, send: object) -> None: ...

    assert lifespan_timeout(bare, 100.0) == 110.0


def test_startup_failure_summary(capsys: pytest.CaptureFixture[str]) -> None:
    from stellate._serving import _startup_failure

    sent = "Traceback (most recent call last):\n  File 'x.py'\nKeyError: 'DSN'\n"
    error = _startup_failure(f"Lifespan failure in startup. '{sent}'")
    assert str(error) == "the application's lifespan startup failed: KeyError: 'DSN'"
    assert capsys.readouterr().err == sent.strip() + "\n"
    error = _startup_failure("Lifespan failure in startup. 'no database'")
    assert str(error) == "the application's lifespan startup failed: no database"
    assert capsys.readouterr().err == ""


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """Undo what ``configure_logging`` does to the loggers of this (test) process."""
    import logging

    from stellate._serving_log import SERVER_LOGGERS, _stop_writer

    names = ["stellate.run", "stellate.access", *SERVER_LOGGERS]
    saved = {
        name: (logger.handlers[:], logger.level, logger.propagate)
        for name in names
        for logger in [logging.getLogger(name)]
    }
    yield
    _stop_writer()
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers, logger.propagate = handlers, propagate
        logger.setLevel(level)


@pytest.mark.usefixtures("restored_logging")
def test_served_module_wraps_the_named_app(app_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker processes import stellate._served, which wraps the app as the command does."""
    import importlib

    from stellate._proxy_headers import ProxyHeadersMiddleware
    from stellate._serving import OPTIONS_VARIABLE
    from stellate._serving_log import AccessLog, Lifecycle

    write(app_dir, "cli_app_served.py", "async def app(scope, receive, send): pass\n")
    options = RunOptions(
        "cli_app_served:app", proxy_headers=True, forwarded_allow_ips="10.0.0.0/8", workers=2
    )
    monkeypatch.setenv(OPTIONS_VARIABLE, options.to_environment())
    monkeypatch.delitem(sys.modules, "stellate._served", raising=False)
    served = importlib.import_module("stellate._served")
    assert isinstance(served.app, ProxyHeadersMiddleware)
    assert "10.1.2.3" in served.app.trusted
    assert "127.0.0.1" not in served.app.trusted
    assert isinstance(served.app.app, AccessLog)
    assert isinstance(served.app.app.app, Lifecycle)
    assert served.app.app.app.app is sys.modules["cli_app_served"].app


@pytest.mark.usefixtures("restored_logging")
def test_worker_app_survives_a_broken_module_only_when_reloading(app_dir: Path) -> None:
    from stellate._serving import worker_app
    from stellate.testclient import TestClient

    write(app_dir, "cli_app_typo.py", "def app(:\n")
    with pytest.raises(CommandError, match="importing 'cli_app_typo' failed: SyntaxError"):
        worker_app(RunOptions("cli_app_typo:app"))
    standing_in = worker_app(RunOptions("cli_app_typo:app", reload=True))
    with TestClient(standing_in) as client:
        response = client.get("/anything")
    assert response.status_code == 500
    assert response.text.startswith("The application failed to import, waiting for a fix:\n")
    assert "importing 'cli_app_typo' failed: SyntaxError" in response.text


# -- the command, as a user runs it ------------------------------------------------------------


def run_command(*argv: str, cwd: Path, prelude: str = "") -> subprocess.CompletedProcess[str]:
    code = f"{prelude}\nfrom stellate.cli import main\nraise SystemExit(main({list(argv)!r}))"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"stellate: error: {message}"), result.stderr
    assert "Traceback" not in result.stderr


def test_command_app_not_importable(tmp_path: Path) -> None:
    result = run_command("run", "missing_module:app", cwd=tmp_path)
    assert_one_line_error(result, "cannot import 'missing_module'")
    write(tmp_path, "broken.py", "1 / 0\n")
    result = run_command("run", "broken:app", cwd=tmp_path)
    assert_one_line_error(result, "importing 'broken' failed: ZeroDivisionError: division by zero")


def test_command_refuses_a_request_handler() -> None:
    """``stellate run hello:hello`` used to serve empty 500s: it now stops before serving."""
    result = run_command("run", "hello:hello", cwd=EXAMPLES)
    assert_one_line_error(
        result,
        "cannot serve 'hello:hello': it is an async function taking (request), not an "
        "ASGI application (an async callable taking scope, receive, send); "
        "did you mean 'hello:app'?",
    )


def test_command_server_not_installed(tmp_path: Path) -> None:
    result = run_command(
        "run",
        "hello:app",
        "--server",
        "uvicorn",
        cwd=EXAMPLES,
        prelude="import sys; sys.modules['uvicorn'] = None",
    )
    assert_one_line_error(result, "--server uvicorn needs the 'uvicorn' package")


def test_command_port_in_use(busy_port: int) -> None:
    result = run_command("run", "hello:app", "--port", str(busy_port), cwd=EXAMPLES)
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{busy_port}: the port is already")


def test_command_lifespan_startup_failure(tmp_path: Path) -> None:
    write(
        tmp_path,
        "failing.py",
        """
        from contextlib import asynccontextmanager
        from stellate.applications import Stellate

        @asynccontextmanager
        async def lifespan(app):
            raise RuntimeError("database unreachable")
            yield

        app = Stellate(lifespan=lifespan)
        """,
    )
    # Port 0: the server never gets as far as listening, so any port will do.
    result = run_command("run", "failing:app", "--port", "0", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert lines[-1] == (
        "stellate: error: the application's lifespan startup failed: "
        "RuntimeError: database unreachable"
    )
    assert "Traceback (most recent call last):" in result.stderr, "the app's traceback is shown"


def test_command_refuses_uvicorn_on_trio() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stellate", "run", "hello:app", "--server", "uvicorn",
         "--backend", "trio"],
        cwd=EXAMPLES, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "python -m stellate run: error: uvicorn runs on asyncio only: "
        "use --backend asyncio, or --server hypercorn to run on trio"
    )


def test_serves_an_example_and_stops_on_sigint(tmp_path: Path) -> None:
    server = start_server(["hello:app"], cwd=EXAMPLES, log=tmp_path / "server.log")
    try:
        with httpx.Client(base_url=server.base_url, timeout=10, trust_env=False) as client:
            response = client.get("/", params={"name": "cli"})
        assert response.status_code == 200
        assert response.text == "Hello, cli!"
        assert server.stop(signal.SIGINT) == 0
    finally:
        server.kill()
    output = server.output()
    assert (
        f"INFO:     Serving hello:app on http://127.0.0.1:{server.port} (hypercorn on trio). "
        "Press Ctrl-C to stop.\n" in output
    )
    assert f"Stopped serving hello:app on http://127.0.0.1:{server.port}" in output


INFO_APP = """
from stellate.applications import Stellate
from stellate.responses import JSONResponse
from stellate.routing import Route

async def info(request):
    return JSONResponse({
        "root_path": request.scope.get("root_path"),
        "client": request.client.host,
        "scheme": request.url.scheme,
        "url": str(request.url),
    })

app = Stellate(routes=[Route("/info", info)])
"""


@pytest.fixture
def info_app(tmp_path: Path) -> Path:
    write(tmp_path, "cli_info_app.py", INFO_APP)
    return tmp_path


@pytest.mark.parametrize(
    "server_args",
    [
        pytest.param(["--server", "hypercorn", "--backend", "trio"], id="hypercorn-trio"),
        pytest.param(["--server", "uvicorn"], id="uvicorn"),
        pytest.param(
            ["--server", "hypercorn", "--backend", "asyncio", "--workers", "2"],
            id="hypercorn-asyncio-2-workers",
        ),
    ],
)
def test_root_path_and_proxy_headers(info_app: Path, server_args: list[str]) -> None:
    server = start_server(
        ["cli_info_app:app", *server_args, "--root-path", "/api", "--proxy-headers"],
        cwd=info_app,
        log=info_app / "server.log",
    )
    try:
        with httpx.Client(base_url=server.base_url, timeout=10, trust_env=False) as client:
            forwarded = {"x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https"}
            behind_proxy = client.get("/info", headers=forwarded).json()
        assert behind_proxy["root_path"] == "/api"
        assert behind_proxy["client"] == "203.0.113.7"
        assert behind_proxy["scheme"] == "https"
        assert behind_proxy["url"] == f"https://127.0.0.1:{server.port}/api/info"
        assert stopped_cleanly(server.stop(signal.SIGTERM), signal.SIGTERM), server.output()
    finally:
        server.kill()


@pytest.mark.anyio
async def test_root_path_in_path_puts_the_prefix_in_front_of_path() -> None:
    """hypercorn leaves --root-path out of scope["path"]; ASGI (and uvicorn) put it in."""
    from stellate._serving import RootPathInPath

    seen: list[dict[str, object]] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        seen.append(scope)

    wrapped = RootPathInPath(app, "/api")
    scope = {"type": "http", "root_path": "/api", "path": "/info", "raw_path": b"/info"}
    await wrapped(scope, None, None)
    await wrapped({"type": "lifespan"}, None, None)
    assert seen[0]["path"] == "/api/info"
    assert seen[0]["raw_path"] == b"/api/info"
    assert scope["path"] == "/info"  # the server's scope is not modified
    assert seen[1] == {"type": "lifespan"}


def test_proxy_headers_ignored_from_untrusted_peers(info_app: Path) -> None:
    server: ServerProcess = start_server(
        ["cli_info_app:app", "--proxy-headers", "--forwarded-allow-ips", "10.1.2.3"],
        cwd=info_app,
        log=info_app / "server.log",
    )
    try:
        with httpx.Client(base_url=server.base_url, timeout=10, trust_env=False) as client:
            forwarded = {"x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https"}
            direct = client.get("/info", headers=forwarded).json()
        assert direct["client"] == "127.0.0.1"
        assert direct["scheme"] == "http"
        assert server.stop(signal.SIGTERM) == 0
    finally:
        server.kill()


# -- the access log, in process --------------------------------------------------------------


def test_access_log_lines(
    test_client_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    from stellate._serving_log import AccessLog
    from stellate.applications import Stellate
    from stellate.responses import PlainTextResponse
    from stellate.routing import Route, WebSocketRoute
    from stellate.websockets import WebSocket

    async def ok(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok", status_code=201)

    async def boom(request: Any) -> PlainTextResponse:
        raise RuntimeError("boom")

    async def chat(websocket: WebSocket) -> None:
        if websocket.query_params.get("let") == "in":
            await websocket.accept()
        await websocket.close()

    app = Stellate(routes=[Route("/ok", ok), Route("/boom", boom), WebSocketRoute("/chat", chat)])
    caplog.set_level("INFO", logger="stellate.access")
    with test_client_factory(AccessLog(app), raise_server_exceptions=False) as client:
        client.get("/ok?a=1&b=%20")
        client.get("/boom")
        with client.websocket_connect("/chat?let=in"):
            pass
        with pytest.raises(Exception):  # noqa: B017 - the denial's exception type is the client's
            client.websocket_connect("/chat").__enter__()
    lines = [record.getMessage() for record in caplog.records if record.name == "stellate.access"]
    pattern = r'testclient:\d+ - "{} HTTP/1\.1" {} \d+\.\d ms'
    expected = [
        ("GET /ok\\?a=1&b=%20", "201"),
        ("GET /boom", "500"),
        ("WEBSOCKET /chat\\?let=in", "101"),
        ("WEBSOCKET /chat", "403"),
    ]
    assert len(lines) == len(expected), lines
    for line, (request, status) in zip(lines, expected, strict=True):
        assert re.fullmatch(pattern.format(request, status), line), line


# -- stellate routes -------------------------------------------------------------------------

ROUTED_APP = """
from stellate.applications import Stellate
from stellate.endpoints import HTTPEndpoint
from stellate.middleware import Middleware
from stellate.middleware.gzip import GZipMiddleware
from stellate.routing import Host, Mount, Route, Router, WebSocketRoute
from stellate.staticfiles import StaticFiles

async def home(request): ...
async def create(request): ...
async def chat(websocket): ...
class Raw:
    async def __call__(self, scope, receive, send): ...

class Item(HTTPEndpoint):
    async def get(self, request): ...
    async def delete(self, request): ...

users = Router([Route("/{user_id:int}", home, name="user")])
app = Stellate(routes=[
    Route("/", home),
    Route("/items", create, methods=["post", "put"], name="create"),
    Route("/items/{item_id}", Item),
    Route("/raw", Raw(), name="raw"),
    WebSocketRoute("/ws", chat),
    Mount("/api", name="api", routes=[
        Mount("/v1", routes=[Mount("/users", app=users)]),
    ]),
    Mount("/static", app=StaticFiles(directory=".", check_dir=False), name="static"),
    Host("admin.example.com", app=Router([Route("/stats", home, name="stats")])),
])
wrapped = GZipMiddleware(app)
"""


def test_routes_command(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(app_dir, "cli_routed.py", ROUTED_APP)
    assert main(["routes", "cli_routed:wrapped"]) == 0
    table = capsys.readouterr().out
    assert table == textwrap.dedent(
        """\
        METHODS      PATH                         NAME    ENDPOINT
        GET, HEAD    /                            home    cli_routed:home
        POST, PUT    /items                       create  cli_routed:create
        GET, DELETE  /items/{item_id}             Item    cli_routed:Item
        ANY          /raw                         raw     cli_routed:Raw
        WS           /ws                          chat    cli_routed:chat
        GET, HEAD    /api/v1/users/{user_id:int}  user    cli_routed:home
        MOUNT        /static                      static  stellate.staticfiles:StaticFiles
        GET, HEAD    admin.example.com/stats      stats   cli_routed:home
        """
    )


def test_routes_command_errors(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(app_dir, "cli_unrouted.py", "async def app(scope, receive, send): pass\n")
    assert main(["routes", "cli_unrouted:app"]) == 1
    assert capsys.readouterr().err == (
        "stellate: error: 'cli_unrouted:app' has no route table "
        "(no .routes on it or the app it wraps)\n"
    )
    assert main(["routes", "cli_unrouted:nothing"]) == 1
    assert "has no attribute 'nothing'" in capsys.readouterr().err
