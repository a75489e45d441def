"""Background work, in the two shapes structured concurrency gives it an owner.

* Work a request starts but need not wait for (hashing an upload) runs in the
  application's supervised task group, ``app.tasks``: it outlives the request, not the
  application. At shutdown the supervisor stops taking new tasks, waits for these
  (up to ``shutdown_timeout``) and cancels what is left, naming it in the log.
* Work that lives exactly as long as the application (the heartbeat) runs in a task
  group opened by the lifespan: it is cancelled the moment the lifespan exits, instead
  of holding up shutdown the way an endless task in ``app.tasks`` would.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from stellate.concurrency import run_in_threadpool

from .feed import Feed
from .store import Upload


async def digest_upload(feed: Feed, upload: Upload) -> None:
    """Hash an upload in a worker thread (hashing is blocking work), then say so."""
    upload.sha256 = await run_in_threadpool(_sha256, upload.data)
    feed.publish("digest", f"{upload.filename}: sha256 {upload.sha256}")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def heartbeat(feed: Feed, interval: float) -> None:
    """Publish the server's time every ``interval`` seconds, until cancelled."""
    while True:
        await anyio.sleep(interval)
        feed.publish("tick", time.strftime("server time %H:%M:%S UTC", time.gmtime()))


@asynccontextmanager
async def heartbeat_running(feed: Feed, interval: float | None) -> AsyncIterator[None]:
    """Run :func:`heartbeat` for the duration of the block (not at all for None)."""
    if interval is None:
        yield
        return
    async with anyio.create_task_group() as tg:
        tg.start_soon(heartbeat, feed, interval, name="heartbeat")
        try:
            yield
        finally:
            tg.cancel_scope.cancel()
