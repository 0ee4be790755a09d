"""The browser path: Sentinel's jobs per second beside raw Playwright on the same machine.

A 4-step test (navigate a local page, fill, click, expect text) runs as Sentinel jobs through the
real services — a private `redis-server`, `sentinel api` (API keys on) and `sentinel executor`
(its navigation guard on, the page's host:port allowed) — and as raw Playwright: one Chromium (the
same binary and launch flags as the executor's), a fresh context per test, `--concurrency` tests at
a time. Each Sentinel round is bracketed by raw rounds (raw, Sentinel, raw, Sentinel, …, raw), so
the ratio of a round is Sentinel / the mean of the raw rounds either side of it; the medians are
what to read, since the machine is shared. The page is served by a separate process, so neither
side's Python shares an interpreter with it.

Also as peers in the same run (`--peers`): raw Playwright with `context.route("**/*",
route.continue_)` (what routing every request through the driver costs), raw Playwright behind
Sentinel's egress proxy (executor_service/egress.py, one per context, in the bench's process), and
raw Playwright recording the trace Sentinel records by default (snapshots, screencast, a group per
step; dropped at the end, as a passing job's is). `--trace-modes on-first-retry,...` also runs the
executor with those SENTINEL_TRACE values, round by round beside the default; `--variant
LABEL:NAME=VALUE,...` runs it with that environment likewise.

Modes:
  (default)          `--rounds` bracketed rounds of `--jobs` jobs at `--concurrency`;
  --sweep 1..8       Sentinel jobs/s at each executor concurrency (QUEUE_CONCURRENCY), raw beside;
  --memory N         N jobs through one executor; its RSS and its Chromium's sampled as they run.

Writes bench/results/browser.json (--sweep: browser-sweep.json, --memory: browser-memory.json; or
--json OUT) in the common shape of bench/harness.py. Usage: .venv/bin/python -m bench.browser
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from bench import harness
from executor_service.browser import DEFAULT_ARGS
from executor_service.chromium_flags import launch_args
from executor_service.egress import EgressProxy
from executor_service.guard import ClosingProxies
from executor_service.navigation_policy import NavigationPolicy
from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from sentinel_cli.redis_proc import RedisProcess, free_port, start_redis, stop_process
from shared.access import KeyEntry, Role, hash_key, new_key
from shared.keys import Keys
from shared.model import Priority

RESULTS = Path(__file__).with_name("results") / "browser.json"
TITLE = "Browser path: Sentinel's jobs/s beside raw Playwright"
SENTINEL = str(Path(sys.executable).with_name("sentinel"))
CHROMIUM = os.environ.get("SENTINEL_CHROMIUM", "/usr/bin/chromium")
PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>Bench</title></head><body>"
    "<input id='name'><button id='greet' onclick=\"document.getElementById('out').textContent ="
    " 'Hi, ' + document.getElementById('name').value\">Greet</button><p id='out'></p></body></html>"
)
NAME = "ada"
EXPECTED = f"Hi, {NAME}"

Runner = Callable[[int, int], Awaitable[float]]


# --- the stack --------------------------------------------------------------------------------


@dataclass
class Stack:
    """redis-server, the page's server, `sentinel api` and (restartable) `sentinel executor`."""

    directory: Path
    redis: RedisProcess
    site: str
    api_key: str
    api_port: int
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    executor: subprocess.Popen[bytes] | None = None

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "QUEUE_", "SENTINEL_", "OTEL_"))}
        env.update(
            REDIS_URL=self.redis.url,
            SENTINEL_API_KEYS_FILE=str(self.directory / "keys.json"),
            SENTINEL_CHROMIUM=CHROMIUM,
            SENTINEL_ARTIFACTS_DIR=str(self.directory / "artifacts"),
            SENTINEL_SPOOL_DIR=str(self.directory / "spool"),
            SENTINEL_NAVIGATION_ALLOW=self.site.removeprefix("http://"),
            API_HTTP_PORT="0",
            API_METRICS_PORT="0",
            EXECUTOR_METRICS_PORT="0",
            QUEUE_REMOVE_ON_COMPLETE="100",
            QUEUE_REMOVE_ON_FAIL="100",
        )
        env.update(extra)
        return env

    def launch(self, kind: str, port: int, **extra: str) -> subprocess.Popen[bytes]:
        port_var = "API_GRPC_PORT" if kind == "api" else "EXECUTOR_GRPC_PORT"
        log = (self.directory / f"{kind}-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            [SENTINEL, kind], env=self.env(**{port_var: str(port)}, **extra), stdout=log, stderr=subprocess.STDOUT
        )
        self.processes.append(process)
        wait_serving(process, port, kind)
        return process

    def start_executor(self, concurrency: int, *, source: Path | None = None, **env: str) -> subprocess.Popen[bytes]:
        """(Re)start the executor; `source`: a source tree whose code it runs instead of this one's;
        `env`: more of its variables."""
        self.stop_executor()
        extra = {"PYTHONPATH": str(source)} if source is not None else {}
        self.executor = self.launch("executor", free_port(), QUEUE_CONCURRENCY=str(concurrency), **extra, **env)
        return self.executor

    def stop_executor(self) -> None:
        if self.executor is not None:
            stop_process(self.executor)
            self.executor = None


