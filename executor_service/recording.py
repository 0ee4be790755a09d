"""What a run records besides its steps: the Playwright trace, the video, console errors, failed requests.

`Recording` wraps one browser session: `start` begins the trace unless the executor's trace mode
(SENTINEL_TRACE) skips this attempt (DOM snapshots, and screencast frames unless
SENTINEL_TRACE_SCREENSHOTS turns them off or the test types secret values, which a picture would
show), `step` marks each step as a group in the trace viewer, and `close` stops the trace (it needs
the open context), keeping it as `trace.zip` only when `keep` says so and only once every secret
value is masked out of it (`executor_service.redact`), closes the context, then keeps the video,
which Playwright finishes writing when the context closes. `PageLog` collects a page's console
errors and failed requests per step.
A test of request steps only has no browser context (an `ApiSession`): nothing to trace or film, and
when evidence would have been kept the result says why there is none.

Nothing here fails a run: a trace or video that cannot be made or kept becomes a note on the
evidence. Nothing here ever writes a secret value anywhere.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import ConsoleMessage, Page, Request, Response
from playwright.async_api import Error as PlaywrightError

from executor_service.evidence import Evidence
from executor_service.guard import Session
from executor_service.http_check import ApiSession
from executor_service.redact import redact_trace
from shared.model import ArtifactPolicy
from shared.validation import MAX_SECRET_CHARS

__all__ = ["MAX_LOG_LINES", "PageLog", "Recording", "keeps"]

log = logging.getLogger(__name__)

#: Console errors and failed requests kept per step, each.
MAX_LOG_LINES = 20
MAX_LINE_CHARS = 500
#: Stopping the trace writes the zip; a wedged browser must not hold a finished job up for long.
TRACE_STOP_TIMEOUT_S = 30.0
TRACE_FILE = "trace.zip"
#: A failure's line in the trace viewer is its message, cut to this.
MAX_GROUP_CHARS = 300
_LOAD_FAILED = "Failed to load resource:"
VIDEO_DIR = "video"


def keeps(policy: ArtifactPolicy, *, failed: bool) -> bool:
    """Whether a run's trace and video are kept: always, never, or (the default) when it failed."""
    return policy is ArtifactPolicy.ALWAYS or (policy is ArtifactPolicy.ON_FAILURE and failed)


@dataclass
class _Lines:
    lines: list[str] = field(default_factory=list)
    dropped: int = 0

    def add(self, line: str) -> None:
        if len(self.lines) < MAX_LOG_LINES:
            # Cut to size only once masked (`take`): a secret cut in two would no longer be found.
            self.lines.append(line[: MAX_LINE_CHARS + MAX_SECRET_CHARS])
        else:
            self.dropped += 1

    def take(self, mask: Callable[[str], str]) -> tuple[str, ...]:
        lines = [mask(line)[:MAX_LINE_CHARS] for line in self.lines]
        if self.dropped:
            lines[-1] = f"… and {self.dropped + 1} more"
        self.lines, self.dropped = [], 0
        return tuple(lines)


