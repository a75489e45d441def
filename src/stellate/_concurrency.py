"""The structured-concurrency primitives of stellate, kept in one place (DESIGN.md §3).

* Blocking work goes through :func:`run_sync`, which uses the capacity limiter of the
  application serving the current request (see :data:`current_limiter`), so one setting
  bounds every thread that stellate starts on an application's behalf.
* Task groups raise exception groups; :func:`collapse_excgroups` turns a group holding
  exactly one real error back into that error, so user exceptions reach exception
  handlers as themselves, while several errors are never collapsed into one.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeGuard, TypeVar

import anyio
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


def _only_real_error(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    cancelled = anyio.get_cancelled_exc_class()
    leaves = list(_leaves(group))
    real = [exc for exc in leaves if not isinstance(exc, cancelled)]
    return real[0] if len(real) == 1 else None


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


@contextmanager
def collapse_excgroups() -> Generator[None, None, None]:
    """Re-raise a task group's exception group as its single real error, if it has one.

    Cancellation leaves are ignored when counting, so "the handler failed while its
    watcher was being cancelled" surfaces as the handler's exception. A group with two or
    more real errors is re-raised untouched.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        single = _only_real_error(group)
        if single is None:
            raise
        # Re-raised as it was: ``raise ... from`` would hide its context ("during
        # handling of the above exception") and a bare raise would add the group as one.
        context, suppress = single.__context__, single.__suppress_context__
        try:
            raise single
        finally:
            single.__context__, single.__suppress_context__ = context, suppress


def unwrap_callable(obj: Any) -> Any:
    """The function behind partials, for naming and introspection."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    return obj
