"""Chrome DevTools Recorder recordings as Sentinel test definitions.

A recording is the JSON that Chrome's Recorder panel exports (the format of `@puppeteer/replay`):
`{"title": ..., "steps": [{"type": "navigate", ...}, ...]}`. This module is the one place that
tells a recording from a Sentinel definition (`is_recording`) and converts it (`convert_recording`):

- `sentinel import RECORDING.json [-o FILE] [--skip-unsupported]` (`import_command`) writes the
  definition as proto3 JSON;
- `load_test` is how `sentinel submit` and `sentinel run` read a test file, so they take a
  recording as it is.

The step rules live in `recorder_steps`, the selector choice in `recorder_selectors` and the keys in
`recorder_keys`. A converted step is then checked by Sentinel's own validation (`shared.validation`),
so a step Sentinel would refuse at submit (a `chrome://` URL, a viewport too large) is reported by
its index in the recording. Each step that cannot be converted is named, `steps[4] (waitForExpression):
why`; with `skip_unsupported` they are left out and listed instead.

It never runs a test or talks to the API, and never shows a typed (`change`) value.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from protos import sentinel_pb2 as pb
from sentinel_cli.recorder_steps import CONVERTERS, UNSUPPORTED, WHOLE_LIMIT, Flow, Out, RecordedStep, Refused
from shared.edge import convert
from shared.errors import FieldViolation, ValidationError
from shared.validation import MAX_NAME_CHARS, validate_definition

__all__ = ["Conversion", "Skipped", "convert_recording", "import_command", "is_recording", "load_test"]

#: The definition's name when the recording's title is blank (validation requires one).
UNTITLED = "Chrome Recorder recording"
#: How a step Sentinel cannot run is named (`Skipped.violation`); a malformed field is `steps[4].url`.
_UNSUPPORTED_STEP = re.compile(r"steps\[\d+\] \(")


@dataclass(frozen=True)
class Skipped:
    """A recorded step Sentinel cannot run: its index and type in the recording, and why."""

    index: int
    type: str
    reason: str

    def violation(self) -> FieldViolation:
        return FieldViolation(f"steps[{self.index}] ({self.type})", self.reason)


@dataclass(frozen=True)
class Conversion:
    """A converted recording: the proto3 JSON of a `TestDefinition`, and the steps left out of it."""

    definition: dict[str, Any]
    skipped: tuple[Skipped, ...] = ()


def is_recording(document: object) -> bool:
    """Whether a parsed JSON file is a Recorder recording: top-level `steps` whose items have a `type`
    (a Sentinel definition's steps never do)."""
    if not isinstance(document, dict):
        return False
    steps = document.get("steps")
    return isinstance(steps, list) and any(isinstance(step, dict) and "type" in step for step in steps)


def load_test(path: str) -> str | dict[str, Any]:
    """A test file as `sentinel submit` and `sentinel run` send it: a Recorder recording converted
    (failing on any step Sentinel cannot run); any other file's path as it is, for the SDK to read.

    Raises:
        OSError: the file cannot be read.
        ValidationError: the recording names each step it cannot convert.
    """
    text = Path(path).read_text(encoding="utf-8")
    try:
        document = json.loads(text.removeprefix("\ufeff"))
    except (ValueError, RecursionError):
        return path  # the SDK says what is wrong with it
    return convert_recording(document).definition if is_recording(document) else path


def convert_recording(document: Mapping[str, Any], *, skip_unsupported: bool = False) -> Conversion:
    """A recording as a Sentinel test definition.

    Args:
        document: the parsed JSON of a recording.
        skip_unsupported: leave out the steps Sentinel cannot run (listed in `Conversion.skipped`)
            instead of failing.

    Raises:
        ValidationError: one violation per step Sentinel cannot run (`steps[4] (waitForExpression)`)
            unless `skip_unsupported`; or the recording is malformed; or what is left is not a valid
            definition (no steps, say).
    """
    raw_steps = document.get("steps")
    if not isinstance(raw_steps, list):
        raise ValidationError([FieldViolation("steps", "must be a list of recorded steps")])
    steps = [_recorded(index, raw) for index, raw in enumerate(raw_steps)]
    title = document.get("title")
    name = title.strip()[:MAX_NAME_CHARS] if isinstance(title, str) and title.strip() else UNTITLED
    converted, skipped = _convert_steps(steps, _flow_timeout(document))
    skipped |= _refused_by_validation(converted)
    if skipped and not skip_unsupported:
        raise ValidationError([skipped[index].violation() for index in sorted(skipped)])
    kept = {index: outs for index, outs in converted.steps.items() if index not in skipped}
    viewport = converted.viewport if converted.viewport_index not in skipped else None
    definition = _definition(name, viewport, kept)
    found = _violations(definition)
    if found:
        raise ValidationError(found)
    return Conversion(definition, tuple(skipped[index] for index in sorted(skipped)))


def import_command(path: str, *, output: str | None, skip_unsupported: bool) -> int:
    """`sentinel import`: 0 when the definition was written, 2 when the recording cannot be converted."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        try:
            document = json.loads(text.removeprefix("\ufeff"))
        except (ValueError, RecursionError) as exc:
            raise ValidationError([FieldViolation("file", f"is not valid JSON: {exc}")]) from exc
        if not is_recording(document):
            raise ValidationError(
                [FieldViolation("file", "is not a Chrome Recorder recording (top-level `steps` with a `type` each)")]
            )
        conversion = convert_recording(document, skip_unsupported=skip_unsupported)
    except ValidationError as exc:
        for violation in exc.violations:
            print(f"sentinel import: {violation.field}: {violation.description}", file=sys.stderr)
        if any(_UNSUPPORTED_STEP.match(v.field) for v in exc.violations):
            print("sentinel import: --skip-unsupported leaves these steps out", file=sys.stderr)
        return 2
    for skipped in conversion.skipped:
        violation = skipped.violation()
        print(f"sentinel import: skipped {violation.field}: {violation.description}", file=sys.stderr)
    rendered = json.dumps(conversion.definition, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(rendered)
    else:
        with open(output, "w", encoding="utf-8") as f:
            f.write(rendered)
    return 0


# --- converting ------------------------------------------------------------------------------


@dataclass
class _Converted:
    """Each recorded step's Sentinel steps (proto3 JSON) by its index, and the viewport."""

    steps: dict[int, list[dict[str, Any]]]
    types: dict[int, str]
    viewport: tuple[int, int] | None
    viewport_index: int


def _recorded(index: int, raw: object) -> RecordedStep:
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise ValidationError([FieldViolation(f"steps[{index}]", "must be an object with a string `type`")])
    return RecordedStep(index, raw)


def _flow_timeout(document: Mapping[str, Any]) -> int:
    timeout = document.get("timeout", 0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 <= timeout < WHOLE_LIMIT:
        raise ValidationError([FieldViolation("timeout", "must be a number of milliseconds")])
    return round(timeout)


def _convert_steps(steps: list[RecordedStep], timeout_ms: int) -> tuple[_Converted, dict[int, Skipped]]:
    last_action = max((s.index for s in steps if s.type != "close"), default=-1)
    flow = Flow(last_action=last_action)
    converted = _Converted(steps={}, types={s.index: s.type for s in steps}, viewport=None, viewport_index=-1)
    skipped: dict[int, Skipped] = {}
    for step in steps:
        try:
            outs = list(_convert_one(flow, step))
        except Refused as exc:
            skipped[step.index] = Skipped(step.index, step.type, exc.reason)
            continue
        outs += _expectations(step)
        step_timeout = step.whole("timeout", timeout_ms)
        converted.steps[step.index] = [out.to_json(step_timeout) for out in outs]
    converted.viewport, converted.viewport_index = flow.viewport, flow.viewport_index
    return converted, skipped


def _convert_one(flow: Flow, step: RecordedStep) -> list[Out]:
    target = step.raw.get("target", "main")
    if target != "main":
        raise Refused(f"it runs in another target ({target}: a popup or an iframe); Sentinel acts on the main page")
    if step.raw.get("frame"):
        raise Refused(f"it runs in an iframe (frame {step.raw['frame']}); Sentinel acts on the top frame")
    converter = CONVERTERS.get(step.type)
    if converter is None:
        raise Refused(UNSUPPORTED.get(step.type, "Sentinel does not know this step type"))
    return list(converter(flow, step))


def _expectations(step: RecordedStep) -> list[Out]:
    """An asserted navigation as checks after the step that caused it: the URL, then the title."""
    events = step.raw.get("assertedEvents") or []
    if not isinstance(events, list) or not all(isinstance(e, dict) and e.get("type") == "navigation" for e in events):
        raise step.malformed("assertedEvents", "must be a list of navigation events")
    outs: list[Out] = []
    for event in events:
        url, title = event.get("url"), event.get("title")
        if isinstance(url, str) and url:
            outs.append(Out("expectUrl", {"pattern": f"^{re.escape(url)}$"}, f"navigated to {url}"))
        if isinstance(title, str) and title:
            outs.append(Out("expectTitle", {"text": title}))
    return outs


def _refused_by_validation(converted: _Converted) -> dict[int, Skipped]:
    """The recorded steps whose Sentinel steps validation refuses (a `chrome://` URL, a viewport too
    large), each with what it says."""
    origin = [index for index in sorted(converted.steps) for _ in converted.steps[index]]
    reasons: dict[int, list[str]] = {}
    for violation in _violations(_definition(UNTITLED, converted.viewport, converted.steps)):
        path = violation.field.removeprefix("definition.")
        where, _, rest = path.partition(".")
        if where.startswith("steps[") and rest:
            index, path = origin[int(where.removeprefix("steps[").rstrip("]"))], rest
        elif where == "viewport":
            index = converted.viewport_index
        else:
            continue  # the definition as a whole: checked once the refused steps are out
        reasons.setdefault(index, []).append(f"{path} {violation.description}")
    return {i: Skipped(i, converted.types[i], "; ".join(r)) for i, r in reasons.items()}


def _definition(
    name: str, viewport: tuple[int, int] | None, steps: Mapping[int, list[dict[str, Any]]]
) -> dict[str, Any]:
    definition: dict[str, Any] = {"name": name}
    if viewport is not None:
        definition["viewport"] = {"width": viewport[0], "height": viewport[1]}
    definition["steps"] = [step for index in sorted(steps) for step in steps[index]]
    return definition


def _violations(definition: dict[str, Any]) -> list[FieldViolation]:
    """What Sentinel's validation says of a definition (proto3 JSON), as the API would say it."""
    return validate_definition(convert.definition_from_proto(json_format.ParseDict(definition, pb.TestDefinition())))
