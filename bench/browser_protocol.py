"""What a browser job asks of Playwright and Chromium: messages per job, Sentinel beside raw Playwright.

Jobs/s on this machine move ±10% from round to round, so a difference of a few percent between the
executor and raw Playwright cannot be seen in them. What each side *asks* of the browser can: the
same 4-step test as `bench.browser` runs as Sentinel jobs (the real `sentinel executor`, guard on,
the page allowed) and as raw Playwright (one Chromium with the executor's launch flags, a fresh
context per test), each with Playwright's own logging on (`DEBUG=pw:protocol,pw:channel`), and the
log lines are counted per job:

- CDP: the Chrome DevTools Protocol messages between the Playwright driver and Chromium — commands
  sent (by method), events received (by method) and command replies;
- channel: the messages between the Python client and the driver — calls (by method) and events.

Four sides: Sentinel with `SENTINEL_TRACE=off` beside raw Playwright, and Sentinel as shipped
(every attempt traced, dropped when it passes) beside raw Playwright recording the same trace
(`bench.browser`'s `raw+trace` peer). Each side runs a warm-up job first; only the lines written
while its `--jobs` jobs ran are counted (the logs are files; a side ends when its log stops
growing). The counts hardly vary from run to run: a favicon request Chromium makes or not.

Usage: .venv/bin/python -m bench.browser_protocol [--jobs 20] [--json OUT]
Writes bench/results/browser-protocol.json in the common shape of bench/harness.py.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import harness
from bench.browser import Stack, open_stack, peers, raw_browser, raw_round, sentinel_round

RESULTS = harness.RESULTS / "browser-protocol.json"
TITLE = "Browser path: what a job asks of Playwright and Chromium, Sentinel beside raw Playwright"
DEBUG = "pw:protocol,pw:channel"
CONCURRENCY = 5
#: How long a log must stay the same size before a side counts as ended.
QUIET_S = 0.5
#: (side, what it is measured against): each pair's totals give a ratio.
PAIRS = (("sentinel trace=off", "raw"), ("sentinel", "raw+trace"))

_LINE = re.compile(r"pw:(protocol|channel) (SEND ►|◀ RECV|SEND>|<RECV|<EVENT) (\{.*)")
_KINDS = {"SEND ►": "cdp send", "◀ RECV": "cdp event", "SEND>": "channel call", "<EVENT": "channel event"}


def tally(text: str) -> collections.Counter[str]:
    """Message kinds in a Playwright debug log: `cdp send M`, `cdp event M`, `cdp reply`,
    `channel call M`, `channel event M` (replies to calls are not counted: one per call)."""
    counts: collections.Counter[str] = collections.Counter()
    for line in text.splitlines():
        match = _LINE.search(line)
        if match is None or match.group(2) == "<RECV":
            continue
        try:
            method = json.loads(match.group(3)).get("method")
        except ValueError:
            method = "?"  # a line cut short
        if method is None:
            counts["cdp reply"] += 1  # a CDP reply carries its command's id, not a method
        else:
            counts[f"{_KINDS[match.group(2)]} {method}"] += 1
    return counts


def wait_quiet(log: Path, *, within: float = 30.0) -> None:
    """Wait until `log` has stopped growing (QUIET_S without a byte), at most `within` seconds."""
    deadline = time.monotonic() + within
    size, since = log.stat().st_size, time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = log.stat().st_size
        if now != size:
            size, since = now, time.monotonic()
        elif time.monotonic() - since >= QUIET_S:
            return


def sentinel_side(stack: Stack, jobs: int, env: dict[str, str]) -> collections.Counter[str]:
    """Messages while `jobs` Sentinel jobs ran on a fresh executor with `env`."""
    stack.start_executor(CONCURRENCY, source=None, **{"DEBUG": DEBUG, **env})
    try:
        log = stack.directory / f"executor-{len(stack.processes) - 1}.log"  # Stack.launch's name for it
        asyncio.run(sentinel_round(stack, 1))
        wait_quiet(log)
        offset = log.stat().st_size
        asyncio.run(sentinel_round(stack, jobs))
        wait_quiet(log)
        with log.open("rb") as f:
            f.seek(offset)
            return tally(f.read().decode(errors="replace"))
    finally:
        stack.stop_executor()


def raw_side(site: str, peer: str, jobs: int, directory: Path) -> collections.Counter[str]:
    """Messages while `jobs` raw Playwright tests ran as `peer`, in a child process (Playwright's
    Python client reads DEBUG when it is imported)."""
    log = directory / f"raw-{peer}.log"
    with log.open("wb") as out:
        subprocess.run(
            [sys.executable, "-m", "bench.browser_protocol", "--raw-child", peer, "--site", site, "--jobs", str(jobs)],
            env={**os.environ, "DEBUG": DEBUG},
            stdout=subprocess.DEVNULL,
            stderr=out,
            check=True,
            timeout=600,
        )
    text = log.read_text(errors="replace")
    start, end = text.index("bench:start\n"), text.index("bench:end\n")
    return tally(text[start:end])


def raw_child(peer: str, site: str, jobs: int) -> None:
    """The child of `raw_side`: a warm-up test, then `jobs` tests between two marks on stderr."""

    async def run() -> None:
        async with raw_browser() as browser:
            setup = peers(browser, site)[peer]
            await raw_round(browser, site, 1, 1, setup)
            print("bench:start", file=sys.stderr, flush=True)
            await raw_round(browser, site, jobs, CONCURRENCY, setup)
            print("bench:end", file=sys.stderr, flush=True)

    asyncio.run(run())


def rows_of(sides: dict[str, collections.Counter[str]], jobs: int) -> list[dict[str, Any]]:
    """One row per message kind whose count differs between two sides by a tenth of one a job or
    more, then the totals."""
    kinds = sorted({k for c in sides.values() for k in c}, key=lambda k: (k.split()[0], k))
    rows: list[dict[str, Any]] = []
    for kind in kinds:
        per_job = {side: c[kind] / jobs for side, c in sides.items()}
        if max(per_job.values()) - min(per_job.values()) >= 0.1:
            rows.append({"message": kind, **per_job})
    for group in ("cdp", "channel"):
        rows.append(
            {
                "message": f"all {group} messages",
                **{side: sum(n for k, n in c.items() if k.startswith(group)) / jobs for side, c in sides.items()},
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--json", type=Path, help=f"where the result goes (default {RESULTS})")
    parser.add_argument("--raw-child", metavar="PEER", help=argparse.SUPPRESS)
    parser.add_argument("--site", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_child:
        raw_child(args.raw_child, args.site, args.jobs)
        return
    sides: dict[str, collections.Counter[str]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-protocol-") as tmp, open_stack(Path(tmp)) as stack:
        sides["sentinel trace=off"] = sentinel_side(stack, args.jobs, {"SENTINEL_TRACE": "off"})
        sides["raw"] = raw_side(stack.site, "raw", args.jobs, Path(tmp))
        sides["sentinel"] = sentinel_side(stack, args.jobs, {})
        sides["raw+trace"] = raw_side(stack.site, "raw+trace", args.jobs, Path(tmp))
    rows = rows_of(sides, args.jobs)
    totals = {row["message"]: row for row in rows if row["message"].startswith("all ")}
    ratios = {
        f"{side} / {peer}: {group} messages per job": totals[f"all {group} messages"][side]
        / totals[f"all {group} messages"][peer]
        for side, peer in PAIRS
        for group in ("cdp", "channel")
    }
    report = harness.result(
        "browser-protocol",
        title=TITLE,
        settings={"jobs": args.jobs, "concurrency": CONCURRENCY},
        rows=rows,
        ratios=ratios,
        counts={side: dict(c) for side, c in sides.items()},
    )
    for row in rows:
        print(f"{row['message']:60}" + "".join(f"{row[s]:>10.2f}" for s in sides))
    print(json.dumps(ratios, indent=1))
    print(f"wrote {harness.write_result(report, args.json or RESULTS)}")


if __name__ == "__main__":
    main()
