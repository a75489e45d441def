"""Path convertors: to_string/convert round-trip, and url_path_for output matches its route."""

from __future__ import annotations

import math
import string
import uuid
from typing import Any
from urllib.parse import unquote

from hypothesis import given
from hypothesis import strategies as st

from stellate.convertors import CONVERTOR_TYPES
from stellate.routing import Match, Mount, Route, Router

# No "%": a reversed path reaches the app percent-decoded (by the server), and a value
# holding "%41" would come back as "A", with stellate as with Starlette.
text_no_slash = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="/%"), min_size=1, max_size=20
)
any_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="%"), max_size=30)
# Floats that survive the convertor's fixed 20-decimal rendering exactly: zero, and
# non-negative values large enough for 20 decimals to carry 17 significant digits.
floats = st.one_of(
    st.just(0.0),
    st.floats(min_value=1e-3, max_value=1e15, allow_nan=False, allow_infinity=False),
    st.integers(0, 10**15).map(float),
)

VALUES: dict[str, st.SearchStrategy[Any]] = {
    "str": text_no_slash,
    "path": any_text,
    "int": st.integers(0, 10**30),
    "float": floats,
    "uuid": st.uuids(),
}


def test_every_builtin_convertor_has_a_strategy() -> None:
    assert set(CONVERTOR_TYPES) >= set(VALUES)


async def endpoint(request: Any) -> Any:
    raise NotImplementedError


def _scope(path: str) -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": path, "root_path": "", "headers": []}


def _served(path: str) -> str:
    """The ``scope["path"]`` a server gives the app for a request to ``path``."""
    return unquote(path)


def _check(kind: str, value: Any) -> None:
    convertor = CONVERTOR_TYPES[kind]
    assert convertor.convert(convertor.to_string(value)) == value
    route = Route(f"/items/{{value:{kind}}}", endpoint, name="item")
    path = route.url_path_for("item", value=value)
    assert _served(path) == "/items/" + convertor.to_string(value)
    assert not path.startswith("//")  # never scheme-relative
    assert "\\" not in path
    match, child = route.matches(_scope(_served(path)))
    assert match is Match.FULL
    assert child["path_params"] == {"value": value}


@given(text_no_slash)
def test_str_round_trip(value: str) -> None:
    _check("str", value)


@given(any_text)
def test_path_round_trip(value: str) -> None:
    _check("path", value)


@given(st.integers(0, 10**30))
def test_int_round_trip(value: int) -> None:
    _check("int", value)


@given(floats)
def test_float_round_trip(value: float) -> None:
    assert not math.isnan(value)
    _check("float", value)


@given(st.uuids())
def test_uuid_round_trip(value: uuid.UUID) -> None:
    _check("uuid", value)


@given(st.text(string.ascii_lowercase + string.digits + "-", max_size=40))
def test_uuid_route_rejects_non_uuids(text: str) -> None:
    route = Route("/u/{value:uuid}", endpoint)
    match, _ = route.matches(_scope("/u/" + text))
    try:
        uuid.UUID(text)
    except ValueError:
        assert match is Match.NONE
    else:
        assert match is Match.FULL or len(text) != 36


@given(
    st.integers(0, 10**6),
    text_no_slash,
    any_text,
    st.uuids(),
    floats,
)
def test_mounted_routes_round_trip_every_convertor(
    number: int, word: str, rest: str, ident: uuid.UUID, ratio: float
) -> None:
    inner = Route("/{ident:uuid}/{ratio:float}/{word:str}/{rest:path}", endpoint, name="leaf")
    router = Router([Mount("/m/{number:int}", routes=[inner], name="mount")])
    params = {"number": number, "word": word, "rest": rest, "ident": ident, "ratio": ratio}
    path = router.url_path_for("mount:leaf", **params)
    mount = router.routes[0]
    match, child = mount.matches(_scope(_served(path)))
    assert match is Match.FULL
    scope = {**_scope(_served(path)), **child}
    match, leaf = inner.matches(scope)
    assert match is Match.FULL
    assert leaf["path_params"] == params
