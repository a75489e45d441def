"""The form parsers, through a Stellate application under LintMiddleware, on both backends.

* Round trip: every urlencoded and multipart body from `stellate.testing.strategies`,
  cut into ``http.request`` messages at arbitrary points (`chunkings`), reads back as
  exactly the fields and files it encodes (names, order, repeats, filenames, content
  types, bytes).
* Bad input: valid multipart bodies mutated -- truncated, their boundary corrupted in the
  Content-Type or in the body, CR/LF/NUL injected anywhere -- and arbitrary urlencoded
  bytes get a 200 (if still parseable) or a 400 (413 allowed), never a 500; the
  unmistakably broken ones (truncated before the closing delimiter, boundary not in the
  body) always get the 400.
* No leak: after every request, including clients that disconnect mid-body, the process
  has the same open file descriptors and the private temporary directory the same files
  as before. The spool threshold is lowered to 64 bytes for this module so that uploads
  really go to disk (and through the worker-thread path) instead of staying in memory.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from stellate.applications import Stellate
from stellate.datastructures import UploadFile
from stellate.formparsers import MultiPartParser
from stellate.requests import ClientDisconnect, Request
from stellate.responses import JSONResponse, Response
from stellate.routing import Route
from stellate.testing.lint import LintMiddleware
from stellate.testing.strategies import (
    MultipartPart,
    chunkings,
    multipart_bodies,
    urlencoded_bodies,
)
from stellate.types import Message

pytestmark = pytest.mark.anyio

MULTIPART = multipart_bodies()


async def echo_form(request: Request) -> Response:
    """The form as JSON; the uploads are left for the request to close (as most apps do)."""
    form = await request.form()
    items: list[list[Any]] = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            data = await value.read()
            items.append(["file", name, value.filename, value.content_type, data.hex()])
        else:
            items.append(["field", name, value])
    return JSONResponse(items)


app = LintMiddleware(Stellate(routes=[Route("/form", echo_form, methods=["POST"])]))


@pytest.fixture(scope="module", autouse=True)
def private_tempdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Spool uploads to disk past 64 bytes, in a directory only this module uses."""
    directory = tmp_path_factory.mktemp("form-spool")
    saved = tempfile.tempdir, MultiPartParser.spool_max_size
    tempfile.tempdir, MultiPartParser.spool_max_size = str(directory), 64
    try:
        yield directory
    finally:
        tempfile.tempdir, MultiPartParser.spool_max_size = saved


def open_resources() -> tuple[int, int]:
    """(open file descriptors of this process, files in the private temp directory)."""
    assert tempfile.tempdir is not None
    return len(os.listdir("/proc/self/fd")), len(os.listdir(tempfile.tempdir))


