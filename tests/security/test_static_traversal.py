"""Attacks on StaticFiles beyond the corpus of tests/test_staticfiles_traversal.py.

That file proves that no *path* leads out of the served directory. These tests attack
what surrounds the path: the kinds of file a directory may hold (FIFOs that would block
an ``open``, device files, symlink loops, symlinks pointing in and out), the redirect
StaticFiles sends for a directory (an open redirect if ``//evil.example`` came back as a
host), and the other request shapes that reach a file (HEAD, Range, conditional requests)
on a hostile path. Each runs straight through ASGI on both backends (see _asgi.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tests.security._asgi import call

from stellate.applications import Stellate
from stellate.routing import Mount
from stellate.staticfiles import StaticFiles

pytestmark = pytest.mark.anyio

SECRET = b"SECRET-OUTSIDE-THE-DIRECTORY"


@pytest.fixture
def www(tmp_path: Path) -> Path:
    """tmp/www is served; tmp/secret.txt and tmp/private/ are not."""
    www = tmp_path / "www"
    (www / "inner").mkdir(parents=True)
    (www / "inner" / "page.txt").write_bytes(b"inner page")
    (www / "index.html").write_bytes(b"home")
    (www / "evil.example").mkdir()
    (www / "evil.example" / "index.html").write_bytes(b"a directory named like a host")
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "key.txt").write_bytes(SECRET)
    os.mkfifo(www / "fifo")  # opening it for reading would block until a writer comes
    (www / "loop").symlink_to(www / "loop")
    (www / "loop-a").symlink_to(www / "loop-b")
    (www / "loop-b").symlink_to(www / "loop-a")
    (www / "zero").symlink_to("/dev/zero")  # endless: reading it would never finish
    (www / "out").symlink_to(tmp_path / "secret.txt")
    (www / "outdir").symlink_to(tmp_path / "private")
    (www / "in").symlink_to(www / "inner" / "page.txt")
    (www / "dangling").symlink_to(tmp_path / "nothing-here")
    return www


def app_for(www: Path, **options: bool) -> Stellate:
    return Stellate(
        routes=[
            Mount("/static", StaticFiles(directory=www, **options)),
            Mount("/", StaticFiles(directory=www, html=True, **options)),
        ]
    )


SPECIAL = ["fifo", "loop", "loop-a", "zero", "dangling"]


@pytest.mark.parametrize("follow_symlink", [False, True], ids=["strict", "follow"])
@pytest.mark.parametrize("name", SPECIAL)
async def test_special_files_are_never_opened(www: Path, name: str, follow_symlink: bool) -> None:
    """A FIFO, a device or a symlink loop is not a file to serve: 404, at once.

    ``open()`` on the FIFO would block a worker thread forever and /dev/zero never ends;
    the call's deadline turns either into a failure instead of a hang.
    """
    app = app_for(www, follow_symlink=follow_symlink)
    for method in ("GET", "HEAD"):
        answer = await call(app, f"/static/{name}", method=method)
        assert answer.status == 404, (name, method, answer.status)


async def test_symlinks_out_of_the_directory_are_refused(www: Path) -> None:
    app = app_for(www)
    for path in ("/static/out", "/static/outdir/key.txt", "/out", "/outdir/key.txt"):
        answer = await call(app, path)
        assert answer.status == 404, path
        assert SECRET not in answer.body


async def test_symlinks_inside_the_directory_are_served(www: Path) -> None:
    answer = await call(app_for(www), "/static/in")
    assert (answer.status, answer.body) == (200, b"inner page")


async def test_follow_symlink_serves_links_but_never_dot_dot(www: Path) -> None:
    """``follow_symlink=True`` trusts the links the owner made, not ``..`` from a client."""
    app = app_for(www, follow_symlink=True)
    linked = await call(app, "/static/out")
    assert (linked.status, linked.body) == (200, SECRET), "the owner's link is followed"
    for path in ("/static/../secret.txt", "/static/inner/../../secret.txt", "/../secret.txt"):
        answer = await call(app, path)
        assert answer.status == 404, path
        assert SECRET not in answer.body, path


@pytest.mark.parametrize(
    "path", ["//evil.example", "///evil.example", "//evil.example/", "/.//evil.example"]
)
async def test_directory_redirect_never_leaves_the_host(www: Path, path: str) -> None:
    """The "add a trailing slash" redirect keeps the request's host, whatever the path.

    A Location of ``//evil.example/`` would send the browser to another site.
    """
    answer = await call(app_for(www), path, headers=[("host", "good.example")])
    assert answer.status in (200, 307, 404), answer.status
    if answer.status == 307:
        location = answer.header("location")
        assert location is not None
        target = urlsplit(location)
        assert target.netloc == "good.example", location
        assert not target.path.startswith("//"), location


@pytest.mark.parametrize(
    "headers",
    [
        [("range", "bytes=0-")],
        [("range", "bytes=0-1,2-3")],
        [("if-none-match", "*")],
        [("if-modified-since", "Thu, 01 Jan 1970 00:00:00 GMT")],
        [("if-range", '"x"'), ("range", "bytes=0-0")],
    ],
    ids=["range", "multirange", "if-none-match", "if-modified-since", "if-range"],
)
async def test_hostile_paths_with_ranges_and_conditions(
    www: Path, headers: list[tuple[str, str]]
) -> None:
    """Ranges and validators never turn a refused path into a partial answer."""
    app = app_for(www)
    for path in ("/static/../secret.txt", "/static/out", "/static/outdir/key.txt", "/static/fifo"):
        answer = await call(app, path, headers=[("host", "example.com"), *headers])
        assert answer.status == 404, (path, headers, answer.status)
        assert SECRET not in answer.body


async def test_methods_other_than_get_and_head_are_refused(www: Path) -> None:
    app = app_for(www)
    for method in ("POST", "PUT", "DELETE", "PATCH", "TRACE"):
        answer = await call(app, "/static/index.html", method=method)
        assert answer.status == 405, method
        assert answer.header("allow") == "GET, HEAD"
