"""Integration: malformed requests reaching every middleware and endpoint -> never a 500.

The requests are raw ASGI scopes (what a server hands over after its own parsing), so
bytes a client library would refuse to send still reach the application.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest

from stellate.applications import Stellate
from stellate.middleware import Middleware
from stellate.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from stellate.middleware.body_limit import RequestBodyLimitMiddleware
from stellate.middleware.cors import CORSMiddleware
from stellate.middleware.gzip import GZipMiddleware
from stellate.middleware.httpsredirect import HTTPSRedirectMiddleware
from stellate.middleware.sessions import SessionMiddleware
from stellate.middleware.trustedhost import TrustedHostMiddleware
from stellate.requests import ClientDisconnect, Request
from stellate.responses import JSONResponse, Response
from stellate.routing import Mount, Route
from stellate.types import Message, Scope

pytestmark = pytest.mark.anyio


class Passthrough(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        return await call_next(request)


async def inspect(request: Request) -> Response:
    """Touch every lazily parsed part of the request."""
    await request.body()
    return JSONResponse(
        {
            "url": str(request.url),
            "base": str(request.base_url),
            "query": list(request.query_params.multi_items()),
            "cookies": request.cookies,
            "headers": len(request.headers),
            "client": request.client and request.client.host,
            "session": dict(request.session),
            "for": str(request.url_for("inspect")),
            "params": request.path_params,
        }
    )


def make_app(*extra: Middleware) -> Stellate:
    routes = [
        Route("/", inspect, name="inspect", methods=["GET", "POST"]),
        Mount("/m/{part}", routes=[Route("/x", inspect, methods=["GET", "POST"])]),
    ]
    return Stellate(
        routes=routes,
        middleware=[
            *extra,
            Middleware(
                CORSMiddleware, allow_origins=["https://ok.example"], allow_credentials=True
            ),
            Middleware(SessionMiddleware, secret_key="k"),
            Middleware(Passthrough),
            Middleware(GZipMiddleware, minimum_size=1),
            Middleware(RequestBodyLimitMiddleware, max_body_size=100),
        ],
    )


def scope_for(
    path: str = "/",
    headers: list[tuple[bytes, bytes]] | None = None,
    query: bytes = b"",
    method: str = "GET",
    raw_path: bytes | None = None,
    scheme: str = "http",
) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": scheme,
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape") if raw_path is None else raw_path,
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"testserver"), *(headers or [])],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }


async def call(app: Any, scope: Scope, body: bytes = b"") -> tuple[int, list[Message]]:
    sent: list[Message] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        await anyio.sleep_forever()
        raise AssertionError

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        try:
            await app(scope, receive, send)
        except Exception as exc:  # the app must answer, not raise
            raise AssertionError(f"the app raised {exc!r}; sent {sent!r}") from exc
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1, sent
    return int(starts[0]["status"]), sent


BAD_HEADERS: list[list[tuple[bytes, bytes]]] = [
    [(b"cookie", b'session=\xff\xfe; ;;=; a="b; c')],
    [(b"cookie", b"session=" + b"A" * 5000)],
    [(b"cookie", b"session=eyJ.x.y")],
    [(b"accept-encoding", b"gzip;q=abc, *;q=, br;;")],
    [(b"accept-encoding", b"gzip;q=nan")],
    [(b"origin", b"null")],
    [(b"origin", b"\xff\xfe")],
    [(b"origin", b"https://ok.example"), (b"origin", b"https://evil.example")],
    [(b"content-length", b"abc")],
    [(b"content-length", b"-5")],
    [(b"content-length", b"1, 2")],
    [(b"content-length", b"99999999999999999999999999999")],
    [(b"content-type", b"multipart/form-data; boundary=")],
    [(b"x-forwarded-for", b"\xff")],
    [(b"accept", b"\x00\xff")],
]


@pytest.mark.parametrize("headers", BAD_HEADERS)
async def test_bad_headers_never_500(
    anyio_backend: str, headers: list[tuple[bytes, bytes]]
) -> None:
    for method in ("GET", "POST", "HEAD", "OPTIONS"):
        status, _ = await call(make_app(), scope_for(headers=headers, method=method))
        assert status < 500, (headers, method, status)


@pytest.mark.parametrize(
    "host",
    [
        b"",
        b"[::1",
        b"a@b",
        b"x:y:z",
        b"h" * 10000,
        b"\xff\xfe",
        b"exa mple",
        b"::1",
        b"[::1]:99999",
    ],
)
async def test_bad_host_never_500(anyio_backend: str, host: bytes) -> None:
    scope = scope_for()
    scope["headers"] = [(b"host", host)]
    status, _ = await call(make_app(), scope)
    assert status < 500
    scope = scope_for()
    scope["headers"] = [(b"host", host)]
    app = make_app(
        Middleware(TrustedHostMiddleware, allowed_hosts=["testserver"], www_redirect=True),
        Middleware(HTTPSRedirectMiddleware),
    )
    status, _ = await call(app, scope)
    assert status < 500


@pytest.mark.parametrize(
    ("path", "raw_path"),
    [
        ("/\ufffd", b"/%ff"),
        ("/%zz", b"/%zz"),
        ("/m/%ff/x", b"/m/%25ff/x"),
        ("/m/\ufffd/x", b"/m/%ff/x"),
        ("/m/\x00/x", b"/m/%00/x"),
        ("//evil.example/", b"//evil.example/"),
        ("/m/a\nb/x", b"/m/a%0ab/x"),
    ],
)
async def test_bad_paths_never_500(anyio_backend: str, path: str, raw_path: bytes) -> None:
    for scheme in ("http", "https"):
        status, _ = await call(make_app(), scope_for(path=path, raw_path=raw_path, scheme=scheme))
        assert status < 500, (path, status)
    app = make_app(Middleware(HTTPSRedirectMiddleware))
    status, _ = await call(app, scope_for(path=path, raw_path=raw_path))
    assert status < 500


@pytest.mark.parametrize(
    "query",
    [b"a=%ff&b&=c&&%zz", b"%", b"a=%E2%82", b"\xff=\xfe", b"a=1;b=2", b"=" * 1000, b"a" * 100000],
)
async def test_bad_query_never_500(anyio_backend: str, query: bytes) -> None:
    status, _ = await call(make_app(), scope_for(query=query))
    assert status < 500
    status, _ = await call(make_app(), scope_for(path="/m/p/x", query=query))
    assert status < 500


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        (b"application/x-www-form-urlencoded", b"a=%ff&%zz=1&&=&b"),
        (b"multipart/form-data", b"--x\r\n"),
        (b"multipart/form-data; boundary=x", b"--x\r\nbroken"),
        (b'multipart/form-data; boundary=""', b""),
        (b"application/json", b"{nope"),
    ],
)
async def test_bad_forms_never_500(anyio_backend: str, ctype: bytes, body: bytes) -> None:
    async def form(request: Request) -> Response:
        data = await request.form()
        return JSONResponse(sorted(data.keys()))

    app = Stellate(
        routes=[Route("/", form, methods=["POST"])],
        middleware=[Middleware(Passthrough), Middleware(GZipMiddleware, minimum_size=1)],
    )
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
    status, _ = await call(app, scope_for(method="POST", headers=headers), body=body)
    assert status < 500


@pytest.mark.parametrize(
    "host",
    [b"", b"[::1", b"a@b.example", b"x.example:abc", b"\xff.example", b"API.EXAMPLE.", b".example"],
)
async def test_bad_host_with_host_routing_never_500(anyio_backend: str, host: bytes) -> None:
    from stellate.routing import Host

    async def where(request: Request) -> Response:
        return JSONResponse(
            [str(request.url), str(request.url_for("inspect")), request.path_params]
        )

    api = Stellate(routes=[Route("/", where, name="inspect")])
    app = Stellate(
        routes=[
            Host("{sub}.example", app=api, name="sub"),
            Route("/", where, name="inspect"),
        ]
    )
    scope = scope_for()
    scope["headers"] = [(b"host", host)]
    status, _ = await call(app, scope)
    assert status < 500


async def test_websocket_through_security_middleware(anyio_backend: str) -> None:
    from stellate.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
    from stellate.middleware.authentication import AuthenticationMiddleware
    from stellate.routing import WebSocketRoute
    from stellate.websockets import WebSocket

    class Backend(AuthenticationBackend):
        async def authenticate(self, conn: Any) -> Any:
            return AuthCredentials(["ok"]), SimpleUser("u")

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(websocket.user.display_name + " " + websocket.url.path)
        await websocket.close()

    app = make_app(
        Middleware(AuthenticationMiddleware, backend=Backend()),
        Middleware(TrustedHostMiddleware, allowed_hosts=["testserver"]),
    )
    app.router.routes.append(Mount("/w", routes=[WebSocketRoute("/s", ws)]))
    sent: list[Message] = []
    inbox = [{"type": "websocket.connect"}]

    async def receive() -> Message:
        if inbox:
            return inbox.pop()
        await anyio.sleep_forever()
        raise AssertionError

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/w/s",
        "raw_path": b"/w/s",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"cookie", b"session=garbage")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
        "subprotocols": [],
    }
    with anyio.fail_after(5):
        await app(scope, receive, send)
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert sent[1]["text"] == "u /w/s"


@pytest.mark.parametrize("cancel_on_disconnect", [False, True])
@pytest.mark.parametrize(("path", "method"), [("/upload", "POST"), ("/stream", "GET")])
async def test_client_gone_mid_body_through_the_stack(
    anyio_backend: str, cancel_on_disconnect: bool, path: str, method: str
) -> None:
    from stellate.responses import StreamingResponse

    async def upload(request: Request) -> Response:
        body = await request.body()
        return JSONResponse(len(body))

    async def stream(request: Request) -> Response:
        async def forever() -> Any:
            while True:
                yield b"tick"
                await anyio.lowlevel.checkpoint()

        return StreamingResponse(forever())

    app = make_app()
    app.cancel_on_disconnect = cancel_on_disconnect
    app.router.routes.append(Route("/upload", upload, methods=["POST"]))
    app.router.routes.append(Route("/stream", stream))
    messages: list[Message] = [
        {"type": "http.request", "body": b"x" * 10, "more_body": method == "POST"},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []
    gone = anyio.Event()

    async def receive() -> Message:
        if len(messages) == 1 and method == "GET":
            await gone.wait()  # the client leaves once some of the stream arrived
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if len(sent) > 5:
            gone.set()

    with anyio.fail_after(5):
        if method == "POST":
            # The body read fails: as in Starlette, ClientDisconnect is an unhandled error
            # (ServerErrorMiddleware's 500 goes to nobody) and reaches the server.
            with pytest.raises(ClientDisconnect):
                await app(scope_for(path=path, method=method), receive, send)
            return
        await app(scope_for(path=path, method=method), receive, send)
    statuses = [m["status"] for m in sent if m["type"] == "http.response.start"]
    assert all(status < 500 for status in statuses), (path, sent[:2])


async def test_deadline_after_start_under_gzip_still_sends_the_start(anyio_backend: str) -> None:
    # The route's deadline expires after its response started: the stream is left
    # unfinished on purpose. GZip, holding the start until the first body chunk, must
    # not turn that into "the app returned without starting a response" (a server 500).
    from stellate.responses import StreamingResponse

    async def slow(request: Request) -> Response:
        async def never() -> Any:
            await anyio.sleep_forever()
            yield b""

        return StreamingResponse(never())

    app = Stellate(
        routes=[Route("/", slow, timeout=0.01)],
        middleware=[Middleware(GZipMiddleware, minimum_size=1)],
    )
    status, sent = await call(app, scope_for(headers=[(b"accept-encoding", b"gzip")]))
    assert status == 200
    assert not any(m["type"] == "http.response.body" and not m.get("more_body") for m in sent)


@pytest.mark.parametrize(
    ("path", "raw_path"),
    [
        ("/u/\u00e9/", b"/u/%C3%A9/"),
        ("/u/\ufffd/", b"/u/%ff/"),
        ("/u/a\r\nSet-Cookie: x=1/", b"/u/a%0d%0aSet-Cookie:%20x=1/"),
        ("/u/\u2028/", b"/u/%E2%80%A8/"),
    ],
)
async def test_redirects_of_odd_paths_never_500(
    anyio_backend: str, path: str, raw_path: bytes
) -> None:
    async def user(request: Request) -> Response:
        return JSONResponse(request.path_params)

    app = Stellate(
        routes=[Route("/u/{name}", user)],
        middleware=[
            Middleware(HTTPSRedirectMiddleware),
            Middleware(TrustedHostMiddleware, allowed_hosts=["example.com", "www.example.com"]),
        ],
    )
    for scheme, host in (
        ("https", b"example.com"),
        ("http", b"example.com"),
        ("https", b"www.example.com"),
    ):
        scope = scope_for(path=path, raw_path=raw_path, scheme=scheme)
        scope["headers"] = [(b"host", host)]
        status, sent = await call(app, scope)
        assert status < 500
        for _, value in sent[0]["headers"]:
            assert b"\r" not in value
            assert b"\n" not in value


async def test_pathsend_through_the_stack(anyio_backend: str, tmp_path: Any) -> None:
    from stellate.background import BackgroundTask
    from stellate.responses import FileResponse

    path = tmp_path / "f.bin"
    path.write_bytes(b"z" * 5000)
    order: list[str] = []

    async def endpoint(request: Request) -> Response:
        return FileResponse(path, background=BackgroundTask(order.append, "background"))

    app = make_app()
    app.router.routes.append(Route("/file", endpoint))
    scope = scope_for(path="/file", headers=[(b"accept-encoding", b"gzip")])
    scope["extensions"] = {"http.response.pathsend": {}}
    sent: list[Message] = []

    async def receive() -> Message:
        await anyio.sleep_forever()
        raise AssertionError

    async def send(message: Message) -> None:
        sent.append(message)
        order.append(message["type"])

    with anyio.fail_after(5):
        await app(scope, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.pathsend"]
    assert sent[1]["path"] == str(path)
    assert order[-1] == "background"


async def test_disconnect_cancels_handler_under_every_middleware(anyio_backend: str) -> None:
    started = anyio.Event()
    cancelled: list[bool] = []

    async def slow(request: Request) -> Response:
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.append(True)
        raise AssertionError("unreachable")

    app = make_app()
    app.cancel_on_disconnect = True
    app.router.routes.append(Route("/slow", slow))
    sent: list[Message] = []
    messages: list[Message] = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Message:
        if messages:
            return messages.pop()
        await started.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await app(scope_for(path="/slow"), receive, send)
    assert cancelled == [True]
    assert sent == []


@pytest.mark.parametrize("encoding", [b"gzip", b"identity"])
async def test_early_hints_and_push_through_the_stack(anyio_backend: str, encoding: bytes) -> None:
    async def page(request: Request) -> Response:
        await request.send_early_hints("</style.css>; rel=preload; as=style")
        await request.send_push_promise("/style.css")
        return JSONResponse({"body": "x" * 1000})

    app = make_app()
    app.router.routes.append(Route("/page", page))
    scope = scope_for(path="/page", headers=[(b"accept-encoding", encoding)])
    scope["extensions"] = {"http.response.early_hint": {}, "http.response.push": {}}
    status, sent = await call(app, scope)
    assert status == 200
    kinds = [m["type"] for m in sent]
    assert kinds[:3] == [
        "http.response.early_hint",
        "http.response.push",
        "http.response.start",
    ], kinds
