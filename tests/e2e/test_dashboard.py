"""The web dashboard in Chromium against the real stack: `sentinel api` (HTTP on, API keys),
`sentinel executor` and redis-server, as a person would use it — sign in, watch figures and a
progress bar move without reloading, open a failed job's screenshot and trace, requeue a dead
letter; a viewer sees no admin controls and the server refuses them; a wrong key is told so; the
pages fit a phone. Every page visited is saved as a screenshot (see `dashboard_support.snap`).
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Locator, Page, Request, expect

from sentinel_client import AsyncClient
from tests.e2e.conftest import Stack
from tests.e2e.dashboard_support import (
    WAIT_MS,
    Dashboard,
    OpenPage,
    browser,
    dashboard,
    executor,
    go,
    open_page,
    open_view,
    playwright,
    sign_in,
    snap,
)
from tests.support import closed_port, free_port, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
__all__ = ["browser", "dashboard", "executor", "open_page", "playwright"]  # fixtures

QUICK: list[dict[str, Any]] = [{"navigate": {"url": "/index.html"}}, {"expectVisible": {"selector": "#heading"}}]
#: Long enough to watch: a dozen steps of 700 ms, each moving the bar.
SLOW: list[dict[str, Any]] = [{"navigate": {"url": "/index.html"}}, *[{"wait": {"ms": 700}} for _ in range(12)]]
FAILING: list[dict[str, Any]] = [
    {"navigate": {"url": "/index.html"}},
    {"fill": {"selector": "#name", "value": "Ada"}},
    {"click": {"selector": "#greet"}},
    {"timeoutMs": 1000, "expectText": {"selector": "#out", "text": "Hi, Grace"}},
]


def closed_port_steps() -> list[dict[str, Any]]:
    """A navigation to a port nobody listens on: a network error, dead-lettered at maxAttempts 1."""
    return [{"navigate": {"url": f"http://127.0.0.1:{closed_port()}/"}}]


def tile(page: Page, label: str) -> Locator:
    """The figure of one of the queue page's tiles ("Waiting", "Completed" …)."""
    label_of = page.locator(".tile-label", has_text=re.compile(f"^{label}$"))
    return page.locator(".tile", has=label_of).locator(".tile-value")


async def not_reloaded(page: Page) -> None:
    await page.evaluate("window.sentinelNotReloaded = true")


async def still_not_reloaded(page: Page) -> bool:
    return bool(await page.evaluate("window.sentinelNotReloaded === true"))


@pytest.mark.usefixtures("executor")
async def test_an_operator_sees_the_queue_figures_and_new_jobs_live(dashboard: Dashboard, open_page: OpenPage) -> None:
    page = await open_page()
    await sign_in(page, dashboard, "operator")
    await not_reloaded(page)
    await expect(page.locator(".live")).to_have_text("Live", timeout=WAIT_MS)
    await expect(page.locator(".health .badge").first).to_have_text("healthy", timeout=WAIT_MS)
    await expect(tile(page, "Completed")).to_have_text("0")

    first = await dashboard.submit(QUICK, name="Home page shows", tags=["smoke"])
    await expect(tile(page, "Completed")).to_have_text("1", timeout=WAIT_MS)
    feed = page.get_by_role("list", name="Recent queue events")
    await expect(feed.locator("li", has_text="completed").get_by_role("link", name=first[:8])).to_be_visible()
    total = page.locator("tr.total")
    await expect(total.locator("td[data-label=Processed]")).to_have_text("1")  # in the lanes table
    # Every figure's header is aligned as a number, the lane's name is not.
    headers = page.get_by_role("table", name="Figures per lane").locator("thead th")
    assert await headers.evaluate_all("ths => ths.map((th) => th.classList.contains('num'))") == [False] + [True] * 10
    await snap(page, dashboard, "queue")

    # Pause and resume: the button, the badge and the health reason follow.
    await page.get_by_role("button", name="Pause queue").click()
    await expect(page.get_by_role("button", name="Resume queue")).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator(".health .badge-paused")).to_be_visible()
    await expect(page.locator(".health .badge").first).to_have_text("degraded")
    await expect(page.locator(".reasons")).to_contain_text("paused")
    await snap(page, dashboard, "queue-paused")
    await page.get_by_role("button", name="Resume queue").click()
    await expect(page.get_by_role("button", name="Pause queue")).to_be_visible(timeout=WAIT_MS)

    await page.get_by_role("link", name="Jobs", exact=True).click()
    await expect(page.get_by_role("heading", name="Jobs", level=1)).to_be_visible()
    await expect(page.locator(f'tr[data-job-id="{first}"]')).to_contain_text("completed", timeout=WAIT_MS)
    await expect(page.locator(".live")).to_have_text("Live", timeout=WAIT_MS)
    second = await dashboard.submit(QUICK, name="Nightly home page", tags=["nightly", "smoke"])
    row = page.locator(f'tr[data-job-id="{second}"]')
    await expect(row).to_be_visible(timeout=WAIT_MS)  # arrived live: no reload, no click
    await expect(page.locator("tbody tr").first).to_have_attribute("data-job-id", second)
    await expect(row.locator(".badge")).to_have_text("completed", timeout=WAIT_MS)
    assert await still_not_reloaded(page)
    await snap(page, dashboard, "jobs")

    await page.get_by_label("Tag", exact=True).fill("nightly")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("tbody tr")).to_have_count(1, timeout=WAIT_MS)
    await expect(page.locator("tbody tr")).to_have_attribute("data-job-id", second)
    assert "tag=nightly" in page.url
    await expect(page.locator(".live")).to_have_text("Live", timeout=WAIT_MS)
    untagged = await dashboard.submit(QUICK, name="Not nightly")
    third = await dashboard.submit(QUICK, name="Another nightly", tags=["nightly"])
    await expect(page.locator("tbody tr").first).to_have_attribute("data-job-id", third, timeout=WAIT_MS)
    await expect(page.locator(f'tr[data-job-id="{untagged}"]')).to_have_count(0)


