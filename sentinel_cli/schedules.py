"""`sentinel schedules`: run a test again and again, by cron or at a fixed interval, through the API.

    sentinel schedules create FILE (--every 5m | --cron "*/5 * * * *") [--name N] [--overlap skip|allow|buffer_one]
                                   [--tz Europe/Berlin] [--jitter 30s] [--catchup 10m] [--paused]
                                   [--priority P] [--tag T]…
                                   [--notify URL [--notify-event E]… [--notify-secret-env VAR | --notify-secret-prompt]]
    sentinel schedules list
    sentinel schedules get ID
    sentinel schedules pause ID [--note TEXT] | resume ID [--note TEXT]
    sentinel schedules trigger ID          run it once now
    sentinel schedules delete ID

FILE is what `sentinel submit` takes (a definition, a SubmitRequest, or a Chrome Recorder recording).
`--notify` sends a webhook when the schedule's runs start failing or recover (events as `sentinel
alerts` takes them); its signing secret comes from an environment variable or a prompt, never from
the command line. Every command is one SDK call (`sentinel_client`); output is plain text for people.
Times are shown in the schedule's own time zone with their UTC offset (`2026-12-07 09:00:00-05:00`
for a cron in America/New_York; `+00:00` for UTC), as its cron reads them. An error the API finds in
what a flag set names the flag (`--jitter: at most 4999 ms …`).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sentinel_cli import recorder, webhooks
from sentinel_cli.arguments import flag_errors
from sentinel_cli.client import PRIORITIES, open_client, shown_time, state_name
from sentinel_client import InvalidArgumentError, Schedule, ScheduleFields, SubmitOptions
from shared.schedules.timing import MAX_INTERVAL_MS, MIN_INTERVAL_MS

COMMAND = "schedules"
#: The overlap policies as the README and every listing spell them; `buffer-one` is taken too.
OVERLAPS = ("skip", "allow", "buffer_one")
_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"(-?)(\d+)(ms|s|m|h|d)")
#: The flag of `create` that sets each field of the Schedule, so an error the API finds names what
#: the user typed. A field not here (the template's definition) keeps its path.
_FLAGS = {
    "schedule.name": "--name",
    "schedule.cron": "--cron",
    "schedule.interval_ms": "--every",
    "schedule.timezone": "--tz",
    "schedule.jitter_ms": "--jitter",
    "schedule.overlap": "--overlap",
    "schedule.catchup_window_ms": "--catchup",
    "schedule.paused": "--paused",
    "schedule.template.options.priority": "--priority",
    "schedule.template.options.tags": "--tag",
    "schedule.notifications": "--notify",
    "schedule.notifications[].events": "--notify-event",
    "schedule.notifications[].secret": "--notify-secret-env",
}


def _signed_ms(text: str) -> int:
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"a duration like 30s, 5m, 1h, 500ms or 1d, got {text!r}")
    sign = -1 if match.group(1) else 1
    return sign * int(match.group(2)) * _UNITS_MS[match.group(3)]


def duration_ms(text: str) -> int:
    """`5m`, `30s`, `1h`, `500ms`, `1d` as milliseconds (argparse's type for durations)."""
    ms = _signed_ms(text)
    if ms < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text!r}")
    return ms


def interval_ms(text: str) -> int:
    """`--every`'s type: a duration the API takes as an interval (1s to 366 days)."""
    ms = _signed_ms(text)
    if ms < 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    if not MIN_INTERVAL_MS <= ms <= MAX_INTERVAL_MS:
        raise argparse.ArgumentTypeError(
            f"must be between 1s and 366d ({MIN_INTERVAL_MS} and {MAX_INTERVAL_MS} ms), got {text!r}"
        )
    return ms


def overlap(text: str) -> str:
    """`--overlap`'s type: `buffer-one` is `buffer_one`, as the SDK takes it too."""
    return text.strip().lower().replace("-", "_")


