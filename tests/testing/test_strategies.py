"""The strategies generate what their docstrings promise, adversarial cases included."""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote, unquote_to_bytes, urlsplit, urlunsplit

import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisWarning

from stellate._urls import parse_host
from stellate.testing import strategies
from stellate.testing._lint_rules import check_scope
from stellate.testing.lint import LintMiddleware
from stellate.testing.strategies import (
    MultipartPart,
    chunkings,
    cookie_headers,
    header_lists,
    host_headers,
    http_scopes,
    multipart_bodies,
    paths,
    query_strings,
    range_headers,
    urlencoded_bodies,
    urls,
    websocket_scopes,
)
from stellate.types import Message

# Generation only: find() would otherwise spend most of its time shrinking the example.
FIND = settings(
    max_examples=2000, database=None, derandomize=True, phases=[Phase.generate], deadline=None
)


def exists(strategy: st.SearchStrategy[Any], condition: Callable[[Any], bool]) -> Any:
    """Hypothesis can produce an example satisfying `condition` (else find() raises)."""
    with warnings.catch_warnings():
        # find() reports the example it found like a failure, building its repr; for a
        # large generated scope that repr draws Hypothesis's "overly large repr" warning,
        # which says nothing about the strategy under test.
        warnings.filterwarnings("ignore", "Generating overly large repr", HypothesisWarning)
        return find(strategy, condition, settings=FIND)


def test_import_without_hypothesis_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hypothesis", None)
    monkeypatch.delitem(sys.modules, "stellate.testing.strategies")
    with pytest.raises(ImportError, match=r"stellate\[test\]"):
        importlib.import_module("stellate.testing.strategies")
    monkeypatch.undo()
    assert importlib.import_module("stellate.testing.strategies") is strategies


# --- paths, queries, URLs ---------------------------------------------------------------------


@given(paths())
def test_paths_are_wire_form(path: str) -> None:
    assert path.startswith("/")
    assert not path.startswith("//")
    assert "?" not in path
    assert "#" not in path
    path.encode("ascii")
    assert " " not in path


def test_paths_include_adversarial_segments() -> None:
    exists(paths(), lambda p: "%2F" in p)
    exists(paths(), lambda p: "/../" in p or p.endswith("/.."))
    exists(paths(), lambda p: p != "/" and p.endswith("/"))
    exists(paths(), lambda p: "//" in p)
    exists(paths(), lambda p: _invalid_utf8(unquote_to_bytes(p)))


def _invalid_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@given(query_strings(well_formed=True))
def test_well_formed_query_strings_reencode(query: str) -> None:
    from urllib.parse import urlencode

    pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=False)
    assert urlencode(pairs) == query


@given(query_strings())
def test_query_strings_are_ascii_without_fragment(query: str) -> None:
    query.encode("ascii")
    assert "#" not in query


def test_query_strings_include_malformed_pieces() -> None:
    exists(query_strings(), lambda q: "%zz" in q or "%4&" in q or q.endswith("%4"))
    exists(query_strings(), lambda q: "&&" in q)
    exists(query_strings(), lambda q: _invalid_utf8(unquote_to_bytes(q)))
    exists(query_strings(well_formed=True), lambda q: q.count("page=") >= 2)


@given(urls())
def test_urls_round_trip_through_urlsplit(url: str) -> None:
    parts = urlsplit(url)
    assert parts.scheme in {"http", "https", "ws", "wss"}
    assert parts.hostname
    assert urlunsplit(parts) == url
    assert parts.port is None or 1 <= parts.port <= 65535


@given(urls(schemes=["https"]))
def test_urls_use_only_the_given_schemes(url: str) -> None:
    assert url.startswith("https://")


