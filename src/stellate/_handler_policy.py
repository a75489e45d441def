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
body. The watcher's reach is the handler and the sending of its response, never the work
that follows: once the last body message is on its way the watcher stands down, so a
client that read the whole answer and left (which servers report as ``http.disconnect``,
often before that last ``send`` has even returned) does not cancel the response's
background task. After a cancellation nothing more is sent: the client is gone.

A deadline is an ``anyio.move_on_after`` around the handler. When it expires before the
response started, :class:`~stellate.exceptions.HandlerTimeout` (a 503 ``HTTPException``)
is raised for the exception handlers to answer. When the response has already started,
no answer can be sent any more: the stream is left unfinished and the application
returns, so the server closes the connection and the client can tell that the body is
incomplete (a truncated ``Content-Length`` body, or a chunked body without its last
chunk) rather than mistaking it for the whole response. Like the watcher, the deadline
covers producing the response: once its last body message is on its way the deadline
is lifted, so the response's background task runs to its end.
"""

from __future__ import annotations

import logging
import math

import anyio
import anyio.abc

from stellate._concurrency import create_task_group
from stellate._context import MAX_BODY_SIZE_SCOPE_KEY, context_of, get_context
from stellate._disconnect import READ_AHEAD_LIMIT, ReceiveMultiplexer, get_multiplexer
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
    max_body_size: int | None = None,
) -> None:
    """Run ``app`` for an HTTP scope under the given (resolved) policies.

    ``max_body_size`` is the route's own body limit, if it has one: the watcher never
    reads ahead more than that.
    """
    timeout = seconds
    if scope["type"] != "http" or (not cancel_on_disconnect and timeout is None):
        await app(scope, receive, send)
        return
    guard = _Guard(send)
    if timeout is None or math.isinf(timeout):
        await _run(app, scope, receive, guard, cancel_on_disconnect, max_body_size)
        return
    try:
        with anyio.move_on_after(timeout) as deadline:
            guard.deadline = deadline.deadline
            guard.deadline_scope = deadline
            await _run(app, scope, receive, guard, cancel_on_disconnect, max_body_size)
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
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    guard: _Guard,
    cancel_on_disconnect: bool,
    max_body_size: int | None,
) -> None:
    if not cancel_on_disconnect:
        await app(scope, receive, guard.send)
        return
    mux = get_multiplexer(scope)
    if mux is None:
        # A route used outside a Stellate application: install one for this request.
        mux = context_of(scope).receive = ReceiveMultiplexer(receive)
        receive = mux.receive
    read_ahead = _read_ahead(scope, max_body_size)
    async with create_task_group() as group:
        group.start_soon(_watch, mux, guard, group.cancel_scope, read_ahead)
        await app(scope, receive, guard.send)
        group.cancel_scope.cancel()
    if guard.closed:
        disconnect_logger.debug(
            "%s %s: the client disconnected; the handler was cancelled",
            scope.get("method"),
            scope.get("path"),
        )


def _read_ahead(scope: Scope, max_body_size: int | None) -> tuple[int, bool]:
    """How far the watcher may read ahead, and whether it must wait for the handler first.

    Never more than the body the route accepts (its own ``max_body_size``, else the one
    in force around it), nor more than :data:`READ_AHEAD_LIMIT`. A request that expects
    ``100-continue`` is not read before the handler asks for its body: the server's
    first ``receive`` tells the client to go on.
    """
    if max_body_size is None:
        max_body_size = scope.get(MAX_BODY_SIZE_SCOPE_KEY)
    limit = READ_AHEAD_LIMIT if max_body_size is None else min(max_body_size, READ_AHEAD_LIMIT)
    expects = any(
        name == b"expect" and value.lower() == b"100-continue"
        for name, value in scope.get("headers", ())
    )
    return limit, expects


async def _watch(
    mux: ReceiveMultiplexer,
    guard: _Guard,
    handler: anyio.CancelScope,
    read_ahead: tuple[int, bool],
) -> None:
    limit, after_first_receive = read_ahead
    with guard.watcher, mux.holding_disconnect():
        await mux.wait_disconnected(limit, after_first_receive=after_first_receive)
        # The response may have completed before this scope's cancellation was
        # delivered: a watcher that starts only after a quick response, or whose read
        # returns the disconnect without awaiting (uvicorn, once the response is
        # complete), gets here without a checkpoint in between. The response wins.
        if guard.complete:
            return
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

    __slots__ = ("_send", "closed", "complete", "deadline", "deadline_scope", "started", "watcher")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.deadline = math.inf  # the handler's deadline on the event loop's clock
        self.deadline_scope: anyio.CancelScope | None = None
        self.started = False
        self.complete = False
        self.closed = False
        self.watcher = anyio.CancelScope()

    def _stand_down(self) -> None:
        """The response is complete: what runs after it (its background) is not watched."""
        self.complete = True
        self.watcher.cancel()
        if self.deadline_scope is not None:
            self.deadline_scope.deadline = math.inf

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
            # not the client leaving early, and must not cancel what runs after; nor
            # does the deadline, which was for producing the response.
            self._stand_down()
        await self._send(message)
