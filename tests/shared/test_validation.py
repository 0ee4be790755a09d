"""validate_submit reports every violation, each at the field path a client spells."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shared import validation as v
from shared.actions import ACTIONS, JsonExpectation
from shared.errors import FieldViolation, ValidationError
from shared.field_paths import json_path
from shared.model import (
    Action,
    Check,
    Click,
    ExpectText,
    ExpectTitle,
    ExpectUrl,
    ExpectVisible,
    Fill,
    Hover,
    JobOptions,
    Navigate,
    Press,
    Request,
    Screenshot,
    SelectOption,
    Step,
    SubmitCommand,
    TestDefinition,
    Viewport,
    Wait,
    WaitFor,
)

BASE = "https://shop.example.test/app/"

EVERY_ACTION: tuple[Action, ...] = (
    Navigate("/login"),
    Click("#submit"),
    Fill("#email", "a@b.test"),
    Fill("#password", "hunter2", secret=True),
    Press("#email", "Enter"),
    SelectOption("select#country", "fr"),
    Check("#agree"),
    Check("#newsletter", checked=False),
    Hover(".menu"),
    WaitFor("#spinner", "hidden"),
    WaitFor("#panel", "attached"),
    ExpectText("h1", "Welcome"),
    ExpectVisible("#cart"),
    ExpectTitle("Shop"),
    ExpectUrl(r"/dashboard(\?.*)?$"),
    Screenshot(),
    Screenshot("after-login_1.png", full_page=True),
    Wait(250),
    Request("/api/health"),
    Request(
        "https://api.example.test/v1/login",
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": "Bearer t0ken"},
        body='{"user": "ada"}',
        expect_status=201,
        expect_body_contains="ok",
        expect_json=(JsonExpectation("$.user.name", '"ada"'), JsonExpectation("$.items[0].id")),
        secret_headers=("authorization",),
        max_redirects=20,
    ),
)


def definition(
    *actions: Action | None,
    name: str = "checkout",
    base_url: str = BASE,
    steps: tuple[Step, ...] | None = None,
    viewport: Viewport | None = None,
) -> TestDefinition:
    if steps is None:
        steps = tuple(Step(action=a) for a in (actions or (Navigate("/"),)))
    return TestDefinition(name=name, steps=steps, base_url=base_url, viewport=viewport)


def violations(
    defn: TestDefinition | None = None,
    options: JobOptions | None = None,
    *,
    user_id: str = "",
    request_id: str = "",
) -> list[FieldViolation]:
    command = SubmitCommand(
        definition=defn or definition(),
        options=options or JobOptions(),
        user_id=user_id,
        request_id=request_id,
    )
    try:
        v.validate_submit(command)
    except ValidationError as exc:
        assert exc.violations, "a ValidationError must carry violations"
        return exc.violations
    return []


def fields(
    defn: TestDefinition | None = None,
    options: JobOptions | None = None,
    *,
    user_id: str = "",
    request_id: str = "",
) -> list[str]:
    return [x.field for x in violations(defn, options, user_id=user_id, request_id=request_id)]


def only(defn: TestDefinition | None = None, options: JobOptions | None = None) -> FieldViolation:
    found = violations(defn, options)
    assert len(found) == 1, found
    return found[0]


# --- valid definitions ---------------------------------------------------------------------


def test_every_action_type_passes_alone_and_together() -> None:
    assert {action.kind for action in EVERY_ACTION} == set(ACTIONS)
    for action in EVERY_ACTION:
        assert violations(definition(action)) == [], action
    assert violations(definition(*EVERY_ACTION, viewport=Viewport(1280, 720))) == []


def test_limits_at_their_boundaries_pass() -> None:
    defn = TestDefinition(
        name="n" * v.MAX_NAME_CHARS,
        base_url=BASE,
        viewport=Viewport(v.MAX_VIEWPORT_WIDTH, v.MAX_VIEWPORT_HEIGHT),
        steps=(
            Step(Click("c" * v.MAX_SELECTOR_CHARS), name="s" * 200, timeout_ms=v.MAX_STEP_TIMEOUT_MS),
            Step(Fill("#f", "x" * v.MAX_FILL_VALUE_CHARS)),
            Step(Wait(v.MIN_WAIT_MS)),
            Step(Wait(v.MAX_WAIT_MS)),
            Step(Screenshot("s" * 100)),
        ),
    )
    options = JobOptions(
        timeout_ms=v.MAX_JOB_TIMEOUT_MS,
        tags=(*(f"t{i}" for i in range(v.MAX_TAGS - 1)), "x" * v.MAX_TAG_CHARS),
        max_attempts=v.MAX_ATTEMPTS,
        delay_ms=v.MAX_DELAY_MS,
        backoff_ms=v.MAX_BACKOFF_MS,
        idempotency_key="k" * 200,
    )
    assert violations(defn, options, user_id="u" * 200, request_id="r" * 200) == []
    small = definition(viewport=Viewport(v.MIN_VIEWPORT_WIDTH, v.MIN_VIEWPORT_HEIGHT))
    assert violations(small) == []


# --- definition ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "   ", "n" * 201, "a\x00b", "line\nbreak", "\x1b[31mred", "paid\u202etxt.exe"])
def test_definition_name(name: str) -> None:
    assert only(definition(name=name)).field == "definition.name"


@pytest.mark.parametrize("separator", ["\u2028", "\u2029"])
def test_a_line_or_paragraph_separator_in_a_name_is_refused(separator: str) -> None:
    assert only(definition(name=f"login{separator}fake line")).field == "definition.name"


def test_a_name_that_would_not_show_as_it_is_names_the_character() -> None:
    said = only(definition(name="invoice \u202egnp.exe"))
    assert said.description == "must not hold control characters (U+202E at character 9)"
    assert violations(definition(name="Prüfung · 検査 · فحص")) == []  # any script, as it is


def test_a_definition_stored_before_the_name_rule_still_runs() -> None:
    """The executor checks a job as `validate_definition` has it: a schedule stored before names had
    to be shown as they are (a tab in its test's name) still fires and runs."""
    assert v.validate_definition(definition(name="nightly\tcheck")) == []
    assert only(definition(name="nightly\tcheck")).field == "definition.name"  # a new submit is refused


def test_steps_count_boundaries() -> None:
    assert only(definition(steps=())).field == "definition.steps"
    assert violations(definition(*[Click(f"#b{i}") for i in range(v.MAX_STEPS)])) == []
    too_many = only(definition(*[Click(f"#b{i}") for i in range(v.MAX_STEPS + 1)]))
    assert too_many == FieldViolation("definition.steps", "must have at most 500 steps, got 501")


def test_step_without_action_names_the_step_and_the_choices() -> None:
    found = only(definition(Click("#a"), Click("#b"), None))
    assert found.field == "definition.steps[2]"
    assert found.description.startswith("a step needs an action: one of navigate, click, fill")
    assert "waitFor, expectText" in found.description  # as a JSON file spells them
    assert "wait_for" not in found.description and found.description.endswith("wait, request")


def test_step_name_and_timeout() -> None:
    defn = definition(steps=(Step(Click("#a"), name="x" * 201, timeout_ms=v.MAX_STEP_TIMEOUT_MS + 1),))
    assert fields(defn) == ["definition.steps[0].name", "definition.steps[0].timeout_ms"]
    assert fields(definition(steps=(Step(Click("#a"), timeout_ms=-1),))) == ["definition.steps[0].timeout_ms"]


def test_a_step_on_an_element_may_act_in_nested_frames() -> None:
    frames = tuple(f"iframe#f{i}" for i in range(v.MAX_FRAMES))
    assert violations(definition(steps=tuple(Step(make("#a"), frames=frames) for make in SELECTOR_ACTIONS))) == []


@pytest.mark.parametrize(
    "action", [Navigate("/"), ExpectTitle("t"), ExpectUrl("x"), Screenshot(), Wait(10), Request("/health")]
)
def test_a_step_on_the_page_refuses_frames_naming_its_action(action: Action) -> None:
    found = only(definition(steps=(Step(action, frames=("#f",)),)))
    assert found.field == "definition.steps[0].frames"
    assert found.description.endswith(f"{json_path(action.kind)} acts on the page")


def test_each_frame_is_a_selector_and_frames_nest_at_most_max_frames_deep() -> None:
    bad = ("#ok", "", " ", "#" * (v.MAX_SELECTOR_CHARS + 1))
    assert fields(definition(steps=(Step(Click("#a"), frames=bad),))) == [
        f"definition.steps[0].frames[{i}]" for i in (1, 2, 3)
    ]
    deep = only(definition(steps=(Step(Click("#a"), frames=("#f",) * (v.MAX_FRAMES + 1)),)))
    assert (deep.field, deep.description) == ("definition.steps[0].frames", "must be at most 10 frames deep, got 11")


SELECTOR_ACTIONS: list[Callable[[str], Action]] = [
    lambda s: Click(s),
    lambda s: Fill(s, "v"),
    lambda s: Press(s, "Enter"),
    lambda s: SelectOption(s, "v"),
    lambda s: Check(s),
    lambda s: Hover(s),
    lambda s: WaitFor(s),
    lambda s: ExpectText(s, "t"),
    lambda s: ExpectVisible(s),
]


@pytest.mark.parametrize("make", SELECTOR_ACTIONS)
@pytest.mark.parametrize("selector", ["", "  \t", "#" * (v.MAX_SELECTOR_CHARS + 1)])
def test_bad_selector_for_every_action_that_has_one(make: Callable[[str], Action], selector: str) -> None:
    action = make(selector)
    assert fields(definition(Click("#ok"), action)) == [f"definition.steps[1].{action.kind}.selector"]


@pytest.mark.parametrize(
    ("action", "field"),
    [
        (Fill("#f", "x" * (v.MAX_FILL_VALUE_CHARS + 1)), "fill.value"),
        (Press("#f", ""), "press.key"),
        (SelectOption("#s", ""), "select.value"),
        (WaitFor("#w", "gone"), "wait_for.state"),
        (WaitFor("#w", ""), "wait_for.state"),  # the converter maps "" to visible; here it is wrong
        (ExpectText("#t", ""), "expect_text.text"),
        (ExpectTitle(""), "expect_title.text"),
        (ExpectUrl(""), "expect_url.pattern"),
        (ExpectUrl("(unclosed"), "expect_url.pattern"),
        (ExpectUrl("x" * (v.MAX_PATTERN_CHARS + 1)), "expect_url.pattern"),
        (Screenshot("a/b"), "screenshot.name"),
        (Screenshot("..\\evil"), "screenshot.name"),
        (Screenshot("../etc/passwd"), "screenshot.name"),
        (Screenshot(".."), "screenshot.name"),
        (Screenshot("shot\n"), "screenshot.name"),
        (Screenshot("a b"), "screenshot.name"),
        (Screenshot("s" * 101), "screenshot.name"),
        (Wait(0), "wait.ms"),
        (Wait(v.MAX_WAIT_MS + 1), "wait.ms"),
        (Navigate(""), "navigate.url"),
        (Navigate("  "), "navigate.url"),
        (Navigate("/", expect_status=99), "navigate.expect_status"),
        (Navigate("/", expect_status=600), "navigate.expect_status"),
    ],
)
def test_action_field_violations(action: Action, field: str) -> None:
    assert fields(definition(Click("#ok"), action)) == [f"definition.steps[1].{field}"]


def test_descriptions_say_what_was_expected() -> None:
    state = only(definition(WaitFor("#w", "gone")))
    assert state.description == "must be one of attached, detached, visible, hidden, got 'gone'"
    wait = only(definition(Wait(0)))
    assert wait.description == "must be between 1 and 60000 ms, got 0"
    status = only(definition(Navigate("/", expect_status=600)))
    assert status.description == "must be between 100 and 599 (or 0: any), got 600"
    pattern = only(definition(ExpectUrl("(unclosed")))
    assert pattern.description.startswith("must be a valid regular expression: missing )")


def test_secret_fill_value_is_never_echoed() -> None:
    secret = "Tr0ub4dor&3-" * 1000  # too long: a violation on the very field that holds it
    defn = definition(Fill("#password", secret, secret=True), Fill("", "hunter2-plain"), name="")
    with pytest.raises(ValidationError) as caught:
        v.validate_submit(SubmitCommand(definition=defn, options=JobOptions()))
    text = str(caught.value) + repr(caught.value.violations)
    assert "Tr0ub4dor" not in text
    # Not only secret values: a fill value is never shown at all, it may still be a password.
    assert "hunter2" not in text
    assert "definition.steps[0].fill.value" in text


# --- URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "url"),
    [
        (BASE, "/login"),
        (BASE, "login?next=/x"),
        (BASE, "../other"),
        (BASE, "//cdn.example.test/page"),
        (BASE, "http://other.example.test:8080/x"),
        ("", "https://example.test"),
        ("", "HTTP://EXAMPLE.TEST/"),
        ("http://127.0.0.1:8000", "/"),
    ],
)
def test_navigate_urls_that_resolve_to_http_pass(base: str, url: str) -> None:
    assert violations(definition(Navigate(url), base_url=base)) == []


