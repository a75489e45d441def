"""``FormParser.parse`` cuts urlencoded bodies at ``&`` itself: it must agree with the parser.

``parse`` cuts each chunk with ``str.find`` and ``str.split`` (fast, in C) instead of
feeding python-multipart's ``QuerystringParser`` character by character; which of the two
cuts a field depends on its length (``FormParser._long_field``), so every body is parsed
with the default and with thresholds that send its fields down the ``find`` path. The parser's
``on_field_*`` callbacks still drive that state machine for code that uses them, so
here both ways read the same generated bodies, cut into the same chunks, under the same
limits, and must give the same fields or the same error.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from python_multipart.multipart import QuerystringParser

from stellate.datastructures import Headers
from stellate.formparsers import FormParser, MultiPartException

pytestmark = pytest.mark.anyio

HEADERS = Headers(raw=[(b"content-type", b"application/x-www-form-urlencoded")])

# Few symbols, so separators, empty fields, bare names, escapes and repeated "=" are common.
bodies = st.binary(max_size=40).map(lambda raw: bytes(b"ab=&%+2"[byte % 7] for byte in raw))


def chunked(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(body) + 1) for cut in cuts})
    edges = [0, *points, len(body)]
    return [body[start:end] for start, end in itertools.pairwise(edges)]


async def split_result(
    chunks: list[bytes], max_fields: int, max_part_size: int, long_field: int | None = None
) -> list[tuple[str, str]] | str:
    async def stream() -> AsyncGenerator[bytes, None]:
        for chunk in chunks:
            yield chunk

    parser = FormParser(HEADERS, stream(), max_fields=max_fields, max_part_size=max_part_size)
    if long_field is not None:
        parser._long_field = long_field
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        return exc.message
    assert form.multi_items() == parser._fields
    return [(str(name), str(value)) for name, value in parser._fields]


def state_machine_result(
    chunks: list[bytes], max_fields: int, max_part_size: int
) -> list[tuple[str, str]] | str:
    async def never() -> AsyncGenerator[bytes, None]:  # pragma: no cover - not iterated
        yield b""

    parser = FormParser(HEADERS, never(), max_fields=max_fields, max_part_size=max_part_size)
    machine = QuerystringParser(
        {
            "on_field_start": parser.on_field_start,
            "on_field_name": parser.on_field_name,
            "on_field_data": parser.on_field_data,
            "on_field_end": parser.on_field_end,
            "on_end": parser.on_end,
        }
    )
    try:
        for chunk in chunks:
            machine.write(chunk)
        machine.finalize()
    except MultiPartException as exc:
        return exc.message
    return [(str(name), str(value)) for name, value in parser._fields]


@given(
    body=bodies,
    cuts=st.lists(st.integers(min_value=0, max_value=64), max_size=6),
    max_fields=st.integers(min_value=1, max_value=6),
    max_part_size=st.integers(min_value=1, max_value=10),
    long_field=st.sampled_from([None, 1, 2, 4]),
)
async def test_split_parse_agrees_with_the_state_machine(
    body: bytes, cuts: list[int], max_fields: int, max_part_size: int, long_field: int | None
) -> None:
    chunks = [chunk for chunk in chunked(body, cuts) if chunk]
    expected = state_machine_result(chunks, max_fields, max_part_size)
    assert await split_result(chunks, max_fields, max_part_size, long_field) == expected


@pytest.mark.parametrize(
    ("chunks", "fields"),
    [
        ([b"a=1&&b=2&"], [("a", "1"), ("b", "2")]),  # empty fields are skipped
        ([b"bare&=&c=x=y"], [("bare", ""), ("", ""), ("c", "x=y")]),
        ([b"na", b"me=va", b"lue&x", b"=%41+b"], [("name", "value"), ("x", "A b")]),
        ([b"a=1", b"&", b"b=2"], [("a", "1"), ("b", "2")]),
        # An escape only in the chunk that ends a field, or only in the one before.
        ([b"a=1", b"%41+b&c=d"], [("a", "1A b"), ("c", "d")]),
        ([b"a=%41", b"b&c", b"=d"], [("a", "Ab"), ("c", "d")]),
        # As Starlette: raw bytes are latin-1, escapes UTF-8 (invalid ones U+FFFD).
        ([b"\xe9=%C3%A9&x=%FF"], [("\u00e9", "\u00e9"), ("x", "\ufffd")]),
    ],
)
@pytest.mark.parametrize("long_field", [None, 1, 3])
async def test_fields_across_chunks(
    chunks: list[bytes], fields: list[tuple[str, str]], long_field: int | None
) -> None:
    assert await split_result(chunks, 1000, 1024, long_field) == fields
    assert state_machine_result(chunks, 1000, 1024) == fields


async def test_an_unfinished_field_is_limited_before_it_ends() -> None:
    # The field never ends within the stream's first chunks, yet is refused as soon as it
    # is too large: an endless field is not buffered.
    assert await split_result([b"a=", b"x" * 10, b"y" * 10], 1000, 15) == (
        "Field exceeded maximum size of 0KB."
    )
    assert await split_result([b"a=1&b=2&c"], 2, 100) == (
        "Too many fields. Maximum number of fields is 2."
    )
