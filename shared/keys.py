"""Every Redis key Sentinel uses, and the only place that spells one.

All keys of a queue share the hash tag `{<queue>}`, so a queue lives in one cluster slot and a
Lua script may touch any of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.model import Priority

#: The consumer group executors read the priority lanes with.
GROUP = "executors"


@dataclass(frozen=True)
class Keys:
    queue: str = "default"

    @property
    def prefix(self) -> str:
        return f"sentinel:{{{self.queue}}}:"

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
