"""A handle on one Sentinel queue in Redis: client, key names, scripts and settings together.

Both services build one `Queue` at start-up and pass it to the plain async functions in
`shared.jobs` (producer side) and `executor_service` (consumer side).

A queue spread over shards (SENTINEL_QUEUE_SHARDS) is one `Queue` per shard, sharing the client
and the scripts: `for_tenant` and `for_job` pick the shard of a tenant or of a job id, `shards`
lists them all (see `shared.shards` for where each operation goes). The client is redis-py's
`RedisCluster` under REDIS_CLUSTER=true; it offers every command Sentinel sends, so it is typed as
`Redis` here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.clock import now_ms
from shared.keys import GROUP, Keys
from shared.scripts import Scripts, encode_context
from shared.settings import QueueSettings, RedisSettings
from shared.shards import new_id, shard_of

log = logging.getLogger(__name__)


def connect(settings: RedisSettings, **overrides: object) -> aioredis.Redis:
    """A client that decodes to str and retries briefly on connection errors.

    With `settings.cluster`, redis-py's cluster client, started from the node the URL names (TLS
    and an ACL user come from the URL as for one Redis): it routes each command, script call and
    pipeline by its keys' slot and follows MOVED and failovers; its retries also span a failover.
    """
    options: dict[str, object] = {
        "decode_responses": True,
        "health_check_interval": 15,
        "socket_connect_timeout": 5,
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
    }
    if settings.cluster:
        # A failover takes a few node timeouts: retry for longer than one Redis restarting.
        options["retry"] = Retry(ExponentialBackoff(cap=1.0, base=0.1), retries=8)
    options.update(overrides)
    if settings.cluster:
        options.pop("single_connection_client", None)  # a cluster client holds a pool per node
        return cast(aioredis.Redis, RedisCluster.from_url(settings.url, **options))
    return aioredis.Redis.from_url(settings.url, **options)  # type: ignore[arg-type]


def connect_blocking(settings: RedisSettings) -> aioredis.Redis:
    """A client for blocking reads (XREAD BLOCK): one connection, or on a cluster one pool per node.

    It never retries by itself: a silent reconnect would change its CLIENT ID behind the back of
    whoever wakes it with CLIENT UNBLOCK; the caller sees the error and reconnects knowingly. On a
    cluster a blocking read goes to the node of its keys' slot, so it is woken by cancelling it
    (see `shared.streams`), and one XREAD covers the streams of one shard only.
    """
    return connect(
        settings, single_connection_client=True, socket_timeout=None, retry=Retry(NoBackoff(), 0), retry_on_error=[]
    )


def is_cluster(client: aioredis.Redis) -> bool:
    """Whether `client` is a Redis Cluster client (whose multi-key commands must stay in one slot)."""
    return isinstance(client, RedisCluster)


@dataclass(frozen=True)
class Queue:
    redis: aioredis.Redis
    settings: QueueSettings
    keys: Keys
    scripts: Scripts
    layouts: tuple[Keys, ...] = ()  # every shard's keys, this one's among them (): one shard)

    @classmethod
    def open(cls, client: aioredis.Redis, settings: QueueSettings) -> Queue:
        """The queue's first shard (the whole queue when it has one); `shards` gives every one."""
        layouts = Keys.of_shards(settings.name, settings.shards)
        return cls(redis=client, settings=settings, keys=layouts[0], scripts=Scripts.load(client), layouts=layouts)

    @property
    def shards(self) -> tuple[Queue, ...]:
        """Every shard of the queue, in order (this queue alone when it has one)."""
        if len(self.layouts) <= 1:
            return (self,)
        return tuple(self if keys == self.keys else replace(self, keys=keys) for keys in self.layouts)

    def alone(self) -> Queue:
        """This shard as a queue of its own: a call that visits every shard visits this one only."""
        return self if len(self.layouts) <= 1 else replace(self, layouts=(self.keys,))

    def _shard(self, index: int) -> Queue:
        return self if len(self.layouts) <= 1 else self.shards[index]

    def for_tenant(self, tenant: str) -> Queue:
        """The shard holding `tenant`'s jobs and runs (all of them: fair share and limits stay exact)."""
        return self._shard(shard_of(tenant, len(self.layouts)))

    def for_job(self, job_id: str) -> Queue:
        """The shard holding the job (or run) with this id: `new_id` made the id name its shard."""
        return self._shard(shard_of(job_id, len(self.layouts)))

    def new_id(self) -> str:
        """A fresh job or run id (a uuid) that `for_job` maps to this shard."""
        count = len(self.layouts)
        return new_id(self.layouts.index(self.keys) if count > 1 else 0, count)

    async def ensure_groups(self) -> int:
        """Create every shard's lane streams and their consumer group if they do not exist yet; how
        many lanes had to be made."""
        made = 0
        for shard in self.shards:
            for lane in shard.keys.lanes:
                try:
                    await self.redis.xgroup_create(lane, GROUP, id="0", mkstream=True)
                    made += 1
                except aioredis.ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise
        return made

    async def lanes_back(self) -> None:
        """After Redis was away: make the lanes again if it came back without them, and say so — it
        came back without Sentinel's data (no persistence, a lost volume, a flush), and every job
        queued or running before is gone. A service calls this when Redis answers again."""
        if await self.ensure_groups():
            log.error(
                "Redis came back without Sentinel's data (restarted without persistence, its volume lost,"
                " or flushed): every job queued or running before is gone. The lanes are made again;"
                " check Redis's persistence (AOF and its volume)"
            )

    def context(self, **members: object) -> str:
        """ARGV[1] of a script call: the queue's layout and limits, then `members` (which win).

        The common members: `now` (ms), `group` (the executors' consumer group), the key prefixes
        (never a whole key: keys the script knows in advance go in KEYS, see `shared.scripts`)
        `job_prefix`, `progress_prefix`, `stats_prefix` (tally.lua), `fair_prefix` (fair.lua) and
        `run_prefix` (run.lua), `run_ttl_ms` (how long a finished run is kept),
        `progress_maxlen` and `events_maxlen` (the caps of the progress and events streams),
        fair share's `tenant_window`, `tenant_max_running` and `tenant_max_queued`, and the rate
        limiters' `limit_prefix`, `rate_max` (this shard's share of the queue-wide limit),
        `rate_duration_ms`, `tenant_rate_max` and `tenant_rate_duration_ms` (limit.lua; a max of 0 = off).
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
            "run_ttl_ms": s.run_retention_ms,
            "progress_maxlen": s.progress_maxlen,
            "events_maxlen": s.events_maxlen,
            "tenant_window": s.tenant_window,
            "tenant_max_running": s.tenant_max_running,
            "tenant_max_queued": s.tenant_max_queued,
            "limit_prefix": k.limit_prefix,
            "rate_max": self._shard_rate_max(),
            "rate_duration_ms": s.rate_limits.queue.duration_ms,
            # A tenant's held jobs wait in its fair-share backlog: without fair share, no tenant limit.
            "tenant_rate_max": s.rate_limits.tenant.max if s.tenant_window > 0 else 0,
            "tenant_rate_duration_ms": s.rate_limits.tenant.duration_ms,
        }
        return encode_context(common | members)

    def _shard_rate_max(self) -> int:
        """The queue-wide rate limit's share of one shard: each shard keeps its own start log (a
        script sees one shard only), so N shards split the limit, max // N each (at least 1)."""
        limit = self.settings.rate_limits.queue.max
        shards = max(len(self.layouts), 1)
        return max(limit // shards, 1) if limit > 0 else 0
