"""The executor's side of the queue: claim entries, write progress, finish runs, promote delays.

Every call is one script (see `shared/scripts/*.lua`) so each state change is atomic, and each
carries the run's fence token so a zombie executor's late writes change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared import codec
from shared.errors import CancelRequested, LeaseLost
from shared.model import PRIORITY_ORDER, ErrorCategory, Job, JobError, JobResult, JobState, Priority, Progress
from shared.queue import Queue
from shared.schema import JobField


@dataclass(frozen=True)
class Claim:
    """One run of a job this executor now holds."""

    job: Job
    lane: Priority
    entry_id: str
    fence: str
    trace: str

    @property
    def job_id(self) -> str:
        return self.job.job_id


@dataclass(frozen=True)
class ClaimBatch:
    claims: list[Claim]
    last_ids: dict[str, str]  # lane key → newest id, when nothing was claimed (and the queue's budget is not spent)
    paused: bool
    #: ms until a start held back by a rate limit is allowed (0: none is held). With no `last_ids`,
    #: the queue's own limit is spent: nothing starts before then, whatever arrives.
    wait_ms: int = 0

    @property
    def budget_spent(self) -> bool:
        """The queue-wide rate limit allows no start for `wait_ms`: blocking on the lanes would not help."""
        return not self.claims and not self.last_ids and self.wait_ms > 0


def _pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


async def claim(queue: Queue, *, consumer: str, worker_id: str, count: int) -> ClaimBatch:
    """Claim up to `count` waiting jobs, high lane first, in one round trip."""
    keys = queue.keys
    claimed, last, paused, wait_ms = await queue.scripts.claim(
        keys=[*keys.lanes, keys.paused, keys.events],
        args=[queue.context(count=count, consumer=consumer, worker=worker_id)],
    )
    claims = _claims_from(claimed)
    last_ids = dict(zip(keys.lanes, last, strict=True)) if last else {}
    return ClaimBatch(claims=claims, last_ids=last_ids, paused=bool(int(paused)), wait_ms=int(wait_ms))


async def write_progress(queue: Queue, claim_: Claim, progress: Progress) -> None:
    """Record progress of a run; raises LeaseLost or CancelRequested when the run must stop."""
    keys = queue.keys
    status = int(
        await queue.scripts.progress(
            keys=[keys.job(claim_.job_id), keys.progress(claim_.job_id), keys.events],
            args=[queue.context(fence=claim_.fence, progress=codec.progress_fields(progress))],
        )
    )
    if status == 0:
        raise LeaseLost(claim_.job_id)
    if status == 2:
        raise CancelRequested(claim_.job_id)


async def finish(
    queue: Queue,
    claim_: Claim,
    *,
    state: JobState,
    progress: Progress,
    result: JobResult | None = None,
    error: JobError | None = None,
    due_ms: int = 0,
    dead_letter_reason: str = "",
    execution_ms: int = 0,
) -> bool:
    """End this run in `state` (or SCHEDULED for a retry) and ack its entry; False if fenced off."""
    keys = queue.keys
    retention = keys.completed if state is JobState.COMPLETED else keys.failed
    done = await queue.scripts.finish(
        keys=[
            keys.job(claim_.job_id),
            keys.stream(claim_.lane),
            keys.progress(claim_.job_id),
            keys.events,
            retention,
            keys.delayed,
            keys.dlq,
        ],
        args=[
            queue.context(
                fence=claim_.fence,
                entry=claim_.entry_id,
                state=state.value,
                progress=codec.progress_fields(progress),
                result=codec.result_to_json(result) if result is not None else "",
                error=codec.error_to_json(error) if error is not None else "",
                due=due_ms,
                dead_letter_reason=dead_letter_reason,
                execution_ms=execution_ms,
            )
        ],
    )
    return bool(int(done))


async def promote_due(queue: Queue, *, limit: int = 100) -> int:
    """Move due delayed jobs into their lanes; returns how many moved."""
    keys = queue.keys
    moved = await queue.scripts.promote(
        keys=[keys.delayed, *keys.lanes, keys.events], args=[queue.context(limit=limit)]
    )
    return int(moved)


def _lane_index(lane: Priority) -> str:
    return str(PRIORITY_ORDER.index(lane) + 1)


async def heartbeat(queue: Queue, *, consumer: str, claims: list[Claim]) -> list[str]:
    """Renew the leases of `claims`; returns the ids of jobs this executor no longer holds."""
    if not claims:
        return []
    keys = queue.keys
    leases = [{"lane": _lane_index(c.lane), "entry": c.entry_id, "job": c.job_id, "fence": c.fence} for c in claims]
    lost = await queue.scripts.heartbeat(
        keys=[*keys.lanes, *(keys.job(c.job_id) for c in claims)],
        args=[queue.context(leases=leases, consumer=consumer)],
    )
    return [str(job_id) for job_id in lost]


#: How reclaim.lua ends a job whose executor stopped: asked to cancel, or stalled too often
#: (`{count}` stands for how often it stalled).
STOPPED_CANCELLED = "Cancelled (its executor stopped)"
STOPPED_STALLED = "Stalled: its executor stopped heartbeating {count} times"


def _ending(message: str) -> dict[str, str]:
    """A stopped job's progress message and its error, encoded for reclaim.lua."""
    return {"message": message, "error": codec.error_to_json(JobError(ErrorCategory.SYSTEM, message))}


