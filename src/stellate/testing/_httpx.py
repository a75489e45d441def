"""The HTTP client library the test clients build on: ``httpx2`` if installed, else ``httpx``.

Starlette 1.10's test client prefers ``httpx2`` (the maintained fork), so a test suite
written for it may check ``isinstance(response, httpx2.Response)`` or catch ``httpx2``
errors; ``httpx`` stays a first-class fallback, without a warning, because it is the
library stellate's design names. Everything under :mod:`stellate.testing` and
:mod:`stellate.testclient` imports the library from here, so all of them agree on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["httpx"]

if TYPE_CHECKING:
    import httpx
else:
    try:
        import httpx2 as httpx
    except ModuleNotFoundError:
        try:
            import httpx
        except ModuleNotFoundError:
            raise RuntimeError(
                "The stellate.testclient module requires the httpx2 package to be installed. "
                "httpx works too. You can install it with: pip install 'stellate[full]'"
            ) from None
