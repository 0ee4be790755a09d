"""Dispatch throughput on a Redis Cluster with 1 and 3 queue shards (SENTINEL_QUEUE_SHARDS).

Starts a private three-master Redis Cluster on 127.0.0.1 (redis-server --cluster-enabled yes, joined
by redis-cli --cluster create), then for each shard count runs `--processes` worker processes for
`--seconds`. Each process plays the API and an executor at once, with no browser: it submits jobs
(`shared.jobs.submit_many`, `--batch` at a time, for tenants spread over every shard) while it
claims (`executor_service.store.claim`) and finishes (`store.finish`) them, keeping at most
`--backlog` of its jobs unfinished. Dispatch throughput = jobs finished per second (each job is
three scripts: submit, claim, finish). Also the Redis CPU each master spent: with one shard one
master does all the queue's work, with three each does about a third, which is the headroom shards
buy once the clients are not the bottleneck. Writes bench/results/shards.json (or `--json OUT`).

Usage: .venv/bin/python -m bench.shards [--processes 3 --seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import multiprocessing
import tempfile
import time
from pathlib import Path

import redis

from bench.harness import result, write_result
from executor_service.store import claim, finish
from shared import jobs
from shared.model import JobOptions, JobState, Navigate, Progress, Step, SubmitCommand, TestDefinition
from shared.queue import Queue, connect
from shared.settings import QueueSettings, RedisSettings
from tests.cluster.cluster import start_cluster


def command() -> SubmitCommand:
    definition = TestDefinition(name="bench", steps=(Step(Navigate(url="https://example.test/")),))
    return SubmitCommand(definition=definition, options=JobOptions())


async def work(url: str, *, shards: int, worker: int, seconds: float, batch: int, backlog: int) -> int:
    """Submit, claim and finish jobs for `seconds`; returns how many finished."""
    client = connect(RedisSettings(url=url, configured=True, cluster=True))
    queue = Queue.open(client, QueueSettings(shards=shards, tenant_window=0, tenant_max_queued=0))
    name = f"w{worker}"
    await queue.ensure_groups()
    submitted = finished = 0
    turn = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if submitted - finished < backlog:
                # Tenants rotate, so the jobs spread over every shard as many teams' jobs would.
                tenant = f"tenant-{worker}-{submitted // batch % 64}"
                await jobs.submit_many(queue, [command() for _ in range(batch)], tenant=tenant)
                submitted += batch
            turn += 1
            got = await claim(queue, consumer=name, worker_id=name, count=batch, start=turn)
            done = Progress(percentage=100)
            ended = await asyncio.gather(
                *(finish(queue, c, state=JobState.COMPLETED, progress=done) for c in got.claims)
            )
            finished += sum(1 for ok in ended if ok)
    finally:
        await client.aclose()
    return finished


def _process(url: str, shards: int, worker: int, seconds: float, batch: int, backlog: int, out: object) -> None:
    finished = asyncio.run(work(url, shards=shards, worker=worker, seconds=seconds, batch=batch, backlog=backlog))
    out.put(finished)  # type: ignore[attr-defined]


@dataclasses.dataclass
class Measure:
    shards: int
    processes: int
    seconds: float
    finished: int
    jobs_per_s: float
    keys_per_master: list[int]
    cpu_s_per_master: list[float]  # Redis CPU (user + sys) each master spent during the run
    busiest_master_cpu_ms_per_1000_jobs: float


def cpu_seconds(port: int) -> float:
    with redis.Redis(port=port) as node:
        info = node.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def measure(url: str, masters: list[int], *, shards: int, processes: int, seconds: float, batch: int) -> Measure:
    for port in masters:
        with redis.Redis(port=port) as node:
            node.flushall()
    cpu_before = [cpu_seconds(port) for port in masters]
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_process, args=(url, shards, n, seconds, batch, batch * 4, out)) for n in range(processes)
    ]
    for p in procs:
        p.start()
    finished = sum(out.get(timeout=seconds + 120) for _ in procs)  # a process that died raises Empty here
    for p in procs:
        p.join(timeout=30)
    cpu = [round(cpu_seconds(port) - before, 2) for port, before in zip(masters, cpu_before, strict=True)]
    keys = []
    for port in masters:
        with redis.Redis(port=port) as node:
            keys.append(int(node.dbsize()))
    return Measure(
        cpu_s_per_master=cpu,
        busiest_master_cpu_ms_per_1000_jobs=round(max(cpu) * 1_000_000 / finished, 1) if finished else 0.0,
        shards=shards,
        processes=processes,
        seconds=seconds,
        finished=finished,
        jobs_per_s=round(finished / seconds, 1),
        keys_per_master=keys,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--json", type=Path, help="where to write the result (default bench/results/shards.json)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, start_cluster(Path(tmp)) as cluster:
        masters = [n.port for n in cluster.masters()]
        results = [
            measure(cluster.url, masters, shards=s, processes=args.processes, seconds=args.seconds, batch=args.batch)
            for s in (1, 3)
        ]
    rows = [dataclasses.asdict(r) for r in results]
    ratio = round(results[1].jobs_per_s / results[0].jobs_per_s, 2) if results[0].jobs_per_s else None
    report = result(
        "shards",
        title="Dispatch on a Redis Cluster with 1 and 3 queue shards",
        settings={k: v for k, v in vars(args).items() if k != "json"},
        rows=rows,
        ratios={"3 shards / 1 shard: jobs/s": ratio},
        results=rows,
        ratio_3_to_1=ratio,
    )
    write_result(report, args.json)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
