"""The API in SENTINEL_EXECUTION=direct through real gRPC servers: an API with no Redis at all and
executors in-process with Chromium, also without Redis. Same auth, tenancy, validation, guard and
limits as the queue; the least busy executor is chosen, a full or unreachable one skipped."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import AsyncExitStack
from pathlib import Path

import grpc
import pytest

from api_service.server import ApiServer
from executor_service.server import ExecutorServer
from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from sentinel_cli import client as cli
from shared.edge.tls import open_channel
from shared.settings import (
    ApiSettings,
    ArtifactSettings,
    ClientSettings,
    ExecutionMode,
    ExecutionSettings,
    ExecutorSettings,
    QueueSettings,
    RedisSettings,
    SecuritySettings,
)
from tests.support import chromium_path, closed_port, free_port, wait_for, write_keys

pytestmark = pytest.mark.timeout(120)

#: Nothing listens here: any use of Redis would fail.
NO_REDIS = RedisSettings(url=f"redis://127.0.0.1:{free_port()}/0", configured=True)


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, str]:
    return write_keys(tmp_path / "keys.json")


@pytest.fixture
def security(tmp_path: Path, keys: dict[str, str]) -> SecuritySettings:
    return SecuritySettings(auth_disabled=False, keys_file=str(tmp_path / "keys.json"), navigation_allow=("127.0.0.1",))


async def start_executor(
    servers: AsyncExitStack,
    tmp_path: Path,
    security: SecuritySettings,
    *,
    concurrency: int,
    name: str,
    grace_ms: int = 30_000,
) -> ExecutorServer:
    executor = await ExecutorServer.start(
        redis=NO_REDIS,
        queue_settings=QueueSettings(concurrency=concurrency),
        executor=ExecutorSettings(
            host="127.0.0.1",
            port=0,
            worker_id=name,
            chromium=chromium_path(),
            spool_dir=str(tmp_path / name / "spool"),
            artifacts=ArtifactSettings(url=(tmp_path / "artifacts").as_uri()),
            shutdown_grace_ms=grace_ms,
        ),
        security=security,
        execution=ExecutionSettings(mode=ExecutionMode.DIRECT),
    )
    servers.push_async_callback(executor.stop)
    return executor


async def start_api(
    servers: AsyncExitStack,
    security: SecuritySettings,
    executor_key: str,
    addresses: list[str],
    *,
    max_jobs: int = 100,
    queue: QueueSettings | None = None,
    artifacts: ArtifactSettings | None = None,
) -> ApiServer:
    execution = ExecutionSettings(
        mode=ExecutionMode.DIRECT,
        executors=tuple(addresses),
        max_jobs=max_jobs,
        executor_client=ClientSettings(api_key=executor_key),
    )
    api = await ApiServer.start(
        redis=NO_REDIS,
        queue_settings=queue or QueueSettings(),
        api=ApiSettings(host="127.0.0.1", port=0),
        security=security,
        artifacts=artifacts,
        execution=execution,
    )
    servers.push_async_callback(api.stop, 0)
    return api


async def channel_for(servers: AsyncExitStack, port: int, key: str) -> grpc.aio.Channel:
    return await servers.enter_async_context(open_channel(ClientSettings(api_key=key), f"127.0.0.1:{port}"))


async def stub_for(servers: AsyncExitStack, port: int, key: str) -> pb_grpc.TestExecutionStub:
    return pb_grpc.TestExecutionStub(await channel_for(servers, port, key))


def waits(*ms: int, **options: object) -> pb.SubmitRequest:
    steps = [pb.Step(name=f"wait {m}", wait=pb.Wait(ms=m)) for m in ms]
    return pb.SubmitRequest(
        definition=pb.TestDefinition(name="waits", steps=steps),
        options=pb.JobOptions(**options),  # type: ignore[arg-type]
    )


async def finished(stub: pb_grpc.TestExecutionStub, job_id: str, *, within: float = 60) -> pb.Job:
    async def done() -> pb.Job | None:
        job = await stub.Status(pb.StatusRequest(job_id=job_id), timeout=10)
        return job if job.state in (pb.JOB_STATE_COMPLETED, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED) else None

    return await wait_for(done, within=within, what=f"job {job_id} to finish")


async def test_auth_tenancy_and_validation_are_the_queues(
    servers: AsyncExitStack, tmp_path: Path, security: SecuritySettings, keys: dict[str, str]
) -> None:
    executor = await start_executor(servers, tmp_path, security, concurrency=2, name="exec-a")
    api = await start_api(servers, security, keys["acme-operator"], [f"127.0.0.1:{executor.port}"])
    acme = await stub_for(servers, api.port, keys["acme-submitter"])
    globex = await stub_for(servers, api.port, keys["globex-admin"])
    viewer = await stub_for(servers, api.port, keys["acme-viewer"])

    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await viewer.Submit(waits(10), timeout=10)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await acme.Submit(pb.SubmitRequest(definition=pb.TestDefinition(name="no steps")), timeout=10)
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    reply = await acme.Submit(waits(10, tags=["mine"]), timeout=10)
    job = await finished(acme, reply.job_id)
    assert job.state == pb.JOB_STATE_COMPLETED and job.tenant_id == "acme" and job.result.worker_id == "exec-a"
    assert [j.job_id for j in (await viewer.ListJobs(pb.ListJobsRequest(), timeout=10)).jobs] == [reply.job_id]
    for call in (
        globex.Status(pb.StatusRequest(job_id=reply.job_id), timeout=10),
        globex.Cancel(pb.CancelRequest(job_id=reply.job_id), timeout=10),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as hidden:
            await call
        assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        async for _ in globex.StreamProgress(pb.StreamProgressRequest(job_id=reply.job_id), timeout=10):
            pass
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    assert not (await globex.ListJobs(pb.ListJobsRequest(), timeout=10)).jobs

    # Without a queue, the services that are all queue answer FAILED_PRECONDITION naming the mode.
    admin = await channel_for(servers, api.port, keys["acme-admin"])
    for refused_call in (
        pb_grpc.QueueAdminStub(admin).GetStats(pb.GetStatsRequest(), timeout=10),
        pb_grpc.SchedulesStub(admin).ListSchedules(pb.ListSchedulesRequest(), timeout=10),
        pb_grpc.AlertsStub(admin).ListAlertRules(pb.ListAlertRulesRequest(), timeout=10),
        acme.Retry(pb.RetryRequest(job_id=reply.job_id), timeout=10),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as no_queue:
            await refused_call
        assert no_queue.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "SENTINEL_EXECUTION=direct" in (no_queue.value.details() or "")

    # The executor's Run is an admin call: a tenant's submitter key cannot run jobs on it directly.
    async with open_channel(ClientSettings(api_key=keys["acme-submitter"]), f"127.0.0.1:{executor.port}") as ch:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            async for _ in pb_grpc.ExecutorStub(ch).Run(pb.RunJobRequest(), timeout=10):
                pass
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_jobs_go_to_the_least_busy_executor_and_wait_when_all_are_full(
    servers: AsyncExitStack, tmp_path: Path, security: SecuritySettings, keys: dict[str, str]
) -> None:
    first = await start_executor(servers, tmp_path, security, concurrency=1, name="exec-a")
    second = await start_executor(servers, tmp_path, security, concurrency=1, name="exec-b")
    dead = f"127.0.0.1:{free_port()}"  # unreachable: skipped
    addresses = [dead, f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}"]
    api = await start_api(servers, security, keys["acme-operator"], addresses)
    stub = await stub_for(servers, api.port, keys["acme-submitter"])

    ids = [(await stub.Submit(waits(1500), timeout=10)).job_id for _ in range(3)]
    jobs = [await finished(stub, job_id) for job_id in ids]
    assert [j.state for j in jobs] == [pb.JOB_STATE_COMPLETED] * 3
    assert all(j.attempt == 1 for j in jobs)
    # One at a time on each: the first two ran side by side, the third after one of them.
    assert {jobs[0].result.worker_id, jobs[1].result.worker_id} == {"exec-a", "exec-b"}
    ends = sorted(j.finished_at.ToMilliseconds() for j in jobs[:2])
    assert jobs[2].started_at.ToMilliseconds() >= ends[0]


async def test_a_full_table_refuses_submits_and_the_guard_applies(
    servers: AsyncExitStack, tmp_path: Path, security: SecuritySettings, keys: dict[str, str]
) -> None:
    executor = await start_executor(servers, tmp_path, security, concurrency=2, name="exec-a")
    api = await start_api(servers, security, keys["acme-operator"], [f"127.0.0.1:{executor.port}"], max_jobs=1)
    stub = await stub_for(servers, api.port, keys["acme-submitter"])

    long = await stub.Submit(waits(60_000), timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as full:
        await stub.Submit(waits(10), timeout=10)
    assert full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "SENTINEL_DIRECT_MAX_JOBS" in (full.value.details() or "")
    batch = await stub.SubmitBatch(pb.SubmitBatchRequest(requests=[waits(10)]), timeout=10)
    assert batch.items[0].error.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    await stub.Cancel(pb.CancelRequest(job_id=long.job_id), timeout=10)

    # The navigation guard runs on the executor as for a claimed job: 127.0.0.2 is not allowed.
    refused = await stub.Submit(
        pb.SubmitRequest(
            definition=pb.TestDefinition(
                name="guarded",
                steps=[pb.Step(navigate=pb.Navigate(url=f"http://127.0.0.2:{closed_port('127.0.0.2')}/"))],
            )
        ),
        timeout=10,
    )
    job = await finished(stub, refused.job_id)
    assert job.state == pb.JOB_STATE_FAILED and job.error.category == pb.ERROR_CATEGORY_POLICY


async def test_a_run_lost_with_its_executor_is_retried_on_another_as_the_policy_allows(
    servers: AsyncExitStack, tmp_path: Path, security: SecuritySettings, keys: dict[str, str]
) -> None:
    leaving = await start_executor(servers, tmp_path, security, concurrency=1, name="exec-a", grace_ms=0)
    staying = await start_executor(servers, tmp_path, security, concurrency=1, name="exec-b")
    api = await start_api(
        servers, security, keys["acme-operator"], [f"127.0.0.1:{leaving.port}", f"127.0.0.1:{staying.port}"]
    )
    stub = await stub_for(servers, api.port, keys["acme-submitter"])

    reply = await stub.Submit(waits(1500, max_attempts=2, backoff_ms=100), timeout=10)

    async def running_on_a() -> bool:
        job = await stub.Status(pb.StatusRequest(job_id=reply.job_id), timeout=10)
        return job.state == pb.JOB_STATE_RUNNING and job.worker_id == f"127.0.0.1:{leaving.port}"

    await wait_for(running_on_a, within=30, what="the job to run on exec-a, the least busy (first) executor")
    await leaving.stop()  # no grace: its run is cut off mid-way
    job = await finished(stub, reply.job_id)
    assert job.state == pb.JOB_STATE_COMPLETED and job.attempt == 2 and job.result.worker_id == "exec-b"
    events = [e async for e in stub.StreamProgress(pb.StreamProgressRequest(job_id=reply.job_id), timeout=10)]
    retrying = [e for e in events if e.state == pb.JOB_STATE_SCHEDULED]
    assert len(retrying) == 1 and f"127.0.0.1:{leaving.port} lost the run" in retrying[0].progress.message


async def test_a_tenants_waiting_and_running_limits_apply_to_direct_jobs(
    servers: AsyncExitStack, tmp_path: Path, security: SecuritySettings, keys: dict[str, str]
) -> None:
    executor = await start_executor(servers, tmp_path, security, concurrency=3, name="exec-a")
    limits = QueueSettings(tenant_max_running=1, tenant_max_queued=1)
    api = await start_api(servers, security, keys["acme-operator"], [f"127.0.0.1:{executor.port}"], queue=limits)
    acme = await stub_for(servers, api.port, keys["acme-submitter"])
    globex = await stub_for(servers, api.port, keys["globex-submitter"])

    first = await acme.Submit(waits(60_000), timeout=10)
    await wait_for(lambda: _state_is(acme, first.job_id, pb.JOB_STATE_RUNNING), within=30, what="the first job to run")
    second = await acme.Submit(waits(10), timeout=10)  # waits: acme already runs its one job
    with pytest.raises(grpc.aio.AioRpcError) as full:
        await acme.Submit(waits(10), timeout=10)
    assert full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "SENTINEL_TENANT_MAX_QUEUED" in (full.value.details() or "")
    other = await globex.Submit(waits(10), timeout=10)  # another tenant's limits are its own
    assert (await finished(globex, other.job_id)).state == pb.JOB_STATE_COMPLETED
    assert (await acme.Status(pb.StatusRequest(job_id=second.job_id), timeout=10)).state == pb.JOB_STATE_PENDING

    await acme.Cancel(pb.CancelRequest(job_id=first.job_id), timeout=10)
    assert (await finished(acme, second.job_id)).state == pb.JOB_STATE_COMPLETED


async def _state_is(stub: pb_grpc.TestExecutionStub, job_id: str, state: int) -> bool:
    return (await stub.Status(pb.StatusRequest(job_id=job_id), timeout=10)).state == state


def failing() -> pb.SubmitRequest:
    """A test that leaves evidence: a screenshot, then a step that fails (its screenshot and the trace)."""
    steps = [
        pb.Step(name="blank", screenshot=pb.Screenshot(name="blank")),
        pb.Step(name="never", timeout_ms=1000, expect_title=pb.ExpectTitle(text="never this title")),
    ]
    return pb.SubmitRequest(definition=pb.TestDefinition(name="fails", steps=steps))


async def test_a_direct_jobs_artifacts_are_listed_and_served_to_its_tenant_only(
    servers: AsyncExitStack, tmp_path: Path, security: SecuritySettings, keys: dict[str, str]
) -> None:
    executor = await start_executor(servers, tmp_path, security, concurrency=1, name="exec-a")
    store = ArtifactSettings(url=(tmp_path / "artifacts").as_uri())  # the executor's store
    api = await start_api(servers, security, keys["acme-operator"], [f"127.0.0.1:{executor.port}"], artifacts=store)
    acme = await stub_for(servers, api.port, keys["acme-viewer"])
    submitter = await stub_for(servers, api.port, keys["acme-submitter"])
    globex = await stub_for(servers, api.port, keys["globex-admin"])

    reply = await submitter.Submit(failing(), timeout=10)
    job = await finished(acme, reply.job_id)
    assert job.state == pb.JOB_STATE_FAILED and job.result.artifacts
    listed = await acme.ListArtifacts(pb.ListArtifactsRequest(job_id=reply.job_id), timeout=10)
    names = [a.name for a in listed.artifacts]
    assert set(names) == set(job.result.artifacts) and "1/trace.zip" in names  # `sentinel trace` finds it
    for artifact in listed.artifacts:
        request = pb.GetArtifactRequest(job_id=reply.job_id, name=artifact.name)
        chunks = [c async for c in acme.GetArtifact(request, timeout=10)]
        data = b"".join(c.data for c in chunks)
        assert len(data) == artifact.size_bytes == chunks[0].size_bytes > 0
        assert chunks[0].content_type == artifact.content_type
        assert data == (tmp_path / "artifacts" / reply.job_id / artifact.name).read_bytes()
    trace = next(a for a in listed.artifacts if a.name == "1/trace.zip")
    assert trace.content_type == "application/zip" and trace.step_index == -1

    # Another tenant's job is "not found", as for Status; so is a job this API does not hold.
    for job_id in (reply.job_id, "00000000-0000-4000-8000-000000000000"):
        with pytest.raises(grpc.aio.AioRpcError) as hidden:
            await (globex if job_id == reply.job_id else acme).ListArtifacts(
                pb.ListArtifactsRequest(job_id=job_id), timeout=10
            )
        assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        async for _ in globex.GetArtifact(pb.GetArtifactRequest(job_id=reply.job_id, name="1/trace.zip"), timeout=10):
            pass
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND


async def test_an_evicted_direct_jobs_artifacts_are_deleted_from_the_store(
    servers: AsyncExitStack, tmp_path: Path, security: SecuritySettings, keys: dict[str, str]
) -> None:
    """`sentinel api` in direct mode, wired as it starts: a table of one job, a store shared with the
    executor. The next job evicts the finished one, and its files go with it (in the background)."""
    executor = await start_executor(servers, tmp_path, security, concurrency=1, name="exec-a")
    store = ArtifactSettings(url=(tmp_path / "artifacts").as_uri())
    api = await start_api(
        servers, security, keys["acme-operator"], [f"127.0.0.1:{executor.port}"], artifacts=store, max_jobs=1
    )
    submitter = await stub_for(servers, api.port, keys["acme-submitter"])
    first = await submitter.Submit(failing(), timeout=10)
    assert (await finished(submitter, first.job_id)).state == pb.JOB_STATE_FAILED
    kept = tmp_path / "artifacts" / first.job_id
    assert (kept / "1" / "trace.zip").is_file()

    second = await submitter.Submit(waits(10), timeout=10)  # evicts the first
    await wait_for(lambda: not kept.exists(), within=30, what="the evicted job's artifacts to be deleted")
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await submitter.Status(pb.StatusRequest(job_id=first.job_id), timeout=10)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    assert (await finished(submitter, second.job_id)).state == pb.JOB_STATE_COMPLETED


async def test_submit_follow_that_saw_its_job_end_exits_by_that_end_when_the_api_is_gone(
    servers: AsyncExitStack,
    tmp_path: Path,
    security: SecuritySettings,
    keys: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    executor = await start_executor(servers, tmp_path, security, concurrency=1, name="exec-a")
    execution = ExecutionSettings(
        mode=ExecutionMode.DIRECT,
        executors=(f"127.0.0.1:{executor.port}",),
        executor_client=ClientSettings(api_key=keys["acme-operator"]),
    )
    api = await ApiServer.start(
        redis=NO_REDIS,
        queue_settings=QueueSettings(),
        api=ApiSettings(host="127.0.0.1", port=0),
        security=security,
        execution=execution,
    )
    monkeypatch.setenv("SENTINEL_API_KEY", keys["acme-submitter"])
    test = {"name": "waits", "steps": [{"wait": {"ms": 60000}}]}
    following = asyncio.create_task(
        cli.submit_and_follow(f"127.0.0.1:{api.port}", test, priority=None, follow_progress=True)
    )
    api_up = True
    try:
        stub = await stub_for(servers, api.port, keys["acme-submitter"])

        async def running() -> bool:
            listed = await stub.ListJobs(pb.ListJobsRequest(), timeout=10)
            return any(j.state == pb.JOB_STATE_RUNNING for j in listed.jobs)

        await wait_for(running, within=60, what="the job to run")
        api_up = False
        await api.stop(0)  # a direct-mode API that stops cancels its jobs: the follower sees the end, then no API
        code = await asyncio.wait_for(following, timeout=60)
    finally:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await following
        if api_up:
            await api.stop(0)
    err = capsys.readouterr().err
    assert code == 1, err  # the end it saw (cancelled), not 2 for the API that is gone
    assert "the result of job " in err and " could not be read: " in err


async def test_no_tenants_admin_may_run_or_drain_an_executor_only_an_operator(
    servers: AsyncExitStack, tmp_path: Path, security: SecuritySettings, keys: dict[str, str]
) -> None:
    """An executor serves every tenant: Run takes any tenant's job as the caller writes it (and would
    write that job's artifacts), Drain stops everyone's work. A tenant's admin key is refused both."""
    executor = await start_executor(servers, tmp_path, security, concurrency=1, name="exec-a")
    admin = pb_grpc.ExecutorStub(await channel_for(servers, executor.port, keys["globex-admin"]))
    record = {"id": "someone-elses-job", "tenant": "acme"}
    with pytest.raises(grpc.aio.AioRpcError) as ran:
        [u async for u in admin.Run(pb.RunJobRequest(job=record), timeout=10)]
    with pytest.raises(grpc.aio.AioRpcError) as drained:
        await admin.Drain(pb.DrainRequest(), timeout=10)
    for refused in (ran.value, drained.value):
        assert refused.code() == grpc.StatusCode.PERMISSION_DENIED and "operator" in (refused.details() or "")
    operator = pb_grpc.ExecutorStub(await channel_for(servers, executor.port, keys["globex-operator"]))
    assert not (await operator.GetWorkerStatus(pb.GetWorkerStatusRequest(), timeout=10)).draining
