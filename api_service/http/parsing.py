"""Reading HTTP requests into domain values: JSON bodies, the submit body, query parameters.

Only the *shape* is checked here (is it JSON, an object, an integer, one of the known words):
what a value may be — limits, URLs, selectors — is `shared.validation`'s, the same for both
front doors. A shape problem is a `ValidationError` naming the field as the HTTP request spells
it (`options.maxAttempts`, `pageSize`), so it answers 400 with violations like any other.
The test definition is the proto3 JSON of `sentinel.v1.TestDefinition` (what `sentinel submit`
files hold), read with protobuf's own parser and converted by `shared.edge.convert`.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from aiohttp import web
from google.protobuf import json_format

from protos import sentinel_pb2 as pb
from protos.json_errors import PARSE_ERRORS, refused_field
from shared.edge import convert
from shared.errors import FieldViolation, ValidationError
from shared.model import ArtifactPolicy, JobOptions, Priority, SubmitCommand
from shared.notifications import DEFAULT_EVENTS, Notification
from shared.paging import page_size
from shared.validation import unicode_problem

#: The largest request body read (1 MiB); a larger one answers 413 before it is read.
MAX_BODY_BYTES = 1024 * 1024
#: A `\uD800`…`\uDFFF` escape in raw JSON: only a body holding one can decode to a lone surrogate.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
#: Lone surrogates named in one answer at most (a body may hold thousands).
_MAX_SURROGATE_VIOLATIONS = 10

E = TypeVar("E", bound=enum.Enum)


def invalid(field: str, description: str) -> ValidationError:
    return ValidationError([FieldViolation(field, description)])


async def read_json(request: web.Request, *, required: bool = True) -> dict[str, Any]:
    """The request's JSON object body ({} for an empty optional one). A body over `MAX_BODY_BYTES`
    never gets here: the `check_request` middleware answers 413 by its length, and the app's
    `client_max_size` stops a chunked one at the same size.

    Raises:
        ValidationError: field `body`: not JSON, not an object, or missing when `required`; or a
            string (key or value) holding a lone surrogate (`"\\ud800"`), named by its path
            (`options.idempotencyKey`): no such text can be stored or encoded again.
    """
    raw = await request.read()
    if not raw.strip():
        if required:
            raise invalid("body", "must be a JSON object")
        return {}
    try:
        document = json.loads(raw.decode("utf-8-sig"))
    except RecursionError:
        raise invalid("body", "is nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise invalid("body", f"is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except ValueError as exc:
        raise invalid("body", f"is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise invalid("body", f"must be a JSON object, got {_kind(document)}")
    if _SURROGATE_ESCAPE.search(raw):  # cheap: most bodies have no such escape, and are not walked
        found = [FieldViolation(field, description) for field, description in _lone_surrogates(document)]
        if found:
            raise ValidationError(found[:_MAX_SURROGATE_VIOLATIONS])
    return document


def _lone_surrogates(document: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, description) of every string of `document` holding a lone surrogate, in order.

    Walked with a stack, not recursion: `json.loads` accepts documents nested deeper than a
    recursive walk on top of a handler's stack could go. A surrogate in a key names the object."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            problem = unicode_problem(value)
            if problem:
                yield path or "body", f"must be valid Unicode text: {problem}"
        elif isinstance(value, dict):
            children: list[tuple[str, Any]] = []
            for key, item in value.items():
                problem = unicode_problem(key)
                if problem:
                    yield path or "body", f"must be valid Unicode text: {problem} of a key"
                    continue
                children.append((f"{path}.{key}" if path else key, item))
            stack.extend(reversed(children))
        elif isinstance(value, list):
            stack.extend(reversed([(f"{path}[{i}]", item) for i, item in enumerate(value)]))


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def unknown_fields(body: Mapping[str, Any], allowed: set[str], *, at: str = "") -> list[FieldViolation]:
    return [
        FieldViolation(f"{at}{key}", f"is not a known field; expected one of {', '.join(sorted(allowed))}")
        for key in body
        if key not in allowed
    ]


def whole_field(found: list[FieldViolation], field: str, value: Any) -> int:
    """A whole number ≥ 0: a JSON integer, or a number whose fraction is zero (`1000.0`).

    JSON Schema, and so the OpenAPI document's `integer`, counts `1000.0` as an integer, and many
    encoders (JavaScript after arithmetic, some Go and Java serializers) write whole numbers so.
    `1000.5`, a boolean, a string, a negative number and `NaN`/`Infinity` (which `json.loads` reads,
    as it reads `1e400`) are refused; a huge value is the range checks' (`shared.validation`)."""
    whole = int(value) if isinstance(value, float) and value.is_integer() else value
    if isinstance(whole, bool) or not isinstance(whole, int) or whole < 0:
        found.append(FieldViolation(field, f"must be a whole number ≥ 0, got {json.dumps(value)[:40]}"))
        return 0
    return whole


