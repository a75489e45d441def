"""The showcase in a real browser: Debian's Chromium, driven headless by Playwright,
against the showcase served by hypercorn on trio (a subprocess on 127.0.0.1).

One test walks through the live parts a newcomer would try: a page loads with its
stylesheet, a chat message typed in one tab appears in another, the SSE feed updates
when something happens elsewhere, a file upload round-trips byte for byte (and is
then hashed by a supervised task, which the feed announces), and GraphiQL, served from
the package, runs a query. Nothing is loaded from anywhere but the server.

Chromium comes from Debian (``scripts/install-browser``; the test is skipped, saying so,
where it is not installed, except in CI); Playwright's own browser
download needs network access this machine does not have. Playwright's sync API runs
its own event loop, so this is a plain test function, run once: the backend under test
is the server's (trio), not pytest's.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# The flags a sandboxed machine with no network needs (see the module docstring):
# without the background-networking ones Chromium keeps trying to reach Google.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000


def require_chromium() -> None:
    """Skip, saying how to get it, when Chromium is absent; CI sets the variable and fails.

    A user without root cannot install Debian's package, and the rest of the suite does not
    need it; CI (``.ci/run``) installs it and sets ``STELLATE_REQUIRE_BROWSER=1``, so there a
    missing browser is a failure rather than a test nobody ran.
    """
    if os.access(CHROMIUM, os.X_OK):
        return
    message = (
        f"the browser test needs Chromium at {CHROMIUM}, which is not installed: "
        "scripts/install-browser installs it (as root, or with sudo)"
    )
    if os.environ.get("STELLATE_REQUIRE_BROWSER") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@contextmanager
def showcase_server(log_path: Path) -> Iterator[str]:
    """Serve ``showcase.app:app`` with hypercorn on trio; yield its base URL.

    The listening socket is bound here (port 0: the kernel picks a free port, with no
    window for another process to take it) and handed to hypercorn as ``fd://``. It is
    listening before hypercorn starts, so a client's first connection waits in the
    backlog until hypercorn accepts it: readiness is one request with a deadline.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    command = [
        sys.executable, "-m", "hypercorn",
        "--worker-class", "trio",
        "--bind", f"fd://{listener.fileno()}",
        "showcase.app:app",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            command,
            cwd=ROOT / "examples",
            pass_fds=[listener.fileno()],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "SHOWCASE_HEARTBEAT": "2"},
        )
    listener.close()  # hypercorn holds its own copy; if it dies, connections are refused
    base_url = f"http://127.0.0.1:{port}"
    try:
        try:
            response = httpx.get(base_url + "/", timeout=20)
        except httpx.HTTPError as exc:
            pytest.fail(f"the showcase did not start ({exc!r}):\n{log_path.read_text()}")
        assert response.status_code == 200, log_path.read_text()
        yield base_url
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            pytest.fail(f"hypercorn did not stop on SIGTERM:\n{log_path.read_text()}")


def test_the_showcase_in_chromium(tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import FilePayload, Request, expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    log_path = tmp_path / "hypercorn.log"
    elsewhere: list[str] = []  # requests for anything not on our server
    failed: list[str] = []
    with showcase_server(log_path) as base_url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            context = browser.new_context(base_url=base_url)
            context.set_default_timeout(TIMEOUT_MS)

            def watch(request: Request) -> None:
                if not request.url.startswith(base_url):
                    elsewhere.append(request.url)

            context.on("request", watch)
            def note_failure(request: Any) -> None:
                # A request the page itself dropped by navigating away (a favicon still
                # loading when the test moves on) is ERR_ABORTED: not the server's doing.
                if request.failure != "net::ERR_ABORTED":
                    failed.append(f"{request.url}: {request.failure}")

            context.on("requestfailed", note_failure)
            ann, bob, feed = context.new_page(), context.new_page(), context.new_page()

            # A page loads, with the stylesheet from /static applied.
            ann.goto("/")
            expect(ann).to_have_title("stellate showcase")
            expect(ann.locator("h1")).to_have_text("Welcome to the stellate showcase")
            accent = ann.evaluate("getComputedStyle(document.querySelector('h1')).color")
            assert accent == "rgb(107, 79, 216)"

            # The live feed connects; everything below should show up in it.
            feed.goto("/feed")
            expect(feed.locator("#feed-status")).to_have_text("live")

            # Chat: a message sent in one tab appears in the other.
            ann.goto("/chat?name=ann")
            bob.goto("/chat?name=bob")
            expect(ann.locator("#chat-status")).to_contain_text("connected as ann")
            expect(bob.locator("#chat-status")).to_contain_text("connected as bob")
            ann.locator("#chat-text").fill("hello from ann")
            ann.locator("#chat-send").click()
            expect(bob.locator("#chat-log li.message")).to_have_text(["ann: hello from ann"])
            bob.locator("#chat-text").fill("hi ann")
            bob.locator("#chat-text").press("Enter")
            expect(ann.locator("#chat-log li.message")).to_have_text(
                ["ann: hello from ann", "bob: hi ann"]
            )

            # The feed updates: the ping button, and a note added from another tab.
            feed.locator("#ping").click()
            expect(feed.locator("#feed-log li.ping")).to_contain_text(["anonymous said ping"])
            bob.goto("/")
            bob.locator("#note-text").fill("a note from bob")
            bob.locator("#note-text").press("Enter")
            expect(bob.locator("#notes li")).to_have_text(["anonymous a note from bob"])
            expect(feed.locator("#feed-log li.note")).to_contain_text(["added note #1"])

            # An upload round-trips, then a supervised task hashes it.
            data = bytes(range(256)) * 4 + "naïve ✳\r\n".encode()
            ann.goto("/upload")
            upload: FilePayload = {
                "name": "bytes.bin",
                "mimeType": "application/octet-stream",
                "buffer": data,
            }
            ann.locator("#file").set_input_files(files=[upload])
            ann.locator("#caption").fill("every byte value")
            ann.locator("#upload-form button").click()
            ann.wait_for_url(re.compile(r"/upload$"))
            row = ann.locator("#uploads tbody tr").first
            expect(row).to_contain_text("bytes.bin")
            expect(row).to_contain_text(f"{len(data)} bytes")
            expect(row).to_contain_text("every byte value")
            href = row.locator("a").get_attribute("href")
            assert href is not None
            downloaded = context.request.get(href)
            assert downloaded.status == 200
            assert downloaded.body() == data
            digest = hashlib.sha256(data).hexdigest()
            expect(feed.locator("#feed-log li.upload")).to_contain_text(["uploaded bytes.bin"])
            expect(feed.locator("#feed-log li.digest")).to_contain_text([digest])
            ann.reload()
            expect(ann.locator("#uploads tbody tr").first.locator(".hash")).to_have_text(digest)

            # GraphiQL comes from the package, not a CDN (``elsewhere`` below stays empty):
            # it renders and runs a query.
            ann.goto("/graphql")
            expect(ann.locator(".graphiql-container")).to_be_visible()
            editor = ann.locator(".graphiql-query-editor .CodeMirror")
            editor.evaluate("(element) => element.CodeMirror.setValue('{ notes { text } }')")
            ann.locator(".graphiql-execute-button").click()
            expect(ann.locator(".result-window")).to_contain_text('"notes"')

            context.close()
        finally:
            browser.close()
    assert elsewhere == [], f"pages loaded something from elsewhere: {elsewhere}"
    assert failed == [], failed
    server_log = log_path.read_text()
    assert "Traceback" not in server_log, server_log
