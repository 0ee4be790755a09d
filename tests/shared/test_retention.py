"""Retention against a real redis-server: counts, age, Clean, several cleaners at once, and the
artifacts of removed jobs (deleted with them, and by the orphan sweep) on both store backends."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from shared import jobs, retention
from shared.artifact_file import FileArtifactStore
from shared.artifact_store import ArtifactStore, open_store
from shared.clock import now_ms
from shared.errors import ArtifactStoreUnavailable
from shared.keys import ALERTS_GROUP, GROUP
from shared.model import JobState, Priority, Progress
from shared.queue import Queue
from shared.settings import ArtifactSettings, QueueSettings
from tests.artifact_helpers import BACKENDS, finished_job, fresh_store, put_all, settings_for
from tests.queue_helpers import TENANT, command, run_jobs, submit_jobs
from tests.support import free_port


@pytest.fixture
async def queue(redis_client: aioredis.Redis) -> AsyncIterator[Queue]:
    q = Queue.open(redis_client, QueueSettings(remove_on_complete=3, remove_on_fail=2, retention_days=7))
    await q.ensure_groups()
    yield q


async def keys_of(queue: Queue, job_id: str) -> list[str]:
    found = [str(k) async for k in queue.redis.scan_iter(match=f"*{job_id}*")]
    for index in (queue.keys.tenant_jobs(TENANT), queue.keys.tenant_tag(TENANT, "smoke")):
        if await queue.redis.zscore(index, job_id) is not None:
            found.append(index)
    for zset in (queue.keys.completed, queue.keys.failed, queue.keys.dlq):
        if await queue.redis.zscore(zset, job_id) is not None:
            found.append(zset)
    return found


async def test_keeps_the_newest_n_per_outcome_and_removes_everything_of_the_rest(queue: Queue) -> None:
    ids = await submit_jobs(queue, 6, tags=("smoke",))
    done = await run_jobs(queue, 5)
    failed = await run_jobs(queue, 1, state=JobState.FAILED)
    assert done + failed == ids
    # Jobs finished in one millisecond tie; give them distinct finish times, oldest first.
    base = now_ms()
    await queue.redis.zadd(queue.keys.completed, {job_id: base + i for i, job_id in enumerate(done)})
    assert await keys_of(queue, ids[0])  # hash, progress stream, indexes

    assert await retention.enforce(queue) == 2
    for gone in done[:2]:
        assert await keys_of(queue, gone) == []
    for kept in [*done[2:], *failed]:
        assert (await jobs.get_job(queue, kept, tenant=TENANT)).state.terminal
    assert await queue.redis.zcard(queue.keys.completed) == 3
    assert await retention.enforce(queue) == 0


async def test_jobs_older_than_the_retention_age_go(queue: Queue) -> None:
    await submit_jobs(queue, 2)
    await run_jobs(queue, 2)
    assert await retention.enforce(queue) == 0
    later = now_ms() + 7 * retention.DAY_MS + 1
    assert await retention.enforce(queue, now=later) == 2
    assert await queue.redis.zcard(queue.keys.completed) == 0


async def test_idempotency_key_goes_with_its_job(queue: Queue) -> None:
    first = await jobs.submit(queue, command(idempotency_key="k1"), tenant=TENANT)
    await run_jobs(queue, 1)
    assert await queue.redis.get(queue.keys.idempotency(TENANT, "k1")) == first.job_id
    assert await retention.clean(queue) == 1
    assert await queue.redis.get(queue.keys.idempotency(TENANT, "k1")) is None
    again = await jobs.submit(queue, command(idempotency_key="k1"), tenant=TENANT)
    assert not again.duplicate and again.job_id != first.job_id


async def test_clean_by_state_age_and_limit(queue: Queue) -> None:
    await submit_jobs(queue, 6)
    completed = await run_jobs(queue, 3)
    failed = await run_jobs(queue, 2, state=JobState.FAILED)
    timed_out = await run_jobs(queue, 1, state=JobState.TIMEOUT)
    assert await retention.clean(queue, older_than_ms=3_600_000) == 0  # all are younger than an hour
    assert await retention.clean(queue, state=JobState.TIMEOUT) == 1
    assert await keys_of(queue, timed_out[0]) == []
    assert await retention.clean(queue, state=JobState.COMPLETED, limit=2) == 2
    assert await queue.redis.zcard(queue.keys.completed) == 1
    assert await retention.clean(queue) == 3
    for job_id in [*completed, *failed]:
        assert await queue.redis.exists(queue.keys.job(job_id)) == 0
    with pytest.raises(ValueError, match="only finished"):
        await retention.clean(queue, state=JobState.RUNNING)


async def test_clean_for_one_tenant_leaves_the_others(queue: Queue) -> None:
    await submit_jobs(queue, 2)
    other = await jobs.submit(queue, command(), tenant="other")
    await run_jobs(queue, 3)
    assert await retention.clean(queue, tenant="other") == 1
    assert await queue.redis.exists(queue.keys.job(other.job_id)) == 0
    assert await queue.redis.zcard(queue.keys.completed) == 2


async def test_several_cleaners_at_once_remove_each_job_once(queue: Queue, redis_client: aioredis.Redis) -> None:
    settings = dataclasses.replace(queue.settings, remove_on_complete=10, clean_interval_ms=60_000)
    await submit_jobs(queue, 1200)
    while await run_jobs(queue, 500):
        pass
    replicas = [retention.Cleaner(Queue.open(redis_client, settings)) for _ in range(3)]
    # The lock lets one replica per interval do the pass …
    outcomes = await asyncio.gather(*(r.run_once() for r in replicas))
    assert sorted(outcomes, key=lambda x: -1 if x is None else x) == [None, None, 1190]
    # … and passes racing without it (an expired lock) still remove each job exactly once.
    await submit_jobs(queue, 600)
    while await run_jobs(queue, 500):
        pass
    removed = await asyncio.gather(
        *(retention.enforce(r_queue) for r_queue in [Queue.open(redis_client, settings)] * 3)
    )
    assert sum(removed) == 600
    assert await queue.redis.zcard(queue.keys.completed) == 10
    assert await queue.redis.zcard(queue.keys.tenant_jobs(TENANT)) == 10


class SwallowingCleaner(retention.Cleaner):
    """A pass that swallows its cancellation, as redis-py can when a cancel lands mid-command."""

    def __init__(self, queue: Queue) -> None:
        super().__init__(queue)
        self.started = asyncio.Event()

    async def run_once(self) -> int | None:
        if self.started.is_set():
            return None
        self.started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:  # once: a broken test then fails in bounded time
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        return None


async def test_stop_ends_the_cleaner_even_when_a_pass_swallows_the_cancel(queue: Queue) -> None:
    cleaner = SwallowingCleaner(queue)
    await cleaner.start()
    await asyncio.wait_for(cleaner.started.wait(), timeout=5)
    started = time.monotonic()
    await asyncio.wait_for(cleaner.stop(), timeout=10)
    assert time.monotonic() - started < 2, "stop waited for the next pass instead of ending the loop"


# --- artifacts go with their jobs ------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    return await fresh_store(settings_for(request, tmp_path))


async def stored_jobs(store: ArtifactStore) -> list[str]:
    return sorted({info.key.split("/")[0] for info in await store.list()})


async def test_retention_and_clean_delete_the_artifacts_of_the_jobs_they_remove(
    queue: Queue, store: ArtifactStore
) -> None:
    ids = [await finished_job(queue, state=JobState.COMPLETED) for _ in range(5)]
    for job_id in ids:
        await put_all(store, job_id, {"1/trace.zip": b"PK", "1/step-00-failure.png": b"png", "2/video.webm": b"v"})
    base = now_ms()
    await queue.redis.zadd(queue.keys.completed, {job_id: base + i for i, job_id in enumerate(ids)})

    assert await retention.enforce(queue, store=store) == 2  # keeps the newest 3
    assert await stored_jobs(store) == sorted(ids[2:])
    assert await retention.clean(queue, state=JobState.COMPLETED, limit=1, store=store) == 1
    assert await stored_jobs(store) == sorted(ids[3:])
    assert len(await store.list(ids[4])) == 3


async def test_a_store_that_fails_never_stops_retention(queue: Queue, caplog: pytest.LogCaptureFixture) -> None:
    unreachable = ArtifactSettings.from_env(
        {
            "SENTINEL_ARTIFACTS_URL": "s3://sentinel-nowhere",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
            "AWS_ACCESS_KEY_ID": "id",
            "AWS_SECRET_ACCESS_KEY": "secret",
        }
    )
    ids = [await finished_job(queue, state=JobState.FAILED) for _ in range(3)]
    assert await retention.clean(queue, store=open_store(unreachable)) == 3
    assert [await queue.redis.exists(queue.keys.job(job_id)) for job_id in ids] == [0, 0, 0]
    [warning] = [r for r in caplog.records if r.name == "shared.retention"]
    assert "could not delete the artifacts of 3 removed job(s)" in warning.getMessage()


class DownStore(FileArtifactStore):
    """A store whose every delete fails as an unreachable store's does."""

    calls = 0

    async def _delete_prefix(self, prefix: str) -> int:
        self.calls += 1
        await asyncio.sleep(0)
        raise ArtifactStoreUnavailable("artifact store down")


