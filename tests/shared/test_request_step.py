"""The request step in the shared layer: validation of each field, conversions, sealing, JSON checks."""

from __future__ import annotations

import dataclasses

import pytest
from google.protobuf import json_format

from protos import sentinel_pb2 as pb
from shared import codec
from shared import validation as v
from shared.actions import JsonExpectation, Request, secrets
from shared.edge import convert
from shared.errors import DecodeError, FieldViolation, ValidationError
from shared.json_checks import compile_path, json_equal, values_at
from shared.model import JobOptions, Step, SubmitCommand, TestDefinition
from shared.sealed import SEALED_PREFIX, Sealer, new_secret_key, seal_command
from tests.convert_helpers import definition_to_proto

BASE = "https://api.example.test/"
AT = "definition.steps[0].request"
TOKEN = "Bearer s3cret-t0ken"

FULL = Request(
    "/v1/login",
    method="POST",
    headers={"Content-Type": "application/json", "Authorization": TOKEN},
    body='{"user": "ada"}',
    expect_status=201,
    expect_body_contains="welcome",
    expect_json=(JsonExpectation("$.user.name", '"ada"'), JsonExpectation("$.items[*].id")),
    secret_headers=("Authorization",),
    max_redirects=5,
    expect_headers={"Content-Type": "json", "Set-Cookie": "sid="},
)


def found(action: Request, *, base_url: str = BASE) -> list[FieldViolation]:
    return v.validate_definition(TestDefinition(name="api", base_url=base_url, steps=(Step(action),)))


def fields_of(action: Request, *, base_url: str = BASE) -> list[str]:
    return [x.field for x in found(action, base_url=base_url)]


# --- validation, field by field ----------------------------------------------------------------


def test_a_full_request_and_a_bare_one_are_valid() -> None:
    assert found(FULL) == []
    assert found(Request("https://api.example.test/health"), base_url="") == []
    assert FULL.describe() == "POST /v1/login"  # never a header value


@pytest.mark.parametrize(
    ("action", "field"),
    [
        (Request(""), "url"),
        (Request("javascript:alert(1)", method="GET"), "url"),
        (Request("/x", method="get"), "method"),
        (Request("/x", method="TRACE"), "method"),
        (Request("/x", body="b" * (v.MAX_BODY_CHARS + 1)), "body"),
        (Request("/x", expect_status=99), "expect_status"),
        (Request("/x", expect_status=600), "expect_status"),
        (Request("/x", expect_body_contains="c" * (v.MAX_TEXT_CHARS + 1)), "expect_body_contains"),
        (Request("/x", expect_json=(JsonExpectation(""),)), "expect_json[0].path"),
        (Request("/x", expect_json=(JsonExpectation("user.name"),)), "expect_json[0].path"),
        (Request("/x", expect_json=(JsonExpectation("$.a["),)), "expect_json[0].path"),
        (Request("/x", expect_json=(JsonExpectation("$." + "a" * v.MAX_JSON_PATH_CHARS),)), "expect_json[0].path"),
        (Request("/x", expect_json=(JsonExpectation("$.a"), JsonExpectation("$.b", "ada"))), "expect_json[1].equals"),
        (Request("/x", expect_json=(JsonExpectation("$.a"),) * (v.MAX_JSON_CHECKS + 1)), "expect_json"),
        (Request("/x", headers={"A": "1"}, secret_headers=("B",)), "secret_headers[0]"),
        (Request("/x", max_redirects=0), "max_redirects"),
        (Request("/x", max_redirects=v.MAX_REDIRECTS + 1), "max_redirects"),
        (Request("/x", headers={"bad name": "1"}), "headers"),
        (Request("/x", headers={"X-Evil": "a\r\nHost: other"}), "headers[X-Evil]"),
        (Request("/x", headers={"Host": "other.test"}), "headers[Host]"),
        (Request("/x", headers={"Content-Length": "3"}), "headers[Content-Length]"),
        (Request("/x", headers={"X-Big": "v" * (v.MAX_HEADER_VALUE_CHARS + 1)}), "headers[X-Big]"),
        (Request("/x", headers={f"X-{i}": "1" for i in range(v.MAX_HEADERS + 1)}), "headers"),
        (Request("/x", expect_headers={"bad name": "1"}), "expect_headers"),
        (Request("/x", expect_headers={"X-A": "1", "x-a": "2"}), "expect_headers[x-a]"),
        (Request("/x", expect_headers={"X-Big": "v" * (v.MAX_HEADER_VALUE_CHARS + 1)}), "expect_headers[X-Big]"),
        (Request("/x", expect_headers={"X-Line": "a\nb"}), "expect_headers[X-Line]"),
        # A redirect's body is never read: nothing could be found in it.
        (Request("/x", expect_status=302, expect_body_contains="moved"), "expect_body_contains"),
        (Request("/x", expect_status=301, expect_json=(JsonExpectation("$.a"),)), "expect_json"),
    ],
)
def test_each_bad_field_is_named(action: Request, field: str) -> None:
    assert fields_of(action) == [f"{AT}.{field}"]


def test_header_names_are_case_insensitive_for_duplicates_and_secrets() -> None:
    assert fields_of(Request("/x", headers={"X-A": "1", "x-a": "2"})) == [f"{AT}.headers[x-a]"]
    assert found(Request("/x", headers={"Authorization": "t"}, secret_headers=("AUTHORIZATION",))) == []


