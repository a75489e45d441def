"""Tests for stellate.formparsers and Request.form(): what a well-formed form parses to.

The parsers are fed hand-split chunks (a field cut in the middle, one byte at a time) to
show that parsing is incremental and that chunk boundaries never change the result.
Malformed bodies and resource cleanup are in test_forms_bad_input.py.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any

import pytest

from stellate.applications import Stellate
from stellate.datastructures import MAX_SPOOL_SIZE, FormData, Headers, UploadFile
from stellate.exceptions import HTTPException
from stellate.formparsers import (
    FormMessage,
    FormParser,
    MultiPartException,
    MultiPartParser,
    MultipartPart,
)
from stellate.requests import Request
from stellate.responses import JSONResponse, PlainTextResponse, Response
from stellate.routing import Route
from stellate.types import Message, Scope

BOUNDARY = "xYzZY"
URLENCODED = "application/x-www-form-urlencoded"


async def chunks(*parts: bytes) -> AsyncGenerator[bytes, None]:
    for part in parts:
        yield part


def headers(content_type: str) -> Headers:
    return Headers({"content-type": content_type})


def multipart(*parts: tuple[str, bytes], boundary: str = BOUNDARY) -> bytes:
    """A multipart body from (header block, data) pairs; headers separated by CRLF."""
    out = b""
    for head, data in parts:
        out += f"--{boundary}\r\n{head}\r\n\r\n".encode("latin-1") + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def field(name: str, value: bytes, extra: str = "") -> tuple[str, bytes]:
    head = f'Content-Disposition: form-data; name="{name}"' + extra
    return head, value


def file(name: str, filename: str, data: bytes, extra: str = "") -> tuple[str, bytes]:
    head = f'Content-Disposition: form-data; name="{name}"; filename="{filename}"' + extra
    return head, data


def mp_headers(extra: str = "") -> Headers:
    return headers(f"multipart/form-data; boundary={BOUNDARY}{extra}")


def split_every(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


# --------------------------------------------------------------------- urlencoded


@pytest.mark.anyio
async def test_urlencoded_fields_across_chunk_boundaries() -> None:
    body = b"name=Ada+Lovelace&lang=en&lang=fr&empty=&flag&sym=%26%3D%2B"
    for size in (1, 3, len(body)):
        parser = FormParser(headers(URLENCODED), chunks(*split_every(body, size)))
        form = await parser.parse()
        assert form.multi_items() == [
            ("name", "Ada Lovelace"),
            ("lang", "en"),
            ("lang", "fr"),
            ("empty", ""),
            ("flag", ""),
            ("sym", "&=+"),
        ]


@pytest.mark.anyio
async def test_urlencoded_last_field_parsed_without_final_empty_chunk() -> None:
    # The stream ends right after "b=2": no trailing "&", no empty chunk.
    form = await FormParser(headers(URLENCODED), chunks(b"a=1&b", b"=2")).parse()
    assert form.multi_items() == [("a", "1"), ("b", "2")]


@pytest.mark.anyio
async def test_urlencoded_empty_body_is_an_empty_form() -> None:
    form = await FormParser(headers(URLENCODED), chunks()).parse()
    assert form == FormData()


@pytest.mark.anyio
async def test_urlencoded_charset_from_content_type() -> None:
    parser = FormParser(headers(URLENCODED + "; charset=latin-1"), chunks(b"caf%E9=cr%E8me"))
    assert (await parser.parse()).multi_items() == [("café", "crème")]


@pytest.mark.anyio
async def test_urlencoded_charset_field_applies_to_every_field() -> None:
    # _charset_ comes last, yet decides how the field before it is decoded.
    body = b"word=%E9t%E9&_charset_=iso-8859-1"
    form = await FormParser(headers(URLENCODED), chunks(body)).parse()
    assert form["word"] == "été"
    assert form["_charset_"] == "iso-8859-1"


@pytest.mark.anyio
async def test_urlencoded_max_fields_boundary() -> None:
    ok = await FormParser(headers(URLENCODED), chunks(b"a=1&b=2"), max_fields=2).parse()
    assert len(ok.multi_items()) == 2
    with pytest.raises(MultiPartException, match=r"max_fields\) is 2"):
        await FormParser(headers(URLENCODED), chunks(b"a=1&b=2&c=3"), max_fields=2).parse()


@pytest.mark.anyio
async def test_urlencoded_max_part_size_counts_name_and_value() -> None:
    ok = await FormParser(headers(URLENCODED), chunks(b"ab=cd"), max_part_size=4).parse()
    assert ok["ab"] == "cd"
    with pytest.raises(MultiPartException, match=r"max_part_size\) of 4 bytes"):
        await FormParser(headers(URLENCODED), chunks(b"ab", b"=cde"), max_part_size=4).parse()


def test_form_message_members() -> None:
    assert [m.name for m in FormMessage] == [
        "FIELD_START",
        "FIELD_NAME",
        "FIELD_DATA",
        "FIELD_END",
        "END",
    ]


def test_multipart_exception_carries_its_message() -> None:
    exc = MultiPartException("bad boundary")
    assert exc.message == "bad boundary"
    assert str(exc) == "bad boundary"


def test_multipart_part_defaults_are_independent() -> None:
    first, second = MultipartPart(), MultipartPart()
    first.data.extend(b"x")
    first.item_headers.append((b"a", b"b"))
    assert second.data == bytearray()
    assert second.item_headers == []
    assert second.file is None
    assert second.field_name == ""
    assert second.content_disposition is None


# ---------------------------------------------------------------------- multipart


@pytest.mark.anyio
@pytest.mark.parametrize("size", [1, 7, 10_000])
async def test_multipart_fields_and_files_any_chunking(size: int) -> None:
    body = multipart(
        field("title", "Résumé".encode()),
        file(
            "doc",
            "cv.txt",
            b"line 1\r\nline 2\r\n--not-the-boundary",
            "\r\nContent-Type: text/plain",
        ),
        field("title", b"second"),
        file("empty", "", b""),
    )
    form = await MultiPartParser(mp_headers(), chunks(*split_every(body, size))).parse()
    try:
        assert form.getlist("title") == ["Résumé", "second"]
        doc = form["doc"]
        assert isinstance(doc, UploadFile)
        assert doc.filename == "cv.txt"
        assert doc.content_type == "text/plain"
        assert doc.size == len(b"line 1\r\nline 2\r\n--not-the-boundary")
        assert await doc.read() == b"line 1\r\nline 2\r\n--not-the-boundary"
        empty = form["empty"]
        assert isinstance(empty, UploadFile)
        assert (empty.filename, empty.size) == ("", 0)
        assert await empty.read() == b""
        assert [key for key, _ in form.multi_items()] == ["title", "doc", "title", "empty"]
    finally:
        await form.close()


@pytest.mark.anyio
async def test_multipart_part_headers_are_kept_on_the_upload() -> None:
    body = multipart(
        file("f", "a.bin", b"\x00\x01", "\r\nContent-Type: application/octet-stream\r\nX-Trace: 42")
    )
    form = await MultiPartParser(mp_headers(), chunks(body)).parse()
    upload = form["f"]
    assert isinstance(upload, UploadFile)
    assert upload.headers["x-trace"] == "42"
    assert upload.headers.raw == [
        (b"content-disposition", b'form-data; name="f"; filename="a.bin"'),
        (b"content-type", b"application/octet-stream"),
        (b"x-trace", b"42"),
    ]
    await form.close()
    assert upload.file.closed


@pytest.mark.anyio
async def test_multipart_large_file_rolls_over_to_disk_intact() -> None:
    data = bytes(range(256)) * ((MAX_SPOOL_SIZE + 300_000) // 256)
    body = multipart(file("big", "big.bin", data))
    form = await MultiPartParser(mp_headers(), chunks(*split_every(body, 65536))).parse()
    upload = form["big"]
    assert isinstance(upload, UploadFile)
    assert upload.file._rolled  # type: ignore[attr-defined]
    assert upload.size == len(data)
    assert await upload.read() == data
    await form.close()
    assert upload.file.closed


@pytest.mark.anyio
async def test_multipart_small_file_stays_in_memory_and_is_rewound() -> None:
    form = await MultiPartParser(mp_headers(), chunks(multipart(file("f", "s", b"abc")))).parse()
    upload = form["f"]
    assert isinstance(upload, UploadFile)
    assert not upload.file._rolled  # type: ignore[attr-defined]
    assert upload.file.tell() == 0
    await form.close()


@pytest.mark.anyio
async def test_multipart_quoted_boundary_and_epilogue() -> None:
    body = multipart(field("a", b"1")) + b"epilogue to ignore"
    parser = MultiPartParser(headers(f'multipart/form-data; boundary="{BOUNDARY}"'), chunks(body))
    assert (await parser.parse()).multi_items() == [("a", "1")]


@pytest.mark.anyio
async def test_multipart_charset_from_content_type() -> None:
    body = multipart(field("w", "été".encode("latin-1")))
    form = await MultiPartParser(mp_headers("; charset=latin-1"), chunks(body)).parse()
    assert form["w"] == "été"


@pytest.mark.anyio
async def test_multipart_charset_field_decodes_fields_before_and_after_it() -> None:
    body = multipart(
        field("before", "é".encode("cp1252")),
        field("_charset_", b"windows-1252"),
        field("after", "€".encode("cp1252")),
    )
    form = await MultiPartParser(mp_headers(), chunks(body)).parse()
    assert form["before"] == "é"
    assert form["after"] == "€"


@pytest.mark.anyio
async def test_multipart_part_charset_wins_for_its_part() -> None:
    body = multipart(
        field("a", "ü".encode("latin-1"), "\r\nContent-Type: text/plain; charset=latin-1"),
        field("b", "ü".encode()),
        field("c", b"plain", "\r\nContent-Type: text/plain"),
    )
    form = await MultiPartParser(mp_headers(), chunks(body)).parse()
    assert (form["a"], form["b"], form["c"]) == ("ü", "ü", "plain")


@pytest.mark.anyio
async def test_multipart_limits_are_inclusive_and_named() -> None:
    two_files = multipart(file("a", "1", b"x"), file("b", "2", b"y"))
    form = await MultiPartParser(mp_headers(), chunks(two_files), max_files=2).parse()
    await form.close()
    with pytest.raises(MultiPartException, match=r"Too many files: the limit \(max_files\) is 1"):
        await MultiPartParser(mp_headers(), chunks(two_files), max_files=1).parse()

    two_fields = multipart(field("a", b"1"), field("b", b"2"))
    assert len(await MultiPartParser(mp_headers(), chunks(two_fields), max_fields=2).parse()) == 2
    with pytest.raises(MultiPartException, match=r"Too many fields: the limit \(max_fields\) is 1"):
        await MultiPartParser(mp_headers(), chunks(two_fields), max_fields=1).parse()


@pytest.mark.anyio
async def test_multipart_max_part_size_applies_to_fields_not_files() -> None:
    body = multipart(field("f", b"12345"))
    form = await MultiPartParser(mp_headers(), chunks(body), max_part_size=5).parse()
    assert form["f"] == "12345"
    with pytest.raises(MultiPartException, match=r"'f' is larger than the limit \(max_part_size\)"):
        await MultiPartParser(mp_headers(), chunks(body), max_part_size=4).parse()
    files = multipart(file("f", "f.bin", b"x" * 100))
    form = await MultiPartParser(mp_headers(), chunks(files), max_part_size=4).parse()
    assert form["f"].size == 100  # type: ignore[union-attr]
    await form.close()


# ------------------------------------------------------------------- Request.form


def form_app(endpoint: Callable[[Request], Any]) -> Stellate:
    return Stellate(routes=[Route("/", endpoint, methods=["POST"])])


def describe(form: FormData) -> list[list[Any]]:
    out: list[list[Any]] = []
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            out.append([key, value.filename, value.size, value.content_type])
        else:
            out.append([key, value])
    return out


def test_request_form_urlencoded_and_multipart(test_client_factory: Callable[..., Any]) -> None:
    async def endpoint(request: Request) -> Response:
        form = await request.form()
        return JSONResponse(describe(form))

    with test_client_factory(form_app(endpoint)) as client:
        response = client.post("/", data={"a": "1", "b": ["2", "3"]})
        assert response.json() == [["a", "1"], ["b", "2"], ["b", "3"]]
        response = client.post(
            "/",
            data={"a": "1"},
            files={"up": ("r.csv", b"x,y\n", "text/csv")},
        )
        assert response.json() == [["a", "1"], ["up", "r.csv", 4, "text/csv"]]


def test_request_form_other_content_types_give_an_empty_form(
    test_client_factory: Callable[..., Any],
) -> None:
    async def endpoint(request: Request) -> Response:
        return JSONResponse(describe(await request.form()))

    with test_client_factory(form_app(endpoint)) as client:
        assert client.post("/", content=b"a=1", headers={"content-type": "text/plain"}).json() == []
        assert client.post("/", content=b"a=1").json() == []


def test_request_form_as_context_manager_closes_uploads(
    test_client_factory: Callable[..., Any],
) -> None:
    seen: list[UploadFile] = []

    async def endpoint(request: Request) -> Response:
        async with request.form() as form:
            upload = form["f"]
            assert isinstance(upload, UploadFile)
            seen.append(upload)
            assert not upload.file.closed
            data = await upload.read()
        assert upload.file.closed
        return PlainTextResponse(data.decode())

    with test_client_factory(form_app(endpoint)) as client:
        response = client.post("/", files={"f": ("a.txt", b"payload")})
    assert response.text == "payload"
    assert seen[0].file.closed


def test_request_form_is_cached_and_closed_with_the_request(
    test_client_factory: Callable[..., Any],
) -> None:
    async def endpoint(request: Request) -> Response:
        first = await request.form()
        # Limits only apply to the parsing call; this one returns the cached form.
        second = await request.form(max_files=0)
        assert first is second
        upload = first["f"]
        assert isinstance(upload, UploadFile)
        await request.close()
        return PlainTextResponse(str(upload.file.closed))

    with test_client_factory(form_app(endpoint)) as client:
        assert client.post("/", files={"f": ("a.txt", b"x")}).text == "True"


def test_request_form_limits_answer_400_naming_the_limit(
    test_client_factory: Callable[..., Any],
) -> None:
    async def endpoint(request: Request) -> Response:
        limit = request.query_params["limit"]
        form = await request.form(**{limit: 1})
        return PlainTextResponse(str(len(form)))

    with test_client_factory(form_app(endpoint)) as client:
        files = {"a": ("a", b"1"), "b": ("b", b"2")}
        response = client.post("/?limit=max_files", files=files)
        assert response.status_code == 400
        assert response.text == "Too many files: the limit (max_files) is 1."
        response = client.post("/?limit=max_fields", data={"a": "1", "b": "2"})
        assert response.status_code == 400
        assert response.text == "Too many fields: the limit (max_fields) is 1."
        response = client.post("/?limit=max_part_size", data={"a": "12"})
        assert response.status_code == 400
        assert "max_part_size" in response.text


def test_request_form_400_reaches_the_apps_handlers(
    test_client_factory: Callable[..., Any],
) -> None:
    async def endpoint(request: Request) -> Response:
        await request.form(max_fields=0)
        return PlainTextResponse("unreachable")

    async def on_400(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    app = Stellate(
        routes=[Route("/", endpoint, methods=["POST"])], exception_handlers={400: on_400}
    )
    with test_client_factory(app) as client:
        response = client.post("/", data={"a": "1"})
    assert response.status_code == 400
    assert response.json() == {"error": "Too many fields: the limit (max_fields) is 0."}


@pytest.mark.anyio
async def test_request_form_outside_an_app_raises_multipart_exception() -> None:
    messages: list[Message] = [{"type": "http.request", "body": b"a=1&b=2", "more_body": False}]

    async def receive() -> Message:
        return messages.pop(0)

    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(b"content-type", URLENCODED.encode())],
    }
    with pytest.raises(MultiPartException, match="max_fields"):
        await Request(scope, receive).form(max_fields=1)


@pytest.mark.anyio
async def test_request_form_after_body_uses_the_buffered_body() -> None:
    messages: list[Message] = [
        {"type": "http.request", "body": b"a=1", "more_body": True},
        {"type": "http.request", "body": b"&b=2", "more_body": False},
    ]

    async def receive() -> Message:
        return messages.pop(0)

    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(b"content-type", URLENCODED.encode())],
    }
    request = Request(scope, receive)
    assert await request.body() == b"a=1&b=2"
    assert (await request.form()).multi_items() == [("a", "1"), ("b", "2")]


def test_http_endpoint_uploads_are_closed_after_the_request(
    test_client_factory: Callable[..., Any],
) -> None:
    from stellate.endpoints import HTTPEndpoint

    uploads: list[UploadFile] = []

    class Upload(HTTPEndpoint):
        async def post(self, request: Request) -> Response:
            form = await request.form()
            upload = form["f"]
            assert isinstance(upload, UploadFile)
            uploads.append(upload)
            return PlainTextResponse(str(upload.file.closed))

    app = Stellate(routes=[Route("/", Upload)])
    with test_client_factory(app) as client:
        assert client.post("/", files={"f": ("a.txt", b"x")}).text == "False"
    assert uploads[0].file.closed
