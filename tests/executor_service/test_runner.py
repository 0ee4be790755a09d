"""run_steps against real Chromium and real pages served on 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from executor_service.actions import _contains
from executor_service.browser import BrowserManager
from executor_service.evidence import Evidence
from executor_service.guard import Session
from executor_service.runner import RunOutcome, _error_text, run_steps
from shared.actions import ACTIONS
from shared.artifact_file import FileArtifactStore
from shared.model import (
    Action,
    ArtifactPolicy,
    Check,
    Click,
    ErrorCategory,
    ExpectText,
    ExpectTitle,
    ExpectUrl,
    ExpectVisible,
    Fill,
    Hover,
    JsonExpectation,
    Navigate,
    Press,
    Request,
    Screenshot,
    SelectOption,
    Step,
    TestDefinition,
    Wait,
    WaitFor,
)
from shared.settings import ArtifactSettings
from shared.validation import validate_definition
from tests.support import CHROMIUM_ARGS, chromium_path, closed_port, serve_directory, silent_server

PAGES = Path(__file__).parent / "pages"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SECRET = "s3cret-pa55"
JOB = "job-1"
PREFIX = "1"  # the attempt: artifact names are "<attempt>/<file>"
#: The timeout of every step that is not the one under test: generous, so a busy machine cannot
#: fail a test in a step (a navigation, say) that is only getting it to the step it is about.
SETUP_TIMEOUT_MS = 30_000


@dataclass
class Recorder:
    """A Reporter that keeps every call, and lets a test wait for a given step to start."""

    calls: list[dict[str, object]] = field(default_factory=list)
    started: dict[int, asyncio.Event] = field(default_factory=dict)

    async def __call__(
        self, *, percentage: int, current_step: int, total_steps: int, step_name: str, message: str
    ) -> None:
        self.calls.append(
            {
                "percentage": percentage,
                "current_step": current_step,
                "total_steps": total_steps,
                "step_name": step_name,
                "message": message,
            }
        )
        self.started.setdefault(current_step, asyncio.Event()).set()

    async def wait_started(self, step: int) -> None:
        await asyncio.wait_for(self.started.setdefault(step, asyncio.Event()).wait(), timeout=30)


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with serve_directory(PAGES) as url:
        yield url + "/"


@pytest.fixture
async def session() -> AsyncIterator[Session]:
    manager = BrowserManager(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    await manager.start()
    try:
        opened = await manager.new_context(viewport=None)
        try:
            yield opened
        finally:
            await opened.close()
    finally:
        await manager.stop()


async def run(
    session: Session,
    steps: list[Step],
    *,
    tmp_path: Path,
    base_url: str = "",
    reporter: Recorder | None = None,
    policy: ArtifactPolicy = ArtifactPolicy.ON_FAILURE,
    step_timeout_ms: int = SETUP_TIMEOUT_MS,
    notes: list[str] | None = None,
) -> RunOutcome:
    """`steps` run as a test; `notes`, when given, gets the evidence's notes (what was not kept)."""
    definition = TestDefinition(name="t", steps=tuple(steps), base_url=base_url)
    store = FileArtifactStore(tmp_path / "store", max_artifact_bytes=ArtifactSettings().max_artifact_bytes)
    evidence = Evidence.open(store, job_id=JOB, attempt=1, spool_root=tmp_path / "spool", max_job_bytes=10**9)
    try:
        return await run_steps(
            session,
            definition,
            report=reporter or Recorder(),
            evidence=evidence,
            step_timeout_ms=step_timeout_ms,
            artifact_policy=policy,
        )
    finally:
        if notes is not None:
            notes.extend(evidence.notes)
        await evidence.close()


def stored(tmp_path: Path, name: str) -> Path:
    """Where the file store of `run` keeps artifact `name` of the job."""
    return tmp_path / "store" / JOB / name


def pngs(root: Path) -> list[Path]:
    return sorted(root.rglob("*.png"))


