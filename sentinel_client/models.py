"""What the SDK hands back: frozen dataclasses and string enums, never protobuf messages.

Enum values are the lowercase names the CLI and the README use (`JobState.COMPLETED == "completed"`),
times are timezone-aware `datetime`s in UTC (None when unset; a job's `created_at` is always set),
durations are milliseconds (`*_ms`). Every field has a default, so tests can build the values they
need. Nothing here touches grpc or protobuf: `sentinel_client._convert` fills these from the wire.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic, TypeVar

from sentinel_client._files import artifact_path

T = TypeVar("T")
#: `Job.created_at` of a job built by hand (the API sets it on every job it makes, at the submit).
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class JobState(StrEnum):
    PENDING = "pending"  # waiting in its priority lane
    SCHEDULED = "scheduled"  # delayed: a retry waiting for its backoff, or a submit with delay_ms
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"

    @property
    def ended(self) -> bool:
        """A final state: the job will not run again unless retried."""
        return self in _ENDED


_ENDED = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.TIMEOUT, JobState.CANCELLED})


class Priority(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class ErrorCategory(StrEnum):
    NETWORK = "network"
    TIMEOUT = "timeout"
    BROWSER = "browser"
    SYSTEM = "system"
    VALIDATION = "validation"
    ASSERTION = "assertion"
    UNKNOWN = "unknown"
    POLICY = "policy"  # refused by the navigation guard; never retried


class ArtifactPolicy(StrEnum):
    ON_FAILURE = "on_failure"
    ALWAYS = "always"
    NEVER = "never"


class JobSource(StrEnum):
    API = "api"
    SCHEDULER = "scheduler"
    WEBHOOK = "webhook"


class HealthStatus(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


def _flaky(state: JobState, attempt: int, error: JobError | None) -> bool:
    """A job or a run's test that completed after a failed attempt: a completed job keeps the error
    of its last failed attempt."""
    return state is JobState.COMPLETED and attempt > 1 and error is not None


@dataclass(frozen=True)
class Progress:
    percentage: int = 0
    current_step: int = 0
    total_steps: int = 0
    step_name: str = ""
    message: str = ""
    updated_at: datetime | None = None


@dataclass(frozen=True)
class JobError:
    """Why a run failed, by category; `step_index` is None when no step was running."""

    category: ErrorCategory | None = None
    message: str = ""
    step_index: int | None = None
    retryable: bool = False


@dataclass(frozen=True)
class StepResult:
    index: int = 0
    name: str = ""
    success: bool = False
    skipped: bool = False  # not run because an earlier step failed
    duration_ms: int = 0
    error: str = ""
    artifacts: tuple[str, ...] = ()  # artifact names, "<attempt>/<file>"
    console_errors: tuple[str, ...] = ()
    failed_requests: tuple[str, ...] = ()
    http_status: int = 0  # a request or navigate step's final response status (0: none)


@dataclass(frozen=True)
class JobResult:
    success: bool = False
    steps: tuple[StepResult, ...] = ()
    execution_time_ms: int = 0
    worker_id: str = ""
    attempt: int = 0
    total_attempts: int = 0
    started_at: datetime | None = None
    completed_at: datetime | None = None
    artifacts: tuple[str, ...] = ()  # every artifact name of this attempt
    error: JobError | None = None
    artifact_notes: tuple[str, ...] = ()  # evidence that was not kept, and why


@dataclass(frozen=True)
class Job:
    """A job as the API last described it; `result` is None until a run has finished."""

    id: str = ""
    state: JobState = JobState.PENDING
    priority: Priority = Priority.MEDIUM
    name: str = ""
    tags: tuple[str, ...] = ()
    progress: Progress = Progress()
    result: JobResult | None = None
    error: JobError | None = None
    attempt: int = 0  # restarts at 1 when the job is run again (retry)
    max_attempts: int = 0
    runs: int = 0  # every attempt and every rerun counted: the newest artifacts are under "<runs>/"
    timeout_ms: int = 0
    tenant: str = ""
    worker_id: str = ""
    user_id: str = ""
    request_id: str = ""
    source: JobSource | None = None
    created_at: datetime = EPOCH  # when it was submitted: set on every job the API describes
    started_at: datetime | None = None
    finished_at: datetime | None = None
    scheduled_for: datetime | None = None
    schedule_id: str = ""  # the schedule that fired it ("" = none)
    fire_time: datetime | None = None  # the schedule's fire time it runs for (None: not a fire, or a trigger)

    @property
    def ended(self) -> bool:
        """It is in a final state: it will not run again unless retried."""
        return self.state.ended

    @property
    def passed(self) -> bool:
        """It completed: every step passed."""
        return self.state is JobState.COMPLETED

    @property
    def flaky(self) -> bool:
        """It completed on a later attempt after an earlier one failed (Playwright Test's "flaky"):
        `error` is then the last failed attempt's, attempt `attempt - 1`."""
        return _flaky(self.state, self.attempt, self.error)


@dataclass(frozen=True)
class ProgressEvent:
    """One entry of a job's progress stream; `cursor` resumes the stream after it."""

    job_id: str = ""
    cursor: str = ""
    state: JobState = JobState.PENDING
    progress: Progress = Progress()
    attempt: int = 0
    terminal: bool = False  # the job's last event


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing (`list_jobs`); pass `next_page_token` for the next ("" on the last page)."""

    items: tuple[T, ...] = ()
    next_page_token: str = ""
    partial: str = ""  # not empty: why only part of what was asked for is listed (a hybrid API with Redis away)


class PartialListingWarning(UserWarning):
    """An iterated listing (`Client.jobs()`) is only part of what was asked for; the message says why
    (a hybrid API whose Redis is away lists only the jobs it ran itself). Warned at most once per
    iteration, which Python's default filters show once per place in the caller's code (a
    `warnings.simplefilter("always", PartialListingWarning)` shows every one); `list_jobs` says the
    same in `Page.partial`."""


@dataclass(frozen=True)
class Artifact:
    """A stored artifact of a job: a screenshot, the Playwright trace, a video."""

    name: str = ""  # "<run>/<file>", e.g. "1/step-04-failure.png"
    content_type: str = ""
    size_bytes: int = 0
    attempt: int = 0  # the job's run that made it (`Job.runs` then), reruns counted
    step_index: int | None = None  # the step that made it; None for the whole run
    created_at: datetime | None = None

    def path_in(self, directory: str | os.PathLike[str]) -> Path:
        """Where this artifact goes below `directory`: `<directory>/<run>/<file>`.

        Raises:
            InvalidArgumentError: the name is not `<run>/<file>` (it would leave `directory`).
        """
        return artifact_path(directory, self.name)


@dataclass(frozen=True)
class Figures:
    """A queue's or one lane's counts and rates (the same fields on both)."""

    waiting: int = 0
    active: int = 0
    completed: int = 0
    failed: int = 0  # failed and timed-out jobs kept
    delayed: int = 0
    dead_lettered: int = 0
    paused: bool = False
    total_processed: int = 0  # runs that ended, ever: completed, failed and cancelled
    total_failed: int = 0
    cancelled: int = 0  # cancelled jobs kept (a cancel is not a failure)
    total_cancelled: int = 0
    processing_rate: float = 0.0  # jobs per minute
    avg_processing_time: float = 0.0  # milliseconds
    last_processed_at: datetime | None = None


@dataclass(frozen=True)
class LaneStats(Figures):
    priority: Priority | None = None


@dataclass(frozen=True)
class QueueStats(Figures):
    queue: str = ""
    tenant: str = ""  # whose jobs these count; "" = the whole queue (auth disabled)
    lanes: tuple[LaneStats, ...] = ()


@dataclass(frozen=True)
class QueueHealth:
    status: HealthStatus | None = None
    reasons: tuple[str, ...] = ()
    stats: QueueStats | None = None


@dataclass(frozen=True)
class QueueState:
    queue: str = ""
    paused: bool = False


@dataclass(frozen=True)
class DeadLetter:
    job_id: str = ""
    name: str = ""
    reason: str = ""
    error: JobError | None = None
    attempts: int = 0
    artifacts: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    dead_lettered_at: datetime | None = None


@dataclass(frozen=True)
class QueueEvent:
    """One queue-wide event (`kind`: waiting, active, progress, completed, failed, paused, ...)."""

    cursor: str = ""
    kind: str = ""
    job_id: str = ""
    state: JobState | None = None
    time: datetime | None = None
    message: str = ""
    tags: tuple[str, ...] = ()


# --- runs ------------------------------------------------------------------------------------


class RunState(StrEnum):
    RUNNING = "running"
    PASSED = "passed"  # every test completed
    FAILED = "failed"  # every test ended, and some did not complete
    CANCELLED = "cancelled"

    @property
    def ended(self) -> bool:
        """Every test of the run has ended (or the run was cancelled)."""
        return self is not RunState.RUNNING


@dataclass(frozen=True)
class RunTest:
    """One test of a run: where it stands, or how it ended (kept with the run after the job is gone)."""

    job_id: str
    name: str
    file: str = ""
    state: JobState = JobState.PENDING
    duration_ms: int = 0
    attempt: int = 0
    failing_step: int | None = None  # the 0-based index of the step that failed
    failing_step_name: str = ""
    error: JobError | None = None
    artifacts: tuple[str, ...] = ()
    steps: tuple[StepResult, ...] = ()
    artifact_notes: tuple[str, ...] = ()
    finished_at: datetime | None = None
    tags: tuple[str, ...] = ()  # its job's, as the API merged them: its own and the run's, each once

    @property
    def passed(self) -> bool:
        """The test completed: every step passed."""
        return self.state is JobState.COMPLETED

    @property
    def flaky(self) -> bool:
        """It completed on a later attempt after an earlier one failed: `error` is that attempt's (`Job.flaky`)."""
        return _flaky(self.state, self.attempt, self.error)


@dataclass(frozen=True)
class Run:
    """A run: the tests of one suite, submitted together. `counts` maps each job state to its tests."""

    id: str
    name: str
    state: RunState
    tests: tuple[RunTest, ...] = ()
    counts: dict[JobState, int] = field(default_factory=dict)
    max_parallel: int = 0
    tenant: str = ""
    created_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def ended(self) -> bool:
        """Every test of the run has ended (or the run was cancelled)."""
        return self.state.ended

    @property
    def passed(self) -> bool:
        """Every test of the run completed."""
        return self.state is RunState.PASSED


# --- schedules -----------------------------------------------------------------------------------


class OverlapPolicy(StrEnum):
    """What a fire does while the schedule's previous run has not ended."""

    SKIP = "skip"  # the fire is skipped (the API's default)
    ALLOW = "allow"  # the fire runs beside the unfinished run
    BUFFER_ONE = "buffer_one"  # one fire waits and runs when the previous run ends; later ones are skipped


@dataclass(frozen=True)
class Notification:
    """A webhook of a schedule; its signing secret is never handed back (`secret_set` says one is set)."""

    url: str = ""
    events: tuple[str, ...] = ()
    secret_set: bool = False
    after_failures: int = 1  # `failed` at this many failures in a row, `recovered` only after such a run
    format: str = "sentinel"  # the body: Sentinel's JSON, or "text": {"text": ...} for chat incoming webhooks


@dataclass(frozen=True)
class ScheduleRun:
    """One of a schedule's latest fires: the job it started, or why it started none; or, first, the
    fire `buffer_one` holds until the running fire ends (`held`)."""

    job_id: str = ""
    fire_time: datetime | None = None  # a trigger: when it was triggered
    state: JobState | None = None  # the job's state now, or how it ended once gone (None: no job, or unknown)
    skipped: bool = False
    reason: str = ""  # why it was skipped, or "held: waits for the running fire to end"
    triggered: bool = False
    error: str = ""  # how a failed job failed: its error's first line
    removed: bool = False  # its job is gone (retention): `state` and `error` are the schedule's record

    @property
    def held(self) -> bool:
        """The fire `buffer_one` holds: it has no job yet and is not skipped (a pause drops it, as
        skipped)."""
        return not self.job_id and not self.skipped and not self.triggered


@dataclass(frozen=True)
class Schedule:
    """A test submitted again and again: by `cron` (5 fields, or 6 with seconds first) or every `interval_ms`."""

    id: str = ""
    name: str = ""
    cron: str = ""
    interval_ms: int = 0
    timezone: str = "UTC"
    jitter_ms: int = 0
    overlap: OverlapPolicy = OverlapPolicy.SKIP
    catchup_window_ms: int = 0
    paused: bool = False
    note: str = ""
    tenant: str = ""
    #: What each fire submits: the SubmitRequest as proto3 JSON (secret fill values sealed).
    template: dict[str, Any] = field(default_factory=dict)
    notifications: tuple[Notification, ...] = ()
    next_fires: tuple[datetime, ...] = ()
    recent_runs: tuple[ScheduleRun, ...] = ()  # newest first
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class AlertRule:
    """A tenant-wide alert: the `notifications` of every job tagged `tag` (secrets never handed back)."""

    id: str = ""
    tag: str = ""
    notifications: tuple[Notification, ...] = ()
    tenant: str = ""
    created_at: datetime | None = None


class DeliveryState(StrEnum):
    PENDING = "pending"  # not yet answered with 2xx; tried again with backoff
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # given up after the last attempt


@dataclass(frozen=True)
class Delivery:
    """One webhook delivery (of a schedule's notification or an alert rule's) and the receiver's answer."""

    id: str = ""
    event: str = ""  # failed, recovered, dead_lettered, ...
    url: str = ""
    job_id: str = ""
    schedule_id: str = ""  # the schedule whose notification it is ("" for a rule's)
    rule_id: str = ""  # the alert rule whose notification it is ("" for a schedule's)
    state: DeliveryState | None = None
    attempts: int = 0
    response_status: int = 0  # the last answer's HTTP status (0: none)
    response_body: str = ""  # the last answer's body, at most 1 KiB
    error: str = ""  # why the last attempt failed
    body: str = ""  # the JSON body sent
    created_at: datetime | None = None
    last_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = None
