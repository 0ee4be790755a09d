"""Raw redis-py streams loop: the floor under any Redis Streams queue (XADD / XREADGROUP / XACK, pipelined).

No job state, no retries, no results: each process reads up to `--concurrency` × 10 entries with
XREADGROUP, "runs" each (nothing), and acks the batch in one XACK sent in the same pipeline as the
next read. It is what the wire and Redis allow, the bound a real queue's overhead is measured from.
"""

from __future__ import annotations

import argparse

import redis

from bench.peers.python.common import Done, Ready, drain, load_stream, parse

STREAM = "bench:raw"
GROUP = "workers"


def load(args: argparse.Namespace) -> None:
    load_stream(args.redis_url, STREAM, GROUP, args.jobs)


def work(args: argparse.Namespace, index: int, ready: Ready, done: Done) -> None:
    client = redis.Redis.from_url(args.redis_url)
    client.ping()
    ready()
    consumer = f"c{index}"
    count = args.concurrency * 10
    pending: list[bytes] = []
    while True:
        pipe = client.pipeline(transaction=False)
        if pending:
            pipe.xack(STREAM, GROUP, *pending)
        pipe.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=count, block=100)
        replies = pipe.execute()
        pending = [entry_id for _, entries in replies[-1] or [] for entry_id, _ in entries]
        done(len(pending))


def main() -> None:
    args = parse(__doc__.splitlines()[0] if __doc__ else "")
    drain(f"redis-py streams raw x{args.processes}", args, load=load, work=work, redis_py=redis.__version__)


if __name__ == "__main__":
    main()
