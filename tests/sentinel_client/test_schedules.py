"""The SDK's schedule calls, on both clients, against real `sentinel api` / `sentinel executor` processes."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest

from sentinel_client import (
    AsyncClient,
    InvalidArgumentError,
    JobSource,
    NotFoundError,
    OverlapPolicy,
    Schedule,
    ScheduleRun,
)

DEFINITION = {"name": "sdk schedule", "steps": [{"wait": {"ms": 10}}]}


async def test_create_read_change_trigger_and_delete(client: AsyncClient) -> None:
    tag = f"sdk-{uuid.uuid4().hex[:8]}"
    made = await client.create_schedule(
        DEFINITION,
        options={"tags": [tag], "priority": "low"},
        name="hourly",
        cron="0 * * * *",
        timezone="Europe/Berlin",
        overlap="buffer_one",
        notifications=[{"url": "https://hooks.example.test/x", "events": ["failed"]}],
    )
    assert isinstance(made, Schedule)
    assert (made.name, made.cron, made.timezone, made.overlap) == (
        "hourly",
        "0 * * * *",
        "Europe/Berlin",
        OverlapPolicy.BUFFER_ONE,
    )
    assert made.template["options"]["tags"] == [tag] and "idempotencyKey" not in made.template["options"]
    assert len(made.next_fires) == 5 and made.notifications[0].events == ("failed",)

    assert (await client.get_schedule(made.id)).id == made.id
    assert made.id in [s.id async for s in client.schedules()]
    assert made.id in [s.id for s in (await client.list_schedules(page_size=500)).items]

    renamed = await client.update_schedule(made.id, name="renamed")
    assert (renamed.name, renamed.cron, renamed.overlap) == ("renamed", "0 * * * *", OverlapPolicy.BUFFER_ONE)
    every = await client.update_schedule(made.id, interval_ms=3_600_000, cron="")
    assert (every.cron, every.interval_ms) == ("", 3_600_000)

    paused = await client.pause_schedule(made.id, note="deploying")
    assert paused.paused and paused.note == "deploying" and not paused.next_fires
    job = await client.trigger_schedule(made.id)
    assert (job.source, job.schedule_id, job.tags, job.fire_time) == (JobSource.SCHEDULER, made.id, (tag,), None)
    resumed = await client.resume_schedule(made.id)
    assert not resumed.paused and resumed.recent_runs[0].job_id == job.id and resumed.recent_runs[0].triggered

    listed = await client.list_jobs(schedule_id=made.id)
    assert [j.id for j in listed.items] == [job.id]
    assert [j.id async for j in client.jobs(schedule_id=made.id)] == [job.id]

    assert await client.delete_schedule(made.id) is True
    with pytest.raises(NotFoundError):
        await client.get_schedule(made.id)


async def test_a_bad_schedule_names_its_fields(client: AsyncClient) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        await client.create_schedule(DEFINITION, name="bad", cron="* * *", interval_ms=500)
    fields = {v.field for v in info.value.violations}
    assert {"schedule.cron", "schedule.interval_ms"} <= fields
    with pytest.raises(InvalidArgumentError):
        await client.create_schedule(DEFINITION, name="bad", interval_ms=1000, overlap="sometimes")
    with pytest.raises(InvalidArgumentError):
        await client.update_schedule("any")


@pytest.mark.parametrize(
    ("fields", "field", "said"),
    [
        ({"interval_ms": -5}, "schedule.interval_ms", "must be an integer ≥ 0, got -5"),
        ({"interval_ms": True}, "schedule.interval_ms", "must be an integer ≥ 0, got True"),
        ({"interval_ms": 5000, "jitter_ms": -1}, "schedule.jitter_ms", "must be an integer ≥ 0, got -1"),
        ({"interval_ms": 5000, "overlap": "x"}, "schedule.overlap", "must be one of skip, allow, buffer_one"),
        ({"interval_ms": 5000, "timezone": 1}, "schedule.timezone", "must be a string, got 1"),
        ({"interval_ms": 5000, "paused": "yes"}, "schedule.paused", "must be true or false"),
        ({"interval_ms": 5000, "options": {"priority": "urgent"}}, "schedule.template.options.priority", "urgent"),
        ({"interval_ms": 5000, "options": {"timeout_ms": -1}}, "schedule.template.options.timeout_ms", "≥ 0"),
        (
            {"interval_ms": 5000, "notifications": [{"url": "https://h.example.test/", "evnts": []}]},
            "schedule.notifications[0]",
            'unknown field "evnts"',
        ),
    ],
)
async def test_a_mistake_found_before_the_call_is_the_error_the_api_would_give(
    client: AsyncClient, fields: dict[str, Any], field: str, said: str
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        await client.create_schedule(DEFINITION, name="bad", **fields)
    error = info.value
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in error.violations] == [field] and said in error.violations[0].description
    assert error.message.startswith(f"{field}: ") and "Value out of range" not in error.message


async def test_an_update_naming_nothing_is_refused_as_the_api_would(client: AsyncClient) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        await client.update_schedule("any")
    assert info.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in info.value.violations] == ["update_mask"]


async def test_a_files_schedule_is_named_after_the_file_unless_named(client: AsyncClient, tmp_path: Path) -> None:
    path = tmp_path / "nightly-login.json"
    path.write_text(json.dumps(DEFINITION))
    made = await client.create_schedule(path, interval_ms=3_600_000)
    assert made.name == "nightly-login"
    named = await client.create_schedule(str(path), interval_ms=3_600_000, name="sign in")
    assert named.name == "sign in"
    for schedule in (made, named):
        await client.delete_schedule(schedule.id)
    with pytest.raises(InvalidArgumentError) as info:  # a dict has no file name: the API asks for one
        await client.create_schedule(DEFINITION, interval_ms=3_600_000)
    assert [v.field for v in info.value.violations] == ["schedule.name"]


def test_a_held_fire_is_a_run_with_no_job_that_was_not_skipped() -> None:
    assert ScheduleRun(reason="held: waits for the running fire to end").held
    assert not ScheduleRun(job_id="j1").held
    assert not ScheduleRun(skipped=True, reason="the previous run had not ended").held
    assert not ScheduleRun(job_id="j2", triggered=True).held
