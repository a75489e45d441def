"""Tests of the ASGI lifespan protocol as run by Router, driven with raw messages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from stellate.exceptions import StellateDeprecationWarning
from stellate.routing import Router
from stellate.types import Message, Scope

pytestmark = pytest.mark.anyio

STARTUP: Message = {"type": "lifespan.startup"}
SHUTDOWN: Message = {"type": "lifespan.shutdown"}


async def run(router: Router, scope: Scope | None = None) -> tuple[list[Message], Scope]:
    """Run a full lifespan; return what the app sent and the (mutated) scope."""
    incoming = iter([STARTUP, SHUTDOWN])
    sent: list[Message] = []
    scope = (
        {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}} if scope is None else scope
    )

    async def receive() -> Message:
        return next(incoming)

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await router(scope, receive, send)
    return sent, scope


async def test_context_manager_lifespan_with_state() -> None:
    events: list[str] = []
    given: list[Any] = []

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
        given.append(app)
        events.append("startup")
        yield {"db": "connected"}
        events.append("shutdown")

    router = Router(lifespan=lifespan)
    sent, scope = await run(router)
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]
    assert scope["state"] == {"db": "connected"}
    assert events == ["startup", "shutdown"]
    assert given == [router]  # no application in scope: the router itself
    app = object()
    await run(router, {"type": "lifespan", "state": {}, "app": app})
    assert given[-1] is app


async def test_no_lifespan_completes_both_phases() -> None:
    sent, scope = await run(Router())
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]
    assert scope["state"] == {}


async def test_state_without_server_support_fails_startup() -> None:
    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
        yield {"x": 1}

    with pytest.raises(RuntimeError) as raised:
        await run(Router(lifespan=lifespan), {"type": "lifespan"})
    # Starlette's exact text (the old wording differed).
    assert str(raised.value) == 'The server does not support "state" in the lifespan scope.'


async def test_startup_failure_is_reported_then_raised() -> None:
    sent: list[Message] = []

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        raise ValueError("database unreachable")
        yield  # pragma: no cover

    incoming = iter([STARTUP])

    async def receive() -> Message:
        return next(incoming)

    async def send(message: Message) -> None:
        sent.append(message)

    with pytest.raises(ValueError, match="database unreachable"):
        await Router(lifespan=lifespan)({"type": "lifespan", "state": {}}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
    assert "ValueError: database unreachable" in sent[0]["message"]


async def test_shutdown_failure_is_reported_then_raised() -> None:
    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        raise OSError("flush failed")

    sent: list[Message] = []
    incoming = iter([STARTUP, SHUTDOWN])

    async def receive() -> Message:
        return next(incoming)

    async def send(message: Message) -> None:
        sent.append(message)

    with pytest.raises(OSError, match="flush failed"):
        await Router(lifespan=lifespan)({"type": "lifespan", "state": {}}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.failed"]
    assert "flush failed" in sent[1]["message"]


async def test_cancellation_is_not_reported_as_failure() -> None:
    sent: list[Message] = []
    waiting = anyio.Event()

    async def receive() -> Message:
        if not sent:
            return STARTUP
        waiting.set()
        await anyio.sleep_forever()
        raise AssertionError  # pragma: no cover

    async def send(message: Message) -> None:
        sent.append(message)

    router = Router()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(router, {"type": "lifespan", "state": {}}, receive, send)
            await waiting.wait()
            tg.cancel_scope.cancel()
    assert sent == [{"type": "lifespan.startup.complete"}]


async def test_async_generator_lifespan_is_deprecated_but_works() -> None:
    events: list[str] = []

    async def lifespan(app: Any) -> AsyncIterator[dict[str, int]]:
        events.append("up")
        yield {"n": 1}
        events.append("down")

    with pytest.warns(StellateDeprecationWarning, match="async generator"):
        router = Router(lifespan=lifespan)  # type: ignore[arg-type]
    sent, scope = await run(router)
    assert events == ["up", "down"]
    assert scope["state"] == {"n": 1}
    assert sent[-1] == {"type": "lifespan.shutdown.complete"}


async def test_sync_generator_lifespan_is_deprecated_but_works() -> None:
    events: list[str] = []

    def lifespan(app: Any) -> Iterator[None]:
        events.append("up")
        yield
        events.append("down")

    with pytest.warns(StellateDeprecationWarning, match="generator function"):
        router = Router(lifespan=lifespan)  # type: ignore[arg-type]
    await run(router)
    assert events == ["up", "down"]


async def test_on_startup_and_on_shutdown_are_deprecated_and_ordered() -> None:
    events: list[str] = []

    async def async_up() -> None:
        events.append("async up")

    def sync_down() -> None:
        events.append("sync down")

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        events.append("lifespan up")
        yield
        events.append("lifespan down")

    with pytest.warns(StellateDeprecationWarning, match="on_startup and on_shutdown"):
        router = Router(
            lifespan=lifespan,
            on_startup=[async_up, lambda: events.append("sync up")],
            on_shutdown=[sync_down],
        )
    sent, _ = await run(router)
    assert events == ["async up", "sync up", "lifespan up", "lifespan down", "sync down"]
    assert sent[-1] == {"type": "lifespan.shutdown.complete"}


async def test_failing_on_startup_handler_fails_startup() -> None:
    def broken() -> None:
        raise LookupError("no config")

    with pytest.warns(StellateDeprecationWarning):
        router = Router(on_startup=[broken])
    sent: list[Message] = []

    async def receive() -> Message:
        return STARTUP

    async def send(message: Message) -> None:
        sent.append(message)

    with pytest.raises(LookupError):
        await router({"type": "lifespan", "state": {}}, receive, send)
    assert sent[0]["type"] == "lifespan.startup.failed"
    assert "no config" in sent[0]["message"]
