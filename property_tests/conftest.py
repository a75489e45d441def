"""Fixtures for the property suite: every async property runs on asyncio and on trio.

Hypothesis settings come from the root ``conftest.py`` profiles (``HYPOTHESIS_PROFILE`` =
``ci`` | ``dev`` | ``fuzz``). The anyio pytest plugin runs each ``@given`` example of an
``@pytest.mark.anyio`` test inside the backend chosen here.
"""

from __future__ import annotations

import pytest

BACKENDS = ["asyncio", "trio"]


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
