"""Schedules between protobuf and the domain, part of the API's conversion layer.

Re-exported by `shared.edge.convert`; other code imports these from there. Like every conversion
from protobuf it never validates (`shared.schedules.rules` does, naming fields). Notification
secrets come in and never go out. Nothing here may import grpc.
"""

from __future__ import annotations

from protos import sentinel_pb2 as pb
from shared.edge.convert_enums import state_to_proto
from shared.edge.convert_jobs import timestamp
from shared.edge.convert_notifications import notification_to_proto, notifications_from_proto
from shared.edge.convert_submits import submit_to_proto
from shared.model import SubmitCommand
from shared.schedules.model import OverlapPolicy, Schedule, ScheduleRun, ScheduleSpec
from shared.schedules.timing import Timing

__all__ = ["OVERLAP_TO_PROTO", "overlap_from_proto", "schedule_spec_from_proto", "schedule_to_proto"]

OVERLAP_TO_PROTO: dict[OverlapPolicy, pb.OverlapPolicy] = {
    OverlapPolicy.SKIP: pb.OVERLAP_POLICY_SKIP,
    OverlapPolicy.ALLOW: pb.OVERLAP_POLICY_ALLOW,
    OverlapPolicy.BUFFER_ONE: pb.OVERLAP_POLICY_BUFFER_ONE,
}
_OVERLAP_FROM_PROTO: dict[int, OverlapPolicy] = {v: k for k, v in OVERLAP_TO_PROTO.items()}


def overlap_from_proto(value: int) -> OverlapPolicy | None:
    """None for UNSPECIFIED or a number this server does not know (the caller's default: SKIP)."""
    return _OVERLAP_FROM_PROTO.get(value)


def schedule_spec_from_proto(message: pb.Schedule, template: SubmitCommand) -> ScheduleSpec:
    """What a caller sets on a schedule; `template` is its SubmitRequest already converted
    (`submit_from_proto`). An empty time zone is UTC."""
    return ScheduleSpec(
        name=message.name.strip(),
        timing=Timing(
            cron=" ".join(message.cron.split()),
            interval_ms=message.interval_ms,
            timezone=message.timezone.strip() or "UTC",
            jitter_ms=message.jitter_ms,
        ),
        template=template,
        overlap=overlap_from_proto(message.overlap) or OverlapPolicy.SKIP,
        catchup_window_ms=message.catchup_window_ms,
        paused=message.paused,
        note=message.note,
        notifications=notifications_from_proto(message.notifications),
    )


def _run_to_proto(run: ScheduleRun) -> pb.ScheduleRun:
    return pb.ScheduleRun(
        job_id=run.job_id,
        fire_time=timestamp(run.fire_time_ms),
        state=state_to_proto(run.state) if run.state is not None else pb.JOB_STATE_UNSPECIFIED,
        skipped=run.skipped,
        reason=run.reason,
        triggered=run.triggered,
        error=run.error,
        job_removed=run.removed,
    )


def schedule_to_proto(schedule: Schedule) -> pb.Schedule:
    """A schedule as the API shows it. Secrets never leave: the template's secret fill values stay
    sealed, notifications go without their signing secrets."""
    spec = schedule.spec
    template = submit_to_proto(spec.template)
    template.ClearField("source")  # each fire's is SCHEDULER, whatever the template says
    return pb.Schedule(
        schedule_id=schedule.schedule_id,
        name=spec.name,
        cron=spec.timing.cron,
        interval_ms=spec.timing.interval_ms,
        timezone=spec.timing.timezone,
        jitter_ms=spec.timing.jitter_ms,
        overlap=OVERLAP_TO_PROTO[spec.overlap],
        catchup_window_ms=spec.catchup_window_ms,
        template=template,
        paused=spec.paused,
        next_fires=[t for t in (timestamp(f) for f in schedule.next_fires) if t is not None],
        notifications=[notification_to_proto(n) for n in spec.notifications],
        recent_runs=[_run_to_proto(r) for r in schedule.recent_runs],
        created_at=timestamp(schedule.created_at_ms),
        updated_at=timestamp(schedule.updated_at_ms),
        tenant_id=schedule.tenant_id,
        note=spec.note,
    )
