"""LintMiddleware: every rule fires on an app (or server) that breaks it, and stays quiet otherwise.

The apps here are scripts: a list of steps, each either "receive one message" or "send this
message", run against a fake server that replays a list of incoming messages and records
what is sent. That lets one table hold a minimal broken conversation per rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from stellate.testing.lint import RULES, ASGIProtocolError, LintMiddleware, wrap
from stellate.types import Message, Receive, Scope, Send

pytestmark = pytest.mark.anyio

RECV = "recv"


def http_scope(**extra: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"example.com")],
        "client": ("127.0.0.1", 1234),
        "server": ("example.com", 80),
    }
    scope.update(extra)
    return scope


def ws_scope(**extra: Any) -> dict[str, Any]:
    scope = http_scope(type="websocket", scheme="ws", subprotocols=["chat"])
    del scope["method"]
    scope.update(extra)
    return scope


def lifespan_scope(**extra: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    scope.update(extra)
    return scope


def without(scope: dict[str, Any], key: str) -> dict[str, Any]:
    del scope[key]
    return scope


def scripted(steps: Sequence[Any]) -> Any:
    """An ASGI app that performs `steps`: RECV receives one message, a dict is sent."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for step in steps:
            if step == RECV:
                await receive()
            else:
                await send(step)

    return app


async def run(
    app: Any, scope: dict[str, Any], incoming: Sequence[Any] = (), **options: Any
) -> list[Message]:
    queue = list(incoming)
    sent: list[Message] = []

    async def receive() -> Any:
        return queue.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await LintMiddleware(app, **options)(scope, receive, send)
    return sent


REQUEST = {"type": "http.request", "body": b"", "more_body": False}
START = {"type": "http.response.start", "status": 200, "headers": []}
BODY = {"type": "http.response.body", "body": b"ok"}
OK = [START, BODY]
CONNECT = {"type": "websocket.connect"}
ACCEPT = {"type": "websocket.accept"}
CLOSE = {"type": "websocket.close", "code": 1000}
DENY = {"type": "websocket.http.response.start", "status": 403, "headers": []}
DENY_BODY = {"type": "websocket.http.response.body", "body": b"no"}
WS_DENIAL: dict[str, Any] = {"extensions": {"websocket.http.response": {}}}
STARTUP = {"type": "lifespan.startup"}
SHUTDOWN = {"type": "lifespan.shutdown"}
STARTED = {"type": "lifespan.startup.complete"}
STOPPED = {"type": "lifespan.shutdown.complete"}


def start(**fields: Any) -> dict[str, Any]:
    return {**START, **fields}


