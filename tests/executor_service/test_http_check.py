"""The request step (API checks) run by the real runner through Playwright, against a JSON API this
test serves on 127.0.0.1, behind the navigation guard (only the API's own port is allowed)."""

from __future__ import annotations

import asyncio
import ssl
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from executor_service.browser import BrowserManager
from executor_service.evidence import Evidence
from executor_service.guard import Guard, Session
from executor_service.http_check import ApiSession
from executor_service.http_client import StandaloneClient
from executor_service.navigation_policy import NavigationPolicy
from executor_service.recording import Recording, _Lines
from executor_service.runner import RunOutcome, _masked, needs_browser, open_secrets, run_steps
from shared.artifact_file import FileArtifactStore
from shared.model import (
    ArtifactPolicy,
    ErrorCategory,
    ExpectText,
    JsonExpectation,
    Navigate,
    Request,
    Step,
    TestDefinition,
)
from shared.sealed import Sealer, new_secret_key
from tests.support import CHROMIUM_ARGS, Rebinding, chromium_path, closed_port, free_port, make_cert

KEY = new_secret_key()
TOKEN = "Bearer tok-5ecret-v4lue"
JOB = "job-api"
#: Steps that only get a test to the step it is about: generous for a busy machine.
SLOW_OK_MS = 30_000

USER = {"user": {"name": "ada", "id": 7}, "items": [{"id": 1}, {"id": 2}], "active": True}


@dataclass
class Api:
    """A small JSON API on 127.0.0.1 that records what it was sent."""

    url: str = ""
    away: str = ""  # a server on another port, which the guard does not allow
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    away_seen: list[str] = field(default_factory=list)
    away_headers: list[dict[str, str]] = field(default_factory=list)
    hung: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def paths(self) -> list[str]:
        return [path for _, path, _ in self.seen]


