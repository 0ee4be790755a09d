"""The jobs an executor runs now, whichever way they came, under one concurrency limit.

`Runs` starts a run as a task, keeps it in `in_flight` until it ends and frees its slot; claimed
runs (the queue's `Worker`, a subclass) and direct ones (a Run call, executor_service/direct.py)
share the same slots, the same `JobObserver` and the same drain. It never talks to Redis itself:
a run's ledger does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from executor_service.browser import BrowserManager
from executor_service.job import JobEnv, RunState, run_job
from executor_service.observe import JobObserver
from shared.artifact_store import ArtifactStore
from shared.model import JobState
from shared.settings import ExecutorSettings, QueueSettings

log = logging.getLogger(__name__)


class Runs:
    def __init__(
        self,
        browser: BrowserManager,
        *,
        settings: ExecutorSettings,
        queue_settings: QueueSettings,
        worker_id: str,
        concurrency: int,
        secret_key: str = "",
        store: ArtifactStore | None = None,
    ) -> None:
        self.browser = browser
        self.settings = settings
        self.worker_id = worker_id
        self.concurrency = concurrency
        self.in_flight: dict[str, tuple[asyncio.Task[JobState | None], RunState]] = {}
        self.jobs_processed = 0
        self.started_at = time.monotonic()
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._env = JobEnv(
            queue_settings=queue_settings,
            browser=browser,
            settings=settings,
            worker_id=worker_id,
            secret_key=secret_key,
            store=store,
        )
        #: Metrics, the job span and log context around each run (the server installs a full one).
        self.observer = JobObserver()

    @property
    def draining(self) -> bool:
        return self._stopping.is_set()

    @property
    def free(self) -> int:
        """Slots left for more runs."""
        return self.concurrency - len(self.in_flight)

    async def start(self) -> None:
        await self.browser.start()

    def launch(self, state: RunState) -> asyncio.Task[JobState | None]:
        """Start running `state`'s job; it holds a slot until its task is done, however it ends
        (a task cancelled before it began never runs a line of `_run`)."""
        job_id = state.claim.job_id
        task = asyncio.create_task(self._run(state), name=f"job-{job_id}")
        self.in_flight[job_id] = (task, state)
        task.add_done_callback(lambda done: self._ended(job_id, done))
        return task

    def _ended(self, job_id: str, task: asyncio.Task[JobState | None]) -> None:
        if self.in_flight.get(job_id, (None,))[0] is task:
            del self.in_flight[job_id]
        self._slot_freed.set()

    def cancel(self, task: asyncio.Task[JobState | None], state: RunState) -> None:
        """Stop a run whose cancel was requested: its task at once if it has begun, else the run
        ends cancelled as it begins (a task cancelled before it began would record no end)."""
        state.cancel_requested = True
        if state.begun:
            task.cancel()

    async def _run(self, state: RunState) -> JobState | None:
        state.begun = True
        try:
            with self.observer.run(state.claim) as observed:
                ended = observed.ended = await run_job(self._env, state)
            self.jobs_processed += 1
            return ended
        except asyncio.CancelledError:
            if self.draining:
                await asyncio.shield(
                    state.ledger.hand_back(state.claim, f"Handed back: executor {self.worker_id} stopped")
                )
            raise
        except Exception:
            log.exception("job %s: unexpected error while recording its end", state.claim.job_id)
            return None

    async def drain(self, grace_s: float) -> None:
        """Start nothing more; give in-flight jobs `grace_s` to finish, then hand the rest back."""
        self._stopping.set()
        self._slot_freed.set()
        await self._finish_in_flight(grace_s)

    async def _finish_in_flight(self, grace_s: float) -> None:
        running: list[asyncio.Task[JobState | None]] = [t for t, _ in self.in_flight.values()]
        if running:
            log.info("waiting up to %.1f s for %d in-flight job(s)", grace_s, len(running))
            _, pending = await asyncio.wait(running, timeout=grace_s)
            for job_task in pending:
                job_task.cancel()
            for job_task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await job_task

    async def stop(self, grace_s: float = 0.0) -> None:
        await self.drain(grace_s)
        await self.browser.stop()
