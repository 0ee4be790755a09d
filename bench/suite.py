"""The benchmark suite: one registry of benchmark commands, run by `make bench`.

Each `Bench` is one command, `python -m <module> <args> --json bench/results/<name>.json`, with its
default arguments and a quick variant (`make bench BENCH_QUICK=1`: a few jobs, to check the whole
path end to end in about a minute; its figures go to bench/results/quick/, never over the real
ones). After running, the marked section of bench/RESULTS.md is regenerated from every registered
result on disk (`bench/report.py`), the prose around it untouched. A benchmark marked `optional`
may not exist yet: it is skipped with a message, not failed.

Usage: .venv/bin/python -m bench.suite [NAME ...] [--quick] [--render-only] [-- ARGS for one NAME]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench import report
from bench.harness import RESULTS

ROOT = Path(__file__).resolve().parents[1]
RESULTS_MD = Path(__file__).with_name("RESULTS.md")
QUICK = RESULTS / "quick"


@dataclasses.dataclass(frozen=True)
class Bench:
    name: str  # its result is bench/results/<name>.json
    module: str
    args: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()  # used instead of `args` in quick mode
    optional: bool = False  # written by a later change; skipped with a message while absent

    def argv(self, *, quick: bool, out: Path, extra: Sequence[str] = ()) -> list[str]:
        return [sys.executable, "-m", self.module, *(self.quick if quick else self.args), *extra, "--json", str(out)]

    def command(self, *, quick: bool = False) -> str:
        return " ".join(["python -m", self.module, *(self.quick if quick else self.args)])

    def exists(self) -> bool:
        return importlib.util.find_spec(self.module) is not None


SUITE: tuple[Bench, ...] = (
    Bench("queue_core", "bench.queue_core", quick=("--jobs", "500", "--rounds", "1")),
    Bench(
        "submit",
        "bench.submit",
        args=("--rounds", "9", "--unary", "2000"),
        quick=("--rounds", "1", "--calls", "1", "--batch", "200", "--unary", "200"),
    ),
    Bench(
        "latency",
        "bench.latency",
        args=("--rates", "2,200", "--seconds", "5", "--rounds", "3"),
        quick=("--rates", "2,20", "--seconds", "2", "--rounds", "1"),
    ),
    Bench(
        "subscribers",
        "bench.subscribers",
        args=("--subscribers", "2000", "10000"),
        quick=("--subscribers", "100", "--processes", "2", "--channels", "1", "--rate", "200"),
    ),
    Bench(
        "browser",
        "bench.browser",
        args=("--rounds", "4", "--jobs", "40", "--peers", "--trace-modes", "off"),
        quick=("--rounds", "1", "--jobs", "4", "--concurrency", "2"),
    ),
    Bench(
        "browser-sweep",
        "bench.browser",
        args=("--concurrency", "1..8", "--jobs", "40", "--rounds", "1"),
        quick=("--concurrency", "1..2", "--jobs", "4", "--rounds", "1"),
    ),
    Bench("browser-protocol", "bench.browser_protocol", quick=("--jobs", "2")),
    Bench(
        "browser-memory",
        "bench.browser",
        args=("--memory", "2000", "--concurrency", "5"),
        quick=("--memory", "20", "--concurrency", "2"),
    ),
    Bench("redis-instructions", "bench.redis_instructions", quick=("--jobs", "100")),
    Bench("retention", "bench.retention", quick=("--jobs", "1000", "--sample", "500", "--backlog", "500")),
    Bench(
        "retention-off",
        "bench.retention",
        args=("--no-retention", "--jobs", "20000", "--sample", "5000"),
        quick=("--no-retention", "--jobs", "1000", "--sample", "500"),
    ),
    Bench("fair_share", "bench.fair_share", quick=("--queued", "100")),
    Bench("shards", "bench.shards", quick=("--seconds", "2")),
)


def by_name(names: list[str]) -> list[Bench]:
    known = {b.name: b for b in SUITE}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"no benchmark named {', '.join(unknown)}; the suite has: {', '.join(known)}")
    return [known[n] for n in names] if names else list(SUITE)


def run(bench: Bench, *, quick: bool, results: Path, extra: Sequence[str] = ()) -> bool:
    """Run one benchmark (`extra`: further arguments for it); returns whether it succeeded."""
    argv = bench.argv(quick=quick, out=results / f"{bench.name}.json", extra=extra)
    print(f"== {bench.name}: {' '.join(argv[1:])}", flush=True)
    started = time.monotonic()
    code = subprocess.run(argv, cwd=ROOT, check=False).returncode
    print(f"== {bench.name}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
    return code == 0


def entries(results: Path, *, quick: bool = False) -> list[report.Entry]:
    """Every registered benchmark's result in `results`, in the registry's order."""
    found = []
    for bench in SUITE:
        path = results / f"{bench.name}.json"
        if path.exists():
            result = json.loads(path.read_text(encoding="utf-8"))
            # A result made by hand, with other arguments than the suite's, says how it was made.
            command = result.get("command") or bench.command(quick=quick)
            source = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            found.append(report.Entry(str(source), command, result))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="a few jobs each: checks the path, not the figures")
    parser.add_argument("--render-only", action="store_true", help="only regenerate bench/RESULTS.md's section")
    argv = sys.argv[1:]
    # What follows `--` goes to the benchmark itself (one benchmark only): `queue_core -- --rounds 5`.
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if extra and len(args.names) != 1:
        raise SystemExit("arguments after `--` are for one benchmark: name exactly one")
    # Quick figures say nothing: they go to bench/results/quick/ (git-ignored), with a copy of
    # RESULTS.md to render into, so that a check never overwrites the real figures.
    results, results_md = (QUICK, QUICK / "RESULTS.md") if args.quick else (RESULTS, RESULTS_MD)
    results.mkdir(parents=True, exist_ok=True)
    if args.quick:
        shutil.copyfile(RESULTS_MD, results_md)
    failed = []
    for bench in [] if args.render_only else by_name(args.names):
        if not bench.exists():
            print(f"== {bench.name}: skipped, {bench.module} does not exist yet", flush=True)
            if not bench.optional:
                failed.append(bench.name)
        elif not run(bench, quick=args.quick, results=results, extra=extra):
            failed.append(bench.name)
    report.update(results_md, entries(results, quick=args.quick))
    print(f"== wrote the figures into {results_md.relative_to(ROOT)}")
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
