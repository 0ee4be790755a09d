"""The API's direct execution, put together: executor pool, job table, runner, backend, write-back.

`DirectExecution.open` builds it for SENTINEL_EXECUTION=direct (no queue) or hybrid (with the
queue, where finished direct jobs are written back). `stop` cancels the direct jobs still waiting
or running — their Run calls are cancelled, so each executor closes the job's browser context —
and records them CANCELLED ("the API stopped"); in hybrid mode a last write-back pass records them
in Redis if it answers. Everything else the table held is lost with the process. With an artifact
store, the artifacts of each job the table evicts are deleted (`shared.direct.evictions`); those of
the jobs held at stop are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, replace

from shared.artifact_store import ArtifactStore
from shared.clock import now_ms
from shared.direct.backend import DirectBackend
from shared.direct.evictions import EvictedArtifacts
from shared.direct.runner import DirectRunner
from shared.direct.table import JobTable, cancelled
from shared.direct.writeback import WriteBack
from shared.edge.executors import ExecutorPool
from shared.queue import Queue
from shared.settings import ExecutionSettings, QueueSettings

#: The message of a direct job the API's shutdown cancelled.
API_STOPPED = "Cancelled: the API stopped"


@dataclass
class DirectExecution:
    pool: ExecutorPool
    table: JobTable
    backend: DirectBackend
    writeback: WriteBack | None
    evictions: EvictedArtifacts | None = None

    @classmethod
    def open(
        cls,
        execution: ExecutionSettings,
        queue_settings: QueueSettings,
        queue: Queue | None,
        *,
        store: ArtifactStore | None = None,
    ) -> DirectExecution:
        """Args:
        queue: the queue to write finished direct jobs into (None: direct mode, none).
        store: the artifact store, where an evicted job's artifacts are deleted (None: none is).
        """
        pool = ExecutorPool(execution.executors, execution.executor_client)
        table = JobTable(max_jobs=execution.max_jobs, max_events=queue_settings.progress_maxlen)
        writeback = WriteBack(queue, table) if queue is not None else None
        evictions = EvictedArtifacts(store, writeback=writeback) if store is not None else None
        if evictions is not None:
            table.on_evict = evictions.evicted
        runner = DirectRunner(pool.executors, table, queue_settings)
        backend = DirectBackend(table, runner, queue_settings)
        return cls(pool=pool, table=table, backend=backend, writeback=writeback, evictions=evictions)

    def start(self) -> None:
        if self.writeback is not None:
            self.writeback.start()

    async def stop(self) -> None:
        tasks = []
        for entry in self.table.entries():
            if entry.task is not None and not entry.task.done():
                entry.task.cancel()
                tasks.append(entry.task)
                job = cancelled(entry.job, now_ms())
                self.table.update(entry, replace(job, progress=replace(job.progress, message=API_STOPPED)))
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.table.close()
        if self.writeback is not None:
            await self.writeback.stop()
        if self.evictions is not None:
            await self.evictions.stop()
        await self.pool.close()
