"""The message-order state machines behind `stellate.testing.lint.LintMiddleware`.

One small object per connection tracks where the conversation is (response started? body
finished? socket accepted?) and checks each message against it as it passes. The checks are
plain attribute tests and one dict lookup per message, so wrapping an application costs
little more than the two extra function calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from stellate.testing._lint_rules import (
    check_field,
    check_response_headers,
    check_text_xor_bytes,
    fail,
)

__all__ = ["HTTPChecker", "LifespanChecker", "ProtocolChecker", "WebSocketChecker", "checker_for"]

# Message type -> the key of scope["extensions"] that must be present for it to be sent.
_EXTENSIONS = {
    "http.response.trailers": "http.response.trailers",
    "http.response.pathsend": "http.response.pathsend",
    "http.response.zerocopy": "http.response.zerocopy",
    "http.response.push": "http.response.push",
    "http.response.early_hint": "http.response.early_hint",
    "http.response.debug": "http.response.debug",
    "websocket.http.response.start": "websocket.http.response",
    "websocket.http.response.body": "websocket.http.response",
}

_Handler = Callable[[Any, Mapping[str, Any]], None]


def _message_type(message: Any, direction: str) -> str:
    if not isinstance(message, Mapping) or not isinstance(message.get("type"), str):
        fail("message-type", f"a {direction} message must be a dict with a str 'type'", message)
    return message["type"]  # type: ignore[no-any-return]


def _declared_length(message: Mapping[str, Any]) -> int | None:
    """The response's content-length, checked: one header, a decimal number (None if absent)."""
    values = [value for name, value in message.get("headers", ()) if name == b"content-length"]
    if not values:
        return None
    if len(values) > 1:
        fail("http-content-length", "content-length sent more than once", message)
    if not values[0].isdigit():
        fail("http-content-length", f"content-length {values[0]!r} is not a number", message)
    return int(values[0])


class ProtocolChecker:
    """Checks one connection's messages; subclasses fill in the two dispatch tables."""

    RECEIVE: ClassVar[dict[str, _Handler]] = {}
    SEND: ClassVar[dict[str, _Handler]] = {}

    def __init__(self, scope: Mapping[str, Any]) -> None:
        self.scope = scope
        self.extensions: Mapping[str, Any] = scope.get("extensions") or {}

    def received(self, message: Any) -> None:
        """Check a message the server gave the application."""
        handler = self.RECEIVE.get(_message_type(message, "received"))
        if handler is None:
            fail("message-type", f"{message['type']!r} is not a received message here", message)
        handler(self, message)

    def sent(self, message: Any) -> None:
        """Check a message the application sends to the server."""
        message_type = _message_type(message, "sent")
        handler = self.SEND.get(message_type)
        if handler is None:
            fail("message-type", f"{message_type!r} is not a message an app sends here", message)
        extension = _EXTENSIONS.get(message_type)
        if extension is not None and extension not in self.extensions:
            fail(
                "extension-not-offered",
                f"{message_type} needs scope['extensions'][{extension!r}]",
                message,
            )
        handler(self, message)

    def finished(self) -> None:
        """The application returned normally: check that it left nothing half done."""


