"""Alert rules and deliveries over HTTP, against a real ApiServer (its alerts consumer running) on a
real redis-server: a rule made with a submitter's key (URL masked, secret never echoed, Location to
read it), its delivery listed with the receiver's answer once a tagged test fails, filters, another
tenant's rule not found, a viewer refused, and bad fields named as the body spells them."""

from __future__ import annotations

import json
from typing import Any

from openapi_schema_validator import OAS31Validator

from api_service.http.openapi import document
from shared.model import ErrorCategory, JobError, JobState
from tests.api_service.http.conftest import Http, submit
from tests.queue_helpers import run_jobs
from tests.support import wait_for

#: A receiver that does not resolve here: the delivery is made, tried, and records why it failed.
HOOK = "https://hooks.example.test/services/T000/B000/XXXXXXXXXXXXq3z"


def documented(method: str, path: str, status: int, body: Any) -> None:
    schema = document()["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["schema"]
    OAS31Validator({**schema, "components": document()["components"]}).validate(body)


async def test_a_rule_is_made_listed_and_deleted_and_its_deliveries_are_shown(keyed: Http) -> None:
    body = {"tag": "checkout", "notifications": [{"url": HOOK, "secret": "s3cret-signing", "format": "text"}]}
    made = await keyed.call("POST", "/alerts/rules", who="acme-submitter", body=body)
    assert made.status == 201, made.body
    documented("post", "/alerts/rules", 201, made.body)
    rule_id = made.data["id"]
    assert made.headers["Location"] == f"/api/v1/alerts/rules/{rule_id}"
    [shown] = made.data["notifications"]
    assert (shown["url"], shown["secretSet"], shown["format"]) == (
        "https://hooks.example.test/services/…Xq3z",
        True,
        "text",
    )
    assert "s3cret-signing" not in json.dumps(made.body)

    read = await keyed.call("GET", f"/alerts/rules/{rule_id}", who="acme-viewer")
    assert read.status == 200 and read.data == made.data, read.body
    listed = await keyed.call("GET", "/alerts/rules", who="acme-viewer")
    documented("get", "/alerts/rules", 200, listed.body)
    assert [r["id"] for r in listed.data["rules"]] == [rule_id]
    assert (await keyed.call("GET", f"/alerts/rules/{rule_id}", who="globex-viewer")).status == 404
    assert (await keyed.call("GET", "/alerts/rules", who="globex-viewer")).data["rules"] == []
    viewer = await keyed.call("POST", "/alerts/rules", who="acme-viewer", body=body)
    assert (viewer.status, viewer.code) == (403, "PERMISSION_DENIED")

    # A tagged test fails: the API's alerts consumer makes a delivery, tries it, and records why it failed.
    job_id = await submit(keyed, who="acme-submitter", tags=["checkout"])
    error = JobError(category=ErrorCategory.ASSERTION, message="expected status 200, got 503")
    assert await run_jobs(keyed.queue, 1, state=JobState.FAILED, error=error) == [job_id]

    async def tried() -> Any:
        page = await keyed.call("GET", f"/alerts/deliveries?ruleId={rule_id}", who="acme-viewer")
        found = page.data["deliveries"]
        return page if found and found[0]["error"] else None  # tried, and the answer recorded

    page = await wait_for(tried, within=30, what="the delivery to be tried")
    documented("get", "/alerts/deliveries", 200, page.body)
    [delivery] = page.data["deliveries"]
    assert (delivery["event"], delivery["testId"], delivery["ruleId"], delivery["scheduleId"]) == (
        "failed",
        job_id,
        rule_id,
        None,
    )
    assert delivery["url"] == shown["url"] and delivery["error"], delivery  # masked; why it failed
    assert json.loads(delivery["body"])["text"].startswith(":red_circle:")
    by_test = await keyed.call("GET", f"/alerts/deliveries?testId={job_id}", who="acme-viewer")
    assert [d["id"] for d in by_test.data["deliveries"]] == [delivery["id"]]
    other = await keyed.call("GET", f"/alerts/deliveries?testId={job_id}", who="globex-viewer")
    assert other.data["deliveries"] == []
    unknown = await keyed.call("GET", "/alerts/deliveries?job=1", who="acme-viewer")
    assert unknown.status == 400 and unknown.body["error"]["violations"][0]["field"] == "job"

    assert (await keyed.call("DELETE", f"/alerts/rules/{rule_id}", who="globex-submitter")).status == 404
    deleted = await keyed.call("DELETE", f"/alerts/rules/{rule_id}", who="acme-submitter")
    assert deleted.status == 200, deleted.body
    documented("delete", "/alerts/rules/{id}", 200, deleted.body)
    assert (await keyed.call("GET", f"/alerts/rules/{rule_id}", who="acme-viewer")).status == 404


async def test_a_bad_rule_names_each_field_as_the_body_spells_it(http: Http) -> None:
    shape = await http.call("POST", "/alerts/rules", body={"tags": ["x"], "tag": 3})
    assert shape.status == 400, shape.body
    assert {v["field"] for v in shape.body["error"]["violations"]} == {"tags", "tag", "notifications"}

    rule = {"tag": "no spaces allowed", "notifications": [{"url": "ftp://x", "afterFailures": 0.5}]}
    bad = await http.call("POST", "/alerts/rules", body=rule)
    assert bad.status == 400, bad.body
    assert {v["field"] for v in bad.body["error"]["violations"]} == {"notifications[0].afterFailures"}
    rule["notifications"] = [{"url": "ftp://x"}]
    refused = await http.call("POST", "/alerts/rules", body=rule)
    fields = {v["field"] for v in refused.body["error"]["violations"]}
    assert fields == {"tag", "notifications[0].url"}, refused.body
    loopback = await http.call(
        "POST", "/alerts/rules", body={"tag": "t", "notifications": [{"url": "http://127.0.0.1:9/"}]}
    )
    assert [v["field"] for v in loopback.body["error"]["violations"]] == ["notifications[0].url"], loopback.body
    missing = await http.call("DELETE", "/alerts/rules/no-such-rule")
    assert (missing.status, missing.code) == (404, "NOT_FOUND")
