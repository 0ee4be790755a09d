"""The executor's outside view, installed in one step: /metrics, RPC metrics and job spans.

`Instrumentation.install(worker, ...)` gives the worker a full `JobObserver` (metrics + tracing),
registers the worker's figures in a registry of the service's own and serves it on
`EXECUTOR_METRICS_PORT` (0: not served). The executor keeps no artifacts on its disk, so it
sweeps none: the API deletes them from the artifact store with their jobs (`shared.retention`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from executor_service.metrics import ExecutorMetrics, WorkerCollector
from executor_service.observe import JobObserver
from executor_service.runs import Runs
from shared.metrics import MetricsEndpoint
from shared.settings import ExecutorSettings


@dataclass
class Instrumentation:
    registry: CollectorRegistry
    endpoint: MetricsEndpoint | None = None
    tracing: TracerProvider | None = field(default=None)

    @classmethod
    def install(
        cls, worker: Runs, *, settings: ExecutorSettings, tracing: TracerProvider | None = None
    ) -> Instrumentation:
        """Instrument `worker`; call before the server and the worker start."""
        registry = CollectorRegistry()
        worker.observer = JobObserver(metrics=ExecutorMetrics(registry), tracing=tracing)
        registry.register(WorkerCollector(worker))
        endpoint = None
        if settings.metrics_port:
            endpoint = MetricsEndpoint.try_start(
                registry, host=settings.host, port=settings.metrics_port, variable="EXECUTOR_METRICS_PORT"
            )
        return cls(
            registry=registry,
            endpoint=endpoint,
            tracing=tracing,
        )

    async def stop(self) -> None:
        if self.endpoint is not None:
            self.endpoint.stop()
