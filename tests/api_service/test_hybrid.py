"""The API in SENTINEL_EXECUTION=hybrid through real gRPC and HTTP servers, a real redis-server and an
executor in-process with Chromium: what a submit answers when the job runs directly, and a direct
job's artifacts served while it is in the API's memory, then from Redis once written back."""

from __future__ import annotations

import asyncio
import errno
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
import redis.asyncio as aioredis

from api_service.server import ApiServer
from executor_service.server import ExecutorServer
from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from sentinel_cli import admin_commands
from sentinel_client import AsyncClient, Client, PartialListingWarning
from shared.direct.backend import PARTIAL_LISTING
from shared.keys import Keys
from shared.settings import (
    ApiSettings,
    ArtifactSettings,
    ExecutionMode,
    ExecutionSettings,
    ExecutorSettings,
    QueueSettings,
    RedisSettings,
)
from tests.support import RedisProcess, chromium_path, free_port, start_redis, wait_for

pytestmark = pytest.mark.timeout(120)

#: A test that leaves evidence: a screenshot, then a failing step (its screenshot and the trace).
FAILING: dict[str, Any] = {
    "name": "fails",
    "steps": [
        {"name": "blank", "screenshot": {"name": "blank"}},
        {"name": "never", "timeoutMs": 1000, "expectTitle": {"text": "never this title"}},
    ],
}


class Hybrid:
    """A hybrid API (gRPC and HTTP, auth disabled) and one executor sharing a file artifact store."""

    def __init__(self, api: ApiServer, stub: pb_grpc.TestExecutionStub, session: aiohttp.ClientSession) -> None:
        self.api = api
        self.stub = stub
        self.session = session
        assert api.http is not None
        self.base = f"http://127.0.0.1:{api.http.port}/api/v1"

    async def execute(self, priority: str) -> tuple[str, str]:
        """POST /tests/execute: the job id and the answer's message."""
        body = {"testDefinition": FAILING, "options": {"priority": priority}}
        async with self.session.post(f"{self.base}/tests/execute", json=body) as resp:
            reply = await resp.json()
            assert resp.status == 202, reply
            return str(reply["data"]["testId"]), str(reply["message"])

    async def http_artifacts(self, job_id: str) -> list[str]:
        async with self.session.get(f"{self.base}/tests/{job_id}/artifacts") as resp:
            reply = await resp.json()
            assert resp.status == 200, reply
            return [a["name"] for a in reply["data"]["artifacts"]]

    async def http_artifact(self, job_id: str, name: str) -> bytes:
        async with self.session.get(f"{self.base}/tests/{job_id}/artifacts/{name}") as resp:
            assert resp.status == 200, await resp.text()
            return await resp.read()

    async def grpc_artifacts(self, job_id: str) -> list[str]:
        listed = await self.stub.ListArtifacts(pb.ListArtifactsRequest(job_id=job_id), timeout=10)
        return [a.name for a in listed.artifacts]

    async def grpc_artifact(self, job_id: str, name: str) -> bytes:
        request = pb.GetArtifactRequest(job_id=job_id, name=name)
        return b"".join([c.data async for c in self.stub.GetArtifact(request, timeout=10)])

    async def finished(self, job_id: str) -> pb.Job:
        async def done() -> pb.Job | None:
            job = await self.stub.Status(pb.StatusRequest(job_id=job_id), timeout=10)
            return job if job.state in (pb.JOB_STATE_COMPLETED, pb.JOB_STATE_FAILED) else None

        return await wait_for(done, within=60, what=f"job {job_id} to finish")


async def start_hybrid(
    servers: AsyncExitStack,
    tmp_path: Path,
    redis: RedisProcess,
    *,
    low_priority_only: bool = False,
    max_jobs: int = 100,
) -> Hybrid:
    store = ArtifactSettings(url=(tmp_path / "artifacts").as_uri())
    # An executor of direct runs only: a queued job stays queued, only direct ones run.
    executor = await ExecutorServer.start(
        redis=RedisSettings(url=f"redis://127.0.0.1:{free_port()}/0", configured=True),
        queue_settings=QueueSettings(concurrency=2),
        executor=ExecutorSettings(
            host="127.0.0.1",
            port=0,
            worker_id="exec-a",
            chromium=chromium_path(),
            spool_dir=str(tmp_path / "spool"),
            artifacts=store,
        ),
        execution=ExecutionSettings(mode=ExecutionMode.DIRECT),
    )
    servers.push_async_callback(executor.stop)
    execution = ExecutionSettings(
        mode=ExecutionMode.HYBRID,
        executors=(f"127.0.0.1:{executor.port}",),
        low_priority_only=low_priority_only,
        max_jobs=max_jobs,
    )
    for attempt in range(5):  # the HTTP port is a free_port() pick another process may take first
        try:
            api = await ApiServer.start(
                redis=RedisSettings(url=redis.url, configured=True),
                queue_settings=QueueSettings(),
                api=ApiSettings(host="127.0.0.1", port=0, http_port=free_port()),
                artifacts=store,
                execution=execution,
            )
            break
        except OSError as exc:
            if (exc.errno or getattr(exc.__cause__, "errno", None)) != errno.EADDRINUSE or attempt == 4:
                raise
    servers.push_async_callback(api.stop, 0)
    channel = await servers.enter_async_context(grpc.aio.insecure_channel(f"127.0.0.1:{api.port}"))
    session = await servers.enter_async_context(aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)))
    return Hybrid(api, pb_grpc.TestExecutionStub(channel), session)


