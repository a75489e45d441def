"""Tests for stellate.formparsers and Request.form(): what a well-formed form parses to.

The parsers are fed hand-split chunks (a field cut in the middle, one byte at a time) to
show that parsing is incremental and that chunk boundaries never change the result.
Malformed bodies and resource cleanup are in test_forms_bad_input.py.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import AsyncGenerator, Callable
from typing import Any

import anyio
import pytest

from stellate import formparsers
from stellate.applications import Stellate
from stellate.datastructures import MAX_SPOOL_SIZE, FormData, Headers, UploadFile
from stellate.exceptions import HTTPException, StellateDeprecationWarning
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


# Charsets: urlencoded forms ignore them, as Starlette's do (these two tests pinned the
# old charset handling and now check Starlette's).


@pytest.mark.anyio
async def test_urlencoded_ignores_the_content_type_charset() -> None:
    # Escapes are UTF-8 (invalid ones U+FFFD); raw bytes are latin-1 characters.
    content_type = headers(URLENCODED + "; charset=latin-1")
    parser = FormParser(content_type, chunks(b"caf%E9=cr%C3%A8me&raw=\xe9t\xe9"))
    assert (await parser.parse()).multi_items() == [("caf\ufffd", "crème"), ("raw", "été")]
    unknown = FormParser(headers(URLENCODED + "; charset=no-such"), chunks(b"a=%C3%A9"))
    assert (await unknown.parse()).multi_items() == [("a", "é")]


@pytest.mark.anyio
async def test_urlencoded_charset_field_is_just_a_field() -> None:
    body = b"word=%E9t%E9&_charset_=iso-8859-1"
    form = await FormParser(headers(URLENCODED), chunks(body)).parse()
    assert form["word"] == "\ufffdt\ufffd"
    assert form["_charset_"] == "iso-8859-1"


@pytest.mark.anyio
async def test_urlencoded_max_fields_boundary() -> None:
    ok = await FormParser(headers(URLENCODED), chunks(b"a=1&b=2"), max_fields=2).parse()
    assert len(ok.multi_items()) == 2
    with pytest.raises(MultiPartException) as raised:
        await FormParser(headers(URLENCODED), chunks(b"a=1&b=2&c=3"), max_fields=2).parse()
    assert raised.value.message == "Too many fields. Maximum number of fields is 2."


@pytest.mark.anyio
async def test_urlencoded_max_part_size_counts_name_and_value() -> None:
    ok = await FormParser(headers(URLENCODED), chunks(b"ab=cd"), max_part_size=4).parse()
    assert ok["ab"] == "cd"
    with pytest.raises(MultiPartException) as raised:
        await FormParser(headers(URLENCODED), chunks(b"ab", b"=cde"), max_part_size=4).parse()
    assert raised.value.message == "Field exceeded maximum size of 0KB."


@pytest.mark.anyio
@pytest.mark.parametrize(("limit", "kilobytes"), [(1023, 0), (1024, 1), (1500, 1), (4096, 4)])
async def test_part_size_messages_print_truncated_kilobytes(limit: int, kilobytes: int) -> None:
    field_body = b"a=" + b"x" * limit
    with pytest.raises(MultiPartException) as raised:
        await FormParser(headers(URLENCODED), chunks(field_body), max_part_size=limit).parse()
    assert raised.value.message == f"Field exceeded maximum size of {kilobytes}KB."
    body = multipart(field("a", b"x" * (limit + 1)))
    with pytest.raises(MultiPartException) as raised:
        await MultiPartParser(mp_headers(), chunks(body), max_part_size=limit).parse()
    assert raised.value.message == f"Part exceeded maximum size of {kilobytes}KB."


@pytest.mark.anyio
async def test_limits_print_as_passed() -> None:
    with pytest.raises(MultiPartException) as raised:
        await FormParser(headers(URLENCODED), chunks(b"a=1&b=2"), max_fields=1.0).parse()
    assert raised.value.message == "Too many fields. Maximum number of fields is 1.0."


def test_form_message_is_deprecated_on_lookup_by_value() -> None:
    with pytest.warns(StellateDeprecationWarning) as caught:
        member = FormMessage(1)
    assert member is FormMessage.FIELD_START
    assert [str(w.message) for w in caught] == [
        "`FormMessage` is deprecated and will be removed in a future version."
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert FormMessage.END.value == 5  # reading a member does not warn


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


# As Starlette: only the request Content-Type's charset counts; a _charset_ field and a
# part's own charset are not consulted (these two tests pinned the opposite before).


@pytest.mark.anyio
async def test_multipart_charset_field_is_just_a_field() -> None:
    body = multipart(
        field("before", "€".encode("cp1252")),
        field("_charset_", b"windows-1252"),
        field("after", "€".encode("cp1252")),
    )
    form = await MultiPartParser(mp_headers(), chunks(body)).parse()
    # b"\x80" is not UTF-8: the value falls back to latin-1.
    assert form["before"] == "\x80"
    assert form["after"] == "\x80"


@pytest.mark.anyio
async def test_multipart_part_charset_is_not_consulted() -> None:
    body = multipart(
        field("a", "€".encode("cp1252"), "\r\nContent-Type: text/plain; charset=cp1252"),
        field("b", "ü".encode()),
        field("c", b"plain", "\r\nContent-Type: text/plain; charset=no-such-charset"),
    )
    form = await MultiPartParser(mp_headers(), chunks(body)).parse()
    assert (form["a"], form["b"], form["c"]) == ("\x80", "ü", "plain")


@pytest.mark.anyio
async def test_multipart_limits_are_inclusive_and_named() -> None:
    two_files = multipart(file("a", "1", b"x"), file("b", "2", b"y"))
    form = await MultiPartParser(mp_headers(), chunks(two_files), max_files=2).parse()
    await form.close()
    with pytest.raises(MultiPartException) as raised:
        await MultiPartParser(mp_headers(), chunks(two_files), max_files=1).parse()
    assert raised.value.message == "Too many files. Maximum number of files is 1."

    two_fields = multipart(field("a", b"1"), field("b", b"2"))
    assert len(await MultiPartParser(mp_headers(), chunks(two_fields), max_fields=2).parse()) == 2
    with pytest.raises(MultiPartException) as raised:
        await MultiPartParser(mp_headers(), chunks(two_fields), max_fields=1).parse()
    assert raised.value.message == "Too many fields. Maximum number of fields is 1."


@pytest.mark.anyio
async def test_multipart_max_part_size_applies_to_fields_not_files() -> None:
    body = multipart(field("f", b"12345"))
    form = await MultiPartParser(mp_headers(), chunks(body), max_part_size=5).parse()
    assert form["f"] == "12345"
    with pytest.raises(MultiPartException) as raised:
        await MultiPartParser(mp_headers(), chunks(body), max_part_size=4).parse()
    assert raised.value.message == "Part exceeded maximum size of 0KB."
    # The limit holds for the part as a whole, not for each piece of it.
    bytewise = [body[index : index + 1] for index in range(len(body))]
    form = await MultiPartParser(mp_headers(), chunks(*bytewise), max_part_size=5).parse()
    assert form["f"] == "12345"
    with pytest.raises(MultiPartException) as raised:
        await MultiPartParser(mp_headers(), chunks(*bytewise), max_part_size=4).parse()
    assert raised.value.message == "Part exceeded maximum size of 0KB."
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
        assert response.text == "Too many files. Maximum number of files is 1."
        response = client.post("/?limit=max_fields", data={"a": "1", "b": "2"})
        assert response.status_code == 400
        assert response.text == "Too many fields. Maximum number of fields is 1."
        response = client.post("/?limit=max_part_size", data={"a": "12"})
        assert response.status_code == 400
        assert response.text == "Field exceeded maximum size of 0KB."


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
    assert response.json() == {"error": "Too many fields. Maximum number of fields is 0."}


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
    with pytest.raises(MultiPartException) as raised:
        await Request(scope, receive).form(max_fields=1)
    assert raised.value.message == "Too many fields. Maximum number of fields is 1."


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


# ------------------------------------------------------------------- spooling


def test_spool_max_size_and_max_part_size_are_class_attributes() -> None:
    assert MultiPartParser.spool_max_size == 1024 * 1024
    assert MultiPartParser.max_part_size == 1024 * 1024
    assert formparsers.SpooledTemporaryFile is tempfile.SpooledTemporaryFile


@pytest.mark.anyio
async def test_spool_max_size_decides_when_an_upload_moves_to_disk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(MultiPartParser, "spool_max_size", 10)
    body = multipart(file("small", "s.bin", b"x" * 10), file("big", "b.bin", b"y" * 11))
    form = await MultiPartParser(mp_headers(), chunks(body)).parse()
    small, big = form["small"], form["big"]
    assert isinstance(small, UploadFile)
    assert isinstance(big, UploadFile)
    assert small.file._rolled is False  # type: ignore[attr-defined]
    assert big.file._rolled is True  # type: ignore[attr-defined]
    assert await big.read() == b"y" * 11
    await form.close()
    parser = MultiPartParser(mp_headers(), chunks(body))
    parser.spool_max_size = 100  # an instance may set its own
    form = await parser.parse()
    assert form["big"].file._rolled is False  # type: ignore[union-attr]
    await form.close()


@pytest.mark.anyio
async def test_uploads_use_the_module_spooled_temporary_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[int] = []

    class Recording(tempfile.SpooledTemporaryFile):  # type: ignore[type-arg]
        def __init__(self, max_size: int = 0, **kwargs: Any) -> None:
            made.append(max_size)
            super().__init__(max_size=max_size, **kwargs)

    monkeypatch.setattr(formparsers, "SpooledTemporaryFile", Recording)
    body = multipart(file("a", "a.bin", b"1"), file("b", "b.bin", b"2"))
    form = await MultiPartParser(mp_headers(), chunks(body)).parse()
    assert made == [1024 * 1024, 1024 * 1024]
    assert isinstance(form["a"].file, Recording)  # type: ignore[union-attr]
    await form.close()


# ------------------------------------------------------------ batched disk writes


class CountingSpool(tempfile.SpooledTemporaryFile):  # type: ignore[type-arg]
    """Records the size of every write (or writelines) an upload makes to its file."""

    writes: list[int] = []

    def write(self, data: Any) -> int:
        self.writes.append(len(data))
        return super().write(data)

    def writelines(self, chunks: Any) -> None:
        chunks = list(chunks)
        self.writes.append(sum(map(len, chunks)))
        super().writelines(chunks)


def counting_spools(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    writes: list[int] = []
    monkeypatch.setattr(CountingSpool, "writes", writes)
    monkeypatch.setattr(formparsers, "SpooledTemporaryFile", CountingSpool)
    monkeypatch.setattr(MultiPartParser, "spool_max_size", 10)
    return writes


def fresh_budget(monkeypatch: pytest.MonkeyPatch, limit: int) -> Any:
    budget = formparsers._DiskWriteBudget(limit)
    monkeypatch.setattr(formparsers, "_DISK_WRITE_BUDGET", budget)
    return budget


# 80 KiB without CR, so that each body chunk gives the parser's callback one slice of it.
FILE_DATA = (bytes(range(14, 256)) * 400)[: 80 * 1024]
KIB_16 = 16 * 1024


FILE_BODY_CHUNKS = split_every(multipart(file("f", "f.bin", FILE_DATA)), KIB_16)


async def upload_file_data() -> None:
    """Parse FILE_DATA sent in 16 KiB body chunks; check it arrived whole."""
    form = await MultiPartParser(mp_headers(), chunks(*FILE_BODY_CHUNKS)).parse()
    upload = form["f"]
    assert isinstance(upload, UploadFile)
    assert await upload.read() == FILE_DATA
    await form.close()


@pytest.mark.anyio
async def test_disk_writes_are_batched_while_the_budget_has_room(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    writes = counting_spools(monkeypatch)
    budget = fresh_budget(monkeypatch, 1024 * 1024)
    monkeypatch.setattr(formparsers, "_DISK_WRITE_BATCH", 32 * 1024)
    await upload_file_data()
    # Six body chunks carry the file: held until 32 KiB are there, the rest at the end.
    assert len(writes) == 3
    assert sum(writes) == len(FILE_DATA)
    assert all(size >= 32 * 1024 for size in writes[:-1])
    assert budget.held == 0


@pytest.mark.anyio
async def test_disk_writes_follow_each_chunk_once_the_budget_is_spent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    writes = counting_spools(monkeypatch)
    budget = fresh_budget(monkeypatch, 0)
    await upload_file_data()
    assert len(writes) == len(FILE_BODY_CHUNKS)  # nothing held: one write per chunk
    assert sum(writes) == len(FILE_DATA)
    assert budget.held == 0


@pytest.mark.anyio
async def test_the_budget_is_shared_and_a_chunk_past_it_flushes_what_was_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    writes = counting_spools(monkeypatch)
    budget = fresh_budget(monkeypatch, 3 * KIB_16)
    assert budget.take(KIB_16)  # another parse holds 16 KiB
    await upload_file_data()
    # Room for two chunks: the third is written with them, and so on.
    assert len(writes) == 2
    assert writes[0] > 2 * KIB_16
    assert sum(writes) == len(FILE_DATA)
    assert budget.held == KIB_16  # the other parse's hold is untouched


@pytest.mark.parametrize("ending", ["error", "cancel"])
@pytest.mark.anyio
async def test_held_data_is_given_back_when_a_parse_stops(
    monkeypatch: pytest.MonkeyPatch, ending: str
) -> None:
    counting_spools(monkeypatch)
    budget = fresh_budget(monkeypatch, 1024 * 1024)
    held_when_stopped: list[int] = []
    opened: list[UploadFile] = []

    async def stopping_stream(scope: anyio.CancelScope) -> AsyncGenerator[bytes, None]:
        for chunk in FILE_BODY_CHUNKS[:4]:
            yield chunk
        held_when_stopped.append(budget.held)
        if ending == "error":
            raise ConnectionResetError("the client left")
        scope.cancel()
        await anyio.sleep(1)  # a checkpoint, where the cancellation lands

    original_init = UploadFile.__init__

    def recording_init(self: UploadFile, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(UploadFile, "__init__", recording_init)
    with anyio.CancelScope() as scope:
        parser = MultiPartParser(mp_headers(), stopping_stream(scope))
        if ending == "error":
            with pytest.raises(ConnectionResetError):
                await parser.parse()
        else:
            await parser.parse()
    assert len(held_when_stopped) == 1
    assert held_when_stopped[0] > 0
    assert budget.held == 0
    assert [upload.file.closed for upload in opened] == [True]