def test_urls_cover_every_component() -> None:
    exists(urls(), lambda u: urlsplit(u).username is not None)
    exists(urls(), lambda u: urlsplit(u).password is not None)
    exists(urls(), lambda u: urlsplit(u).port is not None)
    exists(urls(), lambda u: urlsplit(u).hostname.count(":") == 7)
    exists(urls(), lambda u: bool(urlsplit(u).query) and bool(urlsplit(u).fragment))


# --- headers and cookies ----------------------------------------------------------------------


@given(header_lists())
def test_header_lists_are_raw_asgi_headers(headers: list[tuple[bytes, bytes]]) -> None:
    assert isinstance(headers, list)
    for name, value in headers:
        assert isinstance(name, bytes)
        assert isinstance(value, bytes)
        assert name == name.lower()
        assert b"\r" not in value
        assert b"\n" not in value
        assert b"\x00" not in value


def test_header_lists_include_adversarial_headers() -> None:
    exists(header_lists(), lambda h: any(name == b"" for name, _ in h))
    exists(header_lists(), lambda h: any(len(name) > 200 for name, _ in h))
    exists(header_lists(), lambda h: any(len(value) > 2000 for _, value in h))
    exists(header_lists(), lambda h: any(any(b > 127 for b in name) for name, _ in h))
    exists(header_lists(), lambda h: any(any(b > 127 for b in value) for _, value in h))
    exists(header_lists(), lambda h: any(value == b"" and name for name, value in h))
    exists(header_lists(), lambda h: len({name for name, _ in h}) < len(h))
    exists(header_lists(), lambda h: any(value == b"Chunked" for _, value in h))


@given(cookie_headers())
def test_cookie_headers_fit_in_a_header(cookie: str) -> None:
    cookie.encode("latin-1")
    assert "\r" not in cookie
    assert "\n" not in cookie


def test_cookie_headers_include_odd_pairs() -> None:
    exists(cookie_headers(), lambda c: '"' in c)
    exists(cookie_headers(), lambda c: ";;" in c)
    exists(cookie_headers(), lambda c: any(ord(char) > 127 for char in c))
    exists(cookie_headers(), lambda c: any("=" not in p and p.strip() for p in c.split(";")))


# --- bodies -----------------------------------------------------------------------------------


@given(urlencoded_bodies())
def test_urlencoded_bodies_decode_to_their_fields(
    case: tuple[bytes, list[tuple[str, str]]],
) -> None:
    body, fields = case
    assert isinstance(body, bytes)
    assert parse_qsl(body.decode("ascii"), keep_blank_values=True) == fields


def test_urlencoded_bodies_repeat_names() -> None:
    exists(urlencoded_bodies(), lambda case: len({k for k, _ in case[1]}) < len(case[1]))


def _split_multipart(content_type: str, body: bytes) -> list[MultipartPart]:
    """A deliberately naive parser: fine because the boundary never occurs in the data."""
    assert content_type.startswith("multipart/form-data; boundary=")
    boundary = content_type.split("boundary=", 1)[1].encode()
    delimiter = b"--" + boundary
    assert body.endswith(delimiter + b"--\r\n")
    sections = body[: -len(b"--\r\n")].split(delimiter)
    assert sections[0] == b""
    assert sections[-1] == b""
    parts = []
    for section in sections[1:-1]:
        assert section.startswith(b"\r\n")
        assert section.endswith(b"\r\n")
        head, _, data = section[2:-2].partition(b"\r\n\r\n")
        headers = dict(line.split(b": ", 1) for line in head.split(b"\r\n"))
        disposition = headers[b"Content-Disposition"].decode("utf-8")
        params = dict(item.split("=", 1) for item in disposition.split("; ")[1:])
        content_type_ = headers.get(b"Content-Type")
        parts.append(
            MultipartPart(
                params["name"].strip('"'),
                data,
                params["filename"].strip('"') if "filename" in params else None,
                content_type_.decode() if content_type_ is not None else None,
            )
        )
    return parts


