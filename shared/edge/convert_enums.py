"""Enum maps between protobuf and the domain, half of the API's conversion layer.

Split out of `shared.edge.convert` (which re-exports everything here) to keep both modules small;
other code imports these from `shared.edge.convert`. Proto3 enums are open: a client may send a
number this server does not know, so every `*_from_proto` treats UNSPECIFIED and unknown numbers
alike and returns None, leaving the default to the caller. Nothing here may import grpc.
"""

from __future__ import annotations

from google.protobuf.message import Message

from protos import sentinel_pb2 as pb
from shared.errors import FieldViolation, ValidationError
from shared.model import ArtifactPolicy, ErrorCategory, JobSource, JobState, Priority
from shared.validation import MAX_VIOLATIONS

PRIORITY_TO_PROTO: dict[Priority, pb.Priority] = {
    Priority.HIGH: pb.PRIORITY_HIGH,
    Priority.MEDIUM: pb.PRIORITY_MEDIUM,
    Priority.LOW: pb.PRIORITY_LOW,
}

JOB_STATE_TO_PROTO: dict[JobState, pb.JobState] = {
    JobState.PENDING: pb.JOB_STATE_PENDING,
    JobState.SCHEDULED: pb.JOB_STATE_SCHEDULED,
    JobState.RUNNING: pb.JOB_STATE_RUNNING,
    JobState.COMPLETED: pb.JOB_STATE_COMPLETED,
    JobState.FAILED: pb.JOB_STATE_FAILED,
    JobState.TIMEOUT: pb.JOB_STATE_TIMEOUT,
    JobState.CANCELLED: pb.JOB_STATE_CANCELLED,
}

ERROR_CATEGORY_TO_PROTO: dict[ErrorCategory, pb.ErrorCategory] = {
    ErrorCategory.NETWORK: pb.ERROR_CATEGORY_NETWORK,
    ErrorCategory.TIMEOUT: pb.ERROR_CATEGORY_TIMEOUT,
    ErrorCategory.BROWSER: pb.ERROR_CATEGORY_BROWSER,
    ErrorCategory.SYSTEM: pb.ERROR_CATEGORY_SYSTEM,
    ErrorCategory.VALIDATION: pb.ERROR_CATEGORY_VALIDATION,
    ErrorCategory.ASSERTION: pb.ERROR_CATEGORY_ASSERTION,
    ErrorCategory.POLICY: pb.ERROR_CATEGORY_POLICY,
    ErrorCategory.UNKNOWN: pb.ERROR_CATEGORY_UNKNOWN,
}

ARTIFACT_POLICY_TO_PROTO: dict[ArtifactPolicy, pb.ArtifactPolicy] = {
    ArtifactPolicy.ON_FAILURE: pb.ARTIFACT_POLICY_ON_FAILURE,
    ArtifactPolicy.ALWAYS: pb.ARTIFACT_POLICY_ALWAYS,
    ArtifactPolicy.NEVER: pb.ARTIFACT_POLICY_NEVER,
}

JOB_SOURCE_TO_PROTO: dict[JobSource, pb.JobSource] = {
    JobSource.API: pb.JOB_SOURCE_API,
    JobSource.SCHEDULER: pb.JOB_SOURCE_SCHEDULER,
    JobSource.WEBHOOK: pb.JOB_SOURCE_WEBHOOK,
}

_PRIORITY_FROM_PROTO: dict[int, Priority] = {v: k for k, v in PRIORITY_TO_PROTO.items()}
_JOB_STATE_FROM_PROTO: dict[int, JobState] = {v: k for k, v in JOB_STATE_TO_PROTO.items()}
_ERROR_CATEGORY_FROM_PROTO: dict[int, ErrorCategory] = {v: k for k, v in ERROR_CATEGORY_TO_PROTO.items()}
_ARTIFACT_POLICY_FROM_PROTO: dict[int, ArtifactPolicy] = {v: k for k, v in ARTIFACT_POLICY_TO_PROTO.items()}
_JOB_SOURCE_FROM_PROTO: dict[int, JobSource] = {v: k for k, v in JOB_SOURCE_TO_PROTO.items()}


def priority_to_proto(priority: Priority) -> pb.Priority:
    """The protobuf value of a domain priority."""
    return PRIORITY_TO_PROTO[priority]


def priority_from_proto(value: int) -> Priority | None:
    """The domain priority, or None for UNSPECIFIED (and numbers this server does not know)."""
    return _PRIORITY_FROM_PROTO.get(value)


def state_to_proto(state: JobState) -> pb.JobState:
    """The protobuf value of a domain job state."""
    return JOB_STATE_TO_PROTO[state]


def state_from_proto(value: int) -> JobState | None:
    """The domain job state, or None for UNSPECIFIED (and numbers this server does not know)."""
    return _JOB_STATE_FROM_PROTO.get(value)


def error_category_to_proto(category: ErrorCategory) -> pb.ErrorCategory:
    """The protobuf value of an error category."""
    return ERROR_CATEGORY_TO_PROTO[category]


def error_category_from_proto(value: int) -> ErrorCategory | None:
    """The domain error category, or None for UNSPECIFIED (and unknown numbers)."""
    return _ERROR_CATEGORY_FROM_PROTO.get(value)


def artifact_policy_to_proto(policy: ArtifactPolicy) -> pb.ArtifactPolicy:
    """The protobuf value of an artifact policy."""
    return ARTIFACT_POLICY_TO_PROTO[policy]


def artifact_policy_from_proto(value: int) -> ArtifactPolicy | None:
    """The domain artifact policy, or None for UNSPECIFIED (and unknown numbers)."""
    return _ARTIFACT_POLICY_FROM_PROTO.get(value)


def source_to_proto(source: JobSource) -> pb.JobSource:
    """The protobuf value of a job source."""
    return JOB_SOURCE_TO_PROTO[source]


def source_from_proto(value: int) -> JobSource | None:
    """The domain job source, or None for UNSPECIFIED (and unknown numbers)."""
    return _JOB_SOURCE_FROM_PROTO.get(value)


def refuse_unknown_enums(*messages: tuple[Message, str]) -> None:
    """Refuse an enum field (of each message, not of the messages inside it) holding a number its
    enum does not define. Proto3 enums are open, so such a number parses; the `*_from_proto` maps
    would read it as UNSPECIFIED and the server's default would silently apply.

    Args:
        messages: each message with the path of its fields (``"options."``).

    Raises:
        ValidationError: one violation per such field, naming it and the numbers' names.
    """
    found: list[FieldViolation] = []
    for message, path in messages:
        for field in message.DESCRIPTOR.fields:
            enum_type = field.enum_type
            if enum_type is None:
                continue
            value = getattr(message, field.name)
            numbered = list(enumerate(value)) if field.is_repeated else [(None, value)]
            for index, number in numbered:
                if number not in enum_type.values_by_number:
                    at = f"{path}{field.name}" if index is None else f"{path}{field.name}[{index}]"
                    names = ", ".join(v.name for v in enum_type.values)
                    found.append(FieldViolation(at, f"must be one of {names}, got {number}"))
    if found:
        raise ValidationError(found[:MAX_VIOLATIONS])
