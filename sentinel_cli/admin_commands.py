"""`sentinel stats|events|pause|resume|dlq|jobs`: see and steer a running queue through the API.

    sentinel stats [--watch [--interval S]]     the queue's figures and health, per lane
    sentinel events [--kind K]… [--state S]… [--tag T] [--cursor C] [--limit N]
    sentinel pause | sentinel resume
    sentinel dlq list [--tag T] [--limit N] | dlq requeue ID [--priority P] | dlq purge [--older-than S]
    sentinel jobs [--state S] [--tag T] [--schedule ID] [--limit N] [--page-token T]

Each command is one or a few QueueAdmin / TestExecution calls; output is plain text for people.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shlex
import sys
from collections.abc import AsyncGenerator, Iterable
from datetime import datetime
from typing import Any, TextIO

from sentinel_cli import arguments
from sentinel_cli.client import PRIORITIES, open_client, shown_time, state_name
from sentinel_client import DeadLetter, Figures, HealthStatus, JobState, Priority, QueueEvent, QueueHealth
from shared.events import EVENT_KINDS

COMMANDS = ("stats", "events", "pause", "resume", "dlq", "jobs")
#: How many jobs `sentinel jobs` lists by default.
_JOBS_LIMIT = 20
STATES: dict[str, JobState] = {state.value: state for state in JobState}


def add_parsers(sub: Any) -> None:
    """Add the commands to the `sentinel` argument parser's subcommands."""
    stats = sub.add_parser("stats", help="the queue's figures and health, per priority lane")
    stats.add_argument("--watch", action="store_true", help="refresh until Ctrl-C")
    stats.add_argument("--interval", type=arguments.interval, default=2.0, help="seconds between refreshes (default 2)")
    events = sub.add_parser("events", help="follow queue events (Ctrl-C to stop)")
    events.add_argument("--kind", action="append", choices=EVENT_KINDS, default=[], help="only these kinds")
    events.add_argument("--state", action="append", choices=sorted(STATES), default=[], help="only these states")
    events.add_argument("--tag", default="", help="only jobs with this tag")
    events.add_argument("--cursor", default="", help="replay from after this cursor (default: new events only)")
    events.add_argument("--limit", type=arguments.count, default=0, help="stop after this many events")
    sub.add_parser("pause", help="claim nothing new (running jobs finish; submits are accepted)")
    sub.add_parser("resume", help="claim again")
    dlq = sub.add_parser("dlq", help="dead-lettered jobs")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    dlq_list = dlq_sub.add_parser("list", help="newest first")
    dlq_list.add_argument("--tag", default="")
    dlq_list.add_argument("--limit", type=arguments.count, default=50, help="at most this many (0: all)")
    requeue = dlq_sub.add_parser("requeue", help="run a dead-lettered job again, attempts reset")
    requeue.add_argument("job_id")
    requeue.add_argument("--priority", choices=sorted(PRIORITIES), help="lane (default low)")
    purge = dlq_sub.add_parser("purge", help="drop dead letters (the jobs stay until retention)")
    purge.add_argument(
        "--older-than", type=arguments.seconds, default=0, metavar="SECONDS", help="only older ones (default all)"
    )
    listing = sub.add_parser("jobs", help="list jobs, newest first")
    listing.add_argument("--state", choices=sorted(STATES))
    listing.add_argument("--tag", default="")
    listing.add_argument("--limit", type=arguments.count, default=_JOBS_LIMIT)
    listing.add_argument("--page-token", default="")
    listing.add_argument("--schedule", default="", metavar="ID", help="only the jobs this schedule fired")


def _lane(priority: Priority | None) -> str:
    return priority.value if priority else "?"


def render_health(health: QueueHealth, out: TextIO) -> None:
    """The `sentinel stats` table."""
    verdict = health.status.name if health.status else "UNSPECIFIED"
    if health.stats is None:  # Redis did not answer: no figures, nor whether the queue is paused
        out.write(f"queue: no figures  health {verdict}\n")
        for reason in health.reasons:
            out.write(f"  ! {reason}\n")
        return
    s = health.stats
    scope = f"tenant {s.tenant}" if s.tenant else "all tenants"
    out.write(f"queue {s.queue} ({scope})  {'PAUSED' if s.paused else 'running'}  health {verdict}\n")
    for reason in health.reasons:
        out.write(f"  ! {reason}\n")
    out.write("\n" + _cells(title for title, _ in _COLUMNS))
    for lane in s.lanes:
        out.write(_row(_lane(lane.priority), lane))
    out.write(_row("total", s))
    out.write(
        f"\n  processed {s.total_processed} ({s.total_failed} failed, {s.total_cancelled} cancelled)"
        f"   last finished {shown_time(s.last_processed_at)}\n"
    )


#: The `sentinel stats` table's columns: title and width (the first, the lane, is left-aligned).
_COLUMNS = (
    ("lane", -8),
    ("waiting", 9),
    ("active", 8),
    ("delayed", 9),
    ("completed", 11),
    ("failed", 8),
    ("cancelled", 11),
    ("dead", 6),
    ("processed", 11),
    ("jobs/min", 10),
    ("avg ms", 8),
)


def _row(name: str, figures: Figures) -> str:
    """One line of the stats table from a LaneStats or QueueStats (the same figure fields)."""
    values = (
        name,
        figures.waiting,
        figures.active,
        figures.delayed,
        figures.completed,
        figures.failed,
        figures.cancelled,
        figures.dead_lettered,
        figures.total_processed,
        f"{figures.processing_rate:.1f}",
        f"{figures.avg_processing_time:.0f}",
    )
    return _cells(values)


