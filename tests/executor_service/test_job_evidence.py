"""A job's verdict never depends on its evidence: an artifact store that takes connections and never
answers, through the executor's `run_job` with a real Chromium, a real redis-server and the real S3
client. A failed step stays the job's failure when the job's timeout comes while its screenshot is
being kept; and a store that did not answer is not asked again in the same attempt."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from executor_service import job, store
from executor_service.browser import BrowserManager
from executor_service.evidence import Evidence
from executor_service.job import JobEnv
from executor_service.ledger import QueueLedger
from shared import jobs
from shared.artifact_file import FileArtifactStore
from shared.artifact_s3 import S3ArtifactStore
from shared.model import (
    ArtifactPolicy,
    ErrorCategory,
    ExpectText,
    JobOptions,
    JobResult,
    JobState,
    Navigate,
    Step,
    SubmitCommand,
    TestDefinition,
)
from shared.navigation_policy import NavigationPolicy
from shared.queue import Queue
from shared.settings import ArtifactSettings, ExecutorSettings, QueueSettings
from tests.support import CHROMIUM_ARGS, chromium_path, serve_directory, silent_server, wait_for

pytestmark = pytest.mark.timeout(90)
PAGES = Path(__file__).parent / "pages"


@pytest.fixture
async def silent_store() -> AsyncIterator[str]:
    """An S3 endpoint that takes connections and never answers."""
    async with silent_server() as url:
        yield url


async def run_with_a_hung_store(
    redis_client: aioredis.Redis,
    tmp_path: Path,
    silent_store: str,
    steps: tuple[Step, ...],
    options: JobOptions,
    *,
    cancel_once_decided: bool = False,
) -> tuple[JobState | None, JobResult]:
    """Run a test of `steps` through `run_job`, its artifact store an S3 endpoint that never answers
    (for longer than the job's timeout); how it ended and its recorded result. `cancel_once_decided`:
    cancel the run as the executor does (`Runs.cancel`) once its steps have decided it."""
    settings = ArtifactSettings(
        url="s3://evidence/jobs", endpoint_url=silent_store, access_key_id="k", secret_access_key="s"
    )
    # Each request waits longer than the job has left once a step has run (the job's end then waits
    # one more of them for its trace, as a run with a hung store does).
    hung = S3ArtifactStore(settings, request_timeout_s=12, max_retries=0)
    queue = Queue.open(redis_client, QueueSettings())
    await queue.ensure_groups()
    with serve_directory(PAGES) as site:
        command = SubmitCommand(TestDefinition(name="t", base_url=f"{site}/", steps=steps), options)
        submitted = await jobs.submit(queue, command, tenant="default")
        (claim,) = (await store.claim(queue, consumer="c", worker_id="w", count=1)).claims
        browser = BrowserManager(
            executable_path=chromium_path(),
            args=CHROMIUM_ARGS,
            ffmpeg=shutil.which("ffmpeg") or "",
            policy=NavigationPolicy.from_rules(["127.0.0.1"]),
        )
        await browser.start()
        env = JobEnv(
            queue_settings=QueueSettings(),
            browser=browser,
            settings=ExecutorSettings(spool_dir=str(tmp_path)),
            worker_id="w",
            store=hung,
        )
        state = job.RunState(claim=claim, ledger=QueueLedger(queue), begun=True)
        running = asyncio.create_task(job.run_job(env, state))
        try:
            if cancel_once_decided:
                await wait_for(lambda: state.decided, within=60, what="the steps to decide the run")
                state.cancel_requested = True
                running.cancel()
            ended = await running
        finally:
            await browser.stop()
    result = (await jobs.get_job(queue, submitted.job_id, tenant=None)).result
    assert result is not None
    return ended, result


async def test_a_cancel_while_the_evidence_is_kept_comes_too_late_to_change_the_verdict(
    redis_client: aioredis.Redis, tmp_path: Path, silent_store: str
) -> None:
    steps = (Step(Navigate("form.html")), Step(ExpectText("h1", "Checkout"), timeout_ms=300))
    options = JobOptions(timeout_ms=60_000, max_attempts=1)
    ended, result = await run_with_a_hung_store(
        redis_client, tmp_path, silent_store, steps, options, cancel_once_decided=True
    )

    assert ended is JobState.FAILED and result.error is not None  # not CANCELLED
    # (`but no element matched within 300 ms` on a machine too loaded to read the heading in time)
    assert result.error.message.startswith("expected \"h1\" to contain 'Checkout', ")
    assert "evidence cut short: a cancel came while it was kept" in result.artifact_notes


#: Long enough for the steps on a loaded machine; the hung upload outlasts it.
JOB_TIMEOUT_MS = 8000
CUT_SHORT = f"evidence cut short: the job's timeout ({JOB_TIMEOUT_MS} ms) came while it was kept"


async def test_a_failed_step_stays_the_verdict_when_the_timeout_comes_while_its_evidence_is_kept(
    redis_client: aioredis.Redis, tmp_path: Path, silent_store: str
) -> None:
    steps = (Step(Navigate("form.html")), Step(ExpectText("h1", "Checkout"), timeout_ms=300))
    options = JobOptions(timeout_ms=JOB_TIMEOUT_MS, max_attempts=1)
    ended, result = await run_with_a_hung_store(redis_client, tmp_path, silent_store, steps, options)

    assert ended is JobState.FAILED  # not TIMEOUT: the step had failed before the timeout came
    assert result.error is not None
    assert result.error.category is ErrorCategory.ASSERTION and result.error.step_index == 1
    # (`but no element matched within 300 ms` on a machine too loaded to read the heading in time)
    assert result.error.message.startswith("expected \"h1\" to contain 'Checkout', ")
    assert [(s.success, s.error) for s in result.steps] == [(True, ""), (False, result.error.message)]
    assert CUT_SHORT in result.artifact_notes


async def test_a_passed_run_stays_passed_when_the_timeout_comes_while_its_evidence_is_kept(
    redis_client: aioredis.Redis, tmp_path: Path, silent_store: str
) -> None:
    steps = (Step(Navigate("form.html")), Step(ExpectText("h1", "Sign in")))
    # ALWAYS: a final screenshot and the trace are kept after the steps passed.
    options = JobOptions(timeout_ms=JOB_TIMEOUT_MS, max_attempts=1, artifact_policy=ArtifactPolicy.ALWAYS)
    ended, result = await run_with_a_hung_store(redis_client, tmp_path, silent_store, steps, options)

    assert ended is JobState.COMPLETED and result.error is None and result.success
    assert [s.success for s in result.steps] == [True, True]
    assert CUT_SHORT in result.artifact_notes


async def test_a_store_that_failed_is_not_asked_again_in_the_same_attempt(tmp_path: Path) -> None:
    blocked = tmp_path / "store"
    blocked.write_text("a file where the store's directory should be")
    failing = FileArtifactStore(blocked, max_artifact_bytes=10**9)
    evidence = Evidence.open(failing, job_id="j", attempt=1, spool_root=tmp_path / "spool", max_job_bytes=10**9)
    try:
        evidence.path("a.png").write_bytes(b"a")
        assert await evidence.keep("a.png") is None
        blocked.unlink()  # the store would answer now, but this attempt no longer asks it
        evidence.path("b.png").write_bytes(b"b")
        assert await evidence.keep("b.png") is None
    finally:
        await evidence.close()
    first, second = evidence.notes
    assert first.startswith("1/a.png not kept: artifact directory")
    assert second.startswith("1/b.png not kept: not tried, the artifact store failed earlier in this attempt (")

    again = Evidence.open(failing, job_id="j", attempt=2, spool_root=tmp_path / "spool", max_job_bytes=10**9)
    try:
        again.path("c.png").write_bytes(b"c")
        assert await again.keep("c.png") == "2/c.png"  # the next attempt asks again
    finally:
        await again.close()
