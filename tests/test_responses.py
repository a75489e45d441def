"""Tests for stellate.responses, driven with hand-written ASGI receive/send callables."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from http.cookies import CookieError
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import stellate._sending
from stellate import _cookies
from stellate.background import BackgroundTask
from stellate.datastructures import URL, Headers
from stellate.requests import ClientDisconnect, HTTPConnection, cookie_parser
from stellate.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from stellate.types import Message, Scope, Send


def http_scope(method: str = "GET", **extra: Any) -> Scope:
    scope: Scope = {
        "type": "http",
        "method": method,
        "path": "/",
        "headers": [],
        "query_string": b"",
    }
    scope.update(extra)
    return scope


class Recorder:
    """A send() that records messages, optionally calling back after each one."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)

    @property
    def start(self) -> Message:
        return self.messages[0]

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        headers: list[tuple[bytes, bytes]] = self.start["headers"]
        return headers

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])


async def never_receive() -> Message:
    """A receive for requests whose client never disconnects (blocks until cancelled)."""
    await anyio.sleep_forever()
    raise AssertionError("unreachable")


async def run(response: Response, method: str = "GET") -> Recorder:
    send = Recorder()
    with anyio.fail_after(5):
        await response(http_scope(method), never_receive, send)
    return send


def set_cookie_values(response: Response) -> list[str]:
    return [v.decode("latin-1") for k, v in response.raw_headers if k == b"set-cookie"]


# --- Response construction (pure data) ---------------------------------------------------


def test_default_response() -> None:
    response = Response()
    assert response.status_code == 200
    assert response.body == b""
    assert response.raw_headers == [(b"content-length", b"0")]
    assert response.media_type is None
    assert response.background is None


def test_str_content_is_encoded_with_charset() -> None:
    response = Response("héllo", media_type="text/plain")
    assert response.body == "héllo".encode()
    assert response.raw_headers == [
        (b"content-length", b"6"),
        (b"content-type", b"text/plain; charset=utf-8"),
    ]


def test_custom_charset() -> None:
    class Latin1Response(Response):
        charset = "latin-1"
        media_type = "text/html"

    response = Latin1Response("é")
    assert response.body == b"\xe9"
    assert response.headers["content-type"] == "text/html; charset=latin-1"


def test_bytes_memoryview_bytearray_content() -> None:
    assert Response(b"raw").body == b"raw"
    assert bytes(Response(memoryview(b"view")).body) == b"view"
    assert Response(bytearray(b"ba")).body == b"ba"


def test_typed_memoryview_counts_bytes() -> None:
    # As Starlette: a view of 4-byte items is sent as its 8 bytes, and Content-Length says
    # 8 (it used to say 2, the number of items).
    view = memoryview(b"01234567").cast("I")
    response = Response(view)
    assert dict(response.raw_headers)[b"content-length"] == b"8"
    assert response.body == b"01234567"
    assert type(response.body) is bytes  # what ASGI says a body is


def test_multidimensional_memoryview_counts_bytes() -> None:
    view = memoryview(b"abcdef").cast("B", shape=[2, 3])
    response = Response(view)
    assert dict(response.raw_headers)[b"content-length"] == b"6"
    assert bytes(response.body) == b"abcdef"


def test_non_contiguous_memoryview_becomes_bytes() -> None:
    view = memoryview(b"a-b-c-")[::2]
    response = Response(view)
    assert response.body == b"abc"
    assert type(response.body) is bytes
    assert dict(response.raw_headers)[b"content-length"] == b"3"


def test_unsupported_content_type() -> None:
    with pytest.raises(TypeError, match="int"):
        Response(42)


def test_charset_not_added_to_non_text_or_when_present() -> None:
    assert Response(b"", media_type="image/png").headers["content-type"] == "image/png"
    response = Response(b"", media_type="text/csv; Charset=latin-1")
    assert response.headers["content-type"] == "text/csv; Charset=latin-1"


@pytest.mark.parametrize("status_code", [100, 101, 103, 204, 304])
def test_no_content_length_for_bodiless_statuses(status_code: int) -> None:
    response = Response(status_code=status_code)
    assert "content-length" not in response.headers