# (rule, scope, incoming messages, app steps)
BROKEN: list[tuple[str, Any, list[Any], list[Any]]] = [
    ("scope-type", {"type": "grpc"}, [], []),
    ("scope-type", [("type", "http")], [], []),
    ("scope-asgi", without(http_scope(), "asgi"), [], OK),
    ("scope-asgi", http_scope(asgi={"version": 3}), [], OK),
    ("scope-asgi", http_scope(asgi={"version": "3.0", "spec_version": 2.4}), [], OK),
    ("scope-http-version", without(http_scope(), "http_version"), [], OK),
    ("scope-http-version", http_scope(http_version="1.2"), [], OK),
    ("scope-http-version", ws_scope(http_version=1.1), [], []),
    ("scope-method", http_scope(method="get"), [], OK),
    ("scope-method", http_scope(method=""), [], OK),
    ("scope-method", http_scope(method=b"GET"), [], OK),
    ("scope-scheme", http_scope(scheme=""), [], OK),
    ("scope-path", http_scope(path=b"/"), [], OK),
    ("scope-raw-path", http_scope(raw_path="/"), [], OK),
    ("scope-query-string", http_scope(query_string="a=1"), [], OK),
    ("scope-query-string", without(http_scope(), "query_string"), [], OK),
    ("scope-root-path", http_scope(root_path=b""), [], OK),
    ("scope-headers", http_scope(headers=[("host", "x")]), [], OK),
    ("scope-headers", http_scope(headers={b"host": b"x"}), [], OK),
    ("scope-headers", http_scope(headers=[(b"host", b"x", b"y")]), [], OK),
    ("scope-headers", http_scope(headers=[b"host: x"]), [], OK),
    ("scope-headers", http_scope(headers=None), [], OK),
    ("scope-header-case", http_scope(headers=[(b"Host", b"x")]), [], OK),
    ("scope-client", http_scope(client=("127.0.0.1", "80")), [], OK),
    ("scope-client", http_scope(client=("127.0.0.1", None)), [], OK),
    ("scope-client", http_scope(client=("127.0.0.1", True)), [], OK),
    ("scope-client", http_scope(client="127.0.0.1:80"), [], OK),
    ("scope-server", http_scope(server=(b"host", 80)), [], OK),
    ("scope-subprotocols", ws_scope(subprotocols="chat"), [], []),
    ("scope-subprotocols", ws_scope(subprotocols=[b"chat"]), [], []),
    ("scope-subprotocols", ws_scope(subprotocols=3), [], []),
    ("scope-extensions", http_scope(extensions=[]), [], OK),
    ("scope-extensions", http_scope(extensions={"http.response.trailers": True}), [], OK),
    ("scope-state", lifespan_scope(state=[]), [], []),
    # Messages in general.
    ("message-type", http_scope(), [], [{"type": "http.response.begin"}]),
    ("message-type", http_scope(), [], [{"status": 200}]),
    ("message-type", http_scope(), [], ["http.response.start"]),
    ("message-type", http_scope(), [{"type": "websocket.connect"}], [RECV]),
    ("message-type", http_scope(), [{"body": b""}], [RECV]),
    ("message-type", ws_scope(), [CONNECT], [RECV, {"type": "http.response.start"}]),
    ("message-type", lifespan_scope(), [{"type": "lifespan.restart"}], [RECV]),
    ("message-field", http_scope(), [], [START, {"type": "http.response.body", "body": "ok"}]),
    ("message-field", http_scope(), [], [START, {**BODY, "more_body": 1}]),
    ("message-field", http_scope(), [], [start(trailers="yes"), BODY]),
    ("message-field", http_scope(), [{"type": "http.request", "body": "x"}], [RECV]),
    ("message-field", http_scope(), [{"type": "http.request", "more_body": None}], [RECV]),
    ("message-field", ws_scope(), [CONNECT], [RECV, {**ACCEPT, "subprotocol": b"chat"}]),
    ("message-field", ws_scope(), [CONNECT], [RECV, {"type": "websocket.close", "code": "1000"}]),
    ("message-field", ws_scope(), [CONNECT], [RECV, {**CLOSE, "reason": b"bye"}]),
    ("message-field", ws_scope(), [CONNECT], [RECV, ACCEPT, {"type": "websocket.send", "text": 1}]),
    (
        "message-field",
        ws_scope(),
        [CONNECT],
        [RECV, ACCEPT, {"type": "websocket.send", "bytes": ""}],
    ),
    (
        "message-field",
        ws_scope(),
        [CONNECT, {"type": "websocket.disconnect", "code": True}],
        [RECV, RECV],
    ),
    ("message-field", ws_scope(**WS_DENIAL), [CONNECT], [RECV, DENY, {**DENY_BODY, "body": "x"}]),
    ("message-field", lifespan_scope(), [STARTUP], [RECV, {**STARTED, "message": 1}]),
    (
        "message-field",
        http_scope(extensions={"http.response.pathsend": {}}),
        [],
        [START, {"type": "http.response.pathsend", "path": b"/etc/hosts"}],
    ),
    (
        "message-field",
        http_scope(extensions={"http.response.push": {}}),
        [],
        [{"type": "http.response.push", "path": None, "headers": []}, *OK],
    ),
    (
        "message-field",
        http_scope(extensions={"http.response.early_hint": {}}),
        [],
        [{"type": "http.response.early_hint", "links": ["</a.css>"]}, *OK],
    ),
    # Extensions.
    (
        "extension-not-offered",
        http_scope(),
        [],
        [START, {"type": "http.response.pathsend", "path": "/x"}],
    ),
    (
        "extension-not-offered",
        http_scope(),
        [],
        [start(trailers=True), BODY, {"type": "http.response.trailers"}],
    ),
    (
        "extension-not-offered",
        http_scope(),
        [],
        [{"type": "http.response.push", "path": "/a", "headers": []}],
    ),
    (
        "extension-not-offered",
        http_scope(),
        [],
        [{"type": "http.response.early_hint", "links": []}],
    ),
    (
        "extension-not-offered",
        http_scope(),
        [],
        [START, {"type": "http.response.zerocopy", "file": 0}],
    ),
    ("extension-not-offered", http_scope(), [], [{"type": "http.response.debug", "info": {}}]),
    ("extension-not-offered", ws_scope(), [CONNECT], [RECV, DENY]),
    ("extension-not-offered", ws_scope(), [CONNECT], [RECV, DENY_BODY]),
    # HTTP, received.
    ("http-request-after-end", http_scope(), [REQUEST, REQUEST], [RECV, RECV]),
    (
        "http-request-after-end",
        http_scope(),
        [{"type": "http.request"}, {"type": "http.request", "body": b"x"}],
        [RECV, RECV],
    ),
    # HTTP, sent.
    ("http-status", http_scope(), [], [start(status="200"), BODY]),
    ("http-status", http_scope(), [], [start(status=99), BODY]),
    ("http-status", http_scope(), [], [start(status=600), BODY]),
    ("http-status", http_scope(), [], [start(status=True), BODY]),
    ("http-status", http_scope(), [], [without(dict(START), "status"), BODY]),
    ("http-status", ws_scope(**WS_DENIAL), [CONNECT], [RECV, {**DENY, "status": 1000}]),
    ("http-headers", http_scope(), [], [start(headers=[("content-type", "text/plain")]), BODY]),
    ("http-headers", http_scope(), [], [start(headers={b"a": b"b"}), BODY]),
    ("http-headers", http_scope(), [], [start(headers=[(b"a", b"b", b"c")]), BODY]),
    ("http-headers", http_scope(), [], [start(headers=None), BODY]),
    ("http-header-name", http_scope(), [], [start(headers=[(b"Content-Type", b"x")]), BODY]),
    ("http-header-name", http_scope(), [], [start(headers=[(b"", b"x")]), BODY]),
    ("http-header-name", http_scope(), [], [start(headers=[(b"x y", b"x")]), BODY]),
    ("http-header-name", http_scope(), [], [start(headers=[(b"x:", b"x")]), BODY]),
    ("http-header-name", ws_scope(), [CONNECT], [RECV, {**ACCEPT, "headers": [(b"X-A", b"1")]}]),
    ("http-header-value", http_scope(), [], [start(headers=[(b"location", b"/a\r\nx: y")]), BODY]),
    ("http-header-value", http_scope(), [], [start(headers=[(b"x", b"a\nb")]), BODY]),
    ("http-header-value", http_scope(), [], [start(headers=[(b"x", b"a\x00b")]), BODY]),
    ("http-double-start", http_scope(), [], [START, START, BODY]),
    ("http-body-before-start", http_scope(), [], [BODY]),
    (
        "http-body-before-start",
        http_scope(extensions={"http.response.pathsend": {}}),
        [],
        [{"type": "http.response.pathsend", "path": "/x"}],
    ),
    (
        "http-body-before-start",
        http_scope(extensions={"http.response.trailers": {}}),
        [],
        [{"type": "http.response.trailers", "headers": []}],
    ),
    (
        "http-body-before-start",
        http_scope(extensions={"http.response.zerocopy": {}}),
        [],
        [{"type": "http.response.zerocopy", "file": 0}],
    ),
    ("http-after-complete", http_scope(), [], [*OK, BODY]),
    ("http-after-complete", http_scope(), [], [*OK, START]),
    (
        "http-after-complete",
        http_scope(extensions={"http.response.push": {}}),
        [],
        [*OK, {"type": "http.response.push", "path": "/a", "headers": []}],
    ),
    (
        "http-after-complete",
        http_scope(extensions={"http.response.debug": {}}),
        [],
        [*OK, {"type": "http.response.debug", "info": {}}],
    ),
    (
        "http-after-complete",
        http_scope(extensions={"http.response.trailers": {}}),
        [],
        [start(trailers=True), BODY, BODY],
    ),
    (
        "http-after-complete",
        http_scope(extensions={"http.response.trailers": {}}),
        [],
        [
            start(trailers=True),
            BODY,
            {"type": "http.response.trailers", "headers": []},
            {"type": "http.response.trailers", "headers": []},
        ],
    ),
    (
        "http-trailers",
        http_scope(extensions={"http.response.trailers": {}}),
        [],
        [START, BODY, {"type": "http.response.trailers", "headers": []}],
    ),
    (
        "http-trailers",
        http_scope(extensions={"http.response.trailers": {}}),
        [],
        [
            start(trailers=True),
            {**BODY, "more_body": True},
            {"type": "http.response.trailers", "headers": []},
        ],
    ),
    (
        "http-header-value",
        http_scope(extensions={"http.response.trailers": {}}),
        [],
        [
            start(trailers=True),
            BODY,
            {"type": "http.response.trailers", "headers": [(b"x", b"\n")]},
        ],
    ),
    (
        "http-early-hint-after-start",
        http_scope(extensions={"http.response.early_hint": {}}),
        [],
        [START, {"type": "http.response.early_hint", "links": [b"</a.css>; rel=preload"]}],
    ),
    ("http-incomplete", http_scope(), [], []),
    ("http-incomplete", http_scope(), [], [START]),
    ("http-incomplete", http_scope(), [], [START, {**BODY, "more_body": True}]),
    (
        "http-incomplete",
        http_scope(extensions={"http.response.trailers": {}}),
        [],
        [start(trailers=True), BODY],
    ),
    # WebSocket.
    ("ws-connect", ws_scope(), [{"type": "websocket.receive", "text": "hi"}], [RECV]),
    ("ws-connect", ws_scope(), [{"type": "websocket.disconnect", "code": 1000}], [RECV]),
    ("ws-connect", ws_scope(), [CONNECT, CONNECT], [RECV, RECV]),
    (
        "ws-send-before-accept",
        ws_scope(),
        [CONNECT],
        [RECV, {"type": "websocket.send", "text": "x"}],
    ),
    ("ws-double-accept", ws_scope(), [CONNECT], [RECV, ACCEPT, ACCEPT]),
    (
        "ws-after-close",
        ws_scope(),
        [CONNECT],
        [RECV, ACCEPT, CLOSE, {"type": "websocket.send", "text": "x"}],
    ),
    ("ws-after-close", ws_scope(), [CONNECT], [RECV, CLOSE, ACCEPT]),
    ("ws-after-close", ws_scope(), [CONNECT], [RECV, CLOSE, CLOSE]),
    ("ws-after-close", ws_scope(**WS_DENIAL), [CONNECT], [RECV, DENY, DENY_BODY, DENY_BODY]),
    ("ws-after-close", ws_scope(**WS_DENIAL), [CONNECT], [RECV, CLOSE, DENY]),
    ("ws-text-xor-bytes", ws_scope(), [CONNECT], [RECV, ACCEPT, {"type": "websocket.send"}]),
    (
        "ws-text-xor-bytes",
        ws_scope(),
        [CONNECT],
        [RECV, ACCEPT, {"type": "websocket.send", "text": "a", "bytes": b"a"}],
    ),
    (
        "ws-text-xor-bytes",
        ws_scope(),
        [CONNECT, {"type": "websocket.receive"}],
        [RECV, ACCEPT, RECV],
    ),
    ("ws-subprotocol", ws_scope(), [CONNECT], [RECV, {**ACCEPT, "subprotocol": "graphql"}]),
    (
        "ws-subprotocol",
        without(ws_scope(), "subprotocols"),
        [CONNECT],
        [RECV, {**ACCEPT, "subprotocol": "chat"}],
    ),
    ("ws-denial-order", ws_scope(**WS_DENIAL), [CONNECT], [RECV, ACCEPT, DENY]),
    ("ws-denial-order", ws_scope(**WS_DENIAL), [CONNECT], [RECV, DENY, DENY]),
    ("ws-denial-order", ws_scope(**WS_DENIAL), [CONNECT], [RECV, DENY_BODY]),
    ("ws-denial-order", ws_scope(**WS_DENIAL), [CONNECT], [RECV, DENY, ACCEPT]),
    ("ws-denial-order", ws_scope(**WS_DENIAL), [CONNECT], [RECV, DENY, CLOSE]),
    # Content-Length and bodiless responses.
    ("http-content-length", http_scope(), [], [start(headers=[(b"content-length", b"3")]), BODY]),
    ("http-content-length", http_scope(), [], [start(headers=[(b"content-length", b"1")]), BODY]),
    (
        "http-content-length",
        http_scope(),
        [],
        [start(headers=[(b"content-length", b"1")]), {**BODY, "more_body": True}],
    ),
    (
        "http-content-length",
        http_scope(),
        [],
        [start(headers=[(b"content-length", b"2"), (b"content-length", b"2")]), BODY],
    ),
    ("http-content-length", http_scope(), [], [start(headers=[(b"content-length", b"-2")])]),
    ("http-body-not-allowed", http_scope(method="HEAD"), [], OK),
    ("http-body-not-allowed", http_scope(), [], [start(status=204), BODY]),
    ("http-body-not-allowed", http_scope(), [], [start(status=304), BODY]),
    # Lifespan.
    ("lifespan-order", lifespan_scope(), [SHUTDOWN], [RECV]),
    ("lifespan-order", lifespan_scope(), [STARTUP, STARTUP], [RECV, RECV]),
    ("lifespan-order", lifespan_scope(), [STARTUP, SHUTDOWN], [RECV, RECV]),
    (
        "lifespan-order",
        lifespan_scope(),
        [STARTUP, SHUTDOWN, SHUTDOWN],
        [RECV, STARTED, RECV, STOPPED, RECV],
    ),
    ("lifespan-reply", lifespan_scope(), [], [STARTED]),
    ("lifespan-reply", lifespan_scope(), [STARTUP], [RECV, STARTED, STARTED]),
    ("lifespan-reply", lifespan_scope(), [STARTUP], [RECV, STARTED, STOPPED]),
    (
        "lifespan-reply",
        lifespan_scope(),
        [STARTUP, SHUTDOWN],
        [RECV, STARTED, RECV, STOPPED, STOPPED],
    ),
    (
        "lifespan-reply",
        lifespan_scope(),
        [STARTUP],
        [RECV, {"type": "lifespan.startup.failed", "message": "x"}, STARTED],
    ),
]


