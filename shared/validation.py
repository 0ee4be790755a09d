"""Validation of a submit: every limit a test definition and its options must respect.

Pure domain code: it sees `shared.model` values only, after `shared.edge.convert` has turned the
protobuf into them, and it never imports protobuf or grpc. It reports *all* violations at once,
each naming its field the way a client spells it (`definition.steps[3].click.selector`), so one
round trip shows a client everything to fix. Step actions are checked field by field, as each
action declares what its fields hold (`shared.actions.Is`): nothing here names an action, and
this is the one place their values are checked (the executor runs validated definitions only).

It must never echo a fill value in a description: a secret password would otherwise end up in
error messages, logs and the client's terminal.
"""

from __future__ import annotations

import re
from dataclasses import fields, is_dataclass
from typing import Any, assert_never
from urllib.parse import urljoin, urlsplit

from shared import screenshots
from shared.actions import ACTIONS, Action, Is, JsonExpectation, Request, holds
from shared.errors import FieldViolation, ValidationError
from shared.field_paths import json_path
from shared.json_checks import compile_path, parse_literal
from shared.model import JobOptions, Step, SubmitCommand, TestDefinition, Viewport
from shared.sealed import SEALED_PREFIX

# --- limits ----------------------------------------------------------------------------------

MAX_NAME_CHARS = 200
MAX_STEPS = 500
MAX_STEP_NAME_CHARS = 200
MAX_STEP_TIMEOUT_MS = 10 * 60 * 1000
MAX_SELECTOR_CHARS = 1000
#: The deepest iframe a step may act in (`Step.frames`): frames nested in frames, from the page down.
MAX_FRAMES = 10
MAX_FILL_VALUE_CHARS = 10_000
#: A secret value as stored, sealed by the API (`shared.sealed`): longer than what was typed.
MAX_SEALED_FILL_CHARS = 6 * MAX_FILL_VALUE_CHARS
MAX_TEXT_CHARS = 10_000  # expect_text / expect_title text, select value
MAX_KEY_CHARS = 100
MAX_PATTERN_CHARS = 1000
MAX_URL_CHARS = 4096
MIN_WAIT_MS = 1
MAX_WAIT_MS = 60_000
WAIT_FOR_STATES = ("attached", "detached", "visible", "hidden")
URL_SCHEMES = ("http", "https")
MIN_VIEWPORT_WIDTH, MAX_VIEWPORT_WIDTH = 100, 3840
MIN_VIEWPORT_HEIGHT, MAX_VIEWPORT_HEIGHT = 100, 2160
MAX_DEFINITION_CHARS = 1_000_000
# The request step (an API check).
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
MAX_HEADERS = 50
MAX_HEADER_NAME_CHARS = 256
MAX_HEADER_VALUE_CHARS = 8192
#: A secret header value as stored, sealed by the API (`shared.sealed`): longer than what was given.
MAX_SEALED_HEADER_CHARS = 6 * MAX_HEADER_VALUE_CHARS
#: The longest secret value in the clear (a fill value or a header value).
MAX_SECRET_CHARS = max(MAX_FILL_VALUE_CHARS, MAX_HEADER_VALUE_CHARS)
#: Set by the HTTP client itself (lengths, framing, the connection, the proxy): never by a test.
RESERVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer"}
    | {"proxy-authorization", "proxy-connection"}
)
MAX_BODY_CHARS = 100_000
MAX_JSON_CHECKS = 50
MAX_JSON_PATH_CHARS = 1000
MAX_JSON_EQUALS_CHARS = 10_000
MIN_STATUS, MAX_STATUS = 100, 599
MIN_REDIRECTS, MAX_REDIRECTS = 1, 20

MAX_TAGS = 20
MAX_TAG_CHARS = 64
MAX_JOB_TIMEOUT_MS = 60 * 60 * 1000
MAX_ATTEMPTS = 10
MAX_DELAY_MS = 7 * 24 * 60 * 60 * 1000
MAX_BACKOFF_MS = 60 * 60 * 1000
MAX_IDEMPOTENCY_KEY_CHARS = 200
MAX_ID_CHARS = 200  # user_id, request_id

#: A report stops here: a request with 100,000 bad steps must not produce an error larger than
#: the request itself (the violations travel back in gRPC trailers, which are small).
MAX_VIOLATIONS = 100

