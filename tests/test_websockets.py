"""Tests of stellate.websockets, driven by hand-written ASGI receive/send callables.

Talking raw ASGI lets these tests check the exact messages sent and the state machine
of each transition, including the invalid ones, which a real client could not provoke.
"""

from __future__ import annotations

import json
import pickle
import re
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from stellate.exceptions import WebSocketException
from stellate.types import Message, Receive, Scope, Send
from stellate.websockets import (
    WebSocket,
    WebSocketClose,
    WebSocketDecodeError,
    WebSocketDisconnect,
    WebSocketDisconnected,
    WebSocketState,
)

pytestmark = pytest.mark.anyio

CONNECT: Message = {"type": "websocket.connect"}


def text(value: str) -> Message:
    return {"type": "websocket.receive", "text": value}


def binary(value: bytes) -> Message:
    return {"type": "websocket.receive", "bytes": value}


def disconnect(code: int | None = 1000, reason: str | None = None) -> Message:
    message: Message = {"type": "websocket.disconnect"}
    if code is not None:
        message["code"] = code
    if reason is not None:
        message["reason"] = reason
    return message


def make_scope(**extra: Any) -> Scope:
    scope: Scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "server": ("testserver", 80),
        "path": "/chat/room",
        "raw_path": b"/chat/room",
        "query_string": b"nick=ann",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"x-token", b"abc")],
        "subprotocols": ["chat.v1"],
        "path_params": {"room": "room"},
    }
    scope.update(extra)
    return scope


class FakeServer:
    """Scripted inbound messages; records what the application sends.

    Receiving past the script fails the test instead of hanging it.
    """

    def __init__(self, *incoming: Message) -> None:
        self.incoming = deque(incoming)
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        await anyio.lowlevel.checkpoint()
        if not self.incoming:
            raise AssertionError("the application received more messages than scripted")
        return self.incoming.popleft()

    async def send(self, message: Message) -> None:
        await anyio.lowlevel.checkpoint()
        self.sent.append(message)


def make_ws(*incoming: Message, **scope_extra: Any) -> tuple[WebSocket, FakeServer]:
    server = FakeServer(*incoming)
    return WebSocket(make_scope(**scope_extra), server.receive, server.send), server


# -- construction and the connection's scope ------------------------------------------------


async def test_requires_a_websocket_scope() -> None:
    server = FakeServer()
    with pytest.raises(ValueError, match="'websocket' scope, got 'http'"):
        WebSocket(make_scope(type="http"), server.receive, server.send)


async def test_reads_the_scope_like_any_connection() -> None:
    ws, _ = make_ws()
    assert str(ws.url) == "ws://testserver/chat/room?nick=ann"
    assert ws.headers["x-token"] == "abc"
    assert ws.query_params["nick"] == "ann"
    assert ws.path_params == {"room": "room"}
    assert ws["subprotocols"] == ["chat.v1"]
    assert ws.client_state is WebSocketState.CONNECTING
    assert ws.application_state is WebSocketState.CONNECTING


# -- the handshake ---------------------------------------------------------------------------


async def test_accept_reads_connect_then_sends_accept() -> None:
    ws, server = make_ws(CONNECT)
    await ws.accept()
    assert server.sent == [{"type": "websocket.accept", "subprotocol": None, "headers": []}]
    assert not server.incoming
    assert ws.client_state is WebSocketState.CONNECTED
    assert ws.application_state is WebSocketState.CONNECTED


async def test_accept_with_subprotocol_and_headers() -> None:
    ws, server = make_ws(CONNECT)
    await ws.accept(subprotocol="chat.v1", headers=[(b"x-room", b"lobby")])
    assert server.sent == [
        {"type": "websocket.accept", "subprotocol": "chat.v1", "headers": [(b"x-room", b"lobby")]}
    ]


@pytest.mark.parametrize(
    "headers",
    [[(b"x-room", "lobby")], [("x-room", b"lobby")], [(b"x-room",)], [b"x-room: lobby"]],
)
async def test_accept_refuses_headers_the_server_could_not_send(headers: Any) -> None:
    ws, server = make_ws(CONNECT)
    with pytest.raises(TypeError, match=r"accept\(\) headers must be \(bytes, bytes\) pairs"):
        await ws.accept(headers=headers)
    assert server.sent == []
    assert ws.application_state is WebSocketState.CONNECTING


async def test_accept_after_connect_was_read_does_not_read_again() -> None:
    ws, _ = make_ws(CONNECT, text("first"))
    assert await ws.receive() == CONNECT
    assert ws.client_state is WebSocketState.CONNECTED
    await ws.accept()
    assert await ws.receive_text() == "first"


async def test_a_disconnect_before_connect_is_refused_like_starlette() -> None:
    # ASGI servers send websocket.connect first; Starlette refuses anything else there.
    ws, server = make_ws(disconnect(1001, "bye"))
    with pytest.raises(RuntimeError) as info:
        await ws.accept()
    assert str(info.value) == (
        "Expected ASGI message \"websocket.connect\", but got 'websocket.disconnect'"
    )
    assert server.sent == []


