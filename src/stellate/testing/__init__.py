"""Tools for testing ASGI applications and the frameworks built on them.

* :class:`AsyncTestClient` (in :mod:`stellate.testing.client`): an ``httpx.AsyncClient``
  that runs the app in the test's own event loop, on asyncio or trio.
* :mod:`stellate.testing.strategies`: Hypothesis strategies for HTTP inputs.
* :mod:`stellate.testing.lint`: a middleware that checks the ASGI protocol.

``AsyncTestClient`` is imported on first use, so importing the linter or the strategies
does not pull in httpx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stellate.testing.client import AsyncTestClient

__all__ = ["AsyncTestClient"]


def __getattr__(name: str) -> Any:
    if name == "AsyncTestClient":
        from stellate.testing.client import AsyncTestClient

        return AsyncTestClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