# fullmatch, not `^...$`: `$` also matches before a trailing newline.
SCREENSHOT_NAME_RE = re.compile(r"[A-Za-z0-9._-]{0,100}")
TAG_RE = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_TAG_CHARS}}}")
#: An HTTP header name: a token (RFC 9110 section 5.6.2).
HEADER_NAME_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

_ACTION_KINDS = ", ".join(json_path(kind) for kind in ACTIONS)  # as a JSON file spells them: `waitFor`


# --- public API ------------------------------------------------------------------------------


def validate_submit(command: SubmitCommand, *, prefix: str = "") -> None:
    """Check a whole submit and raise with every violation found.

    Args:
        command: the submit, as converted from the request.
        prefix: prepended to every field path, e.g. ``"requests[4]."`` for a batch item.

    Raises:
        ValidationError: with one `FieldViolation` per problem (at most `MAX_VIOLATIONS`, the
            last of which then says how many more were found).
    """
    found = validate_definition(command.definition, path=f"{prefix}definition")
    found += new_definition_violations(command.definition, path=f"{prefix}definition")
    found += validate_options(command.options, path=f"{prefix}options")
    _check_length(found, f"{prefix}user_id", command.user_id, MAX_ID_CHARS)
    _check_length(found, f"{prefix}request_id", command.request_id, MAX_ID_CHARS)
    if found:
        if len(found) > MAX_VIOLATIONS:
            hidden = len(found) - (MAX_VIOLATIONS - 1)
            found = [
                *found[: MAX_VIOLATIONS - 1],
                FieldViolation(prefix.rstrip(".") or "request", f"and {hidden} more violations not shown"),
            ]
        raise ValidationError(found)


def validate_definition(definition: TestDefinition, *, path: str = "definition") -> list[FieldViolation]:
    """Every violation in a test definition, in field order (empty when it is valid)."""
    out: list[FieldViolation] = []
    if not definition.name.strip():
        out.append(FieldViolation(f"{path}.name", "must not be empty"))
    _check_length(out, f"{path}.name", definition.name, MAX_NAME_CHARS)
    if definition.base_url:
        _check_url(out, f"{path}.base_url", definition.base_url)
    if definition.viewport is not None:
        _check_viewport(out, f"{path}.viewport", definition.viewport)
    if not definition.steps:
        out.append(FieldViolation(f"{path}.steps", "must have at least one step"))
    elif len(definition.steps) > MAX_STEPS:
        out.append(FieldViolation(f"{path}.steps", f"must have at most {MAX_STEPS} steps, got {len(definition.steps)}"))
    for i, step in enumerate(definition.steps):
        _check_step(out, f"{path}.steps[{i}]", step, definition.base_url)
    _check_file_names(out, path, definition.steps)
    total = definition_chars(definition)
    if total > MAX_DEFINITION_CHARS:
        out.append(FieldViolation(path, f"must hold at most {MAX_DEFINITION_CHARS} characters in all, got {total}"))
    return out


def validate_options(options: JobOptions, *, path: str = "options") -> list[FieldViolation]:
    """Every violation in a submit's options (empty when they are valid)."""
    out: list[FieldViolation] = []
    _check_range(out, f"{path}.timeout_ms", options.timeout_ms, 0, MAX_JOB_TIMEOUT_MS, "ms")
    _check_range(out, f"{path}.max_attempts", options.max_attempts, 0, MAX_ATTEMPTS, "")
    _check_range(out, f"{path}.delay_ms", options.delay_ms, 0, MAX_DELAY_MS, "ms")
    _check_range(out, f"{path}.backoff_ms", options.backoff_ms, 0, MAX_BACKOFF_MS, "ms")
    _check_length(out, f"{path}.idempotency_key", options.idempotency_key, MAX_IDEMPOTENCY_KEY_CHARS)
    if len(options.tags) > MAX_TAGS:
        out.append(FieldViolation(f"{path}.tags", f"must have at most {MAX_TAGS} tags, got {len(options.tags)}"))
    first: dict[str, int] = {}
    for i, tag in enumerate(options.tags):
        if not TAG_RE.fullmatch(tag):
            out.append(
                FieldViolation(
                    f"{path}.tags[{i}]",
                    f"must be 1 to {MAX_TAG_CHARS} letters, digits, '.', '_', ':' or '-', got {_show(tag)}",
                )
            )
        elif tag in first:
            # A tag is a set member (ListJobs filters by it): a repeat is a mistake, not a weight.
            out.append(FieldViolation(f"{path}.tags[{i}]", f"repeats {_show(tag)} (tags[{first[tag]}])"))
        else:
            first[tag] = i
    return out


