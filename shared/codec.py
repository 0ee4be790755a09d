"""Encoding of domain values for Redis: job hashes, progress entries and stream fields.

The only module that knows how a `Job` looks in Redis; the fields are named in `shared.schema`.
Definitions, options, results and errors are stored as compact JSON inside the job hash; scalars
as plain strings. Any malformed value raises `DecodeError(...) from exc` naming what was bad.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import fields, is_dataclass, replace
from typing import Any

import orjson

from shared.actions import build
from shared.errors import DecodeError
from shared.model import (
    ACTIONS,
    Action,
    ArtifactPolicy,
    ErrorCategory,
    Job,
    JobError,
    JobMetadata,
    JobOptions,
    JobResult,
    JobSource,
    JobState,
    Priority,
    Progress,
    ProgressEvent,
    Step,
    StepResult,
    TestDefinition,
    Viewport,
)
from shared.schema import EntryField, JobField, ProgressField

RawHash = Mapping[str, str]


def dumps(value: Any) -> str:
    """Compact JSON, UTF-8 as it is (orjson: the executor encodes a script context or a result per
    call; str enums as their values, as json would)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


#: Each dataclass's field names, in order (all of them: `kind` of an action is not an init field).
_FIELDS: dict[type[Any], tuple[str, ...]] = {}


def _fields_of(value: Any) -> dict[str, Any]:
    """A dataclass as the object of its fields, for orjson: `asdict`'s shape, one level at a time
    (orjson comes back here for a nested one), without asdict's deep copy of every value."""
    cls = type(value)
    names = _FIELDS.get(cls)
    if names is None:
        if not is_dataclass(cls):
            raise TypeError(f"{cls.__name__} is not JSON serializable")
        names = _FIELDS[cls] = tuple(f.name for f in fields(cls))
    return {name: getattr(value, name) for name in names}


def dumps_dataclasses(value: Any) -> str:
    """`dumps` of `value`, where each dataclass in it is written as `asdict` would write it."""
    option = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS
    return orjson.dumps(value, default=_fields_of, option=option).decode()


def _loads(raw: str, what: str) -> Any:
    try:
        return orjson.loads(raw)
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"{what} is not valid JSON: {raw[:80]!r}") from exc


# --- definition ------------------------------------------------------------------------------


def action_from_dict(data: Mapping[str, Any]) -> Action:
    kind = data.get("kind")
    cls = ACTIONS.get(str(kind))
    if cls is None:
        raise DecodeError(f"unknown step action {kind!r}")
    try:
        return build(cls, data)
    except (TypeError, ValueError, AttributeError) as exc:
        raise DecodeError(f"malformed {kind} action: {exc}") from exc


def definition_to_json(definition: TestDefinition) -> str:
    return dumps_dataclasses(
        {
            "name": definition.name,
            "base_url": definition.base_url,
            "viewport": definition.viewport,
            "steps": [_step_to_dict(s) for s in definition.steps],
        }
    )


def _step_to_dict(step: Step) -> dict[str, Any]:
    out: dict[str, Any] = {"name": step.name, "timeout_ms": step.timeout_ms, "action": step.action}
    if step.frames:  # absent otherwise: a definition without frames is stored as it always was
        out["frames"] = step.frames
    return out


#: Decoded definitions kept per process, by their JSON (see `definition_from_json`), and the longest
#: JSON kept: at most ~256 × 32 KB of text and what it decodes to.
DEFINITIONS_KEPT = 256
DEFINITION_KEPT_MAX_CHARS = 32_768


def definition_from_json(raw: str) -> TestDefinition:
    """The definition stored as `raw`.

    Decoded once per process for the same JSON (up to DEFINITION_KEPT_MAX_CHARS), and the same object
    handed out after: the jobs of a batch, the reruns of a test and a schedule's runs share their
    definition's JSON byte for byte (not those with secrets: each job seals its own). A definition
    is an immutable value: nothing changes one in place (`shared.actions.with_secrets` makes a new
    one).

    Raises:
        DecodeError: `raw` is not a definition (not remembered: each call raises anew).
    """
    return _kept_definition(raw) if len(raw) <= DEFINITION_KEPT_MAX_CHARS else _decode_definition(raw)


