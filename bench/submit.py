"""Submit throughput of the real `sentinel api`: SubmitBatch and unary Submit, beside pipelined XADD.

Starts a private redis-server and `sentinel api` with API keys on (bench/stack.py), then runs
`--rounds` rounds, each interleaving three phases on the same Redis:

- `batch`: `--calls` SubmitBatch calls of `--batch` jobs each, one call in flight (grpc.aio);
- `distinct`: the same, but each item of a call a test of its own (its URL differs): nothing in it
  can be converted or validated once for many items;
- `unary`: `--unary` Submit calls, `--in-flight` at a time from one grpc.aio channel;
- `health`: as many grpc.health.v1 Check calls, as many in flight, to the same server: the floor
  of a unary call through grpc.aio in Python on this machine (what Submit adds is Sentinel's);
- `xadd`: the reference: as many stream entries as the batch phase, each the job's definition as
  JSON with an id, XADDed with redis-py in pipelines of `--batch` (what a queue with no validation,
  no job hash, no events and no RPC hop costs on this Redis).

The job is a browserless API check (one `request` step). Redis is flushed after every phase, so a
tenant's queued-job limit never binds. Figures per phase: jobs/s (median over rounds, and each
round's), the API process's CPU µs per job (/proc, user + system), Redis's CPU µs per job (INFO cpu)
and where Redis spends it (INFO commandstats: µs per job of each command; a script's own commands
count in the script's time and again on their own). Writes bench/results/submit.json.

With `--compare DIR` a second `sentinel api` runs from another source tree (`git archive` of an
earlier commit into DIR) on the same Redis, and every phase runs against both, interleaved: the
before/after ratios come from one run on one machine state.

Usage: .venv/bin/python -m bench.submit [--rounds 5 --calls 5 --unary 3000] [--compare DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import redis
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench import harness
from bench.stack import Stack, commandstats, cpu_seconds, open_stack, request_definition
from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc

RESULTS = Path(__file__).with_name("results") / "submit.json"
TITLE = "Submit throughput: SubmitBatch and unary Submit beside pipelined XADD"
JOB = "one `request` step (a browserless API check), proto of ~60 bytes"
COLUMNS = (
    "phase",
    "tree",
    "jobs_per_s",
    "api_cpu_us_per_job",
    "redis_cpu_us_per_job",
    "after_over_before",
    "over_xadd",
)


def redis_cpu_seconds(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def submit_request() -> pb.SubmitRequest:
    return pb.SubmitRequest(definition=request_definition("http://127.0.0.1:9/health"))


async def batch_phase(
    stub: pb_grpc.TestExecutionStub, stack: Stack, *, calls: int, size: int, distinct: bool = False
) -> int:
    """`calls` SubmitBatch calls of `size` jobs: the same test each time, or (`distinct`) each item
    a test of its own (another URL), which nothing can convert or validate once for many."""
    if distinct:
        items = [
            pb.SubmitRequest(definition=request_definition(f"http://127.0.0.1:9/health?n={i}")) for i in range(size)
        ]
    else:
        items = [submit_request()] * size
    request = pb.SubmitBatchRequest(requests=items)
    done = 0
    for _ in range(calls):
        reply = await stub.SubmitBatch(request, metadata=stack.metadata, timeout=60)
        failed = [i for i in reply.items if i.HasField("error")]
        if failed:
            raise RuntimeError(f"SubmitBatch refused {len(failed)} jobs: {failed[0].error}")
        done += len(reply.items)
    return done


async def unary_phase(stub: pb_grpc.TestExecutionStub, stack: Stack, *, total: int, in_flight: int) -> int:
    request = submit_request()
    left = total

    async def caller() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await stub.Submit(request, metadata=stack.metadata, timeout=60)

    await asyncio.gather(*(caller() for _ in range(in_flight)))
    return total


async def health_phase(channel: grpc.aio.Channel, *, total: int, in_flight: int) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    request = health_pb2.HealthCheckRequest()
    left = total

    async def caller() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await stub.Check(request, timeout=60)

    await asyncio.gather(*(caller() for _ in range(in_flight)))
    return total


def xadd_phase(client: redis.Redis, *, total: int, size: int) -> int:
    body = json.dumps(json_format.MessageToDict(submit_request()))
    for start in range(0, total, size):
        pipe = client.pipeline(transaction=False)
        for _ in range(min(size, total - start)):
            pipe.xadd("bench:xadd", {"job": uuid.uuid4().hex, "definition": body})
        pipe.execute()
    return total


def measure(
    phase: str, api: str, stack: Stack, api_pid: int | None, run: Callable[[], int], rounds: list[dict[str, Any]]
) -> None:
    client = stack.client()
    client.config_resetstat()
    redis_cpu0 = redis_cpu_seconds(client)
    cpu0 = cpu_seconds(api_pid) if api_pid else 0.0
    t0 = time.perf_counter()
    jobs = run()
    elapsed = time.perf_counter() - t0
    cpu = cpu_seconds(api_pid) - cpu0 if api_pid else 0.0
    redis_cpu = redis_cpu_seconds(client) - redis_cpu0
    stats = commandstats(client)
    client.flushall()
    rounds.append(
        {
            "phase": phase,
            "api": api,
            "jobs": jobs,
            "seconds": round(elapsed, 3),
            "jobs_per_s": round(jobs / elapsed, 1),
            "api_cpu_us_per_job": round(cpu * 1e6 / jobs, 1) if api_pid else None,
            "redis_cpu_us_per_job": round(redis_cpu * 1e6 / jobs, 1),
            "redis_us_per_job": {
                cmd: round(s["usec"] / jobs, 2)
                for cmd, s in sorted(stats.items(), key=lambda kv: -kv[1]["usec"])
                if cmd not in ("config|resetstat", "info") and s["usec"] / jobs >= 0.05
            },
            "redis_calls_per_job": {
                cmd: round(s["calls"] / jobs, 3)
                for cmd, s in stats.items()
                if cmd not in ("config|resetstat", "info") and s["calls"] / jobs >= 0.01
            },
        }
    )
    print(
        f"  {phase:6} {api:9} {jobs / elapsed:10.0f} jobs/s   API CPU {rounds[-1]['api_cpu_us_per_job']} µs/job"
        f"   Redis CPU {rounds[-1]['redis_cpu_us_per_job']} µs/job"
    )


def run_async(loop: asyncio.AbstractEventLoop, make: Callable[[], Coroutine[Any, Any, int]]) -> Callable[[], int]:
    return lambda: loop.run_until_complete(make())


def phase_run(
    phase: str,
    stub: pb_grpc.TestExecutionStub,
    channel: grpc.aio.Channel,
    stack: Stack,
    args: argparse.Namespace,
) -> Callable[[], Coroutine[Any, Any, int]]:
    if phase in ("batch", "distinct"):
        return lambda: batch_phase(stub, stack, calls=args.calls, size=args.batch, distinct=phase == "distinct")
    if phase == "unary":
        return lambda: unary_phase(stub, stack, total=args.unary, in_flight=args.in_flight)
    return lambda: health_phase(channel, total=args.unary, in_flight=args.in_flight)


def summary(rounds: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Medians over rounds, per phase and API ("batch/this"), with ratios to the reference and
    between the two APIs."""
    out: dict[str, dict[str, Any]] = {}
    for key in dict.fromkeys(f"{r['phase']}/{r['api']}" for r in rounds):
        rows = [r for r in rounds if f"{r['phase']}/{r['api']}" == key]
        api_cpu = [r["api_cpu_us_per_job"] for r in rows if r["api_cpu_us_per_job"] is not None]
        out[key] = {
            "jobs_per_s_median": round(statistics.median(r["jobs_per_s"] for r in rows), 1),
            "jobs_per_s_rounds": [r["jobs_per_s"] for r in rows],
            "api_cpu_us_per_job_median": round(statistics.median(api_cpu), 1) if api_cpu else None,
            "redis_cpu_us_per_job_median": round(statistics.median(r["redis_cpu_us_per_job"] for r in rows), 1),
        }
    xadd = out.get("xadd/redis-py")
    for key, row in out.items():
        if xadd and key.startswith(("batch/", "distinct/")):
            row["ratio_to_xadd"] = round(row["jobs_per_s_median"] / xadd["jobs_per_s_median"], 3)
        compared = out.get(key.replace("/this", "/compared"))
        if key.endswith("/this") and compared:
            row["ratio_to_compared"] = round(row["jobs_per_s_median"] / compared["jobs_per_s_median"], 2)
    return out


