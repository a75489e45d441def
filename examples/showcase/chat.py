"""The chat room: every message a member sends reaches every member, as JSON.

The same shape as ``examples/chat.py``, grown a little for a real page: members are
named by their login (or a ``?name=`` of their choosing), messages are JSON objects
(``{"type": "message", "user": ..., "text": ...}``, and ``{"type": "presence", ...}``
when someone joins or leaves), and a newcomer first gets a ``welcome`` (it is now a
member: nothing said from here on can pass it by), then the last few messages.

Each connection runs two loops side by side in an anyio task group: the receive loop
reads what the member says and broadcasts it; the send loop forwards what the room says
to the member. Whichever ends first cancels the other: a member who leaves has its send
loop cancelled at once; a member too slow to read is dropped by the room, which ends its
send loop, which cancels its receive loop and closes the connection. The room starts no
task of its own, so nothing outlives the sessions.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from stellate import status
from stellate.websockets import (
    WebSocket,
    WebSocketDecodeError,
    WebSocketDisconnect,
    WebSocketDisconnected,
    WebSocketState,
)

#: How a loop asks for the connection to be closed: (close code, reason).
Close = tuple[int, str]

#: Longest message or name kept; the rest is cut off rather than refused.
MAX_TEXT = 500
MAX_NAME = 24


def member_name(websocket: WebSocket) -> str:
    """The logged-in user's name, else the ``?name=`` the page chose, else "guest"."""
    user = websocket.scope.get("user")
    if user is not None and user.is_authenticated:
        return str(user.display_name)[:MAX_NAME]
    name = websocket.query_params.get("name", "").strip()
    return name[:MAX_NAME] or "guest"


class ChatRoom:
    """The members of a room, each with an inbox of JSON messages waiting to be sent."""

    def __init__(self, backlog: int = 64, history: int = 20) -> None:
        self.backlog = backlog
        self._inboxes: set[MemoryObjectSendStream[str]] = set()
        self._history: deque[str] = deque(maxlen=history)

    def __len__(self) -> int:
        return len(self._inboxes)

    @asynccontextmanager
    async def join(self, name: str) -> AsyncIterator[MemoryObjectReceiveStream[str]]:
        """Be a member for the duration of the block; yields the member's inbox."""
        capacity = self.backlog + len(self._history) + 1
        sender, inbox = anyio.create_memory_object_stream[str](capacity)
        self._inboxes.add(sender)
        sender.send_nowait(_dump({"type": "welcome", "user": name, "members": len(self)}))
        for message in self._history:
            sender.send_nowait(message)
        self._announce(name, "joined")
        try:
            with inbox:
                yield inbox
        finally:
            self._inboxes.discard(sender)
            sender.close()
            self._announce(name, "left")

    def say(self, user: str, text: str) -> None:
        """Broadcast a member's message (and keep it for those who join later)."""
        message = _dump({"type": "message", "user": user, "text": text[:MAX_TEXT]})
        self._history.append(message)
        self._broadcast(message)

    def _announce(self, name: str, what: str) -> None:
        presence = {"type": "presence", "user": name, "event": what, "members": len(self)}
        self._broadcast(_dump(presence))

    def _broadcast(self, message: str) -> None:
        """Put ``message`` in every inbox without waiting; drop members who lag behind."""
        for inbox in list(self._inboxes):
            try:
                inbox.send_nowait(message)
            except anyio.WouldBlock:
                self._inboxes.discard(inbox)
                inbox.close()

    async def serve(self, websocket: WebSocket) -> None:
        """One member's session: its receive loop and its send loop, side by side."""
        name = member_name(websocket)
        ended: list[Close] = []
        # Accept first (so a refused handshake never counts as a member), then join
        # before any message can be read from this member.
        await websocket.accept()
        async with self.join(name) as inbox, anyio.create_task_group() as tg:

            async def run(loop: Callable[[], Awaitable[Close]]) -> None:
                ended.append(await loop())
                tg.cancel_scope.cancel()  # one side is done: cancel the other

            tg.start_soon(run, partial(self.receive_loop, websocket, name))
            tg.start_soon(run, partial(self.send_loop, websocket, inbox))
        if websocket.client_state is WebSocketState.CONNECTED:
            code, reason = ended[0]
            await websocket.close(code=code, reason=reason)

    async def receive_loop(self, websocket: WebSocket, name: str) -> Close:
        """Broadcast the member's text messages until it leaves."""
        try:
            async for text in websocket.iter_text():
                if text.strip():
                    self.say(name, text)
        except WebSocketDecodeError as exc:
            return exc.code, exc.reason  # a binary frame: 1003, unsupported data
        return status.WS_1000_NORMAL_CLOSURE, ""

    async def send_loop(self, websocket: WebSocket, inbox: MemoryObjectReceiveStream[str]) -> Close:
        """Forward the room's messages to the member until the room drops it."""
        try:
            async for message in inbox:
                await websocket.send_text(message)
        except (WebSocketDisconnect, WebSocketDisconnected):
            return status.WS_1000_NORMAL_CLOSURE, ""
        return status.WS_1008_POLICY_VIOLATION, "too slow"


def _dump(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))
