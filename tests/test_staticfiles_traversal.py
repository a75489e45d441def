"""No request can read outside the served directory: a corpus of hostile paths.

Each path is tried two ways, on both backends:

* through TestClient, as a client would send it (percent-encoded; httpx itself removes
  literal ``..`` segments, which is why they are percent-encoded here), and
* straight into the ASGI app with the *decoded* path a server would put in the scope,
  so literal ``..``, backslashes, NUL bytes and absolute paths reach StaticFiles as is.

Every one must answer 404 (or 400), never the secret, and never raise (TestClient re-raises
server errors, so a 500 fails the test).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import pytest

from stellate.applications import Stellate
from stellate.exceptions import HTTPException
from stellate.routing import Mount
from stellate.staticfiles import StaticFiles
from stellate.types import Message, Scope

ClientFactory = Callable[..., Any]
SECRET = "TOP-SECRET-CONTENT"


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    """tmp/public (served) beside tmp/secret.txt and tmp/private/ (not served)."""
    public = tmp_path / "public"
    (public / "sub").mkdir(parents=True)
    (public / "a.txt").write_text("public a")
    (public / "sub" / "b.txt").write_text("public b")
    (public / "404.html").write_text("not here")
    (tmp_path / "secret.txt").write_text(SECRET)
    private = tmp_path / "private"
    private.mkdir()
    (private / "secret2.txt").write_text(SECRET)
    (public / "link").symlink_to(tmp_path / "secret.txt")
    (public / "dirlink").symlink_to(private)
    (tmp_path / "public-evil").mkdir()  # shares a prefix with the served directory
    (tmp_path / "public-evil" / "x.txt").write_text(SECRET)
    return tmp_path


def encoded_corpus(root: Path) -> list[str]:
    """Paths as a client sends them (the server percent-decodes them once)."""
    absolute = quote(str(root / "secret.txt"))
    return [
        "/static/%2e%2e/secret.txt",
        "/static/%2E%2E/secret.txt",
        "/static/.%2e/secret.txt",
        "/static/%2e./secret.txt",
        "/static/..%2fsecret.txt",
        "/static/%2e%2e%2fsecret.txt",
        "/static/sub/%2e%2e/%2e%2e/secret.txt",
        "/static/sub%2f%2e%2e%2f%2e%2e%2fsecret.txt",
        "/static/" + "%2e%2e/" * 30 + "etc/passwd",
        "/static/%2e%2e/public-evil/x.txt",
        "/static/%2e%2e/private/secret2.txt",
        # double-encoded: decoded once they are names containing "%2e", not dots
        "/static/%252e%252e/secret.txt",
        "/static/%252e%252e%252fsecret.txt",
        "/static/..%252fsecret.txt",
        # backslashes
        "/static/..%5csecret.txt",
        "/static/%5c..%5csecret.txt",
        "/static/sub%5c..%5c..%5csecret.txt",
        "/static/..%255csecret.txt",
        # absolute paths
        "/static/%2fetc%2fpasswd",
        "/static//etc/passwd",
        "/static/" + absolute,
        "/static/%2f" + absolute,
        # null bytes
        "/static/a.txt%00",
        "/static/a.txt%00.png",
        "/static/%00",
        "/static/%2e%2e%00/secret.txt",
        # drive letters and streams
        "/static/C:%5cWindows%5cwin.ini",
        "/static/C:/Windows/win.ini",
        "/static/c%3a%5csecret.txt",
        "/static/a.txt::$DATA",
        # overlong and odd encodings
        "/static/%c0%ae%c0%ae/secret.txt",
        "/static/%e0%80%ae%e0%80%ae/secret.txt",
        "/static/%u002e%u002e/secret.txt",
        # symlinks out of the directory
        "/static/link",
        "/static/dirlink/secret2.txt",
        "/static/dirlink/",
        # names the OS cannot take
        "/static/" + "a" * 5000,
        "/static/" + "/".join(["d"] * 3000),
    ]


def decoded_corpus(root: Path) -> list[str]:
    """Paths as they reach the app once a server has decoded them."""
    return [
        "/static/../secret.txt",
        "/static/../../../../../../etc/passwd",
        "/static/sub/../../secret.txt",
        "/static/./../secret.txt",
        "/static/sub/./.././../secret.txt",
        "/static/../public-evil/x.txt",
        "/static/../private/secret2.txt",
        "/static/%2e%2e/secret.txt",
        "/static/..\\secret.txt",
        "/static/\\..\\secret.txt",
        "/static/sub\\..\\..\\secret.txt",
        "/static//" + str(root / "secret.txt"),
        "/static/" + str(root / "secret.txt"),
        "/static/a.txt\x00",
        "/static/\x00/../secret.txt",
        "/static/..\x00/secret.txt",
        "/static/C:\\secret.txt",
        "/static/C:/secret.txt",
        "/static/link",
        "/static/dirlink/secret2.txt",
        "/static/" + "a" * 5000,
        "/static/" + "../" * 5000 + "etc/passwd",
        "/static/\udcff/../../secret.txt",
    ]


def check(status: int, body: bytes, path: str) -> None:
    assert status in (400, 404), (path, status)
    assert SECRET.encode() not in body, path


@pytest.mark.parametrize("html", [False, True], ids=["plain", "html"])
def test_encoded_paths_never_escape(
    test_client_factory: ClientFactory, layout: Path, html: bool
) -> None:
    app = Stellate(
        routes=[Mount("/static", app=StaticFiles(directory=layout / "public", html=html))]
    )
    client = test_client_factory(app)
    assert client.get("/static/a.txt").text == "public a"  # the fixture serves
    assert client.get("/static/sub/%2e%2e/a.txt").text == "public a"  # ".." inside is fine
    for path in encoded_corpus(layout):
        for method in ("GET", "HEAD"):
            response = client.request(method, path)
            check(response.status_code, response.content, path)
            if html and method == "GET":
                assert response.text == "not here", path


def test_standalone_encoded_paths_never_escape(
    test_client_factory: ClientFactory, layout: Path
) -> None:
    # Standalone, StaticFiles raises its 404s as HTTPException (as Starlette).
    client = test_client_factory(StaticFiles(directory=layout / "public"))
    for path in encoded_corpus(layout):
        try:
            response = client.get(path.removeprefix("/static"))
        except HTTPException as exc:
            check(exc.status_code, b"", path)
        else:
            check(response.status_code, response.content, path)


async def call(app: Any, path: str, method: str = "GET") -> tuple[int, bytes]:
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
        "state": {},
    }
    messages: list[Message] = []
    requests = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Message:
        if requests:
            return requests.pop()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        messages.append(message)

    with anyio.fail_after(5):
        try:
            await app(scope, receive, send)
        except HTTPException as exc:  # a standalone StaticFiles raises them (as Starlette)
            return exc.status_code, b""
    status = messages[0]["status"]
    body = b"".join(m.get("body", b"") for m in messages[1:])
    return status, body


@pytest.mark.anyio
@pytest.mark.parametrize("follow_symlink", [False, True], ids=["strict", "follow"])
async def test_decoded_paths_never_escape(
    anyio_backend: str, layout: Path, follow_symlink: bool
) -> None:
    static = StaticFiles(directory=layout / "public", follow_symlink=follow_symlink)
    app = Stellate(routes=[Mount("/static", app=static)])
    assert await call(app, "/static/sub/b.txt") == (200, b"public b")
    for path in decoded_corpus(layout):
        if follow_symlink and "link" in path:
            continue  # followed on purpose; see test_follow_symlink_still_stops_dot_dot
        status, body = await call(app, path)
        check(status, body, repr(path))


@pytest.mark.anyio
async def test_follow_symlink_still_stops_dot_dot(anyio_backend: str, layout: Path) -> None:
    static = StaticFiles(directory=layout / "public", follow_symlink=True)
    assert await call(static, "/link") == (200, SECRET.encode())
    for path in ("/../secret.txt", "/sub/../../secret.txt", "/dirlink/../../secret.txt"):
        status, body = await call(static, path)
        # "dirlink/.." is resolved lexically to the served directory, never beyond it.
        check(status, body, path)


@pytest.mark.anyio
async def test_standalone_decoded_paths_never_escape(anyio_backend: str, layout: Path) -> None:
    static = StaticFiles(directory=layout / "public", html=True)
    for path in decoded_corpus(layout):
        status, body = await call(static, path.removeprefix("/static"))
        check(status, body, repr(path))
        assert body == b"not here", repr(path)