async def test_client_gone_right_after_connect() -> None:
    ws, server = make_ws(CONNECT, disconnect(1001, "bye"))
    await ws.receive()
    assert await ws.receive() == disconnect(1001, "bye")
    assert ws.client_state is WebSocketState.DISCONNECTED
    # Refusing a client that is already gone is harmless and sends nothing.
    await ws.close()
    assert server.sent == []
    assert ws.application_state is WebSocketState.DISCONNECTED


async def test_close_before_accept_refuses_the_handshake() -> None:
    ws, server = make_ws(CONNECT)
    await ws.close(code=1008, reason="no token")
    assert server.sent == [{"type": "websocket.close", "code": 1008, "reason": "no token"}]
    assert ws.application_state is WebSocketState.DISCONNECTED


async def test_close_defaults() -> None:
    ws, server = make_ws(CONNECT)
    await ws.accept()
    await ws.close()
    assert server.sent[-1] == {"type": "websocket.close", "code": 1000, "reason": ""}


# -- invalid transitions --------------------------------------------------------------------

Step = Callable[[WebSocket], Awaitable[Any]]


async def _accept(ws: WebSocket) -> None:
    await ws.accept()


async def _accept_close(ws: WebSocket) -> None:
    await ws.accept()
    await ws.close()


async def _close(ws: WebSocket) -> None:
    await ws.close()


async def _accept_client_gone(ws: WebSocket) -> None:
    await ws.accept()
    with pytest.raises(WebSocketDisconnect):
        await ws.receive_text()


async def _deny_started(ws: WebSocket) -> None:
    await ws.send({"type": "websocket.http.response.start", "status": 403, "headers": []})


async def _denied(ws: WebSocket) -> None:
    await _deny_started(ws)
    await ws.send({"type": "websocket.http.response.body", "body": b"no"})


async def _nothing(ws: WebSocket) -> None:
    pass


# Starlette's texts, which applications match on.
SEND_IN_CONNECTING = (
    'Expected ASGI message "websocket.accept", "websocket.close" or '
    '"websocket.http.response.start", but got '
)
SEND_IN_CONNECTED = 'Expected ASGI message "websocket.send" or "websocket.close", but got '
SEND_IN_RESPONSE = 'Expected ASGI message "websocket.http.response.body", but got '
SENT_AFTER_CLOSE = 'Cannot call "send" once a close message has been sent.'
NOT_CONNECTED = 'WebSocket is not connected. Need to call "accept" first.'
RECEIVED_AFTER_DISCONNECT = 'Cannot call "receive" once a disconnect message has been received.'

INVALID = [
    # (id, setup, operation, exception type (exactly), message (exactly))
    (
        "send-before-accept",
        _nothing,
        lambda ws: ws.send_text("hi"),
        RuntimeError,
        SEND_IN_CONNECTING + "'websocket.send'",
    ),
    (
        "send-bytes-before-accept",
        _nothing,
        lambda ws: ws.send_bytes(b"x"),
        RuntimeError,
        SEND_IN_CONNECTING + "'websocket.send'",
    ),
    (
        "accept-twice",
        _accept,
        lambda ws: ws.accept(),
        RuntimeError,
        SEND_IN_CONNECTED + "'websocket.accept'",
    ),
    (
        "receive-text-before-accept",
        _nothing,
        lambda ws: ws.receive_text(),
        WebSocketDisconnected,
        NOT_CONNECTED,
    ),
    (
        "receive-bytes-before-accept",
        _nothing,
        lambda ws: ws.receive_bytes(),
        WebSocketDisconnected,
        NOT_CONNECTED,
    ),
    (
        "receive-json-before-accept",
        _nothing,
        lambda ws: ws.receive_json(),
        WebSocketDisconnected,
        NOT_CONNECTED,
    ),
    (
        "receive-text-after-close",
        _accept_close,
        lambda ws: ws.receive_text(),
        WebSocketDisconnected,
        NOT_CONNECTED,
    ),
    (
        "receive-json-after-close",
        _accept_close,
        lambda ws: ws.receive_json(mode="binary"),
        WebSocketDisconnected,
        NOT_CONNECTED,
    ),
    (
        "send-after-close",
        _accept_close,
        lambda ws: ws.send_text("late"),
        WebSocketDisconnected,
        SENT_AFTER_CLOSE,
    ),
    (
        "close-twice",
        _accept_close,
        lambda ws: ws.close(),
        WebSocketDisconnected,
        SENT_AFTER_CLOSE,
    ),
    (
        "accept-after-close",
        _close,
        lambda ws: ws.accept(),
        WebSocketDisconnected,
        SENT_AFTER_CLOSE,
    ),
    (
        "receive-after-client-gone",
        _accept_client_gone,
        lambda ws: ws.receive(),
        WebSocketDisconnected,
        RECEIVED_AFTER_DISCONNECT,
    ),
    (
        "receive-text-after-client-gone",
        _accept_client_gone,
        lambda ws: ws.receive_text(),
        WebSocketDisconnected,
        RECEIVED_AFTER_DISCONNECT,
    ),
    (
        "accept-during-denial",
        _deny_started,
        lambda ws: ws.accept(),
        RuntimeError,
        SEND_IN_RESPONSE + "'websocket.accept'",
    ),
    (
        "send-during-denial",
        _deny_started,
        lambda ws: ws.send_text("x"),
        RuntimeError,
        SEND_IN_RESPONSE + "'websocket.send'",
    ),
    (
        "second-denial-start",
        _deny_started,
        lambda ws: ws.send({"type": "websocket.http.response.start", "status": 403}),
        RuntimeError,
        SEND_IN_RESPONSE + "'websocket.http.response.start'",
    ),
    (
        "receive-text-during-denial",
        _deny_started,
        lambda ws: ws.receive_text(),
        WebSocketDisconnected,
        NOT_CONNECTED,
    ),
    (
        "close-after-denial",
        _denied,
        lambda ws: ws.close(),
        WebSocketDisconnected,
        SENT_AFTER_CLOSE,
    ),
    (
        "http-start-after-accept",
        _accept,
        lambda ws: ws.send({"type": "websocket.http.response.start", "status": 403}),
        RuntimeError,
        SEND_IN_CONNECTED + "'websocket.http.response.start'",
    ),
    (
        "unknown-message-type",
        _accept,
        lambda ws: ws.send({"type": "http.response.start"}),
        RuntimeError,
        SEND_IN_CONNECTED + "'http.response.start'",
    ),
    (
        "bad-json-mode-before-accept",
        _nothing,
        lambda ws: ws.receive_json(mode="json"),
        RuntimeError,
        'The "mode" argument should be "text" or "binary".',
    ),
]


