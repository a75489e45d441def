"""Work to run after a response has been sent, and work that outlives the request.

:class:`BackgroundTask` runs once the response's last byte is sent, inside the request.
:class:`TaskSupervisor` (``app.tasks``) runs work that outlives the request but not the
application: its task group is the lifespan's, so nothing it starts is fire-and-forget.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, ParamSpec

import anyio
import anyio.abc
import anyio.to_thread

from stellate._concurrency import (
    create_task_group,
    current_limiter,
    is_async_callable,
    run_sync,
    unwrap_callable,
)

__all__ = ["BackgroundTask", "BackgroundTasks", "TaskSupervisor"]

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


logger = logging.getLogger("stellate.tasks")

_NOT_RUNNING = (
    "app.tasks can only start tasks while the application's lifespan is running: the "
    "server runs it; in tests, use the TestClient as a context manager "
    "(with TestClient(app) as client: ...)"
)


class TaskSupervisor:
    """The application's supervised tasks: work that outlives a request, not the app.

    Its task group is opened when the lifespan starts and closed when it ends. On
    shutdown it refuses new tasks, gives the running ones ``shutdown_timeout`` seconds to
    finish, then cancels the rest, logging (``stellate.tasks``) the name of each task it
    had to cancel, and waits for them to unwind; only then does the application's
    lifespan exit, so tasks never outlive the resources it set up. A task that raises is
    logged with its name and traceback; the others and the application carry on. Sync
    functions run in a worker thread under the application's limiter.
    """

    def __init__(self, shutdown_timeout: float = 30.0) -> None:
        value = shutdown_timeout
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"shutdown_timeout must be a number of seconds, not {value!r}")
        if math.isnan(value) or value < 0:
            raise ValueError(f"shutdown_timeout must be zero or more seconds, not {value!r}")
        self.shutdown_timeout = float(shutdown_timeout)
        self._group: anyio.abc.TaskGroup | None = None
        self._accepting = False
        # Each task has its own cancel scope: cancelling the group's would also cancel
        # the lifespan, which runs in that group as its host.
        self._running: dict[int, tuple[str, anyio.CancelScope]] = {}
        self._next_id = 0
        self._idle: anyio.Event | None = None
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def pending(self) -> list[str]:
        """The names of the tasks still running, in the order they were started."""
        return [name for name, _ in self._running.values()]

    def start_soon(self, func: Callable[..., Any], *args: Any, name: str | None = None) -> None:
        """Start ``func(*args)`` in the application's task group and return at once."""
        group = self._open_group()
        key, label = self._register(func, name)
        group.start_soon(self._run, key, func, args, name=label)

    async def start(self, func: Callable[..., Any], *args: Any, name: str | None = None) -> Any:
        """Start ``func(*args, task_status=...)`` and wait until it reports readiness.

        Returns the value given to ``task_status.started()``. An error raised before
        that reaches the caller; one raised after it is logged like any other.
        """
        group = self._open_group()
        if not is_async_callable(func):
            raise TypeError(f"start() needs an async function taking task_status, not {func!r}")
        key, label = self._register(func, name)
        return await group.start(self._run_started, key, func, args, name=label)

    def _open_group(self) -> anyio.abc.TaskGroup:
        if self._group is None:
            raise RuntimeError(_NOT_RUNNING)
        if not self._accepting:
            raise RuntimeError("the application is shutting down: app.tasks accepts no new tasks")
        return self._group

    def _register(self, func: Callable[..., Any], name: str | None) -> tuple[int, str]:
        if name is None:
            target = unwrap_callable(func)
            name = str(getattr(target, "__qualname__", None) or repr(target))
        key = self._next_id
        self._next_id += 1
        self._running[key] = (name, anyio.CancelScope())
        return key, name

    def _finished(self, key: int) -> None:
        self._running.pop(key, None)
        if not self._running and self._idle is not None:
            self._idle.set()

    async def _run(self, key: int, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
        name, scope = self._running[key]
        try:
            with scope:
                if is_async_callable(func):
                    await func(*args)
                else:
                    await anyio.to_thread.run_sync(func, *args, limiter=self._limiter)
        except Exception:
            logger.exception("supervised task %r raised", name)
        finally:
            self._finished(key)

    async def _run_started(
        self,
        key: int,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        *,
        task_status: anyio.abc.TaskStatus[Any] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        name, scope = self._running[key]
        status = _Readiness(task_status)
        try:
            with scope:
                await func(*args, task_status=status)
        except Exception:
            if not status.reported:
                raise  # start() raises it in the caller.
            logger.exception("supervised task %r raised", name)
        finally:
            self._finished(key)

    @asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[None]:
        """Open the task group for the lifespan; on the way out, cancel what is left."""
        if self._group is not None:
            raise RuntimeError("this application's lifespan is already running")
        self._limiter = current_limiter.get()
        try:
            async with create_task_group() as group:
                self._group = group
                self._accepting = True
                try:
                    yield
                finally:
                    self._accepting = False
                    self._cancel_remaining()
        finally:
            self._group = None
            self._idle = None
            # Tasks cancelled before they ever ran never unregistered themselves.
            self._running.clear()

    async def _drain(self) -> None:
        """Refuse new tasks, wait up to ``shutdown_timeout``, cancel the stragglers."""
        self._accepting = False
        if not self._running:
            return
        self._idle = anyio.Event()
        with anyio.move_on_after(self.shutdown_timeout):
            await self._idle.wait()
        if self._running:
            self._cancel_remaining()
            await self._idle.wait()

    def _cancel_remaining(self) -> None:
        for name, scope in self._running.values():
            if not scope.cancel_called:
                logger.warning("cancelling supervised task %r: still running at shutdown", name)
                scope.cancel()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(pending={self.pending!r})"


class _Readiness:
    """Passes ``started()`` through, remembering that readiness was reported."""

    def __init__(self, status: anyio.abc.TaskStatus[Any]) -> None:
        self._status = status
        self.reported = False

    def started(self, value: Any = None) -> None:
        self.reported = True
        self._status.started(value)
