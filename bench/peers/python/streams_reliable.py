"""A minimal reliable asyncio Redis Streams queue: the reference for what a batched streams design costs.

At-least-once: a job stays pending in the consumer group until its handler has finished, and a
consumer that dies leaves its jobs to XAUTOCLAIM (idle over 30 s) by any live one. Each process
reads a batch (up to `--concurrency`), runs the handlers concurrently, then acks and deletes the
whole batch in one pipelined round trip (XACK + XDEL), and every second reclaims stale entries.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import cast

import redis
import redis.asyncio as aioredis

from bench.peers.python.common import Done, Ready, drain, load_stream, parse

STREAM = "bench:reliable"
GROUP = "workers"
RECLAIM_IDLE_MS = 30_000
Entries = list[tuple[bytes, dict[bytes, bytes]]]


def load(args: argparse.Namespace) -> None:
    load_stream(args.redis_url, STREAM, GROUP, args.jobs)


async def handler(fields: dict[bytes, bytes]) -> None:
    """The no-op job."""


async def consume(args: argparse.Namespace, index: int, ready: Ready, done: Done) -> None:
    client = aioredis.Redis.from_url(args.redis_url)
    await client.ping()
    ready()
    consumer = f"c{index}"
    reclaim_at = time.monotonic()
    while True:
        entries: Entries = []
        if time.monotonic() >= reclaim_at:
            reclaim_at = time.monotonic() + 1.0
            _, entries, _ = await client.xautoclaim(STREAM, GROUP, consumer, RECLAIM_IDLE_MS, count=args.concurrency)
        if not entries:
            reply = await client.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=args.concurrency, block=100)
            entries = [e for _, batch in cast(list[tuple[bytes, Entries]], reply or []) for e in batch]
        if not entries:
            continue
        await asyncio.gather(*(handler(fields) for _, fields in entries))
        ids = [entry_id for entry_id, _ in entries]
        async with client.pipeline(transaction=False) as pipe:
            pipe.xack(STREAM, GROUP, *ids)
            pipe.xdel(STREAM, *ids)
            await pipe.execute()
        done(len(ids))


def work(args: argparse.Namespace, index: int, ready: Ready, done: Done) -> None:
    asyncio.run(consume(args, index, ready, done))


def main() -> None:
    args = parse(__doc__.splitlines()[0] if __doc__ else "", concurrency=100)
    drain(f"asyncio streams reliable x{args.processes}", args, load=load, work=work, redis_py=redis.__version__)


if __name__ == "__main__":
    main()