@pytest.mark.usefixtures("executor")
async def test_a_running_jobs_progress_bar_moves_without_a_reload(dashboard: Dashboard, open_page: OpenPage) -> None:
    page = await open_page()
    await sign_in(page, dashboard, "admin")
    job_id = await dashboard.submit(SLOW, name="Slow walk", tags=["slow"])
    await page.get_by_role("link", name="Jobs", exact=True).click()
    await page.get_by_role("link", name="Slow walk").click()
    await expect(page.get_by_role("heading", name="Slow walk", level=1)).to_be_visible(timeout=WAIT_MS)
    assert page.url.endswith(f"#/jobs/{job_id}")
    await not_reloaded(page)

    bar = page.get_by_role("progressbar", name="Job progress")
    seen: list[int] = []

    async def moved_twice() -> bool:
        value = int(await bar.get_attribute("aria-valuenow", timeout=WAIT_MS) or -1)
        if not seen or seen[-1] != value:
            seen.append(value)
        return len(seen) >= 3 and seen[-1] > 10  # past "browser ready", into the steps

    await wait_for(moved_twice, within=60, interval=0.1, what=lambda: f"the bar to move twice (seen {seen})")
    assert seen == sorted(seen) and 0 < seen[-1] < 100, seen
    await expect(page.locator(".progress-message")).to_contain_text("%")
    await snap(page, dashboard, "job-running")

    await expect(page.locator(".view-head .badge")).to_have_text("completed", timeout=WAIT_MS * 2)
    assert await still_not_reloaded(page)
    steps = page.get_by_role("region", name="Steps of this job").locator("tbody tr")
    await expect(steps).to_have_count(len(SLOW))
    await expect(steps.locator(".badge-step-passed")).to_have_count(len(SLOW))
    await snap(page, dashboard, "job-completed")