def test_explicit_headers_win() -> None:
    response = Response(
        "abc",
        media_type="text/plain",
        headers={"Content-Length": "99", "Content-Type": "application/x-thing", "X-A": "1"},
    )
    assert response.raw_headers == [
        (b"content-length", b"99"),
        (b"content-type", b"application/x-thing"),
        (b"x-a", b"1"),
    ]


def test_headers_with_repeated_names_are_kept() -> None:
    given = Headers(raw=[(b"x-a", b"1"), (b"x-a", b"2")])
    response = Response(headers=given)
    assert response.headers.getlist("x-a") == ["1", "2"]
    response.headers.append("x-a", "3")
    assert [v for k, v in response.raw_headers if k == b"x-a"] == [b"1", b"2", b"3"]


def test_headers_view_writes_through_to_raw_headers() -> None:
    response = Response()
    response.headers["X-New"] = "v"
    assert (b"x-new", b"v") in response.raw_headers
    assert response.headers is response.headers


@pytest.mark.parametrize("value", ["a\r\nSet-Cookie: x=1", "a\nb", "a\rb", "a\x00b"])
def test_header_values_with_cr_lf_nul_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="CR, LF and NUL"):
        Response(headers={"x-a": value})


@pytest.mark.parametrize("name", ["", "bad name", "x:y", "x\r\ny", "a(b)"])
def test_invalid_header_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="header name"):
        Response(headers={name: "v"})


@pytest.mark.parametrize(("name", "value"), [("x-a", "snow\u2603"), ("x-\u2603", "v")])
def test_headers_outside_latin1_are_refused(name: str, value: str) -> None:
    with pytest.raises(ValueError, match="latin-1"):
        Response(headers={name: value})


def test_media_type_with_cr_lf_refused() -> None:
    with pytest.raises(ValueError):
        Response(media_type="text/html\r\nx-evil: 1")


def test_html_and_plain_text() -> None:
    assert HTMLResponse("<p>").headers["content-type"] == "text/html; charset=utf-8"
    assert PlainTextResponse("x").headers["content-type"] == "text/plain; charset=utf-8"
    assert PlainTextResponse("x", media_type="text/x-log").headers["content-type"] == (
        "text/x-log; charset=utf-8"
    )


# --- JSONResponse ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "body"),
    [
        ({"a": 1, "b": [1, 2]}, b'{"a":1,"b":[1,2]}'),
        (None, b"null"),
        ("é\u2028", '"é\u2028"'.encode()),
        ([], b"[]"),
        (1.5, b"1.5"),
        ({"nested": {"x": None}}, b'{"nested":{"x":null}}'),
    ],
)
def test_json_rendering(content: Any, body: bytes) -> None:
    response = JSONResponse(content)
    assert response.body == body
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-length"] == str(len(body))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_json_refuses_nan_and_infinity(value: float) -> None:
    with pytest.raises(ValueError):
        JSONResponse({"x": value})


def test_json_refuses_unserializable() -> None:
    with pytest.raises(TypeError):
        JSONResponse({"x": object()})


def test_json_custom_media_type_and_status() -> None:
    response = JSONResponse({"e": 1}, status_code=422, media_type="application/problem+json")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


# --- RedirectResponse --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("/next", "/next"),
        ("https://example.com/a?b=1&c=2#frag", "https://example.com/a?b=1&c=2#frag"),
        ("/path with space", "/path%20with%20space"),
        ("/already%20encoded", "/already%20encoded"),
        ("/café", "/caf%C3%A9"),
        ("/x\r\nSet-Cookie: evil=1", "/x%0D%0ASet-Cookie:%20evil=1"),
        ('/a<b>"c"', "/a%3Cb%3E%22c%22"),
        ("/!$&'()*+,;=:@[]", "/!$&'()*+,;=:@[]"),
        ("/~user/-._", "/~user/-._"),
    ],
)
def test_redirect_location_quoting(url: str, location: str) -> None:
    response = RedirectResponse(url)
    assert response.status_code == 307
    assert response.headers["location"] == location
    assert response.body == b""
    assert response.headers["content-length"] == "0"


def test_redirect_accepts_url_and_replaces_given_location() -> None:
    response = RedirectResponse(
        URL("https://example.com/x"), status_code=303, headers={"Location": "/old", "X-A": "1"}
    )
    assert response.status_code == 303
    assert response.headers.getlist("location") == ["https://example.com/x"]
    assert response.headers["x-a"] == "1"


