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


@pytest.fixture(autouse=True)
def _blockbuster() -> Any:
    """Fail a test when stellate makes a blocking call on a running asyncio event loop.

    blockbuster patches file-system, socket and sleep calls; a call made from a thread that
    runs an asyncio loop, with a stellate frame on the stack, raises ``BlockingError``. Only
    asyncio is watched, and the same code paths run on trio. Calls a test makes itself, with
    no stellate frame involved, are the test's own business.
    """
    from blockbuster import blockbuster_ctx

    with blockbuster_ctx("stellate") as buster:
        for function in buster.functions.values():
            for filename, names in ALLOWED_TO_BLOCK.items():
                function.can_block_in(filename, names)
        yield buster


#: Where a blocking call on the loop is accepted, by file and function, each with its reason.
ALLOWED_TO_BLOCK: dict[str, set[str]] = {
    # StaticFiles(check_dir=True) reports a missing directory when it is constructed, as in
    # Starlette: construction happens at import time in an application, and in some tests
    # inside the test's event loop.
    "stellate/staticfiles.py": {"__init__"},
    # Jinja2 loads a template (and, with auto_reload, stats it) synchronously when it is
    # looked up; TemplateResponse renders in the endpoint, as Starlette's does. Templates
    # are small local files, cached after the first load.
    "stellate/templating.py": {"get_template", "TemplateResponse"},
    # Endpoints that block on purpose, to show what a deadline does to a handler that
    # never yields to the event loop.
    "tests/test_timeouts.py": {"blocking", "_block_past"},
    # The benchmark harness plays the server: it answers http.response.pathsend by reading
    # the file itself, inside the send it hands to the app.
    "benchmarks/harness.py": {"_read_file"},
}
