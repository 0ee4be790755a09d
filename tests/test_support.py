"""The tests' one way to wait: `wait_for` (and its blocking twin) return the first truthy probe
result and fail by a deadline, naming what they waited for."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.support import wait_for, wait_for_blocking


class Counter:
    def __init__(self, ready_at: int) -> None:
        self.calls = 0
        self.ready_at = ready_at

    def probe(self) -> int | None:
        self.calls += 1
        return self.calls if self.calls >= self.ready_at else None

    async def aprobe(self) -> int | None:
        return self.probe()


async def test_a_sync_probe_an_async_one_and_a_lambda_returning_a_coroutine() -> None:
    assert await wait_for(Counter(3).probe, interval=0.001) == 3
    assert await wait_for(Counter(3).aprobe, interval=0.001) == 3
    counter = Counter(2)
    assert await wait_for(lambda: counter.aprobe(), interval=0.001) == 2


async def test_the_failure_names_what_was_awaited_and_asks_a_callable_only_then() -> None:
    counter = Counter(10**9)
    with pytest.raises(AssertionError, match=r"timed out after 0.05 s waiting for the answer \(asked \d+ times\)"):
        await wait_for(
            counter.probe, within=0.05, interval=0.001, what=lambda: f"the answer (asked {counter.calls} times)"
        )


async def test_a_hung_probe_fails_at_the_deadline() -> None:
    async def hangs() -> bool:
        await asyncio.Event().wait()  # never set: the probe hangs until it is cut off
        return True

    started = time.monotonic()
    with pytest.raises(AssertionError, match="waiting for the hung probe"):
        await wait_for(hangs, within=0.1, what="the hung probe")
    assert time.monotonic() - started < 30  # cut at the deadline, though the probe never returns


async def test_ignored_errors_mean_not_yet_and_the_last_one_is_chained() -> None:
    calls = 0

    def flaky() -> bool:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("not up yet")
        return True

    assert await wait_for(flaky, interval=0.001, ignoring=(ConnectionError,))
    with pytest.raises(AssertionError) as failed:
        await wait_for(lambda: 1 // 0, within=0.05, interval=0.001, ignoring=(ZeroDivisionError,))
    assert isinstance(failed.value.__cause__, ZeroDivisionError)
    with pytest.raises(ZeroDivisionError):
        await wait_for(lambda: 1 // 0)  # anything else propagates at once


def test_the_blocking_twin_waits_the_same_way() -> None:
    assert wait_for_blocking(Counter(3).probe, interval=0.001) == 3
    with pytest.raises(AssertionError, match="waiting for never"):
        wait_for_blocking(lambda: False, within=0.05, interval=0.001, what="never")