def _routes(api: Api) -> web.Application:
    async def record(request: web.Request) -> None:
        api.seen.append((request.method, request.path_qs, dict(request.headers)))

    async def user(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response(USER)

    async def status(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=int(request.match_info["code"]), text="down for maintenance")

    async def text(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(text="hello, plain text")

    async def echo(request: web.Request) -> web.Response:
        await record(request)
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "x-trace")}
        return web.json_response({"method": request.method, "body": await request.text(), "headers": headers})

    async def echo_html(request: web.Request) -> web.Response:
        # Not JSON, indented: a byte cut of its excerpt can fall inside the echoed header.
        await record(request)
        pad = " " * int(request.query.get("pad", "0"))
        return web.Response(
            text=f"<html>\n{pad}<p>{request.headers.get('Authorization', '')}</p>", content_type="text/html"
        )

    async def hop(request: web.Request) -> web.Response:
        await record(request)
        left = int(request.match_info["n"])
        raise web.HTTPFound("/api/user" if left == 0 else f"/redirect/{left - 1}")

    async def away(request: web.Request) -> web.Response:
        await record(request)
        raise web.HTTPFound(api.away + "/stolen")

    async def cookies(request: web.Request) -> web.Response:
        await record(request)
        response = web.Response(text="two cookies and a repeated header")
        response.headers.add("Set-Cookie", "a=1; Path=/")
        response.headers.add("Set-Cookie", "session=s3cret-session; HttpOnly")
        response.headers.add("X-Multi", "first")
        response.headers.add("X-Multi", "second")
        return response

    async def loop(request: web.Request) -> web.Response:
        await record(request)
        raise web.HTTPFound("/loop")

    async def see_other(request: web.Request) -> web.Response:
        await record(request)
        raise web.HTTPSeeOther("/echo")

    async def hang(request: web.Request) -> web.Response:
        await record(request)
        api.hung.set()
        await api.release.wait()
        return web.json_response({})

    async def login(request: web.Request) -> web.Response:
        await record(request)
        response = web.json_response({"ok": True})
        response.set_cookie("sid", "from-api")
        return response

    async def page_login(request: web.Request) -> web.Response:
        await record(request)
        response = web.Response(text="<h1>signed in</h1>", content_type="text/html")
        response.set_cookie("sid", "from-page")
        return response

    async def whoami(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response({"sid": request.cookies.get("sid")})

    async def last_page(request: web.Request) -> web.Response:
        # A site that shows what it was last sent: the secret header ends up in a page.
        await record(request)
        sent = next((h.get("Authorization", "") for _, path, h in reversed(api.seen) if path == "/echo"), "")
        return web.Response(text=f"<p id='last'>last: {sent}</p>", content_type="text/html")

    async def whoami_page(request: web.Request) -> web.Response:
        await record(request)
        sid = request.cookies.get("sid", "none")
        return web.Response(text=f"<p id='sid'>sid={sid}</p>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/api/user", user)
    app.router.add_get("/cookies", cookies)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/text", text)
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/echo-html", echo_html)
    app.router.add_get("/redirect/{n}", hop)
    app.router.add_get("/away", away)
    app.router.add_get("/loop", loop)
    app.router.add_post("/see-other", see_other)
    app.router.add_get("/hang", hang)
    app.router.add_post("/api/login", login)
    app.router.add_get("/login", page_login)
    app.router.add_get("/api/whoami", whoami)
    app.router.add_get("/whoami", whoami_page)
    app.router.add_get("/last", last_page)
    return app


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    served = Api()
    main, served.url = await _serve(_routes(served))
    other = web.Application()

    async def stolen(request: web.Request) -> web.Response:
        served.away_seen.append(request.path)
        served.away_headers.append(dict(request.headers))
        return web.Response(text="stolen")

    other.router.add_get("/stolen", stolen)
    side, served.away = await _serve(other)
    try:
        yield served
    finally:
        served.release.set()
        await main.cleanup()
        await side.cleanup()


@pytest.fixture
async def browser(api: Api) -> AsyncIterator[BrowserManager]:
    """A guarded manager that allows the API's port only; not started: API checks need no Chromium."""
    policy = NavigationPolicy.from_rules([api.url.removeprefix("http://")])
    manager = BrowserManager(executable_path=chromium_path(), args=CHROMIUM_ARGS, policy=policy)
    try:
        yield manager
    finally:
        await manager.stop()


@dataclass
class Reports:
    calls: list[dict[str, object]] = field(default_factory=list)

    async def __call__(self, **call: object) -> None:
        self.calls.append(call)


@dataclass
class Ran:
    outcome: RunOutcome
    evidence: Evidence
    reports: Reports
    store: Path

    def error(self) -> tuple[ErrorCategory | None, str]:
        assert self.outcome.error is not None, self.outcome
        return self.outcome.error.category, self.outcome.error.message


async def run(
    session: Session | ApiSession,
    steps: list[Step],
    tmp_path: Path,
    *,
    base_url: str,
    trace: bool = False,
) -> Ran:
    """Run `steps` the way executor_service.job does: evidence, recording, steps, close."""
    definition = TestDefinition(name="api", base_url=base_url, steps=tuple(steps))
    store = tmp_path / "store"
    evidence = Evidence.open(
        FileArtifactStore(store, max_artifact_bytes=10**9),
        job_id=JOB,
        attempt=1,
        spool_root=tmp_path / "spool",
        max_job_bytes=10**9,
    )
    recording = Recording(session, evidence, open_secrets(definition, Sealer(KEY)))
    reports = Reports()
    outcome: RunOutcome | None = None
    try:
        if trace:
            await recording.start(title="api")
        outcome = await run_steps(
            session,
            definition,
            report=reports,
            evidence=evidence,
            step_timeout_ms=SLOW_OK_MS,
            artifact_policy=ArtifactPolicy.ON_FAILURE,
            secret_key=KEY,
            recording=recording,
        )
    finally:
        await recording.close(keep=trace or outcome is None or not outcome.success)
        await evidence.close()
    return Ran(outcome, evidence, reports, store)


# --- an API check without a browser ------------------------------------------------------------


async def test_an_all_request_test_passes_without_launching_a_browser(
    browser: BrowserManager, api: Api, tmp_path: Path
) -> None:
    steps = [
        Step(
            Request(
                "/api/user",
                expect_body_contains='"ada"',
                expect_json=(
                    JsonExpectation("$.user.name", '"ada"'),
                    JsonExpectation("$.user.id", "7.0"),
                    JsonExpectation("$.items[*].id", "[1, 2]"),
                    JsonExpectation("$.active", "true"),
                    JsonExpectation("$.items[0]"),
                ),
            ),
            name="user",
        ),
        Step(
            Request("/echo", method="PUT", body='{"x": 1}', expect_json=(JsonExpectation("$.body", '"{\\"x\\": 1}"'),))
        ),
        Step(Request("/status/404", expect_status=404)),
    ]
    assert not needs_browser(TestDefinition(name="api", steps=tuple(steps)))
    session = await browser.new_api_session()
    ran = await run(session, steps, tmp_path, base_url=api.url + "/")

    assert ran.outcome.error is None, ran.outcome.error
    assert [(s.name, s.success, s.http_status) for s in ran.outcome.steps] == [
        ("user", True, 200),
        ("PUT /echo", True, 200),
        ("GET /status/404", True, 404),
    ]
    assert all(s.duration_ms >= 0 and s.artifacts == () for s in ran.outcome.steps)
    assert [m for m, _, _ in api.seen] == ["GET", "PUT", "GET"]
    # A body with no Content-Type is labelled as the page's client (Playwright) labels it.
    assert api.seen[1][2]["Content-Type"] == "application/octet-stream"
    assert api.seen[0][2]["User-Agent"].startswith("Sentinel-API-check/")
    assert [c["percentage"] for c in ran.reports.calls] == [10, 36, 63]
    # The observable: no Chromium was launched, no browser context opened, one HTTP client.
    assert (browser.connected, browser.version) == (False, "")
    assert (browser.contexts_opened, browser.api_sessions_opened) == (0, 1)
    assert ran.evidence.names == [] and ran.evidence.notes == []


@pytest.mark.parametrize(
    ("action", "message", "status"),
    [
        (Request("/status/503"), "expected status 2xx, got 503 (body: 'down for maintenance')", 503),
        (Request("/api/user", expect_status=201), "expected status 201, got 200", 200),
        (Request("/text", expect_body_contains="goodbye"), "body does not contain 'goodbye'", 200),
        (Request("/text", expect_json=(JsonExpectation("$.a"),)), "body is not JSON (body: 'hello, plain text')", 200),
        (
            Request("/api/user", expect_json=(JsonExpectation("$.user.name", '"x"'),)),
            '$.user.name: expected "x", got "ada"',
            200,
        ),
        (Request("/api/user", expect_json=(JsonExpectation("$.active", "1"),)), "$.active: expected 1, got true", 200),
        (Request("/api/user", expect_json=(JsonExpectation("$.user.email"),)), "$.user.email: no value matches", 200),
        (Request("/loop", max_redirects=3), "GET {url}/loop: more than 3 redirects (the last to {url}/loop)", 0),
        (Request("/redirect/0", expect_status=301), "expected status 301, got 302", 302),  # not followed
        (
            Request("/redirect/0", expect_status=302, expect_headers={"Location": "/elsewhere"}),
            "expected header 'Location' to contain '/elsewhere', got '/api/user'",
            302,
        ),
        (
            Request("/api/user", expect_headers={"X-Request-Id": "1"}),
            "expected header 'X-Request-Id' to contain '1', but the response has none",
            200,
        ),
    ],
)
async def test_a_failed_expectation_is_an_assertion_naming_what_was_seen(
    browser: BrowserManager, api: Api, tmp_path: Path, action: Request, message: str, status: int
) -> None:
    session = await browser.new_api_session()
    ran = await run(session, [Step(action), Step(Request("/api/user"))], tmp_path, base_url=api.url)

    category, text = ran.error()
    assert category is ErrorCategory.ASSERTION
    assert text.startswith(message.format(url=api.url)), text
    first, second = ran.outcome.steps
    assert not first.success and first.error == text and first.http_status == status
    assert second.skipped
    # Evidence would have been kept (the run failed): the result says why there is none.
    assert ran.evidence.notes == [Recording.NO_BROWSER]


# --- redirects and the guard -------------------------------------------------------------------


async def test_a_redirect_chain_is_followed_hop_by_hop(browser: BrowserManager, api: Api, tmp_path: Path) -> None:
    steps = [
        Step(Request("/redirect/2", expect_json=(JsonExpectation("$.user.name", '"ada"'),))),
        Step(Request("/see-other", method="POST", body="payload", expect_json=(JsonExpectation("$.method", '"GET"'),))),
    ]
    ran = await run(await browser.new_api_session(), steps, tmp_path, base_url=api.url)

    assert ran.outcome.error is None, ran.outcome.error
    assert api.paths() == ["/redirect/2", "/redirect/1", "/redirect/0", "/api/user", "/see-other", "/echo"]
    assert [s.http_status for s in ran.outcome.steps] == [200, 200]


@pytest.mark.parametrize("with_page", [False, True], ids=["api-only", "mixed"])
async def test_a_repeated_response_header_is_checked_alike_by_both_clients(
    browser: BrowserManager, api: Api, tmp_path: Path, with_page: bool
) -> None:
    session = await (browser.new_context() if with_page else browser.new_api_session())
    expected = {"Set-Cookie": "a=1", "x-multi": "first, second"}
    steps = [
        Step(Request("/cookies", expect_headers=expected)),
        Step(Request("/cookies", expect_headers={"Set-Cookie": "b="})),
    ]
    ran = await run(session, steps, tmp_path, base_url=api.url)

    assert [s.success for s in ran.outcome.steps] == [True, False]
    # A cookie's value is a credential: a failure names the cookies only.
    assert ran.outcome.steps[1].error == "expected header 'Set-Cookie' to contain 'b=', got cookies 'a', 'session'"


async def test_a_step_that_expects_a_redirect_checks_it_and_does_not_follow_it(
    browser: BrowserManager, api: Api, tmp_path: Path
) -> None:
    expectations = {"location": "/redirect/0", "Content-Type": "text/plain"}  # header names in any case
    steps = [Step(Request("/redirect/1", expect_status=302, expect_headers=expectations))]
    ran = await run(await browser.new_api_session(), steps, tmp_path, base_url=api.url)

    assert ran.outcome.error is None, ran.outcome.error
    assert api.paths() == ["/redirect/1"]  # the redirect's target was never asked
    assert [s.http_status for s in ran.outcome.steps] == [302]


async def test_a_redirect_hop_the_guard_refuses_fails_as_policy_and_is_never_sent(
    browser: BrowserManager, api: Api, tmp_path: Path
) -> None:
    ran = await run(await browser.new_api_session(), [Step(Request("/away"))], tmp_path, base_url=api.url)

    category, text = ran.error()
    assert category is ErrorCategory.POLICY
    assert text.startswith(f"navigation guard refused {api.away}/stolen"), text
    assert api.paths() == ["/away"]
    assert api.away_seen == []


async def test_a_first_url_the_guard_refuses_is_never_sent(browser: BrowserManager, api: Api, tmp_path: Path) -> None:
    ran = await run(await browser.new_api_session(), [Step(Request(api.away + "/stolen"))], tmp_path, base_url="")

    assert ran.error()[0] is ErrorCategory.POLICY
    assert api.away_seen == []


async def test_a_redirect_to_another_origin_does_not_carry_secret_or_credential_headers(
    api: Api, tmp_path: Path
) -> None:
    manager = BrowserManager(
        executable_path=chromium_path(), args=CHROMIUM_ARGS, policy=NavigationPolicy.from_rules(["127.0.0.1"])
    )
    headers = {"X-Key": Sealer(KEY).seal("k3y-value"), "Authorization": "Basic YWRhOnB3", "X-Trace": "t-1"}
    try:
        steps = [Step(Request("/away", headers=headers, secret_headers=("X-Key",), expect_body_contains="stolen"))]
        ran = await run(await manager.new_api_session(), steps, tmp_path, base_url=api.url)
    finally:
        await manager.stop()

    assert ran.outcome.error is None, ran.outcome.error
    assert api.seen[0][2]["X-Key"] == "k3y-value" and api.seen[0][2]["Authorization"] == "Basic YWRhOnB3"
    (sent,) = api.away_headers
    assert sent.get("X-Trace") == "t-1"
    assert "X-Key" not in sent and "Authorization" not in sent


async def test_no_answer_is_a_network_error_and_a_slow_one_a_timeout(
    browser: BrowserManager, api: Api, tmp_path: Path
) -> None:
    closed = f"http://127.0.0.1:{closed_port()}"
    policy = NavigationPolicy.from_rules(["127.0.0.1"])
    manager = BrowserManager(executable_path=chromium_path(), args=CHROMIUM_ARGS, policy=policy)
    try:
        refused = await run(
            await manager.new_api_session(), [Step(Request(closed + "/x"))], tmp_path / "a", base_url=""
        )
        slow = await run(
            await manager.new_api_session(),
            [Step(Request(api.url + "/hang"), timeout_ms=1000)],
            tmp_path / "b",
            base_url="",
        )
    finally:
        await manager.stop()

    category, text = refused.error()
    assert category is ErrorCategory.NETWORK
    assert text.startswith(f"GET {closed}/x: no answer"), text
    assert "cannot connect to 127.0.0.1" in text
    assert api.hung.is_set()
    assert slow.error() == (ErrorCategory.TIMEOUT, f"GET {api.url}/hang: no answer within 1000 ms")


async def test_a_request_connects_only_to_the_address_the_guard_checked(tmp_path: Path) -> None:
    """Rebinding: rebind.test first resolves to an allowed address, then to a denied one. The guard
    resolves each request's host once, checks that answer, and the client connects only to the
    addresses it checked: the first request reaches the allowed server (the system resolver does
    not know rebind.test at all, so nothing resolved it again), the second is refused, unsent."""
    port = free_port()
    hits: dict[str, list[str]] = {"127.0.0.2": [], "127.0.0.1": []}
    runners = []
    for host in hits:
        app = web.Application()

        async def seen(request: web.Request, host: str = host) -> web.Response:
            hits[host].append(request.path)
            return web.Response(text=f"from {host}")

        app.router.add_get("/{tail:.*}", seen)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        runners.append(runner)
    rebinding = Rebinding("rebind.test", first="127.0.0.2", then="127.0.0.1")
    policy = NavigationPolicy(rules=NavigationPolicy.from_rules(["127.0.0.2"]).rules, resolver=rebinding)
    manager = BrowserManager(executable_path=chromium_path(), args=CHROMIUM_ARGS, policy=policy)
    steps = [
        Step(Request(f"http://rebind.test:{port}/plain", expect_body_contains="from 127.0.0.2")),
        Step(Request(f"http://rebind.test:{port}/secret")),
    ]
    try:
        ran = await run(await manager.new_api_session(), steps, tmp_path, base_url="")
    finally:
        await manager.stop()
        for runner in runners:
            await runner.cleanup()

    category, text = ran.error()
    assert ran.outcome.steps[0].success and ran.outcome.error is not None and ran.outcome.error.step_index == 1
    assert category is ErrorCategory.POLICY
    assert f"http://rebind.test:{port}/secret" in text and "rebind.test resolves to 127.0.0.1" in text
    assert hits == {"127.0.0.2": ["/plain"], "127.0.0.1": []}
    assert rebinding.answers == 2


# --- HTTPS -------------------------------------------------------------------------------------


@pytest.fixture
async def https_api(tmp_path: Path) -> AsyncIterator[tuple[str, ssl.SSLContext]]:
    """The JSON API over HTTPS on localhost, its certificate signed by a CA of the test's own; yields
    its URL and a TLS context that trusts that CA."""
    ca = make_cert(tmp_path, "ca", None, ca=True)
    make_cert(tmp_path, "server", ca)
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    runner = web.AppRunner(_routes(Api()))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=served).start()
    try:
        yield f"https://localhost:{port}", ssl.create_default_context(cafile=tmp_path / "ca.pem")
    finally:
        await runner.cleanup()


