"""`sentinel schedules …` against a real API server and redis-server (the commands run in-process, one
`sentinel` process checks the exit code of a bad use)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from pathlib import Path

import pytest

from api_service.server import ApiServer
from sentinel_cli import admin_commands, schedules
from sentinel_cli.main import _parser

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
    match = re.match(r"(\S+)  sign-in  every 300s  buffer_one  next \d{4}-", out)
    assert match, out
    sid = match.group(1)
    cron = await run(
        api, capsys, "create", str(test_file), "--cron", "*/5 * * * *", "--tz", "Europe/Berlin", "--name", "n"
    )
    assert "  n  cron '*/5 * * * *' Europe/Berlin  skip  next " in cron

    listed = await run(api, capsys, "list")
    assert listed.count("\n") == 2 and sid in listed
    shown = await run(api, capsys, "get", sid)
    assert shown.count("  next   ") == 5 and "jitter 2000 ms" in shown

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
    assert "INVALID_ARGUMENT" in err.decode() and "schedule.cron" in err.decode()