@given(multipart_bodies())
def test_multipart_bodies_encode_their_parts(case: tuple[str, bytes, list[MultipartPart]]) -> None:
    content_type, body, parts = case
    assert _split_multipart(content_type, body) == parts
    boundary = content_type.split("boundary=", 1)[1].encode()
    assert 1 <= len(boundary) <= 70 or boundary.startswith(b"stellate")
    for part in parts:
        assert boundary not in part.data


def test_multipart_bodies_include_files_and_text() -> None:
    exists(multipart_bodies(), lambda c: any(p.filename is not None for p in c[2]))
    exists(multipart_bodies(), lambda c: any(p.filename is None for p in c[2]))
    exists(multipart_bodies(), lambda c: any(p.content_type is not None for p in c[2]))
    exists(multipart_bodies(), lambda c: any(len(p.data) > 1000 for p in c[2]))
    exists(multipart_bodies(), lambda c: any(not p.filename.isascii() for p in c[2] if p.filename))
    exists(multipart_bodies(), lambda c: c[2] == [])


def test_multipart_boundary_avoids_the_data() -> None:
    parts = [MultipartPart("a", b"--stellateQ--stellateQx"), MultipartPart("b", b"stellateQxx")]
    assert strategies._unused_boundary(b"stellateQ", parts) == b"stellateQxxx"
    assert strategies._unused_boundary(b"stellateZ", parts) == b"stellateZ"


@given(st.integers(0, 5000).flatmap(lambda size: st.tuples(st.just(size), range_headers(size))))
def test_range_headers_are_ascii_text(case: tuple[int, str]) -> None:
    _size, header = case
    header.encode("ascii")


def test_range_headers_include_valid_and_invalid() -> None:
    exists(range_headers(100), lambda h: h.startswith("bytes=") and h[6:].count(",") >= 2)
    exists(range_headers(100), lambda h: h.startswith("bytes=-"))
    exists(range_headers(100), lambda h: not h.startswith("bytes="))
    exists(range_headers(100), lambda h: any(_reversed(spec) for spec in h[6:].split(",")))
    exists(range_headers(100), lambda h: any(_past_end(spec, 100) for spec in h[6:].split(",")))


def _reversed(spec: str) -> bool:
    start, _, end = spec.strip().partition("-")
    return start.isdigit() and end.isdigit() and int(start) > int(end)


def _past_end(spec: str, size: int) -> bool:
    start, _, _end = spec.strip().partition("-")
    return start.isdigit() and int(start) >= size


# --- scopes and chunkings ---------------------------------------------------------------------


@given(http_scopes())
def test_http_scopes_pass_lint(scope: dict[str, Any]) -> None:
    assert check_scope(scope) == "http"
    if scope["raw_path"] is not None:
        assert unquote(scope["raw_path"].decode("ascii"), errors="replace") == scope["path"]


@given(
    http_scopes(
        methods=st.just("POST"),
        headers=st.just([(b"x-a", b"1")]),
        root_path="/api",
        extensions={"http.response.trailers": {}},
    )
)
def test_http_scopes_options(scope: dict[str, Any]) -> None:
    assert scope["method"] == "POST"
    assert scope["headers"] == [(b"x-a", b"1")]
    assert scope["root_path"] == "/api"
    assert scope["path"].startswith("/api/")
    assert scope["raw_path"] is None or scope["raw_path"].startswith(b"/api/")
    assert scope["extensions"] == {"http.response.trailers": {}}


def test_http_scopes_include_unusual_methods() -> None:
    exists(http_scopes(), lambda s: s["method"] not in strategies._METHODS)


@given(websocket_scopes(root_path="/ws", extensions={"websocket.http.response": {}}))
def test_websocket_scopes_pass_lint(scope: dict[str, Any]) -> None:
    assert check_scope(scope) == "websocket"
    assert scope["scheme"] in {"ws", "wss"}
    assert len(set(scope["subprotocols"])) == len(scope["subprotocols"])
    assert scope["extensions"] == {"websocket.http.response": {}}
    assert scope["path"].startswith("/ws/")


