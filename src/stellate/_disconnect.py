"""One receive multiplexer per HTTP connection, so disconnects can be watched (DESIGN §3.5).

An ASGI ``receive`` callable hands out each message once, to whoever asks first. A
handler that is reading its body and a watcher that waits for ``http.disconnect`` would
therefore steal messages from each other, and a watcher could only be added once the
handler stopped reading. :class:`ReceiveMultiplexer` sits between the server and the
application and makes both possible at once:

* it is the only caller of the server's ``receive``, and at most one of its users is
  inside that call at a time (the *reader*); everyone else waits for what the reader
  brings;
* body messages go into a buffer that :meth:`ReceiveMultiplexer.receive` hands out in
  order, so the application reads its body exactly as it was sent;
* ``http.disconnect`` is remembered: once it is seen, every later ``receive`` returns it
  at once, and :meth:`ReceiveMultiplexer.wait_disconnected` returns for every watcher.

A watcher reads ahead of the handler to see the disconnect, but never more than
:data:`READ_AHEAD_LIMIT` bytes of body: beyond that it waits for the handler to catch up,
so an application that never reads a large body does not get it buffered in memory.

``Stellate`` installs the multiplexer for every HTTP request and publishes it in the
request context (see :func:`get_multiplexer`), so route-level watchers,
``Request.is_disconnected`` and middleware all share the same view of the connection,
whatever wrapping of ``receive`` sits between them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio

from stellate._context import get_context
from stellate.types import Message, Receive, Scope

__all__ = [
    "READ_AHEAD_LIMIT",
    "ReceiveMultiplexer",
    "disconnect_receive",
    "get_multiplexer",
    "poll",
]

#: How many bytes of unread body a watcher may buffer while waiting for a disconnect.
READ_AHEAD_LIMIT = 1024 * 1024


def get_multiplexer(scope: Scope) -> ReceiveMultiplexer | None:
    """The multiplexer of the connection ``scope`` belongs to, if the app installed one."""
    context = get_context(scope)
    return None if context is None else context.receive


def disconnect_receive(scope: Scope, receive: Receive) -> Receive:
    """The ``receive`` a response's disconnect listener should use.

    A listener only wants ``http.disconnect``. Calling the application's ``receive``
    would hand it body messages meant for the endpoint (a response streaming the request
    body back would lose them and hang), and would count them against a body-size limit
    that the application, having already answered, cannot honour any more. Inside a
    stellate application the listener waits on the connection's multiplexer instead,
    which leaves the body to the endpoint; elsewhere it has nothing better than
    ``receive``.
    """
    mux = get_multiplexer(scope)
    if mux is None:
        return receive

    async def wait_for_disconnect() -> Message:
        await mux.wait_disconnected()
        return {"type": "http.disconnect"}

    return wait_for_disconnect


async def _cancel_after_one_round(scope: anyio.CancelScope) -> None:
    await anyio.lowlevel.checkpoint()
    scope.cancel()


async def poll(receive: Receive) -> Message | None:
    """A message that ``receive`` has ready now, or None if it would have to wait.

    Calling ``receive`` in an already-cancelled scope is not enough: trio (and any
    backend whose ``receive`` checks for cancellation first) raises before looking at
    what is ready. Instead ``receive`` gets one scheduling round: a sibling task cancels
    it after its own checkpoint, by which time a ready message has been returned and a
    missing one is being waited for (and that wait is what gets cancelled).
    """
    message: Message | None = None
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as group:
            group.start_soon(_cancel_after_one_round, scope)
            message = await receive()
            group.cancel_scope.cancel()
    return message


class ReceiveMultiplexer:
    """Shares one connection's ``receive`` between the application and disconnect watchers.

    Use :meth:`receive` as the application's ``receive``; use :meth:`wait_disconnected`
    (or :attr:`disconnected`) to learn that the client has gone.
    """

    __slots__ = (
        "_buffer",
        "_buffered",
        "_changed",
        "_disconnect",
        "_holds",
        "_reading",
        "_receive",
    )

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        # Created on demand, like _changed: a lone reader never buffers anything.
        self._buffer: deque[Message] | None = None
        self._buffered = 0
        self._reading = False
        self._disconnect: Message | None = None
        self._holds = 0
        # Created on demand: most requests never have two readers.
        self._changed: anyio.Event | None = None

    @property
    def disconnected(self) -> bool:
        """Whether ``http.disconnect`` has been seen (it may still be behind unread body)."""
        return self._disconnect is not None

    async def receive(self) -> Message:
        """The next message for the application: buffered body first, then what comes."""
        if not (self._buffer or self._reading or self._disconnect is not None):
            # The common case, a lone reader: straight through, nothing buffered.
            self._reading = True
            try:
                message = await self._receive()
            finally:
                self._reading = False
                self._notify()
            if message.get("type") != "http.disconnect":
                return message
            self._disconnect = message
        while True:
            if self._buffer:
                return self._take()
            if self._disconnect is not None and not self._holds:
                return self._disconnect
            if self._reading or self._disconnect is not None:
                await self._wait_for_change()
            else:
                await self._read_one()

    @contextmanager
    def holding_disconnect(self) -> Iterator[None]:
        """Keep ``http.disconnect`` from the application while the block runs.

        A watcher that cancels the handler on disconnect holds it back, so the handler
        experiences the disconnect as its cancellation, and never first as a
        ``ClientDisconnect`` raised from a body read that happened to see it first.
        """
        self._holds += 1
        try:
            yield
        finally:
            self._holds -= 1
            self._notify()

    async def wait_disconnected(self) -> None:
        """Return once the client has disconnected, reading ahead of the application."""
        while self._disconnect is None:
            if self._reading or self._buffered >= READ_AHEAD_LIMIT:
                await self._wait_for_change()
            else:
                await self._read_one()

    async def is_disconnected(self) -> bool:
        """Whether the client has gone, looking at what the server has ready without waiting."""
        if self._disconnect is None and not self._reading:
            self._reading = True
            try:
                message = await poll(self._receive)
                if message is not None:
                    self._file(message)
            finally:
                self._reading = False
                self._notify()
        return self._disconnect is not None

    def _take(self) -> Message:
        assert self._buffer is not None
        message = self._buffer.popleft()
        self._buffered -= len(message.get("body", b""))
        self._notify()
        return message

    async def _read_one(self) -> None:
        # Only the reader awaits the server; a cancelled read loses nothing, because a
        # receive that is cancelled has not returned a message.
        self._reading = True
        try:
            message = await self._receive()
            self._file(message)
        finally:
            self._reading = False
            self._notify()

    def _file(self, message: Message) -> None:
        if message.get("type") == "http.disconnect":
            self._disconnect = message
        else:
            if self._buffer is None:
                self._buffer = deque()
            self._buffer.append(message)
            self._buffered += len(message.get("body", b""))

    async def _wait_for_change(self) -> None:
        if self._changed is None:
            self._changed = anyio.Event()
        await self._changed.wait()

    def _notify(self) -> None:
        changed = self._changed
        if changed is not None:
            self._changed = None
            changed.set()

    def __repr__(self) -> str:
        state: dict[str, Any] = {
            "buffered": len(self._buffer or ()),
            "disconnected": self.disconnected,
        }
        return f"{type(self).__name__}({state})"
