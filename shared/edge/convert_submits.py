"""Submits from domain values back to protobuf: the inverse of `submit_from_proto`.

The API shows a schedule's template (the SubmitRequest each fire submits) as it was stored, and tests
build requests from domain values. Like the inbound conversion, step actions convert generically
over their registry (`shared.actions`). Re-exported by `shared.edge.convert`. Nothing here may
import grpc.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from protos import sentinel_pb2 as pb
from shared.edge.convert_enums import artifact_policy_to_proto, priority_to_proto, source_to_proto
from shared.model import JobOptions, Step, SubmitCommand, TestDefinition

__all__ = ["definition_to_proto", "options_to_proto", "set_field", "step_to_proto", "submit_to_proto"]


def submit_to_proto(command: SubmitCommand) -> pb.SubmitRequest:
    """The request that `submit_from_proto` turns into `command`."""
    return pb.SubmitRequest(
        definition=definition_to_proto(command.definition),
        options=options_to_proto(command.options),
        user_id=command.user_id,
        request_id=command.request_id,
        source=source_to_proto(command.source),
    )


def options_to_proto(options: JobOptions) -> pb.JobOptions:
    """Job options as protobuf."""
    return pb.JobOptions(
        priority=priority_to_proto(options.priority),
        timeout_ms=options.timeout_ms,
        tags=options.tags,
        max_attempts=options.max_attempts,
        delay_ms=options.delay_ms,
        idempotency_key=options.idempotency_key,
        backoff_ms=options.backoff_ms,
        artifact_policy=artifact_policy_to_proto(options.artifact_policy),
        record_video=options.record_video,
    )


def definition_to_proto(definition: TestDefinition) -> pb.TestDefinition:
    """A test definition as protobuf; `definition_from_proto` of it gives it back."""
    message = pb.TestDefinition(
        name=definition.name,
        base_url=definition.base_url,
        steps=[step_to_proto(step) for step in definition.steps],
    )
    if definition.viewport is not None:
        message.viewport.width = definition.viewport.width
        message.viewport.height = definition.viewport.height
    return message


def step_to_proto(step: Step) -> pb.Step:
    """One step as protobuf (no oneof member set when it has no action)."""
    message = pb.Step(name=step.name, timeout_ms=step.timeout_ms, frames=step.frames)
    if step.action is not None:
        member: Any = getattr(message, step.action.kind)
        # An action whose fields are all defaults (`Screenshot()`) must still be the one set; say
        # so outright rather than rely on each protobuf runtime marking an empty copy present.
        member.SetInParent()
        for f in dataclasses.fields(step.action):
            if f.init:
                set_field(member, f.name, getattr(step.action, f.name))
    return message


def set_field(message: Any, name: str, value: Any) -> None:
    """Set a field of an action's message from its domain value: a scalar, a dict (a map), or a
    tuple of scalars or of dataclasses (a repeated field)."""
    if isinstance(value, dict):
        getattr(message, name).update(value)
    elif isinstance(value, tuple):
        repeated = getattr(message, name)
        for item in value:
            if dataclasses.is_dataclass(item) and not isinstance(item, type):
                repeated.add(**dataclasses.asdict(item))
            else:
                repeated.append(item)
    else:
        setattr(message, name, value)
