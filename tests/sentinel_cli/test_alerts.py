"""`sentinel alerts …` and `sentinel schedules create --notify …` against a real API server and
redis-server, with webhooks delivered to a receiver on 127.0.0.1 (allowed by this API's policy).

The commands run in-process; one `sentinel` process is given its signing secret on stdin. Jobs are
ended as an executor ends them (`tests.queue_helpers.run_jobs`).
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from api_service.server import ApiServer
from sentinel_cli import alerts, schedules
from sentinel_cli.main import _parser, main
from sentinel_client import InvalidArgumentError
from shared.model import JobState
from shared.queue import Queue
from shared.sealed import new_secret_key
from shared.settings import AlertSettings, ApiSettings, QueueSettings, RedisSettings, SecuritySettings
from tests.queue_helpers import run_jobs, submit_jobs
from tests.support import RedisProcess, wait_for
from tests.webhook_receiver import Received, Receiver, run_receiver, signature_holds

SENTINEL = str(Path(sys.executable).with_name("sentinel"))
ID = r"[0-9a-f-]{36}"


@dataclass
class Api:
    address: str
    queue: Queue
    receiver: Receiver
    capsys: pytest.CaptureFixture[str]

    async def run(self, *argv: str) -> str:
        """Run `sentinel alerts|schedules …` in-process; its output."""
        args = _parser().parse_args(list(argv))
        command = alerts if args.command == alerts.COMMAND else schedules
        assert await command.run(args, self.address) == 0
        return self.capsys.readouterr().out

    async def webhook(self, job_id: str) -> Received:
        """The webhook the receiver got about `job_id`."""

        def found() -> Received | None:
            return next((r for r in self.receiver.received if r.json["job_id"] == job_id), None)

        return await wait_for(found, within=30, what=f"the webhook about {job_id}")


@pytest.fixture
async def api(
    redis_server: RedisProcess, redis_client: aioredis.Redis, capsys: pytest.CaptureFixture[str]
) -> AsyncIterator[Api]:
    server = await ApiServer.start(
        redis=RedisSettings(url=redis_server.url, configured=True),
        queue_settings=QueueSettings(),
        api=ApiSettings(host="127.0.0.1", port=0, alerts=AlertSettings(allow=("127.0.0.1",), poll_ms=50)),
        security=SecuritySettings(secret_key=new_secret_key()),
    )
    try:
        async with run_receiver() as receiver:
            queue = Queue.open(redis_client, QueueSettings())
            await queue.ensure_groups()
            yield Api(address=f"127.0.0.1:{server.port}", queue=queue, receiver=receiver, capsys=capsys)
    finally:
        await server.stop(0)


async def fail_job(queue: Queue, tag: str) -> str:
    (job_id,) = await submit_jobs(queue, 1, tags=(tag,))
    assert await run_jobs(queue, 1, state=JobState.FAILED) == [job_id]
    return job_id


async def test_rules_create_list_delete_and_their_deliveries(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECKOUT_HOOK_SECRET", "whsec_from_env")
    made = await api.run(
        "alerts",
        "rules",
        "create",
        "--tag",
        "checkout",
        "--url",
        api.receiver.url,
        "--secret-env",
        "CHECKOUT_HOOK_SECRET",
    )
    match = re.match(rf"({ID})  tag checkout  \d{{4}}-\S+ \S+\n  → (\S+)  failed,recovered  signed\n$", made)
    masked = api.receiver.url.removesuffix("/hook") + "/…"  # URLs are answered masked
    assert match and match.group(2) == masked, made
    rule_id = match.group(1)
    other = await api.run(
        "alerts",
        "rules",
        "create",
        "--tag",
        "search",
        "--url",
        api.receiver.url,
        "--event",
        "failed",
        "--after-failures",
        "3",
        "--format",
        "text",
    )
    assert other.endswith(f"  → {masked}  failed  unsigned  after 3 failures in a row  text body\n")
    listed = await api.run("alerts", "rules", "list")
    assert listed.index("tag search") < listed.index("tag checkout")  # newest first

    job_id = await fail_job(api.queue, "checkout")
    assert signature_holds(await api.webhook(job_id), "whsec_from_env")

    async def table() -> str | None:
        out = await api.run("alerts", "deliveries", "--rule", rule_id)
        return out if " delivered " in out else None

    lines = (await wait_for(table, within=30, what="the delivery recorded")).splitlines()
    columns = ["time", "event", "url", "state", "attempts", "last status", "next attempt", "error"]
    assert re.split(r"\s{2,}", lines[0]) == columns
    assert len(lines) == 2
    assert re.split(r"\s{2,}", lines[1])[1:] == ["failed", masked, "delivered", "1", "200", "-", "-"]
    assert await api.run("alerts", "deliveries", "--job", "no-such-job") == "no deliveries\n"

    assert await api.run("alerts", "rules", "delete", rule_id) == f"{rule_id}  deleted\n"
    assert rule_id not in await api.run("alerts", "rules", "list")


async def test_a_schedule_notifies_with_the_secret_from_the_environment(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    test_file = tmp_path / "probe.json"
    test_file.write_text(json.dumps({"name": "probe", "steps": [{"wait": {"ms": 10}}]}))
    monkeypatch.setenv("PROBE_HOOK_SECRET", "whsec_schedule")
    made = await api.run(
        "schedules",
        "create",
        str(test_file),
        "--every",
        "1h",
        "--notify",
        api.receiver.url,
        "--notify-event",
        "failed",
        "--notify-secret-env",
        "PROBE_HOOK_SECRET",
    )
    schedule_id = made.split()[0]
    masked = api.receiver.url.removesuffix("/hook") + "/…"  # a schedule's URLs are shown masked too
    assert f"  notify {masked}  failed  signed\n" in await api.run("schedules", "get", schedule_id)

    job_id = (await api.run("schedules", "trigger", schedule_id)).split()[0]
    assert await run_jobs(api.queue, 1, state=JobState.FAILED) == [job_id]
    assert signature_holds(await api.webhook(job_id), "whsec_schedule")

    async def table() -> str | None:
        out = await api.run("alerts", "deliveries", "--schedule", schedule_id)
        return out if " delivered " in out else None

    lines = (await wait_for(table, within=30, what="the schedule's delivery recorded")).splitlines()
    assert len(lines) == 2 and "  failed  " in lines[1]


async def test_a_secret_is_asked_for_on_stdin(api: Api) -> None:
    process = await asyncio.create_subprocess_exec(
        SENTINEL,
        "--api",
        api.address,
        "alerts",
        "rules",
        "create",
        "--tag",
        "prompted",
        "--url",
        api.receiver.url,
        "--secret-prompt",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(b"whsec_typed\n"), timeout=60)
    assert process.returncode == 0, err.decode()
    assert out.decode().endswith("  failed,recovered  signed\n")
    job_id = await fail_job(api.queue, "prompted")
    assert signature_holds(await api.webhook(job_id), "whsec_typed")


def test_a_missing_secret_variable_or_a_secret_without_a_url_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("NO_SUCH_HOOK_SECRET", raising=False)
    argv = ["--api", "127.0.0.1:1", "alerts", "rules", "create", "--tag", "t", "--url", "https://hooks.example.test/x"]
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--secret-env", "NO_SUCH_HOOK_SECRET"])
    assert exit_.value.code == 2
    assert "NO_SUCH_HOOK_SECRET (the signing secret) is not set" in capsys.readouterr().err
    test_file = tmp_path / "t.json"
    test_file.write_text(json.dumps({"name": "t", "steps": [{"wait": {"ms": 10}}]}))
    with pytest.raises(SystemExit) as exit_:
        main(
            ["--api", "127.0.0.1:1", "schedules", "create", str(test_file), "--every", "1h", "--notify-event", "failed"]
        )
    assert exit_.value.code == 2
    assert "need a receiver URL" in capsys.readouterr().err


async def test_deliveries_are_paged_and_show_when_they_are_tried_again(api: Api) -> None:
    for _ in range(3):  # three rules for one tag: one failing job, three deliveries
        await api.run("alerts", "rules", "create", "--tag", "paged", "--url", api.receiver.url, "--event", "failed")
    api.receiver.answers = [503, 503, 503]
    job_id = await fail_job(api.queue, "paged")

    async def tried() -> str | None:
        out = await api.run("alerts", "deliveries", "--job", job_id, "--limit", "0")
        return out if out.count(" 503 ") == 3 else None

    table = (await wait_for(tried, within=30, what="three answers 503")).splitlines()
    assert len(table) == 4 and "more:" not in "\n".join(table)  # --limit 0: all of them
    for line in table[1:]:  # pending, due again after the backoff (1 s by default): its time
        cells = re.split(r"\s{2,}", line)
        assert cells[3:6] == ["pending", "1", "503"] and re.fullmatch(
            r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d", cells[6]
        )

    first = (await api.run("alerts", "deliveries", "--job", job_id, "--limit", "2")).splitlines()
    assert len(first) == 4 and first[-1].startswith("more: sentinel alerts deliveries --job ")
    argv = shlex.split(first[-1].removeprefix("more: "))
    assert argv[:7] == ["sentinel", "alerts", "deliveries", "--job", job_id, "--limit", "2"]
    rest = (await api.run(*argv[1:])).splitlines()
    assert len(rest) == 2 and rest[1].split()[2] == "failed"  # the third, and no more after it


def test_a_negative_limit_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--api", "127.0.0.1:1", "alerts", "deliveries", "--limit", "-3"])
    assert exit_.value.code == 2
    assert "--limit: must be 0 or more, got -3" in capsys.readouterr().err


async def test_refusals_name_the_option_the_user_gave(api: Api) -> None:
    async def refused(*argv: str) -> list[tuple[str, str]]:
        with pytest.raises(InvalidArgumentError) as caught:
            await api.run(*argv)
        return [(v.field, v.description) for v in caught.value.violations]

    [(field, why)] = await refused("alerts", "rules", "create", "--tag", "t", "--url", "http://10.1.2.3/hook")
    assert field == "--url" and "10.1.2.3" in why  # not rule.notifications[0].url
    [(field, _)] = await refused("alerts", "deliveries", "--page-token", "not-a-token")
    assert field == "--page-token"  # not page_token / pageToken
