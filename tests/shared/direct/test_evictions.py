"""The artifacts of direct jobs the API's table evicts: deleted in the background in direct mode,
left to Redis's retention in hybrid mode once the job is written back, kept when the API stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import redis.exceptions

from shared import codec, jobs, retention, script_calls
from shared.artifact_file import FileArtifactStore
from shared.artifact_store import ArtifactStore
from shared.direct import writeback
from shared.direct.evictions import EvictedArtifacts
from shared.direct.execution import DirectExecution
from shared.direct.table import DirectJob, JobTable
from shared.direct.writeback import WriteBack
from shared.errors import ArtifactStoreUnavailable
from shared.model import JobState, Progress
from shared.queue import Queue
from shared.script_calls import Call
from shared.settings import ClientSettings, ExecutionMode, ExecutionSettings, QueueSettings
from tests.queue_helpers import command
from tests.support import wait_for

NOW = 1_700_000_000_000
MAX_BYTES = 10 * 1024 * 1024
#: Job ids as the API makes them (uuids), so the orphan sweep would look at them too.
IDS = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(5)]


class StalledStore(FileArtifactStore):
    """A file store whose deletes wait for `go`, or fail with `error`."""

    def __init__(self, root: Path, *, error: Exception | None = None) -> None:
        super().__init__(root, max_artifact_bytes=MAX_BYTES)
        self.go = asyncio.Event()
        self.error = error
        self.deleting: list[str] = []

    async def _delete_prefix(self, prefix: str) -> int:
        self.deleting.append(prefix)
        await self.go.wait()
        if self.error is not None:
            raise self.error
        return await super()._delete_prefix(prefix)


def add(table: JobTable, job_id: str) -> DirectJob:
    record = jobs.new_job_record(QueueSettings(), command(), job_id=job_id, tenant="acme", trace="", now=NOW)
    return table.add(codec.job_from_hash(record), record, "")


def finish(table: JobTable, entry: DirectJob) -> None:
    done = replace(entry.job, state=JobState.FAILED, finished_at_ms=NOW + 10, progress=Progress(percentage=100))
    table.update(entry, done)


async def with_artifacts(store: ArtifactStore, job_id: str) -> None:
    for name in ("1/trace.zip", "1/step-01-failure.png"):
        await store.put_bytes(f"{job_id}/{name}", b"evidence", content_type="")


async def kept(store: ArtifactStore, job_id: str) -> Sequence[str]:
    return [i.key for i in await store.list(job_id)]


async def test_an_evicted_jobs_artifacts_are_deleted_in_the_background_and_the_others_kept(tmp_path: Path) -> None:
    store = StalledStore(tmp_path / "artifacts")
    evictions = EvictedArtifacts(store)
    table = JobTable(max_jobs=2)
    table.on_evict = evictions.evicted
    first, second = add(table, IDS[0]), add(table, IDS[1])
    for job_id in IDS[:2]:
        await with_artifacts(store, job_id)
    finish(table, first)

    add(table, IDS[2])  # evicts the first; the submit does not wait for the store
    assert table.find(IDS[0], tenant=None) is None
    await wait_for(lambda: store.deleting == [IDS[0]], within=5, what="the evicted job's delete to start")
    assert len(await kept(store, IDS[0])) == 2  # still under way
    store.go.set()
    await evictions.stop()
    assert await kept(store, IDS[0]) == []
    assert len(await kept(store, IDS[1])) == 2 and second.job.state is JobState.PENDING


async def test_a_store_that_fails_a_delete_is_logged_and_the_table_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = StalledStore(tmp_path / "artifacts", error=ArtifactStoreUnavailable("the store is away"))
    store.go.set()
    evictions = EvictedArtifacts(store)
    table = JobTable(max_jobs=1)
    table.on_evict = evictions.evicted
    finish(table, add(table, IDS[0]))
    await with_artifacts(store, IDS[0])
    with caplog.at_level(logging.WARNING, logger="shared.direct.evictions"):
        add(table, IDS[1])
        await evictions.stop()
    assert f"could not delete the artifacts of evicted direct job {IDS[0]}" in caplog.text
    assert "the store is away" in caplog.text
    assert len(table) == 1 and len(await kept(store, IDS[0])) == 2


HybridParts = tuple[FileArtifactStore, Queue, JobTable, WriteBack, EvictedArtifacts]


def hybrid(tmp_path: Path, redis_client: aioredis.Redis, *, max_jobs: int) -> HybridParts:
    """A hybrid API's parts: a table of `max_jobs`, its write-back to Redis, and the deletes of evictions."""
    store = FileArtifactStore(tmp_path / "artifacts", max_artifact_bytes=MAX_BYTES)
    queue = Queue.open(redis_client, QueueSettings())
    table = JobTable(max_jobs=max_jobs)
    back = WriteBack(queue, table)
    evictions = EvictedArtifacts(store, writeback=back)
    table.on_evict = evictions.evicted
    return store, queue, table, back, evictions


