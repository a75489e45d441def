"""The application test_work_kept.py serves: work that must not be lost, bounded read-ahead.

Every piece of work counts itself (``_counts``) so ``GET /state`` tells the test what
happened without timing: how many background tasks started, finished or were cancelled,
how many supervised tasks ran, what a handler saw of its request.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from stellate.applications import Stellate
from stellate.background import BackgroundTask
from stellate.requests import Request
from stellate.responses import JSONResponse, PlainTextResponse, Response
from stellate.routing import Mount, Route

#: Long enough that a disconnect or a deadline lands while the background task runs.
BACKGROUND_FOR = 0.3
#: The blocked sync task: far longer than the tests wait for a server to stop.
STUCK_FOR = 120.0
SHUTDOWN_TIMEOUT = 1.0

_counts: Counter[str] = Counter()


async def background_work(kind: str) -> None:
    _counts[f"{kind}.started"] += 1
    try:
        await anyio.sleep(BACKGROUND_FOR)
    except anyio.get_cancelled_exc_class():
        _counts[f"{kind}.cancelled"] += 1
        raise
    _counts[f"{kind}.finished"] += 1


async def after_disconnect(request: Request) -> Response:
    """cancel_on_disconnect route: the client reads the answer and leaves at once."""
    return PlainTextResponse("done", background=BackgroundTask(background_work, "disconnect"))


async def after_deadline(request: Request) -> Response:
    """timeout route: answers in time, its background task runs past the deadline."""
    return PlainTextResponse("done", background=BackgroundTask(background_work, "deadline"))


async def supervised(kind: str) -> None:
    await anyio.sleep(0.01)
    _counts[f"{kind}.finished"] += 1


def sync_endpoint(request: Request) -> Response:
    """A sync endpoint runs in a worker thread: app.tasks must work from there too."""
    request.app.tasks.start_soon(supervised, "sync-endpoint")
    return PlainTextResponse(f"started from {threading.current_thread().name}")


def stuck_export() -> None:
    """Blocks far past the shutdown deadline: the shutdown must not wait for it."""
    print("stuck export: blocking", flush=True)
    time.sleep(STUCK_FOR)


async def start_stuck(request: Request) -> Response:
    request.app.tasks.start_soon(stuck_export, name="stuck-export")
    return PlainTextResponse("stuck")


async def sub_endpoint(request: Request) -> Response:
    request.app.tasks.start_soon(supervised, "mounted")
    return PlainTextResponse("started")


async def unread_body(request: Request) -> Response:
    """cancel_on_disconnect route that answers without reading what it was sent, after a
    moment's work (checking credentials, say): time for a watcher to read ahead."""
    await anyio.sleep(0.2)
    return PlainTextResponse("not read", status_code=200)


async def state(request: Request) -> JSONResponse:
    return JSONResponse(dict(_counts))


#: ``STELLATE_WORK_SLOW_SHUTDOWN=1``: the lifespan's teardown takes a minute, long enough
#: for a second Ctrl-C to be the only way out.
SLOW_SHUTDOWN = os.environ.get("STELLATE_WORK_SLOW_SHUTDOWN") == "1"


@asynccontextmanager
async def lifespan(app: Stellate) -> AsyncIterator[None]:
    yield
    if SLOW_SHUTDOWN:
        print("slow shutdown: begun", flush=True)
        await anyio.sleep(60)
        print("slow shutdown: done", flush=True)


sub_app = Stellate(routes=[Route("/start", sub_endpoint)])

app = Stellate(
    routes=[
        Route("/after-disconnect", after_disconnect, cancel_on_disconnect=True),
        Route("/after-deadline", after_deadline, timeout=0.1),
        Route("/sync-task", sync_endpoint),
        Route("/unread", unread_body, methods=["POST"], cancel_on_disconnect=True),
        Route("/stuck", start_stuck),
        Route("/state", state),
        Mount("/sub", sub_app),
    ],
    lifespan=lifespan,
    shutdown_timeout=SHUTDOWN_TIMEOUT,
)
