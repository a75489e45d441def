import functools
import threading
from collections.abc import Iterator

import anyio
import pytest

from stellate._concurrency import (
    collapse_excgroups,
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


async def test_collapse_excgroups_unwraps_a_single_error() -> None:
    async def fail() -> None:
        raise KeyError("only")

    with pytest.raises(KeyError, match="only"), collapse_excgroups():
        async with anyio.create_task_group() as group:
            group.start_soon(anyio.sleep_forever)
            group.start_soon(fail)


async def test_collapse_excgroups_keeps_several_errors_grouped() -> None:
    async def fail(exc: Exception) -> None:
        raise exc

    with pytest.raises(ExceptionGroup) as info, collapse_excgroups():
        async with anyio.create_task_group() as group:
            group.start_soon(fail, KeyError("a"))
            group.start_soon(fail, ValueError("b"))
    assert {type(e) for e in info.value.exceptions} == {KeyError, ValueError}


async def test_collapse_excgroups_unwraps_nested_groups() -> None:
    inner = ExceptionGroup("inner", [ValueError("deep")])
    with pytest.raises(ValueError, match="deep"), collapse_excgroups():
        raise ExceptionGroup("outer", [inner])


async def test_collapse_excgroups_leaves_other_exceptions_alone() -> None:
    with pytest.raises(ZeroDivisionError), collapse_excgroups():
        _ = 1 / 0


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
