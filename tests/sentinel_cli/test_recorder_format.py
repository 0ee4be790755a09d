"""The Chrome Recorder format as its own tools and a real browser see it.

- Every recording under recordings/ is what `parse()` of `@puppeteer/replay` (the format's parser,
  installed by `make install` into tests/recorder_tools) accepts, field for field, and the converter
  reads each selector's form as its `getSelectorType` does.
- The converter's key table agrees with the format's `Key` type and with what Playwright's keyboard
  presses in Chromium.
- A recorded key is pressed where a keyboard would send it.
- Every selector alternative of recordings/selectors.json that the converter can express finds, in
  Chromium, the element the recording's CSS finds on the page it was recorded on.
- A recorded frame path reaches the frame Chromium lists at those indexes.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, async_playwright

from executor_service.actions import locate
from sentinel_cli import recorder
from sentinel_client._recorder_keys import playwright_knows
from sentinel_client._recorder_selectors import Form, alternative, choose, form_of
from sentinel_client._recorder_steps import FOCUSED
from tests.support import CHROMIUM_ARGS, chromium_path, serve_directory

RECORDINGS = Path(__file__).with_name("recordings")
TOOLS = Path(__file__).resolve().parents[1] / "recorder_tools"
REPLAY = TOOLS / "node_modules" / "@puppeteer" / "replay"
#: The origin the bundled recordings were made on; tests put the origin they serve the site on instead.
RECORDED_ORIGIN = "http://127.0.0.1:8088"

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (make install installs it)")


def replay_installed() -> None:
    assert REPLAY.is_dir(), f"@puppeteer/replay is not installed in {TOOLS}: run `make install`"


def parse_with_replay(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """What `parse.mjs` says of each recording: {"flow", "types"} or {"error"}, by path."""
    replay_installed()
    done = subprocess.run(
        ["node", str(TOOLS / "parse.mjs"), *map(str, paths)], capture_output=True, text=True, timeout=60, check=True
    )
    results: dict[str, dict[str, Any]] = json.loads(done.stdout)
    return results


def bundled() -> list[Path]:
    return sorted(RECORDINGS.glob("*.json"))


@needs_node
def test_every_bundled_recording_is_what_the_formats_parser_accepts_field_for_field() -> None:
    paths = bundled()
    assert {p.stem for p in paths} >= {"checkout", "selectors", "keyboard", "unsupported"}
    results = parse_with_replay(paths)
    for path in paths:
        result = results[str(path)]
        assert "error" not in result, f"{path.name}: {result.get('error')}"
        # parse() keeps only the fields it knows: anything it dropped was not the format.
        assert result["flow"] == json.loads(path.read_text(encoding="utf-8")), path.name


@needs_node
def test_every_step_type_of_the_format_is_in_a_bundled_recording() -> None:
    replay_installed()
    declared = (REPLAY / "lib" / "main.d.ts").read_text(encoding="utf-8")
    enum = re.search(r"declare enum StepType \{(.*?)\}", declared, re.DOTALL)
    assert enum is not None
    step_types = set(re.findall(r'= "(\w+)"', enum.group(1)))
    used = {step["type"] for path in bundled() for step in json.loads(path.read_text(encoding="utf-8"))["steps"]}
    assert step_types and step_types <= used, f"not in any recording: {sorted(step_types - used)}"


@needs_node
def test_the_converter_reads_each_selectors_form_as_the_format_does() -> None:
    results = parse_with_replay(bundled())
    types = {part: kind for result in results.values() for part, kind in result["types"].items()}
    assert len(types) > 20
    assert {part: form_of(part) for part in types} == types


@needs_node
def test_the_parser_does_refuse_what_is_not_the_format(tmp_path: Path) -> None:
    # Guards the guard: parse.mjs reports a refusal rather than passing everything.
    document = json.loads((RECORDINGS / "checkout.json").read_text(encoding="utf-8"))
    del document["steps"][2]["offsetX"]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(document), encoding="utf-8")
    assert parse_with_replay([broken])[str(broken)] == {"error": "Step.offsetX is not a number"}


def puppeteer_keys() -> list[str]:
    """Every member of the format's `Key` type, read from @puppeteer/replay's declarations."""
    replay_installed()
    declared = (REPLAY / "lib" / "main.d.ts").read_text(encoding="utf-8")
    union = re.search(r"^type Key = (.*);$", declared, re.MULTILINE)
    assert union is not None
    literals = re.findall(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*\"""", union.group(1))
    return [ast.literal_eval(literal) for literal in literals]


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield await browser.new_page()
        finally:
            await browser.close()


