"""The one place protobuf becomes domain values and back: the API's conversion layer.

Servicers call these at their edge; nothing behind them sees a protobuf message. Converting
from protobuf never validates: a step with no action becomes `Step(action=None)` and an empty
definition an empty `TestDefinition`, so that `shared.validation` can report every problem with its
field path in one answer. The one thing refused here is an enum number this server does not know
(`options.priority = 99`): no domain value can hold it, and taking the default instead would run
the job other than asked. Like a word the HTTP parser does not know, it is a `ValidationError`
naming the field, raised before validation. Step actions convert generically over their registry
(`shared.actions`), never action by action.
Submits only come in: turning one back into protobuf is for tests (tests/convert_helpers.py).
Enum maps live in `convert_enums`, the outbound job views in `convert_jobs`, artifacts in
`convert_artifacts`, runs in `convert_runs`, schedules in `convert_schedules` and submits back to protobuf
(a schedule's template) in `convert_submits`; all are re-exported here, so callers import everything from this module.
Nothing here may import grpc.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from google.protobuf.message import Message

from protos import sentinel_pb2 as pb
from shared.actions import build
from shared.edge.convert_artifacts import artifact_chunks_to_proto, artifact_to_proto
from shared.edge.convert_enums import (
    artifact_policy_from_proto,
    artifact_policy_to_proto,
    error_category_from_proto,
    error_category_to_proto,
    priority_from_proto,
    priority_to_proto,
    refuse_unknown_enums,
    source_from_proto,
    source_to_proto,
    state_from_proto,
    state_to_proto,
)
from shared.edge.convert_jobs import (
    dead_letter_to_proto,
    job_error_to_proto,
    job_to_proto,
    progress_event_to_proto,
    progress_to_proto,
    result_to_proto,
    step_result_to_proto,
    timestamp,
    violations_to_proto,
)
from shared.edge.convert_runs import run_test_to_proto, run_to_proto
from shared.edge.convert_schedules import overlap_from_proto, schedule_spec_from_proto, schedule_to_proto
from shared.edge.convert_submits import definition_to_proto, options_to_proto, submit_to_proto
from shared.errors import FieldViolation, ValidationError
from shared.model import (
    ACTIONS,
    Action,
    ArtifactPolicy,
    JobOptions,
    JobSource,
    Priority,
    RunCommand,
    RunTestSpec,
    Step,
    SubmitCommand,
    TestDefinition,
    Viewport,
)
from shared.schedules.model import ScheduleSpec
from shared.schedules.rules import PREFIX as SCHEDULE_PREFIX

__all__ = [
    "artifact_chunks_to_proto",
    "artifact_policy_from_proto",
    "artifact_policy_to_proto",
    "artifact_to_proto",
    "dead_letter_to_proto",
    "definition_from_proto",
    "definition_to_proto",
    "error_category_from_proto",
    "error_category_to_proto",
    "job_error_to_proto",
    "job_to_proto",
    "options_from_proto",
    "options_to_proto",
    "overlap_from_proto",
    "priority_from_proto",
    "priority_to_proto",
    "progress_event_to_proto",
    "progress_to_proto",
    "refuse_unknown_enums",
    "result_to_proto",
    "run_command_from_proto",
    "run_test_to_proto",
    "run_to_proto",
    "schedule_from_proto",
    "schedule_spec_from_proto",
    "schedule_to_proto",
    "source_from_proto",
    "source_to_proto",
    "state_from_proto",
    "state_to_proto",
    "step_from_proto",
    "step_result_to_proto",
    "submit_from_proto",
    "submit_to_proto",
    "timestamp",
    "violations_to_proto",
]

# --- submit: protobuf → domain ---------------------------------------------------------------


def submit_from_proto(req: pb.SubmitRequest, *, template: bool = False) -> SubmitCommand:
    """A submit request as domain values, with the server's defaults for unspecified enums.

    Raises:
        ValidationError: an enum field holds a number this server does not know (`options.priority`),
            or `source` claims the scheduler (only a schedule's fire is that, with its schedule id).
    """
    refuse_unknown_enums((req, ""), (req.options, "options."))
    if req.source == pb.JOB_SOURCE_SCHEDULER and not template:  # a template's fires are the scheduler's
        why = "JOB_SOURCE_SCHEDULER is set by Sentinel's scheduler for a schedule's fires, never by a client"
        raise ValidationError([FieldViolation("source", why)])
    return SubmitCommand(
        definition=definition_from_proto(req.definition),
        options=options_from_proto(req.options),
        user_id=req.user_id,
        request_id=req.request_id,
        source=source_from_proto(req.source) or JobSource.API,
    )


def run_command_from_proto(req: pb.SubmitRunRequest) -> RunCommand:
    """A SubmitRun as domain values: every test's definition, the options they share.

    Raises:
        ValidationError: an enum field of the run's or a test's own options holds a number this
            server does not know (`tests[2].options.priority`), checked before they are merged.
    """
    refuse_unknown_enums(
        (req.options, "options."),
        *((t.options, f"tests[{i}].options.") for i, t in enumerate(req.tests) if t.HasField("options")),
    )
    return RunCommand(
        name=req.name,
        tests=tuple(
            RunTestSpec(
                definition=definition_from_proto(t.definition),
                file=t.file,
                options=_test_options(req.options, t.options) if t.HasField("options") else None,
                own_options=options_from_proto(t.options) if t.HasField("options") else None,
            )
            for t in req.tests
        ),
        options=options_from_proto(req.options),
        max_parallel=req.max_parallel,
        user_id=req.user_id,
        request_id=req.request_id,
    )


def _test_options(run: pb.JobOptions, test: pb.JobOptions) -> JobOptions:
    """A run's test's options: its own, with every field the run's options set put over them (a
    command line's `--priority` beats a file's), the tags of both (each once), and the test's own
    idempotency key (which `validate_run` refuses: the run's is the run's)."""
    merged = pb.JobOptions()
    merged.CopyFrom(test)
    merged.MergeFrom(run)  # scalars the run sets replace the test's; repeated fields are appended
    tags = list(dict.fromkeys(merged.tags))
    del merged.tags[:]
    merged.tags.extend(tags)
    merged.idempotency_key = test.idempotency_key
    return options_from_proto(merged)


def options_from_proto(options: pb.JobOptions) -> JobOptions:
    """Job options; UNSPECIFIED priority is MEDIUM and UNSPECIFIED artifact policy ON_FAILURE."""
    return JobOptions(
        priority=priority_from_proto(options.priority) or Priority.MEDIUM,
        timeout_ms=options.timeout_ms,
        tags=tuple(options.tags),
        max_attempts=options.max_attempts,
        delay_ms=options.delay_ms,
        idempotency_key=options.idempotency_key,
        backoff_ms=options.backoff_ms,
        artifact_policy=artifact_policy_from_proto(options.artifact_policy) or ArtifactPolicy.ON_FAILURE,
        record_video=options.record_video,
    )


def definition_from_proto(definition: pb.TestDefinition) -> TestDefinition:
    """A test definition; an absent or 0x0 viewport means "the browser's default" (None)."""
    viewport = None
    if definition.HasField("viewport") and (definition.viewport.width or definition.viewport.height):
        viewport = Viewport(width=definition.viewport.width, height=definition.viewport.height)
    return TestDefinition(
        name=definition.name,
        base_url=definition.base_url,
        steps=tuple(step_from_proto(step) for step in definition.steps),
        viewport=viewport,
    )


def step_from_proto(step: pb.Step) -> Step:
    """One step; a step with no action set keeps `action=None` for validation to report."""
    return Step(action=_action_from_proto(step), name=step.name, timeout_ms=step.timeout_ms, frames=tuple(step.frames))


def _action_from_proto(step: pb.Step) -> Action | None:
    # Generic over the registry (shared.actions): the oneof member's name is the action's kind
    # and its message's fields are the dataclass's fields.
    kind = step.WhichOneof("action")
    cls = ACTIONS.get(kind) if kind is not None else None
    if cls is None:
        return None
    message = getattr(step, kind)
    return build(
        cls, {f.name: v for f in dataclasses.fields(cls) if f.init and (v := _carried(message, f)) is not _UNSET}
    )


_UNSET = object()


def _carried(message: Message, field: dataclasses.Field[Any]) -> Any:
    """The message's value for `field` as plain values (a map as a dict, a repeated field as a list,
    a message as a dict of its fields), or `_UNSET` when the action's default applies: unset, for a
    field with presence (`Check.checked`); the zero value otherwise, since proto3 cannot tell "" or
    0 from unset (an empty `WaitFor.state` means "visible")."""
    value = getattr(message, field.name)
    descriptor = message.DESCRIPTOR.fields_by_name[field.name]
    if descriptor.message_type is not None and descriptor.message_type.GetOptions().map_entry:
        return dict(value)
    if descriptor.is_repeated:
        return [_message_values(v) if descriptor.message_type is not None else v for v in value]
    if field.default is dataclasses.MISSING:
        return value
    carried = message.HasField(field.name) if descriptor.has_presence else value != descriptor.default_value
    return value if carried else _UNSET


def _message_values(message: Message) -> dict[str, Any]:
    """A message inside an action (`JsonExpectation`) as its fields' values; proto3 zero values are
    the dataclass's defaults there."""
    return {f.name: getattr(message, f.name) for f in message.DESCRIPTOR.fields}


# --- schedules -------------------------------------------------------------------------------


def schedule_from_proto(message: pb.Schedule) -> ScheduleSpec:
    """What a CreateSchedule or UpdateSchedule sets, its template converted as a Submit is.

    Raises:
        ValidationError: an enum field holds a number this server does not know, named as the
            request spells it (`schedule.overlap`, `schedule.template.options.priority`).
    """
    template = f"{SCHEDULE_PREFIX}template."
    refuse_unknown_enums(
        (message, SCHEDULE_PREFIX), (message.template, template), (message.template.options, f"{template}options.")
    )
    return schedule_spec_from_proto(message, submit_from_proto(message.template, template=True))
