"""Stellate: routing delegation, the middleware stack, exception handlers, debug, lifespan."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest

from stellate.applications import Stellate
from stellate.exceptions import HTTPException, StellateDeprecationWarning, WebSocketException
from stellate.middleware import Middleware
from stellate.requests import Request
from stellate.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from stellate.routing import Host, Mount, Route, WebSocketRoute
from stellate.types import ASGIApp, Message, Receive, Scope, Send
from stellate.websockets import WebSocket, WebSocketDisconnect

Client = Callable[..., Any]


async def hello(request: Request) -> Response:
    return PlainTextResponse("hello")


async def echo_id(request: Request) -> Response:
    return PlainTextResponse(f"user {request.path_params['id']}")


class Tag:
    """Pure ASGI middleware that records the order it sees requests in."""

    def __init__(self, app: ASGIApp, name: str, log: list[str]) -> None:
        self.app = app
        self.name = name
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.log.append(self.name)
        await self.app(scope, receive, send)


class StatusRecorder:
    """Pure ASGI middleware that records the status of the responses passing through it."""

    def __init__(self, app: ASGIApp, seen: list[int]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.seen.append(message["status"])
            await send(message)

        await self.app(scope, receive, recording_send)


# --- routing delegation --------------------------------------------------------------------


def test_routes_and_url_path_for(test_client_factory: Client) -> None:
    app = Stellate(routes=[Route("/users/{id:int}", echo_id, name="user")])
    assert app.routes is app.router.routes
    assert app.url_path_for("user", id=42) == "/users/42"
    client = test_client_factory(app)
    assert client.get("/users/42").text == "user 42"
    assert client.get("/users/x").status_code == 404


def test_add_route_with_methods_and_name(test_client_factory: Client) -> None:
    app = Stellate()
    app.add_route("/submit", hello, methods=["POST"], name="submit", include_in_schema=False)
    assert app.url_path_for("submit") == "/submit"
    client = test_client_factory(app)
    assert client.post("/submit").text == "hello"
    response = client.get("/submit")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.text == "Method Not Allowed"


def test_add_websocket_route(test_client_factory: Client) -> None:
    async def ws_echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("got " + await websocket.receive_text())
        await websocket.close()

    app = Stellate()
    app.add_websocket_route("/ws", ws_echo, name="ws")
    assert app.url_path_for("ws") == "/ws"
    with test_client_factory(app).websocket_connect("/ws") as session:
        session.send_text("ping")
        assert session.receive_text() == "got ping"


def test_mount_another_application(test_client_factory: Client) -> None:
    async def where(request: Request) -> Response:
        return JSONResponse({"root_path": request.scope["root_path"], "app": request.app is sub})

    sub = Stellate(routes=[Route("/page", where, name="page")])
    app = Stellate()
    app.mount("/sub", sub, name="sub")
    assert app.url_path_for("sub:page") == "/sub/page"
    assert isinstance(app.routes[0], Mount)
    response = test_client_factory(app).get("/sub/page")
    assert response.json() == {"root_path": "/sub", "app": True}


def test_host_routing(test_client_factory: Client) -> None:
    api = Stellate(routes=[Route("/", hello, name="index")])
    app = Stellate()
    app.host("api.example.org", api, name="api")
    assert isinstance(app.routes[-1], Host)
    client = test_client_factory(app)
    assert client.get("http://api.example.org/").text == "hello"
    assert client.get("http://www.example.org/").status_code == 404


def test_scope_app_is_the_application(test_client_factory: Client) -> None:
    seen: list[Any] = []

    async def endpoint(request: Request) -> Response:
        seen.append(request.scope["app"])
        return PlainTextResponse("ok")

    app = Stellate(routes=[Route("/", endpoint)])
    test_client_factory(app).get("/")
    assert seen == [app]


def test_state_is_a_fresh_state_per_application() -> None:
    first, second = Stellate(), Stellate()
    first.state.db = "db"
    assert first.state.db == "db"
    assert not hasattr(second.state, "db")


def test_max_body_size_is_stored_and_given_to_the_router() -> None:
    app = Stellate(max_body_size=1024)
    assert app.max_body_size == 1024
    assert app.router.max_body_size == 1024


# --- the middleware stack ------------------------------------------------------------------


def test_middleware_runs_in_declaration_order_added_ones_outermost(
    test_client_factory: Client,
) -> None:
    log: list[str] = []
    app = Stellate(
        routes=[Route("/", hello)],
        middleware=[
            Middleware(Tag, name="first", log=log),
            Middleware(Tag, name="second", log=log),
        ],
    )
    app.add_middleware(Tag, name="added", log=log)
    response = test_client_factory(app).get("/")
    assert response.text == "hello"
    assert log == ["added", "first", "second"]


def test_stack_layers_are_error_middleware_user_middleware_exception_middleware() -> None:
    from stellate.middleware.errors import ServerErrorMiddleware
    from stellate.middleware.exceptions import ExceptionMiddleware

    log: list[str] = []
    app = Stellate(middleware=[Middleware(Tag, name="user", log=log)])
    stack = app.build_middleware_stack()
    assert isinstance(stack, ServerErrorMiddleware)
    assert isinstance(stack.app, Tag)
    assert isinstance(stack.app.app, ExceptionMiddleware)
    assert stack.app.app.app is app.router


def test_stack_is_built_once(test_client_factory: Client) -> None:
    builds: list[int] = []

    class Counting(Stellate):
        def build_middleware_stack(self) -> ASGIApp:
            builds.append(1)
            return super().build_middleware_stack()

    app = Counting(routes=[Route("/", hello)])
    with test_client_factory(app) as client:
        client.get("/")
        client.get("/")
    assert len(builds) == 1


def test_add_middleware_after_a_request_fails(test_client_factory: Client) -> None:
    app = Stellate(routes=[Route("/", hello)])
    test_client_factory(app).get("/")
    with pytest.raises(
        RuntimeError, match=r"^Cannot add middleware after an application has started$"
    ):
        app.add_middleware(Tag, name="late", log=[])


def test_add_middleware_after_lifespan_startup_fails(test_client_factory: Client) -> None:
    app = Stellate()
    with test_client_factory(app), pytest.raises(RuntimeError, match="Cannot add middleware"):
        app.add_middleware(Tag, name="late", log=[])


def test_add_exception_handler_after_start_fails(test_client_factory: Client) -> None:
    app = Stellate(routes=[Route("/", hello)])
    test_client_factory(app).get("/")
    with pytest.raises(RuntimeError, match="Cannot add exception handlers"):
        app.add_exception_handler(ValueError, lambda request, exc: PlainTextResponse(""))


def test_bad_declarations_fail_at_construction() -> None:
    with pytest.raises(TypeError, match="Middleware"):
        Stellate(middleware=[Tag])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="status code"):
        Stellate(exception_handlers={"404": lambda request, exc: None})
    app = Stellate()
    with pytest.raises(TypeError, match="status code"):
        app.add_exception_handler("500", lambda request, exc: None)  # type: ignore[arg-type]


def test_middleware_declaration_iterates_and_prints() -> None:
    declaration = Middleware(Tag, "x", log=[])
    cls, args, kwargs = declaration
    assert cls is Tag
    assert args == ("x",)
    assert kwargs == {"log": []}
    assert repr(declaration) == "Middleware(Tag, 'x', log=[])"

    class CallableFactory:
        def __call__(self, app: ASGIApp) -> ASGIApp:  # pragma: no cover - never built
            return app

        def __repr__(self) -> str:
            return "<factory>"

    assert repr(Middleware(CallableFactory())) == "Middleware(<factory>)"


# --- exception handlers --------------------------------------------------------------------


class Base(Exception):
    pass


class Child(Base):
    pass


class Teapot(HTTPException):
    def __init__(self) -> None:
        super().__init__(418, "short and stout")


def raiser(exc: Exception) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        raise exc

    return endpoint


def tagged(text: str) -> Callable[[Request, Exception], Any]:
    async def handler(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 400
        return PlainTextResponse(f"{text} {request.url.path}", status_code=status)

    return handler


def test_not_found_and_method_not_allowed_render_through_handlers(
    test_client_factory: Client,
) -> None:
    app = Stellate(
        routes=[Route("/only-get", hello)],
        exception_handlers={404: tagged("missing"), 405: tagged("wrong method")},
    )
    client = test_client_factory(app)
    response = client.get("/nowhere")
    assert (response.status_code, response.text) == (404, "missing /nowhere")
    response = client.post("/only-get")
    assert (response.status_code, response.text) == (405, "wrong method /only-get")


def test_default_404_and_405_are_plain_text(test_client_factory: Client) -> None:
    client = test_client_factory(Stellate(routes=[Route("/only-get", hello)]))
    response = client.get("/nowhere")
    assert (response.status_code, response.text) == (404, "Not Found")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    response = client.delete("/only-get")
    assert response.status_code == 405
    assert "GET" in response.headers["allow"]


def test_status_handler_beats_class_handler_for_http_exceptions(
    test_client_factory: Client,
) -> None:
    app = Stellate(
        routes=[Route("/tea", raiser(Teapot()))],
        exception_handlers={Teapot: tagged("by class"), 418: tagged("by status")},
    )
    assert test_client_factory(app).get("/tea").text == "by status /tea"


def test_http_exception_subclass_uses_its_class_handler(test_client_factory: Client) -> None:
    app = Stellate(
        routes=[Route("/tea", raiser(Teapot())), Route("/plain", raiser(HTTPException(418)))],
        exception_handlers={Teapot: tagged("teapot")},
    )
    client = test_client_factory(app)
    assert client.get("/tea").text == "teapot /tea"
    response = client.get("/plain")
    assert (response.status_code, response.text) == (418, "I'm a Teapot")


def test_most_specific_class_handler_wins(test_client_factory: Client) -> None:
    app = Stellate(
        routes=[Route("/child", raiser(Child())), Route("/base", raiser(Base()))],
        exception_handlers={Base: tagged("base"), Child: tagged("child")},
    )
    client = test_client_factory(app)
    assert client.get("/child").text == "child /child"
    assert client.get("/base").text == "base /base"


def test_add_exception_handler_sync_handler(test_client_factory: Client) -> None:
    def handler(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(f"sync {exc}", status_code=409)

    app = Stellate(routes=[Route("/", raiser(Child("conflict")))])
    app.add_exception_handler(Base, handler)
    response = test_client_factory(app).get("/")
    assert (response.status_code, response.text) == (409, "sync conflict")


def test_route_errors_are_handled_inside_the_route(test_client_factory: Client) -> None:
    # Route middleware sees the handler's response: the exception never reaches it.
    seen: list[int] = []
    app = Stellate(
        routes=[
            Route("/", raiser(Child()), middleware=[Middleware(StatusRecorder, seen=seen)]),
        ],
        exception_handlers={Base: tagged("handled")},
    )
    response = test_client_factory(app).get("/")
    assert response.status_code == 400
    assert seen == [400]


def test_middleware_errors_are_handled_by_the_application(test_client_factory: Client) -> None:
    class Guard:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                raise HTTPException(401, headers={"WWW-Authenticate": "Basic"})
            await self.app(scope, receive, send)  # pragma: no cover

    app = Stellate(routes=[Mount("/", routes=[Route("/", hello)], middleware=[Middleware(Guard)])])
    response = test_client_factory(app).get("/")
    assert response.status_code == 401
    assert response.text == "Unauthorized"
    assert response.headers["www-authenticate"] == "Basic"


def test_mounted_application_uses_its_own_handlers(test_client_factory: Client) -> None:
    inner = Stellate(
        routes=[Route("/boom", raiser(Child()))],
        exception_handlers={Base: tagged("inner")},
    )
    app = Stellate(
        routes=[Route("/boom", raiser(Child())), Mount("/inner", inner)],
        exception_handlers={Base: tagged("outer")},
    )
    client = test_client_factory(app)
    assert client.get("/boom").text == "outer /boom"
    assert client.get("/inner/boom").text == "inner /inner/boom"


@pytest.mark.parametrize("key", [500, Exception])
def test_custom_server_error_handler(test_client_factory: Client, key: Any) -> None:
    async def handler(request: Request, exc: Exception) -> Response:
        return JSONResponse({"detail": "custom", "path": request.url.path}, status_code=500)

    app = Stellate(
        routes=[Route("/", raiser(ValueError("bug")))], exception_handlers={key: handler}
    )
    client = test_client_factory(app, raise_server_exceptions=False)
    response = client.get("/")
    assert response.status_code == 500
    assert response.json() == {"detail": "custom", "path": "/"}
    # The error is still raised for the server (here, the test client) to report.
    with pytest.raises(ValueError, match="bug"):
        test_client_factory(app).get("/")


def test_production_500_hides_the_exception_text(test_client_factory: Client) -> None:
    app = Stellate(routes=[Route("/", raiser(ValueError("api key sk-123")))])
    response = test_client_factory(app, raise_server_exceptions=False).get(
        "/", headers={"Accept": "text/html"}
    )
    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    assert "sk-123" not in response.text


def test_debug_page_html_for_browsers_text_otherwise(test_client_factory: Client) -> None:
    app = Stellate(debug=True, routes=[Route("/", raiser(ValueError("<b>bad</b> input")))])
    client = test_client_factory(app, raise_server_exceptions=False)
    html = client.get("/", headers={"Accept": "text/html"})
    assert html.status_code == 500
    assert html.headers["content-type"] == "text/html; charset=utf-8"
    assert "&lt;b&gt;bad&lt;/b&gt; input" in html.text
    assert "<b>bad</b>" not in html.text
    text = client.get("/", headers={"Accept": "application/json"})
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert "ValueError: <b>bad</b> input" in text.text
    assert "Traceback (most recent call last)" in text.text


def test_debug_setter_reaches_the_built_stack(test_client_factory: Client) -> None:
    app = Stellate(routes=[Route("/", raiser(ValueError("visible?")))])
    assert app.debug is False
    client = test_client_factory(app, raise_server_exceptions=False)
    assert client.get("/").text == "Internal Server Error"
    app.debug = True
    assert app.debug is True
    assert "ValueError: visible?" in client.get("/").text
    app.debug = False
    assert client.get("/").text == "Internal Server Error"


def test_debug_set_before_first_request(test_client_factory: Client) -> None:
    app = Stellate(routes=[Route("/", raiser(ValueError("early")))])
    app.debug = True
    assert (
        "ValueError: early" in test_client_factory(app, raise_server_exceptions=False).get("/").text
    )


def test_error_after_response_started_is_not_replaced(test_client_factory: Client) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"first chunk;"
        raise ValueError("mid-stream")

    async def endpoint(request: Request) -> Response:
        return StreamingResponse(chunks(), media_type="text/plain")

    app = Stellate(
        debug=True,
        routes=[Route("/", endpoint)],
        exception_handlers={ValueError: tagged("never sent")},
    )
    with pytest.raises(RuntimeError, match="already started") as info:
        test_client_factory(app).get("/")
    assert isinstance(info.value.__cause__, ValueError)
    response = test_client_factory(app, raise_server_exceptions=False).get("/")
    assert response.status_code == 200
    assert response.text.startswith("first chunk;")
    assert "never sent" not in response.text


def test_websocket_exception_closes_with_its_code(test_client_factory: Client) -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        raise WebSocketException(4404, "no such room")

    app = Stellate(routes=[WebSocketRoute("/ws", endpoint)])
    with (
        test_client_factory(app).websocket_connect("/ws") as session,
        pytest.raises(WebSocketDisconnect) as info,
    ):
        session.receive_text()
    assert info.value.code == 4404
    assert info.value.reason == "no such room"


def test_websocket_handler_from_the_application(test_client_factory: Client) -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        raise Child()

    async def handler(websocket: WebSocket, exc: Exception) -> None:
        await websocket.close(code=4000, reason=type(exc).__name__)

    app = Stellate(routes=[WebSocketRoute("/ws", endpoint)], exception_handlers={Base: handler})
    with (
        test_client_factory(app).websocket_connect("/ws") as session,
        pytest.raises(WebSocketDisconnect) as info,
    ):
        session.receive_text()
    assert (info.value.code, info.value.reason) == (4000, "Child")


# --- lifespan ------------------------------------------------------------------------------


async def drive_lifespan(
    app: ASGIApp, state: dict[str, Any]
) -> tuple[list[Message], BaseException | None]:
    """Run the lifespan protocol as a server would; return the app's messages and error."""
    to_app, app_inbox = anyio.create_memory_object_stream[Message](4)
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "lifespan.startup.complete":
            await to_app.send({"type": "lifespan.shutdown"})

    scope: Scope = {
        "type": "lifespan",
        "asgi": {"version": "3.0", "spec_version": "2.0"},
        "state": state,
    }
    await to_app.send({"type": "lifespan.startup"})
    error: BaseException | None = None
    with anyio.fail_after(5), to_app, app_inbox:
        try:
            await app(scope, app_inbox.receive, send)
        except Exception as exc:
            error = exc
    return sent, error


