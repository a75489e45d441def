"""Session cookies a client forged, altered, borrowed from another app, or kept too long.

Every such cookie gives an empty session (the user is logged out), never an error and
never the data it claims: the signature covers the whole payload and its timestamp, and
the timestamp is checked against ``max_age``. Each test drives a whole application
through TestClient on both backends.

Replaying a cookie that is still within ``max_age`` *is* accepted: a signed cookie is a
bearer token that the server cannot revoke (SECURITY.md says so). Applications that need
revocation keep a server-side session id in it instead.
"""

from __future__ import annotations

import json
import time
from base64 import b64encode
from collections.abc import Callable
from typing import Any

import itsdangerous

from stellate.applications import Stellate
from stellate.middleware import Middleware
from stellate.middleware.sessions import SessionMiddleware
from stellate.requests import Request
from stellate.responses import JSONResponse, Response
from stellate.routing import Route

Client = Callable[..., Any]
KEY = "the-real-secret"
MAX_AGE = 3600


async def whoami(request: Request) -> Response:
    return JSONResponse({"session": dict(request.session)})


async def login(request: Request) -> Response:
    request.session["user"] = "alice"
    request.session["admin"] = False
    return JSONResponse({"ok": True})


def make_app(secret: str = KEY) -> Stellate:
    return Stellate(
        routes=[Route("/", whoami), Route("/login", login)],
        middleware=[Middleware(SessionMiddleware, secret_key=secret, max_age=MAX_AGE)],
    )


class _SignerAt(itsdangerous.TimestampSigner):
    """Signs as if the clock read ``at``."""

    def __init__(self, secret: str, at: float) -> None:
        super().__init__(secret)
        self.at = at

    def get_timestamp(self) -> int:
        return int(self.at)


def forge(payload: Any, secret: str = KEY, at: float | None = None) -> str:
    data = b64encode(json.dumps(payload).encode())
    signer = _SignerAt(secret, time.time() if at is None else at)
    return signer.sign(data).decode("ascii")


def session_of(client: Any, cookie: str | None) -> Any:
    client.cookies.clear()
    headers = {} if cookie is None else {"cookie": f"session={cookie}".encode("latin-1")}
    response = client.get("/", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["session"]


def test_a_genuine_cookie_works(test_client_factory: Client) -> None:
    """The control: a cookie the app signed itself is read back."""
    with test_client_factory(make_app()) as client:
        client.get("/login")
        cookie = client.cookies["session"]
        assert session_of(client, cookie) == {"user": "alice", "admin": False}
        assert session_of(client, forge({"user": "bob"})) == {"user": "bob"}


def test_tampered_payload_is_ignored(test_client_factory: Client) -> None:
    with test_client_factory(make_app()) as client:
        client.get("/login")
        genuine = client.cookies["session"]
        payload, timestamp, signature = genuine.split(".")
        escalated = b64encode(json.dumps({"user": "alice", "admin": True}).encode()).decode()
        for cookie in [
            f"{escalated}.{timestamp}.{signature}",
            f"{payload}.{timestamp}x.{signature}",
            f"{payload}.{timestamp}.{signature[:-1]}",
            f"{payload}.{timestamp}.",
            f"{payload}.{timestamp}",
            payload,
            f"{payload[:-4]}.{timestamp}.{signature}",
            genuine.upper(),
            "",
            ".",
            "..",
            "x" * 4000,
            "\u00e9\u00e9.\u00e9.\u00e9".encode().decode("latin-1"),
        ]:
            assert session_of(client, cookie) == {}, cookie


def test_cookie_signed_with_another_key_is_ignored(test_client_factory: Client) -> None:
    with test_client_factory(make_app()) as client:
        assert session_of(client, forge({"user": "mallory", "admin": True}, "another-key")) == {}
        assert session_of(client, forge({"user": "mallory"}, "")) == {}
        assert session_of(client, forge({"user": "mallory"}, KEY + " ")) == {}


def test_expired_cookie_replayed_is_ignored(test_client_factory: Client) -> None:
    now = time.time()
    with test_client_factory(make_app()) as client:
        assert session_of(client, forge({"user": "alice"}, at=now - MAX_AGE + 60)) == {
            "user": "alice"
        }, "still within max_age"
        assert session_of(client, forge({"user": "alice"}, at=now - MAX_AGE - 60)) == {}
        assert session_of(client, forge({"user": "alice"}, at=now + 10**9)) == {}, (
            "a timestamp from the future is not a way around max_age"
        )


def test_validly_signed_non_objects_give_an_empty_session(test_client_factory: Client) -> None:
    with test_client_factory(make_app()) as client:
        for payload in [[1, 2], "user", 1, None, True]:
            assert session_of(client, forge(payload)) == {}, payload
        signer = itsdangerous.TimestampSigner(KEY)
        for raw in [b"not base64!", b64encode(b"\xff\xfe"), b64encode(b"{not json")]:
            assert session_of(client, signer.sign(raw).decode("latin-1")) == {}, raw


def test_the_session_cookie_is_httponly_samesite_and_expires(
    test_client_factory: Client,
) -> None:
    with test_client_factory(make_app()) as client:
        response = client.get("/login")
    cookie = response.headers["set-cookie"]
    assert "; httponly" in cookie
    assert "; samesite=lax" in cookie
    assert f"; Max-Age={MAX_AGE}; " in cookie
