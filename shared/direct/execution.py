"""The API's direct execution, put together: executor pool, job table, runner, backend, write-back.

`DirectExecution.open` builds it for SENTINEL_EXECUTION=direct (no queue) or hybrid (with the
queue, where finished direct jobs are written back). `stop` cancels the direct jobs still waiting
or running — their Run calls are cancelled, so each executor closes the job's browser context —
and records them CANCELLED ("the API stopped"); in hybrid mode a last write-back pass records them
in Redis if it answers. Everything else the table held is lost with the process.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, replace

from shared.clock import now_ms
from shared.direct.backend import DirectBackend
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

    @classmethod
    def open(cls, execution: ExecutionSettings, queue_settings: QueueSettings, queue: Queue | None) -> DirectExecution:
        """Args: queue: the queue to write finished direct jobs into (None: direct mode, none)."""
        pool = ExecutorPool(execution.executors, execution.executor_client)
        table = JobTable(max_jobs=execution.max_jobs, max_events=queue_settings.progress_maxlen)
        writeback = WriteBack(queue, table) if queue is not None else None
        runner = DirectRunner(pool.executors, table, queue_settings)
        return cls(pool=pool, table=table, backend=DirectBackend(table, runner, queue_settings), writeback=writeback)

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
        await self.pool.close()