def test_relative_url_without_base_url_is_refused_at_the_step() -> None:
    found = only(definition(Click("#a"), Navigate("/login"), base_url=""))
    assert found.field == "definition.steps[1].navigate.url"
    assert "relative" in found.description and "base URL" in found.description
    assert only(definition(Navigate("example.test/x"), base_url="")).field == "definition.steps[0].navigate.url"


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        " javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "file:///etc/passwd",
        "ftp://x",
        "data:text/html,<script>alert(1)</script>",
        "chrome://settings",
        "about:blank",
        "http://",
        "https://[::1",
        "http://host:99999/",
        "http://exa mple.test/",
        "http://example.test/\x00",
        "https://exa\tmple.test/",
    ],
)
@pytest.mark.parametrize("base", [BASE, ""])
def test_navigate_urls_that_are_not_http_fail(url: str, base: str) -> None:
    assert fields(definition(Navigate(url), base_url=base)) == ["definition.steps[0].navigate.url"]


def test_url_description_shows_the_bad_url() -> None:
    found = only(definition(Navigate("ftp://x")))
    assert found.description == "must be an absolute http or https URL with a host, got 'ftp://x'"


@pytest.mark.parametrize("base", ["ftp://x", "example.test", "/relative", "javascript:alert(1)", "https://"])
def test_base_url_must_be_absolute_http(base: str) -> None:
    assert fields(definition(Navigate("https://ok.example.test/"), base_url=base)) == ["definition.base_url"]


