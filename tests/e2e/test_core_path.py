"""The core path through real processes: `sentinel api`, `sentinel executor`, Chromium, Redis."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from tests.e2e.conftest import SENTINEL, Stack
from tests.e2e.helpers import events_of, pings, request, run_to_end, stays_quiet, wait_state

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

PASSING: list[dict[str, Any]] = [
    {"navigate": {"url": "/index.html"}},
    {"expectTitle": {"text": "E2E Home"}},
    {"fill": {"selector": "#name", "value": "Ada"}},
    {"click": {"selector": "#greet"}},
    {"expectText": {"selector": "#out", "text": "Hi, Ada"}},
]


async def test_a_passing_test_completes_with_every_step_and_the_progress_scale(
    stack: Stack, api_stub: pb_grpc.TestExecutionStub
) -> None:
    stack.start("executor")
    job, events = await run_to_end(api_stub, request(stack.site, PASSING))

    assert job.state == pb.JOB_STATE_COMPLETED
    assert job.result.success and job.attempt == 1
    assert [s.success for s in job.result.steps] == [True] * 5
    assert job.result.worker_id and job.result.execution_time_ms > 0
    assert job.progress.percentage == 100
    running = [e.progress.percentage for e in events if e.state == pb.JOB_STATE_RUNNING]
    assert running[:4] == [0, 0, 5, 10]  # claimed, initializing, validated, browser ready
    assert [p for p in running if 10 <= p < 95] == [10, 10, 26, 42, 58, 74]
    assert running[-1] == 95
    assert events[-1].terminal and events[-1].state == pb.JOB_STATE_COMPLETED
    assert events[-1].progress.percentage == 100
    assert events[0].state == pb.JOB_STATE_PENDING
    assert len({e.cursor for e in events}) == len(events)


async def test_a_failing_assertion_ends_failed_with_the_failing_step_and_a_screenshot(
    stack: Stack, api_stub: pb_grpc.TestExecutionStub
) -> None:
    stack.start("executor")
    steps = [*PASSING[:4], {"timeoutMs": 1000, "expectText": {"selector": "#out", "text": "Hi, Grace"}}]
    steps.append({"click": {"selector": "#greet"}})
    job, events = await run_to_end(api_stub, request(stack.site, steps))

    assert job.state == pb.JOB_STATE_FAILED
    assert job.attempt == 1  # a failed assertion is a result: not retried unless asked
    failing = job.result.steps[4]
    assert not failing.success and "Hi, Grace" in failing.error
    assert job.result.steps[5].skipped
    assert job.error.category == pb.ERROR_CATEGORY_ASSERTION and job.error.step_index == 4
    assert failing.artifacts, "the failing step has a screenshot"
    assert failing.artifacts[0] == "1/step-04-failure.png"
    shot = stack.artifacts / job.job_id / failing.artifacts[0]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(job.result.artifacts) == ["1/step-04-failure.png", "1/trace.zip"]
    assert events[-1].terminal and events[-1].state == pb.JOB_STATE_FAILED


async def test_an_assertion_is_retried_when_the_job_asks_for_attempts(
    stack: Stack, api_stub: pb_grpc.TestExecutionStub
) -> None:
    stack.start("executor", QUEUE_BACKOFF_DELAY="100")
    steps = [
        {"navigate": {"url": "/index.html"}},
        {"timeoutMs": 300, "expectVisible": {"selector": "#missing"}},
    ]
    job, events = await run_to_end(api_stub, request(stack.site, steps, maxAttempts=2, backoffMs=100))
    assert job.state == pb.JOB_STATE_FAILED and job.attempt == 2
    assert pb.JOB_STATE_SCHEDULED in [e.state for e in events]
    assert sum(e.terminal for e in events) == 1


@pytest.mark.parametrize(
    ("steps", "field"),
    [
        ([], "definition.steps"),
        ([{"name": "nothing"}], "definition.steps[0]"),
        ([{"navigate": {"url": "/"}}, {"click": {"selector": " "}}], "definition.steps[1].click.selector"),
        ([{"navigate": {"url": "javascript:alert(1)"}}], "definition.steps[0].navigate.url"),
        ([{"navigate": {"url": "file:///etc/passwd"}}], "definition.steps[0].navigate.url"),
        ([{"wait": {"ms": 1}}] * 501, "definition.steps"),
    ],
)
async def test_invalid_input_is_refused_and_leaves_redis_untouched(
    stack: Stack,
    api_stub: pb_grpc.TestExecutionStub,
    redis_of: aioredis.Redis,
    steps: list[dict[str, Any]],
    field: str,
) -> None:
    before = await redis_of.dbsize()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api_stub.Submit(request(stack.site, steps), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(caught.value)
    assert status is not None
    detail = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(detail)
    assert field in [v.field for v in detail.field_violations]
    assert await redis_of.dbsize() == before


async def test_a_high_job_submitted_after_low_ones_runs_first_on_a_busy_executor(
    stack: Stack, api_stub: pb_grpc.TestExecutionStub
) -> None:
    stack.start("executor", QUEUE_CONCURRENCY="1")
    blocker = await api_stub.Submit(request(stack.site, [{"wait": {"ms": 1500}}], priority="PRIORITY_LOW"), timeout=10)
    await wait_state(api_stub, blocker.job_id, pb.JOB_STATE_RUNNING)
    lows = [
        (await api_stub.Submit(request(stack.site, [{"wait": {"ms": 50}}], priority="PRIORITY_LOW"))).job_id
        for _ in range(2)
    ]
    high = (await api_stub.Submit(request(stack.site, [{"wait": {"ms": 50}}], priority="PRIORITY_HIGH"))).job_id
    for job_id in [blocker.job_id, *lows, high]:
        await wait_state(api_stub, job_id, pb.JOB_STATE_COMPLETED, within=60)
    started = {}
    for job_id in [*lows, high]:
        job = await api_stub.Status(pb.StatusRequest(job_id=job_id))
        started[job_id] = job.started_at.ToMilliseconds()
    assert started[high] < min(started[low] for low in lows)


async def test_a_stream_resumed_with_its_cursor_misses_nothing_and_repeats_nothing(
    stack: Stack, api_stub: pb_grpc.TestExecutionStub
) -> None:
    stack.start("executor")
    steps: list[dict[str, Any]] = [{"navigate": {"url": "/index.html"}}, *[{"wait": {"ms": 150}} for _ in range(6)]]
    reply = await api_stub.Submit(request(stack.site, steps), timeout=10)

    first: list[pb.ProgressEvent] = []
    call = api_stub.StreamProgress(pb.StreamProgressRequest(job_id=reply.job_id))
    async for event in call:
        first.append(event)
        if event.progress.current_step >= 3:
            break
    call.cancel()
    rest = await events_of(api_stub, reply.job_id, cursor=first[-1].cursor)
    whole = await events_of(api_stub, reply.job_id)

    assert [e.cursor for e in first + rest] == [e.cursor for e in whole]
    assert whole[-1].terminal and whole[-1].state == pb.JOB_STATE_COMPLETED


async def test_two_subscribers_see_the_same_events(stack: Stack, api_stub: pb_grpc.TestExecutionStub) -> None:
    stack.start("executor")
    reply = await api_stub.Submit(request(stack.site, [*PASSING, {"wait": {"ms": 200}}]), timeout=10)
    a, b = await asyncio.gather(events_of(api_stub, reply.job_id), events_of(api_stub, reply.job_id))
    assert [(e.cursor, e.state, e.progress.percentage) for e in a] == [
        (e.cursor, e.state, e.progress.percentage) for e in b
    ]
    assert a[-1].terminal and len(a) >= 10


async def test_a_timed_out_job_ends_timeout_and_its_page_stops_running(
    stack: Stack, api_stub: pb_grpc.TestExecutionStub
) -> None:
    stack.start("executor")
    steps: list[dict[str, Any]] = [{"navigate": {"url": "/ping.html"}}, {"wait": {"ms": 60000}}]
    # Long enough that the navigation finishes within it on a loaded machine; the wait step cannot.
    job, events = await run_to_end(api_stub, request(stack.site, steps, timeoutMs=8000, maxAttempts=1))

    assert job.state == pb.JOB_STATE_TIMEOUT
    assert job.error.category == pb.ERROR_CATEGORY_TIMEOUT
    assert job.result.steps[0].success and not job.result.steps[1].success
    # The step that ended keeps its time; the one the timeout stopped, the time it ran.
    assert job.result.steps[0].duration_ms > 0 and job.result.steps[1].duration_ms > 0
    # A timed-out run keeps what the page showed when the timeout stopped its step, and its trace.
    assert list(job.result.artifacts) == ["1/step-01-failure.png", "1/trace.zip"]
    assert events[-1].terminal and events[-1].state == pb.JOB_STATE_TIMEOUT
    quiet = pings(stack.seen)
    assert quiet > 5, "the page was pinging while the job ran"
    await stays_quiet(stack.seen, stack.site, api_stub, quiet, "the page kept running after its job ended")


def _cli(stack: Stack, api_port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SENTINEL, *args],
        env=stack.env(SENTINEL_API=f"127.0.0.1:{api_port}"),
        capture_output=True,
        text=True,
        timeout=90,
    )


async def test_the_cli_follows_a_job_and_exits_by_its_outcome(stack: Stack, tmp_path: Path) -> None:
    api = stack.start("api")
    stack.start("executor")
    good = tmp_path / "good.json"
    good.write_text(_json(stack.site, PASSING))
    bad = tmp_path / "bad.json"
    bad.write_text(
        _json(stack.site, [PASSING[0], {"timeoutMs": 500, "expectText": {"selector": "h1", "text": "Nope"}}])
    )

    ok = await asyncio.to_thread(_cli, stack, api.port, "submit", str(good), "--follow")
    assert ok.returncode == 0, ok.stderr
    assert "COMPLETED" in ok.stdout and "100%" in ok.stdout
    failed = await asyncio.to_thread(_cli, stack, api.port, "submit", str(bad), "--follow", "--priority", "high")
    assert failed.returncode == 1, failed.stderr
    assert "FAILED" in failed.stdout and "Nope" in failed.stdout
    job_id = failed.stdout.split()[1]
    status = await asyncio.to_thread(_cli, stack, api.port, "status", job_id)
    assert status.returncode == 0 and "FAILED" in status.stdout


def _json(site: str, steps: list[dict[str, Any]]) -> str:
    return json.dumps({"name": "cli", "baseUrl": site, "steps": steps})


async def test_services_stop_cleanly_on_sigterm(stack: Stack) -> None:
    api = stack.start("api")
    executor = stack.start("executor")
    started = time.monotonic()
    assert executor.stop() == 0
    assert api.stop() == 0
    assert time.monotonic() - started < 20