# --- cookies -----------------------------------------------------------------------------


def test_set_cookie_defaults() -> None:
    response = Response()
    response.set_cookie("session", "abc")
    assert set_cookie_values(response) == ["session=abc; Path=/; SameSite=lax"]


def test_set_cookie_every_attribute() -> None:
    response = Response()
    response.set_cookie(
        "k",
        "v",
        max_age=600,
        expires="Wed, 21 Oct 2037 07:28:00 GMT",
        path="/app",
        domain="example.com",
        secure=True,
        httponly=True,
        samesite="none",
        partitioned=True,
    )
    # http.cookies' text, as Starlette sends it: attributes in alphabetical order of
    # their key (this test used to pin stellate's own order).
    assert set_cookie_values(response) == [
        "k=v; Domain=example.com; expires=Wed, 21 Oct 2037 07:28:00 GMT; HttpOnly; "
        "Max-Age=600; Partitioned; Path=/app; SameSite=none; Secure"
    ]


def test_set_cookie_text_as_starlette_documents() -> None:
    response = Response()
    response.set_cookie(
        "mycookie",
        "myvalue",
        max_age=10,
        expires="Thu, 22 Jan 2037 12:00:10 GMT",
        path="/",
        domain="localhost",
        secure=True,
        httponly=True,
        samesite="none",
    )
    assert set_cookie_values(response) == [
        "mycookie=myvalue; Domain=localhost; expires=Thu, 22 Jan 2037 12:00:10 GMT; "
        "HttpOnly; Max-Age=10; Path=/; SameSite=none; Secure"
    ]


def test_set_cookie_without_path_or_samesite() -> None:
    response = Response()
    response.set_cookie("k", "v", path=None, samesite=None)
    assert set_cookie_values(response) == ["k=v"]


@pytest.mark.parametrize("samesite", ["Strict", "LAX", "none"])
def test_samesite_is_case_insensitive_and_keeps_its_spelling(samesite: Any) -> None:
    # As Starlette (it used to be lower-cased).
    response = Response()
    response.set_cookie("k", samesite=samesite)
    assert set_cookie_values(response)[0].endswith("SameSite=" + samesite)


def test_samesite_invalid() -> None:
    # Starlette's exception and text (it used to be a ValueError).
    with pytest.raises(AssertionError) as caught:
        Response().set_cookie("k", samesite="sometimes")  # type: ignore[arg-type]
    assert str(caught.value) == "samesite must be either 'strict', 'lax' or 'none'"


def test_expires_int_is_seconds_from_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cookies, "_now", lambda: 1_000_000_000.0)
    response = Response()
    response.set_cookie("k", expires=60)
    assert "expires=Sun, 09 Sep 2001 01:47:40 GMT" in set_cookie_values(response)[0]


def test_expires_int_uses_the_clock() -> None:
    response = Response()
    response.set_cookie("k", expires=3600)
    date = re.search(r"expires=([^;]+)", set_cookie_values(response)[0])
    assert date is not None
    assert parsedate_to_datetime(date.group(1)).year >= 2024


def test_expires_datetime_forms() -> None:
    response = Response()
    aware = datetime(2030, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    response.set_cookie("aware", expires=aware)
    response.set_cookie("naive", expires=datetime(2030, 1, 2, 3, 4, 5))
    response.set_cookie("utc", expires=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))
    values = set_cookie_values(response)
    for value in values:
        assert "expires=Wed, 02 Jan 2030 03:04:05 GMT" in value
        date = re.search(r"expires=([^;]+)", value)
        assert date is not None
        assert parsedate_to_datetime(date.group(1)) == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_expires_string_with_semicolon_refused() -> None:
    with pytest.raises(ValueError, match="expires"):
        Response().set_cookie("k", expires="now; Domain=evil.com")


@pytest.mark.parametrize("name", ["", "a b", "a;b", "a,b", "a=b", "a\r\nb", "é", 'a"b'])
def test_invalid_cookie_names(name: str) -> None:
    # http.cookies' error, as in Starlette (it used to be a ValueError).
    with pytest.raises(CookieError) as caught:
        Response().set_cookie(name, "v")
    assert str(caught.value) == f"Illegal key {name!r}"


