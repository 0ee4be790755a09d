"""Queue administration values as protobuf: stats, health and events (the API's edge, outbound).

Like `convert_jobs`, it only reads domain values; nothing here may import grpc.
"""

from __future__ import annotations

from typing import Any

from protos import sentinel_pb2 as pb
from shared.edge.convert_enums import priority_to_proto, state_to_proto
from shared.edge.convert_jobs import timestamp
from shared.events import QueueEvent
from shared.queue_health import HealthStatus, QueueHealth
from shared.stats import Figures, QueueStats

_HEALTH_TO_PROTO: dict[HealthStatus, pb.HealthStatus] = {
    HealthStatus.HEALTHY: pb.HEALTH_STATUS_HEALTHY,
    HealthStatus.DEGRADED: pb.HEALTH_STATUS_DEGRADED,
    HealthStatus.UNHEALTHY: pb.HEALTH_STATUS_UNHEALTHY,
}


def _figures(figures: Figures) -> dict[str, Any]:
    """The fields LaneStats and QueueStats share (same names, same numbers)."""
    return {
        "waiting": figures.waiting,
        "active": figures.active,
        "completed": figures.completed,
        "failed": figures.failed,
        "delayed": figures.delayed,
        "paused": figures.paused,
        "total_processed": figures.total_processed,
        "total_failed": figures.total_failed,
        "processing_rate": figures.processing_rate,
        "avg_processing_time": figures.avg_processing_time_ms,
        "last_processed_at": timestamp(figures.last_processed_at_ms),
        "dead_lettered": figures.dead_lettered,
        "cancelled": figures.cancelled,
        "total_cancelled": figures.total_cancelled,
    }


def stats_to_proto(stats: QueueStats) -> pb.QueueStats:
    """Queue (or tenant) figures, with one LaneStats per priority lane (high first)."""
    return pb.QueueStats(
        queue=stats.queue,
        tenant=stats.tenant,
        lanes=[pb.LaneStats(priority=priority_to_proto(lane.priority), **_figures(lane)) for lane in stats.lanes],
        **_figures(stats),
    )


def health_to_proto(health: QueueHealth) -> pb.QueueHealth:
    """A health verdict with its reasons (and the figures it was judged on, when Redis answered)."""
    return pb.QueueHealth(
        status=_HEALTH_TO_PROTO[health.status],
        reasons=health.reasons,
        stats=stats_to_proto(health.stats) if health.stats is not None else None,
    )


def event_to_proto(event: QueueEvent) -> pb.QueueEvent:
    """One queue event; queue-level events (paused, resumed) have no job and no state."""
    return pb.QueueEvent(
        cursor=event.cursor,
        kind=event.kind,
        job_id=event.job_id,
        state=state_to_proto(event.state) if event.state is not None else pb.JOB_STATE_UNSPECIFIED,
        time=timestamp(event.time_ms),
        message=event.message,
        tags=event.tags,
    )
