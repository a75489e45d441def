"""A pytest plugin that runs a test suite written for Starlette or FastAPI on stellate.

Enable it with ``-p stellate.compat.pytest_plugin`` (on the command line, or in
``addopts``). It installs the bridge (:mod:`stellate.compat.starlette`) before pytest
loads the first ``conftest.py``, so every import of ``starlette`` in the suite, in the
application under test and in FastAPI gives stellate's modules; it uninstalls it when
pytest is done.

The alternative that needs no ``-p``: stellate registers a pytest plugin that only reads
the ini option ``stellate_starlette_bridge``; set it to ``true`` to get the same.
"""

from __future__ import annotations

import pytest

from stellate.compat import starlette as bridge


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    bridge.install()


def pytest_unconfigure(config: pytest.Config) -> None:
    bridge.uninstall()
