"""Supervised jobs, a live Server-Sent Events feed, and a report cancelled on disconnect.

* ``POST /jobs`` starts a job in ``app.tasks``: it outlives the request, reports its
  progress on the feed, and is waited for (then cancelled) when the application stops.
* ``GET /feed`` is an event stream of that progress. A browser that reconnects sends
  ``Last-Event-ID`` and gets the events it missed from a short history.
* ``GET /report`` is expensive and useless to a client that has gone: it is declared with
  ``cancel_on_disconnect=True``, and under a deadline (``timeout``) in case it drags on.
* ``GET /digest`` is a plain (sync) function: it runs in a worker thread, and
  ``thread_limit`` bounds how many such threads the application uses at once.

Run it with ``scripts/serve tasks_and_sse:app`` and, in another terminal::

    curl -N http://127.0.0.1:8000/feed &
    curl -X POST http://127.0.0.1:8000/jobs
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from stellate.applications import Stellate
from stellate.requests import Request
from stellate.responses import JSONResponse, Response
from stellate.routing import Route
from stellate.sse import EventSourceResponse, ServerSentEvent


class Feed:
    """Fans events out to every subscriber and keeps the last few for reconnections."""

    def __init__(self, history: int = 100, backlog: int = 32) -> None:
        self._ids = itertools.count(1)
        self._history: deque[ServerSentEvent] = deque(maxlen=history)
        self._subscribers: set[MemoryObjectSendStream[ServerSentEvent]] = set()
        self._backlog = backlog

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, data: str, event: str | None = None) -> None:
        message = ServerSentEvent(data, event=event, id=str(next(self._ids)))
        self._history.append(message)
        for subscriber in list(self._subscribers):
            try:
                subscriber.send_nowait(message)
            except anyio.WouldBlock:
                # A subscriber that cannot keep up is dropped; its browser reconnects
                # and catches up from the history with Last-Event-ID.
                subscriber.close()
                self._subscribers.discard(subscriber)

    async def events(self, last_event_id: str | None) -> AsyncIterator[ServerSentEvent]:
        """The missed events after ``last_event_id``, then live ones until disconnect."""
        send, receive = anyio.create_memory_object_stream[ServerSentEvent](self._backlog)
        self._subscribers.add(send)
        try:
            yield ServerSentEvent(comment="subscribed")
            if last_event_id is not None and last_event_id.isdigit():
                for missed in list(self._history):
                    if int(missed.id or 0) > int(last_event_id):
                        yield missed
            async with receive:
                async for message in receive:
                    yield message
        finally:
            # Runs when the client disconnects: the response closes this generator.
            self._subscribers.discard(send)
            send.close()


def create_app(
    step_delay: float = 0.5,
    steps: int = 4,
    report_timeout: float = 30.0,
    shutdown_timeout: float = 10.0,
    thread_limit: int = 4,
) -> Stellate:
    feed = Feed()
    job_ids = itertools.count(1)

    async def run_job(job: int) -> None:
        feed.publish(f"job {job} started", event="job")
        for step in range(1, steps + 1):
            await anyio.sleep(step_delay)
            feed.publish(f"job {job}: {100 * step // steps}%", event="progress")
        feed.publish(f"job {job} done", event="job")

    async def start_job(request: Request) -> Response:
        job = next(job_ids)
        request.app.tasks.start_soon(run_job, job, name=f"job-{job}")
        return JSONResponse({"job": job}, status_code=202)

    async def list_jobs(request: Request) -> Response:
        return JSONResponse({"running": request.app.tasks.pending})

    async def stream_feed(request: Request) -> Response:
        return EventSourceResponse(feed.events(request.headers.get("last-event-id")), ping=15)

    async def report(request: Request) -> Response:
        # Stands in for heavy work: each step is a checkpoint where the cancellation
        # caused by a disconnect (or by the deadline) lands.
        total = 0
        for chunk in range(int(request.query_params.get("size", "1000"))):
            total += chunk
            await anyio.sleep(step_delay / 100)
        return JSONResponse({"total": total})

    def digest(request: Request) -> Response:
        # Blocking CPU work in a plain function: stellate runs it in a worker thread
        # under the application's limiter, so the event loop keeps serving meanwhile.
        data = request.query_params.get("text", "").encode()
        for _ in range(10_000):
            data = hashlib.sha256(data).digest()
        return JSONResponse({"digest": data.hex(), "thread_id": threading.get_ident()})

    @asynccontextmanager
    async def lifespan(app: Stellate) -> AsyncIterator[None]:
        app.state.feed = feed
        yield

    return Stellate(
        routes=[
            Route("/jobs", start_job, methods=["POST"]),
            Route("/jobs", list_jobs),
            Route("/feed", stream_feed),
            Route("/report", report, cancel_on_disconnect=True, timeout=report_timeout),
            Route("/digest", digest),
        ],
        lifespan=lifespan,
        shutdown_timeout=shutdown_timeout,
        thread_limit=thread_limit,
    )


app = create_app()