@pytest.mark.usefixtures("executor")
async def test_a_job_page_picks_its_stream_up_again_after_the_api_restarts(
    stack: Stack, dashboard: Dashboard, open_page: OpenPage
) -> None:
    page = await open_page()
    await sign_in(page, dashboard, "admin")
    job_id = await dashboard.submit(SLOW, name="Outlives a restart")
    dashboard.tolerated.append("ERR_CONNECTION_REFUSED")  # while the API is down
    resumed: list[str] = []  # each events request's Last-Event-ID ("" for none)
    page.on(
        "request",
        lambda r: resumed.append(r.headers.get("last-event-id", "")) if r.url.endswith(f"{job_id}/events") else None,
    )
    await go(page, f"#/jobs/{job_id}")
    bar = page.get_by_role("progressbar", name="Job progress")
    await expect(bar).to_have_attribute("aria-valuenow", re.compile(r"^(1[1-9]|[2-9][0-9])$"), timeout=WAIT_MS)
    await not_reloaded(page)

    await asyncio.to_thread(stack.restart, dashboard.api, **dashboard.api_env)
    await expect(page.locator(".view-head .badge")).to_have_text("completed", timeout=WAIT_MS * 2)
    assert await still_not_reloaded(page)
    assert resumed[0] == "" and len(resumed) >= 2 and all(resumed[1:]), resumed
    steps = page.get_by_role("region", name="Steps of this job").locator(".badge-step-passed")
    await expect(steps).to_have_count(len(SLOW))


@pytest.mark.usefixtures("executor")
async def test_a_failed_job_shows_its_screenshot_inline_and_offers_its_trace(
    dashboard: Dashboard, open_page: OpenPage, tmp_path: Path
) -> None:
    job_id = await dashboard.submit(FAILING, name="Greets Grace", maxAttempts=1, tags=["greeting"])
    await dashboard.wait_job(job_id, "failed")
    page = await open_page()
    await sign_in(page, dashboard, "admin")
    fetched: list[str] = []  # the files fetched, as "<run>/<file>"; each with the key in its header
    page.on("request", lambda r: fetched.append(artifact_fetched(r, dashboard)) if "/artifacts/" in r.url else None)
    await go(page, f"#/jobs/{job_id}")

    await expect(page.get_by_role("heading", name="Greets Grace", level=1)).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator(".view-head .badge")).to_have_text("failed")
    error = page.get_by_role("region", name="Error")
    await expect(error).to_contain_text("assertion")
    await expect(error).to_contain_text("at step 4")
    steps = page.get_by_role("region", name="Steps of this job").locator("tbody tr")
    await expect(steps).to_have_count(4)
    await expect(steps.nth(3).locator(".badge")).to_have_text("failed")

    shot = page.get_by_role("img", name=re.compile("^Failure screenshot"))
    await expect(shot).to_have_attribute("src", re.compile("^blob:"), timeout=WAIT_MS)
    width = await wait_for(
        lambda: shot.evaluate("img => img.complete && img.naturalWidth"), within=30, what="the screenshot to load"
    )
    assert width > 0

    # Only what is shown is fetched: the screenshots; the trace when its download is clicked.
    trace = page.get_by_role("link", name="Download trace.zip")
    await expect(trace).to_have_attribute("download", "trace.zip")
    await expect(trace).not_to_have_attribute("href", re.compile("^blob:"))
    assert sorted(fetched) == await shown_screenshots(page)
    saved = await download(page, trace, tmp_path)
    assert saved.name == "trace.zip" and fetched.count("1/trace.zip") == 1, fetched
    with zipfile.ZipFile(io.BytesIO(saved.read_bytes())) as archive:
        assert archive.testzip() is None and archive.namelist()
    await download(page, trace, tmp_path)  # again: the same bytes, not fetched twice
    assert fetched.count("1/trace.zip") == 1, fetched
    await snap(page, dashboard, "job-failed")

    attempt = page.locator("dl.meta div").filter(has=page.locator("dt", has_text=re.compile("^Attempt$"))).locator("dd")
    await expect(attempt).to_have_text("1 of 1")
    await expect(page.get_by_text("latest run")).to_have_count(0)

    fetched.clear()
    await page.get_by_role("button", name="Run again").click()  # followed live again, to its end
    await expect(page.locator(".view-head .badge")).not_to_have_text("failed", timeout=WAIT_MS)
    await expect(page.locator(".view-head .badge")).to_have_text("failed", timeout=WAIT_MS * 2)
    # The rerun's attempts start over, its files are named by run beside the first run's.
    await expect(attempt).to_have_text("1 of 1 · run 2", timeout=WAIT_MS)
    evidence = page.get_by_role("region", name="Evidence")
    await expect(evidence.get_by_text("Run 2 is the job's latest run.")).to_be_visible(timeout=WAIT_MS)
    failure = page.get_by_role("img", name=re.compile("^Failure screenshot — step 4, run 2"))
    await expect(failure).to_have_attribute("src", re.compile("^blob:"), timeout=WAIT_MS)
    # The latest run's screenshots inline; the first run's files are downloads, fetched when clicked.
    shown = await shown_screenshots(page)
    assert shown and all(name.startswith("2/") for name in shown) and sorted(fetched) == shown, fetched
    downloads = evidence.get_by_role("list", name="Files").get_by_role("link")
    await expect(downloads.first).to_have_text("Download trace.zip (run 2)")
    await expect(downloads.first).to_have_attribute("data-artifact", "2/trace.zip")
    await expect(downloads.filter(has_text="Download trace.zip (run 1)")).to_have_count(1)
    earlier = downloads.filter(has_text="Download step-03-failure.png (run 1)")
    saved = await download(page, earlier, tmp_path)
    assert saved.name == "step-03-failure.png" and saved.read_bytes().startswith(b"\x89PNG"), saved
    assert "1/step-03-failure.png" in fetched and not any(n.endswith("trace.zip") for n in fetched), fetched
    await snap(page, dashboard, "job-rerun")


