"""`sentinel schedules …` against a real API server and redis-server (the commands run in-process, one
`sentinel` process checks the exit code of a bad use)."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from api_service.server import ApiServer
from sentinel_cli import admin_commands, schedules
from sentinel_cli.main import _parser
from sentinel_client import InvalidArgumentError, JobState, OverlapPolicy, Schedule, ScheduleRun

SENTINEL = str(Path(sys.executable).with_name("sentinel"))


@pytest.fixture
def test_file(tmp_path: Path) -> Path:
    path = tmp_path / "sign-in.json"
    path.write_text(json.dumps({"name": "sign in", "steps": [{"wait": {"ms": 10}}]}))
    return path


def args(*argv: str) -> argparse.Namespace:
    return _parser().parse_args(["schedules", *argv])


async def run(api: ApiServer, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert await schedules.run(args(*argv), f"127.0.0.1:{api.port}") == 0
    return capsys.readouterr().out


def test_durations() -> None:
    assert [schedules.duration_ms(d) for d in ("500ms", "30s", "5m", "1h", "1d")] == [
        500,
        30_000,
        300_000,
        3_600_000,
        86_400_000,
    ]
    for bad in ("5", "m5", "1.5h", "-1s"):
        with pytest.raises(argparse.ArgumentTypeError):
            schedules.duration_ms(bad)


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        # The interval's own rule, named by its flag (not "set exactly one of cron and interval_ms").
        (["--every", "0s"], "argument --every: must be between 1s and 366d (1000 and 31622400000 ms), got '0s'"),
        (["--every", "500ms"], "argument --every: must be between 1s and 366d"),
        # A negative duration is a value to refuse, not an unknown option ("expected one argument").
        (["--every", "-5m"], "argument --every: must be positive, got '-5m'"),
        (["--every", "5m", "--jitter", "-1s"], "argument --jitter: must not be negative, got '-1s'"),
        (["--every", "5m", "--catchup", "-1m"], "argument --catchup: must not be negative, got '-1m'"),
    ],
)
def test_a_bad_duration_is_refused_naming_its_flag(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        args("create", "t.json", *argv)
    assert exit_.value.code == 2 and said in capsys.readouterr().err


def test_the_overlap_policy_is_taken_as_the_readme_and_the_listings_spell_it() -> None:
    for spelt in ("buffer_one", "buffer-one", "BUFFER_ONE"):
        assert args("create", "t.json", "--every", "5m", "--overlap", spelt).overlap == "buffer_one"
    assert tuple(p.value for p in OverlapPolicy) == schedules.OVERLAPS


def test_times_are_shown_in_the_schedules_zone_with_their_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # the machine's zone plays no part
    time.tzset()
    try:
        nine = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)  # 09:00 in New York
        made = Schedule(
            id="s1",
            name="ny9",
            cron="0 9 * * *",
            timezone="America/New_York",
            next_fires=(nine,),
            recent_runs=(
                ScheduleRun(fire_time=nine - timedelta(days=1), reason="held: waits for the running fire to end"),
                ScheduleRun(fire_time=nine - timedelta(days=2), job_id="j1", state=JobState.COMPLETED),
                ScheduleRun(
                    fire_time=nine - timedelta(days=3),
                    job_id="j0",
                    state=JobState.FAILED,
                    error="expected status 200, got 503",
                    removed=True,  # its job removed by retention: the state is the schedule's record
                ),
            ),
        )
        out = io.StringIO()
        schedules.render_schedule(made, out)
        lines = out.getvalue().splitlines()
        assert lines[0] == "s1  ny9  cron '0 9 * * *' America/New_York  skip  next 2026-12-07 09:00:00-05:00"
        assert "  next   2026-12-07 09:00:00-05:00" in lines
        assert "  2026-12-06 09:00:00-05:00  held: waits for the running fire to end" in lines
        assert "  2026-12-05 09:00:00-05:00  fired  j1  COMPLETED" in lines
        assert "  2026-12-04 09:00:00-05:00  fired  j0  FAILED  (job removed)  expected status 200, got 503" in lines
        out = io.StringIO()
        schedules.render_line(Schedule(id="s2", name="i", interval_ms=60_000, next_fires=(nine,)), out)
        assert out.getvalue().endswith("next 2026-12-07 14:00:00+00:00\n")
    finally:
        monkeypatch.undo()
        time.tzset()


async def test_the_apis_refusal_of_a_flags_value_names_the_flag(api: ApiServer, test_file: Path) -> None:
    for argv, flag, said in (
        (["--cron", "*/5 * * * *", "--jitter", "10m"], "--jitter", "shortest gap between the cron's fires"),
        (["--every", "5s", "--jitter", "5s"], "--jitter", "less than the interval"),
        (["--cron", "61 * * * *"], "--cron", "not a valid cron"),
        (["--every", "5m", "--tz", "Mars/Olympus"], "--tz", "IANA"),
    ):
        with pytest.raises(InvalidArgumentError) as refused:
            await schedules.run(args("create", str(test_file), *argv), f"127.0.0.1:{api.port}")
        assert refused.value.code is grpc.StatusCode.INVALID_ARGUMENT
        assert [v.field for v in refused.value.violations] == [flag], refused.value.violations
        assert said in refused.value.violations[0].description
        assert refused.value.message.startswith(f"{flag}: ")


async def test_create_list_get_pause_resume_trigger_delete(
    api: ApiServer, test_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = await run(
        api,
        capsys,
        "create",
        str(test_file),
        "--every",
        "5m",
        "--overlap",
        "buffer-one",
        "--tag",
        "cli",
        "--jitter",
        "2s",
    )
    match = re.match(r"(\S+)  sign-in  every 300s  buffer_one  next \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+00:00\n", out)
    assert match, out
    sid = match.group(1)
    cron = await run(
        api, capsys, "create", str(test_file), "--cron", "*/5 * * * *", "--tz", "Europe/Berlin", "--name", "n"
    )
    assert "  n  cron '*/5 * * * *' Europe/Berlin  skip  next " in cron
    assert re.search(r"next \S+ \d\d:\d[05]:00\+0[12]:00\n", cron), cron  # Berlin's time, with its offset

    listed = await run(api, capsys, "list")
    assert listed.count("\n") == 2 and sid in listed
    shown = await run(api, capsys, "get", sid)
    assert shown.count("  next   ") == 5 and "jitter 2000 ms" in shown
    # An update changes what it is given, and keeps the rest (the jitter) and the schedule's id.
    updated = await run(api, capsys, "update", sid, "--every", "10m", "--name", "renamed", "--overlap", "allow")
    assert updated.startswith(f"{sid}  renamed  every 600s  allow  next "), updated
    assert "jitter 2000 ms" in await run(api, capsys, "get", sid)
    with pytest.raises(InvalidArgumentError) as nothing:
        await schedules.run(args("update", sid), f"127.0.0.1:{api.port}")
    assert [(v.field, v.description) for v in nothing.value.violations] == [
        ("schedules update", "name at least one field to change")
    ]

    assert "  paused\n" in await run(api, capsys, "pause", sid, "--note", "deploy")
    assert "note: deploy" in await run(api, capsys, "get", sid)
    job_line = await run(api, capsys, "trigger", sid)
    job_id = job_line.split()[0]
    assert job_line.split()[1] == "PENDING"
    assert f"triggered  {job_id}  PENDING" in await run(api, capsys, "get", sid)
    address = f"127.0.0.1:{api.port}"
    assert await admin_commands.run(_parser().parse_args(["jobs", "--schedule", sid]), address) == 0
    listed_jobs = capsys.readouterr().out
    assert listed_jobs.startswith(f"{job_id}  PENDING") and listed_jobs.count("\n") == 1
    assert " next " in await run(api, capsys, "resume", sid)
    assert await run(api, capsys, "delete", sid) == f"{sid}  deleted\n"
    assert sid not in await run(api, capsys, "list")


async def test_a_bad_schedule_exits_2_naming_the_field(api: ApiServer, test_file: Path) -> None:
    env = {**os.environ, "SENTINEL_API": f"127.0.0.1:{api.port}"}
    process = await asyncio.create_subprocess_exec(
        SENTINEL,
        "schedules",
        "create",
        str(test_file),
        "--cron",
        "99 * * * *",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 2
    assert err.decode().startswith("sentinel: INVALID_ARGUMENT: --cron: not a valid cron expression")
