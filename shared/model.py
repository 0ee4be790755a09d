"""Sentinel's domain types: test definitions, job options, jobs, progress and results.

These are plain frozen dataclasses and `str` enums. They never import protobuf or grpc: the
API converts protobuf to these at its edge (`shared.edge.convert`), and Redis sees them only
through `shared.codec`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

# The step actions are domain values too: importable from here like every other one.
from shared.actions import *  # noqa: F403
from shared.actions import Action


class Priority(enum.StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


#: Lanes in the order executors read them.
PRIORITY_ORDER: tuple[Priority, ...] = (Priority.HIGH, Priority.MEDIUM, Priority.LOW)


class JobState(enum.StrEnum):
    PENDING = "pending"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.TIMEOUT, JobState.CANCELLED})


class ErrorCategory(enum.StrEnum):
    NETWORK = "network"
    TIMEOUT = "timeout"
    BROWSER = "browser"
    SYSTEM = "system"
    VALIDATION = "validation"
    ASSERTION = "assertion"
    POLICY = "policy"
    UNKNOWN = "unknown"


class ArtifactPolicy(enum.StrEnum):
    ON_FAILURE = "on_failure"
    ALWAYS = "always"
    NEVER = "never"


class JobSource(enum.StrEnum):
    API = "api"
    SCHEDULER = "scheduler"
    WEBHOOK = "webhook"


# --- steps -----------------------------------------------------------------------------------
# The actions themselves, and the registry every layer reads them through, are in shared.actions.


@dataclass(frozen=True)
class Step:
    action: Action | None
    name: str = ""
    timeout_ms: int = 0
    #: The iframe the action's element is in: a selector of an <iframe> of the page, then of one in
    #: that frame's document, and so on (empty: the page itself). Only actions with a selector.
    frames: tuple[str, ...] = ()

    @property
    def display_name(self) -> str:
        """The step's name, or a short description of its action (and of the frame it acts in)."""
        if self.name:
            return self.name
        if self.action is None:
            return "(no action)"
        if self.frames:
            return f"{self.action.describe()} in frame {' » '.join(self.frames)}"
        return self.action.describe()


@dataclass(frozen=True)
class Viewport:
    width: int
    height: int


@dataclass(frozen=True)
class TestDefinition:
    name: str
    steps: tuple[Step, ...]
    base_url: str = ""
    viewport: Viewport | None = None

    __test__ = False  # not a pytest test class


@dataclass(frozen=True)
class JobOptions:
    """Options as the client asked for them; zero means "the server's default"."""

    priority: Priority = Priority.MEDIUM
    timeout_ms: int = 0
    tags: tuple[str, ...] = ()
    max_attempts: int = 0
    delay_ms: int = 0
    idempotency_key: str = ""
    backoff_ms: int = 0
    artifact_policy: ArtifactPolicy = ArtifactPolicy.ON_FAILURE
    record_video: bool = False


@dataclass(frozen=True)
class JobMetadata:
    tenant_id: str
    user_id: str = ""
    request_id: str = ""
    source: JobSource = JobSource.API
    created_at_ms: int = 0
    run_id: str = ""  # the run the job belongs to ("" = none)
    schedule_id: str = ""  # the schedule that fired it ("" = none)
    fire_time_ms: int = 0  # the schedule's fire time it runs for (0: none, or a TriggerSchedule)


@dataclass(frozen=True)
class SubmitCommand:
    """What one submit asks for, after the edge has turned it into domain values."""

    definition: TestDefinition
    options: JobOptions
    user_id: str = ""
    request_id: str = ""
    source: JobSource = JobSource.API
    schedule_id: str = ""  # set by the scheduler only (a fire or a TriggerSchedule)
    fire_time_ms: int = 0


# --- progress and results --------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    percentage: int = 0
    current_step: int = 0
    total_steps: int = 0
    step_name: str = ""
    message: str = ""
    updated_at_ms: int = 0


@dataclass(frozen=True)
class JobError:
    #: None for a cancel: nothing failed, so no failure category fits (the job's state says
    #: CANCELLED; the message says by whom). Shown as ERROR_CATEGORY_UNSPECIFIED / null.
    category: ErrorCategory | None
    message: str
    step_index: int = -1
    retryable: bool = False

    @property
    def headline(self) -> str:
        """The message's first line that says something, at most 300 characters ("" for none): what a
        schedule's history keeps and a chat alert shows."""
        return next((line.strip() for line in self.message.splitlines() if line.strip()), "")[:300]


