"""The executor service in-process with Chromium, next to a real API and redis-server:
GetWorkerStatus, Drain, /metrics, job log context, and one trace from Submit to the last step."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from api_service.server import ApiServer
from executor_service.server import ExecutorServer
from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from sentinel_cli.runtime import make_handler
from shared.sealed import new_secret_key
from shared.settings import (
    ApiSettings,
    ArtifactSettings,
    ExecutorSettings,
    QueueSettings,
    RedisSettings,
    SecuritySettings,
)
from shared.telemetry import client_interceptors
from tests.support import RedisProcess, chromium_path, free_port, wait_for, write_keys


@dataclass
class Stack:
    api: ApiServer
    executor: ExecutorServer
    jobs: pb_grpc.TestExecutionStub  # through a traced channel
    worker: pb_grpc.ExecutorStub
    executor_channel: grpc.aio.Channel
    spans: InMemorySpanExporter


@pytest.fixture
async def stack(redis_server: RedisProcess, tmp_path: Path) -> AsyncIterator[Stack]:
    spans = InMemorySpanExporter()
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(spans))
    redis = RedisSettings(url=redis_server.url, configured=True)
    queue = QueueSettings(concurrency=2)
    api = await ApiServer.start(
        redis=redis, queue_settings=queue, api=ApiSettings(host="127.0.0.1", port=0), tracing=tracing
    )
    executor = await ExecutorServer.start(
        redis=redis,
        queue_settings=queue,
        executor=ExecutorSettings(
            host="127.0.0.1",
            port=0,
            chromium=chromium_path(),
            spool_dir=str(tmp_path / "spool"),
            artifacts=ArtifactSettings(url=(tmp_path / "artifacts").as_uri()),
            metrics_port=free_port(),
        ),
        tracing=tracing,
    )
    try:
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{api.port}", interceptors=client_interceptors(tracing)) as ch,
            grpc.aio.insecure_channel(f"127.0.0.1:{executor.port}") as ech,
        ):
            yield Stack(api, executor, pb_grpc.TestExecutionStub(ch), pb_grpc.ExecutorStub(ech), ech, spans)
    finally:
        await executor.stop()
        await api.stop(0)
        tracing.shutdown()


def waits(*ms: int, name: str = "waits", **options: Any) -> pb.SubmitRequest:
    steps = [pb.Step(name=f"wait {m}", wait=pb.Wait(ms=m)) for m in ms]
    return pb.SubmitRequest(definition=pb.TestDefinition(name=name, steps=steps), options=pb.JobOptions(**options))


async def finished(stack: Stack, job_id: str) -> pb.Job:
    async def done() -> pb.Job | None:
        job = await stack.jobs.Status(pb.StatusRequest(job_id=job_id), timeout=5)
        return job if job.state == pb.JOB_STATE_COMPLETED else None

    return await wait_for(done, within=30, what=f"job {job_id} completed")


async def test_worker_status_shows_in_flight_jobs_with_progress(stack: Stack) -> None:
    reply = await stack.jobs.Submit(waits(100, 3000), timeout=5)

    async def running() -> pb.WorkerStatus | None:
        status = await stack.worker.GetWorkerStatus(pb.GetWorkerStatusRequest(), timeout=5)
        ok = status.in_flight and status.in_flight[0].progress.current_step == 2
        return status if ok else None

    status = await wait_for(running, within=20, what="the job running its second step")
    assert status.worker_id == stack.executor.worker.worker_id
    assert status.concurrency == 2 and status.browser_connected and status.browser_version
    assert status.uptime_ms > 0 and not status.draining
    [job] = status.in_flight
    assert (job.job_id, job.attempt) == (reply.job_id, 1)
    assert job.progress.step_name == "wait 3000" and job.started_at.seconds > 0


async def test_drain_finishes_in_flight_work_claims_nothing_more_and_stops_serving(stack: Stack) -> None:
    first = await stack.jobs.Submit(waits(1500), timeout=5)

    async def started() -> bool:
        return bool(stack.executor.worker.in_flight)

    await wait_for(started, within=20, what="the first job to start")
    drained = await stack.worker.Drain(pb.DrainRequest(), timeout=60)
    assert drained.status.draining and not drained.status.in_flight
    assert drained.status.jobs_processed == 1
    assert (await finished(stack, first.job_id)).state == pb.JOB_STATE_COMPLETED
    health = health_pb2_grpc.HealthStub(stack.executor_channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
    second = await stack.jobs.Submit(waits(10), timeout=5)
    await asyncio.sleep(0.5)  # a drained executor must not pick it up in this time (nor ever)
    job = await stack.jobs.Status(pb.StatusRequest(job_id=second.job_id), timeout=5)
    assert job.state == pb.JOB_STATE_PENDING


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        return str(reply.read().decode())


async def test_one_trace_from_submit_to_the_last_step_and_metrics_and_job_logs(stack: Stack) -> None:
    lines = io.StringIO()
    handler = make_handler("json", stream=lines)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        reply = await stack.jobs.Submit(waits(20, 30, name="traced", tags=["smoke"]), timeout=5)
        await finished(stack, reply.job_id)
        # The job's span ends, and its figures are counted, just after its end is written: a test
        # that reads the state may get there first (seen on a loaded machine).
        await wait_for(
            lambda: any(s.name == "job traced" for s in stack.spans.get_finished_spans()),
            within=10,
            what="the job's span ended",
        )
        await stack.worker.GetWorkerStatus(pb.GetWorkerStatusRequest(), timeout=5)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)

    spans: list[ReadableSpan] = list(stack.spans.get_finished_spans())
    by_name = {s.name: s for s in spans}
    submits = [s for s in spans if s.name.endswith("TestExecution/Submit")]
    job = by_name["job traced"]
    steps = [s for s in spans if s.name.startswith("step ")]
    assert len(submits) == 2  # the client's span and the server's
    assert [s.name for s in sorted(steps, key=lambda s: s.start_time or 0)] == ["step 1: wait 20", "step 2: wait 30"]
    trace_ids = {s.context.trace_id for s in [*submits, job, *steps] if s.context is not None}
    assert len(trace_ids) == 1, "Submit, the job and its steps are one trace"
    server_submit = next(s for s in submits if s.parent is not None)
    assert job.parent is not None and server_submit.context is not None
    assert job.parent.span_id == server_submit.context.span_id
    assert [link.context.span_id for link in job.links] == [server_submit.context.span_id]
    assert job.attributes is not None and job.attributes["sentinel.job.outcome"] == "completed"
    for step in steps:
        assert step.parent is not None and job.context is not None
        assert step.parent.span_id == job.context.span_id
        assert step.attributes is not None and step.attributes["sentinel.step.outcome"] == "passed"

    trace_id = format(next(iter(trace_ids)), "032x")
    about_job = [json.loads(line) for line in lines.getvalue().splitlines() if reply.job_id in line]
    assert about_job, "the executor logs about the job"
    for record in about_job:
        if record["logger"].startswith("executor_service"):
            assert record["job_id"] == reply.job_id
            assert (record["tenant"], record["attempt"], record["trace_id"]) == ("default", "1", trace_id)

    assert stack.executor.instrumentation is not None and stack.executor.instrumentation.endpoint is not None
    text = await asyncio.to_thread(scrape, stack.executor.instrumentation.endpoint.port)
    assert 'sentinel_executor_jobs_total{lane="medium",outcome="completed"} 1.0' in text
    assert 'sentinel_executor_job_wait_seconds_count{lane="medium"} 1.0' in text
    assert 'sentinel_executor_job_duration_seconds_count{outcome="completed"} 1.0' in text
    assert "sentinel_executor_active_jobs{worker=" in text
    assert "sentinel_executor_browser_restarts_total{worker=" in text
    assert 'sentinel_rpc_requests_total{code="OK",method="GetWorkerStatus",service="sentinel.v1.Executor"} 1.0' in text


async def test_a_malformed_request_to_the_executor_is_invalid_argument(stack: Stack) -> None:
    raw: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]
    raw = stack.executor_channel.unary_unary("/sentinel.v1.Executor/GetWorkerStatus")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await raw(b"\xff\xff\xff", timeout=10)  # not a protobuf message
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_the_hub_reader_never_retries_behind_the_hubs_back(stack: Stack) -> None:
    # A silent reconnect would change the reader's CLIENT ID and break CLIENT UNBLOCK (shared.queue).
    retry = stack.api.reader.get_retry()
    assert retry is not None and retry.get_retries() == 0


async def test_worker_status_lists_only_the_callers_tenants_jobs(redis_server: RedisProcess, tmp_path: Path) -> None:
    """An executor serves every tenant: another tenant's viewer sees how busy it is, not what runs."""
    keys_file = tmp_path / "keys.json"
    keys = write_keys(keys_file)
    security = SecuritySettings(auth_disabled=False, keys_file=str(keys_file), secret_key=new_secret_key())
    redis = RedisSettings(url=redis_server.url, configured=True)
    queue = QueueSettings(concurrency=2)
    api = await ApiServer.start(
        redis=redis, queue_settings=queue, api=ApiSettings(host="127.0.0.1", port=0), security=security
    )
    executor = await ExecutorServer.start(
        redis=redis,
        queue_settings=queue,
        executor=ExecutorSettings(
            host="127.0.0.1", port=0, chromium=chromium_path(), spool_dir=str(tmp_path / "spool")
        ),
        security=security,
    )

    def md(who: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {keys[who]}"),)

    try:
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as ch,
            grpc.aio.insecure_channel(f"127.0.0.1:{executor.port}") as ech,
        ):
            worker = pb_grpc.ExecutorStub(ech)
            secret_step = waits(100, 5000, name="payroll")
            secret_step.definition.steps[1].name = "log in as cfo@acme.example"
            reply = await pb_grpc.TestExecutionStub(ch).Submit(secret_step, metadata=md("acme-submitter"), timeout=5)

            async def running() -> pb.WorkerStatus | None:
                status = await worker.GetWorkerStatus(
                    pb.GetWorkerStatusRequest(), metadata=md("acme-viewer"), timeout=5
                )
                return status if status.in_flight else None

            own = await wait_for(running, within=20, what="acme's job to run")
            assert [j.job_id for j in own.in_flight] == [reply.job_id] and own.busy_slots == 1
            other = await worker.GetWorkerStatus(pb.GetWorkerStatusRequest(), metadata=md("globex-viewer"), timeout=5)
            assert (list(other.in_flight), other.busy_slots, other.concurrency) == ([], 1, 2)
            assert "cfo@acme" not in str(other)
    finally:
        await executor.stop()
        await api.stop(0)
