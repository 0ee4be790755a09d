"""Where a run records its progress and its end: the queue's Redis, or the Run call that started it.

`run_job` (executor_service/job.py) runs every job the same way — the runner, the evidence, the
guard, the job timeout, retry decisions — and only tells its ledger what happened. A claimed run's
`QueueLedger` writes to Redis under the run's fence; a direct run's ledger (executor_service/direct.py)
hands each update to the Run call. Nothing here runs a step or touches the browser.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from executor_service.observe import log_fields
from executor_service.recorder import Recorder
from executor_service.store import Claim, check_progress, end_write, progress_write, release
from shared.errors import CancelRequested, LeaseLost
from shared.failures import Failures
from shared.model import Progress, RunEnd
from shared.queue import Queue
from shared.redis_errors import REDIS_ERRORS, REDIS_UNREACHABLE

log = logging.getLogger(__name__)


class Ledger(Protocol):
    async def progress(self, claim: Claim, progress: Progress) -> None:
        """Record the run's progress; raises LeaseLost or CancelRequested when the run must stop."""

    def progress_soon(self, claim: Claim, progress: Progress) -> asyncio.Future[None]:
        """Hand the run's progress over now, to be recorded before whatever the run hands over
        after it (its later reports, its end); the future, once the report is recorded, raises as
        `progress` does."""

    async def finish(self, claim: Claim, end: RunEnd) -> bool:
        """Record the run's end; False when it is no longer this run's to record (a stale fence)."""

    async def hand_back(self, claim: Claim, reason: str) -> None:
        """The executor stops before the run ended: let the job start again elsewhere."""


def _check(claim: Claim, written: asyncio.Future[int], checked: asyncio.Future[None]) -> None:
    """`checked` as the status of the progress write `written` says: done, or the reason to stop."""
    if written.cancelled():
        return
    error = written.exception()  # read even when nobody waits, or asyncio logs it as never retrieved
    if checked.done():  # the run stopped waiting: nobody reads it
        return
    if error is not None and not isinstance(error, REDIS_ERRORS):
        checked.set_exception(error)
        return
    if error is not None:
        # Progress is best effort: a Redis outage must not fail the test that is running.
        log.warning("job %s: progress not recorded (%s)", claim.job_id, error)
        checked.set_result(None)
        return
    try:
        check_progress(claim, written.result())
    except (LeaseLost, CancelRequested) as stop:
        checked.set_exception(stop)
    else:
        checked.set_result(None)


#: The shortest time (s) an end Redis answers with errors is tried for (a lease, if longer).
MIN_END_WINDOW_S = 5.0


class QueueLedger:
    """Claimed runs' ledger: every write carries its run's fence; the writes runs make in the same
    loop turn share one script call (`Recorder`). One ledger serves all of an executor's runs."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self._recorder = Recorder(queue)

    async def progress(self, claim: Claim, progress: Progress) -> None:
        await self.progress_soon(claim, progress)

    def progress_soon(self, claim: Claim, progress: Progress) -> asyncio.Future[None]:
        checked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        written = self._recorder.submit(progress_write(claim, progress))
        written.add_done_callback(lambda w: _check(claim, w, checked))
        return checked

    async def finish(self, claim: Claim, end: RunEnd) -> bool:
        """Record the end of a run, retrying through a Redis outage for as long as it lasts.

        While Redis does not answer, the run's lease cannot run out: no executor takes a run over
        while the shard is away, nor for a lease after it answers (`worker.Outage`, reclaim.lua), and
        the run stays in flight, so its heartbeats renew the lease as soon as Redis is back. If only
        this executor could not reach Redis (a partition), the others take the run over after its
        lease, and the fence refuses this end once it gets through: False, as for a stale fence.
        Redis answering with an error is retried for up to a lease, then given up (False).
        """
        loop = asyncio.get_running_loop()
        window = max(self.queue.settings.lease_ms / 1000, MIN_END_WINDOW_S)
        give_up = loop.time() + window
        failures = Failures(log, f"job {claim.job_id}: recording its end")
        write = end_write(
            claim,
            state=end.state,
            progress=end.progress,
            result=end.result,
            error=end.error,
            due_ms=end.due_ms,
            dead_letter_reason=end.dead_letter_reason,
            execution_ms=end.execution_ms,
        )
        delay = 0.1
        while True:
            try:
                recorded = await self._recorder.write(write)
                failures.worked()
                if recorded:
                    return True
                log.warning(
                    "job %s: its end was refused (stale fence): another executor took the run over", claim.job_id
                )
                return False
            except REDIS_ERRORS as exc:
                if isinstance(exc, REDIS_UNREACHABLE):
                    give_up = loop.time() + window  # a lease counts only while Redis answers
                if loop.time() > give_up:
                    # What the lease is for, not a fault of this executor: no traceback.
                    log.warning(
                        "job %s: could not record its end within its lease (%s); it will be run again",
                        claim.job_id,
                        exc,
                        extra=log_fields(claim),
                    )
                    return False
                failures.failed(exc, again_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def hand_back(self, claim: Claim, reason: str) -> None:
        """Give the unfinished job back to its lane so another executor starts it now."""
        try:
            if await release(self.queue, claim, reason=reason):
                log.info("job %s handed back for another executor", claim.job_id, extra=log_fields(claim))
        except REDIS_ERRORS as exc:
            log.warning(
                "job %s: could not hand back (%s); it will be reclaimed after its lease",
                claim.job_id,
                exc,
                extra=log_fields(claim),
            )
