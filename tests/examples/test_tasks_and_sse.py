"""The tasks-and-SSE example: jobs supervised by the app, a live feed, a cancellable report."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from examples.tasks_and_sse import Feed, app, create_app

from stellate.applications import Stellate
from stellate.testing.client import AsyncTestClient
from stellate.types import Message

Client = Callable[..., Any]


def test_module_app_is_configured() -> None:
    assert isinstance(app, Stellate)
    assert app.tasks.shutdown_timeout == 10


def test_a_job_outlives_its_request_and_shutdown_waits_for_it(
    test_client_factory: Client,
) -> None:
    example = create_app(step_delay=0.001, steps=2)
    with test_client_factory(example) as client:
        response = client.post("/jobs")
        assert response.status_code == 202
        assert response.json() == {"job": 1}
    assert example.tasks.pending == []
    history = [event.data for event in example.state.feed._history]
    assert history == ["job 1 started", "job 1: 50%", "job 1: 100%", "job 1 done"]


def test_shutdown_cancels_a_job_that_overruns(test_client_factory: Client) -> None:
    example = create_app(step_delay=60, shutdown_timeout=0)
    with test_client_factory(example) as client:
        client.post("/jobs")
        client.post("/jobs")
        assert client.get("/jobs").json() == {"running": ["job-1", "job-2"]}
    assert example.tasks.pending == []
    history = [event.data for event in example.state.feed._history]
    assert history == ["job 1 started", "job 2 started"]


async def read_events(lines: Any, count: int) -> list[str]:
    """The next ``count`` events of a stream, as their raw text."""
    events: list[str] = []
    current: list[str] = []
    async for line in lines:
        if line:
            current.append(line)
            continue
        if current:
            events.append("\n".join(current))
            current = []
        if len(events) == count:
            break
    return events


@pytest.mark.anyio
async def test_the_feed_streams_job_progress_live() -> None:
    example = create_app(step_delay=0.001, steps=2)
    with anyio.fail_after(10):
        async with AsyncTestClient(example) as client, client.stream("GET", "/feed") as feed:
            assert feed.headers["content-type"] == "text/event-stream; charset=utf-8"
            lines = feed.aiter_lines()
            assert await read_events(lines, 1) == [": subscribed"]
            await client.post("/jobs")
            events = await read_events(lines, 4)
    assert events == [
        "event: job\nid: 1\ndata: job 1 started",
        "event: progress\nid: 2\ndata: job 1: 50%",
        "event: progress\nid: 3\ndata: job 1: 100%",
        "event: job\nid: 4\ndata: job 1 done",
    ]


@pytest.mark.anyio
async def test_a_reconnecting_client_gets_what_it_missed() -> None:
    feed = Feed()
    for n in range(3):
        feed.publish(f"event {n}")
    events = feed.events(last_event_id="1")
    received = [await events.__anext__() for _ in range(3)]
    assert [e.comment or e.data for e in received] == ["subscribed", "event 1", "event 2"]
    assert feed.subscribers == 1
    await events.aclose()
    # Closing the stream (what a disconnect does) unsubscribes.
    assert feed.subscribers == 0


def test_a_slow_subscriber_is_dropped() -> None:
    feed = Feed(backlog=1)

    async def main() -> None:
        events = feed.events(None)
        await events.__anext__()  # subscribed
        feed.publish("a")
        feed.publish("b")  # the backlog of one is full: dropped
        assert feed.subscribers == 0
        await events.aclose()

    anyio.run(main)


def test_report_answers_when_the_client_waits(test_client_factory: Client) -> None:
    client = test_client_factory(create_app(step_delay=0.001))
    assert client.get("/report?size=10").json() == {"total": 45}


def test_report_has_a_deadline(test_client_factory: Client) -> None:
    client = test_client_factory(create_app(step_delay=1, report_timeout=0.01))
    assert client.get("/report?size=10").status_code == 503


@pytest.mark.anyio
async def test_report_is_cancelled_when_the_client_disconnects() -> None:
    example = create_app(step_delay=1)  # ten seconds of work for size=1000
    to_app, inbox = anyio.create_memory_object_stream[Message](math.inf)
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/report",
        "query_string": b"size=1000",
        "headers": [],
    }
    watching = anyio.Event()

    async def receive() -> Message:
        # The first call is the disconnect watcher's: the report is under way by then.
        # (Not wait_all_tasks_blocked: the report wakes every 10 ms, and under load
        # a poll for "all blocked" can keep landing on one of its wake-ups.)
        watching.set()
        return await inbox.receive()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(example, scope, receive, send)
            await watching.wait()
            to_app.send_nowait({"type": "http.disconnect"})
    assert sent == []
    to_app.close()
    inbox.close()


def test_digest_runs_in_a_worker_thread_under_the_apps_thread_limit(
    test_client_factory: Client,
) -> None:
    import hashlib
    import threading

    from stellate.requests import Request
    from stellate.responses import JSONResponse
    from stellate.routing import Route

    example = create_app(thread_limit=2)
    assert example.thread_limit == 2
    assert app.thread_limit == 4

    async def loop_thread(request: Request) -> JSONResponse:
        return JSONResponse({"thread_id": threading.get_ident()})

    example.router.routes.append(Route("/loop-thread", loop_thread))
    expected = b"stellate"
    for _ in range(10_000):
        expected = hashlib.sha256(expected).digest()
    with test_client_factory(example) as client:
        answer = client.get("/digest", params={"text": "stellate"}).json()
        loop = client.get("/loop-thread").json()
    assert answer["digest"] == expected.hex()
    assert answer["thread_id"] != loop["thread_id"]  # a worker thread, not the event loop's
