"""A queue spread over three shards on a real three-master cluster: placement, and the whole queue seen as one."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from executor_service import store
from shared import dead_letters, jobs
from shared.events import QueueEvent, follow_events
from shared.model import JobState
from shared.queue import Queue, connect_blocking
from shared.settings import QueueSettings, RedisSettings
from shared.stats import get_stats
from shared.streams import StreamHub
from tests.cluster.cluster import Cluster
from tests.queue_helpers import command, run_jobs, submit_jobs
from tests.support import wait_for

TENANTS = [f"tenant-{i}" for i in range(12)]


async def test_shards_sit_on_different_masters_and_hold_their_tenants_jobs(
    cluster: Cluster, cluster_client: aioredis.Redis
) -> None:
    queue = Queue.open(cluster_client, QueueSettings(shards=3))
    await queue.ensure_groups()
    masters = {cluster.node_of(shard.keys.events).port for shard in queue.shards}
    assert len(masters) == 3, "the three shards' tags should fall on the three masters' slot ranges"

    submitted = {tenant: await submit_jobs(queue, 2, tenant=tenant) for tenant in TENANTS}
    for tenant, ids in submitted.items():
        home = queue.for_tenant(tenant)
        assert all(queue.for_job(job_id) == home for job_id in ids), "a job id must name its tenant's shard"
        assert (await jobs.get_job(queue, ids[0], tenant=tenant)).metadata.tenant_id == tenant
        assert {j.job_id for j in (await jobs.list_jobs(queue, tenant=tenant)).items} == set(ids)

    # A node's slots confirmed in use: every master holds keys in its shard's slot.
    for shard in queue.shards:
        node = cluster.node_of(shard.keys.events)
        with node.client() as c:
            slot = int(c.execute_command("CLUSTER", "KEYSLOT", shard.keys.events))
            assert int(c.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot)) > 0
    in_use = [n for n in cluster.masters() if n.client().dbsize() > 0]
    assert len(in_use) == 3

    stats = await get_stats(queue)
    assert stats.waiting == 2 * len(TENANTS)
    assert (await get_stats(queue, tenant=TENANTS[0])).waiting == 2

    ran = await run_jobs(queue, 100)  # one claim over every shard in turn
    assert sorted(ran) == sorted(i for ids in submitted.values() for i in ids)
    stats = await get_stats(queue)
    assert (stats.waiting, stats.completed, stats.total_processed) == (0, 2 * len(TENANTS), 2 * len(TENANTS))


async def test_dead_letters_page_across_shards_and_events_merge(
    cluster: Cluster, cluster_client: aioredis.Redis
) -> None:
    queue = Queue.open(cluster_client, QueueSettings(shards=3))
    await queue.ensure_groups()
    for tenant in TENANTS:
        await submit_jobs(queue, 1, tenant=tenant)
    failed = await run_jobs(queue, 100, state=JobState.FAILED, dead_letter_reason="attempts")
    assert len(failed) == len(TENANTS)

    seen: list[str] = []
    token = ""
    for _ in range(len(TENANTS)):
        page = await dead_letters.list_dead_letters(queue, tenant=None, page_size=5, page_token=token)
        seen += [job.job_id for job in page.items]
        token = page.next_token
        if not token:
            break
    assert sorted(seen) == sorted(failed), "every dead letter once, over pages spanning the shards"

    blocking = connect_blocking(RedisSettings(url=cluster.url, configured=True, cluster=True))
    hub = StreamHub(blocking, cluster_client, block_ms=30_000)
    await hub.start()
    got: list[QueueEvent] = []
    try:
        events = follow_events(queue, hub, states=[JobState.PENDING])

        async def collect() -> None:
            async for event in events:
                got.append(event)

        watcher = asyncio.create_task(collect())
        # Subscribed once the hub follows every shard's stream; then new jobs on every shard show up.
        await wait_for(lambda: hub.subscriber_count == 3, what="the watcher to follow the three shards")
        fresh = [(await jobs.submit(queue, command(), tenant=t)).job_id for t in TENANTS]
        await wait_for(lambda: len(got) >= len(fresh), within=20, what="an event of every new job")
        assert sorted(e.job_id for e in got) == sorted(fresh)
        # The last cursor holds every shard's position: resuming from it repeats nothing.
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        assert len(got[-1].cursor.split(",")) == 3
        resumed: list[QueueEvent] = []

        async def resume() -> None:
            async for event in follow_events(queue, hub, cursor=got[0].cursor, states=[JobState.PENDING]):
                resumed.append(event)

        again = asyncio.create_task(resume())
        await wait_for(lambda: len(resumed) >= len(fresh) - 1, within=20, what="the replay after the first event")
        again.cancel()
        await asyncio.gather(again, return_exceptions=True)
        assert sorted(e.job_id for e in resumed) == sorted(e.job_id for e in got[1:])
    finally:
        await hub.stop()
        await blocking.aclose()
    assert await store.next_due_ms(queue) is None


async def test_a_cancel_on_any_shard_reaches_a_subscriber_of_every_control_channel(
    cluster: Cluster, cluster_client: aioredis.Redis
) -> None:
    """What an executor does (executor_service.worker): one subscription to every shard's channel."""
    queue = Queue.open(cluster_client, QueueSettings(shards=3))
    await queue.ensure_groups()
    running = [(await jobs.submit(queue, command(), tenant=t)).job_id for t in TENANTS[:6]]
    claimed = await run_claims(queue, len(running))
    assert sorted(c.job_id for c in claimed) == sorted(running)
    assert len({queue.for_job(job_id).keys.tag for job_id in running}) == 3
    heard: list[str] = []
    async with cluster_client.pubsub() as pubsub:
        await pubsub.subscribe(*(shard.keys.control for shard in queue.shards))

        async def listen() -> None:
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    heard.append(str(message["data"]))

        listener = asyncio.create_task(listen())
        try:
            await wait_for(lambda: pubsub.subscribed, what="the subscription")
            for job_id in running:
                await jobs.cancel(queue, job_id, tenant=None)
            await wait_for(lambda: len(heard) >= len(running), within=20, what="a cancel message per job")
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
    assert sorted(heard) == sorted(f"cancel {job_id}" for job_id in running)


async def run_claims(queue: Queue, n: int) -> list[store.Claim]:
    claims: list[store.Claim] = []
    for turn in range(n):
        claims += (await store.claim(queue, consumer="w", worker_id="w", count=n - len(claims), start=turn)).claims
        if len(claims) == n:
            break
    return claims
