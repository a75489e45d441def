"""Conditional requests (RFC 9110 §13): when a cached copy may be answered with 304.

Shared by FileResponse and StaticFiles, and free of any response class so that both can
import it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from stellate.datastructures import Headers

__all__ = [
    "http_date",
    "is_not_modified",
    "not_modified",
    "not_modified_headers",
    "request_conditions",
]

# The headers a 304 repeats from the 200 it stands for (RFC 9110 §15.4.5).
_NOT_MODIFIED_HEADERS = ("cache-control", "content-location", "date", "etag", "expires", "vary")
# An entity-tag in a list: optional weak prefix, then a quoted opaque tag (which may
# contain commas, so the list cannot just be split on them).
# What a request may say about the representation it wants (conditions and ranges).
_REQUEST_CONDITIONS = frozenset((b"if-none-match", b"if-modified-since", b"range", b"if-range"))
_ENTITY_TAG = re.compile(r'(W/)?("[^"]*")')


def _http_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _opaque_tags(header: str) -> set[str]:
    """The opaque tags of an entity-tag list, weak prefixes dropped (weak comparison)."""
    return {match.group(2) for match in _ENTITY_TAG.finditer(header)}


def request_conditions(raw_headers: Iterable[tuple[bytes, bytes]]) -> dict[bytes, str]:
    """The conditional and range headers of a request, found in one pass over its headers.

    Repeated ``If-None-Match`` headers are joined into one list, as the RFC allows a
    list-valued header to be split; for the others the first one counts.
    """
    found: dict[bytes, str] = {}
    for name, value in raw_headers:
        if name in _REQUEST_CONDITIONS:
            text = value.decode("latin-1")
            if name not in found:
                found[name] = text
            elif name == b"if-none-match":
                found[name] += ", " + text
    return found


def not_modified(
    etag: str | None,
    last_modified: str | None,
    if_none_match: str | None,
    if_modified_since: str | None,
) -> bool:
    """Whether a GET/HEAD may be answered 304 (RFC 9110 §13.1.2-3).

    ``If-None-Match`` wins when present: ``*`` matches any existing representation, a
    list matches if one tag equals ``etag`` under weak comparison (``W/`` ignored on
    both sides). Only without it is ``If-Modified-Since`` consulted; an unparseable date
    is ignored, as the RFC requires.
    """
    if if_none_match is not None:
        if if_none_match.strip() == "*":
            return True
        if etag is None:
            return False
        return etag.strip().removeprefix("W/") in _opaque_tags(if_none_match)
    if if_modified_since is None or last_modified is None:
        return False
    since, modified = _http_date(if_modified_since), _http_date(last_modified)
    return since is not None and modified is not None and modified <= since


def is_not_modified(response_headers: Headers, request_headers: Headers) -> bool:
    """:func:`not_modified` for a response's and a request's headers."""
    conditions = request_conditions(request_headers.raw)
    return not_modified(
        response_headers.get("etag"),
        response_headers.get("last-modified"),
        conditions.get(b"if-none-match"),
        conditions.get(b"if-modified-since"),
    )


def not_modified_headers(response_headers: Headers) -> dict[str, str]:
    """The headers of the 200 that a 304 standing for it must repeat."""
    return {
        name: response_headers[name] for name in _NOT_MODIFIED_HEADERS if name in response_headers
    }


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(timestamp: float) -> str:
    """``timestamp`` as an IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``), locale-free.

    Same result as ``email.utils.formatdate(timestamp, usegmt=True)``, several times
    faster: it runs for every file response.
    """
    t = time.gmtime(timestamp)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )
