"""What a browser meets: CORS only for the listed origins, CSP and nosniff on every answer, the
dashboard's files (and nothing outside them), artifacts downloaded streamed with the right headers,
and no HTTP at all when API_HTTP_PORT is 0."""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from api_service.http.context import Backend
from api_service.http.server import CONTENT_SECURITY_POLICY, build_app
from api_service.server import ApiServer
from shared.artifact_store import CHUNK_SIZE
from shared.model import StepResult
from shared.settings import ApiSettings, ArtifactSettings, QueueSettings, RedisSettings, SecuritySettings, TlsSettings
from tests.api_service.http.conftest import Http, start_http, submit
from tests.artifact_helpers import finished_job, fresh_store, put_all
from tests.support import RedisProcess, free_port, make_cert

ALLOWED = "https://dash.example.test"


@pytest.fixture
async def cors(redis_server: RedisProcess, redis_client: aioredis.Redis) -> AsyncIterator[Http]:
    api = ApiSettings(host="127.0.0.1", port=0, http_port=free_port(), http_cors_origins=(ALLOWED,))
    async for harness in start_http(redis_server, redis_client, api=api):
        yield harness


def assert_protected(headers: object) -> None:
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY  # type: ignore[index]
    assert headers["X-Content-Type-Options"] == "nosniff"  # type: ignore[index]


async def test_a_listed_origin_gets_cors_and_any_other_is_refused(cors: Http) -> None:
    allowed = await cors.call("GET", "/whoami", headers={"Origin": ALLOWED})
    assert allowed.status == 200 and allowed.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Origin" in allowed.headers.getall("Vary")
    preflight = await cors.session.options(
        f"{cors.base}/api/v1/tests/execute",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status == 204 and preflight.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]

    for origin in ("https://evil.example.test", "null"):
        refused = await cors.call("POST", "/queue/pause", headers={"Origin": origin})
        assert refused.status == 403 and "Access-Control-Allow-Origin" not in refused.headers
        pre = await cors.session.options(
            f"{cors.base}/api/v1/queue/pause", headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
        )
        assert pre.status == 403 and "Access-Control-Allow-Origin" not in pre.headers
    assert (await cors.call("GET", "/queue/stats")).data["paused"] is False  # nothing was paused
    # The API's own page (same origin) needs no listing.
    own = await cors.call("GET", "/whoami", headers={"Origin": cors.base})
    assert own.status == 200 and "Access-Control-Allow-Origin" not in own.headers


async def test_behind_a_reverse_proxy_that_rewrites_host_the_dashboard_works(keyed: Http) -> None:
    """nginx's default `proxy_pass` sends `Host: sentinel:8080`; the browser sends the public origin.
    The dashboard's files are served whatever the origin (a module script is fetched in CORS mode),
    and the API's calls are the page's own when the proxy passes the public host on. (With auth
    disabled, a rewritten `Host` must be a trusted one: that guards against DNS rebinding.)"""
    public = "https://sentinel.example.test"
    rewritten = {"Origin": public, "Host": "sentinel:8080"}
    script = await keyed.session.get(f"{keyed.base}/dashboard/app.js", headers=rewritten)
    assert script.status == 200 and "javascript" in script.headers["Content-Type"]
    refused = await keyed.call("POST", "/queue/pause", who="acme-admin", headers=rewritten)
    assert refused.status == 403 and "X-Forwarded-Host" in refused.body["message"]
    assert (await keyed.call("GET", "/queue/stats", who="acme-admin")).data["paused"] is False
    for passed_on in (
        {"X-Forwarded-Host": "sentinel.example.test"},
        {"Forwarded": "for=1.2.3.4;host=sentinel.example.test"},
    ):
        paused = await keyed.call("POST", "/queue/pause", who="acme-operator", headers=rewritten | passed_on)
        assert paused.status == 200 and "Access-Control-Allow-Origin" not in paused.headers
        assert (
            await keyed.call("POST", "/queue/resume", who="acme-operator", headers=rewritten | passed_on)
        ).status == 200
    # Another origin is not made the API's own by a forwarded host that is not its own.
    foreign = await keyed.call(
        "POST",
        "/queue/pause",
        headers={"Origin": "https://evil.example.test", "X-Forwarded-Host": "sentinel.example.test"},
    )
    assert foreign.status == 403


