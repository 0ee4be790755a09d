"""A run checks its definition again; jobs that share one definition object are checked once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

import pytest
import redis.asyncio as aioredis
from aiohttp import web

from executor_service import job, recorder, store
from executor_service.browser import BrowserManager
from executor_service.job import JobEnv
from executor_service.ledger import QueueLedger
from executor_service.store import Write
from shared import codec, jobs, validation
from shared.actions import Navigate, Request
from shared.errors import FieldViolation
from shared.model import JobOptions, JobState, Step, SubmitCommand, TestDefinition
from shared.navigation_policy import NavigationPolicy
from shared.queue import Queue
from shared.settings import ExecutorSettings, QueueSettings
from tests.support import free_port


def test_a_definition_object_is_checked_once_and_its_violations_come_back_each_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked: list[TestDefinition] = []
    real = validation.validate_definition

    def counted(definition: TestDefinition) -> list[FieldViolation]:
        checked.append(definition)
        return real(definition)

    monkeypatch.setattr(job, "validate_definition", counted)
    raw = codec.definition_to_json(TestDefinition(name="", steps=(Step(Navigate(url="ftp://nowhere/")),)))
    shared = codec.definition_from_json(raw)  # what the jobs of one test share
    alone = codec.definition_from_json(raw + " ")  # equal, but another object

    first = job._violations(shared)
    again = job._violations(shared)
    other = job._violations(alone)

    assert [v.field for v in first] == ["definition.name", "definition.steps[0].navigate.url"]
    assert again == first and again is not first  # a list of its own each time
    assert other == first
    assert checked == [shared, alone] and checked[0] is shared and checked[1] is alone


def _said(write: Write) -> str:
    """A record write as the test names it: "end", or its progress message."""
    return "end" if "state" in write.members else cast(dict[str, str], write.members["progress"])["msg"]


async def run_one(
    redis_client: aioredis.Redis, tmp_path: Path, steps: Callable[[str], tuple[Step, ...]], options: JobOptions
) -> tuple[JobState | None, Queue, str]:
    """Submit a test of request steps against a site of this test's (`/` answers at once, `/slow`
    never), claim it and run it with the executor's `run_job`; its end, its queue and its job id."""

    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def slow(_: web.Request) -> web.Response:
        await asyncio.Event().wait()  # never answers: the run's timeout is what ends it
        return web.Response(text="never")

    app = web.Application()
    app.router.add_get("/", ok)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app, shutdown_timeout=0.5)  # a slow answer is not waited for
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    queue = Queue.open(redis_client, QueueSettings())
    await queue.ensure_groups()
    command = SubmitCommand(TestDefinition(name="t", steps=steps(f"http://127.0.0.1:{port}")), options)
    submitted = await jobs.submit(queue, command, tenant="default")
    (claim,) = (await store.claim(queue, consumer="c", worker_id="w", count=1)).claims
    browser = BrowserManager(executable_path="", policy=NavigationPolicy.from_rules(["127.0.0.1"]))
    settings = ExecutorSettings(spool_dir=str(tmp_path))
    env = JobEnv(queue_settings=QueueSettings(), browser=browser, settings=settings, worker_id="w")
    try:
        ended = await job.run_job(env, job.RunState(claim=claim, ledger=QueueLedger(queue)))
    finally:
        await runner.cleanup()
    return ended, queue, submitted.job_id


async def test_a_runs_cleaning_up_report_and_its_end_go_in_one_write(
    redis_client: aioredis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The steps are over when a run reports 95 %: its end follows in the same loop turn, and both go
    in one record.lua call, the report first (a subscriber sees them in that order)."""
    calls: list[list[str]] = []  # each record call: its writes, "end" or the progress message
    real_record = store.record

    async def logged(queue: Queue, writes: Sequence[Write]) -> list[int]:
        calls.append([_said(w) for w in writes])
        return await real_record(queue, writes)

    monkeypatch.setattr(recorder, "record", logged)
    ended, queue, job_id = await run_one(
        redis_client, tmp_path, lambda site: (Step(Request(url=f"{site}/"), name="ping"),), JobOptions()
    )

    assert ended is JobState.COMPLETED
    assert calls[-1] == ["Cleaning up", "end"]
    stream = cast(list[tuple[str, dict[str, str]]], await redis_client.xrange(queue.keys.progress(job_id)))
    assert [f["msg"] for _, f in stream][-2:] == ["Cleaning up", "Complete"]


async def test_a_timed_out_run_keeps_the_results_of_the_steps_that_ended(
    redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    """A timeout (or a cancel) stops the run mid-step: the steps before it keep what they recorded
    (time, HTTP status), the one running gets the reason and the time it ran, the rest are skipped."""

    def steps(site: str) -> tuple[Step, ...]:
        paths = (("/", "first"), ("/slow", "slow"), ("/", "never"))
        return tuple(Step(Request(url=f"{site}{path}"), name=name) for path, name in paths)

    ended, queue, job_id = await run_one(redis_client, tmp_path, steps, JobOptions(timeout_ms=1500, max_attempts=1))

    assert ended is JobState.TIMEOUT
    result = (await jobs.get_job(queue, job_id, tenant=None)).result
    assert result is not None and result.error is not None
    first, stopped, never = result.steps
    assert first.success and first.http_status == 200 and first.duration_ms > 0
    assert not stopped.success and stopped.error == "job timed out after 1500 ms" and stopped.duration_ms > 0
    assert never.skipped
    assert result.error.step_index == 1
