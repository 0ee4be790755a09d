"""Building a Submit request from what a caller has: a dict, or a JSON file `sentinel submit` reads.

A test is the proto3 JSON form of `sentinel.v1.TestDefinition`, or of a `SubmitRequest` (a
`definition` with `options`): a document whose top level has any `SubmitRequest` key is the
latter; or a Chrome Recorder recording, converted (`_recorder`). Unknown fields are errors, so a
misspelt action is reported rather than silently dropped, and a field protobuf refuses is named by
its path in the document (`definition.steps[2].wait.ms`), not only by protobuf's words.
Options given as keywords override the document's. Every request leaves here with an idempotency
key (the caller's, or a fresh uuid4), which is what makes a retried submit safe.
"""

from __future__ import annotations

import difflib
import os
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict, TypeVar

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from protos import sentinel_pb2 as pb
from protos.json_errors import PARSE_ERRORS, refused_field
from sentinel_client._convert import enum_to_proto, parse_enum
from sentinel_client._recorder import convert_recording, is_recording
from sentinel_client._sources import RunTests, TestSource, read_test, run_tests
from sentinel_client.errors import FieldViolation, InvalidArgumentError
from sentinel_client.models import ArtifactPolicy, Priority

_SUBMIT_KEYS = frozenset(name for f in pb.SubmitRequest.DESCRIPTOR.fields for name in (f.name, f.json_name))
_DEFINITION_KEYS = frozenset(name for f in pb.TestDefinition.DESCRIPTOR.fields for name in (f.name, f.json_name))
#: The most an unsigned protobuf integer field holds, by its type.
_UINT_MAX = {FieldDescriptor.CPPTYPE_UINT32: 2**32 - 1, FieldDescriptor.CPPTYPE_UINT64: 2**64 - 1}


class SubmitOptions(TypedDict, total=False):
    """Keyword options of `submit`; each overrides the same option in the submitted document."""

    priority: Priority | str  # "high", "medium" (the API's default), "low"
    tags: Sequence[str]
    timeout_ms: int  # the whole job; default by priority (high 5 min, medium 10, low 20)
    max_attempts: int  # failed assertions are retried only when this is set
    backoff_ms: int
    delay_ms: int  # run no sooner than this after the submit
    idempotency_key: str  # the same key within 24 h returns the first job; default: a fresh uuid4
    artifact_policy: ArtifactPolicy | str  # "on_failure" (default), "always", "never"
    record_video: bool
    base_url: str  # replaces the definition's base URL (run one file against another environment)
    user_id: str
    request_id: str


def load_document(document: Mapping[str, Any], *, field: str = "definition", prefix: str = "") -> pb.SubmitRequest:
    """A SubmitRequest from the proto3 JSON of a TestDefinition or of a SubmitRequest, or from a
    Chrome Recorder recording.

    `prefix`: where the SubmitRequest sits in the request the API gets (`schedule.template.`), so a
    bad field is named as the API would name it (`schedule.template.definition.steps[2].wait.ms`).

    Raises:
        InvalidArgumentError: one violation naming the bad field as the document spells it
            (`definition.steps[2].wait.ms`; `field` when the document as a whole is wrong).
    """
    try:
        if not isinstance(document, Mapping):
            raise InvalidArgumentError.of(field, "must hold a JSON object")
        if is_recording(document):  # as `sentinel submit` takes it; the API validates what it becomes
            try:
                document = convert_recording(document).definition
            except InvalidArgumentError as exc:  # its steps named where the request has them (tests[2].steps[1] …)
                if not prefix:
                    raise
                below = [FieldViolation(f"{prefix}{v.field}", v.description) for v in exc.violations]
                raise InvalidArgumentError.listing(below) from None
        if _SUBMIT_KEYS.intersection(document):
            _check_shape(document, field)
            return parse_document(document, pb.SubmitRequest(), prefix.rstrip("."), field)
        return pb.SubmitRequest(definition=parse_document(document, pb.TestDefinition(), f"{prefix}definition", field))
    except RecursionError as exc:
        raise InvalidArgumentError.of(field, "is nested too deeply") from exc