class HTTPChecker(ProtocolChecker):
    """Request body in, one response out: start, body..., (trailers...), and nothing more."""

    def __init__(self, scope: Mapping[str, Any]) -> None:
        super().__init__(scope)
        self.request_ended = False
        self.disconnected = False
        self.started = False
        self.trailers_expected = False
        self.body_done = False
        self.complete = False
        self.bodiless = scope.get("method") == "HEAD"
        self.content_length: int | None = None
        self.body_size = 0

    # received -----------------------------------------------------------------------------
    def _request(self, message: Mapping[str, Any]) -> None:
        if self.request_ended:
            fail("http-request-after-end", "http.request after the last body chunk", message)
        check_field(message, "body", bytes)
        check_field(message, "more_body", bool)
        if not message.get("more_body", False):
            self.request_ended = True

    def _disconnect(self, message: Mapping[str, Any]) -> None:
        self.disconnected = True

    # sent ---------------------------------------------------------------------------------
    def _not_after_complete(self, message: Mapping[str, Any]) -> None:
        if self.complete:
            fail("http-after-complete", f"{message['type']} after the response ended", message)

    def _start(self, message: Mapping[str, Any]) -> None:
        self._not_after_complete(message)
        if self.started:
            fail("http-double-start", "http.response.start sent twice", message)
        status = message.get("status")
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            fail("http-status", f"status {status!r} is not an int in 100..599", message)
        check_response_headers(message)
        check_field(message, "trailers", bool)
        self.started = True
        self.trailers_expected = message.get("trailers", False)
        self.bodiless = self.bodiless or status in (204, 304) or status < 200
        self.content_length = _declared_length(message)

    def _count_body(self, message: Mapping[str, Any], size: int, *, last: bool) -> None:
        """Bodiless responses carry no bytes; others carry as many as content-length says."""
        if not size and not last:
            return
        if self.bodiless:
            if size:
                fail("http-body-not-allowed", "body bytes on a response that has no body", message)
            return
        self.body_size += size
        declared = self.content_length
        if declared is None:
            return
        if self.body_size > declared or (last and self.body_size != declared):
            fail(
                "http-content-length",
                f"content-length says {declared} bytes, the body has "
                f"{'more than ' if not last else ''}{self.body_size}",
                message,
            )

    def _body_allowed(self, message: Mapping[str, Any]) -> None:
        if not self.started:
            fail("http-body-before-start", f"{message['type']} before http.response.start", message)
        self._not_after_complete(message)
        if self.body_done:
            fail("http-after-complete", f"{message['type']} after the last body chunk", message)

    def _end_body(self) -> None:
        if self.trailers_expected:
            self.body_done = True
        else:
            self.complete = True

    def _body(self, message: Mapping[str, Any]) -> None:
        self._body_allowed(message)
        check_field(message, "body", bytes)
        check_field(message, "more_body", bool)
        last = not message.get("more_body", False)
        self._count_body(message, len(message.get("body", b"")), last=last)
        if last:
            self._end_body()

    def _zerocopy(self, message: Mapping[str, Any]) -> None:
        self._body_allowed(message)
        self.content_length = None  # the file's share of the body is not known here
        check_field(message, "more_body", bool)
        if not message.get("more_body", False):
            self._end_body()

    def _pathsend(self, message: Mapping[str, Any]) -> None:
        self._body_allowed(message)
        self.content_length = None  # the file's size is not known here
        if not isinstance(message.get("path"), str):
            fail("message-field", "http.response.pathsend needs a str 'path'", message)
        self._end_body()

    def _trailers(self, message: Mapping[str, Any]) -> None:
        if not self.started:
            fail("http-body-before-start", "trailers before http.response.start", message)
        if not self.trailers_expected:
            fail("http-trailers", "trailers not announced with trailers=True in the start", message)
        self._not_after_complete(message)
        if not self.body_done:
            fail("http-trailers", "trailers sent before the last body chunk", message)
        check_response_headers(message)
        check_field(message, "more_trailers", bool)
        if not message.get("more_trailers", False):
            self.complete = True

    def _push(self, message: Mapping[str, Any]) -> None:
        self._not_after_complete(message)
        if not isinstance(message.get("path"), str):
            fail("message-field", "http.response.push needs a str 'path'", message)
        check_response_headers(message)

    def _early_hint(self, message: Mapping[str, Any]) -> None:
        if self.started:
            fail("http-early-hint-after-start", "early hint after http.response.start", message)
        links = message.get("links")
        if not isinstance(links, list | tuple) or not all(isinstance(x, bytes) for x in links):
            fail("message-field", "early_hint 'links' must be a list of bytes", message)

    def _debug(self, message: Mapping[str, Any]) -> None:
        self._not_after_complete(message)

    def finished(self) -> None:
        if not self.complete and not self.disconnected:
            state = "never started" if not self.started else "not finished"
            fail("http-incomplete", f"the application returned but its response was {state}")

    RECEIVE: ClassVar[dict[str, _Handler]] = {
        "http.request": _request,
        "http.disconnect": _disconnect,
    }
    SEND: ClassVar[dict[str, _Handler]] = {
        "http.response.start": _start,
        "http.response.body": _body,
        "http.response.trailers": _trailers,
        "http.response.pathsend": _pathsend,
        "http.response.zerocopy": _zerocopy,
        "http.response.push": _push,
        "http.response.early_hint": _early_hint,
        "http.response.debug": _debug,
    }


