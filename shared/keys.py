"""Every Redis key Sentinel uses, and the only place that spells one.

All keys of a queue share the hash tag `{<queue>}`, so a queue lives in one cluster slot and a
Lua script may touch any of them. A queue spread over N shards (SENTINEL_QUEUE_SHARDS, see
`shared.shards`) has N hash tags, one `Keys` per shard, each a complete queue layout in its own
slot. One shard (the default) keeps the tag `{<queue>}`; shard i of N has the tag `{<queue>-<i>}`,
or `{<queue>-<i>-<k>}` with the smallest k that puts its slot in the i-th N-th of the 16384 slots
(`shard_tag`): a cluster whose masters split the slots evenly (as `redis-cli --cluster create`
does) then serves each of N shards on N masters from a different master.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from shared.model import Priority

#: The consumer group executors read the priority lanes with.
GROUP = "executors"
#: The consumer group API replicas read the events stream with, for alerts (`shared.alerts`).
ALERTS_GROUP = "alerts"


@cache
def shard_tag(queue: str, index: int, count: int) -> str:
    """The hash tag of shard `index` of `count`: `<queue>-<index>`, or `<queue>-<index>-<k>` with the
    smallest k whose cluster slot lies in the index-th count-th of the slot space."""
    low = index * REDIS_CLUSTER_HASH_SLOTS // count
    high = (index + 1) * REDIS_CLUSTER_HASH_SLOTS // count
    for k in range(100 * count * count + 1):
        tag = f"{queue}-{index}" if k == 0 else f"{queue}-{index}-{k}"
        if low <= key_slot(tag.encode("utf-8")) < high:
            return tag
    raise RuntimeError(f"no hash tag for shard {index} of {count} of queue {queue!r}")


@dataclass(frozen=True)
class Keys:
    queue: str = "default"
    shard: int | None = None  # None: the queue's one tag `{queue}`; else shard `shard` of `shards`
    shards: int = 1

    @classmethod
    def of_shards(cls, queue: str, count: int) -> tuple[Keys, ...]:
        """The layouts of a queue spread over `count` shards (one: the single tag `{queue}`)."""
        if count == 1:
            return (cls(queue),)
        return tuple(cls(queue, shard=i, shards=count) for i in range(count))

    @property
    def tag(self) -> str:
        """The hash tag every key of this queue (or shard) carries: what picks its cluster slot."""
        return self.queue if self.shard is None else shard_tag(self.queue, self.shard, self.shards)

    @property
    def prefix(self) -> str:
        return f"sentinel:{{{self.tag}}}:"

    def stream(self, priority: Priority) -> str:
        return f"{self.prefix}stream:{priority.value}"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def progress(self, job_id: str) -> str:
        return f"{self.prefix}progress:{job_id}"

    @property
    def delayed(self) -> str:
        return f"{self.prefix}delayed"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}dlq"

    @property
    def events(self) -> str:
        return f"{self.prefix}events"

    @property
    def completed(self) -> str:
        return f"{self.prefix}completed"

    @property
    def failed(self) -> str:
        return f"{self.prefix}failed"

    def idempotency(self, tenant: str, key: str) -> str:
        return self.idempotency_format % (tenant, key)

    def tenant_jobs(self, tenant: str) -> str:
        """zset of a tenant's job ids, score = created ms (ListJobs reads it newest first)."""
        return self.tenant_jobs_format % tenant

    def tenant_tag(self, tenant: str, tag: str) -> str:
        return self.tenant_tag_format % (tenant, tag)

    @property
    def _format_prefix(self) -> str:
        return self.prefix.replace("%", "%%")

    @property
    def tenant_jobs_format(self) -> str:
        """`tenant_jobs` as a format string with one %s (the tenant), for Lua's string.format."""
        return f"{self._format_prefix}tenant:%s:jobs"

    @property
    def tenant_tag_format(self) -> str:
        """`tenant_tag` as a format string with two %s (tenant, tag), for Lua's string.format."""
        return f"{self._format_prefix}tenant:%s:tag:%s"

    @property
    def idempotency_format(self) -> str:
        """`idempotency` as a format string with two %s (tenant, key), for Lua's string.format."""
        return f"{self._format_prefix}idem:%s:%s"

    @property
    def cleaner_lock(self) -> str:
        """Held (SET NX PX) by the one API replica running the periodic retention pass."""
        return f"{self.prefix}cleaner"

    @property
    def artifact_sweep_lock(self) -> str:
        """Held (SET NX PX) by the one API replica sweeping the artifact store for orphans."""
        return f"{self.prefix}artifact-sweeper"

    @property
    def fair_prefix(self) -> str:
        """Prefix of the fair-share keys; fair.lua appends the parts documented at its top."""
        return f"{self.prefix}fair:"

    @property
    def limit_prefix(self) -> str:
        """Prefix of the rate limiters' start logs; limit.lua appends the parts documented at its top."""
        return f"{self.prefix}limit:"

    def rate_log(self, tenant: str = "") -> str:
        """zset of the starts a rate limiter counts: the queue's ("") or one tenant's (see limit.lua)."""
        return f"{self.limit_prefix}tenant:{tenant}" if tenant else f"{self.limit_prefix}queue"

    def backlog(self, priority: Priority, tenant: str) -> str:
        """list of a tenant's pending job ids held back from a lane by fair share (see fair.lua)."""
        return f"{self.fair_prefix}backlog:{priority.value}:{tenant}"

    def run(self, run_id: str) -> str:
        """hash of a run (`shared.schema.RunField`)."""
        return f"{self.run_prefix}{run_id}"

    @property
    def run_prefix(self) -> str:
        """Prefix of a run's keys; run.lua appends the parts `run_jobs`, `run_held` and `run_test` spell."""
        return f"{self.prefix}run:"

    def run_jobs(self, run_id: str) -> str:
        """list of a run's job ids, in the order its tests were given."""
        return f"{self.run(run_id)}:jobs"

    def run_held(self, run_id: str) -> str:
        """list of a run's job ids held back by its max_parallel, released one per ended test."""
        return f"{self.run(run_id)}:held"

    def run_test(self, run_id: str, job_id: str) -> str:
        """hash of one test of a run: its name and file, and its end as the job recorded it."""
        return f"{self.run(run_id)}:test:{job_id}"

    def run_idempotency(self, tenant: str, key: str) -> str:
        return f"{self.prefix}run-idem:{tenant}:{key}"

    def schedule(self, schedule_id: str) -> str:
        """hash of a schedule (`shared.schema.ScheduleField`)."""
        return f"{self.schedule_prefix}{schedule_id}"

    @property
    def schedule_prefix(self) -> str:
        return f"{self.prefix}schedule:"

    def schedule_runs(self, schedule_id: str) -> str:
        """list of a schedule's latest fires, newest first (JSON each: job, fire, skipped, reason, triggered)."""
        return f"{self.schedule(schedule_id)}:runs"

    def schedule_ends(self, schedule_id: str) -> str:
        """hash of how the jobs a schedule fired ended, by job id (JSON: state, error, at), kept after
        retention removes the jobs (`shared.schedules.history`)."""
        return f"{self.schedule(schedule_id)}:ends"

    def schedule_jobs(self, schedule_id: str) -> str:
        """zset of the job ids a schedule fired, score = created ms (ListJobs' schedule_id filter)."""
        return self.schedule_jobs_format % schedule_id

    @property
    def schedule_jobs_format(self) -> str:
        """`schedule_jobs` as a format string with one %s (the schedule id), for Lua's string.format."""
        return f"{self._format_prefix}schedule:%s:jobs"

    def tenant_schedules(self, tenant: str) -> str:
        """zset of a tenant's schedule ids, score = created ms."""
        return f"{self.prefix}tenant:{tenant}:schedules"

    @property
    def schedules_due(self) -> str:
        """zset of the schedules that are not paused, score = when the next thing is due for each, ms."""
        return f"{self.prefix}schedules:due"

    @property
    def paused(self) -> str:
        return f"{self.prefix}paused"

    @property
    def stats_prefix(self) -> str:
        """Prefix of the figures hashes; tally.lua appends the parts documented at its top."""
        return f"{self.prefix}stats:"

    def lane_stats(self, priority: Priority) -> str:
        """hash of a lane's figures, all tenants (kept by tally.lua, read by shared.stats)."""
        return f"{self.stats_prefix}lane:{priority.value}"

    def tenant_stats(self, tenant: str, priority: Priority) -> str:
        """hash of one tenant's share of a lane's figures (kept by tally.lua, read by shared.stats)."""
        return f"{self.stats_prefix}tenant:{tenant}:{priority.value}"

    @property
    def control(self) -> str:
        """Pub/sub channel for commands to executors (cancel a running job, ...)."""
        return f"{self.prefix}control"

    @property
    def lanes(self) -> tuple[str, str, str]:
        """The three lane streams, high first."""
        return (self.stream(Priority.HIGH), self.stream(Priority.MEDIUM), self.stream(Priority.LOW))

    # --- alerts (shared.alerts) ------------------------------------------------------------------

    @property
    def alert_prefix(self) -> str:
        return f"{self.prefix}alert:"

    def alert_rule(self, rule_id: str) -> str:
        """hash of a tenant-wide alert rule (`shared.schema.AlertRuleField`)."""
        return f"{self.alert_prefix}rule:{rule_id}"

    def alert_rules(self, tenant: str) -> str:
        """zset of a tenant's rule ids, score = created ms."""
        return f"{self.alert_prefix}rules:{tenant}"

    def alert_tag(self, tenant: str, tag: str) -> str:
        """set of the ids of a tenant's rules for `tag`: the rules a job with that tag answers to."""
        return f"{self.alert_prefix}tag:{tenant}:{tag}"

    def alert_owner(self, owner: str) -> str:
        """hash of the last outcome of an owner (a schedule, or a rule and a test name): `OwnerField`."""
        return f"{self.alert_prefix}owner:{owner}"

    def alert_delivery(self, delivery_id: str) -> str:
        """hash of one webhook delivery and its answer (`shared.schema.DeliveryField`)."""
        return f"{self.alert_prefix}delivery:{delivery_id}"

    @property
    def alert_figures(self) -> str:
        """hash of how many deliveries ended `delivered` and `failed` (given up), ever (/metrics)."""
        return f"{self.alert_prefix}figures"

    def alert_lane(self, lane: str) -> str:
        """zset of the deliveries of one owner to one receiver, in the order they were made: only the
        oldest still pending is attempted (alert_lane.lua)."""
        return f"{self.alert_prefix}lane:{lane}"

    @property
    def alert_due(self) -> str:
        """zset of pending delivery ids, score = when the next attempt is due (ms), a lease while one runs."""
        return f"{self.alert_prefix}due"

    def alert_deliveries(self, tenant: str, by: str = "", value: str = "") -> str:
        """zset of a tenant's delivery ids, score = created ms: all of them, or those of one
        `schedule`, `rule` or `job` (`by`) with id `value`."""
        base = f"{self.alert_prefix}deliveries:{tenant}"
        return f"{base}:{by}:{value}" if by else base
