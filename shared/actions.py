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

Most fields are scalars; a `request` step also has a map (`headers`), a list of names
(`secret_headers`) and a list of small messages (`expect_json`: `JsonExpectation`). Such fields are
a `dict`, a `tuple[str, ...]` and a `tuple[<dataclass>, ...]`; `build` makes an action from plain
values (lists, dicts) by these field types, for every decoder (protobuf, the job hash's JSON).

A value is secret when its action says so (`Fill.secret`, `Request.secret_headers`): `secrets`
lists an action's secret values and `with_secrets` rewrites them (sealing, opening), so nothing
else needs to know which actions hold secrets.

This module never imports protobuf, grpc or Playwright, and `describe()` never shows a secret value.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
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
    "JsonExpectation",
    "Navigate",
    "Press",
    "Request",
    "Screenshot",
    "SelectOption",
    "Wait",
    "WaitFor",
    "action",
    "build",
    "holds",
    "secrets",
    "with_secrets",
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
    HTTP_METHOD = "an HTTP method: GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS"
    HEADERS = "request headers: token names, each once; values without line breaks, sealed when secret"
    BODY = "a request body: may be empty"
    HTTP_STATUS = "a response status to expect: 100-599, or 0 for any 2xx"
    PAGE_STATUS = "the status a page's document must answer with: 100-599, or 0 for any"
    CONTAINS = "text the response body must contain: empty for no check"
    JSON_CHECKS = "JSONPath expectations: a path that parses, and a JSON literal or empty"
    SECRET_HEADERS = "names of headers of the same step whose values are sealed like secret fills"
    REDIRECTS = "how many redirects to follow"
    EXPECT_HEADERS = "response headers to expect: token names, each once, and text their values contain"


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


@action(url=Is.URL, expect_status=Is.PAGE_STATUS)
@dataclass(frozen=True)
class Navigate:
    url: str
    expect_status: int = 0  # 0: any (a page that answers 404 is a page like any other)
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


@dataclass(frozen=True)
class JsonExpectation:
    """A JSON-path expectation on a response body: `path` matches, and (unless `equals` is "") its
    value is the JSON literal `equals`. A path matching several values is compared as their list."""

    path: str
    equals: str = ""


@action(
    url=Is.URL,
    method=Is.HTTP_METHOD,
    headers=Is.HEADERS,
    body=Is.BODY,
    expect_status=Is.HTTP_STATUS,
    expect_body_contains=Is.CONTAINS,
    expect_json=Is.JSON_CHECKS,
    secret_headers=Is.SECRET_HEADERS,
    max_redirects=Is.REDIRECTS,
    expect_headers=Is.EXPECT_HEADERS,
)
@dataclass(frozen=True)
class Request:
    """An API check: one HTTP request (and its redirects) and expectations on the final response."""

    url: str
    method: str = "GET"  # also what an empty method on the wire means
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    expect_status: int = 0  # 0: any 2xx
    expect_body_contains: str = ""
    expect_json: tuple[JsonExpectation, ...] = ()
    secret_headers: tuple[str, ...] = ()
    max_redirects: int = 10  # also what 0 on the wire means
    expect_headers: dict[str, str] = field(default_factory=dict)  # name (any case) -> text its value contains
    kind: str = field(default="request", init=False)

    @property
    def follows_redirects(self) -> bool:
        """False when the step expects a redirect status (3xx): the redirect itself is checked."""
        return not 300 <= self.expect_status <= 399

    def describe(self) -> str:
        # Headers never: their values may be secret, and names alone say little.
        return f"{self.method} {self.url}"

    def is_secret(self, header: str) -> bool:
        """Whether the value of `header` (any case) is secret."""
        return header.lower() in {name.lower() for name in self.secret_headers}


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
    | Request
)


# --- building actions from plain values --------------------------------------------------------


def build(cls: type[_A], values: Mapping[str, Any]) -> _A:
    """An action (or a message inside one) of class `cls` from plain values, by its fields' types:
    a list becomes a tuple, of dataclasses when the field holds them; a mapping a dict. Names that
    are not fields of `cls` are ignored; a missing field takes its default.

    Raises:
        TypeError: a required field is missing, or a value has the wrong shape for its field.
    """
    plan = _PLANS.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)
        plan = _PLANS[cls] = [(f.name, _converter(hints[f.name])) for f in fields(cls) if f.init]  # type: ignore[arg-type]
    return cls(**{name: convert(values[name]) if convert else values[name] for name, convert in plan if name in values})


#: Per class: each init field's name and how to convert its plain value (None: as it is). Worked
#: out once per class from its type hints: an action is built for every job an executor claims.
_PLANS: dict[type[Any], list[tuple[str, Callable[[Any], Any] | None]]] = {}


def _converter(hint: Any) -> Callable[[Any], Any] | None:
    origin = typing.get_origin(hint)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        nested = isinstance(item, type) and dataclasses.is_dataclass(item)

        def to_tuple(value: Any) -> tuple[Any, ...]:
            if isinstance(value, str | bytes | Mapping):
                raise TypeError(f"expected a list, got {type(value).__name__}")
            return tuple(build(item, v) if nested else v for v in value)

        return to_tuple
    if origin is dict:

        def to_dict(value: Any) -> dict[Any, Any]:
            if not isinstance(value, Mapping):
                raise TypeError(f"expected a mapping, got {type(value).__name__}")
            return dict(value)

        return to_dict
    return None


# --- secret values -----------------------------------------------------------------------------

_Act = TypeVar("_Act", bound=Action)


def secrets(action: Action) -> dict[str, str]:
    """Every secret value of `action`, by the field path that holds it (`fill.value`,
    `request.headers[Authorization]`); empty for an action without secrets."""
    if isinstance(action, Fill) and action.secret:
        return {"fill.value": action.value}
    if isinstance(action, Request):
        return {f"request.headers[{k}]": v for k, v in action.headers.items() if action.is_secret(k)}
    return {}


def with_secrets(action: _Act, change: Callable[[str, str], str]) -> _Act:
    """`action` with each secret value `v` at field path `p` (as `secrets` names them) replaced
    by `change(p, v)`."""
    if isinstance(action, Fill) and action.secret:
        return dataclasses.replace(action, value=change("fill.value", action.value))
    if isinstance(action, Request) and action.secret_headers:
        headers = {
            k: change(f"request.headers[{k}]", v) if action.is_secret(k) else v for k, v in action.headers.items()
        }
        return dataclasses.replace(action, headers=headers)
    return action