def validate_own_options(own: JobOptions, *, run: JobOptions, merged: JobOptions, path: str) -> list[FieldViolation]:
    """Every violation in a run's test's own options (`tests[2].options`), checked on their own: the
    run's options are checked once, as `options`, and a tag in both is no repeat (the merge keeps it
    once). Of the merge (`merged`, what the test's job gets) only what neither could break alone is
    checked: together they may hold more tags than a job carries."""
    out = validate_options(own, path=path)
    if len(own.tags) <= MAX_TAGS and len(run.tags) <= MAX_TAGS < len(merged.tags):
        why = f"must have at most {MAX_TAGS} tags with the run's, got {len(merged.tags)}"
        out.append(FieldViolation(f"{path}.tags", why))
    return out


def resolve_url(base_url: str, url: str) -> str:
    """The URL a navigate step opens: `url` resolved against the definition's base URL.

    The executor must resolve with this same function, so that what runs is what was checked.
    """
    base_url, url = base_url.strip(), url.strip()
    return urljoin(base_url, url) if base_url else url


def definition_chars(definition: TestDefinition) -> int:
    """The summed length of every string in a definition (the bound on its total size)."""
    total = len(definition.name) + len(definition.base_url)
    for step in definition.steps:
        total += len(step.name) + _chars(step.frames)
        if step.action is not None:
            total += _chars(step.action)
    return total


