"""API keys, roles and tenant isolation through a real grpc.aio API server and a real redis-server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from api_service.server import ApiServer
from executor_service.store import claim, finish
from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from sentinel_cli import keys as keys_cli
from shared.access import KeyFile, KeyRing, Principal, Role, hash_key, new_key
from shared.edge.tls import open_channel
from shared.errors import ConfigError
from shared.model import ErrorCategory, JobError, JobState, Progress
from shared.queue import Queue
from shared.sealed import new_secret_key
from shared.settings import ApiSettings, ClientSettings, QueueSettings, RedisSettings, SecuritySettings
from tests.support import ROLES, RedisProcess, revoke, wait_for, write_keys

Code = grpc.StatusCode


@dataclass
class Api:
    server: ApiServer
    channel: grpc.aio.Channel
    keys: dict[str, str]  # "acme-viewer" → key
    queue: Queue

    def md(self, who: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.keys[who]}"),)

    @property
    def jobs(self) -> pb_grpc.TestExecutionStub:
        return pb_grpc.TestExecutionStub(self.channel)

    @property
    def admin(self) -> pb_grpc.QueueAdminStub:
        return pb_grpc.QueueAdminStub(self.channel)


@pytest.fixture
async def api(redis_server: RedisProcess, redis_client: aioredis.Redis, tmp_path: Path) -> AsyncIterator[Api]:
    keys_file = tmp_path / "keys.json"
    made = write_keys(keys_file)
    security = SecuritySettings(auth_disabled=False, keys_file=str(keys_file), secret_key=new_secret_key())
    server = await ApiServer.start(
        redis=RedisSettings(url=redis_server.url, configured=True),
        queue_settings=QueueSettings(),
        api=ApiSettings(host="127.0.0.1", port=0),
        security=security,
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield Api(server=server, channel=channel, keys=made, queue=Queue.open(redis_client, QueueSettings()))
    finally:
        await server.stop(0)


def request(name: str = "t") -> pb.SubmitRequest:
    step = pb.Step(navigate=pb.Navigate(url="https://shop.example.test/"))
    return pb.SubmitRequest(definition=pb.TestDefinition(name=name, steps=[step]))


async def code_of(call: Awaitable[object]) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value.code()


async def details_of(call: Awaitable[object]) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return str(info.value.details())


async def test_a_call_without_a_key_or_with_an_unknown_one_is_unauthenticated(api: Api) -> None:
    assert await code_of(api.jobs.Submit(request())) is Code.UNAUTHENTICATED
    assert await code_of(api.jobs.Status(pb.StatusRequest(job_id="x"))) is Code.UNAUTHENTICATED
    bad = (("authorization", "Bearer " + new_key()),)
    assert await code_of(api.jobs.Submit(request(), metadata=bad)) is Code.UNAUTHENTICATED
    basic = (("authorization", "Basic " + api.keys["acme-admin"]),)
    assert await code_of(api.jobs.Submit(request(), metadata=basic)) is Code.UNAUTHENTICATED
    stream = api.jobs.StreamProgress(pb.StreamProgressRequest(job_id="x"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in stream:
            pass
    assert info.value.code() is Code.UNAUTHENTICATED
    assert await code_of(api.admin.ListDeadLetters(pb.ListDeadLettersRequest())) is Code.UNAUTHENTICATED


async def test_health_and_reflection_stay_open(api: Api) -> None:
    reply = await health_pb2_grpc.HealthStub(api.channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_roles_viewer_reads_submitter_submits_admin_manages(api: Api) -> None:
    viewer, submitter, admin, operator = (api.md(f"acme-{r}") for r in ROLES)
    assert await code_of(api.jobs.Submit(request(), metadata=viewer)) is Code.PERMISSION_DENIED
    job_id = (await api.jobs.Submit(request(), metadata=submitter)).job_id
    assert (await api.jobs.Status(pb.StatusRequest(job_id=job_id), metadata=viewer)).tenant_id == "acme"
    assert len((await api.jobs.ListJobs(pb.ListJobsRequest(), metadata=viewer)).jobs) == 1
    assert await code_of(api.jobs.Cancel(pb.CancelRequest(job_id=job_id), metadata=viewer)) is Code.PERMISSION_DENIED
    assert await code_of(api.jobs.Retry(pb.RetryRequest(job_id=job_id), metadata=viewer)) is Code.PERMISSION_DENIED
    for call in (
        api.admin.ListDeadLetters(pb.ListDeadLettersRequest(), metadata=submitter),
        api.admin.PurgeDeadLetters(pb.PurgeDeadLettersRequest(), metadata=submitter),
        api.admin.Pause(pb.PauseRequest(), metadata=submitter),
        api.admin.Clean(pb.CleanRequest(), metadata=submitter),
    ):
        assert await code_of(call) is Code.PERMISSION_DENIED
    message = await details_of(api.admin.Pause(pb.PauseRequest(), metadata=submitter))
    assert "operator" in message and api.keys["acme-submitter"] not in message
    await api.jobs.Cancel(pb.CancelRequest(job_id=job_id), metadata=submitter)
    await api.admin.ListDeadLetters(pb.ListDeadLettersRequest(), metadata=admin)
    # Pausing stops every tenant's work: no tenant's admin may, only an operator.
    assert await code_of(api.admin.Pause(pb.PauseRequest(), metadata=admin)) is Code.PERMISSION_DENIED
    assert await code_of(api.admin.Resume(pb.ResumeRequest(), metadata=admin)) is Code.PERMISSION_DENIED
    assert "operator" in await details_of(api.admin.Pause(pb.PauseRequest(), metadata=admin))
    assert (await api.admin.Pause(pb.PauseRequest(), metadata=operator)).paused
    assert not (await api.admin.Resume(pb.ResumeRequest(), metadata=operator)).paused


async def test_another_tenants_job_is_not_found_exactly_like_an_unknown_id(api: Api) -> None:
    acme, globex = api.md("acme-admin"), api.md("globex-admin")
    job_id = (await api.jobs.Submit(request(), metadata=acme)).job_id
    unknown = "00000000-0000-0000-0000-000000000000"
    for target in (job_id, unknown):
        calls: list[Awaitable[object]] = [
            api.jobs.Status(pb.StatusRequest(job_id=target), metadata=globex),
            api.jobs.Cancel(pb.CancelRequest(job_id=target), metadata=globex),
            api.jobs.Retry(pb.RetryRequest(job_id=target), metadata=globex),
            api.admin.RequeueDeadLetter(pb.RequeueDeadLetterRequest(job_id=target), metadata=globex),
        ]
        for call in calls:
            assert await code_of(call) is Code.NOT_FOUND
        stream = api.jobs.StreamProgress(pb.StreamProgressRequest(job_id=target), metadata=globex)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in stream:
                pass
        assert info.value.code() is Code.NOT_FOUND
    # The same words for both, so a reply tells nothing about whether an id exists elsewhere.
    theirs = await details_of(api.jobs.Status(pb.StatusRequest(job_id=job_id), metadata=globex))
    assert theirs == f"job {job_id!r} not found"
    assert (await api.jobs.ListJobs(pb.ListJobsRequest(), metadata=globex)).jobs == []
    assert (await api.jobs.Status(pb.StatusRequest(job_id=job_id), metadata=acme)).state == pb.JOB_STATE_PENDING


async def test_dead_letters_are_per_tenant(api: Api) -> None:
    acme, globex = api.md("acme-admin"), api.md("globex-admin")
    job_id = (await api.jobs.Submit(request(), metadata=acme)).job_id
    batch = await claim(api.queue, consumer="c", worker_id="w", count=1)
    assert [c.job_id for c in batch.claims] == [job_id]
    await finish(
        api.queue,
        batch.claims[0],
        state=JobState.FAILED,
        progress=Progress(percentage=50, message="failed"),
        error=JobError(ErrorCategory.NETWORK, "x", step_index=0),
        dead_letter_reason="network: out of attempts",
    )
    mine = await api.admin.ListDeadLetters(pb.ListDeadLettersRequest(), metadata=acme)
    assert [d.job_id for d in mine.dead_letters] == [job_id]
    theirs = await api.admin.ListDeadLetters(pb.ListDeadLettersRequest(), metadata=globex)
    assert list(theirs.dead_letters) == []
    assert (await api.admin.PurgeDeadLetters(pb.PurgeDeadLettersRequest(), metadata=globex)).purged == 0


async def test_stats_and_health_count_only_the_callers_tenant(api: Api) -> None:
    acme, globex = api.md("acme-viewer"), api.md("globex-viewer")
    await api.jobs.SubmitBatch(pb.SubmitBatchRequest(requests=[request()] * 3), metadata=api.md("acme-submitter"))
    await api.jobs.Submit(request(), metadata=api.md("globex-submitter"))
    (run,) = (await claim(api.queue, consumer="c", worker_id="w", count=1)).claims
    assert await finish(api.queue, run, state=JobState.COMPLETED, progress=Progress(percentage=100))  # acme's first
    mine = await api.admin.GetStats(pb.GetStatsRequest(), metadata=acme)
    assert (mine.tenant, mine.waiting, mine.completed, mine.total_processed) == ("acme", 2, 1, 1)
    assert sum(lane.waiting for lane in mine.lanes) == 2
    theirs = await api.admin.GetStats(pb.GetStatsRequest(), metadata=globex)
    assert (theirs.tenant, theirs.waiting, theirs.completed, theirs.total_processed) == ("globex", 1, 0, 0)
    health = await api.admin.GetHealth(pb.GetHealthRequest(), metadata=globex)
    assert (health.stats.tenant, health.stats.waiting) == ("globex", 1)


def test_key_ring_matches_hashes_only_and_rejects_bad_files(tmp_path: Path) -> None:
    key = new_key()
    ring = KeyRing.from_json(json.dumps({"keys": [{"tenant": "a", "role": "viewer", "sha256": hash_key(key)}]}))
    assert ring.identify(key) is not None and ring.identify(key + "x") is None and ring.identify("") is None
    for bad in (
        "nope",
        "{}",
        '{"keys": [{"tenant": "a:b", "role": "viewer", "sha256": "' + "0" * 64 + '"}]}',
        '{"keys": [{"tenant": "a", "role": "root", "sha256": "' + "0" * 64 + '"}]}',
        '{"keys": [{"tenant": "a", "role": "admin", "sha256": "abc"}]}',
    ):
        with pytest.raises(ConfigError):
            KeyRing.from_json(bad)
    with pytest.raises(ConfigError, match="SENTINEL_API_KEYS_FILE"):
        KeyRing.from_file(str(tmp_path / "missing.json"))


def test_services_refuse_to_start_without_keys_unless_auth_is_disabled(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SENTINEL_API_KEYS_FILE"):
        SecuritySettings.from_env({})
    assert SecuritySettings.from_env({"SENTINEL_AUTH": "disabled"}).auth_disabled
    keys_file = tmp_path / "k.json"
    keys_file.write_text('{"keys": []}')
    settings = SecuritySettings.from_env({"SENTINEL_API_KEYS_FILE": str(keys_file)})
    assert not settings.auth_disabled and settings.keys_file == str(keys_file)
    with pytest.raises(ConfigError, match="SENTINEL_AUTH"):
        SecuritySettings.from_env({"SENTINEL_AUTH": "maybe"})


def test_keys_create_prints_a_key_once_and_an_entry_that_works(capsys: pytest.CaptureFixture[str]) -> None:
    parser = __import__("sentinel_cli.main", fromlist=["_parser"])._parser()
    assert keys_cli.run(parser.parse_args(["keys", "create", "--tenant", "acme", "--role", "submitter"])) == 0
    out = capsys.readouterr().out
    key = next(line.strip() for line in out.splitlines() if line.strip().startswith("snt_"))
    entry = json.loads(next(line.strip() for line in out.splitlines() if line.strip().startswith("{")))
    assert entry["tenant"] == "acme" and entry["role"] == "submitter" and key not in json.dumps(entry)
    principal = KeyRing.from_json(json.dumps({"keys": [entry]})).identify(key)
    assert principal is not None and principal.tenant == "acme" and principal.role is Role.SUBMITTER


async def test_events_are_per_tenant(api: Api) -> None:
    acme, globex = api.md("acme-admin"), api.md("globex-admin")
    theirs = (await api.jobs.Submit(request("theirs"), metadata=acme)).job_id
    mine = (await api.jobs.Submit(request("mine"), metadata=globex)).job_id
    seen: list[str] = []
    async for event in api.admin.WatchEvents(pb.WatchEventsRequest(cursor="0-0"), metadata=globex, timeout=5):
        seen.append(event.job_id)
        if event.job_id == mine:
            break
    assert mine in seen and theirs not in seen


async def test_the_cli_channel_sends_the_api_key(api: Api) -> None:
    address = f"127.0.0.1:{api.server.port}"
    async with open_channel(ClientSettings(api=address, api_key=api.keys["globex-viewer"])) as channel:
        reply = await pb_grpc.TestExecutionStub(channel).ListJobs(pb.ListJobsRequest(), timeout=5)
        assert list(reply.jobs) == []
        stream = pb_grpc.TestExecutionStub(channel).StreamProgress(pb.StreamProgressRequest(job_id="x"))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in stream:
                pass
        assert info.value.code() is Code.NOT_FOUND  # authenticated: the job is simply not there
    async with open_channel(ClientSettings(api=address)) as channel:
        assert await code_of(pb_grpc.TestExecutionStub(channel).ListJobs(pb.ListJobsRequest())) is Code.UNAUTHENTICATED


async def test_a_key_taken_out_of_the_keys_file_is_refused_without_a_restart_even_on_an_open_stream(
    api: Api, tmp_path: Path
) -> None:
    viewer, submitter = api.md("acme-viewer"), api.md("acme-submitter")
    first = (await api.jobs.Submit(request("first"), metadata=submitter)).job_id
    watch = api.admin.WatchEvents(pb.WatchEventsRequest(cursor="0-0"), metadata=viewer, timeout=30)
    for _ in range(100):  # until the stream, open, reaches the first job's events
        opened = await watch.read()
        assert isinstance(opened, pb.QueueEvent), opened
        if opened.job_id == first:
            break

    revoke(tmp_path / "keys.json", api.keys["acme-viewer"])

    async def refused() -> bool:
        try:
            await api.jobs.ListJobs(pb.ListJobsRequest(), metadata=viewer, timeout=5)
        except grpc.aio.AioRpcError as exc:
            return exc.code() is Code.UNAUTHENTICATED
        return False

    await wait_for(refused, within=10, what="the revoked key to be refused")
    # The stream opened before gets nothing more: the next event ends it.
    await api.jobs.Submit(request("second"), metadata=submitter)
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        for _ in range(100):
            event = await watch.read()
            assert isinstance(event, pb.QueueEvent) and event.job_id == first, f"after the revocation: {event}"
    assert ended.value.code() is Code.UNAUTHENTICATED
    assert list((await api.jobs.ListJobs(pb.ListJobsRequest(), metadata=submitter, timeout=5)).jobs)  # untouched


def test_a_keys_file_is_read_again_when_it_changes_and_a_broken_one_leaves_the_last_keys_in_force(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keys.json"
    made = write_keys(path)
    now = [0.0]
    keys = KeyFile(str(path), clock=lambda: now[0])
    assert keys.identify(made["acme-viewer"]) is not None
    revoke(path, made["acme-viewer"])
    assert keys.identify(made["acme-viewer"]) is not None  # not looked at again within CHECK_S
    now[0] += KeyFile.CHECK_S
    assert keys.identify(made["acme-viewer"]) is None
    path.write_text("{half written")
    now[0] += KeyFile.CHECK_S
    assert keys.identify(made["acme-submitter"]) == Principal("acme", Role.SUBMITTER)
    assert "not valid JSON" in caplog.text and "the keys read before stay in force" in caplog.text
    path.unlink()
    now[0] += KeyFile.CHECK_S
    assert keys.identify(made["acme-submitter"]) is not None
    assert caplog.text.count("stay in force") == 2  # once per change, not at every look
    # A file that could not be read at one look is read at the next, though nothing about it changed
    # since (a mode fixed with chmod changes neither its size nor its modification time).
    fresh = write_keys(path)
    unreadable = ConfigError("SENTINEL_API_KEYS_FILE cannot be read: Permission denied")
    with monkeypatch.context() as patched:
        patched.setattr(KeyRing, "from_file", classmethod(lambda cls, p: (_ for _ in ()).throw(unreadable)))
        now[0] += KeyFile.CHECK_S
        assert keys.identify(made["acme-submitter"]) is not None  # the old keys, still
    now[0] += KeyFile.CHECK_S
    assert keys.identify(made["acme-submitter"]) is None and keys.identify(fresh["acme-submitter"]) is not None


async def test_an_open_stream_ends_when_its_key_is_moved_to_another_tenant(api: Api, tmp_path: Path) -> None:
    viewer = api.md("acme-viewer")
    first = (await api.jobs.Submit(request("first"), metadata=api.md("acme-submitter"))).job_id
    watch = api.admin.WatchEvents(pb.WatchEventsRequest(cursor="0-0"), metadata=viewer, timeout=30)
    for _ in range(100):
        opened = await watch.read()
        assert isinstance(opened, pb.QueueEvent), opened
        if opened.job_id == first:
            break
    keys_file = tmp_path / "keys.json"
    entries = json.loads(keys_file.read_text())["keys"]
    for entry in entries:
        if entry["sha256"] == hash_key(api.keys["acme-viewer"]):
            entry["tenant"] = "globex"
    staged = keys_file.with_suffix(".new")
    staged.write_text(json.dumps({"keys": entries}))
    staged.replace(keys_file)

    async def moved() -> bool:
        return (await api.jobs.ListJobs(pb.ListJobsRequest(), metadata=viewer, timeout=5)).jobs == []

    await wait_for(moved, within=10, what="the key to act for globex")
    await api.jobs.Submit(request("second"), metadata=api.md("acme-submitter"))
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        for _ in range(100):
            event = await watch.read()
            assert isinstance(event, pb.QueueEvent) and event.job_id == first, f"after the move: {event}"
    assert ended.value.code() is Code.UNAUTHENTICATED
