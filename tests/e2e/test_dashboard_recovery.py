"""The dashboard in Chromium when something goes wrong, against the real stack: a list or a job
page that could not be read reads itself again once the API is back (or on Retry), a list filtered
by state lets go of a job that left the state, and a page whose scripts never start says so
instead of "Loading…" for ever.
"""

from __future__ import annotations

import asyncio
import json
import re

import pytest
import redis.asyncio as aioredis
from playwright.async_api import Browser, Page, Route, expect

from shared.keys import Keys
from shared.model import JobState
from shared.schema import JobField
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
    playwright,
    sign_in,
    snap,
)
from tests.e2e.test_dashboard import QUICK, SLOW, not_reloaded, still_not_reloaded
from tests.support import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
__all__ = ["browser", "dashboard", "executor", "open_page", "playwright"]  # fixtures

DID_NOT_START = "The Sentinel dashboard did not start."


async def restart_api(stack: Stack, dashboard: Dashboard) -> None:
    """Start the (stopped) API again on its port, as it was."""
    dashboard.api = await asyncio.to_thread(stack.restart, dashboard.api, **dashboard.api_env)


async def test_the_job_list_and_a_job_page_read_again_once_the_api_is_back(
    stack: Stack, dashboard: Dashboard, open_page: OpenPage, redis_of: aioredis.Redis
) -> None:
    job_id = await dashboard.submit(QUICK, name="Survives an outage")  # no executor: it stays pending
    page = await open_page()
    await sign_in(page, dashboard, "admin")
    await not_reloaded(page)
    dashboard.tolerated.append("ERR_CONNECTION_REFUSED")  # while the API is down
    row = page.locator(f'tr[data-job-id="{job_id}"]')

    await asyncio.to_thread(dashboard.api.stop)
    await go(page, "#/jobs")
    problem = page.get_by_role("alert").filter(has_text="Jobs could not be listed")
    await expect(problem).to_contain_text("could not be reached", timeout=WAIT_MS)
    await expect(row).to_have_count(0)
    await snap(page, dashboard, "jobs-api-down")
    await restart_api(stack, dashboard)
    await expect(row).to_be_visible(timeout=WAIT_MS)  # no reload, no click: the stream came back
    await expect(problem).to_have_count(0)
    await expect(page.locator(".live")).to_have_text("Live")

    # Down again while the job runs: no event had come, but the stream began with its position, so it
    # comes back with a cursor and replays what happened meanwhile, instead of showing the job pending.
    await asyncio.to_thread(dashboard.api.stop)
    await expect(page.locator(".live")).not_to_have_text("Live", timeout=WAIT_MS)
    await asyncio.to_thread(stack.start, "executor", **dashboard.env)
    await wait_for(lambda: finished(redis_of, job_id), within=60, what=f"job {job_id} to finish")
    await restart_api(stack, dashboard)
    await expect(row.locator(".badge")).to_have_text("completed", timeout=WAIT_MS)

    await asyncio.to_thread(dashboard.api.stop)
    await go(page, f"#/jobs/{job_id}")
    unread = page.get_by_role("alert").filter(has_text="The job could not be read")
    await expect(unread).to_be_visible(timeout=WAIT_MS)
    await expect(page.get_by_role("button", name="Retry")).to_be_visible()
    await snap(page, dashboard, "job-api-down")
    await restart_api(stack, dashboard)
    await expect(page.get_by_role("heading", name="Survives an outage", level=1)).to_be_visible(timeout=WAIT_MS)
    await expect(unread).to_have_count(0)
    assert await still_not_reloaded(page)


async def finished(redis: aioredis.Redis, job_id: str) -> bool:
    """Whether the job finished, read from Redis: the API that would say so is down."""
    return bool(await redis.hget(Keys().job(job_id), JobField.STATE) == JobState.COMPLETED)


async def refuse(route: Route) -> None:
    """What a failing API answers: 503 with its envelope."""
    body = {"success": False, "message": "the queue store (Redis) is unreachable; try again shortly", "data": None}
    await route.fulfill(status=503, content_type="application/json", body=json.dumps(body))


async def test_retry_reads_a_list_or_a_job_again(dashboard: Dashboard, open_page: OpenPage) -> None:
    job_id = await dashboard.submit(QUICK, name="Read on retry")
    page = await open_page()
    await sign_in(page, dashboard, "admin")
    dashboard.tolerated.append("503")
    # The queue's event stream kept down too, so nothing but the button reads again.
    await page.route("**/api/v1/queue/events*", refuse)
    listing = re.compile(r"/api/v1/tests\?")
    await page.route(listing, refuse)
    await go(page, "#/jobs")
    problem = page.get_by_role("alert").filter(has_text="Jobs could not be listed")
    await expect(problem).to_contain_text("Redis", timeout=WAIT_MS)
    await expect(page.locator(".live")).to_contain_text("Reconnecting", timeout=WAIT_MS)
    await page.unroute(listing)
    await problem.get_by_role("button", name="Retry").click()
    await expect(page.locator(f'tr[data-job-id="{job_id}"]')).to_be_visible(timeout=WAIT_MS)
    await expect(problem).to_have_count(0)

    status = f"**/api/v1/tests/{job_id}/status"
    await page.route(status, refuse)
    await go(page, f"#/jobs/{job_id}")
    unread = page.get_by_role("alert").filter(has_text="The job could not be read")
    await expect(unread).to_contain_text("Redis", timeout=WAIT_MS)
    await page.unroute(status)
    await unread.get_by_role("button", name="Retry").click()
    await expect(page.get_by_role("heading", name="Read on retry", level=1)).to_be_visible(timeout=WAIT_MS)
    await expect(unread).to_have_count(0)


