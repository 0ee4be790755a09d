"""Which field of a proto3 JSON document protobuf refused, and why, in words a person can follow.

`json_format.ParseDict` says what it refused as a chain ("Failed to parse steps field: Failed to
parse url field: expected string …"), which names fields without their list indices or the oneof
member between them, or as 'Message type "sentinel.v1.Step" has no field named "clik" at …'
followed by every field the message has. Here the field is found by parsing the refused document
again a field at a time (on the error path only, so a valid document pays nothing), going down
into the first that fails, and protobuf's reason is kept, trimmed.

Hand-written, beside the generated code, because both front doors that read test files need it:
the SDK (`sentinel_client`, which may import nothing but its protos, grpc and protobuf) and the
HTTP API. Data in, a path and a reason out; nothing here raises.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

__all__ = ["PARSE_ERRORS", "refused_field"]

#: What can go wrong parsing a value into a message (a value of the wrong JSON type raises plain errors).
PARSE_ERRORS = (json_format.ParseError, ValueError, TypeError, AttributeError)

#: What protobuf puts around the reason it could not parse a field: the fields it was in
#: ("Failed to parse steps field: "), where ("at \"TestDefinition.steps[0]\""), the names it knows.
_PARSE_CHAIN = re.compile(r"^(?:Failed to parse \w+ field: )+")
_PARSE_AT = re.compile(r"\s+at \"?[\w.\[\]]*\"?(?=\.|$)")
_UNKNOWN_FIELD = re.compile(r'has no field named "([^"]*)"')
_TWO_OF_ONEOF = re.compile(r'should not have multiple "(\w+)" oneof fields')
#: The longest reason shown (protobuf quotes the refused value, which may be long).
_MAX_REASON = 200
#: How protobuf (or Python's `int()` under it) says a value is no integer: said instead as
#: Sentinel's own checks say it (`must be an integer, got 'abc'`).
_NOT_AN_INTEGER = re.compile(
    r"invalid literal for int\(\) with base 10: "
    r"|Couldn't parse integer: "
    r"|Couldn't parse non-integer string: "
    r"|Bool value \w+ is not acceptable for integer field"
    r"|int\(\) argument must be "
)
#: The longest refused value quoted.
_MAX_SHOWN = 60
_NO_VALUE = object()


def refused_field(document: Mapping[str, Any], cls: type[Message], path: str, exc: Exception) -> tuple[str, str]:
    """The path of the field of `document` (the proto3 JSON of a `cls`, at `path`) that protobuf
    refused with `exc`, as deep as one can be found, and protobuf's reason: each field is parsed
    alone (and each item of a list of messages), and the search goes down into the first that
    fails. `path` itself when no single field fails alone (two members of one oneof) or a field is
    unknown (`path` holds it)."""
    try:
        return _locate(document, cls, path, exc)
    except RecursionError:
        return path, _reason(exc)


def _locate(document: Mapping[str, Any], cls: type[Message], path: str, exc: Exception) -> tuple[str, str]:
    for key, value in document.items():
        try:
            json_format.ParseDict({key: value}, cls())
        except PARSE_ERRORS as alone:
            where = f"{path}.{key}" if path else str(key)
            descriptor = cls.DESCRIPTOR.fields_by_camelcase_name.get(key) or cls.DESCRIPTOR.fields_by_name.get(key)
            if descriptor is None:
                return path, _reason(alone)
            if descriptor.message_type is None or descriptor.message_type.GetOptions().map_entry:
                return where, _reason(alone, value)
            held = getattr(cls(), descriptor.name)
            if not descriptor.is_repeated and isinstance(value, Mapping):
                return _locate(value, type(held), where, alone)
            if descriptor.is_repeated and isinstance(value, list):
                for i, item in enumerate(value):
                    found = _locate_item(item, type(held.add()), f"{where}[{i}]")
                    if found:
                        return found
            return where, _reason(alone)
    return path, _reason(exc)  # every field parses alone: they conflict (two actions in one step)


def _locate_item(item: object, cls: type[Message], path: str) -> tuple[str, str] | None:
    if not isinstance(item, Mapping):
        return path, "must be a JSON object"
    try:
        json_format.ParseDict(dict(item), cls())
    except PARSE_ERRORS as exc:
        return _locate(item, cls, path, exc)
    return None


def _reason(exc: Exception, value: object = _NO_VALUE) -> str:
    """Protobuf's reason for refusing a field (holding `value`, when known), without the chain of
    fields it was in, where it was (the caller names the field), the list of field names it knows,
    and its doubled full stops; a value that is no integer said as Sentinel's checks say it."""
    text = _PARSE_CHAIN.sub("", str(exc)).split("\n")[0]
    if _NOT_AN_INTEGER.match(text):
        if value is _NO_VALUE:
            return "must be an integer"
        return f"must be an integer, got {_clip(repr(value), _MAX_SHOWN)}"
    if unknown := _UNKNOWN_FIELD.search(text):
        return f'unknown field "{unknown.group(1)}"'
    if oneof := _TWO_OF_ONEOF.search(text):
        return f'has more than one "{oneof.group(1)}" field; give one'
    reason = _PARSE_AT.sub("", text).rstrip(". ") or "is not valid"
    return _clip(reason, _MAX_REASON)  # it may quote a long value


def _clip(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters with "…" when it is longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