@pytest.mark.parametrize(
    ("rule", "scope", "incoming", "steps"),
    BROKEN,
    ids=[f"{case[0]}-{index}" for index, case in enumerate(BROKEN)],
)
async def test_rule_is_enforced(
    rule: str, scope: Any, incoming: list[Any], steps: list[Any]
) -> None:
    with pytest.raises(ASGIProtocolError) as info:
        await run(scripted(steps), scope, incoming)
    assert info.value.rule == rule, str(info.value)
    assert str(info.value).startswith(f"[{rule}] ")


def test_every_rule_has_a_broken_case() -> None:
    assert {case[0] for case in BROKEN} == set(RULES)


CORRECT: list[tuple[str, Any, list[Any], list[Any]]] = [
    ("plain", http_scope(), [REQUEST], [RECV, *OK]),
    (
        "content-length matching a body in chunks",
        http_scope(),
        [],
        [
            start(headers=[(b"content-length", b"4")]),
            {**BODY, "more_body": True},
            {"type": "http.response.body", "body": b"", "more_body": True},
            {**BODY, "more_body": False},
        ],
    ),
    (
        "HEAD, 204 and 304 keep their content-length but send no bytes",
        http_scope(method="HEAD"),
        [],
        [start(headers=[(b"content-length", b"10")]), {"type": "http.response.body"}],
    ),
    ("204 without body", http_scope(), [], [start(status=204), {"type": "http.response.body"}]),
    (
        "304 with the length of the full representation",
        http_scope(),
        [],
        [start(status=304, headers=[(b"content-length", b"99")]), {"type": "http.response.body"}],
    ),
    (
        "minimal scope",
        {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "2",
            "method": "PATCH",
            "path": "",
            "query_string": b"",
            "headers": (),
        },
        [],
        OK,
    ),
    (
        "unix server, no client",
        http_scope(server=["/tmp/s", None], client=None, raw_path=None),
        [],
        OK,
    ),
    (
        "header lists as lists",
        http_scope(headers=[[b"a", b"\xff"], [b"", b""]]),
        [],
        [start(headers=[[b"x-a", b"1"]]), BODY],
    ),
    (
        "defaults omitted",
        http_scope(),
        [{"type": "http.request"}],
        [RECV, {"type": "http.response.start", "status": 204}, {"type": "http.response.body"}],
    ),
    (
        "streaming",
        http_scope(),
        [{**REQUEST, "more_body": True}, REQUEST],
        [RECV, RECV, START, {**BODY, "more_body": True}, {**BODY, "more_body": True}, BODY],
    ),
    ("disconnect then nothing more", http_scope(), [{"type": "http.disconnect"}], [RECV]),
    (
        "disconnect mid-stream",
        http_scope(),
        [{"type": "http.disconnect"}],
        [START, {**BODY, "more_body": True}, RECV],
    ),
    (
        "disconnect after the request body",
        http_scope(),
        [REQUEST, {"type": "http.disconnect"}, {"type": "http.disconnect"}],
        [RECV, RECV, RECV],
    ),
    ("informational and max status", http_scope(), [], [start(status=599), BODY]),
    (
        "trailers",
        http_scope(extensions={"http.response.trailers": {}}),
        [],
        [
            start(trailers=True),
            {**BODY, "more_body": True},
            BODY,
            {
                "type": "http.response.trailers",
                "headers": [(b"x-checksum", b"1")],
                "more_trailers": True,
            },
            {"type": "http.response.trailers", "headers": []},
        ],
    ),
    (
        "pathsend",
        http_scope(extensions={"http.response.pathsend": {}}),
        [],
        [START, {"type": "http.response.pathsend", "path": "/etc/hosts"}],
    ),
    (
        "zerocopy",
        http_scope(extensions={"http.response.zerocopy": {}}),
        [],
        [
            START,
            {"type": "http.response.zerocopy", "file": 3, "more_body": True},
            {"type": "http.response.zerocopy", "file": 3},
        ],
    ),
    (
        "push and early hint",
        http_scope(extensions={"http.response.push": {}, "http.response.early_hint": {}}),
        [],
        [
            {"type": "http.response.early_hint", "links": [b"</a.css>; rel=preload"]},
            {"type": "http.response.push", "path": "/a.css", "headers": [(b"accept", b"text/css")]},
            *OK,
        ],
    ),
    (
        "debug",
        http_scope(extensions={"http.response.debug": {}}),
        [],
        [{"type": "http.response.debug", "info": {}}, *OK],
    ),
    (
        "ws session",
        ws_scope(),
        [
            CONNECT,
            {"type": "websocket.receive", "bytes": b"hi"},
            {"type": "websocket.receive", "text": "yo", "bytes": None},
            {"type": "websocket.disconnect", "code": 1001, "reason": None},
        ],
        [
            RECV,
            {**ACCEPT, "subprotocol": "chat", "headers": [(b"x-a", b"1")]},
            RECV,
            RECV,
            {"type": "websocket.send", "text": "hi"},
            {"type": "websocket.send", "bytes": b"", "text": None},
            RECV,
            CLOSE,
        ],
    ),
    (
        "ws reject with close",
        ws_scope(),
        [CONNECT],
        [RECV, {**CLOSE, "code": 1008, "reason": "no"}],
    ),
    (
        "ws denial response",
        ws_scope(**WS_DENIAL),
        [CONNECT],
        [RECV, DENY, {**DENY_BODY, "more_body": True}, DENY_BODY],
    ),
    ("ws returns without closing", ws_scope(), [CONNECT], [RECV]),
    ("lifespan", lifespan_scope(), [STARTUP, SHUTDOWN], [RECV, STARTED, RECV, STOPPED]),
    (
        "lifespan failures",
        lifespan_scope(),
        [STARTUP, SHUTDOWN],
        [
            RECV,
            {"type": "lifespan.startup.failed", "message": "boom"},
            RECV,
            {"type": "lifespan.shutdown.failed", "message": ""},
        ],
    ),
]


