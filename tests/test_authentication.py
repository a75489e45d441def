"""stellate.authentication: users, credentials, has_required_scope and @requires."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from stellate.applications import Stellate
from stellate.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
    SimpleUser,
    UnauthenticatedUser,
    has_required_scope,
    requires,
)
from stellate.endpoints import HTTPEndpoint
from stellate.middleware import Middleware
from stellate.middleware.authentication import AuthenticationMiddleware
from stellate.requests import HTTPConnection, Request
from stellate.responses import JSONResponse, PlainTextResponse, Response
from stellate.routing import Route, WebSocketRoute
from stellate.websockets import WebSocket, WebSocketDisconnect

Client = Callable[..., Any]


class TokenBackend(AuthenticationBackend):
    """``Authorization: Bearer <user>:<scope>,<scope>``; ``bad`` raises."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        header = conn.headers.get("authorization")
        if header is None:
            return None
        token = header.removeprefix("Bearer ")
        if token == "bad":
            raise AuthenticationError("Invalid token")
        user, _, scopes = token.partition(":")
        return AuthCredentials(["authenticated", *filter(None, scopes.split(","))]), SimpleUser(
            user
        )


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --------------------------------------------------------------------------- data


def test_users() -> None:
    user = SimpleUser("ada")
    assert (user.is_authenticated, user.display_name, user.identity) == (True, "ada", "ada")
    assert repr(user) == "SimpleUser('ada')"
    anonymous = UnauthenticatedUser()
    assert (anonymous.is_authenticated, anonymous.display_name, anonymous.identity) == (
        False,
        "",
        "",
    )
    assert repr(anonymous) == "UnauthenticatedUser()"
    base = BaseUser()
    for attribute in ("is_authenticated", "display_name", "identity"):
        with pytest.raises(NotImplementedError):
            getattr(base, attribute)


def test_credentials() -> None:
    assert AuthCredentials().scopes == []
    scopes = ("a", "b")
    credentials = AuthCredentials(scopes)
    assert credentials.scopes == ["a", "b"]
    assert isinstance(credentials.scopes, list)
    assert repr(credentials) == "AuthCredentials(scopes=['a', 'b'])"


def test_authentication_error_is_an_exception() -> None:
    assert issubclass(AuthenticationError, Exception)


@pytest.mark.anyio
async def test_base_backend_must_be_implemented() -> None:
    conn = HTTPConnection({"type": "http", "headers": []})
    with pytest.raises(NotImplementedError):
        await AuthenticationBackend().authenticate(conn)


def test_has_required_scope() -> None:
    conn = HTTPConnection({"type": "http", "headers": [], "auth": AuthCredentials(["a", "b"])})
    assert has_required_scope(conn, [])
    assert has_required_scope(conn, ["a"])
    assert has_required_scope(conn, ["a", "b"])
    assert not has_required_scope(conn, ["a", "c"])
    assert not has_required_scope(conn, ["ab"])


def test_requires_needs_a_connection_parameter() -> None:
    with pytest.raises(TypeError, match="'request' or 'websocket'"):

        @requires("a")
        async def endpoint(req: Request) -> Response:  # pragma: no cover
            return PlainTextResponse("")


# --------------------------------------------------------------------------- @requires


@requires("authenticated")
async def async_page(request: Request) -> Response:
    return JSONResponse({"user": request.user.display_name, "scopes": request.auth.scopes})


@requires(["authenticated", "admin"])
def sync_admin(request: Request) -> Response:
    return PlainTextResponse(f"admin {request.user.display_name}")


@requires("admin", status_code=404)
async def hidden(request: Request) -> Response:
    return PlainTextResponse("hidden")


@requires("authenticated", redirect="login")
async def with_redirect(request: Request) -> Response:
    return PlainTextResponse("secret")


async def login(request: Request) -> Response:
    return PlainTextResponse("login page")


class Dashboard(HTTPEndpoint):
    @requires("authenticated")
    async def get(self, request: Request) -> Response:
        return PlainTextResponse(f"dash {request.user.display_name}")

    @requires("admin")
    def post(self, request: Request) -> Response:
        return PlainTextResponse("posted")


@requires("chat")
async def chat(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(f"hello {websocket.user.display_name}")
    await websocket.close()


async def keyword_call(request: Request) -> Response:
    # The guarded function called with its connection as a keyword argument.
    return await async_page(request=request)  # type: ignore[no-any-return]


def make_app() -> Stellate:
    return Stellate(
        routes=[
            Route("/async", async_page),
            Route("/sync", sync_admin),
            Route("/hidden", hidden),
            Route("/redirect", with_redirect),
            Route("/login", login, name="login"),
            Route("/dashboard", Dashboard),
            Route("/keyword", keyword_call),
            WebSocketRoute("/chat", chat),
        ],
        middleware=[Middleware(AuthenticationMiddleware, backend=TokenBackend())],
    )


def test_requires_async_endpoint(test_client_factory: Client) -> None:
    client = test_client_factory(make_app())
    assert client.get("/async").status_code == 403
    response = client.get("/async", headers=auth("ada:x"))
    assert response.json() == {"user": "ada", "scopes": ["authenticated", "x"]}
    assert client.get("/keyword", headers=auth("ada")).json()["user"] == "ada"
    assert client.get("/keyword").status_code == 403


def test_requires_sync_endpoint_needs_every_scope(test_client_factory: Client) -> None:
    client = test_client_factory(make_app())
    assert client.get("/sync").status_code == 403
    assert client.get("/sync", headers=auth("ada")).status_code == 403
    response = client.get("/sync", headers=auth("ada:admin"))
    assert (response.status_code, response.text) == (200, "admin ada")


def test_requires_custom_status_code(test_client_factory: Client) -> None:
    client = test_client_factory(make_app())
    assert client.get("/hidden", headers=auth("ada")).status_code == 404
    assert client.get("/hidden", headers=auth("ada:admin")).text == "hidden"


def test_requires_redirect_keeps_the_original_url(test_client_factory: Client) -> None:
    client = test_client_factory(make_app(), follow_redirects=False)
    response = client.get("/redirect?a=1")
    assert response.status_code == 303
    assert response.headers["location"] == (
        "http://testserver/login?next=http%3A%2F%2Ftestserver%2Fredirect%3Fa%3D1"
    )
    assert client.get("/redirect", headers=auth("ada")).text == "secret"


def test_requires_on_http_endpoint_methods(test_client_factory: Client) -> None:
    client = test_client_factory(make_app())
    assert client.get("/dashboard").status_code == 403
    assert client.get("/dashboard", headers=auth("bob")).text == "dash bob"
    assert client.post("/dashboard", headers=auth("bob")).status_code == 403
    assert client.post("/dashboard", headers=auth("bob:admin")).text == "posted"


def test_requires_refuses_websocket_with_a_close(test_client_factory: Client) -> None:
    client = test_client_factory(make_app())
    with (
        pytest.raises(WebSocketDisconnect) as info,
        client.websocket_connect("/chat", headers=auth("ada")),
    ):
        pass  # pragma: no cover
    assert info.value.code == 1008
    with client.websocket_connect("/chat", headers=auth("ada:chat")) as session:
        assert session.receive_text() == "hello ada"


def test_requires_rejects_a_non_connection_argument() -> None:
    @requires("a")
    def endpoint(request: Any) -> Response:  # pragma: no cover
        return PlainTextResponse("")

    with pytest.raises(TypeError, match="expected a Request or WebSocket"):
        endpoint("not a request")
