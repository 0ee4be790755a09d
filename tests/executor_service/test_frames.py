"""Steps in iframes (`Step.frames`) against real Chromium: a frame of the page, a frame in a frame,
and a frame from another site (its own renderer process), each served on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from playwright.async_api import FloatRect

from executor_service.actions import locate
from executor_service.guard import Session
from shared.actions import ACTIONS, Is, holds
from shared.model import (
    Check,
    Click,
    ErrorCategory,
    ExpectText,
    ExpectVisible,
    Fill,
    Hover,
    Navigate,
    Press,
    Screenshot,
    SelectOption,
    Step,
    TestDefinition,
    WaitFor,
)
from shared.validation import validate_definition
from tests.executor_service.test_runner import PREFIX, SECRET, run, session, site, stored

__all__ = ["session", "site"]  # the fixtures, shared with the runner's tests

MAGENTA = (255, 0, 255)  # what Playwright paints over a masked element
#: What a click's error says of an element missing in a frame that is there (no word of the frame).
ELEMENT_IN_FRAME = 'waiting for locator("#login").content_frame.locator("#no-such-button")'


@pytest.mark.parametrize(
    "frames",
    [("#login",), ("#outer", "#inner"), ("#remote",)],
    ids=["iframe", "iframe-in-iframe", "iframe-of-another-site"],
)
async def test_every_element_action_acts_in_the_steps_frame(
    session: Session, site: str, tmp_path: Path, frames: tuple[str, ...]
) -> None:
    framed = [
        Step(Fill("#user", "alice"), frames=frames),
        Step(Fill("#password", SECRET, secret=True), frames=frames),
        Step(SelectOption("#plan", "pro"), frames=frames),
        Step(Check("#terms"), frames=frames),
        Step(Check("#news", checked=False), frames=frames),
        Step(Hover("#menu"), frames=frames),
        Step(ExpectText("#hovered", "hovered"), frames=frames),
        Step(Press("#user", "Enter"), frames=frames),
        Step(ExpectText("#key", "enter pressed"), frames=frames),
        Step(Click("#submit"), frames=frames),
        Step(WaitFor("#msg", "visible"), frames=frames),
        Step(ExpectText("#msg", "Welcome, alice"), frames=frames),  # the form checked every field
        Step(ExpectVisible("#msg"), frames=frames),
    ]
    element_kinds = {kind for kind, cls in ACTIONS.items() if Is.SELECTOR in holds(cls).values()}
    assert {step.action.kind for step in framed if step.action} == element_kinds
    steps = [
        Step(Navigate("frames.html")),
        *framed,
        Step(ExpectText("h1", "Frames")),  # the next step without frames acts on the page again
        Step(Screenshot("framed")),
    ]
    definition = TestDefinition(name="t", steps=tuple(steps), base_url=site)
    assert validate_definition(definition) == []

    outcome = await run(session, steps, tmp_path=tmp_path, base_url=site)

    assert outcome.error is None, outcome.error
    assert outcome.steps[1].name == f"fill #user with 'alice' in frame {' » '.join(frames)}"
    assert outcome.steps[-2].name == "expect h1 to contain 'Frames'"
    # The secret typed in the frame is masked in the page's screenshot, and only it.
    page = session.context.pages[0]
    box = await locate(page, frames, "#password").first.bounding_box()
    assert box is not None
    with Image.open(stored(tmp_path, f"{PREFIX}/framed.png")) as shot:
        rgb = shot.convert("RGB")
        inside = [
            rgb.getpixel((int(box["x"] + box["width"] * fx), int(box["y"] + box["height"] * fy)))
            for fx in (0.2, 0.5, 0.8)
            for fy in (0.3, 0.7)
        ]
        outside = rgb.getpixel((int(box["x"] + box["width"] + 40), int(box["y"] + box["height"] / 2)))
    assert all(p == MAGENTA for p in inside), "the secret field in the frame is masked"
    assert outside != MAGENTA, "only the field is masked"
    # The covers Sentinel paints in the frame before Playwright's own masks are gone after the shot.
    assert await locate(page, frames, "[data-sentinel-mask]").count() == 0


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            Step(ExpectText("#msg", "x"), frames=("#nowhere",)),
            'expected "#msg" in frame "#nowhere" to contain \'x\', but no element matched within 500 ms'
            " (no <iframe> matched '#nowhere')",
        ),
        (
            Step(ExpectVisible("#user"), frames=("#outer", "#missing")),
            'expected "#user" in frame "#outer" » "#missing" to be visible within 500 ms'
            " (no <iframe> matched '#missing')",
        ),
        (Step(Click("#submit"), frames=("#nowhere",)), "(no <iframe> matched '#nowhere')"),
        (Step(Click("#no-such-button"), frames=("#login",)), ELEMENT_IN_FRAME),
        (Step(Click("#submit"), frames=("h1",)), "resolved to <h1>Frames</h1>, <iframe> was expected"),
        (
            Step(WaitFor("#user", "hidden"), frames=("#outer", "#nowhere")),
            'expected "#user" in frame "#outer" » "#nowhere" hidden, but no <iframe> matched'
            " '#nowhere' within 500 ms",
        ),
        (
            Step(WaitFor("#user", "detached"), frames=("#nowhere",)),
            "detached, but no <iframe> matched '#nowhere' within 500 ms",
        ),
    ],
    ids=[
        "expect-text",
        "expect-visible-nested",
        "click",
        "click-missing-element",
        "not-an-iframe",
        "hidden",
        "detached",
    ],
)
async def test_a_frame_or_element_never_found_fails_the_step_as_an_assertion(
    session: Session, site: str, tmp_path: Path, step: Step, message: str
) -> None:
    steps = [Step(Navigate("frames.html")), Step(step.action, frames=step.frames, timeout_ms=500)]
    outcome = await run(session, steps, tmp_path=tmp_path, base_url=site)

    assert outcome.error is not None
    assert outcome.error.category is ErrorCategory.ASSERTION, outcome.error
    assert outcome.error.step_index == 1
    assert message in outcome.error.message
    assert ("no <iframe> matched" in outcome.error.message) is (message != ELEMENT_IN_FRAME)
    assert outcome.steps[1].name.endswith(f"in frame {' » '.join(step.frames)}")


def magenta_share(shot: Path, box: FloatRect) -> float:
    """The share of points inside `box` (CSS pixels of the page) that are mask magenta."""
    with Image.open(shot) as image:
        rgb = image.convert("RGB")
        points = [
            rgb.getpixel((int(box["x"] + box["width"] * fx), int(box["y"] + box["height"] * fy)))
            for fx in (0.2, 0.5, 0.8)
            for fy in (0.3, 0.7)
        ]
    return sum(p == MAGENTA for p in points) / len(points)


async def test_a_secrets_mask_stays_on_its_frame_when_the_page_adds_an_iframe_before_it(
    session: Session, site: str, tmp_path: Path
) -> None:
    first_frame = ("iframe, frame >> nth=0",)  # how the Recorder's `frame: [0]` is imported: by position
    steps = [
        Step(Navigate("shift.html")),
        Step(Fill("#password", SECRET, secret=True), frames=first_frame),
        Step(Click("#promo")),
        Step(ExpectText("h1", "Second"), frames=first_frame),  # the first iframe is the offer now
        Step(Screenshot("after-offer")),
    ]
    outcome = await run(session, steps, tmp_path=tmp_path, base_url=site)

    assert outcome.error is None, outcome.error
    page = session.context.pages[0]
    field = await locate(page, ("#payment",), "#password").first.bounding_box()
    assert field is not None
    assert magenta_share(stored(tmp_path, f"{PREFIX}/after-offer.png"), field) == 1, "the typed secret is covered"


async def test_a_secrets_frame_replaced_by_the_page_leaves_nothing_to_mask_and_fails_no_screenshot(
    session: Session, site: str, tmp_path: Path
) -> None:
    steps = [
        Step(Navigate("shift.html")),
        Step(Fill("#password", SECRET, secret=True), frames=("#payment",)),
        Step(Click("#pay")),
        Step(ExpectText("#payment", "Paid")),  # the frame is a <div> now
        Step(Screenshot("receipt")),
        Step(ExpectText("#payment", "never"), timeout_ms=300),  # its failure screenshot is taken too
    ]
    notes: list[str] = []
    outcome = await run(session, steps, tmp_path=tmp_path, base_url=site, notes=notes)

    assert outcome.error is not None and outcome.error.step_index == 5, outcome.error
    assert [s.success for s in outcome.steps] == [True] * 5 + [False]
    assert outcome.artifacts == (f"{PREFIX}/receipt.png", f"{PREFIX}/step-05-failure.png"), notes
    assert notes == []