@pytest.mark.parametrize(
    ("name", "scope", "incoming", "steps"), CORRECT, ids=[case[0] for case in CORRECT]
)
async def test_correct_conversation_passes(
    name: str, scope: Any, incoming: list[Any], steps: list[Any]
) -> None:
    sent = await run(scripted(steps), scope, incoming)
    assert sent == [step for step in steps if step != RECV]


async def test_violation_is_raised_at_the_send_and_not_forwarded() -> None:
    caught: list[str] = []
    forwarded: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(START)
        try:
            await send(START)
        except ASGIProtocolError as exc:
            caught.append(exc.rule)
            raise

    async def receive() -> Message:
        raise AssertionError("not called")

    async def send(message: Message) -> None:
        forwarded.append(message)

    with pytest.raises(ASGIProtocolError):
        await LintMiddleware(app)(http_scope(), receive, send)
    assert caught == ["http-double-start"]  # raised inside the app's own await send()
    assert forwarded == [START]  # the bad second start never reached the server


async def test_error_message_names_rule_and_shows_message() -> None:
    bad = start(status=700, headers=[(b"x", b"y")])
    with pytest.raises(ASGIProtocolError) as info:
        await run(scripted([bad]), http_scope())
    text = str(info.value)
    assert text.startswith("[http-status] status 700 is not an int in 100..599")
    assert "'status': 700" in text
    assert info.value.offending is bad
    assert info.value.detail == "status 700 is not an int in 100..599"
    assert isinstance(info.value, AssertionError)


