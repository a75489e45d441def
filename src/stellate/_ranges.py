"""Byte ranges (RFC 9110 §14): the ``Range`` and ``If-Range`` headers, ``multipart/byteranges``.

What a ``Range`` header gets is Starlette's answer (FileResponse turns the two errors
into responses):

* no ``=``: :class:`MalformedRangeHeader` (400, ``Malformed range header.``); a unit other
  than ``bytes``: 400 ``Only support bytes range``;
* more than ``max_ranges`` parts: the header is ignored (None: the whole file, 200), the
  defence Apache adopted against "Apache Killer" (many small ranges multiplying work);
* a part that is empty, just ``-``, has no ``-`` or a number ``int()`` refuses is
  skipped; if none is left: 400 ``Range header: range must be requested``;
* any range starting at or beyond the end: :class:`RangeNotSatisfiable` (416 with
  ``Content-Range: bytes */SIZE``), even if other ranges fit;
* any range ending before it starts: 400 ``Range header: start must be less than end``.

The header is attacker-controlled, so the work stays linear in its length: the parts are
counted (one ``str.count``) before anything is split, and a number too long for ``int()``
to convert cheaply is never converted: it is larger than any file ("beyond the end").

Ranges are returned sorted, with overlapping and touching ones merged, as
``(start, end)`` pairs where ``end`` is exclusive.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence

__all__ = [
    "MAX_RANGES",
    "MalformedRangeHeader",
    "RangeNotSatisfiable",
    "generate_multipart",
    "if_range_matches",
    "make_boundary",
    "parse_range_header",
]

#: The most parts a ``Range`` header may have; with more, it is ignored.
MAX_RANGES = 100

# Longer numbers are not handed to int(): past 4300 digits it refuses them, and they are
# beyond the end of any file anyway. What int() would accept is checked by this instead
# (\d is what int() takes: any Unicode decimal digit).
_MAX_INT_TEXT = 1000
_INT_TEXT = re.compile(r"[+-]?\d+(?:_\d+)*")
_HUGE = 1 << 80

_MALFORMED = "Malformed range header."
_NOT_BYTES = "Only support bytes range"
_NO_RANGE = "Range header: range must be requested"
_INVERTED = "Range header: start must be less than end"


class MalformedRangeHeader(Exception):
    """The ``Range`` header cannot be served; ``content`` is the 400 response's text."""

    def __init__(self, content: str = _MALFORMED) -> None:
        super().__init__(content)
        self.content = content


class RangeNotSatisfiable(Exception):
    """A requested range starts at or beyond the end of a resource of ``max_size`` bytes."""

    def __init__(self, max_size: int) -> None:
        super().__init__(max_size)
        self.max_size = max_size


def _integer(text: str) -> int | None:
    """``int(text)``, None where int() refuses; huge numbers are just "huge"."""
    if len(text) > _MAX_INT_TEXT:
        if not _INT_TEXT.fullmatch(text):
            return None
        negative = text.startswith("-")
        digits = text.lstrip("+-").replace("_", "").lstrip("0")
        if len(digits) > _MAX_INT_TEXT:
            return -_HUGE if negative else _HUGE
        text = ("-" if negative else "") + (digits or "0")
    try:
        return int(text)
    except ValueError:
        return None


def _parse_part(part: str, size: int) -> tuple[int, int] | None:
    """One range as ``(start, end_exclusive)`` (possibly out of bounds); None to skip it."""
    first, dash, last = part.partition("-")
    first, last = first.strip(), last.strip()
    if not dash or not (first or last):
        return None
    if not first:
        suffix = _integer(last)
        return None if suffix is None else (max(size - suffix, 0), size)
    start = _integer(first)
    if start is None:
        return None
    if not last:
        return start, size
    end = _integer(last)
    return None if end is None else (start, min(end, size - 1) + 1)


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sort and coalesce overlapping or touching ranges (end is exclusive)."""
    ranges.sort()
    merged = [ranges[0]]
    for start, end in ranges[1:]:
        last_start, last_end = merged[-1]
        if start <= last_end:
            merged[-1] = (last_start, max(last_end, end))
        else:
            merged.append((start, end))
    return merged


def parse_range_header(
    value: str, size: int, max_ranges: int = MAX_RANGES
) -> list[tuple[int, int]] | None:
    """The byte ranges that ``value`` asks for in a resource of ``size`` bytes.

    Returns sorted, merged ``(start, end_exclusive)`` pairs, or None when the header is
    to be ignored (more than ``max_ranges`` parts). Raises :class:`MalformedRangeHeader`
    (a 400, with its text) and :class:`RangeNotSatisfiable` (a 416), as the module says.
    """
    unit, equals, specs = value.partition("=")
    if not equals:
        raise MalformedRangeHeader(_MALFORMED)
    if unit.strip().lower() != "bytes":
        raise MalformedRangeHeader(_NOT_BYTES)
    # Counting commas is linear and allocates nothing: the cap holds before any split.
    if specs.count(",") >= max_ranges:
        return None
    ranges = [r for r in (_parse_part(part, size) for part in specs.split(",")) if r is not None]
    if not ranges:
        raise MalformedRangeHeader(_NO_RANGE)
    if any(start >= size for start, _ in ranges):
        raise RangeNotSatisfiable(size)
    if any(start >= end for start, end in ranges):
        raise MalformedRangeHeader(_INVERTED)
    return _merge(ranges)


def if_range_matches(if_range: str, etag: str | None, last_modified: str | None) -> bool:
    """Whether ``If-Range`` names the current representation: exactly its ``ETag`` or its
    ``Last-Modified`` as sent (Starlette compares the strings, not the dates)."""
    return if_range in (etag, last_modified)


def make_boundary() -> str:
    """A random multipart boundary; 26 hex characters cannot occur in the file by chance."""
    return secrets.token_hex(13)


def generate_multipart(
    ranges: Sequence[tuple[int, int]], boundary: str, max_size: int, content_type: str
) -> tuple[int, Callable[[int, int], bytes]]:
    """The length of a ``multipart/byteranges`` body and a maker of each part's header.

    The body is, for each ``(start, end)``: ``header(start, end)``, the bytes of the range,
    CRLF; then ``--BOUNDARY--``, with no CRLF after it (as Starlette sends it). Knowing
    the length up front lets the response carry ``Content-Length`` (and answer HEAD)
    without reading the file.
    """
    prefix = f"--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: bytes "

    def header(start: int, end: int) -> bytes:
        return f"{prefix}{start}-{end - 1}/{max_size}\r\n\r\n".encode("latin-1")

    length = sum(len(header(start, end)) + (end - start) + 2 for start, end in ranges)
    length += len(closing_delimiter(boundary))
    return length, header


def closing_delimiter(boundary: str) -> bytes:
    """The line that ends a multipart body."""
    return f"--{boundary}--".encode("latin-1")
