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
    ArtifactStoreUnavailable,
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


def retry_pushback_ms(exc: BaseException) -> int | None:
    """How long a client should wait before it asks again after `exc` (gRPC's retry pushback,
    `grpc-retry-pushback-ms`): -1 for "do not ask again", None for the client's own policy.

    An artifact store that did not answer was already asked again by the API within its own
    budget (`shared.artifact_s3`: connection retries, request timeouts), and a store that is not
    configured never will be: a client that retries such an UNAVAILABLE only makes its user wait
    several store timeouts for the same answer.
    """
    return -1 if isinstance(exc, ArtifactStoreUnavailable) else None


def message_for(exc: BaseException) -> str:
    """What the caller is told about `exc`: its own message for Sentinel's errors, never internals."""
    if code_name(exc) == "UNAVAILABLE" and isinstance(exc, REDIS_UNREACHABLE):
        return "the queue store (Redis) is unreachable; try again shortly"
    if isinstance(exc, SentinelError):
        return str(exc)
    return "internal error"
