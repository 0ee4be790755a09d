"""The direct runner's choice of executor for a retry: one that lost the job's run is passed over."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field, replace

from shared import codec, jobs
from shared.direct.runner import DirectRunner
from shared.direct.table import JobTable
from shared.errors import ExecutorLost
from shared.model import ErrorCategory, Job, JobResult, JobState, Progress, RunEnd
from shared.settings import QueueSettings
from tests.queue_helpers import command
from tests.support import wait_for

NOW = 1_700_000_000_000


@dataclass
class Executor:
    """An executor that loses every run (`loses`), or ends each one COMPLETED; it counts its calls."""

    address: str
    loses: bool = False
    in_flight: int = 0
    attempts: list[str] = field(default_factory=list)

    async def run(self, record: Mapping[str, str], trace: str) -> AsyncGenerator[Progress | RunEnd, None]:
        self.attempts.append(record["attempt"])
        yield Progress(percentage=5, message="Validation complete")
        if self.loses:
            raise ExecutorLost(f"executor {self.address} lost the run (CANCELLED)")
        yield RunEnd(JobState.COMPLETED, Progress(percentage=100, message="done"), result=JobResult(success=True))


async def run_one(executors: list[Executor], *, max_attempts: int) -> Job:
    submit = command()
    submit = replace(submit, options=replace(submit.options, max_attempts=max_attempts, backoff_ms=1))
    record = jobs.new_job_record(QueueSettings(), submit, job_id="j1", tenant="acme", trace="", now=NOW)
    table = JobTable(max_jobs=10)
    entry = table.add(codec.job_from_hash(record), record, "")
    DirectRunner(executors, table, QueueSettings()).start(entry)
    assert entry.task is not None
    await asyncio.wait_for(entry.task, timeout=30)
    await wait_for(lambda: entry.job.state.terminal, within=5, what="the job's end in the table")
    return entry.job


async def test_a_retry_after_a_lost_run_goes_to_another_executor_though_the_first_is_as_idle() -> None:
    lost, other = Executor("a:1", loses=True), Executor("b:1")
    job = await run_one([lost, other], max_attempts=2)
    assert job.state is JobState.COMPLETED
    assert lost.attempts == ["1"] and other.attempts == ["2"]
    # Completed on attempt 2, it keeps attempt 1's failure (what makes it flaky), as the queue does.
    assert job.attempt == 2 and job.error is not None and job.error.category is ErrorCategory.SYSTEM


async def test_the_executor_that_lost_a_run_takes_the_retry_when_it_is_the_only_one() -> None:
    lost = Executor("a:1", loses=True)
    assert (await run_one([lost], max_attempts=3)).state is JobState.FAILED
    assert lost.attempts == ["1", "2", "3"]


async def test_after_every_executor_lost_a_run_the_least_busy_is_chosen_again() -> None:
    a, b = Executor("a:1", loses=True), Executor("b:1", loses=True)
    assert (await run_one([a, b], max_attempts=3)).state is JobState.FAILED
    assert a.attempts == ["1", "3"] and b.attempts == ["2"]
