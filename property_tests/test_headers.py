"""Headers and MutableHeaders against a plain list model, with raw ASGI header lists."""

from __future__ import annotations

import string
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from stellate.datastructures import Headers, MutableHeaders
from stellate.testing.strategies import header_lists

RawHeaders = list[tuple[bytes, bytes]]


def _latin1(raw: bytes) -> str:
    return raw.decode("latin-1")


def _lookup_key(name: bytes) -> str | None:
    """`name` with its ASCII letters upper-cased, or None if str.lower() can't map it back.

    HTTP field names are ASCII tokens; a raw name with non-ASCII bytes (which the header
    strategies deliberately include) has no case-insensitive spelling to test.
    """
    key = _latin1(name.upper())
    if key.lower() != _latin1(name):
        return None
    return key


@given(header_lists())
def test_raw_round_trip(raw: RawHeaders) -> None:
    headers = Headers(raw=raw)
    assert headers.raw == raw
    assert len(headers) == len(raw)
    assert headers.keys() == [_latin1(name) for name, _ in raw]
    assert headers.values() == [_latin1(value) for _, value in raw]
    assert headers.items() == [(_latin1(n), _latin1(v)) for n, v in raw]
    assert Headers(raw=raw) == headers
    assert headers.mutablecopy().raw == raw


@given(header_lists())
def test_scope_and_raw_agree(raw: RawHeaders) -> None:
    assert Headers(scope={"type": "http", "headers": raw}).raw == raw


@given(header_lists())
def test_case_insensitive_lookup(raw: RawHeaders) -> None:
    headers = Headers(raw=raw)
    for name, _ in raw:
        key = _lookup_key(name)
        if key is None:
            continue
        expected = [_latin1(value) for other, value in raw if other == name]
        assert key in headers
        assert headers[key] == expected[0]
        assert headers.get(key) == expected[0]
        assert headers.getlist(key) == expected
        assert headers.getlist(key.lower()) == expected


@given(header_lists(), st.text(st.sampled_from(string.ascii_letters + "-"), min_size=1))
def test_missing_names(raw: RawHeaders, name: str) -> None:
    headers = Headers(raw=raw)
    present = any(other == name.lower().encode() for other, _ in raw)
    assert (name in headers) == present
    if not present:
        assert headers.get(name) is None
        assert headers.getlist(name) == []


NAMES = ["Content-Type", "content-type", "X-Custom", "x-custom", "SET-COOKIE", "set-cookie", "Vary"]
header_values = st.text(st.sampled_from(string.printable[:95]), max_size=12)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("set"), st.sampled_from(NAMES), header_values),
        st.tuples(st.just("append"), st.sampled_from(NAMES), header_values),
        st.tuples(st.just("setdefault"), st.sampled_from(NAMES), header_values),
        st.tuples(st.just("delete"), st.sampled_from(NAMES), st.just("")),
        st.tuples(st.just("update"), st.sampled_from(NAMES), header_values),
    ),
    max_size=12,
)


def _apply(model: list[tuple[str, str]], op: str, name: str, value: str) -> Any:
    key = name.lower()
    positions = [index for index, (other, _) in enumerate(model) if other == key]
    if op in ("set", "update"):
        if positions:
            model[positions[0]] = (key, value)
            for index in reversed(positions[1:]):
                del model[index]
        else:
            model.append((key, value))
    elif op == "append":
        model.append((key, value))
    elif op == "setdefault":
        if positions:
            return model[positions[0]][1]
        model.append((key, value))
        return value
    else:
        for index in reversed(positions):
            del model[index]
    return None


@given(
    header_lists(max_size=4).map(lambda raw: [pair for pair in raw if pair[0].isascii()]),
    operations,
)
def test_mutable_headers_against_a_model(raw: RawHeaders, ops: list[tuple[str, str, str]]) -> None:
    headers = MutableHeaders(raw=list(raw))
    model = [(_latin1(n), _latin1(v)) for n, v in raw]
    for op, name, value in ops:
        expected = _apply(model, op, name, value)
        if op == "set":
            headers[name] = value
        elif op == "update":
            headers.update({name: value})
        elif op == "append":
            headers.append(name, value)
        elif op == "setdefault":
            assert headers.setdefault(name, value) == expected
        elif name in headers:
            del headers[name]
        else:
            continue
        assert headers.raw == [(n.encode("latin-1"), v.encode("latin-1")) for n, v in model]
    for name in NAMES:
        assert headers.getlist(name) == [v for n, v in model if n == name.lower()]


@given(st.dictionaries(st.sampled_from([*NAMES[::2], "Host"]), header_values))
def test_from_mapping_lowercases_names(mapping: dict[str, str]) -> None:
    headers = Headers(headers=mapping)
    assert headers.raw == [(k.lower().encode(), v.encode()) for k, v in mapping.items()]
    for key, value in mapping.items():
        assert headers[key.upper()] == value
