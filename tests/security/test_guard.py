"""The navigation guard: the policy's address checks, and real Chromium against two loopback servers."""

from __future__ import annotations

import http.server
import ipaddress
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from executor_service.browser import BrowserManager
from executor_service.evidence import Evidence
from executor_service.navigation_policy import NavigationPolicy, is_denied_address
from executor_service.runner import run_steps
from shared.errors import ConfigError
from shared.model import ArtifactPolicy, ErrorCategory, ExpectText, Navigate, Step, TestDefinition
from tests.support import CHROMIUM_ARGS, Rebinding, chromium_path, closed_port

#: Where runs that keep no artifacts make them anyway (never used: their policy is NEVER).
SPOOL = Path(tempfile.gettempdir()) / "sentinel-test-spool"


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "100.64.0.1",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::",
        # IPv6 forms that carry an IPv4 address traffic reaches: by that address.
        "::127.0.0.1",  # IPv4-compatible
        "::ffff:0:7f00:1",  # IPv4-translated (SIIT)
        "64:ff9b::a9fe:a9fe",  # NAT64 to 169.254.169.254, the cloud metadata service
        "64:ff9b:1::a00:1",  # NAT64's local-use prefix
        "2002:7f00:1::1",  # 6to4 from 127.0.0.1
    ],
)
def test_non_public_addresses_are_denied(address: str) -> None:
    assert is_denied_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "64:ff9b::808:808", "2002:808:808::1"]
)
def test_public_addresses_pass(address: str) -> None:
    assert not is_denied_address(ipaddress.ip_address(address))


async def refusal(policy: NavigationPolicy, url: str, *, websocket: bool = False) -> str | None:
    return (await policy.vet(url, websocket=websocket)).reason


async def test_policy_checks_scheme_then_address_with_allow_rules() -> None:
    strict = NavigationPolicy()
    assert await refusal(strict, "http://169.254.169.254/latest/meta-data/") is not None
    assert await refusal(strict, "http://127.0.0.1:8080/") is not None
    assert await refusal(strict, "http://localhost/") is not None  # resolved first: loopback
    assert await refusal(strict, "file:///etc/passwd") is not None
    assert await refusal(strict, "ftp://93.184.216.34/") is not None
    assert await refusal(strict, "http://93.184.216.34/") is None
    assert await refusal(strict, "ws://127.0.0.1/", websocket=True) is not None
    allowed = NavigationPolicy.from_rules(["127.0.0.1:8080", "10.0.0.0/8", "intranet.test"])
    assert await refusal(allowed, "http://127.0.0.1:8080/x") is None
    assert await refusal(allowed, "http://127.0.0.1:8081/x") is not None
    assert await refusal(allowed, "https://10.9.8.7/") is None
    with pytest.raises(OSError):  # an allowed name skips the address check, but must resolve to be reached
        await refusal(allowed, "http://intranet.test/")
    by_name = await NavigationPolicy.from_rules(["localhost"]).vet("http://localhost:8080/")
    assert by_name.reason is None and ipaddress.ip_address("127.0.0.1") in by_name.addresses
    assert (await strict.vet("http://93.184.216.34/")).addresses == (ipaddress.ip_address("93.184.216.34"),)
    for bad in ("", "a b", "host:99999", "http://x/"):
        if bad:
            with pytest.raises(ConfigError, match="SENTINEL_NAVIGATION_ALLOW"):
                NavigationPolicy.from_rules([bad])


@dataclass
class Recorder:
    paths: list[str] = field(default_factory=list)


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A context closed while its page still loaded (a refused step ends the test at once):
        # the browser's connection is gone before the answer is written. Anything else is printed.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def serve(
    recorder: Recorder, pages: dict[str, tuple[int, dict[str, str], bytes]], *, host: str = "127.0.0.1", port: int = 0
) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            recorder.paths.append(self.path)
            if self.path == "/events":
                return self._events()
            status, headers, body = pages.get(self.path, (404, {}, b"not here"))
            self.send_response(status)
            for name, value in {"Content-Type": "text/html", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return None

        def _events(self) -> None:
            """Server-sent events: three, 200 ms apart, then the stream stays open (as streams do)."""
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            try:
                for i in range(3):
                    self.wfile.write(f"data: event {i}\n\n".encode())
                    self.wfile.flush()
                    time.sleep(0.2)
                time.sleep(5)
            except OSError:
                pass  # the page went away

    server = QuietServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class Sites:
    allowed: str
    denied: str
    denied_hits: Recorder


SSE_PAGE = (
    b"<title>SSE</title><p id='n'>0</p><script>let n = 0; const es = new EventSource('/events');"
    b" es.onmessage = () => { document.getElementById('n').textContent = String(++n); };</script>"
)


@pytest.fixture
def sites() -> Iterator[Sites]:
    denied_hits = Recorder()
    denied = serve(denied_hits, {"/secret": (200, {}, b"<title>internal</title>secret")})
    d = f"http://127.0.0.1:{denied.server_address[1]}"
    embeds = (
        f'<title>Embeds</title><img src="{d}/img.png"><script src="{d}/x.js"></script>'
        f'<iframe src="{d}/frame"></iframe><p id="ok">loaded</p>'
        f'<script>fetch("{d}/api").catch(() => {{}});'
        f' try {{ new WebSocket("ws://127.0.0.1:{denied.server_address[1]}/ws") }} catch (e) {{}}</script>'
    ).encode()
    allowed = serve(
        Recorder(),
        {
            "/plain": (200, {}, b"<title>Plain</title><p id='ok'>plain</p>"),
            "/embeds": (200, {}, embeds),
            "/redirect": (302, {"Location": f"{d}/secret"}, b""),
            "/sse": (200, {}, SSE_PAGE),
        },
    )
    try:
        yield Sites(allowed=f"http://127.0.0.1:{allowed.server_address[1]}", denied=d, denied_hits=denied_hits)
    finally:
        for s in (allowed, denied):
            s.shutdown()
            s.server_close()


@pytest.fixture
async def guarded(sites: Sites) -> AsyncIterator[BrowserManager]:
    port = sites.allowed.rsplit(":", 1)[1]
    policy = NavigationPolicy.from_rules([f"127.0.0.1:{port}"])
    manager = BrowserManager(executable_path=chromium_path(), args=CHROMIUM_ARGS, policy=policy)
    await manager.start()
    try:
        yield manager
    finally:
        await manager.stop()


async def run(manager: BrowserManager, *steps: Step) -> object:
    session = await manager.new_context()

    async def report(**_: object) -> None:
        pass

    try:
        return await run_steps(
            session,
            TestDefinition(name="guard", steps=steps),
            report=report,
            evidence=Evidence.open(None, job_id="t", attempt=1, spool_root=SPOOL, max_job_bytes=0),
            step_timeout_ms=5000,
            artifact_policy=ArtifactPolicy.NEVER,
        )
    finally:
        await session.close()


async def test_an_allowed_page_runs(guarded: BrowserManager, sites: Sites) -> None:
    outcome = await run(guarded, Step(Navigate(sites.allowed + "/plain")), Step(ExpectText("#ok", "plain")))
    assert outcome.success, outcome  # type: ignore[attr-defined]


async def test_navigating_to_a_denied_address_fails_with_policy_and_sends_nothing(
    guarded: BrowserManager, sites: Sites
) -> None:
    outcome = await run(guarded, Step(Navigate(sites.denied + "/secret")))
    error = outcome.error  # type: ignore[attr-defined]
    assert error.category is ErrorCategory.POLICY and error.step_index == 0
    assert f"navigation guard refused {sites.denied}/secret" in error.message
    assert sites.denied_hits.paths == []


async def test_an_allowed_page_embedding_a_denied_server_sends_it_no_request(
    guarded: BrowserManager, sites: Sites
) -> None:
    outcome = await run(guarded, Step(Navigate(sites.allowed + "/embeds")), Step(ExpectText("#ok", "loaded")))
    error = outcome.error  # type: ignore[attr-defined]
    assert error is not None and error.category is ErrorCategory.POLICY
    assert sites.denied_hits.paths == []


async def test_a_redirect_to_a_denied_address_is_refused_before_it_is_followed(
    guarded: BrowserManager, sites: Sites
) -> None:
    outcome = await run(guarded, Step(Navigate(sites.allowed + "/redirect")))
    error = outcome.error  # type: ignore[attr-defined]
    assert error.category is ErrorCategory.POLICY and "/secret" in error.message
    assert sites.denied_hits.paths == []


async def test_server_sent_events_stream_through_the_guard(guarded: BrowserManager, sites: Sites) -> None:
    # The stream never ends while the step waits: the guard must pass it on as it comes.
    outcome = await run(guarded, Step(Navigate(sites.allowed + "/sse")), Step(ExpectText("#n", "3")))
    assert outcome.success, outcome  # type: ignore[attr-defined]


async def test_a_dns_answer_that_changes_between_requests_reaches_nothing(sites: Sites) -> None:
    """Rebinding: rebind.test first resolves to an allowed address, then to a denied one. The egress
    proxy resolves each request's host itself, checks that answer and connects only to the addresses
    it checked, so the page loads from the allowed server and the next request is refused, unsent."""
    denied_port = int(sites.denied.rsplit(":", 1)[1])
    allowed_hits = Recorder()
    # The allowed server listens at the denied server's port on 127.0.0.2: only the address differs.
    page = b"<link rel='icon' href='data:,'><p id='ok'>plain</p>"  # no favicon request from the allowed page
    allowed = serve(allowed_hits, {"/plain": (200, {}, page)}, host="127.0.0.2", port=denied_port)
    rebinding = Rebinding("rebind.test", first="127.0.0.2", then="127.0.0.1")
    policy = NavigationPolicy(rules=NavigationPolicy.from_rules(["127.0.0.2"]).rules, resolver=rebinding)
    manager = BrowserManager(executable_path=chromium_path(), args=CHROMIUM_ARGS, policy=policy)
    await manager.start()
    try:
        outcome = await run(
            manager,
            Step(Navigate(f"http://rebind.test:{denied_port}/plain")),
            Step(ExpectText("#ok", "plain")),
            Step(Navigate(f"http://rebind.test:{denied_port}/secret")),
        )
    finally:
        await manager.stop()
        allowed.shutdown()
        allowed.server_close()
    error = outcome.error  # type: ignore[attr-defined]
    assert error.step_index == 2 and error.category is ErrorCategory.POLICY
    assert f"http://rebind.test:{denied_port}/secret" in error.message
    assert "rebind.test resolves to 127.0.0.1" in error.message
    assert allowed_hits.paths == ["/plain"]
    assert sites.denied_hits.paths == []
    # Resolved anew for every request (the first answer is never reused); after /secret's 403 page
    # Chromium may ask for its favicon, a third request, refused the same way.
    assert rebinding.answers >= 2


async def test_an_unreachable_allowed_target_fails_as_a_network_error_that_says_why() -> None:
    manager = BrowserManager(
        executable_path=chromium_path(), args=CHROMIUM_ARGS, policy=NavigationPolicy.from_rules(["127.0.0.0/8"])
    )
    await manager.start()
    try:
        outcome = await run(manager, Step(Navigate(f"http://127.0.0.1:{closed_port()}/")))
    finally:
        await manager.stop()
    error = outcome.error  # type: ignore[attr-defined]
    assert error.category is ErrorCategory.NETWORK and "net::ERR_" in error.message
    assert "cannot connect to 127.0.0.1" in error.message  # the egress proxy's reason, not just Chromium's code