def artifact_fetched(request: Request, dashboard: Dashboard) -> str:
    """An artifact request's "<run>/<file>" if it sent the key in its header (never in the URL)."""
    if request.headers.get("authorization") != f"Bearer {dashboard.keys['admin']}":
        return f"without the key: {request.url}"
    return "/".join(request.url.split("/artifacts/", 1)[1].split("/")[-2:])


async def shown_screenshots(page: Page) -> list[str]:
    """The artifacts shown inline ("<run>/<file>", sorted), once every one of them has loaded."""
    shots = page.get_by_role("region", name="Evidence").locator("img.shot")
    await expect(shots.first).to_be_visible(timeout=WAIT_MS)
    loaded = "imgs => imgs.every((img) => img.src.startsWith('blob:') && img.complete)"
    await wait_for(lambda: shots.evaluate_all(loaded), within=30, what="the screenshots to load")
    return sorted(await shots.evaluate_all("imgs => imgs.map((img) => img.dataset.artifact)"))


async def download(page: Page, link: Locator, folder: Path) -> Path:
    """Click a download link; the file saved under the name the page gave it."""
    async with page.expect_download(timeout=WAIT_MS) as started:
        await link.click()
    download = await started.value
    saved = folder / download.suggested_filename
    await download.save_as(saved)
    return saved


@pytest.mark.usefixtures("executor")
async def test_a_dead_letter_is_requeued_from_its_page(dashboard: Dashboard, open_page: OpenPage) -> None:
    job_id = await dashboard.submit(closed_port_steps(), name="Status page", maxAttempts=1, tags=["nightly"])
    before = await dashboard.wait_job(job_id, "failed")
    page = await open_page()
    await sign_in(page, dashboard, "admin")
    await open_view(page, "Dead letters")
    row = page.locator(f'tr[data-job-id="{job_id}"]')
    await expect(row).to_contain_text("Status page", timeout=WAIT_MS)
    await expect(row).to_contain_text("network")
    await snap(page, dashboard, "dead-letters")

    await row.get_by_role("button", name="Requeue Status page").click()
    await expect(page.get_by_role("status").filter(has_text="Requeued")).to_be_visible(timeout=WAIT_MS)
    await expect(row).to_have_count(0)
    await snap(page, dashboard, "dead-letters-requeued")

    async def ran_again() -> bool:
        _, envelope = await dashboard.call("GET", f"/tests/{job_id}/status")
        job = envelope["data"]
        return bool(job["status"] == "failed" and job["finishedAt"] != before["finishedAt"])

    await wait_for(ran_again, within=60, what=f"job {job_id} to run again after the requeue")

    # It gave up again; this time it is purged.
    await go(page, "#/queue")
    await go(page, "#/dead-letters")
    await expect(row).to_be_visible(timeout=WAIT_MS)
    await page.get_by_role("button", name="Purge…").click()
    await page.get_by_role("button", name="Yes, purge").click()
    await expect(page.get_by_role("status").filter(has_text="Purged 1 dead letter.")).to_be_visible(timeout=WAIT_MS)
    await expect(page.get_by_text("No dead letters.")).to_be_visible()
    _, listed = await dashboard.call("GET", "/queue/dead-letters")
    assert listed["data"]["deadLetters"] == []


