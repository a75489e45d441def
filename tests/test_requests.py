"""Tests for stellate.requests, driven with hand-written ASGI receive/send callables."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stellate._cookies import serialize_cookie
from stellate.datastructures import URL, Address, State, URLPath
from stellate.requests import (
    ClientDisconnect,
    HTTPConnection,
    Request,
    cookie_parser,
    empty_receive,
    empty_send,
)
from stellate.types import Message, Scope


def make_scope(**overrides: Any) -> Scope:
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/items",
        "raw_path": b"/items",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"example.com")],
        "server": ("example.com", 80),
        "client": ("10.0.0.1", 5000),
    }
    scope.update(overrides)
    return scope


def receive_from(messages: list[Message]) -> Callable[[], Awaitable[Message]]:
    """A receive that hands out ``messages`` in order without ever checkpointing."""
    queue = list(messages)

    async def receive() -> Message:
        if not queue:
            raise AssertionError("receive() called more often than the test expected")
        return queue.pop(0)

    return receive


def body_messages(*chunks: bytes) -> list[Message]:
    last = len(chunks) - 1
    return [
        {"type": "http.request", "body": chunk, "more_body": index != last}
        for index, chunk in enumerate(chunks)
    ]


# --- cookie_parser: pure data, runs once -------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", {}),
        ("a=1", {"a": "1"}),
        ("a=1; b=2", {"a": "1", "b": "2"}),
        ("  a = 1 ;b=2  ", {"a": "1", "b": "2"}),
        ("a=1;;; ;b=2", {"a": "1", "b": "2"}),
        ("a==b=c", {"a": "=b=c"}),
        ("novalue", {"": "novalue"}),
        ("a=", {"a": ""}),
        ("=x", {"": "x"}),
        ("a=1; a=2", {"a": "2"}),
        ('a="quoted"', {"a": "quoted"}),
        ('a="semi\\073colon\\054comma"', {"a": "semi;colon,comma"}),
        ('a="esc\\"aped\\\\"', {"a": 'esc"aped\\'}),
        ('a="unterminated', {"a": '"unterminated'}),
        ('a="', {"a": '"'}),
        ("a=caf\xe9", {"a": "caf\xe9"}),
        ("a=\x00\x01junk; b=ok", {"a": "\x00\x01junk", "b": "ok"}),
        ("key:with:colons=v", {"key:with:colons": "v"}),
    ],
)
def test_cookie_parser(header: str, expected: dict[str, str]) -> None:
    assert cookie_parser(header) == expected


# --- HTTPConnection ----------------------------------------------------------------------


def test_connection_is_a_mapping_over_the_scope() -> None:
    scope = make_scope()
    conn = HTTPConnection(scope)
    assert conn["path"] == "/items"
    assert len(conn) == len(scope)
    assert set(conn) == set(scope)
    assert dict(conn) == scope


def test_connections_compare_by_identity() -> None:
    scope = make_scope()
    first, second = HTTPConnection(scope), HTTPConnection(scope)
    assert first == first
    assert first != second
    assert len({first, second}) == 2


def test_connection_refuses_other_scope_types() -> None:
    with pytest.raises(AssertionError):
        HTTPConnection({"type": "lifespan"})


def test_websocket_scope_is_accepted_by_connection() -> None:
    conn = HTTPConnection(make_scope(type="websocket", scheme="ws"))
    assert conn.url == URL("ws://example.com/items")


def test_url_and_caching() -> None:
    conn = HTTPConnection(make_scope(query_string=b"a=1&b=2"))
    assert str(conn.url) == "http://example.com/items?a=1&b=2"
    assert conn.url is conn.url


def test_base_url_ends_with_slash_and_drops_query() -> None:
    conn = HTTPConnection(make_scope(query_string=b"q=1"))
    assert str(conn.base_url) == "http://example.com/"
    assert conn.base_url is conn.base_url


@pytest.mark.parametrize("path", ["/mount/items", "/items"])
def test_base_url_includes_root_path(path: str) -> None:
    # Servers disagree on whether "path" already includes "root_path": both work.
    conn = HTTPConnection(make_scope(root_path="/mount", path=path))
    assert str(conn.base_url) == "http://example.com/mount/"


def test_base_url_root_path_with_slash_is_not_doubled() -> None:
    conn = HTTPConnection(make_scope(root_path="/mount/", path="/mount/x"))
    assert str(conn.base_url) == "http://example.com/mount/"


def test_headers_keep_repeated_names() -> None:
    headers = [(b"host", b"h"), (b"x-thing", b"1"), (b"x-thing", b"2"), (b"x-thing", b"3")]
    conn = HTTPConnection(make_scope(headers=headers))
    assert conn.headers.getlist("X-Thing") == ["1", "2", "3"]
    assert conn.headers["x-thing"] == "1"
    assert conn.headers is conn.headers


def test_query_params() -> None:
    conn = HTTPConnection(make_scope(query_string=b"a=1&a=2&b=%20x"))
    assert conn.query_params.getlist("a") == ["1", "2"]
    assert conn.query_params["b"] == " x"
    assert conn.query_params is conn.query_params


def test_query_params_missing_query_string() -> None:
    scope = make_scope()
    del scope["query_string"]
    assert len(HTTPConnection(scope).query_params) == 0


def test_path_params_follow_the_scope() -> None:
    scope = make_scope()
    conn = HTTPConnection(scope)
    assert conn.path_params == {}
    scope["path_params"] = {"id": 3}
    assert conn.path_params == {"id": 3}


def test_cookies_from_several_headers() -> None:
    headers = [(b"cookie", b"a=1; b=2"), (b"Cookie", b"c=3"), (b"x", b"y")]
    conn = HTTPConnection(make_scope(headers=headers))
    assert conn.cookies == {"a": "1", "b": "2", "c": "3"}
    assert conn.cookies is conn.cookies


def test_cookie_header_garbage_never_raises() -> None:
    raw = b';;=;  ;"";\xff\xfe=\x80; good=yes; =; \x00'
    conn = HTTPConnection(make_scope(headers=[(b"cookie", raw)]))
    cookies = conn.cookies
    assert cookies["good"] == "yes"
    assert cookies["\xff\xfe"] == "\x80"


def test_no_cookie_header() -> None:
    assert HTTPConnection(make_scope()).cookies == {}


def test_client_address() -> None:
    conn = HTTPConnection(make_scope(client=["10.0.0.1", 5000]))
    assert conn.client == Address("10.0.0.1", 5000)
    assert conn.client is not None
    assert conn.client.host == "10.0.0.1"
    assert conn.client.port == 5000


def test_client_none() -> None:
    scope = make_scope(client=None)
    assert HTTPConnection(scope).client is None
    del scope["client"]
    assert HTTPConnection(scope).client is None


@pytest.mark.parametrize(
    ("attribute", "middleware"),
    [
        ("session", "SessionMiddleware"),
        ("auth", "AuthenticationMiddleware"),
        ("user", "AuthenticationMiddleware"),
    ],
)
def test_middleware_attributes_name_the_missing_middleware(attribute: str, middleware: str) -> None:
    conn = HTTPConnection(make_scope())
    with pytest.raises(AssertionError, match=middleware):
        getattr(conn, attribute)


def test_middleware_attributes_when_present() -> None:
    conn = HTTPConnection(make_scope(session={"n": 1}, auth="creds", user="alice"))
    assert conn.session == {"n": 1}
    assert conn.auth == "creds"
    assert conn.user == "alice"


def test_state_shares_the_lifespan_dict() -> None:
    lifespan_state: dict[str, Any] = {"db": "pool"}
    scope = make_scope(state=lifespan_state)
    conn = HTTPConnection(scope)
    assert conn.state.db == "pool"
    conn.state.extra = 1
    assert lifespan_state["extra"] == 1
    assert conn.state is conn.state
    assert isinstance(conn.state, State)


def test_state_created_on_the_scope_when_missing() -> None:
    scope = make_scope()
    conn = HTTPConnection(scope)
    conn.state.seen = True
    assert scope["state"] == {"seen": True}
    # Another connection over the same scope (the next layer) sees it.
    assert HTTPConnection(scope).state.seen is True


def test_app() -> None:
    app = object()
    assert HTTPConnection(make_scope(app=app)).app is app


class FakeRouter:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        self.calls.append((name, path_params))
        return URLPath(f"/{name}/{path_params['id']}", protocol="http")


def test_url_for_uses_the_router_and_base_url() -> None:
    router = FakeRouter()
    conn = HTTPConnection(make_scope(router=router, root_path="/api", path="/api/x"))
    url = conn.url_for("item", id=5)
    assert isinstance(url, URL)
    assert str(url) == "http://example.com/api/item/5"
    assert router.calls == [("item", {"id": 5})]


def test_base_url_and_url_for_inside_a_mount() -> None:
    # Mount extends root_path but keeps the server's root in app_root_path; the router's
    # paths already include the mount prefix, so it must not be added twice.
    scope = make_scope(
        router=FakeRouter(), app_root_path="/api", root_path="/api/sub", path="/api/sub/x"
    )
    conn = HTTPConnection(scope)
    assert str(conn.base_url) == "http://example.com/api/"
    assert str(conn.url) == "http://example.com/api/sub/x"
    assert str(conn.url_for("sub", id=1)) == "http://example.com/api/sub/1"


def test_url_for_name_is_positional_only() -> None:
    router = FakeRouter()
    conn = HTTPConnection(make_scope(router=router))
    # "name" may itself be a path parameter.
    assert str(conn.url_for("x", id=1)) == "http://example.com/x/1"


def test_url_for_falls_back_to_the_app() -> None:
    conn = HTTPConnection(make_scope(app=FakeRouter()))
    assert str(conn.url_for("thing", id="a")) == "http://example.com/thing/a"


def test_url_for_without_router_or_app() -> None:
    with pytest.raises(RuntimeError) as raised:
        HTTPConnection(make_scope()).url_for("x")
    assert str(raised.value) == (
        "The `url_for` method can only be used inside a Stellate application or with a router."
    )


# --- Request -----------------------------------------------------------------------------


def test_request_refuses_websocket_scope() -> None:
    with pytest.raises(AssertionError, match="Request needs an http scope"):
        Request(make_scope(type="websocket"))


def test_request_refuses_a_scope_that_is_no_connection_as_a_connection_would() -> None:
    with pytest.raises(AssertionError, match="HTTPConnection needs an http or websocket"):
        Request({"type": "lifespan"})


def test_request_method_and_receive() -> None:
    receive = receive_from([])
    request = Request(make_scope(method="PATCH"), receive)
    assert request.method == "PATCH"
    assert request.receive is receive


@pytest.mark.anyio
async def test_empty_receive_and_send_raise() -> None:
    with pytest.raises(RuntimeError, match="Receive channel"):
        await empty_receive()
    with pytest.raises(RuntimeError, match="Send channel"):
        await empty_send({"type": "x"})
    request = Request(make_scope())
    with pytest.raises(RuntimeError, match="Receive channel"):
        await request.body()


@pytest.mark.anyio
async def test_body_chunked_across_messages() -> None:
    request = Request(make_scope(), receive_from(body_messages(b"ab", b"", b"cd", b"e")))
    assert await request.body() == b"abcde"
    # Cached: receive (which would now fail) is not called again.
    assert await request.body() == b"abcde"


@pytest.mark.anyio
async def test_body_message_without_body_key() -> None:
    request = Request(make_scope(), receive_from([{"type": "http.request"}]))
    assert await request.body() == b""


@pytest.mark.anyio
async def test_stream_skips_unknown_message_types() -> None:
    messages = [{"type": "http.future.extension"}, *body_messages(b"ok")]
    request = Request(make_scope(), receive_from(messages))
    assert await request.body() == b"ok"


@pytest.mark.anyio
async def test_stream_yields_chunks_and_skips_empty_ones() -> None:
    # Then one final b"" once the last message arrived, as in Starlette.
    request = Request(make_scope(), receive_from(body_messages(b"a", b"", b"b", b"")))
    assert [chunk async for chunk in request.stream()] == [b"a", b"b", b""]
    empty = Request(make_scope(), receive_from(body_messages(b"")))
    assert [chunk async for chunk in empty.stream()] == [b""]


@pytest.mark.anyio
async def test_stream_twice_raises() -> None:
    request = Request(make_scope(), receive_from(body_messages(b"a", b"b")))
    assert [chunk async for chunk in request.stream()] == [b"a", b"b", b""]
    with pytest.raises(RuntimeError, match="Stream consumed"):
        [chunk async for chunk in request.stream()]
    with pytest.raises(RuntimeError, match="Stream consumed"):
        await request.body()


@pytest.mark.anyio
async def test_several_streams_share_one_pass() -> None:
    # As Starlette (this test raised "Stream consumed" before): a second stream started
    # mid-way keeps reading from receive; each chunk goes to whichever stream asks next,
    # and every open stream ends with b"" once the body is complete.
    request = Request(make_scope(), receive_from(body_messages(b"a", b"b", b"c")))
    first = request.stream()
    assert await first.__anext__() == b"a"
    second = request.stream()
    assert await second.__anext__() == b"b"
    assert await first.__anext__() == b"c"
    assert await first.__anext__() == b""
    assert await second.__anext__() == b""
    for stream in (first, second):
        with pytest.raises(StopAsyncIteration):
            await stream.__anext__()
    with pytest.raises(RuntimeError, match="Stream consumed"):
        await request.stream().__anext__()


@pytest.mark.anyio
async def test_stream_after_a_partial_read_continues() -> None:
    request = Request(make_scope(), receive_from(body_messages(b"a", b"b")))
    stream = request.stream()
    assert await stream.__anext__() == b"a"
    await stream.aclose()
    assert [chunk async for chunk in request.stream()] == [b"b", b""]


@pytest.mark.anyio
async def test_stream_after_a_disconnect_raises_client_disconnect_again() -> None:
    request = Request(make_scope(), receive_from([{"type": "http.disconnect"}]))
    with pytest.raises(ClientDisconnect):
        await request.stream().__anext__()
    with pytest.raises(ClientDisconnect):  # not "Stream consumed"
        await request.stream().__anext__()


@pytest.mark.anyio
async def test_body_then_stream_yields_cached_body() -> None:
    request = Request(make_scope(), receive_from(body_messages(b"x", b"y")))
    assert await request.body() == b"xy"
    assert [chunk async for chunk in request.stream()] == [b"xy", b""]
    assert [chunk async for chunk in request.stream()] == [b"xy", b""]


@pytest.mark.anyio
async def test_empty_body_then_stream_yields_the_cached_empty_body() -> None:
    request = Request(make_scope(), receive_from(body_messages(b"")))
    assert await request.body() == b""
    assert [chunk async for chunk in request.stream()] == [b"", b""]


@pytest.mark.anyio
async def test_client_disconnect_while_reading() -> None:
    messages = [*body_messages(b"a", b"b")[:1], {"type": "http.disconnect"}]
    request = Request(make_scope(), receive_from(messages))
    with pytest.raises(ClientDisconnect):
        await request.body()
    assert await request.is_disconnected() is True


@pytest.mark.anyio
async def test_is_disconnected_keeps_the_body_message() -> None:
    request = Request(make_scope(), receive_from(body_messages(b"hello")))
    assert await request.is_disconnected() is False
    # The cancelled peek leaves no cancellation pending for the next checkpoint.
    await anyio.lowlevel.checkpoint()
    await anyio.sleep(0.001)
    assert await request.body() == b"hello"


@pytest.mark.anyio
async def test_receive_property_hands_out_a_held_message() -> None:
    raw_receive = receive_from([*body_messages(b"held"), {"type": "http.disconnect"}])
    request = Request(make_scope(), raw_receive)
    assert await request.is_disconnected() is False
    receive = request.receive
    assert receive is not raw_receive
    assert (await receive())["body"] == b"held"
    assert (await receive())["type"] == "http.disconnect"
    assert request.receive is raw_receive


@pytest.mark.anyio
async def test_is_disconnected_sees_disconnect() -> None:
    request = Request(make_scope(), receive_from([{"type": "http.disconnect"}]))
    assert await request.is_disconnected() is True
    # Remembered: receive is not called again.
    assert await request.is_disconnected() is True
    with pytest.raises(ClientDisconnect):
        await request.body()


@pytest.mark.anyio
async def test_a_disconnect_seen_by_is_disconnected_ends_a_stream_under_way() -> None:
    messages: list[Message] = [
        {"type": "http.request", "body": b"a", "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        if not messages:
            raise AssertionError("receive() called again after the disconnect")
        return messages.pop(0)

    request = Request(make_scope(), receive)
    stream = request.stream()
    assert await stream.__anext__() == b"a"
    assert await request.is_disconnected() is True
    with pytest.raises(ClientDisconnect):
        await stream.__anext__()
    with pytest.raises(ClientDisconnect):  # and again on a later call
        await request.stream().__anext__()


@pytest.mark.anyio
async def test_is_disconnected_does_not_block() -> None:
    send_stream, receive_stream = anyio.create_memory_object_stream[Message](1)
    async with send_stream, receive_stream:
        request = Request(make_scope(), receive_stream.receive)
        with anyio.fail_after(5):
            assert await request.is_disconnected() is False
        await send_stream.send({"type": "http.request", "body": b"later"})
        assert await request.body() == b"later"


@pytest.mark.anyio
async def test_json() -> None:
    payload = {"a": [1, 2.5, None, True], "é": "ü"}
    raw = json.dumps(payload).encode()
    request = Request(make_scope(), receive_from(body_messages(raw[:5], raw[5:])))
    assert await request.json() == payload
    assert await request.json() is await request.json()


@pytest.mark.anyio
@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"{'a': 1}", b"\xff\xfe\xfa", b"[" * 100_000, b"nul", b"1 2", b"9" * 5000],
)
async def test_invalid_json_raises_a_value_error(raw: bytes) -> None:
    request = Request(make_scope(), receive_from(body_messages(raw)))
    with pytest.raises(json.JSONDecodeError):
        await request.json()


@pytest.mark.anyio
async def test_close_without_form_is_a_no_op() -> None:
    request = Request(make_scope())
    await request.close()


@pytest.mark.anyio
async def test_close_closes_a_parsed_form() -> None:
    class FakeForm:
        closed = False

        async def close(self) -> None:
            self.closed = True

    request = Request(make_scope())
    form = FakeForm()
    request._form = form  # type: ignore[assignment]
    await request.close()
    assert form.closed


class Recorder:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)


@pytest.mark.anyio
async def test_push_promise_copies_accept_headers() -> None:
    headers = [
        (b"host", b"h"),
        (b"accept", b"text/html"),
        (b"accept", b"image/*"),
        (b"user-agent", b"ua"),
        (b"cookie", b"secret=1"),
    ]
    send = Recorder()
    scope = make_scope(headers=headers, extensions={"http.response.push": {}})
    await Request(scope, receive_from([]), send).send_push_promise("/style.css")
    assert send.messages == [
        {
            "type": "http.response.push",
            "path": "/style.css",
            "headers": [(b"accept", b"text/html"), (b"accept", b"image/*"), (b"user-agent", b"ua")],
        }
    ]


@pytest.mark.anyio
async def test_push_promise_without_extension_is_a_no_op() -> None:
    send = Recorder()
    await Request(make_scope(), receive_from([]), send).send_push_promise("/x")
    await Request(make_scope(extensions={}), receive_from([]), send).send_push_promise("/x")
    assert send.messages == []


@pytest.mark.anyio
async def test_early_hints() -> None:
    send = Recorder()
    scope = make_scope(extensions={"http.response.early_hint": {}})
    request = Request(scope, receive_from([]), send)
    await request.send_early_hints("</a.css>; rel=preload", "</b.js>; rel=preload")
    assert send.messages == [
        {
            "type": "http.response.early_hint",
            "links": [b"</a.css>; rel=preload", b"</b.js>; rel=preload"],
        }
    ]
    with pytest.raises(ValueError, match="CR, LF and NUL"):
        await request.send_early_hints("</a>\r\nSet-Cookie: x=1")
    assert len(send.messages) == 1


@pytest.mark.anyio
async def test_early_hints_without_extension_is_a_no_op() -> None:
    send = Recorder()
    await Request(make_scope(), receive_from([]), send).send_early_hints("</a>")
    assert send.messages == []


def test_request_through_test_client(test_client_factory: Any) -> None:
    from stellate.responses import JSONResponse

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        payload = {
            "method": request.method,
            "url": str(request.url),
            "query": request.query_params.getlist("a"),
            "json": await request.json(),
            "cookies": request.cookies,
            "client": list(request.client) if request.client else None,
        }
        await JSONResponse(payload)(scope, receive, send)

    client = test_client_factory(app)
    response = client.post(
        "/path?a=1&a=2", json={"x": [1, 2]}, headers={"cookie": 'c=3; junk; =; d="4"'}
    )
    data = response.json()
    assert data["method"] == "POST"
    assert data["url"].endswith("/path?a=1&a=2")
    assert data["query"] == ["1", "2"]
    assert data["json"] == {"x": [1, 2]}
    assert data["cookies"] == {"c": "3", "": "junk", "d": "4"}


# --- properties --------------------------------------------------------------------------

_token = st.text(
    alphabet=st.sampled_from("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCXYZ"),
    min_size=1,
    max_size=20,
)


@given(st.text(max_size=200))
def test_cookie_parser_never_raises(header: str) -> None:
    result = cookie_parser(header)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in result.items())


@given(_token, st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=40))
def test_cookie_values_round_trip(name: str, value: str) -> None:
    header = serialize_cookie(name, value)
    assert "\r" not in header
    assert "\n" not in header
    pair = header.split("; Path=")[0]
    assert cookie_parser(pair) == {name: value}
