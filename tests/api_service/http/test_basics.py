"""The HTTP API's skeleton: the envelope, auth before anything, whoami, status and its SSE events."""

from __future__ import annotations

import datetime

import pytest

from tests.api_service.http.conftest import Http, submit, subscribers


def is_utc_iso(text: str) -> bool:
    return text.endswith("Z") and datetime.datetime.fromisoformat(text).tzinfo is not None


async def test_whoami_answers_in_the_envelope(http: Http) -> None:
    reply = await http.call("GET", "/whoami")
    assert reply.status == 200
    assert reply.body["success"] is True and reply.body["message"]
    assert is_utc_iso(reply.body["timestamp"])
    assert reply.data == {"tenant": "default", "role": "operator", "authDisabled": True}


async def test_whoami_names_the_keys_tenant_and_role(keyed: Http) -> None:
    assert (await keyed.call("GET", "/whoami", who="acme-viewer")).data == {
        "tenant": "acme",
        "role": "viewer",
        "authDisabled": False,
    }
    assert (await keyed.call("GET", "/whoami", who="globex-admin")).data["role"] == "admin"


async def test_no_key_or_an_unknown_one_is_401_before_anything(keyed: Http) -> None:
    for who, headers in ((None, {}), (None, {"Authorization": "Bearer snt_nope"}), (None, {"Authorization": "x"})):
        reply = await keyed.call("GET", "/whoami", who=who, headers=headers)
        assert reply.status == 401 and reply.code == "UNAUTHENTICATED"
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    # A malformed body is never even read without a key.
    reply = await keyed.call("POST", "/tests/execute", data=b"{not json")
    assert reply.status == 401


async def test_status_of_a_submitted_test(http: Http) -> None:
    job_id = await submit(http, priority="high", tags=["smoke"])
    job = (await http.call("GET", f"/tests/{job_id}/status")).data
    assert job["id"] == job_id and job["status"] == "pending" and job["priority"] == "high"
    assert job["tags"] == ["smoke"] and job["result"] is None and job["error"] is None and job["runId"] is None
    assert is_utc_iso(job["createdAt"]) and job["startedAt"] is None
    reply = await http.call("GET", "/tests/no-such-job/status")
    assert reply.status == 404 and reply.code == "NOT_FOUND"


async def test_events_stream_the_progress_as_sse(http: Http) -> None:
    job_id = await submit(http)
    async with http.session.get(f"{http.base}/api/v1/tests/{job_id}/events") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        assert resp.headers["Cache-Control"] == "no-cache" and resp.headers["X-Accel-Buffering"] == "no"
        lines = [(await resp.content.readline()).decode() for _ in range(5)]
    assert lines[0].startswith(":")
    assert lines[2].startswith("id: ") and lines[3] == "event: progress\n" and '"status":"pending"' in lines[4]


async def test_auth_says_without_a_key_whether_one_is_needed(http: Http, keyed: Http) -> None:
    assert (await http.call("GET", "/auth")).data == {"authDisabled": True}
    signed_out = await keyed.call("GET", "/auth")  # what the dashboard asks before anyone signs in: no 401
    assert signed_out.status == 200 and signed_out.data == {"authDisabled": False}


async def test_every_get_route_answers_head_with_the_headers_alone(http: Http) -> None:
    job_id = await submit(http)
    for path in ("/whoami", f"/tests/{job_id}/status", "/tests?status=pending", "/queue/stats", "/openapi.json"):
        async with http.session.head(f"{http.base}/api/v1{path}") as resp:
            assert resp.status == 200, path
            assert resp.headers["Content-Type"].startswith("application/json") and await resp.read() == b""
    async with http.session.head(f"{http.base}/api/v1/tests/no-such-job/status") as resp:
        assert resp.status == 404
    async with http.session.head(f"{http.base}/api/v1/tests?state=x") as resp:
        assert resp.status == 400
    async with http.session.head(f"{http.base}/") as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/html")
    # An event stream's HEAD: its headers at once, checked as the GET is, and no follower left behind.
    for path in (f"/tests/{job_id}/events", "/queue/events?kind=completed"):
        async with http.session.head(f"{http.base}/api/v1{path}") as resp:
            assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream"), path
            assert await resp.read() == b""
    await subscribers(http, 0)
    async with http.session.head(f"{http.base}/api/v1/tests/no-such-job/events") as resp:
        assert resp.status == 404
    # A method a route does not have is still 405, naming the ones it has.
    reply = await http.call("GET", "/queue/pause")
    assert reply.status == 405 and reply.code == "UNIMPLEMENTED" and reply.headers["Allow"] == "POST"


async def test_a_url_too_long_is_a_414_in_the_envelope_and_one_log_line_past_the_parsers_limit(
    http: Http, caplog: pytest.LogCaptureFixture
) -> None:
    long = await http.call("GET", "/tests?pageToken=" + "a" * 10_000)
    assert (long.status, long.code) == (414, "INVALID_ARGUMENT"), long.body
    assert long.body["message"] == "the URL is over 8192 characters"
    # Past what the HTTP parser reads at all: its own plain 400, and one log line without the URL.
    async with http.session.get(f"{http.base}/api/v1/tests?pageToken=" + "b" * 70_000) as resp:
        assert resp.status == 400
    parser = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert parser and all(r.exc_info is None and "bbbb" not in r.getMessage() for r in parser), parser