async def test_a_viewer_sees_no_admin_controls_and_the_server_refuses_them(
    dashboard: Dashboard, open_page: OpenPage
) -> None:
    job_id = await dashboard.submit(SLOW, name="Waits for an executor")  # none runs: it stays pending
    page = await open_page()
    await sign_in(page, dashboard, "viewer")
    await expect(page.locator(".health .badge").first).to_be_visible(timeout=WAIT_MS)
    await expect(tile(page, "Waiting")).to_have_text("1", timeout=WAIT_MS)
    admin_only = re.compile("Pause|Resume|Requeue|Purge|Cancel|Run again")
    await expect(page.get_by_role("button", name=admin_only)).to_have_count(0)
    await expect(page.get_by_role("link", name="Dead letters")).to_be_hidden()
    await snap(page, dashboard, "viewer-queue")

    await go(page, f"#/jobs/{job_id}")
    await expect(page.get_by_role("heading", name="Waits for an executor", level=1)).to_be_visible(timeout=WAIT_MS)
    await expect(page.get_by_role("progressbar", name="Job progress")).to_have_attribute("aria-valuenow", "0")
    await expect(page.get_by_role("button", name=admin_only)).to_have_count(0)
    await snap(page, dashboard, "viewer-job-pending")

    await go(page, "#/dead-letters")
    await expect(page.get_by_text("Dead letters are handled by admins")).to_be_visible(timeout=WAIT_MS)
    await expect(page.get_by_role("button", name=admin_only)).to_have_count(0)

    for method, path in [
        ("POST", "/queue/pause"),
        ("POST", "/queue/resume"),
        ("GET", "/queue/dead-letters"),
        ("POST", f"/queue/dead-letters/{job_id}/requeue"),
        ("POST", "/queue/dead-letters/purge"),
        ("POST", f"/queue/jobs/{job_id}/cancel"),
    ]:
        status, envelope = await dashboard.call(method, path, role="viewer")
        assert status == 403, (method, path, envelope)
        assert envelope["success"] is False and envelope["error"]["code"] == "PERMISSION_DENIED"
    _, stats = await dashboard.call("GET", "/queue/stats", role="viewer")
    assert stats["data"]["paused"] is False


async def test_a_tenants_admin_cannot_pause_the_queue_every_tenant_shares(
    dashboard: Dashboard, open_page: OpenPage
) -> None:
    page = await open_page()
    await sign_in(page, dashboard, "admin")
    await expect(page.locator(".health .badge").first).to_be_visible(timeout=WAIT_MS)
    await expect(page.get_by_role("link", name="Dead letters")).to_be_visible()  # an admin's page
    await expect(page.get_by_role("button", name=re.compile("Pause|Resume"))).to_have_count(0)
    for path in ("/queue/pause", "/queue/resume"):
        status, envelope = await dashboard.call("POST", path, role="admin")
        assert status == 403 and "operator" in envelope["message"], (path, envelope)
    _, stats = await dashboard.call("GET", "/queue/stats", role="admin")
    assert stats["data"]["paused"] is False


async def test_with_auth_disabled_the_dashboard_opens_without_a_key(stack: Stack, browser: Browser) -> None:
    port = free_port()
    stack.start("api", API_HTTP_HOST="127.0.0.1", API_HTTP_PORT=str(port))  # the stack's SENTINEL_AUTH=disabled
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = await context.new_page()
        await page.goto(f"http://127.0.0.1:{port}/")
        await expect(page.get_by_role("heading", name="Queue", level=1)).to_be_visible(timeout=WAIT_MS)
        await expect(page.locator(".who-text")).to_have_text("operator · auth disabled")
        await expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
        await expect(page.get_by_role("button", name="Pause queue")).to_be_visible(timeout=WAIT_MS)
    finally:
        await context.close()


