"""``Stellate(thread_limit=N)``: one CapacityLimiter bounds every offload for the app.

Concurrency is observed through the limiter's own statistics and threading Events: with
a limit of 1, a second offload waits (``tasks_waiting``) until the first one finishes.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

from stellate._concurrency import current_limiter
from stellate.applications import Stellate
from stellate.background import BackgroundTask
from stellate.concurrency import run_in_threadpool
from stellate.requests import Request
from stellate.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from stellate.routing import Route
from stellate.testing.client import AsyncTestClient

Client = Callable[..., Any]


def test_sync_endpoints_use_the_app_limiter(test_client_factory: Client) -> None:
    def endpoint(request: Request) -> Response:
        limiter = current_limiter.get()
        assert limiter is not None
        return JSONResponse({"tokens": limiter.total_tokens, "borrowed": limiter.borrowed_tokens})

    app = Stellate(routes=[Route("/", endpoint)], thread_limit=2)
    assert app.thread_limit == 2
    # The endpoint's own thread holds one of the two tokens while it runs.
    assert test_client_factory(app).get("/").json() == {"tokens": 2, "borrowed": 1}


def test_without_a_limit_anyio_default_limiter_is_used(test_client_factory: Client) -> None:
    def endpoint(request: Request) -> Response:
        return JSONResponse({"limiter": current_limiter.get() is None})

    app = Stellate(routes=[Route("/", endpoint)])
    assert app.thread_limit is None
    assert test_client_factory(app).get("/").json() == {"limiter": True}


def test_run_in_threadpool_inside_a_request_uses_the_app_limiter(
    test_client_factory: Client,
) -> None:
    def borrowed() -> float:
        limiter = current_limiter.get()
        assert limiter is not None
        return limiter.borrowed_tokens

    async def endpoint(request: Request) -> Response:
        limiter = current_limiter.get()
        assert limiter is not None
        before = limiter.borrowed_tokens
        during = await run_in_threadpool(borrowed)
        return JSONResponse({"before": before, "during": during, "total": limiter.total_tokens})

    app = Stellate(routes=[Route("/", endpoint)], thread_limit=4)
    assert test_client_factory(app).get("/").json() == {"before": 0, "during": 1, "total": 4}


def test_background_tasks_and_sync_iterators_use_the_app_limiter(
    test_client_factory: Client,
) -> None:
    seen: list[float] = []

    def note() -> None:
        limiter = current_limiter.get()
        assert limiter is not None
        seen.append(limiter.borrowed_tokens)

    def chunks() -> Iterator[bytes]:
        note()
        yield b"a"

    async def endpoint(request: Request) -> Response:
        return StreamingResponse(chunks(), background=BackgroundTask(note))

    app = Stellate(routes=[Route("/", endpoint)], thread_limit=1)
    assert test_client_factory(app).get("/").content == b"a"
    assert seen == [1, 1]


@pytest.mark.anyio
async def test_a_limit_of_one_serialises_sync_endpoints() -> None:
    entered = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def slow(request: Request) -> Response:
        order.append("slow in")
        entered.set()
        release.wait(5)
        order.append("slow out")
        return PlainTextResponse("slow")

    def quick(request: Request) -> Response:
        order.append("quick")
        return PlainTextResponse("quick")

    app = Stellate(routes=[Route("/slow", slow), Route("/quick", quick)], thread_limit=1)
    results: dict[str, str] = {}

    async def get(client: AsyncTestClient, path: str) -> None:
        results[path] = (await client.get(path)).text

    with anyio.fail_after(10):
        async with AsyncTestClient(app) as client, anyio.create_task_group() as group:
            group.start_soon(get, client, "/slow")
            await anyio.to_thread.run_sync(entered.wait)
            group.start_soon(get, client, "/quick")
            limiter = app._limiter.get()  # type: ignore[union-attr]
            while limiter.statistics().tasks_waiting < 1:
                await anyio.lowlevel.checkpoint()
            # The quick endpoint waits for the only thread: it has not run.
            assert order == ["slow in"]
            release.set()
    assert order == ["slow in", "slow out", "quick"]
    assert results == {"/slow": "slow", "/quick": "quick"}


@pytest.mark.anyio
async def test_the_lifespan_runs_under_the_app_limiter() -> None:
    seen: list[Any] = []

    async def lifespan(app: Stellate) -> AsyncIterator[None]:
        seen.append(current_limiter.get())
        yield

    from contextlib import asynccontextmanager

    app = Stellate(lifespan=asynccontextmanager(lifespan), thread_limit=3)
    async with AsyncTestClient(app):
        pass
    assert seen[0] is app._limiter.get()  # type: ignore[union-attr]
    assert seen[0].total_tokens == 3


def test_the_limiter_follows_the_event_loop(test_client_factory: Client) -> None:
    """An app used on several loops in turn gets a limiter of each loop."""
    limiters: list[Any] = []

    def endpoint(request: Request) -> Response:
        limiters.append(current_limiter.get())
        return PlainTextResponse("")

    app = Stellate(routes=[Route("/", endpoint)], thread_limit=1)
    with test_client_factory(app) as client:
        client.get("/")
        client.get("/")
    with test_client_factory(app) as client:
        client.get("/")
    assert limiters[0] is limiters[1]
    assert limiters[2] is not limiters[0]


@pytest.mark.parametrize(("value", "error"), [(0, ValueError), (1.5, TypeError), (True, TypeError)])
def test_bad_thread_limits_are_refused(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        Stellate(thread_limit=value)
