"""FileResponse: headers, conditional requests, ranges, pathsend, disconnects, bad files.

HTTP-level behaviour is driven through TestClient (both backends via
``test_client_factory``); what TestClient cannot show (pathsend, the exact messages, a
client that disconnects mid-transfer) is driven with hand-written receive/send callables
under ``anyio_backend``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from email.utils import formatdate
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

from stellate.background import BackgroundTask
from stellate.responses import FileResponse, Response
from stellate.types import Message, Receive, Scope, Send

CONTENT = bytes(range(256)) * 40  # 10240 bytes, every offset distinguishable
ClientFactory = Callable[..., Any]


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(CONTENT)
    return path


def serve(path: Path, **kwargs: Any) -> Callable[[Scope, Receive, Send], Any]:
    """An app that answers every request with a fresh FileResponse for ``path``."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await FileResponse(path, **kwargs)(scope, receive, send)

    return app


# --------------------------------------------------------------------------- headers


def test_whole_file_with_validators(test_client_factory: ClientFactory, data_file: Path) -> None:
    response = test_client_factory(serve(data_file)).get("/")
    info = data_file.stat()
    assert response.status_code == 200
    assert response.content == CONTENT
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-length"] == str(len(CONTENT))
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["last-modified"] == formatdate(info.st_mtime, usegmt=True)
    # Starlette's entity tag: the MD5 of "{st_mtime}-{st_size}" (this test used to pin
    # stellate's own "<mtime_ns hex>-<size hex>").
    digest = hashlib.md5(f"{info.st_mtime}-{info.st_size}".encode()).hexdigest()
    assert response.headers["etag"] == f'"{digest}"'
    assert "content-disposition" not in response.headers


def test_media_type_is_guessed_from_the_name(
    test_client_factory: ClientFactory, tmp_path: Path
) -> None:
    page = tmp_path / "page.html"
    page.write_text("<p>hi</p>")
    client = test_client_factory(serve(page))
    assert client.get("/").headers["content-type"] == "text/html; charset=utf-8"
    client = test_client_factory(serve(page, filename="data.json"))
    assert client.get("/").headers["content-type"] == "application/json"
    client = test_client_factory(serve(page, media_type="text/x-custom"))
    assert client.get("/").headers["content-type"] == "text/x-custom; charset=utf-8"


def test_etag_changes_with_the_content(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"one")
    first = FileResponse(path, stat_result=path.stat()).headers["etag"]
    path.write_bytes(b"three")
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 1))
    assert FileResponse(path, stat_result=path.stat()).headers["etag"] != first


@pytest.mark.parametrize(
    ("filename", "disposition_type", "expected"),
    [
        ("report.csv", "attachment", 'attachment; filename="report.csv"'),
        # Starlette's rule (these used to get a quoted-string filename): any name that
        # urllib.parse.quote changes goes in filename*.
        ("my report.csv", "inline", "inline; filename*=utf-8''my%20report.csv"),
        ('say "hi"\\.txt', "attachment", "attachment; filename*=utf-8''say%20%22hi%22%5C.txt"),
        ("dir/name.txt", "attachment", 'attachment; filename="dir/name.txt"'),
        ("café.txt", "attachment", "attachment; filename*=utf-8''caf%C3%A9.txt"),
        ("a;b\u00e9.txt", "inline", "inline; filename*=utf-8''a%3Bb%C3%A9.txt"),
    ],
)
def test_content_disposition(
    data_file: Path, filename: str, disposition_type: str, expected: str
) -> None:
    response = FileResponse(data_file, filename=filename, content_disposition_type=disposition_type)
    assert response.headers["content-disposition"] == expected


def test_a_filename_cannot_inject_headers(data_file: Path) -> None:
    response = FileResponse(data_file, filename="a\r\nSet-Cookie: x=1")
    assert "set-cookie" not in response.headers
    assert "\r" not in response.headers["content-disposition"]


