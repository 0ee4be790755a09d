"""Submit → RUNNING latency through the real processes, as a client sees it on WatchEvents.

Starts a private redis-server, `sentinel api` (API keys on) and one `sentinel executor`
(bench/stack.py), and a local HTTP server the jobs check (a process of its own): each job is a
browserless API check, one `request` step (GET of the bench's own server, allowed past the
navigation guard with SENTINEL_NAVIGATION_ALLOW=127.0.0.1, as a user checking a local service
would). A client follows WatchEvents (kind `active`: the claim's event, no progress events) and
submits unary Submits at a fixed rate (each its own call, paced on a clock, not waiting for the
previous one). A job's latency runs from just before its Submit is sent
to the moment its RUNNING event reaches the client. Where the time goes, from the job hash's own
stamps (ms, one wall clock: every process is on this machine): `to_api` (client → the API's submit
script stamping `created`), `to_start` (created → the executor's claim stamping `started`: the
executor's wake and claim) and `to_client` (started → the event at the client: events stream,
the API's StreamHub, gRPC).

CPU per job is each service's process with its descendants (the executor's Playwright driver and
Chromium, when a job starts them), from /proc.

Rates: `--rates 2,200` (jobs/s), each for `--seconds`, in the same run on the same processes;
`--rounds` repeats the pair, interleaved. Writes bench/results/latency.json.

`--source DIR` runs both services from another source tree (`git archive` of an earlier commit), for
a before/after pair of runs; `--env NAME=VALUE` sets a variable for both (SENTINEL_EVENT_LOOP=asyncio,
QUEUE_CONCURRENCY=…).

Usage: .venv/bin/python -m bench.latency [--rates 2,200 --seconds 10 --rounds 2] [--source DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.server
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc

from bench import harness
from bench.stack import Stack, cpu_seconds, open_stack, request_definition
from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from sentinel_cli.redis_proc import free_port
from shared import heap

RESULTS = Path(__file__).with_name("results") / "latency.json"
TITLE = "Submit to seen running: latency at a low and a high submit rate"
JOB = "one `request` step: GET of the bench's local HTTP server (browserless API check)"
PARTS = ("to_api", "to_start", "to_client")
COLUMNS = (
    "round",
    "rate",
    "submitted",
    "seen_running",
    "p50_ms",
    "p99_ms",
    "max_ms",
    *(f"{part}_p50_ms" for part in PARTS),
    *(f"{part}_p99_ms" for part in PARTS),
    "api_cpu_us_per_job",
    "executor_cpu_us_per_job",
    "backlog_drained",
)


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_target(port: int) -> None:
    """The target's own process: answer 200 to every GET on 127.0.0.1:`port` until killed."""
    http.server.ThreadingHTTPServer(("127.0.0.1", port), _Ok).serve_forever()


@contextlib.contextmanager
def http_target() -> Iterator[str]:
    """A local HTTP server answering 200 to every GET, in a process of its own (in this one, its
    threads would share the GIL with the client that takes the times); yields its URL."""
    port = free_port()
    code = f"from bench.latency import serve_target; serve_target({port})"
    process = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the HTTP target did not start on port {port}") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/health"
    finally:
        process.terminate()
        process.wait(timeout=10)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


async def run_rate(
    stack: Stack, address: str, url: str, *, rate: float, seconds: float, settle_s: float = 10.0
) -> dict[str, Any]:
    """Submit at `rate` jobs/s for `seconds`; the latency figures of the jobs seen RUNNING, and the CPU
    each process spent per job meanwhile."""
    cpu0 = {s.kind: cpu_seconds(s.process.pid, tree=True) for s in stack.services}
    async with grpc.aio.insecure_channel(address) as channel:
        jobs_stub = pb_grpc.TestExecutionStub(channel)
        admin = pb_grpc.QueueAdminStub(channel)
        running: dict[str, float] = {}  # job id -> when its RUNNING event arrived (perf_counter)
        sent: dict[str, tuple[float, float]] = {}  # job id -> (perf_counter, wall ms) just before Submit
        watch = admin.WatchEvents(
            # A tree from before `kinds` ignores it and sends every RUNNING event (the first is `active`).
            pb.WatchEventsRequest(states=[pb.JOB_STATE_RUNNING], kinds=["active"]),
            metadata=stack.metadata,
            timeout=seconds + 120,
        )

        all_seen = asyncio.Event()
        sending = True

        def check() -> None:
            if not sending and set(sent) <= set(running):
                all_seen.set()

        async def follow() -> None:
            async for event in watch:
                running.setdefault(event.job_id, time.perf_counter())
                check()

        follower = asyncio.create_task(follow())
        await asyncio.sleep(0.5)  # WatchEvents starts with new events only: let it open first
        request = pb.SubmitRequest(definition=request_definition(url))

        failed: list[str] = []

        async def one() -> None:
            t0, wall = time.perf_counter(), time.time() * 1000
            try:
                reply = await jobs_stub.Submit(request, metadata=stack.metadata, timeout=30)
            except grpc.RpcError as exc:  # an API that cannot keep up: counted, not fatal
                failed.append(str(exc.code()))
                return
            sent[reply.job_id] = (t0, wall)

        total = max(1, round(rate * seconds))
        start = time.perf_counter()
        tasks = []
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
        sending = False
        check()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_seen.wait(), settle_s)
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.RpcError):
            await follower
    cpu = {s.kind: cpu_seconds(s.process.pid, tree=True) - cpu0[s.kind] for s in stack.services}
    stamps = stack_stamps(stack, list(sent))
    latencies = [(running[j] - sent[j][0]) * 1000 for j in sent if j in running]
    parts: dict[str, list[float]] = {"to_api": [], "to_start": [], "to_client": []}
    for job_id, (t0, wall) in sent.items():
        created, started = stamps.get(job_id, (0, 0))
        if job_id in running and created and started:
            seen_wall = wall + (running[job_id] - t0) * 1000
            parts["to_api"].append(created - wall)
            parts["to_start"].append(started - created)
            parts["to_client"].append(seen_wall - started)
    return {
        "rate": rate,
        "submitted": len(sent),
        "submits_failed": len(failed),
        "seen_running": len(latencies),
        "p50_ms": round(percentile(latencies, 50), 2) if latencies else None,
        "p99_ms": round(percentile(latencies, 99), 2) if latencies else None,
        "max_ms": round(max(latencies), 2) if latencies else None,
        "parts_p50_ms": {k: round(statistics.median(v), 2) for k, v in parts.items() if v},
        "parts_p99_ms": {k: round(percentile(v, 99), 2) for k, v in parts.items() if v},
        "cpu_us_per_job": {kind: round(c * 1e6 / max(1, len(sent)), 1) for kind, c in cpu.items()},
        "job_ids": list(sent),
    }


