"""The executor's Run call as protobuf: the job handed over, and the progress and end it streams back.

The job travels as the fields of its stored record (`shared.codec`), so the executor decodes it
exactly as a job it claims from the queue. The inbound halves of results, errors and progress
live here because only a direct run reads them back from protobuf. No grpc here.
"""

from __future__ import annotations

from collections.abc import Mapping

from google.protobuf.timestamp_pb2 import Timestamp

from protos import sentinel_pb2 as pb
from shared import codec
from shared.edge.convert_enums import error_category_from_proto, state_from_proto, state_to_proto
from shared.edge.convert_jobs import job_error_to_proto, progress_to_proto, result_to_proto, timestamp
from shared.errors import DecodeError
from shared.model import ErrorCategory, Job, JobError, JobResult, Progress, RunEnd, StepResult


def run_request_to_proto(fields: Mapping[str, str], trace: str) -> pb.RunJobRequest:
    """A Run request for the job whose record is `fields` (as `shared.codec` writes it)."""
    return pb.RunJobRequest(job=dict(fields), trace=trace)


def job_from_run_request(request: pb.RunJobRequest) -> Job:
    """The job a Run request carries; DecodeError when its record is malformed."""
    return codec.job_from_hash(dict(request.job))


def run_end_to_proto(end: RunEnd) -> pb.RunJobEnd:
    return pb.RunJobEnd(
        state=state_to_proto(end.state),
        progress=progress_to_proto(end.progress),
        result=result_to_proto(end.result) if end.result is not None else None,
        error=job_error_to_proto(end.error) if end.error is not None else None,
        retry_at=timestamp(end.due_ms),
        worker_id=end.worker_id,
    )


def run_end_from_proto(end: pb.RunJobEnd) -> RunEnd:
    state = state_from_proto(end.state)
    if state is None:
        raise DecodeError("a Run's end carries no job state")
    return RunEnd(
        state=state,
        progress=progress_from_proto(end.progress),
        result=result_from_proto(end.result) if end.HasField("result") else None,
        error=job_error_from_proto(end.error) if end.HasField("error") else None,
        due_ms=_ms(end.retry_at) if end.HasField("retry_at") else 0,
        execution_ms=end.result.execution_time_ms,
        worker_id=end.worker_id,
    )


def progress_from_proto(progress: pb.Progress) -> Progress:
    return Progress(
        percentage=progress.percentage,
        current_step=progress.current_step,
        total_steps=progress.total_steps,
        step_name=progress.step_name,
        message=progress.message,
        updated_at_ms=_ms(progress.updated_at) if progress.HasField("updated_at") else 0,
    )


def result_from_proto(result: pb.JobResult) -> JobResult:
    return JobResult(
        success=result.success,
        steps=tuple(_step_from_proto(s) for s in result.steps),
        execution_time_ms=result.execution_time_ms,
        worker_id=result.worker_id,
        attempt=result.attempt,
        total_attempts=result.total_attempts,
        started_at_ms=_ms(result.started_at) if result.HasField("started_at") else 0,
        completed_at_ms=_ms(result.completed_at) if result.HasField("completed_at") else 0,
        artifacts=tuple(result.artifacts),
        error=job_error_from_proto(result.error) if result.HasField("error") else None,
        artifact_notes=tuple(result.artifact_notes),
    )


def job_error_from_proto(error: pb.JobError) -> JobError:
    # UNSPECIFIED is a cancel's (no category); a number this side does not know is UNKNOWN.
    category = None
    if error.category != pb.ERROR_CATEGORY_UNSPECIFIED:
        category = error_category_from_proto(error.category) or ErrorCategory.UNKNOWN
    return JobError(
        category=category,
        message=error.message,
        step_index=error.step_index,
        retryable=error.retryable,
    )


def _step_from_proto(step: pb.StepResult) -> StepResult:
    return StepResult(
        index=step.index,
        name=step.name,
        success=step.success,
        duration_ms=step.duration_ms,
        error=step.error,
        artifacts=tuple(step.artifacts),
        skipped=step.skipped,
        console_errors=tuple(step.console_errors),
        failed_requests=tuple(step.failed_requests),
    )


def _ms(stamp: Timestamp) -> int:
    return stamp.ToMilliseconds()