@pytest.mark.anyio
async def test_lifespan_success_runs_startup_and_shutdown_with_the_app() -> None:
    events: list[Any] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Stellate) -> AsyncIterator[dict[str, Any]]:
        events.append(("startup", app))
        yield {"pool": "connected"}
        events.append("shutdown")

    app = Stellate(lifespan=lifespan)
    state: dict[str, Any] = {}
    sent, error = await drive_lifespan(app, state)
    assert error is None
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]
    assert events == [("startup", app), "shutdown"]
    assert state == {"pool": "connected"}


@pytest.mark.anyio
async def test_lifespan_startup_failure_is_reported_and_raised() -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: Stellate) -> AsyncIterator[None]:
        raise ConnectionError("database unreachable")
        yield  # pragma: no cover

    sent, error = await drive_lifespan(Stellate(lifespan=lifespan), {})
    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
    assert "ConnectionError: database unreachable" in sent[0]["message"]
    assert isinstance(error, ConnectionError)


@pytest.mark.anyio
async def test_lifespan_shutdown_failure_is_reported_and_raised() -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: Stellate) -> AsyncIterator[None]:
        yield
        raise OSError("flush failed")

    sent, error = await drive_lifespan(Stellate(lifespan=lifespan), {})
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.failed"]
    assert "flush failed" in sent[1]["message"]
    assert isinstance(error, OSError)


