"""The executor's side of the queue: claim entries, write progress, finish runs, promote delays.

Every call is one script (see `shared/scripts/*.lua`) so each state change is atomic, and each
carries the run's fence token so a zombie executor's late writes change nothing. With shards
(`shared.shards`) the executor claims, reclaims and promotes on every shard, and each run's calls
go to its job's shard.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from shared import codec
from shared.errors import CancelRequested, LeaseLost
from shared.model import PRIORITY_ORDER, ErrorCategory, Job, JobError, JobResult, JobState, Priority, Progress
from shared.queue import Queue, is_cluster
from shared.schema import JobField
from shared.script_calls import call_each
from shared.shards import each


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
    #: lane key → newest id, when every lane was read to its end (fewer were claimed than asked for,
    #: or none) and the queue's budget is not spent: what to block on for the next entry.
    last_ids: dict[str, str]
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


async def claim(queue: Queue, *, consumer: str, worker_id: str, count: int, start: int = 0) -> ClaimBatch:
    """Claim up to `count` waiting jobs, high lane first, in one round trip per shard looked at.

    Shards are tried in turn from shard `start` (modulo their number; the caller moves it on each
    time, so no shard is always served first) until `count` jobs are claimed. When fewer were
    claimed (every lane of every shard was read to its end), `last_ids` holds the lanes of every
    shard whose start budget is not spent, to block on (`wait_for_entries`) without claiming again
    first, and `wait_ms` the soonest a start held back on any shard is allowed.
    """
    shards = queue.shards
    claims: list[Claim] = []
    last_ids: dict[str, str] = {}
    paused = 0
    waits: list[int] = []
    for turn in range(len(shards)):
        if len(claims) >= count:
            break
        shard = shards[(start + turn) % len(shards)]
        keys = shard.keys
        claimed, last, shard_paused, wait_ms = await shard.scripts.claim(
            keys=[*keys.lanes, keys.paused, keys.events, keys.rate_log()],
            args=[shard.context(count=count - len(claims), consumer=consumer, worker=worker_id)],
        )
        claims += _claims_from(claimed)
        last_ids |= dict(zip(keys.lanes, last, strict=True)) if last else {}
        paused += int(shard_paused)
        waits += [int(wait_ms)] if int(wait_ms) > 0 else []
    return ClaimBatch(
        claims=claims,
        last_ids={} if len(claims) >= count else last_ids,
        paused=paused == len(shards),
        wait_ms=min(waits, default=0),
    )


async def wait_for_entries(queue: Queue, blocking: aioredis.Redis, last_ids: dict[str, str], *, block_ms: int) -> None:
    """Block until a lane in `last_ids` gets an entry newer than its id there, or `block_ms` passes.

    One XREAD over every lane on one Redis. On a cluster one XREAD may only name keys of one slot,
    so each shard's lanes get their own (on the shard's node, through the blocking client's pool);
    the first to return ends the wait and the others are cancelled (their connections are dropped).
    """
    if not is_cluster(blocking):
        streams: dict[Any, Any] = dict(last_ids)
        await blocking.xread(streams, block=block_ms, count=1)
        return
    groups: list[dict[Any, Any]] = [
        {lane: last_ids[lane] for lane in s.keys.lanes if lane in last_ids} for s in queue.shards
    ]
    reads = [asyncio.ensure_future(blocking.xread(g, block=block_ms, count=1)) for g in groups if g]
    if not reads:
        return
    try:
        done, _ = await asyncio.wait(reads, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for read in reads:
            read.cancel()
        for read in reads:
            with contextlib.suppress(asyncio.CancelledError):
                await read
    for read in done:
        if not read.cancelled():  # cancelled by another hand: as good as woken
            read.result()  # a failed read (a node down) raises here, for the caller's backoff


@dataclass(frozen=True)
class Write:
    """One run's write for record.lua: its progress, or its end (`members` has a `state`)."""

    claim: Claim
    members: dict[str, object]


def progress_write(claim_: Claim, progress: Progress) -> Write:
    return Write(claim_, {"fence": claim_.fence, "progress": codec.progress_fields(progress)})


def end_write(
    claim_: Claim,
    *,
    state: JobState,
    progress: Progress,
    result: JobResult | None = None,
    error: JobError | None = None,
    due_ms: int = 0,
    dead_letter_reason: str = "",
    execution_ms: int = 0,
) -> Write:
    return Write(
        claim_,
        {
            "fence": claim_.fence,
            "entry": claim_.entry_id,
            "state": state.value,
            "progress": codec.progress_fields(progress),
            "result": codec.result_to_json(result) if result is not None else "",
            "error": codec.error_to_json(error) if error is not None else "",
            "due": str(due_ms),
            "dead_letter_reason": dead_letter_reason,
            "execution_ms": str(execution_ms),
        },
    )


async def record(queue: Queue, writes: Sequence[Write]) -> list[int]:
    """Make `writes` (all of jobs on one shard) in one script call; returns each one's status.

    Progress: 1, 2 when a cancel was requested, 0 when the run lost its job. An end: 1, or 0 when
    fenced off. Each write checks its own run's fence; the call as a whole is atomic.
    """
    queue = queue.for_job(writes[0].claim.job_id)
    keys = queue.keys
    call_keys = [keys.events, keys.delayed, keys.dlq, keys.completed, keys.failed]
    for w in writes:
        call_keys += [keys.job(w.claim.job_id), keys.stream(w.claim.lane), keys.progress(w.claim.job_id)]
    args = [queue.context(ops=[w.members for w in writes])]
    # Packed in C on one Redis, three keys a write: ~2 µs a write less than redis-py's Python packer.
    (statuses,) = await call_each(queue.redis, queue.scripts.record, [(call_keys, args)])
    return [int(s) for s in statuses]