async def test_long_offending_message_is_abbreviated() -> None:
    body = b"x" * 100_000
    with pytest.raises(ASGIProtocolError) as info:
        await run(scripted([{"type": "http.response.body", "body": body}]), http_scope())
    assert len(str(info.value)) < 1000


async def test_app_exception_propagates_without_incomplete_report() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(START)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await run(app, http_scope())


async def test_check_scope_false_skips_scope_but_not_messages() -> None:
    partial = {"type": "http", "path": "/"}
    assert await run(scripted(OK), partial, check_scope=False) == OK
    with pytest.raises(ASGIProtocolError, match=r"^\[http-body-before-start\]"):
        await run(scripted([BODY]), partial, check_scope=False)
    with pytest.raises(ASGIProtocolError, match=r"^\[scope-type\]"):
        await run(scripted(OK), {"type": "ftp"}, check_scope=False)


async def test_received_violation_raised_from_receive() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await receive()
        except ASGIProtocolError as exc:
            seen.append(exc.rule)
            raise

    with pytest.raises(ASGIProtocolError):
        await run(app, http_scope(), [{"type": "http.request", "body": 1}])
    assert seen == ["message-field"]


def test_attribute_access_falls_through_to_the_app() -> None:
    class App:
        state = "the state"

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            raise NotImplementedError

    inner = App()
    lint = wrap(inner)
    assert isinstance(lint, LintMiddleware)
    assert lint.app is inner
    assert lint.state == "the state"
    with pytest.raises(AttributeError):
        _ = lint.missing
    bare = LintMiddleware.__new__(LintMiddleware)
    with pytest.raises(AttributeError):
        _ = bare.app


