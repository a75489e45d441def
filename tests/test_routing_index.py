"""Tests of the router's dispatch index: it must give the same answers as a full scan.

The index files routes by their first static path segment; these tests change the table
in every way a list can change and check dispatch follows, and check large tables.
"""

from __future__ import annotations

from typing import Any

import pytest

from stellate._routing_index import RouteList
from stellate.requests import Request
from stellate.responses import PlainTextResponse, Response
from stellate.routing import BaseRoute, Match, Mount, Route, Router, WebSocketRoute
from stellate.types import ASGIApp, Message, Receive, Scope, Send

pytestmark = pytest.mark.anyio


def named(text: str) -> Any:
    async def endpoint(request: Request) -> Response:
        return PlainTextResponse(text)

    return endpoint


async def get(app: ASGIApp, path: str, method: str = "GET") -> tuple[int, bytes]:
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    scope: Scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "scheme": "http",
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    return messages[0]["status"], b"".join(m.get("body", b"") for m in messages[1:])


async def test_append_after_first_request_is_seen() -> None:
    router = Router([Route("/a", named("a"))])
    assert await get(router, "/b") == (404, b"Not Found")
    router.routes.append(Route("/b", named("b")))
    assert await get(router, "/b") == (200, b"b")


async def test_insert_at_front_changes_precedence() -> None:
    router = Router([Route("/x/{v}", named("param"))])
    assert await get(router, "/x/1") == (200, b"param")
    router.routes.insert(0, Route("/x/1", named("static")))
    assert await get(router, "/x/1") == (200, b"static")
    del router.routes[0]
    assert await get(router, "/x/1") == (200, b"param")


async def test_item_assignment_extend_iadd_pop_remove_clear() -> None:
    router = Router([Route("/a", named("a"))])
    assert await get(router, "/a") == (200, b"a")
    router.routes[0] = Route("/a", named("A"))
    assert await get(router, "/a") == (200, b"A")
    router.routes.extend([Route("/b", named("b"))])
    assert await get(router, "/b") == (200, b"b")
    router.routes += [Route("/c", named("c"))]
    assert await get(router, "/c") == (200, b"c")
    router.routes.pop()
    assert (await get(router, "/c"))[0] == 404
    router.routes.remove(router.routes[0])
    assert (await get(router, "/a"))[0] == 404
    router.routes.reverse()
    router.routes.clear()
    assert (await get(router, "/b"))[0] == 404


async def test_assigning_a_new_list_is_seen_and_wrapped() -> None:
    router = Router([Route("/a", named("a"))])
    assert await get(router, "/a") == (200, b"a")
    router.routes = [Route("/z", named("z"))]
    assert isinstance(router.routes, RouteList)
    assert await get(router, "/z") == (200, b"z")
    assert (await get(router, "/a"))[0] == 404
    router.routes.append(Route("/a", named("a2")))
    assert await get(router, "/a") == (200, b"a2")


async def test_mount_routes_are_the_inner_router_list() -> None:
    mount = Mount("/m", routes=[])
    router = Router([mount])
    assert (await get(router, "/m/x"))[0] == 404
    mount.routes.append(Route("/x", named("x")))
    assert await get(router, "/m/x") == (200, b"x")


def test_route_list_is_a_list_counting_mutations() -> None:
    routes: RouteList[int] = RouteList([3, 1, 2])
    assert routes == [3, 1, 2]
    before = routes.version
    routes.sort()
    routes *= 2
    routes.append(9)
    assert routes == [1, 2, 3, 1, 2, 3, 9]
    assert routes.version == before + 3


async def test_thousand_route_table_dispatches_correctly() -> None:
    routes: list[BaseRoute] = []
    for i in range(1000):
        routes.append(Route(f"/r{i}/{{id:int}}", named(f"r{i}")))
        if i == 500:
            routes.append(Route("/{section}/special", named("dynamic")))
    router = Router(routes)
    assert await get(router, "/r0/1") == (200, b"r0")
    assert await get(router, "/r999/5") == (200, b"r999")
    # the dynamic route is declared after r0..r500, before r501..r999
    assert await get(router, "/r3/special") == (200, b"dynamic")
    assert await get(router, "/r700/special") == (200, b"dynamic")
    assert await get(router, "/zz/special") == (200, b"dynamic")
    assert (await get(router, "/r1000/1"))[0] == 404
    assert (await get(router, "/r999/x"))[0] == 404