def check_progress(claim_: Claim, status: int) -> None:
    """Raise LeaseLost or CancelRequested when a progress write's status says the run must stop."""
    if status == 0:
        raise LeaseLost(claim_.job_id)
    if status == 2:
        raise CancelRequested(claim_.job_id)


async def write_progress(queue: Queue, claim_: Claim, progress: Progress) -> None:
    """Record progress of a run; raises LeaseLost or CancelRequested when the run must stop."""
    (status,) = await record(queue, [progress_write(claim_, progress)])
    check_progress(claim_, status)


async def finish(queue: Queue, claim_: Claim, **end: Any) -> bool:
    """End this run in `end["state"]` (or SCHEDULED for a retry) and ack its entry; False if fenced
    off. `end`: the keyword arguments of `end_write` (state, progress, result, error, ...)."""
    (status,) = await record(queue, [end_write(claim_, **end)])
    return bool(status)


async def promote_due(queue: Queue, *, limit: int = 100) -> int:
    """Move due delayed jobs of every shard into their lanes; returns how many moved."""

    async def one(shard: Queue) -> int:
        keys = shard.keys
        moved = await shard.scripts.promote(
            keys=[keys.delayed, *keys.lanes, keys.events], args=[shard.context(limit=limit)]
        )
        return int(moved)

    return sum(await each(queue, one))


def _lane_index(lane: Priority) -> str:
    return str(PRIORITY_ORDER.index(lane) + 1)


async def heartbeat(queue: Queue, *, consumer: str, claims: list[Claim]) -> list[str]:
    """Renew the leases of `claims` (one call per shard they are on); returns the ids of jobs this
    executor no longer holds."""
    by_shard: dict[str, tuple[Queue, list[Claim]]] = {}
    for c in claims:
        shard = queue.for_job(c.job_id)
        by_shard.setdefault(shard.keys.tag, (shard, []))[1].append(c)
    lost: list[str] = []
    for shard, held in by_shard.values():
        keys = shard.keys
        leases = [{"lane": _lane_index(c.lane), "entry": c.entry_id, "job": c.job_id, "fence": c.fence} for c in held]
        lost += await shard.scripts.heartbeat(
            keys=[*keys.lanes, *(keys.job(c.job_id) for c in held)],
            args=[shard.context(leases=leases, consumer=consumer)],
        )
    return [str(job_id) for job_id in lost]


#: How reclaim.lua ends a job whose executor stopped: asked to cancel, or stalled too often
#: (`{count}` stands for how often it stalled).
STOPPED_CANCELLED = "Cancelled (its executor stopped)"
STOPPED_STALLED = "Stalled: its executor stopped heartbeating {count} times"


def _ending(message: str, category: ErrorCategory | None) -> dict[str, str]:
    """A stopped job's progress message and its error, encoded for reclaim.lua."""
    return {"message": message, "error": codec.error_to_json(JobError(category, message))}


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
    """Take over up to `count` entries whose lease ran out (XAUTOCLAIM) on every shard, failing
    chronic stallers."""
    s = queue.settings
    found = Reclaimed(claims=[], deleted=0, stalled=[])
    for shard in queue.shards:
        left = count - len(found.claims)
        if left <= 0:
            break
        keys = shard.keys
        claimed, deleted, stalled = await shard.scripts.reclaim(
            keys=[*keys.lanes, keys.events, keys.dlq, keys.failed, keys.delayed, keys.rate_log()],
            args=[
                shard.context(
                    count=left,
                    consumer=consumer,
                    worker=worker_id,
                    lease_ms=s.lease_ms,
                    max_stalled=s.max_stalled_count,
                    endings={
                        # A cancel asked for is a cancel (no failure category), however its run ended.
                        "cancelled": _ending(STOPPED_CANCELLED, None),
                        "failed": _ending(STOPPED_STALLED, ErrorCategory.SYSTEM),
                    },
                )
            ],
        )
        found = Reclaimed(
            claims=found.claims + _claims_from(claimed),
            deleted=found.deleted + int(deleted),
            stalled=found.stalled + [str(i) for i in stalled],
        )
    return found


async def release(queue: Queue, claim_: Claim, *, reason: str) -> bool:
    """Hand a running job back to its lane now (graceful shutdown); False if it was not ours."""
    queue = queue.for_job(claim_.job_id)
    keys = queue.keys
    done = await queue.scripts.release(
        keys=[keys.job(claim_.job_id), keys.stream(claim_.lane), keys.progress(claim_.job_id), keys.events],
        args=[queue.context(fence=claim_.fence, entry=claim_.entry_id, lane=claim_.lane.value, reason=reason)],
    )
    return bool(int(done))


async def next_due_ms(queue: Queue) -> int | None:
    """When the earliest delayed job becomes due (epoch ms), or None when none waits.

    A run's job held back by its max_parallel waits at +inf (never due on its own): not counted."""

    async def one(shard: Queue) -> int | None:
        first = await shard.redis.zrangebyscore(shard.keys.delayed, "-inf", "(+inf", start=0, num=1, withscores=True)
        return int(first[0][1]) if first else None

    due = [ms for ms in await each(queue, one) if ms is not None]
    return min(due) if due else None
