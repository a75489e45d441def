"""Real servers for the end-to-end tests: hypercorn on trio and on asyncio, uvicorn.

Each kind of server is started once per session, the first time a test asks for it, by
``python -m stellate run app:app`` serving tests/e2e/app.py on a free port of 127.0.0.1,
and stopped (SIGTERM, bounded wait, kill on timeout) when the session ends. Tests that
must stop a server themselves (the lifespan tests) start their own with :func:`launch`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.e2e._servers import SERVERS, Server, ServerPool

HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: starts real servers (hypercorn, uvicorn)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    pool = ServerPool(tmp_path_factory.mktemp("e2e"))
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture(params=list(SERVERS))
def server(request: pytest.FixtureRequest, servers: ServerPool) -> Server:
    """The session's server of each kind, in turn."""
    return servers.get(str(request.param))
