"""Making the deliveries that are due: each API replica claims some under a lease and sends them.

At most `concurrency` attempts run at once per replica. A claim moves the delivery's due time to
the end of its lease (twice the attempt timeout, plus 5 s), so a replica that dies mid-attempt
leaves the delivery to be tried again by another once the lease ends; the answer is recorded only
under the lease it was claimed with. The loop looks for due deliveries every `poll_ms`, and at once
when woken (new deliveries made in this replica, an attempt ended). An attempt opens the sealed URL
and signing secret (`shared.alerts.urls`, `shared.sealed`) right before it is made; neither is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from shared.alerts.deliveries import Answer, ClaimedDelivery, DeliveryState, claim_due, record_answer
from shared.alerts.sender import send
from shared.alerts.urls import mask_url, open_url
from shared.errors import SentinelError
from shared.failures import Failures
from shared.navigation_policy import NavigationPolicy
from shared.queue import Queue
from shared.redis_errors import REDIS_OR_OS_ERRORS
from shared.sealed import Sealer
from shared.settings import AlertSettings
from shared.tasks import stop_tasks, watched

__all__ = ["Dispatcher"]

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(
        self, queue: Queue, *, settings: AlertSettings, sealer: Sealer | None, policy: NavigationPolicy
    ) -> None:
        self._queue = queue
        self._settings = settings
        self._sealer = sealer
        self._policy = policy
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._failures = Failures(log, "alerts: claiming deliveries")
        self._task: asyncio.Task[None] | None = None
        self._attempts: set[asyncio.Task[None]] = set()

    @property
    def lease_ms(self) -> int:
        return 2 * self._settings.timeout_ms + 5000

    def wake(self) -> None:
        """Look for due deliveries now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._stopping.clear()
        self._task = watched(self._run(), name="alerts-dispatcher")

    async def stop(self) -> None:
        """Stop claiming; attempts under way are cancelled (their leases run out: tried again later)."""
        self._stopping.set()
        self._wake.set()
        await stop_tasks([self._task, *self._attempts])
        self._task = None

    async def _run(self) -> None:
        # The first look comes after one poll interval, leaving the start of the service to others.
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._settings.poll_ms / 1000)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                await self.dispatch()
                self._failures.worked()
            except REDIS_OR_OS_ERRORS as exc:
                self._failures.failed(exc)

    async def dispatch(self) -> int:
        """Claim as many due deliveries as there is room for and start an attempt for each."""
        room = self._settings.concurrency - len(self._attempts)
        if room <= 0:
            return 0
        claimed = await claim_due(self._queue, count=room, lease_ms=self.lease_ms)
        for one in claimed:
            task = asyncio.create_task(self._attempt(one), name=f"alert-delivery-{one.delivery.delivery_id}")
            self._attempts.add(task)
            task.add_done_callback(self._ended)
        return len(claimed)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._attempts.discard(task)
        if not task.cancelled() and task.exception() is not None:  # its lease runs out: tried again
            log.error("alerts: %s failed", task.get_name(), exc_info=task.exception())
        self._wake.set()

    def _secret(self, claimed: ClaimedDelivery) -> str:
        if not claimed.sealed_secret:
            return ""
        if self._sealer is None:
            raise SentinelError("cannot sign: this server has no SENTINEL_SECRET_KEY to open the signing secret")
        return self._sealer.open(claimed.sealed_secret, field="secret")

    async def _attempt(self, claimed: ClaimedDelivery) -> None:
        delivery = claimed.delivery
        url = ""
        try:
            url = open_url(delivery.url, self._sealer)
            secret = self._secret(claimed)
        except SentinelError as exc:
            answer = Answer(error=str(exc))
        else:
            answer = await send(
                url,
                delivery.body,
                delivery_id=delivery.delivery_id,
                secret=secret,
                policy=self._policy,
                timeout_ms=self._settings.timeout_ms,
            )
        try:
            state = await record_answer(
                self._queue,
                claimed,
                answer,
                max_attempts=self._settings.max_attempts,
                backoff_base_ms=self._settings.backoff_ms,
            )
        except REDIS_OR_OS_ERRORS as exc:  # the lease runs out and the delivery is tried again
            log.warning("alerts: recording delivery %s failed: %s", delivery.delivery_id, exc)
            return
        # The URL's path and query may hold a receiver's token: only its masked form is logged. An
        # alert given up is lost to its receiver: a warning an operator's log alerts can catch.
        log.log(
            logging.WARNING if state is DeliveryState.FAILED else logging.INFO,
            "alerts: delivery %s (%s to %s) attempt %d: %s -> %s",
            delivery.delivery_id,
            delivery.event,
            mask_url(url) if url else "?",
            delivery.attempts,
            answer.status or answer.error,
            state.value if state is not None else "lease lost",
        )