@needs_node
async def test_the_key_table_agrees_with_the_format_and_with_playwright(page: Page) -> None:
    keys = puppeteer_keys()
    assert len(keys) > 200 and {"Enter", "Tab", "a", " ", "\r", "Power"} <= set(keys)
    await page.set_content("<input id=field>")
    await page.focus("#field")
    disagree = []
    for key in keys:
        try:
            await page.keyboard.press(key)
            pressed = True
        except Exception as exc:  # Playwright's "Unknown key"
            assert "Unknown key" in str(exc), exc
            pressed = False
        if pressed != playwright_knows(key):
            disagree.append((key, pressed))
    assert disagree == [], "(key, Playwright pressed it): the converter says otherwise"


async def test_a_recorded_key_goes_where_the_keyboard_would_send_it(page: Page) -> None:
    """Into the focused element, or the body when nothing has focus, and focus moves as with a keyboard."""
    await page.set_content("<input id=a><input id=b>")

    async def press(key: str) -> str:
        await page.locator(FOCUSED).first.press(key)
        return str(await page.evaluate("document.activeElement.id || document.activeElement.tagName"))

    assert await page.locator(FOCUSED).evaluate_all("found => found.map(e => e.tagName)") == ["BODY"]
    assert [await press(key) for key in ("Tab", "Tab", "Shift+Tab", "x")] == ["a", "b", "a", "a"]
    assert await page.locator("#a").input_value() == "x"


async def test_every_expressible_alternative_finds_the_recorded_element_in_chromium(page: Page) -> None:
    document = json.loads((RECORDINGS / "selectors.json").read_text(encoding="utf-8"))
    with serve_directory(RECORDINGS / "site") as origin:
        await page.goto(document["steps"][0]["url"].replace(RECORDED_ORIGIN, origin))
        checked = 0
        for index, step in enumerate(document["steps"]):
            alternatives = [[a] if isinstance(a, str) else a for a in step.get("selectors", [])]
            if not alternatives:
                continue
            chosen, _ = choose(alternatives)
            assert chosen is not None, f"steps[{index}]"
            target = page.locator(chosen).first
            assert await target.count() == 1, f"steps[{index}]: {chosen} finds nothing"
            for parts in alternatives:
                converted = alternative(parts)
                if isinstance(converted, str):
                    continue
                form, selector = converted
                found = page.locator(selector)
                if not await found.count():
                    # Only the guess from an aria/ name without a role may miss (a name from content).
                    assert form == Form.ARIA_LABEL, f"steps[{index}]: {selector} finds nothing"
                    continue
                same = await found.first.evaluate("(el, other) => el === other", await target.element_handle())
                assert same, f"steps[{index}]: {selector} finds another element than {chosen}"
                checked += 1
    assert checked >= 25


async def test_a_recorded_frame_path_reaches_the_frame_chrome_lists_at_those_indexes(page: Page) -> None:
    """The Recorder's `frame: [i, j]` is `childFrames()[i].childFrames()[j]` (what @puppeteer/replay's
    runner walks); the imported step's frames, the i-th then the j-th `<iframe>` in document order,
    reach that frame in Chromium."""
    inner = "<iframe name='{0}.0' srcdoc='<p>{0}.0</p>'></iframe><iframe name='{0}.1' srcdoc='<p>{0}.1</p>'></iframe>"
    await page.set_content(
        "<p>top</p>" + "".join(f'<div><iframe name="{i}" srcdoc="{inner.format(i)}"></iframe></div>' for i in range(3))
    )
    paths = [(i, j) for i, child in enumerate(page.main_frame.child_frames) for j in range(len(child.child_frames))]
    assert len(paths) == 6
    for i, j in paths:
        listed = page.main_frame.child_frames[i].child_frames[j]
        step = recorder.convert_recording(
            {"title": "t", "steps": [{"type": "click", "selectors": [["p"]], "frame": [i, j]}]}
        ).definition["steps"][0]
        reached = locate(page, tuple(step["frames"]), step["click"]["selector"]).first
        assert await reached.text_content() == listed.name == f"{i}.{j}"
