"""Periodic: the one periodic loop behind the retention cleaner, artifact sweeper and health watch."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from shared.tasks import Periodic, watched
from tests.support import wait_for


class Flaky(Exception):
    pass


async def test_rounds_repeat_and_a_tolerated_error_fails_only_its_round() -> None:
    rounds: list[int] = []
    third = asyncio.Event()

    async def work() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise Flaky("first round fails")
        if len(rounds) >= 3:
            third.set()

    loop = Periodic("test-loop", work, interval_s=0.01, tolerated=(Flaky,))
    loop.start()
    await asyncio.wait_for(third.wait(), timeout=10)
    await loop.stop()
    assert not loop.running  # stop returns once the loop has ended: no round can follow


async def test_first_round_waits_an_interval_when_asked() -> None:
    ran = asyncio.Event()

    async def work() -> None:
        ran.set()

    loop = Periodic("late", work, interval_s=60, first_now=False)
    loop.start()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(ran.wait()), timeout=0.05)
    await loop.stop()  # stops at once, though the interval is a minute
    assert not ran.is_set()


async def test_stop_ends_a_loop_whose_work_swallows_cancellation() -> None:
    """redis-py can swallow a cancel mid-command; the stop event still ends the loop."""
    started = asyncio.Event()

    async def stubborn() -> None:
        started.set()
        # Swallowed, as a client library tidying its connection might.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()  # never set: only a cancel ends this round

    loop = Periodic("stubborn", stubborn, interval_s=0.01)
    loop.start()
    await asyncio.wait_for(started.wait(), timeout=10)
    await asyncio.wait_for(loop.stop(), timeout=10)


async def test_an_error_not_tolerated_ends_the_loop() -> None:
    calls = 0

    async def broken() -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("bug")

    loop = Periodic("broken", broken, interval_s=0.01)
    loop.start()
    await wait_for(lambda: not loop.running, within=10, what="the loop to end on its error")
    assert calls == 1
    await loop.stop()


async def test_a_watched_loop_that_ends_with_an_error_is_logged_at_once(caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> None:
        raise KeyError("a bug")

    task = watched(broken(), name="claim-loop")
    await asyncio.wait([task])
    await asyncio.sleep(0)  # done callbacks run on the loop's next turn
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.getMessage() for r in errors] == ["task claim-loop ended with an error and no longer runs"]
    assert errors[0].exc_info is not None and isinstance(errors[0].exc_info[1], KeyError)


async def test_a_watched_task_cancelled_or_ended_well_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    async def fine() -> None:
        return None

    done = watched(fine(), name="fine")
    cancelled = watched(asyncio.Event().wait(), name="waiting")
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.wait([done, cancelled])
    await asyncio.sleep(0)
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