def wait_serving(process: subprocess.Popen[bytes], port: int, kind: str, within: float = 120) -> None:
    deadline = time.monotonic() + within
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{kind} exited with {process.returncode}")
            with contextlib.suppress(grpc.RpcError):
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            time.sleep(0.1)
    raise RuntimeError(f"{kind} did not serve within {within} s")


@contextlib.contextmanager
def open_stack(directory: Path) -> Iterator[Stack]:
    (directory / "site").mkdir()
    (directory / "site" / "index.html").write_text(PAGE)
    key = new_key()
    entry = KeyEntry(tenant="bench", role=Role.parse("submitter"), sha256=hash_key(key))
    (directory / "keys.json").write_text(json.dumps({"keys": [entry.to_json()]}))
    site_port = free_port()
    site = subprocess.Popen(
        [sys.executable, "-m", "http.server", "-b", "127.0.0.1", "-d", str(directory / "site"), str(site_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    redis_process = start_redis(directory)
    stack = Stack(directory, redis_process, f"http://127.0.0.1:{site_port}", key, free_port())
    try:
        stack.launch("api", stack.api_port)
        yield stack
    finally:
        stack.stop_executor()
        for process in reversed(stack.processes):
            stop_process(process)
        redis_process.stop()
        stop_process(site)


# --- one round of Sentinel jobs ----------------------------------------------------------------


def submit_request(site: str) -> pb.SubmitRequest:
    steps = [
        pb.Step(navigate=pb.Navigate(url="/")),
        pb.Step(fill=pb.Fill(selector="#name", value=NAME)),
        pb.Step(click=pb.Click(selector="#greet")),
        pb.Step(expect_text=pb.ExpectText(selector="#out", text=EXPECTED)),
    ]
    return pb.SubmitRequest(definition=pb.TestDefinition(name="bench", base_url=site, steps=steps))


async def finished(client: aioredis.Redis) -> tuple[int, int]:
    """(jobs ended, jobs failed) so far, from the lane's figures (retention trims the sets of jobs, not these)."""
    done, failed = await client.hmget(Keys().lane_stats(Priority.MEDIUM), ["processed", "failed"])
    return int(done or 0), int(failed or 0)


async def sentinel_round(stack: Stack, jobs: int) -> float:
    """Submit `jobs` in one SubmitBatch and wait until all have ended; returns jobs per second."""
    client = aioredis.Redis.from_url(stack.redis.url)
    metadata = (("authorization", f"Bearer {stack.api_key}"),)
    try:
        done0, failed0 = await finished(client)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.api_port}") as channel:
            stub = pb_grpc.TestExecutionStub(channel)
            started = time.monotonic()
            reply = await stub.SubmitBatch(
                pb.SubmitBatchRequest(requests=[submit_request(stack.site)] * jobs), metadata=metadata
            )
        errors = [item.error.message for item in reply.items if item.WhichOneof("outcome") == "error"]
        if errors:
            raise RuntimeError(f"submit refused: {errors[0]}")
        while True:
            done, failed = await finished(client)
            if done - done0 >= jobs:
                break
            await asyncio.sleep(0.02)
        elapsed = time.monotonic() - started
        if failed != failed0:
            raise RuntimeError(f"{failed - failed0} jobs failed: see the executor's log in {stack.directory}")
        return jobs / elapsed
    finally:
        await client.aclose()


# --- raw Playwright ------------------------------------------------------------------------------


async def raw_test(page: Page, site: str, *, groups: bool = False) -> None:
    """The test in raw Playwright; `groups`: mark each step in the trace as Sentinel does."""
    steps: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("navigate", lambda: page.goto(site + "/")),
        ("fill", lambda: page.locator("#name").first.fill(NAME)),
        ("click", lambda: page.locator("#greet").first.click()),
        ("expect", lambda: page.locator("#out").first.text_content()),
    ]
    text = None
    for n, (name, step) in enumerate(steps):
        if groups:
            if n:
                await page.context.tracing.group_end()
            await page.context.tracing.group(f"{n + 1}. {name}")
        text = await step()
    if EXPECTED not in (text or ""):
        raise RuntimeError(f"raw test saw {text!r}")


async def raw_round(
    browser: Browser, site: str, jobs: int, concurrency: int, setup: Callable[[], Awaitable[BrowserContext]]
) -> float:
    remaining = jobs

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            context = await setup()
            traced = context in TRACED
            try:
                await raw_test(await context.new_page(), site, groups=traced)
                if traced:
                    await context.tracing.stop()  # dropped, as Sentinel drops a passing job's trace
            finally:
                await context.close()

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return jobs / (time.monotonic() - started)


@contextlib.asynccontextmanager
async def raw_browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=launch_args(DEFAULT_ARGS))
        try:
            yield browser
        finally:
            await browser.close()


