"""Prometheus `/metrics` for a service: its own registry, an HTTP endpoint, and the queue's figures.

Each service builds one `CollectorRegistry` (never the process-global one, so two services in
one process — `sentinel dev`, the tests — do not collide) and serves it on its metrics port
(`API_METRICS_PORT` 9464, `EXECUTOR_METRICS_PORT` 9465; 0 serves nothing).

`QueueCollector` reads `shared.stats` at scrape time: the scrape runs in the endpoint's thread and
asks the service's event loop for the figures, so what Prometheus sees is never older than the
scrape, and nothing polls Redis between scrapes.

`sentinel_queue_runnable_jobs` is the one figure executors are scaled on (KEDA's `metrics-api`
scaler reads it from the API's /metrics, deploy/k8s): every job that needs an executor now —
waiting in a lane or in a tenant's fair-share backlog (both count as waiting), delayed but due
(only executors promote those, so at zero executors nothing else would), or running (scaling
executors away under running jobs would interrupt them). Queue-wide counts only: nothing about a
job or a tenant.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from shared.queue import Queue
from shared.schema import AlertFigure
from shared.stats import QueueStats, due_delayed, get_stats

log = logging.getLogger(__name__)

#: How long a scrape waits for the queue's figures before leaving them out.
SCRAPE_TIMEOUT_S = 3.0


@dataclass
class MetricsEndpoint:
    server: WSGIServer
    thread: threading.Thread
    port: int

    @classmethod
    def start(cls, registry: CollectorRegistry, *, host: str, port: int) -> MetricsEndpoint:
        """Serve `registry` at http://host:port/metrics (port 0 here picks a free port)."""
        server, thread = start_http_server(port, addr=host, registry=registry)
        return cls(server=server, thread=thread, port=int(server.server_port))

    @classmethod
    def try_start(cls, registry: CollectorRegistry, *, host: str, port: int, variable: str) -> MetricsEndpoint | None:
        """`start`, or None with a warning when the port cannot be had: a service runs without its
        metrics rather than not at all (the warning names the variable to change)."""
        try:
            return cls.start(registry, host=host, port=port)
        except OSError as exc:
            log.warning("no /metrics: cannot listen on %s:%d (%s): %s", host, port, variable, exc)
            return None

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class QueueCollector(Collector):
    """Queue depth per lane, retained and dead-lettered jobs, totals and rate, read at scrape time."""

    def __init__(self, queue: Queue, loop: asyncio.AbstractEventLoop) -> None:
        self._queue = queue
        self._loop = loop

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("sentinel_queue_up", "1 when the queue's figures could be read from Redis")
        read = self._read()
        up.add_metric([], 1 if read else 0)
        yield up
        if read is not None:
            stats, due, alerts = read
            yield from queue_metrics(stats, due=due)
            yield from alert_metrics(stats.queue, alerts)

    async def _figures(self) -> tuple[QueueStats, int, AlertFigures]:
        return await get_stats(self._queue), await due_delayed(self._queue), await alert_figures(self._queue)

    def _read(self) -> tuple[QueueStats, int, AlertFigures] | None:
        try:
            if asyncio.get_running_loop() is self._loop:
                return None  # a scrape from inside the loop would wait on itself
        except RuntimeError:
            pass
        future = asyncio.run_coroutine_threadsafe(self._figures(), self._loop)
        try:
            return future.result(timeout=SCRAPE_TIMEOUT_S)
        except Exception as exc:
            future.cancel()
            log.warning("metrics: queue figures unavailable: %s", exc)
            return None


@dataclass(frozen=True)
class AlertFigures:
    """Webhook deliveries waiting to be made or retried, and those that ended, ever."""

    pending: int
    delivered: int
    failed: int
    expired: int = 0  # kept waiting behind their receiver's earlier alerts until retention removed them


