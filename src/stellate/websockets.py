"""The WebSocket connection object, and the exceptions and ASGI app that go with it.

A :class:`WebSocket` wraps the ASGI ``receive``/``send`` pair of a ``websocket`` scope and
keeps two state machines, one per direction, because the two peers close independently:

* ``client_state`` follows what the server told us: ``CONNECTING`` until
  ``websocket.connect`` arrives, ``CONNECTED`` until ``websocket.disconnect``, then
  ``DISCONNECTED``.
* ``application_state`` follows what the application sent: ``CONNECTING`` until it sends
  ``websocket.accept`` (-> ``CONNECTED``), ``websocket.close`` (-> ``DISCONNECTED``) or the
  start of a denial response (-> ``RESPONSE``, then ``DISCONNECTED`` after its last body
  chunk); ``CONNECTED`` until ``websocket.close``.

Every message is checked against those states before it reaches the server, so a handler
that sends before accepting or accepts twice gets a ``RuntimeError`` naming the messages
the state allows, at the line that made the mistake, instead of a confused server or a
hang. Using a connection that is over -- sending after the application closed it,
receiving after the client left, or reading data before ``accept()`` -- raises
:class:`WebSocketDisconnected`, a ``RuntimeError`` too. The error types and texts are
Starlette's, which applications match on.

Frames that cannot be decoded as the handler asked (a binary frame for ``receive_text``,
malformed JSON for ``receive_json``) raise :class:`WebSocketDecodeError`, a
:class:`~stellate.exceptions.WebSocketException` with code 1003: uncaught, the exception
middleware closes the connection with that code and reason, so bad input ends in a clean
close rather than an error in the server's log. (Starlette fails there with ``KeyError``
or ``json.JSONDecodeError``; the errors raised are those too, so code written to catch
them still does.)
"""

from __future__ import annotations

import enum
import json
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any, NoReturn

from stellate import status
from stellate._json import parse_json
from stellate.exceptions import WebSocketException
from stellate.requests import HTTPConnection
from stellate.types import Message, Receive, Scope, Send

if TYPE_CHECKING:
    from stellate.responses import Response

__all__ = [
    "WebSocket",
    "WebSocketClose",
    "WebSocketDecodeError",
    "WebSocketDisconnect",
    "WebSocketDisconnected",
    "WebSocketState",
]

# A close frame carries at most 125 bytes: a two-byte code and up to 123 bytes of reason.
_MAX_REASON_BYTES = 123


class WebSocketState(enum.Enum):
    """Where one side of a WebSocket connection stands."""

    CONNECTING = 0
    CONNECTED = 1
    DISCONNECTED = 2
    RESPONSE = 3


class WebSocketDisconnect(Exception):
    """The client closed the connection (or the server lost it) with ``code`` and ``reason``.

    Raised by the ``receive_*`` helpers when ``websocket.disconnect`` arrives, and by the
    send helpers when the server reports that the connection is gone (code 1006). It is an
    expected event, not a bug: loops over a connection end by catching it.
    """

    def __init__(self, code: int = 1000, reason: str | None = None) -> None:
        self.code = code
        self.reason = reason or ""
        super().__init__(code, self.reason)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, reason={self.reason!r})"


class WebSocketDisconnected(RuntimeError):
    """An operation needed a live connection, but it is not (or no longer) connected.

    Unlike :class:`WebSocketDisconnect`, which reports the client's disconnect when it
    happens, this reports code that uses a connection that is not open: reading before
    ``accept()``, sending after ``close()``, receiving after the client left.
    """