async def test_a_wrong_key_is_refused_on_the_sign_in_form_and_a_key_lives_in_its_tab(
    dashboard: Dashboard, open_page: OpenPage
) -> None:
    page = await open_page()
    logged: list[str] = []
    page.on("console", lambda m: logged.append(m.text) if m.type == "error" else None)
    await page.goto(dashboard.url)
    await expect(page.get_by_label("API key")).to_be_visible(timeout=WAIT_MS)
    # Signed out, the page asks /auth (no key needed) whether it needs a key: nothing refused, nothing logged.
    assert logged == [], logged
    form_error = page.locator("#key-error")
    await page.get_by_role("button", name="Sign in").click()
    await expect(form_error).to_have_text("Enter your API key.")
    await page.get_by_label("API key").fill("snt_not-a-key-anyone-made")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text(re.compile("not accepted"), timeout=WAIT_MS)
    await expect(page.get_by_label("API key")).to_have_attribute("aria-invalid", "true")
    assert await page.evaluate("sessionStorage.length") == 0
    await expect(page.locator("#topbar")).to_be_hidden()
    await snap(page, dashboard, "sign-in-wrong-key")

    await sign_in(page, dashboard, "submitter")
    await page.reload()  # the tab keeps its key
    await expect(page.get_by_role("heading", name="Queue", level=1)).to_be_visible(timeout=WAIT_MS)
    other_tab = await page.context.new_page()  # another tab does not
    await other_tab.goto(dashboard.url)
    await expect(other_tab.get_by_label("API key")).to_be_visible(timeout=WAIT_MS)
    await other_tab.close()

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_label("API key")).to_be_visible()
    await expect(page.get_by_role("status")).to_have_text("You are signed out.")
    assert await page.evaluate("sessionStorage.length") == 0
    await snap(page, dashboard, "sign-in")


@pytest.mark.usefixtures("executor")
async def test_every_page_fits_a_phone(dashboard: Dashboard, open_page: OpenPage) -> None:
    failed = await dashboard.submit(FAILING, name="Greets Grace on a phone", maxAttempts=1, tags=["mobile"])
    dead = await dashboard.submit(closed_port_steps(), name="Unreachable status page", maxAttempts=1)
    await dashboard.wait_job(failed, "failed")
    await dashboard.wait_job(dead, "failed")
    page = await open_page(width=375, height=812, phone=True)
    await sign_in(page, dashboard, "admin")
    await expect(page.locator(".health .badge").first).to_be_visible(timeout=WAIT_MS)
    await snap(page, dashboard, "phone-queue")  # each snap also checks the page does not scroll sideways
    # The lanes table is one card per row, as every table is on a phone: nothing scrolls sideways in it.
    lanes = page.get_by_role("region", name="Figures per lane")
    await expect(lanes.locator("table.stack")).to_be_visible()
    assert await lanes.evaluate("wrap => wrap.scrollWidth - wrap.clientWidth") <= 0

    await page.get_by_role("link", name="Jobs", exact=True).click()
    await expect(page.locator(f'tr[data-job-id="{failed}"]')).to_be_visible(timeout=WAIT_MS)
    await snap(page, dashboard, "phone-jobs")

    await page.get_by_role("link", name="Greets Grace on a phone").click()
    shot = page.get_by_role("img", name=re.compile("^Failure screenshot"))
    await expect(shot).to_have_attribute("src", re.compile("^blob:"), timeout=WAIT_MS)
    await wait_for(lambda: shot.evaluate("img => img.complete && img.naturalWidth"), within=30, what="the screenshot")
    box = await shot.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
    await snap(page, dashboard, "phone-job-failed")

    await page.get_by_role("link", name="Dead letters").click()
    await expect(page.locator(f'tr[data-job-id="{dead}"]')).to_be_visible(timeout=WAIT_MS)
    await snap(page, dashboard, "phone-dead-letters")