def test_given_headers_and_validators_are_kept(
    test_client_factory: ClientFactory, data_file: Path
) -> None:
    given = {
        "ETag": '"mine"',
        "Last-Modified": "Thu, 01 Jan 1970 00:00:00 GMT",
        "Cache-Control": "max-age=60",
    }
    response = test_client_factory(serve(data_file, headers=given)).get("/")
    assert response.headers["etag"] == '"mine"'
    assert response.headers["last-modified"] == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert response.headers["cache-control"] == "max-age=60"
    assert response.headers["content-length"] == str(len(CONTENT))


def test_head_sends_headers_only(test_client_factory: ClientFactory, data_file: Path) -> None:
    response = test_client_factory(serve(data_file)).head("/")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(CONTENT))


def test_a_response_sent_twice_follows_the_file(
    test_client_factory: ClientFactory, data_file: Path
) -> None:
    response = FileResponse(data_file)
    client = test_client_factory(response)
    assert client.get("/").content == CONTENT
    data_file.write_bytes(b"short")
    second = client.get("/")
    assert second.content == b"short"
    assert second.headers["content-length"] == "5"


def test_background_runs_after_the_body(
    test_client_factory: ClientFactory, data_file: Path
) -> None:
    ran: list[str] = []
    app = serve(data_file, background=BackgroundTask(ran.append, "done"))
    client = test_client_factory(app)
    assert client.get("/").content == CONTENT
    assert client.head("/").content == b""
    assert client.get("/", headers={"range": "bytes=0-1"}).status_code == 206
    assert ran == ["done", "done", "done"]


# --------------------------------------------------------------------------- bad files


