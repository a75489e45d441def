"""Fixtures shared by the whole suite.

Every async test runs twice, on asyncio and on trio: ``anyio_backend`` is parametrized
over both, and ``test_client_factory`` builds TestClients on the same backend, so sync
tests that drive an app through TestClient are parametrized over both backends too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest

BACKENDS = ["asyncio", "trio"]


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def test_client_factory(anyio_backend: str) -> Callable[..., Any]:
    """``TestClient`` with its backend taken from ``anyio_backend`` (asyncio, then trio)."""
    from stellate.testclient import TestClient

    return functools.partial(TestClient, backend=anyio_backend)
