"""Tests of stellate.routing: templates, matching, dispatch, reversal and the index.

Dispatch tests drive the router as a raw ASGI app with hand-written receive/send, so they
check the exact status, headers and body sent, and the scope the endpoint saw.
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from stellate._context import context_of
from stellate.convertors import CONVERTOR_TYPES, Convertor, register_url_convertor
from stellate.exceptions import HTTPException
from stellate.middleware import Middleware
from stellate.requests import Request
from stellate.responses import PlainTextResponse, Response
from stellate.routing import (
    BaseRoute,
    Host,
    Match,
    Mount,
    NoMatchFound,
    Route,
    Router,
    WebSocketRoute,
    compile_path,
    get_name,
    replace_params,
    request_response,
    websocket_session,
)
from stellate.types import ASGIApp, Message, Receive, Scope, Send
from stellate.websockets import WebSocket

# --------------------------------------------------------------------------- helpers


@dataclass
class Result:
    status: int
    headers: dict[str, str]
    body: bytes
    messages: list[Message] = field(default_factory=list)


def http_scope(
    path: str,
    method: str = "GET",
    *,
    query: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    root_path: str = "",
    **extra: Any,
) -> Scope:
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 5000),
        "path": path,
        "raw_path": path.encode(),
        "root_path": root_path,
        "query_string": query,
        "headers": [(b"host", b"testserver")] if headers is None else headers,
    }
    scope.update(extra)
    return scope


async def call(app: ASGIApp, scope: Scope) -> Result:
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    await app(scope, receive, send)
    start = messages[0]
    assert start["type"] == "http.response.start"
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in messages[1:])
    return Result(start["status"], headers, body, messages)


async def get(app: ASGIApp, path: str, method: str = "GET", **kwargs: Any) -> Result:
    return await call(app, http_scope(path, method, **kwargs))


async def echo(request: Request) -> Response:
    """Reports what routing put in the scope."""
    params = ",".join(f"{k}={v!r}" for k, v in sorted(request.path_params.items()))
    return PlainTextResponse(
        f"{request.scope['endpoint'].__name__}|{params}|{request.scope['root_path']}"
    )


async def other(request: Request) -> Response:
    return PlainTextResponse("other")


def raw_app(text: str) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = f"{text}|{scope['path']}|{scope['root_path']}|{scope.get('path_params')}"
        await PlainTextResponse(body)(scope, receive, send)

    return app


# --------------------------------------------------------------------------- compile_path


def test_compile_path_builds_regex_format_and_convertors() -> None:
    regex, fmt, convertors = compile_path("/users/{id:int}/files/{rest:path}")
    assert fmt == "/users/{id}/files/{rest}"
    assert set(convertors) == {"id", "rest"}
    assert convertors["id"] is CONVERTOR_TYPES["int"]
    found = regex.match("/users/42/files/a/b.txt")
    assert found is not None
    assert found.groupdict() == {"id": "42", "rest": "a/b.txt"}
    assert regex.match("/users/x/files/a") is None
    assert regex.match("/users/42/files/a/b.txt/extra") is not None  # path eats slashes


def test_compile_path_defaults_to_str_and_escapes_literals() -> None:
    regex, fmt, convertors = compile_path("/a.b/{name}")
    assert fmt == "/a.b/{name}"
    assert convertors["name"] is CONVERTOR_TYPES["str"]
    assert regex.match("/a.b/x") is not None
    assert regex.match("/aXb/x") is None  # '.' is literal
    assert regex.match("/a.b/x/y") is None  # str stops at '/'


def test_compile_host_pattern_ignores_port_and_case() -> None:
    regex, fmt, convertors = compile_path("{sub}.Example.org:8000")
    assert fmt == "{sub}.Example.org:8000"
    assert list(convertors) == ["sub"]
    found = regex.match("api.example.ORG")
    assert found is not None
    assert found.group("sub") == "api"
    assert regex.match("api.example.org:8000") is None  # ports are stripped before matching


# Construction errors: Starlette's exception types and exact messages (pinned the old
# stellate wording before; changed to follow Starlette).


def test_unknown_convertor_message() -> None:
    with pytest.raises(AssertionError) as raised:
        compile_path("/x/{a:nope}")
    assert str(raised.value) == "Unknown path convertor 'nope'"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("/{uid}/{uid}", "Duplicated param name uid at path /{uid}/{uid}"),
        ("/a/{id}/b/{id:int}", "Duplicated param name id at path /a/{id}/b/{id:int}"),
        ("/{b}/{a}/{b}/{a}", "Duplicated param names a, b at path /{b}/{a}/{b}/{a}"),
        ("{a}.{a}.org", "Duplicated param name a at path {a}.{a}.org"),
    ],
)
def test_duplicated_parameter_message(template: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        compile_path(template)
    assert str(raised.value) == message


def test_route_construction_errors_are_starlettes() -> None:
    with pytest.raises(AssertionError, match=r"^Unknown path convertor 'bogus'$"):
        Route("/l/{x:bogus}", echo, name="listing")
    with pytest.raises(ValueError, match=r"^Duplicated param name a at path /c/\{a\}/\{a\}$"):
        WebSocketRoute("/c/{a}/{a}", echo, name="chat")
    with pytest.raises(AssertionError, match=r"^Unknown path convertor 'bogus'$"):
        Mount("/f/{n:bogus}", app=raw_app("x"), name="files")
    with pytest.raises(ValueError, match=r"^Duplicated param name a at path \{a\}\.\{a\}\.org$"):
        Host("{a}.{a}.org", app=raw_app("x"), name="tenant")


def test_paths_must_start_with_slash() -> None:
    for build in (
        lambda: Route("users", echo),
        lambda: WebSocketRoute("ws", echo),
        lambda: Mount("api", app=raw_app("x")),
    ):
        with pytest.raises(AssertionError) as raised:
            build()
        assert str(raised.value) == "Routed paths must start with '/'"
    with pytest.raises(AssertionError) as raised:
        Host("/example.org", app=raw_app("x"))
    assert str(raised.value) == "Host must not start with '/'"


def test_replace_params_fills_slots_and_returns_leftovers() -> None:
    convertors = {"id": CONVERTOR_TYPES["int"], "name": CONVERTOR_TYPES["str"]}
    given = {"id": 7, "name": "ann", "extra": "x"}
    path, remaining = replace_params("/u/{id}/{name}", convertors, given)  # type: ignore[arg-type]
    assert path == "/u/7/ann"
    assert remaining == {"extra": "x"}
    assert given == {"id": 7, "name": "ann", "extra": "x"}  # not mutated


# --------------------------------------------------------------------------- names, eq, repr


def sync_endpoint(request: Request) -> Response:
    return PlainTextResponse(threading.current_thread().name)


class EndpointClass:
    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope

    def method(self, request: Request) -> Response:  # pragma: no cover - only named
        raise AssertionError


class CallableApp:
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse(f"callable {scope['method']}")(scope, receive, send)


def test_get_name() -> None:
    assert get_name(echo) == "echo"
    assert get_name(EndpointClass) == "EndpointClass"
    assert get_name(CallableApp()) == "CallableApp"
    assert get_name(functools.partial(echo)) == "echo"
    assert get_name(EndpointClass.method) == "method"


def test_route_methods_and_names() -> None:
    route = Route("/", echo, methods=["get", "post"])
    assert route.methods == {"GET", "HEAD", "POST"}
    assert route.name == "echo"
    assert Route("/", echo).methods == {"GET", "HEAD"}
    assert Route("/", echo, methods=["POST"]).methods == {"POST"}
    assert Route("/", CallableApp()).methods is None  # ASGI apps take any method
    assert Route("/", echo, name="home").name == "home"


def test_route_equality_and_repr() -> None:
    assert Route("/a", echo) == Route("/a", echo)
    assert Route("/a", echo) != Route("/a", echo, methods=["POST"])
    assert Route("/a", echo) != Route("/b", echo)
    assert Route("/a", echo) != WebSocketRoute("/a", echo)
    assert repr(Route("/a", echo, methods=["POST"])) == (
        "Route(path='/a', name='echo', methods=['POST'])"
    )
    assert WebSocketRoute("/w", echo) == WebSocketRoute("/w", echo)
    assert WebSocketRoute("/w", echo) != WebSocketRoute("/w", other)
    assert repr(WebSocketRoute("/w", echo)) == "WebSocketRoute(path='/w', name='echo')"
    app = raw_app("x")
    assert Mount("/m", app=app) == Mount("/m/", app=app)
    assert Mount("/m", app=app) != Mount("/n", app=app)
    assert repr(Mount("/m", app=app, name="m")).startswith("Mount(path='/m', name='m', app=")
    assert Host("a.org", app=app) == Host("a.org", app=app)
    assert Host("a.org", app=app) != Host("b.org", app=app)
    assert repr(Host("a.org", app=app)).startswith("Host(host='a.org', name='', app=")
    assert Router([Route("/a", echo)]) == Router([Route("/a", echo)])
    assert Router([Route("/a", echo)]) != Router([Route("/b", echo)])
    assert repr(Router([])) == "Router(routes=[])"


def test_mount_needs_app_or_routes() -> None:
    with pytest.raises(AssertionError) as raised:
        Mount("/m")
    assert str(raised.value) == "Either 'app=...', or 'routes=' must be specified"
    # Both are accepted, as in Starlette, and app wins.
    both = Mount("/m", app=raw_app("x"), routes=[Route("/a", echo)])
    assert both.routes == []
    assert Mount("/m", app=raw_app("x")).routes == []
    inner = [Route("/a", echo)]
    assert Mount("/m", routes=inner).routes == inner


# --------------------------------------------------------------------------- matches


def test_route_matches_full_partial_none() -> None:
    route = Route("/items/{id:int}", echo, methods=["POST"])
    match, child = route.matches(http_scope("/items/3", "POST"))
    assert match is Match.FULL
    assert child == {"endpoint": echo, "path_params": {"id": 3}, "route": route}
    assert route.matches(http_scope("/items/3", "GET"))[0] is Match.PARTIAL
    assert route.matches(http_scope("/items/x", "POST")) == (Match.NONE, {})
    assert route.matches({"type": "websocket", "path": "/items/3"}) == (Match.NONE, {})


def test_matching_merges_outer_path_params() -> None:
    route = Route("/items/{id:int}", echo)
    scope = http_scope("/items/3", path_params={"tenant": "acme", "id": 1})
    match, child = route.matches(scope)
    assert match is Match.FULL
    assert child["path_params"] == {"tenant": "acme", "id": 3}
    assert scope["path_params"] == {"tenant": "acme", "id": 1}  # parent's dict untouched


def test_convertor_refusing_a_value_means_no_match() -> None:
    class Even(Convertor[int]):
        regex = "[0-9]+"

        def convert(self, value: str) -> int:
            if int(value) % 2:
                raise ValueError("odd")
            return int(value)

        def to_string(self, value: int) -> str:
            return str(value)

    register_url_convertor("test_even", Even())
    route = Route("/n/{n:test_even}", echo)
    assert route.matches(http_scope("/n/4"))[0] is Match.FULL
    assert route.matches(http_scope("/n/5"))[0] is Match.NONE
    mount = Mount("/m/{n:test_even}", app=raw_app("x"))
    assert mount.matches(http_scope("/m/5/x"))[0] is Match.NONE
    host = Host("h{n:test_even}.org", app=raw_app("x"))
    assert host.matches(http_scope("/", headers=[(b"host", b"h3.org")]))[0] is Match.NONE
    assert host.matches(http_scope("/", headers=[(b"host", b"h2.org")]))[0] is Match.FULL


def test_route_path_honours_root_path() -> None:
    route = Route("/b", echo)
    assert route.matches(http_scope("/a/b", root_path="/a"))[0] is Match.FULL
    # root_path that is not a segment prefix of path is ignored
    assert route.matches(http_scope("/ab", root_path="/a"))[0] is Match.NONE
    assert route.matches(http_scope("/b", root_path="/zzz"))[0] is Match.FULL
    assert route.matches(http_scope("/a", root_path="/a"))[0] is Match.NONE


# --------------------------------------------------------------------------- dispatch


@pytest.mark.anyio
async def test_dispatch_path_params_and_scope_keys() -> None:
    seen: dict[str, Any] = {}

    async def item(request: Request) -> Response:
        seen.update(request.scope)
        return PlainTextResponse(repr(request.path_params))

    route = Route("/items/{id:int}", item)
    router = Router([Route("/", echo), route])
    result = await get(router, "/items/12")
    assert (result.status, result.body) == (200, b"{'id': 12}")
    assert seen["route"] is route
    assert seen["endpoint"] is item
    assert seen["router"] is router


@pytest.mark.anyio
async def test_sync_endpoints_run_in_a_worker_thread() -> None:
    router = Router([Route("/", sync_endpoint)])
    result = await get(router, "/")
    assert result.status == 200
    assert result.body.decode() != threading.current_thread().name


@pytest.mark.anyio
async def test_endpoint_returning_none_is_a_clear_error() -> None:
    async def forgot(request: Request) -> Response:
        return None  # type: ignore[return-value]

    with pytest.raises(TypeError, match="endpoint 'forgot' returned None, not a Response"):
        await get(Router([Route("/", forgot)]), "/")


@pytest.mark.anyio
async def test_endpoint_exceptions_reach_app_handlers() -> None:
    async def boom(request: Request) -> Response:
        raise KeyError("k")

    async def on_key_error(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(f"handled {request.url.path}", status_code=409)

    scope = http_scope("/")
    context_of(scope).exception_handlers = ({KeyError: on_key_error}, {})
    result = await call(Router([Route("/", boom)]), scope)
    assert (result.status, result.body) == (409, b"handled /")


@pytest.mark.anyio
async def test_not_found_outside_and_inside_an_app() -> None:
    router = Router([Route("/a", echo)])
    result = await get(router, "/b")
    assert (result.status, result.body) == (404, b"Not Found")
    assert result.headers["content-type"] == "text/plain; charset=utf-8"
    with pytest.raises(HTTPException) as info:
        await call(router, http_scope("/b", app=object()))
    assert info.value.status_code == 404


@pytest.mark.anyio
async def test_custom_default_app() -> None:
    router = Router([Route("/a", echo)], default=raw_app("fallback"))
    assert (await get(router, "/zzz")).body == b"fallback|/zzz||None"


@pytest.mark.anyio
async def test_405_allow_lists_every_partial_route() -> None:
    router = Router(
        [
            Route("/things/{id}", echo, methods=["POST"]),
            Route("/things/{id:int}", echo, methods=["PUT", "DELETE"]),
            Route("/things/{id}", echo, methods=["PATCH"]),
            Route("/other", echo, methods=["GET"]),
        ]
    )
    result = await get(router, "/things/3", "GET")
    assert result.status == 405
    assert result.body == b"Method Not Allowed"
    assert result.headers["allow"] == "DELETE, PATCH, POST, PUT"
    # a non-int id only partially matches the str routes
    assert (await get(router, "/things/x", "GET")).headers["allow"] == "PATCH, POST"
    assert (await get(router, "/things/3", "PUT")).status == 200


@pytest.mark.anyio
async def test_405_inside_an_app_is_an_http_exception_with_allow() -> None:
    router = Router([Route("/r", echo, methods=["POST"])])
    with pytest.raises(HTTPException) as info:
        await call(router, http_scope("/r", "GET", app=object()))
    assert info.value.status_code == 405
    assert info.value.headers == {"Allow": "POST"}


@pytest.mark.anyio
async def test_full_match_later_in_table_beats_earlier_partial() -> None:
    router = Router([Route("/x", echo, methods=["POST"]), Route("/x", other, methods=["GET"])])
    result = await get(router, "/x", "GET")
    assert (result.status, result.body) == (200, b"other")


@pytest.mark.anyio
async def test_head_is_implied_by_get_and_sends_no_body() -> None:
    router = Router([Route("/", echo)])
    result = await get(router, "/", "HEAD")
    assert result.status == 200
    assert result.body == b""
    assert int(result.headers["content-length"]) > 0
    assert (await get(router, "/", "POST")).headers["allow"] == "GET, HEAD"


@pytest.mark.anyio
async def test_asgi_class_endpoint_takes_any_method() -> None:
    router = Router([Route("/c", CallableApp())])
    assert (await get(router, "/c", "DELETE")).body == b"callable DELETE"


@pytest.mark.anyio
async def test_declaration_order_wins_parameter_before_static() -> None:
    router = Router([Route("/users/{name}", echo), Route("/users/me", other)])
    assert (await get(router, "/users/me")).body == b"echo|name='me'|"
    router = Router([Route("/users/me", other), Route("/users/{name}", echo)])
    assert (await get(router, "/users/me")).body == b"other"
    assert (await get(router, "/users/ann")).body == b"echo|name='ann'|"


@pytest.mark.anyio
async def test_dynamic_first_segment_interleaves_with_static_by_declaration() -> None:
    router = Router(
        [
            Route("/static/a", other, name="first"),
            Route("/{anything}/a", echo),
            Route("/static/a", other, name="never"),
            Route("/static/b", other),
        ]
    )
    assert (await get(router, "/static/a")).body == b"other"
    assert (await get(router, "/zzz/a")).body == b"echo|anything='zzz'|"
    assert (await get(router, "/static/b")).body == b"other"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("routes", "path", "query", "location"),
    [
        (["/items/"], "/items", b"", "http://testserver/items/"),
        (["/items"], "/items/", b"a=1&b=2", "http://testserver/items?a=1&b=2"),
        (["/items/{id:int}"], "/items/3/", b"q=%20x", "http://testserver/items/3?q=%20x"),
    ],
)
async def test_redirect_slashes(routes: list[str], path: str, query: bytes, location: str) -> None:
    router = Router([Route(p, echo) for p in routes])
    result = await get(router, path, query=query)
    assert result.status == 307
    assert result.headers["location"] == location


@pytest.mark.anyio
async def test_redirect_slashes_inside_mount_keeps_the_prefix() -> None:
    router = Router([Mount("/api", routes=[Route("/items/", echo)])])
    result = await get(router, "/api/items", query=b"x=1")
    assert result.status == 307
    assert result.headers["location"] == "http://testserver/api/items/?x=1"
    # a mount's own prefix without the slash redirects to the mount
    result = await get(Router([Mount("/static", app=raw_app("s"))]), "/static")
    assert (result.status, result.headers["location"]) == (307, "http://testserver/static/")


@pytest.mark.anyio
async def test_no_redirect_when_disabled_for_root_or_partial_only() -> None:
    assert (await get(Router([Route("/a/", echo)], redirect_slashes=False), "/a")).status == 404
    # "/" never redirects, even when a route would match "" or "//"
    assert (await get(Router([Route("/x", echo)]), "/")).status == 404
    # toggling gives only a partial match (wrong method): no pointless redirect
    assert (await get(Router([Route("/p", echo, methods=["POST"])]), "/p/", "GET")).status == 404
    # a path of only slashes has no non-empty toggle
    assert (await get(Router([Route("/", echo)]), "//")).status == 404
    # websocket scopes are never redirected
    ws = await ws_call(Router([WebSocketRoute("/w/", ws_echo)]), "/w")
    assert ws == [{"type": "websocket.close", "code": 1000, "reason": ""}]


@pytest.mark.anyio
async def test_route_middleware_wraps_only_that_route() -> None:
    class Tag:
        def __init__(self, app: ASGIApp, tag: str) -> None:
            self.app, self.tag = app, tag

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            async def tagged(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message["headers"], (b"x-tag", self.tag.encode())]
                await send(message)

            await self.app(scope, receive, tagged)

    router = Router(
        [
            Route("/a", echo, middleware=[Middleware(Tag, "outer"), Middleware(Tag, tag="in")]),
            Route("/b", echo),
            Mount("/m", routes=[Route("/c", echo)], middleware=[Middleware(Tag, "mount")]),
        ],
        middleware=[Middleware(Tag, "router")],
    )
    result = await get(router, "/a")
    tags = [v.decode() for k, v in result.messages[0]["headers"] if k == b"x-tag"]
    assert tags == ["in", "outer", "router"]  # innermost adds first; first listed is outermost
    assert "x-tag" in (await get(router, "/b")).headers
    result = await get(router, "/m/c")
    tags = [v.decode() for k, v in result.messages[0]["headers"] if k == b"x-tag"]
    assert tags == ["mount", "router"]


@pytest.mark.anyio
async def test_unknown_scope_type_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="scope type 'webtransport'"):
        await Router()({"type": "webtransport"}, _no_receive, _no_send)


async def _no_receive() -> Message:  # pragma: no cover - never called
    raise AssertionError


async def _no_send(message: Message) -> None:  # pragma: no cover - never called
    raise AssertionError


@pytest.mark.anyio
async def test_route_called_directly_as_an_app() -> None:
    route = Route("/only", echo)
    assert (await get(route, "/only")).status == 200
    result = await get(route, "/else")
    assert (result.status, result.body) == (404, b"Not Found")
    result = await get(Route("/only", echo, methods=["POST"]), "/only")
    assert (result.status, result.headers["allow"]) == (405, "POST")
    assert await ws_call(WebSocketRoute("/w", ws_echo), "/nope") == [
        {"type": "websocket.close", "code": 1000, "reason": ""}
    ]
    await route({"type": "lifespan"}, _no_receive, _no_send)  # ignored, nothing sent


# --------------------------------------------------------------------------- mounts and hosts


@pytest.mark.anyio
async def test_mounts_in_mounts_extend_root_path_and_merge_params() -> None:
    router = Router(
        [
            Mount(
                "/orgs/{org}",
                routes=[
                    Mount("/repos/{repo}", routes=[Route("/issues/{n:int}", echo)]),
                    Mount("/raw", app=raw_app("raw")),
                ],
            )
        ]
    )
    result = await get(router, "/orgs/acme/repos/web/issues/7")
    assert result.body == b"echo|n=7,org='acme',repo='web'|/orgs/acme/repos/web"
    result = await get(router, "/orgs/acme/raw/a/b")
    assert result.body == b"raw|/orgs/acme/raw/a/b|/orgs/acme/raw|{'org': 'acme'}"
    # the server's own root_path is kept in front
    result = await get(router, "/prefix/orgs/acme/raw/z", root_path="/prefix")
    assert result.body == b"raw|/prefix/orgs/acme/raw/z|/prefix/orgs/acme/raw|{'org': 'acme'}"


@pytest.mark.anyio
async def test_mount_records_app_root_path_once() -> None:
    seen: dict[str, Any] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.update(scope)
        await PlainTextResponse("")(scope, receive, send)

    router = Router([Mount("/a", routes=[Mount("/b", app=app)])])
    await get(router, "/base/a/b/c", root_path="/base")
    assert seen["app_root_path"] == "/base"
    assert seen["root_path"] == "/base/a/b"


@pytest.mark.anyio
async def test_empty_mount_path_catches_everything_after_earlier_routes() -> None:
    router = Router([Route("/a", other), Mount("", app=raw_app("rest"))])
    assert (await get(router, "/a")).body == b"other"
    assert (await get(router, "/b/c")).body == b"rest|/b/c||{}"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (b"api.example.org", 200),
        (b"API.Example.ORG", 200),
        (b"api.example.org:8443", 200),
        (b"other.org", 404),
        (b"api.example.org.evil", 404),
    ],
)
async def test_host_routing_ignores_case_and_port(host: bytes, expected: int) -> None:
    router = Router([Host("api.example.org", app=Router([Route("/", echo)]))])
    result = await get(router, "/", headers=[(b"accept", b"*/*"), (b"host", host)])
    assert result.status == expected


@pytest.mark.anyio
async def test_host_params_and_fallbacks() -> None:
    router = Router(
        [
            Host("{tenant}.example.org", app=Router([Route("/", echo)])),
            Host("[::1]", app=raw_app("ipv6")),
            Host("testserver", app=raw_app("by-server")),
        ]
    )
    result = await get(router, "/", headers=[(b"host", b"Acme.example.org:80")])
    assert result.body == b"echo|tenant='acme'|"
    assert (await get(router, "/", headers=[(b"host", b"[::1]:8000")])).body.startswith(b"ipv6")
    # No Host header (HTTP/1.0): no Host route matches; the server address does not
    # stand in (Starlette), the client named no host.
    assert (await get(router, "/", headers=[])).status == 404
    assert Host("a.org", app=raw_app("x")).matches({"type": "lifespan"})[0] is Match.NONE


def test_host_routes_property() -> None:
    inner = Router([Route("/", echo)])
    assert Host("a.org", app=inner).routes == inner.routes
    assert Host("a.org", app=raw_app("x")).routes == []


# --------------------------------------------------------------------------- websockets


async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(f"{websocket.path_params}|{websocket.scope['root_path']}")
    await websocket.close()


async def ws_call(
    asgi: ASGIApp, path: str, handlers: Any = None, **extra: Any
) -> list[Message]:
    scope: Scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "server": ("testserver", 80),
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "subprotocols": [],
        **extra,
    }
    if handlers is not None:  # as an application's ExceptionMiddleware publishes them
        context_of(scope).exception_handlers = handlers
    incoming: Iterator[Message] = iter(
        [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1000}]
    )
    sent: list[Message] = []

    async def receive() -> Message:
        return next(incoming)

    async def send(message: Message) -> None:
        sent.append(message)

    await asgi(scope, receive, send)
    return sent


@pytest.mark.anyio
async def test_websocket_dispatch_and_not_found() -> None:
    router = Router(
        [
            Route("/room/{name}", echo),  # http only: never matches a websocket
            Mount("/m", routes=[WebSocketRoute("/room/{name}", ws_echo)]),
            WebSocketRoute("/room/{name}", ws_echo),
        ]
    )
    sent = await ws_call(router, "/room/lobby")
    assert sent[0]["type"] == "websocket.accept"
    assert sent[1] == {"type": "websocket.send", "text": "{'name': 'lobby'}|"}
    sent = await ws_call(router, "/m/room/a")
    assert sent[1]["text"] == "{'name': 'a'}|/m"
    assert await ws_call(router, "/nowhere") == [
        {"type": "websocket.close", "code": 1000, "reason": ""}
    ]
    # inside an app too, a websocket 404 is a close, not an HTTPException
    assert (await ws_call(router, "/nowhere", app=object()))[0]["type"] == "websocket.close"


@pytest.mark.anyio
async def test_websocket_route_with_asgi_class_and_session_handlers() -> None:
    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.close", "code": 4000, "reason": scope["path"]})

    async def failing(websocket: WebSocket) -> None:
        raise LookupError

    async def handler(websocket: WebSocket, exc: Exception) -> None:
        await websocket.close(code=4001)

    class Raw:
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await raw(scope, receive, send)

    router = Router([WebSocketRoute("/raw", Raw()), WebSocketRoute("/fail", failing)])
    assert (await ws_call(router, "/raw"))[0] == {
        "type": "websocket.close",
        "code": 4000,
        "reason": "/raw",
    }
    sent = await ws_call(router, "/fail", handlers=({LookupError: handler}, {}))
    assert sent[0]["type"] == "websocket.close"
    assert sent[0]["code"] == 4001
    assert isinstance(websocket_session(failing), object)


# --------------------------------------------------------------------------- url_path_for


class HexConvertor(Convertor[int]):
    regex = "[0-9a-f]+"

    def convert(self, value: str) -> int:
        return int(value, 16)

    def to_string(self, value: int) -> str:
        return format(value, "x")


register_url_convertor("test_hex", HexConvertor())

UID = uuid.UUID("12345678-1234-5678-1234-567812345678")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("template", "value", "text"),
    [
        ("/s/{v}", "ann", "/s/ann"),
        ("/p/{v:path}", "a/b/c.txt", "/p/a/b/c.txt"),
        ("/i/{v:int}", 42, "/i/42"),
        ("/f/{v:float}", 2.5, "/f/2.5"),
        ("/u/{v:uuid}", UID, f"/u/{UID}"),
        ("/h/{v:test_hex}", 255, "/h/ff"),
    ],
)
async def test_reversal_round_trips_through_every_convertor(
    template: str, value: Any, text: str
) -> None:
    seen: dict[str, Any] = {}

    async def endpoint(request: Request) -> Response:
        seen.update(request.path_params)
        return PlainTextResponse("")

    router = Router([Route(template, endpoint, name="target")])
    url = router.url_path_for("target", v=value)
    assert url == text
    assert url.protocol == "http"
    assert (await get(router, str(url))).status == 200
    assert seen == {"v": value}  # parsed back to the very value we reversed


def test_reversal_through_mounts_and_hosts() -> None:
    router = Router(
        [
            Route("/", echo, name="home"),
            WebSocketRoute("/ws", ws_echo, name="ws"),
            Mount(
                "/users/{user}",
                name="users",
                routes=[
                    Route("/posts/{n:int}", echo, name="post"),
                    Mount("/files", app=raw_app("f"), name="files"),
                ],
            ),
            Mount("/static", app=raw_app("s"), name="static"),
            Mount("/plain", routes=[Route("/leaf", echo, name="leaf")]),
            Host("{tenant}.example.org", app=Router([Route("/d", echo, name="dash")]), name="t"),
            Host("api.org", app=raw_app("api"), name="api"),
        ]
    )
    assert router.url_path_for("home") == "/"
    assert router.url_path_for("ws").protocol == "websocket"
    assert router.url_path_for("users:post", user="ann", n=3) == "/users/ann/posts/3"
    assert router.url_path_for("users:files", user="ann", path="/a/b.txt") == (
        "/users/ann/files/a/b.txt"
    )
    assert router.url_path_for("static", path="/css/site.css") == "/static/css/site.css"
    assert router.url_path_for("leaf") == "/plain/leaf"  # unnamed mounts are transparent
    dash = router.url_path_for("t:dash", tenant="acme")
    assert (dash, dash.host, dash.protocol) == ("/d", "acme.example.org", "http")
    api = router.url_path_for("api", path="/v1")
    assert (api, api.host) == ("/v1", "api.org")
    unnamed = Host("{t}.org", app=Router([Route("/x", echo, name="x")]))
    assert unnamed.url_path_for("x", t="a") == "/x"


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("home", {"extra": 1}),  # extra
        ("item", {}),  # missing
        ("item", {"id": 1, "x": 2}),  # extra
        ("nope", {}),  # unknown name
        ("users:nope", {"user": "a"}),  # unknown child
        ("static", {"path": "/a", "x": 1}),
        ("static", {}),
        ("t", {"tenant": "a", "path": "/x", "more": 1}),
    ],
)
def test_url_path_for_failures_name_route_and_params(name: str, params: dict[str, Any]) -> None:
    router = Router(
        [
            Route("/", echo, name="home"),
            Route("/item/{id:int}", echo, name="item"),
            Mount("/users/{user}", routes=[Route("/p/{n}", echo, name="post")], name="users"),
            Mount("/static", app=raw_app("s"), name="static"),
            Host("{tenant}.org", app=Router([Route("/d", echo, name="dash")]), name="t"),
        ]
    )
    with pytest.raises(NoMatchFound) as info:
        router.url_path_for(name, **params)
    params_text = ", ".join(params)  # in the order given, as Starlette writes them
    assert str(info.value) == f'No route exists for name "{name}" and params "{params_text}".'
    assert info.value.name == name


def test_base_route_is_abstract() -> None:
    route = BaseRoute()
    with pytest.raises(NotImplementedError):
        route.matches(http_scope("/"))
    with pytest.raises(NotImplementedError):
        route.url_path_for("x")


@pytest.mark.anyio
async def test_base_route_handle_is_abstract() -> None:
    with pytest.raises(NotImplementedError):
        await BaseRoute().handle(http_scope("/"), _no_receive, _no_send)


# --------------------------------------------------------------------------- router helpers


@pytest.mark.anyio
async def test_add_route_websocket_route_mount_and_host() -> None:
    router = Router()
    router.add_route("/a", echo, methods=["POST"], name="a", include_in_schema=False)
    router.add_websocket_route("/w", ws_echo, name="w")
    router.mount("/m", raw_app("m"), name="m")
    router.host("h.org", raw_app("h"), name="h")
    assert [type(r).__name__ for r in router.routes] == ["Route", "WebSocketRoute", "Mount", "Host"]
    route = router.routes[0]
    assert isinstance(route, Route)
    assert not route.include_in_schema
    assert (await get(router, "/a", "POST")).status == 200
    assert (await get(router, "/m/x")).body.startswith(b"m|")
    assert (await get(router, "/", headers=[(b"host", b"h.org")])).body.startswith(b"h|")
    assert (await ws_call(router, "/w"))[0]["type"] == "websocket.accept"


def test_max_body_size_is_stored() -> None:
    assert Route("/", echo, max_body_size=10).max_body_size == 10
    assert Mount("/", app=raw_app("x"), max_body_size=11).max_body_size == 11
    assert Router(max_body_size=12).max_body_size == 12


def test_request_response_returns_an_asgi_app() -> None:
    assert callable(request_response(echo))


def test_routes_ignore_scope_types_they_do_not_serve() -> None:
    ws_route = WebSocketRoute("/w/{n:int}", ws_echo)
    assert ws_route.matches(http_scope("/w/1")) == (Match.NONE, {})
    match, child = ws_route.matches({"type": "websocket", "path": "/w/1"})
    assert (match, child["path_params"], child["route"]) == (Match.FULL, {"n": 1}, ws_route)
    mount = Mount("/m", app=raw_app("x"))
    assert mount.matches({"type": "lifespan"}) == (Match.NONE, {})
    match, child = mount.matches({"type": "websocket", "path": "/m/a", "root_path": ""})
    assert (match, child["root_path"]) == (Match.FULL, "/m")


def test_unnamed_host_without_the_child_route_raises() -> None:
    host = Host("{t}.org", app=Router([Route("/x", echo, name="x")]))
    with pytest.raises(NoMatchFound):
        host.url_path_for("y", t="a")


@pytest.mark.anyio
async def test_allow_ignores_custom_partial_routes_after_a_route() -> None:
    class AlwaysPartial(BaseRoute):
        def matches(self, scope: Scope) -> tuple[Match, Scope]:
            return Match.PARTIAL, {}

    router = Router([Route("/r", echo, methods=["PUT"]), AlwaysPartial()])
    result = await get(router, "/r")
    assert (result.status, result.headers["allow"]) == (405, "PUT")


@pytest.mark.anyio
async def test_redirect_without_raw_path_in_scope() -> None:
    router = Router([Route("/a/", echo), Route("/b", echo)])
    scope = http_scope("/a")
    del scope["raw_path"]
    assert (await call(router, scope)).headers["location"] == "http://testserver/a/"
    scope = http_scope("/b/")
    del scope["raw_path"]
    assert (await call(router, scope)).headers["location"] == "http://testserver/b"


# --------------------------------------------------------------------------- hostile Host


@pytest.mark.anyio
@pytest.mark.parametrize(
    "host",
    [
        b"shop.example.com:abc",
        b"me@shop.example.com",
        b"attacker.test#.example.com",
        b"a b.example.com",
        b"shop.example.com:",
        b"attacker.test/.example.com",
        b"[1::2::3]",
        b"[:::]",
    ],
)
async def test_host_route_never_matches_a_malformed_host(host: bytes) -> None:
    router = Router(
        [
            Host("shop.example.com", app=raw_app("exact")),
            Host("{sub}.example.com", app=Router([Route("/", echo)])),
            Host("{sub:path}", app=raw_app("any")),
        ]
    )
    result = await get(router, "/", headers=[(b"host", host)])
    assert result.status == 404


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("host", "body"),
    [
        (b"shop.example.com:8080", b"echo|sub='shop'|"),
        (b"shop.example.com:000000080", b"echo|sub='shop'|"),  # any digits: the port is ignored
        (b"Shop.Example.COM", b"echo|sub='shop'|"),
    ],
)
async def test_host_route_matches_valid_host(host: bytes, body: bytes) -> None:
    router = Router([Host("{sub}.example.com", app=Router([Route("/", echo)]))])
    result = await get(router, "/", headers=[(b"host", host)])
    assert (result.status, result.body) == (200, body)


# --------------------------------------------------------------------------- URL building


def test_url_path_for_is_never_scheme_relative() -> None:
    router = Router(
        [
            Route("/{rest:path}", echo, name="any"),
            Route("/s/{word}", echo, name="word"),
            Mount("/static", app=raw_app("s"), name="static"),
            Mount("", app=raw_app("root"), name="root"),
        ]
    )
    assert router.url_path_for("any", rest="/attacker.test/x") == "/%2Fattacker.test/x"
    assert router.url_path_for("any", rest="\\attacker.test/x") == "/%5Cattacker.test/x"
    assert router.url_path_for("word", word="a\\b") == "/s/a%5Cb"
    assert router.url_path_for("root", path="//attacker.test") == "/attacker.test"
    assert router.url_path_for("root", path="\\\\attacker.test") == "/%5C%5Cattacker.test"
    assert Route("/{p:path}", echo, name="p").url_path_for("p", p="/evil") == "/%2Fevil"
    assert WebSocketRoute("/{p:path}", echo, name="p").url_path_for("p", p="/e") == "/%2Fe"


def test_url_path_for_fills_each_slot_once() -> None:
    route = Route("/{team}/{slug}", echo, name="page")
    assert route.url_path_for("page", team="{slug}", slug="7") == "/{slug}/7"
    assert route.url_path_for("page", slug="{team}", team="x") == "/x/{team}"
    host = Host("{a}.{b}.org", app=Router([Route("/", echo, name="r")]), name="h")
    assert host.url_path_for("h:r", a="{b}", b="z").host == "{b}.z.org"


def test_reversing_through_a_parameterised_mount_keeps_missing_placeholders() -> None:
    members = Route("/members", echo, name="members")
    named = Router([Mount("/{org}", routes=[members], name="o")])
    assert named.url_path_for("o:members") == "/{org}/members"
    assert named.url_path_for("o:members", org="acme") == "/acme/members"
    unnamed = Router([Mount("/{org}", routes=[members])])
    assert unnamed.url_path_for("members") == "/{org}/members"
    static = Router([Mount("/{org}/files", app=raw_app("s"), name="files")])
    assert static.url_path_for("files", path="/a.txt") == "/{org}/files/a.txt"


def test_reversing_through_a_parameterised_host_keeps_missing_placeholders() -> None:
    router = Router(
        [Host("{sub}.example.com", app=Router([Route("/d", echo, name="dash")]), name="h")]
    )
    url = router.url_path_for("h:dash")
    assert (url, url.host) == ("/d", "{sub}.example.com")
    url = router.url_path_for("h", path="/x")
    assert (url, url.host) == ("/x", "{sub}.example.com")


def test_url_for_convertor_refusals_are_assertion_errors() -> None:
    router = Router(
        [
            Route("/s/{word}", echo, name="word"),
            Route("/i/{n:int}", echo, name="int"),
            Route("/f/{x:float}", echo, name="float"),
        ]
    )
    cases = [
        ("word", {"word": "a/b"}, "May not contain path separators"),
        ("word", {"word": ""}, "Must not be empty"),
        ("int", {"n": -1}, "Negative integers are not supported"),
        ("float", {"x": float("nan")}, "NaN values are not supported"),
        ("float", {"x": float("inf")}, "Infinite values are not supported"),
        ("float", {"x": -1.5}, "Negative floats are not supported"),
    ]
    for name, params, message in cases:
        with pytest.raises(AssertionError) as raised:
            router.url_path_for(name, **params)
        assert str(raised.value) == message


@pytest.mark.anyio
@pytest.mark.parametrize(
    "text",
    [
        "3f2a9c4e1b7d4e8fa0c2d5e6f7a8b9c0",
        "3F2A9C4E1B7D4E8FA0C2D5E6F7A8B9C0",
        "3f2a9c4e-1b7d4e8f-a0c2-d5e6f7a8b9c0",
    ],
)
async def test_uuid_route_accepts_hyphenless_uuids(text: str) -> None:
    router = Router([Route("/u/{id:uuid}", echo), Route("/u/{other}", other)])
    result = await get(router, f"/u/{text}")
    assert result.body == f"echo|id={uuid.UUID(text)!r}|".encode()
