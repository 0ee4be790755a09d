"""The alerts of one API replica: its events-stream consumer and its delivery dispatcher, started
and stopped together. Every replica runs both; Redis shares the work out (a consumer group for
events, leases for deliveries). With shards (`shared.shards`), a consumer and a dispatcher per shard:
a shard's events are of its tenants' jobs, whose rules and deliveries are on that shard too."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Sequence

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


def _waking(dispatcher: Dispatcher) -> Callable[[list[str]], None]:
    """What a consumer calls when it made deliveries: its shard's dispatcher wakes."""
    return lambda _: dispatcher.wake()


class Alerts:
    def __init__(
        self,
        queue: Queue,
        readers: Sequence[aioredis.Redis],
        *,
        settings: AlertSettings,
        sealer: Sealer | None,
        lookup: NotificationLookup = schedule_notifications,
        consumer: str = "",
    ) -> None:
        """Args:
        readers: a connection of its own per shard for the consumers' blocking reads (in shard order);
            closed by `stop`.
        consumer: this replica's name in the `alerts` group (default: host, pid and a random part).
        """
        assert len(readers) == len(queue.shards), "one reader per shard"
        self.policy = webhook_policy(settings)
        name = consumer or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.dispatchers = [
            Dispatcher(shard, settings=settings, sealer=sealer, policy=self.policy) for shard in queue.shards
        ]
        self.consumers = [
            EventConsumer(
                shard,
                reader,
                consumer=name,
                settings=settings,
                lookup=lookup,
                on_made=_waking(dispatcher),
            )
            for shard, reader, dispatcher in zip(queue.shards, readers, self.dispatchers, strict=True)
        ]
        self._readers = list(readers)

    async def ensure_group(self) -> None:
        """Make the `alerts` group, so the events from now on are kept for it (before serving)."""
        for consumer in self.consumers:
            await consumer.ensure_group()

    def start(self) -> None:
        """Start every loop (a consumer makes its group if `ensure_group` could not)."""
        for consumer, dispatcher in zip(self.consumers, self.dispatchers, strict=True):
            consumer.start()
            dispatcher.start()

    async def stop(self) -> None:
        for consumer in self.consumers:
            await consumer.stop()
        for dispatcher in self.dispatchers:
            await dispatcher.stop()
        for reader in self._readers:
            await reader.aclose()
