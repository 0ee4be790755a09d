"""The alerts of one API replica: its events-stream consumer and its delivery dispatcher, started
and stopped together. Every replica runs both; Redis shares the work out (a consumer group for
events, leases for deliveries)."""

from __future__ import annotations

import os
import socket
import uuid

import redis.asyncio as aioredis

from shared.alerts.consumer import EventConsumer
from shared.alerts.dispatcher import Dispatcher
from shared.alerts.guard import webhook_policy
from shared.alerts.outcomes import NotificationLookup
from shared.queue import Queue
from shared.schedules.store import schedule_notifications
from shared.sealed import Sealer
from shared.settings import AlertSettings

__all__ = ["Alerts"]


class Alerts:
    def __init__(
        self,
        queue: Queue,
        reader: aioredis.Redis,
        *,
        settings: AlertSettings,
        sealer: Sealer | None,
        lookup: NotificationLookup = schedule_notifications,
        consumer: str = "",
    ) -> None:
        """Args:
        reader: a connection of its own for the consumer's blocking reads; closed by `stop`.
        consumer: this replica's name in the `alerts` group (default: host, pid and a random part).
        """
        self.policy = webhook_policy(settings)
        self.dispatcher = Dispatcher(queue, settings=settings, sealer=sealer, policy=self.policy)
        self.consumer = EventConsumer(
            queue,
            reader,
            consumer=consumer or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}",
            settings=settings,
            lookup=lookup,
            on_made=lambda _: self.dispatcher.wake(),
        )
        self._reader = reader

    async def ensure_group(self) -> None:
        """Make the `alerts` group, so the events from now on are kept for it (before serving)."""
        await self.consumer.ensure_group()

    def start(self) -> None:
        """Start both loops (the consumer makes the group if `ensure_group` could not)."""
        self.consumer.start()
        self.dispatcher.start()

    async def stop(self) -> None:
        await self.consumer.stop()
        await self.dispatcher.stop()
        await self._reader.aclose()
