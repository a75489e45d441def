"""Middleware declarations.

An application is wrapped by its middleware only when its stack is first built, so the
middleware is declared as data first: ``Middleware(cls, *args, **kwargs)`` records which
class to instantiate and with which options, and the application later calls
``cls(app, *args, **kwargs)`` with the app it wraps. Keeping the declaration inert lets
``Stellate(middleware=[...])``, ``Mount(middleware=[...])`` and ``add_middleware`` all share
one shape, and lets the stack be built exactly once.

This package's ``__init__`` imports nothing heavier than the type aliases: each concrete
middleware lives in its own submodule (``stellate.middleware.cors``, ...).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ParamSpec, Protocol

from stellate.types import ASGIApp

__all__ = ["Middleware"]

P = ParamSpec("P")


class _MiddlewareFactory(Protocol[P]):
    """Anything that wraps an ASGI app: ``factory(app, *args, **kwargs) -> ASGI app``."""

    def __call__(self, app: ASGIApp, /, *args: P.args, **kwargs: P.kwargs) -> ASGIApp: ...


class Middleware:
    """A middleware class and the arguments it will be instantiated with.

    Iterating yields ``(cls, args, kwargs)``, so ``cls, args, kwargs = middleware`` works
    where an application builds its stack.
    """

    def __init__(self, cls: _MiddlewareFactory[P], *args: P.args, **kwargs: P.kwargs) -> None:
        self.cls = cls
        self.args = args
        self.kwargs = kwargs

    def __iter__(self) -> Iterator[Any]:
        return iter((self.cls, self.args, self.kwargs))

    def __repr__(self) -> str:
        name = getattr(self.cls, "__name__", None) or repr(self.cls)
        options = [repr(arg) for arg in self.args]
        options.extend(f"{key}={value!r}" for key, value in self.kwargs.items())
        return f"{type(self).__name__}({', '.join([name, *options])})"
