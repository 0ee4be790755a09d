"""A direct run: a job handed to this executor by a Run call instead of claimed from the queue.

The run goes through the same `Runs.launch` → `run_job` path as a claimed one (same slots, runner,
guard, evidence, job timeout and retry decision); only its ledger differs: `StreamLedger` hands each
progress report and the end to the call, which streams them back. The caller owns the job's record:
nothing here needs Redis. When the call is cancelled (the caller cancelled the job, or went away),
the run is cancelled and its browser context closed before the call ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import replace

from executor_service.job import RunState
from executor_service.runs import Runs
from executor_service.store import Claim
from shared.clock import now_ms
from shared.errors import LimitError, ShuttingDown
from shared.model import Job, JobState, Progress, RunEnd

log = logging.getLogger(__name__)

Update = Progress | RunEnd


class StreamLedger:
    """A direct run's ledger: progress and the end go to the Run call, in order."""

    def __init__(self) -> None:
        self.updates: asyncio.Queue[Update] = asyncio.Queue()

    async def progress(self, claim: Claim, progress: Progress) -> None:
        await self.progress_soon(claim, progress)

    def progress_soon(self, claim: Claim, progress: Progress) -> asyncio.Future[None]:
        self.updates.put_nowait(progress)
        handed_over: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        handed_over.set_result(None)  # nothing to wait for: the update is in the call's queue
        return handed_over

    async def finish(self, claim: Claim, end: RunEnd) -> bool:
        self.updates.put_nowait(end)
        return True

    async def hand_back(self, claim: Claim, reason: str) -> None:
        # The call ends without an end: its caller runs the job on another executor.
        log.info("job %s: direct run stopped (%s)", claim.job_id, reason)


async def run_direct(runs: Runs, job: Job, *, trace: str = "") -> AsyncIterator[Update]:
    """Run `job` now on this executor, yielding its progress reports, then its end.

    Raises:
        LimitError: every slot is taken (the caller tries another executor).
        ShuttingDown: the executor is draining.
    """
    if runs.draining:
        raise ShuttingDown("this executor is draining; run the job on another")
    if runs.free <= 0:
        raise LimitError(f"executor {runs.worker_id} is running its maximum of {runs.concurrency} jobs")
    if job.job_id in runs.in_flight:  # an earlier run of it still tidying up here
        raise LimitError(f"executor {runs.worker_id} is still ending a run of job {job.job_id}")
    ledger = StreamLedger()
    # No lane entry and no fence: the entry id only dates the hand-over (the job's wait is 0).
    claim = Claim(
        job=replace(job, state=JobState.RUNNING),
        lane=job.priority,
        entry_id=f"{now_ms()}-0",
        fence="",
        trace=trace,
    )
    state = RunState(claim=claim, ledger=ledger)
    task = runs.launch(state)
    ended = False
    getter: asyncio.Future[Update] | None = None
    try:
        while True:
            getter = asyncio.ensure_future(ledger.updates.get())
            done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                if ledger.updates.empty():  # the run ended without an end: handed back or lost
                    raise ShuttingDown(f"job {job.job_id}: the run stopped before it ended")
                continue
            update = getter.result()
            yield update
            if isinstance(update, RunEnd):
                ended = True  # the run is recorded; it only tidies up now (evidence, its slot)
                return
    finally:
        if getter is not None:
            getter.cancel()
        if not ended and not task.done():
            runs.cancel(task, state)
            log.info("job %s: direct run cancelled by its caller, closing its browser context", job.job_id)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.shield(task)
