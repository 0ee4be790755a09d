"""The reports `sentinel run` leaves for a CI server: JUnit XML and JSON, rendered from one model.

A run's results come in as the plain frozen dataclasses below (a `RunReport` of `TestReport`s of
`StepRow`s) and each writer only renders them, as Playwright Test's reporters do: a new format
never touches the run. This module never talks to the API, reads the environment or the clock.

How a test counts (`outcome`) follows JUnit's split: a *failure* is a verdict on what was tested,
an *error* is trouble that kept the test from reaching one (pytest: an exception in the test body
is a failure, in a fixture an error; Playwright: a failed expect() is a failure, another thrown
error an error). A network error is the site unreachable from the browser (DNS, refused, reset):
a verdict on the site, as pytest would count it too.

    state       category                             counts as
    completed                                        passed
    failed      assertion, timeout, network          failure   the site did not do what the test expects,
    timeout     any                                  failure   not in time, or could not be reached
    failed      browser, system, validation,         error     Sentinel's browser or machine, an invalid
                policy, unknown, or none                       definition, a refused navigation, unexplained
    running                                          error     still running when the report was written
    cancelled, pending, scheduled                    skipped   cancelled, or never ran

JUnit XML (`write_junit`), for Jenkins' junit plugin and GitLab's unit test reports: one
<testsuite> for the run (name, id = run id, counts, time in seconds, ISO 8601 timestamp, hostname)
with one <testcase> per test. A test's classname is its definition file's stem with dots made
underscores ("checkout.v2.json" → "checkout_v2"): Jenkins splits a classname at its last dot into
package and class, so this shows as class "checkout_v2" under "(root)", and GitLab shows it as the
suite. Files in different folders with the same stem would share a classname (and Jenkins would
mix up their tests' histories), so each of them is named by its path below the folder they have in
common, without extension, folders joined by dots: "checks/a/login.json" and "checks/b/login.json"
→ "a.login" and "b.login" (class "login" in packages "a" and "b"). Only those files are named so:
every other file keeps its stem, and so the history Jenkins keeps by classname, when a file is added
in another folder (a classname made of the whole run's common folder would change for every test
then). Two that would still be alike (`login.v2.json` and `login_v2.json`) get `_2`, `_3`… in the
order of their paths. Two things go beyond the junit-10.xsd of Jenkins' xUnit plugin (a validating reader may
refuse them; lenient ones skip them): a `file` attribute on <testcase> (GitLab shows it) and
<properties> inside <testcase> (job_id, attempts, state, category, tags; Jenkins' junit plugin
keeps them with keepProperties, and Playwright writes them too). Text that XML 1.0 cannot carry
(control characters, lone surrogates) is written as visible escapes such as `\\x07`; ANSI colour
codes are dropped.

JSON (`write_json`), shape version `SCHEMA_VERSION` (keys are only ever added within a version):

    {"schemaVersion": 1, "runId", "name", "hostname", "startedAt" (ISO 8601, UTC), "durationMs",
     "summary": {"tests", "passed", "failures", "errors", "skipped"},
     "tests": [{"name", "jobId", "source", "state", "outcome" ("passed" | "failure" | "error" |
                "skipped"), "category", "message", "durationMs", "attempts",
                "failingStep": {"index", "name"} or null, "artifacts": [...], "artifactFiles": [...],
                "flaky", "tags": [...],
                "steps": [{"index", "name", "status", "durationMs", "error", "artifacts",
                           "consoleErrors", "failedRequests", "httpStatus"}]}]}

`flaky` is true for a test that passed on a later attempt after an earlier one failed (Playwright
Test's word): its outcome is `passed`, its `category` and `message` are the failed attempt's, and the
XML says so in a `flaky` property and the first line of its <system-out>.

`artifactFiles` are the test's artifacts as `sentinel run --artifacts DIR` downloaded them (paths as
DIR was given; empty without it); the XML names each in the test's <system-out> as a
`[[ATTACHMENT|path]]` line, which Jenkins' JUnit Attachments plugin and GitLab's test reports show.

A step's `httpStatus` is a request or navigate step's final response status (0: another step, or no
answer); the XML's step table shows it after the step's name (`HTTP 503`).

Step indexes count from 0, as the API's do; the XML's step table counts from 1, as
`sentinel submit --follow` does. Each file is written to a temporary name beside its target and
renamed into place, so a CI server never reads half a report.
"""

