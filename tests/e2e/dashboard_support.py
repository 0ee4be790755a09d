"""The dashboard's test rig: the stack with API keys and HTTP on, Chromium pages that fail the test
on a script error or a CSP refusal, direct HTTP calls with a role's key, and screenshots to look at.

Each screenshot is saved under the test's temp dir (printed) and copied to `tests/e2e/screens/`
(git-ignored), so a person can look at every page the tests visited after a run.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import APIRequestContext, Browser, Page, Playwright, async_playwright, expect

from tests.e2e.conftest import Service, Stack
from tests.support import CHROMIUM_ARGS, ROLES, chromium_path, free_port, wait_for, write_keys

SCREENS = Path(__file__).with_name("screens")
TENANT = "acme"  # one of the tenants of tests.support.write_keys
#: Playwright's waits (ms): wide, for a machine whose cores are shared.
WAIT_MS = 30_000

JSON = dict[str, Any]


@dataclass
class Dashboard:
    url: str  # the dashboard: http://127.0.0.1:<port>/
    site: str  # the pages the test jobs visit
    keys: dict[str, str]  # role → key, all of tenant TENANT
    env: dict[str, str]  # what the API and executors share (the keys)
    api: Service
    api_env: dict[str, str]  # the API's own: env and its HTTP listener, to restart it as it was
    http: APIRequestContext
    shots: Path
    problems: list[str] = field(default_factory=list)
    #: Console errors a test causes on purpose (substrings), besides refusals (401, 403).
    tolerated: list[str] = field(default_factory=list)

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    async def call(self, method: str, path: str, *, role: str = "admin", body: JSON | None = None) -> tuple[int, JSON]:
        """An HTTP API call with a role's key: the status and the envelope."""
        reply = await self.http.fetch(f"/api/v1{path}", method=method, headers=self.auth(role), data=body)
        return reply.status, await reply.json()

    async def submit(self, steps: list[JSON], *, name: str, role: str = "admin", **options: Any) -> str:
        definition = {"name": name, "baseUrl": self.site, "steps": steps}
        status, envelope = await self.call(
            "POST", "/tests/execute", role=role, body={"testDefinition": definition, "options": options}
        )
        assert status == 202, envelope
        return str(envelope["data"]["testId"])

    async def wait_job(self, job_id: str, *states: str, within: float = 60) -> JSON:
        """The job once its status is one of `states`; the failure names the status last seen."""
        seen: list[JSON] = []

        async def reached() -> JSON | None:
            _, envelope = await self.call("GET", f"/tests/{job_id}/status")
            seen[:] = [envelope["data"]]
            return seen[0] if seen[0]["status"] in states else None

        return await wait_for(reached, within=within, what=lambda: f"job {job_id} to be {states} (seen {seen})")


@pytest.fixture
async def playwright() -> AsyncIterator[Playwright]:
    async with async_playwright() as pw:
        yield pw


@pytest.fixture
async def browser(playwright: Playwright) -> AsyncIterator[Browser]:
    chromium = await playwright.chromium.launch(executable_path=chromium_path(), args=list(CHROMIUM_ARGS))
    try:
        yield chromium
    finally:
        await chromium.close()


@pytest.fixture
async def dashboard(stack: Stack, playwright: Playwright, tmp_path: Path) -> AsyncIterator[Dashboard]:
    """`sentinel api` with keys and HTTP on (no executor: tests that run jobs ask for `executor`)."""
    keys_file = tmp_path / "keys.json"
    made = write_keys(keys_file)
    keys = {role: made[f"{TENANT}-{role}"] for role in ROLES}
    port = free_port()
    env = {"SENTINEL_AUTH": "keys", "SENTINEL_API_KEYS_FILE": str(keys_file)}
    api_env = {**env, "API_HTTP_HOST": "127.0.0.1", "API_HTTP_PORT": str(port)}
    api = stack.start("api", **api_env)
    url = f"http://127.0.0.1:{port}/"
    http = await playwright.request.new_context(base_url=url.rstrip("/"))
    await wait_for(lambda: _answers(http), within=30, what=f"the dashboard at {url}")
    shots = tmp_path / "screens"
    shots.mkdir()
    try:
        yield Dashboard(url=url, site=stack.site, keys=keys, env=env, api=api, api_env=api_env, http=http, shots=shots)
    finally:
        await http.dispose()
        print(f"dashboard screenshots: {shots} (copied to {SCREENS})")


async def _answers(http: APIRequestContext) -> bool:
    reply = await http.get("/", fail_on_status_code=False)
    return reply.ok


@pytest.fixture
def executor(stack: Stack, dashboard: Dashboard) -> None:
    stack.start("executor", **dashboard.env)


OpenPage = Callable[..., Awaitable[Page]]


@pytest.fixture
async def open_page(browser: Browser, dashboard: Dashboard) -> AsyncIterator[OpenPage]:
    """Opens pages (desktop 1280×800 unless told) that record what a person would call broken:
    script errors, console errors other than the expected refusals, and a key in any URL."""
    contexts = []
    urls: list[str] = []

    def console(text: str, kind: str) -> None:
        # Chromium logs each refused fetch; refusals are what some tests are about.
        expected = "Failed to load resource" in text and ("401" in text or "403" in text)
        expected = expected or any(t in text for t in dashboard.tolerated)
        if kind == "error" and not expected:
            dashboard.problems.append(f"console: {text}")

    async def open_(*, width: int = 1280, height: int = 800, phone: bool = False) -> Page:
        context = await browser.new_context(
            viewport={"width": width, "height": height},
            is_mobile=phone,
            has_touch=phone,
            device_scale_factor=2 if phone else 1,
        )
        contexts.append(context)
        page = await context.new_page()
        page.on("console", lambda m: console(m.text, m.type))
        page.on("pageerror", lambda e: dashboard.problems.append(f"page error: {e}"))
        page.on("request", lambda r: urls.append(r.url))
        return page

    yield open_
    for context in contexts:
        await context.close()
    assert not dashboard.problems, dashboard.problems
    leaked = [u for u in urls for key in dashboard.keys.values() if key in u]
    assert not leaked, f"an API key went into a URL: {leaked}"


async def sign_in(page: Page, dashboard: Dashboard, role: str) -> None:
    await page.goto(dashboard.url)
    await page.get_by_label("API key").fill(dashboard.keys[role])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Queue", level=1)).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator(".topbar .who-text")).to_have_text(f"{TENANT} · {role}")


async def open_view(page: Page, name: str) -> None:
    """Follow the top bar's link to a view, and wait for its heading."""
    await page.get_by_role("link", name=name).click()
    await expect(page.get_by_role("heading", name=name, level=1)).to_be_visible()


async def go(page: Page, route: str) -> None:
    """Move to a route the way a link does: a new hash, no reload."""
    await page.evaluate("route => { location.hash = route; }", route)


async def snap(page: Page, dashboard: Dashboard, name: str) -> Path:
    """A full-page screenshot for a person to look at; the page must not scroll sideways."""
    path = dashboard.shots / f"{name}.png"
    await page.screenshot(path=path, full_page=True, animations="disabled")
    SCREENS.mkdir(exist_ok=True)
    shutil.copy(path, SCREENS / path.name)
    overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{name}: the page is {overflow}px wider than its viewport"
    return path
