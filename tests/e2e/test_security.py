"""Security through real processes: the executor's navigation guard, and a secret typed for real."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from tests.e2e.conftest import PAGES, Stack
from tests.e2e.helpers import request, run_to_end
from tests.support import serve_directory, stored_text

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


async def test_a_page_cannot_reach_a_server_the_guard_denies(stack: Stack, api_stub: pb_grpc.TestExecutionStub) -> None:
    site_port = stack.site.rsplit(":", 1)[1]
    stack.start("executor", SENTINEL_NAVIGATION_ALLOW=f"127.0.0.1:{site_port}")
    denied_seen: list[str] = []
    with serve_directory(PAGES, seen=denied_seen) as denied:
        steps: list[Any] = [
            {"navigate": {"url": "/index.html"}},
            {"expectTitle": {"text": "E2E Home"}},
            {"navigate": {"url": f"{denied}/index.html"}},
        ]
        job, _ = await run_to_end(api_stub, request(stack.site, steps, maxAttempts=3))

    assert job.state == pb.JOB_STATE_FAILED
    assert job.error.category == pb.ERROR_CATEGORY_POLICY and job.error.step_index == 2
    assert "navigation guard refused" in job.result.steps[2].error
    assert job.attempt == 1  # a policy refusal is never retried, whatever the job asks
    assert denied_seen == []  # the refused request never left the browser
    assert "/index.html" in stack.seen  # the allowed site was reached


async def test_a_secret_is_typed_but_never_stored(
    stack: Stack, api_stub: pb_grpc.TestExecutionStub, redis_of: aioredis.Redis
) -> None:
    stack.start("executor")
    secret = "hunter2-correct-horse"
    steps: list[Any] = [
        {"navigate": {"url": "/index.html"}},
        {"fill": {"selector": "#name", "value": secret, "secret": True}},
        {"click": {"selector": "#greet"}},
        {"expectText": {"selector": "#out", "text": "Hi, hunter2"}},
    ]
    job, events = await run_to_end(api_stub, request(stack.site, steps))

    assert job.state == pb.JOB_STATE_COMPLETED, job.result  # the executor opened and typed it
    assert secret not in str(job) and secret not in "".join(str(e) for e in events)
    everything = await stored_text(redis_of)
    assert everything and secret not in everything
    assert secret not in stack.logs()
