"""A pytest plugin that runs a test suite written for Starlette or FastAPI on stellate.

Enable it with ``-p stellate.compat.pytest_plugin`` (on the command line, or in
``addopts``). It installs the bridge (:mod:`stellate.compat.starlette`) before pytest
loads the first ``conftest.py``, so every import of ``starlette`` in the suite, in the
application under test and in FastAPI gives stellate's modules; it uninstalls it when
pytest is done.

stellate deliberately registers no pytest entry point: pytest rewrites the assertions of
every module in a distribution that registers one, which would change the messages of
the ``AssertionError``s stellate raises as Starlette does, in every user's test run.
"""

from __future__ import annotations

import pytest

from stellate.compat import starlette as bridge


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    bridge.install()


def pytest_unconfigure(config: pytest.Config) -> None:
    bridge.uninstall()
