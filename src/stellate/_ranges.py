"""Byte ranges (RFC 9110 §14): the ``Range`` and ``If-Range`` headers, ``multipart/byteranges``.

The parser is built to be cheap to refuse. A ``Range`` header is attacker-controlled and can
be as long as the server lets headers be, so the work done on it is bounded before anything
is split: the number of ranges is counted first (one ``str.count``) and a header asking for
more than :data:`MAX_RANGES` is dismissed without being parsed; each range is matched by a
regular expression without backtracking; numbers longer than :data:`_MAX_DIGITS` digits are
never converted to ``int`` (they are larger than any file, so they are treated as "beyond
the end"). The result is linear in the header's length.

What a bad header gets, following RFC 9110 §14.2 ("a server MAY ignore or reject"):

* a unit other than ``bytes``, a syntax error, an inverted range (``5-2``) or more than
  :data:`MAX_RANGES` ranges raise :class:`MalformedRangeHeader`; FileResponse then ignores
  the header and sends the whole file with 200, as it would to a client that never asked
  for a range (this is also the defence Apache adopted against "Apache Killer": many
  small overlapping ranges cannot multiply the work);
* well-formed ranges none of which overlaps the file raise :class:`RangeNotSatisfiable`,
  answered 416 with ``Content-Range: bytes */SIZE``.

Ranges are returned sorted, with overlapping and adjacent ones merged (§14.2 lets a
server coalesce), as ``(start, end)`` pairs where ``end`` is exclusive.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from email.utils import parsedate_to_datetime

__all__ = [
    "MAX_RANGES",
    "MalformedRangeHeader",
    "RangeNotSatisfiable",
    "generate_multipart",
    "if_range_matches",
    "make_boundary",
    "parse_range_header",
]

#: The most ranges a single request may ask for; more and the header is ignored.
MAX_RANGES = 100

# A number with more digits than this exceeds any file size (2**63 has 19 digits), so it
# is never converted: int() of a megabyte of digits is slow and, past 4300 digits, an error.
_MAX_DIGITS = 18
# The positions of a range-spec: ASCII digits only (str.isdigit accepts other scripts).
# Parts are split and stripped with str methods before this is matched: a single regex
# for the whole spec with optional whitespace on each side of an optional number would
# backtrack quadratically on a long run of blanks.
_DIGITS = re.compile(r"[0-9]*")
_BLANKS = " \t"


class MalformedRangeHeader(Exception):
    """The ``Range`` header could not be understood (bad syntax, unit or too many ranges)."""

    def __init__(self, content: str = "Malformed range header.") -> None:
        super().__init__(content)
        self.content = content


class RangeNotSatisfiable(Exception):
    """None of the requested ranges overlaps a resource of ``max_size`` bytes."""

    def __init__(self, max_size: int) -> None:
        super().__init__(max_size)
        self.max_size = max_size


def _number(digits: str, limit: int) -> int:
    """``int(digits)``, or ``limit`` for numbers too long to be anything but "too big"."""
    stripped = digits.lstrip("0")
    if len(stripped) > _MAX_DIGITS:
        return limit
    return int(stripped or "0")


def _parse_spec(part: str, size: int) -> tuple[int, int] | None:
    """One range-spec as ``(start, end_exclusive)``, or None if it lies beyond the file."""
    first, dash, last = part.partition("-")
    first, last = first.strip(_BLANKS), last.strip(_BLANKS)
    if not dash or not _DIGITS.fullmatch(first) or not _DIGITS.fullmatch(last):
        raise MalformedRangeHeader(f"Malformed range {part.strip()[:40]!r}.")
    if not first:
        if not last:
            raise MalformedRangeHeader("A range needs a first position or a suffix length.")
        suffix = _number(last, size)
        if suffix == 0 or size == 0:
            return None
        return max(size - suffix, 0), size
    if last and _numerically_less(last, first):
        raise MalformedRangeHeader("A range ends before it starts.")
    start = _number(first, size)
    end = min(_number(last, size) + 1, size) if last else size
    if start >= size:
        return None
    return start, end


def _numerically_less(a: str, b: str) -> bool:
    """``int(a) < int(b)`` for digit strings of any length, without converting them."""
    a, b = a.lstrip("0"), b.lstrip("0")
    return (len(a), a) < (len(b), b)


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sort and coalesce overlapping or adjacent ranges (end is exclusive)."""
    ranges.sort()
    merged = [ranges[0]]
    for start, end in ranges[1:]:
        last_start, last_end = merged[-1]
        if start <= last_end:
            merged[-1] = (last_start, max(last_end, end))
        else:
            merged.append((start, end))
    return merged


def parse_range_header(value: str, size: int) -> list[tuple[int, int]]:
    """The byte ranges that ``value`` asks for in a resource of ``size`` bytes.

    Returns sorted, merged ``(start, end_exclusive)`` pairs. Raises
    :class:`MalformedRangeHeader` for anything that is not a well-formed ``bytes`` range
    set of at most :data:`MAX_RANGES` ranges, and :class:`RangeNotSatisfiable` when it is
    well-formed but no range overlaps the resource.
    """
    unit, equals, specs = value.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        raise MalformedRangeHeader("Only 'bytes' ranges are supported.")
    # Counting commas is linear and allocates nothing: the cap holds before any split.
    if specs.count(",") >= MAX_RANGES:
        raise MalformedRangeHeader(f"At most {MAX_RANGES} ranges may be requested.")
    parts = [part for part in specs.split(",") if part.strip()]
    if not parts:
        raise MalformedRangeHeader("The Range header names no range.")
    satisfiable = [r for r in (_parse_spec(part, size) for part in parts) if r is not None]
    if not satisfiable:
        raise RangeNotSatisfiable(size)
    return _merge(satisfiable)


def if_range_matches(if_range: str, etag: str | None, last_modified: str | None) -> bool:
    """Whether the representation still is the one the ``If-Range`` validator names.

    An entity tag must match strongly (a weak tag never does, RFC 9110 §13.1.5); a date
    must equal ``Last-Modified`` exactly. Anything unparseable does not match, so the
    client gets the whole, current representation rather than a piece of a different one.
    """
    value = if_range.strip()
    if value.startswith(('"', "W/")):
        return etag is not None and not value.startswith("W/") and value == etag
    if last_modified is None:
        return False
    try:
        wanted = parsedate_to_datetime(value)
        current = parsedate_to_datetime(last_modified)
    except (TypeError, ValueError, IndexError):
        return False
    return wanted == current


def make_boundary() -> str:
    """A random multipart boundary; 26 hex characters cannot occur in the file by chance."""
    return secrets.token_hex(13)


def generate_multipart(
    ranges: Sequence[tuple[int, int]], boundary: str, max_size: int, content_type: str
) -> tuple[int, Callable[[int, int], bytes]]:
    """The length of a ``multipart/byteranges`` body and a maker of each part's header.

    The body is, for each ``(start, end)``: ``header(start, end)``, the bytes of the range,
    CRLF; then ``--BOUNDARY--`` CRLF. Knowing the length up front lets the response carry
    ``Content-Length`` (and answer HEAD) without reading the file.
    """
    prefix = f"--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: bytes "

    def header(start: int, end: int) -> bytes:
        return f"{prefix}{start}-{end - 1}/{max_size}\r\n\r\n".encode("latin-1")

    length = sum(len(header(start, end)) + (end - start) + 2 for start, end in ranges)
    length += len(closing_delimiter(boundary))
    return length, header


def closing_delimiter(boundary: str) -> bytes:
    """The line that ends a multipart body."""
    return f"--{boundary}--\r\n".encode("latin-1")
