"""Deleting the artifacts of the direct jobs the API's table evicts, in the background.

A direct job's record is the API's memory (`JobTable`) alone, so once the table evicts it (the
oldest finished job, to make room for a new one) nothing can list or serve its artifacts any more:
`EvictedArtifacts` deletes them from the store (`<job id>/…`). The delete runs as a task of its own,
never on the submit that caused the eviction; a store that fails is logged and the API goes on (in
hybrid mode the orphan sweep deletes what is left; in direct mode nothing else will).

In hybrid mode a job written back into Redis is Redis's from then on: retention removes it and
deletes its artifacts (`shared.retention`), so its eviction from memory deletes nothing here. A
write-back pass that may be writing the job is waited for before deciding (`WriteBack.in_redis`),
so each job's artifacts are deleted once, by whichever owns the job then. When Redis cannot tell
(a pass carried the job and broke, and Redis does not answer now) the files stay: the orphan sweep
deletes them later if Redis turns out not to hold the job. Nothing is deleted when the API stops:
only an eviction makes a job unreachable on purpose.
"""

from __future__ import annotations

import asyncio
import logging

from shared.artifact_store import ArtifactStore
from shared.direct.table import DirectJob
from shared.direct.writeback import WriteBack
from shared.redis_errors import REDIS_OR_OS_ERRORS

log = logging.getLogger(__name__)

#: Evicted jobs whose artifacts are deleted at the same time; the others wait their turn.
DELETE_CONCURRENCY = 8
#: How long `stop` lets deletes in flight finish before it cancels them.
STOP_TIMEOUT_S = 5.0


class EvictedArtifacts:
    """The table's `on_evict`: deletes each evicted job's artifacts unless Redis owns the job."""

    def __init__(self, store: ArtifactStore, *, writeback: WriteBack | None = None) -> None:
        """Args:
        store: where the executors keep the jobs' artifacts.
        writeback: hybrid mode's write-back (None in direct mode: no job is ever Redis's).
        """
        self._store = store
        self._writeback = writeback
        self._limit = asyncio.Semaphore(DELETE_CONCURRENCY)
        self._tasks: set[asyncio.Task[None]] = set()

    def evicted(self, entry: DirectJob) -> None:
        """Delete the job's artifacts in the background (called by the table; never blocks)."""
        task = asyncio.get_running_loop().create_task(self._delete(entry), name=f"delete-artifacts-{entry.job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _delete(self, entry: DirectJob) -> None:
        job_id = entry.job_id
        if self._writeback is not None:
            try:
                if await self._writeback.in_redis(entry):
                    return  # Redis's retention deletes them with the job
            except REDIS_OR_OS_ERRORS as exc:
                log.info(
                    "kept the artifacts of evicted direct job %s: Redis cannot tell whether it holds the job (%s);"
                    " the orphan sweep deletes them if it does not",
                    job_id,
                    exc,
                )
                return
        async with self._limit:
            try:
                deleted = await self._store.delete_prefix(job_id)
            except Exception as exc:  # the store's trouble must never reach the API's submits
                log.warning(
                    "could not delete the artifacts of evicted direct job %s from %s: %s",
                    job_id,
                    self._store.location,
                    exc,
                )
                return
        if deleted:
            log.debug("deleted %d artifact(s) of evicted direct job %s", deleted, job_id)

    async def stop(self, *, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Let the deletes in flight finish (cancelling those still running after `timeout_s`)."""
        if not self._tasks:
            return
        tasks = set(self._tasks)
        _, late = await asyncio.wait(tasks, timeout=timeout_s)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)
            log.warning("the API stopped before deleting the artifacts of %d evicted direct job(s)", len(late))
