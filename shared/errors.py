"""Sentinel's one exception tree.

    SentinelError
    ├── ConfigError          a setting in the environment is missing or malformed
    ├── DecodeError          a value read from Redis cannot be decoded
    ├── ValidationError      a request is malformed (carries field violations)
    ├── NotFoundError        no such job (or not this tenant's)
    ├── ConflictError        the job is in a state that does not allow the operation
    ├── LimitError           a quota or size limit is exceeded
    ├── UnavailableError     Redis (or another dependency) cannot be reached
    │   ├── ShuttingDown         the service is stopping while a stream waited; reconnect with the cursor
    │   ├── BrowserUnavailable   Chromium cannot be launched, or the browser manager is stopped
    │   ├── ArtifactStoreUnavailable  the artifact store cannot be reached, refuses Sentinel's
    │   │                             credentials, or has no such bucket (never the caller's fault)
    │   ├── ExecutorRefused      an executor did not take a direct run (full, draining, unreachable)
    │   └── ExecutorLost         an executor lost a direct run mid-way (it stopped, the call broke)
    ├── UnauthenticatedError no API key, or one this service does not know
    ├── PermissionDeniedError the key's role is too low for the operation
    ├── StepFailure          a step of a test did not pass (a test *result*, never a status code)
    │   ├── AssertionFailure     an expect_* step did not hold within its timeout
    │   ├── NavigationRefused    the navigation guard refused to let the page load a URL
    │   └── RequestFailed        a request step's HTTP request got no answer (refused, reset, no DNS)
    └── RunInterrupted       a run must stop at once (executor-internal, never a status code)
        ├── LeaseLost            another executor took the job over, or it was finished
        └── CancelRequested      a client asked to cancel the job

Business logic raises these; the gRPC edge maps them to status codes in exactly one place
(`shared.edge.status`). Nothing here imports grpc.
"""

from __future__ import annotations

from dataclasses import dataclass


class SentinelError(Exception):
    """Base of every error Sentinel raises on purpose."""


class ConfigError(SentinelError):
    pass


class DecodeError(SentinelError):
    pass


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class ValidationError(SentinelError):
    def __init__(self, violations: list[FieldViolation]) -> None:
        self.violations = violations
        first = violations[0] if violations else FieldViolation("request", "invalid")
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        super().__init__(f"{first.field}: {first.description}{more}")


class NotFoundError(SentinelError):
    pass


class ConflictError(SentinelError):
    pass


class LimitError(SentinelError):
    pass


class UnavailableError(SentinelError):
    pass


class UnauthenticatedError(SentinelError):
    pass


class PermissionDeniedError(SentinelError):
    pass


class ShuttingDown(UnavailableError):
    def __init__(self, message: str = "the server is shutting down; reconnect with your last cursor") -> None:
        super().__init__(message)


class BrowserUnavailable(UnavailableError):
    pass


class ArtifactStoreUnavailable(UnavailableError):
    pass


class ExecutorRefused(UnavailableError):
    pass


class ExecutorLost(UnavailableError):
    pass


class StepFailure(SentinelError):
    pass


class AssertionFailure(StepFailure):
    pass


class NavigationRefused(StepFailure):
    pass


class RequestFailed(StepFailure):
    pass


class RunInterrupted(SentinelError):
    pass


class LeaseLost(RunInterrupted):
    pass


class CancelRequested(RunInterrupted):
    pass
