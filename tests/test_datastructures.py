"""Tests for stellate.datastructures: URLs, headers, multi-dicts, small values, uploads.

Pure-data tests run once; UploadFile and FormData tests are async and run on asyncio and
on trio (``anyio_backend``).
"""

from __future__ import annotations

import io
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import unquote, urlsplit

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stellate._concurrency import run_sync
from stellate.datastructures import (
    MAX_SPOOL_SIZE,
    URL,
    Address,
    CommaSeparatedStrings,
    FormData,
    Headers,
    ImmutableMultiDict,
    MultiDict,
    MutableHeaders,
    QueryParams,
    Secret,
    State,
    UploadFile,
    URLPath,
)

# ============================================================================ URL


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://user:pw@Example.COM:8443/a/b?x=1&y=2#frag",
            ("https", "user:pw@Example.COM:8443", "/a/b", "x=1&y=2", "frag"),
        ),
        ("http://[::1]:8000/", ("http", "[::1]:8000", "/", "", "")),
        ("/relative?q", ("", "", "/relative", "q", "")),
        ("", ("", "", "", "", "")),
        ("ws://h", ("ws", "h", "", "", "")),
    ],
)
def test_url_components(url: str, expected: tuple[str, ...]) -> None:
    parsed = URL(url)
    assert (parsed.scheme, parsed.netloc, parsed.path, parsed.query, parsed.fragment) == expected
    assert tuple(parsed.components) == expected


@pytest.mark.parametrize(
    ("url", "username", "password", "hostname", "port"),
    [
        ("https://user:pw@Example.COM:8443/", "user", "pw", "example.com", 8443),
        ("http://user@host/", "user", None, "host", None),
        ("http://:pw@host/", "", "pw", "host", None),
        ("http://[::1]:8000/", None, None, "::1", 8000),
        ("http://[fe80::1%25eth0]/", None, None, "fe80::1%25eth0", None),
        ("http://host:/", None, None, "host", None),
        ("/path-only", None, None, None, None),
    ],
)
def test_url_netloc_parts(
    url: str, username: str | None, password: str | None, hostname: str | None, port: int | None
) -> None:
    parsed = URL(url)
    assert parsed.username == username
    assert parsed.password == password
    assert parsed.hostname == hostname
    assert parsed.port == port


@pytest.mark.parametrize(
    ("scheme", "secure"),
    [("http", False), ("https", True), ("ws", False), ("wss", True), ("", False)],
)
def test_url_is_secure(scheme: str, secure: bool) -> None:
    assert URL(f"{scheme}://h/" if scheme else "/").is_secure is secure


@pytest.mark.parametrize(
    ("url", "kwargs", "expected"),
    [
        ("http://a.com/p?q#f", {"scheme": "https"}, "https://a.com/p?q#f"),
        ("http://a.com/p?q#f", {"path": "/new"}, "http://a.com/new?q#f"),
        ("http://a.com/p?q#f", {"query": "x=1"}, "http://a.com/p?x=1#f"),
        ("http://a.com/p?q#f", {"query": ""}, "http://a.com/p#f"),
        ("http://a.com/p?q#f", {"fragment": ""}, "http://a.com/p?q"),
        ("http://a.com/p", {"netloc": "b.org:81"}, "http://b.org:81/p"),
        ("http://a.com:81/p", {"hostname": "b.org"}, "http://b.org:81/p"),
        ("http://a.com:81/p", {"port": 82}, "http://a.com:82/p"),
        ("http://a.com:81/p", {"port": None}, "http://a.com/p"),
        ("http://a.com/p", {"hostname": "::1"}, "http://[::1]/p"),
        ("http://a.com/p", {"hostname": "::1", "port": 8000}, "http://[::1]:8000/p"),
        ("http://[::1]:8000/p", {"port": 9000}, "http://[::1]:9000/p"),
        ("http://[::1]:8000/p", {"hostname": "b.org"}, "http://b.org:8000/p"),
        ("http://[::1]/p", {"username": "u"}, "http://u@[::1]/p"),
        ("http://a.com/p", {"username": "u", "password": "p"}, "http://u:p@a.com/p"),
        ("http://u:p@a.com/p", {"password": None}, "http://u@a.com/p"),
        ("http://u:p@a.com/p", {"username": None, "password": None}, "http://a.com/p"),
        ("http://u:p@a.com:1/p", {"hostname": "b.com"}, "http://u:p@b.com:1/p"),
        ("http://u@a.com/p", {"password": "s"}, "http://u:s@a.com/p"),
        # Delimiters in userinfo are encoded so the netloc still splits where it should.
        (
            "http://a.com/p",
            {"username": "a@b", "password": "c:d/"},
            "http://a%40b:c%3Ad%2F@a.com/p",
        ),
        # Already-encoded userinfo passes through unchanged.
        ("http://a.com/p", {"username": "a%40b"}, "http://a%40b@a.com/p"),
        # As in Starlette, "?" and "#" in path= start the query and the fragment.
        ("http://a.com/", {"path": "/x?y#z"}, "http://a.com/x?y#z"),
        # Kept (differences.md): a leading "//" and "\\" are encoded, never a host.
        ("http://a.com/", {"path": "//evil.com/x"}, "http://a.com/%2Fevil.com/x"),
        ("http://a.com/", {"path": "/a\\b"}, "http://a.com/a%5Cb"),
        ("/rel", {"path": "//evil.com/x"}, "/%2Fevil.com/x"),
    ],
)
def test_url_replace(url: str, kwargs: dict[str, Any], expected: str) -> None:
    original = URL(url)
    replaced = original.replace(**kwargs)
    assert str(replaced) == expected
    assert str(original) == url  # URLs are immutable


def test_url_replace_userinfo_round_trips_through_parsing() -> None:
    url = URL("http://h/").replace(username="we:ird@", password="p@ss:w/rd")
    assert unquote(url.username or "") == "we:ird@"
    assert unquote(url.password or "") == "p@ss:w/rd"
    assert url.hostname == "h"


def test_url_replace_unknown_component() -> None:
    # ValueError, as urllib's SplitResult._replace raises in Starlette.
    with pytest.raises(ValueError, match="colour"):
        URL("http://a/").replace(colour="blue")


def test_url_malformed_port_raises() -> None:
    # As in Starlette (urllib's ValueError); URLs built from a scope never hold one.
    with pytest.raises(ValueError):
        _ = URL("http://host:notaport/").port


