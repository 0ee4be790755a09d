import datetime

from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    PRIORITY_HIGH: _ClassVar[Priority]
    PRIORITY_MEDIUM: _ClassVar[Priority]
    PRIORITY_LOW: _ClassVar[Priority]

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_PENDING: _ClassVar[JobState]
    JOB_STATE_SCHEDULED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_COMPLETED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_TIMEOUT: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]

class ErrorCategory(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_CATEGORY_UNSPECIFIED: _ClassVar[ErrorCategory]
    ERROR_CATEGORY_NETWORK: _ClassVar[ErrorCategory]
    ERROR_CATEGORY_TIMEOUT: _ClassVar[ErrorCategory]
    ERROR_CATEGORY_BROWSER: _ClassVar[ErrorCategory]
    ERROR_CATEGORY_SYSTEM: _ClassVar[ErrorCategory]
    ERROR_CATEGORY_VALIDATION: _ClassVar[ErrorCategory]
    ERROR_CATEGORY_ASSERTION: _ClassVar[ErrorCategory]
    ERROR_CATEGORY_UNKNOWN: _ClassVar[ErrorCategory]
    ERROR_CATEGORY_POLICY: _ClassVar[ErrorCategory]

class ArtifactPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ARTIFACT_POLICY_UNSPECIFIED: _ClassVar[ArtifactPolicy]
    ARTIFACT_POLICY_ON_FAILURE: _ClassVar[ArtifactPolicy]
    ARTIFACT_POLICY_ALWAYS: _ClassVar[ArtifactPolicy]
    ARTIFACT_POLICY_NEVER: _ClassVar[ArtifactPolicy]

class JobSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_SOURCE_UNSPECIFIED: _ClassVar[JobSource]
    JOB_SOURCE_API: _ClassVar[JobSource]
    JOB_SOURCE_SCHEDULER: _ClassVar[JobSource]
    JOB_SOURCE_WEBHOOK: _ClassVar[JobSource]

class RunState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_STATE_UNSPECIFIED: _ClassVar[RunState]
    RUN_STATE_RUNNING: _ClassVar[RunState]
    RUN_STATE_PASSED: _ClassVar[RunState]
    RUN_STATE_FAILED: _ClassVar[RunState]
    RUN_STATE_CANCELLED: _ClassVar[RunState]

class HealthStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HEALTH_STATUS_UNSPECIFIED: _ClassVar[HealthStatus]
    HEALTH_STATUS_HEALTHY: _ClassVar[HealthStatus]
    HEALTH_STATUS_DEGRADED: _ClassVar[HealthStatus]
    HEALTH_STATUS_UNHEALTHY: _ClassVar[HealthStatus]

class OverlapPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OVERLAP_POLICY_UNSPECIFIED: _ClassVar[OverlapPolicy]
    OVERLAP_POLICY_SKIP: _ClassVar[OverlapPolicy]
    OVERLAP_POLICY_ALLOW: _ClassVar[OverlapPolicy]
    OVERLAP_POLICY_BUFFER_ONE: _ClassVar[OverlapPolicy]

class DeliveryState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_STATE_UNSPECIFIED: _ClassVar[DeliveryState]
    DELIVERY_STATE_PENDING: _ClassVar[DeliveryState]
    DELIVERY_STATE_DELIVERED: _ClassVar[DeliveryState]
    DELIVERY_STATE_FAILED: _ClassVar[DeliveryState]
PRIORITY_UNSPECIFIED: Priority
PRIORITY_HIGH: Priority
PRIORITY_MEDIUM: Priority
PRIORITY_LOW: Priority
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_PENDING: JobState
JOB_STATE_SCHEDULED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_COMPLETED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_TIMEOUT: JobState
JOB_STATE_CANCELLED: JobState
ERROR_CATEGORY_UNSPECIFIED: ErrorCategory
ERROR_CATEGORY_NETWORK: ErrorCategory
ERROR_CATEGORY_TIMEOUT: ErrorCategory
ERROR_CATEGORY_BROWSER: ErrorCategory
ERROR_CATEGORY_SYSTEM: ErrorCategory
ERROR_CATEGORY_VALIDATION: ErrorCategory
ERROR_CATEGORY_ASSERTION: ErrorCategory
ERROR_CATEGORY_UNKNOWN: ErrorCategory
ERROR_CATEGORY_POLICY: ErrorCategory
ARTIFACT_POLICY_UNSPECIFIED: ArtifactPolicy
ARTIFACT_POLICY_ON_FAILURE: ArtifactPolicy
ARTIFACT_POLICY_ALWAYS: ArtifactPolicy
ARTIFACT_POLICY_NEVER: ArtifactPolicy
JOB_SOURCE_UNSPECIFIED: JobSource
JOB_SOURCE_API: JobSource
JOB_SOURCE_SCHEDULER: JobSource
JOB_SOURCE_WEBHOOK: JobSource
RUN_STATE_UNSPECIFIED: RunState
RUN_STATE_RUNNING: RunState
RUN_STATE_PASSED: RunState
RUN_STATE_FAILED: RunState
RUN_STATE_CANCELLED: RunState
HEALTH_STATUS_UNSPECIFIED: HealthStatus
HEALTH_STATUS_HEALTHY: HealthStatus
HEALTH_STATUS_DEGRADED: HealthStatus
HEALTH_STATUS_UNHEALTHY: HealthStatus
OVERLAP_POLICY_UNSPECIFIED: OverlapPolicy
OVERLAP_POLICY_SKIP: OverlapPolicy
OVERLAP_POLICY_ALLOW: OverlapPolicy
OVERLAP_POLICY_BUFFER_ONE: OverlapPolicy
DELIVERY_STATE_UNSPECIFIED: DeliveryState
DELIVERY_STATE_PENDING: DeliveryState
DELIVERY_STATE_DELIVERED: DeliveryState
DELIVERY_STATE_FAILED: DeliveryState

class Step(_message.Message):
    __slots__ = ("name", "timeout_ms", "frames", "navigate", "click", "fill", "press", "select", "check", "hover", "wait_for", "expect_text", "expect_visible", "expect_title", "expect_url", "screenshot", "wait", "request")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    NAVIGATE_FIELD_NUMBER: _ClassVar[int]
    CLICK_FIELD_NUMBER: _ClassVar[int]
    FILL_FIELD_NUMBER: _ClassVar[int]
    PRESS_FIELD_NUMBER: _ClassVar[int]
    SELECT_FIELD_NUMBER: _ClassVar[int]
    CHECK_FIELD_NUMBER: _ClassVar[int]
    HOVER_FIELD_NUMBER: _ClassVar[int]
    WAIT_FOR_FIELD_NUMBER: _ClassVar[int]
    EXPECT_TEXT_FIELD_NUMBER: _ClassVar[int]
    EXPECT_VISIBLE_FIELD_NUMBER: _ClassVar[int]
    EXPECT_TITLE_FIELD_NUMBER: _ClassVar[int]
    EXPECT_URL_FIELD_NUMBER: _ClassVar[int]
    SCREENSHOT_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    name: str
    timeout_ms: int
    frames: _containers.RepeatedScalarFieldContainer[str]
    navigate: Navigate
    click: Click
    fill: Fill
    press: Press
    select: SelectOption
    check: Check
    hover: Hover
    wait_for: WaitFor
    expect_text: ExpectText
    expect_visible: ExpectVisible
    expect_title: ExpectTitle
    expect_url: ExpectUrl
    screenshot: Screenshot
    wait: Wait
    request: HttpRequest
    def __init__(self, name: _Optional[str] = ..., timeout_ms: _Optional[int] = ..., frames: _Optional[_Iterable[str]] = ..., navigate: _Optional[_Union[Navigate, _Mapping]] = ..., click: _Optional[_Union[Click, _Mapping]] = ..., fill: _Optional[_Union[Fill, _Mapping]] = ..., press: _Optional[_Union[Press, _Mapping]] = ..., select: _Optional[_Union[SelectOption, _Mapping]] = ..., check: _Optional[_Union[Check, _Mapping]] = ..., hover: _Optional[_Union[Hover, _Mapping]] = ..., wait_for: _Optional[_Union[WaitFor, _Mapping]] = ..., expect_text: _Optional[_Union[ExpectText, _Mapping]] = ..., expect_visible: _Optional[_Union[ExpectVisible, _Mapping]] = ..., expect_title: _Optional[_Union[ExpectTitle, _Mapping]] = ..., expect_url: _Optional[_Union[ExpectUrl, _Mapping]] = ..., screenshot: _Optional[_Union[Screenshot, _Mapping]] = ..., wait: _Optional[_Union[Wait, _Mapping]] = ..., request: _Optional[_Union[HttpRequest, _Mapping]] = ...) -> None: ...

class Navigate(_message.Message):
    __slots__ = ("url", "expect_status")
    URL_FIELD_NUMBER: _ClassVar[int]
    EXPECT_STATUS_FIELD_NUMBER: _ClassVar[int]
    url: str
    expect_status: int
    def __init__(self, url: _Optional[str] = ..., expect_status: _Optional[int] = ...) -> None: ...

class Click(_message.Message):
    __slots__ = ("selector",)
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    selector: str
    def __init__(self, selector: _Optional[str] = ...) -> None: ...

class Fill(_message.Message):
    __slots__ = ("selector", "value", "secret")
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    selector: str
    value: str
    secret: bool
    def __init__(self, selector: _Optional[str] = ..., value: _Optional[str] = ..., secret: _Optional[bool] = ...) -> None: ...

class Press(_message.Message):
    __slots__ = ("selector", "key")
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    selector: str
    key: str
    def __init__(self, selector: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class SelectOption(_message.Message):
    __slots__ = ("selector", "value")
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    selector: str
    value: str
    def __init__(self, selector: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class Check(_message.Message):
    __slots__ = ("selector", "checked")
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    CHECKED_FIELD_NUMBER: _ClassVar[int]
    selector: str
    checked: bool
    def __init__(self, selector: _Optional[str] = ..., checked: _Optional[bool] = ...) -> None: ...

class Hover(_message.Message):
    __slots__ = ("selector",)
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    selector: str
    def __init__(self, selector: _Optional[str] = ...) -> None: ...

class WaitFor(_message.Message):
    __slots__ = ("selector", "state")
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    selector: str
    state: str
    def __init__(self, selector: _Optional[str] = ..., state: _Optional[str] = ...) -> None: ...

class ExpectText(_message.Message):
    __slots__ = ("selector", "text")
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    selector: str
    text: str
    def __init__(self, selector: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class ExpectVisible(_message.Message):
    __slots__ = ("selector",)
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    selector: str
    def __init__(self, selector: _Optional[str] = ...) -> None: ...

class ExpectTitle(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class ExpectUrl(_message.Message):
    __slots__ = ("pattern",)
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    pattern: str
    def __init__(self, pattern: _Optional[str] = ...) -> None: ...

class Screenshot(_message.Message):
    __slots__ = ("name", "full_page")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FULL_PAGE_FIELD_NUMBER: _ClassVar[int]
    name: str
    full_page: bool
    def __init__(self, name: _Optional[str] = ..., full_page: _Optional[bool] = ...) -> None: ...

class Wait(_message.Message):
    __slots__ = ("ms",)
    MS_FIELD_NUMBER: _ClassVar[int]
    ms: int
    def __init__(self, ms: _Optional[int] = ...) -> None: ...

class HttpRequest(_message.Message):
    __slots__ = ("method", "url", "headers", "body", "expect_status", "expect_body_contains", "expect_json", "secret_headers", "max_redirects", "expect_headers")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ExpectHeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    METHOD_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    EXPECT_STATUS_FIELD_NUMBER: _ClassVar[int]
    EXPECT_BODY_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    EXPECT_JSON_FIELD_NUMBER: _ClassVar[int]
    SECRET_HEADERS_FIELD_NUMBER: _ClassVar[int]
    MAX_REDIRECTS_FIELD_NUMBER: _ClassVar[int]
    EXPECT_HEADERS_FIELD_NUMBER: _ClassVar[int]
    method: str
    url: str
    headers: _containers.ScalarMap[str, str]
    body: str
    expect_status: int
    expect_body_contains: str
    expect_json: _containers.RepeatedCompositeFieldContainer[JsonExpectation]
    secret_headers: _containers.RepeatedScalarFieldContainer[str]
    max_redirects: int
    expect_headers: _containers.ScalarMap[str, str]
    def __init__(self, method: _Optional[str] = ..., url: _Optional[str] = ..., headers: _Optional[_Mapping[str, str]] = ..., body: _Optional[str] = ..., expect_status: _Optional[int] = ..., expect_body_contains: _Optional[str] = ..., expect_json: _Optional[_Iterable[_Union[JsonExpectation, _Mapping]]] = ..., secret_headers: _Optional[_Iterable[str]] = ..., max_redirects: _Optional[int] = ..., expect_headers: _Optional[_Mapping[str, str]] = ...) -> None: ...

class JsonExpectation(_message.Message):
    __slots__ = ("path", "equals")
    PATH_FIELD_NUMBER: _ClassVar[int]
    EQUALS_FIELD_NUMBER: _ClassVar[int]
    path: str
    equals: str
    def __init__(self, path: _Optional[str] = ..., equals: _Optional[str] = ...) -> None: ...

class Viewport(_message.Message):
    __slots__ = ("width", "height")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class TestDefinition(_message.Message):
    __slots__ = ("name", "base_url", "steps", "viewport")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    VIEWPORT_FIELD_NUMBER: _ClassVar[int]
    name: str
    base_url: str
    steps: _containers.RepeatedCompositeFieldContainer[Step]
    viewport: Viewport
    def __init__(self, name: _Optional[str] = ..., base_url: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[Step, _Mapping]]] = ..., viewport: _Optional[_Union[Viewport, _Mapping]] = ...) -> None: ...

class JobOptions(_message.Message):
    __slots__ = ("priority", "timeout_ms", "tags", "max_attempts", "delay_ms", "idempotency_key", "backoff_ms", "artifact_policy", "record_video")
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    BACKOFF_MS_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_POLICY_FIELD_NUMBER: _ClassVar[int]
    RECORD_VIDEO_FIELD_NUMBER: _ClassVar[int]
    priority: Priority
    timeout_ms: int
    tags: _containers.RepeatedScalarFieldContainer[str]
    max_attempts: int
    delay_ms: int
    idempotency_key: str
    backoff_ms: int
    artifact_policy: ArtifactPolicy
    record_video: bool
    def __init__(self, priority: _Optional[_Union[Priority, str]] = ..., timeout_ms: _Optional[int] = ..., tags: _Optional[_Iterable[str]] = ..., max_attempts: _Optional[int] = ..., delay_ms: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., backoff_ms: _Optional[int] = ..., artifact_policy: _Optional[_Union[ArtifactPolicy, str]] = ..., record_video: _Optional[bool] = ...) -> None: ...

class SubmitRequest(_message.Message):
    __slots__ = ("definition", "options", "user_id", "request_id", "source")
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    definition: TestDefinition
    options: JobOptions
    user_id: str
    request_id: str
    source: JobSource
    def __init__(self, definition: _Optional[_Union[TestDefinition, _Mapping]] = ..., options: _Optional[_Union[JobOptions, _Mapping]] = ..., user_id: _Optional[str] = ..., request_id: _Optional[str] = ..., source: _Optional[_Union[JobSource, str]] = ...) -> None: ...

class SubmitResponse(_message.Message):
    __slots__ = ("job_id", "duplicate")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    duplicate: bool
    def __init__(self, job_id: _Optional[str] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class SubmitBatchRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[SubmitRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[SubmitRequest, _Mapping]]] = ...) -> None: ...

class FieldViolation(_message.Message):
    __slots__ = ("field", "description")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    field: str
    description: str
    def __init__(self, field: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class ItemError(_message.Message):
    __slots__ = ("code", "message", "field_violations")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    field_violations: _containers.RepeatedCompositeFieldContainer[FieldViolation]
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., field_violations: _Optional[_Iterable[_Union[FieldViolation, _Mapping]]] = ...) -> None: ...

class SubmitBatchItem(_message.Message):
    __slots__ = ("index", "job_id", "error", "duplicate")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    index: int
    job_id: str
    error: ItemError
    duplicate: bool
    def __init__(self, index: _Optional[int] = ..., job_id: _Optional[str] = ..., error: _Optional[_Union[ItemError, _Mapping]] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class SubmitBatchResponse(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[SubmitBatchItem]
    def __init__(self, items: _Optional[_Iterable[_Union[SubmitBatchItem, _Mapping]]] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("percentage", "current_step", "total_steps", "step_name", "message", "updated_at")
    PERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    STEP_NAME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    percentage: int
    current_step: int
    total_steps: int
    step_name: str
    message: str
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, percentage: _Optional[int] = ..., current_step: _Optional[int] = ..., total_steps: _Optional[int] = ..., step_name: _Optional[str] = ..., message: _Optional[str] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StepResult(_message.Message):
    __slots__ = ("name", "success", "duration_ms", "error", "artifacts", "index", "skipped", "console_errors", "failed_requests", "http_status")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    CONSOLE_ERRORS_FIELD_NUMBER: _ClassVar[int]
    FAILED_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    name: str
    success: bool
    duration_ms: int
    error: str
    artifacts: _containers.RepeatedScalarFieldContainer[str]
    index: int
    skipped: bool
    console_errors: _containers.RepeatedScalarFieldContainer[str]
    failed_requests: _containers.RepeatedScalarFieldContainer[str]
    http_status: int
    def __init__(self, name: _Optional[str] = ..., success: _Optional[bool] = ..., duration_ms: _Optional[int] = ..., error: _Optional[str] = ..., artifacts: _Optional[_Iterable[str]] = ..., index: _Optional[int] = ..., skipped: _Optional[bool] = ..., console_errors: _Optional[_Iterable[str]] = ..., failed_requests: _Optional[_Iterable[str]] = ..., http_status: _Optional[int] = ...) -> None: ...

class JobError(_message.Message):
    __slots__ = ("category", "message", "step_index", "retryable")
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STEP_INDEX_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    category: ErrorCategory
    message: str
    step_index: int
    retryable: bool
    def __init__(self, category: _Optional[_Union[ErrorCategory, str]] = ..., message: _Optional[str] = ..., step_index: _Optional[int] = ..., retryable: _Optional[bool] = ...) -> None: ...

class JobResult(_message.Message):
    __slots__ = ("success", "steps", "execution_time_ms", "worker_id", "attempt", "total_attempts", "started_at", "completed_at", "artifacts", "error", "artifact_notes")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_NOTES_FIELD_NUMBER: _ClassVar[int]
    success: bool
    steps: _containers.RepeatedCompositeFieldContainer[StepResult]
    execution_time_ms: int
    worker_id: str
    attempt: int
    total_attempts: int
    started_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    artifacts: _containers.RepeatedScalarFieldContainer[str]
    error: JobError
    artifact_notes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, success: _Optional[bool] = ..., steps: _Optional[_Iterable[_Union[StepResult, _Mapping]]] = ..., execution_time_ms: _Optional[int] = ..., worker_id: _Optional[str] = ..., attempt: _Optional[int] = ..., total_attempts: _Optional[int] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., artifacts: _Optional[_Iterable[str]] = ..., error: _Optional[_Union[JobError, _Mapping]] = ..., artifact_notes: _Optional[_Iterable[str]] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "state", "priority", "progress", "result", "attempt", "max_attempts", "tenant_id", "name", "tags", "created_at", "started_at", "finished_at", "worker_id", "error", "user_id", "request_id", "source", "timeout_ms", "scheduled_for", "run_id", "schedule_id", "fire_time", "runs")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_FOR_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    FIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: JobState
    priority: Priority
    progress: Progress
    result: JobResult
    attempt: int
    max_attempts: int
    tenant_id: str
    name: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    created_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    worker_id: str
    error: JobError
    user_id: str
    request_id: str
    source: JobSource
    timeout_ms: int
    scheduled_for: _timestamp_pb2.Timestamp
    run_id: str
    schedule_id: str
    fire_time: _timestamp_pb2.Timestamp
    runs: int
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., priority: _Optional[_Union[Priority, str]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., result: _Optional[_Union[JobResult, _Mapping]] = ..., attempt: _Optional[int] = ..., max_attempts: _Optional[int] = ..., tenant_id: _Optional[str] = ..., name: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., worker_id: _Optional[str] = ..., error: _Optional[_Union[JobError, _Mapping]] = ..., user_id: _Optional[str] = ..., request_id: _Optional[str] = ..., source: _Optional[_Union[JobSource, str]] = ..., timeout_ms: _Optional[int] = ..., scheduled_for: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., run_id: _Optional[str] = ..., schedule_id: _Optional[str] = ..., fire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., runs: _Optional[int] = ...) -> None: ...

class StreamProgressRequest(_message.Message):
    __slots__ = ("job_id", "cursor")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    cursor: str
    def __init__(self, job_id: _Optional[str] = ..., cursor: _Optional[str] = ...) -> None: ...

class ProgressEvent(_message.Message):
    __slots__ = ("job_id", "cursor", "state", "progress", "attempt", "terminal")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    cursor: str
    state: JobState
    progress: Progress
    attempt: int
    terminal: bool
    def __init__(self, job_id: _Optional[str] = ..., cursor: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., attempt: _Optional[int] = ..., terminal: _Optional[bool] = ...) -> None: ...

class CancelRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class RetryRequest(_message.Message):
    __slots__ = ("job_id", "priority")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    priority: Priority
    def __init__(self, job_id: _Optional[str] = ..., priority: _Optional[_Union[Priority, str]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("state", "tag", "page_size", "page_token", "schedule_id")
    STATE_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    state: JobState
    tag: str
    page_size: int
    page_token: str
    schedule_id: str
    def __init__(self, state: _Optional[_Union[JobState, str]] = ..., tag: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., schedule_id: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token", "partial")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    next_page_token: str
    partial: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., partial: _Optional[str] = ...) -> None: ...

class RunTest(_message.Message):
    __slots__ = ("definition", "file", "options")
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    definition: TestDefinition
    file: str
    options: JobOptions
    def __init__(self, definition: _Optional[_Union[TestDefinition, _Mapping]] = ..., file: _Optional[str] = ..., options: _Optional[_Union[JobOptions, _Mapping]] = ...) -> None: ...

class SubmitRunRequest(_message.Message):
    __slots__ = ("name", "tests", "options", "max_parallel", "user_id", "request_id", "validate_only")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TESTS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_PARALLEL_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    name: str
    tests: _containers.RepeatedCompositeFieldContainer[RunTest]
    options: JobOptions
    max_parallel: int
    user_id: str
    request_id: str
    validate_only: bool
    def __init__(self, name: _Optional[str] = ..., tests: _Optional[_Iterable[_Union[RunTest, _Mapping]]] = ..., options: _Optional[_Union[JobOptions, _Mapping]] = ..., max_parallel: _Optional[int] = ..., user_id: _Optional[str] = ..., request_id: _Optional[str] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class SubmitRunResponse(_message.Message):
    __slots__ = ("run_id", "job_ids", "duplicate")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    job_ids: _containers.RepeatedScalarFieldContainer[str]
    duplicate: bool
    def __init__(self, run_id: _Optional[str] = ..., job_ids: _Optional[_Iterable[str]] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class RunTestResult(_message.Message):
    __slots__ = ("job_id", "name", "file", "state", "duration_ms", "attempt", "failing_step", "failing_step_name", "error", "artifacts", "steps", "artifact_notes", "finished_at", "tags")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    FAILING_STEP_FIELD_NUMBER: _ClassVar[int]
    FAILING_STEP_NAME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_NOTES_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    name: str
    file: str
    state: JobState
    duration_ms: int
    attempt: int
    failing_step: int
    failing_step_name: str
    error: JobError
    artifacts: _containers.RepeatedScalarFieldContainer[str]
    steps: _containers.RepeatedCompositeFieldContainer[StepResult]
    artifact_notes: _containers.RepeatedScalarFieldContainer[str]
    finished_at: _timestamp_pb2.Timestamp
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, job_id: _Optional[str] = ..., name: _Optional[str] = ..., file: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., duration_ms: _Optional[int] = ..., attempt: _Optional[int] = ..., failing_step: _Optional[int] = ..., failing_step_name: _Optional[str] = ..., error: _Optional[_Union[JobError, _Mapping]] = ..., artifacts: _Optional[_Iterable[str]] = ..., steps: _Optional[_Iterable[_Union[StepResult, _Mapping]]] = ..., artifact_notes: _Optional[_Iterable[str]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tags: _Optional[_Iterable[str]] = ...) -> None: ...

class RunCounts(_message.Message):
    __slots__ = ("pending", "scheduled", "running", "completed", "failed", "timeout", "cancelled")
    PENDING_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    pending: int
    scheduled: int
    running: int
    completed: int
    failed: int
    timeout: int
    cancelled: int
    def __init__(self, pending: _Optional[int] = ..., scheduled: _Optional[int] = ..., running: _Optional[int] = ..., completed: _Optional[int] = ..., failed: _Optional[int] = ..., timeout: _Optional[int] = ..., cancelled: _Optional[int] = ...) -> None: ...

class Run(_message.Message):
    __slots__ = ("run_id", "name", "state", "created_at", "finished_at", "max_parallel", "total", "counts", "tests", "tenant_id")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    MAX_PARALLEL_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    TESTS_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    name: str
    state: RunState
    created_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    max_parallel: int
    total: int
    counts: RunCounts
    tests: _containers.RepeatedCompositeFieldContainer[RunTestResult]
    tenant_id: str
    def __init__(self, run_id: _Optional[str] = ..., name: _Optional[str] = ..., state: _Optional[_Union[RunState, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., max_parallel: _Optional[int] = ..., total: _Optional[int] = ..., counts: _Optional[_Union[RunCounts, _Mapping]] = ..., tests: _Optional[_Iterable[_Union[RunTestResult, _Mapping]]] = ..., tenant_id: _Optional[str] = ...) -> None: ...

class GetRunRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class StreamRunRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class RunEvent(_message.Message):
    __slots__ = ("progress", "finished")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    progress: ProgressEvent
    finished: Run
    def __init__(self, progress: _Optional[_Union[ProgressEvent, _Mapping]] = ..., finished: _Optional[_Union[Run, _Mapping]] = ...) -> None: ...

class CancelRunRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class ListArtifactsRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class Artifact(_message.Message):
    __slots__ = ("name", "content_type", "size_bytes", "attempt", "step_index", "created_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STEP_INDEX_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    content_type: str
    size_bytes: int
    attempt: int
    step_index: int
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., content_type: _Optional[str] = ..., size_bytes: _Optional[int] = ..., attempt: _Optional[int] = ..., step_index: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListArtifactsResponse(_message.Message):
    __slots__ = ("artifacts",)
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    artifacts: _containers.RepeatedCompositeFieldContainer[Artifact]
    def __init__(self, artifacts: _Optional[_Iterable[_Union[Artifact, _Mapping]]] = ...) -> None: ...

class GetArtifactRequest(_message.Message):
    __slots__ = ("job_id", "name")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    name: str
    def __init__(self, job_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class ArtifactChunk(_message.Message):
    __slots__ = ("data", "content_type", "size_bytes")
    DATA_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    content_type: str
    size_bytes: int
    def __init__(self, data: _Optional[bytes] = ..., content_type: _Optional[str] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class LaneStats(_message.Message):
    __slots__ = ("priority", "waiting", "active", "completed", "failed", "delayed", "paused", "total_processed", "total_failed", "processing_rate", "avg_processing_time", "last_processed_at", "dead_lettered", "cancelled", "total_cancelled")
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    DELAYED_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_PROCESSED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FAILED_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_RATE_FIELD_NUMBER: _ClassVar[int]
    AVG_PROCESSING_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_PROCESSED_AT_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERED_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_CANCELLED_FIELD_NUMBER: _ClassVar[int]
    priority: Priority
    waiting: int
    active: int
    completed: int
    failed: int
    delayed: int
    paused: bool
    total_processed: int
    total_failed: int
    processing_rate: float
    avg_processing_time: float
    last_processed_at: _timestamp_pb2.Timestamp
    dead_lettered: int
    cancelled: int
    total_cancelled: int
    def __init__(self, priority: _Optional[_Union[Priority, str]] = ..., waiting: _Optional[int] = ..., active: _Optional[int] = ..., completed: _Optional[int] = ..., failed: _Optional[int] = ..., delayed: _Optional[int] = ..., paused: _Optional[bool] = ..., total_processed: _Optional[int] = ..., total_failed: _Optional[int] = ..., processing_rate: _Optional[float] = ..., avg_processing_time: _Optional[float] = ..., last_processed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., dead_lettered: _Optional[int] = ..., cancelled: _Optional[int] = ..., total_cancelled: _Optional[int] = ...) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = ("queue",)
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: str
    def __init__(self, queue: _Optional[str] = ...) -> None: ...

class QueueStats(_message.Message):
    __slots__ = ("queue", "waiting", "active", "completed", "failed", "delayed", "paused", "total_processed", "total_failed", "processing_rate", "avg_processing_time", "last_processed_at", "dead_lettered", "lanes", "tenant", "cancelled", "total_cancelled")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    DELAYED_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_PROCESSED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FAILED_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_RATE_FIELD_NUMBER: _ClassVar[int]
    AVG_PROCESSING_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_PROCESSED_AT_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERED_FIELD_NUMBER: _ClassVar[int]
    LANES_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_CANCELLED_FIELD_NUMBER: _ClassVar[int]
    queue: str
    waiting: int
    active: int
    completed: int
    failed: int
    delayed: int
    paused: bool
    total_processed: int
    total_failed: int
    processing_rate: float
    avg_processing_time: float
    last_processed_at: _timestamp_pb2.Timestamp
    dead_lettered: int
    lanes: _containers.RepeatedCompositeFieldContainer[LaneStats]
    tenant: str
    cancelled: int
    total_cancelled: int
    def __init__(self, queue: _Optional[str] = ..., waiting: _Optional[int] = ..., active: _Optional[int] = ..., completed: _Optional[int] = ..., failed: _Optional[int] = ..., delayed: _Optional[int] = ..., paused: _Optional[bool] = ..., total_processed: _Optional[int] = ..., total_failed: _Optional[int] = ..., processing_rate: _Optional[float] = ..., avg_processing_time: _Optional[float] = ..., last_processed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., dead_lettered: _Optional[int] = ..., lanes: _Optional[_Iterable[_Union[LaneStats, _Mapping]]] = ..., tenant: _Optional[str] = ..., cancelled: _Optional[int] = ..., total_cancelled: _Optional[int] = ...) -> None: ...

class GetHealthRequest(_message.Message):
    __slots__ = ("queue",)
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: str
    def __init__(self, queue: _Optional[str] = ...) -> None: ...

class QueueHealth(_message.Message):
    __slots__ = ("status", "reasons", "stats")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    status: HealthStatus
    reasons: _containers.RepeatedScalarFieldContainer[str]
    stats: QueueStats
    def __init__(self, status: _Optional[_Union[HealthStatus, str]] = ..., reasons: _Optional[_Iterable[str]] = ..., stats: _Optional[_Union[QueueStats, _Mapping]] = ...) -> None: ...

class PauseRequest(_message.Message):
    __slots__ = ("queue",)
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: str
    def __init__(self, queue: _Optional[str] = ...) -> None: ...

class ResumeRequest(_message.Message):
    __slots__ = ("queue",)
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: str
    def __init__(self, queue: _Optional[str] = ...) -> None: ...

class QueueState(_message.Message):
    __slots__ = ("queue", "paused")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    queue: str
    paused: bool
    def __init__(self, queue: _Optional[str] = ..., paused: _Optional[bool] = ...) -> None: ...

class DeadLetter(_message.Message):
    __slots__ = ("job_id", "reason", "error", "attempts", "artifacts", "dead_lettered_at", "tags", "name")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERED_AT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    reason: str
    error: JobError
    attempts: int
    artifacts: _containers.RepeatedScalarFieldContainer[str]
    dead_lettered_at: _timestamp_pb2.Timestamp
    tags: _containers.RepeatedScalarFieldContainer[str]
    name: str
    def __init__(self, job_id: _Optional[str] = ..., reason: _Optional[str] = ..., error: _Optional[_Union[JobError, _Mapping]] = ..., attempts: _Optional[int] = ..., artifacts: _Optional[_Iterable[str]] = ..., dead_lettered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tags: _Optional[_Iterable[str]] = ..., name: _Optional[str] = ...) -> None: ...

class ListDeadLettersRequest(_message.Message):
    __slots__ = ("category", "tag", "page_size", "page_token")
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    category: ErrorCategory
    tag: str
    page_size: int
    page_token: str
    def __init__(self, category: _Optional[_Union[ErrorCategory, str]] = ..., tag: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDeadLettersResponse(_message.Message):
    __slots__ = ("dead_letters", "next_page_token")
    DEAD_LETTERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    dead_letters: _containers.RepeatedCompositeFieldContainer[DeadLetter]
    next_page_token: str
    def __init__(self, dead_letters: _Optional[_Iterable[_Union[DeadLetter, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RequeueDeadLetterRequest(_message.Message):
    __slots__ = ("job_id", "priority")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    priority: Priority
    def __init__(self, job_id: _Optional[str] = ..., priority: _Optional[_Union[Priority, str]] = ...) -> None: ...

class PurgeDeadLettersRequest(_message.Message):
    __slots__ = ("older_than_ms",)
    OLDER_THAN_MS_FIELD_NUMBER: _ClassVar[int]
    older_than_ms: int
    def __init__(self, older_than_ms: _Optional[int] = ...) -> None: ...

class PurgeDeadLettersResponse(_message.Message):
    __slots__ = ("purged",)
    PURGED_FIELD_NUMBER: _ClassVar[int]
    purged: int
    def __init__(self, purged: _Optional[int] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ("states", "tag", "cursor", "kinds")
    STATES_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[JobState]
    tag: str
    cursor: str
    kinds: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, states: _Optional[_Iterable[_Union[JobState, str]]] = ..., tag: _Optional[str] = ..., cursor: _Optional[str] = ..., kinds: _Optional[_Iterable[str]] = ...) -> None: ...

class QueueEvent(_message.Message):
    __slots__ = ("cursor", "kind", "job_id", "state", "time", "message", "tags")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    cursor: str
    kind: str
    job_id: str
    state: JobState
    time: _timestamp_pb2.Timestamp
    message: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, cursor: _Optional[str] = ..., kind: _Optional[str] = ..., job_id: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., message: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ...) -> None: ...

class CleanRequest(_message.Message):
    __slots__ = ("state", "older_than_ms", "limit")
    STATE_FIELD_NUMBER: _ClassVar[int]
    OLDER_THAN_MS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    state: JobState
    older_than_ms: int
    limit: int
    def __init__(self, state: _Optional[_Union[JobState, str]] = ..., older_than_ms: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class CleanResponse(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: int
    def __init__(self, removed: _Optional[int] = ...) -> None: ...

class GetWorkerStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class InFlightJob(_message.Message):
    __slots__ = ("job_id", "attempt", "progress", "started_at")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    attempt: int
    progress: Progress
    started_at: _timestamp_pb2.Timestamp
    def __init__(self, job_id: _Optional[str] = ..., attempt: _Optional[int] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WorkerStatus(_message.Message):
    __slots__ = ("worker_id", "concurrency", "in_flight", "browser_version", "browser_connected", "uptime_ms", "draining", "jobs_processed", "busy_slots")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    BROWSER_VERSION_FIELD_NUMBER: _ClassVar[int]
    BROWSER_CONNECTED_FIELD_NUMBER: _ClassVar[int]
    UPTIME_MS_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    JOBS_PROCESSED_FIELD_NUMBER: _ClassVar[int]
    BUSY_SLOTS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    concurrency: int
    in_flight: _containers.RepeatedCompositeFieldContainer[InFlightJob]
    browser_version: str
    browser_connected: bool
    uptime_ms: int
    draining: bool
    jobs_processed: int
    busy_slots: int
    def __init__(self, worker_id: _Optional[str] = ..., concurrency: _Optional[int] = ..., in_flight: _Optional[_Iterable[_Union[InFlightJob, _Mapping]]] = ..., browser_version: _Optional[str] = ..., browser_connected: _Optional[bool] = ..., uptime_ms: _Optional[int] = ..., draining: _Optional[bool] = ..., jobs_processed: _Optional[int] = ..., busy_slots: _Optional[int] = ...) -> None: ...

class DrainRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DrainResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: WorkerStatus
    def __init__(self, status: _Optional[_Union[WorkerStatus, _Mapping]] = ...) -> None: ...

class RunJobRequest(_message.Message):
    __slots__ = ("job", "trace")
    class JobEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_FIELD_NUMBER: _ClassVar[int]
    TRACE_FIELD_NUMBER: _ClassVar[int]
    job: _containers.ScalarMap[str, str]
    trace: str
    def __init__(self, job: _Optional[_Mapping[str, str]] = ..., trace: _Optional[str] = ...) -> None: ...

class RunJobEnd(_message.Message):
    __slots__ = ("state", "progress", "result", "error", "retry_at", "worker_id")
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RETRY_AT_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    state: JobState
    progress: Progress
    result: JobResult
    error: JobError
    retry_at: _timestamp_pb2.Timestamp
    worker_id: str
    def __init__(self, state: _Optional[_Union[JobState, str]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., result: _Optional[_Union[JobResult, _Mapping]] = ..., error: _Optional[_Union[JobError, _Mapping]] = ..., retry_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., worker_id: _Optional[str] = ...) -> None: ...

class RunJobUpdate(_message.Message):
    __slots__ = ("progress", "end")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    progress: Progress
    end: RunJobEnd
    def __init__(self, progress: _Optional[_Union[Progress, _Mapping]] = ..., end: _Optional[_Union[RunJobEnd, _Mapping]] = ...) -> None: ...

class Notification(_message.Message):
    __slots__ = ("url", "events", "secret", "secret_set", "after_failures", "format")
    URL_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    SECRET_SET_FIELD_NUMBER: _ClassVar[int]
    AFTER_FAILURES_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    url: str
    events: _containers.RepeatedScalarFieldContainer[str]
    secret: str
    secret_set: bool
    after_failures: int
    format: str
    def __init__(self, url: _Optional[str] = ..., events: _Optional[_Iterable[str]] = ..., secret: _Optional[str] = ..., secret_set: _Optional[bool] = ..., after_failures: _Optional[int] = ..., format: _Optional[str] = ...) -> None: ...

class ScheduleRun(_message.Message):
    __slots__ = ("job_id", "fire_time", "state", "skipped", "reason", "triggered", "error", "job_removed")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TRIGGERED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    JOB_REMOVED_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    fire_time: _timestamp_pb2.Timestamp
    state: JobState
    skipped: bool
    reason: str
    triggered: bool
    error: str
    job_removed: bool
    def __init__(self, job_id: _Optional[str] = ..., fire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[JobState, str]] = ..., skipped: _Optional[bool] = ..., reason: _Optional[str] = ..., triggered: _Optional[bool] = ..., error: _Optional[str] = ..., job_removed: _Optional[bool] = ...) -> None: ...

class Schedule(_message.Message):
    __slots__ = ("schedule_id", "name", "cron", "interval_ms", "timezone", "jitter_ms", "overlap", "catchup_window_ms", "template", "paused", "next_fires", "notifications", "recent_runs", "created_at", "updated_at", "tenant_id", "note")
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    JITTER_MS_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_FIELD_NUMBER: _ClassVar[int]
    CATCHUP_WINDOW_MS_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    NEXT_FIRES_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    RECENT_RUNS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    schedule_id: str
    name: str
    cron: str
    interval_ms: int
    timezone: str
    jitter_ms: int
    overlap: OverlapPolicy
    catchup_window_ms: int
    template: SubmitRequest
    paused: bool
    next_fires: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    notifications: _containers.RepeatedCompositeFieldContainer[Notification]
    recent_runs: _containers.RepeatedCompositeFieldContainer[ScheduleRun]
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    tenant_id: str
    note: str
    def __init__(self, schedule_id: _Optional[str] = ..., name: _Optional[str] = ..., cron: _Optional[str] = ..., interval_ms: _Optional[int] = ..., timezone: _Optional[str] = ..., jitter_ms: _Optional[int] = ..., overlap: _Optional[_Union[OverlapPolicy, str]] = ..., catchup_window_ms: _Optional[int] = ..., template: _Optional[_Union[SubmitRequest, _Mapping]] = ..., paused: _Optional[bool] = ..., next_fires: _Optional[_Iterable[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]]] = ..., notifications: _Optional[_Iterable[_Union[Notification, _Mapping]]] = ..., recent_runs: _Optional[_Iterable[_Union[ScheduleRun, _Mapping]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tenant_id: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class CreateScheduleRequest(_message.Message):
    __slots__ = ("schedule",)
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    schedule: Schedule
    def __init__(self, schedule: _Optional[_Union[Schedule, _Mapping]] = ...) -> None: ...

class GetScheduleRequest(_message.Message):
    __slots__ = ("schedule_id",)
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    schedule_id: str
    def __init__(self, schedule_id: _Optional[str] = ...) -> None: ...

class ListSchedulesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSchedulesResponse(_message.Message):
    __slots__ = ("schedules", "next_page_token")
    SCHEDULES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    schedules: _containers.RepeatedCompositeFieldContainer[Schedule]
    next_page_token: str
    def __init__(self, schedules: _Optional[_Iterable[_Union[Schedule, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateScheduleRequest(_message.Message):
    __slots__ = ("schedule", "update_mask")
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    schedule: Schedule
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, schedule: _Optional[_Union[Schedule, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteScheduleRequest(_message.Message):
    __slots__ = ("schedule_id",)
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    schedule_id: str
    def __init__(self, schedule_id: _Optional[str] = ...) -> None: ...

class DeleteScheduleResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: bool
    def __init__(self, deleted: _Optional[bool] = ...) -> None: ...

class PauseScheduleRequest(_message.Message):
    __slots__ = ("schedule_id", "note")
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    schedule_id: str
    note: str
    def __init__(self, schedule_id: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class ResumeScheduleRequest(_message.Message):
    __slots__ = ("schedule_id", "note")
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    schedule_id: str
    note: str
    def __init__(self, schedule_id: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class TriggerScheduleRequest(_message.Message):
    __slots__ = ("schedule_id",)
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    schedule_id: str
    def __init__(self, schedule_id: _Optional[str] = ...) -> None: ...

class AlertRule(_message.Message):
    __slots__ = ("rule_id", "tag", "notifications", "tenant_id", "created_at")
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    rule_id: str
    tag: str
    notifications: _containers.RepeatedCompositeFieldContainer[Notification]
    tenant_id: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, rule_id: _Optional[str] = ..., tag: _Optional[str] = ..., notifications: _Optional[_Iterable[_Union[Notification, _Mapping]]] = ..., tenant_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("delivery_id", "event", "url", "job_id", "schedule_id", "rule_id", "state", "attempts", "response_status", "response_body", "error", "body", "created_at", "last_attempt_at", "next_attempt_at")
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_STATUS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_BODY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    delivery_id: str
    event: str
    url: str
    job_id: str
    schedule_id: str
    rule_id: str
    state: DeliveryState
    attempts: int
    response_status: int
    response_body: str
    error: str
    body: str
    created_at: _timestamp_pb2.Timestamp
    last_attempt_at: _timestamp_pb2.Timestamp
    next_attempt_at: _timestamp_pb2.Timestamp
    def __init__(self, delivery_id: _Optional[str] = ..., event: _Optional[str] = ..., url: _Optional[str] = ..., job_id: _Optional[str] = ..., schedule_id: _Optional[str] = ..., rule_id: _Optional[str] = ..., state: _Optional[_Union[DeliveryState, str]] = ..., attempts: _Optional[int] = ..., response_status: _Optional[int] = ..., response_body: _Optional[str] = ..., error: _Optional[str] = ..., body: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_attempt_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_attempt_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateAlertRuleRequest(_message.Message):
    __slots__ = ("rule",)
    RULE_FIELD_NUMBER: _ClassVar[int]
    rule: AlertRule
    def __init__(self, rule: _Optional[_Union[AlertRule, _Mapping]] = ...) -> None: ...

class ListAlertRulesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAlertRulesResponse(_message.Message):
    __slots__ = ("rules", "next_page_token")
    RULES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    rules: _containers.RepeatedCompositeFieldContainer[AlertRule]
    next_page_token: str
    def __init__(self, rules: _Optional[_Iterable[_Union[AlertRule, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteAlertRuleRequest(_message.Message):
    __slots__ = ("rule_id",)
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    rule_id: str
    def __init__(self, rule_id: _Optional[str] = ...) -> None: ...

class DeleteAlertRuleResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: bool
    def __init__(self, deleted: _Optional[bool] = ...) -> None: ...

class ListDeliveriesRequest(_message.Message):
    __slots__ = ("schedule_id", "rule_id", "job_id", "page_size", "page_token")
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    schedule_id: str
    rule_id: str
    job_id: str
    page_size: int
    page_token: str
    def __init__(self, schedule_id: _Optional[str] = ..., rule_id: _Optional[str] = ..., job_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDeliveriesResponse(_message.Message):
    __slots__ = ("deliveries", "next_page_token")
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    deliveries: _containers.RepeatedCompositeFieldContainer[Delivery]
    next_page_token: str
    def __init__(self, deliveries: _Optional[_Iterable[_Union[Delivery, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
