"""Form abuse through a whole application: every attack is a 400 or 413, in bounded memory.

tests/test_forms_bad_input.py covers malformed bodies against the parsers. Here the
attacks go through ``Stellate`` and ``request.form()`` with its default limits, as an
application would meet them, and the memory a huge field costs is measured with
tracemalloc: a parser that buffered a whole megabytes-long key before checking its size
would show it.
"""

from __future__ import annotations

import tracemalloc

import pytest
from tests.security._asgi import Answer, call

from stellate.applications import Stellate
from stellate.requests import Request
from stellate.responses import JSONResponse
from stellate.routing import Route

pytestmark = pytest.mark.anyio

BOUNDARY = "attack"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
URLENCODED = "application/x-www-form-urlencoded"
CHUNK = 64 * 1024


async def endpoint(request: Request) -> JSONResponse:
    async with request.form() as form:
        return JSONResponse({"count": len(form.multi_items()), "names": list(form.keys())[:3]})


def make_app(max_body_size: int | None = None) -> Stellate:
    return Stellate(routes=[Route("/", endpoint, methods=["POST"])], max_body_size=max_body_size)


def chunked(body: bytes) -> list[bytes]:
    return [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)] or [b""]


def part(head: str, data: bytes) -> bytes:
    return f"--{BOUNDARY}\r\n{head}\r\n\r\n".encode() + data + b"\r\n"


def field(name: str, data: bytes) -> bytes:
    return part(f'Content-Disposition: form-data; name="{name}"', data)


def upload(name: str, data: bytes) -> bytes:
    return part(f'Content-Disposition: form-data; name="{name}"; filename="{name}.txt"', data)


END = f"--{BOUNDARY}--\r\n".encode()


async def post(body: bytes | list[bytes], content_type: str, app: Stellate | None = None) -> Answer:
    chunks = chunked(body) if isinstance(body, bytes) else body
    return await call(
        app or make_app(),
        "/",
        method="POST",
        headers=[("host", "x"), ("content-type", content_type)],
        body=chunks,
    )


async def test_too_many_urlencoded_fields() -> None:
    answer = await post(b"&".join([b"a=1"] * 1001), URLENCODED)
    assert (answer.status, answer.body) == (
        400,
        b"Too many fields. Maximum number of fields is 1000.",
    )


async def test_too_many_multipart_fields() -> None:
    answer = await post(b"".join([field("a", b"1")] * 1001) + END, MULTIPART)
    assert (answer.status, answer.body) == (
        400,
        b"Too many fields. Maximum number of fields is 1000.",
    )


async def test_too_many_files() -> None:
    answer = await post(b"".join([upload("f", b"1")] * 1001) + END, MULTIPART)
    assert (answer.status, answer.body) == (
        400,
        b"Too many files. Maximum number of files is 1000.",
    )


async def test_limits_at_exactly_the_maximum_pass() -> None:
    answer = await post(b"&".join([b"a=1"] * 1000), URLENCODED)
    assert answer.status == 200
    assert answer.body == b'{"count":1000,"names":["a"]}'


async def test_oversized_multipart_field() -> None:
    answer = await post(field("big", b"x" * (1024 * 1024 + 1)) + END, MULTIPART)
    assert answer.status == 400
    assert answer.body == b"Part exceeded maximum size of 1024KB."


@pytest.mark.parametrize("where", ["key", "value"])
async def test_megabytes_of_urlencoded_key_in_bounded_memory(where: str) -> None:
    """A 16 MiB key (or value) streamed in 64 KiB chunks: refused, peak memory ~1 MiB."""
    size = 16 * 1024 * 1024
    body = b"k" * size + b"=v" if where == "key" else b"k=" + b"v" * size
    chunks = chunked(body)
    app = make_app()
    tracemalloc.start()
    try:
        answer = await post(chunks, URLENCODED, app)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert answer.status == 400
    assert answer.body == b"Field exceeded maximum size of 1024KB."
    assert peak < 4 * 1024 * 1024, f"parsing peaked at {peak} bytes"


async def test_megabytes_of_multipart_value_in_bounded_memory() -> None:
    body = field("big", b"v" * (16 * 1024 * 1024)) + END
    chunks = chunked(body)
    tracemalloc.start()
    try:
        answer = await post(chunks, MULTIPART)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert answer.status == 400
    assert peak < 4 * 1024 * 1024, f"parsing peaked at {peak} bytes"


@pytest.mark.parametrize("length", [71, 1000, 1_000_000])
async def test_overlong_boundaries(length: int) -> None:
    boundary = "b" * length
    body = f"--{boundary}\r\n".encode() + b'Content-Disposition: form-data; name="a"\r\n\r\n1\r\n'
    answer = await post(
        body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"
    )
    assert (answer.status, answer.body) == (400, b"Invalid multipart data.")


@pytest.mark.parametrize("boundary", ['""', "a\x00b", "a\tb", "\u00e9t\u00e9"])
async def test_odd_boundaries_are_refused_or_parsed_never_crash(boundary: str) -> None:
    answer = await post(b"--x\r\n", f"multipart/form-data; boundary={boundary}")
    assert answer.status == 400


async def test_megabytes_of_part_headers() -> None:
    head = 'Content-Disposition: form-data; name="a"\r\nX-Filler: ' + "y" * (4 * 1024 * 1024)
    answer = await post(part(head, b"1") + END, MULTIPART)
    assert answer.status == 400
    assert answer.body == b"Invalid multipart data."


async def test_deep_nesting_of_nothing_stays_flat() -> None:
    """``a[][][]...`` names are names: no nested structure is built from them."""
    name = "a" + "[]" * 100_000
    answer = await post(f"{name}=1".encode(), URLENCODED)
    assert answer.status == 200
    assert answer.body == b'{"count":1,"names":["' + name.encode() + b'"]}'
    nested = (
        field("outer", b"--inner\r\nContent-Type: multipart/mixed; boundary=inner\r\n\r\n" * 1000)
        + END
    )
    answer = await post(nested, MULTIPART)
    assert answer.status == 200, "a nested multipart is only bytes in a field"


async def test_a_million_empty_fields() -> None:
    """Separators with nothing between them are not fields: they cost no field count."""
    answer = await post(b"&" * 1_000_000, URLENCODED)
    assert (answer.status, answer.body) == (200, b'{"count":0,"names":[]}')


async def test_body_over_the_application_limit_is_413() -> None:
    app = make_app(max_body_size=100_000)
    answer = await post(b"a=" + b"x" * 200_000, URLENCODED, app)
    assert answer.status == 413
    lying = await call(
        app,
        "/",
        method="POST",
        headers=[("host", "x"), ("content-type", URLENCODED), ("content-length", "10")],
        body=chunked(b"a=" + b"x" * 200_000),
    )
    assert lying.status == 413, "a Content-Length that lies does not get past the limit"


@pytest.mark.parametrize(
    ("length", "status"),
    [("9" * 5000, 413), ("1" + "0" * 30, 413), ("0" * 5000 + "5", 200), ("-1", 200)],
    ids=["5000-digits", "1e30", "zero-padded", "negative"],
)
async def test_absurd_content_lengths(length: str, status: int) -> None:
    """A Content-Length of thousands of digits is "too large", not an int() error (500)."""
    app = make_app(max_body_size=100_000)
    answer = await call(
        app,
        "/",
        method="POST",
        headers=[("host", "x"), ("content-type", URLENCODED), ("content-length", length)],
        body=b"a=1",
    )
    assert answer.status == status, answer.body
