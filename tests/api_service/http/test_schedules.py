"""Schedules over HTTP: the tenant's list and one schedule with its latest runs, as the document
describes them, notification URLs masked, another tenant's not found; and created, changed, paused,
resumed, triggered and deleted, with every bad field named as the body spells it."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from openapi_schema_validator import OAS31Validator

from api_service.http.context import BACKEND
from api_service.http.openapi import document
from shared.model import ErrorCategory, JobError, JobState
from shared.notifications import Notification
from shared.schedules import firing, store
from shared.schedules.model import OverlapPolicy
from tests.api_service.http.conftest import Http, definition
from tests.queue_helpers import run_jobs
from tests.shared.schedules.helpers import spec

HOOK = "https://hooks.example.test/services/T000/B000/XXXXXXXXXXXXq3z"


def answers_as_documented(path: str, body: Any) -> None:
    schema = document()["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    OAS31Validator({**schema, "components": document()["components"]}).validate(body)


async def test_schedules_are_listed_and_shown_with_their_runs_as_documented(http: Http) -> None:
    wanted = spec(overlap=OverlapPolicy.ALLOW)
    notify = (Notification(HOOK, after_failures=2, format="text"),)
    made = await store.create_schedule(
        http.queue, dataclasses.replace(wanted, notifications=notify), tenant="default", sealer=None
    )
    await firing.fire_due(http.queue, made.schedule_id, now=made.anchor_ms + 1000)
    error = JobError(category=ErrorCategory.ASSERTION, message="expected status 200, got 503")
    await run_jobs(http.queue, 1, state=JobState.FAILED, error=error)

    listed = await http.call("GET", "/schedules")
    assert listed.status == 200, listed.body
    answers_as_documented("/schedules", listed.body)
    [row] = listed.data["schedules"]
    assert (row["id"], row["intervalMs"], row["cron"], row["overlap"]) == (made.schedule_id, 1000, None, "allow")

    shown = await http.call("GET", f"/schedules/{made.schedule_id}")
    assert shown.status == 200, shown.body
    answers_as_documented("/schedules/{id}", shown.body)
    [notification] = shown.data["notifications"]
    assert notification == {
        "url": "https://hooks.example.test/services/…Xq3z",  # write-only: masked
        "events": ["failed", "recovered"],
        "secretSet": False,
        "afterFailures": 2,
        "format": "text",
    }
    [run] = shown.data["recentRuns"]
    assert (run["status"], run["error"], run["testRemoved"], run["skipped"]) == (
        "failed",
        "expected status 200, got 503",
        False,
        False,
    )
    assert run["testId"] and run["fireTime"].endswith("Z")

    missing = await http.call("GET", "/schedules/no-such-schedule")
    assert (missing.status, missing.code) == (404, "NOT_FOUND")
    bad = await http.call("GET", "/schedules?pageSize=x")
    assert bad.status == 400


# --- creating and changing schedules over HTTP ------------------------------------------------------


def documented(method: str, path: str, status: int, body: Any) -> None:
    """`body` fits what the document says `method path` answers with `status`."""
    answers = document()["paths"][path][method]["responses"][str(status)]
    schema = answers["content"]["application/json"]["schema"]
    OAS31Validator({**schema, "components": document()["components"]}).validate(body)


def schedule_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Health API",
        "intervalMs": 60_000,
        "test": {"testDefinition": definition("health"), "options": {"tags": ["prod"], "timeout": 30_000}},
    }
    return body | fields


async def test_a_schedule_is_created_changed_paused_triggered_and_deleted_over_http(keyed: Http) -> None:
    body = schedule_body(notifications=[{"url": HOOK, "secret": "s3cret-signing", "afterFailures": 2}])
    made = await keyed.call("POST", "/schedules", who="acme-submitter", body=body)
    assert made.status == 201, made.body
    documented("post", "/schedules", 201, made.body)
    sid = made.data["id"]
    assert made.headers["Location"] == f"/api/v1/schedules/{sid}"
    assert (made.data["name"], made.data["intervalMs"], made.data["testName"], made.data["tags"]) == (
        "Health API",
        60_000,
        "health",
        ["prod"],
    )
    [shown] = made.data["notifications"]
    assert shown["url"] != HOOK and shown["url"].endswith("Xq3z") and shown["secretSet"] is True
    assert "s3cret-signing" not in json.dumps(made.body)
    stored = await store.get_schedule(keyed.queue, sid, tenant="acme")
    assert stored.spec.template.options.timeout_ms == 30_000
    assert stored.spec.template.definition.name == "health"

    # Another tenant's key finds nothing; a viewer may not change anything.
    for method, path in (
        ("PATCH", f"/schedules/{sid}"),
        ("DELETE", f"/schedules/{sid}"),
        ("POST", f"/schedules/{sid}/trigger"),
    ):
        other = await keyed.call(
            method, path, who="globex-submitter", body={"name": "x"} if method == "PATCH" else None
        )
        assert (other.status, other.code) == (404, "NOT_FOUND"), (method, path, other.body)
    viewer = await keyed.call("POST", "/schedules", who="acme-viewer", body=body)
    assert (viewer.status, viewer.code) == (403, "PERMISSION_DENIED")

    # A PATCH changes what it names; the notification sent back as GET showed it keeps URL and secret.
    patch = {"cron": "*/5 * * * *", "name": "Health API (prod)", "notifications": made.data["notifications"]}
    changed = await keyed.call("PATCH", f"/schedules/{sid}", who="acme-submitter", body=patch)
    assert changed.status == 200, changed.body
    documented("patch", "/schedules/{id}", 200, changed.body)
    assert (changed.data["cron"], changed.data["intervalMs"], changed.data["name"]) == (
        "*/5 * * * *",
        None,
        "Health API (prod)",
    )
    assert changed.data["testName"] == "health" and changed.data["tags"] == ["prod"]  # the test was not named
    after = await store.get_schedule(keyed.queue, sid, tenant="acme")
    sealer = keyed.server.http.runner.app[BACKEND].sealer if keyed.server.http else None
    assert sealer is not None
    opened = [sealer.open(n.url, field="url") for n in (stored.spec.notifications[0], after.spec.notifications[0])]
    assert opened == [HOOK, HOOK]
    assert sealer.open(after.spec.notifications[0].secret, field="secret") == "s3cret-signing"
    assert after.spec.notifications[0].after_failures == 2

    # null sets a field back to its default.
    cleared = await keyed.call(
        "PATCH", f"/schedules/{sid}", who="acme-submitter", body={"notifications": None, "timezone": None}
    )
    assert cleared.status == 200, cleared.body
    assert (cleared.data["notifications"], cleared.data["timezone"]) == ([], "UTC")

    paused = await keyed.call("POST", f"/schedules/{sid}/pause", who="acme-submitter", body={"note": "deploy"})
    assert paused.status == 200, paused.body
    documented("post", "/schedules/{id}/pause", 200, paused.body)
    assert (paused.data["paused"], paused.data["note"]) == (True, "deploy")
    resumed = await keyed.call("POST", f"/schedules/{sid}/resume", who="acme-submitter")  # no body: no note
    assert (resumed.status, resumed.data["paused"], resumed.data["note"]) == (200, False, "")

    triggered = await keyed.call("POST", f"/schedules/{sid}/trigger", who="acme-submitter")
    assert triggered.status == 202, triggered.body
    documented("post", "/schedules/{id}/trigger", 202, triggered.body)
    listed = await keyed.call("GET", f"/tests?scheduleId={sid}", who="acme-viewer")
    assert [j["id"] for j in listed.data["jobs"]] == [triggered.data["id"]]

    deleted = await keyed.call("DELETE", f"/schedules/{sid}", who="acme-submitter")
    assert deleted.status == 200, deleted.body
    documented("delete", "/schedules/{id}", 200, deleted.body)
    gone = await keyed.call("GET", f"/schedules/{sid}", who="acme-viewer")
    assert (gone.status, gone.code) == (404, "NOT_FOUND")
    again = await keyed.call("DELETE", f"/schedules/{sid}", who="acme-submitter")
    assert again.status == 404
    still = await keyed.call("GET", f"/tests/{triggered.data['id']}/status", who="acme-viewer")
    assert still.status == 200  # the tests it ran stay


async def test_a_bad_schedule_names_every_field_as_the_body_spells_it(http: Http) -> None:
    test = {"testDefinition": {"name": "t", "steps": [{"click": {"selector": ""}}]}, "options": {"timeout": 10**9}}
    body = {
        "name": " ",
        "intervalMs": 10,
        "jitterMs": "soon",
        "overlap": "sometimes",
        "id": "mine",
        "colour": "red",
        "notifications": [{"url": "http://127.0.0.1:9/hook", "afterFailures": 500, "events": ["exploded"]}],
        "test": test,
    }
    shape = await http.call("POST", "/schedules", body=body)
    assert (shape.status, shape.code) == (400, "INVALID_ARGUMENT"), shape.body
    fields = {v["field"] for v in shape.body["error"]["violations"]}
    assert fields == {"id", "colour", "jitterMs", "overlap"}, shape.body

    del body["id"], body["colour"], body["jitterMs"], body["overlap"]
    rules_broken = await http.call("POST", "/schedules", body=body)
    assert rules_broken.status == 400, rules_broken.body
    fields = {v["field"] for v in rules_broken.body["error"]["violations"]}
    assert {"name", "intervalMs", "test.testDefinition.steps[0].click.selector", "test.options.timeout"} <= fields
    assert {"notifications[0].afterFailures", "notifications[0].events"} <= fields, fields
    # A sound notification's target is checked by the webhook policy (loopback is not public).
    loopback = schedule_body(notifications=[{"url": "http://127.0.0.1:9/hook"}])
    refused = await http.call("POST", "/schedules", body=loopback)
    assert [v["field"] for v in refused.body["error"]["violations"]] == ["notifications[0].url"], refused.body

    missing = await http.call("POST", "/schedules", body={"name": "n", "intervalMs": 60_000})
    assert [v["field"] for v in missing.body["error"]["violations"]] == ["test"]
    bad_test = await http.call("POST", "/schedules", body=schedule_body(test={"testDefinition": {"steps": "x"}}))
    assert bad_test.body["error"]["violations"][0]["field"].startswith("test.testDefinition"), bad_test.body

    made = await http.call("POST", "/schedules", body=schedule_body())
    sid = made.data["id"]
    empty = await http.call("PATCH", f"/schedules/{sid}", body={})
    assert [v["field"] for v in empty.body["error"]["violations"]] == ["body"]
    unset = await http.call("PATCH", f"/schedules/{sid}", body={"test": None, "name": None})
    assert unset.body["error"]["violations"] == [
        {"field": "name", "description": "has no default to set back to: give a value"},
        {"field": "test", "description": "has no default to set back to: give a value"},
    ], unset.body
    both = await http.call("PATCH", f"/schedules/{sid}", body={"cron": "*/5 * * * *", "intervalMs": 60_000})
    assert both.status == 400 and both.body["error"]["violations"][0]["field"] == "cron", both.body
    unknown = await http.call("PATCH", "/schedules/no-such-schedule", body={"name": "x"})
    assert (unknown.status, unknown.code) == (404, "NOT_FOUND")
    noted = await http.call("POST", f"/schedules/{sid}/pause", body={"why": "x"})
    assert [v["field"] for v in noted.body["error"]["violations"]] == ["why"]


async def test_a_schedule_name_with_a_control_character_is_refused(http: Http) -> None:
    refused = await http.call("POST", "/schedules", body=schedule_body(name="nightly\u202egnp.exe"))
    assert refused.status == 400, refused.body
    assert refused.body["error"]["violations"] == [
        {"field": "name", "description": "must not hold control characters (U+202E at character 8)"}
    ]
