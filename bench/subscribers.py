"""Thousands of StreamProgress subscribers on one real `sentinel api`: who stays open, memory, latency.

For each subscriber count: a private redis-server, a real `sentinel api` process (API keys on:
`SENTINEL_AUTH=keys`), `--subscribers / --per-job` jobs submitted with SubmitBatch. Client processes
(`--processes`, each with `--channels` gRPC channels, hence as many TCP connections) open the
streams with plain generated stubs and an API key, all at once; a stream is open once its first
event (the replayed "Queued") arrived. Then this process plays the executor through its real store
functions (`executor_service.store.claim`, `write_progress`, `finish`): it claims every job and
writes `--events` progress entries per job and then the terminal one, `--rate` writes a second in
all, each carrying its `time.monotonic_ns()` (CLOCK_MONOTONIC, the same clock in every process).

Measured: how many streams received every event through the terminal one and ended OK, how the
others ended (status codes, or still open at the end); the API's resident memory (VmRSS) before
the streams opened and with all open, per subscriber; write → delivery latency p50/p99/max over
every timed event at every subscriber; the API's CPU per delivered event; Redis commandstats.
Plain stubs rather than the SDK: the SDK reopens a dropped stream, which would hide the drops.

Usage: .venv/bin/python -m bench.subscribers [--subscribers 2000 10000] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc
import redis
import redis.asyncio as aioredis

from bench import harness
from executor_service.store import Claim, claim, finish, write_progress
from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared.model import JobState, Progress
from shared.queue import Queue
from shared.settings import QueueSettings
from tests.api_service.test_artifact_memory import status_kib
from tests.e2e.conftest import SENTINEL, Service, wait_serving
from tests.support import free_port, start_redis, write_keys

RESULTS = Path(__file__).with_name("results") / "subscribers.json"
TITLE = "Progress subscribers: many StreamProgress followers on one API"
COLUMNS = (
    "subscribers",
    "complete",
    "ended_otherwise",
    "kb_per_subscriber",
    "latency_p50_ms",
    "latency_p99_ms",
    "latency_max_ms",
    "api_cpu_us_per_delivery",
    "redis_xread_us_per_delivery",
)
#: Seconds a run may take to open its streams, and for streams to end after the last write.
OPEN_WITHIN = 180.0
END_WITHIN = 60.0


# --- client processes -------------------------------------------------------------------------


@dataclass
class ClientReport:
    subscribers: int
    complete: int = 0  # every event, in order, through the terminal one, then OK
    ended: dict[str, int] = field(default_factory=dict)  # how each stream ended: OK, a status code, "open"
    incomplete_ok: int = 0  # ended OK but missed an event
    latencies_us: list[int] = field(default_factory=list)


async def _follow(
    stub: pb_grpc.TestExecutionStub,
    job_id: str,
    key: str,
    expected: int,
    opened: asyncio.Queue[None],
    report: ClientReport,
) -> None:
    call = stub.StreamProgress(pb.StreamProgressRequest(job_id=job_id), metadata=(("authorization", f"Bearer {key}"),))
    seen = 0
    ending = "open"
    try:
        async for event in call:
            now = time.monotonic_ns()
            if seen == 0:
                opened.put_nowait(None)
            seen += 1
            if event.progress.message.isdigit():
                report.latencies_us.append((now - int(event.progress.message)) // 1000)
            if event.terminal:
                break
        ending = "OK"
    except grpc.aio.AioRpcError as exc:
        ending = exc.code().name
        if seen == 0:
            opened.put_nowait(None)  # it will never open: do not wait for it
    finally:
        report.ended[ending] = report.ended.get(ending, 0) + 1
        if ending == "OK":
            if seen == expected:
                report.complete += 1
            else:
                report.incomplete_ok += 1


async def _client(job_ids: list[str], port: int, key: str, channels: int, expected: int, pipe: Any) -> ClientReport:
    chans = [
        grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=[("sentinel.bench.channel", n)]) for n in range(channels)
    ]
    stubs = [pb_grpc.TestExecutionStub(c) for c in chans]
    report = ClientReport(subscribers=len(job_ids))
    opened: asyncio.Queue[None] = asyncio.Queue()
    tasks = [
        asyncio.create_task(_follow(stubs[n % channels], job_id, key, expected, opened, report))
        for n, job_id in enumerate(job_ids)
    ]
    for _ in job_ids:
        await opened.get()
    pipe.send("open")
    # The parent says when the last write is done; streams then have END_WITHIN to end.
    await asyncio.to_thread(pipe.recv)
    _, pending = await asyncio.wait(tasks, timeout=END_WITHIN)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for c in chans:
        await c.close()
    return report


def _client_process(job_ids: list[str], port: int, key: str, channels: int, expected: int, pipe: Any) -> None:
    report = asyncio.run(_client(job_ids, port, key, channels, expected, pipe))
    pipe.send(asdict(report))


# --- the API process ---------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_api(tmp: Path, redis_url: str, source: Path | None) -> Service:
    keys_file = tmp / "keys.json"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "QUEUE_", "SENTINEL_", "OTEL_", "API_"))}
    env.update(
        REDIS_URL=redis_url,
        SENTINEL_AUTH="keys",
        SENTINEL_API_KEYS_FILE=str(keys_file),
        SENTINEL_ARTIFACTS_URL=f"file://{tmp / 'artifacts'}",
        API_GRPC_HOST="127.0.0.1",
        API_GRPC_PORT=str(port),
        API_METRICS_PORT="0",
        API_HTTP_PORT="0",
        SENTINEL_TENANT_WINDOW="0",  # no fair share: every job goes straight to its lane, for the claims here
        SENTINEL_TENANT_MAX_QUEUED="0",
        PYTHONUNBUFFERED="1",
    )
    if source is not None:  # another checkout's code (`git worktree add` / `git archive` of a commit) for the API
        env["PYTHONPATH"] = str(source)
    log = tmp / "api.log"
    with log.open("wb") as out:
        process = subprocess.Popen([SENTINEL, "api"], env=env, cwd=tmp, stdout=out, stderr=subprocess.STDOUT)
    service = Service(name="api", process=process, port=port, log=log)
    wait_serving(service)
    return service


async def submit_jobs(port: int, key: str, n: int) -> list[str]:
    definition = pb.TestDefinition(name="bench", steps=[pb.Step(navigate=pb.Navigate(url="https://example.test/"))])
    metadata = (("authorization", f"Bearer {key}"),)
    ids: list[str] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.TestExecutionStub(channel)
        while len(ids) < n:
            batch = min(1000, n - len(ids))
            reply = await stub.SubmitBatch(
                pb.SubmitBatchRequest(requests=[pb.SubmitRequest(definition=definition)] * batch), metadata=metadata
            )
            assert all(item.job_id for item in reply.items), reply
            ids.extend(item.job_id for item in reply.items)
    return ids


async def play_executor(redis_url: str, jobs: int, *, events: int, rate: float) -> tuple[float, int]:
    """Claim every job, write `events` progress entries each and finish it, paced at `rate` writes/s.

    Returns the seconds the writes took and how many writes were late by more than 100 ms
    (this process could not keep the pace)."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    queue = Queue.open(client, QueueSettings(tenant_window=0, tenant_max_queued=0))
    claims: list[Claim] = []
    while len(claims) < jobs:
        batch = await claim(queue, consumer="bench", worker_id="bench", count=min(500, jobs - len(claims)))
        if not batch.claims:
            raise RuntimeError(f"claimed {len(claims)} of {jobs} jobs, then nothing")
        claims.extend(batch.claims)
    start = time.monotonic()
    late = 0
    writes = 0
    for round_ in range(events + 1):
        for run in claims:
            due = start + writes / rate
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            elif wait < -0.1:
                late += 1
            stamp = str(time.monotonic_ns())
            if round_ < events:
                await write_progress(queue, run, Progress(percentage=10 + round_, message=stamp))
            else:
                last = Progress(percentage=100, message=stamp)
                assert await finish(queue, run, state=JobState.COMPLETED, progress=last)
            writes += 1
    took = time.monotonic() - start
    await client.aclose()
    return took, late


