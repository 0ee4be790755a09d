"""Writing new jobs: chunks of a batch, and concurrent unary submits gathered into shared script calls."""

from __future__ import annotations

import asyncio
from typing import cast

import redis.asyncio as aioredis

from shared import codec, submits
from shared.errors import LimitError
from shared.jobs import get_job
from shared.model import JobState, Priority
from shared.queue import Queue
from shared.settings import QueueSettings
from shared.submits import NewJob, Submitter, submit_each
from tests.queue_helpers import command


async def evalsha_calls(redis: aioredis.Redis) -> int:
    stats = cast(dict[str, dict[str, int]], await redis.info("commandstats"))
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_concurrent_submits_share_script_calls_and_keep_each_outcome(redis_client: aioredis.Redis) -> None:
    queue = Queue.open(redis_client, QueueSettings(tenant_max_queued=3))
    submitter = Submitter(queue)
    await submitter.submit(command(), tenant="initech")  # alone: written at once (and the script loaded)
    before = await evalsha_calls(redis_client)
    wanted = [
        ("acme", command(name="a1", idempotency_key="k")),
        ("acme", command(name="a2", idempotency_key="k")),  # the same key: the first one's job
        ("globex", command(name="g1", priority=Priority.HIGH, tags=("smoke",))),
        ("acme", command(name="a3")),
        ("acme", command(name="a4")),
        ("acme", command(name="a5")),  # acme's fourth new job: over its limit of 3 queued
    ]
    made = await asyncio.gather(*(submitter.submit(c, tenant=t, trace=f"trace-{i}") for i, (t, c) in enumerate(wanted)))
    # All six wait while the first is being written: one shared script call per tenant.
    assert await evalsha_calls(redis_client) - before == 2

    a1, a2, g1, a3, a4, a5 = made
    assert not a1.duplicate and a2 == submits.Submitted(a1.job_id, duplicate=True)
    assert not a3.limited and not a4.limited and a5.limited and a5.job_id == ""
    for done, (tenant, c), trace in ((a1, wanted[0], "trace-0"), (g1, wanted[2], "trace-2"), (a4, wanted[4], "")):
        job = await get_job(queue, done.job_id, tenant=tenant)
        assert job.definition == c.definition and job.state is JobState.PENDING
        assert job.options.priority is c.options.priority and job.options.tags == c.options.tags
        if trace:
            raw = await redis_client.hget(queue.keys.job(done.job_id), "trace")
            assert raw == trace
    assert await redis_client.zcard(queue.keys.tenant_jobs("acme")) == 3
    assert await redis_client.zcard(queue.keys.tenant_tag("globex", "smoke")) == 1


async def test_submits_a_few_loop_turns_apart_share_one_write(redis_client: aioredis.Redis) -> None:
    queue = Queue.open(redis_client, QueueSettings())
    submitter = Submitter(queue)
    await submitter.submit(command(), tenant="initech")  # the script loaded
    before = await evalsha_calls(redis_client)

    async def after_turns(turns: int) -> submits.Submitted:
        for _ in range(turns):  # as a gRPC call takes a few turns to reach the servicer
            await asyncio.sleep(0)
        return await submitter.submit(command(name=f"after {turns}"), tenant="initech")

    made = await asyncio.gather(*(after_turns(t) for t in range(submits.GATHER_TURNS)))
    assert len({m.job_id for m in made}) == submits.GATHER_TURNS
    assert await evalsha_calls(redis_client) - before == 1


async def test_one_command_sent_by_two_tenants_makes_each_its_own_job(redis_client: aioredis.Redis) -> None:
    # One checked command serves every tenant sending the same request (shared.submit_checks).
    queue = Queue.open(redis_client, QueueSettings(tenant_max_queued=0))
    same = command(name="same", tags=("smoke",))
    tenants = ["acme", "globex", "acme", "globex"]
    made = await submit_each(queue, [NewJob(same, t, trace=f"trace-{i}") for i, t in enumerate(tenants)])
    for i, (tenant, m) in enumerate(zip(tenants, made, strict=True)):
        job = await get_job(queue, m.job_id, tenant=tenant)
        assert (job.job_id, job.metadata.tenant_id) == (m.job_id, tenant)
        assert await redis_client.hget(queue.keys.job(m.job_id), "trace") == f"trace-{i}"
    for tenant in ("acme", "globex"):
        assert await redis_client.zcard(queue.keys.tenant_jobs(tenant)) == 2
        assert await redis_client.zcard(queue.keys.tenant_tag(tenant, "smoke")) == 2


