"""WebSockets through real servers, driven by the ``websockets`` client library.

hypercorn speaks WebSocket through wsproto, uvicorn through ``websockets``: each test runs
against hypercorn on trio, hypercorn on asyncio and uvicorn (the ``server`` fixture).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.e2e._servers import Server
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect


def open_socket(server: Server, path: str, **options: Any) -> ClientConnection:
    return connect(
        server.ws_url + path,
        proxy=None,
        open_timeout=15,
        close_timeout=15,
        max_size=4 * 1024 * 1024,
        **options,
    )


def test_echo_text_and_bytes_with_a_subprotocol(server: Server) -> None:
    large = bytes(range(256)) * 4096  # 1 MiB: several frames on the wire
    with open_socket(server, "/ws/echo", subprotocols=["other", "e2e.v1"]) as websocket:
        assert websocket.subprotocol == "e2e.v1"
        websocket.send("héllo")
        assert websocket.recv(timeout=15) == "héllo"
        websocket.send(b"\x00\xff binary")
        assert websocket.recv(timeout=15) == b"\x00\xff binary"
        websocket.send(large)
        assert websocket.recv(timeout=15) == large
        websocket.send("")
        assert websocket.recv(timeout=15) == ""


def test_no_subprotocol_when_none_is_offered(server: Server) -> None:
    with open_socket(server, "/ws/echo") as websocket:
        assert websocket.subprotocol is None
        websocket.send("ping")
        assert websocket.recv(timeout=15) == "ping"


def test_server_closes_with_a_code_and_reason(server: Server) -> None:
    with open_socket(server, "/ws/echo") as websocket:
        websocket.send("close")
        with pytest.raises(ConnectionClosed) as exc_info:
            websocket.recv(timeout=15)
    assert exc_info.value.rcvd is not None
    assert exc_info.value.rcvd.code == 4001
    assert exc_info.value.rcvd.reason == "bye"


def test_closing_before_accept_rejects_the_handshake(server: Server) -> None:
    with pytest.raises(InvalidStatus) as exc_info:
        open_socket(server, "/ws/reject")
    assert exc_info.value.response.status_code == 403


def test_unknown_path_rejects_the_handshake(server: Server) -> None:
    with pytest.raises(InvalidStatus) as exc_info:
        open_socket(server, "/ws/nowhere")
    assert exc_info.value.response.status_code == 403


def test_path_and_query_parameters(server: Server) -> None:
    with open_socket(server, "/ws/hello/ad%C3%A9le?room=1&room=2&x=%20y") as websocket:
        message = json.loads(websocket.recv(timeout=15))
        with pytest.raises(ConnectionClosed) as exc_info:
            websocket.recv(timeout=15)
    assert message == {"name": "adéle", "query": {"room": "2", "x": " y"}}
    assert exc_info.value.rcvd is not None
    assert exc_info.value.rcvd.code == 1000
