"""Chrome Recorder recordings → Sentinel definitions: each conversion rule, each refusal and its message,
the `sentinel import` command, and `sentinel submit`'s file loader taking a recording as it is.

Recordings here are small dicts in the Recorder's format; the recordings under recordings/ are checked
with the format's own parser, and in Chromium, in test_recorder_format.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, cast

import pytest

from sentinel_cli import recorder
from sentinel_cli.main import main
from sentinel_client._recorder_selectors import accessible_name, alternative, choose, names_password, names_select
from sentinel_client._recorder_steps import FOCUSED, UNSUPPORTED
from shared.errors import ValidationError

RECORDINGS = Path(__file__).with_name("recordings")
SITE = "http://127.0.0.1:8088"
CSS_ETC = [["aria/Sign in"], ["#login"], ['xpath///*[@id="login"]'], ["pierce/#login"], ["text/Sign in"]]


def recording(*steps: dict[str, Any], title: str = "Sign in", **extra: Any) -> dict[str, Any]:
    return {"title": title, **extra, "steps": list(steps)}


def click(selectors: list[list[str]] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "type": "click",
        "target": "main",
        "selectors": CSS_ETC if selectors is None else selectors,
        "offsetY": 5,
        "offsetX": 9,
        **extra,
    }


def key(kind: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "target": "main", "key": name, **extra}


def navigate(url: str = f"{SITE}/", **extra: Any) -> dict[str, Any]:
    return {"type": "navigate", "url": url, **extra}


def steps_of(*steps: dict[str, Any], **extra: Any) -> list[dict[str, Any]]:
    """The Sentinel steps of a recording of `steps` (after a navigate, which is dropped)."""
    converted = recorder.convert_recording(recording(navigate(), *steps, **extra)).definition["steps"]
    return list(converted[1:])


def refusal(*steps: dict[str, Any]) -> list[str]:
    """Each violation, as `field: description`, when a recording of `steps` is converted."""
    with pytest.raises(ValidationError) as caught:
        recorder.convert_recording(recording(*steps))
    return [f"{v.field}: {v.description}" for v in caught.value.violations]


# --- telling a recording from a definition ---------------------------------------------------


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (recording(navigate()), True),
        ({"steps": [{"comment": "x"}, {"type": "click"}]}, True),
        ({"name": "x", "steps": [{"navigate": {"url": "/"}}]}, False),
        ({"definition": {"name": "x", "steps": [{"click": {"selector": "a"}}]}}, False),
        ({"title": "empty", "steps": []}, False),
        ([{"type": "click"}], False),
        ({"steps": {"type": "click"}}, False),
    ],
)
def test_a_recording_is_told_by_steps_that_have_a_type(document: object, expected: bool) -> None:
    assert recorder.is_recording(document) is expected


# --- the definition ----------------------------------------------------------------------------


def test_the_title_names_the_definition_and_set_viewport_sizes_it() -> None:
    viewport = {"type": "setViewport", "width": 1280, "height": 720, "deviceScaleFactor": 2}
    viewport.update(isMobile=False, hasTouch=False, isLandscape=False)
    definition = recorder.convert_recording(recording(viewport, navigate(), viewport, title=" Checkout ")).definition
    assert definition == {
        "name": "Checkout",
        "viewport": {"width": 1280, "height": 720},
        "steps": [{"navigate": {"url": f"{SITE}/"}}],
    }


@pytest.mark.parametrize(
    ("title", "name"), [("", recorder.UNTITLED), ("  ", recorder.UNTITLED), ("x" * 300, "x" * 200)]
)
def test_a_blank_or_long_title_still_makes_a_valid_name(title: str, name: str) -> None:
    assert recorder.convert_recording(recording(navigate(), title=title)).definition["name"] == name


def test_an_asserted_navigation_becomes_url_and_title_checks_after_its_step() -> None:
    url = f"{SITE}/search?q=a+b&page=2"
    events = [{"type": "navigation", "url": url, "title": "Results"}]
    converted = steps_of(key("keyDown", "Enter", assertedEvents=events), key("keyUp", "Enter"))
    assert [next(iter(s.keys() - {"name", "timeoutMs"})) for s in converted] == ["press", "expectUrl", "expectTitle"]
    pattern = converted[1]["expectUrl"]["pattern"]
    assert converted[1]["name"] == f"navigated to {url}"
    assert re.search(pattern, url) and not re.search(pattern, url + "&more") and not re.search(pattern, "x" + url)
    assert converted[2] == {"expectTitle": {"text": "Results"}}


def test_an_empty_title_or_url_in_an_asserted_navigation_checks_nothing() -> None:
    events = [{"type": "navigation", "url": "", "title": ""}]
    assert steps_of(click(assertedEvents=events)) == [{"name": 'click "Sign in"', "click": {"selector": "#login"}}]


def test_timeouts_come_from_the_step_or_else_the_recording() -> None:
    events = [{"type": "navigation", "title": "Home"}]
    converted = recorder.convert_recording(
        recording(navigate(), click(timeout=2500, assertedEvents=events), click(), timeout=9000)
    ).definition["steps"]
    assert [s.get("timeoutMs") for s in converted] == [9000, 2500, 2500, 9000]
    assert recorder.convert_recording(recording(navigate())).definition["steps"] == [{"navigate": {"url": f"{SITE}/"}}]


# --- steps -------------------------------------------------------------------------------------


def test_click_hover_and_navigate_are_the_same_steps_named_by_their_accessible_name() -> None:
    hover = {"type": "hover", "target": "main", "selectors": [["#menu"]]}
    assert steps_of(click(), hover, navigate(f"{SITE}/next")) == [
        {"name": 'click "Sign in"', "click": {"selector": "#login"}},
        {"hover": {"selector": "#menu"}},
        {"navigate": {"url": f"{SITE}/next"}},
    ]


def test_change_fills_keeps_a_password_secret_and_selects_in_a_select() -> None:
    change = {"type": "change", "target": "main"}
    assert steps_of(
        {**change, "value": "ada", "selectors": [["aria/Name"], ["#name"]]},
        {**change, "value": "hunter2", "selectors": [["#password"]]},
        {**change, "value": "fr", "selectors": [["aria/Country"], ["form > select.big"]]},
    ) == [
        {"name": 'fill "Name"', "fill": {"selector": "#name", "value": "ada"}},
        {"fill": {"selector": "#password", "value": "hunter2", "secret": True}},
        {"name": 'select in "Country"', "select": {"selector": "form > select.big", "value": "fr"}},
    ]


@pytest.mark.parametrize(
    ("selectors", "expected"),
    [
        ([["select"]], True),
        ([["#f > select:nth-of-type(2)"]], True),
        ([['select[name="a b"]']], True),
        ([["pierce/div SELECT.x"]], True),
        ([["#country"], ["xpath//html/body/form/select[2]"]], True),
        ([["my-form", "select"]], True),
        ([["#country"]], False),
        ([[".selected"]], False),
        ([["select-box"]], False),
        ([['input[name="select"]']], False),
        ([['xpath///*[@id="select"]']], False),
        ([['aria/Country[role="combobox"]']], False),
    ],
)
def test_a_select_is_recognised_only_when_a_selector_shows_the_tag(selectors: list[list[str]], expected: bool) -> None:
    assert names_select(selectors) is expected


def test_a_password_is_recognised_in_any_alternative() -> None:
    assert names_password([["#pw"], ["aria/Password"]]) and not names_password([["#pw"], ["aria/PIN"]])


def test_set_viewport_refuses_emulation_and_a_second_size() -> None:
    size = {"type": "setViewport", "deviceScaleFactor": 1, "isLandscape": False}
    desktop = {**size, "width": 1280, "height": 720, "isMobile": False, "hasTouch": False}
    phone = {**size, "width": 390, "height": 844, "isMobile": True, "hasTouch": True}
    assert refusal(desktop, navigate(), {**desktop, "width": 800}, phone) == [
        "steps[2] (setViewport): a second viewport size (800x720): a Sentinel test has one",
        "steps[3] (setViewport): Sentinel sets the viewport's size only, not mobile or touch emulation",
    ]


def test_what_sentinel_validation_refuses_is_named_by_the_recorded_step() -> None:
    huge = {"type": "setViewport", "width": 5000, "height": 720, "isMobile": False, "hasTouch": False}
    assert refusal(huge, navigate("chrome://new-tab-page/"), navigate()) == [
        "steps[0] (setViewport): viewport.width must be between 100 and 3840 px, got 5000",
        "steps[1] (navigate): navigate.url must be an absolute http or https URL with a host, "
        "got 'chrome://new-tab-page/'",
    ]


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        (click(button="secondary"), "Sentinel clicks with the primary button only, not 'secondary'"),
        (click(type="doubleClick"), "Sentinel's click has no click count"),
        ({"type": "scroll", "x": 0, "y": 400}, "Sentinel has no scroll step (Playwright scrolls"),
        ({"type": "emulateNetworkConditions", "download": 1, "upload": 1, "latency": 5}, "Sentinel cannot throttle"),
        ({"type": "customStep", "name": "x", "parameters": {}}, "a custom step runs code from a Recorder extension"),
        ({"type": "waitForExpression", "expression": "window.ready === true"}, "Sentinel cannot evaluate"),
        ({"type": "teleport"}, "Sentinel does not know this step type"),
        (click(target="https://popup.test/"), "it runs in another target (https://popup.test/: a popup, or an"),
        (click(frame=[0], target="https://widgets.test/"), "it runs in another target (https://widgets.test/: a"),
        (navigate(frame=[1]), "it navigates an iframe (frame [1]); Sentinel's navigate opens the page"),
        (key("keyDown", "Power"), "Playwright has no key 'Power'"),
        (key("keyDown", "é"), "Playwright has no key 'é'"),
        (click([["#main", "xpath//button"], ['aria/Hi[role="StaticText"]']]), "none of its selectors can be said"),
    ],
)
def test_each_step_sentinel_cannot_run_is_named_by_index_and_type(step: dict[str, Any], reason: str) -> None:
    [message] = refusal(navigate(), step)
    assert message.startswith(f"steps[1] ({step['type']}): {reason}")


def test_a_refusal_never_shows_a_typed_value() -> None:
    change = {"type": "change", "value": "hunter2", "selectors": [["#pin"]], "target": "https://pay.test/"}
    [message] = refusal(navigate(), change)
    assert "hunter2" not in message


def test_a_step_in_an_iframe_acts_in_the_nth_frame_of_each_document() -> None:
    # Its asserted navigation is the frame's (@puppeteer/replay waits for it on the step's frame):
    # expectUrl and expectTitle would check the page, so it is left out.
    asserted = [{"type": "navigation", "url": f"{SITE}/next", "title": "Next"}]
    assert steps_of(click(frame=[0, 2], assertedEvents=asserted), click(assertedEvents=asserted)) == [
        {
            "name": 'click "Sign in"',
            "frames": ["iframe, frame >> nth=0", "iframe, frame >> nth=2"],
            "click": {"selector": "#login"},
        },
        {"name": 'click "Sign in"', "click": {"selector": "#login"}},  # the next step is on the page again
        {"name": f"navigated to {SITE}/next", "expectUrl": {"pattern": f"^{re.escape(SITE)}/next$"}},
        {"expectTitle": {"text": "Next"}},
    ]
    assert steps_of(click(frame=[])) == [{"name": 'click "Sign in"', "click": {"selector": "#login"}}]


def test_each_recorded_frame_path_is_noted_for_its_user_to_check() -> None:
    conversion = recorder.convert_recording(
        recording(navigate(), click(frame=[1]), click(frame=[0, 2]), click(), click(frame=[1]))
    )
    assert conversion.notes == (
        "steps[1], steps[4] (frame [1]): imported as the iframe at position 1 in document order; the "
        "Recorder counts only iframes of the page's own site, in the order they were added: check it is "
        "the one, or give `frames` a selector of the <iframe> itself (`iframe#checkout`)",
        "steps[2] (frame [0, 2]): imported as the iframe at position 0 then position 2 in document order; "
        "the Recorder counts only iframes of the page's own site, in the order they were added: check it "
        "is the one, or give `frames` a selector of the <iframe> itself (`iframe#checkout`)",
    )
    assert recorder.convert_recording(recording(navigate(), click())).notes == ()


@pytest.mark.parametrize("frame", [0, "0", [-1], [1.5], [True]])
def test_a_malformed_frame_path_names_the_field(frame: object) -> None:
    [message] = refusal(navigate(), click(frame=frame))
    assert message == "steps[1].frame: must be a list of frame indexes (a click step)"


def test_every_refused_step_is_listed_in_order() -> None:
    assert [m.split(":")[0] for m in refusal(navigate(), {"type": "scroll"}, click(), {"type": "customStep"})] == [
        "steps[1] (scroll)",
        "steps[3] (customStep)",
    ]


def test_close_ends_the_test_at_the_end_only() -> None:
    close = {"type": "close", "target": "main"}
    assert steps_of(click(), close, close) == [{"name": 'click "Sign in"', "click": {"selector": "#login"}}]
    assert refusal(navigate(), close, click()) == [
        "steps[1] (close): it closes the page before the recording ends; a Sentinel test drives one page to its end"
    ]


# --- keys --------------------------------------------------------------------------------------


def presses(*events: tuple[str, str]) -> list[str]:
    converted = steps_of(*(key(kind, name) for kind, name in events))
    assert all(s["press"]["selector"] == FOCUSED and s["name"] == f"press {s['press']['key']}" for s in converted)
    return [s["press"]["key"] for s in converted]


def test_a_key_is_pressed_at_its_key_down_in_the_focused_element() -> None:
    assert presses(("keyUp", "Enter"), ("keyDown", "Tab"), ("keyUp", "Tab"), ("keyDown", "a"), ("keyDown", "a")) == [
        "Tab",
        "a",
        "a",
    ]


def test_modifiers_held_at_a_key_down_make_a_combo_with_playwright_names() -> None:
    down, up = "keyDown", "keyUp"
    assert presses(
        (down, "ControlLeft"),
        (down, "Shift"),
        (down, "Z"),
        (up, "Z"),
        (up, "Shift"),
        (down, "c"),
        (up, "ControlLeft"),
        (up, "c"),
        (down, "Shift"),
        (down, "Tab"),
        (up, "Shift"),
        (up, "Tab"),
    ) == ["Control+Shift+Z", "Control+c", "Shift+Tab"]


def test_a_modifier_pressed_alone_is_pressed_when_released_and_plain_names_are_used() -> None:
    assert presses(
        ("keyDown", "Shift"), ("keyUp", "Shift"), ("keyDown", "\r"), ("keyDown", "\n"), ("keyDown", " ")
    ) == [
        "Shift",
        "Enter",
        "Enter",
        "Space",
    ]


def test_a_click_while_a_modifier_is_held_is_refused_and_the_modifier_not_pressed_alone() -> None:
    assert refusal(navigate(), key("keyDown", "Meta"), click(), key("keyUp", "Meta")) == [
        "steps[2] (click): Meta is held down, and Sentinel's click cannot hold keys"
    ]
    converted = recorder.convert_recording(
        recording(navigate(), key("keyDown", "Meta"), click(), key("keyUp", "Meta")), skip_unsupported=True
    )
    assert converted.definition["steps"] == [{"navigate": {"url": f"{SITE}/"}}]


# --- waiting for elements ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "selector", "state"),
    [
        ({}, ".item", "attached"),
        ({"count": 1, "operator": ">="}, ".item", "attached"),
        ({"count": 3, "operator": ">="}, ".item >> nth=2", "attached"),
        ({"count": 3, "operator": ">=", "visible": False}, ".item >> nth=2", "detached"),
        ({"count": 1, "visible": False}, ".item", "detached"),
        ({"count": 2, "operator": "<="}, ".item >> nth=2", "detached"),
        ({"count": 0, "operator": "<="}, ".item", "detached"),
        ({"count": 2, "operator": "<=", "visible": False}, ".item >> nth=2", "attached"),
        ({"count": 0, "operator": "=="}, ".item", "detached"),
        ({"count": 0, "operator": "==", "visible": False}, ".item", "attached"),
    ],
)
def test_wait_for_element_counts_matches_at_least_or_at_most(fields: dict[str, Any], selector: str, state: str) -> None:
    [step] = steps_of({"type": "waitForElement", "selectors": [[".item"]], **fields})
    assert step["waitFor"] == {"selector": selector, "state": state}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"count": 2, "operator": "=="}, "Sentinel can wait for at least or at most 2 elements, not for exactly 2"),
        (
            {"count": 2, "operator": "==", "visible": False},
            "Sentinel can wait for at least or at most 2 elements, not for any number but 2",
        ),
        ({"count": 0, "operator": ">=", "visible": False}, "no number of elements satisfies >= 0 (visible: false)"),
        ({"attributes": {"aria-busy": "false"}}, "Sentinel cannot wait for attributes or properties of elements"),
        ({"properties": {"value": "x"}}, "Sentinel cannot wait for attributes or properties of elements"),
    ],
)
def test_wait_for_element_refuses_what_it_cannot_say(fields: dict[str, Any], reason: str) -> None:
    assert refusal(navigate(), {"type": "waitForElement", "selectors": [["li"]], **fields}) == [
        f"steps[1] (waitForElement): {reason}"
    ]


def test_a_condition_that_always_holds_waits_for_nothing() -> None:
    assert steps_of({"type": "waitForElement", "selectors": [["li"]], "count": 0}, click())[:1] == [
        {"name": 'click "Sign in"', "click": {"selector": "#login"}}
    ]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("new Promise(resolve => setTimeout(() => resolve(true), 2000))", [{"wait": {"ms": 2000}}]),
        ("new Promise((done) => setTimeout(() => done(true), 15));", [{"wait": {"ms": 15}}]),
        ("new Promise(resolve => setTimeout(() => resolve(true), 0))", []),
    ],
)
def test_the_recorders_documented_pause_becomes_a_wait(expression: str, expected: list[dict[str, Any]]) -> None:
    assert steps_of({"type": "waitForExpression", "expression": expression}) == expected


def test_a_pause_longer_than_sentinel_allows_is_refused_by_validation() -> None:
    pause = {"type": "waitForExpression", "expression": "new Promise(r => setTimeout(() => r(true), 90000))"}
    assert refusal(navigate(), pause) == [
        "steps[1] (waitForExpression): wait.ms must be between 1 and 60000 ms, got 90000"
    ]


# --- selectors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alternatives", "chosen"),
    [
        (CSS_ETC, "#login"),
        ([["aria/Sign in"], ['xpath///*[@id="x"]'], ["pierce/#login"], ["text/Sign in"]], "#login"),
        ([['aria/Sign in[role="button"]'], ["text/Sign in"], ['xpath///*[@id="x"]']], 'role=button[name="Sign in"s]'),
        ([["aria/Sign in"], ["text/Sign in"], ['xpath///*[@id="x"]']], "text=Sign in"),
        ([["aria/Sign in"], ['xpath///*[@id="x"]']], 'xpath=//*[@id="x"]'),
        ([["aria/Email"]], 'internal:label="Email"s'),
        ([["my-app", "my-card", "#buy"], ["pierce/#buy"]], "my-app >> my-card >> #buy"),
        ([["my-app", "xpath///button"], ["pierce/#buy"]], "#buy"),
        ([["#a", "#b"], ["#c"]], "#c"),
    ],
)
def test_the_most_robust_selector_playwright_can_run_is_chosen(alternatives: list[list[str]], chosen: str) -> None:
    assert choose(alternatives)[0] == chosen


@pytest.mark.parametrize(
    ("parts", "selector"),
    [
        (['aria/Say "hi" \\ now[role="button"]'], 'role=button[name="Say \\"hi\\" \\\\ now"s]'),
        (["aria/  Two   words "], 'internal:label="Two words"s'),
        (['aria/[role="tab"]'], "role=tab"),
        (["aria/Logo[role='image']"], 'role=img[name="Logo"s]'),
        (['text/Help & "support"'], 'internal:text="Help & \\"support\\""i'),
        (["text/Next >> page"], 'internal:text="Next >> page"i'),
        (["text//api"], 'internal:text="/api"i'),
        (["pierce/div > #x"], "div > #x"),
        (['"quoted"'], 'css="quoted"'),
        (['xpath///*[@id="a"]', "#b"], 'xpath=//*[@id="a"] >> #b'),
        (['aria/Hello[role="generic"]'], None),
        (["aria/"], None),
        ([], None),
        (["#host", "xpath//b"], None),
    ],
)
def test_each_selector_form_becomes_what_playwright_reads_the_same_way(parts: list[str], selector: str | None) -> None:
    converted = alternative(parts)
    assert (None if isinstance(converted, str) else converted[1]) == selector


def test_the_step_label_is_the_first_accessible_name() -> None:
    assert accessible_name([["#x"], ["aria/Hello World", 'aria/[role="generic"]'], ["aria/Other"]]) == "Hello World"
    assert accessible_name([["#x"], ['aria/[role="button"]']]) == ""


# --- malformed recordings ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"title": "x", "steps": {"type": "click"}}, "steps: must be a list of recorded steps"),
        (recording(navigate(), cast(Any, "click")), "steps[1]: must be an object with a string `type`"),
        (recording(click([])), "steps[0].selectors: must be a non-empty list (a click step)"),
        (
            recording(click(cast(Any, [[1]]))),
            "steps[0].selectors: must hold strings or lists of strings (a click step)",
        ),
        (recording({"type": "change", "selectors": [["#a"]]}), "steps[0].value: must be a string (a change step)"),
        (recording(navigate(assertedEvents=[{"type": "load"}])), "steps[0].assertedEvents: must be a list of"),
        (recording(click(timeout=-1)), "steps[0].timeout: must be a number from 0 to"),
        (recording(navigate(), timeout="slow"), "timeout: must be a number of milliseconds"),
        (recording({"type": "waitForElement", "selectors": ["a"], "operator": ">"}), "steps[0].operator: must be"),
    ],
)
def test_a_malformed_recording_names_the_field(document: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        recorder.convert_recording(document, skip_unsupported=True)
    assert str(caught.value).startswith(message)


# --- skipping ----------------------------------------------------------------------------------


def test_skip_unsupported_leaves_out_each_refused_step_with_its_checks_and_lists_it() -> None:
    events = [{"type": "navigation", "url": f"{SITE}/next", "title": "Next"}]
    conversion = recorder.convert_recording(
        recording(navigate(), click(type="doubleClick", assertedEvents=events), click()), skip_unsupported=True
    )
    assert conversion.definition["steps"] == [
        {"navigate": {"url": f"{SITE}/"}},
        {"name": 'click "Sign in"', "click": {"selector": "#login"}},
    ]
    assert conversion.skipped == (recorder.Skipped(1, "doubleClick", "Sentinel's click has no click count"),)


def test_a_skipped_viewport_leaves_the_browsers_default() -> None:
    huge = {"type": "setViewport", "width": 100, "height": 9000, "isMobile": False, "hasTouch": False}
    conversion = recorder.convert_recording(recording(huge, navigate()), skip_unsupported=True)
    assert "viewport" not in conversion.definition and conversion.skipped[0].index == 0


def test_nothing_left_to_run_is_still_an_error() -> None:
    with pytest.raises(ValidationError, match=r"definition\.steps: must have at least one step"):
        recorder.convert_recording(recording({"type": "scroll"}), skip_unsupported=True)


# --- sentinel import ---------------------------------------------------------------------------


def sentinel(*argv: str) -> int:
    with pytest.raises(SystemExit) as caught:
        main(list(argv))
    return int(caught.value.code or 0)


def write(tmp_path: Path, document: object, name: str = "recording.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def test_import_writes_the_definition_to_stdout_or_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, recording(navigate(), click(), title="Sign in"))
    assert sentinel("import", path) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["name"] == "Sign in" and len(printed["steps"]) == 2

    assert sentinel("import", path, "-o", str(tmp_path / "out.json")) == 0
    assert json.loads((tmp_path / "out.json").read_text(encoding="utf-8")) == printed
    assert capsys.readouterr() == ("", "")


def test_import_and_the_loader_note_frames_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, recording(navigate(), click(frame=[0]), title="In a frame"))
    assert sentinel("import", path) == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out)["steps"][1]["frames"] == ["iframe, frame >> nth=0"]
    assert printed.err.startswith("sentinel import: note: steps[1] (frame [0]): imported as the iframe at position 0")
    assert recorder.load_test(path)["steps"][1]["frames"] == ["iframe, frame >> nth=0"]  # type: ignore[index]
    assert capsys.readouterr().err.startswith(f"sentinel: note: {path}: steps[1] (frame [0]): imported as")


def test_import_names_every_step_it_cannot_convert_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path, recording(navigate(), {"type": "scroll"}, click(), {"type": "waitForExpression", "expression": "1"})
    )
    assert sentinel("import", path, "-o", str(tmp_path / "out.json")) == 2
    out, err = capsys.readouterr()
    assert out == "" and not (tmp_path / "out.json").exists()
    assert err.splitlines() == [
        f"sentinel import: steps[1] (scroll): {UNSUPPORTED['scroll']}",
        "sentinel import: steps[3] (waitForExpression): Sentinel cannot evaluate JavaScript ('1')",
        "sentinel import: --skip-unsupported leaves these steps out",
    ]


def test_import_skip_unsupported_lists_the_skipped_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, recording(navigate(), {"type": "customStep", "name": "x"}, click()))
    assert sentinel("import", path, "--skip-unsupported") == 0
    out, err = capsys.readouterr()
    assert [next(iter(s.keys() - {"name"})) for s in json.loads(out)["steps"]] == ["navigate", "click"]
    assert err == f"sentinel import: skipped steps[1] (customStep): {UNSUPPORTED['customStep']}\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "sentinel import: file: is not valid JSON: "),
        ('{"name": "x", "steps": [{"navigate": {"url": "/"}}]}', "sentinel import: file: is not a Chrome Recorder"),
        ('{"title": "x", "steps": [{"type": "click", "selectors": []}]}', "sentinel import: steps[0].selectors: must"),
    ],
)
def test_import_says_what_is_wrong_with_a_file_that_is_no_recording(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "file.json"
    path.write_text(content, encoding="utf-8")
    assert sentinel("import", str(path)) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and "--skip-unsupported" not in err


def test_import_of_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sentinel("import", str(tmp_path / "nope.json")) == 2
    assert "No such file" in capsys.readouterr().err


# --- the definition-file loader (sentinel submit, and later sentinel run) -----------------------


def test_the_loader_converts_a_recording_and_leaves_any_other_file_to_the_sdk(tmp_path: Path) -> None:
    loaded = recorder.load_test(write(tmp_path, recording(navigate(), click(), title="From Chrome")))
    assert isinstance(loaded, dict) and loaded["name"] == "From Chrome"
    assert [[k for k in step if k not in ("name", "timeoutMs")] for step in loaded["steps"]] == [
        ["navigate"],
        ["click"],
    ]
    assert loaded["steps"][1]["click"]["selector"] == "#login"

    plain = write(tmp_path, {"name": "plain", "steps": [{"navigate": {"url": f"{SITE}/"}}]}, "plain.json")
    assert recorder.load_test(plain) == plain
    broken = tmp_path / "broken.json"
    broken.write_text("[1, 2", encoding="utf-8")
    assert recorder.load_test(str(broken)) == str(broken), "the SDK reports what is wrong with it"


def test_the_loader_refuses_a_recording_with_steps_sentinel_cannot_run(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        recorder.load_test(write(tmp_path, recording(navigate(), {"type": "scroll"}, {"type": "customStep"})))
    assert [v.field for v in caught.value.violations] == ["steps[1] (scroll)", "steps[2] (customStep)"]


def test_submit_of_a_recording_that_cannot_run_exits_2_naming_the_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path, recording(navigate(), {"type": "scroll"}, click(), {"type": "doubleClick", "selectors": ["a"]})
    )
    assert sentinel("--api", "127.0.0.1:1", "submit", path) == 2
    assert capsys.readouterr().err.splitlines() == [  # every one, as `sentinel import` lists them
        f"sentinel: {path}: steps[1] (scroll): {UNSUPPORTED['scroll']}",
        f"sentinel: {path}: steps[3] (doubleClick): Sentinel's click has no click count",
        f"sentinel: `sentinel import {path} --skip-unsupported` leaves these steps out",
    ]


def test_every_bundled_recording_converts_as_documented() -> None:
    for name in ("checkout", "selectors", "keyboard"):
        document = json.loads((RECORDINGS / f"{name}.json").read_text(encoding="utf-8"))
        assert recorder.convert_recording(document).definition["name"] == document["title"]
    unsupported = json.loads((RECORDINGS / "unsupported.json").read_text(encoding="utf-8"))
    skipped = recorder.convert_recording(unsupported, skip_unsupported=True).skipped
    assert [s.index for s in skipped] == [1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17, 19, 20]