async def test_once_the_store_is_down_the_other_jobs_are_left_to_the_sweep(tmp_path: Path) -> None:
    store = DownStore(tmp_path, max_artifact_bytes=1)
    ids = [str(uuid.uuid4()) for _ in range(40)]
    assert await retention.delete_artifacts(store, ids) == 0
    assert store.calls <= retention.DELETE_CONCURRENCY  # the ones in flight when it failed, no more


async def test_the_orphan_sweep_deletes_artifacts_of_jobs_that_no_longer_exist(
    queue: Queue, store: ArtifactStore
) -> None:
    live = await finished_job(queue)
    gone = str(uuid.uuid4())
    other = {
        "not-a-job/readme.txt": b"kept",  # top-level names that are no job id are never touched
        f"{gone.upper()}/1/x.png": b"kept",
        f"{gone.replace('-', '')}/1/x.png": b"kept",
    }
    await put_all(store, live, {"1/trace.zip": b"PK"})
    await put_all(store, gone, {"1/trace.zip": b"PK", "2/step-01-failure.png": b"png"})
    for key, data in other.items():
        await store.put_bytes(key, data, content_type="text/plain")

    # Files written within the grace period are kept: a hybrid API's direct job has its files before
    # its record reaches Redis, in a memory the sweeping replica cannot see.
    assert await retention.sweep_orphans(queue, store) == 0
    assert f"{gone}/1/trace.zip" in {info.key for info in await store.list()}
    sweepers = [retention.OrphanSweeper(queue, store, interval_ms=60_000, grace_ms=0) for _ in range(2)]
    assert await sweepers[0].run_once() == 1
    assert await sweepers[1].run_once() is None  # one replica per interval
    assert sorted(info.key for info in await store.list()) == sorted([f"{live}/1/trace.zip", *other])
    assert await retention.sweep_orphans(queue, store, grace_ms=0) == 0


