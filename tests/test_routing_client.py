"""Routing seen from a client: Stellate apps and bare routers through TestClient.

These run on both backends through ``test_client_factory`` and check what users see:
rendered 404/405 pages, redirects that the client follows, lifespan state in requests,
``url_for`` through mounts, WebSockets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from stellate.applications import Stellate
from stellate.exceptions import HTTPException
from stellate.requests import Request
from stellate.responses import JSONResponse, PlainTextResponse, Response
from stellate.routing import Host, Mount, Route, Router, WebSocketRoute
from stellate.websockets import WebSocket

TestClientFactory = Callable[..., Any]


async def where(request: Request) -> Response:
    return JSONResponse(
        {
            "path": request.url.path,
            "params": {k: str(v) for k, v in request.path_params.items()},
            "root_path": request.scope["root_path"],
        }
    )


async def links(request: Request) -> Response:
    return PlainTextResponse(
        " ".join(
            [
                str(request.url_for("api:item", id=5)),
                str(request.url_for("api:v2:item", id=6)),
                str(request.url_for("static", path="/a.css")),
            ]
        )
    )


async def chat(websocket: WebSocket) -> None:
    await websocket.accept()
    room = websocket.path_params["room"]
    await websocket.send_text(f"{room}:{await websocket.receive_text()}")
    await websocket.close()


def make_app(**kwargs: Any) -> Stellate:
    api = [
        Route("/items/{id:int}", where, name="item"),
        Route("/items/{id:int}", where, methods=["PUT"], name="put_item"),
        Mount("/v2", routes=[Route("/items/{id:int}", where, name="item")], name="v2"),
    ]
    return Stellate(
        routes=[
            Route("/", links),
            Route("/slash/", where),
            Mount("/api", routes=api, name="api"),
            Mount("/static", app=PlainTextResponse("static!"), name="static"),
            WebSocketRoute("/chat/{room}", chat),
        ],
        **kwargs,
    )


def test_dispatch_through_an_application(test_client_factory: TestClientFactory) -> None:
    client = test_client_factory(make_app())
    response = client.get("/api/v2/items/9")
    assert response.status_code == 200
    assert response.json() == {
        "path": "/api/v2/items/9",
        "params": {"id": "9"},
        "root_path": "/api/v2",
    }
    assert client.get("/").text == (
        "http://testserver/api/items/5 http://testserver/api/v2/items/6 "
        "http://testserver/static/a.css"
    )


def test_not_found_and_method_not_allowed_are_rendered(
    test_client_factory: TestClientFactory,
) -> None:
    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return PlainTextResponse(f"custom {exc.status_code}", exc.status_code, exc.headers)

    client = test_client_factory(make_app(exception_handlers={HTTPException: on_http}))
    response = client.get("/nowhere")
    assert (response.status_code, response.text) == (404, "custom 404")
    response = client.delete("/api/items/3")
    assert (response.status_code, response.text) == (405, "custom 405")
    assert response.headers["allow"] == "GET, HEAD, PUT"


def test_default_not_found_page_in_an_application(test_client_factory: TestClientFactory) -> None:
    response = test_client_factory(make_app()).get("/nowhere")
    assert response.status_code == 404
    assert response.text == "Not Found"


def test_redirect_slashes_followed_by_the_client(test_client_factory: TestClientFactory) -> None:
    client = test_client_factory(make_app())
    response = client.get("/slash?x=1")
    assert response.status_code == 200
    assert str(response.url) == "http://testserver/slash/?x=1"
    response = client.get("/api/items/4/", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "http://testserver/api/items/4"


def test_bare_router_with_client_root_path(test_client_factory: TestClientFactory) -> None:
    router = Router([Mount("/sub", routes=[Route("/x", where)])])
    client = test_client_factory(router, root_path="/base")
    response = client.get("/base/sub/x")
    assert response.json() == {"path": "/base/sub/x", "params": {}, "root_path": "/base/sub"}


def test_host_routing_with_client(test_client_factory: TestClientFactory) -> None:
    app = Stellate(routes=[Host("{tenant}.example.org", app=Router([Route("/", where)]))])
    client = test_client_factory(app, base_url="http://ACME.example.org:8080")
    assert client.get("/").json()["params"] == {"tenant": "acme"}
    assert client.get("http://example.com/").status_code == 404


def test_websocket_route(test_client_factory: TestClientFactory) -> None:
    client = test_client_factory(make_app())
    with client.websocket_connect("/chat/lobby") as session:
        session.send_text("hi")
        assert session.receive_text() == "lobby:hi"


def test_lifespan_state_reaches_requests(test_client_factory: TestClientFactory) -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Stellate) -> AsyncIterator[dict[str, Any]]:
        events.append("startup")
        yield {"greeting": "hello"}
        events.append("shutdown")

    async def greet(request: Request) -> Response:
        return PlainTextResponse(request.state.greeting)

    app = Stellate(routes=[Route("/", greet)], lifespan=lifespan)
    with test_client_factory(app) as client:
        assert events == ["startup"]
        assert client.get("/").text == "hello"
    assert events == ["startup", "shutdown"]


def test_routes_added_after_startup_are_served(test_client_factory: TestClientFactory) -> None:
    app = make_app()
    client = test_client_factory(app)
    assert client.get("/late").status_code == 404
    app.router.add_route("/late", where)
    assert client.get("/late").status_code == 200


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_head_through_client(test_client_factory: TestClientFactory, method: str) -> None:
    response = test_client_factory(make_app()).request(method, "/api/items/1")
    assert response.status_code == 200
    assert (response.content == b"") == (method == "HEAD")


@pytest.mark.parametrize("path", ["/users/%0A", "/users%0A", "/users/7%0A"])
def test_a_trailing_encoded_newline_never_matches_a_route(
    test_client_factory: Callable[..., Any], path: str
) -> None:
    async def users(request: Request) -> PlainTextResponse:
        return PlainTextResponse("users")

    async def user(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"user {request.path_params['user_id']}")

    app = Stellate(
        routes=[Route("/users", users), Route("/users/{user_id:int}", user)],
    )
    with test_client_factory(app) as client:
        assert client.get("/users").text == "users"
        assert client.get(path, follow_redirects=False).status_code == 404
