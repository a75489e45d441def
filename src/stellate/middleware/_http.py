"""Small helpers shared by the middleware modules: raw header lookups and refusals.

Middleware runs on every request, so these read the raw ``scope["headers"]`` list directly
instead of building a ``Headers`` object that most requests would never use again.
"""

from __future__ import annotations

from stellate.responses import Response
from stellate.types import Receive, Scope, Send
from stellate.websockets import WebSocketClose

__all__ = ["header_values", "send_refusal"]


def header_values(scope: Scope, name: bytes) -> list[bytes]:
    """Every value of the request header ``name`` (lower-case bytes), in order."""
    return [value for key, value in scope.get("headers") or () if key.lower() == name]


async def send_refusal(
    response: Response, scope: Scope, receive: Receive, send: Send, close_code: int = 1008
) -> None:
    """Answer ``scope`` with ``response``; a WebSocket handshake gets it as a denial response.

    A server without the ``websocket.http.response`` extension cannot carry an HTTP
    response over a WebSocket scope, so the handshake is refused with a close instead
    (servers turn that into a 403).
    """
    if scope["type"] == "websocket" and "websocket.http.response" not in scope.get(
        "extensions", {}
    ):
        await WebSocketClose(code=close_code)(scope, receive, send)
        return
    await response(scope, receive, send)