def test_lifespan_state_is_visible_in_request_state(test_client_factory: Client) -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: Stellate) -> AsyncIterator[dict[str, Any]]:
        yield {"greeting": "from lifespan"}

    async def endpoint(request: Request) -> Response:
        return PlainTextResponse(request.state.greeting)

    app = Stellate(routes=[Route("/", endpoint)], lifespan=lifespan)
    with test_client_factory(app) as client:
        assert client.get("/").text == "from lifespan"


def test_startup_failure_fails_the_test_client(test_client_factory: Client) -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: Stellate) -> AsyncIterator[None]:
        raise RuntimeError("cannot start")
        yield  # pragma: no cover

    with (
        pytest.raises(RuntimeError, match="cannot start"),
        test_client_factory(Stellate(lifespan=lifespan)),
    ):
        pass  # pragma: no cover


@pytest.mark.anyio
async def test_async_generator_lifespan_works_with_a_deprecation_warning() -> None:
    events: list[str] = []

    async def lifespan(app: Stellate) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    with pytest.warns(StellateDeprecationWarning, match="async generator"):
        app = Stellate(lifespan=lifespan)  # type: ignore[arg-type]
    sent, error = await drive_lifespan(app, {})
    assert error is None
    assert events == ["startup", "shutdown"]
    assert sent[-1] == {"type": "lifespan.shutdown.complete"}


