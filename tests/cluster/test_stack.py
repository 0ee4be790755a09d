"""Real `sentinel api` and `sentinel executor` processes on a real Redis Cluster with SENTINEL_QUEUE_SHARDS=3:
runs of browser jobs over every shard, and a master killed with kill -9 mid-work."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis

from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared.access import KeyEntry, Role, hash_key, new_key
from shared.keys import ALERTS_GROUP
from shared.queue import Queue, connect
from shared.settings import QueueSettings, RedisSettings
from shared.shards import shard_of
from shared.stats import get_stats
from tests.cluster.cluster import Cluster, Node, start_cluster
from tests.e2e.conftest import FAILED, PAGES, Stack
from tests.e2e.helpers import request
from tests.support import serve_directory, wait_for, wait_for_blocking

SHARDS = 3
#: Short leases: a run whose executor lost its Redis node mid-run is taken over within seconds.
ENV = {
    "REDIS_CLUSTER": "true",
    "SENTINEL_QUEUE_SHARDS": str(SHARDS),
    "QUEUE_CONCURRENCY": "3",
    "QUEUE_LEASE_MS": "3000",
    "QUEUE_STALLED_INTERVAL_MS": "1000",
    "QUEUE_MAX_STALLED_COUNT": "5",
}


def tenants_on_every_shard() -> list[str]:
    """One tenant name per shard, shard 0 first."""
    found: dict[int, str] = {}
    for i in range(1000):
        found.setdefault(shard_of(f"team-{i}", SHARDS), f"team-{i}")
        if len(found) == SHARDS:
            return [found[s] for s in range(SHARDS)]
    raise AssertionError("no tenant for some shard")


@dataclass
class ClusterStack:
    stack: Stack
    cluster: Cluster
    keys: dict[str, str]  # tenant -> its admin API key

    def env(self) -> dict[str, str]:
        return ENV | {"SENTINEL_AUTH": "keys", "SENTINEL_API_KEYS_FILE": str(self.stack.directory / "keys.json")}


@pytest.fixture
def cluster_stack(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ClusterStack]:
    """Three masters with a replica each, the test pages, an API key per tenant; services the test starts."""
    tenants = tenants_on_every_shard()
    keys = {tenant: new_key() for tenant in tenants}
    entries = [KeyEntry(tenant=t, role=Role.parse("admin"), sha256=hash_key(k)).to_json() for t, k in keys.items()]
    (tmp_path / "keys.json").write_text(json.dumps({"keys": entries}))
    seen: list[str] = []
    with start_cluster(tmp_path / "cluster", replicas=1) as cluster, serve_directory(PAGES, seen=seen) as site:
        stack = Stack(redis=cluster, directory=tmp_path, site=site, seen=seen)  # type: ignore[arg-type]
        try:
            yield ClusterStack(stack=stack, cluster=cluster, keys=keys)
        finally:
            failed = request.node.stash.get(FAILED, False)
            codes = stack.stop_services(failed=failed)
            if failed or any(c not in (0, -signal.SIGTERM) for c in codes):
                sys.stderr.write(stack.logs())
            assert all(c == 0 for c in codes), f"a service did not exit cleanly on SIGTERM: {codes}"


@pytest.fixture
async def channel(cluster_stack: ClusterStack) -> AsyncIterator[grpc.aio.Channel]:
    env = cluster_stack.env()
    api = cluster_stack.stack.start("api", **env)
    cluster_stack.stack.start("executor", **env)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as opened:
        yield opened


def at_least(items: list[pb.QueueEvent], n: int) -> Callable[[], bool]:
    return lambda: len(items) >= n


def auth(key: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {key}"),)


def run_tests(site: str, n: int, *, wait_ms: int = 0) -> list[pb.RunTest]:
    steps: list[dict[str, object]] = [{"navigate": {"url": "/index.html"}}]
    if wait_ms:
        steps.append({"wait": {"ms": wait_ms}})
    return [pb.RunTest(definition=request(site, steps, name=f"t{i}").definition) for i in range(n)]


async def whole_queue(cluster: Cluster) -> Queue:
    return Queue.open(connect(RedisSettings(url=cluster.url, configured=True, cluster=True)), QueueSettings(shards=3))


async def test_runs_of_every_tenant_complete_over_three_shards(
    cluster_stack: ClusterStack, channel: grpc.aio.Channel
) -> None:
    jobs_api = pb_grpc.TestExecutionStub(channel)
    admin = pb_grpc.QueueAdminStub(channel)
    site = cluster_stack.stack.site
    watched: dict[str, list[pb.QueueEvent]] = {t: [] for t in cluster_stack.keys}

    async def watch(tenant: str) -> None:
        calls = admin.WatchEvents(
            pb.WatchEventsRequest(states=[pb.JOB_STATE_COMPLETED]), metadata=auth(cluster_stack.keys[tenant])
        )
        async for event in calls:
            watched[tenant].append(event)

    watchers = [asyncio.create_task(watch(t)) for t in cluster_stack.keys]
    runs: dict[str, pb.SubmitRunResponse] = {}
    try:
        for tenant, key in cluster_stack.keys.items():
            runs[tenant] = await jobs_api.SubmitRun(
                pb.SubmitRunRequest(name=tenant, tests=run_tests(site, 3), max_parallel=2),
                metadata=auth(key),
                timeout=10,
            )
        # Each run followed live with StreamRun (progress streams on its shard, through the API's hub).

        async def follow(tenant: str, key: str) -> tuple[set[str], pb.Run]:
            progressed: set[str] = set()
            stream = jobs_api.StreamRun(pb.StreamRunRequest(run_id=runs[tenant].run_id), metadata=auth(key))
            async for event in stream:
                if event.HasField("finished"):
                    return progressed, event.finished
                progressed.add(event.progress.job_id)
            raise AssertionError(f"the run of {tenant} ended without its finished event")

        followed = await asyncio.wait_for(
            asyncio.gather(*(follow(t, k) for t, k in cluster_stack.keys.items())), timeout=180
        )
        for tenant, (progressed, run) in zip(cluster_stack.keys, followed, strict=True):
            assert run.state == pb.RUN_STATE_PASSED, pb.RunState.Name(run.state)
            assert progressed == set(runs[tenant].job_ids), "progress of every test of the run"
        for tenant, key in cluster_stack.keys.items():
            figures = await admin.GetStats(pb.GetStatsRequest(), metadata=auth(key), timeout=10)
            assert (figures.completed, figures.waiting, figures.active) == (3, 0, 0)
            listed = await jobs_api.ListJobs(pb.ListJobsRequest(), metadata=auth(key), timeout=10)
            assert sorted(j.job_id for j in listed.jobs) == sorted(runs[tenant].job_ids)
            await wait_for(at_least(watched[tenant], 3), within=30, what=f"completed events of {tenant}")
            assert sorted(e.job_id for e in watched[tenant]) == sorted(runs[tenant].job_ids)
    finally:
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)

    queue = await whole_queue(cluster_stack.cluster)
    try:
        stats = await get_stats(queue)
        assert stats.completed == 9
        homes = {cluster_stack.cluster.node_of(queue.for_tenant(t).keys.events).port for t in cluster_stack.keys}
        assert len(homes) == 3, "each tenant's shard on its own master"
        for node in cluster_stack.cluster.masters():
            with node.client() as c:
                assert c.dbsize() > 0, f"master {node.port} holds none of the queue"
    finally:
        await queue.redis.aclose()


async def status(stub: pb_grpc.TestExecutionStub, job_id: str, key: str) -> pb.Job:
    return await stub.Status(pb.StatusRequest(job_id=job_id), metadata=auth(key), timeout=10)


async def wait_until(stub: pb_grpc.TestExecutionStub, job_id: str, key: str, state: int, *, within: float) -> None:
    seen: list[pb.Job] = []

    async def reached() -> bool:
        seen[:] = [await status(stub, job_id, key)]
        return seen[0].state == state

    def what() -> str:
        last = pb.JobState.Name(seen[0].state) if seen else "not seen"
        return f"job {job_id} to be {pb.JobState.Name(state)} (last seen {last})"

    await wait_for(reached, within=within, interval=0.2, what=what, ignoring=(grpc.RpcError,))


def replica_in_sync(master: Node) -> bool:
    """Whether the master's replica has received every write the master acknowledged."""
    with master.client() as c:
        info = c.info("replication")
    offsets = [int(v["offset"]) for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
    return bool(offsets) and all(o >= int(info["master_repl_offset"]) for o in offsets)


async def test_a_master_killed_mid_work_fails_over_and_the_queue_goes_on(
    cluster_stack: ClusterStack, channel: grpc.aio.Channel
) -> None:
    stub = pb_grpc.TestExecutionStub(channel)
    site = cluster_stack.stack.site
    cluster = cluster_stack.cluster
    before: dict[str, list[str]] = {}
    for tenant, key in cluster_stack.keys.items():
        reply = await stub.SubmitRun(
            pb.SubmitRunRequest(name=tenant, tests=run_tests(site, 2, wait_ms=1500)), metadata=auth(key), timeout=10
        )
        before[tenant] = list(reply.job_ids)
    victim, victim_key = next(iter(cluster_stack.keys.items()))
    await wait_until(stub, before[victim][0], victim_key, pb.JOB_STATE_RUNNING, within=60)

    queue = await whole_queue(cluster)
    events_key = queue.for_tenant(victim).keys.events
    await queue.redis.aclose()
    master = cluster.node_of(events_key)
    # Everything the master acknowledged is on its replica before the kill: an asynchronous replica
    # loses what it had not received yet (README, "Redis Cluster and shards").
    wait_for_blocking(
        lambda: replica_in_sync(master), within=30, what="the replica to have every write", ignoring=(redis.RedisError,)
    )
    cluster.kill(master)

    def promoted() -> bool:
        return cluster.node_of(events_key).port != master.port and all(
            "cluster_state:ok" in n.info("info") for n in cluster.live
        )

    await asyncio.to_thread(
        wait_for_blocking,
        promoted,
        within=60,
        interval=0.2,
        what="the killed master's replica to serve its slots",
        ignoring=(redis.RedisError, StopIteration),
    )

    # New work on every shard, the failed-over one included, completes; so does every job that was
    # waiting or running when the master died (a run cut off is taken over after its lease).
    after: dict[str, list[str]] = {}
    for tenant, key in cluster_stack.keys.items():

        async def submitted(tenant: str = tenant, key: str = key) -> pb.SubmitRunResponse:
            return await stub.SubmitRun(
                pb.SubmitRunRequest(name=f"{tenant}-after", tests=run_tests(site, 2)), metadata=auth(key), timeout=10
            )

        after[tenant] = list((await wait_for(submitted, within=60, ignoring=(grpc.RpcError,))).job_ids)
    for tenant, key in cluster_stack.keys.items():
        for job_id in before[tenant] + after[tenant]:
            await wait_until(stub, job_id, key, pb.JOB_STATE_COMPLETED, within=120)

    # The API's alerts consumers read on after the failover: every event of the failed-over shard,
    # those of the jobs that ended since included, is read and acknowledged by the `alerts` group.
    async def alerts_caught_up() -> bool:
        queue = await whole_queue(cluster)
        try:
            groups: list[dict[str, Any]] = await queue.redis.xinfo_groups(events_key)
            last = await queue.redis.xrevrange(events_key, count=1)
        finally:
            await queue.redis.aclose()
        group = next(g for g in groups if g["name"] == ALERTS_GROUP)
        return bool(last and group["pending"] == 0 and group["last-delivered-id"] == last[0][0])

    await wait_for(
        alerts_caught_up,
        within=30,
        what="the alerts consumers to read the failed-over shard",
        ignoring=(redis.RedisError,),
    )