def text_field(found: list[FieldViolation], field: str, value: Any) -> str:
    if not isinstance(value, str):
        found.append(FieldViolation(field, "must be a string"))
        return ""
    return value


def word_field(found: list[FieldViolation], field: str, value: Any, kind: type[E]) -> E | None:
    words = [str(member.value) for member in kind]
    if isinstance(value, str) and value in words:
        return kind(value)
    found.append(FieldViolation(field, f"must be one of {', '.join(words)}"))
    return None


#: The options a submit may carry, as the HTTP request names them.
OPTION_FIELDS = {
    "priority",
    "timeout",
    "tags",
    "maxAttempts",
    "delayMs",
    "idempotencyKey",
    "artifactPolicy",
    "recordVideo",
}


def options_from_json(value: Any) -> JobOptions:
    """A submit's `options` object as `JobOptions` (absent fields: the server's defaults)."""
    if not isinstance(value, dict):
        raise invalid("options", "must be a JSON object")
    found = unknown_fields(value, OPTION_FIELDS, at="options.")
    given: dict[str, Any] = {}
    if "priority" in value:
        given["priority"] = word_field(found, "options.priority", value["priority"], Priority)
    if "artifactPolicy" in value:
        given["artifact_policy"] = word_field(found, "options.artifactPolicy", value["artifactPolicy"], ArtifactPolicy)
    for name, attribute in (("timeout", "timeout_ms"), ("maxAttempts", "max_attempts"), ("delayMs", "delay_ms")):
        if name in value:
            given[attribute] = whole_field(found, f"options.{name}", value[name])
    if "idempotencyKey" in value:
        given["idempotency_key"] = text_field(found, "options.idempotencyKey", value["idempotencyKey"])
    if "tags" in value:
        tags = value["tags"]
        if isinstance(tags, list):
            given["tags"] = tuple(text_field(found, f"options.tags[{i}]", tag) for i, tag in enumerate(tags))
        else:
            found.append(FieldViolation("options.tags", "must be an array of strings"))
    if "recordVideo" in value:
        if isinstance(value["recordVideo"], bool):
            given["record_video"] = value["recordVideo"]
        else:
            found.append(FieldViolation("options.recordVideo", "must be true or false"))
    if found:
        raise ValidationError(found)
    return JobOptions(**given)


def definition_from_json(value: Any) -> pb.TestDefinition:
    """The proto3 JSON of a TestDefinition, parsed strictly (an unknown field is an error)."""
    if not isinstance(value, dict):
        raise invalid("testDefinition", "must be a JSON object (a test definition, as `sentinel submit` files hold)")
    try:
        return json_format.ParseDict(value, pb.TestDefinition())
    except RecursionError:
        raise invalid("testDefinition", "is nested too deeply") from None
    except PARSE_ERRORS as exc:
        field, reason = refused_field(value, pb.TestDefinition, "testDefinition", exc)
        raise invalid(field, reason) from None


def submit_from_json(body: Mapping[str, Any]) -> SubmitCommand:
    """The body of POST /tests/execute as a `SubmitCommand`, not yet validated (`validate_submit`)."""
    found = unknown_fields(body, {"testDefinition", "options"})
    if "testDefinition" not in body:
        found.append(FieldViolation("testDefinition", "is required"))
    if found:
        raise ValidationError(found)
    definition = convert.definition_from_proto(definition_from_json(body["testDefinition"]))
    options = options_from_json(body.get("options", {}))
    return SubmitCommand(definition=definition, options=options)


