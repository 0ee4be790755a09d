"""Fair share: while tenant A has 1,000 jobs queued, how long until tenant B's new job starts?

Plays the API (shared.jobs.submit_many) and `--executors` executors of `--concurrency` slots each
(executor_service.store claim/finish, no browser: each job "runs" for `--job-ms`) against a
private redis-server on 127.0.0.1, once with fair share on and once off, and writes the figures
to bench/results/fair_share.json (or `--json OUT`). Usage: .venv/bin/python -m bench.fair_share
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
import time
from pathlib import Path

from bench.harness import result, write_result
from executor_service.store import Claim, claim, finish
from sentinel_cli.redis_proc import start_redis
from shared import jobs
from shared.model import JobOptions, JobState, Navigate, Progress, Step, SubmitCommand, TestDefinition
from shared.queue import Queue, connect
from shared.settings import QueueSettings, RedisSettings


def command(name: str) -> SubmitCommand:
    definition = TestDefinition(name=name, steps=(Step(Navigate(url="https://example.test/")),))
    return SubmitCommand(definition=definition, options=JobOptions())


@dataclasses.dataclass
class Measure:
    fair_share: bool
    a_queued: int
    wait_ms: float  # from B's submit until B's job was claimed
    a_started_before_b: int


async def measure(
    redis_url: str, *, window: int, queued: int, executors: int, concurrency: int, job_ms: int
) -> Measure:
    settings = dataclasses.replace(QueueSettings(), tenant_window=window)
    client = connect(RedisSettings(url=redis_url, configured=True))
    queue = Queue.open(client, settings)
    await client.flushdb()
    await queue.ensure_groups()
    await jobs.submit_many(queue, [command(f"a{i}") for i in range(queued)], tenant="a")
    b_started = asyncio.Event()
    a_started = 0
    started = time.monotonic()
    b_id = (await jobs.submit(queue, command("b"), tenant="b")).job_id

    async def run(c: Claim) -> None:
        await asyncio.sleep(job_ms / 1000)
        await finish(queue, c, state=JobState.COMPLETED, progress=Progress(percentage=100))

    async def executor(n: int) -> None:
        nonlocal a_started
        running: set[asyncio.Task[None]] = set()
        while not b_started.is_set():
            free = concurrency - len(running)
            if free > 0:
                for c in (await claim(queue, consumer=f"e{n}", worker_id=f"e{n}", count=free)).claims:
                    if c.job_id == b_id:
                        b_started.set()
                    else:
                        a_started += 1
                    task = asyncio.create_task(run(c))
                    running.add(task)
                    task.add_done_callback(running.discard)
            await asyncio.sleep(0.001 if free <= 0 else 0)
        await asyncio.gather(*running)

    await asyncio.wait_for(asyncio.gather(*(executor(n) for n in range(executors))), timeout=600)
    wait_ms = (time.monotonic() - started) * 1000
    await client.aclose()
    return Measure(fair_share=window > 0, a_queued=queued, wait_ms=round(wait_ms, 1), a_started_before_b=a_started)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queued", type=int, default=1000)
    parser.add_argument("--executors", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--job-ms", type=int, default=20)
    parser.add_argument("--json", type=Path, help="where to write the result (default bench/results/fair_share.json)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_redis(Path(tmp))
        try:
            runs = [
                await measure(
                    server.url,
                    window=w,
                    queued=args.queued,
                    executors=args.executors,
                    concurrency=args.concurrency,
                    job_ms=args.job_ms,
                )
                for w in (QueueSettings().tenant_window, 0)
            ]
        finally:
            server.stop()
    rows = [dataclasses.asdict(r) for r in runs]
    on, off = runs
    report = result(
        "fair_share",
        title="Fair share: how long until another tenant's job starts",
        settings={k: v for k, v in vars(args).items() if k != "json"},
        rows=rows,
        ratios={"wait without / with fair share": round(off.wait_ms / on.wait_ms, 1) if on.wait_ms else None},
        runs=rows,
    )
    write_result(report, args.json)
    for r in runs:
        print(
            f"fair share {'on ' if r.fair_share else 'off'}: B started after {r.wait_ms:8.1f} ms, "
            f"{r.a_started_before_b} of A's {r.a_queued} jobs started first"
        )


if __name__ == "__main__":
    asyncio.run(main())
