"""Integration: a full middleware stack in one application, seams between modules.

Each module has its own tests; these put them together the way an application does
(BaseHTTPMiddleware + GZip + CORS + sessions + body limits + cancel-on-disconnect +
timeouts + exception handlers) and check what only shows up at the seams.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from stellate.applications import Stellate
from stellate.background import BackgroundTask
from stellate.exceptions import HTTPException
from stellate.middleware import Middleware
from stellate.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from stellate.middleware.cors import CORSMiddleware
from stellate.middleware.gzip import GZipMiddleware
from stellate.middleware.sessions import SessionMiddleware
from stellate.middleware.trustedhost import TrustedHostMiddleware
from stellate.requests import Request
from stellate.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from stellate.routing import Mount, Route, WebSocketRoute
from stellate.websockets import WebSocket

Client = Callable[..., Any]


class Boom(Exception):
    pass


class Tag(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers["x-tag"] = "1"
        return response


def boom_handler(request: Request, exc: Exception) -> Response:
    return PlainTextResponse(f"handled {type(exc).__name__}", status_code=418)


def full_stack(routes: list[Any], **kwargs: Any) -> Stellate:
    return Stellate(
        routes=routes,
        middleware=[
            Middleware(CORSMiddleware, allow_origins=["https://ok.example"]),
            Middleware(TrustedHostMiddleware, allowed_hosts=["testserver", "*.example"]),
            Middleware(SessionMiddleware, secret_key="s3cret"),
            Middleware(Tag),
            Middleware(GZipMiddleware, minimum_size=10),
        ],
        exception_handlers={Boom: boom_handler},
        cancel_on_disconnect=True,
        timeout=30,
        max_body_size=1000,
        **kwargs,
    )


async def raises_boom(request: Request) -> Response:
    raise Boom()


async def big(request: Request) -> Response:
    return PlainTextResponse("x" * 2000)


async def stream(request: Request) -> Response:
    async def gen() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"y" * 100

    return StreamingResponse(gen(), media_type="text/plain")


async def echo(request: Request) -> Response:
    body = await request.body()
    request.session["n"] = len(body)
    return PlainTextResponse(body)


async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    text = await websocket.receive_text()
    await websocket.send_text(text.upper())
    await websocket.close()


ROUTES = [
    Route("/boom", raises_boom),
    Route("/big", big),
    Route("/stream", stream),
    Route("/echo", echo, methods=["POST"]),
    WebSocketRoute("/ws", ws_echo),
]


def test_user_exception_reaches_its_handler_through_every_layer(
    test_client_factory: Client,
) -> None:
    client = test_client_factory(full_stack(ROUTES))
    response = client.get("/boom", headers={"origin": "https://ok.example"})
    assert response.status_code == 418
    assert response.text == "handled Boom"
    assert response.headers["x-tag"] == "1"
    assert response.headers["access-control-allow-origin"] == "https://ok.example"


def test_gzip_inside_base_http_middleware(test_client_factory: Client) -> None:
    client = test_client_factory(full_stack(ROUTES))
    response = client.get("/big", headers={"accept-encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.text == "x" * 2000
    response = client.get("/stream", headers={"accept-encoding": "gzip"})
    assert response.text == "y" * 500
    assert response.headers["content-encoding"] == "gzip"


@pytest.mark.parametrize("path", ["/big", "/stream", "/boom", "/nope"])
def test_head_through_the_whole_stack(test_client_factory: Client, path: str) -> None:
    client = test_client_factory(full_stack(ROUTES))
    get = client.get(path, headers={"accept-encoding": "gzip"})
    head = client.head(path, headers={"accept-encoding": "gzip"})
    assert head.status_code == get.status_code
    assert head.content == b""


def test_body_and_session_through_the_stack(test_client_factory: Client) -> None:
    client = test_client_factory(full_stack(ROUTES))
    response = client.post("/echo", content=b"abc")
    assert response.text == "abc"
    assert "session" in response.cookies
    too_big = client.post("/echo", content=b"z" * 2000)
    assert too_big.status_code == 413


def test_websocket_through_every_middleware(test_client_factory: Client) -> None:
    client = test_client_factory(full_stack(ROUTES))
    with client.websocket_connect("/ws") as ws:
        ws.send_text("hi")
        assert ws.receive_text() == "HI"


def test_two_errors_in_a_group_are_not_collapsed(test_client_factory: Client) -> None:
    async def two(request: Request) -> Response:
        async def fail(exc: Exception) -> None:
            raise exc

        async with anyio.create_task_group() as group:
            group.start_soon(fail, Boom("one"))
            group.start_soon(fail, ValueError("two"))
            await anyio.sleep_forever()
        raise AssertionError("unreachable")

    app = full_stack([Route("/", two)])
    client = test_client_factory(app, raise_server_exceptions=False)
    response = client.get("/")
    # Two failures: neither handler may claim the request on its own.
    assert response.status_code == 500
    with pytest.raises(ExceptionGroup) as info:
        test_client_factory(app).get("/")
    _, rest = info.value.split(Boom)
    assert rest is not None
    assert rest.subgroup(ValueError) is not None
    assert info.value.subgroup(Boom) is not None


def test_timeout_under_base_http_middleware_is_a_503(test_client_factory: Client) -> None:
    async def slow(request: Request) -> Response:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    app = Stellate(routes=[Route("/", slow, timeout=0.01)], middleware=[Middleware(Tag)])
    response = test_client_factory(app).get("/")
    assert response.status_code == 503
    assert response.headers["x-tag"] == "1"


def test_stellate_mounted_in_stellate(test_client_factory: Client) -> None:
    async def inner_home(request: Request) -> Response:
        return JSONResponse(
            {
                "url": str(request.url_for("inner_home")),
                "root": request.scope["root_path"],
                "state": getattr(request.state, "flag", None),
            }
        )

    inner = Stellate(routes=[Route("/home", inner_home, name="inner_home")])
    outer = Stellate(routes=[Mount("/api", routes=[Mount("/v1", app=inner)])])
    response = test_client_factory(outer).get("/api/v1/home")
    assert response.status_code == 200
    assert response.json()["url"] == "http://testserver/api/v1/home"
    assert response.json()["root"] == "/api/v1"
    # The inner app raising an unhandled error answers 500 without breaking the outer one.
    inner.add_route("/boom", raises_boom)
    client = test_client_factory(outer, raise_server_exceptions=False)
    assert client.get("/api/v1/boom").status_code == 500


def test_background_task_runs_after_response_through_stack(test_client_factory: Client) -> None:
    log: list[str] = []

    async def endpoint(request: Request) -> Response:
        return PlainTextResponse("z" * 100, background=BackgroundTask(log.append, "bg"))

    app = full_stack([Route("/", endpoint)])
    response = test_client_factory(app).get("/", headers={"accept-encoding": "gzip"})
    assert response.text == "z" * 100
    assert log == ["bg"]


def _chunks(total: int) -> Iterator[bytes]:
    for _ in range(total // 10):
        yield b"x" * 10


def test_streaming_response_ignoring_an_oversized_body(test_client_factory: Client) -> None:
    # The endpoint never reads the body; the streaming response's disconnect listener
    # drains it. The limit refuses bodies the application reads (and, as in Starlette, a
    # declared length over it): it must not break a response streamed over an unread,
    # undeclared body.
    async def endpoint(request: Request) -> Response:
        async def gen() -> AsyncIterator[bytes]:
            for part in (b"a", b"b", b"c"):
                yield part

        return StreamingResponse(gen())

    app = Stellate(routes=[Route("/", endpoint, methods=["POST"])], max_body_size=10)
    client = test_client_factory(app)
    response = client.post("/", content=_chunks(100))
    assert response.status_code == 200
    assert response.text == "abc"
    # A declared length over the limit is refused before the stream starts.
    response = client.post("/", content=b"x" * 100)
    assert (response.status_code, response.text) == (413, "Content Too Large")


def test_streaming_echo_of_the_request_body(test_client_factory: Client) -> None:
    # The response streams the request body back while its disconnect listener runs:
    # the listener must not take body chunks away from the request stream.
    async def endpoint(request: Request) -> Response:
        return StreamingResponse(request.stream())

    def chunks() -> Any:
        for index in range(20):
            yield f"{index:03d}|".encode()

    expected = "".join(f"{index:03d}|" for index in range(20))
    for app in (
        Stellate(routes=[Route("/", endpoint, methods=["POST"])]),
        Stellate(routes=[Route("/", endpoint, methods=["POST"])], middleware=[Middleware(Tag)]),
        full_stack([Route("/", endpoint, methods=["POST"])]),
    ):
        response = test_client_factory(app).post("/", content=chunks())
        assert response.status_code == 200
        assert response.text == expected


def test_file_response_ignoring_an_oversized_body(
    test_client_factory: Client, tmp_path: Any
) -> None:
    from stellate.responses import FileResponse

    path = tmp_path / "big.bin"
    path.write_bytes(b"f" * 200_000)  # several chunks: the disconnect watcher runs

    async def endpoint(request: Request) -> Response:
        return FileResponse(path)

    app = Stellate(routes=[Route("/", endpoint, methods=["POST"])], max_body_size=10)
    client = test_client_factory(app)
    response = client.post("/", content=_chunks(100))
    assert response.status_code == 200
    assert response.content == b"f" * 200_000
    assert client.post("/", content=b"x" * 100).status_code == 413


def test_file_response_head_range_and_304_through_the_stack(
    test_client_factory: Client, tmp_path: Any
) -> None:
    from stellate.responses import FileResponse

    path = tmp_path / "page.txt"
    path.write_bytes(b"0123456789" * 100)

    async def endpoint(request: Request) -> Response:
        return FileResponse(path, media_type="text/plain")

    from stellate.staticfiles import StaticFiles

    static = Mount("/static", StaticFiles(directory=tmp_path))
    client = test_client_factory(full_stack([Route("/f", endpoint), static]))
    whole = client.get("/f", headers={"accept-encoding": "gzip"})
    assert whole.status_code == 200
    assert whole.headers["content-encoding"] == "gzip"
    assert whole.content == b"0123456789" * 100
    head = client.head("/f", headers={"accept-encoding": "gzip"})
    assert head.status_code == 200
    assert head.content == b""
    assert "content-encoding" not in head.headers or head.headers["content-encoding"] == "gzip"
    part = client.get("/f", headers={"accept-encoding": "gzip", "range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == b"0123456789"
    assert "content-encoding" not in part.headers
    etag = whole.headers["etag"]
    # FileResponse itself always answers 200, as in Starlette; StaticFiles answers 304.
    # (This used to expect the 304 from the endpoint's FileResponse.)
    again = client.get("/f", headers={"accept-encoding": "gzip", "if-none-match": etag})
    assert again.status_code == 200
    cached = client.get(
        "/static/page.txt", headers={"accept-encoding": "gzip", "if-none-match": etag}
    )
    assert cached.status_code == 304
    assert cached.content == b""


def test_redirects_inside_nested_mounts_keep_the_prefix(test_client_factory: Client) -> None:
    from stellate.middleware.httpsredirect import HTTPSRedirectMiddleware

    async def page(request: Request) -> Response:
        return JSONResponse([str(request.url), str(request.url_for("page"))])

    inner = Stellate(routes=[Route("/page/", page, name="page")])
    outer = Stellate(routes=[Mount("/a", routes=[Mount("/b", app=inner)])])
    client = test_client_factory(outer, root_path="/proxy", follow_redirects=False)
    response = client.get("/proxy/a/b/page")
    assert response.status_code == 307
    assert response.headers["location"] == "http://testserver/proxy/a/b/page/"
    response = client.get("/proxy/a/b/page/")
    assert response.json() == [
        "http://testserver/proxy/a/b/page/",
        "http://testserver/proxy/a/b/page/",
    ]
    secure = HTTPSRedirectMiddleware(outer)
    client = test_client_factory(secure, root_path="/proxy", follow_redirects=False)
    response = client.get("/proxy/a/b/page/?q=1")
    assert response.headers["location"] == "https://testserver/proxy/a/b/page/?q=1"


def test_app_body_limit_covers_reads_in_user_middleware(test_client_factory: Client) -> None:
    seen: list[int] = []

    class LogBody(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            seen.append(len(await request.body()))
            return await call_next(request)

    async def endpoint(request: Request) -> Response:
        return PlainTextResponse(str(len(await request.body())))

    app = Stellate(
        routes=[Route("/", endpoint, methods=["POST"])],
        middleware=[Middleware(LogBody)],
        max_body_size=10,
    )
    client = test_client_factory(app)
    assert client.post("/", content=b"x" * 5).text == "5"
    # Streamed, so no Content-Length: the limit must cut it off as it is read.
    response = client.post("/", content=iter([b"y" * 8, b"y" * 8, b"y" * 8]))
    assert response.status_code == 413
    assert seen == [5]


@pytest.mark.parametrize("cancel_on_disconnect", [False, True])
def test_unwrapped_error_keeps_its_context(
    test_client_factory: Client, cancel_on_disconnect: bool
) -> None:
    # Unwrapping the internal task group's exception group must not drop "during
    # handling of the above exception" from the traceback the developer reads.
    async def endpoint(request: Request) -> Response:
        try:
            {}["missing"]
        except KeyError:
            raise Boom("while handling")  # noqa: B904 (the context is what is checked)
        raise AssertionError("unreachable")

    app = Stellate(
        routes=[Route("/", endpoint)],
        middleware=[Middleware(Tag)],
        debug=True,
        cancel_on_disconnect=cancel_on_disconnect,
    )
    client = test_client_factory(app, raise_server_exceptions=False)
    response = client.get("/", headers={"accept": "text/plain"})
    assert response.status_code == 500
    assert "KeyError: 'missing'" in response.text
    assert "During handling of the above exception" in response.text


def test_websocket_denial_and_exceptions_through_the_stack(test_client_factory: Client) -> None:
    from stellate.exceptions import WebSocketException
    from stellate.testclient import WebSocketDenialResponse
    from stellate.websockets import WebSocketDisconnect

    async def deny(websocket: WebSocket) -> None:
        raise HTTPException(status_code=401, detail="who are you")

    async def policy(websocket: WebSocket) -> None:
        await websocket.accept()
        raise WebSocketException(code=4001, reason="nope")

    app = full_stack(
        [WebSocketRoute("/deny", deny), Mount("/m", routes=[WebSocketRoute("/policy", policy)])]
    )
    client = test_client_factory(app)
    with pytest.raises(WebSocketDenialResponse) as info, client.websocket_connect("/deny"):
        pass
    assert info.value.status_code == 401
    assert info.value.text == "who are you"
    with client.websocket_connect("/m/policy") as ws, pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_text()
    assert closed.value.code == 4001


def test_every_response_type_through_the_stack_get_and_head(
    test_client_factory: Client, tmp_path: Any
) -> None:
    from stellate.responses import FileResponse, HTMLResponse, RedirectResponse
    from stellate.sse import EventSourceResponse, ServerSentEvent

    path = tmp_path / "f.txt"
    path.write_text("file body " * 100)

    def sync_chunks() -> Any:
        yield "sync "
        yield "chunks " * 100

    async def events() -> AsyncIterator[ServerSentEvent]:
        yield ServerSentEvent(data="one")
        yield ServerSentEvent(data="two")

    responses: dict[str, Callable[[], Response]] = {
        "html": lambda: HTMLResponse("<p>hi</p>" * 100),
        "json": lambda: JSONResponse({"a": "b" * 1000}),
        "redirect": lambda: RedirectResponse("/html"),
        "sync": lambda: StreamingResponse(sync_chunks(), media_type="text/plain"),
        "file": lambda: FileResponse(path),
        "sse": lambda: EventSourceResponse(events(), ping=None),
    }

    def endpoint_for(make: Callable[[], Response]) -> Any:
        async def endpoint(request: Request) -> Response:
            return make()

        return endpoint

    app = full_stack([Route(f"/{name}", endpoint_for(make)) for name, make in responses.items()])
    client = test_client_factory(app, follow_redirects=False)
    for name in responses:
        get = client.get(f"/{name}", headers={"accept-encoding": "gzip"})
        head = client.head(f"/{name}", headers={"accept-encoding": "gzip"})
        assert get.status_code == head.status_code, name
        assert head.content == b"", name
        assert get.headers.get("x-tag") == head.headers.get("x-tag") == "1", name
    assert "data: two" in client.get("/sse").text
    assert client.get("/sync").text == "sync " + "chunks " * 100


def test_lifespan_state_and_tasks_through_every_middleware(test_client_factory: Client) -> None:
    from contextlib import asynccontextmanager

    from stellate.middleware.authentication import AuthenticationMiddleware
    from stellate.middleware.body_limit import RequestBodyLimitMiddleware
    from stellate.middleware.httpsredirect import HTTPSRedirectMiddleware

    log: list[str] = []

    class Backend:
        async def authenticate(self, conn: Any) -> None:
            return None

    @asynccontextmanager
    async def lifespan(app: Stellate) -> AsyncIterator[dict[str, Any]]:
        log.append("up")
        yield {"db": "connected"}
        log.append("down")

    async def endpoint(request: Request) -> Response:
        done = anyio.Event()

        async def job() -> None:
            log.append("task")
            done.set()

        request.app.tasks.start_soon(job)
        with anyio.fail_after(5):
            await done.wait()
        return PlainTextResponse(request.state.db)

    app = full_stack([Route("/", endpoint)], lifespan=lifespan)
    app.user_middleware.extend(
        [
            Middleware(AuthenticationMiddleware, backend=Backend()),
            Middleware(RequestBodyLimitMiddleware, max_body_size=10),
        ]
    )
    with test_client_factory(HTTPSRedirectMiddleware(app), base_url="https://testserver") as c:
        assert c.get("/").text == "connected"
    assert log == ["up", "task", "down"]


def test_form_read_in_dispatch_is_closed_after_the_request(test_client_factory: Client) -> None:
    from stellate.datastructures import UploadFile

    uploads: list[UploadFile] = []

    class ReadsForm(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            form = await request.form()
            upload = form["file"]
            assert isinstance(upload, UploadFile)
            uploads.append(upload)
            response = await call_next(request)
            response.headers["x-size"] = str(len(await upload.read()))
            return response

    async def endpoint(request: Request) -> Response:
        # As in Starlette: a body that dispatch streamed (a form) is not replayed.
        return PlainTextResponse(repr(await request.body()))

    app = Stellate(
        routes=[Route("/", endpoint, methods=["POST"])], middleware=[Middleware(ReadsForm)]
    )
    data = b"u" * (2 * 1024 * 1024)  # over the spool size: on disk
    response = test_client_factory(app).post("/", files={"file": ("big.bin", data)})
    assert response.headers["x-size"] == str(len(data))
    assert response.text == "b''"
    assert len(uploads) == 1
    assert all(upload.file.closed for upload in uploads)


def test_closing_a_streamed_response_early_cancels_the_stack(test_client_factory: Client) -> None:
    finished: list[str] = []

    async def endless(request: Request) -> Response:
        async def gen() -> AsyncIterator[bytes]:
            try:
                while True:
                    yield b"z" * 1000
                    await anyio.lowlevel.checkpoint()
            finally:
                finished.append("closed")

        return StreamingResponse(gen(), media_type="text/plain")

    app = full_stack([Route("/", endless)])
    with test_client_factory(app) as client:
        with client.stream("GET", "/", headers={"accept-encoding": "gzip"}) as response:
            assert response.status_code == 200
            iterator = response.iter_bytes()
            assert next(iterator)
        assert client.get("/nope").status_code == 404
    assert finished == ["closed"]
