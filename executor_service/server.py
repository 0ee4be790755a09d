"""The executor service: the worker plus its internal gRPC server (health, status, drain, Run).

In SENTINEL_EXECUTION=queue or hybrid it claims jobs from Redis and serves Run; in direct mode it
serves Run only and never connects to Redis (health is SERVING without it). Claimed and direct runs
share the QUEUE_CONCURRENCY slots: a Run call when all are taken answers RESOURCE_EXHAUSTED, so the
API tries another executor.

Start: a Redis that may evict keys is refused (`shared.redis_policy`) unless
`SENTINEL_ALLOW_EVICTION=true`.

Shutdown: health flips to NOT_SERVING, the worker claims nothing more, in-flight jobs get
EXECUTOR_SHUTDOWN_GRACE_MS to finish, then the server stops.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import redis.asyncio as aioredis
from opentelemetry.sdk.trace import TracerProvider

from executor_service.browser import BrowserManager
from executor_service.direct import run_direct
from executor_service.guard import NavigationPolicy
from executor_service.instrumentation import Instrumentation
from executor_service.runs import Runs
from executor_service.worker import Worker
from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared import heap
from shared.artifact_store import open_checked_store
from shared.edge import convert
from shared.edge import server as edge_server
from shared.edge.auth import figures_scope
from shared.edge.convert_direct import job_from_run_request, run_end_to_proto
from shared.edge.serving import DIRECT_SERVICE, HealthReporter
from shared.edge.status import Context, streaming
from shared.model import RunEnd
from shared.queue import Queue, connect, connect_blocking
from shared.redis_policy import EvictionWatch, until_stopped, watch_eviction
from shared.settings import (
    ExecutionMode,
    ExecutionSettings,
    ExecutorSettings,
    QueueSettings,
    RedisSettings,
    SecuritySettings,
)
from shared.telemetry import tracing_from_env

log = logging.getLogger(__name__)

SERVICES = [pb.DESCRIPTOR.services_by_name["Executor"].full_name]


def make_worker_id(configured: str) -> str:
    return configured or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class ExecutorServicer(pb_grpc.ExecutorServicer):
    def __init__(self, worker: Runs, health: HealthReporter, grace_s: float) -> None:
        self._worker = worker
        self._health = health
        self._grace_s = grace_s

    def status(self, context: Context) -> pb.WorkerStatus:
        """The executor's state; of the jobs in flight only the caller's tenant's are listed (an
        executor serves every tenant, and a job's step names and progress are its tenant's own).
        With auth disabled there are no tenants to keep apart: every job is listed."""
        w = self._worker
        scope = figures_scope(context)
        in_flight = []
        for _, state in list(w.in_flight.values()):
            if scope is not None and state.claim.job.metadata.tenant_id != scope:
                continue
            in_flight.append(
                pb.InFlightJob(
                    job_id=state.claim.job_id,
                    attempt=state.claim.job.attempt,
                    progress=convert.progress_to_proto(state.progress),
                    started_at=convert.timestamp(state.started_ms),
                )
            )
        return pb.WorkerStatus(
            worker_id=w.worker_id,
            concurrency=w.concurrency,
            in_flight=in_flight,
            browser_version=w.browser.version,
            browser_connected=w.browser.connected,
            uptime_ms=int((time.monotonic() - w.started_at) * 1000),
            draining=w.draining,
            jobs_processed=w.jobs_processed,
            busy_slots=len(w.in_flight),
        )

    async def GetWorkerStatus(self, request: pb.GetWorkerStatusRequest, context: Context) -> pb.WorkerStatus:
        return self.status(context)

    async def Drain(self, request: pb.DrainRequest, context: Context) -> pb.DrainResponse:
        await self._health.drain()
        await self._worker.drain(self._grace_s)
        return pb.DrainResponse(status=self.status(context))

    @streaming
    async def Run(self, request: pb.RunJobRequest, context: Context) -> AsyncIterator[pb.RunJobUpdate]:
        updates = run_direct(self._worker, job_from_run_request(request), trace=request.trace)
        async for update in updates:
            if isinstance(update, RunEnd):
                yield pb.RunJobUpdate(end=run_end_to_proto(update))
            else:
                yield pb.RunJobUpdate(progress=convert.progress_to_proto(update))


@dataclass
class ExecutorServer:
    server: grpc.aio.Server
    port: int
    worker: Runs  # a queue Worker, or (direct mode) runs of Run calls only
    health: HealthReporter
    settings: ExecutorSettings
    blocking: aioredis.Redis | None
    instrumentation: Instrumentation | None = None
    eviction: EvictionWatch | None = None

    @classmethod
    async def start(
        cls,
        *,
        redis: RedisSettings,
        queue_settings: QueueSettings,
        executor: ExecutorSettings,
        security: SecuritySettings | None = None,
        tracing: TracerProvider | None = None,
        execution: ExecutionSettings | None = None,
    ) -> ExecutorServer:
        """Start the worker and the internal service; pages may reach only public addresses
        plus `security.navigation_allow`.

        Args:
            execution: the mode (None: queue); direct mode claims nothing and needs no Redis.
        """
        security = security or SecuritySettings()
        policy = NavigationPolicy.from_rules(security.navigation_allow)
        worker_id = make_worker_id(executor.worker_id)
        browser = BrowserManager(
            executable_path=executor.chromium, headless=executor.headless, policy=policy, ffmpeg=executor.ffmpeg
        )
        store = await open_checked_store(executor.artifacts)
        client: aioredis.Redis | None = None
        blocking: aioredis.Redis | None = None
        eviction: EvictionWatch | None = None
        worker: Runs
        if execution is not None and execution.mode is ExecutionMode.DIRECT:
            worker = Runs(
                browser,
                settings=executor,
                queue_settings=queue_settings,
                worker_id=worker_id,
                concurrency=queue_settings.concurrency,
                secret_key=security.secret_key,
                store=store,
            )
        else:
            client = connect(redis)
            # Refuses (ConfigError) a Redis that may evict keys unless SENTINEL_ALLOW_EVICTION is set.
            eviction = await watch_eviction(client, allow=redis.allow_eviction)
            blocking = connect_blocking(redis)
            worker = Worker(
                Queue.open(client, queue_settings),
                browser,
                settings=executor,
                blocking=blocking,
                worker_id=worker_id,
                concurrency=queue_settings.concurrency,
                secret_key=security.secret_key,
                store=store,
                gate=eviction.checked,  # nothing claimed before the policy is read (Redis may be late)
            )
        instrumentation = Instrumentation.install(worker, settings=executor, tracing=tracing)
        server = edge_server.build(registry=instrumentation.registry, tracing=tracing, security=security)
        health, port = edge_server.open_port(
            server,
            services=SERVICES,
            redis=client,
            host=executor.host,
            port=executor.port,
            security=security,
            variable="EXECUTOR_GRPC_PORT",
            without_redis=(DIRECT_SERVICE,),
        )
        grace_s = executor.shutdown_grace_ms / 1000
        pb_grpc.add_ExecutorServicer_to_server(ExecutorServicer(worker, health, grace_s), server)
        await worker.start()
        await server.start()
        await health.start()
        log.info(
            "executor %s listening on %s:%d (concurrency %d%s)",
            worker_id,
            executor.host,
            port,
            worker.concurrency,
            "; direct runs only, no Redis" if client is None else "",
        )
        return cls(
            server=server,
            port=port,
            worker=worker,
            health=health,
            settings=executor,
            blocking=blocking,
            instrumentation=instrumentation,
            eviction=eviction,
        )

    async def stop(self) -> None:
        await self.health.drain()
        if self.eviction is not None:
            await self.eviction.stop()
        await self.worker.stop(self.settings.shutdown_grace_ms / 1000)
        await self.server.stop(1.0)
        if self.instrumentation is not None:
            await self.instrumentation.stop()
        if self.blocking is not None:
            await self.blocking.aclose()
        if isinstance(self.worker, Worker):
            await self.worker.queue.redis.aclose()


async def serve(
    stop: asyncio.Event,
    *,
    redis: RedisSettings,
    queue_settings: QueueSettings,
    executor: ExecutorSettings,
    security: SecuritySettings,
    execution: ExecutionSettings | None = None,
) -> None:
    with tracing_from_env("sentinel-executor") as tracing:
        server = await ExecutorServer.start(
            redis=redis,
            queue_settings=queue_settings,
            executor=executor,
            security=security,
            tracing=tracing,
            execution=execution,
        )
        heap.settle()  # what the start made lives as long as the process: out of every later collection
        refusal = await until_stopped(stop, server.eviction)
        log.info("executor stopping")
        await server.stop()
        if refusal is not None:
            raise refusal  # as at start: the Redis that answered late may evict jobs
