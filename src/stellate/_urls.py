"""Private helpers behind :class:`stellate.datastructures.URL`.

They turn an ASGI scope into a URL string, take a network location apart and back
together, and read raw query bytes as text. They live here, apart from the public data
structures, because each one encodes a small security decision that deserves its own explanation:

* A path taken from a scope is *decoded* text. Pasting it into a URL string unchanged
  would let a request for ``/a%3Fb`` come back as path ``/a`` with query ``b``, and a
  request for ``//evil.example`` come back as a URL whose host is ``evil.example`` (an
  open redirect for any code that redirects to ``request.url``). So the few characters
  that change how a URL string splits are percent-encoded, and nothing else: the path a
  Starlette user reads from ``request.url.path`` stays the readable, decoded path.
* The ``Host`` header is client-controlled. A malformed one (spaces, userinfo, a path,
  a bad port) is ignored in favour of ``scope["server"]`` instead of raising, because a
  URL is built lazily inside handlers and error pages, where an exception would be a 500.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_from_bytes

__all__ = [
    "DEFAULT_PORTS",
    "build_netloc",
    "query_text",
    "safe_path",
    "split_netloc",
    "url_from_scope",
]

#: The port each scheme implies; a URL does not spell it out.
DEFAULT_PORTS: dict[str, int] = {"http": 80, "https": 443, "ws": 80, "wss": 443}

# Characters that would change how urllib.parse.urlsplit cuts a path out of a URL string:
# `?` and `#` end the path, `\` is a `/` to browsers, and urlsplit silently deletes
# tab, CR and LF (WHATWG "unsafe bytes").
_PATH_ESCAPES = str.maketrans(
    {"?": "%3F", "#": "%23", "\\": "%5C", "\t": "%09", "\r": "%0D", "\n": "%0A"}
)
# In a query string only `#` (and the bytes urlsplit deletes) would be misread.
_QUERY_ESCAPES = str.maketrans({"#": "%23", "\t": "%09", "\r": "%0D", "\n": "%0A"})

# RFC 3986 reg-name (unreserved / pct-encoded / sub-delims), or a bracketed IPv6 literal,
# then an optional port. No userinfo, no whitespace, no path characters.
_HOST_HEADER = re.compile(
    r"(?P<host>[A-Za-z0-9\-._~!$&'()*+,;=%]+|\[[0-9A-Fa-f:.]+(?:%25[A-Za-z0-9\-._~%]+)?\])"
    r"(?::(?P<port>[0-9]{0,5}))?"
)
# The characters a username or password may carry unencoded inside a netloc. `%` is kept
# so that values which are already percent-encoded pass through unchanged.
_USERINFO_SAFE = "!$&'()*+,;=%-._~"


def safe_path(path: str) -> str:
    """Encode what would make ``path`` re-parse as something else inside a URL string."""
    path = path.translate(_PATH_ESCAPES)
    if path.startswith("//"):
        # A leading `//` would be read as the start of a network location.
        path = "/%2F" + path[2:]
    return path


def _valid_port(port: str | None) -> bool:
    return port is None or port == "" or int(port) <= 65535


def _host_header(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The first ``Host`` header if it is a well-formed ``host[:port]``, else None."""
    for name, value in headers:
        if name.lower() != b"host":
            continue
        text = value.decode("latin-1")
        match = _HOST_HEADER.fullmatch(text)
        if match is None or not _valid_port(match.group("port")):
            return None
        return text
    return None


def _drop_default_port(scheme: str, netloc: str) -> str:
    host, sep, port = netloc.rpartition(":")
    if not sep or host.endswith(":") or "]" in port:
        # No port, or the colon belongs to an IPv6 literal.
        return netloc
    if port == "" or (port.isdigit() and int(port) == DEFAULT_PORTS.get(scheme)):
        return host
    return netloc


def _server_netloc(scheme: str, server: Any) -> str | None:
    """``host[:port]`` from ``scope["server"]``, or None when it is absent or not a host."""
    if not isinstance(server, list | tuple) or len(server) != 2:
        return None
    host, port = server
    if not isinstance(host, str) or not host:
        return None
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    if _HOST_HEADER.fullmatch(host) is None:
        # e.g. a unix socket path: there is no network location to speak of.
        return None
    if not isinstance(port, int) or port == DEFAULT_PORTS.get(scheme):
        return host
    return f"{host}:{port}"


def _scope_path(scope: Any) -> str:
    """The full request path: ``root_path`` + ``path`` unless ``path`` already has it.

    ASGI servers disagree on whether ``path`` includes ``root_path`` (the specification
    says it does; older servers and mounted sub-apps did not), so both are accepted.
    """
    root_path: str = scope.get("root_path", "")
    path: str | None = scope.get("path")
    if path is None:
        raw: bytes = scope.get("raw_path") or b"/"
        path = raw.decode("latin-1")
    if root_path and not (
        path.startswith(root_path) and path[len(root_path) : len(root_path) + 1] in ("", "/")
    ):
        path = root_path + path
    return path


def url_from_scope(scope: Any) -> str:
    """The URL string of the request described by an ASGI ``scope``. Never raises."""
    scheme: str = scope.get("scheme", "http")
    path = safe_path(_scope_path(scope))
    query: bytes = scope.get("query_string", b"")
    if query:
        path += "?" + query_text(query).translate(_QUERY_ESCAPES)
    netloc = _host_header(scope.get("headers") or ())
    if netloc is not None:
        netloc = _drop_default_port(scheme, netloc)
    else:
        netloc = _server_netloc(scheme, scope.get("server"))
    if netloc is None:
        return path
    return f"{scheme}://{netloc}{path}"


def split_netloc(netloc: str) -> tuple[str | None, str, str | None]:
    """Split ``[userinfo@]host[:port]`` into its parts, keeping IPv6 brackets."""
    userinfo, sep, hostport = netloc.rpartition("@")
    if hostport.startswith("[") and "]" in hostport:
        end = hostport.index("]")
        rest = hostport[end + 1 :]
        port = rest[1:] if rest.startswith(":") else None
        return (userinfo if sep else None), hostport[: end + 1], port
    host, colon, port = hostport.partition(":")
    return (userinfo if sep else None), host, (port if colon else None)


def build_netloc(
    username: str | None, password: str | None, host: str, port: int | str | None
) -> str:
    """Assemble a netloc, bracketing IPv6 hosts and encoding userinfo delimiters."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    if username is None and password is None:
        return netloc
    userinfo = quote(username or "", safe=_USERINFO_SAFE)
    if password is not None:
        userinfo += ":" + quote(password, safe=_USERINFO_SAFE)
    return f"{userinfo}@{netloc}"


def query_text(raw: bytes) -> str:
    """A raw query string as text, with non-ASCII bytes percent-encoded.

    Servers pass the bytes of the request target through untouched, so a client may send
    UTF-8 without escaping it. Encoding those bytes lets ``parse_qsl`` decode them as
    UTF-8 along with the escaped ones, instead of turning them into latin-1 mojibake.
    """
    if raw.isascii():
        return raw.decode("ascii")
    return quote_from_bytes(raw, safe=_ASCII_PRINTABLE)


_ASCII_PRINTABLE = "".join(chr(code) for code in range(0x20, 0x7F))
