"""SessionMiddleware and Session: signed cookies, change tracking, Vary, bad cookies."""

from __future__ import annotations

import json
from base64 import b64encode
from collections.abc import Callable
from typing import Any

import anyio
import itsdangerous
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stellate.applications import Stellate
from stellate.datastructures import Secret
from stellate.middleware import Middleware
from stellate.middleware.sessions import Session, SessionMiddleware
from stellate.requests import Request
from stellate.responses import JSONResponse, PlainTextResponse, Response
from stellate.routing import Route, WebSocketRoute
from stellate.types import Message, Receive, Scope, Send
from stellate.websockets import WebSocket

Client = Callable[..., Any]
SECRET = "s3cret"


# --------------------------------------------------------------------------- Session


def test_reads_and_changes_that_change_nothing_mark_nothing() -> None:
    reads: list[Callable[[Session], Any]] = [
        lambda s: s["a"],
        lambda s: s.get("a"),
        lambda s: "a" in s,
        lambda s: list(s),
        lambda s: len(s),
        lambda s: s.keys(),
        lambda s: s.values(),
        lambda s: s.items(),
        lambda s: repr(s),
        lambda s: s.pop("missing", None),
        lambda s: s.setdefault("a", 5),
    ]
    for read in reads:
        session = Session({"a": 1})
        assert (session.accessed, session.modified) == (False, False)
        read(session)
        assert (session.accessed, session.modified) == (False, False), read
    with pytest.raises(KeyError):
        Session().pop("missing")
    missing = Session()
    with pytest.raises(KeyError):
        missing.pop("missing")
    assert (missing.accessed, missing.modified) == (False, False)


def test_clearing_an_empty_session_is_a_change() -> None:
    empty = Session()
    empty.clear()
    assert (empty.accessed, empty.modified) == (True, True)


def test_every_mutation_marks_modified() -> None:
    def ior(s: Session) -> None:
        s |= {"b": 2}

    def delete(s: Session) -> None:
        del s["a"]

    mutations: list[Callable[[Session], Any]] = [
        lambda s: s.__setitem__("a", 2),
        lambda s: s.update(b=2),
        lambda s: s.update({"b": 2}),
        lambda s: s.pop("a"),
        lambda s: s.pop("a", None),
        lambda s: s.popitem(),
        lambda s: s.clear(),
        lambda s: s.setdefault("new", 1),
        ior,
        delete,
    ]
    for mutate in mutations:
        session = Session({"a": 1})
        mutate(session)
        assert (session.accessed, session.modified) == (True, True), mutate


def test_session_behaves_like_a_dict() -> None:
    session = Session({"a": 1})
    assert session.pop("a") == 1
    with pytest.raises(KeyError):
        session.pop("a")
    assert session.pop("a", "default") == "default"
    session |= {"x": 1}
    assert isinstance(session, Session)
    assert session.popitem() == ("x", 1)
    with pytest.raises(KeyError):
        session.popitem()
    assert repr(Session({"k": "v"})) == "Session({'k': 'v'})"


def test_mark_methods() -> None:
    session = Session()
    session.mark_accessed()
    assert (session.accessed, session.modified) == (True, False)
    session.mark_modified()
    assert (session.accessed, session.modified) == (True, True)


# --------------------------------------------------------------------------- in an app


async def view(request: Request) -> Response:
    return JSONResponse(dict(request.session.items()))


async def update(request: Request) -> Response:
    request.session.update(await request.json())
    return PlainTextResponse("updated")


async def clear(request: Request) -> Response:
    request.session.clear()
    return PlainTextResponse("cleared")


async def set_then_pop(request: Request) -> Response:
    request.session["temporary"] = 1
    request.session.pop("temporary")
    return PlainTextResponse("nothing left")


async def untouched(request: Request) -> Response:
    return PlainTextResponse("untouched")


async def fetch_only(request: Request) -> Response:
    session = request.session
    return PlainTextResponse(type(session).__name__)


async def replace(request: Request) -> Response:
    request.scope["session"] = {"replaced": True}
    return PlainTextResponse("replaced")