from __future__ import annotations

import enum
import json
import os
import re
import stat
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any

from shared.model import ErrorCategory, JobState

__all__ = [
    "SCHEMA_VERSION",
    "Outcome",
    "RunReport",
    "StepRow",
    "TestReport",
    "below_common_folder",
    "classnames",
    "flaky_text",
    "outcome",
    "write_json",
    "write_junit",
]

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class StepRow:
    """One step of a test, for the step table; `status` is "passed", "failed" or "skipped"."""

    index: int
    name: str
    status: str
    duration_ms: int
    error: str = ""
    artifacts: tuple[str, ...] = ()
    console_errors: tuple[str, ...] = ()
    failed_requests: tuple[str, ...] = ()
    http_status: int = 0  # a request or navigate step's final response status (0: none)


@dataclass(frozen=True)
class TestReport:
    """One test of the run as its job last stood.

    `state` is a `JobState` value, `category` an `ErrorCategory` value or "", `source` the
    definition file the test came from, `failing_step` the failed step's index or -1.
    """

    __test__ = False  # for pytest: a class named Test* imported into a test module is no test

    name: str
    job_id: str
    state: str
    duration_ms: int
    attempts: int
    source: str
    failing_step: int = -1
    failing_step_name: str = ""
    category: str = ""
    message: str = ""
    artifacts: tuple[str, ...] = ()
    steps: tuple[StepRow, ...] = ()
    tags: tuple[str, ...] = ()
    files: tuple[str, ...] = ()  # its artifacts as downloaded here (`sentinel run --artifacts`), local paths
    flaky: bool = False  # it passed on a later attempt; `category` and `message` are the failed attempt's


@dataclass(frozen=True)
class RunReport:
    """One `sentinel run`; `started_at` must carry a time zone."""

    run_id: str
    name: str
    started_at: datetime
    duration_ms: int
    tests: tuple[TestReport, ...]
    hostname: str = ""


class Outcome(enum.StrEnum):
    PASSED = "passed"
    FAILURE = "failure"
    ERROR = "error"
    SKIPPED = "skipped"


#: The failed categories that are a verdict on the site under test; every other one is an error.
VERDICT_CATEGORIES = frozenset({ErrorCategory.ASSERTION, ErrorCategory.TIMEOUT, ErrorCategory.NETWORK})

#: What a test without a message says about itself, by state.
_DEFAULT_MESSAGE = {
    JobState.FAILED: "failed",
    JobState.TIMEOUT: "timed out",
    JobState.RUNNING: "still running when the report was written",
    JobState.CANCELLED: "cancelled",
    JobState.PENDING: "never ran: still pending when the report was written",
    JobState.SCHEDULED: "never ran: still scheduled when the report was written",
}

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
# Outside XML 1.0's Char production; lone surrogates cannot even be encoded as UTF-8.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def outcome(test: TestReport) -> Outcome:
    """How `test` counts in a report (the table in the module docstring).

    Raises:
        ValueError: its state is not a `JobState` value, or its category not an `ErrorCategory` one.
    """
    try:
        state = JobState(test.state)
        category = ErrorCategory(test.category) if test.category else ErrorCategory.UNKNOWN
    except ValueError as exc:
        raise ValueError(f"test {test.name!r}: {exc}") from None
    if state is JobState.COMPLETED:
        return Outcome.PASSED
    if state is JobState.TIMEOUT or (state is JobState.FAILED and category in VERDICT_CATEGORIES):
        return Outcome.FAILURE
    if state in (JobState.FAILED, JobState.RUNNING):
        return Outcome.ERROR
    return Outcome.SKIPPED


