"""Request body size limits: ``RequestBodyLimitMiddleware`` and ``max_body_size``.

A limit is enforced where the body is *read*, by wrapping ``receive``:

* a declared ``Content-Length`` over the limit is refused (413) at the first read,
  before a single body byte is pulled from the server, so the client is not asked to
  send the rest (a server answering ``Expect: 100-continue`` never says "continue");
* a streamed body (chunked, or lying about its length) is counted as it arrives and
  refused the moment it crosses the limit: the chunk that crosses it is dropped, so
  nothing beyond the limit is ever handed to the application.

Limits nest, and **the innermost setting wins**: ``RequestBodyLimitMiddleware``,
``Stellate(max_body_size=...)`` (enforced by its router), ``Router``, ``Mount`` and
``Route`` all go through :class:`RequestBodyLimitResponder`. The first one on the way
in wraps ``receive`` and keeps a small shared counter in the scope; each one further in
only replaces the limit in that counter, so a route can allow more (or less) than the
application around it, and the bytes are still counted once. The limit in force is
also published as ``scope[MAX_BODY_SIZE_SCOPE_KEY]`` for code that wants to look.

The refusal is an ``HTTPException(413)`` raised from ``receive``: inside an application
the exception handlers answer it (and a handler that reads the body sees it); outside
one, the responder that wrapped ``receive`` answers 413 itself, if nothing was sent yet.
"""

from __future__ import annotations

from stellate._concurrency import collapse_excgroups
from stellate.exceptions import HTTPException
from stellate.responses import PlainTextResponse
from stellate.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["MAX_BODY_SIZE_SCOPE_KEY", "RequestBodyLimitMiddleware", "RequestBodyLimitResponder"]

#: The scope key holding the body size limit in force for this request (innermost wins).
MAX_BODY_SIZE_SCOPE_KEY = "stellate.max_body_size"

# The counter shared by the nested limits of one request (private: its shape may change).
_COUNTER_SCOPE_KEY = "stellate.body_limit_counter"


class _BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(
            status_code=413,
            detail=f"Request body is larger than the limit of {limit} bytes.",
        )


class _Counter:
    """How much body has been read, against which limit, and what the client declared."""

    __slots__ = ("declared", "limit", "received")

    def __init__(self, limit: int, declared: int | None) -> None:
        self.limit = limit
        self.declared = declared
        self.received = 0

    def check(self) -> None:
        if self.received > self.limit or (self.declared or 0) > self.limit:
            raise _BodyTooLarge(self.limit)


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


def _checked_limit(max_body_size: int) -> int:
    if isinstance(max_body_size, bool) or not isinstance(max_body_size, int) or max_body_size < 0:
        raise ValueError(f"max_body_size must be an int >= 0, got {max_body_size!r}")
    return max_body_size


class RequestBodyLimitResponder:
    """Run ``app`` for one HTTP request with the body limited to ``max_body_size`` bytes."""

    def __init__(self, app: ASGIApp, max_body_size: int) -> None:
        self.app = app
        self.max_body_size = _checked_limit(max_body_size)
        self._response_started = False

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
        scope[MAX_BODY_SIZE_SCOPE_KEY] = self.max_body_size
        counter: _Counter | None = scope.get(_COUNTER_SCOPE_KEY)
        if counter is not None:
            # An outer limit already counts this body: ours replaces its limit.
            counter.limit = self.max_body_size
            if counter.received:
                counter.check()
            await self.app(scope, receive, send)
            return
        self._counter = scope[_COUNTER_SCOPE_KEY] = _Counter(
            self.max_body_size, _declared_length(scope)
        )
        try:
            with collapse_excgroups():
                await self.app(scope, self.receive_with_limit, self.send_with_limit)
        except _BodyTooLarge as exc:
            if self._response_started:
                raise
            await PlainTextResponse(exc.detail, status_code=413)(scope, receive, send)

    async def receive_with_limit(self) -> Message:
        """The next message from the server, refused with 413 once over the limit."""
        counter = self._counter
        counter.check()
        message = await self._receive()
        if message["type"] == "http.request":
            counter.received += len(message.get("body", b""))
            counter.check()
        return message

    async def send_with_limit(self, message: Message) -> None:
        """Send, noting whether the response has started (then a 413 can't be sent)."""
        if message["type"] == "http.response.start":
            self._response_started = True
        await self._send(message)


class RequestBodyLimitMiddleware:
    """Refuse request bodies over ``max_body_size`` bytes with ``413 Content Too Large``.

    Other scope types (WebSocket, lifespan) pass through untouched.
    """

    def __init__(self, app: ASGIApp, max_body_size: int) -> None:
        self.app = app
        self.max_body_size = _checked_limit(max_body_size)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await RequestBodyLimitResponder(self.app, self.max_body_size)(scope, receive, send)
