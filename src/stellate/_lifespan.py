"""The ASGI lifespan protocol, as run by ``Router`` for the ``lifespan`` scope.

A lifespan is ``lifespan(app) -> async context manager``: entering it is startup, leaving
it is shutdown, and the mapping it yields (if any) becomes the initial ``scope["state"]``
that servers copy into every request. Two older forms keep working with a
``StellateDeprecationWarning``: an async generator function (what
``@asynccontextmanager`` would wrap) and ``on_startup``/``on_shutdown`` callback lists.

Failures are reported to the server as ``lifespan.startup.failed`` or
``lifespan.shutdown.failed`` carrying the traceback, then re-raised so the server logs
and stops. Cancellation is never reported as a failure: it is the server shutting the
task down, and it propagates untouched.
"""

from __future__ import annotations

import inspect
import traceback
import warnings
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Any

import anyio

from stellate._concurrency import is_async_callable
from stellate.exceptions import StellateDeprecationWarning
from stellate.types import Receive, Scope, Send

__all__ = ["LifespanContext", "adapt_lifespan", "run_lifespan", "warn_event_handlers"]

LifespanContext = Callable[[Any], AbstractAsyncContextManager[Mapping[str, Any] | None]]


@asynccontextmanager
async def _no_lifespan(app: Any) -> AsyncIterator[None]:
    yield None


def adapt_lifespan(lifespan: Any | None) -> LifespanContext:
    """Turn any accepted lifespan form into ``app -> async context manager``."""
    if lifespan is None:
        return _no_lifespan
    if inspect.isasyncgenfunction(lifespan):
        warnings.warn(
            "an async generator function as lifespan is deprecated; decorate it with "
            "contextlib.asynccontextmanager",
            StellateDeprecationWarning,
            stacklevel=3,
        )
        return asynccontextmanager(lifespan)
    if inspect.isgeneratorfunction(lifespan):
        warnings.warn(
            "a generator function as lifespan is deprecated; write an async function "
            "decorated with contextlib.asynccontextmanager",
            StellateDeprecationWarning,
            stacklevel=3,
        )
        return _async_from_sync(contextmanager(lifespan))
    return lifespan  # type: ignore[no-any-return]


def _async_from_sync(factory: Callable[[Any], Any]) -> LifespanContext:
    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        with factory(app) as state:
            yield state

    return lifespan


def warn_event_handlers(
    on_startup: Sequence[Any] | None, on_shutdown: Sequence[Any] | None
) -> None:
    """Warn once, at construction, that the callback-list form is deprecated."""
    if on_startup or on_shutdown:
        warnings.warn(
            "on_startup and on_shutdown are deprecated; use a lifespan context manager "
            "(https://asgi.readthedocs.io/en/latest/specs/lifespan.html)",
            StellateDeprecationWarning,
            stacklevel=3,
        )


async def _call_handlers(handlers: Sequence[Callable[[], Any]]) -> None:
    # Startup and shutdown callbacks are called directly, not in a worker thread: no
    # request is being served while they run, and users rely on them running in the
    # main thread (thread-local clients, signal setup).
    for handler in handlers:
        if is_async_callable(handler):
            await handler()
        else:
            handler()


@asynccontextmanager
async def with_event_handlers(
    context: AbstractAsyncContextManager[Mapping[str, Any] | None],
    on_startup: Sequence[Callable[[], Any]],
    on_shutdown: Sequence[Callable[[], Any]],
) -> AsyncIterator[Mapping[str, Any] | None]:
    """Run the deprecated callbacks around a lifespan context: startup first, shutdown last."""
    await _call_handlers(on_startup)
    async with context as state:
        yield state
    await _call_handlers(on_shutdown)


async def run_lifespan(
    context: AbstractAsyncContextManager[Mapping[str, Any] | None],
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    """Speak the lifespan protocol to the server around ``context``."""
    started = False
    await receive()  # lifespan.startup
    try:
        async with context as state:
            if state is not None:
                _store_state(scope, state)
            await send({"type": "lifespan.startup.complete"})
            started = True
            await receive()  # lifespan.shutdown
    except anyio.get_cancelled_exc_class():
        raise
    except BaseException as failure:  # reported to the server, then re-raised
        kind = "shutdown" if started else "startup"
        message = "".join(traceback.format_exception(failure))
        await send({"type": f"lifespan.{kind}.failed", "message": message})
        raise
    await send({"type": "lifespan.shutdown.complete"})


def _store_state(scope: Scope, state: Mapping[str, Any]) -> None:
    if "state" not in scope:
        raise RuntimeError('The server does not support "state" in the lifespan scope.')
    scope["state"].update(state)
