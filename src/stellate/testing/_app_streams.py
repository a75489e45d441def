"""The memory object streams between a test client and the task that runs an app.

The WebSocket channel and the lifespan driver talk to their app the same way: messages
queued to it, messages (and, for a WebSocket, its exception) queued back, and an app told
to stop given its chance to finish before it is cancelled. Those pieces live here, once,
so the two protocols share them without depending on each other.
"""

from __future__ import annotations

import contextlib
import math
from typing import Generic, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from stellate.types import Message

__all__ = ["AppStreams", "deliver", "wait_done_or_idle"]

_FromApp = TypeVar("_FromApp")


class AppStreams(Generic[_FromApp]):
    """The two memory object streams between a test client and an app's task.

    ``to_app`` to ``app_inbox`` carries messages to the app; ``app_outbox`` to ``from_app``
    carries what the app sends back, a ``_FromApp`` (a WebSocket channel also queues the
    app's exception behind its messages). Both are unbounded: a test sends a handful of
    messages, and an app may send several before the test reads them, as over a real
    socket. Written once, as a generic class, so both ends keep their element types.
    """

    __slots__ = ("app_inbox", "app_outbox", "from_app", "to_app")

    to_app: MemoryObjectSendStream[Message]
    app_inbox: MemoryObjectReceiveStream[Message]
    app_outbox: MemoryObjectSendStream[_FromApp]
    from_app: MemoryObjectReceiveStream[_FromApp]

    def __init__(self) -> None:
        self.to_app, self.app_inbox = anyio.create_memory_object_stream[Message](math.inf)
        self.app_outbox, self.from_app = anyio.create_memory_object_stream[_FromApp](math.inf)


async def deliver(stream: MemoryObjectSendStream[Message], message: Message) -> None:
    """Queue ``message`` for the app; dropped if the app has already ended, as by a server."""
    with contextlib.suppress(anyio.BrokenResourceError):
        await stream.send(message)


async def wait_done_or_idle(done: anyio.Event) -> None:
    """Wait until ``done`` is set or every other task is blocked, whichever comes first.

    Used before cancelling an app that was told to stop: it may still react (close its
    socket, run its ``finally`` blocks), and we want to cancel only what would otherwise
    wait forever, without guessing a delay.
    """

    async def watch(event: anyio.Event, scope: anyio.CancelScope) -> None:
        await event.wait()
        scope.cancel()

    async with anyio.create_task_group() as group:
        group.start_soon(watch, done, group.cancel_scope)
        await anyio.wait_all_tasks_blocked()
        group.cancel_scope.cancel()
