"""The figure KEDA scales executors on, read the way the ScaledObject says, from a real API.

A real API (grpc.aio server and its /metrics endpoint) on a real redis-server, with jobs waiting in a
lane and in a tenant's fair-share backlog, delayed jobs that are due and one that is not, and
running jobs. The trigger's URL path and `valueLocation` come from the rendered ScaledObject and
are evaluated as KEDA's metrics-api scaler does for the prometheus format: a metric selector
(name and label matchers) against the text exposition.
"""

from __future__ import annotations

import asyncio
import re
import urllib.request
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from api_service.server import ApiServer
from executor_service.store import claim
from shared.queue import Queue
from shared.settings import ApiSettings, QueueSettings, RedisSettings
from shared.stats import due_delayed
from tests.deploy.manifests import example
from tests.queue_helpers import run_jobs, submit_jobs
from tests.support import RedisProcess, free_port, wait_for

SETTINGS = QueueSettings(tenant_window=10)


def evaluate(selector: str, exposition: str) -> float:
    """KEDA metrics-api, format prometheus: the sample of the selector's metric whose labels match."""
    match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?", selector)
    assert match, f"not a metric selector: {selector}"
    name, matchers = match.group(1), dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in matchers.items()):
                return float(sample.value)
    raise AssertionError(f"{selector} not found in the exposition")


@pytest.fixture
async def api(redis_server: RedisProcess) -> AsyncIterator[ApiServer]:
    server = await ApiServer.start(
        redis=RedisSettings(url=redis_server.url, configured=True),
        queue_settings=SETTINGS,
        api=ApiSettings(host="127.0.0.1", port=0, http_port=0, metrics_port=free_port()),
    )
    try:
        yield server
    finally:
        await server.stop(0)


async def test_the_scaled_objects_figure_counts_every_job_that_needs_an_executor(
    api: ApiServer, redis_client: aioredis.Redis
) -> None:
    trigger = example().one("ScaledObject", "sentinel-executor")["spec"]["triggers"][0]["metadata"]
    assert api.metrics is not None
    url = f"http://127.0.0.1:{api.metrics.port}{urlsplit(trigger['url']).path}"

    async def scrape() -> tuple[float, str]:
        def get() -> str:
            with urllib.request.urlopen(url, timeout=10) as reply:  # no API key: KEDA sends none
                return str(reply.read().decode())

        text = await asyncio.to_thread(get)
        return evaluate(trigger["valueLocation"], text), text

    queue = Queue.open(redis_client, SETTINGS)
    ids = await submit_jobs(queue, 15, tenant="acme")  # 10 enter the lane, 5 wait in acme's backlog
    ids += await submit_jobs(queue, 2, tenant="acme", delay_ms=1)  # due at once, promoted by no one yet
    ids += await submit_jobs(queue, 1, tenant="acme", delay_ms=3_600_000)  # not due for an hour

    async def two_due() -> bool:
        return await due_delayed(queue) == 2

    await wait_for(two_due, what="the short delays to come due")
    figure, text = await scrape()
    assert figure == 15 + 2, "waiting in the lane and the backlog, and the due delayed jobs"
    assert evaluate('sentinel_queue_due_jobs{queue="default"}', text) == 2
    # What a stream-based trigger would see: the lane's undelivered entries, not the backlog, not the due jobs.
    lanes = [await redis_client.xlen(lane) for lane in queue.keys.lanes]
    assert sum(lanes) == 10 < figure
    # Queue-wide counts only: no tenant, no job.
    assert "acme" not in text and not any(job_id in text for job_id in ids)

    running = await claim(queue, consumer="w1", worker_id="w1", count=3)
    assert len(running.claims) == 3
    figure, _ = await scrape()
    assert figure == 12 + 3 + 2, "running jobs still need their executors"

    finished: list[str] = []
    for _ in range(5):  # the rest of the lane and the backlog behind it, a batch at a time
        finished += await run_jobs(queue, 12 - len(finished), worker="w2")
        if len(finished) == 12:
            break
    assert len(finished) == 12
    figure, _ = await scrape()
    assert figure == 3 + 2, "nothing waits; three still run and two are due"
