"""Every Lua script on a real Redis Cluster: its KEYS in one slot, no static key built from a prefix.

A cluster refuses a script whose keys span slots (CROSSSLOT, or redis-py's own check before it
sends), and one that reaches a key of a slot another node serves; so running each script through
the cluster client with a sharded queue proves the key plumbing, and the recorded KEYS of every call
are checked to share one slot (`shared.scripts` states the convention).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from executor_service import store
from shared import codec, dead_letters, jobs, pausing, retention, runs
from shared.clock import now_ms
from shared.direct.table import DirectJob
from shared.direct.writeback import write_back
from shared.keys import Keys
from shared.model import (
    JobOptions,
    JobResult,
    JobState,
    Progress,
    RunCommand,
    RunTestSpec,
)
from shared.queue import Queue
from shared.schedules import firing, history
from shared.schedules import store as store_schedules
from shared.scripts import Scripts
from shared.settings import QueueSettings, RateLimit, RateLimitSettings
from shared.shards import new_id, shard_of
from tests.queue_helpers import command
from tests.shared.schedules.helpers import spec as schedule_spec
from tests.support import wait_for

SCRIPTS = Path(__file__).parents[2] / "shared" / "scripts"
#: The queue's keys whose names never depend on data: a script must get them in KEYS.
STATIC = ("delayed", "dlq", "events", "completed", "failed", "paused", "cleaner_lock", "artifact_sweep_lock")


def static_keys(keys: Keys) -> set[str]:
    return {getattr(keys, name) for name in STATIC} | set(keys.lanes) | {keys.rate_log()}


def test_no_script_builds_a_static_key_from_a_prefix() -> None:
    """A prefix plus a literal and nothing after it is a fixed key: it belongs in KEYS."""
    fixed = re.compile(r"\w*(?:prefix|_format)\w*\s*\.\.\s*'[^']*'(?!\s*\.\.)")
    by_name = re.compile(r"ctx\.(" + "|".join(STATIC) + r")\b")
    found = []
    for path in sorted(SCRIPTS.glob("*.lua")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("--", 1)[0]
            if fixed.search(code) or by_name.search(code):
                found.append(f"{path.name}:{number}: {line.strip()}")
    assert not found, "static keys built inside scripts:\n" + "\n".join(found)


def test_the_context_carries_prefixes_never_a_whole_key() -> None:
    for shards in (1, 3):
        queue = Queue.open(aioredis.Redis(), QueueSettings(shards=shards))
        for shard in queue.shards:
            context = shard.context()
            assert not [key for key in static_keys(shard.keys) if f'"{key}"' in context], context


class Recording:
    """An AsyncScript that notes the KEYS of every call, then makes it."""

    def __init__(self, name: str, script: AsyncScript, calls: list[tuple[str, list[str]]]) -> None:
        self.name, self.inner, self.calls = name, script, calls
        self.script = script.script  # the Lua text, for Scripts.preload

    async def __call__(self, keys: Sequence[str] = (), args: Iterable[Any] = (), client: Any = None) -> Any:
        self.calls.append((self.name, list(keys)))
        return await self.inner(keys=list(keys), args=list(args), client=client)


def recording(queue: Queue, calls: list[tuple[str, list[str]]]) -> Queue:
    scripts = {f.name: Recording(f.name, getattr(queue.scripts, f.name), calls) for f in dataclasses.fields(Scripts)}
    return dataclasses.replace(queue, scripts=Scripts(**scripts))  # type: ignore[arg-type]


def done(state: JobState = JobState.COMPLETED) -> dict[str, Any]:
    now = now_ms()
    return {
        "state": state,
        "progress": Progress(percentage=100, total_steps=1, current_step=1, message=state.value, updated_at_ms=now),
        "result": JobResult(success=state is JobState.COMPLETED, execution_time_ms=5, completed_at_ms=now),
        "execution_ms": 5,
    }


async def claim_one(queue: Queue, job_id: str) -> store.Claim:
    async def probe() -> store.Claim | None:
        await store.promote_due(queue)
        batch = await store.claim(queue, consumer="w", worker_id="w", count=1)
        assert all(c.job_id == job_id for c in batch.claims), "claimed another job than the one waiting"
        return batch.claims[0] if batch.claims else None

    return await wait_for(probe, what=f"job {job_id} to be claimable")


async def test_every_script_runs_on_a_cluster_with_its_keys_in_one_slot(cluster_client: aioredis.Redis) -> None:
    calls: list[tuple[str, list[str]]] = []
    # Rate limits on (far above what runs here), so the limiters' start logs are written too.
    generous = RateLimit(max=1000, duration_ms=60_000)
    settings = QueueSettings(
        shards=3,
        lease_ms=300,
        stalled_interval_ms=100,
        max_stalled_count=5,
        rate_limits=RateLimitSettings(queue=generous, tenant=generous),
    )
    queue = recording(Queue.open(cluster_client, settings), calls)
    await queue.ensure_groups()

    # submit, claim, progress, heartbeat, finish: a job with tags and an idempotency key runs to its end.
    first = await jobs.submit(queue, command(tags=("smoke", "eu"), idempotency_key="k1"), tenant="acme")
    assert (await jobs.submit(queue, command(idempotency_key="k1"), tenant="acme")).duplicate
    c = await claim_one(queue, first.job_id)
    await store.write_progress(queue, c, Progress(percentage=50, total_steps=1, current_step=1, updated_at_ms=now_ms()))
    assert await store.heartbeat(queue, consumer="w", claims=[c]) == []
    assert await store.finish(queue, c, **done())

    # A retry waits in the delayed zset, promote puts it back; a failure then dead-letters it; a
    # requeue runs it again and purge takes the next dead letter out of the set.
    second = (await jobs.submit(queue, command(), tenant="globex")).job_id
    c = await claim_one(queue, second)
    assert await store.finish(queue, c, **(done(JobState.SCHEDULED) | {"result": None}), due_ms=now_ms())
    c = await claim_one(queue, second)
    assert await store.finish(queue, c, **done(JobState.FAILED), dead_letter_reason="attempts")
    assert [j.job_id for j in (await dead_letters.list_dead_letters(queue, tenant=None)).items] == [second]
    await dead_letters.requeue_dead_letter(queue, second, tenant=None)
    c = await claim_one(queue, second)
    assert await store.finish(queue, c, **done(JobState.FAILED), dead_letter_reason="attempts")
    assert await dead_letters.purge_dead_letters(queue, tenant=None) == 1

    # cancel: a waiting job at once, a running one through its executor's channel.
    waiting = (await jobs.submit(queue, command(), tenant="initech")).job_id
    assert (await jobs.cancel(queue, waiting, tenant=None)).state is JobState.CANCELLED
    running = (await jobs.submit(queue, command(), tenant="initech")).job_id
    c = await claim_one(queue, running)
    await jobs.cancel(queue, running, tenant=None)
    assert await store.finish(queue, c, **done(JobState.CANCELLED))

    # release hands a running job back; reclaim takes over one whose lease ran out.
    handed = (await jobs.submit(queue, command(), tenant="umbrella")).job_id
    c = await claim_one(queue, handed)
    assert await store.release(queue, c, reason="stopping")
    await claim_one(queue, handed)

    async def reclaimed() -> list[store.Claim]:
        return (await store.reclaim(queue, consumer="w2", worker_id="w2", count=5)).claims

    again = await wait_for(reclaimed, what="the stalled job to be reclaimed")
    assert [x.job_id for x in again] == [handed]
    assert await store.finish(queue, again[0], **done())

    # A run held back by max_parallel 1: ending its first test releases the second (run.lua).
    run = await runs.submit_run(
        queue,
        RunCommand(name="r", tests=(RunTestSpec(command().definition),) * 2, options=JobOptions(), max_parallel=1),
        tenant="hooli",
    )
    c = await claim_one(queue, run.job_ids[0])
    assert await store.finish(queue, c, **done())
    c = await claim_one(queue, run.job_ids[1])
    assert await store.finish(queue, c, **done())
    assert (await runs.get_run(queue, run.run_id, tenant="hooli")).finished_at_ms > 0
    # Cancelling a run is a MULTI on the run's keys (one slot), then a cancel per test.
    held = await runs.submit_run(
        queue,
        RunCommand(name="c", tests=(RunTestSpec(command().definition),) * 3, options=JobOptions(), max_parallel=1),
        tenant="hooli",
    )
    cancelled = await runs.cancel_run(queue, held.run_id, tenant="hooli")
    assert {t.state for t in cancelled.tests} == {JobState.CANCELLED}

    # A schedule lives on its tenant's shard (globex: not the first): saving it, and a fire that
    # submits its job in the same script.
    hourly = schedule_spec(interval_ms=3_600_000)
    schedule = await store_schedules.create_schedule(queue, hourly, tenant="globex", sealer=None)
    assert queue.for_job(schedule.schedule_id) == queue.for_tenant("globex") != queue.shards[0]
    fired = await firing.trigger_schedule(queue, schedule.schedule_id, tenant="globex")
    assert queue.for_job(fired.job_id) == queue.for_tenant("globex")
    assert fired.metadata.schedule_id == schedule.schedule_id
    c = await claim_one(queue, fired.job_id)
    assert await store.finish(queue, c, **done())
    # The end kept in the schedule's history, beside its runs list on the schedule's shard.
    await history.record_end(queue, await jobs.get_job(queue, fired.job_id, tenant="globex"))
    [ran] = (await store_schedules.get_schedule(queue, schedule.schedule_id, tenant="globex")).recent_runs
    assert ran.state is JobState.COMPLETED
    assert await firing.tick(queue) == 0  # every shard's due set read; nothing due for an hour

    # Hybrid mode writes a finished direct job back on its tenant's shard (adopt.lua).
    direct_id = new_id(shard_of("acme", 3), 3)
    record = jobs.new_job_record(settings, command(), job_id=direct_id, tenant="acme", trace="", now=now_ms())
    finished = dataclasses.replace(codec.job_from_hash(record), state=JobState.COMPLETED, finished_at_ms=now_ms())
    assert await write_back(queue, [DirectJob(job=finished, record=record, trace="", seq=1, max_events=10)]) == 1
    assert (await jobs.get_job(queue, direct_id, tenant="acme")).state is JobState.COMPLETED

    # pause and resume every shard; clean removes every finished job.
    assert await pausing.pause(queue)
    assert await pausing.resume(queue)
    assert await retention.clean(queue) >= 5
    # Every job has ended: the executors' consumers hold nothing, and an idle limit of 0 forgets them.
    assert await retention.forget_consumers(queue, idle_ms=0) >= 1

    for shard in queue.shards:  # every shard counted its starts in its own log (a third of the limit each)
        assert await cluster_client.exists(shard.keys.rate_log()) == 1
    used = {name for name, _ in calls}
    assert used == {f.name for f in dataclasses.fields(Scripts)}, f"scripts never called: {used}"
    for name, keys in calls:
        slots = {cluster_client.keyslot(k) for k in keys}  # type: ignore[attr-defined]
        assert len(slots) == 1, f"{name} declared keys in {len(slots)} slots: {keys}"


async def test_a_batch_of_several_script_calls_runs_on_a_cluster_whose_primaries_lost_the_script(
    cluster_client: aioredis.Redis,
) -> None:
    """250 jobs of one tenant are three submit.lua calls, which go in one cluster pipeline
    (`shared.script_calls`): the script is loaded first, so a primary that forgot it (a restart, a
    failover's new primary) still runs every call."""
    queue = Queue.open(cluster_client, QueueSettings(shards=3))
    await queue.ensure_groups()
    await cluster_client.script_flush()  # every primary
    submitted = await jobs.submit_many(queue, [command() for _ in range(250)], tenant="acme")
    assert len({s.job_id for s in submitted}) == 250
    for s in submitted[:: len(submitted) // 5]:
        assert (await jobs.get_job(queue, s.job_id, tenant="acme")).state is JobState.PENDING