def assert_png(path: Path) -> None:
    assert path.is_file(), path
    assert path.read_bytes()[:8] == PNG_MAGIC


async def test_every_action_passes_and_reports_progress(session: Session, site: str, tmp_path: Path) -> None:
    steps = [
        Step(Navigate("form.html")),
        Step(Fill("#user", "alice")),
        Step(Fill("#password", SECRET, secret=True)),
        Step(SelectOption("#plan", "pro")),
        Step(Check("#terms")),
        Step(Check("#news", checked=False)),
        Step(Hover("#menu")),
        Step(ExpectText("#hovered", "hovered")),
        Step(Press("#user", "Enter")),
        Step(ExpectText("#key", "enter pressed")),
        Step(Click("#submit"), name="submit the form"),
        Step(ExpectText("#msg", "Welcome, alice")),
        Step(ExpectVisible("#msg")),
        Step(ExpectTitle("Form Page")),
        Step(Screenshot("form", full_page=True)),
        Step(Screenshot()),
        Step(Click("#next")),
        Step(ExpectUrl(r"/second\.html$")),
        Step(WaitFor("#late", "visible")),
        Step(WaitFor("#gone", "detached")),
        Step(ExpectText("#late", "arrived")),
        Step(Wait(20)),
        Step(ExpectTitle("Second")),
        Step(Request("data.json", expect_json=(JsonExpectation("$.page", '"second"'),))),
    ]
    assert {step.action.kind for step in steps if step.action} == set(ACTIONS)
    recorder = Recorder()
    outcome = await run(session, steps, tmp_path=tmp_path, base_url=site, reporter=recorder)

    assert outcome.error is None, outcome.error
    assert outcome.success
    # The page load's status and the request's; a click that navigates is no page load of its own.
    assert [s.http_status for s in outcome.steps] == [200] + [0] * (len(steps) - 2) + [200]
    n = len(steps)
    assert [s.index for s in outcome.steps] == list(range(n))
    assert all(s.success and not s.skipped and s.error == "" for s in outcome.steps)
    assert outcome.steps[10].name == "submit the form"
    assert [c["percentage"] for c in recorder.calls] == [10 + 80 * i // n for i in range(n)]
    assert [c["current_step"] for c in recorder.calls] == list(range(1, n + 1))
    assert {c["total_steps"] for c in recorder.calls} == {n}
    assert recorder.calls[10]["message"] == f"Step 11/{n}: submit the form"
    assert recorder.calls[0]["step_name"] == "navigate form.html"

    assert outcome.artifacts == (f"{PREFIX}/form.png", f"{PREFIX}/step-15.png")
    assert outcome.steps[14].artifacts == (f"{PREFIX}/form.png",)
    for artifact in outcome.artifacts:
        assert_png(stored(tmp_path, artifact))
    # The secret was typed for real (the page said "Welcome") but never shown.
    assert all(SECRET not in s.name for s in outcome.steps)
    assert all(SECRET not in str(c) for c in recorder.calls)


async def test_a_failing_expectation_is_an_assertion_with_a_screenshot(
    session: Session, site: str, tmp_path: Path
) -> None:
    steps = [
        Step(Navigate(site + "form.html")),
        Step(Click("#submit")),  # nothing filled in: the page says "Error: bad form"
        Step(ExpectText("#msg", "Welcome"), timeout_ms=500),
        Step(Click("#next")),
        Step(ExpectTitle("Second")),
    ]
    outcome = await run(session, steps, tmp_path=tmp_path)

    assert outcome.error is not None
    assert outcome.error.category is ErrorCategory.ASSERTION
    assert outcome.error.step_index == 2
    assert outcome.error.retryable is False
    assert outcome.error.message == """expected "#msg" to contain 'Welcome', got 'Error: bad form'"""
    failed = outcome.steps[2]
    assert not failed.success and not failed.skipped
    assert failed.error == outcome.error.message
    assert 450 <= failed.duration_ms < SETUP_TIMEOUT_MS / 2  # the step's own 500 ms, not the default
    assert [s.skipped for s in outcome.steps] == [False, False, False, True, True]
    assert [s.success for s in outcome.steps] == [True, True, False, False, False]
    shot = f"{PREFIX}/step-02-failure.png"
    assert failed.artifacts == (shot,)
    assert outcome.artifacts == (shot,)
    assert_png(stored(tmp_path, shot))


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (Step(ExpectVisible("#late")), 'expected "#late" to be visible within 300 ms'),
        (Step(ExpectText("#nothing", "x")), "expected \"#nothing\" to contain 'x', but no element matched"),
        (Step(ExpectTitle("Nope")), "expected the title to contain 'Nope', got 'Sentinel Form Page'"),
        (Step(ExpectUrl(r"/second")), "expected the url to match '/second', got 'http://127.0.0.1:"),
    ],
)
async def test_every_expectation_fails_as_an_assertion(
    session: Session, site: str, tmp_path: Path, step: Step, expected: str
) -> None:
    # Only the step under test is short: the navigation before it keeps the generous default.
    steps = [Step(Navigate(site + "form.html")), dataclasses.replace(step, timeout_ms=300)]
    outcome = await run(session, steps, tmp_path=tmp_path)
    assert outcome.error is not None
    assert outcome.error.category is ErrorCategory.ASSERTION
    assert outcome.error.step_index == 1
    assert outcome.error.message.startswith(expected)


