"""The API service: builds the grpc.aio server and runs it until told to stop.

Besides the gRPC services it runs the scheduler (`shared.schedules.firing.Scheduler`: every replica
ticks, each fire time is claimed by one of them), the periodic retention cleaner and the artifact store's orphan
sweep (one replica per interval does a pass of each, see `shared.retention`), the alerts' events
consumer and webhook dispatcher (every replica, sharing the work through Redis: `shared.alerts`) and, when
`API_METRICS_PORT` is not 0, a Prometheus endpoint with RPC counts and latencies and the queue's
figures. Before serving it reads Redis's eviction policy and refuses one that may evict jobs
(`shared.redis_policy`; `SENTINEL_ALLOW_EVICTION=true` overrides). It serves the jobs' artifacts
from the store `SENTINEL_ARTIFACTS_URL` names; a store that cannot be reached at start is logged
and the API serves anyway (the artifact calls answer UNAVAILABLE until the store answers). With
tracing on (OTEL_* variables), every call gets a server span, and Submit stores the span's context
in the job for the executor to continue.

With `API_HTTP_PORT` not 0 it also serves the HTTP/JSON API and the dashboard (`api_service.http`)
on the same loop, over the same queue, stream hub, keys, sealer and artifact store.

The execution mode (SENTINEL_EXECUTION, `shared.settings.ExecutionSettings`) picks the jobs backend
below the servicers (`shared.direct.backend`): the queue; direct runs on the executors named by
SENTINEL_EXECUTORS, held in memory, with no Redis at all (no cleaner, scheduler or alerts, no HTTP
API; QueueAdmin, Schedules, Alerts and the queue-only calls answer FAILED_PRECONDITION; health is
SERVING without Redis); or hybrid, both (its health, too, ignores Redis: it runs jobs directly
while Redis is away).

Shutdown (STYLE: saq / grpc graceful-shutdown): health flips to NOT_SERVING, open progress
streams end (gRPC with UNAVAILABLE, SSE cleanly) so clients reconnect elsewhere with their cursor,
then `server.stop(grace)` and the HTTP runner let in-flight calls finish.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import grpc
import redis.asyncio as aioredis
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from api_service.admin import QueueAdminServicer, without_queue
from api_service.alerts import AlertsServicer
from api_service.http.context import Backend
from api_service.http.server import HttpApi
from api_service.schedules import SchedulesServicer
from api_service.servicers import TestExecutionServicer
from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared import heap
from shared.alerts.guard import PUBLIC_ONLY
from shared.alerts.service import Alerts
from shared.artifact_store import ArtifactStore, open_checked_store
from shared.direct.backend import HybridBackend, JobsBackend, QueueBackend
from shared.direct.execution import DirectExecution
from shared.edge import server as edge_server
from shared.edge.auth import keyring_for
from shared.edge.serving import HealthReporter
from shared.errors import ConflictError
from shared.metrics import MetricsEndpoint, QueueCollector
from shared.progress import progress_doorbells
from shared.queue import Queue, connect, connect_blocking
from shared.redis_policy import EvictionWatch, until_stopped, watch_eviction
from shared.retention import Cleaner, OrphanSweeper
from shared.schedules.firing import Scheduler
from shared.sealed import sealer_for
from shared.settings import (
    ApiSettings,
    ArtifactSettings,
    ExecutionMode,
    ExecutionSettings,
    QueueSettings,
    RedisSettings,
    SecuritySettings,
)
from shared.streams import StreamHub
from shared.telemetry import tracing_from_env

log = logging.getLogger(__name__)

SERVICES = [
    pb.DESCRIPTOR.services_by_name["TestExecution"].full_name,
    pb.DESCRIPTOR.services_by_name["QueueAdmin"].full_name,
    pb.DESCRIPTOR.services_by_name["Schedules"].full_name,
    pb.DESCRIPTOR.services_by_name["Alerts"].full_name,
]
#: The services that are all queue: without one they answer FAILED_PRECONDITION.
QUEUE_ONLY = ("QueueAdmin", "Schedules", "Alerts")


async def open_artifacts(settings: ArtifactSettings | None) -> ArtifactStore | None:
    """The artifact store `settings` name, checked (`open_checked_store`); None: none."""
    return await open_checked_store(settings) if settings is not None else None


@dataclass
class QueueParts:
    """What the API holds of the queue (none in SENTINEL_EXECUTION=direct)."""

    queue: Queue
    hub: StreamHub
    reader: aioredis.Redis
    eviction: EvictionWatch

    @classmethod
    async def open(cls, redis: RedisSettings, settings: QueueSettings) -> QueueParts:
        """Connect; ConfigError for a Redis that may evict keys unless SENTINEL_ALLOW_EVICTION is set."""
        client = connect(redis)
        eviction = await watch_eviction(client, allow=redis.allow_eviction)
        reader = connect_blocking(redis)
        queue = Queue.open(client, settings)
        hub = StreamHub(reader, client, doorbells=progress_doorbells(queue))
        return cls(queue=queue, hub=hub, reader=reader, eviction=eviction)


def _without_queue() -> ConflictError:
    return ConflictError(f"this API runs without a queue (SENTINEL_EXECUTION={ExecutionMode.DIRECT.value})")


@dataclass
class ApiServer:
    server: grpc.aio.Server
    port: int
    queued: QueueParts | None
    health: HealthReporter
    registry: CollectorRegistry
    cleaner: Cleaner | None = None
    scheduler: Scheduler | None = None
    alerts: Alerts | None = None
    store: ArtifactStore | None = None
    sweeper: OrphanSweeper | None = None
    metrics: MetricsEndpoint | None = None
    tracing: TracerProvider | None = None
    http: HttpApi | None = None
    direct: DirectExecution | None = None

    def _queued(self) -> QueueParts:
        if self.queued is None:
            raise _without_queue()
        return self.queued

    @property
    def queue(self) -> Queue:
        return self._queued().queue

    @property
    def hub(self) -> StreamHub:
        return self._queued().hub

    @property
    def reader(self) -> aioredis.Redis:
        return self._queued().reader

    @classmethod
    async def start(
        cls,
        *,
        redis: RedisSettings,
        queue_settings: QueueSettings,
        api: ApiSettings,
        tracing: TracerProvider | None = None,
        metrics_host: str = "",
        security: SecuritySettings | None = None,
        artifacts: ArtifactSettings | None = None,
        execution: ExecutionSettings | None = None,
    ) -> ApiServer:
        """Start serving.

        Args:
            tracing: spans go to this provider (None: tracing off).
            artifacts: the artifact store (None: none; the artifact calls answer UNAVAILABLE).
            execution: the execution mode (None: queue).
        """
        execution = execution or ExecutionSettings()
        # Refuses (ConfigError) a Redis that may evict keys unless SENTINEL_ALLOW_EVICTION is set.
        queued = await QueueParts.open(redis, queue_settings) if execution.uses_queue else None
        store = await open_artifacts(artifacts)
        queue = queued.queue if queued is not None else None
        direct = DirectExecution.open(execution, queue_settings, queue, store=store) if execution.runs_direct else None
        jobs: JobsBackend
        if queued is None:
            assert direct is not None
            jobs = direct.backend
        elif direct is None:
            jobs = QueueBackend(queued.queue, queued.hub)
        else:
            jobs = HybridBackend(
                QueueBackend(queued.queue, queued.hub), direct.backend, low_priority_only=execution.low_priority_only
            )
        registry = CollectorRegistry()
        security = security or SecuritySettings()
        server = edge_server.build(registry=registry, tracing=tracing, security=security)
        sealer = sealer_for(security.secret_key)
        hub = queued.hub if queued is not None else None
        pb_grpc.add_TestExecutionServicer_to_server(
            TestExecutionServicer(queue, hub, sealer, store=store, jobs=jobs), server
        )
        alerts: Alerts | None = None
        if queued is not None:
            pb_grpc.add_QueueAdminServicer_to_server(QueueAdminServicer(queued.queue, queued.hub, store=store), server)
            readers = [connect_blocking(redis) for _ in queued.queue.shards]  # one per shard's consumer
            alerts = Alerts(queued.queue, readers, settings=api.alerts, sealer=sealer)
            pb_grpc.add_SchedulesServicer_to_server(
                SchedulesServicer(queued.queue, sealer, policy=alerts.policy), server
            )
            pb_grpc.add_AlertsServicer_to_server(
                AlertsServicer(queued.queue, sealer=sealer, policy=alerts.policy), server
            )
        else:
            server.add_generic_rpc_handlers([without_queue(name, str(_without_queue())) for name in QUEUE_ONLY])
        health, port = edge_server.open_port(
            server,
            services=SERVICES,
            # Hybrid serves while Redis is away (it runs jobs directly then): its health ignores Redis.
            redis=queue.redis if queue is not None and direct is None else None,
            host=api.host,
            port=api.port,
            security=security,
            variable="API_GRPC_PORT",
            # An API alone (executors elsewhere) still says so when Redis comes back without its data.
            redis_back=queue.lanes_back if queue is not None else None,
        )
        metrics = None
        if api.metrics_port:
            if queue is not None:
                registry.register(QueueCollector(queue, asyncio.get_running_loop()))
            host = metrics_host or api.host
            metrics = MetricsEndpoint.try_start(registry, host=host, port=api.metrics_port, variable="API_METRICS_PORT")
        if queue is not None and alerts is not None:
            try:
                await queue.ensure_groups()
                await alerts.ensure_group()
            except Exception as exc:  # Redis down at start: serve NOT_SERVING and keep trying.
                log.warning("redis not reachable at start: %s", exc)
        cleaner = Cleaner(queue, store=store) if queue is not None else None
        sweeper = OrphanSweeper(queue, store) if store is not None and queue is not None else None
        scheduler = Scheduler(queue, tick_s=api.scheduler_tick_ms / 1000) if queue is not None else None
        if queued is not None:
            await queued.hub.start()
        if direct is not None:
            direct.start()
        await server.start()
        await health.start()
        if cleaner is not None:
            await cleaner.start()
        if sweeper is not None:
            await sweeper.start()
        if scheduler is not None:
            scheduler.start()
        if alerts is not None:
            alerts.start()
        started = cls(
            server=server,
            port=port,
            queued=queued,
            health=health,
            registry=registry,
            cleaner=cleaner,
            scheduler=scheduler,
            alerts=alerts,
            store=store,
            sweeper=sweeper,
            metrics=metrics,
            tracing=tracing,
            direct=direct,
        )
        if api.http_port and queued is None:
            log.warning("no HTTP API in SENTINEL_EXECUTION=direct: it serves the queue's calls (API_HTTP_PORT ignored)")
        elif api.http_port and queued is not None:
            try:
                started.http = await HttpApi.start(
                    Backend(
                        queue=queued.queue,
                        hub=queued.hub,
                        jobs_backend=jobs,
                        keys=keyring_for(security),
                        sealer=sealer,
                        store=store,
                        cors_origins=frozenset(api.http_cors_origins),
                        webhook_policy=alerts.policy if alerts is not None else PUBLIC_ONLY,
                    ),
                    host=api.http_listen_host,
                    port=api.http_port,
                    tls=security.tls,
                    shutdown_timeout=api.shutdown_grace_ms / 1000,
                )
            except BaseException:
                await started.stop(0)  # the HTTP port cannot be opened: leave nothing running
                raise
        log.info(
            "api listening on %s:%d (SENTINEL_EXECUTION=%s)%s%s",
            api.host,
            port,
            execution.mode.value,
            f", HTTP on {api.http_listen_host}:{started.http.port}" if started.http else "",
            f", metrics on :{metrics.port}/metrics" if metrics else "",
        )
        return started

    async def stop(self, grace_s: float) -> None:
        await self.health.drain()
        if self.queued is not None:
            await self.queued.eviction.stop()
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.cleaner is not None:
            await self.cleaner.stop()
        if self.alerts is not None:
            await self.alerts.stop()
        if self.sweeper is not None:
            await self.sweeper.stop()
        # Ends open progress streams (gRPC and SSE alike) with ShuttingDown: clients resume with their cursor.
        if self.queued is not None:
            await self.queued.hub.stop()
        if self.direct is not None:
            await self.direct.stop()  # cancels the direct jobs still running, and ends their followers
        if self.http is not None:
            await asyncio.gather(self.server.stop(grace_s), self.http.stop())
        else:
            await self.server.stop(grace_s)
        if self.metrics:
            self.metrics.stop()
        if self.queued is not None:
            await self.queued.reader.aclose()
            await self.queued.queue.redis.aclose()

    async def wait(self) -> None:
        await self.server.wait_for_termination()


async def serve(
    stop: asyncio.Event,
    *,
    redis: RedisSettings,
    queue_settings: QueueSettings,
    api: ApiSettings,
    security: SecuritySettings,
    artifacts: ArtifactSettings,
    execution: ExecutionSettings | None = None,
) -> None:
    with tracing_from_env("sentinel-api") as tracing:
        server = await ApiServer.start(
            redis=redis,
            queue_settings=queue_settings,
            api=api,
            tracing=tracing,
            security=security,
            artifacts=artifacts,
            execution=execution,
        )
        heap.settle()  # what the start made lives as long as the process: out of every later collection
        refusal = await until_stopped(stop, server.queued.eviction if server.queued is not None else None)
        log.info("api stopping")
        await server.stop(api.shutdown_grace_ms / 1000)
        if refusal is not None:
            raise refusal  # as at start: the Redis that answered late may evict jobs
