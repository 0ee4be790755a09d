"""taskiq with taskiq-redis's RedisStreamBroker (acked Redis Streams) as a peer of Sentinel's queue core.

Jobs are enqueued with `task.kiq()` (`--concurrency` × 10 at a time); each worker process runs
taskiq's own receiver (`run_receiver_task`, `max_async_tasks` = `--concurrency`) on the broker,
as `taskiq worker` would, with no result backend.
"""

from __future__ import annotations

import argparse
import asyncio
from importlib import metadata
from typing import Any

from taskiq.api import run_receiver_task  # type: ignore[import-not-found]  # in bench/peers/.venv only
from taskiq_redis import RedisStreamBroker  # type: ignore[import-not-found]  # in bench/peers/.venv only

from bench.peers.python.common import Done, Ready, drain, parse

_done: list[Done] = []


def make_broker(url: str) -> Any:
    # consumer_id "0": a group created by a worker that starts after the load still reads every job.
    broker = RedisStreamBroker(url, queue_name="bench", consumer_id="0")
    broker.register_task(noop, task_name="noop")
    return broker


async def noop() -> None:
    for done in _done:
        done(1)


async def _load(args: argparse.Namespace) -> None:
    broker = make_broker(args.redis_url)
    await broker.startup()
    task = broker.find_task("noop")
    step = args.concurrency * 10
    for start in range(0, args.jobs, step):
        await asyncio.gather(*(task.kiq() for _ in range(min(step, args.jobs - start))))
    await broker.shutdown()


def load(args: argparse.Namespace) -> None:
    asyncio.run(_load(args))


async def _work(args: argparse.Namespace, ready: Ready) -> None:
    broker = make_broker(args.redis_url)
    broker.is_worker_process = True
    await broker.startup()
    ready()
    await run_receiver_task(broker, max_async_tasks=args.concurrency, run_startup=False)


def work(args: argparse.Namespace, index: int, ready: Ready, done: Done) -> None:
    _done.append(done)
    asyncio.run(_work(args, ready))


def main() -> None:
    args = parse(__doc__.splitlines()[0] if __doc__ else "")
    facts = {"taskiq": metadata.version("taskiq"), "taskiq_redis": metadata.version("taskiq-redis")}
    drain(f"taskiq x{args.processes}", args, load=load, work=work, **facts)


if __name__ == "__main__":
    main()
