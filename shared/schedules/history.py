"""A schedule's history that outlives its jobs: how each job it fired ended, kept with the schedule.

Retention removes finished jobs by count across the whole queue (`QUEUE_REMOVE_ON_COMPLETE`/`_FAIL`),
so a check that fires every minute loses its jobs within minutes; its latest runs should still say
how each ended, and why a failed one failed. When a scheduled job ends, the events-stream reader
that judges ends for alerts (`shared.alerts.outcomes.apply_entry`) records it here: its final
state, its error's first line and when, in a hash beside the schedule's runs list
(schedule_end.lua), pruned to the jobs that list still names and gone with the schedule (a job
ending after its schedule was deleted is not recorded).
`shared.schedules.store.get_schedule` reads it for the runs whose job is gone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shared import codec
from shared.model import Job, JobState
from shared.queue import Queue
from shared.schedules.model import RECENT_RUNS

__all__ = ["Ended", "ended_from_json", "record_end"]


@dataclass(frozen=True)
class Ended:
    """How a schedule's job ended."""

    state: JobState
    error: str = ""  # the first line of its error ("" for a pass)
    at_ms: int = 0


async def record_end(queue: Queue, job: Job) -> None:
    """Keep how `job` ended in its schedule's history (nothing for a job no schedule fired)."""
    schedule_id = job.metadata.schedule_id
    if not schedule_id or not job.state.terminal:
        return
    error = job.failure
    line = error.headline if error is not None else ""
    ended = codec.dumps({"state": job.state.value, "error": line, "at": job.finished_at_ms})
    shard = queue.for_job(schedule_id)
    keys = shard.keys
    context = shard.context(job=job.job_id, ended=ended, runs_max=RECENT_RUNS)
    await shard.scripts.schedule_end(
        keys=[keys.schedule_ends(schedule_id), keys.schedule_runs(schedule_id), keys.schedule(schedule_id)],
        args=[context],
    )


def ended_from_json(raw: str | None) -> Ended | None:
    """An end as `record_end` keeps it; None for none, or one this version cannot read."""
    if not raw:
        return None
    try:
        data: dict[str, Any] = json.loads(raw)
        return Ended(state=JobState(data["state"]), error=str(data.get("error", "")), at_ms=int(data.get("at", 0)))
    except (ValueError, KeyError, TypeError):
        return None