@pytest.mark.parametrize(
    ("attribute", "value"),
    [("path", "/a;Domain=evil"), ("domain", "evil.com\r\nX: y"), ("path", "/a\x00")],
)
def test_attribute_injection_refused(attribute: str, value: str) -> None:
    with pytest.raises(ValueError, match=attribute):
        kwargs: dict[str, Any] = {attribute: value}
        Response().set_cookie("k", "v", **kwargs)


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        # http.cookies' quoting, as Starlette (a space used to be escaped as \040, the
        # empty value and "/" or "=" were left unquoted).
        ("", 'k=""'),
        ("plain-value_ok!", "k=plain-value_ok!"),
        ("plain/value=ok!", 'k="plain/value=ok!"'),
        ("a b", 'k="a b"'),
        ("a;b,c", 'k="a\\073b\\054c"'),
        ('q"s\\', 'k="q\\"s\\\\"'),
        ("line\r\nX-Evil: 1", 'k="line\\015\\012X-Evil: 1"'),
        ("café", 'k="caf\\351"'),
    ],
)
def test_cookie_values_are_quoted_and_read_back(value: str, wire: str) -> None:
    response = Response()
    response.set_cookie("k", value, path=None, samesite=None)
    header = set_cookie_values(response)[0]
    assert header == wire
    # What the browser sends back is the name=value part verbatim.
    assert cookie_parser(header) == {"k": value}
    scope = {"type": "http", "headers": [(b"cookie", header.encode("latin-1"))]}
    assert HTTPConnection(scope).cookies == {"k": value}


def test_cookie_value_outside_latin1_refused() -> None:
    with pytest.raises(ValueError, match="latin-1"):
        Response().set_cookie("k", "snow\u2603")


def test_delete_cookie(monkeypatch: pytest.MonkeyPatch) -> None:
    # As Starlette: an empty quoted value and "expires" now (it used to be "k=" and the
    # epoch, in stellate's attribute order).
    monkeypatch.setattr(_cookies, "_now", lambda: 1_000_000_000.0)
    response = Response()
    response.delete_cookie(
        "k",
        path="/p",
        domain="d.example",
        secure=True,
        httponly=True,
        samesite="strict",
        partitioned=True,
    )
    assert set_cookie_values(response) == [
        'k=""; Domain=d.example; expires=Sun, 09 Sep 2001 01:46:40 GMT; HttpOnly; '
        "Max-Age=0; Partitioned; Path=/p; SameSite=strict; Secure"
    ]


def test_delete_cookie_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cookies, "_now", lambda: 1_000_000_000.0)
    response = Response()
    response.delete_cookie("a")
    assert set_cookie_values(response) == [
        'a=""; expires=Sun, 09 Sep 2001 01:46:40 GMT; Max-Age=0; Path=/; SameSite=lax'
    ]


def test_several_cookies_are_separate_headers() -> None:
    response = Response()
    response.set_cookie("a", "1")
    response.set_cookie("b", "2")
    response.delete_cookie("c")
    assert [v.split(";")[0] for v in set_cookie_values(response)] == ["a=1", "b=2", 'c=""']


# --- sending -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_response_sends_start_then_body() -> None:
    send = await run(PlainTextResponse("hi", status_code=201, headers={"x-a": "1"}))
    assert send.messages == [
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [
                (b"x-a", b"1"),
                (b"content-length", b"2"),
                (b"content-type", b"text/plain; charset=utf-8"),
            ],
        },
        {"type": "http.response.body", "body": b"hi"},
    ]


@pytest.mark.anyio
async def test_head_sends_headers_without_body() -> None:
    send = await run(PlainTextResponse("hello"), method="HEAD")
    assert send.start["status"] == 200
    assert (b"content-length", b"5") in send.headers
    assert send.messages[1:] == [{"type": "http.response.body", "body": b""}]


@pytest.mark.anyio
async def test_prebuilt_response_sent_many_times() -> None:
    response = JSONResponse({"ok": True})
    first = await run(response)
    # A middleware editing the sent headers in place must not change the next send.
    first.headers.append((b"x-added", b"1"))
    second = await run(response)
    assert first.body == second.body == b'{"ok":true}'
    assert (b"x-added", b"1") not in second.headers
    assert (b"x-added", b"1") not in response.raw_headers


