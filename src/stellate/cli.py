"""The ``stellate`` command: ``stellate run MODULE:ATTR`` serves an application, and
``stellate routes MODULE:ATTR`` prints its route table.

It is a thin, opinionated front to the two servers stellate is tested with: hypercorn (on
trio, the default, or asyncio) and uvicorn (asyncio only). The point of going through it
rather than the servers' own commands is a single vocabulary for both, the backend choice
made explicit, and failures a newcomer can read: an application that does not import, a
server that is not installed and a port that is taken each end with one line on stderr and
exit status 1, and a contradictory set of options (uvicorn on trio, ``--reload`` with
several workers) is refused with a usage error (exit status 2), before anything starts.

Only the standard library and anyio are imported here; the servers are imported when they
are used.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from typing import Literal

from stellate import __version__
from stellate._proxy_headers import TrustedHosts
from stellate._serving import (
    GRACEFUL_TIMEOUT,
    CommandError,
    RunOptions,
    load_app,
    open_listener,
    require_server,
    serve,
)

__all__ = ["build_parser", "main", "run_options"]

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def main(argv: Sequence[str] | None = None, prog: str = "stellate") -> int:
    """Run the command with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    options = run_options(args.run_parser, args) if args.command == "run" else None
    try:
        if options is None:
            return _routes(args.target, as_starlette=args.as_starlette)
        return _run(options)
    except CommandError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C during startup or shutdown
        return 130


def _run(options: RunOptions) -> int:
    require_server(options)
    app = load_app(
        options.target,
        show_traceback=options.log_level == "debug",
        as_starlette=options.as_starlette,
    )
    for flag, path in (("--certfile", options.certfile), ("--keyfile", options.keyfile)):
        if path is not None and not os.path.isfile(path):
            raise CommandError(f"{flag} {path}: no such file")
    listener = open_listener(options)
    if options.uds is None:
        # --port 0 becomes the port the kernel chose, so the URL in the log is the real one.
        options = dataclasses.replace(options, port=listener.getsockname()[1])
    return serve(options, app, listener)


def _routes(target: str, *, as_starlette: bool) -> int:
    from stellate._route_table import find_routes, format_table, route_rows

    app = load_app(target, as_starlette=as_starlette)
    routes = find_routes(app)
    if routes is None:
        raise CommandError(f"{target!r} has no route table (no .routes on it or the app it wraps)")
    print(format_table(list(route_rows(routes))))
    return 0