@pytest.mark.parametrize(
    ("kwargs", "expected", "hostname", "port"),
    [
        ({"hostname": "b.test:82", "port": None}, "http://b.test:82/", "b.test", 82),
        ({"hostname": "b.test:82"}, "http://b.test:82:81/", None, None),
        ({"hostname": "::1", "port": None}, "http://[::1]/", "::1", None),
        ({"hostname": "[::2]"}, "http://[::2]:81/", "::2", 81),
    ],
)
def test_url_replace_hostname_with_colon(
    kwargs: dict[str, Any], expected: str, hostname: str | None, port: int | None
) -> None:
    url = URL("http://a.test:81/").replace(**kwargs)
    assert str(url) == expected
    repr(url)  # never raises
    if hostname is not None:
        assert (url.hostname, url.port) == (hostname, port)


def test_url_from_components() -> None:
    url = URL(scheme="https", netloc="example.com", path="/a", query="b=1", fragment="c")
    assert url == "https://example.com/a?b=1#c"
    assert URL(path="/only") == "/only"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"url": "http://a/", "scope": {"type": "http", "path": "/"}},
        {"url": "http://a/", "path": "/"},
        {"scope": {"type": "http", "path": "/"}, "path": "/"},
    ],
)
def test_url_refuses_several_sources(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="URL"):
        URL(**kwargs)


def test_url_from_url() -> None:
    url = URL(URL("http://a.com/x"))  # type: ignore[arg-type]
    assert url == "http://a.com/x"
    assert isinstance(str(url), str)


def test_url_equality_and_hash() -> None:
    url = URL("http://a.com/x")
    assert url == "http://a.com/x"
    assert url == URL("http://a.com/x")
    assert url != "http://a.com/y"
    assert url != URL("http://a.com/y")
    assert url != 42
    assert hash(url) == hash(URL("http://a.com/x"))
    assert {url: 1}[URL("http://a.com/x")] == 1
    assert str(url) == "http://a.com/x"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://u:secret@a.com/x", "URL('http://u:********@a.com/x')"),
        ("http://u@a.com/x", "URL('http://u@a.com/x')"),
        ("http://a.com/x", "URL('http://a.com/x')"),
    ],
)
def test_url_repr_hides_password(url: str, expected: str) -> None:
    assert repr(URL(url)) == expected
    assert "secret" not in repr(URL(url))


@pytest.mark.parametrize(
    ("url", "kwargs", "expected"),
    [
        ("http://a/?x=1&y=2", {"x": 3}, "http://a/?y=2&x=3"),
        ("http://a/?x=1&x=2&y=2", {"x": "z"}, "http://a/?y=2&x=z"),
        ("http://a/", {"q": "a b&c"}, "http://a/?q=a+b%26c"),
        ("http://a/?blank=&y=1", {"n": 1}, "http://a/?blank=&y=1&n=1"),
        ("http://a/p#frag", {"n": True}, "http://a/p?n=True#frag"),
    ],
)
def test_include_query_params(url: str, kwargs: dict[str, Any], expected: str) -> None:
    assert URL(url).include_query_params(**kwargs) == expected


@pytest.mark.parametrize(
    ("url", "kwargs", "expected"),
    [
        ("http://a/?x=1&y=2", {"z": 3}, "http://a/?z=3"),
        ("http://a/?x=1", {}, "http://a/"),
        ("http://a/p?x=1#f", {"a": "b c"}, "http://a/p?a=b+c#f"),
    ],
)
def test_replace_query_params(url: str, kwargs: dict[str, Any], expected: str) -> None:
    assert URL(url).replace_query_params(**kwargs) == expected


@pytest.mark.parametrize(
    ("url", "keys", "expected"),
    [
        ("http://a/?x=1&y=2&x=3", "x", "http://a/?y=2"),
        ("http://a/?x=1&y=2&z=3", ["x", "z"], "http://a/?y=2"),
        ("http://a/?x=1", ["missing"], "http://a/?x=1"),
        ("http://a/?x=1", "x", "http://a/"),
        ("http://a/?x=1&blank=", ("x",), "http://a/?blank="),
    ],
)
def test_remove_query_params(url: str, keys: Any, expected: str) -> None:
    assert URL(url).remove_query_params(keys) == expected


# ---------------------------------------------------------------------------- URL from a scope


def _scope(**overrides: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "scheme": "http",
        "server": ("testserver", 80),
        "path": "/",
        "root_path": "",
        "query_string": b"",
        "headers": [],
    }
    scope.update(overrides)
    return scope


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, "http://testserver/"),
        ({"server": ("testserver", 8000)}, "http://testserver:8000/"),
        ({"scheme": "https", "server": ("h", 443)}, "https://h/"),
        ({"scheme": "https", "server": ("h", 80)}, "https://h:80/"),
        ({"scheme": "ws", "server": ("h", 80)}, "ws://h/"),
        ({"scheme": "wss", "server": ("h", 443)}, "wss://h/"),
        ({"scheme": "wss", "server": ("h", 8443)}, "wss://h:8443/"),
        ({"server": ("::1", 8000)}, "http://[::1]:8000/"),
        ({"server": ("::1", 80)}, "http://[::1]/"),
        ({"server": ("h", None)}, "http://h/"),
        ({"server": None}, "/"),
        ({"server": ["/tmp/app.sock", None]}, "/"),
        ({"server": ("", 80)}, "/"),
        ({"server": "garbage"}, "/"),
        ({"path": "/a/b", "query_string": b"x=1&y=2"}, "http://testserver/a/b?x=1&y=2"),
        # Valid UTF-8 reads as text, as in Starlette; only invalid bytes are escaped.
        ({"query_string": b"a=\xc3\xa9"}, "http://testserver/?a=\u00e9"),
        ({"query_string": b"a=\xc3\xa9&b=\xff"}, "http://testserver/?a=\u00e9&b=%FF"),
        ({"query_string": b"a=\xe9"}, "http://testserver/?a=%E9"),
        ({"query_string": b"a=1#2"}, "http://testserver/?a=1%232"),
        ({"headers": [(b"host", b"example.com")]}, "http://example.com/"),
        ({"headers": [(b"Host", b"example.com:8080")]}, "http://example.com:8080/"),
        # A valid Host header is used as written: a default port stays (as Starlette).
        ({"headers": [(b"host", b"example.com:80")]}, "http://example.com:80/"),
        ({"headers": [(b"host", b"example.com:000443")]}, "http://example.com:000443/"),
        ({"scheme": "https", "headers": [(b"host", b"e.com:443")]}, "https://e.com:443/"),
        ({"scheme": "https", "headers": [(b"host", b"e.com:80")]}, "https://e.com:80/"),
        ({"headers": [(b"host", b"[::1]:8000")]}, "http://[::1]:8000/"),
        ({"headers": [(b"host", b"[::1]:80")]}, "http://[::1]:80/"),
        ({"headers": [(b"host", b"[::ffff:1.2.3.4]")]}, "http://[::ffff:1.2.3.4]/"),
        ({"headers": [(b"host", b"[v7.site]")]}, "http://[v7.site]/"),
        ({"headers": [(b"host", b"[::1]")]}, "http://[::1]/"),
        ({"headers": [(b"host", b"example.com")], "server": None}, "http://example.com/"),
        # root_path: ASGI's path already includes it, so path is used alone (Starlette).
        ({"root_path": "/api", "path": "/users"}, "http://testserver/users"),
        ({"root_path": "/api", "path": "/api/users"}, "http://testserver/api/users"),
        ({"root_path": "/api", "path": "/api"}, "http://testserver/api"),
        ({"root_path": "/api", "path": "/apis"}, "http://testserver/apis"),
        # Without "path", the raw path is used.
        ({"path": None, "raw_path": b"/raw%20p"}, "http://testserver/raw%20p"),
    ],
)
def test_url_from_scope(overrides: dict[str, Any], expected: str) -> None:
    scope = _scope(**overrides)
    if scope["path"] is None:
        del scope["path"]
    assert URL(scope=scope) == expected