class WebSocketChecker(ProtocolChecker):
    """connect first; accept once, then send/close; or deny with close or an HTTP response."""

    def __init__(self, scope: Mapping[str, Any]) -> None:
        super().__init__(scope)
        self.connected = False
        self.accepted = False
        self.closed = False
        self.denial_started = False

    def _connect(self, message: Mapping[str, Any]) -> None:
        if self.connected:
            fail("ws-connect", "websocket.connect received twice", message)
        self.connected = True

    def _require_connected(self, message: Mapping[str, Any]) -> None:
        if not self.connected:
            fail("ws-connect", f"{message['type']} received before websocket.connect", message)

    def _receive(self, message: Mapping[str, Any]) -> None:
        self._require_connected(message)
        check_text_xor_bytes(message)

    def _disconnect(self, message: Mapping[str, Any]) -> None:
        self._require_connected(message)
        check_field(message, "code", int)
        check_field(message, "reason", (str, type(None)))

    def _not_closed(self, message: Mapping[str, Any]) -> None:
        if self.closed:
            fail("ws-after-close", f"{message['type']} after the connection was closed", message)

    def _accept(self, message: Mapping[str, Any]) -> None:
        self._not_closed(message)
        if self.accepted:
            fail("ws-double-accept", "websocket.accept sent twice", message)
        if self.denial_started:
            fail("ws-denial-order", "websocket.accept after a denial response started", message)
        subprotocol = message.get("subprotocol")
        if subprotocol is not None:
            if not isinstance(subprotocol, str):
                fail("message-field", "subprotocol must be a str or None", message)
            if subprotocol not in self.scope.get("subprotocols", ()):
                fail("ws-subprotocol", f"the client did not offer {subprotocol!r}", message)
        check_response_headers(message)
        self.accepted = True

    def _send(self, message: Mapping[str, Any]) -> None:
        self._not_closed(message)
        if not self.accepted:
            fail("ws-send-before-accept", "websocket.send before websocket.accept", message)
        check_text_xor_bytes(message)

    def _close(self, message: Mapping[str, Any]) -> None:
        self._not_closed(message)
        if self.denial_started:
            fail("ws-denial-order", "websocket.close during a denial response", message)
        check_field(message, "code", int)
        check_field(message, "reason", (str, type(None)))
        self.closed = True

    def _denial_start(self, message: Mapping[str, Any]) -> None:
        self._not_closed(message)
        if self.accepted or self.denial_started:
            fail("ws-denial-order", "denial response after accept, or started twice", message)
        status = message.get("status")
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            fail("http-status", f"status {status!r} is not an int in 100..599", message)
        check_response_headers(message)
        self.denial_started = True

    def _denial_body(self, message: Mapping[str, Any]) -> None:
        self._not_closed(message)
        if not self.denial_started:
            fail("ws-denial-order", "denial body before websocket.http.response.start", message)
        check_field(message, "body", bytes)
        check_field(message, "more_body", bool)
        if not message.get("more_body", False):
            self.closed = True

    RECEIVE: ClassVar[dict[str, _Handler]] = {
        "websocket.connect": _connect,
        "websocket.receive": _receive,
        "websocket.disconnect": _disconnect,
    }
    SEND: ClassVar[dict[str, _Handler]] = {
        "websocket.accept": _accept,
        "websocket.send": _send,
        "websocket.close": _close,
        "websocket.http.response.start": _denial_start,
        "websocket.http.response.body": _denial_body,
    }


class LifespanChecker(ProtocolChecker):
    """startup, its reply, shutdown, its reply: each exactly once and in that order."""

    def __init__(self, scope: Mapping[str, Any]) -> None:
        super().__init__(scope)
        self.startup_received = False
        self.startup_replied = False
        self.shutdown_received = False
        self.shutdown_replied = False

    def _startup(self, message: Mapping[str, Any]) -> None:
        if self.startup_received:
            fail("lifespan-order", "lifespan.startup received twice", message)
        self.startup_received = True

    def _shutdown(self, message: Mapping[str, Any]) -> None:
        if not self.startup_replied or self.shutdown_received:
            fail("lifespan-order", "lifespan.shutdown before startup finished, or twice", message)
        self.shutdown_received = True

    def _startup_reply(self, message: Mapping[str, Any]) -> None:
        if not self.startup_received or self.startup_replied:
            fail("lifespan-reply", f"{message['type']} without a pending startup", message)
        check_field(message, "message", str)
        self.startup_replied = True

    def _shutdown_reply(self, message: Mapping[str, Any]) -> None:
        if not self.shutdown_received or self.shutdown_replied:
            fail("lifespan-reply", f"{message['type']} without a pending shutdown", message)
        check_field(message, "message", str)
        self.shutdown_replied = True

    RECEIVE: ClassVar[dict[str, _Handler]] = {
        "lifespan.startup": _startup,
        "lifespan.shutdown": _shutdown,
    }
    SEND: ClassVar[dict[str, _Handler]] = {
        "lifespan.startup.complete": _startup_reply,
        "lifespan.startup.failed": _startup_reply,
        "lifespan.shutdown.complete": _shutdown_reply,
        "lifespan.shutdown.failed": _shutdown_reply,
    }


_CHECKERS: dict[str, type[ProtocolChecker]] = {
    "http": HTTPChecker,
    "websocket": WebSocketChecker,
    "lifespan": LifespanChecker,
}


def checker_for(scope_type: str, scope: Mapping[str, Any]) -> ProtocolChecker:
    return _CHECKERS[scope_type](scope)
