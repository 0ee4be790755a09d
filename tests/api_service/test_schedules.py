"""The Schedules service through a real grpc.aio server (auth on, a sealing key) and a real redis-server:
roles, tenancy, validation naming fields, the tenant's limit, pause / resume / trigger, updates, secrets,
and ListJobs by schedule."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import redis.asyncio as aioredis
from google.protobuf import field_mask_pb2, json_format

from api_service.server import ApiServer
from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared.queue import Queue
from shared.schedules.store import schedule_notifications
from shared.sealed import SEALED_PREFIX, Sealer, new_secret_key
from shared.settings import AlertSettings, ApiSettings, QueueSettings, RedisSettings, SecuritySettings
from tests.api_service.test_api import bad_request_fields, rpc_error
from tests.support import RedisProcess, stored_text, wait_for, write_keys

Code = grpc.StatusCode
LIMIT = 3
#: SENTINEL_WEBHOOK_ALLOW of this API: notifications may go to this private network.
ALLOWED_NET = "10.20.0.0/16"


@dataclass
class Api:
    server: ApiServer
    schedules: pb_grpc.SchedulesStub
    jobs: pb_grpc.TestExecutionStub
    keys: dict[str, str]
    queue: Queue
    sealer: Sealer

    def md(self, who: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.keys[who]}"),)


@pytest.fixture
async def api(redis_server: RedisProcess, redis_client: aioredis.Redis, tmp_path: Path) -> AsyncIterator[Api]:
    keys_file = tmp_path / "keys.json"
    made = write_keys(keys_file)
    secret_key = new_secret_key()
    settings = QueueSettings(tenant_max_schedules=LIMIT)
    server = await ApiServer.start(
        redis=RedisSettings(url=redis_server.url, configured=True),
        queue_settings=settings,
        api=ApiSettings(host="127.0.0.1", port=0, scheduler_tick_ms=100, alerts=AlertSettings(allow=(ALLOWED_NET,))),
        security=SecuritySettings(auth_disabled=False, keys_file=str(keys_file), secret_key=secret_key),
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield Api(
                server=server,
                schedules=pb_grpc.SchedulesStub(channel),
                jobs=pb_grpc.TestExecutionStub(channel),
                keys=made,
                queue=Queue.open(redis_client, settings),
                sealer=Sealer(secret_key),
            )
    finally:
        await server.stop(0)


def schedule(**fields: object) -> pb.Schedule:
    """A valid schedule (hourly, so the scheduler leaves it alone), with `fields` (proto3 JSON names) over it."""
    body: dict[str, object] = {
        "name": "sign-in works",
        "cron": "0 * * * *",
        "template": {
            "definition": {"name": "sign in", "steps": [{"navigate": {"url": "https://shop.example.test/"}}]},
            "options": {"tags": ["monitor"]},
        },
    }
    body.update(fields)
    return json_format.ParseDict(body, pb.Schedule())


async def create(api: Api, who: str = "acme-submitter", **fields: object) -> pb.Schedule:
    return await api.schedules.CreateSchedule(
        pb.CreateScheduleRequest(schedule=schedule(**fields)), metadata=api.md(who)
    )


async def test_viewers_read_and_submitters_change(api: Api) -> None:
    made = await create(api)
    assert made.tenant_id == "acme" and made.overlap == pb.OVERLAP_POLICY_SKIP and made.timezone == "UTC"
    assert len(made.next_fires) == 5
    viewer = api.md("acme-viewer")
    assert (await api.schedules.GetSchedule(pb.GetScheduleRequest(schedule_id=made.schedule_id), metadata=viewer)).name
    listed = await api.schedules.ListSchedules(pb.ListSchedulesRequest(), metadata=viewer)
    assert [s.schedule_id for s in listed.schedules] == [made.schedule_id]
    sid = made.schedule_id
    for call in (
        api.schedules.CreateSchedule(pb.CreateScheduleRequest(schedule=schedule()), metadata=viewer),
        api.schedules.PauseSchedule(pb.PauseScheduleRequest(schedule_id=sid), metadata=viewer),
        api.schedules.TriggerSchedule(pb.TriggerScheduleRequest(schedule_id=sid), metadata=viewer),
        api.schedules.DeleteSchedule(pb.DeleteScheduleRequest(schedule_id=sid), metadata=viewer),
    ):
        await rpc_error(call, Code.PERMISSION_DENIED)
    await rpc_error(api.schedules.ListSchedules(pb.ListSchedulesRequest()), Code.UNAUTHENTICATED)


async def test_another_tenants_schedule_is_not_found(api: Api) -> None:
    sid = (await create(api)).schedule_id
    other = api.md("globex-submitter")
    for call in (
        api.schedules.GetSchedule(pb.GetScheduleRequest(schedule_id=sid), metadata=other),
        api.schedules.PauseSchedule(pb.PauseScheduleRequest(schedule_id=sid), metadata=other),
        api.schedules.TriggerSchedule(pb.TriggerScheduleRequest(schedule_id=sid), metadata=other),
        api.schedules.DeleteSchedule(pb.DeleteScheduleRequest(schedule_id=sid), metadata=other),
        api.schedules.UpdateSchedule(
            pb.UpdateScheduleRequest(schedule=schedule(scheduleId=sid, name="mine")), metadata=other
        ),
    ):
        await rpc_error(call, Code.NOT_FOUND)
    assert not (await api.schedules.ListSchedules(pb.ListSchedulesRequest(), metadata=other)).schedules


async def test_a_bad_schedule_is_refused_naming_every_field(api: Api) -> None:
    bad = schedule(
        cron="61 * * * *",
        timezone="Mars/Olympus",
        notifications=[{"url": "ftp://hooks.example.test/x"}],
        template={
            "definition": {"name": "x", "steps": [{"click": {"selector": ""}}]},
            "options": {"idempotencyKey": "same-every-time"},
        },
    )
    err = await rpc_error(
        api.schedules.CreateSchedule(pb.CreateScheduleRequest(schedule=bad), metadata=api.md("acme-submitter")),
        Code.INVALID_ARGUMENT,
    )
    fields = bad_request_fields(err)
    for field in (
        "schedule.cron",
        "schedule.timezone",
        "schedule.notifications[0].url",
        "schedule.template.definition.steps[0].click.selector",
        "schedule.template.options.idempotency_key",
    ):
        assert field in fields, fields
    both = schedule(intervalMs="1000")
    err = await rpc_error(
        api.schedules.CreateSchedule(pb.CreateScheduleRequest(schedule=both), metadata=api.md("acme-submitter")),
        Code.INVALID_ARGUMENT,
    )
    assert bad_request_fields(err) == ["schedule.cron"]
    fast = schedule(cron="", intervalMs="500")
    err = await rpc_error(
        api.schedules.CreateSchedule(pb.CreateScheduleRequest(schedule=fast), metadata=api.md("acme-submitter")),
        Code.INVALID_ARGUMENT,
    )
    assert bad_request_fields(err) == ["schedule.interval_ms"]
    # A cron's jitter must be less than the shortest gap between its fires, as an interval's must.
    jittery = schedule(cron="*/5 * * * *", jitterMs="600000")
    err = await rpc_error(
        api.schedules.CreateSchedule(pb.CreateScheduleRequest(schedule=jittery), metadata=api.md("acme-submitter")),
        Code.INVALID_ARGUMENT,
    )
    assert bad_request_fields(err) == ["schedule.jitter_ms"] and "299999 ms" in (err.details() or "")
    assert not (await api.schedules.ListSchedules(pb.ListSchedulesRequest(), metadata=api.md("acme-viewer"))).schedules


async def test_a_schedule_with_an_unknown_enum_number_is_refused_naming_the_field(api: Api) -> None:
    bad = schedule()
    bad.overlap = 17  # type: ignore[assignment]
    bad.template.options.priority = 99  # type: ignore[assignment]
    err = await rpc_error(
        api.schedules.CreateSchedule(pb.CreateScheduleRequest(schedule=bad), metadata=api.md("acme-submitter")),
        Code.INVALID_ARGUMENT,
    )
    assert bad_request_fields(err) == ["schedule.overlap", "schedule.template.options.priority"]
    assert not (await api.schedules.ListSchedules(pb.ListSchedulesRequest(), metadata=api.md("acme-viewer"))).schedules


async def test_a_tenant_has_at_most_its_limit_of_schedules(api: Api) -> None:
    for _ in range(LIMIT):
        await create(api)
    await rpc_error(create(api), Code.RESOURCE_EXHAUSTED)
    await create(api, "globex-submitter")  # another tenant's count is its own


async def test_pause_resume_and_trigger(api: Api) -> None:
    md = api.md("acme-submitter")
    sid = (await create(api)).schedule_id
    paused = await api.schedules.PauseSchedule(pb.PauseScheduleRequest(schedule_id=sid, note="deploy"), metadata=md)
    assert paused.paused and paused.note == "deploy" and not paused.next_fires
    job = await api.schedules.TriggerSchedule(pb.TriggerScheduleRequest(schedule_id=sid), metadata=md)
    assert job.source == pb.JOB_SOURCE_SCHEDULER and job.schedule_id == sid and job.tags == ["monitor"]
    assert not job.HasField("fire_time")  # a trigger is not a fire time
    resumed = await api.schedules.ResumeSchedule(pb.ResumeScheduleRequest(schedule_id=sid, note="done"), metadata=md)
    assert not resumed.paused and resumed.note == "done" and len(resumed.next_fires) == 5
    assert [(r.job_id, r.triggered) for r in resumed.recent_runs] == [(job.job_id, True)]


async def test_list_jobs_by_schedule(api: Api) -> None:
    md = api.md("acme-submitter")
    sid = (await create(api)).schedule_id
    other = (await create(api)).schedule_id
    fired = [await api.schedules.TriggerSchedule(pb.TriggerScheduleRequest(schedule_id=sid), metadata=md) for _ in "ab"]
    await api.schedules.TriggerSchedule(pb.TriggerScheduleRequest(schedule_id=other), metadata=md)
    plain = schedule().template
    await api.jobs.Submit(plain, metadata=md)
    listed = await api.jobs.ListJobs(pb.ListJobsRequest(schedule_id=sid), metadata=api.md("acme-viewer"))
    assert sorted(j.job_id for j in listed.jobs) == sorted(j.job_id for j in fired)
    assert all(j.source == pb.JOB_SOURCE_SCHEDULER for j in listed.jobs)
    tagged = await api.jobs.ListJobs(pb.ListJobsRequest(schedule_id=sid, tag="monitor"), metadata=md)
    assert len(tagged.jobs) == 2
    assert not (await api.jobs.ListJobs(pb.ListJobsRequest(schedule_id=sid, tag="other"), metadata=md)).jobs
    theirs = await api.jobs.ListJobs(pb.ListJobsRequest(schedule_id=sid), metadata=api.md("globex-viewer"))
    assert not theirs.jobs


async def test_the_scheduler_fires_an_interval_schedule(api: Api) -> None:
    sid = (await create(api, cron="", intervalMs="1000")).schedule_id
    md = api.md("acme-viewer")

    async def fired() -> list[pb.Job]:
        return list((await api.jobs.ListJobs(pb.ListJobsRequest(schedule_id=sid), metadata=md)).jobs)

    jobs = await wait_for(fired, within=30, what="a fire of the 1 s schedule")
    assert jobs[0].source == pb.JOB_SOURCE_SCHEDULER and jobs[0].HasField("fire_time")
    got = await api.schedules.GetSchedule(pb.GetScheduleRequest(schedule_id=sid), metadata=md)
    assert got.recent_runs and got.recent_runs[-1].job_id == jobs[-1].job_id


async def test_update_with_a_mask_changes_only_what_it_names(api: Api) -> None:
    md = api.md("acme-submitter")
    made = await create(api)
    renamed = await api.schedules.UpdateSchedule(
        pb.UpdateScheduleRequest(
            schedule=schedule(scheduleId=made.schedule_id, name="renamed", cron="*/5 * * * *"),
            update_mask=field_mask_pb2.FieldMask(paths=["name"]),
        ),
        metadata=md,
    )
    assert (renamed.name, renamed.cron) == ("renamed", "0 * * * *")
    retimed = await api.schedules.UpdateSchedule(
        pb.UpdateScheduleRequest(
            schedule=schedule(
                scheduleId=made.schedule_id, cron="", intervalMs="3600000", overlap="OVERLAP_POLICY_ALLOW"
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["interval_ms", "overlap"]),
        ),
        metadata=md,
    )
    assert (retimed.cron, retimed.interval_ms, retimed.overlap) == ("", 3_600_000, pb.OVERLAP_POLICY_ALLOW)
    assert retimed.name == "renamed"
    # The count restarts at the change: one interval after it, not a burst of missed fires.
    assert retimed.next_fires[0].ToMilliseconds() - retimed.updated_at.ToMilliseconds() == 3_600_000
    err = await rpc_error(
        api.schedules.UpdateSchedule(
            pb.UpdateScheduleRequest(
                schedule=schedule(scheduleId=made.schedule_id), update_mask=field_mask_pb2.FieldMask(paths=["owner"])
            ),
            metadata=md,
        ),
        Code.INVALID_ARGUMENT,
    )
    assert bad_request_fields(err) == ["update_mask"]
    err = await rpc_error(  # a path into a field: the field would be replaced whole, so it is refused
        api.schedules.UpdateSchedule(
            pb.UpdateScheduleRequest(
                schedule=schedule(scheduleId=made.schedule_id),
                update_mask=field_mask_pb2.FieldMask(paths=["template.definition.name"]),
            ),
            metadata=md,
        ),
        Code.INVALID_ARGUMENT,
    )
    assert bad_request_fields(err) == ["update_mask"] and "'template.definition.name' names a part" in (
        err.details() or ""
    )
    everything = await api.schedules.UpdateSchedule(
        pb.UpdateScheduleRequest(schedule=schedule(scheduleId=made.schedule_id, name="all", timezone="Europe/Berlin")),
        metadata=md,
    )
    assert (everything.name, everything.cron, everything.timezone) == ("all", "0 * * * *", "Europe/Berlin")


async def test_secrets_are_sealed_and_never_returned(api: Api) -> None:
    md = api.md("acme-submitter")
    made = await create(
        api,
        notifications=[{"url": "https://hooks.example.test/x", "secret": "hook-secret", "events": ["failed"]}],
        template={
            "definition": {
                "name": "sign in",
                "steps": [
                    {"navigate": {"url": "https://shop.example.test/"}},
                    {"fill": {"selector": "#password", "value": "hunter2", "secret": True}},
                ],
            }
        },
    )
    assert made.notifications[0].secret == "" and made.notifications[0].secret_set
    assert made.template.definition.steps[1].fill.value.startswith(SEALED_PREFIX)
    stored = await schedule_notifications(api.queue, "acme", made.schedule_id)
    assert stored[0].events == ("failed",)
    assert api.sealer.open(stored[0].secret, field="secret") == "hook-secret"
    # Sent again without its secret (it is never handed back), a notification keeps the stored one.
    again = await api.schedules.UpdateSchedule(
        pb.UpdateScheduleRequest(
            schedule=schedule(scheduleId=made.schedule_id, notifications=[{"url": "https://hooks.example.test/x"}]),
            update_mask=field_mask_pb2.FieldMask(paths=["notifications"]),
        ),
        metadata=md,
    )
    assert again.notifications[0].secret_set
    kept = await schedule_notifications(api.queue, "acme", made.schedule_id)
    assert api.sealer.open(kept[0].secret, field="secret") == "hook-secret"
    assert kept[0].events == ("failed", "recovered")
    # A secret of the longest length a caller may send is stored sealed (longer still); changing
    # another field later is not refused for it.
    longest = "s" * 512
    await api.schedules.UpdateSchedule(
        pb.UpdateScheduleRequest(
            schedule=schedule(
                scheduleId=made.schedule_id, notifications=[{"url": "https://hooks.example.test/x", "secret": longest}]
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["notifications"]),
        ),
        metadata=md,
    )
    renamed = await api.schedules.UpdateSchedule(
        pb.UpdateScheduleRequest(
            schedule=schedule(scheduleId=made.schedule_id, name="renamed"),
            update_mask=field_mask_pb2.FieldMask(paths=["name"]),
        ),
        metadata=md,
    )
    assert renamed.name == "renamed" and renamed.notifications[0].secret_set
    last = await schedule_notifications(api.queue, "acme", made.schedule_id)
    assert api.sealer.open(last[0].secret, field="secret") == longest


async def test_delete(api: Api) -> None:
    md = api.md("acme-submitter")
    sid = (await create(api)).schedule_id
    job = await api.schedules.TriggerSchedule(pb.TriggerScheduleRequest(schedule_id=sid), metadata=md)
    assert (await api.schedules.DeleteSchedule(pb.DeleteScheduleRequest(schedule_id=sid), metadata=md)).deleted
    await rpc_error(api.schedules.GetSchedule(pb.GetScheduleRequest(schedule_id=sid), metadata=md), Code.NOT_FOUND)
    await rpc_error(
        api.schedules.DeleteSchedule(pb.DeleteScheduleRequest(schedule_id=sid), metadata=md), Code.NOT_FOUND
    )
    # Its jobs stay, still found by its id.
    listed = await api.jobs.ListJobs(pb.ListJobsRequest(schedule_id=sid), metadata=md)
    assert [j.job_id for j in listed.jobs] == [job.job_id]


async def test_notification_targets_are_checked_by_the_apis_webhook_policy(api: Api) -> None:
    md = api.md("acme-submitter")
    refused = schedule(notifications=[{"url": "http://10.1.2.3:8080/hook"}])
    err = await rpc_error(
        api.schedules.CreateSchedule(pb.CreateScheduleRequest(schedule=refused), metadata=md), Code.INVALID_ARGUMENT
    )
    assert bad_request_fields(err) == ["schedule.notifications[0].url"]
    assert "SENTINEL_WEBHOOK_ALLOW" in (err.details() or "")
    allowed = schedule(notifications=[{"url": "http://10.20.0.5/hook"}])
    made = await api.schedules.CreateSchedule(pb.CreateScheduleRequest(schedule=allowed), metadata=md)
    assert [n.url for n in made.notifications] == ["http://10.20.0.5/…"]  # shown masked
    change = pb.UpdateScheduleRequest(
        schedule=schedule(scheduleId=made.schedule_id, notifications=[{"url": "http://[::1]:9000/hook"}]),
        update_mask=field_mask_pb2.FieldMask(paths=["notifications"]),
    )
    err = await rpc_error(api.schedules.UpdateSchedule(change, metadata=md), Code.INVALID_ARGUMENT)
    assert bad_request_fields(err) == ["schedule.notifications[0].url"]
    kept = await schedule_notifications(api.queue, "acme", made.schedule_id)
    assert [api.sealer.open(n.url, field="url") for n in kept] == ["http://10.20.0.5/hook"]


#: Two receivers whose URLs are shown alike (`https://hooks.example.test/…`), and one told apart.
TOKEN_A = "https://hooks.example.test/a-token"
TOKEN_B = "https://hooks.example.test/b-token"
SLACK = "https://hooks.example.test/services/T000/B000/XXXXXXXXXXXXXXXXXXXXq3z"


async def test_notification_urls_are_sealed_shown_masked_and_kept_when_sent_back_masked(api: Api) -> None:
    md = api.md("acme-submitter")
    made = await create(
        api,
        notifications=[
            {"url": TOKEN_A, "secret": "secret-a", "events": ["failed"]},
            {"url": TOKEN_B, "secret": "secret-b", "events": ["completed"]},
            {"url": SLACK},
        ],
    )
    got = await api.schedules.GetSchedule(pb.GetScheduleRequest(schedule_id=made.schedule_id), metadata=md)
    listed = await api.schedules.ListSchedules(pb.ListSchedulesRequest(), metadata=md)
    shown = [
        "https://hooks.example.test/…",
        "https://hooks.example.test/…",
        "https://hooks.example.test/services/…Xq3z",
    ]
    for answer in (made, got, listed.schedules[0]):
        assert [n.url for n in answer.notifications] == shown
        assert b"-token" not in answer.SerializeToString() and b"T000" not in answer.SerializeToString()
    stored = await schedule_notifications(api.queue, "acme", made.schedule_id)
    assert all(n.url.startswith(SEALED_PREFIX) for n in stored)  # sealed at rest: the API has a key
    assert [api.sealer.open(n.url, field="url") for n in stored] == [TOKEN_A, TOKEN_B, SLACK]
    assert "-token" not in await stored_text(api.queue.redis) and "T000" not in await stored_text(api.queue.redis)

    # Read, edit, write: what GetSchedule showed, sent back with the events changed, keeps every
    # receiver (in order: the n-th masked URL of a mask is the n-th stored one) and its secret.
    edited = [{"url": n.url, "events": ["failed", "recovered"]} for n in got.notifications]
    again = await api.schedules.UpdateSchedule(
        pb.UpdateScheduleRequest(
            schedule=schedule(scheduleId=made.schedule_id, notifications=edited),
            update_mask=field_mask_pb2.FieldMask(paths=["notifications"]),
        ),
        metadata=md,
    )
    assert [n.url for n in again.notifications] == shown
    assert [n.secret_set for n in again.notifications] == [True, True, False]
    kept = await schedule_notifications(api.queue, "acme", made.schedule_id)
    assert [api.sealer.open(n.url, field="url") for n in kept] == [TOKEN_A, TOKEN_B, SLACK]
    assert [api.sealer.open(n.secret, field="secret") for n in kept[:2]] == ["secret-a", "secret-b"]
    assert all(n.events == ("failed", "recovered") for n in kept)

    # A masked URL standing for none of the stored ones is refused by name: a mask no stored URL
    # shows, and a third of a mask only two stored URLs show.
    for given, bad in (
        ([{"url": "https://hooks.example.test/services/…zzzz"}], 0),
        ([{"url": shown[0]}, {"url": shown[0]}, {"url": shown[0]}], 2),
    ):
        err = await rpc_error(
            api.schedules.UpdateSchedule(
                pb.UpdateScheduleRequest(
                    schedule=schedule(scheduleId=made.schedule_id, notifications=given),
                    update_mask=field_mask_pb2.FieldMask(paths=["notifications"]),
                ),
                metadata=md,
            ),
            Code.INVALID_ARGUMENT,
        )
        assert bad_request_fields(err) == [f"schedule.notifications[{bad}].url"]
        assert "masked" in (err.details() or "")
    # A new schedule has nothing stored for a masked URL to stand for.
    err = await rpc_error(create(api, notifications=[{"url": shown[2]}]), Code.INVALID_ARGUMENT)
    assert bad_request_fields(err) == ["schedule.notifications[0].url"]
    # A whole URL is taken as given, and keeps the secret of the stored one it names.
    whole = await api.schedules.UpdateSchedule(
        pb.UpdateScheduleRequest(
            schedule=schedule(scheduleId=made.schedule_id, notifications=[{"url": TOKEN_B}]),
            update_mask=field_mask_pb2.FieldMask(paths=["notifications"]),
        ),
        metadata=md,
    )
    assert [(n.url, n.secret_set) for n in whole.notifications] == [(shown[1], True)]
    last = await schedule_notifications(api.queue, "acme", made.schedule_id)
    assert [(api.sealer.open(n.url, field="url"), api.sealer.open(n.secret, field="secret")) for n in last] == [
        (TOKEN_B, "secret-b")
    ]