async def alert_figures(queue: Queue) -> AlertFigures:
    """The alerts' figures, summed over every shard."""
    pending = delivered = failed = expired = 0
    for shard in queue.shards:
        pipe = shard.redis.pipeline(transaction=False)
        pipe.zcard(shard.keys.alert_due)
        pipe.hmget(shard.keys.alert_figures, [AlertFigure.DELIVERED, AlertFigure.FAILED, AlertFigure.EXPIRED])
        due, (ok, lost, old) = await pipe.execute()
        pending, delivered = pending + int(due), delivered + int(ok or 0)
        failed, expired = failed + int(lost or 0), expired + int(old or 0)
    return AlertFigures(pending=pending, delivered=delivered, failed=failed, expired=expired)


def alert_metrics(queue: str, figures: AlertFigures) -> Iterable[Metric]:
    """Alert deliveries: pending now, and ended delivered or failed (given up: an alert lost to its
    receiver, which is what to alert on)."""
    pending = GaugeMetricFamily(
        "sentinel_alert_deliveries_pending",
        "Webhook deliveries due for a first try or a retry (one per receiver: those behind it wait their turn)",
        labels=["queue"],
    )
    pending.add_metric([queue], figures.pending)
    yield pending
    ended = CounterMetricFamily(
        "sentinel_alert_deliveries_finished",
        "Webhook deliveries that ended, by outcome (failed: given up after the last attempt)",
        labels=["queue", "outcome"],
    )
    ended.add_metric([queue, "delivered"], figures.delivered)
    ended.add_metric([queue, "failed"], figures.failed)
    ended.add_metric([queue, "expired"], figures.expired)
    yield ended


def queue_metrics(stats: QueueStats, *, due: int) -> Iterable[Metric]:
    """The queue's gauges and counters; `due`: delayed jobs whose time has come (`due_delayed`)."""
    q = stats.queue
    depth = GaugeMetricFamily("sentinel_queue_jobs", "Jobs in a lane, by state", labels=["queue", "lane", "state"])
    for lane in stats.lanes:
        depth.add_metric([q, lane.priority.value, "waiting"], lane.waiting)
        depth.add_metric([q, lane.priority.value, "active"], lane.active)
        depth.add_metric([q, lane.priority.value, "delayed"], lane.delayed)
    yield depth
    figures = {
        "sentinel_queue_delayed_jobs": ("Jobs waiting for a delay or a retry backoff", stats.delayed),
        "sentinel_queue_dead_letters": ("Jobs in the dead-letter queue", stats.dead_lettered),
        "sentinel_queue_paused": ("1 while the queue is paused", int(stats.paused)),
        "sentinel_queue_processing_rate": ("Jobs finished per minute (last 5 minutes)", stats.processing_rate),
        "sentinel_queue_due_jobs": ("Delayed jobs whose time has come, not yet promoted by an executor", due),
        "sentinel_queue_runnable_jobs": (
            "Jobs that need an executor now: waiting (lanes and tenant backlogs), delayed and due, or running",
            stats.waiting + due + stats.active,
        ),
    }
    for name, (text, value) in figures.items():
        gauge = GaugeMetricFamily(name, text, labels=["queue"])
        gauge.add_metric([q], value)
        yield gauge
    kept = GaugeMetricFamily(
        "sentinel_queue_retained_jobs", "Finished jobs kept, by outcome", labels=["queue", "outcome"]
    )
    kept.add_metric([q, "completed"], stats.completed)
    kept.add_metric([q, "failed"], stats.failed)
    kept.add_metric([q, "cancelled"], stats.cancelled)
    yield kept
    done = CounterMetricFamily(
        "sentinel_queue_jobs_finished",
        "Jobs that ended, by outcome, since the queue began",
        labels=["queue", "outcome"],
    )
    done.add_metric([q, "completed"], stats.total_processed - stats.total_failed - stats.total_cancelled)
    done.add_metric([q, "failed"], stats.total_failed)
    done.add_metric([q, "cancelled"], stats.total_cancelled)
    yield done
