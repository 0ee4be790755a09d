"""Failure evidence through real processes and a real S3-protocol server.

`sentinel api` and `sentinel executor` both keep artifacts in a bucket of moto's S3 server (with
signature checks on); a failing job's screenshot and trace are fetched by another process (the
`sentinel artifacts` CLI) through `GetArtifact`, and the executor's disk keeps nothing.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared.sealed import Sealer
from tests.e2e.conftest import SENTINEL, STACK_SECRET_KEY, Stack
from tests.e2e.helpers import request, run_to_end, wait_state
from tests.moto_s3 import MotoS3
from tests.support import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

PNG = b"\x89PNG\r\n\x1a\n"
SECRET = "correct horse & <battery>"

FAILING = [
    {"navigate": {"url": "/index.html"}},
    {"fill": {"selector": "#name", "value": "Ada"}},
    {"click": {"selector": "#greet"}},
    {"timeoutMs": 1000, "expectText": {"selector": "#out", "text": "Hi, Grace"}},
]


@pytest.fixture
async def s3_stub(stack: Stack, moto_s3: MotoS3) -> AsyncIterator[pb_grpc.TestExecutionStub]:
    """The API and one executor keeping artifacts in one bucket; yields a stub of the API."""
    env = moto_s3.env(f"s3://{moto_s3.new_bucket()}/evidence")
    api = stack.start("api", **env)
    stack.start("executor", **env)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
        yield pb_grpc.TestExecutionStub(channel)


async def test_a_failed_jobs_screenshot_and_trace_reach_another_process_from_s3(
    stack: Stack, s3_stub: pb_grpc.TestExecutionStub, tmp_path: Path
) -> None:
    stub = s3_stub
    job, _ = await run_to_end(stub, request(stack.site, FAILING))

    assert job.state == pb.JOB_STATE_FAILED
    assert list(job.result.artifacts) == ["1/step-03-failure.png", "1/trace.zip"]
    assert list(job.result.steps[3].artifacts) == ["1/step-03-failure.png"]
    assert list(job.result.artifact_notes) == []
    listed = await stub.ListArtifacts(pb.ListArtifactsRequest(job_id=job.job_id), timeout=10)
    by_name = {a.name: a for a in listed.artifacts}
    assert set(by_name) == {"1/step-03-failure.png", "1/trace.zip"}
    assert by_name["1/step-03-failure.png"].content_type == "image/png"
    assert by_name["1/step-03-failure.png"].step_index == 3
    assert by_name["1/trace.zip"].content_type == "application/zip"
    assert all(a.attempt == 1 and a.size_bytes > 0 for a in listed.artifacts)

    out = tmp_path / "downloaded"
    cli = await asyncio.to_thread(
        subprocess.run,
        [SENTINEL, "artifacts", job.job_id, "--out", str(out)],
        env={**os.environ, "SENTINEL_API": f"127.0.0.1:{stack.services[0].port}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    shot = out / "1" / "step-03-failure.png"
    trace = out / "1" / "trace.zip"
    assert shot.read_bytes()[:8] == PNG
    assert shot.stat().st_size == by_name["1/step-03-failure.png"].size_bytes
    with zipfile.ZipFile(trace) as z:
        names = z.namelist()
        assert any(n.endswith(".trace") for n in names), names
        actions = b"".join(z.read(n) for n in names if n.endswith(".trace"))
    assert b"4. expect #out to contain" in actions, "the failing step is marked in the trace"
    assert str(shot) in cli.stdout and str(trace) in cli.stdout

    assert stack.spool.is_dir() and not any(stack.spool.rglob("*.*")), "the executor's disk keeps no copy"
    assert not stack.artifacts.exists(), "nothing went to a local directory: the bucket holds it all"


async def test_a_secret_typed_into_the_page_is_in_no_artifact(stack: Stack, s3_stub: pb_grpc.TestExecutionStub) -> None:
    stub = s3_stub
    steps = [
        {"navigate": {"url": "/index.html"}},
        {"fill": {"selector": "#name", "value": Sealer(STACK_SECRET_KEY).seal(SECRET), "secret": True}},
        {"click": {"selector": "#greet"}},
        {"timeoutMs": 1000, "expectText": {"selector": "#out", "text": "never"}},
    ]
    job, _ = await run_to_end(stub, request(stack.site, steps, recordVideo=True))

    assert job.state == pb.JOB_STATE_FAILED
    assert list(job.result.artifacts) == ["1/step-03-failure.png", "1/trace.zip"]
    assert list(job.result.artifact_notes) == ["video not kept: the test types secret values, which a video would show"]
    forms = [SECRET.encode(), json.dumps(SECRET)[1:-1].encode(), b"correct horse &amp; &lt;battery&gt;"]
    for name in job.result.artifacts:
        data = b"".join(
            [c.data async for c in stub.GetArtifact(pb.GetArtifactRequest(job_id=job.job_id, name=name), timeout=30)]
        )
        if name.endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                data = b"".join(z.read(n) for n in z.namelist())
            assert b"***" in data
        assert not any(form in data for form in forms), name


async def test_what_a_run_made_before_its_executor_died_is_still_there(
    stack: Stack, s3_stub: pb_grpc.TestExecutionStub
) -> None:
    stub = s3_stub
    steps = [
        {"navigate": {"url": "/index.html"}},
        {"screenshot": {"name": "before-the-crash"}},
        {"wait": {"ms": 60000}},
    ]
    reply = await stub.Submit(request(stack.site, steps), timeout=10)

    async def uploaded() -> bool:
        listed = await stub.ListArtifacts(pb.ListArtifactsRequest(job_id=reply.job_id), timeout=10)
        return [a.name for a in listed.artifacts] == ["1/before-the-crash.png"]

    await wait_for(uploaded, within=60, interval=0.2, what="the screenshot to be in the store while the job runs")
    executor = next(s for s in stack.services if s.name == "executor")
    executor.stop(sig=signal.SIGKILL)
    stack.services.remove(executor)  # killed on purpose: not a service that failed to stop cleanly

    chunks = [
        c async for c in stub.GetArtifact(pb.GetArtifactRequest(job_id=reply.job_id, name="1/before-the-crash.png"))
    ]
    assert chunks[0].content_type == "image/png"
    assert b"".join(c.data for c in chunks)[:8] == PNG


async def test_a_rerun_keeps_the_first_runs_evidence_beside_its_own(
    stack: Stack, s3_stub: pb_grpc.TestExecutionStub
) -> None:
    stub = s3_stub
    first, _ = await run_to_end(stub, request(stack.site, FAILING))
    assert list(first.result.artifacts) == ["1/step-03-failure.png", "1/trace.zip"]

    await stub.Retry(pb.RetryRequest(job_id=first.job_id), timeout=10)  # attempts start over
    again = await wait_state(stub, first.job_id, pb.JOB_STATE_FAILED, within=60)

    assert (first.attempt, first.runs) == (1, 1)
    assert (again.attempt, again.runs) == (1, 2), "a rerun's attempts start over; its runs count on"
    assert list(again.result.artifacts) == ["2/step-03-failure.png", "2/trace.zip"], "named apart from the first run's"
    listed = await stub.ListArtifacts(pb.ListArtifactsRequest(job_id=first.job_id), timeout=10)
    assert [(a.name, a.attempt) for a in listed.artifacts] == [
        ("1/step-03-failure.png", 1),
        ("1/trace.zip", 1),
        ("2/step-03-failure.png", 2),
        ("2/trace.zip", 2),
    ], "an artifact's attempt is the run that made it, the first segment of its name"


async def test_an_executor_tracing_on_first_retry_records_the_second_attempts_trace_only(stack: Stack) -> None:
    api = stack.start("api")
    # Its traces also leave screencast frames out (SENTINEL_TRACE_SCREENSHOTS), keeping the steps.
    stack.start("executor", SENTINEL_TRACE="on-first-retry", SENTINEL_TRACE_SCREENSHOTS="false")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
        stub = pb_grpc.TestExecutionStub(channel)
        job, _ = await run_to_end(stub, request(stack.site, FAILING, maxAttempts=2, backoffMs=100))
        listed = await stub.ListArtifacts(pb.ListArtifactsRequest(job_id=job.job_id), timeout=10)
        chunks = stub.GetArtifact(pb.GetArtifactRequest(job_id=job.job_id, name="2/trace.zip"), timeout=30)
        trace = b"".join([c.data async for c in chunks])

    assert job.state == pb.JOB_STATE_FAILED and job.attempt == 2
    assert [a.name for a in listed.artifacts] == ["1/step-03-failure.png", "2/step-03-failure.png", "2/trace.zip"]
    assert list(job.result.artifacts) == ["2/step-03-failure.png", "2/trace.zip"]
    with zipfile.ZipFile(io.BytesIO(trace)) as z:
        names = z.namelist()
        actions = b"".join(z.read(n) for n in names if n.endswith(".trace"))
    assert b"4. expect #out to contain" in actions, "the failing step is marked in the trace"
    assert not any(n.endswith((".jpeg", ".jpg")) for n in names), "no screencast frames"
