"""The frame every Python peer of bench/queue_core.py shares: arguments, worker processes, timing, output.

A peer module gives two things: `load(args)` (enqueue `args.jobs` no-op jobs) and `work(args, index,
ready, done)` (one worker process: call `ready()` once connected, which returns when the drain
starts; consume until killed; call `done(n)` as jobs finish). `drain(...)` then does what every peer does alike:

1. fork `--processes` worker processes first (before the parent opens any connection), each waiting
   for the start signal once it is connected;
2. load the jobs in the parent; with `--pause` print {"phase":"loaded"} and wait for a line on stdin
   (the caller reads Redis's counters between the two phases);
3. start the workers and time the drain: from the start signal (or, for a worker that only connects
   once started, from the first worker ready) until the shared count of finished jobs reaches N;
4. kill the workers and print one JSON line {"name","jobs","seconds","jobs_per_s","load_seconds",...}.

The finished count is a shared-memory counter, not Redis, so counting adds nothing to Redis's work.
Runs in bench/peers/.venv (never Sentinel's venv): `python -m bench.peers.python.<peer> --redis-url …`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from collections.abc import Callable
from typing import Any

import redis

Done = Callable[[int], None]
Ready = Callable[[], None]
Load = Callable[[argparse.Namespace], None]
Work = Callable[[argparse.Namespace, int, Ready, Done], None]

_fork = multiprocessing.get_context("fork")


def parse(description: str, *, concurrency: int = 50) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=concurrency, help="jobs in flight per process")
    parser.add_argument("--pause", action="store_true", help="wait for a line on stdin after loading")
    return parser.parse_args()


def load_stream(url: str, stream: str, group: str, jobs: int) -> None:
    """Create `group` on `stream` and XADD `jobs` entries, 1,000 to a pipelined round trip."""
    with redis.Redis.from_url(url) as client:
        client.xgroup_create(stream, group, id="0", mkstream=True)
        for start in range(0, jobs, 1000):
            pipe = client.pipeline(transaction=False)
            for i in range(start, min(start + 1000, jobs)):
                pipe.xadd(stream, {"i": i})
            pipe.execute()


def _worker(work: Work, args: argparse.Namespace, index: int, counter: Any, ready_at: Any, go: Any) -> None:
    def ready() -> None:
        ready_at[index] = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process here
        go.wait()

    def done(n: int = 1) -> None:
        with counter.get_lock():
            counter.value += n

    work(args, index, ready, done)


def drain(name: str, args: argparse.Namespace, *, load: Load, work: Work, **facts: Any) -> None:
    """Fork the workers, load, drain, print the JSON line (see the module docstring)."""
    counter = _fork.Value("q", 0)
    ready_at = _fork.Array("d", [0.0] * args.processes)
    go = _fork.Event()
    procs = [
        _fork.Process(target=_worker, args=(work, args, n, counter, ready_at, go), daemon=True)
        for n in range(args.processes)
    ]
    for p in procs:
        p.start()
    try:
        started = time.monotonic()
        load(args)
        load_seconds = time.monotonic() - started
        if args.pause:
            print(json.dumps({"phase": "loaded"}), flush=True)
            sys.stdin.readline()
        go_at = time.monotonic()
        go.set()
        while counter.value < args.jobs:
            if not any(p.is_alive() for p in procs):
                raise SystemExit(f"{name}: every worker exited with {counter.value} of {args.jobs} jobs done")
            time.sleep(0.002)
        end = time.monotonic()
        first_ready = min((t for t in ready_at[:] if t), default=go_at)
        start = max(go_at, first_ready)
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.join(timeout=10)
    seconds = end - start
    out = {
        "name": name,
        "jobs": args.jobs,
        "processes": args.processes,
        "concurrency": args.concurrency,
        "seconds": seconds,
        "jobs_per_s": args.jobs / seconds,
        "load_seconds": load_seconds,
        "load_jobs_per_s": args.jobs / load_seconds,
        **facts,
    }
    print(json.dumps(out), flush=True)
