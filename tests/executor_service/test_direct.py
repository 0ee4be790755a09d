"""The executor's Run call, in-process with Chromium and no Redis (SENTINEL_EXECUTION=direct):
progress then the end, the concurrency limit, cancellation, and draining."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from executor_service.server import ExecutorServer
from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared import jobs
from shared.edge.convert_direct import run_request_to_proto
from shared.model import JobOptions, Step, SubmitCommand, TestDefinition, Wait
from shared.schema import JobField
from shared.settings import (
    ArtifactSettings,
    ExecutionMode,
    ExecutionSettings,
    ExecutorSettings,
    QueueSettings,
    RedisSettings,
)
from tests.support import chromium_path, free_port, wait_for

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def executor(tmp_path: Path) -> AsyncIterator[ExecutorServer]:
    server = await ExecutorServer.start(
        redis=RedisSettings(url=f"redis://127.0.0.1:{free_port()}/0", configured=True),  # nothing listens there
        queue_settings=QueueSettings(concurrency=1),
        executor=ExecutorSettings(
            host="127.0.0.1",
            port=0,
            worker_id="exec-direct",
            chromium=chromium_path(),
            spool_dir=str(tmp_path / "spool"),
            artifacts=ArtifactSettings(url=(tmp_path / "artifacts").as_uri()),
            shutdown_grace_ms=0,
        ),
        execution=ExecutionSettings(mode=ExecutionMode.DIRECT),
    )
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def stub(executor: ExecutorServer) -> AsyncIterator[pb_grpc.ExecutorStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{executor.port}") as channel:
        yield pb_grpc.ExecutorStub(channel)


def run_request(job_id: str, *waits_ms: int) -> pb.RunJobRequest:
    definition = TestDefinition(name="waits", steps=tuple(Step(Wait(ms=ms)) for ms in waits_ms))
    command = SubmitCommand(definition=definition, options=JobOptions())
    record = jobs.new_job_record(QueueSettings(), command, job_id=job_id, tenant="acme", trace="", now=1)
    return run_request_to_proto({**record, JobField.ATTEMPT: "1", JobField.TRIES: "1"}, "")


async def test_a_run_streams_its_progress_then_its_end(stub: pb_grpc.ExecutorStub) -> None:
    updates = [u async for u in stub.Run(run_request("j1", 10, 10), timeout=60)]
    progress = [u.progress.percentage for u in updates if u.HasField("progress")]
    assert progress == [0, 5, 10, 10, 50, 95]  # the executor's scale, a step at a time
    end = updates[-1].end
    assert end.state == pb.JOB_STATE_COMPLETED and end.result.success and end.worker_id == "exec-direct"
    assert [s.success for s in end.result.steps] == [True, True] and end.progress.percentage == 100
    assert [u.WhichOneof("update") for u in updates[:-1]] == ["progress"] * len(progress)


async def test_a_full_executor_refuses_and_a_cancelled_call_stops_its_run(stub: pb_grpc.ExecutorStub) -> None:
    long = stub.Run(run_request("long", 60_000), timeout=60)
    first = await long.read()
    assert isinstance(first, pb.RunJobUpdate) and first.progress.percentage == 0
    with pytest.raises(grpc.aio.AioRpcError) as full:
        async for _ in stub.Run(run_request("more", 10), timeout=10):
            pass
    assert full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    long.cancel()

    async def idle() -> bool:
        status = await stub.GetWorkerStatus(pb.GetWorkerStatusRequest(), timeout=5)
        return not status.in_flight and status.jobs_processed == 1

    await wait_for(idle, within=20, what="the cancelled run to end and free its slot")
    done = [u async for u in stub.Run(run_request("after", 10), timeout=60)]
    assert done[-1].end.state == pb.JOB_STATE_COMPLETED


async def test_a_draining_executor_refuses_new_runs(stub: pb_grpc.ExecutorStub) -> None:
    drained = await stub.Drain(pb.DrainRequest(), timeout=30)
    assert drained.status.draining
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        async for _ in stub.Run(run_request("late", 10), timeout=10):
            pass
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