#: What a notification may hold: what a request sets, and `secretSet` (as GET shows it; ignored), so
#: that a notification sent back as it was shown is taken.
NOTIFICATION_FIELDS = {"url", "events", "secret", "afterFailures", "format", "secretSet"}


def notifications_from_json(
    found: list[FieldViolation], value: Any, *, field: str = "notifications"
) -> tuple[Notification, ...]:
    """A schedule's or an alert rule's `notifications` (shape problems added to `found`)."""
    if not isinstance(value, list):
        found.append(FieldViolation(field, "must be an array of objects"))
        return ()
    made = []
    for i, item in enumerate(value):
        at = f"{field}[{i}]"
        if not isinstance(item, dict):
            found.append(FieldViolation(at, "must be a JSON object"))
            continue
        found += unknown_fields(item, NOTIFICATION_FIELDS, at=f"{at}.")
        events = item.get("events") or []
        if not isinstance(events, list):
            found.append(FieldViolation(f"{at}.events", "must be an array of strings"))
            events = []
        words = [text_field(found, f"{at}.events[{j}]", e).strip() for j, e in enumerate(events)]
        after = item.get("afterFailures")
        after_failures = whole_field(found, f"{at}.afterFailures", after) if after is not None else 0
        made.append(
            Notification(
                url=text_field(found, f"{at}.url", item.get("url", "")).strip(),
                events=tuple(dict.fromkeys(words)) or DEFAULT_EVENTS,
                secret=text_field(found, f"{at}.secret", item.get("secret") or ""),
                after_failures=after_failures or 1,
                format=text_field(found, f"{at}.format", item.get("format") or "").strip() or "sentinel",
            )
        )
    return tuple(made)


@contextmanager
def fields_renamed(rename: Callable[[str], str]) -> Iterator[None]:
    """Re-raise a `ValidationError` with each violation's field renamed: from the names the domain
    gives fields (`schedule.interval_ms`, `rule.tag`) to the body's (`intervalMs`, `tag`)."""
    try:
        yield
    except ValidationError as exc:
        raise ValidationError([FieldViolation(rename(v.field), v.description) for v in exc.violations]) from None


def older_than_from_json(body: Mapping[str, Any]) -> int:
    """The optional `olderThanMs` of a purge (0: every dead letter)."""
    found = unknown_fields(body, {"olderThanMs"})
    older = whole_field(found, "olderThanMs", body.get("olderThanMs", 0))
    if found:
        raise ValidationError(found)
    return older


def is_json(content_type: str) -> bool:
    """Whether a media type (lowercase, without parameters, as aiohttp gives it) is JSON:
    `application/json` or a JSON-based one such as `application/merge-patch+json`."""
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


def check_query(request: web.Request, takes: tuple[str, ...]) -> None:
    """Refuse a query parameter the route does not take (a misspelt filter would list everything).

    Raises:
        ValidationError: one violation per unknown parameter, naming what the route takes.
    """
    unknown = [name for name in dict.fromkeys(request.query) if name not in takes]
    if unknown:
        known = f"this route takes {', '.join(takes)}" if takes else "this route takes no query parameters"
        raise ValidationError([FieldViolation(name[:60], f"unknown query parameter; {known}") for name in unknown])


def query_word(request: web.Request, name: str, kind: type[E]) -> E | None:
    """An optional query parameter naming a member of `kind` by value (None when absent or empty)."""
    raw = request.query.get(name, "")
    if not raw:
        return None
    found: list[FieldViolation] = []
    word = word_field(found, name, raw, kind)
    if found:
        raise ValidationError(found)
    return word


def query_page(request: web.Request) -> tuple[int, str]:
    """`pageSize` (checked by `shared.paging.page_size`) and `pageToken` of a listing."""
    raw = request.query.get("pageSize", "")
    if raw and not (raw.isdecimal() and raw.isascii() and len(raw) <= 9):
        raise invalid("pageSize", f"must be a whole number, got {raw[:40]!r}")
    return page_size(int(raw or 0)), request.query.get("pageToken", "")
