"""The Range / If-Range parser and the multipart/byteranges layout (pure data, no I/O)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stellate._ranges import (
    MAX_RANGES,
    closing_delimiter,
    generate_multipart,
    if_range_matches,
    make_boundary,
    parse_range_header,
)
from stellate.responses import MalformedRangeHeader, RangeNotSatisfiable
from stellate.testing.strategies import range_headers

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-0", [(0, 1)]),
        ("bytes=0-499", [(0, 500)]),
        ("bytes=500-", [(500, 1000)]),
        ("bytes=-1", [(999, 1000)]),
        ("bytes=-300", [(700, 1000)]),
        ("bytes=-5000", [(0, 1000)]),  # a suffix longer than the file is the whole file
        ("bytes=990-5000", [(990, 1000)]),  # last position clamped to the end
        ("bytes=999-999", [(999, 1000)]),
        ("BYTES=1-2", [(1, 3)]),  # the unit is case-insensitive
        ("bytes = 1 - 2 ", [(1, 3)]),  # whitespace is tolerated
        ("bytes=0-1,\t 5-6", [(0, 2), (5, 7)]),
        ("bytes=5-6,0-1", [(0, 2), (5, 7)]),  # sorted
        ("bytes=0-10,5-20", [(0, 21)]),  # overlapping ranges merge
        ("bytes=0-9,10-19", [(0, 20)]),  # adjacent ranges merge
        ("bytes=0-9,11-19", [(0, 10), (11, 20)]),  # a one-byte gap keeps them apart
        ("bytes=0-9,2-3", [(0, 10)]),  # contained
        ("bytes=-100,0-", [(0, 1000)]),
        ("bytes=0-1,,,5-6,", [(0, 2), (5, 7)]),  # empty list elements are ignored
        ("bytes=0-1,2000-3000", [(0, 2)]),  # unsatisfiable parts are dropped
        ("bytes=00000000000000000000000000005-6", [(5, 7)]),  # leading zeros
        ("bytes=5-" + "9" * 5000, [(5, 1000)]),  # enormous last position: to the end
        ("bytes=-" + "9" * 5000, [(0, 1000)]),  # enormous suffix: the whole file
    ],
)
def test_satisfiable_ranges(header: str, expected: list[tuple[int, int]]) -> None:
    assert parse_range_header(header, SIZE) == expected


@pytest.mark.parametrize(
    "header",
    [
        "bytes=1000-",
        "bytes=1000-2000",
        "bytes=-0",
        "bytes=5000-6000,7000-",
        "bytes=" + "9" * 5000 + "-",  # an enormous first position is past the end
        "bytes=" + "9" * 5000 + "-" + "9" * 5001,
    ],
)
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable) as info:
        parse_range_header(header, SIZE)
    assert info.value.max_size == SIZE


def test_every_range_of_an_empty_file_is_unsatisfiable() -> None:
    for header in ("bytes=0-", "bytes=0-0", "bytes=-1"):
        with pytest.raises(RangeNotSatisfiable):
            parse_range_header(header, 0)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "bytes",
        "bytes=",
        "bytes=,,,",
        "items=0-1",  # an unknown unit
        "bytes=-",
        "bytes=abc",
        "bytes=1-2-3",
        "bytes=0x10-0x20",
        "bytes=5-2",  # inverted
        "bytes=0-1,5-2",  # one inverted range spoils the header
        "bytes=" + "9" * 5000 + "-5",  # inverted with an enormous first position
        "bytes=" + "9" * 5001 + "-" + "9" * 5000,  # inverted, both enormous
        "bytes=1-2;3-4",
        "bytes=\u0661-\u0662",  # non-ASCII digits are not digits here
    ],
)
def test_malformed_ranges(header: str) -> None:
    with pytest.raises(MalformedRangeHeader) as info:
        parse_range_header(header, SIZE)
    assert info.value.content


def test_the_range_count_is_capped_before_splitting() -> None:
    allowed = "bytes=" + ",".join(f"{n * 3}-{n * 3}" for n in range(MAX_RANGES))
    assert len(parse_range_header(allowed, SIZE)) == MAX_RANGES
    too_many = allowed + ",999-999"
    with pytest.raises(MalformedRangeHeader, match="At most 100"):
        parse_range_header(too_many, SIZE)


def test_a_megabyte_of_commas_is_refused_by_the_count() -> None:
    with pytest.raises(MalformedRangeHeader):
        parse_range_header("bytes=" + "0-0," * 250_000, SIZE)


def test_a_long_single_garbage_range_is_malformed() -> None:
    with pytest.raises(MalformedRangeHeader):
        parse_range_header("bytes=" + " " * 500_000 + "1" * 500_000 + "x", SIZE)


def test_exception_defaults() -> None:
    assert MalformedRangeHeader().content == "Malformed range header."
    assert str(MalformedRangeHeader("nope")) == "nope"
    assert RangeNotSatisfiable(12).max_size == 12


ETAG = '"abc-1"'
DATE = "Wed, 21 Oct 2015 07:28:00 GMT"


@pytest.mark.parametrize(
    ("if_range", "matches"),
    [
        ('"abc-1"', True),
        (' "abc-1" ', True),
        ('"abc-2"', False),
        ('W/"abc-1"', False),  # weak tags never match If-Range
        ("Wed, 21 Oct 2015 07:28:00 GMT", True),
        ("Wednesday, 21-Oct-15 07:28:00 GMT", True),  # RFC 850 form of the same date
        ("Wed, 21 Oct 2015 07:28:01 GMT", False),
        ("not a date", False),
        ("", False),
    ],
)
def test_if_range(if_range: str, matches: bool) -> None:
    assert if_range_matches(if_range, ETAG, DATE) is matches


def test_if_range_without_validators_never_matches() -> None:
    assert not if_range_matches('"abc-1"', None, None)
    assert not if_range_matches(DATE, ETAG, None)
    assert not if_range_matches(DATE, ETAG, "garbage")


def test_multipart_length_matches_the_layout() -> None:
    ranges = [(0, 5), (10, 12)]
    boundary = "b0undary"
    length, header = generate_multipart(ranges, boundary, 100, "text/plain")
    assert header(0, 5) == (
        b"--b0undary\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-4/100\r\n\r\n"
    )
    body = b"".join(header(s, e) + b"x" * (e - s) + b"\r\n" for s, e in ranges)
    body += closing_delimiter(boundary)
    assert closing_delimiter(boundary) == b"--b0undary--\r\n"
    assert length == len(body)


def test_boundaries_are_random_tokens() -> None:
    first, second = make_boundary(), make_boundary()
    assert first != second
    assert len(first) == 26
    assert all(c in "0123456789abcdef" for c in first)


@pytest.mark.parametrize("timestamp", [0, 1.5, 784111777, 1_700_000_000.999, 4_102_444_800])
def test_http_date_matches_the_standard_library(timestamp: float) -> None:
    from email.utils import formatdate

    from stellate._conditional import http_date

    assert http_date(timestamp) == formatdate(timestamp, usegmt=True)


def test_repeated_if_none_match_headers_are_one_list() -> None:
    from stellate._conditional import request_conditions

    raw = [
        (b"if-none-match", b'"a"'),
        (b"range", b"bytes=0-1"),
        (b"if-none-match", b'"b"'),
        (b"range", b"bytes=5-6"),
        (b"accept", b"*/*"),
    ]
    assert request_conditions(raw) == {b"if-none-match": '"a", "b"', b"range": "bytes=0-1"}


# --------------------------------------------------------------------------- properties


def _reference_bytes(header: str, size: int) -> set[int] | None:
    """A slow, obviously-correct model: the byte offsets asked for, or None if malformed."""
    import re

    unit, _, specs = header.partition("=")
    if "=" not in header or unit.strip().lower() != "bytes":
        return None
    parts = [p for p in specs.split(",") if p.strip()]
    if not parts:
        return None
    wanted: set[int] = set()
    for part in parts:
        match = re.fullmatch(r"[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*", part)
        if match is None or match.groups() == ("", ""):
            return None
        first, last = match.groups()
        if first and last and int(last) < int(first):
            return None
        if not first:
            wanted |= set(range(max(size - int(last), 0), size)) if int(last) else set()
        else:
            stop = min(int(last) + 1, size) if last else size
            wanted |= set(range(int(first), stop))
    return wanted


@given(
    case=st.sampled_from([0, 1, 7, 100]).flatmap(lambda n: st.tuples(st.just(n), range_headers(n)))
)
def test_parser_agrees_with_a_simple_model(case: tuple[int, str]) -> None:
    size, header = case
    expected = _reference_bytes(header, size)
    try:
        ranges = parse_range_header(header, size)
    except MalformedRangeHeader:
        assert expected is None
        return
    except RangeNotSatisfiable:
        assert expected == set()
        return
    assert expected
    covered = {offset for start, end in ranges for offset in range(start, end)}
    assert covered == expected
    for start, end in ranges:
        assert 0 <= start < end <= size
    for (_, end), (next_start, _) in itertools.pairwise(ranges):
        assert next_start > end  # sorted, merged: no overlap, no adjacency