async def test_an_https_check_verifies_the_certificate_of_the_name_it_asked_for(
    https_api: tuple[str, ssl.SSLContext], tmp_path: Path
) -> None:
    url, trusting = https_api
    policy = NavigationPolicy.from_rules([url.removeprefix("https://")])
    steps = [Step(Request("/api/user", expect_json=(JsonExpectation("$.user.name", '"ada"'),)))]

    trusted = await run(ApiSession(StandaloneClient(tls=trusting), Guard(policy)), steps, tmp_path / "a", base_url=url)
    untrusted = await run(ApiSession(StandaloneClient(), Guard(policy)), steps, tmp_path / "b", base_url=url)

    # Connected to the checked address (127.0.0.1), verified as `localhost`, the name in the URL.
    assert trusted.outcome.error is None, trusted.outcome.error
    assert trusted.outcome.steps[0].http_status == 200
    category, text = untrusted.error()
    assert category is ErrorCategory.NETWORK
    assert text.startswith(f"GET {url}/api/user: no answer (the certificate of localhost:"), text
    assert text.endswith("is not trusted: certificate verify failed: unable to get local issuer certificate)"), text


# --- secrets -----------------------------------------------------------------------------------


async def test_a_secret_header_reaches_the_server_and_nothing_else(
    browser: BrowserManager, api: Api, tmp_path: Path
) -> None:
    sealed = Sealer(KEY).seal(TOKEN)
    headers = {"Authorization": sealed, "X-Trace": "visible"}
    steps = [
        Step(
            Request(
                "/echo",
                headers=headers,
                secret_headers=("authorization",),
                expect_json=(JsonExpectation("$.headers.Authorization"),),
            )
        ),
        # The server echoes the header back; the failure's "got" must not show it.
        Step(Request("/echo", headers=headers, secret_headers=("Authorization",), expect_body_contains="never")),
    ]
    ran = await run(await browser.new_api_session(), steps, tmp_path, base_url=api.url)

    assert [h.get("Authorization") for _, _, h in api.seen] == [TOKEN, TOKEN]
    category, text = ran.error()
    assert category is ErrorCategory.ASSERTION
    assert "body does not contain 'never'" in text and "***" in text and "visible" in text
    everything = repr(ran.outcome) + repr(ran.reports.calls) + repr(ran.evidence.notes)
    assert TOKEN not in everything and "tok-5ecret" not in everything
    assert sealed not in repr(ran.reports.calls)


