"""Whether Redis may evict Sentinel's keys: read at start, again when Redis comes back, and for health.

Under memory pressure a Redis whose `maxmemory-policy` is anything but `noeviction` deletes keys
to make room — `allkeys-lru` any key, `volatile-*` those with a TTL (finished jobs' hashes,
idempotency keys, locks). A deleted job hash or lane stream is a job lost without a trace. With
`noeviction`, Redis refuses writes instead (an OOM error every caller sees), which is the only
behaviour a queue can live with.

So both services read the policy before they serve: one that evicts is logged as an error and
stops the start unless `SENTINEL_ALLOW_EVICTION=true`. A service that started while Redis did not
answer yet (Redis started after it, as in a Kubernetes rollout) reads it every `READ_RETRY_S` until
it does, and that first read is the start's check, late: a refusal stops the service
(`EvictionWatch.refused`; the executor claims nothing before that read). The policy is read again
when Redis answers after an outage (it may be another instance now, after a failover) and whenever it
changes — logged as an error, but a running service keeps running (stopping executors mid-job
would do more harm than good) — and GetHealth reads it afresh: an evicting Redis makes the queue
DEGRADED with the reason. A REDIS_CLUSTER=true service whose Redis turns out to be no cluster node,
whenever that is seen, is refused the same way: nothing it asks such a Redis can work.
`INFO memory` is asked first because managed Redis services that disable `CONFIG` still answer it;
`CONFIG GET` is the fallback. When neither answers, a warning says that the policy could not be
checked — never that it is fine.

This module never changes the policy: that is the operator's call.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisClusterException, ResponseError

from shared.errors import ConfigError
from shared.redis_errors import REDIS_ERRORS, REDIS_UNREACHABLE
from shared.tasks import Periodic, stop_tasks, watched

log = logging.getLogger(__name__)

#: The only policy under which Redis never deletes a key on its own.
REQUIRED_POLICY = "noeviction"
#: The setting that lets a service start on a Redis that evicts.
ALLOW_VARIABLE = "SENTINEL_ALLOW_EVICTION"
#: How often a running service reads the policy again (a change or a reconnect is logged).
CHECK_INTERVAL_S = 15.0
#: A read of the policy that takes longer counts as Redis not answering.
READ_TIMEOUT_S = 5.0
#: How often a service that started before Redis answered tries to read the policy until it does.
READ_RETRY_S = 1.0


@dataclass(frozen=True)
class EvictionPolicy:
    """Redis's `maxmemory-policy` as read, or why it could not be read (`policy` empty)."""

    policy: str
    source: str = ""  # the command that answered: "INFO memory" or "CONFIG GET"
    detail: str = ""  # why it could not be read

    @property
    def known(self) -> bool:
        return bool(self.policy)

    @property
    def evicts(self) -> bool:
        """Redis may delete Sentinel's keys under memory pressure."""
        return self.known and self.policy != REQUIRED_POLICY

    def health_reason(self) -> str | None:
        """The DEGRADED reason GetHealth lists, or None when the policy is safe or unknown."""
        if not self.evicts:
            return None
        return (
            f"redis maxmemory-policy is {self.policy}: under memory pressure Redis deletes keys, jobs included "
            f"(Sentinel needs {REQUIRED_POLICY})"
        )

    def refusal(self) -> str:
        """Why a service does not start on this Redis, naming the setting and the variable."""
        return (
            f"Redis maxmemory-policy is {self.policy!r}: under memory pressure Redis would delete keys and "
            f"silently lose jobs. Set maxmemory-policy {REQUIRED_POLICY} on the Redis server "
            f"(CONFIG SET maxmemory-policy {REQUIRED_POLICY}, or in redis.conf), or set {ALLOW_VARIABLE}=true "
            "to run anyway"
        )


async def read_policy(client: aioredis.Redis) -> EvictionPolicy:
    """Redis's eviction policy: `INFO memory` first (answers where `CONFIG` is disabled), then `CONFIG GET`.

    Raises:
        `REDIS_UNREACHABLE` (a connection error, a timeout, a cluster that is down): Redis did not answer.
    """
    problems: list[str] = []
    try:
        info = await client.info("memory")
        policy = str(info.get("maxmemory_policy") or "").strip()
        if policy:
            return EvictionPolicy(policy, source="INFO memory")
        problems.append("INFO memory has no maxmemory_policy")
    except REDIS_UNREACHABLE:  # CLUSTERDOWN / TRYAGAIN are replies too, but say Redis is not serving
        raise
    except ResponseError as exc:  # disabled, renamed or not allowed to this user
        problems.append(f"INFO memory refused: {exc}")
    try:
        reply = await client.config_get("maxmemory-policy")
        policy = str(reply.get("maxmemory-policy") or "").strip()
        if policy:
            return EvictionPolicy(policy, source="CONFIG GET")
        problems.append("CONFIG GET maxmemory-policy answered nothing")
    except REDIS_UNREACHABLE:
        raise
    except ResponseError as exc:
        problems.append(f"CONFIG GET refused: {exc}")
    return EvictionPolicy("", detail="; ".join(problems))


