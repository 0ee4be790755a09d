"""The OpenAPI document and the server agree: a request the document allows is one the server takes,
and one it refuses the server refuses too (the fuzzer's "schema-valid request rejected" and its
other mismatches), checked value by value against the served API with the document's own schemas.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from openapi_schema_validator import OAS31Validator

from api_service.http.openapi import document
from api_service.http.parsing import MAX_BODY_BYTES, options_from_json
from api_service.http.server import ROUTES
from shared.errors import ValidationError
from shared.model import ErrorCategory, JobState
from tests.api_service.http.conftest import Http, definition, submit
from tests.queue_helpers import run_jobs


def valid(schema: dict[str, Any], value: Any) -> bool:
    """Whether `value` fits `schema` (whose `$ref`s point into the document's components)."""
    rooted = {**schema, "components": document()["components"]}
    return bool(OAS31Validator(rooted).is_valid(value))


def body_schema(path: str) -> dict[str, Any]:
    return dict(document()["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"])


def parameter(path: str, name: str) -> dict[str, Any]:
    [found] = [p for p in document()["paths"][path]["get"]["parameters"] if p["name"] == name]
    return dict(found["schema"])


# --- whole numbers written with a zero fraction (audit #6) --------------------------------------


@pytest.mark.parametrize("value", [1000.0, 1000, 0.0, -0.0, 1e3])
def test_a_whole_number_with_a_zero_fraction_is_that_whole_number(value: float) -> None:
    options = options_from_json({"timeout": value, "maxAttempts": 2.0, "delayMs": 5.0})
    assert options.timeout_ms == int(value) and type(options.timeout_ms) is int
    assert (options.max_attempts, options.delay_ms) == (2, 5) and type(options.max_attempts) is int


@pytest.mark.parametrize("value", [1000.5, 0.1, -1.0, -1, True, "1000", None, float("nan"), float("inf")])
def test_anything_but_a_whole_number_at_least_0_is_refused(value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        options_from_json({"timeout": value})
    assert [v.field for v in caught.value.violations] == ["options.timeout"]


async def test_whole_numbers_with_a_zero_fraction_are_taken_over_http(http: Http) -> None:
    purge = {"olderThanMs": 126828.0}
    assert valid(body_schema("/queue/dead-letters/purge"), purge)
    assert (await http.call("POST", "/queue/dead-letters/purge", body=purge)).data == {"purged": 0}
    body = {"testDefinition": definition(), "options": {"timeout": 1000.0, "maxAttempts": 2.0, "delayMs": 0.0}}
    assert valid(body_schema("/tests/execute"), body)
    submitted = await http.call("POST", "/tests/execute", body=body)
    assert submitted.status == 202, submitted.body
    job = (await http.call("GET", f"/tests/{submitted.data['testId']}/status")).data
    assert job["maxAttempts"] == 2


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"olderThanMs": 1000.5}', "olderThanMs"),
        (b'{"olderThanMs": -3.0}', "olderThanMs"),
        (b'{"olderThanMs": NaN}', "olderThanMs"),
        (b'{"olderThanMs": Infinity}', "olderThanMs"),
        (b'{"olderThanMs": 1e400}', "olderThanMs"),  # json.loads reads it as inf
        (b'{"olderThanMs": true}', "olderThanMs"),
        (b'{"olderThanMs": "5"}', "olderThanMs"),
    ],
)
async def test_a_fraction_or_a_non_number_is_still_400(http: Http, raw: bytes, field: str) -> None:
    reply = await http.call("POST", "/queue/dead-letters/purge", data=raw, headers={"Content-Type": "application/json"})
    assert reply.status == 400 and [v["field"] for v in reply.body["error"]["violations"]] == [field], reply.body


@pytest.mark.parametrize(
    "options", [{"timeout": 1000.5}, {"maxAttempts": 1e20}, {"delayMs": -1.0}, {"timeout": 4e6}, {"maxAttempts": 11.0}]
)
async def test_an_option_the_document_refuses_the_server_refuses(http: Http, options: dict[str, Any]) -> None:
    body = {"testDefinition": definition(), "options": options}
    assert not valid(body_schema("/tests/execute"), body)
    assert (await http.call("POST", "/tests/execute", body=body)).status == 400


# --- the submit body's main limits (audit #7) ---------------------------------------------------