async def test_a_secret_the_failure_excerpt_would_cut_in_two_shows_none_of_it(
    browser: BrowserManager, api: Api, tmp_path: Path
) -> None:
    """The excerpt of an echoed body is cut at 200 characters: wherever that falls in the secret
    header (even with its spaces run together), no part of the secret is shown."""
    sealed = Sealer(KEY).seal(TOKEN)
    session = await browser.new_api_session()
    shown: list[str] = []
    for pad in range(108, 150, 3):  # moves the cut through the echoed token, and past it
        step = Step(
            Request(
                "/echo",
                method="POST",
                body="x" * pad,
                headers={"Authorization": sealed},
                secret_headers=("Authorization",),
                expect_status=201,
            )
        )
        ran = await run(session, [step], tmp_path / str(pad), base_url=api.url)
        _, text = ran.error()
        shown.append(text)
        leaked = [TOKEN[:k] for k in range(3, len(TOKEN) + 1) if TOKEN[:k] in text]
        assert not leaked and "tok-5ecret" not in text, (pad, text)
    assert any("'…" in text for text in shown) and any("***" in text for text in shown)

    # A body that is not JSON, its excerpt cut by bytes before its whitespace is folded.
    for pad in range(760, 800, 5):
        step = Step(
            Request(
                f"/echo-html?pad={pad}",
                headers={"Authorization": sealed},
                secret_headers=("Authorization",),
                expect_json=(JsonExpectation("$.a"),),
            )
        )
        ran = await run(session, [step], tmp_path / f"html-{pad}", base_url=api.url)
        _, text = ran.error()
        leaked = [TOKEN[:k] for k in range(3, len(TOKEN) + 1) if TOKEN[:k] in text]
        assert not leaked and "body is not JSON" in text, (pad, text)

    # A JSON value shown in "got …" is cut at 200 characters too, before the runner masks it.
    for pad in range(150, 190, 3):
        headers = {"X-Trace": "y" * pad, "Authorization": sealed}
        expectation = JsonExpectation("$.headers", equals="{}")
        step = Step(Request("/echo", headers=headers, secret_headers=("Authorization",), expect_json=(expectation,)))
        ran = await run(session, [step], tmp_path / f"json-{pad}", base_url=api.url)
        _, text = ran.error()
        leaked = [TOKEN[:k] for k in range(3, len(TOKEN) + 1) if TOKEN[:k] in text]
        assert not leaked and "got {" in text, (pad, text)