async def test_never_policy_takes_no_screenshot(session: Session, site: str, tmp_path: Path) -> None:
    steps = [Step(Navigate(site + "form.html")), Step(ExpectTitle("Nope"), timeout_ms=200)]
    outcome = await run(session, steps, tmp_path=tmp_path, policy=ArtifactPolicy.NEVER)
    assert outcome.error is not None
    assert outcome.artifacts == ()
    assert pngs(tmp_path) == []


async def test_always_policy_adds_a_final_screenshot(session: Session, site: str, tmp_path: Path) -> None:
    outcome = await run(session, [Step(Navigate(site + "form.html"))], tmp_path=tmp_path, policy=ArtifactPolicy.ALWAYS)
    assert outcome.error is None
    assert outcome.artifacts == (f"{PREFIX}/final.png",)
    assert_png(stored(tmp_path, f"{PREFIX}/final.png"))


async def test_an_element_that_never_comes_fails_the_test_as_an_assertion(
    session: Session, site: str, tmp_path: Path
) -> None:
    steps = [
        Step(Navigate(site + "form.html")),
        Step(WaitFor("#never"), timeout_ms=500),
        Step(Click("#submit")),
    ]
    outcome = await run(session, steps, tmp_path=tmp_path)
    assert outcome.error is not None
    # The page is not what the test expects: a verdict, retried only when the job asks.
    assert outcome.error.category is ErrorCategory.ASSERTION
    assert outcome.error.step_index == 1
    message = 'Locator.wait_for: Timeout 500ms exceeded. Call log: waiting for locator("#never") to be visible'
    assert outcome.error.message == message  # one line, the call log's words in it
    assert outcome.steps[2].skipped


@pytest.mark.parametrize(
    ("action", "timeout_ms", "said"),
    [
        # Long enough for Playwright to try the click once, however loaded the machine, and say why it could not.
        (
            Click("#covered"),
            3000,
            'Locator.click: Timeout 3000ms exceeded. Call log: waiting for locator("#covered"); locator resolved to'
            ' <button id="covered" type="button">Buy</button>; <div id="overlay"></div> intercepts pointer events',
        ),
        (Click("#absent"), 500, 'Locator.click: Timeout 500ms exceeded. Call log: waiting for locator("#absent")'),
        # The fill's own error, not the <select> fallback's.
        (Fill("#plain", "x"), 3000, "Locator.fill: Error: Element is not an <input>, <textarea>, <select> or"),
    ],
    ids=["covered", "absent", "not-a-field"],
)
async def test_an_element_a_step_cannot_act_on_says_what_playwright_saw(
    session: Session, site: str, tmp_path: Path, action: Click | Fill, timeout_ms: int, said: str
) -> None:
    steps = [Step(Navigate(site + "actions.html")), Step(action, timeout_ms=timeout_ms)]
    outcome = await run(session, steps, tmp_path=tmp_path)
    assert outcome.error is not None and outcome.error.category is ErrorCategory.ASSERTION
    assert outcome.error.message.startswith(said) and "\n" not in outcome.error.message


