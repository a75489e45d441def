"""Tests for stellate.convertors: each convertor's regex, convert and to_string agree."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stellate.convertors import (
    CONVERTOR_TYPES,
    Convertor,
    FloatConvertor,
    IntegerConvertor,
    PathConvertor,
    StringConvertor,
    UUIDConvertor,
    register_url_convertor,
)


def matches(convertor: Convertor[Any], text: str) -> bool:
    return re.fullmatch(convertor.regex, text) is not None


def round_trips(convertor: Convertor[Any], value: Any) -> None:
    """to_string gives text the regex accepts and convert reads back as ``value``."""
    text = convertor.to_string(value)
    assert matches(convertor, text), text
    assert convertor.convert(text) == value


def test_registry_holds_the_builtin_convertors() -> None:
    assert set(CONVERTOR_TYPES) >= {"str", "path", "int", "float", "uuid"}
    assert isinstance(CONVERTOR_TYPES["str"], StringConvertor)
    assert isinstance(CONVERTOR_TYPES["path"], PathConvertor)
    assert isinstance(CONVERTOR_TYPES["int"], IntegerConvertor)
    assert isinstance(CONVERTOR_TYPES["float"], FloatConvertor)
    assert isinstance(CONVERTOR_TYPES["uuid"], UUIDConvertor)


@pytest.fixture
def restore_registry() -> Iterator[None]:
    saved = dict(CONVERTOR_TYPES)
    yield
    CONVERTOR_TYPES.clear()
    CONVERTOR_TYPES.update(saved)


class _HexConvertor(Convertor[int]):
    regex = "[0-9a-f]+"

    def convert(self, value: str) -> int:
        return int(value, 16)

    def to_string(self, value: int) -> str:
        return format(value, "x")


@pytest.mark.usefixtures("restore_registry")
def test_register_url_convertor() -> None:
    hex_convertor = _HexConvertor()
    register_url_convertor("hex", hex_convertor)
    assert CONVERTOR_TYPES["hex"] is hex_convertor
    round_trips(hex_convertor, 255)
    replacement = _HexConvertor()
    register_url_convertor("hex", replacement)  # re-registering replaces
    assert CONVERTOR_TYPES["hex"] is replacement


def test_base_convertor_is_abstract() -> None:
    base: Convertor[Any] = Convertor()
    with pytest.raises(NotImplementedError):
        base.convert("x")
    with pytest.raises(NotImplementedError):
        base.to_string("x")


# ---------------------------------------------------------------------------- regexes


@pytest.mark.parametrize(
    ("key", "text", "accepted"),
    [
        ("str", "abc", True),
        ("str", "a b%20c", True),
        ("str", "", False),
        ("str", "a/b", False),
        ("path", "", True),
        ("path", "a/b/c.txt", True),
        ("path", "/leading", True),
        ("path", "a\nb/\r\n", True),
        ("int", "0", True),
        ("int", "0042", True),
        ("int", "-1", False),
        ("int", "+1", False),
        ("int", "1.0", False),
        ("int", "", False),
        ("int", "\u0661", False),  # Arabic-Indic digit: int() would take it, the route won't
        ("float", "1", True),
        ("float", "1.5", True),
        ("float", "0.001", True),
        ("float", "1.", False),
        ("float", ".5", False),
        ("float", "-1.5", False),
        ("float", "1e5", False),
        ("float", "nan", False),
        ("float", "inf", False),
        ("uuid", "12345678-1234-5678-1234-567812345678", True),
        ("uuid", "ABCDEF01-1234-5678-90AB-CDEF01234567", True),
        # Each hyphen is optional, as in Starlette.
        ("uuid", "12345678123456781234567812345678", True),
        ("uuid", "3F2A9C4E1B7D4E8FA0C2D5E6F7A8B9C0", True),
        ("uuid", "12345678-12345678-1234-567812345678", True),
        ("uuid", "1234567812345678123456781234567", False),
        ("uuid", "12345678--1234-5678-1234-567812345678", False),
        ("uuid", "12345678-1234-5678-1234-56781234567", False),
        ("uuid", "g2345678-1234-5678-1234-567812345678", False),
        ("uuid", "{12345678-1234-5678-1234-567812345678}", False),
    ],
)
def test_regex(key: str, text: str, accepted: bool) -> None:
    assert matches(CONVERTOR_TYPES[key], text) is accepted


# ---------------------------------------------------------------------------- convert


@pytest.mark.parametrize(
    ("key", "text", "value"),
    [
        ("str", "abc", "abc"),
        ("path", "a/b", "a/b"),
        ("int", "0042", 42),
        ("int", "0", 0),
        ("float", "1.5", 1.5),
        ("float", "2", 2.0),
        (
            "uuid",
            "ABCDEF01-1234-5678-90AB-CDEF01234567",
            uuid.UUID("abcdef01-1234-5678-90ab-cdef01234567"),
        ),
    ],
)
def test_convert(key: str, text: str, value: Any) -> None:
    converted = CONVERTOR_TYPES[key].convert(text)
    assert converted == value
    assert type(converted) is type(value)


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "9" * 400])
def test_float_convert_refuses_non_finite(text: str) -> None:
    with pytest.raises(ValueError, match="finite"):
        FloatConvertor().convert(text)


def test_int_convert_refuses_absurd_lengths() -> None:
    # Python refuses to parse more than 4300 digits; that is a ValueError, not a crash.
    with pytest.raises(ValueError):
        IntegerConvertor().convert("9" * 5000)


# ---------------------------------------------------------------------------- to_string


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        ("str", "abc", "abc"),
        ("str", 12, "12"),
        ("path", "a/b/", "a/b/"),
        ("path", "", ""),
        ("int", 42, "42"),
        ("int", 0, "0"),
        ("int", "7", "7"),
        ("int", True, "1"),
        ("float", 1.0, "1"),
        ("float", 2, "2"),
        # Starlette's spelling: twenty decimals, trailing zeros dropped.
        ("float", 1.5, "1.5"),
        ("float", 0.1, "0.10000000000000000555"),
        ("float", 0.0, "0"),
        ("float", 1e-05, "0.00001"),
        ("float", -0.0, "-0"),  # -0.0 >= 0, so allowed; Starlette writes it so
        ("float", 1e16, "10000000000000000"),
        ("float", 123.456, "123.45600000000000306954"),
        (
            "uuid",
            uuid.UUID("ABCDEF01-1234-5678-90AB-CDEF01234567"),
            "abcdef01-1234-5678-90ab-cdef01234567",
        ),
        # A string is used as it is (str(value)), as Starlette does.
        ("uuid", "ABCDEF01-1234-5678-90AB-CDEF01234567", "ABCDEF01-1234-5678-90AB-CDEF01234567"),
        ("uuid", "abcdef0112345678", "abcdef0112345678"),
    ],
)
def test_to_string(key: str, value: Any, text: str) -> None:
    assert CONVERTOR_TYPES[key].to_string(value) == text


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("str", "a/b", "May not contain path separators"),
        ("str", "", "Must not be empty"),
        ("int", -1, "Negative integers are not supported"),
        ("int", "-5", "Negative integers are not supported"),
        ("float", -0.5, "Negative floats are not supported"),
        ("float", math.nan, "NaN values are not supported"),
        ("float", math.inf, "Infinite values are not supported"),
        ("float", -math.inf, "Infinite values are not supported"),
    ],
)
def test_to_string_refuses(key: str, value: Any, message: str) -> None:
    # AssertionError with Starlette's exact text: what url_for callers catch.
    with pytest.raises(AssertionError) as raised:
        CONVERTOR_TYPES[key].to_string(value)
    assert str(raised.value) == message


# ---------------------------------------------------------------------------- round trips


@given(st.text(alphabet=st.characters(blacklist_characters="/", codec="utf-8"), min_size=1))
def test_str_round_trip(value: str) -> None:
    round_trips(StringConvertor(), value)


@given(st.text(alphabet=st.characters(codec="utf-8")))
def test_path_round_trip(value: str) -> None:
    round_trips(PathConvertor(), value)


@given(st.integers(min_value=0))
def test_int_round_trip(value: int) -> None:
    round_trips(IntegerConvertor(), value)


@given(st.floats(min_value=1e-3, max_value=1e15, allow_nan=False, allow_infinity=False))
def test_float_round_trip(value: float) -> None:
    # Twenty decimals keep 17 significant digits (enough to read back) in this range.
    round_trips(FloatConvertor(), value)


@given(st.uuids())
def test_uuid_round_trip(value: uuid.UUID) -> None:
    round_trips(UUIDConvertor(), value)


@given(st.from_regex(r"[0-9]{1,30}(\.[0-9]{1,30})?", fullmatch=True))
def test_float_text_is_stable(text: str) -> None:
    # Any text the route accepts converts to a float whose own text converts back to it.
    convertor = FloatConvertor()
    value = convertor.convert(text)
    assert convertor.convert(convertor.to_string(value)) == value
