"""`sentinel import`, and how `sentinel submit` and `sentinel run` read a test file that may be a
Chrome DevTools Recorder recording.

The conversion itself is the SDK's (`sentinel_client._recorder`: the SDK's `submit("recording.json")`
takes a recording too); this module adds Sentinel's own validation (`shared.validation`) to it, so a
step Sentinel would refuse at submit (a `chrome://` URL, a viewport too large) is reported by its
index in the recording, and turns the SDK's error into the CLI's `ValidationError`.

- `sentinel import RECORDING.json [-o FILE] [--skip-unsupported]` (`import_command`) writes the
  definition as proto3 JSON;
- `load_test` is how `sentinel submit` and `sentinel schedules create` read a test file, so they
  take a recording as it is (`sentinel run` reads its files once, in `run_command`).

It never runs a test or talks to the API, and never shows a typed (`change`) value.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from protos import sentinel_pb2 as pb
from sentinel_client import InvalidArgumentError
from sentinel_client._recorder import UNTITLED, Conversion, Skipped, is_recording
from sentinel_client._recorder import convert_recording as _convert
from shared.edge import convert
from shared.errors import FieldViolation, ValidationError
from shared.validation import validate_definition

__all__ = [
    "UNTITLED",
    "Conversion",
    "Skipped",
    "convert_recording",
    "import_command",
    "is_recording",
    "load_test",
    "unsupported_steps",
]

#: How a step Sentinel cannot run is named (`Skipped.violation`); a malformed field is `steps[4].url`.
_UNSUPPORTED_STEP = re.compile(r"steps\[\d+\] \(")


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
    if not is_recording(document):
        return path
    conversion = convert_recording(document)
    for note in conversion.notes:
        print(f"sentinel: note: {path}: {note}", file=sys.stderr)
    return conversion.definition


def convert_recording(document: Mapping[str, Any], *, skip_unsupported: bool = False) -> Conversion:
    """A recording as a Sentinel test definition, checked by Sentinel's validation (see
    `sentinel_client._recorder.convert_recording`).

    Raises:
        ValidationError: one violation per step Sentinel cannot run (`steps[4] (waitForExpression)`)
            unless `skip_unsupported`; or the recording is malformed; or what is left is not a valid
            definition (no steps, say).
    """
    try:
        return _convert(document, skip_unsupported=skip_unsupported, check=_violations)
    except InvalidArgumentError as exc:
        raise ValidationError([FieldViolation(v.field, v.description) for v in exc.violations]) from exc


def unsupported_steps(violations: list[FieldViolation]) -> bool:
    """Whether some of a recording's violations are steps `--skip-unsupported` would leave out."""
    return any(_UNSUPPORTED_STEP.match(v.field) for v in violations)


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
        if unsupported_steps(exc.violations):
            print("sentinel import: --skip-unsupported leaves these steps out", file=sys.stderr)
        return 2
    for skipped in conversion.skipped:
        left_out = skipped.violation()
        print(f"sentinel import: skipped {left_out.field}: {left_out.description}", file=sys.stderr)
    for note in conversion.notes:
        print(f"sentinel import: note: {note}", file=sys.stderr)
    rendered = json.dumps(conversion.definition, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(rendered)
    else:
        with open(output, "w", encoding="utf-8") as f:
            f.write(rendered)
    return 0


def _violations(definition: dict[str, Any]) -> list[tuple[str, str]]:
    """What Sentinel's validation says of a definition (proto3 JSON), as the API would say it."""
    found = validate_definition(convert.definition_from_proto(json_format.ParseDict(definition, pb.TestDefinition())))
    return [(v.field, v.description) for v in found]
