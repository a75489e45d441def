"""stellate: an ASGI framework with Starlette's API, written against anyio.

Every application runs unchanged on asyncio and on trio.

``import stellate`` stays cheap: ``stellate.Stellate`` is loaded on first access (PEP 562),
and everything else is imported from its own module (``stellate.routing``, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stellate.applications import Stellate

__all__ = ["Stellate", "__version__"]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "Stellate":
        from stellate.applications import Stellate

        return Stellate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), "Stellate"])
