"""Secret fill values sealed end to end, input limits and malformed requests, and TLS with mTLS."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, TypeAlias

import grpc
import pytest
import redis.asyncio as aioredis
import redis.exceptions as redis_errors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api_service.server import ApiServer
from executor_service.browser import BrowserManager
from executor_service.evidence import Evidence
from executor_service.runner import run_steps
from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from sentinel_cli import healthcheck
from sentinel_cli.redis_proc import free_port
from shared.access import hash_key, new_key
from shared.edge.tls import open_channel
from shared.model import ArtifactPolicy, ExpectText, Fill, Navigate, Step, TestDefinition
from shared.queue import connect
from shared.sealed import SEALED_PREFIX, Sealer, new_secret_key
from shared.settings import ApiSettings, ClientSettings, QueueSettings, RedisSettings, SecuritySettings, TlsSettings
from tests.support import CHROMIUM_ARGS, RedisProcess, chromium_path, make_cert, serve_directory, stored_text, wait_for

#: Where runs that keep no artifacts make them anyway (never used: their policy is NEVER).
SPOOL = Path(tempfile.gettempdir()) / "sentinel-test-spool"

SECRET = "correct-horse-battery"
KEY = new_secret_key()
PAGES = Path(__file__).parents[1] / "executor_service" / "pages"


async def start_api(redis_server: RedisProcess, security: SecuritySettings) -> ApiServer:
    return await ApiServer.start(
        redis=RedisSettings(url=redis_server.url, configured=True),
        queue_settings=QueueSettings(),
        api=ApiSettings(host="127.0.0.1", port=0),
        security=security,
    )


@pytest.fixture
async def api(redis_server: RedisProcess) -> AsyncIterator[pb_grpc.TestExecutionStub]:
    server = await start_api(redis_server, SecuritySettings(secret_key=KEY))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield pb_grpc.TestExecutionStub(channel)
    finally:
        await server.stop(0)


def secret_request() -> pb.SubmitRequest:
    steps = [
        pb.Step(navigate=pb.Navigate(url="https://shop.example.test/")),
        pb.Step(fill=pb.Fill(selector="#password", value=SECRET, secret=True)),
    ]
    return pb.SubmitRequest(definition=pb.TestDefinition(name="login", steps=steps))


async def test_a_secret_value_is_never_stored_in_clear(
    api: pb_grpc.TestExecutionStub, redis_client: aioredis.Redis
) -> None:
    job_id = (await api.Submit(secret_request())).job_id
    stored = await stored_text(redis_client)
    assert SECRET not in stored and SEALED_PREFIX in stored
    job = await api.Status(pb.StatusRequest(job_id=job_id))
    assert SECRET not in str(job)


async def test_without_a_secret_key_secret_values_are_refused(redis_server: RedisProcess) -> None:
    server = await start_api(redis_server, SecuritySettings())
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await pb_grpc.TestExecutionStub(channel).Submit(secret_request())
            assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert SECRET not in str(info.value.details())
    finally:
        await server.stop(0)


async def test_the_runner_types_the_real_value_and_shows_only_stars() -> None:
    sealed = Sealer(KEY).seal(SECRET)
    manager = BrowserManager(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    await manager.start()
    calls: list[str] = []

    async def report(**kwargs: object) -> None:
        calls.append(repr(kwargs))

    try:
        with serve_directory(PAGES) as site:
            session = await manager.new_context()
            steps = (
                Step(Navigate(site + "/echo.html")),
                Step(Fill("#field", sealed, secret=True)),
                Step(ExpectText("#out", SECRET), timeout_ms=3000),
                Step(ExpectText("#out", SECRET + "-not"), timeout_ms=300),
            )
            outcome = await run_steps(
                session,
                TestDefinition(name="s", steps=steps),
                report=report,
                evidence=Evidence.open(None, job_id="t", attempt=1, spool_root=SPOOL, max_job_bytes=0),
                step_timeout_ms=5000,
                artifact_policy=ArtifactPolicy.NEVER,
                secret_key=KEY,
            )
            await session.close()
    finally:
        await manager.stop()
    assert [s.success for s in outcome.steps] == [True, True, True, False]  # typed for real
    # (The expect steps name the text they look for themselves; what the page echoes is masked.)
    assert outcome.steps[3].error.endswith("got '***'") and SECRET not in outcome.steps[1].name
    assert all(SECRET not in c for c in calls if "fill" in c)  # progress of the fill step
    assert "***" in outcome.steps[1].name


async def test_a_message_over_4_mib_is_resource_exhausted(api: pb_grpc.TestExecutionStub) -> None:
    request = pb.SubmitRequest(definition=pb.TestDefinition(name="x" * (5 * 1024 * 1024)))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await api.Submit(request)
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_no_request_field_can_set_tenant_trace_or_attempt() -> None:
    names = {f.name for m in (pb.SubmitRequest, pb.JobOptions, pb.TestDefinition, pb.Step) for f in m.DESCRIPTOR.fields}
    assert not names & {"tenant", "tenant_id", "trace", "traceparent", "trace_context", "attempt"}


_text = st.text(max_size=50) | st.text(max_size=3000)
_steps = st.lists(
    st.builds(
        lambda kind, a, b, n: pb.Step(**{kind: _action(kind, a, b, n)}) if kind else pb.Step(name=a),
        st.sampled_from(["navigate", "click", "fill", "wait", "expect_url", "wait_for", "screenshot", ""]),
        _text,
        _text,
        st.integers(min_value=0, max_value=2**32 - 1),
    ),
    max_size=8,
)


def _action(kind: str, a: str, b: str, n: int) -> Any:
    makers: dict[str, Any] = {
        "navigate": lambda: pb.Navigate(url=a),
        "click": lambda: pb.Click(selector=a),
        "fill": lambda: pb.Fill(selector=a, value=b, secret=n % 2 == 0),
        "wait": lambda: pb.Wait(ms=n),
        "expect_url": lambda: pb.ExpectUrl(pattern=a),
        "wait_for": lambda: pb.WaitFor(selector=a, state=b),
        "screenshot": lambda: pb.Screenshot(name=a),
    }
    return makers[kind]()


_requests = st.builds(
    lambda name, base, steps, prio, tags, n, idem: pb.SubmitRequest(
        definition=pb.TestDefinition(name=name, base_url=base, steps=steps),
        options=pb.JobOptions(
            priority=prio, tags=tags, timeout_ms=n, max_attempts=n % 20, delay_ms=n % 3, idempotency_key=idem
        ),
    ),
    _text,
    st.sampled_from(["", "https://ok.example.test", "javascript:x", "http://[::1", "ftp://a"]) | _text,
    _steps,
    st.integers(min_value=-1, max_value=9),
    st.lists(_text, max_size=25),
    st.integers(min_value=0, max_value=2**32 - 1),
    _text,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=_requests)
async def test_random_and_malformed_submits_never_crash_the_api(
    api: pb_grpc.TestExecutionStub, request: pb.SubmitRequest
) -> None:
    try:
        await api.Submit(request, timeout=10)
    except grpc.aio.AioRpcError as exc:
        allowed = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert exc.code() in allowed, (exc.code(), exc.details())


def _cut(body: bytes) -> bytes:
    """A request cut in half: usually a truncated field, so no longer valid protobuf."""
    return body[: len(body) // 2]


#: Submit without the stub's serializers (a string: grpc.aio's classes are not generic at run time).
RawSubmit: TypeAlias = "grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]"


@pytest.fixture
async def raw_submit(redis_server: RedisProcess) -> AsyncIterator[RawSubmit]:
    """Submit taking raw bytes: the body need not be a valid SubmitRequest at all."""
    server = await start_api(redis_server, SecuritySettings(secret_key=KEY))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield channel.unary_unary("/sentinel.v1.TestExecution/Submit")
    finally:
        await server.stop(0)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=2000) | _requests.map(lambda r: _cut(r.SerializeToString())))
async def test_random_bytes_as_a_submit_are_invalid_argument_never_unknown(raw_submit: RawSubmit, body: bytes) -> None:
    try:
        await raw_submit(body, timeout=10)
    except grpc.aio.AioRpcError as exc:
        allowed = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert exc.code() in allowed, (exc.code(), exc.details())


# --- TLS ----------------------------------------------------------------------------------


async def test_tls_with_mtls_on_127_0_0_1(
    redis_server: RedisProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = make_cert(tmp_path, "ca", None, ca=True)
    make_cert(tmp_path, "server", ca)
    make_cert(tmp_path, "client", ca)
    other_ca = make_cert(tmp_path, "other-ca", None, ca=True)
    make_cert(tmp_path, "stranger", other_ca)
    tls = TlsSettings(
        cert_file=str(tmp_path / "server.pem"),
        key_file=str(tmp_path / "server.key"),
        client_ca_file=str(tmp_path / "ca.pem"),
    )
    key = new_key()
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps({"keys": [{"tenant": "t", "role": "viewer", "sha256": hash_key(key)}]}))
    server = await start_api(redis_server, SecuritySettings(tls=tls, auth_disabled=False, keys_file=str(keys_file)))
    address = f"localhost:{server.port}"
    base = ClientSettings(api=address, tls=True, tls_ca=str(tmp_path / "ca.pem"))
    try:
        good = ClientSettings(
            **{**base.__dict__, "tls_cert": str(tmp_path / "client.pem"), "tls_key": str(tmp_path / "client.key")}
        )
        keyed = ClientSettings(**{**good.__dict__, "api_key": key})
        async with open_channel(keyed) as channel:  # the key rides on TLS as call credentials
            stub = pb_grpc.TestExecutionStub(channel)
            assert list((await stub.ListJobs(pb.ListJobsRequest(), timeout=10)).jobs) == []
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                async for _ in stub.StreamProgress(pb.StreamProgressRequest(job_id="x"), timeout=10):
                    pass
            assert missing.value.code() is grpc.StatusCode.NOT_FOUND
        async with open_channel(good) as channel:  # TLS and mTLS pass, but without a key: no entry
            with pytest.raises(grpc.aio.AioRpcError) as keyless:
                await pb_grpc.TestExecutionStub(channel).ListJobs(pb.ListJobsRequest(), timeout=10)
            assert keyless.value.code() is grpc.StatusCode.UNAUTHENTICATED
        for bad in (
            base,  # no client certificate
            ClientSettings(
                **{
                    **base.__dict__,
                    "tls_cert": str(tmp_path / "stranger.pem"),
                    "tls_key": str(tmp_path / "stranger.key"),
                }
            ),
        ):
            async with open_channel(bad) as channel:
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await pb_grpc.TestExecutionStub(channel).ListJobs(pb.ListJobsRequest(), timeout=5)
                assert info.value.code() is grpc.StatusCode.UNAVAILABLE
        # The container health probe speaks TLS (and mTLS) when the environment says so.
        monkeypatch.setenv("SENTINEL_TLS_CA", str(tmp_path / "ca.pem"))
        monkeypatch.setenv("SENTINEL_TLS_CLIENT_CERT", str(tmp_path / "client.pem"))
        monkeypatch.setenv("SENTINEL_TLS_CLIENT_KEY", str(tmp_path / "client.key"))
        assert await asyncio.to_thread(healthcheck.check, address) == "SERVING"
        async with grpc.aio.insecure_channel(address) as plain:  # plaintext to a TLS port fails
            with pytest.raises(grpc.aio.AioRpcError):
                await pb_grpc.TestExecutionStub(plain).ListJobs(pb.ListJobsRequest(), timeout=5)
    finally:
        await server.stop(0)


def test_executor_tls_requires_a_client_ca(tmp_path: Path) -> None:
    for name in ("c.pem", "k.pem"):
        (tmp_path / name).write_text("x")
    env = {
        "SENTINEL_AUTH": "disabled",
        "SENTINEL_TLS_CERT": str(tmp_path / "c.pem"),
        "SENTINEL_TLS_KEY": str(tmp_path / "k.pem"),
    }
    assert SecuritySettings.from_env(env).tls.enabled
    with pytest.raises(Exception, match="SENTINEL_TLS_CLIENT_CA"):
        SecuritySettings.from_env(env, internal=True)


def test_redis_settings_build_a_tls_acl_url() -> None:
    url = RedisSettings.from_env(
        {
            "REDIS_HOST": "r.internal",
            "REDIS_USERNAME": "sentinel",
            "REDIS_PASSWORD": "p@ss",
            "REDIS_TLS": "true",
            "REDIS_TLS_CA": "/etc/ca.pem",
        }
    ).url
    assert url == "rediss://sentinel:p%40ss@r.internal:6379/0?ssl_ca_certs=%2Fetc%2Fca.pem"


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[int]:
    """A real redis-server on 127.0.0.1 speaking TLS only, with the default user off and an ACL user."""
    ca = make_cert(tmp_path, "ca", None, ca=True)
    make_cert(tmp_path, "server", ca)
    port = free_port()
    args = [
        shutil.which("redis-server") or "redis-server",
        "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path), "--save", "",
        "--tls-cert-file", str(tmp_path / "server.pem"), "--tls-key-file", str(tmp_path / "server.key"),
        "--tls-ca-cert-file", str(tmp_path / "ca.pem"), "--tls-auth-clients", "no",
        "--user", "default", "off",
        "--user", "sentinel", "on", ">s3cret", "~*", "&*", "+@all",
    ]  # fmt: skip
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_redis_over_tls_with_an_acl_user(tls_redis: int, tmp_path: Path) -> None:
    env = {
        "REDIS_HOST": "localhost", "REDIS_PORT": str(tls_redis), "REDIS_TLS": "true",
        "REDIS_TLS_CA": str(tmp_path / "ca.pem"), "REDIS_USERNAME": "sentinel", "REDIS_PASSWORD": "s3cret",
    }  # fmt: skip
    client = connect(RedisSettings.from_env(env))
    try:
        await wait_for(client.ping, within=10, what="redis over TLS", ignoring=(OSError, redis_errors.ConnectionError))
        assert await client.acl_whoami() == "sentinel"
    finally:
        await client.aclose()
    wrong = connect(RedisSettings.from_env({**env, "REDIS_PASSWORD": "nope"}))
    try:
        with pytest.raises(redis_errors.AuthenticationError):
            await wrong.ping()
    finally:
        await wrong.aclose()
