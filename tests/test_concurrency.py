import functools
import threading
from collections.abc import Iterator

import anyio
import pytest

from stellate._concurrency import (
    create_task_group,
    current_limiter,
    is_async_callable,
    unwrap_callable,
)
from stellate.concurrency import (
    iterate_in_threadpool,
    run_in_threadpool,
    run_until_first_complete,
)
from stellate.exceptions import StellateDeprecationWarning

pytestmark = pytest.mark.anyio


async def test_run_in_threadpool_runs_off_the_event_loop_thread() -> None:
    loop_thread = threading.get_ident()

    def where(a: int, *, b: int) -> tuple[int, int]:
        return threading.get_ident(), a + b

    thread, total = await run_in_threadpool(where, 1, b=2)
    assert thread != loop_thread
    assert total == 3


async def test_run_in_threadpool_uses_the_current_applications_limiter() -> None:
    limiter = anyio.CapacityLimiter(1)
    seen: list[float] = []

    def observe() -> None:
        seen.append(limiter.borrowed_tokens)

    token = current_limiter.set(limiter)
    try:
        await run_in_threadpool(observe)
    finally:
        current_limiter.reset(token)
    assert seen == [1]
    assert limiter.borrowed_tokens == 0


async def test_iterate_in_threadpool_yields_every_item_from_worker_threads() -> None:
    loop_thread = threading.get_ident()
    threads: set[int] = set()

    def numbers() -> Iterator[int]:
        for n in range(3):
            threads.add(threading.get_ident())
            yield n

    assert [n async for n in iterate_in_threadpool(numbers())] == [0, 1, 2]
    assert loop_thread not in threads


async def test_iterate_in_threadpool_propagates_errors() -> None:
    def broken() -> Iterator[int]:
        yield 1
        raise LookupError("boom")

    got: list[int] = []
    with pytest.raises(LookupError, match="boom"):
        async for n in iterate_in_threadpool(broken()):
            got.append(n)
    assert got == [1]


async def test_run_until_first_complete_cancels_the_others() -> None:
    cancelled = anyio.Event()

    async def quick() -> None:
        pass

    async def slow() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    with pytest.warns(StellateDeprecationWarning):
        await run_until_first_complete((quick, {}), (slow, {}))
    assert cancelled.is_set()


async def fail_with(exc: BaseException) -> None:
    raise exc


async def test_own_task_group_unwraps_a_single_error() -> None:
    with pytest.raises(KeyError, match="only") as info:
        async with create_task_group() as group:
            group.start_soon(anyio.sleep_forever)
            group.start_soon(fail_with, KeyError("only"))
    assert not isinstance(info.value.__context__, BaseExceptionGroup)


async def test_own_task_group_unwraps_its_body_error() -> None:
    with pytest.raises(LookupError, match="body"):
        async with create_task_group() as group:
            group.start_soon(anyio.sleep_forever)
            raise LookupError("body")


async def test_own_task_group_keeps_several_errors_grouped() -> None:
    with pytest.raises(ExceptionGroup) as info:
        async with create_task_group() as group:
            group.start_soon(fail_with, KeyError("a"))
            group.start_soon(fail_with, ValueError("b"))
    assert {type(e) for e in info.value.exceptions} == {KeyError, ValueError}


async def test_own_task_group_leaves_an_applications_group_whole() -> None:
    # The application raised a group of one: that is its own value, never taken apart.
    raised = ExceptionGroup("from the app", [ValueError("inner")])
    with pytest.raises(ExceptionGroup) as info:
        async with create_task_group() as group:
            group.start_soon(fail_with, raised)
    # trio derives a copy of a group that crosses a nursery: same message, same members.
    assert info.value.message == "from the app"
    assert info.value.exceptions == raised.exceptions


async def test_own_task_group_leaves_a_group_raised_in_its_body_whole() -> None:
    raised = ExceptionGroup("outer", [ExceptionGroup("inner", [ValueError("deep")])])
    with pytest.raises(ExceptionGroup) as info:
        async with create_task_group() as group:
            group.start_soon(anyio.sleep_forever)
            raise raised
    assert info.value.message == "outer"
    [inner] = info.value.exceptions
    assert isinstance(inner, ExceptionGroup)
    assert inner.message == "inner"
    assert inner.exceptions == raised.exceptions[0].exceptions  # type: ignore[union-attr]


async def test_nested_own_task_groups_each_unwrap_their_own_level() -> None:
    async def inner() -> None:
        async with create_task_group() as group:
            group.start_soon(fail_with, KeyError("deep"))

    with pytest.raises(KeyError, match="deep"):
        async with create_task_group() as group:
            group.start_soon(inner)


async def test_own_task_group_leaves_plain_exceptions_alone() -> None:
    with pytest.raises(ZeroDivisionError):
        async with create_task_group():
            _ = 1 / 0


async def test_own_task_group_lets_cancellation_through() -> None:
    with anyio.CancelScope() as outer:
        async with create_task_group() as group:
            group.start_soon(anyio.sleep_forever)
            outer.cancel()
            await anyio.sleep_forever()
    assert outer.cancelled_caught


def test_is_async_callable() -> None:
    async def coro() -> None:
        pass

    def sync() -> None:
        pass

    class AsyncCall:
        async def __call__(self) -> None:
            pass

    class SyncCall:
        def __call__(self) -> None:
            pass

    assert is_async_callable(coro)
    assert is_async_callable(functools.partial(functools.partial(coro)))
    assert is_async_callable(AsyncCall())
    assert not is_async_callable(sync)
    assert not is_async_callable(SyncCall())
    assert not is_async_callable(AsyncCall)  # the class itself builds an instance
    assert not is_async_callable(None)
    assert unwrap_callable(functools.partial(sync)) is sync