def add_parser(sub: Any) -> None:
    """Add `sentinel schedules …` to the `sentinel` argument parser's subcommands."""
    schedules = sub.add_parser(COMMAND, help="run a test by cron or at a fixed interval")
    actions = schedules.add_subparsers(dest="schedule_command", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create",
        help="schedule a test definition (JSON) or recording",
        description="Schedule a test. A webhook's signing secret is read from an environment variable "
        "(--notify-secret-env) or asked for (--notify-secret-prompt), never taken from the command line.",
    )
    # `--every -5m` is a (refused) value, not an unknown option: argparse takes only `-5` or `-1.5` so.
    create._negative_number_matcher = re.compile(r"^-\d")
    create.add_argument("file")
    when = create.add_mutually_exclusive_group(required=True)
    when.add_argument("--every", type=interval_ms, metavar="DURATION", help="a fixed interval: 30s, 5m, 1h (>= 1s)")
    when.add_argument("--cron", help='5 fields ("*/5 * * * *"), or 6 with seconds first')
    create.add_argument("--name", default="", help="the schedule's name (default: the file's name without .json)")
    create.add_argument(
        "--overlap",
        type=overlap,
        choices=OVERLAPS,
        default="skip",
        help="while the last run goes on (default skip; buffer-one is taken too)",
    )
    create.add_argument("--tz", default="", help="IANA time zone of the cron (default UTC)")
    create.add_argument(
        "--jitter", type=duration_ms, default=0, metavar="DURATION", help="run each fire up to this late"
    )
    create.add_argument(
        "--catchup", type=duration_ms, default=0, metavar="DURATION", help="run fires missed while the API was down"
    )
    create.add_argument("--paused", action="store_true", help="create it paused")
    create.add_argument("--priority", choices=sorted(PRIORITIES))
    create.add_argument("--tag", action="append", default=[], metavar="T", help="tag every run (repeatable)")
    webhooks.add_arguments(create, prefix="--notify", required=False)
    update = actions.add_parser(
        "update",
        help="change what is given: test, timing, name, overlap (its id, runs and alert state stay)",
    )
    update._negative_number_matcher = re.compile(r"^-\d")
    update.add_argument("schedule_id")
    update.add_argument("--file", help="a new test definition (JSON) or recording")
    new_when = update.add_mutually_exclusive_group()
    new_when.add_argument("--every", type=interval_ms, metavar="DURATION", help="a new fixed interval (>= 1s)")
    new_when.add_argument("--cron", help="a new cron expression")
    update.add_argument("--name", help="a new name")
    update.add_argument("--overlap", type=overlap, choices=OVERLAPS, help="a new overlap policy")
    update.add_argument("--tz", help="a new IANA time zone for the cron")
    update.add_argument("--jitter", type=duration_ms, metavar="DURATION", help="a new jitter")
    update.add_argument("--catchup", type=duration_ms, metavar="DURATION", help="a new catch-up window")
    actions.add_parser("list", help="the schedules, newest first")
    for name, text in (("get", "a schedule, its next fires and latest runs"), ("trigger", "run it once now")):
        actions.add_parser(name, help=text).add_argument("schedule_id")
    for name, text in (("pause", "stop firing"), ("resume", "fire again from now on")):
        action = actions.add_parser(name, help=text)
        action.add_argument("schedule_id")
        action.add_argument("--note", default="", help="why")
    actions.add_parser("delete", help="delete it (its jobs stay)").add_argument("schedule_id")


