"""A value that can be awaited *or* entered with ``async with``.

``request.form()`` returns one: ``form = await request.form()`` keeps the form (and its
uploads, which ``Request.close()`` releases at the end of the request), while
``async with request.form() as form:`` closes every upload as soon as the block ends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Generator
from types import TracebackType
from typing import Any, Protocol, TypeVar

__all__ = ["AwaitableOrContextManager", "AwaitableOrContextManagerWrapper", "SupportsAsyncClose"]


class SupportsAsyncClose(Protocol):
    async def close(self) -> None: ...  # pragma: no cover


_T = TypeVar("_T", bound=SupportsAsyncClose)
_T_co = TypeVar("_T_co", covariant=True)


class AwaitableOrContextManager(Awaitable[_T_co], Protocol[_T_co]):
    """What ``request.form()`` returns: awaitable, and an async context manager."""

    async def __aenter__(self) -> _T_co: ...  # pragma: no cover

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None: ...  # pragma: no cover


class AwaitableOrContextManagerWrapper(AwaitableOrContextManager[_T]):
    """Wrap one awaitable: await it directly, or enter it and have it closed on exit."""

    __slots__ = ("_aw", "_entered")

    def __init__(self, aw: Awaitable[_T]) -> None:
        self._aw = aw

    def __await__(self) -> Generator[Any, None, _T]:
        return self._aw.__await__()

    async def __aenter__(self) -> _T:
        self._entered = await self._aw
        return self._entered

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # FormData.close shields itself: a cancelled block still gives the files back.
        await self._entered.close()
