"""The SDK's schedule calls, on both clients, against real `sentinel api` / `sentinel executor` processes."""

from __future__ import annotations

import uuid

import pytest

from sentinel_client import (
    AsyncClient,
    InvalidArgumentError,
    JobSource,
    NotFoundError,
    OverlapPolicy,
    Schedule,
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
