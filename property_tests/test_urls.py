"""URL: parsing and printing round-trip, and every edit changes exactly what it names."""

from __future__ import annotations

import string
from urllib.parse import parse_qsl, urlsplit

from hypothesis import given
from hypothesis import strategies as st

from stellate.datastructures import URL
from stellate.testing.strategies import paths, query_strings, urls

names = st.text(st.sampled_from(string.ascii_letters + "_"), min_size=1, max_size=6)
values = st.text(max_size=10).filter(lambda text: all(not 0xD800 <= ord(c) <= 0xDFFF for c in text))
dns_names = st.text(st.sampled_from(string.ascii_lowercase), min_size=1, max_size=12)


@given(urls())
def test_parse_print_round_trip(url: str) -> None:
    parsed = URL(url)
    assert str(parsed) == url
    assert URL(str(parsed)) == parsed


@given(urls())
def test_components_match_urlsplit(url: str) -> None:
    parsed, expected = URL(url), urlsplit(url)
    assert parsed.scheme == expected.scheme
    assert parsed.netloc == expected.netloc
    assert parsed.path == expected.path
    assert parsed.query == expected.query
    assert parsed.fragment == expected.fragment
    assert parsed.hostname == expected.hostname
    assert parsed.port == expected.port
    assert parsed.username == expected.username
    assert parsed.password == expected.password
    assert parsed.is_secure == (expected.scheme in ("https", "wss"))


@given(urls(), st.sampled_from(["http", "https", "ws", "wss"]))
def test_replace_scheme(url: str, scheme: str) -> None:
    edited = URL(url).replace(scheme=scheme)
    assert str(edited) == scheme + url[url.index("://") :]


@given(urls(), paths())
def test_replace_path_keeps_the_rest(url: str, path: str) -> None:
    original, edited = URL(url), URL(url).replace(path=path)
    assert edited.path == path
    for name in ("scheme", "netloc", "query", "fragment"):
        assert getattr(edited, name) == getattr(original, name)


@given(urls(), query_strings(well_formed=True))
def test_replace_query_keeps_the_rest(url: str, query: str) -> None:
    original, edited = URL(url), URL(url).replace(query=query)
    assert edited.query == query
    for name in ("scheme", "netloc", "path", "fragment"):
        assert getattr(edited, name) == getattr(original, name)


@given(urls(), st.text(st.sampled_from(string.ascii_letters + "-_"), min_size=1))
def test_replace_fragment_keeps_the_rest(url: str, fragment: str) -> None:
    original, edited = URL(url), URL(url).replace(fragment=fragment)
    assert edited.fragment == fragment
    for name in ("scheme", "netloc", "path", "query"):
        assert getattr(edited, name) == getattr(original, name)


@given(urls(), st.integers(1, 65535))
def test_replace_port_keeps_host_and_user(url: str, port: int) -> None:
    original, edited = URL(url), URL(url).replace(port=port)
    assert edited.port == port
    assert edited.hostname == original.hostname
    assert edited.username == original.username
    assert edited.password == original.password
    assert edited.path == original.path
    assert edited.query == original.query


@given(urls(), dns_names)
def test_replace_hostname_keeps_port_and_user(url: str, hostname: str) -> None:
    original, edited = URL(url), URL(url).replace(hostname=hostname)
    assert edited.hostname == hostname
    assert edited.port == original.port
    assert edited.username == original.username
    assert edited.password == original.password
    assert edited.path == original.path


@given(urls(), dns_names, st.one_of(st.none(), dns_names))
def test_replace_userinfo_keeps_host_and_port(url: str, user: str, password: str | None) -> None:
    original = URL(url)
    edited = original.replace(username=user, password=password)
    assert edited.username == user
    assert edited.password == (password if password else None)
    assert edited.hostname == original.hostname
    assert edited.port == original.port


@given(urls(), st.dictionaries(names, values, max_size=4))
def test_include_query_params(url: str, params: dict[str, str]) -> None:
    original = URL(url)
    before = parse_qsl(original.query, keep_blank_values=True)
    edited = original.include_query_params(**params)
    after = parse_qsl(edited.query, keep_blank_values=True)
    for key, value in params.items():
        assert [v for k, v in after if k == key] == [value]
    assert [(k, v) for k, v in after if k not in params] == [
        (k, v) for k, v in before if k not in params
    ]
    assert (edited.scheme, edited.netloc, edited.path, edited.fragment) == (
        original.scheme,
        original.netloc,
        original.path,
        original.fragment,
    )


@given(urls(), st.dictionaries(names, values, max_size=4))
def test_replace_query_params(url: str, params: dict[str, str]) -> None:
    edited = URL(url).replace_query_params(**params)
    assert parse_qsl(edited.query, keep_blank_values=True) == list(params.items())
    assert edited.path == URL(url).path


@given(urls(), st.lists(st.sampled_from(["a", "b", "page", "q", "x", "missing"]), max_size=3))
def test_remove_query_params(url: str, keys: list[str]) -> None:
    original = URL(url)
    before = parse_qsl(original.query, keep_blank_values=True)
    edited = original.remove_query_params(keys)
    after = parse_qsl(edited.query, keep_blank_values=True)
    assert after == [(k, v) for k, v in before if k not in keys]
    assert edited.fragment == original.fragment


@given(urls(), st.sampled_from(["a", "page"]))
def test_remove_query_params_accepts_a_single_key(url: str, key: str) -> None:
    after = parse_qsl(URL(url).remove_query_params(key).query, keep_blank_values=True)
    assert key not in {k for k, _ in after}
