"""Tests for stellate.middleware.body_limit, driven with raw ASGI receive/send.

The receive callables count what they hand out, so the tests can say exactly how much
of the body the middleware pulled from the server before refusing it.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from stellate.exceptions import HTTPException
from stellate.middleware.body_limit import (
    MAX_BODY_SIZE_SCOPE_KEY,
    RequestBodyLimitMiddleware,
    RequestBodyLimitResponder,
)
from stellate.requests import Request
from stellate.responses import PlainTextResponse
from stellate.types import ASGIApp, Message, Receive, Scope, Send

pytestmark = pytest.mark.anyio


class Client:
    """A fake server: hands out body chunks, records what the app sends."""

    def __init__(self, chunks: list[bytes], content_length: int | None = None) -> None:
        self.pending: list[Message] = [
            {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
            for i, chunk in enumerate(chunks)
        ] or [{"type": "http.request", "body": b"", "more_body": False}]
        self.received = 0
        self.sent: list[Message] = []
        headers = [(b"host", b"test")]
        if content_length is not None:
            headers.append((b"Content-Length", str(content_length).encode()))
        self.scope: Scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}

    async def receive(self) -> Message:
        self.received += 1
        if self.pending:
            return self.pending.pop(0)
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    async def run(self, app: ASGIApp) -> tuple[int, bytes]:
        with anyio.fail_after(5):
            await app(self.scope, self.receive, self.send)
        start = next(m for m in self.sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in self.sent[1:])
        return start["status"], body


seen_bodies: list[bytes] = []


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive, send)
    body = b""
    try:
        async for chunk in request.stream():
            body += chunk
    finally:
        seen_bodies.append(body)
    await PlainTextResponse(f"{len(body)} {scope[MAX_BODY_SIZE_SCOPE_KEY]}")(scope, receive, send)


async def test_body_within_the_limit_passes() -> None:
    client = Client([b"12345", b"67890"], content_length=10)
    assert await client.run(RequestBodyLimitMiddleware(echo, max_body_size=10)) == (200, b"10 10")


async def test_declared_length_over_the_limit_is_refused_before_reading() -> None:
    client = Client([b"x" * 11], content_length=11)
    status, body = await client.run(RequestBodyLimitMiddleware(echo, max_body_size=10))
    assert (status, body) == (413, b"Content Too Large")
    assert client.received == 0
    assert client.sent[0]["headers"][0] == (b"content-length", b"17")


async def test_streamed_body_is_cut_off_at_the_crossing_chunk() -> None:
    seen_bodies.clear()
    client = Client([b"aaaa", b"bbbb", b"cccc", b"dddd"])
    status, body = await client.run(RequestBodyLimitMiddleware(echo, max_body_size=10))
    assert (status, body) == (413, b"Content Too Large")
    # The third chunk crossed the limit: it was pulled, never handed on; the fourth
    # was never pulled at all.
    assert client.received == 3
    assert seen_bodies == [b"aaaabbbb"]


async def test_lying_content_length_is_still_counted() -> None:
    client = Client([b"x" * 8, b"y" * 8], content_length=5)
    status, _ = await client.run(RequestBodyLimitMiddleware(echo, max_body_size=10))
    assert status == 413
    assert client.received == 2


async def test_malformed_content_length_is_ignored_and_the_body_counted() -> None:
    client = Client([b"abc"])
    client.scope["headers"].append((b"content-length", b"nope"))
    assert await client.run(RequestBodyLimitMiddleware(echo, max_body_size=3)) == (200, b"3 3")


async def test_zero_limit_allows_only_empty_bodies() -> None:
    assert await Client([]).run(RequestBodyLimitMiddleware(echo, 0)) == (200, b"0 0")
    assert (await Client([b"x"]).run(RequestBodyLimitMiddleware(echo, 0)))[0] == 413


async def test_innermost_limit_wins_when_larger() -> None:
    client = Client([b"x" * 50], content_length=50)
    app = RequestBodyLimitMiddleware(RequestBodyLimitMiddleware(echo, 100), 10)
    assert await client.run(app) == (200, b"50 100")


async def test_innermost_limit_wins_when_smaller() -> None:
    client = Client([b"x" * 50], content_length=50)
    app = RequestBodyLimitMiddleware(RequestBodyLimitMiddleware(echo, 10), 100)
    status, body = await client.run(app)
    assert (status, body) == (413, b"Content Too Large")
    assert client.received == 0


async def test_inner_limit_refuses_a_body_already_read_beyond_it() -> None:
    async def read_then_call_inner(scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["body"] == b"x" * 20

        async def replay() -> Message:
            return message

        await RequestBodyLimitResponder(echo, 10)(scope, replay, send)

    status, body = await Client([b"x" * 20]).run(
        RequestBodyLimitMiddleware(read_then_call_inner, 100)
    )
    assert (status, body) == (413, b"Content Too Large")


async def test_limit_hit_after_the_response_started_is_reraised() -> None:
    async def stream_then_read(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await Request(scope, receive).body()

    client = Client([b"x" * 20])
    with pytest.raises(Exception, match="Content Too Large"):
        await client.run(RequestBodyLimitMiddleware(stream_then_read, 10))
    assert [m["type"] for m in client.sent] == ["http.response.start"]


async def test_the_applications_own_exception_group_passes_untouched() -> None:
    # The app's own task group wrapped the refusal: that group is the app's to unwrap
    # (it used to be taken apart here); stellate only unwraps the groups it makes itself.
    async def read_in_task(scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(Request(scope, receive).body)

    with pytest.raises(ExceptionGroup) as info:
        await Client([b"x" * 20]).run(RequestBodyLimitMiddleware(read_in_task, 10))
    [refusal] = info.value.exceptions
    assert isinstance(refusal, HTTPException)
    assert (refusal.status_code, refusal.detail) == (413, "Content Too Large")


async def test_an_applications_exception_group_is_not_unwrapped() -> None:
    raised = ExceptionGroup("app", [LookupError("one")])

    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise raised

    with pytest.raises(ExceptionGroup) as info:
        await Client([b"x"]).run(RequestBodyLimitMiddleware(broken, 10))
    assert info.value is raised


async def test_app_errors_pass_through() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise LookupError("boom")

    with pytest.raises(LookupError, match="boom"):
        await Client([b"x"]).run(RequestBodyLimitMiddleware(broken, 10))


@pytest.mark.parametrize("scope_type", ["websocket", "lifespan"])
async def test_other_scope_types_pass_through(scope_type: str) -> None:
    calls: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope)

    scope: Scope = {"type": scope_type}
    await RequestBodyLimitMiddleware(app, 1)(scope, Client([]).receive, Client([]).send)
    assert calls == [{"type": scope_type}]


@pytest.mark.parametrize("bad", [-1, True, 1.5, "10"])
def test_invalid_limits_are_rejected(bad: Any) -> None:
    with pytest.raises(ValueError, match="max_body_size must be an int >= 0"):
        RequestBodyLimitMiddleware(echo, bad)
    with pytest.raises(ValueError, match="max_body_size must be an int >= 0"):
        RequestBodyLimitResponder(echo, bad)


async def test_responder_exposes_the_request_it_serves() -> None:
    client = Client([b"hi"])
    captured: dict[str, Any] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        captured["receive"] = receive
        captured["message"] = await receive()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    responder = RequestBodyLimitResponder(app, 5)
    assert responder.max_body_size == 5
    await responder(client.scope, client.receive, client.send)
    assert responder.scope is client.scope
    assert responder.receive == client.receive
    assert responder.send == client.send
    assert captured["receive"] == responder.receive_with_limit
    assert captured["message"]["body"] == b"hi"
    assert client.sent[0]["status"] == 204


async def test_scope_is_restored_when_the_limited_call_returns() -> None:
    client = Client([b"hi"])
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope[MAX_BODY_SIZE_SCOPE_KEY])
        await PlainTextResponse("ok")(scope, receive, send)

    before = dict(client.scope)
    await RequestBodyLimitResponder(app, 5)(client.scope, client.receive, client.send)
    assert seen == [5]
    assert client.scope == before


async def test_scope_is_restored_after_an_error() -> None:
    client = Client([b"hi"])
    client.scope[MAX_BODY_SIZE_SCOPE_KEY] = 99  # as set by someone outside

    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope[MAX_BODY_SIZE_SCOPE_KEY] == 5
        raise LookupError("boom")

    with pytest.raises(LookupError):
        await RequestBodyLimitResponder(broken, 5)(client.scope, client.receive, client.send)
    assert client.scope[MAX_BODY_SIZE_SCOPE_KEY] == 99


async def test_nested_limits_restore_the_outer_one() -> None:
    client = Client([b"x" * 8])
    seen: list[Any] = []

    async def inner_app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope[MAX_BODY_SIZE_SCOPE_KEY])

    async def outer_app(scope: Scope, receive: Receive, send: Send) -> None:
        await RequestBodyLimitResponder(inner_app, 100)(scope, receive, send)
        seen.append(scope[MAX_BODY_SIZE_SCOPE_KEY])
        # The outer limit is in force again: 8 bytes are over it.
        await echo(scope, receive, send)

    status, body = await client.run(RequestBodyLimitMiddleware(outer_app, 4))
    assert seen == [100, 4]
    assert (status, body) == (413, b"Content Too Large")


def test_scope_key_value() -> None:
    assert MAX_BODY_SIZE_SCOPE_KEY == "stellate.max_body_size"


async def test_disconnect_messages_pass_through_uncounted() -> None:
    messages: list[Message] = []

    async def read_past_the_body(scope: Scope, receive: Receive, send: Send) -> None:
        messages.append(await receive())
        messages.append(await receive())
        await PlainTextResponse("ok")(scope, receive, send)

    status, _ = await Client([b"abc"]).run(RequestBodyLimitMiddleware(read_past_the_body, 3))
    assert status == 200
    assert [m["type"] for m in messages] == ["http.request", "http.disconnect"]
