"""Hypothesis strategies for fuzzing ASGI applications and the parsers inside them.

Each strategy generates one kind of input an ASGI application receives from the network --
URLs, paths, query strings, raw header lists, cookies, form bodies, Range headers, whole
scopes, request bodies cut into messages -- with the adversarial cases real clients and
attackers send mixed in with ordinary ones: empty and very long values, non-ASCII bytes,
repeated names, malformed escapes. What comes out is always something a conforming *server*
could hand an application (header names are lower-case, scopes pass
`stellate.testing.lint.LintMiddleware`), so a failure points at the application, not at an
impossible input.

Hypothesis is an optional dependency: install ``stellate[test]`` to use this module.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Sequence
from typing import Any, NamedTuple
from urllib.parse import quote, unquote_to_bytes, urlencode

try:
    from hypothesis import strategies as st
except ImportError as exc:
    raise ImportError(
        "stellate.testing.strategies needs Hypothesis: install it with "
        "`pip install hypothesis` (stellate's `test` extra, stellate[test], includes it)."
    ) from exc

__all__ = [
    "MultipartPart",
    "chunkings",
    "cookie_headers",
    "header_lists",
    "host_headers",
    "http_scopes",
    "multipart_bodies",
    "paths",
    "query_strings",
    "range_headers",
    "urlencoded_bodies",
    "urls",
    "websocket_scopes",
]

_UNRESERVED = string.ascii_letters + string.digits + "-._~"
_SUB_DELIMS = "!$&'()*+,;="
_PCHAR = _UNRESERVED + _SUB_DELIMS + ":@"
_TOKEN = string.ascii_lowercase + string.digits + "!#$%&'*+-.^_`|~"
_LABEL = string.ascii_lowercase + string.digits
# Text without surrogates (they cannot be encoded to UTF-8, so no client can send them).
_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)


def _repeat(chunk: st.SearchStrategy[bytes], low: int, high: int) -> st.SearchStrategy[bytes]:
    """Long values cheaply: a short random chunk repeated, instead of thousands of draws."""
    return st.tuples(chunk, st.integers(low, high)).map(lambda pair: pair[0] * pair[1])


# --- paths, query strings, URLs -------------------------------------------------------------


def _segments() -> st.SearchStrategy[str]:
    """One percent-encoded path segment: plain pchars, escapes of arbitrary bytes, or empty."""
    plain = st.text(st.sampled_from(_PCHAR), min_size=1, max_size=12)
    escaped = st.binary(min_size=1, max_size=6).map(lambda raw: quote(raw, safe=""))
    unicode_ = _TEXT.filter(bool).map(lambda text: quote(text, safe=""))
    piece = st.one_of(plain, plain, escaped, unicode_, st.sampled_from(["..", ".", "%2F", ""]))
    return st.lists(piece, min_size=1, max_size=3).map("".join)


def paths(*, max_segments: int = 6) -> st.SearchStrategy[str]:
    """Request paths as they appear on the wire: ``/`` + percent-encoded segments.

    Segments mix RFC 3986 pchars, percent-escapes of arbitrary bytes (including invalid
    UTF-8 such as ``%FF``), escaped Unicode, dot segments, escaped slashes (``%2F``) and
    empty segments (``//``); the path may end with a slash. Always starts with ``/`` and
    never contains ``?`` or ``#``. Decode with ``urllib.parse.unquote`` to get the ASGI
    ``scope["path"]``; ``.encode("ascii")`` gives ``scope["raw_path"]``.
    """
    segments = st.lists(_segments(), max_size=max_segments)
    return st.builds(_join_path, segments, st.booleans())


def _join_path(segments: list[str], trailing_slash: bool) -> str:
    path = "/".join(segments) + ("/" if trailing_slash else "")
    # Never start with "//": that would read as "//authority/path" to a URL parser.
    return "/" + path.lstrip("/")


def _query_pairs(*, max_size: int = 6) -> st.SearchStrategy[list[tuple[str, str]]]:
    names = st.one_of(_TEXT, st.sampled_from(["a", "b", "page", "q", "x"]))
    return st.lists(st.tuples(names, _TEXT), max_size=max_size)


def query_strings(*, well_formed: bool = False) -> st.SearchStrategy[str]:
    """Query strings, without the leading ``?``, as ASCII text.

    Well-formed ones are ``urlencode``-d lists of (name, value) pairs of arbitrary Unicode,
    with repeated names and ``+`` for spaces. Unless ``well_formed=True`` they are mixed with
    what lenient parsers must survive: pairs without ``=``, empty pairs (``a=1&&b``),
    several ``=``, ``;`` separators, invalid escapes (``%zz``, ``%4``) and escapes of bytes
    that are not UTF-8 (``%FF``).
    """
    encoded = _query_pairs().map(urlencode)
    if well_formed:
        return encoded
    junk_piece = st.one_of(
        st.text(st.sampled_from(_PCHAR + "%"), max_size=10),
        st.sampled_from(["", "=", "==", "a=b=c", "%zz", "%4", "%FF%FE", "k", "&", ";", "+=+"]),
    )
    junk = st.lists(junk_piece, max_size=6).map("&".join)
    return st.one_of(encoded, junk, st.tuples(encoded, junk).map("&".join))


def _hosts() -> st.SearchStrategy[str]:
    label = st.text(st.sampled_from(_LABEL), min_size=1, max_size=10)
    dns = st.lists(label, min_size=1, max_size=4).map(".".join)
    ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda parts: ".".join(map(str, parts)))
    ipv6 = st.lists(st.integers(0, 0xFFFF), min_size=8, max_size=8).map(
        lambda parts: "[" + ":".join(f"{part:x}" for part in parts) + "]"
    )
    return st.one_of(st.just("localhost"), dns, ipv4, ipv6)


def urls(*, schemes: Sequence[str] = ("http", "https", "ws", "wss")) -> st.SearchStrategy[str]:
    """Absolute URLs ``scheme://[user[:password]@]host[:port]path[?query][#fragment]``.

    Hosts are lower-case DNS names, ``localhost``, IPv4 and bracketed IPv6 literals; ports
    are 1-65535 without leading zeros; userinfo is percent-encoded; the path comes from
    `paths` (or is empty), the query from ``query_strings(well_formed=True)`` and the
    fragment is percent-encoded text. The query and fragment, when present, are non-empty,
    so every generated URL is in the normal form ``urllib.parse.urlsplit``/``urlunsplit``
    reproduce exactly -- which is what makes parse/serialise round-trip properties possible.
    """
    userinfo_part = st.text(st.sampled_from(_UNRESERVED), min_size=1, max_size=8)
    userinfo = st.one_of(
        st.just(""),
        userinfo_part.map(lambda user: user + "@"),
        st.tuples(userinfo_part, userinfo_part).map(lambda pair: f"{pair[0]}:{pair[1]}@"),
    )
    port = st.one_of(st.just(""), st.integers(1, 65535).map(lambda number: f":{number}"))
    path = st.one_of(st.just(""), paths())
    query = st.one_of(st.just(""), query_strings(well_formed=True).filter(bool).map("?".__add__))
    fragment = st.one_of(
        st.just(""), _TEXT.filter(bool).map(lambda text: "#" + quote(text, safe=""))
    )
    return st.builds(
        lambda *parts: "".join(parts),
        st.sampled_from(list(schemes)).map(lambda scheme: scheme + "://"),
        userinfo,
        _hosts(),
        port,
        path,
        query,
        fragment,
    )


# Host values a client can send that are not a host: each one has, at some point, made a
# framework build a URL pointing elsewhere, capture a route parameter from it, or fail.
_HOSTILE_HOSTS = [
    "[:::]",
    "[1::2::3]",
    "[1:2:3:4:5:6:7:8:9]:80",
    "[::ffff:999.1.1.1]",
    "[::1%25eth0]",
    "[V7.site]",
    "[]",
    "[::1",
    "::1",
    "me@good.example",
    "me:pw@good.example",
    "evil.example#.good.example",
    "evil.example/.good.example",
    "evil.example\\.good.example",
    "evil.example?.good.example",
    "a b.good.example",
    "good.example:",
    "good.example:abc",
    "good.example:80:80",
    "good.example:70000",
    "good.example:123456",
    "good.example:" + "0" * 40 + "80",
    "good.example:" + "0" * 5000 + "80",
    "good.example\r\nx",
    "good.example\tx",
    "",
]


def host_headers() -> st.SearchStrategy[bytes]:
    """``Host`` header values: valid ones and the malformed ones attackers send.

    Valid: DNS names, ``localhost``, IPv4, bracketed IPv6 (IPv4-mapped ones included) and
    IPvFuture literals, with no port, a port, a default port or one with leading zeros
    (``:000443``). Malformed: bracketed literals that are not addresses (``[1::2::3]``,
    ``[::ffff:999.1.1.1]``), zone ids, userinfo, ``#``, ``/``, ``\\`` or spaces in the
    name, empty, non-numeric or out-of-range ports, control characters, non-ASCII bytes and
    the empty value. The bytes are what a server puts in ``scope["headers"]``.
    """
    literal = st.sampled_from(["[::1]", "[::ffff:1.2.3.4]", "[v7.site]", "[fe80::1:2]"])
    name = st.one_of(_hosts(), literal)
    port = st.one_of(
        st.just(""),
        st.integers(0, 65535).map(lambda number: f":{number}"),
        st.sampled_from([":80", ":443", ":000443", ":08000"]),
    )
    valid = st.tuples(name, port).map("".join)
    hostile = st.one_of(
        st.sampled_from(_HOSTILE_HOSTS),
        st.tuples(st.sampled_from(_HOSTILE_HOSTS), port).map("".join),
    )
    text = st.one_of(valid, hostile).map(lambda value: value.encode("latin-1"))
    junk = st.binary(max_size=20)
    return st.one_of(text, text, junk)


# --- headers and cookies --------------------------------------------------------------------

_COMMON_HEADER_NAMES = [
    b"host",
    b"accept",
    b"accept-encoding",
    b"content-type",
    b"content-length",
    b"cookie",
    b"user-agent",
    b"range",
    b"if-none-match",
    b"if-modified-since",
    b"origin",
    b"authorization",
    b"transfer-encoding",
    b"connection",
    b"x-forwarded-for",
    b"x-forwarded-proto",
]
_ODD_CASED_VALUES = [b"Chunked", b"KEEP-ALIVE", b"Gzip, DEFLATE", b"TEXT/HTML", b"Bytes=0-0"]


def _header_names() -> st.SearchStrategy[bytes]:
    token = st.text(st.sampled_from(_TOKEN), min_size=1, max_size=20).map(str.encode)
    non_ascii = st.binary(min_size=1, max_size=8).map(bytes.lower)
    long_name = _repeat(st.sampled_from([b"x-", b"a", b"long-"]), 200, 2000)
    return st.one_of(
        st.sampled_from(_COMMON_HEADER_NAMES),  # repeated names come mostly from this pool
        token,
        st.just(b""),
        non_ascii,
        long_name,
    )


def _header_values() -> st.SearchStrategy[bytes]:
    # What a conforming HTTP parser can deliver: no CR, LF or NUL; any other byte may appear.
    safe = st.binary(max_size=40).map(
        lambda raw: raw.replace(b"\r", b"").replace(b"\n", b"").replace(b"\x00", b"")
    )
    printable = st.text(st.sampled_from(string.printable[:95]), max_size=40).map(str.encode)
    long_value = _repeat(st.binary(min_size=1, max_size=4), 500, 8000).map(
        lambda raw: raw.replace(b"\r", b" ").replace(b"\n", b" ").replace(b"\x00", b" ")
    )
    return st.one_of(printable, safe, st.just(b""), st.sampled_from(_ODD_CASED_VALUES), long_value)


def header_lists(*, max_size: int = 12) -> st.SearchStrategy[list[tuple[bytes, bytes]]]:
    """Raw ASGI header lists: ``list[tuple[bytes, bytes]]`` as ``scope["headers"]`` holds them.

    Names are always lower-case (ASGI servers lower-case them) but otherwise adversarial:
    common names (``host``, ``content-length``, ``cookie``...) drawn often enough to repeat,
    arbitrary tokens, the empty name, names of raw non-ASCII bytes and names thousands of
    bytes long. Values are any bytes except CR, LF and NUL (which no HTTP parser lets
    through): empty, printable, non-ASCII, odd-cased (``Chunked``, ``KEEP-ALIVE``) and up to
    ~32 KB long. Nothing ties the values to each other: ``content-length`` may lie.
    """
    return st.lists(st.tuples(_header_names(), _header_values()), max_size=max_size)


_COOKIE_OCTETS = "".join(chr(code) for code in range(0x21, 0x7F) if chr(code) not in '",;\\')


def cookie_headers() -> st.SearchStrategy[str]:
    """Values of a ``Cookie`` request header, as text of Latin-1 characters.

    Mostly ``name=value; name2=value2`` with RFC 6265 characters, plus what browsers and
    scripts really send: quoted values, pairs without ``=``, empty names and values, ``;``
    without a space or doubled, names repeated, ``$Version``-style attributes, stray spaces
    and Latin-1 characters outside ASCII. Encode with ``.encode("latin-1")`` to put one in
    a header list.
    """
    octets = st.text(st.sampled_from(_COOKIE_OCTETS), max_size=12)
    names = st.one_of(octets, st.sampled_from(["session", "id", "$Version", "a b", ""]))
    value = st.one_of(
        octets,
        octets.map(lambda text: f'"{text}"'),
        # Latin-1, but no CR, LF or NUL: no HTTP parser lets those through in a header.
        st.text(st.characters(max_codepoint=255, exclude_characters="\r\n\x00"), max_size=6),
    )
    pair = st.one_of(
        st.tuples(names, value).map("=".join),
        names,
        st.sampled_from(['a="b;c"', "=", "==", " x = y ", "k=v=w", "\xe9t\xe9=\xe9"]),
    )
    separator = st.sampled_from(["; ", ";", ";;", " ; ", "; ;"])
    return st.tuples(st.lists(pair, max_size=8), separator).map(
        lambda parts: parts[1].join(parts[0])
    )


# --- bodies ---------------------------------------------------------------------------------


def urlencoded_bodies() -> st.SearchStrategy[tuple[bytes, list[tuple[str, str]]]]:
    """``application/x-www-form-urlencoded`` bodies, as ``(body, fields)``.

    ``fields`` is the list of (name, value) pairs of arbitrary Unicode the body encodes, in
    order and with repeated names; the body is their UTF-8 ``urlencode`` (``+`` for spaces,
    as browsers send it). Decoding the body must give back exactly ``fields``.
    """
    return _query_pairs(max_size=8).map(lambda pairs: (urlencode(pairs).encode("ascii"), pairs))


class MultipartPart(NamedTuple):
    """One part of a generated multipart body: what a form parser must find in it."""

    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None


_FIELD_NAME_CHARS = string.ascii_letters + string.digits + "-_.[] "
_BOUNDARY_CHARS = string.ascii_letters + string.digits + "'()+_,-./:=?"


def _multipart_parts() -> st.SearchStrategy[list[MultipartPart]]:
    name = st.text(st.sampled_from(_FIELD_NAME_CHARS), min_size=1, max_size=12)
    text_field = st.builds(MultipartPart, name, _TEXT.map(str.encode), st.none(), st.none())
    file_data = st.one_of(
        st.binary(max_size=64), _repeat(st.binary(min_size=1, max_size=8), 100, 500)
    )
    file_field = st.builds(
        MultipartPart,
        name,
        file_data,
        st.text(st.sampled_from(_FIELD_NAME_CHARS + "éü"), max_size=12).map(
            lambda stem: stem + ".bin"
        ),
        st.sampled_from([None, "application/octet-stream", "text/plain", "image/png"]),
    )
    return st.lists(st.one_of(text_field, file_field), max_size=6)


def _encode_part(part: MultipartPart, boundary: bytes) -> bytes:
    disposition = f'form-data; name="{part.name}"'
    if part.filename is not None:
        disposition += f'; filename="{part.filename}"'
    lines = [b"--" + boundary, b"Content-Disposition: " + disposition.encode("utf-8")]
    if part.content_type is not None:
        lines.append(b"Content-Type: " + part.content_type.encode("ascii"))
    return b"\r\n".join(lines) + b"\r\n\r\n" + part.data + b"\r\n"


def _unused_boundary(boundary: bytes, parts: list[MultipartPart]) -> bytes:
    """Lengthen `boundary` until no part's data contains it (a parser would cut there)."""
    while any(boundary in part.data for part in parts):
        boundary += b"x"
    return boundary


@st.composite
def multipart_bodies(draw: st.DrawFn) -> tuple[str, bytes, list[MultipartPart]]:
    """``multipart/form-data`` bodies, as ``(content_type, body, parts)``.

    ``content_type`` carries the boundary (``multipart/form-data; boundary=...``). ``parts``
    lists, in order, the `MultipartPart` each body part encodes: text fields (UTF-8 data,
    no filename) and file fields (binary data up to a few KB, a filename -- sometimes with
    non-ASCII letters, sent as UTF-8 like browsers do -- and an optional content type).
    Names repeat. The boundary is chosen so that it never occurs inside any part's data.
    """
    parts = draw(_multipart_parts())
    boundary = draw(st.text(st.sampled_from(_BOUNDARY_CHARS), min_size=1, max_size=30)).encode()
    boundary = _unused_boundary(b"stellate" + boundary, parts)
    body = b"".join(_encode_part(part, boundary) for part in parts) + b"--" + boundary + b"--\r\n"
    return f"multipart/form-data; boundary={boundary.decode()}", body, parts


def range_headers(size: int) -> st.SearchStrategy[str]:
    """``Range`` header values for a resource of `size` bytes, valid and otherwise.

    Satisfiable ranges (``bytes=0-99``, open ``bytes=500-``, suffix ``bytes=-20``), several
    at once, overlapping or adjacent (a server should merge them), plus what a parser must
    reject cleanly: ranges starting past the end, reversed bounds (``bytes=9-3``), other
    units (``items=0-1``), missing ``=``, empty range sets, stray whitespace, huge numbers
    and non-numeric text.
    """
    bound = st.integers(0, max(size + 10, 10))
    spec = st.one_of(
        st.tuples(bound, bound).map(lambda pair: f"{min(pair)}-{max(pair)}"),
        bound.map(lambda start: f"{start}-"),
        st.integers(0, size + 10).map(lambda length: f"-{length}"),
        st.tuples(bound, bound).map(lambda pair: f"{pair[0]}-{pair[1]}"),
        st.sampled_from(["", "-", "a-b", "1-2-3", " 0 - 1 ", "-0", "99999999999999999999-"]),
    )
    specs = st.lists(spec, min_size=1, max_size=5)
    unit = st.sampled_from(["bytes", "bytes", "bytes", "Bytes", "items", ""])
    separator = st.sampled_from([",", ", ", " ,"])
    valid_or_not = st.builds(
        lambda unit_, sep, items: f"{unit_}={sep.join(items)}", unit, separator, specs
    )
    return st.one_of(valid_or_not, st.sampled_from(["bytes", "bytes=", "=0-1", "0-1", ""]))


# --- scopes and messages --------------------------------------------------------------------

# Built once: constructing strategies inside every draw of a scope would dominate its cost.
_SCOPE_PATHS = paths()
_SCOPE_QUERIES = query_strings()
_SCOPE_HEADERS = header_lists()
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"]


def _connection_scope(
    draw: st.DrawFn,
    scope_type: str,
    schemes: list[str],
    headers: st.SearchStrategy[list[tuple[bytes, bytes]]] | None,
    root_path: str,
) -> dict[str, Any]:
    raw = draw(_SCOPE_PATHS)
    path = root_path + unquote_to_bytes(raw).decode("utf-8", "replace")
    return {
        "type": scope_type,
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": draw(st.sampled_from(["1.0", "1.1", "2"])),
        "scheme": draw(st.sampled_from(schemes)),
        "path": path,
        "raw_path": draw(st.sampled_from([None, (root_path + raw).encode("ascii")])),
        "query_string": draw(_SCOPE_QUERIES).encode("ascii"),
        "root_path": root_path,
        "headers": draw(_SCOPE_HEADERS if headers is None else headers),
        "client": draw(st.sampled_from([None, ("127.0.0.1", 50000), ("::1", 1)])),
        "server": draw(st.sampled_from([None, ("testserver", 80), ("/run/app.sock", None)])),
    }


@st.composite
def http_scopes(
    draw: st.DrawFn,
    *,
    methods: st.SearchStrategy[str] | None = None,
    headers: st.SearchStrategy[list[tuple[bytes, bytes]]] | None = None,
    root_path: str = "",
    extensions: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """ASGI HTTP scopes (spec version 2.4) that pass `LintMiddleware`'s scope checks.

    The path comes from `paths` (``scope["path"]`` decoded, ``raw_path`` the wire bytes or
    None), the query string from `query_strings` (malformed ones included), the headers
    from `header_lists` unless `headers` is given. Methods are the standard ones plus
    arbitrary upper-case tokens unless `methods` is given. `root_path` is prefixed to the
    path as the spec requires; `extensions`, if given, is copied into the scope.
    """
    if methods is None:
        methods = st.one_of(
            st.sampled_from(_METHODS),
            st.text(st.sampled_from(string.ascii_uppercase), min_size=1, max_size=10),
        )
    scope = _connection_scope(draw, "http", ["http", "https"], headers, root_path)
    scope["method"] = draw(methods)
    if extensions is not None:
        scope["extensions"] = {key: dict(value) for key, value in extensions.items()}
    return scope


@st.composite
def websocket_scopes(
    draw: st.DrawFn,
    *,
    headers: st.SearchStrategy[list[tuple[bytes, bytes]]] | None = None,
    root_path: str = "",
    extensions: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """ASGI WebSocket scopes that pass `LintMiddleware`'s scope checks.

    Like `http_scopes` (no method), with scheme ``ws`` or ``wss`` and a ``subprotocols``
    list of zero to three tokens.
    """
    scope = _connection_scope(draw, "websocket", ["ws", "wss"], headers, root_path)
    subprotocol = st.text(st.sampled_from(_TOKEN), min_size=1, max_size=10)
    scope["subprotocols"] = draw(st.lists(subprotocol, max_size=3, unique=True))
    if extensions is not None:
        scope["extensions"] = {key: dict(value) for key, value in extensions.items()}
    return scope


@st.composite
def chunkings(
    draw: st.DrawFn, body: bytes, *, disconnect: bool | None = False
) -> list[dict[str, Any]]:
    """`body` cut into the ``http.request`` messages a server could deliver it as.

    The cut points are arbitrary: chunks may be empty (including a final empty chunk after
    all the data), and the whole body may arrive at once. Every message but the last has
    ``more_body=True``. Optional keys are sometimes left out as the spec allows (an empty
    ``body`` omitted, a final ``more_body`` omitted), so code must apply the defaults.

    With ``disconnect=True`` the client goes away mid-body: the list is cut short and
    ends with ``{"type": "http.disconnect"}`` (the last request message then still says
    ``more_body=True``). ``disconnect=None`` lets Hypothesis choose. Without a disconnect,
    concatenating ``message.get("body", b"")`` over the messages gives back `body`.
    """
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=6)))
    bounds = [0, *cuts, len(body)]
    chunks = [body[start:end] for start, end in itertools.pairwise(bounds)]
    messages: list[dict[str, Any]] = []
    for chunk in chunks:
        message: dict[str, Any] = {"type": "http.request", "more_body": True}
        if chunk or draw(st.booleans()):
            message["body"] = chunk
        messages.append(message)
    if draw(st.booleans()):
        del messages[-1]["more_body"]
    else:
        messages[-1]["more_body"] = False
    wants_disconnect = draw(st.booleans()) if disconnect is None else disconnect
    if wants_disconnect:
        keep = draw(st.integers(0, len(messages) - 1))
        messages = messages[:keep]
        messages.append({"type": "http.disconnect"})
    return messages
