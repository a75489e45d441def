"""Class-based endpoints: one class per resource, one method per HTTP method or event.

Both classes are ASGI applications in two steps, ``await Endpoint(scope, receive, send)``:
the constructor stores the connection and awaiting the instance runs :meth:`dispatch`. So a
route can take the class itself (``Route("/items", ItemsEndpoint)``) and a fresh instance
serves each connection, which makes instance attributes safe per-request state.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, ClassVar, Literal, NoReturn

from stellate import status
from stellate._concurrency import is_async_callable, run_sync
from stellate._exception_handling import wrap_app_handling_exceptions
from stellate._json import parse_json
from stellate.exceptions import HTTPException, WebSocketException
from stellate.requests import Request
from stellate.responses import PlainTextResponse, Response
from stellate.types import Message, Receive, Scope, Send
from stellate.websockets import WebSocket, WebSocketDisconnect, WebSocketState

__all__ = ["HTTPEndpoint", "WebSocketEndpoint"]

# The request methods that map to handler methods. Only these: looking up an arbitrary
# method name would let a request named "DISPATCH" call ``self.dispatch``.
_HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "QUERY", "TRACE")


class HTTPEndpoint:
    """Dispatch a request to the method named after its HTTP method (``get``, ``post``...).

    Handlers take the ``Request`` and return a ``Response``; they may be sync (run in a
    worker thread) or async. ``HEAD`` falls back to ``get`` when there is no ``head``.
    Other methods get 405 with an ``Allow`` header listing what the class defines.
    """

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"HTTPEndpoint needs an 'http' scope, got {scope['type']!r}")
        self.scope = scope
        self.receive = receive
        self.send = send
        self._allowed_methods = [
            method for method in _HTTP_METHODS if self._handler_name(method) is not None
        ]

    def __await__(self) -> Generator[Any, None, None]:
        return self.dispatch().__await__()

    def _handler_name(self, method: str) -> str | None:
        """The attribute that handles ``method``, or None when the class has none."""
        if method not in _HTTP_METHODS:
            return None
        name = method.lower()
        if getattr(self, name, None) is not None:
            return name
        if method == "HEAD" and getattr(self, "get", None) is not None:
            return "get"
        return None

    async def dispatch(self) -> None:
        """Run the handler for this request's method, under the app's exception handlers."""
        # With ``send``: a handler may send early hints or push promises before answering.
        request = Request(self.scope, receive=self.receive, send=self.send)
        name = self._handler_name(request.method)
        handler = self.method_not_allowed if name is None else getattr(self, name)

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if is_async_callable(handler):
                response = await handler(request)
            else:
                response = await run_sync(handler, request)
            await response(scope, receive, send)

        try:
            await wrap_app_handling_exceptions(app, request)(self.scope, self.receive, self.send)
        finally:
            # The uploads of a form the handler read.
            await request.close()

    async def method_not_allowed(self, request: Request) -> Response:
        """Answer 405 with ``Allow``.

        Inside an application this raises ``HTTPException(405)`` so that the application's
        exception handlers shape the answer; a bare endpoint answers in plain text.
        """
        headers = {"Allow": ", ".join(self._allowed_methods)}
        if "app" in self.scope:
            raise HTTPException(status_code=405, headers=headers)
        return PlainTextResponse("Method Not Allowed", status_code=405, headers=headers)


Encoding = Literal["text", "bytes", "json"] | None
_ENCODINGS = (None, "text", "bytes", "json")


class WebSocketEndpoint:
    """A WebSocket handler as three events: ``on_connect``, ``on_receive``, ``on_disconnect``.

    ``encoding`` says what ``on_receive`` gets: ``"text"`` (str), ``"bytes"``, ``"json"``
    (the parsed value, from text or UTF-8 binary frames) or ``None`` (str or bytes as sent).
    A frame that does not decode closes the connection with 1003 (unsupported data), then
    raises ``RuntimeError`` out of the endpoint, as in Starlette (see :meth:`decode`).
    """

    encoding: ClassVar[Encoding] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Checked when the class is defined, not when the first client connects.
        if cls.encoding not in _ENCODINGS:
            raise ValueError(
                f"{cls.__name__}.encoding must be one of None, 'text', 'bytes', 'json'; "
                f"got {cls.encoding!r}"
            )

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            raise ValueError(f"WebSocketEndpoint needs a 'websocket' scope, got {scope['type']!r}")
        self.scope = scope
        self.receive = receive
        self.send = send

    def __await__(self) -> Generator[Any, None, None]:
        return self.dispatch().__await__()

    async def dispatch(self) -> None:
        """Connect, feed each received frame to ``on_receive``, then report the close.

        Once ``on_connect`` has returned, ``on_disconnect`` runs exactly once, with the close
        code: the client's (1000 when its disconnect carries none), the one the application
        closed with, 1006 for a connection lost while sending, a ``WebSocketException``'s
        code, or 1011 when a handler (or :meth:`decode`) raised. The exception then goes to
        the application's exception handlers (a ``WebSocketException`` closes with its code;
        an ``HTTPException`` before accept becomes a denial response or a close), and
        without a handler to the server's log. A client gone during ``on_connect`` ends the
        session quietly.
        """
        websocket = WebSocket(self.scope, receive=self.receive, send=self.send)

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await self._session(websocket)

        # Exception handlers get this very WebSocket, whose state says whether the
        # handshake was answered (deny or close) or not.
        await wrap_app_handling_exceptions(app, websocket)(self.scope, self.receive, self.send)

    async def _session(self, websocket: WebSocket) -> None:
        try:
            await self.on_connect(websocket)
        except WebSocketDisconnect:
            return
        close_code = status.WS_1011_INTERNAL_ERROR
        try:
            close_code = await self._run(websocket)
        except WebSocketDisconnect as exc:
            close_code = exc.code
        except WebSocketException as exc:
            close_code = exc.code
            raise
        finally:
            await self.on_disconnect(websocket, close_code)

    async def _run(self, websocket: WebSocket) -> int:
        """Receive until either side closes; the close code."""
        while True:
            if websocket.application_state is not WebSocketState.CONNECTED:
                # on_connect refused the connection, or a handler closed it.
                return _sent_close_code(websocket)
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return int(message.get("code") or status.WS_1000_NORMAL_CLOSURE)
            data = await self.decode(websocket, message)
            await self.on_receive(websocket, data)

    async def decode(self, websocket: WebSocket, message: Message) -> Any:
        """The payload of a ``websocket.receive`` message, as ``encoding`` asks.

        A frame of the wrong type, or one that is not JSON for ``"json"`` (malformed, not
        UTF-8, nested absurdly deep, an integer past Python's digit limit), is refused as
        Starlette refuses it: the connection is closed with 1003 (unsupported data), then
        ``RuntimeError`` is raised -- which ends the session as an error, after
        ``on_disconnect(websocket, 1011)``.
        """
        text: str | None = message.get("text")
        data: bytes | None = message.get("bytes")
        if self.encoding == "text":
            if text is None:
                await _refuse(websocket, "Expected text websocket messages, but got bytes")
            return text
        if self.encoding == "bytes":
            if data is None:
                await _refuse(websocket, "Expected bytes websocket messages, but got text")
            return data
        if self.encoding == "json":
            try:
                return parse_json(text if text is not None else (data or b"").decode("utf-8"))
            except ValueError:  # JSONDecodeError, UnicodeDecodeError
                await _refuse(websocket, "Malformed JSON data received.")
        return text if text is not None else data

    async def on_connect(self, websocket: WebSocket) -> None:
        """Called when a client connects; accepts by default. Override to check or refuse."""
        await websocket.accept()

    async def on_receive(self, websocket: WebSocket, data: Any) -> None:
        """Called with each decoded frame. Override to handle messages."""

    async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
        """Called once when the connection ends, with its close code. Override to clean up."""


async def _refuse(websocket: WebSocket, message: str) -> NoReturn:
    """Refuse a frame that does not decode: close with 1003, then raise ``message``."""
    await websocket.close(code=status.WS_1003_UNSUPPORTED_DATA)
    raise RuntimeError(message)


def _sent_close_code(websocket: WebSocket) -> int:
    # The code of the close the application sent; a denial response has none, and is a
    # refusal by policy.
    code = websocket._close_code
    return status.WS_1008_POLICY_VIOLATION if code is None else code
