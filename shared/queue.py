"""A handle on one Sentinel queue in Redis: client, key names, scripts and settings together.

Both services build one `Queue` at start-up and pass it to the plain async functions in
`shared.jobs` (producer side) and `executor_service` (consumer side).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.clock import now_ms
from shared.keys import GROUP, Keys
from shared.scripts import Scripts, encode_context
from shared.settings import QueueSettings, RedisSettings


def connect(settings: RedisSettings, **overrides: object) -> aioredis.Redis:
    """A client that decodes to str and retries briefly on connection errors."""
    options: dict[str, object] = {
        "decode_responses": True,
        "health_check_interval": 15,
        "socket_connect_timeout": 5,
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
    }
    options.update(overrides)
    return aioredis.Redis.from_url(settings.url, **options)  # type: ignore[arg-type]


def connect_blocking(settings: RedisSettings) -> aioredis.Redis:
    """A one-connection client for blocking reads (XREAD BLOCK).

    It never retries by itself: a silent reconnect would change its CLIENT ID behind the back of
    whoever wakes it with CLIENT UNBLOCK; the caller sees the error and reconnects knowingly.
    """
    return connect(
        settings, single_connection_client=True, socket_timeout=None, retry=Retry(NoBackoff(), 0), retry_on_error=[]
    )


@dataclass(frozen=True)
class Queue:
    redis: aioredis.Redis
    settings: QueueSettings
    keys: Keys
    scripts: Scripts

    @classmethod
    def open(cls, client: aioredis.Redis, settings: QueueSettings) -> Queue:
        return cls(redis=client, settings=settings, keys=Keys(settings.name), scripts=Scripts.load(client))

    async def ensure_groups(self) -> None:
        """Create the lane streams and their consumer group if they do not exist yet."""
        for lane in self.keys.lanes:
            try:
                await self.redis.xgroup_create(lane, GROUP, id="0", mkstream=True)
            except aioredis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def context(self, **members: object) -> str:
        """ARGV[1] of a script call: the queue's layout and limits, then `members` (which win).

        The common members: `now` (ms), `group` (the executors' consumer group), the key prefixes
        `job_prefix`, `progress_prefix`, `stats_prefix` (tally.lua), `fair_prefix` (fair.lua) and
        `run_prefix` (run.lua), the `delayed` zset and `run_ttl_ms` (how long a finished run is kept),
        `progress_maxlen` and `events_maxlen` (the caps of the progress and events streams),
        fair share's `tenant_window`, `tenant_max_running` and `tenant_max_queued`, and the rate
        limiters' `limit_prefix`, `rate_max`, `rate_duration_ms`, `tenant_rate_max` and
        `tenant_rate_duration_ms` (limit.lua; a max of 0 = off).
        """
        s = self.settings
        k = self.keys
        common: dict[str, object] = {
            "now": now_ms(),
            "group": GROUP,
            "job_prefix": k.job(""),
            "progress_prefix": k.progress(""),
            "stats_prefix": k.stats_prefix,
            "fair_prefix": k.fair_prefix,
            "run_prefix": k.run_prefix,
            "delayed": k.delayed,
            "run_ttl_ms": s.run_retention_ms,
            "progress_maxlen": s.progress_maxlen,
            "events_maxlen": s.events_maxlen,
            "tenant_window": s.tenant_window,
            "tenant_max_running": s.tenant_max_running,
            "tenant_max_queued": s.tenant_max_queued,
            "limit_prefix": k.limit_prefix,
            "rate_max": s.rate_limits.queue.max,
            "rate_duration_ms": s.rate_limits.queue.duration_ms,
            # A tenant's held jobs wait in its fair-share backlog: without fair share, no tenant limit.
            "tenant_rate_max": s.rate_limits.tenant.max if s.tenant_window > 0 else 0,
            "tenant_rate_duration_ms": s.rate_limits.tenant.duration_ms,
        }
        return encode_context(common | members)