def _check_shape(document: Mapping[str, Any], field: str) -> None:
    """Refuse a SubmitRequest (it has `options`, say) that also has a definition's own fields at its
    top level: protobuf would only say `unknown field "name"`, not that the shape is wrong.

    Raises:
        InvalidArgumentError: naming both kinds of keys and the two shapes a test may have.
    """
    stray = [key for key in document if key in _DEFINITION_KEYS and key not in _SUBMIT_KEYS]
    if stray:
        given = ", ".join(f'"{key}"' for key in sorted(_SUBMIT_KEYS.intersection(document)))
        beside = ", ".join(f'"{key}"' for key in stray)
        raise InvalidArgumentError.of(
            field,
            f"has {given} beside a definition's fields ({beside}): a test is either a bare definition, "
            'or {"definition": {...}, "options": {...}}',
        )


M = TypeVar("M", bound=Message)


def parse_document(document: Mapping[str, Any], message: M, path: str, field: str) -> M:
    """`document` parsed into `message`; a failure names the deepest field that is wrong, below
    `path` (`field` when it is the document as a whole).

    Raises:
        InvalidArgumentError: one violation of that field.
    """
    try:
        return json_format.ParseDict(dict(document), message)
    except PARSE_ERRORS as exc:
        where, reason = refused_field(document, type(message), path, exc)
        raise InvalidArgumentError.of(where or field, reason) from exc


def load_file(path: str | os.PathLike[str], *, prefix: str = "", field: str = "file") -> pb.SubmitRequest:
    """A SubmitRequest from a definition file, as `sentinel submit FILE` reads it (`prefix`: as
    `load_document`'s).

    Raises:
        InvalidArgumentError: the field `field` says what is wrong: the file cannot be read (a
            missing file, a folder: the OS's reason), or its content.
    """
    return load_document(read_test(path, field), field=field, prefix=prefix)


def submit_request(test: TestSource, options: SubmitOptions) -> pb.SubmitRequest:
    """The Submit request for `test` with `options` applied, always carrying an idempotency key."""
    request = load_document(test) if isinstance(test, Mapping) else load_file(test)
    _apply(request, options)
    return request


def template_request(test: TestSource, options: SubmitOptions, *, prefix: str) -> pb.SubmitRequest:
    """A schedule's template: the Submit request for `test` with `options` applied, without an
    idempotency key (each fire must make a job of its own); a bad field is named below `prefix`
    (`schedule.template.`), as the API names it."""
    if isinstance(test, Mapping):
        request = load_document(test, field=f"{prefix}definition", prefix=prefix)
    else:
        request = load_file(test, prefix=prefix)
    _apply(request, options, keyed=False, prefix=prefix)
    return request


def run_request(tests: RunTests, *, name: str, max_parallel: int, options: SubmitOptions) -> pb.SubmitRunRequest:
    """The SubmitRun request: every test's definition (with `base_url` applied), the file it came
    from and its own options (a file's "options"), the options they share (which win where they set
    a field), always carrying an idempotency key (the run's). Folders and globs among `tests` (or
    `tests` itself, one path) stand for their definition files (`_sources.run_tests`).

    Raises:
        TypeError: `tests` is not a list of tests, nor one path.
        InvalidArgumentError: a test is not valid, or its file cannot be read (`tests[i]`, counting
            the tests sent: a folder's files one each).
    """
    shared = pb.SubmitRequest()
    _apply(shared, options)
    request = pb.SubmitRunRequest(
        name=name,
        options=shared.options,
        max_parallel=max_parallel,
        user_id=shared.user_id,
        request_id=shared.request_id,
    )
    problems: list[FieldViolation] = []  # every bad test's, not only the first one's
    for i, item in enumerate(run_tests(tests)):
        test, source = item if isinstance(item, tuple) else (item, "")
        at = f"tests[{i}]."  # a bad field is named as the API names it: tests[2].definition.steps[0]…
        try:
            loaded = (
                load_document(test, field=f"{at}definition", prefix=at)
                if isinstance(test, Mapping)
                else load_file(test, prefix=at, field=f"tests[{i}]")
            )
            _set(loaded.definition, "base_url", options, f"{at}definition.")
        except InvalidArgumentError as exc:
            problems += exc.violations or [FieldViolation(f"tests[{i}]", exc.message)]
            continue
        file = source or ("" if isinstance(test, Mapping) else os.fspath(test))
        # The file's own options go with it; the run's (these `options`) win where they set a field.
        own = loaded.options if loaded.HasField("options") else None
        request.tests.append(pb.RunTest(definition=loaded.definition, file=file, options=own))
    if problems:
        raise InvalidArgumentError.listing(problems)
    return request


