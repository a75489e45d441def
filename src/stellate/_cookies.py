"""Cookies in both directions: parsing the ``Cookie`` request header, building ``Set-Cookie``.

Parsing follows what browsers send rather than what RFC 6265 wishes they sent: the header
is split on ``;``, every piece is trimmed, and nothing in it can make the parser raise.
A piece without ``=`` is a value with an empty name (as RFC 6265bis §5.4 says user agents
treat it), empty pieces are skipped, and a value wrapped in double quotes is unquoted with
the same escapes that :mod:`http.cookies` produces, so what a response sets is what the
next request reads back.

Building is :mod:`http.cookies`' (``Set-Cookie`` text exactly as Starlette sends it), with
one stricter rule: an attribute that could smuggle in another attribute (``;``) or a header
line (CR/LF) is a programming error and raises ``ValueError``. Values that are not plain
cookie-octets are quoted and escaped by ``http.cookies`` rather than refused.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from email.utils import format_datetime, formatdate
from http.cookies import SimpleCookie
from typing import Literal

__all__ = ["cookie_parser", "serialize_cookie", "set_cookie_header"]

# RFC 9110 token characters: the only characters a cookie name may use.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
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


def _with_partitioned(text: str) -> str:
    """``text`` with a ``Partitioned`` attribute where ``http.cookies`` puts it (Python
    3.14 knows the attribute; older versions do not, and stellate supports it anyway)."""
    name_value, *attributes = text.split("; ")
    attributes.append("Partitioned")
    attributes.sort(key=lambda attribute: attribute.partition("=")[0].lower())
    return "; ".join([name_value, *attributes])


def set_cookie_header(
    key: str,
    value: str = "",
    max_age: int | None = None,
    expires: datetime | str | int | None = None,
    path: str | None = "/",
    domain: str | None = None,
    secure: bool = False,
    httponly: bool = False,
    samesite: str | None = "lax",
    partitioned: bool = False,
) -> str:
    """One ``Set-Cookie`` value, exactly as :mod:`http.cookies` writes it (as in Starlette).

    Attributes come in alphabetical order of their key, ``SameSite`` keeps the caller's
    spelling, values that need it are quoted by ``http.cookies``. Errors are Starlette's:
    ``http.cookies.CookieError`` for an illegal name, ``AssertionError`` for an unknown
    ``samesite``. Stricter than Starlette, attribute values that could smuggle in another
    attribute (``;``) or a header line (control characters) raise ``ValueError``, and so
    does a value outside latin-1 (it could not be sent).
    """
    cookie: SimpleCookie = SimpleCookie()
    cookie[key] = value
    morsel = cookie[key]
    if max_age is not None:
        morsel["max-age"] = max_age
    if expires is not None:
        morsel["expires"] = _format_expires(expires)
    if path is not None:
        morsel["path"] = _check_attribute("path", path)
    if domain is not None:
        morsel["domain"] = _check_attribute("domain", domain)
    if secure:
        morsel["secure"] = True
    if httponly:
        morsel["httponly"] = True
    if samesite is not None:
        if samesite.lower() not in _SAMESITE:
            raise AssertionError("samesite must be either 'strict', 'lax' or 'none'")
        morsel["samesite"] = samesite
    text = morsel.OutputString()
    if max(text, default="\0") > "\xff":
        raise ValueError(
            f"Cookie value {value!r} has characters outside latin-1; encode it first "
            "(for example with urllib.parse.quote)."
        )
    return _with_partitioned(text) if partitioned else text


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
    """:func:`set_cookie_header`, refusing a name that is not an HTTP token with ValueError.

    For callers outside ``Response.set_cookie`` (the session middleware checks its
    settings with it) that promise ValueError for every bad setting.
    """
    if not _TOKEN.fullmatch(key):
        raise ValueError(f"Cookie name {key!r} must be a non-empty HTTP token.")
    if samesite is not None and samesite.lower() not in _SAMESITE:
        raise ValueError(f"samesite must be 'strict', 'lax' or 'none', not {samesite!r}.")
    return set_cookie_header(
        key, value, max_age, expires, path, domain, secure, httponly, samesite, partitioned
    )