def test_a_secret_in_the_call_log_is_masked_even_cut_short() -> None:
    secret = "Hunter2-very-secret-value"
    message = (
        "Locator.click: Timeout 500ms exceeded.\nCall log:\n"
        '  - waiting for locator("#go").first\n'
        f'    - locator resolved to <p id="echo">Your new password is now set: {secret[:5]}…</p>\n'
        f'      - <p id="echo">{secret}</p> intercepts pointer events\n'
    )
    said = _error_text(PlaywrightTimeoutError(message), (secret,))
    assert said == (
        'Locator.click: Timeout 500ms exceeded. Call log: waiting for locator("#go");'
        ' <p id="echo">***</p> intercepts pointer events'
    )
    assert "Hunte" not in said


async def test_expect_text_compares_white_space_as_playwright_does(session: Session, site: str, tmp_path: Path) -> None:
    steps = [
        Step(Navigate(site + "actions.html")),
        Step(ExpectText("#spaced", "Hello world")),  # a line break and indentation in the HTML
        Step(ExpectText("#price", " Price: 10")),  # a no-break space
        Step(ExpectText("#spaced", "Helloworld"), timeout_ms=300),
    ]
    outcome = await run(session, steps, tmp_path=tmp_path)
    assert [s.success for s in outcome.steps] == [True, True, True, False]
    assert outcome.error is not None and outcome.error.category is ErrorCategory.ASSERTION
    # Text of white space only is looked for as it is (normalised, it would be found in anything).
    assert _contains("a  b", "  ") and not _contains("Price:\xa010", "  ")


@pytest.fixture
async def unanswered() -> AsyncIterator[str]:
    """A URL whose server takes the request and never answers; its connections close with the test."""
    async with silent_server() as url:
        yield f"{url}/slow"


async def test_a_page_still_loading_gets_its_failure_screenshot(
    session: Session, tmp_path: Path, unanswered: str
) -> None:
    """Playwright's screenshot waits for a page whose navigation has not committed to settle, which
    it never does: what the browser shows (the blank page the user would have seen) is kept."""
    notes: list[str] = []
    outcome = await run(session, [Step(Navigate(unanswered), timeout_ms=1000)], tmp_path=tmp_path, notes=notes)
    assert outcome.error is not None and outcome.error.category is ErrorCategory.TIMEOUT
    shot = f"{PREFIX}/step-00-failure.png"
    assert outcome.steps[0].artifacts == (shot,) and notes == [], notes
    assert_png(stored(tmp_path, shot))


async def test_a_page_still_loading_after_a_secret_was_typed_gets_a_note_instead(
    session: Session, site: str, tmp_path: Path, unanswered: str
) -> None:
    """Only a settled page has its secret fields covered: nothing is shown raw, and the notes say why."""
    steps = [
        Step(Navigate(site + "form.html")),
        Step(Fill("#password", SECRET, secret=True)),
        Step(Navigate(unanswered), timeout_ms=1000),
    ]
    notes: list[str] = []
    outcome = await run(session, steps, tmp_path=tmp_path, notes=notes)
    assert outcome.error is not None and outcome.error.step_index == 2
    assert outcome.steps[2].artifacts == () and pngs(tmp_path) == []
    assert len(notes) == 1 and notes[0].startswith(f"{PREFIX}/step-02-failure.png not taken: the page did not settle")