class WebSocketDecodeError(WebSocketException, ValueError):
    """A received frame could not be decoded as the handler asked (code 1003, unsupported data).

    A :class:`~stellate.exceptions.WebSocketException`, so that when a handler does not
    catch it the connection is closed with 1003 and this reason; a ``ValueError``, because
    it is one.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(status.WS_1003_UNSUPPORTED_DATA, _truncate_reason(reason))

    def __reduce__(self) -> tuple[type[WebSocketDecodeError], tuple[str]]:
        # The constructor takes the reason only, not the (code, reason) of ``args``.
        return (WebSocketDecodeError, (self.reason,))


class _FrameTypeError(WebSocketDecodeError, KeyError):
    """A frame of the other type (binary for text, or text for binary).

    Also a ``KeyError``: Starlette fails there looking up the missing ``"text"`` or
    ``"bytes"`` key, and code written for it (GraphQL libraries among it) catches that.
    """

    def __reduce__(self) -> tuple[type[_FrameTypeError], tuple[str]]:
        return (_FrameTypeError, (self.reason,))


class _JSONFrameError(WebSocketDecodeError, json.JSONDecodeError):
    """Malformed JSON in a frame: also a ``json.JSONDecodeError``, which handlers catch."""

    def __init__(self, error: json.JSONDecodeError) -> None:
        # Not super().__init__: the cooperative chain would reach JSONDecodeError.__init__,
        # whose parameters differ. Set what both parents promise by hand.
        self.code = status.WS_1003_UNSUPPORTED_DATA
        self.reason = _truncate_reason(f"Malformed JSON in frame: {error.msg}")
        self.msg = error.msg
        self.doc = error.doc
        self.pos = error.pos
        self.lineno = error.lineno
        self.colno = error.colno
        Exception.__init__(self, self.code, self.reason)


def _truncate_reason(reason: str) -> str:
    """Cut ``reason`` to what fits in a close frame, on a character boundary."""
    encoded = reason.encode("utf-8")
    if len(encoded) <= _MAX_REASON_BYTES:
        return reason
    return encoded[:_MAX_REASON_BYTES].decode("utf-8", errors="ignore")


_CONNECTING = WebSocketState.CONNECTING
_CONNECTED = WebSocketState.CONNECTED
_DISCONNECTED = WebSocketState.DISCONNECTED
_RESPONSE = WebSocketState.RESPONSE

# What the application may send in each of its states, and the state each message leads to.
_SEND_TRANSITIONS: dict[WebSocketState, dict[str, WebSocketState]] = {
    _CONNECTING: {
        "websocket.accept": _CONNECTED,
        "websocket.close": _DISCONNECTED,
        "websocket.http.response.start": _RESPONSE,
    },
    _CONNECTED: {
        "websocket.send": _CONNECTED,
        "websocket.close": _DISCONNECTED,
    },
    _RESPONSE: {
        "websocket.http.response.body": _RESPONSE,
    },
}

# What the refusal of a message says, in each state that allows some (Starlette's texts).
_SEND_EXPECTED: dict[WebSocketState, str] = {
    _CONNECTING: '"websocket.accept", "websocket.close" or "websocket.http.response.start"',
    _CONNECTED: '"websocket.send" or "websocket.close"',
    _RESPONSE: '"websocket.http.response.body"',
}
_SENT_AFTER_CLOSE = 'Cannot call "send" once a close message has been sent.'
_RECEIVED_AFTER_DISCONNECT = 'Cannot call "receive" once a disconnect message has been received.'
_NOT_CONNECTED = 'WebSocket is not connected. Need to call "accept" first.'


class WebSocket(HTTPConnection):
    """One WebSocket connection: its scope (headers, URL, path params...) and its messages.

    Built by the routing layer for each ``websocket`` scope. The typical life is
    ``await ws.accept()``, then ``receive_*``/``send_*`` until :class:`WebSocketDisconnect`,
    or ``await ws.close()``.
    """

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            raise ValueError(f"WebSocket needs a 'websocket' scope, got {scope['type']!r}")
        super().__init__(scope)
        self._receive = receive
        self._send = send
        self.client_state = WebSocketState.CONNECTING
        self.application_state = WebSocketState.CONNECTING
        self._close_code: int | None = None

    # -- raw ASGI messages -------------------------------------------------------------

    async def receive(self) -> Message:
        """Receive the next ASGI message, checking it against the client's state.

        The first message is ``websocket.connect``; after it come ``websocket.receive``
        messages until ``websocket.disconnect``. Only the client's side matters: after
        the application closed, this still reads (the client's disconnect, typically).
        Receiving after the client disconnected raises :class:`WebSocketDisconnected`.
        """
        if self.client_state is _DISCONNECTED:
            raise WebSocketDisconnected(_RECEIVED_AFTER_DISCONNECT)
        message = await self._receive()
        self._advance_client_state(message)
        return message

    def _advance_client_state(self, message: Message) -> None:
        kind = message["type"]
        if self.client_state is _CONNECTING:
            if kind != "websocket.connect":
                raise RuntimeError(f'Expected ASGI message "websocket.connect", but got {kind!r}')
            self.client_state = _CONNECTED
        elif kind == "websocket.disconnect":
            self.client_state = _DISCONNECTED
            self._close_code = int(message.get("code") or status.WS_1005_NO_STATUS_RCVD)
        elif kind != "websocket.receive":
            raise RuntimeError(
                'Expected ASGI message "websocket.receive" or "websocket.disconnect", '
                f"but got {kind!r}"
            )

    async def send(self, message: Message) -> None:
        """Send an ASGI message, checking it against the application's state.

        Raises RuntimeError for a message that the current state does not allow (naming
        the messages it allows), :class:`WebSocketDisconnected` once the application has
        closed the connection or finished a denial response, and for data sent to a
        client that is known to be gone. A ``websocket.close`` after the client
        disconnected only records the close: there is no one left to tell. If the server
        reports the connection lost (``OSError``), :class:`WebSocketDisconnect` with code
        1006 is raised.
        """
        kind = message["type"]
        allowed = _SEND_TRANSITIONS.get(self.application_state)
        if allowed is None:
            raise WebSocketDisconnected(_SENT_AFTER_CLOSE)
        if kind not in allowed:
            expected = _SEND_EXPECTED[self.application_state]
            raise RuntimeError(f"Expected ASGI message {expected}, but got {kind!r}")
        next_state = allowed[kind]
        if kind == "websocket.http.response.body" and not message.get("more_body", False):
            next_state = _DISCONNECTED
        if self.client_state is _DISCONNECTED:
            if kind == "websocket.close":
                self.application_state = _DISCONNECTED
                return
            raise WebSocketDisconnected(
                f"Cannot send {kind!r}: the client already disconnected "
                f"(close code {self._close_code})"
            )
        await self._send_to_server(message)
        self.application_state = next_state
        if kind == "websocket.close":
            self._close_code = int(message.get("code", status.WS_1000_NORMAL_CLOSURE))

    async def _send_to_server(self, message: Message) -> None:
        try:
            await self._send(message)
        except OSError:
            self._connection_lost()

    def _connection_lost(self) -> NoReturn:
        # The ASGI spec has servers raise an OSError subclass for a connection that is
        # gone: report it as what it is for the handler, a disconnect.
        self.application_state = _DISCONNECTED
        self.client_state = _DISCONNECTED
        self._close_code = status.WS_1006_ABNORMAL_CLOSURE
        raise WebSocketDisconnect(code=status.WS_1006_ABNORMAL_CLOSURE) from None

    async def _send_data(self, message: Message) -> None:
        """``send`` of a ``websocket.send`` message, straight through while connected.

        Data frames are the hot path of a session; while both sides are connected, what
        ``send`` would check and change is known (the state stays CONNECTED).
        """
        if self.application_state is _CONNECTED and self.client_state is not _DISCONNECTED:
            try:
                await self._send(message)
            except OSError:
                self._connection_lost()
        else:
            await self.send(message)

    # -- the handshake ------------------------------------------------------------------

    async def accept(
        self,
        subprotocol: str | None = None,
        headers: Iterable[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """Accept the connection, optionally choosing a ``subprotocol`` and adding ``headers``.

        Reads the pending ``websocket.connect`` first if nobody has yet.
        """
        if self.application_state is _CONNECTING and self.client_state is _CONNECTING:
            await self.receive()
        await self.send(
            {
                "type": "websocket.accept",
                "subprotocol": subprotocol,
                "headers": _header_pairs(headers or ()),
            }
        )

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Close the connection (or refuse it, before accept) with ``code`` and ``reason``."""
        await self.send({"type": "websocket.close", "code": code, "reason": reason or ""})

    async def send_denial_response(self, response: Response) -> None:
        """Refuse the handshake with an HTTP ``response`` instead of a close.

        Needs the server's ``websocket.http.response`` extension; without it, RuntimeError
        (the caller can fall back to ``close()``, which servers turn into a 403). Only
        possible before ``accept()`` or ``close()``, like any handshake answer.
        """
        if "websocket.http.response" not in self.scope.get("extensions", {}):
            raise RuntimeError(
                "The server doesn't support the Websocket Denial Response extension."
            )
        await response(self.scope, self._receive, self._send_denial_message)

    async def _send_denial_message(self, message: Message) -> None:
        # A Response speaks HTTP; over a WebSocket scope its messages carry a prefix.
        kind = message["type"]
        if kind.startswith("http."):
            message = {**message, "type": "websocket." + kind}
        await self.send(message)

    # -- receiving data -------------------------------------------------------------------

    @staticmethod
    def _raise_on_disconnect(message: Message) -> None:
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(
                int(message.get("code") or status.WS_1005_NO_STATUS_RCVD), message.get("reason")
            )

    async def _receive_data(self) -> Message:
        """The next ``websocket.receive`` message, for the ``receive_*`` helpers.

        Only an accepted, open connection has data to read (:class:`WebSocketDisconnected`
        otherwise); the client's disconnect raises :class:`WebSocketDisconnect`.
        """
        if self.application_state is _CONNECTED and self.client_state is _CONNECTED:
            # The hot path of a session: a data frame needs none of receive()'s checks.
            message = await self._receive()
            if message["type"] == "websocket.receive":
                return message
            self._advance_client_state(message)
        else:
            if self.application_state is not _CONNECTED:
                raise WebSocketDisconnected(_NOT_CONNECTED)
            message = await self.receive()
        self._raise_on_disconnect(message)
        return message

    async def receive_text(self) -> str:
        """The next text frame. A binary frame raises :class:`WebSocketDecodeError` (1003).

        That error is a ``KeyError`` too, as Starlette's failure there is.
        """
        message = await self._receive_data()
        text = message.get("text")
        if text is None:
            raise _FrameTypeError("Expected a text frame, received a binary frame")
        return str(text)

    async def receive_bytes(self) -> bytes:
        """The next binary frame. A text frame raises :class:`WebSocketDecodeError` (1003).

        That error is a ``KeyError`` too, as Starlette's failure there is.
        """
        message = await self._receive_data()
        data = message.get("bytes")
        if type(data) is bytes:
            return data
        if data is None:
            raise _FrameTypeError("Expected a binary frame, received a text frame")
        return bytes(data)

    async def receive_json(self, mode: str = "text") -> Any:
        """The next frame parsed as JSON, from a text frame or (``mode="binary"``) UTF-8 bytes.

        A frame that is not JSON -- malformed, not UTF-8, nested absurdly deep, or with an
        integer past Python's digit limit -- raises an error that is both a
        ``json.JSONDecodeError`` and a :class:`WebSocketDecodeError` (1003), so handlers can
        catch either. A frame of the other type raises one that is also a ``KeyError``.
        """
        _check_mode(mode)
        message = await self._receive_data()
        if mode == "text":
            text = message.get("text")
            if text is None:
                raise _FrameTypeError("Expected a text frame of JSON, received a binary frame")
        else:
            data = message.get("bytes")
            if data is None:
                raise _FrameTypeError("Expected a binary frame of JSON, received a text frame")
            try:
                text = bytes(data).decode("utf-8")
            except UnicodeDecodeError as error:
                raise _JSONFrameError(
                    json.JSONDecodeError(f"Invalid encoding: {error.reason}", "", error.start)
                ) from None
        try:
            return parse_json(text)
        except json.JSONDecodeError as error:
            raise _JSONFrameError(error) from None

    async def iter_text(self) -> AsyncIterator[str]:
        """Yield text frames until the client disconnects (then stop, without raising)."""
        try:
            while True:
                yield await self.receive_text()
        except WebSocketDisconnect:
            pass

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        """Yield binary frames until the client disconnects (then stop, without raising)."""
        try:
            while True:
                yield await self.receive_bytes()
        except WebSocketDisconnect:
            pass

    async def iter_json(self) -> AsyncIterator[Any]:
        """Yield JSON text frames until the client disconnects (then stop, without raising)."""
        try:
            while True:
                yield await self.receive_json()
        except WebSocketDisconnect:
            pass

    # -- sending data ---------------------------------------------------------------------

    async def send_text(self, data: str) -> None:
        """Send a text frame."""
        if not isinstance(data, str):
            raise TypeError(f"send_text() needs a str, got {type(data).__name__}")
        await self._send_data({"type": "websocket.send", "text": data})

    async def send_bytes(self, data: bytes | bytearray | memoryview) -> None:
        """Send a binary frame (``bytes``, ``bytearray`` or ``memoryview``)."""
        if type(data) is not bytes:
            if not isinstance(data, bytes | bytearray | memoryview):
                raise TypeError(f"send_bytes() needs bytes, got {type(data).__name__}")
            data = bytes(data)
        await self._send_data({"type": "websocket.send", "bytes": data})

    async def send_json(self, data: Any, mode: str = "text") -> None:
        """Send ``data`` as compact JSON in a text frame, or UTF-8 bytes with ``mode="binary"``."""
        _check_mode(mode)
        text = _JSON_ENCODER.encode(data)
        if mode == "text":
            await self._send_data({"type": "websocket.send", "text": text})
        else:
            await self._send_data({"type": "websocket.send", "bytes": text.encode("utf-8")})


# Built once: json.dumps with these options would build the same encoder per message.
_JSON_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _header_pairs(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The accept headers as a list, refusing what the server could not send."""
    pairs = list(headers)
    for pair in pairs:
        if not (
            isinstance(pair, tuple)
            and len(pair) == 2
            and isinstance(pair[0], bytes)
            and isinstance(pair[1], bytes)
        ):
            raise TypeError(f"accept() headers must be (bytes, bytes) pairs, got {pair!r}")
    return pairs


def _check_mode(mode: str) -> None:
    if mode not in ("text", "binary"):
        raise RuntimeError('The "mode" argument should be "text" or "binary".')


class WebSocketClose:
    """An ASGI app that closes (or, before accept, refuses) a WebSocket connection.

    Used where a WebSocket scope has nowhere to go, such as an unmatched route.
    """

    def __init__(self, code: int = 1000, reason: str | None = None) -> None:
        self.code = code
        self.reason = reason or ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "websocket.close", "code": self.code, "reason": self.reason})