def _chars(value: Any) -> int:
    """The summed length of the strings in an action's value: its fields, a map's keys and values,
    a list's items."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(len(k) + _chars(v) for k, v in value.items())
    if isinstance(value, tuple):
        return sum(_chars(item) for item in value)
    if is_dataclass(value):
        return sum(_chars(getattr(value, f.name)) for f in fields(value) if f.name != "kind")
    return 0


# --- steps -----------------------------------------------------------------------------------


def _check_file_names(out: list[FieldViolation], path: str, steps: tuple[Step, ...]) -> None:
    """A step's screenshot is one artifact of the run, kept under the file `shared.screenshots`
    names: two steps making the same file (a name, the same with `.png`, an unnamed step's
    `step-NN`), or a step making one the run makes itself (`final`, a step's failure), would
    overwrite it. Compared without case: one file on a case-insensitive disk or bucket browser."""
    first: dict[str, str] = {}
    for i, step in enumerate(steps):
        if step.action is None:
            continue
        for name, kind in holds(type(step.action)).items():
            if kind is not Is.FILE_NAME:
                continue
            value = getattr(step.action, name)
            file = screenshots.file_of(screenshots.step_name(value, i))
            at = f"{path}.steps[{i}].{step.action.kind}.{name}"
            if screenshots.made_by_the_run(file):
                out.append(FieldViolation(at, f"names a file the run makes itself ({file}), got {_show(value)}"))
            elif file.lower() in first:
                why = f"repeats {_show(value or file)} ({first[file.lower()]}): both make {file}, one would be lost"
                out.append(FieldViolation(at, why))
            else:
                first[file.lower()] = f"steps[{i}]"


def _check_step(out: list[FieldViolation], at: str, step: Step, base_url: str) -> None:
    _check_length(out, f"{at}.name", step.name, MAX_STEP_NAME_CHARS)
    _check_range(out, f"{at}.timeout_ms", step.timeout_ms, 0, MAX_STEP_TIMEOUT_MS, "ms")
    if step.action is None:
        out.append(FieldViolation(at, f"a step needs an action: one of {_ACTION_KINDS}"))
        return
    _check_frames(out, f"{at}.frames", step)
    _check_action(out, f"{at}.{step.action.kind}", step.action, base_url)


def _check_frames(out: list[FieldViolation], at: str, step: Step) -> None:
    """A step acts in an iframe only when its action acts on an element: a page-level action
    (navigate, expectTitle, a request…) would silently ignore the frame it was given."""
    if not step.frames or step.action is None:
        return
    if Is.SELECTOR not in holds(type(step.action)).values():
        kind = json_path(step.action.kind)
        out.append(FieldViolation(at, f"only a step that acts on an element has frames; {kind} acts on the page"))
        return
    if len(step.frames) > MAX_FRAMES:
        out.append(FieldViolation(at, f"must be at most {MAX_FRAMES} frames deep, got {len(step.frames)}"))
    for i, frame in enumerate(step.frames):
        _check_field(out, f"{at}[{i}]", Is.SELECTOR, frame, step.action, "")


def _check_action(out: list[FieldViolation], at: str, action: Action, base_url: str) -> None:
    # Each field as its action declares it (shared.actions): no action is special-cased here.
    for name, kind in holds(type(action)).items():
        _check_field(out, f"{at}.{name}", kind, getattr(action, name), action, base_url)


def _check_field(out: list[FieldViolation], at: str, kind: Is, value: Any, action: Action, base_url: str) -> None:
    match kind:
        case Is.SELECTOR:
            if not value.strip():
                out.append(FieldViolation(at, "must not be empty"))
            _check_length(out, at, value, MAX_SELECTOR_CHARS)
        case Is.URL:
            _check_navigate(out, at, value, base_url)
        case Is.KEY:
            _check_required(out, at, value, MAX_KEY_CHARS)
        case Is.TEXT:
            _check_required(out, at, value, MAX_TEXT_CHARS)
        case Is.TYPED:
            # The length only: the value itself may be a password and is never shown.
            sealed = getattr(action, "secret", False) and value.startswith(SEALED_PREFIX)
            _check_length(out, at, value, MAX_SEALED_FILL_CHARS if sealed else MAX_FILL_VALUE_CHARS)
        case Is.WAIT_STATE:
            if value not in WAIT_FOR_STATES:
                out.append(FieldViolation(at, f"must be one of {', '.join(WAIT_FOR_STATES)}, got {_show(value)}"))
        case Is.PATTERN:
            _check_pattern(out, at, value)
        case Is.FILE_NAME:
            # The name becomes part of a file name on the executor: no path separators, no "..".
            if not SCREENSHOT_NAME_RE.fullmatch(value) or value in {".", ".."}:
                out.append(
                    FieldViolation(at, f"must be at most 100 letters, digits, '.', '_' or '-', got {_show(value)}")
                )
        case Is.WAIT_MS:
            _check_range(out, at, value, MIN_WAIT_MS, MAX_WAIT_MS, "ms")
        case Is.FLAG:
            pass
        case Is.HTTP_METHOD:
            if value not in HTTP_METHODS:
                out.append(FieldViolation(at, f"must be one of {', '.join(HTTP_METHODS)}, got {_show(value)}"))
        case Is.HEADERS:
            _check_headers(out, at, value, action)
        case Is.BODY:
            _check_length(out, at, value, MAX_BODY_CHARS)
        case Is.HTTP_STATUS:
            if value != 0:
                _check_range(out, at, value, MIN_STATUS, MAX_STATUS, "(or 0: any 2xx)")
        case Is.PAGE_STATUS:
            if value != 0:
                _check_range(out, at, value, MIN_STATUS, MAX_STATUS, "(or 0: any)")
        case Is.CONTAINS:
            _check_length(out, at, value, MAX_TEXT_CHARS)
            _check_not_on_a_redirect(out, at, value, action)
        case Is.JSON_CHECKS:
            _check_json_checks(out, at, value)
            _check_not_on_a_redirect(out, at, value, action)
        case Is.SECRET_HEADERS:
            _check_secret_headers(out, at, value, action)
        case Is.REDIRECTS:
            _check_range(out, at, value, MIN_REDIRECTS, MAX_REDIRECTS, "")
        case Is.EXPECT_HEADERS:
            _check_expected_headers(out, at, value)
        case _:
            assert_never(kind)


def _check_navigate(out: list[FieldViolation], at: str, url: str, base_url: str) -> None:
    if not url.strip():
        out.append(FieldViolation(at, "must not be empty"))
        return
    if len(url) > MAX_URL_CHARS:
        _check_length(out, at, url, MAX_URL_CHARS)
        return
    if _has_control(url):  # before resolving: urljoin silently drops tabs and newlines
        out.append(FieldViolation(at, f"must not contain control characters, got {_show(url)}"))
        return
    try:
        resolved = resolve_url(base_url, url)
        relative = not urlsplit(resolved).scheme
    except ValueError:  # e.g. an unclosed IPv6 bracket
        out.append(FieldViolation(at, f"must be a URL, got {_show(url)}"))
        return
    if not base_url and relative:
        out.append(
            FieldViolation(
                at, f"is relative ({_show(url)}) but the definition has no base URL (baseUrl) to resolve it against"
            )
        )
        return
    _check_url(out, at, resolved)


def _check_url(out: list[FieldViolation], at: str, url: str) -> None:
    """An absolute http(s) URL with a host, a valid port and no control characters."""
    if len(url) > MAX_URL_CHARS:
        _check_length(out, at, url, MAX_URL_CHARS)
        return
    expected = f"must be an absolute http or https URL with a host, got {_show(url)}"
    if _has_control(url):
        out.append(FieldViolation(at, f"must not contain control characters, got {_show(url)}"))
        return
    try:
        parts = urlsplit(url.strip())
        _ = parts.port  # raises on a port that is not a number in 0..65535
    except ValueError:
        out.append(FieldViolation(at, expected))
        return
    if parts.scheme.lower() not in URL_SCHEMES or not parts.hostname or _has_space(parts.netloc):
        out.append(FieldViolation(at, expected))


def _check_pattern(out: list[FieldViolation], at: str, pattern: str) -> None:
    if not pattern:
        out.append(FieldViolation(at, "must not be empty"))
        return
    if len(pattern) > MAX_PATTERN_CHARS:  # checked before compiling: compiling is not free
        _check_length(out, at, pattern, MAX_PATTERN_CHARS)
        return
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError, ValueError) as exc:
        out.append(FieldViolation(at, f"must be a valid regular expression: {_trim(str(exc))}"))


def _check_not_on_a_redirect(out: list[FieldViolation], at: str, value: object, action: Action) -> None:
    """A body expectation beside an expected redirect (3xx), whose body is never read, could not hold."""
    if value and isinstance(action, Request) and not action.follows_redirects:
        out.append(
            FieldViolation(
                at, f"cannot hold: expectStatus {action.expect_status} checks a redirect, whose body is not read"
            )
        )


def _check_expected_headers(out: list[FieldViolation], at: str, headers: dict[str, str]) -> None:
    for _, value, here in _header_names(out, at, headers):
        _check_length(out, here, value, MAX_HEADER_VALUE_CHARS)
        _check_header_chars(out, here, value)


def _check_headers(out: list[FieldViolation], at: str, headers: dict[str, str], action: Action) -> None:
    for name, value, here in _header_names(out, at, headers):
        if name.lower() in RESERVED_HEADERS:
            out.append(FieldViolation(here, "is set by the HTTP client and cannot be given"))
        # The value is never shown: it may be a token.
        secret = isinstance(action, Request) and action.is_secret(name)
        sealed = secret and value.startswith(SEALED_PREFIX)
        _check_length(out, here, value, MAX_SEALED_HEADER_CHARS if sealed else MAX_HEADER_VALUE_CHARS)
        _check_header_chars(out, here, value)


def _check_header_chars(out: list[FieldViolation], at: str, value: str) -> None:
    if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):
        out.append(FieldViolation(at, "must not contain line breaks or other control characters"))


def _header_names(out: list[FieldViolation], at: str, headers: dict[str, str]) -> list[tuple[str, str, str]]:
    """The headers whose names are fit to check further, each with its field path (`at[name]`); a
    violation for too many headers, a bad name and a name given twice (names are case-insensitive)."""
    if len(headers) > MAX_HEADERS:
        out.append(FieldViolation(at, f"must have at most {MAX_HEADERS} headers, got {len(headers)}"))
        return []
    fit: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for name, value in headers.items():
        if not HEADER_NAME_RE.fullmatch(name) or len(name) > MAX_HEADER_NAME_CHARS:
            description = f"names must be up to {MAX_HEADER_NAME_CHARS} letters, digits, '-' and the like"
            out.append(FieldViolation(at, f"{description}, got {_show(name)}"))
            continue
        here = f"{at}[{name}]"
        if name.lower() in seen:
            out.append(FieldViolation(here, "names a header already given (names are case-insensitive)"))
        seen.add(name.lower())
        fit.append((name, value, here))
    return fit


def _check_secret_headers(out: list[FieldViolation], at: str, names: tuple[str, ...], action: Action) -> None:
    given = {name.lower() for name in action.headers} if isinstance(action, Request) else set()
    for i, name in enumerate(names):
        if name.lower() not in given:
            out.append(FieldViolation(f"{at}[{i}]", f"must name one of the step's headers, got {_show(name)}"))


def _check_json_checks(out: list[FieldViolation], at: str, checks: tuple[JsonExpectation, ...]) -> None:
    if len(checks) > MAX_JSON_CHECKS:
        out.append(FieldViolation(at, f"must have at most {MAX_JSON_CHECKS} expectations, got {len(checks)}"))
        return
    for i, check in enumerate(checks):
        path_at, equals_at = f"{at}[{i}].path", f"{at}[{i}].equals"
        if len(check.path) > MAX_JSON_PATH_CHARS:  # checked before parsing: parsing is not free
            _check_length(out, path_at, check.path, MAX_JSON_PATH_CHARS)
        else:
            try:
                compile_path(check.path)
            except ValueError as exc:
                out.append(FieldViolation(path_at, _trim(str(exc), 160)))
        if len(check.equals) > MAX_JSON_EQUALS_CHARS:
            _check_length(out, equals_at, check.equals, MAX_JSON_EQUALS_CHARS)
        elif check.equals:
            try:
                parse_literal(check.equals)
            except ValueError as exc:
                out.append(FieldViolation(equals_at, _trim(str(exc), 160)))


def _check_viewport(out: list[FieldViolation], at: str, viewport: Viewport) -> None:
    _check_range(out, f"{at}.width", viewport.width, MIN_VIEWPORT_WIDTH, MAX_VIEWPORT_WIDTH, "px")
    _check_range(out, f"{at}.height", viewport.height, MIN_VIEWPORT_HEIGHT, MAX_VIEWPORT_HEIGHT, "px")


# --- small checks ----------------------------------------------------------------------------


def _check_required(out: list[FieldViolation], at: str, value: str, limit: int) -> None:
    if not value:
        out.append(FieldViolation(at, "must not be empty"))
    _check_length(out, at, value, limit)


def _check_length(out: list[FieldViolation], at: str, value: str, limit: int) -> None:
    if len(value) > limit:
        out.append(FieldViolation(at, f"must be at most {limit} characters, got {len(value)}"))
    _check_text(out, at, value)


def _check_text(out: list[FieldViolation], at: str, value: str) -> None:
    problem = unicode_problem(value)
    if problem:
        out.append(FieldViolation(at, f"must be valid Unicode text: {problem}"))


def unicode_problem(text: str) -> str:
    """What keeps `text` from being stored ("" when nothing): a lone UTF-16 surrogate (a JSON
    "\\ud800" escape, or a Python str built from one) cannot be encoded as UTF-8, and would fail the
    write it is in. `json.loads` joins a surrogate pair, so any surrogate left is alone."""
    if text.isascii():
        return ""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"a lone surrogate \\u{ord(text[exc.start]):04x} at character {exc.start}"
    return ""


def _check_range(out: list[FieldViolation], at: str, value: int, low: int, high: int, unit: str) -> None:
    if not low <= value <= high:
        suffix = f" {unit}" if unit else ""
        out.append(FieldViolation(at, f"must be between {low} and {high}{suffix}, got {value}"))


#: Characters that change how the text around them is shown: bidirectional embeddings, overrides
#: and isolates (U+202A–U+202E, U+2066–U+2069), and the line and paragraph separators (U+2028,
#: U+2029: a line break in many log viewers and chat clients). In a name they let it pass for another
#: in a terminal, a CI log or a chat message.
_BIDI_CONTROLS = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029))


def new_definition_violations(definition: TestDefinition, *, path: str = "definition") -> list[FieldViolation]:
    """What a definition submitted now may not hold, though one stored before may (the executor runs
    it as `validate_definition` has it): a name that would not be shown as it is."""
    out: list[FieldViolation] = []
    _check_shown_text(out, f"{path}.name", definition.name)
    return out


def shown_text_problem(text: str) -> str:
    """What keeps `text` from being shown as it is ("" when nothing): a control character (C0, DEL,
    C1: a NUL, a newline, an escape sequence) or a bidirectional control, named with its position."""
    for i, char in enumerate(text):
        code = ord(char)
        if code < 0x20 or 0x7F <= code <= 0x9F or char in _BIDI_CONTROLS:
            return f"must not hold control characters (U+{code:04X} at character {i + 1})"
    return ""


def _check_shown_text(out: list[FieldViolation], at: str, text: str) -> None:
    problem = shown_text_problem(text)
    if problem:
        out.append(FieldViolation(at, problem))


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


def _has_space(text: str) -> bool:
    return any(c.isspace() for c in text)


def _trim(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show(value: str) -> str:
    """A value quoted for a description, cut short so a huge input makes a short message."""
    return repr(_trim(value))
