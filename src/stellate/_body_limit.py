"""The one request-body size limit, behind ``RequestBodyLimitMiddleware`` and ``max_body_size``.

A limit is enforced where the body is *read*, by wrapping ``receive``, and where the
response *starts*, by wrapping ``send``:

* a declared ``Content-Length`` over the limit is refused (413) at the first read,
  before a single body byte is pulled from the server, so the client is not asked to
  send the rest (a server answering ``Expect: 100-continue`` never says "continue");
* a streamed body (chunked, or lying about its length) is counted as it arrives and
  refused the moment it crosses the limit: the chunk that crosses it is dropped, so
  nothing beyond the limit is ever handed to the application;
* an application that never reads an over-declared body is refused all the same: its
  response start is replaced by the 413, and the ``send`` that carried it raises
  :class:`_RequestBodyLimitResponseSent` so the application stops.

Limits nest, and **the innermost setting wins**: ``RequestBodyLimitMiddleware``,
``Stellate(max_body_size=...)``, ``Router``, ``Mount`` and ``Route`` all go through
:class:`RequestBodyLimitResponder`. The first one on the way in wraps ``receive`` and
``send`` and keeps a :class:`BodyCounter` in the request context; each one further in
only replaces the counter's limit while its app runs, so a route can allow more (or
less) than the application around it and the bytes are still counted once. The limit in
force is published as ``scope[MAX_BODY_SIZE_SCOPE_KEY]`` while a limited call runs; when
the call returns, the scope and the counter are as they were before it.

The refusal is an ``HTTPException(413, "Content Too Large")`` raised from ``receive``:
inside an application the exception handlers answer it; outside one, the responder that
wrapped ``receive`` answers 413 itself, if nothing was sent yet.
"""

from __future__ import annotations

from stellate._context import (
    MAX_BODY_SIZE_SCOPE_KEY,
    RequestContext,
    context_of,
    get_context,
    remove_context,
)
from stellate.exceptions import HTTPException
from stellate.responses import PlainTextResponse
from stellate.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "BodyCounter",
    "RequestBodyLimitMiddleware",
    "RequestBodyLimitResponder",
    "_RequestBodyLimitResponseSent",
    "_RequestBodyTooLarge",
]

_TOO_LARGE = "Content Too Large"
_MISSING = object()


