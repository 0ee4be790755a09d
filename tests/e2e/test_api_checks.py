"""API checks through real processes: `sentinel api` + `sentinel executor` run tests of request
steps only against a JSON API this test serves on 127.0.0.1, without opening a browser context."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiohttp import web

from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared.keys import Keys
from tests.e2e.conftest import Stack
from tests.e2e.helpers import request, run_to_end
from tests.support import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

TOKEN = "Bearer e2e-5ecret-t0ken"


@pytest.fixture
async def json_api() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A JSON API on 127.0.0.1 (which the stack's navigation guard allows) and the headers it got."""
    seen: list[dict[str, str]] = []

    async def user(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.json_response({"user": {"name": "ada", "roles": ["admin", "ops"]}})

    async def create(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        if request.headers.get("Authorization") != TOKEN:
            return web.json_response({"error": "unauthorized"}, status=401)
        return web.json_response({"created": await request.json()}, status=201)

    app = web.Application()
    app.router.add_get("/api/user", user)
    app.router.add_post("/api/items", create)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        return str(reply.read().decode())


def counter(text: str, name: str) -> float:
    found = re.search(rf"^{name}_total{{[^}}]*}} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} not in the executor's metrics"
    return float(found.group(1))


async def test_an_api_check_runs_without_a_browser_context(
    stack: Stack,
    api_stub: pb_grpc.TestExecutionStub,
    redis_of: aioredis.Redis,
    json_api: tuple[str, list[dict[str, str]]],
) -> None:
    site, seen = json_api
    metrics = free_port()
    stack.start("executor", EXECUTOR_METRICS_PORT=str(metrics))
    steps = [
        {"name": "user", "request": {"url": "/api/user", "expectJson": [{"path": "$.user.name", "equals": '"ada"'}]}},
        {
            "timeoutMs": 20000,
            "request": {
                "method": "POST",
                "url": "/api/items",
                "headers": {"Authorization": TOKEN, "Content-Type": "application/json"},
                "secretHeaders": ["Authorization"],
                "body": '{"sku": "A-1"}',
                "expectStatus": 201,
                "expectJson": [{"path": "$.created.sku", "equals": '"A-1"'}],
            },
        },
    ]
    passing, events = await run_to_end(api_stub, request(site, steps, name="api check"))

    assert passing.state == pb.JOB_STATE_COMPLETED, passing.result.error
    assert [(s.name, s.success, s.http_status) for s in passing.result.steps] == [
        ("user", True, 200),
        ("POST /api/items", True, 201),
    ]
    assert "HTTP client ready (no browser needed)" in [e.progress.message for e in events]
    assert [h.get("Authorization") for h in seen] == [None, TOKEN]
    # Sealed in Redis, and nowhere in what clients see.
    stored = await redis_of.hgetall(Keys().job(passing.job_id))
    assert stored and not any("e2e-5ecret" in value for value in stored.values())
    assert "e2e-5ecret" not in str(passing) + str(events)

    wrong_role = {"url": "/api/user", "expectJson": [{"path": "$.user.roles[1]", "equals": '"dev"'}]}
    failing, _ = await run_to_end(api_stub, request(site, [{"request": wrong_role}]))
    assert failing.state == pb.JOB_STATE_FAILED
    assert failing.result.error.category == pb.ERROR_CATEGORY_ASSERTION
    assert failing.result.steps[0].error == '$.user.roles[1]: expected "dev", got "ops"'
    assert failing.result.steps[0].http_status == 200
    assert any("ran without a browser" in note for note in failing.result.artifact_notes)

    text = await asyncio.to_thread(scrape, metrics)
    assert counter(text, "sentinel_executor_api_sessions") == 2
    assert counter(text, "sentinel_executor_browser_contexts") == 0