class PageLog:
    """A page's console errors, uncaught exceptions and failed requests since the last `take`."""

    def __init__(self, page: Page) -> None:
        self.console = _Lines()
        self.requests = _Lines()
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)
        page.on("requestfailed", self._on_request_failed)
        page.on("response", self._on_response)

    def _on_console(self, message: ConsoleMessage) -> None:
        # Chromium also logs each failed load as a console error: that one is in `requests` already
        # (or is the browser's own favicon request, which is nobody's failure).
        if message.type == "error" and not message.text.startswith(_LOAD_FAILED):
            self.console.add(f"console.error: {message.text}")

    def _on_page_error(self, error: PlaywrightError) -> None:
        self.console.add(f"uncaught {error.name or 'Error'}: {error.message}")

    def _on_request_failed(self, request: Request) -> None:
        self.requests.add(f"{request.method} {request.url} — {request.failure or 'failed'}")

    def _on_response(self, response: Response) -> None:
        if response.status >= 400:
            self.requests.add(f"{response.request.method} {response.url} — HTTP {response.status}")

    def take(self, mask: Callable[[str], str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(console errors, failed requests) since the last call, at most `MAX_LOG_LINES` each, masked."""
        return self.console.take(mask), self.requests.take(mask)


class Recording:
    """The trace and video of one session. Start it right after the context opens; `close` it
    instead of the session."""

    #: Why a test of request steps only has no trace, screenshots or video.
    NO_BROWSER = "no trace, screenshots or video: the test has only request steps, so it ran without a browser"

    def __init__(
        self, session: Session | ApiSession, evidence: Evidence, secrets: Sequence[str], *, screenshots: bool = True
    ) -> None:
        self._session = session
        self._context = session.context if isinstance(session, Session) else None
        self._evidence = evidence
        self._secrets = tuple(secrets)
        # Screencast frames would show a secret typed into a plain text field: never with secrets.
        self._screenshots = screenshots and not self._secrets
        self._tracing = False
        self._in_group = False
        self._untraced: str | None = None

    @staticmethod
    def video_dir(evidence: Evidence) -> Path:
        """Where the context records video (`record_video_dir`), inside the attempt's spool."""
        return evidence.path(VIDEO_DIR)

    async def start(self, *, title: str, untraced: str | None = None) -> None:
        """Begin the trace; `untraced`: why this attempt records none (the note if evidence is kept)."""
        if self._context is None:
            return
        if untraced is not None:
            self._untraced = untraced
            return
        try:
            await self._context.tracing.start(title=title, snapshots=True, screenshots=self._screenshots, sources=False)
            self._tracing = True
        except PlaywrightError as exc:
            self._evidence.note(f"no trace recorded: {exc.message.splitlines()[0] if exc.message else exc}")

    async def step(self, name: str) -> None:
        """Open the trace viewer's group for the next step (closing the previous one)."""
        if not self._tracing or self._context is None:
            return
        try:
            if self._in_group:
                self._in_group = False
                await self._context.tracing.group_end()
            await self._context.tracing.group(name)
            self._in_group = True
        except PlaywrightError:
            log.debug("could not mark step %r in the trace", name, exc_info=True)

    async def failed(self, message: str) -> None:
        """Mark the current step failed in the trace: a group named `✗ <message>` inside it, the
        viewer's line for the failure (Sentinel's own expectations poll, so no call in the trace fails)."""
        await self._mark(f"✗ {message}")

    async def answered(self, status: int) -> None:
        """Mark what the current request step's server answered: Playwright's trace records no
        action and no network entry for a browser context's own API requests (`context.request`,
        Playwright 1.65), so the step's group would otherwise say only what was asked."""
        await self._mark(f"← HTTP {status}")

    async def _mark(self, text: str) -> None:
        if not self._tracing or self._context is None:
            return
        try:
            await self._context.tracing.group(text[:MAX_GROUP_CHARS])
            await self._context.tracing.group_end()
        except PlaywrightError:
            log.debug("could not mark %r in the trace", text, exc_info=True)

    async def close(self, *, keep: bool) -> None:
        """Stop the trace, close the session (always, even if that fails), then keep the video;
        the trace and the video are kept only when `keep`."""
        if self._context is None:
            await self._session.close()
            if keep:
                self._evidence.note(self.NO_BROWSER)
            return
        try:
            await self._finish_trace(keep=keep)
        finally:
            await self._session.close()
        await self._keep_video(keep=keep)

    async def _finish_trace(self, *, keep: bool) -> None:
        if keep and self._untraced is not None:
            self._evidence.note(f"no trace recorded: {self._untraced}")
        if not self._tracing or self._context is None:
            return
        self._tracing = False
        path = self._evidence.path(TRACE_FILE)
        try:
            async with asyncio.timeout(TRACE_STOP_TIMEOUT_S):
                await self._context.tracing.stop(path=path if keep else None)
        except (PlaywrightError, TimeoutError) as exc:
            if keep:
                self._evidence.note(f"{self._evidence.name(TRACE_FILE)} not kept: the trace could not be saved ({exc})")
            return
        if not keep:
            return
        reason = await asyncio.to_thread(redact_trace, path, self._secrets)
        if reason is not None:
            await asyncio.to_thread(path.unlink, True)
            self._evidence.note(f"{self._evidence.name(TRACE_FILE)} not kept: {reason}")
            return
        await self._evidence.keep(TRACE_FILE, content_type="application/zip")

    async def _keep_video(self, *, keep: bool) -> None:
        """Keep the video(s) the closed context wrote, when one was asked for and `keep`."""
        directory = self.video_dir(self._evidence)
        videos = sorted(await asyncio.to_thread(lambda: list(directory.glob("*.webm")) if directory.is_dir() else []))
        if not videos or not keep:
            return
        if self._secrets:
            self._evidence.note("video not kept: the test types secret values, which a video would show")
            return
        for n, video in enumerate(videos, start=1):
            file = "video.webm" if n == 1 else f"video-{n}.webm"
            await asyncio.to_thread(video.rename, self._evidence.path(file))
            await self._evidence.keep(file, content_type="video/webm")
