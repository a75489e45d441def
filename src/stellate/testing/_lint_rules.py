"""The rules `stellate.testing.lint` enforces, and the checks of scopes and message fields.

Each rule has a short stable identifier (``"http-body-before-start"``) that appears first in
every `ASGIProtocolError` message, so a failing test says *which* part of the ASGI contract
was broken, and a user can look the identifier up in `RULES` or in the docs. The state
machines that track message order live in `stellate.testing._lint_protocols`; this module
holds what is checked one scope or one message at a time.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

__all__ = ["RULES", "ASGIProtocolError"]

RULES: dict[str, str] = {
    # The scope, as handed to the application by the server (or by the middleware above).
    "scope-type": 'the scope is a dict whose "type" is "http", "websocket" or "lifespan"',
    "scope-asgi": 'scope["asgi"] is a dict with a str "version" (and a str "spec_version" if any)',
    "scope-http-version": 'scope["http_version"] is one of "1.0", "1.1", "2", "3"',
    "scope-method": 'scope["method"] is a non-empty upper-case str',
    "scope-scheme": 'scope["scheme"], if present, is a non-empty str',
    "scope-path": 'scope["path"] is a str',
    "scope-raw-path": 'scope["raw_path"], if present, is bytes or None',
    "scope-query-string": 'scope["query_string"] is bytes',
    "scope-root-path": 'scope["root_path"], if present, is a str',
    "scope-headers": 'scope["headers"] is an iterable of [name, value] pairs of bytes',
    "scope-header-case": "header names in the scope are lower-case",
    "scope-client": 'scope["client"], if present, is None or [host: str, port: int]',
    "scope-server": 'scope["server"], if present, is None or [host: str, port: int | None]',
    "scope-subprotocols": 'scope["subprotocols"], if present, is an iterable of str',
    "scope-extensions": 'scope["extensions"], if present, is a dict of dicts',
    "scope-state": 'scope["state"], if present, is a dict',
    # Every message, in both directions.
    "message-type": 'a message is a dict with a "type" this protocol defines for that direction',
    "message-field": "each field of a message has the type the ASGI spec gives it",
    "extension-not-offered": "extension messages are sent only if scope['extensions'] offers them",
    # HTTP, received from the server.
    "http-request-after-end": "no http.request arrives after one with more_body False",
    # HTTP, sent by the application.
    "http-status": "http.response.start has an int status between 100 and 599",
    "http-headers": "response headers are an iterable of [name, value] pairs of bytes",
    "http-header-name": "response header names are non-empty lower-case tokens",
    "http-header-value": "response header values contain no CR, LF or NUL",
    "http-double-start": "http.response.start is sent once",
    "http-body-before-start": "http.response.body (or pathsend, trailers) comes after the start",
    "http-after-complete": "nothing is sent after the response is complete",
    "http-trailers": "trailers are sent only if announced in the start, after the last body",
    "http-content-length": "at most one content-length header, a decimal number of bytes, "
    "and the body sent is exactly that long",
    "http-body-not-allowed": "no body bytes are sent for a HEAD request or a 204 or 304 response",
    "http-early-hint-after-start": "http.response.early_hint is sent before the start",
    "http-incomplete": "the application returns only after completing its response "
    "(unless the client disconnected)",
    # WebSocket.
    "ws-connect": "websocket.connect is the first message received, and comes once",
    "ws-send-before-accept": "websocket.send comes after websocket.accept",
    "ws-double-accept": "websocket.accept is sent once, before any close",
    "ws-after-close": "nothing is sent after websocket.close or a denial response",
    "ws-text-xor-bytes": 'a websocket message has exactly one of "text" and "bytes"',
    "ws-subprotocol": "the accepted subprotocol is one the client offered",
    "ws-denial-order": "a denial response (websocket.http.response.*) starts once, before accept, "
    "and its body follows its start",
    # Lifespan.
    "lifespan-order": "lifespan.startup comes first and lifespan.shutdown after it, each once",
    "lifespan-reply": "each startup/shutdown gets exactly one complete or failed reply, "
    "sent after the event it answers",
}

_repr = reprlib.Repr()
_repr.maxstring = 120
_repr.maxother = 120
_repr.maxlist = 8
_repr.maxtuple = 8
_repr.maxdict = 12
_repr.maxlevel = 4


class ASGIProtocolError(AssertionError):
    """An application (or the server in front of it) broke the ASGI contract.

    It is an `AssertionError` so that test frameworks report it as a failed check, and the
    message starts with the rule identifier (a key of `RULES`), then says what was wrong,
    then shows the offending scope or message (long bodies abbreviated).
    """

    def __init__(self, rule: str, detail: str, offending: Any = None) -> None:
        self.rule = rule
        self.detail = detail
        self.offending = offending
        text = f"[{rule}] {detail}"
        if offending is not None:
            text += f"\n  offending: {_repr.repr(offending)}"
        super().__init__(text)


ASGIProtocolError.__module__ = "stellate.testing.lint"


def fail(rule: str, detail: str, offending: Any = None) -> NoReturn:
    raise ASGIProtocolError(rule, detail, offending)


_HTTP_VERSIONS = frozenset({"1.0", "1.1", "2", "3"})
# RFC 9110 token characters, lower-case letters only: what a sent field name may contain.
_LOWER_TOKEN_BYTES = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"


def check_scope(scope: Any) -> str:
    """Validate a scope and return its type. Raises `ASGIProtocolError` on the first fault."""
    if not isinstance(scope, dict) or scope.get("type") not in ("http", "websocket", "lifespan"):
        fail("scope-type", "unknown scope type or scope is not a dict", scope)
    scope_type: str = scope["type"]
    _check_asgi(scope)
    if "state" in scope and not isinstance(scope["state"], dict):
        fail("scope-state", 'scope["state"] is not a dict', scope)
    if scope_type == "lifespan":
        return scope_type
    _check_connection_scope(scope, scope_type)
    return scope_type


def _check_asgi(scope: dict[str, Any]) -> None:
    asgi = scope.get("asgi")
    if not isinstance(asgi, dict) or not isinstance(asgi.get("version"), str):
        fail("scope-asgi", 'scope["asgi"] must be a dict with a str "version"', scope)
    if "spec_version" in asgi and not isinstance(asgi["spec_version"], str):
        fail("scope-asgi", 'scope["asgi"]["spec_version"] must be a str', scope)


def _check_connection_scope(scope: dict[str, Any], scope_type: str) -> None:
    """The keys shared by HTTP and WebSocket scopes, and the ones each adds."""
    if scope_type == "http":
        if "http_version" not in scope:
            fail("scope-http-version", 'an HTTP scope needs "http_version"', scope)
        method = scope.get("method")
        if not isinstance(method, str) or not method or method != method.upper():
            fail("scope-method", f"method {method!r} is not a non-empty upper-case str", scope)
    elif "subprotocols" in scope:
        subprotocols = scope["subprotocols"]
        if isinstance(subprotocols, str | bytes) or not _all_instances(subprotocols, str):
            fail("scope-subprotocols", "subprotocols must be an iterable of str", scope)
    if "http_version" in scope and scope["http_version"] not in _HTTP_VERSIONS:
        fail("scope-http-version", f"unknown http_version {scope['http_version']!r}", scope)
    if "scheme" in scope and (not isinstance(scope["scheme"], str) or not scope["scheme"]):
        fail("scope-scheme", "scheme must be a non-empty str", scope)
    if not isinstance(scope.get("path"), str):
        fail("scope-path", "path must be a str", scope)
    if scope.get("raw_path") is not None and not isinstance(scope["raw_path"], bytes):
        fail("scope-raw-path", "raw_path must be bytes or None", scope)
    if not isinstance(scope.get("query_string"), bytes):
        fail("scope-query-string", "query_string must be bytes", scope)
    if not isinstance(scope.get("root_path", ""), str):
        fail("scope-root-path", "root_path must be a str", scope)
    _check_scope_headers(scope)
    _check_address(scope, "client", allow_no_port=False)
    _check_address(scope, "server", allow_no_port=True)
    _check_extensions(scope)


def _all_instances(values: Any, kind: type) -> bool:
    try:
        return all(isinstance(value, kind) for value in values)
    except TypeError:
        return False


def _check_scope_headers(scope: dict[str, Any]) -> None:
    headers = _header_list(scope, "headers")
    if headers is None:
        fail("scope-headers", "headers must be an iterable of [bytes, bytes] pairs", scope)
    for name, _value in headers:
        if name != name.lower():
            fail("scope-header-case", f"header name {name!r} is not lower-case", scope)


def _header_list(container: Any, key: str) -> list[Any] | tuple[Any, ...] | None:
    """``container[key]`` if it is a valid header list, else None.

    A one-shot iterable (a generator) is materialised into a list and written back, so
    that checking it does not consume what the server or application is about to read.
    Lists and tuples, the usual case, are checked without copying.
    """
    found = container.get(key, ())
    headers: list[Any] | tuple[Any, ...]
    if type(found) is list or type(found) is tuple:
        headers = found
    elif isinstance(found, str | bytes | Mapping) or not isinstance(found, Iterable):
        return None
    else:
        headers = list(found)
        container[key] = headers
    for pair in headers:
        if (
            not isinstance(pair, tuple | list)
            or len(pair) != 2
            or not isinstance(pair[0], bytes)
            or not isinstance(pair[1], bytes)
        ):
            return None
    return headers


def _check_address(scope: dict[str, Any], key: str, *, allow_no_port: bool) -> None:
    address = scope.get(key)
    if address is None:
        return
    ok = isinstance(address, tuple | list) and len(address) == 2 and isinstance(address[0], str)
    if ok:
        port = address[1]
        ok = (isinstance(port, int) and not isinstance(port, bool)) or (
            port is None and allow_no_port
        )
    if not ok:
        fail(f"scope-{key}", f"{key} must be None or a [host, port] pair", scope)


def _check_extensions(scope: dict[str, Any]) -> None:
    extensions = scope.get("extensions")
    if extensions is None:
        return
    if not isinstance(extensions, dict) or not all(
        isinstance(value, dict) for value in extensions.values()
    ):
        fail("scope-extensions", "extensions must be a dict of dicts", scope)


# --- message fields -------------------------------------------------------------------------


def check_field(message: Mapping[str, Any], key: str, kinds: type | tuple[type, ...]) -> None:
    """An optional field, if present, has one of `kinds` (bool is never accepted as an int)."""
    if key not in message:
        return
    value = message[key]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _as_tuple(kinds)):
        fail("message-field", f"{message['type']} field {key!r} has the wrong type", message)


def _as_tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def check_response_headers(message: Any) -> None:
    """Headers an application sends: pairs of bytes, token lower-case names, safe values."""
    headers = _header_list(message, "headers")
    if headers is None:
        fail("http-headers", "headers must be an iterable of [bytes, bytes] pairs", message)
    for name, value in headers:
        # Deleting every lower-case token byte leaves nothing for a good name; anything left
        # is an upper-case letter or a byte no field name may contain.
        if not name or name.translate(None, _LOWER_TOKEN_BYTES):
            fail("http-header-name", f"header name {name!r} is not a lower-case token", message)
        if b"\r" in value or b"\n" in value or b"\x00" in value:
            fail("http-header-value", f"value of {name!r} contains CR, LF or NUL", message)


def check_text_xor_bytes(message: Mapping[str, Any]) -> None:
    text, data = message.get("text"), message.get("bytes")
    if (text is None) == (data is None):
        fail("ws-text-xor-bytes", 'exactly one of "text" and "bytes" must be set', message)
    if text is not None and not isinstance(text, str):
        fail("message-field", '"text" must be a str', message)
    if data is not None and not isinstance(data, bytes):
        fail("message-field", '"bytes" must be bytes', message)