@dataclass(frozen=True)
class Reclaimed:
    claims: list[Claim]
    deleted: int  # pending ids whose stream entries no longer existed
    stalled: list[str]  # jobs failed (and dead-lettered) for stalling too often


def _claims_from(rows: list[list[object]]) -> list[Claim]:
    claims = []
    for lane_index, entry_id, flat in rows:
        raw = _pairs(flat)  # type: ignore[arg-type]
        claims.append(
            Claim(
                job=codec.job_from_hash(raw),
                lane=PRIORITY_ORDER[int(str(lane_index)) - 1],
                entry_id=str(entry_id),
                fence=raw[JobField.FENCE],
                trace=raw.get(JobField.TRACE, ""),
            )
        )
    return claims


async def reclaim(queue: Queue, *, consumer: str, worker_id: str, count: int) -> Reclaimed:
    """Take over up to `count` entries whose lease ran out (XAUTOCLAIM), failing chronic stallers."""
    keys = queue.keys
    s = queue.settings
    claimed, deleted, stalled = await queue.scripts.reclaim(
        keys=[*keys.lanes, keys.events, keys.dlq, keys.failed],
        args=[
            queue.context(
                count=count,
                consumer=consumer,
                worker=worker_id,
                lease_ms=s.lease_ms,
                max_stalled=s.max_stalled_count,
                endings={"cancelled": _ending(STOPPED_CANCELLED), "failed": _ending(STOPPED_STALLED)},
            )
        ],
    )
    return Reclaimed(claims=_claims_from(claimed), deleted=int(deleted), stalled=[str(i) for i in stalled])


async def release(queue: Queue, claim_: Claim, *, reason: str) -> bool:
    """Hand a running job back to its lane now (graceful shutdown); False if it was not ours."""
    keys = queue.keys
    done = await queue.scripts.release(
        keys=[keys.job(claim_.job_id), keys.stream(claim_.lane), keys.progress(claim_.job_id), keys.events],
        args=[queue.context(fence=claim_.fence, entry=claim_.entry_id, lane=claim_.lane.value, reason=reason)],
    )
    return bool(int(done))


async def next_due_ms(queue: Queue) -> int | None:
    """When the earliest delayed job becomes due (epoch ms), or None when none waits.

    A run's job held back by its max_parallel waits at +inf (never due on its own): not counted."""
    first = await queue.redis.zrangebyscore(queue.keys.delayed, "-inf", "(+inf", start=0, num=1, withscores=True)
    return int(first[0][1]) if first else None