def table_rows(table: dict[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, float | None]]:
    """`summary()` as the common shape's rows (one per phase × tree: medians over rounds) and its
    ratios (this tree after / the compared tree before, per phase; batch and distinct / XADD)."""
    rows: list[dict[str, Any]] = []
    ratios: dict[str, float | None] = {}
    for key, s in table.items():
        phase, tree = key.split("/", 1)
        rows.append(
            {
                "phase": phase,
                "tree": tree,
                "jobs_per_s": s["jobs_per_s_median"],
                "api_cpu_us_per_job": s["api_cpu_us_per_job_median"],
                "redis_cpu_us_per_job": s["redis_cpu_us_per_job_median"],
                "after_over_before": s.get("ratio_to_compared"),
                "over_xadd": s.get("ratio_to_xadd"),
            }
        )
        if tree == "this" and "ratio_to_compared" in s:
            ratios[f"{phase}: this tree / compared tree, jobs/s"] = s["ratio_to_compared"]
    for key, s in table.items():
        if key.endswith("/this") and "ratio_to_xadd" in s:
            ratios[f"{key.split('/')[0]} (this tree) / pipelined XADD, jobs/s"] = s["ratio_to_xadd"]
    return rows, ratios


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "json"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=5, help="SubmitBatch calls per round")
    parser.add_argument("--batch", type=int, default=1000, help="jobs per SubmitBatch call")
    parser.add_argument("--unary", type=int, default=3000, help="unary Submit calls per round")
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--phases", default="batch,distinct,unary,health,xadd", help="which phases, comma separated")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where the raw figures go")
    parser.add_argument(
        "--compare",
        type=Path,
        help="also run `sentinel api` from this source tree (e.g. `git archive` of an earlier commit) "
        "on the same Redis, its phases interleaved with this tree's",
    )
    parser.add_argument("--api-env", action="append", default=[], help="NAME=VALUE for `sentinel api` (repeatable)")
    args = parser.parse_args()
    phases = args.phases.split(",")
    extra = dict(kv.split("=", 1) for kv in args.api_env)
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, open_stack(Path(tmp)) as stack:
        apis = {"this": stack.start("api", **extra)}
        if args.compare:
            apis["compared"] = stack.start("api", source=args.compare, **extra)
        for name, api in apis.items():
            print(f"sentinel api ({name}) pid {api.process.pid} on {api.address}")
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)  # the channels below bind to it
        channels = {name: grpc.aio.insecure_channel(api.address) for name, api in apis.items()}
        stubs = {name: pb_grpc.TestExecutionStub(channel) for name, channel in channels.items()}
        ref = redis.Redis(port=stack.redis.port)
        for stub in stubs.values():  # a warm-up (imports, script loads, connections), not counted
            loop.run_until_complete(batch_phase(stub, stack, calls=1, size=args.batch))
            loop.run_until_complete(unary_phase(stub, stack, total=256, in_flight=args.in_flight))
        ref.flushall()
        for n in range(args.rounds):
            print(f"round {n + 1}/{args.rounds}")
            for name, api in apis.items():
                for phase in ("batch", "distinct", "unary", "health"):
                    if phase in phases:
                        make = phase_run(phase, stubs[name], channels[name], stack, args)
                        measure(phase, name, stack, api.process.pid, run_async(loop, make), rounds)
            if "xadd" in phases:
                total = args.calls * args.batch
                measure("xadd", "redis-py", stack, None, partial(xadd_phase, ref, total=total, size=args.batch), rounds)
        for channel in channels.values():
            loop.run_until_complete(channel.close())
        loop.close()
    table = summary(rounds)
    rows, ratios = table_rows(table)
    report = harness.result(
        "submit",
        title=TITLE,
        settings=settings_of(args),
        columns=COLUMNS,
        rows=rows,
        ratios=ratios,
        job=JOB,
        summary=table,
        rounds=rounds,
    )
    harness.write_result(report, args.json)
    print()
    print(f"{'phase':24}{'jobs/s (median)':>18}{'API CPU µs/job':>18}{'Redis CPU µs/job':>18}")
    for key, row in table.items():
        print(
            f"{key:24}{row['jobs_per_s_median']:>18}{row['api_cpu_us_per_job_median']!s:>18}"
            f"{row['redis_cpu_us_per_job_median']:>18}"
        )
    print(f"raw figures: {args.json}")


if __name__ == "__main__":
    main()
