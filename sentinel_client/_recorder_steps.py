"""One converter per Chrome Recorder step type: what each recorded step becomes in a Sentinel test.

`@converts("click")` registers the function that turns a recorded `click` into Sentinel steps; the
recording's types Sentinel has no step for are in `UNSUPPORTED`, each with the reason why. A converter
gets the step (`RecordedStep`, whose accessors refuse a malformed field by its path, `steps[3].url`)
and the state of the whole flow (`Flow`), and returns zero or more `Out` steps, or raises `Refused`
with the reason it cannot run the step. `sentinel_client._recorder` drives them in order.

The rules (the README's "Importing from Chrome's Recorder" says the same):

- `setViewport` becomes the definition's viewport; mobile or touch emulation is refused.
- `navigate`, `click`, `hover` are the same steps; a click with another button than the primary one,
  or while a modifier key is held, is refused.
- `change` becomes `select` when a selector shows a `<select>` (`_recorder_selectors.names_select`),
  else `fill`, secret when a selector mentions a password.
- `keyDown`/`keyUp` become presses in the focused element (`_recorder_keys.Keys`).
- `waitForElement` counts the elements its selector matches (visible=false inverts the condition; it
  never checks visibility): "at least n" becomes `waitFor` attached of the n-th, "at most n" `waitFor`
  detached of the n+1-th; "exactly n" (n > 0) and attribute or property checks are refused.
- `waitForExpression` is refused, but for the Recorder's documented pause
  (`new Promise(resolve => setTimeout(() => resolve(true), 2000))`), which becomes `wait`.
- `close` at the end of the recording is the end of the test; anywhere else it is refused.
- A step in an iframe (`frame: [0, 2]`) acts in it (`RecordedStep.frames`); its asserted navigation
  is the frame's, which no page-level check says, so it is left out; a `navigate` of an iframe, and a
  step in another target (a popup, or an iframe from another site, which the Recorder names by its
  URL), are refused.

Never puts a typed (`change`) value into a name or a reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sentinel_client._recorder_keys import Keys
from sentinel_client._recorder_selectors import accessible_name, choose, names_password, names_select
from sentinel_client.errors import FieldViolation, InvalidArgumentError

#: Sentinel's limits on a test's and a step's name (`shared.validation`'s; a test keeps them equal).
MAX_NAME_CHARS = 200
MAX_STEP_NAME_CHARS = 200

__all__ = [
    "CONVERTERS",
    "MAX_NAME_CHARS",
    "UNSUPPORTED",
    "WHOLE_LIMIT",
    "Flow",
    "Out",
    "RecordedStep",
    "Refused",
    "converts",
    "invalid",
]

#: The focused element, or the page's body when nothing has focus: where a recorded key goes.
FOCUSED = ":focus, body:not(:has(:focus))"

#: Pixels and milliseconds stay below this: far beyond what validation allows, and within a uint32.
WHOLE_LIMIT = 2**31

#: Recorder step types Sentinel cannot run, and why.
UNSUPPORTED = {
    "doubleClick": "Sentinel's click has no click count",
    "scroll": (
        "Sentinel has no scroll step (Playwright scrolls an element into view before it acts on it, "
        "so leaving it out with --skip-unsupported usually changes nothing)"
    ),
    "emulateNetworkConditions": "Sentinel cannot throttle the network",
    "customStep": "a custom step runs code from a Recorder extension, which Sentinel does not have",
}

_PAUSE = re.compile(
    r"\s*new\s+Promise\s*\(\s*\(?\s*(\w+)\s*\)?\s*=>\s*setTimeout\s*\(\s*\(\s*\)\s*=>\s*\1\s*\(\s*true\s*\)\s*,"
    r"\s*(\d+)\s*\)\s*\)\s*;?\s*"
)


class Refused(Exception):
    """The step is well-formed but Sentinel cannot run it; never leaves `sentinel_cli.recorder`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Out:
    """One Sentinel step: the action's proto3-JSON member name, its fields, a name ("": none), and the
    iframe it acts in (`Step.frames`)."""

    action: str
    fields: dict[str, Any]
    name: str = ""
    frames: tuple[str, ...] = ()

    def to_json(self, timeout_ms: int) -> dict[str, Any]:
        step: dict[str, Any] = {"name": _cut(self.name)} if self.name else {}
        if timeout_ms:
            step["timeoutMs"] = timeout_ms
        if self.frames:
            step["frames"] = list(self.frames)
        step[self.action] = self.fields
        return step


@dataclass
class Flow:
    """What converting one step needs to know about the others."""

    last_action: int  # index of the last step that is not `close`
    keys: Keys = field(default_factory=Keys)
    viewport: tuple[int, int] | None = None
    viewport_index: int = -1


