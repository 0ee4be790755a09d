"""The SDK against real processes: `sentinel api`, `sentinel executor`, Chromium and redis-server.

Each scenario runs with `AsyncClient` and with the blocking `Client` (see `twins`); the module's
tests share one stack, so each works with jobs of its own (a fresh tag, its own job ids).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC
from pathlib import Path
from typing import Any

import grpc
import pytest

from sentinel_client import (
    AsyncClient,
    ErrorCategory,
    FailedPreconditionError,
    HealthStatus,
    InvalidArgumentError,
    Job,
    JobState,
    NotFoundError,
    Priority,
    RetryPolicy,
    SentinelError,
    StepResult,
    UnavailableError,
    WaitTimeout,
)
from tests.e2e.conftest import Stack
from tests.sentinel_client.conftest import api_of
from tests.sentinel_client.twins import Calls, connect
from tests.support import closed_port, free_port

pytestmark = pytest.mark.timeout(120)

PASSING: list[dict[str, Any]] = [
    {"navigate": {"url": "/index.html"}},
    {"fill": {"selector": "#name", "value": "Ada"}},
    {"click": {"selector": "#greet"}},
    {"expectText": {"selector": "#out", "text": "Hi, Ada"}},
]
#: A job that waits an hour before it may run: it stays SCHEDULED for as long as a test needs.
LATER = 3_600_000


def definition(stack: Stack, steps: list[dict[str, Any]], name: str = "sdk") -> dict[str, Any]:
    return {"name": name, "baseUrl": stack.site, "steps": steps}


def fresh_tag() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


async def test_submit_a_dict_follow_it_live_and_wait_for_the_result(client: AsyncClient, stack: Stack) -> None:
    job = await client.submit(definition(stack, PASSING), priority="high", tags=["sdk"], max_attempts=2)
    assert not job.duplicate
    events = [event async for event in job.events()]
    done = await job.wait(timeout=60)

    assert events[0].state is JobState.PENDING
    assert events[-1].terminal and events[-1].state is JobState.COMPLETED and events[-1].progress.percentage == 100
    assert sum(e.terminal for e in events) == 1 and len({e.cursor for e in events}) == len(events)
    assert JobState.RUNNING in {e.state for e in events}
    assert isinstance(done, Job) and done.state is JobState.COMPLETED and done.passed and done.ended
    assert f"{done.state}" == "completed" and done.priority is Priority.HIGH and done.tags == ("sdk",)
    assert done.max_attempts == 2 and done.attempt == 1 and done.runs == 1
    assert done.result is not None and done.result.success
    assert [type(s) for s in done.result.steps] == [StepResult] * 4
    assert [s.success for s in done.result.steps] == [True] * 4 and done.result.execution_time_ms > 0
    assert done.created_at is not None and done.created_at.tzinfo is UTC
    assert done.finished_at is not None and done.created_at <= done.finished_at
    assert await client.get(job.id) == done == await job.refresh()  # finished: the same value every time


async def test_submit_a_file_with_options_and_fetch_the_failure_evidence(
    client: AsyncClient, stack: Stack, tmp_path: Path
) -> None:
    steps = [*PASSING[:3], {"timeoutMs": 500, "expectText": {"selector": "#out", "text": "Hi, Grace"}}, PASSING[0]]
    file = tmp_path / "failing.json"
    document = {"definition": definition(stack, steps), "options": {"priority": "PRIORITY_LOW", "tags": ["file"]}}
    file.write_text(json.dumps(document))

    job = await client.submit(file, priority=Priority.MEDIUM)  # a keyword wins over the file's option
    done = await job.wait(timeout=60)

    assert done.state is JobState.FAILED and not done.passed
    assert done.priority is Priority.MEDIUM and done.tags == ("file",)
    assert done.result is not None
    failing, skipped = done.result.steps[3], done.result.steps[4]
    assert not failing.success and "Hi, Grace" in failing.error and skipped.skipped
    assert done.error is not None and done.error.category is ErrorCategory.ASSERTION and done.error.step_index == 3
    assert failing.artifacts == ("1/step-03-failure.png",)

    listed = await job.artifacts()
    assert {a.name for a in listed} == {"1/step-03-failure.png", "1/trace.zip"}
    shot = next(a for a in listed if a.name.endswith(".png"))
    assert shot.attempt == 1 and shot.step_index == 3 and shot.content_type == "image/png" and shot.size_bytes > 0
    paths = await job.download_artifacts(tmp_path / "evidence")
    assert sorted(p.relative_to(tmp_path / "evidence").as_posix() for p in paths) == [
        "1/step-03-failure.png",
        "1/trace.zip",
    ]
    assert (tmp_path / "evidence" / "1" / "step-03-failure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    one = await client.download_artifact(job.id, "1/trace.zip", tmp_path / "trace.zip")
    assert one.read_bytes() == (tmp_path / "evidence" / "1" / "trace.zip").read_bytes()
    into = await client.download_artifact(job.id, "1/trace.zip", tmp_path / "evidence")  # a directory, as cp takes
    assert into == tmp_path / "evidence" / "trace.zip" and into.read_bytes() == one.read_bytes()
    assert not await asyncio.to_thread(lambda: list(tmp_path.rglob("*.part")))  # no partial file left


async def test_wait_times_out_cancel_stops_the_job_and_a_second_cancel_is_refused(
    client: AsyncClient, stack: Stack
) -> None:
    job = await client.submit(definition(stack, PASSING), delay_ms=LATER)
    with pytest.raises(WaitTimeout) as waited:
        await job.wait(timeout=0.5)
    assert isinstance(waited.value, TimeoutError) and isinstance(waited.value, SentinelError)
    assert waited.value.job_id == job.id and waited.value.last_state == "scheduled"

    cancelled = await job.cancel()
    assert cancelled.state is JobState.CANCELLED and (await job.wait(timeout=10)).state is JobState.CANCELLED
    with pytest.raises(FailedPreconditionError) as again:
        await client.job(job.id).cancel()
    assert again.value.code is grpc.StatusCode.FAILED_PRECONDITION and again.value.message


async def test_jobs_pages_through_more_than_one_page(client: AsyncClient, stack: Stack) -> None:
    tag = fresh_tag()
    made = [(await client.submit(definition(stack, PASSING), tags=[tag], delay_ms=LATER)).id for _ in range(5)]

    first = await client.list_jobs(tag=tag, page_size=2)
    assert len(first.items) == 2 and first.next_page_token
    listed = [job async for job in client.jobs(tag=tag, page_size=2)]  # three pages
    assert sorted(j.id for j in listed) == sorted(made)
    assert all(j.state is JobState.SCHEDULED for j in listed)
    assert [j.id async for j in client.jobs(state="scheduled", tag=tag, page_size=2)] == [j.id for j in listed]
    assert [j async for j in client.jobs(state=JobState.COMPLETED, tag=tag)] == []
    for job_id in made:
        await client.cancel(job_id)


async def test_a_dead_letter_is_listed_and_retried(client: AsyncClient, stack: Stack) -> None:
    tag = fresh_tag()
    closed = f"http://127.0.0.1:{closed_port()}/"
    job = await client.submit(definition(stack, [{"navigate": {"url": closed}}]), max_attempts=1, tags=[tag])
    failed = await job.wait(timeout=60)
    assert failed.state is JobState.FAILED
    assert failed.error is not None and failed.error.category is ErrorCategory.NETWORK

    [letter] = [d async for d in client.dead_letters(tag=tag)]
    assert letter.job_id == job.id and letter.attempts == 1 and letter.tags == (tag,)
    assert "out of attempts" in letter.reason and letter.error is not None
    assert letter.dead_lettered_at is not None and letter.dead_lettered_at.tzinfo is UTC

    rerun = await job.retry(priority="high")
    assert rerun.id == job.id and rerun.priority is Priority.HIGH
    assert rerun.state in (JobState.PENDING, JobState.RUNNING)  # the idle executor may have claimed it
    again = await job.wait(timeout=60)
    assert again.state is JobState.FAILED and again.finished_at != failed.finished_at
    assert (failed.attempt, failed.runs, again.attempt, again.runs) == (1, 1, 1, 2)  # a rerun's attempt restarts

    requeued = await client.requeue_dead_letter(job.id)
    assert requeued.id == job.id and requeued.priority is Priority.LOW  # the API's lane for requeues
    assert (await job.wait(timeout=60)).state is JobState.FAILED


async def test_admin_calls_see_and_steer_the_queue(client: AsyncClient, stack: Stack) -> None:
    stats = await client.stats()
    assert stats.queue == "default" and stats.tenant == "" and {lane.priority for lane in stats.lanes} == set(Priority)
    assert stats.total_processed == sum(lane.total_processed for lane in stats.lanes)
    try:
        assert (await client.pause()).paused
        health = await client.health()
        assert health.status is HealthStatus.DEGRADED and any("paused" in r for r in health.reasons)
        assert health.stats is not None and health.stats.paused
    finally:
        assert not (await client.resume()).paused

    tag = fresh_tag()
    job = await client.submit(definition(stack, PASSING), tags=[tag], delay_ms=LATER)
    await job.cancel()
    seen = []
    async with asyncio.timeout(30):
        async for event in client.watch_events(tag=tag, cursor="0-0"):  # from the start of the events stream
            seen.append(event)
            if event.kind == "cancelled":
                break
    assert [e.kind for e in seen] == ["delayed", "cancelled"] and {e.job_id for e in seen} == {job.id}
    assert seen[-1].state is JobState.CANCELLED and seen[-1].tags == (tag,) and seen[-1].time is not None
    assert await client.clean(state="cancelled", older_than_ms=LATER) == 0  # nothing is an hour old
    assert await client.purge_dead_letters(older_than_ms=LATER) == 0


async def test_the_apis_refusals_become_the_sdks_errors(client: AsyncClient, stack: Stack) -> None:
    with pytest.raises(NotFoundError) as unknown:
        await client.get("no-such-job")
    assert unknown.value.code is grpc.StatusCode.NOT_FOUND and "no-such-job" in unknown.value.message
    with pytest.raises(NotFoundError):
        [event async for event in client.events("no-such-job")]

    bad = definition(stack, [{"navigate": {"url": "/"}}, {"click": {"selector": " "}}])
    with pytest.raises(InvalidArgumentError) as invalid:
        await client.submit(bad)
    assert invalid.value.code is grpc.StatusCode.INVALID_ARGUMENT
    fields = [field for field, _ in invalid.value.violations]
    assert "definition.steps[1].click.selector" in fields and all(d for _, d in invalid.value.violations)

    # Found on this side, before any call: the API's status code, and the field named as the API would.
    with pytest.raises(InvalidArgumentError) as local:
        await client.submit({"name": "x", "stepz": []})
    assert local.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in local.value.violations] == ["definition"]
    with pytest.raises(InvalidArgumentError) as priority:
        await client.submit(definition(stack, PASSING), priority="urgent")
    assert priority.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert priority.value.violations[0].field == "options.priority" and "high, medium, low" in priority.value.message


async def test_an_unreachable_api_is_retried_then_given_up(flavor: str) -> None:
    calls = Calls(flavor)
    quick = RetryPolicy(attempts=3, initial_backoff=0.05, max_backoff=0.1)
    async with connect(flavor, f"127.0.0.1:{free_port()}", retries=quick, interceptors=[calls.interceptor()]) as client:
        with pytest.raises(UnavailableError) as down:
            await client.get("some-job")
        assert down.value.code is grpc.StatusCode.UNAVAILABLE
        assert calls.made == {"Status": 3}
        with pytest.raises(UnavailableError):
            await client.retry("some-job")  # not safe to repeat: tried once
        assert calls.made == {"Status": 3, "Retry": 1}
        with pytest.raises(UnavailableError):
            [event async for event in client.events("some-job")]
    async with connect(flavor, f"127.0.0.1:{free_port()}", retries=0, interceptors=[calls.interceptor()]) as client:
        with pytest.raises(UnavailableError):
            await client.get("some-job")
        assert calls.made["Status"] == 4


async def test_a_submit_whose_reply_was_lost_is_retried_and_makes_one_job(flavor: str, stack: Stack) -> None:
    tag = fresh_tag()
    calls = Calls(flavor, lose=("Submit",))
    async with connect(flavor, api_of(stack), interceptors=[calls.interceptor()]) as client:
        job = await client.submit(definition(stack, PASSING), tags=[tag], delay_ms=LATER)
        assert calls.made["Submit"] == 2 and job.duplicate  # the second try found the first one's job
        assert [j.id async for j in client.jobs(tag=tag)] == [job.id]
        await job.cancel()


async def test_events_resume_across_an_api_restart_without_gaps_or_repeats(flavor: str, stack: Stack) -> None:
    patient = RetryPolicy(attempts=60, initial_backoff=0.1, max_backoff=0.5)  # rides out ~30 s of restart
    steps: list[dict[str, Any]] = [{"navigate": {"url": "/index.html"}}, *[{"wait": {"ms": 250}} for _ in range(8)]]
    # Calls are not retried at all: only the stream policy can carry the stream through the restart.
    async with connect(flavor, api_of(stack), retries=0, stream_retries=patient) as client:
        job = await client.submit(definition(stack, steps))
        seen, restarted = [], False
        async for event in job.events():
            seen.append(event)
            if not restarted and event.state is JobState.RUNNING and event.progress.current_step >= 2:
                await asyncio.to_thread(restart_api, stack)
                restarted = True
        whole = [event async for event in job.events()]
    assert restarted and seen[-1].terminal and seen[-1].state is JobState.COMPLETED
    assert [e.cursor for e in seen] == [e.cursor for e in whole]


def restart_api(stack: Stack) -> None:
    """Stop the stack's API (its open streams end UNAVAILABLE) and start a new one on the same port."""
    stack.restart(next(s for s in reversed(stack.services) if s.name == "api" and s.process.poll() is None))