def profile_process(pid: int, directory: Path, subscribers: int) -> subprocess.Popen[bytes]:
    """py-spy sampling the API until interrupted (collapsed stacks; pip install py-spy into the venv)."""
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / f"api-{subscribers}.txt"
    spy = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen([str(spy), "record", "-p", str(pid), "--format", "raw", "-o", str(out), "-r", "200"])


def percentile(values: list[int], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def commandstats(port: int) -> dict[str, dict[str, float]]:
    with redis.Redis(port=port) as r:
        stats = r.info("commandstats")
    return {k.removeprefix("cmdstat_"): {"calls": v["calls"], "usec": v["usec"]} for k, v in stats.items()}


def run_once(subscribers: int, args: argparse.Namespace) -> dict[str, Any]:
    jobs = max(1, subscribers // args.per_job)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        server = start_redis(tmp)
        keys = write_keys(tmp / "keys.json")
        api: Service | None = None
        procs: list[Any] = []
        try:
            api = start_api(tmp, server.url, args.api_source)
            key = keys["acme-submitter"]
            job_ids = asyncio.run(submit_jobs(api.port, key, jobs))
            pid = api.process.pid
            time.sleep(1)  # let the API settle after the submits before its baseline
            rss_before = status_kib(pid, "VmRSS")
            assignments: list[list[str]] = [[] for _ in range(args.processes)]
            for n in range(subscribers):
                assignments[n % args.processes].append(job_ids[n % jobs])
            ctx = multiprocessing.get_context("spawn")
            pipes = []
            expected = args.events + 3  # Queued, RUNNING at claim, the progress writes, the terminal event
            opening = time.monotonic()
            for share in assignments:
                mine, theirs = ctx.Pipe()
                proc = ctx.Process(
                    target=_client_process, args=(share, api.port, key, args.channels, expected, theirs), daemon=True
                )
                proc.start()
                procs.append(proc)
                pipes.append(mine)
            for pipe in pipes:
                if not pipe.poll(OPEN_WITHIN):
                    raise RuntimeError(f"streams not open within {OPEN_WITHIN} s")
                assert pipe.recv() == "open"
            open_s = time.monotonic() - opening
            print(f"  {subscribers} streams open in {open_s:.1f} s", file=sys.stderr, flush=True)
            time.sleep(2)  # the streams are open: let the API's allocations settle
            rss_open = status_kib(pid, "VmRSS")
            stats_before = commandstats(server.port)
            cpu_before = cpu_seconds(pid)
            spy = profile_process(pid, args.py_spy, subscribers) if args.py_spy else None
            took, late = asyncio.run(play_executor(server.url, jobs, events=args.events, rate=args.rate))
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(timeout=60)
            for pipe in pipes:
                pipe.send("written")
            reports = [ClientReport(**pipe.recv()) for pipe in pipes]
            cpu = cpu_seconds(pid) - cpu_before
            stats_after = commandstats(server.port)
            rss_end = status_kib(pid, "VmRSS")
        finally:
            for proc in procs:
                proc.join(timeout=30)
                if proc.is_alive():
                    proc.kill()
            if api is not None:
                api.stop()
            server.stop()
    ended: Counter[str] = Counter()
    latencies: list[int] = []
    for report in reports:
        ended.update(report.ended)
        latencies.extend(report.latencies_us)
    complete = sum(r.complete for r in reports)
    delivered = len(latencies)
    redis_delta = {
        name: {
            "calls": stats_after[name]["calls"] - stats_before.get(name, {"calls": 0})["calls"],
            "usec": stats_after[name]["usec"] - stats_before.get(name, {"usec": 0})["usec"],
        }
        for name in stats_after
        if stats_after[name]["calls"] != stats_before.get(name, {"calls": 0})["calls"]
    }
    return {
        "subscribers": subscribers,
        "jobs": jobs,
        "complete": complete,
        "ended": dict(ended),
        "incomplete_ok": sum(r.incomplete_ok for r in reports),
        "open_s": round(open_s, 2),
        "rss_before_mb": round(rss_before / 1e6, 1),
        "rss_open_mb": round(rss_open / 1e6, 1),
        "rss_end_mb": round(rss_end / 1e6, 1),
        "rss_kb_per_subscriber": round((rss_open - rss_before) / subscribers / 1000, 1),
        "writes": jobs * (args.events + 1),
        "write_s": round(took, 2),
        "late_writes": late,
        "timed_deliveries": delivered,
        "latency_ms": {
            "p50": round(percentile(latencies, 0.50) / 1000, 2),
            "p90": round(percentile(latencies, 0.90) / 1000, 2),
            "p99": round(percentile(latencies, 0.99) / 1000, 2),
            "max": round(max(latencies, default=0) / 1000, 2),
            "mean": round(statistics.fmean(latencies) / 1000, 2) if latencies else 0.0,
        },
        "api_cpu_s": round(cpu, 2),
        "api_cpu_us_per_delivery": round(cpu * 1e6 / delivered, 1) if delivered else None,
        "redis_commandstats": redis_delta,
    }


def table_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per subscriber count: streams that completed, that ended any other way, API memory
    per subscriber, delivery latency, API CPU and Redis XREAD time per delivery."""
    rows = []
    for r in results:
        delivered = r.get("timed_deliveries") or 0
        xread = r.get("redis_commandstats", {}).get("xread", {}).get("usec")
        rows.append(
            {
                "subscribers": r["subscribers"],
                "complete": r["complete"],
                "ended_otherwise": sum(n for how, n in r.get("ended", {}).items() if how != "OK"),
                "kb_per_subscriber": r.get("rss_kb_per_subscriber"),
                "latency_p50_ms": r["latency_ms"]["p50"],
                "latency_p99_ms": r["latency_ms"]["p99"],
                "latency_max_ms": r["latency_ms"]["max"],
                "api_cpu_us_per_delivery": r.get("api_cpu_us_per_delivery"),
                "redis_xread_us_per_delivery": round(xread / delivered, 1) if xread is not None and delivered else None,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--subscribers", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--per-job", type=int, default=1, help="subscribers following each job")
    parser.add_argument("--events", type=int, default=3, help="timed progress writes per job before the terminal one")
    parser.add_argument("--rate", type=float, default=500.0, help="progress writes per second, all jobs together")
    parser.add_argument("--processes", type=int, default=4, help="client processes")
    parser.add_argument("--channels", type=int, default=4, help="gRPC channels (connections) per client process")
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument("--api-source", type=Path, help="run the API from this source tree (a before/after run)")
    parser.add_argument("--py-spy", type=Path, help="a directory: sample the API with py-spy while progress is written")
    args = parser.parse_args()
    results = []
    for n in args.subscribers:
        result = run_once(n, args)
        results.append(result)
        lat = result["latency_ms"]
        print(
            f"{n:>6} subscribers: {result['complete']:>6} complete, ended {result['ended']}, "
            f"{result['rss_kb_per_subscriber']} KB each, latency p50 {lat['p50']} ms p99 {lat['p99']} ms "
            f"max {lat['max']} ms, {result['api_cpu_us_per_delivery']} µs API CPU per delivery",
            flush=True,
        )
    report = harness.result(
        "subscribers",
        title=TITLE,
        settings={k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "json"},
        columns=COLUMNS,
        rows=table_rows(results),
        results=results,
    )
    harness.write_result(report, args.json)
    print(f"raw figures in {args.json}")


if __name__ == "__main__":
    main()