def _zone(schedule: Schedule) -> ZoneInfo:
    try:
        return ZoneInfo(schedule.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _timing(schedule: Schedule) -> str:
    if schedule.cron:
        return f"cron {schedule.cron!r} {schedule.timezone}"
    return f"every {schedule.interval_ms / 1000:g}s"


def render_line(schedule: Schedule, out: TextIO) -> None:
    """One schedule on a line (`list`, and what the changing commands print)."""
    first = schedule.next_fires[0] if schedule.next_fires else None
    nxt = "paused" if schedule.paused else f"next {shown_time(first, _zone(schedule))}"
    out.write(f"{schedule.id}  {schedule.name}  {_timing(schedule)}  {schedule.overlap.value}  {nxt}\n")


def render_schedule(schedule: Schedule, out: TextIO) -> None:
    """`sentinel schedules get`: the schedule, its next fires and its latest runs (a held fire first)."""
    zone = _zone(schedule)
    render_line(schedule, out)
    if schedule.note:
        out.write(f"  note: {schedule.note}\n")
    if schedule.jitter_ms or schedule.catchup_window_ms:
        out.write(f"  jitter {schedule.jitter_ms} ms, catch-up window {schedule.catchup_window_ms} ms\n")
    for n in schedule.notifications:
        out.write(f"  notify {webhooks.describe(n)}\n")
    for when in schedule.next_fires:
        out.write(f"  next   {shown_time(when, zone)}\n")
    for run in schedule.recent_runs:
        at = shown_time(run.fire_time, zone)
        if run.held:
            out.write(f"  {at}  {run.reason or 'held'}\n")
        elif run.skipped:
            out.write(f"  {at}  skipped  {run.reason}\n")
        else:
            what = "triggered" if run.triggered else "fired"
            # A job the schedule fired that is no longer there: retention (or a purge) removed it; the
            # schedule's history still says how it ended, for a job that ended after it was kept.
            state = state_name(run.state) if run.state is not None else "-"
            gone = "  (job removed)" if run.removed else ""
            error = f"  {run.error}" if run.error else ""
            out.write(f"  {at}  {what}  {run.job_id}  {state}{gone}{error}\n")


async def run(args: argparse.Namespace, address: str | None) -> int:
    """Run `sentinel schedules ACTION`; its exit code."""
    action = args.schedule_command
    notifications = webhooks.notifications(args) if action == "create" else []  # asked for before connecting
    async with open_client(address) as client:
        if action == "create":
            fields: ScheduleFields = {
                "name": args.name or _name_of(args.file),
                "overlap": args.overlap,
                "timezone": args.tz,
                "jitter_ms": args.jitter,
                "catchup_window_ms": args.catchup,
                "paused": args.paused,
                "notifications": notifications,
            }
            if args.cron:
                fields["cron"] = args.cron
            else:
                fields["interval_ms"] = args.every
            options: SubmitOptions = {}
            if args.priority:
                options["priority"] = args.priority
            if args.tag:
                options["tags"] = args.tag
            test = recorder.load_test(args.file)
            try:
                made = await client.create_schedule(test, options=options, **fields)
            except InvalidArgumentError as exc:
                raise flag_errors(exc, _FLAGS) from exc
            render_line(made, sys.stdout)
        elif action == "update":
            changed: ScheduleFields = {}
            for name, value in (
                ("name", args.name),
                ("cron", args.cron),
                ("interval_ms", args.every),
                ("overlap", args.overlap),
                ("timezone", args.tz),
                ("jitter_ms", args.jitter),
                ("catchup_window_ms", args.catchup),
            ):
                if value is not None:
                    changed[name] = value  # type: ignore[literal-required]
            new_test = recorder.load_test(args.file) if args.file else None
            try:
                updated = await client.update_schedule(args.schedule_id, test=new_test, **changed)
            except InvalidArgumentError as exc:
                raise flag_errors(exc, {**_FLAGS, "update_mask": "schedules update"}) from exc
            render_line(updated, sys.stdout)
        elif action == "list":
            async for schedule in client.schedules():
                render_line(schedule, sys.stdout)
        elif action == "get":
            render_schedule(await client.get_schedule(args.schedule_id), sys.stdout)
        elif action == "pause":
            render_line(await client.pause_schedule(args.schedule_id, note=args.note), sys.stdout)
        elif action == "resume":
            render_line(await client.resume_schedule(args.schedule_id, note=args.note), sys.stdout)
        elif action == "trigger":
            job = await client.trigger_schedule(args.schedule_id)
            print(f"{job.id}  {state_name(job.state)}")
        else:
            await client.delete_schedule(args.schedule_id)
            print(f"{args.schedule_id}  deleted")
    return 0


def _name_of(path: str) -> str:
    """A schedule's default name: its file's stem, as the SDK's `create_schedule` names a file's
    (here also for a recording, which reaches the SDK converted, as a dict)."""
    return Path(path).stem
