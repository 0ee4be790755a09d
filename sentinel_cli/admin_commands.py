"""`sentinel stats|events|pause|resume|dlq|jobs`: see and steer a running queue through the API.

    sentinel stats [--watch [--interval S]]     the queue's figures and health, per lane
    sentinel events [--state S]… [--tag T] [--cursor C] [--limit N]
    sentinel pause | sentinel resume
    sentinel dlq list [--tag T] [--limit N] | dlq requeue ID [--priority P] | dlq purge [--older-than S]
    sentinel jobs [--state S] [--tag T] [--limit N] [--page-token T]

Each command is one or a few QueueAdmin / TestExecution calls; output is plain text for people.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, TextIO, cast

from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from sentinel_cli.client import PRIORITIES, TERMINAL, channel, resumable, state_name

COMMANDS = ("stats", "events", "pause", "resume", "dlq", "jobs")
STATES: dict[str, pb.JobState] = {
    state_name(v).lower(): cast(pb.JobState, v) for v in pb.JobState.values() if v != pb.JOB_STATE_UNSPECIFIED
}
_LANES = {pb.PRIORITY_HIGH: "high", pb.PRIORITY_MEDIUM: "medium", pb.PRIORITY_LOW: "low"}


def add_parsers(sub: Any) -> None:
    """Add the commands to the `sentinel` argument parser's subcommands."""
    stats = sub.add_parser("stats", help="the queue's figures and health, per priority lane")
    stats.add_argument("--watch", action="store_true", help="refresh until Ctrl-C")
    stats.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes (default 2)")
    events = sub.add_parser("events", help="follow queue events (Ctrl-C to stop)")
    events.add_argument("--state", action="append", choices=sorted(STATES), default=[], help="only these states")
    events.add_argument("--tag", default="", help="only jobs with this tag")
    events.add_argument("--cursor", default="", help="replay from after this cursor (default: new events only)")
    events.add_argument("--limit", type=int, default=0, help="stop after this many events")
    sub.add_parser("pause", help="claim nothing new (running jobs finish; submits are accepted)")
    sub.add_parser("resume", help="claim again")
    dlq = sub.add_parser("dlq", help="dead-lettered jobs")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    dlq_list = dlq_sub.add_parser("list", help="newest first")
    dlq_list.add_argument("--tag", default="")
    dlq_list.add_argument("--limit", type=int, default=50)
    requeue = dlq_sub.add_parser("requeue", help="run a dead-lettered job again, attempts reset")
    requeue.add_argument("job_id")
    requeue.add_argument("--priority", choices=sorted(PRIORITIES), help="lane (default low)")
    purge = dlq_sub.add_parser("purge", help="drop dead letters (the jobs stay until retention)")
    purge.add_argument("--older-than", type=float, default=0, metavar="SECONDS", help="only older ones (default all)")
    listing = sub.add_parser("jobs", help="list jobs, newest first")
    listing.add_argument("--state", choices=sorted(STATES))
    listing.add_argument("--tag", default="")
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--page-token", default="")


def _time(stamp: Any) -> str:
    if not stamp.seconds and not stamp.nanos:
        return "-"
    return datetime.fromtimestamp(stamp.seconds + stamp.nanos / 1e9).strftime("%Y-%m-%d %H:%M:%S")


def render_health(health: pb.QueueHealth, out: TextIO) -> None:
    """The `sentinel stats` table."""
    s = health.stats
    verdict = str(pb.HealthStatus.Name(health.status)).removeprefix("HEALTH_STATUS_")
    scope = f"tenant {s.tenant}" if s.tenant else "all tenants"
    out.write(f"queue {s.queue or '?'} ({scope})  {'PAUSED' if s.paused else 'running'}  health {verdict}\n")
    for reason in health.reasons:
        out.write(f"  ! {reason}\n")
    if not health.HasField("stats"):
        return
    out.write("\n" + _cells(title for title, _ in _COLUMNS))
    for lane in s.lanes:
        out.write(_row(_LANES.get(lane.priority, "?"), lane))
    out.write(_row("total", s))
    out.write(
        f"\n  processed {s.total_processed} ({s.total_failed} failed)   last finished {_time(s.last_processed_at)}\n"
    )


#: The `sentinel stats` table's columns: title and width (the first, the lane, is left-aligned).
_COLUMNS = (
    ("lane", -8),
    ("waiting", 9),
    ("active", 8),
    ("delayed", 9),
    ("completed", 11),
    ("failed", 8),
    ("dead", 6),
    ("processed", 11),
    ("jobs/min", 10),
    ("avg ms", 8),
)


