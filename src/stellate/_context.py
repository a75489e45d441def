"""Per-request state that travels with the scope: the one owner of stellate's private scope key.

Several layers of one request need to share state that is not part of the ASGI scope's
public vocabulary: the connection's receive multiplexer (so a watcher and the handler can
both read), the body-size counter of nested limits, the application's exception handlers
(so a route answers its own errors), and the cancel-on-disconnect and deadline settings
that an application or a ``Mount`` hands down to its routes. All of it lives in one
:class:`RequestContext`, stored under one private key; every other module reads and
writes it through the functions here, so the key's spelling and the object's shape are
this module's business alone.

The context is shared by reference: a layer that copies the scope (``dict(scope)``) shares
the context with the original, as it shares the connection. The public keys Starlette
documents (``app``, ``router``, ``endpoint``, ``path_params``, ``state``, ``auth``,
``user``, ``session``) stay plain scope entries.

:class:`StartTrackingSend` lives here too: whether the response has started is
per-request state that several layers (the error layers, the route adapter, responses)
share by passing the same ``send``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stellate.types import Message, Scope, Send

if TYPE_CHECKING:
    from stellate._body_limit import BodyCounter
    from stellate._disconnect import ReceiveMultiplexer

__all__ = [
    "MAX_BODY_SIZE_SCOPE_KEY",
    "RequestContext",
    "StartTrackingSend",
    "context_of",
    "get_context",
    "remove_context",
    "track_start",
]

_KEY = "stellate.context"

#: The documented scope key holding the body-size limit in force (innermost wins); it is
#: set only while a limited call runs. Public: ``stellate.middleware.body_limit`` exports it.
MAX_BODY_SIZE_SCOPE_KEY = "stellate.max_body_size"


class RequestContext:
    """What the layers of one request share beyond the ASGI scope.

    ``receive``: the connection's multiplexer, installed by the application.
    ``body_counter``: the counter shared by nested body-size limits.
    ``exception_handlers``: ``(by class, by status)``, published by ``ExceptionMiddleware``.
    ``cancel_on_disconnect`` / ``timeout``: the policies an application or mount hands
    down to its routes (None: not set by anyone).
    ``traced``: an ``OpenTelemetryMiddleware`` already observes the request (an inner one,
    in a mounted application, stays out of the way: one span per request).
    """

    __slots__ = (
        "body_counter",
        "cancel_on_disconnect",
        "exception_handlers",
        "receive",
        "timeout",
        "traced",
    )

    def __init__(self, receive: ReceiveMultiplexer | None = None) -> None:
        self.receive = receive
        self.body_counter: BodyCounter | None = None
        self.exception_handlers: tuple[Any, Any] | None = None
        self.cancel_on_disconnect: bool | None = None
        self.timeout: float | None = None
        self.traced = False

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"RequestContext({fields})"


def get_context(scope: Scope) -> RequestContext | None:
    """The request's context, or None where no stellate layer has made one."""
    context: RequestContext | None = scope.get(_KEY)
    return context


def context_of(scope: Scope) -> RequestContext:
    """The request's context, made (and stored in the scope) if there is none yet."""
    context: RequestContext | None = scope.get(_KEY)
    if context is None:
        context = scope[_KEY] = RequestContext()
    return context


def remove_context(scope: Scope) -> None:
    """Take the context out of the scope again (for the layer that made it)."""
    scope.pop(_KEY, None)


class StartTrackingSend:
    """``send``, remembering whether ``http.response.start`` went through it.

    Every error-handling layer must know whether the response started before it may
    answer an exception. Layers with nothing between them see the same messages, so they
    share one tracker (:func:`track_start`) rather than each wrapping ``send`` again: each
    message would otherwise pass through one more call per layer, on every request.
    Responses that know they are sent through a tracker set :attr:`started` themselves
    and send past it, once per response rather than once per message.
    """

    __slots__ = ("send", "started")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


def track_start(send: Send) -> StartTrackingSend:
    """A tracker for ``send``: ``send`` itself if it is one (from a layer just outside)."""
    return send if type(send) is StartTrackingSend else StartTrackingSend(send)