STEP = {"navigate": {"url": "https://shop.example.test/"}}
SUBMITS: list[tuple[str, dict[str, Any], bool]] = [
    ("a plain test", {"testDefinition": definition()}, True),
    ("an empty name", {"testDefinition": {"name": "", "steps": [STEP]}}, False),
    ("a name of spaces", {"testDefinition": {"name": "  ", "steps": [STEP]}}, False),
    ("no name", {"testDefinition": {"steps": [STEP]}}, False),
    ("a name of 200 characters", {"testDefinition": {"name": "n" * 200, "steps": [STEP]}}, True),
    ("a name of 201 characters", {"testDefinition": {"name": "n" * 201, "steps": [STEP]}}, False),
    ("no steps", {"testDefinition": {"name": "t", "steps": []}}, False),
    ("steps left out", {"testDefinition": {"name": "t"}}, False),
    ("500 steps", {"testDefinition": {"name": "t", "steps": [STEP] * 500}}, True),
    ("501 steps", {"testDefinition": {"name": "t", "steps": [STEP] * 501}}, False),
    ("20 tags", {"testDefinition": definition(), "options": {"tags": [f"t{i}" for i in range(20)]}}, True),
    ("21 tags", {"testDefinition": definition(), "options": {"tags": [f"t{i}" for i in range(21)]}}, False),
    ("a repeated tag", {"testDefinition": definition(), "options": {"tags": ["a", "a"]}}, False),
    ("an empty tag", {"testDefinition": definition(), "options": {"tags": [""]}}, False),
    ("a tag of 65 characters", {"testDefinition": definition(), "options": {"tags": ["t" * 65]}}, False),
    ("10 attempts", {"testDefinition": definition(), "options": {"maxAttempts": 10}}, True),
    ("a long idempotency key", {"testDefinition": definition(), "options": {"idempotencyKey": "k" * 201}}, False),
]


@pytest.mark.parametrize(("case", "body", "taken"), SUBMITS, ids=[case for case, _, _ in SUBMITS])
async def test_the_document_allows_a_submit_exactly_when_the_server_takes_it(
    http: Http, case: str, body: dict[str, Any], taken: bool
) -> None:
    assert valid(body_schema("/tests/execute"), body) is taken, case
    reply = await http.call("POST", "/tests/execute", body=body)
    assert reply.status == (202 if taken else 400), (case, reply.body)


# --- the artifact's attempt (audit #7) ----------------------------------------------------------


@pytest.mark.parametrize(("attempt", "taken"), [("1", True), ("12", True), ("0", False), ("01", False), ("x", False)])
async def test_the_document_allows_an_attempt_exactly_when_the_server_takes_it(
    http: Http, attempt: str, taken: bool
) -> None:
    assert valid(parameter("/tests/{id}/artifacts/{attempt}/{file}", "attempt"), attempt) is taken
    reply = await http.call("GET", f"/tests/no-such-job/artifacts/{attempt}/trace.zip")
    assert reply.status == (404 if taken else 400), reply.body  # taken: then the job is looked up


# --- empty query parameters (audit #7) ----------------------------------------------------------

ENUM_QUERIES = [
    ("/tests", "status", JobState.RUNNING.value),
    ("/queue/dead-letters", "category", ErrorCategory.TIMEOUT.value),
]


@pytest.mark.parametrize(("path", "name", "word"), ENUM_QUERIES)
async def test_an_empty_filter_is_no_filter_in_the_document_as_on_the_server(
    http: Http, path: str, name: str, word: str
) -> None:
    schema = parameter(path, name)
    assert valid(schema, "") and valid(schema, word) and not valid(schema, "oops")
    await submit(http)  # a job waiting, and one dead letter: an empty filter must not hide them
    await run_jobs(http.queue, 1, state=JobState.FAILED, dead_letter_reason="out of attempts")
    await submit(http)
    unfiltered = (await http.call("GET", path)).data
    assert any(unfiltered.values())
    assert (await http.call("GET", f"{path}?{name}=")).data == unfiltered
    assert (await http.call("GET", f"{path}?{name}={word}")).status == 200
    refused = await http.call("GET", f"{path}?{name}=oops")
    assert refused.status == 400 and refused.body["error"]["violations"][0]["field"] == name


# --- 413 (audit #7) -----------------------------------------------------------------------------


@pytest.mark.parametrize("route", [r for r in ROUTES if r.method == "POST"], ids=lambda r: r.name)
async def test_every_route_that_takes_a_body_answers_and_documents_413(http: Http, route: Any) -> None:
    op = document()["paths"][route.path]["post"]
    assert {"413", "415"} <= set(op["responses"]), route.path
    big = json.dumps({"pad": "x" * MAX_BODY_BYTES}).encode()
    url = f"{http.base}/api/v1{route.path.replace('{id}', 'some-id')}"
    async with http.session.post(url, data=io.BytesIO(big), headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 413, route.path