def test_job_ids_are_canonical_uuids() -> None:
    job_id = str(uuid.uuid4())
    assert retention.is_job_id(job_id)
    for name in (job_id.upper(), job_id.replace("-", ""), f"{{{job_id}}}", "job1", "", "artifacts"):
        assert not retention.is_job_id(name), name


async def consumers(queue: Queue, stream: str, group: str) -> dict[str, int]:
    """The group's consumers on `stream`, with how many entries each holds."""
    return {str(c["name"]): int(c["pending"]) for c in await queue.redis.xinfo_consumers(stream, group)}


async def test_consumers_that_hold_nothing_are_forgotten_and_one_holding_an_entry_never(queue: Queue) -> None:
    from executor_service.store import claim, finish

    await submit_jobs(queue, 3)
    await run_jobs(queue, 1, worker="gone")  # an executor that ran a job and stopped: holds nothing
    busy = (await claim(queue, consumer="busy", worker_id="busy", count=1)).claims  # holds one entry
    assert len(busy) == 1
    events = queue.keys.events
    await queue.redis.xgroup_create(events, ALERTS_GROUP, id="0", mkstream=True)
    read: Any = await queue.redis.xreadgroup(ALERTS_GROUP, "replica-gone", {events: ">"}, count=1000)
    await queue.redis.xack(events, ALERTS_GROUP, *[entry_id for entry_id, _ in read[0][1]])
    medium = queue.keys.stream(Priority.MEDIUM)
    assert await consumers(queue, medium, GROUP) == {"gone": 0, "busy": 1}

    assert await retention.forget_consumers(queue) == 0  # all of them read within the hour
    assert await retention.forget_consumers(queue, idle_ms=0) >= 2
    assert await consumers(queue, medium, GROUP) == {"busy": 1}  # its entry stays claimable by a reclaim
    assert await consumers(queue, events, ALERTS_GROUP) == {}
    for lane in queue.keys.lanes:
        assert set(await consumers(queue, lane, GROUP)) <= {"busy"}

    # The executor whose consumer went is still alive: its next claim makes it again.
    again = (await claim(queue, consumer="gone", worker_id="gone", count=5)).claims
    assert len(again) == 1 and "gone" in await consumers(queue, medium, GROUP)
    assert await finish(queue, busy[0], state=JobState.COMPLETED, progress=Progress(percentage=100))
    assert await consumers(queue, medium, GROUP) == {"gone": 1, "busy": 0}


async def test_forgetting_consumers_needs_no_group_or_stream_yet(redis_client: aioredis.Redis) -> None:
    queue = Queue.open(redis_client, QueueSettings())  # no groups made, no stream written
    assert await retention.forget_consumers(queue, idle_ms=0) == 0


async def test_a_cleaner_pass_forgets_idle_consumers(queue: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    await submit_jobs(queue, 1)
    await run_jobs(queue, 1, worker="gone")
    medium = queue.keys.stream(Priority.MEDIUM)
    assert "gone" in await consumers(queue, medium, GROUP)
    monkeypatch.setattr(retention, "CONSUMER_IDLE_MS", 0)
    await retention.Cleaner(queue).run_once()
    assert await consumers(queue, medium, GROUP) == {}