async def test_in_hybrid_mode_a_written_back_job_is_redis_and_its_retention_deletes_its_artifacts_once(
    tmp_path: Path, redis_client: aioredis.Redis
) -> None:
    store, queue, table, back, evictions = hybrid(tmp_path, redis_client, max_jobs=2)
    written, unwritten = add(table, IDS[0]), add(table, IDS[1])
    for job_id in IDS[:2]:
        await with_artifacts(store, job_id)
    finish(table, written)
    await back.run_once()
    finish(table, unwritten)  # ended after the pass: Redis has no record of it
    assert written.written and not unwritten.written

    add(table, IDS[2])  # evicts the written-back job: Redis's to clean, so its files stay
    await evictions.stop()
    assert len(await kept(store, IDS[0])) == 2
    finish(table, table.get(IDS[2], tenant=None))
    add(table, IDS[3])  # evicts the job never written back: no one else knows of it, so its files go
    await evictions.stop()
    assert await kept(store, IDS[1]) == []

    # Redis's retention removes the written-back job and deletes its artifacts, as any job's.
    assert await retention.trim_excess(queue, queue.keys.failed, keep=0, store=store) == 1
    assert await kept(store, IDS[0]) == []


async def one_finished(tmp_path: Path, redis_client: aioredis.Redis) -> tuple[HybridParts, DirectJob]:
    """A hybrid API's parts with a table of one job, finished, with artifacts and not written back yet."""
    parts = hybrid(tmp_path, redis_client, max_jobs=1)
    store, _, table, _, _ = parts
    entry = add(table, IDS[0])
    await with_artifacts(store, IDS[0])
    finish(table, entry)
    return parts, entry


async def test_an_eviction_during_a_write_back_pass_waits_for_it_to_know_who_owns_the_job(
    tmp_path: Path, redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    (store, queue, table, back, evictions), entry = await one_finished(tmp_path, redis_client)

    writing, go = asyncio.Event(), asyncio.Event()
    real = writeback.write_back

    async def slow_write_back(queue: Queue, entries: list[DirectJob]) -> int:
        writing.set()
        await go.wait()
        return await real(queue, entries)

    monkeypatch.setattr(writeback, "write_back", slow_write_back)
    passing = asyncio.create_task(back.run_once())
    await asyncio.wait_for(writing.wait(), timeout=5)
    add(table, IDS[1])  # evicted while the pass that writes it is under way
    assert table.find(IDS[0], tenant=None) is None and not entry.written
    await asyncio.sleep(0)
    go.set()
    await passing
    await evictions.stop()
    assert entry.written and len(await kept(store, IDS[0])) == 2
    assert await redis_client.exists(queue.keys.job(IDS[0]))


def break_passes(monkeypatch: pytest.MonkeyPatch, *, after_redis_ran: bool) -> None:
    """Write-back passes lose their connection: after Redis ran their calls, or before it got them."""
    real = script_calls.call_each

    async def broken(client: aioredis.Redis, script: Any, calls: Iterable[Call]) -> list[Any]:
        if after_redis_ran:
            await real(client, script, calls)
        raise redis.exceptions.ConnectionError("Connection closed by server.")

    monkeypatch.setattr(writeback, "call_each", broken)


async def test_a_job_a_broken_write_back_pass_left_in_redis_keeps_its_artifacts_when_evicted(
    tmp_path: Path, redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    (store, queue, table, back, evictions), entry = await one_finished(tmp_path, redis_client)
    break_passes(monkeypatch, after_redis_ran=True)
    await back.run_once()  # Redis ran adopt.lua; the reply never came back
    assert not entry.written and await redis_client.exists(queue.keys.job(IDS[0]))

    add(table, IDS[1])  # evicts it: Redis holds its record, so Redis's retention owns its files
    await evictions.stop()
    assert len(await kept(store, IDS[0])) == 2


async def test_a_job_a_broken_pass_never_wrote_loses_its_artifacts_and_kept_while_redis_cannot_tell(
    tmp_path: Path, redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (store, queue, table, back, evictions), first = await one_finished(tmp_path, redis_client)
    await with_artifacts(store, IDS[1])
    break_passes(monkeypatch, after_redis_ran=False)
    await back.run_once()
    assert not first.written and not await redis_client.exists(queue.keys.job(IDS[0]))
    add(table, IDS[1])  # evicts it: Redis says it has no such job, so no one else will delete its files
    await evictions.stop()
    assert await kept(store, IDS[0]) == []

    second = table.get(IDS[1], tenant=None)
    finish(table, second)
    await back.run_once()

    async def unreachable(*_: object) -> int:
        raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    monkeypatch.setattr(redis_client, "exists", unreachable)
    with caplog.at_level(logging.INFO, logger="shared.direct.evictions"):
        add(table, IDS[2])  # evicts the second while Redis cannot say whether it holds it
        await evictions.stop()
    assert len(await kept(store, IDS[1])) == 2  # left to the orphan sweep
    assert f"kept the artifacts of evicted direct job {IDS[1]}: Redis cannot tell" in caplog.text


async def test_direct_execution_deletes_evicted_jobs_artifacts_and_keeps_the_held_ones_when_it_stops(
    tmp_path: Path,
) -> None:
    store = FileArtifactStore(tmp_path / "artifacts", max_artifact_bytes=MAX_BYTES)
    settings = ExecutionSettings(
        mode=ExecutionMode.DIRECT, executors=("127.0.0.1:1",), max_jobs=1, executor_client=ClientSettings()
    )
    direct = DirectExecution.open(settings, QueueSettings(), None, store=store)
    try:
        finish(direct.table, add(direct.table, IDS[0]))
        for job_id in IDS[:2]:
            await with_artifacts(store, job_id)
        finish(direct.table, add(direct.table, IDS[1]))  # evicts the first
    finally:
        await direct.stop()  # lets the delete under way finish
    assert await kept(store, IDS[0]) == []
    assert len(await kept(store, IDS[1])) == 2
