"""The live feed: what happens in the showcase, as a stream of numbered events.

Anything may :meth:`Feed.publish` an event (a note was added, a file was uploaded, a
supervised task finished its work, the heartbeat ticked). Each subscriber (one per
``/events`` connection) gets its own small inbox, a memory object stream; publishing
never waits, and a subscriber whose inbox is full is dropped (its stream ends, the
browser's EventSource reconnects and catches up with ``Last-Event-ID``).

The feed keeps the last events so that a new subscriber starts with some context and
a reconnecting one resumes where it stopped. Like the chat room it starts no task:
the tasks are the connections', owned by their requests.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream


@dataclass(frozen=True)
class FeedEvent:
    """One thing that happened: ``kind`` names it for the client, ``text`` describes it."""

    id: int
    kind: str
    text: str
    at: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class Feed:
    """Numbered events, the last ``history`` of them kept, fanned out to subscribers."""

    def __init__(self, history: int = 50, backlog: int = 32) -> None:
        self.backlog = backlog
        self._history: deque[FeedEvent] = deque(maxlen=history)
        self._subscribers: set[MemoryObjectSendStream[FeedEvent]] = set()
        self._last_id = 0

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def last_id(self) -> int:
        """The id of the latest event (0 before the first)."""
        return self._last_id

    def recent(self, after: int = 0) -> list[FeedEvent]:
        """The kept events whose id is greater than ``after``, oldest first."""
        return [event for event in self._history if event.id > after]

    def publish(self, kind: str, text: str) -> FeedEvent:
        """Record an event and hand it to every subscriber, without ever waiting."""
        self._last_id += 1
        event = FeedEvent(self._last_id, kind, text, time.time())
        self._history.append(event)
        for inbox in list(self._subscribers):
            try:
                inbox.send_nowait(event)
            except anyio.WouldBlock:
                # Too slow to keep up: drop it rather than slow down the publisher.
                self._subscribers.discard(inbox)
                inbox.close()
        return event

    @asynccontextmanager
    async def subscribe(self, after: int = 0) -> AsyncIterator[AsyncIterator[FeedEvent]]:
        """Subscribe for the duration of the block; yields the events after ``after``.

        The kept events come first, then the live ones. Registering the inbox and
        copying the kept events happen with no ``await`` between them, so no event can
        fall in the gap (missed) or be in both (repeated).
        """
        sender, inbox = anyio.create_memory_object_stream[FeedEvent](self.backlog)
        self._subscribers.add(sender)
        backlog = self.recent(after)
        try:
            with inbox:
                yield self._events(backlog, inbox)
        finally:
            self._subscribers.discard(sender)
            sender.close()

    @staticmethod
    async def _events(
        backlog: list[FeedEvent], inbox: MemoryObjectReceiveStream[FeedEvent]
    ) -> AsyncIterator[FeedEvent]:
        for event in backlog:
            yield event
        async for event in inbox:
            yield event