def write_junit(report: RunReport, path: str | os.PathLike[str]) -> None:
    """Write `report` as a JUnit XML file at `path` (its directory is made if missing).

    Raises:
        ValueError: a test's state or category is unknown, or `started_at` has no time zone.
        OSError: the file cannot be written; an earlier file at `path` is then left as it was.
    """
    outcomes, counts = _tally(report)
    totals = {
        "tests": str(len(outcomes)),
        "failures": str(counts[Outcome.FAILURE]),
        "errors": str(counts[Outcome.ERROR]),
    }
    name = report.name or report.run_id
    root = _element(None, "testsuites", {"name": name, **totals, "time": _seconds(report.duration_ms)})
    suite_attrs = {"name": name, "id": report.run_id, **totals, "skipped": str(counts[Outcome.SKIPPED])}
    suite_attrs |= {"time": _seconds(report.duration_ms), "timestamp": _iso(report.started_at)}
    if report.hostname:
        suite_attrs["hostname"] = report.hostname
    suite = _element(root, "testsuite", suite_attrs)
    names = classnames(test.source for test in report.tests)
    for test, result in zip(report.tests, outcomes, strict=True):
        classname = names[test.source] if test.source else _dotless(name)
        _testcase(suite, test, result, classname=classname)
    ET.indent(root)
    _write_atomically(Path(path), ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n")


def write_json(report: RunReport, path: str | os.PathLike[str]) -> None:
    """Write `report` as the JSON report (shape in the module docstring) at `path`; raises as `write_junit`."""
    outcomes, counts = _tally(report)
    document = {
        "schemaVersion": SCHEMA_VERSION,
        "runId": report.run_id,
        "name": report.name,
        "hostname": report.hostname,
        "startedAt": _iso(report.started_at),
        "durationMs": report.duration_ms,
        "summary": {
            "tests": len(outcomes),
            "passed": counts[Outcome.PASSED],
            "failures": counts[Outcome.FAILURE],
            "errors": counts[Outcome.ERROR],
            "skipped": counts[Outcome.SKIPPED],
        },
        "tests": [_test_json(test, result) for test, result in zip(report.tests, outcomes, strict=True)],
    }
    # Control characters are escaped by json itself; a lone surrogate has no UTF-8 form at all.
    text = _SURROGATE.sub("\ufffd", json.dumps(document, ensure_ascii=False, indent=2))
    _write_atomically(Path(path), (text + "\n").encode("utf-8"))


# --- JUnit XML -------------------------------------------------------------------------------


def classnames(sources: Iterable[str]) -> dict[str, str]:
    """The JUnit classname of each definition file in `sources` (the rule in the module docstring):
    its stem, or where files in different folders share one, its path below their common folder.
    Distinct files always get distinct names; a file's name depends on the other files only when
    they share its stem."""
    by_stem: dict[str, list[str]] = {}
    for source in dict.fromkeys(s for s in sources if s):
        by_stem.setdefault(_dotless(PurePath(source).stem), []).append(source)
    names: dict[str, str] = {}
    for stem, alike in by_stem.items():
        if len(alike) == 1:
            names[alike[0]] = stem
            continue
        for source, below in below_common_folder(alike).items():
            names[source] = ".".join(_dotless(part) for part in below.with_suffix("").parts)
    taken: set[str] = set()
    for source in sorted(names):  # by path, so the suffixes do not depend on the order given
        name, n = names[source], 1
        while (unique := name if n == 1 else f"{name}_{n}") in taken:
            n += 1
        names[source] = unique
        taken.add(unique)
    return names


def below_common_folder(sources: Iterable[str]) -> dict[str, PurePath]:
    """Each file of `sources` as its path below the folder they all have in common ("checks/a/login.json"
    and "checks/b/login.json": "a/login.json" and "b/login.json"), the same wherever the checkout is:
    never a bare folder (the file's own name always remains), with no anchor and no `..`."""
    paths = {source: PurePath(source) for source in sources}
    parts = [path.parts for path in paths.values()]
    common = 0
    while parts and all(len(p) > common + 1 and p[common] == parts[0][common] for p in parts):
        common += 1
    return {
        source: PurePath(*(part for part in path.parts[common:] if part not in (path.anchor, "..")))
        for source, path in paths.items()
    }


def _dotless(name: str) -> str:
    """`name` with its dots made underscores: Jenkins reads a classname's dots as package separators."""
    return name.replace(".", "_")


def _testcase(suite: ET.Element, test: TestReport, result: Outcome, *, classname: str) -> None:
    attrs = {"name": test.name, "classname": classname, "time": _seconds(test.duration_ms)}
    if test.source:
        attrs["file"] = test.source
    case = _element(suite, "testcase", attrs)
    properties = _element(case, "properties", {})
    facts = {"job_id": test.job_id, "attempts": str(test.attempts), "state": test.state, "category": test.category}
    facts["tags"] = ",".join(test.tags)
    facts["flaky"] = "true" if test.flaky else ""
    for key, value in facts.items():
        if value:
            _element(properties, "property", {"name": key, "value": value})
    if result is Outcome.SKIPPED:
        _element(case, "skipped", {"message": _headline(test)})
    elif result is not Outcome.PASSED:
        tag = "failure" if result is Outcome.FAILURE else "error"
        kind = test.category or test.state
        _element(case, tag, {"message": _headline(test), "type": kind}, _failure_text(test))
    if test.steps or test.files or test.flaky:
        table = _step_table(test.steps) if test.steps else ""
        _element(case, "system-out", {}, _flaky_line(test) + table + _attachments(test.files))


def _headline(test: TestReport) -> str:
    lines = test.message.strip().splitlines()
    return lines[0] if lines else _DEFAULT_MESSAGE.get(JobState(test.state), test.state)


def _failure_text(test: TestReport) -> str:
    """The failing step, the whole message and where the evidence is."""
    lines = []
    if test.failing_step >= 0:
        name = f": {test.failing_step_name}" if test.failing_step_name else ""
        lines.append(f"failed at step {test.failing_step + 1}{name}")
    lines.append(test.message.strip() or _headline(test))
    names = list(dict.fromkeys([*test.artifacts, *(name for step in test.steps for name in step.artifacts)]))
    if test.files:
        lines += ["", "artifacts, downloaded:", *(f"  {file}" for file in test.files)]
        fetched = {PurePath(file).parts[-2:] for file in test.files if PurePath(file).parts[-3:-2] == (test.job_id,)}
        names = [name for name in names if tuple(name.split("/")) not in fetched]
    if names:
        lines += ["", f"artifacts (download them with: sentinel artifacts {test.job_id}, while the job is retained):"]
        lines += [f"  {name}" for name in names]
    return "\n".join(lines) + "\n"


def _step_table(steps: tuple[StepRow, ...]) -> str:
    """One line a step (number, status, seconds, name, HTTP status, error), its evidence indented below."""
    lines = [f"{'#':>3}  {'status':<7}  {'time':>9}  step"]
    for step in steps:
        http = f"  HTTP {step.http_status}" if step.http_status else ""
        error = f" — {step.error}" if step.error else ""
        line = f"{step.index + 1:>3}  {step.status:<7}  {_seconds(step.duration_ms):>8}s  {step.name}{http}{error}"
        lines.append(line)
        evidence = (("console", step.console_errors), ("request", step.failed_requests), ("artifact", step.artifacts))
        lines += [f"       {label}: {line}" for label, entries in evidence for line in entries]
    return "\n".join(lines) + "\n"


def flaky_text(attempt: int, category: str, message: str) -> str:
    """`passed on attempt 2; attempt 1 failed (assertion): …`: what a flaky test's reports and the
    CLI say of it; `message` is the failed attempt's first line."""
    kind = f" ({category})" if category else ""
    said = message.strip().splitlines()[0] if message.strip() else ""
    return f"passed on attempt {attempt}; attempt {attempt - 1} failed{kind}: {said}"


def _flaky_line(test: TestReport) -> str:
    """The first <system-out> line of a flaky test, else ""."""
    return f"flaky: {flaky_text(test.attempts, test.category, test.message)}\n" if test.flaky else ""


def _attachments(files: tuple[str, ...]) -> str:
    """A `[[ATTACHMENT|path]]` line a file, the form Jenkins' JUnit Attachments plugin and GitLab read."""
    return "".join(f"[[ATTACHMENT|{file}]]\n" for file in files)


def _element(parent: ET.Element | None, tag: str, attrs: dict[str, str], text: str = "") -> ET.Element:
    """An element whose attribute values and text are made fit for XML 1.0."""
    clean = {key: _xml_text(value) for key, value in attrs.items()}
    element = ET.Element(tag, clean) if parent is None else ET.SubElement(parent, tag, clean)
    if text:
        element.text = _xml_text(text)
    return element


def _xml_text(text: str) -> str:
    return _NOT_XML.sub(visible_escape, _ANSI.sub("", text))


def visible_escape(match: re.Match[str]) -> str:
    """The character `match` found, written as its escape (`\\x07`, `\\ud800`)."""
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


# --- JSON ------------------------------------------------------------------------------------


def _test_json(test: TestReport, result: Outcome) -> dict[str, Any]:
    failing = {"index": test.failing_step, "name": test.failing_step_name} if test.failing_step >= 0 else None
    return {
        "name": test.name,
        "jobId": test.job_id,
        "source": test.source,
        "state": test.state,
        "outcome": result.value,
        "category": test.category,
        "message": test.message,
        "durationMs": test.duration_ms,
        "attempts": test.attempts,
        "failingStep": failing,
        "artifacts": list(test.artifacts),
        "artifactFiles": list(test.files),
        "flaky": test.flaky,
        "tags": list(test.tags),
        "steps": [
            {
                "index": step.index,
                "name": step.name,
                "status": step.status,
                "durationMs": step.duration_ms,
                "error": step.error,
                "artifacts": list(step.artifacts),
                "consoleErrors": list(step.console_errors),
                "failedRequests": list(step.failed_requests),
                "httpStatus": step.http_status,
            }
            for step in test.steps
        ],
    }


# --- both ------------------------------------------------------------------------------------


def _tally(report: RunReport) -> tuple[list[Outcome], Counter[Outcome]]:
    outcomes = [outcome(test) for test in report.tests]
    return outcomes, Counter(outcomes)


def _seconds(ms: int) -> str:
    """Seconds with three decimals, the form junit-10.xsd's SUREFIRE_TIME allows (never negative)."""
    return f"{max(ms, 0) / 1000:.3f}"


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"started_at {moment.isoformat()} has no time zone; give it one (e.g. datetime.now(UTC))")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _write_atomically(path: Path, data: bytes) -> None:
    """Write `data` as the file `path` by renaming a finished temporary file over it, so a reader never
    sees half a report. Through a symlink, the file it names is written (the link stays); a path that
    is no regular file (`/dev/stdout`, a pipe, `/dev/null`) is written to, never replaced."""
    try:
        kind = os.stat(path).st_mode  # follows symlinks
    except FileNotFoundError:
        kind = None
    if kind is not None and not stat.S_ISREG(kind):
        with path.open("wb") as out:
            out.write(data)
        return
    path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with partial.open("xb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