def test_a_missing_file_is_a_clear_error(
    test_client_factory: ClientFactory, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(RuntimeError, match=r"nope\.txt does not exist"):
        test_client_factory(serve(missing)).get("/")


def test_a_directory_is_not_a_file(test_client_factory: ClientFactory, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="is not a file"):
        test_client_factory(serve(tmp_path)).get("/")


def test_a_file_gone_after_stat_is_a_clear_error(
    test_client_factory: ClientFactory, data_file: Path
) -> None:
    info = data_file.stat()
    data_file.unlink()
    with pytest.raises(RuntimeError, match="does not exist"):
        test_client_factory(serve(data_file, stat_result=info)).get("/")


def test_a_file_replaced_by_a_directory_is_a_clear_error(
    test_client_factory: ClientFactory, data_file: Path
) -> None:
    info = data_file.stat()
    data_file.unlink()
    data_file.mkdir()
    with pytest.raises(RuntimeError, match=r"data\.bin"):
        test_client_factory(serve(data_file, stat_result=info)).get("/")


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs a device file")
def test_a_device_is_not_a_file(test_client_factory: ClientFactory, data_file: Path) -> None:
    client = test_client_factory(serve(Path("/dev/null"), stat_result=data_file.stat()))
    with pytest.raises(RuntimeError, match="/dev/null is not a file"):
        client.get("/")
    with pytest.raises(RuntimeError, match="/dev/null is not a file"):
        test_client_factory(serve(Path("/dev/null"))).get("/")


def test_a_file_that_shrank_after_stat_is_a_clear_error(
    test_client_factory: ClientFactory, data_file: Path
) -> None:
    info = data_file.stat()
    data_file.write_bytes(b"tiny")
    # Starlette's message (it used to say "shrank after it was stat-ed").
    with pytest.raises(RuntimeError, match=r"data\.bin is shorter than expected\.$"):
        test_client_factory(serve(data_file, stat_result=info)).get("/")


def test_an_unreadable_path_is_a_clear_error(test_client_factory: ClientFactory) -> None:
    with pytest.raises(RuntimeError, match="cannot be read"):
        test_client_factory(serve(Path("bad\x00name"))).get("/")
    with pytest.raises(RuntimeError, match="cannot be read"):
        test_client_factory(serve(Path("bad\x00name"), stat_result=os.stat(__file__))).get("/")


# --------------------------------------------------------------------------- conditional


def _validators(client: Any) -> tuple[str, str]:
    head = client.head("/")
    return head.headers["etag"], head.headers["last-modified"]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_file_response_itself_ignores_conditional_headers(
    test_client_factory: ClientFactory, data_file: Path, method: str
) -> None:
    # As Starlette: FileResponse always answers 200; 304s are StaticFiles' business
    # (tests/test_staticfiles.py). These tests used to pin FileResponse's own 304s.
    client = test_client_factory(serve(data_file))
    etag, last_modified = _validators(client)
    for headers in (
        {"if-none-match": etag},
        {"if-none-match": "*"},
        {"if-modified-since": last_modified},
    ):
        response = client.request(method, "/", headers=headers)
        assert response.status_code == 200, headers
        assert response.headers["content-length"] == str(len(CONTENT))
        assert response.content == (CONTENT if method == "GET" else b"")


# --------------------------------------------------------------------------- ranges


def test_single_range(test_client_factory: ClientFactory, data_file: Path) -> None:
    client = test_client_factory(serve(data_file))
    response = client.get("/", headers={"range": "bytes=100-199"})
    assert response.status_code == 206
    assert response.content == CONTENT[100:200]
    assert response.headers["content-range"] == f"bytes 100-199/{len(CONTENT)}"
    assert response.headers["content-length"] == "100"
    assert response.headers["content-type"] == "application/octet-stream"
    suffix = client.get("/", headers={"range": "bytes=-10"})
    assert suffix.content == CONTENT[-10:]
    head = client.head("/", headers={"range": "bytes=0-0"})
    assert (head.status_code, head.content, head.headers["content-length"]) == (206, b"", "1")


def test_merged_ranges_become_one(test_client_factory: ClientFactory, data_file: Path) -> None:
    client = test_client_factory(serve(data_file))
    response = client.get("/", headers={"range": "bytes=0-9,5-19,20-29"})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes 0-29/{len(CONTENT)}"
    assert response.content == CONTENT[:30]


def _parse_multipart(body: bytes, boundary: str) -> list[tuple[dict[str, str], bytes]]:
    delimiter = f"--{boundary}".encode()
    # No CRLF after the close delimiter, as Starlette sends it (it used to end in CRLF).
    assert body.endswith(delimiter + b"--")
    parts = []
    for chunk in body.split(delimiter)[1:-1]:
        assert chunk.startswith(b"\r\n")
        assert chunk.endswith(b"\r\n")
        head, _, data = chunk[2:-2].partition(b"\r\n\r\n")
        headers = dict(line.decode().split(": ", 1) for line in head.split(b"\r\n"))
        parts.append((headers, data))
    return parts


def test_several_ranges_are_multipart(test_client_factory: ClientFactory, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(CONTENT)
    client = test_client_factory(serve(path))
    response = client.get("/", headers={"range": "bytes=500-599, 0-9, -5"})
    assert response.status_code == 206
    content_type = response.headers["content-type"]
    match = re.fullmatch(r"multipart/byteranges; boundary=([0-9a-f]+)", content_type)
    assert match is not None
    assert "content-range" not in response.headers
    assert response.headers["content-length"] == str(len(response.content))
    size = len(CONTENT)
    assert _parse_multipart(response.content, match.group(1)) == [
        (
            {"Content-Type": "text/plain; charset=utf-8", "Content-Range": f"bytes 0-9/{size}"},
            CONTENT[:10],
        ),
        (
            {
                "Content-Type": "text/plain; charset=utf-8",
                "Content-Range": f"bytes 500-599/{size}",
            },
            CONTENT[500:600],
        ),
        (
            {
                "Content-Type": "text/plain; charset=utf-8",
                "Content-Range": f"bytes {size - 5}-{size - 1}/{size}",
            },
            CONTENT[-5:],
        ),
    ]
    head = client.head("/", headers={"range": "bytes=500-599, 0-9, -5"})
    assert head.headers["content-length"] == response.headers["content-length"]
    assert head.content == b""


@pytest.mark.parametrize(
    "header",
    ["bytes=20000-", "bytes=-0", "bytes=99999-99999,88888-", "bytes=0-5, 20000-20001"],
)
def test_unsatisfiable_range_is_416(
    test_client_factory: ClientFactory, data_file: Path, header: str
) -> None:
    # Any range starting at or past the end gives 416, even beside a satisfiable one, with
    # an empty text/plain body (it used to say "Range not satisfiable." and to need all
    # ranges out of bounds).
    response = test_client_factory(serve(data_file)).get("/", headers={"range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(CONTENT)}"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-length"] == "0"
    assert response.content == b""


@pytest.mark.parametrize(
    ("header", "text"),
    [
        ("bytes 0-1", "Malformed range header."),
        ("items=0-1", "Only support bytes range"),
        (" BYTES =0-1,x", None),
        ("bytes=", "Range header: range must be requested"),
        ("bytes=-", "Range header: range must be requested"),
        ("bytes=x-y", "Range header: range must be requested"),
        ("bytes=100", "Range header: range must be requested"),
        ("bytes=5-4", "Range header: start must be less than end"),
        ("bytes=100-0", "Range header: start must be less than end"),
        ("bytes=0-1,5-2", "Range header: start must be less than end"),
    ],
)
def test_a_range_header_that_cannot_be_served_is_400(
    test_client_factory: ClientFactory, data_file: Path, header: str, text: str | None
) -> None:
    # These used to be ignored (the whole file, 200), as if no Range had been sent.
    response = test_client_factory(serve(data_file)).get("/", headers={"range": header})
    if text is None:  # the unit is trimmed and compared case-insensitively
        assert response.status_code == 206
        return
    assert response.status_code == 400
    assert response.text == text
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize(
    "header", ["bytes=100, 0-50", "bytes=abc-def, 0-50", "bytes= , -, 0-50", "bytes=+0-+50"]
)
def test_bad_parts_are_skipped(
    test_client_factory: ClientFactory, data_file: Path, header: str
) -> None:
    response = test_client_factory(serve(data_file)).get("/", headers={"range": header})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes 0-50/{len(CONTENT)}"
    assert response.content == CONTENT[:51]


@pytest.mark.parametrize(
    "header",
    [
        "bytes=" + ",".join(["0-0"] * 101),
        "bytes=" + "0-0," * 5000,
        "bytes=" + ",".join(f"{n}-{n}" for n in range(0, 4000, 2)),
    ],
    ids=["101 ranges", "5000 ranges", "2000 distinct"],
)
def test_too_many_ranges_get_the_whole_file(
    test_client_factory: ClientFactory, data_file: Path, header: str
) -> None:
    response = test_client_factory(serve(data_file)).get("/", headers={"range": header})
    assert response.status_code == 200
    assert response.content == CONTENT


def test_max_ranges_is_a_class_attribute(
    test_client_factory: ClientFactory, data_file: Path
) -> None:
    class FewRanges(FileResponse):
        max_ranges = 2

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await FewRanges(data_file)(scope, receive, send)

    client = test_client_factory(app)
    assert client.get("/", headers={"range": "bytes=0-1,4-5"}).status_code == 206
    three = client.get("/", headers={"range": "bytes=0-1,4-5,8-9"})
    assert (three.status_code, three.content) == (200, CONTENT)


def test_a_huge_number_is_beyond_the_end(
    test_client_factory: ClientFactory, data_file: Path
) -> None:
    client = test_client_factory(serve(data_file))
    assert client.get("/", headers={"range": "bytes=" + "9" * 10000 + "-"}).status_code == 416
    end = client.get("/", headers={"range": "bytes=10-" + "9" * 10000})
    assert end.headers["content-range"] == f"bytes 10-{len(CONTENT) - 1}/{len(CONTENT)}"


def test_if_range(test_client_factory: ClientFactory, data_file: Path) -> None:
    client = test_client_factory(serve(data_file))
    etag, last_modified = _validators(client)
    for if_range, status in [
        (etag, 206),
        (last_modified, 206),
        ('"stale"', 200),
        (f"W/{etag}", 200),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 200),
        # The same instant written another way: Starlette compares the strings (this
        # used to match, by parsing both dates).
        (last_modified.replace("GMT", "+0000"), 200),
    ]:
        headers = {"range": "bytes=0-3", "if-range": if_range}
        response = client.get("/", headers=headers)
        assert response.status_code == status, if_range
        assert response.content == (CONTENT[:4] if status == 206 else CONTENT)


def test_range_is_ignored_outside_200_get_and_head(
    test_client_factory: ClientFactory, data_file: Path
) -> None:
    client = test_client_factory(serve(data_file))
    assert client.post("/", headers={"range": "bytes=0-3"}).content == CONTENT
    not_found = test_client_factory(serve(data_file, status_code=404))
    response = not_found.get("/", headers={"range": "bytes=0-3"})
    assert (response.status_code, response.content) == (404, CONTENT)


def test_ranges_of_an_empty_file(test_client_factory: ClientFactory, tmp_path: Path) -> None:
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    client = test_client_factory(serve(empty))
    assert client.get("/").content == b""
    response = client.get("/", headers={"range": "bytes=0-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */0"


# --------------------------------------------------------------------------- ASGI level


class Recorder:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)

    @property
    def body_messages(self) -> list[Message]:
        return [m for m in self.messages if m["type"] == "http.response.body"]


async def quiet_receive() -> Message:
    await anyio.sleep_forever()
    raise AssertionError("unreachable")


def scope_for(method: str = "GET", headers: list[tuple[bytes, bytes]] | None = None) -> Scope:
    return {
        "type": "http",
        "method": method,
        "path": "/",
        "headers": headers or [],
        "extensions": {"http.response.pathsend": {}},
    }


@pytest.mark.anyio
async def test_pathsend_is_used_when_offered(anyio_backend: str, data_file: Path) -> None:
    send = Recorder()
    relative = await anyio.to_thread.run_sync(os.path.relpath, data_file)
    with anyio.fail_after(5):
        await FileResponse(relative)(scope_for(), quiet_receive, send)
    assert [m["type"] for m in send.messages] == ["http.response.start", "http.response.pathsend"]
    assert send.messages[1]["path"] == str(data_file)
    assert os.path.isabs(send.messages[1]["path"])


@pytest.mark.anyio
async def test_pathsend_is_not_used_for_head_or_ranges(anyio_backend: str, data_file: Path) -> None:
    head = Recorder()
    with anyio.fail_after(5):
        await FileResponse(data_file)(scope_for("HEAD"), quiet_receive, head)
    assert [m["type"] for m in head.messages] == ["http.response.start", "http.response.body"]
    ranged = Recorder()
    with anyio.fail_after(5):
        scope = scope_for(headers=[(b"range", b"bytes=1-2")])
        await FileResponse(data_file)(scope, quiet_receive, ranged)
    assert ranged.messages[0]["status"] == 206
    assert b"".join(m["body"] for m in ranged.body_messages) == CONTENT[1:3]


@pytest.mark.anyio
async def test_file_is_read_in_chunks(anyio_backend: str, data_file: Path) -> None:
    response = FileResponse(data_file)
    response.chunk_size = 4096
    send = Recorder()
    scope = scope_for()
    scope["extensions"] = None
    with anyio.fail_after(5):
        await response(scope, quiet_receive, send)
    bodies = send.body_messages
    assert [len(m["body"]) for m in bodies] == [4096, 4096, 2048, 0]
    assert [m["more_body"] for m in bodies] == [True, True, True, False]
    assert b"".join(m["body"] for m in bodies) == CONTENT


@pytest.mark.anyio
async def test_transfer_stops_when_the_client_disconnects(
    anyio_backend: str, data_file: Path
) -> None:
    first_chunk_sent = anyio.Event()
    stalled = anyio.Event()
    sent: list[Message] = []
    ran: list[bool] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body" and first_chunk_sent.is_set():
            stalled.set()
            await anyio.sleep_forever()  # a client that stopped reading
        sent.append(message)
        if message["type"] == "http.response.body":
            first_chunk_sent.set()

    async def receive() -> Message:
        await stalled.wait()
        return {"type": "http.disconnect"}

    response = FileResponse(data_file, background=BackgroundTask(ran.append, True))
    response.chunk_size = 1024
    with anyio.fail_after(5):
        await response({"type": "http", "method": "GET", "headers": []}, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert ran == [True]


@pytest.mark.anyio
async def test_unread_request_body_does_not_stop_the_transfer(
    anyio_backend: str, data_file: Path
) -> None:
    messages = [{"type": "http.request", "body": b"x", "more_body": False}]

    async def receive() -> Message:
        if messages:
            return messages.pop()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    send = Recorder()
    response = FileResponse(data_file)
    response.chunk_size = 4096  # several chunks, so the disconnect watcher runs
    with anyio.fail_after(5):
        await response({"type": "http", "method": "GET"}, receive, send)
    assert b"".join(m["body"] for m in send.body_messages) == CONTENT


@pytest.mark.anyio
@pytest.mark.parametrize("chunk_size", [1024, 64 * 1024], ids=["chunked", "one message"])
@pytest.mark.parametrize("spec_version", [None, "2.3", "2.4"])
async def test_a_send_error_propagates_unchanged(
    anyio_backend: str, data_file: Path, chunk_size: int, spec_version: str | None
) -> None:
    # As Starlette, whatever the ASGI version: the same OSError escapes, the background
    # task does not run. (This test used to pin the old answer: a quiet return.)
    calls: list[str] = []
    ran: list[bool] = []
    lost = OSError("connection lost")

    async def send(message: Message) -> None:
        calls.append(message["type"])
        if message["type"] == "http.response.body":
            raise lost

    scope: Scope = {"type": "http", "method": "GET"}
    receive: Any = quiet_receive
    if spec_version is not None:
        scope["asgi"] = {"version": "3.0", "spec_version": spec_version}
    if spec_version == "2.4":
        receive = receive_must_not_be_called
    response = FileResponse(data_file, background=BackgroundTask(ran.append, True))
    response.chunk_size = chunk_size
    with anyio.fail_after(5), pytest.raises(OSError) as caught:
        await response(scope, receive, send)
    assert caught.value is lost
    assert calls == ["http.response.start", "http.response.body"]
    assert ran == []


async def receive_must_not_be_called() -> Message:
    raise AssertionError("receive() called")


@pytest.mark.anyio
async def test_no_listener_on_asgi_2_4(anyio_backend: str, data_file: Path) -> None:
    send = Recorder()
    response = FileResponse(data_file)
    response.chunk_size = 1024  # several chunks: a listener would have been started
    scope: Scope = {
        "type": "http",
        "method": "GET",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
    }
    with anyio.fail_after(5):
        await response(scope, receive_must_not_be_called, send)
    assert b"".join(m["body"] for m in send.body_messages) == CONTENT


@pytest.mark.anyio
async def test_a_small_body_is_also_watched_below_asgi_2_4(
    anyio_backend: str, data_file: Path
) -> None:
    # Starlette listens below 2.4 whatever the size (stellate used not to, for one chunk).
    calls: list[bool] = []

    async def receive() -> Message:
        calls.append(True)
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        await anyio.lowlevel.checkpoint()

    with anyio.fail_after(5):
        await FileResponse(data_file)({"type": "http", "method": "GET"}, receive, send)
    assert calls == [True]


@pytest.mark.anyio
async def test_websocket_scope_sends_a_denial_response(anyio_backend: str, data_file: Path) -> None:
    send = Recorder()
    scope: Scope = {"type": "websocket", "path": "/", "headers": []}
    with anyio.fail_after(5):
        await FileResponse(data_file)(scope, receive_must_not_be_called, send)
    assert {m["type"] for m in send.messages} == {
        "websocket.http.response.start",
        "websocket.http.response.body",
    }
    assert b"".join(m.get("body", b"") for m in send.messages) == CONTENT


@pytest.mark.anyio
async def test_background_does_not_run_after_a_failure(anyio_backend: str, data_file: Path) -> None:
    ran: list[bool] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise RuntimeError("server broke")

    response = FileResponse(data_file, background=BackgroundTask(ran.append, True))
    with anyio.fail_after(5), pytest.raises(RuntimeError, match="server broke"):
        await response({"type": "http", "method": "GET"}, quiet_receive, send)
    assert ran == []


@pytest.mark.anyio
async def test_background_does_not_run_after_a_cancellation(
    anyio_backend: str, data_file: Path
) -> None:
    ran: list[bool] = []

    async def task() -> None:
        ran.append(True)  # no await first: it would run if it were started at all

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            await anyio.sleep_forever()

    response = FileResponse(data_file, background=BackgroundTask(task))
    with anyio.move_on_after(0.05):
        await response({"type": "http", "method": "GET"}, quiet_receive, send)
    assert ran == []


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["head", "Head"])
async def test_method_is_compared_case_insensitively(
    anyio_backend: str, data_file: Path, method: str
) -> None:
    send = Recorder()
    with anyio.fail_after(5):
        await FileResponse(data_file)({"type": "http", "method": method}, quiet_receive, send)
    assert send.body_messages == [{"type": "http.response.body", "body": b"", "more_body": False}]
    ranged = Recorder()
    scope = {"type": "http", "method": "get", "headers": [(b"range", b"bytes=0-1")]}
    with anyio.fail_after(5):
        await FileResponse(data_file)(scope, quiet_receive, ranged)
    assert ranged.messages[0]["status"] == 206


@pytest.mark.anyio
@pytest.mark.parametrize("range_header", [None, b"bytes=0-1", b"bytes=0-1,5-6"])
async def test_head_ends_with_more_body_false(
    anyio_backend: str, data_file: Path, range_header: bytes | None
) -> None:
    headers = [] if range_header is None else [(b"range", range_header)]
    send = Recorder()
    with anyio.fail_after(5):
        await FileResponse(data_file)(scope_for("HEAD", headers), quiet_receive, send)
    assert send.body_messages == [{"type": "http.response.body", "body": b"", "more_body": False}]


@pytest.mark.anyio
async def test_generate_multipart_override_is_used(anyio_backend: str, data_file: Path) -> None:
    class Framed(FileResponse):
        def generate_multipart(
            self, ranges: Any, boundary: str, max_size: int, content_type: str
        ) -> Any:
            def header(start: int, end: int) -> bytes:
                return f"<{start}:{end}>".encode()

            parts = sum(len(header(start, end)) + (end - start) + 2 for start, end in ranges)
            return parts + len(f"--{boundary}--"), header

    send = Recorder()
    scope = {"type": "http", "method": "GET", "headers": [(b"range", b"bytes=0-1,5-6")]}
    with anyio.fail_after(5):
        await Framed(data_file)(scope, quiet_receive, send)
    body = b"".join(m["body"] for m in send.body_messages)
    assert body.startswith(b"<0:2>" + CONTENT[0:2] + b"\r\n<5:7>" + CONTENT[5:7] + b"\r\n--")
    length = dict(send.messages[0]["headers"])[b"content-length"]
    assert int(length) == len(body)


def test_construction_touches_no_file_system(data_file: Path) -> None:
    # Building one (in an async endpoint, or StaticFiles for each file) must not block the
    # loop: no getcwd for a relative path (it used to call os.path.abspath here).
    calls: list[str] = []
    real_getcwd = os.getcwd

    def getcwd() -> str:
        calls.append("getcwd")
        return real_getcwd()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "getcwd", getcwd)
        FileResponse("relative/name.txt", filename="name.txt")
        FileResponse(data_file, filename="name.txt")
    assert calls == []


@pytest.mark.anyio
async def test_a_file_shrinking_mid_transfer_is_an_error(
    anyio_backend: str, data_file: Path
) -> None:
    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            await anyio.Path(data_file).write_bytes(b"")

    response = FileResponse(data_file)
    response.chunk_size = 1024
    with anyio.fail_after(5), pytest.raises(RuntimeError, match="is shorter than expected"):
        await response({"type": "http", "method": "GET"}, quiet_receive, send)


@pytest.mark.anyio
async def test_generate_multipart_method(anyio_backend: str, data_file: Path) -> None:
    response = FileResponse(data_file)
    length, header = response.generate_multipart([(0, 2)], "b", 10, "text/plain")
    assert header(0, 2) == b"--b\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/10\r\n\r\n"
    assert length == len(header(0, 2)) + 2 + 2 + len(b"--b--")
    assert isinstance(response, Response)


def test_a_short_read_of_a_small_file_is_an_error(
    test_client_factory: ClientFactory, data_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import stellate._fileresponse

    # The file is checked for size when opened; a read that still comes back short (the
    # file was truncated between the check and the read) must not pass for the body.
    monkeypatch.setattr(stellate._fileresponse, "_read_at", lambda file, offset, size: b"x")
    client = test_client_factory(serve(data_file))
    with pytest.raises(RuntimeError, match=r"data\.bin is shorter than expected\.$"):
        client.get("/", headers={"range": "bytes=0-99"})


@pytest.mark.anyio
async def test_small_bodies_are_sent_in_one_message(anyio_backend: str, data_file: Path) -> None:
    send = Recorder()
    scope = {"type": "http", "method": "GET", "headers": [(b"range", b"bytes=10-19")]}
    with anyio.fail_after(5):
        await FileResponse(data_file)(scope, quiet_receive, send)
    assert [m["type"] for m in send.messages] == ["http.response.start", "http.response.body"]
    assert send.messages[1] == {
        "type": "http.response.body",
        "body": CONTENT[10:20],
        "more_body": False,
    }


def test_validators_removed_by_the_application_are_not_matched(
    test_client_factory: ClientFactory, data_file: Path
) -> None:
    info = data_file.stat()
    etag = FileResponse(data_file, stat_result=info).headers["etag"]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = FileResponse(data_file, headers={"Accept-Ranges": "none"}, stat_result=info)
        del response.headers["etag"]
        await response(scope, receive, send)

    client = test_client_factory(app)
    plain = client.get("/")
    assert (plain.status_code, plain.headers["accept-ranges"]) == (200, "none")
    assert "etag" not in plain.headers
    ranged = client.get("/", headers={"range": "bytes=0-1", "if-range": etag})
    assert ranged.status_code == 200


def test_responses_module_has_no_other_lazy_names() -> None:
    import stellate.responses

    with pytest.raises(AttributeError, match="Nope"):
        stellate.responses.Nope  # noqa: B018


def test_a_read_error_is_a_clear_error(
    test_client_factory: ClientFactory, data_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import stellate._fileresponse

    def failing_read(file: Any, offset: int, size: int, close: bool = False) -> bytes:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(stellate._fileresponse, "_read_at", failing_read)
    client = test_client_factory(serve(data_file))
    with pytest.raises(RuntimeError, match=r"data\.bin cannot be read: .*Input/output error"):
        client.get("/")


@pytest.mark.anyio
async def test_serving_files_makes_no_blocking_call_on_the_loop(
    anyio_backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A blocking-call detector stays silent (it watches the asyncio loop): no getcwd for a
    # relative path (pathsend or not), no stat or open outside a worker thread, for
    # FileResponse and for every response StaticFiles builds (200, 206, 304, 404.html).
    from stellate.staticfiles import StaticFiles

    (tmp_path / "page.txt").write_bytes(CONTENT)
    (tmp_path / "404.html").write_bytes(b"lost")
    monkeypatch.chdir(tmp_path)
    static = StaticFiles(directory=tmp_path, html=True)
    etag = FileResponse(tmp_path / "page.txt", stat_result=(tmp_path / "page.txt").stat())
    requests: list[tuple[Any, Scope]] = [
        (FileResponse("page.txt"), scope_for()),
        (FileResponse("page.txt"), {**scope_for(), "extensions": {}}),
        (static, {**scope_for(), "path": "/page.txt"}),
        (static, {**scope_for(headers=[(b"range", b"bytes=0-1")]), "path": "/page.txt"}),
        (
            static,
            {
                **scope_for(headers=[(b"if-none-match", etag.headers["etag"].encode())]),
                "path": "/page.txt",
            },
        ),
        (static, {**scope_for(), "path": "/missing"}),
    ]
    # The suite's blockbuster fixture (tests/conftest.py) is active: a blocking call fails.
    for app, scope in requests:
        send = Recorder()
        with anyio.fail_after(5):
            await app(scope, quiet_receive, send)
        assert send.messages[0]["status"] in (200, 206, 304, 404)
