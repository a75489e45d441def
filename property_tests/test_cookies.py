"""The Cookie header parser never raises, and reads well-formed headers exactly."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from stellate.requests import HTTPConnection, cookie_parser
from stellate.testing.strategies import cookie_headers

_OCTETS = "".join(c for c in string.printable[:94] if c not in '",;\\=')
_NAMES = st.text(
    st.sampled_from(string.ascii_letters + string.digits + "-_!#$&'*+.^`|~"), min_size=1
)


@given(cookie_headers())
def test_cookie_parser_never_raises(header: str) -> None:
    cookies = cookie_parser(header)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in cookies.items())


@given(cookie_headers())
def test_request_cookies_never_raise(header: str) -> None:
    scope = {"type": "http", "headers": [(b"cookie", header.encode("latin-1"))]}
    assert HTTPConnection(scope).cookies == cookie_parser(header)


@given(st.dictionaries(_NAMES, st.text(st.sampled_from(_OCTETS), max_size=10), max_size=6))
def test_well_formed_header_is_read_exactly(cookies: dict[str, str]) -> None:
    header = "; ".join(f"{name}={value}" for name, value in cookies.items())
    assert cookie_parser(header) == cookies