#: Contexts that record a trace (the raw+trace peer): snapshots, screencast and a group per step.
TRACED: weakref.WeakSet[BrowserContext] = weakref.WeakSet()


def peers(browser: Browser, site: str) -> dict[str, Callable[[], Awaitable[BrowserContext]]]:
    """How each raw peer opens a context."""
    allow = NavigationPolicy.from_rules([site.removeprefix("http://")])
    closing = ClosingProxies()

    async def plain() -> BrowserContext:
        return await browser.new_context()

    async def routed() -> BrowserContext:
        context = await browser.new_context()
        await context.route("**/*", lambda route: route.continue_())
        return context

    async def proxied() -> BrowserContext:
        egress = EgressProxy(allow, refused=lambda *_: None, failed=lambda *_: None)
        context = await browser.new_context(proxy={"server": await egress.start()}, service_workers="block")
        context.on("close", lambda _: closing.close(egress))
        return context

    async def traced() -> BrowserContext:
        context = await browser.new_context()
        await context.tracing.start(snapshots=True, screenshots=True, sources=False)
        TRACED.add(context)
        return context

    return {"raw": plain, "raw+route": routed, "raw+egress": proxied, "raw+trace": traced}


# --- memory ---------------------------------------------------------------------------------------


def rss_kb(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def chromium_pss_kb(pid: int) -> int:
    """Proportional set size of the executor's descendants (Chromium shares pages between its processes)."""
    total = 0
    for child in descendants(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{child}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
    return total


# --- modes ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def profiled(pid: int, out: Path | None) -> Iterator[None]:
    """py-spy (when installed, and `out` given) samples process `pid` while the block runs."""
    spy = Path(sys.executable).with_name("py-spy")
    if out is None or not spy.exists():
        yield
        return
    process = subprocess.Popen(
        [str(spy), "record", "-p", str(pid), "-r", "100", "-f", "raw", "-o", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)


async def bracketed(
    stack: Stack,
    *,
    rounds: int,
    jobs: int,
    concurrency: int,
    with_peers: bool,
    profile: Path | None = None,
    compare: tuple[str, Path] | None = None,
    trace_modes: tuple[str, ...] = (),
    variants: dict[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Raw rounds around every Sentinel round; with `compare` (a revision and its source tree), each
    round runs the executor of this tree and of that revision in turn, so before and after meet the
    same load; each of `trace_modes` (SENTINEL_TRACE values) adds an executor run with it likewise, and
    each of `variants` (a label: the executor's environment) one with that environment."""
    sides: dict[str, tuple[Path | None, dict[str, str]]] = {"sentinel": (None, {})}
    if compare is not None:
        sides[f"sentinel@{compare[0]}"] = (compare[1], {})
    for mode in trace_modes:
        sides[f"sentinel trace={mode}"] = (None, {"SENTINEL_TRACE": mode})
    for label, env in (variants or {}).items():
        sides[f"sentinel {label}"] = (None, env)
    figures: dict[str, list[float]] = {side: [] for side in sides}
    ratios: dict[str, list[float]] = {side: [] for side in sides}
    async with raw_browser() as browser:
        setups = peers(browser, stack.site)
        names = list(setups) if with_peers else ["raw"]
        for name in names:
            figures[name] = []
        cpu: dict[str, list[float]] = {name: [] for name in figures}
        cpu_ratios: dict[str, list[float]] = {side: [] for side in sides}

        async def measure(name: str, run: Awaitable[float]) -> None:
            busy = machine_busy_s()
            figures[name].append(await run)
            cpu[name].append((machine_busy_s() - busy) * 1000 / jobs)

        await raw_round(browser, stack.site, concurrency, concurrency, setups["raw"])  # warm up
        for name in names:
            await measure(name, raw_round(browser, stack.site, jobs, concurrency, setups[name]))
        for r in range(rounds):
            for side, (source, env) in sides.items():
                if stack.executor is None or len(sides) > 1:
                    stack.start_executor(concurrency, source=source, **env)
                    await sentinel_round(stack, concurrency)  # warm up
                assert stack.executor is not None
                with profiled(stack.executor.pid, profile and profile.with_suffix(f".{side}.{r + 1}.txt")):
                    await measure(side, sentinel_round(stack, jobs))
                for name in names:
                    await measure(name, raw_round(browser, stack.site, jobs, concurrency, setups[name]))
                raw, raw_cpu = figures["raw"], cpu["raw"]
                ratios[side].append(figures[side][-1] / ((raw[-2] + raw[-1]) / 2))
                cpu_ratios[side].append(((raw_cpu[-2] + raw_cpu[-1]) / 2) / cpu[side][-1])
            shown = ", ".join(f"{k} {' '.join(f'{x:.2f}' for x in v)}" for k, v in figures.items())
            shown_cpu = ", ".join(f"{k} {' '.join(f'{x:.0f}' for x in v)}" for k, v in cpu.items())
            print(f"round {r + 1}: jobs/s {shown}; machine CPU ms/job {shown_cpu}; ratios {ratios}", flush=True)
    return {
        "jobs": jobs,
        "concurrency": concurrency,
        "jobs_per_s": figures,
        "medians": {k: statistics.median(v) for k, v in figures.items()},
        "ratios": ratios,
        "median_ratio": {side: statistics.median(v) for side, v in ratios.items()},
        "cpu_ms_per_job": cpu,
        "cpu_ratios": cpu_ratios,
        "median_cpu_ratio": {side: statistics.median(v) for side, v in cpu_ratios.items()},
    }


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy so far (/proc/stat: user, nice, system, irq,
    softirq; not idle, iowait or steal): what a round costs every process that took part in it."""
    user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in Path("/proc/stat").read_text().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


async def sweep(stack: Stack, *, levels: list[int], jobs: int, rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with raw_browser() as browser:
        plain = peers(browser, stack.site)["raw"]
        for level in levels:
            stack.start_executor(level)
            await sentinel_round(stack, level)
            sentinel = [await sentinel_round(stack, jobs) for _ in range(rounds)]
            raw = [await raw_round(browser, stack.site, jobs, level, plain) for _ in range(rounds)]
            out[str(level)] = {"sentinel": sentinel, "raw": raw, "sentinel_median": statistics.median(sentinel)}
            print(f"concurrency {level}: sentinel {statistics.median(sentinel):.2f}, raw {statistics.median(raw):.2f}")
    stack.stop_executor()
    return out


async def memory(stack: Stack, *, jobs: int, concurrency: int, batch: int) -> dict[str, Any]:
    executor = stack.start_executor(concurrency)
    samples: list[dict[str, int]] = []
    await sentinel_round(stack, concurrency)
    ran = 0
    while ran < jobs:
        await sentinel_round(stack, min(batch, jobs - ran))
        ran += min(batch, jobs - ran)
        sample = {
            "jobs": ran,
            "executor_rss_kb": rss_kb(executor.pid),
            "chromium_pss_kb": chromium_pss_kb(executor.pid),
        }
        samples.append(sample)
        print(sample, flush=True)
    settled = samples[len(samples) // 10 :] or samples
    executor_rss = [s["executor_rss_kb"] for s in settled]
    return {
        "jobs": jobs,
        "concurrency": concurrency,
        "samples": samples,
        "executor_rss_kb_first_last": [settled[0]["executor_rss_kb"], settled[-1]["executor_rss_kb"]],
        "executor_rss_spread": (max(executor_rss) - min(executor_rss)) / min(executor_rss),
    }


def source_of(revision: str, directory: Path) -> Path:
    """This repository's tree at `revision`, unpacked under `directory`."""
    root = Path(__file__).resolve().parent.parent
    target = directory / f"src-{revision}"
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(root), "archive", revision], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def parse_variants(specs: list[str]) -> dict[str, dict[str, str]]:
    """`LABEL:NAME=VALUE,NAME=VALUE` each → {label: environment}."""
    out: dict[str, dict[str, str]] = {}
    for spec in specs:
        label, _, assignments = spec.partition(":")
        pairs = [a.partition("=") for a in assignments.split(",") if a]
        if not label or not pairs or any(not name or not eq for name, eq, _ in pairs):
            raise SystemExit(f"--variant {spec!r}: expected LABEL:NAME=VALUE[,NAME=VALUE]")
        out[label] = {name: value for name, _, value in pairs}
    return out


def chromium_version() -> str:
    return subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, check=False).stdout.strip()


def bracketed_rows(run: dict[str, Any], *, label: Any = None) -> list[dict[str, Any]]:
    """`bracketed()`'s figures as rows: one per round and executor, its jobs/s, the mean of the raw
    rounds either side of it and their ratio. `label` (e.g. a run's number) heads each row."""
    sides = list(run["ratios"])
    raw = run["jobs_per_s"]["raw"]
    rows = []
    for r in range(len(run["ratios"][sides[0]])):
        for k, side in enumerate(sides):
            i = 1 + r * len(sides) + k  # the raw round just after this Sentinel round
            row = {} if label is None else {"run": label}
            row.update(
                round=r + 1,
                executor=side,
                sentinel_jobs_per_s=run["jobs_per_s"][side][r],
                raw_jobs_per_s=(raw[i - 1] + raw[i]) / 2,
                ratio=run["ratios"][side][r],
            )
            if "cpu_ms_per_job" in run:
                raw_cpu = run["cpu_ms_per_job"]["raw"]
                row.update(
                    sentinel_cpu_ms_per_job=run["cpu_ms_per_job"][side][r],
                    raw_cpu_ms_per_job=(raw_cpu[i - 1] + raw_cpu[i]) / 2,
                    cpu_ratio=run["cpu_ratios"][side][r],
                )
            rows.append(row)
    return rows


def bracketed_ratios(runs: list[dict[str, Any]]) -> dict[str, float | None]:
    """Per executor, the median over every round of Sentinel / raw; with a compared revision, this
    tree's median over the revision's; with peers, each peer's median jobs/s over raw's."""
    sides = list(runs[0]["ratios"])
    per_side = {side: [x for run in runs for x in run["ratios"][side]] for side in sides}
    ratios: dict[str, float | None] = {f"{side} / raw, median": statistics.median(v) for side, v in per_side.items()}
    if all("cpu_ratios" in run for run in runs):
        for side in sides:
            ratios[f"raw / {side}, machine CPU per job, median"] = statistics.median(
                x for run in runs for x in run["cpu_ratios"][side]
            )
    for other in sides[1:]:
        if statistics.median(per_side[other]):
            ratios[f"{sides[0]} / {other}, median ratio to raw"] = statistics.median(
                per_side[sides[0]]
            ) / statistics.median(per_side[other])
    for peer in ("raw+route", "raw+egress", "raw+trace"):
        medians = [(run["medians"].get(peer), run["medians"]["raw"]) for run in runs]
        if all(p is not None for p, _ in medians):
            ratios[f"{peer} / raw, median jobs/s"] = statistics.median(p / raw for p, raw in medians)
    return ratios


def sweep_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for level, figures in result.items():
        sentinel, raw = statistics.median(figures["sentinel"]), statistics.median(figures["raw"])
        rows.append(
            {
                "concurrency": int(level),
                "sentinel_jobs_per_s": sentinel,
                "raw_jobs_per_s": raw,
                "ratio": sentinel / raw if raw else None,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=80)
    parser.add_argument("--concurrency", default="5", help="one level, or a range 1..8 to sweep")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peers", action="store_true", help="also raw+route, raw+egress and raw+trace")
    parser.add_argument(
        "--trace-modes", default="", help="also run the executor with these SENTINEL_TRACE values, comma separated"
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL:NAME=VALUE[,NAME=VALUE]",
        help="also run the executor with this environment, round by round (repeatable)",
    )
    parser.add_argument("--memory", type=int, default=0, help="run this many jobs and sample memory")
    parser.add_argument("--json", type=Path, help="where the result goes (default: by mode, see above)")
    parser.add_argument("--compare", metavar="REV", help="also run the executor of git revision REV, round by round")
    parser.add_argument("--py-spy", type=Path, help="profile the executor in each Sentinel round (OUT.<round>.txt)")
    args = parser.parse_args()
    # A SIGTERM (a timeout) unwinds like Ctrl-C, so every process the bench started is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "json"}
    with tempfile.TemporaryDirectory(prefix="bench-browser-") as tmp, open_stack(Path(tmp)) as stack:
        if args.memory:
            mem = asyncio.run(
                memory(stack, jobs=args.memory, concurrency=int(args.concurrency), batch=max(args.memory // 20, 1))
            )
            report = harness.result(
                "browser",
                title=f"{TITLE}: executor memory over {args.memory} jobs",
                settings=settings,
                rows=mem["samples"],
                ratios={"executor RSS spread after the first tenth": mem["executor_rss_spread"]},
                chromium=chromium_version(),
                memory=mem,
            )
            default = RESULTS.with_name("browser-memory.json")
        elif ".." in args.concurrency:
            low, high = (int(x) for x in args.concurrency.split(".."))
            swept = asyncio.run(sweep(stack, levels=list(range(low, high + 1)), jobs=args.jobs, rounds=args.rounds))
            report = harness.result(
                "browser",
                title=f"{TITLE}, by executor concurrency",
                settings=settings,
                rows=sweep_rows(swept),
                chromium=chromium_version(),
                sweep=swept,
            )
            default = RESULTS.with_name("browser-sweep.json")
        else:
            r = asyncio.run(
                bracketed(
                    stack,
                    rounds=args.rounds,
                    jobs=args.jobs,
                    concurrency=int(args.concurrency),
                    with_peers=args.peers,
                    profile=args.py_spy,
                    compare=(args.compare, source_of(args.compare, Path(tmp))) if args.compare else None,
                    trace_modes=tuple(m for m in args.trace_modes.split(",") if m),
                    variants=parse_variants(args.variant),
                )
            )
            report = harness.result(
                "browser",
                title=TITLE,
                settings=settings,
                rows=bracketed_rows(r),
                ratios=bracketed_ratios([r]),
                chromium=chromium_version(),
                bracketed=r,
            )
            default = RESULTS
            print(f"\n{'':12}{'jobs/s (median)':>18}")
            for name, value in r["medians"].items():
                print(f"{name:12}{value:>18.2f}")
            for side, ratios in r["ratios"].items():
                print(f"{side} / raw: {', '.join(f'{x:.3f}' for x in ratios)} → median {r['median_ratio'][side]:.3f}")
            for side, ratios in r["cpu_ratios"].items():
                shown = ", ".join(f"{x:.3f}" for x in ratios)
                print(f"raw CPU / {side} CPU per job: {shown} → median {r['median_cpu_ratio'][side]:.3f}")
    print(f"wrote {harness.write_result(report, args.json or default)}")


if __name__ == "__main__":
    main()