async def test_routes_overriding_matches_are_asked_for_every_path() -> None:
    class Everywhere(Route):
        def matches(self, scope: Scope) -> tuple[Match, Scope]:
            if scope["path"].endswith(".special"):
                return Match.FULL, {"endpoint": self.endpoint, "path_params": {}}
            return super().matches(scope)

    router = Router([Route("/a", named("a")), Everywhere("/e", named("everywhere"))])
    assert await get(router, "/anything/at/all.special") == (200, b"everywhere")
    assert await get(router, "/e") == (200, b"everywhere")
    assert await get(router, "/a") == (200, b"a")


async def test_duck_typed_and_custom_base_routes() -> None:
    class Teapot:
        def matches(self, scope: Scope) -> tuple[Match, Scope]:
            return (Match.FULL if scope["path"] == "/tea" else Match.NONE), {}

        async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
            await PlainTextResponse("teapot", status_code=418)(scope, receive, send)

        def url_path_for(self, name: str, /, **params: Any) -> Any:
            raise NotImplementedError

    class Partial(BaseRoute):
        def matches(self, scope: Scope) -> tuple[Match, Scope]:
            return (Match.PARTIAL if scope["path"] == "/p" else Match.NONE), {"seen": True}

        async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
            await PlainTextResponse(f"custom partial {scope['seen']}", 405)(scope, receive, send)

    router = Router([Teapot(), Partial(), Route("/p", named("p"), methods=["POST"])])  # type: ignore[list-item]
    assert await get(router, "/tea") == (418, b"teapot")
    # the first partial is a custom route: it answers, as it would in a full scan
    assert await get(router, "/p") == (405, b"custom partial True")


async def test_route_subclass_with_custom_handle_answers_its_own_partial() -> None:
    class Polite(Route):
        async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["method"] not in (self.methods or ()):
                await PlainTextResponse("please POST", 405)(scope, receive, send)
                return
            await super().handle(scope, receive, send)

    router = Router([Polite("/f", named("f"), methods=["POST"])])
    assert await get(router, "/f") == (405, b"please POST")
    assert await get(router, "/f", "POST") == (200, b"f")


async def test_websocket_routes_are_not_http_candidates() -> None:
    router = Router([WebSocketRoute("/w", named("w")), Route("/w", named("http"))])
    assert await get(router, "/w") == (200, b"http")


def test_reversal_index_keeps_declaration_order_and_sees_changes() -> None:
    class Anything(BaseRoute):
        def url_path_for(self, name: str, /, **params: Any) -> Any:
            if name == "magic":
                return "/magic"
            return super().url_path_for(name, **params)

    class Custom(Route):
        def url_path_for(self, name: str, /, **params: Any) -> Any:
            return "/custom" if name == "alias" else super().url_path_for(name, **params)

    router = Router(
        [
            Route("/one/{a}", named("1"), name="x"),
            Route("/two/{b}", named("2"), name="x"),
            Mount("/m", routes=[Route("/leaf", named("leaf"), name="leaf")]),
            Mount("/n", routes=[Route("/k", named("k"), name="k")], name="a:b"),
            Custom("/c", named("c"), name="c"),
        ]
    )
    assert router.url_path_for("x", a="1") == "/one/1"
    assert router.url_path_for("x", b="2") == "/two/2"
    assert router.url_path_for("leaf") == "/m/leaf"
    assert router.url_path_for("a:b:k") == "/n/k"
    assert router.url_path_for("alias") == "/custom"  # overriding url_path_for: any name
    with pytest.raises(NotImplementedError):  # an unknown BaseRoute is asked every name
        Router([Anything()]).url_path_for("other")
    assert Router([Anything()]).url_path_for("magic") == "/magic"
    router.routes.insert(0, Route("/zero/{a}", named("0"), name="x"))
    assert router.url_path_for("x", a="1") == "/zero/1"
    router.routes.append(Route("/late", named("late"), name="late"))
    assert router.url_path_for("late") == "/late"


def test_thousand_route_reversal() -> None:
    router = Router(
        [
            Mount(f"/g{i}", routes=[Route("/{id:int}", named("r"), name="r")], name=f"g{i}")
            for i in range(1000)
        ]
    )
    assert router.url_path_for("g999:r", id=3) == "/g999/3"
    assert router.url_path_for("g0:r", id=1) == "/g0/1"