async def test_a_listed_origin_may_read_when_to_try_again(cors: Http) -> None:
    refused = await cors.session.get(f"{cors.base}/api/v1/whoami", headers={"Origin": ALLOWED, "Authorization": ""})
    exposed = {h.strip() for h in refused.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"Retry-After", "WWW-Authenticate", "Content-Disposition"} <= exposed


async def test_without_listed_origins_no_cross_origin_access(http: Http) -> None:
    reply = await http.call("GET", "/whoami", headers={"Origin": ALLOWED})
    assert reply.status == 403 and "Access-Control-Allow-Origin" not in reply.headers


async def test_every_answer_carries_csp_and_nosniff(http: Http) -> None:
    job_id = await submit(http)
    for path in ("/whoami", "/tests/nope/status", "/no/such/route", "/openapi.json"):
        assert_protected((await http.call("GET", path)).headers)
    async with http.session.get(f"{http.base}/api/v1/tests/{job_id}/events") as stream:
        assert_protected(stream.headers)
    async with http.session.get(f"{http.base}/") as page:
        assert_protected(page.headers)


async def test_the_dashboards_files_are_served_and_nothing_outside_them(tmp_path: Path) -> None:
    (tmp_path / "dash").mkdir()
    (tmp_path / "dash" / "index.html").write_text("<!doctype html><title>Sentinel</title>")
    (tmp_path / "dash" / "app.js").write_text("console.log('hi')")
    (tmp_path / "secret.txt").write_text("not for you")
    backend = Backend(queue=None, hub=None, keys=None, dashboard=tmp_path / "dash")  # type: ignore[arg-type]
    async with TestClient(TestServer(build_app(backend))) as client:
        index = await client.get("/")
        assert index.status == 200 and "Sentinel" in await index.text()
        assert index.headers["Content-Type"].startswith("text/html")
        assert_protected(index.headers)
        script = await client.get("/dashboard/app.js")
        assert script.status == 200 and "javascript" in script.headers["Content-Type"]
        assert (await client.get("/dashboard/")).status == 200  # the index too
        for path in ("/dashboard/../secret.txt", "/dashboard/%2e%2e/secret.txt", "/dashboard/nope.js"):
            missing = await client.get(path)
            assert missing.status == 404 and "not for you" not in await missing.text(), path


