"""The compat suite: real FastAPI applications and Starlette libraries, under the bridge.

The bridge must not leak into the rest of the suite, which imports stellate itself and,
in the benchmarks' smoke test, the real Starlette. So everything the compat tests import
under the bridge (FastAPI, the libraries, whatever they import lazily) lives in a
:class:`Sandbox`: those modules are in ``sys.modules`` only while a compat module is
being collected or a compat test runs (with the bridge installed), and are taken out
again, with the bridge, afterwards. Stellate's own modules are never swapped: they are
the same objects for every test. Each pytest-xdist worker is a process of its own, with
its own sandbox.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import warnings
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from stellate.compat import starlette as bridge

HERE = Path(__file__).parent


#: The packages that import ``starlette``: imported under the bridge, they hold stellate's
#: classes, so they are sandboxed. Everything else they pull in (pydantic, anyio's
#: backends...) does not know Starlette and stays, one copy for the whole suite.
BRIDGED_PACKAGES = frozenset(
    {
        "fastapi",
        "sse_starlette",
        "starlette_context",
        "starlette_csrf",
        "asgi_correlation_id",
        "slowapi",
        "starlette_exporter",
        "ariadne",
    }
)


def _bridged(name: str) -> bool:
    return name.split(".", 1)[0] in BRIDGED_PACKAGES


class Sandbox:
    """The modules imported under the bridge, kept out of ``sys.modules`` in between."""

    def __init__(self) -> None:
        self.modules: dict[str, Any] = {}
        self.outside: dict[str, Any] = {}

    def enter(self) -> set[str]:
        with warnings.catch_warnings():
            # Another test (the benchmarks' smoke test) may have imported the real
            # Starlette in this process: the bridge sets it aside, as it should.
            warnings.simplefilter("ignore", bridge.StarletteAlreadyImportedWarning)
            bridge.install()
        # Likewise a FastAPI imported outside the sandbox, on the real Starlette.
        self.outside = {name: module for name, module in sys.modules.items() if _bridged(name)}
        for name in self.outside:
            del sys.modules[name]
        sys.modules.update(self.modules)
        return set(sys.modules)

    def exit(self, before: set[str]) -> None:
        for name in [name for name in sys.modules if name not in before and _bridged(name)]:
            self.modules[name] = sys.modules[name]
        for name in self.modules:
            sys.modules.pop(name, None)
        sys.modules.update(self.outside)
        bridge.uninstall()

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        before = self.enter()
        try:
            yield
        finally:
            self.exit(before)


SANDBOX = Sandbox()


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, Any]:
    # Test modules here import FastAPI at the top: they are collected under the bridge.
    if not isinstance(collector, pytest.Module):
        return (yield)
    with SANDBOX.active():
        return (yield)


@pytest.fixture(autouse=True)
def bridged() -> Iterator[None]:
    """The bridge, and the modules imported under it, for the duration of every test here.

    Autouse: a test importing ``fastapi.testclient`` lazily must never reach the real
    Starlette.
    """
    with SANDBOX.active():
        yield


@pytest.fixture
def client_factory(anyio_backend: str, bridged: None) -> Callable[..., Any]:
    """``fastapi.testclient.TestClient`` on the ``anyio_backend`` (asyncio, then trio)."""
    from fastapi.testclient import TestClient

    return functools.partial(TestClient, backend=anyio_backend)
