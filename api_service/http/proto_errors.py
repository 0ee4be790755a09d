"""Protobuf's JSON parse errors as one field violation naming the deepest field it refused.

`json_format.ParseDict` says what it refused as a chain ("Failed to parse steps field: Failed to
parse url field: expected string …"), which names fields without their list indices or the oneof
member between them, or as 'Message type "sentinel.v1.Step" has no field named "clik" at …'
followed by every field the message has. Neither is a path a person writing JSON can follow.
Here the field is found by parsing the refused value again a field at a time (on the error path
only, so a valid request pays nothing), and protobuf's reason is kept, trimmed. Data in, a
violation out: nothing here raises, and a message of a shape not known is left to the caller.
"""

from __future__ import annotations

import re
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from shared.errors import FieldViolation

_CHAIN = re.compile(r"^(?:Failed to parse \S+ field: )+")
_UNKNOWN = re.compile(r'^Message type "[^"]*" has no field named "(?P<name>.*?)" at "', re.DOTALL)
#: Where protobuf says it was (` at "TestDefinition.steps[0]"`, ` at TestDefinition`): the path says it better.
_AT = re.compile(r' at "?TestDefinition[^"\s]*"?$')
#: What can go wrong parsing a value into a message (a value of the wrong JSON type raises plain errors).
_PARSE_ERRORS = (json_format.ParseError, ValueError, TypeError, AttributeError)
#: The longest reason shown (protobuf quotes the refused value, which may be long).
_MAX_REASON = 200


def parse_error_violation(exc: BaseException, value: Any, message: Message, *, at: str) -> FieldViolation | None:
    """The violation of `exc`, raised parsing `value` (proto3 JSON) into `message`'s type, with the
    field named from `at` (`testDefinition.steps[1].navigate.url`); None when protobuf's message has
    a shape this module does not know."""
    reason = _reason(str(exc))
    if reason is None:
        return None
    try:
        field = _locate(value, message, at)
    except RecursionError:
        field = at
    return FieldViolation(field, reason)


def _reason(text: str) -> str | None:
    chain = _CHAIN.match(text)
    rest = text[chain.end() :] if chain else text
    unknown = _UNKNOWN.match(rest)
    if unknown:
        return _short(f'unknown field "{unknown["name"]}"')
    if chain is None and not rest.startswith("Message type "):
        return None
    # Each link of the chain adds a "." to the end; the first line is the reason, the rest lists fields.
    rest = _AT.sub("", rest.split("\n", 1)[0].rstrip(".")).rstrip(".")
    return _short(rest) if rest else None


def _short(text: str) -> str:
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


def _parses(value: Any, message: Message) -> bool:
    try:
        json_format.ParseDict(value, type(message)())
    except _PARSE_ERRORS:
        return False
    return True


def _locate(value: Any, message: Message, at: str) -> str:
    """The path of the field of `value` that does not parse, as deep as one can be found: `at` itself
    when no single field fails alone (two members of one oneof) or a field is unknown (`at` holds it)."""
    if not isinstance(value, dict):
        return at
    for key, item in value.items():
        if _parses({key: item}, message):
            continue
        # proto3 JSON takes a field by its JSON name or its proto name
        field = next((f for f in message.DESCRIPTOR.fields if key in (f.json_name, f.name)), None)
        if field is None:
            return at
        here = f"{at}.{key}"
        if field.message_type is None or field.message_type.GetOptions().map_entry:
            return here
        holder = type(message)()
        if not field.is_repeated:
            return _locate(item, getattr(holder, field.name), here)
        if not isinstance(item, list):
            return here
        element = getattr(holder, field.name).add()
        for i, entry in enumerate(item):
            if not _parses(entry, element):
                return _locate(entry, element, f"{here}[{i}]")
        return here
    return at
