"""Cookies in both directions: parsing the ``Cookie`` request header, building ``Set-Cookie``.

Parsing follows what browsers send rather than what RFC 6265 wishes they sent: the header
is split on ``;``, every piece is trimmed, and nothing in it can make the parser raise.
A piece without ``=`` is a value with an empty name (as RFC 6265bis §5.4 says user agents
treat it), empty pieces are skipped, and a value wrapped in double quotes is unquoted with
the same escapes that :func:`serialize_cookie` produces, so what a response sets is what
the next request reads back.

Building is strict instead: the server decides what goes on the wire, so a name that is
not a token, an attribute that could smuggle in another attribute (``;``) or a header line
(CR/LF), or an unknown ``SameSite`` value is a programming error and raises ``ValueError``.
Values that are not plain cookie-octets are quoted and escaped rather than refused.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from email.utils import format_datetime, formatdate
from typing import Literal

__all__ = ["cookie_parser", "serialize_cookie"]

# RFC 9110 token characters: the only characters a cookie name may use.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 6265 cookie-octet: printable ASCII except space, DQUOTE, comma, semicolon, backslash.
_COOKIE_OCTETS = re.compile(r"[!#-+\--:<-\[\]-~]*")
# An attribute value (Path, Domain, Expires as text) must not end the attribute early.
_BAD_ATTRIBUTE = re.compile(r"[\x00-\x1f\x7f;]")
# One escape inside a quoted value: ``\ooo`` (octal byte) or ``\<char>``.
_ESCAPE = re.compile(r"\\(?:([0-3][0-7]{2})|(.))", re.DOTALL)

_SAMESITE = frozenset({"strict", "lax", "none"})
# Sent by delete_cookie: a date every browser treats as already past.
EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"


def _now() -> float:
    """The current time, behind a function so tests can pin it."""
    return time.time()


def cookie_parser(cookie_string: str) -> dict[str, str]:
    """Parse a ``Cookie`` header value into a dict, leniently, the way browsers send it.

    When a name repeats, the last value wins (as in Starlette). Never raises.
    """
    cookies: dict[str, str] = {}
    for piece in cookie_string.split(";"):
        name, sep, value = piece.partition("=")
        if not sep:
            name, value = "", name
        name = name.strip()
        value = value.strip()
        if not name and not value:
            continue
        cookies[name] = _unquote(value)
    return cookies


def _unquote(value: str) -> str:
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        return value
    return _ESCAPE.sub(_unescape_one, value[1:-1])


def _unescape_one(match: re.Match[str]) -> str:
    octal, char = match.groups()
    return chr(int(octal, 8)) if octal is not None else char


def _quote(value: str) -> str:
    """Leave plain cookie-octets alone; otherwise quote and escape every other character.

    Escapes are ``\\"``, ``\\\\`` and ``\\ooo`` (octal), which is what Python's
    ``http.cookies`` reads back, so CR, LF, ``;`` and ``,`` never reach the header raw.
    """
    if _COOKIE_OCTETS.fullmatch(value):
        return value
    out = []
    for char in value:
        code = ord(char)
        if code > 0xFF:
            raise ValueError(
                f"Cookie value {value!r} has characters outside latin-1; encode it first "
                "(for example with urllib.parse.quote)."
            )
        if char in '"\\':
            out.append("\\" + char)
        elif _COOKIE_OCTETS.fullmatch(char):
            out.append(char)
        else:
            out.append(f"\\{code:03o}")
    return '"' + "".join(out) + '"'


def _check_attribute(name: str, value: str) -> str:
    if _BAD_ATTRIBUTE.search(value):
        raise ValueError(f"Cookie {name} {value!r} must not contain ';' or control characters.")
    return value


def _format_expires(expires: datetime | str | int) -> str:
    if isinstance(expires, datetime):
        moment = expires.replace(tzinfo=UTC) if expires.tzinfo is None else expires
        return format_datetime(moment.astimezone(UTC), usegmt=True)
    if isinstance(expires, int):
        return formatdate(_now() + expires, usegmt=True)
    return _check_attribute("expires", expires)


def serialize_cookie(
    key: str,
    value: str = "",
    max_age: int | None = None,
    expires: datetime | str | int | None = None,
    path: str | None = "/",
    domain: str | None = None,
    secure: bool = False,
    httponly: bool = False,
    samesite: Literal["lax", "strict", "none"] | None = "lax",
    partitioned: bool = False,
) -> str:
    """Build one ``Set-Cookie`` header value; see ``Response.set_cookie`` for the arguments.

    ``expires`` is seconds from now (int), a datetime (naive ones are taken as UTC) or a
    preformatted HTTP date string.
    """
    if not _TOKEN.fullmatch(key):
        raise ValueError(f"Cookie name {key!r} must be a non-empty HTTP token.")
    parts = [f"{key}={_quote(value)}"]
    if path is not None:
        parts.append("Path=" + _check_attribute("path", path))
    if domain is not None:
        parts.append("Domain=" + _check_attribute("domain", domain))
    if max_age is not None:
        parts.append(f"Max-Age={int(max_age)}")
    if expires is not None:
        parts.append("expires=" + _format_expires(expires))
    if secure:
        parts.append("Secure")
    if httponly:
        parts.append("HttpOnly")
    if samesite is not None:
        if samesite.lower() not in _SAMESITE:
            raise ValueError(f"samesite must be 'strict', 'lax' or 'none', not {samesite!r}.")
        parts.append("SameSite=" + samesite.lower())
    if partitioned:
        parts.append("Partitioned")
    return "; ".join(parts)