def test_error_class_is_shown_under_the_public_module() -> None:
    assert ASGIProtocolError.__module__ == "stellate.testing.lint"
    assert str(ASGIProtocolError("x-rule", "what")) == "[x-rule] what"


async def test_one_shot_header_iterables_are_checked_without_being_consumed() -> None:
    scope = http_scope(headers=iter([(b"host", b"example.com")]))
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(list(scope["headers"]))
        headers = ((name, value) for name, value in [(b"x-a", b"1")])
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send(BODY)

    sent = await run(app, scope)
    assert seen == [[(b"host", b"example.com")]]
    assert list(sent[0]["headers"]) == [(b"x-a", b"1")]


async def test_generator_with_bad_header_is_reported() -> None:
    headers = ((name, value) for name, value in [(b"X-A", b"1")])
    with pytest.raises(ASGIProtocolError, match=r"^\[http-header-name\]"):
        await run(scripted([start(headers=headers)]), http_scope())


def _stellate_app() -> Any:
    import contextlib
    from collections.abc import AsyncIterator

    from stellate.applications import Stellate
    from stellate.responses import PlainTextResponse
    from stellate.routing import Mount, Route, WebSocketRoute

    async def home(request: Any) -> Any:
        return PlainTextResponse("home", headers={"X-Mixed-Case": "ok"})

    async def chat(websocket: Any) -> None:
        await websocket.accept(subprotocol="chat")
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    async def bad_header(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"X-Bad", b"1")]})
        await send({"type": "http.response.body", "body": b""})

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield

    return Stellate(
        routes=[
            Route("/", home),
            WebSocketRoute("/ws", chat),
            Mount("/raw", app=bad_header),
        ],
        lifespan=lifespan,
    )