class EvictionWatch:
    """Reads the policy at start (refusing an evicting Redis unless allowed) and every
    `interval_s` after; logs it at start, after Redis comes back, and when it changes.

    Attributes:
        checked: Set once the policy has been read and found acceptable (or allowed): at start, or
            when a Redis that did not answer at start first does.
        refused: Set when the service must stop, with the reason in `refusal`: the late start check
            found an evicting Redis, or a REDIS_CLUSTER=true service found no cluster node.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        allow: bool,
        interval_s: float = CHECK_INTERVAL_S,
        retry_s: float = READ_RETRY_S,
    ) -> None:
        self._client = client
        self._allow = allow
        self._retry_s = retry_s
        self.policy: EvictionPolicy | None = None  # the last one read; None: not read yet
        self.checked = asyncio.Event()
        self.refused = asyncio.Event()
        self.refusal: ConfigError | None = None
        self._reachable = True
        self._loop = Periodic(
            "eviction-check", self._recheck, interval_s=interval_s, first_now=False, tolerated=REDIS_ERRORS
        )
        self._late: asyncio.Task[None] | None = None  # the start's check, retried until Redis answers

    async def start(self) -> None:
        """Read the policy, then keep watching it.

        Raises:
            ConfigError: Redis evicts and `SENTINEL_ALLOW_EVICTION` is not set (nothing keeps running),
                or REDIS_CLUSTER=true names a Redis that is no cluster node. Not raised when Redis
                does not answer yet: the service starts unready, the check is made when Redis first
                answers, and a refusal then sets `refused`.
        """
        await self._check(starting=True)
        if self.policy is None:
            self._late = watched(self._until_read(), name="eviction-first-check")
            return
        self.checked.set()
        self._loop.start()

    async def stop(self) -> None:
        await stop_tasks([self._late])
        await self._loop.stop()

    async def _until_read(self) -> None:
        """The start's check, tried every `retry_s` until Redis answers it; then the usual watch."""
        while self.policy is None:
            await asyncio.sleep(self._retry_s)
            try:
                await self._check(starting=True)
            except ConfigError as exc:
                self._refuse(exc)
                return
            except REDIS_ERRORS as exc:  # an answer that is no policy: as the periodic check, again later
                log.warning("eviction-first-check failed, trying again in %.1f s: %s", self._retry_s, exc)
        self.checked.set()
        self._loop.start()

    async def _recheck(self) -> None:
        try:
            await self._check(starting=False)
        except ConfigError as exc:
            self._refuse(exc)

    def _refuse(self, exc: ConfigError) -> None:
        if not self.refused.is_set():
            log.error("stopping: %s", exc)
            self.refusal = exc
            self.refused.set()

    async def _check(self, *, starting: bool) -> None:
        try:
            policy = await asyncio.wait_for(read_policy(self._client), timeout=READ_TIMEOUT_S)
        except REDIS_UNREACHABLE as exc:
            if self._reachable:
                log.warning(
                    "cannot check Redis maxmemory-policy, Redis does not answer (%s): checked when it does",
                    str(exc) or type(exc).__name__,
                )
            self._reachable = False
            return
        except RedisClusterException as exc:
            if "cluster mode is not enabled" in str(exc).lower():  # redis-py's words, its only sign of it
                raise ConfigError(
                    "REDIS_CLUSTER=true, but the Redis at REDIS_URL is no cluster node (cluster mode is not"
                    " enabled on it): unset REDIS_CLUSTER, or name a node of the cluster"
                ) from None
            raise
        came_back = not self._reachable and self.policy is not None  # it answered before: a return
        changed = policy != self.policy
        self._reachable = True
        self.policy = policy
        if starting or came_back or changed:
            self._report(policy, came_back=came_back)
        if starting and policy.evicts and not self._allow:
            raise ConfigError(policy.refusal())

    def _report(self, policy: EvictionPolicy, *, came_back: bool) -> None:
        when = " (Redis answers again)" if came_back else ""
        if not policy.known:
            log.warning(
                "could not check Redis maxmemory-policy%s (%s): make sure it is %s, or Redis may evict jobs",
                when,
                policy.detail,
                REQUIRED_POLICY,
            )
        elif policy.evicts:
            allowed = f"running anyway ({ALLOW_VARIABLE}=true)" if self._allow else "refusing to start"
            log.error("%s%s; %s", policy.refusal(), when, allowed)
        else:
            log.info("Redis maxmemory-policy is %s (from %s)%s", policy.policy, policy.source, when)


async def until_stopped(stop: asyncio.Event, watch: EvictionWatch | None) -> ConfigError | None:
    """Wait until `stop` is set or `watch` refuses the Redis it watches; the refusal, or None."""
    waits = [asyncio.ensure_future(stop.wait())]
    if watch is not None:
        waits.append(asyncio.ensure_future(watch.refused.wait()))
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
    return watch.refusal if watch is not None else None


async def watch_eviction(client: aioredis.Redis, *, allow: bool) -> EvictionWatch:
    """Start an `EvictionWatch` on `client`; when it refuses, close `client` before raising.

    Raises:
        ConfigError: Redis evicts and `allow` is False.
    """
    watch = EvictionWatch(client, allow=allow)
    try:
        await watch.start()
    except BaseException:
        await client.aclose()
        raise
    return watch
