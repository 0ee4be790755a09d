"""Which code each Sentinel error answers with, by name, for every front door.

The one table from the exception tree (`shared.errors`, plus Redis being unreachable) to a
status code *name* — gRPC's names (`INVALID_ARGUMENT`, `NOT_FOUND` …), which the gRPC edge turns
into `grpc.StatusCode` (`shared.edge.status`) and the HTTP front door into HTTP status codes
(`api_service.http.errors`). The public message is decided here too, so that no front door shows
a stack trace or an internal detail: anything unexpected is `INTERNAL` with a generic message.
Nothing here imports grpc.
"""

from __future__ import annotations

from shared.errors import (
    ConflictError,
    LimitError,
    NotFoundError,
    PermissionDeniedError,
    SentinelError,
    UnauthenticatedError,
    UnavailableError,
    ValidationError,
)
from shared.redis_errors import REDIS_UNREACHABLE

INTERNAL = "INTERNAL"

#: First match wins: a subclass must come before its base.
CODE_NAMES: list[tuple[type[BaseException], str]] = [
    (ValidationError, "INVALID_ARGUMENT"),
    (NotFoundError, "NOT_FOUND"),
    (ConflictError, "FAILED_PRECONDITION"),
    (LimitError, "RESOURCE_EXHAUSTED"),
    (UnavailableError, "UNAVAILABLE"),
    (UnauthenticatedError, "UNAUTHENTICATED"),
    (PermissionDeniedError, "PERMISSION_DENIED"),
    *((cls, "UNAVAILABLE") for cls in REDIS_UNREACHABLE if not issubclass(cls, OSError)),
]


def code_name(exc: BaseException) -> str:
    """The status code name `exc` answers with (`INTERNAL` for anything not in the table)."""
    for cls, name in CODE_NAMES:
        if isinstance(exc, cls):
            return name
    return INTERNAL


def message_for(exc: BaseException) -> str:
    """What the caller is told about `exc`: its own message for Sentinel's errors, never internals."""
    if code_name(exc) == "UNAVAILABLE" and isinstance(exc, REDIS_UNREACHABLE):
        return "the queue store (Redis) is unreachable; try again shortly"
    if isinstance(exc, SentinelError):
        return str(exc)
    return "internal error"