def test_url_from_minimal_scope() -> None:
    assert URL(scope={"type": "http", "path": "/x"}) == "/x"
    assert URL(scope={"type": "http", "path": "/x", "server": ("h", 80)}) == "http://h/x"


@pytest.mark.parametrize(
    "host",
    [
        b"bad host",
        b"user@evil.com",
        b"user:pw@evil.com",
        b"evil.com/path",
        b"evil.com?x",
        b"evil.com#x",
        b"evil.com\\x",
        b"evil.com:99999",
        b"evil.com:70000",
        b"evil.com:123456",
        b"evil.com:0000065536",
        b"evil.com:" + b"0" * 31 + b"80",  # too long to read back: refused, not a 500
        b"evil.com:" + b"0" * 5000 + b"80",
        b"evil.com:",
        b"evil.com:12a",
        b"evil.com:80:80",
        b"[::1",
        b"::1",
        b"[::1]x",
        # Bracketed literals that are not addresses: no 500 later, no Location built on them.
        b"[1::2::3]",
        b"[:::]",
        b"[1:2:3:4:5:6:7:8:9]:80",
        b"[::ffff:999.1.1.1]",
        b"[::1%25eth0]",
        b"[V7.site]",
        b"[v.site]",
        b"[]",
        b"",
        b"\xff\xfe",
        b"h\r\nx",
        b"h\tx",
    ],
)
def test_malformed_host_header_falls_back_to_server(host: bytes) -> None:
    scope = _scope(server=("fallback", 8000), headers=[(b"host", host)])
    url = URL(scope=scope)
    assert url == "http://fallback:8000/"
    assert url.hostname == "fallback"
    assert url.port == 8000


@pytest.mark.parametrize(
    ("path", "expected_url", "expected_path"),
    [
        ("@attacker.test", "http://localhost/@attacker.test", "/@attacker.test"),
        ("me:pw@attacker.test", "http://localhost/me:pw@attacker.test", "/me:pw@attacker.test"),
        (
            "https://attacker.test/x",
            "http://localhost/https://attacker.test/x",
            "/https://attacker.test/x",
        ),
        ("*", "http://localhost/*", "/*"),
        ("", "http://localhost/", "/"),
    ],
)
def test_scope_path_without_leading_slash_never_joins_the_host(
    path: str, expected_url: str, expected_path: str
) -> None:
    url = URL(scope=_scope(path=path, headers=[(b"host", b"localhost")]))
    assert url == expected_url
    assert url.hostname == "localhost"
    assert url.username is None
    assert url.path == expected_path


def test_scope_path_without_leading_slash_uses_the_server_host_too() -> None:
    url = URL(scope=_scope(path="@attacker.test", server=("h", 8000)))
    assert url == "http://h:8000/@attacker.test"
    assert url.hostname == "h"


def test_relative_scope_url_never_starts_with_two_slashes() -> None:
    # Without any host the URL is relative: there a leading `//` would name a host.
    url = URL(scope=_scope(path="//attacker.test/x", server=None))
    assert url == "/%2Fattacker.test/x"
    assert url.netloc == ""
    url = URL(scope=_scope(path="@attacker.test", server=None))
    assert url == "/@attacker.test"
    assert url.netloc == ""


def test_host_header_port_is_kept_as_written() -> None:
    url = URL(scope=_scope(headers=[(b"host", b"example.net:000443")]))
    assert url.port == 443
    assert url.netloc == "example.net:000443"
    url = URL(scope=_scope(headers=[(b"host", b"[v7.site]")]))
    assert url.hostname == "v7.site"


@pytest.mark.parametrize("host", [b"[1::2::3]", b"[:::]", b"[::ffff:999.1.1.1]"])
def test_invalid_ip_literal_host_never_raises_on_read(host: bytes) -> None:
    url = URL(scope=_scope(path="/x", headers=[(b"host", host)]))
    assert (url.hostname, url.port, url.path) == ("testserver", None, "/x")
    assert repr(url) == "URL('http://testserver/x')"


def test_only_first_host_header_counts() -> None:
    scope = _scope(headers=[(b"accept", b"*/*"), (b"host", b"first"), (b"host", b"second")])
    assert URL(scope=scope).hostname == "first"


@pytest.mark.parametrize(
    ("path", "expected_path"),
    [
        ("/a?b", "/a%3Fb"),
        ("/a#b", "/a%23b"),
        ("/a\\b", "/a%5Cb"),
        # With a host, a leading `//` is an empty segment and stays (as Starlette).
        ("//evil.com/x", "//evil.com/x"),
        ("///x", "///x"),
        ("/a\tb\r\nc", "/a%09b%0D%0Ac"),
        ("/caf\u00e9 bar", "/caf\u00e9 bar"),  # decoded, readable path is kept as it is
        ("/a%2Fb", "/a%2Fb"),
        ("/a/b/", "/a/b/"),
    ],
)
def test_url_from_scope_encodes_path_delimiters(path: str, expected_path: str) -> None:
    url = URL(scope=_scope(path=path, query_string=b"q=1"))
    assert url.path == expected_path
    assert url.netloc == "testserver"
    assert url.query == "q=1"
    assert url.fragment == ""


_PATH_TEXT = st.text(alphabet=st.characters(codec="utf-8", blacklist_characters="%"), max_size=30)


