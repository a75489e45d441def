"""The log lines ``stellate run`` prints, the same under hypercorn and uvicorn.

Both servers log differently (hypercorn's access line drops the query string and, with the
reloader, is printed twice; uvicorn's has no duration; each announces startup in several
lines). The command therefore quiets their informational chatter and logs itself, through
two loggers a user can configure like any other:

- ``stellate.run``: one line when the application has started (with the URL it is served
  on), one when it has stopped, and errors;
- ``stellate.access``: one line per HTTP request or WebSocket session, with the client, the
  method, the path and query string, the status and the duration.

Records go through a queue to a thread that writes them, so an access line never blocks
the event loop on a slow terminal or pipe.
"""

from __future__ import annotations

import atexit
import json
import logging
import logging.config
import logging.handlers
import queue
import sys
import threading
import time
from typing import Any

import anyio

__all__ = ["ACCESS", "LOG", "AccessLog", "Lifecycle", "configure_logging"]

LOG = logging.getLogger("stellate.run")
ACCESS = logging.getLogger("stellate.access")

#: The servers' own loggers: their informational lines repeat what ``stellate.run`` says.
SERVER_LOGGERS = ("hypercorn", "uvicorn")

_listener: logging.handlers.QueueListener | None = None
# Held while the writer thread is stopped or restarted: the last-lines drain runs in a
# worker thread (a daemon one on trio) and may still be between its stop and its start
# when the interpreter exits and _stop_writer runs; without the lock that second stop
# finds no thread to join and prints a traceback at exit.
_writer_lock = threading.Lock()


class _LevelPrefix(logging.Formatter):
    """``INFO:     message``: the layout uvicorn users know."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"{record.levelname}:".ljust(9)
        return f"{prefix} {super().format(record)}"


def configure_logging(log_level: str, access_log: bool, log_config: str | None = None) -> None:
    """Send ``stellate.*`` and the servers' loggers to stderr, through a writer thread.

    ``log_level`` applies to ``stellate.run``; the servers log at that level too when it is
    ``debug`` (to see what they do) and otherwise from ``warning`` up, because their ``info``
    lines are the startup banners the command replaces. Calling it again (a worker process
    imports the served application once per reload) replaces the previous set-up.

    ``log_config`` names a logging configuration file applied on top, as uvicorn's option of
    the same name does: ``.json`` (and ``.yaml``/``.yml``, with PyYAML) for
    :func:`logging.config.dictConfig`, anything else for :func:`logging.config.fileConfig`.
    A file that cannot be read or applied raises ``ValueError`` with the reason.
    """
    global _listener
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    writer = logging.StreamHandler(sys.stderr)
    writer.setFormatter(_LevelPrefix("%(message)s"))
    with _writer_lock:
        if _listener is None:
            atexit.register(_stop_writer)
        else:
            _listener.stop()
        _listener = logging.handlers.QueueListener(records, writer)
        _listener.start()
    level = logging.getLevelName(log_level.upper())
    server_level = level if level == logging.DEBUG else max(level, logging.WARNING)
    for name, name_level in [
        ("stellate.run", level),
        # Access lines are INFO records: as with uvicorn, a quieter --log-level hides them.
        ("stellate.access", level if access_log else logging.CRITICAL + 1),
        *((server, server_level) for server in SERVER_LOGGERS),
    ]:
        logger = logging.getLogger(name)
        logger.handlers = [logging.handlers.QueueHandler(records)]
        logger.setLevel(name_level)
        logger.propagate = False
    if log_config is not None:
        _apply_config_file(log_config)


def _apply_config_file(path: str) -> None:
    try:
        if path.endswith(".json"):
            with open(path, encoding="utf-8") as file:
                logging.config.dictConfig(json.load(file))
        elif path.endswith((".yaml", ".yml")):
            import yaml

            with open(path, encoding="utf-8") as file:
                logging.config.dictConfig(yaml.safe_load(file))
        else:
            logging.config.fileConfig(path, disable_existing_loggers=False)
    except ImportError:
        raise ValueError(f"{path}: a YAML logging configuration needs PyYAML") from None
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RuntimeError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ValueError(f"{path}: {detail}") from None


def _stop_writer() -> None:
    """Write out what is still queued before the process exits."""
    global _listener
    with _writer_lock:
        if _listener is not None:
            _listener.stop()
            _listener = None


def _drain_writer() -> None:
    """Block until every record queued so far is written (in a worker thread)."""
    with _writer_lock:
        if _listener is not None:
            _listener.stop()  # writes what is queued, then joins the writer thread
            _listener.start()


class Lifecycle:
    """Logs one line once the application has started, and one once it has stopped."""

    def __init__(self, app: Any, description: str) -> None:
        self.app = app
        self.description = description

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def logging_send(message: Any) -> None:
            # Before sending: once the server has the message it may stop this task.
            if message["type"] == "lifespan.startup.complete":
                LOG.info("Serving %s. Press Ctrl-C to stop.", self.description)
            elif message["type"] == "lifespan.shutdown.complete":
                LOG.info("Stopped serving %s", self.description)
                # uvicorn ends its process by re-raising the signal it caught, with no
                # chance for the writer thread to finish: write the last lines out now.
                await anyio.to_thread.run_sync(_drain_writer)
            await send(message)

        await self.app(scope, receive, logging_send)


class AccessLog:
    """One ``stellate.access`` line per HTTP request or WebSocket session, once it is over.

    ``127.0.0.1:50312 - "GET /search?q=x HTTP/1.1" 200 3.1 ms``. A response that never
    started is logged as the 500 the server sends for it, or as ``-`` when the request was
    cancelled (the client left, or the server stopped) before one was chosen, or when the
    client had left before the application returned without one (a handler cancelled on
    disconnect): no server answers a connection that is gone.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket") or not ACCESS.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        status: int | str | None = None
        client_left = False
        started = time.perf_counter()

        async def noting_receive() -> Any:
            nonlocal client_left
            message = await receive()
            if message["type"] in ("http.disconnect", "websocket.disconnect"):
                client_left = True
            return message

        async def noting_send(message: Any) -> None:
            nonlocal status
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
            elif kind == "websocket.accept":
                status = 101
            elif kind == "websocket.http.response.start":
                status = message["status"]
            elif kind == "websocket.close" and status is None:
                status = 403
            await send(message)

        try:
            await self.app(scope, noting_receive, noting_send)
            if status is None and client_left:
                status = "-"
        except anyio.get_cancelled_exc_class():
            status = status or "-"
            raise
        except Exception:
            # Anything else that escapes (KeyboardInterrupt, ...) is logged as 500 too, by
            # the ``status or 500`` below.
            status = status or 500
            raise
        finally:
            milliseconds = (time.perf_counter() - started) * 1000
            ACCESS.info(
                '%s - "%s %s HTTP/%s" %s %.1f ms',
                _client(scope),
                scope.get("method", "WEBSOCKET"),
                _path_and_query(scope),
                scope.get("http_version", "1.1"),
                status or 500,
                milliseconds,
            )


def _client(scope: Any) -> str:
    client = scope.get("client")
    if not client:
        return "-"
    host, port = client[0], client[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def _path_and_query(scope: Any) -> str:
    """The request target as the client sent it (the path under ``root_path``, and the query)."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else scope.get("path", "")
    if "?" in path:  # some servers keep the query in raw_path
        return str(path)
    query = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else str(path)
