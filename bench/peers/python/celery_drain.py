"""Celery with its Redis broker as a peer of Sentinel's queue core.

Jobs are sent with `apply_async` (one by one: Celery has no bulk send); each worker process runs
one Celery worker (`--pool=solo`, so the process that fetches also runs the task: no pool IPC on
top of a no-op), no result backend, default prefetch and acks. A Celery worker only connects once
started, so the drain is timed from the first worker ready (`worker_ready`), never earlier.
"""

from __future__ import annotations

import argparse
from importlib import metadata
from typing import Any

from celery import Celery  # type: ignore[import-not-found]  # in bench/peers/.venv only
from celery.signals import worker_ready  # type: ignore[import-not-found]  # in bench/peers/.venv only

from bench.peers.python.common import Done, Ready, drain, parse

_done: list[Done] = []
_ready: list[Ready] = []


def make_app(url: str) -> Any:
    app = Celery("bench", broker=url, set_as_current=False)
    app.conf.update(task_ignore_result=True, worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)
    app.task(name="noop")(noop)
    return app


def noop() -> None:
    for done in _done:
        done(1)


def _on_ready(**_: Any) -> None:
    for ready in _ready:
        ready()


def load(args: argparse.Namespace) -> None:
    app = make_app(args.redis_url)
    task = app.tasks["noop"]
    with app.producer_or_acquire() as producer:
        for _ in range(args.jobs):
            task.apply_async(producer=producer)


def work(args: argparse.Namespace, index: int, ready: Ready, done: Done) -> None:
    _done.append(done)
    _ready.append(ready)
    worker_ready.connect(_on_ready, weak=False)
    # Wait for the start signal before the worker connects (it must not drain while the parent
    # loads); `worker_ready` then calls `ready()` again, which records when it could really consume.
    ready()
    argv = ["worker", "--pool=solo", "--loglevel=WARNING", f"--hostname=w{index}@bench"]
    make_app(args.redis_url).worker_main([*argv, "--without-gossip", "--without-mingle", "--without-heartbeat"])


def main() -> None:
    args = parse(__doc__.splitlines()[0] if __doc__ else "")
    drain(f"celery x{args.processes}", args, load=load, work=work, celery=metadata.version("celery"))


if __name__ == "__main__":
    main()
