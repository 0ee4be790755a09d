"""A 20 MB artifact streamed through a real `sentinel api` process costs it a few MB, not 20.

The API runs as its own process (so its memory is its own) on an S3 store on moto's server. Its
peak resident size is reset (`/proc/<pid>/clear_refs`) after a warm-up read, so VmHWM afterwards
is the peak of the measured read alone; the S3 library's buffers live outside Python's allocator,
which is why the resident size is read rather than tracemalloc.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import redis.asyncio as aioredis

from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared.artifact_store import CHUNK_SIZE
from shared.artifacts import artifact_key
from shared.queue import Queue
from shared.settings import ArtifactSettings, QueueSettings
from tests.artifact_helpers import finished_job, fresh_store
from tests.e2e.conftest import SENTINEL, Service, wait_serving
from tests.moto_s3 import MotoS3
from tests.support import RedisProcess, free_port

MB = 1_000_000
SIZE = 20 * MB
#: Well under the artifact: a reader that held the object would show all 20 MB.
GROWTH_LIMIT = 10 * MB


def status_kib(pid: int, field: str) -> int:
    """A `VmRSS` / `VmHWM` figure of /proc/<pid>/status, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def reset_peak(pid: int) -> None:
    """Make the process's VmHWM its current VmRSS (Linux's clear_refs, value 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


@contextlib.contextmanager
def api_process(tmp_path: Path, redis_url: str, artifacts_env: dict[str, str]) -> Iterator[Service]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "QUEUE_", "SENTINEL_", "OTEL_", "AWS_"))}
    env.update(
        artifacts_env,
        REDIS_URL=redis_url,
        SENTINEL_AUTH="disabled",
        API_GRPC_HOST="127.0.0.1",
        API_GRPC_PORT=str(port),
        API_METRICS_PORT="0",
        API_HTTP_PORT="0",
        PYTHONUNBUFFERED="1",
    )
    log = tmp_path / "api.log"
    with log.open("wb") as out:
        process = subprocess.Popen([SENTINEL, "api"], env=env, stdout=out, stderr=subprocess.STDOUT)
    service = Service(name="api", process=process, port=port, log=log)
    try:
        wait_serving(service)
        yield service
    finally:
        code = service.stop()
    assert code == 0, f"the API did not exit cleanly on SIGTERM ({code}):\n{log.read_text()}"


async def sha256_of(stub: pb_grpc.TestExecutionStub, job_id: str, name: str) -> tuple[str, int]:
    """The digest of the artifact as streamed, and its largest chunk."""
    digest = hashlib.sha256()
    largest = 0
    async for chunk in stub.GetArtifact(pb.GetArtifactRequest(job_id=job_id, name=name), timeout=120):
        digest.update(chunk.data)
        largest = max(largest, len(chunk.data))
    return digest.hexdigest(), largest


@pytest.mark.timeout(300)
async def test_a_20_mb_artifact_streams_through_the_api_in_a_few_mb(
    tmp_path: Path, redis_server: RedisProcess, redis_client: aioredis.Redis, moto_s3: MotoS3
) -> None:
    artifacts_env = moto_s3.env(f"s3://{moto_s3.new_bucket()}/sentinel")
    store = await fresh_store(ArtifactSettings.from_env(artifacts_env))
    job_id = await finished_job(Queue.open(redis_client, QueueSettings()))
    data = os.urandom(SIZE)
    await store.put_bytes(artifact_key(job_id, "1/video.webm"), data, content_type="video/webm")
    # The warm-up reads several chunks, so what any read allocates once is there before measuring.
    await store.put_bytes(artifact_key(job_id, "1/warm.webm"), data[: 3 * CHUNK_SIZE], content_type="video/webm")

    with api_process(tmp_path, redis_server.url, artifacts_env) as api:
        pid = api.process.pid
        async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
            stub = pb_grpc.TestExecutionStub(channel)
            await sha256_of(stub, job_id, "1/warm.webm")
            reset_peak(pid)
            before = status_kib(pid, "VmRSS")
            digest, largest = await sha256_of(stub, job_id, "1/video.webm")
            peak = status_kib(pid, "VmHWM")

    assert digest == hashlib.sha256(data).hexdigest()
    assert largest == CHUNK_SIZE
    growth = peak - before
    assert growth < GROWTH_LIMIT, f"the API grew by {growth / MB:.1f} MB streaming a {SIZE / MB:.0f} MB artifact"
