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


# These tests follow Starlette's answers (they used to pin stellate's stricter parser,
# which refused a whole header for one bad part and a leading "+", and gave 416 only
# when no range fitted).


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
        ("bytes=00000000000000000000000000005-6", [(5, 7)]),  # leading zeros
        ("bytes=5-" + "9" * 5000, [(5, 1000)]),  # enormous last position: to the end
        ("bytes=-" + "9" * 5000, [(0, 1000)]),  # enormous suffix: the whole file
        ("bytes=+5-+6", [(5, 7)]),  # int() accepts a sign
        ("bytes=100, 0-50", [(0, 51)]),  # a part without "-" is skipped
        ("bytes=abc-def, 0-50", [(0, 51)]),  # so is one int() refuses
        ("bytes=-, 0-50", [(0, 51)]),
        ("bytes=1-2-3, 7-8", [(7, 9)]),
        ("bytes=0x10-0x20,7-8", [(7, 9)]),
        ("bytes=\u0661-\u0662", [(1, 3)]),  # int() reads any Unicode decimal digits
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
        "bytes=0-1,2000-3000",  # one range past the end spoils the header
        "bytes=" + "9" * 5000 + "-",  # an enormous first position is past the end
        "bytes=" + "9" * 5000 + "-" + "9" * 5001,
        "bytes=" + "9" * 5000 + "-5",
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
    ("header", "content"),
    [
        ("", "Malformed range header."),
        ("bytes", "Malformed range header."),
        ("items=0-1", "Only support bytes range"),
        ("bytes=", "Range header: range must be requested"),
        ("bytes=,,,", "Range header: range must be requested"),
        ("bytes=-", "Range header: range must be requested"),
        ("bytes=abc", "Range header: range must be requested"),
        ("bytes=1-2;3-4", "Range header: range must be requested"),
        ("bytes=5-2", "Range header: start must be less than end"),
        ("bytes=0-1,5-2", "Range header: start must be less than end"),
    ],
)
def test_malformed_ranges(header: str, content: str) -> None:
    with pytest.raises(MalformedRangeHeader) as info:
        parse_range_header(header, SIZE)
    assert info.value.content == content


def test_more_ranges_than_the_cap_are_ignored() -> None:
    allowed = "bytes=" + ",".join(f"{n * 3}-{n * 3}" for n in range(MAX_RANGES))
    assert len(parse_range_header(allowed, SIZE) or ()) == MAX_RANGES
    assert parse_range_header(allowed + ",999-999", SIZE) is None
    assert parse_range_header("bytes=0-0,5-5,9-9", SIZE, max_ranges=2) is None


def test_a_megabyte_of_commas_is_ignored_by_the_count() -> None:
    assert parse_range_header("bytes=" + "0-0," * 250_000, SIZE) is None


def test_a_long_single_garbage_range_is_skipped() -> None:
    with pytest.raises(MalformedRangeHeader, match="range must be requested"):
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
        ('"abc-2"', False),
        ('W/"abc-1"', False),
        ("Wed, 21 Oct 2015 07:28:00 GMT", True),
        # Starlette compares strings: the same instant written otherwise does not match
        # (it used to, by parsing both dates), nor does the tag with blanks around it.
        ("Wednesday, 21-Oct-15 07:28:00 GMT", False),
        (' "abc-1" ', False),
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
    assert closing_delimiter(boundary) == b"--b0undary--"  # no CRLF, as Starlette
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


def _reference(header: str, size: int) -> set[int] | str | None:
    """A slow, obviously-correct model of Starlette's rules: the byte offsets asked for;
    "416" or "400" for those answers; None when the header is ignored."""
    unit, equals, specs = header.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return "400"
    if len(specs.split(",")) > MAX_RANGES:
        return None
    pairs: list[tuple[int, int]] = []
    for part in specs.split(","):
        first, dash, last = (p.strip() for p in part.partition("-"))
        try:
            if not dash or not (first or last):
                continue
            if not first:
                pairs.append((max(size - int(last), 0), size - 1))
            else:
                pairs.append((int(first), min(int(last), size - 1) if last else size - 1))
        except ValueError:
            continue
    if not pairs:
        return "400"
    if any(start >= size for start, _ in pairs):
        return "416"
    if any(start > end for start, end in pairs):
        return "400"
    return {offset for start, end in pairs for offset in range(start, end + 1)}


@given(
    case=st.sampled_from([0, 1, 7, 100]).flatmap(lambda n: st.tuples(st.just(n), range_headers(n)))
)
def test_parser_agrees_with_a_simple_model(case: tuple[int, str]) -> None:
    size, header = case
    expected = _reference(header, size)
    try:
        ranges = parse_range_header(header, size)
    except MalformedRangeHeader:
        assert expected == "400"
        return
    except RangeNotSatisfiable:
        assert expected == "416"
        return
    if ranges is None:
        assert expected is None
        return
    assert isinstance(expected, set)
    covered = {offset for start, end in ranges for offset in range(start, end)}
    assert covered == expected
    for start, end in ranges:
        assert 0 <= start < end <= size
    for (_, end), (next_start, _) in itertools.pairwise(ranges):
        assert next_start > end  # sorted, merged: no overlap, no adjacency
