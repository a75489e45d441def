"""The application's share of the concurrency model: its thread limiter and task lifetime.

``Stellate`` keeps both here so that ``applications.py`` stays about composition:

* :class:`LoopLimiter` is the ``CapacityLimiter`` of ``Stellate(thread_limit=...)``. A
  limiter belongs to one event loop (its waiters are that loop's primitives), while an
  application object may serve several loops in turn (a test suite running it on
  asyncio then on trio), so there is one limiter per running loop, the latest one kept.
* :func:`serve_lifespan` runs the lifespan protocol inside the supervisor's task group
  (``app.tasks``), so the application's lifespan is the owner of every supervised task,
  and drains the supervisor when ``lifespan.shutdown`` arrives: before the user's
  lifespan exits, while the resources it set up are still there for the tasks to finish.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

from stellate.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from stellate.background import TaskSupervisor

__all__ = ["LoopLimiter", "serve_lifespan"]


class LoopLimiter:
    """A capacity limiter of ``total_tokens`` threads, one per running event loop."""

    __slots__ = ("_limiter", "_loop", "total_tokens")

    def __init__(self, total_tokens: int) -> None:
        if isinstance(total_tokens, bool) or not isinstance(total_tokens, int):
            raise TypeError(f"thread_limit must be an int or None, not {total_tokens!r}")
        if total_tokens < 1:
            raise ValueError(f"thread_limit must be at least 1, not {total_tokens!r}")
        self.total_tokens = total_tokens
        self._loop: Any = None
        self._limiter: anyio.CapacityLimiter | None = None

    def get(self) -> anyio.CapacityLimiter:
        """The limiter of the running event loop, created on first use in that loop."""
        loop = anyio.lowlevel.current_token().native_token
        if self._limiter is None or loop is not self._loop:
            self._limiter = anyio.CapacityLimiter(self.total_tokens)
            self._loop = loop
        return self._limiter


async def serve_lifespan(
    tasks: TaskSupervisor, app: ASGIApp, scope: Scope, receive: Receive, send: Send
) -> None:
    """Run ``app``'s lifespan with the supervisor open around it, draining it at shutdown."""

    async def receive_then_drain() -> Message:
        message = await receive()
        if message.get("type") == "lifespan.shutdown":
            await tasks._drain()
        return message

    async with tasks._lifetime():
        await app(scope, receive_then_drain, send)
