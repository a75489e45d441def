"""The application the fault and load tests serve (``stellate run fault_app:app``).

Every handler counts itself in and out (``_open[kind]``), in ``finally`` blocks, so a
handler or stream that a client abort left running shows up in ``GET /debug/state``,
together with the number of tasks the event loop is running
(``anyio.get_running_tasks()``, on asyncio and trio alike) and the exceptions the handlers
saw. The tests compare that state, the process's file descriptors and its resident
memory before and after a run of hostile clients.

``STELLATE_FAULT_DIR`` names a directory with ``file.bin`` (served by FileResponse and
StaticFiles) next to ``secret.txt`` (which no path may reach). ``STELLATE_FAULT_MODE``
selects a lifespan fault for the lifespan tests: ``startup-raises``, ``shutdown-raises``
or ``stubborn-task`` (a supervised task that ignores its cancellation for a while).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import hashlib
import os
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from stellate.applications import Stellate
from stellate.requests import ClientDisconnect, Request
from stellate.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from stellate.routing import Mount, Route, WebSocketRoute
from stellate.sse import EventSourceResponse, ServerSentEvent
from stellate.staticfiles import StaticFiles
from stellate.websockets import WebSocket, WebSocketDisconnect

DIRECTORY = Path(os.environ.get("STELLATE_FAULT_DIR", "."))
MODE = os.environ.get("STELLATE_FAULT_MODE", "")
#: How long the stubborn task keeps running after it was cancelled (seconds).
STUBBORN_FOR = 2.0

_open: Counter[str] = Counter()
_finished: Counter[str] = Counter()
_errors: list[str] = []


class _Tracked:
    """``with _Tracked("upload"):`` counts a handler (or stream) while it runs."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __enter__(self) -> None:
        _open[self.kind] += 1

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        _open[self.kind] -= 1
        _finished[self.kind] += 1
        # Cancellation and a client leaving are what this app expects; anything else is
        # a bug the test wants to see.
        expected = (
            anyio.get_cancelled_exc_class(),
            GeneratorExit,
            WebSocketDisconnect,
            ClientDisconnect,
            OSError,
        )
        if exc is not None and not isinstance(exc, expected):
            _errors.append(f"{self.kind}: {type(exc).__name__}: {exc}")


async def ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def upload(request: Request) -> JSONResponse:
    with _Tracked("upload"):
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.stream():
            digest.update(chunk)
            size += len(chunk)
        return JSONResponse({"size": size, "sha256": digest.hexdigest()})


async def form(request: Request) -> JSONResponse:
    with _Tracked("form"):
        async with request.form() as data:
            sizes = {}
            for name, value in data.multi_items():
                if isinstance(value, str):
                    sizes[name] = len(value)
                else:
                    sizes[name] = len(await value.read())
        return JSONResponse(sizes)


async def download(request: Request) -> StreamingResponse:
    size = int(request.query_params.get("size", "65536"))

    async def chunks() -> AsyncIterator[bytes]:
        with _Tracked("download"):
            sent = 0
            block = bytes(range(256)) * 64  # 16 KiB
            while sent < size:
                piece = block[: size - sent]
                sent += len(piece)
                yield piece

    return StreamingResponse(chunks(), media_type="application/octet-stream")


async def events(request: Request) -> EventSourceResponse:
    count = int(request.query_params.get("n", "5"))
    pause = float(request.query_params.get("pause", "0"))

    async def stream() -> AsyncIterator[ServerSentEvent]:
        with _Tracked("sse"):
            for number in range(count):
                if pause:
                    await anyio.sleep(pause)
                yield ServerSentEvent(data=f"event {number}", id=str(number))

    return EventSourceResponse(stream(), ping=None)


async def a_file(request: Request) -> FileResponse:
    return FileResponse(DIRECTORY / "file.bin", media_type="application/octet-stream")


async def echo(websocket: WebSocket) -> None:
    with _Tracked("websocket"):
        await websocket.accept()
        try:
            while True:
                text = await websocket.receive_text()
                await websocket.send_text(text)
        except WebSocketDisconnect:
            return


async def state(request: Request) -> JSONResponse:
    """Everything a leak would change: tasks, handlers still open, errors seen."""
    tasks = anyio.get_running_tasks()
    return JSONResponse(
        {
            "pid": os.getpid(),
            "tasks": len(tasks),
            "task_names": sorted(task.name for task in tasks),
            "open": {kind: count for kind, count in _open.items() if count},
            "finished": dict(_finished),
            "errors": _errors[-20:],
            "supervised": request.app.tasks.pending,
        }
    )


async def release(request: Request) -> PlainTextResponse:
    """Give freed memory back to the OS, so the process's RSS measures what it still holds.

    glibc keeps freed heap pages for reuse, so RSS stays at the high-water mark of the
    busiest moment; comparing two runs' high-water marks would compare how many uploads
    happened to overlap, not whether anything leaked.
    """
    gc.collect()
    libc_name = ctypes.util.find_library("c")
    trim = getattr(ctypes.CDLL(libc_name), "malloc_trim", None) if libc_name else None
    if trim is not None:
        trim(0)
    return PlainTextResponse("released")


async def stubborn(*, task_status: anyio.abc.TaskStatus[None]) -> None:
    """Ignores its cancellation: finishes what it does, shielded, well past the deadline."""
    task_status.started()
    try:
        await anyio.sleep_forever()
    finally:
        print("stubborn task: cancelled, finishing anyway", flush=True)
        with anyio.CancelScope(shield=True):
            await anyio.sleep(STUBBORN_FOR)
        print("stubborn task: done", flush=True)


@asynccontextmanager
async def lifespan(app: Stellate) -> AsyncIterator[None]:
    if MODE == "startup-raises":
        raise RuntimeError("cannot reach the database at db.invalid:5432")
    if MODE == "stubborn-task":
        await app.tasks.start(stubborn, name="stubborn-indexer")
    print("fault app: started", flush=True)
    yield
    if MODE == "shutdown-raises":
        raise RuntimeError("could not flush the write-behind cache")
    print("fault app: shut down", flush=True)


def client_left(request: Request, exc: Exception) -> PlainTextResponse:
    # As in Starlette, a client that leaves mid-body is an unhandled ClientDisconnect (the
    # server logs it) unless the application handles it: this one ends such requests
    # quietly; the answer goes to nobody.
    return PlainTextResponse("client disconnected", status_code=400)


app = Stellate(
    routes=[
        Route("/ok", ok),
        Route("/upload", upload, methods=["POST"]),
        Route("/form", form, methods=["POST"]),
        Route("/download", download),
        Route("/sse", events),
        Route("/file", a_file),
        Route("/debug/state", state),
        Route("/debug/release", release, methods=["POST"]),
        WebSocketRoute("/ws", echo),
        Mount("/static", StaticFiles(directory=DIRECTORY / "public", check_dir=False)),
    ],
    lifespan=lifespan,
    shutdown_timeout=0.5,
    exception_handlers={ClientDisconnect: client_left},
)
