"""How a route's handler is run: cancelled when the client leaves, bounded by a deadline.

Both policies are settings of the application (``Stellate(cancel_on_disconnect=...,
timeout=...)``), of a ``Mount`` (for everything under it) and of a ``Route``; the nearest
one that is set wins. The application and mounts publish theirs in the request context
(:mod:`stellate._context`) as the request passes; the route reads them only when it has no
setting of its own (:func:`resolve_policies`). A route with neither policy runs its app
directly: no task group, no wrapped ``send``.

Cancel on disconnect runs the handler in a task group beside a watcher that waits on the
connection's :class:`~stellate._disconnect.ReceiveMultiplexer`; the watcher cancels the
group the moment ``http.disconnect`` arrives, whether or not the handler has read its
body. Once the response is complete the watcher stops, so a server that reports the end
of the exchange as a disconnect does not cancel the response's background task. After a
cancellation nothing more is sent: the client is gone.

A deadline is an ``anyio.move_on_after`` around the handler. When it expires before the
response started, :class:`~stellate.exceptions.HandlerTimeout` (a 503 ``HTTPException``)
is raised for the exception handlers to answer. When the response has already started,
no answer can be sent any more: the stream is left unfinished and the application
returns, so the server closes the connection and the client can tell that the body is
incomplete (a truncated ``Content-Length`` body, or a chunked body without its last
chunk) rather than mistaking it for the whole response.
"""

from __future__ import annotations

import logging
import math

import anyio
import anyio.abc

from stellate._concurrency import create_task_group
from stellate._context import context_of, get_context
from stellate._disconnect import ReceiveMultiplexer, get_multiplexer
from stellate.exceptions import HandlerTimeout
from stellate.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["check_timeout", "publish_policies", "resolve_policies", "run_handler"]

disconnect_logger = logging.getLogger("stellate.disconnect")
timeout_logger = logging.getLogger("stellate.timeout")


def check_timeout(timeout: float | None) -> float | None:
    """Reject deadlines that cannot mean anything, where they are configured."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"timeout must be a number of seconds or None, not {timeout!r}")
    if math.isnan(timeout) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return float(timeout)


def publish_policies(
    scope: Scope, cancel_on_disconnect: bool | None, timeout: float | None
) -> None:
    """Hand an application's or a mount's policies down to the routes below it (None: none)."""
    if cancel_on_disconnect is None and timeout is None:
        return
    context = context_of(scope)
    if cancel_on_disconnect is not None:
        context.cancel_on_disconnect = cancel_on_disconnect
    if timeout is not None:
        context.timeout = timeout


def resolve_policies(
    scope: Scope, cancel_on_disconnect: bool | None, seconds: float | None
) -> tuple[bool, float | None]:
    """A route's policies: its own settings, else those handed down to it."""
    context = get_context(scope)
    if context is not None:
        if cancel_on_disconnect is None:
            cancel_on_disconnect = context.cancel_on_disconnect
        if seconds is None:
            seconds = context.timeout
    return cancel_on_disconnect is True, seconds


async def run_handler(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    cancel_on_disconnect: bool,
    seconds: float | None,
) -> None:
    """Run ``app`` for an HTTP scope under the given (resolved) policies."""
    timeout = seconds
    if scope["type"] != "http" or (not cancel_on_disconnect and timeout is None):
        await app(scope, receive, send)
        return
    guard = _Guard(send)
    if timeout is None or math.isinf(timeout):
        await _run(app, scope, receive, guard, cancel_on_disconnect)
        return
    try:
        with anyio.move_on_after(timeout) as deadline:
            guard.deadline = deadline.deadline
            await _run(app, scope, receive, guard, cancel_on_disconnect)
    except _DeadlinePassed:
        raise HandlerTimeout(timeout) from None
    if deadline.cancelled_caught:
        _timed_out(scope, guard, timeout)


def _timed_out(scope: Scope, guard: _Guard, timeout: float) -> None:
    if not guard.started:
        raise HandlerTimeout(timeout)
    # Too late for a 503: leave the stream unfinished so the server closes it.
    guard.closed = True
    timeout_logger.warning(
        "%s %s: the handler missed its %ss deadline after the response started; "
        "the response is cut short",
        scope.get("method"),
        scope.get("path"),
        timeout,
    )


async def _run(
    app: ASGIApp, scope: Scope, receive: Receive, guard: _Guard, cancel_on_disconnect: bool
) -> None:
    if not cancel_on_disconnect:
        await app(scope, receive, guard.send)
        return
    mux = get_multiplexer(scope)
    if mux is None:
        # A route used outside a Stellate application: install one for this request.
        mux = context_of(scope).receive = ReceiveMultiplexer(receive)
        receive = mux.receive
    async with create_task_group() as group:
        group.start_soon(_watch, mux, guard, group.cancel_scope)
        await app(scope, receive, guard.send)
        group.cancel_scope.cancel()
    if guard.closed:
        disconnect_logger.debug(
            "%s %s: the client disconnected; the handler was cancelled",
            scope.get("method"),
            scope.get("path"),
        )


async def _watch(mux: ReceiveMultiplexer, guard: _Guard, handler: anyio.CancelScope) -> None:
    with guard.watcher, mux.holding_disconnect():
        await mux.wait_disconnected()
        guard.closed = True
        handler.cancel()


class _DeadlinePassed(BaseException):
    """The handler tried to start its response after its deadline.

    A ``BaseException``, like a cancellation, so that the route's own exception handling
    (``except Exception``) lets it through to :func:`run_handler`, which answers it with
    ``HandlerTimeout`` exactly as it answers an expiry noticed by the cancel scope.
    """


class _Guard:
    """The handler's ``send``: notes the response's progress, drops what comes too late."""

    __slots__ = ("_send", "closed", "deadline", "started", "watcher")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.deadline = math.inf  # the handler's deadline on the event loop's clock
        self.started = False
        self.closed = False
        self.watcher = anyio.CancelScope()

    async def send(self, message: Message) -> None:
        if self.closed:
            return
        kind = message.get("type")
        if kind == "http.response.start":
            # A handler that blocked (a sync endpoint in its thread, or an async one that
            # never awaited) can pass its deadline before the cancellation reaches it; the
            # response has not started, so it is still a 503, not a response cut short.
            if anyio.current_time() >= self.deadline:
                raise _DeadlinePassed
            self.started = True
        elif kind == "http.response.body" and not message.get("more_body", False):
            # The exchange is over: a disconnect from now on is the server saying so,
            # not the client leaving early, and must not cancel what runs after.
            self.watcher.cancel()
        await self._send(message)
