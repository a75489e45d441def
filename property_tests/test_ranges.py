"""The Range parser and FileResponse's answers to Range headers.

* ``parse_range_header`` raises nothing but its two defined errors, and when it returns
  ranges, they are sorted, merged (no two overlap or even touch), inside the resource and
  cover exactly the bytes a reference model of Starlette's rules says were asked for.
* Its cost is linear in the header: headers of a megabyte built from the pieces that make
  naive parsers quadratic (runs of blanks, digits, dashes, commas) are parsed in one pass
  -- a quadratic parser would need ~10**12 steps on each and blow the pytest timeout --
  and the Python-level work it does grows no faster than the number of ranges.
* ``FileResponse`` answers every generated Range header with 200, 206, 400 or 416 (never a
  server error), under `LintMiddleware`, and the bytes it sends are exactly the slices of
  the file the model predicts (one range as a plain body, several as
  ``multipart/byteranges``).
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stellate._ranges import (
    MAX_RANGES,
    MalformedRangeHeader,
    RangeNotSatisfiable,
    parse_range_header,
)
from stellate.responses import FileResponse
from stellate.testing.lint import LintMiddleware
from stellate.testing.strategies import range_headers
from stellate.types import Message

BAD_REQUEST = "400"
NOT_SATISFIABLE = "416"
IGNORED = "ignored"
# Sizes around the edges: empty, one byte, small, and more than FileResponse.chunk_size
# (64 KiB) so that multi-chunk reads are exercised.
SIZES = [0, 1, 2, 17, 1000, 70_000]


# --- the reference model --------------------------------------------------------------------


def model(header: str, size: int) -> str | set[int]:
    """The byte offsets `header` asks for, or the answer instead, by Starlette's rules.

    No ``=`` or a unit other than ``bytes``: 400. More than MAX_RANGES parts: ignored.
    Parts that are empty, lack a dash or hold what int() refuses are skipped; none left:
    400. Any start at or past the end: 416. Any end before its start: 400.
    """
    unit, equals, specs = header.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return BAD_REQUEST
    if len(specs.split(",")) > MAX_RANGES:
        return IGNORED
    pairs: list[tuple[int, int]] = []
    for part in specs.split(","):
        first, dash, last = (piece.strip() for piece in part.partition("-"))
        if not dash or not (first or last):
            continue
        try:
            if not first:  # suffix-range: the last N bytes
                pairs.append((max(size - int(last), 0), size - 1))
            else:
                pairs.append((int(first), min(int(last), size - 1) if last else size - 1))
        except ValueError:
            continue
    if not pairs:
        return BAD_REQUEST
    if any(start >= size for start, _ in pairs):
        return NOT_SATISFIABLE
    if any(start > end for start, end in pairs):
        return BAD_REQUEST
    return {offset for start, end in pairs for offset in range(start, end + 1)}


def covered(ranges: list[tuple[int, int]]) -> set[int]:
    return {offset for start, end in ranges for offset in range(start, end)}


def assert_well_formed(ranges: list[tuple[int, int]] | None, size: int) -> None:
    if ranges is None:  # ignored: too many parts
        return
    assert ranges, "an empty result must be an error instead"
    for start, end in ranges:
        assert 0 <= start < end <= size, (start, end, size)
    for (_, end), (next_start, _) in itertools.pairwise(ranges):
        # Sorted and merged: the next range starts strictly after a gap.
        assert end < next_start, ranges


@st.composite
def sized_headers(draw: st.DrawFn) -> tuple[int, str]:
    size = draw(st.sampled_from(SIZES[:-1]))
    return size, draw(range_headers(size))


@st.composite
def many_ranges(draw: st.DrawFn, size: int | None = None) -> tuple[int, str]:
    """Well-formed headers with up to 40 ranges: overlapping, adjacent, out of order."""
    if size is None:
        size = draw(st.one_of(st.integers(0, 16), st.integers(0, 300)))
    # Small offsets often, so ranges collide, touch and repeat.
    bound = st.one_of(st.integers(0, min(size + 2, 12)), st.integers(0, size + 5))
    spec = st.one_of(
        st.tuples(bound, bound).map(lambda pair: f"{min(pair)}-{max(pair)}"),
        bound.map(lambda start: f"{start}-"),
        bound.map(lambda length: f"-{length}"),
    )
    specs = draw(st.lists(spec, min_size=1, max_size=40))
    blanks = st.sampled_from(["", " ", "\t", "  "])
    joined = ",".join(draw(blanks) + item + draw(blanks) for item in specs)
    return size, draw(st.sampled_from(["bytes", "BYTES", "Bytes"])) + "=" + joined


def check_against_model(header: str, size: int) -> None:
    expected = model(header, size)
    try:
        ranges = parse_range_header(header, size)
    except MalformedRangeHeader:
        assert expected == BAD_REQUEST, (header, expected)
        return
    except RangeNotSatisfiable as exc:
        max_size = exc.max_size
        assert expected == NOT_SATISFIABLE, (header, expected)
        assert max_size == size
        return
    if ranges is None:
        assert expected == IGNORED, (header, expected)
        return
    assert isinstance(expected, set), (header, ranges)
    assert_well_formed(ranges, size)
    assert covered(ranges) == expected


@given(sized_headers())
def test_parser_agrees_with_the_model(case: tuple[int, str]) -> None:
    size, header = case
    check_against_model(header, size)


@given(many_ranges())
def test_many_ranges_are_merged_exactly(case: tuple[int, str]) -> None:
    size, header = case
    check_against_model(header, size)


@given(st.text(max_size=60), st.integers(0, 2**70))
def test_parser_raises_only_its_errors_on_any_text(header: str, size: int) -> None:
    try:
        ranges = parse_range_header(header, size)
    except (MalformedRangeHeader, RangeNotSatisfiable):
        return
    assert_well_formed(ranges, size)


# --- linear time ----------------------------------------------------------------------------

# Pieces whose long runs defeat naive parsers: backtracking regexes on blanks or digits,
# repeated splitting on commas, int() of a million digits (slow, and an error past 4300).
_PIECES = [" ", "\t", "0", "9", "-", ",", "1-", "-1", "0-0,", "a", "=", "bytes="]
_HUGE = 1_000_000


@given(
    st.sampled_from(["bytes=", "bytes= ", "bytes=0-", "Bytes=-"]),
    st.lists(st.sampled_from(_PIECES), min_size=1, max_size=3).map("".join),
    st.sampled_from(["", "-", "x", "0-1", ",", " "]),
)
def test_megabyte_headers_are_parsed_in_one_pass(prefix: str, piece: str, suffix: str) -> None:
    # ~10**6 characters: a parser quadratic in the header length would take hours here,
    # far past the pytest timeout; a linear one takes milliseconds.
    header = prefix + piece * (_HUGE // len(piece)) + suffix
    try:
        ranges = parse_range_header(header, 10**9)
    except (MalformedRangeHeader, RangeNotSatisfiable):
        return
    assert_well_formed(ranges, 10**9)


def _python_lines(header: str, size: int) -> int:
    """How many Python lines of stellate._ranges run to parse `header` (its work, counted)."""
    count = 0
    ranges_file = sys.modules["stellate._ranges"].__file__

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if frame.f_code.co_filename != ranges_file:
            return None
        if event == "line":
            count += 1
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        parse_range_header(header, size)
    except (MalformedRangeHeader, RangeNotSatisfiable):
        pass
    finally:
        sys.settrace(previous)
    return count


@pytest.mark.parametrize(
    "spec", ["{i}-{i}", "{j}-{j}", "-{i}", "{i}-", "{i}-{j}", "0-{i}"], ids=lambda s: s
)
def test_work_grows_linearly_with_the_number_of_ranges(spec: str) -> None:
    def header(count: int) -> str:
        # Disjoint (even offsets) or overlapping ranges, in descending order so sorting and
        # merging have something to do.
        return "bytes=" + ",".join(
            spec.format(i=2 * n, j=4 * n + 1) for n in reversed(range(count))
        )

    size = 10**6
    small, large = _python_lines(header(10), size), _python_lines(header(90), size)
    per_range = (large - small) / 80
    # Linear: 90 ranges cost what 10 cost plus a constant amount for each extra range,
    # and that constant is a handful of lines, not a function of the count.
    assert small > 0
    assert per_range <= 40, (small, large)
    assert large <= small + 40 * 80
    # And the cap holds: more than 100 ranges are ignored before any range is looked at.
    assert _python_lines(header(MAX_RANGES + 1), size) < small


# --- FileResponse ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    directory = tmp_path_factory.mktemp("ranges")
    paths = {}
    for size in SIZES:
        path = directory / f"file-{size}.bin"
        # A pattern with period 251 (prime): a slice at the wrong offset has other bytes.
        path.write_bytes(bytes(offset % 251 for offset in range(size)))
        paths[size] = path
    return paths


async def serve(path: Path, method: str, range_header: str) -> tuple[int, dict[str, str], bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": "/file",
        "raw_path": b"/file",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"range", range_header.encode("latin-1"))],
        "client": None,
        "server": None,
    }
    sent: list[Message] = []
    done = anyio.Event()

    async def receive() -> Message:
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            done.set()

    with anyio.fail_after(10):
        await LintMiddleware(FileResponse(path))(scope, receive, send)
    start, *body = sent
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in start["headers"]}
    return start["status"], headers, b"".join(m.get("body", b"") for m in body)


def multipart_parts(body: bytes, boundary: str) -> list[tuple[str, bytes]]:
    """(Content-Range, data) of each part of a ``multipart/byteranges`` body."""
    delimiter = f"--{boundary}".encode()
    assert body.endswith(delimiter + b"--")  # no CRLF after it, as Starlette
    chunks = body[: -len(delimiter) - 2].split(delimiter + b"\r\n")
    assert chunks[0] == b""
    parts = []
    for chunk in chunks[1:]:
        head, _, data = chunk.partition(b"\r\n\r\n")
        assert data.endswith(b"\r\n")
        fields = dict(line.split(": ", 1) for line in head.decode("latin-1").split("\r\n"))
        parts.append((fields["Content-Range"], data[:-2]))
    return parts


@st.composite
def file_requests(draw: st.DrawFn) -> tuple[int, str, str]:
    size = draw(st.sampled_from(SIZES))
    header = draw(st.one_of(range_headers(size), many_ranges(size).map(lambda case: case[1])))
    return size, draw(st.sampled_from(["GET", "GET", "HEAD"])), header


@pytest.mark.anyio
@given(file_requests())
async def test_file_response_sends_exactly_the_requested_slices(
    files: dict[int, Path], case: tuple[int, str, str]
) -> None:
    size, method, header = case
    content = files[size].read_bytes()
    status, headers, body = await serve(files[size], method, header)
    expected = model(header, size)
    if expected == IGNORED:
        # Too many parts: ignored, the whole file, as if it were absent.
        assert status == 200
        assert "content-range" not in headers
        assert body == (b"" if method == "HEAD" else content)
        return
    if expected == BAD_REQUEST:
        assert status == 400
        assert body.decode() in {
            "" if method == "HEAD" else "Malformed range header.",
            "Malformed range header.",
            "Only support bytes range",
            "Range header: range must be requested",
            "Range header: start must be less than end",
        }
        return
    if expected == NOT_SATISFIABLE:
        assert status == 416
        assert headers["content-range"] == f"bytes */{size}"
        assert body == b""
        return
    assert status == 206
    ranges = parse_range_header(header, size)
    assert ranges is not None
    assert covered(ranges) == expected
    if method == "HEAD":
        assert body == b""
        return
    assert int(headers["content-length"]) == len(body)
    if len(ranges) == 1:
        ((first, end),) = ranges
        assert headers["content-range"] == f"bytes {first}-{end - 1}/{size}"
        assert body == content[first:end]
        return
    boundary = headers["content-type"].removeprefix("multipart/byteranges; boundary=")
    parts = multipart_parts(body, boundary)
    assert [content_range for content_range, _ in parts] == [
        f"bytes {first}-{end - 1}/{size}" for first, end in ranges
    ]
    assert [data for _, data in parts] == [content[first:end] for first, end in ranges]