@given(websocket_scopes())
def test_websocket_scopes_default_to_no_extensions(scope: dict[str, Any]) -> None:
    assert check_scope(scope) == "websocket"
    assert "extensions" not in scope
    assert "method" not in scope
    assert all(isinstance(name, str) and name for name in scope["subprotocols"])


def _reassemble(messages: list[dict[str, Any]]) -> bytes:
    return b"".join(message.get("body", b"") for message in messages)


@given(st.binary(max_size=200).flatmap(lambda body: st.tuples(st.just(body), chunkings(body))))
def test_chunkings_reassemble_to_the_body(case: tuple[bytes, list[dict[str, Any]]]) -> None:
    body, messages = case
    assert messages
    assert all(message["type"] == "http.request" for message in messages)
    assert _reassemble(messages) == body
    assert all(message["more_body"] is True for message in messages[:-1])
    assert messages[-1].get("more_body", False) is False


@given(
    st.binary(max_size=50).flatmap(
        lambda body: st.tuples(st.just(body), chunkings(body, disconnect=True))
    )
)
def test_chunkings_with_disconnect_end_early(case: tuple[bytes, list[dict[str, Any]]]) -> None:
    body, messages = case
    assert messages[-1] == {"type": "http.disconnect"}
    requests = messages[:-1]
    assert all(message["more_body"] is True for message in requests)
    assert body.startswith(_reassemble(requests))


def test_chunkings_choose_disconnect_when_asked() -> None:
    exists(chunkings(b"abc", disconnect=None), lambda m: m[-1]["type"] == "http.disconnect")
    exists(chunkings(b"abc", disconnect=None), lambda m: m[-1]["type"] == "http.request")
    exists(chunkings(b"abc"), lambda m: len(m) >= 3)
    exists(chunkings(b"abc"), lambda m: "more_body" not in m[-1])
    exists(chunkings(b"abc"), lambda m: any(m_.get("body", b"x") == b"" for m_ in m))
    exists(chunkings(b"abc"), lambda m: any("body" not in m_ for m_ in m))


@pytest.mark.anyio
@given(
    scope=http_scopes(),
    chunked=st.binary(max_size=100).flatmap(
        lambda body: st.tuples(st.just(body), chunkings(body, disconnect=None))
    ),
)
async def test_generated_conversations_pass_lint(
    scope: dict[str, Any], chunked: tuple[bytes, list[dict[str, Any]]]
) -> None:
    """Scopes and chunkings together are valid server input: an echo app under lint is happy."""
    body, messages = chunked
    queue = list(messages)
    sent: list[Message] = []

    async def echo(scope_: Any, receive: Any, send: Any) -> None:
        received = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            received += message.get("body", b"")
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200})
        # A HEAD response carries no body (the lint's http-body-not-allowed rule).
        head = scope_["method"] == "HEAD"
        await send({"type": "http.response.body", "body": b"" if head else received})

    async def receive() -> Message:
        return queue.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await LintMiddleware(echo)(scope, receive, send)
    if messages[-1]["type"] == "http.request":
        assert sent[-1]["body"] == (b"" if scope["method"] == "HEAD" else body)
    else:
        assert sent == []


@given(host_headers())
def test_host_headers_are_bytes(host: bytes) -> None:
    assert isinstance(host, bytes)


def test_host_headers_cover_valid_and_hostile_hosts() -> None:
    exists(host_headers(), lambda h: h.startswith(b"[") and parse_host(h.decode("latin-1")))
    exists(host_headers(), lambda h: h.startswith(b"[v"))
    exists(host_headers(), lambda h: h.endswith(b":000443"))
    exists(host_headers(), lambda h: h.startswith(b"[") and not parse_host(h.decode("latin-1")))
    exists(host_headers(), lambda h: b"@" in h)
    exists(host_headers(), lambda h: h == b"")
