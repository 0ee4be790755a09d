"""What every benchmark in bench/ shares: a private Redis, its cost counters, machine facts, the result file.

The API, small on purpose:

- `private_redis()`: a context manager yielding a fresh `redis-server` on a free loopback port (no
  persistence, its own temp directory), stopped on exit. Never the Redis on 6379.
- `RedisCounters.read(url)`: Redis CPU (`INFO cpu` user + sys) and `INFO commandstats` (calls and
  µs per command) at one moment; `after.minus(before).per_job(jobs)` gives what the work between the
  two readings cost per job (`RedisCost`).
- `machine()`: facts about this machine and the versions in play (CPU model, cores, RAM, kernel,
  Redis, Python, Node, grpcio, redis-py, Playwright), for the top of every result.
- `result(...)` / `write_result(...)`: the one shape every benchmark's JSON has, so that
  `bench/report.py` renders any of them without knowing it:
  `{"bench", "title", "machine", "date", "settings", "columns", "rows": [{...}], "ratios": {...}}`
  where each row is a flat dict of numbers and strings (one table row) and each ratio a number.

Benchmarks measure; they never assert. Nothing here is imported by Sentinel's services.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import redis

from sentinel_cli.redis_proc import RedisProcess, start_redis

RESULTS = Path(__file__).with_name("results")


@contextlib.contextmanager
def private_redis(*, options: Sequence[str] = ()) -> Iterator[RedisProcess]:
    """A fresh redis-server on 127.0.0.1 (free port, no RDB, no AOF) in its own temp directory."""
    with tempfile.TemporaryDirectory(prefix="sentinel-bench-") as tmp:
        server = start_redis(Path(tmp), options=options)
        try:
            yield server
        finally:
            server.stop()


@dataclasses.dataclass(frozen=True)
class CommandCost:
    calls: float
    usec: float


@dataclasses.dataclass(frozen=True)
class RedisCost:
    """What Redis spent per job between two readings."""

    cpu_us: float  # INFO cpu: used_cpu_user + used_cpu_sys, µs per job (the whole server)
    # INFO commandstats: the sum of usec over every command, µs per job. Commands a script calls
    # count twice (inside EVALSHA's usec and on their own line), so compare `cpu_us` across designs.
    command_us: float
    commands: dict[str, CommandCost]  # per command: calls per job and µs per job

    def top(self, n: int = 4) -> str:
        """The costliest commands per job, e.g. `evalsha ×3 = 88µs, xack ×1 = 2µs` (calls and µs per job)."""
        ranked = sorted(self.commands.items(), key=lambda kv: kv[1].usec, reverse=True)[:n]
        return ", ".join(f"{name} ×{c.calls:.2g} = {c.usec:.3g}µs" for name, c in ranked if c.calls)


@dataclasses.dataclass(frozen=True)
class RedisCounters:
    """Redis's cumulative CPU seconds and per-command counters at one moment."""

    cpu_s: float
    commands: dict[str, CommandCost]

    @classmethod
    def read(cls, url: str) -> RedisCounters:
        with redis.Redis.from_url(url) as client:
            cpu = client.info("cpu")
            stats = client.info("commandstats")
        commands = {
            # redis-py names the sections `cmdstat_<name>`; subcommands read `cmdstat_xinfo|stream`.
            name.removeprefix("cmdstat_"): CommandCost(calls=float(v["calls"]), usec=float(v["usec"]))
            for name, v in stats.items()
        }
        return cls(cpu_s=float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]), commands=commands)

    def minus(self, before: RedisCounters) -> RedisCounters:
        zero = CommandCost(0.0, 0.0)
        diff = {
            name: CommandCost(c.calls - was.calls, c.usec - was.usec)
            for name, c in self.commands.items()
            for was in [before.commands.get(name, zero)]
        }
        return RedisCounters(cpu_s=self.cpu_s - before.cpu_s, commands={n: c for n, c in diff.items() if c.calls})

    def per_job(self, jobs: int) -> RedisCost:
        n = max(jobs, 1)
        commands = {name: CommandCost(c.calls / n, c.usec / n) for name, c in self.commands.items()}
        return RedisCost(
            cpu_us=self.cpu_s * 1e6 / n, command_us=sum(c.usec for c in commands.values()), commands=commands
        )


def _first_line(args: Sequence[str]) -> str | None:
    if shutil.which(args[0]) is None:
        return None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(args, capture_output=True, text=True, timeout=10, check=False).stdout
        return out.strip().splitlines()[0] if out.strip() else None
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _proc_field(path: str, field: str) -> str | None:
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == field:
                return value.strip()
    return None


def machine() -> dict[str, Any]:
    """Facts about this machine and the versions in play, for the top of a result."""
    mem_kb = _proc_field("/proc/meminfo", "MemTotal")
    redis_line = _first_line(["redis-server", "--version"]) or ""
    redis_version = next((p.split("=", 1)[1] for p in redis_line.split() if p.startswith("v=")), None)
    return {
        "cpu": _proc_field("/proc/cpuinfo", "model name") or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "ram_gb": round(int(mem_kb.split()[0]) / 1024 / 1024, 1) if mem_kb else None,
        "kernel": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "redis": redis_version,
        "python": platform.python_version(),
        "node": _first_line(["node", "--version"]),
        "grpcio": _version("grpcio"),
        "redis_py": _version("redis"),
        "hiredis": _version("hiredis"),
        "playwright": _version("playwright"),
    }


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def invocation(argv: Sequence[str] | None = None) -> str:
    """The command that is making this result, as `python -m bench.NAME ARGS` (without `--json OUT`:
    where the figures went is said beside them), so a run with other arguments than the suite's is
    reported as what it was."""
    argv = list(sys.argv if argv is None else argv)
    args: list[str] = []
    rest = iter(argv[1:])
    for arg in rest:
        if arg == "--json":
            next(rest, None)
        elif not arg.startswith("--json="):
            args.append(arg)
    return " ".join(["python", "-m", f"bench.{Path(argv[0]).stem}", *args])


def result(
    bench: str,
    *,
    title: str,
    settings: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    ratios: Mapping[str, float | None] | None = None,
    columns: Sequence[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One benchmark result in the common shape; `extra` keeps a benchmark's own raw figures."""
    return {
        "bench": bench,
        "title": title,
        "machine": machine(),
        "date": now(),
        "command": invocation(),
        "settings": dict(settings),
        "columns": list(columns) if columns else None,
        "rows": [dict(r) for r in rows],
        "ratios": dict(ratios or {}),
        **extra,
    }


def write_result(report: Mapping[str, Any], path: Path | None = None) -> Path:
    """Write `report` as JSON to `path` (default bench/results/<bench>.json); returns the path."""
    out = path or RESULTS / f"{report['bench']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return out