def _decode_definition(raw: str) -> TestDefinition:
    data = _loads(raw, "definition")
    try:
        viewport = data.get("viewport")
        return TestDefinition(
            name=str(data["name"]),
            base_url=str(data.get("base_url", "")),
            viewport=Viewport(int(viewport["width"]), int(viewport["height"])) if viewport else None,
            steps=tuple(
                Step(
                    name=str(s.get("name", "")),
                    timeout_ms=int(s.get("timeout_ms", 0)),
                    action=action_from_dict(s["action"]) if s.get("action") else None,
                    frames=tuple(str(f) for f in s.get("frames", ())),
                )
                for s in data["steps"]
            ),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DecodeError(f"malformed definition: {exc!r}") from exc


_kept_definition = functools.lru_cache(maxsize=DEFINITIONS_KEPT)(_decode_definition)


# --- options, errors, results ----------------------------------------------------------------


def options_to_json(options: JobOptions) -> str:
    return dumps_dataclasses(options)  # its str enums as their values


def options_from_json(raw: str) -> JobOptions:
    data = _loads(raw, "options")
    try:
        return JobOptions(
            priority=Priority(data["priority"]),
            timeout_ms=int(data["timeout_ms"]),
            tags=tuple(data["tags"]),
            max_attempts=int(data["max_attempts"]),
            delay_ms=int(data["delay_ms"]),
            idempotency_key=str(data["idempotency_key"]),
            backoff_ms=int(data["backoff_ms"]),
            artifact_policy=ArtifactPolicy(data["artifact_policy"]),
            record_video=bool(data.get("record_video", False)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DecodeError(f"malformed options: {exc!r}") from exc


def error_to_dict(error: JobError) -> dict[str, Any]:
    return {
        "category": error.category.value if error.category is not None else "",  # "": a cancel
        "message": error.message,
        "step_index": error.step_index,
        "retryable": error.retryable,
    }


def error_from_dict(data: Mapping[str, Any]) -> JobError:
    try:
        return JobError(
            category=ErrorCategory(data["category"]) if data["category"] else None,
            message=str(data["message"]),
            step_index=int(data.get("step_index", -1)),
            retryable=bool(data.get("retryable", False)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DecodeError(f"malformed error: {exc!r}") from exc


def error_to_json(error: JobError) -> str:
    return dumps(error_to_dict(error))


def error_from_json(raw: str) -> JobError:
    return error_from_dict(_loads(raw, "error"))


def _step_result_to_dict(step: StepResult) -> dict[str, Any]:
    return {
        "index": step.index,
        "name": step.name,
        "success": step.success,
        "duration_ms": step.duration_ms,
        "error": step.error,
        "artifacts": list(step.artifacts),
        "skipped": step.skipped,
        "console_errors": list(step.console_errors),
        "failed_requests": list(step.failed_requests),
        "http_status": step.http_status,
    }


def result_to_json(result: JobResult) -> str:
    # Spelled out rather than dataclasses.asdict, which deep-copies every value: a result is
    # encoded once per run, on the executor's hot path.
    return dumps(
        {
            "success": result.success,
            "steps": [_step_result_to_dict(s) for s in result.steps],
            "execution_time_ms": result.execution_time_ms,
            "worker_id": result.worker_id,
            "attempt": result.attempt,
            "total_attempts": result.total_attempts,
            "started_at_ms": result.started_at_ms,
            "completed_at_ms": result.completed_at_ms,
            "artifacts": list(result.artifacts),
            "error": error_to_dict(result.error) if result.error else None,
            "artifact_notes": list(result.artifact_notes),
        }
    )


def result_from_json(raw: str) -> JobResult:
    data = _loads(raw, "result")
    try:
        return JobResult(
            success=bool(data["success"]),
            steps=tuple(
                StepResult(
                    index=int(s["index"]),
                    name=str(s["name"]),
                    success=bool(s["success"]),
                    duration_ms=int(s["duration_ms"]),
                    error=str(s["error"]),
                    artifacts=tuple(s["artifacts"]),
                    skipped=bool(s.get("skipped", False)),
                    console_errors=tuple(s.get("console_errors", ())),
                    failed_requests=tuple(s.get("failed_requests", ())),
                    http_status=int(s.get("http_status", 0)),
                )
                for s in data["steps"]
            ),
            execution_time_ms=int(data["execution_time_ms"]),
            worker_id=str(data["worker_id"]),
            attempt=int(data["attempt"]),
            total_attempts=int(data["total_attempts"]),
            started_at_ms=int(data["started_at_ms"]),
            completed_at_ms=int(data["completed_at_ms"]),
            artifacts=tuple(data["artifacts"]),
            error=error_from_dict(data["error"]) if data.get("error") else None,
            artifact_notes=tuple(data.get("artifact_notes", ())),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DecodeError(f"malformed result: {exc!r}") from exc


# --- progress --------------------------------------------------------------------------------


def progress_fields(progress: Progress) -> dict[str, str]:
    """Progress as flat string fields (used in the job hash and in progress stream entries)."""
    return {
        ProgressField.PCT: str(progress.percentage),
        ProgressField.CUR: str(progress.current_step),
        ProgressField.TOTAL: str(progress.total_steps),
        ProgressField.STEP: progress.step_name,
        ProgressField.MSG: progress.message,
        ProgressField.TS: str(progress.updated_at_ms),
    }


def progress_from_fields(raw: RawHash) -> Progress:
    try:
        return Progress(
            percentage=int(raw.get(ProgressField.PCT, 0)),
            current_step=int(raw.get(ProgressField.CUR, 0)),
            total_steps=int(raw.get(ProgressField.TOTAL, 0)),
            step_name=raw.get(ProgressField.STEP, ""),
            message=raw.get(ProgressField.MSG, ""),
            updated_at_ms=int(raw.get(ProgressField.TS, 0)),
        )
    except ValueError as exc:
        raise DecodeError(f"malformed progress fields: {dict(raw)!r}") from exc


def progress_event_from_entry(job_id: str, entry_id: str, raw: RawHash) -> ProgressEvent:
    try:
        return ProgressEvent(
            job_id=job_id,
            cursor=entry_id,
            state=JobState(raw[EntryField.STATE]),
            progress=progress_from_fields(raw),
            attempt=int(raw.get(EntryField.ATTEMPT, 0)),
            terminal=raw.get(EntryField.TERMINAL) == "1",
        )
    except (KeyError, ValueError) as exc:
        raise DecodeError(f"malformed progress entry {entry_id} of job {job_id}") from exc


# --- the job hash ----------------------------------------------------------------------------


def new_job_fields(
    *,
    job_id: str,
    state: JobState,
    definition: TestDefinition,
    options: JobOptions,
    metadata: JobMetadata,
    max_attempts: int,
    timeout_ms: int,
    scheduled_for_ms: int,
    progress: Progress,
    trace: str = "",
) -> dict[str, str]:
    """The fields of a new job's hash."""
    return {
        JobField.ID: job_id,
        JobField.STATE: state.value,
        JobField.PRIORITY: options.priority.value,
        JobField.NAME: definition.name,
        JobField.DEFINITION: definition_to_json(definition),
        JobField.OPTIONS: options_to_json(options),
        JobField.TAGS: dumps(list(options.tags)),
        JobField.TENANT: metadata.tenant_id,
        JobField.USER: metadata.user_id,
        JobField.REQUEST: metadata.request_id,
        JobField.SOURCE: metadata.source.value,
        JobField.CREATED: str(metadata.created_at_ms),
        JobField.RUN: metadata.run_id,
        JobField.SCHEDULE: metadata.schedule_id,
        JobField.FIRE: str(metadata.fire_time_ms),
        JobField.TRACE: trace,
        JobField.ATTEMPT: "0",
        JobField.MAX_ATTEMPTS: str(max_attempts),
        JobField.TIMEOUT_MS: str(timeout_ms),
        JobField.DUE: str(scheduled_for_ms),
        JobField.FENCE: "0",
        **progress_fields(progress),
    }


def job_fields(job: Job, *, trace: str = "") -> dict[str, str]:
    """The whole hash of `job` as it stands now: a job that ran elsewhere, recorded afterwards
    (a direct job written into Redis in hybrid mode)."""
    fields = new_job_fields(
        job_id=job.job_id,
        state=job.state,
        definition=job.definition,
        options=job.options,
        metadata=job.metadata,
        max_attempts=job.max_attempts,
        timeout_ms=job.timeout_ms,
        scheduled_for_ms=job.scheduled_for_ms,
        progress=job.progress,
        trace=trace,
    )
    fields.update(
        {
            JobField.ATTEMPT: str(job.attempt),
            JobField.TRIES: str(job.tries),
            JobField.STARTED: str(job.started_at_ms),
            JobField.FINISHED: str(job.finished_at_ms),
            JobField.WORKER: job.worker_id,
        }
    )
    if job.result is not None:
        fields[JobField.RESULT] = result_to_json(job.result)
    if job.error is not None:
        fields[JobField.ERROR] = error_to_json(job.error)
    return fields


def _int_field(raw: RawHash, name: JobField) -> int:
    value = raw.get(name, "0") or "0"
    try:
        return int(value)
    except ValueError as exc:
        raise DecodeError(f"job field {str(name)!r} is not an integer: {value!r}") from exc


def job_from_hash(raw: RawHash) -> Job:
    """Decode a job hash (HGETALL, decoded to str) into a `Job`."""
    try:
        job_id = raw[JobField.ID]
        state = JobState(raw[JobField.STATE])
        source = JobSource(raw.get(JobField.SOURCE) or "api")
    except (KeyError, ValueError) as exc:
        raise DecodeError(f"malformed job hash: {exc!r}") from exc
    result_raw = raw.get(JobField.RESULT, "")
    error_raw = raw.get(JobField.ERROR, "")
    return Job(
        job_id=job_id,
        state=state,
        definition=definition_from_json(raw.get(JobField.DEFINITION, "")),
        options=_current_options(raw),
        metadata=JobMetadata(
            tenant_id=raw.get(JobField.TENANT, ""),
            user_id=raw.get(JobField.USER, ""),
            request_id=raw.get(JobField.REQUEST, ""),
            source=source,
            created_at_ms=_int_field(raw, JobField.CREATED),
            run_id=raw.get(JobField.RUN, ""),
            schedule_id=raw.get(JobField.SCHEDULE, ""),
            fire_time_ms=_int_field(raw, JobField.FIRE),
        ),
        attempt=_int_field(raw, JobField.ATTEMPT),
        tries=_int_field(raw, JobField.TRIES),
        max_attempts=_int_field(raw, JobField.MAX_ATTEMPTS),
        timeout_ms=_int_field(raw, JobField.TIMEOUT_MS),
        progress=progress_from_fields(raw),
        result=result_from_json(result_raw) if result_raw else None,
        error=error_from_json(error_raw) if error_raw else None,
        started_at_ms=_int_field(raw, JobField.STARTED),
        finished_at_ms=_int_field(raw, JobField.FINISHED),
        scheduled_for_ms=_int_field(raw, JobField.DUE),
        worker_id=raw.get(JobField.WORKER, ""),
        dead_letter_reason=raw.get(JobField.DEAD_LETTER_REASON, ""),
        dead_lettered_at_ms=_int_field(raw, JobField.DEAD_LETTERED_AT),
    )


def _current_options(raw: RawHash) -> JobOptions:
    """The job's options, with the lane it is in now (a requeue may have moved it)."""
    options = options_from_json(raw.get(JobField.OPTIONS, ""))
    lane = raw.get(JobField.PRIORITY, "")
    if lane and lane != options.priority.value:
        try:
            options = replace(options, priority=Priority(lane))
        except ValueError as exc:
            raise DecodeError(f"job field {str(JobField.PRIORITY)!r} is not a priority: {lane!r}") from exc
    return options
