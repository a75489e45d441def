"""The structured-concurrency primitives of stellate, kept in one place (DESIGN.md §3).

* Blocking work goes through :func:`run_sync`, which uses the capacity limiter of the
  application serving the current request (see :data:`current_limiter`), so one setting
  bounds every thread that stellate starts on an application's behalf.
* Task groups raise exception groups; stellate's own are made by :func:`create_task_group`,
  which turns its own group holding exactly one real error back into that error, so
  user exceptions reach exception handlers as themselves, while several errors are never
  collapsed into one and a group raised by the application is never taken apart.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from types import TracebackType
from typing import Any, ParamSpec, TypeGuard, TypeVar

import anyio
import anyio.abc
import anyio.to_thread

P = ParamSpec("P")
T = TypeVar("T")

#: The limiter of the application serving the current request, or None for anyio's default.
current_limiter: ContextVar[anyio.CapacityLimiter | None] = ContextVar(
    "stellate_current_limiter", default=None
)


def is_async_callable(obj: Any) -> TypeGuard[Callable[..., Awaitable[Any]]]:
    """True for coroutine functions, partials of them and objects with an async ``__call__``."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    if inspect.iscoroutinefunction(obj):
        return True
    dunder_call = inspect.getattr_static(type(obj), "__call__", None)
    return not inspect.isfunction(obj) and inspect.iscoroutinefunction(dunder_call)


async def run_sync(
    func: Callable[P, T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """Run a blocking callable in a worker thread under the current application's limiter."""
    call = functools.partial(func, *args, **kwargs)
    return await anyio.to_thread.run_sync(call, limiter=current_limiter.get())


class _StopIterationSentinel(Exception):
    """Stands in for StopIteration, which cannot cross a thread boundary inside a coroutine."""


def _next_or_sentinel(iterator: Iterator[T]) -> T:
    try:
        return next(iterator)
    except StopIteration:
        raise _StopIterationSentinel from None


async def iterate_in_threads(iterable: Iterable[T]) -> AsyncIterator[T]:
    """Iterate a blocking iterable, fetching each item in a worker thread."""
    iterator = iter(iterable)
    while True:
        try:
            yield await run_sync(_next_or_sentinel, iterator)
        except _StopIterationSentinel:
            return


def _is_cancellation(exc: BaseException) -> bool:
    """Whether ``exc`` is a cancellation, or a group holding nothing but cancellations."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_is_cancellation(inner) for inner in exc.exceptions)
    return isinstance(exc, anyio.get_cancelled_exc_class())


def raise_only_error(group: BaseExceptionGroup[BaseException]) -> None:
    """Raise the one error ``group`` carries besides cancellations; return if it has more.

    Only ``group``'s direct members are looked at: a member that is itself an exception
    group (an application's own ``ExceptionGroup``, say) is raised as it is.
    """
    real = [exc for exc in group.exceptions if not _is_cancellation(exc)]
    if len(real) != 1:
        return
    single = real[0]
    # Re-raised as it was: ``raise ... from`` would hide its context ("during handling of
    # the above exception") and a bare raise would add the group as one.
    context, suppress = single.__context__, single.__suppress_context__
    try:
        raise single
    finally:
        single.__context__, single.__suppress_context__ = context, suppress


class _OwnTaskGroup:
    """An anyio task group that takes off the exception group it wraps errors in itself.

    anyio wraps whatever a task group's tasks (or its body) raise in an exception group,
    even a single error. Code around stellate's own task groups must see that error as
    itself, so exception handlers keyed by its class still match; so when the group holds
    exactly one error besides cancellations ("the handler failed while its watcher was
    being cancelled"), that error is raised instead. Only this one level is taken off:
    a group that the application raised stays whole, and several errors stay grouped.
    """

    __slots__ = ("_group",)

    def __init__(self) -> None:
        self._group = anyio.create_task_group()

    async def __aenter__(self) -> anyio.abc.TaskGroup:
        return await self._group.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        try:
            return await self._group.__aexit__(exc_type, exc, traceback)
        except BaseExceptionGroup as group:
            raise_only_error(group)
            raise


def create_task_group() -> AbstractAsyncContextManager[anyio.abc.TaskGroup]:
    """A task group for stellate's own use: see :class:`_OwnTaskGroup` (DESIGN.md §3.3)."""
    return _OwnTaskGroup()


def unwrap_callable(obj: Any) -> Any:
    """The function behind partials, for naming and introspection."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    return obj
