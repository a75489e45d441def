"""The one header encoder: how a header set by the application becomes ASGI bytes.

Header names are compared lower-cased and encoded as latin-1 (the ASGI form). Every
header an application sets, whichever way it sets it (``Response(headers=...)``,
``response.headers[...] = ...``, ``MutableHeaders.append``/``setdefault``/``update``,
``set_cookie``, a middleware adding a header), goes through :func:`encode_header`, so
each is refused for the same reasons with the same error:

* a name that is not an RFC 9110 token (a ``:`` or white space would let it end one
  header and start another, or be read differently by two parsers);
* a CR, LF or NUL in the value (header and response splitting);
* characters outside latin-1, which HTTP/1.1 cannot carry as they are (a
  ``UnicodeEncodeError``, as in Starlette).

Refusing these is stricter than Starlette, which writes them out; it only refuses input
that no valid response can contain.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["encode_header", "header_name"]

# RFC 9110 token: the characters a header name may use.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FORBIDDEN_IN_VALUE = re.compile(rb"[\r\n\x00]")


def encode_header(name: str, value: str) -> tuple[bytes, bytes]:
    """Lower-case and encode a header, refusing anything that could split the message."""
    try:
        raw_name = name.lower().encode("latin-1")
        raw_value = value.encode("latin-1")
    except UnicodeEncodeError as exc:
        # Still the UnicodeEncodeError (a ValueError) that Starlette raises, saying more.
        exc.reason = (
            f"header {name!r} has characters outside latin-1; encode the value first "
            "(for example with urllib.parse.quote)"
        )
        raise
    if not _TOKEN.fullmatch(raw_name):
        raise ValueError(f"Invalid header name {name!r}: it must be an HTTP token.")
    if _FORBIDDEN_IN_VALUE.search(raw_value):
        raise ValueError(f"Invalid value for header {name!r}: CR, LF and NUL are not allowed.")
    return raw_name, raw_value


def header_name(key: Any) -> bytes | None:
    """The raw form of a header name for lookups; None if no header can have that name."""
    if not isinstance(key, str):
        return None
    try:
        return key.lower().encode("latin-1")
    except UnicodeEncodeError:
        return None
