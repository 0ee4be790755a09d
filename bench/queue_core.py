"""The queue core beside its peers: no-op jobs drained through Sentinel, BullMQ, taskiq, Celery, arq, raw streams.

Each round runs every peer once, in an order rotated from round to round (so that no peer always
meets the machine in the same state), each against its OWN fresh private redis-server. A peer is
one command (see `PEERS`) that loads N no-op jobs and drains them with its worker processes,
printing one JSON line with `seconds` and `jobs_per_s` of the drain. Around it this module reads
Redis's counters (`bench.harness.RedisCounters`): Redis CPU and `INFO commandstats` per job for the
whole run (enqueue + drain), and, for a peer that pauses after loading (`--pause`: it prints
{"phase":"loaded"} and waits for a line on stdin), for the drain alone. It also counts the CPU the
peer's own processes used per job. Figures are medians over rounds; ratios to BullMQ are taken
within each round, then the median, since the machine is shared and noisy. BullMQ also runs a
second way, `+progress`: each job reports the percentages a Sentinel run reports before its end
(`job.updateProgress`, awaited), so that the Sentinel rows have a like-for-like reference beside
the goal's (BullMQ as it comes, whose no-op jobs report nothing).

The peers live in their own environments (`make bench-peers`): bench/peers/bullmq (Node),
bench/peers/.venv (Python). A peer whose environment or module is missing gets a row saying so.

`--sentinel-at REV …` adds a Sentinel row for each git revision, run from its committed tree
(extracted to a temp directory with `git archive`), so that before and after are measured in one run.

Usage: .venv/bin/python -m bench.queue_core [--jobs 20000] [--rounds 3] [--sentinel-at main] [--json OUT]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.harness import RedisCost, RedisCounters, private_redis, result, write_result

ROOT = Path(__file__).resolve().parents[1]
PEERS_DIR = ROOT / "bench" / "peers"
NODE_DRAIN = PEERS_DIR / "bullmq" / "drain.mjs"
PEERS_PYTHON = PEERS_DIR / ".venv" / "bin" / "python"
BASELINE = "bullmq-node x1"
#: BullMQ reporting what a Sentinel run reports: the reports of the run's fixed scale before its end
#: (0 start, 5 validated, 10 browser ready, 10 before the one step, 95 cleanup; 100 is the end).
#: Not the goal's baseline (that is BullMQ as it comes); the like-for-like reference for a job's work.
LIKE_FOR_LIKE = "bullmq-node x1 +progress"
SENTINEL_SCALE = "0,5,10,10,95"


@dataclasses.dataclass(frozen=True)
class Peer:
    name: str
    argv: tuple[str, ...]  # what follows `--redis-url URL --jobs N`
    needs: Path | None = None  # the environment it runs in; missing → the row says so
    module: str | None = None  # a module of the checkout it runs in (`cwd`) that must exist
    cwd: Path = ROOT
    pauses: bool = True  # speaks the --pause protocol
    max_jobs: int | None = None  # slow peers drain fewer jobs (per-job figures stay comparable)


def _py(module: str, processes: int, **kw: Any) -> Peer:
    return Peer(
        name=kw.pop("name"),
        argv=(str(PEERS_PYTHON), "-m", f"bench.peers.python.{module}", "--processes", str(processes)),
        needs=PEERS_PYTHON,
        **kw,
    )


def _node(processes: int, *, progress: str = "", **kw: Any) -> Peer:
    argv: tuple[str, ...] = ("node", str(NODE_DRAIN), "--processes", str(processes), "--concurrency", "50")
    argv += ("--progress", progress) if progress else ()
    return Peer(name=kw.pop("name"), argv=argv, needs=NODE_DRAIN.parent / "node_modules", **kw)


SENTINEL = (sys.executable, "-m", "bench.sentinel_core", "--processes", "2", "--json", "-")
PEERS: tuple[Peer, ...] = (
    _node(1, name=BASELINE),
    _node(2, name="bullmq-node x2"),
    _node(1, name=LIKE_FOR_LIKE, progress=SENTINEL_SCALE),
    Peer("sentinel x2", SENTINEL, module="bench.sentinel_core", pauses=False),
    _py("taskiq_drain", 2, name="taskiq x2"),
    _py("celery_drain", 2, name="celery x2", max_jobs=5000),
    _py("arq_drain", 2, name="arq x2", max_jobs=3000),
    _py("streams_raw", 2, name="redis-py streams raw x2"),
    _py("streams_reliable", 1, name="asyncio streams reliable x1"),
    _py("streams_reliable", 2, name="asyncio streams reliable x2"),
)


@dataclasses.dataclass
class Run:
    peer: str
    jobs: int
    jobs_per_s: float
    load_jobs_per_s: float | None
    total: RedisCost  # enqueue + drain
    drain: RedisCost | None  # the drain alone, when the peer pauses between the two
    client_cpu_us: float  # CPU of the peer's own processes, µs per job
    facts: dict[str, Any]


def sentinel_at(rev: str, into: Path) -> Peer:
    """The Sentinel row measured on the committed tree of `rev` (extracted with `git archive` into
    `into`), beside the working tree's: before and after a change, in the same run."""
    commit = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True, check=True)
    into.mkdir(parents=True)
    archive = subprocess.Popen(["git", "archive", rev], cwd=ROOT, stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(into)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise SystemExit(f"git archive {rev} failed")
    return Peer(f"sentinel x2 @ {rev} ({commit.stdout.strip()})", SENTINEL, module=SENTINEL[2], pauses=False, cwd=into)


def missing(peer: Peer) -> str | None:
    if peer.needs is not None and not peer.needs.exists():
        return f"not installed ({peer.needs.relative_to(ROOT)}): run `make bench-peers`"
    if peer.module is not None and not (peer.cwd / (peer.module.replace(".", "/") + ".py")).exists():
        return f"missing ({peer.module} does not exist yet)"
    return None


def _pauses(peer: Peer) -> bool:
    if peer.pauses or peer.module is None:
        return peer.pauses
    # A module of this repository may learn the protocol later: ask its --help.
    helptext = subprocess.run([*peer.argv[:3], "--help"], capture_output=True, text=True, cwd=peer.cwd, check=False)
    return "--pause" in helptext.stdout


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_peer(peer: Peer, jobs: int, *, timeout_s: float) -> Run:
    """One peer, one drain, against a fresh private Redis."""
    pause = _pauses(peer)
    with private_redis() as server, tempfile.TemporaryFile() as stderr:
        argv = [*peer.argv, "--redis-url", server.url, "--jobs", str(jobs)]
        argv += ["--pause"] if pause else []
        before = loaded = RedisCounters.read(server.url)
        cpu0 = children_cpu_s()
        pipes: dict[str, Any] = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": stderr}
        # An extracted checkout is only read: no bytecode is written into it.
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"} if peer.cwd != ROOT else None
        proc = subprocess.Popen(argv, cwd=peer.cwd, env=env, text=True, start_new_session=True, **pipes)
        assert proc.stdin is not None and proc.stdout is not None
        final: dict[str, Any] | None = None
        watchdog = threading.Timer(timeout_s, proc.kill)  # a peer that hangs must not hang the suite
        watchdog.start()
        try:
            for line in proc.stdout:
                with contextlib.suppress(ValueError):
                    doc = json.loads(line) if line.startswith("{") else None
                    if isinstance(doc, dict) and doc.get("phase") == "loaded":
                        loaded = RedisCounters.read(server.url)
                        proc.stdin.write("\n")
                        proc.stdin.flush()
                    elif isinstance(doc, dict) and "jobs_per_s" in doc:
                        final = doc
            proc.wait()
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        after = RedisCounters.read(server.url)
        if final is None or proc.returncode != 0:
            stderr.seek(0)
            tail = stderr.read().decode(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError(f"{peer.name} exited {proc.returncode}: {' | '.join(tail)}")
    return Run(
        peer=peer.name,
        jobs=jobs,
        jobs_per_s=float(final["jobs_per_s"]),
        load_jobs_per_s=float(final["load_jobs_per_s"]) if "load_jobs_per_s" in final else None,
        total=after.minus(before).per_job(jobs),
        drain=after.minus(loaded).per_job(jobs) if pause else None,
        client_cpu_us=(children_cpu_s() - cpu0) * 1e6 / jobs,
        facts={k: v for k, v in final.items() if isinstance(v, str) and k != "name"},
    )


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def row(peer: Peer, runs: list[Run], problem: str | None) -> dict[str, Any]:
    if not runs:
        return {"peer": peer.name, "note": problem or "no run"}
    drains = [r.drain for r in runs if r.drain is not None]
    return {
        "peer": peer.name,
        "jobs": runs[0].jobs,
        "jobs_per_s": _median([r.jobs_per_s for r in runs]),
        "enqueue_jobs_per_s": _median([r.load_jobs_per_s for r in runs]),
        "redis_cpu_us_per_job": _median([r.total.cpu_us for r in runs]),
        # Counts, unlike times, do not depend on the load: every command Redis ran per job, those
        # a script ran included (commandstats counts them on their own lines too).
        "redis_calls_per_job": _median([sum(c.calls for c in r.total.commands.values()) for r in runs]),
        "drain_redis_cpu_us_per_job": _median([d.cpu_us for d in drains]),
        "drain_calls_per_job": _median([sum(c.calls for c in d.commands.values()) for d in drains]),
        "client_cpu_us_per_job": _median([r.client_cpu_us for r in runs]),
        "top_commands": runs[len(runs) // 2].total.top(),
        "note": problem or "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="run only these peers (by name)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds one peer may take")
    parser.add_argument("--json", type=Path, help="where to write the result (default bench/results/queue_core.json)")
    parser.add_argument(
        "--sentinel-at", nargs="*", default=[], metavar="REV", help="also measure Sentinel as committed at REV"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sentinel-bench-revs-") as tmp:
        revs = [sentinel_at(rev, Path(tmp) / str(n)) for n, rev in enumerate(args.sentinel_at)]
        bench([*PEERS[:4], *revs, *PEERS[4:]], args)


def bench(all_peers: list[Peer], args: argparse.Namespace) -> None:
    peers = [p for p in all_peers if not args.only or p.name in args.only or p.name.startswith("sentinel x2 @")]
    problems: dict[str, str | None] = {p.name: missing(p) for p in peers}
    runs: dict[str, list[Run]] = {p.name: [] for p in peers}
    ratios: dict[str, list[float]] = {}
    for rnd in range(args.rounds):
        order = peers[rnd % len(peers) :] + peers[: rnd % len(peers)]
        this_round: dict[str, Run] = {}
        for peer in order:
            if problems[peer.name] and not runs[peer.name]:
                continue
            try:
                run = run_peer(peer, min(args.jobs, peer.max_jobs or args.jobs), timeout_s=args.timeout)
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                problems[peer.name] = f"failed: {exc}"[:300]
                print(f"round {rnd + 1}: {peer.name}: {problems[peer.name]}", file=sys.stderr)
                continue
            runs[peer.name].append(this_round.setdefault(peer.name, run))
            cost = f"redis {run.total.cpu_us:6.1f} µs/job"
            print(f"round {rnd + 1}: {peer.name:30} {run.jobs_per_s:9.0f} jobs/s  {cost}", flush=True)
        if BASELINE in this_round:
            for name, run in this_round.items():
                if name != BASELINE:
                    base = this_round[BASELINE]
                    ratios.setdefault(f"{name} / {BASELINE}: jobs/s", []).append(run.jobs_per_s / base.jobs_per_s)
                    cpu = run.total.cpu_us / base.total.cpu_us if base.total.cpu_us else float("nan")
                    ratios.setdefault(f"{name} / {BASELINE}: Redis CPU per job", []).append(cpu)
        if LIKE_FOR_LIKE in this_round:
            like = this_round[LIKE_FOR_LIKE]
            for name, run in this_round.items():
                if name.startswith("sentinel"):
                    ratios.setdefault(f"{name} / {LIKE_FOR_LIKE}: jobs/s", []).append(run.jobs_per_s / like.jobs_per_s)
    rows = [row(p, runs[p.name], problems[p.name]) for p in peers]
    report = result(
        "queue_core",
        title="Queue core: no-op jobs drained beside the peers (medians over rounds)",
        settings={"jobs": args.jobs, "rounds": args.rounds, "baseline": BASELINE, "sentinel_at": args.sentinel_at},
        rows=rows,
        ratios={name: round(statistics.median(v), 2) for name, v in ratios.items()},
        peers={name: rs[0].facts for name, rs in runs.items() if rs},
        raw=[dataclasses.asdict(r) for rs in runs.values() for r in rs],
    )
    out = write_result(report, args.json)
    print(f"\nwrote {out}")
    for r in rows:
        figures = f"{r.get('jobs_per_s') or '':>9} jobs/s  {r.get('redis_cpu_us_per_job') or '':>6} µs/job"
        print(f"{r['peer']:30} {figures}  {r['note']}")


if __name__ == "__main__":
    main()