async def test_a_job_run_directly_is_answered_so_and_its_artifacts_are_served_before_and_after_write_back(
    servers: AsyncExitStack, tmp_path: Path, redis_server: RedisProcess, redis_client: aioredis.Redis
) -> None:
    hybrid = await start_hybrid(servers, tmp_path, redis_server, low_priority_only=True, max_jobs=1)
    queued, message = await hybrid.execute("low")
    assert message == "test queued"
    direct, message = await hybrid.execute("high")
    assert message == "test running directly: QUEUE_LOW_PRIORITY_ONLY queues only low-priority tests"

    job = await hybrid.finished(direct)
    assert job.state == pb.JOB_STATE_FAILED and "1/trace.zip" in job.result.artifacts
    expected = sorted(job.result.artifacts)
    stored = (tmp_path / "artifacts" / direct / "1" / "trace.zip").read_bytes()
    assert sorted(await hybrid.grpc_artifacts(direct)) == sorted(await hybrid.http_artifacts(direct)) == expected
    assert await hybrid.grpc_artifact(direct, "1/trace.zip") == stored
    assert await hybrid.http_artifact(direct, "1/trace.zip") == stored

    async def written_back() -> bool:
        return bool(await redis_client.exists(Keys("default").job(direct)))

    await wait_for(written_back, within=20, what="the direct job to be written into Redis")
    # A next direct job evicts it from the API's memory (at most one held): it is Redis's now, and
    # found there with its artifacts, which its eviction left in place.
    later, _ = await hybrid.execute("high")
    await hybrid.finished(later)
    assert hybrid.api.direct is not None and hybrid.api.direct.table.find(direct, tenant=None) is None
    assert sorted(await hybrid.grpc_artifacts(direct)) == sorted(await hybrid.http_artifacts(direct)) == expected
    assert await hybrid.grpc_artifact(direct, "1/trace.zip") == stored
    assert (await hybrid.stub.Status(pb.StatusRequest(job_id=queued), timeout=10)).state == pb.JOB_STATE_PENDING


async def test_a_job_run_directly_because_redis_is_down_says_so_and_serves_its_artifacts_from_memory(
    servers: AsyncExitStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "redis").mkdir()
    redis = start_redis(tmp_path / "redis")
    try:
        hybrid = await start_hybrid(servers, tmp_path, redis)
        _, message = await hybrid.execute("high")
        assert message == "test queued"
    finally:
        redis.stop(kill=True)
    direct, message = await hybrid.execute("high")
    assert message == "test running directly: the queue is unreachable"
    job = await hybrid.finished(direct)
    assert job.state == pb.JOB_STATE_FAILED and job.result.artifacts
    assert sorted(await hybrid.grpc_artifacts(direct)) == sorted(await hybrid.http_artifacts(direct))
    assert sorted(await hybrid.grpc_artifacts(direct)) == sorted(job.result.artifacts)
    stored = (tmp_path / "artifacts" / direct / "1" / "trace.zip").read_bytes()
    assert await hybrid.grpc_artifact(direct, "1/trace.zip") == stored

    # Listing while Redis is away: the jobs in memory, and every front door says that is all it is.
    listed = await hybrid.stub.ListJobs(pb.ListJobsRequest(), timeout=30)
    assert [j.job_id for j in listed.jobs] == [direct] and listed.partial == PARTIAL_LISTING
    async with hybrid.session.get(f"{hybrid.base}/tests") as resp:
        page = (await resp.json())["data"]
    assert [j["id"] for j in page["jobs"]] == [direct] and page["partial"] == PARTIAL_LISTING
    async with AsyncClient(f"127.0.0.1:{hybrid.api.port}") as client:
        assert (await client.list_jobs()).partial == PARTIAL_LISTING
        with pytest.warns(PartialListingWarning) as warned:
            assert [job.id async for job in client.jobs()] == [direct]
        assert [str(w.message) for w in warned] == [PARTIAL_LISTING]  # once, at the caller's loop
        assert warned[0].filename == __file__

    def iterate_sync() -> list[str]:
        with Client(f"127.0.0.1:{hybrid.api.port}") as client, pytest.warns(PartialListingWarning, match="Redis"):
            return [job.id for job in client.jobs()]

    assert await asyncio.to_thread(iterate_sync) == [direct]
    assert (
        await admin_commands.list_jobs(f"127.0.0.1:{hybrid.api.port}", state=None, tag="", limit=10, page_token="") == 0
    )
    shown = capsys.readouterr()
    assert direct in shown.out and shown.err == f"sentinel: note: {PARTIAL_LISTING}\n"
