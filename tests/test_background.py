import threading

import pytest

from stellate.background import BackgroundTask, BackgroundTasks

pytestmark = pytest.mark.anyio


async def test_async_and_sync_tasks_run_in_order_with_their_arguments() -> None:
    calls: list[tuple[str, object]] = []
    loop_thread = threading.get_ident()

    async def async_task(value: int, *, key: str) -> None:
        calls.append(("async", (value, key)))

    def sync_task(value: int) -> None:
        calls.append(("sync", (value, threading.get_ident() != loop_thread)))

    tasks = BackgroundTasks([BackgroundTask(async_task, 1, key="k")])
    tasks.add_task(sync_task, 2)
    await tasks()
    assert calls == [("async", (1, "k")), ("sync", (2, True))]


async def test_a_failing_task_stops_the_ones_after_it() -> None:
    ran: list[str] = []

    def fail() -> None:
        raise RuntimeError("broken task")

    tasks = BackgroundTasks()
    tasks.add_task(fail)
    tasks.add_task(ran.append, "after")
    with pytest.raises(RuntimeError, match="broken task"):
        await tasks()
    assert ran == []
