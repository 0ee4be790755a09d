"""Tests (jobs) over HTTP: submit, status, listing, cancel, retry, runs — every answer and status code.

Through a real ApiServer on a real redis-server; the test plays the executor (tests/queue_helpers.py).
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
import redis.asyncio as aioredis

from shared import codec, runs
from shared.model import Fill, JobOptions, JobState, JsonExpectation, Request, RunCommand, RunTestSpec
from shared.schedules.firing import trigger_schedule
from shared.schedules.model import OverlapPolicy, ScheduleSpec
from shared.schedules.store import create_schedule
from shared.schedules.timing import Timing
from shared.sealed import SEALED_PREFIX
from shared.settings import QueueSettings
from tests.api_service.http.conftest import Http, definition, start_http, submit
from tests.queue_helpers import command, run_jobs
from tests.support import RedisProcess, wait_for


async def execute(http: Http, body: Any) -> Any:
    return await http.call("POST", "/tests/execute", body=body)


async def test_submit_queues_the_test_and_a_repeated_idempotency_key_is_a_duplicate(http: Http) -> None:
    body = {
        "testDefinition": definition("checkout", "#buy"),
        "options": {
            "priority": "low",
            "timeout": 60_000,
            "tags": ["nightly", "shop"],
            "maxAttempts": 2,
            "delayMs": 0,
            "idempotencyKey": "order-7",
            "artifactPolicy": "always",
            "recordVideo": True,
        },
    }
    first = await execute(http, body)
    assert first.status == 202 and first.data["duplicate"] is False
    again = await execute(http, body)
    assert again.status == 202 and again.data == {"testId": first.data["testId"], "duplicate": True}
    job = (await http.call("GET", f"/tests/{first.data['testId']}/status")).data
    assert (job["name"], job["priority"], job["tags"], job["maxAttempts"]) == (
        "checkout",
        "low",
        ["nightly", "shop"],
        2,
    )
    assert job["progress"]["totalSteps"] == 2


async def test_violations_name_fields_as_grpc_does_with_the_http_names(http: Http) -> None:
    body = {
        "testDefinition": {"name": "", "steps": [{"navigate": {"url": "ftp://x"}}, {"click": {"selector": ""}}]},
        "options": {"timeout": 10**9, "maxAttempts": 99, "tags": ["bad tag"]},
    }
    reply = await execute(http, body)
    assert reply.status == 400 and reply.code == "INVALID_ARGUMENT"
    fields = [v["field"] for v in reply.body["error"]["violations"]]
    assert fields == [
        "testDefinition.name",
        "testDefinition.steps[0].navigate.url",
        "testDefinition.steps[1].click.selector",
        "options.timeout",
        "options.maxAttempts",
        "options.tags[0]",
    ]
    assert reply.body["message"].startswith("testDefinition.name: ")


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (b"{not json", "body", "not valid JSON"),
        (b"[1, 2]", "body", "JSON object"),
        (b"", "body", "JSON object"),
        (b"\xff\xfe", "body", "UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "body", "nested too deeply"),
        (b'{"testDefinition": {"name": "t", "stepz": []}}', "testDefinition", "stepz"),
        (b'{"testDefinition": {"name": "t", "steps": [{"clik": {}}]}}', "testDefinition.steps[0]", "clik"),
        (b'{"options": {}}', "testDefinition", "required"),
        (b'{"testDefinition": {}, "extra": 1}', "extra", "not a known field"),
        (b'{"testDefinition": {}, "options": {"priority": "urgent"}}', "options.priority", "high, medium, low"),
        (b'{"testDefinition": {}, "options": {"priority": 99}}', "options.priority", "high, medium, low"),
        (b'{"testDefinition": {}, "options": {"artifactPolicy": 9}}', "options.artifactPolicy", "always, never"),
        (b'{"testDefinition": {}, "options": {"tags": ["smoke", "smoke"]}}', "options.tags[1]", "repeats 'smoke'"),
        (b'{"testDefinition": {}, "options": {"timeout": "5s"}}', "options.timeout", "whole number"),
        (b'{"testDefinition": {}, "options": {"recordVideo": "yes"}}', "options.recordVideo", "true or false"),
    ],
)
async def test_a_malformed_body_is_400_naming_the_problem(http: Http, body: bytes, field: str, words: str) -> None:
    reply = await http.call("POST", "/tests/execute", data=body, headers={"Content-Type": "application/json"})
    assert reply.status == 400 and reply.code == "INVALID_ARGUMENT", reply.body
    [violation] = [v for v in reply.body["error"]["violations"] if v["field"] == field]
    assert words in violation["description"]
    assert "Traceback" not in str(reply.body)


async def test_a_body_over_1_mib_is_413_unread(http: Http) -> None:
    big = b'{"testDefinition": {"name": "' + b"x" * (1024 * 1024) + b'"}}'
    async with http.session.post(f"{http.base}/api/v1/tests/execute", data=io.BytesIO(big)) as resp:
        assert resp.status == 413 and (await resp.json())["error"]["code"] == "RESOURCE_EXHAUSTED"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: stopped while reading
        for _ in range(20):
            yield b" " * 100_000

    async with http.session.post(f"{http.base}/api/v1/tests/execute", data=chunks()) as resp:
        assert resp.status == 413 and (await resp.json())["error"]["code"] == "RESOURCE_EXHAUSTED"


@pytest.fixture
async def limited(redis_server: RedisProcess, redis_client: aioredis.Redis) -> AsyncIterator[Http]:
    async for harness in start_http(redis_server, redis_client, queue_settings=QueueSettings(tenant_max_queued=1)):
        yield harness


async def test_past_the_tenants_queue_limit_a_submit_is_429(limited: Http) -> None:
    await submit(limited)
    reply = await limited.call("POST", "/tests/execute", body={"testDefinition": definition()})
    assert reply.status == 429 and reply.code == "RESOURCE_EXHAUSTED"
    assert reply.headers["Retry-After"] == "1"


def secret_test() -> dict[str, Any]:
    steps = [
        {"navigate": {"url": "https://shop.example.test/"}},
        {"fill": {"selector": "#pw", "value": "hunter2", "secret": True}},
    ]
    return {"testDefinition": {"name": "login", "steps": steps}}


async def test_a_secret_fill_value_is_sealed_as_grpc_submit_seals_it(keyed: Http) -> None:
    reply = await keyed.call("POST", "/tests/execute", who="acme-submitter", body=secret_test())
    assert reply.status == 202
    raw = cast(dict[str, str], await keyed.redis.hgetall(keyed.queue.keys.job(reply.data["testId"])))
    stored = codec.job_from_hash(raw).definition.steps[1].action
    assert isinstance(stored, Fill) and stored.value.startswith(SEALED_PREFIX) and "hunter2" not in str(raw)


async def test_a_secret_is_refused_without_a_secret_key_naming_the_step(http: Http) -> None:
    reply = await http.call("POST", "/tests/execute", body=secret_test())
    assert reply.status == 400
    assert [v["field"] for v in reply.body["error"]["violations"]] == ["testDefinition.steps[1].fill.secret"]


async def test_a_request_step_is_accepted_with_its_secret_header_sealed(keyed: Http) -> None:
    step = {
        "request": {
            "method": "POST",
            "url": "https://api.example.test/items",
            "headers": {"Authorization": "Bearer t0ken-v4lue", "Content-Type": "application/json"},
            "secretHeaders": ["Authorization"],
            "expectJson": [{"path": "$.id"}, {"path": "$.sku", "equals": '"A-1"'}],
        }
    }
    reply = await keyed.call(
        "POST", "/tests/execute", who="acme-submitter", body={"testDefinition": {"name": "api", "steps": [step]}}
    )
    assert reply.status == 202, reply.body
    raw = cast(dict[str, str], await keyed.redis.hgetall(keyed.queue.keys.job(reply.data["testId"])))
    stored = codec.job_from_hash(raw).definition.steps[0].action
    assert isinstance(stored, Request) and stored.headers["Authorization"].startswith(SEALED_PREFIX)
    assert stored.headers["Content-Type"] == "application/json" and "t0ken-v4lue" not in str(raw)
    assert stored.expect_json[1] == JsonExpectation("$.sku", '"A-1"')
    step["request"]["expectJson"] = [{"path": "sku"}]
    bad = await keyed.call(
        "POST", "/tests/execute", who="acme-submitter", body={"testDefinition": {"name": "api", "steps": [step]}}
    )
    assert bad.status == 400
    fields = [v["field"] for v in bad.body["error"]["violations"]]
    assert fields == ["testDefinition.steps[0].request.expectJson[0].path"]


async def test_listing_filters_by_status_and_tag_and_pages_newest_first(http: Http) -> None:
    made = [await submit(http, tags=["a"]) for _ in range(3)]
    other = await submit(http, tags=["b"])
    [ran] = await run_jobs(http.queue, 1)
    assert ran == made[0]
    page = (await http.call("GET", "/tests?pageSize=2")).data
    assert len(page["jobs"]) == 2 and page["nextPageToken"]
    rest = (await http.call("GET", f"/tests?pageSize=2&pageToken={page['nextPageToken']}")).data
    listed = page["jobs"] + rest["jobs"]
    # Newest first (jobs submitted in the same millisecond come in id order), each exactly once.
    assert sorted(j["id"] for j in listed) == sorted([*made, other])
    stamps = [j["createdAt"] for j in listed]
    assert stamps == sorted(stamps, reverse=True)
    tagged = (await http.call("GET", "/tests?tag=a&status=pending")).data
    assert {j["id"] for j in tagged["jobs"]} == {made[1], made[2]} and tagged["nextPageToken"] is None
    done = (await http.call("GET", "/tests?status=completed")).data["jobs"]
    assert [j["id"] for j in done] == [made[0]] and done[0]["result"]["success"] is True
    assert done[0]["finishedAt"] and done[0]["workerId"] == "fake-1"
    for query, field in (
        ("status=done", "status"),
        ("pageSize=x", "pageSize"),
        ("pageSize=501", "pageSize"),
        ("pageToken=zz", "pageToken"),
    ):
        reply = await http.call("GET", f"/tests?{query}")
        assert reply.status == 400 and reply.body["error"]["violations"][0]["field"] == field, query


async def test_cancel_then_cancel_again_is_409_and_retry_queues_it_again(http: Http) -> None:
    job_id = await submit(http)
    reply = await http.call("POST", f"/queue/jobs/{job_id}/cancel")
    assert reply.status == 200 and reply.data["status"] == "cancelled"
    assert reply.data["error"] == {"category": None, "message": "cancelled before it ran", "stepIndex": -1}
    again = await http.call("POST", f"/queue/jobs/{job_id}/cancel")
    assert again.status == 409 and again.code == "FAILED_PRECONDITION" and "already finished" in again.body["message"]
    retried = await http.call("POST", f"/queue/jobs/{job_id}/retry")
    assert retried.status == 200 and retried.data["id"] == job_id and retried.data["status"] == JobState.PENDING.value
    busy = await http.call("POST", f"/queue/jobs/{job_id}/retry")
    assert busy.status == 409
    for path in ("/queue/jobs/nope/cancel", "/queue/jobs/nope/retry"):
        assert (await http.call("POST", path)).status == 404


async def test_a_rerun_starts_its_attempts_over_and_counts_on_its_runs(http: Http) -> None:
    job_id = await submit(http)
    await run_jobs(http.queue, 1, state=JobState.FAILED)
    first = (await http.call("GET", f"/tests/{job_id}/status")).data
    assert (first["status"], first["attempt"], first["runs"]) == ("failed", 1, 1)

    retried = await http.call("POST", f"/queue/jobs/{job_id}/retry")
    assert (retried.data["status"], retried.data["attempt"], retried.data["runs"]) == ("pending", 0, 1)
    await run_jobs(http.queue, 1, state=JobState.FAILED)  # the rerun: its second run, artifacts under 2/
    again = (await http.call("GET", f"/tests/{job_id}/status")).data
    assert (again["status"], again["attempt"], again["runs"]) == ("failed", 1, 2)
    [listed] = [j for j in (await http.call("GET", "/tests")).data["jobs"] if j["id"] == job_id]
    assert (listed["attempt"], listed["runs"]) == (1, 2)


async def test_a_run_is_shown_with_its_tests_and_counts(http: Http) -> None:
    spec = RunTestSpec(definition=command().definition, file="suite/a.json")
    nightly = RunCommand(name="nightly", tests=(spec,), options=JobOptions(tags=("nightly",)))
    done = await runs.submit_run(http.queue, nightly, tenant="default")
    await run_jobs(http.queue, 1, state=JobState.FAILED)
    run = (await http.call("GET", f"/runs/{done.run_id}")).data
    assert run["id"] == done.run_id and run["name"] == "nightly" and run["state"] == "failed"
    assert run["counts"]["failed"] == 1 and run["counts"]["completed"] == 0 and run["finishedAt"]
    [test] = run["tests"]
    assert (test["jobId"], test["file"], test["status"]) == (done.job_ids[0], "suite/a.json", "failed")
    assert test["tags"] == ["nightly"]  # its job's: the run's and its own
    assert (await http.call("GET", "/runs/nope")).status == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"testDefinition": {"name": "t"}, "options": {"idempotencyKey": "\\ud800"}}', "options.idempotencyKey"),
        (
            b'{"testDefinition": {"name": "t", "steps": [{"fill": {"selector": "#a", "value": "x\\uDBFFy"}}]}}',
            "testDefinition.steps[0].fill.value",
        ),
        (b'{"testDefinition": {"name": "t"}, "options": {"tags": ["ok", "\\udc00"]}}', "options.tags[1]"),
        (b'{"testDefinition": {"name": "t"}, "options": {"\\ud800": 1}}', "options"),
        (b'{"\\udfff": 1}', "body"),
    ],
)
async def test_a_lone_surrogate_anywhere_in_a_body_is_400_naming_its_field(http: Http, body: bytes, field: str) -> None:
    reply = await http.call("POST", "/tests/execute", data=body, headers={"Content-Type": "application/json"})
    assert reply.status == 400 and reply.code == "INVALID_ARGUMENT", reply.body
    [violation] = reply.body["error"]["violations"]
    assert violation["field"] == field
    assert "must be valid Unicode text: a lone surrogate \\u" in violation["description"]
    # The submit failed alone: the API still takes the next one.
    assert (await execute(http, {"testDefinition": definition()})).status == 202


async def test_escaped_backslashes_and_surrogate_pairs_are_ordinary_text(http: Http) -> None:
    steps = b'[{"navigate": {"url": "https://shop.example.test/"}}]'
    body = (
        b'{"testDefinition": {"name": "t \\\\ud800 \\ud83d\\ude00", "steps": '
        + steps
        + b'}, "options": {"idempotencyKey": "\\\\uD800"}}'
    )
    reply = await http.call("POST", "/tests/execute", data=body, headers={"Content-Type": "application/json"})
    assert reply.status == 202, reply.body
    job = (await http.call("GET", f"/tests/{reply.data['testId']}/status")).data
    assert job["name"] == "t \\ud800 \U0001f600"


async def test_violations_name_every_field_in_the_camel_case_of_the_request(http: Http) -> None:
    steps = [
        {"navigate": {"url": "/"}},
        {"timeoutMs": 10**9, "waitFor": {"selector": "#a", "state": "STATE_BOGUS"}},
        {"expectUrl": {"pattern": ""}},
    ]
    body = {"testDefinition": {"name": "t", "baseUrl": "ftp://x", "steps": steps}, "options": {"timeout": 10**9}}
    reply = await execute(http, body)
    assert reply.status == 400
    assert [v["field"] for v in reply.body["error"]["violations"]] == [
        "testDefinition.baseUrl",
        "testDefinition.steps[0].navigate.url",
        "testDefinition.steps[1].timeoutMs",
        "testDefinition.steps[1].waitFor.state",
        "testDefinition.steps[2].expectUrl.pattern",
        "options.timeout",
    ]
    assert reply.body["message"].startswith("testDefinition.baseUrl: ")


@pytest.mark.parametrize(
    ("definition_json", "field", "description"),
    [
        ({"name": "t", "viewport": {"width": -1}}, "testDefinition.viewport.width", "Value out of range: -1"),
        ({"name": "t", "stepz": []}, "testDefinition", 'unknown field "stepz"'),
        (
            {"name": "t", "steps": [{"navigate": {"url": "/"}}, {"clik": {}}]},
            "testDefinition.steps[1]",
            'unknown field "clik"',
        ),
        (
            {"name": "t", "steps": [{"navigate": {"url": "/"}}, {"navigate": {"url": 5}}]},
            "testDefinition.steps[1].navigate.url",
            "expected string or bytes-like object, got 'int'",
        ),
        (
            {"name": "t", "steps": [{"request": {"url": "/", "expectJson": [{"path": "$"}, {"pathz": 1}]}}]},
            "testDefinition.steps[0].request.expectJson[1]",
            'unknown field "pathz"',
        ),
        (
            {"name": "t", "steps": [{"timeoutMs": "soon", "wait": {"ms": 1}}]},
            "testDefinition.steps[0].timeoutMs",
            "must be an integer, got 'soon'",
        ),
    ],
)
async def test_a_definition_protobuf_cannot_read_names_the_deepest_field(
    http: Http, definition_json: dict[str, Any], field: str, description: str
) -> None:
    reply = await execute(http, {"testDefinition": definition_json})
    assert reply.status == 400, reply.body
    assert reply.body["error"]["violations"] == [{"field": field, "description": description}]
    assert "Available Fields" not in reply.body["message"] and not reply.body["message"].endswith(".")


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/json", 202),
        ("application/json; charset=utf-8", 202),
        ("application/merge-patch+json", 202),
        (None, 202),  # no Content-Type at all: read as JSON (lenient, as the docstring of server.py says)
        ("text/plain", 415),
        ("text/plain; charset=utf-8", 415),
        ("application/x-www-form-urlencoded", 415),  # what `curl -d` sends
        ("multipart/form-data; boundary=x", 415),
    ],
)
async def test_a_body_that_is_not_sent_as_json_is_415(http: Http, content_type: str | None, status: int) -> None:
    body = json.dumps({"testDefinition": definition()}).encode()
    headers = {"Content-Type": content_type} if content_type else {}
    async with http.session.post(
        f"{http.base}/api/v1/tests/execute", data=body, headers=headers, skip_auto_headers=["Content-Type"]
    ) as resp:
        answer = await resp.json()
        assert resp.status == status, answer
    if status == 415:
        assert answer["success"] is False and answer["error"]["code"] == "INVALID_ARGUMENT"
        assert "application/json" in answer["message"]
        assert (await http.call("GET", "/tests")).data["jobs"] == []  # nothing was queued


async def test_a_post_without_a_body_needs_no_content_type_and_any_body_must_be_json(http: Http) -> None:
    job_id = await submit(http)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert (await http.call("POST", f"/queue/jobs/{job_id}/cancel", data=b"", headers=form)).status == 200
    refused = await http.call("POST", "/queue/pause", data=b"x=1", headers=form)
    assert refused.status == 415 and (await http.call("GET", "/queue/stats")).data["paused"] is False
    assert (await http.call("POST", "/no/such/route", data=b"x=1", headers=form)).status == 404


async def test_an_unknown_query_parameter_is_400_naming_it_and_what_the_route_takes(http: Http) -> None:
    reply = await http.call("GET", "/tests?state=failed")
    assert reply.status == 400 and reply.code == "INVALID_ARGUMENT"
    assert reply.body["error"]["violations"] == [
        {
            "field": "state",
            "description": "unknown query parameter; this route takes status, tag, scheduleId, pageSize, pageToken",
        }
    ]
    assert reply.body["message"].startswith("state: unknown query parameter")
    dead = await http.call("GET", "/queue/dead-letters?status=failed")
    assert dead.status == 400 and dead.body["error"]["violations"][0]["field"] == "status"
    none = await http.call("GET", "/whoami?x=1")
    assert none.status == 400 and "takes no query parameters" in none.body["message"]
    async with http.session.get(f"{http.base}/api/v1/queue/events?state=x") as resp:
        assert resp.status == 400 and (await resp.json())["error"]["violations"][0]["field"] == "state"
    assert (await http.call("GET", "/tests?status=failed&tag=&pageSize=5")).status == 200


async def test_jobs_a_schedule_fired_say_so_and_are_listed_by_schedule(http: Http) -> None:
    timing = Timing(interval_ms=1000)
    template = command()
    spec = ScheduleSpec(name="every second", timing=timing, template=template, overlap=OverlapPolicy.ALLOW)
    made = await create_schedule(http.queue, spec, tenant="default", sealer=None)
    other = await create_schedule(http.queue, spec, tenant="default", sealer=None)
    plain = await submit(http)
    triggered = await trigger_schedule(http.queue, made.schedule_id, tenant="default")
    await trigger_schedule(http.queue, other.schedule_id, tenant="default")

    async def fired() -> list[dict[str, Any]] | None:
        jobs = (await http.call("GET", f"/tests?scheduleId={made.schedule_id}")).data["jobs"]
        return jobs if any(j["fireTime"] for j in jobs) else None

    listed = await wait_for(fired, within=15, what="the API's scheduler to fire the schedule")
    assert plain not in [j["id"] for j in listed] and triggered.job_id in [j["id"] for j in listed]
    assert {j["scheduleId"] for j in listed} == {made.schedule_id} and {j["source"] for j in listed} == {"scheduler"}
    by_trigger = next(j for j in listed if j["id"] == triggered.job_id)
    assert by_trigger["fireTime"] is None
    assert all(j["fireTime"].endswith("Z") for j in listed if j["id"] != triggered.job_id)
    mine = (await http.call("GET", f"/tests/{plain}/status")).data
    assert (mine["source"], mine["scheduleId"], mine["fireTime"]) == ("api", None, None)
    assert (await http.call("GET", "/tests?scheduleId=no-such-schedule")).data["jobs"] == []
