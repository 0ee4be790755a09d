"""The queue core's throughput: no-op jobs drained by executor processes through the real worker.

Loads `--jobs` valid one-step jobs with the real submit path (`shared.jobs.submit_many`, the
SubmitBatch script, spread over `--tenants` tenants) before timing, then starts `--processes`
processes, each running the real `executor_service.worker.Worker`: its claim loop, `RunState`,
`run_job` with its progress reports, the `QueueLedger` writes and finish, heartbeats, the promoter,
the control listener and the observer. Only the browser is left out: the runner that drives the
steps is replaced in each executor process by a no-op that reports each step's progress as the
real one does and passes, and the browser manager opens nothing. The time runs from releasing the
workers (all started) to the last job COMPLETED, as the lanes' figures (GetStats's) count them.

Prints one JSON object {"name": "sentinel", "jobs", "seconds", "jobs_per_s", ...}; `--json OUT`
writes it to OUT as well ("-": stdout only). Without `--redis-url` a private redis-server is
started, and the Redis `INFO commandstats` per job is added. `--profile FILE` writes a cProfile of
the first executor process. `--what-if no-progress` leaves every progress report of a run unwritten
(what the reports cost; not a setting Sentinel has). Not a test: it asserts nothing.

Usage: .venv/bin/python -m bench.sentinel_core [--redis-url URL] --jobs 20000 --processes 2 [--json -]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any, cast

import redis

from executor_service import job as job_module
from executor_service.browser import BrowserManager
from executor_service.http_check import ApiSession
from executor_service.runner import Reporter, RunOutcome
from executor_service.worker import Worker
from shared import eventloop, jobs
from shared.keys import Keys
from shared.model import JobOptions, Navigate, Priority, Progress, Step, StepResult, SubmitCommand, TestDefinition
from shared.queue import Queue, connect, connect_blocking
from shared.settings import EventLoopSettings, ExecutorSettings, QueueSettings, RedisSettings

RESULTS = Path(__file__).with_name("results") / "sentinel_core.json"
#: The executor's concurrency in this benchmark (the worker's slots per process).
DEFAULT_CONCURRENCY = 50


class _NoSession:
    """An API session that holds nothing (what the stub browser hands out)."""

    async def close(self) -> None:
        return None


class NoBrowser(BrowserManager):
    """A browser manager that launches nothing: the no-op runner needs no page."""

    def __init__(self) -> None:
        super().__init__(executable_path="")

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def new_api_session(self) -> ApiSession:
        return cast(ApiSession, _NoSession())


async def no_op_steps(session: object, definition: TestDefinition, *, report: Reporter, **_: object) -> RunOutcome:
    """The runner without a browser: reports each step as `run_steps` does, and passes it."""
    n = len(definition.steps)
    results = []
    for i, step in enumerate(definition.steps):
        await report(
            percentage=10 + 80 * i // n,
            current_step=i + 1,
            total_steps=n,
            step_name=step.display_name,
            message=f"Step {i + 1}/{n}: {step.display_name}",
        )
        results.append(StepResult(index=i, name=step.display_name, success=True))
    return RunOutcome(steps=tuple(results), error=None, artifacts=())


def _install_no_op_runner(*, what_if: str = "") -> None:
    setattr(job_module, "run_steps", no_op_steps)  # noqa: B010 (the module does not re-export it)
    setattr(job_module, "needs_browser", lambda definition: False)  # noqa: B010
    if what_if == WHAT_IF_NO_PROGRESS:
        setattr(job_module._Reporter, "hand_over", _kept_not_written)  # noqa: B010


#: `--what-if no-progress`: a run's progress reports are kept in the run's state (GetWorkerStatus,
#: the end's figures) but never written: no progress entries or events but the claim's and the
#: end's. Not something Sentinel can be configured to do: it measures what the reports cost.
WHAT_IF_NO_PROGRESS = "no-progress"


def _kept_not_written(self: Any, **progress: Any) -> None:
    self._state.progress = Progress(**progress, updated_at_ms=0)


def settings() -> QueueSettings:
    return QueueSettings()


def command() -> SubmitCommand:
    definition = TestDefinition(name="bench", steps=(Step(Navigate(url="https://example.test/")),))
    return SubmitCommand(definition=definition, options=JobOptions())


async def load(url: str, count: int, tenants: int, batch: int = 1000) -> None:
    client = connect(RedisSettings(url=url, configured=True))
    queue = Queue.open(client, settings())
    try:
        await queue.ensure_groups()
        for start in range(0, count, batch):
            size = min(batch, count - start)
            tenant = f"bench-{start // batch % tenants}"
            await jobs.submit_many(queue, [command() for _ in range(size)], tenant=tenant)
    finally:
        await client.aclose()


async def serve(url: str, index: int, concurrency: int, go: Event, stop: Event, ready: Any, what_if: str) -> None:
    _install_no_op_runner(what_if=what_if)
    redis_settings = RedisSettings(url=url, configured=True)
    client = connect(redis_settings)
    blocking = connect_blocking(redis_settings)
    spool = tempfile.mkdtemp(prefix="sentinel-bench-spool-")
    worker = Worker(
        Queue.open(client, settings()),
        NoBrowser(),
        settings=ExecutorSettings(spool_dir=spool),
        blocking=blocking,
        worker_id=f"bench-{index}",
        concurrency=concurrency,
    )
    await worker.queue.scripts.preload(client, "claim", "record", "heartbeat")
    ready.put(index)
    await asyncio.to_thread(go.wait)
    cpu = os.times()
    await worker.start()
    await asyncio.to_thread(stop.wait)
    after = os.times()
    ready.put((after.user - cpu.user) + (after.system - cpu.system))
    await worker.drain(5.0)
    await client.aclose()
    await blocking.aclose()


def _process(
    url: str, index: int, concurrency: int, go: Event, stop: Event, ready: Any, profile: str, what_if: str
) -> None:
    """One executor process, on the event loop `sentinel executor` runs on (SENTINEL_EVENT_LOOP:
    uvloop unless set to asyncio)."""
    loop = EventLoopSettings.from_env()
    if profile and index == 0:
        profiler = cProfile.Profile()
        profiler.enable()
        try:
            eventloop.run(serve(url, index, concurrency, go, stop, ready, what_if), loop)
        finally:
            profiler.disable()
            profiler.dump_stats(profile)
        return
    eventloop.run(serve(url, index, concurrency, go, stop, ready, what_if), loop)


def completed(client: redis.Redis) -> int:
    key = Keys.of_shards(settings().name, 1)[0].lane_stats(Priority.MEDIUM)
    return int(client.hget(key, "n:completed") or 0)


def commandstats(client: redis.Redis) -> dict[str, dict[str, float]]:
    info = cast(dict[str, dict[str, float]], client.info("commandstats"))
    return {name.removeprefix("cmdstat_"): dict(stats) for name, stats in info.items()}


def _minus(after: dict[str, dict[str, float]], before: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Each command's calls and µs from `before` to `after`."""
    zero = {"calls": 0.0, "usec": 0.0}
    return {
        name: {key: float(s[key]) - float(before.get(name, zero)[key]) for key in ("calls", "usec")}
        for name, s in after.items()
    }


def redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def run(
    url: str, *, count: int, processes: int, concurrency: int, tenants: int, profile: str, what_if: str = ""
) -> dict[str, Any]:
    client = redis.Redis.from_url(url, decode_responses=True)
    client.flushall()
    asyncio.run(load(url, count, tenants))
    ctx = multiprocessing.get_context("spawn")
    go, stop, ready = ctx.Event(), ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_process, args=(url, n, concurrency, go, stop, ready, profile, what_if))
        for n in range(processes)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=60)
    # Deltas, never CONFIG RESETSTAT: a caller may read the same Redis's figures around this run.
    stats_before = commandstats(client)
    cpu_before = redis_cpu(client)
    started = time.perf_counter()
    go.set()
    deadline = started + 600
    done = polls = 0
    while done < count and time.perf_counter() < deadline:
        time.sleep(0.005)
        done = completed(client)
        polls += 1
    seconds = time.perf_counter() - started
    cpu = redis_cpu(client) - cpu_before
    stats = _minus(commandstats(client), stats_before)
    # This loop's own HGETs (one a poll) are not the executors' work.
    hget = stats.get("hget", {"calls": 0.0, "usec": 0.0})
    if hget["calls"] > 0:
        mine = min(polls, hget["calls"]) / hget["calls"]
        stats["hget"] = {"calls": hget["calls"] * (1 - mine), "usec": hget["usec"] * (1 - mine)}
    stop.set()
    executor_cpu = sum(float(ready.get(timeout=60)) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    per_job = {
        name: {"calls_per_job": round(s["calls"] / max(done, 1), 3), "usec_per_job": round(s["usec"] / max(done, 1), 2)}
        for name, s in sorted(stats.items(), key=lambda kv: -kv[1]["usec"])
        if s["calls"] > 0
    }
    return {
        "name": "sentinel",
        "jobs": done,
        "seconds": round(seconds, 3),
        "jobs_per_s": round(done / seconds, 1),
        "processes": processes,
        "concurrency": concurrency,
        "tenants": tenants,
        "what_if": what_if,
        "event_loop": "uvloop" if eventloop.loop_factory(EventLoopSettings.from_env()) else "asyncio",
        # CPU time (user + sys) of all executor processes per job: less load-dependent than seconds.
        "executor_cpu_usec_per_job": round(executor_cpu * 1_000_000 / max(done, 1), 1),
        "redis_cpu_usec_per_job": round(cpu * 1_000_000 / max(done, 1), 1),
        "redis_usec_per_job": round(sum(s["usec"] for s in stats.values()) / max(done, 1), 1),
        "commandstats_per_job": per_job,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", default="", help="a Redis to use (FLUSHALL'd!); default: a private one")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--tenants", type=int, default=4, help="tenants the jobs are spread over")
    parser.add_argument("--profile", default="", help="write a cProfile of executor process 0 to this file")
    parser.add_argument("--json", default="", help="also write the figures here ('-': stdout only)")
    parser.add_argument(
        "--what-if",
        default="",
        choices=["", WHAT_IF_NO_PROGRESS],
        help="no-progress: runs write no progress reports (what they cost; not a shipped setting)",
    )
    args = parser.parse_args()
    server = None
    url = args.redis_url
    if not url:
        from sentinel_cli.redis_proc import start_redis

        server = start_redis(Path(tempfile.mkdtemp(prefix="sentinel-bench-redis-")))
        url = server.url
    try:
        figures = run(
            url,
            count=args.jobs,
            processes=args.processes,
            concurrency=args.concurrency,
            tenants=args.tenants,
            profile=args.profile,
            what_if=args.what_if,
        )
    finally:
        if server is not None:
            server.stop()
    print(json.dumps(figures))
    if args.json and args.json != "-":
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    elif not args.json:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