def test_a_relative_url_needs_a_base_url() -> None:
    (violation,) = found(Request("/x"), base_url="")
    assert violation.field == f"{AT}.url" and "base URL" in violation.description


def test_violations_never_show_a_header_value() -> None:
    bad = Request("/x", headers={"Authorization": TOKEN + "\n", "Host": TOKEN}, secret_headers=("Authorization",))
    problems = found(bad)
    assert len(problems) == 2
    assert all(TOKEN not in p.description and TOKEN not in p.field for p in problems)


def test_every_string_of_a_request_counts_toward_the_definition_size() -> None:
    definition = TestDefinition(name="api", base_url=BASE, steps=(Step(FULL),))
    strings = ["api", BASE, *FULL.headers, *FULL.headers.values(), FULL.url, FULL.method, FULL.body]
    strings += [FULL.expect_body_contains, *FULL.secret_headers, *FULL.expect_headers, *FULL.expect_headers.values()]
    strings += [s for e in FULL.expect_json for s in (e.path, e.equals)]
    assert v.definition_chars(definition) == sum(len(s) for s in strings)


# --- conversions -------------------------------------------------------------------------------


def test_a_request_round_trips_through_protobuf_and_proto3_json() -> None:
    definition = TestDefinition(name="api", base_url=BASE, steps=(Step(FULL, name="login", timeout_ms=900),))
    message = definition_to_proto(definition)
    assert convert.definition_from_proto(message) == definition
    as_json = json_format.MessageToDict(message)
    assert as_json["steps"][0]["request"]["headers"] == FULL.headers
    assert as_json["steps"][0]["request"]["expectHeaders"] == FULL.expect_headers
    assert as_json["steps"][0]["request"]["expectJson"][1] == {"path": "$.items[*].id"}
    assert convert.definition_from_proto(json_format.ParseDict(as_json, pb.TestDefinition())) == definition


def test_a_request_round_trips_through_the_job_hash_json() -> None:
    definition = TestDefinition(name="api", base_url=BASE, steps=(Step(FULL),))
    again = codec.definition_from_json(codec.definition_to_json(definition))
    assert again == definition
    action = again.steps[0].action
    assert isinstance(action, Request) and isinstance(action.expect_json[0], JsonExpectation)
    assert isinstance(action.secret_headers, tuple)


def test_a_malformed_stored_request_is_a_decode_error() -> None:
    raw = codec.definition_to_json(TestDefinition(name="api", steps=(Step(FULL),)))
    broken = raw.replace('"expect_json":[', '"expect_json":"nope","x":[')
    with pytest.raises(DecodeError):
        codec.definition_from_json(broken)


# --- sealing -----------------------------------------------------------------------------------


def submit(action: Request) -> SubmitCommand:
    return SubmitCommand(
        definition=TestDefinition(name="api", base_url=BASE, steps=(Step(action),)), options=JobOptions()
    )


def test_secret_headers_are_sealed_and_only_those() -> None:
    sealer = Sealer(new_secret_key())
    command = SubmitCommand(
        definition=TestDefinition(name="api", base_url=BASE, steps=(Step(FULL),)), options=JobOptions()
    )
    sealed = seal_command(command, sealer).definition.steps[0].action
    assert isinstance(sealed, Request)
    assert sealed.headers["Content-Type"] == "application/json"
    assert sealed.headers["Authorization"].startswith(SEALED_PREFIX)
    assert TOKEN not in codec.definition_to_json(seal_command(command, sealer).definition)
    assert sealer.open(sealed.headers["Authorization"], field="f") == TOKEN
    assert secrets(sealed) == {"request.headers[Authorization]": sealed.headers["Authorization"]}
    # What the API stores still validates (the sealed value is longer than the clear one).
    long = dataclasses.replace(FULL, headers={"Authorization": "t" * v.MAX_HEADER_VALUE_CHARS})
    stored = seal_command(submit(long), sealer).definition
    assert v.validate_definition(stored) == []


def test_a_secret_header_without_a_key_is_refused_by_field() -> None:
    command = SubmitCommand(
        definition=TestDefinition(name="api", base_url=BASE, steps=(Step(FULL),)), options=JobOptions()
    )
    with pytest.raises(ValidationError) as caught:
        seal_command(command, None)
    assert caught.value.violations[0].field == "definition.steps[0].request.secret_headers"


# --- JSON checks -------------------------------------------------------------------------------


def test_json_equality_follows_json_not_python() -> None:
    assert json_equal(1, 1.0) and json_equal({"a": [1, "x"]}, {"a": [1.0, "x"]})
    assert not json_equal(True, 1) and not json_equal(0, False) and not json_equal(None, 0)
    assert not json_equal([1, 2], [1]) and not json_equal({"a": 1}, {"b": 1}) and not json_equal("1", 1)


def test_paths_select_values_in_document_order() -> None:
    document = {"items": [{"id": 1}, {"id": 2}], "user": {"name": "ada"}}
    assert values_at(compile_path("$.items[*].id"), document) == [1, 2]
    assert values_at(compile_path("$.user.name"), document) == ["ada"]
    assert values_at(compile_path("$.missing"), document) == []
