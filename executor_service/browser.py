"""One Chromium per executor process, handed out as a fresh isolated context per job.

Launching Chromium costs about a second, a context a few milliseconds, so the process keeps one
browser and gives every job its own `BrowserContext` (own cookies, storage and cache). If the
browser dies (crash, OOM kill) the next `new_context` relaunches it, once, however many jobs ask
at the same moment.

A test whose steps are all requests needs no browser: `new_api_session` gives it an in-process
HTTP client (executor_service/http_client.py), and starts neither Chromium nor Playwright's driver
for it. `contexts_opened` and `api_sessions_opened` count the two kinds.

This module never runs steps and never closes a job's context: the runner uses the context and
the job's owner closes it. It does own what outlives a context: the egress proxies still closing,
which it waits for whenever it closes the browser.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from playwright._impl._errors import TargetClosedError
from playwright.async_api import Browser, Playwright, ViewportSize, async_playwright
from playwright.async_api import Error as PlaywrightError

from executor_service.chromium_flags import launch_args
from executor_service.ffmpeg import video_support
from executor_service.guard import ClosingProxies, NavigationPolicy, Session, open_guarded_context
from executor_service.http_check import ApiSession, open_api_session
from shared.errors import BrowserUnavailable
from shared.model import Viewport

__all__ = ["DEFAULT_ARGS", "BrowserManager"]

log = logging.getLogger(__name__)

#: Flags for a headless Chromium in a container: no sandbox (containers rarely allow one), no GPU,
#: and nothing that phones home, so a job's network traffic is only its own (the features Chromium
#: is launched without are added by executor_service.chromium_flags).
DEFAULT_ARGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # WebRTC only through the context's proxy: its STUN and TURN over UDP would go around the egress
    # proxy (no HTTP proxy carries UDP) to any address, loopback and private ones included.
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
)

_INSTALL_HINT = "set SENTINEL_CHROMIUM to a Chromium binary, or install one (apt-get install chromium)"


def _watch_driver(manager: Any) -> None:
    """Log the Playwright driver's exit rather than leave it unread.

    A stop signal sent to the whole process group (`timeout`, a supervisor) reaches the driver too;
    Playwright keeps the driver's exit in a future that only its start awaits, and asyncio then
    logged "Future exception was never retrieved" with a traceback on every such stop (of
    `sentinel dev`, say). The future is reached through Playwright's private attributes: a version
    without them is not watched.
    """
    transport = getattr(getattr(manager, "_client", None), "_transport", None)
    exited = getattr(transport, "on_error_future", None)
    if isinstance(exited, asyncio.Future):
        exited.add_done_callback(_driver_exited)


def _driver_exited(exited: asyncio.Future[Any]) -> None:
    if not exited.cancelled() and exited.exception() is not None:
        log.warning("the Playwright driver exited: %s", exited.exception())


class BrowserManager:
    """Owns Playwright and one Chromium; relaunches the browser if it has died.

    Attributes:
        restarts: How many times a dead browser has been relaunched since `start`.
        contexts_opened: Browser contexts opened (one per job that needs a page).
        api_sessions_opened: Request clients opened without a browser context (jobs of requests only).
    """

    def __init__(
        self,
        *,
        executable_path: str,
        headless: bool = True,
        args: Sequence[str] = DEFAULT_ARGS,
        policy: NavigationPolicy | None = None,
        ffmpeg: str = "",
    ) -> None:
        """Args:
        policy: checks every request of every context (None: unguarded, for tests only).
        ffmpeg: the system's ffmpeg, to record videos with ("": only Playwright's own, if any).
        """
        self._policy = policy
        self._ffmpeg = ffmpeg
        #: Why contexts cannot record video (None: they can); known once the browser has launched.
        self.video_problem: str | None = "the browser has not been launched yet"
        self._executable_path = executable_path
        self._headless = headless
        self._args = list(args)
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._stopped = False
        self._closing = ClosingProxies()
        # One lock for launch, relaunch and stop, so concurrent jobs that all find the browser
        # dead relaunch it once, and stop never races a launch into a leaked process.
        self._lock = asyncio.Lock()
        self.restarts = 0
        self.contexts_opened = 0
        self.api_sessions_opened = 0

    @property
    def version(self) -> str:
        """Chromium's version (e.g. "120.0.6099.71"), or "" before the first launch."""
        return self._browser.version if self._browser is not None else ""

    @property
    def connected(self) -> bool:
        """Whether the browser is running and Playwright still talks to it."""
        return self._browser is not None and self._browser.is_connected()

    async def start(self) -> None:
        """Start Playwright and launch Chromium; does nothing if already running.

        Raises:
            BrowserUnavailable: Chromium is missing or would not start.
        """
        async with self._lock:
            self._stopped = False
            if self.connected:
                return
            try:
                await self._launch()
            except BrowserUnavailable:
                # Leave nothing running behind a failed start: the caller may never call stop().
                await self._stop_playwright()
                raise

    async def stop(self) -> None:
        """Close the browser and stop Playwright. Safe to call more than once."""
        async with self._lock:
            self._stopped = True
            await self._close_browser()
            await self._stop_playwright()

    async def new_context(self, *, viewport: Viewport | None = None, record_video_dir: Path | None = None) -> Session:
        """A fresh isolated context with its guard, relaunching Chromium first if it has died.

        Args:
            viewport: The page size; None keeps Playwright's default (1280x720).
            record_video_dir: Record a video of every page into this directory, at the page's size
                (None: no video; nor when `video_problem` says why not). Playwright finishes each
                file when the context closes.

        Returns:
            A new session (context and guard); the caller must close it.

        Raises:
            BrowserUnavailable: The manager is stopped, or Chromium cannot be (re)launched.
        """
        options: dict[str, Any] = {}
        if viewport is not None:
            size: ViewportSize = {"width": viewport.width, "height": viewport.height}
            options["viewport"] = size
        browser = await self._ensure_browser()
        if record_video_dir is not None and self.video_problem is None:
            options["record_video_dir"] = record_video_dir
            options["record_video_size"] = options.get("viewport", {"width": 1280, "height": 720})
        try:
            session = await self._open_context(browser, options)
        except TargetClosedError:
            # The process died but Playwright had not noticed yet when we checked: relaunch once.
            log.warning("browser closed while opening a context; relaunching")
            browser = await self._ensure_browser(dead=browser)
            session = await self._open_context(browser, options)
        self.contexts_opened += 1
        return session

    async def new_api_session(self) -> ApiSession:
        """A standalone HTTP client with its guard, for a test of request steps only.

        It needs neither Chromium nor Playwright's driver: neither is started for it.

        Returns:
            A new session; the caller must close it.

        Raises:
            BrowserUnavailable: The manager is stopped.
        """
        if self._stopped:
            raise BrowserUnavailable("the browser manager is stopped")
        session = open_api_session(self._policy)
        self.api_sessions_opened += 1
        return session

    async def _open_context(self, browser: Browser, options: dict[str, Any]) -> Session:
        """`options` are Playwright's `new_context` options."""
        if self._policy is None:
            return Session(await browser.new_context(**options))
        return await open_guarded_context(browser, self._policy, closing=self._closing, **options)

    async def _ensure_browser(self, *, dead: Browser | None = None) -> Browser:
        """The live browser, launching or relaunching it under the lock if needed."""
        async with self._lock:
            if self._stopped:
                raise BrowserUnavailable("the browser manager is stopped")
            browser = self._browser
            # Another caller may have relaunched while we waited for the lock; only replace the
            # browser we actually saw die.
            if browser is not None and browser.is_connected() and browser is not dead:
                return browser
            if browser is not None:
                self.restarts += 1
                log.warning("chromium is gone; relaunching it (restart %d)", self.restarts)
                await self._close_browser()
            return await self._launch()

    async def _ensure_playwright(self) -> Playwright:
        """The running Playwright driver, started if needed (call under the lock)."""
        if self._playwright is None:
            # Before the driver starts: it reads where ffmpeg is from its environment.
            self.video_problem = video_support(self._ffmpeg)
            manager = async_playwright()
            self._playwright = await manager.start()
            _watch_driver(manager)
        return self._playwright

    async def _launch(self) -> Browser:
        executable = self._resolve_executable()
        playwright = await self._ensure_playwright()
        try:
            browser = await playwright.chromium.launch(
                executable_path=executable,
                headless=self._headless,
                args=launch_args(self._args),
                # The executor stops on these signals itself and closes the browser in order; a
                # Ctrl-C meant for it must not make the driver close the browser under running jobs.
                handle_sigint=False,
                handle_sigterm=False,
                handle_sighup=False,
            )
        except PlaywrightError as exc:
            first_line = exc.message.strip().splitlines()[0] if exc.message.strip() else repr(exc)
            raise BrowserUnavailable(f"cannot launch Chromium at {executable}: {first_line}; {_INSTALL_HINT}") from exc
        self._browser = browser
        log.info("chromium %s launched from %s", browser.version, executable)
        return browser

    def _resolve_executable(self) -> str:
        path = self._executable_path
        # A bare name ("chromium") is looked up on PATH like a shell would.
        if path and os.sep not in path:
            path = shutil.which(path) or path
        if not path or not os.path.isfile(path):
            raise BrowserUnavailable(f"no Chromium executable at {self._executable_path!r}; {_INSTALL_HINT}")
        if not os.access(path, os.X_OK):
            raise BrowserUnavailable(f"Chromium at {path!r} is not executable; {_INSTALL_HINT}")
        return path

    async def _close_browser(self) -> None:
        if self._browser is None:
            return
        browser, self._browser = self._browser, None
        try:
            await browser.close()
        except Exception:  # a crashed browser cannot be closed politely; its process is gone anyway
            log.debug("closing chromium failed", exc_info=True)
        await self._closing.settle()  # its contexts' egress proxies are closing: let them finish

    async def _stop_playwright(self) -> None:
        if self._playwright is None:
            return
        playwright, self._playwright = self._playwright, None
        try:
            await playwright.stop()
        except Exception:  # the driver may already be gone; nothing left to release
            log.debug("stopping playwright failed", exc_info=True)