def build_parser(prog: str = "stellate") -> argparse.ArgumentParser:
    """The argument parser of the ``stellate`` command and its ``run`` subcommand."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Serve stellate (and other ASGI) applications."
    )
    parser.add_argument("--version", action="version", version=f"stellate {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="serve an ASGI application",
        description="Serve the ASGI application ATTR of module MODULE (imported with the "
        "current directory on sys.path) until SIGINT or SIGTERM.",
    )
    routes = commands.add_parser(
        "routes",
        help="print an application's route table",
        description="Print the routes of the application ATTR of module MODULE: methods, "
        "path (mounts and hosts expanded), name and endpoint.",
    )
    routes.add_argument("target", metavar="MODULE:ATTR", type=_target, help="e.g. main:app")
    routes.add_argument(
        "--as-starlette",
        action="store_true",
        help="a FastAPI or Starlette application: install stellate.compat.starlette before "
        "importing it",
    )
    run.set_defaults(run_parser=run)
    run.add_argument("target", metavar="MODULE:ATTR", type=_target, help="e.g. main:app")
    run.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    run.add_argument("--port", type=_port, default=8000, help="port to listen on (8000)")
    run.add_argument("--server", choices=("hypercorn", "uvicorn"), default="hypercorn")
    run.add_argument(
        "--backend",
        choices=("trio", "asyncio"),
        default=None,
        help="event loop (trio; asyncio with --server uvicorn, which cannot run trio)",
    )
    run.add_argument("--workers", type=_positive, default=1, help="worker processes (1)")
    run.add_argument("--reload", action="store_true", help="restart when source files change")
    run.add_argument("--root-path", default="", help="path prefix the app is mounted under")
    run.add_argument(
        "--proxy-headers",
        action="store_true",
        help="trust X-Forwarded-For/X-Forwarded-Proto from --forwarded-allow-ips",
    )
    run.add_argument(
        "--forwarded-allow-ips",
        default=None,
        metavar="IPS",
        help="comma-separated proxy addresses or networks, or '*' (127.0.0.1)",
    )
    run.add_argument(
        "--graceful-timeout",
        type=_seconds,
        default=GRACEFUL_TIMEOUT,
        metavar="SECONDS",
        help="time requests in flight get to finish on shutdown before they are cancelled "
        f"({GRACEFUL_TIMEOUT:g})",
    )
    run.add_argument("--certfile", default=None, help="serve HTTPS with this certificate (PEM)")
    run.add_argument("--keyfile", default=None, help="the certificate's private key (PEM)")
    run.add_argument(
        "--uds", default=None, metavar="PATH", help="listen on this Unix socket, not a port"
    )
    run.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="info",
        help="of the stellate.run log; debug also shows the servers' own messages (info)",
    )
    run.add_argument(
        "--log-config",
        default=None,
        metavar="FILE",
        help="logging configuration applied on top: .json or .yaml (dictConfig), else .ini",
    )
    run.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="log one line per request to stellate.access (on)",
    )
    run.add_argument(
        "--as-starlette",
        action="store_true",
        help="serve a FastAPI or Starlette application on stellate "
        "(installs stellate.compat.starlette before importing it, in every worker)",
    )
    return parser


def run_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> RunOptions:
    """Check the options against each other; a contradiction is a usage error (exit 2)."""
    backend: Literal["trio", "asyncio"] = args.backend or (
        "asyncio" if args.server == "uvicorn" else "trio"
    )
    if args.server == "uvicorn" and backend == "trio":
        parser.error(
            "uvicorn runs on asyncio only: use --backend asyncio, "
            "or --server hypercorn to run on trio"
        )
    if args.reload and args.workers > 1:
        parser.error("--reload runs a single worker: drop --workers or --reload")
    if args.forwarded_allow_ips is not None and not args.proxy_headers:
        parser.error("--forwarded-allow-ips only applies with --proxy-headers")
    if args.root_path and not args.root_path.startswith("/"):
        parser.error(f"--root-path must start with '/', got {args.root_path!r}")
    if (args.certfile is None) != (args.keyfile is None):
        parser.error("--certfile and --keyfile go together: give both to serve HTTPS")
    allowed = args.forwarded_allow_ips or "127.0.0.1"
    try:
        TrustedHosts(allowed)
    except ValueError as exc:
        parser.error(f"--forwarded-allow-ips: {exc}")
    return RunOptions(
        target=args.target,
        host=args.host,
        port=args.port,
        server=args.server,
        backend=backend,
        workers=args.workers,
        reload=args.reload,
        root_path=args.root_path.rstrip("/"),
        proxy_headers=args.proxy_headers,
        forwarded_allow_ips=allowed,
        log_level=args.log_level,
        access_log=args.access_log,
        graceful_timeout=args.graceful_timeout,
        certfile=args.certfile,
        keyfile=args.keyfile,
        uds=args.uds,
        log_config=args.log_config,
        as_starlette=args.as_starlette,
    )


def _target(value: str) -> str:
    module, sep, attribute = value.partition(":")
    if not (sep and module and attribute) or ":" in attribute:
        raise argparse.ArgumentTypeError(
            f"expected MODULE:ATTR (for example main:app), got {value!r}"
        )
    return value


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, got {value!r}")
    return port


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value!r}")
    return number


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {value!r}")
    return seconds