def stack_stamps(stack: Stack, job_ids: list[str]) -> dict[str, tuple[int, int]]:
    """Each job's `created` and `started` (ms) from its hash."""
    client = stack.client()
    pipe = client.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hmget(f"sentinel:{{default}}:job:{job_id}", "created", "started")
    out = {}
    for job_id, (created, started) in zip(job_ids, pipe.execute(), strict=True):
        out[job_id] = (int(created or 0), int(started or 0))
    return out


def wait_started(stack: Stack, job_ids: list[str], *, within: float = 120) -> bool:
    """Wait until every job has started (a backlog left by a rate the stack could not keep up with
    must not count against the next rate); False when some have not within `within` seconds. A job
    whose hash is gone has started: it finished and retention removed it."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if all(started or not created for created, started in stack_stamps(stack, job_ids).values()):
            return True
        time.sleep(0.5)
    return False


def table_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per rate (and round): end-to-end p50/p99/max, the parts' p50 and p99, CPU per job."""
    rows = []
    for r in results:
        row = {k: r.get(k) for k in ("round", "rate", "submitted", "seen_running", "p50_ms", "p99_ms", "max_ms")}
        for q in ("p50", "p99"):
            row.update({f"{part}_{q}_ms": r.get(f"parts_{q}_ms", {}).get(part) for part in PARTS})
        cpu = r.get("cpu_us_per_job", {})
        row.update(
            api_cpu_us_per_job=cpu.get("api"),
            executor_cpu_us_per_job=cpu.get("executor"),
            backlog_drained=r.get("backlog_drained"),
        )
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rates", default="2,200", help="jobs/s, comma separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each rate submits")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument(
        "--source", type=Path, help="run the API and the executor from this source tree (an earlier commit)"
    )
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for both services (repeatable)")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    extra = dict(kv.split("=", 1) for kv in args.env)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, open_stack(Path(tmp)) as stack, http_target() as url:
        api = stack.start("api", source=args.source, **extra)
        stack.start("executor", source=args.source, SENTINEL_NAVIGATION_ALLOW="127.0.0.1", **extra)
        loop = asyncio.new_event_loop()
        loop.run_until_complete(run_rate(stack, api.address, url, rate=20, seconds=1))  # warm-up, not counted
        # As the services do once up: the client's start-up heap (grpc, protobuf, its modules) is left
        # out of later collections, so a full pass over it is not timed as the services' latency.
        heap.settle()
        for n in range(args.rounds):
            for rate in rates:
                row = loop.run_until_complete(run_rate(stack, api.address, url, rate=rate, seconds=args.seconds))
                row["round"] = n + 1
                row["backlog_drained"] = wait_started(stack, row.pop("job_ids"))
                results.append(row)
                print(
                    f"round {n + 1} {rate:6.0f} jobs/s: p50 {row['p50_ms']} ms  p99 {row['p99_ms']} ms  "
                    f"max {row['max_ms']} ms  ({row['seen_running']}/{row['submitted']} seen)  "
                    f"parts p50 {row['parts_p50_ms']}  CPU µs/job {row['cpu_us_per_job']}"
                )
        loop.close()
    report = harness.result(
        "latency",
        title=TITLE,
        settings={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "json"},
        columns=COLUMNS,
        rows=table_rows(results),
        job=JOB,
        results=results,
    )
    harness.write_result(report, args.json)
    print(f"raw figures: {args.json}")


if __name__ == "__main__":
    main()