@pytest.mark.parametrize(
    ("setup", "operation", "exc_type", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in INVALID],
)
async def test_invalid_transitions_raise_and_send_nothing(
    setup: Step, operation: Step, exc_type: type[Exception], message: str
) -> None:
    """Misuse raises Starlette's exception class, with its text, and changes nothing."""
    ws, server = make_ws(CONNECT, disconnect(1000))
    await setup(ws)
    sent_before = list(server.sent)
    states_before = (ws.client_state, ws.application_state)
    with pytest.raises(exc_type) as info:
        await operation(ws)
    assert type(info.value) is exc_type
    assert str(info.value) == message
    assert server.sent == sent_before
    assert (ws.client_state, ws.application_state) == states_before


async def test_receive_reads_on_after_the_application_closed() -> None:
    """Closing is the application's side: the client's disconnect can still be drained."""
    ws, _ = make_ws(CONNECT, text("in flight"), disconnect(1001))
    await ws.accept()
    await ws.close()
    assert await ws.receive() == text("in flight")
    assert await ws.receive() == disconnect(1001)
    assert ws.client_state is WebSocketState.DISCONNECTED
    with pytest.raises(WebSocketDisconnected) as info:
        await ws.receive()
    assert str(info.value) == RECEIVED_AFTER_DISCONNECT


async def test_receive_reads_on_during_a_denial_response() -> None:
    ws, _ = make_ws(CONNECT, disconnect(1000), extensions=DENIAL_EXTENSIONS)
    await ws.receive()
    await _deny_started(ws)
    assert await ws.receive() == disconnect(1000)


async def test_misuse_is_catchable_as_websocket_disconnected() -> None:
    """``except WebSocketDisconnected`` catches a double close and a read before accept."""
    ws, _ = make_ws(CONNECT)
    caught = []
    for operation in (ws.receive_text, ws.accept, ws.close, ws.close):
        try:
            await operation()
        except WebSocketDisconnected as exc:
            caught.append(str(exc))
    assert caught == [NOT_CONNECTED, SENT_AFTER_CLOSE]


async def test_websocket_disconnected_is_a_runtime_error() -> None:
    assert issubclass(WebSocketDisconnected, RuntimeError)
    assert not issubclass(WebSocketDisconnected, WebSocketDisconnect)


async def test_unexpected_message_from_the_server() -> None:
    ws, _ = make_ws(text("too early"))
    with pytest.raises(RuntimeError) as info:
        await ws.receive()
    assert (
        str(info.value)
        == "Expected ASGI message \"websocket.connect\", but got 'websocket.receive'"
    )
    ws, _ = make_ws(CONNECT, CONNECT)
    await ws.accept()
    with pytest.raises(RuntimeError) as info:
        await ws.receive()
    assert str(info.value) == (
        'Expected ASGI message "websocket.receive" or "websocket.disconnect", '
        "but got 'websocket.connect'"
    )


