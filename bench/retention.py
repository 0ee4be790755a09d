"""Retention keeps Redis memory flat: 100,000 jobs through the API with retention on.

Submits through a real in-process API (`SubmitBatch`, 1,000 jobs a call) while fake executors
claim, report progress and finish each job at once with `executor_service.store` (no browser;
one job in ten fails and is dead-lettered). The API's periodic cleaner applies
QUEUE_REMOVE_ON_COMPLETE / QUEUE_REMOVE_ON_FAIL. Every `--sample` finished jobs it records Redis's
`used_memory` and key count; the backlog is capped (`--backlog`) so the figures show the steady
state, not a queue growing faster than it drains. `--no-retention` runs the same without it, to
compare. Writes bench/results/retention[-off].json (or `--json OUT`); bench/RESULTS.md quotes a run.

Usage: .venv/bin/python -m bench.retention [--jobs 100000] [--no-retention]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
import redis.asyncio as aioredis

from api_service.server import ApiServer
from bench.harness import result, write_result
from executor_service.store import Claim, claim, finish, write_progress
from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from sentinel_cli.redis_proc import start_redis
from shared.clock import now_ms
from shared.model import JobResult, JobState, Progress
from shared.queue import Queue, connect
from shared.settings import ApiSettings, QueueSettings, RedisSettings
from shared.stats import get_stats

BATCH = 1000


def batch_request(start: int) -> pb.SubmitBatchRequest:
    steps = [
        pb.Step(navigate=pb.Navigate(url="/login")),
        pb.Step(fill=pb.Fill(selector="#user", value="ada")),
        pb.Step(click=pb.Click(selector="#go")),
        pb.Step(expect_text=pb.ExpectText(selector="#welcome", text="Welcome")),
    ]
    return pb.SubmitBatchRequest(
        requests=[
            pb.SubmitRequest(
                definition=pb.TestDefinition(
                    name=f"bench {start + i}", base_url="https://shop.example.test", steps=steps
                ),
                options=pb.JobOptions(tags=["bench", f"shard-{(start + i) % 10}"]),
            )
            for i in range(BATCH)
        ]
    )


async def run_one(queue: Queue, c: Claim) -> None:
    now = now_ms()
    await write_progress(
        queue, c, Progress(percentage=50, current_step=2, total_steps=4, message="Step 2/4", updated_at_ms=now)
    )
    failed = int(c.job.definition.name.rsplit(" ", 1)[1]) % 10 == 0
    state = JobState.FAILED if failed else JobState.COMPLETED
    result = JobResult(success=not failed, execution_time_ms=5, worker_id="bench", attempt=1, completed_at_ms=now)
    await finish(
        queue,
        c,
        state=state,
        progress=Progress(percentage=100, current_step=4, total_steps=4, message=state.value, updated_at_ms=now),
        result=result,
        dead_letter_reason="assertion: bench" if failed else "",
        execution_ms=5,
    )


async def executor(queue: Queue, name: str, done: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        batch = await claim(queue, consumer=name, worker_id=name, count=200)
        if not batch.claims:
            await asyncio.sleep(0.01)
            continue
        for i in range(0, len(batch.claims), 20):  # 20 at a time: the connection pool is bounded
            await asyncio.gather(*(run_one(queue, c) for c in batch.claims[i : i + 20]))
        done[0] += len(batch.claims)


async def memory(client: aioredis.Redis) -> dict[str, int]:
    info: dict[str, Any] = await client.info("memory")
    return {"used_memory": int(info["used_memory"]), "keys": int(await client.dbsize())}


async def bench(*, jobs: int, retention: bool, backlog: int, sample: int, executors: int) -> dict[str, Any]:
    settings = QueueSettings(
        remove_on_complete=50 if retention else 10**9,
        remove_on_fail=20 if retention else 10**9,
        retention_days=7 if retention else 0,
        clean_interval_ms=1000,
    )
    with tempfile.TemporaryDirectory(prefix="sentinel-bench-") as tmp:
        process = start_redis(Path(tmp))
        redis = RedisSettings(url=process.url, configured=True)
        api = await ApiServer.start(redis=redis, queue_settings=settings, api=ApiSettings(host="127.0.0.1", port=0))
        client = connect(redis)
        queue = Queue.open(client, settings)
        stop = asyncio.Event()
        done = [0]
        workers = [asyncio.create_task(executor(queue, f"bench-{i}", done, stop)) for i in range(executors)]
        samples = [{"finished": 0, **await memory(client)}]
        started = time.monotonic()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
                stub = pb_grpc.TestExecutionStub(channel)
                submitted = 0
                next_sample = sample
                while done[0] < jobs:
                    for w in workers:
                        if w.done():
                            w.result()  # an executor died: show why
                    if submitted < jobs and submitted - done[0] < backlog:
                        reply = await stub.SubmitBatch(batch_request(submitted), timeout=60)
                        assert all(item.job_id for item in reply.items), "a submit failed"
                        submitted += BATCH
                    else:
                        await asyncio.sleep(0.02)
                    if done[0] >= next_sample:
                        samples.append({"finished": done[0], **await memory(client)})
                        print(json.dumps(samples[-1]), flush=True)
                        next_sample += sample
            elapsed = time.monotonic() - started
            await asyncio.sleep(settings.clean_interval_ms / 1000 * 2.5)  # a last retention pass or two
            final = {"finished": done[0], **await memory(client)}
            stats = await get_stats(queue)
        finally:
            stop.set()
            await asyncio.gather(*workers, return_exceptions=True)
            await api.stop(0)
            await client.aclose()
            process.stop()
    return {
        "jobs": jobs,
        "retention": retention,
        "remove_on_complete": settings.remove_on_complete if retention else None,
        "remove_on_fail": settings.remove_on_fail if retention else None,
        "seconds": round(elapsed, 1),
        "jobs_per_second": round(done[0] / elapsed),
        "samples": samples,
        "after_last_pass": final,
        "stats": {
            "completed": stats.completed,
            "failed": stats.failed,
            "dead_lettered": stats.dead_lettered,
            "total_processed": stats.total_processed,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--no-retention", action="store_true")
    parser.add_argument("--backlog", type=int, default=5_000, help="most jobs submitted but not finished")
    parser.add_argument("--sample", type=int, default=10_000, help="record memory every this many jobs")
    parser.add_argument("--executors", type=int, default=4)
    parser.add_argument(
        "--json", type=Path, help="where to write the result (default bench/results/retention[-off].json)"
    )
    args = parser.parse_args()
    figures = asyncio.run(
        bench(
            jobs=args.jobs,
            retention=not args.no_retention,
            backlog=args.backlog,
            sample=args.sample,
            executors=args.executors,
        )
    )
    name = "retention" if figures["retention"] else "retention-off"
    rows = [
        {"finished": s["finished"], "used_memory_mb": round(s["used_memory"] / 1e6, 1), "keys": s["keys"]}
        for s in [*figures["samples"], figures["after_last_pass"]]
    ]
    rows[-1]["when"] = "after the last pass"
    on_off = "on" if figures["retention"] else "off"
    title = f"Retention {on_off}: Redis memory as jobs finish ({figures['jobs_per_second']} jobs/s end to end)"
    settings = {k: v for k, v in vars(args).items() if k != "json"}
    out = write_result(result(name, title=title, settings=settings, rows=rows, **figures), args.json)
    print(json.dumps({k: v for k, v in figures.items() if k != "samples"}, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
