"""`sentinel stats|events|pause|resume|dlq|jobs` against a real API server and redis-server."""

from __future__ import annotations

import asyncio
import io
import os
import re
import shlex
import sys
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from api_service.server import ApiServer
from sentinel_cli import admin_commands
from sentinel_cli.main import _parser
from sentinel_client import HealthStatus, QueueHealth
from shared.model import JobState, Priority
from shared.queue import Queue
from shared.settings import QueueSettings
from tests.queue_helpers import run_jobs, submit_jobs
from tests.support import wait_for

SENTINEL = str(Path(sys.executable).with_name("sentinel"))


@pytest.fixture
def queue(redis_client: aioredis.Redis) -> Queue:
    return Queue.open(redis_client, QueueSettings())


def address(api: ApiServer) -> str:
    return f"127.0.0.1:{api.port}"


async def test_stats_shows_lanes_figures_and_health(
    api: ApiServer, queue: Queue, capsys: pytest.CaptureFixture[str]
) -> None:
    await submit_jobs(queue, 2, priority=Priority.HIGH)
    await submit_jobs(queue, 3)
    await run_jobs(queue, 1)
    assert await admin_commands.show_stats(address(api)) == 0
    out = capsys.readouterr().out
    assert "queue default (all tenants)  running  health HEALTHY" in out
    titles = "  lane      waiting  active  delayed  completed  failed  cancelled  dead  processed  jobs/min  avg ms\n"
    assert titles in out
    assert "  high            1       0        0          1       0          0     0          1 " in out
    assert (
        "  medium          3       0        0          0       0          0     0          0       0.0       0\n" in out
    )
    assert "  total           4       0        0          1       0          0     0          1 " in out
    assert "processed 1 (0 failed, 0 cancelled)   last finished 20" in out

    await admin_commands.set_paused(address(api), True)
    assert await admin_commands.show_stats(address(api), watch=True, interval=0.05, times=2) == 1
    out = capsys.readouterr().out
    assert out.count("health DEGRADED") == 2 and "  ! paused: claiming nothing new (4 waiting)" in out


def test_stats_without_figures_says_so_rather_than_guessing() -> None:
    out = io.StringIO()
    reason = "redis unreachable: the queue store does not answer; try again shortly"
    admin_commands.render_health(QueueHealth(status=HealthStatus.UNHEALTHY, reasons=(reason,), stats=None), out)
    assert out.getvalue() == f"queue: no figures  health UNHEALTHY\n  ! {reason}\n"  # not "queue ? … running"


async def test_events_follow_pause_resume_and_jobs(
    api: ApiServer, queue: Queue, capsys: pytest.CaptureFixture[str]
) -> None:
    follower = asyncio.create_task(
        admin_commands.follow_events(address(api), states=[], kinds=[], tag="", cursor="", limit=3)
    )

    async def watching() -> bool:
        return api.hub.subscriber_count == 1

    await wait_for(watching, what="the events follower")
    assert await admin_commands.set_paused(address(api), True) == 0
    assert await admin_commands.set_paused(address(api), False) == 0
    [job_id] = await submit_jobs(queue, 1, tags=("smoke",))
    assert await asyncio.wait_for(follower, timeout=10) == 0
    lines = capsys.readouterr().out.splitlines()
    said = [line for line in lines if line.startswith("queue ")]
    assert said == ["queue default paused: claiming nothing new", "queue default resumed"]
    events = [line.split() for line in lines if not line.startswith("queue ")]
    assert [e[1:3] for e in events] == [["paused", "-"], ["resumed", "-"], ["waiting", "pending"]]
    assert events[2][3:5] == [job_id, "[smoke]"]

    only_waiting = ["events", "--kind", "waiting", "--kind", "delayed", "--cursor", "0-0", "--limit", "1"]
    assert await admin_commands.run(_parser().parse_args(only_waiting), address(api)) == 0
    [line] = capsys.readouterr().out.splitlines()  # replayed from the start: the pause and resume left out
    assert line.split()[1:4] == ["waiting", "pending", job_id]

    assert await admin_commands.list_jobs(address(api), state="pending", tag="smoke", limit=10, page_token="") == 0
    out = capsys.readouterr().out
    assert job_id in out and "PENDING" in out and "[smoke]" in out
    assert re.search(r" \d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d ", out), out  # a time says its zone's offset
    await admin_commands.list_jobs(address(api), state="completed", tag="", limit=10, page_token="")
    assert capsys.readouterr().out == "no jobs\n"