@given(path=_PATH_TEXT.map(lambda text: "/" + text), query=st.binary(max_size=20))
def test_scope_path_reparses_to_the_same_path(path: str, query: bytes) -> None:
    # Whatever the (decoded) path holds, the URL string re-parses to that path: same
    # host, and undoing the percent-encoding gives the original path back.
    url = URL(scope=_scope(path=path, query_string=query, server=("h", 8000)))
    reparsed = urlsplit(str(url))
    assert reparsed.netloc == "h:8000"
    assert unquote(reparsed.path) == path
    assert reparsed.fragment == ""


@given(
    host=st.one_of(
        st.binary(max_size=40),
        st.from_regex(rb"\A[a-zA-Z0-9.@ \[\]:-]{0,12}(:[0-9]{0,6})?\Z"),
    ),
    scheme=st.sampled_from(["http", "https", "ws", "wss"]),
)
def test_any_host_header_never_raises(host: bytes, scheme: str) -> None:
    url = URL(scope=_scope(scheme=scheme, headers=[(b"host", host)], server=("srv", 9)))
    # Every accessor works; the host comes from the header only if it is well formed,
    # and then it carries no userinfo and only a real port.
    assert url.scheme == scheme
    assert url.path == "/"
    assert url.username is None
    assert url.password is None
    assert url.hostname
    port = url.port
    assert port is None or 0 <= port <= 65535
    if url.netloc != "srv:9":
        assert url.hostname in host.decode("latin-1").lower()
        assert url.port is None or str(url.port) in host.decode("latin-1")


# ============================================================================ URLPath


@pytest.mark.parametrize(
    ("protocol", "host", "base", "expected"),
    [
        ("http", "", "http://a.com", "http://a.com/p"),
        ("http", "", "https://a.com", "https://a.com/p"),
        ("http", "", "wss://a.com", "https://a.com/p"),
        ("websocket", "", "http://a.com", "ws://a.com/p"),
        ("websocket", "", "https://a.com", "wss://a.com/p"),
        ("websocket", "", "ws://a.com", "ws://a.com/p"),
        ("", "", "https://a.com", "https://a.com/p"),
        ("", "", "ws://a.com", "ws://a.com/p"),
        ("http", "other.org", "https://a.com", "https://other.org/p"),
        ("http", "", "http://a.com/root/", "http://a.com/root/p"),
        ("http", "", "http://a.com/root", "http://a.com/root/p"),
        ("http", "", "http://a.com:8000/?q=1", "http://a.com:8000/p"),
    ],
)
def test_urlpath_make_absolute_url(protocol: Any, host: str, base: str, expected: str) -> None:
    path = URLPath("/p", protocol=protocol, host=host)
    assert path.make_absolute_url(base) == expected
    assert path.make_absolute_url(URL(base)) == expected


def test_urlpath_is_a_str() -> None:
    path = URLPath("/users/1", "http")
    assert isinstance(path, str)
    assert path == "/users/1"
    assert path.protocol == "http"
    assert path.host == ""
    assert path + "?x" == "/users/1?x"


def test_urlpath_rejects_unknown_protocol() -> None:
    # AssertionError, as Starlette raises it.
    with pytest.raises(AssertionError, match="protocol"):
        URLPath("/p", protocol="ftp")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("//attacker.test/x", "/%2Fattacker.test/x"),
        ("/\\attacker.test/x", "/%5Cattacker.test/x"),
        ("\\\\attacker.test", "%5C%5Cattacker.test"),
        ("/a//b", "/a//b"),
        ("/a\\b", "/a%5Cb"),
    ],
)
def test_urlpath_is_never_scheme_relative(path: str, expected: str) -> None:
    built = URLPath(path, protocol="http")
    assert built == expected
    assert URL(str(built)).netloc == ""


# ============================================================================ Headers


