"""What ``starlette._utils`` provides to the libraries that import it (under the bridge).

FastAPI imports ``get_route_path`` (the path left to route under a mount) and
``is_async_callable`` (whether calling an endpoint gives an awaitable, partials and
callable objects included) from there; other libraries use ``collapse_excgroups``, a
context manager around their own task group that re-raises its single error as itself.
They are stellate's own helpers, re-exported under the names those libraries look for.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from stellate._concurrency import is_async_callable, raise_only_error
from stellate._routing_paths import get_route_path

__all__ = ["collapse_excgroups", "get_route_path", "is_async_callable"]


@contextmanager
def collapse_excgroups() -> Iterator[None]:
    """Re-raise an exception group holding one error (besides cancellations) as that error.

    Wrap a task group in it: only the group that task group made is looked at, one
    level, as stellate's own task groups do (see ``stellate._concurrency``).
    """
    try:
        yield
    except BaseExceptionGroup as group:
        raise_only_error(group)
        raise