@pytest.mark.anyio
async def test_websocket_denial_response_prefix() -> None:
    send = Recorder()
    await Response("no", status_code=403)({"type": "websocket"}, never_receive, send)
    assert [m["type"] for m in send.messages] == [
        "websocket.http.response.start",
        "websocket.http.response.body",
    ]


@pytest.mark.anyio
async def test_background_runs_after_the_body() -> None:
    events: list[str] = []

    async def send(message: Message) -> None:
        events.append(message["type"])

    async def task(name: str) -> None:
        events.append(name)

    response = Response("x", background=BackgroundTask(task, "background"))
    await response(http_scope(), never_receive, send)
    assert events == ["http.response.start", "http.response.body", "background"]


@pytest.mark.anyio
async def test_background_runs_after_head() -> None:
    ran: list[bool] = []

    def task() -> None:
        ran.append(True)

    send = await run(Response("x", background=BackgroundTask(task)), method="HEAD")
    assert ran == [True]
    assert send.body == b""


# --- StreamingResponse -------------------------------------------------------------------


@pytest.mark.anyio
async def test_streaming_from_async_iterator() -> None:
    async def numbers() -> AsyncIterator[str | bytes]:
        yield "1"
        yield b"2"
        yield memoryview(b"3")  # type: ignore[misc]

    send = await run(StreamingResponse(numbers(), media_type="text/plain"))
    assert send.start == {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/plain; charset=utf-8")],
    }
    assert [bytes(m["body"]) for m in send.messages[1:]] == [b"1", b"2", b"3", b""]
    assert [m["more_body"] for m in send.messages[1:]] == [True, True, True, False]


@pytest.mark.anyio
async def test_streaming_from_sync_iterator_runs_in_a_thread() -> None:
    import threading

    main = threading.get_ident()
    threads: list[int] = []

    def chunks() -> Iterator[str]:
        for chunk in ["a", "é"]:
            threads.append(threading.get_ident())
            yield chunk

    send = await run(StreamingResponse(chunks()))
    assert send.body == "aé".encode()
    assert threads
    assert main not in threads


@pytest.mark.anyio
async def test_streaming_from_list_and_custom_charset() -> None:
    class Latin1Stream(StreamingResponse):
        charset = "latin-1"

    send = await run(Latin1Stream(["é", b"!"], media_type="text/plain"))
    assert send.body == b"\xe9!"
    assert (b"content-type", b"text/plain; charset=latin-1") in send.headers


@pytest.mark.anyio
async def test_streaming_has_no_content_length_unless_given() -> None:
    send = await run(StreamingResponse([b"ab"], headers={"content-length": "2"}))
    assert send.headers == [(b"content-length", b"2")]
    send = await run(StreamingResponse([b"ab"]))
    assert send.headers == []


@pytest.mark.anyio
async def test_streaming_head_does_not_iterate() -> None:
    iterated: list[bool] = []

    async def body() -> AsyncIterator[bytes]:
        iterated.append(True)
        yield b"x"

    ran: list[bool] = []

    async def task() -> None:
        ran.append(True)

    response = StreamingResponse(body(), background=BackgroundTask(task))
    send = await run(response, method="HEAD")
    assert iterated == []
    assert send.messages[1:] == [{"type": "http.response.body", "body": b""}]
    assert ran == [True]


@pytest.mark.anyio
async def test_streaming_head_sync_generator_is_closed_unstarted() -> None:
    def body() -> Iterator[bytes]:
        raise AssertionError("must not be iterated")
        yield b""  # pragma: no cover

    generator = body()
    await run(StreamingResponse(generator), method="HEAD")
    with pytest.raises(StopIteration):
        next(generator)


@pytest.mark.anyio
async def test_streaming_stops_when_client_disconnects() -> None:
    disconnect = anyio.Event()
    finalized: list[str] = []

    async def receive() -> Message:
        await disconnect.wait()
        return {"type": "http.disconnect"}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)
        if len(sent) == 3:  # start + two chunks
            disconnect.set()

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"chunk"
                await anyio.lowlevel.checkpoint()
        finally:
            finalized.append("finally")

    ran: list[bool] = []

    async def task() -> None:
        ran.append(True)

    response = StreamingResponse(endless(), background=BackgroundTask(task))
    with anyio.fail_after(5):
        await response(http_scope(), receive, send)
    assert finalized == ["finally"]
    # Nothing after the disconnect: in particular no closing more_body=False message.
    assert all(m.get("more_body", True) for m in sent)
    assert len(sent) <= 4
    assert ran == [True]


