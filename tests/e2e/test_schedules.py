"""Schedules through real processes: three `sentinel api` replicas (one killed with SIGKILL on the
way) and an executor fire each fire time exactly once; a SKIP schedule whose test outlasts its
interval never has two runs at once; fires that fell while every replica was down are caught up.

Jobs are counted by their template's tag, and their fire times compared with the schedule's grid
(fire times of an interval schedule are created_at + k * interval)."""

from __future__ import annotations

import functools
import itertools
import signal
import time
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import json_format

from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from tests.e2e.conftest import Service, Stack
from tests.support import wait_for

pytestmark = pytest.mark.e2e

#: The replicas look for due schedules often, so a 1 s schedule is fired well within its second.
TICK = {"SENTINEL_SCHEDULER_TICK_MS": "200"}


def schedule(tag: str, *, interval_ms: int, overlap: str, wait_ms: int, catchup_ms: int = 0) -> pb.Schedule:
    return json_format.ParseDict(
        {
            "name": tag,
            "intervalMs": str(interval_ms),
            "overlap": overlap,
            "catchupWindowMs": str(catchup_ms),
            "template": {
                "definition": {"name": tag, "steps": [{"wait": {"ms": wait_ms}}]},
                "options": {"tags": [tag], "priority": "PRIORITY_HIGH"},
            },
        },
        pb.Schedule(),
    )


async def jobs_tagged(stub: pb_grpc.TestExecutionStub, tag: str) -> list[pb.Job]:
    return list((await stub.ListJobs(pb.ListJobsRequest(tag=tag, page_size=500), timeout=10)).jobs)