async def test_schedules_are_listed_with_their_next_fire_and_open_on_their_latest_runs(
    dashboard: Dashboard, open_page: OpenPage
) -> None:
    definition = {"name": "Shop home", "baseUrl": dashboard.site, "steps": QUICK}
    async with AsyncClient(f"127.0.0.1:{dashboard.api.port}", api_key=dashboard.keys["admin"]) as client:
        made = await client.create_schedule(definition, name="shop-home", interval_ms=3_600_000)
        triggered = await client.trigger_schedule(made.id)  # no executor: its run stays pending
    page = await open_page()
    await sign_in(page, dashboard, "viewer")
    await open_view(page, "Schedules")
    card = page.locator(f'details[data-schedule-id="{made.id}"]')
    await expect(card).to_contain_text("shop-home", timeout=WAIT_MS)
    await expect(card).to_contain_text("every 3600 s · next ")
    await expect(card.locator("summary time")).to_have_count(1)  # the next fire, a time the page formats
    await expect(card).not_to_contain_text("[object")
    await card.locator("summary").click()
    run = card.get_by_role("row").filter(has=page.get_by_role("link", name="triggered"))
    await expect(run).to_contain_text("pending", timeout=WAIT_MS)
    await expect(run.get_by_role("link", name="triggered")).to_have_attribute("href", f"#/jobs/{triggered.id}")
    await expect(page.get_by_role("button", name="New schedule")).to_have_count(0)  # a viewer changes nothing
    await expect(card.get_by_role("button", name="Pause")).to_have_count(0)
    await snap(page, dashboard, "schedules")


async def test_a_submitter_makes_pauses_runs_and_deletes_a_schedule_from_the_dashboard(
    dashboard: Dashboard, open_page: OpenPage
) -> None:
    dashboard.tolerated.append("status of 400")  # the refused form, on purpose
    page = await open_page()
    await sign_in(page, dashboard, "submitter")
    await open_view(page, "Schedules")
    await page.get_by_role("button", name="New schedule").click()
    form = page.get_by_role("form", name="New schedule")
    await form.get_by_label("Name").fill("Shop home")
    await form.get_by_label("Runs").select_option("cron")
    await form.get_by_label("Minutes or cron").fill("every five minutes")
    definition = {"name": "shop", "baseUrl": dashboard.site, "steps": QUICK}
    await form.get_by_label("Test").fill(json.dumps({"definition": definition}))
    await form.get_by_role("button", name="Create schedule").click()
    # The server's violation is shown, naming the field, and its input is marked.
    await expect(form.get_by_role("alert")).to_contain_text("cron", timeout=WAIT_MS)
    await expect(form.get_by_label("Minutes or cron")).to_have_attribute("aria-invalid", "true")
    await expect(form.get_by_label("Name")).not_to_have_attribute("aria-invalid", "true")
    await snap(page, dashboard, "schedule-refused")

    await form.get_by_label("Minutes or cron").fill("*/5 * * * *")
    await form.get_by_label("Tags").fill("shop, smoke")
    await form.get_by_role("button", name="Create schedule").click()
    await expect(page.get_by_role("status").filter(has_text="created")).to_be_visible(timeout=WAIT_MS)
    await expect(form).to_be_hidden()
    status, listed = await dashboard.call("GET", "/schedules", role="viewer")
    [made] = [s for s in listed["data"]["schedules"] if s["name"] == "Shop home"]
    assert (status, made["cron"], made["tags"], made["testName"]) == (200, "*/5 * * * *", ["shop", "smoke"], "shop")

    card = page.locator(f'details[data-schedule-id="{made["id"]}"]')
    await expect(card).to_contain_text("cron */5 * * * * (UTC) · next ")
    await card.locator("summary").click()
    await card.get_by_role("button", name="Pause").click()
    await expect(card.locator("summary")).to_contain_text("· paused", timeout=WAIT_MS)
    assert (await dashboard.call("GET", f"/schedules/{made['id']}", role="viewer"))[1]["data"]["paused"] is True
    await card.get_by_role("button", name="Run now").click()
    job_link = card.get_by_role("link", name="open its job")
    await expect(job_link).to_be_visible(timeout=WAIT_MS)
    await expect(card.get_by_role("row").filter(has=page.get_by_role("link", name="triggered"))).to_have_count(1)
    await card.get_by_role("button", name="Resume").click()
    await expect(card.locator("summary")).to_contain_text("· next ", timeout=WAIT_MS)
    await snap(page, dashboard, "schedule-actions")

    await card.get_by_role("button", name="Delete…").click()
    await card.get_by_role("button", name="Keep it").click()  # changed their mind: nothing deleted
    await card.get_by_role("button", name="Delete…").click()
    await card.get_by_role("button", name="Yes, delete").click()
    await expect(card).to_have_count(0, timeout=WAIT_MS)
    await expect(page.get_by_role("status").filter(has_text="deleted")).to_be_visible()
    assert (await dashboard.call("GET", f"/schedules/{made['id']}", role="viewer"))[0] == 404
