"""Step actions: one registered dataclass per thing a test step can do.

This is the table every other layer reads instead of switching over the actions itself:

- each action is a frozen dataclass whose `kind` is its member name in the protobuf
  `Step.action` oneof and whose fields are named like that member's message fields, so
  `shared.edge.convert` converts any action generically, and validation errors name fields the way
  clients spell them (`definition.steps[3].click.selector`);
- a field's default is what an absent protobuf field means (`Check.checked`, `WaitFor.state`);
- `@action(...)` registers the class in `ACTIONS` and says what each field holds (`Is`), which
  is all `shared.validation` needs to check it;
- `describe()` is the step's name when it has none of its own.

The executor keeps the one other table, the runner function of each action
(`executor_service/actions.py`); tests/test_action_registry.py checks that the tables, the proto
and validation agree. Adding an action: a dataclass here (and its name in `Action`), its proto
message and oneof member, its runner function, its tests.

This module never imports protobuf, grpc or Playwright, and `describe()` never shows a fill value
that is secret.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeAlias, TypeVar

__all__ = [
    "ACTIONS",
    "Action",
    "Check",
    "Click",
    "ExpectText",
    "ExpectTitle",
    "ExpectUrl",
    "ExpectVisible",
    "Fill",
    "Hover",
    "Is",
    "Navigate",
    "Press",
    "Screenshot",
    "SelectOption",
    "Wait",
    "WaitFor",
    "action",
    "holds",
]


class Is(enum.Enum):
    """What an action's field holds: the one thing `shared.validation` needs to know to check it."""

    SELECTOR = "a Playwright selector, not blank"
    URL = "a page URL: absolute http(s), or relative to the definition's base_url"
    KEY = "a key name (required)"
    TEXT = "text to find or to choose (required)"
    TYPED = "text typed into the page: may be empty, never shown, sealed when the action is `secret`"
    WAIT_STATE = "an element state to wait for: attached, detached, visible or hidden"
    PATTERN = "a regular expression (required)"
    FILE_NAME = "part of an artifact's file name: letters, digits, '.', '_' and '-'"
    WAIT_MS = "a pause in milliseconds"
    FLAG = "a yes/no switch: nothing to check"


#: Every action class by its kind (the protobuf oneof member name), in registration order.
ACTIONS: dict[str, type[Action]] = {}
_HOLDS: dict[type[Any], Mapping[str, Is]] = {}

_A = TypeVar("_A")


def action(**holding: Is) -> Callable[[type[_A]], type[_A]]:
    """Register an action dataclass, saying what each of its fields (all but `kind`) holds.

    Raises:
        TypeError: at import, when the declarations and the fields disagree or a kind is taken twice.
    """

    def register(cls: type[_A]) -> type[_A]:
        kind = cls.__dataclass_fields__["kind"].default  # type: ignore[attr-defined]
        names = [f.name for f in fields(cls) if f.init]  # type: ignore[arg-type]
        if sorted(names) != sorted(holding):
            raise TypeError(f"@action on {cls.__name__} must declare exactly its fields {names}, got {list(holding)}")
        if kind in ACTIONS:
            raise TypeError(f"{cls.__name__} takes kind {kind!r}, already {ACTIONS[kind].__name__}'s")
        ACTIONS[kind] = cls  # type: ignore[assignment]
        _HOLDS[cls] = {name: holding[name] for name in names}  # in field order: violations come in that order
        return cls

    return register


def holds(cls: type[Action]) -> Mapping[str, Is]:
    """What each field of a registered action class holds, in field order."""
    return _HOLDS[cls]


@action(url=Is.URL)
@dataclass(frozen=True)
class Navigate:
    url: str
    kind: str = field(default="navigate", init=False)

    def describe(self) -> str:
        return f"navigate {self.url}"


@action(selector=Is.SELECTOR)
@dataclass(frozen=True)
class Click:
    selector: str
    kind: str = field(default="click", init=False)

    def describe(self) -> str:
        return f"click {self.selector}"


@action(selector=Is.SELECTOR, value=Is.TYPED, secret=Is.FLAG)
@dataclass(frozen=True)
class Fill:
    selector: str
    value: str
    secret: bool = False
    kind: str = field(default="fill", init=False)

    def describe(self) -> str:
        shown = "***" if self.secret else self.value
        return f"fill {self.selector} with {shown!r}"


@action(selector=Is.SELECTOR, key=Is.KEY)
@dataclass(frozen=True)
class Press:
    selector: str
    key: str
    kind: str = field(default="press", init=False)

    def describe(self) -> str:
        return f"press {self.key} in {self.selector}"


@action(selector=Is.SELECTOR, value=Is.TEXT)
@dataclass(frozen=True)
class SelectOption:
    selector: str
    value: str
    kind: str = field(default="select", init=False)

    def describe(self) -> str:
        return f"select {self.value!r} in {self.selector}"


@action(selector=Is.SELECTOR, checked=Is.FLAG)
@dataclass(frozen=True)
class Check:
    selector: str
    checked: bool = True  # an absent `checked` checks the box
    kind: str = field(default="check", init=False)

    def describe(self) -> str:
        return f"{'check' if self.checked else 'uncheck'} {self.selector}"


@action(selector=Is.SELECTOR)
@dataclass(frozen=True)
class Hover:
    selector: str
    kind: str = field(default="hover", init=False)

    def describe(self) -> str:
        return f"hover {self.selector}"


@action(selector=Is.SELECTOR, state=Is.WAIT_STATE)
@dataclass(frozen=True)
class WaitFor:
    selector: str
    state: str = "visible"  # also what an empty state on the wire means
    kind: str = field(default="wait_for", init=False)

    def describe(self) -> str:
        return f"wait for {self.selector} {self.state}"


@action(selector=Is.SELECTOR, text=Is.TEXT)
@dataclass(frozen=True)
class ExpectText:
    selector: str
    text: str
    kind: str = field(default="expect_text", init=False)

    def describe(self) -> str:
        return f"expect {self.selector} to contain {self.text!r}"


@action(selector=Is.SELECTOR)
@dataclass(frozen=True)
class ExpectVisible:
    selector: str
    kind: str = field(default="expect_visible", init=False)

    def describe(self) -> str:
        return f"expect {self.selector} visible"


@action(text=Is.TEXT)
@dataclass(frozen=True)
class ExpectTitle:
    text: str
    kind: str = field(default="expect_title", init=False)

    def describe(self) -> str:
        return f"expect title to contain {self.text!r}"


@action(pattern=Is.PATTERN)
@dataclass(frozen=True)
class ExpectUrl:
    pattern: str
    kind: str = field(default="expect_url", init=False)

    def describe(self) -> str:
        return f"expect url to match {self.pattern!r}"


@action(name=Is.FILE_NAME, full_page=Is.FLAG)
@dataclass(frozen=True)
class Screenshot:
    name: str = ""
    full_page: bool = False
    kind: str = field(default="screenshot", init=False)

    def describe(self) -> str:
        return f"screenshot {self.name}".rstrip()


@action(ms=Is.WAIT_MS)
@dataclass(frozen=True)
class Wait:
    ms: int
    kind: str = field(default="wait", init=False)

    def describe(self) -> str:
        return f"wait {self.ms} ms"


#: Any one action; tests/test_action_registry.py checks it names exactly the classes in `ACTIONS`.
Action: TypeAlias = (
    Navigate
    | Click
    | Fill
    | Press
    | SelectOption
    | Check
    | Hover
    | WaitFor
    | ExpectText
    | ExpectVisible
    | ExpectTitle
    | ExpectUrl
    | Screenshot
    | Wait
)
