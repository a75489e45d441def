"""Public helpers for running blocking code from async code without stalling the event loop.

All of them offload through the limiter of the application serving the current request,
so ``Stellate(thread_limit=...)`` bounds them too.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, ParamSpec, TypeVar

import anyio

from stellate._concurrency import iterate_in_threads, run_sync
from stellate.exceptions import StellateDeprecationWarning

__all__ = ["iterate_in_threadpool", "run_in_threadpool", "run_until_first_complete"]

P = ParamSpec("P")
T = TypeVar("T")


async def run_in_threadpool(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Call ``func(*args, **kwargs)`` in a worker thread and return its result."""
    return await run_sync(func, *args, **kwargs)


def iterate_in_threadpool(iterator: Iterable[T]) -> AsyncIterator[T]:
    """Iterate a blocking iterable asynchronously, each ``next()`` in a worker thread."""
    return iterate_in_threads(iterator)


_AsyncCall = tuple[Callable[..., Awaitable[Any]], dict[str, Any]]


async def run_until_first_complete(*args: _AsyncCall) -> None:
    """Run coroutine functions side by side and cancel the rest when the first returns.

    Deprecated: open an anyio task group and cancel its scope yourself, which says
    exactly what is meant and lets you choose what to do with results.
    """
    warnings.warn(
        "run_until_first_complete is deprecated; use an anyio task group and cancel its "
        "cancel_scope when the first task finishes.",
        StellateDeprecationWarning,
        stacklevel=2,
    )
    async with anyio.create_task_group() as group:

        async def run_then_cancel(call: _AsyncCall) -> None:
            func, kwargs = call
            await func(**kwargs)
            group.cancel_scope.cancel()

        for call in args:
            group.start_soon(run_then_cancel, call)
