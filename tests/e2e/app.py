"""The application the end-to-end tests serve with real servers (``stellate run app:app``).

``STELLATE_E2E_DIR`` names a directory holding ``data.bin`` (served with ranges) and
``markers.log``, where the application appends one line per event a test needs to see from
outside the server process: the lifespan's startup and shutdown, supervised tasks starting
and being cancelled, a stream or a handler being closed by a disconnect.

Requests that must happen in a particular order meet on named events (``?token=...``): a
stream waits for ``POST /release`` before its second chunk, and ``GET /closed`` answers once
a disconnected stream or handler has been cleaned up. Every wait is bounded, so a broken
server makes a test fail instead of hang.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel

from stellate.applications import Stellate
from stellate.middleware import Middleware
from stellate.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from stellate.requests import Request
from stellate.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from stellate.routing import Mount, Route, WebSocketRoute
from stellate.sse import EventSourceResponse, ServerSentEvent
from stellate.websockets import WebSocket, WebSocketDisconnect

DIRECTORY = Path(os.environ["STELLATE_E2E_DIR"])
MARKERS = DIRECTORY / "markers.log"
DATA = DIRECTORY / "data.bin"
WAIT = 10.0  # seconds any request waits for another one before giving up

_events: dict[str, anyio.Event] = {}


def mark(line: str) -> None:
    """Append a line to the marker file (tiny and local: written synchronously on purpose)."""
    with MARKERS.open("a", encoding="utf-8") as file:
        file.write(line + "\n")


def event(name: str) -> anyio.Event:
    if name not in _events:
        _events[name] = anyio.Event()
    return _events[name]


async def wait_for(name: str, seconds: float = WAIT) -> bool:
    with anyio.move_on_after(seconds):
        await event(name).wait()
        return True
    return False


async def supervised_forever(*, task_status: anyio.abc.TaskStatus[None]) -> None:
    """Runs until the application shuts down: the supervisor must cancel it then."""
    mark("task-started")
    task_status.started()
    try:
        await anyio.sleep_forever()
    finally:
        mark("task-cancelled")


@asynccontextmanager
async def lifespan(app: Stellate) -> AsyncIterator[dict[str, Any]]:
    mark("startup")
    await app.tasks.start(supervised_forever, name="forever")
    yield {"started": True}
    await anyio.lowlevel.checkpoint()  # teardown may await: it must not run in a cancelled scope
    mark("shutdown")


async def connection(request: Request) -> JSONResponse:
    assert request.client is not None
    return JSONResponse(
        {
            "client_port": request.client.port,
            "http_version": request.scope["http_version"],
            "started": request.state.started,
            "markers": MARKERS.read_text(encoding="utf-8").splitlines(),
            "pending_tasks": request.app.tasks.pending,
        }
    )


async def upload(request: Request) -> JSONResponse:
    digest = hashlib.sha256()
    size = 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
    return JSONResponse(
        {
            "size": size,
            "sha256": digest.hexdigest(),
            "transfer_encoding": request.headers.get("transfer-encoding"),
            "content_length": request.headers.get("content-length"),
        }
    )


async def stream(request: Request) -> StreamingResponse:
    token = request.query_params["token"]
    patience = float(request.query_params.get("patience", WAIT))

    async def chunks() -> AsyncIterator[bytes]:
        try:
            yield b"first\n"
            if await wait_for(f"release-{token}", patience):
                yield b"second\n"
            else:
                yield b"not released\n"
        finally:
            mark(f"stream-closed {token}")
            event(f"closed-{token}").set()

    return StreamingResponse(chunks(), media_type="text/plain")


async def release(request: Request) -> PlainTextResponse:
    event(f"release-{request.query_params['token']}").set()
    return PlainTextResponse("released")


async def closed(request: Request) -> PlainTextResponse:
    if await wait_for(f"closed-{request.query_params['token']}"):
        return PlainTextResponse("closed")
    return PlainTextResponse("still running", status_code=504)


async def started(request: Request) -> PlainTextResponse:
    if await wait_for(f"started-{request.query_params['token']}"):
        return PlainTextResponse("started")
    return PlainTextResponse("not started", status_code=504)


async def cancellable(request: Request) -> PlainTextResponse:
    """Runs until the client leaves: ``cancel_on_disconnect`` must cancel it then."""
    token = request.query_params["token"]
    event(f"started-{token}").set()
    try:
        released = await wait_for(f"release-{token}")
    except anyio.get_cancelled_exc_class():
        mark(f"handler-cancelled {token}")
        event(f"closed-{token}").set()
        raise
    return PlainTextResponse("released" if released else "timed out")


async def sse(request: Request) -> EventSourceResponse:
    async def events() -> AsyncIterator[ServerSentEvent]:
        for number in range(1, 4):
            yield ServerSentEvent(data=f"tick {number}\nline two", event="tick", id=str(number))

    return EventSourceResponse(events(), ping=None)


async def data_file(request: Request) -> FileResponse:
    return FileResponse(DATA, media_type="application/octet-stream")


async def echo(websocket: WebSocket) -> None:
    offered = websocket.scope.get("subprotocols", [])
    await websocket.accept(subprotocol="e2e.v1" if "e2e.v1" in offered else None)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") == "close":
                await websocket.close(code=4001, reason="bye")
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        return


async def reject(websocket: WebSocket) -> None:
    await websocket.close(code=1008)


async def hello(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json(
        {"name": websocket.path_params["name"], "query": dict(websocket.query_params)}
    )
    await websocket.close()


class Stamp(BaseHTTPMiddleware):
    """Marks what it passed on: the body then goes from the app's task to the server."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers["x-through"] = "base-http-middleware"
        return response


app = Stellate(
    routes=[
        Mount(
            "/through-middleware", routes=[Route("/stream", stream)], middleware=[Middleware(Stamp)]
        ),
        Route("/connection", connection),
        Route("/upload", upload, methods=["POST", "PUT"]),
        Route("/stream", stream),
        Route("/release", release, methods=["POST"]),
        Route("/closed", closed),
        Route("/started", started),
        Route("/cancellable", cancellable, cancel_on_disconnect=True),
        Route("/sse", sse),
        Route("/file", data_file),
        WebSocketRoute("/ws/echo", echo),
        WebSocketRoute("/ws/reject", reject),
        WebSocketRoute("/ws/hello/{name}", hello),
    ],
    lifespan=lifespan,
    shutdown_timeout=0.5,
)