async def test_a_mixed_test_keeps_its_trace_without_the_secret_header(
    browser: BrowserManager, api: Api, tmp_path: Path
) -> None:
    steps = [
        Step(Navigate("/login"), timeout_ms=SLOW_OK_MS),
        Step(Request("/echo", headers={"Authorization": Sealer(KEY).seal(TOKEN)}, secret_headers=("Authorization",))),
        Step(Navigate("/last"), timeout_ms=SLOW_OK_MS),  # the page now shows the header's value
        Step(ExpectText("#last", "last: Bearer "), timeout_ms=SLOW_OK_MS),
    ]
    ran = await run(await browser.new_context(), steps, tmp_path, base_url=api.url, trace=True)

    assert ran.outcome.error is None, ran.outcome.error
    assert [h.get("Authorization") for _, path, h in api.seen if path == "/echo"] == [TOKEN]
    assert ran.evidence.names == ["1/trace.zip"], ran.evidence.notes
    with zipfile.ZipFile(ran.store / JOB / "1" / "trace.zip") as trace:
        data = b"".join(trace.read(name) for name in trace.namelist())
    assert b"last: ***" in data  # the page's snapshot, masked
    assert TOKEN.encode() not in data and b"tok-5ecret" not in data


# --- a page and requests together ---------------------------------------------------------------


