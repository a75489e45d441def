"""Supervised application tasks: ``app.tasks`` (a ``TaskSupervisor``).

Tasks are started from requests (or the lifespan) and owned by the lifespan's task group:
shutdown waits for them up to ``shutdown_timeout``, then cancels and names the rest.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from stellate._concurrency import current_limiter
from stellate.applications import Stellate
from stellate.background import TaskSupervisor
from stellate.requests import Request
from stellate.responses import JSONResponse, PlainTextResponse, Response
from stellate.routing import Mount, Route
from stellate.testing.client import AsyncTestClient

Client = Callable[..., Any]


def app_with(endpoint: Callable[..., Any], **kwargs: Any) -> Stellate:
    return Stellate(routes=[Route("/", endpoint)], **kwargs)


def test_a_task_outlives_its_request_and_shutdown_waits_for_it(
    test_client_factory: Client,
) -> None:
    events: list[str] = []

    async def work() -> None:
        for _ in range(3):
            await anyio.lowlevel.checkpoint()
        await anyio.sleep(0.01)
        events.append("task done")

    async def endpoint(request: Request) -> Response:
        request.app.tasks.start_soon(work)
        events.append("responded")
        return PlainTextResponse("started")

    app = app_with(endpoint)
    with test_client_factory(app) as client:
        assert client.get("/").text == "started"
    # Leaving the client ran the shutdown, which waited for the task.
    assert events == ["responded", "task done"]
    assert app.tasks.pending == []


def test_shutdown_cancels_and_names_tasks_that_overrun(
    test_client_factory: Client, caplog: pytest.LogCaptureFixture
) -> None:
    outcome: list[str] = []

    async def forever() -> None:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            outcome.append("cancelled")
            raise

    async def endpoint(request: Request) -> Response:
        request.app.tasks.start_soon(forever, name="poller")
        return PlainTextResponse("ok")

    app = app_with(endpoint, shutdown_timeout=0.01)
    with (
        caplog.at_level(logging.WARNING, logger="stellate.tasks"),
        test_client_factory(app) as client,
    ):
        client.get("/")
        assert app.tasks.pending == ["poller"]
    assert outcome == ["cancelled"]
    messages = [r.getMessage() for r in caplog.records if r.name == "stellate.tasks"]
    assert len(messages) == 1
    assert "'poller'" in messages[0]
    assert app.tasks.pending == []


def test_a_failing_task_is_logged_and_disturbs_nothing(
    test_client_factory: Client, caplog: pytest.LogCaptureFixture
) -> None:
    finished: list[str] = []
    failed = anyio.Event()

    async def broken() -> None:
        try:
            raise ValueError("boom")
        finally:
            failed.set()

    async def sibling() -> None:
        await failed.wait()
        finished.append("sibling")

    async def endpoint(request: Request) -> Response:
        request.app.tasks.start_soon(sibling, name="sibling")
        request.app.tasks.start_soon(broken, name="broken-task")
        return PlainTextResponse("ok")

    app = app_with(endpoint)
    with (
        caplog.at_level(logging.ERROR, logger="stellate.tasks"),
        test_client_factory(app) as client,
    ):
        assert client.get("/").text == "ok"
        # The application keeps serving.
        assert client.get("/").text == "ok"
    assert finished == ["sibling", "sibling"]
    errors = [r for r in caplog.records if r.name == "stellate.tasks"]
    assert len(errors) == 2
    assert all("'broken-task'" in r.getMessage() for r in errors)
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], ValueError)


def test_starting_a_task_without_a_lifespan_says_what_to_do(test_client_factory: Client) -> None:
    async def endpoint(request: Request) -> Response:
        request.app.tasks.start_soon(anyio.sleep, 0)
        return PlainTextResponse("unreachable")  # pragma: no cover

    client = test_client_factory(app_with(endpoint))
    with pytest.raises(RuntimeError, match="lifespan") as info:
        client.get("/")
    assert "TestClient as a context manager" in str(info.value)


def test_start_waits_for_readiness_and_returns_its_value(test_client_factory: Client) -> None:
    async def server(port: int, *, task_status: Any) -> None:
        task_status.started(port + 1)
        await anyio.sleep_forever()

    async def endpoint(request: Request) -> Response:
        value = await request.app.tasks.start(server, 8000, name="server")
        return JSONResponse({"value": value, "pending": request.app.tasks.pending})

    app = app_with(endpoint, shutdown_timeout=0)
    with test_client_factory(app) as client:
        assert client.get("/").json() == {"value": 8001, "pending": ["server"]}


def test_start_raises_an_error_from_before_readiness_in_the_caller(
    test_client_factory: Client,
) -> None:
    async def fails_early(*, task_status: Any) -> None:
        raise OSError("port in use")

    async def endpoint(request: Request) -> Response:
        try:
            await request.app.tasks.start(fails_early)
        except OSError as exc:
            return PlainTextResponse(str(exc))
        return PlainTextResponse("unreachable")  # pragma: no cover

    app = app_with(endpoint)
    with test_client_factory(app) as client:
        assert client.get("/").text == "port in use"
        assert app.tasks.pending == []


def test_start_logs_an_error_from_after_readiness(
    test_client_factory: Client, caplog: pytest.LogCaptureFixture
) -> None:
    async def fails_late(*, task_status: Any) -> None:
        task_status.started()
        await anyio.lowlevel.checkpoint()
        raise KeyError("late")

    async def endpoint(request: Request) -> Response:
        await request.app.tasks.start(fails_late)
        return PlainTextResponse("ready")

    app = app_with(endpoint)
    with (
        caplog.at_level(logging.ERROR, logger="stellate.tasks"),
        test_client_factory(app) as client,
    ):
        assert client.get("/").text == "ready"
    records = [r for r in caplog.records if r.name == "stellate.tasks"]
    assert len(records) == 1
    assert "fails_late" in records[0].getMessage()


def test_start_refuses_sync_functions(test_client_factory: Client) -> None:
    async def endpoint(request: Request) -> Response:
        with pytest.raises(TypeError, match="async function"):
            await request.app.tasks.start(print)
        return PlainTextResponse("ok")

    with test_client_factory(app_with(endpoint)) as client:
        assert client.get("/").text == "ok"


def test_sync_tasks_run_in_a_worker_thread_under_the_app_limiter(
    test_client_factory: Client,
) -> None:
    seen: dict[str, Any] = {}
    done = threading.Event()

    def blocking(main_thread: int) -> None:
        seen["other_thread"] = threading.get_ident() != main_thread
        done.set()

    async def endpoint(request: Request) -> Response:
        request.app.tasks.start_soon(blocking, threading.get_ident())
        seen["limiter"] = current_limiter.get()
        return PlainTextResponse("ok")

    app = app_with(endpoint, thread_limit=3)
    with test_client_factory(app) as client:
        client.get("/")
    assert done.is_set()
    assert seen["other_thread"] is True
    assert app.tasks._limiter is seen["limiter"]
    assert seen["limiter"].total_tokens == 3


def test_lifespan_can_start_tasks_and_they_stop_before_it_exits(
    test_client_factory: Client,
) -> None:
    order: list[str] = []

    async def worker() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            order.append("worker stopped")

    @asynccontextmanager
    async def lifespan(app: Stellate) -> AsyncIterator[None]:
        app.tasks.start_soon(worker)
        yield
        order.append("lifespan exit")

    app = Stellate(lifespan=lifespan, shutdown_timeout=0)
    with test_client_factory(app):
        assert app.tasks.pending == [
            "test_lifespan_can_start_tasks_and_they_stop_before_it_exits.<locals>.worker"
        ]
    # Tasks are drained while the lifespan's resources are still there.
    assert order == ["worker stopped", "lifespan exit"]


def test_no_new_tasks_once_shutdown_has_begun(test_client_factory: Client) -> None:
    refused: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Stellate) -> AsyncIterator[None]:
        yield
        try:
            app.tasks.start_soon(anyio.sleep, 0)
        except RuntimeError as exc:
            refused.append(str(exc))

    app = Stellate(lifespan=lifespan)
    with test_client_factory(app):
        pass
    assert len(refused) == 1
    assert "shutting down" in refused[0]


def test_tasks_are_cancelled_when_startup_fails(test_client_factory: Client) -> None:
    outcome: list[str] = []

    async def worker() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            outcome.append("cancelled")

    @asynccontextmanager
    async def lifespan(app: Stellate) -> AsyncIterator[None]:
        app.tasks.start_soon(worker)
        await anyio.lowlevel.checkpoint()
        raise LookupError("no database")
        yield  # pragma: no cover

    app = Stellate(lifespan=lifespan)
    with pytest.raises(LookupError, match="no database"), test_client_factory(app):
        pass  # pragma: no cover
    assert outcome == ["cancelled"]
    assert app.tasks.pending == []


def test_the_lifespan_can_be_run_again_after_it_ended(test_client_factory: Client) -> None:
    async def endpoint(request: Request) -> Response:
        request.app.tasks.start_soon(anyio.sleep, 0, name="tick")
        return PlainTextResponse("ok")

    app = app_with(endpoint)
    for _ in range(2):
        with test_client_factory(app) as client:
            assert client.get("/").text == "ok"


@pytest.mark.anyio
async def test_a_second_concurrent_lifespan_is_refused() -> None:
    app = Stellate()
    async with AsyncTestClient(app):
        with pytest.raises(RuntimeError, match="already running"):
            async with AsyncTestClient(app):
                pass  # pragma: no cover


@pytest.mark.anyio
async def test_pending_lists_running_tasks_in_start_order() -> None:
    release = anyio.Event()
    app = Stellate()
    async with AsyncTestClient(app):
        app.tasks.start_soon(release.wait, name="first")
        app.tasks.start_soon(release.wait, name="second")
        assert app.tasks.pending == ["first", "second"]
        assert "first" in repr(app.tasks)
        release.set()
        with anyio.fail_after(5):
            while app.tasks.pending:
                await anyio.lowlevel.checkpoint()


def test_shutdown_timeout_is_validated() -> None:
    assert TaskSupervisor().shutdown_timeout == 30.0
    assert Stellate(shutdown_timeout=2).tasks.shutdown_timeout == 2.0
    with pytest.raises(ValueError, match="zero or more"):
        TaskSupervisor(-1)
    with pytest.raises(TypeError, match="number of seconds"):
        TaskSupervisor("5")  # type: ignore[arg-type]


def test_a_sync_endpoint_can_start_a_task(test_client_factory: Client) -> None:
    """A sync endpoint runs in a worker thread: start_soon hands the task to the loop."""
    ran: list[str] = []

    async def work(label: str) -> None:
        await anyio.lowlevel.checkpoint()
        ran.append(label)

    def endpoint(request: Request) -> Response:
        request.app.tasks.start_soon(work, "from a thread", name="threaded")
        return PlainTextResponse("started")

    app = app_with(endpoint)
    with test_client_factory(app) as client:
        assert client.get("/").text == "started"
    assert ran == ["from a thread"]


def test_a_sync_endpoint_gets_the_lifespan_hint_without_a_lifespan(
    test_client_factory: Client,
) -> None:
    def endpoint(request: Request) -> Response:
        request.app.tasks.start_soon(anyio.sleep, 0)
        return PlainTextResponse("unreachable")  # pragma: no cover

    with pytest.raises(RuntimeError, match="TestClient as a context manager"):
        test_client_factory(app_with(endpoint)).get("/")


def test_a_blocked_sync_task_is_abandoned_at_the_shutdown_deadline(
    test_client_factory: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """A thread cannot be cancelled: shutdown logs it by name and goes on without it.

    The task blocks until the test releases it, after the shutdown: a shutdown that
    waited for it would only end when the wait gives up, with the task finished.
    """
    release = threading.Event()
    outcome: list[str] = []

    def stuck() -> None:
        outcome.append("released" if release.wait(10) else "gave up")

    async def endpoint(request: Request) -> Response:
        request.app.tasks.start_soon(stuck, name="nightly-export")
        return PlainTextResponse("ok")

    app = app_with(endpoint, shutdown_timeout=0.05)
    try:
        with (
            caplog.at_level(logging.WARNING, logger="stellate.tasks"),
            test_client_factory(app) as client,
        ):
            client.get("/")
        assert outcome == []  # the shutdown did not wait for it
        assert app.tasks.pending == []
    finally:
        release.set()
    messages = [r.getMessage() for r in caplog.records if r.name == "stellate.tasks"]
    assert any("abandoning" in m and "'nightly-export'" in m for m in messages), messages


def test_a_mounted_application_starts_tasks_in_the_outer_lifespan(
    test_client_factory: Client,
) -> None:
    ran: list[str] = []

    async def work(label: str, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started(label)
        await anyio.lowlevel.checkpoint()
        ran.append(label)

    async def start_soon(request: Request) -> Response:
        request.app.tasks.start_soon(work, "soon")
        return PlainTextResponse("started")

    async def start(request: Request) -> Response:
        return PlainTextResponse(await request.app.tasks.start(work, "ready"))

    sub = Stellate(routes=[Route("/soon", start_soon), Route("/ready", start)])
    outer = Stellate(routes=[Mount("/sub", sub)])
    with test_client_factory(outer) as client:
        assert client.get("/sub/soon").text == "started"
        assert client.get("/sub/ready").text == "ready"
        assert sub.tasks.pending == []  # they belong to the outer application
    assert sorted(ran) == ["ready", "soon"]


def test_a_mounted_application_without_a_running_outer_lifespan_says_how(
    test_client_factory: Client,
) -> None:
    async def endpoint(request: Request) -> Response:
        request.app.tasks.start_soon(anyio.sleep, 0)
        return PlainTextResponse("unreachable")  # pragma: no cover

    outer = Stellate(routes=[Mount("/sub", app_with(endpoint))])
    with pytest.raises(RuntimeError, match="outer application's lifespan"):
        test_client_factory(outer).get("/sub/")