def test_headers_are_case_insensitive_and_keep_duplicates() -> None:
    headers = Headers(
        raw=[(b"content-type", b"text/plain"), (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]
    )
    assert headers["Content-Type"] == "text/plain"
    assert headers["SET-COOKIE"] == "a=1"  # the first value
    assert headers.getlist("Set-Cookie") == ["a=1", "b=2"]
    assert headers.getlist("missing") == []
    assert "CONTENT-TYPE" in headers
    assert "missing" not in headers
    assert cast(Any, 42) not in headers
    assert headers.get("x-missing") is None
    assert headers.get("x-missing", "d") == "d"
    assert len(headers) == 3
    assert headers.keys() == ["content-type", "set-cookie", "set-cookie"]
    assert headers.values() == ["text/plain", "a=1", "b=2"]
    assert headers.items() == [
        ("content-type", "text/plain"),
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2"),
    ]
    assert list(headers) == headers.keys()
    with pytest.raises(KeyError):
        headers["missing"]


def test_headers_from_mapping_lowercases_names() -> None:
    headers = Headers({"Content-Type": "text/html", "X-Thing": "Value"})
    assert headers.raw == [(b"content-type", b"text/html"), (b"x-thing", b"Value")]
    assert headers["x-thing"] == "Value"  # values keep their case


def test_headers_latin1() -> None:
    headers = Headers(raw=[(b"x", "caf\u00e9".encode("latin-1"))])
    assert headers["x"] == "caf\u00e9"
    with pytest.raises(UnicodeEncodeError):
        Headers({"x": "snow\u2603"})


def test_headers_lookup_with_names_no_header_can_have() -> None:
    headers = MutableHeaders({"a": "1"})
    assert "snow\u2603" not in headers
    assert None not in headers
    assert headers.getlist("snow\u2603") == []
    assert headers.get("snow\u2603") is None
    with pytest.raises(KeyError):
        headers["snow\u2603"]
    del headers["snow\u2603"]
    assert headers.raw == [(b"a", b"1")]


def test_headers_from_scope_reuse_a_list_without_copying() -> None:
    raw = [(b"host", b"h")]
    scope: dict[str, Any] = {"type": "http", "headers": raw}
    assert Headers(scope=scope).raw is raw
    assert scope["headers"] is raw


def test_headers_from_scope_share_its_list() -> None:
    message: dict[str, Any] = {"type": "http.response.start", "headers": ((b"a", b"1"),)}
    headers = MutableHeaders(scope=message)
    headers.append("b", "2")
    headers["a"] = "3"
    assert message["headers"] == [(b"a", b"3"), (b"b", b"2")]
    assert Headers(scope={"type": "http"}).raw == []


def test_headers_raw_list_is_shared() -> None:
    raw = [(b"a", b"1")]
    headers = MutableHeaders(raw=raw)
    headers["b"] = "2"
    assert raw == [(b"a", b"1"), (b"b", b"2")]


def test_headers_empty_and_several_sources() -> None:
    assert Headers().raw == []
    assert len(Headers()) == 0
    with pytest.raises(ValueError, match="only one"):
        Headers({"a": "1"}, raw=[])
    with pytest.raises(ValueError, match="only one"):
        Headers(raw=[], scope={"headers": []})


def test_headers_equality_ignores_order_not_values() -> None:
    one = Headers(raw=[(b"a", b"1"), (b"b", b"2")])
    assert one == Headers(raw=[(b"b", b"2"), (b"a", b"1")])
    assert one == MutableHeaders({"A": "1", "B": "2"})
    assert one != Headers(raw=[(b"a", b"1")])
    assert one != Headers(raw=[(b"a", b"1"), (b"b", b"3")])
    assert one != {"a": "1", "b": "2"}
    with pytest.raises(TypeError):
        hash(one)


def test_headers_repr() -> None:
    assert repr(Headers({"A": "1"})) == "Headers({'a': '1'})"
    duplicated = MutableHeaders(raw=[(b"a", b"1"), (b"a", b"2")])
    assert repr(duplicated) == "MutableHeaders(raw=[(b'a', b'1'), (b'a', b'2')])"


def test_mutablecopy_is_independent() -> None:
    headers = Headers({"a": "1"})
    copy = headers.mutablecopy()
    assert isinstance(copy, MutableHeaders)
    copy["a"] = "2"
    copy["b"] = "3"
    assert headers["a"] == "1"
    assert "b" not in headers
    assert copy == Headers({"a": "2", "b": "3"})


def test_mutable_setitem_replaces_all_in_first_position() -> None:
    headers = MutableHeaders(raw=[(b"a", b"1"), (b"x", b"1"), (b"b", b"2"), (b"x", b"2")])
    headers["X"] = "new"
    assert headers.raw == [(b"a", b"1"), (b"x", b"new"), (b"b", b"2")]
    headers["c"] = "3"
    assert headers.raw[-1] == (b"c", b"3")


def test_mutable_delitem_removes_all_and_ignores_missing() -> None:
    headers = MutableHeaders(raw=[(b"x", b"1"), (b"a", b"1"), (b"x", b"2")])
    del headers["X"]
    assert headers.raw == [(b"a", b"1")]
    del headers["missing"]
    assert headers.raw == [(b"a", b"1")]


def test_mutable_setdefault() -> None:
    headers = MutableHeaders({"a": "1"})
    assert headers.setdefault("A", "2") == "1"
    assert headers.setdefault("b", "3") == "3"
    assert headers.raw == [(b"a", b"1"), (b"b", b"3")]


def test_mutable_update_append_or() -> None:
    headers = MutableHeaders(raw=[(b"a", b"1"), (b"a", b"2")])
    headers.update({"A": "3", "b": "4"})
    assert headers.raw == [(b"a", b"3"), (b"b", b"4")]
    headers.append("B", "5")
    assert headers.getlist("b") == ["4", "5"]

    merged = headers | {"c": "6", "a": "7"}
    assert isinstance(merged, MutableHeaders)
    assert merged.raw == [(b"a", b"7"), (b"b", b"4"), (b"b", b"5"), (b"c", b"6")]
    assert "c" not in headers  # `|` leaves the left side alone

    same = headers
    same |= {"d": "8"}
    assert same is headers
    assert headers["d"] == "8"

    with pytest.raises(TypeError):
        headers | [("e", "9")]  # type: ignore[operator]
    with pytest.raises(TypeError):
        headers |= [("e", "9")]  # type: ignore[arg-type]


_INJECTIONS = ["a\rb", "a\nb", "a\r\nSet-Cookie: x=1", "a\0b", "\n", "trailing\r\n"]


@pytest.mark.parametrize("bad", _INJECTIONS)
@pytest.mark.parametrize(
    "operation",
    [
        lambda h, k, v: h.__setitem__(k, v),
        lambda h, k, v: h.append(k, v),
        lambda h, k, v: h.setdefault(k, v),
        lambda h, k, v: h.update({k: v}),
        lambda h, k, v: h.__ior__({k: v}),
        lambda h, k, v: MutableHeaders({k: v}),
        lambda h, k, v: Headers({k: v}),
    ],
    ids=["setitem", "append", "setdefault", "update", "ior", "MutableHeaders", "Headers"],
)
def test_header_injection_is_refused(
    operation: Callable[[MutableHeaders, str, str], Any], bad: str
) -> None:
    headers = MutableHeaders({"keep": "me"})
    # The one header encoder's messages (they used to say "forbidden character").
    with pytest.raises(ValueError, match="CR, LF and NUL are not allowed"):
        operation(headers, "x-name", bad)  # in the value
    with pytest.raises(ValueError, match="it must be an HTTP token"):
        operation(headers, bad, "value")  # in the name
    assert headers.raw == [(b"keep", b"me")]  # nothing half-written


def test_add_vary_header_refuses_injection() -> None:
    headers = MutableHeaders()
    with pytest.raises(ValueError, match="CR, LF and NUL are not allowed"):
        headers.add_vary_header("Origin\r\nX-Evil: 1")
    assert "vary" not in headers


@pytest.mark.parametrize(
    ("existing", "added", "expected"),
    [
        ([], "Origin", "Origin"),
        (["Accept-Encoding"], "Origin", "Accept-Encoding, Origin"),
        (["Accept-Encoding, Origin"], "origin", "Accept-Encoding, Origin"),
        (["Accept-Encoding", "Cookie"], "Origin", "Accept-Encoding, Cookie, Origin"),
        (["Origin"], "Origin, Accept", "Origin, Accept"),
        (["Origin,,  Accept "], "Cookie", "Origin, Accept, Cookie"),
        (["*"], "Origin", "*, Origin"),
        (["Accept"], "", "Accept"),
    ],
)
def test_add_vary_header(existing: list[str], added: str, expected: str) -> None:
    headers = MutableHeaders(raw=[(b"vary", value.encode()) for value in existing])
    headers.append("content-type", "text/plain")
    headers.add_vary_header(added)
    assert headers.getlist("vary") == [expected]
    assert headers["content-type"] == "text/plain"


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "A", "b", "Content-Type", "x-y"]),
            st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=5),
        ),
        max_size=8,
    )
)
def test_headers_lookup_matches_a_case_folded_model(pairs: list[tuple[str, str]]) -> None:
    headers = MutableHeaders()
    for key, value in pairs:
        headers.append(key, value)
    for name in ["a", "B", "content-type", "X-Y", "missing"]:
        expected = [value for key, value in pairs if key.lower() == name.lower()]
        assert headers.getlist(name) == expected
        assert (name in headers) == bool(expected)
        if expected:
            assert headers[name] == expected[0]