@pytest.mark.anyio
async def test_sync_generator_is_closed_on_disconnect() -> None:
    disconnect = anyio.Event()
    finalized: list[str] = []

    async def receive() -> Message:
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message.get("more_body"):
            disconnect.set()

    def endless() -> Iterator[bytes]:
        try:
            while True:
                yield b"x"
        finally:
            finalized.append("finally")

    with anyio.fail_after(5):
        await StreamingResponse(endless())(http_scope(), receive, send)
    assert finalized == ["finally"]


@pytest.mark.anyio
async def test_listener_ignores_body_messages_until_disconnect() -> None:
    first_chunk_sent = anyio.Event()
    messages: list[Message] = [
        {"type": "http.request", "body": b"unread", "more_body": False},
        {},  # not a disconnect either (and no "type": no KeyError)
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        if len(messages) == 1:
            await first_chunk_sent.wait()
        if messages:
            return messages.pop(0)
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    stream_done = anyio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"a"
        first_chunk_sent.set()
        await stream_done.wait()  # only the disconnect can end this
        yield b"b"  # pragma: no cover

    send = Recorder()
    with anyio.fail_after(5):
        await StreamingResponse(slow())(http_scope(), receive, send)
    assert send.body == b"a"
    assert messages == []


@pytest.mark.anyio
async def test_streaming_finishes_and_cancels_the_listener() -> None:
    send = await run(StreamingResponse(iter([b"a", b"b"])))
    assert send.body == b"ab"
    assert send.messages[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


@pytest.mark.anyio
async def test_a_disconnect_once_the_last_body_message_is_sent_stops_nothing() -> None:
    # Servers such as hypercorn report http.disconnect as soon as a response is
    # complete: the response went out in full, so nothing of it is stopped.
    complete = anyio.Event()

    async def receive() -> Message:
        await complete.wait()
        return {"type": "http.disconnect"}

    sent = Recorder()

    async def send(message: Message) -> None:
        await sent(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            complete.set()
            await anyio.lowlevel.checkpoint()  # the listener wakes before send returns

    async def chunks() -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"

    after_last: list[str] = []

    class Finishing(StreamingResponse):
        async def stream_response(self, send: Send) -> None:
            await super().stream_response(send)
            await anyio.lowlevel.checkpoint()
            after_last.append("ran")

    with anyio.fail_after(5):
        await Finishing(chunks())(http_scope(), receive, send)
    assert sent.body == b"ab"
    assert after_last == ["ran"]


@pytest.mark.anyio
async def test_iterator_exception_propagates_as_itself() -> None:
    finalized: list[bool] = []

    async def failing() -> AsyncIterator[bytes]:
        try:
            yield b"a"
            raise KeyError("boom")
        finally:
            finalized.append(True)

    with pytest.raises(KeyError, match="boom"):
        await run(StreamingResponse(failing()))
    assert finalized == [True]


@pytest.mark.anyio
async def test_sync_iterator_exception_propagates_as_itself() -> None:
    def failing() -> Iterator[bytes]:
        yield b"a"
        raise LookupError("sync boom")

    with pytest.raises(LookupError, match="sync boom"):
        await run(StreamingResponse(failing()))


def oserror_on_body(calls: list[Message]) -> Any:
    async def send(message: Message) -> None:
        calls.append(message)
        if message["type"] == "http.response.body":
            raise OSError("client gone")

    return send


async def receive_must_not_be_called() -> Message:
    raise AssertionError("receive() called on an ASGI 2.4 scope")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("spec_version", "raised"),
    [(None, OSError), ("2.3", OSError), ("2.4", ClientDisconnect), ("2.5", ClientDisconnect)],
)
async def test_send_oserror_propagates_or_becomes_client_disconnect(
    spec_version: str | None, raised: type[Exception]
) -> None:
    # As Starlette: below 2.4 (no version means 2.0) the OSError itself escapes; from 2.4
    # on it becomes ClientDisconnect and nothing listens. Either way the iterator is
    # closed and the background task does not run. (This test used to pin stellate's old
    # answer: the OSError swallowed as a quiet disconnect.)
    finalized: list[bool] = []
    ran: list[bool] = []

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"a"
            yield b"b"  # pragma: no cover
        finally:
            finalized.append(True)

    async def task() -> None:
        ran.append(True)  # pragma: no cover

    calls: list[Message] = []
    scope = http_scope()
    receive: Any = never_receive
    if spec_version is not None:
        scope["asgi"] = {"version": "3.0", "spec_version": spec_version}
    if raised is ClientDisconnect:
        receive = receive_must_not_be_called
    response = StreamingResponse(body(), background=BackgroundTask(task))
    with anyio.fail_after(5), pytest.raises(raised) as caught:
        await response(scope, receive, oserror_on_body(calls))
    if raised is ClientDisconnect:
        assert isinstance(caught.value.__cause__, OSError)
    assert len(calls) == 2
    assert finalized == [True]
    assert ran == []


@pytest.mark.anyio
async def test_asgi_2_4_stream_never_calls_receive() -> None:
    scope = http_scope(asgi={"version": "3.0", "spec_version": "2.4"})
    send = Recorder()
    with anyio.fail_after(5):
        await StreamingResponse(iter([b"a", b"b"]))(scope, receive_must_not_be_called, send)
    assert send.body == b"ab"
    assert send.messages[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


@pytest.mark.anyio
async def test_asgi_2_3_stream_still_listens() -> None:
    scope = http_scope(asgi={"version": "3.0", "spec_version": "2.3"})
    calls: list[bool] = []

    async def receive() -> Message:
        calls.append(True)
        return {"type": "http.disconnect"}

    async def idle() -> AsyncIterator[bytes]:
        await anyio.sleep_forever()
        yield b""  # pragma: no cover

    with anyio.fail_after(5):
        await StreamingResponse(idle())(scope, receive, Recorder())
    assert calls == [True]


@pytest.mark.anyio
async def test_websocket_denial_stream_never_listens() -> None:
    scope: Scope = {"type": "websocket", "path": "/", "headers": [], "query_string": b""}
    send = Recorder()

    async def receive() -> Message:
        raise AssertionError("receive() called for a denial response")

    with anyio.fail_after(5):
        await StreamingResponse(iter([b"no"]), status_code=403)(scope, receive, send)
    assert [m["type"] for m in send.messages] == [
        "websocket.http.response.start",
        "websocket.http.response.body",
        "websocket.http.response.body",
    ]
    assert send.body == b"no"


@pytest.mark.anyio
async def test_stream_response_override_is_used() -> None:
    class Shouting(StreamingResponse):
        async def stream_response(self, send: Any) -> None:
            await send({"type": "http.response.start", "status": 299, "headers": []})
            await send({"type": "http.response.body", "body": b"OVERRIDDEN"})

    send = await run(Shouting(iter([b"quiet"])))
    assert send.start["status"] == 299
    assert send.body == b"OVERRIDDEN"


@pytest.mark.anyio
@pytest.mark.parametrize("waiting_in", ["generator", "send"])
async def test_async_cleanup_after_disconnect_runs_to_completion(waiting_in: str) -> None:
    # The client leaves while the generator waits for its next chunk (or while a chunk is
    # being sent): its finally still gets to await its cleanup, shielded.
    left = anyio.Event()
    cleanup: list[str] = []

    async def receive() -> Message:
        await left.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message.get("more_body"):
            left.set()
            if waiting_in == "send":
                await anyio.sleep_forever()

    async def subscription() -> AsyncIterator[bytes]:
        try:
            yield b"first"
            await anyio.sleep_forever()  # idle: only the disconnect ends this
            yield b"never"  # pragma: no cover
        finally:
            cleanup.append("started")
            await anyio.sleep(0.01)
            await anyio.lowlevel.checkpoint()
            cleanup.append("finished")

    with anyio.fail_after(5):
        await StreamingResponse(subscription())(http_scope(), receive, send)
    assert cleanup == ["started", "finished"]


@pytest.mark.anyio
async def test_cleanup_after_disconnect_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stellate._sending, "CLEANUP_GRACE", 0.05)
    cleanup: list[str] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def stubborn() -> AsyncIterator[bytes]:
        try:
            await anyio.sleep_forever()
            yield b""  # pragma: no cover
        finally:
            cleanup.append("started")
            await anyio.sleep_forever()  # a cleanup that would never end
            cleanup.append("finished")  # pragma: no cover

    with anyio.fail_after(5):
        await StreamingResponse(stubborn())(http_scope(), receive, Recorder())
    assert cleanup in ([], ["started"])


@pytest.mark.anyio
async def test_streaming_background_order() -> None:
    events: list[str] = []

    async def send(message: Message) -> None:
        events.append(f"send more_body={message.get('more_body')}")

    async def task() -> None:
        events.append("background")

    response = StreamingResponse([b"a"], background=BackgroundTask(task))
    with anyio.fail_after(5):
        await response(http_scope(), never_receive, send)
    assert events == [
        "send more_body=None",
        "send more_body=True",
        "send more_body=False",
        "background",
    ]


@pytest.mark.anyio
async def test_stream_response_public_method() -> None:
    send = Recorder()
    await StreamingResponse([b"x"]).stream_response(send)
    assert [m["type"] for m in send.messages] == [
        "http.response.start",
        "http.response.body",
        "http.response.body",
    ]


@pytest.mark.anyio
async def test_async_iterable_without_aclose() -> None:
    class Chunks:
        def __aiter__(self) -> AsyncIterator[bytes]:
            return self.generate()

        async def generate(self) -> AsyncIterator[bytes]:
            yield b"a"
            yield b"b"

    send = await run(StreamingResponse(Chunks()))
    assert send.body == b"ab"


@pytest.mark.anyio
async def test_listen_for_disconnect_returns_only_on_http_disconnect() -> None:
    # As Starlette: only http.disconnect ends the listener (this test used to pin
    # stellate's old answer, which also stopped on websocket.disconnect).
    messages: list[Message] = [
        {"type": "websocket.disconnect", "code": 1000},
        {"type": "http.request", "body": b""},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return messages.pop(0)

    with anyio.fail_after(5):
        await StreamingResponse([]).listen_for_disconnect(receive)
    assert messages == []


# --- through TestClient ------------------------------------------------------------------


def test_cookie_round_trip_through_test_client(test_client_factory: Any) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        seen = HTTPConnection(scope).cookies.get("note", "<none>")
        response = PlainTextResponse(seen)
        response.set_cookie("note", 'a; b, "c"')
        await response(scope, receive, send)

    client = test_client_factory(app)
    assert client.get("/").text == "<none>"
    assert client.get("/").text == 'a; b, "c"'


def test_head_through_test_client(test_client_factory: Any) -> None:
    client = test_client_factory(PlainTextResponse("hello"))
    response = client.head("/")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == "5"


def test_streaming_through_test_client(test_client_factory: Any) -> None:
    def lines() -> Iterator[str]:
        yield "one\n"
        yield "two\n"

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await StreamingResponse(lines(), media_type="text/plain")(scope, receive, send)

    response = test_client_factory(app).get("/")
    assert response.text == "one\ntwo\n"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


def test_content_types_are_remembered_boundedly_and_errors_never() -> None:
    from stellate import _response as responses

    for n in range(200):  # media types that might come from requests
        media_type = f"text/x-{n}"
        header = Response(b"", media_type=media_type).raw_headers[-1]
        assert header == (b"content-type", f"{media_type}; charset=utf-8".encode())
    assert len(responses._CONTENT_TYPES) <= responses._CONTENT_TYPES_KEPT
    for _ in range(2):  # a bad media type fails every time, not only the first
        with pytest.raises(ValueError, match="CR, LF and NUL"):
            Response(b"", media_type="text/plain\r\nx-injected: 1")
    plain = PlainTextResponse("x", headers={"content-type": "text/csv"})
    assert [v for k, v in plain.raw_headers if k == b"content-type"] == [b"text/csv"]


def test_typed_memoryview_body_through_test_client(test_client_factory: Any) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await Response(memoryview(b"01234567").cast("I"))(scope, receive, send)

    response = test_client_factory(app).get("/")
    assert response.headers["content-length"] == "8"
    assert response.content == b"01234567"


def test_response_classes_say_they_are_from_stellate_responses() -> None:
    from stellate.responses import FileResponse

    for cls in (Response, PlainTextResponse, FileResponse, StreamingResponse):
        assert cls.__module__ == "stellate.responses"
