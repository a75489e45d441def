"""A chat room: every message a member sends is broadcast to every member.

Run it with ``scripts/serve chat:app`` (hypercorn on trio), or ``uvicorn chat:app`` from
``examples/``, open http://127.0.0.1:8000/?name=ann and http://127.0.0.1:8000/?name=bob in
two browser tabs, and talk to yourself.

Each connection runs two loops side by side in an anyio task group:

* the *receive loop* reads the member's messages and broadcasts them to the room;
* the *send loop* forwards what the room says to the member.

Whichever loop ends first cancels the other: when the member leaves, its send loop is
cancelled at once, and when the room drops a member that reads too slowly, its receive
loop is cancelled and the connection is closed. The room itself is plain data (one memory
object stream per member); it starts no task, so nothing outlives the sessions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from stellate import status
from stellate.applications import Stellate
from stellate.requests import Request
from stellate.responses import HTMLResponse
from stellate.routing import Route, WebSocketRoute
from stellate.websockets import (
    WebSocket,
    WebSocketDecodeError,
    WebSocketDisconnect,
    WebSocketDisconnected,
    WebSocketState,
)

#: How a loop asks for the connection to be closed: (close code, reason).
Close = tuple[int, str]


class ChatRoom:
    """The members of a room, each with an inbox of messages waiting to be sent to it."""

    def __init__(self, backlog: int = 64) -> None:
        self.backlog = backlog
        self._inboxes: set[MemoryObjectSendStream[str]] = set()

    def __len__(self) -> int:
        return len(self._inboxes)

    @asynccontextmanager
    async def join(self) -> AsyncIterator[MemoryObjectReceiveStream[str]]:
        """Be a member for the duration of the block; yields the member's inbox."""
        sender, inbox = anyio.create_memory_object_stream[str](self.backlog)
        self._inboxes.add(sender)
        try:
            with inbox:
                yield inbox
        finally:
            self._inboxes.discard(sender)
            sender.close()

    def broadcast(self, message: str) -> None:
        """Put ``message`` in every member's inbox, without ever waiting.

        A member whose inbox is full reads slower than the room talks: it is dropped
        rather than allowed to hold everyone up. Closing its inbox ends its send loop.
        """
        for inbox in list(self._inboxes):
            try:
                inbox.send_nowait(message)
            except anyio.WouldBlock:
                self._inboxes.discard(inbox)
                inbox.close()

    async def serve(self, websocket: WebSocket) -> None:
        """One member's session: its receive loop and its send loop, side by side."""
        name = websocket.query_params.get("name", "anonymous")
        ended: list[Close] = []
        # Join before accepting, so that a client whose handshake has completed is sure
        # to get every message broadcast after it.
        async with self.join() as inbox:
            await websocket.accept()
            async with anyio.create_task_group() as tg:

                async def run(loop: Callable[[], Awaitable[Close]]) -> None:
                    ended.append(await loop())
                    tg.cancel_scope.cancel()  # one side is done: cancel the other

                tg.start_soon(run, partial(self.receive_loop, websocket, name))
                tg.start_soon(run, partial(self.send_loop, websocket, inbox))
        # Both loops have ended; close unless the client has already gone.
        if websocket.client_state is WebSocketState.CONNECTED:
            code, reason = ended[0]
            await websocket.close(code=code, reason=reason)

    async def receive_loop(self, websocket: WebSocket, name: str) -> Close:
        """Broadcast the member's text messages until it leaves."""
        try:
            async for text in websocket.iter_text():
                self.broadcast(f"{name}: {text}")
        except WebSocketDecodeError as exc:
            # A binary frame in a text chat: close with 1003 (unsupported data).
            return exc.code, exc.reason
        return status.WS_1000_NORMAL_CLOSURE, ""

    async def send_loop(self, websocket: WebSocket, inbox: MemoryObjectReceiveStream[str]) -> Close:
        """Forward the room's messages to the member until the room drops it."""
        try:
            async for message in inbox:
                await websocket.send_text(message)
        except (WebSocketDisconnect, WebSocketDisconnected):
            # The connection was lost while sending (WebSocketDisconnect, code 1006), or
            # the receive loop had just seen the client leave (WebSocketDisconnected).
            return status.WS_1000_NORMAL_CLOSURE, ""
        return status.WS_1008_POLICY_VIOLATION, "too slow"


PAGE = """<!doctype html>
<title>stellate chat</title>
<ul id="log"></ul>
<form id="say"><input id="text" autocomplete="off" autofocus><button>Send</button></form>
<script>
  const name = new URLSearchParams(location.search).get("name") || "anonymous";
  const ws = new WebSocket(`ws://${location.host}/ws?name=${encodeURIComponent(name)}`);
  ws.onmessage = (event) => {
    const item = document.createElement("li");
    item.textContent = event.data;
    document.getElementById("log").append(item);
  };
  document.getElementById("say").onsubmit = (event) => {
    event.preventDefault();
    const input = document.getElementById("text");
    ws.send(input.value);
    input.value = "";
  };
</script>
"""


async def homepage(request: Request) -> HTMLResponse:
    return HTMLResponse(PAGE)


def create_app(room: ChatRoom | None = None) -> Stellate:
    """The chat application, around ``room`` (a new, empty room by default)."""
    chat_room = ChatRoom() if room is None else room
    return Stellate(
        routes=[
            Route("/", homepage),
            WebSocketRoute("/ws", chat_room.serve),
        ]
    )


app = create_app()
