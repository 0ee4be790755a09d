"""Protobuf → the SDK's dataclasses (and enums both ways): the one place the SDK reads messages.

Both clients convert every reply here, so a `Job` is the same value whichever client fetched it.
Proto3 enums are open: a number this SDK does not know (a newer API) becomes None rather than an
error, as UNSPECIFIED does. Protobuf must not leak past this module into a public value.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from protos import sentinel_pb2 as pb
from sentinel_client.errors import InvalidArgumentError
from sentinel_client.models import (
    EPOCH,
    AlertRule,
    Artifact,
    ArtifactPolicy,
    DeadLetter,
    Delivery,
    DeliveryState,
    ErrorCategory,
    HealthStatus,
    Job,
    JobError,
    JobResult,
    JobSource,
    JobState,
    LaneStats,
    Notification,
    OverlapPolicy,
    Page,
    Priority,
    Progress,
    ProgressEvent,
    QueueEvent,
    QueueHealth,
    QueueState,
    QueueStats,
    Run,
    RunState,
    RunTest,
    StepResult,
)

E = TypeVar("E", bound=StrEnum)

#: Each SDK enum's protobuf enum, and the prefix its value names carry there.
_PROTO_ENUMS: dict[type[StrEnum], tuple[Any, str]] = {
    JobState: (pb.JobState, "JOB_STATE_"),
    Priority: (pb.Priority, "PRIORITY_"),
    ErrorCategory: (pb.ErrorCategory, "ERROR_CATEGORY_"),
    ArtifactPolicy: (pb.ArtifactPolicy, "ARTIFACT_POLICY_"),
    JobSource: (pb.JobSource, "JOB_SOURCE_"),
    HealthStatus: (pb.HealthStatus, "HEALTH_STATUS_"),
    RunState: (pb.RunState, "RUN_STATE_"),
    OverlapPolicy: (pb.OverlapPolicy, "OVERLAP_POLICY_"),
    DeliveryState: (pb.DeliveryState, "DELIVERY_STATE_"),
}


def enum_from_proto(cls: type[E], number: int) -> E | None:
    """The member of `cls` for a protobuf enum number; None for UNSPECIFIED or a number unknown here."""
    proto_enum, prefix = _PROTO_ENUMS[cls]
    try:
        name = str(proto_enum.Name(number)).removeprefix(prefix)
        return cls[name]
    except (ValueError, KeyError):
        return None


def enum_to_proto(member: StrEnum | None) -> int:
    """The protobuf enum number of an SDK enum member (None: 0, UNSPECIFIED)."""
    if member is None:
        return 0
    proto_enum, prefix = _PROTO_ENUMS[type(member)]
    return int(proto_enum.Value(prefix + member.name))


def parse_enum(cls: type[E], value: E | str | None, what: str) -> E | None:
    """A member of `cls` from itself or its value (`"high"`), case-insensitive."""
    if value is None or isinstance(value, cls):
        return value
    try:
        return cls(str(value).lower())
    except ValueError:
        choices = ", ".join(m.value for m in cls)
        raise InvalidArgumentError.of(what, f"must be one of {choices}, got {value!r}") from None


def time(stamp: Timestamp) -> datetime | None:
    """A timestamp as an aware UTC datetime; None when unset."""
    if not stamp.seconds and not stamp.nanos:
        return None
    return stamp.ToDatetime(tzinfo=UTC)


def _state(number: int) -> JobState:
    return enum_from_proto(JobState, number) or JobState.PENDING


def progress(p: pb.Progress) -> Progress:
    return Progress(
        percentage=p.percentage,
        current_step=p.current_step,
        total_steps=p.total_steps,
        step_name=p.step_name,
        message=p.message,
        updated_at=time(p.updated_at),
    )


def job_error(e: pb.JobError) -> JobError:
    return JobError(
        category=enum_from_proto(ErrorCategory, e.category),
        message=e.message,
        step_index=e.step_index if e.step_index >= 0 else None,
        retryable=e.retryable,
    )


def step_result(s: pb.StepResult) -> StepResult:
    return StepResult(
        index=s.index,
        name=s.name,
        success=s.success,
        skipped=s.skipped,
        duration_ms=s.duration_ms,
        error=s.error,
        artifacts=tuple(s.artifacts),
        console_errors=tuple(s.console_errors),
        failed_requests=tuple(s.failed_requests),
        http_status=s.http_status,
    )


def job_result(r: pb.JobResult) -> JobResult:
    return JobResult(
        success=r.success,
        steps=tuple(step_result(s) for s in r.steps),
        execution_time_ms=r.execution_time_ms,
        worker_id=r.worker_id,
        attempt=r.attempt,
        total_attempts=r.total_attempts,
        started_at=time(r.started_at),
        completed_at=time(r.completed_at),
        artifacts=tuple(r.artifacts),
        error=job_error(r.error) if r.HasField("error") else None,
        artifact_notes=tuple(r.artifact_notes),
    )


def job(j: pb.Job) -> Job:
    return Job(
        id=j.job_id,
        state=_state(j.state),
        priority=enum_from_proto(Priority, j.priority) or Priority.MEDIUM,
        name=j.name,
        tags=tuple(j.tags),
        progress=progress(j.progress),
        result=job_result(j.result) if j.HasField("result") else None,
        error=job_error(j.error) if j.HasField("error") else None,
        attempt=j.attempt,
        max_attempts=j.max_attempts,
        runs=j.runs,
        timeout_ms=j.timeout_ms,
        tenant=j.tenant_id,
        worker_id=j.worker_id,
        user_id=j.user_id,
        request_id=j.request_id,
        source=enum_from_proto(JobSource, j.source),
        created_at=time(j.created_at) or EPOCH,  # set by the API on every job; never None
        started_at=time(j.started_at),
        finished_at=time(j.finished_at),
        scheduled_for=time(j.scheduled_for),
        schedule_id=j.schedule_id,
        fire_time=time(j.fire_time),
    )


def job_page(reply: pb.ListJobsResponse) -> Page[Job]:
    return Page(tuple(job(j) for j in reply.jobs), reply.next_page_token, reply.partial)


def progress_event(e: pb.ProgressEvent) -> ProgressEvent:
    return ProgressEvent(
        job_id=e.job_id,
        cursor=e.cursor,
        state=_state(e.state),
        progress=progress(e.progress),
        attempt=e.attempt,
        terminal=e.terminal,
    )


def artifacts(reply: pb.ListArtifactsResponse) -> list[Artifact]:
    return [
        Artifact(
            name=a.name,
            content_type=a.content_type,
            size_bytes=a.size_bytes,
            attempt=a.attempt,
            step_index=a.step_index if a.step_index >= 0 else None,
            created_at=time(a.created_at),
        )
        for a in reply.artifacts
    ]


def _figures(s: pb.QueueStats | pb.LaneStats) -> dict[str, Any]:
    return {
        "waiting": s.waiting,
        "active": s.active,
        "completed": s.completed,
        "failed": s.failed,
        "delayed": s.delayed,
        "dead_lettered": s.dead_lettered,
        "paused": s.paused,
        "total_processed": s.total_processed,
        "total_failed": s.total_failed,
        "cancelled": s.cancelled,
        "total_cancelled": s.total_cancelled,
        "processing_rate": s.processing_rate,
        "avg_processing_time": s.avg_processing_time,
        "last_processed_at": time(s.last_processed_at),
    }


def queue_stats(s: pb.QueueStats) -> QueueStats:
    lanes = tuple(LaneStats(priority=enum_from_proto(Priority, lane.priority), **_figures(lane)) for lane in s.lanes)
    return QueueStats(queue=s.queue, tenant=s.tenant, lanes=lanes, **_figures(s))


def queue_health(h: pb.QueueHealth) -> QueueHealth:
    return QueueHealth(
        status=enum_from_proto(HealthStatus, h.status),
        reasons=tuple(h.reasons),
        stats=queue_stats(h.stats) if h.HasField("stats") else None,
    )


def queue_state(s: pb.QueueState) -> QueueState:
    return QueueState(queue=s.queue, paused=s.paused)


def dead_letter(d: pb.DeadLetter) -> DeadLetter:
    return DeadLetter(
        job_id=d.job_id,
        name=d.name,
        reason=d.reason,
        error=job_error(d.error) if d.HasField("error") else None,
        attempts=d.attempts,
        artifacts=tuple(d.artifacts),
        tags=tuple(d.tags),
        dead_lettered_at=time(d.dead_lettered_at),
    )


def dead_letter_page(reply: pb.ListDeadLettersResponse) -> Page[DeadLetter]:
    return Page(tuple(dead_letter(d) for d in reply.dead_letters), reply.next_page_token)


def queue_event(e: pb.QueueEvent) -> QueueEvent:
    return QueueEvent(
        cursor=e.cursor,
        kind=e.kind,
        job_id=e.job_id,
        state=enum_from_proto(JobState, e.state),
        time=time(e.time),
        message=e.message,
        tags=tuple(e.tags),
    )


def run_test(t: pb.RunTestResult) -> RunTest:
    return RunTest(
        job_id=t.job_id,
        name=t.name,
        file=t.file,
        state=_state(t.state),
        duration_ms=t.duration_ms,
        attempt=t.attempt,
        failing_step=t.failing_step if t.failing_step >= 0 else None,
        failing_step_name=t.failing_step_name,
        error=job_error(t.error) if t.HasField("error") else None,
        artifacts=tuple(t.artifacts),
        steps=tuple(step_result(s) for s in t.steps),
        artifact_notes=tuple(t.artifact_notes),
        finished_at=time(t.finished_at),
        tags=tuple(t.tags),
    )


def run(r: pb.Run) -> Run:
    counts = {state: getattr(r.counts, state.value) for state in JobState}
    return Run(
        id=r.run_id,
        name=r.name,
        state=enum_from_proto(RunState, r.state) or RunState.RUNNING,
        tests=tuple(run_test(t) for t in r.tests),
        counts=counts,
        max_parallel=r.max_parallel,
        tenant=r.tenant_id,
        created_at=time(r.created_at),
        finished_at=time(r.finished_at),
    )


def run_event(e: pb.RunEvent) -> ProgressEvent | Run:
    """A test's progress event, or (the last event) the finished run."""
    return run(e.finished) if e.WhichOneof("event") == "finished" else progress_event(e.progress)


def notification(n: pb.Notification) -> Notification:
    return Notification(
        url=n.url,
        events=tuple(n.events),
        secret_set=n.secret_set,
        after_failures=n.after_failures or 1,
        format=n.format or "sentinel",
    )


def alert_rule(r: pb.AlertRule) -> AlertRule:
    return AlertRule(
        id=r.rule_id,
        tag=r.tag,
        notifications=tuple(notification(n) for n in r.notifications),
        tenant=r.tenant_id,
        created_at=time(r.created_at),
    )


def delivery(d: pb.Delivery) -> Delivery:
    return Delivery(
        id=d.delivery_id,
        event=d.event,
        url=d.url,
        job_id=d.job_id,
        schedule_id=d.schedule_id,
        rule_id=d.rule_id,
        state=enum_from_proto(DeliveryState, d.state),
        attempts=d.attempts,
        response_status=d.response_status,
        response_body=d.response_body,
        error=d.error,
        body=d.body,
        created_at=time(d.created_at),
        last_attempt_at=time(d.last_attempt_at),
        next_attempt_at=time(d.next_attempt_at),
    )
