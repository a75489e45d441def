"""What ``starlette._utils`` provides to the libraries that import it (under the bridge).

FastAPI imports ``get_route_path`` (the path left to route under a mount) and
``is_async_callable`` (whether calling an endpoint gives an awaitable, partials and
callable objects included) from there; other libraries use ``collapse_excgroups`` (a
context manager re-raising a task group's single error as itself). They are stellate's
own helpers, re-exported under the names those libraries look for.
"""

from __future__ import annotations

from stellate._concurrency import collapse_excgroups, is_async_callable
from stellate._routing_paths import get_route_path

__all__ = ["collapse_excgroups", "get_route_path", "is_async_callable"]
