"""The executor's side of the queue: claim entries, write progress, finish runs, promote delays.

Every call is one script (see `shared/scripts/*.lua`) so each state change is atomic, and each
carries the run's fence token so a zombie executor's late writes change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared import codec
from shared.clock import now_ms
from shared.errors import CancelRequested, LeaseLost
from shared.keys import GROUP
from shared.model import PRIORITY_ORDER, Job, JobState, Priority, Progress
from shared.queue import Queue


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
    last_ids: dict[str, str]  # lane key → newest id, when nothing was claimed
    paused: bool


def _pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _claim_args(queue: Queue, *, consumer: str, worker_id: str, count: int) -> list[str]:
    """ARGV[1..10] that claim.lua and reclaim.lua share."""
    keys = queue.keys
    s = queue.settings
    return [
        GROUP,
        consumer,
        str(count),
        str(now_ms()),
        worker_id,
        keys.job(""),
        keys.progress(""),
        str(s.progress_maxlen),
        str(s.events_maxlen),
        keys.stats_prefix,
    ]


async def claim(queue: Queue, *, consumer: str, worker_id: str, count: int) -> ClaimBatch:
    """Claim up to `count` waiting jobs, high lane first, in one round trip."""
    keys = queue.keys
    claimed, last, paused = await queue.scripts.claim(
        keys=[*keys.lanes, keys.paused, keys.events],
        args=[
            *_claim_args(queue, consumer=consumer, worker_id=worker_id, count=count),
            *queue.fair_args(),
        ],
    )
    claims = _claims_from(claimed)
    last_ids = dict(zip(keys.lanes, last, strict=True)) if last else {}
    return ClaimBatch(claims=claims, last_ids=last_ids, paused=bool(int(paused)))


async def write_progress(queue: Queue, claim_: Claim, progress: Progress) -> None:
    """Record progress of a run; raises LeaseLost or CancelRequested when the run must stop."""
    keys = queue.keys
    fields = codec.progress_fields(progress)
    args = [claim_.fence, str(queue.settings.progress_maxlen), str(queue.settings.events_maxlen)]
    args.append(str(claim_.job.attempt))
    for name, value in fields.items():
        args += [name, value]
    status = int(
        await queue.scripts.progress(
            keys=[keys.job(claim_.job_id), keys.progress(claim_.job_id), keys.events], args=args
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
    result_json: str = "",
    error_json: str = "",
    due_ms: int = 0,
    dead_letter_reason: str = "",
    execution_ms: int = 0,
) -> bool:
    """End this run in `state` (or SCHEDULED for a retry) and ack its entry; False if fenced off."""
    keys = queue.keys
    s = queue.settings
    retention = keys.completed if state is JobState.COMPLETED else keys.failed
    args = [
        claim_.fence,
        claim_.entry_id,
        GROUP,
        state.value,
        result_json,
        error_json,
        str(now_ms()),
        str(due_ms),
        dead_letter_reason,
        str(s.progress_maxlen),
        str(s.events_maxlen),
        str(execution_ms),
        keys.stats_prefix,
    ]
    for name, value in codec.progress_fields(progress).items():
        args += [name, value]
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
        args=args,
    )
    return bool(int(done))


async def promote_due(queue: Queue, *, limit: int = 100) -> int:
    """Move due delayed jobs into their lanes; returns how many moved."""
    keys = queue.keys
    s = queue.settings
    moved = await queue.scripts.promote(
        keys=[keys.delayed, *keys.lanes, keys.events],
        args=[
            str(now_ms()),
            str(limit),
            keys.job(""),
            keys.progress(""),
            str(s.progress_maxlen),
            str(s.events_maxlen),
            keys.stats_prefix,
            *queue.fair_args(),
        ],
    )
    return int(moved)


def _lane_index(lane: Priority) -> str:
    return str(PRIORITY_ORDER.index(lane) + 1)


async def heartbeat(queue: Queue, *, consumer: str, claims: list[Claim]) -> list[str]:
    """Renew the leases of `claims`; returns the ids of jobs this executor no longer holds."""
    if not claims:
        return []
    args = [GROUP, consumer, queue.keys.job("")]
    for c in claims:
        args += [_lane_index(c.lane), c.entry_id, c.job_id, c.fence]
    lost = await queue.scripts.heartbeat(keys=list(queue.keys.lanes), args=args)
    return [str(job_id) for job_id in lost]


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
                fence=raw["fence"],
                trace=raw.get("trace", ""),
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
            *_claim_args(queue, consumer=consumer, worker_id=worker_id, count=count),
            str(s.lease_ms),
            str(s.max_stalled_count),
        ],
    )
    return Reclaimed(claims=_claims_from(claimed), deleted=int(deleted), stalled=[str(i) for i in stalled])


async def release(queue: Queue, claim_: Claim, *, reason: str) -> bool:
    """Hand a running job back to its lane now (graceful shutdown); False if it was not ours."""
    keys = queue.keys
    s = queue.settings
    done = await queue.scripts.release(
        keys=[keys.job(claim_.job_id), keys.stream(claim_.lane), keys.progress(claim_.job_id), keys.events],
        args=[
            claim_.fence,
            claim_.entry_id,
            GROUP,
            str(now_ms()),
            str(s.progress_maxlen),
            str(s.events_maxlen),
            reason,
            keys.stats_prefix,
            claim_.lane.value,
            *queue.fair_args(),
        ],
    )
    return bool(int(done))


async def next_due_ms(queue: Queue) -> int | None:
    """When the earliest delayed job becomes due (epoch ms), or None when none waits."""
    first = await queue.redis.zrange(queue.keys.delayed, 0, 0, withscores=True)
    return int(first[0][1]) if first else None
