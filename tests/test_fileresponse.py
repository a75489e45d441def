"""FileResponse: headers, conditional requests, ranges, pathsend, disconnects, bad files.

HTTP-level behaviour is driven through TestClient (both backends via
``test_client_factory``); what TestClient cannot show (pathsend, the exact messages, a
client that disconnects mid-transfer) is driven with hand-written receive/send callables
under ``anyio_backend``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from email.utils import formatdate
from pathlib import Path
from typing import Any

import anyio
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
    assert re.fullmatch(r'"[0-9a-f]+-[0-9a-f]+"', response.headers["etag"])
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
        ("my report.csv", "inline", 'inline; filename="my report.csv"'),
        ('say "hi"\\.txt', "attachment", 'attachment; filename="say \\"hi\\"\\\\.txt"'),
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
    etag = client.head("/").headers["etag"]
    assert client.get("/", headers={"if-none-match": etag}).status_code == 304
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
    with pytest.raises(RuntimeError, match="shrank"):
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


def test_if_none_match(test_client_factory: ClientFactory, data_file: Path) -> None:
    client = test_client_factory(serve(data_file, headers={"Cache-Control": "no-cache"}))
    etag, _ = _validators(client)
    for header in (etag, f"W/{etag}", f'"other", {etag}', f'"a,b", W/{etag}', "*", " * "):
        response = client.get("/", headers={"if-none-match": header})
        assert response.status_code == 304, header
        assert response.content == b""
        assert response.headers["etag"] == etag
        assert response.headers["cache-control"] == "no-cache"
        assert "content-length" not in response.headers
        assert "content-type" not in response.headers
    for header in ('"other"', etag[:-2] + '"', "garbage"):
        response = client.get("/", headers={"if-none-match": header})
        assert response.status_code == 200, header
        assert response.content == CONTENT


def test_if_modified_since(test_client_factory: ClientFactory, data_file: Path) -> None:
    client = test_client_factory(serve(data_file))
    _, last_modified = _validators(client)
    mtime = data_file.stat().st_mtime
    assert client.get("/", headers={"if-modified-since": last_modified}).status_code == 304
    later = formatdate(mtime + 3600, usegmt=True)
    assert client.get("/", headers={"if-modified-since": later}).status_code == 304
    earlier = formatdate(mtime - 3600, usegmt=True)
    assert client.get("/", headers={"if-modified-since": earlier}).status_code == 200
    naive = formatdate(mtime + 3600).replace("+0000", "-0000")
    assert client.get("/", headers={"if-modified-since": naive}).status_code == 304
    assert client.get("/", headers={"if-modified-since": "yesterday"}).status_code == 200
    # If-None-Match present: If-Modified-Since is not even looked at.
    both = {"if-none-match": '"other"', "if-modified-since": later}
    assert client.get("/", headers=both).status_code == 200


def test_conditionals_apply_only_to_200_get_and_head(
    test_client_factory: ClientFactory, data_file: Path
) -> None:
    etag, _ = _validators(test_client_factory(serve(data_file)))
    client = test_client_factory(serve(data_file))
    assert client.post("/", headers={"if-none-match": etag}).status_code == 200
    assert client.head("/", headers={"if-none-match": etag}).status_code == 304
    missing_page = test_client_factory(serve(data_file, status_code=404))
    response = missing_page.get("/", headers={"if-none-match": etag})
    assert response.status_code == 404
    assert response.content == CONTENT


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
    assert body.endswith(delimiter + b"--\r\n")
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


@pytest.mark.parametrize("header", ["bytes=20000-", "bytes=-0", "bytes=99999-99999,88888-"])
def test_unsatisfiable_range_is_416(
    test_client_factory: ClientFactory, data_file: Path, header: str
) -> None:
    response = test_client_factory(serve(data_file)).get("/", headers={"range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(CONTENT)}"
    assert response.text == "Range not satisfiable."


@pytest.mark.parametrize(
    "header",
    [
        "bytes=5-2",
        "bytes=abc",
        "items=0-1",
        "bytes=" + ",".join(["0-0"] * 101),
        "bytes=" + "0-0," * 5000,
        "bytes=" + ",".join(f"{n}-{n}" for n in range(0, 4000, 2)),
        "bytes=0-1," + "9" * 10000 + "-1",
    ],
    ids=["inverted", "garbage", "unit", "101 ranges", "5000 ranges", "2000 distinct", "huge"],
)
def test_range_abuse_gets_the_whole_file(
    test_client_factory: ClientFactory, data_file: Path, header: str
) -> None:
    response = test_client_factory(serve(data_file)).get("/", headers={"range": header})
    assert response.status_code == 200
    assert response.content == CONTENT


def test_if_range(test_client_factory: ClientFactory, data_file: Path) -> None:
    client = test_client_factory(serve(data_file))
    etag, last_modified = _validators(client)
    for if_range, status in [
        (etag, 206),
        (last_modified, 206),
        ('"stale"', 200),
        (f"W/{etag}", 200),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 200),
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
async def test_a_send_error_means_the_client_is_gone(
    anyio_backend: str, data_file: Path, chunk_size: int
) -> None:
    calls: list[str] = []

    async def send(message: Message) -> None:
        calls.append(message["type"])
        if message["type"] == "http.response.body":
            raise OSError("connection lost")

    response = FileResponse(data_file)
    response.chunk_size = chunk_size
    with anyio.fail_after(5):
        await response({"type": "http", "method": "GET"}, quiet_receive, send)
    assert calls == ["http.response.start", "http.response.body"]


@pytest.mark.anyio
async def test_a_file_shrinking_mid_transfer_is_an_error(
    anyio_backend: str, data_file: Path
) -> None:
    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            await anyio.Path(data_file).write_bytes(b"")

    response = FileResponse(data_file)
    response.chunk_size = 1024
    with anyio.fail_after(5), pytest.raises(RuntimeError, match="shrank while"):
        await response({"type": "http", "method": "GET"}, quiet_receive, send)


@pytest.mark.anyio
async def test_generate_multipart_method(anyio_backend: str, data_file: Path) -> None:
    response = FileResponse(data_file)
    length, header = response.generate_multipart([(0, 2)], "b", 10, "text/plain")
    assert header(0, 2) == b"--b\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/10\r\n\r\n"
    assert length == len(header(0, 2)) + 2 + 2 + len(b"--b--\r\n")
    assert isinstance(response, Response)


def test_a_short_read_of_a_small_file_is_an_error(
    test_client_factory: ClientFactory, data_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import stellate._fileresponse

    # The file is checked for size when opened; a read that still comes back short (the
    # file was truncated between the check and the read) must not pass for the body.
    monkeypatch.setattr(stellate._fileresponse, "_read_at", lambda file, offset, size: b"x")
    client = test_client_factory(serve(data_file))
    with pytest.raises(RuntimeError, match="shrank while it was being read"):
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
    plain = client.get("/", headers={"if-none-match": etag})
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