# ============================================================================ multi-dicts


def test_immutable_multidict_access() -> None:
    md = ImmutableMultiDict([("a", "1"), ("b", "2"), ("a", "3")])
    assert md["a"] == "3"  # like dict(pairs): the last value
    assert md.getlist("a") == ["1", "3"]
    assert md.getlist("zz") == []
    assert md.get("zz") is None
    assert "a" in md
    assert "zz" not in md
    assert len(md) == 2
    assert list(md) == ["a", "b"]
    assert list(md.keys()) == ["a", "b"]
    assert list(md.values()) == ["3", "2"]
    assert list(md.items()) == [("a", "3"), ("b", "2")]
    assert md.multi_items() == [("a", "1"), ("b", "2"), ("a", "3")]
    assert repr(md) == "ImmutableMultiDict([('a', '1'), ('b', '2'), ('a', '3')])"
    with pytest.raises(KeyError):
        md["zz"]
    with pytest.raises(TypeError):
        md["a"] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        hash(md)


@pytest.mark.parametrize(
    ("make_args", "kwargs", "expected"),
    [
        (lambda: (), {}, []),
        (lambda: ({"a": 1, "b": 2},), {}, [("a", 1), ("b", 2)]),
        (lambda: ([("a", 1), ("a", 2)],), {}, [("a", 1), ("a", 2)]),
        (lambda: (ImmutableMultiDict([("a", 1), ("a", 2)]),), {}, [("a", 1), ("a", 2)]),
        (lambda: (iter([("g", 1)]),), {}, [("g", 1)]),
        (lambda: ([("a", 1)],), {"b": 2}, [("a", 1), ("b", 2)]),
        (lambda: (), {"k": "v"}, [("k", "v")]),
    ],
)
def test_multidict_constructors(
    make_args: Callable[[], tuple[Any, ...]], kwargs: dict[str, Any], expected: Any
) -> None:
    assert ImmutableMultiDict(*make_args(), **kwargs).multi_items() == expected
    assert MultiDict(*make_args(), **kwargs).multi_items() == expected


def test_multidict_refuses_two_positional_arguments() -> None:
    with pytest.raises(TypeError, match="at most 1"):
        ImmutableMultiDict({"a": 1}, {"b": 2})


@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [
        ([("a", "1"), ("b", "2")], [("b", "2"), ("a", "1")], True),
        ([("a", "1"), ("a", "2")], [("a", "1"), ("a", "2")], True),
        ([("a", "1"), ("a", "2")], [("a", "2"), ("a", "1")], False),
        ([("a", "1"), ("b", "2"), ("a", "3")], [("a", "1"), ("a", "3"), ("b", "2")], True),
        ([("a", "1")], [("a", "1"), ("a", "1")], False),
        ([], [], True),
        ([("a", "1")], [("a", "2")], False),
        # Values that cannot be ordered still compare.
        ([("a", {"x": 1})], [("a", {"x": 1})], True),
    ],
)
def test_multidict_equality(left: list[Any], right: list[Any], equal: bool) -> None:
    assert (ImmutableMultiDict(left) == ImmutableMultiDict(right)) is equal
    assert (MultiDict(left) == ImmutableMultiDict(right)) is equal
    assert (ImmutableMultiDict(left) != ImmutableMultiDict(right)) is not equal


def test_multidict_not_equal_to_plain_mapping() -> None:
    assert ImmutableMultiDict({"a": 1}) != {"a": 1}


def test_multidict_setitem_delitem() -> None:
    md = MultiDict([("a", 1), ("b", 2), ("a", 3)])
    md["a"] = 4
    assert md.multi_items() == [("b", 2), ("a", 4)]
    md["c"] = 5
    assert md["c"] == 5
    del md["a"]
    assert md.multi_items() == [("b", 2), ("c", 5)]
    with pytest.raises(KeyError):
        del md["a"]


def test_multidict_pop_and_poplist() -> None:
    md = MultiDict([("a", 1), ("b", 2), ("a", 3)])
    assert md.pop("a") == 3
    assert md.multi_items() == [("b", 2)]
    assert md.pop("a") is None
    assert md.pop("a", "d") == "d"

    md = MultiDict([("a", 1), ("b", 2), ("a", 3)])
    assert md.poplist("a") == [1, 3]
    assert md.poplist("a") == []
    assert md.multi_items() == [("b", 2)]
    assert "a" not in md


def test_multidict_popitem() -> None:
    md = MultiDict([("a", 1), ("b", 2), ("a", 3)])
    assert md.popitem() in {("a", 3), ("b", 2)}
    assert len(md) == 1
    assert len(md.multi_items()) == len(md.getlist(next(iter(md))))
    md.popitem()
    with pytest.raises(KeyError):
        md.popitem()


def test_multidict_setdefault_setlist_append_clear() -> None:
    md = MultiDict([("a", 1)])
    assert md.setdefault("a", 9) == 1
    assert md.setdefault("b", 2) == 2
    assert md.setdefault("c") is None
    assert md.multi_items() == [("a", 1), ("b", 2), ("c", None)]

    md.setlist("a", [7, 8])
    assert md.getlist("a") == [7, 8]
    assert md["a"] == 8
    md.setlist("a", [])
    assert "a" not in md
    assert md.getlist("a") == []

    md.append("b", 3)
    assert md.getlist("b") == [2, 3]
    assert md["b"] == 3

    md.clear()
    assert len(md) == 0
    assert md.multi_items() == []


def test_multidict_update() -> None:
    md = MultiDict([("a", 1), ("b", 2), ("a", 3)])
    md.update([("a", 4), ("a", 5)], c=6)
    assert md.multi_items() == [("b", 2), ("a", 4), ("a", 5), ("c", 6)]
    assert md["a"] == 5
    md.update({"b": 7})
    assert md.getlist("b") == [7]
    md.update(MultiDict([("z", 0)]))
    assert md["z"] == 0