async def test_a_mixed_test_shares_cookies_between_the_page_and_its_requests(
    browser: BrowserManager, api: Api, tmp_path: Path
) -> None:
    steps = [
        Step(Navigate("/login"), timeout_ms=SLOW_OK_MS),  # the page gets sid=from-page
        Step(Request("/api/whoami", expect_json=(JsonExpectation("$.sid", '"from-page"'),))),
        Step(Request("/api/login", method="POST")),  # the request gets sid=from-api
        Step(Navigate("/whoami"), timeout_ms=SLOW_OK_MS),
        Step(ExpectText("#sid", "sid=from-api"), timeout_ms=SLOW_OK_MS),
    ]
    assert needs_browser(TestDefinition(name="mixed", steps=tuple(steps)))
    ran = await run(await browser.new_context(), steps, tmp_path, base_url=api.url)

    assert ran.outcome.error is None, ran.outcome.error
    assert [s.http_status for s in ran.outcome.steps] == [200, 200, 200, 200, 0]  # page loads and requests
    assert (browser.contexts_opened, browser.api_sessions_opened) == (1, 0)


def test_a_console_line_is_cut_to_size_only_once_its_secrets_are_masked() -> None:
    lines = _Lines()
    lines.add("p" * 490 + TOKEN + " and after")  # a page that logged a typed secret near the line's end
    [shown] = lines.take(lambda line: _masked(line, (TOKEN,)))
    assert shown == "p" * 490 + "*** and af"  # MAX_LINE_CHARS (500) of the masked line
    assert not any(TOKEN[:k] in shown for k in range(3, len(TOKEN) + 1))
