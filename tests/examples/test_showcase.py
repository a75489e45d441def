"""The showcase application (examples/showcase/): every page, API and live part, both backends."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx
import pytest
from examples.showcase import app as app_module
from examples.showcase.accounts import check_password, safe_next
from examples.showcase.app import create_app
from examples.showcase.chat import ChatRoom
from examples.showcase.feed import Feed
from examples.showcase.store import MAX_UPLOAD_SIZE

from stellate.requests import HTTPConnection
from stellate.testing.client import AsyncTestClient
from stellate.websockets import WebSocketDisconnect

Factory = Callable[..., Any]


def new_app(**kwargs: Any) -> Any:
    kwargs.setdefault("secret_key", "test-secret")
    kwargs.setdefault("heartbeat", 0)
    return create_app(**kwargs)


def log_in(client: Any, username: str = "ada", password: str = "lovelace") -> httpx.Response:
    response: httpx.Response = client.post(
        "/login", data={"username": username, "password": password}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    return response


# --- pages and static files -------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "marker"),
    [
        ("/", "Welcome to the stellate showcase"),
        ("/upload", 'enctype="multipart/form-data"'),
        ("/login", "Demo accounts"),
        ("/chat", 'src="http://testserver/static/chat.js"'),
        ("/feed", 'src="http://testserver/static/feed.js"'),
        ("/graphql-console", 'src="http://testserver/static/graphql.js"'),
    ],
)
def test_every_page_renders_with_the_layout(
    test_client_factory: Factory, path: str, marker: str
) -> None:
    with test_client_factory(new_app()) as client:
        response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert marker in response.text
    # The layout: the stylesheet through url_for("static"), and the anonymous nav link.
    assert '<link rel="stylesheet" href="http://testserver/static/style.css">' in response.text
    assert '<a href="http://testserver/login" id="who">Log in</a>' in response.text
    # Nothing is loaded from anywhere else (no CDN: the showcase works offline).
    references = re.findall(r'(?:src|href)="([^"]*)"', response.text)
    assert references
    assert [ref for ref in references if not ref.startswith("http://testserver/")] == []


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("style.css", "text/css; charset=utf-8"),
        ("chat.js", "text/javascript; charset=utf-8"),
        ("feed.js", "text/javascript; charset=utf-8"),
        ("graphql.js", "text/javascript; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ],
)
def test_static_files_are_served_with_validators(
    test_client_factory: Factory, name: str, media_type: str
) -> None:
    with test_client_factory(new_app()) as client:
        response = client.get(f"/static/{name}")
        assert response.status_code == 200
        assert response.headers["content-type"] == media_type
        if name != "favicon.svg":  # (its xmlns is a name, not a download)
            # No string or url() naming another host, no @import.
            assert re.search(r"""['"`(]\s*(?:https?:)?//|@import""", response.text) is None
        again = client.get(f"/static/{name}", headers={"If-None-Match": response.headers["etag"]})
        assert again.status_code == 304
        assert again.content == b""


def test_static_files_do_not_leak_the_application(test_client_factory: Factory) -> None:
    with test_client_factory(new_app()) as client:
        for path in ("/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py"):
            response = client.get(path)
            assert response.status_code == 404, path
            assert "def create_app" not in response.text


def test_errors_are_pages_outside_the_api_and_json_inside(test_client_factory: Factory) -> None:
    with test_client_factory(new_app()) as client:
        page = client.get("/no/such/page")
        api = client.get("/api/no-such-thing")
        wrong_method = client.put("/api/notes", json={})
        page_method = client.delete("/login")
    assert page.status_code == 404
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "<h1>404</h1>" in page.text
    assert api.status_code == 404
    assert api.json() == {"error": "Not Found"}
    assert wrong_method.status_code == 405
    assert wrong_method.json() == {"error": "Method Not Allowed"}
    assert set(wrong_method.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert page_method.status_code == 405
    assert "<h1>405</h1>" in page_method.text
    assert set(page_method.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


# --- notes: the HTML form and the JSON API ----------------------------------------------


def test_the_note_form_posts_then_redirects(test_client_factory: Factory) -> None:
    app = new_app()
    with test_client_factory(app) as client:
        response = client.post(
            "/notes", data={"text": "  <b>bold</b> move  "}, follow_redirects=False
        )
        assert response.status_code == 303
        assert response.headers["location"] == "http://testserver/"
        home = client.get("/")
        empty = client.post("/notes", data={"text": "   "})
    # Stored stripped, rendered escaped.
    assert '<span class="author">anonymous</span> &lt;b&gt;bold&lt;/b&gt; move</li>' in home.text
    assert empty.status_code == 400
    assert "&#39;text&#39; must not be empty" in empty.text
    assert [event.kind for event in app.state.feed.recent()] == ["note"]


def test_the_json_api_creates_reads_and_lists_notes(test_client_factory: Factory) -> None:
    with test_client_factory(new_app()) as client:
        created = client.post("/api/notes", json={"text": "first"})
        second = client.post("/api/notes", json={"text": "second"})
        assert created.status_code == 201
        assert created.headers["location"] == "http://testserver/api/notes/1"
        assert created.json()["text"] == "first"
        assert created.json()["author"] == "anonymous"
        assert client.get(created.headers["location"]).json() == created.json()
        listed = client.get("/api/notes").json()
        assert [note["text"] for note in listed["notes"]] == ["first", "second"]
        assert second.json()["id"] == 2
        missing = client.get("/api/notes/99")
        not_a_number = client.get("/api/notes/abc")
    assert missing.status_code == 404
    assert missing.json() == {"error": "There is no note #99."}
    assert not_a_number.status_code == 404  # the {note_id:int} convertor does not match


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (
            b"{not json",
            400,
            "The body is not valid JSON: Expecting property name enclosed in double quotes.",
        ),
        (b"[1, 2]", 422, 'Send a JSON object: {"text": "..."}.'),
        (b'{"text": 5}', 422, "'text' must be a string"),
        (b'{"text": ""}', 422, "'text' must not be empty"),
        (b'{"nothing": 1}', 422, "'text' must be a string"),
        (json.dumps({"text": "x" * 501}).encode(), 422, "'text' must be at most 500 characters"),
    ],
)
def test_the_json_api_says_what_is_wrong_with_a_note(
    test_client_factory: Factory, body: bytes, status: int, error: str
) -> None:
    app = new_app()
    with test_client_factory(app) as client:
        response = client.post(
            "/api/notes", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == status
    assert response.json() == {"error": error}
    assert len(app.state.notes) == 0


def test_deleting_a_note_requires_a_login(test_client_factory: Factory) -> None:
    app = new_app()
    with test_client_factory(app) as client:
        client.post("/api/notes", json={"text": "keep me?"})
        anonymous = client.delete("/api/notes/1")
        assert anonymous.status_code == 403
        assert anonymous.json() == {"error": "Forbidden"}
        log_in(client, "alan", "turing")
        deleted = client.delete("/api/notes/1")
        again = client.delete("/api/notes/1")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert again.status_code == 404
    assert len(app.state.notes) == 0
    assert app.state.feed.recent()[-1].text == "alan deleted note #1"


# --- uploads and supervised work ------------------------------------------------------


def test_an_upload_round_trips_and_is_hashed_by_a_supervised_task(
    test_client_factory: Factory,
) -> None:
    app = new_app()
    data = bytes(range(256)) * 33 + b"\r\n--boundary-lookalike\r\n"
    with test_client_factory(app) as client:
        response = client.post(
            "/upload",
            files={"file": ("../../résumé.bin", data, "application/x-demo")},
            data={"caption": "all the bytes"},
            follow_redirects=False,
        )
        assert response.status_code == 303
        assert response.headers["location"] == "http://testserver/upload"
        page = client.get("/upload")
        download = client.get("/uploads/1")
    # Leaving the block ran the lifespan's shutdown, which waited for app.tasks: the
    # hash is there, and the supervised task announced it on the feed.
    digest = hashlib.sha256(data).hexdigest()
    assert app.state.uploads.get(1).sha256 == digest
    assert [(e.kind, e.text) for e in app.state.feed.recent()] == [
        ("upload", f"anonymous uploaded résumé.bin ({len(data)} bytes)"),
        ("digest", f"résumé.bin: sha256 {digest}"),
    ]
    assert '<a href="http://testserver/uploads/1">résumé.bin</a>' in page.text
    assert f"{len(data)} bytes" in page.text
    assert "all the bytes" in page.text
    assert download.status_code == 200
    assert download.content == data
    assert download.headers["content-type"] == "application/x-demo"
    assert download.headers["content-disposition"] == (
        "inline; filename=\"r?sum?.bin\"; filename*=UTF-8''r%C3%A9sum%C3%A9.bin"
    )
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-security-policy"] == "sandbox"


def test_an_upload_without_a_file_is_refused_with_the_form_again(
    test_client_factory: Factory,
) -> None:
    app = new_app()
    with test_client_factory(app) as client:
        no_file = client.post("/upload", data={"caption": "nothing"})
        empty_name = client.post("/upload", files={"file": ("", b"", "text/plain")})
    for response in (no_file, empty_name):
        assert response.status_code == 400
        assert "Choose a file to upload." in response.text
    assert len(app.state.uploads) == 0


def test_a_file_over_the_limit_gets_413_and_is_not_kept(test_client_factory: Factory) -> None:
    app = new_app()
    with test_client_factory(app) as client:
        response = client.post(
            "/upload", files={"file": ("big.bin", b"x" * (MAX_UPLOAD_SIZE + 1), "text/plain")}
        )
        just_fits = client.post(
            "/upload",
            files={"file": ("fits.bin", b"y" * MAX_UPLOAD_SIZE, "text/plain")},
            follow_redirects=False,
        )
    assert response.status_code == 413
    assert "<h1>413</h1>" in response.text
    assert just_fits.status_code == 303
    assert [upload.filename for upload in app.state.uploads.all()] == ["fits.bin"]


@pytest.mark.parametrize(
    "size",
    [
        MAX_UPLOAD_SIZE + 1,  # refused by the handler
        MAX_UPLOAD_SIZE + 200 * 1024,  # refused by the route's body limit, before the handler
    ],
)
def test_the_upload_page_and_its_refusals_say_the_same_limit(
    test_client_factory: Factory, size: int
) -> None:
    """The page promises a size; every 413 for a larger file quotes that promise."""
    promise = "A file may hold at most 1 MiB (1,048,576 bytes)."
    with test_client_factory(new_app()) as client:
        page = client.get("/upload")
        refused = client.post("/upload", files={"file": ("big.bin", b"x" * size, "text/plain")})
    assert promise in page.text
    assert refused.status_code == 413
    assert promise in refused.text


def test_downloading_a_missing_upload_is_a_404_page(test_client_factory: Factory) -> None:
    with test_client_factory(new_app()) as client:
        response = client.get("/uploads/7")
    assert response.status_code == 404
    assert "No such upload" in response.text


# --- login, sessions, requires -----------------------------------------------------------


def test_log_in_visit_the_guarded_page_and_log_out(test_client_factory: Factory) -> None:
    app = new_app()
    with test_client_factory(app) as client:
        refused = client.get("/account", follow_redirects=False)
        assert refused.status_code == 303
        assert refused.headers["location"] == (
            "http://testserver/login?next=http%3A%2F%2Ftestserver%2Faccount"
        )
        form = client.get(refused.headers["location"])
        assert '<input type="hidden" name="next" value="http://testserver/account">' in form.text
        response = client.post(
            "/login",
            data={"username": "ada", "password": "lovelace", "next": "http://testserver/account"},
            follow_redirects=False,
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/account"
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("session=")
        assert "; httponly; samesite=lax" in cookie
        account = client.get("/account")
        assert account.status_code == 200
        assert "Hello, ada" in account.text
        assert '<code class="scope">admin</code>' in account.text
        assert client.get("/api/stats").json()["user"] == "ada"
        out = client.post("/logout", follow_redirects=False)
        assert out.status_code == 303
        assert out.headers["set-cookie"].startswith(
            "session=null; path=/; expires=Thu, 01 Jan 1970"
        )
        assert client.get("/account", follow_redirects=False).status_code == 303
        assert client.get("/api/stats").json()["user"] is None
    assert [e.text for e in app.state.feed.recent()] == ["ada logged in", "ada logged out"]


@pytest.mark.parametrize(
    ("username", "password"),
    [("ada", "turing"), ("nobody", "lovelace"), ("", ""), ("ADA", "lovelace")],
)
def test_a_wrong_login_is_refused_and_sets_no_cookie(
    test_client_factory: Factory, username: str, password: str
) -> None:
    with test_client_factory(new_app()) as client:
        response = client.post("/login", data={"username": username, "password": password})
        assert response.status_code == 400
        assert "Unknown user name or wrong password." in response.text
        assert "set-cookie" not in response.headers
        assert client.get("/account", follow_redirects=False).status_code == 303


def test_a_forged_session_cookie_is_anonymous(test_client_factory: Factory) -> None:
    with test_client_factory(new_app()) as client:
        log_in(client)
        good = client.cookies["session"]
    with test_client_factory(new_app(secret_key="another-secret")) as other:
        other.cookies.set("session", good)
        assert other.get("/account", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/chat", "/chat"),
        ("/chat?name=x", "/chat?name=x"),
        ("http://testserver/account", "/account"),
        ("http://testserver/a?b=c", "/a?b=c"),
        ("", "/default"),
        (None, "/default"),
        ("//evil.example/", "/default"),
        ("/\\evil.example/", "/default"),
        ("/\t/evil.example/", "/default"),
        ("https://testserver/account", "/default"),  # another scheme: another origin
        ("http://evil.example/account", "/default"),
        ("http://testserver//evil.example/", "/default"),
        ("javascript:alert(1)", "/default"),
        ("relative/path", "/default"),
    ],
)
def test_the_login_only_redirects_within_the_site(target: str | None, expected: str) -> None:
    conn = HTTPConnection(
        {
            "type": "http",
            "scheme": "http",
            "server": ("testserver", 80),
            "path": "/login",
            "headers": [(b"host", b"testserver")],
            "query_string": b"",
        }
    )
    assert safe_next(target, conn, "/default") == expected


def test_passwords_are_checked_exactly() -> None:
    assert check_password("ada", "lovelace")
    assert not check_password("ada", "lovelace ")
    assert not check_password("ada", "")
    assert not check_password("ghost", "\x00 no such user")


# --- the WebSocket chat -----------------------------------------------------------------


def test_chat_messages_reach_every_member(test_client_factory: Factory) -> None:
    app = new_app()
    with (
        test_client_factory(app) as client,
        client.websocket_connect("/ws/chat?name=ann") as ann,
    ):
        assert ann.receive_json() == {"type": "welcome", "user": "ann", "members": 1}
        assert ann.receive_json()["event"] == "joined"
        with client.websocket_connect("/ws/chat?name=bob") as bob:
            assert bob.receive_json() == {"type": "welcome", "user": "bob", "members": 2}
            assert bob.receive_json() == {
                "type": "presence",
                "user": "bob",
                "event": "joined",
                "members": 2,
            }
            assert ann.receive_json()["user"] == "bob"
            ann.send_text("hello bob")
            expected = {"type": "message", "user": "ann", "text": "hello bob"}
            assert ann.receive_json() == expected
            assert bob.receive_json() == expected
            bob.send_text("   ")  # blank: not broadcast
            bob.send_text("hi ann")
            assert ann.receive_json() == {"type": "message", "user": "bob", "text": "hi ann"}
        # Bob left: his session ended (both loops) before the block exited.
        assert ann.receive_json() == {
            "type": "presence",
            "user": "bob",
            "event": "left",
            "members": 1,
        }
        assert len(app.state.room) == 1
        # A newcomer gets the recent messages after its welcome.
        with client.websocket_connect("/ws/chat") as guest:
            assert guest.receive_json()["user"] == "guest"
            assert guest.receive_json()["text"] == "hello bob"
            assert guest.receive_json()["text"] == "hi ann"
    assert len(app.state.room) == 0


def test_a_logged_in_member_chats_under_their_login(test_client_factory: Factory) -> None:
    with test_client_factory(new_app()) as client:
        log_in(client, "alan", "turing")
        # The ?name= is ignored for a logged-in user: the session says who it is.
        with client.websocket_connect("/ws/chat?name=impostor") as alan:
            assert alan.receive_json()["user"] == "alan"
            alan.send_text("x" * 600)
            alan.receive_json()  # presence
            message = alan.receive_json()
    assert message["user"] == "alan"
    assert message["text"] == "x" * 500


def test_a_binary_frame_closes_the_chat_with_1003(test_client_factory: Factory) -> None:
    with (
        test_client_factory(new_app()) as client,
        client.websocket_connect("/ws/chat?name=eve") as eve,
    ):
        eve.receive_json()
        eve.receive_json()
        eve.send_bytes(b"\x00")
        with pytest.raises(WebSocketDisconnect) as info:
            eve.receive_text()
    assert info.value.code == 1003


# --- the live feed (SSE) ----------------------------------------------------------------


async def sse_events(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, str]]:
    """Parse an event stream into dicts of fields (comments, such as pings, skipped)."""
    fields: dict[str, str] = {}
    async for line in lines:
        if not line:
            if fields:
                yield fields
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


@pytest.mark.anyio
async def test_the_feed_streams_what_happens(anyio_backend: str) -> None:
    app = new_app()
    with anyio.fail_after(10):
        async with AsyncTestClient(app) as client:
            await client.post("/api/notes", json={"text": "before"})
            async with client.stream("GET", "/events") as response:
                assert response.status_code == 200
                assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
                assert response.headers["cache-control"] == "no-store"
                events = sse_events(response.aiter_lines())
                first = await anext(events)
                assert first["id"] == "1"
                assert json.loads(first["data"])["text"] == "anonymous added note #1 (API)"
                ping = await client.post("/api/ping")
                assert ping.status_code == 202
                second = await anext(events)
                assert second["id"] == str(ping.json()["id"]) == "2"
                assert json.loads(second["data"])["kind"] == "ping"
                assert app.state.feed.subscribers == 1
    # The client went away: the stream's generator was closed, which unsubscribed it.
    assert app.state.feed.subscribers == 0


@pytest.mark.anyio
async def test_the_feed_resumes_after_last_event_id(anyio_backend: str) -> None:
    app = new_app()
    for number in range(1, 5):
        app.state.feed.publish("test", f"event {number}")
    with anyio.fail_after(10):
        async with (
            AsyncTestClient(app) as client,
            client.stream("GET", "/events", headers={"Last-Event-ID": "2"}) as response,
        ):
            events = sse_events(response.aiter_lines())
            assert [(await anext(events))["id"] for _ in range(2)] == ["3", "4"]


@pytest.mark.anyio
async def test_the_heartbeat_ticks_and_stops_with_the_app(anyio_backend: str) -> None:
    app = new_app(heartbeat=0.01)
    with anyio.fail_after(10):
        async with (
            AsyncTestClient(app) as client,
            client.stream("GET", "/events") as response,
        ):
            event = await anext(sse_events(response.aiter_lines()))
            assert json.loads(event["data"])["kind"] == "tick"
        # Leaving the client ran the shutdown: the heartbeat was cancelled at once
        # (well inside the 10 s bound, though the heartbeat never ends by itself).


# --- GraphQL ------------------------------------------------------------------------------


def test_graphql_queries_and_mutations_share_the_notes(test_client_factory: Factory) -> None:
    app = new_app()
    with test_client_factory(app) as client:
        client.post("/api/notes", json={"text": "from REST"})
        log_in(client, "alan", "turing")
        added = client.post(
            "/graphql",
            json={
                "query": "mutation Add($t: String!) { addNote(text: $t) { id author } }",
                "variables": {"t": "from GraphQL"},
            },
        )
        queried = client.post(
            "/graphql", json={"query": "{ notes { id text } me note(id: 9) { id } }"}
        )
        rest = client.get("/api/notes").json()
        invalid = client.post("/graphql", json={"query": 'mutation { addNote(text: " ") { id } }'})
        broken = client.post("/graphql", json={"query": "{ notes { nope } }"})
    assert added.json() == {"data": {"addNote": {"id": 2, "author": "alan"}}}
    assert queried.json() == {
        "data": {
            "notes": [{"id": 1, "text": "from REST"}, {"id": 2, "text": "from GraphQL"}],
            "me": "alan",
            "note": None,
        }
    }
    assert [note["text"] for note in rest["notes"]] == ["from REST", "from GraphQL"]
    assert invalid.status_code == 200
    assert invalid.json()["data"] is None
    assert invalid.json()["errors"][0]["message"] == "'text' must not be empty"
    assert broken.status_code == 400
    assert "nope" in broken.json()["errors"][0]["message"]
    assert app.state.feed.recent()[-1].text == "alan added note #2 (GraphQL)"


def test_graphql_serves_graphiql_from_the_showcase_itself(test_client_factory: Factory) -> None:
    """GraphiQL's assets are package data now, so the showcase can offer it offline."""
    with test_client_factory(new_app()) as client:
        response = client.get("/graphql", headers={"accept": "text/html"})
        sources = re.findall(r'(?:src|href)="([^"]+)"', response.text)
        assets = [client.get("/graphql" + source.replace("&amp;", "&")) for source in sources]
    assert "<title>GraphiQL</title>" in response.text
    assert len(sources) == 4
    assert all(source.startswith("?graphiql_asset=") for source in sources), sources
    assert [asset.status_code for asset in assets] == [200] * 4


def test_the_served_app_is_built_at_import(test_client_factory: Factory) -> None:
    # `scripts/serve` (and `scripts/serve showcase.app:app`) serves this object.
    with test_client_factory(app_module.app) as client:
        assert client.get("/").status_code == 200
        assert client.get("/api/stats").json()["supervised_tasks"] == []


def test_graphql_subscribes_to_the_feed_over_websocket(test_client_factory: Factory) -> None:
    app = new_app()
    with test_client_factory(app) as client:
        client.post("/api/ping")
        with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            ws.send_json({"type": "connection_init"})
            assert ws.receive_json() == {"type": "connection_ack"}
            query = "subscription { feed(after: 0) }"
            ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": query}})
            # The kept event first (published before the subscription existed)...
            assert ws.receive_json() == {
                "id": "1",
                "type": "next",
                "payload": {"data": {"feed": "anonymous said ping"}},
            }
            # ...then the live ones.
            client.post("/api/notes", json={"text": "live"})
            assert ws.receive_json()["payload"] == {
                "data": {"feed": "anonymous added note #1 (API)"}
            }
            ws.send_json({"id": "1", "type": "complete"})
        assert app.state.feed.subscribers == 0


# --- the room and the feed as data ----------------------------------------------------------


@pytest.mark.anyio
async def test_the_feed_drops_a_subscriber_that_falls_behind(anyio_backend: str) -> None:
    feed = Feed(history=3, backlog=1)
    for number in range(5):
        feed.publish("old", str(number))
    assert [event.id for event in feed.recent()] == [3, 4, 5]  # only the last 3 kept
    async with feed.subscribe(after=4) as slow, feed.subscribe(after=99) as fast:
        feed.publish("new", "a")  # fills both inboxes (backlog 1)
        assert feed.subscribers == 2
        feed.publish("new", "b")  # finds them full: both are dropped, nobody waits
        assert feed.subscribers == 0
        # A dropped subscriber still gets what it had, then its stream ends.
        assert [event.id async for event in slow] == [5, 6]
        assert [event.text async for event in fast] == ["a"]


@pytest.mark.anyio
async def test_a_chat_newcomer_gets_welcome_then_history(anyio_backend: str) -> None:
    room = ChatRoom(history=2)
    for text in ("one", "two", "three"):
        room.say("ann", text)
    async with room.join("bob") as inbox:
        received = [json.loads(inbox.receive_nowait()) for _ in range(4)]
        with pytest.raises(anyio.WouldBlock):
            inbox.receive_nowait()
    assert received == [
        {"type": "welcome", "user": "bob", "members": 1},
        {"type": "message", "user": "ann", "text": "two"},
        {"type": "message", "user": "ann", "text": "three"},
        {"type": "presence", "user": "bob", "event": "joined", "members": 1},
    ]
    assert len(room) == 0