async def test_lost_connection_on_send_is_a_disconnect() -> None:
    async def broken_send(message: Message) -> None:
        if message["type"] == "websocket.send":
            raise ConnectionResetError("peer reset")

    server = FakeServer(CONNECT)
    ws = WebSocket(make_scope(), server.receive, broken_send)
    await ws.accept()
    with pytest.raises(WebSocketDisconnect) as info:
        await ws.send_text("hello")
    assert info.value.code == 1006
    assert ws.client_state is WebSocketState.DISCONNECTED
    assert ws.application_state is WebSocketState.DISCONNECTED
    with pytest.raises(WebSocketDisconnected, match="not connected"):
        await ws.receive_text()


# -- receiving ------------------------------------------------------------------------------


async def test_receive_helpers() -> None:
    ws, _ = make_ws(
        CONNECT,
        text("hello"),
        binary(b"\x00\xff"),
        text('{"a": [1, 2]}'),
        binary('{"é": null}'.encode()),
    )
    await ws.accept()
    assert await ws.receive_text() == "hello"
    assert await ws.receive_bytes() == b"\x00\xff"
    assert await ws.receive_json() == {"a": [1, 2]}
    assert await ws.receive_json(mode="binary") == {"é": None}


async def test_empty_frames_are_data_not_missing() -> None:
    ws, _ = make_ws(
        CONNECT,
        {"type": "websocket.receive", "text": "", "bytes": None},
        {"type": "websocket.receive", "text": None, "bytes": b""},
    )
    await ws.accept()
    assert await ws.receive_text() == ""
    assert await ws.receive_bytes() == b""


async def test_receive_text_raises_disconnect_with_code_and_reason() -> None:
    ws, _ = make_ws(CONNECT, disconnect(4000, "gone fishing"))
    await ws.accept()
    with pytest.raises(WebSocketDisconnect) as info:
        await ws.receive_text()
    assert (info.value.code, info.value.reason) == (4000, "gone fishing")
    assert ws.client_state is WebSocketState.DISCONNECTED


async def test_disconnect_without_code_means_no_status() -> None:
    ws, _ = make_ws(CONNECT, disconnect(None))
    await ws.accept()
    with pytest.raises(WebSocketDisconnect) as info:
        await ws.receive_bytes()
    assert (info.value.code, info.value.reason) == (1005, "")


async def test_raw_receive_returns_the_disconnect_message() -> None:
    ws, _ = make_ws(CONNECT, disconnect(1001))
    await ws.accept()
    assert await ws.receive() == disconnect(1001)
    assert ws.client_state is WebSocketState.DISCONNECTED


@pytest.mark.parametrize(
    ("frame", "receive", "reason"),
    [
        (binary(b"abc"), lambda ws: ws.receive_text(), "Expected a text frame, received a binary"),
        (text("abc"), lambda ws: ws.receive_bytes(), "Expected a binary frame, received a text"),
        (binary(b"{}"), lambda ws: ws.receive_json(), "Expected a text frame of JSON"),
        (text("{}"), lambda ws: ws.receive_json(mode="binary"), "Expected a binary frame of JSON"),
        (binary(b"\xff\xfe"), lambda ws: ws.receive_json(mode="binary"), "Invalid encoding"),
    ],
    ids=["bytes-for-text", "text-for-bytes", "bytes-for-json", "text-for-binary-json", "bad-utf8"],
)
async def test_wrong_frame_type_is_a_decode_error(
    frame: Message, receive: Step, reason: str
) -> None:
    ws, _ = make_ws(CONNECT, frame, text("next"))
    await ws.accept()
    with pytest.raises(WebSocketDecodeError) as info:
        await receive(ws)
    assert info.value.code == 1003
    assert reason in info.value.reason
    assert isinstance(info.value, WebSocketException)
    assert isinstance(info.value, ValueError)
    # The connection is still usable: the handler decides what to do about bad frames.
    assert await ws.receive_text() == "next"


@pytest.mark.parametrize("mode", ["text", "binary"])
async def test_malformed_json_is_catchable_as_json_error(mode: str) -> None:
    frame = text('{"a": ') if mode == "text" else binary(b'{"a": ')
    ws, _ = make_ws(CONNECT, frame)
    await ws.accept()
    with pytest.raises(json.JSONDecodeError) as info:
        await ws.receive_json(mode=mode)
    error = info.value
    assert isinstance(error, WebSocketDecodeError)
    assert error.code == 1003
    assert error.reason.startswith("Malformed JSON in frame: Expecting value")
    assert (error.doc, error.pos, error.lineno, error.colno) == ('{"a": ', 6, 1, 7)
    assert str(error) == f"1003: {error.reason}"


