"""The router's dispatch index never changes which route answers.

For random tables of routes and mounts (static segments, every built-in convertor,
``path`` parameters, trailing slashes, websocket routes) and random paths, the route the
router dispatches to, and the 404/405 outcome, are those of a plain scan of the table in
declaration order through each route's public ``matches``.
"""

from __future__ import annotations

from typing import Any

import anyio
from hypothesis import given
from hypothesis import strategies as st

from stellate.requests import Request
from stellate.responses import PlainTextResponse
from stellate.routing import BaseRoute, Match, Mount, Route, Router, WebSocketRoute
from stellate.types import Message, Scope

_SEGMENTS = ["a", "b", "users", "42", "1.5", "x y", ""]
_PARAMS = ["{p}", "{p:int}", "{p:float}", "{p:path}", "{p:uuid}"]
_PATH_PIECES = [*_SEGMENTS, "7", "3.25", "0b5bd2c5-3b6f-4b9d-9b1a-1d4b9a7c8e10", "a/b"]


def _endpoint(label: str) -> Any:
    async def endpoint(request: Request) -> PlainTextResponse:
        return PlainTextResponse(label)

    return endpoint


_template = st.lists(
    st.one_of(st.sampled_from(_SEGMENTS[:-1]), st.sampled_from(_PARAMS)), min_size=0, max_size=3
).map(lambda parts: "/" + "/".join(parts))


@st.composite
def tables(draw: st.DrawFn) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for index in range(draw(st.integers(1, 8))):
        template = draw(_template)
        if draw(st.booleans()) and template != "/":
            template += "/"
        pieces = template.split("{p")
        template = pieces[0] + "".join(
            f"{{p{index}_{n}" + piece for n, piece in enumerate(pieces[1:])
        )
        kind = draw(st.sampled_from(["route", "route", "post", "websocket", "mount"]))
        label = f"{kind} {index} {template}"
        if kind == "mount" and template != "/":
            inner = [Route("/", _endpoint(label + " /")), Route("/{q:path}", _endpoint(label))]
            routes.append(Mount(template.rstrip("/"), routes=inner))
        elif kind == "websocket":
            routes.append(WebSocketRoute(template, _endpoint(label)))
        else:
            methods = ["POST"] if kind == "post" else None
            routes.append(Route(template, _endpoint(label), methods=methods))
    return routes


_paths = st.lists(st.sampled_from(_PATH_PIECES), max_size=4).map(lambda p: "/" + "/".join(p))


def _scope(path: str) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


def _scan(routes: list[BaseRoute], path: str) -> tuple[str, Any]:
    partial = None
    for route in routes:
        match, _ = route.matches(_scope(path))
        if match is Match.FULL:
            return "full", route
        if match is Match.PARTIAL and partial is None:
            partial = route
    return ("partial", partial) if partial is not None else ("none", None)


def _recording(routes: list[BaseRoute], chosen: list[BaseRoute]) -> None:
    """Make each route note, when the router hands it a request, that it was chosen."""
    for route in routes:

        async def handle(scope: Scope, receive: Any, send: Any, route: Any = route) -> None:
            chosen.append(route)
            await type(route).handle(route, scope, receive, send)

        route.handle = handle  # type: ignore[method-assign]


async def _dispatch(router: Router, path: str) -> tuple[int, Any]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    chosen: list[BaseRoute] = []
    _recording(router.routes, chosen)
    await router(_scope(path), receive, send)
    return sent[0]["status"], chosen[0] if chosen else None


@given(tables(), st.lists(_paths, min_size=1, max_size=6))
def test_the_index_dispatches_as_a_scan_in_declaration_order(
    routes: list[BaseRoute], paths: list[str]
) -> None:
    router = Router(routes, redirect_slashes=False)
    for path in paths:
        kind, expected = _scan(routes, path)
        status, route = anyio.run(_dispatch, router, path)
        if kind == "full":
            assert route is expected, path
        elif kind == "partial":
            assert status == 405, path
            assert route is None or route is expected, path  # 405 is answered by the router
        else:
            assert status == 404, path
