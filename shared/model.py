"""Sentinel's domain types: test definitions, job options, jobs, progress and results.

These are plain frozen dataclasses and `str` enums. They never import protobuf or grpc: the
API converts protobuf to these at its edge (`shared.edge.convert`), and Redis sees them only
through `shared.codec`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TypeAlias


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
# Each action's `kind` is its field name in the protobuf `Step.action` oneof, so validation
# errors name fields exactly as clients spell them (`definition.steps[3].click.selector`).


@dataclass(frozen=True)
class Navigate:
    url: str
    kind: str = field(default="navigate", init=False)


@dataclass(frozen=True)
class Click:
    selector: str
    kind: str = field(default="click", init=False)


@dataclass(frozen=True)
class Fill:
    selector: str
    value: str
    secret: bool = False
    kind: str = field(default="fill", init=False)


@dataclass(frozen=True)
class Press:
    selector: str
    key: str
    kind: str = field(default="press", init=False)


@dataclass(frozen=True)
class SelectOption:
    selector: str
    value: str
    kind: str = field(default="select", init=False)


@dataclass(frozen=True)
class Check:
    selector: str
    checked: bool = True
    kind: str = field(default="check", init=False)


@dataclass(frozen=True)
class Hover:
    selector: str
    kind: str = field(default="hover", init=False)


@dataclass(frozen=True)
class WaitFor:
    selector: str
    state: str = "visible"
    kind: str = field(default="wait_for", init=False)


@dataclass(frozen=True)
class ExpectText:
    selector: str
    text: str
    kind: str = field(default="expect_text", init=False)


@dataclass(frozen=True)
class ExpectVisible:
    selector: str
    kind: str = field(default="expect_visible", init=False)


@dataclass(frozen=True)
class ExpectTitle:
    text: str
    kind: str = field(default="expect_title", init=False)


@dataclass(frozen=True)
class ExpectUrl:
    pattern: str
    kind: str = field(default="expect_url", init=False)


@dataclass(frozen=True)
class Screenshot:
    name: str = ""
    full_page: bool = False
    kind: str = field(default="screenshot", init=False)


@dataclass(frozen=True)
class Wait:
    ms: int
    kind: str = field(default="wait", init=False)


Action: TypeAlias = (
    Navigate
    | Click
    | Fill
    | Press
    | SelectOption
    | Check
    | Hover
    | WaitFor
    | ExpectText
    | ExpectVisible
    | ExpectTitle
    | ExpectUrl
    | Screenshot
    | Wait
)

#: Every action class by its kind (the protobuf oneof field name).
ACTIONS: dict[str, type[Action]] = {
    cls.__dataclass_fields__["kind"].default: cls  # type: ignore[misc]
    for cls in (
        Navigate,
        Click,
        Fill,
        Press,
        SelectOption,
        Check,
        Hover,
        WaitFor,
        ExpectText,
        ExpectVisible,
        ExpectTitle,
        ExpectUrl,
        Screenshot,
        Wait,
    )
}


@dataclass(frozen=True)
class Step:
    action: Action | None
    name: str = ""
    timeout_ms: int = 0

    @property
    def display_name(self) -> str:
        """The step's name, or a short description of its action."""
        if self.name:
            return self.name
        if self.action is None:
            return "(no action)"
        return describe_action(self.action)


def describe_action(action: Action) -> str:
    """A one-line description that never shows a secret fill value."""
    if isinstance(action, Navigate):
        return f"navigate {action.url}"
    if isinstance(action, Fill):
        shown = "***" if action.secret else action.value
        return f"fill {action.selector} with {shown!r}"
    if isinstance(action, Press):
        return f"press {action.key} in {action.selector}"
    if isinstance(action, SelectOption):
        return f"select {action.value!r} in {action.selector}"
    if isinstance(action, Check):
        return f"{'check' if action.checked else 'uncheck'} {action.selector}"
    if isinstance(action, WaitFor):
        return f"wait for {action.selector} {action.state}"
    if isinstance(action, ExpectText):
        return f"expect {action.selector} to contain {action.text!r}"
    if isinstance(action, ExpectTitle):
        return f"expect title to contain {action.text!r}"
    if isinstance(action, ExpectUrl):
        return f"expect url to match {action.pattern!r}"
    if isinstance(action, Screenshot):
        return f"screenshot {action.name}".rstrip()
    if isinstance(action, Wait):
        return f"wait {action.ms} ms"
    if isinstance(action, ExpectVisible):
        return f"expect {action.selector} visible"
    return f"{action.kind} {action.selector}"


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


@dataclass(frozen=True)
class JobMetadata:
    tenant_id: str
    user_id: str = ""
    request_id: str = ""
    source: JobSource = JobSource.API
    created_at_ms: int = 0


@dataclass(frozen=True)
class SubmitCommand:
    """What one submit asks for, after the edge has turned it into domain values."""

    definition: TestDefinition
    options: JobOptions
    user_id: str = ""
    request_id: str = ""
    source: JobSource = JobSource.API


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
    category: ErrorCategory
    message: str
    step_index: int = -1
    retryable: bool = False


@dataclass(frozen=True)
class StepResult:
    index: int
    name: str
    success: bool
    duration_ms: int = 0
    error: str = ""
    artifacts: tuple[str, ...] = ()
    skipped: bool = False


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
    def priority(self) -> Priority:
        return self.options.priority


@dataclass(frozen=True)
class ProgressEvent:
    """One entry of a job's progress stream; `cursor` is its stream id."""

    job_id: str
    cursor: str
    state: JobState
    progress: Progress
    attempt: int = 0
    terminal: bool = False
