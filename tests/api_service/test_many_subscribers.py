"""Thousands of StreamProgress subscribers opening at once on one API all stay open to the end.

A burst of calls arriving faster than the server takes them up waits in gRPC's queue of calls not
yet requested; past its default soft limit (1,000) gRPC dropped a growing share of them at random
(the client saw CANCELLED). And each new subscriber reads the job from Redis: thousands of reads
at once exceeded the connection pool (`MaxConnectionsError`, answered UNAVAILABLE). Here a burst of
subscribers over several connections must all get every event through the terminal one.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import grpc
import pytest

from executor_service.store import claim, finish, write_progress
from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared.model import JobState, Progress
from tests.api_service.conftest import Harness
from tests.queue_helpers import submit_jobs

SUBSCRIBERS = 2500
JOBS = 25
CHANNELS = 5


def channel(port: int, n: int) -> grpc.aio.Channel:
    # A channel argument of its own keeps each channel on its own connection (no shared subchannel).
    return grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=[("sentinel.test.channel", n)])


@pytest.mark.timeout(240)
async def test_a_burst_of_subscribers_all_receive_every_event_through_the_terminal_one(api: Harness) -> None:
    job_ids = await submit_jobs(api.queue, JOBS)
    channels = [channel(api.server.port, n) for n in range(CHANNELS)]
    stubs = [pb_grpc.TestExecutionStub(c) for c in channels]
    opened = 0
    all_open = asyncio.Event()
    ended: Counter[str] = Counter()

    async def follow(n: int) -> list[int]:
        nonlocal opened
        call = stubs[n % CHANNELS].StreamProgress(pb.StreamProgressRequest(job_id=job_ids[n % JOBS]))
        seen: list[int] = []
        try:
            async for event in call:
                if not seen:
                    opened += 1
                    if opened == SUBSCRIBERS:
                        all_open.set()
                seen.append(event.progress.percentage)
            ended["OK"] += 1
        except grpc.aio.AioRpcError as exc:
            ended[exc.code().name] += 1
            if not seen:
                all_open.set()  # this one never opened: no point waiting for the rest
        return seen

    followers = [asyncio.create_task(follow(n)) for n in range(SUBSCRIBERS)]
    try:
        async with asyncio.timeout(120):
            await all_open.wait()
        assert not ended, f"streams ended before their job did: {dict(ended)}"

        batch = await claim(api.queue, consumer="test", worker_id="test", count=JOBS)
        assert len(batch.claims) == JOBS
        for run in batch.claims:
            await write_progress(api.queue, run, Progress(percentage=50, message="halfway"))
            assert await finish(api.queue, run, state=JobState.COMPLETED, progress=Progress(percentage=100))
        async with asyncio.timeout(120):
            seen = await asyncio.gather(*followers)
    finally:
        for task in followers:
            task.cancel()
        for c in channels:
            await c.close()

    assert ended == Counter(OK=SUBSCRIBERS)
    # Queued at submit, RUNNING at claim, halfway, and the terminal event: every one, in order.
    assert Counter(tuple(s) for s in seen) == Counter({(0, 0, 50, 100): SUBSCRIBERS})
