"""The producer's trace context travels with the job: through a delay, a retry and a requeue,
every claim hands the executor the traceparent stored at Submit."""

from __future__ import annotations

import dataclasses

import redis.asyncio as aioredis

from executor_service.store import Claim, claim, finish, promote_due
from shared import dead_letters, jobs
from shared.clock import now_ms
from shared.model import JobOptions, JobState, Progress
from shared.queue import Queue
from shared.settings import QueueSettings
from tests.queue_helpers import TENANT, command
from tests.support import wait_for

TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def claim_one(queue: Queue) -> Claim:
    async def one() -> Claim | None:
        await promote_due(queue)
        batch = await claim(queue, consumer="c", worker_id="w", count=1)
        return batch.claims[0] if batch.claims else None

    return await wait_for(one, within=10, what="a claim")


async def test_trace_survives_delay_retry_and_requeue(redis_client: aioredis.Redis) -> None:
    queue = Queue.open(redis_client, QueueSettings())
    await queue.ensure_groups()
    delayed = dataclasses.replace(command(), options=JobOptions(delay_ms=50))
    submitted = await jobs.submit(queue, delayed, tenant=TENANT, trace=TRACE)

    first = await claim_one(queue)  # promoted after its delay
    assert (first.job_id, first.trace) == (submitted.job_id, TRACE)
    progress = Progress(percentage=50, updated_at_ms=now_ms())
    assert await finish(queue, first, state=JobState.SCHEDULED, progress=progress, due_ms=now_ms() + 50)

    second = await claim_one(queue)  # the retry, promoted after its backoff
    assert (second.job.attempt, second.trace) == (2, TRACE)
    assert await finish(queue, second, state=JobState.FAILED, progress=progress, dead_letter_reason="network: out")

    await dead_letters.requeue_dead_letter(queue, submitted.job_id, tenant=TENANT)
    third = await claim_one(queue)  # requeued from the dead-letter queue
    assert (third.job.attempt, third.trace) == (1, TRACE)
