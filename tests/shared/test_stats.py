"""GetStats figures and GetHealth verdicts against a real redis-server."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from executor_service.store import claim
from shared import pausing
from shared.clock import now_ms
from shared.model import JobState, Priority
from shared.queue import Queue
from shared.queue_health import HealthStatus, evaluate
from shared.settings import QueueSettings
from shared.stats import get_stats, rate_figures
from tests.queue_helpers import run_jobs, submit_jobs


@pytest.fixture
async def queue(redis_client: aioredis.Redis) -> AsyncIterator[Queue]:
    q = Queue.open(redis_client, QueueSettings())
    await q.ensure_groups()
    yield q


async def test_empty_queue_has_zero_figures(queue: Queue) -> None:
    stats = await get_stats(queue)
    assert (stats.waiting, stats.active, stats.completed, stats.failed, stats.delayed) == (0, 0, 0, 0, 0)
    assert stats.processing_rate == 0 and stats.last_processed_at_ms == 0 and not stats.paused
    assert evaluate(stats, queue.settings, now=now_ms()).status is HealthStatus.HEALTHY


async def test_stats_per_lane_and_totals(queue: Queue) -> None:
    await submit_jobs(queue, 4, priority=Priority.HIGH)
    await submit_jobs(queue, 4, priority=Priority.LOW)
    await submit_jobs(queue, 2, priority=Priority.MEDIUM, delay_ms=60_000)
    await run_jobs(queue, 2, execution_ms=100)  # two high ones complete
    await run_jobs(queue, 1, state=JobState.FAILED, execution_ms=300)  # a high one fails
    await run_jobs(queue, 1, state=JobState.FAILED, execution_ms=200, dead_letter_reason="attempts exhausted")
    await claim(queue, consumer="c", worker_id="w", count=1)  # one low one runs
    before = now_ms()
    stats = await get_stats(queue)

    lanes = {lane.priority: lane for lane in stats.lanes}
    high, medium, low = lanes[Priority.HIGH], lanes[Priority.MEDIUM], lanes[Priority.LOW]
    assert (high.waiting, high.active, high.delayed) == (0, 0, 0)
    assert (high.completed, high.failed, high.dead_lettered) == (2, 2, 1)
    assert (high.total_processed, high.total_failed, high.failed_last_hour) == (4, 2, 2)
    assert high.avg_processing_time_ms == pytest.approx((100 + 100 + 300 + 200) / 4, abs=0.1)
    assert high.processing_rate > 0 and before - 5000 < high.last_processed_at_ms <= before
    assert (medium.waiting, medium.active, medium.delayed, medium.total_processed) == (0, 0, 2, 0)
    assert (low.waiting, low.active, low.completed, low.total_processed) == (3, 1, 0, 0)
    assert low.processing_rate == 0 and low.last_processed_at_ms == 0 and low.avg_processing_time_ms == 0
    assert before - 5000 < low.waiting_since_ms <= before and high.waiting_since_ms == 0
    # The queue's figures are the lanes' summed.
    assert (stats.waiting, stats.active, stats.delayed, stats.completed, stats.failed) == (3, 1, 2, 2, 2)
    assert (stats.dead_lettered, stats.total_processed, stats.total_failed, stats.failed_last_hour) == (1, 4, 2, 2)
    assert stats.avg_processing_time_ms == high.avg_processing_time_ms
    assert stats.processing_rate == high.processing_rate
    assert stats.last_processed_at_ms == high.last_processed_at_ms
    assert stats.waiting_since_ms == low.waiting_since_ms and stats.tenant == ""


async def test_a_tenant_sees_only_its_own_figures(queue: Queue) -> None:
    await submit_jobs(queue, 3, tenant="acme", priority=Priority.HIGH)
    await submit_jobs(queue, 5, tenant="globex", priority=Priority.HIGH)
    await submit_jobs(queue, 1, tenant="globex", priority=Priority.LOW)
    await run_jobs(queue, 4)  # acme's three, then one of globex's (in submit order within the lane)
    acme = await get_stats(queue, tenant="acme")
    globex = await get_stats(queue, tenant="globex")
    whole = await get_stats(queue)
    assert acme.tenant == "acme" and globex.tenant == "globex"
    assert (acme.waiting, acme.completed, acme.total_processed) == (0, 3, 3)
    assert (globex.waiting, globex.completed, globex.total_processed) == (5, 1, 1)
    assert [lane.waiting for lane in globex.lanes] == [4, 0, 1]
    assert (whole.waiting, whole.completed, whole.total_processed) == (5, 4, 4)
    nobody = await get_stats(queue, tenant="initech")
    assert (nobody.waiting, nobody.completed, nobody.total_processed) == (0, 0, 0)


async def test_paused_shows_in_stats_and_health(queue: Queue) -> None:
    await submit_jobs(queue, 2)
    assert await pausing.pause(queue)
    assert not await pausing.pause(queue)  # already paused: no second event
    stats = await get_stats(queue)
    assert stats.paused
    health = evaluate(stats, queue.settings, now=now_ms())
    assert health.status is HealthStatus.DEGRADED
    assert any(r.startswith("paused") for r in health.reasons)
    # Paused: nothing is claimed, the jobs keep waiting.
    assert (await claim(queue, consumer="c", worker_id="w", count=5)).claims == []
    assert await pausing.resume(queue)
    assert not (await get_stats(queue)).paused
    assert len((await claim(queue, consumer="c", worker_id="w", count=5)).claims) == 2


async def test_thresholds_make_the_queue_degraded(queue: Queue) -> None:
    settings = dataclasses.replace(QueueSettings(), max_waiting=2, max_active=1, max_failed=1)
    await submit_jobs(queue, 7)
    await run_jobs(queue, 2, state=JobState.FAILED)
    await claim(queue, consumer="c", worker_id="w", count=2)
    health = evaluate(await get_stats(queue), settings, now=now_ms())
    assert health.status is HealthStatus.DEGRADED
    text = " | ".join(health.reasons)
    assert "waiting: 3 > QUEUE_MAX_WAITING 2" in text
    assert "active: 2 > QUEUE_MAX_ACTIVE 1" in text
    assert "failed: 2 in the last hour > QUEUE_MAX_FAILED 1" in text


async def test_work_waiting_with_no_activity_is_unhealthy(queue: Queue) -> None:
    await submit_jobs(queue, 1)
    stats = await get_stats(queue)
    now = now_ms()
    assert evaluate(stats, queue.settings, now=now).status is HealthStatus.HEALTHY
    later = evaluate(stats, queue.settings, now=now + queue.settings.stale_after_ms + 1000)
    assert later.status is HealthStatus.UNHEALTHY
    assert later.reasons[0].startswith("stale: no job claimed or finished for 5 min while 1 wait")
    # A paused queue is not stale: nobody is supposed to take its work.
    paused = dataclasses.replace(stats, paused=True)
    assert (
        evaluate(paused, queue.settings, now=now + 10 * queue.settings.stale_after_ms).status is HealthStatus.DEGRADED
    )


async def test_a_backlog_the_rate_cannot_clear_is_degraded(queue: Queue) -> None:
    stats = await get_stats(queue)
    slow = dataclasses.replace(
        stats,
        waiting=50,
        waiting_since_ms=now_ms(),
        processing_rate=1.0,
        last_processed_at_ms=now_ms(),
    )
    health = evaluate(slow, queue.settings, now=now_ms())
    assert health.status is HealthStatus.DEGRADED
    assert health.reasons[0].startswith("backlog: 50 waiting at 1 jobs/min")


def test_rate_counts_only_recent_minutes() -> None:
    now = 1000 * 60_000 + 30_000  # half-way through minute 1000
    metrics = {"rm:40": "1000", "rp:40": "9", "rf:40": "1", "rm:39": "999", "rp:39": "6", "rf:39": "0"}
    metrics |= {"rm:30": "930", "rp:30": "100", "rf:30": "7"}  # 70 minutes old: in neither window
    metrics |= {"rm:10": "970", "rp:10": "50", "rf:10": "2"}  # 30 minutes old: failures only
    rate, failed = rate_figures(metrics, now)
    assert rate == pytest.approx(15 / 4.5, abs=0.001)
    assert failed == 3


async def test_a_cancel_is_counted_as_cancelled_never_as_a_failure(queue: Queue) -> None:
    """An operator cancelling runs says nothing of the site: the failure figures, and health's
    failures of the last hour (QUEUE_MAX_FAILED), leave cancels out."""
    await submit_jobs(queue, 3)
    await run_jobs(queue, 2, state=JobState.CANCELLED, execution_ms=50)
    await run_jobs(queue, 1, state=JobState.FAILED, execution_ms=50)
    stats = await get_stats(queue)
    assert (stats.failed, stats.cancelled) == (1, 2)
    assert (stats.total_processed, stats.total_failed, stats.total_cancelled, stats.failed_last_hour) == (3, 1, 2, 1)
    strict = dataclasses.replace(queue.settings, max_failed=1)
    assert evaluate(stats, strict, now=now_ms()).status is HealthStatus.HEALTHY  # 1 failure: not over 1
