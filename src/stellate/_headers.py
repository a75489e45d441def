"""Private helpers behind :class:`stellate.datastructures.Headers`: the encoding rules.

Header names are compared lower-cased and encoded as latin-1 (the ASGI form). Every
header set through ``MutableHeaders`` or built from a mapping goes through
:func:`encode_header`, which refuses the characters that would let a value end one
header and start another; other modules that encode headers should use it too.
"""

from __future__ import annotations

from typing import Any

__all__ = ["encode_header", "header_name"]

_FORBIDDEN_IN_HEADERS = ("\r", "\n", "\0")


def encode_header(key: str, value: str) -> tuple[bytes, bytes]:
    """Lower-case and encode a header, refusing anything that could split the message.

    A CR, LF or NUL in a header name or value lets whoever controls it inject headers
    (or a whole response), so it is refused here, at the one door every header passes.
    """
    for char in _FORBIDDEN_IN_HEADERS:
        if char in key or char in value:
            raise ValueError(f"Header {key!r} contains a forbidden character {char!r}")
    return key.lower().encode("latin-1"), value.encode("latin-1")


def header_name(key: Any) -> bytes | None:
    """The raw form of a header name for lookups; None if no header can have that name."""
    if not isinstance(key, str):
        return None
    try:
        return key.lower().encode("latin-1")
    except UnicodeEncodeError:
        return None
