"""The one place protobuf becomes domain values and back: the API's conversion layer.

Servicers call these at their edge; nothing behind them sees a protobuf message. Converting
from protobuf never validates and never raises on a well-formed message: a step with no action
becomes `Step(action=None)` and an empty definition an empty `TestDefinition`, so that
`shared.validation` can report every problem with its field path in one answer.
Enum maps live in `convert_enums` and the outbound job views in `convert_jobs`; both are
re-exported here, so callers import everything from this module. Nothing here may import grpc.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from protos import sentinel_pb2 as pb
from shared.edge.convert_enums import (
    artifact_policy_from_proto,
    artifact_policy_to_proto,
    error_category_from_proto,
    error_category_to_proto,
    priority_from_proto,
    priority_to_proto,
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
from shared.errors import FieldViolation, ValidationError
from shared.model import (
    Action,
    ArtifactPolicy,
    Check,
    Click,
    ExpectText,
    ExpectTitle,
    ExpectUrl,
    ExpectVisible,
    Fill,
    Hover,
    JobOptions,
    JobSource,
    Navigate,
    Press,
    Priority,
    Screenshot,
    SelectOption,
    Step,
    SubmitCommand,
    TestDefinition,
    Viewport,
    Wait,
    WaitFor,
)

__all__ = [
    "artifact_policy_from_proto",
    "artifact_policy_to_proto",
    "dead_letter_to_proto",
    "definition_from_proto",
    "definition_to_proto",
    "error_category_from_proto",
    "error_category_to_proto",
    "job_error_to_proto",
    "job_to_proto",
    "load_submit_file",
    "options_from_proto",
    "options_to_proto",
    "priority_from_proto",
    "priority_to_proto",
    "progress_event_to_proto",
    "progress_to_proto",
    "result_to_proto",
    "source_from_proto",
    "source_to_proto",
    "state_from_proto",
    "state_to_proto",
    "step_from_proto",
    "step_result_to_proto",
    "step_to_proto",
    "submit_from_proto",
    "submit_to_proto",
    "timestamp",
    "violations_to_proto",
]

# --- submit: protobuf → domain ---------------------------------------------------------------


def submit_from_proto(req: pb.SubmitRequest) -> SubmitCommand:
    """A submit request as domain values, with the server's defaults for unspecified enums."""
    return SubmitCommand(
        definition=definition_from_proto(req.definition),
        options=options_from_proto(req.options),
        user_id=req.user_id,
        request_id=req.request_id,
        source=source_from_proto(req.source) or JobSource.API,
    )


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
    return Step(action=_action_from_proto(step), name=step.name, timeout_ms=step.timeout_ms)


def _action_from_proto(step: pb.Step) -> Action | None:
    kind = step.WhichOneof("action")
    if kind == "navigate":
        return Navigate(url=step.navigate.url)
    if kind == "click":
        return Click(selector=step.click.selector)
    if kind == "fill":
        return Fill(selector=step.fill.selector, value=step.fill.value, secret=step.fill.secret)
    if kind == "press":
        return Press(selector=step.press.selector, key=step.press.key)
    if kind == "select":
        return SelectOption(selector=step.select.selector, value=step.select.value)
    if kind == "check":
        return Check(
            selector=step.check.selector,
            checked=step.check.checked if step.check.HasField("checked") else True,
        )
    if kind == "hover":
        return Hover(selector=step.hover.selector)
    if kind == "wait_for":
        # proto3 cannot tell "" from unset: an unset state means the documented default.
        return WaitFor(selector=step.wait_for.selector, state=step.wait_for.state or "visible")
    if kind == "expect_text":
        return ExpectText(selector=step.expect_text.selector, text=step.expect_text.text)
    if kind == "expect_visible":
        return ExpectVisible(selector=step.expect_visible.selector)
    if kind == "expect_title":
        return ExpectTitle(text=step.expect_title.text)
    if kind == "expect_url":
        return ExpectUrl(pattern=step.expect_url.pattern)
    if kind == "screenshot":
        return Screenshot(name=step.screenshot.name, full_page=step.screenshot.full_page)
    if kind == "wait":
        return Wait(ms=step.wait.ms)
    return None


# --- submit: domain → protobuf (clients, and showing a stored definition) --------------------


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
    message = pb.Step(name=step.name, timeout_ms=step.timeout_ms)
    if step.action is not None:
        member: Any = getattr(message, step.action.kind)
        # An action whose fields are all defaults (`Screenshot()`) must still be the one set; say
        # so outright rather than rely on each protobuf runtime marking an empty copy present.
        member.SetInParent()
        member.CopyFrom(_action_to_proto(step.action))
    return message


def _action_to_proto(action: Action) -> Message:
    if isinstance(action, Navigate):
        return pb.Navigate(url=action.url)
    if isinstance(action, Click):
        return pb.Click(selector=action.selector)
    if isinstance(action, Fill):
        return pb.Fill(selector=action.selector, value=action.value, secret=action.secret)
    if isinstance(action, Press):
        return pb.Press(selector=action.selector, key=action.key)
    if isinstance(action, SelectOption):
        return pb.SelectOption(selector=action.selector, value=action.value)
    if isinstance(action, Check):
        return pb.Check(selector=action.selector, checked=action.checked)
    if isinstance(action, Hover):
        return pb.Hover(selector=action.selector)
    if isinstance(action, WaitFor):
        return pb.WaitFor(selector=action.selector, state=action.state)
    if isinstance(action, ExpectText):
        return pb.ExpectText(selector=action.selector, text=action.text)
    if isinstance(action, ExpectVisible):
        return pb.ExpectVisible(selector=action.selector)
    if isinstance(action, ExpectTitle):
        return pb.ExpectTitle(text=action.text)
    if isinstance(action, ExpectUrl):
        return pb.ExpectUrl(pattern=action.pattern)
    if isinstance(action, Screenshot):
        return pb.Screenshot(name=action.name, full_page=action.full_page)
    return pb.Wait(ms=action.ms)


# --- definition files ------------------------------------------------------------------------

_SUBMIT_KEYS = frozenset(name for f in pb.SubmitRequest.DESCRIPTOR.fields for name in (f.name, f.json_name))


def load_submit_file(text: str) -> pb.SubmitRequest:
    """Parse a definition file: the proto3 JSON of a `TestDefinition` or of a `SubmitRequest`.

    A file whose top level has any `SubmitRequest` key (`definition`, `options`, `userId`, ...)
    is a `SubmitRequest`; any other is a `TestDefinition`, wrapped in a request. Unknown fields
    are errors, so a misspelt action is reported rather than silently dropped.

    Raises:
        ValidationError: with one `FieldViolation("file", ...)` saying what is wrong.
    """
    try:
        document = json.loads(text.removeprefix("\ufeff"))
        if not isinstance(document, dict):
            raise ValidationError([FieldViolation("file", "must hold a JSON object")])
        if _SUBMIT_KEYS.intersection(document):
            return json_format.ParseDict(document, pb.SubmitRequest())
        return pb.SubmitRequest(definition=json_format.ParseDict(document, pb.TestDefinition()))
    except json.JSONDecodeError as exc:
        raise ValidationError([FieldViolation("file", f"is not valid JSON: {exc}")]) from exc
    except RecursionError as exc:
        raise ValidationError([FieldViolation("file", "is nested too deeply")]) from exc
    except (json_format.ParseError, ValueError, TypeError) as exc:
        raise ValidationError([FieldViolation("file", f"is not a valid test definition: {exc}")]) from exc