@pytest.mark.parametrize(
    "bad",
    [Step(Click("div["), timeout_ms=2000), Step(Click("xpath=//*["), timeout_ms=2000), Step(Press("#user", "NotAKey"))],
    ids=["css", "xpath", "key"],
)
async def test_a_selector_or_key_playwright_cannot_read_is_the_definitions_fault(
    session: Session, site: str, tmp_path: Path, bad: Step
) -> None:
    """Not the browser's: a VALIDATION error, which is never retried."""
    outcome = await run(session, [Step(Navigate(site + "form.html")), bad], tmp_path=tmp_path)
    assert outcome.error is not None
    assert (outcome.error.category, outcome.error.step_index) == (ErrorCategory.VALIDATION, 1)


async def test_a_refused_connection_is_a_network_error(session: Session, tmp_path: Path) -> None:
    outcome = await run(session, [Step(Navigate("/"))], tmp_path=tmp_path, base_url=f"http://127.0.0.1:{closed_port()}")
    assert outcome.error is not None
    assert outcome.error.category is ErrorCategory.NETWORK
    assert "net::ERR_CONNECTION_REFUSED" in outcome.error.message
    assert outcome.error.step_index == 0


async def test_an_http_error_status_is_not_a_failure_unless_the_step_expects_another(
    session: Session, site: str, tmp_path: Path
) -> None:
    outcome = await run(session, [Step(Navigate("missing.html"))], tmp_path=tmp_path, base_url=site)
    assert outcome.error is None and outcome.steps[0].http_status == 404

    steps = [
        Step(Navigate("form.html", expect_status=200)),
        Step(Navigate("form.html#user", expect_status=200)),  # the same document: its status stands
        Step(Navigate("missing.html", expect_status=200)),
    ]
    outcome = await run(session, steps, tmp_path=tmp_path, base_url=site)
    assert [(s.success, s.http_status) for s in outcome.steps] == [(True, 200), (True, 200), (False, 404)]
    assert outcome.error is not None and outcome.error.category is ErrorCategory.ASSERTION
    assert outcome.error.message == f"expected {site}missing.html to answer HTTP 200, got HTTP 404"


async def test_a_secret_never_appears_in_errors(session: Session, site: str, tmp_path: Path) -> None:
    # The page echoes what was typed, so the assertion's "got ..." would carry the secret.
    steps = [
        Step(Navigate(site + "echo.html")),
        Step(Fill("#field", SECRET, secret=True)),
        Step(ExpectText("#out", "something else"), timeout_ms=300),
    ]
    recorder = Recorder()
    outcome = await run(session, steps, tmp_path=tmp_path, reporter=recorder)
    assert outcome.error is not None
    assert outcome.error.category is ErrorCategory.ASSERTION
    assert outcome.error.message == """expected "#out" to contain 'something else', got '***'"""
    assert SECRET not in repr(outcome)
    assert SECRET not in repr(recorder.calls)

    # A fill that fails outright does not leak it either.
    failing = [Step(Navigate(site + "echo.html")), Step(Fill("#absent", SECRET, secret=True), timeout_ms=200)]
    outcome = await run(session, failing, tmp_path=tmp_path)
    assert outcome.error is not None
    assert outcome.error.category is ErrorCategory.ASSERTION
    assert SECRET not in repr(outcome)


async def test_screenshot_names_stay_inside_the_prefix(session: Session, site: str, tmp_path: Path) -> None:
    steps = [Step(Navigate(site + "form.html")), Step(Screenshot("../../etc/evil name.png"))]
    outcome = await run(session, steps, tmp_path=tmp_path)
    assert outcome.error is None
    (artifact,) = outcome.artifacts
    assert artifact == f"{PREFIX}/etc-evil-name.png"
    assert_png(stored(tmp_path, artifact))


