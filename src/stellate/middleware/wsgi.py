"""Serve a WSGI application (Flask, Django, ...) from an ASGI application.

Deprecated, as in Starlette: importing this module warns once, pointing to ``a2wsgi``.

How a request crosses over:

* The request body is read whole on the event loop, then the WSGI callable runs in
  **one** worker thread, under the application's thread limiter, for the whole request:
  the call, the iteration of its result and the result's ``close()``. One thread, because
  WSGI frameworks keep per-thread state (Django's database connections) that must not
  change threads between chunks.
* The thread hands each message (the response start, each chunk, the ``write()`` calls)
  to the event loop through a small bounded buffer. When a slow client lets the buffer
  fill up, the thread waits: a WSGI app that streams cannot run ahead of its client.
* When the request ends early (a cancelled request, a client that went away), the thread
  cannot be interrupted: the buffer is closed, the thread's next hand-over fails, and the
  iteration stops there and closes the result, as PEP 3333 asks. The client's leaving is
  watched for while the response is sent, so an endless stream does not hold a thread
  for ever behind a server that drops what is sent to a closed connection.
"""

from __future__ import annotations

import io
import sys
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from stellate._concurrency import create_task_group, run_sync
from stellate._disconnect import disconnect_receive
from stellate._headers import encode_header
from stellate._sending import listens_for_disconnect, wait_for_http_disconnect
from stellate._urls import DEFAULT_PORTS
from stellate.exceptions import StellateDeprecationWarning
from stellate.types import Message, Receive, Scope, Send

__all__ = ["WSGIMiddleware", "WSGIResponder", "build_environ"]

warnings.warn(
    "stellate.middleware.wsgi is deprecated and will be removed in a future release. "
    "Please refer to https://github.com/abersheeran/a2wsgi as a replacement.",
    StellateDeprecationWarning,
    # The importing line: the import machinery's own frames are skipped by `warnings`.
    stacklevel=2,
)

#: How many messages the WSGI thread may run ahead of the client before it waits.
_BUFFERED_MESSAGES = 4

_ExcInfo = tuple[type[BaseException], BaseException, Any]


def _wsgi_string(text: str) -> str:
    """PEP 3333's "native string" for text that came from the URL: its UTF-8 bytes as latin-1."""
    return text.encode("utf-8").decode("latin-1")


def _path_info(root_path: str, path: str) -> str:
    """``path`` without ``root_path``, removed only where it ends at a segment boundary."""
    if root_path and path.startswith(root_path):
        rest = path[len(root_path) :]
        if root_path.endswith("/") or rest == "" or rest.startswith("/"):
            return rest
    return path


def _server_port(scheme: str, port: Any) -> str:
    """``SERVER_PORT`` as PEP 3333 wants it, a string; a unix socket gets the scheme's default."""
    if port is None:
        port = DEFAULT_PORTS.get(scheme, 80)
    return str(port)


def build_environ(scope: Scope, body: bytes) -> dict[str, Any]:
    """The WSGI environ of an HTTP ``scope`` whose whole request body is ``body``.

    Header names spelled with ``_`` are dropped: after the CGI renaming they would be
    indistinguishable from (and joined with) the ``-`` spelling, which lets a client pass
    ``x_forwarded_for`` where a WSGI framework trusts only what a proxy set.
    """
    root_path: str = scope.get("root_path", "")
    scheme: str = scope.get("scheme", "http")
    server_name, server_port = scope.get("server") or ("localhost", 80)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": _wsgi_string(root_path),
        "PATH_INFO": _wsgi_string(_path_info(root_path, scope["path"])),
        # latin-1 maps every byte, as a WSGI string must: a non-ASCII query is no 500.
        "QUERY_STRING": scope["query_string"].decode("latin-1"),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stdout,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "SERVER_NAME": server_name,
        "SERVER_PORT": _server_port(scheme, server_port),
    }
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"] = client[0]
    for raw_name, raw_value in scope.get("headers") or ():
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name == "content-type":
            environ["CONTENT_TYPE"] = value
        elif name == "content-length":
            environ["CONTENT_LENGTH"] = value
        elif "_" not in name:
            key = "HTTP_" + name.upper().replace("-", "_")
            environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