@dataclass(frozen=True)
class StepResult:
    index: int
    name: str
    success: bool
    duration_ms: int = 0
    error: str = ""
    artifacts: tuple[str, ...] = ()
    skipped: bool = False
    console_errors: tuple[str, ...] = ()
    failed_requests: tuple[str, ...] = ()
    #: A request or navigate step's final response status (0: none, or another step).
    http_status: int = 0


@dataclass(frozen=True)
class JobResult:
    success: bool
    steps: tuple[StepResult, ...] = ()
    execution_time_ms: int = 0
    worker_id: str = ""
    attempt: int = 0
    total_attempts: int = 0
    started_at_ms: int = 0
    completed_at_ms: int = 0
    artifacts: tuple[str, ...] = ()
    error: JobError | None = None
    #: Evidence that was not kept, and why (a failed upload, a cap, an unredactable trace).
    artifact_notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Job:
    """A job as stored: what was asked, and where it stands."""

    job_id: str
    state: JobState
    definition: TestDefinition
    options: JobOptions
    metadata: JobMetadata
    attempt: int = 0
    max_attempts: int = 1
    #: Runs of the job ever: `attempt` restarts when the job is run again (Retry), this never does.
    tries: int = 0
    timeout_ms: int = 0
    progress: Progress = field(default_factory=Progress)
    result: JobResult | None = None
    error: JobError | None = None
    started_at_ms: int = 0
    finished_at_ms: int = 0
    scheduled_for_ms: int = 0
    worker_id: str = ""
    dead_letter_reason: str = ""
    dead_lettered_at_ms: int = 0

    @property
    def failure(self) -> JobError | None:
        """Why the job failed: its own error, else its last run's."""
        return self.error or (self.result.error if self.result is not None else None)

    @property
    def priority(self) -> Priority:
        return self.options.priority

    @property
    def runs(self) -> int:
        """The job's run number now: every attempt and every rerun counted, so artifacts named by it
        never overwrite an earlier run's (a record from before `tries` counts by its attempt)."""
        return max(self.tries, self.attempt)


@dataclass(frozen=True)
class RunEnd:
    """How one run of a job ended, as its executor records it: in Redis (a claimed run) or as the
    last message of a direct Run call."""

    state: JobState  # SCHEDULED: another attempt is due at `due_ms`
    progress: Progress
    result: JobResult | None = None
    error: JobError | None = None
    due_ms: int = 0
    dead_letter_reason: str = ""
    execution_ms: int = 0
    worker_id: str = ""


@dataclass(frozen=True)
class ProgressEvent:
    """One entry of a job's progress stream; `cursor` is its stream id."""

    job_id: str
    cursor: str
    state: JobState
    progress: Progress
    attempt: int = 0
    terminal: bool = False


# --- runs ------------------------------------------------------------------------------------


class RunState(enum.StrEnum):
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class RunTestSpec:
    """One test of a run as submitted: its definition, the file it came from and its options (its
    own merged with the run's, the run's winning where they set a field; None: the run's alone).
    `own_options` are its own as submitted, before that merge, which are validated on their own
    (None: it has none, or the merged options are its own: they are validated then)."""

    definition: TestDefinition
    file: str = ""
    options: JobOptions | None = None
    own_options: JobOptions | None = None


@dataclass(frozen=True)
class RunCommand:
    """What one SubmitRun asks for, after the edge has turned it into domain values."""

    name: str
    tests: tuple[RunTestSpec, ...]
    options: JobOptions
    max_parallel: int = 0  # 0: no limit
    user_id: str = ""
    request_id: str = ""


@dataclass(frozen=True)
class RunTestOutcome:
    """One test of a run and where it stands: live from its job, or as the run recorded its end."""

    job_id: str
    name: str
    file: str
    state: JobState
    attempt: int = 0
    started_at_ms: int = 0
    finished_at_ms: int = 0
    result: JobResult | None = None
    error: JobError | None = None
    tags: tuple[str, ...] = ()  # its job's: its own and the run's, each once

    @property
    def duration_ms(self) -> int:
        if self.result is not None and self.result.execution_time_ms:
            return self.result.execution_time_ms
        return max(self.finished_at_ms - self.started_at_ms, 0) if self.started_at_ms else 0

    @property
    def failing_step(self) -> StepResult | None:
        steps = self.result.steps if self.result is not None else ()
        return next((s for s in steps if not s.success and not s.skipped), None)


@dataclass(frozen=True)
class Run:
    run_id: str
    name: str
    tenant_id: str
    state: RunState
    created_at_ms: int
    finished_at_ms: int
    max_parallel: int
    tests: tuple[RunTestOutcome, ...]

    @property
    def counts(self) -> dict[JobState, int]:
        counted = dict.fromkeys(JobState, 0)
        for test in self.tests:
            counted[test.state] += 1
        return counted