class _RequestBodyTooLarge(HTTPException):
    """Raised from ``receive`` when the body is over the limit: a 413 for the handlers."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail=_TOO_LARGE)


class _RequestBodyLimitResponseSent(Exception):
    """Raised from ``send`` once the limit's own 413 replaced the application's response.

    It stops an application that answered without reading an over-declared body; the
    responder that sent the 413 catches it. Code between them that catches broad
    exceptions should let it through, as it would ``HTTPException``.
    """


class BodyCounter:
    """How much body has been read, against which limit, and what the client declared."""

    __slots__ = ("declared", "limit", "received", "refused")

    def __init__(self, limit: int, declared: int | None) -> None:
        self.limit = limit
        self.declared = declared
        self.received = 0
        # Whether the application has been told (a 413 raised from receive).
        self.refused = False

    def over_limit(self) -> bool:
        return self.received > self.limit or (self.declared or 0) > self.limit

    def check(self) -> None:
        if self.over_limit():
            self.refused = True
            raise _RequestBodyTooLarge()


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            # A malformed length is the server's to refuse; counting still protects us.
            if not value.isdigit():
                return None
            # int() of thousands of digits is slow, and past 4300 an error: a length of
            # more than 18 significant digits exceeds any limit, whatever its value.
            digits = value.lstrip(b"0")
            return int(digits or b"0") if len(digits) <= 18 else 10**18
    return None


def checked_limit(max_body_size: int) -> int:
    """``max_body_size`` if it is a usable limit; ValueError where it is configured."""
    if isinstance(max_body_size, bool) or not isinstance(max_body_size, int) or max_body_size < 0:
        raise ValueError(f"max_body_size must be an int >= 0, got {max_body_size!r}")
    return max_body_size


class RequestBodyLimitResponder:
    """Run ``app`` for one HTTP request with the body limited to ``max_body_size`` bytes."""

    def __init__(self, app: ASGIApp, max_body_size: int) -> None:
        self.app = app
        self.max_body_size = checked_limit(max_body_size)
        self._response_started = False
        self._counter: BodyCounter | None = None

    @property
    def scope(self) -> Scope:
        """The scope of the request being served."""
        return self._scope

    @property
    def receive(self) -> Receive:
        """The server's ``receive`` (the app gets :meth:`receive_with_limit`)."""
        return self._receive

    @property
    def send(self) -> Send:
        """The server's ``send`` (the app gets :meth:`send_with_limit`)."""
        return self._send

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._scope, self._receive, self._send = scope, receive, send
        made_context = get_context(scope) is None
        context = context_of(scope)
        previous_key = scope.get(MAX_BODY_SIZE_SCOPE_KEY, _MISSING)
        scope[MAX_BODY_SIZE_SCOPE_KEY] = self.max_body_size
        try:
            counter = context.body_counter
            if counter is None:
                await self._run_outermost(context, scope)
            else:
                await self._run_nested(counter, scope, receive, send)
        finally:
            if previous_key is _MISSING:
                scope.pop(MAX_BODY_SIZE_SCOPE_KEY, None)
            else:
                scope[MAX_BODY_SIZE_SCOPE_KEY] = previous_key
            if made_context:
                remove_context(scope)

    async def _run_nested(
        self, counter: BodyCounter, scope: Scope, receive: Receive, send: Send
    ) -> None:
        # An outer limit already counts this body and watches the start: ours replaces
        # its limit while our app runs.
        outer_limit, counter.limit = counter.limit, self.max_body_size
        try:
            if counter.received:
                counter.check()
            await self.app(scope, receive, send)
        finally:
            counter.limit = outer_limit

    async def _run_outermost(self, context: RequestContext, scope: Scope) -> None:
        counter = self._counter = BodyCounter(self.max_body_size, _declared_length(scope))
        context.body_counter = counter
        try:
            await self.app(scope, self.receive_with_limit, self.send_with_limit)
        except _RequestBodyLimitResponseSent:
            return
        except _RequestBodyTooLarge:
            if self._response_started:
                raise
            await self._send_refusal()
        finally:
            context.body_counter = None

    async def _send_refusal(self) -> None:
        self._response_started = True
        response = PlainTextResponse(_TOO_LARGE, status_code=413)
        await response(self._scope, self._receive, self._send)

    async def receive_with_limit(self) -> Message:
        """The next message from the server, refused with 413 once over the limit."""
        counter = self._counter
        assert counter is not None, "receive_with_limit is called while the responder runs"
        counter.check()
        message = await self._receive()
        if message["type"] == "http.request":
            counter.received += len(message.get("body", b""))
            counter.check()
        return message

    async def send_with_limit(self, message: Message) -> None:
        """Send, replacing the response with a 413 if the declared body is over the limit."""
        if message["type"] == "http.response.start" and not self._response_started:
            counter = self._counter
            if counter is not None and not counter.refused and counter.over_limit():
                await self._send_refusal()
                raise _RequestBodyLimitResponseSent()
            self._response_started = True
        await self._send(message)


class RequestBodyLimitMiddleware:
    """Refuse request bodies over ``max_body_size`` bytes with ``413 Content Too Large``.

    Other scope types (WebSocket, lifespan) pass through untouched.
    """

    def __init__(self, app: ASGIApp, max_body_size: int) -> None:
        self.app = app
        self.max_body_size = checked_limit(max_body_size)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await RequestBodyLimitResponder(self.app, self.max_body_size)(scope, receive, send)
