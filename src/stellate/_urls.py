"""Private helpers behind :class:`stellate.datastructures.URL`.

They turn an ASGI scope into a URL string, take a network location apart and back
together, and read raw query bytes as text. They live here, apart from the public data
structures, because each one encodes a small security decision that deserves its own explanation:

* A path taken from a scope is *decoded* text. Pasting it into a URL string unchanged
  would let a request for ``/a%3Fb`` come back as path ``/a`` with query ``b``, and a
  target such as ``@evil.example`` come back as a URL whose host is ``evil.example`` (an
  open redirect for any code that redirects to ``request.url``). So the few characters
  that change how a URL string splits are percent-encoded, a path always starts with
  ``/`` after the host, and nothing else changes: the path a Starlette user reads from
  ``request.url.path`` stays the readable, decoded path.
* The ``Host`` header is client-controlled. A malformed one (spaces, userinfo, a path,
  a bad port, a bracketed literal that is not an address) is ignored in favour of
  ``scope["server"]`` instead of raising, because a URL is built lazily inside handlers
  and error pages, where an exception would be a 500. :func:`parse_host` is the one
  Host grammar: ``Host`` routes and ``TrustedHostMiddleware`` use it too, so no ``Host``
  route captures from, and the middleware never lets through, a header a URL would refuse
  as malformed. Only the port is then read differently: a URL needs one it can hold
  (:func:`port_in_range`, spelled short enough for urllib to read back), the middleware
  refuses one out of range (stellate's own rule), and ``Host`` routes ignore it (as
  Starlette's do).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

__all__ = [
    "DEFAULT_PORTS",
    "build_netloc",
    "parse_host",
    "port_in_range",
    "query_text",
    "replaced_path",
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
_REPLACED_PATH_ESCAPES = str.maketrans({"\\": "%5C", "\t": "%09", "\r": "%0D", "\n": "%0A"})
# In a query string only `#` (and the bytes urlsplit deletes) would be misread.
_QUERY_ESCAPES = str.maketrans({"#": "%23", "\t": "%09", "\r": "%0D", "\n": "%0A"})

# The Host grammar (RFC 3986 authority without userinfo): a reg-name, or a bracketed
# literal (checked further by _valid_literal), then `:` and one or more digits.
_HOST_HEADER = re.compile(
    r"(?P<host>[A-Za-z0-9\-._~%!$&'()*+,;=]+|\[(?P<literal>[^\[\]]+)\])(?::(?P<port>[0-9]*))?"
)
# RFC 3986 IPvFuture: a lower-case "v", a hex version, ".", then unreserved/sub-delims/":".
_IP_FUTURE = re.compile(r"v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+")
_IPV6_CHARACTERS = re.compile(r"[0-9A-Fa-f:.]+")
# The longest port (zero-padded) a URL keeps; see _usable_port.
_MAX_PORT_LENGTH = 32
# The characters a username or password may carry unencoded inside a netloc. `%` is kept
# so that values which are already percent-encoded pass through unchanged.
_USERINFO_SAFE = "!$&'()*+,;=%-._~"


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def replaced_path(path: str) -> str:
    """A ``path=`` given to ``URL.replace``, made safe to paste into a URL string.

    ``?`` and ``#`` keep their meaning (``"/a?b"`` sets the query too, as in Starlette);
    ``\\``, tab, CR and LF are encoded, and so is a leading ``//``, which would otherwise
    be read as a host by anything that uses the result as a relative reference.
    """
    path = path.translate(_REPLACED_PATH_ESCAPES)
    if path.startswith("//"):
        path = "/%2F" + path[2:]
    return path


def _valid_literal(literal: str) -> bool:
    """Whether the text between ``[`` and ``]`` is an IPv6 address or an IPvFuture literal.

    Checked here, not left to urllib: ``urlsplit`` raises on an invalid literal when an
    attribute is read, which inside a handler would be a 500 chosen by the client.
    """
    if literal.startswith("v"):
        return _IP_FUTURE.fullmatch(literal) is not None
    # The character check also refuses a zone id, which ipaddress would accept.
    return _IPV6_CHARACTERS.fullmatch(literal) is not None and _is_ipv6(literal)


def parse_host(value: str) -> tuple[str, str | None] | None:
    """Split a ``Host`` header value into ``(host, port)``; None if it is malformed.

    ``host`` keeps the brackets of an IP literal and ``port`` is the digits as written
    (RFC 3986 allows none: ``example.com:`` gives ``""``), or None without a ``:``.
    Starlette's grammar: a name of RFC 3986 reg-name characters (``%`` among them, not
    checked to start an escape) with no length limit, or a bracketed IPv6 address or
    IPvFuture literal (lower-case ``v``). This one grammar decides which headers a URL is
    built from, which ones ``Host`` routes may match and which ones
    ``TrustedHostMiddleware`` may allow; each reads the port by its own rule (an empty
    one is no port for a URL or a ``Host`` route, as in Starlette, and is ignored by the
    middleware, as Starlette's ignores every port).
    """
    match = _HOST_HEADER.fullmatch(value)
    if match is None:
        return None
    literal = match.group("literal")
    if literal is not None and not _valid_literal(literal):
        return None
    return match.group("host"), match.group("port")


def port_in_range(digits: str) -> bool:
    """Whether the port's value (not its spelling: ``000443`` is 443) is at most 65535.

    The significant digits are counted before converting: Python refuses to convert a
    string of thousands of digits, and a client may send one.
    """
    significant = digits.lstrip("0")
    return len(significant) <= 5 and int(significant or 0) <= 65535


def _usable_port(digits: str) -> bool:
    """Whether a URL can carry this port: in range, and spelled in a length urllib reads.

    An empty port (``example.com:``) is refused, as Starlette's URLs refuse it. Leading
    zeros are allowed (``:000443`` is port 443, as in Starlette), but not beyond
    :data:`_MAX_PORT_LENGTH` characters: ``urlsplit`` would fail to read the port back
    (Python refuses to convert thousands of digits), and ``url.port`` would raise.
    """
    return 0 < len(digits) <= _MAX_PORT_LENGTH and port_in_range(digits)


def _host_header(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The first ``Host`` header, as written, if it can name a URL's host, else None."""
    for name, value in headers:
        if name.lower() != b"host":
            continue
        text = value.decode("latin-1")
        parsed = parse_host(text)
        if parsed is None:
            return None
        port = parsed[1]
        if port is not None and not _usable_port(port):
            return None
        return text
    return None


def _server_netloc(scheme: str, server: Any) -> str | None:
    """``host[:port]`` from ``scope["server"]``, or None when it is absent or not a host."""
    if not isinstance(server, list | tuple) or len(server) != 2:
        return None
    host, port = server
    if not isinstance(host, str) or not host:
        return None
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    if parse_host(host) is None:
        # e.g. a unix socket path: there is no network location to speak of.
        return None
    if not isinstance(port, int) or port == DEFAULT_PORTS.get(scheme):
        return host
    return f"{host}:{port}"


def _scope_path(scope: Any) -> str:
    """The full request path. ASGI's ``path`` already includes ``root_path``."""
    path: str | None = scope.get("path")
    if path is None:
        raw: bytes = scope.get("raw_path") or b"/"
        path = raw.decode("latin-1")
    return path


def url_from_scope(scope: Any) -> str:
    """The URL string of the request described by an ASGI ``scope``. Never raises.

    As ``urlunsplit`` would, a path that does not start with ``/`` gets one, so that no
    request target (``*``, ``@evil.example``, an absolute URL) can run into the host.
    """
    scheme: str = scope.get("scheme", "http")
    path = _scope_path(scope).translate(_PATH_ESCAPES)
    if not path.startswith("/"):
        path = "/" + path
    query: bytes = scope.get("query_string", b"")
    if query:
        path += "?" + query_text(query).translate(_QUERY_ESCAPES)
    netloc = _host_header(scope.get("headers") or ())
    if netloc is None:
        netloc = _server_netloc(scheme, scope.get("server"))
    if netloc is None:
        # A relative URL: here a leading `//` would be read as a host.
        return "/%2F" + path[2:] if path.startswith("//") else path
    # After a host, a leading `//` is just an empty first segment.
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
    """Assemble a netloc, bracketing IPv6 hosts and encoding userinfo delimiters.

    A host holding ``:`` is bracketed only when it is an IPv6 address: ``"b.test:82"``
    is a host and port given in one piece, and is used as it is (as in Starlette).
    """
    if ":" in host and not host.startswith("[") and _is_ipv6(host):
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    if username is None and password is None:
        return netloc
    userinfo = quote(username or "", safe=_USERINFO_SAFE)
    if password is not None:
        userinfo += ":" + quote(password, safe=_USERINFO_SAFE)
    return f"{userinfo}@{netloc}"


def query_text(raw: bytes) -> str:
    """A raw query string as text: UTF-8 decoded, bytes that are not UTF-8 percent-encoded.

    Servers pass the bytes of the request target through untouched, so a client may send
    UTF-8 without escaping it: that reads as the text it is (``?q=é``). Bytes that are
    not valid UTF-8 become ``%XX`` instead of failing, so a client cannot cause a 500.
    """
    if raw.isascii():
        return raw.decode("ascii")
    text = raw.decode("utf-8", "surrogateescape")
    return _ESCAPED_BYTE.sub(_percent_encode_escaped, text)


# surrogateescape turns each undecodable byte 0xXY into the lone surrogate U+DCXY.
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def _percent_encode_escaped(found: re.Match[str]) -> str:
    return f"%{ord(found.group()) - 0xDC00:02X}"
