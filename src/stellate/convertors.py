"""Path parameter convertors: ``{name:type}`` in a route path.

A convertor has three faces that must agree: ``regex`` decides which path segments
match, ``convert`` turns a matched string into a value, and ``to_string`` turns a value
back into a string (for ``url_path_for``) that ``regex`` matches and ``convert`` reads
back as the same value. Values that cannot round-trip (a negative integer, NaN, a string
with a ``/`` in a ``str`` parameter) are refused with ValueError rather than producing a
URL that would route somewhere else.
"""

from __future__ import annotations

import math
import uuid
from decimal import Decimal
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
            raise ValueError(f"A 'str' path parameter may not contain '/': {value!r}")
        if not value:
            raise ValueError("A 'str' path parameter may not be empty")
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
            raise ValueError(f"An 'int' path parameter must not be negative: {value}")
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
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"A 'float' path parameter must be finite: {value}")
        if value < 0:
            raise ValueError(f"A 'float' path parameter must not be negative: {value}")
        # repr() is the shortest string that reads back as the same float; Decimal spells
        # it out without an exponent (1e-05 -> 0.00001), which the regex requires.
        text = format(Decimal(repr(abs(value))), "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return text


class UUIDConvertor(Convertor[uuid.UUID]):
    """A UUID in its canonical 8-4-4-4-12 hexadecimal form (either case)."""

    regex = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

    def convert(self, value: str) -> uuid.UUID:
        return uuid.UUID(value)

    def to_string(self, value: uuid.UUID) -> str:
        if not isinstance(value, uuid.UUID):
            value = uuid.UUID(str(value))
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
