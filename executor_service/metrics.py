"""The executor's Prometheus figures: jobs by outcome, run and wait times, retries, reclaims,
active jobs and browser restarts, in the service's own registry.

Counters and histograms are fed by `executor_service.observe` as runs end; what is a state rather
than an event (jobs running now, browser restarts, draining) is read from the worker at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

_DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200)
_WAIT_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)


class _Browser(Protocol):
    restarts: int
    contexts_opened: int
    api_sessions_opened: int

    @property
    def connected(self) -> bool: ...


class WorkerView(Protocol):
    """What the collector reads from the worker (executor_service.worker.Worker)."""

    worker_id: str
    concurrency: int

    @property
    def in_flight(self) -> Mapping[str, object]: ...

    @property
    def browser(self) -> _Browser: ...

    @property
    def draining(self) -> bool: ...


class ExecutorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.jobs = Counter(
            "sentinel_executor_jobs",
            "Runs ended, by outcome (completed, failed, timeout, cancelled, retrying, lost, interrupted)",
            ["lane", "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "sentinel_executor_job_duration_seconds",
            "Time from claim to the end of a run",
            ["outcome"],
            registry=registry,
            buckets=_DURATION_BUCKETS,
        )
        self.wait = Histogram(
            "sentinel_executor_job_wait_seconds",
            "Time a run waited in its lane before this executor claimed it",
            ["lane"],
            registry=registry,
            buckets=_WAIT_BUCKETS,
        )
        self.retries = Counter(
            "sentinel_executor_retries", "Runs that failed and were scheduled again", registry=registry
        )
        self.reclaims = Counter(
            "sentinel_executor_reclaims", "Runs taken over from executors whose leases ran out", registry=registry
        )
        self.stalled = Counter(
            "sentinel_executor_stalled",
            "Jobs failed for stalling too often (found by this executor)",
            registry=registry,
        )


class WorkerCollector(Collector):
    """Active jobs, concurrency, browser state and restarts, draining: read from the worker."""

    def __init__(self, worker: WorkerView) -> None:
        self._worker = worker

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        w = self._worker
        figures = {
            "sentinel_executor_active_jobs": ("Jobs this executor is running now", len(w.in_flight)),
            "sentinel_executor_concurrency": ("Jobs this executor may run at once", w.concurrency),
            "sentinel_executor_browser_connected": ("1 while the executor's Chromium is up", int(w.browser.connected)),
            "sentinel_executor_draining": ("1 once the executor claims nothing more", int(w.draining)),
        }
        for name, (text, value) in figures.items():
            gauge = GaugeMetricFamily(name, text, labels=["worker"])
            gauge.add_metric([w.worker_id], value)
            yield gauge
        restarts = CounterMetricFamily(
            "sentinel_executor_browser_restarts", "Times a dead Chromium was relaunched", labels=["worker"]
        )
        restarts.add_metric([w.worker_id], w.browser.restarts)
        yield restarts
        opened = {
            "sentinel_executor_browser_contexts": (
                "Browser contexts opened (jobs that need a page)",
                w.browser.contexts_opened,
            ),
            "sentinel_executor_api_sessions": (
                "HTTP clients opened without a browser context (jobs of request steps only)",
                w.browser.api_sessions_opened,
            ),
        }
        for name, (text, value) in opened.items():
            counter = CounterMetricFamily(name, text, labels=["worker"])
            counter.add_metric([w.worker_id], value)
            yield counter
