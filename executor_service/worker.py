"""The executor's worker: claims jobs, runs up to `concurrency` at once, listens for cancels.

Lifecycle (like saq's Worker.start/stop): `start()` launches the claim loop, the promoter of
delayed jobs and the control listener; `drain()` stops claiming and waits for in-flight jobs.
Running them is `Runs`'s (executor_service/runs.py), whose slots direct Run calls share.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from executor_service.browser import BrowserManager
from executor_service.job import RunState
from executor_service.ledger import QueueLedger
from executor_service.observe import log_fields
from executor_service.runs import Runs
from executor_service.store import (
    Claim,
    claim,
    heartbeat,
    next_due_ms,
    promote_due,
    reclaim,
    wait_for_entries,
)
from shared.artifact_store import ArtifactStore
from shared.clock import now_ms
from shared.failures import Failures
from shared.queue import Queue
from shared.redis_errors import REDIS_ERRORS, REDIS_UNREACHABLE
from shared.settings import ExecutorSettings
from shared.tasks import stop_tasks, watched

log = logging.getLogger(__name__)

#: Seconds between heartbeats while they fail (a lease's third otherwise).
HEARTBEAT_RETRY_S = 0.5


class Outage:
    """Whether this executor may take over runs on a shard: not while it cannot reach the shard,
    nor for a lease after it answers again, nor in its own first lease.

    A lease counts only while its holder can renew it: after an outage every lease looks run out,
    though the runs went on and their holders are about to renew them (or record their ends). An
    executor that started meanwhile (a restart, a scale-up on the backlog the outage left) knows
    nothing of it, so it waits a lease too. Redis itself refuses take-overs for a lease after it
    (re)starts (reclaim.lua); this covers an outage of the network between. Only a shard that did
    not answer counts (`REDIS_UNREACHABLE`), never one that refused a command, and each shard on its
    own: a shard that stays away holds up no other shard's take-overs.
    """

    def __init__(self, lease_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._lease_s = lease_s
        self._clock = clock
        self._started = clock()
        self._down: set[str] = set()
        self._back_at: dict[str, float] = {}

    def failed(self, shard: str) -> None:
        self._down.add(shard)

    def down(self, shard: str) -> bool:
        return shard in self._down

    def answered(self, shard: str) -> None:
        if shard in self._down:
            self._down.discard(shard)
            self._back_at[shard] = self._clock()

    def settled(self, shard: str) -> bool:
        since = max(self._back_at.get(shard, -math.inf), self._started)
        return shard not in self._down and self._clock() >= since + self._lease_s


class Worker(Runs):
    def __init__(
        self,
        queue: Queue,
        browser: BrowserManager,
        *,
        settings: ExecutorSettings,
        blocking: aioredis.Redis,
        worker_id: str,
        concurrency: int,
        secret_key: str = "",
        store: ArtifactStore | None = None,
        block_ms: int = 2000,
        promote_interval_s: float = 0.5,
        gate: asyncio.Event | None = None,
    ) -> None:
        """`gate`: claiming (and promoting and reclaiming) waits until it is set: Redis's eviction
        policy read and found acceptable (`shared.redis_policy.EvictionWatch.checked`)."""
        super().__init__(
            browser,
            settings=settings,
            queue_settings=queue.settings,
            worker_id=worker_id,
            concurrency=concurrency,
            secret_key=secret_key,
            store=store,
        )
        self.queue = queue
        self._ledger = QueueLedger(queue)
        self._blocking = blocking
        self._block_ms = block_ms
        self._promote_interval_s = promote_interval_s
        self._gate = gate
        self._closed = False  # set once in-flight work is over: the supporting loops end
        self._outage = Outage(queue.settings.lease_ms / 1000)
        self._claim_failures = Failures(log, "claim")
        self._reclaim_failures = Failures(log, "reclaiming stalled jobs")
        self._claiming: list[asyncio.Task[None]] = []
        self._supporting: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        try:
            await self.queue.ensure_groups()
        except REDIS_UNREACHABLE as exc:  # serve, unready; the claim loop makes the lanes once Redis answers
            log.warning("redis not reachable at start (%s): claiming waits for it", exc)
        await super().start()
        # Claiming stops first on drain; the control channel and heartbeats go on until the
        # in-flight jobs are done, so they can still be cancelled and keep their leases.
        self._claiming = [
            watched(self._gated(self._claim_loop), name="claim-loop"),
            watched(self._gated(self._promote_loop), name="promote-loop"),
            watched(self._gated(self._reclaim_loop), name="reclaim-loop"),
        ]
        self._supporting = [
            watched(self._control_loop(), name="control-loop"),
            watched(self._heartbeat_loop(), name="heartbeat-loop"),
        ]

    async def drain(self, grace_s: float) -> None:
        """Claim nothing more; give in-flight jobs `grace_s` to finish, then hand the rest back."""
        self._stopping.set()
        self._slot_freed.set()
        await stop_tasks(self._claiming)
        await self._finish_in_flight(grace_s)
        self._closed = True
        await stop_tasks(self._supporting)

    # --- claiming ----------------------------------------------------------------------------

    async def _gated(self, loop: Callable[[], Awaitable[None]]) -> None:
        if self._gate is not None:
            await self._gate.wait()
        await loop()

    async def _claim_loop(self) -> None:
        delay = 0.1
        turn = 0  # the shard a claim starts with moves on each time: no shard is always first
        while not self._stopping.is_set():
            free = self.free
            if free <= 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            turn += 1
            try:
                await self._claim_round(free, turn)
                delay = 0.1
                continue
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is None or task.cancelling():
                    raise  # drain() stops the loop
                # One not meant for this loop (a client library's, let out of a call): go on.
                log.warning("claim cut off by a cancellation not meant for the claim loop; claiming again")
                lanes_lost = False
            except Exception as exc:  # an executor whose claim loop ended would claim nothing, silently
                if isinstance(exc, REDIS_ERRORS):
                    self._claim_failures.failed(exc, again_in_s=delay)
                else:
                    log.exception("claim failed unexpectedly, retrying in %.1f s", delay)
                lanes_lost = "NOGROUP" in str(exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
            if lanes_lost:
                with contextlib.suppress(*REDIS_ERRORS):
                    await self.queue.lanes_back()

    async def _claim_round(self, free: int, turn: int) -> None:
        """Claim up to `free` jobs and start them; when the lanes ran out first, wait for what lets
        another start (the claim read them to their end: claiming again would find nothing)."""
        batch = await claim(self.queue, consumer=self.worker_id, worker_id=self.worker_id, count=free, start=turn)
        self._claim_failures.worked()
        for c in batch.claims:
            self._start(c)
        if batch.claims and not batch.last_ids:
            return  # more may wait: claim again
        if batch.paused:
            await asyncio.sleep(0.5)
        elif batch.budget_spent:
            await self._rest(batch.wait_ms)
        else:
            # Wake when any lane gets an entry newer than what the claim saw, or when a tenant's rate
            # limit lets one of its held jobs start.
            block = min(self._block_ms, batch.wait_ms) if batch.wait_ms else self._block_ms
            await wait_for_entries(self.queue, self._blocking, batch.last_ids, block_ms=block)

    async def _rest(self, wait_ms: int) -> None:
        """Wait out the queue's rate limit: `wait_ms` (at most a minute), or until draining starts."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=min(wait_ms, 60_000) / 1000)

    def _start(self, c: Claim) -> None:
        self.launch(RunState(claim=c, ledger=self._ledger))
        log.info("job %s attempt %d claimed from %s lane", c.job_id, c.job.attempt, c.lane.value, extra=log_fields(c))

    # --- leases ------------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        interval = self.queue.settings.lease_ms / 3000
        failing = False
        while not self._closed:
            # After a failure, try again soon: the leases' holders must reach Redis first once it is back.
            await asyncio.sleep(min(interval, HEARTBEAT_RETRY_S) if failing else interval)
            # Direct runs (a Run call's) hold no lease.
            running = {
                state.claim.job_id: (task, state)
                for task, state in self.in_flight.values()
                if isinstance(state.ledger, QueueLedger)
            }
            by_shard: dict[str, list[Claim]] = {}
            for _, state in running.values():
                by_shard.setdefault(self.queue.for_job(state.claim.job_id).keys.tag, []).append(state.claim)
            lost: list[str] = []
            was_failing, failing = failing, False
            for shard, claims in by_shard.items():  # one shard away holds up no other's heartbeats
                try:
                    lost += await heartbeat(self.queue, consumer=self.worker_id, claims=claims)
                except REDIS_ERRORS as exc:
                    if not was_failing:
                        log.warning("heartbeat failed: %s", exc)
                    failing = True
                    if isinstance(exc, REDIS_UNREACHABLE):
                        self._outage.failed(shard)
                    continue
                self._outage.answered(shard)
            if was_failing and not failing:
                log.info("heartbeats reach Redis again: %d leases renewed", len(running))
            for job_id in lost:
                entry = running.get(job_id)
                if entry is not None and not entry[0].done():
                    entry[1].lease_lost = True
                    entry[0].cancel()

    async def _reclaim_loop(self) -> None:
        interval = self.queue.settings.stalled_interval_ms / 1000
        while not self._stopping.is_set():
            await asyncio.sleep(interval)
            free = self.free
            if free <= 0 or self._stopping.is_set():
                continue
            for shard in self.queue.shards:
                free = self.free
                if free <= 0:
                    break
                await self._reclaim_shard(shard, free)

    async def _reclaim_shard(self, shard: Queue, free: int) -> None:
        """Take over up to `free` runs of `shard` whose leases ran out, unless the shard was away less
        than a lease ago (`Outage`): then only look whether it answers again."""
        tag = shard.keys.tag
        try:
            if self._outage.down(tag):
                await shard.redis.exists(shard.keys.lanes[0])  # is it back (the shard's node)? No take-over yet
                self._outage.answered(tag)
                return
            if not self._outage.settled(tag):
                return  # the runs' holders renew their leases first
            found = await reclaim(shard.alone(), consumer=self.worker_id, worker_id=self.worker_id, count=free)
        except REDIS_ERRORS as exc:
            self._reclaim_failures.failed(exc)
            if isinstance(exc, REDIS_UNREACHABLE):
                self._outage.failed(tag)
            return
        self._reclaim_failures.worked()
        self.observer.reclaimed(claims=len(found.claims), stalled=len(found.stalled))
        if found.deleted:
            log.info("dropped %d pending entries whose stream entries were deleted", found.deleted)
        for job_id in found.stalled:
            log.warning("job %s failed: stalled too many times", job_id)
        for c in found.claims:
            log.warning(
                "job %s: its lease ran out (no heartbeat of its run reached Redis); running it again",
                c.job_id,
                extra=log_fields(c),
            )
            self._start(c)

    # --- delayed jobs and control ------------------------------------------------------------

    async def _promote_loop(self) -> None:
        # Sleep until the earliest delayed job is due (at most the poll interval), so retries
        # start on their backoff schedule rather than up to a poll interval late.
        promote_failures = Failures(log, "promoting delayed jobs")
        while not self._stopping.is_set():
            wait_s = self._promote_interval_s
            try:
                await promote_due(self.queue)
                due = await next_due_ms(self.queue)
                if due is not None:
                    wait_s = min(wait_s, max((due - now_ms()) / 1000, 0.005))
                promote_failures.worked()
            except REDIS_ERRORS as exc:
                promote_failures.failed(exc)
            await asyncio.sleep(wait_s)

    async def _control_loop(self) -> None:
        control_failures = Failures(log, "control channel")
        while not self._closed:
            try:
                async with self.queue.redis.pubsub() as pubsub:
                    await pubsub.subscribe(*(shard.keys.control for shard in self.queue.shards))
                    control_failures.worked()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._on_control(str(message.get("data", "")))
            except REDIS_ERRORS as exc:
                control_failures.failed(exc, again_in_s=0.5)
                await asyncio.sleep(0.5)

    def _on_control(self, data: str) -> None:
        command, _, job_id = data.partition(" ")
        if command == "cancel" and job_id in self.in_flight:
            task, state = self.in_flight[job_id]
            self.cancel(task, state)
            log.info("job %s: cancel requested, closing its browser context", job_id, extra=log_fields(state.claim))
