"""BrowserManager against the real Chromium: launch, contexts, relaunch after a crash, bad binaries."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Error as PlaywrightError

from executor_service.browser import BrowserManager
from shared.errors import BrowserUnavailable
from shared.model import Viewport
from tests.support import CHROMIUM_ARGS, chromium_path, wait_for


@pytest.fixture
async def manager() -> AsyncIterator[BrowserManager]:
    m = BrowserManager(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    await m.start()
    try:
        yield m
    finally:
        await m.stop()


async def _crash(m: BrowserManager) -> None:
    """Crash Chromium's browser process for real (not a polite close) and wait until it is seen."""
    browser = m._browser
    assert browser is not None
    session = await browser.new_browser_cdp_session()
    # The reply never comes: the process dies while answering.
    with contextlib.suppress(PlaywrightError):
        await session.send("Browser.crash")

    async def gone() -> bool:
        return not m.connected

    await wait_for(gone, what="chromium to disconnect")


async def test_start_reports_version_and_contexts_are_isolated(manager: BrowserManager) -> None:
    assert manager.connected
    assert manager.version.split(".")[0].isdigit()
    first = await manager.new_context(viewport=None)
    second = await manager.new_context(viewport=Viewport(width=400, height=300))
    try:
        assert first.guard is None and second.guard is None  # no policy: unguarded
        await first.context.add_cookies([{"name": "a", "value": "1", "url": "http://127.0.0.1/"}])
        assert await second.context.cookies() == []
        page = await second.context.new_page()
        assert page.viewport_size == {"width": 400, "height": 300}
    finally:
        await first.close()
        await second.close()
    assert manager.restarts == 0


async def test_stop_is_idempotent_and_refuses_new_contexts() -> None:
    m = BrowserManager(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    assert m.version == ""
    assert not m.connected
    await m.start()
    await m.start()  # a second start keeps the running browser
    await m.stop()
    await m.stop()
    assert not m.connected
    with pytest.raises(BrowserUnavailable, match="stopped"):
        await m.new_context(viewport=None)


async def test_new_context_launches_lazily() -> None:
    m = BrowserManager(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    try:
        context = await m.new_context(viewport=None)
        await context.close()
        assert m.connected
        assert m.restarts == 0
    finally:
        await m.stop()


async def test_relaunches_once_after_a_crash(manager: BrowserManager) -> None:
    old = await manager.new_context(viewport=None)
    await _crash(manager)

    # Several jobs find the browser dead at the same moment: one relaunch serves them all.
    contexts = await asyncio.gather(*(manager.new_context(viewport=None) for _ in range(3)))
    try:
        assert manager.connected
        assert manager.restarts == 1
        page = await contexts[0].context.new_page()
        await page.set_content("<title>alive</title>")
        assert await page.title() == "alive"
    finally:
        for context in contexts:
            await context.close()
        with contextlib.suppress(PlaywrightError):
            await old.close()


async def test_relaunches_after_the_browser_was_closed(manager: BrowserManager) -> None:
    browser = manager._browser
    assert browser is not None
    await browser.close()
    assert not manager.connected

    context = await manager.new_context(viewport=None)
    await context.close()
    assert manager.connected
    assert manager.restarts == 1


async def test_missing_executable_names_the_fix(tmp_path: Path) -> None:
    m = BrowserManager(executable_path=str(tmp_path / "no-chromium"))
    with pytest.raises(BrowserUnavailable) as info:
        await m.start()
    assert "SENTINEL_CHROMIUM" in str(info.value)
    assert "apt-get install chromium" in str(info.value)
    assert not m.connected
    await m.stop()


async def test_a_binary_that_is_not_chromium_is_unavailable(tmp_path: Path) -> None:
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\necho 'not a browser' >&2\nexit 3\n")
    fake.chmod(0o755)
    m = BrowserManager(executable_path=str(fake))
    with pytest.raises(BrowserUnavailable, match="cannot launch Chromium"):
        await m.start()
    assert m._playwright is None  # a failed start leaves no driver process behind
    await m.stop()


async def test_a_file_that_is_not_executable_is_unavailable(tmp_path: Path) -> None:
    plain = tmp_path / "chromium"
    plain.write_text("")
    with pytest.raises(BrowserUnavailable, match="not executable"):
        await BrowserManager(executable_path=str(plain)).start()


def _driver_pids() -> list[int]:
    """This process's Playwright drivers (`node ... run-driver`), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == os.getpid() and b"run-driver" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


async def test_a_driver_stopped_by_a_signal_is_logged_not_left_unread(caplog: pytest.LogCaptureFixture) -> None:
    """A stop signal sent to the whole process group (`timeout`, a supervisor) reaches the driver too:
    its exit is logged as a warning, and no "Future exception was never retrieved" comes after the
    manager stops."""
    caplog.set_level(logging.WARNING)
    m = BrowserManager(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    await m.start()
    try:
        (driver,) = _driver_pids()
        os.kill(driver, signal.SIGTERM)

        def warned() -> bool:
            return any("Playwright driver exited" in r.getMessage() for r in caplog.records)

        await wait_for(warned, within=15, what="the driver's exit to be logged")
    finally:
        await m.stop()
    gc.collect()  # an unread future's error is logged when it is collected
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
