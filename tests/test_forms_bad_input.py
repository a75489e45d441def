"""Bad form bodies: each ends in a 400/413 saying what was wrong (or a ClientDisconnect
re-raised to the server when the client left), never a 500 for bad input, and leaves no
open file descriptor or temporary file.

The app is driven with raw ASGI calls inside the test's own event loop, so counting the
entries of /proc/self/fd before and after measures only what the parser opened.
Temporary files are pointed at a fresh directory, which must be empty afterwards.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stellate.applications import Stellate
from stellate.datastructures import Headers, UploadFile
from stellate.formparsers import MultiPartException, MultiPartParser
from stellate.requests import ClientDisconnect, Request
from stellate.responses import JSONResponse, Response
from stellate.routing import Route
from stellate.types import Message, Scope

pytestmark = pytest.mark.anyio

BOUNDARY = "b0undary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
URLENCODED = "application/x-www-form-urlencoded"

# What the endpoint saw, for the tests that check the handler's side.
seen: dict[str, Any] = {}


async def echo_form(request: Request) -> Response:
    seen.clear()
    try:
        form = await request.form(max_fields=float("inf"))
    except ClientDisconnect:
        seen["disconnect"] = True
        raise
    seen["uploads"] = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
    out = [
        [key, value if isinstance(value, str) else await value.read()]
        for key, value in form.multi_items()
    ]
    return JSONResponse([[k, v if isinstance(v, str) else v.decode("latin-1")] for k, v in out])


async def limited_form(request: Request) -> Response:
    form = await request.form()
    return JSONResponse(len(form))


app = Stellate(
    routes=[
        Route("/", echo_form, methods=["POST"]),
        Route("/limited", limited_form, methods=["POST"]),
    ]
)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh directory for tempfile to use, to count the temporary files left in it."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def temp_files(directory: Path) -> list[Path]:
    return list(directory.iterdir())


async def post(
    body_chunks: list[bytes],
    content_type: str,
    *,
    path: str = "/",
    disconnect: bool = False,
) -> tuple[int | None, bytes]:
    """POST the chunks to the app; with ``disconnect``, the client leaves after them.

    The status is None when the app sent no response at all.
    """
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test"), (b"content-type", content_type.encode())],
    }
    pending: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": True} for chunk in body_chunks
    ]
    if disconnect:
        pending.append({"type": "http.disconnect"})
    else:
        pending.append({"type": "http.request", "body": b"", "more_body": False})
    sent: list[Message] = []

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(10):
        await app(scope, receive, send)
    start = next((m for m in sent if m["type"] == "http.response.start"), None)
    if start is None:
        return None, b""
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body


def part(head: str, data: bytes) -> bytes:
    return f"--{BOUNDARY}\r\n{head}\r\n\r\n".encode("latin-1") + data + b"\r\n"


def file_part(name: str, data: bytes) -> bytes:
    return part(f'Content-Disposition: form-data; name="{name}"; filename="{name}.bin"', data)


END = f"--{BOUNDARY}--\r\n".encode()
BIG = b"z" * (1024 * 1024 + 100)  # rolls over to disk


async def assert_clean_400(
    chunks: list[bytes], content_type: str, message: str, tmp_dir: Path, path: str = "/"
) -> None:
    before = open_fds()
    status, body = await post(chunks, content_type, path=path)
    assert (status, body.decode()) == (400, message)
    assert open_fds() == before
    assert temp_files(tmp_dir) == []


async def test_missing_boundary(tmp_dir: Path) -> None:
    await assert_clean_400(
        [part('Content-Disposition: form-data; name="a"', b"1") + END],
        "multipart/form-data",
        "Missing boundary in the multipart/form-data Content-Type.",
        tmp_dir,
    )


@pytest.mark.parametrize("boundary", ["", "x" * 71, "caf\xe9", "a\tb"])
async def test_malformed_boundary(boundary: str, tmp_dir: Path) -> None:
    await assert_clean_400(
        [b"irrelevant"],
        f'multipart/form-data; boundary="{boundary}"',
        "Invalid multipart boundary: it must be 1 to 70 visible ASCII characters.",
        tmp_dir,
    )


async def test_body_not_matching_its_boundary(tmp_dir: Path) -> None:
    before = open_fds()
    status, text = await post(
        [b"--other\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--other--\r\n"],
        MULTIPART,
    )
    assert status == 400
    assert text.startswith(b"Malformed multipart body: Expected boundary character")
    assert open_fds() == before


async def test_truncated_mid_file_closes_the_spooled_files(tmp_dir: Path) -> None:
    # One complete file on disk, then a second file cut off in the middle.
    body = file_part("first", BIG) + file_part("second", BIG)[: 1024 * 1024 + 500]
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    await assert_clean_400(
        chunks,
        MULTIPART,
        "The multipart body ended before its closing boundary (truncated body?).",
        tmp_dir,
    )


async def test_empty_multipart_body(tmp_dir: Path) -> None:
    await assert_clean_400(
        [],
        MULTIPART,
        "The multipart body ended before its closing boundary (truncated body?).",
        tmp_dir,
    )


async def test_lf_injected_in_a_part_header_value(tmp_dir: Path) -> None:
    body = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="f"; filename="a.txt"\r\n'
        "Content-Type: text/plain\nX-Injected: yes\r\n\r\n"
        "data\r\n"
    ).encode() + END
    await assert_clean_400(
        [body],
        MULTIPART,
        "Invalid character (LF or NUL) in the 'content-type' part header.",
        tmp_dir,
    )


async def test_cr_injected_in_a_part_header_value(tmp_dir: Path) -> None:
    body = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="f"\rX-Injected: yes\r\n\r\ndata\r\n'
    ).encode() + END
    status, text = await post([body], MULTIPART)
    assert status == 400
    assert text.startswith(b"Malformed multipart body: Did not find LF character at end of header")


async def test_invalid_header_name(tmp_dir: Path) -> None:
    body = part('Content-Disposition: form-data; name="a"\r\nBad Header: 1', b"1") + END
    status, text = await post([body], MULTIPART)
    assert status == 400
    assert text.startswith(b"Malformed multipart body: Found invalid character")


async def test_megabytes_of_part_headers(tmp_dir: Path) -> None:
    huge = 'Content-Disposition: form-data; name="a"; filler="' + "x" * (3 * 1024 * 1024) + '"'
    body = part(huge, b"1") + END
    before = open_fds()
    status, text = await post([body[i : i + 65536] for i in range(0, len(body), 65536)], MULTIPART)
    assert (status, text) == (400, b"Malformed multipart body: Maximum header size exceeded.")
    assert open_fds() == before


async def test_too_many_part_headers(tmp_dir: Path) -> None:
    extra = "\r\n".join(f"X-H{i}: v" for i in range(50))
    body = part('Content-Disposition: form-data; name="a"\r\n' + extra, b"1") + END
    status, text = await post([body], MULTIPART)
    assert (status, text) == (400, b"Malformed multipart body: Maximum header count exceeded.")


async def test_part_without_content_disposition(tmp_dir: Path) -> None:
    await assert_clean_400(
        [file_part("ok", BIG) + part("Content-Type: text/plain", b"1") + END],
        MULTIPART,
        "A part has no Content-Disposition header.",
        tmp_dir,
    )


async def test_part_without_a_name(tmp_dir: Path) -> None:
    await assert_clean_400(
        [part('Content-Disposition: form-data; filename="x"', b"1") + END],
        MULTIPART,
        "A part's Content-Disposition header has no name.",
        tmp_dir,
    )


async def test_unknown_charset(tmp_dir: Path) -> None:
    await assert_clean_400(
        [b"a=1"],
        URLENCODED + "; charset=no-such-codec",
        "Unknown charset 'no-such-codec'.",
        tmp_dir,
    )
    await assert_clean_400(
        [
            file_part("f", BIG)
            + part('Content-Disposition: form-data; name="_charset_"', b"nope")
            + END
        ],
        MULTIPART,
        "Unknown charset 'nope'.",
        tmp_dir,
    )


async def test_hundred_thousand_one_byte_urlencoded_fields(tmp_dir: Path) -> None:
    body = b"&".join([b"a=1"] * 100_000)
    await assert_clean_400(
        [body[i : i + 65536] for i in range(0, len(body), 65536)],
        URLENCODED,
        "Too many fields: the limit (max_fields) is 1000.",
        tmp_dir,
        path="/limited",
    )


async def test_hundred_thousand_one_byte_multipart_fields(tmp_dir: Path) -> None:
    body = file_part("f", BIG) + part('Content-Disposition: form-data; name="a"', b"1") * 100_000
    await assert_clean_400(
        [body[i : i + 65536] for i in range(0, len(body), 65536)],
        MULTIPART,
        "Too many fields: the limit (max_fields) is 1000.",
        tmp_dir,
        path="/limited",
    )


async def test_hundred_thousand_fields_parse_when_allowed() -> None:
    body = b"&".join([b"a=1"] * 100_000)
    status, text = await post([body], URLENCODED)
    assert status == 200
    assert text.count(b'["a","1"]') == 100_000


async def test_non_utf8_names_and_values_decode_leniently() -> None:
    status, text = await post([b"caf%E9=%FF&ok=%C3%A9"], URLENCODED)
    assert status == 200
    assert json.loads(text) == [["caf\ufffd", "\ufffd"], ["ok", "é"]]
    body = part('Content-Disposition: form-data; name="n\xe9"', b"\xff\xfe") + END
    status, text = await post([body.replace(b"n\\xe9", b"n\xe9")], MULTIPART)
    assert status == 200
    assert json.loads(text) == [["n\ufffd", "\ufffd\ufffd"]]


async def test_invalid_percent_escapes_are_kept_as_written() -> None:
    status, text = await post([b"a=%zz&b=%4&c=100%&d%=%%41"], URLENCODED)
    assert status == 200
    assert text == b'[["a","%zz"],["b","%4"],["c","100%"],["d%","%A"]]'


async def test_client_disconnect_mid_upload(tmp_dir: Path) -> None:
    before = open_fds()
    body = file_part("first", BIG) + file_part("second", BIG[:1000])
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    # The endpoint sees ClientDisconnect; like any unhandled exception (as in Starlette),
    # ServerErrorMiddleware answers 500 (to nobody) and re-raises it to the server.
    with pytest.raises(ClientDisconnect):
        await post(chunks, MULTIPART, disconnect=True)
    assert seen == {"disconnect": True}
    assert open_fds() == before
    assert temp_files(tmp_dir) == []


async def test_uploads_are_closed_after_the_request(tmp_dir: Path) -> None:
    before = open_fds()
    body = file_part("a", BIG) + file_part("b", b"small") + END
    status, _ = await post([body[i : i + 65536] for i in range(0, len(body), 65536)], MULTIPART)
    assert status == 200
    assert [upload.file.closed for upload in seen["uploads"]] == [True, True]
    assert open_fds() == before
    assert temp_files(tmp_dir) == []


async def test_cancelled_mid_upload_closes_files(tmp_dir: Path) -> None:
    before = open_fds()
    started = anyio.Event()
    body = file_part("f", BIG)

    async def endless_receive() -> Message:
        if not started.is_set():
            started.set()
            return {"type": "http.request", "body": body, "more_body": True}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(b"content-type", MULTIPART.encode())],
    }
    request = Request(scope, endless_receive)

    async def read_form() -> None:
        await request.form()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(read_form)
            await started.wait()
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
    assert open_fds() == before
    assert temp_files(tmp_dir) == []


FRAGMENTS = [
    f"--{BOUNDARY}".encode(),
    b"--",
    b"\r\n",
    b"\n",
    b"\r",
    b'Content-Disposition: form-data; name="a"',
    b'; filename="f.txt"',
    b"Content-Type: text/plain; charset=latin-1",
    b"_charset_",
    b":",
    b"\x00",
    b"value",
    b"\xff\xfe",
]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pieces=st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=6), max_size=40),
    split=st.integers(min_value=1, max_value=64),
)
def test_any_multipart_body_parses_or_fails_cleanly(
    anyio_backend: str, pieces: list[bytes], split: int
) -> None:
    body = b"".join(pieces)

    async def stream() -> AsyncGenerator[bytes, None]:
        for start in range(0, len(body), split):
            yield body[start : start + split]

    async def parse() -> None:
        headers = Headers({"content-type": MULTIPART})
        try:
            form = await MultiPartParser(headers, stream(), max_part_size=64).parse()
        except MultiPartException as exc:
            messages.append(exc.message)
        else:
            await form.close()

    messages: list[str] = []
    before = open_fds()
    anyio.run(parse, backend=anyio_backend)
    assert open_fds() == before
    assert all(message.endswith(".") and len(message) > 10 for message in messages)