def test_resolve_url_is_what_validation_checked() -> None:
    assert v.resolve_url(BASE, "/login") == "https://shop.example.test/login"
    assert v.resolve_url(BASE, "cart") == "https://shop.example.test/app/cart"
    assert v.resolve_url(BASE, " https://x.test/ ") == "https://x.test/"
    assert v.resolve_url("", "/login") == "/login"


# --- viewport, options, ids ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("viewport", "field"),
    [
        (Viewport(99, 600), "definition.viewport.width"),
        (Viewport(3841, 600), "definition.viewport.width"),
        (Viewport(0, 600), "definition.viewport.width"),
        (Viewport(800, 99), "definition.viewport.height"),
        (Viewport(800, 2161), "definition.viewport.height"),
    ],
)
def test_viewport_bounds(viewport: Viewport, field: str) -> None:
    assert fields(definition(viewport=viewport)) == [field]


def test_tag_count_boundary() -> None:
    assert violations(options=JobOptions(tags=tuple(f"t{i}" for i in range(20)))) == []
    found = only(None, JobOptions(tags=tuple(f"t{i}" for i in range(21))))
    assert found == FieldViolation("options.tags", "must have at most 20 tags, got 21")


@pytest.mark.parametrize("tag", ["", "has space", "x" * 65, "ünïcode", "a/b", "nl\n"])
def test_bad_tag_names_its_index(tag: str) -> None:
    assert fields(options=JobOptions(tags=("ok", tag))) == ["options.tags[1]"]


