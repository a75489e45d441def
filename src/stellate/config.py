"""Application settings read from the environment and from a ``.env`` file.

A :class:`Config` is created once at import time of the settings module and asked for
each value by name, with an optional cast and default::

    config = Config(".env")
    DEBUG = config("DEBUG", cast=bool, default=False)

The process environment always wins over the file, so a deployment can override any
value without editing files. Values are read once; :class:`Environ` then refuses to change
a key that was already read, because a changed environment after settings were computed
is a silent source of "works on my machine" bugs (typically in test suites that patch
``os.environ`` too late).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    from stellate.datastructures import CommaSeparatedStrings, Secret

__all__ = [
    "CommaSeparatedStrings",
    "Config",
    "Environ",
    "EnvironError",
    "Secret",
    "environ",
    "undefined",
]

T = TypeVar("T")


class undefined:
    """Marker for "no default given": ``None`` is a legitimate default value."""


class EnvironError(Exception):
    """Raised when code changes an environment variable that settings already read."""


class Environ(MutableMapping[str, str]):
    """A view of ``os.environ`` (or any mapping) that freezes each key once it is read.

    Reading a key, even one that is absent, records it: a later assignment or deletion
    would make the settings computed from it stale, so it raises :class:`EnvironError`
    instead of silently taking effect for some readers and not others.
    """

    def __init__(self, environ: MutableMapping[str, str] = os.environ):
        self._environ = environ
        self._has_been_read: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self._has_been_read.add(key)
        return self._environ[key]

    def __setitem__(self, key: str, value: str) -> None:
        self._refuse_if_read(key, "set")
        self._environ[key] = value

    def __delitem__(self, key: str) -> None:
        self._refuse_if_read(key, "delete")
        del self._environ[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._environ)

    def __len__(self) -> int:
        return len(self._environ)

    def _refuse_if_read(self, key: str, action: str) -> None:
        if key in self._has_been_read:
            raise EnvironError(
                f"Attempting to {action} environ['{key}'], but the value has already been read."
            )


#: The process environment, wrapped so that settings cannot go stale (see :class:`Environ`).
environ = Environ()

_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


class Config:
    """Settings looked up in ``environ`` first, then in ``env_file``, then the default.

    ``env_prefix`` is prepended to every key, so ``Config(env_prefix="APP_")("DEBUG")``
    reads ``APP_DEBUG``. A missing ``env_file`` is not an error (a production host may
    configure everything through the environment) but gives a warning, since a typo in the
    file name would otherwise go unnoticed.
    """

    def __init__(
        self,
        env_file: str | Path | None = None,
        environ: Mapping[str, str] = environ,
        env_prefix: str = "",
        encoding: str = "utf-8",
    ) -> None:
        self.environ = environ
        self.env_prefix = env_prefix
        self.file_values: dict[str, str] = {}
        if env_file is not None:
            if os.path.isfile(env_file):
                self.file_values = _read_env_file(Path(env_file), encoding)
            else:
                warnings.warn(f"Config file '{env_file}' not found.", stacklevel=2)

    @overload
    def __call__(self, key: str, *, default: None) -> str | None: ...

    @overload
    def __call__(self, key: str, cast: Callable[[Any], T], default: Any = undefined) -> T: ...

    @overload
    def __call__(
        self, key: str, cast: None = None, default: type[undefined] = undefined
    ) -> str: ...

    @overload
    def __call__(self, key: str, cast: None = None, *, default: T) -> str | T: ...

    def __call__(
        self,
        key: str,
        cast: Callable[[Any], Any] | None = None,
        default: Any = undefined,
    ) -> Any:
        """Same as :meth:`get`."""
        return self.get(key, cast, default)

    @overload
    def get(self, key: str, *, default: None) -> str | None: ...

    @overload
    def get(self, key: str, cast: Callable[[Any], T], default: Any = undefined) -> T: ...

    @overload
    def get(self, key: str, cast: None = None, default: type[undefined] = undefined) -> str: ...

    @overload
    def get(self, key: str, cast: None = None, *, default: T) -> str | T: ...

    def get(
        self,
        key: str,
        cast: Callable[[Any], Any] | None = None,
        default: Any = undefined,
    ) -> Any:
        """Return the value of ``env_prefix + key``, cast with ``cast`` if given.

        The default is cast too (so ``default="8000"`` with ``cast=int`` gives ``8000``),
        except ``None``, which stays ``None``: it means "not configured". ``cast=bool``
        accepts ``true``/``false``/``1``/``0`` in any case, since ``bool("false")`` is
        ``True``. Raises :class:`KeyError` for a missing key without a default, and
        :class:`ValueError` naming the key and value when the cast fails.
        """
        if cast is not None and not callable(cast):
            raise TypeError(f"Config '{key}': cast must be callable, got {cast!r}.")
        key = self.env_prefix + key
        if key in self.environ:
            return _perform_cast(key, self.environ[key], cast)
        if key in self.file_values:
            return _perform_cast(key, self.file_values[key], cast)
        if default is not undefined:
            return _perform_cast(key, default, cast)
        raise KeyError(f"Config '{key}' is missing, and has no default.")


def _perform_cast(key: str, value: Any, cast: Callable[[Any], Any] | None) -> Any:
    if cast is None or value is None:
        return value
    if cast is bool and isinstance(value, str):
        try:
            return _BOOLEANS[value.lower()]
        except KeyError:
            raise ValueError(
                f"Config '{key}' has value '{value}'. Not a valid bool "
                "(expected true, false, 1 or 0)."
            ) from None
    try:
        return cast(value)
    except (TypeError, ValueError) as exc:
        name = getattr(cast, "__name__", repr(cast))
        raise ValueError(f"Config '{key}' has value '{value}'. Not a valid {name}.") from exc


def _read_env_file(path: Path, encoding: str) -> dict[str, str]:
    """Parse ``KEY=value`` lines; blank lines and lines starting with ``#`` are skipped.

    A line without ``=`` (or with an empty key) is reported rather than skipped: it is
    almost always a typo (``DEBUG true``) that would otherwise silently fall back to the
    default. The message gives the file and line number but not the line, which could
    hold a secret.
    """
    values: dict[str, str] = {}
    with path.open(encoding=encoding) as file:
        for lineno, raw in enumerate(file, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            key = key.strip()
            if not sep or not key:
                raise ValueError(f"{path}, line {lineno}: expected 'KEY=value'.")
            values[key] = _unquote(value.strip())
    return values


def _unquote(value: str) -> str:
    """Strip one pair of matching outer quotes: ``"a b"`` → ``a b``, ``'x"`` unchanged."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def __getattr__(name: str) -> Any:
    # Secret and CommaSeparatedStrings moved to datastructures; they are still importable
    # from here (older code does so) without making every config import load that module.
    if name in ("Secret", "CommaSeparatedStrings"):
        from stellate import datastructures

        return getattr(datastructures, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