@pytest.mark.anyio
async def test_on_startup_and_on_shutdown_still_work_with_a_warning() -> None:
    events: list[str] = []

    def sync_startup() -> None:
        events.append("sync startup")

    async def async_startup() -> None:
        events.append("async startup")

    async def shutdown() -> None:
        events.append("shutdown")

    with pytest.warns(StellateDeprecationWarning, match="on_startup") as record:
        app = Stellate(on_startup=[sync_startup, async_startup], on_shutdown=[shutdown])
    assert len(record) == 1
    assert record[0].filename == __file__  # points at the caller, not at stellate
    assert app.router.on_startup == [sync_startup, async_startup]
    sent, error = await drive_lifespan(app, {})
    assert error is None
    assert events == ["sync startup", "async startup", "shutdown"]
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


@pytest.mark.anyio
async def test_failing_on_startup_handler_is_reported() -> None:
    def broken() -> None:
        raise ValueError("bad config")

    with pytest.warns(StellateDeprecationWarning):
        app = Stellate(on_startup=[broken])
    sent, error = await drive_lifespan(app, {})
    assert sent[0]["type"] == "lifespan.startup.failed"
    assert "bad config" in sent[0]["message"]
    assert isinstance(error, ValueError)


def test_lifespan_and_on_startup_together_are_an_error() -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: Stellate) -> AsyncIterator[None]:  # pragma: no cover
        yield

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no deprecation warning on the way out
        with pytest.raises(TypeError, match="not both"):
            Stellate(lifespan=lifespan, on_shutdown=[lambda: None])


def test_no_warning_without_legacy_handlers() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        app = Stellate(on_startup=None, on_shutdown=[])
    assert app.router.on_shutdown == []


# --- the package -----------------------------------------------------------------------------


def test_stellate_is_a_lazy_attribute_of_the_package() -> None:
    import stellate

    assert stellate.Stellate is Stellate
    assert "Stellate" in dir(stellate)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        stellate.Nope  # noqa: B018


def test_importing_the_package_does_not_import_the_application() -> None:
    import subprocess
    import sys

    code = "import sys, stellate; print('stellate.applications' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
