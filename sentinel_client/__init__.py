"""Sentinel's Python SDK: submit browser tests, follow them live, and read their results.

    from sentinel_client import Client, AsyncClient

    with Client("localhost:50051", api_key="…") as client:      # or Client.from_env()
        job = client.submit("examples/login.json", priority="high", tags=["smoke"])
        for event in job.events():                               # live; resumes after a dropped stream
            print(event.progress.percentage, event.progress.message)
        done = job.wait(timeout=120)                             # a Job: frozen dataclass, enums, datetimes
        print(done.state, [step.error for step in done.result.steps] if done.result else None)

`AsyncClient` has the same methods, awaited (`async with`, `async for`). Results are the frozen
dataclasses of `sentinel_client.models`; failures are the exceptions of `sentinel_client.errors`.
The SDK imports only its generated protos, grpc, protobuf and the standard library.
"""

from sentinel_client._async import AsyncClient, AsyncJobHandle, AsyncRunHandle
from sentinel_client._connection import TLSConfig
from sentinel_client._requests import SubmitOptions
from sentinel_client._retry import RetryPolicy
from sentinel_client._schedules import ScheduleFields
from sentinel_client._sources import RunTestSource, TestSource
from sentinel_client._sync import Client, JobHandle, RunHandle
from sentinel_client.errors import (
    AlreadyExistsError,
    CallCancelledError,
    ConfigError,
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    SentinelError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
    WaitTimeout,
)
from sentinel_client.models import (
    AlertRule,
    Artifact,
    ArtifactPolicy,
    DeadLetter,
    Delivery,
    DeliveryState,
    ErrorCategory,
    Figures,
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
    PartialListingWarning,
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
    Schedule,
    ScheduleRun,
    StepResult,
)

__all__ = [
    "AlertRule",
    "AlreadyExistsError",
    "Artifact",
    "ArtifactPolicy",
    "AsyncClient",
    "AsyncJobHandle",
    "AsyncRunHandle",
    "CallCancelledError",
    "Client",
    "ConfigError",
    "DeadLetter",
    "DeadlineExceededError",
    "Delivery",
    "DeliveryState",
    "ErrorCategory",
    "FailedPreconditionError",
    "FieldViolation",
    "Figures",
    "HealthStatus",
    "InternalError",
    "InvalidArgumentError",
    "Job",
    "JobError",
    "JobHandle",
    "JobResult",
    "JobSource",
    "JobState",
    "LaneStats",
    "NotFoundError",
    "Notification",
    "OverlapPolicy",
    "Page",
    "PartialListingWarning",
    "PermissionDeniedError",
    "Priority",
    "Progress",
    "ProgressEvent",
    "QueueEvent",
    "QueueHealth",
    "QueueState",
    "QueueStats",
    "ResourceExhaustedError",
    "RetryPolicy",
    "Run",
    "RunHandle",
    "RunState",
    "RunTest",
    "RunTestSource",
    "Schedule",
    "ScheduleFields",
    "ScheduleRun",
    "SentinelError",
    "StepResult",
    "SubmitOptions",
    "TLSConfig",
    "TestSource",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "WaitTimeout",
]
