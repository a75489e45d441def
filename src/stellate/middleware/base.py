"""``BaseHTTPMiddleware``: middleware written as ``dispatch(request, call_next) -> response``.

This is the one middleware in stellate that is not a plain ASGI wrapper: it gives its
subclass a ``Request`` and a ``call_next`` that runs the rest of the application and
returns its response as an object that can be inspected and changed before it is sent.

How it keeps the guarantees of a plain ASGI wrapper:

* **Streaming.** ``call_next`` runs the application in a task of a task group owned by
  this middleware's call, and returns as soon as the response has started. The
  application's next message waits until ``dispatch`` has decided what to do with the
  body. When the response returned by ``dispatch`` is the one ``call_next`` gave, its
  start is sent and the application then sends the rest of the body itself, straight
  to the client: no message is buffered, and none crosses from task to task. When
  ``dispatch`` reads the body, it crosses a zero-buffer memory object stream instead.
* **The body's framing.** The body goes out as Starlette sends it: each non-empty chunk
  the application sent in a message of its own with ``more_body=True``, then one empty
  message that ends it (an ``http.response.pathsend`` message ends it instead). Trailers
  the application declared are passed on after it.
* **The request body.** ``dispatch``'s ``Request`` and the application share what the
  client sent, as in Starlette (see :class:`_AppReceive`): a body that ``dispatch`` read
  with ``body()`` reaches the application whole, in one message; one it streamed to the
  end reaches it empty; after a partial stream the application reads on from there. What
  the application consumed is gone for ``dispatch``'s ``Request`` (``Stream consumed``;
  ``is_disconnected()`` is true once the application saw the disconnect), so reading the
  body after ``call_next`` never waits for a client that has nothing more to send.
* **Disconnects.** Every layer of the request reads the client through the connection's
  receive multiplexer (``stellate._disconnect``; this middleware installs one when it runs
  outside a ``Stellate`` application): once the client has gone, every later ``receive``
  says so at once, without asking the server again. Once the response has been sent, the
  application's ``receive`` says the client has gone.
* **Background tasks.** The application's ``send`` of its last body message returns
  only once that message has been sent to the client, so a background task attached to
  the endpoint's response starts after the response is complete, and a background task
  attached by ``dispatch`` starts after the application has finished.
* **Errors.** An exception of the application is raised by ``call_next`` (before the
  response started) or while the body is sent (after), as itself, never wrapped in an
  exception group. Cancellation is never caught.

A response from ``call_next`` that ``dispatch`` does not return is abandoned: the task
running it is cancelled once the response that was returned has been sent. If the client
leaves before the application answered (a handler cancelled on disconnect), ``dispatch``
is cancelled too: there is nobody left to answer. If it leaves while the body is being
sent, the error of the server's ``send`` is raised as a ``StreamingResponse`` raises it
(``stellate._sending.send_until_disconnect``): on ASGI 2.4 servers the ``OSError``
becomes ``ClientDisconnect``, below 2.4 it propagates; the application is cancelled.
Below 2.4, where ``send`` need not fail, noticing ``http.disconnect`` is left to the
application's own response (stellate's streaming responses listen for it): the
middleware does not listen a second time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from stellate._concurrency import create_task_group
from stellate._context import context_of
from stellate._disconnect import ReceiveMultiplexer, get_multiplexer
from stellate._sending import send_until_disconnect
from stellate.requests import Request
from stellate.responses import AsyncContentStream, Response, StreamingResponse
from stellate.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BaseHTTPMiddleware", "DispatchFunction", "RequestResponseEndpoint"]

RequestResponseEndpoint = Callable[[Request], Awaitable[Response]]
DispatchFunction = Callable[[Request, RequestResponseEndpoint], Awaitable[Response]]


class BaseHTTPMiddleware:
    """Subclass and override :meth:`dispatch`, or pass ``dispatch=`` a function.

    Only HTTP requests go through ``dispatch``; WebSocket and lifespan scopes pass
    straight to the application.
    """

    def __init__(self, app: ASGIApp, dispatch: DispatchFunction | None = None) -> None:
        self.app = app
        self.dispatch_func: DispatchFunction = self.dispatch if dispatch is None else dispatch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        context = context_of(scope)
        installed = context.receive is None
        if installed:
            # Outside a Stellate application: the multiplexer it would have installed,
            # so a disconnect is remembered and a listener leaves the body to the app.
            mux = context.receive = ReceiveMultiplexer(receive)
            receive = mux.receive
        try:
            await self._serve(scope, receive, send)
        finally:
            if installed:
                context.receive = None  # it holds the server's receive: no cycle

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive=receive, send=send)
        calls: list[_AppCall] = []
        try:
            await self._dispatch_in_group(request, scope, receive, send, calls)
        finally:
            for call in calls:
                call.close()
            # The uploads of a form that dispatch read (the endpoint's request closes its own).
            await request.close()
        for call in calls:
            call.raise_pending_error()

    async def _dispatch_in_group(
        self,
        request: Request,
        scope: Scope,
        receive: Receive,
        send: Send,
        calls: list[_AppCall],
    ) -> None:
        async with create_task_group() as group:

            async def call_next(next_request: Request) -> Response:
                call = _AppCall(get_multiplexer(scope))
                calls.append(call)
                app_receive = _AppReceive(request, call)
                group.start_soon(call.run, self.app, next_request.scope, app_receive)
                try:
                    return await call.response()
                except RuntimeError:
                    mux = get_multiplexer(scope)
                    if call.error is not None or mux is None or not mux.disconnected:
                        raise
                    # The client left and the app answered nothing (it was cancelled
                    # on disconnect): this dispatch ends too, quietly.
                    group.cancel_scope.cancel()
                    await anyio.lowlevel.checkpoint()
                    raise

            response = await self.dispatch_func(request, call_next)
            if response is None:
                raise TypeError(
                    f"{_name(self.dispatch_func)} returned None instead of a Response; "
                    "did you forget to 'return await call_next(request)'?"
                )
            await response(scope, receive, send)
            _settle(calls, group)

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        """Override: return a response, usually ``await call_next(request)`` adjusted."""
        raise NotImplementedError()


def _name(func: Callable[..., Any]) -> str:
    return getattr(func, "__qualname__", None) or repr(func)


def _settle(calls: list[_AppCall], group: TaskGroup) -> None:
    """After the response was sent: let finished apps wrap up, cancel abandoned ones."""
    for call in calls:
        if call.client_send is not None:
            # It sends its own body to the client; the group waits for it to finish.
            continue
        if call.reached_end:
            # Its background tasks may run now; whatever it still sends is dropped. (When
            # the body was forwarded, the app has finished already: no task is needed.)
            call.response_sent.set()
            if not call.drained:
                group.start_soon(call.drain)
        else:
            call.cancel_scope.cancel()


def _disconnect_message() -> Message:
    return {"type": "http.disconnect"}


class _AppReceive:
    """The application's ``receive``: what the client sent, shared with ``dispatch``'s Request.

    The sharing follows Starlette and is the Request's business
    (``stellate.requests._SharedReceive``): a body that ``dispatch`` read whole reaches
    the application in one message, one it streamed to the end as one empty message,
    otherwise the application reads on from where ``dispatch`` stopped, and what it takes
    (the body's end, a disconnect) is gone for ``dispatch``'s Request. Once the response
    has been sent, the client counts as gone.
    """

    __slots__ = ("_call", "_client")

    def __init__(self, request: Request, call: _AppCall) -> None:
        self._client = request._shared_receive()
        self._call = call

    async def __call__(self) -> Message:
        if self._call.response_sent.is_set:
            return _disconnect_message()
        return await self._client()


class _Latch:
    """A flag set once, that one task can wait for: its ``anyio.Event`` is made only then.

    Each latch of an :class:`_AppCall` has a single waiter (the middleware's task or the
    application's), which is all this supports.
    """

    __slots__ = ("_event", "is_set")

    def __init__(self) -> None:
        self.is_set = False
        self._event: anyio.Event | None = None

    def set(self) -> None:
        self.is_set = True
        if self._event is not None:
            self._event.set()

    async def wait(self) -> None:
        if not self.is_set:
            self._event = anyio.Event()
            await self._event.wait()


class _AppCall:
    """One ``call_next``: the application running in a task of the middleware's group.

    What it sends before the response starts is kept for the response. After the start,
    its next message waits until the middleware has decided where the body goes:
    straight to the client (:meth:`forward`), or through a stream to ``dispatch``
    (:meth:`body_chunks`). An application whose response is abandoned is cancelled while
    it waits.
    """

    def __init__(self, mux: ReceiveMultiplexer | None) -> None:
        self._mux = mux  # the connection's: whether the client has gone
        self.cancel_scope = anyio.CancelScope()
        self.start: Message | None = None
        self.early: list[Message] = []
        self.trailers = False
        self.started = _Latch()  # the response started, or the app ended without one
        self.decided = _Latch()
        self.finished = _Latch()
        self.response_sent = _Latch()
        self.forwarded = _Latch()  # forwarding: the body is out, failed, or the app ended
        # Forwarding: the client's send, which the app's messages go to directly.
        self.client_send: Send | None = None
        self.send_error: Exception | None = None
        # Reading: the stream the body crosses to dispatch.
        self._outbox: MemoryObjectSendStream[Message] | None = None
        self._inbox: MemoryObjectReceiveStream[Message] | None = None
        self.reached_end = False
        self.stopped = False  # no more messages go to the client
        self.drained = False  # the app has finished and its stream is exhausted
        self.error: Exception | None = None
        self._error_raised = False

    async def run(self, app: ASGIApp, scope: Scope, receive: Receive) -> None:
        with self.cancel_scope:
            try:
                await app(scope, receive, self._send)
            except Exception as exc:
                # Raised where the middleware is waiting for this app (call_next or
                # the body), not from this task, so it arrives once and unwrapped.
                self.error = exc
            finally:
                self.finished.set()
                self.started.set()
                self.forwarded.set()
                if self._outbox is not None:
                    self._outbox.close()

    async def _send(self, message: Message) -> None:
        if self.start is None:
            if message["type"] == "http.response.start":
                self.start = message
                self.trailers = bool(message.get("trailers", False))
                self.started.set()
            else:
                self.early.append(message)
            return
        await self.decided.wait()
        if self.client_send is not None:
            if not self.stopped:
                await self._send_to_client(self.client_send, message)
            return
        assert self._outbox is not None  # decided, and not forwarding: dispatch reads
        await self._outbox.send(message)
        if _is_last(message, self.trailers):
            await self.response_sent.wait()

    async def _send_to_client(self, send: Send, message: Message) -> None:
        try:
            await _send_reframed(send, message)
        except Exception as exc:
            # The app stops here, as if the middleware had sent the message; the
            # middleware raises the error (forward), as a StreamingResponse would.
            self.send_error = exc
            self._stop()
            await anyio.lowlevel.checkpoint()
        else:
            if _is_last(message, self.trailers):
                self.reached_end = self.stopped = True
                self.response_sent.set()
                self.forwarded.set()

    def _stop(self) -> None:
        self.stopped = True
        self.cancel_scope.cancel()
        self.forwarded.set()

    async def response(self) -> Response:
        """Wait for the response to start; raise the app's error if it failed before."""
        await self.started.wait()
        if self.start is None:
            self.raise_pending_error()
            raise RuntimeError("No response returned.")
        return _StreamedResponse(self, self.start, self.early)

    def raise_pending_error(self) -> None:
        if self.error is not None and not self._error_raised:
            self._error_raised = True
            raise self.error

    def close(self) -> None:
        if self._inbox is not None:
            self._inbox.close()

    async def forward(self, send: Send) -> None:
        """Send the rest of the response to the client as the app produces it.

        Run by :func:`~stellate._sending.send_until_disconnect`: an error of the server's
        ``send`` is raised here, and a cancellation stops the app. An
        error of the app is not (the caller raises it as itself afterwards): an
        ``OSError`` of its own must not pass for the client's leaving.
        """
        if self._inbox is None:
            # The app sends it itself, straight to the client.
            self.client_send = send
            self.decided.set()
            try:
                await self.forwarded.wait()
            except anyio.get_cancelled_exc_class():
                self._stop()
                raise
            if self.send_error is not None:
                raise self.send_error
        else:
            # dispatch read part of the body: the rest comes through the stream.
            await self._forward_rest(send)
        client_gone = self._mux is not None and self._mux.disconnected
        if not (self.reached_end or self.stopped or client_gone) and self.error is None:
            # The app returned without ending its body: the middleware ends it.
            await send(_closing_message())

    async def _forward_rest(self, send: Send) -> None:
        assert self._inbox is not None
        if self.reached_end:
            # dispatch's iteration took the body's last message: only its end is left.
            await send(_closing_message())
        if not self.reached_end or self.trailers:
            async for message in self._inbox:
                await _send_reframed(send, message)
                if _is_last(message, self.trailers):
                    self.reached_end = True
                    break
        if self.reached_end:
            # Let the app finish (its background tasks) before the caller goes on to
            # anything attached to the outer response.
            self.response_sent.set()
            await self.drain()

    def _open_stream(self) -> MemoryObjectReceiveStream[Message]:
        if self._inbox is None:
            self._outbox, self._inbox = anyio.create_memory_object_stream[Message](0)
            if self.finished.is_set:
                self._outbox.close()
            self.decided.set()
        return self._inbox

    async def body_chunks(self) -> AsyncIterator[bytes]:
        """The body, chunk by chunk, for a ``dispatch`` that reads it itself."""
        async for message in self._open_stream():
            if message["type"] != "http.response.body":
                continue
            body = message.get("body", b"")
            if body:
                yield bytes(body)
            if not message.get("more_body", False):
                self.reached_end = True
                return
        self.raise_pending_error()

    async def drain(self) -> None:
        async for _ in self._open_stream():
            pass
        self.drained = True


def _closing_message() -> Message:
    return {"type": "http.response.body", "body": b"", "more_body": False}


async def _send_reframed(send: Send, message: Message) -> None:
    """Send an app's message as Starlette does: each chunk, then a separate empty end."""
    if message["type"] != "http.response.body":
        await send(message)
        return
    body = message.get("body", b"")
    if body:
        await send({"type": "http.response.body", "body": body, "more_body": True})
    if not message.get("more_body", False):
        await send(_closing_message())


def _is_last(message: Message, trailers: bool) -> bool:
    kind = message["type"]
    if kind == "http.response.pathsend":
        return True
    if trailers:
        return kind == "http.response.trailers" and not message.get("more_trailers", False)
    # A zero-copy send (ASGI extension) ends the body as a body message does.
    body_kinds = ("http.response.body", "http.response.zerocopysend")
    return kind in body_kinds and not message.get("more_body", False)


class _StreamedResponse(StreamingResponse):
    """The response ``call_next`` returns: status and headers known, body still streaming.

    ``headers`` (and ``set_cookie``...) change what will be sent. ``body_iterator`` yields
    the body if ``dispatch`` wants to read it; replacing it sends the new body instead
    (without the app's trailers: they belonged to its body).
    """

    def __init__(self, call: _AppCall, start: Message, early: list[Message]) -> None:
        self._call = call
        self._early = early
        self.status_code = int(start["status"])
        self.raw_headers = [(bytes(k), bytes(v)) for k, v in start.get("headers", ())]
        self.background = None
        self._sync_content = None
        # Made on first use: most dispatch functions never look at the body.
        self._own_iterator: AsyncIterator[bytes] | None = None
        self._iterator: AsyncContentStream | None = None

    @property
    def body_iterator(self) -> AsyncContentStream:
        if self._iterator is None:
            self._iterator = self._own_iterator = self._call.body_chunks()
        return self._iterator

    @body_iterator.setter
    def body_iterator(self, iterator: AsyncContentStream) -> None:
        self._iterator = iterator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        for message in self._early:
            await send(message)
        iterator = self._iterator
        if iterator is not None and iterator is not self._own_iterator:
            # A body of dispatch's own: sent as every streamed body is (stellate._sending).
            await super().__call__(scope, receive, send)
            return
        # As Starlette: the start carries the status and headers only (and the app's
        # trailers announcement, for the trailers passed on after the body).
        start: Message = {
            "type": "http.response.start",
            "status": self.status_code,
            "headers": list(self.raw_headers),
        }
        if self._call.trailers:
            start["trailers"] = True
        await send(start)
        # listen=None: the app's own response listens for http.disconnect where the
        # server needs it (a second listener here would cost a task group per request).
        await send_until_disconnect(scope, receive, send, self._call.forward, listen=None)
        self._call.raise_pending_error()
        if self.background is not None:
            # What dispatch attached runs after the app is done, its background included.
            await self._call.finished.wait()
            self._call.raise_pending_error()
            await self.background()
