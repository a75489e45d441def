"""WebSocket cases: a session that echoes ten text, bytes or JSON messages, then closes.

One timed exchange is one whole session (connect, accept, ten echoes, the client's close)
through a whole application, so routing and the handshake count as well as the frames.
The harness's ``WebSocketExchange`` plays the client.
"""

from __future__ import annotations

import json
from typing import Any

from casekit import websocket_scope
from frameworks import Framework, per_framework
from harness import ACCEPTED, Case, Exchange, Message, Scope

ECHOES = 10


def _echo_app(kind: str) -> Any:
    def build(fw: Framework) -> Any:
        async def echo_text(websocket: Any) -> None:
            await websocket.accept()
            async for text in websocket.iter_text():
                await websocket.send_text(text)

        async def echo_bytes(websocket: Any) -> None:
            await websocket.accept()
            async for data in websocket.iter_bytes():
                await websocket.send_bytes(data)

        async def echo_json(websocket: Any) -> None:
            await websocket.accept()
            async for data in websocket.iter_json():
                await websocket.send_json(data)

        endpoint = {"text": echo_text, "bytes": echo_bytes, "json": echo_json}[kind]
        return fw.App(routes=[fw.WebSocketRoute("/ws", endpoint)])

    return build


async def _raw_echo(scope: Scope, receive: Any, send: Any) -> None:
    """The floor: accept, send each data frame straight back, stop at the disconnect."""
    message = await receive()
    assert message["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


def _raw_echo_json(scope: Scope, receive: Any, send: Any) -> Any:
    """JSON both ways, as a framework's receive_json/send_json do."""

    async def decoding_receive() -> Message:
        message: Message = await receive()
        if message["type"] == "websocket.receive":
            text = json.dumps(json.loads(message["text"]), separators=(",", ":"))
            return {"type": "websocket.receive", "text": text}
        return message

    return _raw_echo(scope, decoding_receive, send)


def _echoes(messages: list[Message], kind: str) -> Any:
    def check(exchange: Exchange) -> None:
        assert exchange.status == ACCEPTED
        sent = [m.get("bytes") if kind == "bytes" else m.get("text") for m in exchange.frames]
        if kind == "json":
            expected = [json.loads(m["text"]) for m in messages]
            assert [json.loads(s) for s in sent] == expected, sent
        else:
            assert sent == [m.get(kind) for m in messages], sent

    return check


def websocket_cases() -> list[Case]:
    payloads: dict[str, list[Message]] = {
        "text": [
            {"type": "websocket.receive", "text": f"message {n}: " + "héllo " * 10}
            for n in range(ECHOES)
        ],
        "bytes": [
            {"type": "websocket.receive", "bytes": bytes(range(n, n + 64))} for n in range(ECHOES)
        ],
        "json": [
            {
                "type": "websocket.receive",
                "text": json.dumps({"n": n, "user": "ada", "tags": ["a", "b"], "ok": True}),
            }
            for n in range(ECHOES)
        ],
    }
    return [
        Case(
            f"websocket: echo {ECHOES} {kind} messages",
            websocket_scope("/ws"),
            {
                "raw": _raw_echo_json if kind == "json" else _raw_echo,
                **per_framework(_echo_app(kind)),
            },
            messages=messages,
            expected_status=ACCEPTED,
            check=_echoes(messages, kind),
        )
        for kind, messages in payloads.items()
    ]
