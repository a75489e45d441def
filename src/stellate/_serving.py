"""What ``stellate run`` does once its arguments are parsed: load, check, and serve.

Every failure a user can cause before the server starts (an app that does not import, a
server package that is not installed, a port that is taken) is raised as
:class:`CommandError`, whose message is the one line the command prints. They are checked
here, in this process, before anything is handed to a server: a server reports the same
problems as a traceback from a worker process, or as several log lines, which buries the
one sentence that matters.

The server packages are imported only when needed, so ``stellate --help`` costs nothing and
a missing package is a clear message rather than an ImportError at startup.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import importlib
import inspect
import json
import logging
import math
import os
import signal
import socket
import sys
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NoReturn

if TYPE_CHECKING:
    import anyio

from stellate._serving_log import LOG, AccessLog, Lifecycle, configure_logging

__all__ = [
    "OPTIONS_VARIABLE",
    "CommandError",
    "RunOptions",
    "load_app",
    "open_listener",
    "require_server",
    "serve",
    "worker_app",
]

#: The environment variable through which the worker processes of hypercorn and uvicorn
#: (several workers, or the reloader) get the command's options: they import
#: :mod:`stellate._served`, which loads and wraps the application the way the command would.
OPTIONS_VARIABLE = "STELLATE_RUN_OPTIONS"

#: Seconds the requests in flight get to finish once a shutdown signal arrives, before they
#: are cancelled and the lifespan shutdown runs (hypercorn's default, applied to uvicorn too).
GRACEFUL_TIMEOUT = 3.0

#: hypercorn's own limit on the lifespan startup and shutdown; raised when the application
#: (its graceful timeout plus the time ``app.tasks`` may take to drain) needs longer.
HYPERCORN_LIFESPAN_TIMEOUT = 60.0


#: The PyPI requirement that provides each module ``stellate run`` may need.
_PYPI_NAMES = {"hypercorn": "hypercorn[trio]", "uvicorn": "uvicorn[standard]", "trio": "trio"}


class CommandError(Exception):
    """A failure the command reports as one line on stderr, with a non-zero exit status."""


@dataclass(frozen=True)
class RunOptions:
    """The validated arguments of ``stellate run``."""

    target: str
    host: str = "127.0.0.1"
    port: int = 8000
    server: Literal["hypercorn", "uvicorn"] = "hypercorn"
    backend: Literal["trio", "asyncio"] = "trio"
    workers: int = 1
    reload: bool = False
    root_path: str = ""
    proxy_headers: bool = False
    forwarded_allow_ips: str = "127.0.0.1"
    log_level: str = "info"
    access_log: bool = True
    graceful_timeout: float = GRACEFUL_TIMEOUT
    certfile: str | None = None
    keyfile: str | None = None
    uds: str | None = None
    log_config: str | None = None
    as_starlette: bool = False

    @property
    def url(self) -> str:
        """Where the server listens, as a user would type it (or the socket path).

        Without ``root_path``: that prefix is the proxy's, and the proxy removes it before the
        request reaches this address.
        """
        if self.uds is not None:
            return f"unix:{self.uds}"
        scheme = "https" if self.certfile else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def describe(self) -> str:
        """``main:app on http://127.0.0.1:8000 (hypercorn on trio)``, for the log."""
        where = f"{self.server} on {self.backend}"
        if self.workers > 1:
            where += f", worker process {os.getpid()}"
        return f"{self.target} on {self.url} ({where})"

    def to_environment(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_environment(cls) -> RunOptions:
        return cls(**json.loads(os.environ[OPTIONS_VARIABLE]))


def require_server(options: RunOptions) -> None:
    """Fail clearly when the chosen server (or hypercorn's trio worker) is not installed."""
    needed: list[tuple[str, str]] = [(options.server, f"--server {options.server}")]
    if options.server == "hypercorn" and options.backend == "trio":
        needed.append(("trio", "hypercorn's trio worker (--backend trio)"))
    for module, user in needed:
        try:
            importlib.import_module(module)
        except ImportError:
            # stellate itself is not on PyPI, so the message names what is.
            raise CommandError(
                f"{user} needs the {module!r} package, which is not installed; install it "
                f"with: pip install '{_PYPI_NAMES[module]}' (or install stellate with its "
                "server extra)"
            ) from None


def load_app(target: str, *, show_traceback: bool = False, as_starlette: bool = False) -> Any:
    """Import ``MODULE:ATTR`` with the current directory on ``sys.path``, as uvicorn does.

    ``ATTR`` may be dotted (``main:api.app``). A module that is not found, raises while it
    is imported, or lacks the attribute is a :class:`CommandError` that says which, with
    the place the import failed; ``show_traceback`` prints the full traceback first (the
    command does so with ``--log-level debug``). ``as_starlette`` installs the Starlette
    bridge first, so that the module's ``import starlette`` (or FastAPI's) gives stellate:
    in the command's process and, through :mod:`stellate._served`, in every worker.
    """
    if as_starlette:
        from stellate.compat.starlette import install

        install()
    module_name, _, attribute = target.partition(":")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and _is_prefix(exc.name, module_name):
            raise CommandError(
                f"cannot import {module_name!r}: no module named {exc.name!r} "
                f"in {cwd} or on sys.path"
            ) from None
        raise _import_failure(module_name, exc, show_traceback) from None
    except Exception as exc:
        raise _import_failure(module_name, exc, show_traceback) from None
    app: Any = module
    for name in attribute.split("."):
        try:
            app = getattr(app, name)
        except AttributeError:
            raise CommandError(
                f"cannot load {target!r}: module {module_name!r} has no attribute {attribute!r}"
            ) from None
    problem = _not_asgi(app)
    if problem is not None:
        hint = _suggestion(module, module_name, attribute)
        raise CommandError(
            f"cannot serve {target!r}: it is {problem}, not an ASGI application "
            f"(an async callable taking scope, receive, send){hint}"
        )
    return app


def _not_asgi(app: Any) -> str | None:
    """What ``app`` is, when it cannot be an ASGI 3 application; ``None`` when it can be.

    A server calls the application with ``(scope, receive, send)`` and awaits the result. A
    plain function, a request handler (``async def hello(request)``), a class (which would
    be instantiated per request) or a value that is not callable would only fail on the
    first request, as an empty 500: they are recognised here, before anything is served.
    """
    if inspect.isclass(app):
        return f"the class {app.__name__} (serve an instance of it)"
    if not callable(app):
        return f"a {type(app).__name__}"
    is_function = inspect.isroutine(app) or isinstance(app, functools.partial)
    if is_function and not inspect.iscoroutinefunction(app):
        return f"a plain (not async) function taking {_signature_text(app)}"
    try:
        inspect.signature(app).bind(object(), object(), object())
    except TypeError:
        kind = "an async function" if is_function else f"a {type(app).__name__} object called"
        return f"{kind} taking {_signature_text(app)}"
    except ValueError:  # no signature to look at (a builtin): let the server decide
        return None
    return None


def _is_async_call(app: Any) -> bool:
    """Whether calling ``app`` runs a coroutine function (its own, or its ``__call__``)."""
    if inspect.isroutine(app):
        return inspect.iscoroutinefunction(app)
    return inspect.iscoroutinefunction(type(app).__call__)


def _signature_text(app: Any) -> str:
    """``(request)``: the parameter names, which say what the callable expects."""
    try:
        parameters = inspect.signature(app).parameters.values()
    except (TypeError, ValueError):
        return "(...)"
    return (
        "("
        + ", ".join(
            str(parameter.replace(annotation=parameter.empty, default=parameter.empty))
            for parameter in parameters
        )
        + ")"
    )


def _suggestion(module: Any, module_name: str, attribute: str) -> str:
    """``; did you mean 'main:app'?`` when the module has one ASGI application to offer."""
    candidates = [
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and name != attribute and _looks_like_an_app(value)
    ]
    if len(candidates) != 1:
        return ""
    return f"; did you mean '{module_name}:{candidates[0]}'?"


def _looks_like_an_app(value: Any) -> bool:
    if inspect.isclass(value) or inspect.ismodule(value) or not callable(value):
        return False
    return _not_asgi(value) is None and _is_async_call(value)


def _is_prefix(missing: str, module_name: str) -> bool:
    """Whether the missing module is ``module_name`` or one of its packages."""
    return module_name == missing or module_name.startswith(missing + ".")


def _import_failure(module_name: str, exc: BaseException, show_traceback: bool) -> CommandError:
    if show_traceback:
        traceback.print_exception(exc, file=sys.stderr)
    detail = " ".join(f"{type(exc).__name__}: {exc}".split())
    frame = _blamed_frame(traceback.extract_tb(exc.__traceback__))
    if frame is not None and not isinstance(exc, SyntaxError):  # SyntaxError names its line
        detail += f" ({frame.filename}, line {frame.lineno})"
    hint = "" if show_traceback else " [--log-level debug shows the traceback]"
    return CommandError(f"importing {module_name!r} failed: {detail}{hint}")


def _blamed_frame(frames: traceback.StackSummary) -> traceback.FrameSummary | None:
    """The innermost frame in the user's project (under the current directory), if any.

    ``os.environ["KEY"]`` fails inside the standard library, but the line to fix is the
    user's; when no frame is under the current directory, the innermost frame is shown.
    """
    project = os.getcwd() + os.sep
    for frame in reversed(frames):
        if frame.filename.startswith(project):
            return frame
    return frames[-1] if frames else None


#: Connections the listening socket queues while the server is not yet accepting them.
BACKLOG = 1024


def open_listener(options: RunOptions) -> socket.socket:
    """The listening socket the server will use: bound and listening in this process.

    Binding here makes a taken port (or socket path) one clear line, gives ``--port 0`` its
    real port before anything is logged, and leaves no window between this check and the
    server's own bind. The socket listens at once, so a client connecting after the startup
    line (logged once the application has started, which may be before the server accepts)
    waits in the backlog instead of being refused.

    ``SO_REUSEADDR`` is set like the servers set it: a port held only by connections in
    TIME_WAIT from a previous run is free, a port another server listens on is not.
    """
    if options.uds is not None:
        return _open_unix_listener(options.uds)
    host, port = options.host, options.port
    where = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise CommandError(f"cannot listen on {where}: unknown host ({exc.strerror})") from None
    sock = socket.socket(family, kind, proto)
    if os.name != "nt":  # on Windows SO_REUSEADDR would let us steal a busy port
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    in_use = "the port is already in use (is another server running? choose another --port)"
    return _bind_and_listen(sock, address, where, in_use)


def _open_unix_listener(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    in_use = "the file exists (is another server using it? if not, remove it)"
    return _bind_and_listen(sock, path, f"unix:{path}", in_use)


def _bind_and_listen(sock: socket.socket, address: Any, where: str, in_use: str) -> socket.socket:
    """Bind ``sock`` and listen; a one-line CommandError (``in_use`` when taken) otherwise."""
    try:
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        reason = in_use if exc.errno == errno.EADDRINUSE else exc.strerror
        raise CommandError(f"cannot listen on {where}: {reason}") from None
    return sock


def serve(options: RunOptions, app: Any, listener: socket.socket) -> int:
    """Serve ``app`` on ``listener`` until SIGINT/SIGTERM and return the exit status.

    With one worker and no reloader the application is served from this process, already
    loaded; otherwise the server's supervisor starts worker processes, which import
    :mod:`stellate._served` and rebuild the same wrapped application from ``options``.
    The listening socket is handed to the server, which closes it; a Unix socket's file is
    removed once the server has stopped.
    """
    try:
        try:
            configure_logging(options.log_level, options.access_log, options.log_config)
        except ValueError as exc:
            raise CommandError(f"cannot use --log-config {exc}") from None
        in_processes = options.workers > 1 or options.reload
        if in_processes:
            os.environ[OPTIONS_VARIABLE] = options.to_environment()
        if options.server == "uvicorn":
            served = None if in_processes else wrap(app, options)
            return _serve_uvicorn(options, served, listener)
        timeout = lifespan_timeout(app, options.graceful_timeout)
        config = _hypercorn_config(options, timeout, fd=listener.detach())
        if in_processes:
            return _serve_hypercorn_processes(options, config)
        return _serve_hypercorn_here(options, wrap(app, options), config)
    finally:
        listener.close()  # a no-op once detached or closed by the server
        if options.uds is not None and os.path.exists(options.uds):
            os.remove(options.uds)


def wrap(app: Any, options: RunOptions, description: str | None = None) -> Any:
    """The application as served: logged, with the root path and proxy headers applied.

    uvicorn handles ``--root-path`` and ``--proxy-headers`` itself; hypercorn does neither as
    ASGI asks, so stellate's middleware does it there: the root path inside the access log
    (which shows the path the client sent), the proxy headers outside it (so that the log
    names the real client).
    """
    served: Any = Lifecycle(app, description or options.describe())
    if options.root_path and options.server == "hypercorn":
        served = RootPathInPath(served, options.root_path)  # inside: the log shows raw_path
    served = AccessLog(served)
    if options.proxy_headers and options.server == "hypercorn":
        from stellate._proxy_headers import ProxyHeadersMiddleware

        served = ProxyHeadersMiddleware(served, options.forwarded_allow_ips)
    return served


class RootPathInPath:
    """Put ``--root-path`` in front of ``scope["path"]`` too, as ASGI asks and uvicorn does.

    hypercorn sets ``scope["root_path"]`` only, but by the ASGI specification ``path`` (and
    ``raw_path``) already include it: that is where ``request.url`` reads the full path
    from, as in Starlette, and where routing takes the prefix off again.
    """

    def __init__(self, app: Any, root_path: str) -> None:
        self.app = app
        self.root_path = root_path
        self._raw_root_path = root_path.encode("utf-8")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = dict(scope)
            scope["path"] = self.root_path + scope["path"]
            raw_path = scope.get("raw_path")
            if raw_path is not None:
                scope["raw_path"] = self._raw_root_path + raw_path
        await self.app(scope, receive, send)


def worker_app(options: RunOptions) -> Any:
    """The application a worker process serves (see :mod:`stellate._served`).

    Under ``--reload`` an application that no longer imports (a syntax error while the user
    types) must not end the command: the error is logged, every request is answered with
    it, and the next change to a watched file starts a fresh worker.
    """
    configure_logging(options.log_level, options.access_log, options.log_config)
    try:
        app = load_app(
            options.target,
            show_traceback=options.log_level == "debug",
            as_starlette=options.as_starlette,
        )
    except CommandError as exc:
        if not options.reload:
            raise
        LOG.error("%s; fix it and save: the server reloads on the next change", exc)
        return wrap(_ImportFailed(str(exc)), options, f"an error page in place of {options.target}")
    return wrap(app, options)


class _ImportFailed:
    """Stands in for an application that failed to import, until the reloader replaces it."""

    def __init__(self, message: str) -> None:
        self.body = f"The application failed to import, waiting for a fix:\n{message}\n".encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                phase = message["type"].removeprefix("lifespan.")
                await send({"type": f"lifespan.{phase}.complete"})
                if phase == "shutdown":
                    return
        elif scope["type"] == "http":
            headers = [(b"content-type", b"text/plain; charset=utf-8")]
            headers.append((b"content-length", str(len(self.body)).encode()))
            await send({"type": "http.response.start", "status": 500, "headers": headers})
            await send({"type": "http.response.body", "body": self.body})
        else:
            await send({"type": "websocket.close", "code": 1011})


def lifespan_timeout(app: Any, graceful_timeout: float) -> float:
    """How long hypercorn may let the lifespan startup and shutdown run.

    hypercorn cuts both off after 60 s by default, which would cut short a stellate
    application whose ``shutdown_timeout`` (the time ``app.tasks`` get to finish) is longer:
    the limit grows to cover the graceful timeout, the drain and a margin.
    """
    drain = 0.0
    layer = app
    for _ in range(32):  # middleware objects keep the application they wrap in ``.app``
        tasks = getattr(layer, "tasks", None)
        if isinstance(getattr(tasks, "shutdown_timeout", None), int | float):
            drain = float(tasks.shutdown_timeout)  # type: ignore[union-attr]
            break
        layer = getattr(layer, "app", None)
        if layer is None:
            break
    return max(HYPERCORN_LIFESPAN_TIMEOUT, graceful_timeout + drain + 10.0)


def _hypercorn_config(options: RunOptions, lifespan_limit: float, fd: int | None = None) -> Any:
    """hypercorn's settings; ``fd`` is the listening socket it serves on (else it binds)."""
    from hypercorn.config import Config

    config = Config()
    if fd is not None:
        config.bind = [f"fd://{fd}"]
    elif options.uds is not None:
        config.bind = [f"unix:{options.uds}"]
    else:
        host = f"[{options.host}]" if ":" in options.host else options.host
        config.bind = [f"{host}:{options.port}"]
    config.worker_class = options.backend
    config.root_path = options.root_path
    config.loglevel = options.log_level.upper()
    config.accesslog = None  # stellate.access logs each request, with its query and duration
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = options.graceful_timeout
    config.startup_timeout = lifespan_limit
    config.shutdown_timeout = lifespan_limit
    config.certfile = options.certfile
    config.keyfile = options.keyfile
    return config


def _serve_hypercorn_here(options: RunOptions, app: Any, config: Any) -> int:
    """One worker in this process: hypercorn's ``serve`` on the chosen backend.

    hypercorn's own trio worker stops on SIGINT only (SIGTERM would kill it before the
    lifespan shutdown ran), so the shutdown trigger listens for both signals, on both
    backends.
    """
    import anyio
    from hypercorn.utils import LifespanFailureError

    observed = _ShutdownFailure(app)
    try:
        anyio.run(_serve_until_signal, observed, config, options.backend, backend=options.backend)
    except (LifespanFailureError, BaseExceptionGroup) as exc:
        failure = _find(exc, LifespanFailureError)
        if failure is None:
            raise
        if observed.message is not None:
            raise _lifespan_failure("shutdown", observed.message) from None
        raise _startup_failure(str(failure)) from None
    if observed.message is not None:
        # hypercorn's trio worker drops the failure (it cancels the lifespan task while
        # the error is on its way out): report it here, or nobody would.
        raise _lifespan_failure("shutdown", observed.message)
    return 0


class _ShutdownFailure:
    """Passes everything to ``app``, noting a ``lifespan.shutdown.failed`` message on the way."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.message: str | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def noting_send(message: Any) -> None:
            if message["type"] == "lifespan.shutdown.failed":
                self.message = str(message.get("message", ""))
            await send(message)

        await self.app(scope, receive, noting_send)


def _startup_failure(detail: str) -> CommandError:
    """One line for a failed lifespan startup, after the traceback the application sent.

    hypercorn reports ``Lifespan failure in startup. '<message>'``, and stellate's message
    is the traceback: it is printed as it is, and its last line (the exception) ends the
    command's one-line error.
    """
    message = detail.removeprefix("Lifespan failure in startup. '").removesuffix("'").strip()
    return _lifespan_failure("startup", message or detail)


def _lifespan_failure(phase: str, message: str) -> CommandError:
    """Print a multi-line failure (a traceback) and sum it up in one line: its last."""
    message = message.strip()
    lines = [line for line in message.splitlines() if line.strip()]
    if len(lines) > 1:
        print(message, file=sys.stderr)
    summary = lines[-1].strip() if lines else "(no message)"
    return CommandError(f"the application's lifespan {phase} failed: {summary}")


async def _serve_until_signal(app: Any, config: Any, backend: str) -> None:
    serve_app: Callable[..., Awaitable[None]]
    if backend == "trio":
        from hypercorn.trio import serve as serve_app
    else:
        from hypercorn.asyncio import serve as serve_app
    if sys.platform == "win32":
        await serve_app(app, config, shutdown_trigger=None)
        return
    import anyio

    from stellate._concurrency import create_task_group

    stop = anyio.Event()
    # The watcher's own scope, not the group's: hypercorn's asyncio serve leaves the
    # host task with a pending cancellation request that the group's scope would take
    # for its own, and re-raise.
    watching = anyio.CancelScope()
    async with create_task_group() as group:
        group.start_soon(_watch_signals, stop, watching)
        try:
            await serve_app(app, config, shutdown_trigger=stop.wait)
        finally:
            watching.cancel()


async def _watch_signals(stop: anyio.Event, watching: anyio.CancelScope) -> None:
    """The first SIGINT/SIGTERM starts the graceful shutdown; a second one ends it now.

    The receiver stays open during the shutdown, so the second signal reaches this loop
    rather than the event loop's own handling (on trio, a KeyboardInterrupt raised
    somewhere in the shutdown, ending in an exception-group traceback).
    """
    import anyio

    with watching, anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            if not stop.is_set():
                stop.set()
            else:
                _exit_now(signum)


def _exit_now(signum: int) -> NoReturn:
    """Leave at once: a second interrupt means the user will not wait for the shutdown."""
    print(
        "stellate: second interrupt during shutdown: exiting now, without finishing it",
        file=sys.stderr,
        flush=True,
    )
    sys.stdout.flush()
    os._exit(128 + signum)  # what a shell reports for a process a signal ended: 130 for ^C


def _find(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first ``kind`` exception in ``exc``, looking inside exception groups."""
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _find(inner, kind)
            if found is not None:
                return found
    return None


def _serve_hypercorn_processes(options: RunOptions, config: Any) -> int:
    """Several workers, or the reloader: hypercorn's supervisor and worker processes.

    Workers import the application by name: they import :mod:`stellate._served`, which
    loads and wraps the target named in :data:`OPTIONS_VARIABLE`.
    """
    from hypercorn.run import run

    config.workers = options.workers
    config.use_reloader = options.reload
    config.application_path = "stellate._served:app"
    return int(run(config))


def _serve_uvicorn(options: RunOptions, app: Any | None, listener: socket.socket) -> int:
    """uvicorn on ``listener``: serving ``app`` here, or (``None``) through its workers or
    reloader, which import the application by name.

    This is what ``uvicorn.run`` does, except that the socket is the command's own.
    """
    import uvicorn
    from uvicorn.supervisors import ChangeReload, Multiprocess

    config = uvicorn.Config(
        app if app is not None else "stellate._served:app", **_uvicorn_settings(options)
    )
    server = uvicorn.Server(config)
    interrupted = False
    try:
        if options.reload:
            ChangeReload(config, target=server.run, sockets=[listener]).run()
        elif options.workers > 1:
            Multiprocess(config, sockets=[listener]).run()
        else:
            server.run(sockets=[listener])
    except KeyboardInterrupt:
        # Ctrl-C before uvicorn had its own handler in place (during start-up), or a
        # second one while it shuts down: either way the user asked to stop.
        interrupted = True
    if app is not None and not server.started and not interrupted:
        raise CommandError("the application's lifespan startup failed (the error is above)")
    return 0


def _uvicorn_settings(options: RunOptions) -> dict[str, Any]:
    level = options.log_level
    return {
        "host": options.host,
        "port": options.port,
        "uds": options.uds,
        "ssl_certfile": options.certfile,
        "ssl_keyfile": options.keyfile,
        "workers": options.workers if options.workers > 1 else None,
        "reload": options.reload,
        "root_path": options.root_path,
        "proxy_headers": options.proxy_headers,
        "forwarded_allow_ips": options.forwarded_allow_ips,
        # stellate.run and stellate.access say what uvicorn's info lines would.
        "log_config": None,
        "log_level": level if level in ("debug", "error", "critical") else "warning",
        "access_log": False,
        "lifespan": "on",
        # uvicorn would otherwise wait for every open response at shutdown, and an event
        # stream never ends by itself: give requests in flight the grace hypercorn gives.
        "timeout_graceful_shutdown": math.ceil(options.graceful_timeout),  # whole seconds
    }