def _row(name: str, figures: Any) -> str:
    """One line of the stats table from a LaneStats or QueueStats (the same figure fields)."""
    values = (
        name,
        figures.waiting,
        figures.active,
        figures.delayed,
        figures.completed,
        figures.failed,
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


async def show_stats(address: str, *, watch: bool = False, interval: float = 2.0, times: int = 0) -> int:
    """`sentinel stats`: 0 when healthy, 1 when degraded or unhealthy (the last view, with --watch)."""
    async with channel(address) as ch:
        stub = pb_grpc.QueueAdminStub(ch)
        shown = 0
        while True:
            health = await stub.GetHealth(pb.GetHealthRequest(), timeout=10)
            if watch and sys.stdout.isatty():
                sys.stdout.write("\x1b[H\x1b[2J")
            if watch:
                sys.stdout.write(f"{datetime.now():%H:%M:%S}  (every {interval:g} s, Ctrl-C to stop)\n")
            render_health(health, sys.stdout)
            sys.stdout.flush()
            shown += 1
            if not watch or (times and shown >= times):
                return 0 if health.status == pb.HEALTH_STATUS_HEALTHY else 1
            await asyncio.sleep(interval)


def render_event(event: pb.QueueEvent) -> str:
    when = datetime.fromtimestamp(event.time.seconds + event.time.nanos / 1e9).strftime("%H:%M:%S.%f")[:-3]
    state = state_name(event.state).lower() if event.state else "-"
    tags = f" [{','.join(event.tags)}]" if event.tags else ""
    job = event.job_id or "-"
    return f"{when}  {event.kind:<13} {state:<10} {job}{tags}  {event.message}".rstrip()


async def follow_events(
    address: str, *, states: list[str], tag: str, cursor: str, limit: int = 0, reconnect_s: float = 60.0
) -> int:
    """`sentinel events`: print events as they come; reconnects with the last cursor if the API goes away."""
    wanted = [STATES[s] for s in states]
    seen = 0
    async with channel(address) as ch:
        stub = pb_grpc.QueueAdminStub(ch)
        events = resumable(
            lambda at: stub.WatchEvents(pb.WatchEventsRequest(states=wanted, tag=tag, cursor=at)),
            lambda event: str(event.cursor),
            cursor=cursor,
            reconnect_deadline_s=reconnect_s,
        )
        async with contextlib.aclosing(events):
            async for event in events:
                print(render_event(event), flush=True)
                seen += 1
                if limit and seen >= limit:
                    return 0
        return 0


async def _admin(address: str, call: Callable[[Any], Awaitable[Any]]) -> Any:
    async with channel(address) as ch:
        return await call(pb_grpc.QueueAdminStub(ch))


async def set_paused(address: str, paused: bool) -> int:
    async def call(stub: Any) -> Any:
        if paused:
            return await stub.Pause(pb.PauseRequest(), timeout=10)
        return await stub.Resume(pb.ResumeRequest(), timeout=10)

    state = await _admin(address, call)
    print(f"queue {state.queue} {'paused: claiming nothing new' if state.paused else 'resumed'}")
    return 0


async def dead_letters(address: str, args: argparse.Namespace) -> int:
    if args.dlq_command == "list":
        request = pb.ListDeadLettersRequest(tag=args.tag, page_size=args.limit)
        reply = await _admin(address, lambda stub: stub.ListDeadLetters(request, timeout=10))
        if not reply.dead_letters:
            print("no dead letters")
        for d in reply.dead_letters:
            category = str(pb.ErrorCategory.Name(d.error.category)).removeprefix("ERROR_CATEGORY_").lower()
            print(f"{d.job_id}  {_time(d.dead_lettered_at)}  {d.attempts} attempt(s)  {d.name}  {d.reason}")
            if d.error.message:
                print(f"    ↳ {category}: {d.error.message}")
        return 0
    if args.dlq_command == "requeue":
        lane = PRIORITIES.get(args.priority or "", pb.PRIORITY_UNSPECIFIED)
        requeue = pb.RequeueDeadLetterRequest(job_id=args.job_id, priority=lane)
        job = await _admin(address, lambda stub: stub.RequeueDeadLetter(requeue, timeout=10))
        print(f"{job.job_id}  {state_name(job.state)}  in the {_LANES.get(job.priority, '?')} lane")
        return 0
    purge = pb.PurgeDeadLettersRequest(older_than_ms=int(args.older_than * 1000))
    reply = await _admin(address, lambda stub: stub.PurgeDeadLetters(purge, timeout=30))
    print(f"purged {reply.purged} dead letter(s)")
    return 0


async def list_jobs(address: str, *, state: str | None, tag: str, limit: int, page_token: str) -> int:
    request = pb.ListJobsRequest(
        state=STATES[state] if state else pb.JOB_STATE_UNSPECIFIED, tag=tag, page_size=limit, page_token=page_token
    )
    async with channel(address) as ch:
        reply = await pb_grpc.TestExecutionStub(ch).ListJobs(request, timeout=10)
    if not reply.jobs:
        print("no jobs")
    for job in reply.jobs:
        ended = f"  {job.progress.percentage}%" if job.state not in TERMINAL else ""
        tags = f"  [{','.join(job.tags)}]" if job.tags else ""
        print(
            f"{job.job_id}  {state_name(job.state):<9} {_LANES.get(job.priority, '?'):<6} "
            f"{_time(job.created_at)}  {job.attempt}/{job.max_attempts}  {job.name}{tags}{ended}"
        )
    if reply.next_page_token:
        print(f"more: sentinel jobs --page-token '{reply.next_page_token}'")
    return 0


async def run(args: argparse.Namespace, address: str) -> int:
    """Run one of COMMANDS; returns the exit code."""
    if args.command == "stats":
        return await show_stats(address, watch=args.watch, interval=args.interval)
    if args.command == "events":
        return await follow_events(address, states=args.state, tag=args.tag, cursor=args.cursor, limit=args.limit)
    if args.command in ("pause", "resume"):
        return await set_paused(address, args.command == "pause")
    if args.command == "dlq":
        return await dead_letters(address, args)
    return await list_jobs(address, state=args.state, tag=args.tag, limit=args.limit, page_token=args.page_token)
