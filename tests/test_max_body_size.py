"""``max_body_size`` on Stellate, Router, Mount and Route: enforced, and the innermost wins.

Driven through TestClient: ``content=bytes`` sends a Content-Length, ``content=<generator>``
sends a chunked body with no declared length, so both enforcement paths are exercised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from stellate.applications import Stellate
from stellate.exceptions import HTTPException
from stellate.middleware import Middleware
from stellate.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY, RequestBodyLimitMiddleware
from stellate.requests import Request
from stellate.responses import JSONResponse, PlainTextResponse, Response
from stellate.routing import Mount, Route, Router, WebSocketRoute
from stellate.websockets import WebSocket

TOO_LARGE = "Content Too Large"


async def echo(request: Request) -> Response:
    body = await request.body()
    return PlainTextResponse(f"{len(body)} {request.scope.get(MAX_BODY_SIZE_SCOPE_KEY)}")


async def ignore_body(request: Request) -> Response:
    return PlainTextResponse("not read")


def chunked(total: int, size: int = 4) -> Iterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


def test_app_limit_declared_and_streamed(test_client_factory: Callable[..., Any]) -> None:
    app = Stellate(routes=[Route("/", echo, methods=["POST"])], max_body_size=10)
    with test_client_factory(app) as client:
        assert client.post("/", content=b"x" * 10).text == "10 10"
        response = client.post("/", content=b"x" * 11)
        assert (response.status_code, response.text) == (413, TOO_LARGE)
        assert client.post("/", content=chunked(10)).text == "10 10"
        response = client.post("/", content=chunked(40))
        assert (response.status_code, response.text) == (413, TOO_LARGE)


def test_route_limit_wins_over_the_app_limit(test_client_factory: Callable[..., Any]) -> None:
    app = Stellate(
        routes=[
            Route("/big", echo, methods=["POST"], max_body_size=100),
            Route("/small", echo, methods=["POST"], max_body_size=5),
            Route("/default", echo, methods=["POST"]),
        ],
        max_body_size=20,
    )
    with test_client_factory(app) as client:
        assert client.post("/big", content=b"x" * 50).text == "50 100"
        assert client.post("/big", content=chunked(50)).text == "50 100"
        assert client.post("/small", content=b"x" * 6).status_code == 413
        assert client.post("/small", content=chunked(6)).text == TOO_LARGE
        assert client.post("/default", content=b"x" * 20).text == "20 20"
        assert client.post("/default", content=b"x" * 21).status_code == 413


def test_mount_limit_and_route_inside_it(test_client_factory: Callable[..., Any]) -> None:
    app = Stellate(
        routes=[
            Mount(
                "/api",
                routes=[
                    Route("/echo", echo, methods=["POST"]),
                    Route("/upload", echo, methods=["POST"], max_body_size=1000),
                ],
                max_body_size=8,
            )
        ]
    )
    with test_client_factory(app) as client:
        assert client.post("/api/echo", content=b"x" * 8).text == "8 8"
        assert client.post("/api/echo", content=b"x" * 9).status_code == 413
        assert client.post("/api/upload", content=b"x" * 900).text == "900 1000"


def test_standalone_router_answers_413_itself(test_client_factory: Callable[..., Any]) -> None:
    router = Router(routes=[Route("/", echo, methods=["POST"])], max_body_size=3)
    with test_client_factory(router) as client:
        assert client.post("/", content=b"abc").text == "3 3"
        response = client.post("/", content=chunked(8, 2))
        assert (response.status_code, response.text) == (413, TOO_LARGE)
        assert response.headers["content-type"].startswith("text/plain")


def test_route_limit_without_an_app(test_client_factory: Callable[..., Any]) -> None:
    route = Route("/", echo, methods=["POST"], max_body_size=2)
    with test_client_factory(route) as client:
        assert client.post("/", content=b"ab").text == "2 2"
        assert client.post("/", content=b"abc").status_code == 413


def test_middleware_limit_is_outside_the_route_limit(
    test_client_factory: Callable[..., Any],
) -> None:
    app = Stellate(
        routes=[
            Route("/", echo, methods=["POST"]),
            Route("/wide", echo, methods=["POST"], max_body_size=64),
        ],
        middleware=[Middleware(RequestBodyLimitMiddleware, max_body_size=4)],
    )
    with test_client_factory(app) as client:
        assert client.post("/", content=b"x" * 4).text == "4 4"
        assert client.post("/", content=b"x" * 5).status_code == 413
        assert client.post("/wide", content=b"x" * 60).text == "60 64"


def test_limit_set_after_construction_applies(test_client_factory: Callable[..., Any]) -> None:
    route = Route("/", echo, methods=["POST"])
    app = Stellate(routes=[route])
    with test_client_factory(app) as client:
        assert client.post("/", content=b"x" * 10).text == "10 None"
        route.max_body_size = 3
        assert client.post("/", content=b"x" * 10).status_code == 413


def test_unread_body_declared_over_the_limit_is_refused(
    test_client_factory: Callable[..., Any],
) -> None:
    # As in Starlette: a declared length over the limit is refused when the endpoint
    # starts its response, even though it never read the body (it used to answer 200).
    app = Stellate(routes=[Route("/", ignore_body, methods=["POST"])], max_body_size=1)
    with test_client_factory(app) as client:
        response = client.post("/", content=b"x" * 100)
        assert (response.status_code, response.text) == (413, TOO_LARGE)
        assert response.headers["content-length"] == "17"
        assert response.headers["content-type"] == "text/plain; charset=utf-8"


def test_unread_streamed_body_is_not_refused(test_client_factory: Callable[..., Any]) -> None:
    # Without a declared length nothing is known until the body is read.
    app = Stellate(routes=[Route("/", ignore_body, methods=["POST"])], max_body_size=1)
    with test_client_factory(app) as client:
        assert client.post("/", content=chunked(100)).text == "not read"


def test_refusal_replaces_an_exception_handlers_response(
    test_client_factory: Callable[..., Any],
) -> None:
    async def refuse_early(request: Request) -> Response:
        raise HTTPException(403, "not you")

    app = Stellate(routes=[Route("/", refuse_early, methods=["POST"])], max_body_size=4)
    with test_client_factory(app) as client:
        response = client.post("/", content=b"x" * 5)
        assert (response.status_code, response.text) == (413, TOO_LARGE)
        assert client.post("/", content=b"x" * 4).status_code == 403


def test_a_handlers_own_413_is_kept(test_client_factory: Callable[..., Any]) -> None:
    # The app was told (413 raised from receive): its handler's answer goes out as it is.
    async def as_json(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    app = Stellate(
        routes=[Route("/", echo, methods=["POST"])],
        max_body_size=4,
        exception_handlers={413: as_json},
    )
    with test_client_factory(app) as client:
        response = client.post("/", content=b"x" * 5)
        assert (response.status_code, response.json()) == (413, {"detail": "Content Too Large"})


def test_handler_sees_the_413(test_client_factory: Callable[..., Any]) -> None:
    async def careful(request: Request) -> Response:
        try:
            await request.body()
        except HTTPException as exc:
            return PlainTextResponse(f"caught {exc.status_code}", status_code=exc.status_code)
        return PlainTextResponse("fine")

    app = Stellate(routes=[Route("/", careful, methods=["POST"])], max_body_size=2)
    with test_client_factory(app) as client:
        assert client.post("/", content=b"ab").text == "fine"
        response = client.post("/", content=chunked(9, 3))
        assert (response.status_code, response.text) == (413, "caught 413")


def test_413_goes_through_the_apps_status_handler(test_client_factory: Callable[..., Any]) -> None:
    async def on_413(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("too big, sorry", status_code=413)

    app = Stellate(
        routes=[Route("/", echo, methods=["POST"])],
        exception_handlers={413: on_413},
        max_body_size=1,
    )
    with test_client_factory(app) as client:
        response = client.post("/", content=b"xy")
    assert (response.status_code, response.text) == (413, "too big, sorry")


def test_form_upload_over_the_limit(test_client_factory: Callable[..., Any]) -> None:
    async def form(request: Request) -> Response:
        async with request.form() as data:
            return PlainTextResponse(str(len(data)))

    app = Stellate(routes=[Route("/", form, methods=["POST"], max_body_size=2000)])
    with test_client_factory(app) as client:
        assert client.post("/", files={"f": ("f.bin", b"x" * 1000)}).text == "1"
        response = client.post("/", files={"f": ("f.bin", b"x" * 5000)})
    assert (response.status_code, response.text) == (413, TOO_LARGE)


def test_websockets_are_not_limited(test_client_factory: Callable[..., Any]) -> None:
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(str(MAX_BODY_SIZE_SCOPE_KEY in websocket.scope))
        await websocket.close()

    app = Stellate(
        routes=[Mount("/m", routes=[WebSocketRoute("/ws", ws)], max_body_size=1)],
        max_body_size=1,
    )
    with test_client_factory(app) as client, client.websocket_connect("/m/ws") as session:
        assert session.receive_text() == "False"