def _cells(values: Iterable[object]) -> str:
    cells = (
        f"{value:<{-width}}" if width < 0 else f"{value:>{width}}"
        for value, (_, width) in zip(values, _COLUMNS, strict=True)
    )
    return "  " + "".join(cells) + "\n"


async def show_stats(address: str | None, *, watch: bool = False, interval: float = 2.0, times: int = 0) -> int:
    """`sentinel stats`: 0 when healthy, 1 when degraded or unhealthy (the last view, with --watch)."""
    async with open_client(address) as client:
        shown = 0
        while True:
            health = await client.health()
            if watch and sys.stdout.isatty():
                sys.stdout.write("\x1b[H\x1b[2J")
            if watch:
                sys.stdout.write(f"{datetime.now():%H:%M:%S}  (every {interval:g} s, Ctrl-C to stop)\n")
            render_health(health, sys.stdout)
            sys.stdout.flush()
            shown += 1
            if not watch or (times and shown >= times):
                return 0 if health.status is HealthStatus.HEALTHY else 1
            await asyncio.sleep(interval)


def render_event(event: QueueEvent) -> str:
    when = event.time.astimezone().strftime("%H:%M:%S.%f")[:-3] if event.time else "-"
    state = event.state.value if event.state else "-"
    tags = f" [{','.join(event.tags)}]" if event.tags else ""
    job = event.job_id or "-"
    return f"{when}  {event.kind:<13} {state:<10} {job}{tags}  {event.message}".rstrip()


async def follow_events(
    address: str | None, *, states: list[str], kinds: list[str], tag: str, cursor: str, limit: int = 0
) -> int:
    """`sentinel events`: print events as they come; reconnects with the last cursor if the API goes away."""
    seen = 0
    async with open_client(address) as client:
        events = client.watch_events(states=[STATES[s] for s in states], kinds=kinds, tag=tag, cursor=cursor)
        async with contextlib.aclosing(events):
            async for event in events:
                print(render_event(event), flush=True)
                seen += 1
                if limit and seen >= limit:
                    return 0
        return 0


async def set_paused(address: str | None, paused: bool) -> int:
    async with open_client(address) as client:
        state = await (client.pause() if paused else client.resume())
    print(f"queue {state.queue} {'paused: claiming nothing new' if state.paused else 'resumed'}")
    return 0


async def dead_letters(address: str | None, args: argparse.Namespace) -> int:
    async with open_client(address) as client:
        if args.dlq_command == "list":
            return await _list_dead_letters(client.dead_letters(tag=args.tag, page_size=args.limit), args.limit)
        if args.dlq_command == "requeue":
            job = await client.requeue_dead_letter(args.job_id, priority=args.priority)
            print(f"{job.id}  {state_name(job.state)}  in the {_lane(job.priority)} lane")
            return 0
        purged = await client.purge_dead_letters(older_than_ms=int(args.older_than * 1000))
        print(f"purged {purged} dead letter(s)")
        return 0


async def _list_dead_letters(letters: AsyncGenerator[DeadLetter, None], limit: int) -> int:
    """Print the newest `limit` dead letters (all when 0)."""
    shown = 0
    async with contextlib.aclosing(letters):
        async for d in letters:
            print(f"{d.job_id}  {shown_time(d.dead_lettered_at)}  {d.attempts} attempt(s)  {d.name}  {d.reason}")
            if d.error and d.error.message:
                category = d.error.category.value if d.error.category else "unspecified"
                print(f"    ↳ {category}: {d.error.message}")
            shown += 1
            if limit and shown >= limit:
                break
    if not shown:
        print("no dead letters")
    return 0


async def list_jobs(
    address: str | None, *, state: str | None, tag: str, limit: int, page_token: str, schedule_id: str = ""
) -> int:
    async with open_client(address) as client:
        page = await client.list_jobs(
            state=state, tag=tag, schedule_id=schedule_id, page_size=limit, page_token=page_token
        )
    if page.partial:
        print(f"sentinel: note: {page.partial}", file=sys.stderr)
    if not page.items:
        print("no jobs")
    for job in page.items:
        ended = f"  {job.progress.percentage}%" if not job.ended else ""
        tags = f"  [{','.join(job.tags)}]" if job.tags else ""
        print(
            f"{job.id}  {state_name(job.state):<9} {_lane(job.priority):<6} "
            f"{shown_time(job.created_at)}  {job.attempt}/{job.max_attempts}  {job.name}{tags}{ended}"
        )
    if page.next_page_token:
        # The next page of this same listing: its filters and size, then the token.
        argv = ["sentinel", "jobs"]
        for flag, value in (("--state", state or ""), ("--tag", tag), ("--schedule", schedule_id)):
            if value:
                argv.append(f"{flag}={value}")  # one word: a tag may begin with '-'
        if limit != _JOBS_LIMIT:
            argv.append(f"--limit={limit}")
        print(f"more: {shlex.join([*argv, '--page-token', page.next_page_token])}")
    return 0


async def run(args: argparse.Namespace, address: str | None) -> int:
    """Run one of COMMANDS; returns the exit code."""
    if args.command == "stats":
        return await show_stats(address, watch=args.watch, interval=args.interval)
    if args.command == "events":
        return await follow_events(
            address, states=args.state, kinds=args.kind, tag=args.tag, cursor=args.cursor, limit=args.limit
        )
    if args.command in ("pause", "resume"):
        return await set_paused(address, args.command == "pause")
    if args.command == "dlq":
        return await dead_letters(address, args)
    return await list_jobs(
        address,
        state=args.state,
        tag=args.tag,
        limit=args.limit,
        page_token=args.page_token,
        schedule_id=args.schedule,
    )
