"""Redis's work per job counted in instructions: Sentinel's scripts beside BullMQ's, free of noise.

Redis CPU µs per job (`INFO cpu`) move ±10% from run to run on this shared machine, so a change of a
few percent in what the scripts do cannot be seen in them. The instructions redis-server executes
can: each side runs against its own redis-server under valgrind's callgrind, whose counters are
zeroed once the jobs are loaded and read when they are drained, so only the drain is counted
(callgrind counts instructions, the same for the same work whatever else the machine is doing).

- **sentinel**: `--jobs` one-step jobs submitted by the real submit path, then claimed and ended by
  the executor's own script calls (`executor_service.store.claim` and `record`), 50 at a time, in
  the calls a run of 50 slots makes: the claim; the run's first two reports (0 start, 5 validated,
  handed over together); 10 browser ready; the step's report; 95 cleanup with the end. No worker
  process and no timing: the same calls every run, so the count moves only with the scripts. The
  claim's and the reports' instructions are counted apart.
- **bullmq-node x1** and **bullmq-node x1 +progress** (the peers of `bench.queue_core`): BullMQ 5's
  own drain (`bench/peers/bullmq/drain.mjs`, one worker process, concurrency 50), the second with
  each job reporting Sentinel's five percentages with `job.updateProgress` first. Its worker's
  blocking reads and timers depend on timing, so its count moves a little from run to run.

Also per job: the commands Redis ran (`INFO commandstats`, script calls and the commands inside them).
Needs `valgrind` (Debian's package) and, for the BullMQ sides, `make bench-peers`.

Usage: .venv/bin/python -m bench.redis_instructions [--jobs 2000] [--only sentinel] [--json OUT]
Writes bench/results/redis-instructions.json in the common shape of bench/harness.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from bench import harness
from bench.queue_core import LIKE_FOR_LIKE, NODE_DRAIN, SENTINEL_SCALE
from bench.sentinel_core import load, settings
from executor_service.store import Claim, Write, claim, end_write, progress_write, record
from sentinel_cli.redis_proc import free_port, stop_process
from shared.clock import now_ms
from shared.model import JobState, Progress
from shared.queue import Queue, connect
from shared.settings import RedisSettings

RESULTS = harness.RESULTS / "redis-instructions.json"
TITLE = "Redis instructions per job (callgrind): Sentinel's claim and record scripts beside BullMQ"
SENTINEL = "sentinel"
BASELINE = "bullmq-node x1"
SIDES = (SENTINEL, BASELINE, LIKE_FOR_LIKE)
#: Jobs claimed and run together: the slots of bench.sentinel_core and BullMQ's concurrency.
SLOTS = 50
#: How long valgrind's redis-server may take to answer, and a side to drain (valgrind runs it ~50x slower).
START_S = 120
DRAIN_S = 1800
_TOTALS = re.compile(r"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


@dataclasses.dataclass
class CountedRedis:
    """A redis-server under callgrind: `zero()` its counters, `take()` what it ran since."""

    url: str
    pid: int
    out: Path
    dumps: int = 0

    def zero(self) -> None:
        subprocess.run(["callgrind_control", "--zero", str(self.pid)], check=True, capture_output=True, timeout=60)

    def take(self) -> int:
        """Instructions executed since the last zero() or take()."""
        subprocess.run(["callgrind_control", "--dump", str(self.pid)], check=True, capture_output=True, timeout=60)
        self.dumps += 1
        match = _TOTALS.search(Path(f"{self.out}.{self.dumps}").read_text(encoding="utf-8", errors="replace"))
        if match is None:
            raise RuntimeError(f"callgrind dump {self.out}.{self.dumps} has no totals line")
        return int(match.group(1))


@contextlib.contextmanager
def counted_redis(directory: Path) -> Iterator[CountedRedis]:
    """A fresh redis-server under callgrind on a free loopback port (no RDB, no AOF) in `directory`."""
    if shutil.which("valgrind") is None or shutil.which("redis-server") is None:
        raise SystemExit("needs valgrind and redis-server: apt-get install valgrind redis-server")
    port = free_port()
    out = directory / "callgrind.out"
    log = (directory / "valgrind.log").open("wb")
    process = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "redis-server", "--port", str(port),
         "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(directory),
         "--maxmemory-policy", "noeviction"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        client = redis.Redis(port=port, socket_connect_timeout=1)
        deadline = time.monotonic() + START_S
        while not _answers(client):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server under valgrind did not answer PING (see {directory}/valgrind.log)")
            time.sleep(0.1)
        yield CountedRedis(f"redis://127.0.0.1:{port}/0", process.pid, out)
    finally:
        stop_process(process)
        log.close()


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def commands_run(url: str) -> int:
    """Commands Redis has run (script calls and the commands inside them), from INFO commandstats."""
    stats = redis.Redis.from_url(url).info("commandstats")
    return sum(int(v["calls"]) for v in stats.values())


def _progress(pct: int, step: int, message: str) -> Progress:
    return Progress(
        percentage=pct,
        current_step=step,
        total_steps=1,
        step_name="Navigate" if step else "",
        message=message,
        updated_at_ms=now_ms(),
    )


def _reports(runs: list[Claim]) -> list[list[Write]]:
    """The record calls a batch of runs makes, in order (see the module's docstring)."""
    return [
        [w for c in runs for w in (progress_write(c, _progress(0, 0, "Initializing")),
                                   progress_write(c, _progress(5, 0, "Validation complete")))],
        [progress_write(c, _progress(10, 0, "Browser ready")) for c in runs],
        [progress_write(c, _progress(10, 1, "Step 1/1: Navigate")) for c in runs],
        [w for c in runs for w in (progress_write(c, _progress(95, 1, "Cleaning up")),
                                   end_write(c, state=JobState.COMPLETED, progress=_progress(100, 1, "Complete")))],
    ]  # fmt: skip


async def sentinel_side(server: CountedRedis, jobs: int) -> dict[str, float]:
    await load(server.url, jobs, tenants=4)
    client = connect(RedisSettings(url=server.url, configured=True))
    queue = Queue.open(client, settings())
    claimed = reported = done = 0
    try:
        await queue.redis.script_load(queue.scripts.record.script)  # loading is not the drain's work
        commands = commands_run(server.url)
        server.zero()
        while done < jobs:
            runs = list((await claim(queue, consumer="bench", worker_id="bench", count=SLOTS)).claims)
            if not runs:
                raise RuntimeError(f"nothing left to claim after {done} of {jobs} jobs")
            claimed += server.take()
            for writes in _reports(runs):
                statuses = await record(queue, writes)
                if set(statuses) != {1}:
                    raise RuntimeError(f"a record call came back with {statuses}")
            reported += server.take()
            done += len(runs)
        commands = commands_run(server.url) - commands
    finally:
        await client.aclose()
    return {"claim": claimed / jobs, "record": reported / jobs, "all": (claimed + reported) / jobs,
            "commands": commands / jobs}  # fmt: skip


def bullmq_side(server: CountedRedis, jobs: int, *, progress: str) -> dict[str, float]:
    if not (NODE_DRAIN.parent / "node_modules").is_dir():
        raise SystemExit("BullMQ is not installed for the peers: run `make bench-peers`")
    argv = ["node", str(NODE_DRAIN), "--redis-url", server.url, "--jobs", str(jobs), "--concurrency", str(SLOTS),
            "--pause", *(["--progress", progress] if progress else [])]  # fmt: skip
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as node:
        assert node.stdin is not None and node.stdout is not None
        for line in node.stdout:
            if '"loaded"' in line:
                break
        else:
            raise RuntimeError("BullMQ's drain ended before loading its jobs")
        commands = commands_run(server.url)
        server.zero()
        node.stdin.write("\n")
        node.stdin.flush()
        lines = node.stdout.readlines()
        node.wait(timeout=DRAIN_S)
        instructions = server.take()
        commands = commands_run(server.url) - commands
    if node.returncode != 0 or not lines:
        raise RuntimeError(f"BullMQ's drain failed (exit {node.returncode})")
    drained = json.loads(lines[-1])
    if int(drained["jobs"]) != jobs:
        raise RuntimeError(f"BullMQ drained {drained['jobs']} of {jobs} jobs")
    return {"all": instructions / jobs, "commands": commands / jobs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--only", nargs="+", choices=SIDES, help="run these sides only")
    parser.add_argument("--json", type=Path, help=f"where the result goes (default {RESULTS})")
    args = parser.parse_args()
    sides: dict[str, dict[str, float]] = {}
    for side in args.only or SIDES:
        with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp, counted_redis(Path(tmp)) as server:
            if side == SENTINEL:
                sides[side] = asyncio.run(sentinel_side(server, args.jobs))
            else:
                sides[side] = bullmq_side(server, args.jobs, progress=SENTINEL_SCALE if side == LIKE_FOR_LIKE else "")
        print(side, json.dumps(sides[side]), flush=True)
    rows = [
        {
            "side": side,
            "jobs": args.jobs,
            "instructions per job": round(figures["all"]),
            "of which claiming": round(figures["claim"]) if "claim" in figures else "—",
            "of which reports and ends": round(figures["record"]) if "record" in figures else "—",
            "commands per job": round(figures["commands"], 2),
        }
        for side, figures in sides.items()
    ]
    ratios = {
        f"{SENTINEL} / {peer}: Redis instructions per job": sides[SENTINEL]["all"] / sides[peer]["all"]
        for peer in (BASELINE, LIKE_FOR_LIKE)
        if SENTINEL in sides and peer in sides
    }
    report = harness.result(
        "redis-instructions", title=TITLE, settings={"jobs": args.jobs, "slots": SLOTS}, rows=rows, ratios=ratios
    )
    print(json.dumps(ratios, indent=1))
    print(f"wrote {harness.write_result(report, args.json or RESULTS)}")


if __name__ == "__main__":
    main()