async def test_a_failed_write_fails_each_waiting_submit() -> None:
    broken = aioredis.Redis(port=1, socket_connect_timeout=0.5)  # nothing listens there
    submitter = Submitter(Queue.open(broken, QueueSettings()))
    outcomes = await asyncio.gather(
        *(submitter.submit(command(), tenant="t") for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(o, Exception) and not isinstance(o, LimitError) for o in outcomes)
    await broken.aclose()


async def test_a_batch_of_many_chunks_keeps_order_and_shares_records(redis_client: aioredis.Redis) -> None:
    queue = Queue.open(redis_client, QueueSettings(tenant_max_queued=0))
    same = command(name="same")
    new = [NewJob(same, "acme") if i % 2 else NewJob(command(name=f"job {i}"), "globex") for i in range(250)]
    made = await submit_each(queue, new)
    assert len({m.job_id for m in made}) == 250
    pipe = redis_client.pipeline(transaction=False)
    for m in made:
        pipe.hgetall(queue.keys.job(m.job_id))
    hashes = await pipe.execute()
    for i, raw in enumerate(hashes):
        job = codec.job_from_hash(raw)
        assert job.metadata.tenant_id == ("acme" if i % 2 else "globex")
        assert job.definition.name == ("same" if i % 2 else f"job {i}")
        assert job.job_id == made[i].job_id


async def test_a_job_whose_hash_has_other_fields_sends_them_by_name(redis_client: aioredis.Redis) -> None:
    queue = Queue.open(redis_client, QueueSettings())
    odd = command(name="odd")
    plain = submits.new_job_record(queue.settings, odd, job_id="x", tenant="acme", trace="", now=1)
    records = {(id(odd), "acme", "", False): {**plain, "note": "kept"}}
    call = submits.SubmitCall(queue, tenant="acme", now=1, records=records)
    first = call.add(command(name="usual"), trace="")
    second = call.add(odd, trace="")
    reply = await queue.scripts.submit(keys=call.keys, args=call.args)
    assert [s.job_id for s in submits.Submitted.from_replies(reply)] == [first, second]
    assert await redis_client.hget(queue.keys.job(second), "note") == "kept"
    assert await redis_client.hget(queue.keys.job(second), "name") == "odd"
    assert await redis_client.hget(queue.keys.job(first), "note") is None
    assert await redis_client.hget(queue.keys.job(first), "name") == "usual"


async def test_a_repeated_command_in_a_row_gets_its_own_id_and_trace_in_each_hash(
    redis_client: aioredis.Redis,
) -> None:
    queue = Queue.open(redis_client, QueueSettings(tenant_max_queued=0))
    same, other = command(name="same", tags=("smoke",)), command(name="other")
    order = [same, same, same, other, same, same]
    made = await submit_each(queue, [NewJob(c, "acme", trace=f"trace-{i}") for i, c in enumerate(order)])
    assert len({m.job_id for m in made}) == len(order)
    for i, (c, m) in enumerate(zip(order, made, strict=True)):
        job = await get_job(queue, m.job_id, tenant="acme")
        assert (job.job_id, job.definition, job.options.tags) == (m.job_id, c.definition, c.options.tags)
        assert await redis_client.hget(queue.keys.job(m.job_id), "trace") == f"trace-{i}"
    lane = cast(list[tuple[str, dict[str, str]]], await redis_client.xrange(queue.keys.stream(Priority.MEDIUM)))
    assert [entry["trace"] for _, entry in lane] == [f"trace-{i}" for i in range(len(order))]
    assert await redis_client.zcard(queue.keys.tenant_tag("acme", "smoke")) == 5