async def test_the_next_page_line_keeps_the_listings_filters(
    api: ApiServer, queue: Queue, capsys: pytest.CaptureFixture[str]
) -> None:
    await submit_jobs(queue, 3, tags=("smoke",))
    await submit_jobs(queue, 2, tags=("other",))
    assert await admin_commands.list_jobs(address(api), state="pending", tag="smoke", limit=2, page_token="") == 0
    more = capsys.readouterr().out.splitlines()[-1]
    assert more.startswith("more: sentinel jobs --state=pending --tag=smoke --limit=2 --page-token "), more
    # The line, run as it is, lists the rest of the same listing: the third smoke job, no other.
    argv = shlex.split(more.removeprefix("more: sentinel "))
    assert await admin_commands.run(_parser().parse_args(argv), address(api)) == 0
    rest = capsys.readouterr().out.splitlines()
    assert len(rest) == 1 and "[smoke]" in rest[0], rest


async def test_dlq_list_requeue_purge(api: ApiServer, queue: Queue, capsys: pytest.CaptureFixture[str]) -> None:
    await submit_jobs(queue, 2)
    first, second = await run_jobs(queue, 2, state=JobState.FAILED, dead_letter_reason="network: out of attempts")
    parser = _parser()
    assert await admin_commands.run(parser.parse_args(["dlq", "list"]), address(api)) == 0
    out = capsys.readouterr().out
    assert first in out and second in out and "network: out of attempts" in out
    await admin_commands.run(parser.parse_args(["dlq", "requeue", first, "--priority", "high"]), address(api))
    assert capsys.readouterr().out.strip() == f"{first}  PENDING  in the high lane"
    await admin_commands.run(parser.parse_args(["dlq", "purge"]), address(api))
    assert capsys.readouterr().out.strip() == "purged 1 dead letter(s)"
    await admin_commands.run(parser.parse_args(["dlq", "list"]), address(api))
    assert capsys.readouterr().out.strip() == "no dead letters"


async def test_the_console_script_runs_them(api: ApiServer, queue: Queue) -> None:
    await submit_jobs(queue, 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTINEL_", "OTEL_"))}
    env["SENTINEL_API"] = address(api)
    process = await asyncio.create_subprocess_exec(
        SENTINEL, "stats", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, err.decode()
    assert "health HEALTHY" in out.decode() and "  medium          1       0        0" in out.decode()
    process = await asyncio.create_subprocess_exec(
        SENTINEL, "jobs", "--state", "nope", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 2 and "invalid choice" in err.decode()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["stats", "--watch", "--interval", "0"], "--interval: must be at least 0.2 seconds, got 0"),
        (["stats", "--watch", "--interval", "nan"], "--interval: must be at least 0.2 seconds, got nan"),
        (["jobs", "--limit", "-1"], "--limit: must be 0 or more, got -1"),
        (["dlq", "list", "--limit", "-1"], "--limit: must be 0 or more, got -1"),
        (["dlq", "purge", "--older-than", "-5"], "--older-than: must be 0 or more seconds, got -5"),
        (["events", "--limit", "-2"], "--limit: must be 0 or more, got -2"),
    ],
)
def test_a_bad_number_is_a_usage_error_naming_the_flag(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a traceback (protobuf refusing a negative uint32) nor a watch refreshing 650 times a second."""
    with pytest.raises(SystemExit) as exit_:
        _parser().parse_args(argv)
    assert exit_.value.code == 2
    assert says in capsys.readouterr().err