def _apply(request: pb.SubmitRequest, options: SubmitOptions, *, keyed: bool = True, prefix: str = "") -> None:
    """Apply `options` to `request` (its options, ids and base URL), giving it an idempotency key
    unless it is not `keyed` (a schedule's template: each fire is a job of its own). A bad option is
    named by its path in the request, below `prefix` (`options.priority`, `schedule.template.options.priority`).

    Raises:
        TypeError: an option `SubmitOptions` does not have (a misspelt one would be ignored).
        InvalidArgumentError: an option of the wrong kind.
    """
    check_keywords(options, SubmitOptions)
    given = request.options
    at = f"{prefix}options."
    if "priority" in options:
        lane = parse_enum(Priority, options["priority"], f"{at}priority")
        given.priority = enum_to_proto(lane)  # type: ignore[assignment]
    if "artifact_policy" in options:
        policy = parse_enum(ArtifactPolicy, options["artifact_policy"], f"{at}artifact_policy")
        given.artifact_policy = enum_to_proto(policy)  # type: ignore[assignment]
    if "tags" in options:
        tags = options["tags"]
        if isinstance(tags, str):
            raise InvalidArgumentError.of(f"{at}tags", "must be a list of tags, not one string")
        for i, tag in enumerate(tags):
            if not isinstance(tag, str):
                raise InvalidArgumentError.of(f"{at}tags[{i}]", f"must be a string, got {tag!r}")
        given.ClearField("tags")
        given.tags.extend(tags)
    for name in ("timeout_ms", "max_attempts", "backoff_ms", "delay_ms", "idempotency_key", "record_video"):
        _set(given, name, options, at)
    for name in ("user_id", "request_id"):
        _set(request, name, options, prefix)
    _set(request.definition, "base_url", options, f"{prefix}definition.")
    if keyed and not given.idempotency_key:
        given.idempotency_key = str(uuid.uuid4())


def check_keywords(given: Mapping[str, Any], accepted: Any, *, also: Sequence[str] = ()) -> None:
    """Refuse a keyword argument that is not a key of the TypedDict `accepted` (nor in `also`), as
    Python refuses an unknown keyword: `**options` would otherwise take a misspelt one silently.

    Raises:
        TypeError: naming the first unknown keyword, the closest known one and every accepted one.
    """
    known = sorted({*also, *accepted.__required_keys__, *accepted.__optional_keys__})
    for name in given:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TypeError(f"unexpected keyword argument {name!r}{hint}; the accepted ones are {', '.join(known)}")


def _set(message: Message, name: str, options: Mapping[str, Any], prefix: str) -> None:
    if name in options:
        set_scalar(message, name, options[name], f"{prefix}{name}")


def set_scalar(message: Message, name: str, value: Any, path: str) -> None:
    """Set the scalar field `name` of `message` to `value`, refusing a value of the wrong kind before
    protobuf does, in the API's words and by `path`, the field's path in the request the API gets
    (`schedule.interval_ms: must be an integer ≥ 0, got -5`).

    Raises:
        InvalidArgumentError: `value` is not of the field's kind, or out of its range.
    """
    problem = _scalar_problem(message.DESCRIPTOR.fields_by_name[name].cpp_type, value)
    if problem:
        raise InvalidArgumentError.of(path, problem)
    try:
        setattr(message, name, value)
    except (TypeError, ValueError) as exc:  # a kind not checked above (none today)
        raise InvalidArgumentError.of(path, f"is not valid: {exc}") from exc


def with_scalars(message: M, **values: Any) -> M:
    """`message` with each scalar field set by `set_scalar`, named as the caller's keyword names it
    (`page_size: must be an integer ≥ 0, got -1`, not protobuf's "Value out of range")."""
    for name, value in values.items():
        set_scalar(message, name, value, name)
    return message


def _scalar_problem(kind: int, value: Any) -> str:
    """What is wrong with `value` for a field of protobuf's C++ type `kind` ("" when nothing)."""
    if kind in _UINT_MAX:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"must be an integer ≥ 0, got {value!r}"
        if value > _UINT_MAX[kind]:
            return f"must be an integer ≤ {_UINT_MAX[kind]}, got {value!r}"
    elif kind == FieldDescriptor.CPPTYPE_BOOL and not isinstance(value, bool):
        return f"must be true or false, got {value!r}"
    elif kind == FieldDescriptor.CPPTYPE_STRING and not isinstance(value, str):
        return f"must be a string, got {value!r}"
    return ""
