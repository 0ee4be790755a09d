"""Keys, roles and tenants over HTTP: the same keys file as gRPC, the same answers.

Every route needing more than a viewer refuses a lower role with 403; another tenant's job is a
404 exactly like an unknown one; a key never shows in a log line, an answer or a URL.
"""

from __future__ import annotations

import logging
import re

import pytest

from api_service.http.auth import OPEN_ROUTES, ROUTE_ROLES
from api_service.http.server import ROUTES
from shared.access import Role
from tests.api_service.http.conftest import Http, submit, subscribers
from tests.api_service.http.sse_client import take
from tests.queue_helpers import run_jobs

LOWER = {
    Role.SUBMITTER: ("viewer",),
    Role.ADMIN: ("viewer", "submitter"),
    Role.OPERATOR: ("viewer", "submitter", "admin"),
}
GUARDED = [
    (r.method, r.path, ROUTE_ROLES[r.name]) for r in ROUTES if ROUTE_ROLES.get(r.name, Role.VIEWER) > Role.VIEWER
]


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: "1" if m.group(1) == "attempt" else "x", path)


@pytest.mark.parametrize(("method", "path", "needed"), GUARDED)
async def test_a_role_below_the_routes_is_403(keyed: Http, method: str, path: str, needed: Role) -> None:
    for role in LOWER[needed]:
        reply = await keyed.call(method, concrete(path), who=f"acme-{role}", body={})
        assert reply.status == 403 and reply.code == "PERMISSION_DENIED", (role, reply.body)
        assert needed.label in reply.body["message"] and keyed.keys[f"acme-{role}"] not in str(reply.body)


async def test_every_route_refuses_a_missing_key_with_401(keyed: Http) -> None:
    for route in ROUTES:
        if route.name not in OPEN_ROUTES:
            reply = await keyed.call(route.method, concrete(route.path), data=b"{broken")
            assert reply.status == 401 and reply.code == "UNAUTHENTICATED", route
            assert "Authorization: Bearer" in reply.body["message"] or "unknown" in reply.body["message"]


async def test_another_tenants_job_is_404_exactly_like_an_unknown_id(keyed: Http) -> None:
    job_id = await submit(keyed, who="acme-submitter")
    assert (await keyed.call("GET", f"/tests/{job_id}/status", who="acme-viewer")).status == 200
    for method, path in (
        ("GET", f"/tests/{job_id}/status"),
        ("GET", f"/tests/{job_id}/events"),
        ("GET", f"/tests/{job_id}/artifacts"),
        ("POST", f"/queue/jobs/{job_id}/cancel"),
        ("POST", f"/queue/jobs/{job_id}/retry"),
        ("POST", f"/queue/dead-letters/{job_id}/requeue"),
    ):
        theirs = await keyed.call(method, path, who="globex-admin")
        unknown = await keyed.call(method, path.replace(job_id, "no-such-job"), who="globex-admin")
        assert theirs.status == unknown.status == 404, (path, theirs.body)
        assert theirs.body["message"].replace(job_id, "ID") == unknown.body["message"].replace("no-such-job", "ID")
    assert (await keyed.call("GET", "/tests", who="globex-viewer")).data["jobs"] == []
    assert (await keyed.call("GET", "/queue/stats", who="globex-viewer")).data["waiting"] == 0
    acme = (await keyed.call("GET", "/queue/stats", who="acme-viewer")).data
    assert acme["waiting"] == 1 and acme["tenant"] == "acme"


async def test_queue_events_show_a_tenant_only_its_own_jobs(keyed: Http) -> None:
    async with keyed.session.get(f"{keyed.base}/api/v1/queue/events", headers=keyed.auth("globex-viewer")) as theirs:
        await subscribers(keyed, 1)
        await submit(keyed, who="acme-submitter")
        mine = await submit(keyed, who="globex-submitter")
        [event] = await take(theirs, 1)
    assert event.data["jobId"] == mine and event.data["tenant"] == "globex"


async def test_no_key_in_logs_answers_or_urls(keyed: Http, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    job_id = await submit(keyed, who="acme-submitter")
    await run_jobs(keyed.queue, 1, state=__import__("shared.model").model.JobState.FAILED, dead_letter_reason="out")
    answers = []
    for who in keyed.keys:
        for method, path in (
            ("GET", f"/tests/{job_id}/status"),
            ("POST", "/queue/pause"),
            ("GET", "/queue/dead-letters"),
        ):
            answers.append(str((await keyed.call(method, path, who=who)).body))
    answers.append(str((await keyed.call("GET", "/whoami", headers={"Authorization": "Bearer snt_wrong-key"})).body))
    text = caplog.text + "".join(answers)
    for key in [*keyed.keys.values(), "snt_wrong-key"]:
        assert key not in text
    assert "Traceback" not in caplog.text