async def test_artifacts_are_listed_and_downloaded_streamed(
    redis_server: RedisProcess, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    settings = ArtifactSettings.from_env({"SENTINEL_ARTIFACTS_URL": (tmp_path / "artifacts").as_uri()})
    async for http in start_http(redis_server, redis_client, artifacts=settings):
        shot = "1/step-01-failure.png"
        steps = (StepResult(index=1, name="click", success=False, artifacts=(shot,)),)
        job_id = await finished_job(http.queue, steps=steps, artifacts=(shot, "1/trace.zip"))
        trace = bytes(range(256)) * (3 * CHUNK_SIZE // 256 + 7)  # several chunks
        await put_all(await fresh_store(settings), job_id, {shot: b"\x89PNG fake", "1/trace.zip": trace})

        listed = (await http.call("GET", f"/tests/{job_id}/artifacts")).data["artifacts"]
        assert [(a["name"], a["contentType"], a["stepIndex"]) for a in listed] == [
            (shot, "image/png", 1),
            ("1/trace.zip", "application/zip", -1),
        ]
        assert listed[1]["sizeBytes"] == len(trace) and listed[1]["attempt"] == 1 and listed[1]["createdAt"]

        async with http.session.get(f"{http.base}/api/v1/tests/{job_id}/artifacts/1/trace.zip") as resp:
            assert resp.status == 200 and resp.content_length == len(trace)
            assert resp.headers["Content-Type"] == "application/zip"
            assert resp.headers["Content-Disposition"] == 'attachment; filename="trace.zip"'
            assert await resp.read() == trace
        async with http.session.head(f"{http.base}/api/v1/tests/{job_id}/artifacts/1/trace.zip") as resp:
            assert resp.status == 200 and resp.content_length == len(trace) and await resp.read() == b""
            assert resp.headers["Content-Disposition"] == 'attachment; filename="trace.zip"'
        async with http.session.get(f"{http.base}/api/v1/tests/{job_id}/artifacts/1/step-01-failure.png") as resp:
            assert resp.headers["Content-Disposition"].startswith("inline") and await resp.read() == b"\x89PNG fake"
            assert_protected(resp.headers)
        for path, status in (("1/video.webm", 404), ("0/trace.zip", 400), ("x/trace.zip", 400)):
            reply = await http.call("GET", f"/tests/{job_id}/artifacts/{path}")
            assert reply.status == status, (path, reply.body)
        assert (await http.call("GET", "/tests/nope/artifacts")).status == 404


async def test_without_an_artifact_store_artifacts_are_503(http: Http) -> None:
    job_id = await submit(http)
    for path in (f"/tests/{job_id}/artifacts", f"/tests/{job_id}/artifacts/1/trace.zip"):
        reply = await http.call("GET", path)
        assert reply.status == 503 and reply.code == "UNAVAILABLE"


async def test_api_http_port_0_serves_no_http(redis_server: RedisProcess) -> None:
    server = await ApiServer.start(
        redis=RedisSettings(url=redis_server.url, configured=True),
        queue_settings=QueueSettings(),
        api=ApiSettings(host="127.0.0.1", port=0, http_port=0),
    )
    try:
        assert server.http is None
    finally:
        await server.stop(0)


async def test_with_tls_configured_http_is_served_over_tls_with_the_same_certificate(
    redis_server: RedisProcess, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    ca = make_cert(tmp_path, "ca", None, ca=True)
    make_cert(tmp_path, "server", ca)
    tls = TlsSettings(cert_file=str(tmp_path / "server.pem"), key_file=str(tmp_path / "server.key"))
    async for http in start_http(redis_server, redis_client, security=SecuritySettings(tls=tls)):
        trusted = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        url = f"https://localhost:{http.server.http.port if http.server.http else 0}/api/v1/whoami"
        async with http.session.get(url, ssl=trusted) as resp:
            assert resp.status == 200 and (await resp.json())["data"]["tenant"] == "default"
        with pytest.raises(aiohttp.ClientError):
            async with http.session.get(url.replace("https", "http")) as plain:
                await plain.read()


async def test_an_http_port_in_use_fails_the_start_naming_it_and_leaves_nothing_running(
    redis_server: RedisProcess,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match="API_HTTP_PORT"):
            await ApiServer.start(
                redis=RedisSettings(url=redis_server.url, configured=True),
                queue_settings=QueueSettings(),
                api=ApiSettings(host="127.0.0.1", port=0, http_port=port),
            )


REBOUND = "attacker.example:18181"  # a name whose DNS the attacker controls, resolved to this API


async def test_with_auth_disabled_a_dns_rebinding_host_is_refused(http: Http) -> None:
    assert (await http.call("POST", "/queue/pause")).status == 200
    rebound = {"Host": REBOUND, "Origin": f"http://{REBOUND}"}  # same-origin, as the rebound page is
    for method, path in (("POST", "/queue/resume"), ("GET", "/whoami"), ("GET", "/auth")):
        refused = await http.call(method, path, headers=rebound)
        assert refused.status == 403 and refused.code == "PERMISSION_DENIED", (path, refused.body)
        assert "SENTINEL_AUTH=disabled" in refused.body["message"] and "rebinding" in refused.body["message"]
    assert (await http.call("GET", "/queue/stats")).data["paused"] is True  # nothing was resumed
    port = http.base.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"app.localhost:{port}", "127.0.0.2", f"[::1]:{port}", f"192.0.2.7:{port}"):
        own = await http.call("GET", "/whoami", headers={"Host": host, "Origin": f"http://{host}"})
        assert own.status == 200, (host, own.body)


async def test_a_host_named_in_the_cors_origins_or_the_listen_address_is_the_apis_own(cors: Http) -> None:
    listed = await cors.call("GET", "/whoami", headers={"Host": "DASH.example.test"})
    assert listed.status == 200
    assert (await cors.call("GET", "/whoami", headers={"Host": "other.example.test"})).status == 403
    backend = Backend(queue=None, hub=None, keys=None)  # type: ignore[arg-type]
    async with TestClient(TestServer(build_app(backend, listen_host="sentinel.internal"))) as client:
        assert (await client.get("/api/v1/auth", headers={"Host": "sentinel.internal:8080"})).status == 200
        assert (await client.get("/api/v1/auth", headers={"Host": "sentinel.internal.evil:8080"})).status == 403


async def test_with_keys_the_host_is_not_checked(keyed: Http) -> None:
    reply = await keyed.call("GET", "/whoami", who="acme-viewer", headers={"Host": REBOUND})
    assert reply.status == 200  # the key is what admits a caller; a rebound page has none
