"""Work to run after a response has been sent, and work that outlives the request.

:class:`BackgroundTask` runs once the response's last byte is sent, inside the request.
:class:`TaskSupervisor` (``app.tasks``) runs work that outlives the request but not the
application: its task group is the lifespan's, so nothing it starts is fire-and-forget.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import math
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, ParamSpec

import anyio
import anyio.abc
import anyio.from_thread
import anyio.lowlevel
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
    "(with TestClient(app) as client: ...). An application mounted inside another one "
    "uses the outer application's app.tasks: run the outer application's lifespan"
)


class TaskSupervisor:
    """The application's supervised tasks: work that outlives a request, not the app.

    Its task group is opened when the lifespan starts and closed when it ends. On
    shutdown it refuses new tasks, gives the running ones ``shutdown_timeout`` seconds to
    finish, then cancels the rest, logging (``stellate.tasks``) the name of each task it
    had to cancel, and waits for them to unwind; only then does the application's
    lifespan exit, so tasks never outlive the resources it set up. A task that raises is
    logged with its name and traceback; the others and the application carry on.

    Sync functions run in a thread of their own, under the application's limiter. A
    thread cannot be cancelled: one still running at the shutdown deadline is abandoned
    (logged by name), so it does not hold the shutdown or the process's exit (the thread
    is a daemon). :meth:`start_soon` may be called from a worker thread (a sync endpoint
    or dependency): the task is started on the event loop's thread.
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
        # The supervisor of the application this one was last mounted in: a mounted
        # application's own lifespan never runs, so it starts its tasks there.
        self._outer: TaskSupervisor | None = None
        # The event loop's thread and token, so start_soon works from worker threads.
        self._loop_thread: int | None = None
        self._token: anyio.lowlevel.EventLoopToken | None = None

    @property
    def pending(self) -> list[str]:
        """The names of the tasks still running, in the order they were started."""
        return [name for name, _ in self._running.values()]

    def start_soon(self, func: Callable[..., Any], *args: Any, name: str | None = None) -> None:
        """Start ``func(*args)`` in the application's task group and return at once."""
        if self._group is None and self._outer is not None:
            self._outer.start_soon(func, *args, name=name)
            return
        if self._token is not None and threading.get_ident() != self._loop_thread:
            # From a worker thread (a sync endpoint): start it on the loop's thread.
            start = functools.partial(self.start_soon, func, *args, name=name)
            anyio.from_thread.run_sync(start, token=self._token)
            return
        group = self._open_group()
        key, label = self._register(func, name)
        group.start_soon(self._run, key, func, args, name=label)

    async def start(self, func: Callable[..., Any], *args: Any, name: str | None = None) -> Any:
        """Start ``func(*args, task_status=...)`` and wait until it reports readiness.

        Returns the value given to ``task_status.started()``. An error raised before
        that reaches the caller; one raised after it is logged like any other.
        """
        if self._group is None and self._outer is not None:
            return await self._outer.start(func, *args, name=name)
        group = self._open_group()
        if not is_async_callable(func):
            raise TypeError(f"start() needs an async function taking task_status, not {func!r}")
        key, label = self._register(func, name)
        return await group.start(self._run_started, key, func, args, name=label)

    def _mounted_in(self, outer: TaskSupervisor) -> None:
        """This application serves a request for ``outer``'s: borrow its lifespan."""
        if outer is not self:
            self._outer = outer

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
                    await self._run_in_thread(name, func, args)
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

    async def _run_in_thread(
        self, name: str, func: Callable[..., Any], args: tuple[Any, ...]
    ) -> None:
        """Run a sync task in a daemon thread; if cancelled, abandon it and say so.

        Not anyio's worker threads: on asyncio they are not daemons, so a task blocked
        past the shutdown deadline would keep the process from exiting after the
        lifespan ended. The thread holds one of the limiter's tokens while it is waited
        for, as a worker thread would.
        """
        done = anyio.Event()
        outcome: list[BaseException] = []
        token = anyio.lowlevel.current_token()
        context = contextvars.copy_context()

        def work() -> None:
            try:
                context.run(func, *args)
            except BaseException as exc:  # handed to the waiting task, which raises it
                outcome.append(exc)
            try:
                anyio.from_thread.run_sync(done.set, token=token)
            except RuntimeError:
                pass  # the event loop has ended: nobody is waiting any more

        limiter = self._limiter or anyio.to_thread.current_default_thread_limiter()
        async with limiter:
            thread = threading.Thread(target=work, name=f"stellate task {name}", daemon=True)
            thread.start()
            try:
                await done.wait()
            except anyio.get_cancelled_exc_class():
                logger.warning(
                    "abandoning supervised task %r: its thread is still running at shutdown",
                    name,
                )
                raise
        if outcome:
            raise outcome[0]

    @asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[None]:
        """Open the task group for the lifespan; on the way out, cancel what is left."""
        if self._group is not None:
            raise RuntimeError("this application's lifespan is already running")
        self._limiter = current_limiter.get()
        self._loop_thread = threading.get_ident()
        self._token = anyio.lowlevel.current_token()
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
            self._token = self._loop_thread = None
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