def test_good_tags_pass() -> None:
    assert violations(options=JobOptions(tags=("env:prod", "team.web", "smoke-1", "A_B"))) == []


def test_a_repeated_tag_names_the_repeat_and_what_it_repeats() -> None:
    found = violations(options=JobOptions(tags=("smoke", "smoke", "Smoke", "ci", "smoke")))
    assert found == [
        FieldViolation("options.tags[1]", "repeats 'smoke' (tags[0])"),
        FieldViolation("options.tags[4]", "repeats 'smoke' (tags[0])"),
    ]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (JobOptions(timeout_ms=v.MAX_JOB_TIMEOUT_MS + 1), "options.timeout_ms"),
        (JobOptions(max_attempts=11), "options.max_attempts"),
        (JobOptions(delay_ms=7 * 24 * 3600 * 1000 + 1), "options.delay_ms"),
        (JobOptions(backoff_ms=3600 * 1000 + 1), "options.backoff_ms"),
        (JobOptions(idempotency_key="k" * 201), "options.idempotency_key"),
        (JobOptions(timeout_ms=-1), "options.timeout_ms"),
    ],
)
def test_option_limits(options: JobOptions, field: str) -> None:
    assert fields(options=options) == [field]


def test_user_and_request_ids_are_bounded() -> None:
    assert fields(user_id="u" * 201, request_id="r" * 201) == ["user_id", "request_id"]


# --- reporting -----------------------------------------------------------------------------


def test_all_violations_are_reported_together_in_field_order() -> None:
    defn = definition(Navigate("ftp://x"), None, Click(""), name="", viewport=Viewport(1, 1))
    found = fields(defn, JobOptions(tags=("bad tag",), max_attempts=99), user_id="u" * 300)
    assert found == [
        "definition.name",
        "definition.viewport.width",
        "definition.viewport.height",
        "definition.steps[0].navigate.url",
        "definition.steps[1]",
        "definition.steps[2].click.selector",
        "options.max_attempts",
        "options.tags[0]",
        "user_id",
    ]


