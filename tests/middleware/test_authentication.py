"""AuthenticationMiddleware: request.user/auth, errors through on_error, WebSockets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from stellate.applications import Stellate
from stellate.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
    SimpleUser,
    UnauthenticatedUser,
)
from stellate.middleware import Middleware
from stellate.middleware.authentication import AuthenticationMiddleware
from stellate.requests import HTTPConnection, Request
from stellate.responses import JSONResponse, PlainTextResponse, Response
from stellate.routing import Route, WebSocketRoute
from stellate.types import Message, Receive, Scope, Send
from stellate.websockets import WebSocket, WebSocketDisconnect

Client = Callable[..., Any]


class HeaderBackend(AuthenticationBackend):
    """``X-User: name`` authenticates; ``X-User: !`` is an invalid credential."""

    def __init__(self) -> None:
        self.calls = 0

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        self.calls += 1
        name = conn.headers.get("x-user")
        if name is None:
            return None
        if name == "!":
            raise AuthenticationError("Malformed X-User")
        return AuthCredentials(["authenticated"]), SimpleUser(name)


async def whoami(request: Request) -> Response:
    return JSONResponse(
        {
            "user": request.user.display_name,
            "authenticated": request.user.is_authenticated,
            "scopes": request.auth.scopes,
        }
    )


async def ws_whoami(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(websocket.user.display_name or "anonymous")
    await websocket.close()


def make_app(backend: AuthenticationBackend, **options: Any) -> Stellate:
    return Stellate(
        routes=[Route("/", whoami), WebSocketRoute("/ws", ws_whoami)],
        middleware=[Middleware(AuthenticationMiddleware, backend=backend, **options)],
    )


def test_authenticated_and_anonymous(test_client_factory: Client) -> None:
    backend = HeaderBackend()
    client = test_client_factory(make_app(backend))
    assert client.get("/").json() == {"user": "", "authenticated": False, "scopes": []}
    assert client.get("/", headers={"x-user": "ada"}).json() == {
        "user": "ada",
        "authenticated": True,
        "scopes": ["authenticated"],
    }
    assert backend.calls == 2


def test_authentication_error_gives_400_by_default(test_client_factory: Client) -> None:
    client = test_client_factory(make_app(HeaderBackend()))
    response = client.get("/", headers={"x-user": "!"})
    assert (response.status_code, response.text) == (400, "Malformed X-User")


def test_default_on_error() -> None:
    response = AuthenticationMiddleware.default_on_error(
        HTTPConnection({"type": "http", "headers": []}), AuthenticationError("nope")
    )
    assert (response.status_code, response.body) == (400, b"nope")


def test_custom_on_error(test_client_factory: Client) -> None:
    seen: list[Any] = []

    def on_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
        seen.append((conn.url.path, str(exc)))
        return JSONResponse({"error": str(exc)}, status_code=401)

    client = test_client_factory(make_app(HeaderBackend(), on_error=on_error))
    response = client.get("/", headers={"x-user": "!"})
    assert (response.status_code, response.json()) == (401, {"error": "Malformed X-User"})
    assert seen == [("/", "Malformed X-User")]


def test_async_on_error(test_client_factory: Client) -> None:
    async def on_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
        return PlainTextResponse("async says no", status_code=401)

    client = test_client_factory(make_app(HeaderBackend(), on_error=on_error))
    assert client.get("/", headers={"x-user": "!"}).text == "async says no"


def test_other_backend_errors_are_not_authentication_errors(test_client_factory: Client) -> None:
    class Broken(AuthenticationBackend):
        async def authenticate(self, conn: HTTPConnection) -> None:
            raise ZeroDivisionError

    client = test_client_factory(make_app(Broken()), raise_server_exceptions=False)
    assert client.get("/").status_code == 500


def test_404_inside_an_app_still_authenticates(test_client_factory: Client) -> None:
    backend = HeaderBackend()
    client = test_client_factory(make_app(backend))
    assert client.get("/missing", headers={"x-user": "ada"}).status_code == 404
    assert backend.calls == 1


def test_websocket_user(test_client_factory: Client) -> None:
    client = test_client_factory(make_app(HeaderBackend()))
    with client.websocket_connect("/ws", headers={"x-user": "ada"}) as session:
        assert session.receive_text() == "ada"
    with client.websocket_connect("/ws") as session:
        assert session.receive_text() == "anonymous"


def test_websocket_authentication_error_gets_a_denial_response(
    test_client_factory: Client,
) -> None:
    from stellate.testclient import WebSocketDenialResponse

    client = test_client_factory(make_app(HeaderBackend()))
    with (
        pytest.raises(WebSocketDenialResponse) as info,
        client.websocket_connect("/ws", headers={"x-user": "!"}),
    ):
        pass  # pragma: no cover
    assert info.value.status_code == 400
    assert info.value.text == "Malformed X-User"


@pytest.mark.anyio
async def test_websocket_error_without_denial_extension_closes() -> None:
    sent: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:  # pragma: no cover
        raise AssertionError("the app must not run")

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/", "headers": [(b"x-user", b"!")]}
    with anyio.fail_after(5):
        await AuthenticationMiddleware(app, HeaderBackend())(scope, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": ""}]


@pytest.mark.anyio
async def test_bare_asgi_wrapper_sets_scope_and_passes_lifespan() -> None:
    scopes: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)

    async def receive() -> Message:  # pragma: no cover
        raise AssertionError

    async def send(message: Message) -> None:  # pragma: no cover
        raise AssertionError

    middleware = AuthenticationMiddleware(app, HeaderBackend())
    await middleware({"type": "lifespan"}, receive, send)
    assert "user" not in scopes[0]
    await middleware({"type": "http", "headers": [(b"x-user", b"bob")]}, receive, send)
    assert isinstance(scopes[1]["user"], SimpleUser)
    assert scopes[1]["auth"].scopes == ["authenticated"]
    await middleware({"type": "http", "headers": []}, receive, send)
    assert isinstance(scopes[2]["user"], UnauthenticatedUser)


def test_without_middleware_request_user_says_what_is_missing(
    test_client_factory: Client,
) -> None:
    app = Stellate(routes=[Route("/", whoami)])
    with pytest.raises(AssertionError, match="AuthenticationMiddleware must be installed"):
        test_client_factory(app).get("/")


def test_websocket_refused_by_requires_is_a_disconnect(test_client_factory: Client) -> None:
    # Guard against a regression where a refused handshake would hang the client.
    from stellate.authentication import requires

    @requires("admin")
    async def admin_ws(websocket: WebSocket) -> None:  # pragma: no cover
        await websocket.accept()

    app = Stellate(
        routes=[WebSocketRoute("/admin", admin_ws)],
        middleware=[Middleware(AuthenticationMiddleware, backend=HeaderBackend())],
    )
    with (
        pytest.raises(WebSocketDisconnect),
        test_client_factory(app).websocket_connect("/admin", headers={"x-user": "a"}),
    ):
        pass  # pragma: no cover
