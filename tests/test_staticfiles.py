"""StaticFiles: serving, html mode, 304, packages, configuration errors, websockets.

Hostile paths are in test_staticfiles_traversal.py.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stellate.applications import Stellate
from stellate.datastructures import Headers
from stellate.exceptions import HTTPException
from stellate.requests import Request
from stellate.responses import FileResponse, PlainTextResponse, Response
from stellate.routing import Mount
from stellate.staticfiles import NotModifiedResponse, StaticFiles
from stellate.websockets import WebSocketDisconnect

ClientFactory = Callable[..., Any]


@pytest.fixture
def public(tmp_path: Path) -> Path:
    root = tmp_path / "public"
    (root / "docs").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "style.css").write_text("body {}")
    (root / "index.html").write_text("<h1>home</h1>")
    (root / "docs" / "index.html").write_text("<h1>docs</h1>")
    (root / "404.html").write_text("<h1>lost</h1>")
    return root


def mounted(static: StaticFiles, **app_kwargs: Any) -> Stellate:
    return Stellate(routes=[Mount("/static", app=static, name="static")], **app_kwargs)


def test_serves_files(test_client_factory: ClientFactory, public: Path) -> None:
    client = test_client_factory(mounted(StaticFiles(directory=public)))
    response = client.get("/static/style.css")
    assert response.status_code == 200
    assert response.text == "body {}"
    assert response.headers["content-type"] == "text/css; charset=utf-8"
    assert response.headers["content-length"] == "7"
    assert "etag" in response.headers
    assert "last-modified" in response.headers
    head = client.head("/static/style.css")
    assert (head.status_code, head.content, head.headers["content-length"]) == (200, b"", "7")
    ranged = client.get("/static/style.css", headers={"range": "bytes=0-3"})
    assert (ranged.status_code, ranged.text) == (206, "body")


def test_standalone_app_raises_http_exceptions(
    test_client_factory: ClientFactory, public: Path
) -> None:
    # As Starlette: StaticFiles never renders its errors; used on its own, the exception
    # reaches the caller. (This test used to pin stellate's own plain-text answers.)
    client = test_client_factory(StaticFiles(directory=public))
    assert client.get("/style.css").text == "body {}"
    with pytest.raises(HTTPException) as missing:
        client.get("/nope.css")
    assert missing.value.status_code == 404
    with pytest.raises(HTTPException) as post:
        client.post("/style.css")
    assert post.value.status_code == 405
    assert post.value.headers == {"Allow": "GET, HEAD"}


def test_under_a_bare_router_the_exception_propagates(
    test_client_factory: ClientFactory, public: Path
) -> None:
    from stellate.routing import Router

    router = Router(routes=[Mount("/static", app=StaticFiles(directory=public))])
    with pytest.raises(HTTPException) as missing:
        test_client_factory(router).get("/static/nope.css")
    assert missing.value.status_code == 404


class Failing(StaticFiles):
    def __init__(self, error: OSError, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def lookup_path(self, path: str) -> tuple[str, Any]:
        raise self.error


def test_a_permission_error_is_401(test_client_factory: ClientFactory, public: Path) -> None:
    # As Starlette (it used to be a 404).
    app = mounted(Failing(PermissionError(13, "Permission denied"), directory=public))
    response = test_client_factory(app).get("/static/style.css")
    assert (response.status_code, response.text) == (401, "Unauthorized")


def test_other_lookup_errors_propagate(test_client_factory: ClientFactory, public: Path) -> None:
    # As Starlette: an unexpected OSError is the server's problem (it used to be a 404);
    # a name too long stays a 404.
    error = OSError(5, "Input/output error")
    client = test_client_factory(Failing(error, directory=public))
    with pytest.raises(OSError, match="Input/output error"):
        client.get("/style.css")
    too_long = mounted(Failing(OSError(errno.ENAMETOOLONG, "too long"), directory=public))
    assert test_client_factory(too_long).get("/static/x").status_code == 404


def test_a_name_too_long_is_404(test_client_factory: ClientFactory, public: Path) -> None:
    client = test_client_factory(mounted(StaticFiles(directory=public)))
    assert client.get("/static/" + "x" * 5000).status_code == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_only_get_and_head(test_client_factory: ClientFactory, public: Path, method: str) -> None:
    client = test_client_factory(mounted(StaticFiles(directory=public)))
    response = client.request(method, "/static/style.css")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


def test_missing_files_and_directories_are_404(
    test_client_factory: ClientFactory, public: Path
) -> None:
    client = test_client_factory(mounted(StaticFiles(directory=public)))
    for path in ("/static/nope.css", "/static/docs", "/static/docs/", "/static/", "/static"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.text == "Not Found"


def test_errors_go_through_the_application_handlers(
    test_client_factory: ClientFactory, public: Path
) -> None:
    def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return PlainTextResponse(f"custom {exc.status_code}", status_code=exc.status_code)

    app = mounted(StaticFiles(directory=public), exception_handlers={404: not_found})
    response = test_client_factory(app).get("/static/nope.css")
    assert (response.status_code, response.text) == (404, "custom 404")


def test_html_mode(test_client_factory: ClientFactory, public: Path) -> None:
    client = test_client_factory(mounted(StaticFiles(directory=public, html=True)))
    assert client.get("/static/").text == "<h1>home</h1>"
    assert client.get("/static/docs/").text == "<h1>docs</h1>"
    redirect = client.get("/static/docs?x=1", follow_redirects=False)
    assert redirect.status_code == 307
    assert redirect.headers["location"] == "http://testserver/static/docs/?x=1"
    assert client.get("/static/docs").text == "<h1>docs</h1>"  # after the redirect
    lost = client.get("/static/nowhere")
    assert (lost.status_code, lost.text) == (404, "<h1>lost</h1>")
    assert lost.headers["content-type"] == "text/html; charset=utf-8"
    empty_dir = client.get("/static/empty/")
    assert (empty_dir.status_code, empty_dir.text) == (404, "<h1>lost</h1>")


def test_html_mode_without_404_page(test_client_factory: ClientFactory, public: Path) -> None:
    (public / "404.html").unlink()
    client = test_client_factory(mounted(StaticFiles(directory=public, html=True)))
    response = client.get("/static/nowhere")
    assert (response.status_code, response.text) == (404, "Not Found")


def test_not_modified(test_client_factory: ClientFactory, public: Path) -> None:
    client = test_client_factory(mounted(StaticFiles(directory=public)))
    first = client.get("/static/style.css")
    etag, last_modified = first.headers["etag"], first.headers["last-modified"]
    for headers in (
        {"if-none-match": etag},
        {"if-none-match": f'"x", W/{etag}'},
        {"if-modified-since": last_modified},
    ):
        response = client.get("/static/style.css", headers=headers)
        assert response.status_code == 304, headers
        assert response.content == b""
        assert response.headers["etag"] == etag
        assert "content-length" not in response.headers
    stale = client.get("/static/style.css", headers={"if-none-match": '"x"'})
    assert stale.status_code == 200


def test_not_modified_response_keeps_only_cache_headers() -> None:
    headers = Headers(
        {
            "etag": '"1"',
            "cache-control": "max-age=5",
            "vary": "Accept-Encoding",
            "content-length": "10",
            "content-type": "text/plain",
            "last-modified": "Thu, 01 Jan 1970 00:00:00 GMT",
        }
    )
    response = NotModifiedResponse(headers)
    assert response.status_code == 304
    assert response.body == b""
    assert dict(response.headers.items()) == {
        "etag": '"1"',
        "cache-control": "max-age=5",
        "vary": "Accept-Encoding",
    }


def test_is_not_modified_method(public: Path) -> None:
    static = StaticFiles(directory=public)
    response = Headers({"etag": '"abc"', "last-modified": "Thu, 01 Jan 1970 00:00:10 GMT"})
    assert static.is_not_modified(response, Headers({"if-none-match": '"abc"'}))
    assert not static.is_not_modified(response, Headers({"if-none-match": '"abd"'}))
    assert static.is_not_modified(
        response, Headers({"if-modified-since": "Thu, 01 Jan 1970 00:00:10 GMT"})
    )
    assert not static.is_not_modified(
        response, Headers({"if-modified-since": "Thu, 01 Jan 1970 00:00:09 GMT"})
    )
    assert not static.is_not_modified(Headers({}), Headers({"if-none-match": '"abc"'}))
    assert not static.is_not_modified(Headers({}), Headers({"if-modified-since": "x"}))
    assert not static.is_not_modified(response, Headers({}))


def test_file_response_method(public: Path) -> None:
    static = StaticFiles(directory=public)
    path = public / "style.css"
    info = path.stat()
    scope: dict[str, Any] = {"type": "http", "method": "GET", "headers": []}
    response = static.file_response(str(path), info, scope, status_code=200)
    assert isinstance(response, FileResponse)
    etag = response.headers["etag"]
    scope["headers"] = [(b"if-none-match", etag.encode())]
    assert isinstance(static.file_response(str(path), info, scope), NotModifiedResponse)


def make_package(root: Path, name: str, statics: str = "statics") -> Path:
    package = root / name
    (package / statics).mkdir(parents=True)
    (package / "__init__.py").write_text("")
    return package / statics


def test_packages(
    test_client_factory: ClientFactory,
    public: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = tmp_path / "site"
    plain = make_package(site, "stellate_test_plain_pkg")
    (plain / "app.js").write_text("plain()")
    (plain / "style.css").write_text("shadowed")
    custom = make_package(site, "stellate_test_custom_pkg", "assets")
    (custom / "lib.js").write_text("custom()")
    monkeypatch.syspath_prepend(str(site))
    static = StaticFiles(
        directory=public,
        packages=["stellate_test_plain_pkg", ("stellate_test_custom_pkg", "assets")],
    )
    assert static.all_directories == [public, str(plain), str(custom)]
    client = test_client_factory(mounted(static))
    assert client.get("/static/app.js").text == "plain()"
    assert client.get("/static/lib.js").text == "custom()"
    assert client.get("/static/style.css").text == "body {}"  # directory comes first
    package_only = test_client_factory(StaticFiles(packages=["stellate_test_plain_pkg"]))
    assert package_only.get("/style.css").text == "shadowed"


def test_package_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_package(tmp_path, "stellate_test_bare_pkg", "other")
    monkeypatch.syspath_prepend(str(tmp_path))
    # Starlette's exception type and texts (these used to be RuntimeErrors of stellate's).
    with pytest.raises(AssertionError) as missing:
        StaticFiles(packages=["stellate_test_nowhere_pkg"])
    assert str(missing.value) == "Package 'stellate_test_nowhere_pkg' could not be found."
    with pytest.raises(AssertionError) as bare:
        StaticFiles(packages=["stellate_test_bare_pkg"])
    assert str(bare.value) == (
        "Directory ''statics'' in package 'stellate_test_bare_pkg' could not be found."
    )


def test_missing_directory_is_reported_at_construction(tmp_path: Path) -> None:
    # Starlette's text, the same for a file (stellate used to word both its own way).
    with pytest.raises(RuntimeError) as missing:
        StaticFiles(directory=tmp_path / "nope")
    assert str(missing.value) == f"Directory '{tmp_path / 'nope'}' does not exist"
    (tmp_path / "file").write_text("x")
    with pytest.raises(RuntimeError) as a_file:
        StaticFiles(directory=tmp_path / "file")
    assert str(a_file.value) == f"Directory '{tmp_path / 'file'}' does not exist"


def test_unchecked_directory_is_checked_on_first_request(
    test_client_factory: ClientFactory, tmp_path: Path
) -> None:
    later = tmp_path / "later"
    static = StaticFiles(directory=later, check_dir=False)
    client = test_client_factory(static)
    with pytest.raises(RuntimeError, match="does not exist"):
        client.get("/x")
    later.mkdir()
    (later / "x").write_text("now")
    assert client.get("/x").text == "now"
    assert client.get("/x").text == "now"  # checked once


def test_unchecked_path_that_is_a_file(test_client_factory: ClientFactory, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    client = test_client_factory(StaticFiles(directory=tmp_path / "file", check_dir=False))
    with pytest.raises(RuntimeError, match="is not a directory"):
        client.get("/x")


def test_websocket_is_refused_without_an_assertion(
    test_client_factory: ClientFactory, public: Path
) -> None:
    client = test_client_factory(mounted(StaticFiles(directory=public)))
    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/static/style.css"):
        pass  # pragma: no cover


@pytest.mark.anyio
async def test_other_scopes_are_ignored(anyio_backend: str, public: Path) -> None:
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        raise AssertionError("not expected to receive")

    await StaticFiles(directory=public)({"type": "lifespan"}, receive, send)
    assert sent == []


def test_follow_symlink(test_client_factory: ClientFactory, public: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("outside")
    (public / "out").symlink_to(outside)
    (public / "in").symlink_to(public / "style.css")
    strict = test_client_factory(mounted(StaticFiles(directory=public)))
    assert strict.get("/static/out").status_code == 404
    assert strict.get("/static/in").text == "body {}"
    lenient = test_client_factory(mounted(StaticFiles(directory=public, follow_symlink=True)))
    assert lenient.get("/static/out").text == "outside"
    assert lenient.get("/static/in").text == "body {}"


def test_directory_given_through_a_symlink(
    test_client_factory: ClientFactory, public: Path, tmp_path: Path
) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(public)
    client = test_client_factory(StaticFiles(directory=alias))
    assert client.get("/style.css").text == "body {}"


def test_get_path_and_lookup_path(public: Path) -> None:
    static = StaticFiles(directory=public)
    scope = {"type": "http", "path": "/static//docs/./index.html", "root_path": "/static"}
    assert static.get_path(scope) == os.path.join("docs", "index.html")
    assert static.get_path({"type": "http", "path": "/", "root_path": ""}) == "."
    assert static.get_path({"type": "http", "path": "/a/../../b"}) == os.path.join("..", "b")
    assert static.get_path({"type": "http", "path": "/a\\b/c"}) == "\x00"
    assert static.get_path({"type": "http", "path": "/a/b\x00"}) == "\x00"
    assert static.lookup_path("\x00") == ("", None)
    full, info = static.lookup_path(os.path.join("docs", "index.html"))
    assert full == str((public / "docs" / "index.html").resolve())
    assert info is not None
    assert info.st_size == len("<h1>docs</h1>")
    assert static.lookup_path(os.path.join("..", "public", "style.css"))[1] is not None
    assert static.lookup_path(os.path.join("..", "..", "etc", "passwd")) == ("", None)
    assert static.lookup_path("nope") == ("", None)


def test_backslash_names_are_refused_on_every_platform(
    test_client_factory: ClientFactory, public: Path
) -> None:
    # On Windows a backslash separates directories; refusing it everywhere keeps a
    # request meaning the same thing on every system.
    (public / "a\\b.txt").write_text("ambiguous")
    client = test_client_factory(mounted(StaticFiles(directory=public)))
    assert client.get("/static/a%5cb.txt").status_code == 404
