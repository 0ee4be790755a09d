"""Chrome DevTools Recorder recordings as Sentinel test definitions.

A recording is the JSON that Chrome's Recorder panel exports (the format of `@puppeteer/replay`):
`{"title": ..., "steps": [{"type": "navigate", ...}, ...]}`. This module is the one place that
tells a recording from a Sentinel definition (`is_recording`) and converts it (`convert_recording`),
so `submit("recording.json")`, `sentinel submit`, `sentinel run` and `sentinel import` all take the
same recordings the same way.

The step rules live in `_recorder_steps`, the selector choice in `_recorder_selectors` and the keys in
`_recorder_keys`. Each step that cannot be converted is named, `steps[4] (waitForExpression): why`;
with `skip_unsupported` they are left out and listed instead. A caller that can run Sentinel's own
validation (the CLI) passes it as `check`, so a step Sentinel would refuse at submit (a `chrome://`
URL, a viewport too large) is reported by its index in the recording; the SDK leaves that to the API.

It never runs a test or talks to the API, and never shows a typed (`change`) value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sentinel_client._recorder_steps import (
    CONVERTERS,
    MAX_NAME_CHARS,
    UNSUPPORTED,
    WHOLE_LIMIT,
    Flow,
    Out,
    RecordedStep,
    Refused,
    invalid,
)
from sentinel_client.errors import FieldViolation

__all__ = ["UNTITLED", "Check", "Conversion", "Skipped", "convert_recording", "is_recording"]

#: The definition's name when the recording's title is blank (validation requires one).
UNTITLED = "Chrome Recorder recording"

#: Sentinel's validation of a definition (proto3 JSON): each bad field (`definition.steps[2].navigate.url`)
#: and what is wrong with it.
Check = Callable[[dict[str, Any]], Iterable[tuple[str, str]]]


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
    """A converted recording: the proto3 JSON of a `TestDefinition`, the steps left out of it, and
    what its user should check in it (`notes`: steps whose iframe is named by its position)."""

    definition: dict[str, Any]
    skipped: tuple[Skipped, ...] = ()
    notes: tuple[str, ...] = ()


def is_recording(document: object) -> bool:
    """Whether a parsed JSON file is a Recorder recording: top-level `steps` whose items have a `type`
    (a Sentinel definition's steps never do)."""
    if not isinstance(document, Mapping):
        return False
    steps = document.get("steps")
    return isinstance(steps, list) and any(isinstance(step, dict) and "type" in step for step in steps)


def convert_recording(
    document: Mapping[str, Any], *, skip_unsupported: bool = False, check: Check | None = None
) -> Conversion:
    """A recording as a Sentinel test definition.

    Args:
        document: the parsed JSON of a recording.
        skip_unsupported: leave out the steps Sentinel cannot run (listed in `Conversion.skipped`)
            instead of failing.
        check: Sentinel's validation, when the caller has it: a step it refuses is one Sentinel
            cannot run, and what is left must pass it.

    Raises:
        InvalidArgumentError: one violation per step Sentinel cannot run (`steps[4] (waitForExpression)`)
            unless `skip_unsupported`; or the recording is malformed; or what is left is not a valid
            definition (no steps, say).
    """
    raw_steps = document.get("steps")
    if not isinstance(raw_steps, list):
        raise invalid([FieldViolation("steps", "must be a list of recorded steps")])
    steps = [_recorded(index, raw) for index, raw in enumerate(raw_steps)]
    title = document.get("title")
    name = title.strip()[:MAX_NAME_CHARS] if isinstance(title, str) and title.strip() else UNTITLED
    converted, skipped = _convert_steps(steps, _flow_timeout(document))
    if check is not None:
        skipped |= _refused_by(check, converted)
    if skipped and not skip_unsupported:
        raise invalid([skipped[index].violation() for index in sorted(skipped)])
    kept = {index: outs for index, outs in converted.steps.items() if index not in skipped}
    viewport = converted.viewport if converted.viewport_index not in skipped else None
    definition = _definition(name, viewport, kept)
    found = [FieldViolation(field, description) for field, description in check(definition)] if check else []
    if found:
        raise invalid(found)
    return Conversion(definition, tuple(skipped[index] for index in sorted(skipped)), _frame_notes(steps, kept))


def _frame_notes(steps: list[RecordedStep], kept: Mapping[int, object]) -> tuple[str, ...]:
    """One note per frame path the kept steps act in. The Recorder names an iframe by its index among
    its parent's child frames as Chrome listed them: in the order they were added, and without the
    iframes of other sites, which are targets of their own. The import can only say "the n-th
    iframe in the page": right for a page whose iframes are all of its own site and are there from
    the start, wrong otherwise, and only its user can tell."""
    by_path: dict[tuple[int, ...], list[int]] = {}
    for step in steps:
        path = tuple(step.raw.get("frame") or ())
        if path and step.index in kept:
            by_path.setdefault(path, []).append(step.index)
    return tuple(
        f"{', '.join(f'steps[{i}]' for i in indexes)} (frame {list(path)}): imported as the iframe at "
        f"{' then '.join(f'position {i}' for i in path)} in document order; the Recorder counts only "
        "iframes of the page's own site, in the order they were added: check it is the one, or give "
        "`frames` a selector of the <iframe> itself (`iframe#checkout`)"
        for path, indexes in by_path.items()
    )


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
        raise invalid([FieldViolation(f"steps[{index}]", "must be an object with a string `type`")])
    return RecordedStep(index, raw)


def _flow_timeout(document: Mapping[str, Any]) -> int:
    timeout = document.get("timeout", 0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 <= timeout < WHOLE_LIMIT:
        raise invalid([FieldViolation("timeout", "must be a number of milliseconds")])
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
        checks = _expectations(step)
        if not step.frames():  # a framed step's asserted navigation is its frame's: no page-level check says it
            outs += checks
        step_timeout = step.whole("timeout", timeout_ms)
        converted.steps[step.index] = [out.to_json(step_timeout) for out in outs]
    converted.viewport, converted.viewport_index = flow.viewport, flow.viewport_index
    return converted, skipped


def _convert_one(flow: Flow, step: RecordedStep) -> list[Out]:
    target = step.raw.get("target", "main")
    if target != "main":
        # The Recorder names a cross-origin iframe as a target of its own, by its URL, not by where
        # it is in the page: no selector can be said for it here.
        why = "a popup, or an iframe from another site, which Sentinel can reach only by a selector of its <iframe>"
        raise Refused(f"it runs in another target ({target}: {why})")
    converter = CONVERTERS.get(step.type)
    if converter is None:
        raise Refused(UNSUPPORTED.get(step.type, "Sentinel does not know this step type"))
    frames = step.frames()
    if frames and step.type == "navigate":
        raise Refused(f"it navigates an iframe (frame {step.raw['frame']}); Sentinel's navigate opens the page")
    outs = list(converter(flow, step))
    if not frames:
        return outs
    # An element's step acts in the frame; one on the page (a navigation's URL or title) stays there.
    return [replace(out, frames=frames) if "selector" in out.fields else out for out in outs]


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


def _refused_by(check: Check, converted: _Converted) -> dict[int, Skipped]:
    """The recorded steps whose Sentinel steps `check` refuses (a `chrome://` URL, a viewport too
    large), each with what it says."""
    origin = [index for index in sorted(converted.steps) for _ in converted.steps[index]]
    reasons: dict[int, list[str]] = {}
    for field, description in check(_definition(UNTITLED, converted.viewport, converted.steps)):
        path = field.removeprefix("definition.")
        where, _, rest = path.partition(".")
        if where.startswith("steps[") and rest:
            index, path = origin[int(where.removeprefix("steps[").rstrip("]"))], rest
        elif where == "viewport":
            index = converted.viewport_index
        else:
            continue  # the definition as a whole: checked once the refused steps are out
        reasons.setdefault(index, []).append(f"{path} {description}")
    return {i: Skipped(i, converted.types[i], "; ".join(r)) for i, r in reasons.items()}


def _definition(
    name: str, viewport: tuple[int, int] | None, steps: Mapping[int, list[dict[str, Any]]]
) -> dict[str, Any]:
    definition: dict[str, Any] = {"name": name}
    if viewport is not None:
        definition["viewport"] = {"width": viewport[0], "height": viewport[1]}
    definition["steps"] = [step for index in sorted(steps) for step in steps[index]]
    return definition
