"""Fixtures shared by the whole suite.

Every async test runs twice, on asyncio and on trio: ``anyio_backend`` is parametrized
over both, and ``test_client_factory`` builds TestClients on the same backend, so sync
tests that drive an app through TestClient are parametrized over both backends too.

``test_client_factory`` also wraps every app in `stellate.testing.lint.LintMiddleware`:
any test that drives an app through it checks, as a side effect, that stellate speaks
ASGI correctly in both directions (a violation fails the test with ``ASGIProtocolError``
at the message that broke the rule). Tests whose app breaks the protocol on purpose --
to check how the client reports it -- use ``raw_test_client_factory`` instead.
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


def _linted_test_client(app: Any, *args: Any, **kwargs: Any) -> Any:
    from stellate.testclient import TestClient
    from stellate.testing.lint import wrap

    return TestClient(wrap(app), *args, **kwargs)


@pytest.fixture
def test_client_factory(anyio_backend: str) -> Callable[..., Any]:
    """``TestClient`` on the ``anyio_backend`` (asyncio, then trio), its app under lint."""
    return functools.partial(_linted_test_client, backend=anyio_backend)


@pytest.fixture
def raw_test_client_factory(anyio_backend: str) -> Callable[..., Any]:
    """``TestClient`` on the ``anyio_backend``, without lint: for deliberately broken apps."""
    from stellate.testclient import TestClient

    backend: Any = anyio_backend  # "asyncio" | "trio"
    return functools.partial(TestClient, backend=backend)
