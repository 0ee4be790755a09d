"""Jobs, progress, results and errors as protobuf: the API's outbound half of its conversions.

Split out of `shared.edge.convert` (which re-exports everything here) to keep both modules small;
other code imports these from `shared.edge.convert`. It only reads domain values stored earlier,
so it clamps a figure out of protobuf's range rather than fail a status call. No grpc here.
"""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from protos import sentinel_pb2 as pb
from shared.edge.convert_enums import (
    error_category_to_proto,
    priority_to_proto,
    source_to_proto,
    state_to_proto,
)
from shared.errors import FieldViolation
from shared.model import Job, JobError, JobResult, Progress, ProgressEvent, StepResult

_UINT32_MAX = 2**32 - 1
_INT32_MAX = 2**31 - 1


def job_to_proto(job: Job) -> pb.Job:
    """A job as the API shows it; times of 0 ms stay unset."""
    return pb.Job(
        job_id=job.job_id,
        state=state_to_proto(job.state),
        priority=priority_to_proto(job.options.priority),
        progress=progress_to_proto(job.progress),
        result=result_to_proto(job.result) if job.result is not None else None,
        attempt=_u32(job.attempt),
        max_attempts=_u32(job.max_attempts),
        tenant_id=job.metadata.tenant_id,
        name=job.definition.name,
        tags=job.options.tags,
        created_at=timestamp(job.metadata.created_at_ms),
        started_at=timestamp(job.started_at_ms),
        finished_at=timestamp(job.finished_at_ms),
        worker_id=job.worker_id,
        error=job_error_to_proto(job.error) if job.error is not None else None,
        user_id=job.metadata.user_id,
        request_id=job.metadata.request_id,
        source=source_to_proto(job.metadata.source),
        timeout_ms=_u32(job.timeout_ms),
        scheduled_for=timestamp(job.scheduled_for_ms),
        run_id=job.metadata.run_id,
        schedule_id=job.metadata.schedule_id,
        fire_time=timestamp(job.metadata.fire_time_ms),
        runs=_u32(job.runs),
    )


def progress_to_proto(progress: Progress) -> pb.Progress:
    """A progress snapshot as protobuf."""
    return pb.Progress(
        percentage=_u32(progress.percentage),
        current_step=_u32(progress.current_step),
        total_steps=_u32(progress.total_steps),
        step_name=progress.step_name,
        message=progress.message,
        updated_at=timestamp(progress.updated_at_ms),
    )


def progress_event_to_proto(ev: ProgressEvent) -> pb.ProgressEvent:
    """One entry of a job's progress stream as protobuf."""
    return pb.ProgressEvent(
        job_id=ev.job_id,
        cursor=ev.cursor,
        state=state_to_proto(ev.state),
        progress=progress_to_proto(ev.progress),
        attempt=_u32(ev.attempt),
        terminal=ev.terminal,
    )


def result_to_proto(result: JobResult) -> pb.JobResult:
    """A job's result, with every step's outcome, as protobuf."""
    return pb.JobResult(
        success=result.success,
        steps=[step_result_to_proto(step) for step in result.steps],
        execution_time_ms=_u32(result.execution_time_ms),
        worker_id=result.worker_id,
        attempt=_u32(result.attempt),
        total_attempts=_u32(result.total_attempts),
        started_at=timestamp(result.started_at_ms),
        completed_at=timestamp(result.completed_at_ms),
        artifacts=result.artifacts,
        error=job_error_to_proto(result.error) if result.error is not None else None,
        artifact_notes=result.artifact_notes,
    )


def step_result_to_proto(step: StepResult) -> pb.StepResult:
    """One step's outcome as protobuf."""
    return pb.StepResult(
        name=step.name,
        success=step.success,
        duration_ms=_u32(step.duration_ms),
        error=step.error,
        artifacts=step.artifacts,
        index=_u32(step.index),
        skipped=step.skipped,
        console_errors=step.console_errors,
        failed_requests=step.failed_requests,
        http_status=step.http_status,
    )


def job_error_to_proto(error: JobError) -> pb.JobError:
    """A categorized job error as protobuf."""
    return pb.JobError(
        category=error_category_to_proto(error.category) if error.category else pb.ERROR_CATEGORY_UNSPECIFIED,
        message=error.message,
        step_index=max(-1, min(error.step_index, _INT32_MAX)),
        retryable=error.retryable,
    )


def dead_letter_to_proto(job: Job) -> pb.DeadLetter:
    """A dead-lettered job as its DeadLetter record."""
    return pb.DeadLetter(
        job_id=job.job_id,
        reason=job.dead_letter_reason,
        error=job_error_to_proto(job.error) if job.error else None,
        attempts=_u32(job.attempt),
        artifacts=job.result.artifacts if job.result else (),
        dead_lettered_at=timestamp(job.dead_lettered_at_ms),
        tags=job.options.tags,
        name=job.definition.name,
    )


def violations_to_proto(violations: list[FieldViolation]) -> list[pb.FieldViolation]:
    """Field violations as protobuf, in the same order."""
    return [pb.FieldViolation(field=v.field, description=v.description) for v in violations]


def _u32(value: int) -> int:
    # A stored figure out of uint32 range must not make a status call fail: show it clamped.
    return max(0, min(value, _UINT32_MAX))


def timestamp(ms: int) -> Timestamp | None:
    if ms <= 0:
        return None
    stamp = Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp
