"""ListArtifacts and GetArtifact through a real grpc.aio API server, on both store backends.

Jobs are finished as an executor would finish them, and their artifacts put straight into the
store the API was started with (a directory, or a bucket on moto's S3 server).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import redis.asyncio as aioredis
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from api_service.server import ApiServer
from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from sentinel_client import AsyncClient, RetryPolicy, UnavailableError
from shared.access import KeyEntry, Role, hash_key, new_key
from shared.artifact_store import CHUNK_SIZE, ArtifactStore
from shared.artifacts import artifact_key
from shared.model import JobState, StepResult
from shared.queue import Queue
from shared.settings import ArtifactSettings, QueueSettings, SecuritySettings
from tests.artifact_helpers import BACKENDS, finished_job, fresh_store, put_all, settings_for, start_api
from tests.queue_helpers import run_jobs
from tests.support import RedisProcess, free_port

Code = grpc.StatusCode
PNG = b"\x89PNG\r\n\x1a\n" + b"shot" * 100


@dataclass
class Api:
    server: ApiServer
    stub: pb_grpc.TestExecutionStub
    admin: pb_grpc.QueueAdminStub
    queue: Queue
    store: ArtifactStore


@pytest.fixture(params=BACKENDS)
def artifact_settings(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactSettings:
    return settings_for(request, tmp_path)


@pytest.fixture
async def api(
    redis_server: RedisProcess, redis_client: aioredis.Redis, artifact_settings: ArtifactSettings
) -> AsyncIterator[Api]:
    server = await start_api(redis_server, artifact_settings)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield Api(
                server=server,
                stub=pb_grpc.TestExecutionStub(channel),
                admin=pb_grpc.QueueAdminStub(channel),
                queue=Queue.open(redis_client, QueueSettings()),
                store=await fresh_store(artifact_settings),
            )
    finally:
        await server.stop(0)


async def download(
    stub: pb_grpc.TestExecutionStub, job_id: str, name: str, *, metadata: tuple[tuple[str, str], ...] = ()
) -> list[pb.ArtifactChunk]:
    request = pb.GetArtifactRequest(job_id=job_id, name=name)
    return [chunk async for chunk in stub.GetArtifact(request, metadata=metadata or None)]


async def failure_of(call: object) -> grpc.aio.AioRpcError:
    """The error of a unary call (an awaitable) or a stream (an async iterable)."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        if hasattr(call, "__aiter__"):
            async for _ in call:
                pass
        else:
            await call  # type: ignore[misc]
    return info.value


def violated_fields(err: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(err)
    assert status is not None
    fields = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        assert detail.Unpack(bad)
        fields += [v.field for v in bad.field_violations]
    return fields


async def test_list_and_get_every_artifact_with_its_metadata(api: Api) -> None:
    steps = (
        StepResult(index=0, name="open", success=True, artifacts=("1/home.png",)),
        StepResult(index=1, name="buy", success=False, error="boom", artifacts=("1/step-01-failure.png",)),
    )
    job_id = await finished_job(
        api.queue, steps=steps, artifacts=("1/home.png", "1/step-01-failure.png", "1/trace.zip")
    )
    files = {
        "1/home.png": PNG,
        "1/step-01-failure.png": PNG * 2,
        "1/trace.zip": b"PK\x03\x04 trace",
        "1/network.json": json.dumps({"requests": []}).encode(),
        "2/step-03-failure.png": PNG * 3,  # an attempt the last result does not describe
        "2/video.webm": b"\x1a\x45\xdf\xa3 video",
        "10/final.png": PNG,  # attempts sort as numbers
    }
    before = time.time()
    await put_all(api.store, job_id, files)
    after = time.time()
    # Not artifacts: not <attempt>/<file> below the job.
    await api.store.put_bytes(f"{job_id}/notes.txt", b"x", content_type="text/plain")
    await api.store.put_bytes(f"{job_id}/x/y.png", b"x", content_type="image/png")
    await api.store.put_bytes(f"{job_id}/1/deeper/z.png", b"x", content_type="image/png")

    reply = await api.stub.ListArtifacts(pb.ListArtifactsRequest(job_id=job_id))
    listed = [(a.name, a.content_type, a.size_bytes, a.attempt, a.step_index) for a in reply.artifacts]
    assert listed == [
        ("1/home.png", "image/png", len(PNG), 1, 0),
        ("1/network.json", "application/json", len(files["1/network.json"]), 1, -1),
        ("1/step-01-failure.png", "image/png", 2 * len(PNG), 1, 1),
        ("1/trace.zip", "application/zip", len(files["1/trace.zip"]), 1, -1),
        ("2/step-03-failure.png", "image/png", 3 * len(PNG), 2, 3),
        ("2/video.webm", "video/webm", len(files["2/video.webm"]), 2, -1),
        ("10/final.png", "image/png", len(PNG), 10, -1),
    ]
    for artifact in reply.artifacts:
        # S3 keeps whole seconds; both clocks are this machine's.
        assert before - 2 <= artifact.created_at.ToMilliseconds() / 1000 <= after + 2

    types = {a.name: a.content_type for a in reply.artifacts}
    for name, data in files.items():
        chunks = await download(api.stub, job_id, name)
        assert b"".join(c.data for c in chunks) == data
        assert (chunks[0].content_type, chunks[0].size_bytes) == (types[name], len(data))


async def test_a_multi_mib_artifact_streams_in_chunks_of_at_most_1_mib(api: Api) -> None:
    job_id = await finished_job(api.queue)
    data = os.urandom(2 * CHUNK_SIZE + 12345)
    await api.store.put_bytes(artifact_key(job_id, "1/video.webm"), data, content_type="video/webm")
    chunks = await download(api.stub, job_id, "1/video.webm")
    assert [len(c.data) for c in chunks] == [CHUNK_SIZE, CHUNK_SIZE, 12345]
    assert b"".join(c.data for c in chunks) == data
    assert (chunks[0].content_type, chunks[0].size_bytes) == ("video/webm", len(data))
    assert all((c.content_type, c.size_bytes) == ("", 0) for c in chunks[1:])


async def test_an_empty_artifact_is_one_chunk_with_the_metadata(api: Api) -> None:
    job_id = await finished_job(api.queue)
    await api.store.put_bytes(artifact_key(job_id, "1/empty.json"), b"", content_type="application/json")
    [chunk] = await download(api.stub, job_id, "1/empty.json")
    assert (chunk.data, chunk.content_type, chunk.size_bytes) == (b"", "application/json", 0)


async def test_a_job_without_artifacts_lists_none(api: Api) -> None:
    job_id = await finished_job(api.queue)
    assert list((await api.stub.ListArtifacts(pb.ListArtifactsRequest(job_id=job_id))).artifacts) == []


async def test_a_rerun_starts_its_attempts_over_and_its_artifacts_and_runs_count_on(api: Api) -> None:
    job_id = await finished_job(api.queue, artifacts=("1/trace.zip",))
    await put_all(api.store, job_id, {"1/trace.zip": b"PK first run"})
    first = await api.stub.Status(pb.StatusRequest(job_id=job_id))
    assert (first.attempt, first.runs) == (1, 1)

    waiting = await api.stub.Retry(pb.RetryRequest(job_id=job_id))
    assert (waiting.attempt, waiting.runs) == (0, 1), "no attempt yet; one run so far"
    assert await run_jobs(api.queue, 1, state=JobState.FAILED) == [job_id]  # the rerun: its second run
    await put_all(api.store, job_id, {"2/trace.zip": b"PK second run"})  # named as the executor names it

    again = await api.stub.Status(pb.StatusRequest(job_id=job_id))
    assert (again.state, again.attempt, again.runs) == (pb.JOB_STATE_FAILED, 1, 2)
    listed = (await api.stub.ListArtifacts(pb.ListArtifactsRequest(job_id=job_id))).artifacts
    assert [(a.name, a.attempt) for a in listed] == [("1/trace.zip", 1), ("2/trace.zip", 2)]
    assert max(a.attempt for a in listed) == again.runs, "the newest files are under the job's latest run"


async def test_unknown_jobs_and_names_are_not_found_and_bad_names_invalid(api: Api) -> None:
    job_id = await finished_job(api.queue)
    other = await finished_job(api.queue)
    await put_all(api.store, other, {"1/secret.png": PNG})
    unknown = "6f1c1f55-9c4e-4f57-9a43-1f2b9c0d7e11"
    await put_all(api.store, unknown, {"1/stray.png": PNG})  # in the store, but no such job

    for missing in (unknown, "", "not-a-job"):
        err = await failure_of(api.stub.ListArtifacts(pb.ListArtifactsRequest(job_id=missing)))
        assert err.code() is Code.NOT_FOUND
        err = await failure_of(api.stub.GetArtifact(pb.GetArtifactRequest(job_id=missing, name="1/stray.png")))
        assert err.code() is Code.NOT_FOUND
    err = await failure_of(api.stub.GetArtifact(pb.GetArtifactRequest(job_id=job_id, name="1/secret.png")))
    assert err.code() is Code.NOT_FOUND and "1/secret.png" in str(err.details())

    for bad in ("../x", "/1/x", "1/../../x", f"../{other}/1/secret.png", "1", "1/", "0/x.png", "a/x.png", "1/a/b", ""):
        err = await failure_of(api.stub.GetArtifact(pb.GetArtifactRequest(job_id=job_id, name=bad)))
        assert err.code() is Code.INVALID_ARGUMENT, bad
        assert violated_fields(err) == ["name"], bad


async def test_clean_deletes_the_artifacts_of_the_jobs_it_removes(api: Api) -> None:
    job_id = await finished_job(api.queue)
    await put_all(api.store, job_id, {"1/trace.zip": b"PK", "1/step-00-failure.png": PNG})
    assert (await api.admin.Clean(pb.CleanRequest())).removed == 1
    assert await api.store.list(job_id) == []


async def test_without_a_store_the_artifact_calls_are_unavailable(
    redis_server: RedisProcess, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    closed = ArtifactSettings.from_env(
        {
            "SENTINEL_ARTIFACTS_URL": "s3://sentinel-nowhere/x",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
            "AWS_ACCESS_KEY_ID": "id",
            "AWS_SECRET_ACCESS_KEY": "s3cr3t-value",
        }
    )
    queue = Queue.open(redis_client, QueueSettings())
    for settings in (None, closed):
        server = await start_api(redis_server, settings)  # serves though the store does not answer
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                stub = pb_grpc.TestExecutionStub(channel)
                job_id = await finished_job(queue)
                err = await failure_of(stub.ListArtifacts(pb.ListArtifactsRequest(job_id=job_id), timeout=60))
                assert err.code() is Code.UNAVAILABLE, err.details()
                assert ("127.0.0.1" if settings else "no artifact store") in str(err.details())
                assert "s3cr3t" not in str(err.details())
                # The API asked the store again itself: it tells clients not to (gRPC's retry pushback).
                assert ("grpc-retry-pushback-ms", "-1") in tuple(err.trailing_metadata() or ())
                request = pb.GetArtifactRequest(job_id=job_id, name="1/trace.zip")
                streamed = await failure_of(stub.GetArtifact(request, timeout=60))
                assert streamed.code() is Code.UNAVAILABLE
                assert ("grpc-retry-pushback-ms", "-1") in tuple(streamed.trailing_metadata() or ())
            # So the SDK raises after one try: with a retry it would wait out the 10-minute pause first.
            patient = RetryPolicy(attempts=4, initial_backoff=600, max_backoff=600, jitter=0)
            async with AsyncClient(f"127.0.0.1:{server.port}", retries=patient) as client:
                async with asyncio.timeout(120):
                    with pytest.raises(UnavailableError) as refused:
                        await client.artifacts(job_id)
                    with pytest.raises(UnavailableError):
                        await client.download_artifact(job_id, "1/trace.zip", tmp_path)
            assert refused.value.pushback_ms == -1
        finally:
            await server.stop(0)


async def test_a_tenant_reads_its_own_artifacts_only(
    redis_server: RedisProcess, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    keys = {who: new_key() for who in ("acme", "globex")}
    entries = [KeyEntry(tenant=t, role=Role.VIEWER, sha256=hash_key(k)).to_json() for t, k in keys.items()]
    (tmp_path / "keys.json").write_text(json.dumps({"keys": entries}))
    security = SecuritySettings(auth_disabled=False, keys_file=str(tmp_path / "keys.json"))
    settings = ArtifactSettings.from_env({"SENTINEL_ARTIFACTS_URL": (tmp_path / "artifacts").as_uri()})
    server = await start_api(redis_server, settings, security)
    try:
        queue = Queue.open(redis_client, QueueSettings())
        job_id = await finished_job(queue, tenant="acme")
        await put_all(await fresh_store(settings), job_id, {"1/step-00-failure.png": PNG})
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = pb_grpc.TestExecutionStub(channel)
            acme, globex = ((("authorization", f"Bearer {keys[t]}"),) for t in ("acme", "globex"))
            # A viewer key may read its tenant's artifacts ...
            reply = await stub.ListArtifacts(pb.ListArtifactsRequest(job_id=job_id), metadata=acme)
            assert [a.name for a in reply.artifacts] == ["1/step-00-failure.png"]
            chunks = await download(stub, job_id, "1/step-00-failure.png", metadata=acme)
            assert b"".join(c.data for c in chunks) == PNG
            # ... and another tenant's job does not exist for it.
            listing = stub.ListArtifacts(pb.ListArtifactsRequest(job_id=job_id), metadata=globex)
            assert (await failure_of(listing)).code() is Code.NOT_FOUND
            reading = stub.GetArtifact(
                pb.GetArtifactRequest(job_id=job_id, name="1/step-00-failure.png"), metadata=globex
            )
            assert (await failure_of(reading)).code() is Code.NOT_FOUND
            assert (await failure_of(stub.ListArtifacts(pb.ListArtifactsRequest(job_id=job_id)))).code() is (
                Code.UNAUTHENTICATED
            )
    finally:
        await server.stop(0)
