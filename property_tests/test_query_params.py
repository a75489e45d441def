"""QueryParams: parsing and encoding round-trip; malformed query strings never raise."""

from __future__ import annotations

from urllib.parse import parse_qsl

from hypothesis import given

from stellate.datastructures import QueryParams
from stellate.testing.strategies import query_strings, urlencoded_bodies

Pairs = tuple[bytes, list[tuple[str, str]]]


@given(urlencoded_bodies())
def test_parse_gives_the_encoded_pairs(case: Pairs) -> None:
    body, pairs = case
    params = QueryParams(body.decode("ascii"))
    assert params.multi_items() == pairs
    assert QueryParams(body) == params
    for key in {k for k, _ in pairs}:
        assert params.getlist(key) == [v for k, v in pairs if k == key]
        assert params[key] == [v for k, v in pairs if k == key][-1]


@given(urlencoded_bodies())
def test_encode_then_parse_round_trip(case: Pairs) -> None:
    _body, pairs = case
    params = QueryParams(pairs)
    assert QueryParams(str(params)).multi_items() == pairs
    assert parse_qsl(str(params), keep_blank_values=True) == pairs


@given(query_strings())
def test_malformed_query_strings_parse_leniently(query: str) -> None:
    params = QueryParams(query)
    assert params.multi_items() == parse_qsl(query, keep_blank_values=True)
    assert QueryParams(str(params)) == params
