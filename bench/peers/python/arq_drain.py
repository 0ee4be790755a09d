"""arq as a peer of Sentinel's queue core: a sorted-set queue that workers poll.

Jobs are enqueued with `ArqRedis.enqueue_job` (`--concurrency` at a time); each worker process
runs an `arq.worker.Worker` with `max_jobs` = `--concurrency`. arq keeps each result (its default
`keep_result`, one hour). Its poll delay is cut from 0.5 s to 10 ms: with the default a worker
sleeps half a second between batches, which would measure the delay rather than the queue.
"""

from __future__ import annotations

import argparse
import asyncio
from importlib import metadata
from typing import Any

from arq import create_pool  # type: ignore[import-not-found]  # in bench/peers/.venv only
from arq.connections import RedisSettings  # type: ignore[import-not-found]  # in bench/peers/.venv only
from arq.worker import Worker, func  # type: ignore[import-not-found]  # in bench/peers/.venv only

from bench.peers.python.common import Done, Ready, drain, parse

_done: list[Done] = []


async def noop(ctx: dict[str, Any]) -> None:
    for done in _done:
        done(1)


async def _load(args: argparse.Namespace) -> None:
    pool = await create_pool(RedisSettings.from_dsn(args.redis_url))
    step = args.concurrency  # arq's pool holds few connections, and each enqueue_job takes one
    for start in range(0, args.jobs, step):
        await asyncio.gather(*(pool.enqueue_job("noop") for _ in range(min(step, args.jobs - start))))
    await pool.aclose()


def load(args: argparse.Namespace) -> None:
    asyncio.run(_load(args))


async def _work(args: argparse.Namespace, ready: Ready) -> None:
    pool = await create_pool(RedisSettings.from_dsn(args.redis_url))
    await pool.ping()
    worker = Worker(
        functions=[func(noop, name="noop")],
        redis_pool=pool,
        max_jobs=args.concurrency,
        poll_delay=0.01,
        handle_signals=False,
    )
    ready()
    await worker.main()


def work(args: argparse.Namespace, index: int, ready: Ready, done: Done) -> None:
    _done.append(done)
    asyncio.run(_work(args, ready))


def main() -> None:
    args = parse(__doc__.splitlines()[0] if __doc__ else "")
    drain(f"arq x{args.processes}", args, load=load, work=work, arq=metadata.version("arq"))


if __name__ == "__main__":
    main()
