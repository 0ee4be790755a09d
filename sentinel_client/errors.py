"""The SDK's one exception tree; every failed gRPC call becomes one of these, at one place.

    SentinelError                 .code (the gRPC status), .message
    ├── InvalidArgumentError      INVALID_ARGUMENT, or a bad test file; .violations: [(field, description)]
    ├── NotFoundError             NOT_FOUND: no such job or artifact (or not your tenant's)
    ├── AlreadyExistsError        ALREADY_EXISTS
    ├── FailedPreconditionError   FAILED_PRECONDITION: the job's state forbids it (cancelling a finished job)
    ├── UnauthenticatedError      UNAUTHENTICATED: no API key, or one the API does not know
    ├── PermissionDeniedError     PERMISSION_DENIED: the key's role is too low
    ├── ResourceExhaustedError    RESOURCE_EXHAUSTED: a tenant limit or a size cap
    ├── UnavailableError          UNAVAILABLE: the API (or its Redis) cannot be reached; retried for safe calls
    ├── DeadlineExceededError     DEADLINE_EXCEEDED: the call's deadline passed
    ├── CallCancelledError        CANCELLED: the call was cancelled
    ├── UnimplementedError        UNIMPLEMENTED: the API is older than this SDK
    ├── InternalError             INTERNAL, UNKNOWN, DATA_LOSS: the API failed
    ├── ConfigError               a SENTINEL_* variable (Client.from_env) or a constructor argument is wrong
    │                             (a URL for a target, a timeout that is no number), or the client is closed
    └── WaitTimeout               also a builtin TimeoutError: `wait(timeout)` ran out before the job ended

`from_rpc_error` is the only place a gRPC error is converted. Nothing else in the SDK lets a
`grpc.RpcError` reach the caller. An error the SDK finds itself, before any call, carries the code
the API would have answered (`default_code`: a bad field is INVALID_ARGUMENT whichever side
catches it); only ConfigError and WaitTimeout, which no API answer means, have `.code` None.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import grpc

from sentinel_client._status import field_violations


class FieldViolation(NamedTuple):
    """One bad field of a request: `definition.steps[3].click.selector`, and what is wrong with it."""

    field: str
    description: str


class SentinelError(Exception):
    """Base of every error the SDK raises.

    Attributes:
        code: the status code the API answered with; for an error raised on this side, the one the
            API would have answered (the class's `default_code`; None for ConfigError, WaitTimeout).
        message: the API's message (or the SDK's), also `str(error)`.
    """

    #: `.code` of an error raised on this side.
    default_code: ClassVar[grpc.StatusCode | None] = None

    def __init__(self, message: str, *, code: grpc.StatusCode | None = None, pushback_ms: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else self.default_code
        #: The API's word on retrying (`grpc-retry-pushback-ms`): negative, do not; else wait so many ms.
        self.pushback_ms = pushback_ms

    def __repr__(self) -> str:
        code = f", code={self.code.name}" if self.code else ""
        return f"{type(self).__name__}({self.message!r}{code})"


class InvalidArgumentError(SentinelError):
    """The request is malformed; `violations` names each bad field, by its path in the request as
    the API names it (`schedule.interval_ms`), whichever side found it."""

    default_code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(
        self,
        message: str,
        *,
        violations: list[FieldViolation] | None = None,
        code: grpc.StatusCode | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.violations: list[FieldViolation] = list(violations or ())

    @classmethod
    def of(cls, field: str, description: str) -> InvalidArgumentError:
        """A local error for one bad field, worded like the API's: `schedule.jitter_ms: must be an
        integer ≥ 0, got -1` (INVALID_ARGUMENT, as the API's)."""
        return cls.listing([FieldViolation(field, description)])

    @classmethod
    def listing(cls, violations: list[FieldViolation], *, code: grpc.StatusCode | None = None) -> InvalidArgumentError:
        """An error for several bad fields, its message a line for each (`field: what is wrong`)."""
        return cls("\n".join(f"{v.field}: {v.description}" for v in violations), violations=violations, code=code)


class NotFoundError(SentinelError):
    default_code = grpc.StatusCode.NOT_FOUND


class AlreadyExistsError(SentinelError):
    default_code = grpc.StatusCode.ALREADY_EXISTS


class FailedPreconditionError(SentinelError):
    default_code = grpc.StatusCode.FAILED_PRECONDITION


class UnauthenticatedError(SentinelError):
    default_code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDeniedError(SentinelError):
    default_code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhaustedError(SentinelError):
    default_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class UnavailableError(SentinelError):
    default_code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceededError(SentinelError):
    default_code = grpc.StatusCode.DEADLINE_EXCEEDED


class CallCancelledError(SentinelError):
    default_code = grpc.StatusCode.CANCELLED


class UnimplementedError(SentinelError):
    default_code = grpc.StatusCode.UNIMPLEMENTED


class InternalError(SentinelError):
    default_code = grpc.StatusCode.INTERNAL


class ConfigError(SentinelError):
    pass


class WaitTimeout(SentinelError, TimeoutError):
    """`wait(timeout)` ran out before the job (or the run: `wait_run`) ended; it goes on (cancel it if
    it should not). `job_id` is the run's id for a run."""

    def __init__(self, job_id: str, timeout: float, last_state: str | None, *, kind: str = "job") -> None:
        seen = f" (last seen {last_state})" if last_state else ""
        super().__init__(f"{kind} {job_id} has not ended within {timeout:g} s{seen}")
        self.job_id = job_id
        self.last_state = last_state


_BY_CODE: dict[grpc.StatusCode, type[SentinelError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.CANCELLED: CallCancelledError,
    grpc.StatusCode.UNIMPLEMENTED: UnimplementedError,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.UNKNOWN: InternalError,
    grpc.StatusCode.DATA_LOSS: InternalError,
}


def from_rpc_error(exc: grpc.RpcError) -> SentinelError:
    """The SDK error for a failed call, sync (`grpc.RpcError`) or async (`grpc.aio.AioRpcError`) alike.

    Both kinds are also a `grpc.Call`-like object with the status code, details and trailers.
    """
    call: Any = exc
    code: grpc.StatusCode = call.code() if hasattr(call, "code") else grpc.StatusCode.UNKNOWN
    message = str(call.details() if hasattr(call, "details") else exc) or code.name
    cls = _BY_CODE.get(code, SentinelError)
    trailers = call.trailing_metadata() if hasattr(call, "trailing_metadata") else None
    if cls is InvalidArgumentError:
        violations = [FieldViolation(f, d) for f, d in field_violations(trailers)]
        return InvalidArgumentError(message, violations=violations, code=code)
    return cls(message, code=code, pushback_ms=_pushback_ms(trailers))


def _pushback_ms(trailers: Any) -> int | None:
    """The `grpc-retry-pushback-ms` trailer's value; None when absent or not a number."""
    for key, value in trailers or ():
        if key == "grpc-retry-pushback-ms":
            try:
                return int(value)
            except (TypeError, ValueError):
                return None
    return None
