"""Work to run after a response has been sent."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ParamSpec

from stellate._concurrency import is_async_callable, run_sync

__all__ = ["BackgroundTask", "BackgroundTasks"]

P = ParamSpec("P")


class BackgroundTask:
    """A call to make once the response is sent; sync functions run in a worker thread."""

    def __init__(self, func: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> None:
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.is_async = is_async_callable(func)

    async def __call__(self) -> None:
        if self.is_async:
            await self.func(*self.args, **self.kwargs)
        else:
            await run_sync(self.func, *self.args, **self.kwargs)


class BackgroundTasks(BackgroundTask):
    """Several background tasks, run one after another in the order they were added.

    If one raises, the ones after it do not run and the error propagates.
    """

    def __init__(self, tasks: Sequence[BackgroundTask] | None = None):
        self.tasks = list(tasks) if tasks else []

    def add_task(self, func: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> None:
        self.tasks.append(BackgroundTask(func, *args, **kwargs))

    async def __call__(self) -> None:
        for task in self.tasks:
            await task()
