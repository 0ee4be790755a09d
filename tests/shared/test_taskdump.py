"""The task dump: each task's chain of awaits, down to the future it is parked on."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator

import pytest

from shared import taskdump


async def _innermost(gate: asyncio.Event) -> None:
    await gate.wait()


async def _middle(gate: asyncio.Event) -> None:
    await _innermost(gate)


async def _ticks(gate: asyncio.Event) -> AsyncIterator[int]:
    yield 1
    await _middle(gate)
    yield 2


async def _outer(gate: asyncio.Event) -> None:
    async for _ in _ticks(gate):
        pass


async def test_a_parked_task_shows_every_frame_of_its_await_chain_and_the_future_it_waits_on() -> None:
    gate = asyncio.Event()
    task = asyncio.create_task(_outer(gate), name="parked")
    await asyncio.sleep(0)  # let it reach the wait
    try:
        lines = taskdump.describe(task)
    finally:
        gate.set()
        await task
    assert lines[0] == "task 'parked'"
    functions = [line.rsplit(" in ", 1)[-1] for line in lines[1:-1]]
    assert functions == [
        "_outer",
        "_ticks",
        "_middle",
        "_innermost",
        "Event.wait",
    ], lines
    assert all(__file__ in line or "asyncio" in line for line in lines[1:-1])
    assert lines[-1].startswith("    waits on <Future pending"), lines


async def test_the_dump_names_every_task_and_ends_with_its_mark() -> None:
    gate = asyncio.Event()
    tasks = [asyncio.create_task(_middle(gate), name=f"worker-{i}") for i in range(2)]
    await asyncio.sleep(0)
    try:
        text = taskdump.dump()
    finally:
        gate.set()
        await asyncio.gather(*tasks)
    assert text.splitlines()[-1] == taskdump.END_MARK
    assert "task 'worker-0'" in text and "task 'worker-1'" in text
    assert f"asyncio tasks ({len(tasks) + 1}):" in text  # the test's own task is one


async def test_sigusr1_logs_the_dump(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    taskdump.install(loop)
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        for _ in range(100):  # the handler runs on one of the loop's next turns
            if taskdump.END_MARK in caplog.text:
                break
            await asyncio.sleep(0.01)
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)
    assert taskdump.END_MARK in caplog.text and "test_sigusr1_logs_the_dump" in caplog.text