async def ws_view(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json(dict(websocket.session.items()))
    websocket.session["ignored"] = 1
    await websocket.close()


ROUTES = [
    Route("/", view),
    Route("/update", update, methods=["POST"]),
    Route("/clear", clear, methods=["POST"]),
    Route("/untouched", untouched),
    Route("/fetch-only", fetch_only),
    Route("/set-then-pop", set_then_pop),
    Route("/replace", replace),
    WebSocketRoute("/ws", ws_view),
]


def make_app(**options: Any) -> Stellate:
    options.setdefault("secret_key", SECRET)
    return Stellate(routes=ROUTES, middleware=[Middleware(SessionMiddleware, **options)])


def set_cookies(response: Any) -> list[str]:
    return list(response.headers.get_list("set-cookie"))


def test_round_trip_and_headers(test_client_factory: Client) -> None:
    client = test_client_factory(make_app())
    response = client.get("/")
    assert response.json() == {}
    assert set_cookies(response) == []
    assert response.headers["vary"] == "Cookie"

    response = client.post("/update", json={"user": "ada", "n": 1})
    (cookie,) = set_cookies(response)
    value = cookie.partition(";")[0].removeprefix("session=")
    assert cookie == f"session={value}; path=/; Max-Age=1209600; httponly; samesite=lax"
    assert client.get("/").json() == {"user": "ada", "n": 1}

    # Not read, not changed: no Set-Cookie and no Vary.
    response = client.get("/untouched")
    assert set_cookies(response) == []
    assert "vary" not in response.headers

    # Emptied: the cookie is deleted.
    response = client.post("/clear")
    (deletion,) = set_cookies(response)
    assert deletion == (
        "session=null; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT; httponly; samesite=lax"
    )
    assert client.get("/").json() == {}


def test_fetching_the_session_is_an_access(test_client_factory: Client) -> None:
    response = test_client_factory(make_app()).get("/fetch-only")
    assert response.text == "Session"
    assert response.headers["vary"] == "Cookie"
    assert set_cookies(response) == []


def test_clearing_an_absent_session_sets_nothing(test_client_factory: Client) -> None:
    response = test_client_factory(make_app()).post("/clear")
    assert set_cookies(response) == []
    # Changed, but empty at the end and no cookie to delete: still nothing to say.
    response = test_client_factory(make_app()).get("/set-then-pop")
    assert set_cookies(response) == []
    assert response.headers["vary"] == "Cookie"


def test_cookie_options(test_client_factory: Client) -> None:
    app = make_app(
        secret_key=Secret(SECRET),
        session_cookie="sid",
        max_age=None,
        path="/app",
        same_site="strict",
        https_only=True,
        domain="example.com",
        partitioned=True,
    )
    client = test_client_factory(app, base_url="https://example.com")
    response = client.post("/update", json={"a": 1})
    (cookie,) = set_cookies(response)
    value = cookie.partition(";")[0].removeprefix("sid=")
    flags = "httponly; samesite=strict; secure; domain=example.com; partitioned"
    assert cookie == f"sid={value}; path=/app; {flags}"
    client.cookies.set("sid", value)
    (deletion,) = set_cookies(client.post("/clear"))
    assert deletion == f"sid=null; path=/app; expires=Thu, 01 Jan 1970 00:00:00 GMT; {flags}"


def test_max_age_zero_is_sent(test_client_factory: Client) -> None:
    response = test_client_factory(make_app(max_age=0)).post("/update", json={"a": 1})
    (cookie,) = set_cookies(response)
    assert "Max-Age=0" in cookie.split("; ")


def test_replaced_session_object_is_saved(test_client_factory: Client) -> None:
    client = test_client_factory(make_app())
    response = client.get("/replace")
    assert len(set_cookies(response)) == 1
    assert client.get("/").json() == {"replaced": True}


def signed(data: Any, key: str = SECRET, raw: bytes | None = None) -> str:
    payload = raw if raw is not None else b64encode(json.dumps(data).encode())
    return itsdangerous.TimestampSigner(key).sign(payload).decode()


def test_valid_foreign_cookie_is_read(test_client_factory: Client) -> None:
    client = test_client_factory(make_app(), cookies={"session": signed({"x": 1})})
    assert client.get("/").json() == {"x": 1}


@pytest.mark.parametrize(
    "cookie",
    [
        "garbage",
        "",
        signed({"x": 1})[:-3],
        signed({"x": 1}, key="other-key"),
        signed({"x": 1}).replace("eyJ", "eyK"),
        signed(None, raw=b"!!!not base64"),
        signed(None, raw=b64encode(b"\xff\xfe")),
        signed(None, raw=b64encode(b"{not json")),
        signed(["a", "list"]),
        signed("a string"),
        '"' + signed({"x": 1}) + "x" + '"',
    ],
    # Signed values hold a timestamp: ids by position keep collection the same in every
    # pytest-xdist worker.
    ids=lambda cookie: None if cookie in ("garbage", "") else "signed",
)
def test_bad_cookies_give_an_empty_session(test_client_factory: Client, cookie: str) -> None:
    client = test_client_factory(make_app(), cookies={"session": cookie})
    response = client.get("/")
    assert (response.status_code, response.json()) == (200, {})
    # Unchanged: the bad cookie is left alone rather than rewritten.
    assert set_cookies(response) == []


def test_expired_cookie_gives_an_empty_session(
    test_client_factory: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    cookie = signed({"x": 1})
    client = test_client_factory(make_app(max_age=60), cookies={"session": cookie})
    assert client.get("/").json() == {"x": 1}
    real_time = itsdangerous.TimestampSigner.get_timestamp
    monkeypatch.setattr(
        itsdangerous.TimestampSigner, "get_timestamp", lambda self: real_time(self) + 61
    )
    assert client.get("/").json() == {}


def test_other_cookies_are_not_confused_with_the_session(test_client_factory: Client) -> None:
    client = test_client_factory(
        make_app(), cookies={"session_id": signed({"no": 1}), "xsession": signed({"no": 2})}
    )
    assert client.get("/").json() == {}


def test_websocket_reads_the_session(test_client_factory: Client) -> None:
    client = test_client_factory(make_app())
    client.post("/update", json={"ws": "yes"})
    with client.websocket_connect("/ws") as session:
        assert session.receive_json() == {"ws": "yes"}
    assert client.get("/").json() == {"ws": "yes"}


def test_404_inside_the_app(test_client_factory: Client) -> None:
    response = test_client_factory(make_app()).get("/missing")
    assert response.status_code == 404
    assert set_cookies(response) == []


def test_bad_cookie_options_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="Cookie name"):
        SessionMiddleware(view, secret_key=SECRET, session_cookie="bad name")
    with pytest.raises(ValueError, match="path"):
        SessionMiddleware(view, secret_key=SECRET, path="/a;b")


# --------------------------------------------------------------------------- bare ASGI


@pytest.mark.anyio
async def test_bare_asgi_wrapper() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        scope["session"]["count"] = scope["session"].get("count", 0) + 1
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"ok"})

    middleware = SessionMiddleware(app, secret_key=SECRET)
    sent: list[Message] = []

    async def receive() -> Message:  # pragma: no cover
        raise AssertionError

    async def send(message: Message) -> None:
        sent.append(message)

    await middleware({"type": "lifespan"}, receive, send)
    assert sent == []
    cookie = b"other=1; session=" + signed({"count": 41}).encode() + b"; last=2"
    scope = {"type": "http", "headers": [(b"cookie", cookie)]}
    with anyio.fail_after(5):
        await middleware(scope, receive, send)
    headers = dict(sent[0]["headers"])
    assert headers[b"vary"] == b"Cookie"
    value = headers[b"set-cookie"].split(b";")[0].removeprefix(b"session=")
    data = itsdangerous.TimestampSigner(SECRET).unsign(value)
    assert json.loads(__import__("base64").b64decode(data)) == {"count": 42}
    assert sent[1]["body"] == b"ok"


# --------------------------------------------------------------------------- properties


@pytest.mark.anyio
@given(
    cookie=st.binary(max_size=200).filter(lambda b: b";" not in b)
    | st.builds(lambda s, n: s[:n], st.just(signed({"a": 1}).encode()), st.integers(0, 80))
)
async def test_any_cookie_value_gives_a_session(cookie: bytes) -> None:
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(dict(scope["session"].items()))
        await PlainTextResponse("ok")(scope, receive, send)

    sent: list[Message] = []

    async def receive() -> Message:  # pragma: no cover
        raise AssertionError

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "headers": [(b"cookie", b"session=" + cookie)]}
    await SessionMiddleware(app, secret_key=SECRET)(scope, receive, send)
    assert sent[0]["status"] == 200
    assert seen in ([{}], [{"a": 1}])