# ============================================================================ QueryParams


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("a=1&b=2", [("a", "1"), ("b", "2")]),
        ("a=1&a=2", [("a", "1"), ("a", "2")]),
        (b"a=1&b=2", [("a", "1"), ("b", "2")]),
        ("", []),
        ("a", [("a", "")]),
        ("a=&b", [("a", ""), ("b", "")]),
        ("=x", [("", "x")]),
        ("a=b=c", [("a", "b=c")]),
        ("a+b=c+d", [("a b", "c d")]),
        ("a=%20%26%3D", [("a", " &=")]),
        ("a=%zz&b=%4", [("a", "%zz"), ("b", "%4")]),  # bad escapes kept as they are
        ("a=%C3%A9", [("a", "\u00e9")]),
        ("a=%FF", [("a", "\ufffd")]),  # invalid UTF-8 is replaced, not an error
        (b"a=\xc3\xa9", [("a", "\u00e9")]),  # raw UTF-8 bytes decode as UTF-8
        (b"a=\xff", [("a", "\ufffd")]),
        ("a=1;b=2", [("a", "1;b=2")]),  # only & separates
        ("&&a=1&&", [("a", "1")]),
        ({"a": 1, "b": True}, [("a", "1"), ("b", "True")]),
        ([("a", 1), ("a", 2)], [("a", "1"), ("a", "2")]),
        (ImmutableMultiDict([("x", "y")]), [("x", "y")]),
    ],
)
def test_query_params_parsing(source: Any, expected: list[tuple[str, str]]) -> None:
    assert QueryParams(source).multi_items() == expected


def test_query_params_kwargs_and_types() -> None:
    params = QueryParams("a=1", b=2)
    assert params.multi_items() == [("a", "1"), ("b", "2")]
    assert params["b"] == "2"
    assert list(params.values()) == ["1", "2"]
    assert QueryParams(c=3).multi_items() == [("c", "3")]
    assert QueryParams().multi_items() == []


@pytest.mark.parametrize(
    ("source", "text"),
    [
        ("a=1&b=2", "a=1&b=2"),
        ("a=1&a=2", "a=1&a=2"),
        ("q=a b&r=%26", "q=a+b&r=%26"),
        ("x=%zz", "x=%25zz"),
        ("a", "a="),
        ({"k\u00e9y": "v\u00e4l"}, "k%C3%A9y=v%C3%A4l"),
    ],
)
def test_query_params_str(source: Any, text: str) -> None:
    params = QueryParams(source)
    assert str(params) == text
    assert repr(params) == f"QueryParams({text!r})"
    assert QueryParams(str(params)) == params


@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [
        ("a=1&b=2", "b=2&a=1", True),
        ("a=1&a=2", "a=2&a=1", False),
        ("a=1&a=2", "a=1&a=2", True),
        ("a=1", "a=1&a=1", False),
        ("a=1&b=", "b&a=1", True),
    ],
)
def test_query_params_equality(left: str, right: str, equal: bool) -> None:
    assert (QueryParams(left) == QueryParams(right)) is equal


_QUERY_KEY_VALUE = st.text(alphabet=st.characters(codec="utf-8"), max_size=8)


@given(st.lists(st.tuples(_QUERY_KEY_VALUE, _QUERY_KEY_VALUE), max_size=8))
def test_query_params_round_trip(pairs: list[tuple[str, str]]) -> None:
    params = QueryParams(pairs)
    reparsed = QueryParams(str(params))
    assert reparsed.multi_items() == pairs


@given(st.binary(max_size=50))
def test_query_params_never_raise_on_bytes(raw: bytes) -> None:
    params = QueryParams(raw)
    assert QueryParams(str(params)) == params


# ============================================================================ small values


def test_state_attributes_and_items() -> None:
    state = State()
    state.db = "conn"
    assert state.db == "conn"
    assert state["db"] == "conn"
    state["cache"] = 1
    assert state.cache == 1
    assert "cache" in state
    assert len(state) == 2
    assert list(state) == ["db", "cache"]
    assert state._state == {"db": "conn", "cache": 1}
    del state.db
    del state["cache"]
    assert len(state) == 0
    assert repr(State({"a": 1})) == "State({'a': 1})"


def test_state_wraps_the_given_dict() -> None:
    backing: dict[str, Any] = {"a": 1}
    state = State(backing)
    state.b = 2
    assert backing == {"a": 1, "b": 2}
    assert State()._state == {}


def test_state_missing_attribute_names_it() -> None:
    state = State()
    with pytest.raises(AttributeError, match="'State' object has no attribute 'missing'"):
        state.missing  # noqa: B018
    with pytest.raises(AttributeError, match="'missing'"):
        del state.missing
    with pytest.raises(KeyError):
        state["missing"]
    assert getattr(state, "missing", "d") == "d"
    assert not hasattr(state, "missing")


def test_state_survives_copy_protocols() -> None:
    import copy

    state = State({"a": 1})
    clone = copy.copy(state)
    assert clone.a == 1
    assert pickle.loads(pickle.dumps(state)).a == 1


def test_address() -> None:
    address = Address("127.0.0.1", 8000)
    assert address.host == "127.0.0.1"
    assert address.port == 8000
    host, port = address
    assert (host, port) == ("127.0.0.1", 8000)
    assert address == ("127.0.0.1", 8000)


@pytest.mark.parametrize(("value", "truthy"), [("hunter2", True), ("", False)])
def test_secret(value: str, truthy: bool) -> None:
    secret = Secret(value)
    assert repr(secret) == "Secret('**********')"
    assert str(secret) == value
    assert bool(secret) is truthy
    assert value not in repr(secret) or not value


@pytest.mark.parametrize(
    ("value", "items"),
    [
        ("a, b, c", ["a", "b", "c"]),
        ("a,b,c", ["a", "b", "c"]),
        ("single", ["single"]),
        ("", []),
        ("'a, b', c", ["a, b", "c"]),
        ('"x,y",z', ["x,y", "z"]),
        ("  spaced  ,  out ", ["spaced", "out"]),
        ("a,,b", ["a", "b"]),
        ("http://a.com, https://b.com:8000", ["http://a.com", "https://b.com:8000"]),
        ("#fff, a#b", ["#fff", "a#b"]),  # `#` is data, not a comment
        (r"a\,b, c", ["a,b", "c"]),
        (["x", "y"], ["x", "y"]),
        (("t",), ["t"]),
    ],
)
def test_comma_separated_strings(value: Any, items: list[str]) -> None:
    css = CommaSeparatedStrings(value)
    assert list(css) == items
    assert len(css) == len(items)
    if items:
        assert css[0] == items[0]
        assert css[-1] == items[-1]
        assert css[:1] == items[:1]


def test_comma_separated_strings_text_forms() -> None:
    css = CommaSeparatedStrings("a, 'b c'")
    assert repr(css) == "CommaSeparatedStrings(['a', 'b c'])"
    assert str(css) == "'a', 'b c'"
    assert "b c" in css


def test_comma_separated_strings_unterminated_quote() -> None:
    with pytest.raises(ValueError, match="quotation"):
        CommaSeparatedStrings("'open, b")


# ============================================================================ UploadFile


