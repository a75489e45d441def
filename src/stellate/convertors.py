"""Path parameter convertors: ``{name:type}`` in a route path.

A convertor has three faces that must agree: ``regex`` decides which path segments
match, ``convert`` turns a matched string into a value, and ``to_string`` turns a value
back into a string (for ``url_path_for``) that ``regex`` matches and ``convert`` reads
back as the same value. Values that cannot round-trip (a negative integer, NaN, a string
with a ``/`` in a ``str`` parameter) are refused rather than producing a URL that would
route somewhere else: with ``AssertionError`` and Starlette's messages, which is what
``url_path_for`` callers written for Starlette catch.
"""

from __future__ import annotations

import math
import uuid
from typing import Any, ClassVar, Generic, TypeVar

__all__ = [
    "CONVERTOR_TYPES",
    "Convertor",
    "FloatConvertor",
    "IntegerConvertor",
    "PathConvertor",
    "StringConvertor",
    "UUIDConvertor",
    "register_url_convertor",
]

T = TypeVar("T")


class Convertor(Generic[T]):
    """Base class: set ``regex`` and implement ``convert`` and ``to_string``.

    ``regex`` must not contain capturing groups of its own meaning; the router wraps it in
    a named group. ``convert`` may raise ValueError for a string the regex let through but
    that is still not a valid value.
    """

    regex: ClassVar[str] = ""

    def convert(self, value: str) -> T:
        raise NotImplementedError()

    def to_string(self, value: T) -> str:
        raise NotImplementedError()


class StringConvertor(Convertor[str]):
    """One non-empty path segment (no ``/``)."""

    regex = "[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        value = str(value)
        if "/" in value:
            raise AssertionError("May not contain path separators")
        if not value:
            raise AssertionError("Must not be empty")
        return value


class PathConvertor(Convertor[str]):
    """The rest of the path, slashes included (possibly empty).

    The dot is scoped to match newlines too: a decoded path may hold one (``%0A``), and
    a bare ``.*`` would silently stop matching such a path.
    """

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return str(value)

    def to_string(self, value: str) -> str:
        return str(value)


class IntegerConvertor(Convertor[int]):
    """A non-negative decimal integer."""

    regex = "[0-9]+"

    def convert(self, value: str) -> int:
        # int() itself refuses absurdly long digit strings (ValueError), which is fine.
        return int(value)

    def to_string(self, value: int) -> str:
        value = int(value)
        if value < 0:
            raise AssertionError("Negative integers are not supported")
        return str(value)


class FloatConvertor(Convertor[float]):
    """A non-negative finite decimal number written without an exponent (``1.5``, ``2``)."""

    regex = r"[0-9]+(?:\.[0-9]+)?"

    def convert(self, value: str) -> float:
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"A 'float' path parameter must be finite: {value!r}")
        return number

    def to_string(self, value: float) -> str:
        """Twenty decimals, trailing zeros dropped: ``0.1`` gives ``0.10000000000000000555``.

        That is Starlette's spelling, which reads back as the same float; never an
        exponent, which the regex would not match.
        """
        value = float(value)
        if math.isnan(value):
            raise AssertionError("NaN values are not supported")
        if math.isinf(value):
            raise AssertionError("Infinite values are not supported")
        if value < 0:
            raise AssertionError("Negative floats are not supported")
        return f"{value:.20f}".rstrip("0").rstrip(".")


class UUIDConvertor(Convertor[uuid.UUID]):
    """32 hex digits (either case) in the 8-4-4-4-12 layout, each hyphen optional.

    ``to_string`` writes a ``UUID`` in its canonical form and a string as it is.
    """

    regex = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"

    def convert(self, value: str) -> uuid.UUID:
        return uuid.UUID(value)

    def to_string(self, value: uuid.UUID) -> str:
        return str(value)


#: The convertors available in route paths, by the name used after the colon.
CONVERTOR_TYPES: dict[str, Convertor[Any]] = {
    "str": StringConvertor(),
    "path": PathConvertor(),
    "int": IntegerConvertor(),
    "float": FloatConvertor(),
    "uuid": UUIDConvertor(),
}


def register_url_convertor(key: str, convertor: Convertor[Any]) -> None:
    """Make ``{name:key}`` available in route paths compiled from now on."""
    CONVERTOR_TYPES[key] = convertor
