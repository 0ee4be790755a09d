"""Failure evidence against real Chromium: the trace, masked screenshots, console and network lines,
video, and what happens when an artifact cannot be kept.

Runs go through `run_steps` and `Recording` as the job runner uses them, into a real file store
(the S3 backend is exercised end to end in tests/e2e/test_artifacts.py).
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from executor_service.browser import BrowserManager
from executor_service.evidence import Evidence
from executor_service.recording import Recording, keeps
from executor_service.redact import secret_forms
from executor_service.runner import RunOutcome, run_steps
from shared.artifact_file import FileArtifactStore
from shared.artifact_store import ArtifactStore
from shared.model import ArtifactPolicy, Click, ExpectText, Fill, Navigate, Request, Step, TestDefinition, Viewport
from shared.sealed import Sealer, new_secret_key
from shared.settings import TraceMode
from tests.support import CHROMIUM_ARGS, chromium_path, serve_directory

PAGES = Path(__file__).parent / "pages"
#: Characters that every encoding a trace uses changes: JSON, HTML, URL.
SECRET = 'Tr0ub4dor&3 "q"/<x>+%'
KEY = new_secret_key()
JOB = "job-1"
MAGENTA = (255, 0, 255)


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with serve_directory(PAGES) as url:
        yield url + "/"


@pytest.fixture
async def browser() -> AsyncIterator[BrowserManager]:
    manager = BrowserManager(executable_path=chromium_path(), args=CHROMIUM_ARGS, ffmpeg=shutil.which("ffmpeg") or "")
    await manager.start()
    try:
        yield manager
    finally:
        await manager.stop()


@dataclass
class Ran:
    outcome: RunOutcome
    evidence: Evidence
    store_root: Path
    #: Where the secret field was on the page, in CSS pixels (x, y, width, height).
    token_box: tuple[float, float, float, float] | None

    def stored(self, name: str) -> Path:
        return self.store_root / JOB / name

    def trace_entries(self) -> dict[str, bytes]:
        with zipfile.ZipFile(self.stored("1/trace.zip")) as z:
            return {name: z.read(name) for name in z.namelist()}


async def run(
    browser: BrowserManager,
    tmp_path: Path,
    steps: list[Step],
    *,
    policy: ArtifactPolicy = ArtifactPolicy.ON_FAILURE,
    video: bool = False,
    store: ArtifactStore | None = None,
    max_job_bytes: int = 10**9,
    secrets: tuple[str, ...] = (),
    untraced: str | None = None,
    screenshots: bool = True,
) -> Ran:
    """Run `steps` the way executor_service.job does: evidence, recording, steps, close."""
    root = tmp_path / "store"
    if store is None:
        store = FileArtifactStore(root, max_artifact_bytes=10**9)
    evidence = Evidence.open(store, job_id=JOB, attempt=1, spool_root=tmp_path / "spool", max_job_bytes=max_job_bytes)
    session = await browser.new_context(
        viewport=Viewport(800, 600), record_video_dir=Recording.video_dir(evidence) if video else None
    )
    recording = Recording(session, evidence, secrets, screenshots=screenshots)
    box = None
    try:
        await recording.start(title="evidence", untraced=untraced)
        outcome = await run_steps(
            session,
            TestDefinition(name="evidence", steps=tuple(steps)),
            report=_ignore,
            evidence=evidence,
            step_timeout_ms=10_000,
            artifact_policy=policy,
            secret_key=KEY,
            recording=recording,
        )
        found = await session.context.pages[0].locator("#token").bounding_box()
        box = (found["x"], found["y"], found["width"], found["height"]) if found else None
    finally:
        await recording.close(keep=keeps(policy, failed=not outcome.success))
        await evidence.close()
    return Ran(outcome, evidence, root, box)


async def _ignore(**_: object) -> None:
    pass


def secret_steps(site: str) -> list[Step]:
    """Type a sealed secret into a plain text field, send it, then fail on purpose."""
    return [
        Step(Navigate(site + "evidence.html")),
        Step(Fill("#token", Sealer(KEY).seal(SECRET), secret=True)),
        Step(Click("#send")),
        Step(ExpectText("#echo", "typed: "), timeout_ms=5000),
        Step(ExpectText("#echo", "never shown"), timeout_ms=500),
    ]


async def test_a_failed_run_keeps_its_trace_with_each_step_and_the_failure_screenshot(
    browser: BrowserManager, site: str, tmp_path: Path
) -> None:
    steps = [Step(Navigate(site + "evidence.html")), Step(ExpectText("h1", "Not the title"), timeout_ms=500)]
    ran = await run(browser, tmp_path, steps)

    assert not ran.outcome.success
    assert ran.evidence.names == ["1/step-01-failure.png", "1/trace.zip"]
    assert ran.evidence.notes == []
    assert ran.outcome.steps[1].artifacts == ("1/step-01-failure.png",)
    assert ran.stored("1/step-01-failure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    entries = ran.trace_entries()
    assert any(name.endswith(".trace") for name in entries), sorted(entries)
    actions = b"".join(data for name, data in entries.items() if name.endswith(".trace"))
    assert b"1. navigate" in actions and b"2. expect" in actions  # each step is a group in the viewer
    # The failure is a line of its own in the viewer, inside its step.
    assert "✗ expected \\\"h1\\\" to contain 'Not the title'".encode() in actions, actions[-2000:]
    assert any(name.endswith((".jpeg", ".jpg")) for name in entries), "screencast frames when no secret is typed"
    assert not list((tmp_path / "spool").iterdir()), "the executor's disk keeps no copy"


async def test_a_request_steps_answer_is_in_the_trace_inside_its_step(
    browser: BrowserManager, site: str, tmp_path: Path
) -> None:
    # Playwright 1.65 records no action or network entry for the context's own API requests (the
    # same without Sentinel: context.request.fetch under context.tracing), so Sentinel marks the answer.
    steps = [
        Step(Navigate(site + "evidence.html")),
        Step(Request(site + "data.json")),
        Step(Request(site + "missing.json", expect_status=200)),
    ]
    ran = await run(browser, tmp_path, steps)

    assert [s.http_status for s in ran.outcome.steps] == [200, 200, 404]
    actions = b"".join(data for name, data in ran.trace_entries().items() if name.endswith(".trace"))
    titles = [
        json.loads(line)["title"]
        for line in actions.splitlines()
        if b'"method":"tracingGroup"' in line and b'"type":"before"' in line
    ]
    assert titles[1:] == [
        f"2. GET {site}data.json",
        "← HTTP 200",
        f"3. GET {site}missing.json",
        "← HTTP 404",
        f"✗ {ran.outcome.steps[2].error}",
    ], titles


async def test_a_trace_without_screenshots_keeps_each_step_and_its_dom_snapshots_but_no_screencast(
    browser: BrowserManager, site: str, tmp_path: Path
) -> None:
    steps = [Step(Navigate(site + "evidence.html")), Step(ExpectText("h1", "Not the title"), timeout_ms=500)]
    ran = await run(browser, tmp_path, steps, screenshots=False)

    assert ran.evidence.names == ["1/step-01-failure.png", "1/trace.zip"]
    entries = ran.trace_entries()
    actions = b"".join(data for name, data in entries.items() if name.endswith(".trace"))
    assert b"1. navigate" in actions and b"2. expect" in actions
    assert b'"frame-snapshot"' in actions, "the DOM snapshots the viewer shows for each action"
    assert not any(name.endswith((".jpeg", ".jpg")) for name in entries), "no screencast frames"


async def test_a_passing_run_keeps_no_trace_by_default_and_one_when_asked(
    browser: BrowserManager, site: str, tmp_path: Path
) -> None:
    steps = [Step(Navigate(site + "evidence.html")), Step(ExpectText("h1", "Evidence"))]
    default = await run(browser, tmp_path / "default", steps)
    always = await run(browser, tmp_path / "always", steps, policy=ArtifactPolicy.ALWAYS)
    never = await run(
        browser, tmp_path / "never", [*steps, Step(ExpectText("h1", "x"), timeout_ms=300)], policy=ArtifactPolicy.NEVER
    )

    assert default.outcome.success and default.evidence.names == []
    assert always.evidence.names == ["1/final.png", "1/trace.zip"]
    assert not never.outcome.success and never.evidence.names == []


async def test_an_attempt_the_trace_mode_skips_keeps_its_screenshot_and_says_why_there_is_no_trace(
    browser: BrowserManager, site: str, tmp_path: Path
) -> None:
    steps = [Step(Navigate(site + "evidence.html")), Step(ExpectText("h1", "Not the title"), timeout_ms=500)]
    why = TraceMode.ON_FIRST_RETRY.skips(1)
    failed = await run(browser, tmp_path / "failed", steps, untraced=why)
    passed = await run(browser, tmp_path / "passed", steps[:1], untraced=why)

    assert not failed.outcome.success
    assert failed.evidence.names == ["1/step-01-failure.png"]
    assert failed.evidence.notes == [f"no trace recorded: {why}"]
    assert not (failed.store_root / JOB / "1" / "trace.zip").exists()
    assert passed.outcome.success and passed.evidence.names == [] and passed.evidence.notes == []


async def test_no_secret_value_reaches_the_trace_and_the_screenshot_masks_the_field(
    browser: BrowserManager, site: str, tmp_path: Path
) -> None:
    ran = await run(browser, tmp_path, secret_steps(site), secrets=(SECRET,))

    assert [s.success for s in ran.outcome.steps] == [True, True, True, True, False]
    assert ran.evidence.names == ["1/step-04-failure.png", "1/trace.zip"], ran.evidence.notes
    entries = ran.trace_entries()
    forms = secret_forms(SECRET)
    for name, data in entries.items():
        for form in forms:
            assert form not in data, f"{form!r} in {name}"
    actions = b"".join(data for name, data in entries.items() if name.endswith(".trace"))
    assert b"***" in actions, "the fill is in the trace, with its value masked"
    assert not any(name.endswith((".jpeg", ".jpg")) for name in entries), "no screencast when secrets are typed"
    for name, data in entries.items():
        if name.endswith((".trace", ".network")):
            for line in data.splitlines():
                json.loads(line)  # still a valid trace

    assert ran.token_box is not None
    x, y, w, h = ran.token_box
    with Image.open(ran.stored("1/step-04-failure.png")) as shot:
        rgb = shot.convert("RGB")
        centre = rgb.getpixel((int(x + w / 2), int(y + h / 2)))
        inside = [rgb.getpixel((int(x + w * fx), int(y + h * fy))) for fx in (0.2, 0.5, 0.8) for fy in (0.3, 0.7)]
        outside = rgb.getpixel((int(x + w + 40), int(y + h / 2)))
    assert centre == MAGENTA and all(p == MAGENTA for p in inside), "the secret field is masked"
    assert outside != MAGENTA, "only the field is masked"


async def test_a_secret_too_short_to_mask_means_no_trace_and_the_result_says_why(
    browser: BrowserManager, site: str, tmp_path: Path
) -> None:
    steps = [
        Step(Navigate(site + "evidence.html")),
        Step(Fill("#token", Sealer(KEY).seal("ab1"), secret=True)),
        Step(ExpectText("h1", "Not the title"), timeout_ms=300),
    ]
    ran = await run(browser, tmp_path, steps, secrets=("ab1",))

    assert ran.evidence.names == ["1/step-02-failure.png"]
    assert ran.evidence.notes == [
        "1/trace.zip not kept: a secret value is shorter than 4 characters, too short to find and mask"
    ]
    assert not ran.stored("1/trace.zip").exists()


async def test_each_step_carries_the_console_errors_and_failed_requests_it_saw(
    browser: BrowserManager, site: str, tmp_path: Path
) -> None:
    steps = [
        Step(Navigate(site + "evidence.html")),
        Step(Fill("#token", "plain-value")),
        Step(Click("#send")),
        Step(ExpectText("#echo", "typed: plain-value")),
    ]
    # The page says when its three requests are answered: the last navigation must not cut one off.
    answered = Step(ExpectText("#answered", "all answered"))
    ran = await run(browser, tmp_path, [*steps, answered, Step(Navigate(site + "evidence.html"))])
    navigate, fill, *_ = ran.outcome.steps
    assert navigate.console_errors == ("console.error: boom from the page",)
    assert navigate.failed_requests == () and fill.console_errors == () and fill.failed_requests == ()
    # The click's requests may still be in flight when its step ends: they land on the next steps.
    failed = [line for s in ran.outcome.steps for line in s.failed_requests]
    assert any(line.startswith("GET ") and "missing.json" in line and "HTTP 404" in line for line in failed), failed
    assert any(line.startswith("POST ") and "api/echo" in line for line in failed), failed


async def test_a_video_is_kept_when_asked_for_but_never_of_a_test_that_types_secrets(
    browser: BrowserManager, site: str, tmp_path: Path
) -> None:
    steps = [Step(Navigate(site + "evidence.html")), Step(ExpectText("h1", "Evidence"))]
    filmed = await run(browser, tmp_path / "filmed", steps, policy=ArtifactPolicy.ALWAYS, video=True)
    assert filmed.evidence.names == ["1/final.png", "1/trace.zip", "1/video.webm"]
    assert filmed.stored("1/video.webm").read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # EBML: a WebM file

    secret = await run(browser, tmp_path / "secret", secret_steps(site), video=True, secrets=(SECRET,))
    assert "1/video.webm" not in secret.evidence.names
    assert "video not kept: the test types secret values, which a video would show" in secret.evidence.notes
    assert not list((tmp_path / "secret" / "spool").iterdir())


async def test_an_unreachable_store_or_a_full_job_is_a_note_never_a_failure(
    browser: BrowserManager, site: str, tmp_path: Path
) -> None:
    steps = [Step(Navigate(site + "evidence.html")), Step(ExpectText("h1", "Evidence"))]
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the store's directory should be")
    unreachable = await run(
        browser,
        tmp_path / "a",
        steps,
        policy=ArtifactPolicy.ALWAYS,
        store=FileArtifactStore(blocked, max_artifact_bytes=10**9),
    )
    assert unreachable.outcome.success, "the test still passes"
    assert unreachable.evidence.names == []
    assert [n.split(":")[0] for n in unreachable.evidence.notes] == ["1/final.png not kept", "1/trace.zip not kept"]

    full = await run(browser, tmp_path / "b", steps, policy=ArtifactPolicy.ALWAYS, max_job_bytes=1000)
    assert full.outcome.success
    assert full.evidence.names == []
    assert all("would exceed 1000 bytes (SENTINEL_JOB_ARTIFACTS_MAX_BYTES)" in n for n in full.evidence.notes)
    assert not list((tmp_path / "b" / "spool").iterdir())


async def test_the_job_cap_counts_what_earlier_attempts_stored(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path / "store", max_artifact_bytes=10**9)
    await store.put_bytes(f"{JOB}/1/trace.zip", b"x" * 600, content_type="application/zip")
    evidence = Evidence.open(store, job_id=JOB, attempt=2, spool_root=tmp_path / "spool", max_job_bytes=1000)
    try:
        evidence.path("a.png").write_bytes(b"y" * 300)
        assert await evidence.keep("a.png") == "2/a.png"
        evidence.path("b.png").write_bytes(b"z" * 300)
        assert await evidence.keep("b.png") is None
    finally:
        await evidence.close()
    assert evidence.names == ["2/a.png"]
    assert evidence.notes == [
        "2/b.png not kept: the job's artifacts would exceed 1000 bytes (SENTINEL_JOB_ARTIFACTS_MAX_BYTES)"
    ]
    assert not evidence.spool.exists()