async def test_a_step_without_an_action_is_a_validation_error(session: Session, site: str, tmp_path: Path) -> None:
    outcome = await run(session, [Step(Navigate(site + "form.html")), Step(None)], tmp_path=tmp_path)
    assert outcome.error is not None
    assert outcome.error.category is ErrorCategory.VALIDATION
    assert outcome.error.message.startswith("definition.steps[1]: has no action")


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        (WaitFor("#x", "gone"), "definition.steps[1].wait_for.state"),
        (ExpectUrl("("), "definition.steps[1].expect_url.pattern"),
    ],
)
def test_what_the_runner_trusts_validation_rejects(bad: Action, where: str) -> None:
    # The runner does not check a wait_for state or an expect_url pattern again: the executor
    # validates every job before it runs it, and this is where such a definition stops.
    definition = TestDefinition(name="t", steps=(Step(Navigate("http://127.0.0.1/")), Step(bad)))
    assert [violation.field for violation in validate_definition(definition)] == [where]


async def test_a_closed_context_is_a_browser_error(session: Session, site: str, tmp_path: Path) -> None:
    await session.close()
    outcome = await run(session, [Step(Navigate(site + "form.html"))], tmp_path=tmp_path)
    assert outcome.error is not None
    assert outcome.error.category is ErrorCategory.BROWSER
    assert outcome.error.step_index == -1
    assert [s.skipped for s in outcome.steps] == [True]


async def test_a_page_dying_mid_step_is_a_browser_error(session: Session, site: str, tmp_path: Path) -> None:
    recorder = Recorder()
    steps = [Step(Navigate(site + "form.html")), Step(WaitFor("#never"), timeout_ms=60_000)]
    task = asyncio.create_task(run(session, steps, tmp_path=tmp_path, reporter=recorder))
    await recorder.wait_started(2)
    await session.close()
    outcome = await asyncio.wait_for(task, timeout=30)
    assert outcome.error is not None
    assert outcome.error.category is ErrorCategory.BROWSER
    assert outcome.error.step_index == 1
    assert outcome.artifacts == ()  # the failure screenshot could not be taken, and that is no error


async def test_cancelling_propagates(session: Session, site: str, tmp_path: Path) -> None:
    recorder = Recorder()
    steps = [Step(Navigate(site + "form.html")), Step(WaitFor("#never"), timeout_ms=60_000), Step(Wait(1))]
    task = asyncio.create_task(run(session, steps, tmp_path=tmp_path, reporter=recorder))
    await recorder.wait_started(2)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 5
    assert 3 not in recorder.started


async def test_cancelling_a_wait_step_propagates(session: Session, tmp_path: Path) -> None:
    recorder = Recorder()
    task = asyncio.create_task(run(session, [Step(Wait(60_000))], tmp_path=tmp_path, reporter=recorder))
    await recorder.wait_started(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_definition_without_steps_passes(session: Session, tmp_path: Path) -> None:
    recorder = Recorder()
    outcome = await run(session, [], tmp_path=tmp_path, reporter=recorder)
    assert outcome == RunOutcome(steps=(), error=None, artifacts=())
    assert recorder.calls == []


async def test_a_zero_step_timeout_is_refused(session: Session, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="step_timeout_ms"):
        await run(session, [Step(Wait(1))], tmp_path=tmp_path, step_timeout_ms=0)


async def test_a_fill_of_a_select_chooses_the_option_by_value_or_label(
    session: Session, site: str, tmp_path: Path
) -> None:
    # Chrome's Recorder records choosing an option as a `change`, imported as a fill.
    steps = [
        Step(Navigate(site + "form.html")),
        Step(Fill("#plan", "Pro")),  # by label
        Step(Fill("#plan", "no-such-plan"), timeout_ms=500),
    ]
    outcome = await run(session, steps, tmp_path=tmp_path)
    assert [s.success for s in outcome.steps] == [True, True, False], outcome.steps
    assert await session.context.pages[0].locator("#plan").input_value() == "pro"