def test_prefix_is_prepended_for_batch_items() -> None:
    command = SubmitCommand(definition=definition(None, name=""), options=JobOptions(tags=("",)), user_id="u" * 201)
    with pytest.raises(ValidationError) as caught:
        v.validate_submit(command, prefix="requests[4].")
    assert [x.field for x in caught.value.violations] == [
        "requests[4].definition.name",
        "requests[4].definition.steps[0]",
        "requests[4].options.tags[0]",
        "requests[4].user_id",
    ]
    assert str(caught.value) == "requests[4].definition.name: must not be empty (and 3 more)"


def test_total_size_is_bounded_even_when_every_string_is() -> None:
    per_step = v.MAX_FILL_VALUE_CHARS
    steps = [Fill("#f", "x" * per_step) for _ in range(v.MAX_DEFINITION_CHARS // per_step + 1)]
    defn = definition(*steps)
    assert v.definition_chars(defn) > v.MAX_DEFINITION_CHARS
    found = only(defn)
    assert found.field == "definition"
    assert str(v.MAX_DEFINITION_CHARS) in found.description


def test_definition_chars_counts_every_string() -> None:
    defn = TestDefinition(
        name="ab",
        base_url="cde",
        steps=(Step(Fill("fg", "hij"), name="k", frames=("no", "pq")), Step(Screenshot("lm")), Step(None)),
    )
    assert v.definition_chars(defn) == 2 + 3 + 2 + 3 + 1 + 2 + 2 + 2


def test_a_flood_of_violations_is_cut_short_and_says_so() -> None:
    found = violations(definition(*[None] * 300))
    assert len(found) == v.MAX_VIOLATIONS
    assert found[-2].field == f"definition.steps[{v.MAX_VIOLATIONS - 2}]"
    assert found[-1] == FieldViolation("request", f"and {300 - v.MAX_VIOLATIONS + 1} more violations not shown")


def test_validate_definition_returns_instead_of_raising() -> None:
    assert v.validate_definition(definition()) == []
    assert v.validate_definition(definition(name=""), path="d") == [FieldViolation("d.name", "must not be empty")]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (JobOptions(idempotency_key="\ud800"), "options.idempotency_key"),
        (JobOptions(idempotency_key="ok-\udfff"), "options.idempotency_key"),
    ],
)
def test_a_lone_surrogate_is_named_not_stored(options: JobOptions, field: str) -> None:
    """A lone surrogate cannot be encoded as UTF-8: left in, it would fail the write it is in (the
    API's unary submits share one), so it is a violation of its own field."""
    violations = v.validate_options(options)
    assert [f.field for f in violations] == [field]
    assert "lone surrogate \\u" in violations[0].description


def test_a_lone_surrogate_in_a_definition_is_named() -> None:
    definition = TestDefinition(name="n\udc00", steps=(Step(Fill(selector="#a", value="x\ud83d")),))
    fields = {f.field for f in v.validate_definition(definition)}
    assert fields == {"definition.name", "definition.steps[0].fill.value"}


def test_a_surrogate_pair_is_text() -> None:
    assert v.validate_options(JobOptions(idempotency_key="\U0001f600")) == []


@pytest.mark.parametrize(
    ("names", "at", "says"),
    [
        (("home", "home"), "definition.steps[1].screenshot.name", "repeats 'home' (steps[0])"),
        (("home", "HOME"), "definition.steps[1].screenshot.name", "repeats 'HOME' (steps[0])"),
        (("final",), "definition.steps[0].screenshot.name", "names a file the run makes itself"),
        (("step-04-failure",), "definition.steps[0].screenshot.name", "names a file the run makes itself"),
        # As the executor names the files: `.png` once, an unnamed step's `step-NN`.
        (("final.png",), "definition.steps[0].screenshot.name", "names a file the run makes itself (final.png)"),
        (("home", "home.png"), "definition.steps[1].screenshot.name", "repeats 'home.png' (steps[0])"),
        (("step-01", ""), "definition.steps[1].screenshot.name", "repeats 'step-01.png' (steps[0])"),
    ],
)
def test_a_screenshot_name_that_would_overwrite_another_file_is_refused(
    names: tuple[str, ...], at: str, says: str
) -> None:
    steps = tuple(Step(Screenshot(n)) for n in names)
    found = v.validate_definition(TestDefinition(name="t", steps=steps))
    assert [f.field for f in found] == [at]
    assert says in found[0].description


def test_unnamed_and_distinct_screenshot_names_are_valid() -> None:
    steps = (Step(Screenshot()), Step(Screenshot()), Step(Screenshot("home")), Step(Screenshot("home-2")))
    assert v.validate_definition(TestDefinition(name="t", steps=steps)) == []
