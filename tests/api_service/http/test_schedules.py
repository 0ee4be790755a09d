"""Schedules over HTTP, read-only: the tenant's list and one schedule with its latest runs, as the
document describes them, notification URLs masked, another tenant's not found."""

from __future__ import annotations

import dataclasses
from typing import Any

from openapi_schema_validator import OAS31Validator

from api_service.http.openapi import document
from shared.model import ErrorCategory, JobError, JobState
from shared.notifications import Notification
from shared.schedules import firing, store
from shared.schedules.model import OverlapPolicy
from tests.api_service.http.conftest import Http
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
