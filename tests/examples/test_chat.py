"""The chat-room example: broadcast to every member, loops cancelled cleanly, on both backends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream
from examples.chat import ChatRoom, Close, app, create_app

from stellate.testing.client import AsyncTestClient
from stellate.websockets import WebSocket, WebSocketDisconnect

pytestmark = pytest.mark.anyio


class ObservedRoom(ChatRoom):
    """Records how each member's loops ended: returned (with what) or cancelled."""

    def __init__(self, backlog: int = 64) -> None:
        super().__init__(backlog)
        self.receive_ended: dict[str, Close] = {}
        self.send_ended: dict[str, Close] = {}
        self.send_cancelled: dict[str, anyio.Event] = {}
        self.receive_cancelled: dict[str, anyio.Event] = {}
        self.cancelled: set[tuple[str, str]] = set()  # (name, "send" or "receive")

    def events_for(self, name: str) -> None:
        self.send_cancelled[name] = anyio.Event()
        self.receive_cancelled[name] = anyio.Event()

    async def receive_loop(self, websocket: WebSocket, name: str) -> Close:
        try:
            self.receive_ended[name] = await super().receive_loop(websocket, name)
        except anyio.get_cancelled_exc_class():
            self.cancelled.add((name, "receive"))
            if name in self.receive_cancelled:
                self.receive_cancelled[name].set()
            raise
        return self.receive_ended[name]

    async def send_loop(self, websocket: WebSocket, inbox: MemoryObjectReceiveStream[str]) -> Close:
        name = websocket.query_params["name"]
        try:
            self.send_ended[name] = await super().send_loop(websocket, inbox)
        except anyio.get_cancelled_exc_class():
            self.cancelled.add((name, "send"))
            if name in self.send_cancelled:
                self.send_cancelled[name].set()
            raise
        return self.send_ended[name]


async def test_a_message_reaches_every_member_and_leaving_cancels_the_send_loop() -> None:
    room = ObservedRoom()
    room.events_for("ann")
    room.events_for("bob")
    with anyio.fail_after(5):
        async with (
            AsyncTestClient(create_app(room)) as client,
            client.websocket_connect("/ws?name=ann") as ann,
        ):
            async with client.websocket_connect("/ws?name=bob") as bob:
                assert len(room) == 2
                await ann.send_text("hello")
                assert await ann.receive_text() == "ann: hello"
                assert await bob.receive_text() == "ann: hello"
                await bob.send_text("hi ann")
                assert await ann.receive_text() == "bob: hi ann"
                assert await bob.receive_text() == "bob: hi ann"
                await bob.close()
                # Bob's receive loop saw the disconnect and returned; that cancelled his
                # send loop, which was waiting for the room to speak.
                await room.send_cancelled["bob"].wait()
            assert room.receive_ended["bob"] == (1000, "")
            assert not room.receive_cancelled["bob"].is_set()
            assert "bob" not in room.send_ended
            assert len(room) == 1
            # The room goes on without him.
            await ann.send_text("still here?")
            assert await ann.receive_text() == "ann: still here?"
        # Leaving the block disconnected Ann the same way.
        await room.send_cancelled["ann"].wait()
        assert room.receive_ended["ann"] == (1000, "")
    assert len(room) == 0


def test_chat_through_the_sync_test_client(test_client_factory: Callable[..., Any]) -> None:
    room = ObservedRoom()
    # One portal (one event loop) for both sessions: they share the room's streams.
    with (
        test_client_factory(create_app(room)) as client,
        client.websocket_connect("/ws?name=ann") as ann,
    ):
        with client.websocket_connect("/ws?name=bob") as bob:
            bob.send_text("hey")
            assert ann.receive_text() == "bob: hey"
            assert bob.receive_text() == "bob: hey"
        # Leaving the block waited for Bob's session to end: his receive loop returned
        # and his send loop was cancelled, nothing else.
        assert room.cancelled == {("bob", "send")}
        assert room.receive_ended == {"bob": (1000, "")}
        assert len(room) == 1
        ann.send_text("alone")
        assert ann.receive_text() == "ann: alone"
    assert room.cancelled == {("bob", "send"), ("ann", "send")}
    assert len(room) == 0


async def test_a_member_that_reads_too_slowly_is_dropped_and_closed() -> None:
    room = ObservedRoom(backlog=0)
    room.events_for("bob")
    with anyio.fail_after(5):
        async with (
            AsyncTestClient(create_app(room)) as client,
            client.websocket_connect("/ws?name=bob") as bob,
        ):
            # Bob's send loop is waiting for the room: the first message goes straight to
            # it; the second finds no room in his inbox (a backlog of 0), so he is dropped.
            await anyio.wait_all_tasks_blocked()
            room.broadcast("first")
            room.broadcast("second")
            assert len(room) == 0
            assert await bob.receive_text() == "first"
            with pytest.raises(WebSocketDisconnect) as info:
                await bob.receive_text()
            assert (info.value.code, info.value.reason) == (1008, "too slow")
            await room.receive_cancelled["bob"].wait()
            assert room.send_ended["bob"] == (1008, "too slow")


async def test_a_binary_frame_closes_with_unsupported_data() -> None:
    room = ObservedRoom()
    room.events_for("eve")
    with anyio.fail_after(5):
        async with (
            AsyncTestClient(create_app(room)) as client,
            client.websocket_connect("/ws?name=eve") as eve,
        ):
            await eve.send_bytes(b"\x00\x01")
            with pytest.raises(WebSocketDisconnect) as info:
                await eve.receive_text()
            assert info.value.code == 1003
            assert info.value.reason == "Expected a text frame, received a binary frame"
            await room.send_cancelled["eve"].wait()


async def test_broadcast_never_waits_for_a_full_inbox() -> None:
    room = ChatRoom(backlog=1)
    async with room.join() as fast, room.join() as slow:
        room.broadcast("one")
        assert fast.receive_nowait() == "one"
        room.broadcast("two")  # slow still holds "one": it is dropped
        assert len(room) == 1
        assert fast.receive_nowait() == "two"
        # The dropped member's inbox still delivers what it had, then ends.
        assert [message async for message in slow] == ["one"]
    assert len(room) == 0


async def test_the_page_connects_to_the_chat() -> None:
    async with AsyncTestClient(app) as client:
        response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "new WebSocket(`ws://${location.host}/ws?name=" in response.text