async def test_a_partial_list_says_so_and_is_read_again_once_the_queue_answers(
    dashboard: Dashboard, open_page: OpenPage
) -> None:
    """A hybrid API whose Redis is away lists only the jobs it ran itself and says so (`partial`, as
    tests/api_service/test_hybrid.py sees it answered); here the list's answer is given that field."""
    job_id = await dashboard.submit(QUICK, name="Listed in part")
    page = await open_page()
    await sign_in(page, dashboard, "admin")
    why = "the queue (Redis) does not answer: only the jobs this API ran directly are listed"
    dashboard.tolerated.append("503")  # the refused event stream

    async def partly(route: Route) -> None:
        response = await route.fetch()
        body = await response.json()
        body["data"]["partial"] = why
        await route.fulfill(response=response, json=body)

    listing = re.compile(r"/api/v1/tests\?")
    events = "**/api/v1/queue/events*"
    await page.route(events, refuse)  # Redis away: the queue's event stream is down too
    await page.route(listing, partly)
    await go(page, "#/jobs")
    note = page.get_by_role("status").filter(has_text="Only part of the jobs is listed")
    await expect(note).to_contain_text(why, timeout=WAIT_MS)
    await expect(page.locator(f'tr[data-job-id="{job_id}"]')).to_be_visible()
    # The stream connecting again is the sign Redis answers: the list is read again, whole.
    await page.unroute(listing)
    await page.unroute(events)
    await expect(note).to_have_count(0, timeout=WAIT_MS)

    await page.route(listing, partly)
    await go(page, "#/")
    await go(page, "#/jobs")
    await expect(note).to_be_visible(timeout=WAIT_MS)
    await page.unroute(listing)
    await note.get_by_role("button", name="Reload").click()
    await expect(note).to_have_count(0, timeout=WAIT_MS)
    await expect(page.locator(f'tr[data-job-id="{job_id}"]')).to_be_visible()


@pytest.mark.usefixtures("executor")
async def test_a_list_filtered_by_state_lets_go_of_a_job_that_left_it(
    dashboard: Dashboard, open_page: OpenPage
) -> None:
    page = await open_page()
    await sign_in(page, dashboard, "admin")
    await go(page, "#/jobs?status=running")
    await expect(page.get_by_text("No jobs match these filters.")).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator(".live")).to_have_text("Live", timeout=WAIT_MS)
    await not_reloaded(page)

    job_id = await dashboard.submit(SLOW, name="Runs for a while")
    row = page.locator(f'tr[data-job-id="{job_id}"]')
    await expect(row.locator(".badge")).to_have_text("running", timeout=WAIT_MS)  # arrived when it started
    await snap(page, dashboard, "jobs-running")
    await expect(row).to_have_count(0, timeout=WAIT_MS * 2)  # completed: no longer a running job
    await expect(page.get_by_text("No jobs match these filters.")).to_be_visible()
    await expect(page.get_by_role("status").filter(has_text="left the list")).to_have_count(1)
    assert await still_not_reloaded(page)
    await dashboard.wait_job(job_id, "completed")

    await go(page, "#/jobs?status=completed")  # where it is now, and where a reload shows it
    await expect(row.locator(".badge")).to_have_text("completed", timeout=WAIT_MS)


async def expect_did_not_start(page: Page) -> None:
    message = page.get_by_role("alert").filter(has_text=DID_NOT_START)
    await expect(message).to_be_visible(timeout=WAIT_MS)
    await expect(message).to_contain_text("JavaScript is turned off")
    await expect(message).to_contain_text("could not be loaded")
    await expect(message).to_contain_text("console")
    await expect(page.get_by_text("Loading…")).to_be_hidden()


async def test_a_page_whose_scripts_do_not_start_says_so(
    dashboard: Dashboard, open_page: OpenPage, browser: Browser
) -> None:
    # A module the app needs refused, as a proxy that rewrites Host refuses them: the app never runs.
    for refused in ("app.js", "jobs.js"):
        page = await open_page()
        await page.route(f"**/dashboard/{refused}", lambda route: route.fulfill(status=403, body="forbidden"))
        await page.goto(dashboard.url)
        await expect_did_not_start(page)
        await snap(page, dashboard, f"did-not-start-{refused.removesuffix('.js')}")

    context = await browser.new_context(java_script_enabled=False)
    try:
        await (no_script := await context.new_page()).goto(dashboard.url)
        await expect_did_not_start(no_script)
    finally:
        await context.close()

    # A slow server is not a failed start: the app removes the message as it starts.
    page = await open_page()
    answer = asyncio.Event()

    async def slow(route: Route) -> None:
        await answer.wait()
        await route.continue_()

    await page.route("**/api/v1/auth", slow)
    await page.goto(dashboard.url)
    await expect(page.locator("#boot-failed")).to_have_count(0, timeout=WAIT_MS)
    await expect(page.get_by_text("Loading…")).to_be_visible()
    answer.set()
    await expect(page.get_by_label("API key")).to_be_visible(timeout=WAIT_MS)
    await expect(page.get_by_text(DID_NOT_START)).to_have_count(0)