def grid_steps(schedule: pb.Schedule, jobs: list[pb.Job]) -> list[int]:
    """The k of each job's fire time created_at + k * interval, sorted; every fire time must be on the grid."""
    anchor = schedule.created_at.ToMilliseconds()
    steps = []
    for job in jobs:
        offset = job.fire_time.ToMilliseconds() - anchor
        assert offset % schedule.interval_ms == 0, f"fire time off the grid: {offset} ms after the anchor"
        steps.append(offset // schedule.interval_ms)
    return sorted(steps)


@pytest.fixture
async def channel_to(stack: Stack) -> AsyncIterator[dict[int, grpc.aio.Channel]]:
    opened: dict[int, grpc.aio.Channel] = {}
    try:
        yield opened
    finally:
        for channel in opened.values():
            await channel.close()


def open_channel(opened: dict[int, grpc.aio.Channel], service: Service) -> grpc.aio.Channel:
    opened[service.port] = grpc.aio.insecure_channel(f"127.0.0.1:{service.port}")
    return opened[service.port]


async def test_three_replicas_fire_each_time_once_through_a_kill_and_skip_never_overlaps(
    stack: Stack, channel_to: dict[int, grpc.aio.Channel]
) -> None:
    replicas = [stack.start("api", **TICK) for _ in range(3)]
    stack.start("executor")
    channel = open_channel(channel_to, replicas[0])
    schedules, jobs = pb_grpc.SchedulesStub(channel), pb_grpc.TestExecutionStub(channel)
    every = f"every-{uuid.uuid4().hex[:8]}"
    slow = f"slow-{uuid.uuid4().hex[:8]}"
    counted = await schedules.CreateSchedule(
        pb.CreateScheduleRequest(
            schedule=schedule(every, interval_ms=1000, overlap="OVERLAP_POLICY_ALLOW", wait_ms=50)
        ),
        timeout=10,
    )
    skipping = await schedules.CreateSchedule(
        pb.CreateScheduleRequest(
            schedule=schedule(slow, interval_ms=1000, overlap="OVERLAP_POLICY_SKIP", wait_ms=2500)
        ),
        timeout=10,
    )

    async def fired(n: int) -> list[pb.Job] | None:
        found = await jobs_tagged(jobs, every)
        return found if len(found) >= n else None

    await wait_for(lambda: fired(6), within=60, what="six fires of the 1 s schedule")
    killed = replicas[2]
    killed.process.send_signal(signal.SIGKILL)
    killed.process.wait(timeout=10)
    stack.services.remove(killed)  # killed on purpose: not a service that failed to stop cleanly
    await wait_for(lambda: fired(16), within=60, what="sixteen fires of the 1 s schedule")
    await schedules.PauseSchedule(pb.PauseScheduleRequest(schedule_id=counted.schedule_id), timeout=10)

    # Every fire time once, none missing (but possibly the first, due as the replicas started).
    steps = grid_steps(counted, await jobs_tagged(jobs, every))
    assert len(steps) == len(set(steps)), f"a fire time ran twice: {steps}"
    assert steps[0] <= 2 and steps == list(range(steps[0], steps[-1] + 1)), f"fire times missing: {steps}"
    assert all(
        j.source == pb.JOB_SOURCE_SCHEDULER and j.schedule_id == counted.schedule_id
        for j in await jobs_tagged(jobs, every)
    )

    # The slow schedule's runs (2.5 s each, fired every second) never overlap: each starts after the last ended.
    async def slow_runs(n: int) -> list[pb.Job] | None:
        found = await jobs_tagged(jobs, slow)
        return found if len(found) >= n else None

    await wait_for(lambda: slow_runs(3), within=90, what="three runs of the slow schedule")
    await schedules.PauseSchedule(pb.PauseScheduleRequest(schedule_id=skipping.schedule_id), timeout=10)

    async def slow_runs_ended() -> list[pb.Job] | None:
        found = await jobs_tagged(jobs, slow)
        return found if all(j.state == pb.JOB_STATE_COMPLETED for j in found) else None

    runs = sorted(
        await wait_for(slow_runs_ended, within=60, what="the slow runs to end"),
        key=lambda j: j.started_at.ToMilliseconds(),
    )
    for earlier, later in itertools.pairwise(runs):
        assert later.started_at.ToMilliseconds() >= earlier.finished_at.ToMilliseconds(), "two runs overlapped"
    shown = await schedules.GetSchedule(pb.GetScheduleRequest(schedule_id=skipping.schedule_id), timeout=10)
    assert any(r.skipped and "previous run" in r.reason for r in shown.recent_runs)


async def test_fires_missed_while_every_replica_was_down_are_caught_up(
    stack: Stack, channel_to: dict[int, grpc.aio.Channel]
) -> None:
    api = stack.start("api", **TICK)
    tag, dropped_tag = f"catchup-{uuid.uuid4().hex[:8]}", f"nocatchup-{uuid.uuid4().hex[:8]}"
    channel = open_channel(channel_to, api)
    schedules = pb_grpc.SchedulesStub(channel)
    made = await schedules.CreateSchedule(
        pb.CreateScheduleRequest(
            schedule=schedule(tag, interval_ms=1000, overlap="OVERLAP_POLICY_ALLOW", wait_ms=50, catchup_ms=60_000)
        ),
        timeout=10,
    )
    # No catch-up window: only fires at most a few seconds late (a slow replica, not a dead one) run.
    without = await schedules.CreateSchedule(
        pb.CreateScheduleRequest(
            schedule=schedule(dropped_tag, interval_ms=1000, overlap="OVERLAP_POLICY_ALLOW", wait_ms=50)
        ),
        timeout=10,
    )
    jobs = pb_grpc.TestExecutionStub(channel)
    # Both have fired before the stop, so the dropped fires show as a gap between runs before and after.
    for fired in (tag, dropped_tag):
        await wait_for(functools.partial(jobs_tagged, jobs, fired), within=30, what=f"a first fire of {fired}")
    await channel.close()
    assert api.stop() == 0
    stack.services.remove(api)
    down_at = int(time.time() * 1000)
    # Every replica stays down for eight fire times: longer than the grace a late fire has.
    await wait_for(lambda: time.time() * 1000 >= down_at + 8_000, within=30, interval=0.2, what="eight seconds down")
    up_at = int(time.time() * 1000)
    up = stack.start("api", **TICK)
    channel = open_channel(channel_to, up)
    jobs, schedules = pb_grpc.TestExecutionStub(channel), pb_grpc.SchedulesStub(channel)

    async def caught_up() -> bool:
        found = [*await jobs_tagged(jobs, tag), *await jobs_tagged(jobs, dropped_tag)]
        return sum(j.fire_time.ToMilliseconds() >= up_at for j in found) >= 2

    await wait_for(caught_up, within=60, what="a fire of each schedule after the restart")
    for paused in (made, without):
        await schedules.PauseSchedule(pb.PauseScheduleRequest(schedule_id=paused.schedule_id), timeout=10)

    found = await jobs_tagged(jobs, tag)
    steps = grid_steps(made, found)
    assert len(steps) == len(set(steps)) and steps == list(range(steps[0], steps[-1] + 1)), steps
    fell_while_down = [j for j in found if down_at < j.fire_time.ToMilliseconds() < up_at]
    assert len(fell_while_down) >= 7, "the fires of the downtime were not all run"
    assert all(j.created_at.ToMilliseconds() >= up_at for j in fell_while_down), "run before the restart?"

    dropped = grid_steps(without, await jobs_tagged(jobs, dropped_tag))
    assert len(dropped) == len(set(dropped)) and dropped != list(range(dropped[0], dropped[-1] + 1)), dropped
    shown = await schedules.GetSchedule(pb.GetScheduleRequest(schedule_id=without.schedule_id), timeout=10)
    assert any(r.skipped and "missed" in r.reason for r in shown.recent_runs)