async def _read_body(receive: Receive) -> bytes:
    """The whole request body; a disconnect just ends it (the app gets what arrived)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _cancel_on_disconnect(listen: Receive, scope: anyio.CancelScope) -> None:
    """Cancel ``scope`` when the client disconnects: the response has no one to go to."""
    await wait_for_http_disconnect(listen)
    scope.cancel()


def _response_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    encoded = []
    for name, value in headers:
        # ASCII only, as in Starlette: a non-ASCII value raises UnicodeEncodeError.
        name, value = name.strip(), value.strip()
        name.encode("ascii")
        value.encode("ascii")
        encoded.append(encode_header(name, value))
    return encoded


def _body_bytes(chunk: Any) -> bytes:
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, bytearray | memoryview):
        return bytes(chunk)
    raise TypeError(f"a WSGI application must produce bytes, not {type(chunk).__name__} (PEP 3333)")


class WSGIMiddleware:
    """An ASGI app that serves HTTP requests with the WSGI callable ``app``.

    Typically mounted: ``Mount("/legacy", app=WSGIMiddleware(flask_app))``. Only ``http``
    scopes are accepted (WSGI has neither lifespan nor WebSockets).
    """

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        responder = WSGIResponder(self.app, scope)
        await responder(receive, send)


class WSGIResponder:
    """One request served by a WSGI callable: ``await WSGIResponder(app, scope)(receive, send)``.

    The response is sent as the application produces it. An exception from the
    application propagates as itself once what it produced before has been sent; one
    passed to ``start_response`` as ``exc_info`` is raised after the whole response (the
    application's own error page) has been sent.
    """

    def __init__(self, app: Callable[..., Any], scope: Scope) -> None:
        self.app = app
        self.scope = scope
        self.status: str | None = None
        self.response_headers: list[tuple[bytes, bytes]] | None = None
        self.response_started = False
        self.exc_info: _ExcInfo | None = None
        self.send_stream: MemoryObjectSendStream[Message]
        self.receive_stream: MemoryObjectReceiveStream[Message]
        # Set in the worker thread when the loop no longer takes messages.
        self._abandoned = False
        self._cancelled: type[BaseException]  # the running backend's, set per call

    async def __call__(self, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        environ = build_environ(self.scope, body)
        self.send_stream, self.receive_stream = anyio.create_memory_object_stream[Message](
            _BUFFERED_MESSAGES
        )
        self._cancelled = anyio.get_cancelled_exc_class()
        listen = disconnect_receive(self.scope, receive)
        failure: Exception | None = None
        async with create_task_group() as request:
            if listens_for_disconnect(self.scope):
                # On ASGI >= 2.4 the server's send raises once the client is gone, as for
                # every response (stellate._sending): nothing listens there.
                request.start_soon(_cancel_on_disconnect, listen, request.cancel_scope)
            async with create_task_group() as response:
                response.start_soon(self.sender, send)
                try:
                    await run_sync(self.wsgi, environ, self.start_response)
                except Exception as exc:
                    # Raised once the sender has sent what the app produced before it.
                    failure = exc
                finally:
                    self.send_stream.close()
            request.cancel_scope.cancel()  # the response is complete: stop listening
        # The wait for the thread is shielded: a cancellation that arrived meanwhile
        # (the reason the thread stopped early) is delivered here, not lost.
        await anyio.lowlevel.checkpoint_if_cancelled()
        if failure is not None:
            raise failure
        if self.exc_info is not None:
            raise self.exc_info[1].with_traceback(self.exc_info[2])

    async def sender(self, send: Send) -> None:
        """Send what the WSGI thread hands over, in order, until it is done."""
        async with self.receive_stream:
            async for message in self.receive_stream:
                await send(message)

    def _hand_over(self, message: Message) -> None:
        """Give ``message`` to the event loop, waiting while the buffer is full (thread side)."""
        if self._abandoned:
            return
        try:
            anyio.from_thread.run(self.send_stream.send, message)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, self._cancelled):
            # The request is over (cancelled, or sending failed): stop producing. Trio
            # raises the request's cancellation here; it is not lost, the request task
            # raises it when the thread returns.
            self._abandoned = True

    def start_response(
        self,
        status: str,
        response_headers: list[tuple[str, str]],
        exc_info: Any = None,
    ) -> Callable[[bytes], None]:
        """WSGI's ``start_response``: sends the response start at once; returns ``write``.

        ``exc_info`` is kept and raised once the response has been sent. A later call
        cannot change a response that has started.
        """
        if exc_info is not None:
            self.exc_info = exc_info
        if not self.response_started:
            status_code, _ = status.split(" ", 1)
            headers = _response_headers(response_headers)
            self.status, self.response_headers = status, headers
            self.response_started = True
            start = {"type": "http.response.start", "status": int(status_code), "headers": headers}
            self._hand_over(start)
        return self._write

    def _write(self, data: bytes) -> None:
        """PEP 3333's ``write()`` callable, for applications that predate iterables."""
        self._send_chunk(data)

    def _send_chunk(self, chunk: Any) -> None:
        if not self.response_started:
            raise RuntimeError("The WSGI application produced a body before start_response.")
        message = {"type": "http.response.body", "body": _body_bytes(chunk), "more_body": True}
        self._hand_over(message)

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> None:
        """Run the WSGI application and hand its response over (in the worker thread)."""
        result = self.app(environ, start_response)
        try:
            for chunk in result:
                self._send_chunk(chunk)
                if self._abandoned:
                    return
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if not self.response_started:
            raise RuntimeError("The WSGI application returned without calling start_response.")
        self._hand_over({"type": "http.response.body", "body": b""})
