"""Bad form bodies: each ends in a 400/413 with Starlette's message (or a ClientDisconnect
re-raised to the server when the client left), never a 500 for bad input, and leaves no
open file descriptor or temporary file.
Where Starlette accepts a body (an empty or truncated multipart body, an unknown
charset), so does stellate, still without leaking anything.

The app is driven with raw ASGI calls inside the test's own event loop, so counting the
entries of /proc/self/fd before and after measures only what the parser opened.
Temporary files are pointed at a fresh directory, which must be empty afterwards.
"""

from __future__ import annotations

import codecs
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
        "Missing boundary in multipart.",
        tmp_dir,
    )


@pytest.mark.parametrize("boundary", ["", "x" * 71, "caf\xe9", "a\tb"])
async def test_malformed_boundary(boundary: str, tmp_dir: Path) -> None:
    # Refusals Starlette lacks (kept: invalid input), with its generic message.
    await assert_clean_400(
        [b"irrelevant"],
        f'multipart/form-data; boundary="{boundary}"',
        "Invalid multipart data.",
        tmp_dir,
    )


async def test_body_not_matching_its_boundary(tmp_dir: Path) -> None:
    before = open_fds()
    status, text = await post(
        [b"--other\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--other--\r\n"],
        MULTIPART,
    )
    assert (status, text) == (400, b"Invalid multipart data.")
    assert open_fds() == before


async def test_truncated_body_gives_the_complete_parts(tmp_dir: Path) -> None:
    # As Starlette: one complete file, then a second file and a field cut off in the
    # middle; the form holds the complete part, the cut one's spooled file is closed.
    body = (
        file_part("first", BIG)
        + part('Content-Disposition: form-data; name="a"', b"1")
        + file_part("second", BIG)[: 1024 * 1024 + 500]
    )
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    before = open_fds()
    status, text = await post(chunks, MULTIPART)
    assert status == 200
    assert json.loads(text) == [["first", BIG.decode()], ["a", "1"]]
    assert open_fds() == before
    assert temp_files(tmp_dir) == []


async def test_truncated_field_is_left_out(tmp_dir: Path) -> None:
    body = (
        part('Content-Disposition: form-data; name="a"', b"1")
        + part('Content-Disposition: form-data; name="b"', b"2")[:-10]
    )
    status, text = await post([body], MULTIPART)
    assert (status, json.loads(text)) == (200, [["a", "1"]])


async def test_empty_multipart_body(tmp_dir: Path) -> None:
    # An empty form, as in Starlette (it was a 400 before).
    status, text = await post([], MULTIPART)
    assert (status, json.loads(text)) == (200, [])


async def test_lf_injected_in_a_part_header_value(tmp_dir: Path) -> None:
    body = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="f"; filename="a.txt"\r\n'
        "Content-Type: text/plain\nX-Injected: yes\r\n\r\n"
        "data\r\n"
    ).encode() + END
    # Kept refusal (Starlette lacks it), with Starlette's generic message.
    await assert_clean_400([body], MULTIPART, "Invalid multipart data.", tmp_dir)


async def test_cr_injected_in_a_part_header_value(tmp_dir: Path) -> None:
    body = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="f"\rX-Injected: yes\r\n\r\ndata\r\n'
    ).encode() + END
    status, text = await post([body], MULTIPART)
    assert (status, text) == (400, b"Invalid multipart data.")


async def test_invalid_header_name(tmp_dir: Path) -> None:
    body = part('Content-Disposition: form-data; name="a"\r\nBad Header: 1', b"1") + END
    status, text = await post([body], MULTIPART)
    assert (status, text) == (400, b"Invalid multipart data.")


async def test_megabytes_of_part_headers(tmp_dir: Path) -> None:
    huge = 'Content-Disposition: form-data; name="a"; filler="' + "x" * (3 * 1024 * 1024) + '"'
    body = part(huge, b"1") + END
    before = open_fds()
    status, text = await post([body[i : i + 65536] for i in range(0, len(body), 65536)], MULTIPART)
    assert (status, text) == (400, b"Invalid multipart data.")
    assert open_fds() == before


async def test_too_many_part_headers(tmp_dir: Path) -> None:
    extra = "\r\n".join(f"X-H{i}: v" for i in range(50))
    body = part('Content-Disposition: form-data; name="a"\r\n' + extra, b"1") + END
    status, text = await post([body], MULTIPART)
    assert (status, text) == (400, b"Invalid multipart data.")


async def test_part_without_content_disposition(tmp_dir: Path) -> None:
    await assert_clean_400(
        [file_part("ok", BIG) + part("Content-Type: text/plain", b"1") + END],
        MULTIPART,
        'The Content-Disposition header field "name" must be provided.',
        tmp_dir,
    )


async def test_part_without_a_name(tmp_dir: Path) -> None:
    await assert_clean_400(
        [part('Content-Disposition: form-data; filename="x"', b"1") + END],
        MULTIPART,
        'The Content-Disposition header field "name" must be provided.',
        tmp_dir,
    )


async def test_unknown_charset_falls_back_to_latin_1(tmp_dir: Path) -> None:
    # As Starlette: no error (it was a 400 before). Urlencoded forms ignore charsets.
    status, text = await post([b"a=%C3%A9"], URLENCODED + "; charset=no-such-codec")
    assert (status, json.loads(text)) == (200, [["a", "é"]])
    body = part('Content-Disposition: form-data; name="a"', "é".encode()) + END
    for charset in ("no-such-codec", "base64", "rot13"):
        status, text = await post([body], MULTIPART + f"; charset={charset}")
        assert (status, json.loads(text)) == (200, [["a", "Ã©"]]), charset
    body = part('Content-Disposition: form-data; name="_charset_"', b"nope") + END
    status, text = await post([body], MULTIPART)
    assert (status, json.loads(text)) == (200, [["_charset_", "nope"]])
    assert temp_files(tmp_dir) == []


async def test_codec_search_sees_one_lookup_per_form() -> None:
    # The charset is resolved once per form: a user's codec search function sees one
    # lookup of the unknown name, however many parts there are.
    lookups: list[str] = []

    def search(name: str) -> None:
        lookups.append(name)

    codecs.register(search)
    try:
        body = b"".join(
            part(f'Content-Disposition: form-data; name="f{i}"', b"v") for i in range(5)
        )
        status, _ = await post([body + END], MULTIPART + "; charset=x-counted-charset")
    finally:
        codecs.unregister(search)
    assert status == 200
    assert lookups == ["x_counted_charset"]


async def test_hundred_thousand_one_byte_urlencoded_fields(tmp_dir: Path) -> None:
    body = b"&".join([b"a=1"] * 100_000)
    await assert_clean_400(
        [body[i : i + 65536] for i in range(0, len(body), 65536)],
        URLENCODED,
        "Too many fields. Maximum number of fields is 1000.",
        tmp_dir,
        path="/limited",
    )


async def test_hundred_thousand_one_byte_multipart_fields(tmp_dir: Path) -> None:
    body = file_part("f", BIG) + part('Content-Disposition: form-data; name="a"', b"1") * 100_000
    await assert_clean_400(
        [body[i : i + 65536] for i in range(0, len(body), 65536)],
        MULTIPART,
        "Too many fields. Maximum number of fields is 1000.",
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
    # Multipart: bytes that are not UTF-8 decode as latin-1, as in Starlette (not U+FFFD).
    body = part('Content-Disposition: form-data; name="n\xe9"', b"\xff\xfe") + END
    status, text = await post([body], MULTIPART)
    assert status == 200
    assert json.loads(text) == [["n\xe9", "\xff\xfe"]]


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
