"""Sending a response body until the client leaves: the one place that does it (DESIGN §3.5).

Every response whose body takes time to send (StreamingResponse, FileResponse, the SSE
response, and through StreamingResponse a body that BaseHTTPMiddleware's ``dispatch``
replaced) sends it through :func:`send_until_disconnect`, which decides *how* the
client's leaving is noticed:

* **ASGI 2.4 and later** (``scope["asgi"]["spec_version"]``): the server raises
  ``OSError`` from ``send`` once the client is gone, as the spec says, so nothing listens
  and ``receive()`` is never called. The ``OSError`` becomes
  :class:`~stellate.requests.ClientDisconnect` (or, for FileResponse, which Starlette
  lets it through, stays as it is).
* **Older servers** (or no version, meaning 2.0) only tell through ``http.disconnect``: a
  listener waits for it beside the body, in a task group this call owns, and whichever
  ends first stops the other. That is what stops a stream idling between chunks.
* **WebSocket denial responses** never listen either: ``receive`` belongs to the
  websocket protocol there.

A *watcher* may run beside the body on every version (the SSE response's pings: on 2.4 a
failing ping is how a silent leave is seen); it stops the body the way the listener does.

When the body is stopped, it gets *one* cancellation (that is how an idle stream, waiting
inside its generator, is woken) and then a shield for :data:`CLEANUP_GRACE` seconds, so
the ``finally:`` of an async generator that awaits (releasing a subscription, closing a
connection) runs to completion instead of being cancelled again at its first await.
:func:`close_shielded` gives the same bounded shield to closing an iterator afterwards.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import anyio

from stellate._concurrency import create_task_group
from stellate._context import StartTrackingSend
from stellate._disconnect import disconnect_receive
from stellate.requests import ClientDisconnect
from stellate.types import Message, Receive, Scope, Send

__all__ = [
    "CLEANUP_GRACE",
    "close_shielded",
    "listens_for_disconnect",
    "prefixed_send",
    "send_until_disconnect",
    "spec_at_least_2_4",
    "wait_for_http_disconnect",
]

#: How long, in seconds, a body's cleanup may run once the client has gone.
CLEANUP_GRACE = 5.0


def spec_at_least_2_4(scope: Scope) -> bool:
    """Whether the server speaks ASGI 2.4 or later (it raises ``OSError`` from ``send``)."""
    asgi = scope.get("asgi")
    spec = asgi.get("spec_version", "2.0") if isinstance(asgi, dict) else "2.0"
    return _at_least_2_4(spec) if isinstance(spec, str) else False


@functools.lru_cache(maxsize=16)
def _at_least_2_4(spec: str) -> bool:
    # Cached: a server always declares the same version, and this runs per response.
    major, _, minor = spec.partition(".")
    try:
        return (int(major), int(minor.partition(".")[0] or 0)) >= (2, 4)
    except ValueError:
        return False


def listens_for_disconnect(scope: Scope) -> bool:
    """Whether a response on ``scope`` must listen for ``http.disconnect`` to notice a leave."""
    return scope.get("type") == "http" and not spec_at_least_2_4(scope)


async def wait_for_http_disconnect(receive: Receive) -> None:
    """Return once ``receive`` brings ``http.disconnect`` (body messages are not ours)."""
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            return


Watch = Callable[[Send], Awaitable[BaseException | None]]
Stopper = Callable[[], Awaitable[BaseException | None]]


async def send_until_disconnect(
    scope: Scope,
    receive: Receive,
    send: Send,
    body: Callable[[Send], Awaitable[None]],
    *,
    listen: Callable[[Receive], Awaitable[None]] | None = wait_for_http_disconnect,
    watch: Watch | None = None,
    client_disconnect: bool = True,
) -> None:
    """Run ``body(send)`` until it ends or the client leaves.

    ``listen(receive)`` runs beside the body on servers that need a listener and returns
    when the client has gone; ``listen=None`` when the body's producer listens itself
    (BaseHTTPMiddleware forwarding an application's own response). ``watch(send)``, if
    given, runs beside the body on every server (the SSE response pings with it) and
    returns when it found the client gone, with the error ``send`` raised, which is
    raised once the body has stopped. An
    ``OSError`` on an ASGI 2.4 scope is raised as ``ClientDisconnect`` when
    ``client_disconnect`` (Starlette's StreamingResponse), as itself otherwise
    (FileResponse). Returns normally when the listener stopped the body.
    """
    stoppers: list[Stopper] = []
    if listen is not None and listens_for_disconnect(scope):
        stoppers.append(_listening(listen, disconnect_receive(scope, receive)))
    if watch is not None:
        stoppers.append(partial(watch, send))
    try:
        if not stoppers:
            await body(send)
            return
        race = _Race(send)
        await race.run(body, stoppers)
        if race.error is not None:
            raise race.error
    except OSError as exc:
        if client_disconnect and spec_at_least_2_4(scope):
            raise ClientDisconnect() from exc
        raise


class _ClientLeft(Exception):
    """Raised by a body's ``send`` once the client has gone; ends the body quietly."""


class _Race:
    """A body and its stoppers (listener, watcher); the first to end stops the others.

    When the client leaves, the body gets exactly one cancellation and then a bounded
    shield for its cleanup. Both backends deliver a cancellation at once to a task that
    is blocked (waiting inside its generator, or in ``send``): there the shield can go up
    right after. A body that is running at that moment would only see the cancellation
    at its next checkpoint, which the shield now hides; so :meth:`send` checks, before
    and after each message, and ends the body there.

    Once the last body message has been handed to the server the response is complete,
    and a stopper that ends after that stops nothing: hypercorn, for one, reports
    ``http.disconnect`` as soon as a response is complete, and treating that as a leave
    would put every response through the cancel-and-shield path above.
    """

    __slots__ = ("_cleanup", "_complete", "_left", "_send", "_tracker", "error")

    def __init__(self, send: Send) -> None:
        # Sent past a start tracker, which is told once (see StartTrackingSend): every
        # message would otherwise cross one more call, on top of this guard.
        self._tracker = send if type(send) is StartTrackingSend else None
        self._send = send.send if type(send) is StartTrackingSend else send
        self._cleanup = anyio.CancelScope()
        self._left = False
        self._complete = False  # the last body message has been handed to the server
        self.error: BaseException | None = None

    async def run(
        self,
        body: Callable[[Send], Awaitable[None]],
        stoppers: list[Stopper],
    ) -> None:
        async with create_task_group() as group:
            group.start_soon(self._run_body, body, group.cancel_scope)
            error = await _first_of(stoppers)
            if self._complete:
                # The response was sent in full; the body is ending on its own. Some
                # servers (hypercorn) report http.disconnect as soon as a response is
                # complete, so this is the common case, not a leave.
                return
            self.error = error
            self._left = True
            group.cancel_scope.cancel()
            self._cleanup.shield = True
            self._cleanup.deadline = anyio.current_time() + CLEANUP_GRACE

    async def _run_body(
        self, body: Callable[[Send], Awaitable[None]], done: anyio.CancelScope
    ) -> None:
        with self._cleanup:
            try:
                await body(self.send)
            except _ClientLeft:
                return
        done.cancel()

    async def send(self, message: Message) -> None:
        if self._left:
            raise _ClientLeft()
        if self._tracker is not None:  # a response's first message is its start
            self._tracker.started = True
            self._tracker = None
        elif not message.get("more_body") and message.get("type") == "http.response.body":
            self._complete = True
        await self._send(message)
        if self._left:
            raise _ClientLeft()


def _listening(listen: Callable[[Receive], Awaitable[None]], receive: Receive) -> Stopper:
    async def listening() -> None:
        await listen(receive)

    return listening


async def _first_of(
    stoppers: list[Stopper],
) -> BaseException | None:
    """Await the stoppers side by side; the first result, once one of them returned."""
    if len(stoppers) == 1:
        return await stoppers[0]()
    results: list[BaseException | None] = []

    async def run(stopper: Stopper) -> None:
        results.append(await stopper())
        group.cancel_scope.cancel()

    async with create_task_group() as group:
        for stopper in stoppers:
            group.start_soon(run, stopper)
    return results[0]


async def close_shielded(close: Callable[[], Awaitable[Any]]) -> None:
    """Await ``close`` shielded from cancellation, for at most :data:`CLEANUP_GRACE` s."""
    with anyio.move_on_after(CLEANUP_GRACE, shield=True):
        await close()


def prefixed_send(scope: Scope, send: Send) -> Send:
    """``send`` that turns ``http.response.*`` into ``websocket.http.response.*`` on a
    websocket scope (a denial response, ASGI extension), so one body sender serves both.
    """
    if scope.get("type") != "websocket":
        return send

    async def send_denial(message: Message) -> None:
        kind = message.get("type", "")
        if kind.startswith("http.response."):
            message = {**message, "type": "websocket." + kind}
        await send(message)

    return send_denial