@dataclass(frozen=True)
class RecordedStep:
    """One step of a recording, with accessors that refuse a malformed field by its path (`steps[3].url`)."""

    index: int
    raw: Mapping[str, Any]

    @property
    def type(self) -> str:
        return str(self.raw["type"])

    def malformed(self, key: str, problem: str) -> InvalidArgumentError:
        """A field that is not what the format says (`@puppeteer/replay`'s parse() would refuse it)."""
        return invalid([FieldViolation(f"steps[{self.index}].{key}", f"{problem} (a {self.type} step)")])

    def text(self, key: str) -> str:
        value = self.raw.get(key)
        if not isinstance(value, str):
            raise self.malformed(key, "must be a string")
        return value

    def number(self, key: str, default: float | None = None) -> float:
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.malformed(key, "must be a number")
        return value

    def whole(self, key: str, default: int | None = None) -> int:
        """A number of pixels or milliseconds: not negative, rounded."""
        value = self.number(key, default)
        if not 0 <= value < WHOLE_LIMIT:
            raise self.malformed(key, f"must be a number from 0 to {WHOLE_LIMIT - 1}")
        return round(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise self.malformed(key, "must be true or false")
        return value

    def frames(self) -> tuple[str, ...]:
        """The iframe the step acts in, as Sentinel selectors. The Recorder names a frame by its index
        among its parent's child frames (`frame: [0, 2]`: the main frame's first child frame, then that
        frame's third), as Chrome lists them: in the order they were added, leaving out iframes of
        other sites. The nearest selector is the n-th `<iframe>` (or `<frame>`) of each document down
        the path, in document order: the same frame on a page whose iframes are all of its own site and
        there from the start; `Conversion.notes` asks the user to check it."""
        value = self.raw.get("frame", [])
        if not isinstance(value, list) or not all(type(i) is int and 0 <= i < WHOLE_LIMIT for i in value):
            raise self.malformed("frame", "must be a list of frame indexes")
        return tuple(f"iframe, frame >> nth={i}" for i in value)

    def selectors(self) -> list[list[str]]:
        value = self.raw.get("selectors")
        if not isinstance(value, list) or not value:
            raise self.malformed("selectors", "must be a non-empty list")
        alternatives = [[item] if isinstance(item, str) else item for item in value]
        if not all(isinstance(parts, list) and all(isinstance(p, str) for p in parts) for parts in alternatives):
            raise self.malformed("selectors", "must hold strings or lists of strings")
        return alternatives

    def selector(self) -> str:
        chosen, reasons = choose(self.selectors())
        if chosen is None:
            raise Refused(f"none of its selectors can be said in Playwright: {'; '.join(reasons)}")
        return chosen

    def label(self, verb: str) -> str:
        name = accessible_name(self.selectors())
        return f'{verb} "{name}"' if name else ""


Converter = Callable[[Flow, RecordedStep], Sequence[Out]]
#: The converter of every Recorder step type Sentinel can run.
CONVERTERS: dict[str, Converter] = {}


def converts(step_type: str) -> Callable[[Converter], Converter]:
    """Register the decorated function as what converts a recorded step of `step_type`."""

    def register(fn: Converter) -> Converter:
        CONVERTERS[step_type] = fn
        return fn

    return register


# --- the converters --------------------------------------------------------------------------


@converts("setViewport")
def _set_viewport(flow: Flow, step: RecordedStep) -> list[Out]:
    size = (step.whole("width"), step.whole("height"))
    if step.flag("isMobile", False) or step.flag("hasTouch", False):
        raise Refused("Sentinel sets the viewport's size only, not mobile or touch emulation")
    if flow.viewport not in (None, size):
        raise Refused(f"a second viewport size ({size[0]}x{size[1]}): a Sentinel test has one")
    flow.viewport, flow.viewport_index = size, step.index
    return []


@converts("navigate")
def _navigate(flow: Flow, step: RecordedStep) -> list[Out]:
    return [Out("navigate", {"url": step.text("url")})]


@converts("click")
def _click(flow: Flow, step: RecordedStep) -> list[Out]:
    button = step.raw.get("button", "primary")
    if button != "primary":
        raise Refused(f"Sentinel clicks with the primary button only, not {button!r}")
    if flow.keys.held:
        flow.keys.combine()
        raise Refused(f"{'+'.join(flow.keys.held)} is held down, and Sentinel's click cannot hold keys")
    return [Out("click", {"selector": step.selector()}, step.label("click"))]


@converts("hover")
def _hover(flow: Flow, step: RecordedStep) -> list[Out]:
    return [Out("hover", {"selector": step.selector()}, step.label("hover"))]


@converts("change")
def _change(flow: Flow, step: RecordedStep) -> list[Out]:
    selector, value, alternatives = step.selector(), step.text("value"), step.selectors()
    if names_select(alternatives):
        return [Out("select", {"selector": selector, "value": value}, step.label("select in"))]
    fill: dict[str, Any] = {"selector": selector, "value": value}
    if names_password(alternatives):
        fill["secret"] = True
    return [Out("fill", fill, step.label("fill"))]


@converts("keyDown")
def _key_down(flow: Flow, step: RecordedStep) -> list[Out]:
    try:
        combo = flow.keys.down(step.text("key"))
    except ValueError as exc:
        raise Refused(str(exc)) from exc
    return [] if combo is None else [Out("press", {"selector": FOCUSED, "key": combo}, f"press {combo}")]


@converts("keyUp")
def _key_up(flow: Flow, step: RecordedStep) -> list[Out]:
    combo = flow.keys.up(step.text("key"))
    return [] if combo is None else [Out("press", {"selector": FOCUSED, "key": combo}, f"press {combo}")]


@converts("waitForElement")
def _wait_for_element(flow: Flow, step: RecordedStep) -> list[Out]:
    if "attributes" in step.raw or "properties" in step.raw:
        raise Refused("Sentinel cannot wait for attributes or properties of elements")
    operator = step.raw.get("operator", ">=")  # the default both of @puppeteer/replay's runners use
    count, visible = step.number("count", 1), step.flag("visible", True)
    if operator not in (">=", "==", "<="):
        raise step.malformed("operator", "must be >=, == or <=")
    if count != int(count):
        raise step.malformed("count", "must be a whole number")
    at_least, at_most = _bounds(operator, int(count), visible)
    selector = step.selector()
    if at_least is not None and at_least > 1:
        name = f"wait until {selector} matches at least {at_least}"
        return [Out("waitFor", {"selector": f"{selector} >> nth={at_least - 1}", "state": "attached"}, name)]
    if at_least == 1:
        return [Out("waitFor", {"selector": selector, "state": "attached"})]
    if at_most == 0:
        return [Out("waitFor", {"selector": selector, "state": "detached"})]
    if at_most is not None:
        name = f"wait until {selector} matches at most {at_most}"
        return [Out("waitFor", {"selector": f"{selector} >> nth={at_most}", "state": "detached"}, name)]
    return []  # the condition always holds


def _bounds(operator: str, count: int, visible: bool) -> tuple[int | None, int | None]:
    """(at least, at most) matching elements that the condition `(matches <operator> count) == visible`
    asks for; (None, None) when it always holds. Raises Refused when it is neither bound, or never holds."""
    always = (None, None)
    match operator, visible:
        case ">=", True:
            return (count, None) if count > 0 else always
        case ">=", False if count > 0:
            return None, count - 1
        case "<=", True if count >= 0:
            return None, count
        case "<=", False:
            return (count + 1, None) if count >= 0 else always
        case "==", True if count == 0:
            return None, 0
        case "==", False if count <= 0:
            return (1, None) if count == 0 else always
        case "==", True if count > 0:
            raise Refused(f"Sentinel can wait for at least or at most {count} elements, not for exactly {count}")
        case "==", False if count > 0:
            raise Refused(f"Sentinel can wait for at least or at most {count} elements, not for any number but {count}")
    raise Refused(f"no number of elements satisfies {operator} {count} (visible: {str(visible).lower()})")


@converts("waitForExpression")
def _wait_for_expression(flow: Flow, step: RecordedStep) -> list[Out]:
    expression = step.text("expression")
    pause = _PAUSE.fullmatch(expression)
    if pause is None:
        raise Refused(f"Sentinel cannot evaluate JavaScript ({_cut(expression, 60)!r})")
    ms = min(int(pause.group(2)), WHOLE_LIMIT - 1)  # validation says how long a wait may be
    return [Out("wait", {"ms": ms})] if ms else []


@converts("close")
def _close(flow: Flow, step: RecordedStep) -> list[Out]:
    if step.index < flow.last_action:
        raise Refused("it closes the page before the recording ends; a Sentinel test drives one page to its end")
    return []  # the test ends here, and the executor closes its page


def invalid(violations: list[FieldViolation]) -> InvalidArgumentError:
    """The SDK's local error for a recording: every violation, each on its own line of the message."""
    return InvalidArgumentError.listing(violations)


def _cut(text: str, limit: int = MAX_STEP_NAME_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
