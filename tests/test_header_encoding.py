"""One header encoder: every way of setting a header refuses the same input the same way."""

from __future__ import annotations

from collections.abc import Callable
from http.cookies import CookieError

import pytest

from stellate.datastructures import MutableHeaders
from stellate.responses import Response

Setter = Callable[[str, str], None]


def via_constructor(name: str, value: str) -> None:
    Response(headers={name: value})


def via_setitem(name: str, value: str) -> None:
    Response().headers[name] = value


def via_append(name: str, value: str) -> None:
    MutableHeaders().append(name, value)


def via_setdefault(name: str, value: str) -> None:
    Response().headers.setdefault(name, value)


def via_update(name: str, value: str) -> None:
    Response().headers.update({name: value})


def via_mutable_headers_constructor(name: str, value: str) -> None:
    MutableHeaders(headers={name: value})


SETTERS = [
    via_constructor,
    via_setitem,
    via_append,
    via_setdefault,
    via_update,
    via_mutable_headers_constructor,
]


@pytest.mark.parametrize("setter", SETTERS)
@pytest.mark.parametrize("name", ["x:y", "x y", "x\ty", "x\r\ny", ":authority", ""])
def test_a_name_that_is_not_a_token_is_refused(setter: Setter, name: str) -> None:
    with pytest.raises(ValueError, match="it must be an HTTP token") as info:
        setter(name, "1")
    assert repr(name) in str(info.value)


@pytest.mark.parametrize("setter", SETTERS)
@pytest.mark.parametrize("value", ["a\r\nSet-Cookie: x=1", "a\nb", "a\rb", "a\x00b"])
def test_a_value_with_cr_lf_or_nul_is_refused(setter: Setter, value: str) -> None:
    with pytest.raises(ValueError, match=r"Invalid value for header 'x-a': CR, LF and NUL"):
        setter("x-a", value)


@pytest.mark.parametrize("setter", SETTERS)
def test_a_value_outside_latin_1_is_refused(setter: Setter) -> None:
    # UnicodeEncodeError, as Starlette raises, and a ValueError like the other refusals.
    with pytest.raises(UnicodeEncodeError, match="outside latin-1"):
        setter("x-a", "snow \u2603")


@pytest.mark.parametrize("setter", SETTERS)
def test_valid_headers_are_accepted_lower_cased(setter: Setter) -> None:
    setter("X-Custom_Header.1~", "a value; with, punctuation\t and tabs")


def test_every_setter_leaves_the_same_bytes() -> None:
    response = Response(headers={"X-A": "1"})
    response.headers["X-B"] = "2"
    response.headers.append("X-C", "3")
    response.headers.setdefault("X-D", "4")
    response.headers.update({"X-E": "5"})
    assert [item for item in response.raw_headers if item[0].startswith(b"x-")] == [
        (b"x-a", b"1"),
        (b"x-b", b"2"),
        (b"x-c", b"3"),
        (b"x-d", b"4"),
        (b"x-e", b"5"),
    ]


@pytest.mark.parametrize("key", ["a\r\nb", "a b", "a;b", "a\x00b"])
def test_set_cookie_refuses_a_key_that_would_split_the_header(key: str) -> None:
    # The cookie is written by http.cookies, as in Starlette, so its error is Starlette's
    # (CookieError); nothing reaches the headers.
    response = Response()
    with pytest.raises(CookieError, match="Illegal key"):
        response.set_cookie(key, "v")
    assert not any(name == b"set-cookie" for name, _ in response.raw_headers)