@pytest.mark.parametrize(
    ("frame", "receive"),
    [
        (binary(b"abc"), lambda ws: ws.receive_text()),
        (text("abc"), lambda ws: ws.receive_bytes()),
        (binary(b"{}"), lambda ws: ws.receive_json()),
        (text("{}"), lambda ws: ws.receive_json(mode="binary")),
    ],
    ids=["bytes-for-text", "text-for-bytes", "bytes-for-json", "text-for-binary-json"],
)
async def test_wrong_frame_type_is_also_a_key_error(frame: Message, receive: Step) -> None:
    """Starlette fails with KeyError there; code (GraphQL libraries) catches that."""
    ws, _ = make_ws(CONNECT, frame)
    await ws.accept()
    with pytest.raises(KeyError) as info:
        await receive(ws)
    assert isinstance(info.value, WebSocketDecodeError)
    assert info.value.code == 1003
    restored = pickle.loads(pickle.dumps(info.value))
    assert isinstance(restored, KeyError)
    assert restored.reason == info.value.reason


HOSTILE_JSON = {
    "nesting-bomb": "[" * 100_000 + "]" * 100_000,
    "object-bomb": '{"a":' * 100_000 + "1" + "}" * 100_000,
    "5000-digit-number": "1" * 5000,
    "5000-digit-number-in-a-list": "[" + "9" * 5000 + "]",
}


@pytest.mark.parametrize("payload", list(HOSTILE_JSON.values()), ids=list(HOSTILE_JSON))
@pytest.mark.parametrize("mode", ["text", "binary"])
async def test_hostile_json_is_malformed_json_like_any_other(payload: str, mode: str) -> None:
    frame = text(payload) if mode == "text" else binary(payload.encode())
    ws, _ = make_ws(CONNECT, frame, text('"next"'))
    await ws.accept()
    with pytest.raises(json.JSONDecodeError) as info:
        await ws.receive_json(mode=mode)
    assert isinstance(info.value, WebSocketDecodeError)
    assert info.value.code == 1003
    assert info.value.reason.startswith("Malformed JSON in frame: ")
    assert await ws.receive_json() == "next"


async def test_decode_error_reason_fits_a_close_frame() -> None:
    error = WebSocketDecodeError("é" * 100)
    assert len(error.reason.encode()) <= 123
    assert error.reason == "é" * 61
    short = WebSocketDecodeError("short")
    assert short.reason == "short"


async def test_decode_error_pickles() -> None:
    error = pickle.loads(pickle.dumps(WebSocketDecodeError("bad frame")))
    assert isinstance(error, WebSocketDecodeError)
    assert (error.code, error.reason) == (1003, "bad frame")


@pytest.mark.parametrize(
    ("method", "frames", "expected"),
    [
        ("iter_text", [text("a"), text("b")], ["a", "b"]),
        ("iter_bytes", [binary(b"a"), binary(b"b")], [b"a", b"b"]),
        ("iter_json", [text("1"), text('"two"')], [1, "two"]),
    ],
)
async def test_iterators_stop_at_disconnect(
    method: str, frames: list[Message], expected: list[Any]
) -> None:
    ws, _ = make_ws(CONNECT, *frames, disconnect(1000))
    await ws.accept()
    received = [item async for item in getattr(ws, method)()]
    assert received == expected
    assert ws.client_state is WebSocketState.DISCONNECTED


async def test_iterators_do_not_hide_decode_errors() -> None:
    ws, _ = make_ws(CONNECT, text("ok"), binary(b"oops"))
    await ws.accept()
    received = []
    with pytest.raises(WebSocketDecodeError):
        async for item in ws.iter_text():
            received.append(item)
    assert received == ["ok"]


# -- sending --------------------------------------------------------------------------------


async def test_send_helpers() -> None:
    ws, server = make_ws(CONNECT)
    await ws.accept()
    await ws.send_text("héllo")
    await ws.send_bytes(b"\x00")
    await ws.send_bytes(bytearray(b"ba"))
    await ws.send_bytes(memoryview(b"mv"))
    await ws.send_json({"é": [1, None]})
    await ws.send_json({"k": "v"}, mode="binary")
    assert server.sent[1:] == [
        {"type": "websocket.send", "text": "héllo"},
        {"type": "websocket.send", "bytes": b"\x00"},
        {"type": "websocket.send", "bytes": b"ba"},
        {"type": "websocket.send", "bytes": b"mv"},
        {"type": "websocket.send", "text": '{"é":[1,null]}'},
        {"type": "websocket.send", "bytes": b'{"k":"v"}'},
    ]
    assert all(type(m.get("bytes", b"")) is bytes for m in server.sent[1:])


async def test_send_helpers_reject_the_wrong_type() -> None:
    ws, server = make_ws(CONNECT)
    await ws.accept()
    with pytest.raises(TypeError, match="send_text\\(\\) needs a str, got bytes"):
        await ws.send_text(b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="send_bytes\\(\\) needs bytes, got str"):
        await ws.send_bytes("x")  # type: ignore[arg-type]
    assert len(server.sent) == 1