def _spooled() -> Any:
    return tempfile.SpooledTemporaryFile(max_size=MAX_SPOOL_SIZE)


@pytest.fixture
def thread_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every operation UploadFile sends to a worker thread."""
    calls: list[str] = []

    async def recording(func: Any, *args: Any) -> Any:
        calls.append(func.__name__)
        return await run_sync(func, *args)

    monkeypatch.setattr("stellate.datastructures.run_sync", recording)
    return calls


def test_max_spool_size_is_one_mebibyte() -> None:
    assert MAX_SPOOL_SIZE == 1024 * 1024


@pytest.mark.anyio
async def test_upload_in_memory_runs_inline(anyio_backend: str, thread_calls: list[str]) -> None:
    upload = UploadFile(_spooled(), size=0, filename="a.txt")
    await upload.write(b"hello ")
    await upload.write(b"world")
    assert upload.size == 11
    await upload.seek(0)
    assert await upload.read(5) == b"hello"
    assert await upload.read() == b" world"
    await upload.close()
    assert upload.file.closed
    assert thread_calls == []


@pytest.mark.anyio
async def test_upload_rolls_over_to_disk_in_a_thread(
    anyio_backend: str, thread_calls: list[str]
) -> None:
    upload = UploadFile(_spooled(), size=0)
    chunk = b"x" * (MAX_SPOOL_SIZE // 2)
    await upload.write(chunk)
    await upload.write(chunk)  # exactly MAX_SPOOL_SIZE: still in memory
    assert cast(Any, upload.file)._rolled is False
    assert thread_calls == []

    await upload.write(b"!")  # this write rolls over, so it happens in a thread
    assert cast(Any, upload.file)._rolled is True
    assert thread_calls == ["write"]
    assert upload.size == MAX_SPOOL_SIZE + 1

    await upload.seek(MAX_SPOOL_SIZE - 1)
    assert await upload.read() == b"x!"
    await upload.close()
    assert upload.file.closed
    assert thread_calls == ["write", "seek", "read", "close"]


@pytest.mark.anyio
async def test_upload_single_big_write_goes_to_a_thread(
    anyio_backend: str, thread_calls: list[str]
) -> None:
    upload = UploadFile(_spooled())
    await upload.write(b"y" * (MAX_SPOOL_SIZE + 10))
    assert thread_calls == ["write"]
    assert upload.size is None  # unknown size stays unknown
    await upload.seek(0)
    assert len(await upload.read()) == MAX_SPOOL_SIZE + 10
    await upload.close()


@pytest.mark.anyio
async def test_upload_unbounded_spool_stays_in_memory(
    anyio_backend: str, thread_calls: list[str]
) -> None:
    with tempfile.SpooledTemporaryFile(max_size=0) as spool:
        upload = UploadFile(cast(BinaryIO, spool))
        await upload.write(b"z" * 1000)
        await upload.close()
    assert thread_calls == []


@pytest.mark.anyio
async def test_upload_bytesio_inline(anyio_backend: str, thread_calls: list[str]) -> None:
    upload = UploadFile(io.BytesIO(b"data"), size=4)
    assert await upload.read() == b"data"
    await upload.close()
    assert thread_calls == []


@pytest.mark.anyio
async def test_upload_real_file_uses_threads(
    anyio_backend: str, thread_calls: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"on disk")
    with path.open("rb") as handle:
        upload = UploadFile(handle, size=7)
        assert await upload.read(2) == b"on"
        await upload.seek(0)
        assert await upload.read() == b"on disk"
        await upload.close()
    assert thread_calls == ["read", "seek", "read", "close"]


def test_upload_attributes() -> None:
    headers = Headers({"content-type": "image/png", "content-disposition": "form-data"})
    upload = UploadFile(io.BytesIO(), size=3, filename="pic.png", headers=headers)
    assert upload.filename == "pic.png"
    assert upload.size == 3
    assert upload.content_type == "image/png"
    assert upload.headers is headers
    assert repr(upload).startswith("UploadFile(filename='pic.png', size=3, headers=Headers(")

    bare = UploadFile(io.BytesIO())
    assert bare.content_type is None
    assert bare.filename is None
    assert bare.size is None
    assert bare.headers == Headers()


# ============================================================================ FormData


def test_form_data_is_a_multidict() -> None:
    upload = UploadFile(io.BytesIO(b""), filename="f")
    form = FormData([("a", "1"), ("f", upload), ("a", "2")])
    assert form["a"] == "2"
    assert form.getlist("a") == ["1", "2"]
    assert form["f"] is upload
    assert FormData({"x": "y"}, z="w").multi_items() == [("x", "y"), ("z", "w")]
    assert FormData(form) == form
    assert isinstance(form, ImmutableMultiDict)


@pytest.mark.anyio
async def test_form_data_close_closes_every_upload(anyio_backend: str) -> None:
    files = [io.BytesIO(b"1"), io.BytesIO(b"2"), _spooled()]
    form = FormData(
        [
            ("a", UploadFile(files[0])),
            ("s", "text"),
            ("a", UploadFile(files[1])),
            ("b", UploadFile(files[2])),
        ]
    )
    await form.close()
    assert all(file.closed for file in files)


class _SlowClosingUpload(UploadFile):
    async def close(self) -> None:
        await anyio.lowlevel.checkpoint()  # where a cancellation would land, unshielded
        await super().close()


@pytest.mark.parametrize("kind", ["in memory", "on disk", "own close"])
@pytest.mark.anyio
async def test_form_data_close_in_a_cancelled_scope_still_closes_every_upload(
    anyio_backend: str, thread_calls: list[str], kind: str
) -> None:
    file = _spooled()
    if kind == "on disk":
        file.write(b"x")
        file.rollover()
    upload = (_SlowClosingUpload if kind == "own close" else UploadFile)(file)
    form = FormData([("a", upload), ("b", UploadFile(io.BytesIO(b"2")))])
    with anyio.CancelScope() as scope:
        scope.cancel()
        await form.close()
    assert file.closed
    # Closing a file on disk takes a worker thread; one in memory is closed at once.
    assert thread_calls == (["close"] if kind == "on disk" else [])


class _FailingFile(io.BytesIO):
    def close(self) -> None:
        already_closed = self.closed
        super().close()
        if not already_closed:
            raise OSError("disk on fire")


@pytest.mark.anyio
async def test_form_data_close_continues_after_a_failure(anyio_backend: str) -> None:
    failing = _FailingFile()
    later = io.BytesIO()
    form = FormData([("a", UploadFile(failing)), ("b", UploadFile(later))])
    with pytest.raises(OSError, match="disk on fire"):
        await form.close()
    assert later.closed