def http_scope(content_type: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/form",
        "raw_path": b"/form",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", content_type.encode("latin-1"))],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


async def post(content_type: str, messages: list[dict[str, Any]]) -> tuple[int, bytes] | None:
    """Drive the app with `messages` as a server would; (status, body), or None if the
    client disconnected before the response. Checks that nothing was leaked either way."""
    queue = list(messages)
    sent: list[Message] = []
    done = anyio.Event()

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        await done.wait()  # like a server: the disconnect comes after the response
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            done.set()

    before = open_resources()
    client_left = False
    with anyio.fail_after(10):
        if messages[-1]["type"] == "http.disconnect":
            try:
                await app(http_scope(content_type), receive, send)
            except ClientDisconnect:
                # As in Starlette, an unhandled error: whatever was sent went to nobody.
                client_left = True
        else:
            await app(http_scope(content_type), receive, send)
    assert open_resources() == before, "a temporary file was left open"
    if client_left or not sent:
        assert messages[-1]["type"] == "http.disconnect"
        return None
    assert sent[0]["type"] == "http.response.start"
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def expected_items(parts: list[MultipartPart]) -> list[list[Any]]:
    return [
        ["field", part.name, part.data.decode("utf-8")]
        if part.filename is None
        else ["file", part.name, part.filename, part.content_type, part.data.hex()]
        for part in parts
    ]


# --- round trips ----------------------------------------------------------------------------


@st.composite
def chunked_urlencoded(draw: st.DrawFn) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    body, fields = draw(urlencoded_bodies())
    return fields, draw(chunkings(body))


@given(chunked_urlencoded())
async def test_urlencoded_round_trips_under_any_chunking(
    case: tuple[list[tuple[str, str]], list[dict[str, Any]]],
) -> None:
    fields, messages = case
    result = await post("application/x-www-form-urlencoded", messages)
    assert result is not None
    status, body = result
    assert status == 200, body
    assert json.loads(body) == [["field", name, value] for name, value in fields]


@st.composite
def chunked_multipart(draw: st.DrawFn) -> tuple[str, list[MultipartPart], list[dict[str, Any]]]:
    content_type, body, parts = draw(MULTIPART)
    return content_type, parts, draw(chunkings(body))


@given(chunked_multipart())
async def test_multipart_round_trips_under_any_chunking(
    case: tuple[str, list[MultipartPart], list[dict[str, Any]]],
) -> None:
    content_type, parts, messages = case
    result = await post(content_type, messages)
    assert result is not None
    status, body = result
    assert status == 200, body
    assert json.loads(body) == expected_items(parts)


# --- bad input ------------------------------------------------------------------------------


def _boundary_of(content_type: str) -> bytes:
    return content_type.partition("boundary=")[2].encode("latin-1")


@st.composite
def broken_multipart(
    draw: st.DrawFn,
) -> tuple[str, list[dict[str, Any]], bool, list[MultipartPart] | None]:
    """(content type, messages, whether the body is certainly malformed, and the parts a
    parser may still return when the body only lost its closing delimiter)."""
    content_type, body, parts = draw(MULTIPART)
    boundary = _boundary_of(content_type)
    mutation = draw(st.sampled_from(["content-type", "delimiter", "inject"]))
    certain = True
    complete: list[MultipartPart] | None = None
    if mutation == "content-type":
        other = b"Z" + boundary[1:]
        assume(b"--" + other not in body)
        content_type = "multipart/form-data; boundary=" + other.decode("latin-1")
    elif mutation == "delimiter":
        # Corrupt one character of one delimiter line. A broken first one reads as a
        # preamble (RFC 2046), a broken middle one merges two parts; a broken *closing*
        # one leaves the last part unfinished: as in Starlette, that is a truncated body,
        # answered with the parts that were complete, or refused.
        starts = [i for i in range(len(body)) if body.startswith(b"--" + boundary, i)]
        start = draw(st.sampled_from(starts))
        at = start + draw(st.integers(2, len(boundary) + 1))
        body = body[:at] + (b"#" if body[at : at + 1] != b"#" else b"%") + body[at + 1 :]
        certain = False
        if start == starts[-1]:
            complete = parts[:-1]
    else:
        at = draw(st.integers(0, len(body)))
        junk = draw(st.sampled_from([b"\r", b"\n", b"\r\n", b"\x00", b"\r\n\r\n", b"--"]))
        body = body[:at] + junk + body[at:]
        certain = False
    return content_type, draw(chunkings(body, disconnect=None)), certain, complete


@given(broken_multipart())
async def test_broken_multipart_gets_a_400_never_a_500(
    case: tuple[str, list[dict[str, Any]], bool, list[MultipartPart] | None],
) -> None:
    content_type, messages, certain, complete = case
    result = await post(content_type, messages)
    if result is None:  # the client went away first: nothing to answer, nothing leaked
        return
    status, body = result
    assert status in (200, 400, 413), (status, body)
    if certain:
        assert status == 400, body
    if complete is not None and status == 200:
        # Only the parts before the broken closing delimiter, never the unfinished one.
        assert json.loads(body) == expected_items(complete)


@st.composite
def truncated_multipart(
    draw: st.DrawFn,
) -> tuple[str, list[MultipartPart], list[dict[str, Any]]]:
    content_type, body, parts = draw(MULTIPART)
    # Anything short of the complete closing "--BOUNDARY--" is unfinished.
    body = body[: draw(st.integers(0, len(body) - 3))]
    return content_type, parts, draw(chunkings(body))


@given(truncated_multipart())
async def test_truncated_multipart_gives_the_parts_that_were_complete(
    case: tuple[str, list[MultipartPart], list[dict[str, Any]]],
) -> None:
    # As Starlette: no error; the form holds a prefix of the parts (none for an empty
    # body), and the files of the cut part are closed (the fixture checks nothing leaks).
    content_type, parts, messages = case
    result = await post(content_type, messages)
    assert result is not None
    status, body = result
    assert status == 200, body
    items = json.loads(body)
    assert items == expected_items(parts)[: len(items)]


@st.composite
def broken_urlencoded(draw: st.DrawFn) -> list[dict[str, Any]]:
    body, _ = draw(urlencoded_bodies())
    at = draw(st.integers(0, len(body)))
    junk = draw(
        st.one_of(
            st.binary(max_size=20),
            st.sampled_from([b"\r\n", b"%", b"%zz", b"%FF%FE", b"&&==", b"_charset_=nope&"]),
        )
    )
    return draw(chunkings(body[:at] + junk + body[at:], disconnect=None))


@given(broken_urlencoded())
async def test_broken_urlencoded_never_gets_a_500(messages: list[dict[str, Any]]) -> None:
    result = await post("application/x-www-form-urlencoded", messages)
    if result is None:
        return
    status, body = result
    # Read leniently, as browsers write it (and as Starlette: charsets are ignored).
    assert status == 200, (status, body)
