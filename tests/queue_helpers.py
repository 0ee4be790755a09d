"""Playing producer and executor against a real redis-server, without a browser.

Jobs are submitted with `shared.jobs` and run to an end with `executor_service.store` (claim,
finish), as the API and an executor would; tests of stats, retention, events and metrics use it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import cast

from shared import jobs
from shared.clock import now_ms
from shared.keys import GROUP
from shared.model import (
    PRIORITY_ORDER,
    JobError,
    JobOptions,
    JobResult,
    JobSource,
    JobState,
    Navigate,
    Priority,
    Progress,
    Step,
    SubmitCommand,
    TestDefinition,
)
from shared.queue import Queue

TENANT = "default"


def command(
    *,
    name: str = "t",
    priority: Priority = Priority.MEDIUM,
    tags: tuple[str, ...] = (),
    idempotency_key: str = "",
    delay_ms: int = 0,
    schedule_id: str = "",
) -> SubmitCommand:
    """A one-step submit; `schedule_id`: as the scheduler's fire of that schedule submits it."""
    definition = TestDefinition(name=name, steps=(Step(Navigate(url="http://example.test/")),))
    options = JobOptions(priority=priority, tags=tags, idempotency_key=idempotency_key, delay_ms=delay_ms)
    source = JobSource.SCHEDULER if schedule_id else JobSource.API
    return SubmitCommand(definition=definition, options=options, source=source, schedule_id=schedule_id)


async def submit_jobs(queue: Queue, n: int, *, tenant: str = TENANT, **kwargs: object) -> list[str]:
    made = await jobs.submit_many(queue, [command(**kwargs) for _ in range(n)], tenant=tenant)  # type: ignore[arg-type]
    return [m.job_id for m in made]


async def run_jobs(
    queue: Queue,
    n: int,
    *,
    state: JobState = JobState.COMPLETED,
    execution_ms: int = 10,
    worker: str = "fake-1",
    dead_letter_reason: str = "",
    error: JobError | None = None,
) -> list[str]:
    """Claim up to `n` waiting jobs and end each in `state` at once (with `error`, if given); returns their ids."""
    from executor_service.store import claim, finish

    batch = await claim(queue, consumer=worker, worker_id=worker, count=n)
    for c in batch.claims:
        now = now_ms()
        result = JobResult(
            success=state is JobState.COMPLETED, execution_time_ms=execution_ms, completed_at_ms=now, error=error
        )
        done = await finish(
            queue,
            c,
            state=state,
            progress=Progress(percentage=100, total_steps=1, current_step=1, message=state.value, updated_at_ms=now),
            result=result,
            execution_ms=execution_ms,
            dead_letter_reason=dead_letter_reason,
            error=error,
        )
        assert done
    return [c.job_id for c in batch.claims]


def most_in_any_window(stamps: Iterable[int], duration_ms: int) -> int:
    """The most stamps (ms) any half-open window [t, t + duration_ms) holds, wherever it begins."""
    ordered = sorted(stamps)
    most = first = 0
    for last, stamp in enumerate(ordered):
        while stamp - ordered[first] >= duration_ms:
            first += 1
        most = max(most, last - first + 1)
    return most


async def waiting_places(queue: Queue, tenants: Iterable[str]) -> Counter[str]:
    """How many places each job waits in: lane entries not yet delivered, and places in the backlogs
    of `tenants` (fair share)."""
    places: Counter[str] = Counter()
    tenants = tuple(tenants)
    for priority in PRIORITY_ORDER:
        stream = queue.keys.stream(priority)
        groups = await queue.redis.xinfo_groups(stream)
        last = next(g["last-delivered-id"] for g in groups if g["name"] == GROUP)
        entries = cast(list[tuple[str, dict[str, str]]], await queue.redis.xrange(stream, min=f"({last}", max="+"))
        places.update(fields["job"] for _, fields in entries)
        for tenant in tenants:
            places.update(cast(list[str], await queue.redis.lrange(queue.keys.backlog(priority, tenant), 0, -1)))
    return places
