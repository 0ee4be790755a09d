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

from api_service.admin import QueueAdminServicer
from api_service.alerts import AlertsServicer
from api_service.http.context import Backend
from api_service.http.server import HttpApi
from api_service.schedules import SchedulesServicer
from api_service.servicers import TestExecutionServicer
from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared.alerts.service import Alerts
from shared.artifact_store import ArtifactStore, open_checked_store
from shared.edge import server as edge_server
from shared.edge.auth import keyring_for
from shared.edge.serving import HealthReporter
from shared.metrics import MetricsEndpoint, QueueCollector
from shared.queue import Queue, connect, connect_blocking
from shared.redis_policy import EvictionWatch, watch_eviction
from shared.retention import Cleaner, OrphanSweeper
from shared.schedules.firing import Scheduler
from shared.sealed import sealer_for
from shared.settings import ApiSettings, ArtifactSettings, QueueSettings, RedisSettings, SecuritySettings
from shared.streams import StreamHub
from shared.telemetry import tracing_from_env

log = logging.getLogger(__name__)

SERVICES = [
    pb.DESCRIPTOR.services_by_name["TestExecution"].full_name,
    pb.DESCRIPTOR.services_by_name["QueueAdmin"].full_name,
    pb.DESCRIPTOR.services_by_name["Schedules"].full_name,
    pb.DESCRIPTOR.services_by_name["Alerts"].full_name,
]


async def open_artifacts(settings: ArtifactSettings | None) -> ArtifactStore | None:
    """The artifact store `settings` name, checked (`open_checked_store`); None: none."""
    return await open_checked_store(settings) if settings is not None else None


@dataclass
class ApiServer:
    server: grpc.aio.Server
    port: int
    queue: Queue
    hub: StreamHub
    health: HealthReporter
    reader: aioredis.Redis
    cleaner: Cleaner
    scheduler: Scheduler
    registry: CollectorRegistry
    alerts: Alerts
    store: ArtifactStore | None = None
    sweeper: OrphanSweeper | None = None
    metrics: MetricsEndpoint | None = None
    tracing: TracerProvider | None = None
    http: HttpApi | None = None
    eviction: EvictionWatch | None = None

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
    ) -> ApiServer:
        """Start serving.

        Args:
            tracing: spans go to this provider (None: tracing off).
            artifacts: the artifact store (None: none; the artifact calls answer UNAVAILABLE).
        """
        client = connect(redis)
        # Refuses (ConfigError) a Redis that may evict keys unless SENTINEL_ALLOW_EVICTION is set.
        eviction = await watch_eviction(client, allow=redis.allow_eviction)
        store = await open_artifacts(artifacts)
        queue = Queue.open(client, queue_settings)
        reader = connect_blocking(redis)
        hub = StreamHub(reader, client)
        registry = CollectorRegistry()
        security = security or SecuritySettings()
        server = edge_server.build(registry=registry, tracing=tracing, security=security)
        sealer = sealer_for(security.secret_key)
        pb_grpc.add_TestExecutionServicer_to_server(TestExecutionServicer(queue, hub, sealer, store=store), server)
        pb_grpc.add_QueueAdminServicer_to_server(QueueAdminServicer(queue, hub, store=store), server)
        alerts = Alerts(queue, connect_blocking(redis), settings=api.alerts, sealer=sealer)
        pb_grpc.add_SchedulesServicer_to_server(SchedulesServicer(queue, sealer, policy=alerts.policy), server)
        pb_grpc.add_AlertsServicer_to_server(AlertsServicer(queue, sealer=sealer, policy=alerts.policy), server)
        health, port = edge_server.open_port(
            server,
            services=SERVICES,
            redis=client,
            host=api.host,
            port=api.port,
            security=security,
            variable="API_GRPC_PORT",
        )
        metrics = None
        if api.metrics_port:
            registry.register(QueueCollector(queue, asyncio.get_running_loop()))
            host = metrics_host or api.host
            metrics = MetricsEndpoint.try_start(registry, host=host, port=api.metrics_port, variable="API_METRICS_PORT")
        try:
            await queue.ensure_groups()
            await alerts.ensure_group()
        except Exception as exc:  # Redis down at start: serve NOT_SERVING and keep trying.
            log.warning("redis not reachable at start: %s", exc)
        cleaner = Cleaner(queue, store=store)
        sweeper = OrphanSweeper(queue, store) if store is not None else None
        scheduler = Scheduler(queue, tick_s=api.scheduler_tick_ms / 1000)
        await hub.start()
        await server.start()
        await health.start()
        await cleaner.start()
        if sweeper is not None:
            await sweeper.start()
        scheduler.start()
        alerts.start()
        started = cls(
            server=server,
            port=port,
            queue=queue,
            hub=hub,
            health=health,
            reader=reader,
            cleaner=cleaner,
            scheduler=scheduler,
            registry=registry,
            alerts=alerts,
            store=store,
            sweeper=sweeper,
            metrics=metrics,
            tracing=tracing,
            eviction=eviction,
        )
        if api.http_port:
            try:
                started.http = await HttpApi.start(
                    Backend(
                        queue=queue,
                        hub=hub,
                        keys=keyring_for(security),
                        sealer=sealer,
                        store=store,
                        cors_origins=frozenset(api.http_cors_origins),
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
            "api listening on %s:%d%s%s",
            api.host,
            port,
            f", HTTP on {api.http_listen_host}:{started.http.port}" if started.http else "",
            f", metrics on :{metrics.port}/metrics" if metrics else "",
        )
        return started

    async def stop(self, grace_s: float) -> None:
        await self.health.drain()
        if self.eviction is not None:
            await self.eviction.stop()
        await self.scheduler.stop()
        await self.cleaner.stop()
        await self.alerts.stop()
        if self.sweeper is not None:
            await self.sweeper.stop()
        # Ends open progress streams (gRPC and SSE alike) with ShuttingDown: clients resume with their cursor.
        await self.hub.stop()
        if self.http is not None:
            await asyncio.gather(self.server.stop(grace_s), self.http.stop())
        else:
            await self.server.stop(grace_s)
        if self.metrics:
            self.metrics.stop()
        await self.reader.aclose()
        await self.queue.redis.aclose()

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
) -> None:
    with tracing_from_env("sentinel-api") as tracing:
        server = await ApiServer.start(
            redis=redis,
            queue_settings=queue_settings,
            api=api,
            tracing=tracing,
            security=security,
            artifacts=artifacts,
        )
        await stop.wait()
        log.info("api stopping")
        await server.stop(api.shutdown_grace_ms / 1000)