def test_stellate_app_under_test_client_passes(raw_test_client_factory: Any) -> None:
    # The raw factory: this test wraps the app itself (the plain one would wrap it twice).
    with raw_test_client_factory(wrap(_stellate_app())) as client:
        response = client.get("/")
        assert (response.status_code, response.text) == (200, "home")
        assert response.headers["x-mixed-case"] == "ok"
        assert client.get("/missing").status_code == 404
        with client.websocket_connect("/ws", subprotocols=["chat"]) as session:
            session.send_text("hi")
            assert session.receive_text() == "hi"


def test_broken_mounted_app_fails_under_test_client(raw_test_client_factory: Any) -> None:
    client = raw_test_client_factory(wrap(_stellate_app()))
    with pytest.raises(ASGIProtocolError, match=r"^\[http-header-name\].*b'X-Bad'"):
        client.get("/raw/")


class _ASGI2App:
    """An ASGI 2 ("double callable") app: the class is called with the scope, the instance
    with receive and send. It sends `headers` as given."""

    headers: Any = [(b"content-type", b"text/plain")]

    def __init__(self, scope: Scope) -> None:
        self.path = scope["path"]

    async def __call__(self, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.path.encode()})


def test_asgi2_app_is_called_in_two_steps(raw_test_client_factory: Any) -> None:
    # The wrapper is an ASGI 3 app, so the client cannot see the ASGI 2 style any more:
    # the wrapper must detect it (as the clients do) and make the two calls itself.
    assert raw_test_client_factory(wrap(_ASGI2App)).get("/two").text == "/two"


def test_endpoint_classes_are_asgi3(raw_test_client_factory: Any) -> None:
    # A class whose instances are awaitable (HTTPEndpoint) is called as an ASGI 3 app.
    from stellate.endpoints import HTTPEndpoint
    from stellate.requests import Request
    from stellate.responses import PlainTextResponse

    class Hello(HTTPEndpoint):
        async def get(self, request: Request) -> PlainTextResponse:
            return PlainTextResponse("hello")

    assert raw_test_client_factory(wrap(Hello)).get("/").text == "hello"


def test_asgi2_app_is_still_checked(raw_test_client_factory: Any) -> None:
    class Broken(_ASGI2App):
        headers: Any = [(b"Content-Type", b"text/plain")]

    with pytest.raises(ASGIProtocolError, match=r"^\[http-header-name\]"):
        raw_test_client_factory(wrap(Broken)).get("/")