async def test_json_mode_must_be_text_or_binary() -> None:
    ws, server = make_ws(CONNECT, text("{}"))
    await ws.accept()
    message = 'The "mode" argument should be "text" or "binary".'
    with pytest.raises(RuntimeError) as info:
        await ws.send_json({}, mode="bytes")
    assert str(info.value) == message
    with pytest.raises(RuntimeError) as info:
        await ws.receive_json(mode="json")
    assert str(info.value) == message
    # Nothing was consumed or sent by the refused calls.
    assert await ws.receive_json() == {}
    assert len(server.sent) == 1


# -- denial responses -----------------------------------------------------------------------

DENIAL_EXTENSIONS: dict[str, Any] = {"websocket.http.response": {}}


def http_response(*chunks: bytes, prefix: str = "") -> Callable[[Scope, Receive, Send], Any]:
    """A minimal HTTP response app, sending its messages with or without the prefix."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": prefix + "http.response.start", "status": 403, "headers": []})
        for index, chunk in enumerate(chunks):
            more = index < len(chunks) - 1
            await send({"type": prefix + "http.response.body", "body": chunk, "more_body": more})

    return app


@pytest.mark.parametrize("prefix", ["", "websocket."])
async def test_denial_response(prefix: str) -> None:
    ws, server = make_ws(CONNECT, extensions=DENIAL_EXTENSIONS)
    await ws.send_denial_response(http_response(b"no ", b"entry", prefix=prefix))  # type: ignore[arg-type]
    assert server.sent == [
        {"type": "websocket.http.response.start", "status": 403, "headers": []},
        {"type": "websocket.http.response.body", "body": b"no ", "more_body": True},
        {"type": "websocket.http.response.body", "body": b"entry", "more_body": False},
    ]
    assert ws.application_state is WebSocketState.DISCONNECTED


async def test_denial_response_stays_in_response_state_until_the_last_chunk() -> None:
    ws, _ = make_ws(CONNECT, extensions=DENIAL_EXTENSIONS)
    await ws.send({"type": "websocket.http.response.start", "status": 401, "headers": []})
    await ws.send({"type": "websocket.http.response.body", "body": b"a", "more_body": True})
    assert ws.application_state is WebSocketState.RESPONSE
    await ws.send({"type": "websocket.http.response.body", "body": b"b"})
    assert ws.application_state.name == "DISCONNECTED"


async def test_denial_response_needs_the_server_extension() -> None:
    ws, server = make_ws(CONNECT)
    with pytest.raises(RuntimeError) as info:
        await ws.send_denial_response(http_response(b"x"))  # type: ignore[arg-type]
    assert str(info.value) == "The server doesn't support the Websocket Denial Response extension."
    assert server.sent == []
    assert ws.application_state is WebSocketState.CONNECTING
    await ws.close()  # the application can still refuse with a close
    assert server.sent == [{"type": "websocket.close", "code": 1000, "reason": ""}]


async def test_denial_response_after_accept_is_refused() -> None:
    ws, server = make_ws(CONNECT, extensions=DENIAL_EXTENSIONS)
    await ws.accept()
    with pytest.raises(RuntimeError) as info:
        await ws.send_denial_response(http_response(b"x"))  # type: ignore[arg-type]
    assert str(info.value) == SEND_IN_CONNECTED + "'websocket.http.response.start'"
    assert len(server.sent) == 1


# -- WebSocketClose and the exceptions -------------------------------------------------------


async def test_websocket_close_app() -> None:
    server = FakeServer()
    await WebSocketClose()(make_scope(), server.receive, server.send)
    await WebSocketClose(code=4004, reason="not here")(make_scope(), server.receive, server.send)
    assert server.sent == [
        {"type": "websocket.close", "code": 1000, "reason": ""},
        {"type": "websocket.close", "code": 4004, "reason": "not here"},
    ]


def test_websocket_disconnect_defaults() -> None:
    exc = WebSocketDisconnect()
    assert (exc.code, exc.reason) == (1000, "")
    expected = "WebSocketDisconnect(code=1001, reason='away')"
    assert repr(WebSocketDisconnect(1001, "away")) == expected


# -- concurrency: a receive loop and a send loop side by side --------------------------------


async def test_send_loop_is_cancelled_when_the_client_disconnects() -> None:
    to_app, app_inbox = anyio.create_memory_object_stream[Message](10)
    outbox, from_app = anyio.create_memory_object_stream[Message](10)
    ticks, tick_source = anyio.create_memory_object_stream[str](10)
    send_loop_cancelled = anyio.Event()
    received: list[str] = []

    async def handler(ws: WebSocket) -> None:
        await ws.accept()

        async def receive_loop() -> None:
            async for message in ws.iter_text():
                received.append(message)
            tg.cancel_scope.cancel()

        async def send_loop() -> None:
            try:
                async for tick in tick_source:
                    await ws.send_text(tick)
            finally:
                send_loop_cancelled.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(receive_loop)
            tg.start_soon(send_loop)

    ws = WebSocket(make_scope(), app_inbox.receive, outbox.send)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as server:
            server.start_soon(handler, ws)
            await to_app.send(CONNECT)
            assert (await from_app.receive())["type"] == "websocket.accept"
            await ticks.send("tick")
            assert await from_app.receive() == {"type": "websocket.send", "text": "tick"}
            await to_app.send(text("hello"))
            await to_app.send(disconnect(1001))
            await send_loop_cancelled.wait()
    assert received == ["hello"]
    assert ws.client_state is WebSocketState.DISCONNECTED
    for stream in (to_app, app_inbox, outbox, from_app, ticks, tick_source):
        stream.close()


# -- through an application and the TestClient (both backends) -------------------------------

TestClientFactory = Callable[..., Any]


def make_app(handler: Callable[[WebSocket], Awaitable[None]]) -> Any:
    from stellate.applications import Stellate
    from stellate.routing import WebSocketRoute

    return Stellate(routes=[WebSocketRoute("/ws/{room}", handler)])


def test_subprotocol_and_headers_through_the_handshake(
    test_client_factory: TestClientFactory,
) -> None:
    async def handler(ws: WebSocket) -> None:
        offered = ws.scope["subprotocols"]
        room = ws.path_params["room"].encode()
        await ws.accept(subprotocol=offered[-1], headers=[(b"x-room", room)])
        await ws.send_json({"offered": offered, "token": ws.headers.get("x-token")})
        await ws.close()

    client = test_client_factory(make_app(handler))
    with client.websocket_connect(
        "/ws/lobby", subprotocols=["chat.v1", "chat.v2"], headers={"x-token": "t0k"}
    ) as session:
        assert session.accepted_subprotocol == "chat.v2"
        assert (b"x-room", b"lobby") in session.extra_headers
        assert session.receive_json() == {"offered": ["chat.v1", "chat.v2"], "token": "t0k"}


def test_echo_text_bytes_and_json(test_client_factory: TestClientFactory) -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text((await ws.receive_text()).upper())
        await ws.send_bytes((await ws.receive_bytes())[::-1])
        await ws.send_json({"got": await ws.receive_json(mode="binary")}, mode="binary")
        await ws.close(code=4000, reason="done")

    client = test_client_factory(make_app(handler))
    with client.websocket_connect("/ws/a") as session:
        session.send_text("héllo")
        assert session.receive_text() == "HÉLLO"
        session.send_bytes(b"\x01\x02")
        assert session.receive_bytes() == b"\x02\x01"
        session.send_json([1, "é"], mode="binary")
        assert session.receive_json(mode="binary") == {"got": [1, "é"]}
        with pytest.raises(WebSocketDisconnect) as info:
            session.receive_text()
    assert (info.value.code, info.value.reason) == (4000, "done")


def test_denial_response_reaches_the_client(test_client_factory: TestClientFactory) -> None:
    from stellate.responses import PlainTextResponse
    from stellate.testclient import WebSocketDenialResponse

    async def handler(ws: WebSocket) -> None:
        denial = PlainTextResponse("token expired", 401, headers={"www-authenticate": "Bearer"})
        await ws.send_denial_response(denial)

    client = test_client_factory(make_app(handler))
    with pytest.raises(WebSocketDenialResponse) as info, client.websocket_connect("/ws/a"):
        pass  # pragma: no cover - the handshake fails
    assert info.value.status_code == 401
    assert info.value.headers["www-authenticate"] == "Bearer"
    assert info.value.text == "token expired"


def test_refusing_with_a_close_before_accept(test_client_factory: TestClientFactory) -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.close(code=1008, reason="no token")

    client = test_client_factory(make_app(handler))
    with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect("/ws/a"):
        pass  # pragma: no cover - the handshake fails
    assert info.value.code == 1008


@pytest.mark.parametrize(
    ("send", "receive", "reason"),
    [
        (
            lambda s: s.send_text("{oops"),
            lambda ws: ws.receive_json(),
            "Malformed JSON in frame: Expecting property name enclosed in double quotes",
        ),
        (
            lambda s: s.send_bytes(b"\x00"),
            lambda ws: ws.receive_text(),
            "Expected a text frame, received a binary frame",
        ),
        (
            lambda s: s.send_text("x"),
            lambda ws: ws.receive_bytes(),
            "Expected a binary frame, received a text frame",
        ),
    ],
    ids=["malformed-json", "binary-for-text", "text-for-bytes"],
)
def test_bad_frames_close_with_1003_and_raise_nothing(
    test_client_factory: TestClientFactory,
    send: Callable[[Any], None],
    receive: Step,
    reason: str,
) -> None:
    """An uncaught decode error is closed by the exception middleware, never logged as an error."""

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await receive(ws)

    client = test_client_factory(make_app(handler))  # raise_server_exceptions=True
    with client.websocket_connect("/ws/a") as session:
        send(session)
        with pytest.raises(WebSocketDisconnect) as info:
            session.receive_text()
    assert (info.value.code, info.value.reason) == (1003, reason)


@pytest.mark.parametrize("payload", list(HOSTILE_JSON.values()), ids=list(HOSTILE_JSON))
def test_hostile_json_closes_with_1003_and_raises_nothing(
    test_client_factory: TestClientFactory, payload: str
) -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await ws.receive_json()

    client = test_client_factory(make_app(handler))  # raise_server_exceptions=True
    with client.websocket_connect("/ws/a") as session:
        session.send_text(payload)
        with pytest.raises(WebSocketDisconnect) as info:
            session.receive_text()
    assert info.value.code == 1003


def test_a_handler_catching_key_error_sees_the_wrong_frame_type(
    test_client_factory: TestClientFactory,
) -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        try:
            await ws.receive_text()
        except KeyError:
            await ws.send_text("binary frames are not supported")
        await ws.close()

    client = test_client_factory(make_app(handler))
    with client.websocket_connect("/ws/a") as session:
        session.send_bytes(b"\x00")
        assert session.receive_text() == "binary frames are not supported"


def test_handler_can_catch_malformed_json_and_carry_on(
    test_client_factory: TestClientFactory,
) -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        while True:
            try:
                data = await ws.receive_json()
            except json.JSONDecodeError as exc:
                await ws.send_json({"error": exc.msg})
            except WebSocketDisconnect:
                return
            else:
                await ws.send_json({"ok": data})

    client = test_client_factory(make_app(handler))
    with client.websocket_connect("/ws/a") as session:
        session.send_text("[1,")
        assert session.receive_json() == {"error": "Expecting value"}
        session.send_text("[1]")
        assert session.receive_json() == {"ok": [1]}


def test_oversized_frames_are_refused_with_1009(test_client_factory: TestClientFactory) -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        async for message in ws.iter_bytes():
            if len(message) > 8:
                await ws.close(code=1009, reason="frames are limited to 8 bytes")
                return
            await ws.send_bytes(message)

    client = test_client_factory(make_app(handler))
    with client.websocket_connect("/ws/a") as session:
        session.send_bytes(b"small")
        assert session.receive_bytes() == b"small"
        session.send_bytes(b"much too large")
        with pytest.raises(WebSocketDisconnect) as info:
            session.receive_bytes()
    assert (info.value.code, info.value.reason) == (1009, "frames are limited to 8 bytes")


def test_client_leaving_mid_conversation_ends_the_handler_cleanly(
    test_client_factory: TestClientFactory,
) -> None:
    seen: list[Any] = []

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        try:
            while True:
                seen.append(await ws.receive_text())
        except WebSocketDisconnect as exc:
            seen.append((exc.code, exc.reason))
        seen.append(ws.client_state)

    client = test_client_factory(make_app(handler))
    with client.websocket_connect("/ws/a") as session:
        session.send_text("one")
        session.close(code=1001, reason="tab closed")
    assert seen == ["one", (1001, "tab closed"), WebSocketState.DISCONNECTED]


def test_errors_in_a_handler_surface_in_the_test(test_client_factory: TestClientFactory) -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await ws.receive_text()
        raise LookupError("no such room")

    client = test_client_factory(make_app(handler))
    with (
        pytest.raises(LookupError, match="no such room"),
        client.websocket_connect("/ws/a") as session,
    ):
        session.send_text("join")
        session.receive_text()


def test_invalid_transition_surfaces_with_its_message(
    test_client_factory: TestClientFactory,
) -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.send_text("hello")  # forgot accept()

    client = test_client_factory(make_app(handler))
    with (
        pytest.raises(RuntimeError, match=re.escape(SEND_IN_CONNECTING + "'websocket.send'")),
        client.websocket_connect("/ws/a"),
    ):
        pass  # pragma: no cover - the handshake fails


def test_receive_and_send_loops_side_by_side(test_client_factory: TestClientFactory) -> None:
    """When the client leaves, the receive loop ends and the send loop is cancelled."""
    outcome: dict[str, Any] = {}

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        ticks, tick_source = anyio.create_memory_object_stream[int](1)

        async def receive_loop() -> None:
            async for message in ws.iter_text():
                await ticks.send(int(message))
            outcome["receive"] = "ended"
            tg.cancel_scope.cancel()

        async def send_loop() -> None:
            try:
                async for tick in tick_source:
                    await ws.send_json({"tick": tick})
            except anyio.get_cancelled_exc_class():
                outcome["send"] = "cancelled"
                raise

        with ticks, tick_source:
            async with anyio.create_task_group() as tg:
                tg.start_soon(receive_loop)
                tg.start_soon(send_loop)

    client = test_client_factory(make_app(handler))
    with client.websocket_connect("/ws/a") as session:
        session.send_text("1")
        assert session.receive_json() == {"tick": 1}
        session.send_text("2")
        assert session.receive_json() == {"tick": 2}
        session.close()
    assert outcome == {"receive": "ended", "send": "cancelled"}
